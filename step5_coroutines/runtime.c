/* Step 5, given: the runtime's plumbing (see coroutine.h). The struct
 * runtime, the first function of every coroutine, the switch with the
 * checkers told about it, and the stacks' bookkeeping.
 *
 * The checkers. A program that moves its stack pointer from one stack to
 * another surprises the tools that watch memory:
 *   - AddressSanitizer keeps, for each thread, the bounds of "the" stack;
 *     on another stack it can report false errors. Before each switch we
 *     tell it where we go (__sanitizer_start_switch_fiber), and after it,
 *     that we arrived (__sanitizer_finish_switch_fiber). Both are in the
 *     build only when AddressSanitizer is.
 *   - valgrind takes a large jump of the stack pointer for a stack switch
 *     only if it knows the stacks: VALGRIND_STACK_REGISTER tells it. That is
 *     in the build when <valgrind/valgrind.h> is installed, and costs a few
 *     instructions when the program does not run under valgrind. */
#include "coroutine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"

#if defined(__SANITIZE_ADDRESS__) /* gcc */
#define WITH_ADDRESS_SANITIZER 1
#elif defined(__has_feature) /* clang */
#if __has_feature(address_sanitizer)
#define WITH_ADDRESS_SANITIZER 1
#endif
#endif

#ifdef WITH_ADDRESS_SANITIZER
#include <dlfcn.h>
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define WITH_VALGRIND 1
#endif

struct runtime runtime;

static int mapped_count; /* stacks mapped, not yet unmapped */
#ifdef WITH_ADDRESS_SANITIZER
static const void *loop_stack_bottom; /* the loop's own stack */
static size_t loop_stack_size;
#endif

/* ------------------------------------------------------------ the checkers */

/* Before a switch: the stack that `to` runs on. fake_stack_save is where
 * AddressSanitizer keeps what it knows of the stack we leave; NULL when we
 * leave it for good (a finished coroutine). */
static void announce_switch(void **fake_stack_save, const ucontext_t *to)
{
#ifdef WITH_ADDRESS_SANITIZER
    const void *bottom = to->uc_stack.ss_sp;
    size_t size = to->uc_stack.ss_size;
    if (to == &runtime.loop_context) {
        bottom = loop_stack_bottom;
        size = loop_stack_size;
    }
    __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
#else
    (void)fake_stack_save;
    (void)to;
#endif
}

/* After a switch, on the stack that runs now. On a coroutine's stack, the
 * stack we came from is the loop's: remembered, to announce the way back. */
static void switch_arrived(void *fake_stack_save, bool on_a_coroutine)
{
#ifdef WITH_ADDRESS_SANITIZER
    const void *from_bottom;
    size_t from_size;
    __sanitizer_finish_switch_fiber(fake_stack_save, &from_bottom, &from_size);
    if (on_a_coroutine) {
        loop_stack_bottom = from_bottom;
        loop_stack_size = from_size;
    }
#else
    (void)fake_stack_save;
    (void)on_a_coroutine;
#endif
}

/* Before a stack is unmapped: all its bytes addressable again in
 * AddressSanitizer's records, so that whatever is mapped there later does
 * not inherit a red zone of a frame that was on it. */
static void forget_frames(struct stack *stack)
{
#ifdef WITH_ADDRESS_SANITIZER
    ASAN_UNPOISON_MEMORY_REGION(stack->base, stack->size);
#else
    (void)stack;
#endif
}

static unsigned tell_valgrind_stack_begins(char *base, size_t size)
{
#ifdef WITH_VALGRIND
    /* Its end is the highest byte of the stack, not the one past it. */
    return VALGRIND_STACK_REGISTER(base, base + size - 1);
#else
    (void)base;
    (void)size;
    return 0;
#endif
}

static void tell_valgrind_stack_ends(unsigned valgrind_id)
{
#ifdef WITH_VALGRIND
    VALGRIND_STACK_DEREGISTER(valgrind_id);
#else
    (void)valgrind_id;
#endif
}

/* AddressSanitizer replaces swapcontext() with its own, which prints a
 * warning ("may produce false positives") and forgets what it knew of the
 * whole stack switched to. We tell it about each switch exactly (above), so
 * we call the C library's own. */
static int libc_swapcontext(ucontext_t *save_here, const ucontext_t *continue_this)
{
#ifdef WITH_ADDRESS_SANITIZER
    static int (*real)(ucontext_t *, const ucontext_t *);
    if (real == NULL) {
        void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
        if (libc != NULL)
            real = (int (*)(ucontext_t *, const ucontext_t *))dlsym(libc, "swapcontext");
        if (real == NULL)
            real = swapcontext; /* AddressSanitizer's: it works, with its warning */
    }
    return real(save_here, continue_this);
#else
    return swapcontext(save_here, continue_this);
#endif
}

/* -------------------------------------------------------------- switching */

void switch_context(ucontext_t *save_here, ucontext_t *continue_this)
{
    void *fake_stack = NULL; /* on the stack we leave: still here when we come back */

    announce_switch(&fake_stack, continue_this);
    if (libc_swapcontext(save_here, continue_this) != 0) {
        log_error("swapcontext: %s", strerror(errno));
        abort();
    }
    switch_arrived(fake_stack, save_here != &runtime.loop_context);
}

void coroutine_main(void)
{
    /* The loop set runtime.running before it switched here. */
    struct coroutine *co = runtime.running;

    switch_arrived(NULL, true); /* the first arrival on this stack */
    co->body(co->argument);
    co->finished = true;
    /* The last switch: nothing ever comes back to this stack, so
     * AddressSanitizer may forget it (NULL). */
    announce_switch(NULL, &runtime.loop_context);
    libc_swapcontext(&co->context, &runtime.loop_context);
    /* Only a coroutine_resume() of a finished coroutine gets here. */
    fprintf(stderr, "error: a finished coroutine was resumed: its stack belongs to another "
                    "one now (NOTES.md section 5.6)\n");
    abort();
}

/* ----------------------------------------------------------------- stacks */

struct stack *stack_from_mapping(char *mapping, size_t mapping_size)
{
    struct stack *stack = malloc(sizeof *stack);

    if (stack == NULL) {
        log_error("malloc: %s", strerror(errno));
        munmap(mapping, mapping_size);
        return NULL;
    }
    *stack = (struct stack){
        .mapping = mapping,
        .mapping_size = mapping_size,
        .base = mapping + GUARD_SIZE,
        .size = mapping_size - GUARD_SIZE,
    };
    stack->valgrind_id = tell_valgrind_stack_begins(stack->base, stack->size);
    mapped_count++;
    return stack;
}

void stack_give_back(struct stack *stack)
{
    /* AddressSanitizer needs no word here: a finished coroutine's functions
     * have all returned, and each took its red zones with it. */
    stack->next_free = runtime.free_stacks;
    runtime.free_stacks = stack;
}

void stacks_unmap_all(void)
{
    int in_use = mapped_count - stacks_free();

    while (runtime.free_stacks != NULL) {
        struct stack *stack = runtime.free_stacks;
        runtime.free_stacks = stack->next_free;
        tell_valgrind_stack_ends(stack->valgrind_id);
        forget_frames(stack);
        if (munmap(stack->mapping, stack->mapping_size) != 0)
            log_error("munmap: %s", strerror(errno));
        free(stack);
        mapped_count--;
    }
    /* A coroutine that never finished, or a stack never given back. */
    if (in_use > 0)
        log_error("%d coroutine stack(s) still in use at the exit, never given back "
                  "(NOTES.md section 5.6)", in_use);
}

int stacks_mapped(void)
{
    return mapped_count;
}

int stacks_free(void)
{
    int count = 0;

    for (const struct stack *s = runtime.free_stacks; s != NULL; s = s->next_free)
        count++;
    return count;
}
