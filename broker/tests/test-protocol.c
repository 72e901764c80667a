/* Unit tests: framing. */
#include "protocol.h"

#include <glib.h>
#include <string.h>

static void put_u32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static enum frame_status parse(const uint8_t *buf, size_t len, struct request *req,
			       size_t *used)
{
	const char *why;

	return parse_request(buf, len, req, used, &why);
}

static void test_open_round_trip(void)
{
	uint8_t buf[64];
	struct request req;
	size_t used, n = encode_open(buf, sizeof buf, 02, 0644, "/a/b", 4);

	g_assert_cmpuint(n, ==, 22);
	g_assert_cmpint(parse(buf, n, &req, &used), ==, FRAME_OK);
	g_assert_cmpuint(used, ==, 22);
	g_assert_cmpuint(req.command, ==, OH_CMD_OPEN);
	g_assert_cmpuint(req.flags, ==, 02);
	g_assert_cmpuint(req.mode, ==, 0644);
	g_assert_cmpuint(req.name_len, ==, 4);
	g_assert_cmpmem(req.name, 4, "/a/b", 4);
}

static void test_every_prefix_is_incomplete(void)
{
	uint8_t buf[64];
	struct request req;
	size_t used, n = encode_open(buf, sizeof buf, 0, 0, "/image", 6);

	for (size_t len = 0; len < n; len++)
		g_assert_cmpint(parse(buf, len, &req, &used), ==, FRAME_INCOMPLETE);
}

static void test_size_bounds(void)
{
	uint8_t buf[OH_FRAME_MAX + 8] = { 0 };
	struct request req;
	size_t used;

	put_u32(buf + 4, 99);
	put_u32(buf, 7);
	g_assert_cmpint(parse(buf, 8, &req, &used), ==, FRAME_MALFORMED);
	put_u32(buf, OH_FRAME_MAX + 1);
	g_assert_cmpint(parse(buf, sizeof buf, &req, &used), ==, FRAME_MALFORMED);
	put_u32(buf, 8);
	g_assert_cmpint(parse(buf, 8, &req, &used), ==, FRAME_OK);
	g_assert_cmpuint(used, ==, 8);
	put_u32(buf, OH_FRAME_MAX);
	g_assert_cmpint(parse(buf, OH_FRAME_MAX - 1, &req, &used), ==, FRAME_INCOMPLETE);
	g_assert_cmpint(parse(buf, sizeof buf, &req, &used), ==, FRAME_OK);
	g_assert_cmpuint(used, ==, OH_FRAME_MAX);
}

static void assert_malformed(const uint8_t *buf, size_t len, const char *expected_why)
{
	struct request req;
	const char *why;
	size_t used;

	g_assert_cmpint(parse_request(buf, len, &req, &used, &why), ==, FRAME_MALFORMED);
	g_assert_cmpstr(why, ==, expected_why);
}

static void test_open_malformed(void)
{
	uint8_t buf[OH_FRAME_MAX + 8];
	size_t n = encode_open(buf, sizeof buf, 0, 0, "/abc", 4);

	put_u32(buf, (uint32_t)n + 1);
	assert_malformed(buf, sizeof buf, "size does not match name length");
	n = encode_open(buf, sizeof buf, 0, 0, "/a\0c", 4);
	assert_malformed(buf, n, "NUL byte in name");
	n = encode_open(buf, sizeof buf, 0, 0, "/", 1);
	memset(buf + 16, 0, 2);
	put_u32(buf, 18);
	assert_malformed(buf, 18, "name length out of range");
	put_u32(buf, 12);
	assert_malformed(buf, 12, "OPEN frame shorter than its fixed part");
	g_assert_cmpuint(encode_open(buf, sizeof buf, 0, 0, "/", OH_NAME_MAX + 1), ==, 0);
	memset(buf + 18, 'a', OH_NAME_MAX + 1);
	put_u32(buf, OH_FRAME_MAX + 1);
	memcpy(buf + 16, &(uint16_t){ OH_NAME_MAX + 1 }, 2);
	assert_malformed(buf, sizeof buf, "frame size out of range");
	put_u32(buf, OH_FRAME_MAX);
	assert_malformed(buf, sizeof buf, "name length out of range");
}

static void test_longest_name(void)
{
	static uint8_t buf[OH_FRAME_MAX];
	static char name[OH_NAME_MAX];
	struct request req;
	size_t used;

	memset(name, 'n', sizeof name);
	g_assert_cmpuint(encode_open(buf, sizeof buf, 0, 0, name, sizeof name), ==, OH_FRAME_MAX);
	g_assert_cmpint(parse(buf, sizeof buf, &req, &used), ==, FRAME_OK);
	g_assert_cmpuint(req.name_len, ==, OH_NAME_MAX);
}

static void test_hello(void)
{
	uint8_t buf[32] = { 0 };
	struct request req;
	size_t used;

	encode_hello(buf, 5);
	g_assert_cmpint(parse(buf, 12, &req, &used), ==, FRAME_OK);
	g_assert_cmpuint(req.client_version, ==, 5);
	put_u32(buf, 20);
	g_assert_cmpint(parse(buf, 20, &req, &used), ==, FRAME_OK);
	g_assert_cmpuint(used, ==, 20);
	put_u32(buf, 8);
	assert_malformed(buf, 8, "HELLO frame without a version");
}

static void test_back_to_back(void)
{
	uint8_t buf[128];
	struct request req;
	size_t used, n = encode_open(buf, sizeof buf, 0, 0, "/x", 2);

	n += encode_hello(buf + n, 1);
	g_assert_cmpint(parse(buf, n, &req, &used), ==, FRAME_OK);
	g_assert_cmpuint(req.command, ==, OH_CMD_OPEN);
	g_assert_cmpint(parse(buf + used, n - used, &req, &used), ==, FRAME_OK);
	g_assert_cmpuint(req.command, ==, OH_CMD_HELLO);
}

static void test_reply(void)
{
	uint8_t out[OH_REPLY_SIZE];
	const uint8_t expected[] = { 12, 0, 0, 0, 1, 0, 0, 0, 0xf3, 0xff, 0xff, 0xff };

	encode_reply(out, OH_CMD_OPEN, -13);
	g_assert_cmpmem(out, sizeof out, expected, sizeof expected);
	g_assert_cmpstr(command_name(OH_CMD_HELLO), ==, "HELLO");
	g_assert_cmpstr(command_name(42), ==, "UNKNOWN");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/protocol/open-round-trip", test_open_round_trip);
	g_test_add_func("/protocol/every-prefix-incomplete", test_every_prefix_is_incomplete);
	g_test_add_func("/protocol/size-bounds", test_size_bounds);
	g_test_add_func("/protocol/open-malformed", test_open_malformed);
	g_test_add_func("/protocol/longest-name", test_longest_name);
	g_test_add_func("/protocol/hello", test_hello);
	g_test_add_func("/protocol/back-to-back", test_back_to_back);
	g_test_add_func("/protocol/reply", test_reply);
	return g_test_run();
}
