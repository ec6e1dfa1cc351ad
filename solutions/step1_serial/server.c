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
    /* EXERCISE accept_client: NOTES.md section 1.4 "Accepting one client"
     * stub:
     *     (void)listen_fd;
     *     return -1;
     */
    /* Wait in short slices: a blocked accept() would not notice SIGTERM if
     * the signal landed just before the call. */
    if (wait_readable(listen_fd, STOP_CHECK_INTERVAL_MS) <= 0)
        return -1;

    int client_fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (client_fd >= 0)
        return client_fd;

    switch (errno) {
    case EAGAIN:       /* another process took it, or the client left */
    case EINTR:        /* a signal: let the caller look at the stop flag */
    case ECONNABORTED: /* the client reset before we accepted */
        break;
    case EMFILE:
    case ENFILE:
        /* Out of descriptors: the client waits in the backlog. Pause rather
         * than spin on a listener that stays readable. */
        log_error("accept: %s; retrying in 100 ms", strerror(errno));
        sleep_ms(100);
        break;
    default:
        log_error("accept: %s", strerror(errno));
        break;
    }
    return -1;
    /* END EXERCISE */
}

void serve_forever(int listen_fd, const struct server_config *config)
{
    /* EXERCISE serve_forever: NOTES.md section 1.5 "The serial loop"
     * stub:
     *     (void)listen_fd;
     *     (void)config;
     */
    while (!shutdown_requested()) {
        int client_fd = accept_client(listen_fd);
        if (client_fd < 0)
            continue;
        /* The whole request, delay included, happens here. Meanwhile the
         * next clients wait in the kernel's backlog: that is the staircase. */
        serve_connection(client_fd, config);
    }
    /* END EXERCISE */
}
