/* The servers' log: one line per request on stdout, problems on stderr. */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

#include <stdbool.h>

/* --quiet: no per-request lines (errors are still printed). */
void log_set_quiet(bool quiet);

/* One line per answered request, e.g.
 * 127.0.0.1:40112 "GET / HTTP/1.1" 200 5 bytes in 5003 ms */
void log_request(int client_fd, const char *request_line, int status,
                 unsigned long long body_bytes, long long milliseconds);

/* A problem worth an operator's attention, on stderr. printf-style. */
void log_error(const char *format, ...) __attribute__((format(printf, 1, 2)));

#endif
