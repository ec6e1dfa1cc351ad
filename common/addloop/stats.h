/* Summaries of repeated measurements. On a shared machine a single timing
 * can be hit by an interrupt or another process, so every figure of step 4
 * is the median of several, with its spread beside it. */
#ifndef COMMON_ADDLOOP_STATS_H
#define COMMON_ADDLOOP_STATS_H

#include <stddef.h>
#include <stdint.h>

struct summary {
    uint64_t min;
    uint64_t median;
    uint64_t p99;
    uint64_t max;
};

/* Sorts values in place and summarises them (nearest-rank percentiles).
 * All zero when count is 0. */
struct summary summarise(uint64_t *values, size_t count);

#endif
