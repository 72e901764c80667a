/* open(2) flags as sent by the client: what is accepted and what it asks for. */
#ifndef OPEN_HOOK_FLAGS_H
#define OPEN_HOOK_FLAGS_H

#include <stddef.h>
#include <stdint.h>

/*
 * glibc defines O_LARGEFILE as 0 on 64-bit hosts, but a 32-bit-era client
 * may still send the kernel's bit; it is harmless and ignored.
 */
#if defined(__x86_64__) || defined(__i386__)
#define KERNEL_O_LARGEFILE 0100000u
#elif defined(__aarch64__) || defined(__arm__)
#define KERNEL_O_LARGEFILE 0400000u
#else
#define KERNEL_O_LARGEFILE 0u
#endif

/* Access a request needs, and a rule grants. */
enum access {
	ACCESS_READ = 1 << 0,
	ACCESS_WRITE = 1 << 1,
	ACCESS_CREATE = 1 << 2,
	ACCESS_DEVICE = 1 << 3,
};

/* 0 if every bit is one the broker accepts, else -EINVAL. */
int check_open_flags(uint32_t flags);

/* Access a request needs before knowing whether the file exists. */
unsigned access_needed(uint32_t flags);

/* Flags to pass to the reopen of an already resolved object. */
int reopen_flags(uint32_t flags);

/* "O_RDWR|O_CREAT|0x40000000" into buf; returns buf. */
const char *flags_to_string(uint32_t flags, char *buf, size_t cap);

#endif
