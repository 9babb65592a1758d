# SPDX-License-Identifier: Apache-2.0
"""Sessions through the library: streamed output, stdin, background
processes, PTYs and the file API, on the os backend's agent."""
import os
import resource
import secrets
import signal
import socket
import time

import pytest

import mbx
from conftest import LIB_ASAN, procs_with_arg, unique_sleep_arg

# Every test here runs on each backend with an agent (conftest.py).
pytestmark = pytest.mark.usefixtures("backend")


def wait_until_true(cond, timeout_s):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def events_until_end(proc, timeout_s=20):
    """All events up to the last one, with the time each arrived."""
    out = []
    end = time.time() + timeout_s
    while time.time() < end:
        ev = proc.next_event(int((end - time.time()) * 1000) + 1)
        if ev is None:
            continue
        out.append((time.monotonic(), ev))
        if ev[0] in (mbx.MBX_EVENT_EXIT, mbx.MBX_EVENT_TIMED_OUT):
            return out
    raise AssertionError("no end event within %s s: %r" % (timeout_s, out))


def stream(events, kind):
    return b"".join(ev[1] for _, ev in events if ev[0] == kind)


# ---- streaming ----

def test_output_streams_before_exit(sandbox):
    p = sandbox.spawn(["sh", "-c", "echo a; sleep 1; echo b"])
    evs = events_until_end(p)
    p.close()
    times = {ev[1].strip(): t for t, ev in evs if ev[0] == mbx.MBX_EVENT_STDOUT}
    assert set(times) == {b"a", b"b"}, evs
    assert times[b"b"] - times[b"a"] >= 0.8, evs
    assert evs[-1][1] == (mbx.MBX_EVENT_EXIT, (0, 0)), evs


def test_interleaved_stdout_and_stderr_keep_their_order(sandbox):
    script = "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; sleep 0.05; done"
    p = sandbox.spawn(["sh", "-c", script])
    evs = events_until_end(p)
    p.close()
    assert stream(evs, mbx.MBX_EVENT_STDOUT) == b"".join(b"out%d\n" % i for i in range(1, 6)), evs
    assert stream(evs, mbx.MBX_EVENT_STDERR) == b"".join(b"err%d\n" % i for i in range(1, 6)), evs
    # Across streams the order follows the writes (each line 50 ms apart).
    order = [ev[1].strip() for _, ev in evs if ev[0] in (1, 2)]
    assert order.index(b"out3") < order.index(b"err3") < order.index(b"out4"), order


def test_binary_output_is_exact(sandbox):
    p = sandbox.spawn(["python3", "-c", "import sys; sys.stdout.buffer.write(bytes(range(256)) * 4096)"])
    evs = events_until_end(p)
    p.close()
    assert stream(evs, mbx.MBX_EVENT_STDOUT) == bytes(range(256)) * 4096


def test_large_output_with_a_slow_reader_keeps_host_memory_bounded(sandbox):
    # 200 MiB written, read only after a pause: the process blocks once its
    # window (256 KiB here) is full, so the host never holds the whole.
    p = sandbox.spawn(["sh", "-c", "head -c 209715200 /dev/zero; echo done >&2"], buffer=256 * 1024, timeout_ms=120000)
    time.sleep(1.0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    total = 0
    while True:
        ev = p.next_event(30000)
        assert ev is not None
        if ev[0] == mbx.MBX_EVENT_STDOUT:
            total += len(ev[1])
        elif ev[0] == mbx.MBX_EVENT_EXIT:
            break
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    p.close()
    assert total == 209715200
    # AddressSanitizer keeps freed memory in quarantine: allow for it.
    assert after - before < (400 if LIB_ASAN else 64) * 1024, (before, after)  # KiB


def test_timed_out_event_is_last(sandbox):
    p = sandbox.spawn(["sleep", "100"], timeout_ms=500)
    t0 = time.time()
    evs = events_until_end(p)
    p.close()
    assert evs[-1][1][0] == mbx.MBX_EVENT_TIMED_OUT, evs
    assert time.time() - t0 < 5


# ---- stdin ----

def test_stdin_round_trip(sandbox):
    p = sandbox.spawn(["sh", "-c", "while read l; do echo got:$l; done; echo eof"], stdin=True)
    p.write(b"one\n")
    ev = p.next_event(5000)
    assert ev == (mbx.MBX_EVENT_STDOUT, b"got:one\n"), ev
    p.write(b"two\nthree\n")
    p.close_stdin()
    r = p.wait(5000)
    p.close()
    assert r.stdout == b"got:two\ngot:three\neof\n", r
    assert r.exit_code == 0


def test_stdin_large_binary(sandbox):
    data = os.urandom(3 * 1024 * 1024)
    p = sandbox.spawn(["sha256sum"], stdin=True)
    p.write(data)
    p.close_stdin()
    r = p.wait(20000)
    p.close()
    import hashlib
    assert r.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest(), r


def test_exec_with_stdin_data(sandbox):
    data = b"".join(b"line %d\n" % i for i in range(100000))
    r = sandbox.exec(["sh", "-c", "wc -l; echo done"], stdin=data)
    assert r.stdout == b"100000\ndone\n", r
    # Without data, stdin is empty.
    r = sandbox.exec(["sh", "-c", "wc -c"])
    assert r.stdout == b"0\n", r


def test_stdin_without_a_pipe_is_refused(sandbox):
    p = sandbox.spawn(["sleep", "5"])
    with pytest.raises(mbx.MbxError) as e:
        p.write(b"x")
    assert e.value.code == mbx.MBX_ESTATE and "stdin" in e.value.message
    p.kill()
    p.wait(5000)
    p.close()


# ---- background processes ----

SERVER = r"""
import http.server, sys

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from the server"
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 8123), H)
print("listening", flush=True)
s.serve_forever()
"""

CLIENT = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8123/').read().decode())"


def test_background_server_answers_later_calls_and_ends_with_the_sandbox(lib, guard):
    sb = mbx.Sandbox(lib)
    guard.ids.add(sb.id)
    try:
        server = sb.spawn(["python3", "-c", SERVER], timeout_ms=0)
        ev = server.next_event(10000)
        assert ev == (mbx.MBX_EVENT_STDOUT, b"listening\n"), ev
        # Let go of the handle: the server goes on.
        server.close()
        for _ in range(2):
            r = sb.exec(["python3", "-c", CLIENT])
            assert r.exit_code == 0 and r.stdout == b"hello from the server\n", r
        listed = sb.list_processes()
        assert any(prog == "python3" for _, prog in listed), listed
        # The sandbox's loopback is its own: the host cannot reach it.
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", 8123)) != 0
    finally:
        sb.close()
    assert procs_with_arg("serve_forever()") == []


def test_killing_a_process_kills_its_tree(sandbox):
    arg = unique_sleep_arg()
    # Two sleepers (one in a session of its own) and a ticker, also in a
    # session of its own, that rewrites a file while it lives: that shows
    # the tree's end from outside on every backend (a guest's processes are
    # not in the host's process table).
    tick = "/workspace/tick-%s" % secrets.token_hex(4)
    ticker = "i=0; while :; do i=$((i+1)); echo $i > %s; sleep 0.05; done" % tick
    p = sandbox.spawn(["sh", "-c", "setsid sleep %s & sleep %s & setsid sh -c '%s' & wait" % (arg, arg, ticker)],
                      timeout_ms=0)
    # The ticker's first write (a guest under a loaded host is slow).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            sandbox.read_file(tick)
            break
        except mbx.MbxError:
            time.sleep(0.1)
    if sandbox.backend == "os":
        assert wait_until_true(lambda: len(procs_with_arg(arg)) == 2, 10)
    first = sandbox.read_file(tick)
    assert wait_until_true(lambda: sandbox.read_file(tick) != first, 10), "the ticker does not run"
    p.kill()
    evs = events_until_end(p)
    p.close()
    assert evs[-1][1] == (mbx.MBX_EVENT_EXIT, (-1, signal.SIGKILL)), evs
    assert procs_with_arg(arg) == []
    last = sandbox.read_file(tick)
    time.sleep(0.3)
    assert sandbox.read_file(tick) == last, "the ticker outlived the kill"


def test_signal_reaches_the_program(sandbox):
    p = sandbox.spawn(["sh", "-c", "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done"])
    assert p.next_event(5000) == (mbx.MBX_EVENT_STDOUT, b"ready\n")
    p.signal(signal.SIGTERM)
    r = p.wait(5000)
    p.close()
    assert r.stdout == b"got-term\n" and r.exit_code == 7, r


def test_processes_of_one_sandbox_run_side_by_side(sandbox):
    a = sandbox.spawn(["sh", "-c", "sleep 0.5; echo a"])
    b = sandbox.spawn(["sh", "-c", "echo b"])
    rb = b.wait(5000)
    ra = a.wait(5000)
    a.close()
    b.close()
    assert ra.stdout == b"a\n" and rb.stdout == b"b\n"


# ---- PTY ----

def test_pty_resize_and_ctrl_c(sandbox):
    # "go" is printed by the shell itself after the last child ended: a
    # Ctrl-C sent while a child still ran and then exited normally would be
    # taken by the shell as handled by that child (POSIX shells' wait-and-
    # cooperative-exit) and the script would go on.
    p = sandbox.spawn(["sh", "-c", "stty size; read x; stty size; echo go; exec sleep 100"], pty=(24, 80))
    out = b""
    while b"24 80" not in out:
        ev = p.next_event(5000)
        assert ev and ev[0] == mbx.MBX_EVENT_STDOUT, ev
        out += ev[1]
    p.resize(50, 132)
    p.write(b"\n")
    while b"go" not in out:
        ev = p.next_event(5000)
        assert ev and ev[0] == mbx.MBX_EVENT_STDOUT, (ev, out)
        out += ev[1]
    assert b"50 132" in out, out
    p.write(b"\x03")  # Ctrl-C: the terminal sends SIGINT to the foreground group
    evs = events_until_end(p, 10)
    p.close()
    assert evs[-1][1] == (mbx.MBX_EVENT_EXIT, (-1, signal.SIGINT)), evs


def test_pty_is_a_terminal(sandbox):
    p = sandbox.spawn(["sh", "-c", "test -t 0 && test -t 1 && tty"], pty=(10, 40))
    evs = events_until_end(p)
    p.close()
    assert stream(evs, mbx.MBX_EVENT_STDOUT).startswith(b"/dev/pts/"), evs
    assert evs[-1][1] == (mbx.MBX_EVENT_EXIT, (0, 0))


# ---- files ----

def test_file_round_trip_text_and_binary(sandbox):
    sandbox.write_file("notes.txt", b"hello\n")
    assert sandbox.read_file("/workspace/notes.txt") == b"hello\n"
    blob = os.urandom(700 * 1024)  # more than one chunk
    sandbox.mkdir("bin", parents=True)
    sandbox.write_file("bin/blob", blob, mode=0o600)
    assert sandbox.read_file("bin/blob") == blob
    st = sandbox.stat("bin/blob")
    assert st["type"] == mbx.MBX_FILE_REGULAR and st["size"] == len(blob) and st["mode"] == 0o600, st
    r = sandbox.exec(["sha256sum", "/workspace/bin/blob"])
    import hashlib
    assert r.stdout.split()[0].decode() == hashlib.sha256(blob).hexdigest()
    sandbox.write_file("notes.txt", b"more\n", flags=1)  # append
    assert sandbox.read_file("notes.txt") == b"hello\nmore\n"


def test_file_of_100_mb_streams(sandbox, host_tmp):
    src = os.path.join(host_tmp, "big")
    with open(src, "wb") as f:
        for _ in range(100):
            f.write(os.urandom(1024 * 1024))
    with open(src, "rb") as f:
        sandbox.write_file_from_fd("big", f.fileno())
    dst = os.path.join(host_tmp, "back")
    with open(dst, "wb") as f:
        sandbox.read_file_to_fd("big", f.fileno())
    with open(src, "rb") as a, open(dst, "rb") as b:
        assert a.read() == b.read()


def test_file_transfer_through_pipes_in_uneven_pieces(sandbox):
    """write_file_from_fd from a pipe that gets its bytes in uneven pieces
    (the os backend splices them into its transfer pipe, one chunk in flight
    while the next comes in), then read_file_to_fd into a pipe drained
    meanwhile: the bytes arrive whole and in order across chunk boundaries."""
    import hashlib
    import random
    import threading

    blob = os.urandom(3 * 1024 * 1024 + 12345)
    r, w = os.pipe()

    def feed():
        rnd, at = random.Random(7), 0
        try:
            while at < len(blob):
                piece = blob[at:at + rnd.choice([1, 100, 4095, 4097, 65536, 200000])]
                while piece:
                    n = os.write(w, piece)
                    piece, at = piece[n:], at + n
        finally:
            os.close(w)

    t = threading.Thread(target=feed)
    t.start()
    try:
        sandbox.write_file_from_fd("piped", r)
    finally:
        t.join()
        os.close(r)
    r_ = sandbox.exec(["sha256sum", "/workspace/piped"])
    assert r_.stdout.split()[0].decode() == hashlib.sha256(blob).hexdigest()

    r, w = os.pipe()
    got = []

    def drain():
        while True:
            b = os.read(r, 1 << 16)
            if not b:
                return
            got.append(b)

    t = threading.Thread(target=drain)
    t.start()
    try:
        sandbox.read_file_to_fd("piped", w)
    finally:
        os.close(w)
        t.join()
        os.close(r)
    assert b"".join(got) == blob


def test_file_transfer_from_an_offset_and_to_an_appending_descriptor(sandbox, host_tmp):
    """A source descriptor is read from where it stands; a sink opened
    O_APPEND (which splice refuses) gets the bytes appended, and so does a
    buffer (read_file)."""
    blob = os.urandom(1536 * 1024 + 7)
    src = os.path.join(host_tmp, "src")
    with open(src, "wb") as f:
        f.write(b"skip-me" + blob)
    fd = os.open(src, os.O_RDONLY)
    try:
        os.lseek(fd, 7, os.SEEK_SET)
        sandbox.write_file_from_fd("off", fd)
    finally:
        os.close(fd)
    assert sandbox.read_file("off") == blob
    dst = os.path.join(host_tmp, "appended")
    with open(dst, "wb") as f:
        f.write(b"head")
    fd = os.open(dst, os.O_WRONLY | os.O_APPEND)
    try:
        sandbox.read_file_to_fd("off", fd)
    finally:
        os.close(fd)
    with open(dst, "rb") as f:
        assert f.read() == b"head" + blob
    # an empty file both ways
    empty = os.path.join(host_tmp, "empty")
    open(empty, "wb").close()
    with open(empty, "rb") as f:
        sandbox.write_file_from_fd("empty", f.fileno())
    assert sandbox.read_file("empty") == b""


def test_list_mkdir_rename_remove(sandbox):
    sandbox.mkdir("a/b/c", parents=True)
    sandbox.write_file("a/f", b"x")
    sandbox.exec(["ln", "-s", "f", "/workspace/a/link"])
    entries = sandbox.list_dir("a")
    assert [e[0] for e in entries] == ["b", "f", "link"], entries
    assert entries[0][1] == mbx.MBX_FILE_DIRECTORY and entries[2][3] is True, entries
    sandbox.rename("a/f", "a/g")
    assert sandbox.read_file("a/g") == b"x"
    with pytest.raises(mbx.MbxError) as e:
        sandbox.remove("a")
    assert e.value.code == mbx.MBX_EEXIST, e.value
    sandbox.remove("a", recursive=True)
    with pytest.raises(mbx.MbxError) as e:
        sandbox.stat("a")
    assert e.value.code == mbx.MBX_ENOTFOUND


@pytest.mark.parametrize("path", ["/workspace/..", "..", "/tmp/../", "/workspace/a/../", "."])
def test_remove_refuses_the_root_and_workspace_by_any_spelling(sandbox, path):
    sandbox.mkdir("a", parents=True)
    sandbox.write_file("kept", b"x")
    with pytest.raises(mbx.MbxError) as e:
        sandbox.remove(path, recursive=True)
    assert e.value.code == mbx.MBX_EPERM and "the sandbox needs it" in e.value.message, e.value
    assert sandbox.read_file("kept") == b"x"


def test_file_errors_have_their_codes(sandbox):
    with pytest.raises(mbx.MbxError) as e:
        sandbox.read_file("missing")
    assert e.value.code == mbx.MBX_ENOTFOUND and "missing" in e.value.message
    sandbox.write_file("plain", b"x")
    with pytest.raises(mbx.MbxError) as e:
        sandbox.read_file("plain/child")
    assert e.value.code == mbx.MBX_ENOTDIR
    if sandbox.backend == "os":
        # A microVM's root is writable: an overlay on its read-only image.
        with pytest.raises(mbx.MbxError) as e:
            sandbox.write_file("/usr/evil", b"x")
        assert e.value.code == mbx.MBX_EPERM
    with pytest.raises(mbx.MbxError) as e:
        sandbox.write_file("plain", b"y", flags=2)  # exclusive
    assert e.value.code == mbx.MBX_EEXIST
    with pytest.raises(mbx.MbxError) as e:
        sandbox.read_file("")
    assert e.value.code == mbx.MBX_EINVAL


def test_paths_cannot_escape_the_view(sandbox, host_tmp):
    token = secrets.token_hex(16)
    secret = os.path.join(host_tmp, "host-secret")
    with open(secret, "w") as f:
        f.write(token)
    os.chmod(host_tmp, 0o755)
    # Absolute and relative symlinks, and .., all resolve inside the sandbox.
    sandbox.exec(["ln", "-s", secret, "/workspace/abs"])
    sandbox.exec(["ln", "-s", "../../../../../../.." + secret, "/workspace/rel"])
    for path in ("abs", "rel", "../../.." + secret, secret):
        with pytest.raises(mbx.MbxError) as e:
            sandbox.read_file(path)
        assert e.value.code == mbx.MBX_ENOTFOUND, (path, e.value)
    # /etc through .. is the sandbox's own, not the host's: its host name
    # file names the sandbox. (The host's /etc/passwd can equal a guest
    # image's byte for byte: both Debian's minimal base.)
    assert sandbox.read_file("../../../etc/hostname") == b"mimobox\n"
    if sandbox.backend == "os":
        data = sandbox.read_file("../../../etc/passwd")
        with open("/etc/passwd", "rb") as f:
            assert data != f.read()
    # Writing through a link to the host path creates nothing on the host.
    with pytest.raises(mbx.MbxError):
        sandbox.write_file(secret, b"overwritten")
    with open(secret) as f:
        assert f.read() == token


def test_symlink_swap_race_stays_inside(sandbox, host_tmp):
    # A payload flips a link between a file and a host path while the host
    # reads through it: every read gets the sandbox file or not-found.
    token = secrets.token_hex(16)
    secret = os.path.join(host_tmp, "s2")
    with open(secret, "w") as f:
        f.write(token)
    sandbox.write_file("real", b"inside")
    flipper = sandbox.spawn(["sh", "-c", "while :; do ln -sfn real /workspace/l; ln -sfn %s /workspace/l; done" % secret],
                            timeout_ms=0)
    seen = set()
    for _ in range(200):
        try:
            seen.add(sandbox.read_file("l"))
        except mbx.MbxError as e:
            assert e.code == mbx.MBX_ENOTFOUND, e
    flipper.kill()
    flipper.wait(5000)
    flipper.close()
    assert token.encode() not in b"".join(seen), seen


def test_polling_with_zero_timeout_takes_what_arrived(sandbox):
    # timeout 0 does not wait, but it does read what the sandbox has sent.
    p = sandbox.spawn(["sh", "-c", "echo early; sleep 5"])
    time.sleep(1.0)
    ev = p.next_event(0)
    assert ev == (mbx.MBX_EVENT_STDOUT, b"early\n"), ev
    assert p.next_event(0) is None
    p.kill()
    p.wait(5000)
    p.close()


def test_file_api_refuses_set_id_modes(sandbox):
    # A caller may forward a mode a model chose: files made through the
    # file API never carry set-user-id or set-group-id bits.
    for mode in (0o4755, 0o2755, 0o6777):
        with pytest.raises(mbx.MbxError) as e:
            sandbox.write_file("setid", b"#!/bin/sh\n", mode=mode)
        assert e.value.code == mbx.MBX_EINVAL and "set-user-id" in e.value.message, e.value
        with pytest.raises(mbx.MbxError) as e:
            sandbox.mkdir("setid-dir", mode=mode)
        assert e.value.code == mbx.MBX_EINVAL, e.value
    r = sandbox.exec(["sh", "-c", "ls /workspace"])
    assert r.stdout == b"", r.stdout
    # Ordinary modes, the sticky bit included, still work.
    sandbox.write_file("tool", b"#!/bin/sh\n", mode=0o755)
    sandbox.mkdir("shared", mode=0o1777)
    assert sandbox.stat("tool")["mode"] == 0o755 and sandbox.stat("shared")["mode"] & 0o1000


def test_reattached_process_output_flows_again(sandbox):
    # A background process whose handle was dropped keeps running (its
    # output meanwhile is dropped); a new handle gets its output again.
    p = sandbox.spawn(["sh", "-c", "i=0; while :; do i=$((i+1)); echo tick$i; sleep 0.05; done"], timeout_ms=0)
    pid = p.id
    ev = p.next_event(5000)
    assert ev and ev[0] == mbx.MBX_EVENT_STDOUT, ev
    p.close()
    time.sleep(0.3)
    q = sandbox.process(pid)
    try:
        out = b""
        deadline = time.monotonic() + 10
        while out.count(b"tick") < 3 and time.monotonic() < deadline:
            ev = q.next_event(1000)
            if ev:
                assert ev[0] == mbx.MBX_EVENT_STDOUT, ev
                out += ev[1]
        assert out.count(b"tick") >= 3, out
        q.kill()
    finally:
        q.close()


def test_process_handle_may_outlive_its_sandbox(lib, guard):
    # Freeing the sandbox first leaves the handle safe: calls on it answer
    # MBX_ESTATE and freeing it only frees (ASan/valgrind see no use after free).
    sb = mbx.Sandbox(lib)
    guard.ids.add(sb.id)
    p = sb.spawn(["sleep", unique_sleep_arg()], timeout_ms=0)
    sb.close()
    with pytest.raises(mbx.MbxError) as e:
        p.kill()
    assert e.value.code == mbx.MBX_ESTATE, e.value
    with pytest.raises(mbx.MbxError) as e:
        p.next_event(0)
    assert e.value.code == mbx.MBX_ESTATE, e.value
    p.close()
