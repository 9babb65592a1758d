# SPDX-License-Identifier: Apache-2.0
"""The spare mini-init of an os sandbox (src/agent/payload.c, "the spare"):
made while the agent is idle, it becomes the next execute's mini-init.
These tests check the rules that keep it invisible: none while a process of
the host runs, it serves the next execute, one that died or a request too
big for it falls back to a mini-init cloned per execute, a reset replaces
it, and seccomp filters it cannot install fail the execute naming the
seccomp layer. And recycling: a mini-init whose program is over waits as
the next spare only when its namespace is empty and its program changed
nothing of it that a later program would inherit."""
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
    """The one spare below the idle agent. A spare renames itself once its
    status went, and a mini-init that is not kept waits as a spare until it
    sees the agent let it go: both are waited out."""
    deadline = time.monotonic() + timeout
    s = []
    while time.monotonic() < deadline:
        s = spares(agent)
        if len(s) == 1:
            return s[0]
        time.sleep(0.01)
    raise AssertionError("not one spare mini-init below the idle agent %d: %s, %s" % (agent, s, proc_table()))


def spawn_sleep_in(sb, spare):
    """Spawns a sleep in sb; returns the process once its program runs,
    checked to be a child of `spare` (its mini-init)."""
    arg = unique_sleep_arg()
    p = sb.spawn(["sleep", arg])
    deadline = time.monotonic() + 10
    while not procs_with_arg(arg) and time.monotonic() < deadline:
        time.sleep(0.01)
    (prog,) = procs_with_arg(arg)
    assert proc_table()[prog][0] == spare, (spare, proc_table()[prog])
    return p


def test_spare_serves_the_next_execute_and_none_while_one_runs(osbox):
    assert osbox.exec(["true"]).exit_code == 0
    agent = agent_of(osbox)
    spare = wait_spare(agent)
    # The program's mini-init is the spare that was waiting.
    p = spawn_sleep_in(osbox, spare)
    try:
        assert comm(spare) == "mimobox-init"
        # While it runs no other spare is made: the payload finds as many
        # processes free under --max-procs as with a mini-init per execute.
        time.sleep(0.3)
        assert spares(agent) == [], proc_table()
    finally:
        p.kill()
        p.wait(10000)
        p.close()
    # Idle again: a spare again, and here the same process: its program's
    # tree is gone and nothing changed it, so it waits for the next
    # execute (recycling; tests below for when it must not).
    assert wait_spare(agent) == spare


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
    # A body beyond what the spare takes (MBX_SPARE_MAX_BODY, 64 KiB): the
    # agent's spare is killed and a mini-init cloned for the request. (A
    # last execute lends the agent no socket, so the spare is the agent's:
    # test_direct_exec.py has the case of one lent to the library.)
    osbox.exec(["true"], last=True)
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


def test_recycled_mini_init_serves_back_to_back_executes(osbox):
    agent = agent_of(osbox)
    arg = unique_sleep_arg()
    # Left running in the background, in a new session, twice forked: the
    # end of the program ends them all the same.
    # The first execute of a sandbox is not kept (one that runs one and
    # goes would wait for its teardown at the destroy): the second is.
    osbox.exec(["true"])
    spare = wait_spare(agent)
    r = osbox.exec(["sh", "-c", "sleep %s & setsid sh -c 'sleep %s & :' & echo $$" % (arg, arg)])
    assert r.exit_code == 0, r
    first = int(r.stdout)
    assert wait_spare(agent) == spare, (spare, proc_table())
    assert procs_with_arg(arg) == [], proc_table()
    for _ in range(3):
        # The same mini-init each time (recycled), its namespace holding
        # only itself and the new program's shell (counted by the shell's
        # own glob, so no other process of the program is in the count);
        # pids go on.
        r = osbox.exec(["sh", "-c", "echo $$; cat /proc/1/comm; set -- /proc/[0-9]*; echo $#"])
        pid, init, nprocs = r.stdout.split()
        assert init == b"mimobox-init" and int(pid) > first and nprocs == b"2", r.stdout
        first = int(pid)
        assert wait_spare(agent) == spare, (spare, proc_table())


def test_last_execute_mini_init_is_not_recycled(osbox):
    # mbx_exec_options_set_last(): the caller resets or destroys the sandbox
    # next, which would have to wait for a kept mini-init's teardown.
    agent = agent_of(osbox)
    for _ in range(2):
        spare = wait_spare(agent)
        r = osbox.exec(["true"], last=True)
        assert r.exit_code == 0, r
        assert wait_spare(agent) != spare
    # The execute after a last one (the caller changed its mind) is served
    # as any other.
    r = osbox.exec(["sh", "-c", "cat /proc/1/comm"])
    assert r.stdout == b"mimobox-init\n", r


def test_recycled_mini_init_counts_each_execute_alone(osbox):
    # The CPU time and peak memory of an execute are its own tree's, not
    # those of every execute its mini-init served.
    osbox.exec(["true"])
    spare = wait_spare(agent_of(osbox))
    big = osbox.exec(["python3", "-c",
                      "import time; b = bytearray(96 << 20); t = time.process_time()\n"
                      "while time.process_time() - t < 0.3: pass"])
    assert big.exit_code == 0, big
    assert big.cpu_time_us >= 250000 and big.peak_memory_bytes >= 96 << 20, (big.cpu_time_us, big.peak_memory_bytes)
    assert wait_spare(agent_of(osbox)) == spare
    small = osbox.exec(["true"])
    assert small.cpu_time_us < 100000 and 0 < small.peak_memory_bytes < 32 << 20, \
        (small.cpu_time_us, small.peak_memory_bytes)


# Settings of a process that its children inherit and that a process of
# the same uid may lower or narrow on another: a program's mini-init (PID 1
# of its namespace) must have them as prepared to serve again.
CHANGES = {
    "rlimit": ("import resource; resource.prlimit(1, resource.RLIMIT_NOFILE, (64, 64))",
               lambda pid: __import__("resource").prlimit(pid, __import__("resource").RLIMIT_NOFILE, (64, 64))),
    "nice": ("import os; os.setpriority(os.PRIO_PROCESS, 1, 15)",
             lambda pid: os.setpriority(os.PRIO_PROCESS, pid, 15)),
    "affinity": ("import os; os.sched_setaffinity(1, {min(os.sched_getaffinity(1))})",
                 lambda pid: os.sched_setaffinity(pid, {min(os.sched_getaffinity(pid))})),
    "scheduler": ("import os; os.sched_setscheduler(1, os.SCHED_IDLE, os.sched_param(0))",
                  lambda pid: os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))),
    "oom_score_adj": ("open('/proc/1/oom_score_adj', 'w').write('900')",
                      lambda pid: open("/proc/%d/oom_score_adj" % pid, "w").write("900")),
}
SETTINGS = ("import os, resource; print(resource.getrlimit(resource.RLIMIT_NOFILE), os.getpriority(os.PRIO_PROCESS, 0),"
            " sorted(os.sched_getaffinity(0)), os.sched_getscheduler(0), open('/proc/self/oom_score_adj').read().strip())")


def settings_and_spare(osbox, change):
    """The settings a program finds (SETTINGS) and the spare waiting after
    that execute."""
    if change == "affinity" and len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one CPU: no affinity to narrow")
    fresh = osbox.exec(["python3", "-c", SETTINGS])
    assert fresh.exit_code == 0, fresh
    return fresh, wait_spare(agent_of(osbox))


def fd_kinds(pid):
    """{"pipe": n, "socket": n, ...} of the descriptors of pid."""
    kinds = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except FileNotFoundError:
            continue
        kind = target.split(":", 1)[0] if target.endswith("]") else "file"
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def test_kept_mini_init_reports_on_its_socket(osbox):
    # A mini-init the agent may keep after its execute (any but the first)
    # gets no status pipe: it reports on its socket, and that report is its
    # ready for the next request (payload.c, AGENT_STATUS_READY). While its
    # program runs it holds the program's stdout and stderr and its socket.
    assert osbox.exec(["true"]).exit_code == 0
    agent = agent_of(osbox)
    for _ in range(2):
        spare = wait_spare(agent)
        p = spawn_sleep_in(osbox, spare)
        try:
            try:
                kinds = fd_kinds(spare)
            except PermissionError:
                pytest.skip("the mini-init's descriptors are not readable by this user")
            assert (kinds.get("pipe"), kinds.get("socket")) == (2, 1), kinds
        finally:
            p.kill()
            p.wait(10000)
            p.close()
        # Recycled after its report on the socket, it serves the next.
        r = osbox.exec(["sh", "-c", "echo out; echo err >&2; exit 3"])
        assert (r.exit_code, r.stdout, r.stderr) == (3, b"out\n", b"err\n"), r


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_program_changing_its_mini_init_changes_no_other_execute(osbox, change):
    agent = agent_of(osbox)
    fresh, spare = settings_and_spare(osbox, change)
    r = osbox.exec(["python3", "-c", CHANGES[change][0]])
    if change == "rlimit":
        # The kernel lets a process lower the limits of another of its uid.
        assert r.exit_code == 0, r
    else:
        # Refused (not the mini-init's owner for these checks, or Landlock).
        assert r.exit_code != 0 and b"PermissionError" in r.stderr, r
    if r.exit_code == 0:
        assert wait_spare(agent) != spare
    assert osbox.exec(["python3", "-c", SETTINGS]).stdout == fresh.stdout


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_changed_mini_init_is_not_recycled(osbox, change):
    # Changed from the host here (the payload cannot: test above): the check
    # behind that refusal, on the mini-init's side.
    agent = agent_of(osbox)
    fresh, spare = settings_and_spare(osbox, change)
    p = spawn_sleep_in(osbox, spare)
    try:
        try:
            CHANGES[change][1](spare)
        except PermissionError:
            pytest.skip("this user cannot change %s of the mini-init" % change)
    finally:
        p.kill()
        p.wait(10000)
        p.close()
    assert wait_spare(agent) != spare
    after = osbox.exec(["python3", "-c", SETTINGS])
    assert after.stdout == fresh.stdout, (change, fresh.stdout, after.stdout)


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


# The layers a program runs under, as it sees them: no_new_privs, seccomp
# mode, the five capability sets, securebits (PR_GET_SECUREBITS), and a
# write that only Landlock refuses (test_security.py,
# test_landlock_blocks_writes_to_proc).
LAYERS_PROBE = r"""
import ctypes, errno
st = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
try:
    with open("/proc/self/comm", "w") as f:
        f.write("x")
    ll = "ok"
except OSError as e:
    ll = errno.errorcode[e.errno]
print(" ".join(st[k].strip() for k in ("NoNewPrivs", "Seccomp", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")),
      ctypes.CDLL(None).prctl(27, 0, 0, 0, 0), ll)
"""
ALL_LAYERS = b"1 2 " + b"0000000000000000 " * 5 + b"239 EACCES\n"


def test_programs_have_every_layer_whichever_mini_init_runs_them(osbox):
    # A spare takes no_new_privs, Landlock, securebits, the bounding set
    # and the filters before its request; a cloned mini-init leaves them
    # to the program. Either way the program has all of them: the first
    # execute (a clone), one through a fresh spare, one through the
    # recycled mini-init of the one before, and one on a terminal through
    # a spare (whose terminal the agent opened for it).
    agent = agent_of(osbox)
    r = osbox.exec(["python3", "-c", LAYERS_PROBE])
    assert r.stdout == ALL_LAYERS, r
    wait_spare(agent)
    r = osbox.exec(["python3", "-c", LAYERS_PROBE])
    assert r.stdout == ALL_LAYERS, r
    r = osbox.exec(["python3", "-c", LAYERS_PROBE])
    assert r.stdout == ALL_LAYERS, r
    wait_spare(agent)
    p = osbox.spawn(["python3", "-c", LAYERS_PROBE], pty=(24, 80))
    out = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ev = p.next_event(1000)
        if ev is None:
            continue
        kind, data = ev
        if kind != mbx.MBX_EVENT_STDOUT:
            break
        out += data
    p.close()
    assert out.replace(b"\r\n", b"\n") == ALL_LAYERS, out


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
