#include "figures.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addloop.h"
#include "cycle.h"
#include "stats.h"

/* gcc defines __OPTIMIZE__ at -O1 and above. This file is compiled at the
 * level of the build it goes into (meson makes an -O0 and an -O2 copy). */
static bool compiled_with_optimisation(void)
{
#ifdef __OPTIMIZE__
    return true;
#else
    return false;
#endif
}

static const char *compiler_version(void)
{
#ifdef __clang__
    return "clang " __clang_version__;
#else
    return "gcc " __VERSION__;
#endif
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash ? slash + 1 : path;
}

/* The smallest step CLOCK_MONOTONIC can show. */
static uint64_t monotonic_clock_resolution_ns(void)
{
    struct timespec resolution;

    if (clock_getres(CLOCK_MONOTONIC, &resolution) != 0) {
        fprintf(stderr, "clock_getres(CLOCK_MONOTONIC): %s\n", strerror(errno));
        exit(1);
    }
    return (uint64_t)resolution.tv_sec * 1000000000u + (uint64_t)resolution.tv_nsec;
}

static void time_additions_repeatedly(const struct measurement_plan *plan,
                                      struct build_figures *figures)
{
    uint64_t *timings = calloc(plan->runs, sizeof timings[0]);
    if (timings == NULL) {
        fprintf(stderr, "out of memory for %u timings\n", plan->runs);
        exit(1);
    }
    struct addition_timing first = measure_additions(plan->additions); /* untimed warm-up */
    figures->checksum = first.checksum;
    figures->checksums_agree = true;
    for (unsigned run = 0; run < plan->runs; run++) {
        struct addition_timing timing = measure_additions(plan->additions);
        timings[run] = timing.elapsed_ns;
        if (timing.checksum != figures->checksum)
            figures->checksums_agree = false;
    }
    struct summary summary = summarise(timings, plan->runs);
    figures->total_ns_min = summary.min;
    figures->total_ns_median = summary.median;
    figures->total_ns_max = summary.max;
    free(timings);
}

void measure_this_build(const char *program_path, const struct measurement_plan *plan,
                        struct build_figures *figures)
{
    *figures = (struct build_figures){.additions = plan->additions, .runs = plan->runs};
    snprintf(figures->program, sizeof figures->program, "%s", base_name(program_path));
    snprintf(figures->compiler, sizeof figures->compiler, "%s", compiler_version());
    figures->optimised = compiled_with_optimisation();
    figures->clock_reading_ns = read_monotonic_clock_ns();
    figures->clock_resolution_ns = monotonic_clock_resolution_ns();
    figures->ns_per_cycle = measure_ns_per_cycle();
    time_additions_repeatedly(plan, figures);
    figures->round_trip = (struct round_trip_figures){.echo_cpu = -1, .timer_cpu = -1};
    figures->round_trip_asked = plan->round_trips > 0;
    if (figures->round_trip_asked)
        measure_round_trips(plan->round_trips, plan->same_cpu, &figures->round_trip);
}

double ns_per_addition(const struct build_figures *figures)
{
    if (figures->additions == 0)
        return 0;
    return (double)figures->total_ns_median / (double)figures->additions;
}

double cycles_per_addition(const struct build_figures *figures)
{
    if (figures->ns_per_cycle <= 0)
        return 0;
    return ns_per_addition(figures) / figures->ns_per_cycle;
}
