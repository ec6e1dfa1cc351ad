/* Fuzz target parse_head: common/http.c's parse_request_head() on arbitrary bytes.
 *
 * What it checks, for every input libFuzzer makes (besides what AddressSanitizer
 * and UBSan catch: a read past the input, which is copied into a heap block of
 * exactly its size, or undefined behaviour):
 *   - the result is PARSE_PARTIAL (and then fewer than HTTP_HEAD_LIMIT bytes
 *     were given: a full buffer must have a verdict), or PARSE_ERROR with one
 *     of the statuses http.h documents (400, 414, 431, 505) and a cause, or
 *     the length of a head that lies within the input and the limit and ends
 *     with its blank line;
 *   - a complete head parsed again from exactly its own bytes gives the same
 *     length and the same fields (nothing after the blank line mattered), and
 *     its fields point inside it and obey the rules the parser enforces;
 *   - its response (common/response.c) serialises within its buffers, and
 *     the cursor hands out exactly total_length bytes.
 *
 * Run it: ./workbook fuzz --target parse_head [--seconds N]
 * Reproduce a finding: build-fuzz/fuzz_parse_head build-fuzz/findings/parse_head/crash-...
 * Every finding becomes a regression test in tests/common_test.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_checks.h"
#include "http.h"
#include "response.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size heap copy: ASan then sees a read one byte past the input. */
    char *input = malloc(size > 0 ? size : 1);
    struct http_request request;

    if (input == NULL)
        return 0;
    memcpy(input, data, size);
    ssize_t result = parse_request_head(input, size, &request);
    check_verdict(input, size, result, &request);
    if (result > 0) {
        check_complete_head(input, (size_t)result, &request);
        check_same_head_alone(input, (size_t)result, &request);
        check_response_of(&request);
    } else if (result == PARSE_ERROR) {
        check_error_response(&request);
    }
    free(input);
    return 0;
}
