# SPDX-License-Identifier: Apache-2.0
"""The spare mini-init of an os sandbox (src/agent/payload.c, "the spare"):
made while the agent is idle, it becomes the next execute's mini-init.
These tests check the rules that keep it invisible: none while a process of
the host runs, it serves the next execute, one that died or a request too
big for it falls back to a mini-init cloned per execute, a reset replaces
it, and seccomp filters it cannot install fail the execute naming the
seccomp layer."""
import os
import subprocess
import sys
import textwrap
import time

import pytest

import mbx
from conftest import CLI, proc_table, procs_with_arg, unique_sleep_arg


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def agent_of(sb):
    """The sandbox's agent: this process's child named mimobox-agent (one
    sandbox per test)."""
    me = os.getpid()
    agents = [pid for pid, (ppid, state, argv) in proc_table().items()
              if ppid == me and state != "Z" and argv[:1] == ["mimobox-agent"]]
    assert len(agents) == 1, agents
    return agents[0]


def spares(agent):
    return [pid for pid, (ppid, state, _) in proc_table().items()
            if ppid == agent and state != "Z" and comm(pid) == "mimobox-spare"]


def wait_spare(agent, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = spares(agent)
        if s:
            assert len(s) == 1, s
            return s[0]
        time.sleep(0.01)
    raise AssertionError("no spare mini-init below the idle agent %d: %s" % (agent, proc_table()))


@pytest.fixture
def osbox(lib, guard):
    sb = mbx.Sandbox(lib)
    guard.ids.add(sb.id)
    yield sb
    sb.close()


def test_spare_serves_the_next_execute_and_none_while_one_runs(osbox):
    assert osbox.exec(["true"]).exit_code == 0
    agent = agent_of(osbox)
    spare = wait_spare(agent)
    arg = unique_sleep_arg()
    p = osbox.spawn(["sleep", arg])
    try:
        deadline = time.monotonic() + 10
        while not procs_with_arg(arg) and time.monotonic() < deadline:
            time.sleep(0.01)
        (prog,) = procs_with_arg(arg)
        # The program's mini-init is the spare that was waiting.
        assert proc_table()[prog][0] == spare, (spare, proc_table()[prog])
        assert comm(spare) == "mimobox-init"
        # While it runs no other spare is made: the payload finds as many
        # processes free under --max-procs as with a mini-init per execute.
        time.sleep(0.3)
        assert spares(agent) == [], proc_table()
    finally:
        p.kill()
        p.wait(10000)
        p.close()
    # Idle again: a new spare.
    assert wait_spare(agent) != spare


def test_dead_spare_falls_back_to_a_new_mini_init(osbox):
    osbox.exec(["true"])
    agent = agent_of(osbox)
    for settle in (0, 0.2):
        spare = wait_spare(agent)
        os.kill(spare, 9)
        # Once it is dead: at once (end of file on its socket at the
        # execute, if the agent has not reaped it yet) and after the agent
        # reaped it (its SIGCHLD). One killed while it takes its request is
        # that execute's mini-init: the execute ends killed, as when any
        # mini-init is.
        deadline = time.monotonic() + 10
        while proc_table().get(spare, (0, "Z"))[1] != "Z" and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(settle)
        r = osbox.exec(["sh", "-c", "echo $$; cat /proc/1/comm"])
        assert r.exit_code == 0 and r.stdout == b"2\nmimobox-init\n", r.stdout
        assert wait_spare(agent) != spare


def test_request_beyond_the_spare_falls_back(osbox):
    # A body beyond what the spare takes (SPARE_MAX_BODY, 64 KiB): the
    # spare is killed and a mini-init cloned for the request.
    osbox.exec(["true"])
    agent = agent_of(osbox)
    spare = wait_spare(agent)
    big = "x" * 100000
    r = osbox.exec(["sh", "-c", 'echo ${#1}; ps -e -o pid= | wc -l', "sh", big])
    assert r.exit_code == 0, r.stderr
    # The program's processes only: the mini-init, sh, ps, wc.
    assert r.stdout.split() == [b"100000", b"4"], r.stdout
    assert spare not in spares(agent)
    assert wait_spare(agent) != spare


def test_every_execute_kind_through_the_spare(osbox):
    agent = agent_of(osbox)
    wait_spare(agent)
    r = osbox.exec(["cat"], stdin=b"in through the spare")
    assert r.exit_code == 0 and r.stdout == b"in through the spare"
    wait_spare(agent)
    p = osbox.spawn(["sh", "-c", "tty; read x; echo got $x"], pty=(24, 80))
    p.write(b"line\n")
    out = b""
    deadline = time.monotonic() + 10
    while b"got line" not in out and time.monotonic() < deadline:
        ev = p.next_event(1000)
        if ev is None:
            continue
        kind, data = ev
        if kind in (mbx.MBX_EVENT_STDOUT, mbx.MBX_EVENT_STDERR):
            out += data
        else:
            break
    assert b"/dev/pts/" in out and b"got line" in out, out
    p.wait(10000)
    p.close()


def test_reset_replaces_the_spare(lib, osbox):
    import ctypes

    lib.lib.mbx_sandbox_reset.restype = ctypes.c_int
    lib.lib.mbx_sandbox_reset.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    osbox.exec(["true"])
    agent = agent_of(osbox)
    spare = wait_spare(agent)
    err = ctypes.c_void_p()
    assert lib.lib.mbx_sandbox_reset(osbox._sb, ctypes.byref(err)) == mbx.MBX_OK, lib.take_error(err)
    assert comm(spare) is None or proc_table().get(spare, (0,))[0] != agent
    r = osbox.exec(["sh", "-c", "cat /proc/1/comm; ls /workspace | wc -l"])
    assert r.stdout == b"mimobox-init\n0\n", r.stdout
    assert wait_spare(agent) != spare


# Installs seccomp filters that leave the process fewer instructions than
# the kernel allows on one path (MAX_INSNS_PER_PATH, 32768, with 4 more per
# filter) than the sandbox's filter needs, then runs argv: every install of
# the payload filter fails with ENOMEM.
FILL = textwrap.dedent("""
    import ctypes, os, struct, sys
    libc = ctypes.CDLL(None, use_errno=True)
    room = int(sys.argv[1])
    class fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
    libc.prctl(38, 1, 0, 0, 0)
    left = 32768 - room
    while left > 4:
        n = min(4096, left - 4)
        ins = struct.pack("<HBBI", 0x05, 0, 0, 0) * (n - 1) + struct.pack("<HBBI", 0x06, 0, 0, 0x7fff0000)
        buf = ctypes.create_string_buffer(ins)
        p = fprog(n, ctypes.addressof(buf))
        if libc.prctl(22, 2, ctypes.byref(p), 0, 0) != 0:
            sys.exit("prctl(PR_SET_SECCOMP): errno %d" % ctypes.get_errno())
        left -= n + 4
    os.execv(sys.argv[2], sys.argv[2:])
""")


def test_seccomp_filter_the_spare_cannot_install_fails_the_execute(cli):
    import json

    r = subprocess.run([sys.executable, "-c", FILL, "100", CLI, "run", "--json", "--", "echo", "ran"],
                       capture_output=True, env=cli.env(), timeout=60)
    res = json.loads(r.stdout)
    assert r.returncode == 125 and res["ok"] is False, (r.returncode, res, r.stderr)
    assert res["error"]["layer"] == "seccomp" and res["error"]["errno"] == 12, res
    # With room for the filter, the same run works: the failure was the
    # filter's alone.
    r = subprocess.run([sys.executable, "-c", FILL, "2000", CLI, "run", "--json", "--", "echo", "ran"],
                       capture_output=True, env=cli.env(), timeout=60)
    res = json.loads(r.stdout)
    assert r.returncode == 0 and res["stdout"] == "ran\n", (res, r.stderr)
