/* Landlock confinement of the launcher's COMMAND. */
#ifndef OPEN_HOOK_SANDBOX_H
#define OPEN_HOOK_SANDBOX_H

#include "policy.h"

enum sandbox_mode {
	SANDBOX_OFF,
	SANDBOX_STRICT,         /* --sandbox: no Landlock means no start */
	SANDBOX_BEST_EFFORT,    /* --sandbox=best-effort: warn and go on */
};

/* The Landlock ABI version of the running kernel, or -errno. */
int landlock_abi(void);

/*
 * Builds the ruleset (in the parent, so errors are reported before any
 * fork).  *ruleset_fd is -1 when best-effort found no Landlock.
 * Returns 0, or -1 after printing why.
 */
int sandbox_prepare(const struct policy *pol, const char *executable,
		    enum sandbox_mode mode, int *ruleset_fd);

/* In the child, just before exec: no_new_privs, then restrict.  0 or -errno. */
int sandbox_enforce(int ruleset_fd);

#endif
