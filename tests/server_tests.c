/* What every server that answers one request per connection must do
 * (steps 1 and 2): the wire, the errors, shutdown, the idle timeout, the
 * flags. Your server against the reference, in the same run.
 *
 * This file is compiled into each step's test executable with
 *   -DSUITE=step1 -DUNDER_TEST_ENV="STEP1_UNDER_TEST" -DREFERENCE_ENV="STEP1_REFERENCE"
 * and the step's own tests (the concurrency shape) sit in stepN_test.c. */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "server_tests.h"

SERVER_SUITE(.timeout = 40, .fini = stop_all_servers);

const char GET_HELLO[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

/* The programs this executable tests; meson compiles their paths in. */
const struct program_default program_defaults[] = {
    {UNDER_TEST_ENV, UNDER_TEST_DEFAULT},
    {REFERENCE_ENV, REFERENCE_DEFAULT},
    {NULL, NULL},
};

const char *yours(void)
{
    return program_path(UNDER_TEST_ENV);
}

const char *reference(void)
{
    return program_path(REFERENCE_ENV);
}

void start_yours(struct server *server, const char *const args[])
{
    start_server(server, "your server", yours(), args);
}

void start_reference(struct server *server, const char *const args[])
{
    start_server(server, "the reference server", reference(), args);
}

static const char *const NO_DELAY[] = {"--delay-ms", "0", NULL};

/* ------------------------------------------------------------ the wire */

struct wire_case {
    const char *why;
    const char *request;
    size_t length; /* 0: strlen(request) */
    int status;
};

static size_t case_length(const struct wire_case *c)
{
    return c->length ? c->length : strlen(c->request);
}

/* RFC 9110 section 5.6.7: "Sun, 06 Nov 1994 08:49:37 GMT". */
static bool looks_like_imf_fixdate(const char *date)
{
    int day, year, hour, minute, second;
    char weekday[4], month[4];
    return strlen(date) == 29 &&
           sscanf(date, "%3s, %2d %3s %4d %2d:%2d:%2d GMT", weekday, &day, month, &year, &hour,
                  &minute, &second) == 7;
}

/* What every response must carry (SPEC: Date, Content-Length; errors close
 * and name the problem). Returns NULL or what is missing. */
static const char *missing_header(const struct exchange *got, const struct parsed_response *r)
{
    if (!looks_like_imf_fixdate(response_header(got->bytes, r->head_length, "Date")))
        return "a Date header in IMF-fixdate form (RFC 9110 section 5.6.7)";
    if (r->content_length < 0)
        return "a Content-Length header";
    if (r->status >= 400 &&
        strcmp(response_header(got->bytes, r->head_length, "Connection"), "close") != 0)
        return "\"Connection: close\" on an error response";
    if (r->status >= 400 && r->content_length == 0)
        return "a short text body naming the problem";
    if (r->status == 405 &&
        strcmp(response_header(got->bytes, r->head_length, "Allow"), "GET, HEAD") != 0)
        return "\"Allow: GET, HEAD\" on a 405";
    return NULL;
}

/* Sends one request to a server and checks the status, the headers and a
 * clean close. Returns the exchange for the caller to compare. */
static void expect_answer(struct server *server, const struct wire_case *c,
                          const struct send_plan *plan, struct exchange *got)
{
    struct parsed_response r;
    const char *missing;

    exchange(server->port, c->request, case_length(c), plan, 10000, got);
    parse_response(got->bytes, got->length, &r);
    if (strncmp(c->request, "HEAD ", 5) == 0) /* RFC 9110 section 9.3.2: no body */
        r.complete = r.head_length > 0 && got->length == r.head_length;
    if (r.status != c->status || !r.complete || got->end != END_CLOSED)
        fail_test("%s: %s\n  request: %s\nExpected status %d, a complete response, then a clean "
                  "close.\nGot: status %d, %s.\n  response: %s%s%s",
                  server->role, c->why, printable(c->request, case_length(c), 300), c->status,
                  r.status, describe_end(got), printable(got->bytes, got->length, 400),
                  server_said(server), replay_command(server, c->request, case_length(c)));
    if ((missing = missing_header(got, &r)) != NULL)
        fail_test("%s: %s\nThe response lacks %s.\n  response: %s%s", server->role, c->why,
                  missing, printable(got->bytes, got->length, 400),
                  replay_command(server, c->request, case_length(c)));
}

/* Your bytes must be the reference's, the Date value aside. */
static void expect_same_bytes(const struct exchange *mine, const struct exchange *theirs,
                              const struct wire_case *c)
{
    char *a = mask_date(mine->bytes, mine->length);
    char *b = mask_date(theirs->bytes, theirs->length);
    bool same = strcmp(a, b) == 0;
    char yours_text[4096];

    snprintf(yours_text, sizeof yours_text, "%s", printable(a, strlen(a), 600));
    if (!same)
        fail_test("%s: your response differs from the reference server's (Date aside).\n"
                  "  yours:     %s\n  reference: %s\nThe HTTP code is shared from common/: did you "
                  "change it, or write your own response?",
                  c->why, yours_text, printable(b, strlen(b), 600));
    free(a);
    free(b);
}

static void check_cases(const struct wire_case *cases, size_t count, const struct send_plan *plan)
{
    struct server mine, theirs;
    struct exchange got_mine, got_theirs;

    start_yours(&mine, NO_DELAY);
    start_reference(&theirs, NO_DELAY);
    for (size_t i = 0; i < count; i++) {
        expect_answer(&mine, &cases[i], plan, &got_mine);
        expect_answer(&theirs, &cases[i], plan, &got_theirs);
        expect_same_bytes(&got_mine, &got_theirs, &cases[i]);
        exchange_free(&got_mine);
        exchange_free(&got_theirs);
    }
}

#define CASES(array) array, sizeof array / sizeof array[0]
/* ==================== stage 1: the first response ==================== */

SERVER_TEST(answers_get_with_the_articles_hello)
{
    static const struct wire_case cases[] = {
        {"the article's request", GET_HELLO, 0, 200},
        {"any path gets the same answer", "GET /index.html?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", 0, 200},
    };
    struct server mine;
    struct exchange got;

    check_cases(CASES(cases), NULL);
    start_yours(&mine, NO_DELAY);
    exchange(mine.port, GET_HELLO, strlen(GET_HELLO), NULL, 5000, &got);
    char *masked = mask_date(got.bytes, got.length);
    const char *expected = "HTTP/1.1 200 OK\r\nDate: <date>\r\nContent-Type: text/plain\r\n"
                           "Content-Length: 5\r\nConnection: close\r\n\r\nHello";
    cr_assert(strcmp(masked, expected) == 0,
              "GET / should answer exactly (Date aside):\n  %s\nGot:\n  %s",
              printable(expected, strlen(expected), 400), printable(masked, strlen(masked), 400));
    free(masked);
    exchange_free(&got);
}

SERVER_TEST(answers_head_with_the_same_headers_and_no_body)
{
    static const struct wire_case cases[] = {
        {"HEAD has GET's headers and no body (RFC 9110 section 9.3.2)",
         "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", 0, 200},
    };
    struct server mine;
    struct exchange got;
    struct parsed_response r;

    check_cases(CASES(cases), NULL);
    start_yours(&mine, NO_DELAY);
    exchange(mine.port, cases[0].request, strlen(cases[0].request), NULL, 5000, &got);
    parse_response(got.bytes, got.length, &r);
    cr_assert(r.content_length == 5 && got.length == r.head_length,
              "HEAD should say Content-Length: 5 and send no body; got %zu bytes after the head.",
              got.length - r.head_length);
    exchange_free(&got);
}
/* ==================== stage 3: the wire ==================== */

SERVER_TEST(accepts_the_request_forms_rfc_9112_allows)
{
    static const struct wire_case cases[] = {
        {"HTTP/1.0 needs no Host", "GET / HTTP/1.0\r\n\r\n", 0, 200},
        {"HTTP/1.2 is answered as 1.1", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 0, 200},
        {"empty lines before the request line are ignored (section 2.2)",
         "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, 200},
        {"a lone LF ends a line (section 2.2)", "GET / HTTP/1.1\nHost: a\n\n", 0, 200},
        {"header names are case-insensitive", "GET / HTTP/1.1\r\nhOsT: a\r\n\r\n", 0, 200},
        {"Content-Length: 0 is no body", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
         0, 200},
    };
    check_cases(CASES(cases), NULL);
}

SERVER_TEST(serves_bytes_n_of_any_size)
{
    static const struct wire_case cases[] = {
        {"/bytes/0", "GET /bytes/0 HTTP/1.1\r\nHost: a\r\n\r\n", 0, 200},
        {"/bytes/1", "GET /bytes/1 HTTP/1.1\r\nHost: a\r\n\r\n", 0, 200},
        {"/bytes/3000000 takes many partial writes",
         "GET /bytes/3000000 HTTP/1.1\r\nHost: a\r\n\r\n", 0, 200},
        {"above 64 MiB", "GET /bytes/67108865 HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
        {"N must be digits", "GET /bytes/12a HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
    };
    struct server mine;
    struct exchange got;
    struct parsed_response r;

    check_cases(CASES(cases), NULL);
    start_yours(&mine, NO_DELAY);
    exchange(mine.port, cases[2].request, strlen(cases[2].request), NULL, 10000, &got);
    parse_response(got.bytes, got.length, &r);
    for (size_t i = 0; i < 3000000; i++)
        if (got.bytes[r.head_length + i] != 'a' + (char)(i % 26))
            fail_test("/bytes/3000000: body byte %zu is '%c', expected '%c' (the body is "
                      "\"abc...z\" repeated): were some bytes of a partial write sent twice or "
                      "skipped?", i, got.bytes[r.head_length + i], 'a' + (char)(i % 26));
    exchange_free(&got);
}

SERVER_TEST(rejects_malformed_requests_with_400)
{
    static const struct wire_case cases[] = {
        {"HTTP/1.1 without Host (RFC 9112 section 3.2)", "GET / HTTP/1.1\r\n\r\n", 0, 400},
        {"two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 0, 400},
        {"whitespace before a colon (section 5.1)", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 0, 400},
        {"two spaces in the request line", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
        {"a method that is not a token", "G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
        {"a NUL in a header value", "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 29, 400},
        {"a bare CR in a header", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 0, 400},
        {"obsolete line folding (section 5.2)", "GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", 0, 400},
        {"a malformed version", "GET / HTTP/1\r\nHost: a\r\n\r\n", 0, 400},
        {"a lower-case version (section 2.3)", "GET / http/1.1\r\nHost: a\r\n\r\n", 0, 400},
        {"a header line without a colon", "GET / HTTP/1.1\r\nHost a\r\n\r\n", 0, 400},
    };
    check_cases(CASES(cases), NULL);
}

SERVER_TEST(answers_other_versions_and_methods_with_505_405_and_501)
{
    static const struct wire_case cases[] = {
        {"HTTP/2.0 over this text protocol", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 0, 505},
        {"HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", 0, 505},
        {"POST is known but not served", "POST / HTTP/1.1\r\nHost: a\r\n\r\n", 0, 405},
        {"DELETE is known but not served", "DELETE / HTTP/1.1\r\nHost: a\r\n\r\n", 0, 405},
        {"OPTIONS is known but not served", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 0, 405},
        {"an unknown method", "BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n", 0, 501},
    };
    check_cases(CASES(cases), NULL);
}

SERVER_TEST(refuses_request_bodies_then_closes_without_a_reset)
{
    static const struct wire_case cases[] = {
        {"a body announced by Content-Length",
         "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", 0, 413},
        {"a chunked body", "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "5\r\nhello\r\n0\r\n\r\n", 0, 413},
        {"both framings (RFC 9112 section 6.1)",
         "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 0,
         400},
        {"two different lengths (section 6.3)",
         "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 0, 400},
        {"a length that is not digits", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5x\r\n\r\n",
         0, 400},
        {"a GET body that is itself a request, which must never be served",
         "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 34\r\n\r\nGET /bytes/9 HTTP/1.1\r\nHost: a"
         "\r\n\r\n", 0, 413},
    };
    check_cases(CASES(cases), NULL);
}

/* A GET whose target has target_bytes letters and whose head carries about
 * header_bytes of filler headers, 102 bytes each. */
static char *long_request(size_t target_bytes, size_t header_bytes)
{
    char *request = malloc(target_bytes + (header_bytes / 100 + 1) * 102 + 64);
    size_t used;

    cr_assert(request != NULL, "out of memory");
    used = (size_t)sprintf(request, "GET /");

    memset(request + used, 'a', target_bytes);
    used += target_bytes;
    used += (size_t)sprintf(request + used, " HTTP/1.1\r\nHost: a\r\n");
    for (size_t filled = 0; filled < header_bytes; filled += 100)
        used += (size_t)sprintf(request + used, "X-Filler-%04zu: %085d\r\n", filled / 100, 0);
    strcpy(request + used, "\r\n");
    return request;
}

SERVER_TEST(refuses_heads_over_8_kib_with_414_and_431)
{
    char *long_line = long_request(9000, 0);
    char *long_head = long_request(10, 9000);
    char *just_fits = long_request(10, 7900);
    const struct wire_case cases[] = {
        {"a request line over 8 KiB", long_line, 0, 414},
        {"a head over 8 KiB", long_head, 0, 431},
        {"a head just under 8 KiB is fine", just_fits, 0, 200},
    };
    check_cases(CASES(cases), NULL);
    free(long_line);
    free(long_head);
    free(just_fits);
}

SERVER_TEST(reads_a_head_split_across_many_writes)
{
    static const struct wire_case byte_by_byte[] = {
        {"the request sent one byte at a time", GET_HELLO, 0, 200},
    };
    static const struct wire_case in_pieces[] = {
        {"the request sent in pieces of 7 bytes",
         "GET /bytes/10 HTTP/1.1\r\nHost: a\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n", 0, 200},
    };
    const struct send_plan one_byte = {.piece = 1, .pause_ms = 2};
    const struct send_plan seven_bytes = {.piece = 7, .pause_ms = 10};

    check_cases(CASES(byte_by_byte), &one_byte);
    check_cases(CASES(in_pieces), &seven_bytes);
}

/* The article's defect: it read the request line only, then closed with the
 * rest of the head unread, and the kernel reset the connection. */
SERVER_TEST(answers_a_long_head_without_resetting_the_connection)
{
    const char *const args[] = {"--delay-ms", "200", NULL};
    char *request = long_request(10, 6000);
    const struct send_plan line_then_rest = {
        .first_piece = (size_t)(strstr(request, "\r\n") + 2 - request), .pause_ms = 100};
    struct server mine, theirs;
    struct exchange got;
    struct parsed_response r;

    start_yours(&mine, args);
    exchange(mine.port, request, strlen(request), &line_then_rest, 10000, &got);
    parse_response(got.bytes, got.length, &r);
    if (got.end != END_CLOSED || r.status != 200 || !r.complete)
        fail_test("A client sent its request line, then 100 ms later the other 6 KB of its head.\n"
                  "Expected: a complete 200 response, then a clean close (EOF).\nGot: status %d, "
                  "%s.\n%s%s",
                  r.status, describe_end(&got),
                  got.end == END_RESET
                      ? "Likely cause: the server closed before reading the whole head. Closing a "
                        "socket with unread bytes makes the kernel send a reset, which can destroy "
                        "the response (the source article's defect: NOTES.md section 1.7)."
                      : "",
                  server_said(&mine));
    exchange_free(&got);
    start_reference(&theirs, args);
    exchange(theirs.port, request, strlen(request), &line_then_rest, 10000, &got);
    cr_assert(got.end == END_CLOSED, "the reference server: %s", describe_end(&got));
    exchange_free(&got);
    free(request);
}

SERVER_TEST(closes_an_empty_connection_quietly)
{
    static const struct wire_case after[] = {
        {"a request after an empty connection", GET_HELLO, 0, 200},
    };
    struct server mine;
    struct exchange got;

    start_yours(&mine, NO_DELAY);
    /* ApacheBench opens one such connection: connect, then close. */
    close(connect_silently(&mine));
    expect_answer(&mine, &after[0], NULL, &got);
    exchange_free(&got);
    char *said = server_stderr(&mine);
    bool complained = strstr(said, "error") != NULL;
    cr_assert(!complained,
              "A client that connects and closes without a byte is normal (ApacheBench does it): "
              "close it quietly. Your server printed on stderr:\n%s", said);
    free(said);
}

/* ----------------------------------------------------------- shutdown */

void *exchange_in_background(void *argument)
{
    struct background_exchange *job = argument;
    exchange(job->port, GET_HELLO, strlen(GET_HELLO), NULL, 10000, &job->result);
    return NULL;
}
/* ==================== stage 4: shutdown ==================== */

SERVER_TEST(finishes_the_request_in_flight_on_sigterm)
{
    const char *const args[] = {"--delay-ms", "500", NULL};
    struct server mine;
    struct background_exchange job;
    struct parsed_response r;
    pthread_t client;

    start_yours(&mine, args);
    job.port = mine.port;
    pthread_create(&client, NULL, exchange_in_background, &job);
    usleep(200 * 1000); /* the request is now in its 500 ms of work */
    kill(mine.pid, SIGTERM);
    pthread_join(client, NULL);
    int status = wait_for_exit(&mine, 3000);
    parse_response(job.result.bytes, job.result.length, &r);
    if (r.status != 200 || !r.complete)
        fail_test("SIGTERM arrived 200 ms into a 500 ms request.\nExpected: the request still "
                  "gets its complete 200 response, then the server exits 0 (NOTES.md section "
                  "1.6).\nGot: status %d, %s.%s",
                  r.status, describe_end(&job.result), server_said(&mine));
    cr_assert(status == 0,
              "After SIGTERM and the last response, the server should exit 0 within 3 s; "
              "exit status: %d (-1: still running).%s",
              status, server_said(&mine));
    exchange_free(&job.result);
}

SERVER_TEST(closes_a_silent_connection_at_once_on_sigterm)
{
    struct server mine;

    start_yours(&mine, NO_DELAY);
    int silent = connect_silently(&mine);
    usleep(200 * 1000); /* the server now waits for this client's head */
    int64_t elapsed;
    kill(mine.pid, SIGTERM);
    enum exchange_end end = wait_for_server_close(silent, 3000, &elapsed);
    int status = wait_for_exit(&mine, 2000);
    close(silent);
    cr_assert(end == END_CLOSED && elapsed < 1000 && status == 0,
              "A client connected and sent nothing (a browser's pre-opened connection does "
              "this). On SIGTERM the server should close it at once and exit 0, not wait out "
              "the 10 s idle timeout (NOTES.md section 1.6).\nGot: %s after %lld ms; exit "
              "status %d (-1: still running).%s",
              end == END_CLOSED ? "closed" : "not closed", (long long)elapsed, status,
              server_said(&mine));
}
/* ==================== stage 5: the edge cases ==================== */

SERVER_TEST(drops_a_silent_client_after_the_idle_timeout)
{
    const char *const args[] = {"--delay-ms", "0", "--idle-ms", "300", NULL};
    static const struct wire_case after[] = {{"a request after the silent client", GET_HELLO, 0, 200}};
    struct server mine;
    struct exchange got;
    int64_t elapsed;

    start_yours(&mine, args);
    int silent = connect_silently(&mine);
    enum exchange_end end = wait_for_server_close(silent, 5000, &elapsed);
    close(silent);
    cr_assert(end == END_CLOSED && elapsed >= 200 && elapsed < 2000,
              "A client connected and sent nothing. With --idle-ms 300 the server should close "
              "it after about 300 ms.\nGot: %s after %lld ms.%s",
              end == END_CLOSED ? "closed" : end == END_RESET ? "reset" : "still open",
              (long long)elapsed, server_said(&mine));
    expect_answer(&mine, &after[0], NULL, &got);
    exchange_free(&got);
}

/* --------------------------------------------------------------- flags */

static int occupied_port(int *fd)
{
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t length = sizeof address;

    *fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(*fd >= 0 && bind(*fd, (struct sockaddr *)&address, sizeof address) == 0 &&
              listen(*fd, 1) == 0 && getsockname(*fd, (struct sockaddr *)&address, &length) == 0,
              "could not occupy a port: %s", strerror(errno));
    return ntohs(address.sin_port);
}

static int count_lines(const char *text)
{
    int lines = 0;
    for (; *text; text++)
        lines += *text == '\n';
    return lines;
}

SERVER_TEST(exits_1_with_one_line_when_the_port_is_in_use)
{
    int holder;
    char port[16];
    struct program_run run;

    snprintf(port, sizeof port, "%d", occupied_port(&holder));
    for (int which = 0; which < 2; which++) {
        const char *const argv[] = {which == 0 ? yours() : reference(), "--port", port, NULL};
        cr_assert(run_program(argv, 5000, &run), "could not start %s", argv[0]);
        cr_assert(run.exit_code == 1 && count_lines(run.err) == 1 && strstr(run.err, "in use"),
                  "%s --port %s, with that port taken, should print one line saying the port is "
                  "in use and exit 1.\nGot exit code %d and stderr:\n%s",
                  short_path(argv[0]), port, run.exit_code, run.err);
        program_run_free(&run);
    }
    close(holder);
}

/* Step 2 takes --workers (from 1); the others refuse it whatever its value. */
#ifdef TAKES_WORKERS
#define BAD_WORKERS "0"
#else
#define BAD_WORKERS "3"
#endif

SERVER_TEST(rejects_bad_flags_with_usage_and_exit_2)
{
    static const char *const bad[][3] = {
        {"--bogus", NULL, NULL},      {"--port", "http", NULL}, {"--port", "70000", NULL},
        {"--delay-ms", "-5", NULL},   {"--idle-ms", "0", NULL}, {"--workers", BAD_WORKERS, NULL},
        {"--delay-ms", NULL, NULL},   {"stray", NULL, NULL},    {"--host", "localhost", NULL},
    };
    struct program_run run;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *const argv[] = {yours(), bad[i][0], bad[i][1], NULL};
        cr_assert(run_program(argv, 5000, &run), "could not start %s", argv[0]);
        cr_assert(run.exit_code == 2 && strstr(run.err, "usage:") != NULL,
                  "%s %s %s should print the usage on stderr and exit 2.\nGot exit code %d and "
                  "stderr:\n%s", short_path(argv[0]), bad[i][0], bad[i][1] ? bad[i][1] : "",
                  run.exit_code, run.err);
        program_run_free(&run);
    }
    const char *const help[] = {yours(), "--help", NULL};
    cr_assert(run_program(help, 5000, &run), "could not start %s", help[0]);
    cr_assert(run.exit_code == 0 && strstr(run.out, "usage:") && strstr(run.out, "--delay-ms"),
              "--help should print the usage on stdout and exit 0; got exit %d, stdout:\n%s",
              run.exit_code, run.out);
    program_run_free(&run);
}
