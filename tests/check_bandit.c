/* The bandit environment against its closed form, through the whole engine:
 * oracle and random click rates over 100,000 one-step sessions. */
#include "../sim/common.h"
#include "../sim/run.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

extern const env_type bandit_env;
extern const agent_type oracle_agent, random_agent;

/* Click probability of a slate: sum e^{u_i} / (e^{u0} + sum e^{u_i}). */
static double click_rate(const int *slate, int k, double step, double u0)
{
    double w = 0.0;
    for (int j = 0; j < k; j++)
        w += exp(slate[j] * step);
    return w / (exp(u0) + w);
}

/* Mean click rate of a uniformly random 3-slate of 10 items, by enumerating all
 * 120 subsets (order does not matter: the bandit has no position bias). */
static double random_click_rate(void)
{
    double sum = 0.0;
    int n = 0;
    for (int a = 0; a < 10; a++)
        for (int b = a + 1; b < 10; b++)
            for (int c = b + 1; c < 10; c++) {
                int slate[3] = {a, b, c};
                sum += click_rate(slate, 3, 0.1, 1.0);
                n++;
            }
    return sum / n;
}

/* Runs agent on bandit (10 items, slate 3, utility_step 0.1, u0 1) for
 * `sessions` eval episodes and returns the click rate per session. */
static double simulate(const agent_type *agent_kind, long sessions, uint64_t seed)
{
    static double env_config[64], agent_config[64]; /* aligned room for any config */
    char err[ERR_LEN];
    ck_assert_int_eq(param_defaults(&bandit_env.params, env_config, err), DS_OK);
    ck_assert_int_eq(param_defaults(&agent_kind->params, agent_config, err), DS_OK);
    run_spec spec = {.env = &bandit_env, .agent = agent_kind, .seed = seed,
                     .env_config = env_config, .agent_config = agent_config};
    spec.settings = (run_settings){.name = "bandit", .train_episodes = 0,
                                   .eval_episodes = (int)sessions, .window = 10000,
                                   .history = 4, .reward = REWARD_CLICKS};
    run_result res;
    ck_assert_msg(run_execute(&spec, NULL, &res, err) == DS_OK, "%s", err);
    ck_assert_int_eq(res.status, RUN_DONE);
    ck_assert_uint_eq(res.n_episodes, (size_t)sessions);
    long clicks = 0;
    for (size_t i = 0; i < res.n_episodes; i++) {
        ck_assert_int_eq(res.episodes[i].length, 1);
        clicks += res.episodes[i].clicks;
        ck_assert_double_eq(res.episodes[i].reward, res.episodes[i].clicks);
    }
    run_result_free(&res);
    return (double)clicks / sessions;
}

START_TEST(closed_form_rates)
{
    int best[3] = {9, 8, 7};
    ck_assert_double_eq_tol(click_rate(best, 3, 0.1, 1.0), 0.7113486, 5e-8);
    ck_assert_double_eq_tol(random_click_rate(), 0.6401157, 5e-8);
}
END_TEST

/* Tolerance 0.005: the standard error of a rate near 0.7 over 1e5 sessions is
 * sqrt(0.7 * 0.3 / 1e5) = 0.00145, so 0.005 is about 3.4 standard errors. */
START_TEST(oracle_reaches_the_optimum)
{
    ck_assert_double_eq_tol(simulate(&oracle_agent, 100000, 11), 0.7113486, 0.005);
}
END_TEST

START_TEST(random_matches_the_enumerated_rate)
{
    ck_assert_double_eq_tol(simulate(&random_agent, 100000, 12), 0.6401157, 0.005);
}
END_TEST

static Suite *bandit_suite(void)
{
    Suite *s = suite_create("bandit");
    TCase *tc = tcase_create("closed form");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, closed_form_rates);
    tcase_add_test(tc, oracle_reaches_the_optimum);
    tcase_add_test(tc, random_matches_the_enumerated_rate);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(bandit_suite)
