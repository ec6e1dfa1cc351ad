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
    /* TODO: write worker_loop(). NOTES.md section 2.4 "A worker's loop" explains it. */
    exercise_unwritten("worker_loop", "2.4", "A worker's loop");
    (void)argument;
    return NULL;
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
    /* TODO: write pool_submit(). NOTES.md section 2.5 "Handing over a job" explains it. */
    exercise_unwritten("pool_submit", "2.5", "Handing over a job");
    (void)pool;
    (void)function;
    (void)argument;
    return false;
}

void pool_shutdown(struct pool *pool)
{
    /* TODO: write pool_shutdown(). NOTES.md section 2.6 "Closing time" explains it. */
    exercise_unwritten("pool_shutdown", "2.6", "Closing time");
    (void)pool;
}
