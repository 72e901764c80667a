/* One connection: frame reassembly, request handling, the pending reply. */
#ifndef OPEN_HOOK_CLIENT_H
#define OPEN_HOOK_CLIENT_H

#include "serve.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * At most one reply is pending per client; while it is, the client's input
 * is not read, so a client that never reads costs one descriptor, not a queue.
 */
struct pending_reply {
	uint8_t bytes[OH_REPLY_SIZE];
	uint8_t sent;
	bool active;
	int fd;
};

struct client {
	struct watch watch;         /* first: epoll hands back this pointer */
	int fd;
	pid_t pid;
	uid_t uid;
	uint16_t have;              /* bytes of the current frame received */
	uint8_t header[OH_HEADER_SIZE];
	uint8_t *body;              /* only while a frame is half received */
	struct pending_reply reply;
	struct client *prev, *next;
};

struct client *client_new(int fd, pid_t pid, uid_t uid);

/* Handles readiness; returns false once the client is gone (freed). */
bool client_ready(struct server *srv, struct client *c, uint32_t events);

/* Closes and frees. */
void client_close(struct server *srv, struct client *c);

#endif
