/* Step 2: the thread-pool server. The main thread only accepts; a pool of
 * workers serves the connections, each one exactly as step 1 did.
 *
 * You write serve_forever() in server.c (NOTES.md section 2.7). What a worker
 * does with a connection is given: run_connection_job() calls common/'s
 * serve_connection(), the life of one request. */
#ifndef STEP2_SERVER_H
#define STEP2_SERVER_H

#include "flags.h"
#include "pool.h"

/* What the main thread hands to the pool for each client: the job's argument. */
struct connection_job {
    int client_fd;
    const struct server_config *config;
};

/* A job_function: serves job->client_fd (closing it) and frees the job,
 * which must come from malloc(). Runs on a worker. */
void run_connection_job(void *job);

/* Until SIGINT or SIGTERM: accepts each client (with common/'s
 * accept_client(), as in step 1) and hands it to the pool,
 * never serving one itself. Returns when asked to stop; the caller then
 * shuts the pool down. */
void serve_forever(int listen_fd, struct pool *pool, const struct server_config *config);

#endif
