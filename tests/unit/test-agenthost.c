/* SPDX-License-Identifier: Apache-2.0 */
/*
 * "A sandbox driven by an agent" (src/backend/agenthost.c) over the in-memory
 * transport, with a backend of this test's own whose state is the agent
 * host: the INIT every sandbox gets from its config, READY's layers recorded
 * on the sandbox, an execute, and a broken channel turned into a clean
 * destroy through the backend's own destroy.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/agenthost.h"
#include "tap.h"

struct agent {
	struct mbx_mem_agent m;
	struct mbx_wbuf w;
	int die_on_exec;
	uint32_t init_flags;
	char hostname[64];
	int seccomp_len, rlimits;
};

static int react(struct mbx_mem_agent *m, const struct mbx_frame *f, size_t nfds, void *userdata)
{
	struct agent *a = userdata;
	struct mbx_field_iter it;
	const uint8_t *v;
	uint32_t n;
	uint16_t tag;

	(void)nfds;
	switch (f->type) {
	case MBX_MSG_INIT:
		mbx_field_iter_init(&it, f->body, f->len);
		while (mbx_field_next(&it, &tag, &v, &n) == 1) {
			if (tag == MBX_F_INIT_FLAGS)
				mbx_field_u32(v, n, &a->init_flags);
			else if (tag == MBX_F_HOSTNAME && n < sizeof(a->hostname))
				memcpy(a->hostname, v, n);
			else if (tag == MBX_F_SECCOMP)
				a->seccomp_len = (int)n;
			else if (tag == MBX_F_RLIMIT)
				a->rlimits++;
		}
		mbx_proto_begin(&a->w, MBX_MSG_READY, 0);
		mbx_proto_put_u32(&a->w, MBX_F_LAYERS, MBX_LAYER_SECCOMP);
		mbx_proto_put_u32(&a->w, MBX_F_SKIPPED, MBX_LAYER_LANDLOCK);
		mbx_proto_put_u32(&a->w, MBX_F_LANDLOCK_ABI, 0);
		mbx_proto_end(&a->w);
		break;
	case MBX_MSG_EXEC:
		mbx_proto_begin(&a->w, MBX_MSG_STARTED, f->id);
		mbx_proto_end(&a->w);
		if (a->die_on_exec) {
			mbx__mem_agent_send(m, &a->w);
			return 1;
		}
		mbx_proto_begin(&a->w, MBX_MSG_STDOUT, f->id);
		mbx_proto_put(&a->w, MBX_F_DATA, "ok", 2);
		mbx_proto_end(&a->w);
		mbx_proto_begin(&a->w, MBX_MSG_EXIT, f->id);
		mbx_proto_put_u32(&a->w, MBX_F_EXIT_CODE, 0);
		mbx_proto_end(&a->w);
		break;
	default:
		return 0;
	}
	return mbx__mem_agent_send(m, &a->w) < 0;
}

/* ---- a backend whose state is an agent host ---- */

static int destroys;

static int t_destroy(mbx_sandbox *sb, mbx_error **err)
{
	struct mbx_agenthost *h = sb->priv;

	(void)err;
	destroys++;
	if (h) {
		mbx__agenthost_shutdown(h);
		mbx__agenthost_release(h);
		free(h);
	}
	sb->priv = NULL;
	return MBX_OK;
}

static int t_exec(mbx_sandbox *sb, const struct mbx_exec_req *req, mbx_result *res, mbx_error **err)
{
	return mbx__agenthost_exec(sb, sb->priv, req, res, err);
}

static const struct mbx_backend_ops test_backend = {
	.name = "test",
	.caps = MBX_BACKEND_CAP_EXEC,
	.exec = t_exec,
	.destroy = t_destroy,
};

static char *const argv_prog[] = { "prog", NULL };
static char *const envp_none[] = { NULL };

/* A created sandbox on agent `a`, or NULL. */
static mbx_sandbox *make(struct agent *a, mbx_trust_t trust, int degraded)
{
	mbx_sandbox *sb = calloc(1, sizeof(*sb));
	struct mbx_agenthost *h = calloc(1, sizeof(*h));
	struct mbx_transport t;
	mbx_error *err = NULL;
	int rc;

	memset(a, 0, sizeof(*a));
	mbx_wbuf_init(&a->w);
	mbx__mem_agent_init(&a->m, react, a);
	mbx_proto_begin(&a->w, MBX_MSG_HELLO, 0);
	mbx_proto_put_u32(&a->w, MBX_F_VERSION, MBX_PROTO_VERSION);
	mbx_proto_put_u64(&a->w, MBX_F_SESSION, 5);
	mbx_proto_end(&a->w);
	mbx__mem_agent_send(&a->m, &a->w);

	mbx_config_new(&sb->cfg, NULL);
	mbx_config_set_trust(sb->cfg, trust, NULL);
	mbx_config_set_hostname(sb->cfg, "box", NULL);
	mbx_config_set_allow_degraded(sb->cfg, degraded);
	sb->ops = &test_backend;
	strcpy(sb->id, "0123456789abcdef");
	mbx__agenthost_init(h);
	TAP_CHECK(mbx__agenthost_client(h) == NULL);
	mbx__transport_mem(&t, &a->m);
	rc = mbx__agenthost_attach(h, &t, mbx__now_us() + 2000000u, &err);
	if (rc == MBX_OK)
		rc = mbx__agenthost_init_begin(h, sb->cfg, MBX_INIT_LOOPBACK, &err);
	if (rc == MBX_OK)
		rc = mbx__agenthost_setup(sb, h, NULL, 0, mbx__now_us() + 2000000u, &err);
	TAP_CHECK_INT(rc, MBX_OK);
	if (err)
		printf("#   %s\n", mbx_error_message(err));
	mbx_error_free(err);
	sb->priv = h;
	return sb;
}

static void unmake(mbx_sandbox *sb, struct agent *a)
{
	mbx_sandbox_destroy(sb, NULL);
	mbx_config_free(sb->cfg);
	free(sb);
	mbx_wbuf_release(&a->w);
	mbx__mem_agent_release(&a->m);
}

static int exec_one(mbx_sandbox *sb, mbx_result *res, mbx_error **err)
{
	struct mbx_exec_req req;

	memset(&req, 0, sizeof(req));
	req.argv = argv_prog;
	req.envp = envp_none;
	req.cwd = "/";
	req.timeout_ms = 1000;
	req.output_limit = 1024;
	memset(res, 0, sizeof(*res));
	return sb->ops->exec(sb, &req, res, err);
}

static void test_init_and_ready(void)
{
	struct agent a;
	mbx_sandbox *sb = make(&a, MBX_TRUST_UNTRUSTED, 1);

	/* What every sandbox gets from its config. */
	TAP_CHECK_INT(a.init_flags, MBX_INIT_LOOPBACK | MBX_INIT_ALLOW_DEGRADED | MBX_INIT_UNTRUSTED);
	TAP_CHECK_STR(a.hostname, "box");
	TAP_CHECK(a.seccomp_len > 0 && a.seccomp_len % 8 == 0);
	TAP_CHECK_INT(a.rlimits, 1);
	/* READY's layers and skips, with the reason, on the sandbox. */
	TAP_CHECK(sb->layers & MBX_LAYER_SECCOMP);
	TAP_CHECK(sb->skipped & MBX_LAYER_LANDLOCK);
	TAP_CHECK_STR(mbx_sandbox_skip_reason(sb, MBX_LAYER_LANDLOCK), "the kernel has no usable Landlock");
	TAP_CHECK(mbx__agenthost_client(sb->priv) != NULL);
	unmake(sb, &a);

	sb = make(&a, MBX_TRUST_TRUSTED, 0);
	TAP_CHECK_INT(a.init_flags, MBX_INIT_LOOPBACK);
	unmake(sb, &a);
}

static void test_exec_then_broken_channel_destroys(void)
{
	struct agent a;
	mbx_sandbox *sb = make(&a, MBX_TRUST_TRUSTED, 0);
	mbx_result res;
	mbx_error *err = NULL;

	destroys = 0;
	TAP_CHECK_INT(exec_one(sb, &res, &err), MBX_OK);
	TAP_CHECK(res.out.len == 2 && memcmp(res.out.data, "ok", 2) == 0);
	mbx__buf_release(&res.out);
	mbx__buf_release(&res.err);
	TAP_CHECK(!sb->destroyed);

	/* The agent dies in the middle of the next one. */
	a.die_on_exec = 1;
	TAP_CHECK_INT(exec_one(sb, &res, &err), MBX_EPROTO);
	TAP_CHECK(err && strstr(mbx_error_message(err), "stopped working and was destroyed"));
	TAP_CHECK(err && strstr(mbx_error_message(err), "closed its channel"));
	TAP_CHECK(sb->destroyed);
	TAP_CHECK(sb->priv == NULL);
	TAP_CHECK_INT(destroys, 1);
	/* The transport was closed with it. */
	TAP_CHECK(a.m.host_closed);
	mbx__buf_release(&res.out);
	mbx__buf_release(&res.err);
	mbx_error_free(err);
	unmake(sb, &a);
	TAP_CHECK_INT(destroys, 1); /* destroyed once, not again */
}

static const struct tap_case cases[] = {
	{ "agenthost/init-and-ready", test_init_and_ready },
	{ "agenthost/broken-channel-destroys", test_exec_then_broken_channel_destroys },
};

TAP_MAIN(cases)
