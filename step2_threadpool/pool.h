/* Step 2: a pool of worker threads fed by a bounded queue of jobs.
 *
 * The main thread hands jobs over with pool_submit(); W workers, started
 * once by pool_create(), take them in order and run them. A worker with
 * nothing to do sleeps on a condition variable: it costs no CPU at all.
 *
 * You write three functions of pool.c: worker_loop() (NOTES.md section 2.4),
 * pool_submit() (2.5) and pool_shutdown() (2.6). pool_create() is given
 * (2.3): read it first. */
#ifndef STEP2_POOL_H
#define STEP2_POOL_H

#include <stdbool.h>

/* A job is a function and the one argument it is called with. */
typedef void (*job_function)(void *argument);

/* The pool's state is private to pool.c. */
struct pool;

/* Starts `workers` threads (at least 1) and a queue with room for
 * `queue_capacity` jobs waiting to be taken (at least 1). Returns NULL, after
 * printing why, if anything could not be made; nothing is left behind then. */
struct pool *pool_create(int workers, int queue_capacity);

/* Queues function(argument) for a worker and returns at once, or waits while
 * the queue is full (backpressure: NOTES.md section 2.8). Returns false, and
 * queues nothing, once pool_shutdown() has begun. The job never runs on the
 * caller's thread. */
bool pool_submit(struct pool *pool, job_function function, void *argument);

/* Runs every job already queued, waits for the workers to finish and end
 * (joins them), then frees the pool. Call it once, after the last
 * pool_submit() has returned: the pool no longer exists afterwards. */
void pool_shutdown(struct pool *pool);

#endif
