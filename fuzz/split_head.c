/* Fuzz target split_head: the parser's verdict must not depend on how the
 * bytes arrived.
 *
 * A server parses what it has after every read (step 1's read_request_head(),
 * step 3's start_next_request()), and after a complete head it parses what
 * follows as the next, pipelined, request. So for a stream of bytes, the
 * sequence of verdicts (each head's length, then the final error status or
 * "partial") must be the same whether the stream comes at once or in pieces:
 *   - pieces of any size, the buffer growing without bound;
 *   - pieces into an 8 KiB buffer, as the servers read (never more than
 *     HTTP_HEAD_LIMIT unconsumed bytes: a full buffer must have a verdict).
 * Both are compared with the whole stream parsed at once.
 *
 * Input layout: byte 0 says how many cuts (0 to 31), then two bytes per cut
 * (little-endian offsets, taken modulo the stream's length + 1), then the
 * stream. Every parse sees an exact-size heap copy of its bytes, so that
 * AddressSanitizer catches a read past what has arrived.
 *
 * Run it: ./workbook fuzz --target split_head [--seconds N]
 * Reproduce a finding: build-fuzz/fuzz_split_head build-fuzz/findings/split_head/crash-...
 * Every finding becomes a regression test in tests/common_test.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_checks.h"
#include "http.h"

enum { MAX_CUTS = 32, MAX_VERDICTS = 64 };

struct verdicts {
    ssize_t result[MAX_VERDICTS];
    int status[MAX_VERDICTS];
    const char *cause[MAX_VERDICTS];
    int count;
};

/* parse_request_head() on an exact-size heap copy of bytes[0..length). */
static ssize_t parse_copy(const uint8_t *bytes, size_t length, struct http_request *request)
{
    char *copy = malloc(length > 0 ? length : 1);

    if (copy == NULL)
        abort();
    memcpy(copy, bytes, length);
    ssize_t result = parse_request_head(copy, length, request);
    check_verdict(copy, length, result, request);
    free(copy);
    return result;
}

static void record(struct verdicts *verdicts, ssize_t result, const struct http_request *request)
{
    if (verdicts->count == MAX_VERDICTS)
        return;
    verdicts->result[verdicts->count] = result;
    verdicts->status[verdicts->count] = result == PARSE_ERROR ? request->error_status : 0;
    verdicts->cause[verdicts->count] = result == PARSE_ERROR ? request->error_cause : "";
    verdicts->count++;
}

/* The stream's bytes arrive up to each of arrivals[0..count) in turn (the
 * last is the whole stream). After each arrival, parse as a server does:
 * head after head, until one is partial or an error. `cap` limits what a
 * server holds unconsumed (0: no limit). */
static void parse_as_it_arrives(const uint8_t *stream, const size_t *arrivals, int count,
                                size_t cap, struct verdicts *verdicts)
{
    struct http_request request;
    size_t start = 0;

    verdicts->count = 0;
    for (int i = 0; i < count; i++) {
        for (;;) {
            size_t held = arrivals[i] - start;
            if (cap > 0 && held > cap)
                held = cap;
            ssize_t result = parse_copy(stream + start, held, &request);
            if (result == PARSE_PARTIAL) {
                if (i == count - 1)
                    record(verdicts, result, &request); /* the stream ended mid-head */
                break;
            }
            record(verdicts, result, &request);
            if (result == PARSE_ERROR || verdicts->count == MAX_VERDICTS)
                return; /* a server closes after an error */
            start += (size_t)result;
        }
    }
}

static int compare_offsets(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* The arrival points: the cuts, sorted, then the stream's end. */
static int arrivals_from(const uint8_t *data, size_t size, size_t length, size_t *arrivals)
{
    int cuts = size > 0 ? data[0] % MAX_CUTS : 0;
    int count = 0;

    for (int i = 0; i < cuts && 1 + 2 * (size_t)i + 1 < size; i++) {
        size_t offset = (size_t)data[1 + 2 * i] | (size_t)data[2 + 2 * i] << 8;
        arrivals[count++] = offset % (length + 1);
    }
    qsort(arrivals, (size_t)count, sizeof arrivals[0], compare_offsets);
    arrivals[count++] = length;
    return count;
}

static void expect_same(const struct verdicts *whole, const struct verdicts *pieces,
                        const char *how)
{
    int count = whole->count > pieces->count ? whole->count : pieces->count;

    for (int i = 0; i < count; i++) {
        if (i >= whole->count || i >= pieces->count || whole->result[i] != pieces->result[i] ||
            whole->status[i] != pieces->status[i] || strcmp(whole->cause[i], pieces->cause[i]))
            fuzz_fail("%s: verdict %d differs: at once %zd (status %d, %s), in pieces %zd "
                      "(status %d, %s)", how, i + 1,
                      i < whole->count ? whole->result[i] : 0,
                      i < whole->count ? whole->status[i] : 0,
                      i < whole->count ? whole->cause[i] : "none",
                      i < pieces->count ? pieces->result[i] : 0,
                      i < pieces->count ? pieces->status[i] : 0,
                      i < pieces->count ? pieces->cause[i] : "none");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t header = size > 0 ? 1 + 2 * (size_t)(data[0] % MAX_CUTS) : 0;
    size_t arrivals[MAX_CUTS + 1];
    struct verdicts at_once, in_pieces;

    if (header > size)
        header = size;
    const uint8_t *stream = data + header;
    size_t length = size - header;
    int count = arrivals_from(data, header, length, arrivals);

    parse_as_it_arrives(stream, &length, 1, 0, &at_once);
    parse_as_it_arrives(stream, arrivals, count, 0, &in_pieces);
    expect_same(&at_once, &in_pieces, "pieces into a growing buffer");
    parse_as_it_arrives(stream, arrivals, count, HTTP_HEAD_LIMIT, &in_pieces);
    expect_same(&at_once, &in_pieces, "pieces into an 8 KiB buffer");
    return 0;
}
