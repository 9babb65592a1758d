/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-wasm: start-up of the wasm backend on a no-op module, public API
 * only. Each iteration runs every mode once, in rotating order:
 *
 *   cold    mbx_run with the module cache off: compile every time
 *   disk    mbx_run with only the on-disk cache: verify + deserialize
 *   memory  mbx_run with the in-process table too (the default)
 *   warm    mbx_sandbox_exec in a live wasm sandbox (default cache)
 *   api     mbx_sandbox_new + mbx_sandbox_exec + mbx_sandbox_free (default
 *           cache): the explicit form of a one-shot run
 *   files   (with -f) mbx_run of a module that reaches files (default
 *           cache): its sandbox makes and removes its directory on disk
 *
 * For each, the wall time of the call ("start to exit": sandbox directory,
 * module, instantiate, run, teardown) and, from the library's debug log,
 * the phases: module (compile / load), instantiate, run.
 *
 * Usage: bench-wasm MODULE.wasm [-n N] [-w WARMUP] [-f FILES_MODULE] [-m MODES]
 * -m: a comma-separated list of the modes to run (default: all of them);
 * the rotation is over those only. The cold mode's compile (about 0.6 ms
 * of Cranelift) evicts the caches the mode after it starts with: a peer
 * whose own loop compiles nothing is compared with a rotation without it
 * (bench_reference.py runs `-m disk,warm`, as the reference's loop
 * alternates its two wasm paths).
 * The peer (PyPI's wasmtime on the same library) is bench_wasm_peer.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mbx/mbx.h>

enum { COLD, DISK, MEMORY, WARM, API, FILES, NMODES };
static const char *const mode_name[NMODES] = { "cold", "disk", "memory", "warm", "api", "files" };
static const char *const cache_env[NMODES] = { "off", "disk", "all", "all", "all", "all" };

struct phases {
	unsigned long long module_us, inst_us, run_us;
	int seen;
};

static void on_log(mbx_log_level_t level, const char *msg, void *userdata)
{
	struct phases *p = userdata;
	char how[32];

	(void)level;
	if (sscanf(msg, "wasm: module %llu us (%31[a-z]), instantiate %llu us, run %llu us", &p->module_us, how,
		   &p->inst_us, &p->run_us) == 4)
		p->seen = 1;
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *name, double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	printf("%-26s p50 %9.1f us  p99 %9.1f us\n", name, v[n / 2], v[(int)((n - 1) * 0.99 + 0.5)]);
}

static void die(const char *what, mbx_error *err)
{
	fprintf(stderr, "bench-wasm: %s: %s\n", what, err ? mbx_error_message(err) : "failed");
	exit(1);
}

int main(int argc, char **argv)
{
	const char *module = NULL, *files_module = NULL;
	int n = 300, warmup = 20, opt, nsel = 0, sel[NMODES], on[NMODES] = { 0 };
	const char *modes = NULL;
	char cache_dir[] = "/tmp/mbx-bench-wasm.XXXXXX";
	struct phases ph;
	mbx_config *cfg = NULL;
	mbx_sandbox *sb = NULL;
	mbx_error *err = NULL;
	double *wall[NMODES], *mod[NMODES], *inst, *run;

	while ((opt = getopt(argc, argv, "n:w:f:m:")) != -1) {
		if (opt == 'n')
			n = atoi(optarg);
		else if (opt == 'w')
			warmup = atoi(optarg);
		else if (opt == 'f')
			files_module = optarg;
		else if (opt == 'm')
			modes = optarg;
		else
			return 2;
	}
	if (optind >= argc || n < 1) {
		fprintf(stderr, "usage: bench-wasm MODULE.wasm [-n N] [-w WARMUP] [-f FILES_MODULE] [-m MODES]\n");
		return 2;
	}
	module = argv[optind];
	for (int m = 0; m < NMODES; m++) {
		size_t len = strlen(mode_name[m]);
		const char *at = modes;

		if (modes == NULL) {
			on[m] = m != FILES || files_module != NULL;
			continue;
		}
		for (; at && *at; at = strchr(at, ',') ? strchr(at, ',') + 1 : NULL)
			if (strncmp(at, mode_name[m], len) == 0 && (at[len] == ',' || at[len] == '\0'))
				on[m] = 1;
	}
	if (on[FILES] && files_module == NULL) {
		fprintf(stderr, "bench-wasm: the files mode needs -f FILES_MODULE\n");
		return 2;
	}
	for (int m = 0; m < NMODES; m++)
		if (on[m])
			sel[nsel++] = m;
	if (nsel == 0) {
		fprintf(stderr, "bench-wasm: -m %s names no mode (cold, disk, memory, warm, api, files)\n", modes);
		return 2;
	}
	if (mkdtemp(cache_dir) == NULL)
		return 1;
	setenv("MIMOBOX_WASM_CACHE_DIR", cache_dir, 1);
	for (int m = 0; m < NMODES; m++) {
		wall[m] = calloc((size_t)n, sizeof(double));
		mod[m] = calloc((size_t)n, sizeof(double));
	}
	inst = calloc((size_t)n, sizeof(double));
	run = calloc((size_t)n, sizeof(double));

	if (mbx_config_new(&cfg, &err) < 0 || mbx_config_set_isolation(cfg, MBX_ISOLATION_WASM, &err) < 0)
		die("config", err);
	mbx_config_set_log(cfg, MBX_LOG_DEBUG, on_log, &ph);
	if (mbx_sandbox_new(&sb, cfg, &err) < 0)
		die("sandbox", err);

	for (int i = 0; i < warmup + n; i++) {
		for (int k = 0; k < nsel; k++) {
			int m = sel[(i + k) % nsel], rc;
			const char *args[] = { m == FILES ? files_module : module, NULL };
			mbx_sandbox *one = NULL;
			mbx_result *res = NULL;
			double t0;

			setenv("MIMOBOX_WASM_CACHE", cache_env[m], 1);
			memset(&ph, 0, sizeof(ph));
			t0 = now_us();
			if (m == WARM) {
				rc = mbx_sandbox_exec(sb, args, NULL, &res, &err);
			} else if (m == API) {
				rc = mbx_sandbox_new(&one, cfg, &err);
				if (rc == 0)
					rc = mbx_sandbox_exec(one, args, NULL, &res, &err);
				mbx_sandbox_free(one);
			} else
				rc = mbx_run(cfg, args, NULL, &res, &err);
			t0 = now_us() - t0;
			if (rc < 0)
				die(mode_name[m], err);
			if (mbx_result_exit_code(res) != 0 || !ph.seen) {
				fprintf(stderr, "bench-wasm: %s: exit %d (trap %s)\n", mode_name[m], mbx_result_exit_code(res),
					mbx_result_trap(res) ? mbx_result_trap(res) : "none");
				return 1;
			}
			mbx_result_free(res);
			if (i < warmup)
				continue;
			wall[m][i - warmup] = t0;
			mod[m][i - warmup] = (double)ph.module_us;
			if (m == MEMORY) {
				inst[i - warmup] = (double)ph.inst_us;
				run[i - warmup] = (double)(ph.inst_us + ph.run_us);
			}
		}
	}
	printf("mimobox wasm backend, %s, %d iterations (%d warm-up)%s%s\n",
	       MBX_WASMTIME_VERSION[0] ? "Wasmtime " MBX_WASMTIME_VERSION : "?", n, warmup, modes ? ", modes " : "",
	       modes ? modes : "");
	if (on[COLD]) {
		report("cold: start to exit", wall[COLD], n);
		report("cold: compile", mod[COLD], n);
	}
	if (on[DISK]) {
		report("disk: start to exit", wall[DISK], n);
		report("disk: load+deserialize", mod[DISK], n);
	}
	if (on[MEMORY]) {
		report("memory: start to exit", wall[MEMORY], n);
		report("memory: module lookup", mod[MEMORY], n);
		report("instantiate", inst, n);
		report("instantiate+run", run, n);
	}
	if (on[WARM])
		report("warm exec (live sandbox)", wall[WARM], n);
	if (on[API])
		report("api: new+exec+free", wall[API], n);
	if (on[FILES])
		report("files: start to exit", wall[FILES], n);
	mbx_sandbox_free(sb);
	mbx_config_free(cfg);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", cache_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench-wasm: could not remove %s\n", cache_dir);
	}
	return 0;
}
