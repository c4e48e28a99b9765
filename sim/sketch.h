/* An int8 sketch of a matrix A [n][d] and the approximate scores it gives,
 * each within a proven bound of the exact one: the first pass of an exact top k
 * (agents/rank.h) and of an environment's screening bounds for the oracle
 * (privileged_view.bounds in sim/slate.h).
 *
 * The sketch holds A's entries as int8 with one single scale per row, an eighth
 * of the doubles' bytes, so that a 5,000 x 32 matrix (160 KB) stays in a
 * 512 KiB L2 cache with room to spare, where the doubles (1.28 MB) stream from
 * L3. Row i is s_i q_i' with s_i = max_c |A_ic| / 127 rounded up to a single and
 * q_i' the nearest integers of A_i / s_i (|q_i'| <= 127), its residual
 * r_i = A_i - s_i q_i' (formed exactly in double: s_i q_i' has at most 32
 * significant bits) within rho |A_i|, rho the largest ratio |r_i| / |A_i| over
 * the rows, rounded up. Rows whose largest entry is below 2^-60 are stored as
 * zero, their norms at most tau (an absolute term: their whole score is error).
 * x is x' t + e with t = max_c |x_c| / X rounded up to a single, X =
 * vm_i8_max_x(d), x' the nearest integers of x / t (|x'| <= X) and e formed
 * exactly in double (t x' has at most 40 significant bits). Then
 *     A_i.x = t s_i D_i + sum_c t x'_c r_ic + sum_c e_c A_ic,  D_i = q_i'.x',
 * an exact integer (vm_i8_blocks_dot), so by Cauchy-Schwarz, with |t x'| <=
 * |x| + |e|,
 *     |A_i.x - t s_i D_i| <= ((|x| + |e|) rho + |e|) |A_i|.
 * The approximate score f_i = ((float)D_i s_i) t rounds three times in single:
 * within 3 2^-24 (1 + 2^-20) |t s_i D_i| <= 3 2^-24 (1 + 2^-20) (|x| + |e|)
 * (1 + rho) |A_i| of t s_i D_i, plus 2^-149 where the last product underflows
 * (D_i s_i is zero or at least s_i >= 2^-67, normal). The double score
 * vm_dot(A_i, x) is within d 2^-53 |x| |A_i| of exact (and d 2^-1074 for its
 * underflows). So f_i is within
 *     E_i = [(|x| + |e|) rho + |e| + 3 2^-24 (1 + 2^-20) (|x| + |e|) (1 + rho)
 *            + d 2^-53 |x|] (1 + 2^-6) |A_i| + (|x| tau + 2^-148)(1 + 2^-6)
 * of vm_dot(A_i, x); the factor (1 + 2^-6) takes the second-order terms for
 * d <= 4096, the norms' rounding and the rounding of f_i -+ E_i in double. So
 * vm_dot(A_i, x) lies in [f_i - E_i, f_i + E_i], both ends formed in double.
 * With d = 32, rho is at most sqrt(32) / 254 < 0.023 (each residual at most
 * s_i / 2, |A_i| >= 127 s_i); a typical Gaussian row's ratio is about 0.006 and
 * the largest of 5,000 about 0.010, which rho takes (bfloat16's bound was
 * 2^-8 = 0.0039); |e| <= sqrt(d) t / 2 is about 2^-16 |x|. */
#ifndef DIVSIM_SKETCH_H
#define DIVSIM_SKETCH_H

#include <stdint.h>

typedef struct {
    int n, d, n_blocks;
    int8_t *blocks;         /* [n_blocks][ceil(d / 2)][16] vm_i8_blocks_dot's layout, the
                               rows' q'; 0 past n */
    float *row_scale;       /* [n_blocks * 8] s_i; 0 past n */
    double *norms;          /* [n] Euclidean norm of each row of A, rounded up */
    float *norms_single;    /* [n] the same rounded up to singles */
    double max_norm;        /* at least the largest of them */
    double rho;             /* at least every |r_i| / |A_i| of the rows stored */
    double tau;             /* at least the norm of every row stored as zero */
    int usable;             /* entries finite and rows' norms below 2^50 */
    float *approx;          /* [n_blocks * 8] the approximate scores f of sketch_scores */
    int16_t *x;             /* [2 ceil(d / 2)] x' of the last sketch_start (0 past d) */
    float x_scale;          /* its t */
} sketch;

/* The bound of sketch_scores: E_i = scale * norms[i] + absolute. */
typedef struct {
    double scale, absolute;
    double x_norm;          /* |x|, rounded up */
} sketch_error;

/* Allocates a sketch of n rows of d columns, all zero (filled row by row or at
 * once later): DS_OK or DS_ENOMEM. */
int sketch_init(sketch *s, int n, int d);

/* The bytes sketch_init allocates for n rows of d columns (n in double, for
 * estimates of configurations too large to allocate). */
double sketch_memory(double n, int d);

/* Copies A [n][d] into the sketch, row order[j] of A as row j of the sketch
 * (order a permutation of 0 .. n-1, or NULL for A's own order); it is usable if
 * every entry is finite and every row's norm below 2^50 (otherwise
 * sketch_scores declines). */
void sketch_fill(sketch *s, const double *A, const int *order);

/* Copies row i of A [d] into the sketch after it changed. max_norm, rho and tau
 * only grow and usable only falls (a full sketch_fill recomputes them). */
void sketch_fill_row(sketch *s, int i, const double *row);

void sketch_free(sketch *s);

/* s->approx[i] = f_i for every row i of the sketch, and *err
 * the bound |f_i - vm_dot(A_i, x)| <= err->scale * s->norms[i] + err->absolute.
 * Returns 1, or 0 (nothing written) when the sketch cannot bound its error:
 * not usable, x not finite or |x| >= 2^50, d > 4096, or x so small (but not
 * zero) that t would not be a normal single. */
int sketch_scores(sketch *s, const double *x, sketch_error *err);

/* sketch_scores in two steps, for a pass that may stop early: sketch_start
 * checks x, keeps it as int16 (x', t) and gives the bound (1, or 0 as
 * sketch_scores declines); sketch_score_blocks then writes f_i for the rows of
 * blocks from .. to-1 (rows 8 from .. 8 to - 1). */
int sketch_start(sketch *s, const double *x, sketch_error *err);
void sketch_score_blocks(sketch *s, int from, int to);

/* v rounded to a single upwards, or downwards. */
float sketch_single_up(double v);
float sketch_single_down(double v);

#endif
