/* Shared by server_tests.c and each step's own tests, compiled into one
 * executable per step. The build defines SUITE (step1, step2, ...),
 * UNDER_TEST_ENV and REFERENCE_ENV (the variables that name the programs). */
#ifndef TESTS_SERVER_TESTS_H
#define TESTS_SERVER_TESTS_H

#include <criterion/criterion.h>

#include "harness.h"

/* Criterion pastes its arguments into names, which stops macro expansion:
 * one more level of macro lets SUITE expand first. */
#define SERVER_TEST_IN(suite, name) Test(suite, name)
#define SERVER_TEST(name) SERVER_TEST_IN(SUITE, name)
#define SERVER_SUITE_IN(suite, ...) TestSuite(suite, __VA_ARGS__)
#define SERVER_SUITE(...) SERVER_SUITE_IN(SUITE, __VA_ARGS__)

/* How long a request with no delay may take to be answered. The reference
 * answers in a few milliseconds; this leaves room for a busy machine and
 * makes a server that never answers fail in seconds, not minutes. */
enum { ANSWER_MS = 1500 };

extern const char GET_HELLO[];

/* The programs under test and of reference, from the environment. */
const char *yours(void);
const char *reference(void);

/* A GET / on its own thread, for tests that act while it is in flight. */
struct background_exchange {
    int port;
    struct exchange result;
};
void *exchange_in_background(void *job); /* a pthread start routine */

/* Start them, with "your server" / "the reference server" in messages. */
void start_yours(struct server *server, const char *const args[]);
void start_reference(struct server *server, const char *const args[]);

/* SIGTERM, remembered: said() then knows the server was asked to stop. */
void ask_to_stop(struct server *server);

/* server_said(), and, for a server that ended by itself with status 0
 * though nobody asked it to stop, what that means. For every failure. */
const char *said(struct server *server);

/* "NOTES.md section 1.3" (step 1) or "... 2.7" (step 2): where the loop
 * that accepts is explained; and where stopping is. */
const char *loop_section(void);
const char *stop_section(void);

/* After SIGTERM (`situation` says what the test did): the exit status must
 * be 0. Fails the test, naming a leak (AddressSanitizer's status 23), a
 * crash, or a server still running. */
void expect_clean_exit(struct server *server, int status, int waited_ms, const char *situation);

#endif
