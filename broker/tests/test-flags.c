/* Unit tests: which open flags pass, what they ask for, how they print. */
#include "flags.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>

static void test_accepted(void)
{
	static const uint32_t ok[] = {
		O_RDONLY, O_WRONLY, O_RDWR, O_RDWR | O_CLOEXEC | O_DIRECT | O_DSYNC,
		O_RDWR | O_SYNC | O_NONBLOCK | O_NOCTTY | KERNEL_O_LARGEFILE,
		O_RDONLY | O_NOFOLLOW | O_DIRECTORY, O_RDWR | O_CREAT | O_EXCL | O_TRUNC,
		O_WRONLY | O_APPEND,
	};

	for (size_t i = 0; i < G_N_ELEMENTS(ok); i++)
		g_assert_cmpint(check_open_flags(ok[i]), ==, 0);
}

static void test_refused(void)
{
	static const uint32_t bad[] = {
		O_PATH, O_TMPFILE | O_RDWR, 020000000, O_NOATIME, O_ASYNC, O_ACCMODE,
		0x80000000u, 0x40000000, 0x4000000,
	};

	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
		g_assert_cmpint(check_open_flags(bad[i]), ==, -EINVAL);
}

static void test_access_needed(void)
{
	g_assert_cmpuint(access_needed(O_RDONLY), ==, ACCESS_READ);
	g_assert_cmpuint(access_needed(O_WRONLY), ==, ACCESS_WRITE);
	g_assert_cmpuint(access_needed(O_RDWR), ==, ACCESS_READ | ACCESS_WRITE);
	g_assert_cmpuint(access_needed(O_RDONLY | O_TRUNC), ==, ACCESS_READ | ACCESS_WRITE);
	g_assert_cmpuint(access_needed(O_RDONLY | O_APPEND), ==, ACCESS_READ | ACCESS_WRITE);
	g_assert_cmpuint(access_needed(O_RDWR | O_CREAT), ==, ACCESS_READ | ACCESS_WRITE);
	g_assert_cmpuint(access_needed(O_RDWR | O_CREAT | O_EXCL), ==,
			 ACCESS_READ | ACCESS_WRITE | ACCESS_CREATE);
}

static void test_reopen_flags(void)
{
	int f = reopen_flags(O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_TRUNC | O_DIRECT);

	g_assert_cmpint(f & (O_CREAT | O_EXCL | O_NOFOLLOW), ==, 0);
	g_assert_cmpint(f & (O_TRUNC | O_DIRECT | O_CLOEXEC), ==, O_TRUNC | O_DIRECT | O_CLOEXEC);
	g_assert_cmpint(f & O_ACCMODE, ==, O_RDWR);
}

static void test_symbols(void)
{
	char buf[256];

	g_assert_cmpstr(flags_to_string(O_RDONLY, buf, sizeof buf), ==, "O_RDONLY");
	g_assert_cmpstr(flags_to_string(O_RDWR | O_CREAT | O_CLOEXEC, buf, sizeof buf), ==,
			"O_RDWR|O_CREAT|O_CLOEXEC");
	g_assert_cmpstr(flags_to_string(O_WRONLY | O_SYNC, buf, sizeof buf), ==, "O_WRONLY|O_SYNC");
	g_assert_cmpstr(flags_to_string(O_RDWR | O_TMPFILE, buf, sizeof buf), ==, "O_RDWR|O_TMPFILE");
	g_assert_cmpstr(flags_to_string(O_RDONLY | KERNEL_O_LARGEFILE | 0x40000000, buf, sizeof buf),
			==, "O_RDONLY|O_LARGEFILE|0x40000000");
	g_assert_cmpstr(flags_to_string(O_ACCMODE | O_PATH, buf, sizeof buf), ==,
			"O_ACCMODE|O_PATH");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/flags/accepted", test_accepted);
	g_test_add_func("/flags/refused", test_refused);
	g_test_add_func("/flags/access-needed", test_access_needed);
	g_test_add_func("/flags/reopen", test_reopen_flags);
	g_test_add_func("/flags/symbols", test_symbols);
	return g_test_run();
}
