/* Step 2: the thread-pool server (see server.h and NOTES.md, chapter 2). */
#include "server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blocking_connection.h"
#include "exercise.h"
#include "listener.h"
#include "log.h"
#include "shutdown.h"

void run_connection_job(void *job)
{
    struct connection_job *connection = job;

    /* Everything step 1 did for a client, delay included, on this worker. */
    serve_connection(connection->client_fd, connection->config);
    free(connection);
}

void serve_forever(int listen_fd, struct pool *pool, const struct server_config *config)
{
    /* EXERCISE serve_forever: NOTES.md section 2.7 "The main thread only accepts"
     * stub:
     *     (void)listen_fd;
     *     (void)pool;
     *     (void)config;
     */
    while (!shutdown_requested()) {
        int client_fd = accept_client(listen_fd);
        if (client_fd < 0)
            continue;
        struct connection_job *job = malloc(sizeof *job);
        if (job == NULL) {
            log_error("malloc: %s", strerror(errno));
            close(client_fd);
            continue;
        }
        *job = (struct connection_job){.client_fd = client_fd, .config = config};
        /* Waits while the queue is full: then the next clients wait in the
         * kernel's backlog, not in our memory (section 2.8). */
        if (!pool_submit(pool, run_connection_job, job)) {
            close(client_fd);
            free(job);
        }
    }
    /* END EXERCISE */
}
