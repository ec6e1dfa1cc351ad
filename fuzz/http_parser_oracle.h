/* A second opinion on a request head: Debian's libhttp-parser (Node.js's
 * former parser, http_parser.h), behind names that do not clash with
 * common/http.h (both define `enum http_method`). */
#ifndef FUZZ_HTTP_PARSER_ORACLE_H
#define FUZZ_HTTP_PARSER_ORACLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum oracle_verdict { ORACLE_PARTIAL, ORACLE_COMPLETE, ORACLE_ERROR };

struct oracle_head {
    enum oracle_verdict verdict;
    const char *error_name;   /* "HPE_INVALID_METHOD", ... when ORACLE_ERROR */
    const char *method_name;  /* "GET", ... once the request line was parsed */
    const char *url;          /* into the caller's bytes; NULL if none seen */
    size_t url_length;
    int http_major;
    int http_minor;
    bool keep_alive;          /* http_should_keep_alive() at the end of the head */
    int host_count;           /* header fields named Host (any case) */
    bool has_content_length;
    uint64_t content_length;
    bool has_transfer_encoding;
    bool upgrade;             /* it stopped at an Upgrade or CONNECT */
};

/* Runs http_parser (as a request parser, one call, the whole buffer) and
 * stops at the end of the head. */
void oracle_parse(const char *bytes, size_t length, struct oracle_head *head);

/* Whether http_parser knows a method of that name. */
bool oracle_knows_method(const char *name, size_t length);

#endif
