/* Tests of sim/vecmath.c: the exponential against the C library (within 1 ulp
 * over the whole range, exact special values), and every array kernel against
 * the plain loop it stands for, bit for bit, at every length from 0 to 41 so
 * that the four-wide blocks and every tail are exercised. On a CPU with AVX2 the
 * kernels run their AVX2 loops, elsewhere the baseline ones: the results must
 * be the same either way, which is what bit-for-bit against the scalar
 * definition checks. */
#include "../sim/vecmath.h"
#include "testutil.h"

#include <float.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { MAXN = 41 };

static gsl_rng *rng_new(unsigned long seed)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    return r;
}

static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* Distance in units in the last place of the correctly rounded b. */
static double ulps(double a, double b)
{
    if (a == b)
        return 0;
    double gap = nextafter(fabs(b), INFINITY) - fabs(b);
    return fabs(a - b) / gap;
}

/* ---- the exponential ---- */

typedef double (*exp_fn)(double);
typedef void (*exp_array_fn)(double *, const double *, int);

/* array(y, x) against f(x[i]) bit for bit, and f against glibc's exp (error below
 * 0.502 ulp): NaN for NaN, infinities exact, subnormal results within one unit of
 * the smallest subnormal; returns the worst error in ulps over normal results. */
static double exp_errors(exp_fn f, exp_array_fn array, const double *x, double *y, int n)
{
    double worst = 0;
    array(y, x, n);
    for (int i = 0; i < n; i++) {
        double want = exp(x[i]), got = f(x[i]);
        ck_assert_msg(same_bits(got, y[i]) || (isnan(got) && isnan(y[i])),
                      "exp(%a): scalar %a, array %a", x[i], got, y[i]);
        if (isnan(want))
            ck_assert(isnan(got));
        else if (isinf(want))
            ck_assert_msg(got == want, "exp(%g) = %a, want %a", x[i], got, want);
        else if (want >= DBL_MIN)
            worst = fmax(worst, ulps(got, want));
        else
            ck_assert_msg(fabs(got - want) <= 0x1p-1074, "exp(%a) = %a, want %a", x[i], got,
                          want);
    }
    return worst;
}

/* 2 n arguments: n uniform on [-745, 710] (the whole range, subnormal results
 * included), then n uniform on [-1, 1] (vm_exp, n = 5 10^5) or a grid of n on
 * [-1, 1] (vm_exp_fast, n = 2.5 10^5: spacing 8e-6, so every part of the reduced
 * interval [-ln2/2, ln2/2] and both of its ends): within 1 ulp of glibc's exp for
 * normal results. vm_exp_fast shares
 * vm_exp's polynomial (truncation 4e-18 relative), so the same rounding of
 * 1 + (r + r^2 q) and the two scalings bound both. */
static void check_exp_accuracy(exp_fn f, exp_array_fn array, int N, int grid,
                               const char *name)
{
    double *x = malloc((size_t)N * sizeof *x), *y = malloc((size_t)N * sizeof *y);
    ck_assert(x && y);
    gsl_rng *r = rng_new(1);
    double worst = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < N; i++)
            x[i] = pass == 0 ? -745 + 1455 * gsl_rng_uniform(r)
                   : grid    ? -1.0 + 2.0 * i / (N - 1)
                             : 2 * gsl_rng_uniform(r) - 1;
        worst = fmax(worst, exp_errors(f, array, x, y, N));
    }
    ck_assert_msg(worst <= 1.0, "%s: worst error %.3f ulp", name, worst);
    printf("  %s: worst error %.3f ulp over %d arguments\n", name, worst, 2 * N);
    gsl_rng_free(r);
    free(x);
    free(y);
}

START_TEST(test_exp_accuracy)
{
    check_exp_accuracy(vm_exp, vm_exp_array, 500000, 0, "vm_exp");
}
END_TEST

START_TEST(test_exp_fast_accuracy)
{
    check_exp_accuracy(vm_exp_fast, vm_exp_fast_array, 250000, 1,
                       vm_exp_fast_fused() ? "vm_exp_fast (fma)" : "vm_exp_fast (no fma)");
}
END_TEST

/* Overflow, underflow, subnormal results, NaN, infinities and zeros, as glibc's
 * exp gives them (1 ulp, or one unit of the smallest subnormal). */
START_TEST(test_exp_special_values)
{
    const double x[] = {0.0, -0.0, 1.0, NAN, INFINITY, -INFINITY, 709.78, 709.79,
                        709.782712893383973096, -708.39, -708.4, -720.0, -744.4, -745.13,
                        -745.14, -800, 1e-300, -1e-300, 0x1p-1074, 1e6, -1e6, 0.3465735902799726,
                        -0.3465735902799726};
    const int n = (int)(sizeof x / sizeof *x);
    double y[sizeof x / sizeof *x];
    ck_assert(exp_errors(vm_exp, vm_exp_array, x, y, n) <= 1.0);
    ck_assert(exp_errors(vm_exp_fast, vm_exp_fast_array, x, y, n) <= 1.0);
    ck_assert(vm_exp(0.0) == 1.0 && vm_exp(-0.0) == 1.0);
    ck_assert(vm_exp_fast(0.0) == 1.0 && vm_exp_fast(-0.0) == 1.0);
    ck_assert(vm_exp_fast(-800.0) == 0.0 && vm_exp_fast(800.0) == INFINITY);
}
END_TEST

/* The sums of vm_exp_*_weigh recomputed from its weights: sums[0] in four
 * interleaved partial sums bit for bit; of e (b - x) to 1e-15 relative (n terms
 * of one sign, summed in another order); without e[skip], to 1e-15 of itself
 * (summed apart: vm_exp_fast_weigh) or of the whole sum (the whole sum less
 * e[skip]: vm_exp_single_weigh, whose weights carry 2^-22 anyway). */
static void check_weigh_sums(const double *e, const double *x, double b, int skip, int n,
                             const double *sums, int rest_apart)
{
    double lane[4] = {0, 0, 0, 0}, rest = 0, ws = 0;
    int i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++)
            lane[j] += e[i + j];
    for (; i < n; i++)
        lane[0] += e[i];
    for (i = 0; i < n; i++) {
        rest += i == skip ? 0.0 : e[i];
        ws += e[i] * (b - x[i]);
    }
    ck_assert(same_bits(sums[0], (lane[0] + lane[1]) + (lane[2] + lane[3])));
    ck_assert(fabs(sums[1] - rest) <= 1e-15 * (rest_apart ? rest : sums[0]));
    ck_assert(fabs(sums[2] - ws) <= 1e-15 * fabs(ws));
}

/* Every length from 0 to 41 (the padded tail): the array kernels as the scalar
 * ones, in place too, and e^{x - b} as e^d (1 + r) with d, r the TwoSum of x - b
 * (fused where the CPU fuses: fma() rounds once, as the instruction does), within
 * 2 ulps of exp(x - b); vm_exp_fast_weigh's weights and sums. */
START_TEST(test_exp_fast_kernels_match_scalar)
{
    gsl_rng *r = rng_new(12);
    double x[MAXN], y[MAXN];
    for (int n = 0; n <= MAXN; n++) {
        for (int i = 0; i < n; i++)
            x[i] = 60 * (gsl_rng_uniform(r) - 0.5);
        double b = 30 * gsl_rng_uniform(r);
        vm_exp_fast_diff_array(y, x, b, n);
        for (int i = 0; i < n; i++) {
            double d = x[i] - b, b_part = d - x[i];
            double rr = (x[i] - (d - b_part)) + (-b - b_part), e = vm_exp_fast(d);
            double want = vm_exp_fast_fused() ? fma(e, rr, e) : e + e * rr;
            ck_assert(same_bits(y[i], want));
            ck_assert(same_bits(y[i], vm_exp_fast_diff(x[i], b)));
            ck_assert(ulps(y[i], exp(x[i] - b)) <= 2.0 ||
                      fabs(y[i] - exp(x[i] - b)) <= 1e-300);
        }
        /* weighing and summing: the same weights, and their sums */
        double e[MAXN], sums[3];
        int skip = n > 0 ? (int)gsl_rng_uniform_int(r, (unsigned long)n) : 0;
        vm_exp_fast_weigh(e, x, b, skip, n, sums);
        for (int i = 0; i < n; i++)
            ck_assert(same_bits(e[i], y[i]));
        check_weigh_sums(e, x, b, skip, n, sums, 1);
        memcpy(y, x, (size_t)n * sizeof *y);
        vm_exp_fast_array(y, y, n);
        for (int i = 0; i < n; i++)
            ck_assert(same_bits(y[i], vm_exp_fast(x[i])));
    }
    gsl_rng_free(r);
}
END_TEST

/* vm_exp_single_weigh, every length from 0 to 200: each weight within 2^-22 of
 * exp(fl(x - b)), fl rounding to a float (over [-708, 708] in a sweep of 2 10^5),
 * and every weight of a group of eight (or tail) with a difference out of that
 * range within 2 ulps of exp(x - b), as vm_exp_fast_diff (below -745 exactly 0;
 * NaN for NaN); its sums as check_weigh_sums, and the sum without the top weight
 * of a peaked softmax to its own precision. */
START_TEST(test_exp_single_weigh)
{
    enum { LONG = 200000 };
    double *x = malloc(LONG * sizeof *x), *e = malloc(LONG * sizeof *e), sums[3];
    ck_assert(x && e);
    for (int i = 0; i < LONG; i++)
        x[i] = -708.0 + 1416.0 * i / (LONG - 1);
    vm_exp_single_weigh(e, x, 0.0, -1, LONG, sums);
    for (int i = 0; i < LONG; i++) {
        double want = exp((double)(float)x[i]);
        ck_assert_msg(fabs(e[i] - want) <= 0x1p-22 * want, "x %.17g: %.17g, want %.17g", x[i],
                      e[i], want);
    }
    gsl_rng *r = rng_new(13);
    for (int n = 0; n <= 200; n++) {
        double b = 30 * gsl_rng_uniform(r);
        for (int i = 0; i < n; i++)
            x[i] = 60 * (gsl_rng_uniform(r) - 0.5);
        if (n > 20) { /* a group, and the tail, with differences out of range */
            x[3] = b - 800.0;
            x[n - 1] = b - 720.0;
        }
        int skip = n > 0 ? (int)gsl_rng_uniform_int(r, (unsigned long)n) : 0;
        vm_exp_single_weigh(e, x, b, skip, n, sums);
        for (int i = 0; i < n; i++) {
            double d = x[i] - b, want = exp((double)(float)d);
            int fallback = n > 20 && (i / 8 == 0 || i / 8 == (n - 1) / 8);
            if (fallback)
                ck_assert(ulps(e[i], exp(d)) <= 2.0 || fabs(e[i] - exp(d)) <= 1e-300);
            else
                ck_assert(fabs(e[i] - want) <= 0x1p-22 * want);
        }
        if (n > 20)
            ck_assert(e[3] == 0.0);
        check_weigh_sums(e, x, b, skip, n, sums, 0);
    }
    /* a peaked softmax: the top weight 1, the other 63 e^-40 each; their sum to
     * its own precision, not to the whole sum's (a difference of the two would
     * keep no digit of it) */
    for (int i = 0; i < 64; i++)
        x[i] = i == 5 ? 40.0 : 0.0;
    vm_exp_single_weigh(e, x, 40.0, 5, 64, sums);
    double rest = 0;
    for (int i = 0; i < 64; i++)
        rest += i == 5 ? 0.0 : e[i];
    ck_assert(e[5] == 1.0 && rest > 0);
    ck_assert_msg(fabs(sums[1] - rest) <= 1e-12 * rest, "rest %.17g, want %.17g", sums[1], rest);
    ck_assert(fabs(rest - 63 * exp(-40.0)) <= 1e-6 * rest);
    x[5] = NAN;
    vm_exp_single_weigh(e, x, 0.0, 0, 16, sums);
    ck_assert(isnan(e[5]) && isnan(sums[0]) && !isnan(e[4]) && !isnan(e[12]));
    gsl_rng_free(r);
    free(x);
    free(e);
}
END_TEST

/* vm_rows_dot_single against double sums over every row count to 41 and widths
 * 4 to 32 (the eight-row kernel and the scalar rows): each score within 1e-6 of
 * the sum of the |products| (floats carry 2^-24), the bias added in double (a
 * bias of 1e9 keeps the float sum's digits; added in floats it would not). */
START_TEST(test_rows_dot_single)
{
    enum { D = 32 };
    float A[MAXN * D], x[D];
    double out[MAXN], b[MAXN];
    gsl_rng *r = rng_new(14);
    for (int d = 4; d <= D; d += 4)
        for (int n = 0; n <= MAXN; n++) {
            for (int i = 0; i < n * d; i++)
                A[i] = (float)(gsl_rng_uniform(r) - 0.5);
            for (int c = 0; c < d; c++)
                x[c] = (float)(2 * gsl_rng_uniform(r) - 1);
            for (int i = 0; i < n; i++)
                b[i] = i % 2 ? 1e9 : gsl_rng_uniform(r);
            vm_rows_dot_single(out, A, x, b, n, d);
            for (int i = 0; i < n; i++) {
                double want = 0, size = 0;
                for (int c = 0; c < d; c++) {
                    want += (double)A[i * d + c] * x[c];
                    size += fabs((double)A[i * d + c] * x[c]);
                }
                ck_assert_msg(fabs((out[i] - b[i]) - want) <= 1e-6 * size + 1e-7 * (b[i] > 1),
                              "d %d n %d row %d: %.9g vs %.9g", d, n, i, out[i] - b[i], want);
            }
        }
    gsl_rng_free(r);
}
END_TEST

/* exp_shifted, exp_diff and sigmoid against their scalar definitions. */
START_TEST(test_exp_kernels_match_scalar)
{
    gsl_rng *r = rng_new(2);
    double x[MAXN], y[MAXN];
    for (int n = 0; n <= MAXN; n++) {
        for (int i = 0; i < n; i++)
            x[i] = 60 * (gsl_rng_uniform(r) - 0.5);
        double b = 30 * gsl_rng_uniform(r);
        vm_exp_shifted(y, x, b, n);
        for (int i = 0; i < n; i++)
            ck_assert(same_bits(y[i], vm_exp(x[i] - b)));
        vm_exp_diff_array(y, x, b, n);
        for (int i = 0; i < n; i++) {
            /* e^{x - b} with the rounding of x - b put back: TwoSum, then e^d (1 + r) */
            double d = x[i] - b, b_part = d - x[i];
            double rr = (x[i] - (d - b_part)) + (-b - b_part), e = vm_exp(d);
            ck_assert(same_bits(y[i], e + e * rr));
            ck_assert(ulps(y[i], exp(x[i] - b)) <= 2.0 ||
                      fabs(y[i] - exp(x[i] - b)) <= 1e-300);
        }
        vm_sigmoid_array(y, x, n);
        for (int i = 0; i < n; i++) {
            double e = vm_exp(-fabs(x[i]));
            ck_assert(same_bits(y[i], (x[i] >= 0 ? 1.0 : e) / (1.0 + e)));
            ck_assert(same_bits(y[i], vm_sigmoid(x[i])));
        }
        /* in place */
        memcpy(y, x, (size_t)n * sizeof *y);
        vm_exp_array(y, y, n);
        for (int i = 0; i < n; i++)
            ck_assert(same_bits(y[i], vm_exp(x[i])));
    }
    ck_assert_double_eq(vm_sigmoid(0.0), 0.5);
    ck_assert_double_eq(vm_sigmoid(-800.0), 0.0);
    ck_assert_double_eq(vm_sigmoid(800.0), 1.0);
    gsl_rng_free(r);
}
END_TEST

/* ---- dot products and row kernels ---- */

static double plain_dot(const double *x, const double *y, int n)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int k = 0;
    for (; k + 4 <= n; k += 4) {
        s0 += x[k] * y[k];
        s1 += x[k + 1] * y[k + 1];
        s2 += x[k + 2] * y[k + 2];
        s3 += x[k + 3] * y[k + 3];
    }
    for (; k < n; k++)
        s0 += x[k] * y[k];
    return (s0 + s1) + (s2 + s3);
}

START_TEST(test_rows_match_plain_loops)
{
    enum { ROWS = 13, D = 19 };
    gsl_rng *r = rng_new(3);
    double A[ROWS * D], x[D], out[ROWS], g[ROWS], dA[ROWS * D], dA2[ROWS * D], dx[D], dx2[D];
    double bias[ROWS], bias2[ROWS];
    int rows[ROWS];
    for (int n = 0; n <= ROWS; n++)
        for (int d = 1; d <= D; d++) {
            for (int i = 0; i < ROWS * D; i++)
                A[i] = gsl_rng_uniform(r) - 0.5;
            for (int c = 0; c < D; c++)
                x[c] = gsl_rng_uniform(r) - 0.3;
            for (int i = 0; i < ROWS; i++) {
                g[i] = gsl_rng_uniform(r) - 0.5;
                rows[i] = (int)gsl_rng_uniform_int(r, ROWS);
            }
            ck_assert(same_bits(vm_dot(A, x, d), plain_dot(A, x, d)));
            vm_rows_dot(out, A, x, n, d);
            for (int i = 0; i < n; i++)
                ck_assert(same_bits(out[i], plain_dot(A + i * d, x, d)));
            vm_rows_dot_gather(out, A, rows, x, n, d);
            for (int i = 0; i < n; i++)
                ck_assert(same_bits(out[i], plain_dot(A + rows[i] * d, x, d)));
            /* the backward pieces, fused and apart, against the plain loops */
            for (int i = 0; i < ROWS * D; i++)
                dA[i] = dA2[i] = 0.25 * A[i];
            for (int c = 0; c < D; c++)
                dx[c] = dx2[c] = 0.1 * c;
            for (int i = 0; i < ROWS; i++)
                bias[i] = bias2[i] = 0.01 * i;
            vm_rows_backward(dx, dA, bias, A, g, x, n, d);
            for (int i = 0; i < n; i++)
                for (int c = 0; c < d; c++) {
                    dx2[c] += g[i] * A[i * d + c];
                    dA2[i * d + c] += g[i] * x[c];
                }
            for (int i = 0; i < n; i++)
                bias2[i] += g[i];
            ck_assert(memcmp(dx, dx2, sizeof dx) == 0);
            ck_assert(memcmp(dA, dA2, sizeof dA) == 0);
            ck_assert(memcmp(bias, bias2, sizeof bias) == 0);
            vm_rows_axpy(dA, g, x, n, d);
            vm_rows_weighted_sum(dx, A, g, n, d);
            for (int i = 0; i < n; i++)
                for (int c = 0; c < d; c++) {
                    dx2[c] += g[i] * A[i * d + c];
                    dA2[i * d + c] += g[i] * x[c];
                }
            ck_assert(memcmp(dx, dx2, sizeof dx) == 0);
            ck_assert(memcmp(dA, dA2, sizeof dA) == 0);
        }
    gsl_rng_free(r);
}
END_TEST

/* The d = 16 path of the fused backward (its own unrolled loop). */
START_TEST(test_rows_backward_d16)
{
    enum { ROWS = 37, D = 16 };
    gsl_rng *r = rng_new(4);
    static double A[ROWS * D], dA[ROWS * D], dA2[ROWS * D];
    double x[D], g[ROWS], dx[D] = {0}, dx2[D] = {0};
    for (int i = 0; i < ROWS * D; i++) {
        A[i] = gsl_rng_uniform(r) - 0.5;
        dA[i] = dA2[i] = gsl_rng_uniform(r);
    }
    for (int c = 0; c < D; c++)
        x[c] = gsl_rng_uniform(r);
    for (int i = 0; i < ROWS; i++)
        g[i] = gsl_rng_uniform(r) - 0.5;
    vm_rows_backward(dx, dA, NULL, A, g, x, ROWS, D);
    for (int i = 0; i < ROWS; i++)
        for (int c = 0; c < D; c++) {
            dx2[c] += g[i] * A[i * D + c];
            dA2[i * D + c] += g[i] * x[c];
        }
    ck_assert(memcmp(dx, dx2, sizeof dx) == 0);
    ck_assert(memcmp(dA, dA2, sizeof dA) == 0);
    gsl_rng_free(r);
}
END_TEST

/* ---- scans and small kernels ---- */

START_TEST(test_scans)
{
    double x[MAXN];
    int ids[MAXN];
    for (int n = 0; n <= MAXN; n++) {
        for (int i = 0; i < n; i++) {
            x[i] = -(double)i;
            ids[i] = i;
        }
        ck_assert_int_eq(vm_is_iota(ids, n), 1);
        ck_assert_double_eq(vm_max(x, n, -INFINITY), n ? 0.0 : -INFINITY);
        for (int at = 0; at < n; at++) {
            ids[at] = at + 1;
            ck_assert_int_eq(vm_is_iota(ids, n), 0);
            ids[at] = at;
            /* the first value not below t */
            double keep = x[at];
            x[at] = 5.0;
            ck_assert_int_eq(vm_first_not_below(x, 0, n, 1.0), at);
            ck_assert_int_eq(vm_first_not_below(x, at + 1, n, 1.0), n);
            ck_assert_double_eq(vm_max(x, n, -INFINITY), 5.0);
            /* the same for f + a w in singles: f = x / 2, w = x, a = 1/2 */
            float f[MAXN], w[MAXN];
            for (int i = 0; i < n; i++) {
                f[i] = (float)x[i] / 2;
                w[i] = (float)x[i];
            }
            ck_assert_int_eq(vm_first_sum_not_below(f, 0.5f, w, 0, n, 1.0f), at);
            ck_assert_int_eq(vm_first_sum_not_below(f, 0.5f, w, at + 1, n, 1.0f), n);
            ck_assert_int_eq(vm_first_sum_not_below(f, 0.5f, w, 0, n, 5.0f), at); /* equal stops */
            ck_assert_int_eq(vm_first_sum_not_below(f, 0.5f, w, 0, n, 5.5f), n);
            x[at] = NAN; /* a NaN stops the scan, and is passed over by max */
            ck_assert_int_eq(vm_first_not_below(x, 0, n, 1.0), at);
            f[at] = NAN;
            ck_assert_int_eq(vm_first_sum_not_below(f, 0.5f, w, 0, n, 1.0f), at);
            ck_assert_double_eq(vm_max(x, n, -100.0), at == 0 ? (n > 1 ? -1.0 : -100.0) : 0.0);
            x[at] = keep;
        }
    }
}
END_TEST

/* The screening scans over singles against plain loops: lookups; group
 * summaries (NaN as +Inf, a short last group); the positions not below t for
 * thresholds inside the data, at its ends, infinite and NaN, with NaN and
 * infinite entries; n across group and vector boundaries. */
START_TEST(test_single_scans)
{
    enum { SCAN_MAX = 300 };
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 11);
    static const int sizes[] = {0, 1, 7, 8, 63, 64, 65, 128, 200, 300};
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        int n = sizes[z], index[SCAN_MAX], pos[SCAN_MAX];
        float x[SCAN_MAX], table[50], out[SCAN_MAX], summary[8 * (SCAN_MAX / VM_GROUP + 1)];
        for (int t = 0; t < 50; t++)
            table[t] = (float)gsl_rng_uniform(r);
        for (int j = 0; j < n; j++)
            x[j] = (float)(gsl_rng_uniform(r) * 10 - 5);
        for (int table_n = 1; table_n <= 50; table_n++) { /* permuted up to 32, gathered */
            for (int j = 0; j < n; j++)
                index[j] = (int)gsl_rng_uniform_int(r, (unsigned long)table_n);
            vm_lookup_singles(out, table, table_n, index, n);
            for (int j = 0; j < n; j++)
                ck_assert_float_eq(out[j], table[index[j]]);
        }
        for (int variant = 0; variant < 3; variant++) {
            if (variant == 1 && n > 0)
                x[n / 2] = NAN;
            if (variant == 2 && n > 0)
                x[n - 1] = INFINITY;
            vm_group_max_singles(summary, x, n);
            for (int g = 0; g * VM_GROUP < n; g++)
                for (int l = 0; l < 8; l++) {
                    float want = -INFINITY;
                    for (int j = VM_GROUP * g + l; j < n && j < VM_GROUP * (g + 1); j += 8)
                        want = isnan(x[j]) ? INFINITY : fmaxf(want, x[j]);
                    ck_assert_float_eq(summary[8 * g + l], want);
                }
            const float ts[] = {-6.0f, -1.0f, 0.0f, 4.9f, 5.0f, INFINITY, -INFINITY, NAN};
            for (size_t q = 0; q < sizeof ts / sizeof ts[0]; q++) {
                int found = vm_positions_not_below(pos, x, summary, n, ts[q]), want = 0;
                for (int j = 0; j < n; j++)
                    if (!(x[j] < ts[q])) {
                        ck_assert_int_lt(want, found);
                        ck_assert_int_eq(pos[want++], j);
                    }
                ck_assert_int_eq(found, want);
            }
        }
    }
    gsl_rng_free(r);
}
END_TEST

/* vm_positions_not_below where eight entries show every one of the 256 patterns
 * of entries at or above t, over more than 64 groups (the scan lists a batch
 * of 64 groups at a time) with a short last group; every third group lies
 * wholly below t, so its summary skips it. */
START_TEST(test_scan_every_mask)
{
    enum { N = 70 * VM_GROUP + 13 };
    static float x[N], summary[8 * (N / VM_GROUP + 1)];
    static int pos[N];
    for (int j = 0; j < N; j++) {
        int v = j / 8, lane = j % 8;
        int above = (v / 8) % 3 != 2 && ((v % 256) >> lane & 1);
        x[j] = above ? 1.0f + (float)j : -1.0f;
    }
    vm_group_max_singles(summary, x, N);
    int found = vm_positions_not_below(pos, x, summary, N, 0.0f), want = 0;
    for (int j = 0; j < N; j++)
        if (x[j] >= 0) {
            ck_assert_int_lt(want, found);
            ck_assert_int_eq(pos[want++], j);
        }
    ck_assert_int_eq(found, want);
    ck_assert_int_gt(want, N / 4);
}
END_TEST

START_TEST(test_small_kernels)
{
    gsl_rng *r = rng_new(5);
    double w[MAXN], v[MAXN], out[MAXN], y[MAXN];
    for (int n = 0; n <= MAXN; n++) {
        for (int i = 0; i < n; i++) {
            w[i] = gsl_rng_uniform(r);
            v[i] = gsl_rng_uniform(r);
        }
        vm_scaled_excess(out, w, v, 0.3, n);
        for (int i = 0; i < n; i++)
            ck_assert(same_bits(out[i], w[i] * (v[i] - 0.3)));
        memcpy(y, w, sizeof y);
        vm_add_array(y, v, n);
        for (int i = 0; i < n; i++)
            ck_assert(same_bits(y[i], w[i] + v[i]));
    }
    gsl_rng_free(r);
}
END_TEST

/* Adam against its formula, element by element, over lengths with tails. */
START_TEST(test_adam)
{
    gsl_rng *r = rng_new(6);
    double w[MAXN], g[MAXN], m[MAXN], v[MAXN], w2[MAXN], m2[MAXN], v2[MAXN];
    for (int n = 0; n <= MAXN; n++) {
        for (int i = 0; i < n; i++) {
            w[i] = w2[i] = gsl_rng_uniform(r) - 0.5;
            g[i] = gsl_rng_uniform(r) - 0.5;
            m[i] = m2[i] = 0.1 * gsl_rng_uniform(r);
            v[i] = v2[i] = 0.01 * gsl_rng_uniform(r);
        }
        double b1 = 0.9, b2 = 0.999, c1 = 1 - pow(b1, 3), c2 = 1 - pow(b2, 3);
        vm_adam(w, g, m, v, (size_t)n, b1, b2, c1, c2, 1e-3, 1e-8, 0.01);
        for (int i = 0; i < n; i++) {
            m2[i] = b1 * m2[i] + (1.0 - b1) * g[i];
            v2[i] = b2 * v2[i] + (1.0 - b2) * g[i] * g[i];
            double mhat = m2[i] / c1, vhat = v2[i] / c2;
            w2[i] -= 1e-3 * (mhat / (sqrt(vhat) + 1e-8) + 0.01 * w2[i]);
            ck_assert(same_bits(w[i], w2[i]) && same_bits(m[i], m2[i]) &&
                      same_bits(v[i], v2[i]));
        }
    }
    gsl_rng_free(r);
}
END_TEST

/* vm_adam_scaled against its per-element definition, bit for bit at every length
 * (AVX2 lanes and scalar tail alike); against vm_adam on the scaled gradient to
 * 1e-13 relative (four roundings reordered, each 2^-53, in a step of three terms;
 * the step is at most lr (1 + wd) large against weights of 0.01 and more, so 1e-13
 * of the weight is far above that and far below a wrong formula's error); and the
 * finite check: a NaN gradient or an infinite weight anywhere gives 0. */
START_TEST(test_adam_scaled)
{
    gsl_rng *r = rng_new(7);
    double w[MAXN], g[MAXN], m[MAXN], v[MAXN], w2[MAXN], m2[MAXN], v2[MAXN];
    double w3[MAXN], g3[MAXN], m3[MAXN], v3[MAXN];
    double b1 = 0.9, b2 = 0.999, c1 = 1 - pow(b1, 3), c2 = 1 - pow(b2, 3);
    double lr = 1e-3, eps = 1e-8, wd = 0.01, gs = 0.37;
    for (int n = 0; n <= MAXN; n++) {
        for (int i = 0; i < n; i++) {
            w[i] = w2[i] = w3[i] = (gsl_rng_uniform(r) < 0.5 ? -1 : 1) *
                                   (0.01 + gsl_rng_uniform(r));
            g[i] = gsl_rng_uniform(r) - 0.5;
            g3[i] = g[i] * gs;
            m[i] = m2[i] = m3[i] = 0.1 * gsl_rng_uniform(r);
            v[i] = v2[i] = v3[i] = 0.01 * gsl_rng_uniform(r);
        }
        ck_assert_int_eq(vm_adam_scaled(w, g, m, v, (size_t)n, gs, b1, b2, c1, c2, lr, eps, wd),
                         1);
        vm_adam(w3, g3, m3, v3, (size_t)n, b1, b2, c1, c2, lr, eps, wd);
        double step = lr / c1, rc2 = 1.0 / sqrt(c2);
        for (int i = 0; i < n; i++) {
            double gi = g[i] * gs;
            m2[i] = b1 * m2[i] + (1.0 - b1) * gi;
            v2[i] = b2 * v2[i] + ((1.0 - b2) * gi) * gi;
            double denom = sqrt(v2[i]) * rc2 + eps;
            w2[i] = w2[i] - ((step * m2[i]) / denom + (lr * wd) * w2[i]);
            ck_assert(same_bits(w[i], w2[i]) && same_bits(m[i], m2[i]) &&
                      same_bits(v[i], v2[i]));
            ck_assert_double_eq_tol(w[i], w3[i], 1e-13 * fabs(w3[i]));
        }
        if (n == 0)
            continue;
        int at = (int)gsl_rng_uniform_int(r, (unsigned long)n);
        g[at] = NAN;
        ck_assert_int_eq(vm_adam_scaled(w, g, m, v, (size_t)n, gs, b1, b2, c1, c2, lr, eps, wd),
                         0);
        for (int i = 0; i < n; i++) {
            w[i] = 0.5;
            g[i] = m[i] = v[i] = 0.0;
        }
        w[n - 1] = INFINITY;
        ck_assert_int_eq(vm_adam_scaled(w, g, m, v, (size_t)n, gs, b1, b2, c1, c2, lr, eps, wd),
                         0);
    }
    gsl_rng_free(r);
}
END_TEST

/* ---- int8 rows in blocks of eight ---- */

/* The blocked pass's definition, one row at a time in plain integers (D in 64
 * bits, so an overflow of the kernel's 32-bit sums would show), then scaled as
 * vecmath.h states. */
static float i8_plain_score(const int8_t *rows, const int16_t *x, float scale, float t, int i,
                            int d)
{
    int64_t sum = 0;
    for (int c = 0; c < d; c++)
        sum += (int64_t)rows[i * d + c] * x[c];
    ck_assert(sum > -2147483648LL && sum < 2147483648LL);
    return ((float)(int32_t)sum * scale) * t;
}

static int same_single(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* rows [n][d] (n a multiple of 8) into vm_i8_blocks_dot's layout */
static int8_t *i8_blocks_of(const int8_t *rows, int n, int d)
{
    int8_t *B = calloc((size_t)n * (size_t)(d + 1) + 1, 1);
    ck_assert_ptr_nonnull(B);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < d; c++)
            B[vm_i8_block_entry(i, c, d)] = rows[i * d + c];
    return B;
}

/* rows [n][d] and x [d] through vm_i8_blocks_dot, bit for bit against the plain
 * loop (whichever kernel this CPU runs: the AVX2 one takes four blocks at a time,
 * then one, so n_blocks 0 .. 9 runs every tail). */
static void assert_i8_pass(const int8_t *rows, const int16_t *x, const float *scale, float t,
                           int n_blocks, int d)
{
    int n = 8 * n_blocks;
    int8_t *B = i8_blocks_of(rows, n, d);
    int16_t *xp = calloc((size_t)d + 1, sizeof *xp);
    float *out = malloc(((size_t)n + 1) * sizeof *out);
    ck_assert(xp && out);
    memcpy(xp, x, (size_t)d * sizeof *x);
    vm_i8_blocks_dot(out, B, xp, scale, t, n_blocks, d);
    for (int i = 0; i < n; i++)
        ck_assert_msg(same_single(out[i], i8_plain_score(rows, x, scale[i], t, i, d)),
                      "row %d of %d, d %d: %a", i, n, d, (double)out[i]);
    free(B);
    free(xp);
    free(out);
}

/* Known answers: rows (1, 2, 3) and (-127, 0, 127) with x (1, -1, 2) give D = 5
 * and 127; scales 0.5 and 2, t 0.25: 0.625 and 63.5. Entry positions: column
 * pairs of sixteen bytes, row r's pair at 2r. */
START_TEST(test_i8_known_answers)
{
    ck_assert_uint_eq(vm_i8_block_entry(0, 0, 3), 0);
    ck_assert_uint_eq(vm_i8_block_entry(1, 1, 3), 3);
    ck_assert_uint_eq(vm_i8_block_entry(7, 2, 3), 30);
    ck_assert_uint_eq(vm_i8_block_entry(8, 0, 3), 32);
    ck_assert_int_eq(vm_i8_max_x(1), 32767);
    ck_assert_int_eq(vm_i8_max_x(32), 32767);
    ck_assert_int_eq(vm_i8_max_x(4096), 4128); /* floor((2^31 - 1) / (127 * 4096)) */
    int8_t rows[8 * 3] = {1, 2, 3, -127, 0, 127};
    int16_t x[3] = {1, -1, 2};
    float scale[8] = {0.5f, 2.0f}, out[8];
    int8_t *B = i8_blocks_of(rows, 8, 3);
    int16_t xp[4] = {1, -1, 2, 0};
    vm_i8_blocks_dot(out, B, xp, scale, 0.25f, 1, 3);
    ck_assert_float_eq(out[0], 0.625f);
    ck_assert_float_eq(out[1], 63.5f);
    for (int i = 2; i < 8; i++)
        ck_assert_float_eq(out[i], 0.0f);
    free(B);
    assert_i8_pass(rows, x, scale, 0.25f, 1, 3);
}
END_TEST

/* Random entries at d = 1, 2, 3, 7, 8, 32, 33 and 0 .. 9 blocks, bit for bit
 * against the plain loop; scales and t over many binades so that the singles'
 * roundings matter. */
START_TEST(test_i8_blocks_dot)
{
    static const int dims[] = {1, 2, 3, 7, 8, 32, 33};
    gsl_rng *r = rng_new(22);
    for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++) {
        int d = dims[k], limit = vm_i8_max_x(d);
        for (int n_blocks = 0; n_blocks <= 9; n_blocks++) {
            int n = 8 * n_blocks;
            int8_t *rows = malloc((size_t)(n * d) + 1);
            int16_t *x = malloc((size_t)d * sizeof *x);
            float *scale = malloc(((size_t)n + 1) * sizeof *scale);
            ck_assert(rows && x && scale);
            for (int i = 0; i < n * d; i++)
                rows[i] = (int8_t)((int)gsl_rng_uniform_int(r, 255) - 127);
            for (int c = 0; c < d; c++)
                x[c] = (int16_t)((long)gsl_rng_uniform_int(r, 2 * (unsigned long)limit + 1) - limit);
            for (int i = 0; i < n; i++)
                scale[i] = (float)ldexp(gsl_rng_uniform(r) + 0.5, (int)gsl_rng_uniform_int(r, 61) - 40);
            float t = (float)ldexp(gsl_rng_uniform(r) + 0.5, (int)gsl_rng_uniform_int(r, 41) - 30);
            assert_i8_pass(rows, x, scale, t, n_blocks, d);
            free(rows);
            free(x);
            free(scale);
        }
    }
    gsl_rng_free(r);
}
END_TEST

/* The extremes: every |entry| = 127 and |x| = vm_i8_max_x(d), signs alike so
 * that the sums reach their largest magnitude (127 X d, just below 2^31 at
 * d = 4096), and mixed, at d = 4095 and 4096 and 5 blocks; t = 1 and scales 1,
 * so the plain loop's 64-bit sum (checked below 2^31) is the score rounded to
 * single once. */
START_TEST(test_i8_extremes)
{
    static const int dims[] = {4095, 4096};
    for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++) {
        int d = dims[k], n = 40, limit = vm_i8_max_x(d);
        int8_t *rows = malloc((size_t)(n * d));
        int16_t *x = malloc((size_t)d * sizeof *x);
        float scale[40];
        ck_assert(rows && x);
        for (int c = 0; c < d; c++)
            x[c] = (int16_t)(c % 3 == 2 ? -limit : limit);
        for (int i = 0; i < n; i++) {
            scale[i] = 1.0f;
            for (int c = 0; c < d; c++) {
                int same = i % 4 == 0 ? 1 : i % 4 == 1 ? -1 : (i + c) % 2 ? 1 : -1;
                rows[i * d + c] = (int8_t)(127 * same * (x[c] < 0 ? -1 : 1));
            }
        }
        assert_i8_pass(rows, x, scale, 1.0f, n / 8, d);
        /* row 0 sums 127 X d exactly, row 1 its negative */
        int8_t *B = i8_blocks_of(rows, n, d);
        int16_t *xp = calloc((size_t)d + 1, sizeof *xp);
        float out[40];
        ck_assert_ptr_nonnull(xp);
        memcpy(xp, x, (size_t)d * sizeof *x);
        vm_i8_blocks_dot(out, B, xp, scale, 1.0f, n / 8, d);
        ck_assert_float_eq(out[0], (float)(127.0 * limit * d));
        ck_assert_float_eq(out[1], -(float)(127.0 * limit * d));
        free(B);
        free(xp);
        free(rows);
        free(x);
    }
}
END_TEST

static Suite *vecmath_suite(void)
{
    Suite *s = suite_create("vecmath");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_exp_accuracy);
    tcase_add_test(tc, test_exp_special_values);
    tcase_add_test(tc, test_exp_kernels_match_scalar);
    tcase_add_test(tc, test_exp_fast_accuracy);
    tcase_add_test(tc, test_exp_fast_kernels_match_scalar);
    tcase_add_test(tc, test_exp_single_weigh);
    tcase_add_test(tc, test_rows_dot_single);
    tcase_add_test(tc, test_rows_match_plain_loops);
    tcase_add_test(tc, test_rows_backward_d16);
    tcase_add_test(tc, test_scans);
    tcase_add_test(tc, test_single_scans);
    tcase_add_test(tc, test_scan_every_mask);
    tcase_add_test(tc, test_small_kernels);
    tcase_add_test(tc, test_adam);
    tcase_add_test(tc, test_adam_scaled);
    tcase_add_test(tc, test_i8_known_answers);
    tcase_add_test(tc, test_i8_blocks_dot);
    tcase_add_test(tc, test_i8_extremes);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(vecmath_suite)
