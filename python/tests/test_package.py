# SPDX-License-Identifier: Apache-2.0
"""The package as users get it: installs into a fresh virtualenv offline
(with and without build isolation), ships its type marker, finds the
library or says clearly where it looked, and the examples run."""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

PY_DIR = Path(__file__).resolve().parent.parent
EXAMPLES = PY_DIR / "examples"


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env.update({"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1"})
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def venv_python():
    """A fresh virtualenv without the system site packages, the package
    installed from a copy of python/ (no network: PIP_NO_INDEX)."""
    import venv  # noqa: F401  (python3-venv on Debian)
    d = tempfile.mkdtemp(prefix="mbx-venv-", dir="/tmp")
    try:
        src = os.path.join(d, "src")
        shutil.copytree(PY_DIR, src, ignore=shutil.ignore_patterns("__pycache__", "tests"))
        r = subprocess.run([sys.executable, "-m", "venv", os.path.join(d, "venv")], capture_output=True, text=True,
                           timeout=300)
        if r.returncode != 0 and "ensurepip" in r.stdout + r.stderr:
            pytest.skip("this Python cannot create virtualenvs with pip (apt-get install python3-venv): %s" % r.stdout)
        assert r.returncode == 0, r
        py = os.path.join(d, "venv", "bin", "python")
        r = subprocess.run([py, "-m", "pip", "install", "-q", src], capture_output=True, text=True, timeout=300,
                           env=_clean_env())
        assert r.returncode == 0, r
        yield py, src
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_installs_offline_and_runs(venv_python, guard):
    py, _ = venv_python
    code = ("import mimobox, os\n"
            "assert os.path.exists(os.path.join(os.path.dirname(mimobox.__file__), 'py.typed'))\n"
            "with mimobox.Sandbox(isolation='os') as sb:\n"
            "    print(sb.execute_code('print(40 + 2)').stdout, end='')\n")
    r = subprocess.run([py, "-c", code], capture_output=True, text=True, timeout=120, cwd="/",
                       env=_clean_env(MIMOBOX_LIB=os.environ["MIMOBOX_LIB"], MIMOBOX_STATE_DIR=guard))
    assert r.returncode == 0 and r.stdout == "42\n", r


def test_installs_without_build_isolation(venv_python):
    py, src = venv_python
    r = subprocess.run([py, "-m", "pip", "install", "-q", "--force-reinstall", "--no-build-isolation", src],
                       capture_output=True, text=True, timeout=300, env=_clean_env())
    assert r.returncode == 0, r


def test_missing_library_says_where_it_looked(venv_python):
    py, _ = venv_python
    code = ("import mimobox\n"
            "try:\n"
            "    mimobox.Sandbox()\n"
            "except ImportError as e:\n"
            "    assert isinstance(e, mimobox.SandboxError) and e.code == 'library_not_found'\n"
            "    print(e)\n")
    r = subprocess.run([py, "-c", code], capture_output=True, text=True, timeout=60, cwd="/",
                       env=_clean_env(MIMOBOX_LIB="/nonexistent/libmimobox.so"))
    assert r.returncode == 0, r
    assert "/nonexistent/libmimobox.so (no such file)" in r.stdout
    assert "MIMOBOX_LIB" in r.stdout and "scripts/build.sh" in r.stdout and "ldconfig" in r.stdout
    # Without MIMOBOX_LIB an installed package asks the system loader.
    env = _clean_env()
    env.pop("MIMOBOX_LIB", None)
    env.pop("LD_LIBRARY_PATH", None)
    r = subprocess.run([py, "-c", code], capture_output=True, text=True, timeout=60, cwd="/", env=env)
    if r.returncode == 0 and r.stdout:  # libmimobox is not installed system-wide here
        assert "system loader: libmimobox.so.0" in r.stdout, r


@pytest.mark.parametrize("name,expect", [
    ("agent_loop.py", "answer: The total of the sales is 242."),
    ("quickstart.py", "45\n"),
    ("async_fanout.py", "['1024', '479001600', '499500']"),
])
def test_examples_run(name, expect, guard):
    env = dict(os.environ, PYTHONPATH=str(PY_DIR), MIMOBOX_STATE_DIR=guard)
    r = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=300,
                       env=env, cwd="/")
    assert r.returncode == 0 and expect in r.stdout, r


def test_public_surface(mimobox):
    for name in ("Sandbox", "AsyncSandbox", "ExecuteResult", "SandboxError", "SandboxNotFoundError",
                 "SandboxPermissionError", "SandboxTimeoutError", "InvalidArgumentError", "BackendUnavailableError",
                 "Pool", "Process", "StreamEvent", "DirEntry", "FileStat", "HttpResponse"):
        assert hasattr(mimobox, name), name
    assert issubclass(mimobox.SandboxNotFoundError, FileNotFoundError)
    assert issubclass(mimobox.SandboxPermissionError, PermissionError)
    assert issubclass(mimobox.SandboxTimeoutError, TimeoutError)
    assert issubclass(mimobox.InvalidArgumentError, ValueError)
    for cls in (mimobox.SandboxNotFoundError, mimobox.BackendUnavailableError, mimobox.TlsError):
        assert issubclass(cls, mimobox.SandboxError)
    assert mimobox.version() == mimobox.__version__


def test_readme_python_quick_start(guard):
    """The top README's Python block runs and prints what it says."""
    text = (PY_DIR.parent / "README.md").read_text()
    marker = "<!-- readme-example: python -->"
    assert marker in text
    block = text.split(marker, 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    env = dict(os.environ, PYTHONPATH=str(PY_DIR), MIMOBOX_STATE_DIR=guard)
    r = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, timeout=120, env=env, cwd="/")
    assert r.returncode == 0 and r.stdout == "0 42\nkept between calls\n", r


def test_python_readme_quick_start(guard):
    """python/README.md's quick start runs."""
    text = (PY_DIR / "README.md").read_text()
    block = text.split("## Quick start", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    env = dict(os.environ, PYTHONPATH=str(PY_DIR), MIMOBOX_STATE_DIR=guard)
    r = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, timeout=120, env=env, cwd="/")
    assert r.returncode == 0, r
    assert r.stdout.startswith("45\n 0 ") and "2 data.csv" in r.stdout and "stdout b'two\\n'" in r.stdout, r
