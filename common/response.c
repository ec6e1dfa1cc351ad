#include "response.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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
 * Names are spelled out here so that no locale can change them. */
static void format_http_date(char *out, size_t size)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm utc;

    gmtime_r(&now, &utc);
    snprintf(out, size, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[utc.tm_wday], utc.tm_mday,
             months[utc.tm_mon], utc.tm_year + 1900, utc.tm_hour, utc.tm_min, utc.tm_sec);
}

void outgoing_start(struct outgoing *outgoing, const struct response *response)
{
    char date[40];
    int length;

    format_http_date(date, sizeof date);
    length = snprintf(outgoing->head, sizeof outgoing->head,
                      "HTTP/1.1 %d %s\r\n"
                      "Date: %s\r\n"
                      "Content-Type: text/plain\r\n"
                      "Content-Length: %" PRIu64 "\r\n"
                      "%s%s"
                      "\r\n",
                      response->status, reason_phrase(response->status), date,
                      response->body_length,
                      response->allow_get_head ? "Allow: GET, HEAD\r\n" : "",
                      response->close_connection  ? "Connection: close\r\n"
                      : response->echo_keep_alive ? "Connection: keep-alive\r\n"
                                                  : "");
    outgoing->head_length = (size_t)length;
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
