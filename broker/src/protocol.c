#include "protocol.h"

#include <string.h>

static uint32_t load_u32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

static uint16_t load_u16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

static void store_u32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof v);
}

enum frame_status parse_header(const uint8_t *buf, size_t len,
			       uint32_t *size, uint32_t *command)
{
	if (len < OH_HEADER_SIZE)
		return FRAME_INCOMPLETE;
	*size = load_u32(buf);
	*command = load_u32(buf + 4);
	if (*size < OH_HEADER_SIZE || *size > OH_FRAME_MAX)
		return FRAME_MALFORMED;
	return FRAME_OK;
}

static enum frame_status parse_open(const uint8_t *buf, struct request *req,
				    const char **why)
{
	if (req->size < OH_OPEN_FIXED_SIZE) {
		*why = "OPEN frame shorter than its fixed part";
		return FRAME_MALFORMED;
	}
	req->flags = load_u32(buf + 8);
	req->mode = load_u32(buf + 12);
	req->name_len = load_u16(buf + 16);
	req->name = (const char *)buf + OH_OPEN_FIXED_SIZE;
	if (req->name_len == 0 || req->name_len > OH_NAME_MAX) {
		*why = "name length out of range";
		return FRAME_MALFORMED;
	}
	if (req->size != (uint32_t)OH_OPEN_FIXED_SIZE + req->name_len) {
		*why = "size does not match name length";
		return FRAME_MALFORMED;
	}
	if (memchr(req->name, '\0', req->name_len)) {
		*why = "NUL byte in name";
		return FRAME_MALFORMED;
	}
	return FRAME_OK;
}

static enum frame_status parse_hello(const uint8_t *buf, struct request *req,
				     const char **why)
{
	/* Longer HELLO payloads are allowed so later versions can extend it. */
	if (req->size < OH_HELLO_SIZE) {
		*why = "HELLO frame without a version";
		return FRAME_MALFORMED;
	}
	req->client_version = load_u32(buf + 8);
	return FRAME_OK;
}

enum frame_status parse_request(const uint8_t *buf, size_t len,
				struct request *req, size_t *consumed,
				const char **why)
{
	static const char *unused;
	enum frame_status st;

	if (!why)
		why = &unused;
	memset(req, 0, sizeof *req);
	*why = NULL;
	st = parse_header(buf, len, &req->size, &req->command);
	if (st == FRAME_MALFORMED)
		*why = "frame size out of range";
	if (st != FRAME_OK)
		return st;
	if (len < req->size)
		return FRAME_INCOMPLETE;
	*consumed = req->size;
	if (req->command == OH_CMD_OPEN)
		return parse_open(buf, req, why);
	if (req->command == OH_CMD_HELLO)
		return parse_hello(buf, req, why);
	return FRAME_OK;
}

void encode_reply(uint8_t out[OH_REPLY_SIZE], uint32_t command, int32_t result)
{
	store_u32(out, OH_REPLY_SIZE);
	store_u32(out + 4, command);
	memcpy(out + 8, &result, sizeof result);
}

size_t encode_open(uint8_t *out, size_t cap, uint32_t flags, uint32_t mode,
		   const char *name, size_t name_len)
{
	size_t size = OH_OPEN_FIXED_SIZE + name_len;
	uint16_t len16 = (uint16_t)name_len;

	if (name_len > OH_NAME_MAX || cap < size)
		return 0;
	store_u32(out, (uint32_t)size);
	store_u32(out + 4, OH_CMD_OPEN);
	store_u32(out + 8, flags);
	store_u32(out + 12, mode);
	memcpy(out + 16, &len16, sizeof len16);
	memcpy(out + OH_OPEN_FIXED_SIZE, name, name_len);
	return size;
}

size_t encode_hello(uint8_t out[OH_HELLO_SIZE], uint32_t client_version)
{
	store_u32(out, OH_HELLO_SIZE);
	store_u32(out + 4, OH_CMD_HELLO);
	store_u32(out + 8, client_version);
	return OH_HELLO_SIZE;
}

const char *command_name(uint32_t command)
{
	switch (command) {
	case OH_CMD_OPEN:
		return "OPEN";
	case OH_CMD_HELLO:
		return "HELLO";
	default:
		return "UNKNOWN";
	}
}
