# SPDX-License-Identifier: Apache-2.0
"""What only the microvm backend has: a guest kernel of its own under QEMU.

Everything a sandbox does through its agent (executes, streaming, stdin,
processes, PTYs, files) is tested on both backends by the modules that use
the `backend` fixture; here: routing, the guest's own kernel and limits, and
the failures a VM adds (a guest that hangs, panics, or whose QEMU is killed).
These run on TCG on hosts without hardware virtualization (docs/microvm.md).
"""
import os
import signal
import time

import pytest

import mbx
from conftest import ISOLATION, descendants

pytestmark = pytest.mark.usefixtures("microvm")


@pytest.fixture
def microvm(doctor):
    info = doctor["backends"]["microvm"]
    if not info.get("available"):
        from conftest import must_work_skip
        must_work_skip("the microvm backend is unavailable here: %s" % info.get("reason"))


@pytest.fixture
def vm(lib, guard):
    sb = mbx.Sandbox(lib, isolation=ISOLATION["microvm"])
    guard.ids.add(sb.id)
    yield sb
    sb.close()


def qemu_pids(sandbox_id):
    """QEMU processes below this test process (each test here has one VM)."""
    return [pid for pid, argv in descendants().items() if argv and "qemu-system" in argv[0]]


def test_untrusted_code_routes_to_a_guest_kernel(cli):
    host = os.uname().release
    r, j = cli.json("--trust", "untrusted", "--", "uname", "-r")
    assert j["isolation"] == "microvm", r
    assert j["exit_code"] == 0, r
    guest = j["stdout"].strip()
    assert guest and guest != host, (guest, host)


def test_guest_ram_is_the_memory_limit(cli):
    r, j = cli.json("--isolation", "microvm", "--memory", "192", "--", "sh", "-c",
                    "grep MemTotal /proc/meminfo")
    assert j["exit_code"] == 0, r
    kib = int(j["stdout"].split()[1])
    # The kernel keeps a few MiB for itself: what it reports is a little
    # under what QEMU gives.
    assert 150 * 1024 < kib <= 192 * 1024, j["stdout"]


def test_a_command_that_never_ends_is_stopped_by_the_timeout(cli):
    r, j = cli.json("--isolation", "microvm", "--timeout", "2", "--", "sleep", "1000")
    assert j["timed_out"] is True, r
    assert j["elapsed_ms"] < 20000, r


def test_writes_stop_at_the_disk_limit(cli):
    r, j = cli.json("--isolation", "microvm", "--disk", "8", "--", "sh", "-c",
                    "dd if=/dev/zero of=/workspace/big bs=1M count=32 2>&1; echo rc=$?")
    assert "No space left" in j["stdout"], r
    assert "rc=0" not in j["stdout"], r


def test_the_process_limit_holds_in_the_guest(cli):
    r, j = cli.json("--isolation", "microvm", "--max-procs", "8", "--", "sh", "-c",
                    "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done 2>&1; wait; echo done")
    assert "fork" in j["stdout"].lower() or "resource" in j["stdout"].lower() or "again" in j["stdout"].lower(), r


def test_a_guest_that_panics_gives_a_clear_error_and_leaves_nothing(vm):
    status, res, msg = vm.exec_status(["sh", "-c", "echo c > /proc/sysrq-trigger; sleep 100"])
    assert status != mbx.MBX_OK, (status, res)
    assert "stopped working" in msg, msg
    assert "panic" in msg.lower() or "sysrq" in msg.lower(), msg
    # The sandbox is gone: later calls say so.
    status, _, msg = vm.exec_status(["true"])
    assert status == mbx.MBX_ESTATE, msg
    assert not qemu_pids(vm.id)


def test_qemu_killed_mid_command_gives_a_clear_error_and_leaves_nothing(vm):
    proc = vm.spawn(["sleep", "60"])
    pids = qemu_pids(vm.id)
    assert len(pids) == 1, descendants()
    os.kill(pids[0], signal.SIGKILL)
    with pytest.raises(mbx.MbxError) as e:
        deadline = time.time() + 30
        while time.time() < deadline:
            proc.next_event(1000)
    assert "stopped working" in str(e.value) or "closed" in str(e.value), e.value
    proc.close()
    status, _, msg = vm.exec_status(["true"])
    assert status == mbx.MBX_ESTATE, msg


def test_host_files_are_not_in_the_guest(cli, host_tmp):
    token = os.urandom(8).hex()
    secret = os.path.join(host_tmp, "secret-" + token)
    with open(secret, "w") as f:
        f.write(token)
    r, j = cli.json("--isolation", "microvm", "--", "sh", "-c",
                    "cat %s; grep -rl %s /etc /root /tmp /workspace 2>/dev/null; echo end" % (secret, token))
    assert token not in j["stdout"], r
    assert "No such file" in j["stderr"], r
    assert j["stdout"].strip() == "end", r


def test_guest_hostname_and_files_name_the_sandbox(cli):
    r, j = cli.json("--isolation", "microvm", "--hostname", "vm-under-test", "--", "sh", "-c",
                    "hostname; cat /etc/hostname; grep -c vm-under-test /etc/hosts")
    assert j["stdout"] == "vm-under-test\nvm-under-test\n1\n", r
