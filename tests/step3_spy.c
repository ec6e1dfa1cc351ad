/* The loop spy (see step3_spy.h): linked into the "spied" build of a step 3
 * server with -Wl,--wrap=epoll_wait,--wrap=epoll_pwait,--wrap=epoll_pwait2,
 * --wrap=accept,--wrap=accept4. Every call goes to the real function; the
 * spy only counts, in a file shared with the test. */
#include "step3_spy.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

int __real_epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout);
int __real_epoll_pwait(int epfd, struct epoll_event *events, int maxevents, int timeout,
                       const sigset_t *mask);
int __real_epoll_pwait2(int epfd, struct epoll_event *events, int maxevents,
                        const struct timespec *timeout, const sigset_t *mask);
int __real_accept(int fd, struct sockaddr *address, socklen_t *length);
int __real_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);

/* Without LOOP_SPY_FILE the counts go here, where nobody reads them. */
static struct loop_counts unread_counts;
static struct loop_counts *counts = &unread_counts;
/* The round (the value of counts->waits) of the last accept, and the thread
 * that waited first: the loop's thread. */
static uint64_t last_accept_round;
static pthread_t loop_thread;
static int loop_thread_known;

__attribute__((constructor)) static void open_shared_counts(void)
{
    const char *path = getenv(LOOP_SPY_FILE_ENV);
    if (path == NULL || path[0] == '\0')
        return;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return;
    void *shared = mmap(NULL, sizeof *counts, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (shared != MAP_FAILED)
        counts = shared;
}

static void add(uint64_t *counter)
{
    __atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
}

/* Counts one wait, before it begins: a test that reads the counts while the
 * loop sleeps sees the wait it sleeps in. */
static void count_wait(int timeout_ms)
{
    if (!__atomic_exchange_n(&loop_thread_known, 1, __ATOMIC_ACQ_REL))
        loop_thread = pthread_self();
    else if (!pthread_equal(loop_thread, pthread_self()))
        add(&counts->waits_by_other_threads);
    add(&counts->waits);
    if (timeout_ms < 0)
        add(&counts->endless_waits);
}

static int counted_result(int timeout_ms, int ready)
{
    if (timeout_ms == 0 && ready == 0)
        add(&counts->empty_instant_waits);
    return ready;
}

int __wrap_epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
    count_wait(timeout);
    return counted_result(timeout, __real_epoll_wait(epfd, events, maxevents, timeout));
}

int __wrap_epoll_pwait(int epfd, struct epoll_event *events, int maxevents, int timeout,
                       const sigset_t *mask)
{
    count_wait(timeout);
    return counted_result(timeout, __real_epoll_pwait(epfd, events, maxevents, timeout, mask));
}

int __wrap_epoll_pwait2(int epfd, struct epoll_event *events, int maxevents,
                        const struct timespec *timeout, const sigset_t *mask)
{
    int timeout_ms = timeout == NULL ? -1
                     : timeout->tv_sec == 0 && timeout->tv_nsec == 0 ? 0 : 1;
    count_wait(timeout_ms);
    return counted_result(timeout_ms,
                          __real_epoll_pwait2(epfd, events, maxevents, timeout, mask));
}

static void count_accept(void)
{
    uint64_t round = __atomic_load_n(&counts->waits, __ATOMIC_RELAXED);

    add(&counts->accepts);
    if (__atomic_exchange_n(&last_accept_round, round, __ATOMIC_RELAXED) != round)
        add(&counts->rounds_with_accept);
}

int __wrap_accept(int fd, struct sockaddr *address, socklen_t *length)
{
    count_accept();
    return __real_accept(fd, address, length);
}

int __wrap_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags)
{
    count_accept();
    return __real_accept4(fd, address, length, flags);
}
