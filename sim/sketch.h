/* A bfloat16 sketch of a matrix A [n][d] and the approximate scores it gives,
 * each within a proven bound of the exact one: the first pass of an exact top k
 * (agents/rank.h) and of an environment's screening bounds for the oracle
 * (privileged_view.bounds in sim/slate.h).
 *
 * The sketch holds A's entries as bfloat16 (sim/vecmath.h), a quarter of the
 * doubles' bytes, so that a 5,000 x 32 matrix (320 KB) stays in a 512 KiB L2
 * cache where the doubles (1.28 MB) stream from L3. The approximate score f_i of
 * row i (x rounded to single, products and sums in single) is within
 *     E_i = (2^-8 + (d + 4) 2^-24)(1 + 2^-6) |x| |A_i| + d 2^-130 (1 + |x| + max_j |A_j|)
 * of its double score s_i = vm_dot(A_i, x): rounding to bfloat16 is 2^-8
 * relative, to single 2^-24; a sum of d single products is within
 * (d - 1) 2^-24 (1 + 2^-11) of exact (Higham, Accuracy and Stability, eq. 3.5),
 * s_i within d 2^-53 sum|x||A_i| of exact; sum |x||A_i| <= |x||A_i|
 * (Cauchy-Schwarz); the absolute term bounds underflow; the factor (1 + 2^-6)
 * takes the second-order terms for d <= 4096, the norms' rounding and the
 * rounding of f_i -+ E_i in double. So s_i lies in [f_i - E_i, f_i + E_i], both
 * ends formed in double. */
#ifndef DIVSIM_SKETCH_H
#define DIVSIM_SKETCH_H

#include <stdint.h>

typedef struct {
    int n, d, n_blocks;
    uint16_t *blocks;       /* [n_blocks][d][8] vm_bf16_blocks_dot's layout; 0 past n */
    double *norms;          /* [n] Euclidean norm of each row of A, rounded up */
    float *norms_single;    /* [n] the same rounded up to singles */
    double max_norm;        /* at least the largest of them */
    int usable;             /* entries finite and rows' norms below 2^50 */
    float *approx;          /* [n_blocks * 8] the approximate scores f of sketch_scores */
    float *x;               /* [d] x in single precision */
} sketch;

/* The bound of sketch_scores: E_i = scale * norms[i] + absolute. */
typedef struct {
    double scale, absolute;
    double x_norm;          /* |x|, rounded up */
} sketch_error;

/* Allocates a sketch of n rows of d columns, all zero (filled row by row or at
 * once later): DS_OK or DS_ENOMEM. */
int sketch_init(sketch *s, int n, int d);

/* Copies A [n][d] into the sketch, row order[j] of A as row j of the sketch
 * (order a permutation of 0 .. n-1, or NULL for A's own order); it is usable if
 * every entry is finite and every row's norm below 2^50 (otherwise
 * sketch_scores declines). */
void sketch_fill(sketch *s, const double *A, const int *order);

/* Copies row i of A [d] into the sketch after it changed. max_norm only grows
 * and usable only falls (a full sketch_fill recomputes both). */
void sketch_fill_row(sketch *s, int i, const double *row);

void sketch_free(sketch *s);

/* s->approx[i] = f_i for every row i of the sketch, and *err
 * the bound |f_i - vm_dot(A_i, x)| <= err->scale * s->norms[i] + err->absolute.
 * Returns 1, or 0 (nothing written) when the sketch cannot bound its error:
 * not usable, x not finite or too long, d > 4096. */
int sketch_scores(sketch *s, const double *x, sketch_error *err);

/* sketch_scores in two steps, for a pass that may stop early: sketch_start
 * checks x, keeps it in single precision and gives the bound (1, or 0 as
 * sketch_scores declines); sketch_score_blocks then writes f_i for the rows of
 * blocks from .. to-1 (rows 8 from .. 8 to - 1). */
int sketch_start(sketch *s, const double *x, sketch_error *err);
void sketch_score_blocks(sketch *s, int from, int to);

/* v rounded to a single upwards, or downwards. */
float sketch_single_up(double v);
float sketch_single_down(double v);

#endif
