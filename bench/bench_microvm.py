#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""microvm backend benchmarks (docs/microvm.md, docs/benchmarks.md).

Report only: never fails because of a number. Run as root (the peers read
QEMU's /proc/PID/smaps of a process in another user namespace). Under TCG
(no vmx/svm) every figure is a software-emulation figure: the report says
which accelerator the library chose.

1. Cold boot to ready, alternating in the same run (the order rotates every
   round so machine noise hits all alike):
     mimobox        mbx_sandbox_new() of a microvm sandbox until it returns:
                    QEMU started in its jail, kernel, the agent as /init
                    (initramfs) building the guest's root, HELLO, INIT,
                    READY. The sandbox answers requests from then on.
     qemu-microvm   the same QEMU machine without jail, agent or initramfs:
                    `-M microvm,acpi=off`, same kernel, same squashfs as
                    /dev/vda, same memory and tb-size, `quiet`,
                    `init=/bin/sh`, console on stdio; timed from spawn until
                    the shell answers `echo MBX''READY` typed at its first
                    `# ` prompt ("to its init": the kernel ran init, init
                    reads and answers its console)
     qemu-pc        the plainest boot: `qemu-system-x86_64 -nographic -m M
                    -kernel ... -append "... init=/bin/sh" -drive
                    if=virtio,...` (SeaBIOS, PCI, VGA and e1000 defaults),
                    timed the same way
   After each timed boot (not timed) the guest is asked for /proc/uptime
   and the kernel log's `Run /...` record, which splits the host's time
   into: before the guest kernel's clock starts (QEMU start, jail, loading
   kernel and initrd), kernel to init, init to ready.
2. Command round trip: mbx_sandbox_exec({"/bin/true"}) in a booted VM
   against the same in an os sandbox, alternating.
3. File throughput through the agent: mbx_sandbox_write_file() and
   mbx_sandbox_read_file() of --mib MiB, VM against os, alternating.
4. Host memory of an idle VM: QEMU's VmRSS, smaps_rollup (Rss, Pss and
   their anon/file/shmem parts), QEMU's mappings grouped (guest RAM, TCG's
   translation buffer, heap and other anonymous memory, libraries), and
   the guest's used RAM from its /proc/meminfo; the plain qemu-microvm
   boot's RSS for comparison.

  python3 bench/bench_microvm.py [--lib build/libmimobox.so] [-n 10] [--rt 200]
                                 [--mib 64] [--transfers 5] [--memory 512]
                                 [--baseline-vm-dir DIR] [--only boot,exec,files,memory] [--json]

The guest assets: $MIMOBOX_VM_DIR, else `scripts/vm-assets.sh dir` (the
build's default); the plain QEMU boots use the same kernel and image.
"""
import argparse
import ctypes
import json
import os
import re
import select
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import mbx  # noqa: E402  (the ctypes binding the tests use)

QEMU = "/usr/bin/qemu-system-x86_64"
ISOLATION_MICROVM = 3
MIB = 1 << 20


def now():
    return time.monotonic()


def pct(xs, p):
    s = sorted(xs)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(xs):
    return {"n": len(xs), "p50": pct(xs, 50), "p99": pct(xs, 99), "min": min(xs) if xs else None,
            "max": max(xs) if xs else None}


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def accel():
    """The library's choice (mbx__vm_accel): KVM only with vmx/svm in the
    CPU flags and a read-write /dev/kvm."""
    virt = False
    with open("/proc/cpuinfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k.strip() == "flags" and ({"vmx", "svm"} & set(v.split())):
                virt = True
    ok = False
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC))
        ok = True
    except OSError:
        pass
    return "kvm" if virt and ok else "tcg"


def assets_dir():
    d = os.environ.get("MIMOBOX_VM_DIR")
    if d:
        return d
    return subprocess.run([os.path.join(ROOT, "scripts", "vm-assets.sh"), "dir"], check=True,
                          capture_output=True, text=True).stdout.strip()


class Lib(mbx.Lib):
    def __init__(self, path):
        super().__init__(path)
        l = self.lib
        l.mbx_config_set_memory_limit.restype = ctypes.c_int
        l.mbx_config_set_memory_limit.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.POINTER(ctypes.c_void_p)]
        l.mbx_config_set_disk_limit.restype = ctypes.c_int
        l.mbx_config_set_disk_limit.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.POINTER(ctypes.c_void_p)]


def config(lib, isolation, mem_mib, disk_mib):
    c = mbx.Config(lib)
    lib.lib.mbx_config_set_isolation(c.cfg, isolation, None)
    err = ctypes.c_void_p()
    if lib.lib.mbx_config_set_memory_limit(c.cfg, mem_mib * MIB, ctypes.byref(err)) != 0:
        raise mbx.MbxError("mbx_config_set_memory_limit", -1, lib.take_error(err)[1])
    if lib.lib.mbx_config_set_disk_limit(c.cfg, disk_mib * MIB, ctypes.byref(err)) != 0:
        raise mbx.MbxError("mbx_config_set_disk_limit", -1, lib.take_error(err)[1])
    return c


def qemu_pid_of(sandbox_id):
    """The QEMU whose command line holds the sandbox's run directory (its
    name is the sandbox id)."""
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if cmd.startswith(QEMU.encode()) and ("/%s/" % sandbox_id).encode() in cmd:
            return int(p)
    return None


KMSG_RUN = re.compile(rb"^\d+,\d+,(\d+),[^;]*;Run (\S+) as init process", re.M)


# ---- the boots ----

def boot_mimobox(lib, mem_mib, vm_dir=None):
    """One timed boot; vm_dir: other guest assets (MIMOBOX_VM_DIR, which the
    library reads at every VM start) for this boot only."""
    saved = os.environ.get("MIMOBOX_VM_DIR")
    if vm_dir:
        os.environ["MIMOBOX_VM_DIR"] = vm_dir
    try:
        return _boot_mimobox(lib, mem_mib)
    finally:
        if vm_dir and saved is None:
            del os.environ["MIMOBOX_VM_DIR"]
        elif vm_dir:
            os.environ["MIMOBOX_VM_DIR"] = saved


def _boot_mimobox(lib, mem_mib):
    c = config(lib, ISOLATION_MICROVM, mem_mib, 256)
    t0 = now()
    try:
        sb = mbx.Sandbox(lib, config=c)
    finally:
        c.close()
    t1 = now()
    try:
        def run(cmd):
            return sb.exec(["/bin/sh", "-c", cmd]).stdout
        out = run("grep -m1 -a 'Run /' /dev/kmsg; cat /proc/uptime")
        t2 = now()
        up = float(out.split()[-2])
        m = KMSG_RUN.search(out)
        run_init = int(m.group(1)) / 1e6 if m else None
    finally:
        sb.close()
    return t1 - t0, split(t0, t1, t2, up, run_init)


def split(t0, t_ready, t_reply, uptime, run_init):
    """Splits t0..t_ready at the guest clock's zero (t_reply - uptime: the
    host time of the answer carrying the uptime, less the uptime; late by at
    most the answer's way out) and at the kernel's `Run ... as init`."""
    zero = t_reply - uptime
    b = {"pre_kernel": zero - t0}
    if run_init is not None:
        b["kernel_to_init"] = run_init
        b["init_to_ready"] = t_ready - zero - run_init
    return b


class Console:
    """QEMU with the console on stdio: read until a pattern."""

    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.buf = b""

    def until(self, pat, timeout=120):
        end = now() + timeout
        while pat not in self.buf:
            left = end - now()
            if left <= 0 or self.p.poll() is not None:
                raise RuntimeError("QEMU: no %r on the console; it said: %r" % (pat, self.buf[-600:]))
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if r:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                if not chunk:
                    continue
                self.buf += chunk
        i = self.buf.index(pat) + len(pat)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def send(self, s):
        self.p.stdin.write(s)
        self.p.stdin.flush()

    def close(self):
        self.p.kill()
        self.p.wait()


APPEND = "console=ttyS0 quiet panic=-1 reboot=t root=/dev/vda rootfstype=squashfs ro init=/bin/sh"


def plain_argv(kind, d, mem_mib):
    k = os.path.join(d, "vmlinuz")
    r = os.path.join(d, "rootfs.squashfs")
    if kind == "qemu-microvm":
        return [QEMU, "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
                "-machine", "microvm,acpi=off", "-accel", "tcg,tb-size=64", "-smp", "1", "-m", "%dM" % mem_mib,
                "-kernel", k, "-append", APPEND,
                "-drive", "if=none,id=root,format=raw,readonly=on,file=" + r,
                "-device", "virtio-blk-device,drive=root", "-nic", "none", "-serial", "stdio"]
    return [QEMU, "-nographic", "-m", "%dM" % mem_mib, "-kernel", k, "-append", APPEND,
            "-drive", "if=virtio,format=raw,readonly=on,file=" + r]


def boot_plain(kind, d, mem_mib, rss_out=None):
    c = Console(plain_argv(kind, d, mem_mib))
    t0 = now()
    try:
        c.until(b"# ")
        c.send(b"echo MBX''READY\n")
        c.until(b"MBXREADY")
        t1 = now()
        c.send(b"mount -t proc proc /proc; cat /proc/uptime; echo UPT''END\n")
        out = c.until(b"UPTEND")
        t2 = now()
        m = re.search(rb"(\d+\.\d+) \d+\.\d+", out)
        up = float(m.group(1))
        if rss_out is not None:
            rss_out.append(proc_memory(c.p.pid))
        # The kernel log: the init's record (dmesg has no times: no
        # CONFIG_PRINTK_TIME; /dev/kmsg has them).
        c.send(b"grep -m1 -a 'Run /' /dev/kmsg; echo KM''END\n")
        km = c.until(b"KMEND")
        m = KMSG_RUN.search(km.replace(b"\r", b""))
        run_init = int(m.group(1)) / 1e6 if m else None
    finally:
        c.close()
    return t1 - t0, split(t0, t1, t2, up, run_init)


# ---- memory ----

def proc_memory(pid):
    """QEMU's memory: VmRSS, smaps_rollup, and its mappings grouped."""
    r = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmSize"):
                r[k] = int(v.split()[0]) * 1024
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Rss", "Pss", "Pss_Anon", "Pss_File", "Pss_Shmem"):
                r["rollup_" + k] = int(v.split()[0]) * 1024
    groups = {}
    cur = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            head = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                perms = head[1]
                name = head[5] if len(head) > 5 else ""
                size = hi - lo
                if "/dev/shm" in line or "mbx-ram" in line or name.startswith("/memfd"):
                    cur = "guest RAM (shared file)"
                elif name.endswith(".so") or ".so." in name or name == QEMU or "/lib" in name:
                    cur = "QEMU binary and libraries (file)"
                elif name == "[heap]":
                    cur = "heap"
                elif name.startswith("["):
                    cur = "other " + name
                elif name == "" and "x" in perms and size >= MIB:
                    cur = "TCG translation buffer (anon, rwx)"
                elif name == "":
                    cur = "other anonymous (malloc arenas, stacks)"
                else:
                    cur = "other file " + os.path.basename(name)
                g = groups.setdefault(cur, {"size": 0, "rss": 0, "pss": 0, "private": 0})
                g["size"] += size
            elif cur and head and head[0] in ("Rss:", "Pss:"):
                groups[cur][head[0][:-1].lower()] += int(head[1]) * 1024
            elif cur and head and head[0] in ("Private_Clean:", "Private_Dirty:"):
                groups[cur]["private"] += int(head[1]) * 1024
    r["groups"] = groups
    return r


def jail_procs(pid):
    """QEMU's parent (the jail's mini-init) and grandparent (the jail's
    agent): (name, VmRSS, Pss) each."""
    out = []
    for role in ("mini-init", "agent (PID 1 of the jail)"):
        with open("/proc/%d/stat" % pid) as f:
            pid = int(f.read().rsplit(")", 1)[1].split()[1])
        rss = pss = 0
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k == "Rss":
                    rss = int(v.split()[0]) * 1024
                elif k == "Pss":
                    pss = int(v.split()[0]) * 1024
        out.append((role, rss, pss))
    return out


def guest_meminfo(sb):
    out = sb.exec(["/bin/cat", "/proc/meminfo"]).stdout.decode()
    m = {}
    for line in out.splitlines():
        k, _, v = line.partition(":")
        m[k] = int(v.split()[0]) * 1024
    return {"MemTotal": m["MemTotal"], "used_total_minus_free": m["MemTotal"] - m["MemFree"],
            "reserved": 0,  # set by the caller: guest RAM - MemTotal
            "used_total_minus_available": m["MemTotal"] - m["MemAvailable"], "Shmem": m.get("Shmem", 0),
            "Cached": m.get("Cached", 0)}


# ---- main ----

def fmt_s(x):
    return "%.3f s" % x


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", default=os.path.join(ROOT, "build", "libmimobox.so"))
    ap.add_argument("-n", type=int, default=10, help="boots per mode (default 10)")
    ap.add_argument("--rt", type=int, default=200, help="exec round trips per backend (default 200)")
    ap.add_argument("--mib", type=int, default=64, help="file size for the throughput (default 64)")
    ap.add_argument("--transfers", type=int, default=5, help="writes and reads per backend (default 5)")
    ap.add_argument("--memory", type=int, default=512, help="guest RAM in MiB (default 512, the library's default)")
    ap.add_argument("--baseline-vm-dir", metavar="DIR",
                    help="also boot mimobox with these guest assets (e.g. another kernel), alternating")
    ap.add_argument("--only", default="boot,exec,files,memory", help="comma-separated parts to run")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    parts = set(a.only.split(","))
    lib = Lib(os.path.abspath(a.lib))
    d = assets_dir()
    rep = {"accel": accel(), "loadavg_start": loadavg(), "assets": d, "memory_mib": a.memory,
           "baseline_vm_dir": a.baseline_vm_dir}
    acc = rep["accel"].upper()
    say = (lambda *x: None) if a.json else (lambda *x: print(*x, flush=True))
    say("accelerator: %s   load average at start: %s   guest RAM %d MiB" % (acc, rep["loadavg_start"], a.memory))

    if "boot" in parts:
        modes = ["mimobox", "qemu-microvm", "qemu-pc"] + (["mimobox-baseline"] if a.baseline_vm_dir else [])
        times = {m: [] for m in modes}
        splits = {m: [] for m in modes}
        plain_rss = []
        for i in range(a.n):
            order = modes[i % len(modes):] + modes[:i % len(modes)]
            for m in order:
                if m == "mimobox":
                    t, b = boot_mimobox(lib, a.memory)
                elif m == "mimobox-baseline":
                    t, b = boot_mimobox(lib, a.memory, a.baseline_vm_dir)
                else:
                    t, b = boot_plain(m, d, a.memory, plain_rss if m == "qemu-microvm" and not plain_rss else None)
                times[m].append(t)
                splits[m].append(b)
        rep["boot"] = {m: summary(times[m]) for m in modes}
        rep["boot_split_p50"] = {m: {k: pct([b[k] for b in splits[m] if k in b], 50) for k in splits[m][0]}
                                 for m in modes}
        rep["qemu_microvm_rss"] = plain_rss[0] if plain_rss else None
        say("\n== cold boot to ready, %d runs each, alternating (%s) ==" % (a.n, acc))
        say("%-14s %9s %9s %9s %9s   %s" % ("mode", "P50", "P99", "min", "max", "split at P50: pre-kernel / kernel->init / init->ready"))
        for m in modes:
            s = rep["boot"][m]
            b = rep["boot_split_p50"][m]
            say("%-14s %9s %9s %9s %9s   %s" % (m, fmt_s(s["p50"]), fmt_s(s["p99"]), fmt_s(s["min"]), fmt_s(s["max"]),
                                               " / ".join(fmt_s(b[k]) for k in ("pre_kernel", "kernel_to_init", "init_to_ready") if k in b)))
        for peer in ("qemu-microvm", "qemu-pc"):
            say("ratio mimobox / %s: P50 %.2fx  P99 %.2fx" % (
                peer, rep["boot"]["mimobox"]["p50"] / rep["boot"][peer]["p50"],
                rep["boot"]["mimobox"]["p99"] / rep["boot"][peer]["p99"]))

    vm = osb = None
    if parts & {"exec", "files", "memory"}:
        c = config(lib, ISOLATION_MICROVM, a.memory, max(256, 2 * a.mib + 64))
        vm = mbx.Sandbox(lib, config=c)
        c.close()
        c = config(lib, mbx.MBX_ISOLATION_OS, a.memory, max(256, 2 * a.mib + 64))
        osb = mbx.Sandbox(lib, config=c)
        c.close()
    try:
        if "memory" in parts:
            # Idle: booted, one execute done (the meminfo read), nothing running.
            time.sleep(1.0)
            gm = guest_meminfo(vm)
            # What MemTotal leaves out: the kernel's image and its page
            # array (struct page per 4 KiB), reserved before the allocator.
            gm["reserved"] = a.memory * MIB - gm["MemTotal"]
            gm["in_use"] = gm["reserved"] + gm["used_total_minus_free"]
            pid = qemu_pid_of(vm.id)
            qm = proc_memory(pid) if pid else None
            jail = jail_procs(pid) if pid else []
            rep["memory"] = {"guest": gm, "qemu": qm, "jail_processes": jail}
            say("\n== host memory of an idle VM (%s, guest RAM %d MiB) ==" % (acc, a.memory))
            say("guest: MemTotal-MemFree %.1f MiB, MemTotal-MemAvailable %.1f MiB (Shmem %.1f, Cached %.1f); "
                "RAM-MemTotal (kernel image, page array) %.1f MiB; in use with it %.1f MiB" % (
                    gm["used_total_minus_free"] / MIB, gm["used_total_minus_available"] / MIB, gm["Shmem"] / MIB,
                    gm["Cached"] / MIB, gm["reserved"] / MIB, gm["in_use"] / MIB))
            if qm:
                say("QEMU: VmRSS %.1f MiB (anon %.1f, file %.1f, shmem %.1f); smaps_rollup Rss %.1f, Pss %.1f "
                    "(anon %.1f, file %.1f, shmem %.1f) MiB" % (
                        qm["VmRSS"] / MIB, qm["RssAnon"] / MIB, qm["RssFile"] / MIB, qm["RssShmem"] / MIB,
                        qm["rollup_Rss"] / MIB, qm["rollup_Pss"] / MIB, qm["rollup_Pss_Anon"] / MIB,
                        qm["rollup_Pss_File"] / MIB, qm["rollup_Pss_Shmem"] / MIB))
                for g, v in sorted(qm["groups"].items(), key=lambda kv: -kv[1]["rss"]):
                    if v["rss"] >= 256 * 1024:
                        say("  %-42s mapped %7.1f  Rss %6.1f  Pss %6.1f  private %6.1f MiB" % (
                            g, v["size"] / MIB, v["rss"] / MIB, v["pss"] / MIB, v["private"] / MIB))
                for name, rss, pss in jail:
                    say("  the jail's %-30s VmRSS %5.2f MiB  Pss %5.2f MiB" % (name, rss / MIB, pss / MIB))
                over = qm["VmRSS"] - gm["in_use"]
                tb = sum(v["rss"] for k, v in qm["groups"].items() if k.startswith("TCG"))
                shared = sum(v["rss"] - v["private"] for v in qm["groups"].values())
                say("QEMU's RSS beyond the guest's RAM in use: %.1f MiB (goal: at most 30); of it TCG's "
                    "translation buffer %.1f MiB, pages shared with other processes %.1f MiB" % (
                        over / MIB, tb / MIB, shared / MIB))
                rep["memory"]["beyond_guest"] = over
            pr = rep.get("qemu_microvm_rss")
            if pr:
                say("plain qemu-microvm at its prompt: VmRSS %.1f MiB (anon %.1f, file %.1f, shmem %.1f)" % (
                    pr["VmRSS"] / MIB, pr["RssAnon"] / MIB, pr["RssFile"] / MIB, pr["RssShmem"] / MIB))

        if "exec" in parts:
            lat = {"vm": [], "os": []}
            for sb in (vm, osb):  # warm-up
                for _ in range(5):
                    sb.exec(["/bin/true"])
            for i in range(a.rt):
                pair = [("vm", vm), ("os", osb)]
                if i % 2:
                    pair.reverse()
                for name, sb in pair:
                    t0 = now()
                    r = sb.exec(["/bin/true"])
                    lat[name].append(now() - t0)
                    if r.exit_code != 0:
                        raise RuntimeError("/bin/true exited %r in %s" % (r.exit_code, name))
            rep["exec"] = {k: summary(v) for k, v in lat.items()}
            say("\n== exec /bin/true round trip, %d each, alternating (VM: %s) ==" % (a.rt, acc))
            for k in ("vm", "os"):
                s = rep["exec"][k]
                say("%-3s P50 %7.2f ms  P99 %7.2f ms  min %7.2f ms" % (k, s["p50"] * 1e3, s["p99"] * 1e3, s["min"] * 1e3))

        if "files" in parts:
            data = os.urandom(a.mib * MIB)
            tp = {"vm write": [], "vm read": [], "os write": [], "os read": []}
            for i in range(a.transfers):
                pair = [("vm", vm), ("os", osb)]
                if i % 2:
                    pair.reverse()
                for name, sb in pair:
                    t0 = now()
                    sb.write_file("/workspace/bench.bin", data)
                    t1 = now()
                    back = sb.read_file("/workspace/bench.bin")
                    t2 = now()
                    if back != data:
                        raise RuntimeError("%s: the file read back differs" % name)
                    tp[name + " write"].append(a.mib / (t1 - t0))
                    tp[name + " read"].append(a.mib / (t2 - t1))
            rep["files"] = {k: summary(v) for k, v in tp.items()}
            say("\n== file throughput, %d MiB, %d transfers each, alternating (VM: %s) ==" % (a.mib, a.transfers, acc))
            for k in ("vm write", "os write", "vm read", "os read"):
                s = rep["files"][k]
                say("%-9s P50 %7.1f MiB/s  min %7.1f  max %7.1f" % (k, s["p50"], s["min"], s["max"]))
    finally:
        for sb in (vm, osb):
            if sb is not None:
                sb.close()
    rep["loadavg_end"] = loadavg()
    say("\nload average at end: %s" % rep["loadavg_end"])
    if a.json:
        print(json.dumps(rep, indent=1))


if __name__ == "__main__":
    main()
