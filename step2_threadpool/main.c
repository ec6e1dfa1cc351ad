/* Step 2: the thread-pool server. `step2_threadpool --help` lists the flags. */
#include <unistd.h>

#include "listener.h"
#include "pool.h"
#include "server.h"

static const struct server_defaults step2_defaults = {
    .program = "step2_threadpool",
    .description = "Serves up to --workers clients at once, like a restaurant with that many "
                   "waiters.",
    .port = 7879,
    .takes_workers = true,
};

int main(int argc, char **argv)
{
    struct server_config config;
    int listen_fd = start_listening(argc, argv, &step2_defaults, &config);
    /* As many jobs may wait as there are workers; more clients wait in the
     * kernel's listen backlog (NOTES.md section 2.8). */
    struct pool *pool = pool_create(config.workers, config.workers);

    if (pool == NULL) {
        close(listen_fd);
        return 1;
    }
    serve_forever(listen_fd, pool, &config);
    /* Stop accepting: clients not yet accepted are refused at once rather
     * than left waiting. Then the workers finish what they hold and end. */
    close(listen_fd);
    pool_shutdown(pool);
    return 0;
}
