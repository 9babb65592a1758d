#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Network benchmarks (docs/network.md): what the host-side proxy costs.

Per-request latency, one new connection per request, a 200-byte response
from a local server on the host's loopback:

  direct          a client on the host, straight to the server (the peer)
  proxy-forward   a client in an allow-domains sandbox: GET http://... to the
                  proxy, which checks, connects and forwards
  proxy-connect   the same client: CONNECT through the proxy, then the GET
                  inside the tunnel (what every HTTPS request pays, minus TLS)
  pasta           (root) a client in an allow-all sandbox through pasta
  api             mbx_sandbox_http_request() from the host process (libcurl,
                  policy decision, pinned address); its peer is `direct`

Tunnel throughput: a client reads a large body through each path; one
sample per transfer.

Modes are interleaved round-robin (the first one rotates every round) so
machine noise hits all of them alike. Clients inside and outside sandboxes
are the same Python code, run as separate processes. Only reports; never
fails because of a number.

  python3 bench/bench_net.py [--lib build/libmimobox.so] [-n 400] [--mib 64] [--transfers 20]
"""
import argparse
import ctypes
import json
import os
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import mbxnet  # noqa: E402  (the ctypes binding the tests use)

BODY = b"x" * 200


class Server:
    """A minimal HTTP/1.1 server: reads a head, answers with 200 bytes, or
    with N bytes for GET /big?n=N, and closes."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.chunk = b"y" * (1 << 20)
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                b = c.recv(4096)
                if not b:
                    return
                head += b
            path = head.split(b" ", 2)[1]
            if b"/big?n=" in path:
                n = int(path.split(b"=")[1])
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % n)
                while n > 0:
                    k = min(n, len(self.chunk))
                    c.sendall(self.chunk[:k])
                    n -= k
            else:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(BODY), BODY))
        except OSError:
            pass
        finally:
            c.close()


# The client, the same code on the host and in sandboxes. argv: mode port n [mib]
CLIENT = r"""
import json, socket, sys, time
mode, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
mib = int(sys.argv[4]) if len(sys.argv) > 4 else 0
host = sys.argv[5] if len(sys.argv) > 5 else "127.0.0.1"
name = "api.example.test:%d" % port
path = "/big?n=%d" % (mib << 20) if mib else "/"
def one():
    if mode == "direct":
        s = socket.create_connection((host, port))
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, name)).encode())
    elif mode == "forward":
        s = socket.create_connection(("127.0.0.1", 3128))
        s.sendall(("GET http://%s%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (name, path, name)).encode())
    else:
        s = socket.create_connection(("127.0.0.1", 3128))
        s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (name, name)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1024)
        assert head.startswith(b"HTTP/1.1 200 "), head
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, name)).encode())
    total = 0
    buf = bytearray(1 << 20)
    while True:
        k = s.recv_into(buf)
        if not k:
            break
        total += k
    s.close()
    return total
out = []
for i in range(n):
    t = time.perf_counter()
    got = one()
    out.append(time.perf_counter() - t)
    assert got > (mib << 20), got
print(json.dumps(out))
"""


def pct(vals, p):
    v = sorted(vals)
    return v[min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", default=os.path.join(HERE, "..", "build", "libmimobox.so"))
    ap.add_argument("-n", type=int, default=400, help="requests per latency mode")
    ap.add_argument("--rounds", type=int, default=8, help="latency rounds (n is split over them)")
    ap.add_argument("--mib", type=int, default=64, help="MiB per throughput transfer")
    ap.add_argument("--transfers", type=int, default=20, help="throughput transfers per mode")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    api = mbxnet.Api(os.path.abspath(a.lib))
    srv = Server()
    cfg = mbxnet.Config(api, network=mbxnet.MBX_NETWORK_ALLOW_DOMAINS, domains=["api.example.test"],
                        overrides={"api.example.test": "127.0.0.1"}, allow_private=True,
                        limits={"response_bytes": 1 << 40, "timeout_ms": 3600000})
    sb = mbxnet.Sandbox(api, cfg)
    cfg.close()
    pasta = None
    gw = None
    if os.geteuid() == 0:
        try:
            c2 = mbxnet.Config(api, network=mbxnet.MBX_NETWORK_ALLOW_ALL, allow_private=True)
            pasta = mbxnet.Sandbox(api, c2)
            c2.close()
            rc, gw, _ = pasta.sh("ip route | awk '/default/ {print $3}'")
            gw = gw.strip()
        except mbxnet.NetError as e:
            print("# pasta: not measured (%s)" % e.message, file=sys.stderr)
            pasta = None

    def run_client(where, mode, n, mib=0):
        args = [mode, str(srv.port), str(n), str(mib)]
        if where == "host":
            p = subprocess.run([sys.executable, "-c", CLIENT] + args, capture_output=True, text=True, check=True)
            return json.loads(p.stdout)
        if where == "pasta":
            rc, out, err = pasta.python(CLIENT, *(args + [gw]))
        else:
            rc, out, err = sb.python(CLIENT, *args)
        if rc != 0:
            raise RuntimeError("%s %s: %s" % (where, mode, err))
        return json.loads(out)

    def api_requests(n):
        out = []
        url = "http://api.example.test:%d/" % srv.port
        for _ in range(n):
            t = time.perf_counter()
            r = sb.http("GET", url)
            out.append(time.perf_counter() - t)
            assert r.status == 200 and len(r.body) == len(BODY)
        return out

    lat_modes = [("direct", lambda k: run_client("host", "direct", k)),
                 ("proxy-forward", lambda k: run_client("sandbox", "forward", k)),
                 ("proxy-connect", lambda k: run_client("sandbox", "connect", k)),
                 ("api", api_requests)]
    if pasta:
        lat_modes.append(("pasta", lambda k: run_client("pasta", "direct", k)))
    per_round = max(1, a.n // a.rounds)
    lat = {m: [] for m, _ in lat_modes}
    for m, fn in lat_modes:  # warm-up
        fn(10)
    for r in range(a.rounds):
        order = lat_modes[r % len(lat_modes):] + lat_modes[:r % len(lat_modes)]
        for m, fn in order:
            lat[m] += fn(per_round)

    thr_modes = [("direct", "host", "direct"), ("proxy-connect", "sandbox", "connect"),
                 ("proxy-forward", "sandbox", "forward")]
    if pasta:
        thr_modes.append(("pasta", "pasta", "direct"))
    thr = {m: [] for m, _, _ in thr_modes}
    for r in range(a.transfers):
        order = thr_modes[r % len(thr_modes):] + thr_modes[:r % len(thr_modes)]
        for m, where, mode in order:
            secs = run_client(where, mode, 1, a.mib)[0]
            thr[m].append(a.mib / secs)

    sb.close()
    if pasta:
        pasta.close()

    res = {"latency_ms": {}, "throughput_mib_s": {}, "n": per_round * a.rounds, "mib": a.mib,
           "transfers": a.transfers}
    for m in lat:
        v = [x * 1000 for x in lat[m]]
        res["latency_ms"][m] = {"p50": pct(v, 50), "p99": pct(v, 99)}
    for m in thr:
        # The slow tail of a throughput is its low percentile.
        res["throughput_mib_s"][m] = {"p50": pct(thr[m], 50), "p99": pct(thr[m], 1)}
    if a.json:
        print(json.dumps(res, indent=1))
        return 0
    d = res["latency_ms"]["direct"]
    print("per-request latency, %d requests per mode (new connection each, 200-byte body)" % res["n"])
    print("%-15s %9s %9s %12s %12s" % ("mode", "P50 ms", "P99 ms", "+P50 ms", "+P99 ms"))
    for m, v in res["latency_ms"].items():
        print("%-15s %9.3f %9.3f %12.3f %12.3f" % (m, v["p50"], v["p99"], v["p50"] - d["p50"], v["p99"] - d["p99"]))
    print("\ntunnel throughput, %d transfers of %d MiB per mode (P99 = the slowest 1%%)" % (a.transfers, a.mib))
    print("%-15s %10s %10s" % ("mode", "P50 MiB/s", "P99 MiB/s"))
    for m, v in res["throughput_mib_s"].items():
        print("%-15s %10.0f %10.0f" % (m, v["p50"], v["p99"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
