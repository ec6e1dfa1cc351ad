/* What the event-loop tests see of a server's loop from inside.
 *
 * Some mistakes of an event loop show in no timing: a loop that accepts one
 * client per round instead of every waiting one serves a burst just as
 * fast, and a loop that wakes a fraction of a millisecond before each
 * deadline and spins until it comes wastes too little CPU to measure. So the
 * test suites also build each server "spied": linked with tests/step3_spy.c
 * and -Wl,--wrap for the calls a loop makes (epoll_wait, epoll_pwait,
 * epoll_pwait2, accept, accept4). Each wrapper calls the real function and
 * counts, in a small file the test maps too (the LOOP_SPY_FILE environment
 * variable names it), so that the test reads the counts while the server
 * runs. Without the variable a spied server counts nothing and behaves as
 * the plain one. */
#ifndef TESTS_STEP3_SPY_H
#define TESTS_STEP3_SPY_H

#include <stdint.h>

#define LOOP_SPY_FILE_ENV "LOOP_SPY_FILE"

struct loop_counts {
    uint64_t waits;              /* epoll_wait, epoll_pwait and epoll_pwait2 calls */
    uint64_t empty_instant_waits;/* of which: a timeout of 0 that found no event */
    uint64_t endless_waits;      /* of which: a timeout of -1 (no deadline) */
    uint64_t accepts;            /* accept and accept4 calls */
    uint64_t rounds_with_accept; /* waits followed by at least one accept call */
    uint64_t waits_by_other_threads; /* waits made by a thread but the first to wait */
};

#endif
