/* The table shows both builds of the program (-O0 and -O2): each build runs
 * the other, found beside it, with --machine, and reads its figures. */
#ifndef COMMON_ADDLOOP_OTHER_BUILD_H
#define COMMON_ADDLOOP_OTHER_BUILD_H

#include <stdbool.h>
#include <stddef.h>

#include "figures.h"

/* This executable's full path (argv[0] may be a bare name found on PATH). */
void this_program_path(const char *argv0, char *path, size_t size);

/* Runs the other build of own_path (its name ends in _O2 where ours ends in
 * _O0, or the reverse; same folder) with the plan and no round trip, and
 * reads its figures. On failure, says why in `why`. */
bool figures_of_other_build(const char *own_path, const struct measurement_plan *plan,
                            struct build_figures *figures, char *why, size_t why_size);

#endif
