/* Step 3: the events of a connection's life, and the loop that waits for
 * them (see event_loop.h and NOTES.md, chapter 3). No function here may
 * block: each does what can be done now, and returns to the loop. */
#include "event_loop.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"
#include "exercise.h"
#include "http.h"
#include "log.h"
#include "response.h"
#include "shutdown.h"

void accept_pending_connections(struct event_loop *loop)
{
    /* EXERCISE accept_pending_connections: NOTES.md section 3.4 "Accepting every waiting client"
     * stub:
     *     (void)loop;
     */
    for (;;) {
        int fd = accept4(loop->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            struct connection *conn = open_connection(loop, fd);
            if (conn != NULL)
                set_deadline(conn, &loop->idle); /* a silent client is dropped */
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
    /* END EXERCISE */
}

void on_readable(struct event_loop *loop, struct connection *conn)
{
    /* EXERCISE on_readable: NOTES.md section 3.5 "Reading what has arrived"
     * stub:
     *     (void)loop;
     *     (void)conn;
     */
    size_t room;
    char *space = input_space(conn, &room);
    if (space == NULL) {
        close_connection(loop, conn);
        return;
    }
    /* One recv per event: if more is waiting, level-triggered epoll reports
     * the socket again, and the other clients get their turn meanwhile. */
    ssize_t got = recv(conn->fd, space, room, 0);
    if (got > 0) {
        conn->input_length += (uint32_t)got;
        start_next_request(loop, conn);
    } else if (got == 0) {
        close_connection(loop, conn); /* the client closed: a partial head is dropped */
    } else if (errno == EAGAIN || errno == EINTR) {
        release_empty_input(conn); /* nothing after all */
    } else {
        if (errno != ECONNRESET)
            log_error("recv: %s", strerror(errno));
        close_connection(loop, conn);
    }
    /* END EXERCISE */
}

void start_next_request(struct event_loop *loop, struct connection *conn)
{
    /* EXERCISE start_next_request: NOTES.md section 3.6 "Starting the next request"
     * stub:
     *     (void)loop;
     *     (void)conn;
     */
    struct http_request request;
    ssize_t head_length = parse_request_head(conn->input, conn->input_length, &request);

    if (head_length == PARSE_PARTIAL)
        return; /* read more; the idle deadline keeps running */
    struct response *response = begin_response(conn, &request);
    if (response == NULL) {
        close_connection(loop, conn);
        return;
    }
    if (head_length == PARSE_ERROR) {
        /* After a bad head nothing can be taken for the next request: close. */
        response_for_error(request.error_status, request.error_cause, response);
        conn->keep_alive = false;
        on_delay_passed(loop, conn); /* errors do no heavy work */
        return;
    }
    /* RFC 9112 section 9.3; while shutting down, this is the last one. */
    response_for_request(&request, request_wants_keep_alive(&request) && !loop->stopping,
                         response);
    conn->keep_alive = !response->close_connection; /* errors and bodies close */
    /* `request` points into the buffer: drop the head only now. Bytes after
     * it are the next, pipelined, request (RFC 9112 section 9.3.2). */
    consume_input(conn, (size_t)head_length);
    if (response_needs_heavy_work(response) && loop->config->delay_ms > 0) {
        conn->state = WAITING;
        watch(loop, conn, 0); /* whatever the client sends now waits its turn */
        set_deadline(conn, &loop->delays);
    } else {
        on_delay_passed(loop, conn);
    }
    /* END EXERCISE */
}

void on_delay_passed(struct event_loop *loop, struct connection *conn)
{
    /* EXERCISE on_delay_passed: NOTES.md section 3.7 "The delay is over"
     * stub:
     *     (void)loop;
     *     (void)conn;
     */
    conn->state = WRITING;
    start_sending(conn); /* the head is made now: its Date is when it leaves */
    /* A small response fits in the socket's buffer: try at once, and ask
     * epoll for EPOLLOUT only if the socket turns out to be full. */
    on_writable(loop, conn);
    /* END EXERCISE */
}

void on_writable(struct event_loop *loop, struct connection *conn)
{
    /* EXERCISE on_writable: NOTES.md section 3.8 "Writing what the socket accepts"
     * stub:
     *     (void)loop;
     *     (void)conn;
     */
    struct outgoing *outgoing = &conn->reply->outgoing;
    const char *data;
    size_t length;

    while ((length = outgoing_next(outgoing, &data)) > 0) {
        ssize_t sent = send(conn->fd, data, length, MSG_NOSIGNAL);
        if (sent > 0) {
            outgoing_advance(outgoing, (size_t)sent);
        } else if (errno == EAGAIN) {
            /* Full: come back when the client has read some, or give up
             * on it if it stalls for the idle time. */
            watch(loop, conn, EPOLLOUT);
            set_deadline(conn, &loop->idle);
            return;
        } else if (errno != EINTR) {
            if (errno != EPIPE && errno != ECONNRESET)
                log_error("send: %s", strerror(errno));
            close_connection(loop, conn);
            return;
        }
    }
    end_response(conn);
    if (!conn->keep_alive) {
        if (client_may_still_send(conn))
            linger_then_close(loop, conn);
        else
            close_connection(loop, conn);
        return;
    }
    conn->state = READING;
    watch(loop, conn, EPOLLIN);
    set_deadline(conn, &loop->idle);
    if (conn->input_length > 0)
        start_next_request(loop, conn); /* pipelined: it is here already */
    /* END EXERCISE */
}
/* SOLUTION ONLY */

/* How long epoll_pwait() may sleep: until the earliest deadline, rounded UP
 * to whole milliseconds. Rounded down, it would wake just before the
 * deadline, find nothing due, and spin with a timeout of 0 until the
 * deadline's millisecond came. -1 (no deadline): an idle server sleeps. */
static int wait_timeout_ms(const struct event_loop *loop)
{
    int64_t due_ms = earliest_deadline_ms(loop);

    if (due_ms < 0)
        return -1;
    int64_t left_ns = due_ms * 1000000 - monotonic_ns();
    return left_ns <= 0 ? 0 : (int)((left_ns + 999999) / 1000000);
}

static void dispatch(struct event_loop *loop, const struct epoll_event *event)
{
    struct connection *conn = event->data.ptr;

    if (conn == NULL)
        accept_pending_connections(loop); /* the listener */
    else if (conn->state == CLOSED)
        return; /* closed by an earlier event of this batch: not freed yet */
    else if (conn->state == CLOSING)
        /* Even on EPOLLHUP (the client half-closed, and so did we): read to
         * its EOF first, since a close with unread bytes sends a reset that
         * destroys the end of the response still in flight. */
        discard_lingering_input(loop, conn);
    else if (event->events & (EPOLLHUP | EPOLLERR))
        close_connection(loop, conn);
    else if (conn->state == READING)
        on_readable(loop, conn);
    else if (conn->state == WRITING)
        on_writable(loop, conn);
}
/* END SOLUTION ONLY */

void run_event_loop(struct event_loop *loop)
{
    /* EXERCISE run_event_loop: NOTES.md section 3.9 "The loop"
     * stub:
     *     (void)loop;
     */
    struct epoll_event events[MAX_EVENTS];

    for (;;) {
        if (shutdown_requested() && !loop->stopping)
            begin_graceful_shutdown(loop);
        if (loop->stopping && loop->connection_count == 0)
            return;
        /* SIGINT and SIGTERM are blocked except inside this wait: one that
         * came since the check above ends the wait at once (EINTR). */
        int ready = epoll_pwait(loop->epoll_fd, events, MAX_EVENTS, wait_timeout_ms(loop),
                                &loop->wait_mask);
        if (ready < 0 && errno != EINTR) {
            log_error("epoll_pwait: %s", strerror(errno));
            return;
        }
        for (int i = 0; i < ready; i++)
            dispatch(loop, &events[i]);
        fire_due_deadlines(loop);
        free_closed_connections(loop); /* no event of this batch is left */
    }
    /* END EXERCISE */
}
