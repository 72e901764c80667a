/*
 * bench-client: the load side of the open-hook benchmarks.
 *
 *   bench-client direct  --path P [--warmup S] [--seconds S]
 *       open()+close() of P in this process: the floor without brokering.
 *   bench-client rtt --fd N | --socket SOCK [--clients C] --path P
 *                    [--warmup S] [--seconds S]
 *       Round trips to a server: ask for P, receive the fd, close it.  With
 *       --fd, one client on an inherited connected socket; with --socket,
 *       C connections, each keeping one request in flight.
 *   bench-client idle --socket SOCK --clients C --path P --pid PID
 *       Connects C clients, each opens P once and then idles; prints the
 *       server's (PID) resident memory before and after.
 *
 * Each prints one JSON object on stdout.  Requests started during the
 * warm-up are not counted; throughput is requests started in the window
 * divided by its length.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "latency.h"
#include "open_hook_wire.h"

/* What QEMU asks for when it opens an image read-only. */
#define REQUEST_FLAGS (O_RDONLY | O_CLOEXEC)

struct options {
    const char *mode;
    const char *path;
    const char *socket_path;
    int fd;
    int clients;
    long pid;
    double warmup;
    double seconds;
};

/* The measurement window, in monotonic ns. */
struct window {
    uint64_t start;
    uint64_t end;
};

static struct window window_from_now(const struct options *o)
{
    uint64_t start = now_ns() + (uint64_t)(o->warmup * 1e9);

    return (struct window){ start, start + (uint64_t)(o->seconds * 1e9) };
}

static bool in_window(const struct window *w, uint64_t t)
{
    return t >= w->start && t < w->end;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static int connect_to(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (sock < 0 || strlen(path) >= sizeof(addr.sun_path)) {
        die("bench-client: socket");
    }
    strcpy(addr.sun_path, path);
    if (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        die("bench-client: connect");
    }
    return sock;
}

/* A prepared request: every round trip sends the same bytes. */
struct request {
    uint8_t bytes[OPEN_HOOK_REQUEST_MAX];
    size_t size;
};

static void send_request(int sock, const struct request *req)
{
    if (send(sock, req->bytes, req->size, MSG_NOSIGNAL) != (ssize_t)req->size) {
        die("bench-client: send");
    }
}

/*
 * Reads one reply and closes the fd it carried.  Returns false when the
 * server refused the open; a broken connection ends the run.
 */
static bool finish_request(int sock)
{
    int fd;
    int32_t result = recv_open_reply(sock, &fd);

    if (fd >= 0) {
        close(fd);
    }
    if (result == -EPROTO || result == -ECONNRESET) {
        fprintf(stderr, "bench-client: server broke the connection\n");
        exit(1);
    }
    return result == 0;
}

static void count_request(struct tally *t, bool ok)
{
    t->requests++;
    t->refused += !ok;
}

static bool round_trip(int sock, const struct request *req)
{
    send_request(sock, req);
    return finish_request(sock);
}

static bool open_close(const char *path)
{
    int fd = open(path, REQUEST_FLAGS);

    if (fd < 0) {
        return false;
    }
    close(fd);
    return true;
}

/* Runs one operation back to back through the warm-up and the window. */
static int run_serial(const struct options *o, int sock,
                      const struct request *req)
{
    struct window w = window_from_now(o);
    struct latencies lat = { 0 };
    struct tally tally = { 0 };
    uint64_t t0;

    while ((t0 = now_ns()) < w.end) {
        bool ok = sock >= 0 ? round_trip(sock, req) : open_close(o->path);
        uint64_t t1 = now_ns();
        count_request(&tally, ok);
        if (in_window(&w, t0) && latencies_add(&lat, t1 - t0) < 0) {
            die("bench-client: samples");
        }
    }
    latencies_report(stdout, &lat, o->seconds, &tally);
    latencies_free(&lat);
    return 0;
}

/* Many connections driven by one epoll loop, one request in flight each. */
struct fleet {
    int epfd;
    int count;
    int *socks;
    uint64_t *sent_at;
};

static void fleet_connect(struct fleet *f, const struct options *o)
{
    f->count = o->clients;
    f->socks = calloc((size_t)f->count, sizeof(*f->socks));
    f->sent_at = calloc((size_t)f->count, sizeof(*f->sent_at));
    f->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!f->socks || !f->sent_at || f->epfd < 0) {
        die("bench-client: fleet");
    }
    for (int i = 0; i < f->count; i++) {
        f->socks[i] = connect_to(o->socket_path);
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
        if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->socks[i], &ev) < 0) {
            die("bench-client: epoll_ctl");
        }
    }
}

static int run_fleet(const struct options *o, const struct request *req)
{
    struct fleet f;
    struct latencies lat = { 0 };
    struct tally tally = { 0 };

    fleet_connect(&f, o);
    struct window w = window_from_now(o);
    for (int i = 0; i < f.count; i++) {
        f.sent_at[i] = now_ns();
        send_request(f.socks[i], req);
    }
    for (int in_flight = f.count; in_flight > 0;) {
        struct epoll_event events[256];
        int n = epoll_wait(f.epfd, events, 256, -1);
        if (n < 0 && errno != EINTR) {
            die("bench-client: epoll_wait");
        }
        for (int k = 0; k < n; k++) {
            int i = (int)events[k].data.u32;
            count_request(&tally, finish_request(f.socks[i]));
            uint64_t t = now_ns();
            if (in_window(&w, f.sent_at[i]) &&
                latencies_add(&lat, t - f.sent_at[i]) < 0) {
                die("bench-client: samples");
            }
            if (t >= w.end) {
                in_flight--;
                continue;
            }
            f.sent_at[i] = t;
            send_request(f.socks[i], req);
        }
    }
    latencies_report(stdout, &lat, o->seconds, &tally);
    latencies_free(&lat);
    return 0;
}

/* VmRSS of process PID in KiB, from /proc/PID/status. */
static long resident_kib(long pid)
{
    char path[64], line[256];
    long kib = -1;

    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) {
        die("bench-client: /proc/PID/status");
    }
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) {
            break;
        }
    }
    fclose(f);
    return kib;
}

static int run_idle(const struct options *o, const struct request *req)
{
    int *socks = calloc((size_t)o->clients, sizeof(*socks));
    unsigned long errors = 0;

    if (!socks) {
        die("bench-client: idle");
    }
    long before = resident_kib(o->pid);
    /* Each client opens once, as QEMU does with its images, then idles. */
    for (int i = 0; i < o->clients; i++) {
        socks[i] = connect_to(o->socket_path);
        errors += !round_trip(socks[i], req);
    }
    long after = resident_kib(o->pid);
    printf("{\"clients\": %d, \"rss_before_kib\": %ld, \"rss_after_kib\": %ld, "
           "\"bytes_per_client\": %.1f, \"errors\": %lu}\n",
           o->clients, before, after,
           (double)(after - before) * 1024.0 / o->clients, errors);
    for (int i = 0; i < o->clients; i++) {
        close(socks[i]);
    }
    free(socks);
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench-client direct --path P [--warmup S] [--seconds S]\n"
            "       bench-client rtt (--fd N | --socket SOCK [--clients C])"
            " --path P [--warmup S] [--seconds S]\n"
            "       bench-client idle --socket SOCK --clients C --path P"
            " --pid PID\n");
    exit(2);
}

static void parse_option(struct options *o, const char *key, const char *val)
{
    if (strcmp(key, "--path") == 0) {
        o->path = val;
    } else if (strcmp(key, "--socket") == 0) {
        o->socket_path = val;
    } else if (strcmp(key, "--fd") == 0) {
        o->fd = atoi(val);
    } else if (strcmp(key, "--clients") == 0) {
        o->clients = atoi(val);
    } else if (strcmp(key, "--pid") == 0) {
        o->pid = atol(val);
    } else if (strcmp(key, "--warmup") == 0) {
        o->warmup = atof(val);
    } else if (strcmp(key, "--seconds") == 0) {
        o->seconds = atof(val);
    } else {
        usage();
    }
}

static struct options parse_options(int argc, char **argv)
{
    struct options o = {
        .fd = -1, .clients = 1, .pid = -1, .warmup = 0.1, .seconds = 1.0,
    };

    if (argc < 2 || argc % 2 != 0) {
        usage();
    }
    o.mode = argv[1];
    for (int i = 2; i < argc; i += 2) {
        parse_option(&o, argv[i], argv[i + 1]);
    }
    if (!o.path || o.clients < 1 || o.seconds <= 0 || o.warmup < 0) {
        usage();
    }
    return o;
}

/* 256 busy or 1,000 idle clients need more descriptors than the default. */
static void raise_fd_limit(void)
{
    struct rlimit lim;

    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
}

int main(int argc, char **argv)
{
    struct options o = parse_options(argc, argv);
    struct request req;
    ssize_t size = encode_open_request(req.bytes, o.path, REQUEST_FLAGS, 0);

    if (size < 0) {
        usage();
    }
    req.size = (size_t)size;
    raise_fd_limit();
    if (strcmp(o.mode, "direct") == 0) {
        return run_serial(&o, -1, &req);
    }
    if (strcmp(o.mode, "rtt") == 0 && o.fd >= 0) {
        return run_serial(&o, o.fd, &req);
    }
    if (strcmp(o.mode, "rtt") == 0 && o.socket_path && o.clients == 1) {
        return run_serial(&o, connect_to(o.socket_path), &req);
    }
    if (strcmp(o.mode, "rtt") == 0 && o.socket_path) {
        return run_fleet(&o, &req);
    }
    if (strcmp(o.mode, "idle") == 0 && o.socket_path && o.pid > 0) {
        return run_idle(&o, &req);
    }
    usage();
}
