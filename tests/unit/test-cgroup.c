/* SPDX-License-Identifier: Apache-2.0 */
/* The cgroup ladder: pure parsers, then live cgroups when run as root. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/linux/cgroup.h"
#include "tap.h"

static void test_mountinfo_cgroup2(void)
{
	char line[] = "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate\n";
	struct mbx_mountinfo mi;

	TAP_CHECK_INT(mbx__mountinfo_parse_line(line, &mi), 0);
	TAP_CHECK_STR(mi.root, "/");
	TAP_CHECK_STR(mi.mountpoint, "/sys/fs/cgroup/unified");
	TAP_CHECK_STR(mi.fstype, "cgroup2");
	TAP_CHECK_STR(mi.source, "cgroup2");
	TAP_CHECK_STR(mi.super_opts, "rw,nsdelegate");
}

static void test_mountinfo_v1(void)
{
	char line[] = "32 31 0:29 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev - cgroup cgroup rw,cpu,cpuacct";
	char esc[] = "50 1 8:1 /a\\040b /mnt/with\\040space\\134x rw master:1 shared:2 - ext4 /dev/sda1 rw";
	char bad1[] = "50 1 8:1 / /mnt rw shared:2 ext4 /dev/sda1 rw";
	char bad2[] = "50 1 8:1";
	char bad3[] = "";
	struct mbx_mountinfo mi;

	TAP_CHECK_INT(mbx__mountinfo_parse_line(line, &mi), 0);
	TAP_CHECK_STR(mi.root, "/docker/abc");
	TAP_CHECK_STR(mi.mountpoint, "/sys/fs/cgroup/cpu,cpuacct");
	TAP_CHECK_STR(mi.fstype, "cgroup");
	TAP_CHECK(mbx__cgroup_list_has(mi.super_opts, "cpu"));
	TAP_CHECK(mbx__cgroup_list_has(mi.super_opts, "cpuacct"));
	TAP_CHECK(!mbx__cgroup_list_has(mi.super_opts, "cpuset"));
	TAP_CHECK(!mbx__cgroup_list_has(mi.super_opts, "memory"));

	TAP_CHECK_INT(mbx__mountinfo_parse_line(esc, &mi), 0);
	TAP_CHECK_STR(mi.root, "/a b");
	TAP_CHECK_STR(mi.mountpoint, "/mnt/with space\\x");
	TAP_CHECK_STR(mi.fstype, "ext4");

	TAP_CHECK_INT(mbx__mountinfo_parse_line(bad1, &mi), -1);
	TAP_CHECK_INT(mbx__mountinfo_parse_line(bad2, &mi), -1);
	TAP_CHECK_INT(mbx__mountinfo_parse_line(bad3, &mi), -1);
}

static const char hybrid[] =
	"22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
	"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	"33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
	"34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
	"35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
	"39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
	"40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
	"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

static void test_find_mount(void)
{
	static const char v2only[] =
		"22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
		"garbage line\n"
		"29 22 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot";
	char mnt[256], root[256];

	TAP_CHECK_INT(mbx__cgroup_find_mount(hybrid, NULL, mnt, sizeof(mnt), root, sizeof(root)), 0);
	TAP_CHECK_STR(mnt, "/sys/fs/cgroup/unified");
	TAP_CHECK_STR(root, "/");
	TAP_CHECK_INT(mbx__cgroup_find_mount(hybrid, "memory", mnt, sizeof(mnt), root, sizeof(root)), 0);
	TAP_CHECK_STR(mnt, "/sys/fs/cgroup/memory");
	TAP_CHECK_INT(mbx__cgroup_find_mount(hybrid, "cpu", mnt, sizeof(mnt), root, sizeof(root)), 0);
	TAP_CHECK_STR(mnt, "/sys/fs/cgroup/cpu");
	TAP_CHECK_INT(mbx__cgroup_find_mount(hybrid, "pids", mnt, sizeof(mnt), root, sizeof(root)), 0);
	TAP_CHECK_STR(mnt, "/sys/fs/cgroup/pids");
	TAP_CHECK_INT(mbx__cgroup_find_mount(hybrid, "hugetlb", mnt, sizeof(mnt), root, sizeof(root)), -ENOENT);
	TAP_CHECK_INT(mbx__cgroup_find_mount(hybrid, "memory", mnt, 8, root, sizeof(root)), -ENAMETOOLONG);

	TAP_CHECK_INT(mbx__cgroup_find_mount(v2only, NULL, mnt, sizeof(mnt), root, sizeof(root)), 0);
	TAP_CHECK_STR(mnt, "/sys/fs/cgroup");
	TAP_CHECK_INT(mbx__cgroup_find_mount(v2only, "memory", mnt, sizeof(mnt), root, sizeof(root)), -ENOENT);
	TAP_CHECK_INT(mbx__cgroup_find_mount("", NULL, mnt, sizeof(mnt), root, sizeof(root)), -ENOENT);
}

static void test_list_has(void)
{
	TAP_CHECK(mbx__cgroup_list_has("cpuset cpu io memory pids\n", "pids"));
	TAP_CHECK(mbx__cgroup_list_has("cpuset cpu io memory pids\n", "cpu"));
	TAP_CHECK(!mbx__cgroup_list_has("cpuset io memory\n", "cpu"));
	TAP_CHECK(!mbx__cgroup_list_has("", "memory"));
	TAP_CHECK(!mbx__cgroup_list_has("\n", "memory"));
	TAP_CHECK(mbx__cgroup_list_has("rw,memory", "memory"));
	TAP_CHECK(!mbx__cgroup_list_has("rw,memoryx", "memory"));
}

static void test_proc_cgroup(void)
{
	static const char v1[] =
		"9:name=systemd:/\n"
		"8:pids:/user.slice\n"
		"4:memory:/process_api/4ff5f400\n"
		"2:cpu,cpuacct:/a:b\n"
		"0::/\n";
	static const char v2[] = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope\n";
	static const char none[] = "4:memory:/\n";
	char out[256];

	TAP_CHECK_INT(mbx__cgroup_find_own(v1, NULL, out, sizeof(out)), 0);
	TAP_CHECK_STR(out, "/");
	TAP_CHECK_INT(mbx__cgroup_find_own(v1, "memory", out, sizeof(out)), 0);
	TAP_CHECK_STR(out, "/process_api/4ff5f400");
	TAP_CHECK_INT(mbx__cgroup_find_own(v1, "pids", out, sizeof(out)), 0);
	TAP_CHECK_STR(out, "/user.slice");
	TAP_CHECK_INT(mbx__cgroup_find_own(v1, "cpuacct", out, sizeof(out)), 0);
	TAP_CHECK_STR(out, "/a:b");
	TAP_CHECK_INT(mbx__cgroup_find_own(v1, "name=systemd", out, sizeof(out)), 0);
	TAP_CHECK_STR(out, "/");
	TAP_CHECK_INT(mbx__cgroup_find_own(v1, "cpuset", out, sizeof(out)), -ENOENT);

	TAP_CHECK_INT(mbx__cgroup_find_own(v2, NULL, out, sizeof(out)), 0);
	TAP_CHECK_STR(out, "/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope");
	TAP_CHECK_INT(mbx__cgroup_find_own(v2, "memory", out, sizeof(out)), -ENOENT);
	TAP_CHECK_INT(mbx__cgroup_find_own(v2, NULL, out, 10), -ENAMETOOLONG);
	TAP_CHECK_INT(mbx__cgroup_find_own(none, NULL, out, sizeof(out)), -ENOENT);
	TAP_CHECK_INT(mbx__cgroup_find_own("", NULL, out, sizeof(out)), -ENOENT);
}

static void test_join(void)
{
	char out[256];

	TAP_CHECK_INT(mbx__cgroup_join("/sys/fs/cgroup", "/", "/", out, sizeof(out)), 0);
	TAP_CHECK_STR(out, "/sys/fs/cgroup");
	TAP_CHECK_INT(mbx__cgroup_join("/sys/fs/cgroup", "/", "/user.slice/a.scope", out, sizeof(out)), 0);
	TAP_CHECK_STR(out, "/sys/fs/cgroup/user.slice/a.scope");
	TAP_CHECK_INT(mbx__cgroup_join("/sys/fs/cgroup", "/docker/abc", "/docker/abc/sub", out, sizeof(out)), 0);
	TAP_CHECK_STR(out, "/sys/fs/cgroup/sub");
	TAP_CHECK_INT(mbx__cgroup_join("/sys/fs/cgroup", "/docker/abc", "/docker/abc", out, sizeof(out)), 0);
	TAP_CHECK_STR(out, "/sys/fs/cgroup");
	TAP_CHECK_INT(mbx__cgroup_join("/sys/fs/cgroup", "/docker/abc", "/docker/abcd", out, sizeof(out)), -ENOENT);
	TAP_CHECK_INT(mbx__cgroup_join("/sys/fs/cgroup", "/", "/../../x", out, sizeof(out)), -ENOENT);
	TAP_CHECK_INT(mbx__cgroup_join("/", "/", "/x", out, sizeof(out)), 0);
	TAP_CHECK_STR(out, "/x");
	TAP_CHECK_INT(mbx__cgroup_join("/sys/fs/cgroup", "/", "/long/path", out, 12), -ENAMETOOLONG);
}

static void test_events(void)
{
	static const char events[] = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
	static const char oom_control[] = "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n";
	static const char none[] = "oom_kill_disable 1\nunder_oom 0\n";
	uint64_t n = 99;

	TAP_CHECK_INT(mbx__cgroup_parse_key(events, "oom_kill", &n), 0);
	TAP_CHECK_INT(n, 2);
	TAP_CHECK_INT(mbx__cgroup_parse_key(events, "oom", &n), 0);
	TAP_CHECK_INT(n, 3);
	TAP_CHECK_INT(mbx__cgroup_parse_key(oom_control, "oom_kill", &n), 0);
	TAP_CHECK_INT(n, 5);
	TAP_CHECK_INT(mbx__cgroup_parse_key(none, "oom_kill", &n), -1);
	TAP_CHECK_INT(mbx__cgroup_parse_key("oom_kill x\n", "oom_kill", &n), -1);
	TAP_CHECK_INT(mbx__cgroup_parse_key("", "oom_kill", &n), -1);
	TAP_CHECK_INT(mbx__cgroup_parse_key("populated 1", "populated", &n), 0);
	TAP_CHECK_INT(n, 1);
}

static void test_cpu_max(void)
{
	char buf[64];

	TAP_CHECK_INT(mbx__cgroup_cpu_max(0, buf, sizeof(buf)), 0);
	TAP_CHECK_STR(buf, "max 100000");
	TAP_CHECK_INT(mbx__cgroup_cpu_max(1000, buf, sizeof(buf)), 0);
	TAP_CHECK_STR(buf, "100000 100000");
	TAP_CHECK_INT(mbx__cgroup_cpu_max(500, buf, sizeof(buf)), 0);
	TAP_CHECK_STR(buf, "50000 100000");
	TAP_CHECK_INT(mbx__cgroup_cpu_max(2500, buf, sizeof(buf)), 0);
	TAP_CHECK_STR(buf, "250000 100000");
	/* below the kernel's 1 ms minimum quota */
	TAP_CHECK_INT(mbx__cgroup_cpu_max(1, buf, sizeof(buf)), 0);
	TAP_CHECK_STR(buf, "1000 100000");
	TAP_CHECK_INT(mbx__cgroup_cpu_max(1000, buf, 5), -1);
	TAP_CHECK_INT(mbx__cgroup_cpu_quota_us(4000000000U), 400000000000ULL);
}

static void test_names_and_args(void)
{
	struct mbx_cgroup cg;
	mbx_error *err = NULL;
	char *why = NULL;

	TAP_CHECK_STR(mbx__limits_mech_name(MBX_LIMITS_CGROUP_V2), "cgroup-v2");
	TAP_CHECK_STR(mbx__limits_mech_name(MBX_LIMITS_CGROUP_V1), "cgroup-v1");
	TAP_CHECK_STR(mbx__limits_mech_name(MBX_LIMITS_RLIMIT), "rlimit");
	TAP_CHECK_STR(mbx__limits_mech_name(MBX_LIMITS_NONE), "none");

	TAP_CHECK_INT(mbx__cgroup_create(&cg, "../escape", NULL, &why, &err), MBX_EINVAL);
	TAP_CHECK(err != NULL);
	TAP_CHECK(why == NULL);
	mbx_error_free(err);
	err = NULL;
	TAP_CHECK_INT(mbx__cgroup_create(&cg, "", NULL, NULL, NULL), MBX_EINVAL);

	/* destroy is safe on a zeroed struct, twice */
	memset(&cg, 0, sizeof(cg));
	mbx__cgroup_destroy(&cg);
	mbx__cgroup_destroy(&cg);
	mbx__cgroup_destroy(NULL);
	TAP_CHECK_INT(mbx__cgroup_oom_kills(&cg), 0);
	TAP_CHECK_INT(mbx__cgroup_attach(&cg, getpid(), NULL), MBX_OK);
}

static char *slurp(const char *dir, const char *file)
{
	static char buf[256];
	char path[4096];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "re");
	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static int exists(const char *path)
{
	struct stat st;

	return path != NULL && stat(path, &st) == 0;
}

/* 1 when `pid` is listed in dir/cgroup.procs. */
static int has_pid(const char *dir, pid_t pid)
{
	char *text = slurp(dir, "cgroup.procs"), *line, *save = NULL;

	if (text == NULL)
		return 0;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (atoi(line) == pid)
			return 1;
	return 0;
}

static pid_t spawn_sleeper(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		for (;;)
			pause();
	}
	return pid;
}

/* Creates a live cgroup with the given limits, attaches a sleeping child,
 * checks the files, destroys it and checks the child and the directories
 * are gone. */
static void live_case(uint32_t millicpus)
{
	struct mbx_limits lim = { 64ULL << 20, 10, millicpus };
	struct mbx_cgroup cg;
	mbx_error *err = NULL;
	char *why = NULL, id[64], *dirs[4];
	int status = 0, i, n = 0;
	pid_t child;

	snprintf(id, sizeof(id), "test-%d-%u", (int)getpid(), millicpus);
	TAP_CHECK_INT(mbx__cgroup_create(&cg, id, &lim, &why, &err), MBX_OK);
	if (err != NULL) {
		printf("# %s\n", mbx_error_message(err));
		mbx_error_free(err);
		return;
	}
	printf("# mech %s%s%s\n", mbx__limits_mech_name(cg.mech), why ? ", why: " : "", why ? why : "");
	free(why);
	TAP_CHECK(cg.mech == MBX_LIMITS_CGROUP_V1 || cg.mech == MBX_LIMITS_CGROUP_V2);
	if (cg.mech != MBX_LIMITS_CGROUP_V1 && cg.mech != MBX_LIMITS_CGROUP_V2) {
		mbx__cgroup_destroy(&cg);
		return;
	}

	child = spawn_sleeper();
	TAP_CHECK(child > 0);
	if (child <= 0) {
		mbx__cgroup_destroy(&cg);
		return;
	}
	TAP_CHECK_INT(mbx__cgroup_attach(&cg, child, NULL), MBX_OK);

	if (cg.mech == MBX_LIMITS_CGROUP_V2) {
		printf("# %s\n", cg.v2_dir);
		TAP_CHECK_STR(slurp(cg.v2_dir, "memory.max"), "67108864\n");
		TAP_CHECK_STR(slurp(cg.v2_dir, "pids.max"), "10\n");
		if (millicpus)
			TAP_CHECK_STR(slurp(cg.v2_dir, "cpu.max"), "50000 100000\n");
		TAP_CHECK(has_pid(cg.v2_dir, child));
		dirs[n++] = strdup(cg.v2_dir);
	} else {
		for (i = 0; i < 3; i++)
			printf("# %s\n", cg.v1_dir[i] ? cg.v1_dir[i] : "(none)");
		TAP_CHECK_STR(slurp(cg.v1_dir[0], "memory.limit_in_bytes"), "67108864\n");
		if (exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") && cg.v1_dir[0] != NULL &&
		    strncmp(cg.v1_dir[0], "/sys/fs/cgroup/memory/", 22) == 0)
			TAP_CHECK_STR(slurp(cg.v1_dir[0], "memory.memsw.limit_in_bytes"), "67108864\n");
		TAP_CHECK_STR(slurp(cg.v1_dir[1], "pids.max"), "10\n");
		if (millicpus) {
			TAP_CHECK(cg.v1_dir[2] != NULL);
			TAP_CHECK_STR(slurp(cg.v1_dir[2], "cpu.cfs_quota_us"), "50000\n");
			TAP_CHECK_STR(slurp(cg.v1_dir[2], "cpu.cfs_period_us"), "100000\n");
		} else {
			TAP_CHECK(cg.v1_dir[2] == NULL);
		}
		for (i = 0; i < 3; i++) {
			if (cg.v1_dir[i] == NULL)
				continue;
			TAP_CHECK(has_pid(cg.v1_dir[i], child));
			dirs[n++] = strdup(cg.v1_dir[i]);
		}
	}
	TAP_CHECK_INT(mbx__cgroup_oom_kills(&cg), 0);

	mbx__cgroup_destroy(&cg);
	TAP_CHECK(cg.v2_dir == NULL && cg.v1_dir[0] == NULL && cg.v1_dir[1] == NULL && cg.v1_dir[2] == NULL);
	mbx__cgroup_destroy(&cg);
	for (i = 0; i < n; i++) {
		TAP_CHECK(dirs[i] != NULL && !exists(dirs[i]));
		free(dirs[i]);
	}
	/* the destroy killed the child; waitpid reaps it */
	TAP_CHECK_INT(waitpid(child, &status, 0), child);
	TAP_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
}

static void test_live(void)
{
	if (geteuid() != 0)
		TAP_NOT_APPLICABLE("needs root to create cgroups on every host");
	live_case(0);
}

static void test_live_cpu(void)
{
	if (geteuid() != 0)
		TAP_NOT_APPLICABLE("needs root to create cgroups on every host");
	live_case(500);
}

/* A child that goes over its memory limit is OOM-killed and counted. */
static void test_live_oom(void)
{
	struct mbx_limits lim = { 32ULL << 20, 10, 0 };
	struct mbx_cgroup cg;
	char id[64];
	int status = 0, pfd[2];
	pid_t child;

	if (geteuid() != 0)
		TAP_NOT_APPLICABLE("needs root to create cgroups on every host");
	snprintf(id, sizeof(id), "test-oom-%d", (int)getpid());
	TAP_CHECK_INT(mbx__cgroup_create(&cg, id, &lim, NULL, NULL), MBX_OK);
	if (cg.mech != MBX_LIMITS_CGROUP_V1 && cg.mech != MBX_LIMITS_CGROUP_V2) {
		mbx__cgroup_destroy(&cg);
		TAP_SKIP("no cgroup rung here");
	}
	TAP_CHECK_INT(pipe(pfd), 0);
	child = fork();
	if (child == 0) {
		char c;
		size_t i, len = 256U << 20;
		char *p;

		close(pfd[1]);
		if (read(pfd[0], &c, 1) != 1)
			_exit(2);
		p = malloc(len);
		if (p == NULL)
			_exit(3);
		for (i = 0; i < len; i += 4096)
			p[i] = 1;
		_exit(0);
	}
	close(pfd[0]);
	TAP_CHECK_INT(mbx__cgroup_attach(&cg, child, NULL), MBX_OK);
	TAP_CHECK_INT(write(pfd[1], "x", 1), 1);
	close(pfd[1]);
	TAP_CHECK_INT(waitpid(child, &status, 0), child);
	TAP_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	TAP_CHECK(mbx__cgroup_oom_kills(&cg) >= 1);
	mbx__cgroup_destroy(&cg);
}

/* Whatever the user, the ladder lands somewhere and says why it went down. */
static void test_ladder_and_probe(void)
{
	struct mbx_limits lim = { 64ULL << 20, 10, 0 };
	char *d2 = NULL, *d1 = NULL, *why = NULL, id[64];
	struct mbx_cgroup cg;
	int ok2 = -1, ok1 = -1;

	TAP_CHECK_INT(mbx__cgroup_probe(&d2, &d1, &ok2, &ok1), MBX_OK);
	TAP_CHECK(d2 != NULL && d1 != NULL);
	printf("# probe v2 (%d): %s\n# probe v1 (%d): %s\n", ok2, d2 ? d2 : "", ok1, d1 ? d1 : "");
	free(d2);
	free(d1);

	snprintf(id, sizeof(id), "test-ladder-%d", (int)getpid());
	TAP_CHECK_INT(mbx__cgroup_create(&cg, id, &lim, &why, NULL), MBX_OK);
	printf("# uid %d: %s%s%s\n", (int)geteuid(), mbx__limits_mech_name(cg.mech), why ? ": " : "", why ? why : "");
	TAP_CHECK(cg.mech != MBX_LIMITS_NONE);
	if (cg.mech == MBX_LIMITS_CGROUP_V2) {
		TAP_CHECK(ok2 != 0);
		TAP_CHECK(why == NULL);
	} else if (cg.mech == MBX_LIMITS_CGROUP_V1) {
		TAP_CHECK(ok1 != 0);
		TAP_CHECK(why != NULL && strstr(why, "cgroup v2: ") == why);
	} else {
		TAP_CHECK(ok2 == 0 && ok1 == 0);
		TAP_CHECK(why != NULL && strstr(why, "cgroup v2: ") == why && strstr(why, "; cgroup v1: ") != NULL);
	}
	free(why);
	mbx__cgroup_destroy(&cg);
}

static const struct tap_case cases[] = {
	{ "cgroup/mountinfo-cgroup2", test_mountinfo_cgroup2 },
	{ "cgroup/mountinfo-v1", test_mountinfo_v1 },
	{ "cgroup/find-mount", test_find_mount },
	{ "cgroup/list-has", test_list_has },
	{ "cgroup/proc-self-cgroup", test_proc_cgroup },
	{ "cgroup/join", test_join },
	{ "cgroup/memory-events", test_events },
	{ "cgroup/cpu-max", test_cpu_max },
	{ "cgroup/names-and-args", test_names_and_args },
	{ "cgroup/ladder-and-probe", test_ladder_and_probe },
	{ "cgroup/live", test_live },
	{ "cgroup/live-cpu", test_live_cpu },
	{ "cgroup/live-oom", test_live_oom },
};

TAP_MAIN(cases)
