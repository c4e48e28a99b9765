#include "sample.h"

#include "../sim/common.h"

#include <stdlib.h>

int sample_contains(const int *items, int n, int item)
{
    for (int i = 0; i < n; i++)
        if (items[i] == item)
            return 1;
    return 0;
}

int sample_distinct(gsl_rng *r, const int *candidates, int n, int *out, int k)
{
    if (n < k)
        return DS_EINPUT;
    if (4 * k <= n) {
        /* Few picks from many: redraw duplicates; expected draws < 4k/3. */
        for (int j = 0; j < k; j++) {
            int item;
            do
                item = candidates[gsl_rng_uniform_int(r, (unsigned long)n)];
            while (sample_contains(out, j, item));
            out[j] = item;
        }
        return DS_OK;
    }
    int *pool = malloc((size_t)n * sizeof *pool);
    if (!pool)
        return DS_ENOMEM;
    for (int i = 0; i < n; i++)
        pool[i] = candidates[i];
    for (int j = 0; j < k; j++) {
        int pick = j + (int)gsl_rng_uniform_int(r, (unsigned long)(n - j));
        int tmp = pool[j];
        pool[j] = pool[pick];
        pool[pick] = tmp;
        out[j] = pool[j];
    }
    free(pool);
    return DS_OK;
}

void sample_explore(gsl_rng *r, const int *candidates, int n, int *slate, int k,
                    double epsilon)
{
    if (epsilon <= 0)
        return;
    int given_up = 0;
    for (int s = 0; s < k; s++) {
        if (gsl_rng_uniform(r) < epsilon) {
            slate[s] = -1;
            given_up++;
        }
    }
    /* Rejection sampling: at least n - k + 1 >= 1 candidates are free for each
     * slot, so the expected number of draws per slot is at most k. */
    for (int s = 0; s < k && given_up > 0; s++) {
        if (slate[s] != -1)
            continue;
        int item;
        do
            item = candidates[gsl_rng_uniform_int(r, (unsigned long)n)];
        while (sample_contains(slate, k, item));
        slate[s] = item;
    }
}
