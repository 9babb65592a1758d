/* SPDX-License-Identifier: Apache-2.0 */
/* The QMP client (src/backend/microvm/qmp.c): parsing of QEMU's lines, which
 * are untrusted (a guest may own QEMU), and a conversation with a scripted
 * QEMU over a unix socket: events skipped, errors reported, lines bounded,
 * a descriptor passed with getfd. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tap.h"

#include "internal.h"
#include "qmp.h"

#define L(s) s, sizeof(s) - 1

static void test_classify(void)
{
	TAP_CHECK(mbx__qmp_classify(L("{\"return\": {}}")) == MBX_QMP_RETURN);
	TAP_CHECK(mbx__qmp_classify(L("  { \"return\": {\"status\": \"completed\"}}")) == MBX_QMP_RETURN);
	TAP_CHECK(mbx__qmp_classify(L("{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}}")) == MBX_QMP_ERROR);
	TAP_CHECK(mbx__qmp_classify(L("{\"timestamp\": {\"seconds\": 1}, \"event\": \"STOP\"}")) == MBX_QMP_OTHER);
	TAP_CHECK(mbx__qmp_classify(L("{\"QMP\": {\"version\": {}}}")) == MBX_QMP_OTHER);
	/* "return" inside an event is not a reply. */
	TAP_CHECK(mbx__qmp_classify(L("{\"event\": \"X\", \"data\": {\"return\": 1}}")) == MBX_QMP_OTHER);
	TAP_CHECK(mbx__qmp_classify(L("")) == MBX_QMP_OTHER);
	TAP_CHECK(mbx__qmp_classify(L("{")) == MBX_QMP_OTHER);
	TAP_CHECK(mbx__qmp_classify(L("{\"retur")) == MBX_QMP_OTHER);
	TAP_CHECK(mbx__qmp_classify(L("[\"return\"]")) == MBX_QMP_OTHER);
}

static void test_string_field(void)
{
	char out[16];

	TAP_CHECK(mbx__qmp_string_field(L("{\"return\": {\"status\": \"completed\", \"x\": 1}}"), "status", out, sizeof(out)) == 0 &&
		  strcmp(out, "completed") == 0);
	TAP_CHECK(mbx__qmp_string_field(L("{\"status\":\"active\"}"), "status", out, sizeof(out)) == 0 &&
		  strcmp(out, "active") == 0);
	/* Not a string, absent, unterminated, too long, or with bytes outside
	 * the plain set: refused, never copied in part. */
	TAP_CHECK(mbx__qmp_string_field(L("{\"status\": 3}"), "status", out, sizeof(out)) < 0);
	TAP_CHECK(mbx__qmp_string_field(L("{\"state\": \"x\"}"), "status", out, sizeof(out)) < 0);
	TAP_CHECK(mbx__qmp_string_field(L("{\"status\": \"completed"), "status", out, sizeof(out)) < 0);
	TAP_CHECK(mbx__qmp_string_field(L("{\"status\": \"abcdefghijklmnopqrstuvwxyz\"}"), "status", out, sizeof(out)) < 0);
	TAP_CHECK(mbx__qmp_string_field(L("{\"status\": \"a\\u001b[2J\"}"), "status", out, sizeof(out)) < 0);
	TAP_CHECK(mbx__qmp_string_field(L("{\"status\": \"a\nb\"}"), "status", out, sizeof(out)) < 0);
	TAP_CHECK(mbx__qmp_string_field(L("\"status\""), "status", out, sizeof(out)) < 0);
	TAP_CHECK(mbx__qmp_string_field(L("{\"status\": \"\"}"), "status", out, sizeof(out)) == 0 && out[0] == '\0');
	TAP_CHECK(mbx__qmp_string_field(L("{\"status\": \"x\"}"), "status", out, 1) < 0);
	/* The key must be whole: "xstatus" is another key. */
	TAP_CHECK(mbx__qmp_string_field(L("{\"xstatus\": \"a\", \"status\": \"b\"}"), "status", out, sizeof(out)) == 0 &&
		  strcmp(out, "b") == 0);
}

/* ---- a scripted QEMU ---- */

struct fake {
	int listen_fd;
	const char *const *script; /* one reply per command read; NULL ends */
	int got_fd;                /* a descriptor came with a command */
	char first_cmd[256];
};

static void *serve(void *arg)
{
	struct fake *f = arg;
	int c = accept(f->listen_fd, NULL, NULL);
	char buf[4096];

	if (c < 0)
		return NULL;
	(void)!write(c, "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n", 46);
	for (const char *const *s = f->script; *s; s++) {
		union {
			char b[CMSG_SPACE(sizeof(int))];
			struct cmsghdr a;
		} ctl;
		struct iovec iov = { buf, sizeof(buf) - 1 };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b) };
		ssize_t n = recvmsg(c, &msg, 0);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

		if (n <= 0)
			break;
		buf[n] = '\0';
		if (s != f->script && f->first_cmd[0] == '\0')
			snprintf(f->first_cmd, sizeof(f->first_cmd), "%.200s", buf);
		if (cm && cm->cmsg_type == SCM_RIGHTS) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
			f->got_fd = 1;
			close(fd);
		}
		/* A command and its newline may come in two writes. */
		if (!strchr(buf, '\n'))
			(void)!recv(c, buf, sizeof(buf), 0);
		(void)!write(c, *s, strlen(*s));
	}
	close(c);
	return NULL;
}

static int conversation(const char *const *script, const char *cmd, int fd, char *reply, size_t cap, char *msg,
			size_t msgcap, struct fake *f)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct mbx_qmp q = { .fd = -1 };
	mbx_error *e = NULL;
	pthread_t t;
	int rc;

	memset(f, 0, sizeof(*f));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/mbx-test-qmp-%d.sock", (int)getpid());
	unlink(sa.sun_path);
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	TAP_CHECK(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(f->listen_fd, 1) == 0);
	f->script = script;
	pthread_create(&t, NULL, serve, f);
	rc = mbx__qmp_open(&q, sa.sun_path, mbx__now_us() + 5000000u, &e);
	if (rc == MBX_OK)
		rc = mbx__qmp_command(&q, cmd, fd, reply, cap, mbx__now_us() + 5000000u, &e);
	snprintf(msg, msgcap, "%s", e ? mbx_error_message(e) : "");
	mbx_error_free(e);
	mbx__qmp_close(&q);
	pthread_join(t, NULL);
	close(f->listen_fd);
	unlink(sa.sun_path);
	return rc;
}

static void test_conversation(void)
{
	static const char *const ok[] = { "{\"return\": {}}\r\n",
		"{\"timestamp\": {\"seconds\": 1}, \"event\": \"STOP\"}\r\n{\"return\": {\"status\": \"completed\"}}\r\n", NULL };
	static const char *const refused[] = { "{\"return\": {}}\r\n",
		"{\"error\": {\"class\": \"GenericError\", \"desc\": \"Migration is disabled\\u001b\"}}\r\n", NULL };
	static const char *const bare_error[] = { "{\"return\": {}}\r\n", "{\"error\": {}}\r\n", NULL };
	static const char *const closes[] = { "{\"return\": {}}\r\n", "", NULL };
	char reply[128], msg[512];
	struct fake f;
	int p[2];

	TAP_CHECK_INT(conversation(ok, "{\"execute\":\"query-migrate\"}", -1, reply, sizeof(reply), msg, sizeof(msg), &f),
		      MBX_OK);
	TAP_CHECK(strstr(reply, "completed") != NULL);
	TAP_CHECK(strstr(f.first_cmd, "query-migrate") != NULL && !f.got_fd);
	/* A descriptor goes along with getfd. */
	TAP_CHECK(pipe(p) == 0);
	TAP_CHECK_INT(conversation(ok, "{\"execute\":\"getfd\"}", p[1], NULL, 0, msg, sizeof(msg), &f), MBX_OK);
	TAP_CHECK(f.got_fd);
	close(p[0]);
	close(p[1]);
	/* QEMU's error, its description cleaned of what is not plain text. */
	TAP_CHECK_INT(conversation(refused, "{\"execute\":\"migrate\"}", -1, NULL, 0, msg, sizeof(msg), &f), MBX_ESYS);
	TAP_CHECK(strstr(msg, "QEMU refused a command: no description") != NULL);
	TAP_CHECK_INT(conversation(bare_error, "{\"execute\":\"stop\"}", -1, NULL, 0, msg, sizeof(msg), &f), MBX_ESYS);
	TAP_CHECK(strstr(msg, "QEMU refused a command") != NULL);
	/* QEMU gone mid-conversation. */
	TAP_CHECK_INT(conversation(closes, "{\"execute\":\"stop\"}", -1, NULL, 0, msg, sizeof(msg), &f), MBX_ESYS);
	TAP_CHECK(strstr(msg, "closed its control socket") != NULL);
}

static void test_overlong_line(void)
{
	static char big[MBX_QMP_LINE_MAX + 64];
	static const char *script[] = { "{\"return\": {}}\r\n", big, NULL };
	char msg[512];
	struct fake f;

	memset(big, 'x', sizeof(big) - 1);
	big[0] = '{';
	TAP_CHECK_INT(conversation(script, "{\"execute\":\"stop\"}", -1, NULL, 0, msg, sizeof(msg), &f), MBX_EPROTO);
	TAP_CHECK(strstr(msg, "line over") != NULL);
}

static const struct tap_case cases[] = {
	{ "qmp/classify", test_classify },
	{ "qmp/string-field", test_string_field },
	{ "qmp/conversation", test_conversation },
	{ "qmp/overlong-line", test_overlong_line },
};

TAP_MAIN(cases)
