#include "stats.h"

#include "common.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>

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
