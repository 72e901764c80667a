/* libFuzzer: the request parser, and what the broker does with a parsed name. */
#include "audit.h"
#include "flags.h"
#include "policy.h"
#include "protocol.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

static void exercise_open(const struct request *req)
{
	static char line[64 * 1024];
	char path[PATH_MAX], flags[256];
	struct audit_record rec = {
		.command = req->command, .path = req->name, .path_len = req->name_len,
		.has_flags = true, .flags = req->flags, .decision = "deny",
	};

	if (normalize_path(req->name, req->name_len, path, sizeof path) == 0 && path[0] != '/')
		abort();
	check_open_flags(req->flags);
	access_needed(req->flags);
	flags_to_string(req->flags, flags, sizeof flags);
	audit_format(&rec, line, sizeof line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (off < size) {
		struct request req;
		const char *why;
		size_t used = 0;

		if (parse_request(data + off, size - off, &req, &used, &why) != FRAME_OK)
			break;
		if (used < OH_HEADER_SIZE || used > OH_FRAME_MAX || used > size - off)
			abort();
		if (req.command == OH_CMD_OPEN)
			exercise_open(&req);
		off += used;
	}
	return 0;
}
