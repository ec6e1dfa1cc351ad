/* Step 5, given: what a connection's handler calls (see server.h). Each of
 * these runs on the connection's coroutine, and the two that wait do it the
 * way you do in handler.c: set a deadline, then wait_for(). */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "socket_io.h"

void watch(struct connection *conn, uint32_t events)
{
    struct epoll_event event = {.events = events, .data.ptr = conn};
    int operation = conn->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

    /* A system call costs as much as serving a small part of a request:
     * skip it when nothing changes (keep-alive at --delay-ms 0 never does). */
    if (conn->in_epoll && conn->watched == events)
        return;
    if (epoll_ctl(conn->loop->epoll_fd, operation, conn->fd, &event) != 0) {
        log_error("epoll_ctl: %s", strerror(errno));
        return;
    }
    conn->watched = events;
    conn->in_epoll = true;
}

void set_deadline(struct connection *conn, struct deadline_queue *queue)
{
    /* "Now" rounded up to the millisecond, so that a deadline never comes
     * due before its full duration has passed. */
    int64_t now_ms = (monotonic_ns() + 999999) / 1000000;

    deadline_set(queue, &conn->deadline, now_ms);
}

bool choose_response(struct connection *conn, enum head_status status,
                     const struct http_request *request, struct response *response)
{
    /* A body is never read (RFC 9112 section 6.3): it may still be coming. */
    conn->refused_body = status == HEAD_COMPLETE && request_has_body(request);
    /* RFC 9112 section 9.3; while stopping, this request is the last. */
    return choose_response_to_head(status, request,
                                   request_wants_keep_alive(request) && !conn->loop->stopping,
                                   response);
}

/* The server began to stop: this response is the connection's last. */
static void make_it_the_last(const struct connection *conn, struct response *response)
{
    if (conn->loop->stopping) {
        response->close_connection = true;
        response->echo_keep_alive = false;
    }
}

bool send_whole_response(struct connection *conn, struct response *response)
{
    struct outgoing outgoing;
    const char *data;
    size_t length;

    make_it_the_last(conn, response); /* before the head says otherwise */
    outgoing_start(&outgoing, response);
    while ((length = outgoing_next(&outgoing, &data)) > 0) {
        ssize_t sent = send(conn->fd, data, length, MSG_NOSIGNAL);
        if (sent > 0) {
            outgoing_advance(&outgoing, (size_t)sent);
        } else if (errno == EAGAIN) {
            /* Full. Step 1 waited here in poll(); we yield until the client
             * has read some, and give up on one that stalls for --idle-ms. */
            set_deadline(conn, &conn->loop->idle);
            if (wait_for(conn, EPOLLOUT) != WOKEN_BY_SOCKET)
                return false;
        } else if (errno != EINTR) {
            if (errno != EPIPE && errno != ECONNRESET)
                log_error("send: %s", strerror(errno));
            return false;
        }
    }
    make_it_the_last(conn, response); /* the stop may have begun while we waited */
    conn->served = true;
    return true;
}

void note_request(struct request_note *note, enum head_status status,
                  const struct http_request *request)
{
    size_t length = request->request_line.length;

    if (status == HEAD_COMPLETE || (status == HEAD_INVALID && length > 0))
        snprintf(note->request_line, sizeof note->request_line, "%.*s",
                 (int)(length < LOGGED_REQUEST_LINE_MAX ? length : LOGGED_REQUEST_LINE_MAX),
                 request->request_line.start);
    else
        snprintf(note->request_line, sizeof note->request_line, "(no request line)");
    note->started_ms = monotonic_ms();
}

void log_response(const struct connection *conn, const struct request_note *note,
                  const struct response *response, bool sent)
{
    log_request(conn->fd, note->request_line, sent ? response->status : 0, /* 0: not sent */
                response->omit_body ? 0 : response->body_length,
                monotonic_ms() - note->started_ms);
}

char *input_space(struct input *input, size_t *room)
{
    if (input->bytes == NULL) {
        input->bytes = malloc(HTTP_HEAD_LIMIT);
        if (input->bytes == NULL) {
            log_error("malloc: %s", strerror(errno));
            return NULL;
        }
    }
    *room = HTTP_HEAD_LIMIT - input->length;
    return input->bytes + input->length;
}

void consume_head(struct input *input)
{
    input->length -= input->head_length;
    memmove(input->bytes, input->bytes + input->head_length, input->length);
    input->head_length = 0;
    if (input->length == 0) {
        free(input->bytes); /* an idle connection keeps no buffer */
        input->bytes = NULL;
    }
}

/* The lingering close (like common/socket_io.c's close_gracefully(), but
 * yielding): our FIN follows the response, so the client reads all of it,
 * then EOF; what the client still sends is discarded until it closes,
 * LINGER_LIMIT bytes, or LINGER_MS. */
static void linger(struct connection *conn)
{
    static char discard[4096]; /* never read: every coroutine may share it */
    size_t drained = 0;

    if (shutdown(conn->fd, SHUT_WR) != 0)
        return; /* ENOTCONN: the client is gone already; nothing to protect */
    set_deadline(conn, &conn->loop->lingers);
    while (drained < LINGER_LIMIT) {
        ssize_t got = recv(conn->fd, discard, sizeof discard, 0);
        if (got > 0)
            drained += (size_t)got;
        else if (got == 0 || (errno != EAGAIN && errno != EINTR))
            return; /* EOF (the client read the response and closed), or an error */
        else if (errno == EAGAIN && wait_for(conn, EPOLLIN) != WOKEN_BY_SOCKET)
            return; /* the linger's time is up */
    }
}

void close_connection(struct connection *conn, enum head_status last_status,
                      const struct input *input)
{
    bool answered = last_status == HEAD_COMPLETE || last_status == HEAD_INVALID ||
                    last_status == HEAD_TIMED_OUT;

    /* A bad head stays in the input, unconsumed, and so do pipelined bytes;
     * those that came while the response was made still wait in the socket. */
    if (answered && (conn->refused_body || input->length > 0 || unread_input_waiting(conn->fd)))
        linger(conn);
    close_socket(conn);
}

/* ------------------------------------------------------------- for the loop */

struct connection *open_connection(struct event_loop *loop, int fd)
{
    struct connection *conn = malloc(sizeof *conn);

    if (conn == NULL) {
        log_error("malloc: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    *conn = (struct connection){.fd = fd, .loop = loop, .watched = EPOLLIN, .in_epoll = true};
    /* TCP_NODELAY came with the socket, from the listener (common/listener.c). */
    /* The event carries the connection itself: no lookup by fd. */
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = conn};
    if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
        log_error("epoll_ctl: %s", strerror(errno));
        close(fd);
        free(conn);
        return NULL;
    }
    loop->connection_count++;
    return conn;
}

void close_socket(struct connection *conn)
{
    deadline_cancel(&conn->deadline);
    /* The last descriptor of a socket closed: epoll forgets it by itself. */
    if (close(conn->fd) != 0)
        log_error("close: %s", strerror(errno));
    conn->fd = -1;
    conn->watched = 0;
    conn->in_epoll = false;
}

void forget_socket(struct connection *conn)
{
    if (epoll_ctl(conn->loop->epoll_fd, EPOLL_CTL_DEL, conn->fd, NULL) != 0)
        log_error("epoll_ctl: %s", strerror(errno));
    conn->watched = 0;
    conn->in_epoll = false;
}
