/* Step 5: the coroutine runtime (see coroutine.h and NOTES.md, chapter 5):
 * a stack for each coroutine, and the switch into it and back. */
#include "coroutine.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "exercise.h"
#include "log.h"

struct stack *stack_take(void)
{
    /* EXERCISE stack_take: NOTES.md section 5.4 "A stack with a guard page"
     * stub:
     *     return NULL;
     */
    struct stack *stack = runtime.free_stacks;
    size_t length = GUARD_SIZE + STACK_SIZE;

    /* A finished coroutine's stack first: its pages are in memory already. */
    if (stack != NULL) {
        runtime.free_stacks = stack->next_free;
        return stack;
    }
    char *mapping = mmap(NULL, length, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (mapping == MAP_FAILED) {
        log_error("mmap: %s", strerror(errno));
        return NULL;
    }
    /* A stack grows down, from its highest address: the guard goes below. */
    if (mprotect(mapping, GUARD_SIZE, PROT_NONE) != 0) {
        log_error("mprotect: %s", strerror(errno));
        munmap(mapping, length);
        return NULL;
    }
    return stack_from_mapping(mapping, length);
    /* END EXERCISE */
}

bool coroutine_create(struct coroutine *co, void (*body)(void *argument), void *argument)
{
    /* EXERCISE coroutine_create: NOTES.md section 5.5 "Starting a coroutine"
     * stub:
     *     (void)co;
     *     (void)body;
     *     (void)argument;
     *     return false;
     */
    co->stack = stack_take();
    if (co->stack == NULL)
        return false;
    co->body = body;
    co->argument = argument;
    co->finished = false;
    /* makecontext() needs a context to start from: the current one will do,
     * since everything that matters is replaced below. */
    if (getcontext(&co->context) != 0) {
        log_error("getcontext: %s", strerror(errno));
        stack_give_back(co->stack);
        co->stack = NULL;
        return false;
    }
    co->context.uc_stack.ss_sp = co->stack->base;
    co->context.uc_stack.ss_size = co->stack->size;
    co->context.uc_link = NULL; /* coroutine_main() never returns */
    makecontext(&co->context, coroutine_main, 0);
    return true;
    /* END EXERCISE */
}

bool coroutine_resume(struct coroutine *co)
{
    /* EXERCISE coroutine_resume: NOTES.md section 5.6 "Into the coroutine and back"
     * stub:
     *     (void)co;
     *     return false;
     */
    runtime.running = co;
    switch_context(&runtime.loop_context, &co->context);
    /* Back in the loop: co yielded, or finished. */
    runtime.running = NULL;
    if (!co->finished)
        return true;
    /* Nothing runs on its stack any more, and nothing ever will. */
    stack_give_back(co->stack);
    co->stack = NULL;
    return false;
    /* END EXERCISE */
}

void coroutine_yield(void)
{
    /* EXERCISE coroutine_yield: NOTES.md section 5.7 "Yielding to the loop"
     * stub:
     */
    /* Where this coroutine stopped goes into its own context; the loop
     * continues from where it stopped: inside coroutine_resume(). */
    switch_context(&runtime.running->context, &runtime.loop_context);
    /* END EXERCISE */
}
