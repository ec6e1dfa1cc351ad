#include "cpu_pinning.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void report_error(const char *what)
{
    fprintf(stderr, "round trip: %s: %s\n", what, strerror(errno));
}

bool choose_cpus(bool same_cpu, struct cpu_placement *placement)
{
    placement->echo_cpu = -1;
    placement->timer_cpu = -1;
    if (sched_getaffinity(0, sizeof placement->original, &placement->original) != 0) {
        report_error("sched_getaffinity");
        return false;
    }
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &placement->original))
            continue;
        if (placement->echo_cpu < 0) {
            placement->echo_cpu = cpu;
        } else {
            placement->timer_cpu = cpu;
            break;
        }
    }
    if (placement->echo_cpu < 0) {
        fprintf(stderr, "round trip: this process may run on no CPU at all\n");
        return false;
    }
    if (placement->timer_cpu < 0 || same_cpu)
        placement->timer_cpu = placement->echo_cpu;
    return true;
}

bool pin_to_cpu(int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        report_error("sched_setaffinity");
        return false;
    }
    return true;
}

void restore_cpus(const struct cpu_placement *placement)
{
    if (sched_setaffinity(0, sizeof placement->original, &placement->original) != 0)
        report_error("sched_setaffinity (restoring)");
}
