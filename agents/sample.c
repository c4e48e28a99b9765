#include "sample.h"

#include "../sim/common.h"

#include <math.h>
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

double sample_distinct_logprob(int n, int k)
{
    double logp = 0.0;
    for (int i = 0; i < k; i++)
        logp -= log((double)(n - i));
    return logp;
}

/* log P(final slate | chosen slate) of sample_explore, when the two differ at
 * `differ` of k positions: every differing slot was given up, and any t of the
 * a = k - differ agreeing ones may have been too (and refilled with the same
 * item). With g = differ + t slots given up, the refills are an ordered draw of
 * g from the n - k + g candidates not kept:
 *   P = sum_t C(a, t) eps^g (1 - eps)^(k - g) (n - k)! / (n - k + g)!. */
static double explore_term(int n, int k, int differ, int t, double epsilon)
{
    int a = k - differ, g = differ + t;
    double log_keep = k - g > 0 ? (k - g) * log1p(-epsilon) : 0.0;
    return lgamma(a + 1.0) - lgamma(t + 1.0) - lgamma(a - t + 1.0) + g * log(epsilon) +
           log_keep + lgamma(n - k + 1.0) - lgamma(n - k + g + 1.0);
}

static double explore_logprob(int n, int k, int differ, double epsilon)
{
    double max = -INFINITY, sum = 0.0;
    for (int t = 0; t <= k - differ; t++)
        max = fmax(max, explore_term(n, k, differ, t, epsilon));
    if (!isfinite(max))
        return -INFINITY;
    for (int t = 0; t <= k - differ; t++)
        sum += exp(explore_term(n, k, differ, t, epsilon) - max);
    return max + log(sum);
}

double sample_explore(gsl_rng *r, const int *candidates, int n, int *slate, int k,
                      double epsilon)
{
    if (epsilon <= 0)
        return 0.0;
    int given_up = 0, differ = 0;
    for (int s = 0; s < k; s++) {
        if (gsl_rng_uniform(r) < epsilon) {
            slate[s] = -2 - slate[s]; /* given up; negative, so never a candidate */
            given_up++;
        }
    }
    /* Rejection sampling: at least n - k + 1 >= 1 candidates are free for each
     * slot, so the expected number of draws per slot is at most k. */
    for (int s = 0; s < k && given_up > 0; s++) {
        if (slate[s] >= 0)
            continue;
        int chosen = -2 - slate[s], item;
        do
            item = candidates[gsl_rng_uniform_int(r, (unsigned long)n)];
        while (sample_contains(slate, k, item));
        slate[s] = item;
        differ += item != chosen;
    }
    return explore_logprob(n, k, differ, epsilon);
}
