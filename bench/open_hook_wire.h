/*
 * The open-hook wire protocol as the benchmark speaks it.
 *
 * Written from the protocol spec (docs/interop/open-hook.rst in the QEMU
 * series, patches/) instead of reusing broker/ code, so that the benchmark
 * measures the broker against the documented protocol and the IPC floor
 * cannot inherit the broker's costs.
 *
 * Request (host byte order, packed):
 *   u32 size (= 18 + len), u32 command (= 1), u32 flags, u32 mode,
 *   u16 len, u8 name[len] (no NUL)
 * Reply: u32 size (= 12), u32 command (= 1), s32 result; result 0 carries
 * exactly one fd (SCM_RIGHTS), -errno carries none.
 */
#ifndef OPEN_HOOK_WIRE_H
#define OPEN_HOOK_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include <sys/types.h>

enum {
    OPEN_HOOK_CMD_OPEN = 1,
    OPEN_HOOK_REQUEST_HEADER = 18,
    OPEN_HOOK_REPLY_SIZE = 12,
    /* Longest name the benchmark programs accept: a path, NUL excluded. */
    OPEN_HOOK_NAME_MAX = PATH_MAX - 1,
    OPEN_HOOK_REQUEST_MAX = OPEN_HOOK_REQUEST_HEADER + OPEN_HOOK_NAME_MAX,
};

struct open_request {
    uint32_t flags;
    uint32_t mode;
    char name[OPEN_HOOK_NAME_MAX + 1];   /* NUL-terminated copy */
};

/*
 * Encodes an open request for NAME into BUF (at least OPEN_HOOK_REQUEST_MAX
 * bytes).  Returns the message size, or -1 when NAME is too long.
 */
ssize_t encode_open_request(uint8_t *buf, const char *name,
                            uint32_t flags, uint32_t mode);

/*
 * Looks at the first LEN bytes of a byte stream.  Returns the size of the
 * complete request at its head (filling REQ), 0 when more bytes are needed,
 * or -1 when the head is not a valid request.
 */
ssize_t decode_open_request(const uint8_t *buf, size_t len,
                            struct open_request *req);

/* Sends a reply: FD is passed when RESULT is 0.  Returns 0 or -errno. */
int send_open_reply(int sock, int32_t result, int fd);

/*
 * Receives one reply.  Returns the result (0 or -errno from the server) and
 * stores the passed fd in *FD (-1 if none).  A broken reply or connection
 * yields -EPROTO / -errno of the failing call, with *FD = -1.
 */
int32_t recv_open_reply(int sock, int *fd);

#endif
