#include "round_trips.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu_pinning.h"
#include "echo_process.h"
#include "loopback.h"
#include "roundtrip.h"
#include "stats.h"

enum {
    WARM_UP_ROUND_TRIPS = 200, /* untimed: caches, the scheduler and the CPU's clock settle */
    ACCEPT_TIMEOUT_MS = 5000,
    ECHO_TIMEOUT_S = 2, /* a byte that has not come back by then never will */
};

static bool time_round_trips(int fd, uint64_t *timings, unsigned samples)
{
    uint64_t ignored;

    for (int i = 0; i < WARM_UP_ROUND_TRIPS; i++)
        if (!time_one_round_trip(fd, &ignored))
            return false;
    for (unsigned i = 0; i < samples; i++)
        if (!time_one_round_trip(fd, &timings[i]))
            return false;
    return true;
}

/* The parent's side, on its own CPU: connection set up, then the timings. */
static bool time_against_echo(int listener_fd, int timer_cpu, uint64_t *timings, unsigned samples)
{
    int fd = accept_within(listener_fd, ACCEPT_TIMEOUT_MS);
    if (fd < 0)
        return false;
    bool measured = send_small_writes_at_once(fd) && give_up_reads_after(fd, ECHO_TIMEOUT_S) &&
                    pin_to_cpu(timer_cpu) && time_round_trips(fd, timings, samples);
    close(fd); /* the echo process reads end-of-file and exits */
    return measured;
}

static void summarise_round_trips(uint64_t *timings, unsigned samples,
                                  struct round_trip_figures *figures)
{
    struct summary summary = summarise(timings, samples);

    figures->measured = true;
    figures->samples = samples;
    figures->median_ns = summary.median;
    figures->p99_ns = summary.p99;
}

/* With the listener open and the timings' room made: the echo process, the
 * timings, and the echo process reaped whatever happened. */
static void time_with_echo_process(int listener_fd, uint16_t port,
                                   const struct cpu_placement *placement, uint64_t *timings,
                                   unsigned samples, struct round_trip_figures *figures)
{
    pid_t pid = start_echo_process(listener_fd, port, placement->echo_cpu);
    if (pid < 0)
        return;
    bool measured = time_against_echo(listener_fd, placement->timer_cpu, timings, samples);
    if (!measured)
        kill(pid, SIGKILL); /* it may still be waiting to connect */
    if (reap_echo_process(pid) && measured)
        summarise_round_trips(timings, samples, figures);
    restore_cpus(placement);
}

bool measure_round_trips(unsigned samples, bool same_cpu, struct round_trip_figures *figures)
{
    struct cpu_placement placement;
    uint16_t port;

    *figures = (struct round_trip_figures){.echo_cpu = -1, .timer_cpu = -1};
    if (!choose_cpus(same_cpu, &placement))
        return false;
    figures->echo_cpu = placement.echo_cpu;
    figures->timer_cpu = placement.timer_cpu;
    uint64_t *timings = calloc(samples, sizeof timings[0]);
    if (timings == NULL) {
        fprintf(stderr, "round trip: calloc for %u timings: %s\n", samples, strerror(errno));
        return false;
    }
    int listener_fd = open_loopback_listener(&port);
    if (listener_fd >= 0) {
        time_with_echo_process(listener_fd, port, &placement, timings, samples, figures);
        close(listener_fd);
    }
    free(timings);
    return figures->measured;
}
