/* Step 5: coroutines, a small runtime. Read this header first.
 *
 * A coroutine is a function that can stop in the middle and be continued
 * later, where it stopped, with its local variables intact. Each one gets a
 * stack of its own, so that "where it stopped" is simply its stack pointer
 * and a few registers: swapcontext() saves those of the code that runs now
 * and loads those of the code to run next. That is a switch. There is one
 * thread: a coroutine runs until it yields, and nothing runs beside it.
 *
 *   the loop                                 a coroutine (its own stack)
 *   coroutine_resume(co) --switch_context--> ...runs until it must wait...
 *                                            coroutine_yield()
 *   ...serves everybody else... <--switch_context--
 *   coroutine_resume(co) --switch_context--> ...continues after its yield...
 *
 * You write the four functions of coroutine.c (NOTES.md sections 5.4 to
 * 5.7). runtime.c gives the rest: the struct runtime, the first function a
 * coroutine runs (coroutine_main), the switch itself with the checkers told
 * about it, and the stacks' bookkeeping. */
#ifndef STEP5_COROUTINE_H
#define STEP5_COROUTINE_H

#include <stdbool.h>
#include <stddef.h>
#include <ucontext.h>

enum {
    /* Usable bytes per coroutine stack. The deepest a connection goes, in
     * snprintf() making a response's head, is under 5 KiB, and under 8 KiB
     * with AddressSanitizer's red zones (NOTES.md 5.4 says how that was
     * measured). 64 KiB leaves room for a handler with a big local of its
     * own, and costs only address space: a page takes memory only once it
     * is touched, and a connection touches one (two for the process's
     * first, on which the dynamic linker resolves symbols). */
    STACK_SIZE = 64 * 1024,
    /* One page, never readable or writable, below each stack (stacks grow
     * down): an overflow hits it and crashes at once, instead of quietly
     * writing over whatever lies below. */
    GUARD_SIZE = 4096,
};

/* A stack: the usable bytes, from base up. A stack outlives its coroutine:
 * a finished coroutine's stack goes to the free list, for the next one. */
struct stack {
    char *mapping;          /* what mmap() returned: the guard page comes first */
    size_t mapping_size;    /* guard page + usable bytes */
    char *base;             /* the lowest usable byte, just above the guard page */
    size_t size;            /* usable bytes */
    struct stack *next_free;/* in runtime.free_stacks */
    unsigned valgrind_id;   /* how valgrind knows it (runtime.c) */
};

struct coroutine {
    ucontext_t context;     /* where it stopped: registers, stack pointer, signal mask */
    struct stack *stack;    /* its own; NULL once it has finished */
    void (*body)(void *argument); /* what it runs... */
    void *argument;         /* ...and with what */
    bool finished;          /* body() has returned: it must never run again */
};

/* The one thread's coroutines: who runs, and where the loop stopped. */
struct runtime {
    ucontext_t loop_context;    /* the loop, saved while a coroutine runs */
    struct coroutine *running;  /* the coroutine that runs now; NULL: the loop */
    struct stack *free_stacks;  /* stacks of finished coroutines, ready for reuse */
};

extern struct runtime runtime;

/* ---- You write these, in coroutine.c. ---- */

/* A stack for a new coroutine: one from runtime.free_stacks if there is one,
 * otherwise a new mapping of GUARD_SIZE + STACK_SIZE bytes whose lowest
 * page is made inaccessible (the guard page), handed to stack_from_mapping().
 * NULL when out of memory (logged). (NOTES.md 5.4.) */
struct stack *stack_take(void);

/* Prepares co to run body(argument) on a stack of its own, from the start
 * of coroutine_main(). Nothing runs yet: the first coroutine_resume(co)
 * does. False when there is no stack to be had. (5.5.) */
bool coroutine_create(struct coroutine *co, void (*body)(void *argument), void *argument);

/* Called by the loop: runs co from where it stopped until it yields or
 * finishes. Returns true if it yielded (it waits for something), false if it
 * finished, in which case its stack is given back. (5.6.) */
bool coroutine_resume(struct coroutine *co);

/* Called by the running coroutine: stops it where it is and goes back to
 * the loop, into the coroutine_resume() that ran it. Returns when the loop
 * resumes it. (5.7.) */
void coroutine_yield(void);

/* ---- Given, in runtime.c. ---- */

/* The first function of every coroutine (for makecontext): runs the body of
 * runtime.running, marks it finished, and switches back to the loop for the
 * last time. It never returns, so a context made for it needs no uc_link. */
void coroutine_main(void);

/* swapcontext(save_here, continue_this): saves the registers of the code
 * that runs now into save_here, and continues the code saved in
 * continue_this. Returns when something switches back to save_here. Also
 * tells AddressSanitizer which stack runs next (it would report false
 * errors otherwise), and stops the program if swapcontext() fails. */
void switch_context(ucontext_t *save_here, ucontext_t *continue_this);

/* A new mapping (guard page first, mapping_size bytes in all) as a struct
 * stack, and valgrind told it is a stack. NULL when out of memory: the
 * mapping is then unmapped. */
struct stack *stack_from_mapping(char *mapping, size_t mapping_size);

/* Puts a stack whose coroutine has finished on runtime.free_stacks. */
void stack_give_back(struct stack *stack);

/* Unmaps every stack on the free list (at the exit: by then every
 * coroutine has finished). */
void stacks_unmap_all(void);

/* Stacks mapped and not yet unmapped, and of them those on the free list:
 * for the tests, and for a warning at the exit. */
int stacks_mapped(void);
int stacks_free(void);

#endif
