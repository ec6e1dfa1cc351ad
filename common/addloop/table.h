/* The one table step 4 prints: the article's figures beside ours, for the
 * unoptimised and the optimised build. */
#ifndef COMMON_ADDLOOP_TABLE_H
#define COMMON_ADDLOOP_TABLE_H

#include "figures.h"

/* own: this build's figures, with the round trip. other: the other build's,
 * or NULL when they could not be had, with the reason in why_no_other. */
void print_table(const struct build_figures *own, const struct build_figures *other,
                 const char *why_no_other);

#endif
