#include "launch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static bool is_executable_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/*
 * Searched here rather than by execvp so that the sandbox can grant
 * exactly this file and nothing else on PATH.
 */
static int find_executable(const char *name, char *out, size_t cap)
{
	const char *path = getenv("PATH");

	if (strchr(name, '/')) {
		snprintf(out, cap, "%s", name);
		return access(name, F_OK) == 0 ? 0 : -ENOENT;
	}
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");

		/* An empty entry is the current directory. */
		int len = snprintf(out, cap, "%.*s/%s", (int)(n ? n : 1),
				   n ? path : ".", name);

		if (len > 0 && (size_t)len < cap && is_executable_file(out))
			return 0;
		path += n + (path[n] == ':');
	}
	return -ENOENT;
}

static void child_fail(const char *what, int err, int status)
{
	fprintf(stderr, "open-hook-server: %s: %s\n", what, strerror(err));
	_exit(status);
}

static void run_child(const struct launch_options *opt, const char *exe,
		      int sock, int ruleset_fd)
{
	sigset_t none;
	int rc;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (ruleset_fd >= 0 && (rc = sandbox_enforce(ruleset_fd)) < 0)
		child_fail("--sandbox: landlock_restrict_self", -rc, LAUNCH_FAILED);
	/* dup2 leaves the copy without FD_CLOEXEC; same fd needs it cleared. */
	if (sock == opt->hook_fd)
		rc = fcntl(sock, F_SETFD, 0);
	else
		rc = dup2(sock, opt->hook_fd);
	if (rc < 0)
		child_fail("hook descriptor", errno, LAUNCH_FAILED);
	execv(exe, opt->argv);
	child_fail(exe, errno, errno == ENOENT ? LAUNCH_NOT_FOUND : LAUNCH_NOT_EXECUTABLE);
}

/*
 * A shell reports "Killed" (and a parent sees WIFSIGNALED) only when its
 * child dies by the signal itself: dying the same way keeps the launcher
 * transparent to whoever started it.
 */
static void die_like_child(int sig)
{
	sigset_t set;

	signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
}

int launch(struct server *srv, const struct launch_options *opt)
{
	char exe[PATH_MAX];
	int sv[2], ruleset_fd;
	pid_t pid;

	if (find_executable(opt->argv[0], exe, sizeof exe) < 0) {
		fprintf(stderr, "open-hook-server: %s: command not found\n", opt->argv[0]);
		return LAUNCH_NOT_FOUND;
	}
	if (sandbox_prepare(&srv->policy, exe, opt->sandbox, &ruleset_fd) < 0)
		return LAUNCH_FAILED;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		perror("open-hook-server: socketpair");
		return LAUNCH_FAILED;
	}
	pid = fork();
	if (pid == 0)
		run_child(opt, exe, sv[1], ruleset_fd);
	close(sv[1]);
	if (ruleset_fd >= 0)
		close(ruleset_fd);
	if (pid < 0 || server_add_client(srv, sv[0], pid) < 0) {
		perror("open-hook-server: starting the command");
		if (pid > 0)
			kill(pid, SIGKILL);
		close(sv[0]);
		return LAUNCH_FAILED;
	}
	srv->child = pid;
	int status = server_run(srv);

	if (srv->child_signal)
		die_like_child(srv->child_signal);
	return status;
}
