/* The two halves of a blocking request that you write in step 1, in
 * step1_serial/request_io.c: reading the head, and sending the response.
 *
 * common/blocking_connection.c calls them for every connection. Step 2 links
 * the reference versions, solutions/step1_serial/request_io.c, so that it
 * never needs your step 1. */
#ifndef COMMON_REQUEST_IO_H
#define COMMON_REQUEST_IO_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"
#include "response.h"

/* How reading a head ended. */
enum head_status {
    HEAD_COMPLETE,  /* a valid head: *request is filled in */
    HEAD_INVALID,   /* the parser refused it: request->error_status says what to answer */
    HEAD_EMPTY,     /* the client closed without sending a byte */
    HEAD_TRUNCATED, /* the client closed in the middle of a head */
    HEAD_SILENT,    /* not a byte within the idle time: dropped quietly */
    HEAD_TIMED_OUT, /* part of a head came, but not the rest, within the idle time */
    HEAD_STOPPED,   /* shutdown was requested while we waited */
    HEAD_BROKEN,    /* the connection failed (reset, ...) */
};

/* Decides the answer to a head read with this status. keep_alive: whether
 * a complete request leaves the connection open (steps 1 and 2: never; step
 * 5 decides by RFC 9112 section 9.3). Returns false when there is nobody to
 * answer: the client sent nothing, went away, or we are shutting down. */
bool choose_response_to_head(enum head_status status, const struct http_request *request,
                             bool keep_alive, struct response *response);

/* Where a head is collected. The whole buffer is HTTP_HEAD_LIMIT bytes: a
 * head that does not fit is refused by the parser (414 or 431). */
struct head_buffer {
    char bytes[HTTP_HEAD_LIMIT];
    size_t length;      /* bytes received so far */
    size_t head_length; /* of them, the complete head (0 until complete) */
};

/* Reads from fd until the bytes received hold a complete head, however many
 * reads that takes, within HTTP_HEAD_LIMIT bytes and idle_ms milliseconds,
 * and parses it into *request. Bytes that arrive after the head (a body, a
 * pipelined request) stay unanswered: steps 1 and 2 serve one request per
 * connection. (NOTES.md section 1.4.) */
enum head_status read_request_head(int fd, struct head_buffer *buffer, int idle_ms,
                                   struct http_request *request);

/* Sends the whole response on fd, however many writes that takes. Gives up,
 * returning false, when the client is gone or accepts no byte for idle_ms
 * milliseconds. (NOTES.md section 1.5.) */
bool send_response(int fd, const struct response *response, int idle_ms);

#endif
