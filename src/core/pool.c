/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Warm pools (see mbx/pool.h). One filler thread per pool keeps `size`
 * sandboxes ready. A creation failure in the background is kept and handed
 * to the next mbx_pool_take() that finds the pool empty, so errors are never
 * lost and never retried in a tight loop.
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
	size_t size;
	int stopping;
	mbx_error *failure;  /* the filler's last creation error, if any */
};

static void *filler_main(void *arg)
{
	mbx_pool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		mbx_sandbox *sb = NULL;
		mbx_error *err = NULL;
		int rc;

		while (!p->stopping && (p->nready >= p->size || p->failure != NULL))
			pthread_cond_wait(&p->changed, &p->lock);
		if (p->stopping)
			break;
		pthread_mutex_unlock(&p->lock);
		rc = mbx_sandbox_new(&sb, p->cfg, &err);
		pthread_mutex_lock(&p->lock);
		if (rc < 0) {
			p->failure = err;
			continue;
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
	rc = p->ready ? mbx__config_copy(cfg, &p->cfg, err) : mbx__error_oom(err);
	mbx_config_free(defaults);
	if (rc == MBX_OK)
		rc = mbx_sandbox_new(&first, p->cfg, err);
	if (rc < 0) {
		mbx_config_free(p->cfg);
		free(p->ready);
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
		free(p);
		return mbx__error_set(err, MBX_ESYS, rc, NULL, "start the pool's filler thread");
	}
	*out = p;
	return MBX_OK;
}

int mbx_pool_take(mbx_pool *p, mbx_sandbox **out, mbx_error **err)
{
	mbx_error *failure = NULL;

	if (out == NULL || p == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_pool_take: pool or out is NULL");
	*out = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->nready > 0) {
		*out = p->ready[--p->nready];
		p->ready[p->nready] = NULL;
	} else if (p->failure != NULL) {
		failure = p->failure;
		p->failure = NULL;
	}
	/* Either way the filler has work: refill, or retry after a failure. */
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
	if (*out != NULL)
		return MBX_OK;
	if (failure != NULL) {
		int code = mbx_error_code(failure);

		mbx__error_move(err, &failure);
		mbx__error_wrap(err, "pool");
		return code;
	}
	/* Empty pool: create one here rather than wait for the filler. */
	return mbx_sandbox_new(out, p->cfg, err);
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
	mbx_error_free(p->failure);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->changed);
	mbx_config_free(p->cfg);
	free(p->ready);
	free(p);
}
