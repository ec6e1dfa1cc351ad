/* The command-line flags every server of the workbook takes. */
#ifndef COMMON_FLAGS_H
#define COMMON_FLAGS_H

#include <stdbool.h>

struct server_config {
    char host[64];
    int port;      /* 0: let the kernel choose a free port */
    int delay_ms;  /* the simulated heavy work per request */
    int idle_ms;   /* how long a client may take to send its head, or stall a response */
    bool quiet;    /* no per-request log */
    int workers;   /* step 2 only */
};

/* What differs between the steps' programs. */
struct server_defaults {
    const char *program;     /* e.g. "step1_serial" */
    const char *description; /* one line for --help */
    int port;
    bool takes_workers;      /* step 2 adds --workers */
};

/* Fills config from argv. --help prints the usage on stdout and exits 0; an
 * unknown flag or a bad value prints the usage on stderr and exits 2. */
void parse_server_flags(int argc, char **argv, const struct server_defaults *defaults,
                        struct server_config *config);

#endif
