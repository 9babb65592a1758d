# SPDX-License-Identifier: Apache-2.0
"""Resource limits: memory and processes (through cgroups as root here,
through rlimits as an unprivileged user), and output caps with bounded
memory on the host side."""
import os
import secrets
import shutil

import pytest

from conftest import descendants, procs_with_arg, unique_sleep_arg

MiB = 1 << 20

# Allocates and touches N MiB, then says so.
ALLOC = r"""
import sys
n = int(sys.argv[1]) << 20
b = bytearray(n)
for i in range(0, n, 4096):
    b[i] = 1
print("allocated", sys.argv[1])
"""


def test_limits_mechanism_matches_the_caller(limits_mech, user, doctor):
    # The ladder: root on this host has cgroup v1 (or v2); an unprivileged
    # user has no writable cgroup and falls back to rlimits. The doctor must
    # say which, since the tests below expect the matching behaviour.
    # The rlimit rung always works but bounds less than a cgroup: "partial",
    # with what it leaves unbounded in the detail.
    checks = {c["name"]: c for c in doctor["checks"]}
    assert checks["rlimits"]["status"] == "partial", doctor
    assert "not bounded" in checks["rlimits"]["detail"], doctor
    assert checks["disk"]["status"] == "ok" and "tmpfs" in checks["disk"]["detail"], doctor
    if not user.is_root:
        assert limits_mech == "rlimit", doctor


def test_memory_limit_enforced(cli, limits_mech):
    r, res = cli.json("--memory", "64", "--", "python3", "-c", ALLOC, "256", timeout=60)
    # The library names the rung it fell back to (MIMOBOX_LOG=info).
    rungs = [l for l in r.log if "limits through" in l]
    if limits_mech == "cgroup":
        assert not any("limits through rlimit" in l for l in rungs), r.log
    else:
        assert any("limits through rlimit" in l for l in rungs), r.log
    assert "allocated" not in res["stdout"], res
    assert res["timed_out"] is False, res
    if limits_mech == "cgroup":
        assert res["signal"] == 9, res
        assert res["oom_killed"] is True, res
        assert r.rc == 137, r
    else:
        # RLIMIT_DATA: the allocation itself fails.
        assert res["exit_code"] not in (0, None) or res["signal"] in (9, 11), res
        assert "MemoryError" in res["stderr"] or res["signal"] in (9, 11), res
        assert res["oom_killed"] is False, res


def test_memory_under_the_limit_works(cli):
    r, res = cli.json("--memory", "64", "--", "python3", "-c", ALLOC, "16", timeout=60)
    assert res["exit_code"] == 0 and res["stdout"] == "allocated 16\n", res


def test_memory_control_without_a_tight_limit(cli):
    # The same 256 MiB allocation works under the default 512 MiB limit:
    # the failure above is the limit, not the sandbox.
    r, res = cli.json("--", "python3", "-c", ALLOC, "256", timeout=60)
    assert res["exit_code"] == 0 and res["stdout"] == "allocated 256\n", res


def test_memory_limit_covers_tmpfs(cli, limits_mech):
    # Files in /tmp are memory too: writing 128 MiB there with a 64 MiB limit
    # must fail one way or another, and nothing is left on the host.
    r, res = cli.json("--memory", "64", "--", "sh", "-c",
                      "head -c %d /dev/zero > /tmp/big; echo rc=$?; ls -l /tmp/big" % (128 * MiB), timeout=60)
    assert res["signal"] == 9 or "rc=0\n" not in res["stdout"], res


def test_oom_in_the_sandbox_spares_the_agent(cli, limits_mech):
    """The out-of-memory killer takes an execute's tree, never the agent:
    files in the sandbox's tmpfs are charged to its memory cgroup but are no
    process's, so without the payload's oom_score_adj at the top the agent
    (the largest process left) could be the victim and the sandbox lost."""
    if limits_mech != "cgroup":
        pytest.skip("tmpfs pages count against the memory limit only with a memory cgroup")
    name = "oom-" + secrets.token_hex(4)
    assert cli(["create", "--name", name, "--memory", "64"]).rc == 0
    try:
        r = cli(["exec", name, "--", "cat", "/proc/self/oom_score_adj", "/proc/1/oom_score_adj"])
        assert r.rc == 0 and r.out == "1000\n1000\n", r
        sup = {s["name"]: s for s in cli(["ps", "--json"]).json["sandboxes"]}[name]["pid"]
        agents = []
        for pid in descendants(sup):
            try:
                # The agent runs from a memfd: its name is the memfd's.
                with open("/proc/%d/comm" % pid) as f:
                    if f.read().strip().startswith("memfd:mimobox-a"):
                        with open("/proc/%d/oom_score_adj" % pid) as g:
                            agents.append(int(g.read()))
            except OSError:
                pass
        assert agents and all(v < 1000 for v in agents), agents
        for _ in range(3):
            r = cli(["exec", name, "--", "sh", "-c", "head -c %d /dev/zero > /tmp/big; echo rc=$?" % (128 * MiB)],
                    timeout=60)
            assert r.rc != 0 or "rc=0" not in r.out, r
            # The agent is there to remove the file (a new program would
            # meet the full cgroup first), and runs the next program.
            r = cli(["rm", "-f", name + ":/tmp/big"], timeout=60)
            assert r.rc == 0, ("the sandbox did not survive its program's OOM", r)
            r = cli(["exec", name, "--", "echo", "alive"], timeout=60)
            assert r.rc == 0 and r.out == "alive\n", r
    finally:
        cli(["rm", name])


FORK_BOMB = r"""
import errno, os, sys, time
n, err = 0, None
for i in range(100):
    try:
        pid = os.fork()
    except OSError as e:
        err = errno.errorcode.get(e.errno, str(e.errno))
        break
    if pid == 0:
        os.execvp("sleep", ["sleep", sys.argv[1]])
    n += 1
print("forked", n, err, flush=True)
time.sleep(1000)
"""


def test_fork_loop_bounded_by_max_procs(cli):
    arg = unique_sleep_arg()
    r, res = cli.json("--max-procs", "20", "--timeout", "2", "--", "python3", "-c", FORK_BOMB, arg, timeout=60)
    assert r.rc == 124 and res["timed_out"] is True, r
    words = res["stdout"].split()
    assert words[:1] == ["forked"], res
    n = int(words[1])
    assert 1 <= n < 20, "forked %d sleepers under --max-procs 20: %s" % (n, res)
    assert words[2] == "EAGAIN", res
    assert procs_with_arg(arg) == [], "sleepers of the fork loop survive"


def test_shell_fork_loop_bounded_by_max_procs(cli):
    arg = unique_sleep_arg()
    script = "i=0; while [ $i -lt 100 ]; do sleep %s & i=$((i+1)); done; wait" % arg
    r, res = cli.json("--max-procs", "20", "--timeout", "2", "--", "sh", "-c", script, timeout=60)
    assert r.rc != 0, r
    assert "fork" in res["stderr"].lower(), res
    assert procs_with_arg(arg) == []


def test_output_limit_option(cli):
    limit = 1048576
    r, res = cli.json("--output-limit", str(limit), "--", "head", "-c", "50000000", "/dev/zero", timeout=60)
    assert r.rc == 0, r
    assert res["exit_code"] == 0 and res["signal"] == 0 and res["timed_out"] is False, {k: v for k, v in res.items() if k != "stdout"}
    assert res["stdout_truncated"] is True
    assert len(res["stdout"]) == limit
    assert res["stdout"] == "\0" * limit
    assert res["stderr_truncated"] is False


def test_output_limit_applies_to_stderr(cli):
    r, res = cli.json("--output-limit", "1000", "--", "sh", "-c", "head -c 5000 /dev/zero | tr '\\0' e >&2; echo small",
                      timeout=60)
    assert res["stderr_truncated"] is True and len(res["stderr"]) == 1000, res
    assert res["stdout_truncated"] is False and res["stdout"] == "small\n", res


def check_rss(r, bound_mib=200):
    assert r.maxrss_kb < bound_mib * 1024, "mimobox peaked at %d MiB" % (r.maxrss_kb // 1024)


def test_default_output_cap_with_bounded_host_memory(cli):
    r, res = cli.json("--", "sh", "-c", "head -c 100000000 /dev/zero | tr '\\0' a", timeout=120, measure_rss=True)
    assert r.rc == 0, r
    assert res["exit_code"] == 0 and res["timed_out"] is False
    assert res["stdout_truncated"] is True
    assert len(res["stdout"]) == 16 * MiB, len(res["stdout"])
    check_rss(r)


def test_streamed_output_with_bounded_host_memory(cli):
    r = cli.run("--", "sh", "-c", "head -c 100000000 /dev/zero", timeout=120, measure_rss=True)
    assert r.rc == 0, r
    assert len(r.stdout) >= 16 * MiB
    assert set(r.stdout) == {0}
    check_rss(r)


def test_streamed_truncation_is_reported(cli):
    # Without --json the output goes by as it comes; what the limit dropped
    # must still be said (on stderr, after the output).
    r = cli.run("--output-limit", "10", "--", "echo", "0123456789abcdef", timeout=30)
    assert r.rc == 0, r
    assert r.stdout == b"0123456789", r
    assert "output limit" in r.stderr, r


def test_cpu_quota(cli, limits_mech, doctor):
    # A busy loop for 2 s of wall time: with a 20% quota it gets about 0.4 s
    # of CPU. Without a cgroup cpu controller the quota cannot be enforced,
    # and asking for it is an error naming the layer, never a silent no-op.
    busy = ["--cpu", "0.2", "--timeout", "2", "--", "sh", "-c", "while :; do :; done"]
    cpu_ok = {c["name"]: c for c in doctor["checks"]}.get("cgroup-v1", {}).get("status") == "ok" \
        or {c["name"]: c for c in doctor["checks"]}.get("cgroup-v2", {}).get("status") == "ok"
    if limits_mech == "cgroup" and cpu_ok:
        r, res = cli.json(*busy, timeout=30)
        assert res["timed_out"] is True, res
        assert 50 < res["cpu_time_ms"] < 1000, res
        # Control: without the quota the same loop burns what the machine
        # gives it (most of the 2 s when idle, less when other work shares
        # the cores); the quota must cut that clearly.
        r, control = cli.json("--timeout", "2", "--", "sh", "-c", "while :; do :; done", timeout=30)
        assert control["cpu_time_ms"] > 600, control
        assert res["cpu_time_ms"] < 0.7 * control["cpu_time_ms"], (res, control)
    else:
        r = cli.run(*busy, timeout=30)
        assert r.rc == 125, r
        assert "CPU quota" in r.stderr, r
        r, res = cli.json("--allow-degraded", *busy, timeout=30)
        assert res["timed_out"] is True, res


# ---------------------------------------------------------------------------
# Memory that RLIMIT_DATA does not count (#limits): shmem objects, files in
# the tmpfs mounts, SysV shared memory. With a cgroup it is all charged to
# the sandbox; on the rlimit rung each is capped or denied.

# Holds MiB of memory one way (argv[1]) in 1 MiB steps up to argv[2] MiB,
# reporting each step at once ("held N"), then "error ERRNO" or "done".
HOLD = r"""
import ctypes, errno, mmap, os, sys
mode, total = sys.argv[1], int(sys.argv[2])
chunk = b"x" * (1 << 20)
held = 0
def say(s):
    os.write(1, (s + "\n").encode())
try:
    if mode == "memfd":
        fd = os.memfd_create("hold")
        for i in range(total):
            os.write(fd, chunk); held += 1; say("held %d" % held)
    elif mode in ("tmp", "shm", "workspace"):
        path = {"tmp": "/tmp", "shm": "/dev/shm", "workspace": "/workspace"}[mode] + "/hold-" + sys.argv[3]
        with open(path, "wb", buffering=0) as f:
            for i in range(total):
                f.write(chunk); held += 1; say("held %d" % held)
    elif mode == "anon":
        m = mmap.mmap(-1, total << 20)
        for i in range(total):
            m[i << 20:(i + 1) << 20] = chunk; held += 1; say("held %d" % held)
    elif mode == "sysv":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmat.restype = ctypes.c_void_p
        for i in range(total // 8):
            sid = libc.shmget(0, 8 << 20, 0o1600)
            if sid < 0:
                raise OSError(ctypes.get_errno(), "shmget")
            addr = libc.shmat(sid, None, 0)
            if addr is None or addr == ctypes.c_void_p(-1).value:
                raise OSError(ctypes.get_errno(), "shmat")
            ctypes.memset(addr, 1, 8 << 20)
            libc.shmctl(sid, 0, None)
            held += 8; say("held %d" % held)
except OSError as e:
    say("error %s" % errno.errorcode.get(e.errno, e.errno))
    sys.exit(3)
say("done")
"""


def held(stdout):
    """MiB the HOLD program reported holding last."""
    n = 0
    for line in stdout.splitlines():
        if line.startswith("held "):
            n = int(line.split()[1])
    return n


def hold(cli, mode, mib, *opts, tag="a"):
    r, res = cli.json("--memory", "64", *opts, "--", "python3", "-c", HOLD, mode, str(mib), tag, timeout=120)
    return r, res


@pytest.mark.parametrize("mode", ["memfd", "shm", "tmp", "sysv", "anon"])
def test_memory_limit_bounds_shared_memory(cli, limits_mech, mode):
    # 192 MiB held one way under --memory 64: never more than the limit.
    r, res = hold(cli, mode, 192)
    got = held(res["stdout"])
    assert got <= 64, res
    assert "done" not in res["stdout"], res
    if limits_mech == "cgroup":
        # Charged to the sandbox: the OOM killer stops it at the limit.
        assert res["signal"] == 9 and res["oom_killed"] is True, res
        assert res["limits"].startswith("cgroup") and res["limits_partial"] is None, res
    else:
        # Denied or capped, with the error a program expects; no kill.
        want = {"memfd": "error ENOSYS", "anon": "error ENOMEM", "shm": "error ENOSPC", "tmp": "error ENOSPC",
                "sysv": "error ENOSPC"}[mode]
        assert want in res["stdout"], res
        assert res["exit_code"] == 3 and res["oom_killed"] is False, res
        assert res["limits"] == "rlimit", res
        assert "not bounded" in res["limits_partial"], res
        # The caller asked for --memory: one line says it holds in part.
        warn = [l for l in r.stderr.splitlines() if "only partly enforced" in l]
        assert len(warn) == 1 and "(rlimit)" in warn[0], r


def test_tmp_and_shm_share_one_budget(cli, limits_mech):
    # 40 MiB in /tmp, then 40 MiB in /dev/shm, in one sandbox with --memory
    # 64: together they stay within the limit.
    cmd = 'python3 -c "$0" tmp 40 a; python3 -c "$0" shm 40 b'
    r, res = cli.json("--memory", "64", "--", "sh", "-c", cmd, HOLD, timeout=120)
    parts = res["stdout"].split("done\n")
    assert len(parts) == 2 and held(parts[0]) == 40, res
    assert 40 + held(parts[1]) <= 64, res
    if limits_mech == "rlimit":
        assert "error ENOSPC" in parts[1], res


def test_memory_guard_keeps_ordinary_programs_working(cli):
    # What RLIMIT_DATA counts still works under the guard: private
    # mappings, file-backed shared mappings, threads, a pipe to a child.
    prog = r"""
import mmap, os, subprocess, threading
m = mmap.mmap(-1, 8 << 20, flags=mmap.MAP_PRIVATE); m[0:5] = b"hello"
with open("/tmp/f", "wb+") as f:
    f.truncate(1 << 20); s = mmap.mmap(f.fileno(), 1 << 20); s[0:2] = b"ok"
t = threading.Thread(target=lambda: None); t.start(); t.join()
print(m[0:5].decode(), s[0:2].decode(), subprocess.run(["echo", "child"], capture_output=True, text=True).stdout.strip())
"""
    r, res = cli.json("--memory", "64", "--", "python3", "-c", prog, timeout=60)
    assert res["exit_code"] == 0 and res["stdout"] == "hello ok child\n", res


def test_sysv_limits_cannot_be_raised_from_inside(cli, limits_mech):
    # The ipc sysctls belong to the namespace's root, which the payload is:
    # /proc/sys is read-only to it.
    # /proc/sys is read-only to it (Landlock would stop the write as well;
    # the mount flag is checked on its own).
    r, res = cli.json("--memory", "64", "--", "sh", "-c",
                      "echo 1073741824 > /proc/sys/kernel/shmmax; cat /proc/sys/kernel/shmmax; "
                      "grep ' /proc/sys ' /proc/self/mountinfo; "
                      "cat /proc/sys/kernel/msgmni /proc/sys/kernel/sem", timeout=60)
    assert "1073741824" not in res["stdout"], res
    if limits_mech == "rlimit":
        lines = res["stdout"].splitlines()
        assert lines[0] == "%d" % (64 * MiB), res
        assert lines[1].split()[5].split(",")[0] == "ro", res
        # Message queues (16 KiB each) and semaphores (64 bytes each) too.
        assert lines[2] == "%d" % (64 * MiB // 16384), res
        assert lines[3].split()[1] == "%d" % (64 * MiB // 64), res


def test_default_limits_run_quietly(cli):
    # The zero-config run keeps working for every caller, and the partial
    # limits warning is only for limits the caller asked for.
    r = cli.run("--", "true", timeout=60)
    assert r.rc == 0, r
    assert "partly enforced" not in r.stderr, r


# ---------------------------------------------------------------------------
# Disk: /workspace, /tmp and /dev/shm share one sized tmpfs per sandbox.

def test_disk_limit_bytes(cli, guard):
    # 64 MiB into /workspace with --disk 16: ENOSPC inside at the limit, the
    # sandbox works on, nothing lands on the host.
    prog = ('python3 -c "$0" workspace 64 a; echo rc=$?; rm /workspace/hold-a; '
            'echo after > /workspace/after && cat /workspace/after')
    r, res = cli.json("--disk", "16", "--", "sh", "-c", prog, HOLD, timeout=120)
    out = res["stdout"]
    assert "error ENOSPC" in out and "rc=3" in out, res
    assert held(out) <= 16, res
    assert "after\n" in out, res
    assert res["exit_code"] == 0, res


def test_disk_limit_message(cli):
    r, res = cli.json("--disk", "4", "--", "sh", "-c", "head -c 8388608 /dev/zero > /workspace/big", timeout=60)
    assert res["exit_code"] != 0 and "No space left on device" in res["stderr"], res


def test_disk_limit_inodes(cli):
    # --disk 16 gives 1024 inodes: 3000 empty files do not fit.
    prog = ("i=0; while [ $i -lt 3000 ]; do true > /workspace/f$i || break; i=$((i+1)); done; echo made=$i; "
            "rm -f /workspace/f*; true > /workspace/again && echo again")
    r, res = cli.json("--disk", "16", "--", "sh", "-c", prog, timeout=120)
    made = int(res["stdout"].split("made=")[1].split()[0])
    assert 900 < made < 1024, res
    assert "No space left on device" in res["stderr"], res
    assert res["stdout"].endswith("again\n"), res


def test_disk_limit_covers_tmp_and_shm(cli):
    # The same budget: 12 MiB in /tmp leaves 4 MiB of a 16 MiB disk.
    prog = ("head -c 12582912 /dev/zero > /tmp/a && echo tmp-ok; head -c 8388608 /dev/zero > /dev/shm/b; "
            "echo rc=$?")
    r, res = cli.json("--disk", "16", "--", "sh", "-c", prog, timeout=60)
    assert "tmp-ok" in res["stdout"] and "rc=0" not in res["stdout"], res
    assert "No space left on device" in res["stderr"], res


def test_disk_writes_never_reach_the_host(cli, guard):
    # A named sandbox writes 96 MiB into /workspace: the host's disk holds
    # none of it (state directory) while it lives.
    name = "disk-" + secrets.token_hex(3)
    r = cli(["create", "--disk", "128", "--name", name])
    assert r.rc == 0, r
    try:
        before = shutil.disk_usage(guard.state_dir).used
        r = cli(["exec", name, "--", "sh", "-c", "head -c 100663296 /dev/urandom > /workspace/big && ls -l /workspace/big"])
        assert r.rc == 0 and "100663296" in r.out, r
        total = 0
        for root, _, files in os.walk(guard.state_dir):
            for f in files:
                try:
                    total += os.lstat(os.path.join(root, f)).st_blocks * 512
                except OSError:
                    pass
        assert total < 4 * MiB, total
        # Others share this disk: allow their noise, not our 96 MiB.
        assert shutil.disk_usage(guard.state_dir).used - before < 64 * MiB
        r = cli(["cat", name, "/workspace/big"])
        assert r.rc == 0, r
        # The file API reaches the storage: a host file larger than what
        # is left does not fit.
    finally:
        cli(["rm", name])


@pytest.mark.parametrize("value", ["0", "-1", "lots", "1.5", "1048577", "2G"])
@pytest.mark.parametrize("verb", ["run", "create"])
def test_bad_disk_values(cli, verb, value):
    words = [verb, "--disk", value] + (["--", "true"] if verb == "run" else [])
    r = cli(words)
    assert r.rc == 125, r
    assert "--disk" in r.stderr and value in r.stderr, r


def test_file_api_respects_disk_limit(cli, host_tmp):
    # `cp` reaches the workspace through the agent: a file larger than the
    # disk limit fails with ENOSPC and leaves nothing half-written.
    big = os.path.join(host_tmp, "big")
    with open(big, "wb") as f:
        f.write(os.urandom(8 * MiB))
    small = os.path.join(host_tmp, "small")
    with open(small, "wb") as f:
        f.write(b"small\n")
    name = "cp-" + secrets.token_hex(3)
    r = cli(["create", "--disk", "4", "--name", name])
    assert r.rc == 0, r
    try:
        r = cli(["cp", big, name + ":/workspace/big"])
        assert r.rc != 0 and "No space left on device" in r.stderr, r
        r = cli(["cp", small, name + ":/workspace/small"])
        assert r.rc == 0, r
        r = cli(["exec", name, "--", "ls", "/workspace"])
        assert r.rc == 0 and r.out == "small\n", r
    finally:
        cli(["rm", name])


def test_named_sandbox_reports_partial_limits(cli, limits_mech):
    # `create` and `exec --json` say how the limits hold, as `run` does.
    r = cli(["create", "--json", "--memory", "64"])
    assert r.rc == 0, r
    j = r.json
    try:
        warn = [l for l in r.stderr.splitlines() if "only partly enforced" in l]
        if limits_mech == "rlimit":
            assert j["limits"] == "rlimit" and "not bounded" in j["limits_partial"] and len(warn) == 1, r
        else:
            assert j["limits"].startswith("cgroup") and j["limits_partial"] is None and not warn, r
        e = cli(["exec", "--json", j["name"], "--", "true"])
        assert e.rc == 0 and e.json["limits"] == j["limits"] and e.json["limits_partial"] == j["limits_partial"], e
    finally:
        cli(["rm", j["name"]])
