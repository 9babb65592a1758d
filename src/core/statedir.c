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

/* 1 when `name` is a sandbox id (16 hexadecimal digits) followed by `tail`. */
static int id_named(const char *name, const char *tail)
{
	return strspn(name, "0123456789abcdef") == 16 && strcmp(name + 16, tail) == 0;
}

/* A lock file <base>/<name> whose owner may have died: when its lock can be
 * taken, the record it holds is released and the file removed. A
 * "<id>.lock.new" is one whose creator died before naming it (or is being
 * made right now: only removed when old). */
static void collect_lock_file(const char *base, const char *name, void (*release)(const char *dir, const char *record))
{
	char path[4400]; /* base is at most 4000 bytes (mbx__statedir_collect), a name 255 */
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", base, name);
	if (id_named(name, ".lock.new")) {
		if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_mtime + 60 < time(NULL))
			unlink(path);
		return;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
		if (release)
			release(NULL, path);
		unlink(path);
	}
	close(fd);
}

/*
 * Cleans up after sandboxes whose owner died without destroying them (a
 * killed CLI, a crashed host program): their processes already died with
 * their channel (os) or their owner (wasm); what can remain is the directory
 * or lock file and what `release` knows about. A lock we can take belongs to
 * a dead owner.
 */
void mbx__statedir_collect(const char *base, const char *self, void (*release)(const char *dir, const char *record))
{
	DIR *d = opendir(base);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char dir[4400], lock[4500], record[4500];

		if (strlen(base) > 4000)
			break;
		int fd;

		if (strncmp(de->d_name, self, 16) == 0)
			continue;
		if (id_named(de->d_name, ".lock") || id_named(de->d_name, ".lock.new")) {
			collect_lock_file(base, de->d_name, release);
			continue;
		}
		if (!id_named(de->d_name, ""))
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
			snprintf(record, sizeof(record), "%s/cgroups", dir);
			if (release)
				release(dir, record);
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

/* The checked base, after collecting what dead owners left there: what a
 * new sandbox's state starts with. */
static int base_collected(char **base, const char *id, mbx_error **err)
{
	int rc = mbx__statedir_base(base, err);

	if (rc == MBX_OK)
		mbx__statedir_collect(*base, id, mbx__linux_remove_recorded_cgroups);
	return rc;
}

int mbx__statedir_new_sandbox(struct mbx_statedir *sd, const char *id, mbx_error **err)
{
	char *base = NULL;
	int rc = base_collected(&base, id, err);

	if (rc < 0)
		return rc;
	rc = mbx__statedir_create(sd, base, id, 0700, err);
	free(base);
	return rc;
}

int mbx__statedir_new_lock(struct mbx_statedir *sd, const char *id, mbx_error **err)
{
	char *base = NULL, *tmp = NULL;
	int rc = base_collected(&base, id, err);

	if (rc < 0)
		return rc;
	if (asprintf(&sd->lockfile, "%s/%s.lock", base, id) < 0 || asprintf(&tmp, "%s.new", sd->lockfile) < 0) {
		sd->lockfile = NULL;
		free(base);
		return mbx__error_oom(err);
	}
	free(base);
	/* Named only once locked, as the directory's lock (statedir_create):
	 * a collector never finds it unlocked. */
	sd->lockfd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (sd->lockfd < 0 || flock(sd->lockfd, LOCK_EX | LOCK_NB) < 0 || rename(tmp, sd->lockfile) < 0) {
		rc = mbx__error_set(err, MBX_ESYS, errno, NULL, "lock sandbox state `%s`", sd->lockfile);
		if (sd->lockfd >= 0)
			unlink(tmp);
		free(sd->lockfile);
		sd->lockfile = NULL;
	}
	free(tmp);
	return rc;
}

int mbx__statedir_record(const struct mbx_statedir *sd, const char *text)
{
	size_t len = strlen(text);
	char path[4200];
	int fd, rc = 0;

	if (sd->dir == NULL) {
		if (pwrite(sd->lockfd, text, len, 0) != (ssize_t)len || ftruncate(sd->lockfd, (off_t)len) < 0)
			return -1;
		return 0;
	}
	snprintf(path, sizeof(path), "%s/cgroups", sd->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	if (write(fd, text, len) != (ssize_t)len)
		rc = -1;
	if (close(fd) < 0)
		rc = -1;
	return rc;
}

void mbx__statedir_release(struct mbx_statedir *sd)
{
	if (sd->dir && sd->made)
		mbx__rm_rf(sd->dir);
	/* Unlinked while still locked: a collector that opened it before
	 * takes the lock only after, and finds nothing left to do. */
	if (sd->lockfile)
		unlink(sd->lockfile);
	if (sd->lockfd >= 0)
		close(sd->lockfd);
	free(sd->dir);
	free(sd->lockfile);
	sd->dir = NULL;
	sd->lockfile = NULL;
	sd->made = 0;
	sd->lockfd = -1;
}
