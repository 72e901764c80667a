/* The launcher: COMMAND gets one end of a socketpair, we serve the other. */
#ifndef OPEN_HOOK_LAUNCH_H
#define OPEN_HOOK_LAUNCH_H

#include "sandbox.h"
#include "serve.h"

enum {
	LAUNCH_FAILED = 125,        /* we failed before COMMAND ran */
	LAUNCH_NOT_EXECUTABLE = 126,
	LAUNCH_NOT_FOUND = 127,
};

struct launch_options {
	char **argv;                /* COMMAND and its arguments */
	int hook_fd;
	enum sandbox_mode sandbox;
};

/* Runs COMMAND, serves it until it exits; returns its exit status. */
int launch(struct server *srv, const struct launch_options *opt);

#endif
