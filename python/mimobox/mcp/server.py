# SPDX-License-Identifier: Apache-2.0
"""The mimobox MCP server: sandboxes as MCP tools, one set per session.

Built on the official MCP Python SDK's low-level server. Each MCP session
(a stdio connection, or one Streamable HTTP session) has its own sandboxes
and quotas; when the session ends, by the client leaving or by the server
stopping, every sandbox it made is destroyed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import json
import logging
import threading
import time
from typing import Any, AsyncIterator

import anyio
import anyio.to_thread
from mcp import types
from mcp.server.lowlevel import Server

import mimobox

from .tools import TOOLS

log = logging.getLogger("mimobox.mcp")

INSTRUCTIONS = (
    "mimobox runs commands and code in isolated Linux sandboxes. For a single "
    "command or snippet call execute_command or execute_code without a "
    "sandbox_id (a one-off sandbox). To keep files or state across calls, "
    "create_sandbox first, pass its sandbox_id to the other tools, and "
    "destroy_sandbox when done. Sandboxes have no network unless created with "
    "one. Output longer than the session's limit is cut with a "
    "'[... truncated N bytes ...]' marker."
)

#: Longest single call the server accepts, whatever the quota says.
MAX_CALL_TIMEOUT_MS = 3_600_000
#: Largest file write_file accepts (after decoding).
MAX_WRITE_BYTES = 16 * 1024 * 1024
#: Most entries list_dir returns.
MAX_DIR_ENTRIES = 1000

_LANGUAGES = {
    "python3": "python3",
    "python": "python3",
    "node": "node",
    "javascript": "node",
    "js": "node",
    "bash": "bash",
    "sh": "sh",
}


@dataclasses.dataclass(frozen=True)
class Limits:
    """Per-session quotas of the server."""

    max_sandboxes: int = 8
    """Sandboxes alive at once in one session, one-off sandboxes included."""
    max_exec_seconds: float = 600.0
    """Total wall-clock seconds of execute_command/execute_code per session."""
    max_output_bytes: int = 65536
    """Bytes kept of each output stream, file read or HTTP body."""
    default_timeout_ms: int = 30_000
    """Timeout of a call that gives none, in a sandbox made without one."""


class ToolError(Exception):
    """An error the server reports as a tool error, in the SDK's shape."""

    def __init__(self, code: str, message: str, suggestion: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.suggestion = suggestion


@dataclasses.dataclass
class _Entry:
    sandbox: Any
    isolation: str
    created: float
    timeout_ms: int | None


class Session:
    """The sandboxes and quota use of one MCP session."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.sandboxes: dict[str, _Entry] = {}
        self.one_offs = 0
        self.exec_seconds = 0.0
        self.closed = False
        self._mutex = threading.Lock()
        self._idle = threading.Condition(self._mutex)
        #: Set when the session ends: running programs are killed.
        self.closing = threading.Event()

    # -- quotas ---------------------------------------------------------

    def _reserve_slot(self) -> None:
        with self._mutex:
            if self.closed:
                raise ToolError("session_closed", "the session is ending", None)
            if len(self.sandboxes) + self.one_offs >= self.limits.max_sandboxes:
                raise ToolError(
                    "quota_exceeded",
                    f"this session already has {self.limits.max_sandboxes} sandboxes, its limit",
                    "destroy_sandbox one you no longer need (list_sandboxes shows them)",
                )
            self.one_offs += 1

    def _release_slot(self) -> None:
        with self._mutex:
            self.one_offs -= 1
            self._idle.notify_all()

    def _call_timeout_ms(self, requested: int | None, entry: _Entry | None) -> int:
        remaining_ms = int((self.limits.max_exec_seconds - self.exec_seconds) * 1000)
        if remaining_ms <= 0:
            raise ToolError(
                "quota_exceeded",
                f"this session has used its {self.limits.max_exec_seconds:g} s of execution time",
                "start a new session to run more",
            )
        if requested is None:
            requested = entry.timeout_ms if entry and entry.timeout_ms else self.limits.default_timeout_ms
        return max(1, min(requested, remaining_ms, MAX_CALL_TIMEOUT_MS))

    def _charge(self, seconds: float) -> None:
        with self._mutex:
            self.exec_seconds += seconds

    # -- sandboxes ------------------------------------------------------

    def _entry(self, sandbox_id: str) -> _Entry:
        entry = self.sandboxes.get(sandbox_id)
        if entry is None:
            raise ToolError(
                "not_found",
                f"no sandbox {sandbox_id!r} in this session",
                "use a sandbox_id returned by create_sandbox in this session (list_sandboxes shows them)",
            )
        return entry

    def _make(self, options: dict) -> Any:
        """Creates a sandbox in a slot reserved by the caller."""
        return mimobox.Sandbox(**options)

    def create(self, args: dict) -> dict:
        options: dict[str, Any] = {}
        isolation = args.get("isolation_level", "auto")
        options["isolation"] = isolation
        if "trust" in args:
            options["trust"] = args["trust"]
        timeout_ms = args.get("timeout_ms")
        if timeout_ms is not None:
            timeout_ms = min(timeout_ms, MAX_CALL_TIMEOUT_MS)
            options["timeout"] = timeout_ms / 1000
        for ours, theirs in (
            ("memory_limit_mb", "memory_mb"),
            ("disk_mb", "disk_mb"),
            ("cpus", "cpus"),
            ("max_processes", "max_processes"),
            ("network", "network"),
            ("env", "env"),
            ("workdir", "workdir"),
        ):
            if ours in args:
                options[theirs] = args[ours]
        self._reserve_slot()
        try:
            sandbox = self._make(options)
        except BaseException:
            self._release_slot()
            raise
        with self._mutex:
            self.one_offs -= 1
            self._idle.notify_all()
            closed = self.closed
            if not closed:
                entry = _Entry(sandbox, isolation, time.time(), timeout_ms)
                self.sandboxes[sandbox.id] = entry
        if closed:
            sandbox.close()
            raise ToolError("session_closed", "the session is ending", None)
        return {"sandbox_id": sandbox.id, "isolation": _isolation_of(sandbox, isolation)}

    def destroy(self, sandbox_id: str) -> dict:
        with self._mutex:
            entry = self._entry(sandbox_id)
            del self.sandboxes[sandbox_id]
        # Calls on it may be running (they are not serialised): close()
        # kills their programs and waits for them, which then end as killed.
        entry.sandbox.close()
        return {"sandbox_id": sandbox_id, "destroyed": True}

    def list(self) -> dict:
        now = time.time()
        with self._mutex:
            items = [
                {
                    "sandbox_id": sid,
                    "isolation": _isolation_of(e.sandbox, e.isolation),
                    "created_at": round(e.created, 3),
                    "uptime_ms": int((now - e.created) * 1000),
                }
                for sid, e in self.sandboxes.items()
            ]
        return {
            "sandboxes": items,
            "quota": {
                "max_sandboxes": self.limits.max_sandboxes,
                "exec_seconds_used": round(self.exec_seconds, 3),
                "max_exec_seconds": self.limits.max_exec_seconds,
                "max_output_bytes": self.limits.max_output_bytes,
            },
        }

    def run(self, sandbox_id: str | None, timeout_ms: int | None, call) -> Any:
        """Runs call(sandbox, timeout_seconds) in the named or a one-off sandbox,
        charging its wall time to the session."""
        if sandbox_id is not None:
            entry = self._entry(sandbox_id)
            timeout_ms = self._call_timeout_ms(timeout_ms, entry)
            start = time.monotonic()
            try:
                return self._on(sandbox_id, entry, lambda sb: call(sb, timeout_ms / 1000)), None
            finally:
                self._charge(time.monotonic() - start)
        timeout_ms = self._call_timeout_ms(timeout_ms, None)
        self._reserve_slot()
        try:
            sandbox = self._make({"timeout": timeout_ms / 1000})
            start = time.monotonic()
            try:
                return call(sandbox, timeout_ms / 1000), sandbox
            finally:
                self._charge(time.monotonic() - start)
                sandbox.close()
        finally:
            self._release_slot()

    def with_sandbox(self, sandbox_id: str, call) -> Any:
        return self._on(sandbox_id, self._entry(sandbox_id), call)

    def _on(self, sandbox_id: str, entry: _Entry, call) -> Any:
        """call(sandbox). Calls on one sandbox run side by side (the SDK's
        Sandbox is safe to share between threads); one that meets the
        sandbox closed under it by destroy_sandbox says so."""
        try:
            return call(entry.sandbox)
        except mimobox.SandboxStateError:
            if self.sandboxes.get(sandbox_id) is not entry:
                raise ToolError("not_found", f"sandbox {sandbox_id!r} was destroyed", None) from None
            raise

    def close_all(self) -> int:
        """Destroys every sandbox of the session, at once; returns how many."""
        self.closing.set()
        with self._mutex:
            self.closed = True
            entries = list(self.sandboxes.values())
            self.sandboxes.clear()
            # One-off sandboxes and sandboxes being made belong to calls that
            # are still running: they see `closing`, stop, and close them.
            self._idle.wait_for(lambda: self.one_offs == 0, timeout=60)

        def close(entry: _Entry) -> None:
            try:
                entry.sandbox.close()
            except Exception as exc:  # keep closing the others
                log.warning("closing sandbox %s: %s", getattr(entry.sandbox, "id", "?"), exc)

        threads = [threading.Thread(target=close, args=(e,), daemon=True) for e in entries]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return len(entries)


#: The interpreters of execute_code, as libmimobox's mbx_sandbox_exec_code runs them.
_INTERPRETERS = {"python3": ("python3", "-c"), "node": ("node", "-e"), "bash": ("bash", "-c"), "sh": ("sh", "-c")}
#: How often a waiting call looks whether its session ended.
_POLL_SECONDS = 0.2


def run_program(session: "Session", sb: Any, command: Any, timeout: float, env: dict | None,
                cwd: str | None, stdin: bytes | None, code: tuple[str, str] | None = None) -> Any:
    """Runs a program to its end like Sandbox.execute, but as a spawned
    process whose wait gives the sandbox back every few tenths of a second,
    so that a session ending mid-call kills the program at once instead of
    waiting for its timeout. The wasm backend cannot spawn: it executes."""
    if getattr(sb, "isolation", None) == "wasm":
        if code is not None:
            return sb.execute_code(code[1], language=code[0], timeout=timeout, env=env, cwd=cwd, stdin=stdin)
        return sb.execute(command, timeout=timeout, env=env, cwd=cwd, stdin=stdin)
    if code is not None:
        program, flag = _INTERPRETERS[code[0]]
        command = [program, flag, code[1]]
    try:
        proc = sb.spawn(command, timeout=timeout, env=env, cwd=cwd, stdin=stdin is not None)
    except mimobox.SandboxNotFoundError as exc:
        if code is not None and not getattr(exc, "suggestion", None):
            exc.suggestion = f"{command[0]} is not installed on the host, so the sandbox cannot see it"
        raise
    try:
        if stdin is not None:
            if stdin:
                proc.write(stdin)
            proc.close_stdin()
        while True:
            if session.closing.is_set():
                proc.kill()
                proc.wait(timeout=10)
                raise ToolError("session_closed", "the session ended while the program ran; it was killed")
            try:
                return proc.wait(timeout=_POLL_SECONDS)
            except mimobox.SandboxTimeoutError:
                continue  # still running: look at the session again
    finally:
        proc.close()


def _isolation_of(sandbox: Any, requested: str) -> str:
    value = getattr(sandbox, "isolation", None)
    if isinstance(value, str) and value:
        return value
    return requested


def utf8_head(data: bytes, limit: int) -> bytes:
    """The first limit bytes of data, less a UTF-8 sequence cut in two at
    the end."""
    head = data[:limit]
    for back in range(1, min(4, len(head)) + 1):
        byte = head[-back]
        if byte & 0xC0 == 0x80:  # a continuation byte: look further back
            continue
        if 0xC2 <= byte <= 0xF4:  # a lead byte: is its sequence whole?
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            if need > back:
                head = head[:-back]
        break
    return head


def truncate_text(data: bytes, limit: int) -> tuple[str, bool]:
    """Decodes data as UTF-8 (bad bytes replaced), keeping at most limit bytes
    of it and a marker saying how many were left out."""
    if len(data) <= limit:
        return data.decode("utf-8", errors="replace"), False
    head = utf8_head(data, limit)
    return f"{head.decode('utf-8', errors='replace')}\n[... truncated {len(data) - len(head)} bytes ...]", True


def _bytes_of(result: Any, name: str) -> bytes:
    raw = getattr(result, name + "_bytes", None)
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw)
    text = getattr(result, name, "") or ""
    return text.encode("utf-8", errors="replace")


def _execute_result(result: Any, limit: int, one_off: bool, sandbox_id: str | None) -> dict:
    stdout, out_cut = truncate_text(_bytes_of(result, "stdout"), limit)
    stderr, err_cut = truncate_text(_bytes_of(result, "stderr"), limit)
    return {
        "sandbox_id": sandbox_id,
        "one_off": one_off,
        "exit_code": result.exit_code,
        "signal": getattr(result, "signal", None),
        "timed_out": bool(getattr(result, "timed_out", False)),
        "oom_killed": bool(getattr(result, "oom_killed", False)),
        "elapsed_ms": getattr(result, "elapsed_ms", None),
        "stdout": stdout,
        "stderr": stderr,
        "isolation": getattr(result, "isolation", None),
        "stdout_truncated": out_cut or bool(getattr(result, "stdout_truncated", False)),
        "stderr_truncated": err_cut or bool(getattr(result, "stderr_truncated", False)),
    }


def _entry_dict(entry: Any) -> dict:
    out = {}
    for key in ("path", "name", "type", "size", "mode", "mtime"):
        if hasattr(entry, key):
            value = getattr(entry, key)
            if key == "type" and not isinstance(value, str):
                value = getattr(value, "value", str(value))
            out[key] = value
    return out


def _encode_content(data: bytes, encoding: str | None, limit: int) -> dict:
    truncated = len(data) > limit
    head = utf8_head(data, limit) if truncated else data
    if encoding is None:
        try:
            head.decode("utf-8")
            encoding = "utf-8"
        except UnicodeDecodeError:
            encoding = "base64"
    if encoding == "utf-8":
        content = head.decode("utf-8", errors="replace")
        if truncated:
            content += f"\n[... truncated {len(data) - len(head)} bytes ...]"
    else:
        content = base64.b64encode(data[:limit]).decode("ascii")
    return {"content": content, "encoding": encoding, "size": len(data), "truncated": truncated}


def _decode_content(args: dict) -> bytes:
    content = args["content"]
    if args.get("encoding", "utf-8") == "base64":
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ToolError("invalid_argument", f"content is not valid base64: {exc}",
                            "send the bytes base64-encoded, or text with encoding utf-8") from None
    else:
        data = content.encode("utf-8")
    if len(data) > MAX_WRITE_BYTES:
        raise ToolError("too_large", f"content is {len(data)} bytes, more than the {MAX_WRITE_BYTES} allowed",
                        "write the file in smaller pieces, or create it inside the sandbox")
    return data


def _language(value: str | None) -> str:
    lang = _LANGUAGES.get((value or "python3").lower())
    if lang is None:
        raise ToolError("invalid_argument", f"unsupported language {value!r}",
                        "use one of python3, node, bash, sh")
    return lang


def _check_command(args: dict) -> str | list[str]:
    has_cmd, has_argv = "command" in args, "argv" in args
    if has_cmd == has_argv:
        raise ToolError(
            "invalid_argument",
            "give exactly one of command (a command line) and argv (a list)",
            "e.g. {\"command\": \"ls -la\"} or {\"argv\": [\"ls\", \"-la\"]}",
        )
    return args["command"] if has_cmd else list(args["argv"])


class Handlers:
    """The blocking work of each tool, run in a worker thread."""

    def __init__(self, session: Session):
        self.s = session

    def create_sandbox(self, a: dict) -> dict:
        return self.s.create(a)

    def destroy_sandbox(self, a: dict) -> dict:
        return self.s.destroy(a["sandbox_id"])

    def list_sandboxes(self, a: dict) -> dict:
        return self.s.list()

    def execute_command(self, a: dict) -> dict:
        command = _check_command(a)
        stdin = a.get("stdin")
        sid = a.get("sandbox_id")

        def call(sb, timeout):
            return run_program(self.s, sb, command, timeout, a.get("env"), a.get("cwd"),
                               stdin.encode("utf-8") if stdin is not None else None)

        result, one_off = self.s.run(sid, a.get("timeout_ms"), call)
        return _execute_result(result, self.s.limits.max_output_bytes, one_off is not None, sid)

    def execute_code(self, a: dict) -> dict:
        language = _language(a.get("language"))
        sid = a.get("sandbox_id")

        stdin = a.get("stdin")

        def call(sb, timeout):
            return run_program(self.s, sb, None, timeout, a.get("env"), a.get("cwd"),
                               stdin.encode("utf-8") if stdin is not None else None,
                               code=(language, a["code"]))

        result, one_off = self.s.run(sid, a.get("timeout_ms"), call)
        return _execute_result(result, self.s.limits.max_output_bytes, one_off is not None, sid)

    def read_file(self, a: dict) -> dict:
        data = self.s.with_sandbox(a["sandbox_id"], lambda sb: sb.read_file(a["path"]))
        out = {"sandbox_id": a["sandbox_id"], "path": a["path"]}
        out.update(_encode_content(bytes(data), a.get("encoding"), self.s.limits.max_output_bytes))
        return out

    def write_file(self, a: dict) -> dict:
        data = _decode_content(a)
        kwargs: dict[str, Any] = {"parents": bool(a.get("parents", False))}
        if "mode" in a:
            kwargs["mode"] = a["mode"]
        self.s.with_sandbox(a["sandbox_id"], lambda sb: sb.write_file(a["path"], data, **kwargs))
        return {"sandbox_id": a["sandbox_id"], "path": a["path"], "size": len(data), "written": True}

    def list_dir(self, a: dict) -> dict:
        entries = self.s.with_sandbox(a["sandbox_id"], lambda sb: sb.files.list(a["path"]))
        entries = list(entries)
        kept = [_entry_dict(e) for e in entries[:MAX_DIR_ENTRIES]]
        out = {"sandbox_id": a["sandbox_id"], "path": a["path"], "entries": kept,
               "truncated": len(entries) > MAX_DIR_ENTRIES}
        if out["truncated"]:
            out["note"] = f"[... truncated {len(entries) - MAX_DIR_ENTRIES} entries ...]"
        return out

    def make_dir(self, a: dict) -> dict:
        parents = bool(a.get("parents", False))
        self.s.with_sandbox(a["sandbox_id"], lambda sb: sb.files.mkdir(a["path"], parents=parents))
        return {"sandbox_id": a["sandbox_id"], "path": a["path"], "created": True}

    def stat(self, a: dict) -> dict:
        st = self.s.with_sandbox(a["sandbox_id"], lambda sb: sb.files.stat(a["path"]))
        out = {"sandbox_id": a["sandbox_id"]}
        out.update(_entry_dict(st))
        out.setdefault("path", a["path"])
        return out

    def remove_file(self, a: dict) -> dict:
        recursive = bool(a.get("recursive", False))
        self.s.with_sandbox(a["sandbox_id"], lambda sb: sb.files.remove(a["path"], recursive=recursive))
        return {"sandbox_id": a["sandbox_id"], "path": a["path"], "removed": True}

    def rename(self, a: dict) -> dict:
        self.s.with_sandbox(a["sandbox_id"], lambda sb: sb.files.rename(a["src"], a["dst"]))
        return {"sandbox_id": a["sandbox_id"], "src": a["src"], "dst": a["dst"], "renamed": True}

    def http_request(self, a: dict) -> dict:
        body = a["body"].encode("utf-8") if "body" in a else None
        resp = self.s.with_sandbox(
            a["sandbox_id"],
            lambda sb: sb.http_request(a.get("method", "GET").upper(), a["url"],
                                       headers=a.get("headers"), body=body),
        )
        raw = resp.body if isinstance(resp.body, (bytes, bytearray)) else str(resp.body).encode("utf-8")
        enc = _encode_content(bytes(raw), None, self.s.limits.max_output_bytes)
        headers = resp.headers
        if not isinstance(headers, dict):
            headers = {k: v for k, v in headers}
        return {"sandbox_id": a["sandbox_id"], "status": resp.status, "headers": headers,
                "body": enc["content"], "body_encoding": enc["encoding"],
                "body_size": enc["size"], "truncated": enc["truncated"]}


def _error_result(code: str, message: str, suggestion: str | None) -> types.CallToolResult:
    text = f"error ({code}): {message}"
    if suggestion:
        text += f"\nsuggestion: {suggestion}"
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        structuredContent={"error": {"code": code, "message": message, "suggestion": suggestion}},
        isError=True,
    )


def _ok_result(data: dict) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(data, indent=1, ensure_ascii=False))],
        structuredContent=data,
        isError=False,
    )


def build_server(limits: Limits | None = None) -> Server:
    """Returns the MCP server; every run() of it is one session."""
    limits = limits or Limits()
    version = getattr(mimobox, "__version__", None)

    @contextlib.asynccontextmanager
    async def lifespan(_server: Server) -> AsyncIterator[Session]:
        session = Session(limits)
        log.info("session started")
        try:
            yield session
        finally:
            # Shielded: the session may be ending because it was cancelled.
            with anyio.CancelScope(shield=True):
                n = await anyio.to_thread.run_sync(session.close_all)
            log.info("session ended: %d sandbox(es) destroyed", n)

    server: Server = Server("mimobox", version=version, instructions=INSTRUCTIONS, lifespan=lifespan)

    @server.list_tools()
    async def list_tools() -> list[types.Tool]:
        return TOOLS

    # Input is checked here, against the same schemas, so that a bad call is a
    # tool error in the same shape as every other.
    @server.call_tool(validate_input=False)
    async def call_tool(name: str, arguments: dict) -> types.CallToolResult:
        import jsonschema

        tool = next((t for t in TOOLS if t.name == name), None)
        if tool is None:
            return _error_result("unknown_tool", f"there is no tool {name!r}",
                                 "call tools/list for the tools of this server")
        try:
            jsonschema.validate(arguments, tool.inputSchema)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path)
            return _error_result("invalid_argument",
                                 f"{name}: {where + ': ' if where else ''}{exc.message}",
                                 "see the tool's input schema in tools/list")
        session: Session = server.request_context.lifespan_context
        work = getattr(Handlers(session), name)
        try:
            # Abandoned when the session ends mid-call: the session's close
            # then stops the call's program (Session.closing).
            data = await anyio.to_thread.run_sync(work, arguments, abandon_on_cancel=True)
        except ToolError as exc:
            return _error_result(exc.code, exc.message, exc.suggestion)
        except mimobox.SandboxError as exc:
            return _error_result(getattr(exc, "code", "error") or "error",
                                 getattr(exc, "message", None) or str(exc),
                                 getattr(exc, "suggestion", None))
        except (TypeError, ValueError) as exc:
            return _error_result("invalid_argument", f"{name}: {exc}", None)
        except Exception as exc:  # the server never dies of a bad call
            log.exception("tool %s failed", name)
            return _error_result("internal", f"{name} failed: {type(exc).__name__}: {exc}", None)
        return _ok_result(data)

    return server
