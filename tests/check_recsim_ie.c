/* Tests of the recsim_ie environment (RecSim's interest evolution): RecSim's
 * constants, the proportional choice model against its formula, exact budget
 * and interest arithmetic, the document and user samplers, episode ends, the
 * random policy's first-step click rate in closed form, the oracle mapping,
 * and every agent on changing candidate sets. Statistical checks use fixed
 * seeds; each states its tolerance (a false alarm below about 1 in 10^4 for
 * an independent seed). */
#include "../agents/agent.h"
#include "../envs/recsim_ie.h"
#include "../sim/common.h"
#include "../sim/rng.h"
#include "../sim/run.h"
#include "testutil.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NC RECSIM_IE_CLUSTERS

extern const agent_type oracle_agent, random_agent;

/* RecSim's user_update_alpha: alpha * utility_range = 0.9 * (1.0 / 3.4). */
static const double UPDATE_ALPHA = 0.9 * (1.0 / 3.4);

typedef struct {
    gsl_rng *catalogue, *users, *choices, *agent;
    env *e;
} fixture;

static recsim_ie_config defaults(void)
{
    recsim_ie_config c;
    char err[ERR_LEN];
    CALL_OK(param_defaults(&recsim_ie_env.params, &c, err));
    return c;
}

static void fixture_open(fixture *f, const recsim_ie_config *c, uint64_t seed,
                         reward_kind reward)
{
    f->catalogue = rng_stream_new(seed, RNG_CATALOGUE);
    f->users = rng_stream_new(seed, RNG_USERS);
    f->choices = rng_stream_new(seed, RNG_CHOICES);
    f->agent = rng_stream_new(seed, RNG_AGENT_SAMPLING);
    ck_assert(f->catalogue && f->users && f->choices && f->agent);
    env_context ctx = {.catalogue = f->catalogue, .users = f->users, .choices = f->choices,
                       .reward = reward};
    char err[ERR_LEN];
    int rc = recsim_ie_env.xCreate(c, &ctx, &f->e, err);
    ck_assert_msg(rc == DS_OK, "%s", err);
}

static void fixture_close(fixture *f)
{
    recsim_ie_env.xDestroy(f->e);
    gsl_rng_free(f->catalogue);
    gsl_rng_free(f->users);
    gsl_rng_free(f->choices);
    gsl_rng_free(f->agent);
}

/* A uniformly random slate of k distinct current candidates. */
static void random_slate(fixture *f, int user, int *slate, int k)
{
    const int *cand;
    int n;
    CALL_OK(recsim_ie_env.xCandidates(f->e, user, &cand, &n));
    for (int j = 0; j < k; j++) {
        int again;
        do {
            slate[j] = cand[gsl_rng_uniform_int(f->agent, (unsigned long)n)];
            again = 0;
            for (int i = 0; i < j; i++)
                again |= slate[i] == slate[j];
        } while (again);
    }
}

static int cluster_of(const fixture *f, int item)
{
    int c;
    CALL_OK(recsim_ie_item(f->e, item, &c, NULL));
    return c;
}

/* ---------------------------------------------------------------- constants */

START_TEST(defaults_are_recsims)
{
    recsim_ie_config c = defaults();
    /* create_environment's arguments (num_candidates and slate_size have no
     * default there: 10 and 2 are the reference configuration) and the
     * constants of UtilityModelUserSampler, UtilityModelVideoSampler and
     * IEvUserModel. */
    ck_assert_int_eq(c.num_candidates, 10);
    ck_assert_int_eq(c.slate, 2);
    ck_assert_int_eq(c.resample_documents, 1);
    ck_assert_int_eq(c.max_steps, 27000);
    ck_assert(c.time_budget == 200.0 && c.step_penalty == 0.5 && c.video_length == 4.0);
    ck_assert(c.no_click_mass == 1.0 && c.min_normalizer == -1.0);
    ck_assert(c.min_utility == -3.0 && c.max_utility == 3.0 && c.quality_sd == 0.1);
    ck_assert(c.budget_extension == 0.9 && c.quality_range == 3.4);
    ck_assert(c.user_quality_factor == 0.0 && c.document_quality_factor == 1.0);
    ck_assert(c.alpha_x_intercept == 1.0 && c.alpha_y_intercept == 0.3);

    /* Cluster means: numpy's linspace(-3, 0, 14) and linspace(0, 3, 6), as
     * printed by Python (repr) for i * step + start. */
    static const double expected[NC] = {
        -3.0, -2.769230769230769, -2.5384615384615383, -2.3076923076923075,
        -2.0769230769230766, -1.846153846153846, -1.6153846153846154, -1.3846153846153846,
        -1.1538461538461537, -0.9230769230769229, -0.6923076923076921, -0.46153846153846123,
        -0.23076923076923084, 0.0, 0.0, 0.6, 1.2, 1.7999999999999998, 2.4, 3.0};
    fixture f;
    fixture_open(&f, &c, 1, REWARD_REVENUE);
    for (int i = 0; i < NC; i++) {
        double mean;
        CALL_OK(recsim_ie_cluster_mean(f.e, i, &mean));
        ck_assert_msg(mean == expected[i], "cluster %d mean %.17g", i, mean);
    }
    const env_spec *s = &f.e->spec;
    ck_assert_int_eq(s->n_items, 10 * NC); /* cluster-blocked ids with resampling */
    ck_assert_int_eq(s->n_topics, NC);
    for (int i = 0; i < s->n_items; i++)
        REQUIRE(s->item_topic[i] == i / 10 && s->item_price[i] == 4.0, "item %d", i);
    int dim;
    const double *latent = recsim_ie_env.xLatents(f.e, &dim);
    ck_assert_int_eq(dim, NC);
    for (int i = 0; i < s->n_items; i++)
        for (int d = 0; d < NC; d++)
            REQUIRE(latent[i * NC + d] == (d == i / 10), "latent %d %d", i, d);
    fixture_close(&f);
}
END_TEST

START_TEST(validation_rejects_impossible_settings)
{
    char err[ERR_LEN];
    recsim_ie_config c = defaults();
    c.slate = 11;
    ck_assert_int_eq(recsim_ie_env.xValidate(&c, err), DS_EINPUT);
    ck_assert(strstr(err, "'slate'") != NULL);
    c = defaults();
    c.no_click_mass = -1.0; /* no-click score 0: a slate of zero scores has no choice */
    ck_assert_int_eq(recsim_ie_env.xValidate(&c, err), DS_EINPUT);
    c = defaults();
    ck_assert_int_eq(recsim_ie_env.xValidate(&c, err), DS_OK);
}
END_TEST

/* ------------------------------------------------------------------ choice */

/* Click frequencies of a fixed slate, the user's state restored before each of
 * 200,000 steps, against s_j / (s_0 + sum s), s_j = x_{c_j} + 1, s_0 = 2: a
 * chi-square test (df = 4) must not reject at 0.001, while the same counts
 * must reject the multinomial logit e^{x_c} / (e^1 + sum e^{x}) at 1e-9 (so the
 * test can tell the two models apart). The slot whose interest is -1 has
 * score 0 and must never be clicked. */
START_TEST(choice_frequencies_follow_the_proportional_formula)
{
    recsim_ie_config c = defaults();
    c.resample_documents = 0;
    c.num_candidates = 40;
    c.slate = 5;
    fixture f;
    fixture_open(&f, &c, 7, REWARD_REVENUE);
    CALL_OK(recsim_ie_env.xStartSession(f.e, 0, 0.0));
    /* Five documents of distinct clusters among the fixed 40. */
    int slate[5], n = 0;
    for (int i = 0; i < 40 && n < 5; i++) {
        int dup = 0;
        for (int j = 0; j < n; j++)
            dup |= cluster_of(&f, slate[j]) == cluster_of(&f, i);
        if (!dup)
            slate[n++] = i;
    }
    ck_assert_int_eq(n, 5);
    static const double slot_interest[5] = {0.9, 0.3, -0.4, -1.0, 0.0};
    double interest[NC];
    for (int i = 0; i < NC; i++)
        interest[i] = 0.5;
    for (int j = 0; j < 5; j++)
        interest[cluster_of(&f, slate[j])] = slot_interest[j];
    double total = 2.0, prob[6], logit_total = exp(1.0), logit[6];
    for (int j = 0; j < 5; j++) {
        total += slot_interest[j] + 1.0;
        logit_total += exp(slot_interest[j]);
    }
    for (int j = 0; j < 5; j++) {
        prob[j] = (slot_interest[j] + 1.0) / total;
        logit[j] = exp(slot_interest[j]) / logit_total;
    }
    prob[5] = 2.0 / total;
    logit[5] = exp(1.0) / logit_total;

    enum { N = 200000 };
    long count[6] = {0};
    for (int t = 0; t < N; t++) {
        CALL_OK(recsim_ie_set_user(f.e, interest, 200.0));
        env_response r;
        CALL_OK(recsim_ie_env.xStep(f.e, 0, slate, 0.0, &r));
        count[r.click >= 0 ? r.click : 5]++;
    }
    ck_assert_int_eq(count[3], 0);
    double chi = 0.0, chi_logit = 0.0;
    for (int j = 0; j < 6; j++) {
        if (j == 3)
            continue;
        double e = N * prob[j], el = N * logit[j];
        chi += (count[j] - e) * (count[j] - e) / e;
        chi_logit += (count[j] - el) * (count[j] - el) / el;
    }
    ck_assert_msg(gsl_cdf_chisq_Q(chi, 4) > 1e-3, "chi-square %g", chi);
    ck_assert_msg(gsl_cdf_chisq_Q(chi_logit, 4) < 1e-9, "logit chi-square %g", chi_logit);
    fixture_close(&f);
}
END_TEST

/* The privileged view maps the proportional model onto the MNL form exactly:
 * e^{utility} = x_c - min_normalizer, e^{no-click utility} = no_click_mass -
 * min_normalizer, and the value of a click is the watch time for the revenue
 * reward. The oracle (Dinkelbach on that form) then shows the k candidates of
 * highest interest: RecSim's greedy pCTR slate. */
static int view_utilities(void *ctx, int user, const int *items, int n, double *utility,
                          double *value, double *no_click_utility)
{
    env *e = ctx;
    return recsim_ie_env.xPrivileged(e, user, items, n, utility, value, no_click_utility);
}

START_TEST(oracle_view_is_the_proportional_model)
{
    recsim_ie_config c = defaults();
    c.num_candidates = 1000;
    c.slate = 10;
    fixture f;
    fixture_open(&f, &c, 3, REWARD_REVENUE);
    char err[ERR_LEN];
    agent_context ac = {.init = f.agent, .sampling = f.agent, .minibatch = f.agent,
                        .reward = REWARD_REVENUE,
                        .privileged = {f.e, view_utilities, NULL}};
    agent *oracle;
    ck_assert_int_eq(oracle_agent.xCreate(NULL, &f.e->spec, &ac, &oracle, err), DS_OK);
    oracle->type = &oracle_agent;
    oracle->spec = &f.e->spec;
    for (int session = 0; session < 20; session++) {
        CALL_OK(recsim_ie_env.xStartSession(f.e, session, 0.0));
        double interest[NC], budget;
        CALL_OK(recsim_ie_user(f.e, interest, &budget));
        budget = 2.5 + session; /* some below video_length */
        CALL_OK(recsim_ie_set_user(f.e, interest, budget));
        const int *cand;
        int n;
        CALL_OK(recsim_ie_env.xCandidates(f.e, session, &cand, &n));
        double *u = malloc((size_t)n * sizeof *u), *v = malloc((size_t)n * sizeof *v), v0;
        CALL_OK(recsim_ie_env.xPrivileged(f.e, session, cand, n, u, v, &v0));
        ck_assert_double_eq_tol(exp(v0), 2.0, 1e-15);
        int pool[NC] = {0}; /* candidates of each cluster */
        for (int i = 0; i < n; i++) {
            int cl = cluster_of(&f, cand[i]);
            pool[cl]++;
            REQUIRE(fabs(exp(u[i]) - (interest[cl] + 1.0)) <= 1e-15 * 2.0, "weight %d", i);
            REQUIRE(v[i] == fmin(budget, 4.0), "value %d", i);
        }
        observation obs = {.user = session, .candidates = cand, .n_candidates = n,
                           .since_last_visit = INFINITY};
        int slate[10];
        ck_assert_int_eq(oracle_agent.xAct(oracle, &obs, slate), DS_OK);
        /* The chosen interests are the 10 largest among the candidates (with
         * multiplicity): compare with the k-th largest. */
        double chosen_min = 2.0;
        int taken[NC] = {0};
        for (int j = 0; j < 10; j++) {
            int cl = cluster_of(&f, slate[j]);
            taken[cl]++;
            chosen_min = fmin(chosen_min, interest[cl]);
        }
        for (int cl = 0; cl < NC; cl++)
            REQUIRE(interest[cl] <= chosen_min || taken[cl] == pool[cl],
                    "cluster %d of interest %g left out for %g", cl, interest[cl], chosen_min);
        free(u);
        free(v);
    }
    oracle_agent.xDestroy(oracle);
    fixture_close(&f);
}
END_TEST

/* -------------------------------------------------- budget and interests */

/* Every step of 3,000 sessions of a random slate, checked exactly against
 * IEvUserModel: w = min(b, 4); after a click b = (b - w) + (alpha w) U with
 * U = 0 e + 1 q and alpha = 0.9 * (1 / 3.4); without one b = b - 0.5; the
 * session ends exactly when b <= 0. The interest in the clicked cluster moves
 * to clip(x +- a (1 - x)), a = -0.3 |x| + 0.3, and no other interest moves. */
START_TEST(budget_and_interest_arithmetic_is_exact)
{
    recsim_ie_config c = defaults();
    fixture f;
    fixture_open(&f, &c, 11, REWARD_REVENUE);
    long steps = 0, clicks = 0;
    for (int user = 0; user < 3000; user++) {
        CALL_OK(recsim_ie_env.xStartSession(f.e, user, 0.0));
        double budget;
        CALL_OK(recsim_ie_user(f.e, NULL, &budget));
        REQUIRE(budget == 200.0, "fresh budget %g", budget);
        for (int done = 0; !done; steps++) {
            double before[NC], after[NC];
            CALL_OK(recsim_ie_user(f.e, before, &budget));
            int slate[2];
            random_slate(&f, user, slate, 2);
            env_response r;
            CALL_OK(recsim_ie_env.xStep(f.e, user, slate, 0.0, &r));
            recsim_ie_step_info s;
            CALL_OK(recsim_ie_last_step(f.e, &s));
            REQUIRE(s.budget_before == budget, "budget before");
            double b = budget;
            if (r.click >= 0) {
                clicks++;
                double w = fmin(budget, 4.0);
                REQUIRE(r.item == slate[r.click] && r.purchased && r.revenue == w &&
                        s.watch_time == w, "watch time %g of budget %g", r.revenue, budget);
                int cl = cluster_of(&f, r.item);
                double x = before[cl];
                REQUIRE(s.cluster == cl && s.expected_utility == x + 1.0, "expected utility");
                b -= w;
                b += UPDATE_ALPHA * w * (0.0 * (x + 1.0) + 1.0 * s.quality);
                double a = (-0.3 / 1.0) * fabs(x) + 0.3;
                double moved = s.positive_update ? x + a * (1.0 - x) : x - a * (1.0 - x);
                moved = fmin(fmax(moved, -1.0), 1.0);
                if (!r.done) {
                    CALL_OK(recsim_ie_user(f.e, after, NULL));
                    for (int i = 0; i < NC; i++)
                        REQUIRE(after[i] == (i == cl ? moved : before[i]),
                                "interest %d: %.17g, expected %.17g", i, after[i],
                                i == cl ? moved : before[i]);
                }
                REQUIRE(s.interest_after == moved, "interest after");
            } else {
                REQUIRE(r.item == -1 && !r.purchased && r.revenue == 0.0, "no click");
                b -= 0.5;
            }
            REQUIRE(s.budget_after == b, "budget %.17g, expected %.17g", s.budget_after, b);
            REQUIRE(r.done == (b <= 0.0) && s.done == r.done, "done at budget %g", b);
            REQUIRE(r.dwell == 0.0 && !r.churned, "no dwell, no churn");
            done = r.done;
        }
        /* The session is over: the user can no longer be served. */
        const int *cand;
        int n;
        REQUIRE(recsim_ie_env.xCandidates(f.e, user, &cand, &n) == DS_EINPUT, "after the end");
    }
    ck_assert_int_gt(clicks, steps / 4);
    fixture_close(&f);
}
END_TEST

/* Hand-computed cases. Budget 2.5 < video_length, click on a document of known
 * quality q (fixed candidates): w = 2.5 and b = 0 + alpha * 2.5 * q. Interest
 * 0.5: a = 0.15, u = 0.075, so 0.575 or 0.425. Budget 0.5 and nothing
 * clickable (every interest -1, scores 0): b = 0, and 0 ends the session
 * (is_terminal is b <= 0); budget 0.6: b = 0.1 goes on, then -0.4 ends it. */
START_TEST(hand_computed_steps)
{
    recsim_ie_config c = defaults();
    c.resample_documents = 0;
    fixture f;
    fixture_open(&f, &c, 5, REWARD_REVENUE);
    int slate[2] = {0, 1};
    double x[NC];
    for (int i = 0; i < NC; i++)
        x[i] = 0.5;
    CALL_OK(recsim_ie_env.xStartSession(f.e, 0, 0.0));
    int clicked = 0;
    for (int t = 0; t < 100 && !clicked; t++) {
        CALL_OK(recsim_ie_set_user(f.e, x, 2.5));
        env_response r;
        CALL_OK(recsim_ie_env.xStep(f.e, 0, slate, 0.0, &r));
        if (r.click < 0)
            continue;
        clicked = 1;
        double q;
        int cl;
        CALL_OK(recsim_ie_item(f.e, r.item, &cl, &q));
        recsim_ie_step_info s;
        CALL_OK(recsim_ie_last_step(f.e, &s));
        ck_assert(r.revenue == 2.5);
        ck_assert(s.budget_after == UPDATE_ALPHA * 2.5 * q);
        ck_assert(r.done == (q <= 0.0));
        ck_assert_double_eq_tol(s.interest_after, s.positive_update ? 0.575 : 0.425, 1e-15);
    }
    ck_assert(clicked);

    for (int i = 0; i < NC; i++)
        x[i] = -1.0;
    env_response r;
    CALL_OK(recsim_ie_env.xStartSession(f.e, 1, 0.0));
    CALL_OK(recsim_ie_set_user(f.e, x, 0.5));
    CALL_OK(recsim_ie_env.xStep(f.e, 1, slate, 0.0, &r));
    ck_assert(r.click == -1 && r.done);
    CALL_OK(recsim_ie_env.xStartSession(f.e, 2, 0.0));
    CALL_OK(recsim_ie_set_user(f.e, x, 0.6));
    CALL_OK(recsim_ie_env.xStep(f.e, 2, slate, 0.0, &r));
    double b;
    CALL_OK(recsim_ie_user(f.e, NULL, &b));
    ck_assert(r.click == -1 && !r.done && b == 0.6 - 0.5);
    CALL_OK(recsim_ie_env.xStep(f.e, 2, slate, 0.0, &r));
    ck_assert(r.click == -1 && r.done);
    ck_assert_int_eq(recsim_ie_env.xStep(f.e, 2, slate, 0.0, &r), DS_EINPUT);
    fixture_close(&f);
}
END_TEST

/* The interest moves toward the document with probability (x + 1) / 2: with x =
 * 0.4 reset before each of 40,000 steps, the share of positive updates among
 * the clicks must be within 4.5 standard errors of 0.7. */
START_TEST(interest_moves_toward_with_probability_half_x_plus_one)
{
    recsim_ie_config c = defaults();
    c.resample_documents = 0;
    fixture f;
    fixture_open(&f, &c, 13, REWARD_REVENUE);
    CALL_OK(recsim_ie_env.xStartSession(f.e, 0, 0.0));
    double x[NC];
    for (int i = 0; i < NC; i++)
        x[i] = 0.4;
    int slate[2] = {2, 3};
    long clicks = 0, positive = 0;
    for (int t = 0; t < 40000; t++) {
        CALL_OK(recsim_ie_set_user(f.e, x, 200.0));
        env_response r;
        CALL_OK(recsim_ie_env.xStep(f.e, 0, slate, 0.0, &r));
        recsim_ie_step_info s;
        CALL_OK(recsim_ie_last_step(f.e, &s));
        if (r.click < 0)
            continue;
        clicks++;
        positive += s.positive_update;
        /* a = 0.3 - 0.3 * 0.4 = 0.18; u = 0.18 * 0.6 = 0.108 */
        REQUIRE(fabs(s.interest_after - (s.positive_update ? 0.508 : 0.292)) < 1e-15,
                "interest after %.17g", s.interest_after);
    }
    double share = (double)positive / clicks, se = sqrt(0.7 * 0.3 / clicks);
    ck_assert_msg(fabs(share - 0.7) < 4.5 * se, "share %g of %ld clicks", share, clicks);
    fixture_close(&f);
}
END_TEST

/* ------------------------------------------------------------- samplers */

/* Resampled candidate sets: 20,000 sets of 10 documents. Clusters uniform over
 * 20 (chi-square, df = 19, not rejected at 0.001); ids cluster-blocked,
 * distinct, and the only ones a slate may use. */
START_TEST(resampled_documents_are_uniform_over_clusters)
{
    recsim_ie_config c = defaults();
    fixture f;
    fixture_open(&f, &c, 17, REWARD_REVENUE);
    long count[NC] = {0}, total = 0;
    for (int user = 0; user < 20000; user++) {
        CALL_OK(recsim_ie_env.xStartSession(f.e, user, 0.0));
        const int *cand;
        int n;
        CALL_OK(recsim_ie_env.xCandidates(f.e, user, &cand, &n));
        REQUIRE(n == 10, "%d candidates", n);
        int slots[NC] = {0};
        for (int j = 0; j < n; j++) {
            int cl = cand[j] / 10;
            REQUIRE(cand[j] % 10 == slots[cl]++, "id %d is not the next of its cluster", cand[j]);
            REQUIRE(cluster_of(&f, cand[j]) == cl, "topic of %d", cand[j]);
            count[cl]++;
            total++;
        }
        /* An id of a cluster beyond its documents in this set is refused. */
        int off = -1;
        for (int cl = 0; cl < NC && off < 0; cl++)
            if (slots[cl] < 10)
                off = cl * 10 + slots[cl];
        int slate[2] = {cand[0], off};
        env_response r;
        REQUIRE(recsim_ie_env.xStep(f.e, user, slate, 0.0, &r) == DS_EINPUT, "stale id taken");
        slate[1] = cand[0];
        REQUIRE(recsim_ie_env.xStep(f.e, user, slate, 0.0, &r) == DS_EINPUT, "twice taken");
        slate[1] = 10 * NC;
        REQUIRE(recsim_ie_env.xStep(f.e, user, slate, 0.0, &r) == DS_EINPUT, "range");
        slate[1] = cand[1];
        REQUIRE(recsim_ie_env.xStep(f.e, user + 1, slate, 0.0, &r) == DS_EINPUT, "other user");
    }
    double chi = 0.0, e = (double)total / NC;
    for (int cl = 0; cl < NC; cl++)
        chi += (count[cl] - e) * (count[cl] - e) / e;
    ck_assert_msg(gsl_cdf_chisq_Q(chi, NC - 1) > 1e-3, "chi-square %g", chi);
    fixture_close(&f);
}
END_TEST

/* Mean and variance of z = (quality - mu_c) / 0.1 over n draws: |mean| < 4.5
 * sqrt(1/n), |variance - 1| < 4.5 sqrt(2/n) (normal theory). */
static void check_standard_normal(const double *z, long n, const char *what)
{
    double mean = 0.0, var = 0.0;
    for (long i = 0; i < n; i++)
        mean += z[i];
    mean /= n;
    for (long i = 0; i < n; i++)
        var += (z[i] - mean) * (z[i] - mean);
    var /= n - 1;
    ck_assert_msg(fabs(mean) < 4.5 * sqrt(1.0 / n), "%s: mean %g over %ld", what, mean, n);
    ck_assert_msg(fabs(var - 1.0) < 4.5 * sqrt(2.0 / n), "%s: variance %g over %ld", what,
                  var, n);
}

/* Fixed candidates: 100,000 documents with qualities N(mu_c, 0.1) and uniform
 * clusters; resampled documents: the qualities of clicked ones, drawn lazily,
 * follow the same law given the cluster. */
START_TEST(qualities_are_normal_around_the_cluster_mean)
{
    recsim_ie_config c = defaults();
    c.resample_documents = 0;
    c.num_candidates = 100000;
    fixture f;
    fixture_open(&f, &c, 19, REWARD_REVENUE);
    double *z = malloc(100000 * sizeof *z);
    long count[NC] = {0};
    for (int i = 0; i < 100000; i++) {
        int cl;
        double q, mean;
        CALL_OK(recsim_ie_item(f.e, i, &cl, &q));
        CALL_OK(recsim_ie_cluster_mean(f.e, cl, &mean));
        z[i] = (q - mean) / 0.1;
        count[cl]++;
    }
    check_standard_normal(z, 100000, "fixed documents");
    double chi = 0.0;
    for (int cl = 0; cl < NC; cl++)
        chi += (count[cl] - 5000.0) * (count[cl] - 5000.0) / 5000.0;
    ck_assert_msg(gsl_cdf_chisq_Q(chi, NC - 1) > 1e-3, "chi-square %g", chi);
    fixture_close(&f);

    recsim_ie_config resampling = defaults();
    fixture_open(&f, &resampling, 23, REWARD_REVENUE);
    long n = 0;
    for (int user = 0; n < 100000; user++) {
        CALL_OK(recsim_ie_env.xStartSession(f.e, user, 0.0));
        for (int t = 0; t < 30 && n < 100000; t++) {
            double x[NC];
            for (int i = 0; i < NC; i++)
                x[i] = 1.0;
            CALL_OK(recsim_ie_set_user(f.e, x, 200.0));
            int slate[2];
            random_slate(&f, user, slate, 2);
            env_response r;
            CALL_OK(recsim_ie_env.xStep(f.e, user, slate, 0.0, &r));
            if (r.click < 0)
                continue;
            recsim_ie_step_info s;
            double mean;
            CALL_OK(recsim_ie_last_step(f.e, &s));
            CALL_OK(recsim_ie_cluster_mean(f.e, s.cluster, &mean));
            z[n++] = (s.quality - mean) / 0.1;
        }
    }
    check_standard_normal(z, n, "clicked resampled documents");
    free(z);
    fixture_close(&f);
}
END_TEST

/* Fresh users: 20,000 users' 400,000 interests U(-1, 1): Kolmogorov-Smirnov
 * distance below 1.95 / sqrt(n) (p about 0.001), every value in [-1, 1). */
static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

START_TEST(users_have_uniform_interests_and_a_full_budget)
{
    recsim_ie_config c = defaults();
    fixture f;
    fixture_open(&f, &c, 29, REWARD_REVENUE);
    enum { USERS = 20000, N = USERS * NC };
    double *v = malloc(N * sizeof *v);
    for (int user = 0; user < USERS; user++) {
        double budget;
        CALL_OK(recsim_ie_env.xStartSession(f.e, user, 0.0));
        CALL_OK(recsim_ie_user(f.e, v + (size_t)user * NC, &budget));
        REQUIRE(budget == 200.0, "budget %g", budget);
    }
    qsort(v, N, sizeof *v, by_value);
    double d = 0.0;
    for (int i = 0; i < N; i++) {
        REQUIRE(v[i] >= -1.0 && v[i] < 1.0, "interest %g", v[i]);
        double cdf = (v[i] + 1.0) / 2.0;
        d = fmax(d, fmax(fabs((i + 1.0) / N - cdf), fabs((double)i / N - cdf)));
    }
    ck_assert_msg(d < 1.95 / sqrt((double)N), "KS distance %g", d);
    free(v);
    fixture_close(&f);
}
END_TEST

/* ------------------------------------------------------------ episodes */

/* The first step of a session, with a uniformly random 2-slate of 10 fresh
 * documents, clicks with probability E[S / (S + 2)], S = s_1 + s_2, s = x + 1
 * ~ U(0, 2): for two clusters (probability 19/20) S has the triangular density
 * on [0, 4] and E = (-2 + 4 ln 2)/4 + (6 - 12 ln 1.5)/4; for one cluster S = 2s
 * and E = 1 - ln(3)/2. Over 200,000 sessions the rate must be within 4.5
 * standard errors (0.005) of 0.95 * 0.476752 + 0.05 * 0.450694. */
START_TEST(random_first_step_click_rate_in_closed_form)
{
    double two = (-2.0 + 4.0 * log(2.0)) / 4.0 + (6.0 - 12.0 * log(1.5)) / 4.0;
    double one = 1.0 - log(3.0) / 2.0;
    double expected = 0.95 * two + 0.05 * one;
    ck_assert_double_eq_tol(expected, 0.475449, 1e-6);
    enum { N = 200000 };
    recsim_ie_config c = defaults();
    c.users = N;
    fixture f;
    fixture_open(&f, &c, 31, REWARD_REVENUE);
    long clicks = 0;
    for (int user = 0; user < N; user++) {
        CALL_OK(recsim_ie_env.xStartSession(f.e, user, 0.0));
        int slate[2];
        random_slate(&f, user, slate, 2);
        env_response r;
        CALL_OK(recsim_ie_env.xStep(f.e, user, slate, 0.0, &r));
        clicks += r.click >= 0;
    }
    double rate = (double)clicks / N, se = sqrt(expected * (1 - expected) / N);
    ck_assert_msg(fabs(rate - expected) < 4.5 * se, "rate %g, expected %g", rate, expected);
    fixture_close(&f);
}
END_TEST

static double env_buf[64], agent_buf[256]; /* aligned room for any config */

static run_spec small_run(const agent_type *a, const recsim_ie_config *c, int train, int eval,
                          uint64_t seed)
{
    char err[ERR_LEN];
    memcpy(env_buf, c, sizeof *c);
    CALL_OK(param_defaults(&a->params, agent_buf, err));
    /* Learners update every 4 sessions, so that their gradients pass through
     * changing candidate sets within these short runs. */
    const param_spec *batch = param_find(&a->params, "batch_episodes");
    if (batch)
        CALL_OK(param_parse(batch, "4", agent_buf, err));
    run_spec r = {.env = &recsim_ie_env, .agent = a, .seed = seed, .env_config = env_buf,
                  .agent_config = agent_buf};
    r.settings = (run_settings){.name = "t", .train_episodes = train, .eval_episodes = eval,
                                .window = 10, .history = 5, .reward = REWARD_REVENUE};
    return r;
}

/* Users come one per hour, once each, and sessions run one after another:
 * episode e is user e, starting at hour e; with fewer users than episodes the
 * run ends when they are used up. The return is the watch time (revenue) and
 * every click is reported as a purchase. */
START_TEST(sessions_are_fresh_users_in_turn)
{
    recsim_ie_config c = defaults();
    c.users = 50;
    run_spec r = small_run(&random_agent, &c, 40, 20, 3);
    run_result res;
    char err[ERR_LEN];
    ck_assert_msg(run_execute(&r, NULL, &res, err) == DS_OK, "%s", err);
    ck_assert_int_eq(res.status, RUN_DONE);
    ck_assert_uint_eq(res.n_episodes, 50);
    ck_assert(strstr(res.message, "50 of 60") != NULL);
    for (size_t i = 0; i < res.n_episodes; i++) {
        const episode_row *e = &res.episodes[i];
        ck_assert_int_eq(e->user, (int)i);
        ck_assert(e->start_time == (double)i && e->end_time == (double)i);
        ck_assert_int_ge(e->length, 1);
        ck_assert_int_eq(e->purchases, e->clicks);
        ck_assert(e->reward == e->revenue && e->revenue > 0.0);
        /* Each click watches at most 4 minutes. */
        ck_assert(e->revenue <= 4.0 * e->clicks + 1e-9);
    }
    run_result_free(&res);
}
END_TEST

/* Every registered agent, on candidate sets that change at every step and are a
 * subset of a larger id space (10 of 200 ids, 1000 of 20,000), and on fixed
 * candidates: each run finishes with every episode. The myopic oracle clicks
 * more often per step than the random slate. */
START_TEST(every_agent_runs_on_changing_candidates)
{
    static const struct {
        int candidates, slate, resample, train, eval;
    } setting[] = {{10, 2, 1, 30, 20}, {1000, 10, 1, 12, 8}, {10, 2, 0, 30, 20}};
    double click_rate[3][2] = {{0}};
    for (size_t s = 0; s < sizeof setting / sizeof setting[0]; s++) {
        recsim_ie_config c = defaults();
        c.num_candidates = setting[s].candidates;
        c.slate = setting[s].slate;
        c.resample_documents = setting[s].resample;
        c.users = 1000;
        for (int a = 0; a < agent_registry_count; a++) {
            const agent_type *at = agent_registry[a];
            run_spec r = small_run(at, &c, setting[s].train, setting[s].eval, 5);
            run_result res;
            char err[ERR_LEN];
            ck_assert_msg(run_execute(&r, NULL, &res, err) == DS_OK, "%s (setting %zu): %s",
                          at->name, s, err);
            ck_assert_msg(res.status == RUN_DONE, "%s: %s", at->name, res.message);
            ck_assert_uint_eq(res.n_episodes, (size_t)(setting[s].train + setting[s].eval));
            long clicks = 0, steps = 0;
            for (size_t i = 0; i < res.n_episodes; i++) {
                clicks += res.episodes[i].clicks;
                steps += res.episodes[i].length;
            }
            if (strcmp(at->name, "random") == 0)
                click_rate[s][0] = (double)clicks / steps;
            if (strcmp(at->name, "oracle") == 0)
                click_rate[s][1] = (double)clicks / steps;
            run_result_free(&res);
        }
        ck_assert_msg(click_rate[s][1] > click_rate[s][0], "oracle %g, random %g",
                      click_rate[s][1], click_rate[s][0]);
    }
}
END_TEST

/* The checkers, in every build: each broken quantity is named with its value. */
START_TEST(invariant_checkers_name_the_quantity)
{
    char err[ERR_LEN] = "";
    double w[2] = {1.0, 2.0};
    ck_assert_int_eq(recsim_ie_check_choice(w, 2, 1.0, 4.0, err), DS_OK);
    w[1] = NAN;
    ck_assert_int_eq(recsim_ie_check_choice(w, 2, 1.0, 4.0, err), DS_EINTERNAL);
    ck_assert_str_eq(err, "click probability nan at position 1");
    w[0] = 3.0; /* with a negative score beside it: probability 1.5 */
    w[1] = -1.0;
    ck_assert_int_eq(recsim_ie_check_choice(w, 2, 0.0, 2.0, err), DS_EINTERNAL);
    ck_assert_str_eq(err, "click probability 1.5 at position 0");
    ck_assert_int_eq(recsim_ie_check_choice(w, 2, 1.0, 0.0, err), DS_EINTERNAL);
    ck_assert_str_eq(err, "no-click probability inf of total 0");
    w[0] = 1.0;
    w[1] = 1.0; /* a total that is not the sum of the scores */
    ck_assert_int_eq(recsim_ie_check_choice(w, 2, 1.0, 4.0, err), DS_EINTERNAL);
    ck_assert_str_eq(err, "choice probabilities sum to 0.75");

    double interest[NC] = {0};
    ck_assert_int_eq(recsim_ie_check_transition(interest, 99.0, 100.0, NAN, err), DS_OK);
    interest[7] = 1.5;
    ck_assert_int_eq(recsim_ie_check_transition(interest, 99.0, 100.0, NAN, err),
                     DS_EINTERNAL);
    ck_assert_str_eq(err, "interest 7 is 1.5, outside [-1, 1]");
    interest[7] = 0.0;
    ck_assert_int_eq(recsim_ie_check_transition(interest, NAN, 100.0, NAN, err),
                     DS_EINTERNAL);
    ck_assert_str_eq(err, "time budget is nan");
    ck_assert_int_eq(recsim_ie_check_transition(interest, 101.0, 100.0, 0.5, err),
                     DS_EINTERNAL);
    ck_assert_str_eq(err, "time budget grew from 100 to 101");
    /* growth = user_update_alpha * U > 1: a click may extend the budget */
    ck_assert_int_eq(recsim_ie_check_transition(interest, 101.0, 100.0, 2.0, err), DS_OK);
}
END_TEST

/* A broken state (a NaN time budget) is caught at the next step by a build with
 * DIVSIM_DEBUG_INVARIANTS (the sanitizer builds), naming the budget; a release
 * build does not check, and the session then never ends by its budget. */
START_TEST(a_broken_state_is_caught_in_debug_builds)
{
    recsim_ie_config c = defaults();
    fixture f;
    fixture_open(&f, &c, 12, REWARD_REVENUE);
    CALL_OK(recsim_ie_env.xStartSession(f.e, 0, 0.0));
    double interest[NC];
    CALL_OK(recsim_ie_user(f.e, interest, NULL));
    CALL_OK(recsim_ie_set_user(f.e, interest, NAN));
    int slate[2];
    random_slate(&f, 0, slate, 2);
    env_response r;
    int rc = recsim_ie_env.xStep(f.e, 0, slate, 0.0, &r);
#ifdef DIVSIM_DEBUG_INVARIANTS
    ck_assert_int_eq(rc, DS_EINTERNAL);
    ck_assert_str_eq(f.e->err, "time budget is nan");
#else
    ck_assert_int_eq(rc, DS_OK);
    ck_assert_int_eq(r.done, 0);
#endif
    fixture_close(&f);
}
END_TEST

static Suite *recsim_ie_suite(void)
{
    Suite *s = suite_create("recsim_ie");
    TCase *model = tcase_create("model");
    tcase_set_timeout(model, 300);
    tcase_add_test(model, defaults_are_recsims);
    tcase_add_test(model, validation_rejects_impossible_settings);
    tcase_add_test(model, choice_frequencies_follow_the_proportional_formula);
    tcase_add_test(model, oracle_view_is_the_proportional_model);
    tcase_add_test(model, budget_and_interest_arithmetic_is_exact);
    tcase_add_test(model, hand_computed_steps);
    tcase_add_test(model, interest_moves_toward_with_probability_half_x_plus_one);
    tcase_add_test(model, resampled_documents_are_uniform_over_clusters);
    tcase_add_test(model, qualities_are_normal_around_the_cluster_mean);
    tcase_add_test(model, users_have_uniform_interests_and_a_full_budget);
    tcase_add_test(model, random_first_step_click_rate_in_closed_form);
    tcase_add_test(model, invariant_checkers_name_the_quantity);
    tcase_add_test(model, a_broken_state_is_caught_in_debug_builds);
    suite_add_tcase(s, model);
    TCase *engine = tcase_create("engine");
    tcase_set_timeout(engine, 300);
    tcase_add_test(engine, sessions_are_fresh_users_in_turn);
    tcase_add_test(engine, every_agent_runs_on_changing_candidates);
    suite_add_tcase(s, engine);
    return s;
}

CHECK_MAIN(recsim_ie_suite)
