#include "head_reader.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"
#include "log.h"
#include "shutdown.h"
#include "socket_io.h"

/* Waits for the next bytes in short slices, so that a stop request is
 * noticed at once. Bytes already there are always taken: a request that has
 * fully arrived is answered even during shutdown. Returns false, with the
 * reason, when none will come. */
static bool wait_for_bytes(int fd, int64_t deadline, enum head_status *why_not)
{
    for (;;) {
        int now = wait_readable(fd, 0);
        if (now != 0) {
            if (now < 0)
                *why_not = HEAD_BROKEN;
            return now > 0;
        }
        if (shutdown_requested()) {
            *why_not = HEAD_STOPPED;
            return false;
        }
        int64_t left = deadline - monotonic_ms();
        if (left <= 0) {
            *why_not = HEAD_TIMED_OUT;
            return false;
        }
        int slice = left < STOP_CHECK_INTERVAL_MS ? (int)left : STOP_CHECK_INTERVAL_MS;
        int ready = wait_readable(fd, slice);
        if (ready > 0)
            return true;
        if (ready < 0) {
            *why_not = HEAD_BROKEN;
            return false;
        }
    }
}

/* Appends what one recv() brings. Returns false, with the reason, at the
 * end of the connection. */
static bool receive_more(int fd, struct head_buffer *buffer, enum head_status *why_not)
{
    ssize_t got = recv(fd, buffer->bytes + buffer->length, sizeof buffer->bytes - buffer->length,
                       MSG_DONTWAIT);

    if (got > 0) {
        buffer->length += (size_t)got;
        return true;
    }
    if (got < 0 && (errno == EAGAIN || errno == EINTR))
        return true; /* nothing after all: wait again */
    if (got == 0) {
        *why_not = buffer->length == 0 ? HEAD_EMPTY : HEAD_TRUNCATED;
        return false;
    }
    /* A reset before any byte is how some clients say "never mind". */
    if (errno != ECONNRESET || buffer->length > 0)
        log_error("recv: %s", strerror(errno));
    *why_not = HEAD_BROKEN;
    return false;
}

enum head_status read_request_head(int fd, struct head_buffer *buffer, int idle_ms,
                                   struct http_request *request)
{
    int64_t deadline = monotonic_ms() + idle_ms;
    enum head_status why_not;

    buffer->length = buffer->head_length = 0;
    for (;;) {
        ssize_t parsed = parse_request_head(buffer->bytes, buffer->length, request);
        if (parsed == PARSE_ERROR)
            return HEAD_INVALID;
        if (parsed > 0) {
            buffer->head_length = (size_t)parsed;
            return HEAD_COMPLETE;
        }
        if (!wait_for_bytes(fd, deadline, &why_not) || !receive_more(fd, buffer, &why_not))
            return why_not == HEAD_TIMED_OUT && buffer->length == 0 ? HEAD_SILENT : why_not;
    }
}
