/* Step 5: step 3's server, written like step 1's. Read coroutine.h first.
 *
 * Step 3 serves every client at once on one thread, but a connection's life
 * is cut into events (on_readable, on_delay_passed, on_writable...), and
 * what a request needs between two events must be kept by hand in struct
 * connection. Here each connection runs as a coroutine, serve_connection(),
 * which reads top to bottom like step 1's code: read a head, sleep through
 * the delay, send the response, again while the connection stays open. It
 * only looks blocking. Wherever step 1 blocked, it calls wait_for(), which
 * asks epoll to watch its socket and yields to the loop; the loop serves
 * everybody else and resumes it when its socket is ready or its deadline
 * has come. Its locals and its place in the code are kept on its own stack
 * meanwhile.
 *
 *   the loop (event_loop.c, given)          the connection's coroutine
 *   accept, coroutine_create, resume ---->  read_request(): recv ... EAGAIN
 *                                           wait_for(conn, EPOLLIN): yield
 *   epoll_pwait ... EPOLLIN for conn  ----> recv: a whole head
 *                                           set_deadline(delays), wait_for(conn, 0)
 *   ...the delay's deadline has come  ----> send_whole_response(), read_request()...
 *
 * You write the three functions of handler.c (NOTES.md sections 5.8 to
 * 5.10). connection.c gives what they call; event_loop.c gives the loop. */
#ifndef STEP5_SERVER_H
#define STEP5_SERVER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "coroutine.h"
#include "deadline_queue.h"
#include "flags.h"
#include "http.h"
#include "listener.h"
#include "request_io.h" /* enum head_status: how reading a head ended, as in step 1 */
#include "response.h"

enum {
    MAX_EVENTS = 256,           /* events taken from one epoll_pwait */
    LINGER_MS = 500,            /* a lingering close waits this long at most... */
    LINGER_LIMIT = 64 * 1024,   /* ...and discards this many bytes at most */
    LOGGED_REQUEST_LINE_MAX = 200,
};

/* Why the loop resumed a coroutine that waits (wait_for() returns it). */
enum wake {
    WOKEN_BY_SOCKET,   /* epoll reported an event it watches (or an error) */
    WOKEN_BY_DEADLINE, /* its deadline came first */
    WOKEN_TO_STOP,     /* the server is stopping, and it was waiting for a request */
};

/* What a connection has received and not yet answered: a head, perhaps a
 * part of one, and any pipelined requests after it. The bytes exist only
 * while some wait in them: an idle connection holds none. */
struct input {
    char *bytes;        /* HTTP_HEAD_LIMIT bytes, or NULL while length is 0 */
    size_t length;      /* bytes received and not yet consumed */
    size_t head_length; /* HEAD_COMPLETE: the head's length, at the start */
};

struct event_loop;

/* One client, and the coroutine that serves it. */
struct connection {
    int fd;                   /* -1 once closed */
    struct event_loop *loop;
    struct coroutine coroutine; /* runs serve_connection(); stopped where it waits */
    uint32_t watched;         /* the epoll events asked for now: EPOLLIN, EPOLLOUT or 0 */
    bool in_epoll;            /* false once the loop stopped watching a failed socket */
    enum wake woken_by;       /* set by the loop before it resumes the coroutine */
    struct deadline deadline; /* at most one: in loop->idle, loop->delays or loop->lingers */
    const struct input *input;/* the coroutine's input (for make_room_for_a_connection) */
    bool served;              /* at least one response was sent whole */
    bool refused_body;        /* the last request had a body, which is never read */
    bool finished;            /* its coroutine has finished: freed after this batch */
    struct connection *next_finished; /* the loop's list of those */
};

struct event_loop {
    int epoll_fd;
    int listen_fd;            /* -1 once the shutdown has begun */
    const struct server_config *config;
    sigset_t wait_mask;       /* epoll_pwait's mask: lets SIGINT and SIGTERM in */
    /* A waiting connection's deadline is in one of these. All deadlines of a
     * queue have the same duration, so each is a plain FIFO, as in step 3. */
    struct deadline_queue delays; /* sleeping through --delay-ms */
    struct deadline_queue idle;   /* waiting for a head, or for room to send: --idle-ms */
    struct deadline_queue lingers;/* the lingering close: LINGER_MS */
    struct connection *finished;  /* finished during this batch; freed after it */
    int connection_count;         /* connections whose coroutine has not finished */
    struct accept_pause accept_pause; /* out of descriptors (common/listener.h) */
    bool stopping;                /* SIGINT or SIGTERM: the graceful shutdown has begun */
};

/* ---- You write these, in handler.c. ---- */

/* Waits, without blocking the thread, for `events` on the connection's
 * socket (EPOLLIN, EPOLLOUT; 0 for none: then only the deadline wakes it):
 * asks epoll to watch for exactly those, and yields to the loop. The caller
 * has set the deadline (set_deadline()). Returns why the loop resumed it.
 * (NOTES.md section 5.8.) */
enum wake wait_for(struct connection *conn, uint32_t events);

/* Step 1's read_request_head(), on a coroutine: receives until input holds
 * a complete head, however many reads that takes, within --idle-ms of
 * starting, and parses it into *request. Waits with wait_for() where step 1
 * blocked. Bytes after the head (pipelined requests) stay in input. (5.9.) */
enum head_status read_request(struct connection *conn, struct input *input,
                              struct http_request *request);

/* The whole life of one connection, top to bottom: read a request, answer
 * it (after sleeping through the delay, if it does the heavy work), again
 * while the connection stays open; then close it. (5.10.) */
void serve_connection(struct connection *conn, struct input *input);

/* ---- Given, in connection.c: what a handler calls. ---- */

/* Asks epoll for `events` on this connection (EPOLLIN, EPOLLOUT or 0 for
 * nothing), calling epoll_ctl() only if that changes what is watched. */
void watch(struct connection *conn, uint32_t events);

/* (Re)sets the connection's one deadline in `queue` (&conn->loop->idle,
 * ->delays or ->lingers): due that queue's duration from now. */
void set_deadline(struct connection *conn, struct deadline_queue *queue);

/* How to answer what read_request() returned, as step 1 decides, plus
 * keep-alive (RFC 9112 section 9.3; never while stopping). False when there
 * is nobody to answer (a silent, vanished or stopped client). */
bool choose_response(struct connection *conn, enum head_status status,
                     const struct http_request *request, struct response *response);

/* Step 1's send_response(), on a coroutine: sends the whole response,
 * waiting with wait_for(conn, EPOLLOUT) when the socket is full, and gives
 * up (false) when the client is gone or stalls for --idle-ms. Makes the head
 * now (its Date is when it leaves). While the server stops, every response
 * says "Connection: close" (response->close_connection is set). */
bool send_whole_response(struct connection *conn, struct response *response);

/* What a request's log line needs, kept once its head is consumed. */
struct request_note {
    char request_line[LOGGED_REQUEST_LINE_MAX + 1];
    int64_t started_ms;
};

/* Notes the request line (a copy: request points into the input) and the
 * time now, for log_response(). */
void note_request(struct request_note *note, enum head_status status,
                  const struct http_request *request);

/* The log line of one answered request (status 0 if it was not sent). */
void log_response(const struct connection *conn, const struct request_note *note,
                  const struct response *response, bool sent);

/* Where the next recv() may write, and how much room there is (*room > 0:
 * a full buffer is a head over the limit, which the parser has refused).
 * Allocates the bytes if there are none. NULL when out of memory (logged). */
char *input_space(struct input *input, size_t *room);

/* Drops the answered head from the input; what follows it (the next,
 * pipelined, request) moves to the front. Frees the bytes if none is left. */
void consume_head(struct input *input);

/* Closes the connection after its last response: at once, or, when the
 * client may still be sending (a refused body, a bad head, pipelined bytes
 * after a last request), after a lingering close, so that closing never
 * resets the connection under the response (as step 1 does). */
void close_connection(struct connection *conn, enum head_status last_status,
                      const struct input *input);

/* ---- Given, for the loop: in connection.c and event_loop.c. ---- */

/* For a freshly accepted, non-blocking fd: a new connection, watched for
 * EPOLLIN, its coroutine not yet made. On failure, logs, closes fd and
 * returns NULL. */
struct connection *open_connection(struct event_loop *loop, int fd);

/* Closes the socket at once (which also takes it out of epoll) and cancels
 * the deadline. */
void close_socket(struct connection *conn);

/* Takes the socket out of epoll (the loop, for a sleeper whose socket
 * failed: epoll would report it again every round). */
void forget_socket(struct connection *conn);

/* Makes the loop: epoll, the listener watched (its epoll data is NULL; a
 * connection's is its struct connection), the deadline queues, the stop
 * signals blocked except during epoll_pwait(). NULL on failure. */
struct event_loop *event_loop_create(int listen_fd, const struct server_config *config);

/* Accepts clients, starts a coroutine for each, and resumes each when what
 * it waits for has come, until a SIGINT or SIGTERM has been served out. */
void run_event_loop(struct event_loop *loop);

/* Closes whatever is still open (the listener too) and frees the loop. */
void event_loop_free(struct event_loop *loop);

#endif
