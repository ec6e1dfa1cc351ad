/* Step 4 in a simulated world. Your read_monotonic_clock_ns(), your timed
 * loop (through measure_additions()) and your time_one_round_trip() run in
 * this process, under AddressSanitizer and UBSan, and the clock and socket
 * calls they make are answered by tests/step4_simulation.c instead of the
 * kernel.
 *
 * In the simulation every call takes a known time (a clock read 19 ns, a
 * write 2 417 ns, the echo arrives 38 551 ns after the write, a read returns
 * 1 203 ns after that), so an honest measurement comes out exact, and each
 * kind of wrong one comes out recognisably wrong: a round trip timed from
 * after the write misses 2 436 ns, a CPU-time clock stands still while the
 * read sleeps, a microsecond clock rounds to whole microseconds. The timed
 * loop's additions are real; only the clock around them is simulated. */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addloop.h"
#include "harness.h"
#include "roundtrip.h"
#include "step4_simulation.h"

TestSuite(step4_simulated, .timeout = 30);

/* No program is started by these tests. */
const struct program_default program_defaults[] = {{NULL, NULL}};

static const char CLOCK_SECTION[] = "4.2 \"Reading the clock\"";
static const char LOOP_SECTION[] = "4.3 \"The timed loop\"";
static const char ROUND_TRIP_SECTION[] = "4.6 \"A real wait: the round trip\"";

/* "\nRead NOTES.md section ..." and the TODO lines. Valid until the next call. */
static const char *read_section(const char *section, const struct caught_stderr *caught)
{
    static char text[2600];

    snprintf(text, sizeof text, "\nRead NOTES.md section %s.%s", section, todo_lines(caught->text));
    return text;
}

/* ================================ stage 1: the clock ================================ */

/* What a conversion of the simulated CLOCK_MONOTONIC reading gave, if it is
 * a known mistake; NULL otherwise. */
static const char *conversion_mistake(uint64_t got, uint64_t expected)
{
    uint64_t seconds = expected / 1000000000u, nanoseconds = expected % 1000000000u;

    if (got == seconds * 1000000u + nanoseconds / 1000u)
        return "That is the reading in microseconds: the result must be in nanoseconds, "
               "tv_sec * 1 000 000 000 + tv_nsec.";
    if (got == seconds * 1000u + nanoseconds / 1000000u)
        return "That is the reading in milliseconds: the result must be in nanoseconds.";
    if (got == seconds)
        return "That is the whole seconds only: tv_sec * 1 000 000 000 + tv_nsec.";
    if (got == seconds * 1000000000u)
        return "tv_nsec was left out: the nanoseconds past the second are part of the reading.";
    if (got == nanoseconds)
        return "tv_sec was left out: tv_nsec alone starts again from 0 every second.";
    if (got == seconds * 1000000u + nanoseconds)
        return "tv_sec was multiplied by 1 000 000: a second has 1 000 000 000 nanoseconds.";
    if (got == seconds + nanoseconds)
        return "tv_sec was added without being turned into nanoseconds.";
    if (got == (uint32_t)(seconds * 1000000000u) + nanoseconds ||
        got == (uint32_t)(seconds * 1000000000u + nanoseconds) ||
        got == (uint64_t)(int64_t)(int32_t)(uint32_t)(seconds * 1000000000u) + nanoseconds)
        return "The product tv_sec * 1 000 000 000 was cut to 32 bits: convert tv_sec to "
               "uint64_t before multiplying. (After 4.3 seconds of uptime the product no "
               "longer fits.)";
    return NULL;
}

static const char *clock_diagnosis(uint64_t got, uint64_t expected, const struct calls *calls)
{
    const char *clock = wrong_clock(calls);

    if (all_time_calls(calls) == 0)
        return "It read no clock at all: is read_monotonic_clock_ns() still the stub?";
    if (clock != NULL && monotonic_reads(calls) == 0)
        return clock;
    const char *mistake = conversion_mistake(got, expected);
    if (mistake != NULL)
        return mistake;
    if (monotonic_reads(calls) > 1)
        return "It read CLOCK_MONOTONIC more than once for one reading: read it once, and "
               "turn that one timespec into nanoseconds.";
    return "Read CLOCK_MONOTONIC once with clock_gettime() and return tv_sec * 1 000 000 000 + "
           "tv_nsec, computed in 64 bits.";
}

Test(step4_simulated, the_clock_reads_clock_monotonic_in_nanoseconds)
{
    struct caught_stderr caught;

    begin_simulation();
    start_catching_stderr(&caught);
    uint64_t got = read_monotonic_clock_ns();
    stop_catching_stderr(&caught);
    end_simulation();
    struct timespec shown = to_timespec(MONOTONIC_START_NS);
    check(got == MONOTONIC_START_NS && monotonic_reads(&world.calls) == 1,
          "read_monotonic_clock_ns() returned %s.\nIn this simulation "
          "clock_gettime(CLOCK_MONOTONIC) gives tv_sec = %lld and tv_nsec = %ld, so the "
          "expected reading is %s ns.\n%s%s",
          grouped(got, 0), (long long)shown.tv_sec, shown.tv_nsec,
          grouped(MONOTONIC_START_NS, 1), clock_diagnosis(got, MONOTONIC_START_NS, &world.calls),
          read_section(CLOCK_SECTION, &caught));
}

/* The probe runs in a fresh process (this executable, started again): a
 * read_monotonic_clock_ns() that exits must not run the test runner's exit
 * handlers. It reports what the function returned, if it returned. */
static const char PROBE_VARIABLE[] = "STEP4_SIMULATED_PROBE";

__attribute__((constructor)) static void run_probe_if_asked(void)
{
    const char *probe = getenv(PROBE_VARIABLE);

    if (probe == NULL || strcmp(probe, "failing-clock") != 0)
        return;
    begin_simulation();
    world.clock_error = EINVAL;
    uint64_t got = read_monotonic_clock_ns();
    end_simulation();
    printf("returned %" PRIu64 "\n", got);
    fflush(stdout);
    _exit(0);
}

/* What the probe did, in words, from its run. */
static const char *probe_outcome(const struct program_run *run, bool returned)
{
    if (returned)
        return "it returned a value as if it had read the clock.";
    if (run->timed_out)
        return "it did not finish within 10 s.";
    if (run->exit_code == 0)
        return "it exited with status 0.";
    return "it stopped, but did not print the reason.";
}

Test(step4_simulated, a_clock_that_cannot_be_read_stops_the_program_with_the_reason)
{
    char self[512];
    ssize_t length = readlink("/proc/self/exe", self, sizeof self - 1);
    struct program_run run;
    static char said[2048];

    cr_assert(length > 0, "harness: readlink /proc/self/exe: %s", strerror(errno));
    self[length] = '\0';
    setenv(PROBE_VARIABLE, "failing-clock", 1);
    const char *argv[] = {self, NULL};
    bool started = run_program(argv, 10000, &run);
    unsetenv(PROBE_VARIABLE);
    cr_assert(started, "harness: could not start %s", self);
    const char *reason = strerror(EINVAL);
    bool returned = run.exit_code == 0 && strncmp(run.out, "returned ", 9) == 0;
    bool right = !returned && !run.timed_out && strstr(run.err, reason) != NULL;
    const char *outcome = probe_outcome(&run, returned);
    snprintf(said, sizeof said, "%s", run.err); /* kept: the run is freed before failing */
    program_run_free(&run);
    check(right,
          "When clock_gettime() fails (here with EINVAL, \"%s\"), read_monotonic_clock_ns() "
          "must say so on stderr with strerror(errno) and stop the program (exit(1)): a "
          "timing made without a clock would be a lie.\nGot: %s%s%s\nRead NOTES.md section "
          "%s.%s",
          reason, outcome, said[0] ? "\nIt said on stderr:\n" : " It printed nothing on stderr.",
          said, CLOCK_SECTION, todo_lines(said));
}

/* ================================ stage 2: the sum ================================ */

static uint64_t sum_below(uint64_t n)
{
    /* n(n - 1)/2 without overflow for the counts used here: halve the even one. */
    return n % 2 == 0 ? (n / 2) * (n - 1) : n * ((n - 1) / 2);
}

/* A guess at what went wrong, from the checksum given for n. */
static const char *checksum_diagnosis(uint64_t n, uint64_t got)
{
    uint64_t expected = sum_below(n);

    if (got == 0 && expected != 0)
        return "Nothing was added: is time_additions() still the stub, or is the sum never "
               "returned as the checksum?";
    if (got == expected + n)
        return "That is 1 + 2 + ... + n: the loop must start at 0 and stop before n.";
    if (n > 0 && got == expected - (n - 1))
        return "The last number, n - 1, was not added: the loop must run while i < n.";
    if (got == (uint32_t)expected)
        return "That is the right sum cut to 32 bits: keep the sum in a uint64_t.";
    return "Check that the loop adds every i from 0 up to n - 1, once each, into one uint64_t "
           "that starts at 0.";
}

Test(step4_simulated, the_checksum_is_the_sum_of_every_number_below_n)
{
    /* Small edge cases, sums past 2^32, and the article's count (the one
     * measure_additions() passes as a literal) with its neighbours. */
    const uint64_t counts[] = {0, 1, 2, 7, 100000, 999999, 1000000, 1000001, 3000000};
    enum { COUNTS = sizeof counts / sizeof counts[0] };
    uint64_t checksums[COUNTS];
    struct caught_stderr caught; /* all calls at once: a stub says TODO only once */

    start_catching_stderr(&caught);
    for (size_t i = 0; i < COUNTS; i++)
        checksums[i] = measure_additions(counts[i]).checksum;
    stop_catching_stderr(&caught);
    for (size_t i = 0; i < COUNTS; i++)
        check(checksums[i] == sum_below(counts[i]),
              "measure_additions(%" PRIu64 ") gave the checksum %" PRIu64 ".\nExpected 0 + 1 + "
              "... + %" PRIu64 " = %" PRIu64 ".\n%s%s",
              counts[i], checksums[i], counts[i] > 0 ? counts[i] - 1 : 0, sum_below(counts[i]),
              checksum_diagnosis(counts[i], checksums[i]), read_section(LOOP_SECTION, &caught));
}

Test(step4_simulated, every_measurement_starts_from_a_zero_sum)
{
    struct caught_stderr caught;
    uint64_t sums[3];

    start_catching_stderr(&caught);
    for (int i = 0; i < 3; i++)
        sums[i] = measure_additions(1000).checksum;
    stop_catching_stderr(&caught);
    check(sums[0] == sum_below(1000) && sums[1] == sums[0] && sums[2] == sums[0],
          "Three calls of measure_additions(1000) gave the checksums %" PRIu64 ", %" PRIu64
          " and %" PRIu64 ".\nExpected %" PRIu64 " each time.\n%s%s",
          sums[0], sums[1], sums[2], sum_below(1000),
          sums[1] > sums[0] && sums[0] != 0
              ? "The sum keeps growing from one call to the next: a static or global sum is "
                "not set back to 0. Declare it inside time_additions(), as uint64_t sum = 0."
              : checksum_diagnosis(1000, sums[0]),
          read_section(LOOP_SECTION, &caught));
}

/* ================================ stage 3: the timed loop ================================ */

/* The simulated clock does not move while your loop adds (the additions
 * are real, the clock is not), so an honest measurement reports exactly
 * the time between its two readings: CLOCK_READ_NS. */
static void check_loop_timing(uint64_t n)
{
    struct caught_stderr caught;

    begin_simulation();
    start_catching_stderr(&caught);
    struct addition_timing timing = measure_additions(n);
    stop_catching_stderr(&caught);
    end_simulation();
    struct calls calls = world.calls;
    const char *clock = wrong_clock(&calls);
    int reads = monotonic_reads(&calls);

    if (all_time_calls(&calls) == 0)
        fail_test("measure_additions(%" PRIu64 ") read no clock, and reported %" PRIu64 " ns.\n"
                  "Expected two readings of read_monotonic_clock_ns(): one just before the "
                  "first addition, one just after the last.\nIs time_additions() still the "
                  "stub, or does it not call read_monotonic_clock_ns()?%s",
                  n, timing.elapsed_ns, read_section(LOOP_SECTION, &caught));
    if (clock != NULL)
        fail_test("measure_additions(%" PRIu64 ") did not time the loop with CLOCK_MONOTONIC "
                  "alone.\n%s\nTime it with read_monotonic_clock_ns() (if that is what reads "
                  "the wrong clock, its own test, in stage 1, says so too).%s",
                  n, clock, read_section(LOOP_SECTION, &caught));
    if (reads != 2)
        fail_test("measure_additions(%" PRIu64 ") read the clock %d times.\nExpected 2: once "
                  "just before the first addition, once just after the last.\n%s%s",
                  n, reads,
                  reads > 2 ? "A clock read inside the loop is timed with the additions: it "
                              "costs about 20 ns, the time of a hundred additions. Only the "
                              "addition and the barrier belong in the loop."
                            : "A duration needs two readings: stop minus start.",
                  read_section(LOOP_SECTION, &caught));
    if (timing.elapsed_ns != CLOCK_READ_NS)
        fail_test("measure_additions(%" PRIu64 ") reported %" PRIu64 " ns. In this simulation "
                  "the clock moves %d ns from one reading to the next (the additions take no "
                  "simulated time), so an honest measurement reports exactly %d ns.\n%s%s",
                  n, timing.elapsed_ns, CLOCK_READ_NS, CLOCK_READ_NS,
                  timing.elapsed_ns == (uint64_t)0 - CLOCK_READ_NS
                      ? "That is start minus stop, which wraps around below 0: the elapsed time "
                        "is stop - start."
                  : timing.elapsed_ns == 0
                      ? "0: is the same reading subtracted from itself, or is "
                        "read_monotonic_clock_ns() not yet in nanoseconds (stage 1)?"
                      : "Return the stop reading minus the start reading, in nanoseconds.",
                  read_section(LOOP_SECTION, &caught));
}

Test(step4_simulated, the_loop_is_timed_by_one_clock_reading_before_it_and_one_after)
{
    check_loop_timing(1000);
    check_loop_timing(ARTICLE_ADDITIONS); /* the literal path of measure_additions() */
}

/* ================================ stage 4: the round trip ================================ */

enum scenario {
    ECHO_COMES_BACK,
    ECHO_PROCESS_CLOSED,  /* read() returns 0 */
    WRITE_FAILS,          /* write() returns -1, ECONNRESET */
    READ_TIMES_OUT,       /* read() returns -1, EAGAIN (SO_RCVTIMEO) */
};

static const uint64_t NOT_STORED = 0xDEADBEEFu;

struct round_trip_outcome {
    bool returned;
    uint64_t elapsed_ns; /* NOT_STORED if never stored */
    struct calls calls;
    struct caught_stderr caught;
};

/* Calls time_one_round_trip() once on the simulated connection. The socket
 * is a real one (a socketpair, non-blocking), so that a call this file does
 * not simulate fails at once instead of hanging. */
static void simulate_round_trip(enum scenario scenario, struct round_trip_outcome *outcome)
{
    int pair[2];

    cr_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) == 0,
              "harness: socketpair: %s", strerror(errno));
    outcome->elapsed_ns = NOT_STORED;
    begin_simulation();
    world.socket_fd = pair[0];
    world.peer_closed = scenario == ECHO_PROCESS_CLOSED;
    world.write_error = scenario == WRITE_FAILS ? ECONNRESET : 0;
    world.read_error = scenario == READ_TIMES_OUT ? EAGAIN : 0;
    start_catching_stderr(&outcome->caught);
    outcome->returned = time_one_round_trip(pair[0], &outcome->elapsed_ns);
    stop_catching_stderr(&outcome->caught);
    end_simulation();
    outcome->calls = world.calls;
    close(pair[0]);
    close(pair[1]);
}

Test(step4_simulated, a_round_trip_writes_one_byte_and_reads_it_back)
{
    struct round_trip_outcome trip;

    simulate_round_trip(ECHO_COMES_BACK, &trip);
    const struct calls *calls = &trip.calls;
    check(trip.returned,
          "time_one_round_trip() returned false, although the byte was written and came "
          "back.%s\nExpected true after one write() of one byte and one read() of the echo.%s",
          what_it_said(&trip.caught), read_section(ROUND_TRIP_SECTION, &trip.caught));
    check(calls->writes == 1 && calls->bytes_written == 1 && calls->reads == 1 &&
              calls->bytes_read == 1,
          "time_one_round_trip() wrote %zu byte(s) in %d call(s) of write() or send(), and read "
          "%zu byte(s) in %d call(s) of read() or recv().\nExpected one byte out and the same "
          "byte back: one write of 1 byte, one read.%s%s",
          calls->bytes_written, calls->writes, calls->bytes_read, calls->reads,
          calls->writes == 0 ? "\nNothing went through write(), send() or sendto(): use one "
                               "of them on socket_fd."
          : calls->largest_write > 1 ? "\nMore bytes take longer to copy and send: the round "
                                       "trip is of one byte."
                                     : "",
          read_section(ROUND_TRIP_SECTION, &trip.caught));
}

/* The timeline of a round trip in the simulation, for messages. */
static const char *simulated_timeline(void)
{
    static char text[600];
    uint64_t total = CLOCK_READ_NS + WRITE_NS + ECHO_DELAY_NS + WAKE_UP_NS;

    snprintf(text, sizeof text,
             "In this simulation a clock reading takes %d ns, the write() %s ns, the echo "
             "arrives %s ns after the write, and the read() returns %s ns after that: from the "
             "reading before the write to the reading after the read, %s ns.",
             CLOCK_READ_NS, grouped(WRITE_NS, 0), grouped(ECHO_DELAY_NS, 1),
             grouped(WAKE_UP_NS, 2), grouped(total, 3));
    return text;
}

/* A likely cause of a wrong round trip time, from the value itself. */
static const char *round_trip_diagnosis(uint64_t got)
{
    const uint64_t total = CLOCK_READ_NS + WRITE_NS + ECHO_DELAY_NS + WAKE_UP_NS;

    if (got == NOT_STORED)
        return "*elapsed_ns was never stored.";
    if (got == ECHO_DELAY_NS + WAKE_UP_NS)
        return "That leaves out the write: the clock was started after write() returned. Read "
               "it before the write.";
    if (got == CLOCK_READ_NS + WRITE_NS)
        return "That is the write alone: the clock was stopped before read() waited for the "
               "echo, so the wait, the point of the measurement, is left out.";
    if (got <= CLOCK_READ_NS)
        return "Almost nothing was timed: are both readings taken on the same side of the "
               "write and the read?";
    if (got == (uint64_t)0 - total)
        return "That is start minus stop, which wraps around below 0.";
    if (got == total / 1000 || got == total / 1000 + 1)
        return "That is the round trip in microseconds: *elapsed_ns is in nanoseconds.";
    if (got % 1000 == 0 && got + 1000 > total && got < total + 1000)
        return "That is rounded to whole microseconds: a microsecond clock, or a reading "
               "divided by 1000 and multiplied back. Use read_monotonic_clock_ns().";
    if (got > total && got % total == 0)
        return "That is several round trips: one write and one read only.";
    return "Read the clock with read_monotonic_clock_ns() just before the write and just after "
           "the read, and store the difference.";
}

Test(step4_simulated, a_round_trip_is_timed_from_before_the_write_to_after_the_echo)
{
    struct round_trip_outcome trip;
    const uint64_t total = CLOCK_READ_NS + WRITE_NS + ECHO_DELAY_NS + WAKE_UP_NS;

    simulate_round_trip(ECHO_COMES_BACK, &trip);
    const char *clock = wrong_clock(&trip.calls);
    check(trip.returned,
          "time_one_round_trip() returned false, although the byte came back.%s%s",
          what_it_said(&trip.caught), read_section(ROUND_TRIP_SECTION, &trip.caught));
    check(clock == NULL, "time_one_round_trip() measured %s ns with the wrong clock.\n%s\n"
          "Time it with read_monotonic_clock_ns(), which you wrote in stage 1.%s",
          grouped(trip.elapsed_ns, 0), clock, read_section(ROUND_TRIP_SECTION, &trip.caught));
    char measured[40], expected[40]; /* simulated_timeline() reuses grouped()'s buffers */
    snprintf(measured, sizeof measured, "%s", grouped(trip.elapsed_ns, 0));
    snprintf(expected, sizeof expected, "%s", grouped(total, 0));
    check(trip.elapsed_ns == total,
          "time_one_round_trip() measured %s ns (%d clock readings).\n%s\nExpected %s ns.\n%s%s",
          measured, monotonic_reads(&trip.calls), simulated_timeline(), expected,
          round_trip_diagnosis(trip.elapsed_ns), read_section(ROUND_TRIP_SECTION, &trip.caught));
}

/* Whether the code printed a line of its own (its TODO lines aside). */
static bool said_something(const struct caught_stderr *caught)
{
    for (const char *line = caught->text; *line != '\0';) {
        if (strncmp(line, "TODO:", 5) != 0 && *line != '\n')
            return true;
        const char *end = strchr(line, '\n');
        line = end ? end + 1 : line + strlen(line);
    }
    return false;
}

Test(step4_simulated, a_round_trip_fails_when_the_echo_process_has_closed_the_connection)
{
    struct round_trip_outcome trip;

    simulate_round_trip(ECHO_PROCESS_CLOSED, &trip);
    check(!trip.returned && said_something(&trip.caught),
          "The echo process closed the connection: read() returned 0, end of stream, and no "
          "byte came back.\ntime_one_round_trip() returned %s.%s\nExpected false, and a line "
          "on stderr saying that the other side closed the connection: a read of 0 bytes is "
          "not an echo.%s",
          trip.returned ? "true" : "false", what_it_said(&trip.caught),
          read_section(ROUND_TRIP_SECTION, &trip.caught));
}

static void check_failure_is_reported(enum scenario scenario, const char *call, int error)
{
    struct round_trip_outcome trip;
    const char *reason = strerror(error);

    simulate_round_trip(scenario, &trip);
    check(!trip.returned && strstr(trip.caught.text, reason) != NULL,
          "%s failed with %s (\"%s\").\ntime_one_round_trip() returned %s.%s\nExpected false, "
          "and a line on stderr with the reason, strerror(errno): \"%s\".%s",
          call, error == ECONNRESET ? "ECONNRESET" : "EAGAIN (no echo before SO_RCVTIMEO)",
          reason, trip.returned ? "true" : "false", what_it_said(&trip.caught), reason,
          read_section(ROUND_TRIP_SECTION, &trip.caught));
}

Test(step4_simulated, a_failed_write_or_read_is_reported_with_its_reason)
{
    check_failure_is_reported(WRITE_FAILS, "write()", ECONNRESET);
    check_failure_is_reported(READ_TIMES_OUT, "read()", EAGAIN);
}
