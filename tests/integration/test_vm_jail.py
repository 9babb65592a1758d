# SPDX-License-Identifier: Apache-2.0
"""QEMU's jail (src/backend/microvm/jail.c, docs/microvm.md "QEMU's jail"):
QEMU runs as the one process of an os sandbox of its own. Driven through
the `vm-jail` helper (tests/helpers/vm-jail.c), which boots the guest assets
under TCG with `init=/bin/sh` and the console in the run directory.

Needs qemu-system-x86_64 and the guest assets: $MIMOBOX_VM_DIR, else
`scripts/vm-assets.sh dir` (an unprivileged run needs MIMOBOX_VM_DIR
pointing at a copy it can read). Each boot takes a few seconds of TCG.
"""
import os
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import HELPERS, cgroup_dirs, host_env

REPO = Path(__file__).resolve().parent.parent.parent
QEMU = "/usr/bin/qemu-system-x86_64"
VM_JAIL = os.path.join(HELPERS, "vm-jail")


def _assets():
    d = os.environ.get("MIMOBOX_VM_DIR")
    if not d:
        try:
            d = subprocess.run([str(REPO / "scripts" / "vm-assets.sh"), "dir"], capture_output=True, text=True,
                               timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            d = ""
    ok = d and all(os.access(os.path.join(d, f), os.R_OK) for f in ("vmlinuz", "rootfs.squashfs"))
    return d if ok else None


@pytest.fixture(scope="module")
def assets():
    # Optional parts (the README's build makes neither): a plain skip.
    if not os.access(QEMU, os.X_OK):
        pytest.skip("no %s" % QEMU)
    if not os.path.exists(VM_JAIL):
        pytest.fail("the vm-jail helper is not built: ninja -C build")
    d = _assets()
    if d is None:
        pytest.skip("no readable guest assets (build them with scripts/vm-assets.sh, or set MIMOBOX_VM_DIR)")
    return d


@pytest.fixture
def run_dir(host_tmp):
    """A fresh run directory of the caller's, mode 0700."""
    d = os.path.join(host_tmp, "run")
    os.mkdir(d, 0o700)
    return d


@pytest.fixture(scope="module")
def tcg_opts():
    """A 64 MiB translation buffer and the memory the jail then needs (the
    rlimit rung requires the former, see jail.h)."""
    return ["--tb-size", "64", "--memory", "384", "--guest", "192"]


class Helper:
    """A running `vm-jail` helper and the lines it printed."""

    def __init__(self, args, guard, prefix=None):
        self.guard = guard
        self.p = subprocess.Popen((prefix or [VM_JAIL]) + [str(a) for a in args], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=host_env())
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.p.stdout, selectors.EVENT_READ)
        self.buf = b""
        self.lines = []
        self.err = None

    def expect(self, prefix, timeout=60):
        """The first line starting with `prefix` (waiting up to timeout s)."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if line.startswith(prefix):
                    return line
            left = deadline - time.monotonic()
            if left <= 0 or not self.sel.select(left):
                break
            chunk = os.read(self.p.stdout.fileno(), 4096)
            if not chunk:
                break
            self.buf += chunk
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                self.lines.append(line.decode(errors="replace"))
        raise AssertionError("no `%s` line from vm-jail; got %r; stderr %r" % (prefix, self.lines, self.stderr()))

    def stderr(self):
        if self.err is None:
            return "(running)"
        return self.err

    def finish(self, timeout=30):
        """Waits for the helper to end; its remaining output is kept."""
        try:
            out, err = self.p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.communicate()
            raise
        self.buf += out
        self.lines += [l.decode(errors="replace") for l in self.buf.split(b"\n") if l]
        self.buf = b""
        self.err = err.decode(errors="replace")
        self.sel.close()
        return self.p.returncode


def _note_sandbox(guard, pid):
    """Records the jail's sandbox id (from QEMU's cgroup) for the guard's
    cgroup check; returns the id or None (no cgroup: the rlimit rung)."""
    try:
        with open("/proc/%d/cgroup" % pid) as f:
            text = f.read()
    except OSError:
        return None
    m = re.search(r"/mimobox/(?:mimobox-)?([0-9a-f]{16})(?:/|$)", text, re.M)
    if m:
        guard.ids.add(m.group(1))
        return m.group(1)
    return None


def _status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def _ns(pid, kind):
    return os.readlink("/proc/%d/ns/%s" % (pid, kind))


def test_boots_in_jail_then_sigkill_is_noticed_and_nothing_remains(assets, run_dir, tcg_opts, guard):
    h = Helper(["boot", "--assets", assets, "--run", run_dir, "--wait-exit", "30"] + tcg_opts, guard)
    pid = int(h.expect("pid ").split()[1])
    sid = _note_sandbox(guard, pid)
    h.expect("booted ", timeout=60)
    assert h.expect("qmp ") == "qmp OK", "the host could not talk to QMP on the socket QEMU made in the run directory"
    # The layers, seen from outside.
    st = _status(pid)
    assert st["NoNewPrivs"].strip() == "1"
    assert st["Seccomp"].strip() == "2"
    if "Seccomp_filters" in st:  # Linux 5.10: the jail's program and QEMU's own `-sandbox on`
        assert int(st["Seccomp_filters"]) >= 2, st["Seccomp_filters"]
    assert int(st["CapEff"], 16) == 0 and int(st["CapBnd"], 16) == 0
    for kind in ("user", "mnt", "net", "pid", "ipc", "uts"):
        assert _ns(pid, kind) != _ns(os.getpid(), kind), kind
    assert os.path.exists(os.path.join(run_dir, "qmp.sock")) and os.path.exists(os.path.join(run_dir, "agent.sock"))
    console = Path(run_dir, "console.log").read_text(errors="replace")
    assert "Run /bin/sh as init process" in console
    assert "Kernel command line:" in console and "init=/bin/sh" in console and "root=/dev/vda" in console

    # Killed from outside: the poll fd fires at once, stop leaves nothing.
    os.kill(pid, signal.SIGKILL)
    line = h.expect("exited ", timeout=10)
    status, ms = int(line.split()[1]), int(line.split()[2])
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, line
    assert ms < 2000, "the poll fd took %d ms to report QEMU's death" % ms
    h.expect("stopped")
    assert h.finish() == 0, h.stderr()
    assert not os.path.exists("/proc/%d" % pid)
    assert sorted(os.listdir(run_dir)) == ["console.log"], "sockets left in the run directory"
    if sid:
        assert cgroup_dirs(sid) == []


def test_stop_of_a_running_vm_leaves_nothing(assets, run_dir, tcg_opts, guard):
    h = Helper(["boot", "--assets", assets, "--run", run_dir, "--no-wait"] + tcg_opts, guard)
    pid = int(h.expect("pid ").split()[1])
    sid = _note_sandbox(guard, pid)
    h.expect("booted ", timeout=60)
    h.expect("stopped", timeout=30)
    assert h.finish() == 0, h.stderr()
    assert not os.path.exists("/proc/%d" % pid)
    assert sorted(os.listdir(run_dir)) == ["console.log"]
    if sid:
        assert cgroup_dirs(sid) == []
    # the guard checks processes and the state directory


@pytest.fixture
def secret_dir(host_tmp):
    """A directory outside the jail's view holding copies of the assets
    (readable by the caller: only the mount view keeps QEMU out)."""
    d = tempfile.mkdtemp(prefix="secret-", dir=host_tmp)
    os.chmod(d, 0o755)
    return d


@pytest.mark.parametrize("what", ["kernel", "rootfs", "etc-shadow"])
def test_qemu_cannot_open_host_files_outside_its_view(assets, run_dir, secret_dir, tcg_opts, guard, what):
    args = ["boot", "--assets", assets, "--run", run_dir, "--wait-exit", "20"] + tcg_opts
    if what == "kernel":
        path = os.path.join(secret_dir, "vmlinuz")
        shutil.copyfile(os.path.join(assets, "vmlinuz"), path)
        args += ["--kernel", path]
    elif what == "rootfs":
        path = os.path.join(secret_dir, "rootfs.squashfs")
        shutil.copyfile(os.path.join(assets, "rootfs.squashfs"), path)
        args += ["--rootfs", path]
    else:
        path = "/etc/shadow"
        args += ["--kernel", path]
    if what != "etc-shadow":
        os.chmod(path, 0o644)
    h = Helper(args, guard)
    h.expect("pid ")
    line = h.expect("exited ", timeout=30)
    status = int(line.split()[1])
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) != 0, line
    err = h.expect("stderr ")
    assert path in err and "No such file or directory" in err, err
    h.expect("stopped")
    assert h.finish() == 0, h.stderr()
    assert not any(l.startswith("booted") for l in h.lines)


def test_run_dir_must_be_the_callers_and_private(assets, host_tmp, tcg_opts, guard):
    d = os.path.join(host_tmp, "open-run")
    os.mkdir(d)
    os.chmod(d, 0o777)
    h = Helper(["boot", "--assets", assets, "--run", d] + tcg_opts, guard)
    assert h.finish() == 1
    err = h.stderr()
    assert "[vm-jail]" in err and "writable by others" in err, err
    assert not any(l.startswith("pid") for l in h.lines)


def test_rlimit_rung_needs_a_sized_translation_buffer(assets, run_dir, limits_mech, guard):
    if limits_mech != "rlimit":
        pytest.skip("this caller gets cgroup limits here: the translation buffer is not counted up front")
    # The argv builder sizes the buffer itself: --plain-tcg drops tb-size=.
    h = Helper(["boot", "--assets", assets, "--run", run_dir, "--memory", "384", "--plain-tcg"], guard)
    assert h.finish() == 1
    err = h.stderr()
    assert "[limits]" in err and "tb-size=" in err, err


def test_qemu_dies_with_a_killed_host_process(assets, run_dir, tcg_opts, guard, host_tmp):
    h = Helper(["boot", "--assets", assets, "--run", run_dir, "--wait-exit", "60"] + tcg_opts, guard)
    pid = int(h.expect("pid ").split()[1])
    sid = _note_sandbox(guard, pid)
    h.expect("booted ", timeout=60)
    h.p.kill()  # the host process dies without stopping anything
    h.finish()
    deadline = time.monotonic() + 5
    while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not os.path.exists("/proc/%d" % pid), "QEMU outlived the process that started its jail"
    # The dead jail's state (and cgroups) are collected by the next sandbox
    # made, as for any os sandbox; its sockets stay in the caller's run dir.
    again = os.path.join(host_tmp, "run2")
    os.mkdir(again, 0o700)
    b = Helper(["bench", "--assets", assets, "--run", again, "--runs", "1"] + tcg_opts, guard)
    assert b.finish() == 0, b.stderr()
    if sid:
        assert cgroup_dirs(sid) == []


@pytest.mark.parametrize("args,text", [
    (["--memory", "32"], "at least 64 MiB"),
    (["--ro", "relative/path"], "must be an absolute path"),
])
def test_bad_requests_are_refused_naming_the_jail(assets, run_dir, guard, args, text):
    h = Helper(["boot", "--assets", assets, "--run", run_dir, "--tb-size", "64"] + args, guard)
    assert h.finish() == 1
    err = h.stderr()
    assert "[vm-jail]" in err and text in err, err
    assert not any(l.startswith("pid") for l in h.lines)


# ---- KVM: /dev/kvm bound into the jail's view ----
#
# The jail opens the host's /dev/kvm with its own credentials: for a root
# caller an unmapped uid (only the device's "others" bits count), for an
# unprivileged caller the caller's uid. A root test makes the device node it
# needs in a private mount namespace of its own (a node of the same device
# with the mode the case needs, bound over /dev/kvm there), so the host's
# /dev/kvm is never changed.

KVM_NODE = "/dev/kvm"


def _kvm_rw_for_others():
    try:
        st = os.stat(KVM_NODE)
    except OSError:
        return False
    return (st.st_mode & 0o006) == 0o006


def _with_kvm_node(host_tmp, node):
    """A command prefix running the rest in a private mount namespace where
    /dev/kvm is `node`: ("mode", 0o666) a char device 10:232 of that mode,
    or ("file", None) a regular file."""
    t = os.path.join(host_tmp, "kvmnode")
    os.mkdir(t)
    kind, mode = node
    make = ("mknod -m %o %s/kvm c 10 232" % (mode, t)) if kind == "mode" else (": > %s/kvm" % t)
    script = 'mount -t tmpfs none %s && %s && mount --bind %s/kvm %s && exec "$@"' % (t, make, t, KVM_NODE)
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", VM_JAIL]


def _kvm_helper(host_tmp, node, args, guard):
    if node is None:
        return Helper(args, guard)
    return Helper(args, guard, prefix=_with_kvm_node(host_tmp, node))


@pytest.fixture
def kvm_present():
    if not os.path.exists(KVM_NODE):
        pytest.skip("no /dev/kvm on this host: QEMU's jail cannot be given one")


def test_qemu_opens_kvm_inside_its_jail(assets, run_dir, kvm_present, guard, host_tmp):
    # QEMU with `-accel kvm -S`: KVM is initialised (the vCPU made) but the
    # guest never runs, so a paravirtual /dev/kvm that cannot boot our
    # kernel still answers; QMP's query-kvm says whether QEMU uses it.
    if os.geteuid() == 0:
        node = ("mode", 0o666)
    elif _kvm_rw_for_others():
        node = None
    else:
        pytest.skip("/dev/kvm is not read-write for others here, and only root can give a private "
                    "mount namespace a node that is")
    h = _kvm_helper(host_tmp, node, ["kvm", "--assets", assets, "--run", run_dir], guard)
    pid = int(h.expect("pid ").split()[1])
    _note_sandbox(guard, pid)
    try:
        line = h.expect("query-kvm ", timeout=60)
    except AssertionError:
        # Some hosts' KVM (a nested, paravirtual one) refuses the vCPU QEMU
        # sets up: QEMU then aborts in its MSR setup, which it reaches only
        # after it opened /dev/kvm in its jail and made the VM and the vCPU.
        # That is the jail's part; a jail that kept the device from QEMU
        # ends before ("Could not access KVM kernel module").
        h.finish()
        qemu = " ".join(l for l in h.lines if l.startswith("stderr "))
        assert re.search(r"failed to set MSR|kvm_buf_set_msrs", qemu), h.lines
        assert "Could not access KVM" not in qemu and "Permission denied" not in qemu, h.lines
        return
    assert h.finish() == 0, h.stderr()
    assert '"enabled": true' in line and '"present": true' in line, line


def test_a_kvm_the_jail_cannot_open_fails_closed(assets, run_dir, kvm_present, guard, host_tmp):
    if os.geteuid() == 0:
        node = ("mode", 0o600)  # root's only: the jail's unmapped uid has no right to it
    elif not os.access(KVM_NODE, os.R_OK | os.W_OK):
        node = None
    else:
        pytest.skip("this caller can open /dev/kvm here, so its jail can too")
    h = _kvm_helper(host_tmp, node, ["kvm", "--assets", assets, "--run", run_dir], guard)
    assert h.finish() == 1
    err = h.stderr()
    assert "[vm-jail]" in err and "cannot open /dev/kvm read-write" in err and "Permission denied" in err, err
    assert not any(l.startswith(("pid", "query-kvm")) for l in h.lines), h.lines


def test_kvm_without_a_device_node_is_refused(assets, run_dir, guard, host_tmp):
    if os.path.exists(KVM_NODE) and os.geteuid() != 0:
        pytest.skip("this host has /dev/kvm; only root can hide it in a private mount namespace")
    node = ("file", None) if os.path.exists(KVM_NODE) else None
    h = _kvm_helper(host_tmp, node, ["kvm", "--assets", assets, "--run", run_dir], guard)
    assert h.finish() == 1
    err = h.stderr()
    assert "[vm-jail]" in err and "no /dev/kvm character device" in err, err
    assert not any(l.startswith("pid") for l in h.lines), h.lines
