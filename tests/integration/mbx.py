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
            "mbx_result_free": (None, [vp]),
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


class Sandbox:
    """An mbx_sandbox: new on construction, free on close()."""

    def __init__(self, lib):
        self._l = lib
        self._sb = ctypes.c_void_p()
        err = ctypes.c_void_p()
        rc = lib.lib.mbx_sandbox_new(ctypes.byref(self._sb), None, ctypes.byref(err))
        if rc != MBX_OK:
            code, msg = lib.take_error(err)
            self._sb = ctypes.c_void_p()
            raise MbxError("mbx_sandbox_new", rc, msg)
        self.id = lib.lib.mbx_sandbox_id(self._sb).decode()
        self.limits_mechanism = lib.lib.mbx_sandbox_limits_mechanism(self._sb).decode()

    def exec_status(self, argv):
        """Runs argv; returns (status, Result or None, error message or None)."""
        args = (ctypes.c_char_p * (len(argv) + 1))(*[os.fsencode(a) for a in argv], None)
        res = ctypes.c_void_p()
        err = ctypes.c_void_p()
        rc = self._l.lib.mbx_sandbox_exec(self._sb, args, None, ctypes.byref(res), ctypes.byref(err))
        if rc != MBX_OK:
            _, msg = self._l.take_error(err)
            return rc, None, msg
        try:
            return rc, Result(self._l.lib, res), None
        finally:
            self._l.lib.mbx_result_free(res)

    def exec(self, argv):
        rc, res, msg = self.exec_status(argv)
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
