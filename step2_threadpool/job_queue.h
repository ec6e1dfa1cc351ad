/* The pool's waiting line: a fixed ring of jobs, first in, first out.
 *
 * This file is given. It knows nothing about threads: pool.c calls it only
 * while holding the pool's lock, which is what makes it safe. */
#ifndef STEP2_JOB_QUEUE_H
#define STEP2_JOB_QUEUE_H

#include <stdbool.h>

#include "pool.h"

struct job {
    job_function function;
    void *argument;
};

struct job_queue {
    struct job *slots;
    int capacity; /* how many jobs fit; fixed at creation */
    int first;    /* index of the oldest job */
    int count;    /* jobs waiting */
};

/* Makes room for `capacity` jobs. False, after printing why, on failure. */
bool queue_init(struct job_queue *queue, int capacity);
void queue_free(struct job_queue *queue);

bool queue_is_empty(const struct job_queue *queue);
bool queue_is_full(const struct job_queue *queue);

/* Adds a job at the back. The queue must not be full. */
void queue_push(struct job_queue *queue, struct job job);

/* Takes the job at the front. The queue must not be empty. */
struct job queue_pop(struct job_queue *queue);

#endif
