/* The policy file: parsing, loading the rule directories, matching paths. */
#ifndef OPEN_HOOK_POLICY_H
#define OPEN_HOOK_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum rule_kind {
	RULE_RO,
	RULE_RW,
	RULE_CREATE,
	RULE_DENY,
	RULE_DEV,
	RULE_SANDBOX_RO,
	RULE_SANDBOX_RW,
	RULE_DIRS,          /* directories that may be handed out as such */
};

struct rule {
	enum rule_kind kind;
	bool tree;          /* written with a trailing '/' */
	unsigned line;
	char *path;         /* as written, without the trailing '/'; "" is "/" */
	char *real;         /* canonical form found at load time, else == path */
	size_t path_len;    /* strlen(path), strlen(real): rule_covers() and */
	size_t real_len;    /* the index use them rather than recount */
	const char *leaf;   /* exact rules: last component of path */
	int dirfd;          /* tree: the directory; exact: its parent; else -1 */
	bool shares_dirfd;  /* dirfd belongs to an earlier rule of the same dir */
};

struct policy_index;

struct policy {
	char *source;       /* file name used in messages */
	struct rule *rules;
	size_t count;
	mode_t create_mode;
	struct policy_index *index[2];  /* by enum match_on: policy-index.h */
};

enum match_on {
	MATCH_AS_WRITTEN,   /* the path the client asked for */
	MATCH_REAL,         /* the canonical path of the object opened */
};

#define POLICY_DEFAULT_MODE 0600
#define POLICY_ERROR_MAX 512

/*
 * Pure parse from memory: no file system access.  On error returns -1 and
 * puts "SOURCE:LINE: message" in err; *out is left empty.
 */
int policy_parse(const char *buf, size_t len, const char *source,
		 struct policy *out, char *err, size_t err_cap);

/* Reads and parses FILE, then opens the rule directories. */
int policy_load(const char *file, struct policy *out, char *err, size_t err_cap);

/*
 * Opens each allow rule's directory and records canonical paths.  On error
 * the policy is only fit for policy_free().
 */
int policy_open_dirs(struct policy *pol, char *err, size_t err_cap);

void policy_free(struct policy *pol);

/* The deny rule covering path, or NULL. */
const struct rule *policy_denial(const struct policy *pol, const char *path,
				 enum match_on on);

/* The most specific ro/rw/create/dev rule covering path, or NULL. */
const struct rule *policy_allowance(const struct policy *pol, const char *path,
				    enum match_on on);

/*
 * The dirs rule covering a directory's canonical path, or NULL: only such a
 * directory is handed out as a descriptor (see the man page on why).
 */
const struct rule *policy_dir_handout(const struct policy *pol, const char *real);

/* Access bits (enum access) a rule grants. */
unsigned rule_grants(const struct rule *rule);

const char *rule_keyword(enum rule_kind kind);

bool rule_is_brokered(const struct rule *rule);

/* True if path is the rule's path or (tree rules) beneath it. */
bool rule_covers(const struct rule *rule, const char *path, enum match_on on);

/*
 * Lexically normalises an absolute path into out (PATH_MAX bytes):
 * collapses "//" and ".", resolves ".." textually, drops a trailing '/'.
 * Returns -EINVAL for a relative path, -ENAMETOOLONG if it does not fit.
 */
int normalize_path(const char *in, size_t len, char *out, size_t cap);

#endif
