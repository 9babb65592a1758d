# SPDX-License-Identifier: Apache-2.0
"""Shared set-up of the integration suite.

Environment (meson sets all three; by hand they default to ../../build):
  MIMOBOX_CLI      the built `mimobox` program
  MIMOBOX_LIB      the built libmimobox.so (for the ctypes tests)
  MIMOBOX_HELPERS  the build directory of tests/, holding `try-syscall`

Runs as root and as an unprivileged user, e.g.
  setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \\
      env HOME=/tmp /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration

What every test gets for free (the autouse `guard` fixture):
  * its own state directory (MIMOBOX_STATE_DIR), which must be empty again
    when the test ends: no sandbox directory may outlive its sandbox;
  * a process check: this pytest process is a child subreaper, so every
    process a test starts (the CLI, the agents it clones, their payloads,
    orphans included) stays below it; when the test ends none may remain;
  * a cgroup check: no cgroup directory of a sandbox the test created may
    remain (the CLI runs with MIMOBOX_LOG=info, which names each sandbox).

AddressSanitizer: when MIMOBOX_LIB links libasan, ctypes can only load it
into a Python process that has the ASan runtime first in its library list.
This conftest then re-executes pytest once with LD_PRELOAD=<libasan> (and
leak detection off for the Python process only: the interpreter itself is
not leak-clean). The programs the tests start get the caller's original
LD_PRELOAD and ASAN_OPTIONS back, so the CLI keeps leak detection. If the
re-exec did not bring the runtime in, the ctypes tests skip with the reason.
"""
import errno
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
from pathlib import Path

import pytest

from testsupport import (asan_loaded, asan_runtime, descendants, proc_table, procs_with_arg,  # noqa: F401
                         reap_zombies, reexec_with_asan as _reexec_with_asan, unique_sleep_arg)

HERE = Path(__file__).resolve().parent
DEFAULT_BUILD = HERE.parent.parent / "build"

os.environ.setdefault("MIMOBOX_CLI", str(DEFAULT_BUILD / "mimobox"))
os.environ.setdefault("MIMOBOX_LIB", str(DEFAULT_BUILD / "libmimobox.so"))
os.environ.setdefault("MIMOBOX_HELPERS", str(DEFAULT_BUILD / "tests"))

CLI = os.environ["MIMOBOX_CLI"]
LIB = os.environ["MIMOBOX_LIB"]
HELPERS = os.environ["MIMOBOX_HELPERS"]

# Host programs are looked up here too when the caller's PATH is odd.
os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin:/sbin:/bin"

# ---------------------------------------------------------------------------
# AddressSanitizer builds (testsupport.py)

LIB_ASAN = asan_runtime(LIB) if os.path.exists(LIB) else None


def reexec_with_asan(config):
    """Runs pytest again with the ASan runtime preloaded (see the top)."""
    _reexec_with_asan(config, LIB_ASAN, "MBX_IT")


def host_env(extra=None):
    """The environment for programs the tests start: the caller's, with
    what the ASan re-exec changed put back."""
    env = dict(os.environ)
    if "MBX_IT_REEXEC" in env:
        for key in ("LD_PRELOAD", "ASAN_OPTIONS"):
            orig = json.loads(env.pop("MBX_IT_ORIG_" + key, "null"))
            if orig is None:
                env.pop(key, None)
            else:
                env[key] = orig
        env.pop("MBX_IT_REEXEC", None)
    if extra:
        env.update(extra)
    return env


# ---------------------------------------------------------------------------
# cgroups


def _cgroup_mounts():
    mounts = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                if right.split()[0] in ("cgroup", "cgroup2"):
                    mounts.append(left.split()[4])
    except OSError:
        pass
    return mounts


def _own_cgroup_paths():
    paths = {"/"}
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                p = line.rstrip("\n").split(":", 2)[2]
                while p and p != "/":
                    paths.add(p)
                    p = os.path.dirname(p)
    except OSError:
        pass
    return paths


def cgroup_dirs(sandbox_id):
    """Cgroup directories that exist for a sandbox id, in the layouts the
    library uses (v1: <mount>/mimobox/<id>; v2: <base>/mimobox/mimobox-<id>,
    base being the caller's cgroup or its parent)."""
    found = []
    for mnt in _cgroup_mounts():
        for rel in _own_cgroup_paths():
            for leaf in (sandbox_id, "mimobox-" + sandbox_id):
                d = os.path.normpath("%s/%s/mimobox/%s" % (mnt, rel, leaf))
                if os.path.isdir(d) and d not in found:
                    found.append(d)
    return found


# ---------------------------------------------------------------------------
# Running the CLI

_LOG_ID = re.compile(r"^mimobox: info: sandbox ([0-9a-f]+) created")


class Run:
    """One finished CLI run."""

    def __init__(self, cmd, rc, stdout, stderr, wall, maxrss_kb):
        self.cmd = cmd
        self.rc = rc
        self.stdout = stdout
        lines = stderr.decode(errors="replace").splitlines(keepends=True)
        self.log = [l for l in lines if l.startswith("mimobox: info: ")]
        self.stderr = "".join(l for l in lines if not l.startswith("mimobox: info: "))
        self.ids = [m.group(1) for m in map(_LOG_ID.match, self.log) if m]
        self.wall = wall
        self.maxrss_kb = maxrss_kb
        self._json = None

    @property
    def out(self):
        return self.stdout.decode(errors="replace")

    @property
    def json(self):
        if self._json is None:
            text = self.out
            assert text.count("\n") == 1 and text.endswith("\n"), "expected one JSON line on stdout, got %r" % text[:500]
            self._json = json.loads(text)
        return self._json

    def __repr__(self):
        return "Run(cmd=%r, rc=%r, stdout=%r, stderr=%r)" % (self.cmd, self.rc, self.stdout[:300], self.stderr[:500])


class Cli:
    """Runs the mimobox CLI as a child of this process and records the ids
    of the sandboxes it reports."""

    def __init__(self, guard, backend="os"):
        self.guard = guard
        self.path = CLI
        self.backend = backend

    def env(self, extra=None):
        env = host_env({"MIMOBOX_LOG": "info", "MIMOBOX_STATE_DIR": self.guard.state_dir})
        if extra:
            env.update(extra)
        return env

    def __call__(self, args, timeout=60, stdin=None, env=None, measure_rss=False):
        """Runs the CLI with `args`.

        With measure_rss, Run.maxrss_kb is the CLI's own peak RSS. A child
        of this process cannot measure it itself: exec records the old mm's
        high-water mark in the new program's rusage, and the old mm of a
        child of Python is Python's (vfork) or a copy of it (fork). So a
        small shell forks the CLI, and once it is reaped the shell execs a
        Python that reads RUSAGE_CHILDREN, which exec keeps: the CLI's peak
        (its agent and payload included), with the exit status beside it."""
        args = [str(a) for a in args]
        if self.backend != "os" and args and args[0] in ("run", "create") and \
                not any(a == "--isolation" or a.startswith("--isolation=") for a in args):
            args = [args[0], "--isolation", self.backend] + args[1:]
        cmd = [self.path] + args
        rss_file = None
        exec_cmd = cmd
        if measure_rss:
            fd, rss_file = tempfile.mkstemp(prefix="mbx-rss-")
            os.close(fd)
            report = ("import resource, sys; open(sys.argv[1], 'w').write('%d %s' % "
                      "(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, sys.argv[2]))")
            exec_cmd = ["/bin/sh", "-c", '"$@"; rc=$?; exec "$MBX_IT_PYTHON" -c "$MBX_IT_REPORT" "$MBX_IT_RSS" "$rc"',
                        "sh"] + cmd
            env = dict(env or {}, MBX_IT_PYTHON=sys.executable, MBX_IT_REPORT=report, MBX_IT_RSS=rss_file)
        p = subprocess.Popen(exec_cmd, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=self.env(env), start_new_session=True)
        chunks = {1: [], 2: []}

        def pump(f, key):
            while True:
                b = f.read1(1 << 20)
                if not b:
                    break
                chunks[key].append(b)

        threads = [threading.Thread(target=pump, args=(p.stdout, 1), daemon=True),
                   threading.Thread(target=pump, args=(p.stderr, 2), daemon=True)]
        if stdin is not None:
            def feed():
                try:
                    p.stdin.write(stdin)
                    p.stdin.close()
                except OSError:
                    pass
            threads.append(threading.Thread(target=feed, daemon=True))
        for t in threads:
            t.start()
        start = time.monotonic()
        deadline = start + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.killpg(p.pid, signal.SIGKILL)
                os.wait4(p.pid, 0)
                p.returncode = -9
                for t in threads:
                    t.join(5)
                raise AssertionError("%r did not finish within %s s" % (cmd, timeout))
            time.sleep(0.005)
        wall = time.monotonic() - start
        p.returncode = os.waitstatus_to_exitcode(status)
        for t in threads:
            t.join(30)
        p.stdout.close()
        p.stderr.close()
        r = Run(cmd, p.returncode, b"".join(chunks[1]), b"".join(chunks[2]), wall, ru.ru_maxrss)
        if rss_file:
            with open(rss_file) as f:
                text = f.read().split()
            os.unlink(rss_file)
            assert len(text) == 2, "the RSS report of %r is missing" % (cmd,)
            r.maxrss_kb = int(text[0])
            r.rc = int(text[1])
        self.guard.ids.update(r.ids)
        return r

    def run(self, *args, **kw):
        """`mimobox run ARGS...`"""
        return self(["run"] + list(args), **kw)

    def json(self, *args, **kw):
        """`mimobox run --json ARGS...`; checks the run produced a result."""
        r = self(["run", "--json"] + list(args), **kw)
        assert r.json.get("ok") is True, r
        return r, r.json


# ---------------------------------------------------------------------------
# Fixtures

# Files of the user's, not of a sandbox, that a state directory keeps: the
# wasm module cache's and snapshots' MAC keys and the microvm assets'
# verified stamps.
USER_FILES = ("wasm-cache.key", "snapshot.key", "vm-assets.stamp")


def must_work_skip(reason):
    """Skips, unless MBX_TEST_MUST_WORK=1 asks for every test to run."""
    if os.environ.get("MBX_TEST_MUST_WORK") == "1":
        pytest.fail("would skip, but MBX_TEST_MUST_WORK=1: " + reason)
    pytest.skip(reason)


def pytest_configure(config):
    reexec_with_asan(config)
    missing = [p for p in (CLI, LIB, os.path.join(HELPERS, "try-syscall")) if not os.path.exists(p)]
    if missing:
        raise pytest.UsageError("integration tests need a build: missing %s (set MIMOBOX_CLI, MIMOBOX_LIB, "
                                "MIMOBOX_HELPERS or run `ninja -C build`)" % ", ".join(missing))


@pytest.fixture(scope="session")
def user():
    euid = os.geteuid()
    return types.SimpleNamespace(euid=euid, is_root=euid == 0)


@pytest.fixture(scope="session")
def base_tmp():
    """A session directory in /tmp that every uid may traverse (sandboxes of
    a root caller run as an unprivileged host uid that must reach their
    workspace and mounts through it)."""
    d = tempfile.mkdtemp(prefix="mbx-it-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def host_tmp(base_tmp):
    """A fresh 0755 directory for one test."""
    d = tempfile.mkdtemp(prefix="t-", dir=base_tmp)
    os.chmod(d, 0o755)
    return d


@pytest.fixture(autouse=True)
def guard(base_tmp, monkeypatch):
    """Per-test state directory plus the leftover checks (see the top)."""
    g = types.SimpleNamespace(state_dir=os.path.join(base_tmp, "state-" + secrets.token_hex(4)), ids=set())
    os.mkdir(g.state_dir, 0o711)
    os.chmod(g.state_dir, 0o711)
    monkeypatch.setenv("MIMOBOX_STATE_DIR", g.state_dir)
    yield g

    problems = []
    deadline = time.monotonic() + 5
    while True:
        reap_zombies()
        left = descendants()
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if left:
        problems.append("processes: " + "; ".join("%d %s" % (pid, " ".join(argv)[:120]) for pid, argv in left.items()))
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.2)
        reap_zombies()
    # The MAC keys (wasm module cache, snapshots) and the microvm assets' verified stamps
    # are the user's, not a sandbox's: they stay.
    entries = sorted(e for e in os.listdir(g.state_dir) if e not in USER_FILES) if os.path.isdir(g.state_dir) else []
    if entries:
        problems.append("state directory %s still holds %s" % (g.state_dir, entries))
    leftover_cgroups = []
    # A sandbox's state: its directory <id>, or its lock file <id>.lock.
    for sid in sorted(g.ids | {e[:16] for e in entries if re.fullmatch(r"[0-9a-f]{16}(\.lock)?", e)}):
        dirs = cgroup_dirs(sid)
        if dirs:
            problems.append("cgroup directories of sandbox %s: %s" % (sid, dirs))
            leftover_cgroups += dirs
    # Report, then tidy up so one failure does not spill into the host.
    for d in leftover_cgroups:
        try:
            os.rmdir(d)
        except OSError:
            pass
    for e in entries:
        shutil.rmtree(os.path.join(g.state_dir, e), ignore_errors=True)
    if problems:
        pytest.fail("left behind after the test: " + " | ".join(problems), pytrace=False)


@pytest.fixture
def cli(guard, request):
    return Cli(guard, backend_of(request))


@pytest.fixture(scope="session")
def microvm_runs():
    """Whether a microvm sandbox can be made here. The doctor's answer for
    the backend is its prerequisites (QEMU, verified guest assets); whether
    the backend itself runs, only trying tells."""
    r = subprocess.run([CLI, "run", "--isolation", "microvm", "--", "true"], capture_output=True,
                       env=host_env({"MIMOBOX_LOG": "off"}), timeout=120)
    return r.returncode == 0


@pytest.fixture(scope="session")
def doctor():
    r = subprocess.run([CLI, "doctor", "--json"], capture_output=True, env=host_env(), timeout=60)
    assert r.returncode == 0, r
    return json.loads(r.stdout)


@pytest.fixture(scope="session")
def limits_mech(doctor):
    """"cgroup" when this caller gets cgroup limits here, else "rlimit"."""
    status = {c["name"]: c["status"] for c in doctor["checks"]}
    if status.get("cgroup-v2") in ("ok", "partial") or status.get("cgroup-v1") in ("ok", "partial"):
        return "cgroup"
    return "rlimit"


@pytest.fixture(scope="session")
def lib():
    import mbx

    if LIB_ASAN and not asan_loaded():
        must_work_skip("%s is built with AddressSanitizer and the ASan runtime could not be preloaded into "
                       "this Python (run with LD_PRELOAD=%s)" % (LIB, LIB_ASAN))
    return mbx.Lib(LIB)


@pytest.fixture
def osbox(lib, guard):
    """An os sandbox of the default configuration through the library,
    closed after the test (the guard checks that nothing of it is left)."""
    import mbx

    sb = mbx.Sandbox(lib)
    guard.ids.add(sb.id)
    yield sb
    sb.close()


# ---------------------------------------------------------------------------
# Backends. A module whose tests must hold on every backend that runs the
# agent opts in with `pytestmark = pytest.mark.usefixtures("backend")`: each
# of its tests then runs once per backend, and the `sandbox` and `cli`
# fixtures create their sandboxes on it (`cli` adds `--isolation` to `run`
# and `create`). MIMOBOX_TEST_BACKENDS (comma-separated) narrows the list,
# e.g. MIMOBOX_TEST_BACKENDS=os for a quick run.

AGENT_BACKENDS = ("os", "microvm")
ISOLATION = {"os": 1, "wasm": 2, "microvm": 3}


def pytest_generate_tests(metafunc):
    own = any("backend" in [a.strip() for a in str(m.args[0]).split(",")]
              for m in metafunc.definition.iter_markers("parametrize") if m.args)
    if "backend" in metafunc.fixturenames and not own:
        wanted = os.environ.get("MIMOBOX_TEST_BACKENDS")
        names = [b for b in AGENT_BACKENDS if not wanted or b in wanted.split(",")]
        metafunc.parametrize("backend", names, indirect=True)


@pytest.fixture
def backend(request, doctor):
    name = getattr(request, "param", "os")
    info = doctor["backends"].get(name, {})
    if not info.get("available"):
        must_work_skip("the %s backend is unavailable here: %s" % (name, info.get("reason")))
    return name


def backend_of(request):
    """The backend a test runs on: its `backend` parameter, else os."""
    return request.getfixturevalue("backend") if "backend" in request.fixturenames else "os"


@pytest.fixture
def sandbox(lib, guard, request):
    """A live library sandbox on the test's backend, freed after the test."""
    import mbx

    name = backend_of(request)
    sb = mbx.Sandbox(lib, isolation=ISOLATION[name] if name != "os" else None)
    sb.backend = name
    guard.ids.add(sb.id)
    yield sb
    sb.close()


@pytest.fixture(scope="session")
def helpers_mount():
    """--mount argument that shows the helper programs at /opt/helpers."""
    return "%s:/opt/helpers" % os.path.realpath(HELPERS)


@pytest.fixture(scope="session")
def helper_opts(helpers_mount):
    """`mimobox run` options for running the helpers inside a sandbox. An
    ASan build of them needs LeakSanitizer off in there: it works through
    ptrace, which the sandbox forbids."""
    opts = ["--mount", helpers_mount]
    if asan_runtime(os.path.join(HELPERS, "try-syscall")):
        opts += ["--env", "ASAN_OPTIONS=detect_leaks=0"]
    return opts


def cli_is_asan():
    return asan_runtime(CLI) is not None


def errno_name(e):
    return errno.errorcode.get(e, str(e))
