/* SPDX-License-Identifier: Apache-2.0 */
/* Test module: greets on stdout and stderr, exits 0. */
#include <stdio.h>

int main(void)
{
	printf("hello from wasm\n");
	fprintf(stderr, "a line on stderr\n");
	return 0;
}
