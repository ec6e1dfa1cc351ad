/* A queue of deadlines that all have the same duration.
 *
 * When every deadline of a queue is set "duration_ms from now", they come
 * due in the order they were set: a first-in first-out list is then a sorted
 * timer queue. Setting, cancelling and finding the earliest are all O(1),
 * with no heap and no tree (libevent calls this a "common timeout").
 *
 * The nodes are intrusive: a struct deadline lives inside whatever it times
 * (a connection, a coroutine), so the queue never allocates. A deadline is
 * in at most one queue at a time. */
#ifndef COMMON_DEADLINE_QUEUE_H
#define COMMON_DEADLINE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct deadline_queue;

struct deadline {
    int64_t at_ms;                /* due when the monotonic clock reaches it */
    struct deadline *prev;        /* towards the earlier deadlines */
    struct deadline *next;        /* towards the later ones */
    struct deadline_queue *queue; /* the queue it is in; NULL when in none */
};

struct deadline_queue {
    struct deadline *first; /* the earliest; NULL when empty */
    struct deadline *last;
    int64_t duration_ms;    /* every deadline is set this long after "now" */
};

/* An empty queue whose deadlines are each duration_ms (>= 0) after being set. */
void deadline_queue_init(struct deadline_queue *queue, int64_t duration_ms);

/* (Re)sets `deadline` to now_ms + the queue's duration, at the tail, taking
 * it out of the queue it was in first. now_ms must come from a monotonic
 * clock (monotonic_ms()), so that the queue stays sorted. */
void deadline_set(struct deadline_queue *queue, struct deadline *deadline, int64_t now_ms);

/* Takes `deadline` out of its queue; nothing happens if it is in none. */
void deadline_cancel(struct deadline *deadline);

/* The earliest deadline of the queue, or NULL when it is empty. */
struct deadline *deadline_queue_first(const struct deadline_queue *queue);

/* Takes the earliest deadline out and returns it if it is due at now_ms;
 * NULL otherwise. Call it in a loop to handle every due deadline. */
struct deadline *deadline_queue_pop_due(struct deadline_queue *queue, int64_t now_ms);

bool deadline_is_set(const struct deadline *deadline);

/* The earliest deadline among `count` queues and `also` (-1: none), or -1
 * when there is none at all. Each queue is sorted: its first is its
 * earliest. */
int64_t earliest_deadline_of(const struct deadline_queue *const queues[], size_t count,
                             int64_t also);

#endif
