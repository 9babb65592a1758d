/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the host client's state machine (src/backend/client.c), with
 * the input as everything a (compromised) agent says. The first byte picks
 * a conversation (bits 0-1) and a transport (bits 2-3); the rest is what the
 * agent says, then the end of its stream, so every read of the client ends
 * in data or EOF and nothing waits. The client must return an error or a
 * result, never crash, never read outside a buffer, and leave nothing
 * allocated after mbx__client_close.
 *
 * Transports (src/backend/transport.h):
 *   0  socket: the agent's end of a socketpair, shut for writing
 *   1  mem: the whole input readable at once; writes fail once it is read
 *   2  mem, one byte per read: every frame arrives cut at every byte
 *   3  mem, 7 bytes per read
 *
 * Conversations:
 *   0  HELLO, INIT -> READY, then one execute
 *   1  one execute (ids start at 1)
 *   2  spawn with a 64 KiB window, take events, a LIST request, release
 *   3  spawn with a 1-byte window, a LIST request first, then the events
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *const argv_prog[] = { "prog", NULL };
static char *const envp_none[] = { NULL };

static void req_init(struct mbx_exec_req *req)
{
	memset(req, 0, sizeof(*req));
	req->argv = argv_prog;
	req->envp = envp_none;
	req->cwd = "/";
	req->timeout_ms = 1000;
	req->output_limit = 4096;
}

static void check_result(const mbx_result *res)
{
	if (res->out.len > 4096 || res->err.len > 4096)
		__builtin_trap();
}

static void one_exec(struct mbx_client *c)
{
	struct mbx_exec_req req;
	mbx_result res;
	mbx_error *err = NULL;
	int rc;

	req_init(&req);
	memset(&res, 0, sizeof(res));
	rc = mbx__client_exec(c, &req, &res, &err);
	if (rc < 0 && err == NULL)
		__builtin_trap(); /* every failure explains itself */
	check_result(&res);
	mbx__buf_release(&res.out);
	mbx__buf_release(&res.err);
	mbx_error_free(err);
}

static int list_request(struct mbx_client *c)
{
	struct mbx_frame reply;
	mbx_error *err = NULL;
	uint32_t id = c->next_id++;
	int rc;

	mbx_proto_begin(&c->wb, MBX_MSG_LIST, id);
	mbx_proto_end(&c->wb);
	rc = mbx__client_request(c, id, mbx__now_us() + 1000000u, &reply, &err);
	if (rc < 0 && err == NULL)
		__builtin_trap();
	if (rc == MBX_OK && reply.id != id)
		__builtin_trap();
	mbx_error_free(err);
	return rc;
}

/* Takes events until the end, an error or nothing more. */
static int take_events(struct mbx_client *c, struct mbx_cproc *p)
{
	for (int i = 0; i < 1000; i++) {
		struct mbx_event *ev = NULL;
		mbx_error *err = NULL;
		int rc = mbx__client_next_event(c, p, mbx__now_us() + 1000000u, &ev, &err);

		mbx_error_free(err);
		if (rc < 0)
			return rc;
		if (ev == NULL)
			return MBX_OK;
		if ((ev->kind == MBX_EVENT_STDOUT || ev->kind == MBX_EVENT_STDERR) && ev->len > MBX_PROTO_MAX_BODY)
			__builtin_trap();
		if (ev->kind == MBX_EVENT_EXIT || ev->kind == MBX_EVENT_TIMED_OUT) {
			mbx__event_free(ev);
			return MBX_OK;
		}
		mbx__event_free(ev);
	}
	return MBX_OK;
}

static void spawn_conversation(struct mbx_client *c, uint64_t window, int request_first)
{
	struct mbx_exec_req req;
	struct mbx_spawn_req sr;
	struct mbx_cproc *p = NULL;
	mbx_error *err = NULL;
	int rc;

	req_init(&req);
	memset(&sr, 0, sizeof(sr));
	sr.exec = &req;
	sr.window = window;
	sr.flags = MBX_XF_STDIN;
	rc = mbx__client_spawn(c, &sr, &p, &err);
	mbx_error_free(err);
	if (rc < 0)
		return;
	if (request_first)
		rc = list_request(c);
	if (rc == MBX_OK)
		rc = take_events(c, p);
	if (rc == MBX_OK && !request_first)
		rc = list_request(c);
	if (rc == MBX_OK && !c->broken)
		(void)mbx__client_proc_send(c, p, MBX_MSG_STDIN_CLOSE, NULL, 0, 0, 0, NULL);
	mbx__client_release(c, p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mbx_client c;
	struct mbx_mem_agent agent;
	struct mbx_transport t;
	int sv[2] = { -1, -1 };
	unsigned mode, transport;

	if (size < 1)
		return 0;
	mode = data[0] % 4;
	transport = (data[0] >> 2) % 4;
	data++;
	size--;
	mbx__mem_agent_init(&agent, NULL, NULL);
	if (transport == 0) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			return 0;
		/* What fits in the socket buffer is the agent's whole say. */
		fcntl(sv[1], F_SETFL, O_NONBLOCK);
		while (size > 0) {
			ssize_t n = send(sv[1], data, size, MSG_NOSIGNAL);

			if (n <= 0)
				break;
			data += n;
			size -= (size_t)n;
		}
		shutdown(sv[1], SHUT_WR);
		mbx__client_init(&c, sv[0]);
	} else {
		if (mbx__mem_agent_push(&agent, data, size) < 0) {
			mbx__mem_agent_release(&agent);
			return 0;
		}
		agent.eof = 1;
		agent.read_max = transport == 2 ? 1 : transport == 3 ? 7 : 0;
		mbx__transport_mem(&t, &agent);
		mbx__client_init_transport(&c, &t);
	}

	if (mode == 0) {
		struct mbx_ready_info ready;
		mbx_error *err = NULL;
		uint64_t deadline = mbx__now_us() + 1000000u;
		int rc = mbx__client_hello(&c, deadline, &err);

		if (rc == MBX_OK) {
			mbx_proto_begin(&c.wb, MBX_MSG_INIT, 0);
			mbx_proto_end(&c.wb);
			rc = mbx__client_init_sandbox(&c, NULL, 0, &ready, deadline, &err);
		}
		if (rc < 0 && err == NULL)
			__builtin_trap();
		mbx_error_free(err);
		if (rc == MBX_OK)
			one_exec(&c);
	} else if (mode == 1) {
		one_exec(&c);
		if (!c.broken)
			one_exec(&c);
	} else {
		spawn_conversation(&c, mode == 2 ? 65536 : 1, mode == 3);
	}
	mbx__client_shutdown(&c);
	mbx__client_close(&c);
	if (sv[1] >= 0)
		close(sv[1]);
	mbx__mem_agent_release(&agent);
	return 0;
}
