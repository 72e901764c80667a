#include "resolve.h"

#include "fdpath.h"
#include "flags.h"
#include "policy-index.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* openat2 answers EAGAIN when a rename races with RESOLVE_BENEATH. */
#define RESOLVE_TRIES 4
/* Someone may create the file between our lookup and our O_EXCL create. */
#define CREATE_TRIES 4
#define RACE_RETRY (-1000)

#define CONFINED (RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)

struct request_ctx {
	const struct policy *pol;
	const struct rule *rule;    /* chosen from the path as written */
	const char *rest;           /* path relative to rule->dirfd */
	uint32_t flags;
	unsigned need;
	struct outcome *out;
};

static int open_beneath(int dirfd, const char *rest, uint64_t oflags,
			uint64_t resolve)
{
	struct open_how how = { .flags = oflags, .resolve = resolve };

	for (int i = 0; i < RESOLVE_TRIES; i++) {
		long fd = syscall(SYS_openat2, dirfd, rest, &how, sizeof how);

		if (fd >= 0)
			return (int)fd;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
	}
	return -EAGAIN;
}

/* An escape blocked by the confinement is a policy refusal, not an error. */
static int confinement_errno(int err)
{
	return (err == EXDEV || err == ELOOP) ? EACCES : err;
}

static int refuse(struct outcome *out, const struct rule *rule, int err)
{
	if (rule)
		out->rule = rule;
	out->error = err;
	return err;
}

static int type_errno(const struct rule *rule, const struct stat *st,
		      uint32_t flags)
{
	bool dev_rule = rule->kind == RULE_DEV;

	if (S_ISLNK(st->st_mode))
		return (flags & O_NOFOLLOW) ? ELOOP : EACCES;
	if (S_ISDIR(st->st_mode)) {
		if (dev_rule || !rule->tree)
			return EACCES;
		if ((flags & O_ACCMODE) != O_RDONLY || !(flags & O_DIRECTORY) ||
		    (flags & (O_TRUNC | O_APPEND | O_CREAT)))
			return EISDIR;
		return 0;
	}
	if (flags & O_DIRECTORY)
		return ENOTDIR;
	if (S_ISREG(st->st_mode)) {
		/* Another name of this inode may lie outside the policy. */
		if (dev_rule || (rule->tree && st->st_nlink > 1))
			return EACCES;
		return 0;
	}
	return dev_rule ? 0 : EACCES;
}

/* Checks the canonical name of what was actually reached against the policy. */
static int check_real_path(struct request_ctx *ctx, unsigned need,
			   const struct rule **real_rule)
{
	struct policy_match m;

	policy_match(ctx->pol, ctx->out->resolved, MATCH_REAL, &m);
	if (m.deny)
		return refuse(ctx->out, m.deny, EACCES);
	*real_rule = m.allow;
	if (!*real_rule)
		return refuse(ctx->out, NULL, EACCES);
	if (need & ~rule_grants(*real_rule))
		return refuse(ctx->out, *real_rule, EACCES);
	return 0;
}

static int check_object(struct request_ctx *ctx, int pfd, const struct stat *st)
{
	const struct rule *real_rule;
	int err = fd_path(pfd, ctx->out->resolved, sizeof ctx->out->resolved);

	if (err < 0)
		return refuse(ctx->out, NULL, -err);
	err = check_real_path(ctx, ctx->need, &real_rule);
	if (err)
		return err;
	err = type_errno(ctx->rule, st, ctx->flags);
	if (!err)
		err = type_errno(real_rule, st, ctx->flags);
	if (err)
		return refuse(ctx->out, real_rule, err);
	/* A directory descriptor reaches every name beneath it, and ".." */
	if (S_ISDIR(st->st_mode) && !policy_dir_handout(ctx->pol, ctx->out->resolved))
		return refuse(ctx->out, real_rule, EACCES);
	if ((ctx->flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
		return refuse(ctx->out, NULL, EEXIST);
	return 0;
}

static int clear_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/*
 * Reopens the very inode behind an O_PATH descriptor, non-blocking: a FIFO
 * without a peer, or a regular file under a lease (another process's
 * F_SETLEASE makes a conflicting open wait for the lease break time),
 * must not stall every client of the broker.  Such an open fails with
 * EWOULDBLOCK instead.
 */
static int reopen_object(int pfd, const struct stat *st, uint32_t flags)
{
	struct stat now;
	char name[32];
	int fd, err;

	fd_proc_name(pfd, name, sizeof name);
	fd = open(name, reopen_flags(flags) | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &now) < 0 || now.st_dev != st->st_dev || now.st_ino != st->st_ino)
		err = -EACCES;
	else if (!(flags & O_NONBLOCK))
		err = clear_nonblock(fd);
	else
		err = 0;
	if (err == 0)
		return fd;
	close(fd);
	return err;
}

static int open_existing(struct request_ctx *ctx, int pfd)
{
	struct stat st;
	int fd;

	if (fstat(pfd, &st) < 0)
		return refuse(ctx->out, NULL, errno);
	if (check_object(ctx, pfd, &st))
		return ctx->out->error;
	fd = reopen_object(pfd, &st, ctx->flags);
	if (fd < 0)
		return refuse(ctx->out, NULL, -fd);
	ctx->out->fd = fd;
	return 0;
}

static void split_leaf(const char *rest, char *dir, size_t cap, const char **leaf)
{
	const char *slash = strrchr(rest, '/');

	if (!slash) {
		snprintf(dir, cap, ".");
		*leaf = rest;
		return;
	}
	snprintf(dir, cap, "%.*s", (int)(slash - rest), rest);
	*leaf = slash + 1;
}

/* Joins "a" "/" "b" into dst; memcpy, as it runs for every request. */
static int join_path(char *dst, size_t cap, const char *a, const char *sep,
		     const char *b)
{
	size_t la = strlen(a), ls = strlen(sep), lb = strlen(b);

	if (la + ls + lb >= cap)
		return -ENAMETOOLONG;
	memcpy(dst, a, la);
	memcpy(dst + la, sep, ls);
	memcpy(dst + la + ls, b, lb + 1);
	return 0;
}

static int join_resolved(struct outcome *out, const char *parent, const char *leaf)
{
	return join_path(out->resolved, sizeof out->resolved,
			 strcmp(parent, "/") ? parent : "", "/", leaf);
}

static int create_in(struct request_ctx *ctx, int dfd, const char *leaf)
{
	char parent[PATH_MAX];
	const struct rule *real_rule;
	int fd, err = fd_path(dfd, parent, sizeof parent);

	if (!err)
		err = join_resolved(ctx->out, parent, leaf);
	if (err < 0)
		return refuse(ctx->out, NULL, -err);
	if (check_real_path(ctx, ctx->need | ACCESS_CREATE, &real_rule))
		return ctx->out->error;
	fd = openat(dfd, leaf, reopen_flags(ctx->flags) | O_CREAT | O_EXCL | O_NOFOLLOW,
		    ctx->pol->create_mode);
	if (fd < 0 && errno == EEXIST && !(ctx->flags & O_EXCL))
		return RACE_RETRY;
	if (fd < 0)
		return refuse(ctx->out, NULL, errno);
	/* The umask must not decide the mode of what the broker creates. */
	if (fchmod(fd, ctx->pol->create_mode) < 0) {
		int err = errno;

		close(fd);
		unlinkat(dfd, leaf, 0);
		return refuse(ctx->out, NULL, err);
	}
	ctx->out->fd = fd;
	return 0;
}

static int create_new(struct request_ctx *ctx)
{
	char dir[PATH_MAX];
	const char *leaf;
	int dfd, rc;

	if (!(rule_grants(ctx->rule) & ACCESS_CREATE))
		return refuse(ctx->out, ctx->rule, EACCES);
	split_leaf(ctx->rest, dir, sizeof dir, &leaf);
	if (!*leaf)
		return refuse(ctx->out, NULL, EISDIR);
	dfd = open_beneath(ctx->rule->dirfd, dir, O_PATH | O_DIRECTORY | O_CLOEXEC, CONFINED);
	if (dfd < 0)
		return refuse(ctx->out, NULL, confinement_errno(-dfd));
	rc = create_in(ctx, dfd, leaf);
	close(dfd);
	return rc;
}

/*
 * The common case in one open: a regular file reached without following
 * any symlink.  Its canonical name is then the rule's canonical directory
 * plus the rest as written, so neither an O_PATH descriptor nor a readlink
 * and reopen through /proc is needed.  O_NONBLOCK keeps a FIFO from
 * stalling the loop; anything that is not a plain file goes the long way.
 * Returns 0 or an errno when decided, FAST_PATH_NO to take the long way.
 */
#define FAST_PATH_NO (-2000)

static int open_fast(struct request_ctx *ctx)
{
	const struct rule *real_rule;
	struct stat before, st;
	int fd, err;

	/*
	 * Only a name directly in the rule's directory: the look below has no
	 * RESOLVE_BENEATH, and on a longer name it would follow symlinked
	 * directories anywhere (an automount, a dead NFS server).
	 */
	if ((ctx->flags & (O_CREAT | O_TRUNC | O_DIRECTORY | O_PATH)) ||
	    strchr(ctx->rest, '/'))
		return FAST_PATH_NO;
	/*
	 * Look before opening: opening a device node acts on the device, and
	 * only a `dev` rule may do that.  Putting a device node in this name
	 * between the look and the open needs one on the same file system to
	 * rename or link, which only a privileged user can make; the inode is
	 * compared after the open.
	 */
	if (fstatat(ctx->rule->dirfd, ctx->rest, &before, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(before.st_mode))
		return FAST_PATH_NO;
	fd = open_beneath(ctx->rule->dirfd, ctx->rest,
			  (uint64_t)reopen_flags(ctx->flags) | O_NONBLOCK | O_NOFOLLOW,
			  CONFINED | RESOLVE_NO_SYMLINKS);
	if (fd < 0)
		return FAST_PATH_NO;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_ino != before.st_ino || st.st_dev != before.st_dev) {
		close(fd);
		return FAST_PATH_NO;
	}
	if (ctx->rule->tree)
		err = join_resolved(ctx->out, ctx->rule->real[0] ? ctx->rule->real : "/",
				    ctx->rest);
	else
		err = join_path(ctx->out->resolved, sizeof ctx->out->resolved,
				ctx->rule->real, "", "");
	if (err) {
		close(fd);
		return FAST_PATH_NO;
	}
	err = check_real_path(ctx, ctx->need, &real_rule);
	if (!err) {
		err = type_errno(ctx->rule, &st, ctx->flags);
		if (!err)
			err = type_errno(real_rule, &st, ctx->flags);
		if (err)
			refuse(ctx->out, real_rule, err);
	}
	/* F_SETFL takes the status flags asked for (O_DIRECT, O_APPEND...). */
	if (!err && !(ctx->flags & O_NONBLOCK) &&
	    fcntl(fd, F_SETFL, reopen_flags(ctx->flags)) < 0)
		err = refuse(ctx->out, NULL, errno);
	if (err) {
		close(fd);
		return err;
	}
	ctx->out->fd = fd;
	return 0;
}

static int open_or_create(struct request_ctx *ctx)
{
	bool exact = !ctx->rule->tree;
	uint64_t oflags = O_PATH | O_CLOEXEC;
	int pfd, rc;

	/* An exact rule names one file: a symlink in its place is never followed. */
	if (exact || (ctx->flags & O_NOFOLLOW))
		oflags |= O_NOFOLLOW;
	pfd = open_beneath(ctx->rule->dirfd, ctx->rest, oflags,
			   CONFINED | (exact ? RESOLVE_NO_SYMLINKS : 0));
	if (pfd == -ENOENT && (ctx->flags & O_CREAT))
		return create_new(ctx);
	if (pfd < 0)
		return refuse(ctx->out, NULL, confinement_errno(-pfd));
	rc = open_existing(ctx, pfd);
	close(pfd);
	return rc;
}

/* The rule's directory fd is the root; the rest is what lies below it. */
static int relative_to_rule(const struct rule *rule, const char *path,
			    bool trailing_slash, char *rest, size_t cap)
{
	const char *tail = rule->tree ? path + rule->path_len : rule->leaf;

	while (*tail == '/')
		tail++;
	if (!*tail)
		return join_path(rest, cap, ".", "", "");
	return join_path(rest, cap, tail, trailing_slash ? "/" : "", "");
}

static int decide(const struct policy *pol, const char *name, size_t len,
		  uint32_t flags, struct outcome *out)
{
	char path[PATH_MAX], rest[PATH_MAX];
	struct request_ctx ctx = { .pol = pol, .flags = flags, .out = out };
	struct policy_match m;
	int rc;

	if (check_open_flags(flags) < 0)
		return refuse(out, NULL, EINVAL);
	rc = normalize_path(name, len, path, sizeof path);
	if (rc < 0)
		return refuse(out, NULL, -rc);
	/* Lexical checks first: nothing outside the policy touches the disk. */
	policy_match(pol, path, MATCH_AS_WRITTEN, &m);
	if (m.deny)
		return refuse(out, m.deny, EACCES);
	ctx.rule = m.allow;
	if (!ctx.rule)
		return refuse(out, NULL, EACCES);
	out->rule = ctx.rule;
	ctx.need = access_needed(flags);
	if (ctx.need & ~rule_grants(ctx.rule))
		return refuse(out, ctx.rule, EACCES);
	rc = relative_to_rule(ctx.rule, path, len > 1 && name[len - 1] == '/',
			      rest, sizeof rest);
	if (rc < 0)
		return refuse(out, NULL, -rc);
	ctx.rest = rest;
	rc = open_fast(&ctx);
	if (rc != FAST_PATH_NO)
		return rc;
	for (int i = 0; i < CREATE_TRIES; i++) {
		rc = open_or_create(&ctx);
		if (rc != RACE_RETRY)
			return rc;
		out->resolved[0] = '\0';
	}
	return refuse(out, NULL, EEXIST);
}

void broker_open(const struct policy *pol, const char *name, size_t len,
		 uint32_t flags, struct outcome *out)
{
	out->fd = -1;
	out->error = 0;
	out->rule = NULL;
	out->resolved[0] = '\0';
	decide(pol, name, len, flags, out);
}
