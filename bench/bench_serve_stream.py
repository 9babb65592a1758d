#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`mimobox serve`: streamed executes (POST /v1/sandboxes/{id}/exec?stream=1).

Starts a server on a unix socket in a private state directory, makes a
sandbox and times, -n times each:

  stream-start        request sent until the `start` event came
  stream-first-byte   request sent until the first `stdout` event of `echo x` came
  file-beside-stream  GET .../files of a small file of the same sandbox while a
                      streamed `sleep` runs in it (a call a stream must not hold up)
  exec-beside-stream  POST .../exec of /bin/true, likewise

and the server's CPU time and wakeups (all its threads, its own timers
included, and the stream's thread alone) while one silent stream stays open
for --idle seconds. Prints P50 and P99 in milliseconds. It reports; it
never fails because a goal is missed. It stops the server it started and
removes what it made.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_serve import UnixHTTPConnection, default_mimobox, pct  # noqa: E402  (beside this file)


def call(conn, method, path, body=None, raw=None):
    conn.request(method, path, body=raw if raw is not None else json.dumps(body) if body is not None else None)
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        sys.exit("bench_serve_stream: %s %s: %d %s" % (method, path, r.status, data[:300]))
    return data


def open_stream(sock, sid, argv):
    """(connection, response, time the request was sent)."""
    c = UnixHTTPConnection(sock)
    t = time.perf_counter()
    c.request("POST", "/v1/sandboxes/%s/exec?stream=1" % sid, body=json.dumps({"argv": argv}),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        sys.exit("bench_serve_stream: stream: %d %r" % (r.status, r.read()[:300]))
    return c, r, t


def next_event(r):
    name = None
    while True:
        line = r.readline()
        if not line:
            return None
        line = line.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line == "" and name:
            return name


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def wakeups(pid, tids=None):
    """Voluntary context switches of the process's threads (or of `tids`): how often they slept and woke."""
    n = 0
    for tid in tids if tids is not None else os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                n += sum(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt_switches"))
        except FileNotFoundError:
            pass
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--idle", type=float, default=10.0)
    ap.add_argument("--mimobox", default=default_mimobox())
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="mbx-bench-stream-")
    sock = os.path.join(tmp, "serve.sock")
    env = dict(os.environ, MIMOBOX_STATE_DIR=os.path.join(tmp, "state"), MIMOBOX_LOG="off")
    p = subprocess.Popen([args.mimobox, "serve", "--socket", sock, "--pool-size", "0"], env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = {k: [] for k in ("stream-start", "stream-first-byte", "file-beside-stream", "exec-beside-stream")}
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(sock) and time.monotonic() < deadline:
            time.sleep(0.02)
        conn = UnixHTTPConnection(sock)
        sid = json.loads(call(conn, "POST", "/v1/sandboxes", {}))["id"]
        call(conn, "PUT", "/v1/sandboxes/%s/files?path=/workspace/f" % sid, raw=b"x" * 100)
        for i in range(args.n + 1):
            c, r, t = open_stream(sock, sid, ["echo", "x"])
            assert next_event(r) == "start"
            t_start = time.perf_counter()
            assert next_event(r) == "stdout"
            t_out = time.perf_counter()
            while next_event(r):
                pass
            c.close()
            if i:  # the first is a warm-up
                out["stream-start"].append(t_start - t)
                out["stream-first-byte"].append(t_out - t)
        before = set(os.listdir("/proc/%d/task" % p.pid))
        c, r, _ = open_stream(sock, sid, ["sleep", "1000"])
        assert next_event(r) == "start"
        time.sleep(1.0)
        new = sorted(set(os.listdir("/proc/%d/task" % p.pid)) - before)  # the stream's connection's
        ticks, woke, woke_new = cpu_ticks(p.pid), wakeups(p.pid), wakeups(p.pid, new)
        time.sleep(args.idle)
        idle = (cpu_ticks(p.pid) - ticks) / os.sysconf("SC_CLK_TCK") / args.idle * 100
        woke = (wakeups(p.pid) - woke) / args.idle
        woke_new = (wakeups(p.pid, new) - woke_new) / args.idle
        for i in range(args.n + 1):
            t = time.perf_counter()
            call(conn, "GET", "/v1/sandboxes/%s/files?path=/workspace/f" % sid)
            t_file = time.perf_counter()
            call(conn, "POST", "/v1/sandboxes/%s/exec" % sid, {"argv": ["/bin/true"]})
            if i:
                out["file-beside-stream"].append(t_file - t)
                out["exec-beside-stream"].append(time.perf_counter() - t_file)
        c.sock.shutdown(socket.SHUT_RDWR)
        c.close()
        call(conn, "DELETE", "/v1/sandboxes/%s" % sid)
        conn.close()
        print("%-20s %8s %8s" % ("case", "P50 ms", "P99 ms"))
        for k, v in out.items():
            print("%-20s %8.2f %8.2f" % (k, pct(v, 50), pct(v, 99)))
        print("the server with one silent stream open for %.0f s: %.2f%% of a CPU, %.1f wakeups/s "
              "(%.1f/s of them the stream's thread)" % (args.idle, idle, woke, woke_new))
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
