# SPDX-License-Identifier: Apache-2.0
"""The tools of the mimobox MCP server: names, descriptions and input schemas.

The names and argument names are those of the reference mimobox MCP server
(``create_sandbox``, ``execute_command``, ``sandbox_id``, ``timeout_ms``,
...), so prompts and client configurations carry over. The descriptions are
written for the model that calls the tools.
"""

from __future__ import annotations

from mcp import types

_SANDBOX_ID = {
    "type": "string",
    "minLength": 1,
    "description": "The id that create_sandbox returned.",
}
_OPTIONAL_SANDBOX_ID = {
    "type": "string",
    "minLength": 1,
    "description": (
        "The id that create_sandbox returned. Leave it out to run in a fresh "
        "one-off sandbox (default settings, no network) that is destroyed "
        "right after the call: nothing is kept between such calls."
    ),
}
_TIMEOUT_MS = {
    "type": "integer",
    "minimum": 1,
    "description": (
        "Wall-clock limit of this call in milliseconds (default: the "
        "sandbox's timeout, else 30000). The program is killed when it "
        "runs out and the result says timed_out."
    ),
}
_ENV = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    "description": "Extra environment variables for this call only, NAME: value.",
}
_CWD = {
    "type": "string",
    "description": "Working directory inside the sandbox (default /workspace).",
}
_PATH = {
    "type": "string",
    "minLength": 1,
    "description": "Path inside the sandbox; relative paths are under /workspace.",
}


def _schema(properties: dict, required: list[str] | None = None) -> dict:
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def _tool(name: str, description: str, schema: dict, **hints) -> types.Tool:
    return types.Tool(
        name=name,
        description=description,
        inputSchema=schema,
        annotations=types.ToolAnnotations(**hints) if hints else None,
    )


_EXECUTE_RESULT = (
    " Returns JSON: stdout, stderr, exit_code (null when killed by a "
    "signal), signal, timed_out, oom_killed, elapsed_ms, and "
    "stdout_truncated/stderr_truncated. Long output is cut and ends with a "
    "line like '[... truncated N bytes ...]'; write big output to a file and "
    "read parts of it instead. A non-zero exit code is a normal result, not "
    "a tool error."
)

TOOLS: list[types.Tool] = [
    _tool(
        "create_sandbox",
        "Create a sandbox that lives on between calls: a fresh Linux "
        "environment with its own /workspace, isolated from the host, with no "
        "network unless asked. Use it when several calls must share files or "
        "state; pass the returned sandbox_id to the other tools and call "
        "destroy_sandbox when done (every sandbox is destroyed anyway when "
        "this session ends). Returns JSON with sandbox_id and isolation.",
        _schema(
            {
                "isolation_level": {
                    "type": "string",
                    "enum": ["auto", "os", "wasm", "microvm"],
                    "description": (
                        "Backend: auto (default: picks from the trust level), os "
                        "(Linux namespaces, runs ordinary programs), wasm "
                        "(WebAssembly programs only), microvm (a virtual machine; "
                        "unavailable in builds without it)."
                    ),
                },
                "trust": {
                    "type": "string",
                    "enum": ["trusted", "semi", "untrusted"],
                    "description": "How much the code to run is trusted (default semi).",
                },
                "timeout_ms": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Default wall-clock limit of each command in milliseconds.",
                },
                "memory_limit_mb": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Memory limit in MiB (default 512).",
                },
                "disk_mb": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Size limit in MiB of /workspace, /tmp and /dev/shm together.",
                },
                "cpus": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "description": "CPU quota, e.g. 0.5 (default: no quota).",
                },
                "max_processes": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Maximum number of processes (default 64).",
                },
                "network": {
                    "description": (
                        "Network policy: \"deny\" (default, loopback only), \"all\", "
                        "or a list of domain names that HTTP(S) may reach."
                    ),
                    "anyOf": [
                        {"type": "string", "enum": ["deny", "all"]},
                        {"type": "array", "items": {"type": "string", "minLength": 1}},
                    ],
                },
                "env": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "Environment variables of every command, NAME: value.",
                },
                "workdir": {
                    "type": "string",
                    "description": "Default working directory (default /workspace).",
                },
            }
        ),
    ),
    _tool(
        "destroy_sandbox",
        "Destroy a sandbox made by create_sandbox: its processes are killed "
        "and its files are gone. The sandbox_id is no longer valid after.",
        _schema({"sandbox_id": _SANDBOX_ID}, ["sandbox_id"]),
        destructiveHint=True,
        idempotentHint=False,
    ),
    _tool(
        "list_sandboxes",
        "List the sandboxes of this session that are still alive, with "
        "sandbox_id, isolation and age, and how much of the session's quotas "
        "(sandboxes, execution time) is used.",
        _schema({}),
        readOnlyHint=True,
    ),
    _tool(
        "execute_command",
        "Run one program in a sandbox. Give either `command`, a command line "
        "split with shell-like quoting (there is NO shell: pipes, redirection, "
        "&&, globs and $VARS are plain text; to use them run "
        "[\"sh\", \"-c\", \"...\"] as argv or use execute_code with language "
        "sh), or `argv`, the program and its arguments as a list."
        + _EXECUTE_RESULT,
        _schema(
            {
                "sandbox_id": _OPTIONAL_SANDBOX_ID,
                "command": {
                    "type": "string",
                    "minLength": 1,
                    "description": "Command line, e.g. \"ls -la /workspace\". Not run through a shell.",
                },
                "argv": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string"},
                    "description": "Program and arguments, e.g. [\"python3\", \"-c\", \"print(1)\"].",
                },
                "timeout_ms": _TIMEOUT_MS,
                "env": _ENV,
                "cwd": _CWD,
                "stdin": {
                    "type": "string",
                    "description": "Text given to the program on its standard input.",
                },
            }
        ),
    ),
    _tool(
        "execute_code",
        "Run a snippet of source code in a sandbox: python3 (default), node, "
        "bash or sh. Prefer this over execute_command for anything needing a "
        "shell (pipes, redirection, loops) or more than one line."
        + _EXECUTE_RESULT,
        _schema(
            {
                "sandbox_id": _OPTIONAL_SANDBOX_ID,
                "code": {"type": "string", "description": "The source code."},
                "language": {
                    "type": "string",
                    "enum": ["python3", "python", "node", "javascript", "js", "bash", "sh"],
                    "description": "Language of the code (default python3).",
                },
                "timeout_ms": _TIMEOUT_MS,
                "env": _ENV,
                "cwd": _CWD,
                "stdin": {
                    "type": "string",
                    "description": "Text given to the program on its standard input.",
                },
            },
            ["code"],
        ),
    ),
    _tool(
        "read_file",
        "Read a file of a sandbox. Returns JSON: content, encoding (\"utf-8\" "
        "for text, \"base64\" for binary data), size (the whole file's size in "
        "bytes) and truncated (true when content holds only the start of a "
        "file larger than the session's output limit).",
        _schema(
            {
                "sandbox_id": _SANDBOX_ID,
                "path": _PATH,
                "encoding": {
                    "type": "string",
                    "enum": ["utf-8", "base64"],
                    "description": "Force an encoding (default: utf-8 when the file is valid UTF-8, else base64).",
                },
            },
            ["sandbox_id", "path"],
        ),
        readOnlyHint=True,
    ),
    _tool(
        "write_file",
        "Write a file of a sandbox, replacing it if it exists. The content is "
        "text unless encoding is base64.",
        _schema(
            {
                "sandbox_id": _SANDBOX_ID,
                "path": _PATH,
                "content": {"type": "string", "description": "The file's content."},
                "encoding": {
                    "type": "string",
                    "enum": ["utf-8", "base64"],
                    "description": "How content is encoded (default utf-8 text).",
                },
                "mode": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 4095,
                    "description": "Permission bits as a number, e.g. 493 for 0755 (default 420, 0644).",
                },
                "parents": {
                    "type": "boolean",
                    "description": "Create missing parent directories (default false).",
                },
            },
            ["sandbox_id", "path", "content"],
        ),
        destructiveHint=True,
        idempotentHint=True,
    ),
    _tool(
        "list_dir",
        "List a directory of a sandbox. Returns JSON entries with name, type "
        "(file, dir, symlink, other), size, mode and mtime.",
        _schema({"sandbox_id": _SANDBOX_ID, "path": _PATH}, ["sandbox_id", "path"]),
        readOnlyHint=True,
    ),
    _tool(
        "make_dir",
        "Create a directory in a sandbox.",
        _schema(
            {
                "sandbox_id": _SANDBOX_ID,
                "path": _PATH,
                "parents": {
                    "type": "boolean",
                    "description": "Create missing parents too and accept an existing directory (default false).",
                },
            },
            ["sandbox_id", "path"],
        ),
        idempotentHint=False,
    ),
    _tool(
        "stat",
        "Show the metadata of a path in a sandbox: type, size, mode and mtime.",
        _schema({"sandbox_id": _SANDBOX_ID, "path": _PATH}, ["sandbox_id", "path"]),
        readOnlyHint=True,
    ),
    _tool(
        "remove_file",
        "Remove a file, or a directory with recursive true, in a sandbox.",
        _schema(
            {
                "sandbox_id": _SANDBOX_ID,
                "path": _PATH,
                "recursive": {
                    "type": "boolean",
                    "description": "Remove a directory and everything in it (default false).",
                },
            },
            ["sandbox_id", "path"],
        ),
        destructiveHint=True,
    ),
    _tool(
        "rename",
        "Rename or move a path inside a sandbox.",
        _schema(
            {
                "sandbox_id": _SANDBOX_ID,
                "src": dict(_PATH, description="The path to move."),
                "dst": dict(_PATH, description="Its new path."),
            },
            ["sandbox_id", "src", "dst"],
        ),
        destructiveHint=True,
    ),
    _tool(
        "http_request",
        "Make an HTTP(S) request from the host on behalf of a sandbox, under "
        "that sandbox's network policy: only the domains it was created with "
        "(create_sandbox network) are reachable, and a sandbox with network "
        "\"deny\" reaches nothing. Returns JSON: status, headers, body "
        "(text, or base64 with body_encoding \"base64\"), truncated.",
        _schema(
            {
                "sandbox_id": _SANDBOX_ID,
                "url": {"type": "string", "minLength": 1, "description": "http:// or https:// URL."},
                "method": {
                    "type": "string",
                    "description": "HTTP method (default GET).",
                },
                "headers": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "Request headers, Name: value.",
                },
                "body": {"type": "string", "description": "Request body as text."},
            },
            ["sandbox_id", "url"],
        ),
        openWorldHint=True,
    ),
]

TOOL_NAMES = [t.name for t in TOOLS]
