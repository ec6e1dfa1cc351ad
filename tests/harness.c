#include "harness.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---------------------------------------------------------------- basics */

int64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

void pause_ms(int ms)
{
    struct timespec pause = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
    }
}

static char *read_whole_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    char *text = NULL;
    size_t length = 0, capacity = 0;
    char chunk[4096];
    size_t got;

    if (file != NULL) {
        while ((got = fread(chunk, 1, sizeof chunk, file)) > 0) {
            if (length + got + 1 > capacity) {
                capacity = (length + got + 1) * 2;
                text = realloc(text, capacity);
            }
            memcpy(text + length, chunk, got);
            length += got;
        }
        fclose(file);
    }
    if (text == NULL)
        text = calloc(1, 1);
    else
        text[length] = '\0';
    return text;
}

/* ------------------------------------------------------- failing well */

static const char *workbook_root(void)
{
    const char *root = getenv("WORKBOOK_ROOT");
    return root != NULL && root[0] != '\0' ? root : WORKBOOK_ROOT_DEFAULT;
}

const char *short_path(const char *path)
{
    const char *root = workbook_root();
    size_t length = strlen(root);

    if (length > 0 && strncmp(path, root, length) == 0 && path[length] == '/')
        return path + length + 1;
    return path;
}

static const char *default_path(const char *env_name)
{
    for (const struct program_default *entry = program_defaults; entry->env_name != NULL; entry++)
        if (strcmp(entry->env_name, env_name) == 0)
            return entry->path;
    return NULL;
}

const char *program_path(const char *env_name)
{
    const char *value = getenv(env_name);

    if (value != NULL && value[0] != '\0')
        return value;
    value = default_path(env_name);
    if (value == NULL)
        cr_assert_fail("harness: no program is named %s: set it in the environment.", env_name);
    return value;
}

/* The variables of program_defaults set to something else than their
 * default (a wrong solution, the reference): part of the command. */
static size_t describe_overrides(char *out, size_t size)
{
    size_t used = 0;

    out[0] = '\0';
    for (const struct program_default *entry = program_defaults; entry->env_name != NULL; entry++) {
        const char *value = getenv(entry->env_name);
        if (value != NULL && value[0] != '\0' && strcmp(value, entry->path) != 0 && used < size)
            used += (size_t)snprintf(out + used, size - used, "%s=%s ", entry->env_name,
                                     short_path(value));
    }
    return used;
}

const char *run_alone_command(void)
{
    static char command[2048];
    char overrides[1024];
    char exe[512];
    ssize_t length = readlink("/proc/self/exe", exe, sizeof exe - 1);

    exe[length > 0 ? length : 0] = '\0';
    describe_overrides(overrides, sizeof overrides);
    if (criterion_current_test == NULL || criterion_current_suite == NULL)
        return "";
    snprintf(command, sizeof command, "\nRun this test alone, from the workbook's folder:\n  %s%s "
             "--filter='%s/%s'", overrides, short_path(exe), criterion_current_suite->name,
             criterion_current_test->name);
    return command;
}

const char *test_message(const char *format, ...)
{
    static char message[16384];
    va_list args;
    int used;

    va_start(args, format);
    used = vsnprintf(message, sizeof message, format, args);
    va_end(args);
    if (used >= 0 && (size_t)used < sizeof message)
        snprintf(message + used, sizeof message - (size_t)used, "%s", run_alone_command());
    return message;
}

/* Children inherit this: the step 3 tests open a thousand connections. */
static void raise_open_file_limit(void)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

/* ------------------------------------------------------------- programs */

static bool make_temp_file(char *path, size_t size, const char *tag)
{
    snprintf(path, size, "/tmp/workbook-%s-XXXXXX", tag);
    int fd = mkstemp(path);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

/* The environment of a child: ours, with the sanitizers set to report a
 * leak at exit (exit status 23) and to stop at the first error. Built
 * before fork(): after it, only async-signal-safe calls are allowed. */
enum { MAX_ENVIRONMENT = 256 };
static char *const *child_environment(void)
{
    static char *entries[MAX_ENVIRONMENT + 3];
    static char asan[] = "ASAN_OPTIONS=detect_leaks=1:exitcode=23:abort_on_error=0";
    static char ubsan[] = "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1";
    int count = 0;

    for (char **entry = environ; *entry != NULL && count < MAX_ENVIRONMENT; entry++)
        if (strncmp(*entry, "ASAN_OPTIONS=", 13) != 0 && strncmp(*entry, "UBSAN_OPTIONS=", 14) != 0)
            entries[count++] = *entry;
    entries[count++] = asan;
    entries[count++] = ubsan;
    entries[count] = NULL;
    return entries;
}

/* In the child: stdin from /dev/null, stdout and stderr to files, the
 * descriptor limit asked for, and death with the parent, so that no test
 * ever leaves a server behind. */
static void become_child(const char *out_path, const char *err_path, int open_files)
{
    int in = open("/dev/null", O_RDONLY);
    int out = open(out_path, O_WRONLY | O_TRUNC);
    int err = open(err_path, O_WRONLY | O_TRUNC);

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
        _exit(126);
    /* Nothing else of the test runner's (its pipes keep it waiting). */
    close_range(3, ~0U, 0);
    if (open_files > 0) {
        struct rlimit limit = {.rlim_cur = (rlim_t)open_files, .rlim_max = (rlim_t)open_files};
        if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
            _exit(125);
    }
}

static pid_t spawn(const char *const argv[], const char *out_path, const char *err_path,
                   int open_files)
{
    char *const *environment = child_environment();
    pid_t pid;

    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        become_child(out_path, err_path, open_files);
        execve(argv[0], (char *const *)argv, environment);
        dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

/* Waits up to timeout_ms for pid. Returns true and its raw status if it exited. */
static bool reap_within(pid_t pid, int timeout_ms, int *raw_status)
{
    int64_t deadline = now_ms() + timeout_ms;

    for (;;) {
        pid_t done = waitpid(pid, raw_status, WNOHANG);
        if (done == pid)
            return true;
        if (done < 0 && errno != EINTR)
            return false;
        if (now_ms() >= deadline)
            return false;
        pause_ms(5);
    }
}

bool run_program(const char *const argv[], int timeout_ms, struct program_run *run)
{
    char out_path[64], err_path[64];
    int64_t started = now_ms();
    int raw_status = 0;

    memset(run, 0, sizeof *run);
    if (!make_temp_file(out_path, sizeof out_path, "out") ||
        !make_temp_file(err_path, sizeof err_path, "err"))
        return false;
    pid_t pid = spawn(argv, out_path, err_path, 0);
    if (pid < 0)
        return false;
    if (!reap_within(pid, timeout_ms, &raw_status)) {
        run->timed_out = true;
        kill(pid, SIGKILL);
        waitpid(pid, &raw_status, 0);
    }
    run->seconds = (double)(now_ms() - started) / 1000.0;
    run->exit_code = WIFEXITED(raw_status) ? WEXITSTATUS(raw_status) : -1;
    run->term_signal = WIFSIGNALED(raw_status) ? WTERMSIG(raw_status) : 0;
    run->out = read_whole_file(out_path);
    run->err = read_whole_file(err_path);
    unlink(out_path);
    unlink(err_path);
    return true;
}

void program_run_free(struct program_run *run)
{
    free(run->out);
    free(run->err);
    run->out = run->err = NULL;
}

const char *todo_lines(const char *stderr_text)
{
    static char paragraph[2048];
    size_t used = 0;
    const char *line = stderr_text;

    paragraph[0] = '\0';
    while (line != NULL && *line != '\0') {
        const char *end = strchr(line, '\n');
        size_t length = end ? (size_t)(end - line) : strlen(line);
        if (strncmp(line, "TODO:", 5) == 0 && used + length + 8 < sizeof paragraph)
            used += (size_t)snprintf(paragraph + used, sizeof paragraph - used, "\n  %.*s",
                                     (int)length, line);
        line = end ? end + 1 : NULL;
    }
    if (used == 0)
        return "";
    static char result[2200];
    snprintf(result, sizeof result, "\nStill to write, as the program said on stderr:%s",
             paragraph);
    return result;
}

/* Whether a line of a sanitizer's report is worth showing: its verdict, a
 * frame of the workbook's own code, or the summary. The line is copied so
 * that plain strstr() can search it. */
static bool worth_showing(const char *line, size_t length)
{
    char text[512];
    size_t kept = length < sizeof text - 1 ? length : sizeof text - 1;
    memcpy(text, line, kept);
    text[kept] = '\0';
    if (strchr(text, '#') == NULL || strstr(text, " in ") == NULL)
        return true;
    return strstr(text, "libsanitizer") == NULL && strstr(text, "libc_start") == NULL &&
           strstr(text, "libc.so") == NULL && strstr(text, " in _start") == NULL;
}

const char *sanitizer_report(const char *stderr_text)
{
    static const char *const starts[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                         "runtime error:", "WARNING: ThreadSanitizer"};
    static char report[3000];
    const char *found = NULL;
    size_t used = 0;

    for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++) {
        const char *at = strstr(stderr_text, starts[i]);
        if (at != NULL && (found == NULL || at < found))
            found = at;
    }
    if (found == NULL)
        return "";
    while (found > stderr_text && found[-1] != '\n')
        found--;
    used = (size_t)snprintf(report, sizeof report, "\nThe sanitizer's report (the first lines; "
                            "the frames are your code, innermost first):");
    int shown = 0;
    for (const char *line = found; *line != '\0' && shown < 14 && used + 200 < sizeof report;) {
        const char *end = strchr(line, '\n');
        size_t length = end ? (size_t)(end - line) : strlen(line);
        if (length > 0 && worth_showing(line, length)) {
            used += (size_t)snprintf(report + used, sizeof report - used, "\n  %.*s",
                                     (int)(length < 180 ? length : 180), line);
            shown++;
        }
        line = end ? end + 1 : line + length;
    }
    return report;
}

/* -------------------------------------------------------------- servers */

/* The harness's own record of every child it started. A test's struct
 * server lives on the test's stack and is gone by .fini time, so clean-up
 * never relies on it. */
enum { MAX_SERVERS = 16 };
static struct owned_child {
    pid_t pid; /* 0: free, or reaped */
    char stdout_path[64];
    char stderr_path[64];
} owned[MAX_SERVERS];

static void remember(const struct server *server)
{
    for (int i = 0; i < MAX_SERVERS; i++)
        if (owned[i].pid == 0 && owned[i].stdout_path[0] == '\0') {
            owned[i].pid = server->pid;
            memcpy(owned[i].stdout_path, server->stdout_path, sizeof owned[i].stdout_path);
            memcpy(owned[i].stderr_path, server->stderr_path, sizeof owned[i].stderr_path);
            return;
        }
    kill(server->pid, SIGKILL);
    fail_test("harness: more than %d servers in one test", MAX_SERVERS);
}

static void reap(struct server *server, int raw_status)
{
    for (int i = 0; i < MAX_SERVERS; i++)
        if (owned[i].pid == server->pid)
            owned[i].pid = 0; /* its files stay until .fini: messages may read them */
    server->term_signal = WIFSIGNALED(raw_status) ? WTERMSIG(raw_status) : 0;
    server->exit_status = WIFEXITED(raw_status) ? WEXITSTATUS(raw_status)
                                                : 128 + server->term_signal;
    server->pid = 0;
}

/* Reads the port from the first stdout line, once it is complete. */
static bool read_listening_line(struct server *server)
{
    char *out = read_whole_file(server->stdout_path);
    char *newline = strchr(out, '\n');
    char *colon;
    bool found = false;

    if (newline != NULL) {
        *newline = '\0';
        colon = strrchr(out, ':');
        if (strncmp(out, "listening on ", 13) == 0 && colon != NULL) {
            server->port = atoi(colon + 1);
            found = server->port > 0;
        }
    }
    free(out);
    return found || newline != NULL;
}

void start_server(struct server *server, const char *role, const char *path,
                  const char *const args[])
{
    start_server_with(server, role, path, args, NULL);
}

void start_server_with(struct server *server, const char *role, const char *path,
                       const char *const args[], const struct start_options *options)
{
    const char *argv[32];
    int count = 0, raw_status;
    size_t used = 0;

    memset(server, 0, sizeof *server);
    server->role = role;
    snprintf(server->path, sizeof server->path, "%s", path);
    argv[count++] = server->path;
    for (int i = 0; args != NULL && args[i] != NULL && count < 28; i++) {
        argv[count++] = args[i];
        used += (size_t)snprintf(server->args + used, sizeof server->args - used, " %s", args[i]);
    }
    argv[count++] = "--port";
    argv[count++] = "0";
    argv[count] = NULL;
    raise_open_file_limit();
    if (!make_temp_file(server->stdout_path, sizeof server->stdout_path, "stdout") ||
        !make_temp_file(server->stderr_path, sizeof server->stderr_path, "stderr"))
        fail_test("harness: cannot create temporary files in /tmp: %s", strerror(errno));
    server->pid = spawn(argv, server->stdout_path, server->stderr_path,
                        options != NULL ? options->open_files : 0);
    if (server->pid < 0)
        fail_test("harness: fork failed: %s", strerror(errno));
    remember(server);

    for (int64_t deadline = now_ms() + 5000; now_ms() < deadline; pause_ms(5)) {
        if (read_listening_line(server) && server->port > 0)
            return;
        if (waitpid(server->pid, &raw_status, WNOHANG) == server->pid) {
            reap(server, raw_status);
            fail_test("%s (%s%s) %s before printing \"listening on HOST:PORT\".%s", role,
                      short_path(path), server->args, describe_exit(server), server_said(server));
        }
    }
    fail_test("%s (%s%s) did not print \"listening on HOST:PORT\" as its first line within 5 s. "
              "Likely cause: stdout is not flushed after that line.%s",
              role, short_path(path), server->args, server_said(server));
}

int wait_for_exit(struct server *server, int timeout_ms)
{
    int raw_status;

    if (server->pid == 0)
        return server->exit_status;
    if (!reap_within(server->pid, timeout_ms, &raw_status))
        return -1;
    reap(server, raw_status);
    return server->exit_status;
}

bool server_running(struct server *server)
{
    return wait_for_exit(server, 0) < 0;
}

int stop_server(struct server *server, int timeout_ms)
{
    int status;

    if (server->pid <= 0)
        return server->exit_status;
    kill(server->pid, SIGTERM);
    status = wait_for_exit(server, timeout_ms);
    if (status < 0) {
        kill(server->pid, SIGKILL);
        wait_for_exit(server, 5000);
    }
    return status;
}

void stop_all_servers(void)
{
    for (int i = 0; i < MAX_SERVERS; i++) {
        if (owned[i].pid > 0) {
            kill(owned[i].pid, SIGKILL);
            waitpid(owned[i].pid, NULL, 0);
            owned[i].pid = 0;
        }
        if (owned[i].stdout_path[0] != '\0') {
            unlink(owned[i].stdout_path);
            unlink(owned[i].stderr_path);
            owned[i].stdout_path[0] = owned[i].stderr_path[0] = '\0';
        }
    }
}

char *server_stderr(const struct server *server)
{
    return read_whole_file(server->stderr_path);
}

/* A number after `key` in /proc/PID/FILE, or -1. */
static long proc_value(const struct server *server, const char *file, const char *key)
{
    char path[64];
    long value = -1;

    if (server->pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/%s", (int)server->pid, file);
    char *text = read_whole_file(path);
    char *line = strstr(text, key);
    if (line != NULL)
        value = atol(line + strlen(key));
    free(text);
    return value;
}

int server_thread_count(const struct server *server)
{
    return (int)proc_value(server, "status", "\nThreads:");
}

long server_rss_kib(const struct server *server)
{
    return proc_value(server, "status", "\nVmRSS:");
}

/* Counts the entries of a /proc directory, calling visit() on each. */
static int each_proc_entry(const char *path, void (*visit)(const char *, int64_t *),
                           int64_t *total)
{
    struct dirent *entry;
    int count = 0;
    DIR *directory = opendir(path);

    if (directory == NULL)
        return -1;
    while ((entry = readdir(directory)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        count++;
        if (visit != NULL)
            visit(entry->d_name, total);
    }
    closedir(directory);
    return count;
}

static pid_t visited_pid;

/* Adds one thread's CPU time: the first number of its schedstat (ns). */
static void add_thread_cpu(const char *tid, int64_t *total)
{
    char path[96];

    snprintf(path, sizeof path, "/proc/%d/task/%s/schedstat", (int)visited_pid, tid);
    char *text = read_whole_file(path);
    *total += atoll(text);
    free(text);
}

/* The sum of visit()'s figure over every thread of the server; -1 if its
 * threads cannot be listed. */
static int64_t sum_over_threads(const struct server *server,
                                void (*visit)(const char *tid, int64_t *total))
{
    char path[64];
    int64_t total = 0;

    if (server->pid <= 0)
        return -1;
    visited_pid = server->pid;
    snprintf(path, sizeof path, "/proc/%d/task", (int)server->pid);
    return each_proc_entry(path, visit, &total) < 0 ? -1 : total;
}

int64_t server_cpu_ns(const struct server *server)
{
    return sum_over_threads(server, add_thread_cpu);
}

int server_open_descriptors(const struct server *server)
{
    char path[64];

    if (server->pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/fd", (int)server->pid);
    return each_proc_entry(path, NULL, NULL);
}

const char *describe_exit(const struct server *server)
{
    static char text[128];
    const char *name = server->term_signal != 0 ? sigabbrev_np(server->term_signal) : NULL;

    if (server->term_signal != 0)
        snprintf(text, sizeof text, "died of SIG%s (signal %d; a shell shows exit status %d)",
                 name != NULL ? name : "?", server->term_signal, server->exit_status);
    else
        snprintf(text, sizeof text, "exited with status %d", server->exit_status);
    return text;
}

/* What a death most often means, with how to see where it happened. */
static const char *likely_cause_of_death(const struct server *server, const char *stderr_text)
{
    static char text[600];

    if (sanitizer_report(stderr_text)[0] != '\0')
        return "\nA sanitizer stopped it: its report below names the kind of error and the "
               "line of your code where it happened.";
    switch (server->term_signal) {
    case SIGSEGV:
    case SIGBUS:
        snprintf(text, sizeof text,
                 "\nLikely cause: a memory error (a NULL, freed or out-of-bounds pointer, or a "
                 "stack overflow). To see where: gdb -ex run --args %s --port 7999, then `bt` "
                 "once it stops.", short_path(server->path));
        return text;
    case SIGABRT:
        return "\nLikely cause: abort(): an assert() that failed, or the C library found a "
               "corrupted heap (a double free, a write past a malloc'd block).";
    case SIGPIPE:
        return "\nLikely cause: it wrote to a connection the client had already closed. "
               "send(..., MSG_NOSIGNAL) makes that an EPIPE error instead of a deadly signal.";
    case SIGKILL:
        return "\nIt was killed with SIGKILL: by the test after a timeout, or by the kernel "
               "for lack of memory.";
    default:
        return "";
    }
}

/* The last `count` lines of text, indented. */
static void last_lines(const char *text, int count, char *out, size_t size)
{
    const char *start = text + strlen(text);
    int seen = 0;
    size_t used = 0;

    while (start > text && seen <= count)
        if (*--start == '\n' && start[1] != '\0')
            seen++;
    if (*start == '\n')
        start++;
    out[0] = '\0';
    for (const char *line = start; *line != '\0' && used + 4 < size;) {
        const char *end = strchr(line, '\n');
        size_t length = end ? (size_t)(end - line) : strlen(line);
        used += (size_t)snprintf(out + used, size - used, "\n  %.*s",
                                 (int)(length < 200 ? length : 200), line);
        line = end ? end + 1 : line + length;
    }
}

const char *server_said(struct server *server)
{
    static char paragraph[6000];
    char lines[2048];
    size_t used = 0;
    char *text = server_stderr(server);
    const char *todos = todo_lines(text);
    const char *report = sanitizer_report(text);

    paragraph[0] = '\0';
    /* A refused connection often means the server is exiting right now. */
    if (server->pid > 0)
        wait_for_exit(server, 100);
    if (!server_running(server))
        used += (size_t)snprintf(paragraph, sizeof paragraph, "\n%c%s is no longer running: it "
                                 "%s.%s", server->role[0] == 'y' ? 'Y' : 'T', server->role + 1,
                                 describe_exit(server), likely_cause_of_death(server, text));
    if (report[0] != '\0' && used < sizeof paragraph)
        used += (size_t)snprintf(paragraph + used, sizeof paragraph - used, "%s", report);
    if (todos[0] != '\0' && used < sizeof paragraph) {
        snprintf(paragraph + used, sizeof paragraph - used, "%s", todos);
    } else if (text[0] != '\0' && report[0] == '\0' && used < sizeof paragraph) {
        last_lines(text, 6, lines, sizeof lines);
        snprintf(paragraph + used, sizeof paragraph - used, "\nThe stderr of %s ended with:%s",
                 server->role, lines);
    }
    free(text);
    return paragraph;
}

const char *replay_command(const struct server *server, const char *request, size_t length)
{
    static char command[3000];
    char escaped[2048];
    size_t used = 0;

    if (length > 400) /* a screenful of escapes helps nobody */
        return "";

    for (size_t i = 0; i < length && used + 8 < sizeof escaped; i++) {
        unsigned char c = (unsigned char)request[i];
        if (c == '\r')
            used += (size_t)snprintf(escaped + used, sizeof escaped - used, "\\r");
        else if (c == '\n')
            used += (size_t)snprintf(escaped + used, sizeof escaped - used, "\\n");
        else if (c == '\'' || c == '\\' || c == '%' || c < 0x20 || c >= 0x7f)
            used += (size_t)snprintf(escaped + used, sizeof escaped - used, "\\%03o", c);
        else
            escaped[used++] = (char)c;
    }
    escaped[used] = '\0';
    snprintf(command, sizeof command,
             "\nTry it by hand, from the workbook's folder:\n"
             "  %s%s --port 7999 &\n"
             "  printf '%s' | nc -N 127.0.0.1 7999; kill %%1",
             short_path(server->path), server->args, escaped);
    return command;
}

/* -------------------------------------------------------------- clients */

static int connect_to(int port, int *error)
{
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;

    if (fd < 0) {
        *error = errno;
        return -1;
    }
    /* Each piece of a split request leaves at once, as its own segment. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        *error = errno;
        close(fd);
        return -1;
    }
    return fd;
}

int connect_silently(struct server *server)
{
    int error = 0;
    int fd = connect_to(server->port, &error);

    if (fd < 0)
        fail_test("Could not connect to %s on port %d: %s.%s", server->role, server->port,
                  strerror(error), server_said(server));
    return fd;
}

static bool send_by_plan(int fd, const char *request, size_t length, const struct send_plan *plan)
{
    size_t piece = plan && plan->piece > 0 ? plan->piece : length;
    size_t next = plan && plan->first_piece > 0 ? plan->first_piece : piece;

    for (size_t sent = 0; sent < length; next = piece) {
        size_t chunk = length - sent < next ? length - sent : next;
        ssize_t written = send(fd, request + sent, chunk, MSG_NOSIGNAL);
        if (written < 0)
            return false;
        sent += (size_t)written;
        if (plan && plan->pause_ms > 0 && sent < length)
            pause_ms(plan->pause_ms);
    }
    return true;
}

static void append(struct exchange *result, const char *data, size_t length, size_t *capacity)
{
    if (result->length + length + 1 > *capacity) {
        *capacity = (result->length + length + 1) * 2;
        result->bytes = realloc(result->bytes, *capacity);
    }
    memcpy(result->bytes + result->length, data, length);
    result->length += length;
    result->bytes[result->length] = '\0';
}

/* Whether a server of this test printed a TODO line: a stub was reached,
 * so waiting longer for an answer would only make the suite slow. */
static bool stub_reached(void)
{
    for (int i = 0; i < MAX_SERVERS; i++) {
        if (owned[i].stderr_path[0] == '\0')
            continue;
        char *text = read_whole_file(owned[i].stderr_path);
        bool found = strstr(text, "TODO: write ") != NULL;
        free(text);
        if (found)
            return true;
    }
    return false;
}

enum { STUB_CHECK_MS = 250 };

static void receive_until_end(int fd, int64_t deadline, struct exchange *result)
{
    char chunk[65536];
    size_t capacity = 0;

    for (;;) {
        int64_t left = deadline - now_ms();
        struct pollfd entry = {.fd = fd, .events = POLLIN};
        if (left <= 0) {
            result->end = END_TIMED_OUT;
            return;
        }
        if (poll(&entry, 1, left < STUB_CHECK_MS ? (int)left : STUB_CHECK_MS) == 0) {
            if (stub_reached()) {
                result->end = END_STUB;
                return;
            }
            continue;
        }
        ssize_t got = recv(fd, chunk, sizeof chunk, 0);
        if (got > 0) {
            append(result, chunk, (size_t)got, &capacity);
        } else if (got == 0) {
            result->end = END_CLOSED;
            return;
        } else if (errno != EINTR) {
            result->error = errno;
            result->end = errno == ECONNRESET ? END_RESET : END_FAILED;
            return;
        }
    }
}

void exchange(int port, const char *request, size_t length, const struct send_plan *plan,
              int timeout_ms, struct exchange *result)
{
    int fd;

    memset(result, 0, sizeof *result);
    result->bytes = calloc(1, 1);
    result->started_ms = now_ms();
    fd = connect_to(port, &result->error);
    if (fd < 0) {
        result->end = result->error == ECONNREFUSED ? END_REFUSED : END_FAILED;
    } else {
        if (!send_by_plan(fd, request, length, plan) && errno != EPIPE && errno != ECONNRESET)
            result->error = errno;
        receive_until_end(fd, result->started_ms + timeout_ms, result);
        close(fd);
    }
    result->finished_ms = now_ms();
}

void exchange_free(struct exchange *result)
{
    free(result->bytes);
    result->bytes = NULL;
}

const char *describe_end(const struct exchange *result)
{
    static char text[160];

    switch (result->end) {
    case END_CLOSED:
        snprintf(text, sizeof text, "the server closed the connection after %zu bytes",
                 result->length);
        break;
    case END_RESET:
        snprintf(text, sizeof text, "the connection was RESET after %zu bytes", result->length);
        break;
    case END_TIMED_OUT:
        snprintf(text, sizeof text, "nothing more came for %lld ms (%zu bytes received)",
                 (long long)(result->finished_ms - result->started_ms), result->length);
        break;
    case END_REFUSED:
        snprintf(text, sizeof text, "the connection was refused (no program listens on that "
                 "port)");
        break;
    case END_RESPONSE:
        snprintf(text, sizeof text, "a whole response arrived (%zu bytes)", result->length);
        break;
    case END_STUB:
        snprintf(text, sizeof text, "no answer (%zu bytes), and the server reached a stub: "
                 "a function is still to write", result->length);
        break;
    default:
        snprintf(text, sizeof text, "the connection failed: %s", strerror(result->error));
    }
    return text;
}

enum exchange_end wait_for_server_close(int fd, int timeout_ms, int64_t *elapsed_ms)
{
    struct exchange result = {.bytes = calloc(1, 1), .started_ms = now_ms()};

    receive_until_end(fd, result.started_ms + timeout_ms, &result);
    *elapsed_ms = now_ms() - result.started_ms;
    exchange_free(&result);
    return result.end;
}

/* A keep-alive connection: several requests, one response at a time. */

void client_connect(struct client *client, struct server *server)
{
    int error = 0;

    memset(client, 0, sizeof *client);
    client->fd = connect_to(server->port, &error);
    if (client->fd < 0)
        fail_test("Could not connect to %s on port %d: %s.%s", server->role, server->port,
                  strerror(error), server_said(server));
}

bool client_send(struct client *client, const char *bytes, size_t length,
                 const struct send_plan *plan)
{
    return send_by_plan(client->fd, bytes, length, plan);
}

static void keep_pending(struct client *client, const char *data, size_t length)
{
    if (client->pending_length + length + 1 > client->pending_capacity) {
        client->pending_capacity = (client->pending_length + length + 1) * 2;
        client->pending = realloc(client->pending, client->pending_capacity);
    }
    memcpy(client->pending + client->pending_length, data, length);
    client->pending_length += length;
    client->pending[client->pending_length] = '\0';
}

/* The length of the first whole response in the pending bytes, or 0. */
static size_t whole_response_length(const struct client *client, bool head_only)
{
    struct parsed_response r;

    if (client->pending_length == 0 ||
        !parse_response(client->pending, client->pending_length, &r))
        return 0;
    if (head_only)
        return r.head_length;
    if (r.content_length < 0 || !r.complete)
        return 0;
    return r.head_length + (size_t)r.content_length;
}

/* Hands the first `length` pending bytes over to response. */
static void hand_over(struct client *client, size_t length, struct exchange *response)
{
    response->bytes = malloc(length + 1);
    memcpy(response->bytes, client->pending, length);
    response->bytes[length] = '\0';
    response->length = length;
    memmove(client->pending, client->pending + length, client->pending_length - length);
    client->pending_length -= length;
}

enum exchange_end client_read_response(struct client *client, bool head_only, int timeout_ms,
                                       struct exchange *response)
{
    char chunk[65536];
    int64_t deadline = now_ms() + timeout_ms;
    size_t whole;

    memset(response, 0, sizeof *response);
    response->started_ms = now_ms();
    while ((whole = whole_response_length(client, head_only)) == 0) {
        int64_t left = deadline - now_ms();
        struct pollfd entry = {.fd = client->fd, .events = POLLIN};
        if (left <= 0) {
            response->end = END_TIMED_OUT;
            break;
        }
        if (poll(&entry, 1, left < STUB_CHECK_MS ? (int)left : STUB_CHECK_MS) == 0) {
            if (stub_reached()) {
                response->end = END_STUB;
                break;
            }
            continue;
        }
        ssize_t got = recv(client->fd, chunk, sizeof chunk, 0);
        if (got > 0) {
            keep_pending(client, chunk, (size_t)got);
        } else if (got == 0 || errno != EINTR) {
            response->error = got < 0 ? errno : 0;
            response->end = got == 0 ? END_CLOSED : errno == ECONNRESET ? END_RESET : END_FAILED;
            break;
        }
    }
    if (whole > 0)
        response->end = END_RESPONSE;
    /* Whatever arrived is shown in messages, whole or not. */
    hand_over(client, whole > 0 ? whole : client->pending_length, response);
    response->finished_ms = now_ms();
    return response->end;
}

enum exchange_end client_wait_close(struct client *client, int timeout_ms, int64_t *elapsed_ms)
{
    client->pending_length = 0;
    return wait_for_server_close(client->fd, timeout_ms, elapsed_ms);
}

void client_close(struct client *client)
{
    if (client->fd >= 0)
        close(client->fd);
    client->fd = -1;
    free(client->pending);
    client->pending = NULL;
    client->pending_length = client->pending_capacity = 0;
}

/* ------------------------------------------------------------ responses */

bool parse_response(const char *bytes, size_t length, struct parsed_response *response)
{
    const char *end = length >= 4 ? memmem(bytes, length, "\r\n\r\n", 4) : NULL;

    memset(response, 0, sizeof *response);
    response->content_length = -1;
    if (length >= 12 && strncmp(bytes, "HTTP/1.", 7) == 0)
        response->status = atoi(bytes + 9);
    if (end == NULL)
        return false;
    response->head_length = (size_t)(end - bytes) + 4;
    const char *value = response_header(bytes, response->head_length, "Content-Length");
    if (value[0] != '\0')
        response->content_length = atol(value);
    response->complete = response->content_length >= 0 &&
                         length >= response->head_length + (size_t)response->content_length;
    return true;
}

const char *response_header(const char *bytes, size_t head_length, const char *name)
{
    static char value[256];
    size_t name_length = strlen(name);

    value[0] = '\0';
    for (const char *line = bytes; line < bytes + head_length;) {
        const char *end = memmem(line, (size_t)(bytes + head_length - line), "\r\n", 2);
        if (end == NULL)
            break;
        if ((size_t)(end - line) > name_length && strncasecmp(line, name, name_length) == 0 &&
            line[name_length] == ':') {
            const char *start = line + name_length + 1;
            while (*start == ' ')
                start++;
            snprintf(value, sizeof value, "%.*s", (int)(end - start), start);
            break;
        }
        line = end + 2;
    }
    return value;
}

char *mask_date(const char *bytes, size_t length)
{
    char *copy = malloc(length + 16);
    const char *date = memmem(bytes, length, "\r\nDate: ", 8);
    const char *end = date ? memmem(date + 2, length - (size_t)(date + 2 - bytes), "\r\n", 2) : NULL;

    if (date == NULL || end == NULL) {
        memcpy(copy, bytes, length);
        copy[length] = '\0';
        return copy;
    }
    size_t before = (size_t)(date - bytes) + 8;
    size_t after = length - (size_t)(end - bytes);
    memcpy(copy, bytes, before);
    memcpy(copy + before, "<date>", 6);
    memcpy(copy + before + 6, end, after);
    copy[before + 6 + after] = '\0';
    return copy;
}

const char *printable(const char *bytes, size_t length, size_t max_bytes)
{
    /* A few buffers in turn, so that one message may show several texts. */
    static char buffers[4][4096];
    static int turn;
    char *text = buffers[turn++ % 4];
    size_t used = 0;
    const size_t size = sizeof buffers[0];

    if (length == 0)
        return "(nothing)";
    for (size_t i = 0; i < length && i < max_bytes && used + 8 < size; i++) {
        unsigned char c = (unsigned char)bytes[i];
        if (c == '\r')
            used += (size_t)snprintf(text + used, size - used, "\\r");
        else if (c == '\n' && i + 1 < length && i + 1 < max_bytes)
            used += (size_t)snprintf(text + used, size - used, "\\n\n    ");
        else if (c == '\n')
            used += (size_t)snprintf(text + used, size - used, "\\n");
        else if (c < 0x20 || c >= 0x7f)
            used += (size_t)snprintf(text + used, size - used, "\\x%02x", c);
        else
            text[used++] = (char)c;
    }
    if (length > max_bytes && used + 24 < size)
        used += (size_t)snprintf(text + used, size - used, "... (%zu bytes in all)", length);
    text[used] = '\0';
    return text;
}

/* ---------------------------------------------------------- concurrency */

/* One client of a wave, driven without blocking so that one thread can run
 * a thousand of them and time each one fairly. */
struct wave_client {
    int fd;
    size_t sent;
    char head[16]; /* the start of the response: enough for the status */
    size_t received;
    bool done;
};

static int open_nonblocking_connection(int port)
{
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd >= 0 && connect(fd, (struct sockaddr *)&address, sizeof address) != 0 &&
        errno != EINPROGRESS) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Advances one client by what its socket allows; true once it is finished. */
static bool step_client(struct wave_client *client, const char *request, size_t length,
                        short revents)
{
    char chunk[65536];

    if ((revents & POLLOUT) && client->sent < length) {
        ssize_t written = send(client->fd, request + client->sent, length - client->sent,
                               MSG_NOSIGNAL);
        if (written > 0)
            client->sent += (size_t)written;
        else if (errno != EAGAIN)
            return true;
    }
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t got = recv(client->fd, chunk, sizeof chunk, 0);
        if (got > 0 && client->received < sizeof client->head - 1) {
            size_t keep = sizeof client->head - 1 - client->received;
            keep = (size_t)got < keep ? (size_t)got : keep;
            memcpy(client->head + client->received, chunk, keep);
            client->received += keep;
        }
        if (got == 0 || (got < 0 && errno != EAGAIN))
            return true;
    }
    return false;
}

static int compare_times(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

void run_wave(const struct server *server, int clients, const char *request, int timeout_ms,
              struct wave *wave)
{
    static struct wave_client client[MAX_WAVE_CLIENTS];
    static struct pollfd entries[MAX_WAVE_CLIENTS];
    size_t length = strlen(request);
    int64_t start = now_ms(), deadline = start + timeout_ms, next_sample = start;
    int remaining = clients;
    bool stub = false;

    memset(wave, 0, sizeof *wave);
    wave->clients = clients;
    raise_open_file_limit();
    for (int i = 0; i < clients; i++) {
        client[i] = (struct wave_client){.fd = open_nonblocking_connection(server->port)};
        wave->finished_ms[i] = timeout_ms;
        if (client[i].fd < 0) {
            client[i].done = true;
            wave->connect_failures++;
            remaining--;
        }
    }
    while (remaining > 0 && now_ms() < deadline && !stub) {
        for (int i = 0; i < clients; i++)
            entries[i] = (struct pollfd){.fd = client[i].done ? -1 : client[i].fd,
                                         .events = (short)(client[i].sent < length ? POLLOUT : POLLIN)};
        poll(entries, (nfds_t)clients, 10);
        if (now_ms() >= next_sample) {
            int threads = server_thread_count(server);
            wave->peak_threads = threads > wave->peak_threads ? threads : wave->peak_threads;
            /* Reading the servers' stderr files is I/O: here, not every turn. */
            stub = now_ms() - start > STUB_CHECK_MS && stub_reached();
            next_sample = now_ms() + 20;
        }
        for (int i = 0; i < clients; i++) {
            if (client[i].done || entries[i].revents == 0)
                continue;
            if (step_client(&client[i], request, length, entries[i].revents)) {
                client[i].done = true;
                close(client[i].fd); /* as a real client does, once it has its answer */
                client[i].fd = -1;
                wave->finished_ms[i] = now_ms() - start;
                remaining--;
            }
        }
    }
    for (int i = 0; i < clients; i++) {
        if (client[i].fd >= 0)
            close(client[i].fd);
        client[i].head[client[i].received] = '\0';
        wave->status[i] = strncmp(client[i].head, "HTTP/1.", 7) == 0 ? atoi(client[i].head + 9) : 0;
    }
    qsort(wave->finished_ms, (size_t)clients, sizeof wave->finished_ms[0], compare_times);
}

const char *finish_times(const struct wave *wave)
{
    static char text[1024];
    size_t used = 0;

    text[0] = '\0';
    for (int k = 0; k < wave->clients && used + 16 < sizeof text; k++)
        used += (size_t)snprintf(text + used, sizeof text - used, " %lld",
                                 (long long)wave->finished_ms[k]);
    if (used + 16 >= sizeof text)
        snprintf(text + used, sizeof text - used, " ...");
    return text;
}

/* -------------------------------------------- how a server spends its time */

/* Adds one thread's time on a CPU and waiting in a run queue (ns). */
static void add_thread_busy(const char *tid, int64_t *total)
{
    char path[96];
    long long ran = 0, waited = 0;

    snprintf(path, sizeof path, "/proc/%d/task/%s/schedstat", (int)visited_pid, tid);
    char *text = read_whole_file(path);
    if (sscanf(text, "%lld %lld", &ran, &waited) == 2)
        *total += ran + waited;
    free(text);
}

int64_t server_busy_ns(const struct server *server)
{
    return sum_over_threads(server, add_thread_busy);
}

/* Adds one thread's context switches, from its status file. */
static void add_thread_switches(const char *tid, int64_t *total)
{
    static const char *const keys[] = {"\nvoluntary_ctxt_switches:",
                                       "\nnonvoluntary_ctxt_switches:"};
    char path[96];

    snprintf(path, sizeof path, "/proc/%d/task/%s/status", (int)visited_pid, tid);
    char *text = read_whole_file(path);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *line = strstr(text, keys[i]);
        if (line != NULL)
            *total += atoll(line + strlen(keys[i]));
    }
    free(text);
}

long server_context_switches(const struct server *server)
{
    return (long)sum_over_threads(server, add_thread_switches);
}

int server_main_thread_syscall(const struct server *server)
{
    char path[64];

    if (server->pid <= 0)
        return -2;
    snprintf(path, sizeof path, "/proc/%d/syscall", (int)server->pid);
    char *text = read_whole_file(path);
    int number = strncmp(text, "running", 7) == 0 ? -1
                 : text[0] >= '0' && text[0] <= '9' ? atoi(text) : -2;
    free(text);
    return number;
}

bool is_sleep_syscall(int number)
{
#ifdef SYS_nanosleep
    if (number == SYS_nanosleep)
        return true;
#endif
    return number == SYS_clock_nanosleep;
}

const char *syscall_name(int number)
{
    static char text[32];

    if (number == SYS_clock_nanosleep)
        return "clock_nanosleep (a sleep)";
#ifdef SYS_nanosleep
    if (number == SYS_nanosleep)
        return "nanosleep (a sleep)";
#endif
#ifdef SYS_poll
    if (number == SYS_poll)
        return "poll";
#endif
    if (number == SYS_ppoll)
        return "ppoll";
    if (number == SYS_accept4)
        return "accept4";
    snprintf(text, sizeof text, "system call %d", number);
    return text;
}

int connect_with_small_window(struct server *server, int bytes)
{
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)server->port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int error;

    if (fd < 0)
        fail_test("harness: socket: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        error = errno;
        close(fd);
        fail_test("Could not connect to %s on port %d: %s.%s", server->role, server->port,
                  strerror(error), server_said(server));
    }
    return fd;
}

void trickle_request(struct server *server, const char *request, int pause_each_ms,
                     int timeout_ms, struct exchange *got)
{
    int64_t started = now_ms();
    struct client client;

    client_connect(&client, server);
    for (size_t sent = 0; now_ms() - started < timeout_ms;) {
        if (sent < strlen(request) && client_send(&client, request + sent, 1, NULL))
            sent++;
        struct pollfd entry = {.fd = client.fd, .events = POLLIN};
        if (poll(&entry, 1, pause_each_ms) > 0)
            break;
    }
    client_read_response(&client, false, 500, got);
    client_close(&client);
}

bool looks_like_imf_fixdate(const char *date)
{
    int day, year, hour, minute, second;
    char weekday[4], month[4];
    return strlen(date) == 29 &&
           sscanf(date, "%3s, %2d %3s %4d %2d:%2d:%2d GMT", weekday, &day, month, &year, &hour,
                  &minute, &second) == 7;
}
