#include "loopback.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static void report_error(const char *what)
{
    fprintf(stderr, "round trip: %s: %s\n", what, strerror(errno));
}

static struct sockaddr_in loopback_address(uint16_t port)
{
    return (struct sockaddr_in){
        .sin_family = AF_INET,
        .sin_port = htons(port),
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
}

int open_loopback_listener(uint16_t *port)
{
    struct sockaddr_in address = loopback_address(0); /* port 0: the kernel picks a free one */
    socklen_t length = sizeof address;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        report_error("socket");
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0 || listen(fd, 1) != 0 ||
        getsockname(fd, (struct sockaddr *)&address, &length) != 0) {
        report_error("bind, listen or getsockname on 127.0.0.1");
        close(fd);
        return -1;
    }
    *port = ntohs(address.sin_port);
    return fd;
}

int connect_to_loopback(uint16_t port)
{
    struct sockaddr_in address = loopback_address(port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        report_error("socket");
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        report_error("connect to 127.0.0.1");
        close(fd);
        return -1;
    }
    return fd;
}

int accept_within(int listener_fd, int timeout_ms)
{
    struct pollfd waiting = {.fd = listener_fd, .events = POLLIN};
    int ready = poll(&waiting, 1, timeout_ms);

    if (ready < 0) {
        report_error("poll");
        return -1;
    }
    if (ready == 0) {
        fprintf(stderr, "round trip: the echo process did not connect within %d ms\n",
                timeout_ms);
        return -1;
    }
    int fd = accept4(listener_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        report_error("accept");
    return fd;
}

bool send_small_writes_at_once(int fd)
{
    int on = 1;

    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) != 0) {
        report_error("setsockopt TCP_NODELAY");
        return false;
    }
    return true;
}

bool give_up_reads_after(int fd, int seconds)
{
    struct timeval timeout = {.tv_sec = seconds, .tv_usec = 0};

    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) != 0) {
        report_error("setsockopt SO_RCVTIMEO");
        return false;
    }
    return true;
}
