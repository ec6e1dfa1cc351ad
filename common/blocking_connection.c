#include "blocking_connection.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "request_io.h"
#include "response.h"
#include "socket_io.h"

static void do_heavy_work(const struct response *response, const struct server_config *config)
{
    if (response_needs_heavy_work(response))
        sleep_ms(config->delay_ms);
}

static void describe_request_line(enum head_status status, const struct http_request *request,
                                  char *out, size_t size)
{
    if (status == HEAD_COMPLETE || (status == HEAD_INVALID && request->request_line.length > 0))
        snprintf(out, size, "%.*s", (int)(request->request_line.length < 200
                                              ? request->request_line.length : 200),
                 request->request_line.start);
    else
        snprintf(out, size, "(no request line)");
}

/* After a response: whether the client may still be sending, so that a
 * plain close could reset the connection under the response. That is
 * anything but one clean head with nothing after it, read or still waiting
 * in the socket (a pipelined request that came during the heavy work). */
static bool client_may_still_send(int fd, enum head_status status,
                                  const struct http_request *request,
                                  const struct head_buffer *buffer)
{
    return status != HEAD_COMPLETE || request_has_body(request) ||
           buffer->length > buffer->head_length || unread_input_waiting(fd);
}

void serve_connection(int client_fd, const struct server_config *config)
{
    /* 8 KiB from the heap, not the stack: AddressSanitizer guards heap
     * blocks on both sides, so a read past the buffer is caught at once. */
    struct head_buffer *buffer = calloc(1, sizeof *buffer);
    struct http_request request;
    struct response response;
    char request_line[256];
    int64_t started = monotonic_ms();

    if (buffer == NULL) {
        log_error("malloc: %s", strerror(errno));
        close_gracefully(client_fd, false);
        return;
    }
    enum head_status status = read_request_head(client_fd, buffer, config->idle_ms, &request);
    /* Steps 1 and 2 serve one request per connection (RFC 9112 section 9.6). */
    bool answered = choose_response_to_head(status, &request, false, &response);
    if (answered) {
        do_heavy_work(&response, config);
        bool sent = send_response(client_fd, &response, config->idle_ms);
        describe_request_line(status, &request, request_line, sizeof request_line);
        log_request(client_fd, request_line, sent ? response.status : 0,
                    response.omit_body ? 0 : response.body_length, monotonic_ms() - started);
    }
    /* No response, nothing to protect: a silent or departed client is
     * closed at once, never kept for the lingering half second. */
    close_gracefully(client_fd,
                     answered && client_may_still_send(client_fd, status, &request, buffer));
    free(buffer);
}
