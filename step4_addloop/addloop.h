/* The article's measurement: a long chain of dependent additions, timed with
 * the monotonic clock, and a barrier that keeps an optimising compiler from
 * replacing the chain by its answer. */
#ifndef STEP4_ADDLOOP_H
#define STEP4_ADDLOOP_H

#include <stdint.h>

/* The article times 1 000 000 additions. */
enum { ARTICLE_ADDITIONS = 1000000 };

struct addition_timing {
    uint64_t elapsed_ns; /* from just before the first addition to just after the last */
    uint64_t checksum;   /* 0 + 1 + ... + (n - 1): proof that every addition happened */
};

/* Nanoseconds on CLOCK_MONOTONIC, which never jumps when the wall clock is
 * set. Only differences between two readings mean anything. If the clock
 * cannot be read, says why on stderr and exits: a timing made without a
 * clock would be a lie. */
uint64_t read_monotonic_clock_ns(void);

/* Adds 0, 1, ..., n - 1 into one sum and times it. */
struct addition_timing measure_additions(uint64_t n);

#endif
