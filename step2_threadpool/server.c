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
    /* TODO: write serve_forever(). NOTES.md section 2.7 "The main thread only accepts" explains it. */
    exercise_unwritten("serve_forever", "2.7", "The main thread only accepts");
    (void)listen_fd;
    (void)pool;
    (void)config;
}
