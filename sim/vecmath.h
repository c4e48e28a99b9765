/* Double-precision kernels for the hot loops of environments and agents: the
 * exponential, and dot products of one vector with many rows.
 *
 * Every result is the same on every machine. Each value goes through the same
 * IEEE operations in the same order whatever the code path (no fused multiply-add,
 * no reassociation): on CPUs with AVX2 the same operations run on four values at
 * once, elsewhere two (SSE2) or one at a time. So these may serve an environment,
 * whose simulated world must not depend on the CPU. The exception is the
 * learners' exponential (vm_exp_fast*, which fuses multiply-adds where the CPU
 * can). The int8 pass at the end is an approximation, reproducible too, whose
 * users must (and sim/sketch.h does) bound its error. */
#ifndef DIVSIM_VECMATH_H
#define DIVSIM_VECMATH_H

#include <stddef.h>
#include <stdint.h>

/* e^x, within about 1 ulp of the correctly rounded result (a degree-13 Taylor
 * polynomial on [-ln2/2, ln2/2] after the reduction x = k ln2 + r): +Inf above
 * 709.78, 0 below -745.14, subnormal between, NaN for NaN. */
double vm_exp(double x);

/* y[i] = vm_exp(x[i]), or vm_exp(x[i] - shift), for i < n; y may be x. */
void vm_exp_array(double *y, const double *x, int n);
void vm_exp_shifted(double *y, const double *x, double shift, int n);

/* y[i] = e^{x[i] - b} to about an ulp also where x[i] - b rounds: with d the
 * rounded difference and r its rounding error (TwoSum, exact), e^d (1 + r)
 * (r^2 < 1e-25 is dropped). y may be x. */
void vm_exp_diff_array(double *y, const double *x, double b, int n);

/* The largest of start and x[0..n); NaNs are passed over. */
double vm_max(const double *x, int n, double start);

/* y[i] = 1 / (1 + e^{-x[i]}) for i < n, as (x >= 0 ? 1 : e) / (1 + e) with
 * e = vm_exp(-|x|) (no overflow either way); y may be x. */
double vm_sigmoid(double x);
void vm_sigmoid_array(double *y, const double *x, int n);

/* out[i] = w[i] * (r[i] - c) for i < n; out may be w or r. */
void vm_scaled_excess(double *out, const double *w, const double *r, double c, int n);

/* The first i in [from, n) with !(x[i] < t) (so a NaN stops the search), or n. */
int vm_first_not_below(const double *x, int from, int n, double t);

/* 1 if x[i] == i for every i < n (the identity list 0 .. n-1), else 0. */
int vm_is_iota(const int *x, int n);

/* x.y over n, in four interleaved partial sums (s_j over the indices = j mod 4,
 * the last n mod 4 into s_0), returned as (s_0 + s_1) + (s_2 + s_3). */
double vm_dot(const double *x, const double *y, int n);

/* out[i] = A[i].x (vm_dot, bit for bit) for the n rows of A [n][d], row-major. */
void vm_rows_dot(double *out, const double *A, const double *x, int n, int d);

/* out[j] = A[rows[j]].x for j < n: the same for chosen rows. */
void vm_rows_dot_gather(double *out, const double *A, const int *rows, const double *x,
                        int n, int d);

/* Every pair's dot product among k rows of d entries: out[a k4 + b] =
 * rows[a].rows[b] for a <= b < k, with k4 = k rounded up to a multiple of 4 (out
 * holds k4 x k4 doubles), each the sum over c = 0 .. d-1 in index order from 0,
 * as `s = 0; s += x[c] * y[c]` forms it, bit for bit; the other entries of out
 * are scratch. k <= VM_PAIR_DOTS_MAX: the intra-list diversity's dot products, four
 * pairs at a time. */
enum { VM_PAIR_DOTS_MAX = 64 };
void vm_pair_dots(double *out, const double *const *rows, int k, int d);

/* A[i][c] += g[i] * h[c] for the n rows of A [n][d] (a rank-one update). */
void vm_rows_axpy(double *A, const double *g, const double *h, int n, int d);

/* out[c] += sum_i g[i] A[i][c] over the n rows of A [n][d], row after row (each
 * element's sum runs in row order, as a plain loop over i would add it). */
void vm_rows_weighted_sum(double *out, const double *A, const double *g, int n, int d);

/* One Adam step (Kingma & Ba; decoupled weight decay) on n parameters, per element
 *   m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g g,
 *   w -= lr ((m / c1) / (sqrt(v / c2) + eps) + wd w),
 * c1, c2 the bias corrections. */
void vm_adam(double *w, const double *g, double *m, double *v, size_t n, double b1, double b2,
             double c1, double c2, double lr, double eps, double wd);

/* vm_adam on the gradient g * gscale (a clipped gradient, without writing it),
 * the bias corrections applied as lr / c1 and 1 / sqrt(c2), so per element
 *   g' = g gscale, m = b1 m + (1 - b1) g', v = b2 v + (1 - b2) g' g',
 *   w -= (lr / c1) m / (sqrt(v) / sqrt(c2) + eps) + lr wd w
 * (the same step as vm_adam's up to rounding, with one division instead of three).
 * Returns 1 if every updated w is finite, 0 if any is NaN or Inf. The same bits on
 * every CPU. */
int vm_adam_scaled(double *w, const double *g, double *m, double *v, size_t n, double gscale,
                   double b1, double b2, double c1, double c2, double lr, double eps, double wd);

/* The backward pass of out = A x + bias over the n rows of A [n][d], for the
 * gradient g [n] of out: dx[c] += sum_i g[i] A[i][c] (row order, as
 * vm_rows_weighted_sum), dA[i][c] += g[i] x[c] (as vm_rows_axpy) and, when
 * dbias is not NULL, dbias[i] += g[i]; one pass over A and dA. */
void vm_rows_backward(double *dx, double *dA, double *dbias, const double *A, const double *g,
                      const double *x, int n, int d);

/* The sum of x [n] in four interleaved partial sums (s_j over the indices = j mod
 * 4 of the four-wide part, the last n mod 4 into s_0 in order), returned as
 * (s_0 + s_1) + (s_2 + s_3): four independent chains of additions pipeline, and
 * the rounding error bound is no worse than one running sum's. */
double vm_sum(const double *x, int n);

/* y[i] += x[i] for i < n. */
void vm_add_array(double *y, const double *x, int n);
/* out[i] = A_i . x + b[i] over the rows of A [n][d] in single precision: the
 * products summed in floats (eight at a time, fused where the CPU fuses, when d is
 * a multiple of eight), the bias added in double. */
void vm_rows_dot_single(double *out, const float *A, const float *x, const double *b, int n,
                        int d);
/* Between single and double precision, for i < n: y[i] = x[i] rounded to a float;
 * y[i] += x[i]; y[i] = x[i] + b[i]; y[i] += x[i] and z[i] = x[i] rounded. */
void vm_to_single(float *y, const double *x, size_t n);
void vm_add_single(double *y, const float *x, size_t n);
void vm_widen_add(double *y, const float *x, const double *b, int n);
void vm_add_narrow(double *y, float *z, const double *x, int n);

/* A first, approximate scoring pass over rows stored as int8 in blocks of eight
 * rows, column pairs interleaved: B[b][j][2 r + h] = B[vm_i8_block_entry(8 b + r,
 * 2 j + h, d)] is column 2 j + h of row 8 b + r, for n_blocks blocks of
 * ceil(d / 2) pairs (column d zero when d is odd). With x [2 ceil(d / 2)] as
 * int16 (x[d] = 0 when d is odd) and each row's scale [8 n_blocks],
 *     out[i] = ((float)D_i * scale[i]) * t,  D_i = sum_c B_ic x_c,
 * in single precision. D_i is an exact integer when every |B_ic| <= 127 and
 * every |x_c| <= vm_i8_max_x(d) (so |D_i| < 2^31), so out is the same bit for
 * bit on every CPU. */
void vm_i8_blocks_dot(float *out, const int8_t *B, const int16_t *x, const float *scale, float t,
                      int n_blocks, int d);

/* Where entry (row i, column c) of a matrix of d columns sits among
 * vm_i8_blocks_dot's blocks. */
size_t vm_i8_block_entry(int i, int c, int d);

/* The largest |x_c| vm_i8_blocks_dot takes for d columns:
 * min(32767, floor((2^31 - 1) / (127 d))). */
int vm_i8_max_x(int d);

/* The first i in [from, n) with !(f[i] + a w[i] < t) in single precision (the
 * product rounded, then the sum: the same on every CPU), or n. */
int vm_first_sum_not_below(const float *f, float a, const float *w, int from, int n, float t);

/* out[j] = table[index[j]] for j < n, 0 <= index[j] < table_n. */
void vm_lookup_singles(float *out, const float *table, int table_n, const int *index, int n);

/* Screening scans over singles. vm_group_max_singles summarises x [n] in groups
 * of VM_GROUP entries: group_max[8 g + l] = the largest of x[VM_GROUP g + 8 v + l]
 * over v < VM_GROUP / 8, or +Inf if one of them is NaN (entries past n count
 * as -Inf); group_max holds 8 ceil(n / VM_GROUP) singles.
 * vm_positions_not_below writes the positions j < n with !(x[j] < t) (NaN
 * included), in increasing order, into out [n] and returns how many; it reads
 * only the groups whose summary reaches t. */
enum { VM_GROUP = 64 };
void vm_group_max_singles(float *group_max, const float *x, int n);
int vm_positions_not_below(int *out, const float *x, const float *group_max, int n, float t);

/* ---- the learners' exponential ----
 * The same e^x (within about 1 ulp; +Inf above 709.78, 0 below -745.14, subnormal
 * between, NaN for NaN), about twice as fast as vm_exp: the polynomial is evaluated
 * by Estrin's scheme and, on CPUs with AVX2 and FMA, with fused multiply-adds. So,
 * unlike the rest of this file, its last bit may differ between CPUs with and
 * without FMA (and from vm_exp's): for the learning agents only, whose updates are
 * not bit-identical across CPUs anyway (BLAS); never for an environment. */
double vm_exp_fast(double x);
void vm_exp_fast_array(double *y, const double *x, int n);
/* e^{a - b}, and y[i] = e^{x[i] - b}, with the rounding error of the difference
 * recovered as vm_exp_diff_array does; y may be x. */
double vm_exp_fast_diff(double a, double b);
void vm_exp_fast_diff_array(double *y, const double *x, double b, int n);
/* vm_exp_fast_diff_array(y, x, b, n), and in the same pass three sums, each in four
 * interleaved partial sums (s_j over the indices = j mod 4, the last n mod 4 into
 * s_0 in order, returned as (s_0 + s_1) + (s_2 + s_3)): sums[0] of y, sums[1] of y
 * without y[skip] (skip outside [0, n): all of it), sums[2] of y[i] (b - x[i]).
 * A softmax's normaliser and entropy in the pass that weighs it. y must not be x. */
void vm_exp_fast_weigh(double *y, const double *x, double b, int skip, int n, double *sums);
/* vm_exp_fast_weigh with the weights to single precision: y[i] within 2^-22 of
 * exp(fl(x[i] - b)), fl rounding to a float (so within 2^-22 + |x[i] - b| 2^-24
 * of exp(x[i] - b)): the exponential in floats, eight at a time, its power of two
 * applied in double, so that a weight spans double's range. A group of eight with
 * a difference outside [-708, 708] or NaN is weighed by vm_exp_fast_weigh. The
 * sums as there, of these weights, except that sums[1] is sums[0] - y[skip] when
 * that is at least 2^-8 of sums[0] (its rounding then below the weights' own
 * error), else the others summed afresh. About twice as fast: for the learners'
 * softmax over single-precision scores. */
void vm_exp_single_weigh(double *y, const double *x, double b, int skip, int n, double *sums);
/* 1 if this CPU runs the fused-multiply-add version. */
int vm_exp_fast_fused(void);

#endif
