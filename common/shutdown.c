#include "shutdown.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

/* Lock-free atomics are safe in a signal handler and between threads. */
static atomic_bool stop_flag;

static void on_stop_signal(int signal_number)
{
    (void)signal_number;
    atomic_store(&stop_flag, true);
}

void install_shutdown_handlers(void)
{
    struct sigaction action;

    memset(&action, 0, sizeof action);
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGINT, &action, NULL) != 0 || sigaction(SIGTERM, &action, NULL) != 0)
        perror("sigaction");
    action.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &action, NULL) != 0)
        perror("sigaction");
}

bool shutdown_requested(void)
{
    return atomic_load(&stop_flag);
}
