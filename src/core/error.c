/* SPDX-License-Identifier: Apache-2.0 */
/* Error objects: a code, an errno value, a message with its context chain, an
 * optional suggestion and the layer it concerns. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error-internal.h"

struct mbx_error {
	int code;
	int errnum;
	char *message;
	char *suggestion;
	char *layer;
};

/* Returned for MBX_ENOMEM when even the error object cannot be allocated. */
static const char oom_message[] = "out of memory";

static char *vformat(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static char *vformat(const char *fmt, va_list ap)
{
	char *s = NULL;

	if (vasprintf(&s, fmt, ap) < 0)
		return NULL;
	return s;
}

static void error_release(mbx_error *e)
{
	if (e == NULL)
		return;
	free(e->message);
	free(e->suggestion);
	free(e->layer);
	free(e);
}

int mbx__error_set(mbx_error **err, int code, int errnum, const char *layer, const char *fmt, ...)
{
	va_list ap;
	mbx_error *e;
	char *msg;

	if (err == NULL)
		return code;
	error_release(*err);
	*err = NULL;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return code;
	va_start(ap, fmt);
	msg = vformat(fmt, ap);
	va_end(ap);
	if (msg != NULL && errnum != 0) {
		char *full = NULL;

		if (asprintf(&full, "%s: %s", msg, strerror(errnum)) >= 0) {
			free(msg);
			msg = full;
		}
	}
	e->code = code;
	e->errnum = errnum;
	e->message = msg;
	e->layer = layer ? strdup(layer) : NULL;
	*err = e;
	return code;
}

void mbx__error_suggest(mbx_error **err, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (err == NULL || *err == NULL)
		return;
	va_start(ap, fmt);
	s = vformat(fmt, ap);
	va_end(ap);
	if (s != NULL) {
		free((*err)->suggestion);
		(*err)->suggestion = s;
	}
}

void mbx__error_wrap(mbx_error **err, const char *fmt, ...)
{
	va_list ap;
	char *ctx, *full = NULL;

	if (err == NULL || *err == NULL)
		return;
	va_start(ap, fmt);
	ctx = vformat(fmt, ap);
	va_end(ap);
	if (ctx != NULL && asprintf(&full, "%s: %s", ctx, (*err)->message ? (*err)->message : "") >= 0) {
		free((*err)->message);
		(*err)->message = full;
	}
	free(ctx);
}

void mbx__error_move(mbx_error **to, mbx_error **from)
{
	if (from == NULL)
		return;
	if (to == NULL) {
		error_release(*from);
	} else {
		error_release(*to);
		*to = *from;
	}
	*from = NULL;
}

int mbx__error_copy(mbx_error **to, const mbx_error *from)
{
	mbx_error *e;

	if (to == NULL || from == NULL)
		return MBX_OK;
	error_release(*to);
	*to = NULL;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return mbx__error_oom(to);
	e->code = from->code;
	e->errnum = from->errnum;
	e->message = from->message ? strdup(from->message) : NULL;
	e->suggestion = from->suggestion ? strdup(from->suggestion) : NULL;
	e->layer = from->layer ? strdup(from->layer) : NULL;
	if ((from->message && !e->message) || (from->suggestion && !e->suggestion) || (from->layer && !e->layer)) {
		error_release(e);
		return mbx__error_oom(to);
	}
	*to = e;
	return MBX_OK;
}

int mbx__error_oom(mbx_error **err)
{
	return mbx__error_set(err, MBX_ENOMEM, ENOMEM, NULL, "cannot allocate memory");
}

const char *mbx_error_code_name(int code)
{
	switch (code) {
	case MBX_OK: return "ok";
	case MBX_EINVAL: return "invalid_argument";
	case MBX_ENOMEM: return "out_of_memory";
	case MBX_ENOTSUP: return "unsupported";
	case MBX_EPERM: return "permission_denied";
	case MBX_ESYS: return "system_error";
	case MBX_ETIMEDOUT: return "timed_out";
	case MBX_EBACKEND: return "backend_error";
	case MBX_ESTATE: return "bad_state";
	case MBX_ENOTFOUND: return "not_found";
	case MBX_ENOEXEC: return "not_executable";
	case MBX_ENOTDIR: return "not_a_directory";
	case MBX_ETOOBIG: return "too_large";
	case MBX_EPROTO: return "protocol_error";
	case MBX_EEXIST: return "already_exists";
	case MBX_EDENIED: return "denied";
	case MBX_ENETWORK: return "network_error";
	case MBX_ETLS: return "tls_error";
	default: return "unknown";
	}
}

int mbx_error_code(const mbx_error *err)
{
	return err ? err->code : MBX_OK;
}

int mbx_error_errno(const mbx_error *err)
{
	return err ? err->errnum : 0;
}

const char *mbx_error_message(const mbx_error *err)
{
	if (err == NULL)
		return "no error";
	return err->message ? err->message : oom_message;
}

const char *mbx_error_suggestion(const mbx_error *err)
{
	return err ? err->suggestion : NULL;
}

const char *mbx_error_layer(const mbx_error *err)
{
	return err ? err->layer : NULL;
}

void mbx_error_free(mbx_error *err)
{
	error_release(err);
}
