#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What the microVM's network channel costs (docs/microvm.md, "Network").

One allow-domains sandbox per backend (os, microvm) runs the same raw
Python client (a microVM guest's Python has no http modules): N small GETs,
each on a new connection through the proxy at 127.0.0.1:3128, then a few
large GETs; the destination is a local HTTP server on the host's loopback.
Only reports; never fails because of a number.

  python3 bench/bench_vmnet.py [--cli build/mimobox] [-n 60] [--mib 16] [--transfers 3]
"""
import argparse
import functools
import http.server
import os
import subprocess
import sys
import threading

CLIENT = r"""
import socket, sys, time
port, n, transfers = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def get(path):
    s = socket.create_connection(("127.0.0.1", 3128))
    s.sendall(("GET http://bench.invalid:%d/%s HTTP/1.1\r\nHost: bench.invalid:%d\r\n\r\n" % (port, path, port)).encode())
    got = 0
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += len(b)
    s.close()
    return got
ts = []
for _ in range(n):
    t = time.time(); get("small"); ts.append((time.time() - t) * 1000)
ts.sort()
print("small GET: P50 %.1f ms, P90 %.1f ms, max %.1f ms" % (ts[len(ts) // 2], ts[len(ts) * 9 // 10], ts[-1]))
for _ in range(transfers):
    t = time.time(); got = get("big"); dt = time.time() - t
    print("big GET: %d bytes in %.2f s, %.1f MiB/s" % (got, dt, got / dt / 2**20))
"""


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"x" * (self.server.big if self.path == "/big" else 200)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", default=os.path.join(os.path.dirname(__file__), "..", "build", "mimobox"))
    ap.add_argument("-n", type=int, default=60)
    ap.add_argument("--mib", type=int, default=16)
    ap.add_argument("--transfers", type=int, default=3)
    a = ap.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.big = a.mib << 20
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    for backend in ("os", "microvm"):
        print("== %s" % backend, flush=True)
        subprocess.run([a.cli, "run", "--isolation", backend, "--timeout", "300", "--network", "allow:bench.invalid",
                        "--add-host", "bench.invalid:127.0.0.1", "--allow-private", "--",
                        "python3", "-c", CLIENT, str(port), str(a.n), str(a.transfers)], check=False)
    srv.shutdown()


if __name__ == "__main__":
    sys.exit(main())
