/* Step 1: the serial server. `step1_serial --help` lists the flags. */
#include <unistd.h>

#include "listener.h"
#include "server.h"

static const struct server_defaults step1_defaults = {
    .program = "step1_serial",
    .description = "Serves one client at a time, like a restaurant with a single waiter.",
    .port = 7878,
};

int main(int argc, char **argv)
{
    struct server_config config;
    int listen_fd = start_listening(argc, argv, &step1_defaults, &config);

    serve_forever(listen_fd, &config);
    close(listen_fd);
    return 0;
}
