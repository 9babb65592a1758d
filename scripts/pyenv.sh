#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Makes the Python environment of the Python package and its MCP server, once,
# outside the work tree (Debian 12's pip refuses to install into the system,
# PEP 668):
#
#   $cache/venv-mcp-$MCP_VERSION/    a venv with python/requirements-mcp.txt
#
# where $cache is $MIMOBOX_CACHE_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/mimobox.
# Every package is pinned by version and sha256 digest (pip --require-hashes).
# The venv is remade when the requirements file changes.
#
#   scripts/pyenv.sh            make it unless it is there; prints its python
#   scripts/pyenv.sh --python   print the venv's python only
#
# The mimobox package itself is not installed into the venv: run it with
# PYTHONPATH=python (the tests do), or `pip install ./python[mcp]` elsewhere.
set -eu

MCP_VERSION=1.30.0

top=$(cd "$(dirname "$0")/.." && pwd)
req=$top/python/requirements-mcp.txt
cache=${MIMOBOX_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/mimobox}
dir=$cache/venv-mcp-$MCP_VERSION

if [ "${1:-}" = "--python" ]; then
	echo "$dir/bin/python"
	exit 0
fi

say() { echo "mimobox: pyenv: $*" >&2; }
die() { say "$*"; exit 1; }

[ -f "$req" ] || die "$req is missing"
digest=$(sha256sum "$req" | cut -d' ' -f1)
if [ -f "$dir/.complete" ] && [ "$(cat "$dir/.complete")" = "$digest" ]; then
	echo "$dir/bin/python"
	exit 0
fi

python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
	die "$python is older than 3.10: the MCP SDK needs 3.10 or newer"
"$python" -c 'import venv, ensurepip' 2>/dev/null ||
	die "the venv module is missing (apt-get install python3-venv)"

say "making $dir (mcp==$MCP_VERSION and its dependencies, pinned by digest)"
mkdir -p "$cache"
# A venv records its own path, so it is made in place; a failed attempt
# leaves nothing behind.
rm -rf "$dir"
trap 'rm -rf "$dir"' EXIT INT TERM
"$python" -m venv "$dir"
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
	--only-binary=:all: --require-hashes -r "$req" >&2 ||
	die "cannot install $req (the wheels are pinned for CPython 3.11 on x86_64 Linux)"
"$dir/bin/python" -c 'import mcp.client.stdio, mcp.server.fastmcp, pytest' ||
	die "the new venv cannot import mcp"
echo "$digest" > "$dir/.complete"
trap - EXIT INT TERM
echo "$dir/bin/python"
