#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "shutdown.h"
#include "socket_io.h"

/* Room for the step 3 server's thousands of simultaneous clients; the
 * kernel caps it at net.core.somaxconn. */
enum { LISTEN_BACKLOG = 4096 };

static int fail_listener(int fd, const char *host, int port, const char *what)
{
    if (errno == EADDRINUSE)
        fprintf(stderr, "error: port %d on %s is already in use (is another server running?)\n",
                port, host);
    else
        log_error("%s %s:%d: %s", what, host, port, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

int open_listener(const char *host, int port)
{
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int yes = 1;
    int fd;

    if (inet_pton(AF_INET, host, &address.sin_addr) != 1) {
        fprintf(stderr, "error: --host %s is not an IPv4 address\n", host);
        return -1;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail_listener(fd, host, port, "socket");
    /* Lets a restarted server bind while old connections sit in TIME_WAIT. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes) != 0)
        return fail_listener(fd, host, port, "setsockopt");
    /* Each response leaves as soon as it is ready: Nagle's algorithm would
     * hold a pipelined response back until the client acknowledged the one
     * before, which a client may delay by 40 ms. On Linux every accepted
     * socket inherits TCP_NODELAY from its listener: one system call here
     * instead of one per connection (NOTES.md 3.14). Steps 1 and 2 get it
     * too; with one response per connection, it changes nothing for them. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes) != 0)
        return fail_listener(fd, host, port, "setsockopt TCP_NODELAY");
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0)
        return fail_listener(fd, host, port, "bind");
    if (listen(fd, LISTEN_BACKLOG) != 0)
        return fail_listener(fd, host, port, "listen");
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_in address;
    socklen_t length = sizeof address;

    if (getsockname(fd, (struct sockaddr *)&address, &length) != 0) {
        log_error("getsockname: %s", strerror(errno));
        return -1;
    }
    return ntohs(address.sin_port);
}

int start_listening(int argc, char **argv, const struct server_defaults *defaults,
                    struct server_config *config)
{
    int fd;

    parse_server_flags(argc, argv, defaults, config);
    log_set_quiet(config->quiet);
    install_shutdown_handlers();
    fd = open_listener(config->host, config->port);
    if (fd < 0)
        exit(1);
    config->port = bound_port(fd);
    /* Line-buffered, so each log line reaches a pipe (a test, a tee) at once. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("listening on %s:%d\n", config->host, config->port);
    fflush(stdout);
    return fd;
}

int accept_client(int listen_fd)
{
    /* Wait in short slices: a blocked accept() would not notice SIGTERM if
     * the signal landed just before the call. */
    if (wait_readable(listen_fd, STOP_CHECK_INTERVAL_MS) <= 0)
        return -1;

    int client_fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (client_fd >= 0)
        return client_fd;

    switch (errno) {
    case EAGAIN:       /* another process took it, or the client left */
    case EINTR:        /* a signal: let the caller look at the stop flag */
    case ECONNABORTED: /* the client reset before we accepted */
        break;
    case EMFILE:
    case ENFILE:
        /* Out of descriptors: the client waits in the backlog. Pause rather
         * than spin on a listener that stays readable. */
        log_error("accept: %s; retrying in 100 ms", strerror(errno));
        sleep_ms(100);
        break;
    default:
        log_error("accept: %s", strerror(errno));
        break;
    }
    return -1;
}

bool watch_listener(int epoll_fd, int listen_fd, int operation, uint32_t events)
{
    struct epoll_event event = {.events = events, .data.ptr = NULL};

    if (epoll_ctl(epoll_fd, operation, listen_fd, &event) == 0)
        return true;
    log_error("epoll_ctl (listener): %s", strerror(errno));
    return false;
}

int open_epoll_with_listener(int listen_fd)
{
    int epoll_fd = epoll_create1(EPOLL_CLOEXEC);

    if (epoll_fd < 0) {
        log_error("epoll_create1: %s", strerror(errno));
        return -1;
    }
    if (!watch_listener(epoll_fd, listen_fd, EPOLL_CTL_ADD, EPOLLIN)) {
        close(epoll_fd);
        return -1;
    }
    return epoll_fd;
}

void pause_accepting(int epoll_fd, int listen_fd, struct accept_pause *pause)
{
    if (watch_listener(epoll_fd, listen_fd, EPOLL_CTL_MOD, 0)) {
        pause->paused = true;
        pause->resume_ms = monotonic_ms() + ACCEPT_PAUSE_MS;
    }
}

void resume_accepting_when_due(int epoll_fd, int listen_fd, struct accept_pause *pause,
                               int64_t now_ms)
{
    if (!pause->paused || pause->resume_ms > now_ms)
        return;
    if (watch_listener(epoll_fd, listen_fd, EPOLL_CTL_MOD, EPOLLIN))
        pause->paused = false;
    else
        pause->resume_ms = monotonic_ms() + ACCEPT_PAUSE_MS;
}
