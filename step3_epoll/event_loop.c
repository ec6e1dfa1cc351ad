/* Step 3, given: the loop's own plumbing (see event_loop.h): making and
 * freeing it, its deadlines, running out of descriptors, and the graceful
 * shutdown. */
#include "event_loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
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

int64_t earliest_deadline_ms(const struct event_loop *loop)
{
    const struct deadline_queue *const queues[] = {&loop->delays, &loop->idle, &loop->lingers};

    return earliest_deadline_of(queues, sizeof queues / sizeof queues[0],
                                loop->accept_pause.paused ? loop->accept_pause.resume_ms : -1);
}

static void on_idle_timeout(struct event_loop *loop, struct connection *conn)
{
    if (conn->state == READING && conn->input_length > 0) {
        /* RFC 9110 section 15.5.9: part of a head came, then nothing. */
        struct response *response = begin_response(conn, NULL);
        if (response != NULL) {
            response_for_error(408, "no complete request head in time", response);
            conn->keep_alive = false;
            on_delay_passed(loop, conn);
            return;
        }
    }
    /* Not a byte (a pre-opened or idle keep-alive connection), or a client
     * that stopped reading our response: give up on it quietly. */
    close_connection(loop, conn);
}

void fire_due_deadlines(struct event_loop *loop)
{
    int64_t now = monotonic_ms();
    struct deadline *due;

    /* A handler may set new deadlines; they lie in the future (every
     * duration is above 0), so each loop ends. */
    while ((due = deadline_queue_pop_due(&loop->delays, now)) != NULL)
        on_delay_passed(loop, connection_of(due));
    while ((due = deadline_queue_pop_due(&loop->idle, now)) != NULL)
        on_idle_timeout(loop, connection_of(due));
    while ((due = deadline_queue_pop_due(&loop->lingers, now)) != NULL)
        close_connection(loop, connection_of(due));
    resume_accepting_when_due(loop->epoll_fd, loop->listen_fd, &loop->accept_pause, now);
}

/* An idle keep-alive connection: a request was answered on it, and nothing
 * of the next one has come. */
static bool is_idle_keep_alive(const struct connection *conn)
{
    return conn->state == READING && conn->served && conn->input_length == 0;
}

void make_room_for_a_connection(struct event_loop *loop)
{
    int error = errno;

    /* RFC 9112 section 9.6: a server may close an idle connection at any
     * time; its client opens a new one. The oldest idle deadline comes
     * first in its queue. Its descriptor is free at once: the listener is
     * still readable, so the next round of the loop accepts. */
    for (struct deadline *d = deadline_queue_first(&loop->idle); d != NULL; d = d->next) {
        if (is_idle_keep_alive(connection_of(d))) {
            close_connection(loop, connection_of(d));
            return;
        }
    }
    /* None to spare: the clients wait in the listen backlog. Accepting
     * again at once would fail again, on a listener that stays readable:
     * a busy loop. Stop watching it for a while instead. */
    log_error("accept: %s; pausing accept for %d ms", strerror(error), ACCEPT_PAUSE_MS);
    pause_accepting(loop->epoll_fd, loop->listen_fd, &loop->accept_pause);
}

void begin_graceful_shutdown(struct event_loop *loop)
{
    struct deadline *d, *next;

    loop->stopping = true;
    /* Clients not yet accepted are refused at once rather than left waiting.
     * Closing the listener also takes it out of the epoll set. */
    close(loop->listen_fd);
    loop->listen_fd = -1;
    loop->accept_pause.paused = false;
    /* READING: no complete request (idle, or part of a head): close now.
     * WRITING: finish this response, then close. */
    for (d = deadline_queue_first(&loop->idle); d != NULL; d = next) {
        next = d->next;
        struct connection *conn = connection_of(d);
        if (conn->state == READING)
            close_connection(loop, conn);
        else
            conn->keep_alive = false;
    }
    /* WAITING: its response is not begun, so it can still say so. */
    for (d = deadline_queue_first(&loop->delays); d != NULL; d = d->next) {
        struct connection *conn = connection_of(d);
        conn->keep_alive = false;
        conn->reply->response.close_connection = true;
        conn->reply->response.echo_keep_alive = false;
    }
    /* CLOSING connections end by themselves within LINGER_MS. */
}

void free_closed_connections(struct event_loop *loop)
{
    while (loop->closed != NULL) {
        struct connection *conn = loop->closed;
        loop->closed = conn->next_closed;
        free(conn);
    }
}

void event_loop_free(struct event_loop *loop)
{
    struct deadline_queue *queues[] = {&loop->delays, &loop->idle, &loop->lingers};

    /* After a normal shutdown nothing is left; after an error, close all. */
    for (size_t i = 0; i < sizeof queues / sizeof queues[0]; i++)
        while (deadline_queue_first(queues[i]) != NULL)
            close_connection(loop, connection_of(deadline_queue_first(queues[i])));
    free_closed_connections(loop);
    if (loop->listen_fd >= 0)
        close(loop->listen_fd);
    close(loop->epoll_fd);
    free(loop);
}
