/* The test harness: programs and servers started and always reaped, HTTP
 * clients with deadlines, concurrent waves of clients, and failure messages
 * that read like a tutor's note. Shared by every step's tests. */
#ifndef TESTS_HARNESS_H
#define TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <criterion/criterion.h>

/* -------------------------------------------------------------- basics */

/* Milliseconds on the monotonic clock. */
int64_t now_ms(void);

/* Sleeps ms milliseconds, resuming after a signal. */
void pause_ms(int ms);

/* ------------------------------------------------------ failing well */

/* Fails the test with a printf-style message (a short paragraph), followed
 * by the command that runs this test alone. A macro, so that Criterion
 * reports the test's own file and line. */
#define fail_test(...) cr_assert_fail("%s", test_message(__VA_ARGS__))

/* Fails the test, as fail_test() does, unless condition holds. */
#define check(condition, ...)                                                                      \
    do {                                                                                           \
        if (!(condition))                                                                          \
            fail_test(__VA_ARGS__);                                                                \
    } while (0)

/* The formatted message and the run-alone command (valid until the next call). */
const char *test_message(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* "\nRun this test alone: [VAR=... ]build/step1_tests --filter='step1/name'" */
const char *run_alone_command(void);

/* ------------------------------------------------------------ programs */

/* Every test executable defines this table: the environment variables that
 * name the programs it tests, and the path of each when the variable is not
 * set (meson compiles the paths in). The last entry is {NULL, NULL}. */
struct program_default {
    const char *env_name;
    const char *path;
};
extern const struct program_default program_defaults[];

/* The program named by env_name: the variable's value, or its default. */
const char *program_path(const char *env_name);

struct program_run {
    int exit_code;   /* -1 when killed by a signal */
    int term_signal; /* the signal, when killed */
    bool timed_out;  /* killed by us after timeout_ms */
    char *out;       /* stdout, NUL-terminated */
    char *err;       /* stderr, NUL-terminated */
    double seconds;
};

/* Runs argv (argv[0] a path) with no stdin, captures stdout and stderr, and
 * kills it after timeout_ms. False only if it could not be started. */
bool run_program(const char *const argv[], int timeout_ms, struct program_run *run);
void program_run_free(struct program_run *run);

/* The "TODO: ..." lines of a program's stderr as a paragraph to append to a
 * failure message, or "" when there are none. Valid until the next call. */
const char *todo_lines(const char *stderr_text);

/* The first report of AddressSanitizer, LeakSanitizer, UBSan or
 * ThreadSanitizer in a program's stderr, trimmed to its summary and the
 * first frames, as a paragraph; "" when there is none. Valid until the next
 * call. */
const char *sanitizer_report(const char *stderr_text);

/* A path shortened to be relative to the workbook's folder, for messages. */
const char *short_path(const char *path);

/* ------------------------------------------------------------- servers */

struct server {
    pid_t pid; /* 0 once reaped */
    int port;
    int exit_status; /* valid once reaped: exit code, or 128 + signal */
    int term_signal; /* valid once reaped: the signal that killed it, 0 if it exited */
    const char *role; /* "your server" or "the reference server" */
    char path[512];
    char args[256];   /* the flags it was started with, for messages */
    char stdout_path[64];
    char stderr_path[64];
};

struct start_options {
    int open_files; /* RLIMIT_NOFILE for the server (set before exec); 0: as ours */
};

/* Starts path with args (NULL-terminated; "--port 0" is added) and waits up
 * to 5 s for its "listening on HOST:PORT" line. Fails the test, with what
 * the server said, if it exits or stays silent. The server dies with the
 * test process, and stop_all_servers() (the suites' .fini) reaps it. A
 * server built with AddressSanitizer reports leaks at its exit (exit 23). */
void start_server(struct server *server, const char *role, const char *path,
                  const char *const args[]);
void start_server_with(struct server *server, const char *role, const char *path,
                       const char *const args[], const struct start_options *options);

/* SIGTERM, then waits up to timeout_ms for the exit. Returns the exit status
 * (128 + signal if killed), or -1 if it did not exit (it is then killed). */
int stop_server(struct server *server, int timeout_ms);

/* Waits up to timeout_ms for the server to exit by itself. Returns its
 * status as stop_server() does, or -1 if it is still running. */
int wait_for_exit(struct server *server, int timeout_ms);

/* Whether the server still runs. If it has exited, it is reaped and its
 * exit status recorded. */
bool server_running(struct server *server);

/* The server's stderr so far (malloc'd). */
char *server_stderr(const struct server *server);

/* Threads of the server process, from /proc/PID/status; -1 if gone. */
int server_thread_count(const struct server *server);

/* CPU time used by all the server's threads so far, in nanoseconds (from
 * /proc/PID/task/TID/schedstat); -1 if gone. */
int64_t server_cpu_ns(const struct server *server);

/* Resident memory of the server (VmRSS), in KiB; -1 if gone. */
long server_rss_kib(const struct server *server);

/* Open file descriptors of the server (entries of /proc/PID/fd); -1 if gone. */
int server_open_descriptors(const struct server *server);

/* A paragraph for failure messages: how the server died, if it did (with the
 * likely cause and a sanitizer's report), then the TODO lines it printed, or
 * the last lines of its stderr. "" when there is nothing to say. */
const char *server_said(struct server *server);

/* "exited with status 1", "died of SIGSEGV (signal 11)", for a server
 * that has been reaped. Valid until the next call. */
const char *describe_exit(const struct server *server);

/* How to replay `request` by hand against this server (printf | nc). */
const char *replay_command(const struct server *server, const char *request, size_t length);

/* Kills (SIGKILL) and reaps every server still running. For .fini. */
void stop_all_servers(void);

/* ------------------------------------------------------------- clients */

enum exchange_end {
    END_CLOSED,    /* the server closed the connection cleanly (EOF) */
    END_RESET,     /* the connection was reset */
    END_TIMED_OUT, /* no EOF within the timeout */
    END_REFUSED,   /* nobody listening */
    END_FAILED,    /* another socket error */
    END_STUB,      /* given up: the server reported a function still to write */
    END_RESPONSE,  /* client_read_response(): one whole response arrived */
};

struct exchange {
    char *bytes; /* everything received, NUL-terminated */
    size_t length;
    enum exchange_end end;
    int error;         /* errno, for END_RESET and END_FAILED */
    int64_t started_ms;
    int64_t finished_ms; /* EOF, reset or timeout */
};

/* How a request is written: first `first_piece` bytes (0: the same as
 * piece), then pieces of `piece` bytes (0: all the rest at once), with
 * pause_ms between writes. A NULL plan writes everything at once. */
struct send_plan {
    size_t first_piece;
    size_t piece;
    int pause_ms;
};

/* Connects to 127.0.0.1:port, writes the request by plan, then reads until
 * EOF, reset or timeout_ms. */
void exchange(int port, const char *request, size_t length, const struct send_plan *plan,
              int timeout_ms, struct exchange *result);
void exchange_free(struct exchange *result);

/* "the server closed the connection", "the connection was reset", ... */
const char *describe_end(const struct exchange *result);

/* A connected socket that sends nothing. Fails the test, with what the
 * server said, when the server accepts no connection. */
int connect_silently(struct server *server);

/* Waits up to timeout_ms for the server to close fd; returns how it ended,
 * and the time it took in *elapsed_ms. */
enum exchange_end wait_for_server_close(int fd, int timeout_ms, int64_t *elapsed_ms);

/* A connection that lives across several requests (keep-alive, pipelining).
 * Bytes received past one response are kept for the next. */
struct client {
    int fd;
    char *pending; /* received, not yet handed out */
    size_t pending_length;
    size_t pending_capacity;
};

/* Connects to the server; fails the test (with what the server said) if it
 * cannot. */
void client_connect(struct client *client, struct server *server);

/* Writes bytes by plan. False if the connection failed (errno says why). */
bool client_send(struct client *client, const char *bytes, size_t length,
                 const struct send_plan *plan);

/* Reads exactly one response: its head, then Content-Length bytes of body
 * (none when head_only: the answer to a HEAD request). END_RESPONSE when it
 * arrived whole, else how the connection ended first. */
enum exchange_end client_read_response(struct client *client, bool head_only, int timeout_ms,
                                       struct exchange *response);

/* Waits up to timeout_ms for the server to close the connection, discarding
 * what comes. Returns how it ended; *elapsed_ms the time it took. */
enum exchange_end client_wait_close(struct client *client, int timeout_ms, int64_t *elapsed_ms);

void client_close(struct client *client);

/* Sends request one byte every pause_each_ms while watching for an answer;
 * stops at the answer, at the end of the connection, or after timeout_ms,
 * then reads what came into *got. */
void trickle_request(struct server *server, const char *request, int pause_each_ms,
                     int timeout_ms, struct exchange *got);

/* ------------------------------------------------------------ responses */

/* RFC 9110 section 5.6.7: "Sun, 06 Nov 1994 08:49:37 GMT". */
bool looks_like_imf_fixdate(const char *date);

struct parsed_response {
    int status;         /* 0 if no status line */
    size_t head_length; /* up to and including the blank line; 0 if none */
    long content_length; /* -1 if absent */
    bool complete;      /* the whole body (by Content-Length) arrived */
};

bool parse_response(const char *bytes, size_t length, struct parsed_response *response);

/* The value of a header in a response head ("" if absent). */
const char *response_header(const char *bytes, size_t head_length, const char *name);

/* A copy of the bytes with the Date value replaced by "<date>" (malloc'd). */
char *mask_date(const char *bytes, size_t length);

/* Bytes made printable for a message: \r \n and others escaped, at most
 * max_bytes shown. Valid until the next call. */
const char *printable(const char *bytes, size_t length, size_t max_bytes);

/* ---------------------------------------------------------- concurrency */

enum { MAX_WAVE_CLIENTS = 1100 };

struct wave {
    int clients;
    int64_t finished_ms[MAX_WAVE_CLIENTS]; /* since the common start */
    int status[MAX_WAVE_CLIENTS];          /* HTTP status, 0 if none */
    int peak_threads;                      /* of the server, sampled meanwhile */
    int connect_failures;                  /* connections that could not even start */
};

/* Starts `clients` clients at once (each its own connection, sending
 * request), waits for all (each at most timeout_ms), and records when each
 * finished, sorted, and the most threads the server had meanwhile. */
void run_wave(const struct server *server, int clients, const char *request, int timeout_ms,
              struct wave *wave);

/* " 201 402 603" (ms), for messages. Valid until the next call. */
const char *finish_times(const struct wave *wave);


/* ------------------------------------------- how a server spends its time */

/* How long all the server's threads have wanted a CPU so far, in
 * nanoseconds: the time they ran plus the time they waited in a run queue
 * for a core (the first two numbers of /proc/PID/task/TID/schedstat); -1 if
 * it is gone. A thread that spins wants a CPU all the time, however busy
 * the machine is; one that sleeps wants none. */
int64_t server_busy_ns(const struct server *server);

/* Context switches of all the server's threads so far (voluntary and
 * involuntary, from /proc/PID/task/TID/status): how often it went to sleep
 * or was put aside. -1 if it is gone. */
long server_context_switches(const struct server *server);

/* The system call the server's main thread is blocked in now (its number,
 * from /proc/PID/syscall); -1 while it runs, -2 when it cannot be read. */
int server_main_thread_syscall(const struct server *server);

/* Whether a system call number is a plain sleep (nanosleep, clock_nanosleep). */
bool is_sleep_syscall(int number);

/* "poll", "clock_nanosleep", ... for messages; "system call N" for others. */
const char *syscall_name(int number);

/* A connection to the server whose receive buffer is cut to `bytes` before
 * connecting (so that the window the server sees stays small): a client
 * that reads slowly, or never, then holds the server's sends back at once.
 * Fails the test, with what the server said, if it cannot connect. */
int connect_with_small_window(struct server *server, int bytes);

#endif
