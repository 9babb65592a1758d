/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Restore pools (include/mbx/restore_pool.h): sandboxes restored from one
 * snapshot ahead of time by one thread per pool.
 *
 * Who touches a member: a sandbox handle is single-threaded (docs/api.md),
 * so a member belongs to exactly one place at a time: the thread restoring
 * it, the idle list, the trash list or the caller it was handed to. The
 * lists are only read or changed under the pool's lock; whoever takes a
 * member off a list owns it. Checking an idle member (its age, whether its
 * agent's channel is closed) happens under the lock, on the list.
 *
 * The pool's thread does the slow work: restores, and destroys what was
 * discarded (acquire only moves a discarded member to the trash, so an
 * acquire never pays for a teardown).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "restore_pool.h"
#include "snapshot.h"
#include "backend/client.h"
#include "backend/transport.h"

#define DEFAULT_MIN_IDLE 1u
#define DEFAULT_MAX_MEMBERS 4u
#define DEFAULT_IDLE_TIMEOUT_MS 300000u
#define MAX_IDLE_TIMEOUT_MS (24ull * 3600 * 1000)
/* How often the pool's thread looks for dead idle members. */
#define SWEEP_US 200000u
/* The pause after a failed restore: doubles from the first to the last. */
#define BACKOFF_FIRST_MS 100u
#define BACKOFF_MAX_MS 5000u

struct mbx_restore_pool_config {
	uint32_t min_idle;
	uint32_t max_members;
	uint64_t idle_timeout_ms; /* 0: never */
	mbx_config *cfg;          /* owned; NULL: the snapshot's */
};

struct member {
	mbx_sandbox *sb;
	uint64_t ready_us; /* when it was restored (mbx__now_us) */
};

struct mbx_restore_pool {
	pthread_mutex_t lock;
	pthread_cond_t work;  /* to the pool's thread: demand, trash, stop */
	pthread_cond_t ready; /* to acquirers: a member is ready or a restore failed */
	pthread_t thread;
	struct mbx_snapshot *snap; /* the pool's own copy */
	mbx_config *cfg;           /* owned; NULL: the snapshot's */
	uint32_t min_idle;
	uint32_t max_members;
	uint64_t idle_timeout_us;  /* 0: never */
	/* Under lock from here on. */
	struct member *idle; /* oldest first; room for max_members */
	size_t nidle;
	mbx_sandbox **trash; /* discarded, for the pool's thread to destroy */
	size_t ntrash, trash_cap;
	unsigned waiting;    /* acquires waiting for a member */
	int building;        /* the pool's thread is restoring one */
	int stopping;
	uint64_t created, failed, discarded, acquired;
	mbx_error *last_error; /* of the last restore, when it failed */
	uint64_t fail_gen;     /* failed restores so far (acquires watch it) */
	uint64_t retry_at_us;  /* no restore before (after a failure) */
	unsigned fail_streak;  /* failed restores in a row */
	unsigned dead_streak;  /* members found dead since one was handed out or expired */
};

/* ==== settings ==== */

int mbx_restore_pool_config_new(mbx_restore_pool_config **out, mbx_error **err)
{
	mbx_restore_pool_config *c;

	if (out == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_restore_pool_config_new: out is NULL");
	c = calloc(1, sizeof(*c));
	*out = c;
	if (c == NULL)
		return mbx__error_oom(err);
	c->min_idle = DEFAULT_MIN_IDLE;
	c->max_members = DEFAULT_MAX_MEMBERS;
	c->idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
	return MBX_OK;
}

int mbx_restore_pool_config_set_min_idle(mbx_restore_pool_config *pcfg, uint32_t n, mbx_error **err)
{
	if (pcfg == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_restore_pool_config_set_min_idle: settings are NULL");
	if (n > MBX_RESTORE_POOL_MAX_MEMBERS)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "a restore pool keeps at most %u members ready, not %u",
				      MBX_RESTORE_POOL_MAX_MEMBERS, n);
	pcfg->min_idle = n;
	return MBX_OK;
}

int mbx_restore_pool_config_set_max_members(mbx_restore_pool_config *pcfg, uint32_t n, mbx_error **err)
{
	if (pcfg == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_restore_pool_config_set_max_members: settings are NULL");
	if (n == 0 || n > MBX_RESTORE_POOL_MAX_MEMBERS) {
		mbx__error_set(err, MBX_EINVAL, 0, NULL, "a restore pool's max members must be 1 to %u, not %u",
			       MBX_RESTORE_POOL_MAX_MEMBERS, n);
		if (n == 0)
			mbx__error_suggest(err, "a pool of 0 members can hand nothing out: use mbx_sandbox_from_snapshot() "
					   "for restores on demand");
		return MBX_EINVAL;
	}
	pcfg->max_members = n;
	return MBX_OK;
}

int mbx_restore_pool_config_set_idle_timeout_ms(mbx_restore_pool_config *pcfg, uint64_t ms, mbx_error **err)
{
	if (pcfg == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_restore_pool_config_set_idle_timeout_ms: settings are NULL");
	if (ms > MAX_IDLE_TIMEOUT_MS) {
		mbx__error_set(err, MBX_EINVAL, 0, NULL, "a restore pool's idle timeout is at most a day (%llu ms), not %llu ms",
			       (unsigned long long)MAX_IDLE_TIMEOUT_MS, (unsigned long long)ms);
		mbx__error_suggest(err, "give 0 for members that never expire");
		return MBX_EINVAL;
	}
	pcfg->idle_timeout_ms = ms;
	return MBX_OK;
}

int mbx_restore_pool_config_set_sandbox_config(mbx_restore_pool_config *pcfg, const mbx_config *cfg, mbx_error **err)
{
	mbx_config *copy = NULL;
	int rc;

	if (pcfg == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_restore_pool_config_set_sandbox_config: settings are NULL");
	if (cfg != NULL) {
		rc = mbx__config_copy(cfg, &copy, err);
		if (rc < 0)
			return rc;
	}
	mbx_config_free(pcfg->cfg);
	pcfg->cfg = copy;
	return MBX_OK;
}

void mbx_restore_pool_config_free(mbx_restore_pool_config *pcfg)
{
	if (pcfg == NULL)
		return;
	mbx_config_free(pcfg->cfg);
	free(pcfg);
}

/* ==== members ==== */

/*
 * Whether an idle member can still be handed out, without a round trip: not
 * destroyed and, for a backend with an agent, its channel neither broken
 * nor readable. An idle agent sends nothing, so anything to read (the end
 * of the stream above all: the agent, or the VM around it, died) means the
 * member is not what was restored. A hung but living agent is not seen here;
 * the caller's first request then times out as on any sandbox. This holds a
 * backend to one rule: a restore returns with nothing unread on the channel
 * (an agent that greets a reconnecting host is answered inside the restore),
 * else each of its members is discarded as dead.
 */
static int member_alive(mbx_sandbox *sb)
{
	struct mbx_client *c;

	if (sb->destroyed)
		return 0;
	if (sb->ops->client == NULL)
		return 1; /* no agent (wasm): nothing runs while it is idle */
	c = sb->ops->client(sb);
	if (c == NULL || c->broken || c->tr.ops == NULL || c->rb.len > c->rb.off)
		return 0;
	return c->tr.ops->poll(&c->tr, POLLIN, 0) == 0;
}

static int member_expired(const mbx_restore_pool *p, const struct member *m, uint64_t now)
{
	return p->idle_timeout_us && now - m->ready_us >= p->idle_timeout_us;
}

/* Moves a member to the trash (under lock); the pool's thread destroys it.
 * Without room for it, it is destroyed here. */
static void discard(mbx_restore_pool *p, mbx_sandbox *sb)
{
	p->discarded++;
	if (p->ntrash == p->trash_cap) {
		size_t cap = p->trash_cap ? p->trash_cap * 2 : 8;
		mbx_sandbox **t = realloc(p->trash, cap * sizeof(*t));

		if (t == NULL) {
			mbx_sandbox_free(sb);
			return;
		}
		p->trash = t;
		p->trash_cap = cap;
	}
	p->trash[p->ntrash++] = sb;
	pthread_cond_signal(&p->work);
}

/* The pause after n failures in a row: 0.1 s doubling up to 5 s. */
static uint32_t pause_ms(unsigned n)
{
	uint32_t ms = BACKOFF_FIRST_MS;

	if (n == 0)
		return 0;
	while (--n > 0 && ms < BACKOFF_MAX_MS)
		ms *= 2;
	return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

/*
 * A member found dead while idle (under lock). Members that keep dying (an
 * agent that cannot live in this config, a host killing them) must not turn
 * the pool into a loop of restores: their replacements wait as after failed
 * restores.
 */
static void discard_dead(mbx_restore_pool *p, mbx_sandbox *sb, uint64_t now)
{
	uint64_t at;

	p->dead_streak++;
	at = now + (uint64_t)pause_ms(p->dead_streak) * 1000u;
	if (p->dead_streak > 1 && at > p->retry_at_us)
		p->retry_at_us = at;
	discard(p, sb);
}

/* Takes the oldest idle member off the list (under lock). */
static struct member pop_oldest(mbx_restore_pool *p)
{
	struct member m = p->idle[0];

	p->nidle--;
	memmove(p->idle, p->idle + 1, p->nidle * sizeof(*p->idle));
	return m;
}

/*
 * Discards expired and dead idle members (under lock). Returns when the next
 * member expires (UINT64_MAX: none will).
 */
static uint64_t sweep(mbx_restore_pool *p, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	size_t i = 0;

	while (i < p->nidle) {
		struct member *m = &p->idle[i];
		int expired = member_expired(p, m, now);

		if (expired || !member_alive(m->sb)) {
			mbx_sandbox *sb = m->sb;

			p->nidle--;
			memmove(p->idle + i, p->idle + i + 1, (p->nidle - i) * sizeof(*p->idle));
			if (expired) {
				p->dead_streak = 0;
				discard(p, sb);
			} else {
				discard_dead(p, sb, now);
			}
			continue;
		}
		if (p->idle_timeout_us && m->ready_us + p->idle_timeout_us < next)
			next = m->ready_us + p->idle_timeout_us;
		i++;
	}
	return next;
}

/* Whether the pool's thread should restore one now (under lock): below min
 * idle, or acquires waiting for more than are ready; never above max. */
static int wants_member(const mbx_restore_pool *p)
{
	if (p->nidle >= p->max_members)
		return 0;
	return p->nidle < p->min_idle || p->waiting > p->nidle;
}

static void deadline_ts(struct timespec *ts, uint64_t at_us)
{
	/* The conds run on CLOCK_MONOTONIC, as mbx__now_us(). */
	ts->tv_sec = (time_t)(at_us / 1000000u);
	ts->tv_nsec = (long)(at_us % 1000000u) * 1000;
}

/* ==== the pool's thread ==== */

/* Destroys one discarded member; called under lock, unlocks around it. */
static void destroy_one(mbx_restore_pool *p)
{
	mbx_sandbox *sb = p->trash[--p->ntrash];

	pthread_mutex_unlock(&p->lock);
	mbx_sandbox_free(sb);
	pthread_mutex_lock(&p->lock);
}

/* One restore, counted; called under lock, unlocks around the restore. */
static void restore_one(mbx_restore_pool *p)
{
	mbx_sandbox *sb = NULL;
	mbx_error *e = NULL;
	int rc;

	p->building = 1;
	pthread_mutex_unlock(&p->lock);
	rc = mbx_sandbox_from_snapshot(&sb, p->snap, p->cfg, &e);
	/* A restored microVM runs its first command slowly: a new QEMU has
	 * translated none of the guest's code yet under TCG (no KVM here) and
	 * the guest's paths are cold. The pool pays that on its own thread with
	 * one /bin/true (it leaves nothing behind: no file, no process), so a
	 * user's first command does not (docs/snapshots.md, "Restore pool"). */
	if (rc == MBX_OK && sb->ops->isolation == MBX_ISOLATION_MICROVM) {
		static const char *const warm[] = { "/bin/true", NULL };
		mbx_result *r = NULL;

		if (mbx_sandbox_exec(sb, warm, NULL, &r, NULL) == MBX_OK)
			mbx_result_free(r);
	}
	pthread_mutex_lock(&p->lock);
	p->building = 0;
	if (rc < 0) {
		p->failed++;
		p->fail_gen++;
		mbx_error_free(p->last_error);
		p->last_error = e;
		p->fail_streak++;
		p->retry_at_us = mbx__now_us() + (uint64_t)pause_ms(p->fail_streak) * 1000u;
		pthread_cond_broadcast(&p->ready);
		return;
	}
	mbx_error_free(p->last_error);
	p->last_error = NULL;
	p->fail_streak = 0;
	if (p->stopping || p->nidle >= p->max_members) {
		pthread_mutex_unlock(&p->lock);
		mbx_sandbox_free(sb);
		pthread_mutex_lock(&p->lock);
		return;
	}
	p->created++;
	p->idle[p->nidle].sb = sb;
	p->idle[p->nidle].ready_us = mbx__now_us();
	p->nidle++;
	pthread_cond_broadcast(&p->ready);
}

static void *pool_main(void *arg)
{
	mbx_restore_pool *p = arg;

	pthread_mutex_lock(&p->lock);
	while (!p->stopping) {
		uint64_t now = mbx__now_us(), wake = sweep(p, now);
		struct timespec ts;

		/* A waiting acquire first, the teardown of discarded members after. */
		if (wants_member(p) && now >= p->retry_at_us && (p->waiting > 0 || p->ntrash == 0)) {
			restore_one(p);
			continue;
		}
		if (p->ntrash > 0) {
			destroy_one(p);
			continue;
		}
		if (wants_member(p) && p->retry_at_us < wake)
			wake = p->retry_at_us;
		if (now + SWEEP_US < wake)
			wake = now + SWEEP_US;
		deadline_ts(&ts, wake);
		pthread_cond_timedwait(&p->work, &p->lock, &ts);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* ==== the public API ==== */

/*
 * The pool's own copy of a snapshot: through its byte form under a random
 * key of this call, so whatever a backend keeps in a snapshot comes along
 * and the caller's handle is free to change or go. (An mbx_snapshot has no
 * reference count, and the caller may change its note at any time.)
 */
static int snapshot_copy(const struct mbx_snapshot *snap, struct mbx_snapshot **out, mbx_error **err)
{
	uint8_t key[MBX_SNAP_KEY_LEN];
	struct mbx_buf b = { 0 };
	int rc;

	if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key))
		return mbx__error_set(err, MBX_ESYS, errno, NULL, "getrandom for the restore pool's copy of the snapshot");
	rc = mbx__snapshot_encode(snap, key, &b, err);
	if (rc == MBX_OK)
		rc = mbx__snapshot_decode(out, b.data, b.len, key, err);
	memset(key, 0, sizeof(key));
	mbx__buf_release(&b);
	/* The log callback is no part of the bytes; members restored with the
	 * snapshot's config log where a restore of the caller's handle would. */
	if (rc == MBX_OK && snap->cfg) {
		(*out)->cfg->log_level = snap->cfg->log_level;
		(*out)->cfg->log_fn = snap->cfg->log_fn;
		(*out)->cfg->log_userdata = snap->cfg->log_userdata;
	}
	return rc;
}

static void pool_release(mbx_restore_pool *p)
{
	for (size_t i = 0; i < p->nidle; i++)
		mbx_sandbox_free(p->idle[i].sb);
	for (size_t i = 0; i < p->ntrash; i++)
		mbx_sandbox_free(p->trash[i]);
	mbx_error_free(p->last_error);
	mbx_snapshot_free(p->snap);
	mbx_config_free(p->cfg);
	free(p->idle);
	free(p->trash);
	free(p);
}

static int sync_init(mbx_restore_pool *p)
{
	pthread_condattr_t ca;
	int rc;

	rc = pthread_condattr_init(&ca);
	if (rc != 0)
		return rc;
	rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(&p->work, &ca);
	if (rc == 0 && (rc = pthread_cond_init(&p->ready, &ca)) != 0)
		pthread_cond_destroy(&p->work);
	pthread_condattr_destroy(&ca);
	if (rc == 0 && (rc = pthread_mutex_init(&p->lock, NULL)) != 0) {
		pthread_cond_destroy(&p->work);
		pthread_cond_destroy(&p->ready);
	}
	return rc;
}

int mbx_restore_pool_new(mbx_restore_pool **out, const mbx_snapshot *snap, const mbx_restore_pool_config *pcfg,
			 mbx_error **err)
{
	mbx_restore_pool_config defaults = { DEFAULT_MIN_IDLE, DEFAULT_MAX_MEMBERS, DEFAULT_IDLE_TIMEOUT_MS, NULL };
	mbx_restore_pool *p;
	mbx_sandbox *first = NULL;
	int rc;

	if (out == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_restore_pool_new: out is NULL");
	*out = NULL;
	if (snap == NULL) {
		mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_restore_pool_new: the snapshot is NULL");
		mbx__error_suggest(err, "make one with mbx_sandbox_snapshot() or read one with mbx_snapshot_load()");
		return MBX_EINVAL;
	}
	if (pcfg == NULL)
		pcfg = &defaults;
	if (pcfg->min_idle > pcfg->max_members) {
		mbx__error_set(err, MBX_EINVAL, 0, NULL,
			       "a restore pool cannot keep %u members ready with at most %u members",
			       pcfg->min_idle, pcfg->max_members);
		mbx__error_suggest(err, "make min idle at most max members (mbx_restore_pool_config_set_min_idle, "
				   "mbx_restore_pool_config_set_max_members)");
		return MBX_EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return mbx__error_oom(err);
	p->min_idle = pcfg->min_idle;
	p->max_members = pcfg->max_members;
	p->idle_timeout_us = pcfg->idle_timeout_ms * 1000u;
	p->idle = calloc(p->max_members, sizeof(*p->idle));
	rc = p->idle ? snapshot_copy(snap, &p->snap, err) : mbx__error_oom(err);
	if (rc == MBX_OK && pcfg->cfg)
		rc = mbx__config_copy(pcfg->cfg, &p->cfg, err);
	/* The first member here: a snapshot or config that cannot work fails
	 * now, with the restore's own error, not later in the background. */
	if (rc == MBX_OK)
		rc = mbx_sandbox_from_snapshot(&first, p->snap, p->cfg, err);
	if (rc < 0) {
		mbx__error_wrap(err, "restore pool");
		pool_release(p);
		return rc;
	}
	p->created = 1;
	p->idle[0].sb = first;
	p->idle[0].ready_us = mbx__now_us();
	p->nidle = 1;
	rc = sync_init(p);
	if (rc == 0) {
		rc = pthread_create(&p->thread, NULL, pool_main, p);
		if (rc != 0) {
			pthread_mutex_destroy(&p->lock);
			pthread_cond_destroy(&p->work);
			pthread_cond_destroy(&p->ready);
		}
	}
	if (rc != 0) {
		pool_release(p);
		return mbx__error_set(err, MBX_ESYS, rc, NULL, "start the restore pool's thread");
	}
	*out = p;
	return MBX_OK;
}

/* The answer of an acquire that found no member (under lock). */
static int none_ready(mbx_restore_pool *p, uint64_t timeout_ms, mbx_error **err)
{
	int rc;

	if (p->last_error != NULL) {
		rc = mbx__error_copy(err, p->last_error);
		if (rc < 0)
			return rc;
		mbx__error_wrap(err, "restore pool: no member ready, the last restore failed (%llu failed so far; "
				"retried in the background)", (unsigned long long)p->failed);
		return mbx_error_code(p->last_error);
	}
	mbx__error_set(err, MBX_ETIMEDOUT, 0, NULL, "restore pool: no member was ready within %llu ms (%d being restored)",
		       (unsigned long long)timeout_ms, p->building);
	mbx__error_suggest(err, "wait longer, or keep more members ready (mbx_restore_pool_config_set_min_idle)");
	return MBX_ETIMEDOUT;
}

int mbx_restore_pool_acquire(mbx_restore_pool *p, mbx_sandbox **out, uint64_t timeout_ms, mbx_error **err)
{
	uint64_t start = mbx__now_us(), deadline, seen;
	int rc = MBX_OK;

	if (out == NULL || p == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_restore_pool_acquire: pool or out is NULL");
	*out = NULL;
	deadline = timeout_ms > (UINT64_MAX - start) / 1000u ? UINT64_MAX : start + timeout_ms * 1000u;
	pthread_mutex_lock(&p->lock);
	seen = p->fail_gen;
	for (;;) {
		uint64_t now = mbx__now_us();
		struct timespec ts;

		if (p->stopping) {
			rc = mbx__error_set(err, MBX_ESTATE, 0, NULL, "restore pool: the pool is being freed");
			break;
		}
		while (p->nidle > 0 && *out == NULL) {
			struct member m = pop_oldest(p);

			if (member_expired(p, &m, now))
				discard(p, m.sb);
			else if (!member_alive(m.sb))
				discard_dead(p, m.sb, now);
			else
				*out = m.sb;
		}
		if (*out != NULL) {
			p->acquired++;
			p->dead_streak = 0;
			pthread_cond_signal(&p->work); /* a replacement */
			break;
		}
		/* A restore failed while we waited: its error, not a timeout. */
		if (p->fail_gen != seen || now >= deadline) {
			rc = none_ready(p, timeout_ms, err);
			break;
		}
		p->waiting++;
		pthread_cond_signal(&p->work);
		deadline_ts(&ts, deadline);
		pthread_cond_timedwait(&p->ready, &p->lock, &ts);
		p->waiting--;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

size_t mbx_restore_pool_stats(mbx_restore_pool *p, uint64_t *values, size_t n)
{
	uint64_t v[MBX_RESTORE_POOL_STAT_COUNT];

	if (p == NULL || values == NULL)
		return 0;
	pthread_mutex_lock(&p->lock);
	v[MBX_RESTORE_POOL_STAT_IDLE] = p->nidle;
	v[MBX_RESTORE_POOL_STAT_IN_FLIGHT] = (uint64_t)p->building;
	v[MBX_RESTORE_POOL_STAT_CREATED] = p->created;
	v[MBX_RESTORE_POOL_STAT_FAILED] = p->failed;
	v[MBX_RESTORE_POOL_STAT_DISCARDED] = p->discarded;
	v[MBX_RESTORE_POOL_STAT_ACQUIRED] = p->acquired;
	pthread_mutex_unlock(&p->lock);
	if (n > MBX_RESTORE_POOL_STAT_COUNT)
		n = MBX_RESTORE_POOL_STAT_COUNT;
	memcpy(values, v, n * sizeof(*v));
	return n;
}

int mbx_restore_pool_last_error(mbx_restore_pool *p, mbx_error **out)
{
	int rc = MBX_OK;

	if (p == NULL || out == NULL)
		return mbx__error_set(out, MBX_EINVAL, 0, NULL, "mbx_restore_pool_last_error: pool or out is NULL");
	*out = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->last_error != NULL)
		rc = mbx__error_copy(out, p->last_error);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

size_t mbx__restore_pool_each_idle(mbx_restore_pool *p, void (*fn)(mbx_sandbox *sb, void *userdata), void *userdata)
{
	size_t n;

	pthread_mutex_lock(&p->lock);
	n = p->nidle;
	for (size_t i = 0; i < n; i++)
		fn(p->idle[i].sb, userdata);
	pthread_mutex_unlock(&p->lock);
	return n;
}

void mbx_restore_pool_free(mbx_restore_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->work);
	pthread_cond_broadcast(&p->ready);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->ready);
	pool_release(p);
}
