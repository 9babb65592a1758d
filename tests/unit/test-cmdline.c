/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of command-line splitting and environment checks. */
#include "internal.h"
#include "tap.h"

static char **split(const char *line, int *rc)
{
	char **v = NULL;

	*rc = mbx__cmdline_split(line, &v, NULL);
	return v;
}

static void test_plain(void)
{
	int rc;
	char **v = split("  echo   hello\tworld ", &rc);

	TAP_CHECK_INT(rc, MBX_OK);
	TAP_CHECK_INT(mbx__strv_len(v), 3);
	TAP_CHECK_STR(v[0], "echo");
	TAP_CHECK_STR(v[2], "world");
	mbx__strv_free(v);
}

static void test_quotes(void)
{
	int rc;
	char **v = split("sh -c 'echo \"$HOME\" | cat' \"a \\\"b\\\" \\$c\" it\\'s '' x\"y\"z", &rc);

	TAP_CHECK_INT(rc, MBX_OK);
	TAP_CHECK_INT(mbx__strv_len(v), 7);
	TAP_CHECK_STR(v[2], "echo \"$HOME\" | cat");
	TAP_CHECK_STR(v[3], "a \"b\" $c");
	TAP_CHECK_STR(v[4], "it's");
	TAP_CHECK_STR(v[5], "");
	TAP_CHECK_STR(v[6], "xyz");
	mbx__strv_free(v);
}

static void test_no_shell(void)
{
	int rc;
	char **v = split("echo a > b | c; $(rm) *", &rc);

	/* Operators are words: there is no shell to interpret them. */
	TAP_CHECK_INT(rc, MBX_OK);
	TAP_CHECK_INT(mbx__strv_len(v), 8);
	TAP_CHECK_STR(v[2], ">");
	TAP_CHECK_STR(v[6], "$(rm)");
	mbx__strv_free(v);
}

static void test_errors(void)
{
	mbx_error *err = NULL;
	char **v = NULL;

	TAP_CHECK_INT(mbx__cmdline_split("echo 'open", &v, &err), MBX_EINVAL);
	TAP_CHECK(v == NULL);
	TAP_CHECK(strstr(mbx_error_message(err), "single quote") != NULL);
	mbx_error_free(err);
	err = NULL;
	TAP_CHECK_INT(mbx__cmdline_split("echo \"open", &v, &err), MBX_EINVAL);
	TAP_CHECK(strstr(mbx_error_message(err), "double quote") != NULL);
	mbx_error_free(err);
	err = NULL;
	TAP_CHECK_INT(mbx__cmdline_split("   ", &v, &err), MBX_EINVAL);
	TAP_CHECK(strstr(mbx_error_message(err), "empty") != NULL);
	mbx_error_free(err);
	TAP_CHECK_INT(mbx__cmdline_split("trailing \\", &v, NULL), MBX_EINVAL);
}

static void test_env_names(void)
{
	struct mbx_env env = { 0 };
	mbx_error *err = NULL;
	char **merged = NULL;

	TAP_CHECK_INT(mbx__env_set(&env, "LD_PRELOAD", "/x.so", &err), MBX_EINVAL);
	TAP_CHECK(strstr(mbx_error_message(err), "LD_PRELOAD") != NULL);
	TAP_CHECK(mbx_error_suggestion(err) != NULL);
	mbx_error_free(err);
	TAP_CHECK_INT(mbx__env_set(&env, "LD_LIBRARY_PATH", "/x", NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx__env_set(&env, "BASH_ENV", "/x", NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx__env_set(&env, "BASH_FUNC_ls%%", "() { :; }", NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx__env_set(&env, "GLIBC_TUNABLES", "x", NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx__env_set(&env, "", "x", NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx__env_set(&env, "A=B", "x", NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx__env_set(&env, "9LIVES", "x", NULL), MBX_EINVAL);
	TAP_CHECK_INT(mbx__env_set(&env, "GOOD_NAME", "1", NULL), MBX_OK);
	TAP_CHECK_INT(mbx__env_set(&env, "GOOD_NAME", "2", NULL), MBX_OK);
	TAP_CHECK_INT(env.n, 1);
	TAP_CHECK_INT(mbx__env_set(&env, "PATH", "/opt/bin", NULL), MBX_OK);
	/* Merge: the baseline, then config, later values replace earlier ones. */
	TAP_CHECK_INT(mbx__env_merge(&env, NULL, &merged, NULL), MBX_OK);
	int saw_path = 0, saw_good = 0, saw_home = 0;
	for (size_t i = 0; merged[i]; i++) {
		saw_path += strcmp(merged[i], "PATH=/opt/bin") == 0;
		saw_good += strcmp(merged[i], "GOOD_NAME=2") == 0;
		saw_home += strncmp(merged[i], "HOME=", 5) == 0;
	}
	TAP_CHECK_INT(saw_path, 1);
	TAP_CHECK_INT(saw_good, 1);
	TAP_CHECK_INT(saw_home, 1);
	mbx__strv_free(merged);
	mbx__env_release(&env);
}

static const struct tap_case cases[] = {
	{ "cmdline/plain", test_plain },
	{ "cmdline/quotes", test_quotes },
	{ "cmdline/no-shell", test_no_shell },
	{ "cmdline/errors", test_errors },
	{ "env/names", test_env_names },
};

TAP_MAIN(cases)
