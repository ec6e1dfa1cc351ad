#include "options.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addloop.h"

enum { DEFAULT_RUNS = 11, DEFAULT_ROUND_TRIPS = 2000 };

static const uint64_t MAX_ADDITIONS = 10000000000u; /* 10^10: a few seconds per run */
static const unsigned MAX_RUNS = 1000;
static const unsigned MAX_ROUND_TRIPS = 1000000;

static void print_usage(FILE *stream, const char *program)
{
    fprintf(stream,
            "usage: %s [--n N] [--runs R] [--round-trips K] [--no-round-trip] [--same-cpu]\n"
            "       [--machine] [--help]\n"
            "\n"
            "Times N dependent additions (the article's loop) with the monotonic clock and\n"
            "prints, beside the article's figures, the unoptimised and optimised builds'\n"
            "(the other build is run from the same folder), a CPU cycle measured by a chain\n"
            "of dependent adds, the clock's resolution, and a loopback TCP round trip\n"
            "between two processes.\n"
            "\n"
            "  --n N             additions per run (default %d, the article's; at most 10^10)\n"
            "  --runs R          timed runs; figures are their median (default %d)\n"
            "  --round-trips K   round trips to time (default %d)\n"
            "  --no-round-trip   do not measure the round trip\n"
            "  --same-cpu        run both ends of the round trip on one CPU\n"
            "  --machine         this build's figures only, one key=value a line:\n"
            "                      program, optimised (yes/no), compiler, additions, runs,\n"
            "                      checksum, checksums_agree (yes/no), total_ns_min,\n"
            "                      total_ns_median, total_ns_max, ns_per_addition,\n"
            "                      ns_per_cycle, cycles_per_addition, clock_resolution_ns,\n"
            "                      clock_reading_ns (CLOCK_MONOTONIC read at start),\n"
            "                      round_trip (measured / not measured / skipped), and\n"
            "                      when measured round_trip_samples,\n"
            "                      round_trip_median_ns, round_trip_p99_ns,\n"
            "                      round_trip_echo_cpu, round_trip_timer_cpu\n"
            "  --help            this text\n",
            program, ARTICLE_ADDITIONS, DEFAULT_RUNS, DEFAULT_ROUND_TRIPS);
}

static void usage_error(const char *program, const char *problem, const char *detail)
{
    fprintf(stderr, "%s: %s%s\n\n", program, problem, detail);
    print_usage(stderr, program);
    exit(2);
}

/* Digits only, from minimum to maximum. */
static uint64_t parse_count(const char *program, const char *flag, const char *text,
                            uint64_t minimum, uint64_t maximum)
{
    char *end;

    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 || value < minimum ||
        value > maximum) {
        char problem[160];
        snprintf(problem, sizeof problem, "%s wants a whole number from %llu to %llu, got ", flag,
                 (unsigned long long)minimum, (unsigned long long)maximum);
        usage_error(program, problem, text);
    }
    return value;
}

static const char *flag_value(int argc, char **argv, int *index)
{
    if (*index + 1 >= argc)
        usage_error(argv[0], "missing value after ", argv[*index]);
    *index += 1;
    return argv[*index];
}

void parse_options(int argc, char **argv, struct options *options)
{
    *options = (struct options){
        .plan = {.additions = ARTICLE_ADDITIONS,
                 .runs = DEFAULT_RUNS,
                 .round_trips = DEFAULT_ROUND_TRIPS},
    };
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "--help") == 0) {
            print_usage(stdout, argv[0]);
            exit(0);
        } else if (strcmp(flag, "--n") == 0) {
            options->plan.additions =
                parse_count(argv[0], flag, flag_value(argc, argv, &i), 0, MAX_ADDITIONS);
        } else if (strcmp(flag, "--runs") == 0) {
            options->plan.runs =
                (unsigned)parse_count(argv[0], flag, flag_value(argc, argv, &i), 1, MAX_RUNS);
        } else if (strcmp(flag, "--round-trips") == 0) {
            options->plan.round_trips = (unsigned)parse_count(
                argv[0], flag, flag_value(argc, argv, &i), 1, MAX_ROUND_TRIPS);
        } else if (strcmp(flag, "--no-round-trip") == 0) {
            options->plan.round_trips = 0;
        } else if (strcmp(flag, "--same-cpu") == 0) {
            options->plan.same_cpu = true;
        } else if (strcmp(flag, "--machine") == 0) {
            options->machine = true;
        } else {
            usage_error(argv[0], "unknown flag ", flag);
        }
    }
}
