/* What every fuzz target of fuzz/ checks about the parser's answers.
 *
 * A broken invariant prints what was expected and what came, then aborts:
 * libFuzzer counts that as a crash and saves the input under
 * build-fuzz/findings/TARGET/. */
#ifndef FUZZ_CHECKS_H
#define FUZZ_CHECKS_H

#include <stddef.h>
#include <sys/types.h>

#include "http.h"

/* Prints the message (printf-style) and aborts. */
void fuzz_fail(const char *format, ...) __attribute__((format(printf, 1, 2), noreturn));

/* The result of parse_request_head(input, size, request) is one of the
 * documented ones: partial (only under the limit), an error with a
 * documented status and a cause, or a head length within the input. */
void check_verdict(const char *input, size_t size, ssize_t result,
                   const struct http_request *request);

/* A complete head of `length` bytes: its fields point inside it and obey
 * the rules the parser enforces (tokens, versions, Host, framing). */
void check_complete_head(const char *head, size_t length, const struct http_request *request);

/* The same head parsed from exactly its own bytes (a fresh heap block)
 * gives the same length and the same fields. */
void check_same_head_alone(const char *head, size_t length, const struct http_request *request);

/* The response to a valid head, and to a refused one, serialise within
 * their buffers, and the cursor hands out exactly their bytes. */
void check_response_of(const struct http_request *request);
void check_error_response(const struct http_request *request);

/* Whether two verdicts are the same: the same head length, or PARSE_ERROR
 * with the same status (and cause), or both partial. */
int same_verdict(ssize_t a, const struct http_request *request_a, ssize_t b,
                 const struct http_request *request_b);

#endif
