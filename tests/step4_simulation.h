/* The simulated world of the step 4 tests (tests/step4_simulated_test.c).
 *
 * The test executable is linked with -Wl,--wrap=clock_gettime,--wrap=read,
 * ... (meson.build, step 4): a call of clock_gettime() in the learner's code
 * lands in __wrap_clock_gettime() here. While a simulation runs, the clocks
 * read simulated time, and the simulated socket (one descriptor) takes a
 * known time to write to and to echo back; every call is counted. Outside
 * a simulation, and on any other descriptor, each call goes to the real
 * function: Criterion and the harness use them too. */
#ifndef TESTS_STEP4_SIMULATION_H
#define TESTS_STEP4_SIMULATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* What each simulated call costs, in simulated nanoseconds. */
enum {
    CLOCK_READ_NS = 19,   /* any clock read: about a vDSO call's cost */
    WRITE_NS = 2417,      /* write() of the byte, down the stack */
    ECHO_DELAY_NS = 38551, /* from the end of the write to the echo's arrival */
    WAKE_UP_NS = 1203,    /* from the echo's arrival to read()'s return */
    NOT_ECHOED_NS = 2000000000, /* a read waiting for a byte never sent: SO_RCVTIMEO */
    POLL_STEP_NS = 50,    /* a read that does not wait (MSG_DONTWAIT) */
};

/* The simulated clocks at the start: CLOCK_MONOTONIC shows 14 days of
 * uptime (tv_sec * 10^9 needs 51 bits) and a tv_nsec far from round. */
static const uint64_t MONOTONIC_START_NS = 1234567890123457u;
static const uint64_t CPU_START_NS = 173456789u;
static const uint64_t REALTIME_OFFSET_NS = 1698765432000000000u; /* a date in 2023 */
static const uint64_t BOOTTIME_OFFSET_NS = 86400000000000u;      /* a day of suspend */
static const uint64_t RAW_BEHIND_NS = 3141593u;                  /* NTP's correction */
static const uint64_t THREAD_CPU_BEHIND_NS = 1000000u;
static const uint64_t COARSE_TICK_NS = 4000000u;                 /* CONFIG_HZ=250 */
static const uint64_t TAI_AHEAD_NS = 37000000000u;

enum { CLOCK_IDS = 16 };

/* Every time-related call the code under test made, and what it did with
 * the simulated socket. */
struct calls {
    int clock_gettime[CLOCK_IDS]; /* by clock id; unknown ids at CLOCK_IDS - 1 */
    int clock;
    int gettimeofday;
    int time;
    int timespec_get;
    int writes;
    size_t bytes_written;
    size_t largest_write;
    int reads;
    size_t bytes_read;
};

struct simulation {
    bool active;
    uint64_t now_ns; /* what CLOCK_MONOTONIC reads */
    uint64_t cpu_ns; /* what CLOCK_PROCESS_CPUTIME_ID reads */
    int clock_error; /* clock_gettime() fails with it; 0: never */
    int socket_fd;   /* the simulated connection to the echo process; -1: none */
    int write_error; /* write() on it fails with it; 0: never */
    int read_error;
    bool peer_closed; /* read() on it returns 0 */
    size_t echo_pending;
    uint64_t echo_arrives_ns;
    struct calls calls;
};

/* stderr, caught in memory while the code under test runs, so that its
 * messages (and its TODO lines) can be shown in a failure. */
struct caught_stderr {
    int saved_fd;
    int memory_fd;
    char text[4096];
};

/* The simulation; tests set its failures and socket_fd after begin. */
extern struct simulation world;

/* Starts a simulation at MONOTONIC_START_NS, with no failure, no socket and
 * no call counted yet. */
void begin_simulation(void);

/* Ends it: from now on every wrapped call is real again. world.calls keeps
 * what was counted. */
void end_simulation(void);

struct timespec to_timespec(uint64_t ns);

/* ---------------------------------------------------- reading the record */

/* clock_gettime(CLOCK_MONOTONIC) calls. */
int monotonic_reads(const struct calls *calls);

/* Calls of any clock or time function. */
int all_time_calls(const struct calls *calls);

/* Why the clock or time function the code used, other than CLOCK_MONOTONIC,
 * is wrong for a duration, as a sentence; NULL if it used only
 * CLOCK_MONOTONIC. Valid until the next call. */
const char *wrong_clock(const struct calls *calls);

/* stderr goes to memory until stop_catching_stderr(), which fills text. */
void start_catching_stderr(struct caught_stderr *caught);
void stop_catching_stderr(struct caught_stderr *caught);

/* " It said on stderr:\n  ..." (TODO lines aside) or " It printed nothing
 * on stderr.", for a message. Valid until the next call. */
const char *what_it_said(const struct caught_stderr *caught);

/* 1234567890123457 -> "1 234 567 890 123 457". Valid until the next call
 * with the same slot (0..3). */
const char *grouped(uint64_t value, int slot);

#endif
