#include "other_build.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "children.h"
#include "machine.h"

enum { OTHER_BUILD_TIMEOUT_MS = 120000 };

void this_program_path(const char *argv0, char *path, size_t size)
{
    ssize_t length = readlink("/proc/self/exe", path, size - 1);

    if (length < 0) {
        snprintf(path, size, "%s", argv0);
        return;
    }
    path[length] = '\0';
}

/* The other build's path: the same, _O0 and _O2 swapped at the end. */
static bool other_build_path(const char *own, char *path, size_t size, char *why, size_t why_size)
{
    size_t length = strlen(own);

    if (length < 3 || length >= size ||
        (strcmp(own + length - 3, "_O0") != 0 && strcmp(own + length - 3, "_O2") != 0)) {
        snprintf(why, why_size, "%s does not end in _O0 or _O2, so its sibling is unknown", own);
        return false;
    }
    snprintf(path, size, "%.*s%s", (int)(length - 3), own,
             strcmp(own + length - 3, "_O0") == 0 ? "_O2" : "_O0");
    if (access(path, X_OK) != 0) {
        snprintf(why, why_size, "%s: %s (build both with meson)", path, strerror(errno));
        return false;
    }
    return true;
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

static bool figures_of_program(const char *path, const struct measurement_plan *plan,
                               struct build_figures *figures, char *why, size_t why_size)
{
    char n[32], runs[32];
    pid_t pid;

    snprintf(n, sizeof n, "%" PRIu64, plan->additions);
    snprintf(runs, sizeof runs, "%u", plan->runs);
    char *argv[] = {(char *)path, "--machine", "--n", n, "--runs", runs, "--no-round-trip", NULL};
    int fd = start_with_piped_stdout(argv, &pid);
    if (fd < 0) {
        snprintf(why, why_size, "could not start %s", path);
        return false;
    }
    char *output = read_until_closed(fd, OTHER_BUILD_TIMEOUT_MS);
    close(fd);
    if (output == NULL)
        kill(pid, SIGKILL); /* it hangs; the reason is on stderr, if anywhere */
    int status = wait_for_child(pid);
    bool parsed = output != NULL && status == 0 && parse_machine_figures(output, figures);
    if (!parsed)
        snprintf(why, why_size, "%s %s (exit status %d)", path,
                 output == NULL ? "did not finish" : "gave no figures", status);
    free(output);
    return parsed;
}

bool figures_of_other_build(const char *own_path, const struct measurement_plan *plan,
                            struct build_figures *figures, char *why, size_t why_size)
{
    char other[PATH_MAX];

    return other_build_path(own_path, other, sizeof other, why, why_size) &&
           figures_of_program(other, plan, figures, why, why_size);
}
