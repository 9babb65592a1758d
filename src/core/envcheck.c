/* SPDX-License-Identifier: Apache-2.0 */
/* Environment of executes: a clean baseline, the config's variables, then the
 * call's, with names that change how programs load or start refused. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The baseline every execute starts from; nothing is inherited from the host. */
static const char *const baseline[] = {
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/workspace",
	"LANG=C.UTF-8",
	"TMPDIR=/tmp",
	"USER=root",
	"LOGNAME=root",
	"SHELL=/bin/sh",
	"TERM=dumb",
	NULL,
};

/*
 * Names refused outright. Each lets a variable reach into every program the
 * payload starts, past the program's own choices: the dynamic loader
 * (LD_*), shells that source a file at start (BASH_ENV, ENV), exported bash
 * functions (BASH_FUNC_*), glibc's charset modules (GCONV_PATH), its
 * allocator tunables (GLIBC_TUNABLES, CVE-2023-4911, and MALLOC_*), and
 * locale/hostname lookup files (LOCPATH, HOSTALIASES, RESOLV_HOST_CONF).
 */
static const char *const forbidden_exact[] = {
	"BASH_ENV", "ENV", "GCONV_PATH", "GLIBC_TUNABLES", "LOCPATH", "HOSTALIASES",
	"RESOLV_HOST_CONF", "NLSPATH", "SHELLOPTS", "BASHOPTS", "PS4", "IFS", NULL,
};
static const char *const forbidden_prefix[] = { "LD_", "BASH_FUNC_", "MALLOC_", NULL };

int mbx__env_check_name(const char *name, mbx_error **err)
{
	size_t i;

	if (name == NULL || name[0] == '\0')
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "environment variable name is empty");
	if (name[0] >= '0' && name[0] <= '9')
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "environment variable name `%s` starts with a digit", name);
	for (i = 0; name[i]; i++) {
		char c = name[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return mbx__error_set(err, MBX_EINVAL, 0, NULL,
					      "environment variable name `%s` contains `%c`: use letters, digits and `_` only",
					      name, c);
	}
	for (i = 0; forbidden_exact[i]; i++)
		if (strcmp(name, forbidden_exact[i]) == 0)
			goto forbidden;
	for (i = 0; forbidden_prefix[i]; i++)
		if (strncmp(name, forbidden_prefix[i], strlen(forbidden_prefix[i])) == 0)
			goto forbidden;
	return MBX_OK;
forbidden:
	mbx__error_set(err, MBX_EINVAL, 0, NULL,
		       "environment variable `%s` is not allowed: it changes how every program in the sandbox loads or starts",
		       name);
	mbx__error_suggest(err, "set it inside the command instead (e.g. `sh -c '%s=... exec prog'`) if the program really needs it", name);
	return MBX_EINVAL;
}

void mbx__env_release(struct mbx_env *env)
{
	for (size_t i = 0; i < env->n; i++)
		free(env->kv[i]);
	free(env->kv);
	env->kv = NULL;
	env->n = 0;
}

int mbx__env_copy(struct mbx_env *dst, const struct mbx_env *src)
{
	dst->kv = NULL;
	dst->n = 0;
	if (src->n == 0)
		return MBX_OK;
	dst->kv = calloc(src->n, sizeof(char *));
	if (dst->kv == NULL)
		return MBX_ENOMEM;
	for (size_t i = 0; i < src->n; i++) {
		dst->kv[i] = strdup(src->kv[i]);
		if (dst->kv[i] == NULL) {
			dst->n = i;
			mbx__env_release(dst);
			return MBX_ENOMEM;
		}
	}
	dst->n = src->n;
	return MBX_OK;
}

/* Index of the entry named `name` (length nlen) in kv, or -1. */
static long env_find(char *const *kv, size_t n, const char *name, size_t nlen)
{
	for (size_t i = 0; i < n; i++)
		if (strncmp(kv[i], name, nlen) == 0 && kv[i][nlen] == '=')
			return (long)i;
	return -1;
}

int mbx__env_set(struct mbx_env *env, const char *name, const char *value, mbx_error **err)
{
	char *kv = NULL;
	long at;
	int rc;

	rc = mbx__env_check_name(name, err);
	if (rc < 0)
		return rc;
	if (value == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "environment variable `%s` has no value", name);
	if (asprintf(&kv, "%s=%s", name, value) < 0)
		return mbx__error_oom(err);
	at = env_find(env->kv, env->n, name, strlen(name));
	if (at >= 0) {
		free(env->kv[at]);
		env->kv[at] = kv;
		return MBX_OK;
	}
	char **nkv = realloc(env->kv, (env->n + 1) * sizeof(char *));
	if (nkv == NULL) {
		free(kv);
		return mbx__error_oom(err);
	}
	env->kv = nkv;
	env->kv[env->n++] = kv;
	return MBX_OK;
}

/* Sets kv (a "NAME=value" string) in the vector v of length *n, replacing an
 * entry with the same name. v has room for the result. */
static int merge_one(char **v, size_t *n, const char *kv)
{
	const char *eq = strchr(kv, '=');
	size_t nlen = eq ? (size_t)(eq - kv) : strlen(kv);
	long at = env_find(v, *n, kv, nlen);
	char *copy = strdup(kv);

	if (copy == NULL)
		return -1;
	if (at >= 0) {
		free(v[at]);
		v[at] = copy;
	} else {
		v[(*n)++] = copy;
	}
	return 0;
}

int mbx__env_merge(const struct mbx_env *cfg, const struct mbx_env *call, char ***out, mbx_error **err)
{
	size_t cap = sizeof(baseline) / sizeof(baseline[0]) + cfg->n + (call ? call->n : 0);
	size_t n = 0, i;
	char **v = calloc(cap + 1, sizeof(char *));

	if (v == NULL)
		return mbx__error_oom(err);
	for (i = 0; baseline[i]; i++)
		if (merge_one(v, &n, baseline[i]) < 0)
			goto oom;
	for (i = 0; i < cfg->n; i++)
		if (merge_one(v, &n, cfg->kv[i]) < 0)
			goto oom;
	for (i = 0; call && i < call->n; i++)
		if (merge_one(v, &n, call->kv[i]) < 0)
			goto oom;
	v[n] = NULL;
	*out = v;
	return MBX_OK;
oom:
	mbx__strv_free(v);
	return mbx__error_oom(err);
}
