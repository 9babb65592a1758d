# SPDX-License-Identifier: Apache-2.0
"""A microVM's agent outlives a reset of its channel (docs/microvm.md,
"Resuming"): the host drops its connection to QEMU's chardev socket and
connects again (mbx__microvm_reconnect, what restoring a snapshot does);
the guest's processes run on, their output comes complete, the session is
the same; an agent of another sandbox is refused. Driven through the
`vm-resume` helper (tests/helpers/vm-resume.c), which links the library's
internals. Each sandbox boots a guest (TCG: a few seconds).
"""
import os
import re
import subprocess

import pytest

from conftest import HELPERS, host_env

VM_RESUME = os.path.join(HELPERS, "vm-resume")


@pytest.fixture(autouse=True)
def microvm(doctor):
    info = doctor["backends"]["microvm"]
    if not info.get("available"):
        from conftest import must_work_skip
        must_work_skip("the microvm backend is unavailable here: %s" % info.get("reason"))
    if not os.access(VM_RESUME, os.X_OK):
        pytest.fail("the vm-resume helper is not built: ninja -C build")


def run_helper(mode, guard):
    p = subprocess.run([VM_RESUME, mode], env=host_env(), capture_output=True, text=True, timeout=300)
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


def test_processes_outlive_a_channel_reset_and_their_output_arrives_complete(guard):
    p, results = run_helper("keep", guard)
    check_all(p, results, ["session-known", "counter-runs", "drop", "reconnect", "same-session",
                           "exec-after-reconnect", "counter-went-on-during-reset", "counter-still-runs",
                           "output-during-reset-complete"])


def test_another_sandboxs_agent_is_refused_and_both_sandboxes_reconnect(guard):
    p, results = run_helper("other", guard)
    check_all(p, results, ["sessions-differ", "other-session-refused", "other-sandbox-reconnects",
                           "other-sandbox-execs", "refused-sandbox-reconnects", "refused-sandbox-execs",
                           "same-session-again"])
