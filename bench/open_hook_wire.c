/* Encoding, decoding and fd passing for the open-hook wire protocol. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "open_hook_wire.h"

/* Both ends run on one host, so fields are copied in host byte order. */
static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, sizeof(v)); }
static void put_u16(uint8_t *p, uint16_t v) { memcpy(p, &v, sizeof(v)); }

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static uint16_t get_u16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

ssize_t encode_open_request(uint8_t *buf, const char *name,
                            uint32_t flags, uint32_t mode)
{
    size_t len = strlen(name);

    if (len == 0 || len > OPEN_HOOK_NAME_MAX) {
        return -1;
    }
    put_u32(buf + 0, (uint32_t)(OPEN_HOOK_REQUEST_HEADER + len));
    put_u32(buf + 4, OPEN_HOOK_CMD_OPEN);
    put_u32(buf + 8, flags);
    put_u32(buf + 12, mode);
    put_u16(buf + 16, (uint16_t)len);
    memcpy(buf + OPEN_HOOK_REQUEST_HEADER, name, len);
    return (ssize_t)(OPEN_HOOK_REQUEST_HEADER + len);
}

ssize_t decode_open_request(const uint8_t *buf, size_t len,
                            struct open_request *req)
{
    if (len < OPEN_HOOK_REQUEST_HEADER) {
        return 0;
    }
    uint32_t size = get_u32(buf + 0);
    uint16_t name_len = get_u16(buf + 16);

    if (get_u32(buf + 4) != OPEN_HOOK_CMD_OPEN || name_len == 0 ||
        name_len > OPEN_HOOK_NAME_MAX ||
        size != OPEN_HOOK_REQUEST_HEADER + (uint32_t)name_len) {
        return -1;
    }
    if (len < size) {
        return 0;
    }
    req->flags = get_u32(buf + 8);
    req->mode = get_u32(buf + 12);
    memcpy(req->name, buf + OPEN_HOOK_REQUEST_HEADER, name_len);
    req->name[name_len] = '\0';
    return (ssize_t)size;
}

/* A reply and room for the one fd it may carry, as sendmsg/recvmsg want. */
struct reply_message {
    uint8_t bytes[OPEN_HOOK_REPLY_SIZE];
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct iovec iov;
    struct msghdr msg;
};

static void reply_message_init(struct reply_message *m, bool with_fd)
{
    memset(m, 0, sizeof(*m));
    m->iov = (struct iovec){ .iov_base = m->bytes, .iov_len = sizeof(m->bytes) };
    m->msg.msg_iov = &m->iov;
    m->msg.msg_iovlen = 1;
    if (with_fd) {
        m->msg.msg_control = m->control.buf;
        m->msg.msg_controllen = sizeof(m->control.buf);
    }
}

int send_open_reply(int sock, int32_t result, int fd)
{
    struct reply_message m;

    reply_message_init(&m, result == 0);
    put_u32(m.bytes + 0, OPEN_HOOK_REPLY_SIZE);
    put_u32(m.bytes + 4, OPEN_HOOK_CMD_OPEN);
    put_u32(m.bytes + 8, (uint32_t)result);
    if (result == 0) {
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&m.msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    }
    ssize_t n = sendmsg(sock, &m.msg, MSG_NOSIGNAL);
    if (n < 0) {
        return -errno;
    }
    return n == OPEN_HOOK_REPLY_SIZE ? 0 : -EPROTO;
}

static int passed_fd(struct msghdr *msg)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(int))) {
            int fd;
            memcpy(&fd, CMSG_DATA(c), sizeof(int));
            return fd;
        }
    }
    return -1;
}

int32_t recv_open_reply(int sock, int *fd)
{
    struct reply_message m;

    reply_message_init(&m, true);
    *fd = -1;
    /* MSG_WAITALL: the 12 bytes may in principle arrive in pieces. */
    ssize_t n = recvmsg(sock, &m.msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
    if (n < 0) {
        return -errno;
    }
    *fd = passed_fd(&m.msg);
    int32_t result = (int32_t)get_u32(m.bytes + 8);
    bool well_formed = n == OPEN_HOOK_REPLY_SIZE &&
                       get_u32(m.bytes + 0) == OPEN_HOOK_REPLY_SIZE &&
                       get_u32(m.bytes + 4) == OPEN_HOOK_CMD_OPEN &&
                       (result == 0) == (*fd >= 0);
    if (!well_formed) {
        if (*fd >= 0) {
            close(*fd);
            *fd = -1;
        }
        return -EPROTO;
    }
    return result;
}
