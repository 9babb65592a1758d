# SPDX-License-Identifier: Apache-2.0
"""Payload layers: seccomp (through the try-syscall helper), capabilities,
no_new_privs and Landlock."""
import errno
import json
import os
import re
import subprocess

from conftest import HELPERS, host_env, proc_table

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


# ---------------------------------------------------------------------------
# Escape classes, one layer each where one layer decides (docs/security-model.md
# lists which layer stops what and which test proves it).

# Refused by the seccomp filter alone: without it each works for the same
# unprivileged user (the host control below shows it), so EPERM here can
# only come from the filter.
SECCOMP_ONLY = ["tioclinux", "process_vm_writev", "kcmp", "pidfd_getfd", "name_to_handle_at", "af_alg",
                "socketpair_alg"]
# Refused twice: by the filter, and by the capabilities the payload lacks.
SECCOMP_AND_CAPS = ["packet", "fsopen", "open_tree", "mount_cgroup", "unshare_mount", "unshare_cgroup"]


def test_more_escape_syscalls_denied(cli, helper_opts):
    out = try_syscalls(cli, helper_opts, SECCOMP_ONLY + SECCOMP_AND_CAPS + ALLOWED)
    bad = {n: v for n, v in out.items() if n not in ALLOWED and v != "EPERM"}
    assert not bad, "not denied with EPERM: %s (all: %s)" % (bad, out)
    for n in ALLOWED:
        assert out[n] == "ok", out


def test_seccomp_only_probes_work_without_the_filter():
    # Control for the test above, outside a sandbox: none of these is an
    # EPERM there, so the sandbox's EPERM is the filter's.
    out = subprocess.run([os.path.join(HELPERS, "try-syscall")] + SECCOMP_ONLY, capture_output=True, text=True,
                         env=host_env(), timeout=30).stdout
    res = dict(l.split("=", 1) for l in out.splitlines())
    assert set(res) == set(SECCOMP_ONLY), out
    assert not [n for n, v in res.items() if v == "EPERM"], res
    assert res["tioclinux"] == "ENOTTY" and res["process_vm_writev"] == "ok" and res["kcmp"] == "ok", res


def test_untrusted_kills_process_vm_and_keys(cli, helper_opts):
    out = try_syscalls(cli, helper_opts, ["add_key", "kexec_load", "init_module", "process_vm_writev", "kcmp"],
                       "--isolation", "os", "--trust", "untrusted")
    assert out["add_key"] == "SIGSYS" and out["kexec_load"] == "SIGSYS" and out["init_module"] == "SIGSYS", out
    assert out["process_vm_writev"] == "EPERM" and out["kcmp"] == "EPERM", out


WRITE_PROBE = r"""
import errno, os, sys
for p in sys.argv[1:]:
    try:
        fd = os.open(p, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)
        print(p, "ok")
    except OSError as e:
        print(p, errno.errorcode.get(e.errno, e.errno))
"""


def test_proc_sys_and_sys_writes_refused(cli):
    # Host-global knobs (core_pattern, sysrq) belong to the host's root; the
    # knobs of the sandbox's own namespaces (ip_forward of its network
    # namespace, its host name) would be writable by root of its user
    # namespace with CAP_NET_ADMIN / CAP_SYS_ADMIN. Two layers refuse them,
    # both with EACCES: Landlock grants no write below /proc, and the
    # payload has no capability.
    paths = ["/proc/sys/kernel/core_pattern", "/proc/sysrq-trigger", "/proc/sys/vm/drop_caches",
             "/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/hostname", "/proc/sys/user/max_user_namespaces"]
    r, res = cli.json("--", "python3", "-c", WRITE_PROBE, *paths)
    out = dict(l.split(" ") for l in res["stdout"].splitlines())
    assert set(out) == set(paths), res
    assert not [p for p, v in out.items() if v == "ok"], out
    # The ones a user-namespace root owns.
    assert out["/proc/sys/net/ipv4/ip_forward"] == "EACCES", out
    assert out["/proc/sys/kernel/hostname"] == "EACCES", out
    # No sysfs at all: /sys/kernel/uevent_helper, /sys/fs/cgroup and the
    # rest of the host's kernel objects are absent.
    r, res = cli.json("--", "python3", "-c", WRITE_PROBE, "/sys/kernel/uevent_helper", "/sys/fs/cgroup/cgroup.procs")
    assert res["stdout"].split() == ["/sys/kernel/uevent_helper", "ENOENT", "/sys/fs/cgroup/cgroup.procs", "ENOENT"], res


CGROUP_PROBE = r"""
import os
print("self", open("/proc/self/cgroup").read().replace("\n", ";"))
print("init", open("/proc/1/cgroup").read().replace("\n", ";"))
mounts = [l.split()[2] for l in open("/proc/self/mounts") if l.split()[2] in ("cgroup", "cgroup2")]
print("mounts", ",".join(mounts) or "-")
print("sys", os.path.exists("/sys"))
"""


def test_cgroup_escape(cli, helper_opts):
    # A payload that reached a cgroup hierarchy could move itself out of
    # the sandbox's cgroup (write its pid to a parent's cgroup.procs) and
    # shed its limits. There is no hierarchy to reach: none is mounted,
    # mounting one is refused, and the cgroup namespace hides where the
    # sandbox sits on the host (every path reads "/").
    r, res = cli.json("--", "python3", "-c", CGROUP_PROBE)
    out = dict(l.split(" ", 1) for l in res["stdout"].splitlines())
    for key in ("self", "init"):
        entries = [e for e in out[key].split(";") if e]
        assert entries, out
        assert all(e.endswith(":/") for e in entries), "host cgroup path visible: %s" % out
    assert out["mounts"] == "-" and out["sys"] == "False", out
    probes = try_syscalls(cli, helper_opts, ["mount_cgroup", "fsopen", "unshare_cgroup"])
    assert set(probes.values()) == {"EPERM"}, probes


FD_PROBE = r"""
import os
fds = []
for name in os.listdir("/proc/self/fd"):
    try:
        fds.append("%s=%s" % (name, os.readlink("/proc/self/fd/" + name)))
    except OSError:
        pass  # the listing's own descriptor, closed again
print(" ".join(sorted(fds)))
"""


def payload_fds(stdout):
    return dict(e.split("=", 1) for e in stdout.split())


def test_payload_gets_only_stdio_from_the_cli(cli, host_tmp):
    # The CLI inherits an open descriptor (to a file the payload must not
    # reach); the payload starts with 0, 1 and 2 only: neither the CLI's
    # descriptors nor the agent's channel reach it.
    secret = os.path.join(host_tmp, "inherited-secret")
    with open(secret, "w") as f:
        f.write("secret")
    fd = os.open(secret, os.O_RDONLY)
    try:
        os.set_inheritable(fd, True)
        p = subprocess.run([cli.path, "run", "--json", "--", "python3", "-c", FD_PROBE], capture_output=True,
                           env=cli.env(), timeout=60, pass_fds=(fd,))
    finally:
        os.close(fd)
    cli.guard.ids.update(re.findall(r"sandbox ([0-9a-f]{16}) created", p.stderr.decode()))
    res = json.loads(p.stdout)
    fds = payload_fds(res["stdout"])
    assert sorted(fds) == ["0", "1", "2"], fds


def test_supervisor_fds_do_not_reach_payloads(cli):
    # A named sandbox's supervisor holds its listening socket and client
    # connections; its payloads, one-shot or with a stdin pipe, get stdio only.
    r = cli(["create"])
    assert r.rc == 0, r
    name = r.out.strip()
    try:
        for extra in ([], ["-i"]):
            r = cli(["exec", name] + extra + ["--", "python3", "-c", FD_PROBE], stdin=b"" if extra else None)
            assert r.rc == 0, r
            fds = payload_fds(r.out)
            assert sorted(fds) == ["0", "1", "2"], (extra, fds)
    finally:
        assert cli(["rm", name]).rc == 0


def test_library_fds_reach_neither_agent_nor_payload(sandbox, host_tmp, lib):
    # An inheritable descriptor of the host process using the library stays
    # in the host: the agent (cloned from it) closes it before exec, and the
    # payload starts with 0, 1 and 2.
    import mbx

    secret = os.path.join(host_tmp, "inherited-secret-lib")
    with open(secret, "w") as f:
        f.write("secret")
    fd = os.open(secret, os.O_RDONLY)
    try:
        os.set_inheritable(fd, True)
        sb = mbx.Sandbox(lib)
        try:
            res = sb.exec(["python3", "-c", FD_PROBE])
            fds = payload_fds(res.stdout.decode())
            assert sorted(fds) == ["0", "1", "2"], fds
            agents = [pid for pid in agent_pids()]
            assert agents, "no agent found below this process"
            for pid in agents:
                links = []
                for name in os.listdir("/proc/%d/fd" % pid):
                    try:
                        links.append(os.readlink("/proc/%d/fd/%s" % (pid, name)))
                    except OSError:
                        pass
                assert secret not in links, "the agent %d holds the host's descriptor: %s" % (pid, links)
        finally:
            sb.destroy()
            sb.close()
    finally:
        os.close(fd)
    sandbox.exec(["true"])


def agent_pids():
    """Sandbox agents cloned by the library into this process."""
    me = os.getpid()
    out = []
    for pid, (ppid, state, argv) in proc_table().items():
        if ppid == me and state != "Z" and argv[:1] == ["mimobox-agent"]:
            out.append(pid)
    return out


EXE_PROBE = r"""
import errno, os
for p in ("/proc/1/exe", "/proc/self/exe"):
    for flags, name in ((os.O_WRONLY, "w"), (os.O_RDWR, "rw")):
        try:
            os.close(os.open(p, flags))
            print(p, name, "ok")
        except OSError as e:
            print(p, name, errno.errorcode.get(e.errno, e.errno))
"""


def test_agent_binary_cannot_be_overwritten(lib, guard):
    # CVE-2019-5736 style: a payload opens the binary of a more privileged
    # process (the agent, PID 1) through /proc/PID/exe and writes into it,
    # so the next sandbox runs its code. From inside, /proc/1/exe does not
    # even open for writing...
    import mbx

    sb = mbx.Sandbox(lib)
    guard.ids.add(sb.id)
    try:
        res = sb.exec(["python3", "-c", EXE_PROBE])
    finally:
        sb.close()
    out = {tuple(l.split()[:2]): l.split()[2] for l in res.stdout.decode().splitlines()}
    assert len(out) == 4 and "ok" not in out.values(), out
    # ...and the binary itself takes no write from anyone: every sandbox of
    # this process runs the agent from one memfd, sealed against writes.
    # (While an agent runs, the kernel refuses to open it for writing, so
    # this looks when none runs, as after the exploit's agent has exited.)
    assert not agent_pids()
    memfds = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink("/proc/self/fd/" + name).startswith("/memfd:mimobox-agent"):
                memfds.append(name)
        except OSError:
            pass
    assert len(memfds) == 1, "expected the agent's memfd in this process: %s" % memfds
    fd = os.open("/proc/self/fd/" + memfds[0], os.O_RDWR)
    try:
        first = os.pread(fd, 1, 0)
        assert first == b"\x7f", first
        try:
            os.pwrite(fd, first, 0)  # the same byte: harmless if it went through
            wrote = "ok"
        except OSError as e:
            wrote = errno.errorcode.get(e.errno, str(e.errno))
    finally:
        os.close(fd)
    assert wrote == "EPERM", "the agent binary took a write: %s" % wrote


def test_host_mount_tree_is_gone_after_setup(cli):
    """The agent builds the root with the host's mount tree at /oldroot and
    drops it before any payload runs: the sandbox's mount table holds only
    what the plan mounted, its root is the sandbox's own tmpfs, and no mount
    of the host that the plan does not mount again is left."""
    planned = {"/", "/usr", "/etc", "/tmp", "/workspace", "/proc", "/proc/sys", "/dev", "/dev/pts", "/dev/shm",
               "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/ptmx"}
    r, res = cli.json("--", "cat", "/proc/self/mountinfo")
    assert res["exit_code"] == 0, res
    points, root_type = [], None
    for line in res["stdout"].splitlines():
        fields = line.split(" ")
        point = fields[4]
        points.append(point)
        if point == "/":
            root_type = fields[fields.index("-") + 1]
    assert root_type == "tmpfs", res["stdout"]
    assert not [p for p in points if p.startswith("/oldroot") or p.startswith("/newroot")], res["stdout"]
    with open("/proc/self/mountinfo") as f:
        host_points = {l.split(" ")[4] for l in f if l.strip()}
    leftovers = [p for p in points if p in host_points and p not in planned and not p.startswith(("/usr/", "/etc/"))]
    assert leftovers == [], res["stdout"]
