/* Reading one request head from a blocking socket (steps 1 and 2). */
#ifndef COMMON_HEAD_READER_H
#define COMMON_HEAD_READER_H

#include <stddef.h>

#include "http.h"

enum head_status {
    HEAD_COMPLETE,      /* a valid head: request is filled in */
    HEAD_INVALID,       /* request->error_status says what to answer */
    HEAD_EMPTY,         /* the client closed without sending a byte */
    HEAD_TRUNCATED,     /* the client closed in the middle of a head */
    HEAD_SILENT,        /* not a byte within the idle time: dropped quietly */
    HEAD_TIMED_OUT,     /* part of a head, but not all of it, in the idle time */
    HEAD_STOPPED,       /* shutdown was requested while we waited */
    HEAD_BROKEN,        /* the connection failed (reset, ...) */
};

struct head_buffer {
    char bytes[HTTP_HEAD_LIMIT];
    size_t length;      /* bytes received */
    size_t head_length; /* of them, the complete head (0 until complete) */
};

/* Reads until the head is complete, however many reads it takes, within
 * HTTP_HEAD_LIMIT bytes and idle_ms milliseconds. Bytes that arrive after the
 * head (a body, a pipelined request) are never answered: steps 1 and 2 serve
 * one request per connection, and close_gracefully() discards the rest. */
enum head_status read_request_head(int fd, struct head_buffer *buffer, int idle_ms,
                                   struct http_request *request);

#endif
