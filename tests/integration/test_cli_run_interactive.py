# SPDX-License-Identifier: Apache-2.0
"""`mimobox run -i` (stdin streamed to the program) and `run -t` (the
program on a terminal of the caller's terminal's size)."""
import os
import re
import select
import signal
import subprocess
import termios
import time

from conftest import HELPERS, must_work_skip
from test_cli_sessions import Terminal


def read_until(fd, want, timeout=15):
    """Reads fd until `want` came; what came."""
    buf = b""
    deadline = time.monotonic() + timeout
    while want not in buf:
        left = deadline - time.monotonic()
        assert left > 0, "no %r; got %r" % (want, buf)
        r, _, _ = select.select([fd], [], [], left)
        if r:
            chunk = os.read(fd, 4096)
            assert chunk, "end of output before %r; got %r" % (want, buf)
            buf += chunk
    return buf


def spawn(cli, args):
    return subprocess.Popen([cli.path] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=cli.env(), start_new_session=True)


def finish(cli, p, timeout=30):
    try:
        rc = p.wait(timeout=timeout)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        err = p.stderr.read().decode()
        cli.guard.ids.update(re.findall(r"sandbox ([0-9a-f]{16}) created", err))
        for f in (p.stdin, p.stdout, p.stderr):
            if not f.closed:
                f.close()
    return rc, err


def test_run_i_streams_line_by_line(cli):
    """Each line comes back before the next is written: the program gets
    stdin as it comes, not once it ended."""
    p = spawn(cli, ["run", "-i", "--", "cat"])
    try:
        for i in range(5):
            line = b"line-%d\n" % i
            p.stdin.write(line)
            p.stdin.flush()
            assert read_until(p.stdout.fileno(), line) == line
        p.stdin.close()
        assert p.stdout.read() == b""
    finally:
        rc, err = finish(cli, p)
    assert rc == 0, err


def test_run_i_end_of_file_and_status(cli):
    r = cli.run("--interactive", "--", "sh", "-c", "cat; echo end; echo to-err >&2; exit 3", stdin=b"x")
    assert r.rc == 3 and r.stdout == b"xend\n" and r.stderr == "to-err\n", r
    # --json collects the output, as without -i.
    r = cli.run("-i", "--json", "--", "sh", "-c", "wc -c; echo e >&2; exit 2", stdin=b"12345")
    assert r.rc == 2 and r.json["exit_code"] == 2 and r.json["stdout"].strip() == "5", r
    assert r.json["stderr"] == "e\n" and r.json["isolation"] == "os" and r.json["timed_out"] is False, r
    # Empty stdin is an immediate end of file; a program not found is 127.
    r = cli.run("-i", "--", "wc", "-c", stdin=b"")
    assert r.rc == 0 and r.stdout.strip() == b"0", r
    r = cli.run("-i", "--", "no-such-program", stdin=b"")
    assert r.rc == 127 and "not found" in r.stderr, r


def test_run_without_i_still_gets_no_stdin(cli):
    r = cli.run("--", "sh", "-c", "cat; echo done", stdin=b"caller input\n")
    assert r.rc == 0 and r.stdout == b"done\n", r


def test_run_i_big_stdin_bounded_memory(cli):
    """100 MB pass through with the CLI's memory far below that."""
    size = 100 * 1000 * 1000
    r = cli.run("-i", "--", "wc", "-c", stdin=b"y\n" * (size // 2), timeout=120, measure_rss=True)
    assert r.rc == 0 and r.stdout.strip() == str(size).encode(), r
    assert r.maxrss_kb < 48 * 1024, "the CLI grew to %d KiB for 100 MB of stdin" % r.maxrss_kb


def test_run_i_slow_reader_loses_nothing(cli):
    """A program that reads late: stdin waits for it (flow control) rather
    than overflowing the sandbox's buffer."""
    size = 24 << 20
    r = cli.run("-i", "--", "sh", "-c", "sleep 2; wc -c", stdin=b"z" * size, timeout=120)
    assert r.rc == 0 and r.stdout.strip() == str(size).encode(), r


def test_run_i_timeout(cli):
    """The run's --timeout holds while stdin stays open."""
    p = spawn(cli, ["run", "-i", "--timeout", "1", "--", "cat"])
    try:
        p.stdin.write(b"before\n")
        p.stdin.flush()
        assert read_until(p.stdout.fileno(), b"before\n") == b"before\n"
    finally:
        rc, err = finish(cli, p)
    assert rc == 124 and "timed out after 1.0 s (--timeout)" in err, err


def test_run_usage_errors(cli):
    r = cli.run("-t", "--json", "--", "true")
    assert r.rc == 125 and "-t cannot go with --json" in r.json["error"]["message"], r
    # Not a terminal on stdin (a pipe here).
    r = cli.run("-t", "--", "true", stdin=b"")
    assert r.rc == 125 and "-t needs a terminal on stdin" in r.stderr, r
    r = cli.run("-i", "--command", "cat", stdin=b"")
    assert r.rc == 125 and "-i takes a program" in r.stderr, r
    r = cli.run("-i", "--code", "sh", "echo hi", stdin=b"")
    assert r.rc == 125 and "-i takes a program" in r.stderr, r
    # A bundle of flags, docker-style, but only of flags.
    r = cli.run("-im", "1g", "--", "true", stdin=b"")
    assert r.rc == 125 and "unknown option `-im`" in r.stderr, r


def test_run_i_refused_on_wasm(cli, doctor):
    if not doctor["backends"]["wasm"]["available"]:
        must_work_skip("the wasm backend is not available: %s" % doctor["backends"]["wasm"]["reason"])
    mod = os.path.join(HELPERS, "wasm", "hello.wasm")
    if not os.path.exists(mod):
        must_work_skip("wasm test modules not built in %s" % mod)
    r = cli.run("-i", "--", mod, stdin=b"")
    assert r.rc == 125 and "-i is not available on the wasm backend" in r.stderr, r
    r = cli.run("--", mod)
    assert r.rc == 0 and r.stdout == b"hello from wasm\n", r


def raw(t):
    return not t.modes() & (termios.ECHO | termios.ISIG | termios.ICANON)


def test_run_t_on_a_terminal(cli):
    t = Terminal(cli, ["run", "-it", "--", "sh", "-c",
                       "tty; stty size; read line; echo got-$line; read x; stty size; exit 4"], rows=33, cols=90)
    try:
        t.expect(rb"/dev/pts/\d+\r\n33 90\r\n")
        assert raw(t), t.modes()
        t.type(b"abc\r")
        t.expect(rb"got-abc")
        t.resize(45, 132)
        time.sleep(0.5)
        t.type(b"\r")
        t.expect(rb"45 132\r\n")
        assert t.p.wait(timeout=15) == 4
        assert not raw(t), "the terminal stayed raw"
    finally:
        t.close()


def test_run_t_ctrl_c_reaches_the_program(cli):
    t = Terminal(cli, ["run", "-t", "--", "sh", "-c", "echo ready; exec sleep 30"])
    try:
        t.expect(rb"ready")
        time.sleep(0.3)
        start = time.monotonic()
        t.type(b"\x03")
        assert t.p.wait(timeout=15) == 130
        assert time.monotonic() - start < 10
        assert not raw(t), "the terminal stayed raw"
    finally:
        t.close()


def test_run_t_timeout_and_signal_restore_the_terminal(cli):
    t = Terminal(cli, ["run", "-t", "--timeout", "1", "--", "sleep", "30"])
    try:
        assert t.p.wait(timeout=20) == 124
        t.expect(rb"timed out after 1\.0 s")
        assert not raw(t), "the terminal stayed raw"
    finally:
        t.close()
    # Killed by a signal that can be caught: the terminal is restored first.
    t = Terminal(cli, ["run", "-t", "--", "sh", "-c", "echo ready; exec sleep 30"])
    try:
        t.expect(rb"ready")
        assert raw(t), t.modes()
        t.p.send_signal(signal.SIGTERM)
        assert t.p.wait(timeout=15) == -signal.SIGTERM
        assert not raw(t), "the terminal stayed raw after SIGTERM"
    finally:
        t.close()
