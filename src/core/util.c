/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers: string vectors, paths, buffers, time, randomness, removal. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "platform/linux/rmtree.h"

void mbx__strv_free(char **v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; v[i]; i++)
		free(v[i]);
	free(v);
}

size_t mbx__strv_len(char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

char **mbx__strv_dup(const char *const *v)
{
	size_t n = mbx__strv_len((char *const *)v);
	char **d = calloc(n + 1, sizeof(char *));

	if (d == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		d[i] = strdup(v[i]);
		if (d[i] == NULL) {
			mbx__strv_free(d);
			return NULL;
		}
	}
	return d;
}

char *mbx__path_normalize(const char *path)
{
	size_t len, o = 0, i = 0;
	char *out;

	if (path == NULL || path[0] != '/') {
		errno = EINVAL;
		return NULL;
	}
	len = strlen(path);
	out = malloc(len + 2);
	if (out == NULL)
		return NULL;
	while (i < len) {
		size_t start, n;

		while (i < len && path[i] == '/')
			i++;
		start = i;
		while (i < len && path[i] != '/')
			i++;
		n = i - start;
		if (n == 0 || (n == 1 && path[start] == '.'))
			continue;
		if (n == 2 && path[start] == '.' && path[start + 1] == '.') {
			free(out);
			errno = EINVAL;
			return NULL;
		}
		out[o++] = '/';
		memcpy(out + o, path + start, n);
		o += n;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return out;
}

int mbx__buf_reserve(struct mbx_buf *b, size_t len)
{
	if (len > SIZE_MAX / 2 - b->len)
		return -1;
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *nd;

		while (cap < b->len + len + 1)
			cap *= 2;
		nd = realloc(b->data, cap);
		if (nd == NULL)
			return -1;
		b->data = nd;
		b->cap = cap;
	}
	return 0;
}

int mbx__buf_append(struct mbx_buf *b, const void *data, size_t len)
{
	if (mbx__buf_reserve(b, len) < 0)
		return -1;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = 0;
	return 0;
}

void mbx__buf_release(struct mbx_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

uint64_t mbx__now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int mbx__random_hex(char *out, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t raw[32];

	if (nbytes > sizeof(raw))
		return -1;
	if (getrandom(raw, nbytes, 0) != (ssize_t)nbytes)
		return -1;
	for (size_t i = 0; i < nbytes; i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[2 * nbytes] = '\0';
	return 0;
}

void mbx__log(const mbx_config *cfg, mbx_log_level_t level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (cfg == NULL || cfg->log_fn == NULL || level > cfg->log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cfg->log_fn(level, msg, cfg->log_userdata);
}

int mbx__rm_rf(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int rc;

	if (fd < 0 && errno == EACCES) {
		chmod(path, 0700);
		fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	/* Directories need write and search permission to be emptied. */
	fchmod(fd, 0700);
	rc = mbx_rm_below(fd);
	if (rmdir(path) < 0 && errno != ENOENT)
		rc = -1;
	return rc;
}
