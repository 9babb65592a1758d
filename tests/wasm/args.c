/* SPDX-License-Identifier: Apache-2.0 */
/* Test module: prints its arguments and the variables named by them
 * ("argv[i]=..." then "env NAME=value" for each argument after the first
 * that names a set variable), one per line. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		printf("argv[%d]=%s\n", i, argv[i]);
	for (int i = 1; i < argc; i++) {
		const char *v = getenv(argv[i]);

		if (v)
			printf("env %s=%s\n", argv[i], v);
	}
	return 0;
}
