/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The supervisor's background processes (`exec -d`), their output
 * (`logs`), signals (`kill`), the listing of processes (`ps NAME`) and the
 * sandbox's settings (`inspect`). See supervisor.c for the loop that calls
 * these and wire.h for the frames.
 *
 * A background process belongs to the supervisor: the client that started
 * it leaves at once. Its events are taken every round of the loop, so the
 * library's flow control never stops it; its output (stdout and stderr as
 * they came) goes into a ring of the last SV_LOG_RING bytes, and a `logs`
 * client reads the ring from its oldest byte on, then follows new output.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "supervisor.h"

/* Longest command shown by PROCS. */
#define SV_COMMAND_SHOWN 200

/* ---- the background processes ---- */

static void bg_free(struct sv_bg *bg)
{
	if (!bg)
		return;
	if (bg->proc) {
		(void)mbx_process_kill(bg->proc, NULL);
		mbx_process_free(bg->proc);
	}
	free(bg->ring);
	free(bg->command);
	free(bg);
}

static struct sv_bg *bg_find(struct sv *sv, uint32_t id)
{
	size_t i;

	for (i = 0; i < sv->n_bg; i++)
		if (sv->bg[i]->id == id)
			return sv->bg[i];
	return NULL;
}

size_t sv_bg_running(const struct sv *sv)
{
	size_t i, n = 0;

	for (i = 0; i < sv->n_bg; i++)
		n += sv->bg[i]->proc != NULL;
	return n;
}

int sv_bg_add(struct sv *sv, mbx_process *proc, const char *const *argv)
{
	struct sv_bg *bg;
	size_t i;

	if (sv->n_bg == SV_MAX_BG) {
		/* Room is made by forgetting the oldest ended one. */
		for (i = 0; i < sv->n_bg && sv->bg[i]->proc; i++)
			;
		if (i == sv->n_bg)
			return -1;
		bg_free(sv->bg[i]);
		memmove(&sv->bg[i], &sv->bg[i + 1], (sv->n_bg - i - 1) * sizeof(sv->bg[0]));
		sv->n_bg--;
	}
	bg = calloc(1, sizeof(*bg));
	if (!bg)
		return -2;
	bg->ring = malloc(SV_LOG_RING);
	bg->command = sv_join_command(argv);
	if (!bg->ring || !bg->command) {
		free(bg->ring);
		free(bg->command);
		free(bg);
		return -2;
	}
	bg->id = mbx_process_id(proc);
	bg->proc = proc;
	bg->started_ms = sv_now_ms();
	bg->ooms_at_start = mbx_sandbox_oom_kills(sv->sb);
	sv->bg[sv->n_bg++] = bg;
	return 0;
}

void sv_bg_free_all(struct sv *sv)
{
	size_t i;

	for (i = 0; i < sv->n_bg; i++)
		bg_free(sv->bg[i]);
	sv->n_bg = 0;
}

/* Appends output to the ring, overwriting the oldest bytes. */
static void ring_add(struct sv_bg *bg, const uint8_t *data, size_t len)
{
	size_t at, n;

	if (len > SV_LOG_RING) {
		bg->total += len - SV_LOG_RING;
		data += len - SV_LOG_RING;
		len = SV_LOG_RING;
	}
	while (len > 0) {
		at = (size_t)(bg->total % SV_LOG_RING);
		n = SV_LOG_RING - at < len ? SV_LOG_RING - at : len;
		memcpy(bg->ring + at, data, n);
		bg->total += n;
		data += n;
		len -= n;
	}
}

/* The process ended (or its sandbox broke): keep the exit, drop the handle. */
static void bg_end(struct sv *sv, struct sv_bg *bg, int code, int sig, int timed_out)
{
	bg->exit_code = code;
	bg->sig = sig;
	bg->timed_out = timed_out;
	bg->oom = !timed_out && sig == SIGKILL && mbx_sandbox_oom_kills(sv->sb) > bg->ooms_at_start;
	bg->ended_ms = sv_now_ms();
	mbx_process_free(bg->proc);
	bg->proc = NULL;
}

int sv_bg_pump(struct sv *sv, int timeout_ms)
{
	const uint8_t *data;
	mbx_event_kind_t kind;
	mbx_error *err;
	mbx_event *ev;
	size_t i, len;
	int rc, got = 0;

	for (i = 0; i < sv->n_bg && !sv->stop; i++) {
		struct sv_bg *bg = sv->bg[i];

		while (bg->proc) {
			ev = NULL;
			err = NULL;
			rc = mbx_process_next_event(bg->proc, got ? 0 : timeout_ms, &ev, &err);
			mbx_error_free(err);
			got = 1;	/* only the first look waits */
			if (rc != MBX_OK) {
				sv_note_status(sv, rc);
				bg_end(sv, bg, -1, 0, 0);
				break;
			}
			if (!ev)
				break;
			kind = mbx_event_kind(ev);
			if (kind == MBX_EVENT_STDOUT || kind == MBX_EVENT_STDERR) {
				data = mbx_event_data(ev, &len);
				if (data && len)
					ring_add(bg, data, len);
			} else if (kind == MBX_EVENT_EXIT) {
				bg_end(sv, bg, mbx_event_exit_code(ev), mbx_event_signal(ev), 0);
			} else if (kind == MBX_EVENT_TIMED_OUT) {
				bg_end(sv, bg, -1, mbx_event_signal(ev), 1);
			}
			mbx_event_free(ev);
		}
	}
	return got;
}

/* ---- logs ---- */

void sv_begin_logs(struct sv *sv, struct sv_client *c, struct wire_reader *r)
{
	uint32_t id = wire_get_u32(r);
	int follow = wire_get_u8(r);
	struct sv_bg *bg = NULL;
	char ids[256];
	size_t i, used = 0;

	if (wire_done(r) < 0) {
		sv_protocol_error(c, "malformed logs request");
		return;
	}
	if (id == 0 && sv->n_bg == 1) {
		bg = sv->bg[0];
	} else if (id == 0 && sv->n_bg == 0) {
		sv_send_error_fields(c, MBX_ENOTFOUND, 0, "the sandbox has no background processes",
				     "start one with `mimobox exec -d NAME -- PROGRAM`", NULL);
		return;
	} else if (id == 0) {
		ids[0] = '\0';
		for (i = 0; i < sv->n_bg && used + 16 < sizeof(ids); i++)
			used += (size_t)snprintf(ids + used, sizeof(ids) - used, "%s%u", i ? ", " : "",
						 (unsigned)sv->bg[i]->id);
		sv_send_fail(c, MBX_EINVAL, "the sandbox has %zu background processes (ids %s): say which",
			     sv->n_bg, ids);
		return;
	} else if ((bg = bg_find(sv, id)) == NULL) {
		sv_send_error_fields(c, MBX_ENOTFOUND, 0, "no background process with that id in this sandbox",
				     "see `mimobox ps NAME` for its processes", NULL);
		return;
	}
	c->state = SV_LOGS;
	c->logs_id = bg->id;
	c->follow = follow != 0;
	c->logs_pos = bg->total > SV_LOG_RING ? bg->total - SV_LOG_RING : 0;
	sv_pump_logs(sv, c);
}

void sv_pump_logs(struct sv *sv, struct sv_client *c)
{
	struct sv_bg *bg;
	uint64_t oldest;
	size_t at, n, start;

	if (c->state != SV_LOGS || !sv_attached(c) || c->closing)
		return;
	bg = bg_find(sv, c->logs_id);
	while (bg && c->logs_pos < bg->total && sv_queued(c) < SV_OUT_HIGH) {
		/* A reader slower than the process loses what the ring let go. */
		oldest = bg->total > SV_LOG_RING ? bg->total - SV_LOG_RING : 0;
		if (c->logs_pos < oldest)
			c->logs_pos = oldest;
		at = (size_t)(c->logs_pos % SV_LOG_RING);
		n = (size_t)(bg->total - c->logs_pos);
		if (n > SV_LOG_RING - at)
			n = SV_LOG_RING - at;
		if (n > WIRE_CHUNK)
			n = WIRE_CHUNK;
		start = wire_begin(&c->out, WIRE_DATA);
		wire_bytes(&c->out, bg->ring + at, n);
		sv_end_frame(c, start);
		c->logs_pos += n;
	}
	if (!bg || (c->logs_pos >= bg->total && (!c->follow || !bg->proc))) {
		sv_send_simple(c, WIRE_END);
		c->state = SV_IDLE;
	}
}

/* ---- processes ---- */

static void put_proc(struct cli_buf *b, uint32_t id, int background, int running, int code, int sig,
		     int timed_out, int oom, uint64_t age_ms, uint64_t output, const char *command)
{
	char shown[SV_COMMAND_SHOWN + 4];

	snprintf(shown, sizeof(shown), "%s", command ? command : "?");
	if (command && strlen(command) > SV_COMMAND_SHOWN)
		memcpy(shown + SV_COMMAND_SHOWN - 3, "...", 4);
	wire_u32(b, id);
	wire_u8(b, (uint8_t)background);
	wire_u8(b, (uint8_t)running);
	wire_u32(b, (uint32_t)code);
	wire_u32(b, (uint32_t)sig);
	wire_u8(b, (uint8_t)timed_out);
	wire_u8(b, (uint8_t)oom);
	wire_u64(b, age_ms);
	wire_u64(b, output);
	wire_str(b, shown);
}

void sv_do_procs(struct sv *sv, struct sv_client *c, struct wire_reader *r)
{
	int64_t now = sv_now_ms();
	uint32_t n = 0;
	size_t i, start;

	if (wire_done(r) < 0) {
		sv_protocol_error(c, "malformed process list request");
		return;
	}
	for (i = 0; i < sv->n_clients; i++)
		n += sv->clients[i]->proc != NULL;
	start = wire_begin(&c->out, WIRE_PROCS_REPLY);
	wire_u32(&c->out, n + (uint32_t)sv->n_bg);
	for (i = 0; i < sv->n_clients; i++) {
		struct sv_client *o = sv->clients[i];

		if (o->proc)
			put_proc(&c->out, mbx_process_id(o->proc), 0, 1, 0, 0, 0, 0,
				 (uint64_t)(now - o->started_ms), o->sent[1] + o->sent[2], o->command);
	}
	for (i = 0; i < sv->n_bg; i++) {
		struct sv_bg *bg = sv->bg[i];

		put_proc(&c->out, bg->id, 1, bg->proc != NULL, bg->exit_code, bg->sig, bg->timed_out, bg->oom,
			 (uint64_t)(now - bg->started_ms), bg->total, bg->command);
	}
	sv_end_frame(c, start);
}

void sv_do_kill(struct sv *sv, struct sv_client *c, struct wire_reader *r)
{
	uint32_t id = wire_get_u32(r), sig = wire_get_u32(r);
	mbx_process *proc = NULL;
	struct sv_bg *bg;
	mbx_error *err = NULL;
	size_t i;
	int rc;

	if (wire_done(r) < 0 || sig > 64) {
		sv_protocol_error(c, "malformed kill request");
		return;
	}
	bg = bg_find(sv, id);
	if (bg) {
		proc = bg->proc;
	} else {
		for (i = 0; i < sv->n_clients && !proc; i++)
			if (sv->clients[i]->proc && mbx_process_id(sv->clients[i]->proc) == id)
				proc = sv->clients[i]->proc;
	}
	if (!proc) {
		if (bg)
			sv_send_error_fields(c, MBX_ENOTFOUND, 0, "that process has ended already",
					     "see `mimobox ps NAME` for the running ones", NULL);
		else
			sv_send_error_fields(c, MBX_ENOTFOUND, 0, "no process with that id in this sandbox",
					     "see `mimobox ps NAME` for its processes", NULL);
		return;
	}
	rc = sig ? mbx_process_signal(proc, (int)sig, &err) : mbx_process_kill(proc, &err);
	if (rc != MBX_OK) {
		sv_send_mbx_error(c, rc, err, NULL, NULL);
		sv_note_status(sv, rc);
	} else {
		sv_send_simple(c, WIRE_OK);
	}
	mbx_error_free(err);
}

/* ---- inspect ---- */

/* "2026-12-06 03:40:00 UTC". */
static void format_time(char *out, size_t len, uint64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, len, "%llu", (unsigned long long)t);
}

void sv_do_inspect(struct sv *sv, struct sv_client *c, struct wire_reader *r)
{
	const struct cli_sandbox_opts *o = sv->opts;
	struct cli_buf j = CLI_BUF_INIT, t = CLI_BUF_INIT;
	uint64_t timeout_ms, memory, output, left = 0, now = (uint64_t)time(NULL);
	uint32_t layers = mbx_sandbox_layers(sv->sb), skipped = mbx_sandbox_skipped(sv->sb), bit, max_procs;
	mbx_trust_t trust;
	mbx_network_t network;
	char a[64], b[64];
	size_t i, start;
	int first;

	if (wire_done(r) < 0) {
		sv_protocol_error(c, "malformed inspect request");
		return;
	}
	timeout_ms = (o->set & CLI_SET_TIMEOUT) ? o->timeout_ms : CLI_DEFAULT_TIMEOUT_MS;
	memory = (o->set & CLI_SET_MEMORY) ? o->memory_bytes : CLI_DEFAULT_MEMORY;
	output = (o->set & CLI_SET_OUTPUT_LIMIT) ? o->output_limit : CLI_DEFAULT_OUTPUT_LIMIT;
	max_procs = (o->set & CLI_SET_MAX_PROCS) ? o->max_procs : CLI_DEFAULT_MAX_PROCS;
	trust = (o->set & CLI_SET_TRUST) ? o->trust : MBX_TRUST_SEMI_TRUSTED;
	network = (o->set & CLI_SET_NETWORK) ? o->network.policy : MBX_NETWORK_DENY_ALL;
	if (sv->ttl_ms) {
		int64_t idle = sv_now_ms() - sv->last_use_ms;

		left = idle >= (int64_t)sv->ttl_ms ? 0 : sv->ttl_ms - (uint64_t)idle;
	}

	/* JSON */
	cli_buf_puts(&j, "{\"ok\": true, \"name\": ");
	cli_json_cstring(&j, sv->info.name);
	cli_buf_puts(&j, ", \"id\": ");
	cli_json_cstring(&j, sv->info.id);
	cli_buf_puts(&j, ", \"isolation\": ");
	cli_json_cstring(&j, sv->info.isolation);
	cli_buf_puts(&j, ", \"trust\": ");
	cli_json_cstring(&j, mbx_trust_name(trust));
	cli_buf_puts(&j, ", \"network\": {\"policy\": ");
	cli_json_cstring(&j, mbx_network_name(network));
	cli_buf_puts(&j, ", \"domains\": [");
	for (i = 0; (o->set & CLI_SET_NETWORK) && i < o->network.n_domains; i++) {
		if (i)
			cli_buf_puts(&j, ", ");
		cli_json_cstring(&j, o->network.domains[i]);
	}
	cli_buf_printf(&j, "]}, \"limits\": {\"timeout_ms\": %llu, \"memory_bytes\": %llu, \"cpus\": ",
		       (unsigned long long)timeout_ms, (unsigned long long)memory);
	if (o->set & CLI_SET_CPU)
		cli_buf_printf(&j, "%.3f", (double)o->millicpus / 1000.0);
	else
		cli_buf_puts(&j, "null");
	cli_buf_printf(&j, ", \"max_procs\": %u, \"output_limit_bytes\": %llu, \"mechanism\": ", (unsigned)max_procs,
		       (unsigned long long)output);
	cli_json_cstring(&j, mbx_sandbox_limits_mechanism(sv->sb));
	cli_buf_puts(&j, "}, \"mounts\": [");
	for (i = 0; i < o->n_mounts; i++) {
		cli_buf_puts(&j, i ? ", {\"host\": " : "{\"host\": ");
		cli_json_cstring(&j, o->mounts[i].host);
		cli_buf_puts(&j, ", \"sandbox\": ");
		cli_json_cstring(&j, o->mounts[i].sandbox);
		cli_buf_puts(&j, ", \"mode\": ");
		cli_json_cstring(&j, (o->mounts[i].flags & MBX_MOUNT_RW) ? "rw" : "ro");
		cli_buf_puts(&j, "}");
	}
	/* Only the names: values may be secrets. */
	cli_buf_puts(&j, "], \"env_keys\": [");
	for (i = 0; i < o->n_env; i++) {
		if (i)
			cli_buf_puts(&j, ", ");
		cli_json_cstring(&j, o->env[i].name);
	}
	cli_buf_puts(&j, "], \"workdir\": ");
	cli_json_cstring(&j, (o->set & CLI_SET_WORKDIR) ? o->workdir : "/workspace");
	cli_buf_puts(&j, ", \"hostname\": ");
	cli_json_cstring(&j, (o->set & CLI_SET_HOSTNAME) ? o->hostname : "mimobox");
	cli_buf_printf(&j, ", \"created\": %llu, \"ttl_s\": ", (unsigned long long)sv->info.created);
	if (sv->ttl_ms)
		cli_buf_printf(&j, "%llu, \"expires_in_s\": %llu", (unsigned long long)(sv->ttl_ms / 1000),
			       (unsigned long long)((left + 999) / 1000));
	else
		cli_buf_puts(&j, "null, \"expires_in_s\": null");
	cli_buf_puts(&j, ", \"allow_degraded\": ");
	cli_json_bool(&j, o->allow_degraded);
	cli_buf_puts(&j, ", \"layers\": [");
	for (i = 0, first = 1; i < 32; i++) {
		bit = (uint32_t)1 << i;
		if (!(layers & bit) || !mbx_layer_name(bit))
			continue;
		cli_buf_puts(&j, first ? "" : ", ");
		cli_json_cstring(&j, mbx_layer_name(bit));
		first = 0;
	}
	cli_buf_puts(&j, "], \"skipped_layers\": [");
	for (i = 0, first = 1; i < 32; i++) {
		bit = (uint32_t)1 << i;
		if (!(skipped & bit))
			continue;
		cli_buf_puts(&j, first ? "{\"layer\": " : ", {\"layer\": ");
		cli_json_cstring(&j, mbx_layer_name(bit) ? mbx_layer_name(bit) : "unknown");
		cli_buf_puts(&j, ", \"reason\": ");
		cli_json_cstring(&j, mbx_sandbox_skip_reason(sv->sb, bit));
		cli_buf_puts(&j, "}");
		first = 0;
	}
	cli_buf_printf(&j, "], \"supervisor_pid\": %u}\n", (unsigned)sv->info.pid);

	/* Text */
	cli_buf_printf(&t, "name:          %s\nid:            %s\nisolation:     %s\ntrust:         %s\n",
		       sv->info.name, sv->info.id, sv->info.isolation, mbx_trust_name(trust));
	cli_buf_printf(&t, "network:       %s", mbx_network_name(network));
	for (i = 0; (o->set & CLI_SET_NETWORK) && i < o->network.n_domains; i++)
		cli_buf_printf(&t, "%s%s", i ? "," : " ", o->network.domains[i]);
	format_time(a, sizeof(a), sv->info.created);
	cli_format_duration(b, sizeof(b), now > sv->info.created ? now - sv->info.created : 0);
	cli_buf_printf(&t, "\ncreated:       %s (%s ago)\n", a, b);
	if (sv->ttl_ms) {
		cli_format_duration(a, sizeof(a), sv->ttl_ms / 1000);
		cli_format_duration(b, sizeof(b), (left + 999) / 1000);
		cli_buf_printf(&t, "ttl:           %s idle (expires in %s unless used)\n", a, b);
	} else {
		cli_buf_puts(&t, "ttl:           none (lives until `mimobox rm`)\n");
	}
	cli_buf_printf(&t, "timeout:       %.1f s\n", (double)timeout_ms / 1000.0);
	cli_format_bytes(a, sizeof(a), memory);
	cli_buf_printf(&t, "memory:        %s\n", a);
	if (o->set & CLI_SET_CPU)
		cli_buf_printf(&t, "cpu:           %.3g\n", (double)o->millicpus / 1000.0);
	else
		cli_buf_puts(&t, "cpu:           no quota\n");
	cli_format_bytes(a, sizeof(a), output);
	cli_buf_printf(&t, "max-procs:     %u\noutput-limit:  %s\nlimits via:    %s\n", (unsigned)max_procs, a,
		       mbx_sandbox_limits_mechanism(sv->sb) ? mbx_sandbox_limits_mechanism(sv->sb) : "-");
	cli_buf_printf(&t, "workdir:       %s\nhostname:      %s\n",
		       (o->set & CLI_SET_WORKDIR) ? o->workdir : "/workspace",
		       (o->set & CLI_SET_HOSTNAME) ? o->hostname : "mimobox");
	cli_buf_puts(&t, "env:          ");
	for (i = 0; i < o->n_env; i++)
		cli_buf_printf(&t, " %s", o->env[i].name);
	cli_buf_puts(&t, o->n_env ? " (values not shown)\n" : " -\n");
	cli_buf_puts(&t, "mounts:       ");
	for (i = 0; i < o->n_mounts; i++)
		cli_buf_printf(&t, "%s%s:%s (%s)", i ? ", " : " ", o->mounts[i].host, o->mounts[i].sandbox,
			       (o->mounts[i].flags & MBX_MOUNT_RW) ? "rw" : "ro");
	cli_buf_puts(&t, o->n_mounts ? "\n" : " -\n");
	cli_buf_puts(&t, "layers:       ");
	for (i = 0; i < 32; i++) {
		bit = (uint32_t)1 << i;
		if ((layers & bit) && mbx_layer_name(bit))
			cli_buf_printf(&t, " %s", mbx_layer_name(bit));
	}
	cli_buf_puts(&t, layers ? "\n" : " -\n");
	cli_buf_puts(&t, "skipped:      ");
	for (i = 0; i < 32; i++) {
		bit = (uint32_t)1 << i;
		if (skipped & bit)
			cli_buf_printf(&t, " %s (%s)", mbx_layer_name(bit) ? mbx_layer_name(bit) : "unknown",
				       mbx_sandbox_skip_reason(sv->sb, bit));
	}
	cli_buf_puts(&t, skipped ? "\n" : " none\n");

	if (j.failed || t.failed) {
		sv_send_fail(c, MBX_ENOMEM, "out of memory describing the sandbox");
	} else {
		start = wire_begin(&c->out, WIRE_INSPECT_REPLY);
		wire_str(&c->out, j.data);
		wire_str(&c->out, t.data);
		sv_end_frame(c, start);
	}
	cli_buf_free(&j);
	cli_buf_free(&t);
}
