/* Metrics against hand-computed fixtures. */
#include "../sim/metrics.h"
#include "testutil.h"

#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* RecBole's test fixture for ItemCoverage and GiniIndex: 5 lists of 3 items over
 * an 8-item catalogue (items 1..8; here 0-based as item - 1). */
static const int recbole_lists[5][3] = {{5, 7, 3}, {4, 5, 2}, {2, 3, 5}, {1, 4, 6}, {5, 3, 7}};

static void recbole_exposure(exposure *x)
{
    ck_assert_int_eq(exposure_init(x, 8), 0);
    for (int l = 0; l < 5; l++) {
        int slate[3];
        for (int j = 0; j < 3; j++)
            slate[j] = recbole_lists[l][j] - 1;
        exposure_add_impressions(x, slate, 3);
    }
}

START_TEST(recbole_coverage_and_gini)
{
    exposure x;
    recbole_exposure(&x);
    /* RecBole's expected values: coverage 0.875 (7 of 8 items), Gini 41/120. */
    ck_assert_double_eq_tol(metrics_coverage(x.counts, 8), 0.875, 1e-12);
    ck_assert_double_eq_tol(metrics_gini(x.counts, 8, x.scratch), 41.0 / 120.0, 1e-12);
    /* Textbook Shannon entropy of counts {1,2,3,2,4,1,2,0}/15, by hand:
     * 1.8413903748... nats (RecBole's ShannonEntropy divides by distinct items). */
    ck_assert_double_eq_tol(metrics_entropy(x.counts, 8), 1.8413903748459726, 1e-12);
    exposure_free(&x);
}
END_TEST

static int ascending(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* metrics_gini sorts by radix; its value is the formula's over a qsort, bit
 * for bit: counts with many ties and zeros, below 2^11 (one pass), up to 2^40
 * (four passes), and one negative count (the qsort fallback). */
START_TEST(gini_sort_matches_qsort)
{
    enum { N = 3001 };
    static long counts[N], sorted[N], scratch[2 * N];
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 4);
    const long ranges[] = {3, 2000, 1L << 22, 1L << 40};
    for (size_t t = 0; t < sizeof ranges / sizeof ranges[0] + 1; t++) {
        for (int i = 0; i < N; i++)
            counts[i] = i % 5 == 0 ? 0
                                   : (long)(gsl_rng_uniform(r) *
                                            (double)ranges[t < 4 ? t : 1]);
        if (t == 4)
            counts[17] = -3;
        memcpy(sorted, counts, sizeof sorted);
        qsort(sorted, N, sizeof *sorted, ascending);
        double total = 0.0, weighted = 0.0;
        for (int i = 0; i < N; i++) {
            total += (double)sorted[i];
            weighted += (2.0 * (i + 1) - N - 1) * (double)sorted[i];
        }
        double want = total > 0.0 ? weighted / (N * total) : 0.0;
        double got = metrics_gini(counts, N, scratch);
        ck_assert_msg(memcmp(&got, &want, sizeof got) == 0, "range %zu: %.17g vs %.17g", t, got,
                      want);
        ck_assert_mem_eq(scratch, sorted, sizeof sorted);
    }
    gsl_rng_free(r);
}
END_TEST

START_TEST(gini_extremes)
{
    long equal[4] = {3, 3, 3, 3}, one[4] = {0, 0, 0, 12}, none[4] = {0}, scratch[8];
    ck_assert_double_eq_tol(metrics_gini(equal, 4, scratch), 0.0, 1e-12);
    /* All exposure on one of n items: (n - 1) / n. */
    ck_assert_double_eq_tol(metrics_gini(one, 4, scratch), 0.75, 1e-12);
    ck_assert_double_eq_tol(metrics_gini(none, 4, scratch), 0.0, 1e-12);
    ck_assert_double_eq_tol(metrics_entropy(equal, 4), log(4.0), 1e-12);
    ck_assert_double_eq_tol(metrics_entropy(one, 4), 0.0, 1e-12);
}
END_TEST

/* Three items in the plane: e1, e2 and (e1 + e2)/sqrt 2 (unnormalised here to
 * check that cosine normalises). Pairs: cos = 0, 1/sqrt2, 1/sqrt2.
 * ILD = mean(1 - cos) = (1 + 2 (1 - 1/sqrt2)) / 3. */
START_TEST(ild_of_a_hand_slate)
{
    const double latent[] = {1, 0, 0, 2, 3, 3};
    int slate[] = {0, 1, 2};
    double expected = (1.0 + 2.0 * (1.0 - 1.0 / sqrt(2.0))) / 3.0;
    ck_assert_double_eq_tol(metrics_ild(latent, 2, slate, 3), expected, 1e-12);
    ck_assert_double_eq_tol(metrics_ild(latent, 2, slate, 1), 0.0, 1e-12);
    int same[] = {2, 2};
    ck_assert_double_eq_tol(metrics_ild(latent, 2, same, 2), 0.0, 1e-12);
}
END_TEST

/* The pairwise formula as first written: three sums per pair. */
static double ild_pairwise(const double *latent, int dim, const int *slate, int k)
{
    double sum = 0.0;
    for (int a = 0; a < k; a++) {
        const double *x = latent + (size_t)slate[a] * dim;
        for (int b = a + 1; b < k; b++) {
            const double *y = latent + (size_t)slate[b] * dim;
            double dot = 0.0, xx = 0.0, yy = 0.0;
            for (int i = 0; i < dim; i++) {
                dot += x[i] * y[i];
                xx += x[i] * x[i];
                yy += y[i] * y[i];
            }
            double norm = sqrt(xx * yy);
            sum += 1.0 - (norm > 0.0 ? dot / norm : 0.0);
        }
    }
    return sum / (0.5 * k * (k - 1));
}

/* Norms once per slate give bit for bit the pairwise formula's value: random
 * latents (one all-zero row, repeated items), slates of 2 to 17, 33, 64 and of
 * 65 and 80 (past vm_pair_dots' limit), dims 1, 5, 16 (one block of transposed
 * columns), 17 and 40 (sums carried across blocks). */
START_TEST(ild_equals_the_pairwise_formula_exactly)
{
    enum { ITEMS = 50, DIM = 40, KMAX = 80 };
    static double latent[ITEMS * DIM];
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 11);
    for (int i = 0; i < ITEMS * DIM; i++)
        latent[i] = gsl_rng_uniform(r) * 2.0 - 1.0;
    for (int c = 0; c < DIM; c++)
        latent[7 * DIM + c] = 0.0;
    static const int dims[] = {1, 5, 16, 17, DIM};
    static const int sizes[] = {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 33, 64, 65, KMAX};
    for (size_t t = 0; t < sizeof dims / sizeof dims[0]; t++)
        for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
            int k = sizes[z], slate[KMAX];
            for (int rep = 0; rep < 20; rep++) {
                for (int j = 0; j < k; j++)
                    slate[j] = (int)gsl_rng_uniform_int(r, ITEMS);
                double want = ild_pairwise(latent, dims[t], slate, k);
                double got = metrics_ild(latent, dims[t], slate, k);
                ck_assert_mem_eq(&got, &want, sizeof got);
            }
        }
    gsl_rng_free(r);
}
END_TEST

START_TEST(topic_ild_counts_differing_pairs)
{
    const int topic[] = {0, 0, 1, 2};
    int slate[] = {0, 1, 2, 3}; /* 6 pairs, only (0,1) share a topic */
    ck_assert_double_eq_tol(metrics_topic_ild(topic, slate, 4), 5.0 / 6.0, 1e-12);
}
END_TEST

START_TEST(window_summary_columns)
{
    exposure x;
    recbole_exposure(&x);
    episode_row e1 = {.reward = 2.0, .ild = 0.5, .churned = 1};
    episode_row e2 = {.reward = 1.0, .ild = 0.3};
    exposure_add_episode(&x, &e1);
    exposure_add_episode(&x, &e2);
    window_row row = {0};
    exposure_summarise(&x, 5, 20, &row);
    ck_assert_int_eq(row.episodes, 2);
    ck_assert_double_eq_tol(row.coverage, 0.875, 1e-12);
    ck_assert_double_eq_tol(row.exposure_entropy_norm, 1.8413903748459726 / log(8.0), 1e-12);
    ck_assert_double_eq_tol(row.retention, 0.75, 1e-12);  /* 5 of 20 users churned */
    ck_assert_double_eq_tol(row.churn_rate, 0.5, 1e-12);  /* 1 of 2 sessions */
    ck_assert_double_eq_tol(row.reward, 1.5, 1e-12);
    ck_assert_double_eq_tol(row.ild, 0.4, 1e-12);
    exposure_reset(&x);
    ck_assert_double_eq_tol(metrics_coverage(x.counts, 8), 0.0, 1e-12);
    ck_assert_int_eq(x.episodes, 0);
    exposure_free(&x);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("fixtures");
    tcase_add_test(tc, recbole_coverage_and_gini);
    tcase_add_test(tc, gini_extremes);
    tcase_add_test(tc, gini_sort_matches_qsort);
    tcase_add_test(tc, ild_of_a_hand_slate);
    tcase_add_test(tc, ild_equals_the_pairwise_formula_exactly);
    tcase_add_test(tc, topic_ild_counts_differing_pairs);
    tcase_add_test(tc, window_summary_columns);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(metrics_suite)
