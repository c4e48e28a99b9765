/* Tests of `divsim bench` (sim/bench.c): its options, and short runs of a few
 * cases whose JSON must name each case, report it done and give a positive
 * figure. (The figures themselves depend on the machine: they are not checked.) */
#include "../sim/bench.h"
#include "../sim/common.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Runs bench with the options into a string (malloc'd). A case's child process
 * also returns here: it leaves at once, as main does. */
static char *run_bench(const bench_options *opt)
{
    FILE *out = tmpfile();
    ck_assert_ptr_nonnull(out);
    char err[ERR_LEN] = "";
    int worker = 0;
    int rc = bench_run(opt, out, &worker, err);
    if (worker)
        _exit(rc == DS_OK ? 0 : 1);
    ck_assert_msg(rc == DS_OK, "bench: %s", err);
    long n = ftell(out);
    ck_assert_int_gt(n, 0);
    char *text = calloc((size_t)n + 1, 1);
    ck_assert_ptr_nonnull(text);
    rewind(out);
    ck_assert_uint_eq(fread(text, 1, (size_t)n, out), (size_t)n);
    fclose(out);
    return text;
}

/* The number after `"key": ` in the first case of the JSON text. */
static double json_number(const char *text, const char *key)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\": ", key);
    const char *at = strstr(text, pattern);
    ck_assert_msg(at != NULL, "no %s in %s", key, text);
    return strtod(at + strlen(pattern), NULL);
}

/* A command line of n writable words (argv must be), freed with argv_free. */
static char **argv_of(const char *const *words, int n)
{
    char **argv = calloc((size_t)n + 1, sizeof *argv);
    ck_assert_ptr_nonnull(argv);
    for (int i = 0; i < n; i++)
        ck_assert_ptr_nonnull(argv[i] = strdup(words[i]));
    return argv;
}

static void argv_free(char **argv)
{
    for (int i = 0; argv[i]; i++)
        free(argv[i]);
    free(argv);
}

START_TEST(test_options)
{
    bench_options opt;
    char err[ERR_LEN];
    const char *good[] = {"divsim", "bench", "--json", "--quick", "--only", "shop", "--reps",
                          "3", "--steps", "100", "-q"};
    char **argv = argv_of(good, 11);
    ck_assert_int_eq(bench_parse_args(11, argv, &opt, err), DS_OK);
    ck_assert(opt.json && opt.quick && opt.reps == 3 && opt.steps == 100 && !opt.progress);
    ck_assert_str_eq(opt.only, "shop");
    argv_free(argv);
    const char *bad_reps[] = {"divsim", "bench", "--reps", "0"};
    argv = argv_of(bad_reps, 4);
    ck_assert_int_eq(bench_parse_args(4, argv, &opt, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "--reps"));
    argv_free(argv);
    const char *unknown[] = {"divsim", "bench", "--fast"};
    argv = argv_of(unknown, 3);
    ck_assert_int_eq(bench_parse_args(3, argv, &opt, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "'--fast'"));
    argv_free(argv);
    const char *incomplete[] = {"divsim", "bench", "--only"};
    argv = argv_of(incomplete, 3);
    ck_assert_int_eq(bench_parse_args(3, argv, &opt, err), DS_EINPUT);
    argv_free(argv);
}
END_TEST

START_TEST(test_env_only_case)
{
    bench_options opt = {.json = 1, .quick = 1, .only = "shop.1k.10k"};
    char *text = run_bench(&opt);
    ck_assert_ptr_nonnull(strstr(text, "\"id\": \"shop.1k.10k\""));
    ck_assert_ptr_nonnull(strstr(text, "\"ok\": true"));
    ck_assert_double_gt(json_number(text, "median"), 0.0);
    ck_assert_double_gt(json_number(text, "timed_steps"), 0.0);
#ifndef __SANITIZE_ADDRESS__ /* ASan's allocator does not report to mallinfo2 */
    ck_assert_double_gt(json_number(text, "allocated_bytes"), 100000.0); /* 10k users */
#endif
    ck_assert_ptr_null(strstr(text, "\"id\": \"shop.10k.1k\"")); /* --only */
    free(text);
}
END_TEST

START_TEST(test_gemm_and_table)
{
    bench_options opt = {.quick = 1, .only = "gemm"};
    char *text = run_bench(&opt);
    ck_assert_ptr_nonnull(strstr(text, "dgemm peak"));
    ck_assert_ptr_nonnull(strstr(text, "sgemm peak"));
    ck_assert_ptr_nonnull(strstr(text, "GFLOP/s"));
    ck_assert_ptr_null(strstr(text, "failed"));
    free(text);
}
END_TEST

START_TEST(test_no_case)
{
    bench_options opt = {.json = 1, .only = "no such case"};
    char *text = run_bench(&opt);
    ck_assert_ptr_nonnull(strstr(text, "\"cases\": [\n  ]"));
    free(text);
}
END_TEST

static Suite *bench_suite(void)
{
    Suite *s = suite_create("bench");
    TCase *tc = tcase_create("command");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_options);
    tcase_add_test(tc, test_env_only_case);
    tcase_add_test(tc, test_gemm_and_table);
    tcase_add_test(tc, test_no_case);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(bench_suite)
