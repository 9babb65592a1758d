# SPDX-License-Identifier: Apache-2.0
"""mimobox: run untrusted code in local sandboxes, from Python.

A binding of libmimobox's public C API with ctypes::

    from mimobox import Sandbox

    with Sandbox(isolation="auto", timeout=10) as sb:
        r = sb.execute_code("print(6 * 7)")
        print(r.stdout, r.exit_code)

See python/README.md for the API and python/examples/ for runnable examples.
"""
from ._sandbox import (DirEntry, ExecuteResult, Files, FileStat, HttpResponse, Mount, Pool, Process, ProcessInfo,
                       Sandbox, StreamEvent, backend_available, library_path, version)
from .aio import AsyncProcess, AsyncSandbox
from .errors import (BackendError, BackendUnavailableError, InvalidArgumentError, LibraryNotFoundError,
                     NetworkDeniedError, NotExecutableError, ProtocolError, SandboxError, SandboxFileExistsError,
                     SandboxMemoryError, SandboxNetworkError, SandboxNotADirectoryError, SandboxNotFoundError,
                     SandboxPermissionError, SandboxStateError, SandboxSystemError, SandboxTimeoutError, TlsError,
                     TooLargeError)

__version__ = "0.1.0"

__all__ = [
    "Sandbox", "AsyncSandbox", "AsyncProcess", "ExecuteResult", "Files", "DirEntry", "FileStat", "HttpResponse",
    "Mount", "Pool", "Process", "ProcessInfo", "StreamEvent", "backend_available", "library_path", "version",
    "SandboxError", "LibraryNotFoundError", "InvalidArgumentError", "SandboxMemoryError", "BackendUnavailableError",
    "SandboxPermissionError", "SandboxSystemError", "SandboxTimeoutError", "BackendError", "SandboxStateError",
    "SandboxNotFoundError", "NotExecutableError", "SandboxNotADirectoryError", "TooLargeError", "ProtocolError",
    "SandboxFileExistsError", "NetworkDeniedError", "SandboxNetworkError", "TlsError",
]
