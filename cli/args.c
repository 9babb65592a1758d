/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pure command-line parsing for the mimobox CLI; see args.h. No libmimobox
 * calls here (only its header macros), so tests/unit/test-cli-args.c links
 * this file without the library.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <strings.h>

#include <mbx/config.h>
#include <mbx/net.h>

#include "args.h"

const char cli_sandbox_options_help[] =
	"Sandbox options:\n"
	"  --isolation auto|os|wasm|microvm\n"
	"                      backend (default auto: .wasm/.wat programs go to wasm,\n"
	"                      untrusted payloads to microvm, the rest to os)\n"
	"  --trust trusted|semi|untrusted\n"
	"                      how much the payload is trusted (default semi)\n"
	"  --timeout SECONDS   wall-clock limit per execute, decimals allowed (default 30)\n"
	"  -m, --memory SIZE   memory limit: MiB, or with a unit as 512m, 1g (default 512)\n"
	"  --disk MB           size limit in MiB of /workspace, /tmp and /dev/shm\n"
	"                      together, inodes in proportion (default 2048)\n"
	"  --cpu, --cpus CPUS  CPU quota, decimals allowed, e.g. 0.5 (default none)\n"
	"  --max-procs N       maximum number of processes (default 64)\n"
	"  --network deny|none|all|allow:DOMAIN[:PORT][,DOMAIN[:PORT]...]\n"
	"                      network policy (default deny: loopback only; none = deny);\n"
	"                      a DOMAIN with a port is allowed on that port only\n"
	"  -e, --env KEY=VALUE set an environment variable (repeatable)\n"
	"  --env-file FILE     set the variables of FILE: KEY=VALUE lines, `#` comments,\n"
	"                      no quoting or expansion (repeatable; keeps values off\n"
	"                      the command line)\n"
	"  -w, --workdir PATH  working directory inside the sandbox (default /workspace)\n"
	"  -v, --mount HOST_PATH:SANDBOX_PATH[:ro|:rw]\n"
	"                      make a host path visible (repeatable, default ro)\n"
	"  --hostname NAME     host name inside the sandbox (default mimobox)\n"
	"  --output-limit BYTES\n"
	"                      output kept per stream (default 16 MiB)\n"
	"  --allow-degraded    start even when an isolation layer is unavailable\n"
	"  --add-host NAME:ADDRESS\n"
	"                      resolve NAME to ADDRESS for the proxy and `http` instead\n"
	"                      of DNS; NAME must still be allowed (repeatable)\n"
	"  --allow-private     let allowed names reach loopback and private addresses\n"
	"  --ca-file PATH      also trust the PEM certificates of PATH (repeatable)\n"
	"  --net-limit NAME=VALUE\n"
	"                      a proxy limit: request-bytes, response-bytes (512m),\n"
	"                      timeout, idle (seconds), connections, redirects\n"
	"  --http-rule '[allow|deny] METHOD[,METHOD...]|* HOST[:PORT][/PATH]'\n"
	"                      which methods and paths of a host plain HTTP and `http`\n"
	"                      may use, e.g. 'GET api.example.com/v1/*'; deny rules\n"
	"                      first; a host with rules gets no CONNECT tunnel\n"
	"                      (repeatable)\n";

static void set_why(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (!why || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static char *dup_range(const char *s, size_t len)
{
	char *p = malloc(len + 1);

	if (!p)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* ---- the option scanner ---- */

static const struct cli_option *find_long(const struct cli_option *opts, const char *name, size_t len)
{
	for (; opts->name; opts++)
		if (strlen(opts->name) == len && memcmp(opts->name, name, len) == 0)
			return opts;
	return NULL;
}

static const struct cli_option *find_short(const struct cli_option *opts, char c)
{
	for (; opts->name; opts++)
		if (opts->short_name && opts->short_name == c)
			return opts;
	return NULL;
}

/* Whether every letter of "-xyz" is a short option that takes no value. */
static int is_flag_bundle(const struct cli_option *opts, const char *w)
{
	const struct cli_option *o;
	size_t i;

	for (i = 1; w[i]; i++) {
		o = find_short(opts, w[i]);
		if (!o || o->has_arg)
			return 0;
	}
	return 1;
}

/* ---- "did you mean" ---- */

/* Optimal string alignment distance, capped: words longer than 63 are "far". */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
	size_t d[64][64], i, j, best;

	if (la >= 64 || lb >= 64)
		return (size_t)-1;
	for (i = 0; i <= la; i++)
		d[i][0] = i;
	for (j = 0; j <= lb; j++)
		d[0][j] = j;
	for (i = 1; i <= la; i++) {
		for (j = 1; j <= lb; j++) {
			best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

static const char *closest(const char *word, size_t len, const char *const *cands, size_t n)
{
	size_t i, dist, best = (size_t)-1, limit = len <= 4 ? 1 : 2;
	const char *pick = NULL;

	for (i = 0; i < n; i++) {
		if (!cands[i])
			continue;
		dist = edit_distance(word, len, cands[i], strlen(cands[i]));
		if (dist <= limit && dist < best) {
			best = dist;
			pick = cands[i];
		}
	}
	return pick;
}

const char *cli_closest(const char *word, const char *const *candidates)
{
	size_t n = 0;

	while (candidates[n])
		n++;
	return closest(word, strlen(word), candidates, n);
}

/* "unknown option `--nmae` (did you mean `--name`?)" */
static void unknown_option(const struct cli_option *opts, const char *name, size_t len, const char *dashes,
			   char *why, size_t whylen)
{
	const char *cands[128];
	const char *pick;
	size_t n = 0;

	/* "-name" typed with one dash is compared with the long names too. */
	for (; opts[n].name && n < sizeof(cands) / sizeof(cands[0]); n++)
		cands[n] = opts[n].name;
	pick = len > 1 ? closest(name, len, cands, n) : NULL;
	if (pick)
		set_why(why, whylen, "unknown option `%s%.*s` (did you mean `--%s`?)", dashes, (int)len, name, pick);
	else
		set_why(why, whylen, "unknown option `%s%.*s`", dashes, (int)len, name);
}

int cli_next_option(struct cli_args *a, const struct cli_option *opts, const char **value,
		    char *why, size_t whylen)
{
	const struct cli_option *o;
	const char *w, *name, *eq;
	size_t len;

	*value = NULL;
	if (a->next >= a->argc)
		return CLI_OPT_END;
	w = a->argv[a->next];
	if (w[0] != '-' || w[1] == '\0')
		return CLI_OPT_END;
	if (strcmp(w, "--") == 0) {
		a->next++;
		return CLI_OPT_END;
	}

	if (w[1] != '-' && w[2] != '\0' && is_flag_bundle(opts, w)) {
		/* "-it": one letter per call, the word is done after the last. */
		o = find_short(opts, w[a->sub ? a->sub : 1]);
		a->sub = a->sub ? a->sub + 1 : 2;
		if (w[a->sub] == '\0') {
			a->sub = 0;
			a->next++;
		}
		return o->id;
	}
	if (w[1] != '-') {
		/* Short options are single letters, or bundled flags (above). */
		o = w[2] == '\0' ? find_short(opts, w[1]) : NULL;
		if (!o) {
			unknown_option(opts, w + 1, strlen(w + 1), "-", why, whylen);
			return CLI_OPT_BAD;
		}
		eq = NULL;
	} else {
		name = w + 2;
		eq = strchr(name, '=');
		len = eq ? (size_t)(eq - name) : strlen(name);
		o = find_long(opts, name, len);
		if (!o) {
			unknown_option(opts, name, len, "--", why, whylen);
			return CLI_OPT_BAD;
		}
	}

	if (!o->has_arg) {
		if (eq) {
			set_why(why, whylen, "option `--%s` takes no value", o->name);
			return CLI_OPT_BAD;
		}
		a->next++;
		return o->id;
	}
	if (eq) {
		*value = eq + 1;
		a->next++;
		return o->id;
	}
	/* The next word is the value even when it starts with '-'. */
	if (a->next + 1 >= a->argc) {
		set_why(why, whylen, "option `%s` needs a value", w);
		return CLI_OPT_BAD;
	}
	*value = a->argv[a->next + 1];
	a->next += 2;
	return o->id;
}

/* ---- numbers ---- */

/*
 * Parses "[digits][.digits]" (at least one digit) into thousandths, rounding
 * any further decimals up, and refuses 0 and values above `max`. Decimal
 * arithmetic, not strtod(): no locale, no "inf"/"nan"/hex/exponent forms,
 * and "0.001" is exact.
 */
static int parse_thousandths(const char *s, uint64_t max, uint64_t *out, char *why, size_t whylen)
{
	uint64_t whole = 0, frac = 0, total;
	int digits = 0, nfrac = 0, round_up = 0, big = 0;
	const char *p = s;

	if (p[0] == '-' && (is_digit(p[1]) || p[1] == '.')) {
		set_why(why, whylen, "must be greater than zero");
		return -1;
	}
	for (; is_digit(*p); p++, digits++) {
		if (whole > (UINT64_MAX / 1000 - 9) / 10)
			big = 1;
		else
			whole = whole * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		for (p++; is_digit(*p); p++, digits++) {
			if (nfrac < 3) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				nfrac++;
			} else if (*p != '0') {
				round_up = 1;
			}
		}
	}
	if (*p != '\0' || digits == 0) {
		set_why(why, whylen, "not a number");
		return -1;
	}
	for (; nfrac < 3; nfrac++)
		frac *= 10;
	total = whole * 1000 + frac + (uint64_t)round_up;
	if (big || total > max) {
		set_why(why, whylen, "too large");
		return -1;
	}
	if (total == 0) {
		set_why(why, whylen, "must be greater than zero");
		return -1;
	}
	*out = total;
	return 0;
}

int cli_parse_timeout(const char *s, uint64_t *ms_out, char *why, size_t whylen)
{
	/* A century is plenty and keeps the value far from any overflow. */
	return parse_thousandths(s, (uint64_t)100 * 366 * 86400 * 1000, ms_out, why, whylen);
}

int cli_parse_duration(const char *s, uint64_t *ms_out, char *why, size_t whylen)
{
	static const char units[] = "dhms";
	static const uint64_t unit_s[] = { 86400, 3600, 60, 1 };
	uint64_t total = 0, v;
	const char *p = s, *u;
	int last = -1, digits;

	if (!*p) {
		set_why(why, whylen, "empty; give a duration such as 30s, 10m, 2h or 1h30m");
		return -1;
	}
	while (*p) {
		v = 0;
		for (digits = 0; is_digit(*p); p++, digits++) {
			if (v > 1000000000ull) {
				set_why(why, whylen, "too large; the longest is 365d");
				return -1;
			}
			v = v * 10 + (uint64_t)(*p - '0');
		}
		if (!digits) {
			set_why(why, whylen, "not a duration; give whole numbers with units, such as 30s, 10m, 2h or 1h30m");
			return -1;
		}
		if (*p == '\0' && last < 0) {
			total = v;	/* a bare number: seconds */
			break;
		}
		if (*p == '\0') {
			set_why(why, whylen, "a unit is missing at the end; give each number a unit (such as 1h30m)");
			return -1;
		}
		u = strchr(units, *p);
		if (!u) {
			set_why(why, whylen, "unknown unit; use s, m, h or d (such as 30s, 10m, 2h or 1h30m)");
			return -1;
		}
		if ((int)(u - units) <= last) {
			set_why(why, whylen, "units must come largest first, each once (such as 1h30m)");
			return -1;
		}
		last = (int)(u - units);
		total += v * unit_s[last];
		if (total > (uint64_t)365 * 86400) {
			set_why(why, whylen, "too large; the longest is 365d");
			return -1;
		}
		p++;
	}
	if (total == 0) {
		set_why(why, whylen, "must be at least 1s");
		return -1;
	}
	if (total > (uint64_t)365 * 86400) {
		set_why(why, whylen, "too large; the longest is 365d");
		return -1;
	}
	*ms_out = total * 1000;
	return 0;
}

void cli_format_duration(char *out, size_t len, uint64_t s)
{
	if (s < 60)
		snprintf(out, len, "%llus", (unsigned long long)s);
	else if (s < 3600)
		snprintf(out, len, "%llum%02llus", (unsigned long long)(s / 60), (unsigned long long)(s % 60));
	else if (s < 86400)
		snprintf(out, len, "%lluh%02llum", (unsigned long long)(s / 3600),
			 (unsigned long long)(s / 60 % 60));
	else
		snprintf(out, len, "%llud%02lluh", (unsigned long long)(s / 86400),
			 (unsigned long long)(s / 3600 % 24));
}

int cli_parse_signal(const char *s, int *sig_out, char *why, size_t whylen)
{
	static const struct {
		const char *name;
		int sig;
	} names[] = {
		{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "ILL", SIGILL },
		{ "TRAP", SIGTRAP }, { "ABRT", SIGABRT }, { "BUS", SIGBUS }, { "FPE", SIGFPE },
		{ "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV }, { "USR2", SIGUSR2 },
		{ "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "CHLD", SIGCHLD },
		{ "CONT", SIGCONT }, { "STOP", SIGSTOP }, { "TSTP", SIGTSTP }, { "TTIN", SIGTTIN },
		{ "TTOU", SIGTTOU }, { "URG", SIGURG }, { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },
		{ "VTALRM", SIGVTALRM }, { "PROF", SIGPROF }, { "WINCH", SIGWINCH }, { "IO", SIGIO },
		{ "SYS", SIGSYS },
	};
	const char *name = s;
	uint64_t v;
	size_t i;

	if (is_digit(*s)) {
		if (cli_parse_uint(s, 1, 64, &v, why, whylen) < 0) {
			set_why(why, whylen, "not a signal; give a name (TERM, KILL, INT, HUP...) or a number from 1 to 64");
			return -1;
		}
		*sig_out = (int)v;
		return 0;
	}
	if (strncasecmp(name, "SIG", 3) == 0)
		name += 3;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(name, names[i].name) == 0) {
			*sig_out = names[i].sig;
			return 0;
		}
	}
	set_why(why, whylen, "unknown signal; give a name (TERM, KILL, INT, HUP...) or a number from 1 to 64");
	return -1;
}

int cli_parse_cpus(const char *s, uint32_t *millicpus_out, char *why, size_t whylen)
{
	uint64_t v;

	if (parse_thousandths(s, UINT32_MAX, &v, why, whylen) < 0)
		return -1;
	*millicpus_out = (uint32_t)v;
	return 0;
}

int cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, char *why, size_t whylen)
{
	uint64_t v = 0;
	const char *p = s;

	if (p[0] == '-' && is_digit(p[1])) {
		set_why(why, whylen, "must not be negative");
		return -1;
	}
	if (!is_digit(*p)) {
		set_why(why, whylen, "not a whole number");
		return -1;
	}
	for (; is_digit(*p); p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > UINT64_MAX / 10 || (v == UINT64_MAX / 10 && d > UINT64_MAX % 10)) {
			set_why(why, whylen, "too large");
			return -1;
		}
		v = v * 10 + d;
	}
	if (*p != '\0') {
		set_why(why, whylen, "not a whole number");
		return -1;
	}
	if (v < min) {
		if (min == 1)
			set_why(why, whylen, "must be greater than zero");
		else
			set_why(why, whylen, "must be at least %llu", (unsigned long long)min);
		return -1;
	}
	if (v > max) {
		set_why(why, whylen, "too large");
		return -1;
	}
	*out = v;
	return 0;
}

int cli_parse_memory_mb(const char *s, uint64_t *bytes_out, char *why, size_t whylen)
{
	static const struct {
		char letter;
		unsigned shift;
	} units[] = { { 'b', 0 }, { 'k', 10 }, { 'm', 20 }, { 'g', 30 }, { 't', 40 } };
	char num[64];
	const char *p = s;
	size_t n, i, digits = 0;
	unsigned shift = 20;
	uint64_t thousandths, whole, max_q;

	/* The number: digits with at most one '.', then an optional unit. */
	for (; is_digit(*p) || *p == '.' || (p == s && *p == '-'); p++)
		digits += is_digit(*p);
	n = (size_t)(p - s);
	if (*p) {
		char u = (char)(*p | 0x20);	/* lower case */
		const char *rest = p + 1;

		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (units[i].letter == u)
				break;
		/* "512m", "512mb", "512MiB", "1g", "1GB"; a bare "b" is bytes. */
		if (i < sizeof(units) / sizeof(units[0]) && u != 'b') {
			if ((rest[0] | 0x20) == 'i' && (rest[1] | 0x20) == 'b')
				rest += 2;
			else if ((rest[0] | 0x20) == 'b')
				rest++;
		}
		if (i == sizeof(units) / sizeof(units[0]) || *rest) {
			set_why(why, whylen, "unknown unit `%s` (expected a number of MiB, or one with b, k, m, g or t)", p);
			return -1;
		}
		shift = units[i].shift;
	}
	if (digits == 0 || n >= sizeof(num)) {
		set_why(why, whylen, "not a number");
		return -1;
	}
	memcpy(num, s, n);
	num[n] = '\0';
	if (!*p && strchr(num, '.')) {
		set_why(why, whylen, "not a whole number of MiB (with a unit, decimals are fine: 1.5g)");
		return -1;
	}
	if (!*p) {
		/* A plain whole number is MiB, as before. */
		if (cli_parse_uint(num, 1, UINT64_MAX >> 20, &whole, why, whylen) < 0)
			return -1;
		*bytes_out = whole << 20;
		return 0;
	}
	/* Decimals allowed with a unit ("1.5g"); the result is whole bytes, rounded up. */
	max_q = (UINT64_MAX >> shift) - 1;
	if (max_q > UINT64_MAX / 1000 - 1)
		max_q = UINT64_MAX / 1000 - 1;
	if (parse_thousandths(num, max_q * 1000 + 999, &thousandths, why, whylen) < 0)
		return -1;
	whole = ((thousandths / 1000) << shift) + (((thousandths % 1000) << shift) + 999) / 1000;
	if (whole == 0) {
		set_why(why, whylen, "must be greater than zero");
		return -1;
	}
	*bytes_out = whole;
	return 0;
}

int cli_parse_disk_mb(const char *s, uint64_t *bytes_out, char *why, size_t whylen)
{
	uint64_t mb;

	if (cli_parse_uint(s, 1, UINT64_MAX, &mb, why, whylen) < 0)
		return -1;
	if (mb > (1u << 20)) { /* the library's range ends at 1 TiB */
		set_why(why, whylen, "must be at most 1048576 (1 TiB)");
		return -1;
	}
	*bytes_out = mb << 20;
	return 0;
}

/* ---- mounts, network, env ---- */

int cli_parse_mount(const char *spec, struct cli_mount *out, char *why, size_t whylen)
{
	const char *last, *sep, *tail;
	size_t end;
	uint32_t flags = 0;

	memset(out, 0, sizeof(*out));
	last = strrchr(spec, ':');
	if (!last) {
		set_why(why, whylen, "expected HOST_PATH:SANDBOX_PATH[:ro|:rw]");
		return -1;
	}
	tail = last + 1;
	end = (size_t)(last - spec);
	sep = last;
	if (tail[0] != '/') {
		/* The last field is a mode, or a relative sandbox path. */
		int is_mode = strcmp(tail, "ro") == 0 || strcmp(tail, "rw") == 0;

		sep = memrchr(spec, ':', end);
		if (!sep && !is_mode) {
			set_why(why, whylen, "sandbox path `%s` is not absolute", tail);
			return -1;
		}
		if (!is_mode) {
			set_why(why, whylen, "unknown mode `%s` (expected ro or rw)", tail);
			return -1;
		}
		if (!sep) {
			set_why(why, whylen, "missing sandbox path "
				"(expected HOST_PATH:SANDBOX_PATH[:ro|:rw])");
			return -1;
		}
		if (strcmp(tail, "rw") == 0)
			flags = MBX_MOUNT_RW;
	} else {
		end = strlen(spec);
	}

	/* Now spec[0, sep) is the host path and (sep, end) the sandbox path. */
	if (sep + 1 == spec + end) {
		set_why(why, whylen, "empty sandbox path");
		return -1;
	}
	if (sep[1] != '/') {
		set_why(why, whylen, "sandbox path `%.*s` is not absolute",
			(int)(spec + end - (sep + 1)), sep + 1);
		return -1;
	}
	if (sep == spec) {
		set_why(why, whylen, "empty host path");
		return -1;
	}
	out->host = dup_range(spec, (size_t)(sep - spec));
	out->sandbox = dup_range(sep + 1, (size_t)(spec + end - (sep + 1)));
	out->flags = flags;
	if (!out->host || !out->sandbox) {
		cli_mount_free(out);
		set_why(why, whylen, "out of memory");
		return -1;
	}
	return 0;
}

void cli_mount_free(struct cli_mount *m)
{
	free(m->host);
	free(m->sandbox);
	memset(m, 0, sizeof(*m));
}

int cli_parse_network(const char *spec, struct cli_network *out, char *why, size_t whylen)
{
	const char *p, *comma;
	size_t n = 1, i = 0, len;

	memset(out, 0, sizeof(*out));
	if (strcmp(spec, "deny") == 0 || strcmp(spec, "none") == 0) {
		out->policy = MBX_NETWORK_DENY_ALL;
		return 0;
	}
	if (strcmp(spec, "all") == 0) {
		out->policy = MBX_NETWORK_ALLOW_ALL;
		return 0;
	}
	if (strncmp(spec, "allow:", 6) != 0) {
		set_why(why, whylen, "expected deny, none, all or allow:DOMAIN[:PORT][,DOMAIN[:PORT]...]");
		return -1;
	}
	p = spec + 6;
	if (*p == '\0') {
		set_why(why, whylen, "no domain after `allow:`");
		return -1;
	}
	for (comma = p; (comma = strchr(comma, ',')); comma++)
		n++;
	out->domains = calloc(n, sizeof(*out->domains));
	if (!out->domains)
		goto oom;
	out->policy = MBX_NETWORK_ALLOW_DOMAINS;
	for (;;) {
		comma = strchr(p, ',');
		len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == 0) {
			cli_network_free(out);
			set_why(why, whylen, "empty domain in the list");
			return -1;
		}
		out->domains[i] = dup_range(p, len);
		if (!out->domains[i])
			goto oom;
		out->n_domains = ++i;
		if (!comma)
			break;
		p = comma + 1;
	}
	return 0;

oom:
	cli_network_free(out);
	set_why(why, whylen, "out of memory");
	return -1;
}

void cli_network_free(struct cli_network *n)
{
	size_t i;

	for (i = 0; i < n->n_domains; i++)
		free(n->domains[i]);
	free(n->domains);
	memset(n, 0, sizeof(*n));
}

int cli_parse_host(const char *spec, struct cli_host *out, char *why, size_t whylen)
{
	const char *colon = strchr(spec, ':');

	memset(out, 0, sizeof(*out));
	if (!colon) {
		set_why(why, whylen, "expected NAME:ADDRESS");
		return -1;
	}
	if (colon == spec) {
		set_why(why, whylen, "empty host name");
		return -1;
	}
	if (colon[1] == '\0') {
		set_why(why, whylen, "empty address");
		return -1;
	}
	out->name = dup_range(spec, (size_t)(colon - spec));
	out->address = strdup(colon + 1);
	if (!out->name || !out->address) {
		cli_host_free(out);
		set_why(why, whylen, "out of memory");
		return -1;
	}
	return 0;
}

void cli_host_free(struct cli_host *h)
{
	free(h->name);
	free(h->address);
	memset(h, 0, sizeof(*h));
}

int cli_parse_net_limit(const char *spec, struct cli_net_limit *out, char *why, size_t whylen)
{
	static const struct {
		const char *name;
		uint8_t limit;
		char kind;	/* 's' size, 't' seconds, 'n' number */
	} limits[] = {
		{ "request-bytes", MBX_NET_LIMIT_REQUEST_BYTES, 's' },
		{ "response-bytes", MBX_NET_LIMIT_RESPONSE_BYTES, 's' },
		{ "timeout", MBX_NET_LIMIT_TIMEOUT_MS, 't' },
		{ "idle", MBX_NET_LIMIT_IDLE_MS, 't' },
		{ "connections", MBX_NET_LIMIT_CONNECTIONS, 'n' },
		{ "redirects", MBX_NET_LIMIT_REDIRECTS, 'n' },
	};
	const char *eq = strchr(spec, '=');
	size_t i, len = eq ? (size_t)(eq - spec) : strlen(spec);
	char reason[CLI_WHY_MAX];
	int rc;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
		if (strlen(limits[i].name) == len && strncmp(spec, limits[i].name, len) == 0)
			break;
	if (i == sizeof(limits) / sizeof(limits[0])) {
		set_why(why, whylen, "unknown limit `%.*s` (expected request-bytes, response-bytes, timeout, "
			"idle, connections or redirects)", (int)len, spec);
		return -1;
	}
	if (!eq) {
		set_why(why, whylen, "expected %s=VALUE", limits[i].name);
		return -1;
	}
	out->limit = limits[i].limit;
	if (limits[i].kind == 's') {
		/* A plain number is bytes here; units as for --memory. */
		const char *p = eq + 1;

		while (is_digit(*p))
			p++;
		if (*p == '\0' && p != eq + 1)
			rc = cli_parse_uint(eq + 1, 1, UINT64_MAX, &out->value, reason, sizeof(reason));
		else
			rc = cli_parse_memory_mb(eq + 1, &out->value, reason, sizeof(reason));
	} else if (limits[i].kind == 't') {
		rc = cli_parse_timeout(eq + 1, &out->value, reason, sizeof(reason));
	} else {
		rc = cli_parse_uint(eq + 1, out->limit == MBX_NET_LIMIT_REDIRECTS ? 0 : 1, UINT32_MAX, &out->value,
				    reason, sizeof(reason));
	}
	if (rc < 0) {
		set_why(why, whylen, "%s: %s", limits[i].name, reason);
		return -1;
	}
	return 0;
}

int cli_parse_env(const char *spec, struct cli_env *out, char *why, size_t whylen)
{
	const char *eq = strchr(spec, '=');

	memset(out, 0, sizeof(*out));
	if (!eq) {
		set_why(why, whylen, "expected KEY=VALUE");
		return -1;
	}
	if (eq == spec) {
		set_why(why, whylen, "empty variable name");
		return -1;
	}
	out->name = dup_range(spec, (size_t)(eq - spec));
	out->value = strdup(eq + 1);
	if (!out->name || !out->value) {
		cli_env_free(out);
		set_why(why, whylen, "out of memory");
		return -1;
	}
	return 0;
}

void cli_env_free(struct cli_env *e)
{
	free(e->name);
	free(e->value);
	memset(e, 0, sizeof(*e));
}

static int env_name_ok(const char *s, size_t len)
{
	if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return 0;
	}
	return 1;
}

int cli_parse_env_text(const char *text, size_t len, struct cli_env **env, size_t *n, char *why, size_t whylen)
{
	size_t pos = 0, line = 0;

	while (pos < len) {
		const char *l = text + pos, *nl = memchr(l, '\n', len - pos), *eq;
		size_t ll = nl ? (size_t)(nl - l) : len - pos, lead = 0;
		struct cli_env *grown, e;

		pos += ll + (nl ? 1 : 0);
		line++;
		if (ll > 0 && l[ll - 1] == '\r')
			ll--;
		if (memchr(l, '\0', ll)) {
			set_why(why, whylen, "line %zu: contains a NUL byte (not a text file?)", line);
			return -1;
		}
		while (lead < ll && (l[lead] == ' ' || l[lead] == '\t'))
			lead++;
		if (lead == ll || l[lead] == '#')
			continue;
		eq = memchr(l, '=', ll);
		if (eq == NULL) {
			set_why(why, whylen, "line %zu: expected KEY=VALUE", line);
			return -1;
		}
		if (!env_name_ok(l, (size_t)(eq - l))) {
			int shown = (int)(eq - l) > 64 ? 64 : (int)(eq - l);

			set_why(why, whylen, "line %zu: `%.*s` is not a variable name: use letters, digits and `_` "
				"(not first), with no blanks or shell syntax such as `export`", line, shown, l);
			return -1;
		}
		e.name = dup_range(l, (size_t)(eq - l));
		e.value = dup_range(eq + 1, ll - (size_t)(eq + 1 - l));
		grown = (e.name && e.value) ? realloc(*env, (*n + 1) * sizeof(**env)) : NULL;
		if (grown == NULL) {
			cli_env_free(&e);
			set_why(why, whylen, "out of memory");
			return -1;
		}
		*env = grown;
		(*env)[(*n)++] = e;
	}
	return 0;
}

int cli_parse_env_file(const char *path, struct cli_env **env, size_t *n, char *why, size_t whylen)
{
	struct stat st;
	char *text;
	size_t got = 0;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		set_why(why, whylen, "cannot read it: %s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		set_why(why, whylen, "not a regular file");
		close(fd);
		return -1;
	}
	if ((unsigned long long)st.st_size > CLI_ENV_FILE_MAX) {
		set_why(why, whylen, "larger than %u bytes", CLI_ENV_FILE_MAX);
		close(fd);
		return -1;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		set_why(why, whylen, "out of memory");
		close(fd);
		return -1;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, text + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	rc = cli_parse_env_text(text, got, env, n, why, whylen);
	/* The file may hold secrets: do not leave them in freed memory. */
	memset(text, 0, got);
	free(text);
	return rc;
}

int cli_parse_isolation(const char *s, mbx_isolation_t *out)
{
	static const struct {
		const char *name;
		mbx_isolation_t value;
	} names[] = {
		{ "auto", MBX_ISOLATION_AUTO },
		{ "os", MBX_ISOLATION_OS },
		{ "wasm", MBX_ISOLATION_WASM },
		{ "microvm", MBX_ISOLATION_MICROVM },
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i].name) == 0) {
			*out = names[i].value;
			return 0;
		}
	}
	return -1;
}

int cli_parse_trust(const char *s, mbx_trust_t *out)
{
	if (strcmp(s, "trusted") == 0)
		*out = MBX_TRUST_TRUSTED;
	else if (strcmp(s, "semi") == 0 || strcmp(s, "semi-trusted") == 0)
		*out = MBX_TRUST_SEMI_TRUSTED;
	else if (strcmp(s, "untrusted") == 0)
		*out = MBX_TRUST_UNTRUSTED;
	else
		return -1;
	return 0;
}

/* ---- sandbox names ---- */

static int is_name_start(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_name_char(char c)
{
	return is_name_start(c) || c == '_' || c == '.' || c == '-';
}

/* Length of the valid name at the start of s, ending at `end` ('\0' or ':'); 0 if none. */
static size_t name_len(const char *s, char end)
{
	size_t n = 0;

	if (!is_name_start(s[0]))
		return 0;
	while (s[n] != end && s[n] != '\0') {
		if (!is_name_char(s[n]) || n >= CLI_NAME_MAX)
			return 0;
		n++;
	}
	return s[n] == end ? n : 0;
}

int cli_check_name(const char *name, char *why, size_t whylen)
{
	size_t i, len = strlen(name);

	if (len == 0) {
		set_why(why, whylen, "invalid sandbox name: it is empty");
		return -1;
	}
	if (len > CLI_NAME_MAX) {
		set_why(why, whylen, "invalid sandbox name `%.*s...`: longer than %d characters", 16, name,
			CLI_NAME_MAX);
		return -1;
	}
	if (!is_name_start(name[0])) {
		set_why(why, whylen, "invalid sandbox name `%s`: it must start with a letter or a digit", name);
		return -1;
	}
	for (i = 1; i < len; i++) {
		if (!is_name_char(name[i])) {
			set_why(why, whylen, "invalid sandbox name `%s`: only letters, digits, `_`, `.` and `-` "
				"may follow the first character", name);
			return -1;
		}
	}
	return 0;
}

int cli_parse_sandbox_ref(const char *arg, char name[CLI_NAME_MAX + 1], const char **path)
{
	size_t n = strchr(arg, ':') ? name_len(arg, ':') : 0;

	if (n == 0)
		return 0;
	memcpy(name, arg, n);
	name[n] = '\0';
	*path = arg + n + 1;
	return 1;
}

/* ---- the shared sandbox options ---- */

void cli_sandbox_opts_init(struct cli_sandbox_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->isolation = MBX_ISOLATION_AUTO;
	o->trust = MBX_TRUST_SEMI_TRUSTED;
	o->network.policy = MBX_NETWORK_DENY_ALL;
}

void cli_sandbox_opts_free(struct cli_sandbox_opts *o)
{
	size_t i;

	for (i = 0; i < o->n_env; i++)
		cli_env_free(&o->env[i]);
	free(o->env);
	for (i = 0; i < o->n_mounts; i++)
		cli_mount_free(&o->mounts[i]);
	free(o->mounts);
	for (i = 0; i < o->n_hosts; i++)
		cli_host_free(&o->hosts[i]);
	free(o->hosts);
	free(o->ca_files);
	free(o->http_rules);
	free(o->limits);
	cli_network_free(&o->network);
	free(o->words);
	free(o->note_copy);
	memset(o, 0, sizeof(*o));
}

static const struct cli_option sandbox_option_names[] = {
	CLI_SANDBOX_OPTIONS,
	{ NULL, 0, 0, 0 }
};

/* Options a note keeps and replays: none that reads a host file or mounts one. */
static int note_option(int id)
{
	return id > 0 && id < CLI_OPT_SANDBOX_END && id != CLI_OPT_ENV && id != CLI_OPT_ENV_FILE &&
	       id != CLI_OPT_MOUNT && id != CLI_OPT_CA_FILE;
}

static const struct cli_option *option_by_id(int id)
{
	for (const struct cli_option *p = sandbox_option_names; p->name; p++)
		if (p->id == id)
			return p;
	return NULL;
}

static int words_add(char **buf, size_t *len, const char *a, const char *b)
{
	size_t na = strlen(a) + 1, nb = b ? strlen(b) + 1 : 0;
	char *p = realloc(*buf, *len + na + nb);

	if (p == NULL)
		return -1;
	memcpy(p + *len, a, na);
	if (b)
		memcpy(p + *len + na, b, nb);
	*buf = p;
	*len += na + nb;
	return 0;
}

/* Records an option given to cli_sandbox_opts_set() in o->words. */
static int record_word(struct cli_sandbox_opts *o, int id, const char *value)
{
	const struct cli_option *opt = option_by_id(id);
	char flag[64];

	if (!note_option(id) || opt == NULL)
		return 0;
	snprintf(flag, sizeof(flag), "--%s", opt->name);
	return words_add(&o->words, &o->words_len, flag, opt->has_arg ? (value ? value : "") : NULL);
}

int cli_sandbox_opts_note(const struct cli_sandbox_opts *o, char **out, size_t *len)
{
	char *buf = NULL;
	size_t n = 0, i;

	*out = NULL;
	*len = 0;
	if (o->words_len) {
		buf = malloc(o->words_len);
		if (buf == NULL)
			return -1;
		memcpy(buf, o->words, o->words_len);
		n = o->words_len;
	}
	for (i = 0; i < o->n_env; i++) {
		char *kv = malloc(strlen(o->env[i].name) + strlen(o->env[i].value) + 2);

		if (kv == NULL) {
			free(buf);
			return -1;
		}
		sprintf(kv, "%s=%s", o->env[i].name, o->env[i].value);
		if (words_add(&buf, &n, "--env", kv) < 0) {
			free(kv);
			free(buf);
			return -1;
		}
		free(kv);
	}
	*out = buf;
	*len = n;
	return 0;
}

int cli_sandbox_opts_from_note(struct cli_sandbox_opts *o, const void *note, size_t len, char *why, size_t whylen)
{
	const char *p, *end;
	char *copy;

	if (len == 0)
		return 0;
	if (((const char *)note)[len - 1] != '\0') {
		set_why(why, whylen, "the snapshot's note of the sandbox's options is malformed");
		return -1;
	}
	copy = malloc(len);
	if (copy == NULL) {
		set_why(why, whylen, "out of memory");
		return -1;
	}
	memcpy(copy, note, len);
	free(o->note_copy);
	o->note_copy = copy;
	for (p = copy, end = copy + len; p < end;) {
		const struct cli_option *opt = NULL;
		const char *value = NULL;

		if (p[0] == '-' && p[1] == '-') {
			for (const struct cli_option *q = sandbox_option_names; q->name; q++)
				if (strcmp(p + 2, q->name) == 0) {
					opt = q;
					break;
				}
		}
		if (opt == NULL || (!note_option(opt->id) && opt->id != CLI_OPT_ENV)) {
			set_why(why, whylen, "the snapshot's note names an option it may not hold: `%.64s`", p);
			return -1;
		}
		p += strlen(p) + 1;
		if (opt->has_arg) {
			if (p >= end) {
				set_why(why, whylen, "the snapshot's note ends before the value of --%s", opt->name);
				return -1;
			}
			value = p;
			p += strlen(p) + 1;
		}
		if (cli_sandbox_opts_set(o, opt->id, value, why, whylen) < 0)
			return -1;
	}
	return 0;
}

/* Grows an array by one element; returns the new slot or NULL. */
static void *push(void **array, size_t *n, size_t size)
{
	char *p = realloc(*array, (*n + 1) * size);

	if (!p)
		return NULL;
	*array = p;
	memset(p + *n * size, 0, size);
	return p + (*n)++ * size;
}

int cli_sandbox_opts_set(struct cli_sandbox_opts *o, int id, const char *value, char *why, size_t whylen)
{
	char reason[CLI_WHY_MAX] = "";
	const char *name = "?";
	int rc = 0;
	uint64_t v;

	switch (id) {
	case CLI_OPT_ISOLATION:
		name = "isolation";
		if (cli_parse_isolation(value, &o->isolation) < 0) {
			snprintf(reason, sizeof(reason), "expected auto, os, wasm or microvm");
			rc = -1;
		}
		o->set |= CLI_SET_ISOLATION;
		break;
	case CLI_OPT_TRUST:
		name = "trust";
		if (cli_parse_trust(value, &o->trust) < 0) {
			snprintf(reason, sizeof(reason), "expected trusted, semi or untrusted");
			rc = -1;
		}
		o->set |= CLI_SET_TRUST;
		break;
	case CLI_OPT_TIMEOUT:
		name = "timeout";
		rc = cli_parse_timeout(value, &o->timeout_ms, reason, sizeof(reason));
		o->set |= CLI_SET_TIMEOUT;
		break;
	case CLI_OPT_MEMORY:
		name = "memory";
		rc = cli_parse_memory_mb(value, &o->memory_bytes, reason, sizeof(reason));
		o->set |= CLI_SET_MEMORY;
		break;
	case CLI_OPT_DISK:
		name = "disk";
		rc = cli_parse_disk_mb(value, &o->disk_bytes, reason, sizeof(reason));
		o->set |= CLI_SET_DISK;
		break;
	case CLI_OPT_CPU:
		name = "cpu";
		rc = cli_parse_cpus(value, &o->millicpus, reason, sizeof(reason));
		o->set |= CLI_SET_CPU;
		break;
	case CLI_OPT_MAX_PROCS:
		name = "max-procs";
		rc = cli_parse_uint(value, 1, UINT32_MAX, &v, reason, sizeof(reason));
		o->max_procs = (uint32_t)v;
		o->set |= CLI_SET_MAX_PROCS;
		break;
	case CLI_OPT_OUTPUT_LIMIT:
		name = "output-limit";
		rc = cli_parse_uint(value, 0, UINT64_MAX, &o->output_limit, reason, sizeof(reason));
		o->set |= CLI_SET_OUTPUT_LIMIT;
		break;
	case CLI_OPT_NETWORK: {
		struct cli_network n;

		name = "network";
		rc = cli_parse_network(value, &n, reason, sizeof(reason));
		if (rc == 0) {
			cli_network_free(&o->network);
			o->network = n;
		}
		o->set |= CLI_SET_NETWORK;
		break;
	}
	case CLI_OPT_ENV: {
		struct cli_env e, *slot;

		name = "env";
		rc = cli_parse_env(value, &e, reason, sizeof(reason));
		if (rc == 0) {
			slot = push((void **)&o->env, &o->n_env, sizeof(*slot));
			if (slot) {
				*slot = e;
			} else {
				cli_env_free(&e);
				snprintf(reason, sizeof(reason), "out of memory");
				rc = -1;
			}
		}
		break;
	}
	case CLI_OPT_ENV_FILE:
		name = "env-file";
		rc = cli_parse_env_file(value, &o->env, &o->n_env, reason, sizeof(reason));
		break;
	case CLI_OPT_MOUNT: {
		struct cli_mount m, *slot;

		name = "mount";
		rc = cli_parse_mount(value, &m, reason, sizeof(reason));
		if (rc == 0) {
			slot = push((void **)&o->mounts, &o->n_mounts, sizeof(*slot));
			if (slot) {
				*slot = m;
			} else {
				cli_mount_free(&m);
				snprintf(reason, sizeof(reason), "out of memory");
				rc = -1;
			}
		}
		break;
	}
	case CLI_OPT_ADD_HOST: {
		struct cli_host h, *slot;

		name = "add-host";
		rc = cli_parse_host(value, &h, reason, sizeof(reason));
		if (rc == 0) {
			slot = push((void **)&o->hosts, &o->n_hosts, sizeof(*slot));
			if (slot) {
				*slot = h;
			} else {
				cli_host_free(&h);
				snprintf(reason, sizeof(reason), "out of memory");
				rc = -1;
			}
		}
		break;
	}
	case CLI_OPT_CA_FILE: {
		const char **slot;

		name = "ca-file";
		slot = push((void **)&o->ca_files, &o->n_ca_files, sizeof(*slot));
		if (slot) {
			*slot = value;
		} else {
			snprintf(reason, sizeof(reason), "out of memory");
			rc = -1;
		}
		break;
	}
	case CLI_OPT_HTTP_RULE: {
		const char **slot;

		name = "http-rule";
		slot = push((void **)&o->http_rules, &o->n_http_rules, sizeof(*slot));
		if (slot) {
			*slot = value;
		} else {
			snprintf(reason, sizeof(reason), "out of memory");
			rc = -1;
		}
		break;
	}
	case CLI_OPT_NET_LIMIT: {
		struct cli_net_limit l, *slot;

		name = "net-limit";
		rc = cli_parse_net_limit(value, &l, reason, sizeof(reason));
		if (rc == 0) {
			slot = push((void **)&o->limits, &o->n_limits, sizeof(*slot));
			if (slot) {
				*slot = l;
			} else {
				snprintf(reason, sizeof(reason), "out of memory");
				rc = -1;
			}
		}
		break;
	}
	case CLI_OPT_ALLOW_PRIVATE:
		o->allow_private = 1;
		break;
	case CLI_OPT_WORKDIR:
		name = "workdir";
		o->workdir = value;
		o->set |= CLI_SET_WORKDIR;
		break;
	case CLI_OPT_HOSTNAME:
		name = "hostname";
		o->hostname = value;
		o->set |= CLI_SET_HOSTNAME;
		break;
	case CLI_OPT_ALLOW_DEGRADED:
		o->allow_degraded = 1;
		break;
	default:
		set_why(why, whylen, "internal error: option id %d is not a sandbox option", id);
		return -1;
	}
	if (rc < 0 && id == CLI_OPT_ENV_FILE) {
		set_why(why, whylen, "--env-file `%s`: %s", value, reason);
		return -1;
	}
	if (rc < 0) {
		set_why(why, whylen, "invalid value `%s` for --%s: %s", value ? value : "", name, reason);
		return -1;
	}
	if (record_word(o, id, value) < 0) {
		set_why(why, whylen, "out of memory");
		return -1;
	}
	return 0;
}
