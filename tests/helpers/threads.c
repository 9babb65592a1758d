/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Uses one sandbox from several threads at once through the public API
 * (tests/integration/test_threads.py; docs/api.md "Threads"). Not installed.
 *
 *   threads MODE BACKEND [ARG...]
 *
 *   mixed N ITER [HELLO FILES]  N threads, each ITER rounds of: an execute,
 *             a file written and read back, and (os, microvm) a spawned
 *             process fed through stdin whose events it takes to the exit.
 *             On wasm the executes run HELLO and FILES (test modules), the
 *             latter writing a file the thread then reads.
 *   poll N    N spawned processes multiplexed on mbx_sandbox_event_fd()
 *             with poll() without a timeout and next_event(proc, 0): every
 *             output and exit status arrives; the descriptor is readable
 *             while events wait and not once all were taken. Another
 *             thread blocked in next_event on a process of its own reads
 *             the channel meanwhile, so most events are queued by it (the
 *             descriptor's eventfd must tell). On wasm: the call answers
 *             MBX_ENOTSUP.
 *   order     a thread blocks in mbx_process_next_event() on a process that
 *             waits for stdin; meanwhile another thread's execute and file
 *             calls complete (before the blocked call returns), then stdin
 *             is written and the blocked call gets its event. A snapshot
 *             meanwhile is refused (MBX_ESTATE); once idle, a snapshot and
 *             a fork go through.
 *
 * BACKEND is os, wasm or microvm. Prints `sandbox ID` for the sandbox, then
 * one `ok NAME` or `not ok NAME: WHY` line per check; exit status 0 when
 * all passed.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <mbx/mbx.h>

static int failures;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static mbx_isolation_t backend = MBX_ISOLATION_OS;
static const char *hello_mod, *files_mod;

static void check(int ok, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void check(int ok, const char *name, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&out_lock);
	if (ok) {
		printf("ok %s\n", name);
	} else {
		printf("not ok %s: ", name);
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf("\n");
		failures++;
	}
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

static const char *msg(const mbx_error *e)
{
	return e ? mbx_error_message(e) : "(no error)";
}

static mbx_sandbox *make_sandbox(void)
{
	mbx_config *cfg = NULL;
	mbx_sandbox *sb = NULL;
	mbx_error *e = NULL;

	/* Room for 32 shells with a child each, and the threads' processes. */
	if (mbx_config_new(&cfg, &e) < 0 || mbx_config_set_isolation(cfg, backend, &e) < 0 ||
	    (backend != MBX_ISOLATION_WASM && mbx_config_set_max_processes(cfg, 256, &e) < 0) ||
	    mbx_sandbox_new(&sb, cfg, &e) < 0) {
		check(0, "new", "%s", msg(e));
		mbx_error_free(e);
		mbx_config_free(cfg);
		return NULL;
	}
	mbx_config_free(cfg);
	printf("sandbox %s\n", mbx_sandbox_id(sb));
	fflush(stdout);
	return sb;
}

/* ---- mixed ---- */

struct worker {
	mbx_sandbox *sb;
	int idx, iter;
	pthread_t t;
	char why[512];
	int failed;
};

static void fail(struct worker *w, const char *what, mbx_error *e)
{
	if (!w->failed)
		snprintf(w->why, sizeof(w->why), "thread %d: %s: %s", w->idx, what, msg(e));
	w->failed = 1;
	mbx_error_free(e);
}

static int exec_expect(struct worker *w, const char *const *argv, const char *expect)
{
	mbx_result *r = NULL;
	mbx_error *e = NULL;
	const uint8_t *out;
	size_t len;

	if (mbx_sandbox_exec(w->sb, argv, NULL, &r, &e) < 0) {
		fail(w, "execute", e);
		return -1;
	}
	out = mbx_result_stdout(r, &len);
	if (mbx_result_exit_code(r) != 0 || len != strlen(expect) || memcmp(out, expect, len) != 0) {
		snprintf(w->why, sizeof(w->why), "thread %d: execute %s: exit %d, stdout `%.*s`, wanted `%s`", w->idx, argv[0],
			 mbx_result_exit_code(r), (int)len, (const char *)out, expect);
		w->failed = 1;
		mbx_result_free(r);
		return -1;
	}
	mbx_result_free(r);
	return 0;
}

static int file_roundtrip(struct worker *w, int k)
{
	char path[64], text[128];
	uint8_t *data = NULL;
	size_t len = 0;
	mbx_error *e = NULL;

	snprintf(path, sizeof(path), "/workspace/t%d-%d.txt", w->idx, k);
	snprintf(text, sizeof(text), "thread %d round %d %s\n", w->idx, k, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	if (mbx_sandbox_write_file(w->sb, path, text, strlen(text), 0644, 0, &e) < 0) {
		fail(w, "write_file", e);
		return -1;
	}
	if (mbx_sandbox_read_file(w->sb, path, &data, &len, &e) < 0) {
		fail(w, "read_file", e);
		return -1;
	}
	if (len != strlen(text) || memcmp(data, text, len) != 0) {
		snprintf(w->why, sizeof(w->why), "thread %d: %s read back %zu bytes, not what was written", w->idx, path, len);
		w->failed = 1;
	}
	mbx_buffer_free(data);
	return w->failed ? -1 : 0;
}

/* Spawns `cat` with stdin, writes a line, closes stdin, takes its events to
 * the exit (waiting without a time limit: other threads read for it). */
static int spawn_roundtrip(struct worker *w, int k)
{
	const char *argv[] = { "sh", "-c", "cat; echo done", NULL };
	mbx_spawn_options *o = NULL;
	mbx_process *p = NULL;
	mbx_error *e = NULL;
	char line[64], want[96], got[256];
	size_t got_len = 0;
	int exit_code = -2;

	snprintf(line, sizeof(line), "line of %d/%d\n", w->idx, k);
	snprintf(want, sizeof(want), "%sdone\n", line);
	if (mbx_spawn_options_new(&o, &e) < 0) {
		fail(w, "spawn options", e);
		return -1;
	}
	mbx_spawn_options_set_stdin(o, 1);
	if (mbx_sandbox_spawn(w->sb, argv, o, &p, &e) < 0) {
		mbx_spawn_options_free(o);
		fail(w, "spawn", e);
		return -1;
	}
	mbx_spawn_options_free(o);
	if (mbx_process_write_stdin(p, line, strlen(line), &e) < 0 || mbx_process_close_stdin(p, &e) < 0) {
		fail(w, "stdin", e);
		mbx_process_free(p);
		return -1;
	}
	for (;;) {
		mbx_event *ev = NULL;
		const uint8_t *d;
		size_t n;

		if (mbx_process_next_event(p, -1, &ev, &e) < 0) {
			fail(w, "next_event", e);
			break;
		}
		if (ev == NULL)
			continue;
		if (mbx_event_kind(ev) == MBX_EVENT_STDOUT) {
			d = mbx_event_data(ev, &n);
			if (got_len + n < sizeof(got)) {
				memcpy(got + got_len, d, n);
				got_len += n;
			}
		} else if (mbx_event_kind(ev) == MBX_EVENT_EXIT || mbx_event_kind(ev) == MBX_EVENT_TIMED_OUT) {
			exit_code = mbx_event_kind(ev) == MBX_EVENT_EXIT ? mbx_event_exit_code(ev) : -3;
			mbx_event_free(ev);
			break;
		}
		mbx_event_free(ev);
	}
	mbx_process_free(p);
	if (!w->failed && (exit_code != 0 || got_len != strlen(want) || memcmp(got, want, got_len) != 0)) {
		snprintf(w->why, sizeof(w->why), "thread %d: spawned cat exit %d, stdout `%.*s`, wanted `%s`", w->idx, exit_code,
			 (int)got_len, got, want);
		w->failed = 1;
	}
	return w->failed ? -1 : 0;
}

static void *mixed_main(void *arg)
{
	struct worker *w = arg;

	for (int k = 0; k < w->iter && !w->failed; k++) {
		char expect[64], word[32], path[64], arg3[64];

		if (backend == MBX_ISOLATION_WASM) {
			const char *hello[] = { hello_mod, NULL };

			snprintf(path, sizeof(path), "/workspace/m%d-%d.txt", w->idx, k);
			snprintf(arg3, sizeof(arg3), "module %d/%d", w->idx, k);
			const char *files[] = { files_mod, "write", path, arg3, NULL };
			uint8_t *data = NULL;
			size_t len = 0;
			mbx_error *e = NULL;

			if (exec_expect(w, hello, "hello from wasm\n") < 0 || exec_expect(w, files, "") < 0)
				break;
			if (mbx_sandbox_read_file(w->sb, path, &data, &len, &e) < 0) {
				fail(w, "read_file of a module's file", e);
				break;
			}
			if (len != strlen(arg3) || memcmp(data, arg3, len) != 0) {
				snprintf(w->why, sizeof(w->why), "thread %d: %s holds %zu bytes, not `%s`", w->idx, path, len, arg3);
				w->failed = 1;
			}
			mbx_buffer_free(data);
		} else {
			snprintf(word, sizeof(word), "w%d-%d", w->idx, k);
			snprintf(expect, sizeof(expect), "%s\n", word);
			const char *echo[] = { "echo", word, NULL };

			if (exec_expect(w, echo, expect) < 0)
				break;
		}
		if (file_roundtrip(w, k) < 0)
			break;
		if (backend != MBX_ISOLATION_WASM && spawn_roundtrip(w, k) < 0)
			break;
	}
	return NULL;
}

static void mode_mixed(mbx_sandbox *sb, int n, int iter)
{
	struct worker *ws = calloc((size_t)n, sizeof(*ws));
	int bad = 0;

	for (int i = 0; i < n; i++) {
		ws[i].sb = sb;
		ws[i].idx = i;
		ws[i].iter = iter;
		pthread_create(&ws[i].t, NULL, mixed_main, &ws[i]);
	}
	for (int i = 0; i < n; i++)
		pthread_join(ws[i].t, NULL);
	for (int i = 0; i < n; i++)
		if (ws[i].failed) {
			check(0, "mixed", "%s", ws[i].why);
			bad = 1;
			break;
		}
	if (!bad)
		check(1, "mixed", NULL);
	/* The sandbox still works after the storm. */
	{
		const char *argv[] = { backend == MBX_ISOLATION_WASM ? hello_mod : "true", NULL };
		mbx_result *r = NULL;
		mbx_error *e = NULL;
		int rc = mbx_sandbox_exec(sb, argv, NULL, &r, &e);

		check(rc == MBX_OK && mbx_result_exit_code(r) == 0, "still-works", "%s", msg(e));
		mbx_result_free(r);
		mbx_error_free(e);
	}
	free(ws);
}

/* ---- order ---- */

struct blocked {
	mbx_process *p;
	int until_exit;      /* take events to the exit, not only the first */
	atomic_int waiting;  /* about to call next_event */
	atomic_int returned; /* next_event returned */
	int kind;
	char why[256];
};

static void *blocked_main(void *arg)
{
	struct blocked *b = arg;
	mbx_event *ev = NULL;
	mbx_error *e = NULL;

	atomic_store(&b->waiting, 1);
	do {
		/* Long enough never to end on its own in a passing run; a
		 * library that held the sandbox while waiting would let it
		 * expire and the execute of mode_order would finish only
		 * after it. */
		mbx_event_free(ev);
		ev = NULL;
		if (mbx_process_next_event(b->p, 60000, &ev, &e) < 0) {
			snprintf(b->why, sizeof(b->why), "next_event: %s", msg(e));
			break;
		}
		b->kind = ev ? (int)mbx_event_kind(ev) : -1;
	} while (b->until_exit && b->kind != MBX_EVENT_EXIT && b->kind != MBX_EVENT_TIMED_OUT);
	mbx_event_free(ev);
	mbx_error_free(e);
	atomic_store(&b->returned, 1);
	return NULL;
}

/* ---- poll ---- */

static int readable(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int rc;

	do
		rc = poll(&pfd, 1, timeout_ms);
	while (rc < 0 && errno == EINTR);
	return rc > 0 && (pfd.revents & POLLIN);
}

struct waiter {
	int fd;
	atomic_int woke;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;

	atomic_store(&w->woke, readable(w->fd, -1) ? 1 : -1);
	return NULL;
}

/*
 * A destroy while another thread waits on the event descriptor: the waiter
 * wakes, the descriptor stays open (its number cannot go to another open)
 * and readable until the free, and the calls answer MBX_ESTATE.
 */
static void event_fd_destroy(mbx_sandbox *sb, int fd)
{
	const char *argv[] = { "sleep", "60", NULL };
	struct waiter w = { .fd = fd };
	mbx_process *p = NULL;
	mbx_event *ev = NULL;
	mbx_error *e = NULL;
	pthread_t t;
	int rc;

	if (mbx_sandbox_spawn(sb, argv, NULL, &p, &e) < 0) {
		check(0, "event-fd-after-destroy", "spawn: %s", msg(e));
		mbx_error_free(e);
		return;
	}
	/* What the start brought (nothing should stay queued): taken first. */
	for (int i = 0; i < 50 && readable(fd, 50); i++)
		while (mbx_process_next_event(p, 0, &ev, NULL) == MBX_OK && ev != NULL) {
			mbx_event_free(ev);
			ev = NULL;
		}
	pthread_create(&t, NULL, waiter_main, &w);
	usleep(200000);
	check(atomic_load(&w.woke) == 0, "event-fd-after-destroy", "the waiter woke before the destroy");
	mbx_sandbox_destroy(sb, NULL);
	pthread_join(t, NULL);
	rc = mbx_process_next_event(p, 0, &ev, &e);
	check(atomic_load(&w.woke) == 1 && fcntl(fd, F_GETFD) >= 0 && readable(fd, 0) && rc == MBX_ESTATE &&
		      mbx_sandbox_event_fd(sb, NULL) == MBX_ESTATE,
	      "event-fd-after-destroy", "woke %d, open %d, readable %d, next_event %d", atomic_load(&w.woke),
	      fcntl(fd, F_GETFD) >= 0, readable(fd, 0), rc);
	mbx_event_free(ev);
	mbx_error_free(e);
	mbx_process_free(p);
}

static void mode_poll(mbx_sandbox *sb, int n)
{
	mbx_process **ps = calloc((size_t)n, sizeof(*ps));
	char (*outs)[64] = calloc((size_t)n, sizeof(*outs));
	size_t *lens = calloc((size_t)n, sizeof(*lens));
	int *codes = calloc((size_t)n, sizeof(*codes));
	int *done = calloc((size_t)n, sizeof(*done));
	mbx_error *e = NULL;
	int fd, fd2, left = n, ok = 1, wakeups = 0, have_reader = 0;
	struct blocked reader = { 0 };
	pthread_t reader_t;
	char why[256] = "";

	fd = mbx_sandbox_event_fd(sb, &e);
	if (backend == MBX_ISOLATION_WASM) {
		check(fd == MBX_ENOTSUP, "event-fd-wasm", "wanted MBX_ENOTSUP, got %d: %s", fd, msg(e));
		mbx_error_free(e);
		goto out;
	}
	if (fd < 0) {
		check(0, "event-fd", "%s", msg(e));
		mbx_error_free(e);
		goto out;
	}
	fd2 = mbx_sandbox_event_fd(sb, NULL);
	check(fd2 == fd, "event-fd-stable", "a second call gave %d, the first %d", fd2, fd);
	check(!readable(fd, 0), "event-fd-idle", "readable before any process ran");
	/* Another thread blocks in next_event on a process of its own: it
	 * reads the channel for everybody, so the events below are queued by
	 * it and only the descriptor's eventfd tells this thread. */
	{
		const char *rargv[] = { "sh", "-c", "read x; echo bye", NULL };
		mbx_spawn_options *o = NULL;

		if (mbx_spawn_options_new(&o, &e) < 0)
			goto setup_failed;
		mbx_spawn_options_set_stdin(o, 1);
		if (mbx_sandbox_spawn(sb, rargv, o, &reader.p, &e) < 0) {
			mbx_spawn_options_free(o);
			goto setup_failed;
		}
		mbx_spawn_options_free(o);
		reader.until_exit = 1;
		pthread_create(&reader_t, NULL, blocked_main, &reader);
		have_reader = 1;
	}
	for (int i = 0; i < n; i++) {
		char script[128];

		/* Each process writes after the ones before it had time to start:
		 * their events arrive spread out, and interleaved. */
		snprintf(script, sizeof(script), "sleep 0.%d; echo out-%d; exit %d", (n - i) % 10, i, i % 7);
		const char *argv[] = { "sh", "-c", script, NULL };

		if (mbx_sandbox_spawn(sb, argv, NULL, &ps[i], &e) < 0) {
			check(0, "spawn", "process %d: %s", i, msg(e));
			mbx_error_free(e);
			goto out;
		}
	}
	while (left > 0) {
		/* No timeout: only the descriptor wakes us. The test harness
		 * bounds the whole run. */
		if (!readable(fd, -1)) {
			snprintf(why, sizeof(why), "poll failed: %s", strerror(errno));
			ok = 0;
			break;
		}
		wakeups++;
		for (int i = 0; i < n; i++) {
			while (!done[i]) {
				mbx_event *ev = NULL;
				const uint8_t *d;
				size_t len;

				if (mbx_process_next_event(ps[i], 0, &ev, &e) < 0) {
					snprintf(why, sizeof(why), "next_event of %d: %s", i, msg(e));
					mbx_error_free(e);
					e = NULL;
					ok = 0;
					left = 0;
					break;
				}
				if (ev == NULL)
					break;
				if (mbx_event_kind(ev) == MBX_EVENT_STDOUT) {
					d = mbx_event_data(ev, &len);
					if (lens[i] + len < sizeof(outs[i])) {
						memcpy(outs[i] + lens[i], d, len);
						lens[i] += len;
					}
				} else if (mbx_event_kind(ev) == MBX_EVENT_EXIT || mbx_event_kind(ev) == MBX_EVENT_TIMED_OUT) {
					codes[i] = mbx_event_kind(ev) == MBX_EVENT_EXIT ? mbx_event_exit_code(ev) : -3;
					done[i] = 1;
					left--;
				}
				mbx_event_free(ev);
			}
		}
	}
	for (int i = 0; ok && i < n; i++) {
		char want[32];

		snprintf(want, sizeof(want), "out-%d\n", i);
		if (codes[i] != i % 7 || lens[i] != strlen(want) || memcmp(outs[i], want, lens[i]) != 0) {
			snprintf(why, sizeof(why), "process %d: exit %d, stdout `%.*s`", i, codes[i], (int)lens[i], outs[i]);
			ok = 0;
		}
	}
	check(ok, "multiplexed", "%s (after %d wakeups)", why, wakeups);
	if (mbx_process_write_stdin(reader.p, "x\n", 2, &e) < 0) {
		check(0, "reader-stdin", "%s", msg(e));
		mbx_error_free(e);
		mbx_process_kill(reader.p, NULL);
	}
	pthread_join(reader_t, NULL);
	have_reader = 0;
	check(reader.kind == MBX_EVENT_EXIT && reader.why[0] == '\0', "reader-thread", "last event kind %d %s", reader.kind,
	      reader.why);
	/* Level-triggered and nothing left: not readable any more. */
	check(!readable(fd, 0), "event-fd-drained", "still readable with every event taken");
	event_fd_destroy(sb, fd);
	goto out;
setup_failed:
	check(0, "poll-setup", "%s", msg(e));
	mbx_error_free(e);
out:
	if (have_reader) {
		mbx_process_kill(reader.p, NULL);
		pthread_join(reader_t, NULL);
	}
	mbx_process_free(reader.p);
	for (int i = 0; i < n; i++)
		mbx_process_free(ps[i]);
	free(ps);
	free(outs);
	free(lens);
	free(codes);
	free(done);
}

static void mode_order(mbx_sandbox *sb)
{
	const char *argv[] = { "sh", "-c", "read x; echo got-$x", NULL };
	const char *echo[] = { "echo", "meanwhile", NULL };
	struct blocked b = { 0 };
	mbx_spawn_options *o = NULL;
	mbx_result *r = NULL;
	mbx_error *e = NULL;
	uint8_t *data = NULL;
	size_t len = 0;
	pthread_t t;
	int rc;

	if (mbx_spawn_options_new(&o, &e) < 0)
		goto fail;
	mbx_spawn_options_set_stdin(o, 1);
	rc = mbx_sandbox_spawn(sb, argv, o, &b.p, &e);
	mbx_spawn_options_free(o);
	if (rc < 0)
		goto fail;
	pthread_create(&t, NULL, blocked_main, &b);
	while (!atomic_load(&b.waiting))
		usleep(1000);
	/* Give the thread time to be inside its wait (if it is not yet, the
	 * check below is weaker, never wrong). */
	usleep(200000);
	rc = mbx_sandbox_exec(sb, echo, NULL, &r, &e);
	check(rc == MBX_OK && mbx_result_exit_code(r) == 0, "exec-while-blocked", "%s", msg(e));
	check(!atomic_load(&b.returned), "exec-before-event", "the blocked next_event returned before the execute ended");
	mbx_result_free(r);
	mbx_error_free(e);
	e = NULL;
	rc = mbx_sandbox_write_file(sb, "/workspace/order.txt", "x", 1, 0644, 0, &e);
	if (rc == MBX_OK)
		rc = mbx_sandbox_read_file(sb, "/workspace/order.txt", &data, &len, &e);
	check(rc == MBX_OK && len == 1, "files-while-blocked", "%s", msg(e));
	mbx_buffer_free(data);
	mbx_error_free(e);
	e = NULL;
	check(!atomic_load(&b.returned), "files-before-event", "the blocked next_event returned before the file calls ended");
	/* A snapshot needs the sandbox to itself: refused while a call runs. */
	{
		mbx_snapshot *snap = NULL;

		rc = mbx_sandbox_snapshot(&snap, sb, &e);
		check(rc == MBX_ESTATE && snap == NULL, "snapshot-refused-while-busy", "rc %d: %s", rc, msg(e));
		mbx_snapshot_free(snap);
		mbx_error_free(e);
		e = NULL;
	}
	rc = mbx_process_write_stdin(b.p, "now\n", 4, &e);
	check(rc == MBX_OK, "stdin-while-blocked", "%s", msg(e));
	mbx_error_free(e);
	pthread_join(t, NULL);
	check(b.kind == MBX_EVENT_STDOUT && b.why[0] == '\0', "blocked-gets-event", "event kind %d %s", b.kind, b.why);
	mbx_process_free(b.p);
	/* Idle again: a snapshot and a fork go through, and the sandbox works on. */
	{
		mbx_snapshot *snap = NULL;
		mbx_sandbox *child = NULL;

		rc = mbx_sandbox_snapshot(&snap, sb, &e);
		check(rc == MBX_OK, "snapshot-when-idle", "%s", msg(e));
		mbx_snapshot_free(snap);
		mbx_error_free(e);
		e = NULL;
		rc = mbx_sandbox_fork(&child, sb, &e);
		check(rc == MBX_OK, "fork-when-idle", "%s", msg(e));
		if (child)
			printf("sandbox %s\n", mbx_sandbox_id(child));
		mbx_sandbox_free(child);
		mbx_error_free(e);
		e = NULL;
		rc = mbx_sandbox_exec(sb, echo, NULL, &r, &e);
		check(rc == MBX_OK && mbx_result_exit_code(r) == 0, "exec-after-fork", "%s", msg(e));
		mbx_result_free(r);
		mbx_error_free(e);
	}
	return;
fail:
	check(0, "order-setup", "%s", msg(e));
	mbx_error_free(e);
}

int main(int argc, char **argv)
{
	mbx_sandbox *sb;

	if (argc < 3) {
		fprintf(stderr, "usage: threads mixed|poll|order os|wasm|microvm [ARG...]\n");
		return 2;
	}
	if (strcmp(argv[2], "wasm") == 0)
		backend = MBX_ISOLATION_WASM;
	else if (strcmp(argv[2], "microvm") == 0)
		backend = MBX_ISOLATION_MICROVM;
	else if (strcmp(argv[2], "os") != 0) {
		fprintf(stderr, "threads: unknown backend `%s`\n", argv[2]);
		return 2;
	}
	/* A hang (a wakeup that never comes) fails instead of waiting for the
	 * harness. */
	alarm(240);
	sb = make_sandbox();
	if (sb == NULL)
		return 1;
	if (strcmp(argv[1], "mixed") == 0 && argc >= 5) {
		if (backend == MBX_ISOLATION_WASM) {
			if (argc < 7) {
				fprintf(stderr, "threads mixed wasm N ITER HELLO FILES\n");
				return 2;
			}
			hello_mod = argv[5];
			files_mod = argv[6];
		}
		mode_mixed(sb, atoi(argv[3]), atoi(argv[4]));
	} else if (strcmp(argv[1], "poll") == 0 && argc >= 4) {
		mode_poll(sb, atoi(argv[3]));
	} else if (strcmp(argv[1], "order") == 0) {
		mode_order(sb);
	} else {
		fprintf(stderr, "threads: unknown mode or missing arguments\n");
		mbx_sandbox_free(sb);
		return 2;
	}
	mbx_sandbox_free(sb);
	return failures ? 1 : 0;
}
