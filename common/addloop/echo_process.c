#include "echo_process.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "children.h"
#include "cpu_pinning.h"
#include "loopback.h"

/* The child's whole life: echo every byte until the parent closes. */
static void run_echo_process(uint16_t port, int cpu)
{
    char bytes[64];
    ssize_t received;

    if (!pin_to_cpu(cpu))
        _exit(1);
    int fd = connect_to_loopback(port);
    if (fd < 0 || !send_small_writes_at_once(fd))
        _exit(1);
    while ((received = read(fd, bytes, sizeof bytes)) > 0) {
        if (write(fd, bytes, (size_t)received) != received) {
            fprintf(stderr, "round trip: echo write: %s\n", strerror(errno));
            _exit(1);
        }
    }
    if (received < 0)
        fprintf(stderr, "round trip: echo read: %s\n", strerror(errno));
    _exit(received < 0 ? 1 : 0);
}

pid_t start_echo_process(int listener_fd, uint16_t port, int cpu)
{
    fflush(NULL); /* the child must not print what the parent had buffered */
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "round trip: fork: %s\n", strerror(errno));
    } else if (pid == 0) {
        close(listener_fd);
        die_with_parent();
        run_echo_process(port, cpu);
    }
    return pid;
}

bool reap_echo_process(pid_t pid)
{
    return wait_for_child(pid) == 0;
}
