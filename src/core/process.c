/* SPDX-License-Identifier: Apache-2.0 */
/* Spawned processes, their events, stdin, signals and PTYs (mbx/process.h),
 * over the sandbox's agent channel (src/backend/client.c). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "backend/client.h"

/* Unread output kept per process unless set otherwise. */
#define DEFAULT_BUFFER (1u << 20)

struct mbx_spawn_options {
	struct mbx_env env;
	char *workdir;
	uint64_t timeout_ms;
	int timeout_set;
	int stdin_pipe;
	uint16_t rows, cols;
	uint64_t buffer;
	int pass_fd;            /* internal (mbx__spawn_options_pass_fd): -1 or the program's fd 3 */
};

struct mbx_process {
	mbx_sandbox *sb;        /* borrowed; NULL once the sandbox was freed */
	mbx_process *next, *prev; /* the sandbox's live handles (sb->procs) */
	struct mbx_cproc *cp;   /* the client's entry; NULL once released */
	uint32_t id;
	int ended;
	mbx_result *partial;    /* output taken by mbx_process_wait() so far */
};

struct mbx_proc_list {
	size_t n;
	uint32_t *ids;
	char **programs;
	uint64_t *ages;
};

/* Keeps track of a sandbox's live handles, so freeing the sandbox first
 * leaves them safe (see mbx__sandbox_orphan_processes()). */
static void link_handle(mbx_sandbox *sb, mbx_process *p)
{
	p->sb = sb;
	p->prev = NULL;
	p->next = sb->procs;
	if (sb->procs)
		sb->procs->prev = p;
	sb->procs = p;
}

static void unlink_handle(mbx_process *p)
{
	if (p->sb == NULL)
		return;
	if (p->prev)
		p->prev->next = p->next;
	else
		p->sb->procs = p->next;
	if (p->next)
		p->next->prev = p->prev;
	p->next = p->prev = NULL;
}

void mbx__sandbox_orphan_processes(mbx_sandbox *sb)
{
	mbx_process *p = sb->procs, *next;

	for (; p; p = next) {
		next = p->next;
		p->sb = NULL;
		p->cp = NULL;	/* the client and its entries go with the sandbox */
		p->next = p->prev = NULL;
	}
	sb->procs = NULL;
}

int mbx_spawn_options_new(mbx_spawn_options **out, mbx_error **err)
{
	MBX_CHECK_ARG(out != NULL, err);
	*out = calloc(1, sizeof(**out));
	if (*out == NULL)
		return mbx__error_oom(err);
	(*out)->buffer = DEFAULT_BUFFER;
	(*out)->pass_fd = -1;
	return MBX_OK;
}

void mbx_spawn_options_free(mbx_spawn_options *o)
{
	if (o == NULL)
		return;
	mbx__env_release(&o->env);
	free(o->workdir);
	free(o);
}

int mbx_spawn_options_set_env(mbx_spawn_options *o, const char *name, const char *value, mbx_error **err)
{
	MBX_CHECK_ARG(o != NULL, err);
	return mbx__env_set(&o->env, name, value, err);
}

int mbx_spawn_options_set_workdir(mbx_spawn_options *o, const char *path, mbx_error **err)
{
	mbx_exec_options *tmp = NULL;
	int rc;

	MBX_CHECK_ARG(o != NULL, err);
	/* The same checks as an execute's working directory. */
	rc = mbx_exec_options_new(&tmp, err);
	if (rc == MBX_OK)
		rc = mbx_exec_options_set_workdir(tmp, path, err);
	if (rc == MBX_OK) {
		free(o->workdir);
		o->workdir = tmp->workdir;
		tmp->workdir = NULL;
	}
	mbx_exec_options_free(tmp);
	return rc;
}

void mbx_spawn_options_set_timeout_ms(mbx_spawn_options *o, uint64_t timeout_ms)
{
	if (o == NULL)
		return;
	o->timeout_ms = timeout_ms;
	o->timeout_set = 1;
}

void mbx_spawn_options_set_stdin(mbx_spawn_options *o, int enable)
{
	if (o)
		o->stdin_pipe = enable != 0;
}

int mbx_spawn_options_set_pty(mbx_spawn_options *o, uint16_t rows, uint16_t cols, mbx_error **err)
{
	MBX_CHECK_ARG(o != NULL, err);
	if (rows == 0 || cols == 0 || rows > 4096 || cols > 4096)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "terminal size %ux%u is out of range (1..4096)", rows, cols);
	o->rows = rows;
	o->cols = cols;
	return MBX_OK;
}

int mbx_spawn_options_set_buffer(mbx_spawn_options *o, uint64_t bytes, mbx_error **err)
{
	MBX_CHECK_ARG(o != NULL, err);
	if (bytes < (64u << 10) || bytes > (1ull << 31))
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "output buffer of %llu bytes is out of range (64 KiB to 2 GiB)",
				      (unsigned long long)bytes);
	o->buffer = bytes;
	return MBX_OK;
}

void mbx__spawn_options_pass_fd(mbx_spawn_options *o, int fd)
{
	o->pass_fd = fd;
}

static int do_spawn(mbx_sandbox *sb, const char *const *argv, const mbx_spawn_options *o, mbx_process **out, mbx_error **err)
{
	struct mbx_exec_req req = { 0 };
	struct mbx_spawn_req sr = { 0 };
	struct mbx_client *c = NULL;
	struct mbx_cproc *cp = NULL;
	mbx_process *p;
	char **envp = NULL;
	int rc;

	if (out == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_sandbox_spawn: out is NULL");
	*out = NULL;
	rc = mbx__sandbox_client(sb, (o && o->rows) ? MBX_BACKEND_CAP_PROCESSES | MBX_BACKEND_CAP_PTY : MBX_BACKEND_CAP_PROCESSES,
				 "spawning processes", &c, err);
	if (rc < 0)
		return rc;
	if (argv == NULL || argv[0] == NULL || argv[0][0] == '\0')
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "no program given: argv is empty");
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return mbx__error_oom(err);
	rc = mbx__sandbox_env(sb, o ? &o->env : NULL, &envp, err);
	if (rc < 0) {
		free(p);
		return rc;
	}
	req.argv = (char *const *)argv;
	req.envp = envp;
	req.cwd = (o && o->workdir) ? o->workdir : sb->cfg->workdir;
	req.timeout_ms = (o && o->timeout_set) ? o->timeout_ms : sb->cfg->timeout_ms;
	req.output_limit = UINT64_MAX;
	sr.exec = &req;
	sr.window = o ? o->buffer : DEFAULT_BUFFER;
	if (o && o->rows) {
		sr.flags |= MBX_XF_PTY;
		sr.rows = o->rows;
		sr.cols = o->cols;
	} else if (o && o->stdin_pipe) {
		sr.flags |= MBX_XF_STDIN;
	}
	if (o && o->pass_fd >= 0) {
		sr.has_pass_fd = 1;
		sr.pass_fd = o->pass_fd;
	}
	rc = mbx__client_spawn(c, &sr, &cp, err);
	mbx__strv_free(envp);
	if (rc < 0) {
		free(p);
		return mbx__sandbox_after(sb, c, rc, err);
	}
	link_handle(sb, p);
	p->cp = cp;
	p->id = cp->id;
	*out = p;
	return MBX_OK;
}

/* The client entry of a live process handle, or an error. */
static int proc_client(mbx_process *p, struct mbx_client **c, mbx_error **err)
{
	int rc;

	if (p == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "process is NULL");
	if (p->sb == NULL)
		return mbx__error_set(err, MBX_ESTATE, 0, NULL, "process %u: its sandbox was freed", p->id);
	rc = mbx__sandbox_client(p->sb, MBX_BACKEND_CAP_PROCESSES, "processes", c, err);
	if (rc < 0)
		return rc;
	if (p->cp == NULL)
		return mbx__error_set(err, MBX_ESTATE, 0, NULL, "process %u has ended", p->id);
	return MBX_OK;
}

static uint64_t deadline_of(int timeout_ms)
{
	if (timeout_ms < 0)
		return 0;
	return mbx__now_us() + (uint64_t)timeout_ms * 1000u + (timeout_ms == 0);
}

static int do_proc_next_event(mbx_process *p, int timeout_ms, mbx_event **out, mbx_error **err)
{
	struct mbx_client *c;
	int rc;

	if (out == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_process_next_event: out is NULL");
	*out = NULL;
	rc = proc_client(p, &c, err);
	if (rc < 0)
		return rc;
	/* Forever is a sequence of long waits: the client's own deadline is
	 * finite. */
	do {
		rc = mbx__client_next_event(c, p->cp, timeout_ms < 0 ? mbx__now_us() + 60000000u : deadline_of(timeout_ms),
					    out, err);
	} while (rc == MBX_OK && *out == NULL && timeout_ms < 0);
	if (rc < 0)
		return mbx__sandbox_after(p->sb, c, rc, err);
	if (*out && ((*out)->kind == MBX_EVENT_EXIT || (*out)->kind == MBX_EVENT_TIMED_OUT))
		p->ended = 1;
	return MBX_OK;
}

mbx_event_kind_t mbx_event_kind(const mbx_event *ev)
{
	return ev ? ev->kind : 0;
}

const uint8_t *mbx_event_data(const mbx_event *ev, size_t *len)
{
	if (len)
		*len = (ev && (ev->kind == MBX_EVENT_STDOUT || ev->kind == MBX_EVENT_STDERR)) ? ev->len : 0;
	if (ev == NULL || (ev->kind != MBX_EVENT_STDOUT && ev->kind != MBX_EVENT_STDERR))
		return NULL;
	return ev->data ? ev->data : (const uint8_t *)"";
}

int mbx_event_exit_code(const mbx_event *ev)
{
	if (ev == NULL || (ev->kind != MBX_EVENT_EXIT && ev->kind != MBX_EVENT_TIMED_OUT))
		return -1;
	return ev->exit.exit_code;
}

int mbx_event_signal(const mbx_event *ev)
{
	if (ev == NULL || (ev->kind != MBX_EVENT_EXIT && ev->kind != MBX_EVENT_TIMED_OUT))
		return 0;
	return (int)ev->exit.signal;
}

static const struct mbx_exit_info *exit_of(const mbx_event *ev)
{
	return (ev && (ev->kind == MBX_EVENT_EXIT || ev->kind == MBX_EVENT_TIMED_OUT)) ? &ev->exit : NULL;
}

uint64_t mbx_event_cpu_time_us(const mbx_event *ev)
{
	return exit_of(ev) ? exit_of(ev)->cpu_us : 0;
}

uint64_t mbx_event_peak_memory_bytes(const mbx_event *ev)
{
	return exit_of(ev) ? exit_of(ev)->maxrss : 0;
}

uint64_t mbx_event_elapsed_us(const mbx_event *ev)
{
	return exit_of(ev) ? exit_of(ev)->elapsed_us : 0;
}

void mbx_event_free(mbx_event *ev)
{
	mbx__event_free(ev);
}

/* Sends a process-directed message after the checks common to all. */
static int proc_send(mbx_process *p, uint16_t type, const void *data, size_t len, uint32_t a, uint32_t b, mbx_error **err)
{
	struct mbx_client *c;
	int rc = proc_client(p, &c, err);

	if (rc < 0)
		return rc;
	/* What the sandbox said about an earlier message of this process. */
	rc = mbx__client_take_error(p->cp, err);
	if (rc < 0)
		return rc;
	if (p->ended || p->cp->ended)
		return mbx__error_set(err, MBX_ESTATE, 0, NULL, "process %u has ended", p->id);
	rc = mbx__client_proc_send(c, p->cp, type, data, len, a, b, err);
	return rc < 0 ? mbx__sandbox_after(p->sb, c, rc, err) : MBX_OK;
}

/* Writes stdin within the sandbox's credit, waiting for more until
 * deadline_us (0: not at all). */
static int write_stdin(mbx_process *p, const void *data, size_t len, size_t *written, uint64_t deadline_us, mbx_error **err)
{
	struct mbx_client *c;
	int rc;

	*written = 0;
	rc = proc_client(p, &c, err);
	if (rc < 0)
		return rc;
	if (!p->cp->has_stdin)
		return mbx__error_set(err, MBX_ESTATE, 0, NULL, "process %u has no stdin: spawn it with mbx_spawn_options_set_stdin()", p->id);
	if (data == NULL && len > 0)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "stdin data is NULL");
	if (p->ended)
		return mbx__error_set(err, MBX_ESTATE, 0, NULL, "process %u has ended", p->id);
	rc = mbx__client_write_stdin(c, p->cp, data, len, written, deadline_us, 0, err);
	return rc < 0 ? mbx__sandbox_after(p->sb, c, rc, err) : rc;
}

static int do_proc_write_stdin(mbx_process *p, const void *data, size_t len, mbx_error **err)
{
	const uint8_t *d = data;
	size_t done = 0;

	/* Forever is a sequence of long waits, as in mbx_process_next_event(). */
	for (;;) {
		size_t n = 0;
		int rc = write_stdin(p, d ? d + done : d, len - done, &n, mbx__now_us() + 60000000u, err);

		done += n;
		if (rc < 0 || done == len)
			return rc;
	}
}

static int do_proc_write_stdin_some(mbx_process *p, const void *data, size_t len, size_t *written, mbx_error **err)
{
	size_t n = 0;
	int rc;

	if (written == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_process_write_stdin_some: written is NULL");
	rc = write_stdin(p, data, len, &n, 0, err);
	*written = n;
	return rc;
}

static int do_proc_close_stdin(mbx_process *p, mbx_error **err)
{
	if (p && p->cp && !p->cp->has_stdin)
		return mbx__error_set(err, MBX_ESTATE, 0, NULL, "process %u has no stdin", p->id);
	return proc_send(p, MBX_MSG_STDIN_CLOSE, NULL, 0, 0, 0, err);
}

static int do_proc_signal(mbx_process *p, int sig, mbx_error **err)
{
	if (sig <= 0 || sig > 64)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "signal %d is not a signal number", sig);
	return proc_send(p, MBX_MSG_SIGNAL, NULL, 0, (uint32_t)sig, 0, err);
}

static int do_proc_kill(mbx_process *p, mbx_error **err)
{
	return proc_send(p, MBX_MSG_KILL, NULL, 0, 0, 0, err);
}

static int do_proc_resize(mbx_process *p, uint16_t rows, uint16_t cols, mbx_error **err)
{
	if (p && p->cp && !p->cp->pty)
		return mbx__error_set(err, MBX_ESTATE, 0, NULL, "process %u has no terminal", p->id);
	if (rows == 0 || cols == 0 || rows > 4096 || cols > 4096)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "terminal size %ux%u is out of range (1..4096)", rows, cols);
	return proc_send(p, MBX_MSG_RESIZE, NULL, 0, rows, cols, err);
}

static int do_proc_wait(mbx_process *p, int timeout_ms, mbx_result **out, mbx_error **err)
{
	struct mbx_exec_req req = { 0 };
	struct mbx_client *c;
	mbx_result *res;
	uint64_t deadline;
	int rc;

	if (out == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_process_wait: out is NULL");
	*out = NULL;
	rc = proc_client(p, &c, err);
	if (rc < 0)
		return rc;
	if (p->ended)
		return mbx__error_set(err, MBX_ESTATE, 0, NULL, "process %u has ended and its exit was taken as an event", p->id);
	if (p->partial == NULL) {
		p->partial = calloc(1, sizeof(*p->partial));
		if (p->partial == NULL)
			return mbx__error_oom(err);
		p->partial->isolation = p->sb->ops->isolation;
		mbx__sandbox_result_layers(p->sb, p->partial);
	}
	res = p->partial;
	req.output_limit = p->sb->cfg->output_limit;
	deadline = deadline_of(timeout_ms);
	for (;;) {
		mbx_event *ev = NULL;

		rc = mbx__client_next_event(c, p->cp, timeout_ms < 0 ? mbx__now_us() + 60000000u : deadline, &ev, err);
		if (rc < 0)
			return mbx__sandbox_after(p->sb, c, rc, err);
		/* Another thread's call on the process may have taken its exit
		 * while this one slept. */
		res = p->partial;
		if (res == NULL || p->ended) {
			mbx__event_free(ev);
			return mbx__error_set(err, MBX_ESTATE, 0, NULL, "process %u has ended and another call took its exit", p->id);
		}
		if (ev == NULL) {
			/* A wait may end early (stdin credit came): wait on. */
			if (timeout_ms < 0 || mbx__now_us() < deadline)
				continue;
			return mbx__error_set(err, MBX_ETIMEDOUT, 0, NULL, "process %u still runs after %d ms", p->id, timeout_ms);
		}
		if (ev->kind == MBX_EVENT_STDOUT || ev->kind == MBX_EVENT_STDERR) {
			struct mbx_buf *b = ev->kind == MBX_EVENT_STDOUT ? &res->out : &res->err;
			int *trunc = ev->kind == MBX_EVENT_STDOUT ? &res->out_truncated : &res->err_truncated;
			size_t keep = ev->len;

			if (b->len + keep > req.output_limit) {
				keep = b->len < req.output_limit ? (size_t)(req.output_limit - b->len) : 0;
				*trunc = 1;
			}
			if (keep && mbx__buf_append(b, ev->data, keep) < 0) {
				mbx__event_free(ev);
				return mbx__error_oom(err);
			}
			mbx__event_free(ev);
			continue;
		}
		res->exit_code = ev->exit.exit_code;
		res->signal = (int)ev->exit.signal;
		res->timed_out = ev->kind == MBX_EVENT_TIMED_OUT;
		res->cpu_us = ev->exit.cpu_us;
		res->peak_memory = ev->exit.maxrss;
		res->elapsed_us = ev->exit.elapsed_us;
		mbx__event_free(ev);
		p->ended = 1;
		*out = res;
		p->partial = NULL;
		return MBX_OK;
	}
}

uint32_t mbx_process_id(const mbx_process *p)
{
	return p ? p->id : 0;
}

int mbx_process_running(const mbx_process *p)
{
	mbx_sandbox *sb = p ? p->sb : NULL;
	int running;

	if (sb == NULL)
		return 0;
	mbx__sandbox_enter(sb);
	running = !p->ended && p->cp && !p->cp->ended;
	mbx__sandbox_leave(sb);
	return running;
}

void mbx_process_free(mbx_process *p)
{
	struct mbx_client *c = NULL;
	mbx_sandbox *sb;

	if (p == NULL)
		return;
	sb = p->sb;
	if (sb)
		mbx__sandbox_enter(sb);
	if (sb && p->cp && mbx__sandbox_client(sb, MBX_BACKEND_CAP_PROCESSES, "processes", &c, NULL) == MBX_OK)
		mbx__client_release(c, p->cp);
	unlink_handle(p);
	if (sb)
		mbx__sandbox_leave(sb);
	mbx_result_free(p->partial);
	free(p);
}

int mbx_sandbox_event_fd(mbx_sandbox *sb, mbx_error **err)
{
	struct mbx_client *c;
	int rc;

	if (sb == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_sandbox_event_fd: sandbox is NULL");
	if (!mbx__sandbox_locks(sb))
		return mbx__sandbox_client(sb, MBX_BACKEND_CAP_PROCESSES, "spawning processes (and so their event descriptor)", &c, err);
	mbx__sandbox_enter(sb);
	rc = mbx__sandbox_client(sb, MBX_BACKEND_CAP_PROCESSES, "spawning processes (and so their event descriptor)", &c, err);
	if (rc == MBX_OK)
		rc = mbx__client_event_fd(c, err);
	mbx__sandbox_leave(sb);
	return rc;
}

static int do_process(mbx_sandbox *sb, uint32_t id, mbx_process **out, mbx_error **err)
{
	struct mbx_client *c;
	struct mbx_cproc *cp;
	mbx_process *p;
	int rc;

	if (out == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_sandbox_process: out is NULL");
	*out = NULL;
	rc = mbx__sandbox_client(sb, MBX_BACKEND_CAP_PROCESSES, "processes", &c, err);
	if (rc < 0)
		return rc;
	cp = mbx__client_find(c, id);
	if (cp == NULL || cp->ended)
		return mbx__error_set(err, MBX_ENOTFOUND, 0, NULL, "no running process %u in sandbox %s", id, sb->id);
	if (cp->claimed)
		return mbx__error_set(err, MBX_EEXIST, 0, NULL, "process %u already has a handle", id);
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return mbx__error_oom(err);
	/* Its output was dropped while nobody held it; from now on it flows:
	 * any credit (even none) tells the agent the process is held again. */
	rc = mbx__client_proc_send(c, cp, MBX_MSG_CREDIT, NULL, 0, 0, 0, err);
	if (rc < 0) {
		free(p);
		return rc;
	}
	cp->claimed = 1;
	link_handle(sb, p);
	p->cp = cp;
	p->id = id;
	*out = p;
	return MBX_OK;
}

static int list_one(const struct mbx_proc_info *info, void *arg)
{
	mbx_proc_list *l = arg;
	uint32_t *ids = realloc(l->ids, (l->n + 1) * sizeof(*ids));
	char **progs;
	uint64_t *ages;

	if (ids == NULL)
		return -2;
	l->ids = ids;
	progs = realloc(l->programs, (l->n + 1) * sizeof(*progs));
	if (progs == NULL)
		return -2;
	l->programs = progs;
	ages = realloc(l->ages, (l->n + 1) * sizeof(*ages));
	if (ages == NULL)
		return -2;
	l->ages = ages;
	l->programs[l->n] = strndup((const char *)info->program, info->program_len);
	if (l->programs[l->n] == NULL)
		return -2;
	l->ids[l->n] = info->id;
	l->ages[l->n] = info->age_ms;
	l->n++;
	return 0;
}

static int do_list_processes(mbx_sandbox *sb, mbx_proc_list **out, mbx_error **err)
{
	struct mbx_client *c;
	struct mbx_frame f;
	mbx_proc_list *l;
	uint32_t id;
	int rc;

	if (out == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_sandbox_list_processes: out is NULL");
	*out = NULL;
	rc = mbx__sandbox_client(sb, MBX_BACKEND_CAP_PROCESSES, "listing processes", &c, err);
	if (rc < 0)
		return rc;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return mbx__error_oom(err);
	id = c->next_id++;
	mbx_proto_begin(&c->wb, MBX_MSG_LIST, id);
	mbx_proto_end(&c->wb);
	rc = mbx__client_request(c, id, mbx__now_us() + 10000000u, &f, err);
	if (rc == MBX_OK && f.type != MBX_MSG_PROC_LIST) {
		c->broken = 1;
		rc = mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent answered LIST with message type %u", f.type);
	}
	if (rc == MBX_OK) {
		int drc = mbx_proto_decode_proc_list(&f, list_one, l);

		if (drc == -2)
			rc = mbx__error_oom(err);
		else if (drc < 0)
			rc = mbx__error_set(err, MBX_EPROTO, 0, NULL, "the sandbox agent sent a malformed process list");
	}
	if (rc < 0) {
		mbx_proc_list_free(l);
		return mbx__sandbox_after(sb, c, rc, err);
	}
	*out = l;
	return MBX_OK;
}

size_t mbx_proc_list_count(const mbx_proc_list *l)
{
	return l ? l->n : 0;
}

uint32_t mbx_proc_list_id(const mbx_proc_list *l, size_t i)
{
	return (l && i < l->n) ? l->ids[i] : 0;
}

const char *mbx_proc_list_program(const mbx_proc_list *l, size_t i)
{
	return (l && i < l->n) ? l->programs[i] : NULL;
}

uint64_t mbx_proc_list_age_ms(const mbx_proc_list *l, size_t i)
{
	return (l && i < l->n) ? l->ages[i] : 0;
}

void mbx_proc_list_free(mbx_proc_list *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->programs[i]);
	free(l->programs);
	free(l->ids);
	free(l->ages);
	free(l);
}

/* ---- the public calls: each runs inside its sandbox (mbx__sandbox_enter()),
 * so that several threads may use one sandbox and its processes (see the
 * top of src/core/sandbox.c) ---- */

int mbx_sandbox_spawn(mbx_sandbox *sb, const char *const *argv, const mbx_spawn_options *o, mbx_process **out, mbx_error **err)
{
	mbx_sandbox *sbx = sb;
	int rc;

	if (sbx == NULL || !mbx__sandbox_locks(sbx))
		return do_spawn(sb, argv, o, out, err);
	mbx__sandbox_enter(sbx);
	rc = do_spawn(sb, argv, o, out, err);
	mbx__sandbox_leave(sbx);
	return rc;
}

int mbx_process_next_event(mbx_process *p, int timeout_ms, mbx_event **out, mbx_error **err)
{
	mbx_sandbox *sbx = p ? p->sb : NULL;
	int rc;

	if (sbx == NULL || !mbx__sandbox_locks(sbx))
		return do_proc_next_event(p, timeout_ms, out, err);
	mbx__sandbox_enter(sbx);
	rc = do_proc_next_event(p, timeout_ms, out, err);
	mbx__sandbox_leave(sbx);
	return rc;
}

int mbx_process_write_stdin(mbx_process *p, const void *data, size_t len, mbx_error **err)
{
	mbx_sandbox *sbx = p ? p->sb : NULL;
	int rc;

	if (sbx == NULL || !mbx__sandbox_locks(sbx))
		return do_proc_write_stdin(p, data, len, err);
	mbx__sandbox_enter(sbx);
	rc = do_proc_write_stdin(p, data, len, err);
	mbx__sandbox_leave(sbx);
	return rc;
}

int mbx_process_write_stdin_some(mbx_process *p, const void *data, size_t len, size_t *written, mbx_error **err)
{
	mbx_sandbox *sbx = p ? p->sb : NULL;
	int rc;

	if (sbx == NULL || !mbx__sandbox_locks(sbx))
		return do_proc_write_stdin_some(p, data, len, written, err);
	mbx__sandbox_enter(sbx);
	rc = do_proc_write_stdin_some(p, data, len, written, err);
	mbx__sandbox_leave(sbx);
	return rc;
}

int mbx_process_close_stdin(mbx_process *p, mbx_error **err)
{
	mbx_sandbox *sbx = p ? p->sb : NULL;
	int rc;

	if (sbx == NULL || !mbx__sandbox_locks(sbx))
		return do_proc_close_stdin(p, err);
	mbx__sandbox_enter(sbx);
	rc = do_proc_close_stdin(p, err);
	mbx__sandbox_leave(sbx);
	return rc;
}

int mbx_process_signal(mbx_process *p, int sig, mbx_error **err)
{
	mbx_sandbox *sbx = p ? p->sb : NULL;
	int rc;

	if (sbx == NULL || !mbx__sandbox_locks(sbx))
		return do_proc_signal(p, sig, err);
	mbx__sandbox_enter(sbx);
	rc = do_proc_signal(p, sig, err);
	mbx__sandbox_leave(sbx);
	return rc;
}

int mbx_process_kill(mbx_process *p, mbx_error **err)
{
	mbx_sandbox *sbx = p ? p->sb : NULL;
	int rc;

	if (sbx == NULL || !mbx__sandbox_locks(sbx))
		return do_proc_kill(p, err);
	mbx__sandbox_enter(sbx);
	rc = do_proc_kill(p, err);
	mbx__sandbox_leave(sbx);
	return rc;
}

int mbx_process_resize(mbx_process *p, uint16_t rows, uint16_t cols, mbx_error **err)
{
	mbx_sandbox *sbx = p ? p->sb : NULL;
	int rc;

	if (sbx == NULL || !mbx__sandbox_locks(sbx))
		return do_proc_resize(p, rows, cols, err);
	mbx__sandbox_enter(sbx);
	rc = do_proc_resize(p, rows, cols, err);
	mbx__sandbox_leave(sbx);
	return rc;
}

int mbx_process_wait(mbx_process *p, int timeout_ms, mbx_result **out, mbx_error **err)
{
	mbx_sandbox *sbx = p ? p->sb : NULL;
	int rc;

	if (sbx == NULL || !mbx__sandbox_locks(sbx))
		return do_proc_wait(p, timeout_ms, out, err);
	mbx__sandbox_enter(sbx);
	rc = do_proc_wait(p, timeout_ms, out, err);
	mbx__sandbox_leave(sbx);
	return rc;
}

int mbx_sandbox_process(mbx_sandbox *sb, uint32_t id, mbx_process **out, mbx_error **err)
{
	mbx_sandbox *sbx = sb;
	int rc;

	if (sbx == NULL || !mbx__sandbox_locks(sbx))
		return do_process(sb, id, out, err);
	mbx__sandbox_enter(sbx);
	rc = do_process(sb, id, out, err);
	mbx__sandbox_leave(sbx);
	return rc;
}

int mbx_sandbox_list_processes(mbx_sandbox *sb, mbx_proc_list **out, mbx_error **err)
{
	mbx_sandbox *sbx = sb;
	int rc;

	if (sbx == NULL || !mbx__sandbox_locks(sbx))
		return do_list_processes(sb, out, err);
	mbx__sandbox_enter(sbx);
	rc = do_list_processes(sb, out, err);
	mbx__sandbox_leave(sbx);
	return rc;
}
