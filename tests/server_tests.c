/* What every server that answers one request per connection must do
 * (steps 1 and 2): wait for clients without spinning or sleeping, the wire,
 * the errors, slow and vanishing clients, shutdown, the idle timeout, the
 * flags. Your server against the reference, in the same run.
 *
 * This file is compiled into each step's test executable with
 *   -DSUITE=step1 -DUNDER_TEST_ENV="STEP1_UNDER_TEST" -DREFERENCE_ENV="STEP1_REFERENCE"
 * and the step's own tests (the concurrency shape) sit in stepN_test.c.
 * In step 1 you wrote the request's reading and sending (request_io.c), so a
 * failure there may name them; step 2 links the reference's. */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "server_tests.h"

/* Each test has 15 s; every wait inside one is bounded well below that. */
SERVER_SUITE(.timeout = 15, .fini = stop_all_servers);

const char GET_HELLO[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

/* The programs this executable tests; meson compiles their paths in. */
const struct program_default program_defaults[] = {
    {UNDER_TEST_ENV, UNDER_TEST_DEFAULT},
    {REFERENCE_ENV, REFERENCE_DEFAULT},
#ifdef REFUSING_UNDER_TEST_ENV
    {REFUSING_UNDER_TEST_ENV, REFUSING_UNDER_TEST_DEFAULT},
#endif
    {NULL, NULL},
};

/* Step 1's learner writes read_request_head() and send_response(); step 2
 * links the reference's, so a symptom there is never blamed on them. */
#ifdef TAKES_WORKERS
static const bool LEARNER_WROTE_REQUEST_IO = false;
#else
static const bool LEARNER_WROTE_REQUEST_IO = true;
#endif

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

const char *loop_section(void)
{
    return LEARNER_WROTE_REQUEST_IO ? "NOTES.md section 1.3" : "NOTES.md section 2.7";
}

const char *stop_section(void)
{
    return LEARNER_WROTE_REQUEST_IO ? "NOTES.md section 1.6" : "NOTES.md sections 2.6 and 2.7";
}

/* The servers of this test that were sent SIGTERM. */
enum { MAX_ASKED = 16 };
static const struct server *asked_to_stop[MAX_ASKED];

void ask_to_stop(struct server *server)
{
    for (int i = 0; i < MAX_ASKED; i++)
        if (asked_to_stop[i] == NULL || asked_to_stop[i] == server) {
            asked_to_stop[i] = server;
            break;
        }
    if (server->pid > 0)
        kill(server->pid, SIGTERM);
}

static bool was_asked_to_stop(const struct server *server)
{
    for (int i = 0; i < MAX_ASKED; i++)
        if (asked_to_stop[i] == server)
            return true;
    return false;
}

const char *said(struct server *server)
{
    static char text[7000];
    const char *paragraph = server_said(server); /* reaps a server that has exited */
    bool ended_by_itself = server->pid == 0 && server->term_signal == 0 &&
                           server->exit_status == 0 && !was_asked_to_stop(server) &&
                           strstr(paragraph, "TODO:") == NULL;

    if (!ended_by_itself)
        return paragraph;
    snprintf(text, sizeof text, "%s\nNobody asked it to stop (no SIGTERM was sent), so "
             "serve_forever() returned by itself. It must go round again until "
             "shutdown_requested() is true: accept_client() returning -1 only means that nobody "
             "came within 100 ms (%s).", paragraph, loop_section());
    return text;
}

/* What the main thread of a running server is doing, for messages. */
static const char *doing_now(const struct server *server)
{
    static char text[160];
    int call = server_main_thread_syscall(server);

    if (call == -1)
        snprintf(text, sizeof text, " Its main thread was running (using the CPU).");
    else if (call >= 0)
        snprintf(text, sizeof text, " Its main thread was blocked in %s (/proc/PID/syscall).",
                 syscall_name(call));
    else
        text[0] = '\0';
    return text;
}

/* What a server did with the CPU over a stretch of time: how long it ran,
 * and how long it wanted to run (ran, or waited for a free core). A server
 * that spins wants the CPU all the time, however busy the machine is. */
struct cpu_use {
    int64_t ran_ns, wanted_ns;
    long long ran_ms, wanted_ms;
};

static void cpu_use_start(const struct server *server, struct cpu_use *use)
{
    use->ran_ns = server_cpu_ns(server);
    use->wanted_ns = server_busy_ns(server);
}

static void cpu_use_stop(const struct server *server, struct cpu_use *use)
{
    use->ran_ms = (long long)((server_cpu_ns(server) - use->ran_ns) / 1000000);
    use->wanted_ms = (long long)((server_busy_ns(server) - use->wanted_ns) / 1000000);
}

void expect_clean_exit(struct server *server, int status, int waited_ms, const char *situation)
{
    if (status == 0)
        return;
    if (status < 0)
        fail_test("%s\nExpected: your server exits 0 within %d ms of SIGTERM.\nGot: it was still "
                  "running.%s Every loop of the server looks at shutdown_requested() at least "
                  "every 100 ms, and every wait for a client or its bytes is that short (%s).%s",
                  situation, waited_ms, doing_now(server), stop_section(), said(server));
    if (status == 23 && strstr(server_said(server), "LeakSanitizer") != NULL)
        fail_test("%s\nExpected: your server exits 0.\nGot: exit status 23, which is how "
                  "AddressSanitizer's leak check says that memory was still allocated at the "
                  "exit, with nothing pointing to it: something was malloc'd and never freed. "
                  "The report below says where it was allocated.%s",
                  situation, said(server));
    fail_test("%s\nExpected: your server exits 0.\nGot: exit status %d.%s", situation, status,
              said(server));
}

static const char *const NO_DELAY[] = {"--delay-ms", "0", NULL};

/* The wire tests' flags: no delay, and a short idle time. A request with
 * no delay is answered within a few milliseconds; one answered only when
 * the idle time ran out was waited on for nothing, and one answered 408
 * was not seen to be complete. The wire tests wait for the answer a little
 * longer than the idle time, so that such a 408 is seen and explained. */
enum { WIRE_IDLE_MS = 1000, WIRE_PROMPT_MS = 750, WIRE_WAIT_MS = WIRE_IDLE_MS + 1000 };
static const char *const WIRE_ARGS[] = {"--delay-ms", "0", "--idle-ms", "1000", NULL};

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

/* What an answer that went wrong says about step 1's reading and sending,
 * when the evidence is clear; "" otherwise (and always in step 2). */
static const char *what_the_answer_shows(const struct exchange *got,
                                         const struct parsed_response *r, int expected_status,
                                         bool sent_in_pieces)
{
    static char text[600];
    int64_t took = got->finished_ms - got->started_ms;

    if (!LEARNER_WROTE_REQUEST_IO)
        return "";
    if (r->status == 408 && expected_status != 408) {
        snprintf(text, sizeof text,
                 "\nYour server answered 408 (Request Timeout) after %lld ms, when its idle time "
                 "ran out: it was still waiting for the end of a head that had arrived whole. "
                 "Only parse_request_head() knows where a head ends (it returns its length; a "
                 "lone LF ends a line too, RFC 9112 section 2.2, and a malformed head is an "
                 "error, not a reason to wait): call it on everything received so far, after "
                 "every read (NOTES.md section 1.4).", (long long)took);
        return text;
    }
    if (r->status == expected_status && r->head_length > 0 && !r->complete &&
        got->end == END_CLOSED && r->content_length > 0) {
        snprintf(text, sizeof text,
                 "\nThe response stopped after %zu of its %zu bytes, then the connection "
                 "closed. A response takes as many send() calls as it takes: send what "
                 "outgoing_next() points at, advance by what send() returned, and go on until "
                 "outgoing_next() returns 0 (NOTES.md section 1.5).",
                 got->length, r->head_length + (size_t)r->content_length);
        return text;
    }
    if (sent_in_pieces && got->length == 0 && (got->end == END_CLOSED || got->end == END_RESET))
        return "\nThis request was sent in pieces, and the connection was closed without a "
               "word: the reading stopped before the head was complete. A head may arrive in "
               "any number of pieces: append each one after the others, and read until "
               "parse_request_head() says it is complete (NOTES.md section 1.4).";
    return "";
}

/* Sends one request to a server and checks the status, the headers and a
 * clean close, within wait_ms, and that the answer came within prompt_ms.
 * Returns the exchange for the caller. */
static void expect_answer_within(struct server *server, const struct wire_case *c,
                                 const struct send_plan *plan, int wait_ms, int prompt_ms,
                                 struct exchange *got)
{
    struct parsed_response r;
    const char *missing;

    exchange(server->port, c->request, case_length(c), plan, wait_ms, got);
    parse_response(got->bytes, got->length, &r);
    if (strncmp(c->request, "HEAD ", 5) == 0) /* RFC 9110 section 9.3.2: no body */
        r.complete = r.head_length > 0 && got->length == r.head_length;
    if (r.status != c->status || !r.complete || got->end != END_CLOSED)
        fail_test("%s: %s\n  request: %s\nExpected status %d, a complete response, then a clean "
                  "close, within %d ms.\nGot: status %d, %s, after %lld ms.\n  response: %s%s%s%s",
                  server->role, c->why, printable(c->request, case_length(c), 300), c->status,
                  prompt_ms, r.status, describe_end(got),
                  (long long)(got->finished_ms - got->started_ms),
                  printable(got->bytes, got->length, 400),
                  what_the_answer_shows(got, &r, c->status, plan != NULL), said(server),
                  replay_command(server, c->request, case_length(c)));
    if (got->finished_ms - got->started_ms > prompt_ms)
        fail_test("%s: %s\nExpected the complete response within %d ms (the reference answers "
                  "in a few).\nGot it after %lld ms.%s%s%s",
                  server->role, c->why, prompt_ms, (long long)(got->finished_ms - got->started_ms),
                  LEARNER_WROTE_REQUEST_IO
                      ? "\nThat is about --idle-ms: the server waited for more bytes after the "
                        "head had arrived whole. A head ends at its blank line, which "
                        "parse_request_head() finds: once it returns the head's length, stop "
                        "reading (NOTES.md section 1.4)."
                      : "",
                  said(server), replay_command(server, c->request, case_length(c)));
    if ((missing = missing_header(got, &r)) != NULL)
        fail_test("%s: %s\nThe response lacks %s.\n  response: %s%s", server->role, c->why,
                  missing, printable(got->bytes, got->length, 400),
                  replay_command(server, c->request, case_length(c)));
}

/* The same, for a server started with WIRE_ARGS. */
static void expect_answer(struct server *server, const struct wire_case *c,
                          const struct send_plan *plan, struct exchange *got)
{
    expect_answer_within(server, c, plan, WIRE_WAIT_MS, WIRE_PROMPT_MS, got);
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

static void check_cases_with(const struct wire_case *cases, size_t count,
                             const struct send_plan *plan, const char *const args[])
{
    struct server mine, theirs;
    struct exchange got_mine, got_theirs;

    start_yours(&mine, args);
    start_reference(&theirs, args);
    for (size_t i = 0; i < count; i++) {
        expect_answer(&mine, &cases[i], plan, &got_mine);
        expect_answer(&theirs, &cases[i], plan, &got_theirs);
        expect_same_bytes(&got_mine, &got_theirs, &cases[i]);
        exchange_free(&got_mine);
        exchange_free(&got_theirs);
    }
}

static void check_cases(const struct wire_case *cases, size_t count, const struct send_plan *plan)
{
    check_cases_with(cases, count, plan, WIRE_ARGS);
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
    start_yours(&mine, WIRE_ARGS);
    exchange(mine.port, GET_HELLO, strlen(GET_HELLO), NULL, ANSWER_MS, &got);
    char *masked = mask_date(got.bytes, got.length);
    const char *expected = "HTTP/1.1 200 OK\r\nDate: <date>\r\nContent-Type: text/plain\r\n"
                           "Content-Length: 5\r\nConnection: close\r\n\r\nHello";
    check(strcmp(masked, expected) == 0,
          "GET / should answer exactly (Date aside):\n  %s\nGot:\n  %s%s",
          printable(expected, strlen(expected), 400), printable(masked, strlen(masked), 400),
          said(&mine));
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
    start_yours(&mine, WIRE_ARGS);
    exchange(mine.port, cases[0].request, strlen(cases[0].request), NULL, ANSWER_MS, &got);
    parse_response(got.bytes, got.length, &r);
    check(r.content_length == 5 && got.length == r.head_length,
          "HEAD should say Content-Length: 5 and send no body; got %zu bytes after the head.%s",
          got.length - r.head_length, said(&mine));
    exchange_free(&got);
}
/* ==================== stage 2: waiting for clients ==================== */

enum { QUIET_MS = 1500, LOOK_EVERY_MS = 50 };

/* Watches a server nobody connects to, for ms: how often its main thread
 * was found asleep, and in what. Stops early if it exits. */
struct quiet_spell {
    int looks;
    int asleep;
    int sleep_call;
};

static void watch_a_quiet_spell(struct server *server, int ms, struct quiet_spell *spell)
{
    *spell = (struct quiet_spell){0};
    for (int64_t end = now_ms() + ms; now_ms() < end && server_running(server);) {
        pause_ms(LOOK_EVERY_MS);
        int call = server_main_thread_syscall(server);
        spell->looks++;
        if (is_sleep_syscall(call)) {
            spell->asleep++;
            spell->sleep_call = call;
        }
    }
}

SERVER_TEST(serves_a_client_promptly_after_a_quiet_spell)
{
    static const struct wire_case late = {"a client after the quiet spell", GET_HELLO, 0, 200};
    struct server mine;
    struct quiet_spell spell;
    struct exchange got;

    start_yours(&mine, WIRE_ARGS);
    watch_a_quiet_spell(&mine, QUIET_MS, &spell);
    if (!server_running(&mine))
        fail_test("Nobody connected to your server for %d ms after it printed its listening "
                  "line, and meanwhile it ended.\nExpected: it waits for clients for as long "
                  "as it runs, whether one comes in 100 ms or in an hour.%s",
                  QUIET_MS, said(&mine));
    if (spell.asleep > 0)
        fail_test("Nobody connected to your server for %d ms. Looking every %d ms at what its "
                  "main thread was doing (/proc/PID/syscall), %d of %d looks found it in %s.\n"
                  "Expected: it waits for a client, and only for a client. A client that comes "
                  "during a sleep waits until the sleep ends. accept_client() already waits, in "
                  "poll(), up to 100 ms for a client: when it returns -1, call it again at once "
                  "(%s).%s",
                  QUIET_MS, LOOK_EVERY_MS, spell.asleep, spell.looks,
                  syscall_name(spell.sleep_call), loop_section(), said(&mine));
    expect_answer(&mine, &late, NULL, &got);
    exchange_free(&got);
}

SERVER_TEST(waits_for_clients_without_using_the_cpu)
{
    enum { WATCH_MS = 1000, MAX_WANTED_MS = 300, MAX_WAKE_UPS = 150 };
    struct server mine;
    struct cpu_use use;

    start_yours(&mine, NO_DELAY);
    pause_ms(200); /* start-up is over */
    check(server_running(&mine), "Your server ended within 200 ms of its start, while nobody "
          "was connected.%s", said(&mine));
    long switches_before = server_context_switches(&mine);
    cpu_use_start(&mine, &use);
    pause_ms(WATCH_MS);
    cpu_use_stop(&mine, &use);
    long wake_ups = server_context_switches(&mine) - switches_before;
    const char *now_doing = doing_now(&mine);

    check(server_running(&mine), "Your server ended while nobody was connected, within %d ms "
          "of its start.%s", 200 + WATCH_MS, said(&mine));
    check(use.wanted_ms < MAX_WANTED_MS,
          "With no client at all, your server wanted the CPU for %lld ms of %d (it ran %lld ms, "
          "and waited for a free core the rest: /proc/PID/task/*/schedstat); the reference "
          "wants it for about 1.%s\nA server with nothing to do must sleep until a client "
          "comes, not ask again and again: accept4() on the listening socket, which is "
          "non-blocking, fails at once with EAGAIN, so a loop around it spins. "
          "accept_client() waits in poll() for up to 100 ms (%s)%s.%s",
          use.wanted_ms, WATCH_MS, use.ran_ms, now_doing, loop_section(),
          LEARNER_WROTE_REQUEST_IO ? "" : "; an idle pool's workers sleep too (section 2.4)",
          said(&mine));
    check(wake_ups < MAX_WAKE_UPS,
          "With no client at all, your server woke up %ld times in %d ms (context switches of "
          "all its threads, /proc/PID/task/*/status); the reference about 10, once per 100 ms "
          "wait of accept_client().\nA loop that sleeps a little and asks again wastes that "
          "much, and a client still waits for each sleep: call accept_client(), which waits "
          "for the client itself (%s).%s",
          wake_ups, WATCH_MS, loop_section(), said(&mine));
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

/* The body of /bytes/N is "abc...z" repeated: the first byte that is not
 * where it should be, or -1. */
static long first_wrong_body_byte(const struct exchange *got, const struct parsed_response *r)
{
    size_t body = got->length - r->head_length;
    for (size_t i = 0; i < body; i++)
        if (got->bytes[r->head_length + i] != 'a' + (char)(i % 26))
            return (long)i;
    return -1;
}

SERVER_TEST(serves_bytes_n_of_any_size)
{
    static const struct wire_case cases[] = {
        {"/bytes/0", "GET /bytes/0 HTTP/1.1\r\nHost: a\r\n\r\n", 0, 200},
        {"/bytes/1", "GET /bytes/1 HTTP/1.1\r\nHost: a\r\n\r\n", 0, 200},
        {"/bytes/3000000 takes many writes", "GET /bytes/3000000 HTTP/1.1\r\nHost: a\r\n\r\n", 0,
         200},
        {"above 64 MiB", "GET /bytes/67108865 HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
        {"N must be digits", "GET /bytes/12a HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
    };
    struct server mine;
    struct exchange got;
    struct parsed_response r;

    check_cases(CASES(cases), NULL);
    start_yours(&mine, WIRE_ARGS);
    expect_answer(&mine, &cases[2], NULL, &got);
    parse_response(got.bytes, got.length, &r);
    long wrong = first_wrong_body_byte(&got, &r);
    check(wrong < 0,
          "/bytes/3000000: body byte %ld is '%c', expected '%c' (the body is \"abc...z\" "
          "repeated): some bytes were sent twice or skipped.%s",
          wrong, got.bytes[r.head_length + (size_t)wrong], 'a' + (char)(wrong % 26), said(&mine));
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

/* Pieces of 1000 bytes: a read into the 8 KiB buffer that asks for more
 * room than is left writes past its end as soon as a piece arrives after
 * 8000 bytes (8192 is no multiple of 1000), and AddressSanitizer stops it. */
SERVER_TEST(refuses_a_head_over_8_kib_that_arrives_in_pieces)
{
    char *long_head = long_request(10, 9500);
    const struct wire_case cases[] = {
        {"a head over 8 KiB, sent in pieces of 1000 bytes", long_head, 0, 431},
    };
    const struct send_plan pieces = {.piece = 1000, .pause_ms = 5};

    check_cases(CASES(cases), &pieces);
    free(long_head);
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
    exchange(mine.port, request, strlen(request), &line_then_rest, 200 + ANSWER_MS, &got);
    parse_response(got.bytes, got.length, &r);
    if (got.end != END_CLOSED || r.status != 200 || !r.complete)
        fail_test("A client sent its request line, then 100 ms later the other 6 KB of its head.\n"
                  "Expected: a complete 200 response, then a clean close (EOF).\nGot: status %d, "
                  "%s.\n%s%s",
                  r.status, describe_end(&got),
                  got.end == END_RESET
                      ? "The server closed before reading the whole head. Closing a socket with "
                        "unread bytes makes the kernel send a reset, which can destroy the "
                        "response (the source article's defect: NOTES.md section 1.7)."
                      : "",
                  said(&mine));
    exchange_free(&got);
    start_reference(&theirs, args);
    exchange(theirs.port, request, strlen(request), &line_then_rest, 200 + ANSWER_MS, &got);
    check(got.end == END_CLOSED, "The reference server: %s. Is the machine overloaded?",
          describe_end(&got));
    exchange_free(&got);
    free(request);
}

/* Sends a short request in one send(). A failure is the server's doing (it
 * reset or closed the connection): the message says what became of it. */
static void write_request(struct server *server, int fd, const char *request)
{
    if (send(fd, request, strlen(request), MSG_NOSIGNAL) != (ssize_t)strlen(request))
        fail_test("A client connected and sent: %s\nExpected: the server reads it.\n"
                  "Got: send() failed: %s.%s",
                  printable(request, strlen(request), 200), strerror(errno), said(server));
}

/* Reads a whole response (or until the connection ends or timeout_ms). */
static void read_response(int fd, int timeout_ms, struct exchange *got)
{
    struct client client = {.fd = fd};

    client_read_response(&client, false, timeout_ms, got);
    free(client.pending);
}

SERVER_TEST(sends_a_large_response_to_a_slow_reader_without_spinning)
{
    enum { PAUSE_MS = 600, SETTLE_MS = 100, MAX_WANTED_MS = 150 };
    static const char request[] = "GET /bytes/8000000 HTTP/1.1\r\nHost: a\r\n\r\n";
    struct server mine;
    struct exchange got;
    struct parsed_response r;
    struct cpu_use use;

    start_yours(&mine, NO_DELAY);
    int fd = connect_with_small_window(&mine, 16384);
    write_request(&mine, fd, request);
    /* 8 MB is more than the kernel buffers on both sides hold: the server's
     * sends soon find no room, and must wait for the reader. */
    pause_ms(SETTLE_MS);
    cpu_use_start(&mine, &use);
    pause_ms(PAUSE_MS - SETTLE_MS);
    cpu_use_stop(&mine, &use);
    read_response(fd, 3000, &got);
    close(fd);
    parse_response(got.bytes, got.length, &r);

    check(got.end == END_RESPONSE && r.status == 200,
          "A client asked for /bytes/8000000 and read nothing for %d ms, then everything.\n"
          "Expected: the whole response (8 MB of body).\nGot: status %d, %s.%s%s",
          PAUSE_MS, r.status, describe_end(&got), what_the_answer_shows(&got, &r, 200, false),
          said(&mine));
    long wrong = first_wrong_body_byte(&got, &r);
    check(wrong < 0,
          "A client asked for /bytes/8000000 and read it slowly. Body byte %ld is '%c', "
          "expected '%c' (the body is \"abc...z\" repeated): bytes were skipped or sent twice.%s"
          "%s",
          wrong, got.bytes[r.head_length + (size_t)wrong], 'a' + (char)(wrong % 26),
          LEARNER_WROTE_REQUEST_IO
              ? "\nWhen the client reads slowly, send() writes only what fits in the socket's "
                "buffer and returns that count: advance by it, not by what you asked to send "
                "(NOTES.md section 1.5)."
              : "",
          said(&mine));
    check(use.wanted_ms < MAX_WANTED_MS,
          "While a client read nothing of its 8 MB response for %d ms, your server wanted the "
          "CPU for %lld ms of the last %d (it ran %lld ms, and waited for a free core the "
          "rest); the reference wants it for about 1.\nIt asked again and again instead of "
          "waiting for room: send() with MSG_DONTWAIT fails at once with EAGAIN while the "
          "buffer is full; wait_writable() sleeps until there is room, or until the idle time "
          "runs out (NOTES.md section 1.5).%s",
          PAUSE_MS, use.wanted_ms, PAUSE_MS - SETTLE_MS, use.ran_ms, said(&mine));
    exchange_free(&got);
}

SERVER_TEST(closes_an_empty_connection_quietly)
{
    static const struct wire_case after[] = {
        {"a request after an empty connection", GET_HELLO, 0, 200},
    };
    struct server mine;
    struct exchange got;

    start_yours(&mine, WIRE_ARGS);
    /* ApacheBench opens one such connection: connect, then close. */
    close(connect_silently(&mine));
    expect_answer(&mine, &after[0], NULL, &got);
    exchange_free(&got);
    char *text = server_stderr(&mine);
    check(text[0] == '\0',
          "A client that connects and closes without a byte is normal (ApacheBench and "
          "browsers do it): close it quietly, with no log line. Your server printed on "
          "stderr:\n%s%s",
          text,
          LEARNER_WROTE_REQUEST_IO
              ? "\nrecv() returning 0 before any byte is that client's goodbye, not an error: "
                "HEAD_EMPTY (NOTES.md section 1.4)."
              : "");
    free(text);
}

/* ----------------------------------------------------------- shutdown */

void *exchange_in_background(void *argument)
{
    struct background_exchange *job = argument;
    exchange(job->port, GET_HELLO, strlen(GET_HELLO), NULL, 5000, &job->result);
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
    pause_ms(200); /* the request is now in its 500 ms of work */
    ask_to_stop(&mine);
    pthread_join(client, NULL);
    int status = wait_for_exit(&mine, 3000);
    parse_response(job.result.bytes, job.result.length, &r);
    if (r.status != 200 || !r.complete)
        fail_test("SIGTERM arrived 200 ms into a 500 ms request.\nExpected: the request still "
                  "gets its complete 200 response, then the server exits 0 (%s).\nGot: status "
                  "%d, %s.%s",
                  stop_section(), r.status, describe_end(&job.result), said(&mine));
    expect_clean_exit(&mine, status, 3000,
                      "SIGTERM arrived 200 ms into a 500 ms request, which was answered.");
    exchange_free(&job.result);
}

SERVER_TEST(closes_a_silent_connection_at_once_on_sigterm)
{
    struct server mine;
    int64_t elapsed;

    start_yours(&mine, NO_DELAY);
    int silent = connect_silently(&mine);
    pause_ms(200); /* the server now waits for this client's head */
    ask_to_stop(&mine);
    enum exchange_end end = wait_for_server_close(silent, 3000, &elapsed);
    int status = wait_for_exit(&mine, 2000);
    close(silent);
    check(end == END_CLOSED && elapsed < 1000,
          "A client connected and sent nothing (a browser's pre-opened connection does this). "
          "On SIGTERM the server should close it at once and exit 0, not wait out the 10 s idle "
          "timeout (%s).\nGot: %s after %lld ms.%s%s",
          stop_section(), end == END_CLOSED ? "closed" : "not closed", (long long)elapsed,
          LEARNER_WROTE_REQUEST_IO && end != END_CLOSED
              ? "\nWhile it waits for a head, read_request_head() looks at the stop flag at "
                "least every 100 ms: wait_for_input() does it for you, and says "
                "INPUT_STOPPED (NOTES.md section 1.4)."
              : "",
          said(&mine));
    expect_clean_exit(&mine, status, 2000,
                      "A client connected and sent nothing; then SIGTERM came, and the server "
                      "closed that connection.");
}

SERVER_TEST(frees_everything_by_the_time_it_exits)
{
    static const char *const requests[] = {
        GET_HELLO,
        "GET /bytes/100000 HTTP/1.1\r\nHost: a\r\n\r\n",
        "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n", /* no Host: 400 */
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", /* 413 */
    };
    struct server mine;
    struct exchange got;

    start_yours(&mine, NO_DELAY);
    for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++) {
        exchange(mine.port, requests[i], strlen(requests[i]), NULL, ANSWER_MS, &got);
        check(got.end == END_CLOSED && got.length > 0,
              "Before the leak check, a request went unanswered:\n  request: %s\nGot: %s.%s",
              printable(requests[i], strlen(requests[i]), 200), describe_end(&got), said(&mine));
        exchange_free(&got);
    }
    close(connect_silently(&mine)); /* an empty connection */
    pause_ms(100);
    ask_to_stop(&mine);
    expect_clean_exit(&mine, wait_for_exit(&mine, 3000), 3000,
                      "Your server answered five requests (a 200, a large 200, a HEAD, a 400 "
                      "and a 413) and an empty connection, then got SIGTERM.");
}
/* ==================== stage 5: the edge cases ==================== */

SERVER_TEST(drops_a_silent_client_after_the_idle_timeout)
{
    const char *const args[] = {"--delay-ms", "0", "--idle-ms", "300", NULL};
    static const struct wire_case after[] = {{"a request after the silent client", GET_HELLO, 0, 200}};
    struct server mine;
    struct exchange silent, got;

    start_yours(&mine, args);
    exchange(mine.port, "", 0, NULL, 3000, &silent);
    int64_t elapsed = silent.finished_ms - silent.started_ms;
    check(silent.end == END_CLOSED && silent.length == 0 && elapsed >= 200 && elapsed < 2000,
          "A client connected and sent nothing. With --idle-ms 300 the server should close it "
          "after about 300 ms, without a word: a client that sent nothing gets no response.\n"
          "Got: %s, after %lld ms.\n  received: %s%s%s",
          describe_end(&silent), (long long)elapsed, printable(silent.bytes, silent.length, 200),
          LEARNER_WROTE_REQUEST_IO && silent.length > 0
              ? "\nA client that sent nothing at all is HEAD_SILENT (closed quietly); 408 is "
                "for one that sent part of a head, HEAD_TIMED_OUT (NOTES.md section 1.4)."
          : LEARNER_WROTE_REQUEST_IO && elapsed < 200
              ? "\nIt was closed before the idle time: is --idle-ms (milliseconds) used as it "
                "is, from the start of the head? (NOTES.md section 1.4)"
          : LEARNER_WROTE_REQUEST_IO && silent.end == END_TIMED_OUT
              ? "\nThe connection was still open: read_request_head() gives up when idle_ms "
                "has passed without a complete head. Take the deadline once, monotonic_ms() + "
                "idle_ms, and wait for bytes with wait_for_input() until it (NOTES.md section "
                "1.4)."
              : "",
          said(&mine));
    exchange_free(&silent);
    expect_answer(&mine, &after[0], NULL, &got);
    exchange_free(&got);
}

SERVER_TEST(answers_408_to_a_partial_head_then_silence)
{
    const char *const args[] = {"--delay-ms", "0", "--idle-ms", "400", NULL};
    static const struct wire_case partial = {
        "a client sent part of a head, then nothing (RFC 9110 section 15.5.9)",
        "GET / HTTP/1.1\r\nHost: a\r\n", 0, 408};
    struct server mine, theirs;
    struct exchange got_mine, got_theirs;
    struct parsed_response r;

    start_yours(&mine, args);
    exchange(mine.port, partial.request, strlen(partial.request), NULL, 400 + ANSWER_MS,
             &got_mine);
    parse_response(got_mine.bytes, got_mine.length, &r);
    int64_t elapsed = got_mine.finished_ms - got_mine.started_ms;
    check(r.status == 408 && r.complete && got_mine.end == END_CLOSED && elapsed >= 250,
          "A client sent \"GET / HTTP/1.1\\r\\nHost: a\\r\\n\", part of a head, then nothing. "
          "With --idle-ms 400, expected: after about 400 ms, a 408 (Request Timeout), then "
          "the connection closed.\nGot: status %d, %s, after %lld ms.\n  response: %s%s%s",
          r.status, describe_end(&got_mine), (long long)elapsed,
          printable(got_mine.bytes, got_mine.length, 300),
          LEARNER_WROTE_REQUEST_IO && got_mine.length == 0 && got_mine.end == END_CLOSED
              ? "\nThe connection was closed without a response: part of a head had come, so "
                "this is HEAD_TIMED_OUT (answered 408), not HEAD_SILENT (NOTES.md section 1.4)."
              : "",
          said(&mine));
    start_reference(&theirs, args);
    expect_answer_within(&theirs, &partial, NULL, 400 + ANSWER_MS, 400 + ANSWER_MS, &got_theirs);
    expect_same_bytes(&got_mine, &got_theirs, &partial);
    exchange_free(&got_mine);
    exchange_free(&got_theirs);
}

SERVER_TEST(answers_408_to_a_head_trickled_past_the_idle_time)
{
    const char *const args[] = {"--delay-ms", "0", "--idle-ms", "500", NULL};
    static const char slow_head[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: one byte every 100 ms, "
                                    "for longer than the idle time\r\n\r\n";
    struct server mine;
    struct exchange got;
    struct parsed_response r;

    start_yours(&mine, args);
    int64_t started = now_ms();
    trickle_request(&mine, slow_head, 100, 3000, &got);
    int64_t elapsed = now_ms() - started;
    parse_response(got.bytes, got.length, &r);
    check(r.status == 408 && elapsed < 2000,
          "A client sent its head one byte every 100 ms (%zu bytes: 9 s in all). With "
          "--idle-ms 500, expected: a 408 after about 500 ms: the idle time bounds the whole "
          "head, or a client could hold the server for ever by trickling.\nGot: status %d, "
          "%s, after %lld ms.%s%s",
          strlen(slow_head), r.status, describe_end(&got), (long long)elapsed,
          LEARNER_WROTE_REQUEST_IO && elapsed >= 2000
              ? "\nThe bytes kept coming, so the server kept waiting: the deadline is set "
                "once, before the first read (monotonic_ms() + idle_ms), not again after "
                "every read (NOTES.md section 1.4)."
              : "",
          said(&mine));
    exchange_free(&got);
}

SERVER_TEST(gives_up_on_a_client_that_never_reads)
{
    enum { IDLE_MS = 500, LIMIT_MS = 2500 };
    const char *const args[] = {"--delay-ms", "0", "--idle-ms", "500", NULL};
    static const char big[] = "GET /bytes/16000000 HTTP/1.1\r\nHost: a\r\n\r\n";
    struct server mine;
    struct exchange got;
    struct parsed_response r;

    start_yours(&mine, args);
    int stalled = connect_with_small_window(&mine, 4096);
    write_request(&mine, stalled, big);
    pause_ms(100); /* its response now fills the buffers */
    struct cpu_use use;
    cpu_use_start(&mine, &use);
    exchange(mine.port, GET_HELLO, strlen(GET_HELLO), NULL, LIMIT_MS, &got);
    cpu_use_stop(&mine, &use);
    close(stalled);
    parse_response(got.bytes, got.length, &r);
    int64_t elapsed = got.finished_ms - got.started_ms;
    check(r.status == 200 && r.complete && elapsed < LIMIT_MS,
          "A client asked for /bytes/16000000 and never read a byte (its receive window is 4 "
          "KiB). 100 ms later another client sent GET /.\nExpected, with --idle-ms %d: once no "
          "byte of the first response has left for %d ms, the server gives up on that client, "
          "and the second gets its 200 within %d ms.\nGot: status %d, %s, after %lld ms; "
          "meanwhile your server wanted the CPU for %lld ms.%s%s",
          IDLE_MS, IDLE_MS, LIMIT_MS, r.status, describe_end(&got), (long long)elapsed,
          use.wanted_ms,
          !LEARNER_WROTE_REQUEST_IO || r.status == 200 ? ""
          : use.wanted_ms > LIMIT_MS / 2
              ? "\nIt spun: send() failed with EAGAIN (no room) and was called again at once. "
                "Wait for room with wait_writable(fd, idle_ms), and give up (return false) "
                "when it returns 0: no room came within the idle time (NOTES.md section 1.5)."
              : "\nIt waited for the reader without a limit. wait_writable(fd, idle_ms) returns "
                "0 when no room came within the idle time: give up then, return false "
                "(NOTES.md section 1.5).",
          said(&mine));
    exchange_free(&got);
}

/* A connection that asked for a large response, read a little of it, then
 * reset (a close with SO_LINGER 0 sends RST instead of FIN). */
static void reset_mid_response(struct server *server)
{
    static const char big[] = "GET /bytes/16000000 HTTP/1.1\r\nHost: a\r\n\r\n";
    struct linger abort_on_close = {.l_onoff = 1, .l_linger = 0};
    char chunk[65536];
    int fd = connect_with_small_window(server, 16384);

    write_request(server, fd, big);
    struct pollfd entry = {.fd = fd, .events = POLLIN};
    if (poll(&entry, 1, ANSWER_MS) > 0 && recv(fd, chunk, sizeof chunk, 0) < 0)
        fail_test("A client asked for /bytes/16000000.\nExpected: the response's first bytes.\n"
                  "Got: recv() failed: %s, before any byte of the response.%s",
                  strerror(errno), said(server));
    pause_ms(50);
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
    close(fd);
}

SERVER_TEST(survives_a_client_that_resets_mid_response)
{
    static const struct wire_case after = {"a request after a client reset mid-response",
                                           GET_HELLO, 0, 200};
    struct server mine;
    struct exchange got;
    struct parsed_response r;

    start_yours(&mine, NO_DELAY);
    reset_mid_response(&mine);
    pause_ms(100);
    struct cpu_use use;
    cpu_use_start(&mine, &use);
    exchange(mine.port, after.request, strlen(after.request), NULL, ANSWER_MS, &got);
    cpu_use_stop(&mine, &use);
    parse_response(got.bytes, got.length, &r);
    check(r.status == 200 && r.complete && got.end == END_CLOSED,
          "A client asked for /bytes/16000000, read 64 KiB, then reset the connection. 100 ms "
          "later another client sent GET /.\nExpected: the server drops the first (send() "
          "fails with EPIPE or ECONNRESET: it is gone, give up) and answers the second at "
          "once.\nGot: status %d, %s; meanwhile your server wanted the CPU for %lld ms.%s%s",
          r.status, describe_end(&got), use.wanted_ms,
          LEARNER_WROTE_REQUEST_IO && r.status == 0 && server_running(&mine) &&
                  use.wanted_ms > ANSWER_MS / 2
              ? "\nIt kept trying to send to the vanished client: any error of send() other "
                "than EAGAIN and EINTR ends the response (return false) (NOTES.md section 1.5)."
              : "",
          said(&mine));
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
        check(run_program(argv, 5000, &run), "could not start %s", argv[0]);
        check(run.exit_code == 1 && count_lines(run.err) == 1 && strstr(run.err, "in use"),
              "%s --port %s, with that port taken, should print one line saying the port is in "
              "use and exit 1.\nGot exit code %d and stderr:\n%s",
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
        check(run_program(argv, 5000, &run), "could not start %s", argv[0]);
        check(run.exit_code == 2 && strstr(run.err, "usage:") != NULL,
              "%s %s %s should print the usage on stderr and exit 2.\nGot exit code %d and "
              "stderr:\n%s", short_path(argv[0]), bad[i][0], bad[i][1] ? bad[i][1] : "",
              run.exit_code, run.err);
        program_run_free(&run);
    }
    const char *const help[] = {yours(), "--help", NULL};
    check(run_program(help, 5000, &run), "could not start %s", help[0]);
    check(run.exit_code == 0 && strstr(run.out, "usage:") && strstr(run.out, "--delay-ms"),
          "--help should print the usage on stdout and exit 0; got exit %d, stdout:\n%s",
          run.exit_code, run.out);
    program_run_free(&run);
}
