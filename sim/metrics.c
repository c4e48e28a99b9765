#include "metrics.h"

#include "vecmath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Sums in index order: the same sums the pairwise loop accumulated. */
static double dot_in_order(const double *x, const double *y, int dim)
{
    double sum = 0.0;
    for (int i = 0; i < dim; i++)
        sum += x[i] * y[i];
    return sum;
}

/* The pairwise sum of 1 - cos from every pair's dot product (vm_pair_dots), for
 * slates of up to VM_PAIR_DOTS_MAX items. */
static double ild_of_rows(const double *const *rows, int dim, int k)
{
    double dots[VM_PAIR_DOTS_MAX * VM_PAIR_DOTS_MAX];
    int k4 = (k + 3) / 4 * 4;
    vm_pair_dots(dots, rows, k, dim);
    double sum = 0.0;
    for (int a = 0; a < k - 1; a++)
        for (int b = a + 1; b < k; b++) {
            double norm = sqrt(dots[a * k4 + a] * dots[b * k4 + b]);
            sum += 1.0 - (norm > 0.0 ? dots[a * k4 + b] / norm : 0.0);
        }
    return sum;
}

/* Each item's squared norm once per slate, not once per pair: one dot product per
 * pair instead of three, and bit for bit the same value (every sum is formed in
 * the same order as by the pairwise formula, and 1 - dot / sqrt(xx yy) is
 * unchanged). */
double metrics_ild(const double *latent, int dim, const int *slate, int k)
{
    if (k < 2)
        return 0.0;
    double sum = 0.0;
    if (k <= VM_PAIR_DOTS_MAX) {
        const double *rows[VM_PAIR_DOTS_MAX];
        for (int a = 0; a < k; a++)
            rows[a] = latent + (size_t)slate[a] * dim;
        sum = ild_of_rows(rows, dim, k);
    } else {
        for (int a = 0; a < k; a++) {
            const double *x = latent + (size_t)slate[a] * dim;
            double xx = dot_in_order(x, x, dim);
            for (int b = a + 1; b < k; b++) {
                const double *y = latent + (size_t)slate[b] * dim;
                double norm = sqrt(xx * dot_in_order(y, y, dim));
                sum += 1.0 - (norm > 0.0 ? dot_in_order(x, y, dim) / norm : 0.0);
            }
        }
    }
    return sum / (0.5 * k * (k - 1));
}

double metrics_topic_ild(const int *item_topic, const int *slate, int k)
{
    if (k < 2)
        return 0.0;
    int differing = 0;
    for (int a = 0; a < k; a++)
        for (int b = a + 1; b < k; b++)
            differing += item_topic[slate[a]] != item_topic[slate[b]];
    return differing / (0.5 * k * (k - 1));
}

double metrics_entropy(const long *counts, int n)
{
    double total = 0.0;
    for (int i = 0; i < n; i++)
        total += (double)counts[i];
    if (total <= 0.0)
        return 0.0;
    double h = 0.0;
    for (int i = 0; i < n; i++)
        if (counts[i] > 0) {
            double p = (double)counts[i] / total;
            h -= p * log(p);
        }
    return h;
}

double metrics_coverage(const long *counts, int n)
{
    if (n <= 0)
        return 0.0;
    int seen = 0;
    for (int i = 0; i < n; i++)
        seen += counts[i] > 0;
    return (double)seen / n;
}

static int compare_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

enum { RADIX_BITS = 11, RADIX = 1 << RADIX_BITS };

/* Sorts a [n] ascending through tmp [n]: least significant digit first, eleven
 * bits a pass, only as many passes as the largest value needs (two for counts
 * below four million). Counts are never negative; if one were, qsort does it. */
static void sort_counts(long *a, long *tmp, int n)
{
    long largest = 0;
    for (int i = 0; i < n; i++) {
        if (a[i] < 0) {
            qsort(a, (size_t)n, sizeof *a, compare_long);
            return;
        }
        largest = a[i] > largest ? a[i] : largest;
    }
    size_t start[RADIX];
    for (int shift = 0; shift < 63 && (largest >> shift) > 0; shift += RADIX_BITS) {
        memset(start, 0, sizeof start);
        for (int i = 0; i < n; i++)
            start[(a[i] >> shift) & (RADIX - 1)]++;
        size_t at = 0;
        for (int d = 0; d < RADIX; d++) {
            size_t c = start[d];
            start[d] = at;
            at += c;
        }
        for (int i = 0; i < n; i++)
            tmp[start[(a[i] >> shift) & (RADIX - 1)]++] = a[i];
        memcpy(a, tmp, (size_t)n * sizeof *a);
    }
}

double metrics_gini(const long *counts, int n, long *scratch)
{
    memcpy(scratch, counts, (size_t)n * sizeof *scratch);
    sort_counts(scratch, scratch + n, n);
    double total = 0.0, weighted = 0.0;
    for (int i = 0; i < n; i++) {
        total += (double)scratch[i];
        weighted += (2.0 * (i + 1) - n - 1) * (double)scratch[i];
    }
    return total > 0.0 ? weighted / (n * total) : 0.0;
}

int exposure_init(exposure *x, int n_items)
{
    *x = (exposure){.n_items = n_items};
    x->counts = calloc((size_t)n_items, sizeof *x->counts);
    x->scratch = calloc(2 * (size_t)n_items, sizeof *x->scratch);
    if (!x->counts || !x->scratch) {
        exposure_free(x);
        return -1;
    }
    return 0;
}

void exposure_free(exposure *x)
{
    free(x->counts);
    free(x->scratch);
    *x = (exposure){0};
}

void exposure_reset(exposure *x)
{
    memset(x->counts, 0, (size_t)x->n_items * sizeof *x->counts);
    x->episodes = x->churned = x->impressions = 0;
    x->reward = x->ild = 0.0;
}

void exposure_add_impressions(exposure *x, const int *items, long n)
{
    for (long j = 0; j < n; j++)
        x->counts[items[j]]++;
    x->impressions += n;
}

void exposure_add_episode(exposure *x, const episode_row *e)
{
    x->episodes++;
    x->churned += e->churned;
    x->reward += e->reward;
    x->ild += e->ild;
}

void exposure_summarise(exposure *x, long users_churned, int n_users, window_row *row)
{
    int n = x->n_items;
    row->episodes = x->episodes;
    row->coverage = metrics_coverage(x->counts, n);
    row->gini = metrics_gini(x->counts, n, x->scratch);
    row->exposure_entropy = metrics_entropy(x->counts, n);
    row->exposure_entropy_norm = n > 1 ? row->exposure_entropy / log((double)n) : 0.0;
    row->retention = n_users > 0 ? 1.0 - (double)users_churned / n_users : 0.0;
    row->churn_rate = x->episodes ? (double)x->churned / x->episodes : 0.0;
    row->reward = x->episodes ? x->reward / x->episodes : 0.0;
    row->ild = x->episodes ? x->ild / x->episodes : 0.0;
}
