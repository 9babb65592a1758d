#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`mimobox serve`: terminals over WebSocket (GET /v1/sandboxes/{id}/pty).

Starts a server on a unix socket in a private state directory, makes a
sandbox and times, -n times each:

  open        connect, handshake, the program started: until the 101
  keystroke   one byte to `cat` on the terminal until its echo comes back

and the CPU time and wakeups of the session's threads while it sits idle
for --idle seconds (it waits on its socket and the sandbox's event
descriptor, so it should not wake at all).
Prints P50 and P99 in milliseconds. It reports; it never fails because a goal
is missed. It stops the server it started and removes what it made.
"""

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_serve import default_mimobox, pct  # noqa: E402  (beside this file)


def http(sock_path, method, path, body=None):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    data = json.dumps(body).encode() if body is not None else b""
    s.sendall(("%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" %
               (method, path, len(data))).encode() + data)
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
    s.close()
    head, _, body = out.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


class Session:
    def __init__(self, sock_path, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(sock_path)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, key)).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.s.recv(65536)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            sys.exit("bench_serve_pty: no upgrade: %r" % head[:300])

    def send(self, data):
        m = os.urandom(4)
        self.s.sendall(bytes([0x82, 0x80 | len(data)]) + m + bytes(c ^ m[i % 4] for i, c in enumerate(data)))

    def output_until(self, want):
        out = b""
        while want not in out:
            while True:
                if len(self.buf) >= 2:
                    n, off = self.buf[1] & 0x7f, 2
                    if n == 126 and len(self.buf) >= 4:
                        n, off = struct.unpack(">H", self.buf[2:4])[0], 4
                    if n < 126 and len(self.buf) >= off + n:
                        break
                self.buf += self.s.recv(65536)
            if self.buf[0] & 0xf == 2:
                out += self.buf[off:off + n]
            self.buf = self.buf[off + n:]
        return out

    def close(self):
        self.s.close()


def cpu_ticks(pid, tid):
    try:
        f = open("/proc/%d/task/%s/stat" % (pid, tid))
    except FileNotFoundError:
        return 0
    with f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def wakeups(pid, tid):
    try:
        with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
            return sum(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt_switches"))
    except FileNotFoundError:
        return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--idle", type=float, default=10.0)
    ap.add_argument("--mimobox", default=default_mimobox())
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="mbx-bench-pty-")
    sock = os.path.join(tmp, "serve.sock")
    env = dict(os.environ, MIMOBOX_STATE_DIR=os.path.join(tmp, "state"))
    p = subprocess.Popen([args.mimobox, "serve", "--socket", sock], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(sock) and time.monotonic() < deadline:
            time.sleep(0.02)
        status, body = http(sock, "POST", "/v1/sandboxes", {})
        if status != 201:
            sys.exit("bench_serve_pty: create: %d %r" % (status, body[:300]))
        sid = json.loads(body)["id"]
        path = "/v1/sandboxes/%s/pty?cmd=cat" % sid
        opens = []
        for _ in range(args.n):
            t = time.perf_counter()
            s = Session(sock, path)
            opens.append(time.perf_counter() - t)
            s.close()
        before = set(os.listdir("/proc/%d/task" % p.pid))
        s = Session(sock, path)
        keys = []
        for i in range(args.n):
            ch = bytes([ord("a") + i % 26])
            t = time.perf_counter()
            s.send(ch)
            s.output_until(ch)
            keys.append(time.perf_counter() - t)
        # The threads that came with the session: its own (and its connection's, while it lasts).
        new = sorted(set(os.listdir("/proc/%d/task" % p.pid)) - before)
        time.sleep(1.5)  # quiet for a second: the longer slices
        ticks = sum(cpu_ticks(p.pid, t) for t in new)
        woke = sum(wakeups(p.pid, t) for t in new)
        time.sleep(args.idle)
        idle = (sum(cpu_ticks(p.pid, t) for t in new) - ticks) / os.sysconf("SC_CLK_TCK") / args.idle * 100
        woke = (sum(wakeups(p.pid, t) for t in new) - woke) / args.idle
        s.close()
        print("%-10s %8s %8s" % ("case", "P50 ms", "P99 ms"))
        print("%-10s %8.2f %8.2f" % ("open", pct(opens, 50), pct(opens, 99)))
        print("%-10s %8.2f %8.2f" % ("keystroke", pct(keys, 50), pct(keys, 99)))
        print("an idle session's thread (%d thread(s) measured): %.2f%% of a CPU, %.1f wakeups/s"
              % (len(new), idle, woke))
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
