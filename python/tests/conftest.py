# SPDX-License-Identifier: Apache-2.0
"""Shared set-up of the Python package's tests.

The tests import the package from this checkout (python/), unless
MIMOBOX_PY_INSTALLED=1 asks for the one installed in the running Python.
The library is the one the package finds: $MIMOBOX_LIB, else the build tree
(meson sets MIMOBOX_LIB). Run as root and as an unprivileged user:

    python3 -m pytest -q -p no:cacheprovider python/tests

What every test gets (the autouse `guard` fixture): its own state directory
(MIMOBOX_STATE_DIR), which must be empty again when the test ends, and a
process check: this pytest process is a child subreaper, so every process a
sandbox starts stays below it, and none may remain when the test ends.

AddressSanitizer: a libmimobox built with ASan loads into Python only with
the ASan runtime preloaded; pytest is then started again once with
LD_PRELOAD=<libasan> and leak detection off for the interpreter (which is
not leak-clean), as tests/integration/conftest.py does.
"""
import ctypes
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if os.environ.get("MIMOBOX_PY_INSTALLED") != "1":
    sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("MIMOBOX_LIB", str(HERE.parent.parent / "build" / "libmimobox.so"))
LIB = os.environ["MIMOBOX_LIB"]
os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin:/sbin:/bin"


def _asan_runtime(path):
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    try:
        out = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=30, env=env).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"^\s*libasan\.so[\w.]*\s*=>\s*(\S+)", out, re.M)
    return m.group(1) if m else None


def _asan_loaded():
    with open("/proc/self/maps") as f:
        return "libasan" in f.read()


LIB_ASAN = _asan_runtime(LIB) if os.path.exists(LIB) else None


def pytest_configure(config):
    if not LIB_ASAN or _asan_loaded() or os.environ.get("MBX_PY_REEXEC"):
        return
    env = dict(os.environ)
    env["MBX_PY_REEXEC"] = "1"
    env["LD_PRELOAD"] = LIB_ASAN + (":" + os.environ["LD_PRELOAD"] if os.environ.get("LD_PRELOAD") else "")
    env["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
    argv = getattr(sys, "orig_argv", None) or [sys.executable, "-m", "pytest"] + sys.argv[1:]
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        capman.stop_global_capturing()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)


def must_work_skip(reason):
    """Skips, unless MBX_TEST_MUST_WORK=1 asks for every test to run."""
    if os.environ.get("MBX_TEST_MUST_WORK") == "1":
        pytest.fail("would skip, but MBX_TEST_MUST_WORK=1: " + reason)
    pytest.skip(reason)


# ---- processes: this process adopts every orphan below it

_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _descendants():
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                rest = f.read().decode(errors="replace").rpartition(")")[2].split()
            with open("/proc/%s/cmdline" % name, "rb") as f:
                argv = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        table[int(name)] = (int(rest[1]), rest[0], argv)
    children = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = {}, list(children.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        if table[pid][1] != "Z":
            out[pid] = table[pid][2]
        todo.extend(children.get(pid, []))
    return out


def _reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


@pytest.fixture(scope="session")
def base_tmp():
    d = tempfile.mkdtemp(prefix="mbx-py-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(autouse=True)
def guard(base_tmp, monkeypatch):
    state = os.path.join(base_tmp, "state-" + secrets.token_hex(4))
    os.mkdir(state, 0o711)
    os.chmod(state, 0o711)
    monkeypatch.setenv("MIMOBOX_STATE_DIR", state)
    yield state
    import gc
    gc.collect()  # sandboxes a failed test dropped without close()
    problems = []
    deadline = time.monotonic() + 5
    while True:
        _reap()
        left = _descendants()
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if left:
        problems.append("processes: " + "; ".join("%d %s" % (p, a[:120]) for p, a in left.items()))
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.2)
        _reap()
    entries = sorted(e for e in os.listdir(state) if e != "wasm-cache.key")
    if entries:
        problems.append("state directory still holds %s" % entries)
    shutil.rmtree(state, ignore_errors=True)
    if problems:
        pytest.fail("left behind after the test: " + " | ".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def mimobox():
    import mimobox as m
    try:
        m.version()
    except m.LibraryNotFoundError as e:
        if LIB_ASAN and not _asan_loaded():
            must_work_skip("%s is built with AddressSanitizer and its runtime could not be preloaded" % LIB)
        raise
    return m


_backend_cache = {}


def backend_or_skip(m, isolation):
    if isolation not in _backend_cache:
        _backend_cache[isolation] = m.backend_available(isolation)
    ok, why = _backend_cache[isolation]
    if not ok:
        must_work_skip("the %s backend is unavailable here: %s" % (isolation, why))


@pytest.fixture
def sb(mimobox):
    """A live os sandbox, closed after the test."""
    with mimobox.Sandbox(isolation="os", timeout=20) as s:
        yield s


@pytest.fixture(params=["os", "wasm"])
def backend(request, mimobox):
    """Each backend that runs here (wasm skips unless it must work)."""
    backend_or_skip(mimobox, request.param)
    return request.param


@pytest.fixture
def host_tmp(base_tmp):
    d = tempfile.mkdtemp(prefix="t-", dir=base_tmp)
    os.chmod(d, 0o755)
    return d
