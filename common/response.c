#include "response.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "request_io.h" /* enum head_status */

static const char hello_body[] = "Hello"; /* the article's response */

const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

void response_for_error(int status, const char *cause, struct response *response)
{
    *response = (struct response){.status = status, .close_connection = true};
    snprintf(response->text, sizeof response->text, "%d %s: %s\n", status,
             reason_phrase(status), cause);
    response->body_length = strlen(response->text);
    response->allow_get_head = status == 405;
}

/* "/bytes/N" with N all digits and at most BYTES_ENDPOINT_MAX. Returns false
 * for any other "/bytes/..." target. */
static bool parse_bytes_target(struct text_span target, uint64_t *count)
{
    static const char prefix[] = "/bytes/";
    size_t prefix_length = sizeof prefix - 1;
    uint64_t value = 0;

    if (target.length == prefix_length || target.length > prefix_length + 9)
        return false;
    for (size_t i = prefix_length; i < target.length; i++) {
        if (target.start[i] < '0' || target.start[i] > '9')
            return false;
        value = value * 10 + (uint64_t)(target.start[i] - '0');
    }
    *count = value;
    return value <= BYTES_ENDPOINT_MAX;
}

static bool starts_with(struct text_span span, const char *prefix)
{
    size_t length = strlen(prefix);
    return span.length >= length && memcmp(span.start, prefix, length) == 0;
}

void response_for_request(const struct http_request *request, bool keep_open,
                          struct response *response)
{
    uint64_t count;

    if (request->method == METHOD_UNKNOWN)
        return response_for_error(501, "this server knows no such method", response);
    if (request->method == METHOD_NOT_ALLOWED)
        return response_for_error(405, "only GET and HEAD are served here", response);
    /* This server reads no bodies: refuse, and close so that the unread body
     * is never taken for the next request. */
    if (request_has_body(request))
        return response_for_error(413, "requests with a body are not accepted", response);

    *response = (struct response){.status = 200, .omit_body = request->method == METHOD_HEAD};
    response->close_connection = !keep_open;
    response->echo_keep_alive = keep_open && request->version_minor == 0;
    if (starts_with(request->target, "/bytes/")) {
        if (!parse_bytes_target(request->target, &count))
            return response_for_error(400, "N in /bytes/N must be a number from 0 to 67108864",
                                      response);
        response->body_kind = BODY_PATTERN;
        response->body_length = count;
        return;
    }
    response->body_kind = BODY_TEXT;
    memcpy(response->text, hello_body, sizeof hello_body);
    response->body_length = sizeof hello_body - 1;
}

bool response_needs_heavy_work(const struct response *response)
{
    return response->status == 200;
}

/* RFC 9110 section 5.6.7: IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
 * Names are spelled out here so that no locale can change them. The text
 * changes once a second, so each thread keeps the last one it made: with
 * the head's own formatting, gmtime_r() and snprintf() were three quarters
 * of a response's instructions (NOTES.md 3.14). */
static const char *http_date_now(void)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    static _Thread_local time_t made_at = -1;
    /* Never empty: if the clock ever failed, the epoch is still a valid date. */
    static _Thread_local char text[40] = "Thu, 01 Jan 1970 00:00:00 GMT";
    time_t now = time(NULL);
    struct tm utc;

    if (now != made_at && gmtime_r(&now, &utc) != NULL) {
        snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[utc.tm_wday],
                 utc.tm_mday, months[utc.tm_mon], utc.tm_year + 1900, utc.tm_hour, utc.tm_min,
                 utc.tm_sec);
        made_at = now;
    }
    return text;
}

/* Appends text at `at` and returns the end. The head's parts are short and
 * bounded (outgoing->head has room for the longest: see outgoing_start()). */
static char *append_text(char *at, const char *text)
{
    size_t length = strlen(text);

    memcpy(at, text, length);
    return at + length;
}

static char *append_decimal(char *at, uint64_t value)
{
    char digits[20];
    int count = 0;

    do {
        digits[count++] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    while (count > 0)
        *at++ = digits[--count];
    return at;
}

void outgoing_start(struct outgoing *outgoing, const struct response *response)
{
    /* The longest head, a 405 with Allow and Connection: close, is 156
     * bytes, and 315 with its text body: head[] holds 512. */
    char *at = outgoing->head;

    at = append_text(at, "HTTP/1.1 ");
    at = append_decimal(at, (uint64_t)response->status);
    at = append_text(at, " ");
    at = append_text(at, reason_phrase(response->status));
    at = append_text(at, "\r\nDate: ");
    at = append_text(at, http_date_now());
    at = append_text(at, "\r\nContent-Type: text/plain\r\nContent-Length: ");
    at = append_decimal(at, response->body_length);
    at = append_text(at, "\r\n");
    if (response->allow_get_head)
        at = append_text(at, "Allow: GET, HEAD\r\n");
    if (response->close_connection)
        at = append_text(at, "Connection: close\r\n");
    else if (response->echo_keep_alive)
        at = append_text(at, "Connection: keep-alive\r\n");
    at = append_text(at, "\r\n");
    outgoing->head_length = (size_t)(at - outgoing->head);
    outgoing->response = response;
    outgoing->sent = 0;
    if (response->omit_body) {
        outgoing->total_length = outgoing->head_length;
    } else if (response->body_kind == BODY_TEXT &&
               outgoing->head_length + response->body_length <= sizeof outgoing->head) {
        /* A short body rides right behind the head: the whole response is
         * one piece, so it leaves in one send() and one TCP segment. */
        memcpy(outgoing->head + outgoing->head_length, response->text, response->body_length);
        outgoing->head_length += response->body_length;
        outgoing->total_length = outgoing->head_length;
    } else {
        outgoing->total_length = outgoing->head_length + response->body_length;
    }
}

/* The /bytes/N body: a 64 KiB window over "abc...z" repeated, filled once. */
enum { PATTERN_WINDOW = 64 * 1024, PATTERN_PERIOD = 26 };
static char pattern[PATTERN_WINDOW + PATTERN_PERIOD];
static pthread_once_t pattern_once = PTHREAD_ONCE_INIT;

static void fill_pattern(void)
{
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (char)('a' + i % PATTERN_PERIOD);
}

size_t outgoing_next(const struct outgoing *outgoing, const char **data)
{
    const struct response *response = outgoing->response;
    uint64_t remaining = outgoing->total_length - outgoing->sent;
    uint64_t body_offset;

    if (remaining == 0)
        return 0;
    if (outgoing->sent < outgoing->head_length) {
        *data = outgoing->head + outgoing->sent;
        return outgoing->head_length - (size_t)outgoing->sent;
    }
    body_offset = outgoing->sent - outgoing->head_length;
    if (response->body_kind == BODY_TEXT) {
        *data = response->text + body_offset;
        return (size_t)remaining;
    }
    pthread_once(&pattern_once, fill_pattern);
    *data = pattern + body_offset % PATTERN_PERIOD;
    return remaining < PATTERN_WINDOW ? (size_t)remaining : PATTERN_WINDOW;
}

void outgoing_advance(struct outgoing *outgoing, size_t count)
{
    outgoing->sent += count;
}

bool outgoing_done(const struct outgoing *outgoing)
{
    return outgoing->sent == outgoing->total_length;
}

bool choose_response_to_head(enum head_status status, const struct http_request *request,
                             bool keep_alive, struct response *response)
{
    switch (status) {
    case HEAD_COMPLETE:
        response_for_request(request, keep_alive, response);
        return true;
    case HEAD_INVALID:
        response_for_error(request->error_status, request->error_cause, response);
        return true;
    case HEAD_TIMED_OUT:
        /* RFC 9110 section 15.5.9: part of a head came, then nothing. */
        response_for_error(408, "no complete request head in time", response);
        return true;
    default:
        return false;
    }
}
