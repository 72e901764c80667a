/*
 * ipc-floor-server: the least work any open-hook broker can do.
 *
 *   ipc-floor-server [--checked AUDIT] --fd N        one connected socket
 *   ipc-floor-server [--checked AUDIT] --listen PATH one epoll loop, many clients
 *
 * It speaks the open-hook framing, opens whatever it is asked with the
 * requested flags, and passes the fd back.  No policy, no audit, no path
 * resolution: the benchmark divides the broker's figures by these, so
 * anything here that a real broker would not need would flatter the broker.
 * The two modes mirror the broker's --fd and --listen modes so that both are
 * compared under the same concurrency model.
 *
 * --checked adds only the system calls that a broker which must never open
 * a device node, never block on a FIFO, and must record every grant cannot
 * do without: look at the name before opening it (fstatat), open it
 * non-blocking from its directory, check that the opened inode is the one
 * looked at (fstat), restore the flags asked for (fcntl), and append one
 * line to AUDIT (write).  Still no policy and no formatting: the distance
 * from here to the broker is what the broker's own code costs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "open_hook_wire.h"

/*
 * Bytes of a request that arrived incomplete.  Clients write a request with
 * one send, so this is almost never used; idle clients cost no heap at all.
 */
struct partial {
    size_t have;
    uint8_t buf[OPEN_HOOK_REQUEST_MAX];
};

/* Shared by every client: the loop handles one readable socket at a time. */
static uint8_t scratch[OPEN_HOOK_REQUEST_MAX];

/* --checked: the audit file, and the last directory a name was under. */
static int audit_fd = -1;
static int cached_dirfd = -1;
static char cached_dir[OPEN_HOOK_REQUEST_MAX];

/* A directory descriptor for NAME's parent, reused while it stays the same. */
static int parent_of(const char *name, const char **leaf)
{
    const char *slash = strrchr(name, '/');
    size_t len = slash ? (size_t)(slash - name) : 0;

    *leaf = slash ? slash + 1 : name;
    if (!slash) {
        return AT_FDCWD;
    }
    if (cached_dirfd < 0 || strlen(cached_dir) != len ||
        memcmp(cached_dir, name, len) != 0) {
        if (cached_dirfd >= 0) {
            close(cached_dirfd);
        }
        memcpy(cached_dir, name, len);
        cached_dir[len] = '\0';
        cached_dirfd = open(len ? cached_dir : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    }
    return cached_dirfd;
}

/* The system calls of a careful open; see the comment at the top. */
static int open_checked(const struct open_request *req)
{
    const char *leaf;
    int dirfd = parent_of(req->name, &leaf);
    struct stat before, after;
    int fd;

    if (fstatat(dirfd, leaf, &before, AT_SYMLINK_NOFOLLOW) < 0) {
        return -1;
    }
    fd = openat(dirfd, leaf, (int)req->flags | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW,
                (mode_t)req->mode);
    if (fd >= 0 && (fstat(fd, &after) < 0 || after.st_ino != before.st_ino ||
                    fcntl(fd, F_SETFL, (int)req->flags) < 0)) {
        close(fd);
        errno = EACCES;
        return -1;
    }
    return fd;
}

/* One line of a realistic length per request; the content is not the point. */
static void audit(const struct open_request *req, int result)
{
    char line[OPEN_HOOK_REQUEST_MAX + 256];
    int n = snprintf(line, sizeof(line),
                     "{\"time\":\"0000-00-00T00:00:00.000Z\",\"path\":\"%s\","
                     "\"flags\":\"%u\",\"result\":%d,\"decision\":\"%s\"}\n",
                     req->name, req->flags, result, result ? "deny" : "allow");

    if (write(audit_fd, line, (size_t)n) < 0) {
        perror("ipc-floor-server: audit");
    }
}

static int answer(int sock, const struct open_request *req)
{
    int fd = audit_fd < 0 ? open(req->name, (int)req->flags | O_CLOEXEC, (mode_t)req->mode)
                          : open_checked(req);
    int err = fd < 0 ? -errno : 0;
    int result;

    if (audit_fd >= 0) {
        audit(req, err);
    }
    result = send_open_reply(sock, err, fd);

    if (fd >= 0) {
        close(fd);
    }
    return result;
}

/* Answers every complete request at the head of BUF; returns bytes used. */
static ssize_t answer_all(int sock, const uint8_t *buf, size_t len)
{
    struct open_request req;
    size_t used = 0;

    for (;;) {
        ssize_t size = decode_open_request(buf + used, len - used, &req);
        if (size < 0 || (size > 0 && answer(sock, &req) < 0)) {
            return -1;
        }
        if (size == 0) {
            return (ssize_t)used;
        }
        used += (size_t)size;
    }
}

/*
 * Reads what SOCK has and answers it, keeping an incomplete tail in *PART.
 * Returns 0 to keep the client, -1 at EOF or on error.
 */
static int serve_readable(int sock, struct partial **part)
{
    uint8_t *buf = *part ? (*part)->buf : scratch;
    size_t have = *part ? (*part)->have : 0;
    ssize_t n = read(sock, buf + have, OPEN_HOOK_REQUEST_MAX - have);

    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return 0;
    }
    if (n <= 0) {
        return -1;
    }
    have += (size_t)n;
    ssize_t used = answer_all(sock, buf, have);
    if (used < 0) {
        return -1;
    }
    have -= (size_t)used;
    if (have > 0 && !*part) {
        *part = malloc(sizeof(**part));
        if (!*part) {
            return -1;
        }
    }
    if (*part) {
        memmove((*part)->buf, buf + used, have);
        (*part)->have = have;
    }
    return 0;
}

static int serve_one_fd(int sock)
{
    struct partial *part = NULL;

    while (serve_readable(sock, &part) == 0) {
    }
    free(part);
    return 0;
}

/* Per-client state of the daemon, indexed by fd. */
static struct partial **partials;
static size_t n_partials;

static int track_client(int epfd, int sock)
{
    if ((size_t)sock >= n_partials) {
        size_t n = (size_t)sock * 2 + 16;
        struct partial **p = realloc(partials, n * sizeof(*p));
        if (!p) {
            return -1;
        }
        memset(p + n_partials, 0, (n - n_partials) * sizeof(*p));
        partials = p;
        n_partials = n;
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = sock };
    return epoll_ctl(epfd, EPOLL_CTL_ADD, sock, &ev);
}

static void drop_client(int sock)
{
    free(partials[sock]);
    partials[sock] = NULL;
    close(sock);   /* also removes it from the epoll set */
}

static void accept_clients(int epfd, int listener)
{
    int sock;

    while ((sock = accept4(listener, NULL, NULL,
                           SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        if (track_client(epfd, sock) < 0) {
            close(sock);
        }
    }
}

static int listen_on(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };

    if (strlen(path) >= sizeof(addr.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(addr.sun_path, path);
    unlink(path);
    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (sock < 0 || bind(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(sock, SOMAXCONN) < 0) {
        return -1;
    }
    return sock;
}

static int serve_listening(const char *path)
{
    int listener = listen_on(path);
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = listener };

    if (listener < 0 || epfd < 0 ||
        epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &ev) < 0) {
        perror("ipc-floor-server: listen");
        return 1;
    }
    for (;;) {
        struct epoll_event events[64];
        int n = epoll_wait(epfd, events, 64, -1);
        for (int i = 0; i < n; i++) {
            int sock = events[i].data.fd;
            if (sock == listener) {
                accept_clients(epfd, listener);
            } else if (serve_readable(sock, &partials[sock]) < 0) {
                drop_client(sock);
            }
        }
        if (n < 0 && errno != EINTR) {
            perror("ipc-floor-server: epoll_wait");
            return 1;
        }
    }
}

int main(int argc, char **argv)
{
    /* A client that goes away must not kill the server with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    if (argc == 5 && strcmp(argv[1], "--checked") == 0) {
        audit_fd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (audit_fd < 0) {
            perror(argv[2]);
            return 1;
        }
        argc -= 2;
        argv += 2;
    }
    if (argc == 3 && strcmp(argv[1], "--fd") == 0) {
        return serve_one_fd(atoi(argv[2]));
    }
    if (argc == 3 && strcmp(argv[1], "--listen") == 0) {
        return serve_listening(argv[2]);
    }
    fprintf(stderr, "usage: ipc-floor-server [--checked AUDIT] --fd N | --listen PATH\n");
    return 2;
}
