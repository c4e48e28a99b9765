/* The simple agents: oracle against brute force, popularity's decayed chart
 * and paging, random's uniformity. The cf family has its own suite. */
#include "../agents/agent.h"
#include "../agents/sample.h"
#include "testutil.h"

#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

extern const agent_type oracle_agent, popularity_agent, random_agent;

enum { N = 8, K = 3 };

static int all_items[N] = {0, 1, 2, 3, 4, 5, 6, 7};
static int topic[N];
static double price[N];
static env_spec spec = {.n_items = N, .n_users = 4, .slate = K, .n_topics = N, .max_steps = 20,
                        .item_topic = topic, .item_price = price};

/* ---- oracle ---- */

typedef struct {
    double v[N], r[N], v0;
} truth;

static int true_model(void *ctx, int user, const int *items, int n, double *utility,
                      double *value, double *v0)
{
    const truth *t = ctx;
    (void)user;
    for (int i = 0; i < n; i++) { /* any output may be NULL */
        if (utility)
            utility[i] = t->v[items[i]];
        if (value)
            value[i] = t->r[items[i]];
    }
    if (v0)
        *v0 = t->v0;
    return DS_OK;
}

static double expected_reward(const truth *t, const int *slate)
{
    double num = 0.0, den = exp(t->v0);
    for (int j = 0; j < K; j++) {
        num += exp(t->v[slate[j]]) * t->r[slate[j]];
        den += exp(t->v[slate[j]]);
    }
    return num / den;
}

static double best_by_enumeration(const truth *t)
{
    double best = -1.0;
    for (int a = 0; a < N; a++)
        for (int b = a + 1; b < N; b++)
            for (int c = b + 1; c < N; c++) {
                int s[K] = {a, b, c};
                best = fmax(best, expected_reward(t, s));
            }
    return best;
}

static agent *make(const agent_type *type, const void *config, truth *t, gsl_rng *r)
{
    agent_context ctx = {.init = r, .sampling = r, .minibatch = r, .reward = REWARD_PURCHASES};
    if (t)
        ctx.privileged = (privileged_view){t, true_model, NULL};
    agent *a;
    char err[ERR_LEN];
    ck_assert_msg(type->xCreate(config, &spec, &ctx, &a, err) == DS_OK, "%s", err);
    a->type = type;
    a->spec = &spec;
    a->learning = 1;
    return a;
}

/* Random instances where the greedy top-k by e^v r is often not optimal (a
 * valuable but unattractive item competes with attractive worthless ones): the
 * oracle's slate must reach the enumerated optimum of all 56 slates. */
START_TEST(oracle_finds_the_optimal_assortment)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 3);
    truth t;
    agent *a = make(&oracle_agent, NULL, &t, r);
    int greedy_was_worse = 0;
    for (int trial = 0; trial < 2000; trial++) {
        for (int i = 0; i < N; i++) {
            t.v[i] = 3.0 * gsl_rng_uniform(r) - 1.0;
            t.r[i] = gsl_rng_uniform(r) < 0.5 ? gsl_rng_uniform(r) : 0.02;
        }
        t.v0 = 2.0 * gsl_rng_uniform(r) - 1.0;
        observation obs = {.user = 0, .candidates = all_items, .n_candidates = N};
        int slate[K];
        ck_assert_int_eq(oracle_agent.xAct(a, &obs, slate), DS_OK);
        double best = best_by_enumeration(&t);
        ck_assert_double_eq_tol(expected_reward(&t, slate), best, 1e-12);
        /* the greedy slate, for the record: top 3 by e^v r */
        int greedy[K] = {-1, -1, -1};
        for (int j = 0; j < K; j++)
            for (int i = 0; i < N; i++) {
                int taken = (i == greedy[0] || i == greedy[1]);
                if (!taken && (greedy[j] < 0 || exp(t.v[i]) * t.r[i] >
                                                    exp(t.v[greedy[j]]) * t.r[greedy[j]]))
                    greedy[j] = i;
            }
        greedy_was_worse += expected_reward(&t, greedy) < best - 1e-12;
        /* shown best first by e^v r */
        for (int j = 1; j < K; j++)
            ck_assert(exp(t.v[slate[j - 1]]) * t.r[slate[j - 1]] >=
                      exp(t.v[slate[j]]) * t.r[slate[j]]);
    }
    ck_assert_int_gt(greedy_was_worse, 20); /* the fixture does exercise the difference */
    oracle_agent.xDestroy(a);
    gsl_rng_free(r);
}
END_TEST

/* ---- popularity ---- */

/* popularity's config with defaults, then the given key = value pairs. */
static void *popularity_config(double *buffer, const char *const *settings, int n)
{
    char err[ERR_LEN];
    ck_assert_int_eq(param_defaults(&popularity_agent.params, buffer, err), DS_OK);
    for (int i = 0; i < n; i += 2) {
        const param_spec *p = param_find(&popularity_agent.params, settings[i]);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(param_parse(p, settings[i + 1], buffer, err), DS_OK);
    }
    return buffer;
}

static void click(agent *a, int item, double t, int purchased)
{
    feedback fb = {.kind = FEEDBACK_STEP, .item = item, .click = 0, .time = t,
                   .purchased = purchased};
    ck_assert_int_eq(a->type->xObserve(a, &fb), DS_OK);
}

/* Half-life 10 h: 4 clicks on item 1 at t=0 weigh 4 * 2^-3 = 0.5 at t=30, less
 * than one click on item 2 at t=30, but more than 0.4 of a click. With purchase
 * weight 5, a purchase of item 3 at t=0 (click + purchase = 6) weighs 0.75 at 30. */
START_TEST(popularity_decays_by_half_life)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    double buffer[16];
    const char *const settings[] = {"half_life", "10", "paging", "false", "epsilon", "0"};
    agent *a = make(&popularity_agent, popularity_config(buffer, settings, 6), NULL, r);
    for (int i = 0; i < 4; i++)
        click(a, 1, 0.0, 0);
    click(a, 3, 0.0, 1);
    click(a, 2, 30.0, 0);
    observation obs = {.candidates = all_items, .n_candidates = N, .time = 30.0};
    int slate[K];
    ck_assert_int_eq(a->type->xAct(a, &obs, slate), DS_OK);
    ck_assert_int_eq(slate[0], 2); /* 1.0 */
    ck_assert_int_eq(slate[1], 3); /* 6 * 2^-3 = 0.75 */
    ck_assert_int_eq(slate[2], 1); /* 4 * 2^-3 = 0.5 */
    /* frozen: observations change nothing */
    a->learning = 0;
    for (int i = 0; i < 10; i++)
        click(a, 7, 30.0, 1);
    ck_assert_int_eq(a->type->xAct(a, &obs, slate), DS_OK);
    ck_assert_int_eq(slate[0], 2);
    a->type->xDestroy(a);
    gsl_rng_free(r);
}
END_TEST

START_TEST(popularity_pages_through_the_chart)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    double buffer[16];
    const char *const settings[] = {"epsilon", "0"};
    agent *a = make(&popularity_agent, popularity_config(buffer, settings, 2), NULL, r);
    for (int i = 0; i < N; i++) /* item i clicked i times: chart 7, 6, 5, ... */
        for (int n = 0; n < i; n++)
            click(a, i, 0.0, 0);
    int expected[3][K] = {{7, 6, 5}, {4, 3, 2}, {7, 6, 5}}; /* 8 items: 2 pages, then wrap */
    for (int step = 0; step < 3; step++) {
        observation obs = {.candidates = all_items, .n_candidates = N, .step = step};
        int slate[K];
        ck_assert_int_eq(a->type->xAct(a, &obs, slate), DS_OK);
        for (int j = 0; j < K; j++)
            ck_assert_int_eq(slate[j], expected[step][j]);
    }
    a->type->xDestroy(a);
    gsl_rng_free(r);
}
END_TEST

/* ---- random ---- */

/* Each item's share of 30,000 slates of 3 from 8 is 3/8; a chi-square test of
 * the 8 counts (7 degrees of freedom) at p > 1e-4 on a fixed seed. */
START_TEST(random_is_uniform_and_distinct)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 5);
    agent *a = make(&random_agent, NULL, NULL, r);
    long count[N] = {0};
    int slates = 30000;
    for (int s = 0; s < slates; s++) {
        observation obs = {.candidates = all_items, .n_candidates = N};
        int slate[K];
        ck_assert_int_eq(a->type->xAct(a, &obs, slate), DS_OK);
        ck_assert(slate[0] != slate[1] && slate[0] != slate[2] && slate[1] != slate[2]);
        for (int j = 0; j < K; j++)
            count[slate[j]]++;
    }
    double expected = slates * (double)K / N, chi2 = 0.0;
    for (int i = 0; i < N; i++)
        chi2 += (count[i] - expected) * (count[i] - expected) / expected;
    ck_assert_double_gt(gsl_cdf_chisq_Q(chi2, N - 1), 1e-4);
    /* the slate's log-probability follows the number of candidates as it
     * changes (it is kept between acts): -ln(n (n-1) (n-2)) */
    const int counts[] = {N, N - 2, N - 2, N, K};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        int n = counts[c], slate[K];
        observation obs = {.candidates = all_items, .n_candidates = n};
        ck_assert_int_eq(a->type->xAct(a, &obs, slate), DS_OK);
        ck_assert_double_eq_tol(a->slate_logp, -log((double)n * (n - 1) * (n - 2)), 1e-12);
    }
    a->type->xDestroy(a);
    gsl_rng_free(r);
}
END_TEST

/* The slate gsl_rng_uniform_int would draw: rejection of repeats, as sampling
 * did before its draws were computed by multiplication. */
static void reference_distinct(gsl_rng *r, const int *candidates, int n, int *out, int k)
{
    for (int j = 0; j < k; j++) {
        int item, repeat;
        do {
            item = candidates[gsl_rng_uniform_int(r, (unsigned long)n)];
            repeat = 0;
            for (int i = 0; i < j; i++)
                repeat |= out[i] == item;
        } while (repeat);
        out[j] = item;
    }
}

/* sample_distinct and sample_explore draw exactly the values of
 * gsl_rng_uniform_int from the same generator outputs, for catalogue sizes where
 * gsl's scale = (2^32 - 1) / n divides exactly (n = 65535, 65537), is one short
 * (n = 65536) or anything between, up to n = 2^22 (scale 1023), on twin generators. */
START_TEST(sampling_draws_what_gsl_draws)
{
    static const int sizes[] = {40, 41, 64, 1000, 4096, 10000, 65535, 65536, 65537,
                                100003, 1 << 20, 1 << 22};
    enum { K_MAX = 10, SLATES = 2000 };
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        int n = sizes[t];
        int *candidates = malloc((size_t)n * sizeof *candidates);
        ck_assert_ptr_nonnull(candidates);
        for (int i = 0; i < n; i++)
            candidates[i] = i;
        gsl_rng *mine = gsl_rng_alloc(gsl_rng_mt19937), *ref = gsl_rng_alloc(gsl_rng_mt19937);
        gsl_rng_set(mine, 17 + t);
        gsl_rng_set(ref, 17 + t);
        for (int s = 0; s < SLATES; s++) {
            int got[K_MAX], want[K_MAX];
            ck_assert_int_eq(sample_distinct(mine, candidates, n, got, K_MAX), DS_OK);
            reference_distinct(ref, candidates, n, want, K_MAX);
            ck_assert_mem_eq(got, want, sizeof got);
        }
        /* explore with epsilon 1: every slot given up (one uniform each), refilled */
        int slate[K_MAX];
        sample_explore(mine, NULL, candidates, n, slate, K_MAX, 1.0);
        for (int j = 0; j < K_MAX; j++)
            ck_assert_double_lt(gsl_rng_uniform(ref), 1.0);
        int want[K_MAX];
        reference_distinct(ref, candidates, n, want, K_MAX);
        ck_assert_mem_eq(slate, want, sizeof slate);
        ck_assert_uint_eq(gsl_rng_get(mine), gsl_rng_get(ref));
        gsl_rng_free(mine);
        gsl_rng_free(ref);
        free(candidates);
    }
}
END_TEST

static Suite *agents_suite(void)
{
    Suite *s = suite_create("agents");
    TCase *tc = tcase_create("simple");
    tcase_add_test(tc, oracle_finds_the_optimal_assortment);
    tcase_add_test(tc, popularity_decays_by_half_life);
    tcase_add_test(tc, popularity_pages_through_the_chart);
    tcase_add_test(tc, random_is_uniform_and_distinct);
    tcase_add_test(tc, sampling_draws_what_gsl_draws);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(agents_suite)
