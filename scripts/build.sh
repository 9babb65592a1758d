#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Builds mimobox into ./build (or $1) after installing its dependencies.
#
# Every backend this host can have is built. Without Wasmtime (the wasm
# backend) the build fails when MBX_REQUIRE_ALL=1 (the test command sets it)
# and otherwise goes on with a loud warning saying how to fix it.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:-$top/build}
. "$top/scripts/lib.sh"
# Debian's own tools first: the build and the tests use the distribution's
# python3, pytest and meson whatever else is on PATH.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
"$top/scripts/deps.sh"
mkdir -p "$builddir"
wasm=enabled
# Wasmtime for the wasm backend, fetched once into ~/.cache/mimobox.
if ! quietly "$builddir/wasmtime-fetch.log" "$top/scripts/wasmtime.sh"; then
	if [ "${MBX_REQUIRE_ALL:-0}" = 1 ]; then
		echo "mimobox: error: the wasm backend cannot be built: Wasmtime could not be fetched (see above)." >&2
		echo "mimobox: fix: let scripts/wasmtime.sh reach PyPI and crates.io, or point MIMOBOX_CACHE_DIR at a cache that has it." >&2
		exit 1
	fi
	wasm=disabled
	echo "mimobox: WARNING: building WITHOUT the wasm backend: Wasmtime could not be fetched (see above)." >&2
	echo "mimobox: WARNING: .wasm/.wat programs and --isolation wasm will answer 'backend unavailable'." >&2
	echo "mimobox: WARNING: fix: run scripts/wasmtime.sh once with access to PyPI and crates.io, then build again." >&2
fi
# The venv of the MCP server and its tests (the pinned `mcp` package), once.
if ! quietly "$builddir/pyenv.log" "$top/scripts/pyenv.sh"; then
	if [ "${MBX_REQUIRE_ALL:-0}" = 1 ]; then
		echo "mimobox: error: the MCP server's venv could not be made (see above); its tests cannot run." >&2
		echo "mimobox: fix: let scripts/pyenv.sh reach PyPI, or point MIMOBOX_CACHE_DIR at a cache that has it." >&2
		exit 1
	fi
	echo "mimobox: WARNING: the MCP server's venv could not be made (see above): the mcp test will fail." >&2
fi
if [ ! -f "$builddir/build.ninja" ]; then
	quietly "$builddir/setup.log" meson setup "$builddir" "$top" -Dwasm=$wasm
else
	quietly "$builddir/setup.log" meson configure "$builddir" -Dwasm=$wasm
fi
quietly "$builddir/ninja.log" ninja -C "$builddir"
