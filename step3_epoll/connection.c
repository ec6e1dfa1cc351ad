/* Step 3, given: the plumbing of one connection (see event_loop.h).
 *
 * Memory comes and goes with need: the 8 KiB input buffer exists only while
 * bytes wait in it, the reply only while a response is under way. An idle
 * keep-alive connection is the small struct connection alone. */
#include "event_loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "socket_io.h"

struct connection *open_connection(struct event_loop *loop, int fd)
{
    struct connection *conn = malloc(sizeof *conn);

    if (conn == NULL) {
        log_error("malloc: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    *conn = (struct connection){.fd = fd, .state = READING, .watched = EPOLLIN};
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

void watch(struct event_loop *loop, struct connection *conn, uint32_t events)
{
    struct epoll_event event = {.events = events, .data.ptr = conn};

    /* A system call costs as much as serving a small part of a request:
     * skip it when nothing changes (keep-alive at --delay-ms 0 never does). */
    if (conn->watched == events)
        return;
    if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_MOD, conn->fd, &event) != 0)
        log_error("epoll_ctl: %s", strerror(errno));
    else
        conn->watched = events;
}

void set_deadline(struct connection *conn, struct deadline_queue *queue)
{
    /* "Now" rounded up to the millisecond, so that a deadline never comes
     * due before its full duration has passed. */
    int64_t now_ms = (monotonic_ns() + 999999) / 1000000;

    deadline_set(queue, &conn->deadline, now_ms);
}

char *input_space(struct connection *conn, size_t *room)
{
    if (conn->input == NULL) {
        conn->input = malloc(HTTP_HEAD_LIMIT);
        if (conn->input == NULL) {
            log_error("malloc: %s", strerror(errno));
            return NULL;
        }
    }
    /* Never 0: a full buffer is a head over the limit, which the parser
     * refuses (414 or 431) before we read again. */
    *room = HTTP_HEAD_LIMIT - conn->input_length;
    return conn->input + conn->input_length;
}

void release_empty_input(struct connection *conn)
{
    if (conn->input_length == 0) {
        free(conn->input);
        conn->input = NULL;
    }
}

void consume_input(struct connection *conn, size_t count)
{
    conn->input_length -= (uint32_t)count;
    memmove(conn->input, conn->input + count, conn->input_length);
    release_empty_input(conn);
}

/* The request line as the log shows it, cut at LOGGED_REQUEST_LINE_MAX bytes. */
static void copy_request_line(struct reply *reply, const struct http_request *request)
{
    static const char none[] = "(no request line)";
    const char *line = none;
    size_t length = sizeof none - 1;

    if (request != NULL && request->request_line.length > 0) {
        line = request->request_line.start;
        length = request->request_line.length < LOGGED_REQUEST_LINE_MAX
                     ? request->request_line.length : LOGGED_REQUEST_LINE_MAX;
    }
    memcpy(reply->request_line, line, length);
    reply->request_line[length] = '\0';
}

struct response *begin_response(struct connection *conn, const struct http_request *request)
{
    struct reply *reply = malloc(sizeof *reply);

    if (reply == NULL) {
        log_error("malloc: %s", strerror(errno));
        return NULL;
    }
    reply->started_ms = monotonic_ms();
    copy_request_line(reply, request);
    /* A body is never read (RFC 9112 section 6.3): it may still be coming. */
    conn->refused_body = request != NULL && request_has_body(request);
    memset(&reply->response, 0, sizeof reply->response);
    conn->reply = reply;
    return &reply->response;
}

void start_sending(struct connection *conn)
{
    /* A short body rides behind the head: one send(), one TCP segment. */
    outgoing_start(&conn->reply->outgoing, &conn->reply->response);
}

static void log_reply(const struct connection *conn, int status)
{
    const struct response *response = &conn->reply->response;

    log_request(conn->fd, conn->reply->request_line, status,
                response->omit_body ? 0 : response->body_length,
                monotonic_ms() - conn->reply->started_ms);
}

void end_response(struct connection *conn)
{
    log_reply(conn, conn->reply->response.status);
    free(conn->reply);
    conn->reply = NULL;
    conn->served = true;
}

bool client_may_still_send(const struct connection *conn)
{
    /* A bad head stays in the buffer, unconsumed, and so do pipelined bytes;
     * those that came while the response was made still wait in the socket. */
    return conn->refused_body || conn->input_length > 0 || unread_input_waiting(conn->fd);
}

void close_connection(struct event_loop *loop, struct connection *conn)
{
    if (conn->reply != NULL) {
        log_reply(conn, 0); /* like step 1: 0 says "not sent" */
        free(conn->reply);
        conn->reply = NULL;
    }
    free(conn->input);
    conn->input = NULL;
    conn->input_length = 0;
    deadline_cancel(&conn->deadline);
    /* The last descriptor of a socket closed: epoll forgets it by itself. */
    if (close(conn->fd) != 0)
        log_error("close: %s", strerror(errno));
    conn->fd = -1;
    conn->state = CLOSED;
    conn->next_closed = loop->closed;
    loop->closed = conn;
    loop->connection_count--;
}

void linger_then_close(struct event_loop *loop, struct connection *conn)
{
    free(conn->input); /* what is left unread is discarded anyway */
    conn->input = NULL;
    conn->input_length = 0;
    /* Our FIN follows the response: the client reads it all, then EOF.
     * ENOTCONN: the client is gone already; nothing left to protect. */
    if (shutdown(conn->fd, SHUT_WR) != 0) {
        close_connection(loop, conn);
        return;
    }
    conn->state = CLOSING;
    conn->drained = 0;
    watch(loop, conn, EPOLLIN);
    set_deadline(conn, &loop->lingers);
}

void discard_lingering_input(struct event_loop *loop, struct connection *conn)
{
    char discard[4096];
    ssize_t got = recv(conn->fd, discard, sizeof discard, 0);

    if (got < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (got > 0) {
        conn->drained += (uint32_t)got;
        if (conn->drained < LINGER_LIMIT)
            return;
    }
    /* EOF (the client has read our response and closed), an error, or
     * enough discarded: closing cannot hurt the response any more. */
    close_connection(loop, conn);
}
