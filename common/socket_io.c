#include "socket_io.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "shutdown.h"

/* How long a graceful close may wait for the client, and how much it reads. */
enum { DRAIN_MS = 500, DRAIN_LIMIT = 64 * 1024 };

static int wait_for(int fd, short events, int timeout_ms)
{
    struct pollfd entry = {.fd = fd, .events = events};
    int ready = poll(&entry, 1, timeout_ms);

    if (ready < 0 && errno == EINTR)
        return 0;
    if (ready < 0) {
        log_error("poll: %s", strerror(errno));
        return -1;
    }
    return ready;
}

int wait_readable(int fd, int timeout_ms)
{
    return wait_for(fd, POLLIN, timeout_ms);
}

int wait_writable(int fd, int timeout_ms)
{
    int64_t deadline = monotonic_ms() + timeout_ms;

    /* A signal does not cut this wait short: a response under way is
     * finished even during a shutdown. Only a client that takes no byte
     * for timeout_ms is given up on. */
    for (;;) {
        int ready = wait_for(fd, POLLOUT, timeout_ms);
        if (ready != 0)
            return ready;
        timeout_ms = (int)(deadline - monotonic_ms());
        if (timeout_ms <= 0)
            return 0;
    }
}

enum input_wait wait_for_input(int fd, int64_t deadline_ms)
{
    for (;;) {
        int ready = wait_readable(fd, 0);
        if (ready != 0)
            return ready > 0 ? INPUT_READY : INPUT_FAILED;
        if (shutdown_requested())
            return INPUT_STOPPED;
        int64_t left = deadline_ms - monotonic_ms();
        if (left <= 0)
            return INPUT_TIMED_OUT;
        /* A signal cuts the wait short (0): go round, and look at the flag. */
        ready = wait_readable(fd, left < STOP_CHECK_INTERVAL_MS ? (int)left : STOP_CHECK_INTERVAL_MS);
        if (ready != 0)
            return ready > 0 ? INPUT_READY : INPUT_FAILED;
    }
}

bool unread_input_waiting(int fd)
{
    char byte;

    /* MSG_PEEK leaves the byte for whoever reads next; MSG_DONTWAIT: now or never. */
    return recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

void close_gracefully(int fd, bool linger)
{
    char discard[4096];
    int64_t deadline = monotonic_ms() + DRAIN_MS;
    size_t drained = 0;

    /* ENOTCONN: the client is already gone; nothing left to protect. */
    if (linger && shutdown(fd, SHUT_WR) == 0) {
        while (drained < DRAIN_LIMIT) {
            int64_t left = deadline - monotonic_ms();
            if (left <= 0 || wait_readable(fd, (int)left) <= 0)
                break;
            ssize_t got = recv(fd, discard, sizeof discard, MSG_DONTWAIT);
            if (got <= 0 && !(got < 0 && (errno == EAGAIN || errno == EINTR)))
                break; /* EOF: the client has read our response and closed */
            if (got > 0)
                drained += (size_t)got;
        }
    }
    close(fd);
}
