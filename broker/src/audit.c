#include "audit.h"

#include "flags.h"
#include "protocol.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


struct line {
	char *buf;
	size_t cap, len;
};

/*
 * The line is built with memcpy and hand-made decimals: one record per
 * request is on the broker's latency path, and vsnprintf cost more than
 * everything else the broker does for an open.
 */

/* Appends bytes as they are; the line is cut at its capacity. */
static void put_bytes(struct line *l, const char *s, size_t n)
{
	size_t room = l->cap - l->len;

	if (l->len >= l->cap)
		return;
	if (n > room)
		n = room;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void put_text(struct line *l, const char *s)
{
	put_bytes(l, s, strlen(s));
}

static void put_decimal(struct line *l, long value)
{
	char digits[24];
	size_t i = sizeof digits;
	unsigned long magnitude = value < 0 ? 0UL - (unsigned long)value
					    : (unsigned long)value;

	do {
		digits[--i] = (char)('0' + magnitude % 10);
		magnitude /= 10;
	} while (magnitude);
	if (value < 0)
		digits[--i] = '-';
	put_bytes(l, digits + i, sizeof digits - i);
}

/* A control byte or a byte that is not UTF-8, as the code point U+00XX. */
static void put_unicode_escape(struct line *l, unsigned char byte)
{
	static const char hex[] = "0123456789abcdef";
	char esc[6] = { '\\', 'u', '0', '0', hex[byte >> 4], hex[byte & 15] };

	put_bytes(l, esc, sizeof esc);
}

/* Length of the valid UTF-8 sequence at s, or 0 if it is not one. */
static size_t utf8_sequence(const unsigned char *s, size_t len)
{
	size_t n;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		n = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* Bytes that are not UTF-8 are written as the code point U+00XX. */
static void put_escaped(struct line *l, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t run = 0;     /* start of the bytes copied as they are */

	for (size_t i = 0; i < len;) {
		size_t n;

		/* Paths are nearly all printable ASCII: decide those bytes first. */
		if (u[i] >= 0x20 && u[i] < 0x7f && u[i] != '"' && u[i] != '\\') {
			i++;
			continue;
		}
		n = u[i] >= 0x80 ? utf8_sequence(u + i, len - i) : 0;
		if (n) {
			i += n;
			continue;
		}
		put_bytes(l, s + run, i - run);
		if (u[i] == '"' || u[i] == '\\') {
			put_bytes(l, "\\", 1);
			put_bytes(l, s + i, 1);
		} else {
			put_unicode_escape(l, u[i]);
		}
		i++;
		run = i;
	}
	put_bytes(l, s + run, len - run);
}

static void put_string(struct line *l, const char *s, size_t len)
{
	put_bytes(l, "\"", 1);
	put_escaped(l, s, len);
	put_bytes(l, "\"", 1);
}

static void put_field(struct line *l, const char *key, const char *s, size_t len)
{
	put_bytes(l, ",\"", 2);
	put_text(l, key);
	put_bytes(l, "\":", 2);
	if (s)
		put_string(l, s, len);
	else
		put_text(l, "null");
}

static void put_cstring(struct line *l, const char *key, const char *s)
{
	put_field(l, key, s && *s ? s : NULL, s ? strlen(s) : 0);
}

static void put_time(struct line *l)
{
	struct timespec ts;
	struct tm tm;
	static time_t cached_sec = -1;
	static char cached[32];
	char millis[4] = { '.' };

	clock_gettime(CLOCK_REALTIME, &ts);
	/* Requests come in bursts within one second: format it once. */
	if (ts.tv_sec != cached_sec) {
		gmtime_r(&ts.tv_sec, &tm);
		strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
		cached_sec = ts.tv_sec;
	}
	millis[1] = (char)('0' + ts.tv_nsec / 100000000);
	millis[2] = (char)('0' + ts.tv_nsec / 10000000 % 10);
	millis[3] = (char)('0' + ts.tv_nsec / 1000000 % 10);
	put_text(l, "{\"time\":\"");
	put_text(l, cached);
	put_bytes(l, millis, sizeof millis);
	put_bytes(l, "Z\"", 2);
}

static void put_rule(struct line *l, const struct audit_record *rec)
{
	const struct rule *r = rec->rule;

	if (!r) {
		put_text(l, ",\"rule\":null,\"rule_line\":null");
		return;
	}
	put_text(l, ",\"rule\":\"");
	put_text(l, rule_keyword(r->kind));
	put_bytes(l, " ", 1);
	put_escaped(l, r->path, r->path_len);
	put_text(l, r->tree ? "/\",\"rule_line\":" : "\",\"rule_line\":");
	put_decimal(l, (long)r->line);
}

size_t audit_format(const struct audit_record *rec, char *buf, size_t cap)
{
	struct line l = { .buf = buf, .cap = cap - 2 };
	char flags[256];

	put_time(&l);
	put_text(&l, ",\"client\":{\"pid\":");
	put_decimal(&l, (long)rec->pid);
	put_text(&l, ",\"uid\":");
	put_decimal(&l, (long)rec->uid);
	put_text(&l, "},\"command\":\"");
	if (rec->command == OH_CMD_OPEN || rec->command == OH_CMD_HELLO)
		put_text(&l, command_name(rec->command));
	else
		put_decimal(&l, (long)rec->command);
	put_bytes(&l, "\"", 1);
	put_field(&l, "path", rec->path, rec->path_len);
	put_cstring(&l, "resolved", rec->resolved);
	put_cstring(&l, "flags", rec->has_flags ?
		    flags_to_string(rec->flags, flags, sizeof flags) : NULL);
	put_text(&l, ",\"decision\":\"");
	put_text(&l, rec->decision);
	put_text(&l, "\",\"result\":");
	put_decimal(&l, (long)rec->result);
	put_cstring(&l, "errno", rec->err ? strerrorname_np(rec->err) : NULL);
	put_rule(&l, rec);
	if (rec->reason)
		put_cstring(&l, "reason", rec->reason);
	l.len = l.len < l.cap - 1 ? l.len : l.cap - 1;
	buf[l.len++] = '}';
	buf[l.len++] = '\n';
	return l.len;
}

static int open_target(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
}

int audit_open(struct audit *audit, const char *path)
{
	int err;

	*audit = (struct audit){ .fd = -1 };
	if (!path)
		return 0;
	audit->batch = malloc(AUDIT_BATCH_MAX);
	if (!audit->batch)
		return -ENOMEM;
	if (!strcmp(path, "-")) {
		audit->fd = STDERR_FILENO;
		return 0;
	}
	audit->path = strdup(path);
	audit->fd = audit->path ? open_target(path) : -1;
	if (audit->fd >= 0)
		return 0;
	err = audit->path ? -errno : -ENOMEM;
	audit_close(audit);
	return err;
}

static int write_all(int fd, const char *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

/* Writes the queued lines; a failure is kept until audit_flush() says it. */
static void write_batch(struct audit *audit)
{
	int rc = 0;

	if (audit->fd >= 0 && audit->used)
		rc = write_all(audit->fd, audit->batch, audit->used);
	audit->used = 0;
	if (rc < 0)
		audit->lost = rc;
}

int audit_flush(struct audit *audit)
{
	int rc;

	write_batch(audit);
	rc = audit->lost;
	audit->lost = 0;
	return rc;
}

void audit_add(struct audit *audit, const struct audit_record *rec)
{
	if (audit->fd < 0)
		return;
	if (AUDIT_BATCH_MAX - audit->used < AUDIT_LINE_MAX)
		write_batch(audit);
	audit->used += audit_format(rec, audit->batch + audit->used, AUDIT_LINE_MAX);
}

int audit_reopen(struct audit *audit)
{
	int fd;

	if (!audit->path)
		return 0;
	write_batch(audit);
	fd = open_target(audit->path);
	if (fd < 0)
		return -errno;
	close(audit->fd);
	audit->fd = fd;
	return 0;
}

void audit_close(struct audit *audit)
{
	audit_flush(audit);
	if (audit->path && audit->fd >= 0)
		close(audit->fd);
	free(audit->path);
	free(audit->batch);
	audit->fd = -1;
	audit->path = NULL;
	audit->batch = NULL;
}
