/* A stateless parser for the head of an HTTP/1.x request (RFC 9112).
 *
 * Like picohttpparser, it owns no buffer and touches no socket: give it the
 * bytes received so far, and it answers with the length of the complete
 * head, or "partial" (read more), or "error" (with the status to answer).
 * Blocking and non-blocking servers can therefore share it. */
#ifndef COMMON_HTTP_H
#define COMMON_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The most bytes a request head may have, request line included. */
enum { HTTP_HEAD_LIMIT = 8192 };

/* parse_request_head() results other than a head length. */
enum { PARSE_ERROR = -1, PARSE_PARTIAL = -2 };

enum http_method {
    METHOD_GET,
    METHOD_HEAD,
    METHOD_NOT_ALLOWED, /* a method RFC 9110 defines, which this server does not serve */
    METHOD_UNKNOWN,
};

struct text_span {
    const char *start; /* points into the caller's buffer */
    size_t length;
};

struct http_request {
    enum http_method method;
    struct text_span method_name;
    struct text_span target;
    struct text_span request_line;
    int version_minor; /* 0 or 1: HTTP/1.2 and later are answered as 1.1 */
    int host_count;
    bool connection_close;
    bool connection_keep_alive;
    bool has_content_length;
    uint64_t content_length; /* saturates at UINT64_MAX */
    bool has_transfer_encoding;

    /* Set when parse_request_head() returns PARSE_ERROR. */
    int error_status;        /* 400, 414, 431 or 505 */
    const char *error_cause; /* a short phrase for the response body */
};

/* Parses buffer[0..length). Returns the length of the head (blank line
 * included) when it is complete and valid; PARSE_PARTIAL when more bytes are
 * needed; PARSE_ERROR when the head is invalid or over HTTP_HEAD_LIMIT, with
 * request->error_status and request->error_cause set. */
ssize_t parse_request_head(const char *buffer, size_t length, struct http_request *request);

/* Whether the client asked for the connection to stay open after this
 * request, by the rules of RFC 9112 section 9.3. */
bool request_wants_keep_alive(const struct http_request *request);

/* Whether a request body follows the head (RFC 9112 section 6.3). */
bool request_has_body(const struct http_request *request);

#endif
