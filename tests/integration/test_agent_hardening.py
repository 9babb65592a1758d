# SPDX-License-Identifier: Apache-2.0
"""The in-sandbox agent against its own payload: the file API never blocks
on an object the payload made (FIFOs, sockets, devices), the agent dies
with the host that started it, and a payload cannot reach the agent (PID 1
of the sandbox) with rlimits, priorities, scheduling or signals."""
import os
import re
import secrets
import signal
import subprocess
import sys
import time

import pytest

import mbx
from conftest import LIB, LIB_ASAN, host_env, procs_with_arg, reap_zombies, unique_sleep_arg


def ps(cli):
    r = cli(["ps", "--json"])
    assert r.rc == 0, r
    return {s["name"]: s for s in r.json["sandboxes"]}


@pytest.fixture
def named(cli):
    """A named sandbox, removed after the test."""
    made = []

    def create(env=None):
        name = "h-" + secrets.token_hex(4)
        r = cli(["create", "--name", name], env=env)
        assert r.rc == 0, r
        made.append(name)
        return name

    yield create
    for name in made:
        cli(["rm", name])


# ---------------------------------------------------------------------------
# The file API and payload-made objects

NOT_REGULAR = "not a regular file"

# Objects a payload can put where the file API looks, made by a command run
# in the sandbox first. The socket file stays after its process exits.
OBJECTS = {
    "fifo": ("/workspace/r", "mkfifo /workspace/r"),
    "socket": ("/workspace/s", "python3 -c \"import socket; socket.socket(socket.AF_UNIX).bind('/workspace/s')\""),
    "dev-zero": ("/dev/zero", "true"),
    "symlink-to-fifo": ("/workspace/l", "mkfifo /workspace/f && ln -s f /workspace/l"),
}


@pytest.mark.parametrize("kind", sorted(OBJECTS))
def test_cat_of_a_non_regular_file_is_refused_at_once(cli, named, kind):
    path, make = OBJECTS[kind]
    name = named()
    assert cli(["exec", name, "--", "sh", "-c", make]).rc == 0
    # A blocked agent would hold this for the host's 60 s grace: the CLI's
    # own 20 s bound turns that into a failure.
    r = cli(["cat", name, path], timeout=20)
    assert r.rc == 1 and r.stdout == b"" and NOT_REGULAR in r.stderr, r
    # The agent is free: an exec right after runs at once.
    r = cli(["exec", name, "--", "echo", "alive"], timeout=20)
    assert r.rc == 0 and r.stdout == b"alive\n", r
    assert ps(cli)[name]["state"] == "ready"


def test_fifo_with_a_writer_is_not_read(cli, named):
    # Even with a writer holding the FIFO open (so a non-blocking open and
    # read would both succeed), the agent refuses it.
    name = named()
    arg = unique_sleep_arg()
    p = subprocess.Popen([cli.path, "exec", name, "--", "sh", "-c",
                          "mkfifo /workspace/r; exec 3<>/workspace/r; echo x >&3; exec sleep " + arg],
                         env=cli.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not procs_with_arg(arg) and time.monotonic() < deadline:
            time.sleep(0.02)
        r = cli(["cat", name, "/workspace/r"], timeout=20)
        assert r.rc == 1 and NOT_REGULAR in r.stderr, r
    finally:
        p.kill()
        p.wait()
    r = cli(["exec", name, "--", "true"], timeout=20)
    assert r.rc == 0, r


def test_library_file_api_refuses_non_regular_files(sandbox):
    sandbox.exec(["sh", "-c", "mkfifo /workspace/r /workspace/w && mkdir /workspace/d"])
    for path in ("/workspace/r", "/dev/zero"):
        with pytest.raises(mbx.MbxError) as e:
            sandbox.read_file(path)
        assert e.value.code == mbx.MBX_EINVAL and NOT_REGULAR in e.value.message, e.value
    # Appending opens the target itself: a FIFO with no reader, a FIFO with
    # a reader, a device.
    with pytest.raises(mbx.MbxError) as e:
        sandbox.write_file("/workspace/w", b"data", flags=1)
    assert e.value.code == mbx.MBX_EINVAL and NOT_REGULAR in e.value.message, e.value
    reader = sandbox.spawn(["sh", "-c", "exec 3<>/workspace/w; echo open; exec sleep 30"])
    try:
        assert reader.next_event(10000) == (mbx.MBX_EVENT_STDOUT, b"open\n")
        with pytest.raises(mbx.MbxError) as e:
            sandbox.write_file("/workspace/w", b"data", flags=1)
        assert e.value.code == mbx.MBX_EINVAL and NOT_REGULAR in e.value.message, e.value
    finally:
        reader.kill()
        reader.close()
    with pytest.raises(mbx.MbxError) as e:
        sandbox.write_file("/dev/null", b"data", flags=1)
    assert e.value.code == mbx.MBX_EINVAL and NOT_REGULAR in e.value.message, e.value
    # A FIFO is no directory to list, and a replacing write puts a regular
    # file in its place without opening it.
    with pytest.raises(mbx.MbxError) as e:
        sandbox.list_dir("/workspace/r")
    assert e.value.code == mbx.MBX_ENOTDIR, e.value
    sandbox.write_file("/workspace/r", b"replaced")
    assert sandbox.read_file("/workspace/r") == b"replaced"
    assert sandbox.exec(["echo", "ok"]).stdout == b"ok\n"


# ---------------------------------------------------------------------------
# A payload cannot reach the agent

# Every way a payload of the same uid could reach PID 1 by its pid, or all
# processes of its uid at once. Each line prints its name and "ok" or the
# errno; the payload always exits 0.
ATTACK = r"""
import os, resource, signal
def t(name, f):
    try:
        f()
        print(name, "ok")
    except OSError as e:
        print(name, e.errno)
def oom():
    with open("/proc/1/oom_score_adj", "w") as f:
        f.write("1000")
t("prlimit-nofile", lambda: resource.prlimit(1, resource.RLIMIT_NOFILE, (3, 3)))
t("prlimit-nproc", lambda: resource.prlimit(1, resource.RLIMIT_NPROC, (0, 0)))
t("prlimit-as", lambda: resource.prlimit(1, resource.RLIMIT_AS, (1 << 20, 1 << 20)))
t("setpriority", lambda: os.setpriority(os.PRIO_PROCESS, 1, 19))
t("sched", lambda: os.sched_setscheduler(1, os.SCHED_IDLE, os.sched_param(0)))
t("oom-score", oom)
t("prio-user", lambda: os.setpriority(os.PRIO_USER, 0, 19))
t("prio-pgrp", lambda: os.setpriority(os.PRIO_PGRP, os.getpgid(1), 19))
t("stop", lambda: os.kill(1, signal.SIGSTOP))
t("term", lambda: os.kill(1, signal.SIGTERM))
t("hup", lambda: os.kill(1, signal.SIGHUP))
t("kill-all-stop", lambda: os.kill(-1, signal.SIGSTOP))
print("survived")
"""


def agent_state(pid):
    """What the attacks would change in the agent, read from the host."""
    with open("/proc/%d/limits" % pid) as f:
        limits = f.read()
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rpartition(")")[2].split()
    with open("/proc/%d/oom_score_adj" % pid) as f:
        oom = f.read()
    # stopped, nice, scheduling policy
    return limits, fields[0] in ("T", "t"), fields[16], fields[38], oom


def agents_below(root):
    """The sandbox agents below `root` (not their processes' mini-inits,
    which are forks of the agent)."""
    from conftest import descendants, proc_table
    below = descendants(root)
    # Read after: a process (an agent's spare mini-init, a fork of it made
    # when the agent is idle) may have come since.
    table = proc_table()
    return [pid for pid, argv in below.items()
            if pid in table and argv[:1] == ["mimobox-agent"]
            and table.get(table[pid][0], (0, "", []))[2][:1] != ["mimobox-agent"]]


def test_one_shot_run_cannot_touch_the_agent(cli):
    r, res = cli.json("--", "python3", "-c", ATTACK, timeout=60)
    assert r.rc == 0 and res["exit_code"] == 0 and res["stdout"].endswith("survived\n"), res
    # The agent still serves the rest of the run: its end and the result.
    assert res["timed_out"] is False and res["signal"] in (0, None), res


def test_library_execute_cannot_touch_the_agent(sandbox):
    agents = agents_below(os.getpid())
    assert len(agents) == 1, agents
    before = agent_state(agents[0])
    res = sandbox.exec(["python3", "-c", ATTACK])
    assert res.exit_code == 0 and res.stdout.endswith(b"survived\n"), res
    assert agent_state(agents[0]) == before, "the payload changed the agent"
    # Later executes need new pipes and processes in the agent.
    for _ in range(3):
        res = sandbox.exec(["sh", "-c", "echo a; echo b >&2"], stdin=b"x")
        assert res.exit_code == 0 and res.stdout == b"a\n" and res.stderr == b"b\n", res
    p = sandbox.spawn(["cat"], stdin=True)
    p.write(b"spawned\n")
    p.close_stdin()
    assert p.wait(10000).stdout == b"spawned\n"
    p.close()


def test_named_exec_cannot_touch_the_agent(cli, named):
    name = named()
    agents = agents_below(ps(cli)[name]["pid"])
    assert len(agents) == 1, agents
    before = agent_state(agents[0])
    r = cli(["exec", name, "--", "python3", "-c", ATTACK], timeout=60)
    assert r.rc == 0 and r.stdout.endswith(b"survived\n"), r
    assert agent_state(agents[0]) == before, "the payload changed the agent"
    for _ in range(3):
        r = cli(["exec", name, "--", "echo", "next"], timeout=30)
        assert r.rc == 0 and r.stdout == b"next\n", r
    assert cli(["cat", name, "/etc/hostname"], timeout=30).rc == 0


# ---------------------------------------------------------------------------
# The agent dies with its host

# A host process that makes a sandbox through the library, starts a
# long-running payload in it and waits to be killed.
LIB_HOST = r"""
import sys, threading
sys.path.insert(0, sys.argv[1])
import mbx
lib = mbx.Lib(sys.argv[2])
box = []
if sys.argv[4] == "thread":
    t = threading.Thread(target=lambda: box.append(mbx.Sandbox(lib)))
    t.start()
    t.join()
else:
    box.append(mbx.Sandbox(lib))
sb = box[0]
print(sb.id, flush=True)
p = sb.spawn(["sleep", sys.argv[3]], timeout_ms=0)
print("up", flush=True)
sys.stdin.read()
"""


def wait_gone(pids, arg, timeout=5):
    deadline = time.monotonic() + timeout
    while True:
        reap_zombies()
        from conftest import proc_table
        table = proc_table()
        left = [p for p in pids if p in table and table[p][1] != "Z"] + procs_with_arg(arg)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def kill_host_of_stopped_agent(cli, guard, host, arg):
    """Waits for the payload, stops the agent (a wedged agent that cannot
    see its channel close), SIGKILLs the host and checks that the agent and
    the payload die anyway."""
    try:
        deadline = time.monotonic() + 10
        while not procs_with_arg(arg) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert procs_with_arg(arg), "payload not running"
        agents = agents_below(host.pid)
        assert len(agents) == 1, agents
        os.kill(agents[0], signal.SIGSTOP)
    finally:
        host.kill()
        host.wait()
    left = wait_gone(agents, arg)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "the agent or its payload outlived the killed host: %s" % left
    # A later sandbox collects the state the killed host left.
    r = cli.run("--", "true")
    assert r.rc == 0, r


def start_lib_host(cli, arg, where):
    env = cli.env()
    if LIB_ASAN:
        # An AddressSanitizer build of the library needs its runtime first.
        env["LD_PRELOAD"] = LIB_ASAN
        env["ASAN_OPTIONS"] = "detect_leaks=0"
    return subprocess.Popen([sys.executable, "-c", LIB_HOST, os.path.dirname(os.path.abspath(__file__)), LIB, arg, where],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)


def test_agent_made_on_a_thread_dies_with_a_killed_host(cli, guard):
    # Made on a thread that ended: the sandbox lives on with its host, and
    # still goes when the host is killed.
    arg = unique_sleep_arg()
    host = start_lib_host(cli, arg, "thread")
    try:
        guard.ids.add(host.stdout.readline().decode().strip())
        assert host.stdout.readline() == b"up\n"
        deadline = time.monotonic() + 10
        while not procs_with_arg(arg) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert procs_with_arg(arg), "payload not running"
        agents = agents_below(host.pid)
        assert len(agents) == 1, agents
    finally:
        host.kill()
        host.wait()
        host.stdin.close()
        host.stdout.close()
    left = wait_gone(agents, arg)
    assert not left, "the agent or its payload outlived the killed host: %s" % left
    assert cli.run("--", "true").rc == 0


def test_agent_dies_with_a_killed_library_host(cli, guard):
    arg = unique_sleep_arg()
    host = start_lib_host(cli, arg, "main")
    try:
        guard.ids.add(host.stdout.readline().decode().strip())
        assert host.stdout.readline() == b"up\n"
    except BaseException:
        host.kill()
        host.wait()
        raise
    try:
        kill_host_of_stopped_agent(cli, guard, host, arg)
    finally:
        host.stdin.close()
        host.stdout.close()


def test_agent_dies_with_a_killed_cli(cli, guard):
    arg = unique_sleep_arg()
    host = subprocess.Popen([cli.path, "run", "--", "sh", "-c", "echo up; exec sleep " + arg],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli.env())
    try:
        assert host.stdout.readline() == b"up\n"
        kill_host_of_stopped_agent(cli, guard, host, arg)
    finally:
        host.stdout.close()
        guard.ids.update(re.findall(r"sandbox ([0-9a-f]{16}) created", host.stderr.read().decode()))
        host.stderr.close()


def test_agent_made_on_a_thread_outlives_the_thread(lib, guard):
    # The parent-death signal follows the creating thread: a sandbox made
    # on a thread that then ends must keep working.
    import threading
    box = {}

    def make():
        box["sb"] = mbx.Sandbox(lib)

    t = threading.Thread(target=make)
    t.start()
    t.join()
    sb = box["sb"]
    guard.ids.add(sb.id)
    try:
        time.sleep(0.2)
        assert sb.exec(["echo", "still"]).stdout == b"still\n"
    finally:
        sb.close()


# ---------------------------------------------------------------------------
# Stdin of any size, flow-controlled

MiB = 1 << 20


def pattern(i):
    """Block i of a deterministic stream that does not compress to nothing."""
    import hashlib
    return hashlib.sha512(b"%d" % i).digest() * (MiB // 64)


def stream_file(path, size):
    """Writes `size` bytes of the pattern to `path`; returns their sha256."""
    import hashlib
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for i in range(size // MiB):
            b = pattern(i)
            h.update(b)
            f.write(b)
    return h.hexdigest()


def vm_hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for %d" % pid)


# Under AddressSanitizer freed memory waits in a quarantine (256 MiB by
# default) before it is reused, so a process that streams 64 MiB through
# small windows still reaches a high-water mark near the stream's size:
# the memory checks below would measure ASan, not us. A small quarantine
# keeps ASan's checks and makes the high-water mark ours again.
ASAN_SMALL_QUARANTINE = ({"ASAN_OPTIONS": ":".join(x for x in (host_env().get("ASAN_OPTIONS"),
                                                              "quarantine_size_mb=8") if x)}
                         if LIB_ASAN else None)


@pytest.mark.parametrize("mib", [64, 100])
def test_exec_stdin_of_any_size(cli, named, host_tmp, mib):
    name = named(env=ASAN_SMALL_QUARANTINE)
    path = os.path.join(host_tmp, "in")
    digest = stream_file(path, mib * MiB)
    sv = ps(cli)[name]["pid"]
    with open(path, "rb") as f:
        data = f.read()
    # The program starts reading late: everything sent meanwhile must wait,
    # not be dropped.
    r = cli(["exec", name, "-i", "--", "sh", "-c", "sleep 1; sha256sum; echo done >&2"], stdin=data, timeout=120,
            measure_rss=True, env=ASAN_SMALL_QUARANTINE)
    del data
    assert r.rc == 0 and r.stdout.split()[0].decode() == digest and r.stderr == "done\n", r
    # Neither the CLI nor the supervisor holds the stream: a few windows.
    assert r.maxrss_kb < 64 * 1024, "the CLI grew to %d KiB" % r.maxrss_kb
    assert vm_hwm_kb(sv) < 64 * 1024, "the supervisor grew to %d KiB" % vm_hwm_kb(sv)


def test_exec_stdin_echoed_back(cli, host_tmp):
    # The program writes as it reads (cat): output and input move together
    # through every window without a deadlock.
    name = "h-" + secrets.token_hex(4)
    assert cli(["create", "--name", name, "--output-limit", str(128 * MiB)]).rc == 0
    try:
        path = os.path.join(host_tmp, "in")
        stream_file(path, 64 * MiB)
        with open(path, "rb") as f:
            data = f.read()
        r = cli(["exec", name, "-i", "--", "cat"], stdin=data, timeout=120)
        assert r.rc == 0 and len(r.stdout) == len(data) and r.stdout == data, (r.rc, len(r.stdout), r.stderr)
    finally:
        cli(["rm", name])


def test_exec_stdin_to_a_program_that_never_reads(cli, named, host_tmp):
    name = named()
    sv = ps(cli)[name]["pid"]
    path = os.path.join(host_tmp, "in")
    stream_file(path, 100 * MiB)
    with open(path, "rb") as f:
        data = f.read()
    # The writer is held back (nothing piles up anywhere) and the timeout
    # still ends the program.
    r = cli(["exec", name, "-i", "--timeout", "2", "--", "sleep", "100"], stdin=data, timeout=60)
    assert r.rc == 124, r
    assert vm_hwm_kb(sv) < 64 * 1024, "the supervisor grew to %d KiB" % vm_hwm_kb(sv)
    r = cli(["exec", name, "-i", "--", "wc", "-c"], stdin=b"12345")
    assert r.rc == 0 and r.stdout.strip() == b"5", r


def test_library_execute_stdin_of_64_mib(sandbox):
    import hashlib
    data = b"".join(pattern(i) for i in range(64))
    res = sandbox.exec(["sh", "-c", "sleep 1; sha256sum; echo ok >&2"], stdin=data)
    assert res.exit_code == 0 and res.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest(), res
    assert res.stderr == b"ok\n", res
    # A program that reads only part of it ends the execute normally.
    res = sandbox.exec(["head", "-c", "10"], stdin=data)
    assert res.exit_code == 0 and res.stdout == data[:10], res


def test_library_process_stdin_streams_with_bounded_memory(sandbox):
    import hashlib
    p = sandbox.spawn(["sh", "-c", "sleep 1; sha256sum"], stdin=True, timeout_ms=120000)
    h = hashlib.sha256()
    before = vm_hwm_kb(os.getpid())
    try:
        for i in range(100):
            b = pattern(i)
            h.update(b)
            p.write(b)
        p.close_stdin()
        res = p.wait(120000)
    finally:
        p.close()
    assert res.exit_code == 0 and res.stdout.split()[0].decode() == h.hexdigest(), res
    assert vm_hwm_kb(os.getpid()) - before < 32 * 1024, "the host grew by %d KiB" % (vm_hwm_kb(os.getpid()) - before)


def test_library_process_stdin_interleaved_with_output(sandbox):
    # cat writes what it reads: write_some and events together move 64 MiB
    # through a 1 MiB output buffer.
    import hashlib
    p = sandbox.spawn(["cat"], stdin=True, timeout_ms=120000)
    sent, got = hashlib.sha256(), hashlib.sha256()
    nin = nout = 0
    try:
        for i in range(64):
            b = memoryview(pattern(i))
            sent.update(b)
            while b:
                n = p.write_some(bytes(b[:1 << 18]))
                b = b[n:]
                nin += n
                while True:
                    ev = p.next_event(0 if n else 100)
                    if ev is None:
                        break
                    assert ev[0] == mbx.MBX_EVENT_STDOUT, ev
                    got.update(ev[1])
                    nout += len(ev[1])
        p.close_stdin()
        while True:
            ev = p.next_event(60000)
            assert ev is not None
            if ev[0] != mbx.MBX_EVENT_STDOUT:
                assert ev[0] == mbx.MBX_EVENT_EXIT and ev[1] == (0, 0), ev
                break
            got.update(ev[1])
            nout += len(ev[1])
    finally:
        p.close()
    assert nin == nout == 64 * MiB and sent.hexdigest() == got.hexdigest()


def test_library_stdin_of_a_program_that_never_reads(sandbox):
    p = sandbox.spawn(["sleep", "100"], stdin=True, timeout_ms=2000)
    try:
        # The window fills, then nothing more is taken.
        total = 0
        for _ in range(64):
            total += p.write_some(b"x" * MiB)
        assert 0 < total <= 1 * MiB, total
        # A blocking write waits until the timeout ends the program.
        with pytest.raises(mbx.MbxError) as e:
            p.write(b"y" * (8 * MiB))
        assert e.value.code == mbx.MBX_ESTATE, e.value
    finally:
        p.close()
    assert sandbox.exec(["echo", "ok"]).stdout == b"ok\n"


def test_error_of_a_fire_and_forget_message_reaches_the_caller(sandbox):
    p = sandbox.spawn(["sleep", "30"], stdin=True)
    try:
        p.close_stdin()
        # Sent before the agent could say that stdin is closed: the error
        # comes back with the next call on the process.
        p.write(b"late")
        deadline = time.monotonic() + 10
        with pytest.raises(mbx.MbxError) as e:
            while time.monotonic() < deadline:
                p.next_event(50)
                p.write(b"again")
        assert e.value.code == mbx.MBX_ESTATE and "no open stdin" in e.value.message, e.value
    finally:
        p.kill()
        p.close()


def test_library_execute_stdin_echoed_back(sandbox):
    # An execute whose program writes as it reads: the library takes the
    # output while it streams stdin, so 64 MiB go through 1 MiB windows.
    data = b"".join(pattern(i) for i in range(64))
    res = sandbox.exec(["cat"], stdin=data)
    assert res.exit_code == 0 and len(res.stdout) > 0 and data.startswith(res.stdout), res
    res = sandbox.exec(["sh", "-c", "cat | wc -c"], stdin=data)
    assert res.exit_code == 0 and res.stdout.strip() == b"%d" % len(data), res
