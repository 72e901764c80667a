/* The event loop: one epoll set for the listener, the clients and signals. */
#ifndef OPEN_HOOK_SERVE_H
#define OPEN_HOOK_SERVE_H

#include "audit.h"
#include "policy.h"
#include "protocol.h"
#include "resolve.h"

#include <stdbool.h>
#include <stdint.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

enum watch_kind {
	WATCH_LISTENER,
	WATCH_SIGNALS,
	WATCH_CLIENT,
};

struct watch {
	enum watch_kind kind;
};

struct client;

struct server {
	struct policy policy;
	const char *policy_file;
	struct audit *audit;
	int epfd, sigfd, listenfd;
	struct watch listener_watch, signal_watch;
	char *listen_path;
	struct stat listen_stat;        /* to unlink only our own socket */
	bool listener_paused;
	struct timespec resume_at;
	bool exit_on_last_client;       /* --fd mode */
	pid_t child;                    /* launcher mode, else 0 */
	int exit_status;
	int child_signal;               /* the signal that killed the child */
	bool stopping;
	size_t client_count;
	struct client *clients;
	struct client *replies;         /* replies due at the end of the turn */
	uint8_t frame[OH_FRAME_MAX];    /* the frame being handled */
	struct outcome outcome;
};

/* Loads the policy and sets up epoll and signal handling.  0 or -1. */
int server_init(struct server *srv, const char *policy_file, struct audit *audit);

/* Serves an already connected stream socket; pid 0: take SO_PEERCRED's. */
int server_add_client(struct server *srv, int fd, pid_t pid);

/* Creates the listening socket at path (mode 0600). */
int server_listen(struct server *srv, const char *path);

/* Runs until stopped; returns the process exit status. */
int server_run(struct server *srv);

void server_destroy(struct server *srv);

/* The signals the loop handles; blocked before any child is forked. */
void server_signal_set(sigset_t *set);

#endif
