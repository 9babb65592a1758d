/* SPDX-License-Identifier: Apache-2.0 */
/*
 * --audit through a running `mimobox serve` (remote.h): the sandbox's
 * network log from GET .../network/audit, reported as the local verbs
 * report it (cli_net_entry_report(): "mimobox: net: ..." lines on stderr,
 * or the `network_log` and `network_log_dropped` members of --json).
 *
 * A log is placed by counting, not by clocks (a TCP server's clock is not
 * ours): the server keeps the last records and counts the older ones it
 * dropped, so dropped + kept is the number of records ever logged, and the
 * records of one program are those logged after the count taken before it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "remote.h"
#include "serve_dl.h"

#define ANSWER_MAX ((size_t)64 << 20)

/* A string member, or "" when there is none. */
static const char *jstr(json_object *o, const char *key)
{
	const char *s = cli_remote_jstr(o, key);

	return s ? s : "";
}

/* GET .../network/audit of `name`: the answer's object (its records in *records); NULL after reporting. */
static json_object *audit_get(struct cli_remote *r, int json, const char *name, json_object **records, int *status)
{
	static const char hex[] = "0123456789ABCDEF";
	struct cli_buf t = CLI_BUF_INIT;
	struct cli_remote_answer a;
	struct json_tokener *tok;
	json_object *o = NULL;

	*status = CLI_EXIT_FAILED;
	cli_buf_puts(&t, "/v1/sandboxes/");
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		    *p == '_' || *p == '.')
			cli_buf_add(&t, p, 1);
		else
			cli_buf_printf(&t, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
	cli_buf_puts(&t, "/network/audit");
	if (t.failed || cli_remote_call(r, json, "GET", t.data, NULL, NULL, 0, ANSWER_MAX, &a) < 0) {
		cli_buf_free(&t);
		return NULL;
	}
	cli_buf_free(&t);
	if (a.status != 200) {
		*status = cli_remote_report(r, json, &a);
		if (*status == CLI_EXIT_NOTFOUND || *status == CLI_EXIT_NOEXEC)
			*status = CLI_EXIT_FAILED;
		cli_buf_free(&a.body);
		return NULL;
	}
	tok = json_tokener_new();
	if (tok && a.body.len && a.body.len < INT32_MAX)
		o = json_tokener_parse_ex(tok, a.body.data, (int)a.body.len);
	if (tok)
		json_tokener_free(tok);
	cli_buf_free(&a.body);
	*records = cli_remote_jget(o, "records");
	if (!o || !json_object_is_type(o, json_type_object) || !*records ||
	    !json_object_is_type(*records, json_type_array) || cli_remote_jint(o, "dropped") < 0) {
		if (o)
			json_object_put(o);
		cli_report(json, MBX_EPROTO, "the server's network log is malformed", NULL, NULL, 0);
		return NULL;
	}
	*status = 0;
	return o;
}

int cli_remote_audit_mark(struct cli_remote *r, int json, const char *name, uint64_t *mark)
{
	json_object *records = NULL, *o;
	int status;

	o = audit_get(r, json, name, &records, &status);
	if (!o)
		return status;
	*mark = (uint64_t)cli_remote_jint(o, "dropped") + json_object_array_length(records);
	json_object_put(o);
	return 0;
}

int cli_remote_audit_report(struct cli_remote *r, int json, const char *name, uint64_t mark, struct cli_buf *b)
{
	json_object *records = NULL, *o;
	uint64_t dropped, lost = 0;
	size_t n, first = 0, index = 0;
	int status;

	o = audit_get(r, json, name, &records, &status);
	if (!o)
		return status;
	dropped = (uint64_t)cli_remote_jint(o, "dropped");
	n = json_object_array_length(records);
	/* Record i is number dropped + i of all the sandbox logged; ours are those from `mark` on. */
	if (mark > dropped)
		first = mark - dropped < n ? (size_t)(mark - dropped) : n;
	else
		lost = dropped - mark;
	if (json)
		cli_buf_puts(b, ", \"network_log\": [");
	for (size_t i = first; i < n; i++) {
		json_object *x = json_object_array_get_idx(records, i);
		struct cli_net_entry e = {
			jstr(x, "source"), jstr(x, "method"), jstr(x, "host"), jstr(x, "address"), jstr(x, "verdict"),
			jstr(x, "reason"), (uint64_t)cli_remote_jint(x, "time_us"), (uint64_t)cli_remote_jint(x, "bytes_up"),
			(uint64_t)cli_remote_jint(x, "bytes_down"), (unsigned)cli_remote_jint(x, "port"), (int)cli_remote_jint(x, "status")
		};

		cli_net_entry_report(b, json, index++, &e);
	}
	if (json)
		cli_buf_printf(b, "], \"network_log_dropped\": %llu", (unsigned long long)lost);
	else if (lost)
		fprintf(stderr, "mimobox: net: %llu older entries were not kept\n", (unsigned long long)lost);
	json_object_put(o);
	if (b->failed) {
		cli_report(json, MBX_ENOMEM, "out of memory formatting the network log", NULL, NULL, ENOMEM);
		return CLI_EXIT_FAILED;
	}
	return 0;
}

/*
 * run --audit: the library's one-shot run has no log to read afterwards,
 * so the run is a sandbox of its own: made (`create`: the run's options),
 * the program executed in it, its log read, and the sandbox removed.
 */
int cli_remote_run_audit(struct cli_remote *r, int json, const struct cli_buf *create, const struct cli_buf *exec)
{
	struct cli_remote_answer a;
	struct cli_buf t = CLI_BUF_INIT, audit = CLI_BUF_INIT;
	json_object *o = NULL, *made = NULL;
	const char *id;
	int status = CLI_EXIT_FAILED;

	if (create->failed || exec->failed) {
		cli_report(json, MBX_ENOMEM, "out of memory", NULL, NULL, ENOMEM);
		return CLI_EXIT_FAILED;
	}
	if (cli_remote_json_load(json) < 0)
		return CLI_EXIT_FAILED;
	if (cli_remote_call(r, json, "POST", "/v1/sandboxes", "application/json", create->data, create->len,
			    ANSWER_MAX, &a) < 0)
		return CLI_EXIT_FAILED;
	if (a.status != 201) {
		status = cli_remote_report(r, json, &a);
		cli_buf_free(&a.body);
		return status;
	}
	made = cli_remote_json_parse(a.body.data, a.body.len);
	cli_buf_free(&a.body);
	id = jstr(made, "id");
	if (!id[0] || strspn(id, "0123456789abcdef") != strlen(id)) {
		cli_report(json, MBX_EPROTO, "the server's answer to POST /v1/sandboxes has no id", NULL, NULL, 0);
		if (made)
			json_object_put(made);
		return CLI_EXIT_FAILED;
	}
	cli_buf_printf(&t, "/v1/sandboxes/%s/exec", id);
	if (t.failed || cli_remote_call(r, json, "POST", t.data, "application/json", exec->data, exec->len, ANSWER_MAX,
					&a) < 0)
		goto out;
	if (a.status != 200) {
		status = cli_remote_report(r, json, &a);
		cli_buf_free(&a.body);
		goto out;
	}
	o = cli_remote_json_parse(a.body.data, a.body.len);
	cli_buf_free(&a.body);
	if (!o) {
		cli_report(json, MBX_EPROTO, "the server's answer to an exec is not a JSON object", NULL, NULL, 0);
		goto out;
	}
	/* The exec's answer does not say the isolation; the sandbox's description does. */
	if (!cli_remote_jget(o, "isolation") && cli_remote_jget(made, "isolation"))
		json_object_object_add(o, "isolation", json_object_new_string(jstr(made, "isolation")));
	/* The whole log: the sandbox is the run's alone. */
	status = cli_remote_audit_report(r, json, id, 0, &audit);
	if (status == 0)
		status = cli_remote_print_outcome_extra(o, json, 0, audit.data);
out:
	/* The sandbox goes, whatever happened (quietly: it is ours, made for this command). */
	cli_buf_free(&t);
	cli_buf_printf(&t, "/v1/sandboxes/%s", id);
	if (!t.failed && cli_remote_call(r, json, "DELETE", t.data, NULL, NULL, 0, ANSWER_MAX, &a) == 0)
		cli_buf_free(&a.body);
	cli_buf_free(&t);
	cli_buf_free(&audit);
	if (o)
		json_object_put(o);
	json_object_put(made);
	return status;
}
