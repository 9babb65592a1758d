/* SPDX-License-Identifier: Apache-2.0 */
/* The host side of `mimobox cp`; see cp_tree.h. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cp_tree.h"

const char cp_special_reason[] = "not a regular file, directory or symlink";
const char cp_symlink_reason[] = "a symlink whose target cannot be read";

void cp_skip(struct cp_stats *cs, const char *path, const char *reason)
{
	if (!cs->json) {
		fprintf(stderr, "mimobox: warning: skipped `%s`: %s\n", path, reason);
		return;
	}
	cli_buf_puts(&cs->skipped, cs->n_skipped++ ? ", {\"path\": " : "{\"path\": ");
	cli_json_cstring(&cs->skipped, path);
	cli_buf_puts(&cs->skipped, ", \"reason\": ");
	cli_json_cstring(&cs->skipped, reason);
	cli_buf_puts(&cs->skipped, "}");
}

int cp_done(struct cp_stats *cs, int rc)
{
	struct cli_buf b = CLI_BUF_INIT;

	if (rc == 0 && cs->json) {
		cli_buf_printf(&b, "{\"ok\": true, \"files\": %llu, \"directories\": %llu, \"symlinks\": %llu, "
			       "\"bytes\": %llu, \"skipped\": [", (unsigned long long)cs->files,
			       (unsigned long long)cs->dirs, (unsigned long long)cs->links, (unsigned long long)cs->bytes);
		if (cs->skipped.data)
			cli_buf_add(&b, cs->skipped.data, cs->skipped.len);
		cli_buf_puts(&b, "]}\n");
		if (b.failed || cs->skipped.failed || (cli_write_all(STDOUT_FILENO, b.data, b.len) < 0 && errno != EPIPE))
			rc = 1;
	}
	cli_buf_free(&b);
	cli_buf_free(&cs->skipped);
	return rc;
}

int cp_oom(int json)
{
	cli_report(json, MBX_ENOMEM, "out of memory", NULL, NULL, ENOMEM);
	return CLI_EXIT_FAILED;
}

int cp_host_error(int json, const char *what, const char *path, int e)
{
	char message[CLI_WHY_MAX + 64];

	snprintf(message, sizeof(message), "cannot %s `%s`: %s", what, path, strerror(e));
	cli_report(json, e == ENOENT ? MBX_ENOTFOUND : MBX_ESYS, message, NULL, NULL, e);
	return 1;
}

int cp_too_deep(int json, const char *dir)
{
	char message[CLI_WHY_MAX + 64];

	snprintf(message, sizeof(message), "`%s` is more than %d directories deep", dir, CP_MAX_DEPTH);
	cli_report(json, MBX_ETOOBIG, message, NULL, NULL, 0);
	return 1;
}

char *cp_join(const char *dir, const char *base_of)
{
	char *copy = strdup(base_of), *out = NULL;
	size_t len = strlen(dir);

	if (!copy)
		return NULL;
	if (asprintf(&out, "%s%s%s", dir, len && dir[len - 1] == '/' ? "" : "/", basename(copy)) < 0)
		out = NULL;
	free(copy);
	return out;
}

int cp_host_dir(const char *hpath, int json)
{
	struct stat hst;

	if (mkdir(hpath, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return cp_host_error(json, "make the directory", hpath, errno);
	if (lstat(hpath, &hst) < 0)
		return cp_host_error(json, "make the directory", hpath, errno);
	if (!S_ISDIR(hst.st_mode))
		return cp_host_error(json, "copy a directory to", hpath, S_ISLNK(hst.st_mode) ? ELOOP : ENOTDIR);
	return 0;
}

int cp_host_symlink(struct cp_stats *cs, const char *target, const char *hpath)
{
	struct stat hst;

	if (lstat(hpath, &hst) == 0) {
		if (S_ISDIR(hst.st_mode))
			return cp_host_error(cs->json, "replace", hpath, EISDIR);
		if (unlink(hpath) < 0)
			return cp_host_error(cs->json, "replace", hpath, errno);
	}
	if (symlink(target, hpath) < 0)
		return cp_host_error(cs->json, "make the symlink", hpath, errno);
	cs->links++;
	return 0;
}
