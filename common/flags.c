#include "flags.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DEFAULT_DELAY_MS = 5000, DEFAULT_IDLE_MS = 10000, DEFAULT_WORKERS = 10 };
/* High enough to try ten thousand threads (./workbook bench, NOTES.md 2.10):
 * the machine's own limits, reported by pthread_create, come first. */
enum { MAX_WORKERS = 100000 };

static void print_usage(FILE *out, const struct server_defaults *defaults)
{
    fprintf(out,
            "usage: %s [--host ADDRESS] [--port N] [--delay-ms MS] [--idle-ms MS]%s [--quiet]\n"
            "%s\n"
            "\n"
            "  --host ADDRESS  IPv4 address to listen on (default 127.0.0.1)\n"
            "  --port N        TCP port, 0 for any free one (default %d)\n"
            "  --delay-ms MS   simulated heavy work per request (default %d)\n"
            "  --idle-ms MS    time a client may take to send its request head, or stall\n"
            "                  while reading a response (default %d)\n",
            defaults->program, defaults->takes_workers ? " [--workers N]" : "",
            defaults->description, defaults->port, DEFAULT_DELAY_MS, DEFAULT_IDLE_MS);
    if (defaults->takes_workers)
        fprintf(out, "  --workers N     threads in the pool (default %d)\n", DEFAULT_WORKERS);
    fprintf(out,
            "  --quiet         no log line per request\n"
            "  --help          this text\n"
            "\n"
            "The first line on stdout is \"listening on HOST:PORT\". SIGINT or SIGTERM\n"
            "finishes the responses under way, then exits 0.\n");
}

static void usage_error(const struct server_defaults *defaults, const char *problem)
{
    fprintf(stderr, "%s: %s\n", defaults->program, problem);
    print_usage(stderr, defaults);
    exit(2);
}

/* A whole decimal number within [low, high], or a usage error. */
static int parse_number(const struct server_defaults *defaults, const char *flag,
                        const char *text, long low, long high)
{
    char *end;
    char problem[160];
    long value;

    errno = 0;
    value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < low || value > high) {
        snprintf(problem, sizeof problem, "%s wants a whole number from %ld to %ld, not \"%s\"",
                 flag, low, high, text);
        usage_error(defaults, problem);
    }
    return (int)value;
}

static void set_host(const struct server_defaults *defaults, struct server_config *config,
                     const char *host)
{
    struct in_addr address;

    /* The servers listen on IPv4 only; a name would need a resolver. */
    if (strlen(host) >= sizeof config->host || inet_pton(AF_INET, host, &address) != 1)
        usage_error(defaults, "--host wants an IPv4 address such as 127.0.0.1");
    strcpy(config->host, host);
}

void parse_server_flags(int argc, char **argv, const struct server_defaults *defaults,
                        struct server_config *config)
{
    enum { HOST = 1, PORT, DELAY, IDLE, QUIET, WORKERS, HELP };
    const struct option options[] = {
        {"host", required_argument, NULL, HOST},     {"port", required_argument, NULL, PORT},
        {"delay-ms", required_argument, NULL, DELAY}, {"idle-ms", required_argument, NULL, IDLE},
        {"quiet", no_argument, NULL, QUIET},         {"workers", required_argument, NULL, WORKERS},
        {"help", no_argument, NULL, HELP},           {NULL, 0, NULL, 0},
    };
    int option;

    *config = (struct server_config){.host = "127.0.0.1", .port = defaults->port,
                                     .delay_ms = DEFAULT_DELAY_MS, .idle_ms = DEFAULT_IDLE_MS,
                                     .workers = DEFAULT_WORKERS};
    opterr = 0; /* we print our own message */
    while ((option = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (option) {
        case HOST: set_host(defaults, config, optarg); break;
        case PORT: config->port = parse_number(defaults, "--port", optarg, 0, 65535); break;
        case DELAY: config->delay_ms = parse_number(defaults, "--delay-ms", optarg, 0, 3600000); break;
        case IDLE: config->idle_ms = parse_number(defaults, "--idle-ms", optarg, 1, 3600000); break;
        case QUIET: config->quiet = true; break;
        case WORKERS:
            if (!defaults->takes_workers)
                usage_error(defaults, "--workers belongs to step 2");
            config->workers = parse_number(defaults, "--workers", optarg, 1, MAX_WORKERS);
            break;
        case HELP: print_usage(stdout, defaults); exit(0);
        default: usage_error(defaults, "unknown flag or missing value");
        }
    }
    if (optind < argc)
        usage_error(defaults, "unexpected argument");
}
