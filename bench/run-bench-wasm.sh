#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# ninja -C build bench-wasm: the wasm backend's start-up (bench-wasm) and
# its peer in the same run, PyPI's wasmtime on the same library
# (bench_wasm_peer.py). MIMOBOX_BENCH_N sets the iterations (default 300).
set -eu
bench=$1
module=$2
wasmtime_dir=$3
files_module=${4:-}
n=${MIMOBOX_BENCH_N:-300}
here=$(cd "$(dirname "$0")" && pwd)
"$bench" -n "$n" ${files_module:+-f "$files_module"} "$module"
echo
echo "peer: PyPI wasmtime (same libwasmtime), $n iterations"
PYTHONPATH="$wasmtime_dir/py" python3 "$here/bench_wasm_peer.py" -n "$n" "$module"
