/* libFuzzer: the policy parser and rule matching on what it accepted. */
#include "policy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const probes[] = {
	"/", "/images", "/images/base.qcow2", "/images/vm1/snap/x", "/dev/kvm", "/a/b/c",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[POLICY_ERROR_MAX];
	struct policy pol;

	if (policy_parse((const char *)data, size, "fuzz.policy", &pol, err, sizeof err) < 0) {
		if (strncmp(err, "fuzz.policy:", 12) != 0)
			abort();
		return 0;
	}
	for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
		const struct rule *r = policy_allowance(&pol, probes[i], MATCH_AS_WRITTEN);

		if (r && !rule_covers(r, probes[i], MATCH_AS_WRITTEN))
			abort();
		policy_denial(&pol, probes[i], MATCH_REAL);
	}
	policy_free(&pol);
	return 0;
}
