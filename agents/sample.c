#include "sample.h"

#include "../sim/common.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* Draws of gsl_rng_uniform_int(r, n) for one n, many times over: the same values
 * from the same generator outputs, with gsl's per-draw division by
 * scale = range / n done as a multiplication. For generator outputs below 2^32
 * and 2 <= scale < 2^32, floor(x / scale) = floor(x M / 2^64) with
 * M = ceil(2^64 / scale) (Lemire, Kaser and Kurz 2019, "Faster remainder by
 * direct computation", theorem 1 with N = 32, F = 64), computed below in two
 * 32-bit halves; other generators keep the division. */
typedef struct {
    const gsl_rng *r;
    unsigned long offset, scale, n;
    uint64_t inverse_hi, inverse_lo; /* M = inverse_hi 2^32 + inverse_lo; 0 = divide */
} uniform_ints;

static void uniform_ints_init(uniform_ints *u, const gsl_rng *r, unsigned long n)
{
    unsigned long range = r->type->max - r->type->min;
    *u = (uniform_ints){.r = r, .offset = r->type->min, .scale = range / n, .n = n};
    if (range <= UINT32_MAX && u->scale >= 2) {
        uint64_t inverse = UINT64_MAX / u->scale + 1;
        u->inverse_hi = inverse >> 32;
        u->inverse_lo = inverse & UINT32_MAX;
    }
}

static inline unsigned long uniform_ints_next(const uniform_ints *u)
{
    const gsl_rng *r = u->r;
    unsigned long k;
    do {
        uint64_t x = r->type->get(r->state) - u->offset;
        if (u->inverse_hi)
            k = (unsigned long)((x * u->inverse_hi + ((x * u->inverse_lo) >> 32)) >> 32);
        else
            k = (unsigned long)(x / u->scale);
    } while (k >= u->n);
    return k;
}

int sample_contains(const int *items, int n, int item)
{
    for (int i = 0; i < n; i++)
        if (items[i] == item)
            return 1;
    return 0;
}

enum { SEEN_WORDS = 16 };

int sample_distinct(gsl_rng *r, const int *candidates, int n, int *out, int k)
{
    if (n < k)
        return DS_EINPUT;
    if (k <= 0)
        return DS_OK;
    if (4 * k <= n) {
        /* Few picks from many: redraw duplicates; expected draws < 4k/3. A
         * 1024-bit filter of the picks' low bits settles most "not picked yet"
         * at a glance; only a hit in it looks through the picks. */
        uint64_t seen[SEEN_WORDS] = {0};
        uniform_ints draw;
        uniform_ints_init(&draw, r, (unsigned long)n);
        for (int j = 0; j < k; j++) {
            int item;
            unsigned bit;
            do {
                item = candidates[uniform_ints_next(&draw)];
                bit = (unsigned)item % (64u * SEEN_WORDS);
            } while ((seen[bit / 64] >> (bit % 64) & 1) && sample_contains(out, j, item));
            seen[bit / 64] |= UINT64_C(1) << (bit % 64);
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

/* explore_logprob through the memo, if there is one. */
static double explore_logprob_memo(sample_explore_memo *memo, int n, int k, int differ,
                                   double epsilon)
{
    if (!memo || differ >= 64)
        return explore_logprob(n, k, differ, epsilon);
    if (memo->n != n || memo->k != k || memo->epsilon != epsilon)
        *memo = (sample_explore_memo){.n = n, .k = k, .epsilon = epsilon};
    uint64_t bit = (uint64_t)1 << differ;
    if (!(memo->known & bit)) {
        memo->logp[differ] = explore_logprob(n, k, differ, epsilon);
        memo->known |= bit;
    }
    return memo->logp[differ];
}

double sample_explore(gsl_rng *r, sample_explore_memo *memo, const int *candidates, int n,
                      int *slate, int k, double epsilon)
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
    uniform_ints draw;
    if (given_up > 0)
        uniform_ints_init(&draw, r, (unsigned long)n);
    for (int s = 0; s < k && given_up > 0; s++) {
        if (slate[s] >= 0)
            continue;
        int chosen = -2 - slate[s], item;
        do
            item = candidates[uniform_ints_next(&draw)];
        while (sample_contains(slate, k, item));
        slate[s] = item;
        differ += item != chosen;
    }
    return explore_logprob_memo(memo, n, k, differ, epsilon);
}
