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
#   scripts/pyenv.sh --exec ARG...
#                               make it unless it is there, then run its python
#                               with ARG... (meson's `mcp` test does)
#
# The venv is made with $PYTHON, else Debian's /usr/bin/python3 (python3-venv),
# else the python3 on PATH; it is remade when that interpreter changes.
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

run=""
if [ "${1:-}" = "--exec" ]; then
	shift
	run=1
fi
done_() {
	if [ -n "$run" ]; then
		exec "$dir/bin/python" "$@"
	fi
	echo "$dir/bin/python"
	exit 0
}

if [ -n "${PYTHON:-}" ]; then
	python=$PYTHON
elif [ -x /usr/bin/python3 ]; then
	python=/usr/bin/python3
else
	python=python3
fi
[ -f "$req" ] || die "$req is missing"
stamp="$(sha256sum "$req" | cut -d' ' -f1) $(command -v "$python" || echo "$python")"
if [ -f "$dir/.complete" ] && [ "$(cat "$dir/.complete")" = "$stamp" ]; then
	done_ "$@"
fi

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
"$python" -m venv "$dir" >&2
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
	--only-binary=:all: --require-hashes -r "$req" >&2 ||
	die "cannot install $req (the wheels are pinned for CPython 3.11 on x86_64 Linux)"
"$dir/bin/python" -c 'import mcp.client.stdio, mcp.server.fastmcp, pytest' ||
	die "the new venv cannot import mcp"
echo "$stamp" > "$dir/.complete"
trap - EXIT INT TERM
done_ "$@"
