#include "figures.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "addloop.h"
#include "cycle.h"
#include "stats.h"

enum { SIBLING_TIMEOUT_MS = 120000 };

/* gcc defines __OPTIMIZE__ at -O1 and above: the one thing that differs
 * between the two builds of this same source. */
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

static void copy_text(char *destination, size_t size, const char *source)
{
    snprintf(destination, size, "%s", source);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash ? slash + 1 : path;
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
    copy_text(figures->program, sizeof figures->program, base_name(program_path));
    copy_text(figures->compiler, sizeof figures->compiler, compiler_version());
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
 * that a newer program can add some. */
static void store_machine_value(const char *key, const char *value, struct build_figures *figures)
{
    if (strcmp(key, "program") == 0)
        copy_text(figures->program, sizeof figures->program, value);
    else if (strcmp(key, "optimised") == 0)
        figures->optimised = strcmp(value, "yes") == 0;
    else if (strcmp(key, "compiler") == 0)
        copy_text(figures->compiler, sizeof figures->compiler, value);
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
        copy_text(copy, length + 1 < sizeof copy ? length + 1 : sizeof copy, line);
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

static void format_unsigned(char *text, size_t size, uint64_t value)
{
    snprintf(text, size, "%" PRIu64, value);
}

/* Reads everything the child writes on fd until it closes it, or until the
 * deadline. Returns a malloc'd string, or NULL on timeout or error. */
static char *read_until_closed(int fd, int timeout_ms)
{
    size_t used = 0, capacity = 4096;
    char *text = malloc(capacity);
    struct pollfd readable = {.fd = fd, .events = POLLIN};

    while (text != NULL) {
        int ready = poll(&readable, 1, timeout_ms);
        if (ready <= 0)
            break; /* timeout, or an error poll reports in errno */
        if (used + 1024 > capacity) {
            char *larger = realloc(text, capacity * 2);
            if (larger == NULL)
                break;
            text = larger;
            capacity *= 2;
        }
        ssize_t got = read(fd, text + used, capacity - used - 1);
        if (got == 0) {
            text[used] = '\0';
            return text;
        }
        if (got < 0 && errno != EINTR)
            break;
        used += got > 0 ? (size_t)got : 0;
    }
    free(text);
    return NULL;
}

/* In a child: if the parent is killed (a test's timeout, Ctrl-C), the child
 * goes too, instead of running on alone. */
static void die_with_parent(void)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        fprintf(stderr, "prctl(PR_SET_PDEATHSIG): %s\n", strerror(errno));
}

/* Starts argv with its stdout on a pipe (stderr shared with ours, so its
 * TODO lines reach the user). Returns the read end, or -1. */
static int start_with_piped_stdout(char *const argv[], pid_t *pid)
{
    int pipe_fds[2];

    if (pipe(pipe_fds) != 0) {
        fprintf(stderr, "pipe: %s\n", strerror(errno));
        return -1;
    }
    fflush(NULL);
    *pid = fork();
    if (*pid < 0) {
        fprintf(stderr, "fork: %s\n", strerror(errno));
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        return -1;
    }
    if (*pid == 0) {
        die_with_parent();
        dup2(pipe_fds[1], STDOUT_FILENO);
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        execv(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(pipe_fds[1]);
    return pipe_fds[0];
}

static int wait_for_exit_status(pid_t pid)
{
    int status;

    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool figures_of_program(const char *path, const struct measurement_plan *plan,
                        struct build_figures *figures, char *why, size_t why_size)
{
    char n[32], runs[32];
    pid_t pid;

    format_unsigned(n, sizeof n, plan->additions);
    format_unsigned(runs, sizeof runs, plan->runs);
    char *argv[] = {(char *)path, "--machine", "--n", n, "--runs", runs, "--no-round-trip", NULL};
    int fd = start_with_piped_stdout(argv, &pid);
    if (fd < 0) {
        snprintf(why, why_size, "could not start %s", path);
        return false;
    }
    char *output = read_until_closed(fd, SIBLING_TIMEOUT_MS);
    close(fd);
    if (output == NULL)
        kill(pid, SIGKILL); /* it hangs; the reason is on stderr, if anywhere */
    int status = wait_for_exit_status(pid);
    bool parsed = output != NULL && status == 0 && parse_machine_figures(output, figures);
    if (!parsed)
        snprintf(why, why_size, "%s %s (exit status %d)", path,
                 output == NULL ? "did not finish" : "gave no figures", status);
    free(output);
    return parsed;
}
