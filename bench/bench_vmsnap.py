#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""microVM snapshot benchmarks (docs/snapshots.md, docs/benchmarks.md).

Report only: never fails because of a number. Run as root (it reads the
PSS of QEMU processes in other user namespaces). Under TCG (no vmx/svm)
every figure is a software-emulation figure.

1. Snapshot of a booted, idle VM (mbx_sandbox_snapshot): time, the size of
   QEMU's device state and of the memory (the guest's RAM pages that hold
   data; the rest are holes), and the bytes of mbx_snapshot_to_bytes().
2. Restore to ready against a cold boot, alternating in the same run:
     restore  mbx_sandbox_from_snapshot() until it returns: QEMU started in
              its jail with -incoming defer and the snapshot's memory mapped
              copy-on-write, the device state fed in, the guest agent's
              session resumed, the clone's new identity given. The sandbox
              answers requests from then on.
     boot     mbx_sandbox_new() of the same config (bench_microvm.py's
              "mimobox").
   and the first command after each (mbx_sandbox_exec of /bin/true).
3. Fork of ten: one snapshot of a booted VM and ten restores of it,
   one after the other and then at once (ten threads, as `mimobox fork
   NAME --count 10` runs ten supervisors), total time; then each child's
   QEMU PSS (whole process, and its guest-RAM mapping) while all ten run,
   against a cold-booted VM's.

  python3 bench/bench_vmsnap.py [--lib build/libmimobox.so] [-n 10] [--forks 10]
                                [--memory 512] [--only snapshot,restore,fork] [--json]
"""
import argparse
import ctypes
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.path.insert(0, HERE)
import mbx  # noqa: E402

# The statistics and the accelerator check are bench_microvm.py's.
from bench_microvm import ISOLATION_MICROVM, MIB, accel, now, pct, summary  # noqa: E402


class Lib(mbx.Lib):
    def __init__(self, path):
        super().__init__(path)
        self.lib.mbx_config_set_memory_limit.restype = ctypes.c_int
        self.lib.mbx_config_set_memory_limit.argtypes = [ctypes.c_void_p, ctypes.c_uint64,
                                                         ctypes.POINTER(ctypes.c_void_p)]


def config(lib, mem_mib):
    c = mbx.Config(lib)
    lib.lib.mbx_config_set_isolation(c.cfg, ISOLATION_MICROVM, None)
    if lib.lib.mbx_config_set_memory_limit(c.cfg, mem_mib * MIB, None) != 0:
        raise RuntimeError("memory limit refused")
    return c


def boot(lib, mem_mib):
    c = config(lib, mem_mib)
    try:
        return mbx.Sandbox(lib, config=c)
    finally:
        c.close()


def qemu_pids():
    out = subprocess.run(["pgrep", "-f", "^/usr/bin/qemu-system"], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def pss(pid):
    """(whole PSS, PSS of the guest-RAM mapping) in MiB."""
    total, ram, cur = 0, 0, None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            if not line[0].isupper() or line.startswith("VmFlags"):
                cur = line.split()
                continue
            if line.startswith("Pss:"):
                kib = int(line.split()[1])
                total += kib
                if cur and len(cur) > 5 and (cur[5].startswith("/memfd:mimobox-snapshot-memory") or
                                             cur[5] == "/dev/shm/guest-ram"):
                    ram += kib
    return total / 1024.0, ram / 1024.0


def ms(x):
    return "%.1f ms" % (x * 1000)


def bench_snapshot(lib, a, rep):
    vm = boot(lib, a.memory)
    times, sizes = [], None
    try:
        vm.exec(["/bin/true"])
        for _ in range(a.n):
            t0 = now()
            snap = mbx.Snapshot.of(vm)
            times.append(now() - t0)
            if sizes is None:
                mem, fd = snap.memory_size()
                data = 0
                if fd >= 0:
                    st = os.fstat(fd)
                    data = st.st_blocks * 512
                sizes = {"device_state": snap.size(), "memory": mem, "memory_data": data,
                         "bytes": len(snap.to_bytes())}
            snap.close()
    finally:
        vm.close()
    rep["snapshot"] = {"time_s": summary(times), "sizes": sizes}
    s = rep["snapshot"]
    print("snapshot of an idle %d MiB VM: P50 %s P99 %s (n=%d); device state %.1f KiB, memory with data %.1f MiB "
          "of %d MiB, as bytes %.1f MiB" % (a.memory, ms(s["time_s"]["p50"]), ms(s["time_s"]["p99"]), a.n,
                                             sizes["device_state"] / 1024.0, sizes["memory_data"] / MIB,
                                             sizes["memory"] // MIB, sizes["bytes"] / MIB))


def bench_restore(lib, a, rep):
    vm = boot(lib, a.memory)
    try:
        vm.exec(["/bin/true"])
        snap = mbx.Snapshot.of(vm)
    finally:
        vm.close()
    res = {"restore": [], "boot": [], "restore_first_cmd": [], "boot_first_cmd": []}
    try:
        for i in range(a.n):
            for kind in (("restore", "boot") if i % 2 == 0 else ("boot", "restore")):
                t0 = now()
                sb = snap.restore() if kind == "restore" else boot(lib, a.memory)
                t1 = now()
                sb.exec(["/bin/true"])
                t2 = now()
                sb.close()
                res[kind].append(t1 - t0)
                res[kind + "_first_cmd"].append(t2 - t1)
    finally:
        snap.close()
    rep["restore"] = {k: summary(v) for k, v in res.items()}
    r = rep["restore"]
    print("restore to ready: P50 %s P99 %s; cold boot to ready: P50 %s P99 %s (n=%d, alternating); "
          "restore/boot P50 %.3fx" % (ms(r["restore"]["p50"]), ms(r["restore"]["p99"]), ms(r["boot"]["p50"]),
                                      ms(r["boot"]["p99"]), a.n, r["restore"]["p50"] / r["boot"]["p50"]))
    print("first command after: restore P50 %s, boot P50 %s" % (ms(r["restore_first_cmd"]["p50"]),
                                                             ms(r["boot_first_cmd"]["p50"])))


def bench_fork(lib, a, rep):
    parent = boot(lib, a.memory)
    kids = []
    try:
        parent.exec(["/bin/true"])
        before = qemu_pids()
        t0 = now()
        snap = mbx.Snapshot.of(parent)
        t1 = now()
        for _ in range(a.forks):
            kids.append(snap.restore())
        t2 = now()
        # At once: a thread per restore (the library makes sandboxes in
        # several threads; each handle is used by one).
        par, errs = [], []

        def one():
            try:
                par.append(snap.restore())
            except Exception as e:  # reported below
                errs.append(e)
        threads = [threading.Thread(target=one) for _ in range(a.forks)]
        t3 = now()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        t4 = now()
        for k in par:
            k.close()
        if errs:
            raise errs[0]
        snap.close()
        for k in kids:
            k.exec(["/bin/true"])
        time.sleep(1)
        pids = sorted(qemu_pids() - before)
        child = [pss(p) for p in pids]
        ref = [pss(p) for p in (qemu_pids() & before)]
        rep["fork"] = {"n": a.forks, "snapshot_s": t1 - t0, "restores_s": t2 - t1, "total_s": t2 - t0,
                       "parallel_restores_s": t4 - t3, "parallel_total_s": (t1 - t0) + (t4 - t3),
                       "child_pss_mib": [c[0] for c in child], "child_ram_pss_mib": [c[1] for c in child],
                       "parent_pss_mib": ref[0][0] if ref else None, "guest_ram_mib": a.memory}
        f = rep["fork"]
        print("fork of %d: total %s (snapshot %s + %d restores %s one after the other); at once: total %s "
              "(restores %s)" % (a.forks, ms(f["total_s"]), ms(f["snapshot_s"]), a.forks, ms(f["restores_s"]),
                                 ms(f["parallel_total_s"]), ms(f["parallel_restores_s"])))
        print("child PSS: P50 %.1f MiB, max %.1f MiB (guest RAM mapping P50 %.1f MiB); parent (booted) PSS %.1f MiB; "
              "guest RAM %d MiB (quarter: %d MiB)" % (pct(f["child_pss_mib"], 50), max(f["child_pss_mib"]),
                                                       pct(f["child_ram_pss_mib"], 50), f["parent_pss_mib"] or 0,
                                                       a.memory, a.memory // 4))
    finally:
        for k in kids:
            k.close()
        parent.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", default=os.path.join(HERE, "..", "build", "libmimobox.so"))
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--forks", type=int, default=10)
    ap.add_argument("--memory", type=int, default=512)
    ap.add_argument("--only", default="snapshot,restore,fork")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    lib = Lib(a.lib)
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    rep = {"accelerator": accel(), "load_before": load}
    print("accelerator: %s; load %s" % (rep["accelerator"], " ".join(load)))
    only = a.only.split(",")
    if "snapshot" in only:
        bench_snapshot(lib, a, rep)
    if "restore" in only:
        bench_restore(lib, a, rep)
    if "fork" in only:
        bench_fork(lib, a, rep)
    with open("/proc/loadavg") as f:
        rep["load_after"] = f.read().split()[:3]
    if a.json:
        print(json.dumps(rep, indent=1))


if __name__ == "__main__":
    main()
