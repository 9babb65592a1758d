# SPDX-License-Identifier: Apache-2.0
"""Faults in the middle of an operation: kill -9 of a named sandbox's
supervisor, of the CLI talking to it, and of a sandbox's agent, during an
exec and during a file transfer; a full filesystem under the workspace;
memory pressure from the payload. Each time: a clear error where one is
due, nothing half-written left behind, nothing lost that was complete,
and the next command works (the guard checks processes, state
directories and cgroups afterwards)."""
import errno
import json
import os
import signal
import subprocess
import threading
import time

import pytest

import mbx
from conftest import proc_table, procs_with_arg, reap_zombies, unique_sleep_arg
from test_cli_sessions import alive, named, ps, wait_until  # noqa: F401 (named is a fixture)

MiB = 1 << 20


def popen(cli, *args, stdin=subprocess.DEVNULL):
    return subprocess.Popen([cli.path] + list(args), stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=cli.env())


def finish(p, timeout=30):
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err.decode(errors="replace")


def host_leftovers(d):
    return sorted(os.listdir(d))


# ---------------------------------------------------------------------------
# kill -9 of the supervisor


def test_supervisor_killed_mid_exec(cli, named):
    name = named()
    sup = ps(cli)[name]["pid"]
    arg = unique_sleep_arg()
    p = popen(cli, "exec", name, "--", "sh", "-c", "echo up; exec sleep " + arg)
    try:
        assert p.stdout.readline() == b"up\n"
        os.kill(sup, signal.SIGKILL)
        rc, out, err = finish(p)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc == 125 and "lost the connection to sandbox `%s`" % name in err, (rc, err)
    assert wait_until(lambda: not procs_with_arg(arg), 5), "the program outlived its supervisor"
    r = cli(["exec", name, "--", "true"])
    assert r.rc == 125 and "supervisor died" in r.stderr, r
    assert cli.run("--", "true").rc == 0


def test_supervisor_killed_mid_upload(cli, named):
    name = named()
    sup = ps(cli)[name]["pid"]
    p = popen(cli, "write", name, "/workspace/upload", stdin=subprocess.PIPE)
    try:
        p.stdin.write(os.urandom(4 * MiB))
        p.stdin.flush()
        os.kill(sup, signal.SIGKILL)
        try:
            p.stdin.write(os.urandom(4 * MiB))
            p.stdin.close()
        except BrokenPipeError:
            pass
        rc, out, err = finish(p)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc == 125 and ("supervisor" in err or "sandbox" in err), (rc, err)
    assert cli.run("--", "true").rc == 0
    cli(["ps"])  # removes the dead entry


def writing_in(pid, directory):
    """True when process `pid` holds a file of `directory` with data in it."""
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            if target.startswith(directory + "/") and os.stat("/proc/%d/fd/%s" % (pid, fd)).st_size > 0:
                return True
        except OSError:
            pass
    return False


def start_download(cli, name, host_dir, size_mib=128):
    """Starts `cp NAME:/workspace/big HOST_DIR/out` of a file of size_mib
    and stops the CLI (SIGSTOP) once it writes its temporary file: a
    nameless O_TMPFILE in HOST_DIR (or, where the file system lacks those,
    a `.out.*` file there)."""
    r = cli(["exec", name, "--", "sh", "-c", "head -c %dM /dev/zero > /workspace/big" % size_mib])
    assert r.rc == 0, r
    p = popen(cli, "cp", name + ":/workspace/big", os.path.join(host_dir, "out"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and p.poll() is None:
        if [e for e in os.listdir(host_dir) if e.startswith(".out.")] or writing_in(p.pid, host_dir):
            os.kill(p.pid, signal.SIGSTOP)
            return p
    p.kill()
    p.wait()
    pytest.fail("the download ended before it could be interrupted: %r" % host_leftovers(host_dir))


def test_supervisor_killed_mid_download(cli, named, host_tmp):
    name = named()
    sup = ps(cli)[name]["pid"]
    p = start_download(cli, name, host_tmp)
    try:
        os.kill(sup, signal.SIGKILL)
        assert wait_until(lambda: not alive(sup), 5)
        os.kill(p.pid, signal.SIGCONT)
        rc, out, err = finish(p)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc == 125 and ("supervisor" in err or "sandbox" in err), (rc, err)
    # Neither half a file under the target name nor the temporary one.
    assert host_leftovers(host_tmp) == [], host_leftovers(host_tmp)
    cli(["ps"])
    assert cli.run("--", "true").rc == 0


# ---------------------------------------------------------------------------
# kill -9 of the CLI


def test_cli_killed_mid_upload_leaves_no_file(cli, named):
    name = named()
    assert cli(["write", name, "/workspace/kept"], stdin=b"complete\n").rc == 0
    p = popen(cli, "write", name, "/workspace/upload", stdin=subprocess.PIPE)
    try:
        p.stdin.write(os.urandom(4 * MiB))
        p.stdin.flush()
        time.sleep(0.2)
        p.kill()
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdin.close()
        p.stdout.close()
        p.stderr.close()
    assert wait_until(lambda: ps(cli)[name]["state"] == "ready", 5), ps(cli)[name]
    # The half upload never shows under its name (nor as a stray temporary
    # file); the complete file before it is intact.
    r = cli(["exec", name, "--", "ls", "-A", "/workspace"])
    assert r.rc == 0 and r.out.split() == ["kept"], r
    r = cli(["cat", name, "/workspace/kept"])
    assert r.rc == 0 and r.stdout == b"complete\n", r


def test_cli_killed_mid_download_leaves_no_file(cli, named, host_tmp):
    name = named()
    p = start_download(cli, name, host_tmp)
    p.kill()
    os.kill(p.pid, signal.SIGCONT)
    p.wait()
    p.stdout.close()
    p.stderr.close()
    # The target never appears half-written, and nothing else is left: the
    # data has no name on disk until it is complete (O_TMPFILE).
    assert host_leftovers(host_tmp) == [], host_leftovers(host_tmp)
    assert wait_until(lambda: ps(cli)[name]["state"] == "ready", 5), ps(cli)[name]
    r = cli(["cp", name + ":/workspace/big", os.path.join(host_tmp, "out")])
    assert r.rc == 0, r
    assert os.path.getsize(os.path.join(host_tmp, "out")) == 128 * MiB


# ---------------------------------------------------------------------------
# kill -9 of the agent (library)


def agent_pids():
    me = os.getpid()
    return sorted(pid for pid, (ppid, state, argv) in proc_table().items()
                  if ppid == me and state != "Z" and argv[:1] == ["mimobox-agent"])


def test_agent_killed_mid_exec(lib, guard):
    before = set(agent_pids())
    sb = mbx.Sandbox(lib)
    guard.ids.add(sb.id)
    try:
        sb.write_file("/workspace/kept", b"complete")
        agent = [p for p in agent_pids() if p not in before]
        assert len(agent) == 1, agent
        arg = unique_sleep_arg()
        got = {}

        def run():
            got["r"] = sb.exec_status(["sh", "-c", "exec sleep " + arg])

        t = threading.Thread(target=run)
        t.start()
        assert wait_until(lambda: procs_with_arg(arg), 10), "the program did not start"
        os.kill(agent[0], signal.SIGKILL)
        t.join(30)
        assert not t.is_alive(), "the execute hangs after its agent died"
        rc, res, msg = got["r"]
        assert rc == mbx.MBX_EPROTO and "agent" in msg, got
        assert wait_until(lambda: not procs_with_arg(arg), 5), "the program outlived its agent"
        # The sandbox is unusable now, and says so at once.
        rc, res, msg = sb.exec_status(["true"])
        assert rc in (mbx.MBX_EPROTO, mbx.MBX_ESTATE) and msg, (rc, msg)
        sb.destroy()
    finally:
        sb.close()
    reap_zombies()
    # A new sandbox works.
    with mbx.Sandbox(lib) as sb2:
        guard.ids.add(sb2.id)
        assert sb2.exec(["true"]).exit_code == 0


def spool_open(pid):
    """Whether the supervisor `pid` has a file download spooling (an
    unnamed host file, not the agent's memfd)."""
    try:
        names = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return False
    for n in names:
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, n))
        except OSError:
            continue
        if link.endswith("(deleted)") and "memfd:" not in link:
            return True
    return False


def test_agent_killed_mid_download(cli, named, host_tmp):
    # The sandbox's agent dies while its supervisor reads a file out of it
    # for `cp`: the copy fails with an error and no half file stays on the
    # host, and the broken sandbox says so (its supervisor ends; the next
    # command reports it).
    name = named()
    sup = ps(cli)[name]["pid"]
    agent = [pid for pid, (ppid, state, argv) in proc_table().items()
             if ppid == sup and state != "Z" and argv[:1] == ["mimobox-agent"]]
    assert len(agent) == 1, agent
    r = cli(["exec", name, "--", "sh", "-c", "head -c 256M /dev/zero > /workspace/big"])
    assert r.rc == 0, r
    p = popen(cli, "cp", name + ":/workspace/big", os.path.join(host_tmp, "out"))
    try:
        assert wait_until(lambda: spool_open(sup) or p.poll() is not None, 20, step=0.001)
        os.kill(agent[0], signal.SIGKILL)
        rc, out, err = finish(p)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    if rc == 0:
        # The agent had sent the whole file just before it died: then the
        # copy is complete, never partial.
        assert host_leftovers(host_tmp) == ["out"], host_leftovers(host_tmp)
        assert os.path.getsize(os.path.join(host_tmp, "out")) == 256 * MiB
    else:
        assert rc == 125 and err.strip(), (rc, err)
        assert host_leftovers(host_tmp) == [], host_leftovers(host_tmp)
    assert wait_until(lambda: not alive(sup), 15), "the supervisor of a sandbox without agent stays"
    r = cli(["exec", name, "--", "true"])
    assert r.rc == 125 and name in r.stderr, r
    assert cli.run("--", "true").rc == 0


# ---------------------------------------------------------------------------
# A full filesystem under the workspace


@pytest.fixture
def small_fs(host_tmp, user):
    """A 1 MiB tmpfs the sandbox gets read-write (root only: it mounts)."""
    if not user.is_root:
        pytest.skip("not applicable: mounting a small file system needs root")
    d = os.path.join(host_tmp, "small")
    os.mkdir(d)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0777", "none", d], check=True)
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", d], check=False)


FILL = r"""
import errno, sys
try:
    with open(sys.argv[1], "wb") as f:
        for _ in range(64):
            f.write(b"x" * 65536)
            f.flush()
    print("wrote")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
"""


def test_full_filesystem_gives_enospc_and_keeps_complete_files(cli, named, small_fs):
    name = named("--mount", small_fs + ":/data:rw")
    assert cli(["write", name, "/data/kept"], stdin=b"complete\n").rc == 0
    # The payload fills it: ENOSPC, reported to the payload.
    r = cli(["exec", name, "--", "python3", "-c", FILL, "/data/fill"])
    assert r.rc == 0 and r.out.strip() == "ENOSPC", r
    # An upload that does not fit: a clear error, no half file, the old
    # content of the target untouched.
    r = cli(["write", name, "/data/kept"], stdin=os.urandom(2 * MiB))
    assert r.rc != 0 and ("space" in r.stderr.lower() or "ENOSPC" in r.stderr), r
    r = cli(["cat", name, "/data/kept"])
    assert r.rc == 0 and r.stdout == b"complete\n", r
    # Room again, and the sandbox goes on.
    assert cli(["exec", name, "--", "rm", "/data/fill"]).rc == 0
    assert cli(["write", name, "/data/new"], stdin=b"fits\n").rc == 0
    assert sorted(os.listdir(small_fs)) == ["kept", "new"], os.listdir(small_fs)


# ---------------------------------------------------------------------------
# Memory pressure


ALLOC = r"""
n = 1 << 30
b = bytearray(n)
for i in range(0, n, 4096):
    b[i] = 1
print("allocated")
"""


def test_memory_hog_is_stopped_and_the_sandbox_goes_on(cli, named, limits_mech):
    # The payload asks for 1 GiB under a 64 MiB limit: it is stopped (OOM
    # kill under cgroups, a failed allocation under rlimits) and the result
    # says so; the sandbox, its files and the host go on.
    name = named("--memory", "64")
    assert cli(["write", name, "/workspace/kept"], stdin=b"complete\n").rc == 0
    r = cli(["exec", name, "--json", "--", "python3", "-c", ALLOC], timeout=120)
    res = r.json
    assert res.get("ok") is True, res
    assert "allocated" not in res["stdout"], res
    if limits_mech == "cgroup":
        # (The exec of a named sandbox goes through the process API, whose
        # result does not tell an OOM kill apart yet: only the signal.)
        assert res["signal"] == signal.SIGKILL and res["exit_code"] is None, res
    else:
        assert res["exit_code"] != 0 and "MemoryError" in res["stderr"], res
    assert ps(cli)[name]["state"] == "ready"
    r = cli(["cat", name, "/workspace/kept"])
    assert r.rc == 0 and r.stdout == b"complete\n", r
    r = cli(["exec", name, "--", "echo", "still here"])
    assert r.rc == 0 and r.out == "still here\n", r
