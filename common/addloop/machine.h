/* The --machine output: one key=value a line, read by the tests, by
 * tools/bench.py and tools/demo.py, and by the other build of this program
 * for its table. `--help` lists the keys. */
#ifndef COMMON_ADDLOOP_MACHINE_H
#define COMMON_ADDLOOP_MACHINE_H

#include <stdbool.h>

#include "figures.h"

void print_machine_figures(const struct build_figures *figures);

/* Reads figures back from the text print_machine_figures() wrote. False
 * if the text holds no total_ns_median (not a --machine output). */
bool parse_machine_figures(const char *text, struct build_figures *figures);

#endif
