/* Tests of the statistics over seeds: summaries with confidence intervals,
 * the paired and Welch t-tests, effect sizes and Holm's adjustment.
 *
 * Student-t quantiles below are from the standard table of upper critical
 * values (NIST/SEMATECH e-Handbook of Statistical Methods, section 1.3.6.7.2,
 * to 3 decimals), given to 10 digits as computed by R's qt():
 *   t_{4, 0.975} = 2.776445105   t_{1, 0.975} = 12.70620474
 *   t_{9, 0.95}  = 1.833112933   t_{4, 0.995} = 4.604094871
 * Tolerances are 1e-8 relative unless stated: the inputs are exact and the
 * only error is rounding in the quantile (GSL claims ~1e-10 or better). */
#include "../sim/common.h"
#include "../sim/stats.h"

#include <check.h>
#include <gsl/gsl_errno.h>
#include <math.h>
#include <stdlib.h>

#define REL_TOL 1e-8

static void assert_close(double got, double want, double rel)
{
    ck_assert_msg(fabs(got - want) <= rel * fabs(want), "got %.12g, want %.12g", got, want);
}

START_TEST(test_one_to_five_95)
{
    /* mean 3; sample variance (4+1+0+1+4)/4 = 2.5; half width t * sd / sqrt(5). */
    const double x[] = { 1, 2, 3, 4, 5 };
    summary s;
    ck_assert_int_eq(stats_summary(x, 5, 0.95, &s), DS_OK);
    ck_assert_uint_eq(s.n, 5);
    assert_close(s.mean, 3.0, REL_TOL);
    assert_close(s.sd, sqrt(2.5), REL_TOL);
    assert_close(s.half_width, 2.776445105 * sqrt(2.5) / sqrt(5.0), REL_TOL);
    assert_close(s.half_width, 1.963243, 1e-6);  /* the value quoted by hand */
}
END_TEST

START_TEST(test_other_levels_and_sizes)
{
    summary s;
    /* n = 2, {0, 2}: sd = sqrt(2), so the half width is t_{1,0.975} itself. */
    const double two[] = { 0, 2 };
    ck_assert_int_eq(stats_summary(two, 2, 0.95, &s), DS_OK);
    assert_close(s.mean, 1.0, REL_TOL);
    assert_close(s.sd, sqrt(2.0), REL_TOL);
    assert_close(s.half_width, 12.70620474, REL_TOL);

    /* 1..10 at 90%: variance n(n+1)/12 = 110/12. */
    double ten[10];
    for (int i = 0; i < 10; i++)
        ten[i] = i + 1;
    ck_assert_int_eq(stats_summary(ten, 10, 0.90, &s), DS_OK);
    assert_close(s.mean, 5.5, REL_TOL);
    assert_close(s.sd, sqrt(110.0 / 12.0), REL_TOL);
    assert_close(s.half_width, 1.833112933 * sqrt(110.0 / 12.0) / sqrt(10.0), REL_TOL);

    /* 1..5 at 99%. */
    const double five[] = { 5, 4, 3, 2, 1 };
    ck_assert_int_eq(stats_summary(five, 5, 0.99, &s), DS_OK);
    assert_close(s.half_width, 4.604094871 * sqrt(2.5) / sqrt(5.0), REL_TOL);
}
END_TEST

START_TEST(test_single_value)
{
    const double x[] = { 7.25 };
    summary s;
    ck_assert_int_eq(stats_summary(x, 1, 0.95, &s), DS_OK);
    ck_assert_uint_eq(s.n, 1);
    ck_assert(s.mean == 7.25);
    ck_assert(isnan(s.sd));
    ck_assert(isnan(s.half_width));
}
END_TEST

START_TEST(test_constant_values)
{
    const double x[] = { 0.1, 0.1, 0.1, 0.1 };
    summary s;
    ck_assert_int_eq(stats_summary(x, 4, 0.95, &s), DS_OK);
    assert_close(s.mean, 0.1, 1e-15);
    ck_assert(s.sd == 0.0);
    ck_assert(s.half_width == 0.0);
}
END_TEST

START_TEST(test_large_offset_is_stable)
{
    /* 1e9 + {1..5}: the one-pass sum-of-squares formula loses every digit of
     * the spread here (1e18-sized squares, 2.5-sized variance); a stable method
     * keeps sd = sqrt(2.5) to about 1e-16 * 1e9 / 1.6 relative, so 1e-6 is ample. */
    const double x[] = { 1e9 + 1, 1e9 + 2, 1e9 + 3, 1e9 + 4, 1e9 + 5 };
    summary s;
    ck_assert_int_eq(stats_summary(x, 5, 0.95, &s), DS_OK);
    assert_close(s.mean, 1e9 + 3, 1e-15);
    assert_close(s.sd, sqrt(2.5), 1e-6);
}
END_TEST

START_TEST(test_bad_input)
{
    const double x[] = { 1, 2, 3 };
    summary s;
    ck_assert_int_eq(stats_summary(x, 0, 0.95, &s), DS_EINPUT);
    ck_assert_int_eq(stats_summary(NULL, 3, 0.95, &s), DS_EINPUT);
    ck_assert_int_eq(stats_summary(x, 3, 0.0, &s), DS_EINPUT);
    ck_assert_int_eq(stats_summary(x, 3, 1.0, &s), DS_EINPUT);
    ck_assert_int_eq(stats_summary(x, 3, 95.0, &s), DS_EINPUT);
    ck_assert_int_eq(stats_summary(x, 3, NAN, &s), DS_EINPUT);
    ck_assert_int_eq(stats_summary(x, 3, 0.95, NULL), DS_EINPUT);
}
END_TEST

/* ---- two-sample tests ----
 *
 * Fixture "sleep": Student's sleep data (Cushny & Peebles 1905), the extra
 * hours of sleep of 10 patients under two drugs, as in R's `sleep` data set.
 * R's documented t.test output on it (to the digits R prints):
 *   paired:  t = -4.0621, df = 9,      p-value = 0.002833
 *   Welch:   t = -1.8608, df = 17.776, p-value = 0.07939
 * The 12-digit values below were recomputed independently of GSL: means and
 * variances in exact rational arithmetic (Python fractions), tail
 * probabilities by adaptive quadrature of the Student-t density
 *   f(x) = Gamma((v+1)/2) / (sqrt(v pi) Gamma(v/2)) (1 + x^2/v)^(-(v+1)/2)
 * with mpmath at 40 digits: p = 2 * integral of f from |t| to infinity. They
 * agree with R's rounded output above. For integer df the p-values are also
 * checked against the closed forms of Abramowitz & Stegun 26.7.3, coded below
 * with libm only. */

static const double sleep_drug1[10] = {0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0};
static const double sleep_drug2[10] = {1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4};

/* Exact inputs but decimal data (0.7 is not a binary fraction) and a few
 * roundings in the arithmetic: 1e-10 relative for t, df and effect sizes;
 * p-values carry GSL's incomplete-beta error as well, 1e-8 relative. */
#define ARITH_TOL 1e-10
#define P_TOL 1e-8

/* A&S 26.7.3: for even v, P(|T| <= t) = sin(th) (1 + 1/2 cos^2 + 1.3/(2.4) cos^4 + ...
 * up to cos^(v-2)); for odd v, (2/pi) (th + sin(th) (cos + 2/3 cos^3 + ...
 * up to cos^(v-2))), with th = atan(t / sqrt(v)). Returns the two-sided p. */
static double closed_form_p(double t, int v)
{
    double th = atan(fabs(t) / sqrt((double)v)), c = cos(th), s = sin(th), acc;
    if (v % 2 == 0) {
        double term = 1.0;
        acc = 1.0;
        for (int k = 1; 2 * k <= v - 2; k++) {
            term *= c * c * (2.0 * k - 1.0) / (2.0 * k);
            acc += term;
        }
        return 1.0 - s * acc;
    }
    double term = c;
    acc = v > 1 ? c : 0.0;
    for (int k = 1; 2 * k + 1 <= v - 2; k++) {
        term *= c * c * (2.0 * k) / (2.0 * k + 1.0);
        acc += term;
    }
    return 1.0 - 2.0 / acos(-1.0) * (th + s * acc);
}

START_TEST(test_closed_form)
{
    /* closed_form_p itself on the 0.975 quantiles t_{v, 0.975}, where p = 0.05
     * (10 digits, from R's qt() and the mpmath quadrature alike). */
    assert_close(closed_form_p(2.776445105, 4), 0.05, 1e-8);
    assert_close(closed_form_p(12.70620474, 1), 0.05, 1e-8);
    assert_close(closed_form_p(2.262157163, 9), 0.05, 1e-8); /* qt(0.975, 9) */
    assert_close(closed_form_p(4.302652730, 2), 0.05, 1e-8); /* qt(0.975, 2) */
}
END_TEST

START_TEST(test_paired_sleep)
{
    t_test r;
    ck_assert_int_eq(stats_paired_t(sleep_drug1, sleep_drug2, 10, &r), DS_OK);
    assert_close(r.diff, -1.58, ARITH_TOL);               /* -79/50 exactly */
    assert_close(r.t, -4.06212768338204, ARITH_TOL);
    ck_assert(r.df == 9.0);
    assert_close(r.p, 0.00283289019738427, P_TOL);
    assert_close(r.p, closed_form_p(r.t, 9), P_TOL);
    ck_assert_msg(fabs(r.t - -4.0621) < 5e-5 && fabs(r.p - 0.002833) < 5e-7,
                  "R's printed output: t = %g, p = %g", r.t, r.p);
    /* d_z = mean(d) / sd(d) = t / sqrt(n). */
    assert_close(r.effect, -1.28455756259105, ARITH_TOL);
    assert_close(stats_cohen_dz(sleep_drug1, sleep_drug2, 10), r.effect, 1e-15);

    /* Swapping the samples flips the signs and keeps p. */
    t_test s;
    ck_assert_int_eq(stats_paired_t(sleep_drug2, sleep_drug1, 10, &s), DS_OK);
    assert_close(s.t, -r.t, 1e-15);
    assert_close(s.effect, -r.effect, 1e-15);
    assert_close(s.p, r.p, 1e-15);
}
END_TEST

START_TEST(test_paired_by_hand)
{
    /* d = {1, 2, 3, 2, 2}: mean 2, var (1+0+1+0+0)/4 = 1/2, so
     * t = 2 / sqrt(1/2 / 5) = 2 sqrt(10), df = 4, d_z = 2 / sqrt(1/2) = 2 sqrt(2);
     * p from the closed form for df = 4: 1 - t/sqrt(4+t^2) (1 + 2/(4+t^2)),
     * = 0.00319820215233531 (mpmath quadrature gives the same). */
    const double x[] = {5.1, 4.9, 6.2, 5.8, 6.0};
    const double y[] = {4.1, 2.9, 3.2, 3.8, 4.0};
    t_test r;
    ck_assert_int_eq(stats_paired_t(x, y, 5, &r), DS_OK);
    double t = 2.0 * sqrt(10.0);
    assert_close(r.diff, 2.0, ARITH_TOL);
    assert_close(r.t, t, ARITH_TOL);
    ck_assert(r.df == 4.0);
    assert_close(r.p, 1.0 - t / sqrt(4.0 + t * t) * (1.0 + 2.0 / (4.0 + t * t)), P_TOL);
    assert_close(r.p, 0.00319820215233531, P_TOL);
    assert_close(r.effect, 2.0 * sqrt(2.0), ARITH_TOL);
}
END_TEST

START_TEST(test_paired_degenerate)
{
    t_test r;
    /* One pair: a difference but no test. */
    const double a1[] = {3.0}, b1[] = {1.0};
    ck_assert_int_eq(stats_paired_t(a1, b1, 1, &r), DS_OK);
    ck_assert(r.diff == 2.0);
    ck_assert(isnan(r.t) && isnan(r.df) && isnan(r.p) && isnan(r.effect));

    /* Identical samples: no spread in the differences, no test. */
    const double x[] = {1.0, 2.0, 4.0};
    ck_assert_int_eq(stats_paired_t(x, x, 3, &r), DS_OK);
    ck_assert(r.diff == 0.0);
    ck_assert(isnan(r.t) && isnan(r.p) && isnan(r.effect));
    ck_assert(r.df == 2.0);

    /* A constant shift: the same, although the mean difference is 1. */
    const double y[] = {0.0, 1.0, 3.0};
    ck_assert_int_eq(stats_paired_t(x, y, 3, &r), DS_OK);
    ck_assert(r.diff == 1.0);
    ck_assert(isnan(r.t) && isnan(r.p) && isnan(r.effect));
    ck_assert(isnan(stats_cohen_dz(x, y, 3)));
    ck_assert(isnan(stats_cohen_dz(x, y, 1)));

    ck_assert_int_eq(stats_paired_t(x, y, 0, &r), DS_EINPUT);
    ck_assert_int_eq(stats_paired_t(NULL, y, 3, &r), DS_EINPUT);
    ck_assert_int_eq(stats_paired_t(x, y, 3, NULL), DS_EINPUT);
}
END_TEST

START_TEST(test_welch_sleep)
{
    t_test r;
    ck_assert_int_eq(stats_welch_t(sleep_drug1, 10, sleep_drug2, 10, &r), DS_OK);
    assert_close(r.diff, -1.58, ARITH_TOL);
    assert_close(r.t, -1.86081346748685, ARITH_TOL);
    /* df = 18945868482/1065783293 exactly (rational arithmetic). */
    assert_close(r.df, 18945868482.0 / 1065783293.0, ARITH_TOL);
    assert_close(r.p, 0.0793941401873581, P_TOL);
    ck_assert_msg(fabs(r.t - -1.8608) < 5e-5 && fabs(r.df - 17.776) < 5e-4 &&
                      fabs(r.p - 0.07939) < 5e-6,
                  "R's printed output: t = %g, df = %g, p = %g", r.t, r.df, r.p);
    /* Hedges' g: s_p^2 = (9 s1^2 + 9 s2^2) / 18, J = 1 - 3/71. */
    assert_close(r.effect, -0.797018500447446, ARITH_TOL);
}
END_TEST

START_TEST(test_welch_by_hand)
{
    /* x = 1..5: mean 3, s^2 = 5/2; y = 2,4,6,8: mean 5, s^2 = 20/3.
     * se^2 = (5/2)/5 + (20/3)/4 = 1/2 + 5/3 = 13/6, t = -2 / sqrt(13/6),
     * df = (13/6)^2 / ((1/2)^2/4 + (5/3)^2/3) = (169/36) / (1/16 + 25/27)
     *    = 2028/427; p by quadrature (see above) = 0.235194111389406.
     * Hedges: s_p^2 = (4 * 5/2 + 3 * 20/3) / 7 = 30/7, J = 1 - 3/(36 - 9) = 8/9,
     * g = (8/9) (-2) / sqrt(30/7). */
    const double x[] = {1, 2, 3, 4, 5};
    const double y[] = {2, 4, 6, 8};
    t_test r;
    ck_assert_int_eq(stats_welch_t(x, 5, y, 4, &r), DS_OK);
    assert_close(r.diff, -2.0, ARITH_TOL);
    assert_close(r.t, -2.0 / sqrt(13.0 / 6.0), ARITH_TOL);
    assert_close(r.df, 2028.0 / 427.0, ARITH_TOL);
    assert_close(r.p, 0.235194111389406, P_TOL);
    assert_close(r.effect, 8.0 / 9.0 * -2.0 / sqrt(30.0 / 7.0), ARITH_TOL);
    assert_close(stats_hedges_g(x, 5, y, 4), r.effect, 1e-15);
}
END_TEST

START_TEST(test_welch_one_constant_sample)
{
    /* x has no spread: se^2 = 0 + 1/3, t = -2 / sqrt(1/3) = -2 sqrt(3) and
     * df = (1/3)^2 / ((1/3)^2 / 2) = 2 exactly, so the closed form for df = 2,
     * p = 1 - t / sqrt(2 + t^2) = 1 - sqrt(12/14), applies. */
    const double x[] = {1, 1, 1};
    const double y[] = {2, 3, 4};
    t_test r;
    ck_assert_int_eq(stats_welch_t(x, 3, y, 3, &r), DS_OK);
    assert_close(r.t, -2.0 * sqrt(3.0), ARITH_TOL);
    assert_close(r.df, 2.0, ARITH_TOL);
    assert_close(r.p, 1.0 - sqrt(12.0 / 14.0), P_TOL);
    assert_close(r.p, closed_form_p(r.t, 2), P_TOL);
}
END_TEST

START_TEST(test_welch_equal_design_df)
{
    /* Equal sizes and equal variances: Welch's df is 2(n - 1), and t equals
     * Student's pooled t (same se). x = {0, 2, 4}, y = {1, 3, 5}: means 2 and 3,
     * s^2 = 4 each, se^2 = 8/3, t = -1/sqrt(8/3), df = 4. */
    const double x[] = {0, 2, 4}, y[] = {1, 3, 5};
    t_test r;
    ck_assert_int_eq(stats_welch_t(x, 3, y, 3, &r), DS_OK);
    assert_close(r.t, -1.0 / sqrt(8.0 / 3.0), ARITH_TOL);
    assert_close(r.df, 4.0, ARITH_TOL);
    assert_close(r.p, closed_form_p(r.t, 4), P_TOL);
    /* g = (1 - 3/15) (-1) / 2 = -0.4. */
    assert_close(r.effect, -0.4, ARITH_TOL);
}
END_TEST

START_TEST(test_welch_degenerate)
{
    t_test r;
    const double x[] = {1, 2, 3}, one[] = {5};
    ck_assert_int_eq(stats_welch_t(x, 3, one, 1, &r), DS_OK);
    ck_assert(r.diff == -3.0);
    ck_assert(isnan(r.t) && isnan(r.df) && isnan(r.p) && isnan(r.effect));
    ck_assert(isnan(stats_hedges_g(x, 3, one, 1)));

    /* Two constant samples: a difference with no noise, no test. */
    const double c1[] = {2, 2, 2}, c2[] = {3, 3};
    ck_assert_int_eq(stats_welch_t(c1, 3, c2, 2, &r), DS_OK);
    ck_assert(r.diff == -1.0);
    ck_assert(isnan(r.t) && isnan(r.df) && isnan(r.p) && isnan(r.effect));

    ck_assert_int_eq(stats_welch_t(x, 0, one, 1, &r), DS_EINPUT);
    ck_assert_int_eq(stats_welch_t(x, 3, one, 0, &r), DS_EINPUT);
    ck_assert_int_eq(stats_welch_t(x, 3, NULL, 1, &r), DS_EINPUT);
}
END_TEST

/* ---- Holm ----
 * Expected values by hand from the definition (and equal to R's
 * p.adjust(p, "holm") on the same vectors). */

START_TEST(test_holm_by_hand)
{
    /* Sorted: 0.005, 0.01, 0.03, 0.04 -> 4*0.005 = 0.02, 3*0.01 = 0.03,
     * 2*0.03 = 0.06, 1*0.04 = 0.04 raised to the running max 0.06. */
    const double p[] = {0.01, 0.04, 0.03, 0.005};
    double adj[4];
    ck_assert_int_eq(stats_holm(p, 4, adj), DS_OK);
    const double want[] = {0.03, 0.06, 0.06, 0.02};
    for (int i = 0; i < 4; i++)
        assert_close(adj[i], want[i], 1e-15);
}
END_TEST

START_TEST(test_holm_caps_and_ties)
{
    /* 3*0.4 = 1.2 and 2*0.45 = 0.9 -> both 1 after the running max and cap. */
    const double p[] = {0.6, 0.4, 0.45};
    double adj[3];
    ck_assert_int_eq(stats_holm(p, 3, adj), DS_OK);
    for (int i = 0; i < 3; i++)
        ck_assert(adj[i] == 1.0);

    /* Ties, adjusted in place: sorted 0.02, 0.02, 0.5 scale to 3*0.02 = 0.06,
     * 2*0.02 = 0.04 (raised to the running max 0.06) and 1*0.5 = 0.5. */
    double q[] = {0.02, 0.5, 0.02};
    ck_assert_int_eq(stats_holm(q, 3, q), DS_OK);
    assert_close(q[0], 0.06, 1e-15);
    assert_close(q[1], 0.5, 1e-15);
    assert_close(q[2], 0.06, 1e-15);

    /* A single p-value is its own adjustment; none is a no-op. */
    double one = 0.25;
    ck_assert_int_eq(stats_holm(&one, 1, &one), DS_OK);
    ck_assert(one == 0.25);
    ck_assert_int_eq(stats_holm(NULL, 0, NULL), DS_OK);
}
END_TEST

START_TEST(test_holm_skips_nan)
{
    /* NANs are not tests: m = 2 here, 2*0.01 = 0.02 and 0.03. */
    const double p[] = {NAN, 0.03, 0.01, NAN};
    double adj[4];
    ck_assert_int_eq(stats_holm(p, 4, adj), DS_OK);
    ck_assert(isnan(adj[0]) && isnan(adj[3]));
    assert_close(adj[1], 0.03, 1e-15);
    assert_close(adj[2], 0.02, 1e-15);
}
END_TEST

START_TEST(test_holm_is_monotone)
{
    /* Holm preserves the order of the raw p-values and never lowers one. */
    const double p[] = {0.2, 0.001, 0.04, 0.011, 0.5, 0.012, 0.03, 0.0009};
    double adj[8];
    ck_assert_int_eq(stats_holm(p, 8, adj), DS_OK);
    for (int i = 0; i < 8; i++) {
        ck_assert(adj[i] >= p[i] && adj[i] <= 1.0);
        for (int j = 0; j < 8; j++)
            if (p[i] < p[j])
                ck_assert(adj[i] <= adj[j]);
    }
    /* By hand: sorted 0.0009 0.001 0.011 0.012 0.03 0.04 0.2 0.5, scaled by
     * 8, 7, ..., 1: 0.0072 0.007 0.066 0.06 0.12 0.12 0.4 0.5; the running max
     * gives 0.0072 0.0072 0.066 0.066 0.12 0.12 0.4 0.5. */
    const double want[] = {0.4, 0.0072, 0.12, 0.066, 0.5, 0.066, 0.12, 0.0072};
    for (int i = 0; i < 8; i++)
        assert_close(adj[i], want[i], 1e-14);
}
END_TEST

static Suite *stats_suite(void)
{
    Suite *s = suite_create("stats");
    TCase *tc = tcase_create("summary");
    tcase_add_test(tc, test_one_to_five_95);
    tcase_add_test(tc, test_other_levels_and_sizes);
    tcase_add_test(tc, test_single_value);
    tcase_add_test(tc, test_constant_values);
    tcase_add_test(tc, test_large_offset_is_stable);
    tcase_add_test(tc, test_bad_input);
    suite_add_tcase(s, tc);
    TCase *tt = tcase_create("t_tests");
    tcase_add_test(tt, test_closed_form);
    tcase_add_test(tt, test_paired_sleep);
    tcase_add_test(tt, test_paired_by_hand);
    tcase_add_test(tt, test_paired_degenerate);
    tcase_add_test(tt, test_welch_sleep);
    tcase_add_test(tt, test_welch_by_hand);
    tcase_add_test(tt, test_welch_one_constant_sample);
    tcase_add_test(tt, test_welch_equal_design_df);
    tcase_add_test(tt, test_welch_degenerate);
    suite_add_tcase(s, tt);
    TCase *th = tcase_create("holm");
    tcase_add_test(th, test_holm_by_hand);
    tcase_add_test(th, test_holm_caps_and_ties);
    tcase_add_test(th, test_holm_skips_nan);
    tcase_add_test(th, test_holm_is_monotone);
    suite_add_tcase(s, th);
    return s;
}

int main(void)
{
    gsl_set_error_handler_off();
    SRunner *sr = srunner_create(stats_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
