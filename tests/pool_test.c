/* Step 2's pool, tested on its own, in this process: jobs run once, on the
 * workers, W at a time; a full queue makes submit wait; an idle pool sleeps;
 * shutdown runs what was queued, refuses new jobs, joins and frees.
 *
 * The same source is linked once with step2_threadpool/pool.c (meson suite
 * step2) and once with solutions/step2_threadpool/pool.c (step2-reference),
 * and with tests/pool_spy.c, which watches the pool's pthread calls (see
 * pool_spy.h): a failure then says what the pool did, and a spurious
 * wake-up can be made to happen on purpose, every run.
 *
 * Every wait is bounded, so a wrong pool fails with a message instead of
 * hanging: each call that could block for ever runs on a helper thread that
 * the test waits for with a deadline. The deadlines are short: the reference
 * does each of these things in well under a millisecond. */
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
#include "pool_spy.h"

/* How long a call that should take microseconds may take on a busy machine. */
enum { PROMPT_MS = 2000 };

/* The sanitizers' hooks: present only when this program is built with
 * AddressSanitizer (the learner's pool always is; the plain reference build
 * is not, and then the checks that need them are left out). */
extern int __lsan_do_recoverable_leak_check(void) __attribute__((weak));
extern void __asan_set_death_callback(void (*callback)(void)) __attribute__((weak));

/* ------------------------------------------------ what the pool printed */

/* The pool's stubs print "TODO: write ...()" on stderr, and the sanitizers
 * print their reports there. Each test runs in its own process: stderr goes
 * to a file while it runs, so that failure messages can quote those lines,
 * and is copied to the real stderr at the end. */
static char captured_path[64];
static int real_stderr = -1;

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

/* The TODO lines printed so far. */
static const char *pool_said(void)
{
    static char paragraph[3000];
    char *text = captured_text();

    snprintf(paragraph, sizeof paragraph, "%s", todo_lines(text));
    free(text);
    return paragraph;
}

/* Writes a paragraph to the real stderr as lines of Criterion's report
 * ("[----] ..."), so that `./workbook test` shows it as the failure. */
static void write_as_report(const char *paragraph)
{
    for (const char *line = paragraph; *line != '\0';) {
        const char *end = strchr(line, '\n');
        int length = end ? (int)(end - line) : (int)strlen(line);
        dprintf(real_stderr, "[----]   %.*s\n", length, line);
        line = end ? end + 1 : line + length;
    }
}

/* What the evidence says about a sanitizer's report, or "". */
static const char *cause_of_crash(const char *report)
{
    const char *freed = strstr(report, "freed by thread");
    const char *allocated = freed != NULL ? strstr(freed, "previously allocated") : NULL;
    bool freed_by_the_pool = freed != NULL && allocated != NULL &&
                             (memmem(freed, (size_t)(allocated - freed), "pool_free", 9) != NULL ||
                              memmem(freed, (size_t)(allocated - freed), "pool_shutdown", 13));
    if (strstr(report, "heap-use-after-free") != NULL && freed_by_the_pool)
        return "\nThe pool's memory was used after pool_free() had freed it: a worker was "
               "still running. pool_shutdown() frees the pool only after pthread_join() has "
               "returned for every worker (NOTES.md section 2.6).";
    if (strstr(report, "SEGV") != NULL)
        return "\nA pointer was NULL or wild: a job taken from an empty queue, or a pool used "
               "after it was freed, are the usual ways a pool gets one.";
    return "";
}

/* AddressSanitizer calls this just before it ends the process: the test
 * cannot report the failure itself any more, so this does, with the
 * sanitizer's report, then copies everything the test printed. */
static void report_crash(void)
{
    static char paragraph[8192];
    char *text = captured_text();

    snprintf(paragraph, sizeof paragraph,
             "The test process died while your pool ran: AddressSanitizer stopped it, at the "
             "first memory error.%s%s%s%s",
             cause_of_crash(text), sanitizer_report(text), todo_lines(text), run_alone_command());
    write_as_report(paragraph);
    dprintf(real_stderr, "%s", text);
    free(text);
}

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
    if (__asan_set_death_callback != NULL)
        __asan_set_death_callback(report_crash);
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

/* This executable tests the pool linked into it: no program to name. */
const struct program_default program_defaults[] = {{NULL, NULL}};

TestSuite(step2_pool, .timeout = 15, .init = capture_stderr, .fini = release_stderr);

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

/* How long a thread of this process has wanted a CPU, in milliseconds: the
 * time it ran plus the time it waited in a run queue for a core (from
 * /proc/self/task/TID/schedstat). A thread that spins wants a CPU all the
 * time, however busy the machine is; one that sleeps wants none. */
static double thread_wanted_ms(pid_t tid)
{
    char path[64];
    long long ran = 0, waited = 0;

    snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", (int)tid);
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return -1;
    if (fscanf(file, "%lld %lld", &ran, &waited) != 2)
        ran = waited = 0;
    fclose(file);
    return (double)(ran + waited) / 1e6;
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
    atomic_bool began_holding_a_lock; /* its worker still held a mutex when it began */
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

/* What every job does first: counts its run, and tells the spy that this
 * thread is a worker. */
static void begin_job(struct job_record *record)
{
    if (spy_job_begins() > 0)
        atomic_store(&record->began_holding_a_lock, true);
    record->ran_on = pthread_self();
    atomic_fetch_add(&record->runs, 1);
}

/* Counts itself, works hold_ms, and says it is done. */
static void counting_job(void *argument)
{
    struct job_record *record = argument;

    begin_job(record);
    note(record->shared, &record->shared->started);
    if (record->shared->hold_ms > 0)
        pause_ms(record->shared->hold_ms);
    note(record->shared, &record->shared->finished);
    spy_job_ends();
}

/* Waits (at most 5 s) until the test opens the gate. */
static void gated_job(void *argument)
{
    struct job_record *record = argument;
    struct shared *shared = record->shared;
    struct timespec give_up = deadline_after(5000);

    begin_job(record);
    note(shared, &shared->started);
    pthread_mutex_lock(&shared->lock);
    while (!shared->gate_open &&
           pthread_cond_timedwait(&shared->changed, &shared->lock, &give_up) != ETIMEDOUT) {
    }
    pthread_mutex_unlock(&shared->lock);
    note(shared, &shared->finished);
    spy_job_ends();
}

static void open_the_gate(struct shared *shared)
{
    pthread_mutex_lock(&shared->lock);
    shared->gate_open = true;
    pthread_cond_broadcast(&shared->changed);
    pthread_mutex_unlock(&shared->lock);
}

/* Arrives at the barrier and waits (at most 1 s) for the others: they all
 * meet only if barrier_size jobs run at the same time. */
static void meeting_job(void *argument)
{
    struct job_record *record = argument;
    struct shared *shared = record->shared;
    struct timespec give_up = deadline_after(1000);

    begin_job(record);
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
    spy_job_ends();
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

static int started_count(struct shared *shared)
{
    return wait_for_count(shared, &shared->started, 0, 0);
}

static int finished_count(struct shared *shared)
{
    return wait_for_count(shared, &shared->finished, 0, 0);
}

/* How many of the records' jobs began while their worker held a lock. */
static int jobs_run_under_a_lock(struct job_record *records, int count)
{
    int under = 0;
    for (int i = 0; i < count; i++)
        under += atomic_load(&records[i].began_holding_a_lock);
    return under;
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
                      ? "The missing workers returned from worker_loop() although no job had "
                        "come and the pool was running: a worker waits on job_queued for a job "
                        "(NOTES.md section 2.4)."
                      : "pool_create() started more threads than asked.",
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
    atomic_int caller_tid;   /* its thread id, for /proc */
    atomic_int returned;     /* pool_submit() calls that returned */
    atomic_int refused;      /* of them, those that returned false */
    atomic_int silent;       /* accepted calls that woke nobody (no signal, no broadcast) */
    atomic_int locked_return; /* 1 + the index of a call that returned holding a mutex */
    atomic_llong slowest_ms; /* the longest single call */
    atomic_bool done;
};

/* One pool_submit(), watched. False if it returned holding a lock: the
 * caller must stop then, since a second call would deadlock. */
static bool submit_one(struct submission *submission, int i)
{
    long wake_ups = spy_wake_ups_sent_here();
    int64_t started = now_ms();
    bool accepted = pool_submit(submission->pool, submission->function, &submission->records[i]);
    int64_t took = now_ms() - started;

    if (took > atomic_load(&submission->slowest_ms))
        atomic_store(&submission->slowest_ms, took);
    if (!accepted)
        atomic_fetch_add(&submission->refused, 1);
    else if (spy_wake_ups_sent_here() == wake_ups)
        atomic_fetch_add(&submission->silent, 1);
    atomic_fetch_add(&submission->returned, 1);
    if (spy_mutexes_held_here() > 0) {
        atomic_store(&submission->locked_return, i + 1);
        return false;
    }
    return true;
}

static void *submit_all(void *argument)
{
    struct submission *submission = argument;

    submission->caller = pthread_self();
    atomic_store(&submission->caller_tid, (int)gettid());
    for (int i = 0; i < submission->count && submit_one(submission, i); i++) {
    }
    atomic_store(&submission->done, true);
    return NULL;
}

static void start_submitting(struct submission *submission, struct pool *pool,
                             job_function function, struct job_record *records, int count,
                             pthread_t *thread)
{
    *submission = (struct submission){.pool = pool, .function = function, .records = records,
                                      .count = count};
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

/* Fails the test if a pool_submit() call returned with a lock held. */
static void expect_no_lock_kept(const struct submission *submission)
{
    int call = atomic_load(&submission->locked_return);
    if (call > 0)
        fail_test("pool_submit() call %d returned (%s) while its thread still held a mutex it "
                  "had locked: pthread_mutex_lock() with no matching unlock on that path. The "
                  "next call, or any worker, then waits for that lock for ever. Every return "
                  "of pool_submit(), the refusal included, comes after "
                  "pthread_mutex_unlock(&pool->lock) (NOTES.md section 2.5).%s",
                  call, atomic_load(&submission->refused) > 0 ? "false" : "true", pool_said());
}

/* Why submitting got stuck, from what the spy saw; "" when it saw nothing
 * that explains it. */
static const char *why_submitting_stuck(const struct submission *submission,
                                        struct shared *shared)
{
    int returned = atomic_load(&submission->returned);

    if (started_count(shared) == 0 && returned > 0 &&
        atomic_load(&submission->silent) == returned)
        return "\nNo job ever started, and no pool_submit() call woke anybody: it never "
               "called pthread_cond_signal() (nor _broadcast()). The workers sleep on "
               "job_queued until told that a job is there: signal job_queued after "
               "queue_push() (NOTES.md section 2.5).";
    if (started_count(shared) == 0)
        return "\nNo job ever started: the workers do not take jobs out of the queue "
               "(worker_loop(), NOTES.md section 2.4).";
    if (spy_wake_ups_sent_by_workers() == 0)
        return "\nThe workers took jobs out of the full queue, but no worker ever called "
               "pthread_cond_signal(): pool_submit() sleeps on space_freed until told that "
               "there is room. Signal space_freed after queue_pop() (NOTES.md section 2.4).";
    return "";
}

/* Submits count jobs from a helper thread and expects every call to return
 * true within timeout_ms. */
static void submit_jobs(struct submission *submission, struct pool *pool, job_function function,
                        struct job_record *records, int count, int timeout_ms)
{
    pthread_t thread;

    start_submitting(submission, pool, function, records, count, &thread);
    bool finished = finish_submitting(thread, timeout_ms);
    expect_no_lock_kept(submission);
    if (!finished)
        fail_test("Submitting %d jobs did not finish within %d ms: pool_submit() returned %d "
                  "times, then blocked; %d job(s) had started.%s%s",
                  count, timeout_ms, atomic_load(&submission->returned),
                  started_count(records[0].shared),
                  why_submitting_stuck(submission, records[0].shared), pool_said());
    if (atomic_load(&submission->refused) > 0)
        fail_test("pool_submit() returned false for %d of %d jobs, on a running pool.\n"
                  "Expected: true every time; false only once pool_shutdown() has begun "
                  "(NOTES.md section 2.5).%s",
                  atomic_load(&submission->refused), count, pool_said());
}

/* A pool_shutdown() on its own thread. */
struct shutdown_call {
    struct pool *pool;
    pthread_t thread;
    int64_t started_ms;
    atomic_llong took_ms;      /* -1 until it returns */
    atomic_bool kept_a_lock;   /* it returned holding a mutex */
};

static void *shutdown_pool(void *argument)
{
    struct shutdown_call *call = argument;

    pool_shutdown(call->pool);
    atomic_store(&call->kept_a_lock, spy_mutexes_held_here() > 0);
    atomic_store(&call->took_ms, now_ms() - call->started_ms);
    return NULL;
}

static void begin_shutdown(struct shutdown_call *call, struct pool *pool)
{
    call->pool = pool;
    call->started_ms = now_ms();
    atomic_store(&call->took_ms, -1);
    atomic_store(&call->kept_a_lock, false);
    int error = pthread_create(&call->thread, NULL, shutdown_pool, call);
    cr_assert(error == 0, "pthread_create: %s", strerror(error));
}

/* How long pool_shutdown() took, or -1 if it had not returned within
 * timeout_ms (the thread is then left behind). */
static int64_t end_shutdown(struct shutdown_call *call, int timeout_ms)
{
    struct timespec give_up = deadline_after(timeout_ms);

    if (pthread_timedjoin_np(call->thread, NULL, &give_up) != 0)
        return -1;
    if (atomic_load(&call->kept_a_lock))
        fail_test("pool_shutdown() returned while its thread still held a mutex it had "
                  "locked: the lock is taken to set the state and wake everyone, then "
                  "released before the joins (NOTES.md section 2.6).%s", pool_said());
    return atomic_load(&call->took_ms);
}

/* Runs pool_shutdown() on a helper thread. Returns how long it took, or -1
 * if it had not returned after timeout_ms. */
static int64_t shutdown_within(struct pool *pool, int timeout_ms)
{
    struct shutdown_call call;

    begin_shutdown(&call, pool);
    return end_shutdown(&call, timeout_ms);
}

static void expect_prompt_shutdown(struct pool *pool, int timeout_ms)
{
    if (shutdown_within(pool, timeout_ms) < 0)
        fail_test("pool_shutdown() did not return within %d ms; %ld pthread_join() call(s) "
                  "had begun.\nA worker that sleeps on job_queued is woken only if someone "
                  "signals it: closing time needs pthread_cond_broadcast(), which wakes them "
                  "all (_signal() wakes one), and a worker's loop must end when the pool is "
                  "stopping and the queue is empty (NOTES.md sections 2.4 and 2.6).%s",
                  timeout_ms, spy_joins_begun(), pool_said());
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
    submit_jobs(&submission, pool, counting_job, records, JOBS, PROMPT_MS);
    int finished = wait_for_count(&shared, &shared.finished, JOBS, PROMPT_MS);
    if (finished < JOBS)
        fail_test("%d jobs were submitted to a pool of %d workers; %d ms later, %d had run.\n"
                  "Expected: all of them, each once.%s%s",
                  JOBS, WORKERS, PROMPT_MS, finished,
                  finished == 0 ? why_submitting_stuck(&submission, &shared) : "", pool_said());
    expect_prompt_shutdown(pool, PROMPT_MS);
    for (int i = 0; i < JOBS; i++) {
        int runs = atomic_load(&records[i].runs);
        if (runs != 1)
            fail_test("Job %d of %d ran %d times; every job must run exactly once.\nA job "
                      "runs twice, or never, when two threads use the queue at once: every "
                      "queue_push() and queue_pop() happens between pthread_mutex_lock() and "
                      "pthread_mutex_unlock() of the pool's lock (NOTES.md sections 2.4 and "
                      "2.5).%s",
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
    submit_jobs(&submission, pool, counting_job, records, JOBS, PROMPT_MS + JOBS * HOLD_MS);
    int finished = wait_for_count(&shared, &shared.finished, JOBS, PROMPT_MS);
    check(finished == JOBS, "%d of %d jobs of %d ms ran within %d ms, on a pool of %d idle "
          "workers.%s", finished, JOBS, HOLD_MS, PROMPT_MS, WORKERS, pool_said());
    for (int i = 0; i < JOBS; i++)
        if (pthread_equal(records[i].ran_on, submission.caller))
            fail_test("Job %d ran on the thread that called pool_submit(), and that call took "
                      "%lld ms to return (the job takes %d ms).\nExpected: pool_submit() puts "
                      "the job in the queue and returns at once; a worker runs it. In the "
                      "server, the caller is the main thread: while it runs a job, nobody "
                      "accepts (NOTES.md section 2.5).%s",
                      i + 1, (long long)atomic_load(&submission.slowest_ms), HOLD_MS,
                      pool_said());
    check(atomic_load(&submission.slowest_ms) < HOLD_MS / 2,
          "A pool_submit() call took %lld ms to return, with idle workers and an empty queue; "
          "the job itself takes %d ms. Expected: at once (NOTES.md section 2.5).%s",
          (long long)atomic_load(&submission.slowest_ms), HOLD_MS, pool_said());
    expect_prompt_shutdown(pool, PROMPT_MS);
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
    submit_jobs(&submission, pool, meeting_job, records, WORKERS, PROMPT_MS + 1000 * WORKERS);
    int finished = wait_for_count(&shared, &shared.finished, WORKERS, PROMPT_MS + 1000);
    int met = 0;
    pthread_mutex_lock(&shared.lock);
    for (int i = 0; i < WORKERS; i++)
        met += records[i].met_everyone;
    int most_at_once = shared.most_at_once;
    pthread_mutex_unlock(&shared.lock);
    int under_a_lock = jobs_run_under_a_lock(records, WORKERS);
    char why[400] = "";
    if (under_a_lock > 0)
        snprintf(why, sizeof why, "\n%d of the jobs began while their worker still held a "
                 "mutex: the worker runs the job before unlocking, so the others cannot take "
                 "theirs. Take the job under the lock, unlock, then run it (NOTES.md section "
                 "2.4).", under_a_lock);
    if (finished == 0)
        fail_test("%d jobs were given to a pool of %d workers, and none ran within %d ms.%s%s",
                  WORKERS, WORKERS, PROMPT_MS + 1000,
                  why_submitting_stuck(&submission, &shared), pool_said());
    if (finished < WORKERS || met < WORKERS)
        fail_test("%d jobs were given to a pool of %d workers. Each job waits (up to 1 s) "
                  "until all %d are running at the same time.\nExpected: all %d meet, since "
                  "there is a worker for each.\nGot: %d finished, %d of them met everyone: at "
                  "most %d ran at once.%s%s",
                  WORKERS, WORKERS, WORKERS, WORKERS, finished, met, most_at_once, why,
                  pool_said());
    expect_prompt_shutdown(pool, PROMPT_MS);
    free(records);
}

Test(step2_pool, starts_its_workers_at_once_and_ends_them_at_shutdown)
{
    enum { WORKERS = 5 };
    int before = thread_count();
    struct pool *pool = make_pool(WORKERS, WORKERS);

    expect_prompt_shutdown(pool, PROMPT_MS);
    int after = settle_thread_count(before, 500);
    check(after == before,
          "After pool_shutdown() returned, this process had %d threads; before the pool, %d. "
          "Expected the same number: shutdown wakes every worker, each returns from "
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
    submit_jobs(&submission, pool, counting_job, records, JOBS, PROMPT_MS);
    int64_t took = shutdown_within(pool, PROMPT_MS);
    int finished_at_return = finished_count(&shared);
    if (took >= 0 && finished_at_return < JOBS && spy_joins_begun() == 0)
        fail_test("pool_shutdown() returned after %lld ms without ever calling "
                  "pthread_join(), while %d of the %d jobs queued behind one busy worker had "
                  "not run.\nExpected: it waits for every worker to end, pthread_join() for "
                  "each, and only then frees the pool: a worker that is still running would "
                  "use freed memory, and the server's main() would exit under it (NOTES.md "
                  "section 2.6).%s",
                  (long long)took, JOBS - finished_at_return, JOBS, pool_said());
    int finished_later = wait_for_count(&shared, &shared.finished, JOBS, 1000);

    if (took < 0)
        fail_test("pool_shutdown() did not return within %d ms, with %d jobs of 60 ms queued "
                  "behind one worker; %d of the %d jobs had finished.%s",
                  PROMPT_MS, QUEUED, finished_later, JOBS, pool_said());
    if (finished_at_return < JOBS && finished_later == JOBS)
        fail_test("pool_shutdown() returned after %lld ms, while %d of the %d jobs had not "
                  "finished; they finished afterwards (%ld pthread_join() calls were made).\n"
                  "Expected: it returns only when every worker has ended, which "
                  "pthread_join() waits for (NOTES.md section 2.6). The caller frees what the "
                  "jobs use once shutdown returns.%s",
                  (long long)took, JOBS - finished_at_return, JOBS, spy_joins_begun(),
                  pool_said());
    if (finished_later < JOBS)
        fail_test("%d jobs were queued behind one busy worker, then pool_shutdown() was "
                  "called. Only %d of %d jobs ever ran.\nExpected: shutdown runs what was "
                  "already queued (in the server, those are clients already accepted): a "
                  "worker ends only when the pool is stopping AND the queue is empty "
                  "(NOTES.md section 2.4).%s",
                  QUEUED, finished_later, JOBS, pool_said());
    free(records);
}

Test(step2_pool, shuts_down_an_idle_pool_promptly)
{
    enum { WORKERS = 4 };
    int before = thread_count();
    struct pool *pool = make_pool(WORKERS, WORKERS);

    pause_ms(50);
    int64_t took = shutdown_within(pool, PROMPT_MS);
    if (took < 0)
        fail_test("pool_shutdown() of a pool of %d idle workers did not return within %d ms; "
                  "%d of the workers had ended.\nAll of them sleep on job_queued: "
                  "pthread_cond_signal() wakes one, pthread_cond_broadcast() wakes them all, "
                  "and closing time needs them all (NOTES.md section 2.6).%s",
                  WORKERS, PROMPT_MS, before + WORKERS - thread_count(), pool_said());
    check(took < 300,
          "pool_shutdown() of a pool of %d idle workers took %lld ms. Expected: at once (well "
          "under 300 ms): sleeping workers are woken, not polled.%s",
          WORKERS, (long long)took, pool_said());
    int after = settle_thread_count(before, 500);
    check(after == before,
          "After pool_shutdown() returned, %d threads were left of the %d workers (NOTES.md "
          "section 2.6).%s", after - before, WORKERS, pool_said());
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
    expect_prompt_shutdown(pool, PROMPT_MS);

    check(cpu_ms < 20.0,
          "A pool of %d workers with nothing to do used %.0f ms of CPU time in %d ms (this "
          "process, measured with CLOCK_PROCESS_CPUTIME_ID).\nExpected: about 0. The workers "
          "look at the queue again and again (a busy wait) instead of sleeping in "
          "pthread_cond_wait() until a job is queued (NOTES.md section 2.4).%s",
          WORKERS, cpu_ms, WATCH_MS, pool_said());
    check(switches < 8,
          "A pool of %d workers with nothing to do was switched in and out %ld times in %d ms "
          "(getrusage: ru_nvcsw + ru_nivcsw).\nExpected: a handful at most. The workers wake "
          "up to look at the queue (a sleep-and-poll loop) instead of sleeping in "
          "pthread_cond_wait() until they are signalled (NOTES.md section 2.4).%s",
          WORKERS, switches, WATCH_MS, pool_said());
}

/* One worker, held by a gated job that has started; the records' first
 * entry is that job's. */
static struct pool *pool_with_its_worker_held(struct shared *shared, struct job_record *records,
                                              int capacity)
{
    struct submission blocker;
    struct pool *pool = make_pool(1, capacity);

    submit_jobs(&blocker, pool, gated_job, records, 1, PROMPT_MS);
    check(wait_for_count(shared, &shared->started, 1, PROMPT_MS) == 1,
          "The first job did not start within %d ms on an idle worker.%s%s", PROMPT_MS,
          why_submitting_stuck(&blocker, shared), pool_said());
    return pool;
}

Test(step2_pool, a_full_queue_makes_submit_wait)
{
    enum { CAPACITY = 2, WAIT_MS = 300, JOBS = 1 + CAPACITY + 1 };
    struct shared shared;
    struct submission fill;
    pthread_t filler;

    shared_init(&shared);
    struct job_record *records = make_records(&shared, JOBS);
    struct pool *pool = pool_with_its_worker_held(&shared, records, CAPACITY);

    /* Two jobs fill the queue; the third finds it full. */
    start_submitting(&fill, pool, counting_job, records + 1, CAPACITY + 1, &filler);
    pause_ms(50);
    pid_t filler_tid = (pid_t)atomic_load(&fill.caller_tid);
    double wanted_before = thread_wanted_ms(filler_tid);
    pause_ms(WAIT_MS);
    double wanted_while_waiting = thread_wanted_ms(filler_tid) - wanted_before;
    int returned = atomic_load(&fill.returned);
    int refused = atomic_load(&fill.refused);
    open_the_gate(&shared);
    bool unblocked = finish_submitting(filler, PROMPT_MS);

    expect_no_lock_kept(&fill);
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
    if (wanted_before >= 0 && wanted_while_waiting > WAIT_MS / 3)
        fail_test("While pool_submit() waited for room in the full queue, its thread wanted "
                  "the CPU for %.0f ms of %d (it ran, or waited for a free core: "
                  "/proc/self/task/TID/schedstat).\nExpected: about 0: it sleeps in "
                  "pthread_cond_wait() on space_freed until a worker makes room, instead of "
                  "unlocking and looking again in a loop (a busy wait) (NOTES.md section 2.5).%s",
                  wanted_while_waiting, WAIT_MS, pool_said());
    if (!unblocked)
        fail_test("The queue was full and one pool_submit() waited, as it should. Then the "
                  "worker finished its job and took the next, and that pool_submit() still did "
                  "not return within %d ms.%s%s",
                  PROMPT_MS, why_submitting_stuck(&fill, &shared), pool_said());
    int finished = wait_for_count(&shared, &shared.finished, JOBS, PROMPT_MS);
    check(finished == JOBS, "Only %d of %d jobs ran.%s", finished, JOBS, pool_said());
    expect_prompt_shutdown(pool, PROMPT_MS);
    free(records);
}

Test(step2_pool, survives_spurious_wake_ups_of_its_workers)
{
    enum { WORKERS = 3, JOBS = 12 };
    struct shared shared;
    struct submission first, second;

    shared_init(&shared);
    struct job_record *records = make_records(&shared, 2 * JOBS);
    int before = thread_count();
    struct pool *pool = make_pool(WORKERS, JOBS);
    /* From now on the workers' next wait, and every other one, returns
     * without a signal: after their first jobs, with the queue empty. */
    spy_make_wake_ups_spurious(true);
    submit_jobs(&first, pool, counting_job, records, JOBS, PROMPT_MS);
    wait_for_count(&shared, &shared.finished, JOBS, PROMPT_MS);
    pause_ms(50);
    long empty_pops = spy_pops_from_an_empty_queue();
    int workers_left = thread_count() - before;

    if (empty_pops > 0)
        fail_test("A worker's pthread_cond_wait() returned without a signal, with the queue "
                  "empty: POSIX allows such spurious wake-ups, and a worker sees the same when "
                  "another took the job first. The worker then took a job from the empty queue "
                  "(%ld times; the test handed it nothing instead of a stale slot): it trusted "
                  "the wake-up. Wait in a while loop that looks at the queue again after every "
                  "wake-up: while the queue is empty and the pool runs, wait (NOTES.md section "
                  "2.4).%s", empty_pops, pool_said());
    if (workers_left < WORKERS)
        fail_test("A worker's pthread_cond_wait() returned without a signal, with the queue "
                  "empty and the pool running: POSIX allows such spurious wake-ups, and a "
                  "worker sees the same when another took the job first. %d of the %d workers "
                  "then ended: each trusted the wake-up, found the queue empty and took it for "
                  "closing time. Wait in a while loop: while the queue is empty and the pool "
                  "runs, wait (NOTES.md section 2.4).%s",
                  WORKERS - workers_left, WORKERS, pool_said());
    submit_jobs(&second, pool, counting_job, records + JOBS, JOBS, PROMPT_MS);
    int finished = wait_for_count(&shared, &shared.finished, 2 * JOBS, PROMPT_MS);
    check(finished == 2 * JOBS, "With spurious wake-ups, %d of %d jobs ran within %d ms.%s",
          finished, 2 * JOBS, PROMPT_MS, pool_said());
    expect_prompt_shutdown(pool, PROMPT_MS);
    spy_make_wake_ups_spurious(false);
    free(records);
}

Test(step2_pool, survives_spurious_wake_ups_of_a_waiting_submit)
{
    enum { WAIT_MS = 300, JOBS = 3 };
    struct shared shared;
    struct submission filling, waiting;
    pthread_t waiter;

    shared_init(&shared);
    struct job_record *records = make_records(&shared, JOBS);
    struct pool *pool = pool_with_its_worker_held(&shared, records, 1);
    submit_jobs(&filling, pool, counting_job, records + 1, 1, PROMPT_MS); /* the queue is full */
    /* The next submit's wait, and every other one, returns without a signal. */
    spy_make_wake_ups_spurious(true);
    start_submitting(&waiting, pool, counting_job, records + 2, 1, &waiter);
    pause_ms(WAIT_MS);
    long full_pushes = spy_pushes_into_a_full_queue();
    int returned = atomic_load(&waiting.returned);
    open_the_gate(&shared);
    bool unblocked = finish_submitting(waiter, PROMPT_MS);

    expect_no_lock_kept(&waiting);
    if (full_pushes > 0)
        fail_test("pool_submit() was waiting for room in the full queue when its "
                  "pthread_cond_wait() returned without a signal: POSIX allows such spurious "
                  "wake-ups, and a submit sees the same when another took the room first. It "
                  "then pushed the job into the still-full queue (which overwrites the oldest "
                  "job; the test stopped that): it trusted the wake-up. Wait in a while loop "
                  "that looks at the queue again after every wake-up: while the queue is full "
                  "and the pool runs, wait (NOTES.md section 2.5).%s", pool_said());
    check(returned == 0,
          "With its only worker busy and its queue full, pool_submit() returned within %d ms "
          "after a spurious wake-up, without queueing anything. Expected: it waits until "
          "there is room (NOTES.md section 2.5).%s", WAIT_MS, pool_said());
    check(unblocked && atomic_load(&waiting.refused) == 0,
          "Once the worker was free, the waiting pool_submit() did not %s within %d ms.%s",
          unblocked ? "return true" : "return", PROMPT_MS, pool_said());
    int finished = wait_for_count(&shared, &shared.finished, JOBS, PROMPT_MS);
    check(finished == JOBS, "Only %d of %d jobs ran.%s", finished, JOBS, pool_said());
    expect_prompt_shutdown(pool, PROMPT_MS);
    spy_make_wake_ups_spurious(false);
    free(records);
}

/* Waits up to timeout_ms for pool_shutdown() to reach its first
 * pthread_join(): by then it has set the state. */
static bool shutdown_has_begun(int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;

    while (spy_joins_begun() == 0 && now_ms() < deadline)
        pause_ms(2);
    return spy_joins_begun() > 0;
}

/* pool_shutdown() has begun while a gated job holds the only worker: it
 * must come back once the gate opens, having run `expected` jobs. */
static void expect_shutdown_to_end(struct shutdown_call *call, struct shared *shared,
                                   int expected)
{
    open_the_gate(shared);
    if (end_shutdown(call, PROMPT_MS) < 0)
        fail_test("pool_shutdown() did not return within %d ms after the job holding the "
                  "only worker ended (%d of %d jobs finished).%s",
                  PROMPT_MS, finished_count(shared), expected, pool_said());
    check(finished_count(shared) == expected,
          "pool_shutdown() returned after %d of the %d jobs accepted before it had run.%s",
          finished_count(shared), expected, pool_said());
}

Test(step2_pool, refuses_jobs_once_shutdown_has_begun)
{
    struct shared shared;
    struct submission late;
    struct shutdown_call call;
    pthread_t submitter;

    shared_init(&shared);
    struct job_record *records = make_records(&shared, 2);
    struct pool *pool = pool_with_its_worker_held(&shared, records, 2);
    begin_shutdown(&call, pool);
    if (!shutdown_has_begun(PROMPT_MS)) {
        open_the_gate(&shared);
        fail_test("pool_shutdown() was called while a job held the only worker; %d ms later "
                  "it had not reached pthread_join(). It sets the state and wakes everyone "
                  "under the lock, unlocks, then joins each worker (NOTES.md section 2.6).%s",
                  PROMPT_MS, pool_said());
    }
    start_submitting(&late, pool, counting_job, records + 1, 1, &submitter);
    bool returned = finish_submitting(submitter, 1000);

    expect_no_lock_kept(&late);
    if (!returned) {
        open_the_gate(&shared);
        fail_test("pool_submit() was called after pool_shutdown() had begun (the only worker "
                  "was still busy, the queue empty), and it did not return within 1 s.\n"
                  "Expected: it returns false at once: once the state is not POOL_RUNNING, "
                  "the pool takes no new job (NOTES.md section 2.5).%s", pool_said());
    }
    if (atomic_load(&late.refused) == 0) {
        open_the_gate(&shared);
        fail_test("pool_submit() was called after pool_shutdown() had begun, and it returned "
                  "true: it queued a job into a pool that is closing.\nExpected: false, and "
                  "nothing queued. Look at the state under the lock; if it is not "
                  "POOL_RUNNING, unlock and return false: the caller still owns the job and "
                  "cleans up (the server closes that client) (NOTES.md section 2.5).%s",
                  pool_said());
    }
    expect_shutdown_to_end(&call, &shared, 1);
    check(atomic_load(&records[1].runs) == 0,
          "pool_submit() refused a job (returned false), yet the job ran: the caller, told it "
          "was refused, frees its argument; the job must never run (NOTES.md section 2.5).%s",
          pool_said());
    free(records);
}

Test(step2_pool, wakes_a_submit_waiting_for_room_when_shutdown_begins)
{
    struct shared shared;
    struct submission filling, waiting;
    struct shutdown_call call;
    pthread_t waiter;

    shared_init(&shared);
    struct job_record *records = make_records(&shared, 3);
    struct pool *pool = pool_with_its_worker_held(&shared, records, 1);
    submit_jobs(&filling, pool, counting_job, records + 1, 1, PROMPT_MS); /* the queue is full */
    start_submitting(&waiting, pool, counting_job, records + 2, 1, &waiter);
    pause_ms(200);
    if (atomic_load(&waiting.returned) > 0) {
        open_the_gate(&shared);
        fail_test("With its only worker busy and its queue full, pool_submit() returned at "
                  "once instead of waiting for room (NOTES.md section 2.5).%s", pool_said());
    }
    begin_shutdown(&call, pool);
    bool returned = finish_submitting(waiter, 1000);

    expect_no_lock_kept(&waiting);
    if (!returned) {
        open_the_gate(&shared);
        fail_test("pool_submit() was waiting for room in the full queue when pool_shutdown() "
                  "began; 1 s later it was still waiting (the worker was still busy).\n"
                  "Expected: it returns false at once. Closing time wakes the submitters "
                  "too: pool_shutdown() broadcasts space_freed, and pool_submit()'s wait ends "
                  "when the pool stops running (its while looks at the state as well as the "
                  "queue) (NOTES.md sections 2.5 and 2.6).%s", pool_said());
    }
    if (atomic_load(&waiting.refused) == 0) {
        open_the_gate(&shared);
        fail_test("pool_submit() was waiting for room in the full queue when pool_shutdown() "
                  "began, and it returned true: it queued its job into a closing pool.\n"
                  "Expected: false, and nothing queued (NOTES.md section 2.5).%s", pool_said());
    }
    expect_shutdown_to_end(&call, &shared, 2);
    check(atomic_load(&records[2].runs) == 0,
          "pool_submit() refused a job (returned false), yet the job ran.%s", pool_said());
    free(records);
}

/* Everything that holds the pool's address lives in here, and in threads
 * that have been joined, so that after it returns only a leak still points
 * into what the pool allocated. */
__attribute__((noinline)) static void use_a_pool_and_shut_it_down(void)
{
    enum { WORKERS = 3, JOBS = 20 };
    struct shared shared;
    struct submission submission;

    shared_init(&shared);
    struct job_record *records = make_records(&shared, JOBS);
    struct pool *pool = make_pool(WORKERS, 4);
    submit_jobs(&submission, pool, counting_job, records, JOBS, PROMPT_MS);
    check(wait_for_count(&shared, &shared.finished, JOBS, PROMPT_MS) == JOBS,
          "Only %d of %d jobs ran within %d ms.%s", finished_count(&shared), JOBS, PROMPT_MS,
          pool_said());
    expect_prompt_shutdown(pool, PROMPT_MS);
    free(records);
}

/* Overwrites the stack below us, where copies of the pool's address may linger. */
__attribute__((noinline)) static void forget_the_stack(void)
{
    volatile char junk[32768];
    memset((char *)junk, 0, sizeof junk);
}

Test(step2_pool, frees_everything_at_shutdown)
{
    use_a_pool_and_shut_it_down();
    forget_the_stack();
    /* Only a build with AddressSanitizer has a leak checker (yours has). */
    if (__lsan_do_recoverable_leak_check == NULL)
        return;
    if (__lsan_do_recoverable_leak_check() != 0) {
        char *text = captured_text();
        fail_test("A pool was created, used and shut down. Afterwards, LeakSanitizer found "
                  "memory that the pool had allocated and nothing points to any more: it was "
                  "never freed.%s\npool_shutdown() ends with pool_free(pool) (given), which "
                  "frees the queue, the array of threads and the pool itself, after the last "
                  "pthread_join() (NOTES.md section 2.6).%s",
                  sanitizer_report(text), pool_said());
        free(text);
    }
}
