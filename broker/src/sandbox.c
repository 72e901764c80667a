#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Newer than the installed kernel headers may know. */
#define FS_TRUNCATE (1ULL << 14)       /* ABI 3 */
#define FS_IOCTL_DEV (1ULL << 15)      /* ABI 5 */

/* The full attribute layout; older kernels accept it with zeroed tail. */
struct ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

#define FS_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define FS_READ_EXEC (FS_READ | LANDLOCK_ACCESS_FS_EXECUTE)
#define FS_DEVICE (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE | \
		   FS_TRUNCATE | FS_IOCTL_DEV)
#define FS_WRITE (LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR | \
		  LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR | \
		  LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK | \
		  LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_SYM | \
		  LANDLOCK_ACCESS_FS_REFER | FS_TRUNCATE | FS_IOCTL_DEV)
#define FS_READ_WRITE (FS_READ | FS_WRITE)
/* Rights that make sense on a non-directory; others are EINVAL there. */
#define FS_FILE_RIGHTS (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | \
			LANDLOCK_ACCESS_FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV)

struct grant {
	const char *path;
	uint64_t access;
};

/* What a dynamically linked program such as QEMU needs to start and run. */
static const struct grant default_grants[] = {
	{ "/usr", FS_READ_EXEC },       { "/lib", FS_READ_EXEC },
	{ "/lib64", FS_READ_EXEC },     { "/lib32", FS_READ_EXEC },
	{ "/libx32", FS_READ_EXEC },    { "/bin", FS_READ_EXEC },
	{ "/sbin", FS_READ_EXEC },      { "/etc", FS_READ },
	{ "/proc", FS_READ },           { "/sys", FS_READ },
	{ "/dev/null", FS_DEVICE },     { "/dev/zero", FS_DEVICE },
	{ "/dev/full", FS_DEVICE },     { "/dev/random", FS_READ },
	{ "/dev/urandom", FS_READ },    { "/dev/tty", FS_DEVICE },
	{ "/dev/ptmx", FS_DEVICE },     { "/dev/pts", FS_DEVICE | FS_READ },
	{ "/dev/shm", FS_READ_WRITE },
};

int landlock_abi(void)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
			   LANDLOCK_CREATE_RULESET_VERSION);

	return abi < 0 ? -errno : (int)abi;
}

static uint64_t handled_for(int abi)
{
	uint64_t fs = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;   /* ABI 1 */

	if (abi >= 2)
		fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		fs |= FS_TRUNCATE;
	if (abi >= 5)
		fs |= FS_IOCTL_DEV;
	return fs;
}

/* True if path is dir or lies beneath it ("" and "/" are the root). */
static bool beneath(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (n > 0 && dir[n - 1] == '/')
		n--;
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* A grant that reaches a brokered object would make the broker pointless. */
static int check_overlap(const struct policy *pol, const char *grant,
			 const char *what)
{
	for (size_t i = 0; i < pol->count; i++) {
		const struct rule *r = &pol->rules[i];

		if (!rule_is_brokered(r))
			continue;
		if (beneath(r->real, grant) || (r->tree && beneath(grant, r->real))) {
			fprintf(stderr, "open-hook-server: %s:%u: --sandbox: brokered path %s%s "
				"would be reachable directly through %s %s\n",
				pol->source, r->line, r->path, r->tree ? "/" : "", what, grant);
			return -1;
		}
	}
	return 0;
}

static int add_path(int ruleset, const char *path, uint64_t access, uint64_t handled)
{
	struct landlock_path_beneath_attr attr = { .allowed_access = access & handled };
	struct stat st;
	int rc = 0;

	attr.parent_fd = open(path, O_PATH | O_CLOEXEC);
	if (attr.parent_fd < 0)
		return -errno;
	if (fstat(attr.parent_fd, &st) < 0)
		rc = -errno;
	else if (!S_ISDIR(st.st_mode))
		attr.allowed_access &= FS_FILE_RIGHTS;
	if (!rc && syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH,
			   &attr, 0) < 0)
		rc = -errno;
	close(attr.parent_fd);
	return rc;
}

/* Adds one grant after checking it against the brokered paths. */
static int add_grant(const struct policy *pol, int ruleset, const char *path,
		     uint64_t access, uint64_t handled, const char *what)
{
	char *real = realpath(path, NULL);
	int rc;

	if (!real)
		return -errno;
	rc = check_overlap(pol, real, what) < 0 ? -EPERM :
	     add_path(ruleset, real, access, handled);
	free(real);
	return rc;
}

static int add_defaults(const struct policy *pol, int ruleset, uint64_t handled)
{
	for (size_t i = 0; i < sizeof default_grants / sizeof default_grants[0]; i++) {
		const struct grant *g = &default_grants[i];
		int rc = add_grant(pol, ruleset, g->path, g->access, handled, "default grant");

		if (rc == -EPERM)
			return -1;
		if (rc < 0 && rc != -ENOENT)
			fprintf(stderr, "open-hook-server: --sandbox: %s left out: %s\n",
				g->path, strerror(-rc));
	}
	return 0;
}

static int add_policy_grants(const struct policy *pol, int ruleset, uint64_t handled)
{
	for (size_t i = 0; i < pol->count; i++) {
		const struct rule *r = &pol->rules[i];
		bool rw = r->kind == RULE_SANDBOX_RW;
		int rc;

		if (r->kind != RULE_SANDBOX_RO && !rw)
			continue;
		rc = add_grant(pol, ruleset, r->path[0] ? r->path : "/",
			       rw ? FS_READ_WRITE : FS_READ_EXEC, handled,
			       rule_keyword(r->kind));
		if (rc == -EPERM)
			return -1;
		if (rc < 0) {
			fprintf(stderr, "open-hook-server: %s:%u: %s %s: %s\n", pol->source,
				r->line, rule_keyword(r->kind), r->path, strerror(-rc));
			return -1;
		}
	}
	return 0;
}

static int build_ruleset(const struct policy *pol, const char *executable, int abi)
{
	struct ruleset_attr attr = { .handled_access_fs = handled_for(abi) };
	int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
	int rc;

	if (ruleset < 0) {
		perror("open-hook-server: --sandbox: landlock_create_ruleset");
		return -1;
	}
	if (add_defaults(pol, ruleset, attr.handled_access_fs) < 0 ||
	    add_policy_grants(pol, ruleset, attr.handled_access_fs) < 0)
		goto fail;
	rc = add_grant(pol, ruleset, executable, FS_READ_EXEC, attr.handled_access_fs,
		       "the command");
	if (rc == 0)
		return ruleset;
	if (rc != -EPERM)
		fprintf(stderr, "open-hook-server: --sandbox: %s: %s\n", executable,
			strerror(-rc));
fail:
	close(ruleset);
	return -1;
}

int sandbox_prepare(const struct policy *pol, const char *executable,
		    enum sandbox_mode mode, int *ruleset_fd)
{
	int abi = landlock_abi();

	*ruleset_fd = -1;
	if (mode == SANDBOX_OFF)
		return 0;
	if (abi < 0 && mode == SANDBOX_BEST_EFFORT) {
		fprintf(stderr, "open-hook-server: warning: Landlock unavailable (%s); "
			"running the command UNCONFINED (--sandbox=best-effort)\n",
			strerror(-abi));
		return 0;
	}
	if (abi < 0) {
		fprintf(stderr, "open-hook-server: --sandbox: Landlock is not available "
			"(%s); refusing to start the command unconfined "
			"(use --sandbox=best-effort to run it anyway)\n", strerror(-abi));
		return -1;
	}
	*ruleset_fd = build_ruleset(pol, executable, abi);
	return *ruleset_fd < 0 ? -1 : 0;
}

int sandbox_enforce(int ruleset_fd)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (syscall(SYS_landlock_restrict_self, ruleset_fd, 0) < 0)
		return -errno;
	close(ruleset_fd);
	return 0;
}
