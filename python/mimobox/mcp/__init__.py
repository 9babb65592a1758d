# SPDX-License-Identifier: Apache-2.0
"""The mimobox MCP server (``python -m mimobox.mcp``, ``mimobox-mcp``).

Needs the ``mcp`` extra: ``pip install 'mimobox[mcp]'``. The tools and their
arguments are listed in :mod:`mimobox.mcp.tools`; docs/mcp.md has the rest.
"""

from __future__ import annotations

__all__ = ["build_server", "Limits", "main"]


def __getattr__(name: str):
    # Imported lazily: `import mimobox.mcp.tools` and `--help` need no SDK load.
    if name in ("build_server", "Limits"):
        from . import server

        return getattr(server, name)
    if name == "main":
        from .__main__ import main

        return main
    raise AttributeError(name)
