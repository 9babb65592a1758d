# SPDX-License-Identifier: Apache-2.0
"""Sandboxes, their results, files, processes and pools."""
from __future__ import annotations

import ctypes
import os
import queue
import shlex
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import (IO, Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union)

from . import _native as N
from .errors import BackendUnavailableError, InvalidArgumentError, SandboxError, SandboxStateError, error_class

Command = Union[str, Sequence[str]]

_ISOLATION = {"auto": 0, "os": 1, "wasm": 2, "microvm": 3}
_ISOLATION_NAME = {v: k for k, v in _ISOLATION.items()}
_TRUST = {"trusted": 0, "semi": 1, "semi-trusted": 1, "semi_trusted": 1, "untrusted": 2}
_FILE_TYPE = {1: "file", 2: "dir", 3: "symlink", 4: "other"}
_LAYERS = 14  # MBX_LAYER_* bits 0..13

# Longest single wait the C API takes (an int of milliseconds); longer
# timeouts wait in steps of this.
_MAX_WAIT_MS = 0x7FFFFFFF


# ---------------------------------------------------------------------------
# errors


def _raise(rc: int, err: ctypes.c_void_p, what: str = "") -> None:
    """Turns a failing status and its mbx_error into the right exception
    (and frees the error)."""
    lib = N.native()
    message: str
    suggestion = layer = None
    errno = 0
    if err:
        message = N.text(lib.mbx_error_message(err)) or ""
        suggestion = N.text(lib.mbx_error_suggestion(err))
        layer = N.text(lib.mbx_error_layer(err))
        errno = lib.mbx_error_errno(err)
        lib.mbx_error_free(err)
        err.value = None
    else:
        message = "%s failed" % (what or "call")
    code = N.text(lib.mbx_error_code_name(rc)) or "unknown"
    raise error_class(rc)(message, code=code, suggestion=suggestion, layer=layer, errno=errno, status=rc)


def _check(rc: int, err: ctypes.c_void_p, what: str = "") -> None:
    if rc != 0:
        _raise(rc, err, what)


def _enc(s: Union[str, bytes, "os.PathLike[str]"], what: str) -> bytes:
    if isinstance(s, os.PathLike):
        s = os.fspath(s)
    if isinstance(s, str):
        b = s.encode("utf-8", errors="surrogateescape")
    elif isinstance(s, bytes):
        b = s
    else:
        raise InvalidArgumentError("%s must be a string, not %s" % (what, type(s).__name__))
    if b"\0" in b:
        raise InvalidArgumentError("%s contains a NUL byte" % what)
    return b


def _ms(seconds: Optional[float], what: str, allow_zero: bool = False) -> Optional[int]:
    if seconds is None:
        return None
    try:
        ms = int(round(float(seconds) * 1000))
    except (TypeError, ValueError):
        raise InvalidArgumentError("%s must be a number of seconds, not %r" % (what, seconds)) from None
    if ms < 0 or (ms == 0 and not allow_zero):
        raise InvalidArgumentError("%s must be positive, got %r" % (what, seconds),
                                   suggestion="give the time in seconds, e.g. %s=10" % what)
    return ms


def _argv(command: Sequence[str]) -> "ctypes.Array[ctypes.c_char_p]":
    args = [_enc(a, "argument") for a in command]
    if not args or not args[0]:
        raise InvalidArgumentError("empty command", suggestion="give the program to run as the first word")
    return (ctypes.c_char_p * (len(args) + 1))(*args, None)


_layer_name_cache: Dict[int, str] = {}


def _layer_name(bit: int) -> str:
    name = _layer_name_cache.get(bit)
    if name is None:
        name = N.text(N.native().mbx_layer_name(bit)) or str(bit)
        _layer_name_cache[bit] = name
    return name


def _layer_names(bits: int) -> List[str]:
    return [_layer_name(1 << i) for i in range(_LAYERS) if bits & (1 << i)]


# ---------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class ExecuteResult:
    """The outcome of one execute. A payload failure (exit code, signal,
    timeout, OOM kill, Wasm trap) is reported here, not raised."""

    stdout_bytes: bytes
    stderr_bytes: bytes
    exit_code: Optional[int]
    """Exit status; None when the payload was killed by a signal, timed out or trapped."""
    signal: Optional[int]
    """Signal that killed the payload (31, SIGSYS, for a seccomp kill), or None."""
    timed_out: bool
    oom_killed: bool
    elapsed_ms: float
    stdout_truncated: bool
    stderr_truncated: bool
    isolation: str
    """Backend that ran it: "os", "wasm" or "microvm"."""
    peak_memory_bytes: int = 0
    cpu_time_ms: float = 0.0
    trap: Optional[str] = None
    """Why a Wasm payload trapped, or None."""
    limits_mechanism: Optional[str] = None
    """"cgroup-v2", "cgroup-v1" or "rlimit"."""
    layers: Tuple[str, ...] = ()
    skipped: Tuple[str, ...] = ()

    @property
    def stdout(self) -> str:
        """Standard output decoded as UTF-8 (invalid bytes replaced)."""
        return self.stdout_bytes.decode("utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        """Standard error decoded as UTF-8 (invalid bytes replaced)."""
        return self.stderr_bytes.decode("utf-8", errors="replace")

    @property
    def ok(self) -> bool:
        """True when the payload exited with status 0 within its timeout."""
        return self.exit_code == 0 and not self.timed_out

    def to_dict(self) -> Dict[str, Any]:
        """The result as JSON-ready data (output decoded)."""
        return {
            "stdout": self.stdout, "stderr": self.stderr, "exit_code": self.exit_code, "signal": self.signal,
            "timed_out": self.timed_out, "oom_killed": self.oom_killed, "elapsed_ms": self.elapsed_ms,
            "stdout_truncated": self.stdout_truncated, "stderr_truncated": self.stderr_truncated,
            "isolation": self.isolation, "peak_memory_bytes": self.peak_memory_bytes,
            "cpu_time_ms": self.cpu_time_ms, "trap": self.trap, "limits_mechanism": self.limits_mechanism,
            "ok": self.ok,
        }

    def __repr__(self) -> str:
        return "ExecuteResult(exit_code=%r, signal=%r, timed_out=%r, stdout=%r, stderr=%r)" % (
            self.exit_code, self.signal, self.timed_out, self.stdout[:200], self.stderr[:200])

    @classmethod
    def _from(cls, res: ctypes.c_void_p) -> "ExecuteResult":
        lib = N.native()
        n = ctypes.c_size_t(0)
        out = N.take_bytes(lib.mbx_result_stdout(res, ctypes.byref(n)), n.value)
        err = N.take_bytes(lib.mbx_result_stderr(res, ctypes.byref(n)), n.value)
        code = lib.mbx_result_exit_code(res)
        sig = lib.mbx_result_signal(res)
        return cls(
            stdout_bytes=out, stderr_bytes=err,
            exit_code=None if code < 0 else code, signal=sig or None,
            timed_out=bool(lib.mbx_result_timed_out(res)), oom_killed=bool(lib.mbx_result_oom_killed(res)),
            elapsed_ms=lib.mbx_result_elapsed_us(res) / 1000.0,
            stdout_truncated=bool(lib.mbx_result_stdout_truncated(res)),
            stderr_truncated=bool(lib.mbx_result_stderr_truncated(res)),
            isolation=_ISOLATION_NAME.get(lib.mbx_result_isolation(res), "unknown"),
            peak_memory_bytes=lib.mbx_result_peak_memory_bytes(res),
            cpu_time_ms=lib.mbx_result_cpu_time_us(res) / 1000.0,
            trap=N.text(lib.mbx_result_trap(res)),
            limits_mechanism=N.text(lib.mbx_result_limits_mechanism(res)),
            layers=tuple(_layer_names(lib.mbx_result_layers(res))),
            skipped=tuple(_layer_names(lib.mbx_result_skipped(res))),
        )


@dataclass(frozen=True)
class DirEntry:
    """One entry of a directory listing."""
    name: str
    type: str
    """"file", "dir", "symlink" or "other"."""
    size: int
    mode: Optional[int] = None
    """Permission bits (None from files.list(details=False))."""
    mtime: Optional[float] = None
    """Modification time in seconds since the epoch (None from files.list(details=False))."""

    @property
    def is_dir(self) -> bool:
        return self.type == "dir"

    @property
    def is_file(self) -> bool:
        return self.type == "file"


@dataclass(frozen=True)
class FileStat:
    """Metadata of one path (a final symlink is not followed)."""
    path: str
    name: str
    type: str
    size: int
    mode: int
    mtime: float
    uid: int = 0
    gid: int = 0

    @property
    def is_dir(self) -> bool:
        return self.type == "dir"

    @property
    def is_file(self) -> bool:
        return self.type == "file"


@dataclass(frozen=True)
class HttpResponse:
    """A response of :meth:`Sandbox.http_request`."""
    status: int
    headers: Dict[str, str]
    """Header fields by name as sent (a repeated field keeps its last value; see header_list)."""
    body: bytes
    url: str
    header_list: Tuple[Tuple[str, str], ...] = ()

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def header(self, name: str) -> Optional[str]:
        """The first field called `name`, in any case, or None."""
        low = name.lower()
        for k, v in self.header_list:
            if k.lower() == low:
                return v
        return None

    def json(self) -> Any:
        import json
        return json.loads(self.body)


@dataclass(frozen=True)
class StreamEvent:
    """One event of a running process: output, or its end (always last)."""
    kind: str
    """"stdout", "stderr", "exit" or "timed_out"."""
    data: bytes = b""
    exit_code: Optional[int] = None
    signal: Optional[int] = None
    elapsed_ms: float = 0.0

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")

    @property
    def is_end(self) -> bool:
        return self.kind in ("exit", "timed_out")


@dataclass(frozen=True)
class ProcessInfo:
    """A running background process of a sandbox (:meth:`Sandbox.processes`)."""
    id: int
    program: str
    age_ms: int


@dataclass(frozen=True)
class Mount:
    """A host path shown inside the sandbox (read-only unless rw)."""
    host: str
    sandbox: str
    rw: bool = False


_KIND = {1: "stdout", 2: "stderr", 3: "exit", 4: "timed_out"}


# ---------------------------------------------------------------------------
# configuration


def _mounts(mounts: Optional[Sequence[Any]]) -> List[Mount]:
    out = []
    for m in mounts or ():
        if isinstance(m, Mount):
            out.append(m)
        elif isinstance(m, str):
            parts = m.split(":")
            if len(parts) == 2:
                out.append(Mount(parts[0], parts[1]))
            elif len(parts) == 3 and parts[2] in ("ro", "rw"):
                out.append(Mount(parts[0], parts[1], parts[2] == "rw"))
            else:
                raise InvalidArgumentError("mount %r is not HOST:SANDBOX[:ro|rw]" % m)
        elif isinstance(m, Mapping):
            out.append(Mount(m["host"], m["sandbox"], bool(m.get("rw", False))))
        elif isinstance(m, (tuple, list)) and len(m) in (2, 3):
            out.append(Mount(m[0], m[1], bool(m[2]) if len(m) == 3 else False))
        else:
            raise InvalidArgumentError("mount %r is not a Mount, a (host, sandbox[, rw]) tuple, a dict or "
                                       "a HOST:SANDBOX[:rw] string" % (m,))
    return out


class _Config:
    """An mbx_config built from keyword arguments; freed with close()."""

    def __init__(self, isolation: str = "auto", trust: str = "semi", network: Any = "deny",
                 timeout: Optional[float] = None, memory_mb: Optional[int] = None, disk_mb: Optional[int] = None,
                 cpus: Optional[float] = None, max_processes: Optional[int] = None,
                 env: Optional[Mapping[str, str]] = None, workdir: Optional[str] = None,
                 mounts: Optional[Sequence[Any]] = None, *, hostname: Optional[str] = None,
                 output_limit: Optional[int] = None, file_limit: Optional[int] = None,
                 allow_degraded: bool = False, host_overrides: Optional[Mapping[str, str]] = None,
                 allow_private_network: bool = False, ca_file: Optional[str] = None,
                 http_timeout: Optional[float] = None, max_redirects: Optional[int] = None) -> None:
        lib = N.native()
        self._lib = lib
        self.ptr = ctypes.c_void_p()
        err = ctypes.c_void_p()
        _check(lib.mbx_config_new(ctypes.byref(self.ptr), ctypes.byref(err)), err)
        try:
            self._fill(lib, err, isolation, trust, network, timeout, memory_mb, disk_mb, cpus, max_processes, env,
                       workdir, mounts, hostname, output_limit, file_limit, allow_degraded, host_overrides,
                       allow_private_network, ca_file)
            err = ctypes.c_void_p()
            ms = _ms(http_timeout, "http_timeout")
            if ms is not None:
                _check(lib.mbx_config_set_network_limit(self.ptr, 3, ms, ctypes.byref(err)), err)
            if max_redirects is not None:
                _check(lib.mbx_config_set_network_limit(self.ptr, 6, _int(max_redirects, "max_redirects"),
                                                        ctypes.byref(err)), err)
        except BaseException:
            self.close()
            raise

    def _fill(self, lib: Any, err: ctypes.c_void_p, isolation: str, trust: str, network: Any,
              timeout: Optional[float], memory_mb: Optional[int], disk_mb: Optional[int], cpus: Optional[float],
              max_processes: Optional[int], env: Optional[Mapping[str, str]], workdir: Optional[str],
              mounts: Optional[Sequence[Any]], hostname: Optional[str], output_limit: Optional[int],
              file_limit: Optional[int], allow_degraded: bool, host_overrides: Optional[Mapping[str, str]],
              allow_private_network: bool, ca_file: Optional[str]) -> None:
        p = self.ptr
        e = ctypes.byref(err)
        if isolation not in _ISOLATION:
            raise InvalidArgumentError("isolation must be one of %s, not %r" % (", ".join(_ISOLATION), isolation))
        _check(lib.mbx_config_set_isolation(p, _ISOLATION[isolation], e), err)
        if trust not in _TRUST:
            raise InvalidArgumentError("trust must be \"trusted\", \"semi\" or \"untrusted\", not %r" % (trust,))
        _check(lib.mbx_config_set_trust(p, _TRUST[trust], e), err)
        if network is None or network == "deny":
            _check(lib.mbx_config_set_network(p, 0, e), err)
        elif network == "all":
            _check(lib.mbx_config_set_network(p, 2, e), err)
        elif isinstance(network, str):
            raise InvalidArgumentError("network must be \"deny\", \"all\" or a list of domains, not %r" % network,
                                       suggestion="for one domain write network=[%r]" % network)
        else:
            _check(lib.mbx_config_set_network(p, 1, e), err)
            for d in network:
                _check(lib.mbx_config_add_allowed_domain(p, _enc(d, "domain"), e), err)
        ms = _ms(timeout, "timeout")
        if ms is not None:
            _check(lib.mbx_config_set_timeout_ms(p, ms, e), err)
        if memory_mb is not None:
            _check(lib.mbx_config_set_memory_limit(p, _int(memory_mb, "memory_mb") << 20, e), err)
        if disk_mb is not None:
            _check(lib.mbx_config_set_disk_limit(p, _int(disk_mb, "disk_mb") << 20, e), err)
        if cpus is not None:
            try:
                milli = int(round(float(cpus) * 1000))
            except (TypeError, ValueError):
                raise InvalidArgumentError("cpus must be a number of CPUs, not %r" % (cpus,)) from None
            if milli < 0 or milli > 0xFFFFFFFF:
                raise InvalidArgumentError("cpus out of range: %r" % (cpus,))
            _check(lib.mbx_config_set_cpu_limit(p, milli, e), err)
        if max_processes is not None:
            _check(lib.mbx_config_set_max_processes(p, _int(max_processes, "max_processes", 0xFFFFFFFF), e), err)
        if output_limit is not None:
            _check(lib.mbx_config_set_output_limit(p, _int(output_limit, "output_limit"), e), err)
        if file_limit is not None:
            _check(lib.mbx_config_set_file_limit(p, _int(file_limit, "file_limit"), e), err)
        for k, v in (env or {}).items():
            _check(lib.mbx_config_set_env(p, _enc(k, "env name"), _enc(v, "env value"), e), err)
        if workdir is not None:
            _check(lib.mbx_config_set_workdir(p, _enc(workdir, "workdir"), e), err)
        if hostname is not None:
            _check(lib.mbx_config_set_hostname(p, _enc(hostname, "hostname"), e), err)
        for m in _mounts(mounts):
            _check(lib.mbx_config_add_mount(p, _enc(m.host, "mount host path"), _enc(m.sandbox, "mount path"),
                                            1 if m.rw else 0, e), err)
        lib.mbx_config_set_allow_degraded(p, 1 if allow_degraded else 0)
        for name, addr in (host_overrides or {}).items():
            _check(lib.mbx_config_add_host_override(p, _enc(name, "host name"), _enc(addr, "address"), e), err)
        if allow_private_network:
            lib.mbx_config_set_network_allow_private(p, 1)
        if ca_file is not None:
            _check(lib.mbx_config_add_ca_file(p, _enc(ca_file, "ca_file"), e), err)

    def close(self) -> None:
        if self.ptr:
            self._lib.mbx_config_free(self.ptr)
            self.ptr = ctypes.c_void_p()


def _int(v: Any, what: str, limit: int = (1 << 44)) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise InvalidArgumentError("%s must be an integer, not %r" % (what, v))
    if v < 0 or v > limit:
        raise InvalidArgumentError("%s out of range: %r" % (what, v))
    return v


class _ExecOptions:
    """mbx_exec_options for one call (None when nothing is set)."""

    def __init__(self, timeout: Optional[float], env: Optional[Mapping[str, str]], cwd: Optional[str],
                 stdin: Optional[Union[bytes, str]], output_cb: Any = None) -> None:
        lib = N.native()
        self._lib = lib
        self.ptr = ctypes.c_void_p()
        ms = _ms(timeout, "timeout")
        if ms is None and not env and cwd is None and stdin is None and output_cb is None:
            return
        err = ctypes.c_void_p()
        e = ctypes.byref(err)
        _check(lib.mbx_exec_options_new(ctypes.byref(self.ptr), e), err)
        try:
            if ms is not None:
                _check(lib.mbx_exec_options_set_timeout_ms(self.ptr, ms, e), err)
            for k, v in (env or {}).items():
                _check(lib.mbx_exec_options_set_env(self.ptr, _enc(k, "env name"), _enc(v, "env value"), e), err)
            if cwd is not None:
                _check(lib.mbx_exec_options_set_workdir(self.ptr, _enc(cwd, "cwd"), e), err)
            if stdin is not None:
                data = stdin.encode() if isinstance(stdin, str) else bytes(stdin)
                _check(lib.mbx_exec_options_set_stdin(self.ptr, data, len(data), e), err)
            if output_cb is not None:
                lib.mbx_exec_options_set_output_cb(self.ptr, output_cb, None)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.ptr:
            self._lib.mbx_exec_options_free(self.ptr)
            self.ptr = ctypes.c_void_p()


# ---------------------------------------------------------------------------
# the sandbox


class Sandbox:
    """A live sandbox: files written by one execute are there for the next.

    Keyword arguments mirror the configuration (defaults in brackets):

    - isolation: "auto" | "os" | "wasm" | "microvm" ["auto": os, or the
      microVM for untrusted]
    - trust: "trusted" | "semi" | "untrusted" ["semi"]
    - network: "deny" | "all" | a list of domains ("example.com",
      "*.example.com") reached through the host-side proxy ["deny"]
    - timeout: seconds per execute [30]
    - memory_mb [512], disk_mb [2048], cpus (e.g. 0.5) [no quota],
      max_processes [64]
    - env: variables for every execute; workdir ["/workspace"]
    - mounts: host paths shown inside: Mount(host, sandbox, rw), (host,
      sandbox[, rw]) tuples, {"host":, "sandbox":, "rw":} dicts or
      "HOST:SANDBOX[:rw]" strings
    - hostname, output_limit (bytes kept per stream), file_limit (bytes per
      transfer), allow_degraded (start even when a layer cannot be applied;
      see ``skipped``), host_overrides ({name: address}),
      allow_private_network, ca_file (extra PEM certificate authorities),
      http_timeout (seconds per HTTP request or proxied connection, default
      300), max_redirects (followed by http_request, default 5)

    Creating the sandbox waits until it is ready. A layer that cannot be
    applied is an error naming it (BackendUnavailableError), never a silent
    downgrade.

    Thread safety: every method may be called from any thread, and calls
    on one sandbox and on its processes run at the same time (the C library
    is thread-safe per sandbox; docs/api.md, "Threads"): a thread waiting
    for a process's events or its end does not hold up executes, file
    operations or other processes in other threads. The package itself
    only counts the calls in flight, so that :meth:`close` frees the
    handle once none uses it: close() refuses new calls at once, kills the
    spawned processes when threads are waiting for them (they get the end
    event), then waits for the calls still running (an execute runs to its
    end) and destroys the sandbox. :meth:`reset` needs the sandbox to
    itself. :class:`AsyncSandbox` runs the calls on a thread executor.
    """

    def __init__(self, isolation: str = "auto", trust: str = "semi", network: Any = "deny",
                 timeout: Optional[float] = None, memory_mb: Optional[int] = None, disk_mb: Optional[int] = None,
                 cpus: Optional[float] = None, max_processes: Optional[int] = None,
                 env: Optional[Mapping[str, str]] = None, workdir: Optional[str] = None,
                 mounts: Optional[Sequence[Any]] = None, **options: Any) -> None:
        self._ptr = ctypes.c_void_p()
        self._lib = N.native()
        cfg = _Config(isolation, trust, network, timeout, memory_mb, disk_mb, cpus, max_processes, env, workdir,
                      mounts, **options)
        try:
            err = ctypes.c_void_p()
            _check(self._lib.mbx_sandbox_new(ctypes.byref(self._ptr), cfg.ptr, ctypes.byref(err)), err,
                   "create sandbox")
        finally:
            cfg.close()
        self._init_from_handle()

    @classmethod
    def _adopt(cls, ptr: ctypes.c_void_p) -> "Sandbox":
        sb = cls.__new__(cls)
        sb._ptr = ptr
        sb._lib = N.native()
        sb._init_from_handle()
        return sb

    def _init_from_handle(self) -> None:
        lib = self._lib
        # The package's own state, guarded by _mu (never held during a C
        # call that waits): the C library is thread-safe per sandbox, but
        # it must not free the sandbox, or a process handle, while another
        # thread's call uses it. So every call counts itself in _users
        # (process calls also in their Process's _calls) and close() frees
        # only once the count is 0. Reentrant: a process handle dropped by
        # the garbage collector in the middle of a section frees itself.
        self._mu = threading.RLock()
        self._idle = threading.Condition(self._mu)
        self._users = 0
        self._closed = False    # no new calls (close() or give_back() began)
        self._freed = False     # the C sandbox is gone
        self._orphans: List[ctypes.c_void_p] = []  # process handles dropped while it was being freed
        # Handles of live Process objects: freed with the sandbox.
        self._procs: "weakref.WeakSet[Process]" = weakref.WeakSet()
        # Threads inside a stream callback, which must not call back into
        # this sandbox (the C call they are inside of is not finished).
        self._cb_threads: set = set()
        self._origin: Optional["weakref.ref[Pool]"] = None  # the pool it was taken from
        self._id = N.text(lib.mbx_sandbox_id(self._ptr)) or ""
        self._isolation = _ISOLATION_NAME.get(lib.mbx_sandbox_isolation(self._ptr), "unknown")
        self.files = Files(self)
        """File operations: read, write, list, stat, mkdir, remove, rename, upload, download."""

    # ---- identity and state

    @property
    def id(self) -> str:
        """Unique id of the sandbox (16 hex digits)."""
        return self._id

    @property
    def isolation(self) -> str:
        """The backend running the sandbox: "os", "wasm" or "microvm"."""
        return self._isolation

    @property
    def layers(self) -> List[str]:
        """Isolation layers in force ("user-namespace", "seccomp", ...)."""
        with self._use() as p:
            return _layer_names(self._lib.mbx_sandbox_layers(p))

    @property
    def skipped(self) -> Dict[str, str]:
        """Layers skipped because allow_degraded was set, with the reason."""
        with self._use() as p:
            bits = self._lib.mbx_sandbox_skipped(p)
            return {_layer_name(1 << i): N.text(self._lib.mbx_sandbox_skip_reason(p, 1 << i)) or ""
                    for i in range(_LAYERS) if bits & (1 << i)}

    @property
    def limits_mechanism(self) -> str:
        """How the limits are enforced: "cgroup-v2", "cgroup-v1" or "rlimit"."""
        with self._use() as p:
            return N.text(self._lib.mbx_sandbox_limits_mechanism(p)) or ""

    @property
    def limits_partial(self) -> Optional[str]:
        """What the memory and disk limits do not bound, or None when enforced in full."""
        with self._use() as p:
            return N.text(self._lib.mbx_sandbox_limits_partial(p))

    @property
    def oom_kills(self) -> int:
        """How many processes of the sandbox were killed for exceeding the memory limit so far."""
        with self._use() as p:
            return int(self._lib.mbx_sandbox_oom_kills(p))

    def is_ready(self) -> bool:
        """True while the sandbox can execute (it is ready once created)."""
        return not self._closed

    def wait_ready(self, timeout: Optional[float] = None) -> None:
        """Returns once the sandbox is ready. A sandbox is ready when its
        constructor returns, so this only checks that it was not closed
        (SandboxStateError)."""
        if self._closed:
            raise SandboxStateError("sandbox %s is closed" % self._id, code="bad_state", status=-8)

    def _refuse_in_callback(self) -> None:
        if threading.get_ident() in self._cb_threads:
            raise SandboxStateError("a stream_execute callback cannot call its own sandbox", status=-8,
                                    suggestion="collect the output in the callback and act after the call")

    def _closed_error(self) -> SandboxStateError:
        return SandboxStateError("sandbox %s is closed" % self._id, code="bad_state", status=-8,
                                 suggestion="create a new Sandbox")

    def _enter(self) -> ctypes.c_void_p:
        """Counts a call in; SandboxStateError once closed."""
        self._refuse_in_callback()
        with self._mu:
            if self._closed:
                raise self._closed_error()
            self._users += 1
            return self._ptr

    def _leave(self) -> None:
        with self._mu:
            self._users -= 1
            if self._users == 0:
                self._idle.notify_all()

    class _Use:
        def __init__(self, sb: "Sandbox") -> None:
            self.sb = sb

        def __enter__(self) -> ctypes.c_void_p:
            return self.sb._enter()

        def __exit__(self, *exc: Any) -> None:
            self.sb._leave()

    def _use(self) -> "Sandbox._Use":
        """`with sb._use() as ptr:` around every C call on the sandbox."""
        return Sandbox._Use(self)

    def _detach(self) -> Optional[ctypes.c_void_p]:
        """Refuses new calls, ends the waits of threads blocked on its
        processes (by killing those), waits for the calls in flight and
        frees the process handles. Returns the C handle, now the caller's
        alone, or None when another close() had it."""
        self._refuse_in_callback()
        with self._mu:
            if self._closed:
                # Another thread is closing it: return once it is done.
                while not self._freed:
                    self._idle.wait()
                return None
            self._closed = True
            busy = self._users > 0
        if busy:
            # Threads blocked in next_event() or wait() return when their
            # process ends; close kills every process anyway.
            for proc in list(self._procs):
                proc._kill_for_close()
        with self._mu:
            while self._users > 0:
                self._idle.wait()
            procs = list(self._procs)
        for proc in procs:
            with self._mu:
                ptr, proc._ptr = proc._ptr, ctypes.c_void_p()
            if ptr:
                self._lib.mbx_process_free(ptr)
            self._procs.discard(proc)
        ptr, self._ptr = self._ptr, ctypes.c_void_p()
        return ptr

    def _mark_freed(self) -> None:
        with self._mu:
            self._freed = True
            orphans, self._orphans = self._orphans, []
            self._idle.notify_all()
        for ptr in orphans:
            self._lib.mbx_process_free(ptr)

    def close(self) -> None:
        """Destroys the sandbox: kills every process, removes its mounts,
        cgroups and directories. Idempotent.

        From any thread: new calls on the sandbox and its processes fail at
        once with SandboxStateError; threads waiting for a process's events
        get its end (the process is killed); calls still running (an
        execute) are waited for, then the sandbox is destroyed. A sandbox
        taken from a :class:`Pool` goes back to it to be discarded."""
        ptr = self._detach()
        if ptr is None:
            return
        try:
            err = ctypes.c_void_p()
            rc = self._lib.mbx_sandbox_destroy(ptr, ctypes.byref(err))
            self._free_handle(ptr)
        finally:
            self._mark_freed()
        _check(rc, err, "destroy sandbox")

    def _free_handle(self, ptr: ctypes.c_void_p) -> None:
        pool = self._origin() if self._origin is not None else None
        if pool is not None and pool._give_back_handle(ptr, 1):  # MBX_POOL_DISCARD
            return
        self._lib.mbx_sandbox_free(ptr)

    def reset(self) -> None:
        """Makes the sandbox as good as new for another user (os backend):
        every process in it is killed and reaped, /workspace, /tmp and
        /dev/shm are emptied, later processes get a fresh IPC namespace,
        the host name is set again and :attr:`oom_kills` counts from 0. The
        configuration (limits, environment, network policy) stays, and so
        does the id. Handles of its processes answer SandboxStateError
        afterwards (close them as usual).

        It needs the sandbox to itself: while another thread's call on it
        or its processes runs (a thread waiting in next_event() counts), it
        raises SandboxStateError at once and changes nothing.

        Raises:
            BackendUnavailableError: a backend other than os, or a sandbox
                with mounts of host paths, with network, without its seccomp
                program (allow_degraded) or forked.
            SandboxStateError: other calls run, or the sandbox is closed.
            SandboxError: anything else; the reset failed closed, the
                sandbox is destroyed (later calls raise SandboxStateError).

        Like every failure but the one above, asking a wasm or microvm
        sandbox for a reset destroys it: it is closed (after the calls of
        other threads ended) before BackendUnavailableError is raised.
        """
        if self._isolation != "os":
            # The library would destroy it there and then, under the feet
            # of other threads' calls; close() waits for them.
            self.close()
            raise BackendUnavailableError("the %s backend does not reset sandboxes: make a new one "
                                          "(this one is closed)" % self._isolation, layer="reset",
                                          suggestion="reset needs an os sandbox; create a new Sandbox")
        err = ctypes.c_void_p()
        with self._use() as p:
            rc = self._lib.mbx_sandbox_reset(p, ctypes.byref(err))
        _check(rc, err, "reset sandbox")

    def event_fd(self) -> int:
        """A descriptor that is readable while any spawned process of the
        sandbox may have an event (output, its end, stdin credit) to take:
        wait on it with select/poll/selectors, or asyncio's
        ``loop.add_reader``, then call ``proc.next_event(0)`` on each
        process of interest until it returns None. Level-triggered; a
        wakeup may find nothing (wait again). The descriptor belongs to the
        sandbox and stays the same until close(): never read, write or
        close it, and stop waiting on it before closing the sandbox.

        Raises:
            BackendUnavailableError: the wasm backend (it has no spawned processes).
        """
        err = ctypes.c_void_p()
        with self._use() as p:
            fd = self._lib.mbx_sandbox_event_fd(p, ctypes.byref(err))
        if fd < 0:
            _raise(fd, err, "event descriptor")
        return int(fd)

    destroy = close

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        # Unreachable, so no call is in flight (a call holds a reference).
        try:
            if not getattr(self, "_closed", True) and self._ptr:
                self._closed = True
                for proc in list(self._procs):
                    ptr, proc._ptr = proc._ptr, ctypes.c_void_p()
                    if ptr:
                        self._lib.mbx_process_free(ptr)
                ptr, self._ptr = self._ptr, ctypes.c_void_p()
                self._free_handle(ptr)
                self._mark_freed()
        except Exception:
            pass

    def __repr__(self) -> str:
        return "Sandbox(id=%r, isolation=%r%s)" % (self._id, self._isolation, ", closed" if self._closed else "")

    # ---- executes

    def execute(self, command: Command, timeout: Optional[float] = None, env: Optional[Mapping[str, str]] = None,
                cwd: Optional[str] = None, stdin: Optional[Union[bytes, str]] = None) -> ExecuteResult:
        """Runs a program and waits for it.

        Args:
            command: a list is the argument vector; a string is split with
                shell-like quoting (quotes and backslashes) but run without a
                shell, so ``|`` and ``>`` are plain words (for a shell write
                ``["sh", "-c", "..."]``). The program is looked up in PATH.
            timeout: seconds for this execute (default: the sandbox's).
            env: extra variables for this execute.
            cwd: working directory (absolute, or relative to /workspace).
            stdin: bytes given as standard input, then end of file.

        Raises:
            SandboxNotFoundError: the program does not exist.
            NotExecutableError: it cannot be executed.
        """
        return self._exec(command, None, timeout, env, cwd, stdin, None)

    def execute_code(self, code: str, language: str = "python3", timeout: Optional[float] = None,
                     env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None,
                     stdin: Optional[Union[bytes, str]] = None) -> ExecuteResult:
        """Runs source code with an interpreter inside the sandbox.

        Args:
            language: "python3" (or "python"), "sh", "bash", "node" (or "javascript").

        Raises:
            InvalidArgumentError: unknown language.
            SandboxNotFoundError: the interpreter is not installed.
        """
        return self._exec(None, (language, code), timeout, env, cwd, stdin, None)

    def _exec(self, command: Optional[Command], code: Optional[Tuple[str, str]], timeout: Optional[float],
              env: Optional[Mapping[str, str]], cwd: Optional[str], stdin: Optional[Union[bytes, str]],
              output_cb: Any) -> ExecuteResult:
        opts = _ExecOptions(timeout, env, cwd, stdin, output_cb)
        try:
            res = ctypes.c_void_p()
            err = ctypes.c_void_p()
            with self._use() as p:
                if code is not None:
                    rc = self._lib.mbx_sandbox_exec_code(p, _enc(code[0], "language"), _enc(code[1], "code"),
                                                         opts.ptr, ctypes.byref(res), ctypes.byref(err))
                elif isinstance(command, (str, bytes)):
                    rc = self._lib.mbx_sandbox_exec_command(p, _enc(command, "command"), opts.ptr,
                                                            ctypes.byref(res), ctypes.byref(err))
                elif command is not None:
                    rc = self._lib.mbx_sandbox_exec(p, _argv(list(command)), opts.ptr, ctypes.byref(res),
                                                    ctypes.byref(err))
                else:
                    raise InvalidArgumentError("no command given")
            _check(rc, err, "execute")
            try:
                return ExecuteResult._from(res)
            finally:
                self._lib.mbx_result_free(res)
        finally:
            opts.close()

    def stream_execute(self, command: Command, timeout: Optional[float] = None,
                       env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None,
                       stdin: Optional[Union[bytes, str]] = None, *,
                       on_stdout: Optional[Callable[[bytes], None]] = None,
                       on_stderr: Optional[Callable[[bytes], None]] = None,
                       on_exit: Optional[Callable[[ExecuteResult], None]] = None) -> Any:
        """Runs a program and delivers its output as it is produced.

        Without callbacks it returns an iterator of :class:`StreamEvent`
        (``"stdout"``/``"stderr"`` events with bytes, then one ``"exit"`` or
        ``"timed_out"`` event)::

            for ev in sb.stream_execute("python3 -u job.py"):
                if ev.kind == "stdout":
                    print(ev.text, end="")

        Leaving the loop early (or closing the iterator) kills the program.

        With ``on_stdout``/``on_stderr`` (called with bytes, on the calling
        thread, in order per stream) it runs to the end and returns the
        :class:`ExecuteResult`, which still holds the output; ``on_exit``
        receives that result too. An exception raised by a callback is raised
        again once the execute ended.
        """
        if on_stdout is None and on_stderr is None and on_exit is None:
            return self._stream_iter(command, timeout, env, cwd, stdin)
        failure: List[BaseException] = []

        def deliver(stream: int, data: Any, n: int, _ud: Any) -> None:
            if failure:
                return
            me = threading.get_ident()
            self._cb_threads.add(me)
            try:
                chunk = ctypes.string_at(data, n)
                fn = on_stdout if stream == 1 else on_stderr
                if fn is not None:
                    fn(chunk)
            except BaseException as e:  # raised again below
                failure.append(e)
            finally:
                self._cb_threads.discard(me)

        cb = N.OUTPUT_FN(deliver)
        result = self._exec(command, None, timeout, env, cwd, stdin, cb)
        if failure:
            raise failure[0]
        if on_exit is not None:
            on_exit(result)
        return result

    def _stream_iter(self, command: Command, timeout: Optional[float], env: Optional[Mapping[str, str]],
                     cwd: Optional[str], stdin: Optional[Union[bytes, str]]) -> Iterator[StreamEvent]:
        if self._isolation != "os":
            return self._stream_thread(command, timeout, env, cwd, stdin)
        proc = self.spawn(command, timeout=timeout, env=env, cwd=cwd, stdin=stdin is not None)
        if stdin is not None:
            try:
                proc.write(stdin)
                proc.close_stdin()
            except BaseException:
                proc.kill()
                proc.close()
                raise
        return proc._stream(kill_on_close=True)

    def _stream_thread(self, command: Command, timeout: Optional[float], env: Optional[Mapping[str, str]],
                       cwd: Optional[str], stdin: Optional[Union[bytes, str]]) -> Iterator[StreamEvent]:
        """Backends without spawn (wasm): an execute on a worker thread feeds
        the events through a queue."""
        q: "queue.Queue[Any]" = queue.Queue()

        def work() -> None:
            try:
                res = self.stream_execute(command, timeout, env, cwd, stdin,
                                          on_stdout=lambda b: q.put(StreamEvent("stdout", b)),
                                          on_stderr=lambda b: q.put(StreamEvent("stderr", b)))
                q.put(StreamEvent("timed_out" if res.timed_out else "exit", exit_code=res.exit_code,
                                  signal=res.signal, elapsed_ms=res.elapsed_ms))
            except BaseException as e:
                q.put(e)

        t = threading.Thread(target=work, name="mimobox-stream-%s" % self._id, daemon=True)
        t.start()

        def events() -> Iterator[StreamEvent]:
            try:
                while True:
                    item = q.get()
                    if isinstance(item, BaseException):
                        raise item
                    yield item
                    if item.is_end:
                        return
            finally:
                t.join()

        return events()

    # ---- files

    def read_file(self, path: str) -> bytes:
        """Reads a whole file of the sandbox (paths are absolute or relative to /workspace)."""
        return self.files.read(path)

    def write_file(self, path: str, data: Union[bytes, str], mode: int = 0o644, parents: bool = False) -> None:
        """Creates or replaces a file atomically; str data is written as UTF-8.
        With parents, missing parent directories are created first."""
        self.files.write(path, data, mode=mode, parents=parents)

    # ---- processes

    def spawn(self, command: Command, *, timeout: Optional[float] = None, env: Optional[Mapping[str, str]] = None,
              cwd: Optional[str] = None, stdin: bool = False, pty: Optional[Tuple[int, int]] = None,
              buffer: Optional[int] = None) -> "Process":
        """Starts a program and returns at once (a background process).

        Args:
            timeout: seconds; ``0`` for none (a server that runs until killed
                or until the sandbox closes); None for the sandbox's timeout.
            stdin: give it a stdin pipe (:meth:`Process.write`).
            pty: (rows, cols) to run it on a terminal (see :meth:`create_pty`).
            buffer: bytes of unread output kept before its output is paused.
        """
        lib = self._lib
        if isinstance(command, (str, bytes)):
            words = shlex.split(command.decode() if isinstance(command, bytes) else command)
        else:
            words = list(command)
        argv = _argv(words)
        opts = ctypes.c_void_p()
        err = ctypes.c_void_p()
        e = ctypes.byref(err)
        _check(lib.mbx_spawn_options_new(ctypes.byref(opts), e), err)
        try:
            ms = _ms(timeout, "timeout", allow_zero=True)
            if ms is not None:
                lib.mbx_spawn_options_set_timeout_ms(opts, ms)
            for k, v in (env or {}).items():
                _check(lib.mbx_spawn_options_set_env(opts, _enc(k, "env name"), _enc(v, "env value"), e), err)
            if cwd is not None:
                _check(lib.mbx_spawn_options_set_workdir(opts, _enc(cwd, "cwd"), e), err)
            if stdin:
                lib.mbx_spawn_options_set_stdin(opts, 1)
            if pty is not None:
                rows, cols = pty
                _check(lib.mbx_spawn_options_set_pty(opts, _int(rows, "rows", 0xFFFF), _int(cols, "cols", 0xFFFF),
                                                     e), err)
            if buffer is not None:
                _check(lib.mbx_spawn_options_set_buffer(opts, _int(buffer, "buffer"), e), err)
            proc = ctypes.c_void_p()
            with self._use() as p:
                rc = lib.mbx_sandbox_spawn(p, argv, opts, ctypes.byref(proc), e)
                _check(rc, err, "spawn")
                # Registered before the call is counted out, so a close()
                # meanwhile frees its handle.
                return Process(self, proc, words, pty is not None)
        finally:
            lib.mbx_spawn_options_free(opts)

    def create_pty(self, command: Command = ("/bin/sh",), rows: int = 24, cols: int = 80, *,
                   timeout: Optional[float] = 0, env: Optional[Mapping[str, str]] = None,
                   cwd: Optional[str] = None) -> "Process":
        """Starts a program on a pseudo-terminal of rows x cols (no timeout
        by default). Its output (stdout and stderr together) arrives as
        "stdout" events; :meth:`Process.write` types into it (Ctrl-C is
        ``b"\\x03"``); :meth:`Process.resize` changes the size."""
        return self.spawn(command, timeout=timeout, env=env, cwd=cwd, pty=(rows, cols))

    def processes(self) -> List[ProcessInfo]:
        """The spawned processes of the sandbox that still run."""
        lib = self._lib
        lst = ctypes.c_void_p()
        err = ctypes.c_void_p()
        with self._use() as p:
            rc = lib.mbx_sandbox_list_processes(p, ctypes.byref(lst), ctypes.byref(err))
        _check(rc, err, "list processes")
        try:
            return [ProcessInfo(lib.mbx_proc_list_id(lst, i), N.text(lib.mbx_proc_list_program(lst, i)) or "",
                                lib.mbx_proc_list_age_ms(lst, i)) for i in range(lib.mbx_proc_list_count(lst))]
        finally:
            lib.mbx_proc_list_free(lst)

    def process(self, pid: int) -> "Process":
        """A new handle to a running spawned process, by its id (only one
        handle receives a process's events: a second is SandboxFileExistsError)."""
        proc = ctypes.c_void_p()
        err = ctypes.c_void_p()
        with self._use() as p:
            rc = self._lib.mbx_sandbox_process(p, _int(pid, "process id", 0xFFFFFFFF), ctypes.byref(proc),
                                               ctypes.byref(err))
            _check(rc, err, "attach to process")
            return Process(self, proc, [], False)

    # ---- network

    def http_request(self, method: str, url: str, headers: Optional[Mapping[str, str]] = None,
                     body: Optional[Union[bytes, str]] = None, timeout: Optional[float] = None) -> HttpResponse:
        """Performs an HTTP(S) request on the host under the sandbox's network
        policy (the URL's host must be allowed; redirects are followed and
        checked again).

        Args:
            headers: request header fields.
            body: request body (str as UTF-8).
            timeout: must be positive when given. The C API has no
                per-request time limit: every request of the sandbox is
                bounded by its ``http_timeout`` (set at creation, default
                300 s), and running past it raises SandboxTimeoutError.

        Raises:
            NetworkDeniedError: the policy refused the host or its address.
            SandboxNetworkError / TlsError: resolution, connection or TLS failed.
        """
        lib = self._lib
        hdrs = None
        if headers:
            lines = [_enc("%s: %s" % (k, v), "header") for k, v in headers.items()]
            hdrs = (ctypes.c_char_p * (len(lines) + 1))(*lines, None)
        data = body.encode() if isinstance(body, str) else (bytes(body) if body is not None else None)
        resp = ctypes.c_void_p()
        err = ctypes.c_void_p()
        if timeout is not None:
            _ms(timeout, "timeout")
        with self._use() as p:
            rc = lib.mbx_sandbox_http_request(p, _enc(method, "method"), _enc(url, "url"), hdrs, data,
                                              len(data) if data else 0, ctypes.byref(resp), ctypes.byref(err))
        _check(rc, err, "http request")
        try:
            n = ctypes.c_size_t(0)
            raw = N.take_bytes(lib.mbx_http_response_body(resp, ctypes.byref(n)), n.value)
            pairs = tuple((N.text(lib.mbx_http_response_header_name(resp, i)) or "",
                           N.text(lib.mbx_http_response_header_value(resp, i)) or "")
                          for i in range(lib.mbx_http_response_header_count(resp)))
            return HttpResponse(status=lib.mbx_http_response_status(resp), headers=dict(pairs), body=raw,
                                url=N.text(lib.mbx_http_response_url(resp)) or url, header_list=pairs)
        finally:
            lib.mbx_http_response_free(resp)


# ---------------------------------------------------------------------------
# files


class Files:
    """The files of a sandbox (``sb.files``). Paths are sandbox paths,
    absolute or relative to /workspace, resolved inside the sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sb = sandbox

    def _call(self, name: str, *args: Any) -> None:
        err = ctypes.c_void_p()
        with self._sb._use() as p:
            rc = getattr(self._sb._lib, name)(p, *args, ctypes.byref(err))
        _check(rc, err, name)

    def read(self, path: str) -> bytes:
        """The whole content of a file."""
        lib = self._sb._lib
        data = ctypes.c_void_p()
        n = ctypes.c_size_t(0)
        err = ctypes.c_void_p()
        with self._sb._use() as p:
            rc = lib.mbx_sandbox_read_file(p, _enc(path, "path"), ctypes.byref(data), ctypes.byref(n),
                                           ctypes.byref(err))
        _check(rc, err, "read file")
        try:
            return N.take_bytes(data.value, n.value)
        finally:
            lib.mbx_buffer_free(data)

    def read_text(self, path: str, encoding: str = "utf-8", errors: str = "strict") -> str:
        """A file decoded as text."""
        return self.read(path).decode(encoding, errors)

    def write(self, path: str, data: Union[bytes, bytearray, memoryview, str], mode: int = 0o644,
              parents: bool = False, append: bool = False, exclusive: bool = False) -> None:
        """Creates or replaces a file atomically (str as UTF-8).

        Args:
            mode: permission bits of a new file.
            parents: create missing parent directories first.
            append: append instead of replacing.
            exclusive: fail with SandboxFileExistsError if the file exists.
        """
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        if parents:
            parent = os.path.dirname(path.rstrip("/"))
            if parent and parent not in ("/", "."):
                self.mkdir(parent, parents=True)
        flags = (1 if append else 0) | (2 if exclusive else 0)
        self._call("mbx_sandbox_write_file", _enc(path, "path"), raw, len(raw), _int(mode, "mode", 0o7777), flags)

    def list(self, path: str = "/workspace", details: bool = True) -> List[DirEntry]:
        """The entries of a directory (without . and ..), sorted by name.

        With details (the default) each entry's mode and mtime are filled in
        with one stat per entry; details=False lists names, types and sizes
        only (one call, mode and mtime None)."""
        from .errors import SandboxNotFoundError
        lib = self._sb._lib
        d = ctypes.c_void_p()
        err = ctypes.c_void_p()
        with self._sb._use() as p:
            rc = lib.mbx_sandbox_list_dir(p, _enc(path, "path"), ctypes.byref(d), ctypes.byref(err))
            _check(rc, err, "list directory")
            try:
                entries = [DirEntry(name=N.text(lib.mbx_dir_name(d, i)) or "",
                                    type=_FILE_TYPE.get(lib.mbx_dir_type(d, i), "other"),
                                    size=lib.mbx_dir_size(d, i))
                           for i in range(lib.mbx_dir_count(d))]
            finally:
                lib.mbx_dir_free(d)
            if not details:
                return entries
            out = []
            base = path.rstrip("/") or "/"
            for ent in entries:
                try:
                    st = self.stat(base + "/" + ent.name if base != "/" else "/" + ent.name)
                except SandboxNotFoundError:  # removed meanwhile (by a process of the sandbox)
                    out.append(ent)
                    continue
                out.append(DirEntry(ent.name, ent.type, ent.size, st.mode, st.mtime))
            return out

    def stat(self, path: str) -> FileStat:
        """Metadata of a path (a final symlink is not followed)."""
        lib = self._sb._lib
        st = ctypes.c_void_p()
        err = ctypes.c_void_p()
        with self._sb._use() as p:
            rc = lib.mbx_sandbox_stat(p, _enc(path, "path"), ctypes.byref(st), ctypes.byref(err))
        _check(rc, err, "stat")
        try:
            return FileStat(path=path, name=os.path.basename(path.rstrip("/")) or path,
                            type=_FILE_TYPE.get(lib.mbx_stat_type(st), "other"), size=lib.mbx_stat_size(st),
                            mode=lib.mbx_stat_mode(st), mtime=lib.mbx_stat_mtime_ns(st) / 1e9,
                            uid=lib.mbx_stat_uid(st), gid=lib.mbx_stat_gid(st))
        finally:
            lib.mbx_stat_free(st)

    def exists(self, path: str) -> bool:
        """True when the path exists (as a file, directory, link...)."""
        from .errors import SandboxNotFoundError
        try:
            self.stat(path)
            return True
        except SandboxNotFoundError:
            return False

    def mkdir(self, path: str, parents: bool = False, mode: int = 0o755) -> None:
        """Creates a directory (and its missing parents with parents=True;
        then an existing directory is not an error)."""
        self._call("mbx_sandbox_mkdir", _enc(path, "path"), _int(mode, "mode", 0o7777), 1 if parents else 0)

    def remove(self, path: str, recursive: bool = False) -> None:
        """Removes a file or an empty directory, or a whole tree with recursive=True."""
        self._call("mbx_sandbox_remove", _enc(path, "path"), 1 if recursive else 0)

    def rename(self, src: str, dst: str) -> None:
        """Renames within the sandbox, replacing dst like rename(2)."""
        self._call("mbx_sandbox_rename", _enc(src, "source path"), _enc(dst, "destination path"))

    def download(self, path: str, fileobj: Union[IO[bytes], int]) -> None:
        """Streams a sandbox file into a host file object (with a fileno(),
        or any writable binary object) or descriptor, any size up to the
        file limit."""
        fd = _fileno(fileobj)
        if fd is not None:
            if hasattr(fileobj, "flush"):
                fileobj.flush()
            self._call("mbx_sandbox_read_file_to_fd", _enc(path, "path"), fd)
            if not isinstance(fileobj, int):
                # The descriptor moved; keep Python's view of the offset in step.
                try:
                    fileobj.seek(0, os.SEEK_END)
                except (OSError, ValueError, AttributeError):
                    pass
            return
        r, w = os.pipe()
        failure: List[BaseException] = []

        def pump() -> None:
            try:
                with os.fdopen(r, "rb") as f:
                    while True:
                        chunk = f.read(1 << 16)
                        if not chunk:
                            break
                        fileobj.write(chunk)  # type: ignore[union-attr]
            except BaseException as e:
                failure.append(e)

        t = threading.Thread(target=pump, daemon=True)
        t.start()
        try:
            self._call("mbx_sandbox_read_file_to_fd", _enc(path, "path"), w)
        finally:
            os.close(w)
            t.join()
        if failure:
            raise failure[0]

    def upload(self, path: str, fileobj: Union[IO[bytes], int], mode: int = 0o644) -> None:
        """Streams a host file object or descriptor, from its current position
        to its end, into a sandbox file, replaced atomically."""
        fd = _fileno(fileobj)
        if fd is not None:
            self._call("mbx_sandbox_write_file_from_fd", _enc(path, "path"), fd, _int(mode, "mode", 0o7777))
            return
        r, w = os.pipe()
        failure: List[BaseException] = []

        def pump() -> None:
            try:
                with os.fdopen(w, "wb") as f:
                    while True:
                        chunk = fileobj.read(1 << 16)  # type: ignore[union-attr]
                        if not chunk:
                            break
                        f.write(chunk)
            except BrokenPipeError:
                pass
            except BaseException as e:
                failure.append(e)

        t = threading.Thread(target=pump, daemon=True)
        t.start()
        try:
            self._call("mbx_sandbox_write_file_from_fd", _enc(path, "path"), r, _int(mode, "mode", 0o7777))
        finally:
            os.close(r)
            t.join()
        if failure:
            raise failure[0]


def _fileno(fileobj: Any) -> Optional[int]:
    if isinstance(fileobj, int):
        return fileobj
    try:
        fd = fileobj.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return fd if isinstance(fd, int) else None


# ---------------------------------------------------------------------------
# processes


class Process:
    """A program running in a sandbox (:meth:`Sandbox.spawn`,
    :meth:`Sandbox.create_pty`). Iterating over it yields its
    :class:`StreamEvent` s until its end. Closing the handle does not stop
    the program: call kill() first.

    Thread safety: every method may be called from any thread while others
    run, on this process, other processes and the sandbox: a thread blocked
    in next_event() or wait() (one blocking call into the library, which
    releases the GIL) holds up nobody. Two threads taking events of one
    process each get different events. close() while another thread's call
    on the process runs frees the handle when that call returns."""

    def __init__(self, sandbox: Sandbox, ptr: ctypes.c_void_p, argv: List[str], pty: bool) -> None:
        self._sb = sandbox
        self._lib = sandbox._lib
        self._ptr = ptr
        self.argv = argv
        self.pty = pty
        self.id: int = self._lib.mbx_process_id(ptr)
        self._ended: Optional[StreamEvent] = None
        # Calls on the handle in flight, and whether close() was asked
        # for: the last call frees the handle then (guarded by the
        # sandbox's _mu, like the sandbox's own count).
        self._calls = 0
        self._closing = False
        sandbox._procs.add(self)

    def _enter(self) -> ctypes.c_void_p:
        sb = self._sb
        sb._refuse_in_callback()
        with sb._mu:
            if sb._closed:
                raise sb._closed_error()
            if not self._ptr or self._closing:
                raise SandboxStateError("process %d: the handle is closed" % self.id, status=-8)
            sb._users += 1
            self._calls += 1
            return self._ptr

    def _leave(self) -> None:
        sb = self._sb
        with sb._mu:
            self._calls -= 1
            ptr = None
            if self._closing and self._calls == 0 and self._ptr:
                ptr, self._ptr = self._ptr, ctypes.c_void_p()
        try:
            if ptr:  # close() came meanwhile; still counted in the sandbox's users
                self._lib.mbx_process_free(ptr)
                sb._procs.discard(self)
        finally:
            sb._leave()

    class _Use:
        def __init__(self, proc: "Process") -> None:
            self.proc = proc

        def __enter__(self) -> ctypes.c_void_p:
            return self.proc._enter()

        def __exit__(self, *exc: Any) -> None:
            self.proc._leave()

    def _use(self) -> "Process._Use":
        return Process._Use(self)

    def _call(self, name: str, *args: Any) -> None:
        err = ctypes.c_void_p()
        with self._use() as p:
            rc = getattr(self._lib, name)(p, *args, ctypes.byref(err))
        _check(rc, err, name)

    def _kill_for_close(self) -> None:
        """Sandbox.close() with calls in flight: ends this process so that
        threads waiting for it return (no new call gets in any more)."""
        sb = self._sb
        with sb._mu:
            if not self._ptr or self._ended is not None:
                return
            sb._users += 1
            self._calls += 1
            ptr = self._ptr
        try:
            err = ctypes.c_void_p()
            self._lib.mbx_process_kill(ptr, ctypes.byref(err))
            self._lib.mbx_error_free(err)
        finally:
            self._leave()

    @property
    def running(self) -> bool:
        """True while the program runs, as far as the events taken so far tell."""
        with self._use() as p:
            return bool(self._lib.mbx_process_running(p))

    @property
    def exit_event(self) -> Optional[StreamEvent]:
        """The "exit"/"timed_out" event once it was taken, else None."""
        return self._ended

    def next_event(self, timeout: Optional[float] = None) -> Optional[StreamEvent]:
        """The next event; waits up to timeout seconds (None: for ever; 0:
        takes what is there without waiting) and returns None when none
        came. After the last event it returns None. Other calls on the
        sandbox and its processes run while this waits."""
        if self._ended is not None:
            return None
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        lib = self._lib
        while True:
            if deadline is None:
                wait_ms = -1
            else:
                wait_ms = min(_MAX_WAIT_MS, max(0, int(round((deadline - time.monotonic()) * 1000))))
            ev = ctypes.c_void_p()
            err = ctypes.c_void_p()
            with self._use() as p:
                rc = lib.mbx_process_next_event(p, wait_ms, ctypes.byref(ev), ctypes.byref(err))
            _check(rc, err, "process event")
            if ev:
                try:
                    kind = _KIND.get(lib.mbx_event_kind(ev), "other")
                    if kind in ("stdout", "stderr"):
                        n = ctypes.c_size_t(0)
                        return StreamEvent(kind, N.take_bytes(lib.mbx_event_data(ev, ctypes.byref(n)), n.value))
                    code = lib.mbx_event_exit_code(ev)
                    sig = lib.mbx_event_signal(ev)
                    self._ended = StreamEvent(kind, exit_code=None if code < 0 or kind == "timed_out" else code,
                                              signal=sig or None, elapsed_ms=lib.mbx_event_elapsed_us(ev) / 1000.0)
                    return self._ended
                finally:
                    lib.mbx_event_free(ev)
            # No event: the time is up, or (before it) stdin credit came,
            # which this package's blocking write() does not need.
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def events(self) -> Iterator[StreamEvent]:
        """Every remaining event, the end event last."""
        while True:
            ev = self.next_event()
            if ev is None:
                return
            yield ev
            if ev.is_end:
                return

    __iter__ = events

    def _stream(self, kill_on_close: bool) -> Iterator[StreamEvent]:
        try:
            yield from self.events()
        finally:
            if kill_on_close and self._ended is None and self._ptr and not self._sb._closed:
                try:
                    self.kill()
                    self.wait()
                except SandboxError:
                    pass
            self.close()

    def write(self, data: Union[bytes, str]) -> None:
        """Writes to the program's stdin (or its terminal)."""
        raw = data.encode() if isinstance(data, str) else bytes(data)
        self._call("mbx_process_write_stdin", raw, len(raw))

    def close_stdin(self) -> None:
        """Closes stdin: the program reads end of file."""
        self._call("mbx_process_close_stdin")

    def signal(self, sig: int) -> None:
        """Sends a signal to the program."""
        self._call("mbx_process_signal", int(sig))

    def kill(self) -> None:
        """Kills the program and every process it started."""
        self._call("mbx_process_kill")

    def resize(self, rows: int, cols: int) -> None:
        """Changes the terminal size of a PTY process."""
        self._call("mbx_process_resize", _int(rows, "rows", 0xFFFF), _int(cols, "cols", 0xFFFF))

    def wait(self, timeout: Optional[float] = None) -> ExecuteResult:
        """Waits for the end and returns the rest of the output with the exit
        status. Raises SandboxTimeoutError when timeout seconds pass first
        (the program keeps running). Other calls on the sandbox and its
        processes run while this waits."""
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        lib = self._lib
        while True:
            if deadline is None:
                wait_ms = -1
            else:
                wait_ms = min(_MAX_WAIT_MS, max(0, int(round((deadline - time.monotonic()) * 1000))))
            res = ctypes.c_void_p()
            err = ctypes.c_void_p()
            with self._use() as p:
                rc = lib.mbx_process_wait(p, wait_ms, ctypes.byref(res), ctypes.byref(err))
            if rc == -6 and wait_ms == _MAX_WAIT_MS and deadline is not None and time.monotonic() < deadline:
                lib.mbx_error_free(err)  # MBX_ETIMEDOUT of one step of a very long timeout
                continue
            _check(rc, err, "wait")
            try:
                return ExecuteResult._from(res)
            finally:
                lib.mbx_result_free(res)

    def close(self) -> None:
        """Frees the handle (the program goes on unless it was killed).
        Closing the sandbox frees the handles of its processes too. While
        another thread's call on the process runs, the handle is freed when
        that call returns; later calls raise SandboxStateError."""
        sb = self._sb
        with sb._mu:
            self._closing = True
            if self._calls > 0 or not self._ptr or sb._closed:
                # The last call frees it, or Sandbox.close() does (it is
                # under way, or done and has freed it).
                return
            ptr, self._ptr = self._ptr, ctypes.c_void_p()
            sb._users += 1  # the sandbox must not be freed while this frees
        try:
            self._lib.mbx_process_free(ptr)
            sb._procs.discard(self)
        finally:
            sb._leave()

    def __del__(self) -> None:
        # Unreachable, so no call on it is in flight.
        try:
            sb = self._sb
            with sb._mu:
                ptr, self._ptr = self._ptr, ctypes.c_void_p()
                if not ptr:
                    return
                if sb._closed and not sb._freed:
                    # Sandbox.close() is under way: freed after the sandbox.
                    sb._orphans.append(ptr)
                    return
                live = not sb._closed
                if live:
                    sb._users += 1
            try:
                self._lib.mbx_process_free(ptr)  # a handle may outlive its sandbox
            finally:
                if live:
                    sb._leave()
        except Exception:
            pass

    def __enter__(self) -> "Process":
        return self

    def __exit__(self, *exc: Any) -> None:
        """Kills the program if it still runs, then frees the handle."""
        try:
            if self._ptr and self._ended is None and not self._sb._closed:
                try:
                    self.kill()
                    self.wait()
                except SandboxError:
                    pass
        finally:
            self.close()

    def __repr__(self) -> str:
        return "Process(id=%r, argv=%r)" % (self.id, self.argv)


# ---------------------------------------------------------------------------
# pools


class Pool:
    """Ready sandboxes of one configuration, created ahead of time by a
    background thread, so :meth:`take` returns one at once. Takes the same
    keyword arguments as :class:`Sandbox`, plus ``size`` (1 to 64) and
    ``max_uses``.

    By default sandboxes are never reused: a taken sandbox is the caller's
    (close it). With ``max_uses`` > 1 (os backend only; see
    :meth:`set_reuse`) hand each taken sandbox back with :meth:`give_back`:
    the pool resets it in the background (:meth:`Sandbox.reset`) and hands
    it out again, up to ``max_uses`` callers in all. Closing a taken
    sandbox instead discards it (the pool then makes a new one).

    Thread safety: every method may be called from any thread; close()
    waits for takes and give-backs in flight."""

    def __init__(self, size: int = 2, max_uses: Optional[int] = None, **config: Any) -> None:
        self._lib = N.native()
        self._ptr = ctypes.c_void_p()
        self._cv = threading.Condition()
        self._calls = 0
        cfg = _Config(**config)
        try:
            err = ctypes.c_void_p()
            _check(self._lib.mbx_pool_new(ctypes.byref(self._ptr), cfg.ptr, _int(size, "size", 64),
                                          ctypes.byref(err)), err, "create pool")
        finally:
            cfg.close()
        if max_uses is not None:
            try:
                self.set_reuse(max_uses)
            except BaseException:
                self.close()
                raise

    def _enter(self) -> Optional[ctypes.c_void_p]:
        with self._cv:
            if not self._ptr:
                return None
            self._calls += 1
            return self._ptr

    def _leave(self) -> None:
        with self._cv:
            self._calls -= 1
            if self._calls == 0:
                self._cv.notify_all()

    def _closed_error(self) -> SandboxStateError:
        return SandboxStateError("the pool is closed", status=-8)

    def take(self) -> Sandbox:
        """A ready sandbox (created now if none is ready)."""
        p = self._enter()
        if p is None:
            raise self._closed_error()
        try:
            sb = ctypes.c_void_p()
            err = ctypes.c_void_p()
            rc = self._lib.mbx_pool_take(p, ctypes.byref(sb), ctypes.byref(err))
        finally:
            self._leave()
        _check(rc, err, "take from pool")
        out = Sandbox._adopt(sb)
        out._origin = weakref.ref(self)
        return out

    def set_reuse(self, max_uses: int) -> None:
        """Turns reuse on (``max_uses`` > 1: how many callers one sandbox
        serves in all, at most 100000) or off (0 or 1). Reuse is for the os
        backend (BackendUnavailableError otherwise); a sandbox with mounts
        of host paths, with network or whose reset fails is never reused.
        docs/security-model.md ("Reuse of a sandbox") says what a reset
        covers."""
        n = _int(max_uses, "max_uses", 100000)
        p = self._enter()
        if p is None:
            raise self._closed_error()
        try:
            err = ctypes.c_void_p()
            rc = self._lib.mbx_pool_set_reuse(p, n, ctypes.byref(err))
        finally:
            self._leave()
        _check(rc, err, "set reuse")

    def give_back(self, sandbox: Sandbox, discard: bool = False) -> None:
        """Hands a sandbox taken from this pool back: it is reset and handed
        out again when reuse is on and nothing rules it out, else
        destroyed. ``discard=True`` for one that must never be reused (a
        run that timed out or failed). The Sandbox object is closed either
        way: new calls on it raise SandboxStateError, threads waiting for
        its processes get their end (they are killed), and calls still
        running are waited for first.

        Raises:
            InvalidArgumentError: the sandbox did not come from this pool
                (it is left as it was).
        """
        if not isinstance(sandbox, Sandbox) or sandbox._origin is None or sandbox._origin() is not self:
            raise InvalidArgumentError("this sandbox was not taken from this pool",
                                       suggestion="give a sandbox back to the pool it came from, or close() it")
        ptr = sandbox._detach()
        if ptr is None:
            return  # closed already
        try:
            if not self._give_back_handle(ptr, 1 if discard else 0):
                self._lib.mbx_sandbox_free(ptr)  # the pool is closed
        finally:
            sandbox._mark_freed()

    def _give_back_handle(self, ptr: ctypes.c_void_p, flags: int) -> bool:
        """mbx_pool_give_back(); False when the pool is closed (the caller frees it)."""
        p = self._enter()
        if p is None:
            return False
        try:
            err = ctypes.c_void_p()
            rc = self._lib.mbx_pool_give_back(p, ptr, flags, ctypes.byref(err))
            if rc != 0:
                self._lib.mbx_error_free(err)  # only for another pool's sandbox, which give_back() refuses
            return True
        finally:
            self._leave()

    @property
    def ready(self) -> int:
        """Sandboxes ready right now."""
        p = self._enter()
        if p is None:
            return 0
        try:
            return self._lib.mbx_pool_ready(p)
        finally:
            self._leave()

    def close(self) -> None:
        """Destroys the sandboxes not taken (those taken stay usable; close
        them). Waits for takes and give-backs in flight."""
        with self._cv:
            ptr, self._ptr = self._ptr, ctypes.c_void_p()
            while self._calls > 0:
                self._cv.wait()
        if ptr:
            self._lib.mbx_pool_free(ptr)

    def __enter__(self) -> "Pool":
        return self

    def __del__(self) -> None:
        try:
            if getattr(self, "_ptr", None):
                self._lib.mbx_pool_free(self._ptr)
                self._ptr = ctypes.c_void_p()
        except Exception:
            pass

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---------------------------------------------------------------------------
# module functions


def version() -> str:
    """Version of the loaded libmimobox."""
    return N.text(N.native().mbx_version()) or ""


def library_path() -> str:
    """Path or name libmimobox was loaded from."""
    return N.native().path


def backend_available(isolation: str) -> Tuple[bool, Optional[str]]:
    """Whether a backend ("os", "wasm", "microvm") can run here, and if not why
    (probes the host: spawns short-lived test processes)."""
    if isolation not in ("os", "wasm", "microvm"):
        raise InvalidArgumentError("isolation must be \"os\", \"wasm\" or \"microvm\", not %r" % (isolation,))
    lib = N.native()
    probe = ctypes.c_void_p()
    err = ctypes.c_void_p()
    _check(lib.mbx_probe_run(ctypes.byref(probe), ctypes.byref(err)), err, "probe")
    try:
        reason = ctypes.c_char_p()
        ok = lib.mbx_probe_backend(probe, _ISOLATION[isolation], ctypes.byref(reason))
        return bool(ok), None if ok else N.text(reason.value)
    finally:
        lib.mbx_probe_free(probe)
