/* A stress program for the pool, to run under ThreadSanitizer.
 *
 * Not a Criterion test: Criterion aborts at start under TSan. Built with
 * -fsanitize=thread and run with TSAN_OPTIONS='halt_on_error=1 exitcode=66',
 * it exits 0 when no race was seen and every job ran exactly once, 66 on a
 * race, 1 on a wrong count or when the pool gets stuck. Without TSan it
 * still checks the counts.
 *
 * The jobs deliberately use plain (non-atomic) memory: the submitter writes
 * a job's input before pool_submit(), the job reads it and writes its output,
 * and the main thread reads that output after pool_shutdown(). Only the
 * pool's lock and pthread_join() order those accesses, so TSan reports a
 * race if the pool does not. The idle rounds let the workers settle into
 * their wait before pool_shutdown(), so that a state changed without the
 * lock races with the workers' last look at it, every run.
 *
 * It stops at the first round that goes wrong, saying how, and a watchdog
 * ends it when nothing has happened for STALL_MS (a submit or a shutdown
 * that never returns), so that it always finishes within seconds. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pool.h"

enum {
    SUBMITTERS = 4,         /* threads calling pool_submit() at once */
    WORKERS = 3,
    CAPACITY = 4,           /* small, so that submitters often wait for room */
    JOBS_PER_SUBMITTER = 600,
    BUSY_ROUNDS = 12,       /* pools filled by several submitters, then shut down */
    IDLE_ROUNDS = 40,       /* pools created, left to settle, and shut down */
    SETTLE_MS = 2,          /* how long an idle pool's workers get to start waiting */
    STALL_MS = 3000,        /* nothing happening for this long means the pool is stuck */
    NOT_RUN = -1,           /* an output no job wrote */
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

/* What the program is doing, for the watchdog's message. */
enum phase { SUBMITTING, SHUTTING_DOWN_A_BUSY_POOL, SHUTTING_DOWN_AN_IDLE_POOL, CREATING };
static const char *const phase_names[] = {
    [SUBMITTING] = "in pool_submit(): submitters waiting for room that never came",
    [SHUTTING_DOWN_A_BUSY_POOL] = "in pool_shutdown() of a pool with jobs still queued",
    [SHUTTING_DOWN_AN_IDLE_POOL] = "in pool_shutdown() of an idle pool",
    [CREATING] = "in pool_create()",
};
static atomic_int phase;
static atomic_int round_number;
static atomic_long progress; /* calls returned and jobs run: the watchdog watches it */
static atomic_long jobs_run;

static void square_input(void *argument)
{
    struct job_slot *slot = argument;
    slot->output = slot->input * slot->input;
    atomic_fetch_add_explicit(&jobs_run, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
}

static void *submit_many(void *argument)
{
    struct submitter *submitter = argument;
    struct job_slot *slots = submitter->round->slots[submitter->index];

    for (int i = 0; i < JOBS_PER_SUBMITTER; i++) {
        slots[i].input = i % 1000;
        slots[i].output = NOT_RUN;
        if (!pool_submit(submitter->round->pool, square_input, &slots[i]))
            atomic_fetch_add(&submitter->round->refused, 1);
        atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
    }
    return NULL;
}

static void sleep_ms(int ms)
{
    struct timespec pause = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&pause, NULL);
}

/* Ends the program when nothing has happened for STALL_MS. */
static void *watchdog(void *unused)
{
    long last = -1;
    int quiet_ms = 0;

    (void)unused;
    for (;;) {
        sleep_ms(100);
        long now = atomic_load(&progress);
        quiet_ms = now == last ? quiet_ms + 100 : 0;
        last = now;
        if (quiet_ms >= STALL_MS) {
            fprintf(stderr, "pool_stress: FAILED: stuck for %d s %s (round %d; %ld jobs had "
                    "run). The Criterion tests of step 2's pool (meson test -C build --suite "
                    "step2 --print-errorlogs) say more about the same mistake.\n",
                    STALL_MS / 1000, phase_names[atomic_load(&phase)],
                    atomic_load(&round_number), atomic_load(&jobs_run));
            fflush(stderr);
            _exit(1);
        }
    }
    return NULL;
}

/* Stops the program after a round that went wrong, saying how. */
static void expect_round_right(const struct round *round, int number)
{
    int refused = atomic_load(&round->refused), never_ran = 0, wrong = 0;

    for (int s = 0; s < SUBMITTERS; s++)
        for (int i = 0; i < JOBS_PER_SUBMITTER; i++) {
            int output = round->slots[s][i].output;
            never_ran += output == NOT_RUN;
            wrong += output != NOT_RUN && output != (i % 1000) * (i % 1000);
        }
    never_ran -= refused; /* a refused job is not expected to run */
    if (refused == 0 && never_ran == 0 && wrong == 0)
        return;
    fprintf(stderr, "pool_stress: FAILED in round %d: of %d jobs, %d were refused "
            "(pool_submit() returned false on a running pool), %d were accepted but had not "
            "run when pool_shutdown() returned, %d ran with the wrong input or twice.\n",
            number, SUBMITTERS * JOBS_PER_SUBMITTER, refused, never_ran, wrong);
    fflush(stderr);
    _exit(1); /* now: the pool's threads are not worth ThreadSanitizer's report */
}

/* Several threads submit at once into a small queue; the pool is shut down
 * while its workers are still busy with the last jobs. */
static void busy_round(struct round *round, int number)
{
    pthread_t threads[SUBMITTERS];
    struct submitter submitters[SUBMITTERS];

    memset(round, 0, sizeof *round);
    atomic_store(&phase, CREATING);
    round->pool = pool_create(WORKERS, CAPACITY);
    if (round->pool == NULL) {
        fprintf(stderr, "pool_stress: pool_create failed\n");
        exit(1);
    }
    atomic_store(&phase, SUBMITTING);
    for (int s = 0; s < SUBMITTERS; s++) {
        submitters[s] = (struct submitter){.round = round, .index = s};
        if (pthread_create(&threads[s], NULL, submit_many, &submitters[s]) != 0) {
            fprintf(stderr, "pool_stress: pthread_create failed\n");
            exit(1);
        }
    }
    for (int s = 0; s < SUBMITTERS; s++)
        pthread_join(threads[s], NULL);
    atomic_store(&phase, SHUTTING_DOWN_A_BUSY_POOL);
    pool_shutdown(round->pool); /* the queue is usually not empty yet */
    atomic_fetch_add(&progress, 1);
    expect_round_right(round, number);
}

/* A pool whose workers have all gone to sleep, shut down. */
static void idle_round(void)
{
    atomic_store(&phase, CREATING);
    struct pool *pool = pool_create(WORKERS, CAPACITY);
    if (pool == NULL) {
        fprintf(stderr, "pool_stress: pool_create failed\n");
        exit(1);
    }
    sleep_ms(SETTLE_MS);
    atomic_store(&phase, SHUTTING_DOWN_AN_IDLE_POOL);
    pool_shutdown(pool);
    atomic_fetch_add(&progress, 1);
}

int main(void)
{
    static struct round round;
    struct timespec start, end;
    pthread_t guard;

    if (pthread_create(&guard, NULL, watchdog, NULL) != 0) {
        fprintf(stderr, "pool_stress: pthread_create failed\n");
        return 1;
    }
    pthread_detach(guard);
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int r = 1; r <= BUSY_ROUNDS; r++) {
        atomic_store(&round_number, r);
        busy_round(&round, r);
    }
    for (int r = 1; r <= IDLE_ROUNDS; r++) {
        atomic_store(&round_number, BUSY_ROUNDS + r);
        idle_round();
    }
    clock_gettime(CLOCK_MONOTONIC, &end);

    printf("pool_stress: %d busy rounds (%d submitters, %d workers, queue of %d), %d idle "
           "rounds: %ld jobs, each run once with its input, in %.2f s\n",
           BUSY_ROUNDS, SUBMITTERS, WORKERS, CAPACITY, IDLE_ROUNDS, atomic_load(&jobs_run),
           (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9);
    return 0;
}
