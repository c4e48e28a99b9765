/* The kernels of vecmath.h. The vector code uses GCC's vector extensions, which
 * lower to whatever the target has; each kernel is compiled twice, for the
 * baseline ISA and for AVX2, and picked at run time. Neither version uses fused
 * multiply-add (C11 mode turns contraction off, and AVX2 alone does not enable
 * FMA), so both compute every lane exactly as the scalar code does. */
#include "vecmath.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* clang refuses AVX vector arguments in functions without AVX (GCC only warns,
 * and the helpers are inlined), so clang builds, such as the fuzzer's, use the
 * baseline kernels: the same results, a little slower. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(DIVSIM_NO_AVX2)
#include <immintrin.h>
#define VM_DISPATCH 1
#define VM_AVX2 __attribute__((target("avx2")))
#endif

#define VM_INLINE static inline __attribute__((always_inline))

/* The vector helpers below are always inlined, so no vector value ever crosses a
 * call boundary: GCC's note that passing AVX vectors without AVX changes the ABI
 * does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"

typedef double v4d __attribute__((vector_size(32)));
typedef unsigned long long v4u __attribute__((vector_size(32)));
typedef long long v4l __attribute__((vector_size(32)));
typedef float v8f __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));
typedef int v8i __attribute__((vector_size(32)));
typedef int v4i __attribute__((vector_size(16)));

/* ---- the exponential ---- */

#define LOG2E 1.4426950408889634
/* ln 2 split so that k * LN2_HI is exact for |k| < 2^11 (fdlibm's constants) */
#define LN2_HI 6.93147180369123816490e-01
#define LN2_LO 1.90821492927058770002e-10
#define SHIFT 6755399441055744.0 /* 1.5 * 2^52: x + SHIFT rounds x to an integer */
#define EXP_MAX 709.782712893383973096   /* log(DBL_MAX) */
#define EXP_MIN (-745.13321910194110842) /* below: rounds to 0 */

/* 1/n! for n = 2 .. 13 */
#define C2 0.5
#define C3 1.66666666666666666667e-01
#define C4 4.16666666666666666667e-02
#define C5 8.33333333333333333333e-03
#define C6 1.38888888888888888889e-03
#define C7 1.98412698412698412698e-04
#define C8 2.48015873015873015873e-05
#define C9 2.75573192239858906526e-06
#define C10 2.75573192239858906526e-07
#define C11 2.50521083854417187751e-08
#define C12 2.08767569878680989792e-09
#define C13 1.60590438368216145994e-10

static double from_bits(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static uint64_t to_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

/* x = k ln2 + r, |r| <= ln2/2 (a hair more from rounding), e^x = e^r 2^k; the
 * power of two is applied as 2^k1 2^k2, k1 = floor(k/2), so that both factors are
 * normal numbers even where e^x is subnormal or close to overflowing. All integer
 * arithmetic is unsigned (mod 2^64): k is in [-1075, 1024] for x in range. */
double vm_exp(double x)
{
    if (!(x <= EXP_MAX))
        return x != x ? x : HUGE_VAL;
    if (x < EXP_MIN)
        return 0.0;
    double t = x * LOG2E + SHIFT;
    double kd = t - SHIFT;
    double r = (x - kd * LN2_HI) - kd * LN2_LO;
    double q = C13;
    q = q * r + C12;
    q = q * r + C11;
    q = q * r + C10;
    q = q * r + C9;
    q = q * r + C8;
    q = q * r + C7;
    q = q * r + C6;
    q = q * r + C5;
    q = q * r + C4;
    q = q * r + C3;
    q = q * r + C2;
    double p = 1.0 + (r + (r * r) * q);
    uint64_t k = to_bits(t) - to_bits(SHIFT);
    uint64_t k1 = ((k + 2048) >> 1) - 1024;
    uint64_t k2 = k - k1;
    return (p * from_bits((k1 + 1023) << 52)) * from_bits((k2 + 1023) << 52);
}

double vm_sigmoid(double x)
{
    double e = vm_exp(-fabs(x));
    return (x >= 0 ? 1.0 : e) / (1.0 + e);
}

/* e^{a - b} with the rounding error of a - b recovered by TwoSum. */
static double exp_diff(double a, double b)
{
    double d = a - b;
    double b_part = d - a; /* the part of -b that went into d */
    double r = (a - (d - b_part)) + (-b - b_part);
    double e = vm_exp(d);
    return e + e * r;
}

VM_INLINE v4d splat(double c) { return (v4d){c, c, c, c}; }

VM_INLINE v4d load4(const double *p)
{
    v4d v;
    memcpy(&v, p, sizeof v);
    return v;
}

VM_INLINE void store4(double *p, v4d v) { memcpy(p, &v, sizeof v); }

VM_INLINE v4f load4f(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

VM_INLINE void store4f(float *p, v4f v) { memcpy(p, &v, sizeof v); }

/* Four floats to doubles (GCC lowers the generic conversion in halves). */
VM_INLINE v4d widen4_base(v4f x) { return __builtin_convertvector(x, v4d); }
#ifdef VM_DISPATCH
VM_INLINE VM_AVX2 v4d widen4_avx2(v4f x) { return (v4d)_mm256_cvtps_pd((__m128)x); }
#endif

/* a where mask is all ones, else b. */
VM_INLINE v4d select4(v4u mask, v4d a, v4d b)
{
    return (v4d)(((v4u)a & mask) | ((v4u)b & ~mask));
}

/* v where v > m, else m (m where v is NaN): MAXPD's definition. */
VM_INLINE v4d max4_base(v4d v, v4d m) { return select4((v4u)(v > m), v, m); }
#ifdef VM_DISPATCH
VM_INLINE VM_AVX2 v4d max4_avx2(v4d v, v4d m) { return (v4d)_mm256_max_pd((__m256d)v, (__m256d)m); }
#endif

/* vm_exp on four lanes, operation for operation. */
VM_INLINE v4d exp4(v4d x)
{
    v4d t = x * splat(LOG2E) + splat(SHIFT);
    v4d kd = t - splat(SHIFT);
    v4d r = (x - kd * splat(LN2_HI)) - kd * splat(LN2_LO);
    v4d q = splat(C13);
    q = q * r + splat(C12);
    q = q * r + splat(C11);
    q = q * r + splat(C10);
    q = q * r + splat(C9);
    q = q * r + splat(C8);
    q = q * r + splat(C7);
    q = q * r + splat(C6);
    q = q * r + splat(C5);
    q = q * r + splat(C4);
    q = q * r + splat(C3);
    q = q * r + splat(C2);
    v4d p = splat(1.0) + (r + (r * r) * q);
    v4u k = (v4u)t - (v4u)splat(SHIFT);
    v4u k1 = ((k + 2048) >> 1) - 1024;
    v4u k2 = k - k1;
    v4d y = (p * (v4d)((k1 + 1023) << 52)) * (v4d)((k2 + 1023) << 52);
    y = select4((v4u)(x > splat(EXP_MAX)), splat(HUGE_VAL), y);
    y = select4((v4u)(x < splat(EXP_MIN)), splat(0.0), y);
    return select4((v4u)(x != x), x, y);
}

/* ---- dot products ---- */

double vm_dot(const double *x, const double *y, int n)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
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

/* Four rows' vm_dot at once: lane j of a row's accumulator is vm_dot's s_j. */
VM_INLINE v4d dot4_rows(const double *r0, const double *r1, const double *r2,
                        const double *r3, const double *x, int d)
{
    v4d a0 = splat(0.0), a1 = a0, a2 = a0, a3 = a0;
    int c = 0;
    for (; c + 4 <= d; c += 4) {
        v4d xc = load4(x + c);
        a0 += load4(r0 + c) * xc;
        a1 += load4(r1 + c) * xc;
        a2 += load4(r2 + c) * xc;
        a3 += load4(r3 + c) * xc;
    }
    for (; c < d; c++) {
        a0[0] += r0[c] * x[c];
        a1[0] += r1[c] * x[c];
        a2[0] += r2[c] * x[c];
        a3[0] += r3[c] * x[c];
    }
    /* (s0 + s1) + (s2 + s3) for each row */
    v4d lo = {a0[0], a1[0], a0[2], a1[2]}, hi = {a0[1], a1[1], a0[3], a1[3]};
    v4d h01 = lo + hi; /* a0: s0+s1, a1: s0+s1, a0: s2+s3, a1: s2+s3 */
    lo = (v4d){a2[0], a3[0], a2[2], a3[2]};
    hi = (v4d){a2[1], a3[1], a2[3], a3[3]};
    v4d h23 = lo + hi;
    v4d first = {h01[0], h01[1], h23[0], h23[1]}, second = {h01[2], h01[3], h23[2], h23[3]};
    return first + second;
}

/* ---- the kernels, compiled for each ISA ----
 * Each kernel runs its four-wide loop and returns how far it got; the dispatcher
 * finishes with the baseline kernel, whose own loop and scalar tail do exactly
 * the same operations. So the AVX2 code holds vector loops only: valgrind 3.19,
 * for one, does not decode some of the VEX-encoded scalar moves GCC emits. */

#define VM_KERNELS(suffix, attr)                                                          \
    static attr int exp_array_##suffix(double *y, const double *x, double shift, int n)  \
    {                                                                                     \
        int i = 0;                                                                        \
        for (; i + 4 <= n; i += 4)                                                        \
            store4(y + i, exp4(load4(x + i) - shift));                                    \
        return i;                                                                         \
    }                                                                                     \
    static attr int exp_diff_array_##suffix(double *y, const double *x, double b, int n) \
    {                                                                                     \
        int i = 0;                                                                        \
        for (; i + 4 <= n; i += 4) {                                                      \
            v4d a = load4(x + i), d = a - b;                                              \
            v4d b_part = d - a;                                                           \
            v4d r = (a - (d - b_part)) + (-b - b_part);                                   \
            v4d e = exp4(d);                                                              \
            store4(y + i, e + e * r);                                                     \
        }                                                                                 \
        return i;                                                                         \
    }                                                                                     \
    static attr int sigmoid_array_##suffix(double *y, const double *x, int n)            \
    {                                                                                     \
        int i = 0;                                                                        \
        v4u sign = (v4u)splat(-0.0);                                                      \
        for (; i + 4 <= n; i += 4) {                                                      \
            v4d v = load4(x + i);                                                         \
            v4d e = exp4((v4d)((v4u)v | sign)); /* -|x| */                                \
            v4d num = select4((v4u)(v >= splat(0.0)), splat(1.0), e);                     \
            store4(y + i, num / (splat(1.0) + e));                                        \
        }                                                                                 \
        return i;                                                                         \
    }                                                                                     \
    static attr int scaled_excess_##suffix(double *out, const double *w, const double *r, \
                                           double c, int n)                               \
    {                                                                                     \
        int i = 0;                                                                        \
        for (; i + 4 <= n; i += 4)                                                        \
            store4(out + i, load4(w + i) * (load4(r + i) - c));                           \
        return i;                                                                         \
    }                                                                                     \
    /* The running maximum of each lane; the caller folds the lanes. */                   \
    /* four running maxima, so that no step waits for the one before */               \
    static attr int max_##suffix(const double *x, int n, double *lanes)                  \
    {                                                                                     \
        v4d m0 = load4(lanes), m1 = m0, m2 = m0, m3 = m0;                                 \
        int i = 0;                                                                        \
        for (; i + 16 <= n; i += 16) {                                                    \
            m0 = max4_##suffix(load4(x + i), m0);                                         \
            m1 = max4_##suffix(load4(x + i + 4), m1);                                     \
            m2 = max4_##suffix(load4(x + i + 8), m2);                                     \
            m3 = max4_##suffix(load4(x + i + 12), m3);                                    \
        }                                                                                 \
        for (; i + 4 <= n; i += 4)                                                        \
            m0 = max4_##suffix(load4(x + i), m0);                                         \
        store4(lanes, max4_##suffix(max4_##suffix(m3, m2), max4_##suffix(m1, m0)));      \
        return i;                                                                         \
    }                                                                                     \
    /* Row i += g[i] h, four columns at a time; returns the columns done. */             \
    static attr int rows_axpy_##suffix(double *A, const double *g, const double *h, int n, \
                                       int d)                                             \
    {                                                                                     \
        size_t dd = (size_t)d;                                                            \
        int c4 = d - d % 4;                                                               \
        for (int i = 0; i < n; i++) {                                                     \
            double *row = A + (size_t)i * dd;                                             \
            for (int c = 0; c < c4; c += 4)                                               \
                store4(row + c, load4(row + c) + g[i] * load4(h + c));                    \
        }                                                                                 \
        return c4;                                                                        \
    }                                                                                     \
    /* out[c] += sum_i g[i] A[i][c], four columns at a time; returns the columns done. */ \
    static attr int rows_weighted_sum_##suffix(double *out, const double *A,             \
                                               const double *g, int n, int d)             \
    {                                                                                     \
        size_t dd = (size_t)d;                                                            \
        int c4 = d - d % 4;                                                               \
        for (int c = 0; c < c4; c += 4) {                                                 \
            v4d acc = load4(out + c);                                                     \
            for (int i = 0; i < n; i++)                                                   \
                acc = acc + g[i] * load4(A + (size_t)i * dd + c);                         \
            store4(out + c, acc);                                                         \
        }                                                                                 \
        return c4;                                                                        \
    }                                                                                     \
    /* vm_rows_backward for d = 4 m; 16 and under keeps dx in registers. */               \
    static attr void rows_backward_##suffix(double *dx, double *dA, double *dbias,        \
                                            const double *A, const double *g,             \
                                            const double *x, int n, int d)                \
    {                                                                                     \
        size_t dd = (size_t)d;                                                            \
        if (d == 16) {                                                                    \
            v4d s0 = load4(dx), s1 = load4(dx + 4), s2 = load4(dx + 8), s3 = load4(dx + 12); \
            v4d x0 = load4(x), x1 = load4(x + 4), x2 = load4(x + 8), x3 = load4(x + 12);  \
            for (int i = 0; i < n; i++) {                                                 \
                const double *a = A + (size_t)i * 16;                                     \
                double *da = dA + (size_t)i * 16, gi = g[i];                              \
                s0 = s0 + gi * load4(a);                                                  \
                s1 = s1 + gi * load4(a + 4);                                              \
                s2 = s2 + gi * load4(a + 8);                                              \
                s3 = s3 + gi * load4(a + 12);                                             \
                store4(da, load4(da) + gi * x0);                                          \
                store4(da + 4, load4(da + 4) + gi * x1);                                  \
                store4(da + 8, load4(da + 8) + gi * x2);                                  \
                store4(da + 12, load4(da + 12) + gi * x3);                                \
            }                                                                             \
            store4(dx, s0);                                                               \
            store4(dx + 4, s1);                                                           \
            store4(dx + 8, s2);                                                           \
            store4(dx + 12, s3);                                                          \
        } else {                                                                          \
            for (int i = 0; i < n; i++) {                                                 \
                const double *a = A + (size_t)i * dd;                                     \
                double *da = dA + (size_t)i * dd, gi = g[i];                              \
                for (int c = 0; c < d; c += 4) {                                          \
                    store4(dx + c, load4(dx + c) + gi * load4(a + c));                    \
                    store4(da + c, load4(da + c) + gi * load4(x + c));                    \
                }                                                                         \
            }                                                                             \
        }                                                                                 \
        if (dbias) {                                                                      \
            int i = 0;                                                                    \
            for (; i + 4 <= n; i += 4)                                                    \
                store4(dbias + i, load4(dbias + i) + load4(g + i));                       \
            for (; i < n; i++)                                                            \
                dbias[i] += g[i];                                                         \
        }                                                                                 \
    }                                                                                     \
    static attr int add_array_##suffix(double *y, const double *x, int n)                \
    {                                                                                     \
        int i = 0;                                                                        \
        for (; i + 4 <= n; i += 4)                                                        \
            store4(y + i, load4(y + i) + load4(x + i));                                   \
        return i;                                                                         \
    }                                                                                     \
    static attr size_t to_single_##suffix(float *y, const double *x, size_t n)           \
    {                                                                                     \
        size_t i = 0;                                                                     \
        for (; i + 4 <= n; i += 4)                                                        \
            store4f(y + i, __builtin_convertvector(load4(x + i), v4f));                   \
        return i;                                                                         \
    }                                                                                     \
    static attr size_t add_single_##suffix(double *y, const float *x, size_t n)          \
    {                                                                                     \
        size_t i = 0;                                                                     \
        for (; i + 4 <= n; i += 4)                                                        \
            store4(y + i, load4(y + i) + widen4_##suffix(load4f(x + i)));                 \
        return i;                                                                         \
    }                                                                                     \
    static attr int add_narrow_##suffix(double *y, float *z, const double *x, int n)      \
    {                                                                                     \
        int i = 0;                                                                        \
        for (; i + 4 <= n; i += 4) {                                                      \
            v4d v = load4(x + i);                                                         \
            store4(y + i, load4(y + i) + v);                                              \
            store4f(z + i, __builtin_convertvector(v, v4f));                              \
        }                                                                                 \
        return i;                                                                         \
    }                                                                                     \
    static attr int widen_add_##suffix(double *y, const float *x, const double *b, int n) \
    {                                                                                     \
        int i = 0;                                                                        \
        for (; i + 4 <= n; i += 4)                                                        \
            store4(y + i, widen4_##suffix(load4f(x + i)) + load4(b + i));                 \
        return i;                                                                         \
    }                                                                                     \
    static attr int rows_dot_##suffix(double *out, const double *A, const int *rows,     \
                                      const double *x, int n, int d)                      \
    {                                                                                     \
        size_t dd = (size_t)d;                                                            \
        int i = 0;                                                                        \
        for (; i + 4 <= n; i += 4) {                                                      \
            size_t i0 = rows ? (size_t)rows[i] : (size_t)i;                               \
            size_t i1 = rows ? (size_t)rows[i + 1] : (size_t)i + 1;                       \
            size_t i2 = rows ? (size_t)rows[i + 2] : (size_t)i + 2;                       \
            size_t i3 = rows ? (size_t)rows[i + 3] : (size_t)i + 3;                       \
            store4(out + i, dot4_rows(A + i0 * dd, A + i1 * dd, A + i2 * dd, A + i3 * dd, \
                                      x, d));                                             \
        }                                                                                 \
        return i;                                                                         \
    }

VM_KERNELS(base, __attribute__((noinline)))
#ifdef VM_DISPATCH
VM_KERNELS(avx2, VM_AVX2)
#define HAVE_AVX2() __builtin_cpu_supports("avx2")
#else
#define HAVE_AVX2() 0
#define exp_array_avx2 exp_array_base
#define exp_diff_array_avx2 exp_diff_array_base
#define sigmoid_array_avx2 sigmoid_array_base
#define scaled_excess_avx2 scaled_excess_base
#define max_avx2 max_base
#define rows_dot_avx2 rows_dot_base
#define rows_axpy_avx2 rows_axpy_base
#define rows_weighted_sum_avx2 rows_weighted_sum_base
#define rows_backward_avx2 rows_backward_base
#define add_array_avx2 add_array_base
#define to_single_avx2 to_single_base
#define add_single_avx2 add_single_base
#define widen_add_avx2 widen_add_base
#define add_narrow_avx2 add_narrow_base
#endif

/* i = the AVX2 kernel's reach (0 without AVX2); the baseline kernel takes what
 * remains of the four-wide blocks, then the scalar code the tail. */
#define VM_RUN(kernel, at, args_avx2, args_base)                                          \
    int at = HAVE_AVX2() ? kernel##_avx2 args_avx2 : 0;                                   \
    at += kernel##_base args_base

void vm_exp_array(double *y, const double *x, int n) { vm_exp_shifted(y, x, 0.0, n); }

void vm_exp_shifted(double *y, const double *x, double shift, int n)
{
    VM_RUN(exp_array, i, (y, x, shift, n), (y + i, x + i, shift, n - i));
    for (; i < n; i++)
        y[i] = vm_exp(x[i] - shift);
}

void vm_exp_diff_array(double *y, const double *x, double b, int n)
{
    VM_RUN(exp_diff_array, i, (y, x, b, n), (y + i, x + i, b, n - i));
    for (; i < n; i++)
        y[i] = exp_diff(x[i], b);
}

double vm_max(const double *x, int n, double start)
{
    double lanes[4] = {start, start, start, start};
    VM_RUN(max, i, (x, n, lanes), (x + i, n - i, lanes));
    double top = start;
    for (int j = 0; j < 4; j++)
        top = lanes[j] > top ? lanes[j] : top;
    for (; i < n; i++)
        top = x[i] > top ? x[i] : top;
    return top;
}

void vm_sigmoid_array(double *y, const double *x, int n)
{
    VM_RUN(sigmoid_array, i, (y, x, n), (y + i, x + i, n - i));
    for (; i < n; i++)
        y[i] = vm_sigmoid(x[i]);
}

void vm_scaled_excess(double *out, const double *w, const double *r, double c, int n)
{
    VM_RUN(scaled_excess, i, (out, w, r, c, n), (out + i, w + i, r + i, c, n - i));
    for (; i < n; i++)
        out[i] = w[i] * (r[i] - c);
}

static __attribute__((noinline)) int first_not_below_base(const double *x, int from, int n,
                                                          double t)
{
    for (int i = from; i < n; i++)
        if (!(x[i] < t))
            return i;
    return n;
}

static __attribute__((noinline)) int is_iota_base(const int *x, int from, int n)
{
    unsigned bad = 0;
    for (int i = from; i < n; i++)
        bad |= (unsigned)(x[i] ^ i);
    return bad == 0;
}

#ifdef VM_DISPATCH
/* Eight at a time: two comparisons and one mask test skip them when all are
 * below. Returns where the scan stopped; first_not_below_base goes on from there. */
static VM_AVX2 int first_not_below_avx2(const double *x, int from, int n, double t)
{
    int i = from;
    __m256d tt = _mm256_set1_pd(t);
    for (; i + 8 <= n; i += 8) {
        __m256d a = _mm256_cmp_pd(_mm256_loadu_pd(x + i), tt, _CMP_LT_OQ);
        __m256d b = _mm256_cmp_pd(_mm256_loadu_pd(x + i + 4), tt, _CMP_LT_OQ);
        if (_mm256_movemask_pd(_mm256_and_pd(a, b)) != 0xF)
            break;
    }
    return i;
}

/* 1 if the blocks of 8 up to *reached all hold their own index. */
static VM_AVX2 int is_iota_avx2(const int *x, int n, int *reached)
{
    __m256i want = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), eight = _mm256_set1_epi32(8);
    __m256i bad = _mm256_setzero_si256();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i got = _mm256_loadu_si256((const __m256i *)(const void *)(x + i));
        bad = _mm256_or_si256(bad, _mm256_xor_si256(got, want));
        want = _mm256_add_epi32(want, eight);
    }
    *reached = i;
    return _mm256_testz_si256(bad, bad);
}
#endif

int vm_is_iota(const int *x, int n)
{
    int i = 0;
#ifdef VM_DISPATCH
    if (HAVE_AVX2() && !is_iota_avx2(x, n, &i))
        return 0;
#endif
    return is_iota_base(x, i, n);
}

int vm_first_not_below(const double *x, int from, int n, double t)
{
#ifdef VM_DISPATCH
    if (HAVE_AVX2())
        from = first_not_below_avx2(x, from, n, t);
#endif
    return first_not_below_base(x, from, n, t);
}

void vm_rows_dot(double *out, const double *A, const double *x, int n, int d)
{
    VM_RUN(rows_dot, i, (out, A, NULL, x, n, d), (out + i, A + (size_t)i * (size_t)d, NULL, x, n - i, d));
    for (; i < n; i++)
        out[i] = vm_dot(A + (size_t)i * (size_t)d, x, d);
}

void vm_rows_dot_gather(double *out, const double *A, const int *rows, const double *x,
                        int n, int d)
{
    VM_RUN(rows_dot, i, (out, A, rows, x, n, d), (out + i, A, rows + i, x, n - i, d));
    for (; i < n; i++)
        out[i] = vm_dot(A + (size_t)rows[i] * (size_t)d, x, d);
}

void vm_rows_axpy(double *A, const double *g, const double *h, int n, int d)
{
    int c = HAVE_AVX2() ? rows_axpy_avx2(A, g, h, n, d) : rows_axpy_base(A, g, h, n, d);
    for (int i = 0; i < n && c < d; i++)
        for (int j = c; j < d; j++)
            A[(size_t)i * (size_t)d + j] += g[i] * h[j];
}

void vm_rows_weighted_sum(double *out, const double *A, const double *g, int n, int d)
{
    int c = HAVE_AVX2() ? rows_weighted_sum_avx2(out, A, g, n, d)
                        : rows_weighted_sum_base(out, A, g, n, d);
    for (; c < d; c++)
        for (int i = 0; i < n; i++)
            out[c] += g[i] * A[(size_t)i * (size_t)d + c];
}

static void adam_scalar(double *w, const double *g, double *m, double *v, size_t lo,
                        size_t n, double b1, double b2, double c1, double c2, double lr,
                        double eps, double wd)
{
    for (size_t i = lo; i < n; i++) {
        m[i] = b1 * m[i] + (1.0 - b1) * g[i];
        v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
        double mhat = m[i] / c1, vhat = v[i] / c2;
        w[i] -= lr * (mhat / (sqrt(vhat) + eps) + wd * w[i]);
    }
}

#ifdef VM_DISPATCH
/* The same, four at a time (sqrt is correctly rounded in both). */
static VM_AVX2 size_t adam_avx2(double *w, const double *g, double *m, double *v, size_t n,
                                double b1, double b2, double c1, double c2, double lr,
                                double eps, double wd)
{
    __m256d beta1 = _mm256_set1_pd(b1), beta2 = _mm256_set1_pd(b2);
    __m256d keep1 = _mm256_set1_pd(1.0 - b1), keep2 = _mm256_set1_pd(1.0 - b2);
    __m256d corr1 = _mm256_set1_pd(c1), corr2 = _mm256_set1_pd(c2);
    __m256d rate = _mm256_set1_pd(lr), epsilon = _mm256_set1_pd(eps), decay = _mm256_set1_pd(wd);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256d gi = _mm256_loadu_pd(g + i), wi = _mm256_loadu_pd(w + i);
        __m256d mi = _mm256_add_pd(_mm256_mul_pd(beta1, _mm256_loadu_pd(m + i)),
                                   _mm256_mul_pd(keep1, gi));
        __m256d vi = _mm256_add_pd(_mm256_mul_pd(beta2, _mm256_loadu_pd(v + i)),
                                   _mm256_mul_pd(_mm256_mul_pd(keep2, gi), gi));
        _mm256_storeu_pd(m + i, mi);
        _mm256_storeu_pd(v + i, vi);
        __m256d mhat = _mm256_div_pd(mi, corr1), vhat = _mm256_div_pd(vi, corr2);
        __m256d root = _mm256_add_pd(_mm256_sqrt_pd(vhat), epsilon);
        __m256d step = _mm256_add_pd(_mm256_div_pd(mhat, root), _mm256_mul_pd(decay, wi));
        _mm256_storeu_pd(w + i, _mm256_sub_pd(wi, _mm256_mul_pd(rate, step)));
    }
    return i;
}
#endif

void vm_adam(double *w, const double *g, double *m, double *v, size_t n, double b1, double b2,
             double c1, double c2, double lr, double eps, double wd)
{
    size_t i = 0;
#ifdef VM_DISPATCH
    if (HAVE_AVX2())
        i = adam_avx2(w, g, m, v, n, b1, b2, c1, c2, lr, eps, wd);
#endif
    adam_scalar(w, g, m, v, i, n, b1, b2, c1, c2, lr, eps, wd);
}

/* vm_adam_scaled's element i, as the AVX2 loop computes it lane by lane. */
static double adam_scaled_one(double *w, const double *g, double *m, double *v, size_t i,
                              const double *k)
{
    double gi = g[i] * k[0];
    m[i] = k[1] * m[i] + k[2] * gi;
    v[i] = k[3] * v[i] + (k[4] * gi) * gi;
    double denom = sqrt(v[i]) * k[5] + k[6];
    w[i] = w[i] - ((k[7] * m[i]) / denom + k[8] * w[i]);
    return w[i] * 0.0; /* 0, or NaN if w[i] is not finite */
}

#ifdef VM_DISPATCH
static VM_AVX2 size_t adam_scaled_avx2(double *w, const double *g, double *m, double *v,
                                       size_t n, const double *k, double *bad)
{
    __m256d K[9];
    for (int j = 0; j < 9; j++)
        K[j] = _mm256_set1_pd(k[j]);
    __m256d flag = _mm256_setzero_pd(), zero = _mm256_setzero_pd();
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256d gi = _mm256_mul_pd(_mm256_loadu_pd(g + i), K[0]), wi = _mm256_loadu_pd(w + i);
        __m256d mi = _mm256_add_pd(_mm256_mul_pd(K[1], _mm256_loadu_pd(m + i)),
                                   _mm256_mul_pd(K[2], gi));
        __m256d vi = _mm256_add_pd(_mm256_mul_pd(K[3], _mm256_loadu_pd(v + i)),
                                   _mm256_mul_pd(_mm256_mul_pd(K[4], gi), gi));
        _mm256_storeu_pd(m + i, mi);
        _mm256_storeu_pd(v + i, vi);
        __m256d denom = _mm256_add_pd(_mm256_mul_pd(_mm256_sqrt_pd(vi), K[5]), K[6]);
        __m256d step = _mm256_add_pd(_mm256_div_pd(_mm256_mul_pd(K[7], mi), denom),
                                     _mm256_mul_pd(K[8], wi));
        wi = _mm256_sub_pd(wi, step);
        _mm256_storeu_pd(w + i, wi);
        flag = _mm256_add_pd(flag, _mm256_mul_pd(wi, zero));
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, flag);
    *bad += (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    return i;
}
#endif

int vm_adam_scaled(double *w, const double *g, double *m, double *v, size_t n, double gscale,
                   double b1, double b2, double c1, double c2, double lr, double eps, double wd)
{
    /* g scale, b1, 1 - b1, b2, 1 - b2, 1 / sqrt(c2), eps, lr / c1, lr wd */
    const double k[9] = {gscale, b1, 1.0 - b1, b2, 1.0 - b2, 1.0 / sqrt(c2), eps, lr / c1,
                         lr * wd};
    double bad = 0.0;
    size_t i = 0;
#ifdef VM_DISPATCH
    if (HAVE_AVX2())
        i = adam_scaled_avx2(w, g, m, v, n, k, &bad);
#endif
    for (; i < n; i++)
        bad += adam_scaled_one(w, g, m, v, i, k);
    return bad == 0.0;
}

void vm_rows_backward(double *dx, double *dA, double *dbias, const double *A, const double *g,
                      const double *x, int n, int d)
{
    if (d % 4 != 0) { /* the general case, in the same order element by element */
        vm_rows_weighted_sum(dx, A, g, n, d);
        vm_rows_axpy(dA, g, x, n, d);
        if (dbias)
            vm_add_array(dbias, g, n);
        return;
    }
    if (HAVE_AVX2())
        rows_backward_avx2(dx, dA, dbias, A, g, x, n, d);
    else
        rows_backward_base(dx, dA, dbias, A, g, x, n, d);
}

void vm_add_array(double *y, const double *x, int n)
{
    VM_RUN(add_array, i, (y, x, n), (y + i, x + i, n - i));
    for (; i < n; i++)
        y[i] += x[i];
}

void vm_to_single(float *y, const double *x, size_t n)
{
    size_t i = HAVE_AVX2() ? to_single_avx2(y, x, n) : 0;
    i += to_single_base(y + i, x + i, n - i);
    for (; i < n; i++)
        y[i] = (float)x[i];
}

void vm_add_single(double *y, const float *x, size_t n)
{
    size_t i = HAVE_AVX2() ? add_single_avx2(y, x, n) : 0;
    i += add_single_base(y + i, x + i, n - i);
    for (; i < n; i++)
        y[i] += x[i];
}

void vm_widen_add(double *y, const float *x, const double *b, int n)
{
    VM_RUN(widen_add, i, (y, x, b, n), (y + i, x + i, b + i, n - i));
    for (; i < n; i++)
        y[i] = (double)x[i] + b[i];
}

void vm_add_narrow(double *y, float *z, const double *x, int n)
{
    VM_RUN(add_narrow, i, (y, z, x, n), (y + i, z + i, x + i, n - i));
    for (; i < n; i++) {
        y[i] += x[i];
        z[i] = (float)x[i];
    }
}

/* ---- every pair's dot product ---- */

enum { PAIR_COLS = 16 }; /* columns transposed at a time: 16 x 64 doubles on the stack */

/* T[c][j] = rows[j][c0 + c] for c < nc, j < k; 0 for k <= j < k4. */
static void transpose_columns(double (*T)[VM_PAIR_DOTS_MAX], const double *const *rows, int k,
                              int k4, int c0, int nc)
{
    const double zero[PAIR_COLS] = {0.0};
    for (int j = 0; j < k4; j += 4) {
        const double *r0 = rows[j] + c0;
        const double *r1 = j + 1 < k ? rows[j + 1] + c0 : zero;
        const double *r2 = j + 2 < k ? rows[j + 2] + c0 : zero;
        const double *r3 = j + 3 < k ? rows[j + 3] + c0 : zero;
        for (int c = 0; c < nc; c++)
            store4(&T[c][j], (v4d){r0[c], r1[c], r2[c], r3[c]});
    }
}

/* Rows a0 .. a0 + 3 of out (row length k4) at columns j .. j + 4 nb: += the
 * products of T's columns a0 .. a0 + 3 with its columns j .. j + 4 nb, over its
 * first nc rows, one after another, so that each lane is one pair's sum in index
 * order. Inlined with nb constant and the loops over the tile unrolled, the 4 nb
 * sums stay in registers. */
VM_INLINE void pair_tile(double *out, int k4, const double (*T)[VM_PAIR_DOTS_MAX], int a0,
                         int j, int nb, int nc)
{
    v4d s[4][4];
    double *o = out + (size_t)a0 * (size_t)k4 + j;
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
        for (int b = 0; b < nb; b++)
            s[r][b] = load4(o + (size_t)r * (size_t)k4 + 4 * b);
    for (int c = 0; c < nc; c++) {
        v4d t[4];
#pragma GCC unroll 4
        for (int b = 0; b < nb; b++)
            t[b] = load4(&T[c][j + 4 * b]);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            v4d x = splat(T[c][a0 + r]);
#pragma GCC unroll 4
            for (int b = 0; b < nb; b++)
                s[r][b] = s[r][b] + x * t[b];
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
        for (int b = 0; b < nb; b++)
            store4(o + (size_t)r * (size_t)k4 + 4 * b, s[r][b]);
}

/* out[a k4 + j] += the next nc columns' products of rows a and j, for every
 * a < k4 and j >= a - a % 4 (a 4 x 16 tile at a time). */
#define PAIR_DOTS_KERNEL(suffix, attr)                                                     \
    static attr void pair_dots_##suffix(double *out, const double (*T)[VM_PAIR_DOTS_MAX], \
                                        int k4, int nc)                                    \
    {                                                                                      \
        for (int a0 = 0; a0 < k4; a0 += 4)                                                 \
            for (int j = a0; j < k4; j += 16) {                                            \
                switch ((k4 - j) / 4) {                                                    \
                case 1: pair_tile(out, k4, T, a0, j, 1, nc); break;                        \
                case 2: pair_tile(out, k4, T, a0, j, 2, nc); break;                        \
                case 3: pair_tile(out, k4, T, a0, j, 3, nc); break;                        \
                default: pair_tile(out, k4, T, a0, j, 4, nc); break;                       \
                }                                                                          \
            }                                                                              \
    }
PAIR_DOTS_KERNEL(base, __attribute__((noinline)))
#ifdef VM_DISPATCH
PAIR_DOTS_KERNEL(avx2, VM_AVX2)
#else
#define pair_dots_avx2 pair_dots_base
#endif

void vm_pair_dots(double *out, const double *const *rows, int k, int d)
{
    double T[PAIR_COLS][VM_PAIR_DOTS_MAX];
    int k4 = (k + 3) / 4 * 4;
    memset(out, 0, sizeof(double) * (size_t)k4 * (size_t)k4);
    for (int c0 = 0; c0 < d; c0 += PAIR_COLS) {
        int nc = d - c0 < PAIR_COLS ? d - c0 : PAIR_COLS;
        transpose_columns(T, rows, k, k4, c0, nc);
        if (HAVE_AVX2())
            pair_dots_avx2(out, (const double(*)[VM_PAIR_DOTS_MAX])T, k4, nc);
        else
            pair_dots_base(out, (const double(*)[VM_PAIR_DOTS_MAX])T, k4, nc);
    }
}

/* ---- int8 rows in blocks of eight ---- */

size_t vm_i8_block_entry(int i, int c, int d)
{
    size_t pairs = (size_t)(d + 1) / 2;
    return (size_t)(i / 8) * pairs * 16 + (size_t)(c / 2) * 16 + (size_t)(2 * (i % 8) + c % 2);
}

int vm_i8_max_x(int d)
{
    long limit = 2147483647L / (127L * (d > 1 ? d : 1));
    return limit < 32767 ? (int)limit : 32767;
}

/* Eight rows' exact sums in column order, one row at a time, then each scaled
 * as the vector kernel scales it. */
static __attribute__((noinline)) void i8_blocks_dot_base(float *out, const int8_t *B,
                                                         const int16_t *x, const float *scale,
                                                         float t, int from, int n_blocks, int d)
{
    int pairs = (d + 1) / 2;
    for (int b = from; b < n_blocks; b++) {
        const int8_t *p = B + (size_t)b * (size_t)pairs * 16;
        for (int r = 0; r < 8; r++) {
            int32_t sum = 0;
            for (int j = 0; j < pairs; j++)
                sum += p[16 * j + 2 * r] * x[2 * j] + p[16 * j + 2 * r + 1] * x[2 * j + 1];
            out[8 * b + r] = ((float)sum * scale[8 * b + r]) * t;
        }
    }
}

static __attribute__((noinline)) int first_sum_not_below_base(const float *f, float a,
                                                              const float *w, int from, int n,
                                                              float t)
{
    for (int i = from; i < n; i++)
        if (!(f[i] + a * w[i] < t))
            return i;
    return n;
}

#ifdef VM_DISPATCH
/* One block's column pair j: its sixteen entries (row r's pair at 2r, 2r + 1)
 * widened to 16 bits, each row's two products summed into its 32-bit lane of
 * acc (vpmaddwd: exact, as the sums stay below 2^31). The sums are vector
 * extensions' values, not __m256i: with += GCC keeps each in its register
 * instead of copying it every step. */
#define I8_BLOCK_STEP(p, acc)                                                            \
    acc += (v8i)_mm256_madd_epi16(                                                       \
                 _mm256_cvtepi8_epi16(                                                   \
                     _mm_loadu_si128((const __m128i *)(const void *)((p) + 16 * j))),    \
                 xj)

/* The eight sums as singles, times the rows' scales, times t. */
#define I8_BLOCK_STORE(o, acc, sc)                                                       \
    _mm256_storeu_ps(                                                                    \
        o, _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps((__m256i)(acc)), _mm256_loadu_ps(sc)), tv))

/* Four blocks per pass over the column pairs (four independent sums), each pair
 * of x broadcast once as a 32-bit word; returns the blocks done. */
static VM_AVX2 int i8_blocks_dot_avx2(float *out, const int8_t *B, const int16_t *x,
                                      const float *scale, float t, int n_blocks, int d)
{
    int pairs = (d + 1) / 2;
    size_t step = (size_t)pairs * 16;
    __m256 tv = _mm256_set1_ps(t);
    int b = 0;
    for (; b + 4 <= n_blocks; b += 4) {
        const int8_t *p0 = B + (size_t)b * step, *p1 = p0 + step, *p2 = p1 + step,
                     *p3 = p2 + step;
        v8i a0 = {0}, a1 = a0, a2 = a0, a3 = a0;
        for (int j = 0; j < pairs; j++) {
            int32_t pair;
            memcpy(&pair, x + 2 * j, sizeof pair);
            __m256i xj = _mm256_set1_epi32(pair);
            I8_BLOCK_STEP(p0, a0);
            I8_BLOCK_STEP(p1, a1);
            I8_BLOCK_STEP(p2, a2);
            I8_BLOCK_STEP(p3, a3);
        }
        I8_BLOCK_STORE(out + 8 * b, a0, scale + 8 * b);
        I8_BLOCK_STORE(out + 8 * b + 8, a1, scale + 8 * b + 8);
        I8_BLOCK_STORE(out + 8 * b + 16, a2, scale + 8 * b + 16);
        I8_BLOCK_STORE(out + 8 * b + 24, a3, scale + 8 * b + 24);
    }
    for (; b < n_blocks; b++) {
        const int8_t *p0 = B + (size_t)b * step;
        v8i a0 = {0};
        for (int j = 0; j < pairs; j++) {
            int32_t pair;
            memcpy(&pair, x + 2 * j, sizeof pair);
            __m256i xj = _mm256_set1_epi32(pair);
            I8_BLOCK_STEP(p0, a0);
        }
        I8_BLOCK_STORE(out + 8 * b, a0, scale + 8 * b);
    }
    return b;
}

/* first_sum_not_below sixteen at a time, the same operations (a product, then
 * a sum); returns where the scan stopped. */
static VM_AVX2 int first_sum_not_below_avx2(const float *f, float a, const float *w, int from,
                                            int n, float t)
{
    int i = from;
    __m256 tt = _mm256_set1_ps(t), aa = _mm256_set1_ps(a);
    for (; i + 16 <= n; i += 16) {
        __m256 lo = _mm256_add_ps(_mm256_loadu_ps(f + i), _mm256_mul_ps(aa, _mm256_loadu_ps(w + i)));
        __m256 hi = _mm256_add_ps(_mm256_loadu_ps(f + i + 8),
                                  _mm256_mul_ps(aa, _mm256_loadu_ps(w + i + 8)));
        __m256 below = _mm256_and_ps(_mm256_cmp_ps(lo, tt, _CMP_LT_OQ),
                                     _mm256_cmp_ps(hi, tt, _CMP_LT_OQ));
        if (_mm256_movemask_ps(below) != 0xFF)
            break;
    }
    return i;
}

#endif

void vm_i8_blocks_dot(float *out, const int8_t *B, const int16_t *x, const float *scale, float t,
                      int n_blocks, int d)
{
    int b = 0;
#ifdef VM_DISPATCH
    if (HAVE_AVX2())
        b = i8_blocks_dot_avx2(out, B, x, scale, t, n_blocks, d);
#endif
    i8_blocks_dot_base(out, B, x, scale, t, b, n_blocks, d);
}

int vm_first_sum_not_below(const float *f, float a, const float *w, int from, int n, float t)
{
#ifdef VM_DISPATCH
    if (HAVE_AVX2())
        from = first_sum_not_below_avx2(f, a, w, from, n, t);
#endif
    return first_sum_not_below_base(f, a, w, from, n, t);
}

/* ---- singles: lookups and screening scans ---- */

static __attribute__((noinline)) void lookup_singles_base(float *out, const float *table,
                                                          const int *index, int from, int n)
{
    for (int j = from; j < n; j++)
        out[j] = table[index[j]];
}

/* Lane l of a group's summary from the group's entries g[8 v + l], v < count / 8
 * (count a multiple of 8, or the lanes past count take -Inf). */
static __attribute__((noinline)) void group_max_base(float *summary, const float *g, int count)
{
    for (int l = 0; l < 8; l++) {
        float m = -INFINITY;
        for (int j = l; j < count; j += 8)
            m = g[j] != g[j] ? INFINITY : g[j] > m ? g[j] : m;
        summary[l] = m;
    }
}

/* The positions from .. from + count - 1 with !(x[j] < t), into out. */
static int entries_not_below(int *out, const float *x, int from, int count, float t)
{
    int found = 0;
    for (int j = from; j < from + count; j++)
        if (!(x[j] < t))
            out[found++] = j;
    return found;
}

/* The groups from entry from (a multiple of VM_GROUP) on. */
static __attribute__((noinline)) int positions_not_below_base(int *out, const float *x,
                                                              const float *group_max, int from,
                                                              int n, float t)
{
    int found = 0;
    for (int j = from; j < n; j += VM_GROUP) {
        int reached = 0;
        for (int l = 0; l < 8; l++)
            reached |= !(group_max[8 * (j / VM_GROUP) + l] < t);
        if (reached)
            found += entries_not_below(out + found, x, j, n - j < VM_GROUP ? n - j : VM_GROUP, t);
    }
    return found;
}

#ifdef VM_DISPATCH
/* Tables of up to this many entries are read by permutations, which are much
 * cheaper than a gather on some CPUs (one gather of eight costs about as much
 * as sixteen permutations on AMD's Zen 2). */
enum { PERMUTED_TABLE = 32 };

static VM_AVX2 int lookup_singles_avx2(float *out, const float *table, int table_n,
                                       const int *index, int n)
{
    int j = 0;
    if (table_n > PERMUTED_TABLE) {
        for (; j + 8 <= n; j += 8)
            _mm256_storeu_ps(out + j, _mm256_i32gather_ps(
                                          table, _mm256_loadu_si256((const __m256i *)(index + j)),
                                          4));
        return j;
    }
    float padded[PERMUTED_TABLE] = {0};
    memcpy(padded, table, sizeof(float) * (size_t)table_n);
    __m256 t0 = _mm256_loadu_ps(padded), t1 = _mm256_loadu_ps(padded + 8),
           t2 = _mm256_loadu_ps(padded + 16), t3 = _mm256_loadu_ps(padded + 24);
    for (; j + 8 <= n; j += 8) {
        /* entry 8 c + (i mod 8) of the table chunk c = i / 8: bits 3 and 4 of i,
         * moved to the sign bit, choose between the chunks' permutations */
        __m256i i = _mm256_loadu_si256((const __m256i *)(index + j));
        __m256 bit3 = _mm256_castsi256_ps(_mm256_slli_epi32(i, 28));
        __m256 bit4 = _mm256_castsi256_ps(_mm256_slli_epi32(i, 27));
        __m256 low = _mm256_blendv_ps(_mm256_permutevar8x32_ps(t0, i),
                                      _mm256_permutevar8x32_ps(t1, i), bit3);
        __m256 high = _mm256_blendv_ps(_mm256_permutevar8x32_ps(t2, i),
                                       _mm256_permutevar8x32_ps(t3, i), bit3);
        _mm256_storeu_ps(out + j, _mm256_blendv_ps(low, high, bit4));
    }
    return j;
}

/* The full groups' summaries; returns the entries done. */
static VM_AVX2 int group_max_avx2(float *group_max, const float *x, int n)
{
    const __m256 inf = _mm256_set1_ps(INFINITY);
    int j = 0;
    for (; j + VM_GROUP <= n; j += VM_GROUP) {
        __m256 m = _mm256_set1_ps(-INFINITY), nan = _mm256_setzero_ps();
        for (int v = 0; v < VM_GROUP; v += 8) {
            __m256 e = _mm256_loadu_ps(x + j + v);
            m = _mm256_max_ps(m, e);
            nan = _mm256_or_ps(nan, _mm256_cmp_ps(e, e, _CMP_UNORD_Q));
        }
        _mm256_storeu_ps(group_max + 8 * (j / VM_GROUP), _mm256_blendv_ps(m, inf, nan));
    }
    return j;
}

/* The lanes set in an eight-bit mask m, in increasing order, three bits each:
 * the j-th of them in bits 3 j .. 3 j + 2 of lane_lists[m]. */
static const uint32_t lane_lists[256] = {
    0x000000, 0x000000, 0x000001, 0x000008, 0x000002, 0x000010, 0x000011, 0x000088,
    0x000003, 0x000018, 0x000019, 0x0000c8, 0x00001a, 0x0000d0, 0x0000d1, 0x000688,
    0x000004, 0x000020, 0x000021, 0x000108, 0x000022, 0x000110, 0x000111, 0x000888,
    0x000023, 0x000118, 0x000119, 0x0008c8, 0x00011a, 0x0008d0, 0x0008d1, 0x004688,
    0x000005, 0x000028, 0x000029, 0x000148, 0x00002a, 0x000150, 0x000151, 0x000a88,
    0x00002b, 0x000158, 0x000159, 0x000ac8, 0x00015a, 0x000ad0, 0x000ad1, 0x005688,
    0x00002c, 0x000160, 0x000161, 0x000b08, 0x000162, 0x000b10, 0x000b11, 0x005888,
    0x000163, 0x000b18, 0x000b19, 0x0058c8, 0x000b1a, 0x0058d0, 0x0058d1, 0x02c688,
    0x000006, 0x000030, 0x000031, 0x000188, 0x000032, 0x000190, 0x000191, 0x000c88,
    0x000033, 0x000198, 0x000199, 0x000cc8, 0x00019a, 0x000cd0, 0x000cd1, 0x006688,
    0x000034, 0x0001a0, 0x0001a1, 0x000d08, 0x0001a2, 0x000d10, 0x000d11, 0x006888,
    0x0001a3, 0x000d18, 0x000d19, 0x0068c8, 0x000d1a, 0x0068d0, 0x0068d1, 0x034688,
    0x000035, 0x0001a8, 0x0001a9, 0x000d48, 0x0001aa, 0x000d50, 0x000d51, 0x006a88,
    0x0001ab, 0x000d58, 0x000d59, 0x006ac8, 0x000d5a, 0x006ad0, 0x006ad1, 0x035688,
    0x0001ac, 0x000d60, 0x000d61, 0x006b08, 0x000d62, 0x006b10, 0x006b11, 0x035888,
    0x000d63, 0x006b18, 0x006b19, 0x0358c8, 0x006b1a, 0x0358d0, 0x0358d1, 0x1ac688,
    0x000007, 0x000038, 0x000039, 0x0001c8, 0x00003a, 0x0001d0, 0x0001d1, 0x000e88,
    0x00003b, 0x0001d8, 0x0001d9, 0x000ec8, 0x0001da, 0x000ed0, 0x000ed1, 0x007688,
    0x00003c, 0x0001e0, 0x0001e1, 0x000f08, 0x0001e2, 0x000f10, 0x000f11, 0x007888,
    0x0001e3, 0x000f18, 0x000f19, 0x0078c8, 0x000f1a, 0x0078d0, 0x0078d1, 0x03c688,
    0x00003d, 0x0001e8, 0x0001e9, 0x000f48, 0x0001ea, 0x000f50, 0x000f51, 0x007a88,
    0x0001eb, 0x000f58, 0x000f59, 0x007ac8, 0x000f5a, 0x007ad0, 0x007ad1, 0x03d688,
    0x0001ec, 0x000f60, 0x000f61, 0x007b08, 0x000f62, 0x007b10, 0x007b11, 0x03d888,
    0x000f63, 0x007b18, 0x007b19, 0x03d8c8, 0x007b1a, 0x03d8d0, 0x03d8d1, 0x1ec688,
    0x00003e, 0x0001f0, 0x0001f1, 0x000f88, 0x0001f2, 0x000f90, 0x000f91, 0x007c88,
    0x0001f3, 0x000f98, 0x000f99, 0x007cc8, 0x000f9a, 0x007cd0, 0x007cd1, 0x03e688,
    0x0001f4, 0x000fa0, 0x000fa1, 0x007d08, 0x000fa2, 0x007d10, 0x007d11, 0x03e888,
    0x000fa3, 0x007d18, 0x007d19, 0x03e8c8, 0x007d1a, 0x03e8d0, 0x03e8d1, 0x1f4688,
    0x0001f5, 0x000fa8, 0x000fa9, 0x007d48, 0x000faa, 0x007d50, 0x007d51, 0x03ea88,
    0x000fab, 0x007d58, 0x007d59, 0x03eac8, 0x007d5a, 0x03ead0, 0x03ead1, 0x1f5688,
    0x000fac, 0x007d60, 0x007d61, 0x03eb08, 0x007d62, 0x03eb10, 0x03eb11, 0x1f5888,
    0x007d63, 0x03eb18, 0x03eb19, 0x1f58c8, 0x03eb1a, 0x1f58d0, 0x1f58d1, 0xfac688,
};

/* Appends v + l for the lanes l of `mask` to out + found, without a branch: all
 * eight lanes are stored, those past the mask's count to be overwritten (out
 * has room: found <= v, and v + 8 <= n). Returns the new count. */
VM_INLINE VM_AVX2 int append_lanes_avx2(int *out, int found, unsigned mask, int v)
{
    const __m256i shifts = _mm256_setr_epi32(0, 3, 6, 9, 12, 15, 18, 21);
    __m256i lanes = _mm256_and_si256(
        _mm256_srlv_epi32(_mm256_set1_epi32((int)lane_lists[mask]), shifts), _mm256_set1_epi32(7));
    _mm256_storeu_si256((__m256i *)(out + found), _mm256_add_epi32(lanes, _mm256_set1_epi32(v)));
    return found + __builtin_popcount(mask);
}

/* The positions in the full groups, without a branch that depends on the data:
 * the groups whose summary reaches t are listed first (a batch at a time), then
 * their entries appended eight at a time; returns how many it found, and the
 * entries done in *done. */
static VM_AVX2 int positions_not_below_avx2(int *out, const float *x, const float *group_max,
                                            int n, float t, int *done)
{
    enum { BATCH = 64 };
    const __m256 tt = _mm256_set1_ps(t);
    int found = 0, full = n / VM_GROUP;
    for (int from = 0; from < full; from += BATCH) {
        int reached[BATCH], count = 0, to = full - from < BATCH ? full : from + BATCH;
        for (int g = from; g < to; g++) {
            __m256 below = _mm256_cmp_ps(_mm256_loadu_ps(group_max + 8 * g), tt, _CMP_LT_OQ);
            reached[count] = g;
            count += _mm256_movemask_ps(below) != 0xFF;
        }
        for (int q = 0; q < count; q++)
            for (int v = reached[q] * VM_GROUP; v < (reached[q] + 1) * VM_GROUP; v += 8) {
                __m256 in = _mm256_cmp_ps(_mm256_loadu_ps(x + v), tt, _CMP_NLT_UQ);
                found = append_lanes_avx2(out, found, (unsigned)_mm256_movemask_ps(in), v);
            }
    }
    *done = full * VM_GROUP;
    return found;
}
#endif

void vm_lookup_singles(float *out, const float *table, int table_n, const int *index, int n)
{
    int j = 0;
#ifdef VM_DISPATCH
    if (HAVE_AVX2())
        j = lookup_singles_avx2(out, table, table_n, index, n);
#else
    (void)table_n;
#endif
    lookup_singles_base(out, table, index, j, n);
}

void vm_group_max_singles(float *group_max, const float *x, int n)
{
    int j = 0;
#ifdef VM_DISPATCH
    if (HAVE_AVX2())
        j = group_max_avx2(group_max, x, n);
#endif
    for (; j < n; j += VM_GROUP)
        group_max_base(group_max + 8 * (j / VM_GROUP), x + j, n - j < VM_GROUP ? n - j : VM_GROUP);
}

int vm_positions_not_below(int *out, const float *x, const float *group_max, int n, float t)
{
    int found = 0, done = 0;
#ifdef VM_DISPATCH
    if (HAVE_AVX2())
        found = positions_not_below_avx2(out, x, group_max, n, t, &done);
#endif
    return found + positions_not_below_base(out + found, x, group_max, done, n, t);
}

/* ---- the learners' exponential ----
 * vm_exp's reduction and polynomial, evaluated by Estrin's scheme (the twelve terms
 * of q paired, then combined in a tree: five dependent steps instead of twelve) and,
 * where the CPU has FMA, with fused multiply-adds. The vector code holds vector
 * loops only (see VM_KERNELS); the dispatcher pads a tail of fewer than four to a
 * full vector, so every element goes through the same operations. */

#define MADD_PLAIN(a, b, c) ((a) * (b) + (c))
#define ANY_PLAIN(m) (((m)[0] | (m)[1] | (m)[2] | (m)[3]) != 0)
/* e^x is normal for |x| <= 708 (e^-708 = 3.3e-308 > DBL_MIN), k in [-1021, 1021] */
#define EXP_NORMAL 708.0

#define VM_EXP_FAST(suffix, target, attr, MADD, splat, ANY)                               \
    VM_INLINE target v4d exp_fast4_##suffix(v4d x)                                        \
    {                                                                                     \
        v4d t = MADD(x, splat(LOG2E), splat(SHIFT));                                      \
        v4d kd = t - splat(SHIFT);                                                        \
        v4d r = MADD(-kd, splat(LN2_HI), x); /* exact: kd LN2_HI has spare bits */        \
        r = MADD(-kd, splat(LN2_LO), r);                                                  \
        v4d r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;                                       \
        v4d p0 = MADD(splat(C3), r, splat(C2)), p1 = MADD(splat(C5), r, splat(C4));       \
        v4d p2 = MADD(splat(C7), r, splat(C6)), p3 = MADD(splat(C9), r, splat(C8));       \
        v4d p4 = MADD(splat(C11), r, splat(C10)), p5 = MADD(splat(C13), r, splat(C12));   \
        v4d q0 = MADD(p1, r2, p0), q1 = MADD(p3, r2, p2), q2 = MADD(p5, r2, p4);          \
        v4d q = MADD(q2, r8, MADD(q1, r4, q0));                                           \
        v4d p = splat(1.0) + MADD(r2, q, r);                                              \
        v4u k = (v4u)t - (v4u)splat(SHIFT);                                               \
        /* |x| <= EXP_NORMAL in every lane: e^x is normal, 2^k too, the product           \
         * exact; the same bits as the general scaling below */                           \
        if (!ANY((v4u)(x > splat(EXP_NORMAL)) | (v4u)(x < splat(-EXP_NORMAL)) |           \
                 (v4u)(x != x)))                                                          \
            return p * (v4d)((k + 1023) << 52);                                           \
        v4u k1 = ((k + 2048) >> 1) - 1024;                                                \
        v4u k2 = k - k1;                                                                  \
        v4d y = (p * (v4d)((k1 + 1023) << 52)) * (v4d)((k2 + 1023) << 52);                \
        y = select4((v4u)(x > splat(EXP_MAX)), splat(HUGE_VAL), y);                       \
        y = select4((v4u)(x < splat(EXP_MIN)), splat(0.0), y);                            \
        return select4((v4u)(x != x), x, y);                                              \
    }                                                                                     \
    static attr int exp_fast_##suffix(double *y, const double *x, double b, int diff,     \
                                      int n)                                              \
    {                                                                                     \
        int i = 0;                                                                        \
        if (!diff) {                                                                      \
            for (; i + 4 <= n; i += 4)                                                    \
                store4(y + i, exp_fast4_##suffix(load4(x + i)));                          \
            return i;                                                                     \
        }                                                                                 \
        for (; i + 4 <= n; i += 4) { /* as exp_diff_array, the correction fused */        \
            v4d a = load4(x + i), d = a - b;                                              \
            v4d b_part = d - a;                                                           \
            v4d r = (a - (d - b_part)) + (-b - b_part);                                   \
            v4d e = exp_fast4_##suffix(d);                                                \
            store4(y + i, MADD(e, r, e));                                                 \
        }                                                                                 \
        return i;                                                                         \
    }                                                                                     \
    /* exp_fast's diff loop, summing as it goes (see exp_fast_weigh_run) */               \
    static attr int exp_fast_weigh_##suffix(double *y, const double *x, double b,         \
                                            double skip, int n, v4d *acc)                 \
    {                                                                                     \
        v4d z = acc[0], rest = acc[1], ws = acc[2], at = {0.0, 1.0, 2.0, 3.0};            \
        int i = 0;                                                                        \
        for (; i + 4 <= n; i += 4) {                                                      \
            v4d a = load4(x + i), d = a - b;                                              \
            v4d b_part = d - a;                                                           \
            v4d r = (a - (d - b_part)) + (-b - b_part);                                   \
            v4d e = exp_fast4_##suffix(d);                                                \
            e = MADD(e, r, e);                                                            \
            store4(y + i, e);                                                             \
            z += e;                                                                       \
            rest += select4((v4u)(at != splat(skip)), e, splat(0.0));                     \
            ws = MADD(e, splat(b) - a, ws);                                               \
            at += splat(4.0);                                                             \
        }                                                                                 \
        acc[0] = z;                                                                       \
        acc[1] = rest;                                                                    \
        acc[2] = ws;                                                                      \
        return i;                                                                         \
    }

VM_EXP_FAST(base, , __attribute__((noinline)), MADD_PLAIN, splat, ANY_PLAIN)
#ifdef VM_DISPATCH
#define MADD_FMA(a, b, c) ((v4d)_mm256_fmadd_pd((__m256d)(a), (__m256d)(b), (__m256d)(c)))
#define VM_FMA __attribute__((target("avx2,fma")))
#define SPLAT_FMA(c) ((v4d)_mm256_set1_pd(c))
#define ANY_FMA(m) (!_mm256_testz_si256((__m256i)(m), (__m256i)(m)))
VM_EXP_FAST(fma, VM_FMA, VM_FMA, MADD_FMA, SPLAT_FMA, ANY_FMA)
#define HAVE_FMA() (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
#else
#define HAVE_FMA() 0
#define exp_fast_fma exp_fast_base
#define exp_fast_weigh_fma exp_fast_weigh_base
#endif

/* ---- the learners' exponential in single precision ----
 * e^d for eight differences d = x - b at once: d rounded to a float, reduced and
 * its polynomial (Taylor to r^7, truncation below 6e-9 relative for |r| <= 0.35)
 * evaluated in single precision, the power of two applied in double, so the
 * result spans double's range, not float's. A group with a difference outside
 * [-EXP_NORMAL, EXP_NORMAL] (or NaN) goes through exp_fast4 instead. */

#define SHIFT_F 12582912.0f    /* 1.5 * 2^23 */
#define LN2_HI_F 0.693359375f  /* 9 bits: k LN2_HI_F is exact for |k| < 2^15 */
#define LN2_LO_F -2.12194440e-4f

VM_INLINE v8f splat8f(float c) { return (v8f){c, c, c, c, c, c, c, c}; }

/* Conversions between the widths, in generic code (GCC lowers these in pieces,
 * so the AVX2 kernel uses intrinsics): d0 and d1 narrowed into one vector of
 * floats; half h (0: lanes 0-3, 1: lanes 4-7) of p widened to doubles, of k to
 * 64-bit integers. */
#define NARROW_PLAIN(d0, d1)                                                               \
    __builtin_shufflevector(__builtin_convertvector(d0, v4f),                             \
                            __builtin_convertvector(d1, v4f), 0, 1, 2, 3, 4, 5, 6, 7)
#define HALF4(v, h) __builtin_shufflevector(v, v, 4 * (h), 4 * (h) + 1, 4 * (h) + 2, 4 * (h) + 3)
#define WIDEN_PLAIN(p, h) __builtin_convertvector(HALF4(p, h), v4d)
#define WIDEN_K_PLAIN(k, h) __builtin_convertvector(HALF4(k, h), v4l)

#define VM_EXP_SINGLE(suffix, target, attr, MADD, MADDF, splat, splat8f, IN_RANGE8, NARROW, \
                      WIDEN, WIDEN_K)                                                     \
    /* e^x, each lane of x within [-EXP_NORMAL, EXP_NORMAL], as two halves of doubles */ \
    VM_INLINE target void exp_single8_##suffix(v4d *e0, v4d *e1, v8f x)                   \
    {                                                                                     \
        v8f t = MADDF(x, splat8f((float)LOG2E), splat8f(SHIFT_F));                        \
        v8f kf = t - splat8f(SHIFT_F);                                                    \
        v8f r = MADDF(-kf, splat8f(LN2_HI_F), x);                                         \
        r = MADDF(-kf, splat8f(LN2_LO_F), r);                                             \
        v8f q = MADDF(splat8f((float)C7), r, splat8f((float)C6));                         \
        q = MADDF(q, r, splat8f((float)C5));                                              \
        q = MADDF(q, r, splat8f((float)C4));                                              \
        q = MADDF(q, r, splat8f((float)C3));                                              \
        q = MADDF(q, r, splat8f((float)C2));                                              \
        v8f p = splat8f(1.0f) + MADDF(r * r, q, r);                                       \
        v8i k = (v8i)t - (v8i)splat8f(SHIFT_F);                                           \
        *e0 = WIDEN(p, 0) * (v4d)((WIDEN_K(k, 0) + 1023) << 52);                          \
        *e1 = WIDEN(p, 1) * (v4d)((WIDEN_K(k, 1) + 1023) << 52);                          \
    }                                                                                     \
    /* exp_fast_weigh's pass, eight at a time in single precision, up to the end or to   \
     * a group out of range; the sums' lanes as there (e0 then e1 into lane j: the       \
     * indices = j mod 4 in order), without the sum that leaves one out */               \
    static attr int exp_single_weigh_##suffix(double *y, const double *x, double b, int n, \
                                              v4d *acc)                                   \
    {                                                                                     \
        v4d z = acc[0], ws = acc[2];                                                      \
        int i = 0;                                                                        \
        for (; i + 8 <= n; i += 8) {                                                      \
            v4d a0 = load4(x + i), a1 = load4(x + i + 4), e0, e1;                         \
            v8f d = NARROW(a0 - splat(b), a1 - splat(b));                                 \
            if (!IN_RANGE8(d))                                                            \
                break;                                                                    \
            exp_single8_##suffix(&e0, &e1, d);                                            \
            store4(y + i, e0);                                                            \
            store4(y + i + 4, e1);                                                        \
            z += e0;                                                                      \
            z += e1;                                                                      \
            ws = MADD(e0, splat(b) - a0, ws);                                             \
            ws = MADD(e1, splat(b) - a1, ws);                                             \
        }                                                                                 \
        acc[0] = z;                                                                       \
        acc[2] = ws;                                                                      \
        return i;                                                                         \
    }                                                                                     \
    /* the weights of fewer than eight, padded with b; 0 if one is out of range */        \
    static attr int exp_single_tail_##suffix(double *y, const double *x, double b, int n) \
    {                                                                                     \
        double in[8] = {b, b, b, b, b, b, b, b}, out[8];                                  \
        memcpy(in, x, (size_t)n * sizeof *in);                                            \
        v8f d = NARROW(load4(in) - splat(b), load4(in + 4) - splat(b));                   \
        if (!IN_RANGE8(d))                                                                \
            return 0;                                                                     \
        v4d e0, e1;                                                                       \
        exp_single8_##suffix(&e0, &e1, d);                                                \
        store4(out, e0);                                                                  \
        store4(out + 4, e1);                                                              \
        memcpy(y, out, (size_t)n * sizeof *out);                                          \
        return 1;                                                                         \
    }

/* 1 if every lane of x is within [-EXP_NORMAL, EXP_NORMAL] (none NaN) */
VM_INLINE int in_range8_plain(v8f x)
{
    v8i out = ~((x >= splat8f(-EXP_NORMAL)) & (x <= splat8f(EXP_NORMAL)));
    return (out[0] | out[1] | out[2] | out[3] | out[4] | out[5] | out[6] | out[7]) == 0;
}

#define MADDF_PLAIN(a, b, c) ((a) * (b) + (c))
VM_EXP_SINGLE(base, , __attribute__((noinline)), MADD_PLAIN, MADDF_PLAIN, splat, splat8f,
              in_range8_plain, NARROW_PLAIN, WIDEN_PLAIN, WIDEN_K_PLAIN)
#ifdef VM_DISPATCH
#define MADDF_FMA(a, b, c) ((v8f)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(c)))
#define SPLAT8F_FMA(c) ((v8f)_mm256_set1_ps(c))
#define NARROW_AVX2(d0, d1)                                                                \
    ((v8f)_mm256_set_m128(_mm256_cvtpd_ps((__m256d)(d1)), _mm256_cvtpd_ps((__m256d)(d0))))
#define WIDEN_AVX2(p, h) ((v4d)_mm256_cvtps_pd(_mm256_extractf128_ps((__m256)(p), h)))
#define WIDEN_K_AVX2(k, h) ((v4l)_mm256_cvtepi32_epi64(_mm256_extracti128_si256((__m256i)(k), h)))
#define IN_RANGE8_AVX2(x)                                                                  \
    (_mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), (__m256)(x)),  \
                                      _mm256_set1_ps((float)EXP_NORMAL), _CMP_NLE_UQ)) == 0)
VM_EXP_SINGLE(fma, VM_FMA, VM_FMA, MADD_FMA, MADDF_FMA, SPLAT_FMA, SPLAT8F_FMA, IN_RANGE8_AVX2,
              NARROW_AVX2, WIDEN_AVX2, WIDEN_K_AVX2)
#else
#define exp_single_weigh_fma exp_single_weigh_base
#define exp_single_tail_fma exp_single_tail_base
#endif

/* The kernel for this CPU over all of x [n], the tail padded with b (e^0). */
static void exp_fast_run(double *y, const double *x, double b, int diff, int n)
{
    int fma = HAVE_FMA();
    int i = fma ? exp_fast_fma(y, x, b, diff, n) : exp_fast_base(y, x, b, diff, n);
    if (i == n)
        return;
    double in[4] = {b, b, b, b}, out[4];
    memcpy(in, x + i, (size_t)(n - i) * sizeof *in);
    if (fma)
        exp_fast_fma(out, in, b, diff, 4);
    else
        exp_fast_base(out, in, b, diff, 4);
    memcpy(y + i, out, (size_t)(n - i) * sizeof *out);
}

void vm_exp_fast_array(double *y, const double *x, int n)
{
    if (n > 0)
        exp_fast_run(y, x, 0.0, 0, n);
}

void vm_exp_fast_diff_array(double *y, const double *x, double b, int n)
{
    if (n > 0)
        exp_fast_run(y, x, b, 1, n);
}

double vm_exp_fast(double x)
{
    double y;
    exp_fast_run(&y, &x, 0.0, 0, 1);
    return y;
}

double vm_exp_fast_diff(double a, double b)
{
    double y;
    exp_fast_run(&y, &a, b, 1, 1);
    return y;
}

int vm_exp_fast_fused(void) { return HAVE_FMA(); }

/* The lanes of the sums are those of vm_sum (lane j over the
 * indices = j mod 4 of the four-wide part, the tail into lane 0 one by one), so
 * that sums[0] is that sum of y bit for bit. */
void vm_exp_fast_weigh(double *y, const double *x, double b, int skip, int n, double *sums)
{
    v4d acc[3] = {splat(0.0), splat(0.0), splat(0.0)};
    int fma = HAVE_FMA(), i = 0;
    if (n > 0)
        i = fma ? exp_fast_weigh_fma(y, x, b, skip, n, acc)
                : exp_fast_weigh_base(y, x, b, skip, n, acc);
    if (i < n) {
        exp_fast_run(y + i, x + i, b, 1, n - i);
        for (; i < n; i++) {
            acc[0][0] += y[i];
            acc[1][0] += i == skip ? 0.0 : y[i];
            acc[2][0] += y[i] * (b - x[i]);
        }
    }
    for (int k = 0; k < 3; k++)
        sums[k] = (acc[k][0] + acc[k][1]) + (acc[k][2] + acc[k][3]);
}

/* ---- scores in single precision ---- */

VM_INLINE v8f load8f(const float *p)
{
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* _mm256_hadd_ps in generic form: pairwise sums of a and b, per 128-bit half. */
VM_INLINE v8f hadd8f(v8f a, v8f b)
{
    return __builtin_shufflevector(a, b, 0, 2, 8, 10, 4, 6, 12, 14) +
           __builtin_shufflevector(a, b, 1, 3, 9, 11, 5, 7, 13, 15);
}

/* Lane r: the sum of the lanes of a_r. */
VM_INLINE v8f sum8_lanes(v8f a0, v8f a1, v8f a2, v8f a3, v8f a4, v8f a5, v8f a6, v8f a7)
{
    v8f u0 = hadd8f(hadd8f(a0, a1), hadd8f(a2, a3));
    v8f u1 = hadd8f(hadd8f(a4, a5), hadd8f(a6, a7));
    return __builtin_shufflevector(u0, u1, 0, 1, 2, 3, 8, 9, 10, 11) +
           __builtin_shufflevector(u0, u1, 4, 5, 6, 7, 12, 13, 14, 15);
}

/* out[i] = A_i . x + b[i] for rows of A [n][d], d a multiple of 8, eight rows at a
 * time: the products summed in floats (eight partial sums a row), the bias added
 * in double. */
#define VM_ROWS_SINGLE(suffix, attr, MADDF, WIDEN)                                         \
    static attr int rows_dot_single_##suffix(double *out, const float *A, const float *x,  \
                                             const double *b, int n, int d)                \
    {                                                                                     \
        size_t dd = (size_t)d;                                                            \
        int i = 0;                                                                        \
        for (; i + 8 <= n; i += 8) {                                                      \
            const float *r = A + (size_t)i * dd;                                          \
            v8f z = {0}, a0 = z, a1 = z, a2 = z, a3 = z, a4 = z, a5 = z, a6 = z, a7 = z;  \
            for (size_t c = 0; c < dd; c += 8) {                                          \
                v8f xc = load8f(x + c);                                                   \
                a0 = MADDF(load8f(r + c), xc, a0);                                        \
                a1 = MADDF(load8f(r + dd + c), xc, a1);                                   \
                a2 = MADDF(load8f(r + 2 * dd + c), xc, a2);                               \
                a3 = MADDF(load8f(r + 3 * dd + c), xc, a3);                               \
                a4 = MADDF(load8f(r + 4 * dd + c), xc, a4);                               \
                a5 = MADDF(load8f(r + 5 * dd + c), xc, a5);                               \
                a6 = MADDF(load8f(r + 6 * dd + c), xc, a6);                               \
                a7 = MADDF(load8f(r + 7 * dd + c), xc, a7);                               \
            }                                                                             \
            v8f s = sum8_lanes(a0, a1, a2, a3, a4, a5, a6, a7);                           \
            store4(out + i, WIDEN(s, 0) + load4(b + i));                                  \
            store4(out + i + 4, WIDEN(s, 1) + load4(b + i + 4));                          \
        }                                                                                 \
        return i;                                                                         \
    }

VM_ROWS_SINGLE(base, __attribute__((noinline)), MADDF_PLAIN, WIDEN_PLAIN)
#ifdef VM_DISPATCH
VM_ROWS_SINGLE(fma, VM_FMA, MADDF_FMA, WIDEN_AVX2)
#else
#define rows_dot_single_fma rows_dot_single_base
#endif

/* Rows past the kernel's reach (all of them when d is not a multiple of eight)
 * are summed in order, one float sum a row. */
void vm_rows_dot_single(double *out, const float *A, const float *x, const double *b, int n,
                        int d)
{
    int i = 0;
    if (d % 8 == 0)
        i = HAVE_FMA() ? rows_dot_single_fma(out, A, x, b, n, d)
                       : rows_dot_single_base(out, A, x, b, n, d);
    for (; i < n; i++) {
        const float *r = A + (size_t)i * (size_t)d;
        float sum = 0.0f;
        for (int c = 0; c < d; c++)
            sum += r[c] * x[c];
        out[i] = (double)sum + b[i];
    }
}

double vm_sum(const double *x, int n)
{
    double s[4] = {0.0, 0.0, 0.0, 0.0};
    int i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++)
            s[j] += x[i + j];
    for (; i < n; i++)
        s[0] += x[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* The sum of y [n] but y[skip]: the whole sum less y[skip] while that keeps the
 * weights' precision (the difference at least 2^-8 of the sum: its rounding is
 * then below n 2^-45 relative), else summed afresh, as a peaked softmax (the top
 * weight almost all of the sum) needs for its entropy. */
static double sum_but(const double *y, int skip, int n, double sum)
{
    if (skip < 0 || skip >= n)
        return sum;
    double rest = sum - y[skip];
    return rest >= 0x1p-8 * sum ? rest : vm_sum(y, skip) + vm_sum(y + skip + 1, n - skip - 1);
}

/* Groups of eight in single precision; a group out of its range, and a tail out
 * of it, by exp_fast_weigh (whose lanes are the same); the tail past the last group
 * of eight: its first four (if there are four) into the sums' lanes as the kernels
 * add, the rest into lane 0 one by one. */
void vm_exp_single_weigh(double *y, const double *x, double b, int skip, int n, double *sums)
{
    v4d acc[3] = {splat(0.0), splat(0.0), splat(0.0)};
    int fma = HAVE_FMA(), i = 0;
    while (i + 8 <= n) {
        i += fma ? exp_single_weigh_fma(y + i, x + i, b, n - i, acc)
                 : exp_single_weigh_base(y + i, x + i, b, n - i, acc);
        if (i + 8 <= n) /* a group out of range */
            i += fma ? exp_fast_weigh_fma(y + i, x + i, b, -1.0, 8, acc)
                     : exp_fast_weigh_base(y + i, x + i, b, -1.0, 8, acc);
    }
    if (i < n && !(fma ? exp_single_tail_fma(y + i, x + i, b, n - i)
                       : exp_single_tail_base(y + i, x + i, b, n - i)))
        exp_fast_run(y + i, x + i, b, 1, n - i);
    int lanes_end = i + 4 <= n ? i + 4 : i; /* i is a multiple of 8 */
    for (; i < n; i++) {
        int j = i < lanes_end ? i % 4 : 0;
        acc[0][j] += y[i];
        acc[2][j] += y[i] * (b - x[i]);
    }
    sums[0] = (acc[0][0] + acc[0][1]) + (acc[0][2] + acc[0][3]);
    sums[1] = sum_but(y, skip, n, sums[0]);
    sums[2] = (acc[2][0] + acc[2][1]) + (acc[2][2] + acc[2][3]);
}
