# SPDX-License-Identifier: Apache-2.0
"""``python -m mimobox.mcp`` / ``mimobox-mcp``: the mimobox MCP server."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

USAGE = """\
Serve mimobox sandboxes to MCP clients (Claude Desktop, IDEs, agents).

By default the server speaks MCP over stdin/stdout, for a client that starts
it. With --http it serves Streamable HTTP on 127.0.0.1 only, and every
request needs the header `Authorization: Bearer TOKEN`, TOKEN being the
content of --token-file (made, mode 0600, with a random token when missing).

Each session (a stdio connection, or an HTTP session) has its own sandboxes
and quotas; when it ends, every sandbox it made is destroyed.
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number more than 0")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535; 0 picks a free one)")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mimobox-mcp",
        description=USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--http", action="store_true",
                   help="serve Streamable HTTP on 127.0.0.1 instead of stdio")
    p.add_argument("--port", type=_port, default=8765,
                   help="HTTP port on 127.0.0.1 (default 8765; 0 picks a free one)")
    p.add_argument("--token-file", metavar="PATH",
                   help="file holding the HTTP bearer token (required with --http)")
    p.add_argument("--max-sandboxes", type=_positive_int, default=8, metavar="N",
                   help="sandboxes alive at once per session, one-off ones included (default 8)")
    p.add_argument("--max-exec-seconds", type=_positive_float, default=600.0, metavar="S",
                   help="total execution time per session, in seconds (default 600)")
    p.add_argument("--max-output-bytes", type=_positive_int, default=65536, metavar="N",
                   help="bytes kept of each output stream, file read or HTTP body (default 65536)")
    p.add_argument("--default-timeout-ms", type=_positive_int, default=30000, metavar="MS",
                   help="timeout of a call that gives none (default 30000)")
    p.add_argument("--log-level", default="warning",
                   choices=["debug", "info", "warning", "error"],
                   help="what is logged on stderr (default warning)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(),
                        format="mimobox-mcp: %(levelname)s: %(message)s")
    if args.http and not args.token_file:
        print("mimobox-mcp: --http needs --token-file PATH (a file with the bearer token; "
              "it is made with a random token when missing)", file=sys.stderr)
        return 2
    if not args.http and args.token_file:
        print("mimobox-mcp: --token-file is for --http only", file=sys.stderr)
        return 2

    try:
        import mimobox  # noqa: F401
        from .server import Limits, build_server
    except ImportError as exc:
        print(f"mimobox-mcp: cannot load {exc.name or 'a module'}: {exc} "
              "(install with: pip install 'mimobox[mcp]')", file=sys.stderr)
        return 1

    limits = Limits(
        max_sandboxes=args.max_sandboxes,
        max_exec_seconds=args.max_exec_seconds,
        max_output_bytes=args.max_output_bytes,
        default_timeout_ms=args.default_timeout_ms,
    )
    server = build_server(limits)

    if args.http:
        from .http import TokenError, load_token, serve

        try:
            token, made = load_token(args.token_file)
        except TokenError as exc:
            print(f"mimobox-mcp: {exc}", file=sys.stderr)
            return 1
        if made:
            print(f"mimobox-mcp: wrote a new token to {args.token_file}", file=sys.stderr)
        try:
            serve(server, args.port, token)
        except TokenError as exc:
            print(f"mimobox-mcp: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            pass
        return 0

    return _serve_stdio(server)


def _serve_stdio(server) -> int:
    import os

    import anyio
    from mcp.server.stdio import stdio_server

    signalled = False

    async def run() -> None:
        nonlocal signalled
        async with stdio_server() as (read_stream, write_stream):
            async with anyio.create_task_group() as tg:
                async def on_signals() -> None:
                    nonlocal signalled
                    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
                        async for _ in signals:
                            # Ends the session: its sandboxes are destroyed
                            # on the way out (the session's lifespan).
                            signalled = True
                            tg.cancel_scope.cancel()
                            return

                tg.start_soon(on_signals)
                await server.run(read_stream, write_stream, server.create_initialization_options())
                tg.cancel_scope.cancel()
            if signalled:
                # The sandboxes are gone; the transport's reader may sit in a
                # blocking read of stdin that nothing can cancel.
                sys.stderr.flush()
                os._exit(0)

    anyio.run(run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
