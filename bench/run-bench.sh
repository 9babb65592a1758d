#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs both benchmarks: bench-os (library, cold/warm against fork+exec) and
# bench_cli.py (one-shot CLI against bwrap). Used by `ninja -C build bench`.
#
#   run-bench.sh BENCH_OS MIMOBOX_CLI
#
# MIMOBOX_BENCH_N sets the measured iterations of both (default 300);
# MIMOBOX_BENCH_JSON=1 prints JSON instead of tables.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 BENCH_OS MIMOBOX_CLI" >&2
	exit 2
fi
bench_os=$1
mimobox=$2
here=$(cd "$(dirname "$0")" && pwd)
n=${MIMOBOX_BENCH_N:-300}
json=
[ "${MIMOBOX_BENCH_JSON:-0}" = 1 ] && json=--json
python=$(command -v python3 || true)
if [ -z "$python" ]; then
	echo "run-bench.sh: python3 is needed for bench_cli.py" >&2
	exit 1
fi

echo "== bench-os -n $n =="
"$bench_os" -n "$n" $json
echo
echo "== bench_cli.py -n $n =="
"$python" "$here/bench_cli.py" -n "$n" --mimobox "$mimobox" $json
