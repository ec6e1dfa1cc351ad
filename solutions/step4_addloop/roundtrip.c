#include "roundtrip.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "addloop.h"
#include "exercise.h"

bool time_one_round_trip(int socket_fd, uint64_t *elapsed_ns)
{
    /* EXERCISE time_one_round_trip: NOTES.md section 4.6 "A real wait: the round trip"
     * stub:
     *     (void)socket_fd;
     *     (void)elapsed_ns;
     *     return false;
     */
    const char ping = '!';
    char echo;
    uint64_t start_ns = read_monotonic_clock_ns();

    ssize_t sent = write(socket_fd, &ping, 1);
    if (sent != 1) {
        fprintf(stderr, "round trip: write: %s\n", sent < 0 ? strerror(errno) : "nothing sent");
        return false;
    }
    /* Here the thread blocks: the kernel puts it to sleep until the byte is
     * back, and it can do nothing else meanwhile. */
    ssize_t received = read(socket_fd, &echo, 1);
    if (received != 1) {
        fprintf(stderr, "round trip: read: %s\n",
                received < 0 ? strerror(errno) : "the echo process closed the connection");
        return false;
    }
    *elapsed_ns = read_monotonic_clock_ns() - start_ns;
    return true;
    /* END EXERCISE */
}
