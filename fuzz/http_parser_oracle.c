/* The second opinion of fuzz/http_parser_oracle.h, from libhttp-parser. */
#include "http_parser_oracle.h"

#include <string.h>
#include <strings.h>

#include <http_parser.h>

struct oracle_state {
    struct oracle_head *head;
    const char *field;      /* the header name being read */
    size_t field_length;
};

static int on_url(http_parser *parser, const char *at, size_t length)
{
    struct oracle_state *state = parser->data;

    /* One call for the whole buffer: the pieces of the URL are contiguous. */
    if (state->head->url == NULL)
        state->head->url = at;
    state->head->url_length = (size_t)(at + length - state->head->url);
    return 0;
}

static int on_header_field(http_parser *parser, const char *at, size_t length)
{
    struct oracle_state *state = parser->data;

    if (state->field != NULL && state->field + state->field_length == at)
        state->field_length += length; /* the same name, continued */
    else
        state->field = at, state->field_length = length;
    return 0;
}

static int on_header_value(http_parser *parser, const char *at, size_t length)
{
    struct oracle_state *state = parser->data;

    (void)at;
    (void)length;
    if (state->field != NULL && state->field_length == 4 &&
        strncasecmp(state->field, "host", 4) == 0)
        state->head->host_count++;
    state->field = NULL; /* the next field callback starts a new name */
    return 0;
}

static int on_headers_complete(http_parser *parser)
{
    struct oracle_state *state = parser->data;
    struct oracle_head *head = state->head;

    head->verdict = ORACLE_COMPLETE;
    head->method_name = http_method_str((enum http_method)parser->method);
    head->http_major = parser->http_major;
    head->http_minor = parser->http_minor;
    head->keep_alive = http_should_keep_alive(parser) != 0;
    head->has_content_length = (parser->flags & F_CONTENTLENGTH) != 0;
    head->content_length = parser->content_length;
    head->has_transfer_encoding = parser->uses_transfer_encoding != 0;
    head->upgrade = parser->upgrade != 0 || (parser->flags & F_UPGRADE) != 0;
    /* The head is all we compare: stop here, before any body. */
    http_parser_pause(parser, 1);
    return 0;
}

void oracle_parse(const char *bytes, size_t length, struct oracle_head *head)
{
    http_parser parser;
    http_parser_settings settings;
    struct oracle_state state = {.head = head};

    memset(head, 0, sizeof *head);
    http_parser_settings_init(&settings);
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    http_parser_init(&parser, HTTP_REQUEST);
    parser.data = &state;
    http_parser_execute(&parser, &settings, bytes, length);
    enum http_errno error = HTTP_PARSER_ERRNO(&parser);
    if (head->verdict == ORACLE_COMPLETE)
        return;
    if (error != HPE_OK && error != HPE_PAUSED) {
        head->verdict = ORACLE_ERROR;
        head->error_name = http_errno_name(error);
    }
}

bool oracle_knows_method(const char *name, size_t length)
{
    /* http_method_str() names every method it knows, then "<unknown>". */
    for (int method = 0;; method++) {
        const char *known = http_method_str((enum http_method)method);
        if (strcmp(known, "<unknown>") == 0)
            return false;
        if (strlen(known) == length && memcmp(known, name, length) == 0)
            return true;
    }
}
