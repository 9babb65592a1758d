/* SPDX-License-Identifier: Apache-2.0 */
/* Test module: probes the file system a Wasm sandbox sees. For each path
 * it tries to open it and prints "open PATH: ok" or "open PATH: errno N
 * (message)"; it writes /workspace/out.txt and the relative rel.txt, and
 * reads `argv[1]` back when given. `files write PATH TEXT` only writes TEXT
 * to PATH (exit 0, or 1 with the errno printed). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void try_open(const char *path, int flags)
{
	int fd = open(path, flags, 0644);

	if (fd >= 0) {
		printf("open %s: ok\n", path);
		close(fd);
	} else {
		printf("open %s: errno %d (%s)\n", path, errno, strerror(errno));
	}
}

int main(int argc, char **argv)
{
	FILE *f;

	if (argc == 4 && strcmp(argv[1], "write") == 0) {
		f = fopen(argv[2], "w");
		if (f == NULL || fputs(argv[3], f) < 0 || fclose(f) != 0) {
			printf("write %s: errno %d (%s)\n", argv[2], errno, strerror(errno));
			return 1;
		}
		return 0;
	}
	try_open("/etc/passwd", O_RDONLY);
	try_open("/proc/self/status", O_RDONLY);
	try_open("/workspace/../lock", O_RDONLY);
	try_open("../lock", O_RDONLY);
	try_open("/workspace/../../../../etc/passwd", O_RDONLY);
	try_open("/", O_RDONLY | O_DIRECTORY);
	f = fopen("/workspace/out.txt", "w");
	printf("write /workspace/out.txt: %s\n", f && fputs("written by wasm\n", f) >= 0 && fclose(f) == 0 ? "ok" : "failed");
	f = fopen("rel.txt", "w");
	printf("write rel.txt: %s\n", f && fputs("relative\n", f) >= 0 && fclose(f) == 0 ? "ok" : "failed");
	if (argc > 1) {
		char buf[256] = "";

		f = fopen(argv[1], "r");
		if (f && fgets(buf, sizeof(buf), f))
			printf("read %s: %s", argv[1], buf);
		else
			printf("read %s: failed\n", argv[1]);
		if (f)
			fclose(f);
	}
	return 0;
}
