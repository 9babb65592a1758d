# SPDX-License-Identifier: Apache-2.0
"""ctypes binding of the network part of libmimobox (mbx/net.h) for the
integration tests: configs with a network policy, sandboxes built from
them, HTTP requests under their policy and the audit log."""
import ctypes
import os

MBX_NETWORK_DENY_ALL = 0
MBX_NETWORK_ALLOW_DOMAINS = 1
MBX_NETWORK_ALLOW_ALL = 2

MBX_ISOLATION_OS = 1

LIMIT = {"request_bytes": 1, "response_bytes": 2, "timeout_ms": 3, "idle_ms": 4, "connections": 5, "redirects": 6}

CODES = {0: "ok", -1: "invalid_argument", -2: "out_of_memory", -3: "unsupported", -4: "permission_denied",
         -5: "system_error", -6: "timed_out", -7: "backend_error", -8: "bad_state", -9: "not_found",
         -10: "not_executable", -12: "too_large", -15: "denied", -16: "network_error", -17: "tls_error"}

VERDICTS = {0: "allowed", 1: "denied", 2: "failed"}


class NetError(Exception):
    def __init__(self, what, code, message, layer=None, suggestion=None):
        super().__init__("%s failed: %s (%s)" % (what, CODES.get(code, code), message))
        self.code = code
        self.name = CODES.get(code, str(code))
        self.message = message
        self.layer = layer
        self.suggestion = suggestion


class Api:
    def __init__(self, path):
        lib = ctypes.CDLL(path)
        vp, pvp, cp, sz = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_size_t
        u64, i32 = ctypes.c_uint64, ctypes.c_int
        sig = {
            "mbx_error_message": (cp, [vp]), "mbx_error_code": (i32, [vp]), "mbx_error_layer": (cp, [vp]),
            "mbx_error_free": (None, [vp]), "mbx_error_suggestion": (cp, [vp]),
            "mbx_config_new": (i32, [pvp, pvp]), "mbx_config_free": (None, [vp]),
            "mbx_config_set_isolation": (i32, [vp, ctypes.c_uint8, pvp]),
            "mbx_config_set_network": (i32, [vp, ctypes.c_uint8, pvp]),
            "mbx_config_add_allowed_domain": (i32, [vp, cp, pvp]),
            "mbx_config_add_host_override": (i32, [vp, cp, cp, pvp]),
            "mbx_config_set_network_allow_private": (None, [vp, i32]),
            "mbx_config_add_ca_file": (i32, [vp, cp, pvp]),
            "mbx_config_set_network_limit": (i32, [vp, ctypes.c_uint8, u64, pvp]),
            "mbx_config_set_env": (i32, [vp, cp, cp, pvp]),
            "mbx_config_set_timeout_ms": (i32, [vp, u64, pvp]),
            "mbx_config_add_mount": (i32, [vp, cp, cp, ctypes.c_uint32, pvp]),
            "mbx_sandbox_new": (i32, [pvp, vp, pvp]), "mbx_sandbox_free": (None, [vp]),
            "mbx_sandbox_id": (cp, [vp]),
            "mbx_sandbox_exec": (i32, [vp, ctypes.POINTER(cp), vp, pvp, pvp]),
            "mbx_result_stdout": (vp, [vp, ctypes.POINTER(sz)]), "mbx_result_stderr": (vp, [vp, ctypes.POINTER(sz)]),
            "mbx_result_exit_code": (i32, [vp]), "mbx_result_free": (None, [vp]),
            "mbx_sandbox_http_request": (i32, [vp, cp, cp, ctypes.POINTER(cp), ctypes.c_char_p, sz, pvp, pvp]),
            "mbx_http_response_status": (i32, [vp]), "mbx_http_response_header_count": (sz, [vp]),
            "mbx_http_response_header_name": (cp, [vp, sz]), "mbx_http_response_header_value": (cp, [vp, sz]),
            "mbx_http_response_header": (cp, [vp, cp]), "mbx_http_response_body": (vp, [vp, ctypes.POINTER(sz)]),
            "mbx_http_response_url": (cp, [vp]), "mbx_http_response_free": (None, [vp]),
            "mbx_sandbox_net_log": (i32, [vp, pvp, pvp]), "mbx_net_log_count": (sz, [vp]),
            "mbx_net_log_dropped": (u64, [vp]), "mbx_net_log_time_us": (u64, [vp, sz]),
            "mbx_net_log_source": (cp, [vp, sz]), "mbx_net_log_method": (cp, [vp, sz]),
            "mbx_net_log_host": (cp, [vp, sz]), "mbx_net_log_port": (ctypes.c_uint16, [vp, sz]),
            "mbx_net_log_address": (cp, [vp, sz]), "mbx_net_log_verdict": (ctypes.c_uint8, [vp, sz]),
            "mbx_net_log_status": (i32, [vp, sz]), "mbx_net_log_reason": (cp, [vp, sz]),
            "mbx_net_log_bytes_up": (u64, [vp, sz]), "mbx_net_log_bytes_down": (u64, [vp, sz]),
            "mbx_net_log_free": (None, [vp]),
        }
        for name, (res, args) in sig.items():
            fn = getattr(lib, name)
            fn.restype = res
            fn.argtypes = args
        self.lib = lib

    def fail(self, what, rc, err):
        msg, layer, suggestion = "(no error object)", None, None
        if err:
            msg = (self.lib.mbx_error_message(err) or b"").decode(errors="replace")
            layer = self.lib.mbx_error_layer(err)
            layer = layer.decode() if layer else None
            suggestion = self.lib.mbx_error_suggestion(err)
            suggestion = suggestion.decode() if suggestion else None
            self.lib.mbx_error_free(err)
        raise NetError(what, rc, msg, layer, suggestion)

    def call(self, what, fn, *args):
        err = ctypes.c_void_p()
        rc = fn(*args, ctypes.byref(err))
        if rc != 0:
            self.fail(what, rc, err)


class Config:
    """An mbx_config built from keyword arguments."""

    def __init__(self, api, network=MBX_NETWORK_DENY_ALL, domains=(), overrides=None, allow_private=False,
                 ca_file=None, limits=None, env=None, mounts=None, timeout_ms=None, isolation=MBX_ISOLATION_OS):
        self.api = api
        lib = api.lib
        self.cfg = ctypes.c_void_p()
        api.call("mbx_config_new", lib.mbx_config_new, ctypes.byref(self.cfg))
        api.call("set_isolation", lib.mbx_config_set_isolation, self.cfg, isolation)
        api.call("set_network", lib.mbx_config_set_network, self.cfg, network)
        for d in domains:
            api.call("add_allowed_domain(%s)" % d, lib.mbx_config_add_allowed_domain, self.cfg, d.encode())
        for name, addr in (overrides or {}).items():
            api.call("add_host_override", lib.mbx_config_add_host_override, self.cfg, name.encode(), addr.encode())
        lib.mbx_config_set_network_allow_private(self.cfg, 1 if allow_private else 0)
        if ca_file:
            api.call("add_ca_file", lib.mbx_config_add_ca_file, self.cfg, os.fsencode(ca_file))
        for k, v in (limits or {}).items():
            api.call("set_network_limit(%s)" % k, lib.mbx_config_set_network_limit, self.cfg, LIMIT[k], v)
        for k, v in (env or {}).items():
            api.call("set_env", lib.mbx_config_set_env, self.cfg, k.encode(), v.encode())
        for host, dst in (mounts or []):
            api.call("add_mount", lib.mbx_config_add_mount, self.cfg, os.fsencode(host), dst.encode(), 0)
        if timeout_ms:
            api.call("set_timeout", lib.mbx_config_set_timeout_ms, self.cfg, timeout_ms)

    def close(self):
        if self.cfg:
            self.api.lib.mbx_config_free(self.cfg)
            self.cfg = ctypes.c_void_p()


class Response:
    def __init__(self, api, r):
        lib = api.lib
        self.status = lib.mbx_http_response_status(r)
        self.headers = []
        for i in range(lib.mbx_http_response_header_count(r)):
            self.headers.append((lib.mbx_http_response_header_name(r, i).decode(),
                                 lib.mbx_http_response_header_value(r, i).decode()))
        n = ctypes.c_size_t()
        p = lib.mbx_http_response_body(r, ctypes.byref(n))
        self.body = ctypes.string_at(p, n.value) if n.value else b""
        self.url = lib.mbx_http_response_url(r).decode()

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


class LogEntry:
    FIELDS = ("time_us", "source", "method", "host", "port", "address", "verdict", "status", "reason",
              "bytes_up", "bytes_down")

    def __repr__(self):
        return "LogEntry(%s)" % ", ".join("%s=%r" % (f, getattr(self, f)) for f in self.FIELDS)


class Sandbox:
    def __init__(self, api, config):
        self.api = api
        self.sb = ctypes.c_void_p()
        err = ctypes.c_void_p()
        rc = api.lib.mbx_sandbox_new(ctypes.byref(self.sb), config.cfg, ctypes.byref(err))
        if rc != 0:
            self.sb = ctypes.c_void_p()
            api.fail("mbx_sandbox_new", rc, err)
        self.id = api.lib.mbx_sandbox_id(self.sb).decode()

    def sh(self, script, *args):
        """Runs `sh -c script args...`; returns (exit, stdout, stderr) as text."""
        return self.run(["sh", "-c", script, "sh"] + [str(a) for a in args])

    def run(self, argv):
        lib = self.api.lib
        arr = (ctypes.c_char_p * (len(argv) + 1))(*[os.fsencode(a) for a in argv], None)
        res = ctypes.c_void_p()
        self.api.call("mbx_sandbox_exec", lib.mbx_sandbox_exec, self.sb, arr, None, ctypes.byref(res))
        try:
            n = ctypes.c_size_t()
            out = ctypes.string_at(lib.mbx_result_stdout(res, ctypes.byref(n)), n.value)
            err = ctypes.string_at(lib.mbx_result_stderr(res, ctypes.byref(n)), n.value)
            return lib.mbx_result_exit_code(res), out.decode(errors="replace"), err.decode(errors="replace")
        finally:
            lib.mbx_result_free(res)

    def python(self, code, *args):
        return self.run(["python3", "-c", code] + [str(a) for a in args])

    def http(self, method, url, headers=None, body=None):
        lib = self.api.lib
        hdrs = None
        if headers:
            hdrs = (ctypes.c_char_p * (len(headers) + 1))(*[h.encode() for h in headers], None)
        resp = ctypes.c_void_p()
        self.api.call("http_request(%s %s)" % (method, url), lib.mbx_sandbox_http_request, self.sb, method.encode(),
                      url.encode(), hdrs, body, len(body) if body else 0, ctypes.byref(resp))
        try:
            return Response(self.api, resp)
        finally:
            lib.mbx_http_response_free(resp)

    def log(self):
        lib = self.api.lib
        log = ctypes.c_void_p()
        self.api.call("mbx_sandbox_net_log", lib.mbx_sandbox_net_log, self.sb, ctypes.byref(log))
        out = []
        try:
            for i in range(lib.mbx_net_log_count(log)):
                e = LogEntry()
                e.time_us = lib.mbx_net_log_time_us(log, i)
                e.source = lib.mbx_net_log_source(log, i).decode()
                e.method = lib.mbx_net_log_method(log, i).decode()
                e.host = lib.mbx_net_log_host(log, i).decode()
                e.port = lib.mbx_net_log_port(log, i)
                e.address = lib.mbx_net_log_address(log, i).decode()
                e.verdict = VERDICTS[lib.mbx_net_log_verdict(log, i)]
                e.status = lib.mbx_net_log_status(log, i)
                e.reason = lib.mbx_net_log_reason(log, i).decode()
                e.bytes_up = lib.mbx_net_log_bytes_up(log, i)
                e.bytes_down = lib.mbx_net_log_bytes_down(log, i)
                out.append(e)
        finally:
            lib.mbx_net_log_free(log)
        return out

    def close(self):
        if self.sb:
            self.api.lib.mbx_sandbox_free(self.sb)
            self.sb = ctypes.c_void_p()
