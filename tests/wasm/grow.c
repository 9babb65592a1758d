/* SPDX-License-Identifier: Apache-2.0 */
/* Test module: allocates (and touches) 1 MiB blocks until malloc fails or
 * the argument's number of MiB is reached; prints how many it got.
 * Exits 0 when it reached the target, 3 when malloc failed first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	long want = argc > 1 ? atol(argv[1]) : 1L << 20, got = 0;
	void **list = NULL; /* keeps every block alive, so none is elided */

	while (got < want) {
		void **p = malloc(1 << 20);

		if (p == NULL)
			break;
		memset(p, 1, 1 << 20);
		p[0] = list;
		list = p;
		got++;
	}
	printf("allocated %ld MiB (%p)\n", got, (void *)list);
	return got < want ? 3 : 0;
}
