/* Step 1: the serial server (see server.h and NOTES.md, chapter 1). */
#include "server.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "blocking_connection.h"
#include "clock.h"
#include "exercise.h"
#include "log.h"
#include "shutdown.h"
#include "socket_io.h"

int accept_client(int listen_fd)
{
    /* TODO: write accept_client(). NOTES.md section 1.4 "Accepting one client" explains it. */
    exercise_unwritten("accept_client", "1.4", "Accepting one client");
    (void)listen_fd;
    return -1;
}

void serve_forever(int listen_fd, const struct server_config *config)
{
    /* TODO: write serve_forever(). NOTES.md section 1.5 "The serial loop" explains it. */
    exercise_unwritten("serve_forever", "1.5", "The serial loop");
    (void)listen_fd;
    (void)config;
}
