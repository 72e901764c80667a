#include "serve.h"

#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* How long accept() rests after running out of descriptors. */
#define ACCEPT_PAUSE_MS 100
#define ACCEPTS_PER_TURN 64
#define EVENTS_PER_WAIT 64

void server_signal_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGCHLD);
}

static int watch(struct server *srv, int fd, struct watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	return epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev);
}

int server_init(struct server *srv, const char *policy_file, struct audit *audit)
{
	char err[POLICY_ERROR_MAX];
	sigset_t set;

	memset(srv, 0, sizeof *srv);
	srv->listenfd = srv->sigfd = srv->epfd = -1;
	srv->policy_file = policy_file;
	srv->audit = audit;
	srv->listener_watch.kind = WATCH_LISTENER;
	srv->signal_watch.kind = WATCH_SIGNALS;
	if (policy_load(policy_file, &srv->policy, err, sizeof err) < 0) {
		fprintf(stderr, "open-hook-server: %s\n", err);
		return -1;
	}
	/* A client that goes away while we write must not kill the broker. */
	signal(SIGPIPE, SIG_IGN);
	server_signal_set(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
	srv->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (srv->sigfd < 0 || srv->epfd < 0 ||
	    watch(srv, srv->sigfd, &srv->signal_watch, EPOLLIN) < 0) {
		perror("open-hook-server: event loop setup");
		return -1;
	}
	return 0;
}

static int peer_credentials(int fd, pid_t *pid, uid_t *uid)
{
	struct ucred cred;
	socklen_t len = sizeof cred;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -1;
	*pid = cred.pid;
	*uid = cred.uid;
	return 0;
}

int server_add_client(struct server *srv, int fd, pid_t pid)
{
	pid_t peer_pid = 0;
	uid_t uid = (uid_t)-1;
	struct client *c;

	peer_credentials(fd, &peer_pid, &uid);
	c = client_new(fd, pid ? pid : peer_pid, uid);
	if (!c)
		return -1;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (watch(srv, fd, &c->watch, EPOLLIN) < 0) {
		free(c);
		return -1;
	}
	c->next = srv->clients;
	if (c->next)
		c->next->prev = c;
	srv->clients = c;
	srv->client_count++;
	return 0;
}

/* A socket file nobody answers on is a leftover from a crash. */
static int remove_stale_socket(const char *path, const struct sockaddr_un *addr)
{
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)addr, sizeof *addr);
	close(fd);
	/* Only a refused connection proves that nobody listens there. */
	if (rc == 0 || errno != ECONNREFUSED)
		return -EADDRINUSE;
	return unlink(path) < 0 ? -errno : 0;
}

static int bind_private(int fd, const struct sockaddr_un *addr)
{
	mode_t old = umask(0177);
	int rc = bind(fd, (const struct sockaddr *)addr, sizeof *addr);

	umask(old);
	return rc;
}

int server_listen(struct server *srv, const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int rc;

	if (strlen(path) >= sizeof addr.sun_path) {
		fprintf(stderr, "open-hook-server: %s: socket path too long\n", path);
		return -1;
	}
	strcpy(addr.sun_path, path);
	rc = remove_stale_socket(path, &addr);
	if (rc < 0) {
		fprintf(stderr, "open-hook-server: %s: %s\n", path,
			rc == -EADDRINUSE ? "another server is listening there" :
			rc == -EEXIST ? "exists and is not a socket" : strerror(-rc));
		return -1;
	}
	srv->listenfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv->listenfd < 0 || bind_private(srv->listenfd, &addr) < 0 ||
	    listen(srv->listenfd, SOMAXCONN) < 0 ||
	    watch(srv, srv->listenfd, &srv->listener_watch, EPOLLIN) < 0) {
		fprintf(stderr, "open-hook-server: %s: %s\n", path, strerror(errno));
		return -1;
	}
	srv->listen_path = strdup(path);
	stat(path, &srv->listen_stat);
	return 0;
}

static void pause_listener(struct server *srv)
{
	struct epoll_event ev = { .events = 0, .data.ptr = &srv->listener_watch };

	epoll_ctl(srv->epfd, EPOLL_CTL_MOD, srv->listenfd, &ev);
	srv->listener_paused = true;
	clock_gettime(CLOCK_MONOTONIC, &srv->resume_at);
	srv->resume_at.tv_nsec += ACCEPT_PAUSE_MS * 1000000L;
	if (srv->resume_at.tv_nsec >= 1000000000L) {
		srv->resume_at.tv_sec++;
		srv->resume_at.tv_nsec -= 1000000000L;
	}
}

static int ms_until_resume(struct server *srv)
{
	struct timespec now;
	long ms;

	if (!srv->listener_paused)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (srv->resume_at.tv_sec - now.tv_sec) * 1000 +
	     (srv->resume_at.tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? (int)ms : 0;
}

static void maybe_resume_listener(struct server *srv)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &srv->listener_watch };

	if (!srv->listener_paused || ms_until_resume(srv) > 0)
		return;
	epoll_ctl(srv->epfd, EPOLL_CTL_MOD, srv->listenfd, &ev);
	srv->listener_paused = false;
}

static void accept_clients(struct server *srv)
{
	for (int i = 0; i < ACCEPTS_PER_TURN; i++) {
		int fd = accept4(srv->listenfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			/* Out of descriptors: rest instead of spinning on a ready listener. */
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				pause_listener(srv);
			if (errno != ECONNABORTED && errno != EINTR)
				return;
			continue;
		}
		if (server_add_client(srv, fd, 0) < 0)
			close(fd);
	}
}

static void reload(struct server *srv)
{
	char err[POLICY_ERROR_MAX];
	struct policy fresh;

	/* Log rotation needs the reopen whatever becomes of the policy. */
	if (audit_reopen(srv->audit) < 0)
		fprintf(stderr, "open-hook-server: cannot reopen audit file: %s\n",
			strerror(errno));
	if (policy_load(srv->policy_file, &fresh, err, sizeof err) < 0) {
		fprintf(stderr, "open-hook-server: reload rejected, old policy kept: %s\n", err);
		return;
	}
	policy_free(&srv->policy);
	srv->policy = fresh;
	fprintf(stderr, "open-hook-server: policy reloaded from %s\n", srv->policy_file);
}

static int wait_status_to_exit(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

static void reap_children(struct server *srv)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == srv->child) {
			srv->exit_status = wait_status_to_exit(status);
			srv->child_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
			srv->stopping = true;
		}
	}
}

static void handle_signals(struct server *srv)
{
	struct signalfd_siginfo info;

	while (read(srv->sigfd, &info, sizeof info) == sizeof info) {
		int sig = (int)info.ssi_signo;

		if (sig == SIGHUP)
			reload(srv);
		else if (sig == SIGCHLD)
			reap_children(srv);
		else if (srv->child > 0)
			kill(srv->child, sig);     /* the child decides; we follow it */
		else
			srv->stopping = true;
	}
}

static void dispatch(struct server *srv, const struct epoll_event *ev)
{
	struct watch *w = ev->data.ptr;

	if (w->kind == WATCH_LISTENER)
		accept_clients(srv);
	else if (w->kind == WATCH_SIGNALS)
		handle_signals(srv);
	else
		client_ready(srv, (struct client *)w, ev->events);
}

int server_run(struct server *srv)
{
	struct epoll_event events[EVENTS_PER_WAIT];

	while (!srv->stopping) {
		int timeout = srv->replies ? 0 : ms_until_resume(srv);
		int n = epoll_wait(srv->epfd, events, EVENTS_PER_WAIT, timeout);

		if (n < 0 && errno != EINTR) {
			perror("open-hook-server: epoll_wait");
			return 1;
		}
		for (int i = 0; i < n && !srv->stopping; i++)
			dispatch(srv, &events[i]);
		clients_finish_turn(srv);
		maybe_resume_listener(srv);
	}
	return srv->exit_status;
}

static void remove_own_socket(struct server *srv)
{
	struct stat st;

	if (srv->listen_path && stat(srv->listen_path, &st) == 0 &&
	    st.st_dev == srv->listen_stat.st_dev && st.st_ino == srv->listen_stat.st_ino)
		unlink(srv->listen_path);
	free(srv->listen_path);
	srv->listen_path = NULL;
}

void server_destroy(struct server *srv)
{
	while (srv->clients)
		client_close(srv, srv->clients);
	remove_own_socket(srv);
	if (srv->listenfd >= 0)
		close(srv->listenfd);
	if (srv->sigfd >= 0)
		close(srv->sigfd);
	if (srv->epfd >= 0)
		close(srv->epfd);
	policy_free(&srv->policy);
}
