/* The two child processes of step 4 (the echo process of the round trip,
 * and the other build run for the table) are started and reaped alike. */
#ifndef COMMON_ADDLOOP_CHILDREN_H
#define COMMON_ADDLOOP_CHILDREN_H

#include <sys/types.h>

/* In a child: if the parent is killed (a test's timeout, Ctrl-C), the child
 * goes too, instead of running on alone. */
void die_with_parent(void);

/* Waits for the child to end, resuming after signals. Returns its exit
 * code, 128 + the signal that killed it, or -1 (with a message) if it
 * cannot be waited for. */
int wait_for_child(pid_t pid);

#endif
