/* SPDX-License-Identifier: Apache-2.0 */
/* Loading libmicrohttpd and json-c for `mimobox serve`, json-c alone for the CLI through a server; see serve_dl.h. */
#include <dlfcn.h>
#include <stdio.h>

#define SERVE_DL_NO_REDIRECT
#include "serve_dl.h"

#ifndef MBX_MHD_SONAME
#define MBX_MHD_SONAME "libmicrohttpd.so.12"
#endif
#ifndef MBX_JSONC_SONAME
#define MBX_JSONC_SONAME "libjson-c.so.5"
#endif

struct serve_dl serve_dl;

static void *open_lib(const char *soname, const char *package, const char *user, char *why, size_t whylen)
{
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);

	if (!h)
		snprintf(why, whylen, "%s needs %s, which cannot be loaded (%s): install the Debian "
			 "package %s", user, soname, dlerror(), package);
	return h;
}

/* Loads json-c, and libmicrohttpd too when `with_mhd`; the functions of each. */
static int load(int with_mhd, char *why, size_t whylen)
{
	static void *mhd, *jsonc;
	const char *user = with_mhd ? "`mimobox serve`" : "the CLI through a server (MIMOBOX_HOST)";

	if (with_mhd && !mhd && !(mhd = open_lib(MBX_MHD_SONAME, "libmicrohttpd12", user, why, whylen)))
		return -1;
	if (!jsonc && !(jsonc = open_lib(MBX_JSONC_SONAME, "libjson-c5", user, why, whylen)))
		return -1;
#define SERVE_DL_LOAD(name) \
	if ((with_mhd || #name[0] != 'M') && !serve_dl.name && \
	    !(serve_dl.name = (__typeof__(serve_dl.name))dlsym(#name[0] == 'M' ? mhd : jsonc, #name))) { \
		snprintf(why, whylen, "%s: %s has no function %s: a version too old?", user, \
			 #name[0] == 'M' ? MBX_MHD_SONAME : MBX_JSONC_SONAME, #name); \
		return -1; \
	}
	SERVE_DL_FUNCTIONS(SERVE_DL_LOAD)
#undef SERVE_DL_LOAD
	return 0;
}

int serve_dl_load(char *why, size_t whylen)
{
	return load(1, why, whylen);
}

int serve_dl_load_json(char *why, size_t whylen)
{
	return load(0, why, whylen);
}
