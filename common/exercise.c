#include "exercise.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

enum { MAX_REMEMBERED = 32 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const char *already_reported[MAX_REMEMBERED];
static int reported_count;

/* A stub may be called in a loop: say it once, not a million times. */
static int first_report_of(const char *function)
{
    for (int i = 0; i < reported_count; i++)
        if (strcmp(already_reported[i], function) == 0)
            return 0;
    if (reported_count < MAX_REMEMBERED)
        already_reported[reported_count++] = function;
    return 1;
}

void exercise_unwritten(const char *function, const char *section, const char *title)
{
    pthread_mutex_lock(&lock);
    if (first_report_of(function)) {
        fprintf(stderr, "TODO: write %s(): see NOTES.md section %s \"%s\".\n", function, section,
                title);
        fflush(stderr);
    }
    pthread_mutex_unlock(&lock);
}
