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

/* rank_top_k by a bounded heap, for any k, and for NaN scores (which rank
 * neither above nor below others: the result then depends on this order of
 * work, which is kept as it was). */
static void top_k_heap(const int *candidates, const double *scores, int n, int k, int *heap,
                       int *best)
{
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

/* Up to this k, an array kept sorted beats a heap: most insertions land near
 * its end. */
enum { SORTED_MAX = 32 };

typedef struct {
    double score;
    int id, pos;
} ranked;

static int ranked_above(ranked a, ranked b)
{
    if (a.score != b.score)
        return a.score > b.score;
    return a.id < b.id;
}

/* rank_top_k by insertion into the sorted k best so far (k <= SORTED_MAX);
 * returns 0, nothing written, at a NaN score. */
static int top_k_sorted(const int *candidates, const double *scores, int n, int k, int *best)
{
    ranked top[SORTED_MAX];
    int len = 0;
    for (int j = 0; j < n; j++) {
        if (len == k && scores[j] < top[k - 1].score) {
            /* where one scores below the k-th, most that follow do: four at a time */
            j = vm_first_not_below(scores, j + 1, n, top[k - 1].score);
            if (j == n)
                break;
        }
        ranked r = {scores[j], candidates[j], j};
        if (r.score != r.score)
            return 0;
        if (len == k && !ranked_above(r, top[k - 1]))
            continue;
        int at = len < k ? len++ : k - 1;
        for (; at > 0 && ranked_above(r, top[at - 1]); at--)
            top[at] = top[at - 1];
        top[at] = r;
    }
    for (int j = 0; j < len; j++)
        best[j] = top[j].pos;
    return 1;
}

void rank_top_k(const int *candidates, const double *scores, int n, int k, int *heap,
                int *best)
{
    if (k > n)
        k = n;
    if (k <= 0)
        return;
    if (k <= SORTED_MAX && top_k_sorted(candidates, scores, n, k, best))
        return;
    top_k_heap(candidates, scores, n, k, heap, best);
}

/* ---- the sketched first pass (the argument in rank.h, the bound in sim/sketch.h) ---- */

int rank_sketch_init(rank_sketch *s, int n, int d)
{
    *s = (rank_sketch){0};
    if (sketch_init(&s->sk, n, d) != DS_OK)
        return DS_ENOMEM;
    s->order = malloc((size_t)n * sizeof *s->order);
    s->tail_norm = calloc((size_t)n + 1, sizeof *s->tail_norm);
    s->heap = malloc((size_t)n * sizeof *s->heap);
    s->pool = malloc((size_t)n * sizeof *s->pool);
    s->pool_ids = malloc((size_t)n * sizeof *s->pool_ids);
    s->pool_scores = malloc((size_t)n * sizeof *s->pool_scores);
    s->pool_best = malloc((size_t)n * sizeof *s->pool_best);
    s->by_norm = malloc((size_t)n * sizeof *s->by_norm);
    if (!s->order || !s->tail_norm || !s->heap || !s->pool || !s->pool_ids || !s->pool_scores ||
        !s->pool_best || !s->by_norm) {
        rank_sketch_free(s);
        return DS_ENOMEM;
    }
    s->sk.usable = 0; /* until rank_sketch_fill */
    return DS_OK;
}

void rank_sketch_free(rank_sketch *s)
{
    sketch_free(&s->sk);
    free(s->order);
    free(s->by_norm);
    free(s->tail_norm);
    free(s->heap);
    free(s->pool);
    free(s->pool_ids);
    free(s->pool_scores);
    free(s->pool_best);
    *s = (rank_sketch){0};
}

double rank_sketch_memory(int n, int d)
{
    double rows = n, copy = sketch_memory(n, d);
    double scratch = rows * (sizeof(int) + 2 * sizeof(double) + 3 * sizeof(int) +
                             sizeof(double) + sizeof(rank_row_norm)) /* order, tail, heap,
                                                  pool, ids, best, scores, by_norm */ +
                     sizeof(double);
    return copy + scratch;
}

/* Decreasing norm, then increasing row; NaN norms last. */
static int by_decreasing_norm(const void *pa, const void *pb)
{
    const rank_row_norm *a = pa, *b = pb;
    int a_nan = isnan(a->norm), b_nan = isnan(b->norm);
    if (a_nan != b_nan)
        return a_nan - b_nan;
    if (!a_nan && a->norm != b->norm)
        return a->norm > b->norm ? -1 : 1;
    return (a->row > b->row) - (a->row < b->row);
}

/* s->order = A's rows by decreasing norm. Any order would be correct (the early
 * stop reads tail_norm, the sketch's own norms); this one stops soonest. */
static void order_rows(rank_sketch *s, const double *A)
{
    int n = s->sk.n, d = s->sk.d;
    rank_row_norm *rows = s->by_norm;
    for (int i = 0; i < n; i++) {
        const double *row = A + (size_t)i * (size_t)d;
        rows[i] = (rank_row_norm){sqrt(vm_dot(row, row, d)), i};
    }
    qsort(rows, (size_t)n, sizeof *rows, by_decreasing_norm);
    for (int i = 0; i < n; i++)
        s->order[i] = rows[i].row;
}

void rank_sketch_fill(rank_sketch *s, const double *A)
{
    int n = s->sk.n;
    order_rows(s, A);
    sketch_fill(&s->sk, A, s->order);
    s->tail_norm[n] = 0.0;
    for (int i = n - 1; i >= 0; i--)
        s->tail_norm[i] = fmax(s->sk.norms[i], s->tail_norm[i + 1]);
}

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

/* Positions among the first n whose upper bound u = f + E reaches t, the k-th
 * largest lower bound l* of those rows (so at least the k rows of the largest l
 * are there, and every row of the exact top k). The scan runs over the singles
 * f, sixteen at a time, against scan_threshold(t): only the rows it stops at
 * can have u that high, and u is formed for those alone. Returns the pool size,
 * or -1 past cap rows (scores too close together for the sketch to pay). */
static int sketch_pool(rank_sketch *s, int n, double t, const sketch_error *e, int cap)
{
    const float *f = s->sk.approx;
    double max_norm = s->sk.max_norm, e_max = e->scale * max_norm + e->absolute;
    float a = sketch_single_up(e->scale);
    float below = scan_threshold(t, e->absolute, e->x_norm, max_norm, e_max);
    int m = 0;
    for (int i = 0;; i++) {
        i = vm_first_sum_not_below(f, a, s->sk.norms_single, i, n, below);
        if (i >= n)
            return m;
        if ((double)f[i] + (e->scale * s->sk.norms[i] + e->absolute) < t)
            continue;
        if (m == cap)
            return -1;
        s->pool[m++] = i;
    }
}

enum { CHUNK_BLOCKS = 8 };

/* Scores the sketch CHUNK_BLOCKS blocks at a time, offering each row's lower
 * bound l to the heap of the k largest, until the rows left cannot reach the
 * top k; returns how many rows were scored (the top k is among them), with
 * s->heap[0] the k-th largest l of those rows. A row's vm_dot is at most
 * |x| |A_i| (1 + d 2^-53) in magnitude, below x_norm times its norm, each
 * rounded up by 2^-30 (2^-31 net of their rounding; d <= 4096), and the
 * rounding of their product, plus the absolute term for underflow: when that is
 * below the k-th largest l so far, which is at most the k-th best score, every
 * row left scores strictly less than the k-th best. */
static int scored_prefix(rank_sketch *s, int k, const sketch_error *e)
{
    const float *f = s->sk.approx;
    const double *norms = s->sk.norms;
    int n = s->sk.n, n_blocks = s->sk.n_blocks, len = 0;
    for (int block = 0; block < n_blocks;) {
        int to = n_blocks - block > CHUNK_BLOCKS ? block + CHUNK_BLOCKS : n_blocks;
        int end = 8 * to < n ? 8 * to : n;
        sketch_score_blocks(&s->sk, block, to);
        for (int i = 8 * block; i < end; i++)
            heap_offer(s->heap, &len, k, (double)f[i] - (e->scale * norms[i] + e->absolute));
        if (len == k && e->x_norm * s->tail_norm[end] + e->absolute < s->heap[0])
            return end;
        block = to;
    }
    return n;
}

int rank_top_k_sketched(rank_sketch *s, const double *A, const double *x,
                        const int *candidates, int k, double *scores, int *heap, int *best)
{
    int n = s->sk.n, d = s->sk.d;
    if (k > n)
        k = n;
    sketch_error e;
    if (k <= 0 || !sketch_start(&s->sk, x, &e))
        return 0;
    int scored = scored_prefix(s, k, &e);
    int m = sketch_pool(s, scored, s->heap[0], &e, k + n / 4);
    if (m < 0)
        return 0;
    for (int j = 0; j < m; j++) {
        s->pool[j] = s->order[s->pool[j]]; /* sketch position -> row of A */
        s->pool_ids[j] = candidates[s->pool[j]];
    }
    vm_rows_dot_gather(s->pool_scores, A, s->pool, x, m, d);
    rank_top_k(s->pool_ids, s->pool_scores, m, k, heap, s->pool_best);
    for (int j = 0; j < m; j++)
        scores[s->pool[j]] = s->pool_scores[j];
    for (int j = 0; j < k; j++)
        best[j] = s->pool[s->pool_best[j]];
    return 1;
}
