#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Writes the CLI's own help into the docs, so they cannot drift from it:
#   README.md     each block after <!-- mimobox [VERB] --help -->: that help
#   docs/cli.md   `mimobox VERB --help` for every verb `mimobox --help` lists
# tests/integration/test_readme.py fails when either is stale.
#   scripts/cli-reference.sh [path/to/mimobox]     default ./build/mimobox
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cli=${1:-$top/build/mimobox}
export MIMOBOX_LOG=off

out=$top/docs/cli.md.tmp
{
	echo "# The mimobox CLI"
	echo
	echo "Every verb's \`--help\`, exactly as the CLI prints it (written by"
	echo "\`scripts/cli-reference.sh\`; a test fails when this file is stale)."
	echo
	echo "<!-- help: -->"
	echo '```'
	"$cli" --help
	echo '```'
	for verb in $("$cli" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z-]*\)  .*/\1/p'); do
		echo
		echo "## mimobox $verb"
		echo
		echo "<!-- help: $verb -->"
		echo '```'
		"$cli" "$verb" --help
		echo '```'
	done
} >"$out"
mv "$out" "$top/docs/cli.md"

# The README's blocks: each <!-- mimobox [VERB] --help --> is followed by
# a fenced block holding that help.
python3 - "$top/README.md" "$cli" <<'PY'
import re, subprocess, sys
path, cli = sys.argv[1:3]
text = open(path).read()

def fill(m):
    args = [cli] + ([m.group(2)] if m.group(2) else []) + ["--help"]
    out = subprocess.run(args, capture_output=True, text=True, check=True, env={"MIMOBOX_LOG": "off"}).stdout
    return m.group(1) + out + "```\n"

new, n = re.subn(r"(<!-- mimobox (?:([a-z-]+) )?--help -->\n```\n).*?```\n", fill, text, flags=re.S)
if n == 0:
    sys.exit("README.md has no <!-- mimobox --help --> block")
open(path, "w").write(new)
PY
