/* The step 4 program's flags (`--help` describes them). */
#ifndef COMMON_ADDLOOP_OPTIONS_H
#define COMMON_ADDLOOP_OPTIONS_H

#include <stdbool.h>

#include "figures.h"

struct options {
    struct measurement_plan plan;
    bool machine; /* --machine: this build's figures only, key=value */
};

/* Reads the flags. --help prints the usage and exits 0; a bad flag or
 * value prints what is wrong and the usage on stderr, and exits 2. */
void parse_options(int argc, char **argv, struct options *options);

#endif
