#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Installs what mimobox needs to build and test on Debian 12, by package name.
# Versions are those of Debian 12 (bookworm); nothing is fetched from
# anywhere else (Wasmtime comes from PyPI and crates.io: scripts/wasmtime.sh).
# Safe to run again: it does nothing when all is present.
set -eu

# What each group is for:
#   build:        gcc libc6-dev meson ninja-build pkg-config libseccomp-dev
#                 musl-tools (the static agent) libcurl4-openssl-dev (http_request)
#                 libmicrohttpd-dev libjson-c-dev (`mimobox serve`)
#   wasm:         python3-pip binutils ca-certificates (scripts/wasmtime.sh
#                 fetches over TLS), clang-14 lld-14
#                 wasi-libc libclang-rt-14-dev-wasm32 wabt (the test modules)
#   tests:        python3 python3-pytest python3-venv (the Python package's
#                 install test) util-linux procps iproute2 strace
#                 passt (AllowAll) openssl curl (TLS through the proxy)
#                 python3-jsonschema (the server's responses against its OpenAPI document)
#                 valgrind (stage 4), clang libclang-rt-14-dev (libFuzzer and
#                 the sanitizer runtimes of the fuzz build, stage 5)
#   benchmarks:   bubblewrap (the peer)
packages="gcc libc6-dev meson ninja-build pkg-config libseccomp-dev musl-tools
libcurl4-openssl-dev libmicrohttpd-dev libjson-c-dev
python3-pip binutils ca-certificates clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32 wabt
python3 python3-pytest python3-venv python3-jsonschema util-linux procps iproute2 strace passt openssl curl
valgrind clang libclang-rt-14-dev
bubblewrap"

missing=""
for p in $packages; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "mimobox: these packages are missing:$missing" >&2
	echo "mimobox: run as root, or: sudo apt-get install$missing" >&2
	exit 1
fi
echo "mimobox: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
