/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcurl loaded on first use (src/net/curl-api.h). Built three times
 * (tests/meson.build):
 *   test-curl-loader          the library's own loader: libcurl is mapped
 *                             by the first load, once however many threads
 *                             ask, and kept out of the global symbol scope
 *   test-curl-loader-absent   MBX_CURL_SONAME names no library: the error
 *   test-curl-loader-notcurl  MBX_CURL_SONAME names a library that is not
 *                             libcurl (libc.so.6): the error
 */
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <string.h>

#include "mbx/error.h"
#include "net/curl-api.h"
#include "tap.h"

#ifndef MBX_TEST_CURL_MODE
#define MBX_TEST_CURL_MODE 0
#endif

static int has_curl(struct dl_phdr_info *info, size_t size, void *ud)
{
	(void)size;
	if (info->dlpi_name && strstr(info->dlpi_name, "libcurl"))
		*(int *)ud = 1;
	return 0;
}

static int curl_mapped(void)
{
	int found = 0;

	dl_iterate_phdr(has_curl, &found);
	return found;
}

#if MBX_TEST_CURL_MODE == 0

static void *load_thread(void *ud)
{
	const char *why = NULL;

	*(int *)ud = mbx__curl_load(&why);
	return NULL;
}

static void test_loads_once_from_threads(void)
{
	pthread_t t[8];
	int rc[8];

	/* This program links nothing of libcurl (that libmimobox does not
	 * either is checked on the real library and CLI by the integration
	 * tests: test_http_request_loads_libcurl_on_first_use and
	 * test_start_loads_no_http_client). */
	TAP_CHECK(!curl_mapped());
	for (int i = 0; i < 8; i++) {
		rc[i] = -100;
		TAP_CHECK_INT(pthread_create(&t[i], NULL, load_thread, &rc[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		TAP_CHECK_INT(rc[i], 0);
	}
	TAP_CHECK(curl_mapped());
}

static void test_table_filled(void)
{
	const char *why = NULL;
	const curl_version_info_data *v;
	char *host = NULL, *port = NULL;
	CURLU *u;

	TAP_CHECK_INT(mbx__curl_load(&why), 0);
	TAP_CHECK(why == NULL);
	/* Every entry (the names are macros here: the table is walked). */
#define COUNT(name) +1
	TAP_CHECK_INT(sizeof(mbx__curl) / sizeof(void (*)(void)), 0 MBX_CURL_FUNCTIONS(COUNT));
#undef COUNT
	for (size_t i = 0; i < sizeof(mbx__curl) / sizeof(void (*)(void)); i++) {
		void (*entry)(void);

		memcpy(&entry, (const char *)&mbx__curl + i * sizeof(entry), sizeof(entry));
		TAP_CHECK(entry != NULL);
	}
	v = curl_version_info(CURLVERSION_NOW);
	TAP_CHECK(v != NULL && v->version_num >= MBX_CURL_MIN_VERSION_NUM);
	/* A call through the table does what libcurl does. */
	u = curl_url();
	TAP_CHECK(u != NULL);
	if (u == NULL)
		return;
	TAP_CHECK_INT(curl_url_set(u, CURLUPART_URL, "http://api.example.invalid:8080/x", 0), CURLUE_OK);
	TAP_CHECK_INT(curl_url_get(u, CURLUPART_HOST, &host, 0), CURLUE_OK);
	TAP_CHECK_INT(curl_url_get(u, CURLUPART_PORT, &port, 0), CURLUE_OK);
	TAP_CHECK_STR(host, "api.example.invalid");
	TAP_CHECK_STR(port, "8080");
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
}

static void test_symbols_stay_local(void)
{
	/* RTLD_LOCAL: a program with its own libcurl, or none, does not
	 * find ours in the global scope. */
	TAP_CHECK(dlsym(RTLD_DEFAULT, "curl_easy_init") == NULL);
	TAP_CHECK(dlsym(RTLD_DEFAULT, "curl_global_init") == NULL);
}

static const struct tap_case cases[] = {
	{ "curl-loader/loads-once-from-threads", test_loads_once_from_threads },
	{ "curl-loader/table-filled", test_table_filled },
	{ "curl-loader/symbols-stay-local", test_symbols_stay_local },
};

#else /* a loader built with a soname that is not libcurl */

static void test_error(void)
{
	const char *why = NULL, *again = NULL;

	TAP_CHECK_INT(mbx__curl_load(&why), MBX_ENOTSUP);
	TAP_CHECK(why != NULL);
	if (why == NULL)
		return;
	printf("# %s\n", why);
#if MBX_TEST_CURL_MODE == 1
	TAP_CHECK(strncmp(why, "HTTP requests need libcurl (Debian package libcurl4): ",
			  strlen("HTTP requests need libcurl (Debian package libcurl4): ")) == 0);
	TAP_CHECK(strstr(why, MBX_CURL_SONAME) != NULL);
	TAP_CHECK(strstr(why, "cannot open shared object file") != NULL);
#else
	TAP_CHECK(strncmp(why, "HTTP requests need libcurl " MBX_CURL_MIN_VERSION " or newer (Debian package libcurl4): ",
			  strlen("HTTP requests need libcurl " MBX_CURL_MIN_VERSION " or newer (Debian package libcurl4): ")) == 0);
	TAP_CHECK(strstr(why, MBX_CURL_SONAME " lacks `curl_easy_cleanup`") != NULL);
#endif
	/* Once per process: the same answer, nothing loaded. */
	TAP_CHECK_INT(mbx__curl_load(&again), MBX_ENOTSUP);
	TAP_CHECK(again == why);
	TAP_CHECK(!curl_mapped());
}

static const struct tap_case cases[] = {
#if MBX_TEST_CURL_MODE == 1
	{ "curl-loader/missing-library", test_error },
#else
	{ "curl-loader/not-libcurl", test_error },
#endif
};

#endif

TAP_MAIN(cases)
