#include "stats.h"

#include "common.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdlib.h>

int stats_summary(const double *x, size_t n, double level, summary *out)
{
    if (!out || n == 0 || !x || !(level > 0.0 && level < 1.0))
        return DS_EINPUT;
    out->n = n;
    /* GSL's mean is a running-mean recurrence and its sd is two-pass about
     * that mean, so data far from zero (1e9 + small spread) keep their digits. */
    out->mean = gsl_stats_mean(x, 1, n);
    if (n < 2) {
        out->sd = NAN;
        out->half_width = NAN;
        return DS_OK;
    }
    out->sd = gsl_stats_sd_m(x, 1, n, out->mean);
    double t = gsl_cdf_tdist_Pinv(0.5 * (1.0 + level), (double)(n - 1));
    if (!isfinite(t))
        return DS_ENUMERIC;
    out->half_width = t * out->sd / sqrt((double)n);
    return DS_OK;
}

/* Two-sided p of a t statistic. The upper tail Q keeps its relative accuracy
 * for large |t|, where 1 - P would round to zero. */
static double two_sided_p(double t, double df)
{
    if (isnan(t) || isnan(df))
        return NAN;
    double p = 2.0 * gsl_cdf_tdist_Q(fabs(t), df);
    return p > 1.0 ? 1.0 : p;
}

/* The differences x_i - y_i into a fresh array, or NULL when out of memory. */
static double *differences(const double *x, const double *y, size_t n)
{
    double *d = malloc(n * sizeof *d);
    if (d)
        for (size_t i = 0; i < n; i++)
            d[i] = x[i] - y[i];
    return d;
}

/* mean(d) / sd(d) for d of length n >= 2, NAN when sd(d) = 0. */
static double standardized_mean(const double *d, size_t n, double *mean, double *sd)
{
    *mean = gsl_stats_mean(d, 1, n);
    *sd = gsl_stats_sd_m(d, 1, n, *mean);
    return *sd > 0.0 ? *mean / *sd : NAN;
}

double stats_cohen_dz(const double *x, const double *y, size_t n)
{
    if (!x || !y || n < 2)
        return NAN;
    double *d = differences(x, y, n);
    if (!d)
        return NAN;
    double mean, sd;
    double dz = standardized_mean(d, n, &mean, &sd);
    free(d);
    return dz;
}

int stats_paired_t(const double *x, const double *y, size_t n, t_test *out)
{
    if (!x || !y || !out || n == 0)
        return DS_EINPUT;
    double *d = differences(x, y, n);
    if (!d)
        return DS_ENOMEM;
    *out = (t_test){.diff = gsl_stats_mean(d, 1, n), .t = NAN, .df = NAN, .p = NAN,
                    .effect = NAN};
    if (n >= 2) {
        double mean, sd;
        out->effect = standardized_mean(d, n, &mean, &sd);
        out->df = (double)(n - 1);
        if (sd > 0.0)
            out->t = mean / (sd / sqrt((double)n));
        out->p = two_sided_p(out->t, out->df);
    }
    free(d);
    return DS_OK;
}

double stats_hedges_g(const double *x, size_t nx, const double *y, size_t ny)
{
    if (!x || !y || nx < 2 || ny < 2)
        return NAN;
    double mx = gsl_stats_mean(x, 1, nx), my = gsl_stats_mean(y, 1, ny);
    double vx = gsl_stats_variance_m(x, 1, nx, mx), vy = gsl_stats_variance_m(y, 1, ny, my);
    double n = (double)(nx + ny);
    double pooled = sqrt(((double)(nx - 1) * vx + (double)(ny - 1) * vy) / (n - 2.0));
    if (!(pooled > 0.0))
        return NAN;
    double j = 1.0 - 3.0 / (4.0 * n - 9.0);
    return j * (mx - my) / pooled;
}

int stats_welch_t(const double *x, size_t nx, const double *y, size_t ny, t_test *out)
{
    if (!x || !y || !out || nx == 0 || ny == 0)
        return DS_EINPUT;
    double mx = gsl_stats_mean(x, 1, nx), my = gsl_stats_mean(y, 1, ny);
    *out = (t_test){.diff = mx - my, .t = NAN, .df = NAN, .p = NAN, .effect = NAN};
    if (nx < 2 || ny < 2)
        return DS_OK;
    /* Squared standard errors of the two means. */
    double ex = gsl_stats_variance_m(x, 1, nx, mx) / (double)nx;
    double ey = gsl_stats_variance_m(y, 1, ny, my) / (double)ny;
    double se2 = ex + ey;
    out->effect = stats_hedges_g(x, nx, y, ny);
    if (!(se2 > 0.0))
        return DS_OK;
    out->t = out->diff / sqrt(se2);
    out->df = se2 * se2 / (ex * ex / (double)(nx - 1) + ey * ey / (double)(ny - 1));
    out->p = two_sided_p(out->t, out->df);
    return DS_OK;
}

typedef struct {
    double p;
    size_t index;
} ranked_p;

static int by_p(const void *a, const void *b)
{
    const ranked_p *x = a, *y = b;
    if (x->p != y->p)
        return x->p < y->p ? -1 : 1;
    /* Ties get the same adjusted value whatever their order; the index makes
     * the sort deterministic all the same. */
    return (x->index > y->index) - (x->index < y->index);
}

int stats_holm(const double *p, size_t m, double *adjusted)
{
    if (m == 0)
        return DS_OK;
    if (!p || !adjusted)
        return DS_EINPUT;
    ranked_p *r = malloc(m * sizeof *r);
    if (!r)
        return DS_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < m; i++)
        if (!isnan(p[i]))
            r[k++] = (ranked_p){.p = p[i], .index = i};
    for (size_t i = 0; i < m; i++)
        if (isnan(p[i]))
            adjusted[i] = NAN;
    qsort(r, k, sizeof *r, by_p);
    double running = 0.0; /* the step-down maximum keeps the result monotone */
    for (size_t j = 0; j < k; j++) {
        double scaled = (double)(k - j) * r[j].p;
        if (scaled > running)
            running = scaled;
        adjusted[r[j].index] = running < 1.0 ? running : 1.0;
    }
    free(r);
    return DS_OK;
}
