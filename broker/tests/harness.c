#include "harness.h"

#include "protocol.h"
#include "wire.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *server_binary(void)
{
	const char *bin = getenv("OPEN_HOOK_SERVER");

	g_assert_nonnull(bin);
	return bin;
}

char *path_in(const char *dir, const char *rel)
{
	return g_build_filename(dir, rel, NULL);
}

void write_text(const char *path, const char *text)
{
	GError *err = NULL;

	g_file_set_contents(path, text, -1, &err);
	g_assert_no_error(err);
}

char *write_policy(const char *dir, const char *text)
{
	char *path = path_in(dir, "policy");
	char *expanded = expand(dir, text);

	write_text(path, expanded);
	g_free(expanded);
	return path;
}

char *read_text(const char *path)
{
	char *text = NULL;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return g_strdup("");
	return text;
}

char *expand(const char *dir, const char *text)
{
	char **parts = g_strsplit(text, "@D@", -1);
	char *out = g_strjoinv(dir, parts);

	g_strfreev(parts);
	return out;
}

static void make_file(const char *dir, const char *rel, const char *text)
{
	char *p = path_in(dir, rel);

	write_text(p, text);
	g_free(p);
}

char *scratch_tree(void)
{
	char *dir = g_dir_make_tmp("ohs-XXXXXX", NULL);
	const char *dirs[] = { "images", "images/vm1", "images/vm1/snap", "outside", "shared" };

	g_assert_nonnull(dir);
	for (size_t i = 0; i < G_N_ELEMENTS(dirs); i++) {
		char *p = path_in(dir, dirs[i]);

		g_assert_cmpint(mkdir(p, 0755), ==, 0);
		g_free(p);
	}
	make_file(dir, "images/base.qcow2", "base");
	make_file(dir, "images/vm1.qcow2", "vm1");
	make_file(dir, "images/vm1/secret", "secret");
	make_file(dir, "images/vm1/disk.img", "disk");
	make_file(dir, "outside/passwd", "outside");
	return dir;
}

void remove_tree(const char *dir)
{
	char *cmd = g_strdup_printf("rm -rf '%s'", dir);

	g_assert_cmpint(system(cmd), ==, 0);
	g_free(cmd);
}

/* The broker's stderr goes to a file in the tree so tests can read it. */
static pid_t spawn(const struct broker *b, char **argv, int keep_fd, rlim_t nofile)
{
	pid_t pid = fork();

	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		struct rlimit lim = { nofile, nofile };
		int err = open(b->stderr_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		dup2(err, STDERR_FILENO);
		close(err);
		prctl(PR_SET_PDEATHSIG, SIGKILL);   /* no stray brokers after a failed test */
		if (keep_fd >= 0)
			fcntl(keep_fd, F_SETFD, 0);
		if (nofile)
			setrlimit(RLIMIT_NOFILE, &lim);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static void prepare(struct broker *b, const char *policy)
{
	memset(b, 0, sizeof *b);
	b->sock = -1;
	b->dir = scratch_tree();
	b->policy = write_policy(b->dir, policy);
	b->audit = path_in(b->dir, "audit.log");
	b->stderr_log = path_in(b->dir, "stderr.log");
}

void broker_start(struct broker *b, const char *policy)
{
	int sv[2];
	char fd_text[16];

	prepare(b, policy);
	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
	snprintf(fd_text, sizeof fd_text, "%d", sv[1]);
	char *argv[] = { (char *)server_binary(), "--policy", b->policy, "--audit",
			 b->audit, "--fd", fd_text, NULL };
	b->pid = spawn(b, argv, sv[1], 0);
	close(sv[1]);
	b->sock = sv[0];
}

static bool wait_for_path(const char *path, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 10) {
		if (access(path, F_OK) == 0)
			return true;
		g_usleep(10000);
	}
	return false;
}

void broker_start_listen_limited(struct broker *b, const char *policy, long nofile)
{
	prepare(b, policy);
	b->listen = path_in(b->dir, "hook.sock");
	char *argv[] = { (char *)server_binary(), "--policy", b->policy, "--audit",
			 b->audit, "--listen", b->listen, NULL };
	b->pid = spawn(b, argv, -1, (rlim_t)nofile);
	g_assert_true(wait_for_path(b->listen, 5000));
}

void broker_start_listen(struct broker *b, const char *policy)
{
	broker_start_listen_limited(b, policy, 0);
}

int broker_connect(const struct broker *b)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	g_assert_cmpint(fd, >=, 0);
	g_strlcpy(addr.sun_path, b->listen, sizeof addr.sun_path);
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int wait_exit(pid_t pid, int timeout_ms)
{
	int status;

	for (int waited = 0; waited <= timeout_ms; waited += 5) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		g_usleep(5000);
	}
	return -1;
}

int broker_stop(struct broker *b)
{
	int status;

	if (b->sock >= 0)
		close(b->sock);
	b->sock = -1;
	if (b->listen)
		kill(b->pid, SIGTERM);
	status = wait_exit(b->pid, 10000);
	if (status < 0) {
		kill(b->pid, SIGKILL);
		waitpid(b->pid, NULL, 0);
	}
	return status;
}

void broker_free(struct broker *b)
{
	if (g_test_failed() && b->audit)
		g_test_message("audit kept at %s", b->audit);
	else
		remove_tree(b->dir);
	g_free(b->dir);
	g_free(b->policy);
	g_free(b->audit);
	g_free(b->stderr_log);
	g_free(b->listen);
}

void send_all(int sock, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(sock, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;     /* the broker may drop us mid-way: tests check that */
		p += n;
		len -= (size_t)n;
	}
}

static bool wait_readable(int sock, int timeout_ms)
{
	struct pollfd p = { .fd = sock, .events = POLLIN };

	return poll(&p, 1, timeout_ms) == 1;
}

bool hook_reply(int sock, int timeout_ms, uint32_t *command, int32_t *result, int *fd)
{
	*fd = -1;
	return wait_readable(sock, timeout_ms) && receive_reply(sock, command, result, fd);
}

int32_t hook_open(int sock, const char *path, uint32_t flags, int *fd)
{
	uint8_t frame[OH_FRAME_MAX];
	size_t len = encode_open(frame, sizeof frame, flags, 0644, path, strlen(path));
	uint32_t command;
	int32_t result;

	g_assert_cmpuint(len, >, 0);
	send_all(sock, frame, len);
	g_assert_true(hook_reply(sock, 10000, &command, &result, fd));
	g_assert_cmpuint(command, ==, OH_CMD_OPEN);
	g_assert_true((result == 0) == (*fd >= 0));
	return result;
}

int32_t tree_open(const struct broker *b, const char *rel, uint32_t flags, int *fd)
{
	char *p = path_in(b->dir, rel);
	int32_t r = hook_open(b->sock, p, flags, fd);

	g_free(p);
	return r;
}

bool peer_closed(int sock, int timeout_ms)
{
	char c;

	while (wait_readable(sock, timeout_ms)) {
		ssize_t n = recv(sock, &c, 1, MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
		if (n < 0)
			return false;
	}
	return false;
}

long proc_fd_count(pid_t pid)
{
	char *p = g_strdup_printf("/proc/%d/fd", (int)pid);
	DIR *d = opendir(p);
	long n = 0;

	g_free(p);
	g_assert_nonnull(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n - 2;
}

static long status_field(pid_t pid, const char *key)
{
	char *p = g_strdup_printf("/proc/%d/status", (int)pid);
	char *text = read_text(p);
	char *at = strstr(text, key);
	long v = at ? strtol(at + strlen(key), NULL, 10) : -1;

	g_free(p);
	g_free(text);
	return v;
}

long proc_rss_kib(pid_t pid)
{
	return status_field(pid, "VmRSS:");
}

long proc_cpu_ticks(pid_t pid)
{
	char *p = g_strdup_printf("/proc/%d/stat", (int)pid);
	char *text = read_text(p);
	char *after = strrchr(text, ')');
	long utime = 0, stime = 0;

	/* fields 14 and 15, counting from the pid; after ')' comes field 3 */
	if (after)
		sscanf(after + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld",
		       &utime, &stime);
	g_free(p);
	g_free(text);
	return utime + stime;
}
