#include "flags.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

/* The bits meaningless across SCM_RIGHTS are accepted and then dropped. */
#define IGNORED_FLAGS (O_CLOEXEC | O_NOCTTY | KERNEL_O_LARGEFILE)

/* Bits that are passed on to the final open of the object. */
#define PASSED_FLAGS (O_TRUNC | O_APPEND | O_DIRECT | O_DSYNC | O_SYNC | \
		      O_NONBLOCK | O_DIRECTORY)

/* Bits decided by the broker itself rather than passed on. */
#define DECIDED_FLAGS (O_CREAT | O_EXCL | O_NOFOLLOW)

#define ACCEPTED_FLAGS (O_ACCMODE | IGNORED_FLAGS | PASSED_FLAGS | DECIDED_FLAGS)

int check_open_flags(uint32_t flags)
{
	if (flags & ~(uint32_t)ACCEPTED_FLAGS)
		return -EINVAL;
	if ((flags & O_ACCMODE) == O_ACCMODE)
		return -EINVAL;
	return 0;
}

unsigned access_needed(uint32_t flags)
{
	unsigned need = 0;
	int acc = flags & O_ACCMODE;

	if (acc == O_RDONLY || acc == O_RDWR)
		need |= ACCESS_READ;
	if (acc == O_WRONLY || acc == O_RDWR || (flags & (O_TRUNC | O_APPEND)))
		need |= ACCESS_WRITE;
	if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
		need |= ACCESS_CREATE;
	return need;
}

int reopen_flags(uint32_t flags)
{
	return (int)(flags & (O_ACCMODE | PASSED_FLAGS)) | O_CLOEXEC | O_NOCTTY;
}

struct flag_name {
	uint32_t bit;
	const char *name;
};

/* O_SYNC contains O_DSYNC's bit, so it must be tried first. */
static const struct flag_name flag_names[] = {
	{ O_CREAT, "O_CREAT" },         { O_EXCL, "O_EXCL" },
	{ O_NOCTTY, "O_NOCTTY" },       { O_TRUNC, "O_TRUNC" },
	{ O_APPEND, "O_APPEND" },       { O_NONBLOCK, "O_NONBLOCK" },
	{ O_SYNC, "O_SYNC" },           { O_DSYNC, "O_DSYNC" },
	{ O_ASYNC, "O_ASYNC" },         { O_DIRECT, "O_DIRECT" },
	{ KERNEL_O_LARGEFILE, "O_LARGEFILE" },
	{ O_TMPFILE, "O_TMPFILE" },     { O_DIRECTORY, "O_DIRECTORY" },
	{ O_NOFOLLOW, "O_NOFOLLOW" },   { O_NOATIME, "O_NOATIME" },
	{ O_CLOEXEC, "O_CLOEXEC" },     { O_PATH, "O_PATH" },
};

static const char *const accmode_names[] = {
	"O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE",
};

/* memcpy, not snprintf: every audited open names its flags. */
static void append(char *buf, size_t cap, size_t *used, const char *s)
{
	size_t n = strlen(s), sep = *used ? 1 : 0;

	if (*used + sep + n >= cap)
		return;
	if (sep)
		buf[(*used)++] = '|';
	memcpy(buf + *used, s, n + 1);
	*used += n;
}

const char *flags_to_string(uint32_t flags, char *buf, size_t cap)
{
	size_t used = 0;
	uint32_t rest = flags & ~(uint32_t)O_ACCMODE;
	char hex[16];

	buf[0] = '\0';
	append(buf, cap, &used, accmode_names[flags & O_ACCMODE]);
	for (size_t i = 0; i < sizeof flag_names / sizeof flag_names[0]; i++) {
		uint32_t bit = flag_names[i].bit;

		if (bit && (rest & bit) == bit) {
			append(buf, cap, &used, flag_names[i].name);
			rest &= ~bit;
		}
	}
	if (rest) {
		snprintf(hex, sizeof hex, "0x%x", rest);
		append(buf, cap, &used, hex);
	}
	return buf;
}
