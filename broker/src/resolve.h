/* Deciding an OPEN request and opening exactly the object that was checked. */
#ifndef OPEN_HOOK_RESOLVE_H
#define OPEN_HOOK_RESOLVE_H

#include "policy.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

struct outcome {
	int fd;                     /* >= 0: the descriptor to send */
	int error;                  /* > 0: the errno to reply with */
	const struct rule *rule;    /* the rule that decided, or NULL */
	char resolved[PATH_MAX];    /* canonical path of the object, or "" */
};

/*
 * Decides name (not NUL-terminated) with the client's open flags.
 * Exactly one of out->fd >= 0 and out->error > 0 holds afterwards.
 */
void broker_open(const struct policy *pol, const char *name, size_t len,
		 uint32_t flags, struct outcome *out);

#endif
