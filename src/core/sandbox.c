/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sandbox lifecycle and dispatch to the backends, with Auto routing.
 *
 * Threads (issue 12). Every call on one sandbox and on its processes may
 * come from several threads at once. The design:
 *
 *  - A sandbox with an agent channel (os, microvm) has one lock, sb->mu.
 *    A public call takes it in mbx__sandbox_enter() and gives it back in
 *    mbx__sandbox_leave(); in between it builds and sends its messages and
 *    reads the sandbox's state. It does not sleep with the lock: a wait for
 *    a reply, an event, stdin credit or an execute's end goes through the
 *    client (src/backend/client.c, see the top of that file), which drops
 *    the lock while it polls or sleeps; whoever reads the channel hands
 *    each frame to the request or process queue it belongs to. So a
 *    next_event(-1) in one thread never holds up an execute in another.
 *
 *  - A backend without an agent (wasm) needs no sandbox lock: each execute
 *    runs in its own Wasmtime store in the calling thread, the file API
 *    works on the host directory with plain system calls, and the one piece
 *    of shared state, the workspace made on first use, has the backend's own
 *    lock (src/backend/wasm/wasm.c).
 *
 *  - When the channel breaks, the call that sees it marks the sandbox
 *    doomed; the other threads' waits fail too (the client wakes them), and
 *    the last call to leave destroys the sandbox. A lone caller sees what it
 *    saw before: the sandbox is destroyed when its call returns.
 *
 *  - Snapshot and fork need the sandbox to themselves (a microVM's channel
 *    is closed and reopened under them, the os backend's fork sends LAYERS
 *    on the channel directly): they fail with MBX_ESTATE while other calls
 *    are inside, else keep the lock to the end (the client still drops it
 *    while it polls) and hold new calls back (sb->excl, sb->cv); their own
 *    nested calls (the file API) only count.
 *
 *  - Not allowed, as with any object freed by its owner: mbx_sandbox_free()
 *    or mbx_sandbox_destroy() while other calls on the sandbox or its
 *    processes run, and any call on a process after mbx_process_free() (or
 *    during it, from another thread). docs/api.md says so.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "backend/client.h"
#include "snapshot.h"

/* Suffix test for Auto routing of Wasm programs. */
static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

#if !MBX_FEATURE_WASM
static int backend_unavailable(mbx_isolation_t isolation, const char *why, mbx_error **err)
{
	const char *name = mbx_isolation_name(isolation);

	mbx__error_set(err, MBX_ENOTSUP, 0, name, "the %s backend is unavailable: %s", name, why);
	mbx__error_suggest(err, "run `mimobox doctor` to see which backends this host and build provide");
	return MBX_ENOTSUP;
}
#endif

/*
 * Picks the backend for a config and, for one-shot runs, the program.
 * Explicit levels are honoured or fail; Auto sends Untrusted to the microVM
 * (failing closed, never falling back to a weaker backend), .wasm/.wat
 * programs to Wasm, and everything else to the os backend.
 */
static int route(const mbx_config *cfg, const char *program, const struct mbx_backend_ops **out, mbx_error **err)
{
	mbx_isolation_t want = cfg->isolation;

	if (want == MBX_ISOLATION_AUTO) {
		if (cfg->trust == MBX_TRUST_UNTRUSTED) {
			/* Never a weaker backend: a microVM that cannot start is
			 * the caller's error to see. */
			*out = &mbx__microvm_backend;
			return MBX_OK;
		}
		if (program && (ends_with(program, ".wasm") || ends_with(program, ".wat")))
			want = MBX_ISOLATION_WASM;
		else
			want = MBX_ISOLATION_OS;
	}
	switch (want) {
	case MBX_ISOLATION_OS:
		*out = &mbx__linux_backend;
		return MBX_OK;
	case MBX_ISOLATION_WASM:
#if MBX_FEATURE_WASM
		*out = &mbx__wasm_backend;
		return MBX_OK;
#else
		return backend_unavailable(want, "this build has no Wasmtime support", err);
#endif
	case MBX_ISOLATION_MICROVM:
		*out = &mbx__microvm_backend;
		return MBX_OK;
	default:
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "unknown isolation level %u", want);
	}
}

/* Frees what sandbox_build() allocated around the backend's state. */
static void sandbox_release(mbx_sandbox *sb)
{
	if (sb->ev_kept) {
		close(sb->ev_epfd);
		close(sb->ev_evfd);
	}
	mbx__net_free(sb->net);
	mbx_config_free(sb->cfg);
	pthread_cond_destroy(&sb->cv);
	pthread_mutex_destroy(&sb->mu);
	free(sb);
}

/* Destroys the sandbox (lock held or not needed). */
static int destroy_now(mbx_sandbox *sb, mbx_error **err)
{
	int rc;

	if (sb->destroyed)
		return MBX_OK;
	sb->destroyed = 1;
	/* A waiter on the event descriptor wakes up; the descriptor stays
	 * valid (not a number another open could reuse) until the free. */
	if (sb->ops->client != NULL && sb->priv != NULL && sb->ops->client(sb) != NULL)
		sb->ev_kept = mbx__client_take_event_fd(sb->ops->client(sb), &sb->ev_epfd, &sb->ev_evfd);
	rc = sb->ops->destroy(sb, err);
	mbx__log(sb->cfg, MBX_LOG_INFO, "sandbox %s destroyed", sb->id);
	return rc;
}

int mbx__sandbox_locks(const mbx_sandbox *sb)
{
	return sb->ops->client != NULL;
}

/* Whether this thread runs an exclusive call on sb: it holds sb->mu
 * (except while the client polls), and its nested calls only count. */
static int exclusive_mine(mbx_sandbox *sb)
{
	return __atomic_load_n(&sb->excl, __ATOMIC_ACQUIRE) && pthread_equal(sb->excl_owner, pthread_self());
}

void mbx__sandbox_enter(mbx_sandbox *sb)
{
	if (exclusive_mine(sb)) {
		sb->calls++;
		return;
	}
	pthread_mutex_lock(&sb->mu);
	while (sb->excl)
		pthread_cond_wait(&sb->cv, &sb->mu);
	sb->calls++;
}

void mbx__sandbox_leave(mbx_sandbox *sb)
{
	if (exclusive_mine(sb)) {
		sb->calls--;
		return;
	}
	if (--sb->calls == 0 && sb->doomed && !sb->excl)
		destroy_now(sb, NULL);
	pthread_mutex_unlock(&sb->mu);
}

/*
 * Starts a call that needs the sandbox to itself (see the top): it keeps
 * the lock until exclusive_end(), so the backend may drive the channel
 * directly (a microVM's reconnect, the os backend's LAYERS request); other
 * threads that get the lock while the client polls find sb->excl and wait.
 */
static int exclusive_begin(mbx_sandbox *sb, const char *what, mbx_error **err)
{
	pthread_mutex_lock(&sb->mu);
	while (sb->excl)
		pthread_cond_wait(&sb->cv, &sb->mu);
	if (sb->calls > 0) {
		unsigned n = sb->calls;

		pthread_mutex_unlock(&sb->mu);
		mbx__error_set(err, MBX_ESTATE, 0, NULL, "%s of sandbox %s needs it to itself, and %u other call(s) on it are running",
			       what, sb->id, n);
		mbx__error_suggest(err, "wait for the other threads' calls on the sandbox and its processes to return, then retry");
		return MBX_ESTATE;
	}
	sb->excl_owner = pthread_self();
	__atomic_store_n(&sb->excl, 1, __ATOMIC_RELEASE);
	/* The backend may use the client directly from here: under this lock. */
	if (sb->ops->client != NULL && sb->ops->client(sb) != NULL && sb->ops->client(sb)->mu == NULL)
		sb->ops->client(sb)->mu = &sb->mu;
	return MBX_OK;
}

static void exclusive_end(mbx_sandbox *sb)
{
	__atomic_store_n(&sb->excl, 0, __ATOMIC_RELEASE);
	if (sb->doomed)
		destroy_now(sb, NULL);
	pthread_cond_broadcast(&sb->cv);
	pthread_mutex_unlock(&sb->mu);
}

/*
 * Builds a sandbox of `cfg` (defaults when NULL) on the backend `ops` (NULL:
 * routed by the config and program): ops->create, or `build` when given
 * (restore, fork). On failure nothing is left behind.
 */
static int sandbox_build(mbx_sandbox **out, const mbx_config *cfg, const char *program,
			 const struct mbx_backend_ops *want, int (*build)(mbx_sandbox *, void *, mbx_error **), void *arg,
			 mbx_error **err)
{
	mbx_config *defaults = NULL;
	mbx_sandbox *sb;
	const struct mbx_backend_ops *ops = NULL;
	int rc;

	if (out == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_sandbox_new: out is NULL");
	*out = NULL;
	if (cfg == NULL) {
		rc = mbx_config_new(&defaults, err);
		if (rc < 0)
			return rc;
		cfg = defaults;
	}
	rc = mbx__config_validate(cfg, err);
	if (rc == MBX_OK)
		rc = route(cfg, program, &ops, err);
	if (rc == MBX_OK && want && ops != want)
		rc = mbx__error_set(err, MBX_EINVAL, 0, NULL, "the config selects the %s backend, the snapshot is of the %s backend",
				    ops->name, want->name);
	if (rc < 0) {
		mbx_config_free(defaults);
		return rc;
	}
	sb = calloc(1, sizeof(*sb));
	if (sb == NULL) {
		mbx_config_free(defaults);
		return mbx__error_oom(err);
	}
	pthread_mutex_init(&sb->mu, NULL);
	pthread_cond_init(&sb->cv, NULL);
	rc = mbx__config_copy(cfg, &sb->cfg, err);
	mbx_config_free(defaults);
	if (rc < 0) {
		sandbox_release(sb);
		return rc;
	}
	if (mbx__random_hex(sb->id, 8) < 0) {
		sandbox_release(sb);
		return mbx__error_set(err, MBX_ESYS, 0, NULL, "getrandom failed");
	}
	sb->ops = ops;
	rc = mbx__net_new(&sb->net);
	if (rc < 0)
		mbx__error_oom(err);
	else
		rc = build ? build(sb, arg, err) : ops->create(sb, err);
	if (rc < 0) {
		mbx__error_wrap(err, "create %s sandbox", ops->name);
		mbx__sandbox_orphan_processes(sb);
		sandbox_release(sb);
		return rc;
	}
	mbx__log(sb->cfg, MBX_LOG_INFO, "sandbox %s created (%s backend)", sb->id, ops->name);
	*out = sb;
	return MBX_OK;
}

static int sandbox_create(mbx_sandbox **out, const mbx_config *cfg, const char *program, mbx_error **err)
{
	return sandbox_build(out, cfg, program, NULL, NULL, NULL, err);
}

/* The backend of a snapshot, or an error naming what is missing. */
static int snapshot_ops(mbx_isolation_t isolation, const struct mbx_backend_ops **out, mbx_error **err)
{
	mbx_config cfg = { 0 };

	cfg.isolation = isolation;
	return route(&cfg, NULL, out, err);
}

static int build_restore(mbx_sandbox *sb, void *arg, mbx_error **err)
{
	const struct mbx_snapshot *snap = arg;
	int rc;

	sb->restoring = snap;
	rc = sb->ops->restore(sb, snap->payload.data, snap->payload.len, err);
	sb->restoring = NULL;
	return rc;
}

int mbx_sandbox_from_snapshot(mbx_sandbox **out, const mbx_snapshot *snap, const mbx_config *cfg, mbx_error **err)
{
	const struct mbx_backend_ops *ops = NULL;
	int rc;

	if (out == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_sandbox_from_snapshot: out is NULL");
	*out = NULL;
	if (snap == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_sandbox_from_snapshot: snapshot is NULL");
	rc = snapshot_ops(snap->isolation, &ops, err);
	if (rc < 0)
		return rc;
	if (!(ops->caps & MBX_BACKEND_CAP_SNAPSHOT) || ops->restore == NULL)
		return mbx__error_set(err, MBX_ENOTSUP, 0, ops->name, "snapshots are not available on the %s backend", ops->name);
	rc = sandbox_build(out, cfg ? cfg : snap->cfg, NULL, ops, build_restore, (void *)snap, err);
	if (rc < 0)
		mbx__error_wrap(err, "restore a snapshot");
	return rc;
}

static int build_fork(mbx_sandbox *child, void *arg, mbx_error **err)
{
	mbx_sandbox *parent = arg;

	return parent->ops->fork(parent, child, err);
}

int mbx__sandbox_exclusive_begin(mbx_sandbox *sb, const char *what, mbx_error **err)
{
	return exclusive_begin(sb, what, err);
}

void mbx__sandbox_exclusive_end(mbx_sandbox *sb)
{
	exclusive_end(sb);
}

int mbx_sandbox_fork(mbx_sandbox **out, mbx_sandbox *sb, mbx_error **err)
{
	int rc;

	if (out == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_sandbox_fork: out is NULL");
	*out = NULL;
	if (sb == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_sandbox_fork: sandbox is NULL");
	if (sb->destroyed)
		return mbx__error_set(err, MBX_ESTATE, 0, NULL, "sandbox %s was destroyed: create a new one", sb->id);
	if (!mbx__backend_has(sb, MBX_BACKEND_CAP_FORK) || sb->ops->fork == NULL)
		return mbx__error_set(err, MBX_ENOTSUP, 0, sb->ops->name, "fork is not available on the %s backend", sb->ops->name);
	rc = exclusive_begin(sb, "a fork", err);
	if (rc < 0)
		return rc;
	rc = sandbox_build(out, sb->cfg, NULL, sb->ops, build_fork, sb, err);
	if (rc < 0) {
		mbx__error_wrap(err, "fork sandbox %s", sb->id);
		mbx__sandbox_after(sb, sb->ops->client ? sb->ops->client(sb) : NULL, rc, err);
	}
	exclusive_end(sb);
	return rc;
}

int mbx_sandbox_new(mbx_sandbox **out, const mbx_config *cfg, mbx_error **err)
{
	return sandbox_create(out, cfg, NULL, err);
}

static int exec_entered(mbx_sandbox *sb, const char *const *argv, const mbx_exec_options *opts, mbx_result **out,
			mbx_error **err);

int mbx_sandbox_exec(mbx_sandbox *sb, const char *const *argv, const mbx_exec_options *opts, mbx_result **out, mbx_error **err)
{
	int rc;

	if (out == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_sandbox_exec: out is NULL");
	*out = NULL;
	if (sb == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_sandbox_exec: sandbox is NULL");
	if (argv == NULL || argv[0] == NULL || argv[0][0] == '\0')
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "no program given: argv is empty");
	if (!mbx__sandbox_locks(sb)) {
		if (sb->destroyed)
			return mbx__error_set(err, MBX_ESTATE, 0, NULL, "sandbox %s was destroyed: create a new one", sb->id);
		return exec_entered(sb, argv, opts, out, err);
	}
	mbx__sandbox_enter(sb);
	if (sb->destroyed || sb->doomed)
		rc = mbx__error_set(err, MBX_ESTATE, 0, NULL, "sandbox %s was destroyed: create a new one", sb->id);
	else
		rc = exec_entered(sb, argv, opts, out, err);
	mbx__sandbox_leave(sb);
	return rc;
}

/* mbx_sandbox_exec() once the sandbox was entered (or needs no lock). */
static int exec_entered(mbx_sandbox *sb, const char *const *argv, const mbx_exec_options *opts, mbx_result **out,
			mbx_error **err)
{
	struct mbx_exec_req req = { 0 };
	mbx_result *res;
	char **envp = NULL;
	uint64_t start;
	int rc;

	rc = mbx__sandbox_env(sb, opts ? &opts->env : NULL, &envp, err);
	if (rc < 0)
		return rc;
	res = calloc(1, sizeof(*res));
	if (res == NULL) {
		mbx__strv_free(envp);
		return mbx__error_oom(err);
	}
	req.argv = (char *const *)argv;
	req.envp = envp;
	req.cwd = (opts && opts->workdir) ? opts->workdir : sb->cfg->workdir;
	req.timeout_ms = (opts && opts->timeout_ms) ? opts->timeout_ms : sb->cfg->timeout_ms;
	req.output_limit = sb->cfg->output_limit;
	req.output_fn = opts ? opts->output_fn : NULL;
	req.output_userdata = opts ? opts->output_userdata : NULL;
	req.stdin_data = opts ? opts->stdin_data : NULL;
	req.stdin_len = opts ? opts->stdin_len : 0;
	req.last = (opts && opts->last) || sb->oneshot;
	res->isolation = sb->ops->isolation;
	res->limits_mech = sb->limits_mech;
	res->limits_partial = sb->limits_partial;
	mbx__sandbox_result_layers(sb, res);
	start = mbx__now_us();
	rc = sb->ops->exec(sb, &req, res, err);
	res->elapsed_us = mbx__now_us() - start;
	mbx__strv_free(envp);
	if (rc < 0) {
		mbx_result_free(res);
		return rc;
	}
	*out = res;
	return MBX_OK;
}

int mbx__sandbox_client(mbx_sandbox *sb, uint32_t need, const char *what, struct mbx_client **out, mbx_error **err)
{
	*out = NULL;
	if (sb == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "%s: sandbox is NULL", what);
	if (sb->destroyed || sb->doomed)
		return mbx__error_set(err, MBX_ESTATE, 0, NULL, "sandbox %s was destroyed: create a new one", sb->id);
	if (!mbx__backend_has(sb, need) || sb->ops->client == NULL || (*out = sb->ops->client(sb)) == NULL) {
		mbx__error_set(err, MBX_ENOTSUP, 0, sb->ops->name, "%s is not available on the %s backend", what, sb->ops->name);
		return MBX_ENOTSUP;
	}
	/* From now on the client runs under the sandbox's lock (the caller
	 * entered the sandbox). */
	if ((*out)->mu == NULL)
		(*out)->mu = &sb->mu; /* once: a reader polling without the lock reads it */
	return MBX_OK;
}

int mbx__sandbox_after(mbx_sandbox *sb, struct mbx_client *c, int rc, mbx_error **err)
{
	if (rc < 0 && c != NULL && c->broken && !sb->destroyed && !sb->doomed) {
		if (sb->ops->explain_broken)
			sb->ops->explain_broken(sb, err);
		mbx__error_wrap(err, "sandbox %s stopped working and was destroyed", sb->id);
		/* Destroyed when the last call leaves (mbx__sandbox_leave()),
		 * or now when no call is inside. */
		sb->doomed = 1;
		if (sb->calls == 0 && !sb->excl)
			destroy_now(sb, NULL);
	}
	return rc;
}

int mbx__sandbox_env(mbx_sandbox *sb, const struct mbx_env *call, char ***out, mbx_error **err)
{
	return mbx__env_merge(&sb->cfg->env, call, out, err);
}

int mbx_sandbox_exec_command(mbx_sandbox *sb, const char *command, const mbx_exec_options *opts, mbx_result **out, mbx_error **err)
{
	char **argv = NULL;
	int rc;

	if (out)
		*out = NULL;
	rc = mbx__cmdline_split(command, &argv, err);
	if (rc < 0)
		return rc;
	rc = mbx_sandbox_exec(sb, (const char *const *)argv, opts, out, err);
	mbx__strv_free(argv);
	return rc;
}

/* Interpreters of mbx_sandbox_exec_code(): language, program, code flag. */
static const struct {
	const char *language;
	const char *program;
	const char *flag;
} interpreters[] = {
	{ "sh", "sh", "-c" },
	{ "bash", "bash", "-c" },
	{ "python3", "python3", "-c" },
	{ "python", "python3", "-c" },
	{ "node", "node", "-e" },
	{ "javascript", "node", "-e" },
};

int mbx_sandbox_exec_code(mbx_sandbox *sb, const char *language, const char *code, const mbx_exec_options *opts, mbx_result **out, mbx_error **err)
{
	size_t i;
	int rc;

	if (out)
		*out = NULL;
	if (language == NULL || code == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "exec_code needs a language and code");
	for (i = 0; i < sizeof(interpreters) / sizeof(interpreters[0]); i++)
		if (strcmp(language, interpreters[i].language) == 0)
			break;
	if (i == sizeof(interpreters) / sizeof(interpreters[0]))
		return mbx__error_set(err, MBX_EINVAL, 0, NULL,
				      "unknown language `%s`: use sh, bash, python3 or node", language);
	const char *argv[] = { interpreters[i].program, interpreters[i].flag, code, NULL };

	rc = mbx_sandbox_exec(sb, argv, opts, out, err);
	if (rc == MBX_ENOTFOUND)
		mbx__error_suggest(err, "%s is not installed on the host, so the sandbox cannot see it: install it (e.g. apt-get install %s)",
				   interpreters[i].program, strcmp(interpreters[i].program, "node") == 0 ? "nodejs" : interpreters[i].program);
	return rc;
}

int mbx_sandbox_destroy(mbx_sandbox *sb, mbx_error **err)
{
	int rc;

	if (sb == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_sandbox_destroy: sandbox is NULL");
	pthread_mutex_lock(&sb->mu);
	rc = destroy_now(sb, err);
	pthread_mutex_unlock(&sb->mu);
	return rc;
}

int mbx_sandbox_reset(mbx_sandbox *sb, mbx_error **err)
{
	int rc;

	if (sb == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_sandbox_reset: sandbox is NULL");
	if (sb->destroyed)
		return mbx__error_set(err, MBX_ESTATE, 0, NULL, "sandbox %s was destroyed: it cannot be reset", sb->id);
	/* It kills every process (or, below, destroys the sandbox): no other
	 * thread's call may be inside. */
	rc = exclusive_begin(sb, "a reset", err);
	if (rc < 0)
		return rc;
	if (sb->ops->reset == NULL) {
		rc = mbx__error_set(err, MBX_ENOTSUP, 0, "reset", "the %s backend does not reset sandboxes: make a new one",
				    sb->ops->name);
		mbx__sandbox_orphan_processes(sb);
		destroy_now(sb, NULL);
		exclusive_end(sb);
		mbx__error_wrap(err, "reset");
		return rc;
	}
	/* Their processes die in the reset: later calls on the handles
	 * answer MBX_ESTATE. */
	mbx__sandbox_orphan_processes(sb);
	rc = sb->ops->reset(sb, err);
	if (rc < 0)
		/* Fail closed: a sandbox not proven new is never used again. */
		destroy_now(sb, NULL);
	else
		mbx__log(sb->cfg, MBX_LOG_INFO, "sandbox %s reset", sb->id);
	exclusive_end(sb);
	if (rc < 0)
		mbx__error_wrap(err, "reset");
	return rc;
}

void mbx_sandbox_free(mbx_sandbox *sb)
{
	if (sb == NULL)
		return;
	mbx_sandbox_destroy(sb, NULL);
	mbx__sandbox_orphan_processes(sb);
	sandbox_release(sb);
}

mbx_isolation_t mbx_sandbox_isolation(const mbx_sandbox *sb)
{
	return sb ? sb->ops->isolation : MBX_ISOLATION_AUTO;
}

const char *mbx_sandbox_id(const mbx_sandbox *sb)
{
	return sb ? sb->id : NULL;
}

uint32_t mbx_sandbox_layers(const mbx_sandbox *sb)
{
	return sb ? sb->layers : 0;
}

uint32_t mbx_sandbox_skipped(const mbx_sandbox *sb)
{
	return sb ? sb->skipped : 0;
}

void mbx__sandbox_result_layers(const mbx_sandbox *sb, mbx_result *res)
{
	res->layers = sb->layers;
	res->skipped = sb->skipped;
	memcpy(res->skip_reason, sb->skip_reason, sizeof(res->skip_reason));
}

/* The bit index of a single-bit layer, or -1. */
int mbx__layer_index(uint32_t layer)
{
	if (layer == 0 || (layer & (layer - 1)) != 0)
		return -1;
	return __builtin_ctz(layer);
}

uint64_t mbx_sandbox_oom_kills(mbx_sandbox *sb)
{
	uint64_t n = 0;

	if (sb == NULL || !mbx__backend_has(sb, MBX_BACKEND_CAP_OOM_COUNT) || sb->ops->oom_kills == NULL)
		return 0;
	if (mbx__sandbox_locks(sb))
		mbx__sandbox_enter(sb);
	if (!sb->destroyed && !sb->doomed)
		n = sb->ops->oom_kills(sb);
	if (mbx__sandbox_locks(sb))
		mbx__sandbox_leave(sb);
	return n;
}

const char *mbx_sandbox_skip_reason(const mbx_sandbox *sb, uint32_t layer)
{
	int i = mbx__layer_index(layer);

	if (sb == NULL || i < 0 || !(sb->skipped & layer))
		return NULL;
	return sb->skip_reason[i] ? sb->skip_reason[i] : "not available on this host";
}

const char *mbx_sandbox_limits_mechanism(const mbx_sandbox *sb)
{
	return (sb && sb->limits_mech) ? sb->limits_mech : "none";
}

const char *mbx_sandbox_limits_partial(const mbx_sandbox *sb)
{
	return sb ? sb->limits_partial : NULL;
}

int mbx_run(const mbx_config *cfg, const char *const *argv, const mbx_exec_options *opts, mbx_result **out, mbx_error **err)
{
	mbx_sandbox *sb = NULL;
	int rc;

	if (out == NULL)
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "mbx_run: out is NULL");
	*out = NULL;
	if (argv == NULL || argv[0] == NULL || argv[0][0] == '\0')
		return mbx__error_set(err, MBX_EINVAL, 0, NULL, "no program given: argv is empty");
	rc = sandbox_create(&sb, cfg, argv[0], err);
	if (rc < 0)
		return rc;
	sb->oneshot = 1;
	rc = mbx_sandbox_exec(sb, argv, opts, out, err);
	if (rc == MBX_OK) {
		rc = mbx_sandbox_destroy(sb, err);
		if (rc < 0) {
			mbx_result_free(*out);
			*out = NULL;
		}
	}
	mbx_sandbox_free(sb);
	return rc;
}
