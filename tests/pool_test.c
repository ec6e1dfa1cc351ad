/* Step 2's pool, tested on its own, in this process: jobs run once, on the
 * workers, W at a time; a full queue makes submit wait; an idle pool sleeps;
 * shutdown runs what was queued and joins.
 *
 * The same source is linked once with step2_threadpool/pool.c (meson suite
 * step2) and once with solutions/step2_threadpool/pool.c (step2-reference).
 * Every wait is bounded, so a wrong pool fails with a message instead of
 * hanging: each call that could block for ever runs on a helper thread that
 * the test waits for with a deadline. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "pool.h"

/* ------------------------------------------------ what the pool printed */

/* The pool's stubs print "TODO: write ...()" on stderr. Each test runs in its
 * own process: stderr goes to a file while it runs, so that failure messages
 * can quote those lines, and is copied to the real stderr at the end. */
static char captured_path[64];
static int real_stderr = -1;

static void capture_stderr(void)
{
    snprintf(captured_path, sizeof captured_path, "/tmp/workbook-pool-XXXXXX");
    int fd = mkstemp(captured_path);
    if (fd < 0)
        return;
    fflush(stderr);
    real_stderr = dup(2);
    dup2(fd, 2);
    close(fd);
}

static char *captured_text(void)
{
    FILE *file;
    char *text;
    long length;

    fflush(stderr);
    file = fopen(captured_path, "rb");
    if (file == NULL || fseek(file, 0, SEEK_END) != 0 || (length = ftell(file)) < 0) {
        if (file != NULL)
            fclose(file);
        return calloc(1, 1);
    }
    rewind(file);
    text = calloc((size_t)length + 1, 1);
    if (text != NULL && fread(text, 1, (size_t)length, file) != (size_t)length)
        text[0] = '\0';
    fclose(file);
    return text != NULL ? text : calloc(1, 1);
}

static void release_stderr(void)
{
    char *text;

    if (real_stderr < 0)
        return;
    text = captured_text();
    dup2(real_stderr, 2);
    close(real_stderr);
    real_stderr = -1;
    fputs(text, stderr);
    free(text);
    unlink(captured_path);
}

/* The TODO lines printed so far. */
static const char *pool_said(void)
{
    static char paragraph[3000];
    char *text = captured_text();

    snprintf(paragraph, sizeof paragraph, "%s", todo_lines(text));
    free(text);
    return paragraph;
}

/* This executable tests the pool linked into it: no program to name. */
const struct program_default program_defaults[] = {{NULL, NULL}};

TestSuite(step2_pool, .timeout = 30, .init = capture_stderr, .fini = release_stderr);

/* An absolute deadline for pthread_cond_timedwait (CLOCK_REALTIME, its default). */
static struct timespec deadline_after(int ms)
{
    struct timespec at;
    clock_gettime(CLOCK_REALTIME, &at);
    at.tv_sec += ms / 1000;
    at.tv_nsec += (long)(ms % 1000) * 1000000;
    if (at.tv_nsec >= 1000000000) {
        at.tv_sec++;
        at.tv_nsec -= 1000000000;
    }
    return at;
}

/* Threads of this process, from /proc/self/status. */
static int thread_count(void)
{
    FILE *status = fopen("/proc/self/status", "r");
    char line[256];
    int threads = -1;

    while (status != NULL && fgets(line, sizeof line, status) != NULL)
        if (sscanf(line, "Threads: %d", &threads) == 1)
            break;
    if (status != NULL)
        fclose(status);
    return threads;
}

/* Waits up to timeout_ms for the thread count to become `expected`. */
static int settle_thread_count(int expected, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    int threads = thread_count();

    while (threads != expected && now_ms() < deadline) {
        pause_ms(5);
        threads = thread_count();
    }
    return threads;
}

/* ------------------------------------------------------------ the jobs */

/* What the jobs of one test share, guarded by `lock`. */
struct shared {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int started;       /* jobs that began */
    int finished;      /* jobs that ended */
    int hold_ms;       /* how long a counting job works */
    bool gate_open;    /* gated jobs wait for this */
    int barrier_size;  /* meeting jobs wait until this many are there at once */
    int at_barrier;    /* meeting jobs there now */
    int most_at_once;  /* the most that were ever there together */
    bool barrier_met;
};

/* One job's own record: its argument. */
struct job_record {
    struct shared *shared;
    atomic_int runs;
    pthread_t ran_on;
    bool met_everyone;
};

static void shared_init(struct shared *shared)
{
    memset(shared, 0, sizeof *shared);
    pthread_mutex_init(&shared->lock, NULL);
    pthread_cond_init(&shared->changed, NULL);
}

static struct job_record *make_records(struct shared *shared, int count)
{
    struct job_record *records = calloc((size_t)count, sizeof *records);
    cr_assert(records != NULL, "out of memory");
    for (int i = 0; i < count; i++)
        records[i].shared = shared;
    return records;
}

static void note(struct shared *shared, int *counter)
{
    pthread_mutex_lock(&shared->lock);
    (*counter)++;
    pthread_cond_broadcast(&shared->changed);
    pthread_mutex_unlock(&shared->lock);
}

/* Counts itself, works hold_ms, and says it is done. */
static void counting_job(void *argument)
{
    struct job_record *record = argument;

    record->ran_on = pthread_self();
    atomic_fetch_add(&record->runs, 1);
    note(record->shared, &record->shared->started);
    if (record->shared->hold_ms > 0)
        pause_ms(record->shared->hold_ms);
    note(record->shared, &record->shared->finished);
}

/* Waits (at most 3 s) until the test opens the gate. */
static void gated_job(void *argument)
{
    struct job_record *record = argument;
    struct shared *shared = record->shared;
    struct timespec give_up = deadline_after(3000);

    atomic_fetch_add(&record->runs, 1);
    note(shared, &shared->started);
    pthread_mutex_lock(&shared->lock);
    while (!shared->gate_open &&
           pthread_cond_timedwait(&shared->changed, &shared->lock, &give_up) != ETIMEDOUT) {
    }
    pthread_mutex_unlock(&shared->lock);
    note(shared, &shared->finished);
}

/* Arrives at the barrier and waits (at most 1 s) for the others: they all
 * meet only if barrier_size jobs run at the same time. */
static void meeting_job(void *argument)
{
    struct job_record *record = argument;
    struct shared *shared = record->shared;
    struct timespec give_up = deadline_after(1000);

    atomic_fetch_add(&record->runs, 1);
    pthread_mutex_lock(&shared->lock);
    shared->at_barrier++;
    if (shared->at_barrier > shared->most_at_once)
        shared->most_at_once = shared->at_barrier;
    if (shared->at_barrier >= shared->barrier_size)
        shared->barrier_met = true;
    pthread_cond_broadcast(&shared->changed);
    while (!shared->barrier_met &&
           pthread_cond_timedwait(&shared->changed, &shared->lock, &give_up) != ETIMEDOUT) {
    }
    record->met_everyone = shared->barrier_met;
    shared->at_barrier--;
    pthread_mutex_unlock(&shared->lock);
    note(shared, &shared->finished);
}

/* Waits up to timeout_ms for *counter (finished or started) to reach count. */
static int wait_for_count(struct shared *shared, int *counter, int count, int timeout_ms)
{
    struct timespec give_up = deadline_after(timeout_ms);
    int reached;

    pthread_mutex_lock(&shared->lock);
    while (*counter < count &&
           pthread_cond_timedwait(&shared->changed, &shared->lock, &give_up) != ETIMEDOUT) {
    }
    reached = *counter;
    pthread_mutex_unlock(&shared->lock);
    return reached;
}

static int finished_count(struct shared *shared)
{
    return wait_for_count(shared, &shared->finished, 0, 0);
}

/* ------------------------------------------- the pool, with deadlines */

/* The workers must be alive and waiting after pool_create(). */
static void expect_workers_alive(int before, int workers)
{
    pause_ms(50);
    int threads = thread_count();
    if (threads != before + workers)
        fail_test("50 ms after pool_create(%d, ...), this process had %d threads; before it, "
                  "%d. Expected %d more: the workers, started at once and waiting for jobs.\n"
                  "%s%s",
                  workers, threads, before, workers,
                  threads < before + workers
                      ? "Likely cause: worker_loop() returns instead of waiting on the condition "
                        "variable for a job (NOTES.md section 2.4)."
                      : "Likely cause: pool_create() starts more threads than asked.",
                  pool_said());
}

/* A pool whose workers are up and waiting, or the test fails. */
static struct pool *make_pool(int workers, int queue_capacity)
{
    int before = thread_count();
    struct pool *pool = pool_create(workers, queue_capacity);

    if (pool == NULL)
        fail_test("pool_create(%d, %d) returned NULL: no pool to test.%s", workers,
                  queue_capacity, pool_said());
    expect_workers_alive(before, workers);
    return pool;
}

/* The submissions of a test, made on a helper thread (the "caller"). */
struct submission {
    struct pool *pool;
    job_function function;
    struct job_record *records;
    int count;
    pthread_t caller;
    atomic_int returned;   /* pool_submit() calls that returned */
    atomic_int refused;    /* of them, those that returned false */
    int64_t slowest_ms;    /* the longest single call */
    atomic_bool done;
};

static void *submit_all(void *argument)
{
    struct submission *submission = argument;

    submission->caller = pthread_self();
    for (int i = 0; i < submission->count; i++) {
        int64_t started = now_ms();
        if (!pool_submit(submission->pool, submission->function, &submission->records[i]))
            atomic_fetch_add(&submission->refused, 1);
        int64_t took = now_ms() - started;
        if (took > submission->slowest_ms)
            submission->slowest_ms = took;
        atomic_fetch_add(&submission->returned, 1);
    }
    atomic_store(&submission->done, true);
    return NULL;
}

static void start_submitting(struct submission *submission, pthread_t *thread)
{
    int error = pthread_create(thread, NULL, submit_all, submission);
    cr_assert(error == 0, "pthread_create: %s", strerror(error));
}

/* Joins the submitting thread within timeout_ms; false if it is still stuck
 * (it is then left behind: this test process ends soon anyway). */
static bool finish_submitting(pthread_t thread, int timeout_ms)
{
    struct timespec give_up = deadline_after(timeout_ms);
    return pthread_timedjoin_np(thread, NULL, &give_up) == 0;
}

/* Submits count jobs from a helper thread and expects every call to return
 * true within timeout_ms. */
static void submit_jobs(struct submission *submission, struct pool *pool, job_function function,
                        struct job_record *records, int count, int timeout_ms)
{
    pthread_t thread;

    *submission = (struct submission){.pool = pool, .function = function, .records = records,
                                      .count = count};
    start_submitting(submission, &thread);
    if (!finish_submitting(thread, timeout_ms))
        fail_test("Submitting %d jobs did not finish within %d s: pool_submit() returned %d "
                  "times, then blocked.\nLikely cause: the queue is full and no worker takes "
                  "jobs out of it (worker_loop(), NOTES.md section 2.4), or pool_submit() waits "
                  "on a condition nobody signals (section 2.5).%s",
                  count, timeout_ms / 1000, atomic_load(&submission->returned), pool_said());
    if (atomic_load(&submission->refused) > 0)
        fail_test("pool_submit() returned false for %d of %d jobs, on a running pool.\n"
                  "Expected: true every time; false only once pool_shutdown() has begun "
                  "(NOTES.md section 2.5).%s",
                  atomic_load(&submission->refused), count, pool_said());
}

static void *shutdown_pool(void *pool)
{
    pool_shutdown(pool);
    return NULL;
}

/* Runs pool_shutdown() on a helper thread. Returns how long it took, or -1
 * if it had not returned after timeout_ms. */
static int64_t shutdown_within(struct pool *pool, int timeout_ms)
{
    pthread_t thread;
    int64_t started = now_ms();
    struct timespec give_up = deadline_after(timeout_ms);
    int error = pthread_create(&thread, NULL, shutdown_pool, pool);

    cr_assert(error == 0, "pthread_create: %s", strerror(error));
    if (pthread_timedjoin_np(thread, NULL, &give_up) != 0)
        return -1;
    return now_ms() - started;
}

static void expect_prompt_shutdown(struct pool *pool, int timeout_ms)
{
    if (shutdown_within(pool, timeout_ms) < 0)
        fail_test("pool_shutdown() did not return within %d s.\nLikely cause: a worker sleeps on "
                  "the condition variable and nobody wakes it: closing time needs "
                  "pthread_cond_broadcast(), which wakes them all, not _signal(), which wakes "
                  "one (NOTES.md section 2.6). Or a worker waits for a job while the pool stops "
                  "(its loop must also look at the state, section 2.4).%s",
                  timeout_ms / 1000, pool_said());
}

/* ---------------------------------------------------------------- tests */
/* ==================== stage 0: the pool on its own ==================== */

Test(step2_pool, runs_every_job_exactly_once)
{
    enum { WORKERS = 4, CAPACITY = 8, JOBS = 2000 };
    struct shared shared;
    struct submission submission;

    shared_init(&shared);
    struct job_record *records = make_records(&shared, JOBS);
    struct pool *pool = make_pool(WORKERS, CAPACITY);
    submit_jobs(&submission, pool, counting_job, records, JOBS, 5000);
    int finished = wait_for_count(&shared, &shared.finished, JOBS, 5000);
    if (finished < JOBS)
        fail_test("%d jobs were submitted to a pool of %d workers; after 5 s, %d had run.\n"
                  "Expected: all of them, each once. Likely cause: worker_loop() stops taking "
                  "jobs, or takes one without running it (NOTES.md section 2.4).%s",
                  JOBS, WORKERS, finished, pool_said());
    expect_prompt_shutdown(pool, 3000);
    for (int i = 0; i < JOBS; i++) {
        int runs = atomic_load(&records[i].runs);
        if (runs != 1)
            fail_test("Job %d of %d ran %d times; every job must run exactly once.\nLikely "
                      "cause: the queue is read or written outside the lock, so two threads "
                      "took the same slot (NOTES.md sections 2.4 and 2.5).%s",
                      i + 1, JOBS, runs, pool_said());
    }
    free(records);
}

Test(step2_pool, never_runs_a_job_on_the_callers_thread)
{
    enum { WORKERS = 2, JOBS = 2, HOLD_MS = 300 };
    struct shared shared;
    struct submission submission;

    shared_init(&shared);
    shared.hold_ms = HOLD_MS;
    struct job_record *records = make_records(&shared, JOBS);
    struct pool *pool = make_pool(WORKERS, WORKERS);
    submit_jobs(&submission, pool, counting_job, records, JOBS, 5000);
    int finished = wait_for_count(&shared, &shared.finished, JOBS, 3000);
    cr_assert(finished == JOBS, "%d of %d jobs ran within 3 s.%s", finished, JOBS, pool_said());
    for (int i = 0; i < JOBS; i++)
        if (pthread_equal(records[i].ran_on, submission.caller))
            fail_test("Job %d ran on the thread that called pool_submit(), and that call took "
                      "%lld ms to return (the job takes %d ms).\nExpected: pool_submit() puts "
                      "the job in the queue and returns at once; a worker runs it. In the "
                      "server, the caller is the main thread: while it runs a job, nobody "
                      "accepts (NOTES.md section 2.5).%s",
                      i + 1, (long long)submission.slowest_ms, HOLD_MS, pool_said());
    cr_assert(submission.slowest_ms < HOLD_MS / 2,
              "A pool_submit() call took %lld ms to return, with idle workers and an empty "
              "queue; the job itself takes %d ms. Expected: at once (NOTES.md section 2.5).%s",
              (long long)submission.slowest_ms, HOLD_MS, pool_said());
    expect_prompt_shutdown(pool, 3000);
    free(records);
}

Test(step2_pool, runs_as_many_jobs_at_once_as_it_has_workers)
{
    enum { WORKERS = 4 };
    struct shared shared;
    struct submission submission;

    shared_init(&shared);
    shared.barrier_size = WORKERS;
    struct job_record *records = make_records(&shared, WORKERS);
    struct pool *pool = make_pool(WORKERS, WORKERS);
    submit_jobs(&submission, pool, meeting_job, records, WORKERS, 8000);
    int finished = wait_for_count(&shared, &shared.finished, WORKERS, 8000);
    int met = 0;
    pthread_mutex_lock(&shared.lock);
    for (int i = 0; i < WORKERS; i++)
        met += records[i].met_everyone;
    int most_at_once = shared.most_at_once;
    pthread_mutex_unlock(&shared.lock);
    if (finished == 0)
        fail_test("%d jobs were given to a pool of %d workers, and none ran within 8 s.%s",
                  WORKERS, WORKERS, pool_said());
    if (finished < WORKERS || met < WORKERS)
        fail_test("%d jobs were given to a pool of %d workers. Each job waits (up to 1 s) "
                  "until all %d are running at the same time.\nExpected: all %d meet, since "
                  "there is a worker for each.\nGot: %d finished, %d of them met everyone: at "
                  "most %d ran at once.\nLikely cause: the worker still holds the lock while "
                  "the job runs, so the others cannot take theirs; release it first (NOTES.md "
                  "section 2.4).%s",
                  WORKERS, WORKERS, WORKERS, WORKERS, finished, met, most_at_once,
                  pool_said());
    expect_prompt_shutdown(pool, 3000);
    free(records);
}

Test(step2_pool, starts_its_workers_at_once_and_ends_them_at_shutdown)
{
    enum { WORKERS = 5 };
    int before = thread_count();
    struct pool *pool = make_pool(WORKERS, WORKERS);

    expect_prompt_shutdown(pool, 3000);
    int after = settle_thread_count(before, 500);
    cr_assert(after == before,
              "After pool_shutdown() returned, this process had %d threads; before the pool, "
              "%d. Expected the same number: shutdown wakes every worker, each returns from "
              "worker_loop(), and pthread_join() waits for each (NOTES.md section 2.6).%s",
              after, before, pool_said());
}

Test(step2_pool, shutdown_runs_the_queued_jobs_then_joins_the_workers)
{
    enum { QUEUED = 4, JOBS = 1 + QUEUED };
    struct shared shared;
    struct submission submission;

    shared_init(&shared);
    shared.hold_ms = 60;
    struct job_record *records = make_records(&shared, JOBS);
    /* One worker: the first job runs, the other four wait in the queue. */
    struct pool *pool = make_pool(1, QUEUED);
    submit_jobs(&submission, pool, counting_job, records, JOBS, 3000);
    int64_t took = shutdown_within(pool, 3000);
    int finished_at_return = finished_count(&shared);
    int finished_later = wait_for_count(&shared, &shared.finished, JOBS, 1000);

    if (took < 0)
        fail_test("pool_shutdown() did not return within 3 s, with %d jobs of 60 ms queued "
                  "behind one worker.%s", QUEUED, pool_said());
    if (finished_at_return < JOBS && finished_later == JOBS)
        fail_test("pool_shutdown() returned after %lld ms, while %d of the %d jobs had not "
                  "finished; they finished afterwards.\nExpected: it returns only when every "
                  "worker has ended, which pthread_join() waits for (NOTES.md section 2.6). "
                  "The caller frees what the jobs use once shutdown returns.%s",
                  (long long)took, JOBS - finished_at_return, JOBS, pool_said());
    if (finished_later < JOBS)
        fail_test("%d jobs were queued behind one busy worker, then pool_shutdown() was "
                  "called. Only %d of %d jobs ever ran.\nExpected: shutdown runs what was "
                  "already queued (in the server, those are clients already accepted).\nLikely "
                  "cause: a worker quits as soon as the pool is stopping; it must quit only "
                  "when the pool is stopping AND the queue is empty (NOTES.md section 2.4).%s",
                  QUEUED, finished_later, JOBS, pool_said());
    free(records);
}

Test(step2_pool, shuts_down_an_idle_pool_promptly)
{
    enum { WORKERS = 4 };
    int before = thread_count();
    struct pool *pool = make_pool(WORKERS, WORKERS);

    pause_ms(50);
    int64_t took = shutdown_within(pool, 2000);
    if (took < 0)
        fail_test("pool_shutdown() of a pool of %d idle workers did not return within 2 s.\n"
                  "Likely cause: only one sleeping worker was woken (pthread_cond_signal); "
                  "closing time wakes them all with pthread_cond_broadcast() (NOTES.md section "
                  "2.6).%s", WORKERS, pool_said());
    cr_assert(took < 300,
              "pool_shutdown() of a pool of %d idle workers took %lld ms. Expected: at once "
              "(well under 300 ms): sleeping workers are woken, not polled.%s",
              WORKERS, (long long)took, pool_said());
    int after = settle_thread_count(before, 500);
    cr_assert(after == before,
              "After pool_shutdown() returned, %d threads were left of the %d workers "
              "(NOTES.md section 2.6).%s", after - before, WORKERS, pool_said());
}

static double cpu_seconds(void)
{
    struct timespec cpu;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    return (double)cpu.tv_sec + (double)cpu.tv_nsec / 1e9;
}

static long context_switches(void)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_nvcsw + usage.ru_nivcsw;
}

Test(step2_pool, an_idle_pool_burns_no_cpu_and_never_wakes)
{
    enum { WORKERS = 4, WATCH_MS = 500 };
    struct pool *pool = make_pool(WORKERS, WORKERS);

    double cpu_before = cpu_seconds();
    long switches_before = context_switches();
    pause_ms(WATCH_MS);
    double cpu_ms = (cpu_seconds() - cpu_before) * 1000.0;
    long switches = context_switches() - switches_before;
    expect_prompt_shutdown(pool, 3000);

    cr_assert(cpu_ms < 20.0,
              "A pool of %d workers with nothing to do used %.0f ms of CPU time in %d ms "
              "(this process, measured with CLOCK_PROCESS_CPUTIME_ID).\nExpected: about 0. "
              "Likely cause: the workers poll the queue in a loop (a busy wait) instead of "
              "sleeping in pthread_cond_wait() until a job is queued (NOTES.md section 2.4).%s",
              WORKERS, cpu_ms, WATCH_MS, pool_said());
    cr_assert(switches < 8,
              "A pool of %d workers with nothing to do was switched in and out %ld times in "
              "%d ms (getrusage: ru_nvcsw + ru_nivcsw).\nExpected: a handful at most. Likely "
              "cause: the workers wake up to look at the queue (a sleep-and-poll loop) instead "
              "of sleeping in pthread_cond_wait() until they are signalled (NOTES.md section "
              "2.4).%s",
              WORKERS, switches, WATCH_MS, pool_said());
}

Test(step2_pool, a_full_queue_makes_submit_wait)
{
    enum { CAPACITY = 2, WAIT_MS = 300 };
    struct shared shared;
    struct submission blocker, fill;
    pthread_t filler;

    shared_init(&shared);
    struct job_record *records = make_records(&shared, 1 + CAPACITY + 1);
    /* One worker, held by a job that waits at a closed gate. */
    struct pool *pool = make_pool(1, CAPACITY);
    submit_jobs(&blocker, pool, gated_job, records, 1, 3000);
    cr_assert(wait_for_count(&shared, &shared.started, 1, 3000) == 1,
              "The first job did not start within 3 s on an idle worker.%s", pool_said());

    /* Two jobs fill the queue; the third finds it full. */
    fill = (struct submission){.pool = pool, .function = counting_job, .records = records + 1,
                               .count = CAPACITY + 1};
    start_submitting(&fill, &filler);
    pause_ms(WAIT_MS);
    int returned = atomic_load(&fill.returned);
    int refused = atomic_load(&fill.refused);

    pthread_mutex_lock(&shared.lock);
    shared.gate_open = true;
    pthread_cond_broadcast(&shared.changed);
    pthread_mutex_unlock(&shared.lock);
    bool unblocked = finish_submitting(filler, 3000);

    if (refused > 0)
        fail_test("The only worker was busy and the queue (room for %d) was full. The next "
                  "pool_submit() returned false: the job was dropped.\nExpected: it waits for "
                  "room (pthread_cond_wait() on the pool's space_freed), then queues the job: "
                  "backpressure (NOTES.md sections 2.5 and 2.8).%s",
                  CAPACITY, pool_said());
    if (returned > CAPACITY)
        fail_test("The only worker was busy and the queue (room for %d) was full, yet the next "
                  "pool_submit() returned within %d ms.\nExpected: it waits until a worker "
                  "takes a job out. A queue that grows instead lets a flood of clients become a "
                  "flood of memory, and one that runs the job in the caller stops accepting "
                  "(NOTES.md sections 2.5 and 2.8).%s",
                  CAPACITY, WAIT_MS, pool_said());
    if (!unblocked)
        fail_test("The queue was full and one pool_submit() waited, as it should. Then the "
                  "worker finished its job and took the next, and that pool_submit() still did "
                  "not return within 3 s.\nLikely cause: the worker does not signal space_freed "
                  "after taking a job out (NOTES.md section 2.4).%s", pool_said());
    int finished = wait_for_count(&shared, &shared.finished, 1 + CAPACITY + 1, 3000);
    cr_assert(finished == 1 + CAPACITY + 1, "Only %d of %d jobs ran.%s", finished,
              1 + CAPACITY + 1, pool_said());
    expect_prompt_shutdown(pool, 3000);
    free(records);
}
