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
import os
import secrets
import shutil
import signal
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


# What the C integration suite shares with these tests: the ASan re-exec and
# the process table (importing it makes this process a child subreaper).
sys.path.insert(0, str(HERE.parent.parent / "tests" / "integration"))
from testsupport import asan_loaded, asan_runtime, descendants, reap_zombies, reexec_with_asan  # noqa: E402

LIB_ASAN = asan_runtime(LIB) if os.path.exists(LIB) else None


def pytest_configure(config):
    reexec_with_asan(config, LIB_ASAN, "MBX_PY")


def must_work_skip(reason):
    """Skips, unless MBX_TEST_MUST_WORK=1 asks for every test to run."""
    if os.environ.get("MBX_TEST_MUST_WORK") == "1":
        pytest.fail("would skip, but MBX_TEST_MUST_WORK=1: " + reason)
    pytest.skip(reason)


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
        reap_zombies()
        left = {p: " ".join(a) for p, a in descendants().items()}
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
        reap_zombies()
    # the user's wasm cache key and microvm asset stamps stay (not a sandbox's)
    entries = sorted(e for e in os.listdir(state) if e not in ("wasm-cache.key", "vm-assets.stamp"))
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
        if LIB_ASAN and not asan_loaded():
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
