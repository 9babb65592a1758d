/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wasm backend's disk cache as a process keeps it open (wasm.c,
 * "opened"): later runs take the checked directory and the MAC key from
 * memory, yet every entry is still verified when loaded, a store that
 * fails (the directory gone) makes the next run check and create it again,
 * and other paths are opened as new. Through the public API, in one
 * process, with the in-process module table off (MIMOBOX_WASM_CACHE=disk)
 * and the debug log saying where each module came from.
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbx/mbx.h>

#include "tap.h"

static char top[64];
static char cache_dir[128], other_dir[128], module[128];
static int ncase;
static char how[32];   /* the last run's module source: compiled, disk, memory */
static int verify_failed;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* rm -rf: 0, or -1 (it was not all removed). */
static int rm_rf(const char *path)
{
	return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void on_log(mbx_log_level_t level, const char *msg, void *userdata)
{
	unsigned long long us;

	(void)level;
	(void)userdata;
	if (sscanf(msg, "wasm: module %llu us (%31[a-z])", &us, how) == 2)
		return;
	if (strstr(msg, "failed verification"))
		verify_failed = 1;
}

static void setup(void)
{
	char state[96];
	FILE *f;

	/* Each case a cache directory of its own (a directory the process
	 * opened before and that was then removed would be made again only at
	 * the store after next: that is a case of its own). */
	ncase++;
	if (top[0]) {
		snprintf(cache_dir, sizeof(cache_dir), "%s/cache%d", top, ncase);
		snprintf(other_dir, sizeof(other_dir), "%s/other%d", top, ncase);
		setenv("MIMOBOX_WASM_CACHE_DIR", cache_dir, 1);
		return;
	}
	snprintf(top, sizeof(top), "/tmp/mbx-wasm-reopen.XXXXXX");
	if (mkdtemp(top) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(state, sizeof(state), "%s/state", top);
	snprintf(cache_dir, sizeof(cache_dir), "%s/cache%d", top, ncase);
	snprintf(other_dir, sizeof(other_dir), "%s/other%d", top, ncase);
	snprintf(module, sizeof(module), "%s/noop.wat", top);
	f = fopen(module, "w");
	if (f == NULL) {
		perror(module);
		exit(1);
	}
	fputs("(module (memory 1) (export \"memory\" (memory 0)) (func (export \"_start\")))\n", f);
	fclose(f);
	setenv("MIMOBOX_STATE_DIR", state, 1);
	setenv("MIMOBOX_WASM_CACHE_DIR", cache_dir, 1);
	setenv("MIMOBOX_WASM_CACHE", "disk", 1);
}

/* One run of the module; returns where it came from ("" on failure). */
static const char *run_once(void)
{
	const char *argv[] = { module, NULL };
	mbx_config *cfg = NULL;
	mbx_result *res = NULL;
	mbx_error *err = NULL;
	int rc;

	how[0] = '\0';
	verify_failed = 0;
	if (mbx_config_new(&cfg, &err) != MBX_OK || mbx_config_set_isolation(cfg, MBX_ISOLATION_WASM, &err) != MBX_OK) {
		printf("# config: %s\n", err ? mbx_error_message(err) : "?");
		mbx_error_free(err);
		mbx_config_free(cfg);
		return "";
	}
	mbx_config_set_log(cfg, MBX_LOG_DEBUG, on_log, NULL);
	rc = mbx_run(cfg, argv, NULL, &res, &err);
	if (rc != MBX_OK || mbx_result_exit_code(res) != 0) {
		printf("# run: %s\n", err ? mbx_error_message(err) : "non-zero exit");
		how[0] = '\0';
	}
	mbx_error_free(err);
	mbx_result_free(res);
	mbx_config_free(cfg);
	return how;
}

/* The one entry of `dir`, or "" when there is not exactly one. */
static void entry_of(const char *dir, char *out, size_t size)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	out[0] = '\0';
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".cwasm") && n++ == 0)
			snprintf(out, size, "%s/%s", dir, de->d_name);
	closedir(d);
	if (n != 1)
		out[0] = '\0';
}

static void test_kept_open(void)
{
	setup();
	TAP_CHECK_STR(run_once(), "compiled");
	TAP_CHECK_STR(run_once(), "disk");
	TAP_CHECK_STR(run_once(), "disk");
}

/* The key kept in memory does not stand in for the entry's check. */
static void test_entry_still_verified(void)
{
	char path[512];
	struct stat st;
	int fd;

	setup();
	TAP_CHECK_STR(run_once(), "compiled");
	TAP_CHECK_STR(run_once(), "disk");
	entry_of(cache_dir, path, sizeof(path));
	TAP_CHECK(path[0] != '\0');
	/* One byte of the payload changed in place (same file, same size). */
	fd = open(path, O_RDWR);
	TAP_CHECK(fd >= 0);
	if (fd >= 0) {
		unsigned char b;

		TAP_CHECK(fstat(fd, &st) == 0 && st.st_size > 200);
		TAP_CHECK(pread(fd, &b, 1, 100) == 1);
		b ^= 0x5a;
		TAP_CHECK(pwrite(fd, &b, 1, 100) == 1);
		close(fd);
	}
	TAP_CHECK_STR(run_once(), "compiled");
	TAP_CHECK(verify_failed);
	TAP_CHECK_STR(run_once(), "disk");
}

/* A cache directory removed under a running process is made again. */
static void test_directory_removed(void)
{
	char path[512];

	setup();
	TAP_CHECK_STR(run_once(), "compiled");
	TAP_CHECK_STR(run_once(), "disk");
	TAP_CHECK(rm_rf(cache_dir) == 0);
	/* Its store fails: the directory is gone. */
	TAP_CHECK_STR(run_once(), "compiled");
	/* Checked again: made, and the entry stored. */
	TAP_CHECK_STR(run_once(), "compiled");
	entry_of(cache_dir, path, sizeof(path));
	TAP_CHECK(path[0] != '\0');
	TAP_CHECK_STR(run_once(), "disk");
}

/* Another directory is opened as new, not taken for the first. */
static void test_other_directory(void)
{
	char path[512];
	struct stat st;

	setup();
	TAP_CHECK_STR(run_once(), "compiled");
	TAP_CHECK_STR(run_once(), "disk");
	setenv("MIMOBOX_WASM_CACHE_DIR", other_dir, 1);
	TAP_CHECK_STR(run_once(), "compiled");
	TAP_CHECK(stat(other_dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
	entry_of(other_dir, path, sizeof(path));
	TAP_CHECK(path[0] != '\0');
	TAP_CHECK_STR(run_once(), "disk");
	setenv("MIMOBOX_WASM_CACHE_DIR", cache_dir, 1);
	TAP_CHECK_STR(run_once(), "disk");
}

static const struct tap_case cases[] = {
	{ "wasm-reopen/kept-open", test_kept_open },
	{ "wasm-reopen/entry-still-verified", test_entry_still_verified },
	{ "wasm-reopen/directory-removed", test_directory_removed },
	{ "wasm-reopen/other-directory", test_other_directory },
};

int main(int argc, char **argv)
{
	int rc = tap_run(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);

	if (top[0])
		rm_rf(top);
	return rc;
}
