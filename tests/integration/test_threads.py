# SPDX-License-Identifier: Apache-2.0
"""One sandbox used from several threads at once (docs/api.md "Threads",
include/mbx/sandbox.h), and the event descriptor that multiplexes a
sandbox's processes (mbx_sandbox_event_fd, include/mbx/process.h). Driven
through the `threads` helper (tests/helpers/threads.c), which uses only the
public API.

The checks assert what happened and in which order, never how fast: e.g.
that an execute in one thread ends while another thread is still blocked
in mbx_process_next_event().
"""
import os
import re
import subprocess

import pytest

from conftest import HELPERS, host_env, must_work_skip

THREADS = os.path.join(HELPERS, "threads")
MODULES = os.path.join(HELPERS, "wasm")


def run_helper(guard, *args, timeout=300):
    if not os.access(THREADS, os.X_OK):
        pytest.fail("the threads helper is not built: ninja -C build")
    p = subprocess.run([THREADS, *args], env=host_env(), capture_output=True, text=True, timeout=timeout)
    lines = p.stdout.splitlines()
    guard.ids.update(m.group(1) for m in map(re.compile(r"sandbox ([0-9a-f]{16})$").match, lines) if m)
    results = {}
    for line in lines:
        m = re.match(r"(not ok|ok) ([a-z-]+)(?:: (.*))?$", line)
        if m:
            results[m.group(2)] = (m.group(1) == "ok", m.group(3))
    return p, results


def check_all(p, results, names):
    failed = {n: results.get(n, (False, "not reached"))[1] for n in names if not results.get(n, (False,))[0]}
    assert not failed, "failed checks: %r\nstdout:\n%s\nstderr:\n%s" % (failed, p.stdout, p.stderr)
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.fixture
def wasm_modules(doctor):
    if not doctor["backends"]["wasm"]["available"]:
        must_work_skip("the wasm backend is not available: %s" % doctor["backends"]["wasm"]["reason"])
    mods = [os.path.join(MODULES, m) for m in ("hello.wasm", "files.wasm")]
    missing = [m for m in mods if not os.path.exists(m)]
    if missing:
        must_work_skip("test modules not built: %s (clang-14 with wasm32-wasi)" % missing)
    return mods


def test_os_eight_threads_execute_write_read_and_spawn_on_one_sandbox(guard):
    p, results = run_helper(guard, "mixed", "os", "8", "6")
    check_all(p, results, ["mixed", "still-works"])


def test_wasm_eight_threads_execute_and_use_files_on_one_sandbox(guard, wasm_modules):
    p, results = run_helper(guard, "mixed", "wasm", "8", "4", *wasm_modules)
    check_all(p, results, ["mixed", "still-works"])


def test_microvm_four_threads_on_one_sandbox(guard, doctor, microvm_runs):
    if not microvm_runs:
        must_work_skip("a microvm sandbox cannot start here: %s" % doctor["backends"]["microvm"].get("reason"))
    p, results = run_helper(guard, "mixed", "microvm", "4", "2", timeout=900)
    check_all(p, results, ["mixed", "still-works"])


def test_event_fd_multiplexes_32_processes_without_timeouts(guard):
    p, results = run_helper(guard, "poll", "os", "32")
    check_all(p, results, ["event-fd-stable", "event-fd-idle", "multiplexed", "event-fd-drained",
                           "event-fd-after-destroy"])


def test_event_fd_is_not_available_without_processes_on_wasm(guard, wasm_modules):
    p, results = run_helper(guard, "poll", "wasm", "1")
    check_all(p, results, ["event-fd-wasm"])


def test_blocking_next_event_does_not_hold_up_other_threads(guard):
    p, results = run_helper(guard, "order", "os")
    check_all(p, results, ["exec-while-blocked", "exec-before-event", "files-while-blocked", "files-before-event",
                           "snapshot-refused-while-busy", "stdin-while-blocked", "blocked-gets-event",
                           "snapshot-when-idle", "fork-when-idle", "exec-after-fork"])
