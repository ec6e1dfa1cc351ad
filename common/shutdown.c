#include "shutdown.h"

#include <pthread.h>
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

void block_stop_signals(sigset_t *wait_mask)
{
    sigset_t stop_signals;
    int error;

    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    /* The old mask, less the stop signals, is what the wait lets in. */
    error = pthread_sigmask(SIG_BLOCK, &stop_signals, wait_mask);
    if (error != 0) {
        fprintf(stderr, "error: pthread_sigmask: %s\n", strerror(error));
        sigemptyset(wait_mask);
    }
    sigdelset(wait_mask, SIGINT);
    sigdelset(wait_mask, SIGTERM);
}
