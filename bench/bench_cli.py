#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""One-shot CLI latency: `mimobox run -- /bin/true` against bubblewrap.

Commands measured, interleaved round-robin (the starting command rotates
every round, so machine noise hits all of them alike):

  true          /bin/true                           (launcher baseline)
  mimobox       mimobox run -- /bin/true
  bwrap-usr     bwrap --unshare-all --die-with-parent --ro-bind /usr /usr
                  --symlink usr/bin /bin --symlink usr/lib /lib
                  --symlink usr/lib64 /lib64 --proc /proc --dev /dev /bin/true
                (a view comparable to mimobox's: read-only /usr, fresh /proc
                 and /dev, every namespace)
  bwrap-root    bwrap --unshare-all --ro-bind / / --proc /proc --dev /dev /bin/true

Every command is started with posix_spawn and reaped with waitpid, timed
with a monotonic clock; stdout and stderr go to /dev/null. A non-zero exit
of any run aborts the benchmark. Only the standard library is used and
nothing is installed: when bwrap is missing the bwrap rows are skipped with
a note on how to install it.

With --startup it measures the CLI process itself instead, against
/bin/true only (no bwrap): how much the program's own start costs.

  true          /bin/true                           (the peer)
  version       mimobox version                     (start, print, exit)
  help          mimobox --help
  run           mimobox run -- /bin/true

and reports each one's ratio to /bin/true at P50 and P99, and the number of
shared libraries the dynamic loader maps at start (LD_TRACE_LOADED_OBJECTS,
what ldd shows; the vDSO is not counted). --baseline OTHER adds the same
three commands of another mimobox build (rows suffixed "-base"), measured
in the same rounds: a before/after comparison that machine noise hits
alike.

The script reports; it never fails because a goal is missed.
"""

import argparse
import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import time

GOAL_MIMOBOX_OVER_BWRAP = 0.5
TRUE = "/bin/true"

BWRAP_USR_ARGS = [
    "--unshare-all", "--die-with-parent",
    "--ro-bind", "/usr", "/usr",
    "--symlink", "usr/bin", "/bin",
    "--symlink", "usr/lib", "/lib",
    "--symlink", "usr/lib64", "/lib64",
    "--proc", "/proc", "--dev", "/dev",
    TRUE,
]
BWRAP_ROOT_ARGS = ["--unshare-all", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", TRUE]


def default_mimobox():
    here = os.path.dirname(os.path.abspath(__file__))
    for cand in (os.path.join(here, "..", "build", "mimobox"), shutil.which("mimobox")):
        if cand and os.access(cand, os.X_OK):
            return os.path.abspath(cand)
    return None


def percentile(sorted_vals, p):
    """Nearest-rank percentile (the same definition as bench-os)."""
    n = len(sorted_vals)
    rank = max(1, min(n, -(-p * n // 100)))
    return sorted_vals[int(rank) - 1]


def summarize(samples_ns):
    v = sorted(samples_ns)
    us = lambda x: round(x / 1e3, 1)
    return {
        "p50": us(percentile(v, 50)),
        "p90": us(percentile(v, 90)),
        "p99": us(percentile(v, 99)),
        "mean": us(sum(v) / len(v)),
        "min": us(v[0]),
        "max": us(v[-1]),
    }


class Runner:
    def __init__(self):
        self.devnull = os.open(os.devnull, os.O_RDWR)
        self.actions = [
            (os.POSIX_SPAWN_DUP2, self.devnull, 0),
            (os.POSIX_SPAWN_DUP2, self.devnull, 1),
            (os.POSIX_SPAWN_DUP2, self.devnull, 2),
        ]
        self.env = dict(os.environ)

    def once(self, argv):
        """Runs argv to completion; returns (wall ns, wait status)."""
        t0 = time.perf_counter_ns()
        pid = os.posix_spawn(argv[0], argv, self.env, file_actions=self.actions)
        _, status = os.waitpid(pid, 0)
        t1 = time.perf_counter_ns()
        return t1 - t0, status


def startup_libraries(mimobox):
    """The shared objects mapped when mimobox starts, as ldd lists them."""
    env = dict(os.environ, LD_TRACE_LOADED_OBJECTS="1")
    p = subprocess.run([mimobox], env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    names = []
    for line in p.stdout.decode(errors="replace").splitlines():
        name = line.strip().split(" ", 1)[0]
        if name and not name.startswith("linux-vdso") and not name.startswith("linux-gate"):
            names.append(name)
    return names


def probe(argv):
    """Runs argv once with its output visible; returns an error text or None."""
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    if p.returncode != 0:
        return "exit status %d: %s" % (p.returncode, p.stderr.decode(errors="replace").strip())
    return None


def write_csv(path, commands, samples, iterations):
    with open(path, "w") as f:
        names = [name for name, _ in commands]
        f.write("iteration," + ",".join(n.replace("-", "_") + "_us" for n in names) + "\n")
        for i in range(iterations):
            f.write("%d,%s\n" % (i, ",".join("%.1f" % (samples[n][i] / 1e3) for n in names)))


def report_startup(args, commands, stats, samples, libraries):
    t = stats["true"]
    ratios = {name + "_over_true": {"p50": round(stats[name]["p50"] / t["p50"], 2),
                                    "p99": round(stats[name]["p99"] / t["p99"], 2)}
              for name, _ in commands if name != "true"}
    if args.csv:
        write_csv(args.csv, commands, samples, args.iterations)
    if args.json:
        out = {
            "tool": "bench_cli",
            "mode": "startup",
            "kernel": platform.release(),
            "cpus": os.cpu_count(),
            "uid": os.geteuid(),
            "iterations": args.iterations,
            "warmup": args.warmup,
            "unit": "us",
            "commands": {name: " ".join(argv) for name, argv in commands},
            "modes": stats,
            "ratios": ratios,
            "libraries": libraries,
        }
        json.dump(out, sys.stdout, indent=2)
        print()
        return 0
    print("bench_cli --startup: kernel %s, %d CPUs, uid %d" % (platform.release(), os.cpu_count(), os.geteuid()))
    print("%d runs per command (+%d warm-up rounds), round-robin, posix_spawn + waitpid" %
          (args.iterations, args.warmup))
    for name, argv in commands:
        print("  %-13s %s" % (name, " ".join(argv)))
    for build, libs in libraries.items():
        print("shared libraries %s maps at start: %d (%s)" % (build, len(libs), " ".join(libs)))
    print()
    print("%-13s %9s %9s %9s %9s %9s %9s %12s %12s" %
          ("command (ms)", "P50", "P90", "P99", "mean", "min", "max", "P50 / true", "P99 / true"))
    for name, _ in commands:
        s = stats[name]
        r = ratios.get(name + "_over_true", {"p50": 1.0, "p99": 1.0})
        print("%-13s %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %12.2f %12.2f" %
              (name, s["p50"] / 1e3, s["p90"] / 1e3, s["p99"] / 1e3, s["mean"] / 1e3, s["min"] / 1e3,
               s["max"] / 1e3, r["p50"], r["p99"]))
    return 0


def main():
    ap = argparse.ArgumentParser(
        description="One-shot `mimobox run -- /bin/true` against bwrap and /bin/true; with --startup, "
        "the CLI's own start (`mimobox version`, `mimobox --help`, `mimobox run -- /bin/true`) against /bin/true.")
    ap.add_argument("-n", "--iterations", type=int, default=300, help="measured runs per command (default 300)")
    ap.add_argument("-w", "--warmup", type=int, default=10, help="uncounted rounds first (default 10)")
    ap.add_argument("--mimobox", default=default_mimobox(), help="mimobox CLI (default: build/mimobox, then PATH)")
    ap.add_argument("--bwrap", default=shutil.which("bwrap"), help="bwrap binary (default: from PATH)")
    ap.add_argument("--startup", action="store_true",
                    help="measure the CLI's start: `mimobox version`, `mimobox --help` and "
                    "`mimobox run -- /bin/true` against /bin/true, with ratios and the library count (no bwrap)")
    ap.add_argument("--baseline", metavar="MIMOBOX",
                    help="with --startup: also measure this other mimobox build in the same rounds (before/after)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    ap.add_argument("--csv", metavar="FILE", help="write every sample (microseconds) to FILE")
    args = ap.parse_args()

    if args.iterations < 1 or args.warmup < 0:
        ap.error("iterations must be >= 1 and warm-up >= 0")
    if not args.mimobox or not os.access(args.mimobox, os.X_OK):
        ap.error("mimobox CLI not found: build it (ninja -C build) or pass --mimobox PATH")
    mimobox = os.path.abspath(args.mimobox)

    notes = []
    commands = [("true", [TRUE]), ("mimobox", [mimobox, "run", "--", TRUE])]
    if args.startup:
        builds = [("", mimobox)]
        if args.baseline:
            if not os.access(args.baseline, os.X_OK):
                ap.error("--baseline %s: not an executable" % args.baseline)
            builds.append(("-base", os.path.abspath(args.baseline)))
        commands = [("true", [TRUE])]
        for suffix, m in builds:
            commands += [("version" + suffix, [m, "version"]), ("help" + suffix, [m, "--help"]),
                         ("run" + suffix, [m, "run", "--", TRUE])]
    elif args.baseline:
        ap.error("--baseline needs --startup")
    elif not args.bwrap:
        notes.append("bwrap not found: bwrap rows skipped; install it with `apt-get install bubblewrap`")
    else:
        bwrap = os.path.abspath(args.bwrap)
        for name, extra in (("bwrap-usr", BWRAP_USR_ARGS), ("bwrap-root", BWRAP_ROOT_ARGS)):
            why = probe([bwrap] + extra)
            if why:
                notes.append("%s does not work here (%s): skipped" % (name, why))
            else:
                commands.append((name, [bwrap] + extra))
    for name, argv in commands[1:]:
        if name.startswith("bwrap"):
            continue
        why = probe(argv)
        if why:
            print("bench_cli: `%s` fails: %s" % (" ".join(argv), why), file=sys.stderr)
            return 1

    runner = Runner()
    samples = {name: [] for name, _ in commands}
    total = args.warmup + args.iterations
    k = len(commands)
    gc.disable()
    try:
        for rnd in range(total):
            for j in range(k):
                name, argv = commands[(rnd + j) % k]
                ns, status = runner.once(argv)
                if status != 0:
                    print("bench_cli: %s: wait status 0x%x in round %d" % (" ".join(argv), status, rnd),
                          file=sys.stderr)
                    return 1
                if rnd >= args.warmup:
                    samples[name].append(ns)
    finally:
        gc.enable()

    stats = {name: summarize(samples[name]) for name, _ in commands}
    if args.startup:
        libraries = {"mimobox": startup_libraries(mimobox)}
        if args.baseline:
            libraries["baseline"] = startup_libraries(os.path.abspath(args.baseline))
        return report_startup(args, commands, stats, samples, libraries)
    ratios = {}
    for peer in ("bwrap-usr", "bwrap-root"):
        if peer not in stats:
            continue
        m, b, t = stats["mimobox"], stats[peer], stats["true"]
        ratios["mimobox_over_" + peer.replace("-", "_")] = {
            "p50": round(m["p50"] / b["p50"], 3),
            "p99": round(m["p99"] / b["p99"], 3),
            # Both minus the cost of starting /bin/true itself from this launcher.
            "p50_net_of_true": round((m["p50"] - t["p50"]) / max(b["p50"] - t["p50"], 1e-9), 3),
        }

    if args.csv:
        write_csv(args.csv, commands, samples, args.iterations)

    goal = ratios.get("mimobox_over_bwrap_usr")
    if args.json:
        for n in notes:
            print("bench_cli: note: " + n, file=sys.stderr)
        out = {
            "tool": "bench_cli",
            "kernel": platform.release(),
            "cpus": os.cpu_count(),
            "uid": os.geteuid(),
            "iterations": args.iterations,
            "warmup": args.warmup,
            "unit": "us",
            "commands": {name: " ".join(argv) for name, argv in commands},
            "modes": stats,
            "ratios": ratios,
            "goals": {
                "mimobox_over_bwrap_max": GOAL_MIMOBOX_OVER_BWRAP,
                "p50_met": goal["p50"] <= GOAL_MIMOBOX_OVER_BWRAP if goal else None,
                "p99_met": goal["p99"] <= GOAL_MIMOBOX_OVER_BWRAP if goal else None,
            },
            "notes": notes,
        }
        json.dump(out, sys.stdout, indent=2)
        print()
        return 0

    print("bench_cli: kernel %s, %d CPUs, uid %d" % (platform.release(), os.cpu_count(), os.geteuid()))
    print("%d runs per command (+%d warm-up rounds), round-robin, posix_spawn + waitpid" %
          (args.iterations, args.warmup))
    for name, argv in commands:
        print("  %-10s %s" % (name, " ".join(argv)))
    for n in notes:
        print("note: " + n)
    print()
    print("%-12s %9s %9s %9s %9s %9s %9s" % ("command (ms)", "P50", "P90", "P99", "mean", "min", "max"))
    for name, _ in commands:
        s = stats[name]
        print("%-12s %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f" %
              (name, s["p50"] / 1e3, s["p90"] / 1e3, s["p99"] / 1e3, s["mean"] / 1e3, s["min"] / 1e3, s["max"] / 1e3))
    if ratios:
        print()
        print("ratios                      P50      P99   P50 net of /bin/true")
        for key, r in ratios.items():
            label = key.replace("mimobox_over_", "mimobox / ").replace("_", "-")
            line = "%-24s %8.2f %8.2f %8.2f" % (label, r["p50"], r["p99"], r["p50_net_of_true"])
            if key == "mimobox_over_bwrap_usr":
                line += "   goal <= %.1f: P50 %s, P99 %s" % (
                    GOAL_MIMOBOX_OVER_BWRAP,
                    "met" if r["p50"] <= GOAL_MIMOBOX_OVER_BWRAP else "NOT met",
                    "met" if r["p99"] <= GOAL_MIMOBOX_OVER_BWRAP else "NOT met")
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
