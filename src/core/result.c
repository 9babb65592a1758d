/* SPDX-License-Identifier: Apache-2.0 */
/* Accessors of mbx_result. */
#include <stdlib.h>

#include "internal.h"

static const uint8_t empty[1];

int mbx_result_exit_code(const mbx_result *res)
{
	return res ? res->exit_code : -1;
}

int mbx_result_signal(const mbx_result *res)
{
	return res ? res->signal : 0;
}

int mbx_result_timed_out(const mbx_result *res)
{
	return res ? res->timed_out : 0;
}

int mbx_result_oom_killed(const mbx_result *res)
{
	return res ? res->oom_killed : 0;
}

static const uint8_t *buf_view(const struct mbx_buf *b, size_t *len)
{
	if (len)
		*len = b->len;
	return b->data ? b->data : empty;
}

const uint8_t *mbx_result_stdout(const mbx_result *res, size_t *len)
{
	static const struct mbx_buf none;

	return buf_view(res ? &res->out : &none, len);
}

const uint8_t *mbx_result_stderr(const mbx_result *res, size_t *len)
{
	static const struct mbx_buf none;

	return buf_view(res ? &res->err : &none, len);
}

int mbx_result_stdout_truncated(const mbx_result *res)
{
	return res ? res->out_truncated : 0;
}

int mbx_result_stderr_truncated(const mbx_result *res)
{
	return res ? res->err_truncated : 0;
}

uint64_t mbx_result_elapsed_us(const mbx_result *res)
{
	return res ? res->elapsed_us : 0;
}

uint64_t mbx_result_peak_memory_bytes(const mbx_result *res)
{
	return res ? res->peak_memory : 0;
}

uint64_t mbx_result_cpu_time_us(const mbx_result *res)
{
	return res ? res->cpu_us : 0;
}

const char *mbx_result_limits_mechanism(const mbx_result *res)
{
	return (res && res->limits_mech) ? res->limits_mech : "none";
}

const char *mbx_result_limits_partial(const mbx_result *res)
{
	return res ? res->limits_partial : NULL;
}

mbx_isolation_t mbx_result_isolation(const mbx_result *res)
{
	return res ? res->isolation : MBX_ISOLATION_AUTO;
}

const char *mbx_result_trap(const mbx_result *res)
{
	return res ? res->trap : NULL;
}

uint32_t mbx_result_layers(const mbx_result *res)
{
	return res ? res->layers : 0;
}

uint32_t mbx_result_skipped(const mbx_result *res)
{
	return res ? res->skipped : 0;
}

const char *mbx_result_skip_reason(const mbx_result *res, uint32_t layer)
{
	int i = mbx__layer_index(layer);

	if (res == NULL || i < 0 || !(res->skipped & layer))
		return NULL;
	return res->skip_reason[i] ? res->skip_reason[i] : "not available on this host";
}

void mbx_result_free(mbx_result *res)
{
	if (res == NULL)
		return;
	free(res->trap);
	mbx__buf_release(&res->out);
	mbx__buf_release(&res->err);
	free(res);
}
