/* The pool's waiting line (see job_queue.h). Given: read it, don't write it. */
#include "job_queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

bool queue_init(struct job_queue *queue, int capacity)
{
    *queue = (struct job_queue){.capacity = capacity};
    queue->slots = calloc((size_t)capacity, sizeof queue->slots[0]);
    if (queue->slots == NULL) {
        log_error("job queue of %d: %s", capacity, strerror(errno));
        return false;
    }
    return true;
}

void queue_free(struct job_queue *queue)
{
    free(queue->slots);
    queue->slots = NULL;
}

bool queue_is_empty(const struct job_queue *queue)
{
    return queue->count == 0;
}

bool queue_is_full(const struct job_queue *queue)
{
    return queue->count == queue->capacity;
}

void queue_push(struct job_queue *queue, struct job job)
{
    /* The back is `count` places after the front, going round the ring. */
    queue->slots[(queue->first + queue->count) % queue->capacity] = job;
    queue->count++;
}

struct job queue_pop(struct job_queue *queue)
{
    struct job job = queue->slots[queue->first];

    queue->first = (queue->first + 1) % queue->capacity;
    queue->count--;
    return job;
}
