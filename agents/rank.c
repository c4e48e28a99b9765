#include "rank.h"

#include "../sim/common.h"
#include "../sim/vecmath.h"

#include <math.h>
#include <stdlib.h>

/* Position a ranks above position b: higher score, then lower item id. */
static int ranks_above(const int *candidates, const double *scores, int a, int b)
{
    if (scores[a] != scores[b])
        return scores[a] > scores[b];
    return candidates[a] < candidates[b];
}

/* Restores the heap (worst position at the root) below slot i. */
static void sift_down(const int *candidates, const double *scores, int *heap, int len,
                      int i)
{
    for (;;) {
        int worst = i, l = 2 * i + 1, r = l + 1;
        if (l < len && ranks_above(candidates, scores, heap[worst], heap[l]))
            worst = l;
        if (r < len && ranks_above(candidates, scores, heap[worst], heap[r]))
            worst = r;
        if (worst == i)
            return;
        int t = heap[i];
        heap[i] = heap[worst];
        heap[worst] = t;
        i = worst;
    }
}

static void sift_up(const int *candidates, const double *scores, int *heap, int i)
{
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!ranks_above(candidates, scores, heap[parent], heap[i]))
            return;
        int t = heap[i];
        heap[i] = heap[parent];
        heap[parent] = t;
        i = parent;
    }
}

void rank_top_k(const int *candidates, const double *scores, int n, int k, int *heap,
                int *best)
{
    if (k > n)
        k = n;
    if (k <= 0)
        return;
    int len = 0, j = 0;
    for (; j < n && len < k; j++) {
        heap[len] = j;
        sift_up(candidates, scores, heap, len++);
    }
    /* Most positions score below the heap's worst: a vector comparison rejects
     * them four at a time (a NaN on either side falls through to ranks_above, as
     * before). */
    double worst = scores[heap[0]];
    for (; j < n; j++) {
        j = vm_first_not_below(scores, j, n, worst);
        if (j == n)
            break;
        if (ranks_above(candidates, scores, j, heap[0])) {
            heap[0] = j;
            sift_down(candidates, scores, heap, len, 0);
            worst = scores[heap[0]];
        }
    }
    /* Popping the worst each time fills best[] from the back. */
    for (int out = k - 1; out >= 0; out--) {
        best[out] = heap[0];
        heap[0] = heap[--len];
        sift_down(candidates, scores, heap, len, 0);
    }
}

/* ---- the sketched first pass (see rank.h for the bound and the argument) ---- */

int rank_sketch_init(rank_sketch *s, int n, int d)
{
    *s = (rank_sketch){0};
    if (sketch_init(&s->sk, n, d) != DS_OK)
        return DS_ENOMEM;
    s->group_max = malloc(((size_t)n / 32 + 1) * sizeof *s->group_max);
    s->upper = malloc((size_t)n * sizeof *s->upper);
    s->heap = malloc((size_t)n * sizeof *s->heap);
    s->pool = malloc((size_t)n * sizeof *s->pool);
    s->pool_ids = malloc((size_t)n * sizeof *s->pool_ids);
    s->pool_scores = malloc((size_t)n * sizeof *s->pool_scores);
    s->pool_best = malloc((size_t)n * sizeof *s->pool_best);
    if (!s->group_max || !s->upper || !s->heap || !s->pool || !s->pool_ids ||
        !s->pool_scores || !s->pool_best) {
        rank_sketch_free(s);
        return DS_ENOMEM;
    }
    return DS_OK;
}

void rank_sketch_free(rank_sketch *s)
{
    sketch_free(&s->sk);
    free(s->group_max);
    free(s->upper);
    free(s->heap);
    free(s->pool);
    free(s->pool_ids);
    free(s->pool_scores);
    free(s->pool_best);
    *s = (rank_sketch){0};
}

void rank_sketch_fill(rank_sketch *s, const double *A) { sketch_fill(&s->sk, A); }

/* Restores the min-heap below slot 0. */
static void heap_sift_down(double *h, int len)
{
    int i = 0;
    for (;;) {
        int least = i, l = 2 * i + 1, r = l + 1;
        if (l < len && h[l] < h[least])
            least = l;
        if (r < len && h[r] < h[least])
            least = r;
        if (least == i)
            return;
        double t = h[i];
        h[i] = h[least];
        h[least] = t;
        i = least;
    }
}

static void heap_sift_up(double *h, int i)
{
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!(h[i] < h[parent]))
            return;
        double t = h[i];
        h[i] = h[parent];
        h[parent] = t;
        i = parent;
    }
}

/* Keeps the pooled positions with u >= t; returns how many. */
static int pool_keep(rank_sketch *s, int m, double t)
{
    int kept = 0;
    for (int j = 0; j < m; j++)
        if (s->upper[s->pool[j]] >= t)
            s->pool[kept++] = s->pool[j];
    return kept;
}

/* Puts lower into the min-heap of the k largest lower bounds (len so far). */
static void heap_offer(double *heap, int *len, int k, double lower)
{
    if (*len < k) {
        heap[*len] = lower;
        heap_sift_up(heap, (*len)++);
    } else if (lower > heap[0]) {
        heap[0] = lower;
        heap_sift_down(heap, k);
    }
}

/* The rows' scan (sketch_pool) forms g_i = f_i + a n_i in singles, a >= scale
 * and n_i >= |A_i| rounded up, so g_i is f_i + E_i - absolute up to the two
 * roundings, 2^-22 (|f_i| + a n_i) at most, with |f_i| <= |x| max|A_j| + E_i
 * (Cauchy-Schwarz) and a n_i <= 2 E_max. The threshold returned sits below
 * t - absolute by 2^-20 times those magnitudes (and |t|), four times the
 * roundings of g and more than those of u_i = f_i + E_i in double: so g_i
 * below it gives u_i < t, and a row the scan passes over cannot reach t. */
static float scan_threshold(double t, double absolute, double x_norm, double max_norm,
                            double e_max)
{
    double margin =
        0x1p-20 * (2.0 * x_norm * max_norm + 3.0 * e_max + fabs(t) + absolute) + 0x1p-100;
    return sketch_single_down((t - absolute) - margin);
}

enum { SEED_GROUP = 32 };

/* A first estimate of l*, at or below it, or -Inf: the k-th largest of
 * F_g - E_max over the groups g of 32 rows (F_g their largest f; the rows past
 * the last whole group count one by one). Row i's l = f_i - E_i is at least
 * f_i - E_max (E_i <= E_max, and rounding is monotone), so each group's value
 * is at most the l of a row of its own, and the k-th largest of k distinct
 * rows' l is at most l*. */
static double seed_threshold(rank_sketch *s, int k, double e_max)
{
    const float *f = s->sk.approx;
    int n = s->sk.n, len = 0, groups = n / SEED_GROUP;
    vm_float_group_max(s->group_max, f, groups);
    for (int g = 0; g < groups; g++)
        if (len < k || (double)s->group_max[g] - e_max > s->heap[0])
            heap_offer(s->heap, &len, k, (double)s->group_max[g] - e_max);
    for (int i = groups * SEED_GROUP; i < n; i++)
        if (len < k || (double)f[i] - e_max > s->heap[0])
            heap_offer(s->heap, &len, k, (double)f[i] - e_max);
    return len == k ? s->heap[0] : -INFINITY;
}

/* Positions whose upper bound u reaches the k-th largest lower bound l*. A
 * scan of all rows keeps those with u at or above a threshold that is never
 * above l* (the seed_threshold estimate, then the least of the heap of the k
 * largest l of the rows kept, once it holds k, where that is higher) and
 * offers the heap their l: the rows with l >= l* all pass, so the heap ends
 * with the k largest l and its least is l*. The scan runs over the singles f,
 * sixteen at a time, against the scan_threshold of the threshold: only the rows
 * it stops at can have u that high, and u is formed for those alone. A full
 * pool is thinned by the current threshold. Returns the pool size (>= k), or -1
 * when the pool still holds more than half of cap rows after thinning (scores
 * too close together for the sketch to pay). */
static int sketch_pool(rank_sketch *s, int k, double x_norm, double scale, double absolute,
                       int cap)
{
    const float *f = s->sk.approx;
    const double *norms = s->sk.norms;
    int n = s->sk.n, m = 0, len = 0;
    double max_norm = s->sk.max_norm, e_max = scale * max_norm + absolute;
    double least = seed_threshold(s, k, e_max);
    float a = sketch_single_up(scale);
    float below = scan_threshold(least, absolute, x_norm, max_norm, e_max);
    for (int i = 0;; i++) {
        i = vm_first_sum_not_below(f, a, s->sk.norms_single, i, n, below);
        if (i >= n)
            break;
        double error = scale * norms[i] + absolute;
        s->upper[i] = (double)f[i] + error;
        if (s->upper[i] < least)
            continue;
        heap_offer(s->heap, &len, k, (double)f[i] - error);
        if (len == k && s->heap[0] > least) {
            least = s->heap[0];
            below = scan_threshold(least, absolute, x_norm, max_norm, e_max);
        }
        if (m == cap && (m = pool_keep(s, m, least)) > cap / 2)
            return -1;
        s->pool[m++] = i;
    }
    return pool_keep(s, m, least);
}

int rank_top_k_sketched(rank_sketch *s, const double *A, const double *x,
                        const int *candidates, int k, double *scores, int *heap, int *best)
{
    int n = s->sk.n, d = s->sk.d;
    if (k > n)
        k = n;
    sketch_error e;
    if (k <= 0 || !sketch_scores(&s->sk, x, &e))
        return 0;
    int m = sketch_pool(s, k, e.x_norm, e.scale, e.absolute, k + n / 4);
    if (m < 0)
        return 0;
    for (int j = 0; j < m; j++)
        s->pool_ids[j] = candidates[s->pool[j]];
    vm_rows_dot_gather(s->pool_scores, A, s->pool, x, m, d);
    rank_top_k(s->pool_ids, s->pool_scores, m, k, heap, s->pool_best);
    for (int j = 0; j < m; j++)
        scores[s->pool[j]] = s->pool_scores[j];
    for (int j = 0; j < k; j++)
        best[j] = s->pool[s->pool_best[j]];
    return 1;
}
