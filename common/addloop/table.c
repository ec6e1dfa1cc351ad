#include "table.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The article's figures (Rust, 1 000 000 additions, its own machine). */
static const uint64_t ARTICLE_TOTAL_NS = 13503041;
static const char ARTICLE_NS_PER_ADDITION[] = "13.50";
static const uint64_t ARTICLE_CHECKSUM = 499999500000u;
static const uint64_t ARTICLE_ADDITIONS_PER_WAIT = 1481;
static const double ARTICLE_WAIT_NS = 20000; /* "a 20 µs network wait" */

enum { LABEL_WIDTH = 30, COLUMN_WIDTH = 22, CELL_SIZE = 64 };

/* One row: a label and three cells (article, unoptimised, optimised). */
struct row {
    const char *label;
    char cells[3][CELL_SIZE];
};

/* Characters, not bytes: "µ" takes two bytes and one column. */
static size_t display_width(const char *text)
{
    size_t width = 0;

    for (; *text != '\0'; text++)
        if (((unsigned char)*text & 0xC0) != 0x80)
            width++;
    return width;
}

static void print_padded(const char *text, size_t width, bool align_right)
{
    size_t used = display_width(text);
    size_t padding = used < width ? width - used : 0;

    if (align_right)
        printf("%*s%s", (int)padding, "", text);
    else
        printf("%s%*s", text, (int)padding, "");
}

static void print_row(const struct row *row)
{
    print_padded(row->label, LABEL_WIDTH, false);
    for (int column = 0; column < 3; column++)
        print_padded(row->cells[column], COLUMN_WIDTH, true);
    printf("\n");
}

/* 13503041 -> "13 503 041" */
static void group_digits(char *text, size_t size, uint64_t value)
{
    char digits[32];
    int length = snprintf(digits, sizeof digits, "%" PRIu64, value);
    size_t used = 0;

    for (int i = 0; i < length && used + 2 < size; i++) {
        if (i > 0 && (length - i) % 3 == 0)
            text[used++] = ' ';
        text[used++] = digits[i];
    }
    text[used] = '\0';
}

static void group_rounded(char *text, size_t size, double value)
{
    if (value <= 0) {
        snprintf(text, size, "-");
        return;
    }
    group_digits(text, size, (uint64_t)(value + 0.5));
}

static void decimal(char *text, size_t size, double value, int places)
{
    if (value <= 0)
        snprintf(text, size, "-");
    else
        snprintf(text, size, "%.*f", places, value);
}

/* "-O0" for step4_reference_O0, and so on; otherwise what gcc was told. */
static const char *build_label(const struct build_figures *figures)
{
    size_t length = strlen(figures->program);

    if (length > 3 && strcmp(figures->program + length - 3, "_O0") == 0)
        return "-O0";
    if (length > 3 && strcmp(figures->program + length - 3, "_O2") == 0)
        return "-O2";
    return figures->optimised ? "optimised" : "unoptimised";
}

static double additions_in(double wait_ns, const struct build_figures *figures)
{
    double each = ns_per_addition(figures);

    return each > 0 ? wait_ns / each : 0;
}

/* Fills column `column` of the rows with one build's figures. */
static void fill_build_column(struct row *rows, int column, const struct build_figures *figures,
                              const struct round_trip_figures *trip)
{
    char low[CELL_SIZE / 2 - 4], high[CELL_SIZE / 2 - 4]; /* both fit in one cell */

    snprintf(rows[0].cells[column], CELL_SIZE, "ours, %s", build_label(figures));
    group_digits(rows[1].cells[column], CELL_SIZE, figures->total_ns_median);
    group_digits(low, sizeof low, figures->total_ns_min);
    group_digits(high, sizeof high, figures->total_ns_max);
    snprintf(rows[2].cells[column], CELL_SIZE, "%s .. %s", low, high);
    decimal(rows[3].cells[column], CELL_SIZE, ns_per_addition(figures), 3);
    group_digits(rows[4].cells[column], CELL_SIZE, figures->checksum);
    decimal(rows[5].cells[column], CELL_SIZE, figures->ns_per_cycle, 3);
    decimal(rows[6].cells[column], CELL_SIZE, cycles_per_addition(figures), 2);
    group_rounded(rows[7].cells[column], CELL_SIZE, additions_in(ARTICLE_WAIT_NS, figures));
    group_rounded(rows[8].cells[column], CELL_SIZE,
                  trip->measured ? additions_in((double)trip->median_ns, figures) : 0);
}

static void fill_missing_column(struct row *rows, int column, int row_count, const char *header)
{
    snprintf(rows[0].cells[column], CELL_SIZE, "%s", header);
    for (int row = 1; row < row_count; row++)
        snprintf(rows[row].cells[column], CELL_SIZE, "-");
}

static void fill_article_column(struct row *rows)
{
    snprintf(rows[0].cells[0], CELL_SIZE, "article (Rust)");
    group_digits(rows[1].cells[0], CELL_SIZE, ARTICLE_TOTAL_NS);
    snprintf(rows[2].cells[0], CELL_SIZE, "(one run)");
    snprintf(rows[3].cells[0], CELL_SIZE, "%s", ARTICLE_NS_PER_ADDITION);
    group_digits(rows[4].cells[0], CELL_SIZE, ARTICLE_CHECKSUM);
    snprintf(rows[5].cells[0], CELL_SIZE, "-");
    snprintf(rows[6].cells[0], CELL_SIZE, "-");
    group_digits(rows[7].cells[0], CELL_SIZE, ARTICLE_ADDITIONS_PER_WAIT);
    snprintf(rows[8].cells[0], CELL_SIZE, "-");
}

static void print_round_trip_line(const struct round_trip_figures *trip)
{
    if (!trip->measured) {
        printf("round trip: not measured (see the messages above)\n");
        return;
    }
    printf("round trip: median %.1f µs, p99 %.1f µs over %u samples: one byte over loopback\n",
           (double)trip->median_ns / 1000.0, (double)trip->p99_ns / 1000.0, trip->samples);
    if (trip->echo_cpu == trip->timer_cpu)
        printf("  TCP to another process and back, both on CPU %d\n", trip->echo_cpu);
    else
        printf("  TCP to another process and back, echo on CPU %d, timer on CPU %d\n",
               trip->echo_cpu, trip->timer_cpu);
}

static void print_build_line(const struct build_figures *figures)
{
    printf("%s: %s, %s, %s\n", build_label(figures), figures->program, figures->compiler,
           figures->optimised ? "with optimisation" : "without optimisation");
}

static void print_notes(const struct build_figures *own, const struct build_figures *other,
                        const char *why_no_other)
{
    char additions[CELL_SIZE];

    group_digits(additions, sizeof additions, own->additions);
    printf("\n%s dependent additions, median of %u runs (after one untimed run).\n", additions,
           own->runs);
    printf("clock: CLOCK_MONOTONIC, resolution %" PRIu64 " ns\n", own->clock_resolution_ns);
    if (own->ns_per_cycle > 0)
        printf("cycle: %.3f ns by a chain of dependent adds, so this core runs at about "
               "%.2f GHz\n",
               own->ns_per_cycle, 1.0 / own->ns_per_cycle);
    print_round_trip_line(&own->round_trip);
    if (other == NULL) {
        print_build_line(own);
        printf("the other build: not measured: %s\n", why_no_other);
    } else {
        print_build_line(own->optimised ? other : own); /* in the columns' order */
        print_build_line(own->optimised ? own : other);
    }
    if (!own->checksums_agree || (other != NULL && !other->checksums_agree))
        printf("warning: the runs of one build did not all give the same checksum\n");
}

void print_table(const struct build_figures *own, const struct build_figures *other,
                 const char *why_no_other)
{
    struct row rows[] = {
        {.label = ""},
        {.label = "total ns (median)"},
        {.label = "  fastest .. slowest run"},
        {.label = "ns per addition"},
        {.label = "checksum"},
        {.label = "ns per cycle (add chain)"},
        {.label = "cycles per addition"},
        {.label = "additions in a 20 µs wait"},
        {.label = "additions in one round trip"},
    };
    int row_count = (int)(sizeof rows / sizeof rows[0]);
    int own_column = own->optimised ? 2 : 1;
    int other_column = 3 - own_column;

    printf("Step 4: how many additions fit in one wait\n\n");
    fill_article_column(rows);
    fill_build_column(rows, own_column, own, &own->round_trip);
    if (other != NULL)
        fill_build_column(rows, other_column, other, &own->round_trip);
    else
        fill_missing_column(rows, other_column, row_count,
                            own->optimised ? "ours, -O0" : "ours, -O2");
    for (int row = 0; row < row_count; row++)
        print_row(&rows[row]);
    print_notes(own, other, why_no_other);
}
