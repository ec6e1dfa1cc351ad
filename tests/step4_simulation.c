#include "step4_simulation.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

struct simulation world = {.socket_fd = -1};

void begin_simulation(void)
{
    world = (struct simulation){
        .active = true,
        .now_ns = MONOTONIC_START_NS,
        .cpu_ns = CPU_START_NS,
        .socket_fd = -1,
    };
}

void end_simulation(void)
{
    world.active = false;
}

/* Time passes in the simulation: on the monotonic clock, and on the CPU
 * clock only when the process works (not while it sleeps in a read). */
static void spend(uint64_t wall_ns, uint64_t cpu_ns)
{
    world.now_ns += wall_ns;
    world.cpu_ns += cpu_ns;
}

static uint64_t round_down(uint64_t value, uint64_t step)
{
    return value - value % step;
}

/* The reading of a clock now; false for a clock id Linux does not have. */
static bool clock_reading(clockid_t id, uint64_t *ns)
{
    uint64_t realtime = world.now_ns + REALTIME_OFFSET_NS;

    switch (id) {
    case CLOCK_MONOTONIC: *ns = world.now_ns; return true;
    case CLOCK_MONOTONIC_RAW: *ns = world.now_ns - RAW_BEHIND_NS; return true;
    case CLOCK_MONOTONIC_COARSE: *ns = round_down(world.now_ns, COARSE_TICK_NS); return true;
    case CLOCK_BOOTTIME: *ns = world.now_ns + BOOTTIME_OFFSET_NS; return true;
    case CLOCK_REALTIME: *ns = realtime; return true;
    case CLOCK_REALTIME_COARSE: *ns = round_down(realtime, COARSE_TICK_NS); return true;
    case CLOCK_TAI: *ns = realtime + TAI_AHEAD_NS; return true;
    case CLOCK_PROCESS_CPUTIME_ID: *ns = world.cpu_ns; return true;
    case CLOCK_THREAD_CPUTIME_ID: *ns = world.cpu_ns - THREAD_CPU_BEHIND_NS; return true;
    default: return false;
    }
}

struct timespec to_timespec(uint64_t ns)
{
    return (struct timespec){.tv_sec = (time_t)(ns / 1000000000u),
                             .tv_nsec = (long)(ns % 1000000000u)};
}

int __real_clock_gettime(clockid_t id, struct timespec *now);
int __wrap_clock_gettime(clockid_t id, struct timespec *now);
clock_t __real_clock(void);
clock_t __wrap_clock(void);
int __real_gettimeofday(struct timeval *now, void *zone);
int __wrap_gettimeofday(struct timeval *now, void *zone);
time_t __real_time(time_t *now);
time_t __wrap_time(time_t *now);
int __real_timespec_get(struct timespec *now, int base);
int __wrap_timespec_get(struct timespec *now, int base);
ssize_t __real_write(int fd, const void *bytes, size_t count);
ssize_t __wrap_write(int fd, const void *bytes, size_t count);
ssize_t __real_send(int fd, const void *bytes, size_t count, int flags);
ssize_t __wrap_send(int fd, const void *bytes, size_t count, int flags);
ssize_t __real_sendto(int fd, const void *bytes, size_t count, int flags,
                      const struct sockaddr *to, socklen_t to_length);
ssize_t __wrap_sendto(int fd, const void *bytes, size_t count, int flags,
                      const struct sockaddr *to, socklen_t to_length);
ssize_t __real_read(int fd, void *bytes, size_t count);
ssize_t __wrap_read(int fd, void *bytes, size_t count);
ssize_t __real_recv(int fd, void *bytes, size_t count, int flags);
ssize_t __wrap_recv(int fd, void *bytes, size_t count, int flags);
ssize_t __real_recvfrom(int fd, void *bytes, size_t count, int flags, struct sockaddr *from,
                        socklen_t *from_length);
ssize_t __wrap_recvfrom(int fd, void *bytes, size_t count, int flags, struct sockaddr *from,
                        socklen_t *from_length);

int __wrap_clock_gettime(clockid_t id, struct timespec *now)
{
    uint64_t ns;

    if (!world.active)
        return __real_clock_gettime(id, now);
    world.calls.clock_gettime[id >= 0 && id < CLOCK_IDS - 1 ? id : CLOCK_IDS - 1]++;
    if (world.clock_error != 0 || !clock_reading(id, &ns)) {
        errno = world.clock_error != 0 ? world.clock_error : EINVAL;
        return -1; /* and *now untouched, as the kernel leaves it */
    }
    *now = to_timespec(ns);
    spend(CLOCK_READ_NS, CLOCK_READ_NS);
    return 0;
}

clock_t __wrap_clock(void)
{
    if (!world.active)
        return __real_clock();
    world.calls.clock++;
    clock_t ticks = (clock_t)(world.cpu_ns / (1000000000u / CLOCKS_PER_SEC));
    spend(CLOCK_READ_NS, CLOCK_READ_NS);
    return ticks;
}

int __wrap_gettimeofday(struct timeval *now, void *zone)
{
    if (!world.active)
        return __real_gettimeofday(now, zone);
    world.calls.gettimeofday++;
    uint64_t realtime = world.now_ns + REALTIME_OFFSET_NS;
    *now = (struct timeval){.tv_sec = (time_t)(realtime / 1000000000u),
                            .tv_usec = (suseconds_t)(realtime % 1000000000u / 1000u)};
    spend(CLOCK_READ_NS, CLOCK_READ_NS);
    return 0;
}

time_t __wrap_time(time_t *now)
{
    if (!world.active)
        return __real_time(now);
    world.calls.time++;
    time_t seconds = (time_t)((world.now_ns + REALTIME_OFFSET_NS) / 1000000000u);
    if (now != NULL)
        *now = seconds;
    spend(CLOCK_READ_NS, CLOCK_READ_NS);
    return seconds;
}

int __wrap_timespec_get(struct timespec *now, int base)
{
    if (!world.active)
        return __real_timespec_get(now, base);
    world.calls.timespec_get++;
    *now = to_timespec(world.now_ns + REALTIME_OFFSET_NS);
    spend(CLOCK_READ_NS, CLOCK_READ_NS);
    return base;
}

static bool simulated_socket(int fd)
{
    return world.active && world.socket_fd >= 0 && fd == world.socket_fd;
}

/* The byte leaves: the write costs its time, and the echo will arrive
 * ECHO_DELAY_NS after it. */
static ssize_t simulated_write(size_t count)
{
    world.calls.writes++;
    if (world.write_error != 0) {
        spend(WRITE_NS, WRITE_NS);
        errno = world.write_error;
        return -1;
    }
    spend(WRITE_NS, WRITE_NS);
    world.calls.bytes_written += count;
    if (count > world.calls.largest_write)
        world.calls.largest_write = count;
    world.echo_pending += count;
    world.echo_arrives_ns = world.now_ns + ECHO_DELAY_NS;
    return (ssize_t)count;
}

/* The echo comes back: a blocking read sleeps until it arrives (the CPU
 * clock stands still meanwhile), then takes WAKE_UP_NS to return. */
static ssize_t simulated_read(void *bytes, size_t count, bool dont_wait)
{
    world.calls.reads++;
    if (world.read_error != 0 || world.echo_pending == 0) {
        spend(world.read_error != 0 ? WAKE_UP_NS : NOT_ECHOED_NS, WAKE_UP_NS);
        errno = world.read_error != 0 ? world.read_error : EAGAIN;
        return -1;
    }
    if (world.peer_closed) {
        spend(ECHO_DELAY_NS, WAKE_UP_NS);
        return 0;
    }
    if (dont_wait && world.now_ns < world.echo_arrives_ns) {
        spend(POLL_STEP_NS, POLL_STEP_NS);
        errno = EAGAIN;
        return -1;
    }
    if (world.now_ns < world.echo_arrives_ns)
        world.now_ns = world.echo_arrives_ns;
    spend(WAKE_UP_NS, WAKE_UP_NS);
    size_t given = count < world.echo_pending ? count : world.echo_pending;
    memset(bytes, '!', given); /* an overrun of your buffer shows in AddressSanitizer */
    world.echo_pending -= given;
    world.calls.bytes_read += given;
    return (ssize_t)given;
}

ssize_t __wrap_write(int fd, const void *bytes, size_t count)
{
    return simulated_socket(fd) ? simulated_write(count) : __real_write(fd, bytes, count);
}

ssize_t __wrap_send(int fd, const void *bytes, size_t count, int flags)
{
    return simulated_socket(fd) ? simulated_write(count) : __real_send(fd, bytes, count, flags);
}

ssize_t __wrap_sendto(int fd, const void *bytes, size_t count, int flags,
                      const struct sockaddr *to, socklen_t to_length)
{
    if (simulated_socket(fd))
        return simulated_write(count);
    return __real_sendto(fd, bytes, count, flags, to, to_length);
}

ssize_t __wrap_read(int fd, void *bytes, size_t count)
{
    return simulated_socket(fd) ? simulated_read(bytes, count, false)
                                : __real_read(fd, bytes, count);
}

ssize_t __wrap_recv(int fd, void *bytes, size_t count, int flags)
{
    if (simulated_socket(fd))
        return simulated_read(bytes, count, (flags & MSG_DONTWAIT) != 0);
    return __real_recv(fd, bytes, count, flags);
}

ssize_t __wrap_recvfrom(int fd, void *bytes, size_t count, int flags, struct sockaddr *from,
                        socklen_t *from_length)
{
    if (simulated_socket(fd))
        return simulated_read(bytes, count, (flags & MSG_DONTWAIT) != 0);
    return __real_recvfrom(fd, bytes, count, flags, from, from_length);
}

/* ------------------------------------------------- what the code said */

void start_catching_stderr(struct caught_stderr *caught)
{
    fflush(stderr);
    caught->text[0] = '\0';
    caught->memory_fd = memfd_create("stderr", MFD_CLOEXEC);
    caught->saved_fd = dup(STDERR_FILENO);
    cr_assert(caught->memory_fd >= 0 && caught->saved_fd >= 0,
              "harness: memfd_create or dup: %s", strerror(errno));
    dup2(caught->memory_fd, STDERR_FILENO);
}

void stop_catching_stderr(struct caught_stderr *caught)
{
    fflush(stderr);
    dup2(caught->saved_fd, STDERR_FILENO);
    close(caught->saved_fd);
    ssize_t length = pread(caught->memory_fd, caught->text, sizeof caught->text - 1, 0);
    caught->text[length > 0 ? length : 0] = '\0';
    close(caught->memory_fd);
}

/* " It said on stderr:\n  ..." or "", for a message. Valid until the next call. */
const char *what_it_said(const struct caught_stderr *caught)
{
    static char paragraph[4200];
    size_t used = 0;

    paragraph[0] = '\0';
    for (const char *line = caught->text; *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t length = end ? (size_t)(end - line) : strlen(line);
        if (strncmp(line, "TODO:", 5) != 0 && length > 0 && used + length + 8 < sizeof paragraph)
            used += (size_t)snprintf(paragraph + used, sizeof paragraph - used, "\n  %.*s",
                                     (int)length, line);
        line = end ? end + 1 : line + length;
    }
    if (used == 0)
        return " It printed nothing on stderr.";
    static char result[4300];
    snprintf(result, sizeof result, " It said on stderr:%s", paragraph);
    return result;
}

/* 1234567890123457 -> "1 234 567 890 123 457". Valid until the next call
 * with the same slot (0..3). */
const char *grouped(uint64_t value, int slot)
{
    static char texts[4][40];
    char digits[24];
    char *text = texts[slot & 3];
    int length = snprintf(digits, sizeof digits, "%" PRIu64, value);
    size_t used = 0;

    for (int i = 0; i < length; i++) {
        if (i > 0 && (length - i) % 3 == 0)
            text[used++] = ' ';
        text[used++] = digits[i];
    }
    text[used] = '\0';
    return text;
}

/* ---------------------------------------------------- which clock calls */

int monotonic_reads(const struct calls *calls)
{
    return calls->clock_gettime[CLOCK_MONOTONIC];
}

int all_time_calls(const struct calls *calls)
{
    int count = calls->clock + calls->gettimeofday + calls->time + calls->timespec_get;

    for (int id = 0; id < CLOCK_IDS; id++)
        count += calls->clock_gettime[id];
    return count;
}

/* Why a clock other than CLOCK_MONOTONIC is wrong for a duration; NULL if
 * the code read only CLOCK_MONOTONIC. Valid until the next call. */
const char *wrong_clock(const struct calls *calls)
{
    static char why[600];

    if (calls->clock > 0)
        return "It called clock(), which counts the CPU time the process has used, in "
               "microseconds: it stands still while the process sleeps (in a read, waiting for "
               "an echo), and it cannot show a nanosecond.";
    if (calls->gettimeofday > 0)
        return "It called gettimeofday(): the wall clock, which jumps when the date is set, in "
               "whole microseconds.";
    if (calls->time > 0)
        return "It called time(): the wall clock in whole seconds.";
    if (calls->timespec_get > 0)
        return "It called timespec_get(): C11's TIME_UTC is the wall clock, which jumps when "
               "the date is set.";
    const struct {
        clockid_t id;
        const char *why;
    } clocks[] = {
        {CLOCK_REALTIME, "CLOCK_REALTIME, the wall clock: it jumps, even backwards, when the "
                         "date is set, and a duration measured across a jump is wrong"},
        {CLOCK_REALTIME_COARSE, "CLOCK_REALTIME_COARSE, the wall clock in steps of a few "
                                "milliseconds"},
        {CLOCK_TAI, "CLOCK_TAI, the wall clock in atomic time"},
        {CLOCK_PROCESS_CPUTIME_ID, "CLOCK_PROCESS_CPUTIME_ID, the CPU time the process used: "
                                   "it stands still while the process sleeps in a read, "
                                   "waiting for an echo"},
        {CLOCK_THREAD_CPUTIME_ID, "CLOCK_THREAD_CPUTIME_ID, the CPU time the thread used: it "
                                  "stands still while the thread sleeps in a read"},
        {CLOCK_MONOTONIC_COARSE, "CLOCK_MONOTONIC_COARSE, which moves in steps of a few "
                                 "milliseconds: a million additions would often take 0 ns"},
        {CLOCK_MONOTONIC_RAW, "CLOCK_MONOTONIC_RAW, the hardware's count without NTP's "
                              "correction of its rate"},
        {CLOCK_BOOTTIME, "CLOCK_BOOTTIME, which also counts the time the machine was "
                         "suspended"},
    };
    for (size_t i = 0; i < sizeof clocks / sizeof clocks[0]; i++)
        if (calls->clock_gettime[clocks[i].id] > 0) {
            snprintf(why, sizeof why, "It read %s. Use CLOCK_MONOTONIC, the article's "
                     "Instant, which the tests compare with.", clocks[i].why);
            return why;
        }
    if (calls->clock_gettime[CLOCK_IDS - 1] > 0)
        return "It asked clock_gettime() for a clock Linux does not have (EINVAL).";
    return NULL;
}
