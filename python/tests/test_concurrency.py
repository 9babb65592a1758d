# SPDX-License-Identifier: Apache-2.0
"""One sandbox shared by threads, and AsyncSandbox under asyncio. The C
library's sandbox handle is single-threaded; the package serializes calls
per sandbox, so these must give every caller its own right answer."""
import asyncio
import os
import threading

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
    """A thread reading a process's events while others execute: the
    process calls take the sandbox's lock per poll, not for the whole
    stream."""
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
