# SPDX-License-Identifier: Apache-2.0
"""One sandbox shared by threads, and AsyncSandbox under asyncio. The C
library is thread-safe per sandbox and the package adds no lock around the
calls: these check that every caller gets its own right answer, that a
thread waiting for a process holds up nobody, that closing frees the
handles only once no call uses them, and reset, the event descriptor and
pool reuse."""
import asyncio
import os
import select
import threading
import time

import pytest

import wasm_modules

THREADS = 8
ROUNDS = 6


def test_threads_share_one_sandbox(sb):
    errors = []
    barrier = threading.Barrier(THREADS)

    def work(n):
        try:
            barrier.wait()
            for i in range(ROUNDS):
                tag = "t%d-%d" % (n, i)
                data = os.urandom(1000 + n * 100 + i)
                sb.write_file("%s.bin" % tag, data)
                r = sb.execute(["sh", "-c", "echo $0; wc -c < /workspace/$0.bin", tag])
                assert r.ok and r.stdout.split() == [tag, str(len(data))], (tag, r)
                assert sb.read_file("%s.bin" % tag) == data
                assert sb.files.stat("%s.bin" % tag).size == len(data)
                r = sb.execute_code("print(%d * %d)" % (n, i))
                assert r.stdout == "%d\n" % (n * i), r
                sb.files.remove("%s.bin" % tag)
        except BaseException as e:  # reported below
            errors.append((n, e))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not [t for t in threads if t.is_alive()], "threads hung"
    assert errors == []
    assert sb.files.list() == []


def test_threads_share_one_wasm_sandbox(mimobox):
    from conftest import backend_or_skip
    backend_or_skip(mimobox, "wasm")
    errors = []
    with mimobox.Sandbox(isolation="wasm") as sb:
        sb.write_file("cat.wat", wasm_modules.CAT)

        def work(n):
            try:
                for i in range(3):
                    data = ("thread %d round %d\n" % (n, i)).encode() * (n + 1)
                    r = sb.execute("/workspace/cat.wat", stdin=data)
                    assert r.ok and r.stdout_bytes == data, r
                    sb.write_file("w%d" % n, data)
                    assert sb.read_file("w%d" % n) == data
            except BaseException as e:
                errors.append((n, e))

        threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert errors == []
        assert len(sb.files.list()) == THREADS + 1


def test_a_stream_and_other_calls_interleave(sb):
    """A thread reading a process's events while others execute."""
    got = []
    it = sb.stream_execute(["sh", "-c", "for i in 1 2 3 4 5; do echo $i; sleep 0.1; done"])
    reader = threading.Thread(target=lambda: got.extend(it))
    reader.start()
    outs = [sb.execute(["echo", str(i)]).stdout for i in range(10)]
    reader.join(60)
    assert outs == ["%d\n" % i for i in range(10)]
    assert b"".join(e.data for e in got if e.kind == "stdout") == b"1\n2\n3\n4\n5\n"
    assert got[-1].kind == "exit" and got[-1].exit_code == 0


def test_close_while_other_threads_call(mimobox):
    sb = mimobox.Sandbox(isolation="os")
    outcomes = []

    def work():
        for _ in range(20):
            try:
                sb.execute("true")
                outcomes.append("ok")
            except mimobox.SandboxStateError:
                outcomes.append("closed")
                return

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    sb.close()
    for t in threads:
        t.join(60)
    assert set(outcomes) <= {"ok", "closed"}


def test_async_sandbox_gather(mimobox):
    async def main():
        async with mimobox.AsyncSandbox(isolation="os", timeout=20) as sb:
            assert sb.is_ready() and len(sb.id) == 16
            results = await asyncio.gather(*[sb.execute(["sh", "-c", "echo $0", str(i)]) for i in range(THREADS)],
                                           *[sb.execute_code("print(%d)" % (i * i)) for i in range(THREADS)])
            assert [r.stdout for r in results] == ["%d\n" % i for i in range(THREADS)] + \
                ["%d\n" % (i * i) for i in range(THREADS)]
            await asyncio.gather(*[sb.write_file("f%d" % i, str(i)) for i in range(THREADS)])
            datas = await asyncio.gather(*[sb.read_file("f%d" % i) for i in range(THREADS)])
            assert datas == [str(i).encode() for i in range(THREADS)]
            names = [e.name for e in await sb.files.list()]
            assert names == sorted("f%d" % i for i in range(THREADS))
            # The loop stays free while a slow execute runs.
            ticks = 0

            async def ticker():
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            t = asyncio.ensure_future(ticker())
            r = await sb.execute("sleep 0.5")
            t.cancel()
            assert r.ok and ticks >= 10
            evs = [ev async for ev in sb.stream_execute(["sh", "-c", "echo a; echo b"])]
            assert b"".join(e.data for e in evs if e.kind == "stdout") == b"a\nb\n"
            p = await sb.spawn(["cat"], stdin=True)
            await p.write(b"async\n")
            await p.close_stdin()
            r = await p.wait(10)
            await p.close()
            assert r.stdout == "async\n"
        assert not sb.is_ready()

    asyncio.run(main())


def test_async_sandboxes_in_parallel(mimobox):
    async def one(i):
        sb = await mimobox.AsyncSandbox.create(isolation="os")
        try:
            return (await sb.execute(["echo", str(i)])).stdout
        finally:
            await sb.close()

    async def main():
        return await asyncio.gather(*[one(i) for i in range(4)])

    assert asyncio.run(main()) == ["%d\n" % i for i in range(4)]


def test_async_errors_keep_their_types(mimobox):
    async def main():
        async with mimobox.AsyncSandbox(isolation="os") as sb:
            with pytest.raises(FileNotFoundError):
                await sb.read_file("absent")
            with pytest.raises(mimobox.SandboxNotFoundError):
                await sb.execute("no-such-program")
    asyncio.run(main())


def test_async_sandbox_on_wasm(mimobox):
    from conftest import backend_or_skip
    backend_or_skip(mimobox, "wasm")

    async def main():
        async with mimobox.AsyncSandbox(isolation="wasm") as sb:
            await sb.write_file("cat.wat", wasm_modules.CAT)
            rs = await asyncio.gather(*[sb.execute("/workspace/cat.wat", stdin=b"%d" % i) for i in range(THREADS)])
            assert [r.stdout for r in rs] == [str(i) for i in range(THREADS)]
            evs = [ev async for ev in sb.stream_execute("/workspace/cat.wat", stdin=b"streamed")]
            assert evs[0].data == b"streamed" and evs[-1].kind == "exit" and evs[-1].exit_code == 0

    asyncio.run(main())


# ---------------------------------------------------------------------------
# waits that hold up nobody


class CountingLib:
    """The loaded library with a record of the process waits made through it."""

    def __init__(self, lib):
        self._lib = lib
        self.waits = []  # (thread, function, timeout_ms)
        self.inside = threading.Event()

    def __getattr__(self, name):
        fn = getattr(self._lib, name)
        if name not in ("mbx_process_next_event", "mbx_process_wait"):
            return fn

        def counted(proc, timeout_ms, *rest):
            self.waits.append((threading.get_ident(), name, timeout_ms))
            self.inside.set()
            return fn(proc, timeout_ms, *rest)
        return counted


# Runs until /workspace/stop appears, then says so.
UNTIL_STOP = ["sh", "-c", "while [ ! -e /workspace/stop ]; do sleep 0.02; done; echo stopped"]


@pytest.mark.parametrize("how", ["events", "wait"])
def test_a_waiting_thread_does_not_hold_up_others(sb, how):
    """One thread waits for a long process in one blocking call (no slices
    of a lock); another meanwhile writes, reads, lists, executes and spawns,
    and finishes while the long process still runs."""
    counting = CountingLib(sb._lib)
    sb._lib = counting
    proc = sb.spawn(UNTIL_STOP, timeout=120)
    got = []
    waiter_ident = []

    def waiter():
        waiter_ident.append(threading.get_ident())
        try:
            got.append(list(proc) if how == "events" else proc.wait())
        except BaseException as e:
            got.append(e)

    t = threading.Thread(target=waiter)
    t.start()
    assert counting.inside.wait(30)
    for i in range(15):
        data = os.urandom(100 + i)
        sb.write_file("f%d" % i, data)
        assert sb.read_file("f%d" % i) == data
        assert sb.files.stat("f%d" % i).size == len(data)
        assert sb.execute(["cat", "/workspace/f%d" % i]).stdout_bytes == data
        short = sb.spawn(["echo", str(i)])
        assert short.wait(30).stdout == "%d\n" % i
        short.close()
    assert sorted(e.name for e in sb.files.list(details=False)) == sorted("f%d" % i for i in range(15))
    # All that while the long process ran and its waiter was blocked.
    assert t.is_alive() and proc.running and not got
    sb.write_file("stop", b"")
    t.join(60)
    assert not t.is_alive()
    if how == "events":
        evs = got[0]
        assert b"".join(e.data for e in evs if e.kind == "stdout") == b"stopped\n"
        assert evs[-1].kind == "exit" and evs[-1].exit_code == 0
    else:
        assert got[0].ok and got[0].stdout == "stopped\n", got
    # The waiter made one blocking call (timeout -1) per event, not slices.
    waits = [(name, ms) for ident, name, ms in counting.waits if ident == waiter_ident[0]]
    want = "mbx_process_next_event" if how == "events" else "mbx_process_wait"
    assert waits == [(want, -1)] * (len(got[0]) if how == "events" else 1), waits
    proc.close()


def test_close_ends_a_blocked_wait(mimobox):
    """close() from another thread: a thread blocked for a process's events
    gets the end (the process is killed), later calls raise, nothing leaks."""
    sb = mimobox.Sandbox(isolation="os")
    proc = sb.spawn(["sleep", "1000"], timeout=0)
    got = []

    def waiter():
        try:
            got.append(list(proc))
        except BaseException as e:
            got.append(e)

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.2)  # let it block (the close is right either way)
    sb.close()
    t.join(60)
    assert not t.is_alive()
    assert isinstance(got[0], mimobox.SandboxStateError) or got[0][-1].is_end, got
    with pytest.raises(mimobox.SandboxStateError):
        proc.kill()
    with pytest.raises(mimobox.SandboxStateError):
        sb.execute("true")
    proc.close()
    sb.close()  # idempotent


def test_process_close_while_another_thread_waits(sb, mimobox):
    """Closing a process handle another thread is waiting on frees it when
    that wait returns (never under it)."""
    proc = sb.spawn(UNTIL_STOP, timeout=120)
    counting = CountingLib(sb._lib)
    proc._lib = counting
    got = []
    t = threading.Thread(target=lambda: got.append(proc.wait()))
    t.start()
    assert counting.inside.wait(30)  # its call is counted: the free must wait for it
    proc.close()
    with pytest.raises(mimobox.SandboxStateError, match="handle is closed"):
        proc.signal(15)
    assert t.is_alive()
    sb.write_file("stop", b"")
    t.join(60)
    assert got[0].stdout == "stopped\n"
    assert not proc._ptr  # freed by the wait as it returned


def test_concurrent_closes_of_one_sandbox(mimobox):
    sb = mimobox.Sandbox(isolation="os")
    procs = [sb.spawn(["sleep", "1000"], timeout=0) for _ in range(3)]
    waiters = [threading.Thread(target=lambda p=p: list(p)) for p in procs]
    closers = [threading.Thread(target=sb.close) for _ in range(3)]
    for t in waiters + closers:
        t.start()
    for t in waiters + closers:
        t.join(60)
    assert not [t for t in waiters + closers if t.is_alive()]
    assert not sb.is_ready()


# ---------------------------------------------------------------------------
# reset


def test_reset_clears_files_and_processes(mimobox):
    with mimobox.Sandbox(isolation="os", env={"KEPT": "yes"}, timeout=20) as sb:
        sid = sb.id
        sb.write_file("secret.txt", "left by the last user")
        sb.files.mkdir("d/e", parents=True)
        assert sb.execute(["sh", "-c", "echo t > /tmp/t; echo s > /dev/shm/s"]).ok
        bg = sb.spawn(["sleep", "1000"], timeout=0)
        assert [p.id for p in sb.processes()] == [bg.id]
        sb.reset()
        assert sb.id == sid and sb.is_ready()
        assert sb.files.list() == []
        r = sb.execute(["sh", "-c", "ls -A /tmp /dev/shm; echo $KEPT"])
        assert r.ok and r.stdout.split() == ["/dev/shm:", "/tmp:", "yes"], r
        assert sb.processes() == []
        with pytest.raises(mimobox.SandboxStateError):
            bg.wait(10)
        bg.close()
        assert sb.execute_code("print(6 * 7)").stdout == "42\n"


def test_reset_is_refused_while_another_call_runs(sb, mimobox):
    sb.write_file("kept", "1")
    proc = sb.spawn(UNTIL_STOP, timeout=120)
    counting = CountingLib(sb._lib)
    proc._lib = counting
    t = threading.Thread(target=lambda: list(proc))
    t.start()
    assert counting.inside.wait(30)
    time.sleep(0.5)  # into the C call (the library refuses the reset only then)
    with pytest.raises(mimobox.SandboxStateError):
        sb.reset()
    assert sb.read_file("kept") == b"1" and proc.running
    sb.write_file("stop", b"")
    t.join(60)
    proc.close()
    sb.reset()
    assert sb.files.list() == []


def test_reset_and_event_fd_on_wasm(mimobox):
    from conftest import backend_or_skip
    backend_or_skip(mimobox, "wasm")
    with mimobox.Sandbox(isolation="wasm") as sb:
        with pytest.raises(mimobox.BackendUnavailableError):
            sb.event_fd()
        with pytest.raises(mimobox.BackendUnavailableError, match="reset"):
            sb.reset()
        # Failed closed, as the library does: the sandbox is gone.
        assert not sb.is_ready()
        with pytest.raises(mimobox.SandboxStateError):
            sb.files.list()


# ---------------------------------------------------------------------------
# the event descriptor


def _readable(fd, timeout):
    return bool(select.select([fd], [], [], timeout)[0])


def test_event_fd_becomes_readable_when_a_process_writes(sb):
    fd = sb.event_fd()
    assert fd >= 0 and sb.event_fd() == fd
    proc = sb.spawn(["sh", "-c", "read line; echo got $line"], stdin=True, timeout=60)
    # Drain what the start left (level-triggered: readable while events wait).
    deadline = time.monotonic() + 10
    while _readable(fd, 0):
        assert proc.next_event(0) is None  # nothing written yet
        assert time.monotonic() < deadline, "the descriptor stays readable with nothing to take"
        time.sleep(0.01)
    assert not _readable(fd, 0.3)  # the program waits for stdin: no event
    proc.write(b"hello\n")
    out = b""
    end = None
    while end is None:
        assert _readable(fd, 30), "no wakeup for the process's output"
        while True:
            ev = proc.next_event(0)
            if ev is None:
                break
            if ev.is_end:
                end = ev
                break
            out += ev.data
    assert out == b"got hello\n" and end.kind == "exit" and end.exit_code == 0
    proc.close()


def test_event_fd_drives_asyncio(sb):
    """The documented asyncio way: loop.add_reader on the descriptor, then
    next_event(0), with no thread and no polling."""
    procs = [sb.spawn(["sh", "-c", "echo start $0; sleep 0.2; echo end $0", str(i)]) for i in range(3)]

    async def main():
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        out = {p.id: b"" for p in procs}
        ends = {}

        def ready():
            for p in procs:
                while p.id not in ends:
                    ev = p.next_event(0)
                    if ev is None:
                        break
                    if ev.is_end:
                        ends[p.id] = ev
                    else:
                        out[p.id] += ev.data
            if len(ends) == len(procs) and not done.done():
                done.set_result(None)

        fd = sb.event_fd()
        loop.add_reader(fd, ready)
        try:
            await asyncio.wait_for(done, 60)
        finally:
            loop.remove_reader(fd)
        return out, ends

    out, ends = asyncio.run(main())
    for i, p in enumerate(procs):
        assert out[p.id] == ("start %d\nend %d\n" % (i, i)).encode()
        assert ends[p.id].exit_code == 0
        p.close()


# ---------------------------------------------------------------------------
# pools that reuse sandboxes


def test_pool_reuses_a_given_back_sandbox_reset(mimobox):
    with mimobox.Pool(size=1, max_uses=3, isolation="os", timeout=20) as pool:
        sb = pool.take()
        first = sb.id
        sb.write_file("secret", "x")
        bg = sb.spawn(["sleep", "1000"], timeout=0)
        pool.give_back(sb)
        with pytest.raises(mimobox.SandboxStateError):
            sb.execute("true")
        with pytest.raises(mimobox.SandboxStateError):
            bg.next_event(0)
        bg.close()
        sb2 = pool.take()
        assert sb2.id == first  # the same sandbox, reset
        assert sb2.files.list() == [] and sb2.processes() == []
        assert sb2.execute("echo again").stdout == "again\n"
        # Another pool's sandbox is refused and left alone.
        with mimobox.Pool(size=1, isolation="os") as other:
            with pytest.raises(mimobox.InvalidArgumentError):
                other.give_back(sb2)
        assert sb2.execute("true").ok
        pool.give_back(sb2, discard=True)
        sb3 = pool.take()
        assert sb3.id != first and sb3.files.list() == []
        sb3.close()  # discarded: the pool makes a new one
        with pool.take() as sb4:
            assert sb4.execute("true").ok


def test_pool_reuse_needs_the_os_backend(mimobox):
    from conftest import backend_or_skip
    backend_or_skip(mimobox, "wasm")
    with mimobox.Pool(size=1, isolation="wasm") as pool:
        with pytest.raises(mimobox.BackendUnavailableError):
            pool.set_reuse(5)
        with pytest.raises(mimobox.InvalidArgumentError):
            pool.set_reuse(-1)


def test_close_while_threads_use_processes(mimobox):
    """Threads spawning, reading, writing to and closing processes while
    another closes the sandbox: each call works or raises
    SandboxStateError; no handle is freed under a call (ASan would see it)."""
    sb = mimobox.Sandbox(isolation="os", timeout=30)
    outcomes = []

    def work(n):
        try:
            for i in range(50):
                p = sb.spawn(["cat"], stdin=True)
                p.write(b"%d %d\n" % (n, i))
                p.close_stdin()
                evs = list(p)
                assert evs[-1].is_end
                if evs[-1].kind == "exit" and evs[-1].exit_code == 0:
                    assert b"".join(e.data for e in evs[:-1]) == b"%d %d\n" % (n, i)
                p.close()
                outcomes.append("ok")
        except mimobox.SandboxStateError:
            outcomes.append("closed")
        except BaseException as e:
            outcomes.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    sb.close()
    for t in threads:
        t.join(60)
    assert not [t for t in threads if t.is_alive()]
    assert set(map(str, outcomes)) <= {"ok", "closed"}, outcomes
