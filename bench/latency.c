#define _GNU_SOURCE
#include <stdlib.h>
#include <time.h>

#include "latency.h"

uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int latencies_add(struct latencies *l, uint64_t ns)
{
    if (l->count == l->capacity) {
        /* Doubling keeps the cost per sample constant inside the window. */
        size_t capacity = l->capacity ? l->capacity * 2 : 65536;
        uint64_t *grown = realloc(l->ns, capacity * sizeof(*grown));
        if (!grown) {
            return -1;
        }
        l->ns = grown;
        l->capacity = capacity;
    }
    l->ns[l->count++] = ns;
    return 0;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

uint64_t latencies_quantile(struct latencies *l, double q)
{
    if (l->count == 0) {
        return 0;
    }
    qsort(l->ns, l->count, sizeof(*l->ns), compare_u64);
    /* Nearest rank: the smallest sample with at least Q of them at or below. */
    size_t rank = (size_t)(q * (double)l->count + 0.999999);
    return l->ns[rank == 0 ? 0 : rank - 1];
}

void latencies_report(FILE *out, struct latencies *l, double seconds,
                      const struct tally *t)
{
    double p50 = (double)latencies_quantile(l, 0.50) / 1000.0;
    double p99 = (double)latencies_quantile(l, 0.99) / 1000.0;

    fprintf(out,
            "{\"ops\": %zu, \"seconds\": %.6f, \"ops_per_s\": %.1f, "
            "\"p50_us\": %.3f, \"p99_us\": %.3f, \"requests\": %lu, "
            "\"errors\": %lu}\n",
            l->count, seconds, seconds > 0 ? (double)l->count / seconds : 0.0,
            p50, p99, t->requests, t->refused);
}

void latencies_free(struct latencies *l)
{
    free(l->ns);
    *l = (struct latencies){ 0 };
}
