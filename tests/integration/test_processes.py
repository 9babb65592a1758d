# SPDX-License-Identifier: Apache-2.0
"""Process isolation and the lifetime of payload processes: host processes
are invisible and unreachable, timeouts and exits kill the whole tree."""
import re
import socket
import subprocess
import threading
import time

import pytest

from conftest import descendants, host_env, procs_with_arg, unique_sleep_arg

# Every test here runs on each backend with an agent (conftest.py).
pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
def host_sleeper():
    arg = unique_sleep_arg()
    p = subprocess.Popen(["sleep", arg], env=host_env())
    yield p, arg
    p.kill()
    p.wait()


def test_host_processes_are_invisible(cli, host_sleeper):
    p, arg = host_sleeper
    r, res = cli.json("--", "sh", "-c", "ps -eo pid=,args=; echo ---; ls /proc")
    assert res["exit_code"] == 0, res
    ps, ls = res["stdout"].split("---\n")
    assert arg not in ps, res
    pids = sorted(int(l.split()[0]) for l in ps.splitlines() if l.strip())
    assert 1 in pids and len(pids) <= 4, "more processes than the sandbox's own: %s" % ps
    numeric = sorted(int(n) for n in ls.split() if n.isdigit())
    assert p.pid not in numeric or p.pid in pids, res
    assert len(numeric) <= 5 and max(numeric) < 100, "host pids visible in /proc: %s" % numeric


def test_host_process_cannot_be_killed(cli, host_sleeper):
    p, arg = host_sleeper
    script = ("import errno, os\n"
              "try:\n"
              "    os.kill(%d, 9); print('killed')\n"
              "except OSError as e:\n"
              "    print(errno.errorcode[e.errno])\n") % p.pid
    r, res = cli.json("--", "python3", "-c", script)
    if p.pid < 10:
        pytest.skip("host pid %d might exist inside the sandbox too" % p.pid)
    assert res["stdout"] == "ESRCH\n", res
    assert p.poll() is None, "the host process died"
    # kill -1 (everything we may signal) reaches nothing outside either.
    r, res = cli.json("--", "sh", "-c", "kill -9 -1; true")
    time.sleep(0.1)
    assert p.poll() is None, "kill -1 in the sandbox killed a host process"


def test_hostname_differs(cli):
    r, res = cli.json("--", "hostname")
    assert res["exit_code"] == 0, res
    inside = res["stdout"].strip()
    assert inside and inside != socket.gethostname(), res
    r, res = cli.json("--hostname", "box-under-test", "--", "sh", "-c", "hostname; cat /etc/hostname")
    assert res["stdout"] == "box-under-test\nbox-under-test\n", res
    assert socket.gethostname() != "box-under-test"


def test_timeout_is_enforced(cli):
    r = cli.run("--timeout", "1", "--", "sleep", "100", timeout=30)
    assert r.rc == 124, r
    assert r.wall < 10, "took %.1f s" % r.wall
    r, res = cli.json("--timeout", "1", "--", "sleep", "100", timeout=30)
    assert r.rc == 124, r
    assert res["timed_out"] is True, res
    assert r.wall < 10, "took %.1f s" % r.wall


def test_output_before_a_timeout_is_kept(cli):
    r, res = cli.json("--timeout", "1", "--", "sh", "-c", "echo before; echo err >&2; exec sleep 100", timeout=30)
    assert r.rc == 124 and res["timed_out"] is True, r
    assert res["stdout"] == "before\n" and res["stderr"] == "err\n", res


def test_timeout_kills_the_whole_tree(cli):
    arg = unique_sleep_arg()
    r, res = cli.json("--timeout", "1", "--", "sh", "-c", "sleep %s & sleep %s & sleep %s" % (arg, arg, arg), timeout=30)
    assert r.rc == 124, r
    assert res["timed_out"] is True, res
    assert r.wall < 10, "took %.1f s" % r.wall
    assert procs_with_arg(arg) == [], "processes of a timed-out execute survive"


def test_timeout_kills_a_payload_that_ignores_signals(cli):
    arg = unique_sleep_arg()
    script = "trap '' TERM INT HUP; sleep %s & exec sleep %s" % (arg, arg)
    r, res = cli.json("--timeout", "1", "--", "sh", "-c", script, timeout=30)
    assert r.rc == 124 and res["timed_out"] is True, r
    assert procs_with_arg(arg) == []


def test_timeout_with_a_setsid_escapee(cli):
    # A grandchild in its own session (a daemon) dies with the execute too.
    arg = unique_sleep_arg()
    r, res = cli.json("--timeout", "1", "--", "sh", "-c", "setsid sleep %s & sleep %s" % (arg, arg), timeout=30)
    assert r.rc == 124, r
    assert procs_with_arg(arg) == []


def test_background_process_of_a_successful_command_does_not_survive(cli):
    arg = unique_sleep_arg()
    r, res = cli.json("--", "sh", "-c", "sleep %s & echo ok" % arg, timeout=30)
    assert r.rc == 0, r
    assert res["stdout"] == "ok\n" and res["timed_out"] is False, res
    assert r.wall < 10, "the execute waited for its background process (%.1f s)" % r.wall
    assert procs_with_arg(arg) == [], "a background process outlived the execute"


def test_killed_cli_leaves_nothing(cli, guard):
    # The owner of a sandbox dies (SIGKILL, no clean-up): its agent and
    # payload (on the microvm backend: QEMU and its jail) must die with it.
    # The state directory may stay behind until a later sandbox collects
    # it; that one run cleans it.
    arg = unique_sleep_arg()
    vm = cli.backend == "microvm"
    p = subprocess.Popen([cli.path, "run", "--isolation", cli.backend, "--", "sh", "-c", "echo up; exec sleep " + arg],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli.env())

    def running():
        if vm:
            return [pid for pid, argv in descendants().items() if argv and "qemu-system" in argv[0]]
        return procs_with_arg(arg)
    try:
        assert p.stdout.readline() == b"up\n"
        deadline = time.monotonic() + 5
        while not running() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert running(), "payload not running"
    finally:
        p.kill()
        p.wait()
        p.stdout.close()
        guard.ids.update(re.findall(r"sandbox ([0-9a-f]{16}) created", p.stderr.read().decode()))
        p.stderr.close()
    assert guard.ids, "the CLI did not name its sandbox (MIMOBOX_LOG=info)"
    deadline = time.monotonic() + 5
    while running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running() == [], "the payload outlived its killed CLI"
    r = cli.run("--", "true")
    assert r.rc == 0, r


def test_concurrent_runs(cli):
    # Several sandboxes at once share the "mimobox" cgroup group and the
    # state directory: each gets its own, and all of it goes again.
    results = [None] * 8

    def one(i):
        try:
            results[i] = cli.json("--", "sh", "-c", "echo %d > /workspace/n; cat /workspace/n; hostname" % i,
                                  timeout=60)
        except BaseException as e:  # reported below, in the test's thread
            results[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    for i, rr in enumerate(results):
        assert rr is not None, "run %d did not finish" % i
        if isinstance(rr, BaseException):
            raise rr
        r, res = rr
        assert r.rc == 0 and res["stdout"] == "%d\nmimobox\n" % i, r
    assert len(set().union(*(rr[0].ids for rr in results))) == len(results)


def test_programs_start_with_default_signal_dispositions(cli):
    # A host started in the background ignores SIGINT and SIGQUIT, and exec
    # keeps ignored signals: the sandbox's programs must not inherit that
    # (Ctrl-C on their terminal would do nothing).
    import signal as sig

    def ignore():
        sig.signal(sig.SIGINT, sig.SIG_IGN)
        sig.signal(sig.SIGQUIT, sig.SIG_IGN)
        sig.signal(sig.SIGTERM, sig.SIG_IGN)

    p = subprocess.run([cli.path, "run", "--", "grep", "^SigIgn", "/proc/self/status"], capture_output=True,
                       env=cli.env(), timeout=60, preexec_fn=ignore)
    assert p.returncode == 0, p
    assert p.stdout.split() == [b"SigIgn:", b"0000000000000000"], p.stdout
