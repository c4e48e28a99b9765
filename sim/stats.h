/* Statistics over seeds: summaries with Student-t confidence intervals, the
 * paired and Welch t-tests, Holm's step-down adjustment and effect sizes.
 *
 * Degenerate inputs never crash and never return a made-up number: where a
 * quantity is undefined (too few values, no spread) it is NAN, and the
 * functions still return DS_OK. DS_EINPUT is kept for calls that are wrong in
 * themselves (NULL pointers, no values at all, a level outside (0, 1)). */
#ifndef DIVSIM_STATS_H
#define DIVSIM_STATS_H

#include <stddef.h>

typedef struct {
    size_t n;
    double mean;
    double sd;          /* sample standard deviation (n - 1); NAN if n < 2 */
    double half_width;  /* of the two-sided confidence interval; NAN if n < 2 */
} summary;

/* Mean, sd and the Student-t confidence interval at level (e.g. 0.95):
 * half_width = t_{n-1, (1+level)/2} * sd / sqrt(n). */
int stats_summary(const double *x, size_t n, double level, summary *out);

/* The result of a two-sample t-test of x against y (x minus y). */
typedef struct {
    double diff;    /* mean(x - y) when paired, mean(x) - mean(y) otherwise */
    double t;       /* the statistic; NAN when undefined (see each test) */
    double df;      /* degrees of freedom; NAN when undefined */
    double p;       /* two-sided p = 2 P(T_df > |t|); NAN when t is */
    double effect;  /* paired: Cohen's d_z; unpaired: Hedges' g; NAN when undefined */
} t_test;

/* Paired t-test of x[i] against y[i], i < n. With d_i = x_i - y_i:
 *   t = mean(d) / (sd(d) / sqrt(n)),  df = n - 1,  effect = d_z.
 * n = 1, or differences with no spread (sd(d) = 0, e.g. identical samples),
 * leave t, p and effect NAN: the data cannot tell a difference from noise, so
 * there is no test; diff is still the mean difference. */
int stats_paired_t(const double *x, const double *y, size_t n, t_test *out);

/* Welch's unequal-variance t-test of x (nx values) against y (ny values):
 *   se^2 = s_x^2/n_x + s_y^2/n_y,  t = (mean(x) - mean(y)) / se,
 *   df = se^4 / ((s_x^2/n_x)^2/(n_x-1) + (s_y^2/n_y)^2/(n_y-1))  (Welch-Satterthwaite),
 *   effect = Hedges' g.
 * Each sample needs two values (else t, df, p, effect are NAN); when neither
 * sample has any spread (se = 0) t and p are NAN, as for the paired test. */
int stats_welch_t(const double *x, size_t nx, const double *y, size_t ny, t_test *out);

/* Cohen's d_z of paired samples: mean(d) / sd(d), d_i = x_i - y_i.
 * NAN if n < 2 or sd(d) = 0. */
double stats_cohen_dz(const double *x, const double *y, size_t n);

/* Hedges' g of independent samples: J * (mean(x) - mean(y)) / s_p with
 *   s_p^2 = ((n_x-1) s_x^2 + (n_y-1) s_y^2) / (n_x + n_y - 2),
 *   J = 1 - 3 / (4 (n_x + n_y) - 9)  (Hedges' small-sample correction).
 * NAN if n_x < 2 or n_y < 2 or s_p = 0. */
double stats_hedges_g(const double *x, size_t nx, const double *y, size_t ny);

/* Holm-Bonferroni step-down adjustment of m p-values. With the finite p sorted
 * ascending, p_(1) <= ... <= p_(k):
 *   adj_(i) = min(1, max_{j <= i} (k - j + 1) p_(j)),
 * written back in the input order (adjusted and p may be the same array).
 * NAN p-values (comparisons that could not be tested) are not counted in k and
 * stay NAN. Returns DS_ENOMEM if scratch space cannot be allocated. */
int stats_holm(const double *p, size_t m, double *adjusted);

#endif
