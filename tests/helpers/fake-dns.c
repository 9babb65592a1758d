/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A resolver that changes its mind, for the DNS rebinding tests: preloaded
 * (LD_PRELOAD) into the process that hosts the proxy, it answers the names
 * in $MBX_FAKE_DNS from a script and hands every other name to the real
 * getaddrinfo.
 *
 *	MBX_FAKE_DNS="rebind.test=8.8.8.8|127.0.0.1;meta.test=169.254.169.254"
 *
 * The n-th lookup of a name gets the n-th answer (the last one repeats);
 * an answer may list several addresses separated by commas. The number of
 * lookups of each name is appended to $MBX_FAKE_DNS_LOG, one name a line.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define MAX_NAMES 16

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int calls[MAX_NAMES];

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res);
void freeaddrinfo(struct addrinfo *ai);

/* The answer for lookup number `k` of `node`, copied into out; -1 when the
 * name is not scripted. */
static int scripted(const char *node, char *out, size_t outlen)
{
	const char *spec = getenv("MBX_FAKE_DNS"), *log = getenv("MBX_FAKE_DNS_LOG");
	char buf[2048], *save = NULL;
	int idx = 0;

	if (spec == NULL || node == NULL)
		return -1;
	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *e = strtok_r(buf, ";", &save); e; e = strtok_r(NULL, ";", &save), idx++) {
		char *eq = strchr(e, '='), *ans[16], *s2 = NULL;
		int n = 0, k;

		if (eq == NULL || idx >= MAX_NAMES)
			continue;
		*eq = '\0';
		if (strcasecmp(e, node) != 0)
			continue;
		for (char *a = strtok_r(eq + 1, "|", &s2); a && n < 16; a = strtok_r(NULL, "|", &s2))
			ans[n++] = a;
		pthread_mutex_lock(&lock);
		k = calls[idx]++;
		pthread_mutex_unlock(&lock);
		if (log) {
			FILE *f = fopen(log, "a");

			if (f) {
				fprintf(f, "%s\n", node);
				fclose(f);
			}
		}
		snprintf(out, outlen, "%s", n ? ans[k < n ? k : n - 1] : "");
		return 0;
	}
	return -1;
}

/* Our own results are one malloc'd block per address, marked (by their
 * canonical name pointer) so freeaddrinfo can tell them from the real
 * resolver's. */
struct fake_ai {
	struct addrinfo ai;
	struct sockaddr_storage ss;
};
static char fake_marker[] = "fake-dns";

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
	static int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
	char ans[512], *save = NULL;
	struct addrinfo *head = NULL, **tail = &head;
	int port = service ? atoi(service) : 0;

	if (scripted(node, ans, sizeof(ans)) < 0) {
		if (real == NULL)
			real = (int (*)(const char *, const char *, const struct addrinfo *, struct addrinfo **))dlsym(RTLD_NEXT, "getaddrinfo");
		return real ? real(node, service, hints, res) : EAI_FAIL;
	}
	for (char *a = strtok_r(ans, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
		struct fake_ai *f = calloc(1, sizeof(*f));

		if (f == NULL)
			break;
		f->ai.ai_canonname = fake_marker;
		if (inet_pton(AF_INET, a, &((struct sockaddr_in *)&f->ss)->sin_addr) == 1) {
			((struct sockaddr_in *)&f->ss)->sin_family = AF_INET;
			((struct sockaddr_in *)&f->ss)->sin_port = htons((unsigned short)port);
			f->ai.ai_family = AF_INET;
			f->ai.ai_addrlen = sizeof(struct sockaddr_in);
		} else if (inet_pton(AF_INET6, a, &((struct sockaddr_in6 *)&f->ss)->sin6_addr) == 1) {
			((struct sockaddr_in6 *)&f->ss)->sin6_family = AF_INET6;
			((struct sockaddr_in6 *)&f->ss)->sin6_port = htons((unsigned short)port);
			f->ai.ai_family = AF_INET6;
			f->ai.ai_addrlen = sizeof(struct sockaddr_in6);
		} else {
			free(f);
			continue;
		}
		f->ai.ai_socktype = hints && hints->ai_socktype ? hints->ai_socktype : SOCK_STREAM;
		f->ai.ai_protocol = IPPROTO_TCP;
		f->ai.ai_addr = (struct sockaddr *)&f->ss;
		*tail = &f->ai;
		tail = &f->ai.ai_next;
	}
	*res = head;
	return head ? 0 : EAI_NONAME;
}

void freeaddrinfo(struct addrinfo *ai)
{
	static void (*real)(struct addrinfo *);

	if (ai && ai->ai_canonname == fake_marker) {
		while (ai) {
			struct addrinfo *next = ai->ai_next;

			free(ai);
			ai = next;
		}
		return;
	}
	if (real == NULL)
		real = (void (*)(struct addrinfo *))dlsym(RTLD_NEXT, "freeaddrinfo");
	if (real)
		real(ai);
}
