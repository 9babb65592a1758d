# SPDX-License-Identifier: Apache-2.0
"""asyncio: :class:`AsyncSandbox` runs each call of a :class:`Sandbox` on a
thread executor, so the event loop never blocks on the C library."""
from __future__ import annotations

import asyncio
import functools
from concurrent.futures import Executor
from typing import Any, AsyncIterator, Callable, List, Mapping, Optional, Sequence, TypeVar, Union

from ._sandbox import (Command, DirEntry, ExecuteResult, FileStat, HttpResponse, Process, ProcessInfo, Sandbox,
                       StreamEvent)

T = TypeVar("T")


async def _run(executor: Optional[Executor], fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, functools.partial(fn, *args, **kw))


class AsyncSandbox:
    """A :class:`Sandbox` for asyncio. Create it with ``await
    AsyncSandbox.create(...)`` (same keyword arguments as Sandbox) or ``async
    with AsyncSandbox(...) as sb``. Every method is a coroutine with the
    Sandbox method's arguments; calls run in parallel, on one sandbox as on
    several (e.g. with asyncio.gather). A process's next_event() occupies
    an executor thread while it waits; to follow many processes on the loop
    itself, use ``loop.add_reader(sb.sandbox.event_fd(), ...)`` and
    ``proc.next_event(0)`` (:meth:`Sandbox.event_fd`).

    Args:
        executor: a concurrent.futures executor to run the calls on (default:
            the loop's default thread pool).
    """

    def __init__(self, *args: Any, executor: Optional[Executor] = None, **kwargs: Any) -> None:
        self._args = args
        self._kwargs = kwargs
        self._executor = executor
        self._sb: Optional[Sandbox] = None
        self.files = AsyncFiles(self)

    @classmethod
    async def create(cls, *args: Any, executor: Optional[Executor] = None, **kwargs: Any) -> "AsyncSandbox":
        """Creates the sandbox (on the executor) and returns it ready."""
        self = cls(*args, executor=executor, **kwargs)
        await self._start()
        return self

    @classmethod
    def wrap(cls, sandbox: Sandbox, executor: Optional[Executor] = None) -> "AsyncSandbox":
        """An AsyncSandbox over an existing Sandbox (it then owns it)."""
        self = cls(executor=executor)
        self._sb = sandbox
        return self

    async def _start(self) -> None:
        if self._sb is None:
            self._sb = await _run(self._executor, Sandbox, *self._args, **self._kwargs)

    @property
    def sandbox(self) -> Sandbox:
        """The underlying synchronous Sandbox."""
        if self._sb is None:
            raise RuntimeError("the AsyncSandbox is not started: use `await AsyncSandbox.create(...)` or "
                               "`async with AsyncSandbox(...)`")
        return self._sb

    @property
    def id(self) -> str:
        return self.sandbox.id

    @property
    def isolation(self) -> str:
        return self.sandbox.isolation


    async def __aenter__(self) -> "AsyncSandbox":
        await self._start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        """Destroys the sandbox (idempotent)."""
        if self._sb is not None:
            await _run(self._executor, self.sandbox.close)

    def is_ready(self) -> bool:
        return self._sb is not None and self._sb.is_ready()

    async def wait_ready(self, timeout: Optional[float] = None) -> None:
        await self._start()
        self.sandbox.wait_ready(timeout)

    async def execute(self, command: Command, timeout: Optional[float] = None,
                      env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None,
                      stdin: Optional[Union[bytes, str]] = None) -> ExecuteResult:
        """As :meth:`Sandbox.execute`."""
        return await _run(self._executor, self.sandbox.execute, command, timeout=timeout, env=env, cwd=cwd, stdin=stdin)

    async def execute_code(self, code: str, language: str = "python3", timeout: Optional[float] = None,
                           env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None,
                           stdin: Optional[Union[bytes, str]] = None) -> ExecuteResult:
        """As :meth:`Sandbox.execute_code`."""
        return await _run(self._executor, self.sandbox.execute_code, code, language, timeout=timeout, env=env, cwd=cwd, stdin=stdin)

    async def stream_execute(self, command: Command, timeout: Optional[float] = None,
                             env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None,
                             stdin: Optional[Union[bytes, str]] = None) -> AsyncIterator[StreamEvent]:
        """As :meth:`Sandbox.stream_execute` without callbacks: an async
        iterator of StreamEvents (``async for ev in sb.stream_execute(...)``).
        Leaving the loop early kills the program."""
        it = await _run(self._executor, self.sandbox.stream_execute, command, timeout, env, cwd, stdin)
        sentinel = object()
        try:
            while True:
                ev = await _run(self._executor, next, it, sentinel)
                if ev is sentinel:
                    return
                yield ev
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                await _run(self._executor, close)

    async def read_file(self, path: str) -> bytes:
        return await _run(self._executor, self.sandbox.read_file, path)

    async def write_file(self, path: str, data: Union[bytes, str], mode: int = 0o644, parents: bool = False) -> None:
        await _run(self._executor, self.sandbox.write_file, path, data, mode=mode, parents=parents)

    async def http_request(self, method: str, url: str, headers: Optional[Mapping[str, str]] = None,
                           body: Optional[Union[bytes, str]] = None, timeout: Optional[float] = None) -> HttpResponse:
        return await _run(self._executor, self.sandbox.http_request, method, url, headers=headers, body=body, timeout=timeout)

    async def spawn(self, command: Command, **kw: Any) -> "AsyncProcess":
        """As :meth:`Sandbox.spawn`."""
        return AsyncProcess(await _run(self._executor, self.sandbox.spawn, command, **kw), self._executor)

    async def create_pty(self, command: Command = ("/bin/sh",), rows: int = 24, cols: int = 80,
                         **kw: Any) -> "AsyncProcess":
        """As :meth:`Sandbox.create_pty`."""
        return AsyncProcess(await _run(self._executor, self.sandbox.create_pty, command, rows, cols, **kw), self._executor)

    async def processes(self) -> List[ProcessInfo]:
        return await _run(self._executor, self.sandbox.processes)


class AsyncFiles:
    """``AsyncSandbox.files``: the :class:`~mimobox.Files` methods as coroutines."""

    def __init__(self, owner: AsyncSandbox) -> None:
        self._owner = owner


    async def read(self, path: str) -> bytes:
        return await _run(self._owner._executor, self._owner.sandbox.files.read, path)

    async def read_text(self, path: str, encoding: str = "utf-8", errors: str = "strict") -> str:
        return await _run(self._owner._executor, self._owner.sandbox.files.read_text, path, encoding, errors)

    async def write(self, path: str, data: Union[bytes, str], mode: int = 0o644, parents: bool = False,
                    append: bool = False, exclusive: bool = False) -> None:
        await _run(self._owner._executor, self._owner.sandbox.files.write, path, data, mode=mode, parents=parents, append=append, exclusive=exclusive)

    async def list(self, path: str = "/workspace") -> List[DirEntry]:
        return await _run(self._owner._executor, self._owner.sandbox.files.list, path)

    async def stat(self, path: str) -> FileStat:
        return await _run(self._owner._executor, self._owner.sandbox.files.stat, path)

    async def exists(self, path: str) -> bool:
        return await _run(self._owner._executor, self._owner.sandbox.files.exists, path)

    async def mkdir(self, path: str, parents: bool = False, mode: int = 0o755) -> None:
        await _run(self._owner._executor, self._owner.sandbox.files.mkdir, path, parents=parents, mode=mode)

    async def remove(self, path: str, recursive: bool = False) -> None:
        await _run(self._owner._executor, self._owner.sandbox.files.remove, path, recursive=recursive)

    async def rename(self, src: str, dst: str) -> None:
        await _run(self._owner._executor, self._owner.sandbox.files.rename, src, dst)

    async def upload(self, path: str, fileobj: Any, mode: int = 0o644) -> None:
        await _run(self._owner._executor, self._owner.sandbox.files.upload, path, fileobj, mode=mode)

    async def download(self, path: str, fileobj: Any) -> None:
        await _run(self._owner._executor, self._owner.sandbox.files.download, path, fileobj)


class AsyncProcess:
    """A :class:`~mimobox.Process` for asyncio; ``async for ev in proc``."""

    def __init__(self, proc: Process, executor: Optional[Executor]) -> None:
        self.process = proc
        self._executor = executor
        self.id = proc.id


    async def next_event(self, timeout: Optional[float] = None) -> Optional[StreamEvent]:
        return await _run(self._executor, self.process.next_event, timeout)

    async def __aiter__(self) -> AsyncIterator[StreamEvent]:
        while True:
            ev = await self.next_event()
            if ev is None:
                return
            yield ev
            if ev.is_end:
                return

    async def write(self, data: Union[bytes, str]) -> None:
        await _run(self._executor, self.process.write, data)

    async def close_stdin(self) -> None:
        await _run(self._executor, self.process.close_stdin)

    async def signal(self, sig: int) -> None:
        await _run(self._executor, self.process.signal, sig)

    async def kill(self) -> None:
        await _run(self._executor, self.process.kill)

    async def resize(self, rows: int, cols: int) -> None:
        await _run(self._executor, self.process.resize, rows, cols)

    async def wait(self, timeout: Optional[float] = None) -> ExecuteResult:
        return await _run(self._executor, self.process.wait, timeout)

    async def close(self) -> None:
        await _run(self._executor, self.process.close)
