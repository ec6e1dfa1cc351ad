#include "cycle.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "stats.h"

enum {
    ADDS_PER_BLOCK = 1000, /* must match the .rept count below */
    BLOCKS_PER_TIMING = 4000,
    TIMINGS = 9,
};

/* One block is 1000 copies of the same instruction, written out by the
 * assembler (.rept), each adding 1 to the same register. The loop around the
 * blocks costs a few instructions per thousand adds; they do not depend on
 * the chain, so the CPU runs them alongside it. Returns the final value. */
static uint64_t run_add_chain(uint64_t blocks)
{
    uint64_t value = 0;

    for (uint64_t block = 0; block < blocks; block++)
        __asm__ __volatile__(".rept 1000\n\taddq $1, %0\n\t.endr" : "+r"(value));
    return value;
}

/* Timed with the given clock, not the learner's: the yardstick must hold
 * even while read_monotonic_clock_ns() is still being written. */
static uint64_t time_add_chain(uint64_t blocks)
{
    int64_t start_ns = monotonic_ns();
    uint64_t value = run_add_chain(blocks);
    int64_t stop_ns = monotonic_ns();

    if (value != blocks * ADDS_PER_BLOCK) {
        /* The count in the assembly and ADDS_PER_BLOCK disagree: a bug here. */
        fprintf(stderr, "add chain: expected %llu adds, counted %llu\n",
                (unsigned long long)(blocks * ADDS_PER_BLOCK), (unsigned long long)value);
        exit(1);
    }
    return (uint64_t)(stop_ns - start_ns);
}

double measure_ns_per_cycle(void)
{
    uint64_t timings[TIMINGS];

    time_add_chain(BLOCKS_PER_TIMING); /* wakes the core up to full speed */
    for (int i = 0; i < TIMINGS; i++)
        timings[i] = time_add_chain(BLOCKS_PER_TIMING);
    struct summary summary = summarise(timings, TIMINGS);
    return (double)summary.median / ((double)BLOCKS_PER_TIMING * ADDS_PER_BLOCK);
}
