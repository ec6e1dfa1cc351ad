/* Step 1's own tests: the serial shape. The wire, shutdown and flags tests
 * that every step shares are in server_tests.c, compiled into the same
 * executable. */
#include <stdio.h>
#include <string.h>

#include "server_tests.h"

enum { STAIRCASE_CLIENTS = 5, STAIRCASE_DELAY_MS = 200 };

/* Client k (from 1) of a serial server finishes at about k × D. Returns NULL
 * or a description of the first client that broke the staircase. */
static const char *staircase_break(const struct wave *wave, int delay_ms)
{
    static char why[600];

    for (int k = 1; k <= wave->clients; k++) {
        int64_t at = wave->finished_ms[k - 1];
        if (wave->status[k - 1] != 200) {
            snprintf(why, sizeof why, "a client got status %d instead of 200",
                     wave->status[k - 1]);
            return why;
        }
        if (at < (k - 0.5) * delay_ms) {
            snprintf(why, sizeof why,
                     "client %d finished at %lld ms, expected about %d ms (%d x %d ms): is this "
                     "still one thread serving one client at a time?",
                     k, (long long)at, k * delay_ms, k, delay_ms);
            return why;
        }
        if (at > k * delay_ms + 1500) {
            snprintf(why, sizeof why,
                     "client %d finished at %lld ms, expected about %d ms: something waits "
                     "far longer than the delay (a poll without a short timeout?)",
                     k, (long long)at, k * delay_ms);
            return why;
        }
    }
    return NULL;
}
/* ==================== stage 2: the staircase ==================== */

SERVER_TEST(serves_five_clients_one_after_another)
{
    const char *const args[] = {"--delay-ms", "200", NULL};
    struct server mine, theirs;
    struct wave wave_mine, wave_theirs;
    const char *why;

    start_yours(&mine, args);
    run_wave(&mine, STAIRCASE_CLIENTS, GET_HELLO, 5000, &wave_mine);
    if ((why = staircase_break(&wave_mine, STAIRCASE_DELAY_MS)) != NULL)
        fail_test("%d clients connected at once to a server whose requests take %d ms each.\n"
                  "Expected a staircase: they finish one after another, at about 200, 400, 600, "
                  "800 and 1000 ms (NOTES.md section 1.3).\nGot (ms):%s\nThat is: %s%s",
                  STAIRCASE_CLIENTS, STAIRCASE_DELAY_MS, finish_times(&wave_mine), why,
                  said(&mine));
    stop_server(&mine, 3000);

    start_reference(&theirs, args);
    run_wave(&theirs, STAIRCASE_CLIENTS, GET_HELLO, 5000, &wave_theirs);
    check(staircase_break(&wave_theirs, STAIRCASE_DELAY_MS) == NULL,
          "The reference server broke the staircase too (ms:%s): is the machine overloaded?",
          finish_times(&wave_theirs));
    double ratio = (double)wave_mine.finished_ms[STAIRCASE_CLIENTS - 1] /
                   (double)wave_theirs.finished_ms[STAIRCASE_CLIENTS - 1];
    check(ratio > 0.75 && ratio < 1.5,
          "Your last client finished at %lld ms, the reference's at %lld ms, in the same run: "
          "the ratio %.2f should be close to 1.",
          (long long)wave_mine.finished_ms[STAIRCASE_CLIENTS - 1],
          (long long)wave_theirs.finished_ms[STAIRCASE_CLIENTS - 1], ratio);
}

SERVER_TEST(runs_on_a_single_thread)
{
    const char *const args[] = {"--delay-ms", "300", NULL};
    struct server mine;
    struct wave wave;

    start_yours(&mine, args);
    run_wave(&mine, 3, GET_HELLO, 5000, &wave);
    if (wave.status[0] != 200)
        fail_test("Three clients got no 200 response (first: status %d), so the thread count "
                  "could not be watched while the server worked.%s",
                  wave.status[0], said(&mine));
    check(wave.peak_threads == 1,
          "While serving three clients, your server had %d threads (read from "
          "/proc/PID/status). Step 1 is the one-waiter restaurant: one thread that serves one "
          "client at a time (NOTES.md section 1.1). Threads come in step 2.%s",
          wave.peak_threads, said(&mine));
}

