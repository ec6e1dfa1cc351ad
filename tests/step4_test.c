/* Step 4, the add loop: your two builds (-O0 and -O2) against the
 * reference's, in the same run. STEP4_O0_UNDER_TEST, STEP4_O2_UNDER_TEST,
 * STEP4_O0_REFERENCE and STEP4_O2_REFERENCE name the four programs; the
 * tests read their --machine output (one key=value a line), and the code
 * of your -O2 build with objdump.
 *
 * No test asserts a speed. They assert shapes (time grows with the count)
 * and ratios to the reference measured moments before on the same machine.
 * Timings are the fastest of several runs (noise only ever adds time), a
 * measurement outside its band is taken again (at most three times) before
 * the test fails, and a ratio of two tiny times is never trusted: a loop
 * that was not run is recognised by its absolute time next to the
 * reference's, thousands of times off. The exact checks (which clock, what
 * was timed) are in tests/step4_simulated_test.c. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

TestSuite(step4, .timeout = 60);

/* The programs this executable tests; meson compiles their paths in. */
const struct program_default program_defaults[] = {
    {"STEP4_O0_UNDER_TEST", O0_UNDER_TEST_DEFAULT},
    {"STEP4_O2_UNDER_TEST", O2_UNDER_TEST_DEFAULT},
    {"STEP4_O0_REFERENCE", O0_REFERENCE_DEFAULT},
    {"STEP4_O2_REFERENCE", O2_REFERENCE_DEFAULT},
    {NULL, NULL},
};

enum { RUN_TIMEOUT_MS = 20000, MAX_ARGS = 16 };

/* The article's count and checksum: 0 + 1 + ... + 999 999. */
static const uint64_t ARTICLE_ADDITIONS = 1000000;
static const uint64_t ARTICLE_CHECKSUM = 499999500000u;

/* Bands a right program stays well inside, and a wrong one leaves by far:
 * a folded or empty loop is thousands of times off, not three. */
static const double GROWTH_LOW = 4, GROWTH_HIGH = 16; /* for 8x the additions */
static const double SPEED_FACTOR = 3;                 /* ns per addition, vs the reference */
static const double ROUND_TRIP_FACTOR = 5;            /* round trip, vs the reference */
/* Past these, no noise explains it: fail without measuring again. */
static const double GROWTH_HOPELESS_LOW = 1.5, GROWTH_HOPELESS_HIGH = 50;
static const double SPEED_HOPELESS = 20;
enum { ATTEMPTS = 3 };

static const char CLOCK_SECTION[] = "4.2 \"Reading the clock\"";
static const char LOOP_SECTION[] = "4.3 \"The timed loop\"";
static const char BARRIER_SECTION[] = "4.4 \"The barrier\"";
static const char ROUND_TRIP_SECTION[] = "4.6 \"A real wait: the round trip\"";

struct build {
    const char *level;          /* "-O0" */
    const char *under_test_env; /* STEP4_O0_UNDER_TEST */
    const char *reference_env;  /* STEP4_O0_REFERENCE */
};

static const struct build UNOPTIMISED = {"-O0", "STEP4_O0_UNDER_TEST", "STEP4_O0_REFERENCE"};
static const struct build OPTIMISED = {"-O2", "STEP4_O2_UNDER_TEST", "STEP4_O2_REFERENCE"};

/* One finished run of a step 4 program. */
struct step4_run {
    char role[64];     /* "your -O2 build", "the reference -O2 build" */
    char command[600]; /* to repeat it by hand */
    struct program_run run;
};

/* ------------------------------------------------------------ running */

/* What a program said on stderr besides its TODO lines (which messages
 * show apart), at most the last 600 bytes. Valid until the next call. */
static const char *stderr_tail(const char *text)
{
    static char kept[4096];
    size_t used = 0;

    kept[0] = '\0';
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t length = end ? (size_t)(end - line + 1) : strlen(line);
        if (strncmp(line, "TODO:", 5) != 0 && used + length < sizeof kept) {
            memcpy(kept + used, line, length);
            used += length;
            kept[used] = '\0';
        }
        line = end ? end + 1 : NULL;
    }
    return used > 600 ? kept + used - 600 : kept;
}

/* "your -O2 build" -> "Your -O2 build", to begin a sentence. Valid until
 * the next call. */
static const char *capitalised(const char *text)
{
    static char copy[64];

    snprintf(copy, sizeof copy, "%s", text);
    if (copy[0] >= 'a' && copy[0] <= 'z')
        copy[0] = (char)(copy[0] - 'a' + 'A');
    return copy;
}

/* Runs path with the flags (space-separated). Fails the test, with what the
 * program said, unless it exits 0 in time. */
static void run_step4(struct step4_run *result, const char *role, const char *path,
                      const char *flags)
{
    char words[256];
    const char *argv[MAX_ARGS] = {path};
    int count = 1;

    snprintf(result->role, sizeof result->role, "%s", role);
    snprintf(result->command, sizeof result->command, "%s %s", short_path(path), flags);
    snprintf(words, sizeof words, "%s", flags);
    for (char *word = strtok(words, " "); word != NULL && count < MAX_ARGS - 1;
         word = strtok(NULL, " "))
        argv[count++] = word;
    argv[count] = NULL;
    if (!run_program(argv, RUN_TIMEOUT_MS, &result->run))
        fail_test("Could not start %s (%s). Build it first: `meson compile -C build`.", role, path);
    if (result->run.timed_out)
        fail_test("%s did not finish within %d s. A loop that never ends, or a read that waits "
                  "for a byte that never comes?\nTry it by hand: %s%s",
                  capitalised(role), RUN_TIMEOUT_MS / 1000, result->command,
                  todo_lines(result->run.err));
    if (result->run.exit_code != 0)
        fail_test("%s stopped with exit status %d (signal %d) instead of 0.\nIt said on stderr:\n"
                  "%s\nTry it by hand: %s%s",
                  capitalised(role), result->run.exit_code, result->run.term_signal,
                  stderr_tail(result->run.err), result->command, todo_lines(result->run.err));
}

static void run_machine(struct step4_run *result, const char *role, const char *path,
                        const char *flags)
{
    char machine_flags[200];

    snprintf(machine_flags, sizeof machine_flags, "--machine %s", flags);
    run_step4(result, role, path, machine_flags);
}

static void run_yours(struct step4_run *result, const struct build *build, const char *flags)
{
    char role[64];

    snprintf(role, sizeof role, "your %s build", build->level);
    run_machine(result, role, program_path(build->under_test_env), flags);
}

static void run_reference(struct step4_run *result, const struct build *build, const char *flags)
{
    char role[64];

    snprintf(role, sizeof role, "the reference %s build", build->level);
    run_machine(result, role, program_path(build->reference_env), flags);
}

/* The value of `key` in --machine output, or NULL. Valid until the next call. */
static const char *machine_value(const struct step4_run *result, const char *key)
{
    static char value[128];
    size_t key_length = strlen(key);

    for (const char *line = result->run.out; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t length = end ? (size_t)(end - line) : strlen(line);
        if (length > key_length && strncmp(line, key, key_length) == 0 && line[key_length] == '=') {
            snprintf(value, sizeof value, "%.*s", (int)(length - key_length - 1),
                     line + key_length + 1);
            return value;
        }
        line = end ? end + 1 : NULL;
    }
    return NULL;
}

static const char *required_value(const struct step4_run *result, const char *key)
{
    const char *value = machine_value(result, key);

    if (value == NULL)
        fail_test("%s printed no \"%s=\" line with --machine. main.c prints it: was main.c "
                  "changed?\nIt printed:\n%s\nTry it by hand: %s%s",
                  capitalised(result->role), key, result->run.out, result->command,
                  todo_lines(result->run.err));
    return value;
}

static uint64_t u64_value(const struct step4_run *result, const char *key)
{
    return strtoull(required_value(result, key), NULL, 10);
}

static double double_value(const struct step4_run *result, const char *key)
{
    return strtod(required_value(result, key), NULL);
}

static void free_run(struct step4_run *result)
{
    program_run_free(&result->run);
}

/* ------------------------------------------------------------ wording */

/* "Read NOTES.md section ... Try it by hand: ..." and the TODO lines. */
static const char *where_to_read(const char *section, const struct step4_run *result)
{
    static char text[3000];

    snprintf(text, sizeof text, "\nRead NOTES.md section %s.\nTry it by hand: %s%s", section,
             result->command, todo_lines(result->run.err));
    return text;
}

/* A guess at what went wrong, from the checksum a program gave for the
 * article's count. */
static const char *checksum_diagnosis(uint64_t got)
{
    if (got == 0)
        return "Nothing was added: is time_additions() still the stub, or is the sum never "
               "returned as the checksum?";
    if (got == ARTICLE_CHECKSUM + ARTICLE_ADDITIONS)
        return "That is 1 + 2 + ... + 1 000 000: the loop must start at 0 and stop before n.";
    if (got == ARTICLE_CHECKSUM - (ARTICLE_ADDITIONS - 1))
        return "The last number, 999 999, was not added: the loop must run while i < n.";
    if (got == (uint32_t)ARTICLE_CHECKSUM)
        return "That is the right sum cut to 32 bits: keep the sum in a uint64_t.";
    return "Check that the loop adds every i from 0 up to n - 1, once each, into one uint64_t "
           "that starts at 0.";
}

/* ================================ stage 1: the clock ================================ */

static uint64_t monotonic_now_ns(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static const char *clock_diagnosis(uint64_t reading, uint64_t before, uint64_t after)
{
    if (reading == 0)
        return "0: is read_monotonic_clock_ns() still the stub?";
    if (reading > after && reading > 1000000000000000000u)
        return "That is about the number of nanoseconds since 1970: CLOCK_REALTIME, the "
               "wall clock, which jumps when the time is set. Use CLOCK_MONOTONIC.";
    if (reading * 1000 >= before && reading * 1000 <= after + 1000)
        return "That is the right clock in microseconds: multiply tv_sec by 1 000 000 000 and "
               "add tv_nsec as it is.";
    if (reading * 1000000 >= before && reading * 1000000 <= after + 1000000)
        return "That is the right clock in milliseconds: the reading must be in nanoseconds.";
    return "Use clock_gettime(CLOCK_MONOTONIC, ...) and tv_sec * 1 000 000 000 + tv_nsec, in "
           "64 bits (a 32-bit product overflows).";
}

Test(step4, program_reads_the_same_monotonic_clock_as_the_test)
{
    struct step4_run yours;

    /* CLOCK_MONOTONIC is one clock for the whole machine: the program's
     * reading must fall between ours before it started and after it ended. */
    uint64_t before = monotonic_now_ns();
    run_yours(&yours, &OPTIMISED, "--n 1000 --runs 1 --no-round-trip");
    uint64_t after = monotonic_now_ns();
    uint64_t reading = u64_value(&yours, "clock_reading_ns");

    if (reading < before || reading > after)
        fail_test("%s read the clock at %" PRIu64 ". CLOCK_MONOTONIC, in nanoseconds, read by "
                  "this test just before and just after the program ran: %" PRIu64 " and %" PRIu64
                  ".\n%s%s",
                  capitalised(yours.role), reading, before, after,
                  clock_diagnosis(reading, before, after), where_to_read(CLOCK_SECTION, &yours));
    free_run(&yours);
}

/* ================================ stage 2: the sum ================================ */

Test(step4, checksum_of_the_articles_million_additions_is_499999500000)
{
    const struct build *builds[] = {&UNOPTIMISED, &OPTIMISED};

    for (int i = 0; i < 2; i++) {
        struct step4_run yours;
        run_yours(&yours, builds[i], "--n 1000000 --runs 3 --no-round-trip");
        uint64_t got = u64_value(&yours, "checksum");
        if (got != ARTICLE_CHECKSUM)
            fail_test("%s added the article's 1 000 000 numbers and reported the checksum "
                      "%" PRIu64 ".\nExpected 499999500000, as in the article.\n%s%s",
                      capitalised(yours.role), got, checksum_diagnosis(got),
                      where_to_read(LOOP_SECTION, &yours));
        if (strcmp(required_value(&yours, "checksums_agree"), "yes") != 0)
            fail_test("%s gave different checksums in different runs of the same count. "
                      "The sum must start at 0 in every call of time_additions(); a static "
                      "or global sum keeps growing.%s",
                      capitalised(yours.role), where_to_read(LOOP_SECTION, &yours));
        free_run(&yours);
    }
}

/* ================================ stage 3: the timed loop ================================ */

/* ------------------------------------------------- reading the code */

/* 0 + 1 + ... + 999 999 = 499 999 500 000 = 0x746a4ae6e0: the constant a
 * compiler that folded the loop leaves in its place. */
static const char FOLDED_CHECKSUM[] = "$0x746a4ae6e0";

enum { MAX_INSTRUCTIONS = 2000, MAX_SHOWN = 14 };

struct instruction {
    uint64_t address;
    char mnemonic[16];
    char operands[120];
    bool jumps_back; /* a jump to an address at or before its own: maybe a loop */
    uint64_t target; /* of a direct jump; 0 otherwise */
};

struct listing {
    struct instruction instructions[MAX_INSTRUCTIONS];
    int count;
    char command[700]; /* to look at it by hand */
};

/* Skips an instruction prefix objdump prints as a word of its own. */
static const char *skip_prefixes(const char *text)
{
    const char *prefixes[] = {"cs ", "ds ", "rep ", "repz ", "repnz ", "lock ", "notrack ",
                              "bnd ", "data16 "};
    bool skipped = true;

    while (skipped) {
        skipped = false;
        for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
            size_t length = strlen(prefixes[i]);
            if (strncmp(text, prefixes[i], length) == 0) {
                text += length;
                while (*text == ' ')
                    text++;
                skipped = true;
            }
        }
    }
    return text;
}

/* One line of `objdump -d --no-show-raw-insn`: "  11e0:\tadd    %rax,%rbx". */
static bool parse_instruction(const char *line, struct instruction *instruction)
{
    char *after_address;
    unsigned long long address = strtoull(line, &after_address, 16);

    if (after_address == line || after_address[0] != ':' || after_address[1] != '\t')
        return false;
    const char *text = skip_prefixes(after_address + 2);
    *instruction = (struct instruction){.address = address};
    if (sscanf(text, "%15s %119[^\n]", instruction->mnemonic, instruction->operands) < 1)
        return false;
    if (instruction->mnemonic[0] == 'j') {
        char *end;
        unsigned long long target = strtoull(instruction->operands, &end, 16);
        if (end != instruction->operands) {
            instruction->target = target;
            instruction->jumps_back = target <= address;
        }
    }
    return true;
}

/* Disassembles measure_additions() of the program at path. */
static void disassemble_measure_additions(const char *path, struct listing *listing)
{
    const char *argv[] = {OBJDUMP, "-d", "--no-show-raw-insn", "-M", "att",
                          "--disassemble=measure_additions", path, NULL};
    struct program_run run;

    snprintf(listing->command, sizeof listing->command,
             "objdump -d --no-show-raw-insn --disassemble=measure_additions %s", short_path(path));
    if (!run_program(argv, RUN_TIMEOUT_MS, &run) || run.exit_code != 0)
        fail_test("Could not read the code of %s with %s (exit status %d): %s", short_path(path),
                  OBJDUMP, run.exit_code, run.err ? run.err : "");
    listing->count = 0;
    for (const char *line = run.out; line != NULL && *line != '\0' &&
                                      listing->count < MAX_INSTRUCTIONS;) {
        if (parse_instruction(line, &listing->instructions[listing->count]))
            listing->count++;
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    program_run_free(&run);
}

static bool is_call(const struct instruction *instruction)
{
    return strncmp(instruction->mnemonic, "call", 4) == 0;
}

/* A memory operand (nop's padding operands aside; lea only computes an address). */
static bool touches_memory(const struct instruction *instruction)
{
    return strchr(instruction->operands, '(') != NULL &&
           strncmp(instruction->mnemonic, "nop", 3) != 0 &&
           strncmp(instruction->mnemonic, "lea", 3) != 0;
}

/* sum += i: an add of one register into another ("add %rax,%rbx"), or the
 * same made by lea ("lea (%rbx,%rax,1),%rbx"). */
static bool adds_register_to_register(const struct instruction *instruction)
{
    const char *operands = instruction->operands;

    if (strncmp(instruction->mnemonic, "add", 3) == 0 && strchr(operands, '$') == NULL &&
        strchr(operands, '(') == NULL && strchr(operands, ',') != NULL)
        return true;
    return strncmp(instruction->mnemonic, "lea", 3) == 0 && strncmp(operands, "(%", 2) == 0 &&
           strstr(operands, ",%") != NULL;
}

static int index_of(const struct listing *listing, uint64_t address)
{
    for (int i = 0; i < listing->count; i++)
        if (listing->instructions[i].address == address)
            return i;
    return -1;
}

/* A call after which the code never goes on. */
static bool ends_the_program(const struct instruction *instruction)
{
    const char *never_return[] = {"<exit", "<_exit", "<abort", "<__stack_chk_fail",
                                  "<__assert_fail", "<__ubsan_handle", "<__asan_report"};

    for (size_t i = 0; i < sizeof never_return / sizeof never_return[0]; i++)
        if (strstr(instruction->operands, never_return[i]) != NULL)
            return true;
    return false;
}

/* Whether the jump back at listing index `jump` closes a loop: from its
 * target, the code runs on (taking no branch, following jumps forward
 * inside the range) to the jump itself. A jump back to shared code, such as
 * the clock read after an empty loop, is not a loop. */
static bool closes_a_loop(const struct listing *listing, int jump)
{
    uint64_t end = listing->instructions[jump].address;
    int i = index_of(listing, listing->instructions[jump].target);

    while (i >= 0 && i < jump) {
        const struct instruction *instruction = &listing->instructions[i];
        if (strncmp(instruction->mnemonic, "ret", 3) == 0 || strcmp(instruction->mnemonic, "ud2") == 0 ||
            (is_call(instruction) && ends_the_program(instruction)))
            return false;
        if (strncmp(instruction->mnemonic, "jmp", 3) == 0) {
            if (instruction->target <= instruction->address || instruction->target > end)
                return false;
            i = index_of(listing, instruction->target);
            continue;
        }
        i++;
    }
    return i == jump;
}

/* What a loop of measure_additions() does, from its first instruction to
 * the jump back. */
struct loop {
    int first, last; /* indexes in the listing */
    bool calls;
    bool touches_memory;
    bool adds;
    char called[120]; /* the operand of the first call */
};

static struct loop describe_loop(const struct listing *listing, int jump)
{
    struct loop loop = {.last = jump, .first = jump};

    while (loop.first > 0 &&
           listing->instructions[loop.first - 1].address >= listing->instructions[jump].target)
        loop.first--;
    for (int i = loop.first; i <= loop.last; i++) {
        const struct instruction *instruction = &listing->instructions[i];
        if (is_call(instruction) && !loop.calls) {
            loop.calls = true;
            snprintf(loop.called, sizeof loop.called, "%s", instruction->operands);
        }
        loop.touches_memory = loop.touches_memory || touches_memory(instruction);
        loop.adds = loop.adds || adds_register_to_register(instruction);
    }
    return loop;
}

/* The loop's instructions, for a message. Valid until the next call. */
static const char *show_loop(const struct listing *listing, const struct loop *loop)
{
    static char text[2000];
    size_t used = 0;

    text[0] = '\0';
    for (int i = loop->first; i <= loop->last && used + 200 < sizeof text; i++) {
        const struct instruction *instruction = &listing->instructions[i];
        if (i - loop->first == MAX_SHOWN) {
            used += (size_t)snprintf(text + used, sizeof text - used, "\n    ...");
            break;
        }
        used += (size_t)snprintf(text + used, sizeof text - used, "\n    %6" PRIx64 ":  %-7s %s",
                                 instruction->address, instruction->mnemonic,
                                 instruction->operands);
    }
    return text;
}

static bool holds_folded_checksum(const struct listing *listing)
{
    for (int i = 0; i < listing->count; i++)
        if (strstr(listing->instructions[i].operands, FOLDED_CHECKSUM) != NULL)
            return true;
    return false;
}

/* The loops of measure_additions(), described. */
static int find_loops(const struct listing *listing, struct loop *loops, int room)
{
    int count = 0;

    for (int i = 0; i < listing->count && count < room; i++)
        if (listing->instructions[i].jumps_back && closes_a_loop(listing, i))
            loops[count++] = describe_loop(listing, i);
    return count;
}

/* What is wrong with the code, most telling first; NULL if nothing. The
 * loop it is about, if any, in *shown. Valid until the next call. */
static const char *code_verdict(const struct listing *listing, const struct loop *loops, int count,
                                const struct loop **shown)
{
    *shown = NULL;
    for (int i = 0; i < listing->count; i++)
        if (is_call(&listing->instructions[i]) &&
            strstr(listing->instructions[i].operands, "<exercise_unwritten") != NULL)
            return "measure_additions() still runs the stub of time_additions(): there is no "
                   "loop to look at yet.";
    if (count == 0)
        return "measure_additions() has no loop left: gcc replaced the additions by their "
               "result. The barrier must make the sum unpredictable after every addition: "
               "__asm__ __volatile__(\"\" : \"+r\"(sum)); right after sum += i.";
    for (int i = 0; i < count; i++)
        if (loops[i].calls) {
            static char text[400];
            *shown = &loops[i];
            snprintf(text, sizeof text,
                     "The loop calls %s on every turn: that call is timed with the additions. "
                     "A clock read costs about 20 ns, a print far more, an addition a quarter "
                     "of a nanosecond. Only the addition and the barrier belong in the loop.",
                     loops[i].called);
            return text;
        }
    for (int i = 0; i < count; i++)
        if (loops[i].touches_memory) {
            *shown = &loops[i];
            return "The loop goes to memory on every turn (a load and a store of the sum): a "
                   "volatile sum, or a barrier that asks for memory (\"+m\", \"+g\"), does "
                   "that, and times memory traffic rather than additions. Keep the sum in a "
                   "register: __asm__ __volatile__(\"\" : \"+r\"(sum)); after sum += i.";
        }
    for (int i = 0; i < count; i++)
        if (!loops[i].adds)
            *shown = &loops[i];
    if (holds_folded_checksum(listing))
        return "measure_additions() holds the constant 499999500000 (0x746a4ae6e0): gcc "
               "worked out 0 + 1 + ... + 999 999 while compiling, and the checksum you print "
               "comes from the compiler, not from your loop; whatever the clock shows, the "
               "additions it claims to time were not done. The barrier must make the sum "
               "unpredictable after every addition: __asm__ __volatile__(\"\" : \"+r\"(sum)); "
               "right after sum += i (an empty asm with a \"memory\" clobber, or one that "
               "names i, leaves the sum predictable).";
    if (*shown != NULL)
        return "The loop only counts: it adds no register into the sum. The compiler worked "
               "the sum out itself, because the barrier does not say that the sum may change. "
               "The barrier must take the sum as \"+r\"(sum).";
    return NULL;
}

Test(step4, optimised_build_adds_in_its_loop_and_does_nothing_else_there)
{
    /* Timing cannot see a loop that still counts while the sum was
     * computed by the compiler: read the code instead. */
    const char *path = program_path(OPTIMISED.under_test_env);
    static struct listing listing;
    struct loop loops[8];
    const struct loop *shown;
    struct step4_run yours; /* run once, for its TODO lines */

    run_yours(&yours, &OPTIMISED, "--n 1 --runs 1 --no-round-trip");
    disassemble_measure_additions(path, &listing);
    check(listing.count > 0,
          "objdump found no measure_additions() in %s. addloop.c's measure_additions() is "
          "given code: was it renamed or made static?\nLook by hand: %s%s",
          short_path(path), listing.command, todo_lines(yours.run.err));
    int count = find_loops(&listing, loops, 8);
    const char *verdict = code_verdict(&listing, loops, count, &shown);
    check(verdict == NULL,
          "The code of your -O2 build does not run the article's chain of additions.\n%s%s%s\n"
          "Expected, as in the reference, a loop of register instructions that adds i into "
          "the sum (add %%rax,%%rbx), counts, and jumps back, between the two clock "
          "readings.\nRead NOTES.md section %s.\nLook by hand: %s%s",
          verdict, shown ? "\nThe loop:" : "", shown ? show_loop(&listing, shown) : "",
          BARRIER_SECTION, listing.command, todo_lines(yours.run.err));
    free_run(&yours);
}

/* ------------------------------------------------------------ timings */

/* The fastest run of a program's --machine output: interference only ever
 * adds time, so the minimum is the steadiest figure of a shared machine. */
static double fastest_ns(const struct step4_run *run)
{
    return (double)u64_value(run, "total_ns_min");
}

/* Why timings are off when the additions were not timed: the first cause
 * fits a loop the compiler folded, the second an empty timed region. */
static const char NOT_TIMED[] =
    "Your timed region did not contain the additions. Either the compiler folded the loop "
    "into its answer (it knows the article's count: measure_additions() passes it as a "
    "literal), so the barrier is missing or does not reach the sum (section 4.4 "
    "\"The barrier\"); or the clock is read around something else than the loop: the two "
    "readings must enclose it, start just before, stop just after.";

struct growth {
    double yours_one, yours_eight, reference_one, reference_eight;
    struct step4_run example; /* your 1 000 000 run, for the command and the TODO lines */
};

/* One measurement of both programs at 1 000 000 and 8 000 000 additions.
 * False, with yours_eight left at 0, when yours is so slow at 1 000 000
 * that 8 000 000 would take minutes (a print in the loop): the speed test
 * names that mistake. */
static bool measure_growth(struct growth *growth)
{
    /* 1 000 000 is the article's count, the one the compiler knows. */
    const char *one = "--n 1000000 --runs 15 --no-round-trip";
    const char *eight = "--n 8000000 --runs 7 --no-round-trip";
    struct step4_run reference_one, reference_eight, yours_eight;

    run_reference(&reference_one, &OPTIMISED, one);
    run_yours(&growth->example, &OPTIMISED, one);
    growth->yours_one = fastest_ns(&growth->example);
    growth->reference_one = fastest_ns(&reference_one);
    growth->yours_eight = growth->reference_eight = 0;
    free_run(&reference_one);
    if (growth->yours_one > SPEED_HOPELESS * growth->reference_one)
        return false;
    run_reference(&reference_eight, &OPTIMISED, eight);
    run_yours(&yours_eight, &OPTIMISED, eight);
    growth->yours_eight = fastest_ns(&yours_eight);
    growth->reference_eight = fastest_ns(&reference_eight);
    free_run(&reference_eight);
    free_run(&yours_eight);
    return true;
}

static void fail_growth(const struct growth *growth, int attempts, const char *cause)
{
    double ratio = growth->yours_one > 0 ? growth->yours_eight / growth->yours_one : 0;

    fail_test("8 times the additions should take about 8 times as long.\n"
              "%s: 1 000 000 additions in %.0f ns, 8 000 000 in %.0f ns: %.1fx (fastest runs, "
              "measured %d time(s)).\n"
              "The reference -O2 build, just before: %.0f ns and %.0f ns: %.1fx.\n"
              "Expected between %.0fx and %.0fx, and 1 000 000 additions taking at least "
              "1/%.0f of the reference's time.\n%s%s",
              capitalised(growth->example.role), growth->yours_one, growth->yours_eight, ratio,
              attempts, growth->reference_one, growth->reference_eight,
              growth->reference_one > 0 ? growth->reference_eight / growth->reference_one : 0,
              GROWTH_LOW, GROWTH_HIGH, SPEED_HOPELESS, cause,
              where_to_read(BARRIER_SECTION, &growth->example));
}

Test(step4, optimised_time_grows_eightfold_with_eight_times_the_additions)
{
    static struct growth growth;

    for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
        if (!measure_growth(&growth))
            fail_test("%s took %.0f ns for 1 000 000 additions; the reference -O2 build, just "
                      "before, %.0f ns. At more than %.0f times the reference, 8 000 000 would "
                      "take too long to try.\nSomething besides the addition runs inside the "
                      "timed loop: a function call, a print, a clock read? Only the addition "
                      "and the barrier belong there.%s",
                      capitalised(growth.example.role), growth.yours_one, growth.reference_one,
                      SPEED_HOPELESS, where_to_read(LOOP_SECTION, &growth.example));
        double t1 = growth.yours_one, t8 = growth.yours_eight;
        if (t1 == 0 && t8 == 0)
            fail_test("%s reported 0 ns for 1 000 000 and for 8 000 000 additions: the clock "
                      "reads did not move. Does read_monotonic_clock_ns() still return 0, or "
                      "is its result not used?%s",
                      capitalised(growth.example.role),
                      where_to_read(CLOCK_SECTION, &growth.example));
        /* Absolute sanity first: a ratio of two times that are both the
         * cost of a clock read (20 ns) is noise, and proves nothing. */
        if (t1 * SPEED_HOPELESS < growth.reference_one)
            fail_growth(&growth, attempt, NOT_TIMED);
        double ratio = t1 > 0 ? t8 / t1 : 0;
        if (ratio >= GROWTH_LOW && ratio <= GROWTH_HIGH)
            break;
        if (ratio < GROWTH_HOPELESS_LOW || ratio > GROWTH_HOPELESS_HIGH || attempt == ATTEMPTS)
            fail_growth(&growth, attempt,
                        ratio < GROWTH_LOW ? NOT_TIMED
                                           : "Both counts were timed, but not in proportion, "
                                             "three times over. Compare your loop with section "
                                             "4.3.");
        free_run(&growth.example);
    }
    free_run(&growth.example);
}

static void fail_speed(const struct build *build, const struct step4_run *yours,
                       double your_ns, double reference_ns, double cycle_ns, int attempts)
{
    double ratio = reference_ns > 0 ? your_ns / reference_ns : 0;

    if (ratio < 1)
        fail_test("%s took %.5f ns per addition; the reference %s build %.5f ns, and one CPU "
                  "cycle here lasts %.5f ns (fastest runs, measured %d time(s)). Expected "
                  "within %.0fx of the reference.\nThat much faster than the reference means "
                  "the additions were not all done while the clock ran.\n%s%s",
                  capitalised(yours->role), your_ns, build->level, reference_ns, cycle_ns,
                  attempts, SPEED_FACTOR,
                  your_ns == 0 ? "0 ns: is read_monotonic_clock_ns() or time_additions() "
                                 "still the stub?"
                               : NOT_TIMED,
                  where_to_read(your_ns == 0 ? CLOCK_SECTION : BARRIER_SECTION, yours));
    fail_test("%s took %.4f ns per addition; the reference %s build %.4f ns (yours is %.1fx "
              "slower; one CPU cycle here lasts %.4f ns; fastest runs, measured %d time(s)). "
              "Expected within %.0fx of the reference.\nSomething besides the addition runs "
              "inside the timed loop: a function call, a print, a clock read, a volatile "
              "variable? Only the addition and the barrier belong there.%s",
              capitalised(yours->role), your_ns, build->level, reference_ns, ratio, cycle_ns,
              attempts, SPEED_FACTOR, where_to_read(LOOP_SECTION, yours));
}

static void compare_speed(const struct build *build)
{
    const char *flags = "--n 1000000 --runs 11 --no-round-trip";

    for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
        struct step4_run yours, reference;
        run_reference(&reference, build, flags);
        run_yours(&yours, build, flags);
        double your_ns = fastest_ns(&yours) / (double)ARTICLE_ADDITIONS;
        double reference_ns = fastest_ns(&reference) / (double)ARTICLE_ADDITIONS;
        double cycle_ns = double_value(&reference, "ns_per_cycle");
        double ratio = reference_ns > 0 ? your_ns / reference_ns : 0;
        bool inside = ratio >= 1 / SPEED_FACTOR && ratio <= SPEED_FACTOR;
        bool hopeless = ratio < 1 / SPEED_HOPELESS || ratio > SPEED_HOPELESS;
        if (!inside && (hopeless || attempt == ATTEMPTS))
            fail_speed(build, &yours, your_ns, reference_ns, cycle_ns, attempt);
        free_run(&yours);
        free_run(&reference);
        if (inside)
            return;
    }
}

Test(step4, ns_per_addition_is_close_to_the_reference_at_each_level)
{
    compare_speed(&UNOPTIMISED);
    compare_speed(&OPTIMISED);
}

/* ================================ stage 4: the round trip ================================ */

/* A measured round trip's median, or a failure saying why there is none. */
static double round_trip_median(struct step4_run *result)
{
    if (strcmp(required_value(result, "round_trip"), "measured") != 0)
        fail_test("%s did not measure the round trip (round_trip=%s).%s%s%s",
                  capitalised(result->role), required_value(result, "round_trip"),
                  stderr_tail(result->run.err)[0] ? " It said on stderr:\n" : "",
                  stderr_tail(result->run.err), where_to_read(ROUND_TRIP_SECTION, result));
    double median = (double)u64_value(result, "round_trip_median_ns");
    double p99 = (double)u64_value(result, "round_trip_p99_ns");
    if (median <= 0 || p99 < median)
        fail_test("%s reported a round trip of median %.0f ns and p99 %.0f ns. Expected a "
                  "positive median, and a p99 at least as long.\nIs the time taken before the "
                  "write and after the read, with read_monotonic_clock_ns()?%s",
                  capitalised(result->role), median, p99,
                  where_to_read(ROUND_TRIP_SECTION, result));
    return median;
}

Test(step4, round_trip_is_measured_and_plausible_next_to_the_reference)
{
    /* The exact checks are the simulated suite's; this one proves the
     * round trip works on a real socket and lands in the right range. */
    const char *flags = "--n 1000 --runs 1 --round-trips 500";

    for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
        struct step4_run yours, reference;
        run_reference(&reference, &OPTIMISED, flags);
        if (strcmp(required_value(&reference, "round_trip"), "measured") != 0)
            fail_test("The reference could not measure a round trip on this machine, so yours "
                      "cannot be compared. It said on stderr:\n%s\nTry it by hand: %s",
                      stderr_tail(reference.run.err), reference.command);
        run_yours(&yours, &OPTIMISED, flags);
        double your_median = round_trip_median(&yours);
        double reference_median = (double)u64_value(&reference, "round_trip_median_ns");
        double ratio = your_median / reference_median;
        bool inside = ratio >= 1 / ROUND_TRIP_FACTOR && ratio <= ROUND_TRIP_FACTOR;
        char echo_cpu[16], timer_cpu[16]; /* required_value() reuses its buffer */
        snprintf(echo_cpu, sizeof echo_cpu, "%s", required_value(&reference, "round_trip_echo_cpu"));
        snprintf(timer_cpu, sizeof timer_cpu, "%s",
                 required_value(&reference, "round_trip_timer_cpu"));
        if (!inside && attempt == ATTEMPTS)
            fail_test("%s measured a median round trip of %.1f µs; the reference, just before, "
                      "%.1f µs (echo on CPU %s, timer on CPU %s). Expected within %.0fx, and "
                      "it was not, %d times over.\n%s%s",
                      capitalised(yours.role), your_median / 1000, reference_median / 1000,
                      echo_cpu, timer_cpu, ROUND_TRIP_FACTOR,
                      ATTEMPTS,
                      ratio < 1 ? "Shorter: is the clock read after the write but before the "
                                  "read, so that the wait for the echo is left out?"
                                : "Longer: does the timed part do more than one write and one "
                                  "read of one byte?",
                      where_to_read(ROUND_TRIP_SECTION, &yours));
        free_run(&yours);
        free_run(&reference);
        if (inside)
            return;
    }
}

/* ================================ stage 5: the program ================================ */

Test(step4, default_run_prints_one_table_with_both_builds)
{
    struct step4_run yours;
    const char *expected[] = {"article (Rust)",
                              "ours, -O0",
                              "ours, -O2",
                              "13 503 041",
                              "499 999 500 000",
                              "additions in a 20 µs wait",
                              "additions in one round trip"};

    run_step4(&yours, "your -O2 build", program_path(OPTIMISED.under_test_env),
              "--n 100000 --runs 3 --round-trips 200");
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        if (strstr(yours.run.out, expected[i]) == NULL)
            fail_test("The table of %s has no \"%s\". It printed:\n%s\nmain.c and table.c are "
                      "given code: were they changed?\nTry it by hand: %s%s",
                      yours.role, expected[i], yours.run.out, yours.command,
                      todo_lines(yours.run.err));
    if (strstr(yours.run.out, "the other build: not measured") != NULL)
        fail_test("The table of %s could not show the -O0 build beside it. It printed:\n%s\n"
                  "Both builds must sit in one folder, named ..._O0 and ..._O2 (meson does "
                  "this).\nTry it by hand: %s%s",
                  yours.role, yours.run.out, yours.command, todo_lines(yours.run.err));
    free_run(&yours);
}

Test(step4, bad_flags_print_usage_and_exit_2)
{
    const char *path = program_path(OPTIMISED.under_test_env);
    const char *bad[][3] = {{"--frobnicate", NULL, NULL},
                            {"--n", "twelve", NULL},
                            {"--runs", "0", NULL},
                            {"--n", NULL, NULL}};

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *argv[] = {path, bad[i][0], bad[i][1], NULL};
        struct program_run run;
        if (!run_program(argv, RUN_TIMEOUT_MS, &run))
            fail_test("Could not start %s.", path);
        if (run.exit_code != 2 || strstr(run.err, "usage:") == NULL)
            fail_test("%s %s %s exited with status %d and said on stderr:\n%s\nExpected the "
                      "usage on stderr and exit status 2. main.c is given code: was it "
                      "changed?",
                      short_path(path), bad[i][0], bad[i][1] ? bad[i][1] : "", run.exit_code,
                      run.err);
        program_run_free(&run);
    }
}
