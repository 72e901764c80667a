/* Unit tests: the JSON audit line. */
#include "audit.h"
#include "protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

static char *format(const struct audit_record *rec)
{
	static char buf[64 * 1024];
	size_t n = audit_format(rec, buf, sizeof buf);

	g_assert_cmpuint(n, >, 0);
	g_assert_cmpint(buf[n - 1], ==, '\n');
	buf[n] = '\0';
	return buf;
}

static void test_fields(void)
{
	struct rule rule = { .kind = RULE_RW, .tree = true, .line = 4, .path = "/img",
			     .path_len = 4 };
	struct audit_record rec = {
		.pid = 42, .uid = 1000, .command = OH_CMD_OPEN, .path = "/img/a", .path_len = 6,
		.resolved = "/img/a", .has_flags = true, .flags = O_RDWR | O_CLOEXEC,
		.decision = "allow", .rule = &rule,
	};
	char *line = format(&rec);

	g_assert_true(g_str_has_prefix(line, "{\"time\":\""));
	g_assert_nonnull(strstr(line, "Z\",\"client\":{\"pid\":42,\"uid\":1000},\"command\":\"OPEN\","
				"\"path\":\"/img/a\",\"resolved\":\"/img/a\",\"flags\":\"O_RDWR|O_CLOEXEC\","
				"\"decision\":\"allow\",\"result\":0,\"errno\":null,"
				"\"rule\":\"rw /img/\",\"rule_line\":4}\n"));
}

static void test_escaping(void)
{
	const char name[] = "/a\"b\\c\n\x01\x7f\xff\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc0\xaf";
	struct audit_record rec = {
		.command = 77, .path = name, .path_len = sizeof name - 1,
		.decision = "drop", .err = EPROTO, .reason = "tab\there",
	};
	char *line = format(&rec);

	g_assert_nonnull(strstr(line, "\"command\":\"77\""));
	g_assert_nonnull(strstr(line, "\"path\":\"/a\\\"b\\\\c\\u000a\\u0001\\u007f\\u00ff"
				"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\\u00c0\\u00af\""));
	g_assert_nonnull(strstr(line, "\"errno\":\"EPROTO\""));
	g_assert_nonnull(strstr(line, "\"reason\":\"tab\\u0009here\"}"));
}

static void test_worst_case_fits(void)
{
	static char name[OH_NAME_MAX];
	struct audit_record rec = { .path = name, .path_len = sizeof name, .decision = "deny",
				    .resolved = name };
	char *line;

	memset(name, '\x01', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	rec.path_len = sizeof name - 1;
	line = format(&rec);
	g_assert_true(g_str_has_suffix(line, "}\n"));
}

static size_t file_size(const char *path)
{
	struct stat st;

	g_assert_cmpint(stat(path, &st), ==, 0);
	return (size_t)st.st_size;
}

/* Lines wait for audit_flush(), then go out whole and in order. */
static void test_batch(void)
{
	g_autofree char *dir = g_dir_make_tmp("audit-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "audit.jsonl", NULL);
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;
	struct audit audit;
	struct audit_record rec = { .command = OH_CMD_HELLO, .decision = "allow" };

	g_assert_cmpint(audit_open(&audit, path), ==, 0);
	for (int i = 0; i < 3; i++) {
		rec.result = i;
		audit_add(&audit, &rec);
	}
	g_assert_cmpuint(file_size(path), ==, 0);
	audit_flush(&audit);
	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	lines = g_strsplit(text, "\n", -1);
	g_assert_cmpuint(g_strv_length(lines), ==, 4);
	for (int i = 0; i < 3; i++) {
		g_autofree char *want = g_strdup_printf("\"result\":%d,", i);

		g_assert_nonnull(strstr(lines[i], want));
	}
	/*
	 * Enough lines to fill the batch many times over: none lost or cut.
	 * Every line has the same length (fixed-width time, one-digit result).
	 */
	for (int i = 0; i < 1000; i++)
		audit_add(&audit, &rec);
	audit_close(&audit);
	g_assert_cmpuint(file_size(path), ==, strlen(text) / 3 * 1003);
	g_unlink(path);
	g_rmdir(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/audit/fields", test_fields);
	g_test_add_func("/audit/escaping", test_escaping);
	g_test_add_func("/audit/worst-case-fits", test_worst_case_fits);
	g_test_add_func("/audit/batch", test_batch);
	return g_test_run();
}
