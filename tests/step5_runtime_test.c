/* Step 5's coroutine runtime on its own: your stack_take(), coroutine_create(),
 * coroutine_resume() and coroutine_yield() run in this process, under
 * AddressSanitizer and UBSan, with runtime.c (given). No server, no socket:
 * a coroutine here is a small function that yields a few times, and the
 * test plays the loop.
 *
 * A mistake in a switch often kills the process rather than failing a
 * check. So stderr is kept while each test runs, and when the process dies
 * (AddressSanitizer's report, a SEGV), a paragraph saying what the test was
 * doing is written beside Criterion's "crashed". */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coroutine.h"
#include "harness.h"
#include "http.h"

/* Present only when this program is built with AddressSanitizer. */
extern void __asan_set_death_callback(void (*callback)(void)) __attribute__((weak));

static void catch_stderr(void);
static void release_stderr(void);

TestSuite(step5_runtime, .timeout = 15, .init = catch_stderr, .fini = release_stderr);

/* No program is started by these tests. */
const struct program_default program_defaults[] = {{NULL, NULL}};

static const char STACK_SECTION[] = "stack_take() (NOTES.md section 5.4 \"A stack with a guard page\")";
static const char CREATE_SECTION[] = "coroutine_create() (NOTES.md section 5.5 \"Starting a coroutine\")";
static const char RESUME_SECTION[] =
    "coroutine_resume() (NOTES.md section 5.6 \"Into the coroutine and back\")";
static const char YIELD_SECTION[] = "coroutine_yield() (NOTES.md section 5.7 \"Yielding to the loop\")";

/* ------------------------------------------------------ what the code said */

static int real_stderr = -1;
static int kept_stderr = -1;
static const char *doing = "starting"; /* for the paragraph written if the process dies */

static char *kept_text(void)
{
    static char text[16384];
    ssize_t length;

    fflush(stderr);
    length = kept_stderr >= 0 ? pread(kept_stderr, text, sizeof text - 1, 0) : 0;
    text[length > 0 ? length : 0] = '\0';
    return text;
}

/* The TODO lines and any sanitizer report printed so far, for a message. */
static const char *said(void)
{
    static char paragraph[6000];
    const char *text = kept_text();

    snprintf(paragraph, sizeof paragraph, "%s%s", todo_lines(text), sanitizer_report(text));
    return paragraph;
}

/* Called by AddressSanitizer just before it ends the process. */
static void report_death(void)
{
    const char *text = kept_text();

    dprintf(real_stderr, "[----] The test process died while %s.\n[----] %s\n[----] A switch "
            "that saves into the wrong context, or a coroutine whose stack was given back (or "
            "reused) while it could still run, jumps into garbage; a stack too small overflows "
            "into its guard page (a SEGV just below the stack's base).%s\n",
            doing, "The report below says where.", todo_lines(text));
    dprintf(real_stderr, "%s", text);
}

static void catch_stderr(void)
{
    fflush(stderr);
    real_stderr = dup(STDERR_FILENO);
    kept_stderr = memfd_create("stderr", MFD_CLOEXEC);
    if (real_stderr >= 0 && kept_stderr >= 0)
        dup2(kept_stderr, STDERR_FILENO);
    if (__asan_set_death_callback != NULL)
        __asan_set_death_callback(report_death);
}

/* The stacks go, and what was printed goes to the real stderr, for the
 * report. */
static void release_stderr(void)
{
    stacks_unmap_all();
    const char *text = kept_text();

    if (real_stderr >= 0) {
        dup2(real_stderr, STDERR_FILENO);
        fputs(text, stderr);
    }
}

/* ------------------------------------------------------------- helpers */

static struct stack *take_a_stack(void)
{
    doing = "stack_take() ran";
    struct stack *stack = stack_take();
    check(stack != NULL, "stack_take() returned NULL: no stack. A new coroutine needs one: a "
          "mapping of GUARD_SIZE + STACK_SIZE bytes whose lowest page is the guard, made into "
          "a struct stack by stack_from_mapping(); see %s.%s", STACK_SECTION, said());
    return stack;
}

static void create(struct coroutine *co, void (*body)(void *), void *argument)
{
    memset(co, 0, sizeof *co);
    doing = "coroutine_create() ran";
    bool created = coroutine_create(co, body, argument);
    check(created && co->stack != NULL,
          "coroutine_create() returned %s, with co->stack %s.\nExpected: true, and a stack "
          "from stack_take() in co->stack; see %s.%s",
          created ? "true" : "false", co->stack != NULL ? "set" : "NULL", CREATE_SECTION, said());
}

static bool resume(struct coroutine *co, const char *what)
{
    doing = what;
    bool yielded = coroutine_resume(co);
    doing = "the test checked what the coroutine did";
    return yielded;
}

/* The line of /proc/self/maps whose mapping holds `address`: its bounds and
 * its permissions ("rw-p", "---p"). False if no mapping holds it. */
static bool mapping_at(const void *address, uintptr_t *low, uintptr_t *high, char perms[5])
{
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[512];
    bool found = false;

    cr_assert(maps != NULL, "harness: /proc/self/maps: %s", strerror(errno));
    while (!found && fgets(line, sizeof line, maps) != NULL) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 && (uintptr_t)address >= lo &&
            (uintptr_t)address < hi) {
            *low = lo;
            *high = hi;
            found = true;
        }
    }
    fclose(maps);
    return found;
}

/* ============================ stage 0: the coroutine runtime on its own ============================ */

Test(step5_runtime, a_stack_lies_just_above_a_guard_page)
{
    struct stack *stack = take_a_stack();
    uintptr_t low, high, guard_low, guard_high;
    char perms[5] = "", guard_perms[5] = "";

    check(stack->size >= STACK_SIZE && stack->base == stack->mapping + GUARD_SIZE,
          "stack_take() gave a stack of %zu usable bytes starting %td bytes into its mapping.\n"
          "Expected: a mapping of GUARD_SIZE + STACK_SIZE (%d + %d) bytes, given whole to "
          "stack_from_mapping(), so that the stack is STACK_SIZE bytes above one guard page. A "
          "connection's deepest call (snprintf making a response's head) needs about 5 KiB, "
          "8 KiB under AddressSanitizer, and a handler may have big locals of its own; see "
          "%s.%s",
          stack->size, stack->base - stack->mapping, GUARD_SIZE, STACK_SIZE, STACK_SECTION,
          said());
    memset(stack->base, 0x5a, stack->size); /* every usable byte can be written */
    check(mapping_at(stack->base, &low, &high, perms) && perms[0] == 'r' && perms[1] == 'w' &&
              high >= (uintptr_t)(stack->base + stack->size),
          "The stack's bytes are not all in one readable and writable mapping (/proc/self/maps "
          "says %s); see %s.%s", perms, STACK_SECTION, said());
    bool guarded = mapping_at(stack->base - 1, &guard_low, &guard_high, guard_perms) &&
                   strcmp(guard_perms, "---p") == 0 && guard_high == (uintptr_t)stack->base &&
                   guard_high - guard_low >= GUARD_SIZE;
    check(guarded,
          "The page just below the stack's lowest byte is %s%s.\nExpected: a guard page, "
          "mapped with the stack and made inaccessible (\"---p\" in /proc/self/maps): "
          "mprotect(mapping, GUARD_SIZE, PROT_NONE). A stack grows down; without the guard, a "
          "coroutine that overflows its stack writes silently over whatever lies below "
          "(another coroutine's stack, say) instead of crashing at once; see %s.%s",
          guard_perms[0] != '\0' ? "mapped as " : "not mapped at all",
          guard_perms[0] != '\0' ? guard_perms : " (so it is only by luck that nothing lies there)",
          STACK_SECTION, said());
    stack_give_back(stack);
}

Test(step5_runtime, touching_the_guard_page_is_a_crash)
{
    struct stack *stack = take_a_stack();
    int status = 0;

    fflush(stderr);
    pid_t child = fork();
    cr_assert(child >= 0, "harness: fork: %s", strerror(errno));
    if (child == 0) {
        /* No sanitizer report: the plain SIGSEGV is what is expected. */
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDERR_FILENO);
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        volatile char *below = stack->base - 1; /* the highest byte of the guard page */
        *below = 1;
        _exit(0);
    }
    waitpid(child, &status, 0);
    check(!(WIFEXITED(status) && WEXITSTATUS(status) == 0),
          "A child process wrote one byte just below the stack's lowest usable byte, and went "
          "on as if nothing had happened.\nExpected: it is killed by SIGSEGV, because that "
          "byte is in the guard page, which mprotect(..., PROT_NONE) made inaccessible. A stack "
          "overflow must be a crash, never silent corruption; see %s.%s",
          STACK_SECTION, said());
    stack_give_back(stack);
}

static void finish_at_once(void *argument)
{
    (*(int *)argument)++;
}

Test(step5_runtime, a_finished_coroutine_gives_its_stack_back)
{
    struct coroutine co;
    int runs = 0;

    create(&co, finish_at_once, &runs);
    struct stack *its_stack = co.stack;
    bool yielded = resume(&co, "a coroutine that finishes at once was resumed");
    check(runs == 1, "coroutine_resume() returned, and the coroutine's body had run %d times "
          "instead of once. Expected: coroutine_resume() switches to the coroutine's context "
          "(switch_context(&runtime.loop_context, &co->context)), whose first function, "
          "coroutine_main(), runs the body; see %s.%s", runs, RESUME_SECTION, said());
    check(!yielded && co.finished,
          "A coroutine whose body returned at once was resumed: coroutine_resume() returned "
          "%s, and co->finished is %s.\nExpected: false (it finished), since coroutine_main() "
          "sets finished after the body; see %s.%s",
          yielded ? "true" : "false", co.finished ? "true" : "false", RESUME_SECTION, said());
    check(co.stack == NULL && runtime.free_stacks == its_stack && stacks_free() == 1,
          "A coroutine finished, and coroutine_resume() returned, but its stack was not given "
          "back: co->stack is %s, and runtime.free_stacks holds %d stack(s).\nExpected: once "
          "the coroutine has finished (co->finished, seen back in the loop, after the switch), "
          "stack_give_back(co->stack) and co->stack = NULL. A stack never given back stays "
          "mapped (68 KiB of address space, a page or two of memory) per connection, never "
          "reused; see %s.%s",
          co.stack != NULL ? "still set" : "NULL", stacks_free(), RESUME_SECTION, said());
    check(runtime.running == NULL,
          "Back in the loop after a coroutine finished, runtime.running still names it.\n"
          "Expected: NULL while the loop runs (coroutine_main() reads runtime.running to find "
          "the coroutine it starts); see %s.%s", RESUME_SECTION, said());
}

Test(step5_runtime, a_new_coroutine_reuses_a_finished_one_s_stack)
{
    struct coroutine first, second;
    int runs = 0;

    create(&first, finish_at_once, &runs);
    struct stack *its_stack = first.stack;
    resume(&first, "a coroutine that finishes at once was resumed");
    check(stacks_free() == 1, "The first coroutine finished, but its stack did not come back to "
          "runtime.free_stacks (see the test a_finished_coroutine_gives_its_stack_back; %s).%s",
          RESUME_SECTION, said());
    create(&second, finish_at_once, &runs);
    check(second.stack == its_stack && stacks_mapped() == 1,
          "A coroutine finished and gave its stack back; then a new one was made, and "
          "stack_take() mapped a new stack (%d mapped now) instead of taking the free one.\n"
          "Expected: the stack on runtime.free_stacks first (its pages are in memory already: "
          "no system call, no page fault); mmap() only when the list is empty; see %s.%s",
          stacks_mapped(), STACK_SECTION, said());
    resume(&second, "the second coroutine was resumed");
}

Test(step5_runtime, a_thousand_coroutines_in_turn_need_one_stack)
{
    int runs = 0;

    for (int i = 0; i < 1000; i++) {
        struct coroutine co;
        create(&co, finish_at_once, &runs);
        resume(&co, "one of a thousand coroutines in turn was resumed");
    }
    check(runs == 1000 && stacks_mapped() == 1 && stacks_free() == 1,
          "A thousand coroutines ran one after another, each finished before the next was "
          "made. Their bodies ran %d times, and %d stack(s) were mapped, %d of them free at the "
          "end.\nExpected: 1000 runs, one stack, given back and taken again each time; see %s "
          "and %s.%s",
          runs, stacks_mapped(), stacks_free(), STACK_SECTION, RESUME_SECTION, said());
}

/* Called first in a coroutine's body. A body entered twice means the
 * coroutine started over instead of returning to the loop: without this,
 * it would run round for ever and the test would only time out. Nothing
 * more is done on that stack than a write() and _exit(): its old frames
 * were never unwound, and AddressSanitizer would report them. */
static void fail_if_started_again(int *starts)
{
    static const char message[] =
        "[----] A coroutine's body began again from its first line after it yielded.\n"
        "[----] Expected: coroutine_yield() saves the coroutine's place into its own context "
        "and continues the loop's: switch_context(&runtime.running->context, "
        "&runtime.loop_context). Saved into the loop's context instead, the yield jumps back "
        "into the coroutine, at the place it was last resumed from; see coroutine_yield() "
        "(NOTES.md section 5.7 \"Yielding to the loop\").\n";

    if (++*starts > 1) {
        if (write(real_stderr >= 0 ? real_stderr : STDERR_FILENO, message,
                  sizeof message - 1) < 0)
            _exit(2);
        _exit(1);
    }
}

/* A coroutine that records how far it got, where its local lives, and what
 * runtime.running said inside it. */
struct trace {
    int starts;
    int step;
    const char *local_at;
    struct coroutine *running_inside;
};

static void three_steps(void *argument)
{
    struct trace *trace = argument;
    char local = 1;

    fail_if_started_again(&trace->starts);
    trace->local_at = &local;
    trace->running_inside = runtime.running;
    trace->step = 1;
    coroutine_yield();
    trace->step = 2;
    coroutine_yield();
    trace->step = 3;
}

Test(step5_runtime, a_coroutine_waits_to_be_resumed_and_stops_at_each_yield)
{
    struct coroutine co;
    struct trace trace = {0};

    create(&co, three_steps, &trace);
    check(trace.step == 0, "coroutine_create() ran the coroutine's body already.\nExpected: it "
          "only prepares the context (getcontext, the stack in uc_stack, makecontext with "
          "coroutine_main); the first coroutine_resume() runs it; see %s.%s",
          CREATE_SECTION, said());
    bool yielded = resume(&co, "a new coroutine was resumed for the first time");
    check(trace.step != 0, "coroutine_resume() returned without running the coroutine at all.\n"
          "Expected: runtime.running = co, then switch_context(&runtime.loop_context, "
          "&co->context), which continues the coroutine (the first time, from the start of "
          "coroutine_main); see %s.%s", RESUME_SECTION, said());
    check(trace.step == 1 && yielded,
          "A coroutine's body sets step = 1, yields, sets step = 2, yields, sets step = 3. After "
          "the first resume, step was %d and coroutine_resume() returned %s.\nExpected: step 1, "
          "true: coroutine_yield() stops the coroutine where it is and switches back to the "
          "loop (switch_context(&runtime.running->context, &runtime.loop_context)); see %s.%s",
          trace.step, yielded ? "true" : "false", YIELD_SECTION, said());
    check(trace.running_inside == &co,
          "Inside the coroutine, runtime.running was %p, not the coroutine (%p).\nExpected: "
          "coroutine_resume() sets runtime.running = co before it switches; see %s.%s",
          (void *)trace.running_inside, (void *)&co, RESUME_SECTION, said());
    check(runtime.running == NULL,
          "Back in the loop after a yield, runtime.running still names the coroutine.\n"
          "Expected: NULL while the loop runs; see %s.%s", RESUME_SECTION, said());
    check(trace.local_at >= co.stack->base && trace.local_at < co.stack->base + co.stack->size,
          "A local variable of the coroutine's body lives at %p, outside the coroutine's stack "
          "(%p to %p).\nExpected: the body runs on its own stack: uc_stack.ss_sp = stack->base, "
          "uc_stack.ss_size = stack->size, before makecontext(); see %s.%s",
          (const void *)trace.local_at, (void *)co.stack->base,
          (void *)(co.stack->base + co.stack->size), CREATE_SECTION, said());
    yielded = resume(&co, "a coroutine was resumed after its first yield");
    check(trace.step == 2 && yielded,
          "After the second resume, step was %d and coroutine_resume() returned %s.\nExpected: "
          "2, true: the coroutine continues right after its yield, where it stopped; see %s "
          "and %s.%s",
          trace.step, yielded ? "true" : "false", RESUME_SECTION, YIELD_SECTION, said());
    yielded = resume(&co, "a coroutine was resumed after its second yield");
    check(trace.step == 3 && !yielded && co.finished,
          "After the third resume, step was %d and coroutine_resume() returned %s.\nExpected: "
          "3, false: the body returned, so the coroutine has finished; see %s.%s",
          trace.step, yielded ? "true" : "false", RESUME_SECTION, said());
}

/* A coroutine that fills a buffer of its stack with its own pattern, and
 * checks it after each yield. */
struct keeper {
    int starts;
    unsigned char pattern;
    int rounds_kept;
    bool broken;
};

static void keep_a_pattern(void *argument)
{
    struct keeper *keeper = argument;
    volatile unsigned char mine[3000]; /* volatile: each check really reads the stack */

    fail_if_started_again(&keeper->starts);
    for (size_t i = 0; i < sizeof mine; i++)
        mine[i] = keeper->pattern;
    for (int round = 0; round < 4; round++) {
        coroutine_yield();
        for (size_t i = 0; i < sizeof mine; i++)
            if (mine[i] != keeper->pattern)
                keeper->broken = true;
        keeper->rounds_kept += !keeper->broken;
    }
}

Test(step5_runtime, waiting_coroutines_keep_their_own_stacks)
{
    enum { COUNT = 3 };
    struct coroutine co[COUNT];
    struct keeper keeper[COUNT];

    for (int i = 0; i < COUNT; i++) {
        keeper[i] = (struct keeper){.pattern = (unsigned char)(0xa1 + i)};
        create(&co[i], keep_a_pattern, &keeper[i]);
        resume(&co[i], "three coroutines were started, each with its own pattern");
        for (int j = 0; j < i; j++)
            check(co[i].stack != co[j].stack,
                  "Coroutine %d was given the stack of coroutine %d, which is still waiting "
                  "in a yield.\nA stack is given back only when its coroutine has finished "
                  "(co->finished, after the switch back): a coroutine that yielded will run on "
                  "it again; see %s.%s",
                  i + 1, j + 1, RESUME_SECTION, said());
    }
    for (int round = 0; round < 4; round++)
        for (int i = 0; i < COUNT; i++)
            resume(&co[i], "three coroutines took turns, each checking the pattern it left on "
                           "its stack");
    for (int i = 0; i < COUNT; i++)
        check(!keeper[i].broken && keeper[i].rounds_kept == 4 && co[i].finished,
              "Three coroutines took turns; each filled 3000 bytes of its own stack with its "
              "own pattern and checked them after each of its 4 yields. Coroutine %d found its "
              "bytes overwritten (kept for %d rounds of 4)%s.\nExpected: each keeps its own "
              "stack for as long as it can run. Is a stack given back while its coroutine only "
              "yielded (%s), or the same stack handed out twice (%s)?%s",
              i + 1, keeper[i].rounds_kept, co[i].finished ? "" : ", and it did not finish",
              RESUME_SECTION, STACK_SECTION, said());
    check(stacks_mapped() == COUNT && stacks_free() == COUNT,
          "Three coroutines ran at once and finished: %d stack(s) were mapped, %d free at the "
          "end. Expected 3 and 3; see %s.%s",
          stacks_mapped(), stacks_free(), RESUME_SECTION, said());
}

/* The loop's side: resumes from a few calls deep, with locals of its own. */
static int resume_from_depth(struct coroutine *co, int depth, bool *loop_locals_kept)
{
    volatile unsigned char pad[512];

    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = (unsigned char)(depth + i);
    int result = depth == 0 ? coroutine_resume(co)
                            : resume_from_depth(co, depth - 1, loop_locals_kept);
    for (size_t i = 0; i < sizeof pad; i++)
        if (pad[i] != (unsigned char)(depth + i))
            *loop_locals_kept = false;
    return result;
}

Test(step5_runtime, the_loop_continues_where_it_resumed)
{
    struct coroutine co;
    struct trace trace = {0};
    bool kept = true;

    create(&co, three_steps, &trace);
    doing = "the test resumed a coroutine from inside five nested calls";
    int first = resume_from_depth(&co, 5, &kept);
    int second = resume_from_depth(&co, 2, &kept);
    int third = resume_from_depth(&co, 7, &kept);
    doing = "the test checked what the coroutine did";
    check(kept && first && second && !third && trace.step == 3,
          "The test resumed a coroutine three times, each time from a different depth of "
          "nested calls with locals of their own. Got: resume returned %d, %d, %d (expected 1, "
          "1, 0), the coroutine reached step %d of 3, and the loop's locals were %s.\n"
          "Expected: a yield goes back exactly into the coroutine_resume() that ran the "
          "coroutine: resume saves the loop into runtime.loop_context and continues "
          "co->context; yield saves the coroutine into its own context and continues "
          "runtime.loop_context. Swapped, each side continues the other's saved place; see "
          "%s and %s.%s",
          first, second, third, trace.step, kept ? "intact" : "overwritten", RESUME_SECTION,
          YIELD_SECTION, said());
}

/* Deeper than a connection goes: an 8 KiB local (a handler that kept its
 * input buffer on its stack), then a response head's snprintf and the log
 * line's fprintf. */
static void deeper_than_a_connection(void *argument)
{
    char input[HTTP_HEAD_LIMIT];
    char head[512];
    FILE *null = fopen("/dev/null", "w");

    memset(input, 'a', sizeof input);
    snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Length: %" PRIu64 "\r\n",
             200, "OK", "Sun, 06 Nov 1994 08:49:37 GMT", (uint64_t)5);
    if (null != NULL) {
        fprintf(null, "%s \"%.*s\" %d %llu bytes in %lld ms\n", "127.0.0.1:40112", 200, input,
                200, 5ULL, 5003LL);
        fclose(null);
    }
    *(int *)argument = input[100] + (int)strlen(head);
}

Test(step5_runtime, a_stack_has_room_for_a_handler_with_an_8_kib_buffer)
{
    struct coroutine co;
    int result = 0;

    create(&co, deeper_than_a_connection, &result);
    resume(&co, "a coroutine used an 8 KiB local buffer, then snprintf and fprintf");
    check(result > 'a' && co.finished,
          "A coroutine with an 8 KiB local buffer that then calls snprintf() and fprintf() did "
          "not run to its end. A connection needs about 5 KiB of stack (8 KiB under "
          "AddressSanitizer); a handler may keep a buffer of its own there too. Is the stack "
          "STACK_SIZE bytes? See %s.%s", STACK_SECTION, said());
}
