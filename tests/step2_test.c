/* Step 2's own tests: the pool's shape seen from outside. The wire, shutdown
 * and flags tests that every step shares are in server_tests.c, compiled into
 * the same executable; the pool's own tests are in pool_test.c. */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server_tests.h"

/* 2W clients of a pool of W workers: the first W finish at about D, the
 * other W (which waited for a free worker) at about 2D. Returns NULL or what
 * broke the shape. */
static const char *two_waves_break(const struct wave *wave, int workers, int delay_ms)
{
    static char why[600];

    for (int k = 0; k < wave->clients; k++) {
        int64_t at = wave->finished_ms[k];
        bool first_wave = k < workers;
        double low = first_wave ? 0.5 * delay_ms : 1.5 * delay_ms;
        double high = first_wave ? 1.5 * delay_ms : 2.5 * delay_ms + 500;

        if (wave->status[k] != 200) {
            snprintf(why, sizeof why, "a client got status %d instead of 200 (0: no response)",
                     wave->status[k]);
            return why;
        }
        if (at < low || at > high) {
            snprintf(why, sizeof why,
                     "client %d (in finishing order) finished at %lld ms; as one of the %s %d, "
                     "it should finish between %.0f and %.0f ms. %s",
                     k + 1, (long long)at, first_wave ? "first" : "last", workers, low, high,
                     !first_wave && at < low
                         ? "More clients were served at once than there are workers: is every "
                           "connection given to the pool, and does the pool start exactly "
                           "--workers threads?"
                     : first_wave && at > high
                         ? "Fewer clients than workers were served at once: does a worker hold "
                           "the lock while it serves (NOTES.md section 2.4), or does the main "
                           "thread serve a client itself (section 2.7)?"
                         : "Something waits far longer than the delay.");
            return why;
        }
    }
    return NULL;
}
/* ==================== stage 2: the two waves ==================== */

SERVER_TEST(serves_twice_the_workers_in_two_waves)
{
    enum { WORKERS = 4, DELAY_MS = 400 };
    const char *const args[] = {"--workers", "4", "--delay-ms", "400", "--quiet", NULL};
    struct server mine, theirs;
    struct wave wave_mine, wave_theirs;
    const char *why;

    start_yours(&mine, args);
    run_wave(&mine, 2 * WORKERS, GET_HELLO, 15000, &wave_mine);
    if ((why = two_waves_break(&wave_mine, WORKERS, DELAY_MS)) != NULL)
        fail_test("%d clients connected at once to a server with %d workers, whose requests "
                  "take %d ms each.\nExpected two waves: %d clients finish at about %d ms, the "
                  "other %d (who waited for a free worker) at about %d ms (NOTES.md section "
                  "2.2).\nGot (ms):%s\nThat is: %s%s",
                  2 * WORKERS, WORKERS, DELAY_MS, WORKERS, DELAY_MS, WORKERS, 2 * DELAY_MS,
                  finish_times(&wave_mine), why, server_said(&mine));
    stop_server(&mine, 3000);

    start_reference(&theirs, args);
    run_wave(&theirs, 2 * WORKERS, GET_HELLO, 15000, &wave_theirs);
    cr_assert(two_waves_break(&wave_theirs, WORKERS, DELAY_MS) == NULL,
              "The reference server broke the two waves too (ms:%s): is the machine "
              "overloaded? Run the test again.", finish_times(&wave_theirs));
    double ratio = (double)wave_mine.finished_ms[2 * WORKERS - 1] /
                   (double)wave_theirs.finished_ms[2 * WORKERS - 1];
    cr_assert(ratio > 0.75 && ratio < 1.33,
              "Your last client finished at %lld ms, the reference's at %lld ms, in the same "
              "run: the ratio %.2f should be close to 1.",
              (long long)wave_mine.finished_ms[2 * WORKERS - 1],
              (long long)wave_theirs.finished_ms[2 * WORKERS - 1], ratio);
}

/* Waits up to timeout_ms for the server to have `expected` threads. */
static int settled_thread_count(const struct server *server, int expected, int timeout_ms)
{
    int threads = server_thread_count(server);

    for (int waited = 0; threads != expected && waited < timeout_ms; waited += 10) {
        usleep(10 * 1000);
        threads = server_thread_count(server);
    }
    return threads;
}

SERVER_TEST(runs_the_workers_and_the_main_thread_only)
{
    enum { WORKERS = 3, CLIENTS = 2 * WORKERS };
    const char *const args[] = {"--workers", "3", "--delay-ms", "300", "--quiet", NULL};
    struct server mine;
    struct wave wave;

    start_yours(&mine, args);
    int idle = settled_thread_count(&mine, WORKERS + 1, 1000);
    int exited = wait_for_exit(&mine, 0);
    if (exited >= 0)
        fail_test("Your server, started with --workers %d, exited with status %d instead of "
                  "waiting for clients.%s", WORKERS, exited, server_said(&mine));
    if (idle != WORKERS + 1)
        fail_test("Your server, started with --workers %d and no client yet, has %d threads "
                  "(read from /proc/PID/status).\nExpected %d: the main thread, which accepts, "
                  "and the %d workers, all started before the first client (NOTES.md sections "
                  "2.1 and 2.3).%s",
                  WORKERS, idle, WORKERS + 1, WORKERS, server_said(&mine));
    run_wave(&mine, CLIENTS, GET_HELLO, 5000, &wave);
    if (wave.status[0] != 200)
        fail_test("%d clients got no 200 response (first: status %d), so the thread count "
                  "could not be watched while the server worked.%s",
                  CLIENTS, wave.status[0], server_said(&mine));
    cr_assert(wave.peak_threads == WORKERS + 1,
              "While serving %d clients with --workers %d, your server had up to %d threads.\n"
              "Expected %d whatever the load: the pool's workers and the main thread. A thread "
              "per connection is what the pool is there to avoid (NOTES.md sections 2.1 and "
              "2.9).", CLIENTS, WORKERS, wave.peak_threads, WORKERS + 1);
}

SERVER_TEST(a_silent_client_ties_up_one_worker_not_the_pool)
{
    enum { WORKERS = 3, DELAY_MS = 300, CLIENTS = WORKERS - 1 };
    const char *const args[] = {"--workers", "3", "--delay-ms", "300", "--quiet", NULL};
    struct server mine, theirs;
    struct wave wave_mine, wave_theirs;

    start_yours(&mine, args);
    int silent = connect_silently(&mine);
    usleep(150 * 1000); /* a worker now waits for this client's head */
    run_wave(&mine, CLIENTS, GET_HELLO, 5000, &wave_mine);
    close(silent);
    for (int k = 0; k < CLIENTS; k++)
        if (wave_mine.status[k] != 200 || wave_mine.finished_ms[k] > 1.5 * DELAY_MS)
            fail_test("A client connected to your server (--workers %d, requests of %d ms) and "
                      "sent nothing. Then %d other clients sent a request.\nExpected: the "
                      "silent client holds one worker, the other %d serve the %d clients at "
                      "once, so both finish at about %d ms.\nGot (ms):%s (statuses %d and %d).\n"
                      "Likely cause: the main thread reads the request itself before handing "
                      "the connection over, or waits for the job to finish; it must only accept "
                      "and submit (NOTES.md section 2.7).%s",
                      WORKERS, DELAY_MS, CLIENTS, WORKERS - 1, CLIENTS, DELAY_MS,
                      finish_times(&wave_mine), wave_mine.status[0], wave_mine.status[1],
                      server_said(&mine));

    start_reference(&theirs, args);
    silent = connect_silently(&theirs);
    usleep(150 * 1000);
    run_wave(&theirs, CLIENTS, GET_HELLO, 5000, &wave_theirs);
    close(silent);
    cr_assert(wave_theirs.finished_ms[CLIENTS - 1] <= 1.5 * DELAY_MS,
              "The reference server was slow too (ms:%s): is the machine overloaded? Run the "
              "test again.", finish_times(&wave_theirs));
}

static void start_requests(struct background_exchange *requests, pthread_t *threads, int count,
                           int port)
{
    for (int i = 0; i < count; i++) {
        requests[i].port = port;
        cr_assert(pthread_create(&threads[i], NULL, exchange_in_background, &requests[i]) == 0,
                  "pthread_create failed");
    }
}
/* ==================== stage 4: shutdown ==================== */

SERVER_TEST(finishes_requests_in_flight_on_sigterm_with_an_idle_connection_open)
{
    enum { IN_FLIGHT = 2, DELAY_MS = 600 };
    const char *const args[] = {"--workers", "3", "--delay-ms", "600", NULL};
    struct background_exchange requests[IN_FLIGHT];
    pthread_t threads[IN_FLIGHT];
    struct server mine;
    struct parsed_response r;
    int64_t silent_closed_after;

    start_yours(&mine, args);
    int silent = connect_silently(&mine);
    start_requests(requests, threads, IN_FLIGHT, mine.port);
    usleep(250 * 1000); /* two workers are in their 600 ms of work, one waits for a head */
    kill(mine.pid, SIGTERM);
    enum exchange_end silent_end = wait_for_server_close(silent, 3000, &silent_closed_after);
    close(silent);
    for (int i = 0; i < IN_FLIGHT; i++)
        pthread_join(threads[i], NULL);
    int status = wait_for_exit(&mine, 3000);

    for (int i = 0; i < IN_FLIGHT; i++) {
        parse_response(requests[i].result.bytes, requests[i].result.length, &r);
        if (r.status != 200 || !r.complete)
            fail_test("SIGTERM arrived 250 ms into two requests of %d ms, each on its own "
                      "worker, while a third worker waited for a silent client.\nExpected: "
                      "both requests get their complete 200 response (NOTES.md section 2.6).\n"
                      "Got, for request %d: status %d, %s.%s",
                      DELAY_MS, i + 1, r.status, describe_end(&requests[i].result),
                      server_said(&mine));
        exchange_free(&requests[i].result);
    }
    cr_assert(silent_end == END_CLOSED && silent_closed_after < 1000,
              "On SIGTERM, the silent client's connection should be closed at once (its worker "
              "sees the stop within %d ms); got: %s after %lld ms.%s",
              100, silent_end == END_CLOSED ? "closed" : "not closed",
              (long long)silent_closed_after, server_said(&mine));
    cr_assert(status == 0,
              "After SIGTERM and the last response, the server should join its workers and "
              "exit 0 within 3 s; exit status: %d (-1: still running).\nLikely cause: "
              "pool_shutdown() waits for a worker that never ends (NOTES.md section 2.6).%s",
              status, server_said(&mine));
}

SERVER_TEST(exits_on_sigterm_even_with_clients_waiting_for_a_worker)
{
    enum { CLIENTS = 4, DELAY_MS = 500 };
    const char *const args[] = {"--workers", "1", "--delay-ms", "500", NULL};
    struct background_exchange requests[CLIENTS];
    pthread_t threads[CLIENTS];
    struct server mine;
    struct parsed_response r;

    /* One worker serves; one job waits in the queue (room for 1); the main
     * thread waits in pool_submit() with a third; the fourth is in the
     * kernel's backlog. */
    start_yours(&mine, args);
    start_requests(requests, threads, 1, mine.port);
    usleep(100 * 1000); /* the first client is the one in service */
    start_requests(requests + 1, threads + 1, CLIENTS - 1, mine.port);
    usleep(150 * 1000);
    kill(mine.pid, SIGTERM);
    int status = wait_for_exit(&mine, DELAY_MS + 2500);
    if (status < 0)
        stop_server(&mine, 0); /* killed, so that its clients end now */
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(threads[i], NULL);

    parse_response(requests[0].result.bytes, requests[0].result.length, &r);
    bool first_served = r.status == 200 && r.complete;
    int hung = 0;
    for (int i = 1; i < CLIENTS; i++)
        hung += requests[i].result.end == END_TIMED_OUT;
    for (int i = 0; i < CLIENTS; i++)
        exchange_free(&requests[i].result);
    cr_assert(status == 0 && first_served && hung == 0,
              "With --workers 1: one client in service, one queued, one held by the main thread "
              "in pool_submit(), one in the backlog. Then SIGTERM.\nExpected: the client in "
              "service gets its 200; the others are closed, not left hanging; the server exits "
              "0 within %d ms (NOTES.md sections 2.6 and 2.8).\nGot: exit status %d (-1: still "
              "running), the first client %s, %d client(s) left hanging.%s",
              DELAY_MS + 2500, status, first_served ? "served" : "NOT served", hung,
              server_said(&mine));
}

/* Open file descriptors of the server, from /proc/PID/fd. */
static int open_descriptors(const struct server *server)
{
    char path[64];
    struct dirent *entry;
    int count = 0;

    snprintf(path, sizeof path, "/proc/%d/fd", (int)server->pid);
    DIR *directory = opendir(path);
    if (directory == NULL)
        return -1;
    while ((entry = readdir(directory)) != NULL)
        count += entry->d_name[0] != '.';
    closedir(directory);
    return count;
}

SERVER_TEST(closes_every_connection_it_accepted)
{
    static const char bad_request[] = "GET / HTTP/1.1\r\n\r\n"; /* no Host: 400 */
    const char *const args[] = {"--workers", "2", "--delay-ms", "0", "--quiet", NULL};
    struct server mine;
    struct wave wave;
    struct exchange got;

    start_yours(&mine, args);
    usleep(100 * 1000);
    int before = open_descriptors(&mine);
    run_wave(&mine, 10, GET_HELLO, 5000, &wave);
    close(connect_silently(&mine)); /* ApacheBench's empty connection */
    exchange(mine.port, bad_request, strlen(bad_request), NULL, 5000, &got);
    exchange_free(&got);
    int after = before;
    for (int waited = 0; waited < 1000; waited += 20) {
        usleep(20 * 1000);
        if ((after = open_descriptors(&mine)) == before)
            break;
    }
    cr_assert(after == before,
              "Before any client your server had %d file descriptors open; after 12 connections "
              "(ten requests, an empty connection and a bad request), all answered and closed "
              "by the clients, it has %d (/proc/PID/fd).\nExpected the same number: every "
              "accepted socket is closed exactly once, by the job that serves it, or by the main "
              "thread when the pool refuses it (NOTES.md section 2.7).%s",
              before, after, server_said(&mine));
}
