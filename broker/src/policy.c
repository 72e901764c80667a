#include "policy.h"

#include "fdpath.h"
#include "flags.h"
#include "policy-index.h"
#include "protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define POLICY_FILE_MAX (1 << 20)

static const struct {
	const char *word;
	enum rule_kind kind;
} keywords[] = {
	{ "ro", RULE_RO },
	{ "rw", RULE_RW },
	{ "create", RULE_CREATE },
	{ "deny", RULE_DENY },
	{ "dev", RULE_DEV },
	{ "sandbox-ro", RULE_SANDBOX_RO },
	{ "sandbox-rw", RULE_SANDBOX_RW },
	{ "dirs", RULE_DIRS },
};

const char *rule_keyword(enum rule_kind kind)
{
	for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
		if (keywords[i].kind == kind)
			return keywords[i].word;
	return "?";
}

bool rule_is_brokered(const struct rule *rule)
{
	return rule->kind == RULE_RO || rule->kind == RULE_RW ||
	       rule->kind == RULE_CREATE || rule->kind == RULE_DEV;
}

unsigned rule_grants(const struct rule *rule)
{
	switch (rule->kind) {
	case RULE_RO:
		return ACCESS_READ;
	case RULE_RW:
		return ACCESS_READ | ACCESS_WRITE;
	case RULE_CREATE:
		return ACCESS_READ | ACCESS_WRITE | ACCESS_CREATE;
	case RULE_DEV:
		return ACCESS_READ | ACCESS_WRITE | ACCESS_DEVICE;
	default:
		return 0;
	}
}

static int fail(char *err, size_t cap, const char *source, unsigned line,
		const char *fmt, ...)
{
	va_list ap;
	int n = line ? snprintf(err, cap, "%s:%u: ", source, line)
		     : snprintf(err, cap, "%s: ", source);

	if (n < 0 || (size_t)n >= cap)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err + n, cap - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

int normalize_path(const char *in, size_t len, char *out, size_t cap)
{
	size_t o = 0, i = 0;

	if (len == 0 || in[0] != '/')
		return -EINVAL;
	while (i < len) {
		size_t start, n;

		while (i < len && in[i] == '/')
			i++;
		start = i;
		while (i < len && in[i] != '/')
			i++;
		n = i - start;
		if (n == 0 || (n == 1 && in[start] == '.'))
			continue;
		if (n == 2 && in[start] == '.' && in[start + 1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
			continue;
		}
		if (o + 1 + n + 1 > cap)
			return -ENAMETOOLONG;
		out[o++] = '/';
		memcpy(out + o, in + start, n);
		o += n;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return 0;
}

/* Rule paths must already be canonical text so that matching is plain. */
static const char *path_problem(const char *path, size_t len)
{
	if (len == 0)
		return "missing path";
	if (path[0] != '/')
		return "path must be absolute";
	if (len > OH_NAME_MAX)
		return "path longer than 4095 bytes";
	for (size_t i = 0; i < len;) {
		size_t start = ++i, n;

		while (i < len && path[i] != '/')
			i++;
		n = i - start;
		if (n == 0 && i < len)
			return "empty path component (\"//\")";
		if ((n == 1 && path[start] == '.') ||
		    (n == 2 && path[start] == '.' && path[start + 1] == '.'))
			return "\".\" and \"..\" are not allowed in rule paths";
	}
	return NULL;
}

static int add_rule(struct policy *pol, enum rule_kind kind, unsigned line,
		    const char *path, size_t len)
{
	struct rule *grown = realloc(pol->rules, (pol->count + 1) * sizeof *grown);
	struct rule *rule;

	if (!grown)
		return -1;
	pol->rules = grown;
	rule = &pol->rules[pol->count];
	memset(rule, 0, sizeof *rule);
	rule->kind = kind;
	rule->line = line;
	rule->dirfd = -1;
	rule->tree = path[len - 1] == '/';
	if (rule->tree)
		len--;
	rule->path = strndup(path, len);
	rule->real = rule->path;
	rule->path_len = rule->real_len = len;
	if (!rule->path)
		return -1;
	rule->leaf = rule->tree ? NULL : strrchr(rule->path, '/') + 1;
	pol->count++;
	return 0;
}

static int parse_mode(const char *text, size_t len, mode_t *mode)
{
	unsigned long value = 0;

	if (len == 0 || len > 5)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (text[i] < '0' || text[i] > '7')
			return -1;
		value = value * 8 + (unsigned long)(text[i] - '0');
	}
	if (value > 0777)
		return -1;
	*mode = (mode_t)value;
	return 0;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

struct line {
	const char *word, *arg;
	size_t word_len, arg_len;
};

/* Splits "keyword argument..." ; the argument is the rest of the line. */
static void split_line(const char *s, size_t len, struct line *out)
{
	size_t i = 0;

	while (i < len && is_blank(s[i]))
		i++;
	out->word = s + i;
	while (i < len && !is_blank(s[i]))
		i++;
	out->word_len = (size_t)(s + i - out->word);
	while (i < len && is_blank(s[i]))
		i++;
	out->arg = s + i;
	while (len > i && is_blank(s[len - 1]))
		len--;
	out->arg_len = len - i;
}

static int parse_line(struct policy *pol, const char *s, size_t len,
		      unsigned line_no, char *err, size_t cap)
{
	struct line l;
	const char *problem;

	if (memchr(s, '\0', len))
		return fail(err, cap, pol->source, line_no, "NUL byte in line");
	split_line(s, len, &l);
	if (l.word_len == 0 || l.word[0] == '#')
		return 0;
	if (l.word_len == 4 && !memcmp(l.word, "mode", 4)) {
		if (parse_mode(l.arg, l.arg_len, &pol->create_mode) < 0)
			return fail(err, cap, pol->source, line_no,
				    "mode must be octal, 0 to 0777");
		return 0;
	}
	for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++) {
		if (strlen(keywords[i].word) != l.word_len ||
		    memcmp(keywords[i].word, l.word, l.word_len))
			continue;
		problem = path_problem(l.arg, l.arg_len);
		if (problem)
			return fail(err, cap, pol->source, line_no, "%s", problem);
		if (add_rule(pol, keywords[i].kind, line_no, l.arg, l.arg_len) < 0)
			return fail(err, cap, pol->source, line_no, "out of memory");
		return 0;
	}
	return fail(err, cap, pol->source, line_no, "unknown keyword \"%.*s\"",
		    (int)(l.word_len > 40 ? 40 : l.word_len), l.word);
}

int policy_parse(const char *buf, size_t len, const char *source,
		 struct policy *out, char *err, size_t err_cap)
{
	unsigned line_no = 0;
	size_t pos = 0;

	memset(out, 0, sizeof *out);
	out->create_mode = POLICY_DEFAULT_MODE;
	out->source = strdup(source);
	if (!out->source)
		return fail(err, err_cap, source, 0, "out of memory");
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - buf) : len;

		if (parse_line(out, buf + pos, end - pos, ++line_no, err, err_cap) < 0) {
			policy_free(out);
			return -1;
		}
		pos = end + 1;
	}
	/* Until policy_open_dirs() the real paths are the paths as written. */
	if (policy_index_rebuild(out, MATCH_AS_WRITTEN) < 0 ||
	    policy_index_rebuild(out, MATCH_REAL) < 0) {
		policy_free(out);
		return fail(err, err_cap, source, 0, "out of memory");
	}
	return 0;
}

static int real_of_dir(int dirfd, const char *leaf, char **real)
{
	char buf[PATH_MAX], *joined;
	int rc = fd_path(dirfd, buf, sizeof buf);

	if (rc < 0)
		return rc;
	if (!strcmp(buf, "/"))
		buf[0] = '\0';
	if (!leaf)
		joined = strdup(buf);
	else if (asprintf(&joined, "%s/%s", buf, leaf) < 0)
		joined = NULL;
	if (!joined)
		return -ENOMEM;
	*real = joined;
	return 0;
}

/* The directory a rule resolves from: itself for a tree, else its parent. */
static char *rule_dir(const struct rule *rule)
{
	if (rule->tree)
		return strdup(rule->path[0] ? rule->path : "/");
	if (rule->leaf - rule->path <= 1)
		return strdup("/");
	return strndup(rule->path, (size_t)(rule->leaf - rule->path - 1));
}

/* Length of that directory's name at the start of path ("/" counts as 0). */
static size_t rule_dir_len(const struct rule *rule)
{
	return rule->tree ? rule->path_len : (size_t)(rule->leaf - rule->path - 1);
}

/* The same for the canonical name, at the start of real, once it is known. */
static size_t real_dir_len(const struct rule *rule)
{
	return rule->tree ? rule->real_len : rule->real_len - strlen(rule->leaf) - 1;
}

/*
 * An earlier rule that opened the same directory.  Rules naming files in
 * one directory share its descriptor: a policy that lists a thousand
 * images must not need a thousand descriptors (nor a thousand readlinks).
 */
static const struct rule *opened_dir_twin(const struct policy *pol,
					  const struct rule *rule)
{
	size_t len = rule_dir_len(rule);

	for (const struct rule *r = pol->rules; r < rule; r++)
		if (r->dirfd >= 0 && rule_dir_len(r) == len &&
		    memcmp(r->path, rule->path, len) == 0)
			return r;
	return NULL;
}

static int share_twin_dir(struct rule *rule, const struct rule *twin)
{
	int dir_len = (int)real_dir_len(twin);
	char *real;

	if (rule->tree)
		real = strndup(twin->real, (size_t)dir_len);
	else if (asprintf(&real, "%.*s/%s", dir_len, twin->real, rule->leaf) < 0)
		real = NULL;
	if (!real)
		return -ENOMEM;
	rule->real = real;
	rule->real_len = strlen(real);
	if (rule_is_brokered(rule)) {
		rule->dirfd = twin->dirfd;
		rule->shares_dirfd = true;
	}
	return 0;
}

static int open_rule_dir(struct policy *pol, struct rule *rule, char *err,
			 size_t cap)
{
	const struct rule *twin = opened_dir_twin(pol, rule);
	char *dir;
	int fd, rc;

	if (twin)
		return share_twin_dir(rule, twin) < 0 ?
		       fail(err, cap, pol->source, rule->line, "out of memory") : 0;
	dir = rule_dir(rule);
	if (!dir)
		return fail(err, cap, pol->source, rule->line, "out of memory");
	fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && rule_is_brokered(rule)) {
		fail(err, cap, pol->source, rule->line, "cannot open directory %s: %s",
		     dir, strerror(errno));
		free(dir);
		return -1;
	}
	free(dir);
	if (fd < 0)
		return 0;   /* a deny rule for something absent denies nothing */
	rc = real_of_dir(fd, rule->tree ? NULL : rule->leaf, &rule->real);
	if (rc == 0)
		rule->real_len = strlen(rule->real);
	if (rc < 0 || !rule_is_brokered(rule))
		close(fd);
	else
		rule->dirfd = fd;
	if (rc < 0)
		return fail(err, cap, pol->source, rule->line, "%s", strerror(-rc));
	return 0;
}

int policy_open_dirs(struct policy *pol, char *err, size_t cap)
{
	for (size_t i = 0; i < pol->count; i++) {
		struct rule *rule = &pol->rules[i];

		if (rule->kind == RULE_SANDBOX_RO || rule->kind == RULE_SANDBOX_RW)
			continue;
		if (open_rule_dir(pol, rule, err, cap) < 0)
			return -1;
	}
	/* The index of real paths still holds the ones replaced above. */
	if (policy_index_rebuild(pol, MATCH_REAL) < 0)
		return fail(err, cap, pol->source, 0, "out of memory");
	return 0;
}

static int read_file(const char *file, char **data, size_t *len)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	size_t used = 0;
	char *buf;
	ssize_t n;

	if (fd < 0)
		return -errno;
	buf = malloc(POLICY_FILE_MAX + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while ((n = read(fd, buf + used, POLICY_FILE_MAX + 1 - used)) > 0)
		used += (size_t)n;
	close(fd);
	if (n < 0 || used > POLICY_FILE_MAX) {
		free(buf);
		return n < 0 ? -EIO : -EFBIG;
	}
	*data = buf;
	*len = used;
	return 0;
}

int policy_load(const char *file, struct policy *out, char *err, size_t cap)
{
	char *data = NULL;
	size_t len = 0;
	int rc = read_file(file, &data, &len);

	if (rc < 0)
		return fail(err, cap, file, 0, "cannot read: %s", strerror(-rc));
	rc = policy_parse(data, len, file, out, err, cap);
	free(data);
	if (rc < 0)
		return -1;
	if (policy_open_dirs(out, err, cap) < 0) {
		policy_free(out);
		return -1;
	}
	return 0;
}

void policy_free(struct policy *pol)
{
	for (size_t i = 0; i < pol->count; i++) {
		struct rule *rule = &pol->rules[i];

		if (rule->dirfd >= 0 && !rule->shares_dirfd)
			close(rule->dirfd);
		if (rule->real != rule->path)
			free(rule->real);
		free(rule->path);
	}
	policy_index_free(pol);
	free(pol->rules);
	free(pol->source);
	memset(pol, 0, sizeof *pol);
}

bool rule_covers(const struct rule *rule, const char *path, enum match_on on)
{
	const char *base = on == MATCH_REAL ? rule->real : rule->path;
	size_t n = on == MATCH_REAL ? rule->real_len : rule->path_len;

	if (!rule->tree)
		return strcmp(path, base) == 0;
	return strncmp(path, base, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* Rare (vvfat scans a directory once), so a plain scan of the rules. */
const struct rule *policy_dir_handout(const struct policy *pol, const char *real)
{
	for (size_t i = 0; i < pol->count; i++)
		if (pol->rules[i].kind == RULE_DIRS &&
		    rule_covers(&pol->rules[i], real, MATCH_REAL))
			return &pol->rules[i];
	return NULL;
}

const struct rule *policy_denial(const struct policy *pol, const char *path,
				 enum match_on on)
{
	struct policy_match m;

	policy_match(pol, path, on, &m);
	return m.deny;
}

const struct rule *policy_allowance(const struct policy *pol, const char *path,
				    enum match_on on)
{
	struct policy_match m;

	policy_match(pol, path, on, &m);
	return m.allow;
}
