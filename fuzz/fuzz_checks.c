/* The invariants of fuzz_checks.h. See fuzz/parse_head.c for what they mean. */
#include "fuzz_checks.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "response.h"

void fuzz_fail(const char *format, ...)
{
    va_list args;

    va_start(args, format);
    fprintf(stderr, "\n==fuzz== invariant broken: ");
    vfprintf(stderr, format, args);
    fprintf(stderr, "\n");
    va_end(args);
    abort();
}

static int is_documented_status(int status)
{
    return status == 400 || status == 414 || status == 431 || status == 505;
}

void check_verdict(const char *input, size_t size, ssize_t result,
                   const struct http_request *request)
{
    if (result == PARSE_PARTIAL) {
        /* A server's buffer holds HTTP_HEAD_LIMIT bytes: once it is full,
         * "read more" would read into no room (or for ever). */
        if (size >= HTTP_HEAD_LIMIT)
            fuzz_fail("PARSE_PARTIAL for %zu bytes, at or over the %d-byte limit", size,
                      HTTP_HEAD_LIMIT);
        return;
    }
    if (result == PARSE_ERROR) {
        if (!is_documented_status(request->error_status))
            fuzz_fail("PARSE_ERROR with status %d, not one of 400, 414, 431, 505",
                      request->error_status);
        if (request->error_cause == NULL || request->error_cause[0] == '\0')
            fuzz_fail("PARSE_ERROR (status %d) without a cause", request->error_status);
        if ((request->error_status == 414 || request->error_status == 431) &&
            size < HTTP_HEAD_LIMIT)
            fuzz_fail("status %d for %zu bytes, under the %d-byte limit", request->error_status,
                      size, HTTP_HEAD_LIMIT);
        return;
    }
    if (result <= 0 || (size_t)result > size || result > HTTP_HEAD_LIMIT)
        fuzz_fail("result %zd for %zu bytes: neither a verdict nor a length within the input "
                  "and the limit", result, size);
    if (input[result - 1] != '\n')
        fuzz_fail("a head of %zd bytes that does not end with its blank line's LF", result);
    if (request->error_status != 0 || request->error_cause != NULL)
        fuzz_fail("a complete head with an error status %d", request->error_status);
}

/* Whether span lies inside [head, head + length). */
static int inside(struct text_span span, const char *head, size_t length)
{
    return span.start >= head && span.start + span.length <= head + length;
}

static int is_token_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static void check_method(const struct http_request *request)
{
    struct text_span name = request->method_name;

    if (name.length == 0)
        fuzz_fail("an empty method in a complete head");
    for (size_t i = 0; i < name.length; i++)
        if (!is_token_char((unsigned char)name.start[i]))
            fuzz_fail("method byte %zu (0x%02x) is not a token character", i,
                      (unsigned char)name.start[i]);
    int is_get = name.length == 3 && memcmp(name.start, "GET", 3) == 0;
    int is_head = name.length == 4 && memcmp(name.start, "HEAD", 4) == 0;
    if (is_get != (request->method == METHOD_GET) || is_head != (request->method == METHOD_HEAD))
        fuzz_fail("method \"%.*s\" classified as %d", (int)name.length, name.start,
                  (int)request->method);
}

static void check_target(const struct http_request *request)
{
    struct text_span target = request->target;

    if (target.length == 0)
        fuzz_fail("an empty request target in a complete head");
    for (size_t i = 0; i < target.length; i++) {
        unsigned char c = (unsigned char)target.start[i];
        if (c <= 0x20 || c == 0x7f)
            fuzz_fail("target byte %zu is 0x%02x (whitespace or a control)", i, c);
    }
}

void check_complete_head(const char *head, size_t length, const struct http_request *request)
{
    if (!inside(request->method_name, head, length) || !inside(request->target, head, length) ||
        !inside(request->request_line, head, length))
        fuzz_fail("a field points outside the head of %zu bytes", length);
    if (request->request_line.start != request->method_name.start)
        fuzz_fail("the request line does not start with the method");
    check_method(request);
    check_target(request);
    if (request->version_minor != 0 && request->version_minor != 1)
        fuzz_fail("version_minor %d (documented: 0 or 1)", request->version_minor);
    if (request->version_minor == 1 && request->host_count != 1)
        fuzz_fail("an HTTP/1.1 head accepted with %d Host headers", request->host_count);
    if (request->host_count > 1)
        fuzz_fail("a head accepted with %d Host headers", request->host_count);
    if (request->has_transfer_encoding && request->has_content_length)
        fuzz_fail("a head accepted with both Transfer-Encoding and Content-Length");
}

static int same_span(struct text_span a, const char *base_a, struct text_span b,
                     const char *base_b)
{
    return a.length == b.length && a.start - base_a == b.start - base_b;
}

void check_same_head_alone(const char *head, size_t length, const struct http_request *request)
{
    char *alone = malloc(length);
    struct http_request again;

    if (alone == NULL)
        return;
    memcpy(alone, head, length);
    ssize_t result = parse_request_head(alone, length, &again);
    if (result != (ssize_t)length)
        fuzz_fail("a head of %zu bytes, parsed again from exactly its bytes, gives %zd (status "
                  "%d)", length, result, again.error_status);
    if (again.method != request->method || again.version_minor != request->version_minor ||
        again.host_count != request->host_count ||
        again.connection_close != request->connection_close ||
        again.connection_keep_alive != request->connection_keep_alive ||
        again.has_content_length != request->has_content_length ||
        again.content_length != request->content_length ||
        again.has_transfer_encoding != request->has_transfer_encoding ||
        !same_span(again.method_name, alone, request->method_name, head) ||
        !same_span(again.target, alone, request->target, head) ||
        !same_span(again.request_line, alone, request->request_line, head))
        fuzz_fail("a head of %zu bytes, parsed again from exactly its bytes, gives other "
                  "fields", length);
    free(alone);
}

/* Hands out every byte through the cursor, as a writer that sends all it is
 * given would; checks the total and touches both ends of every piece. */
static void drain(struct outgoing *outgoing)
{
    const char *data;
    size_t length;
    uint64_t handed = 0;
    volatile char touch;

    while ((length = outgoing_next(outgoing, &data)) > 0) {
        touch = data[0];
        touch = data[length - 1];
        (void)touch;
        handed += length;
        outgoing_advance(outgoing, length);
    }
    if (!outgoing_done(outgoing) || handed != outgoing->total_length)
        fuzz_fail("the cursor handed out %llu of %llu bytes", (unsigned long long)handed,
                  (unsigned long long)outgoing->total_length);
}

static void check_serialised(const struct response *response)
{
    struct outgoing outgoing;
    char status_line[32];

    outgoing_start(&outgoing, response);
    if (outgoing.head_length == 0 || outgoing.head_length >= sizeof outgoing.head)
        fuzz_fail("a response head of %zu bytes for a buffer of %zu", outgoing.head_length,
                  sizeof outgoing.head);
    snprintf(status_line, sizeof status_line, "HTTP/1.1 %d ", response->status);
    if (strncmp(outgoing.head, status_line, strlen(status_line)) != 0)
        fuzz_fail("a response that does not start with \"%s\"", status_line);
    /* The body follows the head, or (a short text) was copied in behind it. */
    uint64_t body = response->omit_body ? 0 : response->body_length;
    int inline_text = !response->omit_body && response->body_kind == BODY_TEXT &&
                      outgoing.total_length == outgoing.head_length &&
                      outgoing.head_length >= body &&
                      memcmp(outgoing.head + outgoing.head_length - body, response->text,
                             (size_t)body) == 0;
    if (!inline_text && outgoing.total_length != outgoing.head_length + body)
        fuzz_fail("total_length %llu is not head %zu + body %llu",
                  (unsigned long long)outgoing.total_length, outgoing.head_length,
                  (unsigned long long)body);
    drain(&outgoing);
}

void check_response_of(const struct http_request *request)
{
    struct response response;

    for (int keep_open = 0; keep_open <= 1; keep_open++) {
        response_for_request(request, keep_open, &response);
        if (response.status != 200 && response.status != 400 && response.status != 405 &&
            response.status != 413 && response.status != 501)
            fuzz_fail("status %d for a valid head", response.status);
        if (response.status != 200 && !response.close_connection)
            fuzz_fail("an error response (%d) that keeps the connection", response.status);
        if (response.body_kind == BODY_PATTERN && response.body_length > BYTES_ENDPOINT_MAX)
            fuzz_fail("/bytes/N answered with %llu bytes, over the limit",
                      (unsigned long long)response.body_length);
        check_serialised(&response);
    }
}

void check_error_response(const struct http_request *request)
{
    struct response response;

    response_for_error(request->error_status, request->error_cause, &response);
    if (response.status != request->error_status || !response.close_connection ||
        response.body_length == 0)
        fuzz_fail("the error response for %d: status %d, close %d, body %llu bytes",
                  request->error_status, response.status, response.close_connection,
                  (unsigned long long)response.body_length);
    check_serialised(&response);
}

int same_verdict(ssize_t a, const struct http_request *request_a, ssize_t b,
                 const struct http_request *request_b)
{
    if (a != b)
        return 0;
    if (a != PARSE_ERROR)
        return 1;
    return request_a->error_status == request_b->error_status &&
           strcmp(request_a->error_cause, request_b->error_cause) == 0;
}
