/* SPDX-License-Identifier: Apache-2.0 */
/* Loading libwasmtime.so on first use (see wasmtime-api.h). */
#define MBX_WASMTIME_LOADER
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "wasmtime-api.h"

struct mbx_wasmtime_api mbx__wt;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const char *load_why;
static char load_msg[1024];

/* The directory of the shared object this code lives in (libmimobox), or
 * of the program when the library is linked statically. */
static int own_dir(char *out, size_t size)
{
	Dl_info info;
	const char *slash;

	if (dladdr((void *)&mbx__wasmtime_load, &info) == 0 || info.dli_fname == NULL)
		return -1;
	slash = strrchr(info.dli_fname, '/');
	if (slash == NULL || (size_t)(slash - info.dli_fname) >= size)
		return -1;
	memcpy(out, info.dli_fname, (size_t)(slash - info.dli_fname));
	out[slash - info.dli_fname] = '\0';
	return 0;
}

static void load(void)
{
	char dir[PATH_MAX], path[PATH_MAX + 32], priv[PATH_MAX + 48];
	const char *candidates[4];
	void *h = NULL;
	size_t n = 0;

	if (own_dir(dir, sizeof(dir)) == 0) {
		/* The build tree: a copy beside libmimobox. */
		snprintf(path, sizeof(path), "%s/libwasmtime.so", dir);
		candidates[n++] = path;
		/* Installed: our private directory below libmimobox's. */
		snprintf(priv, sizeof(priv), "%s/mimobox/libwasmtime.so", dir);
		candidates[n++] = priv;
	}
	candidates[n++] = MBX_WASMTIME_PRIVDIR "/libwasmtime.so";
	candidates[n++] = MBX_WASMTIME_LIBDIR "/libwasmtime.so";
	for (size_t i = 0; i < n && h == NULL; i++)
		h = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		snprintf(load_msg, sizeof(load_msg), "cannot load libwasmtime.so (looked next to libmimobox, in %s and in %s): %s",
			 MBX_WASMTIME_PRIVDIR, MBX_WASMTIME_LIBDIR, dlerror());
		load_why = load_msg;
		return;
	}
#define MBX_WT_LOOKUP(name) \
	*(void **)&mbx__wt.name = dlsym(h, #name); \
	if (mbx__wt.name == NULL) { \
		snprintf(load_msg, sizeof(load_msg), "libwasmtime.so lacks `%s`: it is not Wasmtime " WASMTIME_VERSION, #name); \
		load_why = load_msg; \
		return; \
	}
	MBX_WASMTIME_FUNCTIONS(MBX_WT_LOOKUP)
#undef MBX_WT_LOOKUP
}

int mbx__wasmtime_load(const char **why)
{
	pthread_once(&load_once, load);
	if (load_why != NULL) {
		if (why)
			*why = load_why;
		return -1;
	}
	return 0;
}
