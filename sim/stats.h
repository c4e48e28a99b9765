/* Summary statistics over seeds. */
#ifndef DIVSIM_STATS_H
#define DIVSIM_STATS_H

#include <stddef.h>

typedef struct {
    size_t n;
    double mean;
    double sd;          /* sample standard deviation (n - 1); NAN if n < 2 */
    double half_width;  /* of the two-sided confidence interval; NAN if n < 2 */
} summary;

/* Mean, sd and the Student-t confidence interval at level (e.g. 0.95). */
int stats_summary(const double *x, size_t n, double level, summary *out);

#endif
