/* The kernel's current name for an open file. */
#ifndef OPEN_HOOK_FDPATH_H
#define OPEN_HOOK_FDPATH_H

#include <stddef.h>

/* Reads /proc/self/fd/FD into buf; returns 0 or -errno. */
int fd_path(int fd, char *buf, size_t cap);

/* "/proc/self/fd/FD" into buf, for reopening an O_PATH descriptor. */
void fd_proc_name(int fd, char *buf, size_t cap);

#endif
