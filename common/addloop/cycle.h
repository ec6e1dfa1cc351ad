/* The length of one CPU cycle, measured without hardware counters (a virtual
 * machine often has none: `perf stat` says "not supported"). */
#ifndef COMMON_ADDLOOP_CYCLE_H
#define COMMON_ADDLOOP_CYCLE_H

/* Times a long chain of dependent `add` instructions. Each needs the result
 * of the one before, and an add takes one cycle to produce its result, so
 * the chain runs at exactly one add per cycle: its time per add is the
 * length of a cycle. The median of several timings; 0 if the clock does
 * not move. */
double measure_ns_per_cycle(void);

#endif
