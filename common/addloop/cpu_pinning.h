/* Where the two ends of the round trip run. With two CPUs or more, the echo
 * process is pinned to one and the timing process to another, so that every
 * round trip crosses between two cores the same way. */
#ifndef COMMON_ADDLOOP_CPU_PINNING_H
#define COMMON_ADDLOOP_CPU_PINNING_H

#include <sched.h> /* cpu_set_t: needs _GNU_SOURCE, which meson defines */
#include <stdbool.h>

struct cpu_placement {
    int echo_cpu;  /* the first CPU this process may run on */
    int timer_cpu; /* the second; the first again with one CPU, or same_cpu */
    cpu_set_t original; /* this process's CPUs before pinning, to restore */
};

/* Chooses the two CPUs. False, with a message, if none can be found. */
bool choose_cpus(bool same_cpu, struct cpu_placement *placement);

/* Pins the calling process to one CPU. */
bool pin_to_cpu(int cpu);

/* Gives the calling process back the CPUs it had before choose_cpus(). */
void restore_cpus(const struct cpu_placement *placement);

#endif
