/* Step 1: the serial server. One thread; one client at a time.
 *
 * You write serve_forever(), in server.c. Everything else is given, in
 * common/: accept_client() in listener.c takes the next client, and
 * blocking_connection.c is the life of one request. Read both first. */
#ifndef STEP1_SERVER_H
#define STEP1_SERVER_H

#include "flags.h"

/* Serves clients one after another until SIGINT or SIGTERM: accept one,
 * serve it completely, and only then accept the next. */
void serve_forever(int listen_fd, const struct server_config *config);

#endif
