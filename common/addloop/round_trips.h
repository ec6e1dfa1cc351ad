/* Many round trips against the echo process, summarised. One round trip is
 * the learner's time_one_round_trip() (step4_addloop/roundtrip.c). */
#ifndef COMMON_ADDLOOP_ROUND_TRIPS_H
#define COMMON_ADDLOOP_ROUND_TRIPS_H

#include <stdbool.h>
#include <stdint.h>

struct round_trip_figures {
    bool measured;
    unsigned samples;
    uint64_t median_ns;
    uint64_t p99_ns;
    int echo_cpu; /* the CPU each process was pinned to; -1: not pinned */
    int timer_cpu;
};

/* Starts an echo process, connects to it over 127.0.0.1, and times `samples`
 * round trips after a few untimed ones. With two CPUs or more the two
 * processes are pinned to different CPUs, unless same_cpu asks for one.
 * False (with messages on stderr) if the round trips could not be timed. */
bool measure_round_trips(unsigned samples, bool same_cpu, struct round_trip_figures *figures);

#endif
