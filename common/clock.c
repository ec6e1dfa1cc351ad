#include "clock.h"

#include <errno.h>
#include <time.h>

int64_t monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now); /* cannot fail with a valid clock id */
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

int64_t monotonic_ms(void)
{
    return monotonic_ns() / 1000000;
}

void sleep_until_ns(int64_t deadline_ns)
{
    struct timespec deadline = {
        .tv_sec = deadline_ns / 1000000000,
        .tv_nsec = deadline_ns % 1000000000,
    };
    /* An absolute deadline makes resuming after EINTR trivial: just call again. */
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL) == EINTR) {
    }
}

void sleep_ms(int ms)
{
    sleep_until_ns(monotonic_ns() + (int64_t)ms * 1000000);
}
