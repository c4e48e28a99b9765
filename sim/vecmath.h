/* Double-precision kernels for the hot loops of environments and agents: the
 * exponential, and dot products of one vector with many rows.
 *
 * Every result is the same on every machine. Each value goes through the same
 * IEEE operations in the same order whatever the code path (no fused multiply-add,
 * no reassociation): on CPUs with AVX2 the same operations run on four values at
 * once, elsewhere two (SSE2) or one at a time. So these may serve an environment,
 * whose simulated world must not depend on the CPU. */
#ifndef DIVSIM_VECMATH_H
#define DIVSIM_VECMATH_H

/* e^x, within about 1 ulp of the correctly rounded result (a degree-13 Taylor
 * polynomial on [-ln2/2, ln2/2] after the reduction x = k ln2 + r): +Inf above
 * 709.78, 0 below -745.14, subnormal between, NaN for NaN. */
double vm_exp(double x);

/* y[i] = vm_exp(x[i]), or vm_exp(x[i] - shift), for i < n; y may be x. */
void vm_exp_array(double *y, const double *x, int n);
void vm_exp_shifted(double *y, const double *x, double shift, int n);

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

#endif
