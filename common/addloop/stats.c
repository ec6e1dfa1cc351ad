#include "stats.h"

#include <stdlib.h>

static int compare_u64(const void *a, const void *b)
{
    uint64_t left = *(const uint64_t *)a;
    uint64_t right = *(const uint64_t *)b;

    return (left > right) - (left < right);
}

/* The smallest value with at least `percent` % of all values at or below it. */
static uint64_t nearest_rank(const uint64_t *sorted, size_t count, size_t percent)
{
    size_t rank = (count * percent + 99) / 100; /* rounded up */

    if (rank < 1)
        rank = 1;
    if (rank > count)
        rank = count;
    return sorted[rank - 1];
}

struct summary summarise(uint64_t *values, size_t count)
{
    if (count == 0)
        return (struct summary){0};
    qsort(values, count, sizeof values[0], compare_u64);
    return (struct summary){
        .min = values[0],
        .median = nearest_rank(values, count, 50),
        .p99 = nearest_rank(values, count, 99),
        .max = values[count - 1],
    };
}
