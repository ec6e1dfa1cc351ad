/* A real wait to compare the additions with: one byte sent over loopback TCP
 * to another process, which sends it straight back. */
#ifndef STEP4_ROUNDTRIP_H
#define STEP4_ROUNDTRIP_H

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

/* Sends one byte on socket_fd, waits for the byte to come back, and stores
 * how long that took. False (with a message on stderr) if either failed. */
bool time_one_round_trip(int socket_fd, uint64_t *elapsed_ns);

/* Starts an echo process, connects to it over 127.0.0.1, and times `samples`
 * round trips after a few untimed ones. With two CPUs or more the two
 * processes are pinned to different CPUs, unless same_cpu asks for one. */
bool measure_round_trips(unsigned samples, bool same_cpu, struct round_trip_figures *figures);

#endif
