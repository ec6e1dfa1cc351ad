/* A test double of step 2's pool (pool.h), linked into a copy of the step 2
 * server in place of pool.c, for the test
 * closes_each_connection_the_pool_refuses.
 *
 * The real pool refuses a job only once pool_shutdown() has begun, which a
 * running server never sees, so the server's refusal path would never run.
 * This one refuses every second job (the 2nd, the 4th, ...), so that it runs
 * on demand. The jobs it accepts run in order on one thread of its own;
 * pool_shutdown() runs what was accepted, joins that thread and frees
 * everything, as the real pool does. */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

enum { ROOM = 64 };

struct pool {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* a job came, room was made, or the pool is stopping */
    struct {
        job_function function;
        void *argument;
    } jobs[ROOM];
    int first, count;
    long submitted; /* pool_submit() calls so far */
    bool stopping;
    pthread_t worker;
};

static void *run_jobs(void *argument)
{
    struct pool *pool = argument;

    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (pool->count == 0 && !pool->stopping)
            pthread_cond_wait(&pool->changed, &pool->lock);
        if (pool->count == 0)
            break;
        job_function function = pool->jobs[pool->first].function;
        void *job = pool->jobs[pool->first].argument;
        pool->first = (pool->first + 1) % ROOM;
        pool->count--;
        pthread_cond_broadcast(&pool->changed);
        pthread_mutex_unlock(&pool->lock);
        function(job);
        pthread_mutex_lock(&pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

struct pool *pool_create(int workers, int queue_capacity)
{
    struct pool *pool = calloc(1, sizeof *pool);
    int error;

    (void)workers;
    (void)queue_capacity;
    if (pool == NULL) {
        log_error("pool_create: %s", strerror(errno));
        return NULL;
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->changed, NULL);
    error = pthread_create(&pool->worker, NULL, run_jobs, pool);
    if (error != 0) {
        log_error("pool_create: pthread_create: %s", strerror(error));
        free(pool);
        return NULL;
    }
    return pool;
}

bool pool_submit(struct pool *pool, job_function function, void *argument)
{
    bool accepted;

    pthread_mutex_lock(&pool->lock);
    accepted = ++pool->submitted % 2 == 1 && !pool->stopping;
    while (accepted && pool->count == ROOM && !pool->stopping)
        pthread_cond_wait(&pool->changed, &pool->lock);
    accepted = accepted && !pool->stopping;
    if (accepted) {
        pool->jobs[(pool->first + pool->count) % ROOM].function = function;
        pool->jobs[(pool->first + pool->count) % ROOM].argument = argument;
        pool->count++;
        pthread_cond_broadcast(&pool->changed);
    }
    pthread_mutex_unlock(&pool->lock);
    return accepted;
}

void pool_shutdown(struct pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->changed);
    pthread_mutex_unlock(&pool->lock);
    pthread_join(pool->worker, NULL);
    pthread_cond_destroy(&pool->changed);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}
