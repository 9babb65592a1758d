/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wasm backend: WASI preview 1 command modules on Wasmtime's C API.
 *
 * One engine per process (Cranelift, fuel, epoch interruption, the pooling
 * allocator), made on first use; one store per execute. A sandbox is a
 * host state directory like the os backend's (statedir.c), whose
 * `workspace` is the only directory the guest sees, preopened as
 * /workspace (and "." for relative paths). Modules are found by content:
 * SHA-256 of the bytes and the engine fingerprint key an in-process table
 * of ready modules (with their linked InstancePre) and an on-disk cache of
 * compiled code (cache.c).
 *
 * Time: a single ticker thread bumps the engine epoch every TICK_MS while
 * any execute runs; each store's epoch callback compares the clock with its
 * own deadline, so a guest stops within a tick of its timeout. Fuel in
 * proportion to the timeout is the backstop should the ticker starve.
 * Memory: store limits (the sandbox's memory limit) refuse memory.grow past
 * it. Every Wasmtime error is turned into an mbx_error (layer "wasm") or,
 * for a guest failure, into the result; nothing here prints or aborts.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "wasmtime-api.h"

#include "internal.h"
#include "backend/backend.h"
#include "snapshot.h"
#include "statebase.h"
#include "statedir.h"
#include "cache.h"

#define TICK_MS 2
/* Ticks the ticker goes on after the last execute ended before it parks:
 * executes that follow each other within this time (a loop of runs) need
 * no thread wake-up (about 5 us each); an idle process stops ticking. */
#define LINGER_TICKS 25
/* Fuel per millisecond of timeout: far above what a core executes (about
 * one unit per Wasm instruction), so only a starved ticker lets it matter. */
#define FUEL_PER_MS 20000000ull
/* Pool: concurrent instances across the process, each with a 4 GiB slot of
 * address space (reserved, not committed: 256 slots ~ 1 TiB of 128). */
#define POOL_INSTANCES 256u
#define POOL_MEMORY_MAX (4ull << 30)
#define MODULE_MAX (256ull << 20)
#define MEMO_SLOTS 32

/* A module ready to run: compiled, checked for _start, linked. */
struct ready_module {
	uint8_t key[MBX_WASM_KEY_LEN];
	wasmtime_module_t *module;
	wasmtime_instance_pre_t *pre;
	int reaches_files; /* imports a WASI call that can name a path (reaches_files()) */
	unsigned refs;     /* under engine.mu; the table holds one */
};

static struct {
	pthread_once_t once;
	wasm_engine_t *engine;
	wasmtime_linker_t *linker;
	char *why;        /* why there is no engine (malloc'd) */
	int pooling;
	int small_va;     /* small memory reservations (RLIMIT_AS is set) */
	char fingerprint[160];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned running; /* executes in Wasm now */
	int parked;       /* the ticker waits on cv */
	pid_t ticker_pid; /* process that started the ticker (0: none) */
	struct ready_module *memo[MEMO_SLOTS];
	unsigned memo_next;
} engine = { PTHREAD_ONCE_INIT, NULL, NULL, NULL, 0, 0, "", PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0,
	     { NULL }, 0 };

/* The host directory (sd) and its workspace are made on first use
 * (workspace_make): by the file API, or by an execute whose module can
 * reach files. Until then both are NULL and nothing is on disk. */
struct wasm_sb {
	pthread_mutex_t mu;   /* guards the making of the workspace: executes and file calls of
	                       * several threads may come first at once (src/core/sandbox.c) */
	struct mbx_statedir sd;
	char *workspace;      /* host directory behind /workspace, or NULL; set last, under mu, and
	                       * then fixed until destroy: read it with workspace_now() */
	char *workspace_real; /* its canonical path */
};

/* The workspace, or NULL before it was made; once it is not NULL,
 * workspace_real may be read too. */
static const char *workspace_now(const struct wasm_sb *w)
{
	const char *ws;

	pthread_mutex_lock((pthread_mutex_t *)&w->mu);
	ws = w->workspace;
	pthread_mutex_unlock((pthread_mutex_t *)&w->mu);
	return ws;
}

/* ---- errors ---- */

/* Wasmtime's message of `e` as a malloc'd string (never NULL on success). */
static char *error_text(const wasmtime_error_t *e)
{
	wasm_name_t msg;
	char *s;

	wasmtime_error_message(e, &msg);
	s = strndup(msg.data ? msg.data : "", msg.size);
	wasm_byte_vec_delete(&msg);
	return s;
}

/* Converts and deletes a Wasmtime error: `code` with "context: message". */
static int from_wasmtime(mbx_error **err, int code, wasmtime_error_t *e, const char *context)
{
	char *text = error_text(e);
	int rc;

	wasmtime_error_delete(e);
	rc = mbx__error_set(err, code, 0, "wasm", "%s: %s", context, text ? text : "(no message)");
	free(text);
	return rc;
}

/* ---- the engine ---- */

/*
 * The pooling allocator reserves its address space when the engine is made,
 * and Wasmtime's engine constructor aborts the process if that fails. So it
 * is only used when the address space is not limited (RLIMIT_AS); otherwise
 * the engine allocates on demand, which only costs instantiation time.
 */
static int as_limited(void)
{
	struct rlimit rl;

	return getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
}

/* Whether `bytes` of address space can be reserved now: tried with an
 * inaccessible, unbacked mapping that is dropped at once. Catches what
 * RLIMIT_AS does not (a smaller address space, valgrind, overcommit
 * policies) before Wasmtime would abort on it. */
static int can_reserve(uint64_t bytes)
{
	void *p = mmap(NULL, (size_t)bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return 0;
	munmap(p, (size_t)bytes);
	return 1;
}

static int pooling_possible(void)
{
	const char *env = getenv("MIMOBOX_WASM_POOLING");

	if (env && strcmp(env, "0") == 0)
		return 0;
	/* Each slot reserves its maximum memory plus guard regions: twice the
	 * maximum is a safe upper bound for the whole pool. */
	return !as_limited() && can_reserve(2ull * POOL_INSTANCES * POOL_MEMORY_MAX);
}

static void engine_init(void)
{
	wasm_config_t *config;
	wasmtime_error_t *e;
	const char *why = NULL;

	if (mbx__wasmtime_load(&why) < 0) {
		engine.why = strdup(why);
		return;
	}
	config = wasm_config_new();
	if (config == NULL) {
		engine.why = strdup("wasm_config_new failed");
		return;
	}
	wasmtime_config_consume_fuel_set(config, true);
	wasmtime_config_epoch_interruption_set(config, true);
	wasmtime_config_strategy_set(config, WASMTIME_STRATEGY_CRANELIFT);
	wasmtime_config_cranelift_opt_level_set(config, WASMTIME_OPT_LEVEL_SPEED);
	/* Proposals a WASI preview 1 command needs, nothing that widens the
	 * attack surface (no threads, no GC, no component model). */
	wasmtime_config_wasm_threads_set(config, false);
	wasmtime_config_wasm_gc_set(config, false);
	wasmtime_config_wasm_component_model_set(config, false);
	engine.pooling = pooling_possible();
	if (engine.pooling) {
		wasmtime_pooling_allocation_config_t *pool = wasmtime_pooling_allocation_config_new();

		wasmtime_pooling_allocation_config_total_core_instances_set(pool, POOL_INSTANCES);
		wasmtime_pooling_allocation_config_total_memories_set(pool, POOL_INSTANCES);
		wasmtime_pooling_allocation_config_total_tables_set(pool, POOL_INSTANCES);
		wasmtime_pooling_allocation_config_total_stacks_set(pool, 0);
		wasmtime_pooling_allocation_config_total_component_instances_set(pool, 0);
		wasmtime_pooling_allocation_config_total_gc_heaps_set(pool, 0);
		wasmtime_pooling_allocation_config_max_memory_size_set(pool, POOL_MEMORY_MAX);
		/* Keep the first pages of a freed slot resident: the next instance
		 * reuses them without page faults. */
		wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(pool, 1 << 20);
		wasmtime_pooling_allocation_config_table_keep_resident_set(pool, 1 << 16);
		wasmtime_pooling_allocation_strategy_set(config, pool);
		wasmtime_pooling_allocation_config_delete(pool);
	} else if (as_limited()) {
		/* A limited address space cannot hold a 4 GiB reservation per
		 * memory: reserve what is used (explicit bounds checks, memories
		 * may move when they grow). */
		engine.small_va = 1;
		wasmtime_config_memory_reservation_set(config, 0);
		wasmtime_config_memory_guard_size_set(config, 1 << 16);
		wasmtime_config_memory_reservation_for_growth_set(config, 1 << 20);
	}
	/* Consumes config. */
	engine.engine = wasm_engine_new_with_config(config);
	if (engine.engine == NULL) {
		engine.why = strdup("wasm_engine_new_with_config failed");
		return;
	}
	engine.linker = wasmtime_linker_new(engine.engine);
	e = engine.linker ? wasmtime_linker_define_wasi(engine.linker) : NULL;
	if (engine.linker == NULL || e) {
		char *text = e ? error_text(e) : NULL;

		if (e)
			wasmtime_error_delete(e);
		if (asprintf(&engine.why, "define WASI in the linker: %s", text ? text : "out of memory") < 0)
			engine.why = NULL;
		free(text);
		if (engine.linker)
			wasmtime_linker_delete(engine.linker);
		engine.linker = NULL;
		wasm_engine_delete(engine.engine);
		engine.engine = NULL;
		return;
	}
	/* Everything that changes compiled code goes into the cache key. */
	snprintf(engine.fingerprint, sizeof(engine.fingerprint),
		 "wasmtime %s; mimobox wasm engine 1; cranelift speed; fuel; epoch; %s; no-threads no-gc no-component",
		 WASMTIME_VERSION, engine.pooling ? "pooling 4G" : engine.small_va ? "on-demand small" : "on-demand");
}

static int engine_get(mbx_error **err)
{
	pthread_once(&engine.once, engine_init);
	if (engine.engine)
		return MBX_OK;
	mbx__error_set(err, MBX_EBACKEND, 0, "wasm", "cannot create the Wasmtime engine: %s",
		       engine.why ? engine.why : "out of memory");
	mbx__error_suggest(err, "run `mimobox doctor` for the wasmtime check");
	return MBX_EBACKEND;
}

/* ---- the epoch ticker ---- */

static void *ticker_main(void *arg)
{
	unsigned idle = 0;

	(void)arg;
	pthread_mutex_lock(&engine.mu);
	for (;;) {
		while (engine.running == 0 && idle >= LINGER_TICKS) {
			engine.parked = 1;
			pthread_cond_wait(&engine.cv, &engine.mu);
			engine.parked = 0;
			idle = 0;
		}
		pthread_mutex_unlock(&engine.mu);
		struct timespec ts = { 0, TICK_MS * 1000000L };

		nanosleep(&ts, NULL);
		wasmtime_engine_increment_epoch(engine.engine);
		pthread_mutex_lock(&engine.mu);
		idle = engine.running ? 0 : idle + 1;
	}
	return NULL;
}

/* Counts an execute in; starts the ticker on first use in this process
 * (a forked child has no ticker thread even if its parent had one). */
static int ticker_enter(mbx_error **err)
{
	pthread_attr_t attr;
	pthread_t t;
	int rc = 0;

	pthread_mutex_lock(&engine.mu);
	if (engine.ticker_pid != getpid()) {
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, 64 * 1024);
		rc = pthread_create(&t, &attr, ticker_main, NULL);
		pthread_attr_destroy(&attr);
		if (rc == 0) {
			engine.ticker_pid = getpid();
			engine.parked = 0; /* a forked child's copy of the parent's */
		}
	}
	if (rc == 0 && engine.running++ == 0 && engine.parked)
		pthread_cond_signal(&engine.cv);
	pthread_mutex_unlock(&engine.mu);
	if (rc != 0)
		return mbx__error_set(err, MBX_ESYS, rc, "wasm", "start the epoch ticker thread");
	return MBX_OK;
}

static void ticker_leave(void)
{
	pthread_mutex_lock(&engine.mu);
	engine.running--;
	pthread_mutex_unlock(&engine.mu);
}

/* ---- ready modules: the in-process table ---- */

static void ready_release(struct ready_module *m)
{
	int last;

	if (m == NULL)
		return;
	pthread_mutex_lock(&engine.mu);
	last = --m->refs == 0;
	pthread_mutex_unlock(&engine.mu);
	if (!last)
		return;
	if (m->pre)
		wasmtime_instance_pre_delete(m->pre);
	if (m->module)
		wasmtime_module_delete(m->module);
	free(m);
}

static struct ready_module *memo_find(const uint8_t key[MBX_WASM_KEY_LEN])
{
	struct ready_module *m = NULL;

	pthread_mutex_lock(&engine.mu);
	for (unsigned i = 0; i < MEMO_SLOTS; i++) {
		if (engine.memo[i] && memcmp(engine.memo[i]->key, key, MBX_WASM_KEY_LEN) == 0) {
			m = engine.memo[i];
			m->refs++;
			break;
		}
	}
	pthread_mutex_unlock(&engine.mu);
	return m;
}

/* Adds m to the table (which takes its own reference), evicting the
 * oldest entry when full. */
static void memo_add(struct ready_module *m)
{
	struct ready_module *old;

	pthread_mutex_lock(&engine.mu);
	for (unsigned i = 0; i < MEMO_SLOTS; i++) {
		if (engine.memo[i] && memcmp(engine.memo[i]->key, m->key, MBX_WASM_KEY_LEN) == 0) {
			pthread_mutex_unlock(&engine.mu); /* another thread was first */
			return;
		}
	}
	old = engine.memo[engine.memo_next];
	engine.memo[engine.memo_next] = m;
	engine.memo_next = (engine.memo_next + 1) % MEMO_SLOTS;
	m->refs++;
	pthread_mutex_unlock(&engine.mu);
	ready_release(old);
}

/*
 * Module files already read, by identity: device, inode, size, mtime and
 * ctime (and whether the name ends in .wat, which decides how text is
 * read). An execute whose file matches one, with its module still in the
 * table above, neither reads nor hashes the file again: a module of
 * megabytes costs milliseconds of SHA-256 per execute otherwise. Any write
 * to the file changes its ctime, which nobody can set; but the kernel
 * stamps ctime from a clock that advances in ticks, so a write in the tick
 * of our read could leave it equal. Hence only files whose ctime was at
 * least KNOWN_SETTLED_S seconds old when they were read are recorded (as
 * git does with "racily clean" index entries); newer ones are read and
 * hashed every time until they have settled.
 */
#define KNOWN_SLOTS 32
#define KNOWN_SETTLED_S 1

static struct known_file {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	int wat_name;
	int used;
	uint8_t key[MBX_WASM_KEY_LEN];
} known[KNOWN_SLOTS];
static unsigned known_next; /* under engine.mu, like known[] */

static int known_same(const struct known_file *k, const struct stat *st, int wat_name)
{
	return k->used && k->dev == st->st_dev && k->ino == st->st_ino && k->size == st->st_size &&
	       k->mtime.tv_sec == st->st_mtim.tv_sec && k->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	       k->ctime.tv_sec == st->st_ctim.tv_sec && k->ctime.tv_nsec == st->st_ctim.tv_nsec && k->wat_name == wat_name;
}

/* The ready module of a known file, with a reference, or NULL. */
static struct ready_module *known_find(const struct stat *st, int wat_name)
{
	uint8_t key[MBX_WASM_KEY_LEN];
	int hit = 0;

	pthread_mutex_lock(&engine.mu);
	for (unsigned i = 0; i < KNOWN_SLOTS && !hit; i++) {
		if (known_same(&known[i], st, wat_name)) {
			memcpy(key, known[i].key, sizeof(key));
			hit = 1;
		}
	}
	pthread_mutex_unlock(&engine.mu);
	return hit ? memo_find(key) : NULL;
}

/* Records that the file of `st` (as it was before it was read) holds the
 * module of `key`, when its ctime had settled by now. */
static void known_add(const struct stat *st, int wat_name, const uint8_t key[MBX_WASM_KEY_LEN])
{
	struct timespec now;
	struct known_file *k;

	if (clock_gettime(CLOCK_REALTIME, &now) < 0 ||
	    (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec + KNOWN_SETTLED_S * 1000000000ll >=
		    (int64_t)now.tv_sec * 1000000000 + now.tv_nsec)
		return;
	pthread_mutex_lock(&engine.mu);
	for (unsigned i = 0; i < KNOWN_SLOTS; i++) {
		if (known_same(&known[i], st, wat_name)) {
			pthread_mutex_unlock(&engine.mu);
			return;
		}
	}
	k = &known[known_next];
	known_next = (known_next + 1) % KNOWN_SLOTS;
	k->dev = st->st_dev;
	k->ino = st->st_ino;
	k->size = st->st_size;
	k->mtime = st->st_mtim;
	k->ctime = st->st_ctim;
	k->wat_name = wat_name;
	k->used = 1;
	memcpy(k->key, key, MBX_WASM_KEY_LEN);
	pthread_mutex_unlock(&engine.mu);
}

/* ---- loading a module ---- */

/* Cache use, from $MIMOBOX_WASM_CACHE: "off" compiles every time, "disk"
 * skips the in-process table, anything else uses both. For benchmarks. */
enum { CACHE_ALL, CACHE_DISK, CACHE_OFF };

static int cache_mode(void)
{
	const char *env = getenv("MIMOBOX_WASM_CACHE");

	if (env && strcmp(env, "off") == 0)
		return CACHE_OFF;
	if (env && strcmp(env, "disk") == 0)
		return CACHE_DISK;
	return CACHE_ALL;
}

/* Where the module of argv[0] is on the host: a path below /workspace maps
 * to the sandbox's workspace (and may not leave it through `..` or
 * symlinks); anything else is a host path, as the caller gave it. */
static int module_path(const struct wasm_sb *w, const char *arg, char **out, mbx_error **err)
{
	char *joined = NULL, *real;
	size_t n;

	if (strncmp(arg, "/workspace/", 11) != 0) {
		*out = strdup(arg);
		return *out ? MBX_OK : mbx__error_oom(err);
	}
	if (workspace_now(w) == NULL) /* nothing was ever written there */
		return mbx__error_set(err, MBX_ENOTFOUND, ENOENT, "wasm", "module `%s`", arg);
	if (asprintf(&joined, "%s/%s", w->workspace, arg + 11) < 0)
		return mbx__error_oom(err);
	real = realpath(joined, NULL);
	free(joined);
	if (real == NULL)
		return mbx__error_set(err, errno == ENOENT ? MBX_ENOTFOUND : MBX_ESYS, errno, "wasm", "module `%s`", arg);
	n = strlen(w->workspace_real);
	if (strncmp(real, w->workspace_real, n) != 0 || real[n] != '/') {
		free(real);
		return mbx__error_set(err, MBX_EPERM, 0, "wasm", "module `%s` resolves outside /workspace", arg);
	}
	*out = real;
	return MBX_OK;
}

/* Opens the file of a module: *fd and *st, a regular file of at most
 * MODULE_MAX bytes. */
static int open_module(const char *path, const char *shown, int *fd_out, struct stat *st, mbx_error **err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	*fd_out = -1;
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return mbx__error_set(err, MBX_ENOTFOUND, errno, "wasm", "module `%s` not found", shown);
		if (errno == EACCES)
			return mbx__error_set(err, MBX_EPERM, errno, "wasm", "module `%s` cannot be read", shown);
		return mbx__error_set(err, MBX_ESYS, errno, "wasm", "open module `%s`", shown);
	}
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return mbx__error_set(err, MBX_ENOEXEC, 0, "wasm", "module `%s` is not a regular file", shown);
	}
	if ((uint64_t)st->st_size > MODULE_MAX) {
		close(fd);
		return mbx__error_set(err, MBX_ETOOBIG, 0, "wasm", "module `%s` is larger than %llu MiB", shown,
				      (unsigned long long)(MODULE_MAX >> 20));
	}
	*fd_out = fd;
	return MBX_OK;
}

/* Reads the module file open on fd (open_module) and closes it. */
static int read_module(int fd, const struct stat *st, uint8_t **data, size_t *len, mbx_error **err)
{
	size_t got = 0;
	uint8_t *buf = malloc((size_t)st->st_size + 1);

	*data = NULL;
	if (buf == NULL) {
		close(fd);
		return mbx__error_oom(err);
	}
	while (got < (size_t)st->st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st->st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = 0;
	*data = buf;
	*len = got;
	return MBX_OK;
}

/* Whether the text looks like WAT: its first token (after blanks and
 * comments) is an opening parenthesis. */
static int looks_like_wat(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		if (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
			i++;
		} else if (i + 1 < n && p[i] == ';' && p[i + 1] == ';') {
			while (i < n && p[i] != '\n')
				i++;
		} else {
			return p[i] == '(';
		}
	}
	return 0;
}

/* Turns file bytes into a core module binary: binary modules as they are,
 * WAT through Wasmtime's parser. *bin is malloc'd. */
static int module_binary(const char *shown, uint8_t *file, size_t len, uint8_t **bin, size_t *bin_len, mbx_error **err)
{
	static const uint8_t magic[4] = { 0, 'a', 's', 'm' };
	wasm_byte_vec_t out = { 0, NULL };
	wasmtime_error_t *e;
	size_t n = strlen(shown);
	int rc;

	if (len >= 8 && memcmp(file, magic, 4) == 0) {
		if (file[4] != 1 || file[5] != 0 || file[6] != 0 || file[7] != 0) {
			mbx__error_set(err, MBX_ENOEXEC, 0, "wasm",
				       "`%s` is a WebAssembly component or an unknown binary version, not a core module", shown);
			mbx__error_suggest(err, "build a WASI preview 1 command (e.g. --target=wasm32-wasi)");
			return MBX_ENOEXEC;
		}
		*bin = file;
		*bin_len = len;
		return MBX_OK;
	}
	if (!(n > 4 && strcmp(shown + n - 4, ".wat") == 0) && !looks_like_wat(file, len)) {
		mbx__error_set(err, MBX_ENOEXEC, 0, "wasm", "`%s` is not a WebAssembly module (no \\0asm header, not WAT text)", shown);
		return MBX_ENOEXEC;
	}
	e = wasmtime_wat2wasm((const char *)file, len, &out);
	if (e) {
		rc = from_wasmtime(err, MBX_ENOEXEC, e, "parse WAT");
		mbx__error_wrap(err, "module `%s`", shown);
		return rc;
	}
	*bin = malloc(out.size ? out.size : 1);
	if (*bin == NULL) {
		wasm_byte_vec_delete(&out);
		return mbx__error_oom(err);
	}
	memcpy(*bin, out.data, out.size);
	*bin_len = out.size;
	wasm_byte_vec_delete(&out);
	free(file);
	return MBX_OK;
}

/* Checks that the module is a WASI command: it exports a function _start. */
static int check_command(const wasmtime_module_t *module, const char *shown, mbx_error **err)
{
	wasm_exporttype_vec_t exports;
	int found = 0;

	wasmtime_module_exports(module, &exports);
	for (size_t i = 0; i < exports.size; i++) {
		const wasm_name_t *name = wasm_exporttype_name(exports.data[i]);

		if (name->size == 6 && memcmp(name->data, "_start", 6) == 0 &&
		    wasm_externtype_kind(wasm_exporttype_type(exports.data[i])) == WASM_EXTERN_FUNC)
			found = 1;
	}
	wasm_exporttype_vec_delete(&exports);
	if (found)
		return MBX_OK;
	mbx__error_set(err, MBX_ENOEXEC, 0, "wasm", "module `%s` exports no `_start` function: it is not a WASI command", shown);
	mbx__error_suggest(err, "build it as a command (a `main`), not as a reactor or library");
	return MBX_ENOEXEC;
}

/*
 * Whether the module imports a WASI call through which it could reach the
 * workspace. A module finds its preopened directories only through
 * fd_prestat_get / fd_prestat_dir_name and names files only through the
 * path_* calls; a module importing neither (nor fd_readdir, fd_renumber or
 * the positional and metadata calls) can do nothing with a preopen but
 * guess its descriptor number. Such a module runs without one while the
 * sandbox has no workspace on disk yet, so a one-shot run of it touches no
 * file system at all. Anything not in this list counts as reaching files.
 */
static int reaches_files(const wasmtime_module_t *module)
{
	static const char *const no_files[] = {
		"args_get", "args_sizes_get", "environ_get", "environ_sizes_get", "clock_res_get", "clock_time_get",
		"proc_exit", "proc_raise", "random_get", "sched_yield", "poll_oneoff", "fd_read", "fd_write",
		"fd_close", "fd_seek", "fd_tell", "fd_fdstat_get", "fd_fdstat_set_flags", "fd_sync", "fd_datasync",
	};
	wasm_importtype_vec_t imports;
	int reaches = 0;

	wasmtime_module_imports(module, &imports);
	for (size_t i = 0; i < imports.size && !reaches; i++) {
		const wasm_name_t *mod = wasm_importtype_module(imports.data[i]);
		const wasm_name_t *name = wasm_importtype_name(imports.data[i]);
		int listed = 0;

		if (mod->size != 22 || memcmp(mod->data, "wasi_snapshot_preview1", 22) != 0) {
			reaches = 1; /* not WASI: linking refuses it anyway */
			break;
		}
		for (size_t k = 0; k < sizeof(no_files) / sizeof(no_files[0]) && !listed; k++)
			listed = name->size == strlen(no_files[k]) && memcmp(name->data, no_files[k], name->size) == 0;
		reaches = !listed;
	}
	wasm_importtype_vec_delete(&imports);
	return reaches;
}

/* Creates the missing parents of `path` (0700), like mkdir -p. */
static void make_parents(char *path)
{
	for (char *p = path + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		mkdir(path, 0700);
		*p = '/';
	}
}

/*
 * The disk cache as this process last opened it, and the paths and uid it
 * was opened as. Opening checks the directory (made 0700, owned by us, the
 * key not inside it), the state directory, and reads the MAC key: about 18
 * system calls, a tenth of a run from the disk cache (60 -> 54 us here). An open with the same
 * paths and uid takes the key from here instead; a store that fails (the
 * directory went away, say) forgets it, so the next open checks again.
 * Every load still checks its entry as ever (a regular file of ours that
 * nobody else may write, its key, length and MAC): that is what keeps a
 * planted entry out, not the directory's check.
 */
static struct {
	pthread_mutex_t mu;
	char *dir, *key;
	uid_t uid;
	uint8_t mac_key[MBX_WASM_MAC_KEY_LEN];
} opened = { PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 0, { 0 } };

static void opened_forget(void)
{
	pthread_mutex_lock(&opened.mu);
	free(opened.dir);
	free(opened.key);
	opened.dir = opened.key = NULL;
	explicit_bzero(opened.mac_key, sizeof(opened.mac_key));
	pthread_mutex_unlock(&opened.mu);
}

/* Takes the cache of `dir` and `key` from `opened`: 1, or 0 when it was not opened so. */
static int opened_take(const char *dir, const char *key, struct mbx_wasm_cache *c)
{
	int hit;

	pthread_mutex_lock(&opened.mu);
	hit = opened.dir && strcmp(opened.dir, dir) == 0 && strcmp(opened.key, key) == 0 && opened.uid == geteuid();
	if (hit && (c->dir = strdup(dir)) != NULL)
		memcpy(c->mac_key, opened.mac_key, sizeof(c->mac_key));
	pthread_mutex_unlock(&opened.mu);
	return hit && c->dir != NULL;
}

static void opened_keep(const char *dir, const char *key, const struct mbx_wasm_cache *c)
{
	char *d = strdup(dir), *k = strdup(key);

	pthread_mutex_lock(&opened.mu);
	free(opened.dir);
	free(opened.key);
	opened.dir = d && k ? d : NULL;
	opened.key = d && k ? k : NULL;
	opened.uid = geteuid();
	memcpy(opened.mac_key, c->mac_key, sizeof(opened.mac_key));
	pthread_mutex_unlock(&opened.mu);
	if (!(d && k)) {
		free(d);
		free(k);
	}
}

/*
 * Opens the on-disk cache: $MIMOBOX_WASM_CACHE_DIR, else
 * ${XDG_CACHE_HOME:-$HOME/.cache}/mimobox/wasm-cache (it should outlive
 * reboots, unlike the state directory), else <state base>/wasm-cache; its
 * MAC key is <state base>/wasm-cache.key. A cache that cannot be used is
 * logged and skipped: compiling is always safe.
 */
static void cache_open(const mbx_config *cfg, struct mbx_wasm_cache *c)
{
	const char *env = getenv("MIMOBOX_WASM_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	mbx_error *e = NULL;
	char *base = mbx__statebase_path(), *checked = NULL, *dir = NULL, *key = NULL;
	int r;

	c->dir = NULL;
	if (base == NULL)
		r = -1;
	else if (env && env[0] == '/')
		r = asprintf(&dir, "%s", env);
	else if (xdg && xdg[0] == '/')
		r = asprintf(&dir, "%s/mimobox/wasm-cache", xdg);
	else if (home && home[0] == '/' && strcmp(home, "/") != 0)
		r = asprintf(&dir, "%s/.cache/mimobox/wasm-cache", home);
	else
		r = asprintf(&dir, "%s/wasm-cache", base);
	if (r < 0)
		dir = NULL;	/* undefined after a failed asprintf */
	/* The MAC key lives in the private state directory, out of reach of
	 * whoever can write the cache (cache.h). */
	if (r >= 0 && asprintf(&key, "%s/wasm-cache.key", base) < 0) {
		key = NULL;
		r = -1;
	}
	if (r >= 0 && !opened_take(dir, key, c)) {
		/* The state directory is checked (and made) before its key is read. */
		if (mbx__statedir_base(&checked, &e) == MBX_OK) {
			make_parents(dir);
			if (mbx__wasm_cache_open(c, dir, key, &e) == MBX_OK)
				opened_keep(dir, key, c);
		}
	}
	if (e)
		mbx__log(cfg, MBX_LOG_WARN, "wasm: compiling without the module cache: %s", mbx_error_message(e));
	mbx_error_free(e);
	free(base);
	free(checked);
	free(dir);
	free(key);
}

/*
 * Makes the module of `bin` ready: from the in-process table, else from the
 * disk cache (verified, then deserialized), else compiled (and stored).
 * *how says which, for the debug log.
 */
static int module_ready(const mbx_config *cfg, const char *shown, const uint8_t *bin, size_t len,
			struct ready_module **out, const char **how, mbx_error **err)
{
	struct mbx_wasm_cache cache = { NULL };
	struct ready_module *m;
	uint8_t key[MBX_WASM_KEY_LEN];
	wasmtime_error_t *e;
	int mode = cache_mode(), rc;

	*out = NULL;
	mbx__wasm_cache_key(bin, len, engine.fingerprint, key);
	if (mode == CACHE_ALL && (m = memo_find(key)) != NULL) {
		*how = "memory";
		*out = m;
		return MBX_OK;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return mbx__error_oom(err);
	memcpy(m->key, key, sizeof(key));
	m->refs = 1;
	if (mode != CACHE_OFF) {
		uint8_t *entry = NULL;
		size_t off = 0, n = 0;
		const char *why = NULL;

		cache_open(cfg, &cache);
		switch (mbx__wasm_cache_load(&cache, key, &entry, &off, &n, &why)) {
		case MBX_WASM_CACHE_HIT:
			e = wasmtime_module_deserialize(engine.engine, entry + off, n, &m->module);
			if (e) {
				/* Sound bytes Wasmtime will not take (another
				 * version or CPU): compile again. */
				char *text = error_text(e);

				wasmtime_error_delete(e);
				mbx__log(cfg, MBX_LOG_INFO, "wasm: cache entry refused by Wasmtime (%s): recompiling",
					 text ? text : "?");
				free(text);
				mbx__wasm_cache_remove(&cache, key);
				m->module = NULL;
			} else {
				*how = "disk";
			}
			break;
		case MBX_WASM_CACHE_INVALID:
			mbx__log(cfg, MBX_LOG_WARN, "wasm: cache entry of `%s` failed verification (%s): removed, recompiling",
				 shown, why ? why : "?");
			break;
		default:
			break;
		}
		free(entry);
	}
	if (m->module == NULL) {
		e = wasmtime_module_new(engine.engine, bin, len, &m->module);
		if (e) {
			m->module = NULL;
			rc = from_wasmtime(err, MBX_ENOEXEC, e, "compile");
			mbx__error_wrap(err, "module `%s`", shown);
			goto fail;
		}
		*how = "compiled";
		if (mode != CACHE_OFF && cache.dir) {
			wasm_byte_vec_t ser = { 0, NULL };
			mbx_error *se = NULL;

			e = wasmtime_module_serialize(m->module, &ser);
			if (e) {
				char *text = error_text(e);

				wasmtime_error_delete(e);
				mbx__log(cfg, MBX_LOG_WARN, "wasm: cannot serialize `%s`: %s", shown, text ? text : "?");
				free(text);
			} else if (mbx__wasm_cache_store(&cache, key, (const uint8_t *)ser.data, ser.size, &se) < 0) {
				mbx__log(cfg, MBX_LOG_WARN, "wasm: %s", mbx_error_message(se));
				/* Checked again at the next open. */
				opened_forget();
			}
			mbx_error_free(se);
			wasm_byte_vec_delete(&ser);
		}
	}
	mbx__wasm_cache_close(&cache);
	rc = check_command(m->module, shown, err);
	if (rc < 0)
		goto fail;
	e = wasmtime_linker_instantiate_pre(engine.linker, m->module, &m->pre);
	if (e) {
		m->pre = NULL;
		rc = from_wasmtime(err, MBX_ENOEXEC, e, "link");
		mbx__error_wrap(err, "module `%s` needs imports this sandbox does not provide (only WASI preview 1)", shown);
		goto fail;
	}
	m->reaches_files = reaches_files(m->module);
	if (mode == CACHE_ALL)
		memo_add(m);
	*out = m;
	return MBX_OK;
fail:
	mbx__wasm_cache_close(&cache);
	ready_release(m);
	return rc;
}

/* ---- one run ---- */

struct run {
	const struct mbx_exec_req *req;
	mbx_result *res;
	uint64_t deadline_us;
	int timed_out;
	int oom; /* output could not be stored */
};

/* Stores and streams guest output up to the output limit; the guest always
 * sees a complete write (bytes past the limit are dropped and flagged). */
static ptrdiff_t on_output(struct run *r, mbx_stream_t stream, const unsigned char *buf, size_t len)
{
	struct mbx_buf *b = stream == MBX_STREAM_STDOUT ? &r->res->out : &r->res->err;
	int *trunc = stream == MBX_STREAM_STDOUT ? &r->res->out_truncated : &r->res->err_truncated;
	size_t keep = len;

	if (b->len + keep > r->req->output_limit) {
		keep = b->len < r->req->output_limit ? (size_t)(r->req->output_limit - b->len) : 0;
		*trunc = 1;
	}
	if (keep && mbx__buf_append(b, buf, keep) < 0)
		r->oom = 1;
	if (keep && r->req->output_fn)
		r->req->output_fn(stream, buf, keep, r->req->output_userdata);
	return (ptrdiff_t)len;
}

static ptrdiff_t on_stdout(void *data, const unsigned char *buf, size_t len)
{
	return on_output(data, MBX_STREAM_STDOUT, buf, len);
}

static ptrdiff_t on_stderr(void *data, const unsigned char *buf, size_t len)
{
	return on_output(data, MBX_STREAM_STDERR, buf, len);
}

/* Epoch callback: runs at every tick while the guest executes. */
static wasmtime_error_t *on_epoch(const wasmtime_context_t *ctx, void *data, uint64_t *delta,
				  wasmtime_update_deadline_kind_t *kind)
{
	struct run *r = data;

	(void)ctx;
	if (mbx__now_us() >= r->deadline_us) {
		r->timed_out = 1;
		return wasmtime_error_new("mimobox: execute timed out");
	}
	*delta = 1;
	*kind = WASMTIME_UPDATE_DEADLINE_CONTINUE;
	return NULL;
}

/* The WASI context of one execute: argv (guest argv[0] is the module's
 * base name), the environment, the workspace, custom stdout/stderr. */
static int wasi_setup(const struct wasm_sb *w, struct run *r, wasi_config_t **out, mbx_error **err)
{
	const struct mbx_exec_req *req = r->req;
	size_t argc = mbx__strv_len(req->argv), envc = mbx__strv_len(req->envp), i;
	const char **argv = calloc(argc + 1, sizeof(*argv));
	const char **names = calloc(envc + 1, sizeof(*names));
	const char **values = calloc(envc + 1, sizeof(*values));
	char **split = calloc(envc + 1, sizeof(*split));
	wasi_config_t *wc = wasi_config_new();
	const char *base = strrchr(req->argv[0], '/');
	int rc = MBX_OK;

	*out = NULL;
	if (!argv || !names || !values || !split || !wc) {
		rc = mbx__error_oom(err);
		goto done;
	}
	argv[0] = base && base[1] ? base + 1 : req->argv[0];
	for (i = 1; i < argc; i++)
		argv[i] = req->argv[i];
	for (i = 0; i < envc; i++) {
		char *eq;

		split[i] = strdup(req->envp[i]);
		if (split[i] == NULL) {
			rc = mbx__error_oom(err);
			goto done;
		}
		eq = strchr(split[i], '=');
		if (eq)
			*eq = '\0';
		names[i] = split[i];
		values[i] = eq ? eq + 1 : "";
	}
	if (!wasi_config_set_argv(wc, argc, argv) || !wasi_config_set_env(wc, envc, names, values)) {
		rc = mbx__error_set(err, MBX_EINVAL, 0, "wasm", "arguments or environment are not valid UTF-8");
		goto done;
	}
	if (workspace_now(w) && (!wasi_config_preopen_dir(wc, w->workspace, "/workspace", true) ||
			     !wasi_config_preopen_dir(wc, w->workspace, ".", true))) {
		rc = mbx__error_set(err, MBX_ESYS, 0, "wasm", "preopen the workspace `%s`", w->workspace);
		goto done;
	}
	/* Without data, stdin stays WASI's default: an empty stream. */
	if (req->stdin_data && req->stdin_len) {
		wasm_byte_vec_t in;

		wasm_byte_vec_new(&in, req->stdin_len, (const wasm_byte_t *)req->stdin_data);
		wasi_config_set_stdin_bytes(wc, &in);
	}
	wasi_config_set_stdout_custom(wc, on_stdout, r, NULL);
	wasi_config_set_stderr_custom(wc, on_stderr, r, NULL);
	*out = wc;
	wc = NULL;
done:
	if (wc)
		wasi_config_delete(wc);
	for (i = 0; split && i < envc; i++)
		free(split[i]);
	free(split);
	free(argv);
	free(names);
	free(values);
	return rc;
}

/* The reason in a trap's message, malloc'd. Wasmtime's text is "error
 * while executing at wasm backtrace: <frames> Caused by: <reason>" or just
 * the reason: keep the line that starts with "wasm trap:", else the last
 * non-empty line. */
static char *trap_reason(const char *s, size_t n)
{
	const char *best = NULL, *end = s + n, *line = s;
	size_t best_len = 0;

	while (line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *stop = nl ? nl : end, *p = line;

		while (p < stop && (*p == ' ' || *p == '\t'))
			p++;
		size_t len = (size_t)(stop - p);

		while (len > 0 && (p[len - 1] == '\0' || p[len - 1] == '\r' || p[len - 1] == ' '))
			len--;
		/* Frame and cause lists number their lines: "1: wasm trap: ..." */
		const char *q = p;

		while (q < p + len && *q >= '0' && *q <= '9')
			q++;
		if (q > p && q + 1 < p + len && q[0] == ':' && q[1] == ' ') {
			len -= (size_t)(q + 2 - p);
			p = q + 2;
		}
		if (len > 0 && (best == NULL || strncmp(best, "wasm trap:", 10) != 0)) {
			best = p;
			best_len = len;
		}
		line = nl ? nl + 1 : end;
	}
	return best ? strndup(best, best_len) : strdup("trap");
}

/* Fills the result from how _start ended: returned (exit 0), proc_exit, the
 * timeout, out of fuel (a timeout too), or a trap. */
static int classify(struct run *r, wasmtime_error_t *e, wasm_trap_t *trap)
{
	mbx_result *res = r->res;
	wasmtime_trap_code_t code;
	int status;

	res->exit_code = 0;
	if (e == NULL && trap == NULL)
		return MBX_OK;
	if (e && wasmtime_error_exit_status(e, &status)) {
		res->exit_code = status;
		wasmtime_error_delete(e);
		return MBX_OK;
	}
	res->exit_code = -1;
	if (r->timed_out || (trap && wasmtime_trap_code(trap, &code) &&
			     (code == WASMTIME_TRAP_CODE_OUT_OF_FUEL || code == WASMTIME_TRAP_CODE_INTERRUPT))) {
		res->timed_out = 1;
	} else if (trap) {
		wasm_message_t msg;

		wasm_trap_message(trap, &msg);
		res->trap = trap_reason(msg.data ? msg.data : "", msg.size);
		wasm_byte_vec_delete(&msg);
	} else {
		/* A host function failed on the guest's behalf: a payload
		 * failure too, reported the same way. */
		char *text = error_text(e);

		res->trap = text ? trap_reason(text, strlen(text)) : NULL;
		free(text);
	}
	if (e)
		wasmtime_error_delete(e);
	if (trap)
		wasm_trap_delete(trap);
	if (!res->timed_out && res->trap == NULL)
		res->trap = strdup("trap");
	return res->trap || res->timed_out ? MBX_OK : MBX_ENOMEM;
}

static int run_module(const mbx_sandbox *sb, const struct wasm_sb *w, const struct ready_module *m, struct run *r,
		      uint64_t *inst_us, uint64_t *run_us, mbx_error **err)
{
	wasmtime_store_t *store = wasmtime_store_new(engine.engine, NULL, NULL);
	wasmtime_context_t *ctx;
	wasmtime_instance_t instance;
	wasmtime_extern_t start;
	wasi_config_t *wc = NULL;
	wasmtime_error_t *e;
	wasm_trap_t *trap = NULL;
	uint64_t t0, t1;
	int rc;

	if (store == NULL)
		return mbx__error_oom(err);
	ctx = wasmtime_store_context(store);
	/* Memory: the sandbox's limit for linear memories; an instance, its
	 * table and memory counts at Wasmtime's defaults. */
	wasmtime_store_limiter(store, (int64_t)sb->cfg->memory_bytes, -1, -1, -1, -1);
	e = wasmtime_context_set_fuel(ctx, r->req->timeout_ms > UINT64_MAX / FUEL_PER_MS ? UINT64_MAX
											  : r->req->timeout_ms * FUEL_PER_MS);
	if (e) {
		rc = from_wasmtime(err, MBX_EBACKEND, e, "set fuel");
		goto out;
	}
	wasmtime_context_set_epoch_deadline(ctx, 1);
	wasmtime_store_epoch_deadline_callback(store, on_epoch, r, NULL);
	rc = wasi_setup(w, r, &wc, err);
	if (rc < 0)
		goto out;
	e = wasmtime_context_set_wasi(ctx, wc); /* consumes wc */
	if (e) {
		rc = from_wasmtime(err, MBX_EBACKEND, e, "set up WASI");
		goto out;
	}
	rc = ticker_enter(err);
	if (rc < 0)
		goto out;
	t0 = mbx__now_us();
	e = wasmtime_instance_pre_instantiate(m->pre, ctx, &instance, &trap);
	t1 = mbx__now_us();
	*inst_us = t1 - t0;
	if (e == NULL && trap == NULL) {
		int found = wasmtime_instance_export_get(ctx, &instance, "_start", 6, &start);

		if (found && start.kind == WASMTIME_EXTERN_FUNC)
			e = wasmtime_func_call(ctx, &start.of.func, NULL, 0, NULL, 0, &trap);
		if (found)
			wasmtime_extern_delete(&start);
		if (!found || start.kind != WASMTIME_EXTERN_FUNC) {
			ticker_leave();
			rc = mbx__error_set(err, MBX_ENOEXEC, 0, "wasm", "module has no `_start` function");
			goto out;
		}
	} else if (e && !r->timed_out && !wasmtime_error_exit_status(e, &rc)) {
		/* Instantiation failed before any guest code ran (a start
		 * function that exits or traps is a result): the initial memory
		 * is over the limit, or the pool is exhausted. */
		char *text = error_text(e);
		int over = text && strstr(text, "exceeds memory limits") != NULL;

		free(text);
		ticker_leave();
		rc = from_wasmtime(err, over ? MBX_ETOOBIG : MBX_EBACKEND, e, "instantiate");
		if (over)
			mbx__error_suggest(err, "the module's initial memory is over the sandbox's memory limit: raise it (--memory)");
		goto out;
	}
	*run_us = mbx__now_us() - t1;
	ticker_leave();
	rc = classify(r, e, trap);
	if (rc < 0)
		mbx__error_oom(err);
	else if (r->oom)
		rc = mbx__error_oom(err);
out:
	wasmtime_store_delete(store);
	return rc;
}

/* ---- the backend ---- */

static void wasm_cleanup(struct wasm_sb *w)
{
	if (w == NULL)
		return;
	mbx__statedir_release(&w->sd);
	free(w->workspace);
	free(w->workspace_real);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

/*
 * Makes the sandbox's host directory and workspace the first time they are
 * needed: by the file API (and so snapshots and forks), or by an execute
 * whose module can reach files (reaches_files()). A sandbox that never
 * needs them, like a one-shot run of a module that only computes and
 * prints, never touches the state directory: creating and removing two
 * directories is most of a cached run's time on a disk file system (on an
 * ext4 mounted with `discard`, each rmdir waits for a discard). Until the
 * workspace exists nothing can have been written to it, so making it later
 * changes nothing a guest or the caller can see.
 */
static int workspace_make(mbx_sandbox *sb, struct wasm_sb *w, mbx_error **err)
{
	char *ws = NULL;
	int rc;

	pthread_mutex_lock(&w->mu);
	if (w->workspace) {
		pthread_mutex_unlock(&w->mu);
		return MBX_OK;
	}
	rc = mbx__statedir_new_sandbox(&w->sd, sb->id, err);
	if (rc < 0)
		goto fail;
	if (asprintf(&ws, "%s/workspace", w->sd.dir) < 0) {
		ws = NULL;
		rc = mbx__error_oom(err);
		goto fail;
	}
	if (mkdir(ws, 0700) < 0) {
		rc = mbx__error_set(err, MBX_ESYS, errno, NULL, "create workspace `%s`", ws);
		goto fail;
	}
	w->workspace_real = realpath(ws, NULL);
	if (w->workspace_real == NULL) {
		rc = mbx__error_set(err, MBX_ESYS, errno, NULL, "resolve workspace `%s`", ws);
		goto fail;
	}
	w->workspace = ws; /* last: from now on readers may use both */
	pthread_mutex_unlock(&w->mu);
	return MBX_OK;
fail:
	mbx__statedir_release(&w->sd);
	free(ws);
	pthread_mutex_unlock(&w->mu);
	return rc;
}

/* Checks the configuration; the host directory is made on first use
 * (workspace_make) and the engine on the first execute, so creating a
 * sandbox touches neither the disk nor Wasmtime. */
static int wasm_create(mbx_sandbox *sb, mbx_error **err)
{
	const mbx_config *cfg = sb->cfg;
	struct wasm_sb *w;

	if (cfg->network != MBX_NETWORK_DENY_ALL) {
		mbx__error_set(err, MBX_ENOTSUP, 0, "network", "network policy `%s` is not available to Wasm sandboxes",
			       mbx_network_name(cfg->network));
		mbx__error_suggest(err, "WASI preview 1 has no sockets: use the default deny policy");
		return MBX_ENOTSUP;
	}
	if (cfg->nmounts > 0) {
		mbx__error_set(err, MBX_ENOTSUP, 0, "wasm", "mounts are not available to Wasm sandboxes yet");
		mbx__error_suggest(err, "copy the files into the workspace, or use the os backend");
		return MBX_ENOTSUP;
	}
	/* The workspace is a host directory that Wasmtime's WASI writes
	 * directly, with no hook to count bytes: no quota can be put on it
	 * without privileges (a mount). An explicit disk limit is therefore
	 * refused rather than ignored. */
	if (cfg->disk_explicit && !cfg->allow_degraded) {
		mbx__error_set(err, MBX_ENOTSUP, 0, "limits", "a disk limit is not available to Wasm sandboxes: "
			       "their /workspace is a host directory without a quota");
		mbx__error_suggest(err, "drop the disk limit, use the os backend, or allow degradation");
		return MBX_ENOTSUP;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return mbx__error_oom(err);
	w->sd.lockfd = -1;
	pthread_mutex_init(&w->mu, NULL);
	sb->priv = w;
	sb->layers = MBX_LAYER_LIMITS;
	sb->limits_mech = "wasm";
	sb->limits_partial = "the memory limit holds (Wasm linear memory); /workspace is a host directory "
			     "without a disk quota";
	return MBX_OK;
}

static int wasm_exec(mbx_sandbox *sb, const struct mbx_exec_req *req, mbx_result *res, mbx_error **err)
{
	struct wasm_sb *w = sb->priv;
	struct ready_module *m = NULL;
	struct run r = { req, res, 0, 0, 0 };
	uint8_t *file = NULL, *bin = NULL;
	size_t len = 0, bin_len = 0;
	const char *how = "?";
	char *path = NULL;
	uint64_t t0 = mbx__now_us(), t1, inst_us = 0, run_us = 0;
	size_t n = strlen(req->argv[0]);
	int wat_name = n > 4 && strcmp(req->argv[0] + n - 4, ".wat") == 0, fd = -1, rc;
	struct stat st;

	rc = module_path(w, req->argv[0], &path, err);
	if (rc == MBX_OK)
		rc = open_module(path, req->argv[0], &fd, &st, err);
	free(path);
	if (rc == MBX_OK)
		rc = engine_get(err);
	if (rc == MBX_OK && cache_mode() == CACHE_ALL && (m = known_find(&st, wat_name)) != NULL) {
		close(fd);
		fd = -1;
		how = "memory";
	} else if (rc == MBX_OK) {
		rc = read_module(fd, &st, &file, &len, err);
		fd = -1;
	} else if (fd >= 0) {
		close(fd);
		fd = -1;
	}
	if (rc == MBX_OK && m == NULL) {
		rc = module_binary(req->argv[0], file, len, &bin, &bin_len, err);
		if (rc == MBX_OK)
			file = NULL; /* now owned through bin (or freed) */
	}
	if (rc == MBX_OK && m == NULL) {
		rc = module_ready(sb->cfg, req->argv[0], bin, bin_len, &m, &how, err);
		if (rc == MBX_OK && cache_mode() == CACHE_ALL)
			known_add(&st, wat_name, m->key);
	}
	free(file);
	free(bin);
	/* The workspace is preopened when it exists, and made for a module
	 * that could reach it (see workspace_make). */
	if (rc == MBX_OK && m->reaches_files)
		rc = workspace_make(sb, w, err);
	if (rc < 0) {
		ready_release(m);
		return rc;
	}
	t1 = mbx__now_us();
	r.deadline_us = req->timeout_ms > (UINT64_MAX - t1) / 1000 ? UINT64_MAX : t1 + req->timeout_ms * 1000;
	rc = run_module(sb, w, m, &r, &inst_us, &run_us, err);
	ready_release(m);
	mbx__log(sb->cfg, MBX_LOG_DEBUG, "wasm: module %llu us (%s), instantiate %llu us, run %llu us",
		 (unsigned long long)(t1 - t0), how, (unsigned long long)inst_us, (unsigned long long)run_us);
	return rc;
}

static int wasm_destroy(mbx_sandbox *sb, mbx_error **err)
{
	(void)err;
	wasm_cleanup(sb->priv);
	sb->priv = NULL;
	return MBX_OK;
}

static int wasm_workspace(mbx_sandbox *sb, const char **out, mbx_error **err)
{
	struct wasm_sb *w = sb->priv;
	int rc;

	*out = NULL;
	if (w == NULL)
		return mbx__error_set(err, MBX_ESTATE, 0, "wasm", "sandbox %s has no workspace", sb->id);
	rc = workspace_make(sb, w, err);
	if (rc == MBX_OK)
		*out = w->workspace;
	return rc;
}

/*
 * Snapshots: the files of /workspace (a host directory here), read and
 * written through the file API as the os backend's are (src/core/snapfiles.c).
 */
static int wasm_snapshot(mbx_sandbox *sb, struct mbx_snapshot *snap, mbx_error **err)
{
	return mbx__snapfiles_capture(sb, 1, &snap->payload, err);
}

static int wasm_restore(mbx_sandbox *sb, const uint8_t *payload, size_t len, mbx_error **err)
{
	int rc = wasm_create(sb, err);

	if (rc < 0)
		return rc;
	rc = mbx__snapfiles_apply(sb, payload, len, err);
	if (rc < 0 && !sb->destroyed) {
		sb->destroyed = 1;
		wasm_destroy(sb, NULL);
	}
	return rc;
}

static int wasm_fork(mbx_sandbox *sb, mbx_sandbox *child, mbx_error **err)
{
	struct mbx_buf payload = { 0 };
	int rc = mbx__snapfiles_capture(sb, 1, &payload, err);

	if (rc == MBX_OK)
		rc = wasm_restore(child, payload.data, payload.len, err);
	mbx__buf_release(&payload);
	return rc;
}

const struct mbx_backend_ops mbx__wasm_backend = {
	.name = "wasm",
	.isolation = MBX_ISOLATION_WASM,
	/* Each execute is a fresh instance; /workspace persists on the host. */
	.caps = MBX_BACKEND_CAP_EXEC | MBX_BACKEND_CAP_FILES | MBX_BACKEND_CAP_STATE | MBX_BACKEND_CAP_SNAPSHOT |
		MBX_BACKEND_CAP_FORK,
	.create = wasm_create,
	.exec = wasm_exec,
	.destroy = wasm_destroy,
	.workspace = wasm_workspace,
	.snapshot = wasm_snapshot,
	.restore = wasm_restore,
	.fork = wasm_fork,
};

/* ---- doctor ---- */

int mbx__wasm_probe(char **detail)
{
	static const char wat[] = "(module (func (export \"_start\")))";
	wasm_byte_vec_t bin = { 0, NULL };
	wasmtime_module_t *module = NULL;
	wasmtime_error_t *e;
	char *text = NULL;
	int r;

	*detail = NULL;
	if (engine_get(NULL) < 0) {
		r = asprintf(detail, "Wasmtime %s: cannot create an engine: %s", WASMTIME_VERSION,
			     engine.why ? engine.why : "out of memory");
		if (r < 0)
			*detail = NULL;
		return MBX_EBACKEND;
	}
	e = wasmtime_wat2wasm(wat, sizeof(wat) - 1, &bin);
	if (e == NULL) {
		e = wasmtime_module_new(engine.engine, (const uint8_t *)bin.data, bin.size, &module);
		wasm_byte_vec_delete(&bin);
	}
	if (e) {
		text = error_text(e);
		wasmtime_error_delete(e);
		r = asprintf(detail, "Wasmtime %s: compiling a test module failed: %s", WASMTIME_VERSION, text ? text : "?");
		free(text);
		if (r < 0)
			*detail = NULL;
		return MBX_EBACKEND;
	}
	wasmtime_module_delete(module);
	r = asprintf(detail, "Wasmtime %s (Cranelift, WASI preview 1, %s): an engine compiles a test module",
		     WASMTIME_VERSION, engine.pooling ? "pooling allocator"
				       : engine.small_va ? "on-demand allocator, small reservations" : "on-demand allocator");
	if (r < 0)
		*detail = NULL;
	return MBX_OK;
}
