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
	size_t frame_len;           /* bytes of the frame in srv->frame */
	uint8_t *held;              /* received, not handled: a partial frame */
	uint16_t held_len;          /* or the frames a client sent ahead */
	struct pending_reply reply;
	bool reply_queued;          /* waits on srv->replies for the turn's end */
	struct client *next_reply;
	struct client *prev, *next;
};

struct client *client_new(int fd, pid_t pid, uid_t uid);

/* Handles readiness; returns false once the client is gone (freed). */
bool client_ready(struct server *srv, struct client *c, uint32_t events);

/*
 * Ends an event-loop turn: writes the turn's audit lines, then sends the
 * replies they record.  A frame a client sent ahead is handled then, and
 * its reply waits for the next turn (srv->replies is not empty).
 */
void clients_finish_turn(struct server *srv);

/* Closes and frees. */
void client_close(struct server *srv, struct client *c);

#endif
