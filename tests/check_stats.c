/* Tests of the summary statistics over seeds.
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
