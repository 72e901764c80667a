/* Latency samples of one measurement window and their summary. */
#ifndef BENCH_LATENCY_H
#define BENCH_LATENCY_H

#include <stdint.h>
#include <stdio.h>

struct latencies {
    uint64_t *ns;
    size_t count;
    size_t capacity;
};

/* Monotonic clock in nanoseconds. */
uint64_t now_ns(void);

/* Records one sample; returns -1 when out of memory. */
int latencies_add(struct latencies *l, uint64_t ns);

/* Sorts the samples and returns the Q-quantile (0 <= Q <= 1) in ns. */
uint64_t latencies_quantile(struct latencies *l, double q);

/* Every request of a run, warm-up included: for CPU cost per request. */
struct tally {
    unsigned long requests;
    unsigned long refused;
};

/*
 * Prints one JSON object: ops, seconds, ops_per_s, p50_us, p99_us (of the
 * measurement window, SECONDS long), requests and errors (of the whole run).
 */
void latencies_report(FILE *out, struct latencies *l, double seconds,
                      const struct tally *t);

void latencies_free(struct latencies *l);

#endif
