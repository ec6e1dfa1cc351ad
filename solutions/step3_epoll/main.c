/* Step 3: the epoll event-loop server. `step3_epoll --help` lists the flags. */
#include <unistd.h>

#include "event_loop.h"
#include "listener.h"

static const struct server_defaults step3_defaults = {
    .program = "step3_epoll",
    .description = "Serves every client at once on one thread, like a waiter who never "
                   "stands and waits.",
    .port = 7880,
};

int main(int argc, char **argv)
{
    struct server_config config;
    int listen_fd = start_listening(argc, argv, &step3_defaults, &config);
    struct event_loop *loop = event_loop_create(listen_fd, &config);

    if (loop == NULL) {
        close(listen_fd);
        return 1;
    }
    run_event_loop(loop);
    event_loop_free(loop); /* closes the listener too */
    return 0;
}
