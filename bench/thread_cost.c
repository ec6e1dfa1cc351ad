/* What a thread costs on this machine (NOTES.md sections 2.9 and 2.10).
 *
 * 1. A request served by a new thread (pthread_create, then pthread_join)
 *    against one handed to a pool's worker that already exists (pool_submit,
 *    then wait until the job says it is done). Delay 0: only the cost of the
 *    threads is left. Microseconds and context switches per request, in the
 *    same run, and their ratio.
 * 2. One switch between two threads on the same CPU (a pipe ping-pong).
 * 3. Memory per thread: the stack reserved by default, what is resident for
 *    an idle thread, and the kernel's own stack for it.
 *
 *   build/thread_cost [REQUESTS]      (default 20000; runs in a few seconds)
 *
 * Timing figures drift on a shared machine: compare the rows of one run. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "pool.h"

enum { DEFAULT_REQUESTS = 20000, IDLE_THREADS = 200, THOUSANDS_FOR_C10K = 10 };

/* ------------------------------------------------------------ measuring */

struct sample {
    double seconds;
    double cpu_seconds; /* user + system, all threads of the process */
    long switches;      /* voluntary + involuntary, all threads of the process */
};

static double now_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* The CPU time of every thread of the process, ended ones included. */
static double cpu_seconds_so_far(void)
{
    struct timespec cpu;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    return (double)cpu.tv_sec + (double)cpu.tv_nsec / 1e9;
}

/* getrusage(RUSAGE_SELF) sums every thread, ended ones included. */
static long switches_so_far(void)
{
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0) {
        perror("getrusage");
        exit(1);
    }
    return usage.ru_nvcsw + usage.ru_nivcsw;
}

static struct sample start_sample(void)
{
    return (struct sample){.seconds = now_seconds(), .cpu_seconds = cpu_seconds_so_far(),
                           .switches = switches_so_far()};
}

static struct sample since(struct sample start)
{
    return (struct sample){.seconds = now_seconds() - start.seconds,
                           .cpu_seconds = cpu_seconds_so_far() - start.cpu_seconds,
                           .switches = switches_so_far() - start.switches};
}

static void check(int error, const char *call)
{
    if (error != 0) {
        fprintf(stderr, "thread_cost: %s: %s\n", call, strerror(error));
        exit(1);
    }
}

/* ------------------------------------- 1. a new thread against a pool */

/* Counts finished requests, so that the caller can wait for one or all. */
struct completion {
    pthread_mutex_t lock;
    pthread_cond_t done;
    long finished;
};

static struct completion completion = {.lock = PTHREAD_MUTEX_INITIALIZER,
                                       .done = PTHREAD_COND_INITIALIZER};

/* The request itself: nothing (delay 0) but saying it is done. */
static void finish_request(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&completion.lock);
    completion.finished++;
    pthread_cond_signal(&completion.done);
    pthread_mutex_unlock(&completion.lock);
}

static void wait_until_finished(long count)
{
    pthread_mutex_lock(&completion.lock);
    while (completion.finished < count)
        pthread_cond_wait(&completion.done, &completion.lock);
    pthread_mutex_unlock(&completion.lock);
}

static void *request_thread(void *unused)
{
    finish_request(unused);
    return NULL;
}

/* How the requests are handed out: each one waited for before the next
 * (the latency of one request on an idle server), or all back to back, the
 * way a busy acceptor hands them out without waiting (throughput). */
enum pace { ONE_AT_A_TIME, BACK_TO_BACK };

static pthread_attr_t detached;

static void start_request_thread(enum pace pace)
{
    pthread_t thread;

    if (pace == ONE_AT_A_TIME) {
        check(pthread_create(&thread, NULL, request_thread, NULL), "pthread_create");
        check(pthread_join(thread, NULL), "pthread_join");
    } else {
        /* Detached: its stack is given back when it ends, without a join. */
        check(pthread_create(&thread, &detached, request_thread, NULL), "pthread_create");
    }
}

static struct sample thread_per_request(int requests, enum pace pace)
{
    completion.finished = 0;
    struct sample start = start_sample();
    for (int i = 1; i <= requests; i++)
        start_request_thread(pace);
    wait_until_finished(requests);
    return since(start);
}

static struct sample pool_per_request(int requests, enum pace pace)
{
    /* One worker, like one new thread per request in the other case; room
     * for many waiting jobs, so that back to back never waits for room. */
    struct pool *pool = pool_create(1, 1024);
    if (pool == NULL)
        exit(1);

    completion.finished = 0;
    struct sample start = start_sample();
    for (long i = 1; i <= requests; i++) {
        if (!pool_submit(pool, finish_request, NULL)) {
            fprintf(stderr, "thread_cost: pool_submit refused a job\n");
            exit(1);
        }
        if (pace == ONE_AT_A_TIME)
            wait_until_finished(i);
    }
    wait_until_finished(requests);
    struct sample taken = since(start);
    pool_shutdown(pool);
    return taken;
}

/* ------------------------------------------ 2. one switch on one CPU */

struct ping_pong {
    int to_partner[2];
    int to_main[2];
    int round_trips;
    int cpu;
};

static void pin_to(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    check(pthread_setaffinity_np(pthread_self(), sizeof set, &set), "pthread_setaffinity_np");
}

static void transfer(int from, int to)
{
    char byte;
    if (read(from, &byte, 1) != 1 || write(to, &byte, 1) != 1) {
        perror("thread_cost: pipe");
        exit(1);
    }
}

static void *partner(void *argument)
{
    struct ping_pong *game = argument;

    pin_to(game->cpu);
    for (int i = 0; i < game->round_trips; i++)
        transfer(game->to_partner[0], game->to_main[1]);
    return NULL;
}

/* Both threads on one CPU, each blocking in read() until the other writes:
 * every hand-over is one context switch. Returns seconds per switch. */
static double switch_cost(int round_trips)
{
    struct ping_pong game = {.round_trips = round_trips};
    pthread_t thread;
    char byte = 'x';
    cpu_set_t allowed;

    if (pipe(game.to_partner) != 0 || pipe(game.to_main) != 0) {
        perror("thread_cost: pipe");
        exit(1);
    }
    /* The last CPU we may run on: usually the least busy with interrupts. */
    check(sched_getaffinity(0, sizeof allowed, &allowed) == 0 ? 0 : errno, "sched_getaffinity");
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, &allowed))
            game.cpu = cpu;
    check(pthread_create(&thread, NULL, partner, &game), "pthread_create");
    cpu_set_t before;
    check(pthread_getaffinity_np(pthread_self(), sizeof before, &before), "pthread_getaffinity_np");
    pin_to(game.cpu);

    double start = now_seconds();
    for (int i = 0; i < round_trips; i++) {
        if (write(game.to_partner[1], &byte, 1) != 1 || read(game.to_main[0], &byte, 1) != 1) {
            perror("thread_cost: pipe");
            exit(1);
        }
    }
    double seconds = now_seconds() - start;

    check(pthread_join(thread, NULL), "pthread_join");
    check(pthread_setaffinity_np(pthread_self(), sizeof before, &before), "pthread_setaffinity_np");
    close(game.to_partner[0]);
    close(game.to_partner[1]);
    close(game.to_main[0]);
    close(game.to_main[1]);
    return seconds / (2.0 * round_trips);
}

/* ------------------------------------------------ 3. memory per thread */

/* A field of /proc/self/status or /proc/meminfo, in KiB (-1 if absent). */
static long kib_field(const char *path, const char *name)
{
    FILE *file = fopen(path, "r");
    char line[256];
    size_t length = strlen(name);
    long value = -1;

    while (file != NULL && fgets(line, sizeof line, file) != NULL)
        if (strncmp(line, name, length) == 0 && line[length] == ':') {
            value = atol(line + length + 1);
            break;
        }
    if (file != NULL)
        fclose(file);
    return value;
}

struct memory {
    size_t default_stack;  /* bytes reserved for each new thread's stack */
    double virtual_kib;    /* address space per idle thread */
    double resident_kib;   /* memory actually touched per idle thread */
    double kernel_kib;     /* the kernel's stack per thread (system-wide counter) */
};

static pthread_barrier_t all_started, may_end;

static void *idle_thread(void *argument)
{
    pthread_barrier_wait(&all_started);
    pthread_barrier_wait(&may_end);
    return argument;
}

static struct memory memory_per_thread(void)
{
    static pthread_t threads[IDLE_THREADS];
    struct memory memory;
    pthread_attr_t defaults;

    check(pthread_getattr_default_np(&defaults), "pthread_getattr_default_np");
    check(pthread_attr_getstacksize(&defaults, &memory.default_stack), "pthread_attr_getstacksize");
    pthread_attr_destroy(&defaults);

    check(pthread_barrier_init(&all_started, NULL, IDLE_THREADS + 1), "pthread_barrier_init");
    check(pthread_barrier_init(&may_end, NULL, IDLE_THREADS + 1), "pthread_barrier_init");
    long virtual_before = kib_field("/proc/self/status", "VmSize");
    long resident_before = kib_field("/proc/self/status", "VmRSS");
    long kernel_before = kib_field("/proc/meminfo", "KernelStack");
    for (int i = 0; i < IDLE_THREADS; i++)
        check(pthread_create(&threads[i], NULL, idle_thread, NULL), "pthread_create");
    pthread_barrier_wait(&all_started);
    long virtual_after = kib_field("/proc/self/status", "VmSize");
    long resident_after = kib_field("/proc/self/status", "VmRSS");
    long kernel_after = kib_field("/proc/meminfo", "KernelStack");
    pthread_barrier_wait(&may_end);
    for (int i = 0; i < IDLE_THREADS; i++)
        check(pthread_join(threads[i], NULL), "pthread_join");
    pthread_barrier_destroy(&all_started);
    pthread_barrier_destroy(&may_end);

    memory.virtual_kib = (double)(virtual_after - virtual_before) / IDLE_THREADS;
    memory.resident_kib = (double)(resident_after - resident_before) / IDLE_THREADS;
    memory.kernel_kib = (double)(kernel_after - kernel_before) / IDLE_THREADS;
    return memory;
}

/* ----------------------------------------------------------- the table */

struct costs {
    struct sample thread, pooled;
};

static void print_row(const char *what, struct sample sample, int requests)
{
    printf("  %-44s %9.2f %9.2f %10.2f\n", what, sample.seconds * 1e6 / requests,
           sample.cpu_seconds * 1e6 / requests, (double)sample.switches / requests);
}

static void print_costs(int requests, const struct costs *paced, double a_switch)
{
    static const char *const pace_names[] = {"one at a time (latency)", "back to back (throughput)"};

    cpu_set_t allowed;
    int cpus = sched_getaffinity(0, sizeof allowed, &allowed) == 0 ? CPU_COUNT(&allowed) : -1;

    printf("%d requests at delay 0, on %d of this machine's %ld CPUs; per request:\n\n",
           requests, cpus, sysconf(_SC_NPROCESSORS_ONLN));
    printf("  %-44s %9s %9s %10s\n", "", "wall us", "CPU us", "switches");
    for (int pace = ONE_AT_A_TIME; pace <= BACK_TO_BACK; pace++) {
        printf("  %s\n", pace_names[pace]);
        print_row("  new thread (pthread_create, ends)", paced[pace].thread, requests);
        print_row("  pool worker (pool_submit, job ends)", paced[pace].pooled, requests);
        printf("    a new thread costs %.1fx the CPU time of a hand-over (wall: %.1fx)\n",
               paced[pace].thread.cpu_seconds / paced[pace].pooled.cpu_seconds,
               paced[pace].thread.seconds / paced[pace].pooled.seconds);
    }
    printf("\n  one switch between two threads on one CPU: %.2f us (pipe ping-pong)\n\n",
           a_switch * 1e6);
}

static void print_memory(struct memory memory)
{
    double c10k = THOUSANDS_FOR_C10K * 1000.0;

    printf("Memory per thread (%d idle threads):\n\n", IDLE_THREADS);
    printf("  stack reserved by default   %8zu KiB  (pthread default, from ulimit -s)\n",
           memory.default_stack / 1024);
    printf("  address space per thread    %8.0f KiB  (VmSize: the stack and its guard page)\n",
           memory.virtual_kib);
    printf("  resident per idle thread    %8.1f KiB  (VmRSS: only the pages touched)\n",
           memory.resident_kib);
    printf("  kernel stack per thread     %8.1f KiB  (KernelStack in /proc/meminfo, "
           "system-wide: noisy)\n\n", memory.kernel_kib);
    printf("  %d 000 threads (C10K): %.0f GiB of address space, %.0f MiB resident, %.0f MiB of "
           "kernel stacks\n", THOUSANDS_FOR_C10K, c10k * memory.virtual_kib / (1024 * 1024),
           c10k * memory.resident_kib / 1024, c10k * memory.kernel_kib / 1024);
}

int main(int argc, char **argv)
{
    int requests = argc > 1 ? atoi(argv[1]) : DEFAULT_REQUESTS;
    struct costs paced[2];

    if (argc > 2 || requests < 100 || requests > 10000000) {
        fprintf(stderr, "usage: %s [REQUESTS]   (100 to 10000000, default %d)\n", argv[0],
                DEFAULT_REQUESTS);
        return 2;
    }
    check(pthread_attr_init(&detached), "pthread_attr_init");
    check(pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED),
          "pthread_attr_setdetachstate");
    /* Warm up both paths (page faults, the first stacks) before timing. */
    thread_per_request(requests / 10, BACK_TO_BACK);
    pool_per_request(requests / 10, BACK_TO_BACK);

    for (int pace = ONE_AT_A_TIME; pace <= BACK_TO_BACK; pace++) {
        paced[pace].thread = thread_per_request(requests, (enum pace)pace);
        paced[pace].pooled = pool_per_request(requests, (enum pace)pace);
    }
    double a_switch = switch_cost(requests);

    print_costs(requests, paced, a_switch);
    print_memory(memory_per_thread());
    pthread_attr_destroy(&detached);
    return 0;
}
