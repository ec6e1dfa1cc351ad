/* Everything step 4 measures in one build of the program. */
#ifndef COMMON_ADDLOOP_FIGURES_H
#define COMMON_ADDLOOP_FIGURES_H

#include <stdbool.h>
#include <stdint.h>

#include "round_trips.h"

struct measurement_plan {
    uint64_t additions;   /* --n */
    unsigned runs;        /* --runs */
    unsigned round_trips; /* --round-trips; 0: none (--no-round-trip) */
    bool same_cpu;        /* --same-cpu */
};

struct build_figures {
    char program[64];  /* the executable's name */
    bool optimised;    /* compiled with optimisation (-O1 and above) */
    char compiler[64]; /* "gcc 12.2.0" */
    uint64_t additions;
    unsigned runs;
    uint64_t checksum; /* of the untimed first run (all runs must agree) */
    bool checksums_agree;
    uint64_t total_ns_min;
    uint64_t total_ns_median;
    uint64_t total_ns_max;
    double ns_per_cycle; /* 0: not measured */
    uint64_t clock_resolution_ns;
    uint64_t clock_reading_ns; /* one reading of read_monotonic_clock_ns(), taken at start */
    bool round_trip_asked;     /* false with --no-round-trip */
    struct round_trip_figures round_trip;
};

/* Measures this build: the clock, a cycle, the additions (one untimed run,
 * then plan->runs timed ones) and, if asked, the round trip. */
void measure_this_build(const char *program_path, const struct measurement_plan *plan,
                        struct build_figures *figures);

/* Derived figures; 0 when what they divide by is 0. */
double ns_per_addition(const struct build_figures *figures);
double cycles_per_addition(const struct build_figures *figures);

#endif
