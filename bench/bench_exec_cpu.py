#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""CPU time of each process of an os sandbox per warm execute
(docs/benchmarks.md, "A warm execute's pipes made ahead").

Report only: never fails because of a number. Runs COUNT executes of
PROGRAM in one os sandbox through the library (the ctypes binding of the
tests), after a warm-up, and reads /proc/<pid>/schedstat (time on a CPU,
kernel and user, including the cost of being switched in and out) of the
sandbox's agent and of its mini-init before and after them: the difference
divided by COUNT is what each costs per execute, apart from the program
itself and the caller. A mini-init that is recycled keeps its pid, so
with back-to-back executes one mini-init serves them all; one that is not
shows as "new". `--gap MS` waits that long between executes, as a caller
that thinks between them does (the agent then makes the next execute's
pipes and spares in the gaps).

`perf` sampling is not used: on a virtual machine it puts the time of
processes that rename themselves (PR_SET_NAME, as the mini-init does) on
the wrong one. PROGRAM defaults to /bin/true; a static program that only
exits shows the sandbox's share best (the dynamic loader's work is most of
/bin/true's time here).

    python3 bench/bench_exec_cpu.py [--lib build/libmimobox.so] [-n 3000]
                                    [--gap MS] [--json] [PROGRAM]
"""
import argparse
import glob
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import mbx  # noqa: E402  (the ctypes binding the tests use)


def sandbox_processes(agent_pid):
    """{pid: (name, ns on a CPU)} of the agent and its children."""
    out = {}
    for d in glob.glob("/proc/[0-9]*"):
        pid = int(d[6:])
        try:
            with open(d + "/stat") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            if pid != agent_pid and ppid != agent_pid:
                continue
            with open(d + "/comm") as f:
                name = f.read().strip()
            with open(d + "/schedstat") as f:
                ns = int(f.read().split()[0])
        except (OSError, ValueError):
            continue
        out[pid] = ("agent" if pid == agent_pid else name, ns)
    return out


def find_agent():
    """The agent of the one sandbox this process made: its child running
    mimobox-agent."""
    me = os.getpid()
    for d in glob.glob("/proc/[0-9]*"):
        try:
            with open(d + "/stat") as f:
                stat = f.read()
            with open(d + "/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0")[0]
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[1]) == me and argv0 == b"mimobox-agent":
            return int(d[6:])
    raise SystemExit("bench_exec_cpu: no agent below this process")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lib", default=os.path.join(ROOT, "build", "libmimobox.so"))
    ap.add_argument("-n", "--count", type=int, default=3000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--gap", type=float, default=0.0, help="milliseconds between executes")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("program", nargs="?", default="/bin/true")
    a = ap.parse_args()
    if a.count < 1:
        raise SystemExit("bench_exec_cpu: --count must be at least 1")
    lib = mbx.Lib(a.lib)
    sb = mbx.Sandbox(lib)
    try:
        for _ in range(a.warmup):
            sb.exec([a.program])
        agent = find_agent()
        time.sleep(0.01)
        before = sandbox_processes(agent)
        t0 = time.process_time_ns()
        w0 = time.monotonic_ns()
        for _ in range(a.count):
            r = sb.exec([a.program])
            if r.exit_code != 0:
                raise SystemExit("bench_exec_cpu: %s exited %r" % (a.program, r))
            if a.gap:
                time.sleep(a.gap / 1000)
        w1 = time.monotonic_ns()
        t1 = time.process_time_ns()
        after = sandbox_processes(agent)
    finally:
        sb.close()
    rows = []
    for pid in sorted(after):
        name, ns = after[pid]
        if pid in before:
            rows.append({"process": name, "pid": pid, "cpu_us_per_exec": round((ns - before[pid][1]) / 1000 / a.count, 1)})
        else:
            rows.append({"process": name, "pid": pid, "cpu_us_per_exec": None})
    res = {"tool": "bench_exec_cpu", "program": a.program, "count": a.count, "gap_ms": a.gap,
           "wall_us_per_exec": round((w1 - w0) / 1000 / a.count, 1),
           "caller_cpu_us_per_exec": round((t1 - t0) / 1000 / a.count, 1), "processes": rows}
    if a.json:
        print(json.dumps(res, indent=1))
        return
    print("%d executes of %s%s, %.1f us each (wall, with the gap)" %
          (a.count, a.program, ", %g ms apart" % a.gap if a.gap else " back to back", res["wall_us_per_exec"]))
    for row in rows:
        cpu = row["cpu_us_per_exec"]
        print("  %-16s pid %-7d %s" % (row["process"], row["pid"], "new" if cpu is None else "%.1f us of CPU per execute" % cpu))
    print("  %-16s %.1f us of CPU per execute (Python and the library)" % ("caller", res["caller_cpu_us_per_exec"]))


if __name__ == "__main__":
    main()
