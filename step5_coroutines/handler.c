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
    /* TODO: write wait_for(). NOTES.md section 5.8 "Waiting is yielding" explains it. */
    exercise_unwritten("wait_for", "5.8", "Waiting is yielding");
    (void)conn;
    (void)events;
    return WOKEN_TO_STOP;
}

enum head_status read_request(struct connection *conn, struct input *input,
                              struct http_request *request)
{
    /* TODO: write read_request(). NOTES.md section 5.9 "Reading a head without blocking" explains it. */
    exercise_unwritten("read_request", "5.9", "Reading a head without blocking");
    (void)conn;
    (void)input;
    (void)request;
    return HEAD_EMPTY;
}

void serve_connection(struct connection *conn, struct input *input)
{
    /* TODO: write serve_connection(). NOTES.md section 5.10 "One connection, top to bottom" explains it. */
    exercise_unwritten("serve_connection", "5.10", "One connection, top to bottom");
    (void)conn;
    (void)input;
}
