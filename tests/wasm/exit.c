/* SPDX-License-Identifier: Apache-2.0 */
/* Test module: exits with the status given as its argument, through
 * proc_exit (exit()) or by returning from main ("return N"). */
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "return") == 0)
		return atoi(argv[2]);
	exit(argc > 1 ? atoi(argv[1]) : 0);
}
