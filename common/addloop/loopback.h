/* The TCP connection of the round trip, over 127.0.0.1, set up so that the
 * time of a one-byte exchange is the path's and nothing else's. Every
 * function reports its failure on stderr ("round trip: ...") and returns
 * -1 or false. */
#ifndef COMMON_ADDLOOP_LOOPBACK_H
#define COMMON_ADDLOOP_LOOPBACK_H

#include <stdbool.h>
#include <stdint.h>

/* A listener on a free port of 127.0.0.1 (stored in *port). */
int open_loopback_listener(uint16_t *port);

/* A connection to 127.0.0.1:port. */
int connect_to_loopback(uint16_t port);

/* The next connection on the listener, waiting at most timeout_ms. */
int accept_within(int listener_fd, int timeout_ms);

/* TCP_NODELAY: without it, Nagle's algorithm may hold a small write back to
 * merge it with the next one, and we would time that hold, not the path. */
bool send_small_writes_at_once(int fd);

/* SO_RCVTIMEO: a read that waits for a byte nobody will send fails after
 * `seconds` instead of hanging the program. */
bool give_up_reads_after(int fd, int seconds);

#endif
