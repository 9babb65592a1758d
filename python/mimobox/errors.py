# SPDX-License-Identifier: Apache-2.0
"""Exceptions of the mimobox package.

Every error of the library is a :class:`SandboxError` carrying the stable
error-code string of the C API (``.code``, e.g. ``"not_found"``), the message
(``.message``), what to do about it when known (``.suggestion``), the
isolation layer it is about (``.layer``) and the errno behind it (``.errno``,
0 when none). Each code has its own subclass, which also subclasses the
built-in exception that fits, so ``except FileNotFoundError`` catches a
missing sandbox file as it would a missing host file.

A payload that fails (non-zero exit, signal, timeout, out of memory) is not
an error: that is in the :class:`~mimobox.ExecuteResult`.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Type


class SandboxError(Exception):
    """Base of every mimobox error.

    Attributes:
        code: stable snake_case error code of the C API ("invalid_argument",
            "not_found", ...), or "library_not_found" when libmimobox could
            not be loaded.
        message: what failed and why.
        suggestion: what to do about it, or None.
        layer: the isolation layer or backend the error is about, or None.
        status: the numeric MBX_E* status (negative), 0 when there is none.
    """

    code: str = "unknown"
    status: int = 0

    def __init__(self, message: str, *, code: Optional[str] = None, suggestion: Optional[str] = None,
                 layer: Optional[str] = None, errno: int = 0, status: Optional[int] = None) -> None:
        Exception.__init__(self, message)
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.message = message
        self.suggestion = suggestion
        self.layer = layer
        # The errno behind the error (None when there is none); for the
        # OSError subclasses this is their usual errno field.
        setattr(self, "errno", errno or None)

    def __str__(self) -> str:
        if self.suggestion:
            if "\n" in self.message:
                return "%s\nWhat to do: %s" % (self.message, self.suggestion)
            return "%s (%s)" % (self.message, self.suggestion)
        return self.message

    def __repr__(self) -> str:
        return "%s(code=%r, message=%r)" % (type(self).__name__, self.code, self.message)

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), self.message, self.code, self.suggestion, self.layer, self.status))


def _rebuild(cls: Type[SandboxError], message: str, code: str, suggestion: Optional[str], layer: Optional[str],
             status: int) -> SandboxError:
    return cls(message, code=code, suggestion=suggestion, layer=layer, status=status)


class LibraryNotFoundError(SandboxError, ImportError):
    """libmimobox could not be loaded (the message says where it looked)."""
    code = "library_not_found"


class InvalidArgumentError(SandboxError, ValueError):
    """Bad input from the caller ("invalid_argument")."""
    code, status = "invalid_argument", -1


class SandboxMemoryError(SandboxError, MemoryError):
    """The host ran out of memory ("out_of_memory")."""
    code, status = "out_of_memory", -2


class BackendUnavailableError(SandboxError):
    """A backend or an isolation layer is unavailable here ("unsupported");
    ``.layer`` names it."""
    code, status = "unsupported", -3


class SandboxPermissionError(SandboxError, PermissionError):
    """Permission denied, or a read-only path ("permission_denied")."""
    code, status = "permission_denied", -4


class SandboxSystemError(SandboxError, OSError):
    """A host system call failed ("system_error"); ``.errno`` says which."""
    code, status = "system_error", -5


class SandboxTimeoutError(SandboxError, TimeoutError):
    """The host gave up waiting ("timed_out"). A payload that runs into its
    timeout is not an error: see ExecuteResult.timed_out."""
    code, status = "timed_out", -6


class BackendError(SandboxError):
    """The backend engine failed ("backend_error")."""
    code, status = "backend_error", -7


class SandboxStateError(SandboxError):
    """The object cannot do that now, e.g. the sandbox was closed ("bad_state")."""
    code, status = "bad_state", -8


class SandboxNotFoundError(SandboxError, FileNotFoundError):
    """A program, file or path does not exist in the sandbox ("not_found")."""
    code, status = "not_found", -9


class NotExecutableError(SandboxError, PermissionError):
    """The program exists but cannot be executed ("not_executable")."""
    code, status = "not_executable", -10


class SandboxNotADirectoryError(SandboxError, NotADirectoryError):
    """A path component is not a directory ("not_a_directory")."""
    code, status = "not_a_directory", -11


class TooLargeError(SandboxError, ValueError):
    """Over a configured size limit ("too_large")."""
    code, status = "too_large", -12


class ProtocolError(SandboxError):
    """The in-sandbox agent sent bad data; the sandbox is gone ("protocol_error")."""
    code, status = "protocol_error", -13


class SandboxFileExistsError(SandboxError, FileExistsError):
    """The path already exists ("already_exists")."""
    code, status = "already_exists", -14


class NetworkDeniedError(SandboxError, PermissionError):
    """The network policy refused a host or an address ("denied")."""
    code, status = "denied", -15


class SandboxNetworkError(SandboxError, ConnectionError):
    """A name did not resolve or a connection failed ("network_error")."""
    code, status = "network_error", -16


class TlsError(SandboxNetworkError):
    """A TLS handshake or certificate check failed ("tls_error")."""
    code, status = "tls_error", -17


_BY_STATUS: Dict[int, Type[SandboxError]] = {
    cls.status: cls for cls in (
        InvalidArgumentError, SandboxMemoryError, BackendUnavailableError, SandboxPermissionError,
        SandboxSystemError, SandboxTimeoutError, BackendError, SandboxStateError, SandboxNotFoundError,
        NotExecutableError, SandboxNotADirectoryError, TooLargeError, ProtocolError, SandboxFileExistsError,
        NetworkDeniedError, SandboxNetworkError, TlsError)
}


def error_class(status: int) -> Type[SandboxError]:
    """The exception class of an MBX_E* status."""
    return _BY_STATUS.get(status, SandboxError)


__all__ = [
    "SandboxError", "LibraryNotFoundError", "InvalidArgumentError", "SandboxMemoryError",
    "BackendUnavailableError", "SandboxPermissionError", "SandboxSystemError", "SandboxTimeoutError",
    "BackendError", "SandboxStateError", "SandboxNotFoundError", "NotExecutableError",
    "SandboxNotADirectoryError", "TooLargeError", "ProtocolError", "SandboxFileExistsError",
    "NetworkDeniedError", "SandboxNetworkError", "TlsError", "error_class",
]
