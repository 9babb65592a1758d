# SPDX-License-Identifier: Apache-2.0
# Shell helpers shared by the build and test scripts (sourced, not run).

# quietly LOG CMD [ARG...]: runs CMD with its output in LOG; on failure
# prints why (the last lines of LOG, where the compiler's or linker's error
# is) and returns CMD's status.
quietly() {
	_log=$1
	shift
	if "$@" >"$_log" 2>&1; then
		return 0
	else
		_rc=$?
		echo "mimobox: failed ($_rc): $*" >&2
		echo "mimobox: last lines of $_log:" >&2
		tail -n 40 "$_log" | sed 's/^/    /' >&2
		return $_rc
	fi
}
