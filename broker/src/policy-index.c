#include "policy-index.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NO_RULE SIZE_MAX
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

/*
 * All the rules naming one path, tree and exact rules apart, reduced to the
 * two that can win: a scan stops at the first deny rule, and of brokered
 * rules naming the same path the later one wins.
 */
struct index_slot {
	const char *key;    /* the rule's path or real; NULL if the slot is free */
	size_t len;
	uint64_t hash;
	bool tree;
	size_t first_deny;  /* index in pol->rules, or NO_RULE */
	size_t last_allow;
};

struct policy_index {
	struct index_slot *slots;
	size_t mask;        /* slot count - 1, a power of two */
	size_t longest;     /* no key is longer: deeper prefixes need no lookup */
};

/* FNV-1a goes byte by byte, so the lookup can hash prefixes as it walks. */
static uint64_t hash_step(uint64_t h, char c)
{
	return (h ^ (unsigned char)c) * FNV_PRIME;
}

/* Mixes the high bits down: the slot is taken from the low ones. */
static uint64_t hash_final(uint64_t h, bool tree)
{
	h ^= tree;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static uint64_t hash_key(const char *key, size_t len, bool tree)
{
	uint64_t h = FNV_OFFSET;

	for (size_t i = 0; i < len; i++)
		h = hash_step(h, key[i]);
	return hash_final(h, tree);
}

/* Linear probing: the slot holding the key, or the free one it would take. */
static size_t probe(const struct policy_index *idx, const char *key, size_t len,
		    bool tree, uint64_t hash)
{
	size_t i = hash & idx->mask;

	for (;; i = (i + 1) & idx->mask) {
		const struct index_slot *s = &idx->slots[i];

		if (!s->key || (s->hash == hash && s->len == len && s->tree == tree &&
				memcmp(s->key, key, len) == 0))
			return i;
	}
}

static void add_to_index(struct policy_index *idx, const struct rule *rule,
			 size_t pos, enum match_on on)
{
	const char *key = on == MATCH_REAL ? rule->real : rule->path;
	size_t len = on == MATCH_REAL ? rule->real_len : rule->path_len;
	uint64_t hash = hash_key(key, len, rule->tree);
	struct index_slot *s = &idx->slots[probe(idx, key, len, rule->tree, hash)];

	if (!s->key)
		*s = (struct index_slot){ .key = key, .len = len, .hash = hash,
					  .tree = rule->tree, .first_deny = NO_RULE,
					  .last_allow = NO_RULE };
	if (rule->kind == RULE_DENY && s->first_deny == NO_RULE)
		s->first_deny = pos;
	if (rule_is_brokered(rule))
		s->last_allow = pos;
	if (len > idx->longest)
		idx->longest = len;
}

/* At most half full, so that probe chains stay short and always end. */
static size_t slots_for(size_t rules)
{
	size_t n = 8;

	while (n < 2 * rules)
		n *= 2;
	return n;
}

static struct policy_index *build(const struct policy *pol, enum match_on on)
{
	struct policy_index *idx = malloc(sizeof *idx);
	size_t n = slots_for(pol->count);

	if (!idx)
		return NULL;
	idx->slots = calloc(n, sizeof *idx->slots);
	if (!idx->slots) {
		free(idx);
		return NULL;
	}
	idx->mask = n - 1;
	idx->longest = 0;
	/* Sandbox rules only shape the launcher's sandbox: they never match. */
	for (size_t i = 0; i < pol->count; i++)
		if (pol->rules[i].kind == RULE_DENY || rule_is_brokered(&pol->rules[i]))
			add_to_index(idx, &pol->rules[i], i, on);
	return idx;
}

static void free_index(struct policy_index *idx)
{
	if (idx)
		free(idx->slots);
	free(idx);
}

int policy_index_rebuild(struct policy *pol, enum match_on on)
{
	struct policy_index *fresh = build(pol, on);

	if (!fresh)
		return -ENOMEM;
	free_index(pol->index[on]);
	pol->index[on] = fresh;
	return 0;
}

void policy_index_free(struct policy *pol)
{
	free_index(pol->index[MATCH_AS_WRITTEN]);
	free_index(pol->index[MATCH_REAL]);
	pol->index[MATCH_AS_WRITTEN] = pol->index[MATCH_REAL] = NULL;
}

static const struct index_slot *lookup(const struct policy_index *idx,
				       const char *key, size_t len, bool tree,
				       uint64_t prefix_hash)
{
	uint64_t hash = hash_final(prefix_hash, tree);
	const struct index_slot *s = &idx->slots[probe(idx, key, len, tree, hash)];

	return s->key ? s : NULL;
}

struct found {
	size_t deny, allow;
};

/*
 * Slots are seen in rising specificity: shorter tree keys, longer ones, and
 * the exact key last.  So a later brokered rule always beats an earlier
 * one, while for deny rules only file order counts.
 */
static void note(struct found *f, const struct index_slot *s)
{
	if (!s)
		return;
	if (s->first_deny < f->deny)
		f->deny = s->first_deny;
	if (s->last_allow != NO_RULE)
		f->allow = s->last_allow;
}

static const struct rule *rule_at(const struct policy *pol, size_t pos)
{
	return pos == NO_RULE ? NULL : &pol->rules[pos];
}

/*
 * A tree rule covers path if its key is a prefix followed by '/' or the end
 * (the root's key is ""), an exact rule only if its key is the whole path:
 * one walk along path finds every key that can cover it.
 */
void policy_match(const struct policy *pol, const char *path, enum match_on on,
		  struct policy_match *out)
{
	const struct policy_index *idx = pol->index[on];
	struct found f = { NO_RULE, NO_RULE };
	uint64_t h = FNV_OFFSET;

	for (size_t k = 0; idx && k <= idx->longest; k++) {
		if (path[k] == '/' || path[k] == '\0')
			note(&f, lookup(idx, path, k, true, h));
		if (path[k] == '\0') {
			note(&f, lookup(idx, path, k, false, h));
			break;
		}
		h = hash_step(h, path[k]);
	}
	out->deny = rule_at(pol, f.deny);
	out->allow = rule_at(pol, f.allow);
}
