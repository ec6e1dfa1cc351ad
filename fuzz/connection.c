/* Fuzz target connection: step 3's connection state machine (the
 * reference's own code, solutions/step3_epoll/) fed a byte stream in
 * pieces the fuzzer chooses, pipelined requests included.
 *
 * One client talks to one server connection over a Unix socketpair. The
 * harness plays the event loop without blocking: it takes the loop's ready
 * events with epoll_wait(..., 0) and hands each to the handler that
 * server.c's dispatch() would (on_readable, on_writable,
 * discard_lingering_input, close_connection), fires the due deadlines, frees
 * the closed connections, and reads what the server sent, until nothing
 * moves. The heavy work (--delay-ms) is a deadline that is due at once, so
 * that the WAITING state runs without waiting. At the end the client
 * half-closes, or the server gets a graceful shutdown (as on SIGTERM) and
 * its lingering closes run out.
 *
 * Checked, for every input (besides ASan, UBSan and LeakSanitizer, which
 * libFuzzer runs after each input):
 *   - the client receives the same bytes (each Date value masked), ending
 *     the same way (EOF or reset), whether the stream came at once or in
 *     the fuzzer's pieces;
 *   - what it receives is a sequence of whole responses, each with Date and
 *     Content-Length;
 *   - the connection is closed in the end, its descriptor too; nothing is
 *     logged as an error; the loop settles (no busy loop).
 *
 * Input layout: byte 0 holds options (bit 0: heavy work on; bit 1: the
 * client half-closes at the end, else a graceful shutdown; bit 2: a small
 * server send buffer, so that responses leave in many partial writes; bit
 * 3: the client reads at most 512 bytes at a time; bit 4: the client sends
 * each next piece after one turn of the loop, so that it arrives while a
 * response is being made, instead of once the server has settled). Byte 1
 * says how many cuts (0 to 31), then two bytes per cut (offsets,
 * little-endian, modulo the stream's length + 1), then the stream. A stream that asks for more
 * than 1 MiB from /bytes/N is skipped: it would only be slow (the hostile
 * suite sends the large ones).
 *
 * Run it: ./workbook fuzz --target connection [--seconds N]
 * Reproduce a finding: build-fuzz/fuzz_connection build-fuzz/findings/connection/crash-...
 * A finding becomes a test of the hostile suite (tests/hostile_test.c) or,
 * for the parser, of tests/common_test.c. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "event_loop.h"
#include "fuzz_checks.h"

enum {
    OPTION_HEAVY_WORK = 1,
    OPTION_HALF_CLOSE = 2,
    OPTION_SMALL_SEND_BUFFER = 4,
    OPTION_SLOW_READER = 8,
    OPTION_EAGER_CLIENT = 16,
    MAX_CUTS = 32,
    SLOW_READ_BYTES = 512,
    MAX_ROUNDS = 200000,
    LARGEST_BODY = 1 << 20,
};

/* What the client saw. */
enum ending { ENDED_EOF, ENDED_RESET };
struct transcript {
    char *bytes;
    size_t length;
    size_t capacity;
    enum ending ending;
    bool ended;
};

struct harness {
    struct event_loop *loop;
    struct server_config config;
    int client_fd;
    int server_fd;
    unsigned options;
    struct transcript seen;
};

/* ------------------------------------------------------------ the client */

static void keep(struct transcript *seen, const char *data, size_t length)
{
    if (seen->length + length > seen->capacity) {
        seen->capacity = (seen->length + length) * 2;
        seen->bytes = realloc(seen->bytes, seen->capacity);
        if (seen->bytes == NULL)
            abort();
    }
    memcpy(seen->bytes + seen->length, data, length);
    seen->length += length;
}

/* Reads what has arrived (at most SLOW_READ_BYTES for a slow reader).
 * Returns how many bytes came. */
static size_t read_output(struct harness *h)
{
    static char chunk[65536]; /* static: ASan would poison 64 KiB of stack per call */
    size_t total = 0;
    size_t want = h->options & OPTION_SLOW_READER ? SLOW_READ_BYTES : sizeof chunk;

    while (!h->seen.ended) {
        ssize_t got = recv(h->client_fd, chunk, want, MSG_DONTWAIT);
        if (got > 0) {
            keep(&h->seen, chunk, (size_t)got);
            total += (size_t)got;
            if (h->options & OPTION_SLOW_READER)
                break;
        } else if (got == 0 || errno == ECONNRESET || errno == EPIPE) {
            h->seen.ended = true;
            h->seen.ending = got == 0 ? ENDED_EOF : ENDED_RESET;
        } else if (errno == EAGAIN) {
            break;
        } else if (errno != EINTR) {
            fuzz_fail("client recv: %s", strerror(errno));
        }
    }
    return total;
}

/* ------------------------------------------------------------ the server */

/* What server.c's dispatch() does with one event (it is static there). */
static void dispatch(struct event_loop *loop, const struct epoll_event *event)
{
    struct connection *conn = event->data.ptr;

    if (conn == NULL)
        fuzz_fail("the listener became readable: nobody connects in this harness");
    else if (conn->state == CLOSED)
        return;
    else if (conn->state == CLOSING)
        discard_lingering_input(loop, conn); /* drains to EOF even on EPOLLHUP */
    else if (event->events & (EPOLLHUP | EPOLLERR))
        close_connection(loop, conn);
    else if (conn->state == READING)
        on_readable(loop, conn);
    else if (conn->state == WRITING)
        on_writable(loop, conn);
}

/* Runs the loop's handlers and the client's reads until nothing moves, or
 * for one round only. */
static void pump_rounds(struct harness *h, int rounds)
{
    struct epoll_event events[MAX_EVENTS];

    for (int round = 0; round < rounds; round++) {
        size_t got = read_output(h);
        int ready = epoll_wait(h->loop->epoll_fd, events, MAX_EVENTS, 0);
        if (ready < 0 && errno != EINTR)
            fuzz_fail("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < ready; i++)
            dispatch(h->loop, &events[i]);
        bool delay_due = deadline_queue_first(&h->loop->delays) != NULL;
        fire_due_deadlines(h->loop);
        free_closed_connections(h->loop);
        if (ready <= 0 && got == 0 && !delay_due)
            return;
    }
    if (rounds == MAX_ROUNDS)
        fuzz_fail("the connection did not settle in %d rounds: a busy loop?", MAX_ROUNDS);
}

static void pump(struct harness *h)
{
    pump_rounds(h, MAX_ROUNDS);
}

/* The lingering closes' 500 ms, run out at once. */
static void expire_lingers(struct event_loop *loop)
{
    struct deadline *due;

    while ((due = deadline_queue_pop_due(&loop->lingers, INT64_MAX)) != NULL)
        close_connection(loop, (struct connection *)((char *)due -
                                                      offsetof(struct connection, deadline)));
    free_closed_connections(loop);
}

static void open_server(struct harness *h, int server_fd)
{
    /* A listener nobody connects to: an eventfd that never becomes readable. */
    int listener = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

    if (listener < 0)
        fuzz_fail("eventfd: %s", strerror(errno));
    h->config = (struct server_config){.delay_ms = h->options & OPTION_HEAVY_WORK ? 1 : 0,
                                       .idle_ms = 60000, .quiet = true};
    h->loop = event_loop_create(listener, &h->config);
    if (h->loop == NULL)
        fuzz_fail("event_loop_create failed");
    /* It blocked SIGINT and SIGTERM for epoll_pwait(); libFuzzer wants them. */
    pthread_sigmask(SIG_SETMASK, &h->loop->wait_mask, NULL);
    /* The heavy work's deadline is due as soon as it is set. */
    h->loop->delays.duration_ms = -1;
    struct connection *conn = open_connection(h->loop, server_fd);
    if (conn == NULL)
        fuzz_fail("open_connection failed");
    set_deadline(conn, &h->loop->idle); /* as accept_pending_connections() does */
}

/* ------------------------------------------------------------ one run */

/* Writes stream[*sent..up_to), pumping whenever the socket is full. */
static void deliver(struct harness *h, const uint8_t *stream, size_t *sent, size_t up_to)
{
    while (*sent < up_to) {
        ssize_t written = send(h->client_fd, stream + *sent, up_to - *sent,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
        if (written > 0) {
            *sent += (size_t)written;
        } else if (written < 0 && (errno == EPIPE || errno == ECONNRESET)) {
            *sent = up_to; /* the server closed: the rest is never read */
            return;
        } else if (written < 0 && errno == EAGAIN) {
            pump(h);
        } else if (errno != EINTR) {
            fuzz_fail("client send: %s", strerror(errno));
        }
    }
    /* An eager client sends its next piece after one turn of the loop: it
     * arrives while a response is being made (the heavy work's deadline is
     * due only at the next turn). */
    pump_rounds(h, h->options & OPTION_EAGER_CLIENT ? 1 : MAX_ROUNDS);
}

static void finish(struct harness *h)
{
    if (h->options & OPTION_HALF_CLOSE)
        shutdown(h->client_fd, SHUT_WR);
    pump(h);
    if (h->loop->connection_count > 0) {
        begin_graceful_shutdown(h->loop); /* closes the eventfd "listener" */
        pump(h);
        expire_lingers(h->loop);
        pump(h);
    }
    if (h->loop->connection_count != 0)
        fuzz_fail("%d connection(s) still open after a graceful shutdown",
                  h->loop->connection_count);
    int epoll_fd = h->loop->epoll_fd;
    event_loop_free(h->loop);
    if (fcntl(h->server_fd, F_GETFD) != -1 || fcntl(epoll_fd, F_GETFD) != -1)
        fuzz_fail("a descriptor of the server is still open");
    while (!h->seen.ended)
        if (read_output(h) == 0 && !h->seen.ended)
            fuzz_fail("no EOF after the server closed");
    close(h->client_fd);
}

static void run(const uint8_t *stream, const size_t *arrivals, int count, unsigned options,
                struct transcript *seen)
{
    struct harness h = {.options = options};
    int pair[2];
    int small = 4096;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0)
        fuzz_fail("socketpair: %s", strerror(errno));
    h.server_fd = pair[0];
    h.client_fd = pair[1];
    if (options & OPTION_SMALL_SEND_BUFFER)
        setsockopt(h.server_fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    open_server(&h, h.server_fd);
    size_t sent = 0;
    for (int i = 0; i < count; i++)
        deliver(&h, stream, &sent, arrivals[i]);
    finish(&h);
    *seen = h.seen;
}

/* ------------------------------------------------------------ checks */

/* Each "Date: " value (29 characters, IMF-fixdate) replaced by x's. */
static void mask_dates(struct transcript *seen)
{
    static const char name[] = "\r\nDate: ";

    if (seen->length == 0)
        return;
    char *at = seen->bytes;
    char *end = seen->bytes + seen->length;

    while (at != NULL && (at = memmem(at, (size_t)(end - at), name, sizeof name - 1)) != NULL) {
        at += sizeof name - 1;
        for (int i = 0; i < 29 && at < end; i++)
            *at++ = 'x';
    }
}

/* The bytes are whole responses, one after another, each with a Date and a
 * Content-Length whose body follows in full. */
static void check_responses(const struct transcript *seen)
{
    size_t offset = 0;

    while (offset < seen->length) {
        const char *start = seen->bytes + offset;
        size_t left = seen->length - offset;
        const char *blank = memmem(start, left, "\r\n\r\n", 4);
        if (left < 12 || memcmp(start, "HTTP/1.1 ", 9) != 0 || blank == NULL)
            fuzz_fail("received bytes at offset %zu are not a whole response head", offset);
        size_t head = (size_t)(blank - start) + 4;
        const char *length_field = memmem(start, head, "\r\nContent-Length: ", 18);
        if (length_field == NULL || memmem(start, head, "\r\nDate: ", 8) == NULL)
            fuzz_fail("a response without Date or Content-Length at offset %zu", offset);
        unsigned long long body = strtoull(length_field + 18, NULL, 10);
        /* A HEAD's response has no body; which requests were HEADs is not
         * known here, but no body ("Hello", "abc...", "400 ...") starts
         * like a response. */
        bool head_only = left == head || (left - head >= 9 &&
                                          memcmp(start + head, "HTTP/1.1 ", 9) == 0);
        if (!head_only && head + body > left)
            fuzz_fail("a response of %llu body bytes cut short at %zu", body, left - head);
        offset += head + (head_only ? 0 : body);
    }
}

static int compare_offsets(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* Whether the stream asks /bytes/N for more than LARGEST_BODY. */
static bool asks_for_a_large_body(const uint8_t *stream, size_t length)
{
    static const char prefix[] = "/bytes/";
    const uint8_t *at = stream, *end = stream + length;

    while ((at = memmem(at, (size_t)(end - at), prefix, sizeof prefix - 1)) != NULL) {
        uint64_t value = 0;
        at += sizeof prefix - 1;
        for (int digits = 0; at < end && *at >= '0' && *at <= '9' && digits < 12; digits++)
            value = value * 10 + (uint64_t)(*at++ - '0');
        if (value > LARGEST_BODY)
            return true;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned options = data[0];
    size_t cuts = data[1] % MAX_CUTS;
    size_t header = 2 + 2 * cuts;
    if (header > size)
        return 0;
    const uint8_t *stream = data + header;
    size_t length = size - header;
    if (asks_for_a_large_body(stream, length))
        return -1; /* not worth keeping in the corpus */

    size_t arrivals[MAX_CUTS + 1];
    for (size_t i = 0; i < cuts; i++)
        arrivals[i] = ((size_t)data[2 + 2 * i] | (size_t)data[3 + 2 * i] << 8) % (length + 1);
    qsort(arrivals, cuts, sizeof arrivals[0], compare_offsets);
    arrivals[cuts] = length;

    struct transcript at_once, in_pieces;
    run(stream, &length, 1, options, &at_once);
    run(stream, arrivals, (int)cuts + 1, options, &in_pieces);
    mask_dates(&at_once);
    mask_dates(&in_pieces);
    check_responses(&at_once);
    if (at_once.length != in_pieces.length ||
        (at_once.length > 0 && memcmp(at_once.bytes, in_pieces.bytes, at_once.length) != 0) ||
        at_once.ending != in_pieces.ending)
        fuzz_fail("the stream at once gave %zu bytes then %s; in %zu pieces, %zu bytes then %s",
                  at_once.length, at_once.ending == ENDED_EOF ? "EOF" : "a reset", cuts + 1,
                  in_pieces.length, in_pieces.ending == ENDED_EOF ? "EOF" : "a reset");
    free(at_once.bytes);
    free(in_pieces.bytes);
    return 0;
}
