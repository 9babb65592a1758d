# SPDX-License-Identifier: Apache-2.0
"""Payload layers: seccomp (through the try-syscall helper), capabilities,
no_new_privs and Landlock."""
import errno
import os
import subprocess

from conftest import HELPERS, host_env

DANGEROUS = ["mount", "ptrace", "bpf", "keyctl", "userns", "clone_newuser", "io_uring", "vsock",
             "netns", "setns", "perf_event_open", "userfaultfd", "kexec_load", "init_module",
             "open_by_handle_at", "add_key", "process_vm_readv", "umount", "pivot_root", "chroot",
             "netlink_audit", "tiocsti"]
# What a working sandbox still allows: shows that the helper runs and that a
# denial is not just every probe failing.
ALLOWED = ["inet", "unix_socket", "netlink_route"]
KILLED_WHEN_UNTRUSTED = ["bpf", "ptrace", "keyctl", "io_uring", "perf_event_open", "userfaultfd"]


def try_syscalls(cli, helper_opts, names, *opts):
    r, res = cli.json(*helper_opts, *opts, "--", "/opt/helpers/try-syscall", *names)
    assert res["exit_code"] == 0, res
    out = dict(line.split("=", 1) for line in res["stdout"].splitlines())
    assert set(out) == set(names), res
    return out


def test_dangerous_syscalls_denied(cli, helper_opts):
    out = try_syscalls(cli, helper_opts, DANGEROUS + ALLOWED)
    bad = {n: v for n, v in out.items() if n in DANGEROUS and v not in ("EPERM", "SIGSYS")}
    assert not bad, "not denied with EPERM/SIGSYS: %s (all: %s)" % (bad, out)
    for n in ALLOWED:
        assert out[n] == "ok", out


def test_clone3_falls_back(cli, helper_opts):
    # clone3 flags cannot be inspected by BPF: it gets ENOSYS so libc falls
    # back to clone, whose flags the filter checks.
    out = try_syscalls(cli, helper_opts, ["clone3"])
    assert out["clone3"] in ("ENOSYS", "EPERM"), out


def test_untrusted_kills_with_sigsys(cli, helper_opts):
    out = try_syscalls(cli, helper_opts, KILLED_WHEN_UNTRUSTED + ["mount", "userns"] + ALLOWED,
                       "--isolation", "os", "--trust", "untrusted")
    for n in KILLED_WHEN_UNTRUSTED:
        assert out[n] == "SIGSYS", out
    assert out["mount"] in ("EPERM", "SIGSYS") and out["userns"] in ("EPERM", "SIGSYS"), out
    for n in ALLOWED:
        assert out[n] == "ok", out


def test_seccomp_kill_shows_in_the_result(cli):
    # The payload itself calls bpf(): untrusted, the result reports SIGSYS.
    script = "import ctypes; ctypes.CDLL(None).syscall(321, 0, 0, 0); print('survived')"
    r, res = cli.json("--isolation", "os", "--trust", "untrusted", "--", "python3", "-c", script)
    assert res["signal"] == 31, res
    assert res["exit_code"] is None and "survived" not in res["stdout"], res
    assert r.rc == 128 + 31, r
    # Semi-trusted (the default) the same call fails with EPERM instead.
    r, res = cli.json("--", "python3", "-c", script.replace("print('survived')",
                                                              "print('survived', ctypes.get_errno())").replace(
        "ctypes.CDLL(None)", "ctypes.CDLL(None, use_errno=True)"))
    assert res["exit_code"] == 0 and res["stdout"] == "survived %d\n" % errno.EPERM, res


def test_helper_works_on_the_host():
    # Control for the tests above: outside a sandbox the same helper reports
    # something else than a denial for probes the host allows.
    out = subprocess.run([os.path.join(HELPERS, "try-syscall"), "inet", "unix_socket", "mount"],
                         capture_output=True, text=True, env=host_env(), timeout=30).stdout
    res = dict(l.split("=", 1) for l in out.splitlines())
    assert res["inet"] == "ok" and res["unix_socket"] == "ok", res
    if os.geteuid() == 0:
        assert res["mount"] != "EPERM", res  # ENOENT: the target does not exist


def test_capabilities_dropped(cli):
    r, res = cli.json("--", "sh", "-c", "id -u; grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status")
    assert res["exit_code"] == 0, res
    lines = res["stdout"].splitlines()
    assert lines[0] == "0", res  # root inside its user namespace...
    fields = dict(l.split(":\t", 1) for l in lines[1:])
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(fields[cap], 16) == 0, "%s=%s" % (cap, fields[cap])  # ...without any capability
    assert fields["NoNewPrivs"] == "1", fields
    assert fields["Seccomp"] == "2", fields


LANDLOCK_PROBE = r"""
import errno, sys
for p in sys.argv[1:]:
    try:
        with open(p, "w") as f:
            f.write("mbx-renamed")
        print(p, "ok")
    except OSError as e:
        print(p, errno.errorcode.get(e.errno, e.errno))
"""


def test_landlock_blocks_writes_to_proc(cli):
    # /proc is a writable proc mount owned by the sandbox, and /proc/self/comm
    # is writable by its own process: only Landlock (no write rule for /proc)
    # can refuse this write, and it refuses with EACCES (a read-only mount
    # would say EROFS).
    r, res = cli.json("--", "python3", "-c", LANDLOCK_PROBE, "/proc/self/comm", "/proc/self/attr/current")
    out = dict(l.split(" ") for l in res["stdout"].splitlines())
    assert out["/proc/self/comm"] == "EACCES", res
    assert out["/proc/self/attr/current"] != "ok", res
    r, res = cli.json("--", "sh", "-c", "grep -w proc /proc/self/mounts")
    assert " rw," in res["stdout"], "proc is not mounted read-write, so this is not Landlock: %s" % res
    # Control: the same write works outside a sandbox.
    out = subprocess.run(["python3", "-c", LANDLOCK_PROBE, "/proc/self/comm"], capture_output=True, text=True,
                         env=host_env(), timeout=30).stdout
    assert out == "/proc/self/comm ok\n", out


def test_no_device_nodes_can_be_made(cli):
    r, res = cli.json("--", "sh", "-c", "touch /dev/newfile; mknod /dev/mem2 c 1 1; mkdir /dev/d; ls /dev")
    names = res["stdout"].split()
    assert "newfile" not in names and "mem2" not in names and "d" not in names, res
    assert sorted(set(names) & {"null", "zero", "urandom"}) == ["null", "urandom", "zero"], res
    # Host devices beyond the minimal set are not there.
    assert not {"sda", "vda", "mem", "kmsg", "kvm"} & set(names), res


# Set-id bits and file capabilities: a writable mount reaches the host, and
# with id-mapped mounts (root caller) a file sandbox root makes is owned by
# the caller there. Each probe leaves its file (or nothing) in the mount.
SETID_PROBES = ["setid_chmod", "setid_fchmod", "setid_fchmodat", "setid_fchmodat2", "setid_open",
                "setid_openat", "setid_creat", "setid_mkdir", "setid_mknod"]


def assert_no_setid_on_host(d):
    found = {}
    for name in os.listdir(d):
        st = os.lstat(os.path.join(d, name))
        if st.st_mode & 0o6000:
            found[name] = oct(st.st_mode)
    assert not found, "set-id files left on the host: %s" % found


def test_no_setid_files_through_a_mount(cli, helper_opts, host_tmp):
    r, res = cli.json(*helper_opts, "--mount", host_tmp + ":/mnt/x:rw", "--",
                      "/opt/helpers/try-syscall", "--dir", "/mnt/x", *SETID_PROBES, "setid_openat2", "unix_socket")
    assert res["exit_code"] == 0, res
    out = dict(line.split("=", 1) for line in res["stdout"].splitlines())
    for n in SETID_PROBES:
        assert out[n] == "EPERM", out
    # openat2 hides its mode from the filter: ENOSYS, and libc uses openat.
    assert out["setid_openat2"] == "ENOSYS", out
    assert out["unix_socket"] == "ok", out
    assert_no_setid_on_host(host_tmp)
    # The files made with a plain mode first are there, still plain.
    for n in ("setid_chmod", "setid_fchmod", "setid_fchmodat", "setid_fchmodat2"):
        assert os.path.isfile(os.path.join(host_tmp, n)), n


def test_no_setid_shell_through_a_mount(cli, host_tmp):
    # The report's reproduction: a copied shell made set-user-id.
    r, res = cli.json("--mount", host_tmp + ":/mnt/x:rw", "--", "sh", "-c",
                      "cp /bin/sh /mnt/x/sh && chmod 4755 /mnt/x/sh; echo chmod=$?; "
                      "chmod g+s /mnt/x/sh; echo chmodg=$?; mkdir -m 2755 /mnt/x/d; echo mkdir=$?")
    assert res["exit_code"] == 0, res
    lines = res["stdout"].split()
    assert "chmod=0" not in lines and "chmodg=0" not in lines and "mkdir=0" not in lines, res
    assert os.path.isfile(os.path.join(host_tmp, "sh")), res
    assert_no_setid_on_host(host_tmp)
    # Ordinary modes still work.
    r, res = cli.json("--mount", host_tmp + ":/mnt/x:rw", "--", "sh", "-c",
                      "chmod 1755 /mnt/x/sh && mkdir -m 700 /mnt/x/e && echo ok")
    assert res["exit_code"] == 0 and res["stdout"] == "ok\n", res
    assert os.stat(os.path.join(host_tmp, "sh")).st_mode & 0o7777 == 0o1755


def test_no_setid_files_in_the_workspace(cli, helper_opts):
    r, res = cli.json(*helper_opts, "--", "/opt/helpers/try-syscall", "--dir", "/workspace", *SETID_PROBES,
                      "setcap")
    assert res["exit_code"] == 0, res
    out = dict(line.split("=", 1) for line in res["stdout"].splitlines())
    for n in SETID_PROBES + ["setcap"]:
        assert out[n] == "EPERM", out


def test_no_file_capabilities_through_a_mount(cli, helper_opts, host_tmp):
    # security.capability needs CAP_SETFCAP, which payloads have dropped.
    r, res = cli.json(*helper_opts, "--mount", host_tmp + ":/mnt/x:rw", "--",
                      "/opt/helpers/try-syscall", "--dir", "/mnt/x", "setcap")
    assert res["exit_code"] == 0, res
    assert res["stdout"] == "setcap=EPERM\n", res
    path = os.path.join(host_tmp, "setcap")
    assert os.path.isfile(path), res
    try:
        value = os.getxattr(path, "security.capability")
    except OSError as e:
        assert e.errno == errno.ENODATA, e
    else:
        raise AssertionError("file capability left on the host: %r" % value)


def test_numa_and_line_discipline_denied(cli, helper_opts):
    out = try_syscalls(cli, helper_opts, ["mbind", "set_mempolicy", "move_pages", "migrate_pages", "tiocsetd"])
    assert all(v == "EPERM" for v in out.values()), out
