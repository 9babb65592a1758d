/* SPDX-License-Identifier: Apache-2.0 */
/* Loading libcurl on first use (see curl-api.h). */
#define MBX_CURL_LOADER
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "curl-api.h"
#include "mbx/error.h"

struct mbx_curl_api mbx__curl;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int load_rc;
static char load_msg[1024];

static void load(void)
{
	const curl_version_info_data *v;
	CURLcode cc;
	void *h;

	/* RTLD_LOCAL: libcurl's symbols stay out of the process's global
	 * scope, so a program that links another libcurl is not disturbed. */
	h = dlopen(MBX_CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		snprintf(load_msg, sizeof(load_msg), "HTTP requests need libcurl (Debian package %s): %s",
			 MBX_CURL_PACKAGE, dlerror());
		load_rc = MBX_ENOTSUP;
		return;
	}
#define MBX_CURL_LOOKUP(name) \
	*(void **)&mbx__curl.name = dlsym(h, #name); \
	if (mbx__curl.name == NULL) { \
		snprintf(load_msg, sizeof(load_msg), \
			 "HTTP requests need libcurl " MBX_CURL_MIN_VERSION " or newer (Debian package %s): " \
			 MBX_CURL_SONAME " lacks `%s`", MBX_CURL_PACKAGE, #name); \
		load_rc = MBX_ENOTSUP; \
		return; \
	}
	MBX_CURL_FUNCTIONS(MBX_CURL_LOOKUP)
#undef MBX_CURL_LOOKUP
	v = mbx__curl.curl_version_info(CURLVERSION_NOW);
	if (v == NULL || v->version_num < MBX_CURL_MIN_VERSION_NUM) {
		snprintf(load_msg, sizeof(load_msg),
			 "HTTP requests need libcurl " MBX_CURL_MIN_VERSION " or newer (Debian package %s): "
			 MBX_CURL_SONAME " is %s", MBX_CURL_PACKAGE, v && v->version ? v->version : "of an unknown version");
		load_rc = MBX_ENOTSUP;
		return;
	}
	cc = mbx__curl.curl_global_init(CURL_GLOBAL_DEFAULT);
	if (cc != CURLE_OK) {
		snprintf(load_msg, sizeof(load_msg), "libcurl: curl_global_init failed: %s",
			 mbx__curl.curl_easy_strerror(cc));
		load_rc = MBX_EBACKEND;
	}
	/* The handle stays open for the life of the process: libcurl keeps
	 * global state (TLS back end, resolver) that outlives any request. */
}

int mbx__curl_load(const char **why)
{
	pthread_once(&load_once, load);
	if (load_rc != 0 && why)
		*why = load_msg;
	return load_rc;
}
