/* SPDX-License-Identifier: Apache-2.0 */
/* Loading libmicrohttpd and json-c for `mimobox serve`; see serve_dl.h. */
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

static void *open_lib(const char *soname, const char *package, char *why, size_t whylen)
{
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);

	if (!h)
		snprintf(why, whylen, "`mimobox serve` needs %s, which cannot be loaded (%s): install the Debian "
			 "package %s", soname, dlerror(), package);
	return h;
}

int serve_dl_load(char *why, size_t whylen)
{
	static void *mhd, *jsonc;

	if (!mhd && !(mhd = open_lib(MBX_MHD_SONAME, "libmicrohttpd12", why, whylen)))
		return -1;
	if (!jsonc && !(jsonc = open_lib(MBX_JSONC_SONAME, "libjson-c5", why, whylen)))
		return -1;
#define SERVE_DL_LOAD(name) \
	if (!(serve_dl.name = (__typeof__(serve_dl.name))dlsym(#name[0] == 'M' ? mhd : jsonc, #name))) { \
		snprintf(why, whylen, "`mimobox serve`: %s has no function %s: a version too old?", \
			 #name[0] == 'M' ? MBX_MHD_SONAME : MBX_JSONC_SONAME, #name); \
		return -1; \
	}
	SERVE_DL_FUNCTIONS(SERVE_DL_LOAD)
#undef SERVE_DL_LOAD
	return 0;
}
