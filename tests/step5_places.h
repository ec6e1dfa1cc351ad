/* Where step 5's failures send the learner, in NOTES.md chapter 5, when
 * tests/step3_test.c runs against step 5's server (meson passes
 * -DNOTES_PLACES="step5_places.h"). Step 3's parts of a connection's life
 * are, in step 5, parts of one straight-line handler and of the runtime
 * under it; the loop itself is given. */
static const struct place places[] = {
    /* A new client gets a coroutine; the loop that accepts it is given. */
    [ACCEPTING] = {"coroutine_create", 5, "Starting a coroutine"},
    [READING_INPUT] = {"read_request", 9, "Reading a head without blocking"},
    [STARTING] = {"serve_connection", 10, "One connection, top to bottom"},
    /* The delay is a sleep_ms() on the loop's timer, through your wait_for(). */
    [WAITING_OUT_THE_DELAY] = {"wait_for", 8, "Waiting is yielding"},
    [DELAY_OVER] = {"serve_connection", 10, "One connection, top to bottom"},
    /* send_whole_response() is given; it waits with your wait_for(). */
    [WRITING_OUTPUT] = {"wait_for", 8, "Waiting is yielding"},
    /* The loop is given: what goes wrong in it comes from a wait that
     * blocks, spins or never yields. */
    [THE_LOOP] = {"wait_for", 8, "Waiting is yielding"},
};
