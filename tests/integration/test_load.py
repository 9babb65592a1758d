# SPDX-License-Identifier: Apache-2.0
"""Load: many sandboxes one after another and many at once, through the
library in this process, with nothing leaked at the end: no process, no
mount, no descriptor, no thread, no cgroup, no state directory.

Leaks are counted once, around the whole load, against what this process
held before; the guard fixture then checks state directories, processes
and the cgroups of every sandbox id."""
import os
import threading
import time

import mbx
from conftest import cgroup_dirs, descendants, reap_zombies

CYCLES = 1000
CONCURRENT = 64


def snapshot():
    reap_zombies()
    with open("/proc/self/mountinfo") as f:
        mounts = sum(1 for _ in f)
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": len(os.listdir("/proc/self/task")),
        "mounts": mounts,
        "processes": len(descendants()),
    }


def assert_no_leaks(before, ids, state_dir):
    # A joined Python thread may still be on its way out of the kernel.
    deadline = time.monotonic() + 5
    after = snapshot()
    while after["threads"] > before["threads"] and time.monotonic() < deadline:
        time.sleep(0.05)
        after = snapshot()
    # One descriptor may come and go with the listing itself.
    assert after["fds"] <= before["fds"], (before, after)
    assert after["threads"] <= before["threads"], (before, after)
    assert after["mounts"] == before["mounts"], (before, after)
    assert after["processes"] == 0, descendants()
    assert os.listdir(state_dir) == [], os.listdir(state_dir)
    left = {i: cgroup_dirs(i) for i in ids}
    assert not {i: d for i, d in left.items() if d}, left


def test_1000_create_execute_destroy_cycles(lib, guard):
    warm = mbx.Sandbox(lib)  # one-time set-up (agent memfd, probes) out of the count
    warm.exec(["true"])
    warm.close()
    guard.ids.add(warm.id)
    before = snapshot()
    ids = []
    for i in range(CYCLES):
        sb = mbx.Sandbox(lib)
        ids.append(sb.id)
        try:
            res = sb.exec(["/bin/sh", "-c", "echo $0", str(i)])
            assert res.exit_code == 0 and res.stdout == b"%d\n" % i, (i, res)
            assert sb.destroy() == mbx.MBX_OK, i
        finally:
            sb.close()
    assert len(set(ids)) == CYCLES
    assert_no_leaks(before, ids, guard.state_dir)
    guard.ids.update(ids)


def test_64_concurrent_sandboxes(lib, guard):
    # All 64 live at the same moment (a barrier holds them), each runs a
    # command that shows it is its own sandbox, and all go again.
    warm = mbx.Sandbox(lib)
    warm.exec(["true"])
    warm.close()
    guard.ids.add(warm.id)
    before = snapshot()
    barrier = threading.Barrier(CONCURRENT, timeout=120)
    results = [None] * CONCURRENT
    ids = [None] * CONCURRENT

    def one(i):
        sb = None
        try:
            sb = mbx.Sandbox(lib)
            ids[i] = sb.id
            sb.write_file("/workspace/n", b"%d" % i)
            barrier.wait()
            res = sb.exec(["/bin/sh", "-c", "cat /workspace/n; echo; ls /proc | grep -c '^[0-9]'"])
            barrier.wait()
            results[i] = (res.exit_code, res.stdout.decode(), sb.destroy())
        except BaseException as e:  # reported by the test's thread
            results[i] = e
            barrier.abort()
        finally:
            if sb is not None:
                sb.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(CONCURRENT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    guard.ids.update(i for i in ids if i)
    for i, r in enumerate(results):
        assert r is not None, "sandbox %d did not finish" % i
        if isinstance(r, BaseException):
            raise r
        code, out, destroyed = r
        # Its own file, and its own PID namespace: the agent and sh (and
        # ls, grep) at most, never the other 63 sandboxes' processes.
        lines = out.split()
        assert code == 0 and lines[0] == str(i) and int(lines[1]) <= 5, (i, out)
        assert destroyed == mbx.MBX_OK
    assert len(set(ids)) == CONCURRENT
    assert_no_leaks(before, ids, guard.state_dir)
