/* Small blocking helpers around a connected socket. */
#ifndef COMMON_SOCKET_IO_H
#define COMMON_SOCKET_IO_H

#include <stdbool.h>

/* Waits until fd is readable (or writable) for at most timeout_ms.
 * Returns 1 when ready, 0 on timeout or signal, -1 on error. */
int wait_readable(int fd, int timeout_ms);
int wait_writable(int fd, int timeout_ms);

/* Closes a connection without losing the response just written.
 * Closing a socket that still has unread bytes makes the kernel send a
 * reset, which can destroy the response in flight. So when the client may
 * still be sending (a refused body, a head we stopped reading, pipelined
 * bytes), `linger` half-closes our side first (the client reads our FIN
 * after the response), then reads and discards what still comes, until the
 * client closes or half a second passes. Otherwise it simply closes. */
void close_gracefully(int fd, bool linger);

#endif
