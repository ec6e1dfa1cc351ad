/* Choosing and serialising a response.
 *
 * A response is described once (struct response), then sent through a
 * cursor (struct outgoing) that knows which bytes are still unsent, so that
 * a blocking writer and a non-blocking one share the same code. */
#ifndef COMMON_RESPONSE_H
#define COMMON_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

/* GET /bytes/N answers at most this many bytes. */
#define BYTES_ENDPOINT_MAX ((uint64_t)64 * 1024 * 1024)

enum body_kind {
    BODY_TEXT,    /* the short text in `text` */
    BODY_PATTERN, /* body_length bytes of "abc...z" repeated, for /bytes/N */
};

struct response {
    int status;
    bool close_connection; /* say "Connection: close", then close */
    bool echo_keep_alive;  /* say "Connection: keep-alive" (HTTP/1.0 keep-alive) */
    bool omit_body;        /* HEAD: same headers, no body */
    bool allow_get_head;   /* 405 needs "Allow: GET, HEAD" */
    enum body_kind body_kind;
    char text[160];
    uint64_t body_length;
};

/* The response to a valid request head. keep_open says whether this server
 * would keep the connection open afterwards (steps 1 and 2 never do). Errors
 * always close. */
void response_for_request(const struct http_request *request, bool keep_open,
                          struct response *response);

/* An error response: `cause` becomes the text body, after the status line. */
void response_for_error(int status, const char *cause, struct response *response);

/* Whether the response does the "heavy work" (the simulated delay): only
 * successful requests do; errors are answered at once. */
bool response_needs_heavy_work(const struct response *response);

/* The reason phrase of RFC 9110 section 15 for the statuses used here. */
const char *reason_phrase(int status);

/* A response being sent, and how far it got. */
struct outgoing {
    char head[512];
    size_t head_length;    /* of head[]: the head, and a short body behind it */
    const struct response *response;
    uint64_t total_length; /* head + body bytes on the wire */
    uint64_t sent;
};

/* Serialises the head (with the current Date) and rewinds the cursor. A
 * short text body is copied in behind the head, so that the first piece
 * outgoing_next() hands out is then the whole response. */
void outgoing_start(struct outgoing *outgoing, const struct response *response);

/* Points *data at the next unsent bytes and returns how many there are
 * (0 when everything was sent). */
size_t outgoing_next(const struct outgoing *outgoing, const char **data);

/* Records that `count` more bytes were written. */
void outgoing_advance(struct outgoing *outgoing, size_t count);

bool outgoing_done(const struct outgoing *outgoing);

#endif
