/* Step 1: the serial server (see server.h and NOTES.md, chapter 1). */
#include "server.h"

#include "blocking_connection.h"
#include "exercise.h"
#include "listener.h"
#include "shutdown.h"

void serve_forever(int listen_fd, const struct server_config *config)
{
    /* EXERCISE serve_forever: NOTES.md section 1.3 "The serial loop"
     * stub:
     *     (void)listen_fd;
     *     (void)config;
     */
    while (!shutdown_requested()) {
        int client_fd = accept_client(listen_fd);
        if (client_fd < 0)
            continue; /* nobody came within 100 ms: look at the stop flag again */
        /* The whole request, delay included, happens here. Meanwhile the
         * next clients wait in the kernel's backlog: that is the staircase. */
        serve_connection(client_fd, config);
    }
    /* END EXERCISE */
}
