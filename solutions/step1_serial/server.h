/* Step 1: the serial server. One thread; one client at a time.
 *
 * You write the two functions below, in server.c. Everything about HTTP
 * (reading the head, answering, closing) is given, in common/: read
 * common/blocking_connection.c once, it is the life of one request. */
#ifndef STEP1_SERVER_H
#define STEP1_SERVER_H

#include "flags.h"

/* Waits a short while (at most STOP_CHECK_INTERVAL_MS) for the next client
 * and accepts it. Returns the connected socket, or -1 when there was no
 * client to accept this time; the caller then checks for shutdown and calls
 * again. Survives the errors a busy server meets (a client that gave up
 * before being accepted, running out of file descriptors). */
int accept_client(int listen_fd);

/* Serves clients one after another until SIGINT or SIGTERM: accept one,
 * serve it completely, and only then accept the next. */
void serve_forever(int listen_fd, const struct server_config *config);

#endif
