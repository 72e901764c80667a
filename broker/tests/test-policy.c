/* Unit tests: policy parsing, path normalisation, matching. */
#include "flags.h"
#include "harness.h"
#include "policy-index.h"
#include "policy.h"

#include <errno.h>
#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static void parse_ok(const char *text, struct policy *pol)
{
	char err[POLICY_ERROR_MAX] = "";

	if (policy_parse(text, strlen(text), "test.policy", pol, err, sizeof err) < 0)
		g_error("unexpected parse error: %s", err);
}

static void assert_error_len(const char *text, size_t len, const char *expected)
{
	char err[POLICY_ERROR_MAX] = "";
	struct policy pol;

	g_assert_cmpint(policy_parse(text, len, "test.policy", &pol, err, sizeof err), ==, -1);
	g_assert_cmpstr(err, ==, expected);
	g_assert_cmpuint(pol.count, ==, 0);
}

static void assert_error(const char *text, const char *expected)
{
	assert_error_len(text, strlen(text), expected);
}

static void test_parse(void)
{
	struct policy pol;

	parse_ok("# comment\n\n  ro /images/base.qcow2\nrw\t/images/vm1.qcow2  \r\n"
		 "create /images/vm1/snap/\ndeny /images/vm1/secret\ndev /dev/kvm\n"
		 "mode 0640\nsandbox-ro /usr/\nsandbox-rw /run/vm 1/\n   # indented\n"
		 "ro /", &pol);
	g_assert_cmpuint(pol.count, ==, 8);
	g_assert_cmpint(pol.create_mode, ==, 0640);
	g_assert_cmpint(pol.rules[0].kind, ==, RULE_RO);
	g_assert_cmpstr(pol.rules[0].path, ==, "/images/base.qcow2");
	g_assert_cmpstr(pol.rules[0].leaf, ==, "base.qcow2");
	g_assert_cmpuint(pol.rules[0].line, ==, 3);
	g_assert_false(pol.rules[0].tree);
	g_assert_cmpstr(pol.rules[1].path, ==, "/images/vm1.qcow2");
	g_assert_cmpint(pol.rules[2].kind, ==, RULE_CREATE);
	g_assert_true(pol.rules[2].tree);
	g_assert_cmpstr(pol.rules[2].path, ==, "/images/vm1/snap");
	g_assert_cmpint(pol.rules[4].kind, ==, RULE_DEV);
	g_assert_cmpstr(pol.rules[6].path, ==, "/run/vm 1");
	g_assert_true(pol.rules[7].tree);
	g_assert_cmpstr(pol.rules[7].path, ==, "");
	policy_free(&pol);
	parse_ok("", &pol);
	g_assert_cmpint(pol.create_mode, ==, POLICY_DEFAULT_MODE);
	policy_free(&pol);
}

static void test_parse_errors(void)
{
	assert_error("ro /a\nfrobnicate /x\n", "test.policy:2: unknown keyword \"frobnicate\"");
	assert_error("ro images/x\n", "test.policy:1: path must be absolute");
	assert_error("\n\nrw\n", "test.policy:3: missing path");
	assert_error("ro /a/../b\n", "test.policy:1: \".\" and \"..\" are not allowed in rule paths");
	assert_error("ro /a/./b\n", "test.policy:1: \".\" and \"..\" are not allowed in rule paths");
	assert_error("ro /a//b\n", "test.policy:1: empty path component (\"//\")");
	assert_error("mode 0778\n", "test.policy:1: mode must be octal, 0 to 0777");
	assert_error("mode 01777\n", "test.policy:1: mode must be octal, 0 to 0777");
	assert_error("mode\n", "test.policy:1: mode must be octal, 0 to 0777");
	assert_error_len("ro /a\0b\n", 8, "test.policy:1: NUL byte in line");
}

static void test_normalize(void)
{
	static const char *cases[][2] = {
		{ "/", "/" }, { "//", "/" }, { "/a/b", "/a/b" }, { "/a//b/", "/a/b" },
		{ "/a/./b/.", "/a/b" }, { "/a/b/../c", "/a/c" }, { "/../../a", "/a" },
		{ "/a/..", "/" }, { "/a/b/../../..", "/" }, { "/a/...", "/a/..." },
	};
	char out[64];

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_assert_cmpint(normalize_path(cases[i][0], strlen(cases[i][0]), out, sizeof out), ==, 0);
		g_assert_cmpstr(out, ==, cases[i][1]);
	}
	g_assert_cmpint(normalize_path("a/b", 3, out, sizeof out), ==, -EINVAL);
	g_assert_cmpint(normalize_path("", 0, out, sizeof out), ==, -EINVAL);
	g_assert_cmpint(normalize_path("/aaaaaaaa", 9, out, 8), ==, -ENAMETOOLONG);
}

static void test_matching(void)
{
	struct policy pol;
	const struct rule *r;

	parse_ok("ro /images/\nrw /images/vm1.qcow2\ndeny /images/vm1/secret/\n"
		 "create /images/vm1/snap/\nro /images/vm1/snap/pinned\nrw /images/twice\n"
		 "ro /images/twice\n", &pol);
	r = policy_allowance(&pol, "/images/base.qcow2", MATCH_AS_WRITTEN);
	g_assert_true(r == &pol.rules[0]);
	g_assert_true(policy_allowance(&pol, "/images", MATCH_AS_WRITTEN) == &pol.rules[0]);
	g_assert_null(policy_allowance(&pol, "/imagesX/a", MATCH_AS_WRITTEN));
	g_assert_null(policy_allowance(&pol, "/etc/passwd", MATCH_AS_WRITTEN));
	g_assert_true(policy_allowance(&pol, "/images/vm1.qcow2", MATCH_AS_WRITTEN) == &pol.rules[1]);
	g_assert_true(policy_allowance(&pol, "/images/vm1.qcow2x", MATCH_AS_WRITTEN) == &pol.rules[0]);
	g_assert_true(policy_allowance(&pol, "/images/vm1/snap/a", MATCH_AS_WRITTEN) == &pol.rules[3]);
	g_assert_true(policy_allowance(&pol, "/images/vm1/snap/pinned", MATCH_AS_WRITTEN) == &pol.rules[4]);
	g_assert_true(policy_allowance(&pol, "/images/twice", MATCH_AS_WRITTEN) == &pol.rules[6]);
	g_assert_true(policy_denial(&pol, "/images/vm1/secret", MATCH_AS_WRITTEN) == &pol.rules[2]);
	g_assert_true(policy_denial(&pol, "/images/vm1/secret/x", MATCH_AS_WRITTEN) == &pol.rules[2]);
	g_assert_null(policy_denial(&pol, "/images/vm1/secretx", MATCH_AS_WRITTEN));
	g_assert_cmpuint(rule_grants(&pol.rules[0]), ==, ACCESS_READ);
	g_assert_cmpuint(rule_grants(&pol.rules[3]), ==, ACCESS_READ | ACCESS_WRITE | ACCESS_CREATE);
	g_assert_cmpuint(rule_grants(&pol.rules[2]), ==, 0);
	policy_free(&pol);
	parse_ok("ro /\n", &pol);
	g_assert_nonnull(policy_allowance(&pol, "/", MATCH_AS_WRITTEN));
	g_assert_nonnull(policy_allowance(&pol, "/etc/passwd", MATCH_AS_WRITTEN));
	policy_free(&pol);
}

static void test_load(void)
{
	char err[POLICY_ERROR_MAX];
	char *dir = g_dir_make_tmp("ohs-policy-XXXXXX", NULL);
	char *file = g_build_filename(dir, "p", NULL);
	char *link = g_build_filename(dir, "link", NULL);
	char *text = g_strdup_printf("ro %s/\nro %s/missing/\n", link, dir);
	struct policy pol;

	g_assert_cmpint(symlink(dir, link), ==, 0);
	g_file_set_contents(file, text, -1, NULL);
	g_assert_cmpint(policy_load(file, &pol, err, sizeof err), ==, -1);
	g_assert_nonnull(strstr(err, ":2: cannot open directory"));
	g_assert_nonnull(strstr(err, "No such file or directory"));
	g_free(text);
	text = g_strdup_printf("ro %s/\nrw %s/p\ndeny /nonexistent/x\n", link, link);
	g_file_set_contents(file, text, -1, NULL);
	g_assert_cmpint(policy_load(file, &pol, err, sizeof err), ==, 0);
	/* rules are matched against what they really are at load time */
	g_assert_cmpstr(pol.rules[0].real, ==, dir);
	g_assert_cmpstr(pol.rules[1].real, ==, file);
	g_assert_cmpint(pol.rules[0].dirfd, >=, 0);
	g_assert_cmpstr(pol.rules[2].real, ==, "/nonexistent/x");
	/* the index of real paths was rebuilt after they changed */
	g_assert_true(policy_allowance(&pol, file, MATCH_REAL) == &pol.rules[1]);
	g_assert_null(policy_allowance(&pol, file, MATCH_AS_WRITTEN));
	g_assert_true(policy_denial(&pol, "/nonexistent/x", MATCH_REAL) == &pol.rules[2]);
	policy_free(&pol);
	g_assert_cmpint(policy_load("/nonexistent/policy", &pol, err, sizeof err), ==, -1);
	g_assert_cmpstr(err, ==, "/nonexistent/policy: cannot read: No such file or directory");
	unlink(link);
	unlink(file);
	rmdir(dir);
	g_free(text);
	g_free(file);
	g_free(link);
	g_free(dir);
}

/* The rules in file order, as matching worked before there was an index. */
static const struct rule *oracle_denial(const struct policy *pol, const char *path,
					enum match_on on)
{
	for (size_t i = 0; i < pol->count; i++)
		if (pol->rules[i].kind == RULE_DENY && rule_covers(&pol->rules[i], path, on))
			return &pol->rules[i];
	return NULL;
}

static size_t oracle_specificity(const struct rule *rule, enum match_on on)
{
	if (!rule->tree)
		return SIZE_MAX;
	return on == MATCH_REAL ? rule->real_len : rule->path_len;
}

static const struct rule *oracle_allowance(const struct policy *pol, const char *path,
					   enum match_on on)
{
	const struct rule *best = NULL;

	for (size_t i = 0; i < pol->count; i++) {
		const struct rule *rule = &pol->rules[i];

		if (!rule_is_brokered(rule) || !rule_covers(rule, path, on))
			continue;
		if (!best || oracle_specificity(rule, on) >= oracle_specificity(best, on))
			best = rule;
	}
	return best;
}

/* Few names, so that rules collide, nest and share prefixes. */
static const char *const rule_paths[] = {
	"", "/a", "/a/b", "/a/b/c", "/ab", "/b", "/b/a",
};

/*
 * The rule paths, their near misses, what lies beneath them, and two that
 * normalize_path() never makes but the functions accept all the same.
 */
static const char *const query_paths[] = {
	"/", "/a", "/a/b", "/a/b/c", "/ab", "/b", "/b/a", "/a/bc", "/a/b/c/d",
	"/abc", "/c", "/b/a/x", "/r", "/r/x", "/a/", "",
};

static const char *const keyword_of[] = {
	"ro", "rw", "create", "deny", "dev", "sandbox-ro", "sandbox-rw",
};

static GString *random_policy_text(GRand *rand)
{
	GString *text = g_string_new("");
	int rules = g_rand_int_range(rand, 1, 61);

	for (int i = 0; i < rules; i++) {
		const char *word = keyword_of[g_rand_int_range(rand, 0, G_N_ELEMENTS(keyword_of))];
		const char *path = rule_paths[g_rand_int_range(rand, 0, G_N_ELEMENTS(rule_paths))];
		bool tree = !*path || g_rand_boolean(rand);

		g_string_append_printf(text, "%s %s%s\n", word, path, tree ? "/" : "");
	}
	return text;
}

/* What loading does to real: a rule may reach another path through a symlink. */
static void move_real_paths(struct policy *pol, GRand *rand, GString *log)
{
	for (size_t i = 0; i < pol->count; i++) {
		struct rule *rule = &pol->rules[i];
		const char *real;

		if (g_rand_boolean(rand))
			continue;
		real = rule_paths[g_rand_int_range(rand, 0, G_N_ELEMENTS(rule_paths))];
		if (!rule->tree && !*real)
			real = "/r";
		if (rule->real != rule->path)
			free(rule->real);
		rule->real = strdup(real);
		g_assert_nonnull(rule->real);
		rule->real_len = strlen(real);
		g_string_append_printf(log, "rule %zu real \"%s\"\n", i, real);
	}
	g_assert_cmpint(policy_index_rebuild(pol, MATCH_REAL), ==, 0);
}

#define RULE_NAME_MAX 32

static const char *rule_name(const struct policy *pol, const struct rule *rule, char *buf)
{
	if (!rule)
		return "none";
	g_snprintf(buf, RULE_NAME_MAX, "rule %td", rule - pol->rules);
	return buf;
}

static void compare_with_oracle(const struct policy *pol, enum match_on on,
				guint32 seed, int iteration, const GString *log)
{
	char got[RULE_NAME_MAX], want[RULE_NAME_MAX];

	for (size_t q = 0; q < G_N_ELEMENTS(query_paths); q++) {
		const char *path = query_paths[q];
		const struct rule *deny = policy_denial(pol, path, on);
		const struct rule *allow = policy_allowance(pol, path, on);

		if (deny != oracle_denial(pol, path, on))
			g_error("seed %u iteration %d: denial of \"%s\" (on %d) is %s, not %s\n%s",
				seed, iteration, path, on, rule_name(pol, deny, got),
				rule_name(pol, oracle_denial(pol, path, on), want), log->str);
		if (allow != oracle_allowance(pol, path, on))
			g_error("seed %u iteration %d: allowance of \"%s\" (on %d) is %s, not %s\n%s",
				seed, iteration, path, on, rule_name(pol, allow, got),
				rule_name(pol, oracle_allowance(pol, path, on), want), log->str);
	}
}

/* Rules of one directory share its descriptor: many images, few fds. */
static void test_load_shares_dirs(void)
{
	enum { IMAGES = 500 };
	char err[POLICY_ERROR_MAX];
	g_autofree char *dir = g_dir_make_tmp("ohs-policy-XXXXXX", NULL);
	g_autofree char *file = g_build_filename(dir, "p", NULL);
	g_autofree char *link = g_build_filename(dir, "link", NULL);
	g_autofree char *secret = g_build_filename(dir, "secret", NULL);
	GString *text = g_string_new(NULL);
	struct rlimit old, low;
	struct policy pol;
	long before = proc_fd_count(getpid());

	g_assert_cmpint(symlink(dir, link), ==, 0);
	g_string_append_printf(text, "deny %s/secret\nro %s/\n", link, link);
	for (int i = 0; i < IMAGES; i++)
		g_string_append_printf(text, "%s %s/img%d\n", i % 2 ? "rw" : "deny", link, i);
	g_file_set_contents(file, text->str, -1, NULL);
	g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &old), ==, 0);
	low = old;
	low.rlim_cur = (rlim_t)before + 32;
	g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &low), ==, 0);
	g_assert_cmpint(policy_load(file, &pol, err, sizeof err), ==, 0);
	g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &old), ==, 0);
	g_assert_cmpint(proc_fd_count(getpid()), ==, before + 1);
	g_assert_cmpint(pol.rules[0].dirfd, ==, -1);
	g_assert_cmpstr(pol.rules[0].real, ==, secret);
	g_assert_cmpstr(pol.rules[1].real, ==, dir);
	for (int i = 0; i < IMAGES; i++) {
		const struct rule *r = &pol.rules[2 + i];
		g_autofree char *want = g_strdup_printf("%s/img%d", dir, i);

		g_assert_cmpstr(r->real, ==, want);
		g_assert_cmpuint(r->real_len, ==, strlen(want));
		g_assert_cmpint(r->dirfd, ==, i % 2 ? pol.rules[1].dirfd : -1);
		g_assert_true(policy_allowance(&pol, want, MATCH_REAL) ==
			      (i % 2 ? r : &pol.rules[1]));
	}
	policy_free(&pol);
	g_assert_cmpint(proc_fd_count(getpid()), ==, before);
	g_string_free(text, TRUE);
	unlink(link);
	unlink(file);
	rmdir(dir);
}

static void test_index_matches_scan(void)
{
	const guint32 seed = 20240611;
	GRand *rand = g_rand_new_with_seed(seed);

	for (int iteration = 0; iteration < 5000; iteration++) {
		GString *log = random_policy_text(rand);
		struct policy pol;

		parse_ok(log->str, &pol);
		compare_with_oracle(&pol, MATCH_AS_WRITTEN, seed, iteration, log);
		compare_with_oracle(&pol, MATCH_REAL, seed, iteration, log);
		move_real_paths(&pol, rand, log);
		compare_with_oracle(&pol, MATCH_AS_WRITTEN, seed, iteration, log);
		compare_with_oracle(&pol, MATCH_REAL, seed, iteration, log);
		policy_free(&pol);
		g_string_free(log, TRUE);
	}
	g_rand_free(rand);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/policy/parse", test_parse);
	g_test_add_func("/policy/parse-errors", test_parse_errors);
	g_test_add_func("/policy/normalize", test_normalize);
	g_test_add_func("/policy/matching", test_matching);
	g_test_add_func("/policy/load", test_load);
	g_test_add_func("/policy/load-shares-dirs", test_load_shares_dirs);
	g_test_add_func("/policy/index-matches-scan", test_index_matches_scan);
	return g_test_run();
}
