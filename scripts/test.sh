#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Builds everything and runs every test layer:
#   1. unit, fuzz-corpus replay and integration suites, as root (or the caller)
#   2. the unit and integration suites again as an unprivileged user
#   3. everything under AddressSanitizer + UndefinedBehaviorSanitizer
#   4. the unit suite under valgrind
#   5. a short libFuzzer run of every fuzz target
# Prints "tests: N passed, M failed" last; exits non-zero on any failure.
# MBX_TEST_QUICK=1 runs stage 1 only.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
export MBX_TEST_MUST_WORK=${MBX_TEST_MUST_WORK:-1}
# Every backend must be built: a missing one fails the build, not a warning.
export MBX_REQUIRE_ALL=1
. "$top/scripts/lib.sh"
passed=0
failed=0
failed_stages=""

stage() { printf '\n==== %s ====\n' "$*"; }

# Adds the counts of a meson test run (from its JSON log) to the totals.
count_meson() { # count_meson BUILDDIR NAME [LOGNAME]
	local log=$1/meson-logs/${3:-mbx}.json name=$2 p f
	p=$(grep -c '"result": "OK"' "$log" 2>/dev/null || true)
	f=$(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" 2>/dev/null || true)
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0}))
	[ "${f:-0}" -gt 0 ] && failed_stages="$failed_stages $name"
}

record() { # record NAME STATUS
	if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failed_stages="$failed_stages $1"; fi
}

"$top/scripts/build.sh" "$top/build" || { echo "tests: 0 passed, 1 failed"; exit 1; }

# The microvm backend's host side: QEMU (qemu-system-common brings virtiofsd)
# and the guest assets, built once into the user's cache by
# scripts/vm-assets.sh (minutes the first time, with its own apt-get
# packages; afterwards only verified). The library's default asset directory
# is the one the script names, so stage 1 finds them there; the unprivileged
# stage gets a copy (docs/microvm.md).
vm_setup() {
	local need="" p
	for p in qemu-system-x86 qemu-system-common; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
	done
	if [ -n "$need" ]; then
		[ "$(id -u)" -eq 0 ] || { echo "mimobox: missing:$need (apt-get install$need as root)" >&2; return 1; }
		echo "mimobox: installing:$need" >&2
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null ||
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null; } ||
			return 1
	fi
	vm_dir=$(MIMOBOX_VM_DIR='' "$top/scripts/vm-assets.sh" build) && [ -n "$vm_dir" ]
}
vm_dir=""
if ! vm_setup; then
	vm_dir=""
	if [ "${MBX_REQUIRE_ALL:-0}" = 1 ]; then
		echo "mimobox: error: the microvm guest assets or QEMU could not be set up (see above)." >&2
		echo "mimobox: fix: run scripts/vm-assets.sh as root with access to the Debian archive (see docs/microvm.md)." >&2
		echo "tests: 0 passed, 1 failed"
		exit 1
	fi
	echo "mimobox: WARNING: no microvm guest assets: the microvm tests see the backend unavailable." >&2
fi

stage "1. unit, fuzz replay, integration as $(id -un)"
meson test -C "$top/build" --print-errorlogs --logbase mbx
count_meson "$top/build" "root"

if [ "${MBX_TEST_QUICK:-0}" != 1 ]; then
	if [ "$(id -u)" -eq 0 ]; then
		stage "2. unprivileged (uid 65534)"
		# The checkout may sit below a directory only root can enter: copy
		# what the unprivileged run needs to a world-readable place.
		rl=$(mktemp -d /tmp/mbx-rootless.XXXXXX)
		mkdir -p "$rl/build/tests" "$rl/tests"
		# The CLI: its front and the whole CLI it hands other command lines to.
		cp -a "$top/build/mimobox" "$top/build/mimobox-full" "$top/build/libmimobox.so"* "$rl/build/"
		cp -a "$top/build/tests/try-syscall" "$top/build/tests/"test-* "$rl/build/tests/"
		# The wasm backend: Wasmtime beside libmimobox ($ORIGIN), the test modules.
		[ -f "$top/build/libwasmtime.so" ] && cp -a "$top/build/libwasmtime.so" "$rl/build/"
		[ -d "$top/build/tests/wasm" ] && cp -a "$top/build/tests/wasm" "$rl/build/tests/"
		cp -a "$top/tests/integration" "$rl/tests/"
		# QEMU's jail: its test driver (the guest assets are copied below).
		[ -f "$top/build/tests/vm-jail" ] && cp -a "$top/build/tests/vm-jail" "$rl/build/tests/"
		# A microVM's channel reset (test_microvm_resume.py).
		[ -f "$top/build/tests/vm-resume" ] && cp -a "$top/build/tests/vm-resume" "$rl/build/tests/"
		# Restore pools (test_restore_pool.py).
		cp -a "$top/build/tests/restore-pool" "$rl/build/tests/"
		# One sandbox from several threads (test_threads.py).
		cp -a "$top/build/tests/threads" "$rl/build/tests/"
		# The Python package and its tests (they find the library through MIMOBOX_LIB).
		mkdir -p "$rl/python"
		cp -a "$top/python/mimobox" "$top/python/tests" "$top/python/examples" "$top/python/_build" \
			"$top/python/pyproject.toml" "$top/python/README.md" "$rl/python/"
		cp -a "$top/README.md" "$rl/"   # its Python quick start is run by the tests
		mkdir -p "$rl/docs"   # test_serve.py checks the server against its OpenAPI document
		cp -a "$top/docs/server-openapi.json" "$rl/docs/"
		cp -a "$top/fuzz" "$rl/fuzz"
		# The microvm guest assets (root's cache is out of reach) and the
		# script `mimobox setup vm` runs, with its kernel config fragment.
		vm_env=()
		if [ -n "$vm_dir" ]; then
			cp -a "$vm_dir" "$rl/vm"
			mkdir -p "$rl/scripts" "$rl/tools"
			cp -a "$top/scripts/vm-assets.sh" "$rl/scripts/"
			cp -a "$top/tools/vm" "$rl/tools/"
			vm_env=("MIMOBOX_VM_DIR=$rl/vm" "MIMOBOX_VM_SCRIPT=$rl/scripts/vm-assets.sh")
		fi
		chmod -R a+rX "$rl"
		as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
			env -i PATH="$PATH" HOME=/tmp LANG=C.UTF-8 MBX_TEST_MUST_WORK="$MBX_TEST_MUST_WORK" \
			MIMOBOX_CLI="$rl/build/mimobox" MIMOBOX_LIB="$rl/build/libmimobox.so" \
			MIMOBOX_HELPERS="$rl/build/tests" "${vm_env[@]}" "$@"; }
		for t in "$rl"/build/tests/test-*; do
			[ -f "$t" ] && [ -x "$t" ] || continue
			( cd /tmp && as_nobody "$t" ) >"$rl/$(basename "$t").log" 2>&1
			rc=$?
			[ $rc -eq 77 ] && rc=0
			[ $rc -ne 0 ] && cat "$rl/$(basename "$t").log"
			record "nobody:$(basename "$t")" $rc
		done
		( cd /tmp && as_nobody python3 -m pytest -q -p no:cacheprovider "$rl/tests/integration" )
		record "nobody:integration" $?
		( cd /tmp && as_nobody python3 -m pytest -q -p no:cacheprovider "$rl/python/tests" )
		record "nobody:python" $?
		# The MCP server's tests (they run the README's client configuration),
		# in a copy of the venv of scripts/pyenv.sh (it lives in root's cache;
		# its python is a link to /usr/bin/python3).
		mcp_py=$("$top/scripts/pyenv.sh") && cp -a "$(dirname "$(dirname "$mcp_py")")" "$rl/venv-mcp" &&
			cp -a "$top/README.md" "$rl/" && chmod -R a+rX "$rl/venv-mcp" "$rl/README.md" &&
			( cd /tmp && as_nobody env MBX_TEST_MCP=1 "$rl/venv-mcp/bin/python" -m pytest -q -p no:cacheprovider \
				"$rl/python/tests/test_mcp.py" )
		record "nobody:mcp" $?
		rm -rf "$rl"
	fi

	stage "3. AddressSanitizer + UndefinedBehaviorSanitizer"
	mkdir -p "$top/build-asan"
	if { [ -f "$top/build-asan/build.ninja" ] ||
	     quietly "$top/build-asan/setup.log" meson setup "$top/build-asan" "$top" -Dwasm=enabled \
		-Db_sanitize=address,undefined -Db_lundef=false; } &&
	   quietly "$top/build-asan/ninja.log" ninja -C "$top/build-asan"; then
		# The suites that run per backend run on the os backend here; the
		# microvm's host side (its backend, jail, agent host) is covered by
		# test_microvm.py and test_vm_jail.py, which boot guests themselves.
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
			MIMOBOX_TEST_BACKENDS=os meson test -C "$top/build-asan" --print-errorlogs --logbase mbx
		count_meson "$top/build-asan" "asan"
	else
		record "asan-build" 1
	fi

	stage "4. valgrind on the unit suite"
	meson test -C "$top/build" --suite unit --print-errorlogs --logbase mbx \
		--wrapper 'valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --trace-children=no'
	# meson names a wrapped run's log after the wrapper.
	count_meson "$top/build" "valgrind" "mbx-valgrind"

	stage "5. libFuzzer (${MBX_FUZZ_SECONDS:-30} s per target)"
	if ! command -v clang >/dev/null; then
		echo "mimobox: clang is missing: the fuzz targets cannot be built (apt-get install clang libclang-rt-14-dev)" >&2
		record "fuzz-build" 1
	else
		mkdir -p "$top/build-fuzz"
		if { [ -f "$top/build-fuzz/build.ninja" ] ||
		     CC=clang quietly "$top/build-fuzz/setup.log" meson setup "$top/build-fuzz" "$top" -Dfuzzing=true \
			-Db_sanitize=address,undefined -Db_lundef=false; } &&
		   quietly "$top/build-fuzz/ninja.log" ninja -C "$top/build-fuzz"; then
			for f in "$top"/build-fuzz/fuzz/fuzz-*; do
				case $f in *-replay|*.p) continue ;; esac
				[ -x "$f" ] || continue
				name=$(basename "$f")
				work=$(mktemp -d)
				cp "$top/fuzz/corpora/${name#fuzz-}"/* "$work/" 2>/dev/null
				"$f" -max_total_time="${MBX_FUZZ_SECONDS:-30}" -print_final_stats=0 "$work" >"$work.log" 2>&1
				rc=$?
				if [ $rc -ne 0 ]; then
					tail -40 "$work.log"
				else
					grep -E '^Done [0-9]+ runs' "$work.log" | sed "s/^/$name: /"
				fi
				record "$name" $rc
				rm -rf "$work" "$work.log"
			done
		else
			record "fuzz-build" 1
		fi
	fi
fi

echo
[ -n "$failed_stages" ] && echo "failed:$failed_stages"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
