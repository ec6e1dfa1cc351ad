/* Step 4, the add loop: your two builds (-O0 and -O2) against the
 * reference's, in the same run. STEP4_O0_UNDER_TEST, STEP4_O2_UNDER_TEST,
 * STEP4_O0_REFERENCE and STEP4_O2_REFERENCE name the four programs; the
 * tests read their --machine output (one key=value a line).
 *
 * No test asserts a speed. They assert shapes (time grows with the count)
 * and ratios to the reference measured moments before on the same machine,
 * with margins wide enough for a shared, noisy machine and still narrow
 * enough to tell a loop that runs from one that was never run. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

TestSuite(step4, .timeout = 60);

/* The programs this executable tests; meson compiles their paths in. */
const struct program_default program_defaults[] = {
    {"STEP4_O0_UNDER_TEST", O0_UNDER_TEST_DEFAULT},
    {"STEP4_O2_UNDER_TEST", O2_UNDER_TEST_DEFAULT},
    {"STEP4_O0_REFERENCE", O0_REFERENCE_DEFAULT},
    {"STEP4_O2_REFERENCE", O2_REFERENCE_DEFAULT},
    {NULL, NULL},
};

enum { RUN_TIMEOUT_MS = 20000, MAX_ARGS = 16 };

/* The article's count and checksum: 0 + 1 + ... + 999 999. */
static const uint64_t ARTICLE_ADDITIONS = 1000000;
static const uint64_t ARTICLE_CHECKSUM = 499999500000u;

/* Ratios a right program stays well inside, and a wrong one leaves by far:
 * a folded or empty loop is hundreds of times off, not three. */
static const double GROWTH_LOW = 4, GROWTH_HIGH = 16; /* for 8x the additions */
static const double SPEED_FACTOR = 3;                 /* ns per addition, vs the reference */
static const double ROUND_TRIP_FACTOR = 5;            /* round trip, vs the reference */

static const char LOOP_SECTION[] = "4.2 \"The timed loop\"";
static const char CLOCK_SECTION[] = "4.3 \"Reading the clock\"";
static const char BARRIER_SECTION[] = "4.4 \"The barrier\"";
static const char ROUND_TRIP_SECTION[] = "4.6 \"A real wait: the round trip\"";

struct build {
    const char *level;          /* "-O0" */
    const char *under_test_env; /* STEP4_O0_UNDER_TEST */
    const char *reference_env;  /* STEP4_O0_REFERENCE */
};

static const struct build UNOPTIMISED = {"-O0", "STEP4_O0_UNDER_TEST", "STEP4_O0_REFERENCE"};
static const struct build OPTIMISED = {"-O2", "STEP4_O2_UNDER_TEST", "STEP4_O2_REFERENCE"};

/* One finished run of a step 4 program. */
struct step4_run {
    char role[64];     /* "your -O2 build", "the reference -O2 build" */
    char command[600]; /* to repeat it by hand */
    struct program_run run;
};

/* ------------------------------------------------------------ running */

/* What a program said on stderr besides its TODO lines (which messages
 * show apart), at most the last 600 bytes. Valid until the next call. */
static const char *stderr_tail(const char *text)
{
    static char kept[4096];
    size_t used = 0;

    kept[0] = '\0';
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t length = end ? (size_t)(end - line + 1) : strlen(line);
        if (strncmp(line, "TODO:", 5) != 0 && used + length < sizeof kept) {
            memcpy(kept + used, line, length);
            used += length;
            kept[used] = '\0';
        }
        line = end ? end + 1 : NULL;
    }
    return used > 600 ? kept + used - 600 : kept;
}

/* "your -O2 build" -> "Your -O2 build", to begin a sentence. Valid until
 * the next call. */
static const char *capitalised(const char *text)
{
    static char copy[64];

    snprintf(copy, sizeof copy, "%s", text);
    if (copy[0] >= 'a' && copy[0] <= 'z')
        copy[0] = (char)(copy[0] - 'a' + 'A');
    return copy;
}

/* Runs path with the flags (space-separated). Fails the test, with what the
 * program said, unless it exits 0 in time. */
static void run_step4(struct step4_run *result, const char *role, const char *path,
                      const char *flags)
{
    char words[256];
    const char *argv[MAX_ARGS] = {path};
    int count = 1;

    snprintf(result->role, sizeof result->role, "%s", role);
    snprintf(result->command, sizeof result->command, "%s %s", short_path(path), flags);
    snprintf(words, sizeof words, "%s", flags);
    for (char *word = strtok(words, " "); word != NULL && count < MAX_ARGS - 1;
         word = strtok(NULL, " "))
        argv[count++] = word;
    argv[count] = NULL;
    if (!run_program(argv, RUN_TIMEOUT_MS, &result->run))
        fail_test("Could not start %s (%s). Build it first: `meson compile -C build`.", role, path);
    if (result->run.timed_out)
        fail_test("%s did not finish within %d s. A loop that never ends, or a read that waits "
                  "for a byte that never comes?\nTry it by hand: %s%s",
                  capitalised(role), RUN_TIMEOUT_MS / 1000, result->command,
                  todo_lines(result->run.err));
    if (result->run.exit_code != 0)
        fail_test("%s stopped with exit status %d (signal %d) instead of 0.\nIt said on stderr:\n"
                  "%s\nTry it by hand: %s%s",
                  capitalised(role), result->run.exit_code, result->run.term_signal,
                  stderr_tail(result->run.err), result->command, todo_lines(result->run.err));
}

static void run_machine(struct step4_run *result, const char *role, const char *path,
                        const char *flags)
{
    char machine_flags[200];

    snprintf(machine_flags, sizeof machine_flags, "--machine %s", flags);
    run_step4(result, role, path, machine_flags);
}

static void run_yours(struct step4_run *result, const struct build *build, const char *flags)
{
    char role[64];

    snprintf(role, sizeof role, "your %s build", build->level);
    run_machine(result, role, program_path(build->under_test_env), flags);
}

static void run_reference(struct step4_run *result, const struct build *build, const char *flags)
{
    char role[64];

    snprintf(role, sizeof role, "the reference %s build", build->level);
    run_machine(result, role, program_path(build->reference_env), flags);
}

/* The value of `key` in --machine output, or NULL. Valid until the next call. */
static const char *machine_value(const struct step4_run *result, const char *key)
{
    static char value[128];
    size_t key_length = strlen(key);

    for (const char *line = result->run.out; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t length = end ? (size_t)(end - line) : strlen(line);
        if (length > key_length && strncmp(line, key, key_length) == 0 && line[key_length] == '=') {
            snprintf(value, sizeof value, "%.*s", (int)(length - key_length - 1),
                     line + key_length + 1);
            return value;
        }
        line = end ? end + 1 : NULL;
    }
    return NULL;
}

static const char *required_value(const struct step4_run *result, const char *key)
{
    const char *value = machine_value(result, key);

    if (value == NULL)
        fail_test("%s printed no \"%s=\" line with --machine. main.c prints it: was main.c "
                  "changed?\nIt printed:\n%s\nTry it by hand: %s%s",
                  capitalised(result->role), key, result->run.out, result->command,
                  todo_lines(result->run.err));
    return value;
}

static uint64_t u64_value(const struct step4_run *result, const char *key)
{
    return strtoull(required_value(result, key), NULL, 10);
}

static double double_value(const struct step4_run *result, const char *key)
{
    return strtod(required_value(result, key), NULL);
}

static void free_run(struct step4_run *result)
{
    program_run_free(&result->run);
}

/* ------------------------------------------------------------ wording */

/* "Read NOTES.md section ... Try it by hand: ..." and the TODO lines. */
static const char *where_to_read(const char *section, const struct step4_run *result)
{
    static char text[3000];

    snprintf(text, sizeof text, "\nRead NOTES.md section %s.\nTry it by hand: %s%s", section,
             result->command, todo_lines(result->run.err));
    return text;
}

static uint64_t sum_below(uint64_t n)
{
    /* n(n - 1)/2 without overflow for the counts used here: halve the even one. */
    return n % 2 == 0 ? (n / 2) * (n - 1) : n * ((n - 1) / 2);
}

/* A guess at what went wrong, from the checksum a program gave for n. */
static const char *checksum_diagnosis(uint64_t n, uint64_t got)
{
    uint64_t expected = sum_below(n);

    if (got == 0 && expected != 0)
        return "Nothing was added: is time_additions() still the stub, or is the sum "
               "never returned as the checksum?";
    if (got == expected + n)
        return "That is 1 + 2 + ... + n: the loop must start at 0 and stop before n.";
    if (n > 0 && got == expected - (n - 1))
        return "The last number, n - 1, was not added: the loop must run while i < n.";
    if (got == (uint32_t)expected)
        return "That is the right sum cut to 32 bits: keep the sum in a uint64_t.";
    return "Check that the loop adds every i from 0 up to n - 1, once each, into one "
           "uint64_t that starts at 0.";
}

static void check_checksum(const struct build *build, uint64_t n)
{
    struct step4_run yours;
    char flags[96];

    snprintf(flags, sizeof flags, "--n %" PRIu64 " --runs 1 --no-round-trip", n);
    run_yours(&yours, build, flags);
    uint64_t got = u64_value(&yours, "checksum");
    if (got != sum_below(n))
        fail_test("With --n %" PRIu64 ", %s reported the checksum %" PRIu64 ".\nExpected "
                  "0 + 1 + ... + %" PRIu64 " = %" PRIu64 ".\n%s%s",
                  n, yours.role, got, n > 0 ? n - 1 : 0, sum_below(n), checksum_diagnosis(n, got),
                  where_to_read(LOOP_SECTION, &yours));
    free_run(&yours);
}

/* ------------------------------------------------------------ the sum */
/* ==================== stage 1: the sum ==================== */

Test(step4, checksum_of_the_articles_million_additions_is_499999500000)
{
    const struct build *builds[] = {&UNOPTIMISED, &OPTIMISED};

    for (int i = 0; i < 2; i++) {
        struct step4_run yours;
        run_yours(&yours, builds[i], "--n 1000000 --runs 3 --no-round-trip");
        uint64_t got = u64_value(&yours, "checksum");
        if (got != ARTICLE_CHECKSUM)
            fail_test("%s added the article's 1 000 000 numbers and reported the checksum "
                      "%" PRIu64 ".\nExpected 499999500000, as in the article.\n%s%s",
                      capitalised(yours.role), got, checksum_diagnosis(ARTICLE_ADDITIONS, got),
                      where_to_read(LOOP_SECTION, &yours));
        if (strcmp(required_value(&yours, "checksums_agree"), "yes") != 0)
            fail_test("%s gave different checksums in different runs of the same count. "
                      "The sum must start at 0 in every call of time_additions(); a static "
                      "or global sum keeps growing.%s",
                      capitalised(yours.role), where_to_read(LOOP_SECTION, &yours));
        free_run(&yours);
    }
}

Test(step4, checksum_is_right_for_other_counts)
{
    /* Small edge cases, a sum past 2^32, and counts beside the article's. */
    const uint64_t counts[] = {0, 1, 2, 7, 100000, 999999, 1000001, 3000000};

    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        check_checksum(&UNOPTIMISED, counts[i]);
        check_checksum(&OPTIMISED, counts[i]);
    }
}

/* ------------------------------------------------------------ the time */

/* Why timings are off when the additions were not timed: the first cause
 * fits a loop the compiler folded, the second an empty timed region. */
static const char NOT_TIMED[] =
    "Your timed region did not contain the additions. Either the compiler folded the loop "
    "into its answer (it knows the article's count: measure_additions() passes it as a "
    "literal), so the barrier is missing or does not reach the sum (section 4.4 "
    "\"The barrier\"); or the clock is read around something else than the loop.";

Test(step4, optimised_time_grows_eightfold_with_eight_times_the_additions)
{
    /* 1 000 000 is the article's count, the one the compiler knows. */
    const char *one = "--n 1000000 --runs 9 --no-round-trip";
    const char *eight = "--n 8000000 --runs 9 --no-round-trip";
    struct step4_run yours_one, yours_eight, reference_one, reference_eight;

    run_reference(&reference_one, &OPTIMISED, one);
    run_yours(&yours_one, &OPTIMISED, one);
    run_reference(&reference_eight, &OPTIMISED, eight);
    run_yours(&yours_eight, &OPTIMISED, eight);
    double t1 = (double)u64_value(&yours_one, "total_ns_median");
    double t8 = (double)u64_value(&yours_eight, "total_ns_median");
    double r1 = (double)u64_value(&reference_one, "total_ns_median");
    double r8 = (double)u64_value(&reference_eight, "total_ns_median");

    if (t1 == 0 && t8 == 0)
        fail_test("%s reported 0 ns for 1 000 000 and for 8 000 000 additions: the clock "
                  "reads did not move. Does read_monotonic_clock_ns() still return 0, or is "
                  "its result not used?%s",
                  capitalised(yours_one.role), where_to_read(CLOCK_SECTION, &yours_one));
    double growth = t1 > 0 ? t8 / t1 : 1e9;
    if (growth < GROWTH_LOW || growth > GROWTH_HIGH) {
        bool first_not_run = t1 < r1 / 20;
        fail_test("8 times the additions should take about 8 times as long.\n"
                  "%s: 1 000 000 additions in %.0f ns, 8 000 000 in %.0f ns: %.1fx.\n"
                  "The reference -O2 build, just before: %.0f ns and %.0f ns: %.1fx.\n"
                  "Expected between %.0fx and %.0fx.\n%s%s",
                  capitalised(yours_one.role), t1, t8, growth, r1, r8, r1 > 0 ? r8 / r1 : 0,
                  GROWTH_LOW, GROWTH_HIGH,
                  first_not_run || growth < GROWTH_LOW
                      ? NOT_TIMED
                      : "Both counts were timed, but not in proportion: a busy machine? "
                        "Run the test again; if it persists, compare your loop with section "
                        "4.2.",
                  where_to_read(BARRIER_SECTION, &yours_one));
    }
    free_run(&yours_one);
    free_run(&yours_eight);
    free_run(&reference_one);
    free_run(&reference_eight);
}

static void compare_speed(const struct build *build)
{
    const char *flags = "--n 1000000 --runs 11 --no-round-trip";
    struct step4_run yours, reference;

    run_reference(&reference, build, flags);
    run_yours(&yours, build, flags);
    double your_ns = double_value(&yours, "ns_per_addition");
    double reference_ns = double_value(&reference, "ns_per_addition");
    double cycle_ns = double_value(&reference, "ns_per_cycle");
    double ratio = reference_ns > 0 ? your_ns / reference_ns : 0;

    if (ratio < 1 / SPEED_FACTOR)
        fail_test("%s took %.5f ns per addition; the reference %s build %.5f ns, and one CPU "
                  "cycle here lasts %.5f ns. Expected within %.0fx of the reference.\nThat much "
                  "faster than the reference means the additions were not all done while the "
                  "clock ran.\n%s%s",
                  capitalised(yours.role), your_ns, build->level, reference_ns, cycle_ns,
                  SPEED_FACTOR,
                  your_ns == 0 ? "0 ns: is read_monotonic_clock_ns() or time_additions() "
                                 "still the stub?"
                               : NOT_TIMED,
                  where_to_read(your_ns == 0 ? CLOCK_SECTION : BARRIER_SECTION, &yours));
    if (ratio > SPEED_FACTOR)
        fail_test("%s took %.4f ns per addition; the reference %s build %.4f ns (yours is "
                  "%.1fx slower; one CPU cycle here lasts %.4f ns). Expected within %.0fx of the "
                  "reference.\nSomething besides the addition runs inside the timed loop: a "
                  "function call, a print, a clock read, a volatile variable? Only the "
                  "addition and the barrier belong there.%s",
                  capitalised(yours.role), your_ns, build->level, reference_ns, ratio, cycle_ns,
                  SPEED_FACTOR, where_to_read(LOOP_SECTION, &yours));
    free_run(&yours);
    free_run(&reference);
}

Test(step4, ns_per_addition_is_close_to_the_reference_at_each_level)
{
    compare_speed(&UNOPTIMISED);
    compare_speed(&OPTIMISED);
}

static uint64_t monotonic_now_ns(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static const char *clock_diagnosis(uint64_t reading, uint64_t before, uint64_t after)
{
    if (reading == 0)
        return "0: is read_monotonic_clock_ns() still the stub?";
    if (reading > after && reading > 1000000000000000000u)
        return "That is about the number of nanoseconds since 1970: CLOCK_REALTIME, the "
               "wall clock, which jumps when the time is set. Use CLOCK_MONOTONIC.";
    if (reading * 1000 >= before && reading * 1000 <= after + 1000)
        return "That is the right clock in microseconds: multiply tv_sec by 1 000 000 000 and "
               "add tv_nsec as it is.";
    if (reading * 1000000 >= before && reading * 1000000 <= after + 1000000)
        return "That is the right clock in milliseconds: the reading must be in nanoseconds.";
    return "Use clock_gettime(CLOCK_MONOTONIC, ...) and tv_sec * 1 000 000 000 + tv_nsec, in "
           "64 bits (a 32-bit product overflows).";
}

Test(step4, clock_reads_the_monotonic_clock_in_nanoseconds)
{
    struct step4_run yours;

    /* CLOCK_MONOTONIC is one clock for the whole machine: the program's
     * reading must fall between ours before it started and after it ended. */
    uint64_t before = monotonic_now_ns();
    run_yours(&yours, &OPTIMISED, "--n 1000 --runs 1 --no-round-trip");
    uint64_t after = monotonic_now_ns();
    uint64_t reading = u64_value(&yours, "clock_reading_ns");

    if (reading < before || reading > after)
        fail_test("%s read the clock at %" PRIu64 ". CLOCK_MONOTONIC, in nanoseconds, read by "
                  "this test just before and just after the program ran: %" PRIu64 " and %" PRIu64
                  ".\n%s%s",
                  capitalised(yours.role), reading, before, after,
                  clock_diagnosis(reading, before, after), where_to_read(CLOCK_SECTION, &yours));
    free_run(&yours);
}

/* ------------------------------------------------------------ the wait */

Test(step4, round_trip_is_measured_and_plausible_next_to_the_reference)
{
    const char *flags = "--n 1000 --runs 1 --round-trips 500";
    struct step4_run yours, reference;

    run_reference(&reference, &OPTIMISED, flags);
    if (strcmp(required_value(&reference, "round_trip"), "measured") != 0)
        fail_test("The reference could not measure a round trip on this machine, so yours "
                  "cannot be compared. It said on stderr:\n%s\nTry it by hand: %s",
                  stderr_tail(reference.run.err), reference.command);
    run_yours(&yours, &OPTIMISED, flags);
    if (strcmp(required_value(&yours, "round_trip"), "measured") != 0)
        fail_test("%s did not measure the round trip (round_trip=%s).%s%s%s",
                  capitalised(yours.role), required_value(&yours, "round_trip"),
                  stderr_tail(yours.run.err)[0] ? " It said on stderr:\n" : "",
                  stderr_tail(yours.run.err), where_to_read(ROUND_TRIP_SECTION, &yours));
    double your_median = (double)u64_value(&yours, "round_trip_median_ns");
    double your_p99 = (double)u64_value(&yours, "round_trip_p99_ns");
    double reference_median = (double)u64_value(&reference, "round_trip_median_ns");
    const char *placement = required_value(&reference, "round_trip_echo_cpu");
    char echo_cpu[16];

    snprintf(echo_cpu, sizeof echo_cpu, "%s", placement);
    if (your_median <= 0 || your_p99 < your_median)
        fail_test("%s reported a round trip of median %.0f ns and p99 %.0f ns. Expected a "
                  "positive median, and a p99 at least as long.\nIs the time taken before the "
                  "write and after the read, with read_monotonic_clock_ns()?%s",
                  capitalised(yours.role), your_median, your_p99,
                  where_to_read(ROUND_TRIP_SECTION, &yours));
    double ratio = your_median / reference_median;
    if (ratio < 1 / ROUND_TRIP_FACTOR || ratio > ROUND_TRIP_FACTOR)
        fail_test("%s measured a median round trip of %.1f µs; the reference, just before, "
                  "%.1f µs (echo on CPU %s, timer on CPU %s). Expected within %.0fx.\n%s%s",
                  capitalised(yours.role), your_median / 1000, reference_median / 1000, echo_cpu,
                  required_value(&reference, "round_trip_timer_cpu"), ROUND_TRIP_FACTOR,
                  ratio < 1 ? "Shorter: is the clock read after the write but before the "
                              "read, so that the wait for the echo is left out?"
                            : "Longer: does the timed part do more than one write and one "
                              "read of one byte?",
                  where_to_read(ROUND_TRIP_SECTION, &yours));
    free_run(&yours);
    free_run(&reference);
}

/* ------------------------------------------------------------ the program */

Test(step4, default_run_prints_one_table_with_both_builds)
{
    struct step4_run yours;
    const char *expected[] = {"article (Rust)",
                              "ours, -O0",
                              "ours, -O2",
                              "13 503 041",
                              "499 999 500 000",
                              "additions in a 20 µs wait",
                              "additions in one round trip"};

    run_step4(&yours, "your -O2 build", program_path(OPTIMISED.under_test_env),
              "--n 100000 --runs 3 --round-trips 200");
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        if (strstr(yours.run.out, expected[i]) == NULL)
            fail_test("The table of %s has no \"%s\". It printed:\n%s\nmain.c and table.c are "
                      "given code: were they changed?\nTry it by hand: %s%s",
                      yours.role, expected[i], yours.run.out, yours.command,
                      todo_lines(yours.run.err));
    if (strstr(yours.run.out, "the other build: not measured") != NULL)
        fail_test("The table of %s could not show the -O0 build beside it. It printed:\n%s\n"
                  "Both builds must sit in one folder, named ..._O0 and ..._O2 (meson does "
                  "this).\nTry it by hand: %s%s",
                  yours.role, yours.run.out, yours.command, todo_lines(yours.run.err));
    free_run(&yours);
}

Test(step4, bad_flags_print_usage_and_exit_2)
{
    const char *path = program_path(OPTIMISED.under_test_env);
    const char *bad[][3] = {{"--frobnicate", NULL, NULL},
                            {"--n", "twelve", NULL},
                            {"--runs", "0", NULL},
                            {"--n", NULL, NULL}};

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *argv[] = {path, bad[i][0], bad[i][1], NULL};
        struct program_run run;
        if (!run_program(argv, RUN_TIMEOUT_MS, &run))
            fail_test("Could not start %s.", path);
        if (run.exit_code != 2 || strstr(run.err, "usage:") == NULL)
            fail_test("%s %s %s exited with status %d and said on stderr:\n%s\nExpected the "
                      "usage on stderr and exit status 2. main.c is given code: was it "
                      "changed?",
                      short_path(path), bad[i][0], bad[i][1] ? bad[i][1] : "", run.exit_code,
                      run.err);
        program_run_free(&run);
    }
}
