# SPDX-License-Identifier: Apache-2.0
"""The MCP server end to end, through the official MCP client of the `mcp`
package: ClientSession over stdio_client (which starts `python -m
mimobox.mcp`) and over streamable_http_client (the server started with
--http on loopback).

Needs the venv of scripts/pyenv.sh (it has `mcp`): meson's `mcp` test runs
them with it (`scripts/pyenv.sh --exec -m pytest ...`) and sets
MBX_TEST_MCP=1, under which a missing `mcp` is an error. Under another
Python (the `python` suite's) they skip. Every test gives the server
its own state directory, which must be empty once the server is done, and
checks that no process it started is left.
"""
import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from testsupport import procs_with_arg  # tests/integration, put on the path by conftest.py

try:
    import anyio
    import httpx
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client
except ImportError as exc:  # pragma: no cover - depends on the interpreter
    if os.environ.get("MBX_TEST_MCP") == "1":
        raise ImportError("the MCP tests need the `mcp` package: run them with the python that "
                          "scripts/pyenv.sh prints (%s)" % exc) from exc
    pytest.skip("the `mcp` package is missing: run with the python of scripts/pyenv.sh", allow_module_level=True)

HERE = Path(__file__).resolve().parent
PYDIR = HERE.parent
EXPECTED_TOOLS = {
    "create_sandbox", "destroy_sandbox", "list_sandboxes", "execute_command", "execute_code",
    "read_file", "write_file", "list_dir", "make_dir", "stat", "remove_file", "rename", "http_request",
}


# ---------------------------------------------------------------------------
# Helpers


def wait_until(pred, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def sandbox_dirs(state):
    return sorted(e for e in os.listdir(state) if e != "wasm-cache.key" and not e.startswith("."))


class Env:
    """The server's environment and state directory for one test."""

    def __init__(self, base):
        self.state = os.path.join(base, "state-" + secrets.token_hex(4))
        os.mkdir(self.state, 0o711)
        os.chmod(self.state, 0o711)
        self.log = os.path.join(base, "server-%s.log" % secrets.token_hex(4))
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "MIMOBOX_LIB",
                                                              "LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
        env["PYTHONPATH"] = str(PYDIR)
        env["MIMOBOX_STATE_DIR"] = self.state
        env.setdefault("PATH", "/usr/bin:/bin")
        env.setdefault("HOME", "/tmp")
        self.env = env

    def params(self, *args):
        return StdioServerParameters(command=sys.executable, args=["-m", "mimobox.mcp", *args], env=self.env,
                                     cwd=str(PYDIR))

    def log_text(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""


@pytest.fixture(scope="module")
def base():
    d = tempfile.mkdtemp(prefix="mbx-mcp-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def server_env(base):
    """A state directory for the server; empty again when the test ends."""
    e = Env(base)
    yield e
    left = sandbox_dirs(e.state) if os.path.isdir(e.state) else []
    shutil.rmtree(e.state, ignore_errors=True)
    assert not left, "the server left sandbox state behind: %s\nserver log:\n%s" % (left, e.log_text())


def run(coro_fn, *args):
    return anyio.run(coro_fn, *args)


@contextlib.asynccontextmanager
async def stdio_session(env, *args):
    with open(env.log, "a") as errlog:
        async with stdio_client(env.params("--log-level", "info", *args), errlog=errlog) as (r, w):
            async with ClientSession(r, w) as s:
                await s.initialize()
                yield s


async def call_ok(s, name, args=None):
    res = await s.call_tool(name, args or {})
    assert not res.isError, "%s(%s) failed: %s" % (name, args, res.content[0].text if res.content else res)
    assert res.structuredContent is not None
    # The text content is the same JSON, for clients that show only text.
    assert json.loads(res.content[0].text) == res.structuredContent
    return res.structuredContent


async def call_err(s, name, args=None):
    res = await s.call_tool(name, args or {})
    assert res.isError, "%s(%s) should have failed: %s" % (name, args, res.structuredContent)
    text = res.content[0].text
    return (res.structuredContent or {}).get("error"), text


# ---------------------------------------------------------------------------
# stdio


def test_tools_have_the_reference_names_and_schemas(server_env):
    async def main():
        async with stdio_session(server_env) as s:
            tools = {t.name: t for t in (await s.list_tools()).tools}
            assert set(tools) == EXPECTED_TOOLS
            assert "snapshot" not in tools and "fork" not in tools
            for t in tools.values():
                assert t.description and len(t.description) > 30, t.name
                assert t.inputSchema["type"] == "object"
            props = lambda n: set(tools[n].inputSchema["properties"])  # noqa: E731
            assert {"sandbox_id", "command", "argv", "timeout_ms", "env", "cwd"} <= props("execute_command")
            assert {"sandbox_id", "code", "language", "timeout_ms", "env", "cwd"} <= props("execute_code")
            assert {"isolation_level", "timeout_ms", "memory_limit_mb"} <= props("create_sandbox")
            for n in ("read_file", "write_file", "list_dir", "make_dir", "stat", "remove_file"):
                assert {"sandbox_id", "path"} <= props(n), n
                assert "sandbox_id" in tools[n].inputSchema["required"], n
            assert "sandbox_id" not in tools["execute_command"].inputSchema.get("required", [])
            assert tools["read_file"].annotations.readOnlyHint is True
            assert tools["destroy_sandbox"].annotations.destructiveHint is True
    run(main)


def test_every_tool_end_to_end(server_env):
    async def main():
        async with stdio_session(server_env) as s:
            made = await call_ok(s, "create_sandbox", {"isolation_level": "os", "timeout_ms": 20000,
                                                        "memory_limit_mb": 256, "env": {"GREETING": "hi"}})
            sid = made["sandbox_id"]
            assert re.fullmatch(r"[0-9a-f]{16}", sid) and made["isolation"] == "os"
            assert os.path.isdir(os.path.join(server_env.state, sid)) or sandbox_dirs(server_env.state)

            listed = await call_ok(s, "list_sandboxes")
            assert [x["sandbox_id"] for x in listed["sandboxes"]] == [sid]

            r = await call_ok(s, "execute_command", {"sandbox_id": sid, "command": "sh -c 'echo $GREETING $X; pwd'",
                                                     "env": {"X": "there"}, "cwd": "/tmp"})
            assert r["stdout"] == "hi there\n/tmp\n" and r["exit_code"] == 0 and not r["one_off"]
            r = await call_ok(s, "execute_command", {"sandbox_id": sid, "argv": ["cat"], "stdin": "from stdin"})
            assert r["stdout"] == "from stdin"
            r = await call_ok(s, "execute_command", {"sandbox_id": sid, "argv": ["sh", "-c", "echo err >&2; exit 3"]})
            assert r["exit_code"] == 3 and r["stderr"] == "err\n"  # a failing program is a result, not an error

            r = await call_ok(s, "execute_code", {"sandbox_id": sid, "code": "import os; print(6*7, os.environ['Y'])",
                                                  "env": {"Y": "y"}})
            assert r["stdout"] == "42 y\n"
            r = await call_ok(s, "execute_code", {"sandbox_id": sid, "language": "sh",
                                                  "code": "for i in 1 2 3; do printf $i; done | tr 123 abc"})
            assert r["stdout"] == "abc"

            w = await call_ok(s, "write_file", {"sandbox_id": sid, "path": "notes/a.txt", "content": "héllo\n",
                                                "parents": True})
            assert w["size"] == len("héllo\n".encode())
            r = await call_ok(s, "read_file", {"sandbox_id": sid, "path": "/workspace/notes/a.txt"})
            assert (r["content"], r["encoding"], r["truncated"]) == ("héllo\n", "utf-8", False)
            blob = bytes(range(256))
            await call_ok(s, "write_file", {"sandbox_id": sid, "path": "b.bin", "encoding": "base64",
                                            "content": base64.b64encode(blob).decode(), "mode": 0o600})
            r = await call_ok(s, "read_file", {"sandbox_id": sid, "path": "b.bin"})
            assert r["encoding"] == "base64" and base64.b64decode(r["content"]) == blob and r["size"] == 256
            st = await call_ok(s, "stat", {"sandbox_id": sid, "path": "b.bin"})
            assert st["type"] == "file" and st["size"] == 256 and st["mode"] & 0o777 == 0o600

            await call_ok(s, "make_dir", {"sandbox_id": sid, "path": "x/y", "parents": True})
            await call_ok(s, "rename", {"sandbox_id": sid, "src": "b.bin", "dst": "x/y/c.bin"})
            ls = await call_ok(s, "list_dir", {"sandbox_id": sid, "path": "x/y"})
            assert [(e["name"], e["type"], e["size"]) for e in ls["entries"]] == [("c.bin", "file", 256)]
            ls = await call_ok(s, "list_dir", {"sandbox_id": sid, "path": "/workspace"})
            assert {e["name"]: e["type"] for e in ls["entries"]} == {"notes": "dir", "x": "dir"}
            await call_ok(s, "remove_file", {"sandbox_id": sid, "path": "x", "recursive": True})
            await call_ok(s, "remove_file", {"sandbox_id": sid, "path": "notes/a.txt"})
            ls = await call_ok(s, "list_dir", {"sandbox_id": sid, "path": "/workspace"})
            assert [e["name"] for e in ls["entries"]] == ["notes"]

            # The sandbox's network policy is deny: the request is refused,
            # as a tool error that says why.
            err, text = await call_err(s, "http_request", {"sandbox_id": sid, "url": "http://example.invalid/"})
            assert err["code"] == "denied" and "denies" in err["message"], text

            d = await call_ok(s, "destroy_sandbox", {"sandbox_id": sid})
            assert d == {"sandbox_id": sid, "destroyed": True}
            assert wait_until(lambda: not sandbox_dirs(server_env.state), 10)
            assert (await call_ok(s, "list_sandboxes"))["sandboxes"] == []
            err, _ = await call_err(s, "execute_command", {"sandbox_id": sid, "command": "true"})
            assert err["code"] == "not_found"
    run(main)


def test_calls_on_one_sandbox_run_side_by_side(server_env):
    async def body():
        async with stdio_session(server_env) as s:
            sid = (await call_ok(s, "create_sandbox"))["sandbox_id"]
            done = []

            async def slow():
                r = await call_ok(s, "execute_command", {"sandbox_id": sid, "argv": ["sleep", "5"]})
                done.append(("slow", r["exit_code"]))

            async with anyio.create_task_group() as tg:
                tg.start_soon(slow)
                await anyio.sleep(0.5)
                # While the sleep runs, the same sandbox answers: an execute
                # and the file tools.
                r = await call_ok(s, "execute_command", {"sandbox_id": sid, "argv": ["echo", "beside"]})
                done.append(("execute", r["stdout"]))
                await call_ok(s, "write_file", {"sandbox_id": sid, "path": "/workspace/f", "content": "x"})
                r = await call_ok(s, "read_file", {"sandbox_id": sid, "path": "/workspace/f"})
                done.append(("files", r["content"]))
                assert [d[0] for d in done] == ["execute", "files"], done
            assert done == [("execute", "beside\n"), ("files", "x"), ("slow", 0)], done

            # A destroy while a call runs kills that call's program: the
            # destroy does not wait for it, the call ends killed.
            res = {}

            async def long():
                res["r"] = await s.call_tool("execute_command", {"sandbox_id": sid, "argv": ["sleep", "120"]})

            async with anyio.create_task_group() as tg:
                tg.start_soon(long)
                await anyio.sleep(0.5)
                started = time.monotonic()
                await call_ok(s, "destroy_sandbox", {"sandbox_id": sid})
                took = time.monotonic() - started
            assert took < 60, took
            r = res["r"]
            if r.isError:
                assert r.structuredContent["error"]["code"] == "not_found", r.structuredContent
            else:
                assert r.structuredContent["signal"] == 9, r.structuredContent
            assert (await call_ok(s, "list_sandboxes"))["sandboxes"] == []

    run(body)


def test_one_off_sandbox_when_no_id(server_env):
    async def main():
        async with stdio_session(server_env) as s:
            r = await call_ok(s, "execute_command", {"command": "sh -c 'echo one > f; cat f'"})
            assert r["stdout"] == "one\n" and r["one_off"] and r["sandbox_id"] is None
            assert not sandbox_dirs(server_env.state)  # destroyed right after the call
            r = await call_ok(s, "execute_command", {"command": "ls /workspace"})
            assert r["stdout"] == ""  # nothing kept from the call before
            r = await call_ok(s, "execute_code", {"code": "print('py')", "language": "python", "timeout_ms": 20000})
            assert r["stdout"] == "py\n" and r["one_off"]
            r = await call_ok(s, "execute_command", {"argv": ["sleep", "30"], "timeout_ms": 300})
            assert r["timed_out"] and r["exit_code"] is None
            assert (await call_ok(s, "list_sandboxes"))["sandboxes"] == []
            assert not sandbox_dirs(server_env.state)
    run(main)


def test_wasm_sandbox(server_env):
    """The wasm backend cannot spawn: executes there take the plain path."""
    import mimobox
    from wasm_modules import CAT, HELLO

    ok, why = mimobox.backend_available("wasm")
    if not ok:
        if os.environ.get("MBX_TEST_MUST_WORK") == "1":
            pytest.fail("the wasm backend is unavailable: %s" % why)
        pytest.skip("the wasm backend is unavailable: %s" % why)

    async def main():
        async with stdio_session(server_env) as s:
            made = await call_ok(s, "create_sandbox", {"isolation_level": "wasm"})
            sid = made["sandbox_id"]
            assert made["isolation"] == "wasm"
            await call_ok(s, "write_file", {"sandbox_id": sid, "path": "hello.wat", "content": HELLO})
            await call_ok(s, "write_file", {"sandbox_id": sid, "path": "cat.wat", "content": CAT})
            r = await call_ok(s, "execute_command", {"sandbox_id": sid, "command": "/workspace/hello.wat"})
            assert (r["exit_code"], r["stdout"], r["stderr"], r["isolation"]) == \
                (7, "hello from wasm\n", "to stderr\n", "wasm")
            r = await call_ok(s, "execute_command", {"sandbox_id": sid, "argv": ["/workspace/cat.wat"], "stdin": "piped"})
            assert r["stdout"] == "piped"
            err, text = await call_err(s, "execute_code", {"sandbox_id": sid, "code": "print(1)"})
            assert err["code"], text
    run(main)


def test_bad_calls_are_tool_errors_and_the_server_lives_on(server_env):
    async def main():
        async with stdio_session(server_env) as s:
            sid = (await call_ok(s, "create_sandbox"))["sandbox_id"]
            bad = [
                ("no_such_tool", {}, "unknown_tool"),
                ("execute_command", {}, "invalid_argument"),  # neither command nor argv
                ("execute_command", {"command": "true", "argv": ["true"]}, "invalid_argument"),
                ("execute_command", {"command": 5}, "invalid_argument"),
                ("execute_command", {"command": "true", "bogus": 1}, "invalid_argument"),
                ("execute_command", {"command": "true", "timeout_ms": -5}, "invalid_argument"),
                ("execute_code", {"code": "x", "language": "cobol"}, "invalid_argument"),
                ("read_file", {"path": "a"}, "invalid_argument"),  # sandbox_id missing
                ("read_file", {"sandbox_id": "0123456789abcdef", "path": "a"}, "not_found"),
                ("read_file", {"sandbox_id": sid, "path": "/workspace/missing"}, "not_found"),
                ("write_file", {"sandbox_id": sid, "path": "a", "content": "!!", "encoding": "base64"},
                 "invalid_argument"),
                ("list_dir", {"sandbox_id": sid, "path": "/no/such/dir"}, "not_found"),
                ("execute_command", {"sandbox_id": sid, "command": "no-such-program-here"}, "not_found"),
                ("create_sandbox", {"isolation_level": "microvm", "network": "all"}, None),
                ("create_sandbox", {"memory_limit_mb": "lots"}, "invalid_argument"),
                ("destroy_sandbox", {"sandbox_id": "nope"}, "not_found"),
            ]
            for name, args, code in bad:
                err, text = await call_err(s, name, args)
                assert err and err["message"] and text.startswith("error ("), (name, args, text)
                if code:
                    assert err["code"] == code, (name, args, text)
            # A microVM has no network interface to allow everything on (or,
            # on a host without it, no microvm backend): the library's own
            # error, with its suggestion, comes through.
            err, text = await call_err(s, "create_sandbox", {"isolation_level": "microvm", "network": "all"})
            assert ("network" in err["message"] or "microvm" in err["message"]) and err["suggestion"], text
            r = await call_ok(s, "execute_command", {"sandbox_id": sid, "argv": ["echo", "alive"]})
            assert r["stdout"] == "alive\n"
            assert [x["sandbox_id"] for x in (await call_ok(s, "list_sandboxes"))["sandboxes"]] == [sid]
    run(main)


def test_long_output_is_cut_with_a_marker(server_env):
    async def main():
        async with stdio_session(server_env, "--max-output-bytes", "1000") as s:
            r = await call_ok(s, "execute_code", {"code": "import sys; sys.stdout.write('a'*5000); "
                                                          "sys.stderr.write('b'*999)"})
            assert r["stdout"] == "a" * 1000 + "\n[... truncated 4000 bytes ...]"
            assert r["stdout_truncated"] is True
            assert r["stderr"] == "b" * 999 and r["stderr_truncated"] is False
            # The cut does not split a character: 'a' and 499 'é' are kept
            # (999 bytes), the rest is counted.
            r = await call_ok(s, "execute_code", {"code": "print('a' + 'é' * 600, end='')"})
            assert r["stdout"] == "a" + "é" * 499 + "\n[... truncated 202 bytes ...]"
            sid = (await call_ok(s, "create_sandbox"))["sandbox_id"]
            await call_ok(s, "write_file", {"sandbox_id": sid, "path": "big", "content": "z" * 3000})
            f = await call_ok(s, "read_file", {"sandbox_id": sid, "path": "big"})
            assert f["content"] == "z" * 1000 + "\n[... truncated 2000 bytes ...]"
            assert f["truncated"] and f["size"] == 3000
    run(main)


def test_session_quotas(server_env):
    async def main():
        async with stdio_session(server_env, "--max-sandboxes", "2", "--max-exec-seconds", "2") as s:
            a = (await call_ok(s, "create_sandbox"))["sandbox_id"]
            b = (await call_ok(s, "create_sandbox"))["sandbox_id"]
            err, text = await call_err(s, "create_sandbox")
            assert err["code"] == "quota_exceeded" and "destroy_sandbox" in err["suggestion"], text
            err, _ = await call_err(s, "execute_command", {"command": "true"})  # a one-off is a sandbox too
            assert err["code"] == "quota_exceeded"
            await call_ok(s, "destroy_sandbox", {"sandbox_id": b})
            b = (await call_ok(s, "create_sandbox"))["sandbox_id"]
            # 2 s of execution per session: a longer call is cut at what is
            # left, and the next one is refused.
            r = await call_ok(s, "execute_command", {"sandbox_id": a, "argv": ["sleep", "20"], "timeout_ms": 20000})
            assert r["timed_out"]
            err, text = await call_err(s, "execute_code", {"sandbox_id": b, "code": "print(1)"})
            assert err["code"] == "quota_exceeded", text
            q = (await call_ok(s, "list_sandboxes"))["quota"]
            assert q["exec_seconds_used"] >= 2 and q["max_sandboxes"] == 2
            # Files still work: only execution time is spent.
            await call_ok(s, "write_file", {"sandbox_id": a, "path": "f", "content": "ok"})
    run(main)


def test_a_client_that_leaves_mid_call_leaves_nothing(server_env):
    arg = "1000.%06d" % secrets.randbelow(10 ** 6)

    async def main():
        async with stdio_session(server_env) as s:
            a = (await call_ok(s, "create_sandbox"))["sandbox_id"]
            await call_ok(s, "create_sandbox")
            await call_ok(s, "write_file", {"sandbox_id": a, "path": "f", "content": "x"})
            assert len(sandbox_dirs(server_env.state)) == 2
            async with anyio.create_task_group() as tg:
                tg.start_soon(s.call_tool, "execute_command",
                              {"sandbox_id": a, "argv": ["sleep", arg], "timeout_ms": 600000})
                tg.start_soon(s.call_tool, "execute_command", {"argv": ["sleep", arg], "timeout_ms": 600000})
                with anyio.fail_after(20):
                    while len(procs_with_arg(arg)) < 2:
                        await anyio.sleep(0.05)
                assert len(sandbox_dirs(server_env.state)) == 3
                tg.cancel_scope.cancel()
        # The client is gone (stdin closed): the server destroys everything.

    t = time.monotonic()
    run(main)
    took = time.monotonic() - t
    assert wait_until(lambda: not procs_with_arg(arg), 10), procs_with_arg(arg)
    assert wait_until(lambda: not sandbox_dirs(server_env.state), 10), sandbox_dirs(server_env.state)
    log = server_env.log_text()
    # It did so itself on end of input, before the client's SIGTERM (2 s).
    assert "session ended: 2 sandbox(es) destroyed" in log, log
    assert took < 60


def test_sigterm_destroys_the_sandboxes(server_env):
    """A server stopped by a signal while its client is still there cleans up
    too (the stdio client is driven by hand here, to send the signal)."""
    proc = subprocess.Popen([sys.executable, "-m", "mimobox.mcp", "--log-level", "info"], cwd=str(PYDIR),
                            env=server_env.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=open(server_env.log, "a"))
    try:
        def send(msg):
            proc.stdin.write((json.dumps(msg) + "\n").encode())
            proc.stdin.flush()

        def recv():
            return json.loads(proc.stdout.readline())

        send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                         "clientInfo": {"name": "t", "version": "1"}}})
        assert recv()["id"] == 1
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        for i in (2, 3):
            send({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                  "params": {"name": "create_sandbox", "arguments": {}}})
            assert not recv()["result"]["isError"]
        assert len(sandbox_dirs(server_env.state)) == 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not sandbox_dirs(server_env.state)
    assert "session ended: 2 sandbox(es) destroyed" in server_env.log_text()


# ---------------------------------------------------------------------------
# Streamable HTTP


class HttpServer:
    def __init__(self, env, token_file, *args):
        self.env = env
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mimobox.mcp", "--http", "--port", "0", "--token-file", token_file,
             "--log-level", "info", *args],
            cwd=str(PYDIR), env=env.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        self.lines = []
        deadline = time.monotonic() + 60
        self.url = None
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline().decode()
            if not line:
                break
            self.lines.append(line)
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                self.url = m.group(1)
                break
        assert self.url, "the server did not start: %s" % "".join(self.lines)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        else:
            rc = self.proc.returncode
        self.lines.append(self.proc.stderr.read().decode())
        self.proc.stderr.close()
        return rc

    def log(self):
        return "".join(self.lines)


def _flatten(exc):
    """The text of an exception and of every exception inside it."""
    parts = [repr(exc)]
    for sub in getattr(exc, "exceptions", ()):
        parts.append(_flatten(sub))
    if exc.__cause__ is not None:
        parts.append(_flatten(exc.__cause__))
    return " | ".join(parts)


@contextlib.asynccontextmanager
async def http_session_streams(url, token, terminate_on_close=True):
    headers = {"Authorization": "Bearer " + token} if token else None
    async with create_mcp_http_client(headers=headers) as client:
        async with streamable_http_client(url, http_client=client, terminate_on_close=terminate_on_close) as streams:
            yield streams


@pytest.fixture
def token_file(base):
    return os.path.join(base, "token-%s" % secrets.token_hex(4))


def test_http_needs_the_token_and_serves_loopback_only(server_env, token_file):
    srv = HttpServer(server_env, token_file)
    try:
        st = os.stat(token_file)
        assert stat.S_IMODE(st.st_mode) == 0o600
        token = open(token_file).read().strip()
        assert len(token) >= 32
        assert srv.url.startswith("http://127.0.0.1:") and srv.url.endswith("/mcp")
        port = int(srv.url.split(":")[2].split("/")[0])
        # Bound to 127.0.0.1 only: the port is not open on other addresses.
        with open("/proc/net/tcp") as f:
            listening = [ln.split()[1] for ln in f.read().splitlines()[1:] if ln.split()[3] == "0A"]
        ours = [a for a in listening if int(a.split(":")[1], 16) == port]
        assert ours == ["0100007F:%04X" % port], ours

        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                           "clientInfo": {"name": "t", "version": "1"}}}
        hdrs = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        for auth in (None, "Bearer wrong-token-wrong-token-wrong", "Basic " + token, "Bearer " + token + "x",
                     token):
            h = dict(hdrs)
            if auth:
                h["Authorization"] = auth
            r = httpx.post(srv.url, json=init, headers=h, timeout=30)
            assert r.status_code == 401, (auth, r.status_code, r.text)
            assert r.headers["www-authenticate"].startswith("Bearer")

        # The official client without the token is turned away...
        async def no_token():
            async with http_session_streams(srv.url, None) as (r, w, _):
                async with ClientSession(r, w) as s:
                    with anyio.fail_after(30):
                        await s.initialize()

        with pytest.raises(BaseException) as info:
            run(no_token)
        assert "401" in _flatten(info.value), _flatten(info.value)

        # ...and with it, served.
        async def with_token():
            async with http_session_streams(srv.url, token) as (r, w, _):
                async with ClientSession(r, w) as s:
                    await s.initialize()
                    names = {t.name for t in (await s.list_tools()).tools}
                    assert names == EXPECTED_TOOLS
                    sid = (await call_ok(s, "create_sandbox"))["sandbox_id"]
                    out = await call_ok(s, "execute_command", {"sandbox_id": sid, "argv": ["echo", "over http"]})
                    assert out["stdout"] == "over http\n"
                    err, _ = await call_err(s, "read_file", {"sandbox_id": sid, "path": "nope"})
                    assert err["code"] == "not_found"
                    assert len(sandbox_dirs(server_env.state)) == 1
            # The client ended its session (DELETE): its sandbox goes, the
            # server stays.

        run(with_token)
        assert wait_until(lambda: not sandbox_dirs(server_env.state), 15), srv.log()
        assert srv.proc.poll() is None
        # A wrong Host header (DNS rebinding) is refused even with the token.
        r = httpx.post(srv.url, json=init, timeout=30,
                       headers=dict(hdrs, Authorization="Bearer " + token, Host="evil.invalid"))
        assert r.status_code in (400, 403, 421), r.status_code
    finally:
        rc = srv.stop()
    assert rc == 0, srv.log()
    assert token not in srv.log()  # the token is never logged


def test_http_sessions_are_apart_and_a_stopped_server_cleans_up(server_env, token_file):
    srv = HttpServer(server_env, token_file)
    token = open(token_file).read().strip()
    stopped = False
    try:
        async def main():
            async with http_session_streams(srv.url, token, terminate_on_close=False) as (r1, w1, _):
                async with ClientSession(r1, w1) as s1:
                    await s1.initialize()
                    sid = (await call_ok(s1, "create_sandbox"))["sandbox_id"]
                    async with http_session_streams(srv.url, token) as (r2, w2, _):
                        async with ClientSession(r2, w2) as s2:
                            await s2.initialize()
                            # Another session neither sees nor reaches it.
                            assert (await call_ok(s2, "list_sandboxes"))["sandboxes"] == []
                            err, _ = await call_err(s2, "destroy_sandbox", {"sandbox_id": sid})
                            assert err["code"] == "not_found"
                    assert [x["sandbox_id"] for x in (await call_ok(s1, "list_sandboxes"))["sandboxes"]] == [sid]
            # This client left without ending its session: the sandbox lives
            # until the server stops.
        run(main)
        assert len(sandbox_dirs(server_env.state)) == 1
        rc = srv.stop()
        stopped = True
        assert rc == 0, srv.log()
        assert not sandbox_dirs(server_env.state), srv.log()
    finally:
        if not stopped:
            srv.stop()


def test_http_refuses_a_token_file_others_can_read(server_env, token_file):
    with open(token_file, "w") as f:
        f.write(secrets.token_urlsafe(32) + "\n")
    os.chmod(token_file, 0o644)
    r = subprocess.run([sys.executable, "-m", "mimobox.mcp", "--http", "--port", "0", "--token-file", token_file],
                       cwd=str(PYDIR), env=server_env.env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "can be read by others" in r.stderr and "chmod 600" in r.stderr
    r = subprocess.run([sys.executable, "-m", "mimobox.mcp", "--http"], cwd=str(PYDIR), env=server_env.env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--token-file" in r.stderr


# ---------------------------------------------------------------------------
# The console script


def test_the_mimobox_mcp_console_script(server_env, base):
    """The wheel of python/ carries the `mcp` extra and the `mimobox-mcp`
    script, and the installed script, started as the README's client
    configuration says, serves MCP over stdio."""
    work = tempfile.mkdtemp(prefix="wheel-", dir=base)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "--no-index", "-w", work, str(PYDIR)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    wheel = [f for f in os.listdir(work) if f.endswith(".whl")][0]
    import zipfile
    with zipfile.ZipFile(os.path.join(work, wheel)) as z:
        names = z.namelist()
        info = [n for n in names if n.endswith(".dist-info/METADATA")][0].rsplit("/", 1)[0]
        meta = z.read(info + "/METADATA").decode()
        entry = z.read(info + "/entry_points.txt").decode()
    assert "mimobox/mcp/__main__.py" in names and "mimobox/mcp/server.py" in names
    assert "Provides-Extra: mcp" in meta and 'Requires-Dist: mcp==1.30.0 ; extra == "mcp"' in meta
    assert "[console_scripts]\nmimobox-mcp = mimobox.mcp.__main__:main\n" in entry
    target = os.path.join(work, "site")
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", target,
                        os.path.join(work, wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    # The client configuration of the README, as a client would run it.
    readme = (PYDIR.parent / "README.md").read_text()
    m = re.search(r"<!-- readme-example: mcp-config -->\n```json\n(.*?)```\n", readme, re.S)
    assert m, "README.md lacks the MCP client configuration"
    config = json.loads(m.group(1))["mcpServers"]["mimobox"]
    assert config["command"] == "mimobox-mcp"
    env = dict(server_env.env, PYTHONPATH=target, PATH=os.path.join(target, "bin") + ":" + server_env.env["PATH"])
    script = shutil.which(config["command"], path=env["PATH"])
    assert script == os.path.join(target, "bin", "mimobox-mcp")
    r = subprocess.run([script, "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--token-file" in r.stdout, r.stderr

    async def main():
        params = StdioServerParameters(command=script, args=config["args"], env=env, cwd="/")
        with open(server_env.log, "a") as errlog:
            async with stdio_client(params, errlog=errlog) as (rd, wr):
                async with ClientSession(rd, wr) as s:
                    await s.initialize()
                    out = await call_ok(s, "execute_code", {"code": "import sys; print(sys.argv)"})
                    assert out["stdout"] == "['-c']\n"
                    found = await call_ok(s, "execute_command", {"argv": ["true"]})
                    assert found["exit_code"] == 0

    run(main)
    # It ran the installed package, not this checkout's.
    r = subprocess.run([sys.executable, "-c", "import mimobox.mcp, sys; print(mimobox.mcp.__file__)"], env=env,
                       cwd="/", capture_output=True, text=True, timeout=60)
    assert r.stdout.startswith(target), r.stdout + r.stderr
