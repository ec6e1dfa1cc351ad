#include "roundtrip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "addloop.h"
#include "exercise.h"
#include "stats.h"

enum {
    WARM_UP_ROUND_TRIPS = 200, /* untimed: caches, the scheduler and the CPU's clock settle */
    ACCEPT_TIMEOUT_MS = 5000,
    ECHO_TIMEOUT_S = 2, /* a byte that has not come back by then never will */
};

bool time_one_round_trip(int socket_fd, uint64_t *elapsed_ns)
{
    /* TODO: write time_one_round_trip(). NOTES.md section 4.6 "A real wait: the round trip" explains it. */
    exercise_unwritten("time_one_round_trip", "4.6", "A real wait: the round trip");
    (void)socket_fd;
    (void)elapsed_ns;
    return false;
}

static void report_error(const char *what)
{
    fprintf(stderr, "round trip: %s: %s\n", what, strerror(errno));
}

static int open_loopback_listener(uint16_t *port)
{
    struct sockaddr_in address = {
        .sin_family = AF_INET,
        .sin_port = 0, /* the kernel picks a free port */
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    socklen_t length = sizeof address;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        report_error("socket");
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0 || listen(fd, 1) != 0 ||
        getsockname(fd, (struct sockaddr *)&address, &length) != 0) {
        report_error("bind, listen or getsockname on 127.0.0.1");
        close(fd);
        return -1;
    }
    *port = ntohs(address.sin_port);
    return fd;
}

static int connect_to_loopback(uint16_t port)
{
    struct sockaddr_in address = {
        .sin_family = AF_INET,
        .sin_port = htons(port),
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        report_error("socket");
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        report_error("connect to 127.0.0.1");
        close(fd);
        return -1;
    }
    return fd;
}

/* Without TCP_NODELAY, Nagle's algorithm may hold a small write back to merge
 * it with the next one: we would time that hold, not the network path. */
static bool send_small_writes_at_once(int fd)
{
    int on = 1;

    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) != 0) {
        report_error("setsockopt TCP_NODELAY");
        return false;
    }
    return true;
}

/* So that a read which waits for a byte nobody will send fails instead of
 * hanging the program. */
static bool give_up_reads_after(int fd, int seconds)
{
    struct timeval timeout = {.tv_sec = seconds, .tv_usec = 0};

    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) != 0) {
        report_error("setsockopt SO_RCVTIMEO");
        return false;
    }
    return true;
}

static bool pin_to_cpu(int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        report_error("sched_setaffinity");
        return false;
    }
    return true;
}

/* The first two CPUs this process may run on: the echo process takes the
 * first, the timing process the second (the first again when there is only
 * one, or when same_cpu asks for it). */
static bool choose_cpus(const cpu_set_t *allowed, bool same_cpu, int *echo_cpu, int *timer_cpu)
{
    *echo_cpu = -1;
    *timer_cpu = -1;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, allowed))
            continue;
        if (*echo_cpu < 0) {
            *echo_cpu = cpu;
        } else {
            *timer_cpu = cpu;
            break;
        }
    }
    if (*echo_cpu < 0)
        return false;
    if (*timer_cpu < 0 || same_cpu)
        *timer_cpu = *echo_cpu;
    return true;
}

/* The child: sends back every byte it receives, until the parent closes. */
static void run_echo_process(uint16_t port, int cpu)
{
    char bytes[64];
    ssize_t received;

    if (!pin_to_cpu(cpu))
        _exit(1);
    int fd = connect_to_loopback(port);
    if (fd < 0 || !send_small_writes_at_once(fd))
        _exit(1);
    while ((received = read(fd, bytes, sizeof bytes)) > 0) {
        if (write(fd, bytes, (size_t)received) != received) {
            report_error("echo write");
            _exit(1);
        }
    }
    if (received < 0)
        report_error("echo read");
    _exit(received < 0 ? 1 : 0);
}

static int accept_echo_process(int listener_fd)
{
    struct pollfd waiting = {.fd = listener_fd, .events = POLLIN};
    int ready = poll(&waiting, 1, ACCEPT_TIMEOUT_MS);

    if (ready < 0) {
        report_error("poll");
        return -1;
    }
    if (ready == 0) {
        fprintf(stderr, "round trip: the echo process did not connect within %d ms\n",
                ACCEPT_TIMEOUT_MS);
        return -1;
    }
    int fd = accept4(listener_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        report_error("accept");
    return fd;
}

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
    int fd = accept_echo_process(listener_fd);
    if (fd < 0)
        return false;
    bool measured = send_small_writes_at_once(fd) && give_up_reads_after(fd, ECHO_TIMEOUT_S) &&
                    pin_to_cpu(timer_cpu) && time_round_trips(fd, timings, samples);
    close(fd); /* the echo process reads end-of-file and exits */
    return measured;
}

static bool reap(pid_t pid)
{
    int status;

    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            report_error("waitpid");
            return false;
        }
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* In a child: if the parent is killed (a test's timeout, Ctrl-C), the child
 * goes too, instead of running on alone. */
static void die_with_parent(void)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        fprintf(stderr, "prctl(PR_SET_PDEATHSIG): %s\n", strerror(errno));
}

/* Forks the echo process; it connects to the listener on its own. */
static pid_t start_echo_process(int listener_fd, uint16_t port, int cpu)
{
    fflush(NULL); /* the child must not print what the parent had buffered */
    pid_t pid = fork();
    if (pid < 0) {
        report_error("fork");
    } else if (pid == 0) {
        close(listener_fd);
        die_with_parent();
        run_echo_process(port, cpu);
    }
    return pid;
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

bool measure_round_trips(unsigned samples, bool same_cpu, struct round_trip_figures *figures)
{
    cpu_set_t original;
    uint16_t port;

    *figures = (struct round_trip_figures){.echo_cpu = -1, .timer_cpu = -1};
    if (sched_getaffinity(0, sizeof original, &original) != 0) {
        report_error("sched_getaffinity");
        return false;
    }
    if (!choose_cpus(&original, same_cpu, &figures->echo_cpu, &figures->timer_cpu))
        return false;
    uint64_t *timings = calloc(samples, sizeof timings[0]);
    if (timings == NULL)
        report_error("calloc for the timings");
    int listener_fd = timings ? open_loopback_listener(&port) : -1;
    pid_t pid = listener_fd >= 0 ? start_echo_process(listener_fd, port, figures->echo_cpu) : -1;
    if (pid > 0) {
        bool measured = time_against_echo(listener_fd, figures->timer_cpu, timings, samples);
        if (!measured)
            kill(pid, SIGKILL); /* it may still be waiting to connect */
        if (reap(pid) && measured)
            summarise_round_trips(timings, samples, figures);
        if (sched_setaffinity(0, sizeof original, &original) != 0)
            report_error("sched_setaffinity (restoring)");
    }
    if (listener_fd >= 0)
        close(listener_fd);
    free(timings);
    return figures->measured;
}
