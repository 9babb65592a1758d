# SPDX-License-Identifier: Apache-2.0
"""The path of an execute in an os sandbox (src/agent/payload.c): the
agent holds back the STARTED of a one-shot execute without stdin until its
first output or its end, and reads the output pipes to their end when the
mini-init's report says nothing of the execute is left. These tests check
what a caller sees through them: a silent program may run past the short
grace the host gives other answers, a program that never starts still
fails with its own error, and no output is lost at the end, in or beyond
the pipes' buffers and the host's window."""
import time

import pytest

import mbx


def test_silent_execute_runs_past_the_answer_grace(osbox):
    # Nothing comes from the agent for 11 s: longer than the 10 s the host
    # waits for an answer to a request (HOST_GRACE_US), shorter than the
    # execute's own timeout (30 s by default). The STARTED comes with the
    # EXIT, and the host waits for it as long as for the execute.
    r = osbox.exec(["sleep", "11"])
    assert r.exit_code == 0, r
    assert not r.timed_out, r


@pytest.mark.parametrize("argv, code, words", [
    (["/nonexistent/program"], mbx.MBX_ENOTFOUND, "not found"),
    (["/etc/hostname"], mbx.MBX_ENOEXEC, "cannot be executed"),
])
def test_program_that_never_starts_fails_with_its_error(osbox, argv, code, words):
    # Twice: the first execute runs under a mini-init cloned for it, the
    # second under the spare or a recycled one.
    for _ in range(2):
        rc, res, msg = osbox.exec_status(argv)
        assert rc == code, (rc, msg)
        assert words in msg, msg
        # The sandbox goes on serving.
        r = osbox.exec(["sh", "-c", "echo ok"])
        assert r.stdout == b"ok\n", r


@pytest.mark.parametrize("size", [1, 60000, 5 << 20])
def test_output_at_the_end_is_whole(osbox, size):
    # Written just before the program exits, on both streams at once:
    # within the pipes' 64 KiB, and beyond them and the host's window of
    # 1 MiB. All of it arrives, every time.
    script = "head -c %d /dev/zero; head -c %d /dev/zero >&2" % (size, size)
    for _ in range(3):
        r = osbox.exec(["sh", "-c", script])
        assert r.exit_code == 0, r
        assert len(r.stdout) == size and len(r.stderr) == size, (len(r.stdout), len(r.stderr))


# Both pipes enlarged and filled in one write each, right before the exit.
FILL_PIPES = """
import fcntl, os
F_SETPIPE_SZ = 1031
for fd in (1, 2):
    fcntl.fcntl(fd, F_SETPIPE_SZ, %d)
os.write(1, b"o" * %d)
os.write(2, b"e" * %d)
"""


def test_output_held_back_by_the_buffer_at_the_end_is_whole(osbox):
    # A spawned process whose caller reads nothing for a while: the agent
    # stops at the host's 64 KiB buffer, the program ends with the rest
    # still in its pipes, and the report comes. That rest is read as the
    # caller takes the output, to the end.
    size = 1 << 20
    p = osbox.spawn(["python3", "-c", FILL_PIPES % (size, size, size)], buffer=64 << 10)
    try:
        time.sleep(1)
        got = {mbx.MBX_EVENT_STDOUT: 0, mbx.MBX_EVENT_STDERR: 0}
        while True:
            kind, data = p.next_event(30000)
            if kind == mbx.MBX_EVENT_EXIT:
                assert data == (0, 0), data
                break
            got[kind] += len(data)
        assert got == {mbx.MBX_EVENT_STDOUT: size, mbx.MBX_EVENT_STDERR: size}, got
    finally:
        p.close()


def test_output_of_a_process_left_behind_is_whole_up_to_the_end(osbox):
    # A background process writes until the program's end kills it: what
    # it wrote before is delivered, and the execute ends.
    script = "(while :; do echo line; done) & sleep 0.2; exit 7"
    r = osbox.exec(["sh", "-c", script])
    assert r.exit_code == 7, r
    lines = r.stdout.splitlines()
    assert len(lines) > 10 and set(lines[:-1]) == {b"line"}, r.stdout[-100:]


def test_program_leads_a_process_group_in_its_mini_inits_session(osbox):
    # Without a terminal the program gets a process group of its own, not a
    # session: it shares its mini-init's (PID 1 of its namespace), which
    # made one when it started, so an execute costs no scheduler autogroup.
    # The same on a recycled mini-init (the second and third executes).
    for _ in range(3):
        r = osbox.exec(["sh", "-c", "cut -d' ' -f1,5,6 /proc/$$/stat"])
        assert r.exit_code == 0, r
        pid, pgrp, sid = r.stdout.split()
        assert pgrp == pid and sid == b"1", r.stdout
    # Its group is itself and what it starts: a signal to it (kill 0)
    # ends the program, and its mini-init serves the next execute.
    r = osbox.exec(["sh", "-c", "sleep 30 & kill -TERM 0; sleep 30"])
    assert r.signal == 15, r
    assert osbox.exec(["true"]).exit_code == 0


def test_executes_use_pipes_of_their_own(osbox):
    # After an EXIT the agent makes the next execute's pipes ahead
    # (payload.c, pipes_ahead). Each execute, after an idle while or right
    # away, still gets pipes of its own: its output, its input, the report
    # that its program did not start, in every order.
    for _ in range(3):
        time.sleep(0.02)
        r = osbox.exec(["sh", "-c", "echo out; echo err >&2"])
        assert (r.stdout, r.stderr) == (b"out\n", b"err\n"), r
        time.sleep(0.02)
        r = osbox.exec(["cat"], stdin=b"in")
        assert r.stdout == b"in", r
        time.sleep(0.02)
        rc, _, msg = osbox.exec_status(["/nonexistent/program"])
        assert rc == mbx.MBX_ENOTFOUND and "not found" in msg, (rc, msg)
        r = osbox.exec(["echo", "next"])
        assert r.stdout == b"next\n", r


def test_programs_start_with_no_signal_blocked_or_ignored(osbox):
    # The agent blocks SIGCHLD (its signalfd) and ignores SIGPIPE; each
    # mini-init gives its programs neither, once for all of them (they
    # inherit its mask and dispositions): under the mini-init cloned for
    # the first execute, a spare made in an idle while, a recycled one.
    for i in range(3):
        if i == 1:
            time.sleep(0.05)
        r = osbox.exec(["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"])
        assert r.stdout.split() == [b"SigBlk:", b"0" * 16, b"SigIgn:", b"0" * 16], r
