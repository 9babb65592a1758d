#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Builds mimobox into ./build (or $1) after installing its dependencies.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:-$top/build}
# Debian's own tools first: the build and the tests use the distribution's
# python3, pytest and meson whatever else is on PATH.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
"$top/scripts/deps.sh"
# Wasmtime for the wasm backend, fetched once into ~/.cache/mimobox; without
# it the build goes on with the os backend only.
"$top/scripts/wasmtime.sh" >/dev/null || echo "mimobox: building without the wasm backend" >&2
if [ ! -f "$builddir/build.ninja" ]; then
	meson setup "$builddir" "$top" >/dev/null
fi
ninja -C "$builddir" >/dev/null
