/*
 * The rules of a policy indexed by path.  Every request is matched four
 * times (deny and allow, as written and real); scanning all rules made that
 * grow with the policy, the index makes it grow with the path's depth.
 */
#ifndef OPEN_HOOK_POLICY_INDEX_H
#define OPEN_HOOK_POLICY_INDEX_H

#include "policy.h"

/* What the rules say about one path, as a scan of them in file order would. */
struct policy_match {
	const struct rule *deny;    /* the first covering deny rule */
	const struct rule *allow;   /* the most specific covering brokered rule */
};

/*
 * (Re)builds the index matching on rule->path or on rule->real.  Call it
 * again whenever those change.  Returns -ENOMEM and keeps the old index if
 * out of memory.
 */
int policy_index_rebuild(struct policy *pol, enum match_on on);

void policy_index_free(struct policy *pol);

void policy_match(const struct policy *pol, const char *path, enum match_on on,
		  struct policy_match *out);

#endif
