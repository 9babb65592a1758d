#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What a reset of an os sandbox costs (mbx_sandbox_reset(), the reuse of
warm pools) against what it replaces: a new sandbox and the destruction
of the used one (mbx_sandbox_new() + mbx_sandbox_free()).

Each of -n rounds runs `/bin/sh -c 'echo x > /workspace/f; ipcmk -M 4096'`
(a user leaving a file and a SysV segment), then times either the reset
or a destroy + create. Prints P50 and P99 in milliseconds. Reports only;
never fails on a number.
"""
import argparse
import ctypes
import os
import sys
import tempfile
import time


def default_lib():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.abspath(os.path.join(here, "..", "build", "libmimobox.so"))


def pct(times, p):
    times = sorted(times)
    return times[min(len(times) - 1, int(round(p / 100 * (len(times) - 1))))] * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200, help="rounds per case (default 200)")
    ap.add_argument("--lib", default=default_lib())
    a = ap.parse_args()
    state = tempfile.mkdtemp(prefix="mbx-bench-reset-")
    os.environ["MIMOBOX_STATE_DIR"] = state
    lib = ctypes.CDLL(a.lib)
    vp, pvp = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)
    lib.mbx_sandbox_new.argtypes = [pvp, vp, pvp]
    lib.mbx_sandbox_exec.argtypes = [vp, ctypes.POINTER(ctypes.c_char_p), vp, pvp, pvp]
    lib.mbx_sandbox_reset.argtypes = [vp, pvp]
    lib.mbx_sandbox_free.argtypes = [vp]
    lib.mbx_result_free.argtypes = [vp]
    argv = (ctypes.c_char_p * 4)(b"/bin/sh", b"-c", b"echo x > /workspace/f; ipcmk -M 4096 >/dev/null", None)

    def new():
        sb = vp()
        if lib.mbx_sandbox_new(ctypes.byref(sb), None, None) != 0:
            sys.exit("bench_reset: mbx_sandbox_new failed")
        return sb

    def use(sb):
        res = vp()
        if lib.mbx_sandbox_exec(sb, argv, None, ctypes.byref(res), None) != 0:
            sys.exit("bench_reset: exec failed")
        lib.mbx_result_free(res)

    times = {"reset": [], "free+new": []}
    sb = new()
    try:
        for _ in range(a.n):
            use(sb)
            t = time.perf_counter()
            if lib.mbx_sandbox_reset(sb, None) != 0:
                sys.exit("bench_reset: reset failed")
            times["reset"].append(time.perf_counter() - t)
            use(sb)
            t = time.perf_counter()
            lib.mbx_sandbox_free(sb)
            sb = vp()
            sb = new()
            times["free+new"].append(time.perf_counter() - t)
    finally:
        lib.mbx_sandbox_free(sb)
        os.rmdir(state) if not os.listdir(state) else None
    for k, v in times.items():
        print("%-10s P50 %8.3f ms   P99 %8.3f ms" % (k, pct(v, 50), pct(v, 99)))


if __name__ == "__main__":
    main()
