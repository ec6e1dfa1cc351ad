/* Serving one connection with blocking calls: what steps 1 and 2 share.
 *
 * The life of a request, one function per stage, in order:
 *   read_request_head()        (you write it: request_io.h)  until the blank line
 *   choose_response_to_head()  the parsed head decides the answer
 *   do_heavy_work()            the article's 5 seconds of "heavy process"
 *   send_response()            (you write it: request_io.h)  every byte
 *   close_gracefully()         (socket_io.c)  without resetting the client */
#ifndef COMMON_BLOCKING_CONNECTION_H
#define COMMON_BLOCKING_CONNECTION_H

#include "flags.h"

/* Serves the one request of this connection, then closes it. Blocks for
 * the whole time: the delay, a slow client, everything. */
void serve_connection(int client_fd, const struct server_config *config);

#endif
