/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Warm pools (see mbx/pool.h). One filler thread per pool keeps `size`
 * sandboxes ready. A creation failure in the background is kept and handed
 * to the next mbx_pool_take() that finds the pool empty, so errors are never
 * lost and never retried in a tight loop.
 *
 * Reuse (mbx_pool_set_reuse()): a sandbox given back (mbx_pool_give_back())
 * waits in `dirty` until the filler resets it (mbx_sandbox_reset(), which
 * destroys it when anything fails) and puts it among the ready ones; a take
 * that finds none ready resets a dirty one itself rather than create. The
 * sandboxes out with callers count towards `size`, so the filler does not
 * create what a give-back will bring.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include <mbx/pool.h>
#include "internal.h"

struct mbx_pool {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	pthread_t filler;
	mbx_config *cfg;
	mbx_sandbox **ready;
	size_t nready;
	mbx_sandbox **dirty;  /* given back, not yet reset (reuse only) */
	size_t ndirty;
	size_t nout;          /* taken and not given back yet (reuse only) */
	size_t ncleaning;     /* being reset by the filler now */
	size_t size;
	unsigned max_uses;    /* 0: no reuse */
	int stopping;
	mbx_error *failure;  /* the filler's last creation error, if any */
};

/* Whether the filler has work; under the lock. */
static int filler_has_work(const mbx_pool *p)
{
	if (p->ndirty > 0)
		return 1;
	return p->nready + p->nout < p->size && p->failure == NULL;
}

/* Resets a given-back sandbox; NULL when it was destroyed (logged). Called
 * without the lock. */
static mbx_sandbox *clean(mbx_pool *p, mbx_sandbox *sb)
{
	mbx_error *err = NULL;

	if (sb->pool_discard) {
		mbx_sandbox_free(sb);
		return NULL;
	}
	if (mbx_sandbox_reset(sb, &err) == MBX_OK)
		return sb;
	mbx__log(p->cfg, MBX_LOG_INFO, "pool: sandbox %s not reused: %s", sb->id, mbx_error_message(err));
	mbx_error_free(err);
	mbx_sandbox_free(sb);
	return NULL;
}

static void *filler_main(void *arg)
{
	mbx_pool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		mbx_sandbox *sb = NULL;
		mbx_error *err = NULL;
		int rc;

		while (!p->stopping && !filler_has_work(p))
			pthread_cond_wait(&p->changed, &p->lock);
		if (p->stopping)
			break;
		if (p->ndirty > 0) {
			sb = p->dirty[--p->ndirty];
			p->dirty[p->ndirty] = NULL;
			p->ncleaning++;
			pthread_mutex_unlock(&p->lock);
			sb = clean(p, sb);
			pthread_mutex_lock(&p->lock);
			p->ncleaning--;
			if (sb == NULL) {
				pthread_cond_broadcast(&p->changed);
				continue;
			}
		} else {
			pthread_mutex_unlock(&p->lock);
			rc = mbx_sandbox_new(&sb, p->cfg, &err);
			pthread_mutex_lock(&p->lock);
			if (rc < 0) {
				p->failure = err;
				continue;
			}
		}
		if (p->stopping || p->nready >= p->size) {
			pthread_mutex_unlock(&p->lock);
			mbx_sandbox_free(sb);
			pthread_mutex_lock(&p->lock);
			continue;
		}
		p->ready[p->nready++] = sb;
		pthread_cond_broadcast(&p->changed);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int mbx_pool_new(mbx_pool **out, const mbx_config *cfg, size_t size, mbx_error **err)
{
	mbx_config *defaults = NULL;
	mbx_sandbox *first = NULL;
	mbx_pool *p;
	int rc;

	if (out == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_pool_new: out is NULL");
	*out = NULL;
	if (size < 1 || size > 64)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "pool size %zu is out of range: give 1 to 64", size);
	if (cfg == NULL) {
		rc = mbx_config_new(&defaults, err);
		if (rc < 0)
			return rc;
		cfg = defaults;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		mbx_config_free(defaults);
		return mbx__error_oom(err);
	}
	p->size = size;
	p->ready = calloc(size, sizeof(*p->ready));
	p->dirty = calloc(size, sizeof(*p->dirty));
	rc = p->ready && p->dirty ? mbx__config_copy(cfg, &p->cfg, err) : mbx__error_oom(err);
	mbx_config_free(defaults);
	if (rc == MBX_OK)
		rc = mbx_sandbox_new(&first, p->cfg, err);
	if (rc < 0) {
		mbx_config_free(p->cfg);
		free(p->ready);
		free(p->dirty);
		free(p);
		return rc;
	}
	p->ready[p->nready++] = first;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->changed, NULL);
	rc = pthread_create(&p->filler, NULL, filler_main, p);
	if (rc != 0) {
		mbx_sandbox_free(first);
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->changed);
		mbx_config_free(p->cfg);
		free(p->ready);
		free(p->dirty);
		free(p);
		return mbx__error_set(err, MBX_ESYS, rc, NULL, "start the pool's filler thread");
	}
	*out = p;
	return MBX_OK;
}

int mbx_pool_set_reuse(mbx_pool *p, unsigned max_uses, mbx_error **err)
{
	if (p == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_pool_set_reuse: pool is NULL");
	if (max_uses > MBX_POOL_MAX_USES)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "max_uses %u is out of range: give 0 (no reuse) to %u",
				      max_uses, MBX_POOL_MAX_USES);
	if (max_uses > 0 && (p->cfg->isolation == MBX_ISOLATION_WASM || p->cfg->isolation == MBX_ISOLATION_MICROVM))
		return mbx__error_set(err, MBX_ENOTSUP, 0, "reset",
				      "only os sandboxes are reused: a pool of another backend makes a new one for each take");
	pthread_mutex_lock(&p->lock);
	p->max_uses = max_uses;
	if (max_uses == 0)
		p->nout = 0;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
	return MBX_OK;
}

/* Marks a sandbox handed out (counted in nout by the caller, under the lock). */
static void hand_out(mbx_pool *p, mbx_sandbox *sb)
{
	sb->pool = p;
	sb->uses++;
}

/* A take that hands nothing out after all: no longer counted. */
static void not_out(mbx_pool *p)
{
	pthread_mutex_lock(&p->lock);
	if (p->max_uses > 0 && p->nout > 0)
		p->nout--;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
}

int mbx_pool_take(mbx_pool *p, mbx_sandbox **out, mbx_error **err)
{
	mbx_error *failure = NULL;
	mbx_sandbox *dirty = NULL;
	int rc;

	if (out == NULL || p == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_pool_take: pool or out is NULL");
	*out = NULL;
	pthread_mutex_lock(&p->lock);
	/* A reset takes a millisecond or so, a creation several: wait for it. */
	while (p->nready == 0 && p->ndirty == 0 && p->ncleaning > 0 && !p->stopping)
		pthread_cond_wait(&p->changed, &p->lock);
	if (p->nready > 0) {
		*out = p->ready[--p->nready];
		p->ready[p->nready] = NULL;
	} else if (p->ndirty > 0) {
		dirty = p->dirty[--p->ndirty];
		p->dirty[p->ndirty] = NULL;
	} else if (p->failure != NULL) {
		failure = p->failure;
		p->failure = NULL;
	}
	/* Counted out at once, so the filler does not make one for it. */
	if (failure == NULL && p->max_uses > 0)
		p->nout++;
	/* The filler may have work now: refill, or retry after a failure. A
	 * take from a pool that reuses what it hands out usually leaves it
	 * none (the sandbox comes back): no wake-up then, on the caller's way
	 * to its execute. */
	if (filler_has_work(p))
		pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
	if (*out == NULL && dirty != NULL)
		*out = clean(p, dirty);
	if (*out != NULL) {
		hand_out(p, *out);
		return MBX_OK;
	}
	if (failure != NULL) {
		int code = mbx_error_code(failure);

		mbx__error_move(err, &failure);
		mbx__error_wrap(err, "pool");
		return code;
	}
	/* Empty pool: create one here rather than wait for the filler. */
	rc = mbx_sandbox_new(out, p->cfg, err);
	if (rc == MBX_OK)
		hand_out(p, *out);
	else
		not_out(p);
	return rc;
}

int mbx_pool_give_back(mbx_pool *p, mbx_sandbox *sb, unsigned flags, mbx_error **err)
{
	const char *why = NULL;
	uint64_t ooms;
	int keep = 0;

	if (sb == NULL)
		return MBX_OK;
	if (p == NULL || sb->pool != p) {
		mbx_sandbox_free(sb);
		return mbx__error_set(err, MBX_EINVAL, 0, NULL,
				      "mbx_pool_give_back: the sandbox did not come from this pool: destroyed");
	}
	if (flags & ~MBX_POOL_DISCARD) {
		mbx_sandbox_free(sb);
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_pool_give_back: unknown flags %#x: destroyed", flags);
	}
	sb->pool = NULL;
	ooms = sb->destroyed ? 0 : mbx_sandbox_oom_kills(sb);
	pthread_mutex_lock(&p->lock);
	if (p->nout > 0)
		p->nout--;
	if (p->max_uses == 0)
		why = "reuse is off";
	else if (flags & MBX_POOL_DISCARD)
		why = "discarded";
	else if (sb->uses >= p->max_uses)
		why = "used max_uses times";
	else if (sb->destroyed)
		why = "destroyed";
	else if (ooms > 0)
		why = "the kernel killed a process of it for memory";
	else if (p->stopping || p->nready + p->ndirty >= p->size)
		why = "the pool is full";
	else {
		p->dirty[p->ndirty++] = sb;
		keep = 1;
	}
	if (!keep && p->max_uses > 0 && !p->stopping && p->ndirty < p->size) {
		/* Destroyed by the pool's thread: the caller need not wait for it. */
		sb->pool_discard = 1;
		p->dirty[p->ndirty++] = sb;
		keep = 1;
	}
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
	if (!keep) {
		mbx__log(p->cfg, MBX_LOG_DEBUG, "pool: sandbox %s not reused: %s", sb->id, why);
		mbx_sandbox_free(sb);
	}
	return MBX_OK;
}

size_t mbx_pool_ready(mbx_pool *p)
{
	size_t n;

	if (p == NULL)
		return 0;
	pthread_mutex_lock(&p->lock);
	n = p->nready;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void mbx_pool_free(mbx_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->filler, NULL);
	for (size_t i = 0; i < p->nready; i++)
		mbx_sandbox_free(p->ready[i]);
	for (size_t i = 0; i < p->ndirty; i++)
		mbx_sandbox_free(p->dirty[i]);
	mbx_error_free(p->failure);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->changed);
	mbx_config_free(p->cfg);
	free(p->ready);
	free(p->dirty);
	free(p);
}
