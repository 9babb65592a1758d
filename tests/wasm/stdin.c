/* SPDX-License-Identifier: Apache-2.0 */
/* Test module: counts the bytes on stdin and echoes them to stdout. */
#include <stdio.h>

int main(void)
{
	char buf[4096];
	size_t n, total = 0;

	while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
		fwrite(buf, 1, n, stdout);
		total += n;
	}
	fprintf(stderr, "stdin: %zu bytes\n", total);
	return ferror(stdin) ? 2 : 0;
}
