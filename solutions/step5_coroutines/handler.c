/* Step 5: one connection's code, top to bottom (see server.h and NOTES.md,
 * chapter 5). It reads like step 1's, but every wait yields to the loop, so
 * that one thread serves every client at once. */
#include "server.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"
#include "exercise.h"
#include "http.h"
#include "log.h"
#include "response.h"

enum wake wait_for(struct connection *conn, uint32_t events)
{
    /* EXERCISE wait_for: NOTES.md section 5.8 "Waiting is yielding"
     * stub:
     *     (void)conn;
     *     (void)events;
     *     return WOKEN_TO_STOP;
     */
    /* Exactly these events: a sleeper (0) must not stay watched for
     * EPOLLIN, or each byte a client sends meanwhile wakes the loop again
     * and again (level-triggered) for a coroutine that is not waiting. */
    watch(conn, events);
    coroutine_yield(); /* the loop runs, until it resumes us */
    return conn->woken_by;
    /* END EXERCISE */
}

enum head_status read_request(struct connection *conn, struct input *input,
                              struct http_request *request)
{
    /* EXERCISE read_request: NOTES.md section 5.9 "Reading a head without blocking"
     * stub:
     *     (void)conn;
     *     (void)input;
     *     (void)request;
     *     return HEAD_EMPTY;
     */
    /* The whole head within --idle-ms: a client that trickles it a byte at
     * a time is not waited for forever. */
    set_deadline(conn, &conn->loop->idle);
    input->head_length = 0;
    for (;;) {
        /* What came already may hold a whole head: a pipelined request. */
        ssize_t parsed = parse_request_head(input->bytes, input->length, request);
        if (parsed == PARSE_ERROR)
            return HEAD_INVALID;
        if (parsed > 0) {
            input->head_length = (size_t)parsed;
            return HEAD_COMPLETE;
        }
        /* Step 1 blocked in poll() here. We yield instead. */
        switch (wait_for(conn, EPOLLIN)) {
        case WOKEN_BY_DEADLINE:
            return input->length == 0 ? HEAD_SILENT : HEAD_TIMED_OUT;
        case WOKEN_TO_STOP:
            return HEAD_STOPPED;
        case WOKEN_BY_SOCKET:
            break;
        }
        size_t room;
        char *space = input_space(input, &room);
        if (space == NULL)
            return HEAD_BROKEN;
        ssize_t got = recv(conn->fd, space, room, 0);
        if (got > 0) {
            input->length += (size_t)got;
        } else if (got == 0) {
            return input->length == 0 ? HEAD_EMPTY : HEAD_TRUNCATED;
        } else if (errno != EAGAIN && errno != EINTR) {
            /* A reset before any byte is how some clients say "never mind". */
            if (errno != ECONNRESET || input->length > 0)
                log_error("recv: %s", strerror(errno));
            return HEAD_BROKEN;
        }
    }
    /* END EXERCISE */
}

void serve_connection(struct connection *conn, struct input *input)
{
    /* EXERCISE serve_connection: NOTES.md section 5.10 "One connection, top to bottom"
     * stub:
     *     (void)conn;
     *     (void)input;
     */
    enum head_status status;
    struct http_request request;
    struct response response;
    struct request_note note;
    bool stays_open;

    do {
        status = read_request(conn, input, &request);
        if (!choose_response(conn, status, &request, &response))
            break; /* nobody to answer */
        note_request(&note, status, &request);
        /* request points into the input: done with it now. What follows
         * the head, a pipelined request, moves to the front. */
        if (status == HEAD_COMPLETE)
            consume_head(input);
        if (response_needs_heavy_work(&response) && conn->loop->config->delay_ms > 0) {
            /* The heavy work: a sleep that yields. Step 1 slept here, and
             * every other client waited; now the loop serves them. */
            set_deadline(conn, &conn->loop->delays);
            wait_for(conn, 0);
        }
        bool sent = send_whole_response(conn, &response);
        log_response(conn, &note, &response, sent);
        stays_open = sent && !response.close_connection;
    } while (stays_open);
    close_connection(conn, status, input);
    /* END EXERCISE */
}
