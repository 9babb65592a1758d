/* SPDX-License-Identifier: Apache-2.0 */
/* A small QMP client (qmp.h). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "qmp.h"

static int ms_left(uint64_t deadline_us)
{
	uint64_t now = mbx__now_us();

	if (now >= deadline_us)
		return 0;
	return (deadline_us - now) / 1000u > 60000u ? 60000 : (int)((deadline_us - now) / 1000u) + 1;
}

enum mbx_qmp_kind mbx__qmp_classify(const char *line, size_t len)
{
	size_t i = 0;

	/* QEMU writes a reply as {"return": ...} or {"error": ...}, the key
	 * first; an event starts with "timestamp" or "event". */
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i >= len || line[i] != '{')
		return MBX_QMP_OTHER;
	i++;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (len - i >= 8 && memcmp(line + i, "\"return\"", 8) == 0)
		return MBX_QMP_RETURN;
	if (len - i >= 7 && memcmp(line + i, "\"error\"", 7) == 0)
		return MBX_QMP_ERROR;
	return MBX_QMP_OTHER;
}

static int plain_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr(" _.:,()/'-", c) != NULL;
}

int mbx__qmp_string_field(const char *line, size_t len, const char *key, char *out, size_t cap)
{
	size_t klen = strlen(key);

	if (cap == 0 || klen == 0)
		return -1;
	for (size_t i = 0; i + klen + 2 <= len; i++) {
		size_t j, k;

		if (line[i] != '"' || memcmp(line + i + 1, key, klen) != 0 || line[i + 1 + klen] != '"')
			continue;
		j = i + klen + 2;
		while (j < len && line[j] == ' ')
			j++;
		if (j >= len || line[j] != ':')
			continue;
		j++;
		while (j < len && line[j] == ' ')
			j++;
		if (j >= len || line[j] != '"')
			continue;
		j++;
		for (k = 0; j + k < len && line[j + k] != '"'; k++)
			if (!plain_char(line[j + k]) || k + 1 >= cap)
				return -1;
		if (j + k >= len)
			return -1;
		memcpy(out, line + j, k);
		out[k] = '\0';
		return 0;
	}
	return -1;
}

/* The next whole line into q->buf[0..*n) (without the newline); what follows
 * stays buffered. */
static int read_line(struct mbx_qmp *q, size_t *n, uint64_t deadline_us, mbx_error **err)
{
	for (;;) {
		char *nl = memchr(q->buf, '\n', q->len);
		struct pollfd p = { .fd = q->fd, .events = POLLIN };
		ssize_t r;
		int left;

		if (nl != NULL) {
			*n = (size_t)(nl - q->buf);
			return MBX_OK;
		}
		if (q->len >= sizeof(q->buf))
			return mbx__error_set(err, MBX_EPROTO, 0, "vmm", "QEMU's control socket sent a line over %u bytes",
					      MBX_QMP_LINE_MAX);
		left = ms_left(deadline_us);
		if (left == 0)
			return mbx__error_set(err, MBX_ETIMEDOUT, 0, "vmm", "QEMU's control socket did not answer in time");
		if (poll(&p, 1, left) < 0 && errno != EINTR)
			return mbx__error_set(err, MBX_ESYS, errno, NULL, "poll QEMU's control socket");
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		r = read(q->fd, q->buf + q->len, sizeof(q->buf) - q->len);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			return mbx__error_set(err, MBX_ESYS, r < 0 ? errno : 0, "vmm", "QEMU closed its control socket");
		q->len += (size_t)r;
	}
}

static void consume(struct mbx_qmp *q, size_t n)
{
	/* The line and its newline. */
	memmove(q->buf, q->buf + n + 1, q->len - n - 1);
	q->len -= n + 1;
}

static int send_all(struct mbx_qmp *q, const char *s, size_t len, int fd, mbx_error **err)
{
	size_t off = 0;

	while (off < len) {
		struct iovec iov = { (void *)(s + off), len - off };
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} ctl;
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;

		if (off == 0 && fd >= 0) {
			struct cmsghdr *cm;

			memset(&ctl, 0, sizeof(ctl));
			msg.msg_control = ctl.buf;
			msg.msg_controllen = sizeof(ctl.buf);
			cm = CMSG_FIRSTHDR(&msg);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &fd, sizeof(int));
		}
		n = sendmsg(q->fd, &msg, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return mbx__error_set(err, MBX_ESYS, errno, "vmm", "write to QEMU's control socket");
		off += (size_t)n;
	}
	return MBX_OK;
}

int mbx__qmp_command(struct mbx_qmp *q, const char *json, int fd, char *reply, size_t cap, uint64_t deadline_us,
		     mbx_error **err)
{
	int rc = send_all(q, json, strlen(json), fd, err);

	if (rc == MBX_OK)
		rc = send_all(q, "\n", 1, -1, err);
	while (rc == MBX_OK) {
		enum mbx_qmp_kind kind;
		char desc[256];
		size_t n;

		rc = read_line(q, &n, deadline_us, err);
		if (rc < 0)
			break;
		kind = mbx__qmp_classify(q->buf, n);
		if (kind == MBX_QMP_RETURN) {
			if (reply && cap) {
				size_t c = n < cap - 1 ? n : cap - 1;

				memcpy(reply, q->buf, c);
				reply[c] = '\0';
			}
			consume(q, n);
			return MBX_OK;
		}
		if (kind == MBX_QMP_ERROR) {
			if (mbx__qmp_string_field(q->buf, n, "desc", desc, sizeof(desc)) < 0)
				snprintf(desc, sizeof(desc), "no description");
			consume(q, n);
			return mbx__error_set(err, MBX_ESYS, 0, "vmm", "QEMU refused a command: %s", desc);
		}
		consume(q, n); /* an event */
	}
	return rc;
}

int mbx__qmp_open(struct mbx_qmp *q, const char *path, uint64_t deadline_us, mbx_error **err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n;
	int rc;

	q->len = 0;
	q->fd = -1;
	if (strlen(path) >= sizeof(sa.sun_path))
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "QMP socket path `%s` is too long", path);
	strcpy(sa.sun_path, path);
	for (;;) {
		q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (q->fd < 0)
			return mbx__error_set(err, MBX_ESYS, errno, NULL, "create a socket");
		if (connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		rc = errno;
		close(q->fd);
		q->fd = -1;
		if ((rc != ENOENT && rc != ECONNREFUSED) || mbx__now_us() >= deadline_us)
			return mbx__error_set(err, MBX_ESYS, rc, "vmm", "connect to QEMU's control socket");
		usleep(1000);
	}
	/* The greeting: {"QMP": {...}}. */
	rc = read_line(q, &n, deadline_us, err);
	if (rc == MBX_OK) {
		consume(q, n);
		rc = mbx__qmp_command(q, "{\"execute\":\"qmp_capabilities\"}", -1, NULL, 0, deadline_us, err);
	}
	if (rc < 0) {
		mbx__qmp_close(q);
		mbx__error_wrap(err, "QEMU's control socket");
	}
	return rc;
}

void mbx__qmp_close(struct mbx_qmp *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	q->len = 0;
}
