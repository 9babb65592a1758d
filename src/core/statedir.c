/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host state directories of sandboxes (see statedir.h). Every backend keeps
 * a sandbox's host state (its /workspace at least) in <base>/<id>; a live
 * sandbox holds an exclusive flock on <base>/<id>/lock, so any process can
 * tell the directories of dead owners from live ones and collect them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "statebase.h"
#include "statedir.h"
#include "backend/backend.h"

/* The rules (and the checks: ours, not a symlink, nobody else may write,
 * 0700) are in statebase.c, shared with the CLI. Sandboxes of a root caller
 * run as an unprivileged host uid, but they never need to walk this tree:
 * the os backend hands them their workspace as a descriptor. */
int mbx__statedir_base(char **out, mbx_error **err)
{
	char why[1024];
	char *base = mbx__statebase_path();
	int r;

	if (base == NULL)
		return mbx__error_oom(err);
	if (mbx__statebase_check(base, why, sizeof(why)) < 0) {
		r = mbx__error_set(err, errno == EPERM || errno == ELOOP || errno == ENOTDIR ? MBX_EPERM : MBX_ESYS, errno,
				   NULL, "%s", why);
		free(base);
		return r;
	}
	*out = base;
	return MBX_OK;
}

/*
 * Cleans up after sandboxes whose owner died without destroying them (a
 * killed CLI, a crashed host program): their processes already died with
 * their channel (os) or their owner (wasm); what can remain is the directory
 * and what `release` knows about. A lock we can take belongs to a dead owner.
 */
void mbx__statedir_collect(const char *base, const char *self, void (*release)(const char *dir))
{
	DIR *d = opendir(base);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char dir[4096], lock[4200];

		if (strlen(base) > 4000)
			break;
		int fd;

		if (strlen(de->d_name) != 16 || strspn(de->d_name, "0123456789abcdef") != 16 || strcmp(de->d_name, self) == 0)
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", base, de->d_name);
		snprintf(lock, sizeof(lock), "%s/lock", dir);
		fd = open(lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			struct stat st;

			/* A directory without a lock file is either being created
			 * right now or was left half-made long ago. */
			if (errno == ENOENT && stat(dir, &st) == 0 && st.st_mtime + 60 < time(NULL))
				mbx__rm_rf(dir);
			continue;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			if (release)
				release(dir);
			mbx__rm_rf(dir);
		}
		close(fd);
	}
	closedir(d);
}

int mbx__statedir_create(struct mbx_statedir *sd, const char *base, const char *id, mode_t mode, mbx_error **err)
{
	char lock[4200], tmp[4200];

	if (asprintf(&sd->dir, "%s/%s", base, id) < 0) {
		sd->dir = NULL;
		return mbx__error_oom(err);
	}
	if (mkdir(sd->dir, mode) < 0)
		return mbx__error_set(err, MBX_ESYS, errno, NULL, "create sandbox directory `%s`", sd->dir);
	sd->made = 1;
	/* The lock file appears under its name already locked: a collector in
	 * another process that opened it between its creation and our flock
	 * would take it for a dead owner's and remove the directory. */
	snprintf(lock, sizeof(lock), "%s/lock.new", sd->dir);
	sd->lockfd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (sd->lockfd < 0 || flock(sd->lockfd, LOCK_EX | LOCK_NB) < 0)
		return mbx__error_set(err, MBX_ESYS, errno, NULL, "lock sandbox directory `%s`", sd->dir);
	snprintf(tmp, sizeof(tmp), "%s/lock", sd->dir);
	if (rename(lock, tmp) < 0)
		return mbx__error_set(err, MBX_ESYS, errno, NULL, "lock sandbox directory `%s`", sd->dir);
	return MBX_OK;
}

int mbx__statedir_new_sandbox(struct mbx_statedir *sd, const char *id, mbx_error **err)
{
	char *base = NULL;
	int rc = mbx__statedir_base(&base, err);

	if (rc < 0)
		return rc;
	mbx__statedir_collect(base, id, mbx__linux_remove_recorded_cgroups);
	rc = mbx__statedir_create(sd, base, id, 0700, err);
	free(base);
	return rc;
}

void mbx__statedir_release(struct mbx_statedir *sd)
{
	if (sd->dir && sd->made)
		mbx__rm_rf(sd->dir);
	if (sd->lockfd >= 0)
		close(sd->lockfd);
	free(sd->dir);
	sd->dir = NULL;
	sd->made = 0;
	sd->lockfd = -1;
}
