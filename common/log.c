#include "log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>

static atomic_bool quiet_mode;

void log_set_quiet(bool quiet)
{
    atomic_store(&quiet_mode, quiet);
}

static void describe_peer(int fd, char *out, size_t size)
{
    struct sockaddr_in peer;
    socklen_t length = sizeof peer;
    char address[INET_ADDRSTRLEN] = "?";

    if (getpeername(fd, (struct sockaddr *)&peer, &length) == 0 && peer.sin_family == AF_INET) {
        inet_ntop(AF_INET, &peer.sin_addr, address, sizeof address);
        snprintf(out, size, "%s:%u", address, (unsigned)ntohs(peer.sin_port));
    } else {
        snprintf(out, size, "(peer gone)");
    }
}

void log_request(int client_fd, const char *request_line, int status,
                 unsigned long long body_bytes, long long milliseconds)
{
    char peer[64];

    if (atomic_load(&quiet_mode))
        return;
    describe_peer(client_fd, peer, sizeof peer);
    /* One fprintf per line: stdio locks the stream, so threads never interleave. */
    fprintf(stdout, "%s \"%s\" %d %llu bytes in %lld ms\n", peer, request_line, status,
            body_bytes, milliseconds);
}

void log_error(const char *format, ...)
{
    char message[512];
    va_list args;

    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    fprintf(stderr, "error: %s\n", message);
}
