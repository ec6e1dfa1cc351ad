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
    /* TODO: write accept_pending_connections(). NOTES.md section 3.4 "Accepting every waiting client" explains it. */
    exercise_unwritten("accept_pending_connections", "3.4", "Accepting every waiting client");
    (void)loop;
}

void on_readable(struct event_loop *loop, struct connection *conn)
{
    /* TODO: write on_readable(). NOTES.md section 3.5 "Reading what has arrived" explains it. */
    exercise_unwritten("on_readable", "3.5", "Reading what has arrived");
    (void)loop;
    (void)conn;
}

void start_next_request(struct event_loop *loop, struct connection *conn)
{
    /* TODO: write start_next_request(). NOTES.md section 3.6 "Starting the next request" explains it. */
    exercise_unwritten("start_next_request", "3.6", "Starting the next request");
    (void)loop;
    (void)conn;
}

void on_delay_passed(struct event_loop *loop, struct connection *conn)
{
    /* TODO: write on_delay_passed(). NOTES.md section 3.7 "The delay is over" explains it. */
    exercise_unwritten("on_delay_passed", "3.7", "The delay is over");
    (void)loop;
    (void)conn;
}

void on_writable(struct event_loop *loop, struct connection *conn)
{
    /* TODO: write on_writable(). NOTES.md section 3.8 "Writing what the socket accepts" explains it. */
    exercise_unwritten("on_writable", "3.8", "Writing what the socket accepts");
    (void)loop;
    (void)conn;
}

void run_event_loop(struct event_loop *loop)
{
    /* TODO: write run_event_loop(). NOTES.md section 3.9 "The loop" explains it. */
    exercise_unwritten("run_event_loop", "3.9", "The loop");
    (void)loop;
}
