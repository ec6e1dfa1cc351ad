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
    /* TODO: write stack_take(). NOTES.md section 5.4 "A stack with a guard page" explains it. */
    exercise_unwritten("stack_take", "5.4", "A stack with a guard page");
    return NULL;
}

bool coroutine_create(struct coroutine *co, void (*body)(void *argument), void *argument)
{
    /* TODO: write coroutine_create(). NOTES.md section 5.5 "Starting a coroutine" explains it. */
    exercise_unwritten("coroutine_create", "5.5", "Starting a coroutine");
    (void)co;
    (void)body;
    (void)argument;
    return false;
}

bool coroutine_resume(struct coroutine *co)
{
    /* TODO: write coroutine_resume(). NOTES.md section 5.6 "Into the coroutine and back" explains it. */
    exercise_unwritten("coroutine_resume", "5.6", "Into the coroutine and back");
    (void)co;
    return false;
}

void coroutine_yield(void)
{
    /* TODO: write coroutine_yield(). NOTES.md section 5.7 "Yielding to the loop" explains it. */
    exercise_unwritten("coroutine_yield", "5.7", "Yielding to the loop");
}
