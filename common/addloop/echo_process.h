/* The other end of the round trip: a child process that sends back every
 * byte it receives. */
#ifndef COMMON_ADDLOOP_ECHO_PROCESS_H
#define COMMON_ADDLOOP_ECHO_PROCESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Forks the echo process: pinned to cpu, it connects to 127.0.0.1:port and
 * echoes until the connection closes. listener_fd is closed in the child.
 * Returns its pid, or -1 (with a message). */
pid_t start_echo_process(int listener_fd, uint16_t port, int cpu);

/* Waits for the echo process to end; true if it ended well. */
bool reap_echo_process(pid_t pid);

#endif
