/* The servers' log (common/log.h) for the fuzz targets: silent, since a
 * fuzzer runs millions of requests, and strict: an error a server would log
 * means a system call failed where none should, so it is a finding. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

#include "fuzz_checks.h"

void log_set_quiet(bool quiet)
{
    (void)quiet;
}

void log_request(int client_fd, const char *request_line, int status,
                 unsigned long long body_bytes, long long milliseconds)
{
    (void)client_fd;
    (void)request_line;
    (void)status;
    (void)body_bytes;
    (void)milliseconds;
}

void log_error(const char *format, ...)
{
    char message[512];
    va_list args;

    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    fuzz_fail("the server logged an error: %s", message);
}
