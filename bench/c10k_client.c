/* Many clients at once, for ./workbook bench (questions 2 and 3).
 *
 * One process, one thread, non-blocking sockets and epoll, so that ten
 * thousand clients really are "at once": a load generator with a thread or
 * a Python coroutine per client would spread them over seconds.
 *
 *   c10k_client --port P [--connections N] [--path PATH] [--sources K]
 *               [--timeout-ms MS] [--times FILE] wave|idle
 *
 * wave: opens the N connections first (not timed: the server accepts them
 *   as they come), then sends one request on every one of them in a single
 *   sweep, and times each response from the moment its own request left
 *   until its last byte. The request says "Connection: close"; the sockets
 *   are closed once every response is in, so that closing never delays
 *   the reading and timing of the others.
 * idle: opens the N connections, makes one keep-alive request on each and
 *   reads its response, prints "ready", then holds them open and idle until
 *   its standard input closes or says anything; then closes them all.
 *
 * Figures go to stdout as key=value lines. Connections come from K source
 * addresses, 127.0.0.2 to 127.0.0.(K+1), with the port chosen per
 * destination (IP_BIND_ADDRESS_NO_PORT), so that rounds of ten thousand
 * never run out of ephemeral ports while earlier rounds sit in TIME_WAIT.
 * The destination is always 127.0.0.1. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
    CONNECTS_IN_FLIGHT = 256, /* a burst far below the listen backlog (4096) */
    EVENTS_PER_WAIT = 1024,
    RESPONSE_LIMIT = 4096,    /* the responses here are about 150 bytes */
    SPARE_DESCRIPTORS = 64,
};

enum mode { WAVE, IDLE };

/* A client's life; FAILED and DONE are final (DONE may keep its socket: idle). */
enum client_state { UNUSED, CONNECTING, CONNECTED, AWAITING_RESPONSE, DONE, FAILED };

enum failure {
    CONNECT_FAILED, SEND_FAILED, RESET, CLOSED_EARLY, BAD_STATUS, BAD_RESPONSE, TIMED_OUT,
    FAILURE_KINDS
};

static const char *const failure_names[FAILURE_KINDS] = {
    "connect", "send", "reset", "closed_early", "status", "response", "timeout",
};

struct options {
    int port;
    int connections;
    const char *path;
    int sources;
    int timeout_ms;
    const char *times_file;
    enum mode mode;
};

struct client {
    int fd;
    enum client_state state;
    int64_t sent_ns;
    int64_t done_ns;
    char *response;           /* RESPONSE_LIMIT + 1 bytes once something arrived */
    size_t response_length;
};

struct run {
    struct options options;
    struct client *clients;
    int epoll_fd;
    int descriptor_limit;
    int outstanding;          /* clients still CONNECTING or AWAITING_RESPONSE */
    int connected;            /* connections the server's side accepted into its backlog */
    int failures[FAILURE_KINDS];
    char first_error[160];    /* the first failure, in words */
    int64_t connect_ns;       /* how long opening every connection took */
    int64_t sweep_start_ns, sweep_end_ns;
    int closed_by_server;     /* idle: connections the server closed while held */
};

/* ------------------------------------------------------------- helpers */

static int64_t now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static void die(const char *what, int error)
{
    fprintf(stderr, "c10k_client: %s: %s\n", what, strerror(error));
    exit(1);
}

static void usage(void)
{
    fprintf(stderr, "usage: c10k_client --port P [--connections N] [--path PATH] "
                    "[--sources K] [--timeout-ms MS] [--times FILE] wave|idle\n");
    exit(2);
}

static int number(const char *text, long low, long high)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < low || value > high)
        usage();
    return (int)value;
}

static struct options parse_options(int argc, char **argv)
{
    enum { PORT = 1, CONNECTIONS, PATH, SOURCES, TIMEOUT, TIMES };
    const struct option known[] = {
        {"port", required_argument, NULL, PORT},   {"connections", required_argument, NULL, CONNECTIONS},
        {"path", required_argument, NULL, PATH},   {"sources", required_argument, NULL, SOURCES},
        {"timeout-ms", required_argument, NULL, TIMEOUT}, {"times", required_argument, NULL, TIMES},
        {NULL, 0, NULL, 0},
    };
    struct options options = {.connections = 10000, .path = "/", .sources = 8,
                              .timeout_ms = 30000};
    int option;

    while ((option = getopt_long(argc, argv, "", known, NULL)) != -1) {
        switch (option) {
        case PORT: options.port = number(optarg, 1, 65535); break;
        case CONNECTIONS: options.connections = number(optarg, 1, 1000000); break;
        case PATH: options.path = optarg; break;
        case SOURCES: options.sources = number(optarg, 0, 250); break;
        case TIMEOUT: options.timeout_ms = number(optarg, 1, 3600000); break;
        case TIMES: options.times_file = optarg; break;
        default: usage();
        }
    }
    if (options.port == 0 || optind != argc - 1 || strlen(options.path) > 1000)
        usage();
    if (strcmp(argv[optind], "wave") == 0)
        options.mode = WAVE;
    else if (strcmp(argv[optind], "idle") == 0)
        options.mode = IDLE;
    else
        usage();
    return options;
}

/* Ten thousand sockets need more than the usual soft limit of 1024: raise
 * it to the hard limit, the most an unprivileged process may have. */
static int raise_descriptor_limit(int wanted)
{
    struct rlimit limit;

    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        die("getrlimit", errno);
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
        die("setrlimit", errno);
    if (limit.rlim_cur < (rlim_t)wanted + SPARE_DESCRIPTORS) {
        fprintf(stderr, "c10k_client: %d connections need %d descriptors; the hard limit "
                        "(ulimit -Hn) is %llu\n", wanted, wanted + SPARE_DESCRIPTORS,
                (unsigned long long)limit.rlim_max);
        exit(2);
    }
    return (int)limit.rlim_cur;
}

static void fail(struct run *run, struct client *client, enum failure kind, int error)
{
    if (client->state == CONNECTING || client->state == AWAITING_RESPONSE)
        run->outstanding--;
    client->state = FAILED;
    run->failures[kind]++;
    if (run->first_error[0] == '\0')
        snprintf(run->first_error, sizeof run->first_error, "%s%s%s", failure_names[kind],
                 error != 0 ? ": " : "", error != 0 ? strerror(error) : "");
    if (client->fd >= 0)
        close(client->fd);
    client->fd = -1;
    free(client->response);
    client->response = NULL;
}

static bool watch(struct run *run, struct client *client, int operation, uint32_t events)
{
    struct epoll_event event = {.events = events, .data.ptr = client};
    return epoll_ctl(run->epoll_fd, operation, client->fd, &event) == 0;
}

/* ---------------------------------------------------------- connecting */

static bool bind_source(int fd, int index, int sources)
{
    int yes = 1;
    struct sockaddr_in source = {.sin_family = AF_INET};

    if (sources == 0)
        return true;
    /* The port is picked at connect(), per destination: far more room. */
    if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &yes, sizeof yes) != 0)
        return false;
    source.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(index % sources));
    return bind(fd, (struct sockaddr *)&source, sizeof source) == 0;
}

static void start_connect(struct run *run, int index)
{
    struct client *client = &run->clients[index];
    struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons(run->options.port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

    client->state = CONNECTING;
    run->outstanding++;
    client->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (client->fd < 0) {
        fail(run, client, CONNECT_FAILED, errno);
        return;
    }
    if (!bind_source(client->fd, index, run->options.sources)) {
        fail(run, client, CONNECT_FAILED, errno);
        return;
    }
    if (connect(client->fd, (struct sockaddr *)&server, sizeof server) != 0 &&
        errno != EINPROGRESS) {
        fail(run, client, CONNECT_FAILED, errno);
        return;
    }
    if (!watch(run, client, EPOLL_CTL_ADD, EPOLLOUT))
        fail(run, client, CONNECT_FAILED, errno);
}

static void finish_connect(struct run *run, struct client *client)
{
    int error = 0;
    socklen_t length = sizeof error;

    if (getsockopt(client->fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0)
        error = errno;
    if (error != 0) {
        fail(run, client, CONNECT_FAILED, error);
        return;
    }
    /* From now on only input matters: a response, or the server closing. */
    if (!watch(run, client, EPOLL_CTL_MOD, EPOLLIN)) {
        fail(run, client, CONNECT_FAILED, errno);
        return;
    }
    client->state = CONNECTED;
    run->outstanding--;
    run->connected++;
}

/* Opens every connection, at most CONNECTS_IN_FLIGHT at a time, so that
 * the burst never overflows the server's listen backlog (a dropped SYN is
 * retried only a second later, and would be timed as the server's fault). */
static void open_connections(struct run *run)
{
    struct epoll_event events[EVENTS_PER_WAIT];
    int next = 0;
    int64_t start = now_ns();
    int64_t give_up = start + (int64_t)run->options.timeout_ms * 1000000;

    while (next < run->options.connections || run->outstanding > 0) {
        while (next < run->options.connections && run->outstanding < CONNECTS_IN_FLIGHT)
            start_connect(run, next++);
        int ready = epoll_wait(run->epoll_fd, events, EVENTS_PER_WAIT, 100);
        if (ready < 0 && errno != EINTR)
            die("epoll_wait", errno);
        for (int i = 0; i < ready; i++) {
            struct client *client = events[i].data.ptr;
            if (client->state == CONNECTING)
                finish_connect(run, client);
            else if (client->state == CONNECTED)
                fail(run, client, CLOSED_EARLY, 0); /* input before any request: a close */
        }
        if (now_ns() > give_up)
            for (int i = 0; i < next; i++)
                if (run->clients[i].state == CONNECTING)
                    fail(run, &run->clients[i], CONNECT_FAILED, ETIMEDOUT);
    }
    run->connect_ns = now_ns() - start;
}

/* ------------------------------------------------------------ requests */

static int format_request(const struct options *options, char *out, size_t size)
{
    return snprintf(out, size, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n", options->path,
                    options->port, options->mode == WAVE ? "Connection: close\r\n" : "");
}

/* One request on every open connection, back to back: "at the same moment"
 * as nearly as one thread can make it. Each is timed from its own send. */
static void send_requests(struct run *run)
{
    char request[1200];
    int length = format_request(&run->options, request, sizeof request);

    run->sweep_start_ns = now_ns();
    for (int i = 0; i < run->options.connections; i++) {
        struct client *client = &run->clients[i];
        if (client->state != CONNECTED)
            continue;
        client->sent_ns = now_ns();
        /* A fresh socket's buffer takes a small request whole. */
        ssize_t sent = send(client->fd, request, (size_t)length, MSG_NOSIGNAL);
        if (sent != length) {
            fail(run, client, SEND_FAILED, sent < 0 ? errno : EMSGSIZE);
            continue;
        }
        client->state = AWAITING_RESPONSE;
        run->outstanding++;
    }
    run->sweep_end_ns = now_ns();
}

/* ----------------------------------------------------------- responses */

/* The value of a header in the head (which ends at head_end), or NULL. */
static const char *find_header(const char *head, const char *head_end, const char *name)
{
    size_t name_length = strlen(name);
    const char *line = memchr(head, '\n', (size_t)(head_end - head));

    while (line != NULL && line + 1 + name_length < head_end) {
        line++;
        if (strncasecmp(line, name, name_length) == 0 && line[name_length] == ':')
            return line + name_length + 1;
        line = memchr(line, '\n', (size_t)(head_end - line));
    }
    return NULL;
}

enum progress { INCOMPLETE, COMPLETE, MALFORMED };

/* Whether the bytes so far make a whole response (RFC 9112 section 6.3):
 * a head, then Content-Length bytes, or a chunked body up to its last
 * chunk; *status is its status code. */
static enum progress response_progress(const char *data, size_t length, int *status)
{
    const char *head_end = memmem(data, length, "\r\n\r\n", 4);

    if (head_end == NULL)
        return length >= RESPONSE_LIMIT ? MALFORMED : INCOMPLETE;
    if (sscanf(data, "HTTP/1.%*d %d", status) != 1)
        return MALFORMED;
    head_end += 4;
    size_t body_length = length - (size_t)(head_end - data);
    const char *content_length = find_header(data, head_end, "Content-Length");
    if (content_length != NULL)
        return body_length >= strtoull(content_length, NULL, 10) ? COMPLETE : INCOMPLETE;
    const char *encoding = find_header(data, head_end, "Transfer-Encoding");
    if (encoding != NULL && strncasecmp(encoding + strspn(encoding, " \t"), "chunked", 7) == 0)
        return body_length >= 5 && memcmp(data + length - 5, "0\r\n\r\n", 5) == 0 ? COMPLETE
                                                                                  : INCOMPLETE;
    return INCOMPLETE; /* the body ends with the connection */
}

static void finish_response(struct run *run, struct client *client, int status)
{
    if (status != 200) {
        fail(run, client, BAD_STATUS, 0);
        return;
    }
    client->done_ns = now_ns();
    client->state = DONE;
    run->outstanding--;
    free(client->response);
    client->response = NULL;
    /* A close() here would send our FIN and handle the server's in this
     * loop, delaying the responses still to be read and timed: the socket
     * leaves epoll now and is closed once every response is in. */
    if (run->options.mode == WAVE &&
        epoll_ctl(run->epoll_fd, EPOLL_CTL_DEL, client->fd, NULL) != 0)
        die("epoll_ctl", errno);
}

/* The server closed a connection: the end of a body without a length, or
 * a response cut short. */
static void on_end_of_stream(struct run *run, struct client *client)
{
    int status = 0;
    const char *data = client->response;
    bool has_head = data != NULL && memmem(data, client->response_length, "\r\n\r\n", 4) != NULL;

    if (has_head && find_header(data, data + client->response_length, "Content-Length") == NULL &&
        sscanf(data, "HTTP/1.%*d %d", &status) == 1)
        finish_response(run, client, status);
    else
        fail(run, client, CLOSED_EARLY, 0);
}

static void read_response(struct run *run, struct client *client)
{
    if (client->response == NULL && (client->response = malloc(RESPONSE_LIMIT + 1)) == NULL)
        die("malloc", errno);
    ssize_t got = recv(client->fd, client->response + client->response_length,
                       RESPONSE_LIMIT - client->response_length, 0);
    if (got < 0) {
        if (errno != EAGAIN && errno != EINTR)
            fail(run, client, errno == ECONNRESET ? RESET : CLOSED_EARLY, errno);
        return;
    }
    if (got == 0) {
        on_end_of_stream(run, client);
        return;
    }
    client->response_length += (size_t)got;
    client->response[client->response_length] = '\0'; /* for sscanf */
    int status = 0;
    switch (response_progress(client->response, client->response_length, &status)) {
    case COMPLETE: finish_response(run, client, status); break;
    case MALFORMED: fail(run, client, BAD_RESPONSE, 0); break;
    case INCOMPLETE:
        if (client->response_length == RESPONSE_LIMIT)
            fail(run, client, BAD_RESPONSE, 0);
        break;
    }
}

/* Reads until every request is answered or failed, or the time is up. */
static void collect_responses(struct run *run)
{
    struct epoll_event events[EVENTS_PER_WAIT];
    int64_t give_up = run->sweep_start_ns + (int64_t)run->options.timeout_ms * 1000000;

    while (run->outstanding > 0 && now_ns() < give_up) {
        int ready = epoll_wait(run->epoll_fd, events, EVENTS_PER_WAIT, 100);
        if (ready < 0 && errno != EINTR)
            die("epoll_wait", errno);
        for (int i = 0; i < ready; i++) {
            struct client *client = events[i].data.ptr;
            if (client->state == AWAITING_RESPONSE)
                read_response(run, client);
        }
    }
    for (int i = 0; i < run->options.connections; i++)
        if (run->clients[i].state == AWAITING_RESPONSE)
            fail(run, &run->clients[i], TIMED_OUT, 0);
}

/* ---------------------------------------------------------------- idle */

/* Whether the server has closed this held connection (which is then closed
 * here too). Anything it sends meanwhile is discarded. */
static bool server_closed(struct client *client, char *discard, size_t size)
{
    if (client->fd < 0)
        return false;
    ssize_t got = recv(client->fd, discard, size, 0);
    if (got > 0 || (got < 0 && (errno == EAGAIN || errno == EINTR)))
        return false;
    close(client->fd);
    client->fd = -1;
    return true;
}

/* Holds the connections open until standard input closes or says
 * anything, counting those the server closes meanwhile. */
static void hold_idle_connections(struct run *run)
{
    struct epoll_event events[EVENTS_PER_WAIT];
    struct pollfd input = {.fd = STDIN_FILENO, .events = POLLIN};
    char discard[256];

    for (;;) {
        int ready = poll(&input, 1, 0);
        if (ready < 0 && errno != EINTR)
            die("poll", errno);
        if (ready > 0)
            return;
        ready = epoll_wait(run->epoll_fd, events, EVENTS_PER_WAIT, 50);
        if (ready < 0 && errno != EINTR)
            die("epoll_wait", errno);
        for (int i = 0; i < ready; i++)
            if (server_closed(events[i].data.ptr, discard, sizeof discard))
                run->closed_by_server++;
    }
}

/* Closes every socket still open; returns how many there were. */
static int close_all(struct run *run)
{
    int still_open = 0;
    for (int i = 0; i < run->options.connections; i++)
        if (run->clients[i].fd >= 0) {
            still_open++;
            close(run->clients[i].fd);
            run->clients[i].fd = -1;
        }
    return still_open;
}

/* ------------------------------------------------------------- figures */

static int compare_times(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The nearest-rank percentile of n (> 0) sorted values. */
static double percentile_ms(const int64_t *sorted, int n, int percent)
{
    long rank = ((long)percent * n + 99) / 100; /* rounded up */
    return (double)sorted[rank < 1 ? 0 : rank - 1] / 1e6;
}

static void write_times(const struct run *run, const int64_t *since_sweep, int n)
{
    FILE *file = fopen(run->options.times_file, "w");
    if (file == NULL)
        die(run->options.times_file, errno);
    for (int i = 0; i < n; i++)
        fprintf(file, "%.3f\n", (double)since_sweep[i] / 1e6);
    if (fclose(file) != 0)
        die(run->options.times_file, errno);
}

static void print_figures(const struct run *run)
{
    int n = 0;
    int64_t *latencies = malloc(sizeof(int64_t) * (size_t)run->options.connections);
    int64_t *since_sweep = malloc(sizeof(int64_t) * (size_t)run->options.connections);

    if (latencies == NULL || since_sweep == NULL)
        die("malloc", errno);
    for (int i = 0; i < run->options.connections; i++) {
        const struct client *client = &run->clients[i];
        if (client->state == DONE) {
            latencies[n] = client->done_ns - client->sent_ns;
            since_sweep[n++] = client->done_ns - run->sweep_start_ns;
        }
    }
    qsort(latencies, (size_t)n, sizeof latencies[0], compare_times);
    qsort(since_sweep, (size_t)n, sizeof since_sweep[0], compare_times);
    printf("mode=%s\nconnections=%d\nsources=%d\ndescriptor_limit=%d\nconnected=%d\n",
           run->options.mode == WAVE ? "wave" : "idle", run->options.connections,
           run->options.sources, run->descriptor_limit, run->connected);
    printf("connect_ms=%.1f\nsweep_ms=%.1f\ncompleted=%d\n", (double)run->connect_ns / 1e6,
           (double)(run->sweep_end_ns - run->sweep_start_ns) / 1e6, n);
    int failed = 0;
    for (int kind = 0; kind < FAILURE_KINDS; kind++) {
        printf("failed_%s=%d\n", failure_names[kind], run->failures[kind]);
        failed += run->failures[kind];
    }
    printf("failed=%d\nfirst_error=%s\n", failed, run->first_error[0] ? run->first_error : "none");
    if (n > 0)
        printf("min_ms=%.1f\np50_ms=%.1f\np90_ms=%.1f\np99_ms=%.1f\nmax_ms=%.1f\nwall_ms=%.1f\n",
               (double)latencies[0] / 1e6, percentile_ms(latencies, n, 50),
               percentile_ms(latencies, n, 90), percentile_ms(latencies, n, 99),
               (double)latencies[n - 1] / 1e6, (double)since_sweep[n - 1] / 1e6);
    if (run->options.times_file != NULL)
        write_times(run, since_sweep, n);
    fflush(stdout);
    free(latencies);
    free(since_sweep);
}

int main(int argc, char **argv)
{
    struct run run = {.options = parse_options(argc, argv)};

    run.descriptor_limit = raise_descriptor_limit(run.options.connections);
    run.clients = calloc((size_t)run.options.connections, sizeof run.clients[0]);
    if (run.clients == NULL)
        die("calloc", errno);
    for (int i = 0; i < run.options.connections; i++)
        run.clients[i].fd = -1;
    run.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (run.epoll_fd < 0)
        die("epoll_create1", errno);

    open_connections(&run);
    send_requests(&run);
    collect_responses(&run);
    print_figures(&run);
    if (run.options.mode == IDLE) {
        printf("ready\n");
        fflush(stdout);
        hold_idle_connections(&run);
        printf("closed_by_server=%d\n", run.closed_by_server);
    }
    printf("closed_at_end=%d\n", close_all(&run));
    close(run.epoll_fd);
    free(run.clients);
    return 0;
}
