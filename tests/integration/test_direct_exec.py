# SPDX-License-Identifier: Apache-2.0
"""Direct executes (src/proto/proto.h, "direct executes"): after the second
execute through the agent, the library lends the agent a socket, the agent's next
spare mini-init waits on it, and the next one-shot executes go from the
library to that spare and back without waking the agent. These tests check
that the agent really sleeps through them, and that such an execute gives
the same results as one through the agent: exit codes, signals, output and
its limit, working directory, environment, the errors of a program that
cannot start, a timeout (killed through the agent), a reset that kills the
spare, and several threads at once."""
import ctypes
import os
import threading
import time

import pytest

import mbx
from test_spare_init import agent_of, spares, spawn_sleep_in, wait_spare


def switches(pid):
    """Context switches of pid so far: each wake-up of a sleeping process
    counts one."""
    n = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                n += int(line.split(":")[1])
    return n


def lent_spare(sb, timeout=10):
    """Runs executes until one goes to the lent spare: the second through
    the agent lends the socket, and once the spare on it is ready an
    execute leaves the agent asleep. Returns the agent's pid."""
    agent = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = switches(agent) if agent else None
        assert sb.exec(["true"]).exit_code == 0
        agent = agent or agent_of(sb)
        if before is not None and switches(agent) == before:
            return agent
        time.sleep(0.02)
    raise AssertionError("no execute went to a lent spare in %d s" % timeout)


def config(lib, timeout_ms=None, output_limit=None):
    cfg = mbx.Config(lib)
    if timeout_ms is not None:
        lib.lib.mbx_config_set_timeout_ms.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p]
        assert lib.lib.mbx_config_set_timeout_ms(cfg.cfg, timeout_ms, None) == 0
    if output_limit is not None:
        lib.lib.mbx_config_set_output_limit.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p]
        assert lib.lib.mbx_config_set_output_limit(cfg.cfg, output_limit, None) == 0
    return cfg


@pytest.fixture
def box(lib, guard, request):
    """An os sandbox made from the test's config (request.param: kwargs of
    config()), closed after the test."""
    kw = getattr(request, "param", {})
    with config(lib, **kw) as cfg:
        sb = mbx.Sandbox(lib, config=cfg)
    guard.ids.add(sb.id)
    yield sb
    sb.close()


def test_warm_executes_do_not_wake_the_agent(box):
    agent = lent_spare(box)
    before = switches(agent)
    for i in range(10):
        r = box.exec(["sh", "-c", "echo run %d" % i])
        assert (r.exit_code, r.stdout) == (0, b"run %d\n" % i)
        time.sleep(0.01)
    # Through the agent each execute wakes it at least twice (the request,
    # the mini-init's status): 20 or more here. Directly it sleeps through.
    assert switches(agent) - before < 5, "the agent woke for direct executes"


def test_direct_results_are_those_of_the_agent(box):
    cmds = [
        ["sh", "-c", "echo out; echo err >&2; exit 3"],
        ["sh", "-c", "kill -TERM $$"],
        ["sh", "-c", "pwd; echo $HOME"],
        ["sh", "-c", "head -c 200000 /dev/zero | tr '\\0' x"],
        ["sh", "-c", "sleep 0.2 & echo left"],
    ]
    # Through the agent: a fresh sandbox's first executes, each the first
    # of its own sandbox.
    want = []
    for argv in cmds:
        with mbx.Sandbox(box._l) as other:
            want.append(other.exec(argv))
    lent_spare(box)
    for argv, w in zip(cmds, want):
        got = box.exec(argv)
        assert (got.exit_code, got.signal, got.timed_out, got.stdout, got.stderr) == \
               (w.exit_code, w.signal, w.timed_out, w.stdout, w.stderr), argv
        time.sleep(0.02)


@pytest.mark.parametrize("argv, code, words", [
    (["no-such-program-here"], mbx.MBX_ENOTFOUND, "program `no-such-program-here` not found in the sandbox"),
    (["/etc/hostname"], mbx.MBX_ENOEXEC, "program `/etc/hostname` cannot be executed"),
])
def test_direct_start_failure_says_what_the_agent_says(box, argv, code, words):
    with mbx.Sandbox(box._l) as other:
        rc, _, first = other.exec_status(argv)
    assert rc == code and first.startswith(words), (rc, first)
    agent = lent_spare(box)
    before = switches(agent)
    rc, _, msg = box.exec_status(argv)
    assert (rc, msg) == (code, first)
    assert switches(agent) - before < 2, "the start failure went through the agent"
    # The spare serves on after it.
    time.sleep(0.02)
    assert box.exec(["sh", "-c", "echo again"]).stdout == b"again\n"


@pytest.mark.parametrize("box", [{"output_limit": 1000}], indirect=True)
def test_direct_output_limit(box):
    lent_spare(box)
    r = box.exec(["sh", "-c", "head -c 5000 /dev/zero; echo done >&2"])
    assert (r.exit_code, len(r.stdout), r.stderr) == (0, 1000, b"done\n")


@pytest.mark.parametrize("box", [{"timeout_ms": 400}], indirect=True)
def test_direct_timeout_kills_the_tree_and_the_next_execute_runs(box):
    agent = lent_spare(box)
    t = time.monotonic()
    r = box.exec(["sh", "-c", "sleep 30 & sleep 30; echo never"])
    took = time.monotonic() - t
    assert (r.timed_out, r.signal, r.exit_code, r.stdout) == (True, 9, -1, b"")
    assert took < 10
    # Nothing of it is left, and the executes after it run (through the
    # agent, then directly again).
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and _cmdline(pid) == ["sleep", "30"]]
    for _ in range(3):
        assert box.exec(["sh", "-c", "echo ok"]).stdout == b"ok\n"
        time.sleep(0.05)
    assert agent_of(box) == agent


def _cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0")[:-1]]
    except OSError:
        return None


def test_reset_kills_the_lent_spare_and_executes_go_on(box, lib):
    lent_spare(box)
    reset = lib.lib.mbx_sandbox_reset
    reset.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    assert box.exec(["sh", "-c", "echo before > /tmp/f; cat /tmp/f"]).stdout == b"before\n"
    time.sleep(0.05)
    assert reset(box._sb, None) == 0
    # The spare the reset killed is not used: the execute goes through the
    # agent, and finds the sandbox as good as new.
    r = box.exec(["sh", "-c", "cat /tmp/f 2>&1; echo $?"])
    assert r.stdout.endswith(b"1\n")
    lent_spare(box)
    assert box.exec(["sh", "-c", "echo after"]).stdout == b"after\n"


def test_spawn_takes_the_spare_back(box):
    # A spawn goes through the agent: the lent spare, ready and idle, goes
    # back to it with the request and runs the program; a program that
    # does not start fails at once (the agent waits for that spare's end,
    # which needs the library's copy of its socket closed).
    agent = lent_spare(box)
    spare = wait_spare(agent)
    p = spawn_sleep_in(box, spare)
    p.kill()
    p.wait(10000)
    p.close()
    # Lent again (it moved to a new socket of the library's): the next
    # executes go to it directly.
    lent_spare(box)
    t = time.monotonic()
    with pytest.raises(mbx.MbxError) as e:
        box.spawn(["no-such-program-here"])
    assert e.value.code == mbx.MBX_ENOTFOUND and time.monotonic() - t < 5, e.value
    lent_spare(box)
    before = switches(agent)
    assert box.exec(["sh", "-c", "echo direct"]).stdout == b"direct\n"
    assert switches(agent) - before < 2


def test_request_beyond_the_spare_goes_through_the_agent(box):
    # A body beyond what a spare takes (MBX_SPARE_MAX_BODY, 64 KiB): the
    # agent runs it, and the lent spare stays for the next one.
    agent = lent_spare(box)
    spare = wait_spare(agent)
    big = "x" * 100000
    r = box.exec(["sh", "-c", 'echo ${#1}', "sh", big])
    assert (r.exit_code, r.stdout) == (0, b"100000\n"), r
    # The mini-init cloned for it exits once its execute is over (the
    # agent keeps no second spare), and the lent one is still there.
    deadline = time.monotonic() + 10
    while len(spares(agent)) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert spares(agent) == [spare]


def test_threads_share_the_spare(box):
    lent_spare(box)
    errors = []

    def run(k):
        try:
            for i in range(20):
                r = box.exec(["sh", "-c", "echo %d-%d" % (k, i)])
                if r.stdout != b"%d-%d\n" % (k, i):
                    errors.append((k, i, r))
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append((k, e))

    ts = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == []
