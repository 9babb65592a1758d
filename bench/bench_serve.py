#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`mimobox serve`: what an execute costs through the server.

Starts a server on a unix socket in a private state directory and times,
over one keep-alive connection (Python's http.client), -n calls of each:

  exec-warm     POST /v1/sandboxes/{id}/exec of /bin/true in a live sandbox
  run-pooled    POST /v1/run of /bin/true (warm pool, --pool-size 2)
  run-fresh     POST /v1/run of /bin/true with --pool-size 0 (a new sandbox each)

and, in the same run for comparison, as whole processes:

  cli-run-served  `mimobox run -- /bin/true` through the first server
                  (MIMOBOX_HOST=unix:..., so POST /v1/run from its warm pool)
  mimobox-run-cli `mimobox run -- /bin/true` without a server (MIMOBOX_HOST=local)
  bwrap           `bwrap --ro-bind / / --unshare-all /bin/true`

The three whole-process cases are interleaved: each iteration runs each of
them once, in an order that rotates from one iteration to the next, so that
a change of load on the machine hits all three alike and their ratio holds
(--sequential: all calls of one case, then the next, as before).

It also reports the memory of an idle sandbox of the first server (its
agent and the spare mini-init it keeps ready, once it has made it): the
proportional set size (Pss in /proc/PID/smaps_rollup) of every process of
the server's sandboxes, over the number of sandboxes (idle-sandbox-pss).

Prints P50 and P99 in milliseconds (wall clock from request to last
response byte, or from the process's start to its exit), and the ratios of
cli-run-served to bwrap (the goal: P50 at most 0.5x, P99 at most 1x).

The script reports; it never fails because a goal is missed. It stops the
servers it started and removes what it made, also on errors.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def default_mimobox():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.abspath(os.path.join(here, "..", "build", "mimobox"))


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=120)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.unix_path)


def pct(times, p):
    times = sorted(times)
    return times[min(len(times) - 1, int(round(p / 100 * (len(times) - 1))))] * 1e3


def call(conn, method, path, body=None):
    conn.request(method, path, body=json.dumps(body) if body is not None else None)
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        sys.exit("bench_serve: %s %s: %d %s" % (method, path, r.status, data[:300]))
    return json.loads(data) if data else None


def timed(fn, n):
    fn()  # warm-up
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def timed_interleaved(fns, n):
    """Times n calls of each of fns (name -> function), one of each per
    iteration, in an order that rotates; one warm-up call of each first."""
    names = list(fns)
    for k in names:
        fns[k]()
    out = {k: [] for k in names}
    for i in range(n):
        for j in range(len(names)):
            k = names[(i + j) % len(names)]
            t = time.perf_counter()
            fns[k]()
            out[k].append(time.perf_counter() - t)
    return out


def children(pid):
    """The pids whose parent is pid (the children files of its threads)."""
    out = []
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass  # it ended meanwhile
    return out


def descendants(pid):
    """Every process below pid."""
    out, frontier = [], children(pid)
    while frontier:
        out += frontier
        frontier = [c for p in frontier for c in children(p)]
    return out


def pss_kib(pid):
    """Pss of pid in KiB (0 once it has ended)."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            return next((int(l.split()[1]) for l in f if l.startswith("Pss:")), 0)
    except OSError:
        return 0


def idle_sandbox_pss_kib(server_pid):
    """Pss (KiB) of a server's sandbox processes (its agents and theirs), over
    its sandboxes (one agent each)."""
    agents = []
    for c in children(server_pid):
        try:
            with open("/proc/%d/comm" % c) as f:
                if f.read().startswith("memfd:mimobox"):  # the agent runs from a memfd
                    agents.append(c)
        except OSError:
            pass
    if not agents:
        return None
    return sum(pss_kib(p) for a in agents for p in [a] + descendants(a)) / len(agents)


def start_server(mimobox, env, sock, pool):
    p = subprocess.Popen([mimobox, "serve", "--socket", sock, "--pool-size", str(pool)], env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            c = UnixHTTPConnection(sock)
            call(c, "GET", "/v1/health")
            c.close()
            return p
        except OSError:
            time.sleep(0.02)
    p.kill()
    p.wait()
    sys.exit("bench_serve: the server did not start")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200, help="calls per case (default 200)")
    ap.add_argument("--mimobox", default=default_mimobox())
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--sequential", action="store_true",
                    help="time the whole-process cases one after the other instead of interleaved")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-serve-")
    env = dict(os.environ, MIMOBOX_STATE_DIR=os.path.join(tmp, "state"), MIMOBOX_LOG="off")
    servers, out, socks = [], {}, []
    pss = None
    try:
        for pool, cases in ((2, ("exec-warm", "run-pooled")), (0, ("run-fresh",))):
            sock = os.path.join(tmp, "s%d.sock" % pool)
            socks.append(sock)
            servers.append(start_server(a.mimobox, env, sock, pool))
            conn = UnixHTTPConnection(sock)
            if "exec-warm" in cases:
                sid = call(conn, "POST", "/v1/sandboxes", {})["id"]
                out["exec-warm"] = timed(lambda: call(conn, "POST", "/v1/sandboxes/%s/exec" % sid,
                                                      {"argv": ["/bin/true"]}), a.n)
                time.sleep(0.3)  # its spare is made once the agent has been idle 1 ms
                pss = idle_sandbox_pss_kib(servers[-1].pid)
                call(conn, "DELETE", "/v1/sandboxes/%s" % sid)
            name = cases[-1]
            out[name] = timed(lambda: call(conn, "POST", "/v1/run", {"argv": ["/bin/true"]}), a.n)
            conn.close()
        served = dict(env, MIMOBOX_HOST="unix:" + socks[0])
        local = dict(env, MIMOBOX_HOST="local")
        procs = {
            "cli-run-served": lambda: subprocess.run([a.mimobox, "run", "--", "/bin/true"], env=served, check=True),
            "mimobox-run-cli": lambda: subprocess.run([a.mimobox, "run", "--", "/bin/true"], env=local, check=True),
        }
        bwrap = shutil.which("bwrap")
        if bwrap:
            procs["bwrap"] = lambda: subprocess.run([bwrap, "--ro-bind", "/", "/", "--unshare-all", "/bin/true"],
                                                    check=True)
        if a.sequential:
            for k, fn in procs.items():
                out[k] = timed(fn, a.n)
        else:
            out.update(timed_interleaved(procs, a.n))
    finally:
        for p in servers:
            p.send_signal(signal.SIGTERM)
            p.wait(60)
        shutil.rmtree(tmp, ignore_errors=True)
    res = {k: {"p50_ms": round(pct(v, 50), 3), "p99_ms": round(pct(v, 99), 3)} for k, v in out.items()}
    if pss is not None:
        res["idle-sandbox-pss"] = {"kib": round(pss)}
    if "bwrap" in res:
        res["cli-run-served/bwrap"] = {k: round(res["cli-run-served"][k] / res["bwrap"][k], 3)
                                       for k in ("p50_ms", "p99_ms")}
    if a.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            if "kib" in v:
                print("%-21s %8d KiB" % (k, v["kib"]))
                continue
            unit = "x " if "/" in k else "ms"
            print("%-21s P50 %8.3f %s   P99 %8.3f %s" % (k, v["p50_ms"], unit, v["p99_ms"], unit))


if __name__ == "__main__":
    main()
