/* The audit trail: one JSON object per line, one line per request. */
#ifndef OPEN_HOOK_AUDIT_H
#define OPEN_HOOK_AUDIT_H

#include "policy.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Worst case: three paths (asked, resolved, the rule's) of 4095 bytes,
 * each byte escaped as \u00XX.
 */
#define AUDIT_LINE_MAX (3 * 6 * 4096 + 1024)
/* Lines of one event-loop turn, written together before its replies. */
#define AUDIT_BATCH_MAX (4 * AUDIT_LINE_MAX)

struct audit {
	int fd;             /* -1: auditing off */
	char *path;         /* NULL for stderr */
	char *batch;        /* lines not yet written */
	size_t used;
	int lost;           /* -errno of a failed write since the last flush */
};

struct audit_record {
	pid_t pid;
	uid_t uid;
	uint32_t command;
	const char *path;           /* as asked; may be NULL */
	size_t path_len;
	const char *resolved;       /* may be NULL or "" */
	bool has_flags;
	uint32_t flags;
	const char *decision;       /* "allow", "deny", "error", "drop" */
	int err;                    /* errno, 0 for none */
	const struct rule *rule;    /* may be NULL */
	const char *reason;         /* why a client was dropped; may be NULL */
	int32_t result;
};

/* path NULL: off; "-": stderr; else a file opened for appending. */
int audit_open(struct audit *audit, const char *path);

/* Reopens the file (after log rotation); keeps the old one on failure. */
int audit_reopen(struct audit *audit);

void audit_close(struct audit *audit);

/*
 * Queues one line.  The server flushes once per event-loop turn, before it
 * sends that turn's replies: a descriptor is never handed out before the
 * line that records it is written, and one write serves many requests.
 */
void audit_add(struct audit *audit, const struct audit_record *rec);

/*
 * Writes the queued lines (one write; lines never interleave with others').
 * Returns 0, or -errno if any line since the last flush was not written.
 */
int audit_flush(struct audit *audit);

/* Formats rec as one JSON line (with '\n') into buf; returns its length. */
size_t audit_format(const struct audit_record *rec, char *buf, size_t cap);

#endif
