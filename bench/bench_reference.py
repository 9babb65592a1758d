#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""mimobox against the reference SDK, with an anchor for every path, in one run.

The reference is the Rust SDK `mimobox-sdk` of https://github.com/showkw/mimobox,
pinned below by commit. This script:

  1. finds its source: --reference-src DIR, else $MIMOBOX_REFERENCE_SRC, else
     the cache ($MIMOBOX_CACHE_DIR, else ${XDG_CACHE_HOME:-~/.cache}/mimobox)
     /reference, cloned there at the pinned commit when missing (needs the
     network); checks that HEAD is the pinned commit and that no tracked file
     is modified (a patched reference is not the reference);
  2. builds our Rust program bench/reference (a path dependency on the
     checkout's crates/mimobox-sdk, features os + wasm only, Cargo.lock
     committed) in release mode with the reference's pinned toolchain, under
     `nice`, into the cache (nothing is built in the work tree);
  3. runs, one after the other in the same run (--rounds R repeats the whole
     sequence R times and reports the median of each figure):
       the reference (bench-reference, our program on its SDK),
       ours (build/bench/bench-os, bench-wasm, bench-sessions, bench_cli.py),
       the anchors (bwrap, posix_spawn, fork+exec + pipe, cat, Wasmtime
       through PyPI's wasmtime on the same library, bench_wasm_peer.py);
  4. prints P50 / P99 of each path and the ratios reference / ours,
     ours / anchor, reference / anchor.

A path where the reference fails on this machine is printed as
"reference: fails (reason)", with the SDK's own error, and the rest goes on.

--variant also builds and measures, in the same run, a patched copy of the
reference made in the cache (never in the pinned checkout): its os backend's
Landlock step moved after its mounts, so its os paths run on a kernel with
Landlock (docs/benchmarks.md says why the reference itself cannot).

Usage (from the repository root, after ./scripts/build.sh; as root for the
figures in docs/benchmarks.md):

  python3 bench/bench_reference.py [--reference-src DIR] [-n 200] [--rounds 1]
        [--file-mib 64] [--build-dir build] [--variant] [--json]

It only reports: it never fails because of a ratio. Not part of the tests.
"""

import argparse
import ctypes
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

REFERENCE_URL = "https://github.com/showkw/mimobox"
# The pin: master of showkw/mimobox on 2026-05-01 ("更新 llms.txt ..."), the newest
# commit of the repository when this harness was written.
REFERENCE_COMMIT = "f8e6ebd4c17778bb732a1eaaa7025d8f4b1a957b"
# The toolchain the reference pins (its rust-toolchain.toml) and builds with.
REFERENCE_TOOLCHAIN = "1.95.0"

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
CRATE = os.path.join(HERE, "reference")


def say(msg):
    print("bench_reference: " + msg, file=sys.stderr, flush=True)


def die(msg):
    say("error: " + msg)
    sys.exit(1)


def cache_dir():
    if os.environ.get("MIMOBOX_CACHE_DIR"):
        return os.environ["MIMOBOX_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.environ.get("HOME", "/root"), ".cache")
    return os.path.join(base, "mimobox")


def git(src, *args, check=True):
    r = subprocess.run(["git", "-C", src] + list(args), capture_output=True, text=True)
    if check and r.returncode != 0:
        die("git %s in %s: %s" % (" ".join(args), src, r.stderr.strip()))
    return r.stdout.strip()


def reference_source(arg):
    src = arg or os.environ.get("MIMOBOX_REFERENCE_SRC")
    if not src:
        src = os.path.join(cache_dir(), "reference")
        if not os.path.isdir(os.path.join(src, ".git")):
            say("cloning %s at %s into %s" % (REFERENCE_URL, REFERENCE_COMMIT[:12], src))
            tmp = src + ".partial"
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(os.path.dirname(src), exist_ok=True)
            r = subprocess.run(["git", "clone", "--quiet", "--no-checkout", REFERENCE_URL, tmp])
            if r.returncode != 0:
                shutil.rmtree(tmp, ignore_errors=True)
                die("cannot clone %s (no network?): fetch it elsewhere and pass --reference-src DIR "
                    "(a checkout of commit %s)" % (REFERENCE_URL, REFERENCE_COMMIT))
            git(tmp, "checkout", "--quiet", "--detach", REFERENCE_COMMIT)
            os.rename(tmp, src)
    src = os.path.abspath(src)
    if not os.path.isfile(os.path.join(src, "crates", "mimobox-sdk", "Cargo.toml")):
        die("%s is not a checkout of %s (no crates/mimobox-sdk/Cargo.toml)" % (src, REFERENCE_URL))
    head = git(src, "rev-parse", "HEAD")
    if head != REFERENCE_COMMIT:
        die("%s is at commit %s, not the pinned %s: run `git -C %s checkout %s`"
            % (src, head, REFERENCE_COMMIT, src, REFERENCE_COMMIT))
    dirty = git(src, "status", "--porcelain", "--untracked-files=no")
    if dirty:
        die("%s has modified files (%s): the reference is measured unpatched; "
            "`git -C %s checkout -- .` restores it" % (src, dirty.replace("\n", ", "), src))
    return src


# The reference's own crates that bench-reference links.
REFERENCE_CRATES = ("mimobox-core", "mimobox-os", "mimobox-wasm", "mimobox-sdk")

VARIANT = "landlock-after-mounts"
# The variant's one change, made by text on a copy of the checkout (never on
# the checkout itself): in crates/mimobox-os/src/linux.rs the child's
# Landlock block (from the first marker up to the second) moves to just
# before its seccomp step (the third marker), that is after its unshare and
# its /proc mount instead of before them. Nothing else changes.
VARIANT_FILE = "crates/mimobox-os/src/linux.rs"
VARIANT_BLOCK_START = "    // 2. \u5e94\u7528 Landlock"
VARIANT_BLOCK_END = "    // 3. unshare "
VARIANT_INSERT_BEFORE = "    // 5. \u5e94\u7528 Seccomp-bpf"


def variant_source(src):
    """A copy of the pinned checkout with the variant's change; returns its path."""
    dst = os.path.join(cache_dir(), "reference-variant-" + VARIANT)
    if not os.path.isdir(os.path.join(dst, ".git")):
        tmp = dst + ".partial"
        shutil.rmtree(tmp, ignore_errors=True)
        r = subprocess.run(["git", "clone", "--quiet", "--shared", "--no-checkout", src, tmp])
        if r.returncode != 0:
            die("cannot copy %s to %s" % (src, tmp))
        git(tmp, "checkout", "--quiet", "--detach", REFERENCE_COMMIT)
        os.rename(tmp, dst)
    git(dst, "checkout", "--quiet", "--detach", "--force", REFERENCE_COMMIT)
    path = os.path.join(dst, VARIANT_FILE)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for marker in (VARIANT_BLOCK_START, VARIANT_BLOCK_END, VARIANT_INSERT_BEFORE):
        if text.count(marker) != 1:
            die("the variant cannot be made: %r is not in %s exactly once" % (marker, VARIANT_FILE))
    a, b, c = (text.index(m) for m in (VARIANT_BLOCK_START, VARIANT_BLOCK_END, VARIANT_INSERT_BEFORE))
    if not a < b < c:
        die("the variant cannot be made: the markers of %s are not in the expected order" % VARIANT_FILE)
    block = text[a:b]
    text = text[:a] + text[b:c] + block + text[c:]
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return dst


def toolchain_env():
    cargo = shutil.which("cargo") or os.path.expanduser("~/.cargo/bin/cargo")
    if not os.path.exists(cargo):
        die("cargo is missing (rustup: https://rustup.rs, toolchain %s)" % REFERENCE_TOOLCHAIN)
    env = dict(os.environ)
    if shutil.which("rustup") or os.path.exists(os.path.expanduser("~/.cargo/bin/rustup")):
        env["RUSTUP_TOOLCHAIN"] = REFERENCE_TOOLCHAIN
    rustc = subprocess.run([os.path.join(os.path.dirname(cargo), "rustc"), "--version"], env=env,
                           capture_output=True, text=True)
    if rustc.returncode != 0 or not rustc.stdout.startswith("rustc %s " % REFERENCE_TOOLCHAIN):
        die("the reference builds with Rust %s (its rust-toolchain.toml); found %r: "
            "rustup toolchain install %s" % (REFERENCE_TOOLCHAIN, (rustc.stdout or rustc.stderr).strip(),
                                             REFERENCE_TOOLCHAIN))
    env["CARGO_TARGET_DIR"] = os.path.join(cache_dir(), "reference-target")
    return cargo, env, rustc.stdout.strip()


def link_source(crate, src):
    link = os.path.join(crate, "reference-src")
    if os.path.islink(link) or os.path.exists(link):
        if not os.path.islink(link):
            die("%s exists and is not the symbolic link this script makes" % link)
        os.unlink(link)
    os.symlink(src, link)


def build_reference(src, name):
    """Builds bench/reference against the checkout src; returns the binary's path.

    The pinned reference is built from bench/reference itself; the variant from
    a copy of that crate in the cache (another package path, so cargo keeps
    both builds of the reference's crates apart in the one target directory
    and shares the registry crates)."""
    cargo, env, rustc = toolchain_env()
    crate, package, binary = CRATE, "mimobox-reference-bench", "bench-reference"
    if name != "reference":
        # Its own package and binary name too: cargo names a root package's
        # outputs by name, so the two builds would otherwise overwrite each other.
        crate = os.path.join(cache_dir(), "reference-variant-bench")
        os.makedirs(os.path.join(crate, "src"), exist_ok=True)
        shutil.copyfile(os.path.join(CRATE, "src", "main.rs"), os.path.join(crate, "src", "main.rs"))
        for f in ("Cargo.toml", "Cargo.lock"):
            with open(os.path.join(CRATE, f)) as fh:
                text = fh.read()
            text = text.replace('name = "%s"' % package, 'name = "%s-%s"' % (package, name))
            text = text.replace('name = "%s"' % binary, 'name = "%s-%s"' % (binary, name))
            with open(os.path.join(crate, f), "w") as fh:
                fh.write(text)
        package, binary = package + "-" + name, binary + "-" + name
    link_source(crate, src)
    manifest = os.path.join(crate, "Cargo.toml")
    # The reference's crates and our program are rebuilt every time (under a
    # minute): the pinned and the variant build of a reference crate land
    # under the same name in the shared target directory, and cargo judges
    # freshness by file times, which the older pinned checkout would lose.
    # The registry crates (Wasmtime, most of the build) are shared.
    clean = [cargo, "clean", "--release", "--quiet", "--manifest-path", manifest, "-p", package]
    for dep in REFERENCE_CRATES:
        clean += ["-p", dep]
    subprocess.run(clean, env=env)
    target = env["CARGO_TARGET_DIR"]
    say("building %s: the SDK at %s (release, features os + wasm) and bench-reference, into %s"
        % (name, src, target))
    t0 = time.monotonic()
    r = subprocess.run(["nice", "-n", "10", cargo, "build", "--release", "--locked", "--quiet",
                        "--manifest-path", manifest], env=env)
    if r.returncode != 0:
        die("cargo build failed (above)")
    say("built in %.0f s (%s)" % (time.monotonic() - t0, rustc))
    out = os.path.join(target, "bench-reference-" + name)
    shutil.copy2(os.path.join(target, "release", binary), out)
    return out, rustc


def run(argv, env=None):
    r = subprocess.run(argv, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        die("%s failed (%d): %s" % (" ".join(argv), r.returncode, (r.stderr or r.stdout).strip()[-2000:]))
    return r.stdout


LINE_US = re.compile(r"^\s*(.+?)\s+p50\s+([0-9.]+) us\s+p99\s+([0-9.]+) us\s*$")


def parse_us_lines(text, prefix=""):
    out = {}
    for line in text.splitlines():
        m = LINE_US.match(line)
        if m:
            name = m.group(1)
            if prefix and name.startswith(prefix):
                name = name[len(prefix):].strip()
            out[name] = {"p50": float(m.group(2)), "p99": float(m.group(3))}
    return out


def parse_sessions(text, mib):
    """bench-sessions' table: latency in ms, throughput in MB/s (P50, slowest)."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(.+?)\s{2,}([0-9.]+)\s+([0-9.]+)\s*$", line)
        if not m:
            continue
        name, a, b = m.group(1).strip(), float(m.group(2)), float(m.group(3))
        if name.startswith("first"):
            out[name] = {"p50": a * 1e3, "p99": b * 1e3}
        else:  # MB/s -> us for `mib` MiB, so every row is a time
            size_mb = (mib << 20) / 1e6
            out[name] = {"p50": size_mb / a * 1e6, "p99": size_mb / b * 1e6}
    return out


def one_round(a, refs, b):
    """Runs every tool once; returns {tool: parsed}."""
    res = {}
    for name, ref_bin in refs:
        say("%s (bench-reference)" % name)
        res[name] = json.loads(run([ref_bin, "--module", b["noop"], "-n", str(a.n), "-w", str(a.warmup),
                                    "--file-mib", str(a.file_mib), "--json"]))
    say("ours: bench-os")
    res["bench_os"] = json.loads(run([b["bench_os"], "-n", str(a.n), "-w", str(a.warmup), "--json"]))
    # The reference's loop alternates its two wasm paths and compiles nothing
    # between them; ours is timed in the same rotation (-m disk,warm) for
    # the comparison, and in its full one (with the cold mode's compiles,
    # which evict the caches the next mode starts with) for the record.
    say("ours: bench-wasm -m disk,warm")
    res["bench_wasm"] = parse_us_lines(run([b["bench_wasm"], "-n", str(a.n), "-w", str(a.warmup), "-m", "disk,warm",
                                            b["noop"]]))
    say("ours: bench-wasm (every mode)")
    res["bench_wasm_all"] = parse_us_lines(run([b["bench_wasm"], "-n", str(a.n), "-w", str(a.warmup), b["noop"]]))
    say("anchor: Wasmtime (bench_wasm_peer.py)")
    env = dict(os.environ, PYTHONPATH=os.path.join(b["wasmtime_dir"], "py"))
    res["wasm_peer"] = parse_us_lines(run([sys.executable, os.path.join(HERE, "bench_wasm_peer.py"), "-n", str(a.n),
                                           "-w", str(a.warmup), b["noop"]], env=env), prefix="peer")
    say("ours: bench-sessions")
    res["sessions"] = parse_sessions(run([b["bench_sessions"], "-n", str(a.n), "-s", str(a.file_mib)]), a.file_mib)
    say("ours + anchor: bench_cli.py (mimobox run, bwrap)")
    res["cli"] = json.loads(run([sys.executable, os.path.join(HERE, "bench_cli.py"), "-n", str(a.n), "--json",
                                 "--mimobox", b["cli"]]))
    return res


def pick(rounds, getter):
    """The median over rounds of getter(round) (None when a round lacks it)."""
    vals = []
    for r in rounds:
        try:
            v = getter(r)
        except (KeyError, TypeError):
            v = None
        if v is not None:
            vals.append(v)
    return statistics.median(vals) if vals else None


def fig(rounds, getter):
    return {"p50": pick(rounds, lambda r: getter(r)["p50"]), "p99": pick(rounds, lambda r: getter(r)["p99"])}


def reference_cells(rounds, name, file_mib):
    """{path key: figure, or the reason it fails} for the reference build `name`."""
    r0 = rounds[0][name]
    failed, notes = r0.get("failed", {}), r0.get("notes", {})
    cells = {}
    for key in ("wasm_new_run", "wasm_warm", "os_cold", "os_warm", "first_byte"):
        cells[key] = failed[key] if key in failed else fig(rounds, lambda r: r[name]["paths"][key])
    for op in ("write", "read"):
        why = [notes.get("file_%s_%s" % (op, be)) or notes.get("file_write_%s" % be) for be in ("os", "wasm")]
        if all(why):
            cells["file_" + op] = "; ".join(why)
        else:  # a backend that took the file: timed once
            once = r0.get("once", {})
            t = [once.get("file_%s_%s" % (op, be)) for be in ("os", "wasm")]
            t = [x for x in t if x is not None]
            cells["file_" + op] = {"p50": min(t), "p99": max(t)} if t else "no figure"
    return cells


def table(rounds, file_mib, names):
    """One row per path: (path, {reference build: figure or reason}, ours, its label, anchor, its label)."""
    cells = {n: reference_cells(rounds, n, file_mib) for n in names}
    col = lambda key: {n: cells[n][key] for n in names}
    return [
        ("wasm: new sandbox + run, module in the disk cache (in process)", col("wasm_new_run"),
         fig(rounds, lambda r: r["bench_wasm"]["disk: start to exit"]), "bench-wasm -m disk,warm: disk",
         fig(rounds, lambda r: r["wasm_peer"]["instantiate"]), "Wasmtime 50 instantiate (PyPI binding, our library)"),
        ("wasm: execute in a live sandbox", col("wasm_warm"),
         fig(rounds, lambda r: r["bench_wasm"]["warm exec (live sandbox)"]), "bench-wasm -m disk,warm: warm",
         fig(rounds, lambda r: r["wasm_peer"]["instantiate"]), "Wasmtime 50 instantiate (PyPI binding, our library)"),
        ("os: new + exec /bin/true + free (cold, library)", col("os_cold"),
         fig(rounds, lambda r: r["bench_os"]["modes"]["cold"]), "bench-os cold",
         fig(rounds, lambda r: r["cli"]["modes"]["bwrap-usr"]), "bwrap --unshare-all, /usr view"),
        ("os: warm execute /bin/true", col("os_warm"),
         fig(rounds, lambda r: r["bench_os"]["modes"]["warm"]), "bench-os warm",
         fig(rounds, lambda r: r["bench_os"]["modes"]["posix_spawn"]), "posix_spawn + wait"),
        ("file write %d MiB" % file_mib, col("file_write"),
         fig(rounds, lambda r: r["sessions"]["write_file_from_fd"]), "write_file_from_fd",
         fig(rounds, lambda r: r["sessions"]["cat pipe > file"]), "cat pipe > file"),
        ("file read %d MiB" % file_mib, col("file_read"),
         fig(rounds, lambda r: r["sessions"]["read_file_to_fd"]), "read_file_to_fd",
         fig(rounds, lambda r: r["sessions"]["cat file > /dev/null"]), "cat file > /dev/null"),
        ("first streamed byte (echo x)", col("first_byte"),
         fig(rounds, lambda r: r["sessions"]["first streamed byte (spawn)"]), "spawn -> first STDOUT event",
         fig(rounds, lambda r: r["sessions"]["first byte, fork+exec + pipe"]), "fork+exec + pipe"),
    ]


def ratio(x, y, k):
    if not isinstance(x, dict) or not isinstance(y, dict) or x.get(k) is None or not y.get(k):
        return None
    return x[k] / y[k]


def fmt_ms(f):
    if f is None or f.get("p50") is None:
        return "-"
    return "%.3f / %.3f" % (f["p50"] / 1e3, f["p99"] / 1e3)


def fmt_r(x, y):
    a, b = ratio(x, y, "p50"), ratio(x, y, "p99")
    if a is None:
        return "-"
    return "%.2f / %.2f" % (a, b)


def landlock_abi():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        v = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))  # LANDLOCK_CREATE_RULESET_VERSION
        return v if v > 0 else None
    except (OSError, AttributeError):
        return None


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    distro = "?"
    if os.path.exists("/etc/os-release"):
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    distro = line.split("=", 1)[1].strip().strip('"')
    return {"cpu": cpu, "cpus": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1), "distro": distro,
            "kernel": platform.release(), "uid": os.geteuid(), "landlock_abi": landlock_abi(),
            "load_start": os.getloadavg()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference-src", help="a checkout of %s at %s (default: $MIMOBOX_REFERENCE_SRC, else "
                    "the cache)" % (REFERENCE_URL, REFERENCE_COMMIT))
    ap.add_argument("--build-dir", default=os.path.join(TOP, "build"), help="mimobox's build (./scripts/build.sh)")
    ap.add_argument("-n", type=int, default=200, help="measured iterations per path and tool (default 200)")
    ap.add_argument("-w", "--warmup", type=int, default=20, help="warm-up iterations (default 20)")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the whole sequence; medians are reported")
    ap.add_argument("--file-mib", type=int, default=64, help="file size of the file paths (default 64)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    ap.add_argument("--variant", action="store_true",
                    help="also build and measure the variant %s: the reference with its os backend's Landlock "
                    "step moved after its mounts (a patched copy in the cache; the pinned build is measured too)"
                    % VARIANT)
    a = ap.parse_args()
    if a.n < 5 or a.rounds < 1 or a.file_mib < 1:
        die("-n must be at least 5, --rounds and --file-mib at least 1")

    bd = os.path.abspath(a.build_dir)
    b = {"bench_os": os.path.join(bd, "bench", "bench-os"), "bench_wasm": os.path.join(bd, "bench", "bench-wasm"),
         "bench_sessions": os.path.join(bd, "bench", "bench-sessions"), "cli": os.path.join(bd, "mimobox"),
         "noop": os.path.join(bd, "tests", "wasm", "noop.wasm")}
    for k, p in b.items():
        if not os.path.exists(p):
            die("%s is missing: build mimobox first (./scripts/build.sh, or ninja -C %s)" % (p, a.build_dir))
    b["wasmtime_dir"] = run([os.path.join(TOP, "scripts", "wasmtime.sh"), "--dir"]).strip()

    src = reference_source(a.reference_src)
    refs = []
    if a.variant:
        # Built first, so that the pinned build is the last one in the target directory.
        refs.append(("variant", build_reference(variant_source(src), "variant")[0]))
    ref_bin, rustc = build_reference(src, "reference")
    refs.insert(0, ("reference", ref_bin))
    names = [n for n, _ in refs]

    m = machine()
    t0 = time.monotonic()
    rounds = []
    for i in range(a.rounds):
        say("round %d of %d" % (i + 1, a.rounds))
        rounds.append(one_round(a, refs, b))
    m["load_end"] = os.getloadavg()
    m["minutes"] = round((time.monotonic() - t0) / 60, 1)
    rows = table(rounds, a.file_mib, names)
    label = {"reference": "reference", "variant": "variant (%s)" % VARIANT}

    if a.json:
        out = {"tool": "bench_reference", "reference": {"url": REFERENCE_URL, "commit": REFERENCE_COMMIT,
                                                        "rustc": rustc, "features": ["os", "wasm"],
                                                        "variant": VARIANT if a.variant else None},
               "machine": m, "iterations": a.n, "warmup": a.warmup, "rounds": a.rounds, "unit": "us",
               "paths": [{"path": p, "reference": r, "ours": o, "ours_is": ol, "anchor": an, "anchor_is": al}
                         for p, r, o, ol, an, al in rows],
               "raw": rounds}
        json.dump(out, sys.stdout, indent=1)
        print()
        return 0

    print("reference: %s at %s, %s, features os + wasm, release" % (REFERENCE_URL, REFERENCE_COMMIT, rustc))
    if a.variant:
        print("variant: the same with the os backend's Landlock step moved after its mounts (%s)" % VARIANT)
    print("machine: %s, %d CPUs, %.1f GiB, %s, kernel %s, Landlock ABI %s, uid %d" %
          (m["cpu"], m["cpus"], m["memory_gib"], m["distro"], m["kernel"], m["landlock_abi"], m["uid"]))
    print("load average %.2f at the start, %.2f at the end; %d iterations per path (+%d warm-up), %d round(s), "
          "%.1f min" % (m["load_start"][0], m["load_end"][0], a.n, a.warmup, a.rounds, m["minutes"]))
    print()
    print("P50 / P99, ms (file rows: time for %d MiB)" % a.file_mib)
    for p, cells, o, ol, an, al in rows:
        print("\n" + p)
        for n in names:
            r = cells[n]
            print("  %-22s %s" % (label[n], "fails (%s)" % r if isinstance(r, str) else fmt_ms(r)))
        print("  %-22s %s  [%s]" % ("ours", fmt_ms(o), ol))
        if p.startswith("wasm: new sandbox"):
            full = fig(rounds, lambda r: r["bench_wasm_all"]["disk: start to exit"])
            print("  %-22s %s  [bench-wasm, every mode in the rotation: after a compile]" % ("ours, full rotation",
                                                                                            fmt_ms(full)))
        print("  %-22s %s  [%s]" % ("anchor", fmt_ms(an), al))
        print("  ratios (P50 / P99)     ours/anchor %s" % fmt_r(o, an))
        for n in names:
            print("  %-22s %s/ours %s, %s/anchor %s" % ("", n, fmt_r(cells[n], o), n, fmt_r(cells[n], an)))
    for n in names:
        notes = rounds[0][n].get("notes", {})
        if notes:
            print("\n%s, not timed:" % label[n])
            for k, v in sorted(notes.items()):
                print("  %-16s %s" % (k, v))
    return 0


if __name__ == "__main__":
    sys.exit(main())
