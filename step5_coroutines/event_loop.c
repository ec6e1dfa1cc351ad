/* Step 5, given: the loop (see server.h). It is step 3's loop with one
 * difference: where step 3 called the handler of an event (on_readable,
 * on_delay_passed, on_writable), this one resumes the connection's
 * coroutine, which continues from its wait_for(). It knows nothing of HTTP. */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "listener.h"
#include "log.h"
#include "shutdown.h"

/* The connection a deadline belongs to: the deadline is a field inside it. */
static struct connection *connection_of(struct deadline *deadline)
{
    return (struct connection *)((char *)deadline - offsetof(struct connection, deadline));
}

/* ------------------------------------------------------ a connection's life */

/* The body of every connection's coroutine. */
static void connection_main(void *argument)
{
    struct connection *conn = argument;
    struct input input = {.bytes = NULL}; /* on the coroutine's own stack */
    static bool warned;

    conn->input = &input;
    serve_connection(conn, &input);
    conn->input = NULL;
    free(input.bytes);
    if (conn->fd >= 0) {
        if (!warned)
            log_error("serve_connection() returned with its connection still open; it must "
                      "close it (NOTES.md section 5.10)");
        warned = true;
        close_socket(conn);
    }
}

/* Runs the connection's coroutine until it waits again, or finishes. */
static void resume_connection(struct event_loop *loop, struct connection *conn, enum wake why)
{
    conn->woken_by = why;
    if (coroutine_resume(&conn->coroutine))
        return; /* it waits again */
    if (conn->fd >= 0)
        close_socket(conn); /* a coroutine that never ran */
    /* A later event of this batch may still name it: freed after the batch. */
    conn->finished = true;
    conn->next_finished = loop->finished;
    loop->finished = conn;
    loop->connection_count--;
}

static void start_connection(struct event_loop *loop, int fd)
{
    struct connection *conn = open_connection(loop, fd);

    if (conn == NULL)
        return;
    if (!coroutine_create(&conn->coroutine, connection_main, conn)) {
        close_socket(conn); /* no stack to be had: this client is refused */
        loop->connection_count--;
        free(conn);
        return;
    }
    resume_connection(loop, conn, WOKEN_BY_SOCKET); /* runs until its first wait */
}

static void free_finished_connections(struct event_loop *loop)
{
    while (loop->finished != NULL) {
        struct connection *conn = loop->finished;
        loop->finished = conn->next_finished;
        free(conn);
    }
}

/* ------------------------------------------------------------ the listener */

/* An idle keep-alive connection: a request was answered on it, and it waits
 * for the next, of which nothing has come. */
static bool is_idle_keep_alive(const struct connection *conn)
{
    return conn->watched == EPOLLIN && conn->served && conn->input != NULL &&
           conn->input->length == 0;
}

/* accept() failed with EMFILE or ENFILE: as step 3 does, closes the oldest
 * idle keep-alive connection (RFC 9112 section 9.6 allows it), or stops
 * watching the listener for ACCEPT_PAUSE_MS, so that the loop never spins
 * on a listener that stays readable. */
static void make_room_for_a_connection(struct event_loop *loop)
{
    int error = errno;

    for (struct deadline *d = deadline_queue_first(&loop->idle); d != NULL; d = d->next) {
        if (is_idle_keep_alive(connection_of(d))) {
            resume_connection(loop, connection_of(d), WOKEN_TO_STOP);
            return; /* its descriptor is free: the next round accepts */
        }
    }
    log_error("accept: %s; pausing accept for %d ms", strerror(error), ACCEPT_PAUSE_MS);
    pause_accepting(loop->epoll_fd, loop->listen_fd, &loop->accept_pause);
}

static void accept_pending_connections(struct event_loop *loop)
{
    for (;;) {
        int fd = accept4(loop->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            start_connection(loop, fd);
        } else if (errno == EINTR || errno == ECONNABORTED) {
            continue; /* a signal, or a client that gave up while waiting */
        } else if (errno == EMFILE || errno == ENFILE) {
            make_room_for_a_connection(loop);
            return;
        } else {
            if (errno != EAGAIN)
                log_error("accept: %s", strerror(errno));
            return; /* EAGAIN: nobody else is waiting */
        }
    }
}

/* ------------------------------------------------------- events, deadlines */

static void on_socket_event(struct connection *conn, uint32_t events)
{
    struct event_loop *loop = conn->loop;

    if (conn->finished)
        return; /* finished by an earlier event of this batch: not freed yet */
    /* It waits in wait_for() for what it watches; a sleeper, whose deadline
     * is in loop->delays, is woken by its deadline only. */
    if (conn->watched != 0 && conn->deadline.queue != &loop->delays) {
        resume_connection(loop, conn, WOKEN_BY_SOCKET);
        return;
    }
    /* epoll reports an error or a hang-up even when nothing is watched, and
     * again every round: stop watching that socket. The sleeper finds the
     * error when it sends its response. */
    if (events & (EPOLLERR | EPOLLHUP))
        forget_socket(conn);
}

static void fire_due_deadlines(struct event_loop *loop)
{
    struct deadline_queue *queues[] = {&loop->delays, &loop->idle, &loop->lingers};
    int64_t now = monotonic_ms();
    struct deadline *due;

    /* A resumed coroutine may set a new deadline: it lies in the future
     * (every duration is above 0), so each loop ends. */
    for (size_t i = 0; i < sizeof queues / sizeof queues[0]; i++)
        while ((due = deadline_queue_pop_due(queues[i], now)) != NULL)
            resume_connection(loop, connection_of(due), WOKEN_BY_DEADLINE);
    resume_accepting_when_due(loop->epoll_fd, loop->listen_fd, &loop->accept_pause, now);
}

/* The earliest deadline of all (monotonic_ms() time), or -1 if there is none. */
static int64_t earliest_deadline_ms(const struct event_loop *loop)
{
    const struct deadline_queue *const queues[] = {&loop->delays, &loop->idle, &loop->lingers};

    return earliest_deadline_of(queues, sizeof queues / sizeof queues[0],
                                loop->accept_pause.paused ? loop->accept_pause.resume_ms : -1);
}

/* How long epoll_pwait() may sleep: until the earliest deadline, rounded up
 * to whole milliseconds (rounded down, the loop would spin until the
 * deadline's millisecond came). -1: no deadline, an idle server sleeps. */
static int wait_timeout_ms(const struct event_loop *loop)
{
    int64_t due_ms = earliest_deadline_ms(loop);

    if (due_ms < 0)
        return -1;
    int64_t left_ns = due_ms * 1000000 - monotonic_ns();
    return left_ns <= 0 ? 0 : (int)((left_ns + 999999) / 1000000);
}

/* ------------------------------------------------------------------- stopping */

/* SIGINT or SIGTERM: stop accepting; a connection that waits for a request
 * (EPOLLIN, idle deadline) has nothing under way: it is woken to stop, and
 * closes. The others finish their response, which says "Connection:
 * close" (send_whole_response()), then close. */
static void begin_graceful_shutdown(struct event_loop *loop)
{
    struct deadline *d = deadline_queue_first(&loop->idle);
    const struct deadline *last = loop->idle.last;

    loop->stopping = true;
    close(loop->listen_fd); /* clients not yet accepted are refused at once */
    loop->listen_fd = -1;
    loop->accept_pause.paused = false;
    /* Each is visited once, even if it waits again (at the tail). */
    while (d != NULL) {
        struct deadline *next = d->next;
        bool was_last = d == last;
        if (connection_of(d)->watched == EPOLLIN)
            resume_connection(loop, connection_of(d), WOKEN_TO_STOP);
        if (was_last)
            break;
        d = next;
    }
}

/* ------------------------------------------------------------------- the loop */

struct event_loop *event_loop_create(int listen_fd, const struct server_config *config)
{
    struct event_loop *loop = calloc(1, sizeof *loop);

    if (loop == NULL) {
        log_error("calloc: %s", strerror(errno));
        return NULL;
    }
    loop->listen_fd = listen_fd;
    loop->config = config;
    deadline_queue_init(&loop->delays, config->delay_ms);
    deadline_queue_init(&loop->idle, config->idle_ms);
    deadline_queue_init(&loop->lingers, LINGER_MS);
    loop->epoll_fd = open_epoll_with_listener(listen_fd);
    if (loop->epoll_fd < 0) {
        free(loop);
        return NULL;
    }
    block_stop_signals(&loop->wait_mask);
    return loop;
}

void run_event_loop(struct event_loop *loop)
{
    struct epoll_event events[MAX_EVENTS];

    for (;;) {
        if (shutdown_requested() && !loop->stopping) {
            begin_graceful_shutdown(loop);
            free_finished_connections(loop);
        }
        if (loop->stopping && loop->connection_count == 0)
            return;
        /* SIGINT and SIGTERM are let in only during this wait: one that came
         * since the check above ends it at once (EINTR). */
        int ready = epoll_pwait(loop->epoll_fd, events, MAX_EVENTS, wait_timeout_ms(loop),
                                &loop->wait_mask);
        if (ready < 0 && errno != EINTR) {
            log_error("epoll_pwait: %s", strerror(errno));
            return;
        }
        for (int i = 0; i < ready; i++) {
            if (events[i].data.ptr == NULL)
                accept_pending_connections(loop);
            else
                on_socket_event(events[i].data.ptr, events[i].events);
        }
        fire_due_deadlines(loop);
        free_finished_connections(loop); /* no event of this batch is left */
    }
}

void event_loop_free(struct event_loop *loop)
{
    struct deadline_queue *queues[] = {&loop->delays, &loop->idle, &loop->lingers};

    /* After a graceful shutdown nothing is left. After an error, the
     * coroutines still waiting cannot be finished: their sockets are
     * closed, and their stacks stay (stacks_unmap_all() says so). */
    for (size_t i = 0; i < sizeof queues / sizeof queues[0]; i++) {
        struct deadline *d;
        while ((d = deadline_queue_first(queues[i])) != NULL) {
            struct connection *conn = connection_of(d);
            close_socket(conn);
            free(conn);
        }
    }
    free_finished_connections(loop);
    if (loop->listen_fd >= 0)
        close(loop->listen_fd);
    close(loop->epoll_fd);
    free(loop);
}
