/* Step 2: the thread pool (see pool.h and NOTES.md, chapter 2).
 *
 * One lock guards everything the threads share: the queue and the state.
 * Two condition variables let a thread sleep until what it waits for may
 * have happened:
 *   job_queued   a worker waits here for a job (or for closing time);
 *   space_freed  pool_submit() waits here for room in a full queue.
 * A condition variable is only a place to sleep: after waking, a thread
 * looks at the queue again, under the lock, before it believes anything.
 *
 * pthread_mutex_lock/unlock and pthread_cond_wait/signal/broadcast are not
 * checked: on a default mutex that was initialised (pool_create() checks
 * that), POSIX leaves them no way to fail but a programming error. The
 * calls that can fail for other reasons (init, create, join) are checked. */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "exercise.h"
#include "job_queue.h"
#include "log.h"

enum pool_state {
    POOL_RUNNING,  /* takes new jobs */
    POOL_STOPPING, /* pool_shutdown() began: no new jobs; the queued ones still run */
};

struct pool {
    pthread_mutex_t lock;       /* guards queue and state */
    pthread_cond_t job_queued;  /* signalled: a job was queued, or the pool is stopping */
    pthread_cond_t space_freed; /* signalled: a job left the queue */
    struct job_queue queue;
    enum pool_state state;
    pthread_t *workers;         /* the threads, for pthread_join() */
    int worker_count;           /* how many were started */
};

static void pool_free(struct pool *pool)
{
    pthread_cond_destroy(&pool->space_freed);
    pthread_cond_destroy(&pool->job_queued);
    pthread_mutex_destroy(&pool->lock);
    queue_free(&pool->queue);
    free(pool->workers);
    free(pool);
}

/* The life of a worker thread: take the next job, run it, again, until the
 * pool stops and the queue is empty. */
static void *worker_loop(void *argument)
{
    /* EXERCISE worker_loop: NOTES.md section 2.4 "A worker's loop"
     * stub:
     *     (void)argument;
     *     return NULL;
     */
    struct pool *pool = argument;

    for (;;) {
        pthread_mutex_lock(&pool->lock);
        /* A while, not an if: a wake-up can be spurious, and another worker
         * may have taken the job before this one got the lock back. */
        while (queue_is_empty(&pool->queue) && pool->state == POOL_RUNNING)
            pthread_cond_wait(&pool->job_queued, &pool->lock);
        if (queue_is_empty(&pool->queue)) {
            /* Stopping, and nothing left to do: the worker's day is over. */
            pthread_mutex_unlock(&pool->lock);
            return NULL;
        }
        struct job job = queue_pop(&pool->queue);
        pthread_cond_signal(&pool->space_freed); /* a waiting submit may go on */
        pthread_mutex_unlock(&pool->lock);

        /* Outside the lock: the other workers take jobs meanwhile. */
        job.function(job.argument);
    }
    /* END EXERCISE */
}

/* The lock and the two condition variables, or false after printing why. */
static bool init_sync(struct pool *pool)
{
    int error = pthread_mutex_init(&pool->lock, NULL);

    if (error == 0 && (error = pthread_cond_init(&pool->job_queued, NULL)) != 0)
        pthread_mutex_destroy(&pool->lock);
    if (error == 0 && (error = pthread_cond_init(&pool->space_freed, NULL)) != 0) {
        pthread_cond_destroy(&pool->job_queued);
        pthread_mutex_destroy(&pool->lock);
    }
    if (error != 0)
        log_error("pool_create: pthread init: %s", strerror(error));
    return error == 0;
}

/* Given: read it to see the fields at work. The workers start at once and
 * wait in worker_loop() for their first job. */
struct pool *pool_create(int workers, int queue_capacity)
{
    struct pool *pool;

    if (workers < 1 || queue_capacity < 1) {
        log_error("pool_create: %d workers and room for %d jobs: both must be at least 1",
                  workers, queue_capacity);
        return NULL;
    }
    pool = calloc(1, sizeof *pool);
    if (pool == NULL || !init_sync(pool)) {
        if (pool == NULL)
            log_error("pool_create: %s", strerror(errno));
        free(pool);
        return NULL;
    }
    pool->workers = calloc((size_t)workers, sizeof pool->workers[0]);
    if (pool->workers == NULL || !queue_init(&pool->queue, queue_capacity)) {
        if (pool->workers == NULL)
            log_error("pool_create: %s", strerror(errno));
        pool_free(pool);
        return NULL;
    }
    pool->state = POOL_RUNNING;
    for (int i = 0; i < workers; i++) {
        int error = pthread_create(&pool->workers[i], NULL, worker_loop, pool);
        if (error != 0) {
            /* EAGAIN: out of threads, or of memory for their stacks (2.9). */
            log_error("pthread_create (worker %d of %d): %s", i + 1, workers, strerror(error));
            pool_shutdown(pool); /* joins the workers started so far, and frees */
            return NULL;
        }
        pool->worker_count++;
    }
    return pool;
}

bool pool_submit(struct pool *pool, job_function function, void *argument)
{
    /* EXERCISE pool_submit: NOTES.md section 2.5 "Handing over a job"
     * stub:
     *     (void)pool;
     *     (void)function;
     *     (void)argument;
     *     return false;
     */
    bool accepted;

    pthread_mutex_lock(&pool->lock);
    /* Backpressure: when every slot is taken, the caller waits for room
     * instead of dropping the job or growing the queue without bound. */
    while (queue_is_full(&pool->queue) && pool->state == POOL_RUNNING)
        pthread_cond_wait(&pool->space_freed, &pool->lock);
    accepted = pool->state == POOL_RUNNING;
    if (accepted) {
        queue_push(&pool->queue, (struct job){.function = function, .argument = argument});
        pthread_cond_signal(&pool->job_queued); /* one job: one worker need wake */
    }
    pthread_mutex_unlock(&pool->lock);
    return accepted;
    /* END EXERCISE */
}

void pool_shutdown(struct pool *pool)
{
    /* EXERCISE pool_shutdown: NOTES.md section 2.6 "Closing time"
     * stub:
     *     (void)pool;
     */
    pthread_mutex_lock(&pool->lock);
    pool->state = POOL_STOPPING;
    /* Every sleeping thread must wake to see the new state, not just one. */
    pthread_cond_broadcast(&pool->job_queued);
    pthread_cond_broadcast(&pool->space_freed);
    pthread_mutex_unlock(&pool->lock);

    /* Each worker runs what is left in the queue, then returns. */
    for (int i = 0; i < pool->worker_count; i++) {
        int error = pthread_join(pool->workers[i], NULL);
        if (error != 0)
            log_error("pthread_join (worker %d): %s", i + 1, strerror(error));
    }
    pool_free(pool);
    /* END EXERCISE */
}
