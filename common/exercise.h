/* What a stub calls, so that the learner is told what to write next. */
#ifndef COMMON_EXERCISE_H
#define COMMON_EXERCISE_H

/* Prints, once per function and process, on stderr:
 *   TODO: write serve_forever(): see NOTES.md section 1.3 "The serial loop".
 * The tests copy these lines into their failure messages. */
void exercise_unwritten(const char *function, const char *section, const char *title);

#endif
