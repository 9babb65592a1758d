/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CLI through a running `mimobox serve`; see remote.h and docs/cli.md.
 * This part needs libmimobox or json-c: a run's request with the sandbox
 * options, and outcomes json-c has parsed (remote_verbs.c). The connection
 * and the answers' own JSON are remote_conn.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "remote.h"
#include "serve_dl.h"

#define JSON_ANSWER_MAX CLI_REMOTE_JSON_ANSWER_MAX
#define JSON_BODY_MAX CLI_REMOTE_JSON_BODY_MAX

/* ---- JSON ---- */

int cli_remote_json_load(int json)
{
	char why[512];

	if (serve_dl_load_json(why, sizeof(why)) < 0) {
		cli_report(json, MBX_ENOTSUP, why, "or set MIMOBOX_HOST=local to run sandboxes without the server",
			   NULL, 0);
		return -1;
	}
	return 0;
}

/* ---- outcomes of executes ---- */

json_object *cli_remote_json_parse(const char *data, size_t len)
{
	struct json_tokener *tok;
	json_object *o;

	if (!data || len == 0 || len >= INT32_MAX || !(tok = json_tokener_new()))
		return NULL;
	o = json_tokener_parse_ex(tok, data, (int)len);
	if (o && (json_tokener_get_parse_end(tok) != len || !json_object_is_type(o, json_type_object))) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

json_object *cli_remote_jget(json_object *o, const char *key)
{
	json_object *v = NULL;

	return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

const char *cli_remote_jstr(json_object *o, const char *key)
{
	json_object *v = cli_remote_jget(o, key);

	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

int64_t cli_remote_jint(json_object *o, const char *key)
{
	json_object *v = cli_remote_jget(o, key);

	return v && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
}

int cli_remote_print_outcome(struct json_object *o, int json, int streamed)
{
	return cli_remote_print_outcome_extra(o, json, streamed, NULL);
}

int cli_remote_print_outcome_extra(struct json_object *o, int json, int streamed, const char *extra_json)
{
	size_t len = 0;
	const char *text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);

	if (!text) {
		cli_report(json, MBX_ENOMEM, "out of memory", NULL, NULL, ENOMEM);
		return CLI_EXIT_FAILED;
	}
	return cli_remote_outcome(text, len, json, streamed, extra_json);
}

int cli_remote_run_body(struct cli_remote *r, int json, const struct cli_buf *body)
{
	struct cli_remote_answer a;
	int status;

	if (body->failed) {
		cli_report(json, MBX_ENOMEM, "out of memory", NULL, NULL, ENOMEM);
		return CLI_EXIT_FAILED;
	}
	if (body->len > JSON_BODY_MAX) {
		cli_report(json, MBX_ETOOBIG, "the run request (stdin included) is over the server's 1 MiB limit",
			   "give large input as a file of a named sandbox, or set MIMOBOX_HOST=local", NULL, 0);
		return CLI_EXIT_FAILED;
	}
	if (cli_remote_call(r, json, "POST", "/v1/run", "application/json", body->data, body->len, JSON_ANSWER_MAX,
			    &a) < 0)
		return CLI_EXIT_FAILED;
	status = a.status == 200 ? cli_remote_outcome(a.body.data, a.body.len, json, 0, NULL) : cli_remote_report(r, json, &a);
	cli_buf_free(&a.body);
	return status;
}

/* ---- the sandbox options as the API's fields ---- */

static const char *const isolation_names[] = { "auto", "os", "wasm", "microvm" };
static const char *const trust_names[] = { "trusted", "semi-trusted", "untrusted" };

int cli_remote_opts_json(struct cli_remote *r, int json, const struct cli_sandbox_opts *so, struct cli_buf *b)
{
	const char *flag = NULL;
	size_t i;

	if (so->n_mounts)
		flag = "--mount";
	else if (so->n_hosts)
		flag = "--add-host";
	else if (so->n_ca_files)
		flag = "--ca-file";
	else if (so->n_http_rules)
		flag = "--http-rule";
	else if (so->n_limits)
		flag = "--net-limit";
	else if (so->allow_private)
		flag = "--allow-private";
	else if (so->allow_degraded)
		flag = "--allow-degraded";
	else if ((so->set & CLI_SET_NETWORK) && so->network.policy == MBX_NETWORK_ALLOW_ALL)
		flag = "--network all";
	if (!flag && (so->set & CLI_SET_MEMORY) && (so->memory_bytes & ((1u << 20) - 1)))
		flag = "--memory in units smaller than MiB";
	if (flag) {
		char what[96];

		snprintf(what, sizeof(what), "%s", flag);
		return cli_remote_unavailable(r, json, what, "the server's API does not offer it"), -1;
	}
	if (so->set & CLI_SET_ISOLATION && so->isolation < 4)
		cli_buf_printf(b, ", \"isolation\": \"%s\"", isolation_names[so->isolation]);
	if (so->set & CLI_SET_TRUST && so->trust < 3)
		cli_buf_printf(b, ", \"trust\": \"%s\"", trust_names[so->trust]);
	if (so->set & CLI_SET_MEMORY)
		cli_buf_printf(b, ", \"memory_mb\": %llu", (unsigned long long)(so->memory_bytes >> 20));
	if (so->set & CLI_SET_DISK)
		cli_buf_printf(b, ", \"disk_mb\": %llu", (unsigned long long)(so->disk_bytes >> 20));
	if (so->set & CLI_SET_CPU)
		cli_buf_printf(b, ", \"cpus\": %u.%03u", so->millicpus / 1000, so->millicpus % 1000);
	if (so->set & CLI_SET_MAX_PROCS)
		cli_buf_printf(b, ", \"max_procs\": %u", so->max_procs);
	if (so->set & CLI_SET_HOSTNAME) {
		cli_buf_puts(b, ", \"hostname\": ");
		cli_json_cstring(b, so->hostname);
	}
	if (so->set & CLI_SET_OUTPUT_LIMIT)
		cli_buf_printf(b, ", \"output_limit\": %llu", (unsigned long long)so->output_limit);
	if (so->set & CLI_SET_TIMEOUT)
		cli_buf_printf(b, ", \"timeout_ms\": %llu", (unsigned long long)so->timeout_ms);
	if (so->set & CLI_SET_WORKDIR) {
		cli_buf_puts(b, ", \"workdir\": ");
		cli_json_cstring(b, so->workdir);
	}
	if (so->n_env) {
		cli_buf_puts(b, ", \"env\": {");
		for (i = 0; i < so->n_env; i++) {
			cli_buf_puts(b, i ? ", " : "");
			cli_json_cstring(b, so->env[i].name);
			cli_buf_puts(b, ": ");
			cli_json_cstring(b, so->env[i].value);
		}
		cli_buf_puts(b, "}");
	}
	if (so->set & CLI_SET_NETWORK) {
		if (so->network.policy == MBX_NETWORK_DENY_ALL) {
			cli_buf_puts(b, ", \"network\": \"deny\"");
		} else {
			cli_buf_puts(b, ", \"network\": [");
			for (i = 0; i < so->network.n_domains; i++) {
				cli_buf_puts(b, i ? ", " : "");
				cli_json_cstring(b, so->network.domains[i]);
			}
			cli_buf_puts(b, "]");
		}
	}
	return 0;
}
