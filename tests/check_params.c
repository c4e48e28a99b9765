/* Typed parameter tables: parsing, ranges, defaults, suggestions. */
#include "../sim/common.h"
#include "../sim/params.h"
#include "testutil.h"

#include <string.h>

typedef struct {
    int steps;
    double rate;
    int verbose;
    int mode;
    char path[PARAM_STRING_LEN];
} toy_config;

static const param_spec toy_specs[] = {
    P_INT(toy_config, steps, "10", 1, 100, "steps"),
    P_REAL(toy_config, rate, "0.5", 0, 1, "a rate"),
    P_BOOL(toy_config, verbose, "false", "chatty"),
    P_CHOICE(toy_config, mode, "fast", "slow|fast|exact", "how"),
    P_STRING(toy_config, path, "none", "a file"),
};
static const param_table toy = PARAM_TABLE(toy_config, toy_specs);

START_TEST(defaults_fill_every_field)
{
    toy_config c;
    char err[ERR_LEN];
    memset(&c, 0xff, sizeof c);
    ck_assert_int_eq(param_defaults(&toy, &c, err), DS_OK);
    ck_assert_int_eq(c.steps, 10);
    ck_assert_double_eq(c.rate, 0.5);
    ck_assert_int_eq(c.verbose, 0);
    ck_assert_int_eq(c.mode, 1);
    ck_assert_str_eq(c.path, "none");
}
END_TEST

START_TEST(values_parse_and_ranges_hold)
{
    toy_config c = {0};
    char err[ERR_LEN];
    const param_spec *steps = param_find(&toy, "steps"), *rate = param_find(&toy, "rate");
    ck_assert_int_eq(param_parse(steps, "42", &c, err), DS_OK);
    ck_assert_int_eq(c.steps, 42);
    ck_assert_int_eq(param_parse(steps, "4.5", &c, err), DS_EINPUT);
    ck_assert_str_eq(err, "expected an integer, got '4.5'");
    ck_assert_int_eq(param_parse(steps, "101", &c, err), DS_EINPUT);
    ck_assert_str_eq(err, "value 101 out of range [1, 100]");
    ck_assert_int_eq(param_parse(rate, "nan", &c, err), DS_EINPUT);
    ck_assert_int_eq(param_parse(rate, "inf", &c, err), DS_EINPUT);
    ck_assert_int_eq(param_parse(rate, "1e-3", &c, err), DS_OK);
    ck_assert_double_eq(c.rate, 1e-3);
    ck_assert_int_eq(param_parse(rate, "", &c, err), DS_EINPUT);
    ck_assert_int_eq(param_parse(param_find(&toy, "verbose"), "Yes", &c, err), DS_OK);
    ck_assert_int_eq(c.verbose, 1);
    ck_assert_int_eq(param_parse(param_find(&toy, "mode"), "exact", &c, err), DS_OK);
    ck_assert_int_eq(c.mode, 2);
    ck_assert_int_eq(param_parse(param_find(&toy, "mode"), "fas", &c, err), DS_EINPUT);
    ck_assert_str_eq(err, "expected one of slow|fast|exact, got 'fas'");
    ck_assert_ptr_null(param_find(&toy, "nope"));
    /* text is kept as written, up to PARAM_STRING_LEN - 1 characters */
    const param_spec *path = param_find(&toy, "path");
    ck_assert_int_eq(param_parse(path, "results/a b.ckpt", &c, err), DS_OK);
    ck_assert_str_eq(c.path, "results/a b.ckpt");
    char longest[PARAM_STRING_LEN + 1];
    memset(longest, 'x', PARAM_STRING_LEN);
    longest[PARAM_STRING_LEN - 1] = '\0';
    ck_assert_int_eq(param_parse(path, longest, &c, err), DS_OK);
    ck_assert_uint_eq(strlen(c.path), PARAM_STRING_LEN - 1);
    longest[PARAM_STRING_LEN - 1] = 'x';
    longest[PARAM_STRING_LEN] = '\0';
    ck_assert_int_eq(param_parse(path, longest, &c, err), DS_EINPUT);
    ck_assert_str_eq(err, "value longer than 255 characters");
}
END_TEST

START_TEST(suggestions_catch_typos_only)
{
    ck_assert_str_eq(param_suggest_key(&toy, "stpes"), "steps");
    ck_assert_str_eq(param_suggest_key(&toy, "rates"), "rate");
    ck_assert_ptr_null(param_suggest_key(&toy, "learning_rate"));
    char name[16];
    param_choice_name("slow|fast|exact", 2, name, sizeof name);
    ck_assert_str_eq(name, "exact");
}
END_TEST

/* "{seed}" in a file parameter becomes the run's seed, every occurrence; text
 * without it is unchanged; a result too long for the buffer is refused. */
START_TEST(seed_patterns_expand)
{
    char out[32], err[ERR_LEN];
    ck_assert_int_eq(path_for_seed("ckpt/cf-{seed}.ckpt", 12, out, sizeof out, err), DS_OK);
    ck_assert_str_eq(out, "ckpt/cf-12.ckpt");
    ck_assert_int_eq(path_for_seed("{seed}/{seed}{seed", 3, out, sizeof out, err), DS_OK);
    ck_assert_str_eq(out, "3/3{seed");
    ck_assert_int_eq(path_for_seed("plain.ckpt", 3, out, sizeof out, err), DS_OK);
    ck_assert_str_eq(out, "plain.ckpt");
    ck_assert_int_eq(path_for_seed("{seed}", 18446744073709551615u, out, sizeof out, err),
                     DS_OK);
    ck_assert_str_eq(out, "18446744073709551615");
    ck_assert_int_eq(path_for_seed("01234567890123456789012345678-{seed}", 10, out, sizeof out,
                                   err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "longer than 31 bytes"));
    ck_assert_int_eq(path_for_seed("012345678901234567890123456789{seed}", 1, out, sizeof out,
                                   err), DS_OK); /* exactly 31 */
}
END_TEST

static Suite *params_suite(void)
{
    Suite *s = suite_create("params");
    TCase *tc = tcase_create("tables");
    tcase_add_test(tc, defaults_fill_every_field);
    tcase_add_test(tc, values_parse_and_ranges_hold);
    tcase_add_test(tc, suggestions_catch_typos_only);
    tcase_add_test(tc, seed_patterns_expand);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(params_suite)
