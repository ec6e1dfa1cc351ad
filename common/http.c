#include "http.h"

#include <string.h>
#include <strings.h>

/* The result of looking for the end of one line. */
enum line_status { LINE_COMPLETE, LINE_PARTIAL, LINE_INVALID };

struct line {
    size_t start; /* offset of the first byte */
    size_t end;   /* offset just past the last byte, terminator excluded */
    size_t next;  /* offset of the following line */
};

static ssize_t fail(struct http_request *request, int status, const char *cause)
{
    request->error_status = status;
    request->error_cause = cause;
    return PARSE_ERROR;
}

/* RFC 9110 section 5.6.2: tchar, the characters allowed in a token. */
static bool is_token_char(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return true;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* RFC 9110 section 5.5: field values are visible characters, obs-text,
 * spaces and tabs; every other control character (NUL, a bare CR) is invalid. */
static bool is_field_value_char(unsigned char c)
{
    return c == '\t' || c == ' ' || (c >= 0x21 && c != 0x7f);
}

static bool is_token(const char *text, size_t length)
{
    if (length == 0)
        return false;
    for (size_t i = 0; i < length; i++)
        if (!is_token_char((unsigned char)text[i]))
            return false;
    return true;
}

/* Finds the end of the line starting at `start`. RFC 9112 section 2.2: a
 * line ends with CRLF; a lone LF is also accepted as a terminator, which the
 * RFC allows and which makes `printf 'GET / HTTP/1.0\n\n' | nc` work. A CR
 * anywhere else is a "bare CR", which the same section makes invalid. */
static enum line_status find_line(const char *buffer, size_t length, size_t start,
                                  struct line *line)
{
    for (size_t i = start; i < length; i++) {
        if (buffer[i] == '\n') {
            *line = (struct line){start, i, i + 1};
            return LINE_COMPLETE;
        }
        if (buffer[i] == '\r') {
            if (i + 1 == length)
                return LINE_PARTIAL;
            if (buffer[i + 1] != '\n')
                return LINE_INVALID;
            *line = (struct line){start, i, i + 2};
            return LINE_COMPLETE;
        }
    }
    return LINE_PARTIAL;
}

/* RFC 9110 section 9 (and RFC 5789 for PATCH): the methods that exist. */
static enum http_method classify_method(const char *name, size_t length)
{
    static const char *const not_allowed[] = {
        "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    };

    if (length == 3 && memcmp(name, "GET", 3) == 0)
        return METHOD_GET;
    if (length == 4 && memcmp(name, "HEAD", 4) == 0)
        return METHOD_HEAD;
    for (size_t i = 0; i < sizeof not_allowed / sizeof not_allowed[0]; i++)
        if (strlen(not_allowed[i]) == length && memcmp(name, not_allowed[i], length) == 0)
            return METHOD_NOT_ALLOWED;
    return METHOD_UNKNOWN;
}

/* RFC 9112 section 2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive. */
static ssize_t parse_version(const char *text, size_t length, struct http_request *request)
{
    if (length != 8 || memcmp(text, "HTTP/", 5) != 0 || text[6] != '.' ||
        text[5] < '0' || text[5] > '9' || text[7] < '0' || text[7] > '9')
        return fail(request, 400, "malformed HTTP version");
    /* RFC 9110 section 6.2: only the major version must match. */
    if (text[5] != '1')
        return fail(request, 505, "only HTTP/1.x is supported");
    request->version_minor = text[7] == '0' ? 0 : 1;
    return 0;
}

/* RFC 9112 section 3: request-line = method SP request-target SP HTTP-version,
 * single spaces, no other whitespace. */
static ssize_t parse_request_line(const char *buffer, const struct line *line,
                                  struct http_request *request)
{
    const char *text = buffer + line->start;
    size_t length = line->end - line->start;
    const char *first_space = memchr(text, ' ', length);
    const char *second_space;

    if (first_space == NULL)
        return fail(request, 400, "malformed request line");
    second_space = memchr(first_space + 1, ' ', (size_t)(text + length - first_space - 1));
    if (second_space == NULL)
        return fail(request, 400, "malformed request line");

    request->request_line = (struct text_span){text, length};
    request->method_name = (struct text_span){text, (size_t)(first_space - text)};
    request->target = (struct text_span){first_space + 1, (size_t)(second_space - first_space - 1)};

    if (!is_token(text, request->method_name.length))
        return fail(request, 400, "malformed method");
    if (request->target.length == 0)
        return fail(request, 400, "missing request target");
    for (size_t i = 0; i < request->target.length; i++) {
        unsigned char c = (unsigned char)request->target.start[i];
        if (c <= 0x20 || c == 0x7f) /* RFC 9112 section 3.2: no whitespace or controls */
            return fail(request, 400, "malformed request target");
    }
    request->method = classify_method(text, request->method_name.length);
    return parse_version(second_space + 1, (size_t)(text + length - second_space - 1), request);
}

static bool equals_ignoring_case(const char *text, size_t length, const char *word)
{
    return strlen(word) == length && strncasecmp(text, word, length) == 0;
}

/* Calls `visit` for each comma-separated element of a field value, with
 * optional whitespace trimmed (RFC 9110 section 5.6.1). */
static bool for_each_element(const char *value, size_t length,
                             bool (*visit)(const char *, size_t, struct http_request *),
                             struct http_request *request)
{
    size_t start = 0;

    while (start <= length) {
        size_t end = start;
        while (end < length && value[end] != ',')
            end++;
        size_t first = start, last = end;
        while (first < last && (value[first] == ' ' || value[first] == '\t'))
            first++;
        while (last > first && (value[last - 1] == ' ' || value[last - 1] == '\t'))
            last--;
        if (last > first && !visit(value + first, last - first, request))
            return false;
        start = end + 1;
    }
    return true;
}

static bool note_connection_option(const char *option, size_t length, struct http_request *request)
{
    if (equals_ignoring_case(option, length, "close"))
        request->connection_close = true;
    else if (equals_ignoring_case(option, length, "keep-alive"))
        request->connection_keep_alive = true;
    return true;
}

/* RFC 9112 section 6.3: Content-Length is digits; repeated values must agree. */
static bool note_content_length(const char *digits, size_t length, struct http_request *request)
{
    uint64_t value = 0;

    for (size_t i = 0; i < length; i++) {
        if (digits[i] < '0' || digits[i] > '9')
            return false;
        unsigned digit = (unsigned)(digits[i] - '0');
        value = value > (UINT64_MAX - digit) / 10 ? UINT64_MAX : value * 10 + digit;
    }
    if (request->has_content_length && request->content_length != value)
        return false;
    request->has_content_length = true;
    request->content_length = value;
    return true;
}

/* RFC 9112 section 5: field-line = field-name ":" OWS field-value OWS. */
static ssize_t parse_field_line(const char *buffer, const struct line *line,
                                struct http_request *request)
{
    const char *text = buffer + line->start;
    size_t length = line->end - line->start;
    const char *colon = memchr(text, ':', length);

    if (text[0] == ' ' || text[0] == '\t') /* RFC 9112 section 5.2: obs-fold */
        return fail(request, 400, "obsolete line folding in a header");
    if (colon == NULL)
        return fail(request, 400, "header line without a colon");
    size_t name_length = (size_t)(colon - text);
    if (name_length > 0 && (text[name_length - 1] == ' ' || text[name_length - 1] == '\t'))
        return fail(request, 400, "whitespace before the colon of a header"); /* section 5.1 */
    if (!is_token(text, name_length))
        return fail(request, 400, "malformed header name");

    const char *value = colon + 1;
    size_t value_length = (size_t)(text + length - value);
    for (size_t i = 0; i < value_length; i++)
        if (!is_field_value_char((unsigned char)value[i]))
            return fail(request, 400, "control character in a header value");

    if (equals_ignoring_case(text, name_length, "host"))
        request->host_count++;
    else if (equals_ignoring_case(text, name_length, "connection"))
        for_each_element(value, value_length, note_connection_option, request);
    else if (equals_ignoring_case(text, name_length, "transfer-encoding"))
        request->has_transfer_encoding = true;
    else if (equals_ignoring_case(text, name_length, "content-length")) {
        if (!for_each_element(value, value_length, note_content_length, request) ||
            !request->has_content_length)
            return fail(request, 400, "invalid Content-Length");
    }
    return 0;
}

/* Rules that need the whole head. */
static ssize_t check_complete_head(struct http_request *request, size_t head_length)
{
    /* RFC 9112 section 3.2: a 1.1 request has exactly one Host; none has two. */
    if (request->version_minor == 1 && request->host_count != 1)
        return fail(request, 400, "HTTP/1.1 needs exactly one Host header");
    if (request->host_count > 1)
        return fail(request, 400, "more than one Host header");
    /* RFC 9112 section 6.1: both framings at once may be request smuggling. */
    if (request->has_transfer_encoding && request->has_content_length)
        return fail(request, 400, "both Transfer-Encoding and Content-Length");
    return (ssize_t)head_length;
}

/* When no blank line has arrived yet: wait for more, unless the limit is hit. */
static ssize_t incomplete(struct http_request *request, size_t length, bool request_line_done)
{
    if (length < HTTP_HEAD_LIMIT)
        return PARSE_PARTIAL;
    if (!request_line_done)
        return fail(request, 414, "request line longer than 8192 bytes");
    return fail(request, 431, "request head longer than 8192 bytes");
}

ssize_t parse_request_head(const char *buffer, size_t length, struct http_request *request)
{
    struct line line;
    size_t offset = 0;
    enum line_status status;

    memset(request, 0, sizeof *request);
    /* No byte past the limit can belong to an acceptable head, and a server
     * never holds more than the limit: judge the first HTTP_HEAD_LIMIT bytes
     * only, so that the verdict does not depend on how many bytes arrived
     * (a bare CR just past the limit is "too long" whether the buffer
     * holds 8 KiB or 9; found by fuzz/split_head.c). */
    if (length > HTTP_HEAD_LIMIT)
        length = HTTP_HEAD_LIMIT;

    /* RFC 9112 section 2.2: ignore empty lines before the request line. */
    while ((status = find_line(buffer, length, offset, &line)) == LINE_COMPLETE &&
           line.end == line.start)
        offset = line.next;
    if (status == LINE_INVALID)
        return fail(request, 400, "bare CR in the request line");
    if (status == LINE_PARTIAL)
        return incomplete(request, length, false);
    if (line.next > HTTP_HEAD_LIMIT)
        return fail(request, 414, "request line longer than 8192 bytes");
    if (parse_request_line(buffer, &line, request) == PARSE_ERROR)
        return PARSE_ERROR;

    for (offset = line.next;; offset = line.next) {
        status = find_line(buffer, length, offset, &line);
        if (status == LINE_INVALID)
            return fail(request, 400, "bare CR in a header");
        if (status == LINE_PARTIAL)
            return incomplete(request, length, true);
        if (line.next > HTTP_HEAD_LIMIT)
            return fail(request, 431, "request head longer than 8192 bytes");
        if (line.end == line.start)
            return check_complete_head(request, line.next);
        if (parse_field_line(buffer, &line, request) == PARSE_ERROR)
            return PARSE_ERROR;
    }
}

bool request_wants_keep_alive(const struct http_request *request)
{
    if (request->connection_close)
        return false;
    /* RFC 9112 section 9.3: 1.1 persists by default; 1.0 only on request. */
    return request->version_minor >= 1 || request->connection_keep_alive;
}

bool request_has_body(const struct http_request *request)
{
    return request->has_transfer_encoding ||
           (request->has_content_length && request->content_length > 0);
}
