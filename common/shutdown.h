/* SIGINT and SIGTERM ask the server to stop gracefully. */
#ifndef COMMON_SHUTDOWN_H
#define COMMON_SHUTDOWN_H

#include <stdbool.h>

/* How often a waiting server looks at the stop flag. No wait in the
 * workbook's servers is longer than this, so a stop is seen at once even
 * when the signal lands just before a wait begins. */
enum { STOP_CHECK_INTERVAL_MS = 100 };

/* Installs the handlers (without SA_RESTART, so blocking calls return
 * EINTR) and ignores SIGPIPE, so that a vanished client cannot kill us. */
void install_shutdown_handlers(void);

/* True once SIGINT or SIGTERM arrived. Safe from any thread. */
bool shutdown_requested(void);

#endif
