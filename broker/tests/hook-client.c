/*
 * Test helper run as the launcher's COMMAND:
 *   hook-client FD DIRECT_PATH|- HOOK_PATH
 * DIRECT_PATH must be refused with EACCES when opened directly (the
 * sandbox at work); HOOK_PATH must arrive through the hook on FD, and a
 * read-only descriptor so received must not reopen read-write via /proc.
 * Prints HOOK_PATH's first bytes; exit 0 when all of that held.
 */
#include "protocol.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int fail(const char *what)
{
	fprintf(stderr, "hook-client: %s\n", what);
	return 1;
}

int main(int argc, char **argv)
{
	uint8_t frame[OH_FRAME_MAX];
	char data[64], proc[64];
	int32_t result = 1;
	uint32_t command;
	int sock, fd;
	ssize_t n;
	size_t len;

	if (argc != 4)
		return fail("usage: hook-client FD DIRECT_PATH|- HOOK_PATH");
	sock = atoi(argv[1]);
	if (strcmp(argv[2], "-")) {
		fd = open(argv[2], O_RDONLY);
		if (fd >= 0 || errno != EACCES)
			return fail("direct open was not refused with EACCES");
	}
	len = encode_open(frame, sizeof frame, O_RDONLY | O_CLOEXEC, 0, argv[3], strlen(argv[3]));
	if (write(sock, frame, len) != (ssize_t)len)
		return fail("cannot send the request");
	if (!receive_reply(sock, &command, &result, &fd) || fd < 0 || result != 0) {
		fprintf(stderr, "hook-client: hook refused %s: %d\n", argv[3], result);
		return 1;
	}
	n = read(fd, data, sizeof data - 1);
	if (n <= 0)
		return fail("cannot read the received descriptor");
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	if (strcmp(argv[2], "-") && open(proc, O_RDWR) >= 0)
		return fail("reopened the received descriptor read-write via /proc");
	data[n] = '\0';
	printf("%s\n", data);
	return 0;
}
