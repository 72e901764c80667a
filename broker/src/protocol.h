/* Wire format of the open hook: framing only, no policy. */
#ifndef OPEN_HOOK_PROTOCOL_H
#define OPEN_HOOK_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

enum {
	OH_CMD_OPEN = 1,
	OH_CMD_HELLO = 2,
};

enum {
	OH_PROTOCOL_VERSION = 1,
	OH_HEADER_SIZE = 8,          /* u32 size, u32 command */
	OH_OPEN_FIXED_SIZE = 18,     /* header + flags + mode + u16 len */
	OH_HELLO_SIZE = 12,          /* header + u32 client_max_version */
	OH_NAME_MAX = 4095,
	OH_FRAME_MAX = OH_OPEN_FIXED_SIZE + OH_NAME_MAX,
	OH_REPLY_SIZE = 12,
};

enum frame_status {
	FRAME_INCOMPLETE,
	FRAME_OK,
	FRAME_MALFORMED,
};

struct request {
	uint32_t size;
	uint32_t command;
	/* OPEN only */
	uint32_t flags;
	uint32_t mode;
	uint16_t name_len;
	const char *name;            /* points into the caller's buffer */
	/* HELLO only */
	uint32_t client_version;
};

/* Reads the generic header; FRAME_MALFORMED if its size is out of range. */
enum frame_status parse_header(const uint8_t *buf, size_t len,
			       uint32_t *size, uint32_t *command);

/*
 * Parses the first request in buf[0..len).  Pure: no allocation, no I/O.
 * On FRAME_OK, *consumed is the frame size and req points into buf.
 * On FRAME_MALFORMED, *why says what was wrong (static string).
 */
enum frame_status parse_request(const uint8_t *buf, size_t len,
				struct request *req, size_t *consumed,
				const char **why);

void encode_reply(uint8_t out[OH_REPLY_SIZE], uint32_t command, int32_t result);

/* Returns the frame length, or 0 if name_len is out of range or cap too small. */
size_t encode_open(uint8_t *out, size_t cap, uint32_t flags, uint32_t mode,
		   const char *name, size_t name_len);

size_t encode_hello(uint8_t out[OH_HELLO_SIZE], uint32_t client_version);

const char *command_name(uint32_t command);

#endif
