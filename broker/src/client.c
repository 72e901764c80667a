#include "client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* Frames handled per wake-up, so one busy client cannot starve the rest. */
#define FRAMES_PER_TURN 16
/* The kernel never passes more than SCM_MAX_FD descriptors at once. */
#define PASSED_FDS_MAX 253

enum receive_result {
	RECEIVE_FRAME,      /* a whole frame is in srv->frame */
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

void client_close(struct server *srv, struct client *c)
{
	epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->reply.fd >= 0)
		close(c->reply.fd);
	free(c->body);
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
	audit_write(srv->audit, rec);
}

static void drop(struct server *srv, struct client *c, const char *why)
{
	struct audit_record rec = {
		.decision = "drop",
		.err = EPROTO,
		.reason = why,
	};

	if (c->have >= OH_HEADER_SIZE)
		memcpy(&rec.command, c->header + 4, sizeof rec.command);
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

static size_t frame_size(const struct client *c)
{
	uint32_t size, command;

	parse_header(c->header, OH_HEADER_SIZE, &size, &command);
	return size;
}

/* Where the next bytes of the current frame go. */
static uint8_t *receive_target(struct server *srv, struct client *c, size_t *want)
{
	if (c->have < OH_HEADER_SIZE) {
		*want = OH_HEADER_SIZE - c->have;
		return c->header + c->have;
	}
	*want = frame_size(c) - c->have;
	if (c->body)
		return c->body + (c->have - OH_HEADER_SIZE);
	return srv->frame + OH_HEADER_SIZE;
}

/* A half-received body is kept per client only while it is incomplete. */
static int stash_partial_body(struct server *srv, struct client *c, size_t got)
{
	if (c->body)
		return 0;
	c->body = malloc(frame_size(c) - OH_HEADER_SIZE);
	if (!c->body)
		return -1;
	memcpy(c->body, srv->frame + OH_HEADER_SIZE, got);
	return 0;
}

static enum receive_result frame_complete(struct server *srv, struct client *c)
{
	size_t size = frame_size(c);

	memcpy(srv->frame, c->header, OH_HEADER_SIZE);
	if (c->body) {
		memcpy(srv->frame + OH_HEADER_SIZE, c->body, size - OH_HEADER_SIZE);
		free(c->body);
		c->body = NULL;
	}
	return RECEIVE_FRAME;
}

static enum receive_result header_complete(struct server *srv, struct client *c,
					   const char **why)
{
	uint32_t size, command;

	if (parse_header(c->header, OH_HEADER_SIZE, &size, &command) != FRAME_OK) {
		*why = "frame size out of range";
		return RECEIVE_DROP;
	}
	if (size == OH_HEADER_SIZE)
		return frame_complete(srv, c);
	return RECEIVE_WAIT;
}

static enum receive_result receive_frame(struct server *srv, struct client *c,
					 const char **why)
{
	for (;;) {
		bool had_fds, in_header = c->have < OH_HEADER_SIZE;
		size_t want;
		uint8_t *dst = receive_target(srv, c, &want);
		ssize_t n = receive_some(c->fd, dst, want, &had_fds);
		enum receive_result r;

		if (had_fds) {
			*why = "descriptors sent to the broker";
			return RECEIVE_DROP;
		}
		if (n < 0)
			return (errno == EAGAIN) ? RECEIVE_WAIT : RECEIVE_CLOSED;
		if (n == 0) {
			*why = "connection closed inside a frame";
			return c->have ? RECEIVE_DROP : RECEIVE_CLOSED;
		}
		c->have += (uint16_t)n;
		if (in_header && c->have == OH_HEADER_SIZE) {
			r = header_complete(srv, c, why);
			if (r != RECEIVE_WAIT)
				return r;
			continue;
		}
		if (!in_header && c->have == frame_size(c))
			return frame_complete(srv, c);
		if (!in_header && stash_partial_body(srv, c, c->have - OH_HEADER_SIZE) < 0) {
			*why = "out of memory";
			return RECEIVE_DROP;
		}
	}
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

/* false if the client had to be dropped. */
static bool reply(struct server *srv, struct client *c, uint32_t command,
		  int32_t result, int fd)
{
	int rc;

	encode_reply(c->reply.bytes, command, result);
	c->reply.sent = 0;
	c->reply.active = true;
	c->reply.fd = fd;
	rc = flush_reply(c);
	if (rc < 0) {
		client_close(srv, c);
		return false;
	}
	if (rc > 0)
		watch_for(srv, c, EPOLLOUT);
	return true;
}

static const char *decision_of(const struct outcome *out)
{
	if (out->fd >= 0)
		return "allow";
	if (out->error == EACCES || out->error == EINVAL)
		return "deny";
	return "error";
}

static bool handle_open(struct server *srv, struct client *c, const struct request *req)
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
	return reply(srv, c, req->command, rec.result, out->fd);
}

static bool handle_other(struct server *srv, struct client *c, const struct request *req)
{
	bool hello = req->command == OH_CMD_HELLO;
	struct audit_record rec = {
		.command = req->command,
		.decision = hello ? "allow" : "error",
		.err = hello ? 0 : ENOSYS,
		.result = hello ? OH_PROTOCOL_VERSION : -ENOSYS,
	};

	audit_client(srv, c, &rec);
	return reply(srv, c, req->command, rec.result, -1);
}

static bool handle_frame(struct server *srv, struct client *c)
{
	struct request req;
	size_t used;
	const char *why;
	enum frame_status st = parse_request(srv->frame, frame_size(c), &req, &used, &why);

	if (st != FRAME_OK) {
		drop(srv, c, why ? why : "incomplete frame");
		return false;
	}
	c->have = 0;
	if (req.command == OH_CMD_OPEN)
		return handle_open(srv, c, &req);
	return handle_other(srv, c, &req);
}

static bool on_readable(struct server *srv, struct client *c)
{
	for (int i = 0; i < FRAMES_PER_TURN && !c->reply.active; i++) {
		const char *why = NULL;

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
			if (!handle_frame(srv, c))
				return false;
			/*
			 * Clients wait for each reply before they ask again, so
			 * the socket is almost always empty now: epoll (level-
			 * triggered) says when it is not, a recvmsg would fail.
			 */
			return true;
		}
	}
	return true;
}

bool client_ready(struct server *srv, struct client *c, uint32_t events)
{
	if (c->reply.active) {
		int rc = flush_reply(c);

		if (rc < 0 || (events & EPOLLERR)) {
			client_close(srv, c);
			return false;
		}
		if (rc > 0)
			return true;
		watch_for(srv, c, EPOLLIN);
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		return on_readable(srv, c);
	return true;
}
