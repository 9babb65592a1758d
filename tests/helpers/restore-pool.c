/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Drives a restore pool for real (tests/integration/test_restore_pool.py;
 * include/mbx/restore_pool.h, docs/snapshots.md "Restore pool"). Links the
 * library's internals to look at idle members. Not installed.
 *
 *   restore-pool MODE [DIR]
 *
 *   basic     members hold the snapshot's files, two acquired sandboxes are
 *             distinct and isolated, the pool refills, acquired sandboxes
 *             outlive the pool
 *   dead      an idle member whose agent was killed is never handed out and
 *             is replaced, at acquire and while idle (agent backends)
 *   expire    members idle longer than the idle timeout are replaced
 *   limits    min idle and max members hold; min 0 restores on demand; an
 *             empty pool times out
 *   inflight  freeing a pool with restores under way
 *   errors    bad settings and snapshots are refused with clear errors
 *   failing DIR  restores that fail in the background (DIR, mounted into
 *             members, is renamed away and back): the error reaches acquire
 *             and stats, and the pool recovers
 *
 * The backend is MBX_TEST_POOL_BACKEND (os, wasm or microvm; default os).
 * Prints `sandbox ID` for every sandbox made, then one `ok NAME` or
 * `not ok NAME: WHY` line per check; exit status 0 when all passed.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mbx/mbx.h>
#include "internal.h"
#include "snapshot.h"
#include "restore_pool.h"
#include "backend/backend.h"
#include "backend/microvm/microvm.h"

#define CONTENT "restored from the snapshot\n"

static int failures;
static mbx_isolation_t backend = MBX_ISOLATION_OS;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t main_thread;
/* inflight: the pool's thread lingers in the log callback of each restore
 * (still in flight then), and says so. */
static int slow_restores;
static int in_restore;

static void check(int ok, const char *name, const char *why)
{
	pthread_mutex_lock(&out_lock);
	if (ok)
		printf("ok %s\n", name);
	else {
		printf("not ok %s: %s\n", name, why ? why : "");
		failures++;
	}
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

static void check_rc_(int rc, int want, const char *name, mbx_error *err)
{
	char why[1024];

	snprintf(why, sizeof(why), "got %s (%s), want %s", mbx_error_code_name(rc), err ? mbx_error_message(err) : "no error",
		 mbx_error_code_name(want));
	check(rc == want, name, why);
}

/* The ids seen in the log so far. */
#define MAX_SEEN 4096
static char seen_ids[MAX_SEEN][17];
static size_t nseen;

static void announce(const char *id)
{
	pthread_mutex_lock(&out_lock);
	if (nseen < MAX_SEEN)
		snprintf(seen_ids[nseen++], sizeof(seen_ids[0]), "%s", id);
	printf("sandbox %s\n", id);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

/* Every member the pool makes is named in the log: print its id for the
 * test's leftover checks. Called from the pool's thread. */
static void log_cb(mbx_log_level_t level, const char *msg, void *userdata)
{
	char id[17];

	(void)level;
	(void)userdata;
	if (sscanf(msg, "sandbox %16[0-9a-f] created", id) == 1 && strlen(id) == 16) {
		announce(id);
		if (__atomic_load_n(&slow_restores, __ATOMIC_SEQ_CST) && !pthread_equal(pthread_self(), main_thread)) {
			__atomic_store_n(&in_restore, 1, __ATOMIC_SEQ_CST);
			usleep(300000);
		}
	}
}

static int was_logged(const char *id)
{
	int found = 0;

	pthread_mutex_lock(&out_lock);
	for (size_t i = 0; i < nseen && !found; i++)
		found = strcmp(seen_ids[i], id) == 0;
	pthread_mutex_unlock(&out_lock);
	return found;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(unsigned ms)
{
	usleep(ms * 1000u);
}

static int agent_backend(void)
{
	return backend != MBX_ISOLATION_WASM;
}

static mbx_config *sandbox_config(void)
{
	mbx_config *cfg = NULL;

	if (mbx_config_new(&cfg, NULL) < 0)
		return NULL;
	mbx_config_set_isolation(cfg, backend, NULL);
	mbx_config_set_log(cfg, MBX_LOG_INFO, log_cb, NULL);
	return cfg;
}

/* Settings; the sandbox config `cfg`, a fresh one of the backend when NULL,
 * or none (the snapshot's) with `snapshot_config`. */
static mbx_restore_pool_config *pool_config_of(uint32_t min, uint32_t max, uint64_t timeout_ms, const mbx_config *cfg,
					       int snapshot_config)
{
	mbx_restore_pool_config *p = NULL;
	mbx_config *own = NULL;

	if (mbx_restore_pool_config_new(&p, NULL) < 0)
		return NULL;
	if (cfg == NULL && !snapshot_config)
		cfg = own = sandbox_config();
	mbx_restore_pool_config_set_max_members(p, max, NULL);
	mbx_restore_pool_config_set_min_idle(p, min, NULL);
	mbx_restore_pool_config_set_idle_timeout_ms(p, timeout_ms, NULL);
	mbx_restore_pool_config_set_sandbox_config(p, cfg, NULL);
	mbx_config_free(own);
	return p;
}

static mbx_restore_pool_config *pool_config(uint32_t min, uint32_t max, uint64_t timeout_ms, const mbx_config *cfg)
{
	return pool_config_of(min, max, timeout_ms, cfg, 0);
}

/* A snapshot of a sandbox whose /workspace holds hello.txt. */
static mbx_snapshot *make_snapshot(const mbx_config *cfg)
{
	mbx_config *own = cfg ? NULL : sandbox_config();
	mbx_sandbox *sb = NULL;
	mbx_snapshot *snap = NULL;
	mbx_error *err = NULL;

	if (mbx_sandbox_new(&sb, cfg ? cfg : own, &err) < 0 ||
	    mbx_sandbox_write_file(sb, "/workspace/hello.txt", CONTENT, strlen(CONTENT), 0644, 0, &err) < 0 ||
	    mbx_sandbox_snapshot(&snap, sb, &err) < 0) {
		check(0, "snapshot", err ? mbx_error_message(err) : "?");
		snap = NULL;
	}
	mbx_error_free(err);
	mbx_sandbox_free(sb);
	mbx_config_free(own);
	return snap;
}

static uint64_t stat_of(mbx_restore_pool *pool, unsigned which)
{
	uint64_t v[MBX_RESTORE_POOL_STAT_COUNT] = { 0 };

	mbx_restore_pool_stats(pool, v, MBX_RESTORE_POOL_STAT_COUNT);
	return v[which];
}

/* Waits up to ms for the pool's idle count to reach n. */
static int wait_idle(mbx_restore_pool *pool, uint64_t n, unsigned ms)
{
	double end = now_ms() + ms;

	while (stat_of(pool, MBX_RESTORE_POOL_STAT_IDLE) != n) {
		if (now_ms() > end)
			return 0;
		sleep_ms(10);
	}
	return 1;
}

static int has_file(mbx_sandbox *sb, const char *path, const char *want)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int ok = mbx_sandbox_read_file(sb, path, &data, &len, NULL) == MBX_OK && len == strlen(want) &&
		 memcmp(data, want, len) == 0;

	mbx_buffer_free(data);
	return ok;
}

static int runs_true(mbx_sandbox *sb)
{
	const char *argv[] = { "/bin/true", NULL };
	mbx_result *res = NULL;
	int ok;

	if (!agent_backend())
		return has_file(sb, "/workspace/hello.txt", CONTENT);
	ok = mbx_sandbox_exec(sb, argv, NULL, &res, NULL) == MBX_OK && mbx_result_exit_code(res) == 0;
	mbx_result_free(res);
	return ok;
}

/* The call first, then the error it set (C leaves the order of arguments
 * open). */
#define check_rc(call, want, name, e)                  \
	do {                                           \
		int rc_ = (call);                      \
		check_rc_(rc_, (want), (name), (e));   \
	} while (0)

/* ==== basic ==== */

static void mode_basic(mbx_snapshot *snap)
{
	mbx_restore_pool_config *pc = pool_config(2, 3, 0, NULL);
	mbx_restore_pool *pool = NULL;
	mbx_sandbox *a = NULL, *b = NULL;
	mbx_error *err = NULL;
	uint8_t *data = NULL;
	size_t len;
	int rc;

	rc = mbx_restore_pool_new(&pool, snap, pc, &err);
	mbx_restore_pool_config_free(pc);
	/* The pool keeps its own copy: the caller's may go at once. */
	mbx_snapshot_free(snap);
	check_rc(rc, MBX_OK, "new", err);
	if (pool == NULL)
		return;
	check_rc(mbx_restore_pool_acquire(pool, &a, 30000, &err), MBX_OK, "acquire-a", err);
	check_rc(mbx_restore_pool_acquire(pool, &b, 30000, &err), MBX_OK, "acquire-b", err);
	if (a == NULL || b == NULL)
		goto out;
	check(strcmp(mbx_sandbox_id(a), mbx_sandbox_id(b)) != 0, "distinct", "the same sandbox twice");
	check(has_file(a, "/workspace/hello.txt", CONTENT) && has_file(b, "/workspace/hello.txt", CONTENT),
	      "snapshot-files", "hello.txt is not the snapshot's");
	check(mbx_sandbox_write_file(a, "/workspace/mine.txt", "a\n", 2, 0644, 0, &err) == MBX_OK, "write-a",
	      err ? mbx_error_message(err) : "");
	rc = mbx_sandbox_read_file(b, "/workspace/mine.txt", &data, &len, NULL);
	mbx_buffer_free(data);
	check(rc == MBX_ENOTFOUND, "isolated", "a file written in one member is seen in the other");
	check(runs_true(a) && runs_true(b), "first-command", "/bin/true failed");
	check(wait_idle(pool, 2, 60000), "refilled", "the pool did not get back to 2 idle members");
	check(stat_of(pool, MBX_RESTORE_POOL_STAT_ACQUIRED) == 2 && stat_of(pool, MBX_RESTORE_POOL_STAT_CREATED) >= 4 &&
	      stat_of(pool, MBX_RESTORE_POOL_STAT_FAILED) == 0, "stats", "acquired, created or failed counts are off");
out:
	mbx_restore_pool_free(pool);
	/* The pool's thread has ended: what it restored and handed out lives on. */
	if (a != NULL) {
		sleep_ms(300);
		check(runs_true(a) && has_file(a, "/workspace/mine.txt", "a\n"), "outlives-pool",
		      "an acquired sandbox stopped working after the pool was freed");
	}
	mbx_sandbox_free(a);
	mbx_sandbox_free(b);
	mbx_error_free(err);
}

/* ==== dead ==== */

struct idle_info {
	char id[17];
	pid_t pid;
};

static void note_idle(mbx_sandbox *sb, void *userdata)
{
	struct idle_info *i = userdata;

	snprintf(i->id, sizeof(i->id), "%s", mbx_sandbox_id(sb));
	/* The os sandbox's agent, or a microVM's QEMU: either way the
	 * member's channel ends. */
	i->pid = backend == MBX_ISOLATION_MICROVM ? mbx__microvm_vmm_pid(sb) : mbx__linux_agent_pid(sb);
}

/* Whether a process has exited: gone, or a zombie nobody reaped yet whose
 * other threads are gone too (a multithreaded process's leader is a zombie
 * while its other threads still exit, its descriptors still open: QEMU). */
static int process_gone(pid_t pid)
{
	char path[64], buf[2048], *rp;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return 1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	rp = strrchr(buf, ')');
	if (rp == NULL || rp[1] == '\0')
		return 1;
	if (rp[2] != 'Z' && rp[2] != 'X')
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return 1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	rp = strstr(buf, "\nThreads:");
	return rp == NULL || strtol(rp + 9, NULL, 10) <= 1;
}

/* Kills the agent of the (single) idle member and waits until it is gone
 * (by /proc: valgrind knows no pidfd_open). */
static int kill_idle_agent(mbx_restore_pool *pool, struct idle_info *info)
{
	double end;

	memset(info, 0, sizeof(*info));
	if (mbx__restore_pool_each_idle(pool, note_idle, info) != 1 || info->pid <= 0)
		return 0;
	if (kill(info->pid, SIGKILL) < 0)
		return 0;
	end = now_ms() + 10000;
	while (!process_gone(info->pid)) {
		if (now_ms() > end)
			return 0;
		sleep_ms(1);
	}
	return 1;
}

static void mode_dead(mbx_snapshot *snap)
{
	mbx_restore_pool_config *pc = pool_config(1, 1, 0, NULL);
	mbx_restore_pool *pool = NULL;
	mbx_sandbox *sb = NULL;
	mbx_error *err = NULL;
	struct idle_info killed, now;
	double end;

	if (backend != MBX_ISOLATION_OS && backend != MBX_ISOLATION_MICROVM) {
		/* The os backend says which process is a member's agent, the
		 * microvm backend which is its QEMU. */
		check(1, "dead # skip: agent pids are known on the os backend only", NULL);
		mbx_restore_pool_config_free(pc);
		return;
	}
	check_rc(mbx_restore_pool_new(&pool, snap, pc, &err), MBX_OK, "new", err);
	mbx_restore_pool_config_free(pc);
	if (pool == NULL)
		return;
	/* At the hand-over: the agent is dead before the pool's next sweep. */
	check(kill_idle_agent(pool, &killed), "killed", "could not kill the idle member's agent");
	check_rc(mbx_restore_pool_acquire(pool, &sb, 30000, &err), MBX_OK, "acquire", err);
	check(sb && strcmp(mbx_sandbox_id(sb), killed.id) != 0, "killed-not-handed-out",
	      "the member whose agent was killed was handed out");
	check(sb && runs_true(sb) && has_file(sb, "/workspace/hello.txt", CONTENT), "replacement-works",
	      "the member handed out instead does not work");
	check(stat_of(pool, MBX_RESTORE_POOL_STAT_DISCARDED) >= 1, "discarded-counted", "no member was counted discarded");
	mbx_sandbox_free(sb);
	sb = NULL;
	/* While idle: the pool's own sweep replaces it, with no acquire. */
	check(wait_idle(pool, 1, 60000), "refilled", "no member came back");
	check(kill_idle_agent(pool, &killed), "killed-again", "could not kill the idle member's agent");
	end = now_ms() + 30000;
	do {
		sleep_ms(20);
		memset(&now, 0, sizeof(now));
		mbx__restore_pool_each_idle(pool, note_idle, &now);
	} while ((now.id[0] == '\0' || strcmp(now.id, killed.id) == 0) && now_ms() < end);
	check(now.id[0] && strcmp(now.id, killed.id) != 0 && stat_of(pool, MBX_RESTORE_POOL_STAT_DISCARDED) >= 2,
	      "replaced-while-idle", "the dead idle member stayed in the pool");
	check_rc(mbx_restore_pool_acquire(pool, &sb, 30000, &err), MBX_OK, "acquire-again", err);
	check(sb && runs_true(sb), "replacement-works-again", "the member handed out does not work");
	mbx_sandbox_free(sb);
	mbx_restore_pool_free(pool);
	mbx_error_free(err);
}

/* ==== expire ==== */

static void mode_expire(mbx_snapshot *snap)
{
	/* No sandbox config: members get the snapshot's, log callback included. */
	mbx_restore_pool_config *pc = pool_config_of(1, 2, 300, NULL, 1);
	mbx_restore_pool *pool = NULL;
	mbx_sandbox *sb = NULL;
	mbx_error *err = NULL;
	struct idle_info first, now;
	double end;

	check_rc(mbx_restore_pool_new(&pool, snap, pc, &err), MBX_OK, "new", err);
	mbx_restore_pool_config_free(pc);
	if (pool == NULL)
		return;
	memset(&first, 0, sizeof(first));
	mbx__restore_pool_each_idle(pool, note_idle, &first);
	end = now_ms() + 30000;
	do {
		sleep_ms(20);
		memset(&now, 0, sizeof(now));
		mbx__restore_pool_each_idle(pool, note_idle, &now);
	} while ((now.id[0] == '\0' || strcmp(now.id, first.id) == 0) && now_ms() < end);
	check(first.id[0] && now.id[0] && strcmp(now.id, first.id) != 0, "expired-replaced",
	      "the first member was still idle after its idle timeout");
	check(stat_of(pool, MBX_RESTORE_POOL_STAT_DISCARDED) >= 1 && stat_of(pool, MBX_RESTORE_POOL_STAT_CREATED) >= 2,
	      "expired-counted", "no member was counted discarded");
	check_rc(mbx_restore_pool_acquire(pool, &sb, 30000, &err), MBX_OK, "acquire", err);
	check(sb && strcmp(mbx_sandbox_id(sb), first.id) != 0 && runs_true(sb), "fresh-handed-out",
	      "an expired member was handed out");
	check(sb && was_logged(mbx_sandbox_id(sb)), "snapshot-config-logs",
	      "a member restored with the snapshot's config did not log through its callback");
	mbx_sandbox_free(sb);
	mbx_restore_pool_free(pool);
	mbx_error_free(err);
}

/* ==== limits ==== */

static void mode_limits(mbx_snapshot *snap)
{
	mbx_restore_pool_config *pc = pool_config(3, 3, 0, NULL);
	mbx_restore_pool *pool = NULL;
	mbx_sandbox *a = NULL, *b = NULL, *c = NULL;
	mbx_error *err = NULL;
	uint64_t v[MBX_RESTORE_POOL_STAT_COUNT];
	int above = 0, reached = 0, short_stats = 0, rc;
	double end;

	check_rc(mbx_restore_pool_new(&pool, snap, pc, &err), MBX_OK, "new", err);
	mbx_restore_pool_config_free(pc);
	if (pool == NULL)
		return;
	end = now_ms() + 60000;
	while (now_ms() < end) {
		if (mbx_restore_pool_stats(pool, v, MBX_RESTORE_POOL_STAT_COUNT) != MBX_RESTORE_POOL_STAT_COUNT)
			short_stats = 1;
		if (v[MBX_RESTORE_POOL_STAT_IDLE] + v[MBX_RESTORE_POOL_STAT_IN_FLIGHT] > 3)
			above = 1;
		if (v[MBX_RESTORE_POOL_STAT_IDLE] == 3 && !reached) {
			reached = 1;
			end = now_ms() + 500; /* then watch it hold */
		}
		sleep_ms(10);
	}
	check(!short_stats && mbx_restore_pool_stats(pool, v, 2) == 2, "stats-count",
	      "mbx_restore_pool_stats did not fill the values asked for");
	check(reached, "min-reached", "the pool never had 3 idle members");
	check(!above, "never-above-max", "idle plus in flight went above max members");
	check(stat_of(pool, MBX_RESTORE_POOL_STAT_CREATED) == 3 && stat_of(pool, MBX_RESTORE_POOL_STAT_IDLE) == 3,
	      "holds-steady", "a full pool restored more members");
	mbx_restore_pool_free(pool);
	pool = NULL;

	/* min 0: only the first member (made by new), then restores on demand. */
	pc = pool_config(0, 2, 0, NULL);
	check_rc(mbx_restore_pool_new(&pool, snap, pc, &err), MBX_OK, "new-min-zero", err);
	mbx_restore_pool_config_free(pc);
	if (pool == NULL)
		return;
	check_rc(mbx_restore_pool_acquire(pool, &a, 0, &err), MBX_OK, "acquire-first", err);
	sleep_ms(500);
	check(stat_of(pool, MBX_RESTORE_POOL_STAT_CREATED) == 1 && stat_of(pool, MBX_RESTORE_POOL_STAT_IDLE) == 0,
	      "min-zero-no-refill", "a pool with min idle 0 restored a member nobody asked for");
	rc = mbx_restore_pool_acquire(pool, &b, 0, &err);
	check_rc(rc, MBX_ETIMEDOUT, "empty-timeout", err);
	check(rc != MBX_ETIMEDOUT || (err && strstr(mbx_error_message(err), "no member was ready") &&
				      mbx_error_suggestion(err) != NULL),
	      "empty-timeout-message", err ? mbx_error_message(err) : "no error");
	check_rc(mbx_restore_pool_acquire(pool, &b, 60000, &err), MBX_OK, "on-demand", err);
	check(b && runs_true(b), "on-demand-works", "the member restored on demand does not work");
	check(stat_of(pool, MBX_RESTORE_POOL_STAT_CREATED) == 2, "on-demand-count", "not exactly one restore on demand");
	check_rc(mbx_restore_pool_acquire(pool, &c, 60000, &err), MBX_OK, "on-demand-again", err);
	mbx_restore_pool_free(pool);
	mbx_sandbox_free(a);
	mbx_sandbox_free(b);
	mbx_sandbox_free(c);
	mbx_error_free(err);
}

/* ==== inflight ==== */

static void mode_inflight(mbx_snapshot *snap)
{
	mbx_restore_pool_config *pc = pool_config(4, 4, 0, NULL);
	mbx_restore_pool *pool = NULL;
	mbx_sandbox *sb = NULL;
	mbx_error *err = NULL;
	double end;

	__atomic_store_n(&slow_restores, 1, __ATOMIC_SEQ_CST);
	check_rc(mbx_restore_pool_new(&pool, snap, pc, &err), MBX_OK, "new", err);
	if (pool == NULL) {
		mbx_restore_pool_config_free(pc);
		return;
	}
	/* Freed while its thread restores the second member (held up in
	 * the log callback, at the end of the restore). */
	end = now_ms() + 30000;
	while (!__atomic_load_n(&in_restore, __ATOMIC_SEQ_CST) && now_ms() < end)
		sleep_ms(1);
	check(stat_of(pool, MBX_RESTORE_POOL_STAT_IN_FLIGHT) == 1, "in-flight-seen", "no restore was seen in flight");
	mbx_restore_pool_free(pool);
	__atomic_store_n(&slow_restores, 0, __ATOMIC_SEQ_CST);
	check(1, "freed-in-flight", NULL);

	pool = NULL;
	check_rc(mbx_restore_pool_new(&pool, snap, pc, &err), MBX_OK, "new-again", err);
	mbx_restore_pool_config_free(pc);
	if (pool == NULL)
		return;
	check_rc(mbx_restore_pool_acquire(pool, &sb, 30000, &err), MBX_OK, "acquire", err);
	mbx_restore_pool_free(pool);
	check(sb && runs_true(sb), "acquired-outlives-pool", "the acquired sandbox stopped working");
	mbx_sandbox_free(sb);
	mbx_error_free(err);
}

/* ==== errors ==== */

static void expect_einval_(int rc, mbx_error *err, const char *name, const char *text)
{
	char why[1024];

	snprintf(why, sizeof(why), "got %s: %s", mbx_error_code_name(rc), err ? mbx_error_message(err) : "no error");
	check(rc == MBX_EINVAL && err && strstr(mbx_error_message(err), text), name, why);
}

#define expect_einval(call, e, name, text)                 \
	do {                                               \
		int rc_ = (call);                          \
		expect_einval_(rc_, (e), (name), (text));  \
	} while (0)

static void mode_errors(mbx_snapshot *snap)
{
	mbx_restore_pool_config *pc = NULL;
	mbx_restore_pool *pool = NULL;
	mbx_config *other = NULL;
	mbx_error *err = NULL;
	struct mbx_snapshot odd;
	int rc;

	check_rc(mbx_restore_pool_config_new(&pc, &err), MBX_OK, "config-new", err);
	if (pc == NULL)
		return;
	rc = mbx_restore_pool_new(&pool, NULL, pc, &err);
	expect_einval(rc, err, "null-snapshot", "snapshot is NULL");
	check(pool == NULL && mbx_error_suggestion(err) != NULL, "null-snapshot-suggestion", "no suggestion");
	expect_einval(mbx_restore_pool_config_set_max_members(pc, 0, &err), err, "zero-max", "max members must be 1 to");
	expect_einval(mbx_restore_pool_config_set_max_members(pc, MBX_RESTORE_POOL_MAX_MEMBERS + 1, &err), err,
		      "huge-max", "max members must be 1 to");
	expect_einval(mbx_restore_pool_config_set_min_idle(pc, MBX_RESTORE_POOL_MAX_MEMBERS + 1, &err), err, "huge-min",
		      "at most");
	expect_einval(mbx_restore_pool_config_set_idle_timeout_ms(pc, 2ull * 24 * 3600 * 1000, &err), err,
		      "huge-idle-timeout", "at most a day");
	mbx_restore_pool_config_set_max_members(pc, 2, NULL);
	mbx_restore_pool_config_set_min_idle(pc, 5, NULL);
	rc = mbx_restore_pool_new(&pool, snap, pc, &err);
	expect_einval(rc, err, "min-above-max", "cannot keep 5 members ready with at most 2");
	check(err && mbx_error_suggestion(err) && strstr(mbx_error_suggestion(err), "min idle"), "min-above-max-suggestion",
	      err && mbx_error_suggestion(err) ? mbx_error_suggestion(err) : "none");
	mbx_restore_pool_config_set_min_idle(pc, 1, NULL);

	/* A sandbox config of another backend than the snapshot's. */
	mbx_config_new(&other, NULL);
	mbx_config_set_isolation(other, backend == MBX_ISOLATION_OS ? MBX_ISOLATION_MICROVM : MBX_ISOLATION_OS, NULL);
	mbx_restore_pool_config_set_sandbox_config(pc, other, NULL);
	mbx_config_free(other);
	rc = mbx_restore_pool_new(&pool, snap, pc, &err);
	expect_einval(rc, err, "other-backend", "the snapshot is of the");
	mbx_restore_pool_config_set_sandbox_config(pc, NULL, NULL);

	/* A snapshot of a backend this library does not know. */
	odd = *snap;
	odd.isolation = (mbx_isolation_t)0x7f;
	rc = mbx_restore_pool_new(&pool, &odd, pc, &err);
	expect_einval(rc, err, "unknown-backend", "unknown backend");
#if !MBX_FEATURE_WASM
	{
		/* A wasm snapshot (an empty /workspace) in a build without Wasm. */
		struct mbx_snapshot w;
		uint8_t end = MBX_SNAPF_END;

		memset(&w, 0, sizeof(w));
		w.isolation = MBX_ISOLATION_WASM;
		mbx_config_new(&w.cfg, NULL);
		mbx_config_set_isolation(w.cfg, MBX_ISOLATION_WASM, NULL);
		mbx__buf_append(&w.payload, &end, 1);
		rc = mbx_restore_pool_new(&pool, &w, pc, &err);
		check(rc == MBX_ENOTSUP && err && strstr(mbx_error_message(err), "wasm backend is unavailable"),
		      "backend-not-built-in", err ? mbx_error_message(err) : "no error");
		mbx_config_free(w.cfg);
		mbx__buf_release(&w.payload);
	}
#else
	check(1, "backend-not-built-in # skip: this build has every backend", NULL);
#endif
	check(pool == NULL, "nothing-made", "a pool was made from bad input");
	mbx_restore_pool_config_free(pc);
	check(mbx_restore_pool_acquire(NULL, NULL, 0, NULL) == MBX_EINVAL &&
	      mbx_restore_pool_stats(NULL, NULL, 3) == 0, "null-pool", "NULL pool not refused");
	mbx_restore_pool_free(NULL);
	mbx_error_free(err);
}

/* ==== failing ==== */

static void mode_failing(mbx_snapshot *snap, const char *dir)
{
	mbx_config *cfg = sandbox_config();
	mbx_restore_pool_config *pc;
	mbx_restore_pool *pool = NULL;
	mbx_sandbox *sb = NULL;
	mbx_error *err = NULL, *last = NULL;
	char away[4200];
	double t;
	int rc;

	check_rc(mbx_config_add_mount(cfg, dir, "/mnt/data", 0, &err), MBX_OK, "mount", err);
	pc = pool_config(1, 1, 0, cfg);
	mbx_config_free(cfg);
	check_rc(mbx_restore_pool_new(&pool, snap, pc, &err), MBX_OK, "new", err);
	mbx_restore_pool_config_free(pc);
	if (pool == NULL)
		return;
	snprintf(away, sizeof(away), "%s.away", dir);
	check(rename(dir, away) == 0, "renamed-away", strerror(errno));
	check_rc(mbx_restore_pool_acquire(pool, &sb, 0, &err), MBX_OK, "acquire-first", err);
	mbx_sandbox_free(sb);
	sb = NULL;
	/* The replacement cannot be restored: acquire says why, at once. */
	t = now_ms();
	rc = mbx_restore_pool_acquire(pool, &sb, 60000, &err);
	check(rc != MBX_OK && rc != MBX_ETIMEDOUT && err && strstr(mbx_error_message(err), "the last restore failed") &&
	      strstr(mbx_error_message(err), dir) && now_ms() - t < 30000, "failure-reaches-acquire",
	      err ? mbx_error_message(err) : "no error");
	check(stat_of(pool, MBX_RESTORE_POOL_STAT_FAILED) >= 1 && stat_of(pool, MBX_RESTORE_POOL_STAT_IDLE) == 0,
	      "failure-counted", "no failed restore counted");
	check(mbx_restore_pool_last_error(pool, &last) == MBX_OK && last && mbx_error_code(last) == rc &&
	      strstr(mbx_error_message(last), dir), "last-error", last ? mbx_error_message(last) : "none kept");
	mbx_error_free(last);
	last = NULL;
	/* The pool keeps trying (with a pause): back in place, it recovers. */
	check(rename(away, dir) == 0, "renamed-back", strerror(errno));
	check_rc(mbx_restore_pool_acquire(pool, &sb, 60000, &err), MBX_OK, "recovers", err);
	check(sb && runs_true(sb), "recovered-works", "the member restored after the failures does not work");
	check(mbx_restore_pool_last_error(pool, &last) == MBX_OK && last == NULL, "last-error-cleared",
	      last ? mbx_error_message(last) : "");
	mbx_error_free(last);
	mbx_sandbox_free(sb);
	mbx_restore_pool_free(pool);
	mbx_error_free(err);
}

int main(int argc, char **argv)
{
	const char *b = getenv("MBX_TEST_POOL_BACKEND");
	mbx_snapshot *snap;

	if (argc < 2) {
		fprintf(stderr, "usage: restore-pool basic|dead|expire|limits|inflight|errors|failing DIR\n");
		return 2;
	}
	if (b && strcmp(b, "wasm") == 0)
		backend = MBX_ISOLATION_WASM;
	else if (b && strcmp(b, "microvm") == 0)
		backend = MBX_ISOLATION_MICROVM;
	else if (b && b[0] && strcmp(b, "os") != 0) {
		fprintf(stderr, "restore-pool: unknown backend `%s` (os, wasm or microvm)\n", b);
		return 2;
	}
	main_thread = pthread_self();
	snap = make_snapshot(NULL);
	if (snap == NULL)
		return 1;
	if (strcmp(argv[1], "basic") == 0) {
		mode_basic(snap); /* frees snap early on purpose */
		snap = NULL;
	} else if (strcmp(argv[1], "dead") == 0)
		mode_dead(snap);
	else if (strcmp(argv[1], "expire") == 0)
		mode_expire(snap);
	else if (strcmp(argv[1], "limits") == 0)
		mode_limits(snap);
	else if (strcmp(argv[1], "inflight") == 0)
		mode_inflight(snap);
	else if (strcmp(argv[1], "errors") == 0)
		mode_errors(snap);
	else if (strcmp(argv[1], "failing") == 0 && argc == 3)
		mode_failing(snap, argv[2]);
	else {
		fprintf(stderr, "restore-pool: unknown mode `%s`\n", argv[1]);
		mbx_snapshot_free(snap);
		return 2;
	}
	mbx_snapshot_free(snap);
	return failures ? 1 : 0;
}
