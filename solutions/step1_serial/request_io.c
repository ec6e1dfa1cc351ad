/* Step 1: one request with blocking calls (see common/request_io.h and
 * NOTES.md, sections 1.4 and 1.5).
 *
 * TCP carries a stream of bytes, not messages: a request head may arrive in
 * one piece or in twenty, and a response may leave in one send() or in many.
 * Both functions loop until the job is whole. */
#include "request_io.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"
#include "exercise.h"
#include "http.h"
#include "log.h"
#include "response.h"
#include "socket_io.h"

enum head_status read_request_head(int fd, struct head_buffer *buffer, int idle_ms,
                                   struct http_request *request)
{
    /* EXERCISE read_request_head: NOTES.md section 1.4 "Reading the request head"
     * stub:
     *     (void)fd;
     *     (void)buffer;
     *     (void)idle_ms;
     *     (void)request;
     *     return HEAD_EMPTY;
     */
    int64_t deadline = monotonic_ms() + idle_ms;

    buffer->length = buffer->head_length = 0;
    for (;;) {
        /* Parse everything received so far: only the blank line ends a head
         * (RFC 9112 section 2.1), whichever read brought it. */
        ssize_t parsed = parse_request_head(buffer->bytes, buffer->length, request);
        if (parsed == PARSE_ERROR)
            return HEAD_INVALID;
        if (parsed > 0) {
            buffer->head_length = (size_t)parsed;
            return HEAD_COMPLETE;
        }
        switch (wait_for_input(fd, deadline)) {
        case INPUT_TIMED_OUT:
            return buffer->length == 0 ? HEAD_SILENT : HEAD_TIMED_OUT;
        case INPUT_STOPPED:
            return HEAD_STOPPED;
        case INPUT_FAILED:
            return HEAD_BROKEN;
        case INPUT_READY:
            break;
        }
        /* Append after what came before, and never past the buffer's end:
         * the parser refuses a head that fills it (414 or 431). */
        ssize_t got = recv(fd, buffer->bytes + buffer->length,
                           sizeof buffer->bytes - buffer->length, MSG_DONTWAIT);
        if (got > 0) {
            buffer->length += (size_t)got;
        } else if (got == 0) {
            return buffer->length == 0 ? HEAD_EMPTY : HEAD_TRUNCATED;
        } else if (errno != EAGAIN && errno != EINTR) {
            /* A reset before any byte is how some clients say "never mind". */
            if (errno != ECONNRESET || buffer->length > 0)
                log_error("recv: %s", strerror(errno));
            return HEAD_BROKEN;
        }
    }
    /* END EXERCISE */
}

bool send_response(int fd, const struct response *response, int idle_ms)
{
    /* EXERCISE send_response: NOTES.md section 1.5 "Sending the whole response"
     * stub:
     *     (void)fd;
     *     (void)response;
     *     (void)idle_ms;
     *     return false;
     */
    struct outgoing outgoing;
    const char *data;
    size_t length;

    outgoing_start(&outgoing, response);
    while ((length = outgoing_next(&outgoing, &data)) > 0) {
        /* MSG_NOSIGNAL: a vanished client gives EPIPE, not a deadly SIGPIPE.
         * MSG_DONTWAIT: a full socket returns at once, so that the wait
         * below can give up on a client that stopped reading. */
        ssize_t written = send(fd, data, length, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (written > 0) {
            outgoing_advance(&outgoing, (size_t)written);
        } else if (written < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_writable(fd, idle_ms) <= 0)
                return false;
        } else {
            if (errno != EPIPE && errno != ECONNRESET)
                log_error("send: %s", strerror(errno));
            return false;
        }
    }
    return true;
    /* END EXERCISE */
}
