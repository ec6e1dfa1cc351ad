/* The wrappers behind pool_spy.h. The linker sends every call of the pool
 * (and of the tests) to __wrap_NAME; __real_NAME is the C library's. */
#include "pool_spy.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "job_queue.h"

int __real_pthread_mutex_lock(pthread_mutex_t *mutex);
int __real_pthread_mutex_unlock(pthread_mutex_t *mutex);
int __real_pthread_cond_wait(pthread_cond_t *cond, pthread_mutex_t *mutex);
int __real_pthread_cond_timedwait(pthread_cond_t *cond, pthread_mutex_t *mutex,
                                  const struct timespec *deadline);
int __real_pthread_cond_signal(pthread_cond_t *cond);
int __real_pthread_cond_broadcast(pthread_cond_t *cond);
int __real_pthread_join(pthread_t thread, void **result);
struct job __real_queue_pop(struct job_queue *queue);
void __real_queue_push(struct job_queue *queue, struct job job);

int __wrap_pthread_mutex_lock(pthread_mutex_t *mutex);
int __wrap_pthread_mutex_unlock(pthread_mutex_t *mutex);
int __wrap_pthread_cond_wait(pthread_cond_t *cond, pthread_mutex_t *mutex);
int __wrap_pthread_cond_timedwait(pthread_cond_t *cond, pthread_mutex_t *mutex,
                                  const struct timespec *deadline);
int __wrap_pthread_cond_signal(pthread_cond_t *cond);
int __wrap_pthread_cond_broadcast(pthread_cond_t *cond);
int __wrap_pthread_join(pthread_t thread, void **result);
struct job __wrap_queue_pop(struct job_queue *queue);
void __wrap_queue_push(struct job_queue *queue, struct job job);

static atomic_bool spurious_mode;
static atomic_int spurious_epoch; /* counts the calls of spy_make_wake_ups_spurious() */
static atomic_long spurious_wake_ups;
static atomic_long wake_ups_by_workers;
static atomic_long empty_pops;
static atomic_long full_pushes;
static atomic_long joins_begun;

static _Thread_local int mutexes_held;
static _Thread_local long wake_ups_sent;
static _Thread_local long waits_made; /* in this epoch */
static _Thread_local int seen_epoch;
static _Thread_local bool is_worker;
static _Thread_local bool in_job;

void spy_make_wake_ups_spurious(bool on)
{
    atomic_fetch_add(&spurious_epoch, 1);
    atomic_store(&spurious_mode, on);
}

long spy_spurious_wake_ups(void)
{
    return atomic_load(&spurious_wake_ups);
}

int spy_mutexes_held_here(void)
{
    return mutexes_held;
}

long spy_wake_ups_sent_here(void)
{
    return wake_ups_sent;
}

int spy_job_begins(void)
{
    is_worker = true;
    in_job = true;
    return mutexes_held;
}

void spy_job_ends(void)
{
    in_job = false;
}

long spy_wake_ups_sent_by_workers(void)
{
    return atomic_load(&wake_ups_by_workers);
}

long spy_pops_from_an_empty_queue(void)
{
    return atomic_load(&empty_pops);
}

long spy_pushes_into_a_full_queue(void)
{
    return atomic_load(&full_pushes);
}

long spy_joins_begun(void)
{
    return atomic_load(&joins_begun);
}

int __wrap_pthread_mutex_lock(pthread_mutex_t *mutex)
{
    int error = __real_pthread_mutex_lock(mutex);
    if (error == 0)
        mutexes_held++;
    return error;
}

int __wrap_pthread_mutex_unlock(pthread_mutex_t *mutex)
{
    int error = __real_pthread_mutex_unlock(mutex);
    if (error == 0)
        mutexes_held--;
    return error;
}

/* In spurious mode, each thread's first wait since the mode began, and
 * every other one after it, returns at once, having let go of the mutex for
 * a moment, as a real spurious wake-up (or a wake-up another thread made
 * useless) does. */
static bool wake_up_spuriously(pthread_mutex_t *mutex)
{
    int epoch = atomic_load(&spurious_epoch);

    if (!atomic_load(&spurious_mode))
        return false;
    if (seen_epoch != epoch) {
        seen_epoch = epoch;
        waits_made = 0;
    }
    if (waits_made++ % 2 != 0)
        return false;
    __real_pthread_mutex_unlock(mutex);
    sched_yield();
    __real_pthread_mutex_lock(mutex);
    atomic_fetch_add(&spurious_wake_ups, 1);
    return true;
}

int __wrap_pthread_cond_wait(pthread_cond_t *cond, pthread_mutex_t *mutex)
{
    if (wake_up_spuriously(mutex))
        return 0;
    return __real_pthread_cond_wait(cond, mutex);
}

int __wrap_pthread_cond_timedwait(pthread_cond_t *cond, pthread_mutex_t *mutex,
                                  const struct timespec *deadline)
{
    if (wake_up_spuriously(mutex))
        return 0;
    return __real_pthread_cond_timedwait(cond, mutex, deadline);
}

static void count_wake_up(void)
{
    if (in_job)
        return;
    wake_ups_sent++;
    if (is_worker)
        atomic_fetch_add(&wake_ups_by_workers, 1);
}

int __wrap_pthread_cond_signal(pthread_cond_t *cond)
{
    count_wake_up();
    return __real_pthread_cond_signal(cond);
}

int __wrap_pthread_cond_broadcast(pthread_cond_t *cond)
{
    count_wake_up();
    return __real_pthread_cond_broadcast(cond);
}

int __wrap_pthread_join(pthread_t thread, void **result)
{
    atomic_fetch_add(&joins_begun, 1);
    return __real_pthread_join(thread, result);
}

static void do_nothing(void *argument)
{
    (void)argument;
}

/* The given queue would hand out a stale slot: count it, hand out nothing. */
struct job __wrap_queue_pop(struct job_queue *queue)
{
    if (queue_is_empty(queue)) {
        atomic_fetch_add(&empty_pops, 1);
        return (struct job){.function = do_nothing, .argument = NULL};
    }
    return __real_queue_pop(queue);
}

/* The given queue would overwrite the oldest job: count it, keep the queue. */
void __wrap_queue_push(struct job_queue *queue, struct job job)
{
    if (queue_is_full(queue)) {
        atomic_fetch_add(&full_pushes, 1);
        return;
    }
    __real_queue_push(queue, job);
}
