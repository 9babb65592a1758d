#!/bin/sh
# Writes an assembler file that embeds a binary as the symbols
# mbx__agent_blob / mbx__agent_blob_end (used to exec the agent from a memfd).
set -eu
in=$(realpath "$1")
out=$2
cat > "$out" <<ASM
	.section .rodata
	.balign 16
	.globl mbx__agent_blob
	.hidden mbx__agent_blob
mbx__agent_blob:
	.incbin "$in"
	.globl mbx__agent_blob_end
	.hidden mbx__agent_blob_end
mbx__agent_blob_end:
	.section .note.GNU-stack,"",@progbits
ASM
