# SPDX-License-Identifier: Apache-2.0
"""Restore pools (include/mbx/restore_pool.h, docs/snapshots.md "Restore
pool"): sandboxes restored from one snapshot ahead of time by the pool's
own thread. Driven through the `restore-pool` helper
(tests/helpers/restore-pool.c), which links the library's internals to
look at idle members and kill their agents.

The backends are MIMOBOX_RESTORE_POOL_BACKENDS (comma-separated; default
`os,microvm`: the fast one, and the one a pool is for): e.g.
MIMOBOX_RESTORE_POOL_BACKENDS=os,wasm,microvm.
"""
import os
import re
import subprocess

import pytest

from conftest import HELPERS, host_env, must_work_skip

RESTORE_POOL = os.path.join(HELPERS, "restore-pool")
BACKENDS = [b for b in os.environ.get("MIMOBOX_RESTORE_POOL_BACKENDS", "os,microvm").split(",") if b]


@pytest.fixture(params=BACKENDS)
def pool_backend(request, doctor):
    name = request.param
    info = doctor["backends"].get(name, {})
    if not info.get("available"):
        must_work_skip("the %s backend is unavailable here: %s" % (name, info.get("reason")))
    if not os.access(RESTORE_POOL, os.X_OK):
        pytest.fail("the restore-pool helper is not built: ninja -C build")
    return name


def run_helper(mode, guard, backend, *args, timeout=300):
    p = subprocess.run([RESTORE_POOL, mode, *args], env=host_env({"MBX_TEST_POOL_BACKEND": backend}),
                       capture_output=True, text=True, timeout=timeout)
    lines = p.stdout.splitlines()
    guard.ids.update(m.group(1) for m in map(re.compile(r"sandbox ([0-9a-f]{16})$").match, lines) if m)
    results = {}
    for line in lines:
        m = re.match(r"(not ok|ok) ([a-z-]+)(?: # skip.*)?(?:: (.*))?$", line)
        if m:
            results[m.group(2)] = (m.group(1) == "ok", m.group(3))
    return p, results


def check_all(p, results, names):
    failed = {n: results.get(n, (False, "not reached"))[1] for n in names if not results.get(n, (False,))[0]}
    assert not failed, "failed checks: %r\nstdout:\n%s\nstderr:\n%s" % (
        failed, "\n".join(l for l in p.stdout.splitlines() if not l.startswith("sandbox ")), p.stderr)
    assert p.returncode == 0, p.stdout + p.stderr


def test_members_hold_the_snapshot_and_are_distinct_isolated_and_outlive_the_pool(guard, pool_backend):
    p, results = run_helper("basic", guard, pool_backend)
    check_all(p, results, ["new", "acquire-a", "acquire-b", "distinct", "snapshot-files", "write-a", "isolated",
                           "first-command", "refilled", "stats", "outlives-pool"])


def test_a_member_whose_agent_died_while_idle_is_never_handed_out_and_is_replaced(guard, pool_backend):
    p, results = run_helper("dead", guard, pool_backend)
    if pool_backend not in ("os", "microvm"):
        check_all(p, results, ["dead"])
        pytest.skip("agent pids are known on the os backend only (and QEMU's on microvm)")
    check_all(p, results, ["killed", "acquire", "killed-not-handed-out", "replacement-works", "discarded-counted",
                           "refilled", "killed-again", "replaced-while-idle", "acquire-again",
                           "replacement-works-again"])


def test_members_idle_longer_than_the_idle_timeout_are_replaced(guard, pool_backend):
    p, results = run_helper("expire", guard, pool_backend)
    check_all(p, results, ["new", "expired-replaced", "expired-counted", "acquire", "fresh-handed-out",
                           "snapshot-config-logs"])


def test_min_idle_and_max_members_hold_and_an_empty_pool_times_out(guard, pool_backend):
    p, results = run_helper("limits", guard, pool_backend)
    check_all(p, results, ["new", "stats-count", "min-reached", "never-above-max", "holds-steady", "new-min-zero",
                           "acquire-first", "min-zero-no-refill", "empty-timeout", "empty-timeout-message",
                           "on-demand", "on-demand-works", "on-demand-count", "on-demand-again"])


def test_freeing_a_pool_with_restores_in_flight_leaves_nothing(guard, pool_backend):
    # The guard fixture checks processes, state directories and cgroups.
    p, results = run_helper("inflight", guard, pool_backend)
    check_all(p, results, ["new", "in-flight-seen", "freed-in-flight", "new-again", "acquire",
                           "acquired-outlives-pool"])


def test_bad_settings_and_snapshots_are_refused_with_clear_errors(guard, pool_backend):
    p, results = run_helper("errors", guard, pool_backend)
    check_all(p, results, ["config-new", "null-snapshot", "null-snapshot-suggestion", "zero-max", "huge-max",
                           "huge-min", "huge-idle-timeout", "min-above-max", "min-above-max-suggestion",
                           "other-backend", "unknown-backend", "backend-not-built-in", "nothing-made", "null-pool"])


def test_failing_restores_reach_acquire_and_stats_and_the_pool_recovers(guard, pool_backend, host_tmp):
    if pool_backend in ("wasm", "microvm"):
        pytest.skip("the failure is made with a mount, and %s sandboxes take no mounts" % pool_backend)
    data = os.path.join(host_tmp, "data")
    os.mkdir(data, 0o755)
    p, results = run_helper("failing", guard, pool_backend, data)
    check_all(p, results, ["mount", "new", "renamed-away", "acquire-first", "failure-reaches-acquire",
                           "failure-counted", "last-error", "renamed-back", "recovers", "recovered-works",
                           "last-error-cleared"])
