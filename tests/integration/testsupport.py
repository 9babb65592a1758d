# SPDX-License-Identifier: Apache-2.0
"""What the C integration suite and the Python package's suites share: the
AddressSanitizer re-exec of pytest and the process table. A plain module
(not a conftest), so python/tests imports it from here too; importing it
makes this process a child subreaper.
"""
import ctypes
import json
import os
import re
import secrets
import subprocess
import sys

# ---------------------------------------------------------------------------
# AddressSanitizer builds


def asan_runtime(path):
    """Path of the libasan that `path` links, or None."""
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # a preload changes ldd's format
    try:
        out = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=30, env=env).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"^\s*libasan\.so[\w.]*\s*=>\s*(\S+)", out, re.M)
    return m.group(1) if m else None


def asan_loaded():
    with open("/proc/self/maps") as f:
        return "libasan" in f.read()


def reexec_with_asan(config, lib_asan, prefix):
    """Runs pytest again with the ASan runtime `lib_asan` preloaded and leak
    detection off for the interpreter (not leak-clean), once: the marker is
    ${prefix}_REEXEC, and the caller's LD_PRELOAD and ASAN_OPTIONS are kept
    in ${prefix}_ORIG_* (JSON) for the programs the tests start."""
    if not lib_asan or asan_loaded() or os.environ.get(prefix + "_REEXEC"):
        return
    env = dict(os.environ)
    env[prefix + "_REEXEC"] = "1"
    env[prefix + "_ORIG_LD_PRELOAD"] = json.dumps(os.environ.get("LD_PRELOAD"))
    env[prefix + "_ORIG_ASAN_OPTIONS"] = json.dumps(os.environ.get("ASAN_OPTIONS"))
    env["LD_PRELOAD"] = lib_asan + (":" + os.environ["LD_PRELOAD"] if os.environ.get("LD_PRELOAD") else "")
    env["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
    argv = getattr(sys, "orig_argv", None) or [sys.executable, "-m", "pytest"] + sys.argv[1:]
    # pytest already redirected fds 1 and 2 into its capture files: give
    # the new process the real ones.
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        capman.stop_global_capturing()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)


# ---------------------------------------------------------------------------
# Processes: this process adopts every orphan below it.

PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)
if _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    raise RuntimeError("prctl(PR_SET_CHILD_SUBREAPER): %s" % os.strerror(ctypes.get_errno()))


def proc_table():
    """{pid: (ppid, state, argv)} of every process we can see."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                stat = f.read().decode(errors="replace")
            with open("/proc/%s/cmdline" % name, "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        rest = stat.rpartition(")")[2].split()
        table[int(name)] = (int(rest[1]), rest[0], argv)
    return table


def descendants(root=None):
    """{pid: argv} of every live (non-zombie) process below `root`."""
    root = os.getpid() if root is None else root
    table = proc_table()
    children = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = {}, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if table[pid][1] != "Z":
            out[pid] = table[pid][2]
        todo.extend(children.get(pid, []))
    return out


def reap_zombies():
    """Reaps adopted orphans that exited (we are their subreaper)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def procs_with_arg(arg):
    """Pids of live processes anywhere on the host with `arg` in their argv."""
    return sorted(pid for pid, (_, state, argv) in proc_table().items() if arg in argv and state != "Z")


def unique_sleep_arg():
    """A sleep duration of about 1000 s that no other process uses."""
    return "1000.%06d" % secrets.randbelow(10 ** 6)
