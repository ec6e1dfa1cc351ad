/* Step 2's own tests: the pool's shape seen from outside. The wire, shutdown
 * and flags tests that every step shares are in server_tests.c, compiled into
 * the same executable; the pool's own tests are in pool_test.c. */
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
    run_wave(&mine, 2 * WORKERS, GET_HELLO, 5000, &wave_mine);
    if ((why = two_waves_break(&wave_mine, WORKERS, DELAY_MS)) != NULL)
        fail_test("%d clients connected at once to a server with %d workers, whose requests "
                  "take %d ms each.\nExpected two waves: %d clients finish at about %d ms, the "
                  "other %d (who waited for a free worker) at about %d ms (NOTES.md section "
                  "2.2).\nGot (ms):%s\nThat is: %s%s",
                  2 * WORKERS, WORKERS, DELAY_MS, WORKERS, DELAY_MS, WORKERS, 2 * DELAY_MS,
                  finish_times(&wave_mine), why, said(&mine));
    stop_server(&mine, 3000);

    start_reference(&theirs, args);
    run_wave(&theirs, 2 * WORKERS, GET_HELLO, 5000, &wave_theirs);
    check(two_waves_break(&wave_theirs, WORKERS, DELAY_MS) == NULL,
          "The reference server broke the two waves too (ms:%s): is the machine overloaded? "
          "Run the test again.", finish_times(&wave_theirs));
    double ratio = (double)wave_mine.finished_ms[2 * WORKERS - 1] /
                   (double)wave_theirs.finished_ms[2 * WORKERS - 1];
    check(ratio > 0.75 && ratio < 1.33,
          "Your last client finished at %lld ms, the reference's at %lld ms, in the same run: "
          "the ratio %.2f should be close to 1.",
          (long long)wave_mine.finished_ms[2 * WORKERS - 1],
          (long long)wave_theirs.finished_ms[2 * WORKERS - 1], ratio);
}

/* Waits up to timeout_ms for the server to have `expected` threads. */
static int settled_thread_count(const struct server *server, int expected, int timeout_ms)
{
    int threads = server_thread_count(server);

    for (int waited = 0; threads != expected && waited < timeout_ms; waited += 10) {
        pause_ms(10);
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
                  "waiting for clients.%s", WORKERS, exited, said(&mine));
    if (idle != WORKERS + 1)
        fail_test("Your server, started with --workers %d and no client yet, has %d threads "
                  "(read from /proc/PID/status).\nExpected %d: the main thread, which accepts, "
                  "and the %d workers, all started before the first client (NOTES.md sections "
                  "2.1 and 2.3).%s",
                  WORKERS, idle, WORKERS + 1, WORKERS, said(&mine));
    run_wave(&mine, CLIENTS, GET_HELLO, 5000, &wave);
    if (wave.status[0] != 200)
        fail_test("%d clients got no 200 response (first: status %d), so the thread count "
                  "could not be watched while the server worked.%s",
                  CLIENTS, wave.status[0], said(&mine));
    check(wave.peak_threads == WORKERS + 1,
          "While serving %d clients with --workers %d, your server had up to %d threads.\n"
          "Expected %d whatever the load: the pool's workers and the main thread. A thread per "
          "connection is what the pool is there to avoid (NOTES.md sections 2.1 and 2.9).%s",
          CLIENTS, WORKERS, wave.peak_threads, WORKERS + 1, said(&mine));
}

SERVER_TEST(a_silent_client_ties_up_one_worker_not_the_pool)
{
    enum { WORKERS = 3, DELAY_MS = 300, CLIENTS = WORKERS - 1 };
    const char *const args[] = {"--workers", "3", "--delay-ms", "300", "--quiet", NULL};
    struct server mine, theirs;
    struct wave wave_mine, wave_theirs;

    start_yours(&mine, args);
    int silent = connect_silently(&mine);
    pause_ms(150); /* a worker now waits for this client's head */
    run_wave(&mine, CLIENTS, GET_HELLO, 5000, &wave_mine);
    close(silent);
    for (int k = 0; k < CLIENTS; k++)
        if (wave_mine.status[k] != 200 || wave_mine.finished_ms[k] > 1.5 * DELAY_MS)
            fail_test("A client connected to your server (--workers %d, requests of %d ms) and "
                      "sent nothing. Then %d other clients sent a request.\nExpected: the "
                      "silent client holds one worker, the other %d serve the %d clients at "
                      "once, so both finish at about %d ms.\nGot (ms):%s (statuses %d and %d).\n"
                      "So something waited for the silent client before the others were "
                      "served. The main thread must only accept and submit: if it reads from "
                      "the client, or waits for the job to end, one silent client stops it at "
                      "the door (NOTES.md section 2.7).%s",
                      WORKERS, DELAY_MS, CLIENTS, WORKERS - 1, CLIENTS, DELAY_MS,
                      finish_times(&wave_mine), wave_mine.status[0], wave_mine.status[1],
                      said(&mine));

    start_reference(&theirs, args);
    silent = connect_silently(&theirs);
    pause_ms(150);
    run_wave(&theirs, CLIENTS, GET_HELLO, 5000, &wave_theirs);
    close(silent);
    check(wave_theirs.finished_ms[CLIENTS - 1] <= 1.5 * DELAY_MS,
          "The reference server was slow too (ms:%s): is the machine overloaded? Run the test "
          "again.", finish_times(&wave_theirs));
}

static void start_requests(struct background_exchange *requests, pthread_t *threads, int count,
                           int port)
{
    for (int i = 0; i < count; i++) {
        requests[i].port = port;
        int error = pthread_create(&threads[i], NULL, exchange_in_background, &requests[i]);
        check(error == 0, "harness: pthread_create: %s", strerror(error));
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
    pause_ms(250); /* two workers are in their 600 ms of work, one waits for a head */
    ask_to_stop(&mine);
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
                      DELAY_MS, i + 1, r.status, describe_end(&requests[i].result), said(&mine));
        exchange_free(&requests[i].result);
    }
    check(silent_end == END_CLOSED && silent_closed_after < 1000,
          "On SIGTERM, the silent client's connection should be closed at once (its worker sees "
          "the stop within 100 ms); got: %s after %lld ms.%s",
          silent_end == END_CLOSED ? "closed" : "not closed", (long long)silent_closed_after,
          said(&mine));
    expect_clean_exit(&mine, status, 3000,
                      "SIGTERM arrived during two requests, with a third worker waiting for a "
                      "silent client; the requests were answered. After the last response the "
                      "server joins its workers and exits.");
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
    pause_ms(100); /* the first client is the one in service */
    start_requests(requests + 1, threads + 1, CLIENTS - 1, mine.port);
    pause_ms(150);
    ask_to_stop(&mine);
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
    check(first_served && hung == 0,
          "With --workers 1: one client in service, one queued, one held by the main thread in "
          "pool_submit(), one in the backlog. Then SIGTERM.\nExpected: the client in service "
          "gets its 200; the others are closed, not left hanging; the server exits 0 within %d "
          "ms (NOTES.md sections 2.6 and 2.8).\nGot: exit status %d (-1: still running), the "
          "first client %s, %d client(s) left hanging.%s",
          DELAY_MS + 2500, status, first_served ? "served" : "NOT served", hung, said(&mine));
    expect_clean_exit(&mine, status, DELAY_MS + 2500,
                      "With --workers 1: one client in service, one queued, one held by the "
                      "main thread in pool_submit(), one in the backlog. Then SIGTERM.");
}

/* Waits up to 1 s for the server's open descriptors to come back to `count`. */
static int settled_descriptors(const struct server *server, int count)
{
    int now = server_open_descriptors(server);

    for (int waited = 0; now != count && waited < 1000; waited += 20) {
        pause_ms(20);
        now = server_open_descriptors(server);
    }
    return now;
}

SERVER_TEST(closes_every_connection_it_accepted)
{
    static const char bad_request[] = "GET / HTTP/1.1\r\n\r\n"; /* no Host: 400 */
    const char *const args[] = {"--workers", "2", "--delay-ms", "0", "--quiet", NULL};
    struct server mine;
    struct wave wave;
    struct exchange got;

    start_yours(&mine, args);
    pause_ms(100);
    int before = server_open_descriptors(&mine);
    run_wave(&mine, 10, GET_HELLO, 5000, &wave);
    close(connect_silently(&mine)); /* ApacheBench's empty connection */
    exchange(mine.port, bad_request, strlen(bad_request), NULL, ANSWER_MS, &got);
    exchange_free(&got);
    int after = settled_descriptors(&mine, before);
    check(after == before,
          "Before any client your server had %d file descriptors open; after 12 connections "
          "(ten requests, an empty connection and a bad request), all answered and closed by "
          "the clients, it has %d (/proc/PID/fd).\nExpected the same number: every accepted "
          "socket is closed exactly once, by the job that serves it, or by the main thread "
          "when the pool refuses it (NOTES.md section 2.7).%s",
          before, after, said(&mine));
}

/* ==================== stage 5: the edge cases ==================== */

/* Your server.c, linked with tests/refusing_pool.c instead of your pool:
 * a pool that refuses every second job (the 2nd, 4th, ...). */
static void start_yours_with_a_refusing_pool(struct server *server, const char *const args[])
{
    start_server(server, "your server (with a test pool that refuses every second job)",
                 program_path(REFUSING_UNDER_TEST_ENV), args);
}

/* Connection k (from 1) is the k-th job submitted: refused when k is even. */
static void expect_refused_connection_closed(struct server *server, int k)
{
    struct exchange got;

    exchange(server->port, GET_HELLO, strlen(GET_HELLO), NULL, ANSWER_MS, &got);
    int64_t took = got.finished_ms - got.started_ms;
    if (got.length > 0)
        fail_test("Connection %d was refused by the pool (pool_submit() returned false), yet "
                  "its client got %zu bytes:\n  %s\nExpected: nothing; the main thread closes "
                  "a refused connection at once, without serving it: it only accepts and "
                  "submits (NOTES.md section 2.7).%s",
                  k, got.length, printable(got.bytes, got.length, 200), said(server));
    check(got.end == END_CLOSED || got.end == END_RESET,
          "Connection %d was refused by the pool (pool_submit() returned false). Its client "
          "waited %lld ms and %s.\nExpected: closed at once. A refused job is still yours: "
          "close(client_fd) and free(job), or the client waits for ever and the server keeps "
          "the descriptor (NOTES.md section 2.7).%s",
          k, (long long)took, describe_end(&got), said(server));
    exchange_free(&got);
}

static void expect_accepted_connection_served(struct server *server, int k)
{
    struct exchange got;
    struct parsed_response r;

    exchange(server->port, GET_HELLO, strlen(GET_HELLO), NULL, ANSWER_MS, &got);
    parse_response(got.bytes, got.length, &r);
    check(r.status == 200 && r.complete,
          "Connection %d was accepted by the pool (pool_submit() returned true), and its "
          "client got status %d, %s.%s", k, r.status, describe_end(&got), said(server));
    exchange_free(&got);
}

SERVER_TEST(closes_each_connection_the_pool_refuses)
{
    enum { CONNECTIONS = 6 };
    const char *const args[] = {"--workers", "2", "--delay-ms", "0", "--quiet", NULL};
    struct server mine;

    start_yours_with_a_refusing_pool(&mine, args);
    pause_ms(100);
    int before = server_open_descriptors(&mine);
    for (int k = 1; k <= CONNECTIONS; k++) {
        if (k % 2 == 0)
            expect_refused_connection_closed(&mine, k);
        else
            expect_accepted_connection_served(&mine, k);
    }
    int after = settled_descriptors(&mine, before);
    check(after == before,
          "The pool refused %d of %d connections. Before them your server had %d file "
          "descriptors open, after them %d (/proc/PID/fd).\nExpected the same number: the "
          "main thread closes each connection the pool refuses (NOTES.md section 2.7).%s",
          CONNECTIONS / 2, CONNECTIONS, before, after, said(&mine));
    ask_to_stop(&mine);
    expect_clean_exit(&mine, wait_for_exit(&mine, 3000), 3000,
                      "The pool refused 3 of 6 connections (a test double of the pool refuses "
                      "every second job); the server closed them; then SIGTERM. Each refused "
                      "job's parcel (struct connection_job, from malloc) is freed by the main "
                      "thread, since no worker will ever free it (NOTES.md section 2.7).");
}
