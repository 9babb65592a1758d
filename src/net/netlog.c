/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit log of a sandbox's network use: a ring of the last
 * MBX_NETLOG_KEEP decisions, written by the proxy's threads and by HTTP
 * requests, copied out whole by mbx_sandbox_net_log(). Entries are added
 * when the decision is made, so a long tunnel shows up at once; its byte
 * counts and final outcome are filled in when it ends.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "net.h"

struct mbx_netlog {
	int refs;                   /* the sandbox and each proxy using it */
	pthread_mutex_t lock;
	struct mbx_netlog_entry *e; /* ring, grown up to MBX_NETLOG_KEEP */
	size_t cap;
	uint64_t next_seq;          /* seq of the next entry; entries seq % cap */
};

struct mbx_net_log {
	struct mbx_netlog_entry *e;
	size_t n;
	uint64_t dropped;
};

int mbx__netlog_new(struct mbx_netlog **out)
{
	struct mbx_netlog *log = calloc(1, sizeof(*log));

	*out = NULL;
	if (log == NULL)
		return MBX_ENOMEM;
	log->refs = 1;
	pthread_mutex_init(&log->lock, NULL);
	*out = log;
	return MBX_OK;
}

struct mbx_netlog *mbx__netlog_ref(struct mbx_netlog *log)
{
	if (log)
		__atomic_add_fetch(&log->refs, 1, __ATOMIC_RELAXED);
	return log;
}

void mbx__netlog_free(struct mbx_netlog *log)
{
	if (log == NULL || __atomic_sub_fetch(&log->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	pthread_mutex_destroy(&log->lock);
	free(log->e);
	free(log);
}

static uint64_t wall_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

/* Grows the ring when it is full. */
static void grow(struct mbx_netlog *log)
{
	size_t ncap;
	struct mbx_netlog_entry *ne;

	/* Only while full and not wrapped: entries sit at seq % cap, which a
	 * new capacity keeps only before the first wrap. */
	if (log->cap == MBX_NETLOG_KEEP || log->next_seq != log->cap)
		return;
	ncap = log->cap ? log->cap * 4 : 16;
	if (ncap > MBX_NETLOG_KEEP)
		ncap = MBX_NETLOG_KEEP;
	ne = realloc(log->e, ncap * sizeof(*ne));
	if (ne == NULL)
		return; /* keep the smaller ring: older entries are dropped sooner */
	log->e = ne;
	log->cap = ncap;
}

uint64_t mbx__netlog_add(struct mbx_netlog *log, struct mbx_netlog_entry *e)
{
	uint64_t seq;

	if (log == NULL)
		return UINT64_MAX;
	pthread_mutex_lock(&log->lock);
	grow(log);
	seq = log->next_seq;
	e->seq = seq;
	e->time_us = wall_us();
	if (log->cap) {
		log->e[seq % log->cap] = *e;
		log->next_seq++;
	} else {
		seq = UINT64_MAX;
	}
	pthread_mutex_unlock(&log->lock);
	return seq;
}

void mbx__netlog_update(struct mbx_netlog *log, uint64_t seq, uint8_t verdict, int status, const char *reason,
			uint64_t up, uint64_t down)
{
	struct mbx_netlog_entry *e;

	if (log == NULL || seq == UINT64_MAX)
		return;
	pthread_mutex_lock(&log->lock);
	if (log->cap && seq < log->next_seq && log->next_seq - seq <= log->cap) {
		e = &log->e[seq % log->cap];
		if (e->seq == seq) {
			e->verdict = verdict;
			if (status)
				e->status = status;
			if (reason) {
				strncpy(e->reason, reason, sizeof(e->reason) - 1);
				e->reason[sizeof(e->reason) - 1] = '\0';
			}
			e->up = up;
			e->down = down;
		}
	}
	pthread_mutex_unlock(&log->lock);
}

int mbx_sandbox_net_log(const mbx_sandbox *sb, mbx_net_log **out, mbx_error **err)
{
	struct mbx_netlog *log;
	mbx_net_log *copy;
	uint64_t first;

	MBX_CHECK_ARG(out != NULL, err);
	*out = NULL;
	MBX_CHECK_ARG(sb != NULL, err);
	copy = calloc(1, sizeof(*copy));
	if (copy == NULL)
		return mbx__error_oom(err);
	log = sb->net ? sb->net->log : NULL;
	if (log) {
		pthread_mutex_lock(&log->lock);
		first = log->next_seq > log->cap ? log->next_seq - log->cap : 0;
		copy->dropped = first;
		copy->n = (size_t)(log->next_seq - first);
		if (copy->n) {
			copy->e = malloc(copy->n * sizeof(*copy->e));
			if (copy->e == NULL) {
				pthread_mutex_unlock(&log->lock);
				free(copy);
				return mbx__error_oom(err);
			}
			for (size_t i = 0; i < copy->n; i++)
				copy->e[i] = log->e[(first + i) % log->cap];
		}
		pthread_mutex_unlock(&log->lock);
	}
	*out = copy;
	return MBX_OK;
}

static const struct mbx_netlog_entry *entry(const mbx_net_log *log, size_t i)
{
	return (log && i < log->n) ? &log->e[i] : NULL;
}

size_t mbx_net_log_count(const mbx_net_log *log)
{
	return log ? log->n : 0;
}

uint64_t mbx_net_log_dropped(const mbx_net_log *log)
{
	return log ? log->dropped : 0;
}

uint64_t mbx_net_log_time_us(const mbx_net_log *log, size_t i)
{
	const struct mbx_netlog_entry *e = entry(log, i);

	return e ? e->time_us : 0;
}

const char *mbx_net_log_source(const mbx_net_log *log, size_t i)
{
	const struct mbx_netlog_entry *e = entry(log, i);

	return e ? e->source : NULL;
}

const char *mbx_net_log_method(const mbx_net_log *log, size_t i)
{
	const struct mbx_netlog_entry *e = entry(log, i);

	return e ? e->method : NULL;
}

const char *mbx_net_log_host(const mbx_net_log *log, size_t i)
{
	const struct mbx_netlog_entry *e = entry(log, i);

	return e ? e->host : NULL;
}

uint16_t mbx_net_log_port(const mbx_net_log *log, size_t i)
{
	const struct mbx_netlog_entry *e = entry(log, i);

	return e ? e->port : 0;
}

const char *mbx_net_log_address(const mbx_net_log *log, size_t i)
{
	const struct mbx_netlog_entry *e = entry(log, i);

	return e ? e->address : NULL;
}

mbx_net_verdict_t mbx_net_log_verdict(const mbx_net_log *log, size_t i)
{
	const struct mbx_netlog_entry *e = entry(log, i);

	return e ? e->verdict : MBX_NET_DENIED;
}

int mbx_net_log_status(const mbx_net_log *log, size_t i)
{
	const struct mbx_netlog_entry *e = entry(log, i);

	return e ? e->status : 0;
}

const char *mbx_net_log_reason(const mbx_net_log *log, size_t i)
{
	const struct mbx_netlog_entry *e = entry(log, i);

	return e ? e->reason : NULL;
}

uint64_t mbx_net_log_bytes_up(const mbx_net_log *log, size_t i)
{
	const struct mbx_netlog_entry *e = entry(log, i);

	return e ? e->up : 0;
}

uint64_t mbx_net_log_bytes_down(const mbx_net_log *log, size_t i)
{
	const struct mbx_netlog_entry *e = entry(log, i);

	return e ? e->down : 0;
}

void mbx_net_log_free(mbx_net_log *log)
{
	if (log == NULL)
		return;
	free(log->e);
	free(log);
}

const char *mbx_net_verdict_name(mbx_net_verdict_t verdict)
{
	switch (verdict) {
	case MBX_NET_ALLOWED: return "allowed";
	case MBX_NET_DENIED: return "denied";
	case MBX_NET_FAILED: return "failed";
	default: return NULL;
	}
}

int mbx__net_new(struct mbx_net **out)
{
	struct mbx_net *n = calloc(1, sizeof(*n));

	*out = NULL;
	if (n == NULL || mbx__netlog_new(&n->log) < 0) {
		free(n);
		return MBX_ENOMEM;
	}
	*out = n;
	return MBX_OK;
}

void mbx__net_free(struct mbx_net *n)
{
	if (n == NULL)
		return;
	mbx__netlog_free(n->log);
	free(n);
}
