/* What the pool tests see of the pool's synchronisation.
 *
 * The pool tests are linked with -Wl,--wrap for the pthread calls a pool
 * makes (mutex lock and unlock, condition wait, signal, broadcast, join) and
 * for the given queue's push and pop. Each wrapper calls the real function
 * and counts, so that a failure can say what the pool did ("pool_submit()
 * returned with the lock still held", "no worker ever signalled
 * space_freed") instead of guessing. Two of them can also misbehave on
 * purpose, within what POSIX allows:
 *   - a condition wait may return without a signal ("spurious wake-up"):
 *     spy_make_wake_ups_spurious() makes every other wait do so, so that a
 *     pool that trusts one wake-up (an `if` around the wait) fails every run,
 *     not once in a while;
 *   - a pop from an empty queue or a push into a full one, which the given
 *     queue cannot survive, is counted and turned into a harmless no-op, so
 *     that the test can report it instead of crashing. */
#ifndef TESTS_POOL_SPY_H
#define TESTS_POOL_SPY_H

#include <stdbool.h>

/* From now on (or no longer), every other condition wait of every thread
 * returns at once, as a spurious wake-up does. */
void spy_make_wake_ups_spurious(bool on);

/* How many waits returned spuriously because of it. */
long spy_spurious_wake_ups(void);

/* Mutexes the calling thread holds now (locked through pthread_mutex_lock
 * and not yet unlocked). */
int spy_mutexes_held_here(void);

/* Signals and broadcasts the calling thread has made so far (outside jobs). */
long spy_wake_ups_sent_here(void);

/* A test job calls these first and last: the thread running it is one of
 * the pool's workers, and the job's own signals are not the pool's.
 * spy_job_begins() returns the mutexes the worker held as the job began. */
int spy_job_begins(void);
void spy_job_ends(void);

/* Signals and broadcasts made by workers (threads that ran a job), outside
 * the jobs themselves. */
long spy_wake_ups_sent_by_workers(void);

/* queue_pop() on an empty queue, queue_push() on a full one. */
long spy_pops_from_an_empty_queue(void);
long spy_pushes_into_a_full_queue(void);

/* pthread_join() calls begun so far. */
long spy_joins_begun(void);

#endif
