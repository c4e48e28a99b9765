/* The run loop: every registered agent on every environment, determinism,
 * phases and windows, frozen learning in eval, delayed purchases. */
#include "../envs/shop.h"
#include "../sim/common.h"
#include "../sim/run.h"
#include "same_rows.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TRAIN = 60, EVAL = 40, WINDOW = 25 };

static double env_config[128], agent_config[128]; /* aligned room for any config */

/* A small, quick configuration of env for agent; reward clicks on bandit. */
static run_spec small_spec(const env_type *e, const agent_type *a, uint64_t seed)
{
    char err[ERR_LEN];
    ck_assert_int_eq(param_defaults(&e->params, env_config, err), DS_OK);
    ck_assert_int_eq(param_defaults(&a->params, agent_config, err), DS_OK);
    if (e == &shop_env) {
        shop_config *c = (shop_config *)env_config;
        c->items = 80;
        c->users = 60;
        c->topics = 5;
        c->dim = 6;
        c->slate = 4;
    }
    run_spec r = {.env = e, .agent = a, .seed = seed, .env_config = env_config,
                  .agent_config = agent_config};
    r.settings = (run_settings){.name = "t", .train_episodes = TRAIN, .eval_episodes = EVAL,
                                .window = WINDOW, .history = 5,
                                .reward = e->clicks_only ? REWARD_CLICKS : REWARD_PURCHASES};
    return r;
}

static void check_rows(const run_spec *r, const run_result *res)
{
    ck_assert_int_eq(res->status, RUN_DONE);
    ck_assert_uint_eq(res->n_episodes, TRAIN + EVAL);
    for (size_t i = 0; i < res->n_episodes; i++) {
        const episode_row *e = &res->episodes[i];
        ck_assert_int_eq(e->episode, (long)i);
        ck_assert_int_eq(e->phase, i < TRAIN ? PHASE_TRAIN : PHASE_EVAL);
        ck_assert_int_ge(e->length, 1);
        ck_assert_int_le(e->clicks, e->length);
        ck_assert_int_le(e->purchases, e->clicks);
        ck_assert(e->end_time >= e->start_time);
        ck_assert(e->ild >= 0.0 && e->ild <= 2.0);
        ck_assert(e->repeat_rate >= 0.0 && e->repeat_rate <= 1.0);
        double expected = r->settings.reward == REWARD_CLICKS ? e->clicks : e->purchases;
        ck_assert_double_eq_tol(e->reward, expected, 1e-12);
    }
    /* Windows: 60 train episodes in windows of 25 -> 25, 25, 10; 40 eval -> 25, 15. */
    long expected_sizes[] = {25, 25, 10, 25, 15};
    ck_assert_uint_eq(res->n_windows, 5);
    for (size_t w = 0; w < 5; w++) {
        ck_assert_int_eq(res->windows[w].episodes, expected_sizes[w]);
        ck_assert_int_eq(res->windows[w].phase, w < 3 ? PHASE_TRAIN : PHASE_EVAL);
        ck_assert(res->windows[w].coverage > 0.0 && res->windows[w].coverage <= 1.0);
    }
    ck_assert_uint_eq(res->n_phases, 2);
    ck_assert_int_eq(res->phases[0].episodes, TRAIN);
    ck_assert_int_eq(res->phases[1].episodes, EVAL);
}

START_TEST(every_agent_runs_on_every_env)
{
    for (int e = 0; e < env_registry_count; e++)
        for (int a = 0; a < agent_registry_count; a++) {
            run_spec r = small_spec(env_registry[e], agent_registry[a], 3);
            run_result res;
            char err[ERR_LEN];
            ck_assert_msg(run_execute(&r, NULL, &res, err) == DS_OK, "%s on %s: %s",
                          agent_registry[a]->name, env_registry[e]->name, err);
            check_rows(&r, &res);
            run_result_free(&res);
        }
}
END_TEST

static int same_window(const window_row *a, const window_row *b)
{
    return a->window == b->window && a->phase == b->phase && a->episodes == b->episodes &&
           a->sim_time == b->sim_time && a->coverage == b->coverage && a->gini == b->gini &&
           a->exposure_entropy == b->exposure_entropy && a->retention == b->retention &&
           a->churn_rate == b->churn_rate && a->reward == b->reward && a->ild == b->ild;
}

static int same_result(const run_result *a, const run_result *b)
{
    if (!same_episodes(a, b) || a->n_windows != b->n_windows)
        return 0;
    for (size_t i = 0; i < a->n_windows; i++)
        if (!same_window(&a->windows[i], &b->windows[i]))
            return 0;
    return same_window(&a->phases[0], &b->phases[0]) && same_window(&a->phases[1], &b->phases[1]);
}

START_TEST(same_seed_same_rows)
{
    const agent_type *cf = agent_find("cf");
    run_result a, b, c;
    char err[ERR_LEN];
    run_spec r = small_spec(&shop_env, cf, 5);
    ck_assert_int_eq(run_execute(&r, NULL, &a, err), DS_OK);
    ck_assert_int_eq(run_execute(&r, NULL, &b, err), DS_OK);
    r.seed = 6;
    ck_assert_int_eq(run_execute(&r, NULL, &c, err), DS_OK);
    ck_assert(same_result(&a, &b));
    ck_assert(!same_result(&a, &c));
    run_result_free(&a);
    run_result_free(&b);
    run_result_free(&c);
}
END_TEST

/* ---- a spy agent that records what the engine tells it ---- */

typedef struct {
    agent base;
    double first_eval_start;   /* time the first eval episode acted */
    int acts_learning_in_eval; /* acts of eval episodes while learning was on */
    int acts_frozen_before_eval; /* acts before the first eval start with learning off */
    int updates_while_frozen;
    int observes;
    int late_purchases;
    double late_reward;
    int last_slate[16];
    int bad_feedback;          /* step feedback not matching the last slate */
    long late_by_episode[TRAIN + EVAL];
    unsigned char shown[TRAIN + EVAL][80]; /* items shown in each episode */
    long end_order[TRAIN + EVAL];          /* episodes in the order they ended */
    int n_ended;
} spy;

static int spy_create(const void *cfg, const env_spec *spec, const agent_context *ctx,
                      agent **out, char *err)
{
    (void)cfg, (void)ctx, (void)err;
    spy *s = calloc(1, sizeof *s);
    s->base.spec = spec;
    s->base.update_every = 1.0;
    s->first_eval_start = INFINITY;
    *out = &s->base;
    return DS_OK;
}

static int spy_act(agent *a, const observation *obs, int *slate)
{
    spy *s = (spy *)a;
    if (obs->episode >= TRAIN && obs->time < s->first_eval_start)
        s->first_eval_start = obs->time;
    if (obs->episode >= TRAIN && a->learning)
        s->acts_learning_in_eval++;
    if (obs->time < s->first_eval_start && !a->learning)
        s->acts_frozen_before_eval++;
    for (int j = 0; j < a->spec->slate; j++)
        slate[j] = s->last_slate[j] = obs->candidates[(obs->step + j) % obs->n_candidates];
    return DS_OK;
}

static int spy_observe(agent *a, const feedback *fb)
{
    spy *s = (spy *)a;
    s->observes++;
    if (fb->kind == FEEDBACK_LATE_PURCHASE) {
        s->late_purchases++;
        s->late_reward += fb->reward;
        s->late_by_episode[fb->episode]++;
        return DS_OK;
    }
    for (int j = 0; j < fb->slate_len; j++)
        s->shown[fb->episode][fb->slate[j]] = 1;
    if (fb->slate_len != a->spec->slate ||
        memcmp(fb->slate, s->last_slate, (size_t)fb->slate_len * sizeof(int)) != 0 ||
        (fb->click >= 0 && fb->slate[fb->click] != fb->item))
        s->bad_feedback++;
    return DS_OK;
}

static int spy_end_episode(agent *a, int user, long episode)
{
    spy *s = (spy *)a;
    (void)user;
    s->end_order[s->n_ended++] = episode;
    return DS_OK;
}

static int spy_update(agent *a, double t)
{
    (void)t;
    if (!a->learning)
        ((spy *)a)->updates_while_frozen++;
    return DS_OK;
}

static spy *last_spy;
static void spy_destroy(agent *a)
{
    last_spy = (spy *)a; /* freed by the test after inspection */
}

static const agent_type spy_agent = {
    .name = "spy", .version = 1, .summary = "test double",
    .params = {NULL, 0, 1},
    .xCreate = spy_create, .xAct = spy_act, .xObserve = spy_observe,
    .xEndEpisode = spy_end_episode, .xUpdate = spy_update, .xDestroy = spy_destroy,
};

START_TEST(learning_is_frozen_in_eval)
{
    run_spec r = small_spec(&shop_env, &spy_agent, 9);
    run_result res;
    char err[ERR_LEN];
    ck_assert_int_eq(run_execute(&r, NULL, &res, err), DS_OK);
    ck_assert_int_eq(last_spy->acts_learning_in_eval, 0);
    ck_assert_int_eq(last_spy->acts_frozen_before_eval, 0);
    ck_assert_int_eq(last_spy->updates_while_frozen, 0);
    ck_assert_int_eq(last_spy->bad_feedback, 0);
    ck_assert_int_gt(last_spy->observes, TRAIN + EVAL);
    free(last_spy);
    run_result_free(&res);
}
END_TEST

/* With a delay far beyond the run, every purchase is revealed after the last
 * session, as separate feedback, and still credited to the episode that made it. */
START_TEST(delayed_purchases_are_credited)
{
    run_spec r = small_spec(&shop_env, &spy_agent, 4);
    shop_config *c = (shop_config *)env_config;
    c->purchase_delay = 1e6;
    c->purchase_bias = 0.0; /* many purchases, so the test has something to count */
    run_result res;
    char err[ERR_LEN];
    ck_assert_int_eq(run_execute(&r, NULL, &res, err), DS_OK);
    long purchases = 0;
    double reward = 0.0;
    for (size_t i = 0; i < res.n_episodes; i++) {
        purchases += res.episodes[i].purchases;
        reward += res.episodes[i].reward;
        ck_assert_int_eq(res.episodes[i].purchases, last_spy->late_by_episode[i]);
    }
    ck_assert_int_gt(purchases, 10);
    ck_assert_int_eq(last_spy->late_purchases, purchases);
    ck_assert_double_eq_tol(last_spy->late_reward, reward, 1e-9);
    free(last_spy);
    run_result_free(&res);
}
END_TEST

/* Windows of one episode: each window's coverage is the share of the catalogue
 * that its episode (the next to end in its phase) showed. */
START_TEST(window_exposure_is_its_episodes)
{
    run_spec r = small_spec(&shop_env, &spy_agent, 8);
    r.settings.window = 1;
    run_result res;
    char err[ERR_LEN];
    ck_assert_int_eq(run_execute(&r, NULL, &res, err), DS_OK);
    ck_assert_uint_eq(res.n_windows, TRAIN + EVAL);
    long next_in_phase[2] = {0, TRAIN}; /* windows are stored train first */
    for (int i = 0; i < last_spy->n_ended; i++) {
        long ep = last_spy->end_order[i];
        phase ph = ep < TRAIN ? PHASE_TRAIN : PHASE_EVAL;
        const window_row *w = &res.windows[next_in_phase[ph]++];
        int distinct = 0;
        for (int item = 0; item < 80; item++)
            distinct += last_spy->shown[ep][item];
        ck_assert_int_eq(w->episodes, 1);
        ck_assert_double_eq_tol(w->coverage, distinct / 80.0, 1e-12);
        ck_assert_double_eq_tol(w->reward, res.episodes[ep].reward, 1e-12);
    }
    free(last_spy);
    run_result_free(&res);
}
END_TEST

/* When every user churns early, the run ends (it used to wait for ever on the
 * agent's retraining and the catalogue's events) and says why. */
START_TEST(run_ends_when_every_user_churned)
{
    const char *agents[] = {"cf", "random"};
    for (int i = 0; i < 2; i++) {
        run_spec r = small_spec(&shop_env, agent_find(agents[i]), 2);
        shop_config *c = (shop_config *)env_config;
        c->users = 5;
        c->churn_threshold = 1.0; /* every session disappoints */
        c->churn_patience = 1;
        c->launch_rate = 1.0;     /* catalogue events keep coming */
        c->item_lifetime = 50.0;
        run_result res;
        char err[ERR_LEN];
        ck_assert_int_eq(run_execute(&r, NULL, &res, err), DS_OK);
        ck_assert_int_eq(res.status, RUN_DONE);
        ck_assert_uint_lt(res.n_episodes, 50);
        char expected[80];
        snprintf(expected, sizeof expected, "every user churned after %zu of 100 episodes",
                 res.n_episodes);
        ck_assert_str_eq(res.message, expected);
        run_result_free(&res);
    }
}
END_TEST

/* An agent that alternates two slates whose items are 4096 apart, so that the
 * engine's filter of items shown (bit item mod 1024, or any power of two up to
 * 4096) sees every item of one as already shown by the other: k items 0 .. k-1
 * at even steps, 4096 .. 4095 + k at odd ones. */
enum { FILTER_PERIOD = 4096 };

static int alternate_act(agent *a, const observation *obs, int *slate)
{
    for (int j = 0; j < a->spec->slate; j++)
        slate[j] = obs->candidates[j + (obs->step % 2) * FILTER_PERIOD];
    return DS_OK;
}

static int alternate_create(const void *cfg, const env_spec *spec, const agent_context *ctx,
                            agent **out, char *err)
{
    (void)cfg, (void)ctx, (void)err;
    agent *a = calloc(1, sizeof *a);
    a->spec = spec;
    *out = a;
    return DS_OK;
}

static void alternate_destroy(agent *a) { free(a); }

static const agent_type alternate_agent = {
    .name = "alternate", .version = 1, .summary = "test double",
    .params = {NULL, 0, 1},
    .xCreate = alternate_create, .xAct = alternate_act, .xDestroy = alternate_destroy,
};

/* Repeats are items shown at an earlier step of the same session: none at the
 * first two steps, all k at every later one, so an episode of L steps has the
 * repeat rate (L - 2) / L; items that share a filter bit are not repeats. */
START_TEST(repeats_are_items_shown_earlier_in_the_session)
{
    run_spec r = small_spec(&shop_env, &alternate_agent, 5);
    ((shop_config *)env_config)->items = FILTER_PERIOD + 100;
    run_result res;
    char err[ERR_LEN];
    ck_assert_msg(run_execute(&r, NULL, &res, err) == DS_OK, "%s", err);
    long longest = 0;
    for (size_t i = 0; i < res.n_episodes; i++) {
        const episode_row *e = &res.episodes[i];
        double want = e->length > 2 ? (double)(e->length - 2) / e->length : 0.0;
        ck_assert_double_eq_tol(e->repeat_rate, want, 1e-12);
        longest = e->length > longest ? e->length : longest;
    }
    ck_assert_int_ge(longest, 4); /* the test saw sessions that repeat */
    run_result_free(&res);
}
END_TEST

/* A shop whose third session starts with a user preference of NaN: every
 * utility of that user's slates is then NaN. */
static env_type corrupted_shop;
static int sessions_started;

static int corrupting_start(env *e, int user, double t)
{
    int rc = shop_env.xStartSession(e, user, t);
    if (rc != DS_OK || ++sessions_started != 3)
        return rc;
    double nan_x[6] = {NAN, NAN, NAN, NAN, NAN, NAN}; /* dim 6 in small_spec */
    e->type = &shop_env; /* the engine put the copy's table there */
    rc = shop_set_user_preference(e, user, nan_x);
    e->type = &corrupted_shop;
    return rc;
}

/* Debug builds (DIVSIM_DEBUG_INVARIANTS: the sanitized ones) check the env's
 * invariants every step: the corrupted state fails the run with the broken
 * quantity in its message. Release builds skip the check for speed: a NaN
 * utility then goes by as a slate nobody clicks, and the run ends done. */
START_TEST(a_broken_invariant_fails_the_run)
{
    corrupted_shop = shop_env;
    corrupted_shop.xStartSession = corrupting_start;
    sessions_started = 0;
    run_spec r = small_spec(&shop_env, agent_find("random"), 3);
    r.env = &corrupted_shop;
    run_result res;
    char err[ERR_LEN];
    int rc = run_execute(&r, NULL, &res, err);
    ck_assert_int_ge(sessions_started, 3);
#ifdef DIVSIM_DEBUG_INVARIANTS
    ck_assert_int_eq(rc, DS_EINTERNAL);
    ck_assert_int_eq(res.status, RUN_FAILED);
    ck_assert_str_eq(res.message, "environment 'shop' broke one of its invariants at a "
                                  "step: utility nan at slate position 0");
    ck_assert_str_eq(err, res.message);
#else
    ck_assert_msg(rc == DS_OK, "%s", err);
    ck_assert_int_eq(res.status, RUN_DONE);
#endif
    run_result_free(&res);
}
END_TEST

static Suite *run_suite(void)
{
    Suite *s = suite_create("run");
    TCase *tc = tcase_create("engine");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, every_agent_runs_on_every_env);
    tcase_add_test(tc, same_seed_same_rows);
    tcase_add_test(tc, learning_is_frozen_in_eval);
    tcase_add_test(tc, delayed_purchases_are_credited);
    tcase_add_test(tc, window_exposure_is_its_episodes);
    tcase_add_test(tc, run_ends_when_every_user_churned);
    tcase_add_test(tc, a_broken_invariant_fails_the_run);
    tcase_add_test(tc, repeats_are_items_shown_earlier_in_the_session);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(run_suite)
