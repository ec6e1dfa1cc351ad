#include "addloop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exercise.h"

uint64_t read_monotonic_clock_ns(void)
{
    /* EXERCISE read_monotonic_clock_ns: NOTES.md section 4.2 "Reading the clock"
     * stub:
     *     return 0;
     */
    struct timespec now;

    if (clock_gettime(CLOCK_MONOTONIC, &now) != 0) {
        /* Cannot happen on Linux; a timing made without a clock would be a lie. */
        fprintf(stderr, "clock_gettime(CLOCK_MONOTONIC): %s\n", strerror(errno));
        exit(1);
    }
    /* 64 bits before multiplying: a day of seconds times 10^9 needs 47. */
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    /* END EXERCISE */
}

/* Always inlined, so that a caller's constant count reaches the loop: that
 * is the situation of the article's program, where the count is written in
 * the source and the compiler knows it. */
static inline __attribute__((always_inline)) struct addition_timing time_additions(uint64_t n)
{
    /* EXERCISE time_additions: NOTES.md section 4.3 "The timed loop"
     * stub:
     *     (void)n;
     *     return (struct addition_timing){.elapsed_ns = 0, .checksum = 0};
     */
    uint64_t sum = 0;
    uint64_t start_ns = read_monotonic_clock_ns();

    for (uint64_t i = 0; i < n; i++) {
        sum += i;
        /* The barrier (section 4.4): an assembly statement with no
         * instruction in it which, as far as the compiler knows, reads the
         * sum from a register and may leave another value there. The
         * compiler can no longer predict the sum, so it must do every
         * addition; the statement itself emits no code. */
        __asm__ __volatile__("" : "+r"(sum));
    }
    uint64_t stop_ns = read_monotonic_clock_ns();
    return (struct addition_timing){.elapsed_ns = stop_ns - start_ns, .checksum = sum};
    /* END EXERCISE */
}

struct addition_timing measure_additions(uint64_t n)
{
    /* The article's count, passed as a literal: the compiler then knows it,
     * as rustc knew the article's, and an unprotected loop is folded away.
     * Any other count comes from --n at run time. */
    if (n == ARTICLE_ADDITIONS)
        return time_additions(ARTICLE_ADDITIONS);
    return time_additions(n);
}
