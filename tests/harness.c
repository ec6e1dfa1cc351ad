#include "harness.h"

#include <criterion/criterion.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

const char *test_message(const char *format, ...)
{
    static char message[16384];
    va_list args;

    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    return message;
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

const char *env_path(const char *name)
{
    const char *value = getenv(name);
    if (value == NULL || value[0] == '\0')
        fail_test("The environment variable %s is not set. Run the tests through meson "
                  "(`./workbook test STEP` or `meson test -C build --suite STEP`), which sets it.",
                  name);
    return value;
}

const char *short_path(const char *path)
{
    const char *root = getenv("WORKBOOK_ROOT");
    size_t length = root ? strlen(root) : 0;

    if (length > 0 && strncmp(path, root, length) == 0 && path[length] == '/')
        return path + length + 1;
    return path;
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

/* In the child: stdin from /dev/null, stdout and stderr to files, and
 * death with the parent, so that no test ever leaves a server behind. */
static void become_child(const char *out_path, const char *err_path)
{
    int in = open("/dev/null", O_RDONLY);
    int out = open(out_path, O_WRONLY | O_TRUNC);
    int err = open(err_path, O_WRONLY | O_TRUNC);

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
        _exit(126);
    /* Nothing else of the test runner's (its pipes keep it waiting). */
    close_range(3, ~0U, 0);
}

static pid_t spawn(const char *const argv[], const char *out_path, const char *err_path)
{
    pid_t pid;

    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        become_child(out_path, err_path);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

static int decode_status(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
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
    pid_t pid = spawn(argv, out_path, err_path);
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
    server->exit_status = decode_status(raw_status);
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
    server->pid = spawn(argv, server->stdout_path, server->stderr_path);
    if (server->pid < 0)
        fail_test("harness: fork failed: %s", strerror(errno));
    remember(server);

    for (int64_t deadline = now_ms() + 5000; now_ms() < deadline; pause_ms(5)) {
        if (read_listening_line(server) && server->port > 0)
            return;
        if (waitpid(server->pid, &raw_status, WNOHANG) == server->pid) {
            reap(server, raw_status);
            fail_test("%s (%s%s) exited with status %d before printing \"listening on "
                      "HOST:PORT\".%s", role, short_path(path), server->args,
                      server->exit_status, server_said(server));
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

int server_thread_count(const struct server *server)
{
    char path[64];
    int threads = -1;

    snprintf(path, sizeof path, "/proc/%d/status", (int)server->pid);
    char *status = server->pid > 0 ? read_whole_file(path) : NULL;
    char *line = status ? strstr(status, "\nThreads:") : NULL;
    if (line != NULL)
        threads = atoi(line + 9);
    free(status);
    return threads;
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
        used += (size_t)snprintf(out + used, size - used, "\n  %.*s", (int)length, line);
        line = end ? end + 1 : line + length;
    }
}

const char *server_said(const struct server *server)
{
    static char paragraph[3000];
    char lines[2048];
    char *text = server_stderr(server);
    const char *todos = todo_lines(text);

    if (todos[0] != '\0') {
        snprintf(paragraph, sizeof paragraph, "%s", todos);
    } else if (text[0] != '\0') {
        last_lines(text, 6, lines, sizeof lines);
        snprintf(paragraph, sizeof paragraph, "\nThe stderr of %s ended with:%s", server->role,
                 lines);
    } else {
        paragraph[0] = '\0';
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

int connect_silently(const struct server *server)
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
        snprintf(text, sizeof text, "the connection was refused: nobody is listening");
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
