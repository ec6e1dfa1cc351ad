/* What a coroutine switch costs on this machine (NOTES.md chapter 5).
 *
 * A loop and one coroutine hand the thread to each other, back and forth,
 * ROUND_TRIPS times (two switches each), in two ways:
 *   1. glibc's swapcontext(), which step 5's runtime uses. It saves and
 *      loads the registers, and also the signal mask, with a sigprocmask
 *      system call at every switch;
 *   2. a switch written by hand for x86-64 (below): it saves the registers
 *      the ABI says a function must preserve, switches the stack pointer,
 *      and loads the other side's: 21 instructions, no system call.
 * Beside them, one sigprocmask() call alone: most of what separates them.
 *
 *   build/switch_cost [ROUND_TRIPS]       (default 200 000; a few seconds)
 *
 * Each figure is the thread's CPU time per switch, the median of RUNS runs,
 * the ways alternating. Figures still drift on a shared machine (caches,
 * frequency): compare the rows of one run. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>

enum { DEFAULT_ROUND_TRIPS = 200000, RUNS = 5, STACK_BYTES = 64 * 1024 };

/* The CPU time of this thread: what the switches cost it, whatever else
 * the machine runs meanwhile (a wall clock would count the time other
 * programs had the CPU). */
static double now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return (double)now.tv_sec * 1e9 + (double)now.tv_nsec;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *values, int count)
{
    qsort(values, (size_t)count, sizeof *values, compare_doubles);
    return values[count / 2];
}

/* The coroutines' stacks: 16-byte aligned, as the ABI wants. */
static _Alignas(16) unsigned char swapcontext_stack[STACK_BYTES];
static _Alignas(16) unsigned char hand_stack[STACK_BYTES];

/* ------------------------------------------------------------ swapcontext */

static ucontext_t loop_context, coroutine_context;

static void swapcontext_coroutine(void)
{
    for (;;)
        swapcontext(&coroutine_context, &loop_context);
}

static double time_swapcontext(long round_trips)
{
    getcontext(&coroutine_context);
    coroutine_context.uc_stack.ss_sp = swapcontext_stack;
    coroutine_context.uc_stack.ss_size = sizeof swapcontext_stack;
    coroutine_context.uc_link = NULL;
    makecontext(&coroutine_context, swapcontext_coroutine, 0);
    double start = now_ns();
    for (long i = 0; i < round_trips; i++)
        swapcontext(&loop_context, &coroutine_context);
    return (now_ns() - start) / (2.0 * (double)round_trips);
}

/* ------------------------------------------------------------ by hand */

#if defined(__x86_64__)
/* switch_stacks(save_sp, load_sp): pushes the registers a called function
 * must preserve (System V ABI: rbp, rbx, r12 to r15, and the control words
 * of SSE and x87), stores the stack pointer in *save_sp, loads load_sp, and
 * pops the same registers as the other side pushed them, then returns on
 * the other side: into its own switch_stacks() call, or, the first time,
 * into the function whose address the stack was prepared with. */
void switch_stacks(void **save_sp, void *load_sp);
__asm__(".text\n"
        ".globl switch_stacks\n"
        ".type switch_stacks, @function\n"
        "switch_stacks:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    subq $8, %rsp\n"
        "    stmxcsr (%rsp)\n"
        "    fnstcw 4(%rsp)\n"
        "    movq %rsp, (%rdi)\n" /* the switch itself: two moves */
        "    movq %rsi, %rsp\n"
        "    ldmxcsr (%rsp)\n"
        "    fldcw 4(%rsp)\n"
        "    addq $8, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size switch_stacks, .-switch_stacks\n");

static void *loop_sp, *coroutine_sp;

static void hand_coroutine(void)
{
    for (;;)
        switch_stacks(&coroutine_sp, loop_sp);
}

/* A new stack that looks as if switch_stacks() had saved a side that is
 * about to return into `entry`: from the top down, a fake return address
 * (entry never returns), entry's address, six registers, the control words. */
static void *prepare_stack(unsigned char *stack, size_t size, void (*entry)(void))
{
    uint64_t *top = (uint64_t *)(stack + size); /* 16-byte aligned */
    uint64_t *sp = top - 9;
    uint32_t control[2] = {0x1f80, 0x037f}; /* MXCSR and x87 control word at reset */

    memset(sp, 0, 9 * sizeof *sp);
    memcpy(sp, control, sizeof control);
    sp[7] = (uint64_t)(uintptr_t)entry; /* after the pops, ret jumps here... */
    /* ...with the stack pointer at top - 8: as after a call, 8 past 16-alignment. */
    return sp;
}

static double time_by_hand(long round_trips)
{
    coroutine_sp = prepare_stack(hand_stack, sizeof hand_stack, hand_coroutine);
    double start = now_ns();
    for (long i = 0; i < round_trips; i++)
        switch_stacks(&loop_sp, coroutine_sp);
    return (now_ns() - start) / (2.0 * (double)round_trips);
}
#endif

/* ------------------------------------------------------------ sigprocmask */

static double time_sigprocmask(long calls)
{
    sigset_t mask;
    sigprocmask(SIG_SETMASK, NULL, &mask);
    double start = now_ns();
    for (long i = 0; i < calls; i++)
        sigprocmask(SIG_SETMASK, &mask, NULL);
    return (now_ns() - start) / (double)calls;
}

int main(int argc, char **argv)
{
    long round_trips = argc > 1 ? atol(argv[1]) : DEFAULT_ROUND_TRIPS;
    double swap[RUNS], hand[RUNS], mask[RUNS];

    if (round_trips <= 0) {
        fprintf(stderr, "usage: %s [ROUND_TRIPS]\n", argv[0]);
        return 2;
    }
    for (int run = 0; run < RUNS; run++) {
        swap[run] = time_swapcontext(round_trips);
#if defined(__x86_64__)
        hand[run] = time_by_hand(round_trips);
#else
        hand[run] = 0;
#endif
        mask[run] = time_sigprocmask(round_trips);
    }
    double swap_ns = median(swap, RUNS), hand_ns = median(hand, RUNS);
    printf("coroutine switch, %ld round trips (loop -> coroutine -> loop), median of %d runs:\n",
           round_trips, RUNS);
    printf("  swapcontext() (glibc)           %7.1f ns per switch\n", swap_ns);
#if defined(__x86_64__)
    printf("  by hand (x86-64, 21 instructions) %5.1f ns per switch  (%.0f times faster)\n",
           hand_ns, swap_ns / hand_ns);
#else
    printf("  by hand: written for x86-64 only\n");
#endif
    printf("  one sigprocmask() system call   %7.1f ns  (swapcontext makes one per switch)\n",
           median(mask, RUNS));
    return 0;
}
