/* The finite-difference gradient check shared by the Check suites: a five-point
 * central difference (truncation error O(h^4)) against the analytic gradient,
 * with relative error |a - b| / max(1e-8, |a| + |b|). A suite may define
 * GRADCHECK_MIN (the largest gradient element must exceed it, so that an
 * all-zero gradient cannot pass) before including this header. */
#ifndef DIVSIM_GRADCHECK_H
#define DIVSIM_GRADCHECK_H

#include <check.h>
#include <math.h>
#include <stdio.h>

#define FD_STEP 1e-4
#define GRAD_TOL 1e-6
#ifndef GRADCHECK_MIN
#define GRADCHECK_MIN 1e-3
#endif

typedef double (*loss_fn)(void *ctx);

static inline double rel_err(double a, double b)
{
    double den = fabs(a) + fabs(b);
    return fabs(a - b) / (den > 1e-8 ? den : 1e-8);
}

static inline double numeric_derivative(double *x, loss_fn f, void *ctx)
{
    double x0 = *x, h = FD_STEP;
    *x = x0 - 2 * h;
    double fm2 = f(ctx);
    *x = x0 - h;
    double fm1 = f(ctx);
    *x = x0 + h;
    double fp1 = f(ctx);
    *x = x0 + 2 * h;
    double fp2 = f(ctx);
    *x = x0;
    /* differences first: a loss that does not depend on x gives exactly 0 */
    return (8 * (fp1 - fm1) - (fp2 - fm2)) / (12 * h);
}

/* Compares grad [n] with the numerical gradient of f with respect to x [n];
 * asserts the largest relative error is below GRAD_TOL. Returns it. */
static inline double check_grad(const char *what, double *x, const double *grad, size_t n,
                                loss_fn f, void *ctx)
{
    double worst = 0, largest = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double num = numeric_derivative(&x[i], f, ctx);
        double e = rel_err(grad[i], num);
        if (e > worst) {
            worst = e;
            at = i;
        }
        if (fabs(grad[i]) > largest)
            largest = fabs(grad[i]);
    }
    printf("  gradcheck %-34s n=%-4zu max rel err %.2e\n", what, n, worst);
    ck_assert_msg(worst < GRAD_TOL, "%s: rel err %.3e at element %zu (analytic %.10g)", what,
                  worst, at, grad[at]);
    ck_assert_msg(largest > GRADCHECK_MIN, "%s: gradient is all but zero (%.3e)", what,
                  largest);
    return worst;
}

/* The gradient w.r.t. a qkv bias [L][3C]: the Q and V parts are checked by
 * finite differences; the K part must vanish, since adding a constant to every
 * key of a head shifts each row of scores by q . constant, which the softmax
 * ignores. There the analytic gradient is a sum of rounding errors (~1e-17) and
 * the numerical one is pure rounding (~1e-11), so it is bounded, not compared. */
static inline void check_qkv_bias(const char *what, double *b, const double *grad, int L,
                                  int C, loss_fn f, void *ctx)
{
    char name[160];
    for (int l = 0; l < L; l++) {
        double *bl = b + (size_t)l * 3 * C;
        const double *gl = grad + (size_t)l * 3 * C;
        snprintf(name, sizeof name, "%s[%d] q", what, l);
        check_grad(name, bl, gl, (size_t)C, f, ctx);
        snprintf(name, sizeof name, "%s[%d] v", what, l);
        check_grad(name, bl + 2 * C, gl + 2 * C, (size_t)C, f, ctx);
        for (int i = C; i < 2 * C; i++) {
            double num = numeric_derivative(&bl[i], f, ctx);
            ck_assert_msg(fabs(gl[i]) < 1e-14 && fabs(num) < 1e-9,
                          "%s[%d] k: gradient %.3e, numerical %.3e, expected 0", what, l,
                          gl[i], num);
        }
    }
}

#endif
