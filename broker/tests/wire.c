#include "wire.h"

#include "protocol.h"

#include <string.h>
#include <sys/socket.h>

bool receive_reply(int sock, uint32_t *command, int32_t *result, int *fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	uint8_t reply[OH_REPLY_SIZE];
	struct iovec iov = { reply, sizeof reply };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = control.buf, .msg_controllen = sizeof control.buf };
	struct cmsghdr *h;

	*fd = -1;
	if (recvmsg(sock, &msg, MSG_WAITALL | MSG_CMSG_CLOEXEC) != OH_REPLY_SIZE)
		return false;
	h = CMSG_FIRSTHDR(&msg);
	if (h && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS)
		memcpy(fd, CMSG_DATA(h), sizeof *fd);
	memcpy(command, reply + 4, sizeof *command);
	memcpy(result, reply + 8, sizeof *result);
	return true;
}
