/* Small blocking helpers around a connected socket. */
#ifndef COMMON_SOCKET_IO_H
#define COMMON_SOCKET_IO_H

#include <stdbool.h>
#include <stdint.h>

/* Waits until fd is readable for at most timeout_ms. Returns 1 when ready,
 * 0 on timeout or when a signal cut the wait short, -1 on error. */
int wait_readable(int fd, int timeout_ms);

/* Waits until fd is writable for at most timeout_ms. Returns 1 when ready,
 * 0 on timeout, -1 on error. A signal does not cut it short (SIGTERM lets a
 * response under way finish). */
int wait_writable(int fd, int timeout_ms);

/* How waiting for a client's next bytes ended. */
enum input_wait {
    INPUT_READY,     /* a recv() will not block: bytes, or the end of the connection */
    INPUT_TIMED_OUT, /* nothing came before the deadline */
    INPUT_STOPPED,   /* shutdown was requested meanwhile */
    INPUT_FAILED,    /* poll() failed (already reported on stderr) */
};

/* Waits until fd is readable or monotonic_ms() reaches deadline_ms. It waits
 * in slices of at most STOP_CHECK_INTERVAL_MS and looks at the stop flag
 * between them, so that SIGTERM is noticed within 100 ms (NOTES.md 1.6).
 * Bytes that are already waiting are always READY, even during a shutdown:
 * a request that has fully arrived is still answered. */
enum input_wait wait_for_input(int fd, int64_t deadline_ms);

/* Closes a connection without losing the response just written.
 * Closing a socket that still has unread bytes makes the kernel send a
 * reset, which can destroy the response in flight. So when the client may
 * still be sending (a refused body, a head we stopped reading, pipelined
 * bytes), `linger` half-closes our side first (the client reads our FIN
 * after the response), then reads and discards what still comes, until the
 * client closes or half a second passes. Otherwise it simply closes. */
void close_gracefully(int fd, bool linger);

/* Whether bytes from the client wait unread in the socket: a pipelined
 * request that arrived while the server worked, say. A plain close would
 * then reset the connection under the response: such a close must linger. */
bool unread_input_waiting(int fd);

#endif
