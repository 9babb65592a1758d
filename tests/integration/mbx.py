# SPDX-License-Identifier: Apache-2.0
"""A small ctypes binding of libmimobox for the integration tests.

Only what the tests need: sandboxes that live across several executes,
their id and limits mechanism, and destroy/free. Every call checks its
status; a failing call raises MbxError with the library's code and message.
"""
import ctypes
import os

MBX_OK = 0
MBX_EINVAL = -1
MBX_ENOMEM = -2
MBX_ENOTSUP = -3
MBX_EPERM = -4
MBX_ESYS = -5
MBX_ETIMEDOUT = -6
MBX_EBACKEND = -7
MBX_ESTATE = -8
MBX_ENOTFOUND = -9
MBX_ENOEXEC = -10
MBX_ENOTDIR = -11
MBX_ETOOBIG = -12
MBX_EPROTO = -13
MBX_EEXIST = -14

MBX_EVENT_STDOUT = 1
MBX_EVENT_STDERR = 2
MBX_EVENT_EXIT = 3
MBX_EVENT_TIMED_OUT = 4

MBX_FILE_REGULAR = 1
MBX_FILE_DIRECTORY = 2
MBX_FILE_SYMLINK = 3

MBX_ISOLATION_OS = 1


class MbxError(Exception):
    """A libmimobox call failed: `code` is the MBX_E* value."""

    def __init__(self, what, code, message):
        super().__init__("%s failed: %d (%s)" % (what, code, message))
        self.what = what
        self.code = code
        self.message = message


class Result:
    """The fields of an mbx_result, copied out before it is freed."""

    def __init__(self, lib, res):
        n = ctypes.c_size_t(0)
        p = lib.mbx_result_stdout(res, ctypes.byref(n))
        self.stdout = ctypes.string_at(p, n.value) if n.value else b""
        p = lib.mbx_result_stderr(res, ctypes.byref(n))
        self.stderr = ctypes.string_at(p, n.value) if n.value else b""
        self.exit_code = lib.mbx_result_exit_code(res)
        self.signal = lib.mbx_result_signal(res)
        self.timed_out = bool(lib.mbx_result_timed_out(res))
        self.oom_killed = bool(lib.mbx_result_oom_killed(res))
        self.cpu_time_us = lib.mbx_result_cpu_time_us(res)
        self.peak_memory_bytes = lib.mbx_result_peak_memory_bytes(res)

    def __repr__(self):
        return "Result(exit_code=%r, signal=%r, timed_out=%r, stdout=%r, stderr=%r)" % (
            self.exit_code, self.signal, self.timed_out, self.stdout[:200], self.stderr[:200])


class Lib:
    """libmimobox loaded with ctypes, with the prototypes declared."""

    def __init__(self, path):
        self.path = path
        lib = ctypes.CDLL(path)
        vp = ctypes.c_void_p
        pvp = ctypes.POINTER(ctypes.c_void_p)
        sig = {
            "mbx_version": (ctypes.c_char_p, []),
            "mbx_error_message": (ctypes.c_char_p, [vp]),
            "mbx_error_code": (ctypes.c_int, [vp]),
            "mbx_error_free": (None, [vp]),
            "mbx_sandbox_new": (ctypes.c_int, [pvp, vp, pvp]),
            "mbx_sandbox_exec": (ctypes.c_int, [vp, ctypes.POINTER(ctypes.c_char_p), vp, pvp, pvp]),
            "mbx_sandbox_destroy": (ctypes.c_int, [vp, pvp]),
            "mbx_sandbox_free": (None, [vp]),
            "mbx_sandbox_id": (ctypes.c_char_p, [vp]),
            "mbx_sandbox_limits_mechanism": (ctypes.c_char_p, [vp]),
            "mbx_result_stdout": (ctypes.c_void_p, [vp, ctypes.POINTER(ctypes.c_size_t)]),
            "mbx_result_stderr": (ctypes.c_void_p, [vp, ctypes.POINTER(ctypes.c_size_t)]),
            "mbx_result_exit_code": (ctypes.c_int, [vp]),
            "mbx_result_signal": (ctypes.c_int, [vp]),
            "mbx_result_timed_out": (ctypes.c_int, [vp]),
            "mbx_result_oom_killed": (ctypes.c_int, [vp]),
            "mbx_result_cpu_time_us": (ctypes.c_uint64, [vp]),
            "mbx_result_peak_memory_bytes": (ctypes.c_uint64, [vp]),
            "mbx_result_free": (None, [vp]),
            "mbx_config_new": (ctypes.c_int, [pvp, pvp]),
            "mbx_config_free": (None, [vp]),
            "mbx_config_set_isolation": (ctypes.c_int, [vp, ctypes.c_uint8, pvp]),
            "mbx_config_add_mount": (ctypes.c_int, [vp, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint32, pvp]),
            "mbx_exec_options_new": (ctypes.c_int, [pvp, pvp]),
            "mbx_exec_options_free": (None, [vp]),
            "mbx_exec_options_set_stdin": (ctypes.c_int, [vp, ctypes.c_char_p, ctypes.c_size_t, pvp]),
            "mbx_exec_options_set_last": (None, [vp, ctypes.c_int]),
            "mbx_spawn_options_new": (ctypes.c_int, [pvp, pvp]),
            "mbx_spawn_options_free": (None, [vp]),
            "mbx_spawn_options_set_stdin": (None, [vp, ctypes.c_int]),
            "mbx_spawn_options_set_pty": (ctypes.c_int, [vp, ctypes.c_uint16, ctypes.c_uint16, pvp]),
            "mbx_spawn_options_set_timeout_ms": (None, [vp, ctypes.c_uint64]),
            "mbx_spawn_options_set_buffer": (ctypes.c_int, [vp, ctypes.c_uint64, pvp]),
            "mbx_sandbox_spawn": (ctypes.c_int, [vp, ctypes.POINTER(ctypes.c_char_p), vp, pvp, pvp]),
            "mbx_process_next_event": (ctypes.c_int, [vp, ctypes.c_int, pvp, pvp]),
            "mbx_event_kind": (ctypes.c_uint8, [vp]),
            "mbx_event_data": (ctypes.c_void_p, [vp, ctypes.POINTER(ctypes.c_size_t)]),
            "mbx_event_exit_code": (ctypes.c_int, [vp]),
            "mbx_event_signal": (ctypes.c_int, [vp]),
            "mbx_event_free": (None, [vp]),
            "mbx_process_write_stdin": (ctypes.c_int, [vp, ctypes.c_char_p, ctypes.c_size_t, pvp]),
            "mbx_process_write_stdin_some": (ctypes.c_int, [vp, ctypes.c_char_p, ctypes.c_size_t,
                                                            ctypes.POINTER(ctypes.c_size_t), pvp]),
            "mbx_process_close_stdin": (ctypes.c_int, [vp, pvp]),
            "mbx_process_signal": (ctypes.c_int, [vp, ctypes.c_int, pvp]),
            "mbx_process_kill": (ctypes.c_int, [vp, pvp]),
            "mbx_process_resize": (ctypes.c_int, [vp, ctypes.c_uint16, ctypes.c_uint16, pvp]),
            "mbx_process_wait": (ctypes.c_int, [vp, ctypes.c_int, pvp, pvp]),
            "mbx_process_id": (ctypes.c_uint32, [vp]),
            "mbx_process_running": (ctypes.c_int, [vp]),
            "mbx_process_free": (None, [vp]),
            "mbx_sandbox_list_processes": (ctypes.c_int, [vp, pvp, pvp]),
            "mbx_sandbox_process": (ctypes.c_int, [vp, ctypes.c_uint32, pvp, pvp]),
            "mbx_proc_list_count": (ctypes.c_size_t, [vp]),
            "mbx_proc_list_id": (ctypes.c_uint32, [vp, ctypes.c_size_t]),
            "mbx_proc_list_program": (ctypes.c_char_p, [vp, ctypes.c_size_t]),
            "mbx_proc_list_free": (None, [vp]),
            "mbx_sandbox_read_file": (ctypes.c_int, [vp, ctypes.c_char_p, pvp, ctypes.POINTER(ctypes.c_size_t), pvp]),
            "mbx_buffer_free": (None, [vp]),
            "mbx_sandbox_write_file": (ctypes.c_int, [vp, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t,
                                                       ctypes.c_uint32, ctypes.c_uint32, pvp]),
            "mbx_sandbox_read_file_to_fd": (ctypes.c_int, [vp, ctypes.c_char_p, ctypes.c_int, pvp]),
            "mbx_sandbox_write_file_from_fd": (ctypes.c_int, [vp, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint32, pvp]),
            "mbx_sandbox_stat": (ctypes.c_int, [vp, ctypes.c_char_p, pvp, pvp]),
            "mbx_stat_type": (ctypes.c_uint8, [vp]),
            "mbx_stat_size": (ctypes.c_uint64, [vp]),
            "mbx_stat_mode": (ctypes.c_uint32, [vp]),
            "mbx_stat_mtime_ns": (ctypes.c_int64, [vp]),
            "mbx_stat_uid": (ctypes.c_uint32, [vp]),
            "mbx_stat_free": (None, [vp]),
            "mbx_sandbox_list_dir": (ctypes.c_int, [vp, ctypes.c_char_p, pvp, pvp]),
            "mbx_dir_count": (ctypes.c_size_t, [vp]),
            "mbx_dir_name": (ctypes.c_char_p, [vp, ctypes.c_size_t]),
            "mbx_dir_type": (ctypes.c_uint8, [vp, ctypes.c_size_t]),
            "mbx_dir_size": (ctypes.c_uint64, [vp, ctypes.c_size_t]),
            "mbx_dir_is_symlink": (ctypes.c_int, [vp, ctypes.c_size_t]),
            "mbx_dir_free": (None, [vp]),
            "mbx_sandbox_mkdir": (ctypes.c_int, [vp, ctypes.c_char_p, ctypes.c_uint32, ctypes.c_int, pvp]),
            "mbx_sandbox_remove": (ctypes.c_int, [vp, ctypes.c_char_p, ctypes.c_int, pvp]),
            "mbx_sandbox_rename": (ctypes.c_int, [vp, ctypes.c_char_p, ctypes.c_char_p, pvp]),
            "mbx_sandbox_symlink": (ctypes.c_int, [vp, ctypes.c_char_p, ctypes.c_char_p, pvp]),
            "mbx_config_set_env": (ctypes.c_int, [vp, ctypes.c_char_p, ctypes.c_char_p, pvp]),
            "mbx_config_set_hostname": (ctypes.c_int, [vp, ctypes.c_char_p, pvp]),
            "mbx_config_set_workdir": (ctypes.c_int, [vp, ctypes.c_char_p, pvp]),
            "mbx_config_set_memory_limit": (ctypes.c_int, [vp, ctypes.c_uint64, pvp]),
            "mbx_config_set_network": (ctypes.c_int, [vp, ctypes.c_uint8, pvp]),
            "mbx_config_add_allowed_domain": (ctypes.c_int, [vp, ctypes.c_char_p, pvp]),
            "mbx_sandbox_snapshot": (ctypes.c_int, [pvp, vp, pvp]),
            "mbx_sandbox_from_snapshot": (ctypes.c_int, [pvp, vp, vp, pvp]),
            "mbx_sandbox_fork": (ctypes.c_int, [pvp, vp, pvp]),
            "mbx_snapshot_to_bytes": (ctypes.c_int, [vp, pvp, ctypes.POINTER(ctypes.c_size_t), pvp]),
            "mbx_snapshot_from_bytes": (ctypes.c_int, [pvp, ctypes.c_char_p, ctypes.c_size_t, pvp]),
            "mbx_snapshot_save": (ctypes.c_int, [vp, ctypes.c_char_p, pvp]),
            "mbx_snapshot_load": (ctypes.c_int, [pvp, ctypes.c_char_p, pvp]),
            "mbx_snapshot_size": (ctypes.c_uint64, [vp]),
            "mbx_snapshot_memory_size": (ctypes.c_uint64, [vp, ctypes.POINTER(ctypes.c_int)]),
            "mbx_snapshot_free": (None, [vp]),
        }
        for name, (restype, argtypes) in sig.items():
            fn = getattr(lib, name)
            fn.restype = restype
            fn.argtypes = argtypes
        self.lib = lib

    def version(self):
        return self.lib.mbx_version().decode()

    def take_error(self, err):
        """Returns (code, message) of an mbx_error and frees it."""
        if not err:
            return (None, "(no error object)")
        code = self.lib.mbx_error_code(err)
        msg = self.lib.mbx_error_message(err)
        self.lib.mbx_error_free(err)
        return (code, (msg or b"").decode(errors="replace"))

    def sandbox(self):
        return Sandbox(self)


class Config:
    """An mbx_config the caller keeps across sandboxes; free on close()."""

    MOUNT_RW = 1

    def __init__(self, lib):
        self._l = lib
        self.cfg = ctypes.c_void_p()
        _check(lib, "mbx_config_new", lib.lib.mbx_config_new(ctypes.byref(self.cfg), None), ctypes.c_void_p())

    def add_mount(self, host, sandbox, flags=0):
        err = ctypes.c_void_p()
        rc = self._l.lib.mbx_config_add_mount(self.cfg, os.fsencode(host), os.fsencode(sandbox), flags,
                                              ctypes.byref(err))
        _check(self._l, "mbx_config_add_mount(%r)" % host, rc, err)

    def close(self):
        if self.cfg:
            self._l.lib.mbx_config_free(self.cfg)
            self.cfg = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Sandbox:
    """An mbx_sandbox: new on construction, free on close(). `config`: a
    Config to create it from (the caller keeps and frees it)."""

    def __init__(self, lib, isolation=None, config=None):
        self._l = lib
        self._sb = ctypes.c_void_p()
        err = ctypes.c_void_p()
        cfg = ctypes.c_void_p()
        if config is not None:
            cfg = config.cfg
        elif isolation is not None:
            lib.lib.mbx_config_new(ctypes.byref(cfg), None)
            lib.lib.mbx_config_set_isolation(cfg, isolation, None)
        rc = lib.lib.mbx_sandbox_new(ctypes.byref(self._sb), cfg, ctypes.byref(err))
        if cfg and config is None:
            lib.lib.mbx_config_free(cfg)
        if rc != MBX_OK:
            code, msg = lib.take_error(err)
            self._sb = ctypes.c_void_p()
            raise MbxError("mbx_sandbox_new", rc, msg)
        self.id = lib.lib.mbx_sandbox_id(self._sb).decode()
        self.limits_mechanism = lib.lib.mbx_sandbox_limits_mechanism(self._sb).decode()

    @classmethod
    def wrap(cls, lib, handle):
        """A Sandbox around an mbx_sandbox handle made elsewhere (restore, fork)."""
        self = cls.__new__(cls)
        self._l = lib
        self._sb = handle
        self.id = lib.lib.mbx_sandbox_id(handle).decode()
        self.limits_mechanism = lib.lib.mbx_sandbox_limits_mechanism(handle).decode()
        return self

    def exec_status(self, argv, stdin=None, last=False):
        """Runs argv; returns (status, Result or None, error message or None).
        last: mbx_exec_options_set_last()."""
        args = (ctypes.c_char_p * (len(argv) + 1))(*[os.fsencode(a) for a in argv], None)
        res = ctypes.c_void_p()
        err = ctypes.c_void_p()
        opts = ctypes.c_void_p()
        if stdin is not None or last:
            self._l.lib.mbx_exec_options_new(ctypes.byref(opts), None)
        if stdin is not None:
            self._l.lib.mbx_exec_options_set_stdin(opts, stdin, len(stdin), None)
        if last:
            self._l.lib.mbx_exec_options_set_last(opts, 1)
        rc = self._l.lib.mbx_sandbox_exec(self._sb, args, opts, ctypes.byref(res), ctypes.byref(err))
        if opts:
            self._l.lib.mbx_exec_options_free(opts)
        if rc != MBX_OK:
            _, msg = self._l.take_error(err)
            return rc, None, msg
        try:
            return rc, Result(self._l.lib, res), None
        finally:
            self._l.lib.mbx_result_free(res)

    def exec(self, argv, stdin=None, last=False):
        rc, res, msg = self.exec_status(argv, stdin, last)
        if rc != MBX_OK:
            raise MbxError("mbx_sandbox_exec(%r)" % (argv,), rc, msg)
        return res

    def destroy(self):
        """Returns the status of mbx_sandbox_destroy (errors are freed)."""
        err = ctypes.c_void_p()
        rc = self._l.lib.mbx_sandbox_destroy(self._sb, ctypes.byref(err))
        if rc != MBX_OK:
            self._l.take_error(err)
        return rc

    def close(self):
        if self._sb:
            self._l.lib.mbx_sandbox_free(self._sb)
            self._sb = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _check(lib, what, rc, err):
    if rc != MBX_OK:
        _, msg = lib.take_error(err)
        raise MbxError(what, rc, msg)


class Process:
    """An mbx_process of a Sandbox."""

    def __init__(self, sandbox, handle):
        self._sb = sandbox
        self._l = sandbox._l
        self._p = handle
        self.id = self._l.lib.mbx_process_id(handle)

    def _call(self, name, *args):
        err = ctypes.c_void_p()
        rc = getattr(self._l.lib, name)(self._p, *args, ctypes.byref(err))
        _check(self._l, name, rc, err)

    def next_event(self, timeout_ms=-1):
        """(kind, bytes) for output, (kind, (exit_code, signal)) for the end,
        or None when nothing came in time."""
        ev = ctypes.c_void_p()
        err = ctypes.c_void_p()
        rc = self._l.lib.mbx_process_next_event(self._p, timeout_ms, ctypes.byref(ev), ctypes.byref(err))
        _check(self._l, "mbx_process_next_event", rc, err)
        if not ev:
            return None
        try:
            kind = self._l.lib.mbx_event_kind(ev)
            if kind in (MBX_EVENT_STDOUT, MBX_EVENT_STDERR):
                n = ctypes.c_size_t(0)
                p = self._l.lib.mbx_event_data(ev, ctypes.byref(n))
                return kind, ctypes.string_at(p, n.value) if n.value else b""
            return kind, (self._l.lib.mbx_event_exit_code(ev), self._l.lib.mbx_event_signal(ev))
        finally:
            self._l.lib.mbx_event_free(ev)

    def write(self, data):
        self._call("mbx_process_write_stdin", data, len(data))

    def write_some(self, data):
        """Bytes of `data` the process's stdin took without waiting."""
        n = ctypes.c_size_t(0)
        err = ctypes.c_void_p()
        rc = self._l.lib.mbx_process_write_stdin_some(self._p, data, len(data), ctypes.byref(n), ctypes.byref(err))
        _check(self._l, "mbx_process_write_stdin_some", rc, err)
        return n.value

    def close_stdin(self):
        self._call("mbx_process_close_stdin")

    def signal(self, sig):
        self._call("mbx_process_signal", sig)

    def kill(self):
        self._call("mbx_process_kill")

    def resize(self, rows, cols):
        self._call("mbx_process_resize", rows, cols)

    def wait(self, timeout_ms=-1):
        res = ctypes.c_void_p()
        err = ctypes.c_void_p()
        rc = self._l.lib.mbx_process_wait(self._p, timeout_ms, ctypes.byref(res), ctypes.byref(err))
        _check(self._l, "mbx_process_wait", rc, err)
        try:
            return Result(self._l.lib, res)
        finally:
            self._l.lib.mbx_result_free(res)

    def running(self):
        return bool(self._l.lib.mbx_process_running(self._p))

    def close(self):
        if self._p:
            self._l.lib.mbx_process_free(self._p)
            self._p = None


def _spawn(self, argv, stdin=False, pty=None, timeout_ms=None, buffer=None):
    lib = self._l.lib
    opts = ctypes.c_void_p()
    err = ctypes.c_void_p()
    _check(self._l, "mbx_spawn_options_new", lib.mbx_spawn_options_new(ctypes.byref(opts), ctypes.byref(err)), err)
    try:
        if stdin:
            lib.mbx_spawn_options_set_stdin(opts, 1)
        if pty:
            _check(self._l, "set_pty", lib.mbx_spawn_options_set_pty(opts, pty[0], pty[1], ctypes.byref(err)), err)
        if timeout_ms is not None:
            lib.mbx_spawn_options_set_timeout_ms(opts, timeout_ms)
        if buffer is not None:
            _check(self._l, "set_buffer", lib.mbx_spawn_options_set_buffer(opts, buffer, ctypes.byref(err)), err)
        args = (ctypes.c_char_p * (len(argv) + 1))(*[os.fsencode(a) for a in argv], None)
        p = ctypes.c_void_p()
        rc = lib.mbx_sandbox_spawn(self._sb, args, opts, ctypes.byref(p), ctypes.byref(err))
        _check(self._l, "mbx_sandbox_spawn(%r)" % (argv,), rc, err)
        return Process(self, p)
    finally:
        lib.mbx_spawn_options_free(opts)


def _sb_call(self, name, *args):
    err = ctypes.c_void_p()
    rc = getattr(self._l.lib, name)(self._sb, *args, ctypes.byref(err))
    _check(self._l, name, rc, err)


def _read_file(self, path):
    data = ctypes.c_void_p()
    n = ctypes.c_size_t(0)
    err = ctypes.c_void_p()
    rc = self._l.lib.mbx_sandbox_read_file(self._sb, os.fsencode(path), ctypes.byref(data), ctypes.byref(n), ctypes.byref(err))
    _check(self._l, "mbx_sandbox_read_file(%r)" % path, rc, err)
    try:
        return ctypes.string_at(data, n.value)
    finally:
        self._l.lib.mbx_buffer_free(data)


def _write_file(self, path, data, mode=0o644, flags=0):
    _sb_call(self, "mbx_sandbox_write_file", os.fsencode(path), data, len(data), mode, flags)


def _stat(self, path):
    st = ctypes.c_void_p()
    _sb_call(self, "mbx_sandbox_stat", os.fsencode(path), ctypes.byref(st))
    lib = self._l.lib
    try:
        return {"type": lib.mbx_stat_type(st), "size": lib.mbx_stat_size(st), "mode": lib.mbx_stat_mode(st),
                "mtime_ns": lib.mbx_stat_mtime_ns(st), "uid": lib.mbx_stat_uid(st)}
    finally:
        lib.mbx_stat_free(st)


def _list_dir(self, path):
    d = ctypes.c_void_p()
    _sb_call(self, "mbx_sandbox_list_dir", os.fsencode(path), ctypes.byref(d))
    lib = self._l.lib
    try:
        return [(lib.mbx_dir_name(d, i).decode(), lib.mbx_dir_type(d, i), lib.mbx_dir_size(d, i),
                 bool(lib.mbx_dir_is_symlink(d, i))) for i in range(lib.mbx_dir_count(d))]
    finally:
        lib.mbx_dir_free(d)


def _list_processes(self):
    lst = ctypes.c_void_p()
    _sb_call(self, "mbx_sandbox_list_processes", ctypes.byref(lst))
    lib = self._l.lib
    try:
        return [(lib.mbx_proc_list_id(lst, i), lib.mbx_proc_list_program(lst, i).decode())
                for i in range(lib.mbx_proc_list_count(lst))]
    finally:
        lib.mbx_proc_list_free(lst)


Sandbox.spawn = _spawn
Sandbox.read_file = _read_file
Sandbox.write_file = _write_file
Sandbox.stat = _stat
Sandbox.list_dir = _list_dir
Sandbox.list_processes = _list_processes


def _process(self, pid):
    """A new handle on the running process `pid` (mbx_sandbox_process)."""
    h = ctypes.c_void_p()
    _sb_call(self, "mbx_sandbox_process", pid, ctypes.byref(h))
    return Process(self, h)


Sandbox.process = _process
Sandbox.mkdir = lambda self, path, mode=0o755, parents=False: _sb_call(self, "mbx_sandbox_mkdir", os.fsencode(path), mode, int(parents))
Sandbox.remove = lambda self, path, recursive=False: _sb_call(self, "mbx_sandbox_remove", os.fsencode(path), int(recursive))
Sandbox.rename = lambda self, a, b: _sb_call(self, "mbx_sandbox_rename", os.fsencode(a), os.fsencode(b))
Sandbox.read_file_to_fd = lambda self, path, fd: _sb_call(self, "mbx_sandbox_read_file_to_fd", os.fsencode(path), fd)
Sandbox.write_file_from_fd = lambda self, path, fd, mode=0o644: _sb_call(self, "mbx_sandbox_write_file_from_fd", os.fsencode(path), fd, mode)
Sandbox.symlink = lambda self, target, path: _sb_call(self, "mbx_sandbox_symlink", os.fsencode(target), os.fsencode(path))


class Snapshot:
    """An mbx_snapshot: freed on close()."""

    def __init__(self, lib, handle):
        self._l = lib
        self.h = handle

    @classmethod
    def of(cls, sandbox):
        h = ctypes.c_void_p()
        err = ctypes.c_void_p()
        rc = sandbox._l.lib.mbx_sandbox_snapshot(ctypes.byref(h), sandbox._sb, ctypes.byref(err))
        _check(sandbox._l, "mbx_sandbox_snapshot", rc, err)
        return cls(sandbox._l, h)

    @classmethod
    def from_bytes(cls, lib, data):
        h = ctypes.c_void_p()
        err = ctypes.c_void_p()
        rc = lib.lib.mbx_snapshot_from_bytes(ctypes.byref(h), data, len(data), ctypes.byref(err))
        _check(lib, "mbx_snapshot_from_bytes", rc, err)
        return cls(lib, h)

    @classmethod
    def load(cls, lib, path):
        h = ctypes.c_void_p()
        err = ctypes.c_void_p()
        rc = lib.lib.mbx_snapshot_load(ctypes.byref(h), os.fsencode(path), ctypes.byref(err))
        _check(lib, "mbx_snapshot_load", rc, err)
        return cls(lib, h)

    def to_bytes(self):
        data = ctypes.c_void_p()
        n = ctypes.c_size_t(0)
        err = ctypes.c_void_p()
        rc = self._l.lib.mbx_snapshot_to_bytes(self.h, ctypes.byref(data), ctypes.byref(n), ctypes.byref(err))
        _check(self._l, "mbx_snapshot_to_bytes", rc, err)
        try:
            return ctypes.string_at(data, n.value)
        finally:
            self._l.lib.mbx_buffer_free(data)

    def save(self, path):
        err = ctypes.c_void_p()
        rc = self._l.lib.mbx_snapshot_save(self.h, os.fsencode(path), ctypes.byref(err))
        _check(self._l, "mbx_snapshot_save", rc, err)

    def size(self):
        return self._l.lib.mbx_snapshot_size(self.h)

    def memory_size(self):
        """(bytes, fd) of a microVM snapshot's memory; (0, -1) without."""
        fd = ctypes.c_int(-2)
        n = self._l.lib.mbx_snapshot_memory_size(self.h, ctypes.byref(fd))
        return n, fd.value

    def restore(self, config=None):
        sb = ctypes.c_void_p()
        err = ctypes.c_void_p()
        rc = self._l.lib.mbx_sandbox_from_snapshot(ctypes.byref(sb), self.h, config.cfg if config else None,
                                                   ctypes.byref(err))
        _check(self._l, "mbx_sandbox_from_snapshot", rc, err)
        return Sandbox.wrap(self._l, sb)

    def close(self):
        if self.h:
            self._l.lib.mbx_snapshot_free(self.h)
            self.h = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _fork(self):
    child = ctypes.c_void_p()
    err = ctypes.c_void_p()
    rc = self._l.lib.mbx_sandbox_fork(ctypes.byref(child), self._sb, ctypes.byref(err))
    _check(self._l, "mbx_sandbox_fork", rc, err)
    return Sandbox.wrap(self._l, child)


Sandbox.fork = _fork
