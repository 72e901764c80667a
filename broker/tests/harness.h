/* Shared by the integration tests: a scratch tree, a broker process, a client. */
#ifndef OPEN_HOOK_TEST_HARNESS_H
#define OPEN_HOOK_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct broker {
	pid_t pid;
	int sock;               /* our end (--fd mode), else -1 */
	char *dir;              /* scratch tree; "@D@" in policies stands for it */
	char *policy;
	char *audit;
	char *stderr_log;
	char *listen;           /* --listen socket path, or NULL */
};

/* A scratch tree: images/{base.qcow2,vm1.qcow2,vm1/secret,vm1/snap/}, outside/. */
char *scratch_tree(void);
void remove_tree(const char *dir);

/* "@D@" replaced by dir. Caller frees. */
char *expand(const char *dir, const char *text);
void write_text(const char *path, const char *text);
char *path_in(const char *dir, const char *rel);
/* Writes dir/policy from text with "@D@" expanded; returns its path. */
char *write_policy(const char *dir, const char *text);

/* Starts the broker in --fd mode on a fresh tree with this policy text. */
void broker_start(struct broker *b, const char *policy);
/* Same tree, --listen mode; clients connect with broker_connect(). */
void broker_start_listen(struct broker *b, const char *policy);
/* The same with RLIMIT_NOFILE set to nofile. */
void broker_start_listen_limited(struct broker *b, const char *policy, long nofile);
int broker_connect(const struct broker *b);
/* Closes our end, waits; returns the exit status (or 128+signal). */
int broker_stop(struct broker *b);
void broker_free(struct broker *b);
int wait_exit(pid_t pid, int timeout_ms);

/* One OPEN round trip; returns the result, *fd the descriptor or -1. */
int32_t hook_open(int sock, const char *path, uint32_t flags, int *fd);
/* Like hook_open but the path is relative to the scratch tree. */
int32_t tree_open(const struct broker *b, const char *rel, uint32_t flags, int *fd);
/* Reads one reply; returns false on EOF or after timeout_ms. */
bool hook_reply(int sock, int timeout_ms, uint32_t *command, int32_t *result, int *fd);
void send_all(int sock, const void *buf, size_t len);
/* True once the peer has closed within timeout_ms. */
bool peer_closed(int sock, int timeout_ms);

/* Process statistics from /proc. */
long proc_fd_count(pid_t pid);
long proc_rss_kib(pid_t pid);
long proc_cpu_ticks(pid_t pid);

/* Whole audit log, for substring checks. Caller frees. */
char *read_text(const char *path);

const char *server_binary(void);

#endif
