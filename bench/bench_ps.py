#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`mimobox ps` with wedged supervisors.

Creates N named sandboxes (default 4) in a private state directory, then
times `mimobox ps` (wall clock, -n runs each, median and max) with 0, 1
and 3 of their supervisors stopped by SIGSTOP. `ps` asks every supervisor
at once and waits at most 500 ms in all, so a stopped supervisor should
cost about that once, not once per stopped sandbox.

The script reports; it never fails because a goal is missed. It removes
what it made, also on errors.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time


def default_mimobox():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.abspath(os.path.join(here, "..", "build", "mimobox"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=10, help="runs per case (default 10)")
    ap.add_argument("--sandboxes", type=int, default=4, help="named sandboxes (default 4, at least 3)")
    ap.add_argument("--mimobox", default=default_mimobox())
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args()
    if a.sandboxes < 3:
        ap.error("--sandboxes must be at least 3")

    state = tempfile.mkdtemp(prefix="bench-ps-")
    env = dict(os.environ, MIMOBOX_STATE_DIR=state, MIMOBOX_LOG="off")
    names, pids, stopped, out = [], {}, [], {}

    def cli(*words):
        return subprocess.run([a.mimobox] + list(words), env=env, capture_output=True, timeout=120)

    try:
        for i in range(a.sandboxes):
            r = cli("create", "--name", "b%d" % i)
            if r.returncode != 0:
                sys.exit("bench_ps: create failed: %s" % r.stderr.decode(errors="replace"))
            names.append("b%d" % i)
        for e in json.loads(cli("ps", "--json").stdout)["sandboxes"]:
            pids[e["name"]] = e["pid"]
        for n_stopped in (0, 1, 3):
            while len(stopped) < n_stopped:
                os.kill(pids[names[len(stopped)]], signal.SIGSTOP)
                stopped.append(names[len(stopped)])
            times = []
            for _ in range(a.n):
                t = time.monotonic()
                r = cli("ps")
                times.append((time.monotonic() - t) * 1000)
                if r.returncode != 0:
                    sys.exit("bench_ps: ps failed: %s" % r.stderr.decode(errors="replace"))
            out["stopped_%d" % n_stopped] = {"median_ms": round(statistics.median(times), 1),
                                             "max_ms": round(max(times), 1)}
    finally:
        for n in stopped:
            os.kill(pids[n], signal.SIGCONT)
        if names:
            cli("rm", *names)
        try:
            os.rmdir(state)
        except OSError:
            pass

    if a.json:
        print(json.dumps({"sandboxes": a.sandboxes, "runs": a.n, "ps": out}))
    else:
        print("mimobox ps with %d named sandboxes, %d runs each (wall ms)" % (a.sandboxes, a.n))
        for k, v in out.items():
            print("  %-10s  median %7.1f  max %7.1f" % (k.replace("_", " "), v["median_ms"], v["max_ms"]))


if __name__ == "__main__":
    main()
