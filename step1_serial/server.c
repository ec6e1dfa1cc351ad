/* Step 1: the serial server (see server.h and NOTES.md, chapter 1). */
#include "server.h"

#include "blocking_connection.h"
#include "exercise.h"
#include "listener.h"
#include "shutdown.h"

void serve_forever(int listen_fd, const struct server_config *config)
{
    /* TODO: write serve_forever(). NOTES.md section 1.3 "The serial loop" explains it. */
    exercise_unwritten("serve_forever", "1.3", "The serial loop");
    (void)listen_fd;
    (void)config;
}
