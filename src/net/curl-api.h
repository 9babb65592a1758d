/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcurl, loaded on first use.
 *
 * libcurl brings about thirty shared libraries with it (OpenSSL, GnuTLS,
 * Kerberos, LDAP, SSH, IDN, compression...): linking it into libmimobox
 * made every program that uses the library, and every `mimobox version`,
 * map and relocate all of them at start for the one call that needs them,
 * mbx_sandbox_http_request(). So http.c opens libcurl with dlopen() the
 * first time a request is made, and calls it through a table of pointers
 * whose types come from libcurl's own headers (__typeof__), checked by the
 * compiler against the headers the build found. Each name used by http.c is
 * redirected to its table entry; a call to a function not in the list
 * fails to link (-Wl,--no-undefined, nothing of libcurl is linked).
 *
 * curl_easy_setopt() and curl_easy_getinfo() are variadic: calls through
 * the table bypass the macros of <curl/typecheck-gcc.h> (which, with the
 * 7.88 headers and GCC 12 here, flag no wrong type anyway), so every value
 * given to them in http.c must have the option's type exactly: long for
 * CURLOPT_* longs (1L, not 1), curl_off_t for *_LARGE, a pointer otherwise.
 */
#pragma once

#include <curl/curl.h>

/* The library the build's headers belong to: meson.build reads the soname
 * of the libcurl the build would have linked (libcurl.so.4 for Debian's
 * OpenSSL flavour, libcurl-gnutls.so.4 for its GnuTLS one) and the Debian
 * package that ships it. Without them: libcurl has kept the soname
 * libcurl.so.4 since 7.16 (2006), through 8.x. */
#ifndef MBX_CURL_SONAME
#if LIBCURL_VERSION_MAJOR == 7 || LIBCURL_VERSION_MAJOR == 8
#define MBX_CURL_SONAME "libcurl.so.4"
#else
#error "libcurl major version not known to src/net/curl-api.h: set MBX_CURL_SONAME to its soname"
#endif
#endif
#ifndef MBX_CURL_PACKAGE
#define MBX_CURL_PACKAGE "libcurl4"
#endif

/* The oldest libcurl the code uses (CURLOPT_PROTOCOLS_STR, 7.85.0); the
 * build asks the same of the headers (meson.build). */
#define MBX_CURL_MIN_VERSION_NUM 0x075500
#define MBX_CURL_MIN_VERSION "7.85.0"

#define MBX_CURL_FUNCTIONS(X) \
	X(curl_easy_cleanup) X(curl_easy_getinfo) X(curl_easy_init) X(curl_easy_perform) X(curl_easy_setopt) \
	X(curl_easy_strerror) X(curl_free) X(curl_global_init) X(curl_slist_append) X(curl_slist_free_all) \
	X(curl_url) X(curl_url_cleanup) X(curl_url_get) X(curl_url_set) X(curl_version_info)

struct mbx_curl_api {
#define MBX_CURL_FIELD(name) __typeof__(name) *name;
	MBX_CURL_FUNCTIONS(MBX_CURL_FIELD)
#undef MBX_CURL_FIELD
};

extern struct mbx_curl_api mbx__curl;

/*
 * Loads MBX_CURL_SONAME, fills mbx__curl and runs curl_global_init(), once
 * per process. Returns 0, or an MBX_E* code with *why saying what failed
 * (valid for the life of the process): MBX_ENOTSUP when libcurl is missing,
 * incomplete or older than MBX_CURL_MIN_VERSION, MBX_EBACKEND when its
 * initialization failed. Safe to call from any thread.
 */
int mbx__curl_load(const char **why);

/* From here on, every listed name calls through the table (the loader
 * alone sees the real names, to look them up). */
#ifndef MBX_CURL_LOADER
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_easy_cleanup (mbx__curl.curl_easy_cleanup)
#define curl_easy_getinfo (mbx__curl.curl_easy_getinfo)
#define curl_easy_init (mbx__curl.curl_easy_init)
#define curl_easy_perform (mbx__curl.curl_easy_perform)
#define curl_easy_setopt (mbx__curl.curl_easy_setopt)
#define curl_easy_strerror (mbx__curl.curl_easy_strerror)
#define curl_free (mbx__curl.curl_free)
#define curl_global_init (mbx__curl.curl_global_init)
#define curl_slist_append (mbx__curl.curl_slist_append)
#define curl_slist_free_all (mbx__curl.curl_slist_free_all)
#define curl_url (mbx__curl.curl_url)
#define curl_url_cleanup (mbx__curl.curl_url_cleanup)
#define curl_url_get (mbx__curl.curl_url_get)
#define curl_url_set (mbx__curl.curl_url_set)
#define curl_version_info (mbx__curl.curl_version_info)
#endif
