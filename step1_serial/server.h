/* Step 1: the serial server. One thread; one client at a time.
 *
 * You write three functions:
 *   serve_forever()      in server.c      (NOTES.md section 1.3)
 *   read_request_head()  in request_io.c  (1.4), declared in common/request_io.h
 *   send_response()      in request_io.c  (1.5), declared in common/request_io.h
 * Given, in common/: accept_client() (listener.c) takes the next client, and
 * serve_connection() (blocking_connection.c) is the life of one request: it
 * calls your read_request_head() and send_response(). */
#ifndef STEP1_SERVER_H
#define STEP1_SERVER_H

#include "flags.h"

/* Serves clients one after another until SIGINT or SIGTERM: accept one,
 * serve it completely, and only then accept the next. */
void serve_forever(int listen_fd, const struct server_config *config);

#endif
