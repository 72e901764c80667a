#include "fdpath.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

void fd_proc_name(int fd, char *buf, size_t cap)
{
	snprintf(buf, cap, "/proc/self/fd/%d", fd);
}

int fd_path(int fd, char *buf, size_t cap)
{
	char link[32];
	ssize_t n;

	fd_proc_name(fd, link, sizeof link);
	n = readlink(link, buf, cap);
	if (n < 0)
		return -errno;
	if ((size_t)n >= cap)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	return 0;
}
