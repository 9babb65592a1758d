# SPDX-License-Identifier: Apache-2.0
"""Loading libmimobox with ctypes and declaring the prototypes of its public
C API (include/mbx/*.h). Internal: use the classes of the `mimobox` package.

Where the library is looked for, in order:

1. ``$MIMOBOX_LIB``: an explicit path to ``libmimobox.so`` (nothing else is
   tried when it is set);
2. the build tree of a checkout, when the package runs from one:
   ``python/../build/libmimobox.so``;
3. the system loader: ``libmimobox.so.0`` (after ``meson install`` and
   ``ldconfig``), and what ``ctypes.util.find_library("mimobox")`` finds.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from pathlib import Path
from typing import Any, List, Optional, Tuple

from .errors import LibraryNotFoundError

SONAME = "libmimobox.so.0"

vp = ctypes.c_void_p
pvp = ctypes.POINTER(ctypes.c_void_p)
cp = ctypes.c_char_p
ci = ctypes.c_int
u8 = ctypes.c_uint8
u16 = ctypes.c_uint16
u32 = ctypes.c_uint32
u64 = ctypes.c_uint64
i64 = ctypes.c_int64
sz = ctypes.c_size_t
psz = ctypes.POINTER(ctypes.c_size_t)
pu8 = ctypes.POINTER(ctypes.c_uint8)
ppu8 = ctypes.POINTER(pu8)
pcp = ctypes.POINTER(ctypes.c_char_p)

#: void (*mbx_output_fn)(mbx_stream_t, const uint8_t *, size_t, void *)
OUTPUT_FN = ctypes.CFUNCTYPE(None, u8, pu8, sz, vp)

# name: (restype, argtypes)
_PROTOTYPES = {
    "mbx_version": (cp, []),
    "mbx_isolation_name": (cp, [u8]),
    "mbx_error_code_name": (cp, [ci]),
    "mbx_error_code": (ci, [vp]),
    "mbx_error_errno": (ci, [vp]),
    "mbx_error_message": (cp, [vp]),
    "mbx_error_suggestion": (cp, [vp]),
    "mbx_error_layer": (cp, [vp]),
    "mbx_error_free": (None, [vp]),
    # config
    "mbx_config_new": (ci, [pvp, pvp]),
    "mbx_config_free": (None, [vp]),
    "mbx_config_set_isolation": (ci, [vp, u8, pvp]),
    "mbx_config_set_trust": (ci, [vp, u8, pvp]),
    "mbx_config_set_network": (ci, [vp, u8, pvp]),
    "mbx_config_add_allowed_domain": (ci, [vp, cp, pvp]),
    "mbx_config_set_timeout_ms": (ci, [vp, u64, pvp]),
    "mbx_config_set_memory_limit": (ci, [vp, u64, pvp]),
    "mbx_config_set_disk_limit": (ci, [vp, u64, pvp]),
    "mbx_config_set_cpu_limit": (ci, [vp, u32, pvp]),
    "mbx_config_set_max_processes": (ci, [vp, u32, pvp]),
    "mbx_config_set_output_limit": (ci, [vp, u64, pvp]),
    "mbx_config_set_file_limit": (ci, [vp, u64, pvp]),
    "mbx_config_set_env": (ci, [vp, cp, cp, pvp]),
    "mbx_config_set_workdir": (ci, [vp, cp, pvp]),
    "mbx_config_set_hostname": (ci, [vp, cp, pvp]),
    "mbx_config_add_mount": (ci, [vp, cp, cp, u32, pvp]),
    "mbx_config_set_allow_degraded": (None, [vp, ci]),
    "mbx_config_add_host_override": (ci, [vp, cp, cp, pvp]),
    "mbx_config_set_network_allow_private": (None, [vp, ci]),
    "mbx_config_add_ca_file": (ci, [vp, cp, pvp]),
    "mbx_config_set_network_limit": (ci, [vp, u8, u64, pvp]),
    # exec options
    "mbx_exec_options_new": (ci, [pvp, pvp]),
    "mbx_exec_options_free": (None, [vp]),
    "mbx_exec_options_set_env": (ci, [vp, cp, cp, pvp]),
    "mbx_exec_options_set_workdir": (ci, [vp, cp, pvp]),
    "mbx_exec_options_set_timeout_ms": (ci, [vp, u64, pvp]),
    "mbx_exec_options_set_stdin": (ci, [vp, cp, sz, pvp]),
    "mbx_exec_options_set_output_cb": (None, [vp, OUTPUT_FN, vp]),
    # sandbox
    "mbx_sandbox_new": (ci, [pvp, vp, pvp]),
    "mbx_sandbox_exec": (ci, [vp, pcp, vp, pvp, pvp]),
    "mbx_sandbox_exec_command": (ci, [vp, cp, vp, pvp, pvp]),
    "mbx_sandbox_exec_code": (ci, [vp, cp, cp, vp, pvp, pvp]),
    "mbx_sandbox_destroy": (ci, [vp, pvp]),
    "mbx_sandbox_free": (None, [vp]),
    "mbx_sandbox_reset": (ci, [vp, pvp]),
    "mbx_sandbox_isolation": (u8, [vp]),
    "mbx_sandbox_id": (cp, [vp]),
    "mbx_sandbox_layers": (u32, [vp]),
    "mbx_sandbox_skipped": (u32, [vp]),
    "mbx_sandbox_skip_reason": (cp, [vp, u32]),
    "mbx_sandbox_oom_kills": (u64, [vp]),
    "mbx_sandbox_limits_mechanism": (cp, [vp]),
    "mbx_sandbox_limits_partial": (cp, [vp]),
    "mbx_layer_name": (cp, [u32]),
    # result
    "mbx_result_exit_code": (ci, [vp]),
    "mbx_result_signal": (ci, [vp]),
    "mbx_result_timed_out": (ci, [vp]),
    "mbx_result_oom_killed": (ci, [vp]),
    "mbx_result_stdout": (vp, [vp, psz]),
    "mbx_result_stderr": (vp, [vp, psz]),
    "mbx_result_stdout_truncated": (ci, [vp]),
    "mbx_result_stderr_truncated": (ci, [vp]),
    "mbx_result_elapsed_us": (u64, [vp]),
    "mbx_result_peak_memory_bytes": (u64, [vp]),
    "mbx_result_cpu_time_us": (u64, [vp]),
    "mbx_result_isolation": (u8, [vp]),
    "mbx_result_limits_mechanism": (cp, [vp]),
    "mbx_result_trap": (cp, [vp]),
    "mbx_result_layers": (u32, [vp]),
    "mbx_result_skipped": (u32, [vp]),
    "mbx_result_free": (None, [vp]),
    # files
    "mbx_sandbox_read_file": (ci, [vp, cp, pvp, psz, pvp]),
    "mbx_sandbox_write_file": (ci, [vp, cp, cp, sz, u32, u32, pvp]),
    "mbx_sandbox_read_file_to_fd": (ci, [vp, cp, ci, pvp]),
    "mbx_sandbox_write_file_from_fd": (ci, [vp, cp, ci, u32, pvp]),
    "mbx_buffer_free": (None, [vp]),
    "mbx_sandbox_stat": (ci, [vp, cp, pvp, pvp]),
    "mbx_stat_type": (u8, [vp]),
    "mbx_stat_size": (u64, [vp]),
    "mbx_stat_mode": (u32, [vp]),
    "mbx_stat_mtime_ns": (i64, [vp]),
    "mbx_stat_uid": (u32, [vp]),
    "mbx_stat_gid": (u32, [vp]),
    "mbx_stat_free": (None, [vp]),
    "mbx_sandbox_list_dir": (ci, [vp, cp, pvp, pvp]),
    "mbx_dir_count": (sz, [vp]),
    "mbx_dir_name": (cp, [vp, sz]),
    "mbx_dir_type": (u8, [vp, sz]),
    "mbx_dir_size": (u64, [vp, sz]),
    "mbx_dir_is_symlink": (ci, [vp, sz]),
    "mbx_dir_free": (None, [vp]),
    "mbx_sandbox_mkdir": (ci, [vp, cp, u32, ci, pvp]),
    "mbx_sandbox_remove": (ci, [vp, cp, ci, pvp]),
    "mbx_sandbox_rename": (ci, [vp, cp, cp, pvp]),
    # processes
    "mbx_spawn_options_new": (ci, [pvp, pvp]),
    "mbx_spawn_options_free": (None, [vp]),
    "mbx_spawn_options_set_env": (ci, [vp, cp, cp, pvp]),
    "mbx_spawn_options_set_workdir": (ci, [vp, cp, pvp]),
    "mbx_spawn_options_set_timeout_ms": (None, [vp, u64]),
    "mbx_spawn_options_set_stdin": (None, [vp, ci]),
    "mbx_spawn_options_set_pty": (ci, [vp, u16, u16, pvp]),
    "mbx_spawn_options_set_buffer": (ci, [vp, u64, pvp]),
    "mbx_sandbox_spawn": (ci, [vp, pcp, vp, pvp, pvp]),
    "mbx_process_next_event": (ci, [vp, ci, pvp, pvp]),
    "mbx_event_kind": (u8, [vp]),
    "mbx_event_data": (vp, [vp, psz]),
    "mbx_event_exit_code": (ci, [vp]),
    "mbx_event_signal": (ci, [vp]),
    "mbx_event_cpu_time_us": (u64, [vp]),
    "mbx_event_peak_memory_bytes": (u64, [vp]),
    "mbx_event_elapsed_us": (u64, [vp]),
    "mbx_event_free": (None, [vp]),
    "mbx_process_write_stdin": (ci, [vp, cp, sz, pvp]),
    "mbx_process_close_stdin": (ci, [vp, pvp]),
    "mbx_process_signal": (ci, [vp, ci, pvp]),
    "mbx_process_kill": (ci, [vp, pvp]),
    "mbx_process_resize": (ci, [vp, u16, u16, pvp]),
    "mbx_process_wait": (ci, [vp, ci, pvp, pvp]),
    "mbx_process_id": (u32, [vp]),
    "mbx_process_running": (ci, [vp]),
    "mbx_process_free": (None, [vp]),
    "mbx_sandbox_list_processes": (ci, [vp, pvp, pvp]),
    "mbx_proc_list_count": (sz, [vp]),
    "mbx_proc_list_id": (u32, [vp, sz]),
    "mbx_proc_list_program": (cp, [vp, sz]),
    "mbx_proc_list_age_ms": (u64, [vp, sz]),
    "mbx_proc_list_free": (None, [vp]),
    "mbx_sandbox_process": (ci, [vp, u32, pvp, pvp]),
    "mbx_sandbox_event_fd": (ci, [vp, pvp]),
    # pool
    "mbx_pool_new": (ci, [pvp, vp, sz, pvp]),
    "mbx_pool_take": (ci, [vp, pvp, pvp]),
    "mbx_pool_set_reuse": (ci, [vp, u32, pvp]),
    "mbx_pool_give_back": (ci, [vp, vp, u32, pvp]),
    "mbx_pool_ready": (sz, [vp]),
    "mbx_pool_free": (None, [vp]),
    # network
    "mbx_sandbox_http_request": (ci, [vp, cp, cp, pcp, cp, sz, pvp, pvp]),
    "mbx_http_response_status": (ci, [vp]),
    "mbx_http_response_header_count": (sz, [vp]),
    "mbx_http_response_header_name": (cp, [vp, sz]),
    "mbx_http_response_header_value": (cp, [vp, sz]),
    "mbx_http_response_body": (vp, [vp, psz]),
    "mbx_http_response_url": (cp, [vp]),
    "mbx_http_response_free": (None, [vp]),
    # probe
    "mbx_probe_run": (ci, [pvp, pvp]),
    "mbx_probe_free": (None, [vp]),
    "mbx_probe_backend": (ci, [vp, u8, pcp]),
}


def _candidates() -> List[Tuple[str, str]]:
    """(how, path-or-name) pairs in lookup order."""
    explicit = os.environ.get("MIMOBOX_LIB")
    if explicit:
        return [("$MIMOBOX_LIB", explicit)]
    out = []
    # Running from a checkout (python/mimobox/ beside the project's
    # meson.build): the library of its build tree.
    top = Path(__file__).resolve().parent.parent.parent
    if (top / "meson.build").is_file() and (top / "include" / "mbx").is_dir():
        out.append(("build tree of this checkout", str(top / "build" / "libmimobox.so")))
    out.append(("system loader", SONAME))
    found = ctypes.util.find_library("mimobox")
    if found and found != SONAME:
        out.append(("ctypes.util.find_library", found))
    return out


def _load() -> Tuple[ctypes.CDLL, str]:
    tried = []
    for how, where in _candidates():
        if os.sep in where and not os.path.exists(where):
            tried.append("%s: %s (no such file)" % (how, where))
            continue
        try:
            lib = ctypes.CDLL(where)
        except OSError as e:
            reason = str(e)
            if "libasan" in reason or "ASan runtime" in reason:
                reason += "; this is an AddressSanitizer build: start Python with LD_PRELOAD=<its libasan.so>"
            tried.append("%s: %s (%s)" % (how, where, reason))
            continue
        return lib, where
    raise LibraryNotFoundError(
        "libmimobox could not be loaded; looked in:\n  " + "\n  ".join(tried),
        suggestion="build it with ./scripts/build.sh in the mimobox checkout, or install it with "
        "`meson install -C build && ldconfig`, or set MIMOBOX_LIB to the path of libmimobox.so",
    )


class Native:
    """The loaded library with its prototypes declared."""

    def __init__(self) -> None:
        self.lib, self.path = _load()
        missing = []
        for name, (res, args) in _PROTOTYPES.items():
            try:
                fn = getattr(self.lib, name)
            except AttributeError:
                missing.append(name)
                continue
            fn.restype = res
            fn.argtypes = args
        if missing:
            raise LibraryNotFoundError(
                "%s is too old for this package: it lacks %s" % (self.path, ", ".join(missing)),
                suggestion="rebuild libmimobox from the same checkout as this package, or set MIMOBOX_LIB")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.lib, name)


_native: Optional[Native] = None
_native_lock = threading.Lock()


def native() -> Native:
    """The library, loaded on first use."""
    global _native
    if _native is None:
        with _native_lock:
            if _native is None:
                _native = Native()
    return _native


def text(p: Optional[bytes]) -> Optional[str]:
    return None if p is None else p.decode("utf-8", errors="replace")


def take_bytes(addr: Optional[int], n: int) -> bytes:
    return ctypes.string_at(addr, n) if addr and n else b""
