/* Step 5: step 3's server on coroutines. `step5_coroutines --help` lists
 * the flags. */
#include <unistd.h>

#include "coroutine.h"
#include "listener.h"
#include "server.h"

static const struct server_defaults step5_defaults = {
    .program = "step5_coroutines",
    .description = "Serves every client at once on one thread, with code that reads as if "
                   "it served one.",
    .port = 7881,
};

int main(int argc, char **argv)
{
    struct server_config config;
    int listen_fd = start_listening(argc, argv, &step5_defaults, &config);
    struct event_loop *loop = event_loop_create(listen_fd, &config);

    if (loop == NULL) {
        close(listen_fd);
        return 1;
    }
    run_event_loop(loop);
    event_loop_free(loop); /* closes the listener too */
    stacks_unmap_all();    /* every coroutine has finished: their stacks go */
    return 0;
}
