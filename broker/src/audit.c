#include "audit.h"

#include "flags.h"
#include "protocol.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Worst case: two paths of 4095 bytes, each byte escaped as \u00XX. */
#define AUDIT_LINE_MAX (2 * 6 * 4096 + 1024)

struct line {
	char *buf;
	size_t cap, len;
};

static void put(struct line *l, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (l->len >= l->cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(l->buf + l->len, l->cap - l->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		l->len = l->len + (size_t)n < l->cap ? l->len + (size_t)n : l->cap;
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

/* Appends bytes as they are; the line is cut at its capacity like put(). */
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

/* Bytes that are not UTF-8 are written as the code point U+00XX. */
static void put_escaped(struct line *l, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t run = 0;     /* start of the bytes copied as they are */

	for (size_t i = 0; i < len;) {
		size_t n = utf8_sequence(u + i, len - i);
		bool plain = n != 0 && u[i] != '"' && u[i] != '\\' &&
			     u[i] >= 0x20 && u[i] != 0x7f;

		if (plain) {
			i += n;
			continue;
		}
		put_bytes(l, s + run, i - run);
		if (u[i] == '"' || u[i] == '\\')
			put(l, "\\%c", u[i]);
		else
			put(l, "\\u%04x", u[i]);
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
	put(l, ",\"%s\":", key);
	if (s)
		put_string(l, s, len);
	else
		put(l, "null");
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

	clock_gettime(CLOCK_REALTIME, &ts);
	/* Requests come in bursts within one second: format it once. */
	if (ts.tv_sec != cached_sec) {
		gmtime_r(&ts.tv_sec, &tm);
		strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
		cached_sec = ts.tv_sec;
	}
	put(l, "{\"time\":\"%s.%03ldZ\"", cached, ts.tv_nsec / 1000000);
}

static void put_rule(struct line *l, const struct audit_record *rec)
{
	const struct rule *r = rec->rule;

	if (!r) {
		put(l, ",\"rule\":null,\"rule_line\":null");
		return;
	}
	put(l, ",\"rule\":\"%s ", rule_keyword(r->kind));
	put_escaped(l, r->path, strlen(r->path));
	put(l, "%s\",\"rule_line\":%u", r->tree ? "/" : "", r->line);
}

size_t audit_format(const struct audit_record *rec, char *buf, size_t cap)
{
	struct line l = { .buf = buf, .cap = cap - 2 };
	char flags[256];

	put_time(&l);
	put(&l, ",\"client\":{\"pid\":%ld,\"uid\":%ld}", (long)rec->pid, (long)rec->uid);
	if (rec->command == OH_CMD_OPEN || rec->command == OH_CMD_HELLO)
		put(&l, ",\"command\":\"%s\"", command_name(rec->command));
	else
		put(&l, ",\"command\":\"%u\"", rec->command);
	put_field(&l, "path", rec->path, rec->path_len);
	put_cstring(&l, "resolved", rec->resolved);
	put_cstring(&l, "flags", rec->has_flags ?
		    flags_to_string(rec->flags, flags, sizeof flags) : NULL);
	put(&l, ",\"decision\":\"%s\",\"result\":%ld", rec->decision, (long)rec->result);
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
	audit->fd = -1;
	audit->path = NULL;
	if (!path)
		return 0;
	if (!strcmp(path, "-")) {
		audit->fd = STDERR_FILENO;
		return 0;
	}
	audit->path = strdup(path);
	if (!audit->path)
		return -ENOMEM;
	audit->fd = open_target(path);
	return audit->fd < 0 ? -errno : 0;
}

int audit_reopen(struct audit *audit)
{
	int fd;

	if (!audit->path)
		return 0;
	fd = open_target(audit->path);
	if (fd < 0)
		return -errno;
	close(audit->fd);
	audit->fd = fd;
	return 0;
}

void audit_close(struct audit *audit)
{
	if (audit->path && audit->fd >= 0)
		close(audit->fd);
	free(audit->path);
	audit->fd = -1;
	audit->path = NULL;
}

void audit_write(struct audit *audit, const struct audit_record *rec)
{
	static char buf[AUDIT_LINE_MAX];
	size_t len, done = 0;

	if (audit->fd < 0)
		return;
	len = audit_format(rec, buf, sizeof buf);
	/* One write per line so concurrent writers never interleave lines. */
	while (done < len) {
		ssize_t n = write(audit->fd, buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		done += (size_t)n;
	}
}
