/* Fuzz target differential: common/http.c against an established parser,
 * Debian's libhttp-parser (http_parser.h, Node.js's parser before llhttp),
 * on the same request head.
 *
 * Both parse the same bytes. They must agree on the verdict (a complete
 * head, an error, or "read more") and, for a head both accept, on where it
 * ends and on its fields: method, target, version, Host count, keep-alive,
 * Content-Length and Transfer-Encoding. Where they disagree BY DESIGN, the
 * table design_rules[] below names the case and the RFC rule behind our
 * choice; any other disagreement is a finding (the input is saved, and the
 * message says which side said what). At exit the target prints how often
 * each designed disagreement was met, so a run shows which were exercised.
 *
 * Run it: ./workbook fuzz --target differential [--seconds N]
 * Reproduce a finding: build-fuzz/fuzz_differential build-fuzz/findings/differential/crash-...
 * Every finding becomes a regression test in tests/common_test.c. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_checks.h"
#include "http.h"
#include "http_parser_oracle.h"

/* The two opinions on one input. */
struct comparison {
    const char *input;
    size_t size;
    ssize_t ours;                 /* parse_request_head() */
    struct http_request request;
    struct oracle_head theirs;    /* on the same bytes: the head alone if ours is complete */
    const char *disagreement;     /* what differs, for messages */
};

/* ------------------------------------------------- designed disagreements */

/* Ours rejects with this cause, and theirs has not (yet) rejected it. */
static bool ours_rejects_for(const struct comparison *c, const char *cause)
{
    return c->ours == PARSE_ERROR && c->theirs.verdict != ORACLE_ERROR &&
           strcmp(c->request.error_cause, cause) == 0;
}

static bool theirs_rejects_with(const struct comparison *c, const char *error_name)
{
    return c->ours > 0 && c->theirs.verdict == ORACLE_ERROR &&
           strcmp(c->theirs.error_name, error_name) == 0;
}

struct design_rule {
    const char *what;
    const char *why;
    bool (*applies)(const struct comparison *c);
    unsigned long met;
};

/* Ours rejects (theirs accepts the head, or has not decided yet): */

static bool host_rule(const struct comparison *c)
{
    return ours_rejects_for(c, "HTTP/1.1 needs exactly one Host header") ||
           ours_rejects_for(c, "more than one Host header");
}

static bool version_505(const struct comparison *c)
{
    return ours_rejects_for(c, "only HTTP/1.x is supported");
}

static bool head_limit(const struct comparison *c)
{
    return ours_rejects_for(c, "request line longer than 8192 bytes") ||
           ours_rejects_for(c, "request head longer than 8192 bytes");
}

static bool obsolete_folding(const struct comparison *c)
{
    return ours_rejects_for(c, "obsolete line folding in a header");
}

/* http_parser built without HTTP_PARSER_STRICT (as Debian builds it) lets a
 * space into header names, checks neither the LF after a CR nor the letters
 * of "HTTP", and takes control characters in values and targets. */
static bool lenient_build(const struct comparison *c)
{
    return ours_rejects_for(c, "whitespace before the colon of a header") ||
           ours_rejects_for(c, "malformed header name") ||
           ours_rejects_for(c, "bare CR in a header") ||
           ours_rejects_for(c, "bare CR in the request line") ||
           ours_rejects_for(c, "control character in a header value") ||
           ours_rejects_for(c, "malformed request target") ||
           ours_rejects_for(c, "malformed HTTP version");
}

static bool request_line_shape(const struct comparison *c)
{
    return ours_rejects_for(c, "malformed request line") ||
           ours_rejects_for(c, "missing request target");
}

static bool empty_content_length(const struct comparison *c)
{
    return ours_rejects_for(c, "invalid Content-Length");
}

/* Ours accepts the head (and answers it), theirs rejects it: */

static bool unknown_method(const struct comparison *c)
{
    return theirs_rejects_with(c, "HPE_INVALID_METHOD") &&
           !oracle_knows_method(c->request.method_name.start, c->request.method_name.length);
}

static bool any_visible_target(const struct comparison *c)
{
    return theirs_rejects_with(c, "HPE_INVALID_URL");
}

static bool same_length_repeated(const struct comparison *c)
{
    return (theirs_rejects_with(c, "HPE_UNEXPECTED_CONTENT_LENGTH") ||
            theirs_rejects_with(c, "HPE_INVALID_CONTENT_LENGTH")) &&
           c->request.has_content_length;
}

/* Both accept, and read a field differently: */

static bool connection_list(const struct comparison *c)
{
    const struct http_request *r = &c->request;

    if (c->ours <= 0 || strcmp(c->disagreement, "keep-alive") != 0)
        return false;
    /* A close it passed over, or a 1.0 keep-alive behind an empty element. */
    return (r->connection_close && c->theirs.keep_alive) ||
           (r->version_minor == 0 && r->connection_keep_alive && !r->connection_close &&
            !c->theirs.keep_alive);
}

/* Whether a header line's name starts with `prefix` (any case) and goes on. */
static bool has_longer_field_name(const struct comparison *c, const char *prefix)
{
    size_t length = strlen(prefix);

    for (const char *line = c->input; line != NULL && line < c->input + c->ours;) {
        const char *colon = memchr(line, ':', (size_t)(c->input + c->ours - line));
        const char *end = memchr(line, '\n', (size_t)(c->input + c->ours - line));
        if (colon != NULL && (end == NULL || colon < end) && (size_t)(colon - line) > length &&
            strncasecmp(line, prefix, length) == 0)
            return true;
        line = end != NULL ? end + 1 : NULL;
    }
    return false;
}

static bool transfer_encoding_prefix(const struct comparison *c)
{
    return c->ours > 0 && strcmp(c->disagreement, "Transfer-Encoding") == 0 &&
           !c->request.has_transfer_encoding && c->theirs.has_transfer_encoding &&
           has_longer_field_name(c, "transfer-encoding");
}

/* Timing: */

static bool whole_lines(const struct comparison *c)
{
    return c->ours == PARSE_PARTIAL && c->theirs.verdict == ORACLE_ERROR;
}

static struct design_rule design_rules[] = {
    {"HTTP/1.1 without exactly one Host, or two Hosts: 400",
     "RFC 9112 section 3.2: a server MUST answer 400 to a 1.1 request without Host, and to "
     "any request with more than one; http_parser does not look", host_rule, 0},
    {"a major version other than 1 (HTTP/2.0, HTTP/0.9): 505",
     "RFC 9110 sections 2.5 and 15.6.6; http_parser takes any digit", version_505, 0},
    {"a head over 8 KiB: 414 or 431",
     "our limit (RFC 9112 section 3: at least 8000 octets of request line; 414 and RFC 6585's "
     "431); http_parser's is 80 KiB", head_limit, 0},
    {"obsolete line folding: 400",
     "RFC 9112 section 5.2: a server MUST reject obs-fold with 400 (or unfold it); "
     "http_parser unfolds", obsolete_folding, 0},
    {"a space in a field name or before its colon, a bare CR, a control character, a "
     "misspelt HTTP-name: 400",
     "RFC 9112 sections 2.2, 2.3, 3.2 and 5.1, RFC 9110 sections 5.1 and 5.5; Debian builds "
     "http_parser without HTTP_PARSER_STRICT, which skips these checks", lenient_build, 0},
    {"HTTP/0.9's request line without a version, or two spaces in the request line: 400",
     "RFC 9112 section 3 (single SP; HTTP/0.9 is not supported, appendix C.1); http_parser "
     "takes both", request_line_shape, 0},
    {"an empty Content-Length: 400", "RFC 9110 section 8.6: Content-Length = 1*DIGIT",
     empty_content_length, 0},
    {"a method http_parser does not know: ours answers 501",
     "RFC 9110 section 9.1: a method is any token; an unknown one is answered 501",
     unknown_method, 0},
    {"a request target that is not a URI: ours answers it",
     "ours checks only that the target is visible bytes (RFC 9112 section 3.2) and answers "
     "any path alike; http_parser parses the URI grammar", any_visible_target, 0},
    {"Content-Length repeated with the same value, or as a list of one value",
     "RFC 9110 section 8.6 lets a recipient accept identical values; ours then refuses the "
     "body (413) all the same", same_length_repeated, 0},
    {"the Connection list read to its end: close wins, empty elements are skipped",
     "RFC 9112 section 9.3 (close ends the connection) and RFC 9110 section 5.6.1 (empty "
     "list elements are ignored); http_parser keeps a 1.0 connection whenever keep-alive is "
     "present, and stops reading the list at an empty element or one that is not a token",
     connection_list, 0},
    {"a field name that only starts with Transfer-Encoding",
     "field names are whole tokens (RFC 9110 section 5.1); http_parser 2.9.4 flags "
     "Transfer-Encoding once the prefix matched (its defect)", transfer_encoding_prefix, 0},
    {"ours reads to the end of a line before judging it",
     "the verdict comes later, never differently (fuzz/split_head.c proves ours never changes "
     "it); http_parser judges byte by byte", whole_lines, 0},
    {NULL, NULL, NULL, 0},
};

static void report_design_rules(void)
{
    fprintf(stderr, "differential: designed disagreements met in this run:\n");
    for (struct design_rule *rule = design_rules; rule->what != NULL; rule++)
        fprintf(stderr, "  %8lu  %s\n", rule->met, rule->what);
}

/* ------------------------------------------------------------ comparing */

static const char *compare_fields(const struct comparison *c)
{
    const struct http_request *r = &c->request;
    const struct oracle_head *t = &c->theirs;

    if (t->method_name == NULL || strlen(t->method_name) != r->method_name.length ||
        memcmp(t->method_name, r->method_name.start, r->method_name.length) != 0)
        return "the method";
    if (t->url != r->target.start || t->url_length != r->target.length)
        return "the request target";
    if (t->http_major != 1 || (t->http_minor >= 1 ? 1 : 0) != r->version_minor)
        return "the version";
    if (t->host_count != r->host_count)
        return "the number of Host fields";
    if (t->keep_alive != request_wants_keep_alive(r))
        return "keep-alive";
    if (t->has_content_length != r->has_content_length ||
        (r->has_content_length && t->content_length != r->content_length))
        return "Content-Length";
    if (t->has_transfer_encoding != r->has_transfer_encoding)
        return "Transfer-Encoding";
    return NULL;
}

/* Fills c->theirs and says how the two differ (NULL: they agree). */
static const char *compare(struct comparison *c)
{
    if (c->ours > 0) {
        struct oracle_head shorter;
        oracle_parse(c->input, (size_t)c->ours, &c->theirs);
        if (c->theirs.verdict == ORACLE_ERROR)
            return "ours accepts the head, theirs rejects it";
        if (c->theirs.verdict == ORACLE_PARTIAL)
            return "ours ends the head here, theirs reads on";
        oracle_parse(c->input, (size_t)c->ours - 1, &shorter);
        if (shorter.verdict == ORACLE_COMPLETE)
            return "theirs ends the head earlier";
        const char *field = compare_fields(c);
        return field == NULL ? NULL : field;
    }
    oracle_parse(c->input, c->size, &c->theirs);
    if (c->ours == PARSE_ERROR && c->theirs.verdict == ORACLE_COMPLETE)
        return "ours rejects the head, theirs accepts it";
    if (c->ours == PARSE_ERROR && c->theirs.verdict == ORACLE_PARTIAL)
        return "ours rejects, theirs reads on";
    if (c->ours == PARSE_PARTIAL && c->theirs.verdict == ORACLE_COMPLETE)
        return "ours reads on, theirs accepts a head";
    if (c->ours == PARSE_PARTIAL && c->theirs.verdict == ORACLE_ERROR)
        return "ours reads on, theirs rejects";
    return NULL;
}

static void describe_and_fail(const struct comparison *c)
{
    const struct oracle_head *t = &c->theirs;

    fuzz_fail("differential: %s.\n  ours: %zd%s%s%s (status %d)\n  theirs: %s%s, method %s, "
              "HTTP/%d.%d, %d Host, keep-alive %d, Content-Length %d:%llu, "
              "Transfer-Encoding %d\n  input (%zu bytes): %.*s",
              c->disagreement, c->ours, c->ours == PARSE_ERROR ? " error: " : "",
              c->ours == PARSE_ERROR ? c->request.error_cause : "",
              c->ours == PARSE_PARTIAL ? " partial" : "", c->request.error_status,
              t->verdict == ORACLE_COMPLETE ? "complete"
              : t->verdict == ORACLE_ERROR  ? t->error_name
                                            : "partial",
              t->upgrade ? " (upgrade)" : "", t->method_name ? t->method_name : "-",
              t->http_major, t->http_minor, t->host_count, t->keep_alive,
              t->has_content_length, (unsigned long long)t->content_length,
              t->has_transfer_encoding, c->size, c->size < 300 ? (int)c->size : 300, c->input);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool registered;
    struct comparison c = {.size = size};
    char *input = malloc(size > 0 ? size : 1);

    if (!registered) {
        atexit(report_design_rules);
        registered = true;
    }
    if (input == NULL)
        return 0;
    memcpy(input, data, size);
    c.input = input;
    c.ours = parse_request_head(input, size, &c.request);
    c.disagreement = compare(&c);
    if (c.disagreement != NULL) {
        struct design_rule *rule = design_rules;
        while (rule->what != NULL && !rule->applies(&c))
            rule++;
        if (rule->what == NULL)
            describe_and_fail(&c);
        rule->met++;
    }
    free(input);
    return 0;
}
