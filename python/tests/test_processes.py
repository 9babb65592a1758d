# SPDX-License-Identifier: Apache-2.0
"""Streaming, background processes and PTYs through the package (the
scenarios of tests/integration/test_sessions.py, seen from Python)."""
import signal
import time

import pytest

import wasm_modules


def test_stream_iterator_delivers_output_before_the_end(sb):
    it = sb.stream_execute(["sh", "-c", "echo first; sleep 30; echo never"], timeout=60)
    start = time.monotonic()
    ev = next(it)
    assert (ev.kind, ev.data, ev.text) == ("stdout", b"first\n", "first\n")
    assert time.monotonic() - start < 20
    it.close()  # leaving early kills the program
    assert sb.processes() == []


def test_stream_iterator_keeps_order_and_ends_with_exit(sb):
    evs = list(sb.stream_execute(["sh", "-c", "echo o1; echo e1 >&2; sleep 0.1; echo o2; exit 4"]))
    assert evs[-1].kind == "exit" and evs[-1].exit_code == 4 and evs[-1].is_end
    assert b"".join(e.data for e in evs if e.kind == "stdout") == b"o1\no2\n"
    assert b"".join(e.data for e in evs if e.kind == "stderr") == b"e1\n"
    assert all(not e.is_end for e in evs[:-1])


def test_stream_iterator_with_stdin(sb):
    evs = list(sb.stream_execute("tr a-z A-Z", stdin=b"shout\n"))
    assert b"".join(e.data for e in evs if e.kind == "stdout") == b"SHOUT\n"


def test_stream_timed_out_event_is_last(sb):
    evs = list(sb.stream_execute(["sh", "-c", "echo t; sleep 100"], timeout=0.5))
    assert evs[-1].kind == "timed_out" and evs[-1].exit_code is None
    assert evs[0].data == b"t\n"


def test_stream_callbacks(sb):
    out, err, ended = [], [], []
    r = sb.stream_execute(["sh", "-c", "echo a; echo b >&2; echo c"], on_stdout=out.append, on_stderr=err.append,
                          on_exit=ended.append)
    assert b"".join(out) == b"a\nc\n" and b"".join(err) == b"b\n"
    assert r.stdout == "a\nc\n" and r.ok and ended == [r]


def test_stream_callback_exception_is_raised_after_the_execute(sb):
    def boom(chunk):
        raise RuntimeError("callback failed on %r" % chunk)
    with pytest.raises(RuntimeError, match="callback failed"):
        sb.stream_execute("echo x", on_stdout=boom)
    assert sb.execute("echo still usable").ok


def test_stream_on_wasm(mimobox):
    from conftest import backend_or_skip
    backend_or_skip(mimobox, "wasm")
    with mimobox.Sandbox(isolation="wasm") as sb:
        sb.write_file("hello.wat", wasm_modules.HELLO)
        evs = list(sb.stream_execute("/workspace/hello.wat"))
        assert b"".join(e.data for e in evs if e.kind == "stdout") == b"hello from wasm\n"
        assert evs[-1].kind == "exit" and evs[-1].exit_code == 7
        got = []
        r = sb.stream_execute("/workspace/hello.wat", on_stderr=got.append)
        assert b"".join(got) == b"to stderr\n" and r.exit_code == 7


def test_background_server_answers_later_calls_and_ends_with_the_sandbox(mimobox):
    with mimobox.Sandbox(isolation="os") as sb:
        server = sb.spawn(["python3", "-c",
                           "import http.server as h\n"
                           "class H(h.SimpleHTTPRequestHandler):\n"
                           "    def log_message(self, *a): pass\n"
                           "h.ThreadingHTTPServer(('127.0.0.1', 8765), H).serve_forever()"],
                          timeout=0, cwd="/workspace")
        sb.write_file("index.html", "served\n")
        body = ""
        for _ in range(100):
            r = sb.execute_code("import urllib.request as u\n"
                                "print(u.urlopen('http://127.0.0.1:8765/index.html').read().decode(), end='')")
            if r.ok:
                body = r.stdout
                break
            time.sleep(0.1)
        assert body == "served\n"
        assert [(p.id, p.program) for p in sb.processes()] == [(server.id, "python3")]
        assert server.running
        server.close()  # the handle goes; the server stays until the sandbox closes
        assert len(sb.processes()) == 1


def test_kill_ends_the_whole_tree(sb):
    p = sb.spawn(["sh", "-c", "sleep 100 & sleep 100"], timeout=0)
    assert p.running
    p.kill()
    r = p.wait(10)
    assert r.signal == signal.SIGKILL and not r.ok
    p.close()
    assert sb.processes() == []
    assert "sleep" not in sb.execute(["ps", "-eo", "comm"]).stdout


def test_signal_reaches_the_program(sb):
    with sb.spawn(["sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.05; done"]) as p:
        assert p.next_event(10).data == b"ready\n"
        p.signal(signal.SIGTERM)
        r = p.wait(10)
        assert r.exit_code == 3 and "got TERM" in r.stdout


def test_stdin_round_trip(sb):
    with sb.spawn(["cat"], stdin=True) as p:
        p.write(b"one\n")
        assert p.next_event(10).data == b"one\n"
        p.write("two\n")
        p.close_stdin()
        evs = list(p)
        assert b"".join(e.data for e in evs if e.kind == "stdout") == b"two\n"
        assert p.exit_event.exit_code == 0 and evs[-1] is p.exit_event


def test_stdin_without_a_pipe_is_refused(sb, mimobox):
    with sb.spawn(["sleep", "5"]) as p:
        with pytest.raises(mimobox.SandboxStateError):
            p.write(b"x")


def test_wait_timeout_leaves_the_program_running(sb, mimobox):
    with sb.spawn(["sleep", "100"], timeout=0) as p:
        with pytest.raises(TimeoutError):
            p.wait(0.2)
        assert p.running


def test_next_event_times_out_with_none(sb):
    with sb.spawn(["sleep", "100"], timeout=0) as p:
        start = time.monotonic()
        assert p.next_event(0.2) is None
        assert 0.15 < time.monotonic() - start < 10


def test_processes_run_side_by_side_with_executes(sb):
    a = sb.spawn(["sh", "-c", "sleep 0.5; echo a"])
    b = sb.spawn(["sh", "-c", "echo b"])
    assert sb.execute("echo meanwhile").stdout == "meanwhile\n"
    assert b.wait(10).stdout == "b\n" and a.wait(10).stdout == "a\n"
    a.close()
    b.close()


def test_attach_to_a_running_process(sb, mimobox):
    p = sb.spawn(["sh", "-c", "sleep 0.5; exit 5"], timeout=0)
    p.close()  # the program goes on
    (info,) = sb.processes()
    assert info.id == p.id and info.program == "sh" and info.age_ms >= 0
    with sb.process(info.id) as q:
        with pytest.raises(FileExistsError):
            sb.process(info.id)
        r = q.wait(10)
        assert r.exit_code == 5 and not r.timed_out
    with pytest.raises(FileNotFoundError):
        sb.process(info.id)


def test_pty_resize_and_ctrl_c(sb):
    p = sb.create_pty(["sh", "-c", "stty size; read x; stty size; echo go; exec sleep 100"], rows=24, cols=80)
    out = b""
    while b"24 80" not in out:
        ev = p.next_event(10)
        assert ev and ev.kind == "stdout", ev
        out += ev.data
    p.resize(50, 132)
    p.write(b"\n")
    while b"go" not in out:
        ev = p.next_event(10)
        assert ev and ev.kind == "stdout", (ev, out)
        out += ev.data
    assert b"50 132" in out
    p.write(b"\x03")  # Ctrl-C
    end = [e for e in p][-1]
    p.close()
    assert end.kind == "exit" and end.signal == signal.SIGINT


def test_pty_is_a_terminal(sb):
    with sb.create_pty(["sh", "-c", "test -t 0 && test -t 1 && tty"], rows=10, cols=40) as p:
        evs = list(p)
    assert b"".join(e.data for e in evs if e.kind == "stdout").startswith(b"/dev/pts/")
    assert evs[-1].exit_code == 0


def test_spawn_errors(sb, mimobox):
    with pytest.raises(FileNotFoundError):
        sb.spawn(["no-such-program"])
    with pytest.raises(ValueError):
        sb.spawn([])
    with pytest.raises(ValueError):
        sb.create_pty(["sh"], rows=0, cols=80)


def test_pool_hands_out_ready_sandboxes(mimobox):
    with mimobox.Pool(size=2, isolation="os", timeout=10) as pool:
        a = pool.take()
        b = pool.take()
        try:
            assert a.id != b.id
            assert a.execute("echo a").stdout == "a\n" and b.execute_code("print('b')").stdout == "b\n"
        finally:
            a.close()
            b.close()
        assert 0 <= pool.ready <= 2
    with pytest.raises(mimobox.SandboxStateError):
        pool.take()


def test_pool_with_a_bad_configuration_fails_at_once(mimobox):
    with pytest.raises(ValueError):
        mimobox.Pool(size=0)
    with pytest.raises(ValueError):
        mimobox.Pool(size=1, timeout=-3)


def test_process_handles_may_outlive_their_sandbox(mimobox):
    """Closing a sandbox frees its processes' handles: later calls on them
    are errors, not use of freed memory."""
    sb = mimobox.Sandbox(isolation="os")
    p = sb.spawn(["sleep", "100"], timeout=0)
    it = sb.stream_execute(["sh", "-c", "echo x; sleep 100"])
    assert next(it).data == b"x\n"
    sb.close()
    with pytest.raises(mimobox.SandboxStateError):
        p.kill()
    with pytest.raises(mimobox.SandboxStateError):
        p.wait(1)
    p.close()
    it.close()
    del p


def test_a_callback_cannot_call_its_own_sandbox(sb, mimobox):
    def reenter(chunk):
        sb.read_file("x")
    with pytest.raises(mimobox.SandboxStateError, match="callback"):
        sb.stream_execute("echo x", on_stdout=reenter)
    assert sb.execute("echo fine").stdout == "fine\n"


def test_dropped_pool_destroys_its_sandboxes(mimobox, guard):
    import gc
    import os
    pool = mimobox.Pool(size=2, isolation="os")
    with pool.take() as sb:
        assert sb.execute("true").ok
    del pool
    gc.collect()
    assert [e for e in os.listdir(guard) if e != "wasm-cache.key"] == []
