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
    /* TODO: write read_request_head(). NOTES.md section 1.4 "Reading the request head" explains it. */
    exercise_unwritten("read_request_head", "1.4", "Reading the request head");
    (void)fd;
    (void)buffer;
    (void)idle_ms;
    (void)request;
    return HEAD_EMPTY;
}

bool send_response(int fd, const struct response *response, int idle_ms)
{
    /* TODO: write send_response(). NOTES.md section 1.5 "Sending the whole response" explains it. */
    exercise_unwritten("send_response", "1.5", "Sending the whole response");
    (void)fd;
    (void)response;
    (void)idle_ms;
    return false;
}
