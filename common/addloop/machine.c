#include "machine.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *yes_no(bool value)
{
    return value ? "yes" : "no";
}

static const char *round_trip_state(const struct build_figures *figures)
{
    if (!figures->round_trip_asked)
        return "skipped";
    return figures->round_trip.measured ? "measured" : "not measured";
}

void print_machine_figures(const struct build_figures *figures)
{
    const struct round_trip_figures *trip = &figures->round_trip;

    printf("program=%s\n", figures->program);
    printf("optimised=%s\n", yes_no(figures->optimised));
    printf("compiler=%s\n", figures->compiler);
    printf("additions=%" PRIu64 "\n", figures->additions);
    printf("runs=%u\n", figures->runs);
    printf("checksum=%" PRIu64 "\n", figures->checksum);
    printf("checksums_agree=%s\n", yes_no(figures->checksums_agree));
    printf("total_ns_min=%" PRIu64 "\n", figures->total_ns_min);
    printf("total_ns_median=%" PRIu64 "\n", figures->total_ns_median);
    printf("total_ns_max=%" PRIu64 "\n", figures->total_ns_max);
    printf("ns_per_addition=%.6f\n", ns_per_addition(figures));
    printf("ns_per_cycle=%.6f\n", figures->ns_per_cycle);
    printf("cycles_per_addition=%.3f\n", cycles_per_addition(figures));
    printf("clock_resolution_ns=%" PRIu64 "\n", figures->clock_resolution_ns);
    printf("clock_reading_ns=%" PRIu64 "\n", figures->clock_reading_ns);
    printf("round_trip=%s\n", round_trip_state(figures));
    if (trip->measured) {
        printf("round_trip_samples=%u\n", trip->samples);
        printf("round_trip_median_ns=%" PRIu64 "\n", trip->median_ns);
        printf("round_trip_p99_ns=%" PRIu64 "\n", trip->p99_ns);
        printf("round_trip_echo_cpu=%d\n", trip->echo_cpu);
        printf("round_trip_timer_cpu=%d\n", trip->timer_cpu);
    }
    fflush(stdout);
}

/* Stores one key=value line into figures; unknown keys are left alone so
 * that a newer program can add some. The round trip is not read back: the
 * table shows this build's own. */
static void store_machine_value(const char *key, const char *value, struct build_figures *figures)
{
    if (strcmp(key, "program") == 0)
        snprintf(figures->program, sizeof figures->program, "%s", value);
    else if (strcmp(key, "optimised") == 0)
        figures->optimised = strcmp(value, "yes") == 0;
    else if (strcmp(key, "compiler") == 0)
        snprintf(figures->compiler, sizeof figures->compiler, "%s", value);
    else if (strcmp(key, "additions") == 0)
        figures->additions = strtoull(value, NULL, 10);
    else if (strcmp(key, "runs") == 0)
        figures->runs = (unsigned)strtoul(value, NULL, 10);
    else if (strcmp(key, "checksum") == 0)
        figures->checksum = strtoull(value, NULL, 10);
    else if (strcmp(key, "checksums_agree") == 0)
        figures->checksums_agree = strcmp(value, "yes") == 0;
    else if (strcmp(key, "total_ns_min") == 0)
        figures->total_ns_min = strtoull(value, NULL, 10);
    else if (strcmp(key, "total_ns_median") == 0)
        figures->total_ns_median = strtoull(value, NULL, 10);
    else if (strcmp(key, "total_ns_max") == 0)
        figures->total_ns_max = strtoull(value, NULL, 10);
    else if (strcmp(key, "ns_per_cycle") == 0)
        figures->ns_per_cycle = strtod(value, NULL);
    else if (strcmp(key, "clock_resolution_ns") == 0)
        figures->clock_resolution_ns = strtoull(value, NULL, 10);
    else if (strcmp(key, "clock_reading_ns") == 0)
        figures->clock_reading_ns = strtoull(value, NULL, 10);
}

bool parse_machine_figures(const char *text, struct build_figures *figures)
{
    bool saw_median = false;
    const char *line = text;

    *figures = (struct build_figures){.round_trip = {.echo_cpu = -1, .timer_cpu = -1}};
    while (*line != '\0') {
        const char *end = strchr(line, '\n');
        size_t length = end ? (size_t)(end - line) : strlen(line);
        char copy[256];
        size_t kept = length < sizeof copy - 1 ? length : sizeof copy - 1;
        memcpy(copy, line, kept); /* not snprintf: it would measure all the rest of text */
        copy[kept] = '\0';
        char *equals = strchr(copy, '=');
        if (equals != NULL) {
            *equals = '\0';
            store_machine_value(copy, equals + 1, figures);
            saw_median = saw_median || strcmp(copy, "total_ns_median") == 0;
        }
        line = end ? end + 1 : line + length;
    }
    return saw_median;
}
