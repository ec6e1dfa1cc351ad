/* Step 4: the article's add loop, measured honestly, beside a real wait.
 *
 * The same source is built twice, without optimisation (…_O0) and with it
 * (…_O2). Each build measures itself: the clock, a CPU cycle, your timed
 * loop (addloop.c) and, with your round trip (roundtrip.c), a real wait.
 * The table shows both builds, by running the other one with --machine.
 * The given code is in common/addloop/. */
#include <limits.h>

#include "figures.h"
#include "machine.h"
#include "options.h"
#include "other_build.h"
#include "table.h"

int main(int argc, char **argv)
{
    struct options options;
    struct build_figures own, other;
    char path[PATH_MAX], why[PATH_MAX + 128] = "";

    parse_options(argc, argv, &options);
    this_program_path(argv[0], path, sizeof path);
    measure_this_build(path, &options.plan, &own);
    if (options.machine) {
        print_machine_figures(&own);
        return 0;
    }
    bool found = figures_of_other_build(path, &options.plan, &other, why, sizeof why);
    print_table(&own, found ? &other : NULL, why);
    return 0;
}
