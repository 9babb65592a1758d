#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Each public header compiles alone and twice over, as strict C99 and as
# C++, with every warning an error: the headers stand on their own, guard
# against double inclusion and use nothing beyond C99.
#   check.sh SOURCE_INCLUDE_DIR BUILD_INCLUDE_DIR
set -eu
src=$1
gen=$2
cc=${CC:-cc}
cxx=${CXX:-c++}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
n=0
for h in "$src"/mbx/*.h "$gen"/mbx/*.h; do
	name=mbx/$(basename "$h")
	printf '#include <%s>\n#include <%s>\nint mbx_header_test_%d;\n' "$name" "$name" "$n" > "$work/t.c"
	cp "$work/t.c" "$work/t.cc"
	n=$((n + 1))
	if ! "$cc" -std=c99 -pedantic -Wall -Wextra -Werror -I"$src" -I"$gen" -c "$work/t.c" -o "$work/t.o"; then
		echo "not ok: $name as C99"; status=1
	fi
	if command -v "$cxx" >/dev/null && ! "$cxx" -std=c++11 -pedantic -Wall -Wextra -Werror -I"$src" -I"$gen" -c "$work/t.cc" -o "$work/t.o"; then
		echo "not ok: $name as C++"; status=1
	fi
done
echo "checked $n headers"
exit $status
