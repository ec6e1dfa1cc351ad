/* A stress program for the pool, to run under ThreadSanitizer.
 *
 * Not a Criterion test: Criterion aborts at start under TSan. Built with
 * -fsanitize=thread (a build directory set up with -Db_sanitize=thread) and
 * run with TSAN_OPTIONS='halt_on_error=1 exitcode=66', it exits 0 when no
 * race was seen and every job ran exactly once, 66 on a race, 1 on a wrong
 * count. Without TSan it still checks the counts.
 *
 * The jobs deliberately use plain (non-atomic) memory: the submitter writes
 * a job's input before pool_submit(), the job reads it and writes its output,
 * and the main thread reads that output after pool_shutdown(). Only the
 * pool's lock and pthread_join() order those accesses, so TSan reports a
 * race if the pool does not. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pool.h"

enum {
    SUBMITTERS = 4,         /* threads calling pool_submit() at once */
    WORKERS = 3,
    CAPACITY = 4,           /* small, so that submitters often wait for room */
    JOBS_PER_SUBMITTER = 1500,
    BUSY_ROUNDS = 40,       /* pools filled by several submitters, then shut down */
    IDLE_ROUNDS = 100,      /* pools created and shut down at once */
};

struct job_slot {
    int input;  /* written by the submitter before pool_submit() */
    int output; /* written by the job, read after pool_shutdown() */
};

struct round {
    struct pool *pool;
    struct job_slot slots[SUBMITTERS][JOBS_PER_SUBMITTER];
    atomic_int refused;
};

struct submitter {
    struct round *round;
    int index;
};

static atomic_long jobs_run;

static void square_input(void *argument)
{
    struct job_slot *slot = argument;
    slot->output = slot->input * slot->input;
    atomic_fetch_add_explicit(&jobs_run, 1, memory_order_relaxed);
}

static void *submit_many(void *argument)
{
    struct submitter *submitter = argument;
    struct job_slot *slots = submitter->round->slots[submitter->index];

    for (int i = 0; i < JOBS_PER_SUBMITTER; i++) {
        slots[i].input = i % 1000;
        if (!pool_submit(submitter->round->pool, square_input, &slots[i]))
            atomic_fetch_add(&submitter->round->refused, 1);
    }
    return NULL;
}

/* Several threads submit at once into a small queue; the pool is shut down
 * while its workers are still busy with the last jobs. Returns the number of
 * wrong outputs. */
static int busy_round(struct round *round)
{
    pthread_t threads[SUBMITTERS];
    struct submitter submitters[SUBMITTERS];
    int wrong = 0;

    memset(round, 0, sizeof *round);
    round->pool = pool_create(WORKERS, CAPACITY);
    if (round->pool == NULL)
        return -1;
    for (int s = 0; s < SUBMITTERS; s++) {
        submitters[s] = (struct submitter){.round = round, .index = s};
        if (pthread_create(&threads[s], NULL, submit_many, &submitters[s]) != 0) {
            fprintf(stderr, "pool_stress: pthread_create failed\n");
            exit(1);
        }
    }
    for (int s = 0; s < SUBMITTERS; s++)
        pthread_join(threads[s], NULL);
    pool_shutdown(round->pool); /* the queue is usually not empty yet */
    for (int s = 0; s < SUBMITTERS; s++)
        for (int i = 0; i < JOBS_PER_SUBMITTER; i++)
            wrong += round->slots[s][i].output != (i % 1000) * (i % 1000);
    return wrong + atomic_load(&round->refused);
}

int main(void)
{
    static struct round round;
    struct timespec start, end;
    long expected = (long)BUSY_ROUNDS * SUBMITTERS * JOBS_PER_SUBMITTER;
    int wrong = 0;

    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int r = 0; r < BUSY_ROUNDS; r++) {
        int result = busy_round(&round);
        if (result < 0) {
            fprintf(stderr, "pool_stress: pool_create failed\n");
            return 1;
        }
        wrong += result;
    }
    for (int r = 0; r < IDLE_ROUNDS; r++) {
        struct pool *pool = pool_create(WORKERS, CAPACITY);
        if (pool == NULL) {
            fprintf(stderr, "pool_stress: pool_create failed\n");
            return 1;
        }
        pool_shutdown(pool);
    }
    clock_gettime(CLOCK_MONOTONIC, &end);

    long run = atomic_load(&jobs_run);
    printf("pool_stress: %d busy rounds (%d submitters, %d workers, queue of %d), %d idle "
           "rounds: %ld of %ld jobs run, %d wrong, in %.2f s\n",
           BUSY_ROUNDS, SUBMITTERS, WORKERS, CAPACITY, IDLE_ROUNDS, run, expected, wrong,
           (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9);
    if (run != expected || wrong != 0) {
        fprintf(stderr, "pool_stress: FAILED: every job must run exactly once, with its input\n");
        return 1;
    }
    return 0;
}
