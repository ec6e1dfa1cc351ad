/* Step 3: the epoll event loop. One thread serves every client at once.
 *
 * No call here ever blocks: every socket is non-blocking, and the one place
 * the thread waits is epoll_pwait(), which wakes it for whatever happened
 * first on any socket, or for the earliest deadline. The heavy work of a
 * request is not a sleep but a deadline: while one client "works", the loop
 * serves all the others.
 *
 * A connection lives as a small state machine (enum connection_state).
 * accept() makes it READING; then:
 *
 *   READING --head complete---------------> WAITING  (the heavy work's deadline)
 *   READING --an error, or --delay-ms 0---> WRITING
 *   WAITING --delay passed----------------> WRITING
 *   WRITING --all sent, keep-alive--------> READING  (the next request)
 *   WRITING --all sent, close-------------> CLOSING  if the client may still send,
 *                                           CLOSED   otherwise
 *   CLOSING --client closed, or time up---> CLOSED   (64 KiB or 500 ms at most)
 *   any     --EOF, reset, idle timeout----> CLOSED   (freed after the batch)
 *
 * You write the six functions of server.c, each one event of a connection's
 * life (NOTES.md sections 3.4 to 3.9). The plumbing they call is given:
 * connection.c for one connection, event_loop.c for the loop's deadlines,
 * running out of descriptors, and the graceful shutdown. Read this header
 * first, then connection.c. */
#ifndef STEP3_EVENT_LOOP_H
#define STEP3_EVENT_LOOP_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "deadline_queue.h"
#include "flags.h"
#include "http.h"
#include "listener.h"
#include "response.h"

enum {
    MAX_EVENTS = 256,           /* events taken from one epoll_pwait */
    LINGER_MS = 500,            /* a lingering close waits this long at most... */
    LINGER_LIMIT = 64 * 1024,   /* ...and discards this many bytes at most */
    LOGGED_REQUEST_LINE_MAX = 200,
};

enum connection_state {
    READING, /* waiting for a request head or reading one (an idle keep-alive
              * connection too): watches EPOLLIN; idle deadline */
    WAITING, /* the heavy work: watches nothing; deadline in the delay queue */
    WRITING, /* sending the response: watches EPOLLOUT only while the socket is
              * full, then with an idle deadline (a stalled client) */
    CLOSING, /* lingering close: our side is shut, what the client still sends
              * is discarded: watches EPOLLIN; linger deadline */
    CLOSED,  /* closed during this batch of events; freed after it */
};

/* The response under way on a connection, from the moment its request is
 * complete until its last byte is sent. Allocated only for that time. */
struct reply {
    struct response response; /* what to answer (common/response.h) */
    struct outgoing outgoing; /* which of its bytes are sent (common/response.h) */
    int64_t started_ms;       /* when the request was complete, for the log */
    char request_line[LOGGED_REQUEST_LINE_MAX + 1]; /* for the log */
};

/* One client. Kept small: ten thousand idle ones must fit in a few MB. */
struct connection {
    int fd;
    enum connection_state state;
    uint32_t watched;         /* the epoll events asked for now: EPOLLIN, EPOLLOUT or 0 */
    uint32_t input_length;    /* bytes received and not yet consumed */
    char *input;              /* HTTP_HEAD_LIMIT bytes, or NULL while input_length is 0 */
    struct reply *reply;      /* the response under way, or NULL */
    struct deadline deadline; /* in the queue its state names (see above), or none */
    struct connection *next_closed; /* CLOSED: the loop's list of connections to free */
    uint32_t drained;         /* CLOSING: bytes discarded so far */
    bool keep_alive;          /* after this response, read the next request */
    bool refused_body;        /* the request had a body, which is never read */
    bool served;              /* at least one response was sent on it */
};

struct event_loop {
    int epoll_fd;
    int listen_fd;            /* -1 once the shutdown has begun */
    const struct server_config *config;
    sigset_t wait_mask;       /* epoll_pwait's mask: lets SIGINT and SIGTERM in */
    /* Every open connection is in exactly one of these queues, by its state.
     * All deadlines of a queue have the same duration, so each queue is a
     * plain FIFO (common/deadline_queue.h). */
    struct deadline_queue delays; /* WAITING: --delay-ms */
    struct deadline_queue idle;   /* READING, and WRITING to a full socket: --idle-ms */
    struct deadline_queue lingers;/* CLOSING: LINGER_MS */
    struct connection *closed;    /* closed during this batch; freed after it */
    int connection_count;         /* open connections (CLOSED ones excluded) */
    struct accept_pause accept_pause; /* out of descriptors (common/listener.h) */
    bool stopping;                /* SIGINT or SIGTERM: the graceful shutdown has begun */
};

/* ---- You write these, in server.c: one event of a connection each. ---- */

/* The listener is readable: accepts every waiting client (NOTES.md 3.4). */
void accept_pending_connections(struct event_loop *loop);

/* A READING connection is readable: one recv(), then start_next_request() (3.5). */
void on_readable(struct event_loop *loop, struct connection *conn);

/* Parses what is buffered; a complete head starts its response: a deadline
 * for the heavy work, or writing at once (3.6). */
void start_next_request(struct event_loop *loop, struct connection *conn);

/* The delay of a WAITING connection has passed (or there was none): starts
 * sending the response (3.7). */
void on_delay_passed(struct event_loop *loop, struct connection *conn);

/* A WRITING connection can take more bytes: sends what the socket accepts;
 * once all is sent, the next request, or the close (3.8). */
void on_writable(struct event_loop *loop, struct connection *conn);

/* Waits for events and deadlines and hands each to its handler, until a
 * SIGINT or SIGTERM has been served out (3.9). */
void run_event_loop(struct event_loop *loop);

/* ---- Given, in connection.c: the plumbing of one connection. ---- */

/* For a freshly accepted, non-blocking fd: a new READING connection, watched
 * for input (EPOLLIN). On failure, logs, closes fd and returns NULL. */
struct connection *open_connection(struct event_loop *loop, int fd);

/* Asks epoll for `events` on this connection (EPOLLIN, EPOLLOUT or 0 for
 * nothing), calling epoll_ctl() only if that changes what is watched. */
void watch(struct event_loop *loop, struct connection *conn, uint32_t events);

/* (Re)sets the connection's one deadline in `queue`: &loop->delays,
 * &loop->idle or &loop->lingers. It leaves the queue it was in. */
void set_deadline(struct connection *conn, struct deadline_queue *queue);

/* Where the next recv() may write, and how much room there is (*room > 0).
 * Allocates the input buffer if the connection has none. Returns NULL when
 * out of memory (logged). */
char *input_space(struct connection *conn, size_t *room);

/* Frees the input buffer if it holds nothing: an idle connection keeps none. */
void release_empty_input(struct connection *conn);

/* Drops the first `count` bytes of the input (a request head that has been
 * answered); what follows moves to the front. */
void consume_input(struct connection *conn, size_t count);

/* Allocates conn->reply for the request just parsed (NULL when there is no
 * request line to log) and returns its response for you to fill in. Copies
 * the request line for the log now: `request` points into the input buffer.
 * Returns NULL when out of memory (logged). */
struct response *begin_response(struct connection *conn, const struct http_request *request);

/* Makes the head of conn->reply's response (its Date is now) and starts
 * the cursor, conn->reply->outgoing, at its first byte. */
void start_sending(struct connection *conn);

/* After the last byte: logs the request and frees conn->reply. */
void end_response(struct connection *conn);

/* After a response that closes the connection: whether the client may still
 * be sending (a refused body, a bad head, pipelined bytes), so that a plain
 * close could reset the connection under the response (the same rule as
 * step 1's, in common/blocking_connection.c). */
bool client_may_still_send(const struct connection *conn);

/* Closes at once: the fd (which also takes it out of epoll), the deadline,
 * the buffers. A reply still under way is logged as failed (status 0). The
 * struct becomes CLOSED and is freed only after this batch of events, since
 * a later event of the batch may still point to it. */
void close_connection(struct event_loop *loop, struct connection *conn);

/* The lingering close (like common/socket_io.c's close_gracefully(), but
 * without blocking): shuts our side, then CLOSING discards what the client
 * still sends, until it closes, LINGER_LIMIT bytes, or LINGER_MS. */
void linger_then_close(struct event_loop *loop, struct connection *conn);

/* A CLOSING connection is readable: discards, and closes when it is time. */
void discard_lingering_input(struct event_loop *loop, struct connection *conn);

/* ---- Given, in event_loop.c: the loop's own plumbing. ---- */

/* Makes the loop: epoll, the listener watched for EPOLLIN (its epoll data
 * is NULL; a connection's is its struct connection), the deadline queues,
 * the stop signals blocked except during epoll_pwait(). NULL on failure. */
struct event_loop *event_loop_create(int listen_fd, const struct server_config *config);

/* Closes whatever is still open (the listener too) and frees everything. */
void event_loop_free(struct event_loop *loop);

/* The earliest deadline of all (monotonic_ms() time), or -1 if there is none. */
int64_t earliest_deadline_ms(const struct event_loop *loop);

/* Handles every deadline that is due: on_delay_passed() for a delay; for an
 * idle deadline, a quiet close (nothing received, or a stalled write) or a
 * 408 (part of a head); for a linger, the close; and resumes accepting. */
void fire_due_deadlines(struct event_loop *loop);

/* accept() failed with EMFILE or ENFILE. Closes the oldest idle keep-alive
 * connection if there is one (the next round then accepts), otherwise stops
 * watching the listener for ACCEPT_PAUSE_MS, so that the loop never spins
 * on a listener that stays readable. */
void make_room_for_a_connection(struct event_loop *loop);

/* SIGINT or SIGTERM: stops accepting, closes the connections that hold no
 * complete request, and lets the others finish their response, then close. */
void begin_graceful_shutdown(struct event_loop *loop);

/* Frees the connections closed during the batch just handled. */
void free_closed_connections(struct event_loop *loop);

#endif
