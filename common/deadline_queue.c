#include "deadline_queue.h"

#include <stddef.h>

void deadline_queue_init(struct deadline_queue *queue, int64_t duration_ms)
{
    *queue = (struct deadline_queue){.duration_ms = duration_ms};
}

void deadline_cancel(struct deadline *deadline)
{
    struct deadline_queue *queue = deadline->queue;

    if (queue == NULL)
        return;
    if (deadline->prev != NULL)
        deadline->prev->next = deadline->next;
    else
        queue->first = deadline->next;
    if (deadline->next != NULL)
        deadline->next->prev = deadline->prev;
    else
        queue->last = deadline->prev;
    deadline->prev = deadline->next = NULL;
    deadline->queue = NULL;
}

void deadline_set(struct deadline_queue *queue, struct deadline *deadline, int64_t now_ms)
{
    deadline_cancel(deadline);
    /* Same duration for all, and a clock that never goes back: the new
     * deadline is the latest, so the tail is its sorted place. */
    deadline->at_ms = now_ms + queue->duration_ms;
    deadline->prev = queue->last;
    deadline->next = NULL;
    deadline->queue = queue;
    if (queue->last != NULL)
        queue->last->next = deadline;
    else
        queue->first = deadline;
    queue->last = deadline;
}

struct deadline *deadline_queue_first(const struct deadline_queue *queue)
{
    return queue->first;
}

struct deadline *deadline_queue_pop_due(struct deadline_queue *queue, int64_t now_ms)
{
    struct deadline *first = queue->first;

    if (first == NULL || first->at_ms > now_ms)
        return NULL;
    deadline_cancel(first);
    return first;
}

bool deadline_is_set(const struct deadline *deadline)
{
    return deadline->queue != NULL;
}

int64_t earliest_deadline_of(const struct deadline_queue *const queues[], size_t count,
                             int64_t also)
{
    int64_t earliest = also;

    for (size_t i = 0; i < count; i++) {
        const struct deadline *first = deadline_queue_first(queues[i]);
        if (first != NULL && (earliest < 0 || first->at_ms < earliest))
            earliest = first->at_ms;
    }
    return earliest;
}
