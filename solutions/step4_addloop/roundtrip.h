/* A real wait to compare the additions with: one byte sent over loopback TCP
 * to another process, which sends it straight back. The echo process, the
 * connection and the repetitions are given (common/addloop/round_trips.h). */
#ifndef STEP4_ROUNDTRIP_H
#define STEP4_ROUNDTRIP_H

#include <stdbool.h>
#include <stdint.h>

/* Sends one byte on socket_fd, waits for the byte to come back, and stores
 * in *elapsed_ns how long that took, from before the write to after the
 * read. False, with a line on stderr saying why, if the write or the read
 * failed, or if the other side closed the connection. */
bool time_one_round_trip(int socket_fd, uint64_t *elapsed_ns);

#endif
