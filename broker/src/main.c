/* open-hook-server: command line, then one of the three modes. */
#include "audit.h"
#include "launch.h"
#include "sandbox.h"
#include "serve.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define EXIT_USAGE 2

static const char usage_text[] =
"Usage: open-hook-server --policy FILE [--audit FILE|-] --fd N\n"
"       open-hook-server --policy FILE [--audit FILE|-] --listen PATH\n"
"       open-hook-server --policy FILE [--audit FILE|-] [--sandbox[=best-effort]]\n"
"                        [--hook-fd N] -- COMMAND [ARG...]\n"
"\n"
"Answers QEMU's -open-hook-fd requests: opens the files the policy allows and\n"
"passes the descriptors back over the socket.\n"
"\n"
"  --policy FILE     the policy (ro, rw, create, deny, dev, mode, sandbox-ro,\n"
"                    sandbox-rw lines); SIGHUP reloads it, a bad file is\n"
"                    rejected and the old policy kept\n"
"  --audit FILE|-    append one JSON line per request to FILE (- = stderr)\n"
"  --fd N            serve the connected stream socket N; exit 0 at its end\n"
"  --listen PATH     create a socket at PATH (mode 0600) and serve any number\n"
"                    of clients until SIGINT or SIGTERM\n"
"  -- COMMAND...     launcher: run COMMAND with a hook socket as fd N and\n"
"                    return its exit status; SIGINT and SIGTERM are forwarded\n"
"  --hook-fd N       the launcher's descriptor for COMMAND (default 3, N >= 3)\n"
"  --sandbox         confine COMMAND with Landlock to sandbox-ro/sandbox-rw\n"
"                    and the defaults in open-hook-server(1); refuse to start\n"
"                    without Landlock\n"
"  --sandbox=best-effort  the same, but run unconfined (with a warning) when\n"
"                    Landlock is missing\n"
"  --help            this text\n"
"\n"
"Exit status: 0 done; 1 runtime failure; 2 usage or policy error. Launcher:\n"
"COMMAND's status (killed by a signal: dies by the same signal), 125 if the\n"
"launcher failed before COMMAND ran, 126 COMMAND not executable, 127 COMMAND\n"
"not found.\n";

enum mode {
	MODE_NONE,
	MODE_FD,
	MODE_LISTEN,
	MODE_LAUNCH,
};

struct options {
	const char *policy;
	const char *audit;
	enum mode mode;
	int fd;
	const char *listen;
	struct launch_options launch;
	bool launcher_options;
};

enum { OPT_POLICY = 1000, OPT_AUDIT, OPT_FD, OPT_LISTEN, OPT_SANDBOX, OPT_HOOK_FD, OPT_HELP };

static const struct option long_options[] = {
	{ "policy", required_argument, NULL, OPT_POLICY },
	{ "audit", required_argument, NULL, OPT_AUDIT },
	{ "fd", required_argument, NULL, OPT_FD },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "sandbox", optional_argument, NULL, OPT_SANDBOX },
	{ "hook-fd", required_argument, NULL, OPT_HOOK_FD },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "open-hook-server: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'open-hook-server --help'.\n");
	return -1;
}

static int parse_fd(const char *text, int min, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || end == text || *end || v < min || v > INT_MAX)
		return -1;
	*out = (int)v;
	return 0;
}

static int set_mode(struct options *o, enum mode m)
{
	if (o->mode != MODE_NONE)
		return usage_error("%s", "choose one of --fd, --listen or -- COMMAND");
	o->mode = m;
	return 0;
}

static int parse_option(struct options *o, int opt)
{
	switch (opt) {
	case OPT_POLICY:
		o->policy = optarg;
		return 0;
	case OPT_AUDIT:
		o->audit = optarg;
		return 0;
	case OPT_FD:
		if (parse_fd(optarg, 0, &o->fd) < 0)
			return usage_error("--fd: not a descriptor number: %s", optarg);
		return set_mode(o, MODE_FD);
	case OPT_LISTEN:
		o->listen = optarg;
		return set_mode(o, MODE_LISTEN);
	case OPT_SANDBOX:
		if (optarg && strcmp(optarg, "best-effort"))
			return usage_error("--sandbox: unknown value %s", optarg);
		o->launch.sandbox = optarg ? SANDBOX_BEST_EFFORT : SANDBOX_STRICT;
		o->launcher_options = true;
		return 0;
	case OPT_HOOK_FD:
		if (parse_fd(optarg, 3, &o->launch.hook_fd) < 0)
			return usage_error("--hook-fd: needs a number >= 3, not %s", optarg);
		o->launcher_options = true;
		return 0;
	default:
		return usage_error("%s", "bad option");
	}
}

/* 1: --help was given; 0: run; -1: usage error (reported). */
static int parse_options(int argc, char **argv, struct options *o)
{
	int opt;

	memset(o, 0, sizeof *o);
	o->launch.hook_fd = 3;
	/* '+': stop at COMMAND so its own options are left alone. */
	while ((opt = getopt_long(argc, argv, "+", long_options, NULL)) != -1) {
		if (opt == OPT_HELP)
			return 1;
		if (parse_option(o, opt) < 0)
			return -1;
	}
	if (optind < argc) {
		if (set_mode(o, MODE_LAUNCH) < 0)
			return -1;
		o->launch.argv = argv + optind;
	}
	if (!o->policy)
		return usage_error("%s", "--policy FILE is required");
	if (o->mode == MODE_NONE)
		return usage_error("%s", "give --fd N, --listen PATH or -- COMMAND");
	if (o->launcher_options && o->mode != MODE_LAUNCH)
		return usage_error("%s", "--sandbox and --hook-fd are for the launcher only");
	return 0;
}

static int check_stream_socket(int fd)
{
	int type;
	socklen_t len = sizeof type;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
		fprintf(stderr, "open-hook-server: --fd %d: not a socket: %s\n", fd,
			strerror(errno));
		return -1;
	}
	if (type != SOCK_STREAM) {
		fprintf(stderr, "open-hook-server: --fd %d: not a stream socket\n", fd);
		return -1;
	}
	return 0;
}

static int run_mode(struct server *srv, struct options *o)
{
	switch (o->mode) {
	case MODE_FD:
		if (check_stream_socket(o->fd) < 0 || server_add_client(srv, o->fd, 0) < 0)
			return EXIT_USAGE;
		srv->exit_on_last_client = true;
		return server_run(srv);
	case MODE_LISTEN:
		if (server_listen(srv, o->listen) < 0)
			return EXIT_FAILURE;
		return server_run(srv);
	default:
		return launch(srv, &o->launch);
	}
}

int main(int argc, char **argv)
{
	struct options o;
	struct audit audit = { .fd = -1 };
	struct server srv;
	int rc = parse_options(argc, argv, &o);

	if (rc != 0) {
		if (rc > 0)
			fputs(usage_text, stdout);
		return rc > 0 ? EXIT_SUCCESS : EXIT_USAGE;
	}
	if (audit_open(&audit, o.audit) < 0) {
		fprintf(stderr, "open-hook-server: --audit %s: %s\n", o.audit, strerror(errno));
		return EXIT_USAGE;
	}
	if (server_init(&srv, o.policy, &audit) < 0) {
		server_destroy(&srv);
		audit_close(&audit);
		return EXIT_USAGE;
	}
	rc = run_mode(&srv, &o);
	server_destroy(&srv);
	audit_close(&audit);
	return rc;
}
