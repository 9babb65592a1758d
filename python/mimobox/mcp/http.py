# SPDX-License-Identifier: Apache-2.0
"""Streamable HTTP for the mimobox MCP server: loopback only, bearer token.

The server binds 127.0.0.1 and nothing else, answers only requests that
carry ``Authorization: Bearer <token>`` (compared in constant time), and
checks the Host header against its own address (DNS rebinding). The token
lives in a file readable by its owner only; a missing file is created with
a fresh random token. The token is never logged.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import secrets
import signal
import socket
import stat
import sys

import anyio

log = logging.getLogger("mimobox.mcp")

HOST = "127.0.0.1"
PATH = "/mcp"


class TokenError(Exception):
    pass


def load_token(path: str) -> tuple[str, bool]:
    """Returns the token of path and whether it was made just now."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise TokenError(f"cannot create the token file {path}: {exc.strerror}") from None
    else:
        token = secrets.token_urlsafe(32)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        return token, True
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise TokenError(f"cannot open the token file {path}: {exc.strerror}") from None
    with os.fdopen(fd) as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise TokenError(f"the token file {path} is not a regular file")
        if st.st_mode & 0o077:
            raise TokenError(
                f"the token file {path} can be read by others (mode {stat.S_IMODE(st.st_mode):04o}): "
                f"chmod 600 it, or name a new file and one is made"
            )
        if st.st_uid != os.geteuid():
            raise TokenError(f"the token file {path} belongs to another user")
        token = f.read().strip()
    if len(token) < 16 or any(c.isspace() for c in token):
        raise TokenError(
            f"the token file {path} holds no usable token (one line of at least 16 characters, no spaces)"
        )
    return token, False


class BearerAuth:
    """ASGI middleware: every HTTP request needs the bearer token."""

    def __init__(self, app, token: str):
        self.app = app
        self.expected = ("Bearer " + token).encode("latin-1")

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            got = b""
            for name, value in scope.get("headers", []):
                if name.lower() == b"authorization":
                    got = value
                    break
            if not hmac.compare_digest(got, self.expected):
                body = json.dumps({
                    "error": "unauthorized",
                    "message": "this server needs the header Authorization: Bearer <token>, "
                               "with the token of its --token-file",
                }).encode()
                await send({
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"www-authenticate", b'Bearer realm="mimobox-mcp"'),
                        (b"content-length", str(len(body)).encode()),
                    ],
                })
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def serve(server, port: int, token: str) -> None:
    """Serves the MCP server over Streamable HTTP on 127.0.0.1:port until
    SIGINT/SIGTERM; prints the URL on stderr once listening."""
    import uvicorn
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from mcp.server.transport_security import TransportSecuritySettings

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise TokenError(f"cannot listen on {HOST}:{port}: {exc.strerror}") from None
    port = sock.getsockname()[1]
    sock.listen(64)

    hosts = [f"{HOST}:{port}", f"localhost:{port}"]
    manager = StreamableHTTPSessionManager(
        app=server,
        security_settings=TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=hosts,
            allowed_origins=[f"http://{h}" for h in hosts],
        ),
    )

    async def mcp_app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path = scope.get("path", "")
        if path.rstrip("/") != PATH:
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": f"the MCP endpoint is {PATH}\n".encode()})
            return
        await manager.handle_request(scope, receive, send)

    config = uvicorn.Config(BearerAuth(mcp_app, token), log_level="warning", access_log=False,
                            lifespan="on", timeout_graceful_shutdown=5)
    class _Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            # Stop cleanly and exit 0, rather than raise the signal again
            # once stopped (uvicorn's default): the sandboxes are gone by then.
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            self.should_exit = True

    userver = _Server(config)

    async def main() -> None:
        async with manager.run():
            print(f"mimobox-mcp: listening on http://{HOST}:{port}{PATH}", file=sys.stderr, flush=True)
            await userver.serve(sockets=[sock])

    with contextlib.closing(sock):
        anyio.run(main)
