/* Monotonic time, for timing requests and deadlines.
 *
 * CLOCK_MONOTONIC never jumps when the wall clock is set, so a duration
 * measured with it is always honest. */
#ifndef COMMON_CLOCK_H
#define COMMON_CLOCK_H

#include <stdint.h>

/* Nanoseconds since an arbitrary fixed point (boot, on Linux). */
int64_t monotonic_ns(void);

/* The same in milliseconds. */
int64_t monotonic_ms(void);

/* Sleeps until monotonic_ns() reaches deadline_ns. A signal does not cut
 * the sleep short: the heavy work of a request always takes its full time. */
void sleep_until_ns(int64_t deadline_ns);

/* Sleeps for ms milliseconds (the same guarantee). */
void sleep_ms(int ms);

#endif
