/* SIGINT and SIGTERM ask the server to stop gracefully. */
#ifndef COMMON_SHUTDOWN_H
#define COMMON_SHUTDOWN_H

#include <signal.h>
#include <stdbool.h>

/* How often a blocking server (steps 1 and 2) looks at the stop flag. None
 * of their waits is longer than this, so a stop is seen within 100 ms even
 * when the signal lands just before a wait begins. The event loops (steps 3
 * and 5) wait as long as they like: block_stop_signals() below lets a stop
 * end their wait at once. */
enum { STOP_CHECK_INTERVAL_MS = 100 };

/* Installs the handlers (without SA_RESTART, so blocking calls return
 * EINTR) and ignores SIGPIPE, so that a vanished client cannot kill us. */
void install_shutdown_handlers(void);

/* True once SIGINT or SIGTERM arrived. Safe from any thread. */
bool shutdown_requested(void);

/* For a server that waits in one place (step 3's epoll_pwait): blocks SIGINT
 * and SIGTERM in the calling thread, and fills *wait_mask with the mask to
 * wait with, which lets them in. The wait then unblocks them atomically, so a
 * stop request that lands between checking shutdown_requested() and waiting
 * stays pending and ends the wait at once, instead of being lost until the
 * next wake-up. */
void block_stop_signals(sigset_t *wait_mask);

#endif
