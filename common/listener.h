/* The listening socket. */
#ifndef COMMON_LISTENER_H
#define COMMON_LISTENER_H

#include <stdbool.h>
#include <stdint.h>

#include "flags.h"

/* Parses the flags, installs the shutdown handlers, opens the listening
 * socket and prints "listening on HOST:PORT" (with the real port when
 * --port 0). Exits 1 with a one-line message if the port is taken; exits 2
 * on bad flags. Returns the listening socket, non-blocking. */
int start_listening(int argc, char **argv, const struct server_defaults *defaults,
                    struct server_config *config);

/* Opens a non-blocking IPv4 listening socket on host:port. Returns the
 * socket, or -1 after printing why. */
int open_listener(const char *host, int port);

/* Waits a short while (at most STOP_CHECK_INTERVAL_MS) for the next client
 * and accepts it. Returns the connected (blocking) socket, or -1 when there
 * was no client to accept this time: the caller then checks for shutdown
 * and calls again. Survives what a busy server meets: a client that gave up
 * before being accepted, running out of file descriptors. */
int accept_client(int listen_fd);

/* For the event loops (steps 3 and 5). The listener's epoll events carry
 * NULL, where a connection's carry its struct. operation: EPOLL_CTL_ADD,
 * or EPOLL_CTL_MOD to pause (events 0) and resume (EPOLLIN) accepting.
 * False, logged, if epoll_ctl failed. */
bool watch_listener(int epoll_fd, int listen_fd, int operation, uint32_t events);

/* Out of descriptors (EMFILE, ENFILE), an event loop stops watching its
 * listener for a while: the listener stays readable, and accepting again at
 * once would fail again, a busy loop. */
enum { ACCEPT_PAUSE_MS = 100 };

struct accept_pause {
    bool paused;       /* the listener is not watched... */
    int64_t resume_ms; /* ...until then (monotonic_ms()) */
};

/* Stops watching the listener for ACCEPT_PAUSE_MS. */
void pause_accepting(int epoll_fd, int listen_fd, struct accept_pause *pause);

/* Watches the listener again once resume_ms has come; if that fails, tries
 * again ACCEPT_PAUSE_MS later, never gives up. */
void resume_accepting_when_due(int epoll_fd, int listen_fd, struct accept_pause *pause,
                               int64_t now_ms);

/* A new epoll instance that already watches the listener for EPOLLIN.
 * Returns it, or -1, logged. */
int open_epoll_with_listener(int listen_fd);

#endif
