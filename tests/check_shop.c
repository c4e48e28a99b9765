/* Tests of the shop environment: exact drift and decay, choice and purchase
 * frequencies against the model's formulas, session ends, return and churn,
 * locality of updates, determinism and catalogue churn. Statistical checks use
 * fixed seeds and 5-standard-error tolerances (a false alarm about 1 in 10^6). */
#include "../envs/shop.h"
#include "../sim/common.h"
#include "../sim/rng.h"
#include "testutil.h"

#include <check.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_randist.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_STREAMS 7

typedef struct {
    gsl_rng *r[N_STREAMS];
    env_context ctx;
} streams;

static void streams_init(streams *s, uint64_t seed)
{
    for (int i = 0; i < N_STREAMS; i++) {
        s->r[i] = rng_stream_new(seed, (rng_stream)(RNG_CATALOGUE + i));
        ck_assert_ptr_nonnull(s->r[i]);
    }
    s->ctx = (env_context){s->r[0], s->r[1], s->r[2], s->r[3], s->r[4], s->r[5], s->r[6],
                           REWARD_PURCHASES};
}

static void streams_free(streams *s)
{
    for (int i = 0; i < N_STREAMS; i++)
        gsl_rng_free(s->r[i]);
}

/* Defaults on a small catalogue and population. */
static shop_config small_config(void)
{
    shop_config c;
    char err[ERR_LEN];
    CALL_OK(param_defaults(&shop_env.params, &c, err));
    c.items = 60;
    c.users = 20;
    c.topics = 4;
    c.dim = 4;
    c.slate = 5;
    return c;
}

/* A configuration under which a user's state never changes between steps:
 * no drift noise (x stays at mu), no satiation, no reinforcement, no churn,
 * sessions that never end early. */
static shop_config frozen_config(void)
{
    shop_config c = small_config();
    c.drift_scale = 0;
    c.satiation_gain = 0;
    c.reinforcement = 0;
    c.churn_patience = 0;
    c.leave_bias = -200;
    c.max_steps = 1000000;
    return c;
}

static env *make_env(const shop_config *c, const streams *s)
{
    env *e = NULL;
    char err[ERR_LEN] = "";
    int rc = shop_env.xCreate(c, &s->ctx, &e, err);
    ck_assert_msg(rc == DS_OK, "xCreate: %s", err);
    ck_assert_ptr_nonnull(e);
    return e;
}

/* A uniformly random slate of distinct candidates, in random order. */
static void random_slate(env *e, int user, const gsl_rng *r, int *slate)
{
    const int *cand;
    int n;
    CALL_OK(shop_env.xCandidates(e, user, &cand, &n));
    REQUIRE(n >= e->spec.slate, "only %d candidates", n);
    int *pool = malloc(sizeof(int) * (size_t)n); /* [n] gsl wants a mutable source */
    memcpy(pool, cand, sizeof(int) * (size_t)n);
    gsl_ran_choose(r, slate, (size_t)e->spec.slate, pool, (size_t)n, sizeof(int));
    gsl_ran_shuffle(r, slate, (size_t)e->spec.slate, sizeof(int));
    free(pool);
}

static double dot(const double *a, const double *b, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* ------------------------------------------------------------- drift */

/* Residuals r = x - (mu + (x0 - mu) e^{-theta D}) over users are iid
 * N(0, sigma^2 (1 - e^{-2 theta D})) in each coordinate: check the mean within
 * 5 standard errors (sd/sqrt(n)) and the sample variance within 5 standard
 * errors (var sqrt(2/(n-1)), exact for normal data). Then the same from the
 * drifted state over a second gap (the Markov property). */
static void check_ou_gap(env *e, const shop_config *c, const double *start, double gap_from,
                         double gap)
{
    int n = c->users, d = c->dim;
    double keep = exp(-c->drift_rate * gap);
    double var = c->drift_scale * c->drift_scale * (1 - exp(-2 * c->drift_rate * gap));
    double *sum = calloc((size_t)d, sizeof(double)), *sum2 = calloc((size_t)d, sizeof(double));
    double x[16], mu[16];
    for (int u = 0; u < n; u++) {
        CALL_OK(shop_env.xStartSession(e, u, gap_from + gap));
        CALL_OK(shop_user_preference(e, u, x, mu));
        for (int k = 0; k < d; k++) {
            double r = x[k] - (mu[k] + (start[(size_t)u * d + k] - mu[k]) * keep);
            sum[k] += r;
            sum2[k] += r * r;
        }
    }
    for (int k = 0; k < d; k++) {
        double mean = sum[k] / n;
        double sample_var = (sum2[k] - n * mean * mean) / (n - 1);
        ck_assert_msg(fabs(mean) < 5 * sqrt(var / n), "gap %g coord %d: mean residual %g, sd %g",
                      gap, k, mean, sqrt(var / n));
        ck_assert_msg(fabs(sample_var - var) < 5 * var * sqrt(2.0 / (n - 1)),
                      "gap %g coord %d: variance %g, expected %g", gap, k, sample_var, var);
    }
    free(sum);
    free(sum2);
}

START_TEST(test_ou_transition)
{
    shop_config c = small_config();
    c.users = 4000;
    c.dim = 4;
    streams s;
    streams_init(&s, 11);
    env *e = make_env(&c, &s);
    double *start = malloc(sizeof(double) * (size_t)c.users * c.dim); /* [users][dim] */
    const double x0[4] = {0.9, -0.4, 0.3, -1.2};
    for (int u = 0; u < c.users; u++) {
        CALL_OK(shop_set_user_preference(e, u, x0));
        memcpy(start + (size_t)u * c.dim, x0, sizeof(x0));
    }
    check_ou_gap(e, &c, start, 0, 50); /* e^{-0.5}: halfway to the mean */
    for (int u = 0; u < c.users; u++)
        CALL_OK(shop_user_preference(e, u, start + (size_t)u * c.dim, NULL));
    check_ou_gap(e, &c, start, 50, 0.25); /* a short gap: variance ~ 2 theta D sigma^2 */
    for (int u = 0; u < c.users; u++)
        CALL_OK(shop_user_preference(e, u, start + (size_t)u * c.dim, NULL));
    check_ou_gap(e, &c, start, 50.25, 400); /* nearly stationary */
    shop_env.xDestroy(e);
    free(start);
    streams_free(&s);
}
END_TEST

/* Without noise the transition is the deterministic pull, to rounding. */
START_TEST(test_ou_noiseless)
{
    shop_config c = small_config();
    c.drift_scale = 0;
    c.drift_rate = 0.02;
    streams s;
    streams_init(&s, 12);
    env *e = make_env(&c, &s);
    const double x0[4] = {1, 2, -3, 0.5};
    double x[4], mu[4];
    CALL_OK(shop_set_user_preference(e, 3, x0));
    CALL_OK(shop_env.xStartSession(e, 3, 30));
    CALL_OK(shop_user_preference(e, 3, x, mu));
    for (int k = 0; k < 4; k++)
        ck_assert_double_eq_tol(x[k], mu[k] + (x0[k] - mu[k]) * exp(-0.6), 1e-12);
    shop_env.xDestroy(e);
    streams_free(&s);
}
END_TEST

/* ------------------------------------------------- utility formula (known) */

/* xPrivileged's utility and purchase probability against the model's formulas,
 * computed here from public prices and latents and the inspected x_u, s_u, a_i
 * and m_u:
 *     v = g x.q + w_a a - b_u log p - kappa s[topic],  b_u = price_weight m_u,
 *     P(buy) = sigmoid(purchase_bias + purchase_affinity x.q + purchase_appeal a
 *                      - purchase_price m_u (log p - price_mean)).
 * Appeals and price weights vary (appeal_sd, price_weight_sd > 0), every
 * coefficient differs so a swapped or dropped term shows, and a click has made
 * one topic's satiation non-zero for user 2 (user 9 has none). Tolerance 1e-9
 * (relative above 1): the two sides differ only in rounding. */
START_TEST(test_privileged_formula)
{
    shop_config c = frozen_config();
    c.appeal_sd = 2.0;
    c.price_weight_sd = 0.5;
    c.appeal_weight = 1.3;
    c.satiation_weight = 0.6;
    c.satiation_gain = 1.7;
    c.reinforcement = 0.2;
    c.no_click_utility = -200; /* the step below surely clicks */
    c.purchase_bias = -2.0;    /* probabilities of order 0.1, so 1e-9 is tight */
    c.purchase_affinity = 3.5;
    c.purchase_appeal = 0.7;
    c.purchase_price = 1.2;
    streams s;
    streams_init(&s, 13);
    for (int reward = REWARD_PURCHASES; reward <= REWARD_CLICKS; reward++) {
        s.ctx.reward = (reward_kind)reward;
        env *e = make_env(&c, &s);
        int dim, first[5] = {0, 1, 2, 3, 4};
        const double *q = shop_env.xLatents(e, &dim);
        ck_assert_int_eq(dim, c.dim);
        env_response r;
        CALL_OK(shop_env.xStartSession(e, 2, 1.0));
        CALL_OK(shop_env.xStep(e, 2, first, 1.0, &r));
        ck_assert_int_ge(r.click, 0);
        int items[7] = {0, 7, 13, 21, 40, 59, r.item}, users[2] = {2, 9}, satiated = 0;
        for (int n = 0; n < 2; n++) {
            int u = users[n];
            double x[4], m, util[7], value[7];
            CALL_OK(shop_user_preference(e, u, x, NULL));
            CALL_OK(shop_user_price_multiplier(e, u, &m));
            REQUIRE(fabs(m - 1) > 0.01, "user %d: m_u = %g is too close to 1 to test", u, m);
            CALL_OK(shop_env.xPrivileged(e, u, items, 7, util, value, NULL));
            for (int j = 0; j < 7; j++) {
                int i = items[j];
                const double *qi = q + (size_t)i * dim;
                double aff = dot(x, qi, dim), logp = log(e->spec.item_price[i]), a, sat;
                CALL_OK(shop_item_appeal(e, i, &a));
                CALL_OK(shop_user_satiation(e, u, e->spec.item_topic[i], &sat));
                satiated += sat > 0;
                ck_assert_double_eq_tol(dot(qi, qi, dim), 1, 1e-12);
                double v = c.affinity * aff + c.appeal_weight * a -
                           c.price_weight * m * logp - c.satiation_weight * sat;
                ck_assert_double_eq_tol(util[j], v, 1e-9 * fmax(1, fabs(v)));
                double buy = 1 / (1 + exp(-(c.purchase_bias + c.purchase_affinity * aff +
                                            c.purchase_appeal * a -
                                            c.purchase_price * m * (logp - c.price_mean))));
                double want = reward == REWARD_PURCHASES ? buy
                              : reward == REWARD_REVENUE ? buy * e->spec.item_price[i]
                                                         : 1;
                ck_assert_double_eq_tol(value[j], want, 1e-9 * fmax(1, want));
            }
        }
        ck_assert_int_ge(satiated, 1); /* the satiation term was exercised */
        shop_env.xDestroy(e);
    }
    streams_free(&s);
}
END_TEST

/* Appeal a_i ~ N(0, appeal_sd) over items, log m_u ~ N(-s^2/2, s) over users
 * (s = price_weight_sd): each mean within 5 standard errors (sd/sqrt(n)) and
 * each sample variance within 5 standard errors (var sqrt(2/(n-1)), normal data). */
static void check_normal_sample(const double *x, int n, double mean, double sd,
                                const char *what)
{
    double sum = 0, sum2 = 0;
    for (int i = 0; i < n; i++)
        sum += x[i];
    double m = sum / n;
    for (int i = 0; i < n; i++)
        sum2 += (x[i] - m) * (x[i] - m);
    double var = sum2 / (n - 1);
    ck_assert_msg(fabs(m - mean) < 5 * sd / sqrt(n), "%s: mean %g, expected %g", what, m, mean);
    ck_assert_msg(fabs(var - sd * sd) < 5 * sd * sd * sqrt(2.0 / (n - 1)),
                  "%s: variance %g, expected %g", what, var, sd * sd);
}

START_TEST(test_appeal_and_price_multiplier_draws)
{
    shop_config c = small_config();
    c.items = 20000;
    c.users = 20000;
    c.appeal_sd = 1.5;
    c.price_weight_sd = 0.4;
    streams s;
    streams_init(&s, 14);
    env *e = make_env(&c, &s);
    double *a = malloc(sizeof(double) * (size_t)c.items);    /* [items] appeals */
    double *logm = malloc(sizeof(double) * (size_t)c.users); /* [users] log m_u */
    for (int i = 0; i < c.items; i++)
        CALL_OK(shop_item_appeal(e, i, &a[i]));
    for (int u = 0; u < c.users; u++) {
        double m;
        CALL_OK(shop_user_price_multiplier(e, u, &m));
        logm[u] = log(m);
    }
    check_normal_sample(a, c.items, 0, 1.5, "appeal");
    check_normal_sample(logm, c.users, -0.5 * 0.4 * 0.4, 0.4, "log price multiplier");
    double v;
    ck_assert_int_eq(shop_item_appeal(e, c.items, &v), DS_EINPUT);
    ck_assert_int_eq(shop_item_appeal(e, -1, &v), DS_EINPUT);
    ck_assert_int_eq(shop_user_price_multiplier(e, c.users, &v), DS_EINPUT);
    free(a);
    free(logm);
    shop_env.xDestroy(e);
    streams_free(&s);
}
END_TEST

/* ------------------------------------------------- choice and purchase */

/* Runs n steps of one user on a fixed slate under frozen_config; counts clicks
 * per position (the last cell is no-click), purchases, and the sum over clicks
 * of the purchase probability (mean and variance). */
typedef struct {
    long clicks[8];
    long purchases;
    double expect_buy, var_buy; /* sum p and sum p(1-p) over clicks */
    double delay_sum;
    double expect_click[8];     /* MNL probabilities, no-click last */
} choice_tally;

static void run_choices(const shop_config *c, uint64_t seed, const int *slate, long n,
                        choice_tally *out)
{
    streams s;
    streams_init(&s, seed);
    env *e = make_env(c, &s);
    int k = c->slate, user = 1;
    double util[8], buy[8];
    memset(out, 0, sizeof(*out));
    CALL_OK(shop_env.xPrivileged(e, user, slate, k, util, buy, NULL));
    /* expected: softmax of utility - position_bias log2(1+j) against v0 */
    double z = exp(c->no_click_utility);
    for (int j = 0; j < k; j++)
        z += out->expect_click[j] = exp(util[j] - c->position_bias * log2(1.0 + j));
    for (int j = 0; j < k; j++)
        out->expect_click[j] /= z;
    out->expect_click[k] = exp(c->no_click_utility) / z;
    CALL_OK(shop_env.xStartSession(e, user, 1.0));
    for (long step = 0; step < n; step++) {
        env_response r;
        CALL_OK(shop_env.xStep(e, user, slate, 1.0, &r));
        REQUIRE(!r.done, "step %ld ended the session", step);
        if (r.click < 0) {
            out->clicks[k]++;
            REQUIRE(r.item == -1 && !r.purchased, "step %ld: no click but item %d", step, r.item);
            continue;
        }
        REQUIRE(r.item == slate[r.click], "step %ld: item %d at %d", step, r.item, r.click);
        out->clicks[r.click]++;
        double p = buy[r.click];
        out->expect_buy += p;
        out->var_buy += p * (1 - p);
        if (r.purchased) {
            out->purchases++;
            out->delay_sum += r.purchase_delay;
            REQUIRE(r.revenue == e->spec.item_price[r.item], "revenue %g", r.revenue);
        } else {
            REQUIRE(r.revenue == 0 && r.purchase_delay == 0, "revenue without purchase");
        }
    }
    /* the state really was frozen: the utilities have not moved */
    double after[8];
    CALL_OK(shop_env.xPrivileged(e, user, slate, k, after, NULL, NULL));
    for (int j = 0; j < k; j++)
        ck_assert_double_eq(after[j], util[j]);
    shop_env.xDestroy(e);
    streams_free(&s);
}

START_TEST(test_mnl_frequencies)
{
    shop_config c = frozen_config();
    c.no_click_utility = 0.5; /* clicks common enough to count per position */
    int slate[5] = {3, 17, 8, 25, 31};
    long n = 200000;
    choice_tally t;
    run_choices(&c, 21, slate, n, &t);
    double chi2 = 0;
    for (int j = 0; j <= c.slate; j++) {
        double want = n * t.expect_click[j];
        double sd = sqrt(n * t.expect_click[j] * (1 - t.expect_click[j]));
        ck_assert_msg(fabs(t.clicks[j] - want) < 5 * sd, "cell %d: %ld clicks, expected %g +- %g",
                      j, t.clicks[j], want, sd);
        chi2 += (t.clicks[j] - want) * (t.clicks[j] - want) / want;
    }
    /* Pearson's statistic on k+1 cells has k degrees of freedom; reject at 1e-6 */
    double crit = gsl_cdf_chisq_Qinv(1e-6, c.slate);
    ck_assert_msg(chi2 < crit, "chi-square %g >= %g", chi2, crit);
}
END_TEST

START_TEST(test_purchase_rate)
{
    shop_config c = frozen_config();
    c.no_click_utility = 0;
    c.purchase_bias = -1.5; /* enough purchases for a tight check */
    c.purchase_delay = 3.0;
    int slate[5] = {50, 2, 44, 9, 30};
    choice_tally t;
    run_choices(&c, 22, slate, 100000, &t);
    /* purchases given the clicks: sum of independent Bernoulli(p_click) */
    ck_assert_msg(fabs(t.purchases - t.expect_buy) < 5 * sqrt(t.var_buy),
                  "%ld purchases, expected %g +- %g", t.purchases, t.expect_buy,
                  sqrt(t.var_buy));
    ck_assert_int_gt(t.purchases, 1000);
    /* exponential delays: the mean has standard error mean/sqrt(n) */
    double mean = t.delay_sum / t.purchases;
    ck_assert_msg(fabs(mean - 3.0) < 5 * 3.0 / sqrt((double)t.purchases),
                  "mean delay %g, expected 3", mean);
}
END_TEST

static double logistic(double z) { return 1 / (1 + exp(-z)); }

/* With the state moving (reinforcement, satiation), each step's purchase and
 * leave draws are Bernoulli with probabilities computable from the state just
 * before the step (xPrivileged) and the satiation just after it. So the number
 * of purchases (leaves) is within 5 sd of the sum of those probabilities, with
 * sd = sqrt(sum p(1-p)) (a martingale central limit). Reinforcement is strong so
 * that buying after it, or boredom read before the click, would show. */
START_TEST(test_live_purchase_and_leave)
{
    shop_config c = small_config();
    c.reinforcement = 0.3;
    c.purchase_bias = -1.0;
    c.no_click_utility = 1.0;
    c.satiation_gain = 2.0;
    c.leave_boredom = 2.0;
    c.max_steps = 1000000; /* only the leave draw ends a session */
    c.churn_patience = 0;
    streams s;
    streams_init(&s, 23);
    env *e = make_env(&c, &s);
    gsl_rng *agent = rng_stream_new(23, RNG_AGENT_SAMPLING);
    int k = c.slate, slate[5], user = 0;
    double util[5], buy[5], v[5], prob[5], t = 0;
    double buy_sum = 0, buy_var = 0, leave_sum = 0, leave_var = 0;
    long purchases = 0, leaves = 0;
    env_response r = {.done = 1};
    for (long step = 0; step < 50000; step++) {
        if (r.done) {
            user = (user + 1) % c.users;
            t += 1.0;
            CALL_OK(shop_env.xStartSession(e, user, t));
        }
        random_slate(e, user, agent, slate);
        CALL_OK(shop_env.xPrivileged(e, user, slate, k, util, buy, NULL));
        double vmax = -INFINITY, sum = 0;
        for (int j = 0; j < k; j++) {
            v[j] = util[j] - c.position_bias * log2(1.0 + j);
            vmax = fmax(vmax, v[j]);
        }
        for (int j = 0; j < k; j++)
            sum += exp(v[j] - vmax);
        double inclusive = vmax + log(sum);
        double total = log(exp(inclusive) + exp(c.no_click_utility));
        for (int j = 0; j < k; j++)
            prob[j] = exp(v[j] - total);
        CALL_OK(shop_env.xStep(e, user, slate, t, &r)); /* same t: no drift in a session */
        if (r.click >= 0) {
            double p = buy[r.click];
            buy_sum += p;
            buy_var += p * (1 - p);
            purchases += r.purchased;
        }
        double boredom = 0, sat;
        for (int j = 0; j < k; j++) {
            CALL_OK(shop_user_satiation(e, user, e->spec.item_topic[slate[j]], &sat));
            boredom += prob[j] * sat;
        }
        double p = logistic(c.leave_bias + c.leave_boredom * boredom -
                            c.leave_value * (inclusive - c.no_click_utility));
        leave_sum += p;
        leave_var += p * (1 - p);
        leaves += r.done;
    }
    ck_assert_msg(fabs(purchases - buy_sum) < 5 * sqrt(buy_var),
                  "%ld purchases, expected %g +- %g", purchases, buy_sum, sqrt(buy_var));
    ck_assert_msg(fabs(leaves - leave_sum) < 5 * sqrt(leave_var),
                  "%ld leaves, expected %g +- %g", leaves, leave_sum, sqrt(leave_var));
    gsl_rng_free(agent);
    shop_env.xDestroy(e);
    streams_free(&s);
}
END_TEST

/* -------------------------------------------------------- satiation */

START_TEST(test_satiation_decay)
{
    shop_config c = frozen_config();
    c.slate = 1;
    c.no_click_utility = -200; /* the single item is always clicked */
    c.satiation_gain = 1.5;
    c.satiation_tau = 24;
    streams s;
    streams_init(&s, 31);
    env *e = make_env(&c, &s);
    int item[1] = {5}, topic = e->spec.item_topic[5], user = 4;
    env_response r;
    double sat, before, after;
    CALL_OK(shop_env.xStartSession(e, user, 2.0));
    CALL_OK(shop_env.xStep(e, user, item, 2.0, &r));
    ck_assert_int_eq(r.click, 0);
    CALL_OK(shop_user_satiation(e, user, topic, &sat));
    /* stored as a float relative to a reference time, scaled on read: rel. 1e-7 */
    ck_assert_double_eq_tol(sat, 1.5, 1e-6);
    CALL_OK(shop_env.xPrivileged(e, user, item, 1, &before, NULL, NULL));
    /* 10 hours later: 1.5 e^{-10/24}; satiation is stored as float (rel. 1e-7) */
    CALL_OK(shop_env.xStartSession(e, user, 12.0));
    CALL_OK(shop_user_satiation(e, user, topic, &sat));
    ck_assert_double_eq_tol(sat, 1.5 * exp(-10.0 / 24), 1e-6);
    CALL_OK(shop_env.xPrivileged(e, user, item, 1, &after, NULL, NULL));
    ck_assert_double_eq_tol(after - before, c.satiation_weight * 1.5 * (1 - exp(-10.0 / 24)),
                            1e-6);
    /* a step 5 hours on decays first, then adds the click */
    CALL_OK(shop_env.xStep(e, user, item, 17.0, &r));
    CALL_OK(shop_user_satiation(e, user, topic, &sat));
    ck_assert_double_eq_tol(sat, 1.5 * exp(-15.0 / 24) + 1.5, 1e-6);
    /* other topics were never touched */
    for (int t2 = 0; t2 < c.topics; t2++)
        if (t2 != topic) {
            CALL_OK(shop_user_satiation(e, user, t2, &sat));
            ck_assert_double_eq(sat, 0);
        }
    shop_env.xDestroy(e);
    streams_free(&s);
}
END_TEST

/* Satiation is stored relative to a reference time and rebased when a click comes
 * more than 16 time constants after it: across a rebase it still follows
 * s(t) = s(t0) e^{-(t - t0)/tau} + gains, to float precision (rel. 1e-6), and the
 * other topics stay 0. tau = 1 hour so that 20 hours is past the rebase. */
START_TEST(test_satiation_rebase)
{
    shop_config c = frozen_config();
    c.slate = 1;
    c.no_click_utility = -200; /* the single item is always clicked */
    c.satiation_gain = 2.0;
    c.satiation_tau = 1.0;
    streams s;
    streams_init(&s, 32);
    env *e = make_env(&c, &s);
    int item[1] = {7}, topic = e->spec.item_topic[7], user = 3;
    env_response r;
    double sat;
    CALL_OK(shop_env.xStartSession(e, user, 1.0));
    CALL_OK(shop_env.xStep(e, user, item, 1.0, &r));
    CALL_OK(shop_env.xStep(e, user, item, 1.5, &r)); /* within the session: decays too */
    double want = 2.0 * exp(-0.5) + 2.0;
    CALL_OK(shop_user_satiation(e, user, topic, &sat));
    ck_assert_double_eq_tol(sat, want, 1e-6 * want);
    CALL_OK(shop_env.xStep(e, user, item, 21.5, &r)); /* 20 tau later: rebased */
    want = want * exp(-20.0) + 2.0;
    CALL_OK(shop_user_satiation(e, user, topic, &sat));
    ck_assert_double_eq_tol(sat, want, 1e-6 * want);
    CALL_OK(shop_env.xStep(e, user, item, 22.5, &r));
    want = want * exp(-1.0) + 2.0;
    CALL_OK(shop_user_satiation(e, user, topic, &sat));
    ck_assert_double_eq_tol(sat, want, 1e-6 * want);
    for (int t2 = 0; t2 < c.topics; t2++)
        if (t2 != topic) {
            CALL_OK(shop_user_satiation(e, user, t2, &sat));
            ck_assert_double_eq(sat, 0);
        }
    shop_env.xDestroy(e);
    streams_free(&s);
}
END_TEST

/* A broken state (a NaN taste, so NaN utilities) is caught at the next step by a
 * build with DIVSIM_DEBUG_INVARIANTS (the sanitizer builds); a release build does
 * not check, and the step then answers with no click. */
START_TEST(test_step_invariants)
{
    shop_config c = small_config();
    streams s;
    streams_init(&s, 33);
    env *e = make_env(&c, &s);
    gsl_rng *agent = rng_stream_new(33, RNG_AGENT_SAMPLING);
    int slate[5];
    env_response r;
    CALL_OK(shop_env.xStartSession(e, 2, 1.0));
    random_slate(e, 2, agent, slate);
    CALL_OK(shop_env.xStep(e, 2, slate, 1.0, &r)); /* a sound state passes */
    double bad[4] = {NAN, 0, 0, 0};
    CALL_OK(shop_set_user_preference(e, 2, bad));
    random_slate(e, 2, agent, slate);
    int rc = shop_env.xStep(e, 2, slate, 1.1, &r);
#ifdef DIVSIM_DEBUG_INVARIANTS
    ck_assert_int_eq(rc, DS_EINTERNAL);
    ck_assert_str_eq(e->err, "utility nan at slate position 0");
#else
    ck_assert_int_eq(rc, DS_OK);
    ck_assert_int_eq(r.click, -1);
#endif
    gsl_rng_free(agent);
    shop_env.xDestroy(e);
    streams_free(&s);
}
END_TEST

/* The checker itself, in every build: each broken quantity is named, with its
 * value and slate position. */
START_TEST(test_step_checker_names_the_quantity)
{
    double v[3] = {0.5, -1.0, 2.0}, prob[3] = {0.2, 0.1, 0.3};
    env_response out = {.dwell = 0.01, .purchase_delay = 0, .revenue = 3.5};
    char err[ERR_LEN] = "";
    ck_assert_int_eq(shop_check_step(v, prob, 3, 0.4, &out, err), DS_OK);
    v[1] = NAN;
    ck_assert_int_eq(shop_check_step(v, prob, 3, 0.4, &out, err), DS_EINTERNAL);
    ck_assert_str_eq(err, "utility nan at slate position 1");
    v[1] = -INFINITY;
    ck_assert_int_eq(shop_check_step(v, prob, 3, 0.4, &out, err), DS_EINTERNAL);
    ck_assert_str_eq(err, "utility -inf at slate position 1");
    v[1] = -1.0;
    prob[2] = 1.5;
    ck_assert_int_eq(shop_check_step(v, prob, 3, 0.4, &out, err), DS_EINTERNAL);
    ck_assert_str_eq(err, "click probability 1.5 at slate position 2");
    prob[2] = NAN;
    ck_assert_int_eq(shop_check_step(v, prob, 3, 0.4, &out, err), DS_EINTERNAL);
    ck_assert_str_eq(err, "click probability nan at slate position 2");
    prob[2] = 0.75; /* each in [0, 1], but 1.05 together */
    ck_assert_int_eq(shop_check_step(v, prob, 3, 0.4, &out, err), DS_EINTERNAL);
    ck_assert_str_eq(err, "click probabilities sum to 1.05");
    prob[2] = 0.3;
    ck_assert_int_eq(shop_check_step(v, prob, 3, -0.25, &out, err), DS_EINTERNAL);
    ck_assert_str_eq(err, "leave probability -0.25");
    out.dwell = -1;
    ck_assert_int_eq(shop_check_step(v, prob, 3, 0.4, &out, err), DS_EINTERNAL);
    ck_assert_str_eq(err, "dwell -1 hours");
    out.dwell = 0.01;
    out.revenue = INFINITY;
    ck_assert_int_eq(shop_check_step(v, prob, 3, 0.4, &out, err), DS_EINTERNAL);
    ck_assert_str_eq(err, "purchase delay 0, revenue inf");
}
END_TEST

/* ------------------------------------------------ sessions, return, churn */

/* visit_rate_sd = 0 makes every base rate exactly visit_rate, so the mean of
 * many next-visit gaps (exponential: standard error mean/sqrt(n)) reveals the
 * current rate. */
static void check_rate(env *e, int user, double rate)
{
    int n = 20000;
    double sum = 0, next;
    for (int i = 0; i < n; i++) {
        CALL_OK(shop_env.xNextVisit(e, user, 100.0, &next));
        sum += next - 100.0;
    }
    double mean = sum / n;
    ck_assert_msg(fabs(mean - 1 / rate) < 5 / rate / sqrt(n), "mean gap %g, expected %g",
                  mean, 1 / rate);
}

/* Runs one session of user from time t with a fixed slate; returns the last response. */
static env_response run_session(env *e, int user, double t, int *steps)
{
    int slate[5] = {0, 1, 2, 3, 4};
    env_response r;
    CALL_OK(shop_env.xStartSession(e, user, t));
    *steps = 0;
    do {
        CALL_OK(shop_env.xStep(e, user, slate, t, &r));
        REQUIRE(++*steps <= e->spec.max_steps, "session over %d steps", *steps);
        t += r.dwell;
    } while (!r.done);
    return r;
}

START_TEST(test_dissatisfied_users_churn)
{
    shop_config c = small_config();
    c.visit_rate = 0.5;
    c.visit_rate_sd = 0;
    c.no_click_utility = 60; /* clicks have probability < e^{-40} */
    c.leave_bias = -200;     /* only the step cap ends a session */
    c.max_steps = 4;
    streams s;
    streams_init(&s, 41);
    env *e = make_env(&c, &s);
    int steps, user = 6;
    check_rate(e, user, 0.5);
    for (int session = 1; session <= c.churn_patience; session++) {
        env_response r = run_session(e, user, 10.0 * session, &steps);
        ck_assert_int_eq(steps, c.max_steps);
        ck_assert_int_eq(r.churned, session == c.churn_patience);
        if (session == 1) /* satisfaction 0: the rate falls by e^{-gain * ref} */
            check_rate(e, user, 0.5 * exp(-c.return_gain * c.satisfaction_ref));
    }
    double next;
    CALL_OK(shop_env.xNextVisit(e, user, 50, &next));
    ck_assert(isinf(next));
    ck_assert_int_eq(shop_env.xStartSession(e, user, 60), DS_EINPUT);
    shop_env.xDestroy(e);
    streams_free(&s);
}
END_TEST

START_TEST(test_rate_clipped)
{
    shop_config c = small_config();
    c.visit_rate = 0.5;
    c.visit_rate_sd = 0;
    c.leave_bias = -200;
    c.max_steps = 3;
    c.churn_patience = 0;
    c.return_gain = 10;
    streams s;
    streams_init(&s, 42);
    c.no_click_utility = 60; /* never clicks: e^{-2}, then e^{-4} < floor */
    env *e = make_env(&c, &s);
    int steps;
    run_session(e, 0, 1, &steps);
    check_rate(e, 0, 0.5 * exp(-2));
    run_session(e, 0, 2, &steps);
    check_rate(e, 0, 0.5 * c.rate_floor);
    shop_env.xDestroy(e);
    c.no_click_utility = -200; /* always clicks: satisfaction 1, e^{8} > ceiling */
    e = make_env(&c, &s);
    env_response r = run_session(e, 0, 1, &steps);
    ck_assert_int_eq(r.churned, 0);
    check_rate(e, 0, 0.5 * c.rate_ceiling);
    shop_env.xDestroy(e);
    streams_free(&s);
}
END_TEST

/* --------------------------------------------------------- locality */

START_TEST(test_only_the_user_changes)
{
    shop_config c = small_config();
    c.users = 30;
    streams s;
    streams_init(&s, 51);
    env *e = make_env(&c, &s);
    size_t d = (size_t)c.dim, nt = (size_t)c.topics;
    double *x = malloc(sizeof(double) * c.users * d), *sat = malloc(sizeof(double) * c.users * nt);
    for (int u = 0; u < c.users; u++) {
        CALL_OK(shop_user_preference(e, u, x + u * d, NULL));
        for (size_t t = 0; t < nt; t++)
            CALL_OK(shop_user_satiation(e, u, (int)t, sat + u * nt + t));
    }
    gsl_rng *agent = rng_stream_new(51, RNG_AGENT_SAMPLING);
    int slate[5], user = 7, clicks = 0;
    double t = 5;
    for (int session = 0; session < 5; session++) {
        t += 10;
        CALL_OK(shop_env.xStartSession(e, user, t));
        env_response r = {0};
        while (!r.done) {
            random_slate(e, user, agent, slate);
            CALL_OK(shop_env.xStep(e, user, slate, t, &r));
            clicks += r.click >= 0;
            t += r.dwell;
        }
    }
    ck_assert_int_gt(clicks, 0); /* the user's clicks wrote its satiation and taste */
    double y[4], st;
    for (int u = 0; u < c.users; u++) {
        CALL_OK(shop_user_preference(e, u, y, NULL));
        int same = memcmp(y, x + u * d, sizeof(double) * d) == 0;
        ck_assert_msg(same == (u != user), "user %d %s", u, same ? "unchanged" : "changed");
        for (size_t k = 0; k < nt && u != user; k++) {
            CALL_OK(shop_user_satiation(e, u, (int)k, &st));
            REQUIRE(st == sat[u * nt + k], "user %d topic %zu satiation changed", u, k);
        }
    }
    gsl_rng_free(agent);
    free(x);
    free(sat);
    shop_env.xDestroy(e);
    streams_free(&s);
}
END_TEST

/* ------------------------------------------------------ determinism */

/* 1000 steps over several users; returns the responses in out [1000] and the
 * next-visit times drawn in visits [1000] (unused entries left as they were). */
static void run_trace(uint64_t seed, env_response *out, double *visits)
{
    shop_config c = small_config();
    c.purchase_bias = -1;
    c.purchase_delay = 2;
    streams s;
    streams_init(&s, seed);
    env *e = make_env(&c, &s);
    gsl_rng *agent = rng_stream_new(99, RNG_AGENT_SAMPLING);
    int slate[5], user = 0, in_session = 0, n_visits = 0;
    double t = 0;
    for (int step = 0; step < 1000; step++) {
        double next = INFINITY;
        for (int tries = 0; !in_session && isinf(next); tries++) {
            REQUIRE(tries < c.users, "every user churned");
            user = (user + 7) % c.users; /* the next user who has not churned */
            CALL_OK(shop_env.xNextVisit(e, user, t, &next));
            if (!isinf(next))
                visits[n_visits++] = next; /* one per session, so it fits [1000] */
        }
        if (!in_session) {
            t = next;
            CALL_OK(shop_env.xStartSession(e, user, t));
            in_session = 1;
        }
        random_slate(e, user, agent, slate);
        CALL_OK(shop_env.xStep(e, user, slate, t, &out[step]));
        t += out[step].dwell;
        in_session = !out[step].done;
    }
    gsl_rng_free(agent);
    shop_env.xDestroy(e);
    streams_free(&s);
}

static int same_response(const env_response *a, const env_response *b)
{
    return a->click == b->click && a->item == b->item && a->purchased == b->purchased &&
           a->purchase_delay == b->purchase_delay && a->revenue == b->revenue &&
           a->dwell == b->dwell && a->done == b->done && a->churned == b->churned;
}

START_TEST(test_determinism)
{
    static env_response a[1000], b[1000], other[1000];
    static double va[1000], vb[1000], vo[1000];
    run_trace(7, a, va);
    run_trace(7, b, vb);
    int differ = 0, clicks = 0, purchases = 0;
    for (int i = 0; i < 1000; i++) {
        REQUIRE(same_response(&a[i], &b[i]), "step %d differs", i);
        REQUIRE(va[i] == vb[i], "visit %d differs", i);
        clicks += a[i].click >= 0;
        purchases += a[i].purchased;
    }
    ck_assert_int_gt(clicks, 10);
    ck_assert_int_gt(purchases, 0);
    run_trace(8, other, vo);
    for (int i = 0; i < 1000; i++)
        differ += !same_response(&a[i], &other[i]);
    ck_assert_int_gt(differ, 100); /* another seed gives another trace */
}
END_TEST

/* --------------------------------------------------- catalogue churn */

START_TEST(test_no_churn_identity)
{
    shop_config c = small_config();
    streams s;
    streams_init(&s, 61);
    env *e = make_env(&c, &s);
    const int *cand;
    int n;
    ck_assert_int_eq(e->spec.n_items, c.items);
    ck_assert(isinf(shop_env.xNextEvent(e)));
    CALL_OK(shop_env.xCandidates(e, 0, &cand, &n));
    ck_assert_int_eq(n, c.items);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(cand[i], i);
    shop_env.xDestroy(e);
    streams_free(&s);
}
END_TEST

/* Launches at rate L and exponential lifetimes of mean T make the active count an
 * M/M/infinity queue: stationary Poisson(L T) = 100 here. Its time average over
 * 10000 h (correlation time T = 50 h) has variance about 2 * 100 * 50 / 10000 = 1,
 * so the tolerance 5 is 5 standard errors.
 * Ids: a launch takes a never-used id while any remain; after that, the id that
 * has been free longest (retired at the earliest event among the free ids). A
 * launched id holds a freshly drawn item, not the placeholder or retired one. */
START_TEST(test_catalogue_churn)
{
    shop_config c = small_config();
    c.items = 100;
    c.launch_rate = 2;
    c.item_lifetime = 50;
    c.churn_patience = 0; /* the test user must keep coming back */
    streams s;
    streams_init(&s, 62);
    env *e = make_env(&c, &s);
    int cap = e->spec.n_items, dim, user = 0;
    ck_assert_int_eq(cap, 2 * c.items);
    unsigned char *active = calloc((size_t)cap, 1), *now = calloc((size_t)cap, 1);
    unsigned char *used = calloc((size_t)cap, 1); /* [cap] ever active */
    long *retired_at = malloc(sizeof(long) * (size_t)cap); /* [cap] event of last retirement */
    const double *latent = shop_env.xLatents(e, &dim);
    double *old_latent = malloc(sizeof(double) * (size_t)cap * dim); /* [cap][dim] */
    memcpy(old_latent, latent, sizeof(double) * (size_t)cap * dim);
    const int *cand;
    int n, prev_n = c.items, checked_retired = 0, launches = 0, retirements = 0;
    int unused = cap, recycled = 0;
    long event = 0;
    CALL_OK(shop_env.xCandidates(e, user, &cand, &n));
    ck_assert_int_eq(n, c.items);
    for (int i = 0; i < n; i++) {
        active[cand[i]] = used[cand[i]] = 1;
        unused--;
    }
    for (int i = 0; i < cap; i++)
        retired_at[i] = -1; /* the spare ids count as free since before any event */
    double area = 0, last = 500, t;
    while ((t = shop_env.xNextEvent(e)) <= 10500) {
        CALL_OK(shop_env.xAdvance(e, t));
        event++;
        REQUIRE(shop_env.xNextEvent(e) > t, "event at %g not consumed", t);
        if (t > 500) {
            area += prev_n * (t - last);
            last = t;
        }
        CALL_OK(shop_env.xCandidates(e, user, &cand, &n));
        REQUIRE(abs(n - prev_n) == 1, "active count %d -> %d", prev_n, n);
        memset(now, 0, (size_t)cap);
        for (int i = 0; i < n; i++) {
            REQUIRE(cand[i] >= 0 && cand[i] < cap, "candidate %d out of range", cand[i]);
            REQUIRE(!now[cand[i]], "item %d offered twice", cand[i]);
            now[cand[i]] = 1;
        }
        int added = -1, removed = -1, changes = 0;
        for (int i = 0; i < cap; i++)
            if (now[i] != active[i]) {
                changes++;
                *(now[i] ? &added : &removed) = i;
            }
        REQUIRE(changes == 1, "%d items changed in one event", changes);
        if (added >= 0) {
            launches++;
            if (unused > 0) {
                REQUIRE(!used[added], "launch %d reused id %d while %d ids were unused",
                        launches, added, unused);
                used[added] = 1;
                unused--;
            } else {
                long oldest = LONG_MAX;
                for (int i = 0; i < cap; i++)
                    if (!active[i] && retired_at[i] < oldest)
                        oldest = retired_at[i];
                REQUIRE(retired_at[added] == oldest,
                        "launch %d took id %d, retired at event %ld, but an id retired at "
                        "event %ld was free",
                        launches, added, retired_at[added], oldest);
                recycled++;
            }
            const double *q = latent + (size_t)added * dim;
            REQUIRE(fabs(dot(q, q, dim) - 1) < 1e-12, "launched item %d not unit norm", added);
            REQUIRE(memcmp(q, old_latent + (size_t)added * dim, sizeof(double) * dim) != 0,
                    "launched item %d was not redrawn", added);
            memcpy(old_latent + (size_t)added * dim, q, sizeof(double) * dim);
            REQUIRE(e->spec.item_topic[added] >= 0 && e->spec.item_topic[added] < c.topics,
                    "launched item %d has topic %d", added, e->spec.item_topic[added]);
        } else {
            retirements++;
            retired_at[removed] = event;
        }
        if (removed >= 0 && checked_retired < 20) { /* a retired item cannot be shown */
            int slate[5];
            env_response r;
            CALL_OK(shop_env.xStartSession(e, user, t));
            memcpy(slate, cand, sizeof(slate));
            slate[2] = removed;
            ck_assert_int_eq(shop_env.xStep(e, user, slate, t, &r), DS_EINPUT);
            CALL_OK(shop_env.xStep(e, user, cand, t, &r));
            checked_retired++;
        }
        memcpy(active, now, (size_t)cap);
        prev_n = n;
    }
    area += prev_n * (10500 - last);
    double mean = area / 10000;
    ck_assert_msg(fabs(mean - 100) < 5, "time-average active items %g, expected 100", mean);
    ck_assert_int_gt(launches, 15000);   /* 2/h over 10500 h: ~21000 */
    ck_assert_int_gt(retirements, 15000);
    ck_assert_int_eq(unused, 0);         /* every slot was used... */
    ck_assert_int_gt(recycled, 15000);   /* ...and nearly all launches recycled an id */
    free(active);
    free(now);
    free(used);
    free(retired_at);
    free(old_latent);
    shop_env.xDestroy(e);
    streams_free(&s);
}
END_TEST

/* Runs the catalogue's events up to time `until`; *floor_time and *floor_count
 * get the time spent with exactly `level` items active and the number of such
 * spells that ended, and each event leaving `level` must move in direction
 * `leave` (+1: a launch, -1: a retirement). The active count stays in
 * [lo, hi]. Returns the final active count. */
static int run_catalogue(env *e, double until, int level, int leave, int lo, int hi,
                         double *floor_time, long *floor_count)
{
    const int *cand;
    int n, prev;
    double t, since = 0;
    CALL_OK(shop_env.xCandidates(e, 0, &cand, &prev));
    *floor_time = 0;
    *floor_count = 0;
    while ((t = shop_env.xNextEvent(e)) <= until) {
        CALL_OK(shop_env.xAdvance(e, t));
        CALL_OK(shop_env.xCandidates(e, 0, &cand, &n));
        REQUIRE(n >= lo && n <= hi, "%d items active, outside [%d, %d]", n, lo, hi);
        if (prev == level) {
            REQUIRE(n == level + leave, "%d items active after %d", n, level);
            *floor_time += t - since;
            ++*floor_count;
        }
        if (n == level)
            since = t;
        prev = n;
    }
    return prev;
}

/* Retirements pause while only `slate` items are active. Without launches the
 * catalogue shrinks to exactly `slate` items and then nothing happens; with
 * launches (L = 0.5/h) and lifetimes of 1 h, the catalogue keeps hitting
 * `slate` = 5 items, where retirement would run at 5/h: each such spell must
 * end with a launch, after an exponential wait of mean 1/L = 2 h (mean over the
 * spells within 5 standard errors, 2/sqrt(spells)). */
START_TEST(test_catalogue_churn_pause)
{
    shop_config c = small_config();
    c.items = 20;
    c.item_lifetime = 10;
    streams s;
    streams_init(&s, 63);
    env *e = make_env(&c, &s);
    double wait;
    long spells;
    int n = run_catalogue(e, 1e9, c.slate, +1, c.slate, c.items, &wait, &spells);
    ck_assert_int_eq(n, c.slate);
    ck_assert(isinf(shop_env.xNextEvent(e)));
    const int *cand;
    env_response r;
    CALL_OK(shop_env.xCandidates(e, 0, &cand, &n));
    CALL_OK(shop_env.xStartSession(e, 0, 1.0));
    CALL_OK(shop_env.xStep(e, 0, cand, 1.0, &r)); /* the last items still fill a slate */
    shop_env.xDestroy(e);
    c.launch_rate = 0.5;
    c.item_lifetime = 1;
    e = make_env(&c, &s);
    run_catalogue(e, 4000, c.slate, +1, c.slate, 2 * c.items, &wait, &spells);
    ck_assert_int_gt(spells, 300); /* most of the time is spent at the floor */
    double mean = wait / spells;
    ck_assert_msg(fabs(mean - 2) < 5 * 2 / sqrt((double)spells),
                  "mean wait at %d items %g h, expected 2 h", c.slate, mean);
    shop_env.xDestroy(e);
    streams_free(&s);
}
END_TEST

/* A launch finding the catalogue full (2 x items ids active) is lost. Without
 * retirements, the spare ids are launched in order, items, items + 1, ..., and
 * then nothing more happens. With fast launches (L = 100/h) and lifetimes of
 * 1000 h, the catalogue is mostly full; each spell at full capacity must end
 * with a retirement, after an exponential wait of mean T / (2 items) = 1000/60 h
 * (retirements alone; mean over the spells within 5 standard errors). */
START_TEST(test_catalogue_churn_full)
{
    shop_config c = small_config();
    c.items = 30;
    c.launch_rate = 1;
    streams s;
    streams_init(&s, 64);
    env *e = make_env(&c, &s);
    int cap = e->spec.n_items;
    const int *cand;
    int n;
    double t;
    ck_assert_int_eq(cap, 2 * c.items);
    for (int id = c.items; id < cap; id++) {
        t = shop_env.xNextEvent(e);
        REQUIRE(isfinite(t), "no launch for id %d", id);
        CALL_OK(shop_env.xAdvance(e, t));
        CALL_OK(shop_env.xCandidates(e, 0, &cand, &n));
        REQUIRE(n == id + 1 && cand[n - 1] == id, "launch %d: %d active, last id %d",
                id - c.items, n, cand[n - 1]);
    }
    ck_assert(isinf(shop_env.xNextEvent(e)));
    CALL_OK(shop_env.xAdvance(e, 1e9));
    CALL_OK(shop_env.xCandidates(e, 0, &cand, &n));
    ck_assert_int_eq(n, cap);
    shop_env.xDestroy(e);
    c.launch_rate = 100;
    c.item_lifetime = 1000;
    e = make_env(&c, &s);
    double wait;
    long spells;
    run_catalogue(e, 50000, cap, -1, c.slate, cap, &wait, &spells);
    ck_assert_int_gt(spells, 1000);
    double mean = wait / spells, want = c.item_lifetime / cap;
    ck_assert_msg(fabs(mean - want) < 5 * want / sqrt((double)spells),
                  "mean wait at full capacity %g h, expected %g h", mean, want);
    shop_env.xDestroy(e);
    streams_free(&s);
}
END_TEST

/* ---------------------------------------------------------- validation */

START_TEST(test_validation)
{
    char err[ERR_LEN];
    shop_config c = small_config();
    CALL_OK(shop_env.xValidate(&c, err));
    c.slate = c.items + 1;
    ck_assert_int_eq(shop_env.xValidate(&c, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "'slate'"));
    c = small_config();
    c.dim = 0;
    ck_assert_int_eq(shop_env.xValidate(&c, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "'dim'"));
    c = small_config();
    c.rate_floor = 0; /* a zero visit rate would make the next visit 1/0 hours away */
    ck_assert_int_eq(shop_env.xValidate(&c, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "'rate_floor'"));
    c.rate_floor = 1e-6;
    CALL_OK(shop_env.xValidate(&c, err));
    c = small_config();
    c.users = 1000000000; /* 10^9 users of ~200 bytes: far over the limit */
    c.dim = 64;
    env dummy, *e = &dummy;
    streams s;
    streams_init(&s, 71);
    ck_assert_int_eq(shop_env.xCreate(&c, &s.ctx, &e, err), DS_EINPUT);
    ck_assert_ptr_null(e);
    ck_assert_ptr_nonnull(strstr(err, "GiB"));
    c = small_config();
    c.launch_rate = 1;
    s.ctx.item_churn = NULL;
    ck_assert_int_eq(shop_env.xCreate(&c, &s.ctx, &e, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "'item_churn'"));
    shop_env.xDestroy(NULL);
    streams_free(&s);
}
END_TEST

START_TEST(test_bad_calls)
{
    shop_config c = small_config();
    streams s;
    streams_init(&s, 72);
    env *e = make_env(&c, &s);
    int dup[5] = {1, 2, 3, 2, 4}, out_of_range[5] = {1, 2, 3, 4, 60}, ok[5] = {1, 2, 3, 4, 5};
    env_response r;
    ck_assert_int_eq(shop_env.xStep(e, 0, ok, 1, &r), DS_EINPUT); /* no session yet */
    CALL_OK(shop_env.xStartSession(e, 0, 5));
    ck_assert_int_eq(shop_env.xStep(e, 0, dup, 5, &r), DS_EINPUT);
    ck_assert_int_eq(shop_env.xStep(e, 0, out_of_range, 5, &r), DS_EINPUT);
    ck_assert_int_eq(shop_env.xStep(e, 0, ok, 4, &r), DS_EINPUT); /* time went back */
    CALL_OK(shop_env.xStep(e, 0, ok, 5, &r));
    ck_assert_int_eq(shop_env.xStartSession(e, c.users, 5), DS_EINPUT);
    double v;
    ck_assert_int_eq(shop_user_satiation(e, 0, c.topics, &v), DS_EINPUT);
    shop_env.xDestroy(e);
    streams_free(&s);
}
END_TEST

static Suite *shop_suite(void)
{
    Suite *s = suite_create("shop");
    TCase *model = tcase_create("model");
    tcase_set_timeout(model, 120);
    tcase_add_test(model, test_ou_transition);
    tcase_add_test(model, test_ou_noiseless);
    tcase_add_test(model, test_privileged_formula);
    tcase_add_test(model, test_appeal_and_price_multiplier_draws);
    tcase_add_test(model, test_mnl_frequencies);
    tcase_add_test(model, test_purchase_rate);
    tcase_add_test(model, test_live_purchase_and_leave);
    tcase_add_test(model, test_satiation_decay);
    tcase_add_test(model, test_satiation_rebase);
    tcase_add_test(model, test_step_invariants);
    tcase_add_test(model, test_step_checker_names_the_quantity);
    tcase_add_test(model, test_dissatisfied_users_churn);
    tcase_add_test(model, test_rate_clipped);
    suite_add_tcase(s, model);
    TCase *engine = tcase_create("engine");
    tcase_set_timeout(engine, 120);
    tcase_add_test(engine, test_only_the_user_changes);
    tcase_add_test(engine, test_determinism);
    tcase_add_test(engine, test_no_churn_identity);
    tcase_add_test(engine, test_catalogue_churn);
    tcase_add_test(engine, test_catalogue_churn_pause);
    tcase_add_test(engine, test_catalogue_churn_full);
    tcase_add_test(engine, test_validation);
    tcase_add_test(engine, test_bad_calls);
    suite_add_tcase(s, engine);
    return s;
}

int main(void)
{
    gsl_set_error_handler_off();
    SRunner *sr = srunner_create(shop_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
