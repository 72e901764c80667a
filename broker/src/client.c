#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* The kernel never passes more than SCM_MAX_FD descriptors at once. */
#define PASSED_FDS_MAX 253

enum receive_result {
	RECEIVE_FRAME,      /* a whole frame is at the start of srv->frame */
	RECEIVE_WAIT,       /* nothing more to read for now */
	RECEIVE_CLOSED,     /* orderly end of stream */
	RECEIVE_DROP,       /* protocol violation: *why says which */
};

struct client *client_new(int fd, pid_t pid, uid_t uid)
{
	struct client *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	c->watch.kind = WATCH_CLIENT;
	c->fd = fd;
	c->pid = pid;
	c->uid = uid;
	c->reply.fd = -1;
	return c;
}

static void unqueue_reply(struct server *srv, struct client *c)
{
	for (struct client **p = &srv->replies; *p; p = &(*p)->next_reply) {
		if (*p == c) {
			*p = c->next_reply;
			return;
		}
	}
}

void client_close(struct server *srv, struct client *c)
{
	if (c->reply_queued)
		unqueue_reply(srv, c);
	epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->reply.fd >= 0)
		close(c->reply.fd);
	free(c->held);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
	srv->client_count--;
	if (srv->exit_on_last_client && srv->client_count == 0)
		srv->stopping = true;
}

static void audit_client(struct server *srv, struct client *c,
			 struct audit_record *rec)
{
	rec->pid = c->pid;
	rec->uid = c->uid;
	audit_add(srv->audit, rec);
}

static void drop(struct server *srv, struct client *c, const char *why)
{
	struct audit_record rec = {
		.decision = "drop",
		.err = EPROTO,
		.reason = why,
	};

	if (c->frame_len >= OH_HEADER_SIZE)
		memcpy(&rec.command, srv->frame + 4, sizeof rec.command);
	c->frame_len = 0;
	audit_client(srv, c, &rec);
	client_close(srv, c);
}

/* Closes every descriptor riding along; true if there was any. */
static bool close_passed_fds(struct msghdr *msg)
{
	bool any = (msg->msg_flags & MSG_CTRUNC) != 0;

	for (struct cmsghdr *h = CMSG_FIRSTHDR(msg); h; h = CMSG_NXTHDR(msg, h)) {
		size_t n;
		int fd;

		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		n = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof fd);
			close(fd);
		}
		any = true;
	}
	return any;
}

static ssize_t receive_some(int fd, void *dst, size_t want, bool *had_fds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * PASSED_FDS_MAX)];
	} control;
	struct iovec iov = { .iov_base = dst, .iov_len = want };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control.buf, .msg_controllen = sizeof control.buf,
	};
	ssize_t n;

	do
		n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	*had_fds = n >= 0 && close_passed_fds(&msg);
	return n;
}

/* Size of the whole frame at the start of buf; 0: not all here; -1: bad. */
static ssize_t whole_frame(const uint8_t *buf, size_t len, const char **why)
{
	uint32_t size, command;

	if (len < OH_HEADER_SIZE)
		return 0;
	if (parse_header(buf, OH_HEADER_SIZE, &size, &command) != FRAME_OK) {
		*why = "frame size out of range";
		return -1;
	}
	return len >= size ? (ssize_t)size : 0;
}

/* Keeps bytes that are not handled yet: a partial or a pipelined frame. */
static int hold(struct client *c, const uint8_t *bytes, size_t len)
{
	if (!len)
		return 0;
	c->held = malloc(len);
	if (!c->held)
		return -1;
	memcpy(c->held, bytes, len);
	c->held_len = (uint16_t)len;
	return 0;
}

/* Takes the held bytes back into srv->frame; returns how many. */
static size_t take_held(struct server *srv, struct client *c)
{
	size_t len = c->held_len;

	if (!len)
		return 0;
	memcpy(srv->frame, c->held, len);
	free(c->held);
	c->held = NULL;
	c->held_len = 0;
	return len;
}

/* Splits off the frame at the start of srv->frame; holds what follows. */
static enum receive_result frame_found(struct server *srv, struct client *c,
				       size_t len, ssize_t size, const char **why)
{
	/* A valid header's size fits srv->frame, so a full buffer is a frame. */
	c->frame_len = size < 0 ? len : (size_t)size;
	if (size < 0)
		return RECEIVE_DROP;
	if (hold(c, srv->frame + size, len - (size_t)size) < 0) {
		*why = "out of memory";
		return RECEIVE_DROP;
	}
	return size ? RECEIVE_FRAME : RECEIVE_WAIT;
}

/*
 * One recvmsg reads as much as has arrived: a client that waits for each
 * reply has sent exactly one frame, so header and body come together.
 */
static enum receive_result receive_frame(struct server *srv, struct client *c,
					 const char **why)
{
	size_t len = take_held(srv, c);
	ssize_t size = whole_frame(srv->frame, len, why), n;
	bool had_fds;

	if (size != 0)
		return frame_found(srv, c, len, size, why);
	n = receive_some(c->fd, srv->frame + len, sizeof srv->frame - len, &had_fds);
	c->frame_len = len + (n > 0 ? (size_t)n : 0);
	if (had_fds) {
		*why = "descriptors sent to the broker";
		return RECEIVE_DROP;
	}
	if (n <= 0 && !(n < 0 && errno == EAGAIN)) {
		*why = "connection closed inside a frame";
		return len ? RECEIVE_DROP : RECEIVE_CLOSED;
	}
	if (n > 0)
		len += (size_t)n;
	return frame_found(srv, c, len, whole_frame(srv->frame, len, why), why);
}

static void watch_for(struct server *srv, struct client *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = &c->watch };

	epoll_ctl(srv->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* 0: all sent; 1: would block; -1: the client is gone. */
static int flush_reply(struct client *c)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct pending_reply *r = &c->reply;
	struct iovec iov = { r->bytes + r->sent, OH_REPLY_SIZE - r->sent };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (r->fd >= 0) {
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof control.buf;
		CMSG_FIRSTHDR(&msg)->cmsg_level = SOL_SOCKET;
		CMSG_FIRSTHDR(&msg)->cmsg_type = SCM_RIGHTS;
		CMSG_FIRSTHDR(&msg)->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(CMSG_FIRSTHDR(&msg)), &r->fd, sizeof(int));
	}
	do
		n = sendmsg(c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? 1 : -1;
	if (r->fd >= 0) {
		close(r->fd);   /* the client holds its own copy now */
		r->fd = -1;
	}
	r->sent += (uint8_t)n;
	r->active = r->sent < OH_REPLY_SIZE;
	return r->active ? 1 : 0;
}

/* The reply goes out at the end of the turn, after the turn's audit lines. */
static void reply(struct server *srv, struct client *c, uint32_t command,
		  int32_t result, int fd)
{
	encode_reply(c->reply.bytes, command, result);
	c->reply.sent = 0;
	c->reply.active = true;
	c->reply.fd = fd;
	c->reply_queued = true;
	c->next_reply = srv->replies;
	srv->replies = c;
}

static const char *decision_of(const struct outcome *out)
{
	if (out->fd >= 0)
		return "allow";
	if (out->error == EACCES || out->error == EINVAL)
		return "deny";
	return "error";
}

static void handle_open(struct server *srv, struct client *c, const struct request *req)
{
	struct outcome *out = &srv->outcome;
	struct audit_record rec = {
		.command = req->command, .path = req->name, .path_len = req->name_len,
		.has_flags = true, .flags = req->flags,
	};

	broker_open(&srv->policy, req->name, req->name_len, req->flags, out);
	rec.resolved = out->resolved;
	rec.decision = decision_of(out);
	rec.err = out->error;
	rec.rule = out->rule;
	rec.result = out->fd >= 0 ? 0 : -out->error;
	audit_client(srv, c, &rec);
	reply(srv, c, req->command, rec.result, out->fd);
}

static void handle_other(struct server *srv, struct client *c, const struct request *req)
{
	bool hello = req->command == OH_CMD_HELLO;
	struct audit_record rec = {
		.command = req->command,
		.decision = hello ? "allow" : "error",
		.err = hello ? 0 : ENOSYS,
		.result = hello ? OH_PROTOCOL_VERSION : -ENOSYS,
	};

	audit_client(srv, c, &rec);
	reply(srv, c, req->command, rec.result, -1);
}

static bool handle_frame(struct server *srv, struct client *c)
{
	struct request req;
	size_t used;
	const char *why;
	enum frame_status st = parse_request(srv->frame, c->frame_len, &req, &used, &why);

	if (st != FRAME_OK) {
		drop(srv, c, why ? why : "incomplete frame");
		return false;
	}
	c->frame_len = 0;
	if (req.command == OH_CMD_OPEN)
		handle_open(srv, c, &req);
	else
		handle_other(srv, c, &req);
	return true;
}

/* One frame per client per turn: a pipelining client cannot starve others. */
static bool on_readable(struct server *srv, struct client *c)
{
	const char *why = NULL;

	if (c->reply.active)
		return true;
	switch (receive_frame(srv, c, &why)) {
	case RECEIVE_WAIT:
		return true;
	case RECEIVE_CLOSED:
		client_close(srv, c);
		return false;
	case RECEIVE_DROP:
		drop(srv, c, why);
		return false;
	case RECEIVE_FRAME:
		break;
	}
	return handle_frame(srv, c);
}

/* A reply that could not go out at once: retried when the socket drains. */
static bool resume_reply(struct server *srv, struct client *c, uint32_t events)
{
	int rc = flush_reply(c);

	if (rc < 0 || (events & EPOLLERR)) {
		client_close(srv, c);
		return false;
	}
	if (rc == 0)
		watch_for(srv, c, EPOLLIN);
	return true;
}

bool client_ready(struct server *srv, struct client *c, uint32_t events)
{
	if (c->reply.active && !c->reply_queued) {
		if (!resume_reply(srv, c, events))
			return false;
		if (c->reply.active)
			return true;
		if (c->held_len)
			return on_readable(srv, c);
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		return on_readable(srv, c);
	return true;
}

/* Sends one queued reply; then a frame that came with the last one is due. */
static void send_queued(struct server *srv, struct client *c)
{
	int rc = flush_reply(c);

	if (rc < 0) {
		client_close(srv, c);
		return;
	}
	if (rc > 0) {
		watch_for(srv, c, EPOLLOUT);
		return;
	}
	if (c->held_len)
		on_readable(srv, c);
}

/* A grant whose audit line was not written must not leave: EIO instead. */
static void withdraw_grant(struct client *c)
{
	uint32_t command;

	if (c->reply.fd < 0)
		return;
	close(c->reply.fd);
	c->reply.fd = -1;
	memcpy(&command, c->reply.bytes + 4, sizeof command);
	encode_reply(c->reply.bytes, command, -EIO);
}

void clients_finish_turn(struct server *srv)
{
	struct client *c = srv->replies, *next;
	int lost = audit_flush(srv->audit);

	if (lost < 0)
		fprintf(stderr, "open-hook-server: audit write failed (%s): "
			"this turn's grants are answered EIO\n", strerror(-lost));
	srv->replies = NULL;
	for (; c; c = next) {
		next = c->next_reply;
		c->reply_queued = false;
		if (lost < 0)
			withdraw_grant(c);
		send_queued(srv, c);
	}
}
