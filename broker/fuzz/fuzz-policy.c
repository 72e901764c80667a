/* libFuzzer: the policy parser, and the rule index against a scan of the rules. */
#include "policy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const probes[] = {
	"/", "/images", "/images/base.qcow2", "/images/vm1/snap/x", "/dev/kvm", "/a/b/c",
};

/* Matching as it was before the index: every rule, in file order. */
static const struct rule *scan_denial(const struct policy *pol, const char *path)
{
	for (size_t i = 0; i < pol->count; i++)
		if (pol->rules[i].kind == RULE_DENY &&
		    rule_covers(&pol->rules[i], path, MATCH_AS_WRITTEN))
			return &pol->rules[i];
	return NULL;
}

static const struct rule *scan_allowance(const struct policy *pol, const char *path)
{
	const struct rule *best = NULL;

	for (size_t i = 0; i < pol->count; i++) {
		const struct rule *r = &pol->rules[i];

		if (!rule_is_brokered(r) || !rule_covers(r, path, MATCH_AS_WRITTEN))
			continue;
		if (!best || !r->tree || (best->tree && r->path_len >= best->path_len))
			best = r;
	}
	return best;
}

static void check(const struct policy *pol, const char *path)
{
	const struct rule *r = policy_allowance(pol, path, MATCH_AS_WRITTEN);

	if (r != scan_allowance(pol, path) ||
	    policy_denial(pol, path, MATCH_AS_WRITTEN) != scan_denial(pol, path))
		abort();
	if (r && !rule_covers(r, path, MATCH_AS_WRITTEN))
		abort();
	/* Before loading, real paths are the paths as written. */
	if (policy_allowance(pol, path, MATCH_REAL) != r)
		abort();
}

/* The rules' own paths, beneath them and beside them: where answers change. */
static void check_near_rule(const struct policy *pol, const struct rule *rule)
{
	char path[8192];

	snprintf(path, sizeof path, "%s", rule->path);
	check(pol, path);
	snprintf(path, sizeof path, "%s/x", rule->path);
	check(pol, path);
	snprintf(path, sizeof path, "%sx", rule->path);
	check(pol, path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[POLICY_ERROR_MAX];
	struct policy pol;

	if (policy_parse((const char *)data, size, "fuzz.policy", &pol, err, sizeof err) < 0) {
		if (strncmp(err, "fuzz.policy:", 12) != 0)
			abort();
		return 0;
	}
	for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++)
		check(&pol, probes[i]);
	for (size_t i = 0; i < pol.count && i < 64; i++)
		check_near_rule(&pol, &pol.rules[i]);
	policy_free(&pol);
	return 0;
}
