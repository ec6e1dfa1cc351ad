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

/* ------------------------------------------------------------ programs */

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

/* The value of an environment variable that names a file; fails the test
 * with a clear message when it is missing. */
const char *env_path(const char *name);

/* A path shortened to be relative to the workbook's folder, for messages. */
const char *short_path(const char *path);

/* ------------------------------------------------------------- servers */

struct server {
    pid_t pid; /* 0 once reaped */
    int port;
    int exit_status; /* valid once reaped: exit code, or 128 + signal */
    const char *role; /* "your server" or "the reference server" */
    char path[512];
    char args[256];   /* the flags it was started with, for messages */
    char stdout_path[64];
    char stderr_path[64];
};

/* Starts path with args (NULL-terminated; "--port 0" is added) and waits up
 * to 5 s for its "listening on HOST:PORT" line. Fails the test, with what
 * the server said, if it exits or stays silent. The server dies with the
 * test process, and stop_all_servers() (the suites' .fini) reaps it. */
void start_server(struct server *server, const char *role, const char *path,
                  const char *const args[]);

/* SIGTERM, then waits up to timeout_ms for the exit. Returns the exit status
 * (128 + signal if killed), or -1 if it did not exit (it is then killed). */
int stop_server(struct server *server, int timeout_ms);

/* Waits up to timeout_ms for the server to exit by itself. Returns its
 * status as stop_server() does, or -1 if it is still running. */
int wait_for_exit(struct server *server, int timeout_ms);

/* The server's stderr so far (malloc'd). */
char *server_stderr(const struct server *server);

/* Threads of the server process, from /proc/PID/status; -1 if gone. */
int server_thread_count(const struct server *server);

/* A paragraph for failure messages: the TODO lines the server printed, or
 * the last lines of its stderr, or "" when it said nothing. */
const char *server_said(const struct server *server);

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
int connect_silently(const struct server *server);

/* Waits up to timeout_ms for the server to close fd; returns how it ended,
 * and the time it took in *elapsed_ms. */
enum exchange_end wait_for_server_close(int fd, int timeout_ms, int64_t *elapsed_ms);

/* ------------------------------------------------------------ responses */

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
};

/* Starts `clients` clients at once (each its own connection, sending
 * request), waits for all (each at most timeout_ms), and records when each
 * finished, sorted, and the most threads the server had meanwhile. */
void run_wave(const struct server *server, int clients, const char *request, int timeout_ms,
              struct wave *wave);

/* ---------------------------------------------------------- failing well */

/* Fails the test with a printf-style message (a short paragraph). A macro,
 * so that Criterion reports the test's own file and line. */
#define fail_test(...) cr_assert_fail("%s", test_message(__VA_ARGS__))

/* The formatted message (valid until the next call). */
const char *test_message(const char *format, ...) __attribute__((format(printf, 1, 2)));

#endif
