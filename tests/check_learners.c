/* Tests of the learning agents' shared core (agents/learner.c) and of reinforce,
 * a2c and ppo: finite-difference gradient checks of each agent's full loss,
 * returns and advantages on hand examples, ppo's clipping on a hand batch and its
 * update schedule, per-user trajectories and session logs with late purchases,
 * learning the bandit through the engine, determinism and divergence.
 *
 * Gradient checks, as in tests/check_policy.c: the five-point central
 * difference [f(x - 2h) - 8 f(x - h) + 8 f(x + h) - f(x + 2h)] / (12 h), h = 1e-4
 * (truncation O(h^4), rounding ~1e-16 |f| / h), compared per element by
 * rel(a, b) = |a - b| / max(1e-8, |a| + |b|); the largest over a tensor must be
 * below 1e-6, and each tensor must have a gradient of size > 1e-4 somewhere (so
 * a check cannot pass on zeros). The loss is the agent's own (learner.prepare,
 * then learner.loss), over a batch of stored steps that the agent recorded by
 * acting, with weights redrawn at random (dense N(0, 1 / fan_in), the rest
 * N(0, 0.5^2)) because the CleanRL initialisation's 0.01 policy head leaves the
 * lower layers' gradients too small to tell from rounding. */
#include "../agents/checkpoint.h"
#include "../agents/learner.h"
#include "../sim/common.h"
#define GRADCHECK_MIN 1e-4 /* some tensors of a small batch get small gradients */
#include "gradcheck.h"
#include "../sim/run.h"
#include "same_rows.h"
#include "testutil.h"

#include <check.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const agent_type reinforce_agent, a2c_agent, ppo_agent;
extern const env_type bandit_env, shop_env;

#define FD_STEP 1e-4
#define GRAD_TOL 1e-6

/* ---- a small world: 7 items over 3 topics, 4 users, slates of 3 ---- */

enum { N_ITEMS = 7, N_TOPICS = 3, N_USERS = 4, SLATE = 3, MAX_STEPS = 5 };

static const int world_topics[N_ITEMS] = {0, 1, 2, 0, 1, 2, 1};
static const double world_prices[N_ITEMS] = {1, 2, 3, 4, 5, 6, 7};
static const int all_items[N_ITEMS] = {0, 1, 2, 3, 4, 5, 6};
static const int some_items[5] = {6, 2, 4, 0, 5};

static const env_spec world = {.n_items = N_ITEMS, .n_users = N_USERS, .slate = SLATE,
                               .n_topics = N_TOPICS, .max_steps = MAX_STEPS,
                               .item_topic = world_topics, .item_price = world_prices};

/* A history mixing clicks, purchases and skips, newest first. */
static const history_entry world_history[] = {
    {3, HIST_CLICK}, {3, HIST_PURCHASE}, {-1, HIST_SKIP}, {1, HIST_CLICK},
    {5, HIST_PURCHASE}, {6, HIST_CLICK}, {-1, HIST_SKIP}, {0, HIST_PURCHASE}};
enum { WORLD_HISTORY = (int)(sizeof world_history / sizeof *world_history) };

static double config_room[256]; /* aligned room for any agent config */

/* Sets key = value in config through the agent's parameter table. */
static void set_param(const agent_type *t, void *config, const char *key, const char *value)
{
    char err[ERR_LEN];
    const param_spec *s = param_find(&t->params, key);
    ck_assert_msg(s != NULL, "no key '%s' in %s", key, t->name);
    ck_assert_msg(param_parse(s, value, config, err) == DS_OK, "%s = %s: %s", key, value, err);
}

/* Defaults of t, then the pairs kv [2 n] ("key", "value", ...). */
static void *agent_config(const agent_type *t, const char *const *kv, int n)
{
    char err[ERR_LEN];
    ck_assert_uint_le(t->params.size, sizeof config_room);
    ck_assert_int_eq(param_defaults(&t->params, config_room, err), DS_OK);
    for (int i = 0; i < n; i++)
        set_param(t, config_room, kv[2 * i], kv[2 * i + 1]);
    return config_room;
}

/* An agent of type t configured by kv [n pairs], drawing from r, for a run of
 * seed `seed`. */
static learner *make_learner_of_seed(const agent_type *t, const char *const *kv, int n,
                                     gsl_rng *r, uint64_t seed)
{
    agent_context ctx = {.seed = seed, .init = r, .sampling = r, .minibatch = r,
                         .reward = REWARD_CLICKS};
    agent *a = NULL;
    char err[ERR_LEN];
    /* the update's item head in double unless a test asks for single: the finite
     * differences and known answers below need the loss to double precision */
    const char *with[2 * 40];
    ck_assert_int_le(n, 39);
    if (n > 0)
        memcpy(with, kv, 2 * (size_t)n * sizeof *kv);
    with[2 * n] = "item_precision";
    with[2 * n + 1] = "double";
    for (int i = 0; i < n; i++)
        if (strcmp(kv[2 * i], "item_precision") == 0)
            with[2 * n + 1] = kv[2 * i + 1];
    ck_assert_msg(t->xCreate(agent_config(t, with, n + 1), &world, &ctx, &a, err) == DS_OK,
                  "%s", err);
    a->type = t;
    a->spec = &world;
    a->learning = 1;
    return (learner *)a;
}

static learner *make_learner(const agent_type *t, const char *const *kv, int n, gsl_rng *r)
{
    return make_learner_of_seed(t, kv, n, r, 1);
}

static gsl_rng *rng_new(unsigned long seed)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    ck_assert_ptr_nonnull(r);
    gsl_rng_set(r, seed);
    return r;
}

/* One step: acts for (user, episode, step) over cand [n] (all_items: the
 * identity catalogue) with the first hlen entries of the world history, then
 * feeds back reward; the slate shown goes to slate [SLATE]. */
static void play_step(learner *l, int user, long episode, int step, const int *cand, int n,
                      int hlen, double reward, int *slate)
{
    agent *a = &l->base;
    observation obs = {.user = user, .episode = episode, .step = step,
                       .time = 10.0 * (double)episode + step,
                       .since_last_visit = episode < N_USERS ? INFINITY : 3.0,
                       .candidates = cand, .n_candidates = n, .history = world_history,
                       .history_len = hlen};
    ck_assert_msg(a->type->xAct(a, &obs, slate) == DS_OK, "%s", a->err);
    feedback fb = {.kind = FEEDBACK_STEP, .user = user, .episode = episode, .step = step,
                   .time = obs.time, .slate = slate, .slate_len = SLATE, .click = -1,
                   .item = -1, .reward = reward, .raw_reward = reward};
    ck_assert_msg(a->type->xObserve(a, &fb) == DS_OK, "%s", a->err);
}

static void end_episode(learner *l, int user, long episode)
{
    ck_assert_msg(l->base.type->xEndEpisode(&l->base, user, episode) == DS_OK, "%s",
                  l->base.err);
}

static void late_purchase(learner *l, int user, long episode, int step, double reward)
{
    feedback fb = {.kind = FEEDBACK_LATE_PURCHASE, .user = user, .episode = episode,
                   .step = step, .time = 100.0, .click = -1, .item = 2, .purchased = 1,
                   .reward = reward, .raw_reward = reward};
    ck_assert_msg(l->base.type->xObserve(&l->base, &fb) == DS_OK, "%s", l->base.err);
}

/* Four interleaved episodes of 3, 2, 4 and 1 steps over subset and identity
 * candidate sets, varied rewards and a late purchase: 10 steps. */
static void play_batch(learner *l)
{
    int slate[SLATE];
    play_step(l, 0, 0, 0, some_items, 5, 3, 1.0, slate);
    play_step(l, 1, 1, 0, all_items, N_ITEMS, 0, 0.0, slate);
    play_step(l, 0, 0, 1, some_items, 5, 5, 0.0, slate);
    play_step(l, 2, 2, 0, all_items, N_ITEMS, WORLD_HISTORY, 2.0, slate);
    play_step(l, 1, 1, 1, some_items, 5, 2, 1.5, slate);
    play_step(l, 0, 0, 2, all_items, N_ITEMS, 6, -0.5, slate);
    end_episode(l, 1, 1);
    play_step(l, 2, 2, 1, some_items, 5, 4, 0.0, slate);
    end_episode(l, 0, 0);
    play_step(l, 2, 2, 2, all_items, N_ITEMS, 7, 1.0, slate);
    play_step(l, 2, 2, 3, some_items, 5, 1, 0.25, slate);
    end_episode(l, 2, 2);
    late_purchase(l, 0, 0, 1, 1.0);
    play_step(l, 0, 4, 0, all_items, N_ITEMS, 8, 3.0, slate);
    end_episode(l, 0, 4);
}

/* ---- the finite-difference harness ---- */

static double batch_loss(learner *l)
{
    double loss;
    ck_assert_int_eq(l->loss(l, 0, &loss, NULL), DS_OK);
    return loss;
}

static double learner_loss(void *ctx)
{
    return batch_loss(ctx);
}

/* Checks the gradient of every tensor of l's layout against the numerical one.
 * The transformer's tf_item_bias serves only its next-click head: the policy's
 * loss does not depend on it, and its gradient must be exactly 0; the key part
 * of tf_qkv_b must vanish (check_qkv_bias). */
static void check_all_tensors(learner *l, const char *what)
{
    for (int k = 0; k < l->layout.n_tensors; k++) {
        const nn_tensor *t = &l->layout.tensors[k];
        size_t n = (size_t)t->rows * (size_t)t->cols;
        double *w = l->params.w + t->offset, *g = l->params.grad + t->offset;
        char name[96];
        snprintf(name, sizeof name, "%s %s", what, t->name);
        if (strcmp(t->name, "tf_item_bias") == 0) {
            for (size_t i = 0; i < n; i++)
                ck_assert(g[i] == 0.0 && numeric_derivative(&w[i], learner_loss, l) == 0.0);
        } else if (strcmp(t->name, "tf_qkv_b") == 0) {
            check_qkv_bias(name, w, g, t->rows, l->tf.C, learner_loss, l);
        } else {
            check_grad(name, w, g, n, learner_loss, l);
        }
    }
}

/* Weights for a gradient check: dense N(0, 1 / fan_in), the rest N(0, 0.5^2),
 * but the transformer's layer-norm gammas 1 + N(0, 0.1^2) (as in
 * tests/check_attention.c: gammas near 0 would starve the lower layers). */
static void random_weights(learner *l, gsl_rng *r)
{
    nn_init_normal(l->params.w, r, 0.5, l->params.n);
    for (int k = 0; k < l->layout.n_tensors; k++) {
        const nn_tensor *t = &l->layout.tensors[k];
        double *w = l->params.w + t->offset;
        if (strstr(t->name, "_W"))
            nn_init_normal(w, r, 1.0 / sqrt(t->cols), (size_t)t->rows * (size_t)t->cols);
        if (strncmp(t->name, "tf_ln", 5) != 0)
            continue;
        /* [rows][2C] gamma then beta per row (tf_ln1, tf_ln2), or [2][C] (tf_lnf) */
        int C = l->tf.C, rows = strcmp(t->name, "tf_lnf") == 0 ? 1 : t->rows;
        for (int i = 0; i < rows; i++)
            for (int c = 0; c < C; c++)
                w[(size_t)i * 2 * C + c] = 1.0 + 0.1 * gsl_ran_gaussian(r, 1.0);
    }
    l->items_stale = 1; /* the float copy of E_out is now stale */
}

/* The full loss of agent t configured by kv, on play_batch's 10 steps, with
 * the model and the check's weights drawn from seed; inspect (may be NULL)
 * looks at the prepared batch before the check. */
static void check_agent_gradient_seeded(const agent_type *t, const char *const *kv, int n,
                                        const char *what, int tensors,
                                        void (*inspect)(learner *l), unsigned long seed)
{
    gsl_rng *r = rng_new(seed);
    learner *l = make_learner(t, kv, n, r);
    play_batch(l);
    ck_assert_uint_eq(traj_completed(&l->store), 4); /* batch_episodes is larger */
    ck_assert_int_eq(l->layout.n_tensors, tensors);
    random_weights(l, r);
    ck_assert_int_eq(learner_take_batch(l, 4), DS_OK);
    ck_assert_uint_eq(l->batch.n_steps, 10);
    update_row row = learner_row();
    ck_assert_int_eq(l->prepare(l, &row), DS_OK);
    if (inspect)
        inspect(l);
    nn_params_zero_grad(&l->params);
    double loss;
    ck_assert_int_eq(l->loss(l, 1, &loss, &row), DS_OK);
    ck_assert(isfinite(loss) && isfinite(row.policy_loss) && isfinite(row.entropy));
    ck_assert_double_eq_tol(batch_loss(l), loss, 1e-12 * (1 + fabs(loss)));
    check_all_tensors(l, what);
    learner_release_batch(l);
    t->xDestroy(&l->base);
    gsl_rng_free(r);
}

static void check_agent_gradient(const agent_type *t, const char *const *kv, int n,
                                 const char *what, int tensors, void (*inspect)(learner *l))
{
    check_agent_gradient_seeded(t, kv, n, what, tensors, inspect, 17);
}

/* 9 tensors: E_in, the policy trunk and head, E_out, b_out; 15 with the value. */
START_TEST(reinforce_moving_average_gradient)
{
    const char *kv[] = {"embed_dim", "4", "hidden", "6", "batch_episodes", "100",
                        "gamma", "0.9", "entropy_coef", "0.2"};
    check_agent_gradient(&reinforce_agent, kv, 5, "reinforce(moving_average)", 9, NULL);
}
END_TEST

START_TEST(reinforce_learned_topk_gradient)
{
    const char *kv[] = {"embed_dim", "4", "hidden", "6", "batch_episodes", "100",
                        "gamma", "0.9", "entropy_coef", "0.1", "baseline", "learned",
                        "value_coef", "0.7", "topk_correction", "true"};
    check_agent_gradient(&reinforce_agent, kv, 8, "reinforce(learned,topk)", 15, NULL);
}
END_TEST

START_TEST(a2c_gradient)
{
    const char *kv[] = {"embed_dim", "4", "hidden", "6", "batch_episodes", "100",
                        "gamma", "0.9", "entropy_coef", "0.1", "gae_lambda", "0.8"};
    check_agent_gradient(&a2c_agent, kv, 6, "a2c", 15, NULL);
}
END_TEST

/* ---- ppo: the clipped surrogate ---- */

/* ppo's clip in the gradient checks and the census below (its default). */
#define PPO_CLIP 0.2

/* rho = pi(slate_i) / pi_old(slate_i) at the current weights; *v = V(s_i). */
static double ppo_ratio(learner *l, size_t i, double *v)
{
    return exp(learner_forward(l, i, v) - learner_step_at(l, i).logp);
}

/* The gradient checks are only worth something if both branches of each max
 * are taken somewhere and no step sits at a kink, where the loss is not
 * differentiable and the finite difference (over +-2e-4 of one weight) could
 * straddle it. With the check's random weights the ratios are far from 1. The
 * sign of a step's normalised advantage is that of A - mean(A) over the batch
 * (the loss's minibatch is the whole batch there). */
static void ppo_census(learner *l, int norm_adv, int clip_value)
{
    const learner_batch *b = &l->batch;
    size_t n = b->n_steps;
    double mean = 0.0;
    for (size_t i = 0; i < n && norm_adv; i++)
        mean += b->adv[i] / (double)n;
    int pg_clipped = 0, v_clipped = 0;
    for (size_t i = 0; i < n; i++) {
        double v, r = ppo_ratio(l, i, &v), A = b->adv[i] - mean;
        ck_assert_msg(fabs(r - (1 - PPO_CLIP)) > 1e-3 && fabs(r - (1 + PPO_CLIP)) > 1e-3,
                      "ratio %.6f at a kink", r);
        pg_clipped += (r > 1 + PPO_CLIP && A > 0) || (r < 1 - PPO_CLIP && A < 0);
        if (!clip_value)
            continue;
        double d = v - b->value[i], R = b->ret[i];
        double vc = b->value[i] + fmax(-PPO_CLIP, fmin(PPO_CLIP, d));
        ck_assert(fabs(fabs(d) - PPO_CLIP) > 1e-3 && fabs(R - 0.5 * (v + vc)) > 1e-3);
        v_clipped += (vc - R) * (vc - R) > (v - R) * (v - R);
    }
    printf("  ppo census: %d of %zu steps clipped in the surrogate", pg_clipped, n);
    if (clip_value)
        printf(", %d in the value", v_clipped);
    printf("\n");
    ck_assert(pg_clipped > 0 && pg_clipped < (int)n);
    ck_assert(!clip_value || (v_clipped > 0 && v_clipped < (int)n));
}

static void ppo_census_default(learner *l) { ppo_census(l, 1, 0); }
static void ppo_census_clip_value(learner *l) { ppo_census(l, 0, 1); }

/* The defaults' loss: normalised advantages, plain value loss. */
START_TEST(ppo_gradient)
{
    const char *kv[] = {"embed_dim", "4", "hidden", "6", "batch_episodes", "100",
                        "gamma", "0.9", "gae_lambda", "0.8", "entropy_coef", "0.1",
                        "value_coef", "0.7"};
    check_agent_gradient(&ppo_agent, kv, 7, "ppo", 15, ppo_census_default);
}
END_TEST

/* Raw advantages and the clipped value loss. */
START_TEST(ppo_clip_value_gradient)
{
    const char *kv[] = {"embed_dim", "4", "hidden", "6", "batch_episodes", "100",
                        "gamma", "0.9", "gae_lambda", "0.8", "entropy_coef", "0.1",
                        "value_coef", "0.7", "norm_adv", "false", "clip_value", "true"};
    check_agent_gradient(&ppo_agent, kv, 9, "ppo(clip_value)", 15, ppo_census_clip_value);
}
END_TEST

/* ---- the transformer encoder ---- */

/* A transformer small enough to check every weight by finite differences:
 * 2 blocks of width 4 (2 heads, MLP 8) over the 8 newest history entries (the
 * world history's length); 15 tensors before the policy's 8, or 14 with the
 * value trunk. */
#define TF_SMALL                                                                       \
    "encoder", "transformer", "tf_context", "8", "tf_layers", "2", "tf_heads", "2",    \
        "tf_width", "4", "tf_mlp_ratio", "2"
enum { TF_SMALL_PAIRS = 6 };

/* The transformer checks draw from seed 19: with 17 (the other checks' seed),
 * one weight of ppo's pi_W1 has a gradient of 5e-7, where the rounding of the
 * difference quotient (~1e-16 |loss| / h, ~3e-12 here) alone exceeds the 1e-6
 * relative bound; with 19 the worst element of any tensor agrees to 2.6e-7. */
#define TF_GRAD_SEED 19

START_TEST(reinforce_transformer_gradient)
{
    const char *kv[] = {TF_SMALL, "embed_dim", "4", "hidden", "6", "batch_episodes", "100",
                        "gamma", "0.9", "entropy_coef", "0.2"};
    check_agent_gradient_seeded(&reinforce_agent, kv, TF_SMALL_PAIRS + 5,
                                "reinforce(transformer)", 23, NULL, TF_GRAD_SEED);
}
END_TEST

START_TEST(a2c_transformer_gradient)
{
    const char *kv[] = {TF_SMALL, "embed_dim", "4", "hidden", "6", "batch_episodes", "100",
                        "gamma", "0.9", "entropy_coef", "0.1", "gae_lambda", "0.8"};
    check_agent_gradient_seeded(&a2c_agent, kv, TF_SMALL_PAIRS + 6, "a2c(transformer)", 29,
                                NULL, TF_GRAD_SEED);
}
END_TEST

START_TEST(ppo_transformer_gradient)
{
    const char *kv[] = {TF_SMALL, "embed_dim", "4", "hidden", "6", "batch_episodes", "100",
                        "gamma", "0.9", "gae_lambda", "0.8", "entropy_coef", "0.1",
                        "value_coef", "0.7"};
    check_agent_gradient_seeded(&ppo_agent, kv, TF_SMALL_PAIRS + 7, "ppo(transformer)", 29,
                                ppo_census_default, TF_GRAD_SEED);
}
END_TEST

/* A stored step replays exactly: with the weights that acted, learner_forward
 * gives back the log-probability and value recorded when acting, bit for bit,
 * with either encoder (the features are refreshed from the step's extra by the
 * same arithmetic that computed them). With item_precision single, acting
 * scores in single precision and learner_forward in double: the value still
 * bit for bit, the log-probability to 1e-5 of itself. */
START_TEST(replay_reproduces_acting)
{
    const char *history[] = {"embed_dim", "4", "hidden", "6", "batch_episodes", "100"};
    const char *tf[] = {TF_SMALL, "embed_dim", "4", "hidden", "6", "batch_episodes", "100"};
    const char *single[] = {"embed_dim", "4", "hidden", "6", "batch_episodes", "100",
                            "item_precision", "single"};
    const char *const *kvs[3] = {history, tf, single};
    const int n_kv[3] = {3, TF_SMALL_PAIRS + 3, 4};
    for (int e = 0; e < 3; e++) {
        gsl_rng *r = rng_new(23);
        learner *l = make_learner(&ppo_agent, kvs[e], n_kv[e], r);
        ck_assert_int_eq(l->cfg.encoder, e == 1);
        play_batch(l);
        ck_assert_int_eq(learner_take_batch(l, 4), DS_OK);
        double tol = e == 2 ? 1e-5 : 0.0;
        for (size_t i = 0; i < l->batch.n_steps; i++) {
            learner_step s = learner_step_at(l, i);
            double v, logp = learner_forward(l, i, &v);
            ck_assert_msg(fabs(logp - s.logp) <= tol * fabs(s.logp) && v == s.value,
                          "case %d step %zu: %.17g %.17g", e, i, logp - s.logp, v - s.value);
        }
        learner_release_batch(l);
        ppo_agent.xDestroy(&l->base);
        gsl_rng_free(r);
    }
}
END_TEST

/* ---- a minibatch at once against step by step ---- */

/* 60 episodes of 1 to 4 steps, two thirds over the identity catalogue: about 150
 * steps, so that a minibatch spans several chunks of each kind. */
enum { MANY_EPISODES = 60 };

static void play_many(learner *l)
{
    int slate[SLATE];
    for (long e = 0; e < MANY_EPISODES; e++) {
        int user = (int)(e % N_USERS), steps = 1 + (int)(e % 4);
        for (int t = 0; t < steps; t++) {
            int identity = (e + t) % 3 != 0;
            play_step(l, user, 10 + e, t, identity ? all_items : some_items,
                      identity ? N_ITEMS : 5, (int)((e + t) % (WORLD_HISTORY + 1)),
                      0.5 * (double)((e * 7 + t) % 5) - 1.0, slate);
        }
        end_episode(l, user, 10 + e);
    }
}

/* The coefficients of the loss per step, and what learner_minibatch reported. */
typedef struct {
    double g[3 * 200];                /* [step][g_logp, g_entropy, g_value] */
    double logp[200], entropy[200], value[200];
    int seen[200];
} fixed_loss;

static void fixed_step_loss(void *ctx, size_t i, const learner_eval *ev, learner_grad *g)
{
    fixed_loss *f = ctx;
    f->logp[i] = ev->logp;
    f->entropy[i] = ev->entropy;
    f->value[i] = ev->value;
    f->seen[i]++;
    *g = (learner_grad){f->g[3 * i], f->g[3 * i + 1], f->g[3 * i + 2]};
}

/* learner_minibatch over a shuffled minibatch of 100 steps against learner_forward
 * and learner_backward step by step, with random coefficients: log-probabilities,
 * entropies and values to 1e-12 (rel_err of gradcheck.h), and each tensor's
 * gradient to 1e-12 of its largest element (the sums run in another order: the
 * chunks' dgemms, the identity steps first; the worst seen is 5e-15). With
 * want_value = 0, no value is reported and g_value is ignored. */
static void check_minibatch(const agent_type *t, const char *const *kv, int n_kv,
                            int want_value, double tol)
{
    gsl_rng *r = rng_new(29);
    learner *l = make_learner(t, kv, n_kv, r);
    play_many(l);
    random_weights(l, r);
    ck_assert_int_eq(learner_take_batch(l, MANY_EPISODES), DS_OK);
    size_t M = 100, P = l->params.n;
    ck_assert_uint_ge(l->batch.n_steps, M);
    ck_assert_uint_le(l->batch.n_steps, 200);
    learner_shuffle(l);
    static fixed_loss f;
    memset(&f, 0, sizeof f);
    for (size_t i = 0; i < 3 * 200; i++)
        f.g[i] = gsl_ran_gaussian(r, 1.0);
    nn_params_zero_grad(&l->params);
    learner_minibatch(l, l->batch.order, M, want_value, 1, fixed_step_loss, &f);
    double *got = malloc(P * sizeof *got);
    ck_assert_ptr_nonnull(got);
    memcpy(got, l->params.grad, P * sizeof *got);
    int identity = 0;
    nn_params_zero_grad(&l->params);
    for (size_t j = 0; j < M; j++) {
        size_t i = l->batch.order[j];
        identity += learner_step_at(l, i).candidates == NULL;
        double v, logp = learner_forward(l, i, &v), H = learner_entropy(l, i);
        ck_assert_int_eq(f.seen[i], 1);
        ck_assert_msg(rel_err(f.logp[i], logp) < tol, "step %zu: log P %.17g vs %.17g", i,
                      f.logp[i], logp);
        ck_assert_msg(rel_err(f.entropy[i], H) < tol, "step %zu: H %.17g vs %.17g", i,
                      f.entropy[i], H);
        if (want_value)
            ck_assert_msg(rel_err(f.value[i], v) < 1e-12, "step %zu: V %.17g vs %.17g", i,
                          f.value[i], v);
        else
            ck_assert(isnan(f.value[i]));
        learner_backward(l, i, f.g[3 * i], f.g[3 * i + 1], want_value ? f.g[3 * i + 2] : 0.0);
    }
    /* two chunks (with the transformer, chunks of one step), and candidate lists */
    ck_assert(identity > 64 && M - (size_t)identity > 0);
    double worst_rel = 0.0;
    for (int k = 0; k < l->layout.n_tensors; k++) {
        const nn_tensor *T = &l->layout.tensors[k];
        size_t n = (size_t)T->rows * (size_t)T->cols;
        const double *a = got + T->offset, *b = l->params.grad + T->offset;
        double worst = 0.0, scale = 0.0;
        for (size_t e = 0; e < n; e++) {
            worst = fmax(worst, fabs(a[e] - b[e]));
            scale = fmax(scale, fabs(b[e]));
        }
        ck_assert_msg(worst <= tol * scale, "%s %s: gradient differs by %.3e (scale %.3e)",
                      t->name, T->name, worst, scale);
        worst_rel = scale > 0.0 ? fmax(worst_rel, worst / scale) : worst_rel;
        if (!strstr(T->name, "tf_item_bias") && (want_value || T->name[0] != 'v'))
            ck_assert_msg(scale > 0.0, "%s %s: no gradient", t->name, T->name);
    }
    printf("  minibatch %s (%s, %s, want_value %d): worst gradient difference %.2e of its "
           "tensor's largest\n", t->name, l->cfg.encoder ? "transformer" : "history",
           l->cfg.item_precision == LEARNER_ITEMS_SINGLE ? "single" : "double", want_value,
           worst_rel);
    free(got);
    learner_release_batch(l);
    t->xDestroy(&l->base);
    gsl_rng_free(r);
}

START_TEST(minibatch_matches_steps)
{
    const char *kv[] = {"embed_dim", "4", "hidden", "6", "batch_episodes", "1000"};
    check_minibatch(&ppo_agent, kv, 3, 1, 1e-12);
    check_minibatch(&ppo_agent, kv, 3, 0, 1e-12);
    check_minibatch(&a2c_agent, kv, 3, 1, 1e-12);
    const char *tf[] = {TF_SMALL, "embed_dim", "4", "hidden", "6", "batch_episodes", "1000"};
    check_minibatch(&ppo_agent, tf, TF_SMALL_PAIRS + 3, 1, 1e-12);
    /* the item head in single precision: to single precision (the worst seen is
     * given by the printout) */
    const char *single[] = {"embed_dim", "4", "hidden", "6", "batch_episodes", "1000",
                            "item_precision", "single"};
    check_minibatch(&ppo_agent, single, 4, 1, 1e-5);
    check_minibatch(&a2c_agent, single, 4, 0, 1e-5);
    const char *tf_single[] = {TF_SMALL, "embed_dim", "4", "hidden", "6", "batch_episodes",
                               "1000", "item_precision", "single"};
    check_minibatch(&ppo_agent, tf_single, TF_SMALL_PAIRS + 4, 1, 1e-5);
}
END_TEST

/* The tf_* keys default to transformer_config_defaults, the encoder to history,
 * init to none; learner_validate refuses heads that do not divide the width and
 * a checkpoint for the history encoder. */
START_TEST(transformer_keys)
{
    const agent_type *agents[3] = {&reinforce_agent, &a2c_agent, &ppo_agent};
    char err[ERR_LEN];
    transformer_config want;
    transformer_config_defaults(&want);
    for (int i = 0; i < 3; i++) {
        const learner_config *c = agent_config(agents[i], NULL, 0);
        transformer_config got = learner_transformer_config(c);
        ck_assert(got.context == want.context && got.layers == want.layers &&
                  got.heads == want.heads && got.width == want.width &&
                  got.mlp_ratio == want.mlp_ratio);
        ck_assert_int_eq(c->encoder, LEARNER_ENCODER_HISTORY);
        ck_assert_str_eq(c->init, "none");
        ck_assert(agents[i]->xValidate == learner_validate);
        ck_assert_int_eq(learner_validate(c, err), DS_OK);
    }
    const char *heads[] = {"encoder", "transformer", "tf_heads", "3"};
    ck_assert_int_eq(learner_validate(agent_config(&ppo_agent, heads, 2), err), DS_EINPUT);
    ck_assert_str_eq(err, "'tf_heads' 3 must divide 'tf_width' 32");
    const char *init[] = {"init", "pre.ckpt"};
    ck_assert_int_eq(learner_validate(agent_config(&a2c_agent, init, 1), err), DS_EINPUT);
    ck_assert_str_eq(err, "'init' loads a transformer checkpoint: it needs encoder = "
                          "transformer");
    /* with the transformer, the file is checked: here it does not exist */
    const char *both[] = {"init", "pre.ckpt", "encoder", "transformer"};
    ck_assert_int_eq(learner_validate(agent_config(&a2c_agent, both, 2), err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "cannot read checkpoint 'pre.ckpt'"));
}
END_TEST

/* A checkpoint that cannot be read fails the agent's creation, naming it; the
 * history encoder refuses init. */
START_TEST(init_from_missing_checkpoint)
{
    const char *kv[] = {TF_SMALL, "init", "no/such/dir/pre.ckpt"};
    gsl_rng *r = rng_new(3);
    agent_context ctx = {.init = r, .sampling = r, .minibatch = r, .reward = REWARD_CLICKS};
    agent *a = NULL;
    char err[ERR_LEN];
    ck_assert_int_eq(ppo_agent.xCreate(agent_config(&ppo_agent, kv, TF_SMALL_PAIRS + 1),
                                       &world, &ctx, &a, err), DS_EINPUT);
    ck_assert_ptr_null(a);
    ck_assert_ptr_nonnull(strstr(err, "no/such/dir/pre.ckpt"));
    /* with the history encoder, init is refused before any file is read */
    const char *history[] = {"init", "no/such/dir/pre.ckpt"};
    ck_assert_int_eq(ppo_agent.xCreate(agent_config(&ppo_agent, history, 1), &world, &ctx, &a,
                                       err), DS_EINPUT);
    ck_assert_ptr_null(a);
    ck_assert_ptr_nonnull(strstr(err, "needs encoder = transformer"));
    gsl_rng_free(r);
}
END_TEST

/* init = a checkpoint of another learner's transformer: every tf_* tensor is the
 * saved one, every other tensor what the same seed draws without init. Needs
 * the checkpoint format (agents/checkpoint.c); skipped while the build only has
 * its stand-in, which refuses to write. */
START_TEST(init_loads_checkpoint)
{
    /* the file of seed 7, named by a pattern with {seed} */
    const char *path = "check_learners_init-7.ckpt";
    gsl_rng *r = rng_new(41);
    learner *donor = make_learner(&ppo_agent, (const char *[]){TF_SMALL}, TF_SMALL_PAIRS, r);
    char err[ERR_LEN];
    int rc = checkpoint_save(path, &donor->tf.cfg, donor->tf.n_items, &donor->layout,
                             donor->params.w, err);
    ck_assert_msg(rc == DS_OK, "%s", err);
    const char *kv[] = {TF_SMALL, "init", "check_learners_init-{seed}.ckpt"};
    gsl_rng_set(r, 42);
    learner *loaded = make_learner_of_seed(&ppo_agent, kv, TF_SMALL_PAIRS + 1, r, 7);
    gsl_rng_set(r, 42);
    learner *fresh = make_learner(&ppo_agent, kv, TF_SMALL_PAIRS, r);
    remove(path);
    for (int k = 0; k < loaded->layout.n_tensors; k++) {
        const nn_tensor *t = &loaded->layout.tensors[k];
        size_t n = (size_t)t->rows * (size_t)t->cols;
        const learner *want = strncmp(t->name, "tf_", 3) == 0 ? donor : fresh;
        ck_assert_msg(memcmp(loaded->params.w + t->offset, want->params.w + t->offset,
                             n * sizeof(double)) == 0, "tensor %s", t->name);
    }
    ppo_agent.xDestroy(&donor->base);
    ppo_agent.xDestroy(&loaded->base);
    ppo_agent.xDestroy(&fresh->base);
    gsl_rng_free(r);
}
END_TEST

/* Sets step i's behaviour log-probability so that its ratio at the current
 * weights is rho (up to rounding), and its advantage to A. */
static void ppo_set_step(learner *l, size_t i, double rho, double A)
{
    learner_batch *b = &l->batch;
    traj_episode *ep = b->episodes[b->episode_of[i]];
    ep->logp[b->step_of[i]] = learner_forward(l, i, NULL) - log(rho);
    b->adv[i] = A;
}

/* Clipping, by hand: ten steps with ratios inside and outside [0.8, 1.2] and
 * advantages of both signs (raw advantages, no entropy or value term, so the
 * loss is the surrogate alone). Known answer: L = (1/10) sum_i max(-A_i rho_i,
 * -A_i clip(rho_i, 0.8, 1.2)); its gradient is (1/10) sum over the steps where
 * the first term is the max of -A_i rho_i d log pi(slate_i) / dw, and a step
 * where the clipped term is the max contributes exactly nothing. */
START_TEST(ppo_clipping_known_answer)
{
    const char *kv[] = {"embed_dim", "4", "hidden", "6", "batch_episodes", "100",
                        "norm_adv", "false", "entropy_coef", "0", "value_coef", "0"};
    /* rho, A, whether the clipped term is the max (the step's gradient vanishes) */
    const struct { double rho, A; int clipped; } hand[10] = {
        {0.5, 1.0, 0},  /* below, A > 0: -0.5 > -0.8, unclipped */
        {0.5, -1.0, 1}, /* below, A < 0: 0.8 > 0.5, clipped */
        {1.5, 1.0, 1},  /* above, A > 0: -1.2 > -1.5, clipped */
        {1.5, -1.0, 0}, /* above, A < 0: 1.5 > 1.2, unclipped */
        {1.1, 2.0, 0},  {0.9, -0.5, 0}, /* inside: both terms equal */
        {0.3, 0.7, 0},  {2.5, 0.4, 1},  {1.0, -1.5, 0}, {0.6, -0.25, 1}};
    gsl_rng *r = rng_new(23);
    learner *l = make_learner(&ppo_agent, kv, 6, r);
    play_batch(l);
    random_weights(l, r);
    ck_assert_int_eq(learner_take_batch(l, 4), DS_OK);
    ck_assert_uint_eq(l->batch.n_steps, 10);
    update_row row = learner_row();
    ck_assert_int_eq(l->prepare(l, &row), DS_OK);
    double want = 0.0, kl = 0.0, outside = 0.0;
    for (size_t i = 0; i < 10; i++) {
        double rho = hand[i].rho, A = hand[i].A, c = fmax(0.8, fmin(1.2, rho));
        ppo_set_step(l, i, rho, A);
        ck_assert_int_eq(-A * c > -A * rho, hand[i].clipped); /* the table is right */
        want += fmax(-A * rho, -A * c) / 10;
        kl += (rho - 1 - log(rho)) / 10;
        outside += fabs(rho - 1) > 0.2 ? 0.1 : 0.0;
    }
    nn_params_zero_grad(&l->params);
    double loss;
    ck_assert_int_eq(l->loss(l, 1, &loss, &row), DS_OK);
    ck_assert_double_eq_tol(loss, want, 1e-12);
    ck_assert_double_eq_tol(row.policy_loss, want, 1e-12);
    ck_assert_double_eq_tol(row.approx_kl, kl, 1e-12);
    ck_assert_double_eq_tol(row.clip_fraction, outside, 1e-12); /* 0.6 */

    /* the expected gradient, step by step; each clipped step would add far from
     * nothing if it were not clipped */
    size_t P = l->params.n;
    double *got = malloc(P * sizeof *got);
    ck_assert_ptr_nonnull(got);
    memcpy(got, l->params.grad, P * sizeof *got);
    for (size_t i = 0; i < 10; i++) {
        if (!hand[i].clipped)
            continue;
        nn_params_zero_grad(&l->params);
        double rho = ppo_ratio(l, i, NULL);
        learner_backward(l, i, -hand[i].A * rho / 10, 0.0, 0.0);
        double largest = 0.0;
        for (size_t k = 0; k < P; k++)
            largest = fmax(largest, fabs(l->params.grad[k]));
        ck_assert_msg(largest > 1e-3, "step %zu: gradient %.3e", i, largest);
    }
    nn_params_zero_grad(&l->params);
    for (size_t i = 0; i < 10; i++) {
        if (hand[i].clipped)
            continue;
        double rho = ppo_ratio(l, i, NULL);
        learner_backward(l, i, -hand[i].A * rho / 10, 0.0, 0.0);
    }
    double worst = 0.0, scale = 0.0;
    for (size_t k = 0; k < P; k++) {
        worst = fmax(worst, fabs(got[k] - l->params.grad[k]));
        scale = fmax(scale, fabs(l->params.grad[k]));
    }
    ck_assert_msg(worst <= 1e-12 * scale, "gradient differs by %.3e (scale %.3e)", worst,
                  scale);

    /* every step clipped: the loss is sum -A clip(rho) / 10 and the gradient is
     * exactly zero, everywhere */
    const double rho_out[10] = {0.5, 1.5, 0.7, 1.3, 2.0, 0.1, 1.25, 0.75, 3.0, 0.6};
    want = 0.0;
    for (size_t i = 0; i < 10; i++) {
        double rho = rho_out[i], A = rho > 1 ? 1.0 + 0.1 * (double)i : -0.5 - 0.1 * (double)i;
        ppo_set_step(l, i, rho, A);
        want += -A * fmax(0.8, fmin(1.2, rho)) / 10;
    }
    nn_params_zero_grad(&l->params);
    ck_assert_int_eq(l->loss(l, 1, &loss, &row), DS_OK);
    ck_assert_double_eq_tol(loss, want, 1e-12);
    ck_assert_double_eq_tol(row.clip_fraction, 1.0, 1e-12);
    for (size_t k = 0; k < P; k++)
        ck_assert_msg(l->params.grad[k] == 0.0, "gradient %.3e at %zu", l->params.grad[k], k);
    free(got);
    learner_release_batch(l);
    ppo_agent.xDestroy(&l->base);
    gsl_rng_free(r);
}
END_TEST

/* Rows handed to the engine's log, captured. */
typedef struct {
    update_row rows[8];
    int n;
} row_log;

static int capture_row(void *ctx, const update_row *row)
{
    row_log *log = ctx;
    ck_assert_int_lt(log->n, 8);
    log->rows[log->n++] = *row;
    return DS_OK;
}

/* Four sessions of two steps, users 0-3 interleaved, episodes first .. first + 3:
 * 8 steps, then the update (batch_episodes 4). */
static void play_short_batch(learner *l, long first)
{
    int slate[SLATE];
    for (int t = 0; t < 2; t++)
        for (int u = 0; u < 4; u++)
            play_step(l, u, first + u, t, t ? some_items : all_items, t ? 5 : N_ITEMS, u + t,
                      (double)((u + t) % 3), slate);
    for (int u = 0; u < 4; u++)
        end_episode(l, u, first + u);
}

/* The update's schedule, counted in Adam steps (params.step): epochs x the
 * non-empty minibatches per update; the learning rate annealed linearly to 0
 * over anneal_updates updates, then held at 0 (the weights stop moving); the
 * target-KL stop after the first epoch; minibatches of one step. */
START_TEST(ppo_update_schedule)
{
    const char *kv[] = {"embed_dim", "4", "hidden", "6", "batch_episodes", "4",
                        "epochs", "3", "minibatches", "4", "anneal_updates", "2",
                        "learning_rate", "1e-3"};
    gsl_rng *r = rng_new(31);
    learner *l = make_learner(&ppo_agent, kv, 7, r);
    row_log log = {.n = 0};
    l->log_update = capture_row;
    l->log_ctx = &log;
    const double rates[4] = {1e-3, 5e-4, 0.0, 0.0}; /* 1e-3 (1 - u / 2), at least 0 */
    double *w = malloc(l->params.n * sizeof *w);
    ck_assert_ptr_nonnull(w);
    for (int u = 0; u < 4; u++) {
        memcpy(w, l->params.w, l->params.n * sizeof *w);
        play_short_batch(l, 4L * u);
        ck_assert_int_eq(log.n, u + 1);
        const update_row *row = &log.rows[u];
        ck_assert_int_eq(row->update, u);
        ck_assert(row->learning_rate == rates[u]);
        ck_assert_int_eq(l->params.step, 12 * (u + 1)); /* 3 epochs x 4 minibatches */
        ck_assert(row->approx_kl >= 0.0 && row->clip_fraction >= 0.0 &&
                  row->clip_fraction <= 1.0 && row->grad_norm > 0.0);
        ck_assert(isfinite(row->policy_loss) && isfinite(row->value_loss) &&
                  isfinite(row->entropy) && isfinite(row->explained_variance));
        int moved = memcmp(w, l->params.w, l->params.n * sizeof *w) != 0;
        ck_assert_int_eq(moved, rates[u] > 0.0);
    }
    ck_assert_uint_eq(traj_completed(&l->store), 0);
    free(w);
    ppo_agent.xDestroy(&l->base);

    /* target_kl: the first epoch's last minibatch moved the policy (KL > 1e-12),
     * so one epoch of 4 minibatches instead of 3 */
    const char *kl_kv[] = {"embed_dim", "4", "hidden", "6", "batch_episodes", "4",
                           "epochs", "3", "target_kl", "1e-12"};
    l = make_learner(&ppo_agent, kl_kv, 5, r);
    play_short_batch(l, 0);
    ck_assert_int_eq(l->params.step, 4);
    ppo_agent.xDestroy(&l->base);

    /* 16 minibatches of 8 steps: 8 of one step (advantage normalised to 0), 8
     * empty ones skipped */
    const char *mb_kv[] = {"embed_dim", "4", "hidden", "6", "batch_episodes", "4",
                           "epochs", "3", "minibatches", "16"};
    l = make_learner(&ppo_agent, mb_kv, 5, r);
    play_short_batch(l, 0);
    ck_assert_int_eq(l->params.step, 24);
    ck_assert(nn_all_finite(l->params.w, l->params.n));
    ppo_agent.xDestroy(&l->base);
    gsl_rng_free(r);
}
END_TEST

/* ---- returns and advantages: hand examples ---- */

START_TEST(returns_known_answers)
{
    /* rewards 1, 0, 2, gamma 0.5: G2 = 2, G1 = 0 + 0.5 * 2 = 1, G0 = 1 + 0.5 * 1 = 1.5
     * (all exact in binary) */
    const double r[3] = {1, 0, 2}, v[3] = {0.5, -1, 0.25};
    double G[3], adv[3];
    learner_reward_to_go(G, r, 3, 0.5);
    ck_assert(G[0] == 1.5 && G[1] == 1.0 && G[2] == 2.0);
    learner_reward_to_go(G, r, 3, 1.0);
    ck_assert(G[0] == 3.0 && G[1] == 2.0 && G[2] == 2.0);
    /* lambda 1: the reward-to-go minus the value, 1.5 - 0.5, 1 + 1, 2 - 0.25 */
    learner_gae(adv, r, v, 3, 0.5, 1.0);
    ck_assert(adv[0] == 1.0 && adv[1] == 2.0 && adv[2] == 1.75);
    /* lambda 0: TD errors delta_t = r_t + 0.5 V_{t+1} - V_t with V_3 = 0:
     * 1 - 0.5 - 0.5 = 0, 0 + 0.125 + 1 = 1.125, 2 - 0.25 = 1.75 */
    learner_gae(adv, r, v, 3, 0.5, 0.0);
    ck_assert(adv[0] == 0.0 && adv[1] == 1.125 && adv[2] == 1.75);
    /* lambda 0.5: A_t = delta_t + 0.25 A_{t+1}: 1.75, 1.125 + 0.4375 = 1.5625,
     * 0 + 0.390625 */
    learner_gae(adv, r, v, 3, 0.5, 0.5);
    ck_assert(adv[0] == 0.390625 && adv[1] == 1.5625 && adv[2] == 1.75);
    /* a one-step episode: G = r, A = r - V */
    learner_reward_to_go(G, r + 2, 1, 0.9);
    learner_gae(adv, r + 2, v + 2, 1, 0.9, 0.95);
    ck_assert(G[0] == 2.0 && adv[0] == 1.75);

    /* explained variance: 1 for a perfect fit, 0 for a constant, and for target
     * (1, 2, 3), pred (1, 2, 4): residuals (0, 0, -1) have variance 2/9 against
     * 2/3, so 1 - 1/3 */
    const double target[3] = {1, 2, 3}, exact[3] = {1, 2, 3}, flat[3] = {5, 5, 5},
                 off[3] = {1, 2, 4};
    ck_assert_double_eq_tol(learner_explained_variance(exact, target, 3), 1.0, 1e-15);
    ck_assert_double_eq_tol(learner_explained_variance(flat, target, 3), 0.0, 1e-15);
    ck_assert_double_eq_tol(learner_explained_variance(off, target, 3), 2.0 / 3, 1e-15);
    ck_assert(isnan(learner_explained_variance(target, flat, 3)));
}
END_TEST

/* ---- trajectories, late purchases, session logs ---- */

/* Late purchases reach their step before the update consumes the episode, two
 * users' interleaved sessions stay apart, and the session log gives each step
 * the topics of its own session's earlier slates. */
START_TEST(late_purchase_reaches_its_step)
{
    const char *kv[] = {"embed_dim", "4", "hidden", "6", "batch_episodes", "100",
                        "gamma", "0.5"};
    gsl_rng *r = rng_new(5);
    learner *l = make_learner(&reinforce_agent, kv, 4, r);
    int s0[SLATE], s1[SLATE], s2[SLATE], other[SLATE];
    play_step(l, 0, 0, 0, all_items, N_ITEMS, 0, 0.0, s0);
    play_step(l, 1, 1, 0, all_items, N_ITEMS, 0, 5.0, other); /* another user */
    play_step(l, 0, 0, 1, all_items, N_ITEMS, 0, 0.0, s1);
    play_step(l, 0, 0, 2, all_items, N_ITEMS, 0, 1.0, s2);

    /* step 2's session topics: the histogram of the 6 items of steps 0 and 1 */
    const traj_episode *ep = traj_find(&l->store, 0, 0);
    ck_assert_ptr_nonnull(ep);
    ck_assert_int_eq(ep->n_steps, 3);
    double hist[N_TOPICS] = {0};
    for (int j = 0; j < SLATE; j++) {
        hist[world_topics[s0[j]]] += 1.0 / 6;
        hist[world_topics[s1[j]]] += 1.0 / 6;
    }
    const double *x2 = ep->x + 2 * (size_t)l->enc.n_features + l->enc.at_session_topics;
    for (int t = 0; t < N_TOPICS; t++)
        ck_assert_double_eq_tol(x2[t], hist[t], 1e-15);
    const double *x0 = ep->x + l->enc.at_session_topics; /* step 0: nothing shown yet */
    for (int t = 0; t < N_TOPICS; t++)
        ck_assert(x0[t] == 0.0);

    end_episode(l, 0, 0);
    late_purchase(l, 0, 0, 1, 2.0); /* completed, not yet consumed: credited */
    ck_assert(traj_find(&l->store, 0, 0)->reward[1] == 2.0);
    end_episode(l, 1, 1);
    ck_assert_int_eq(l->n_free_logs, l->cap_logs); /* every session log released */

    ck_assert_int_eq(learner_take_batch(l, 2), DS_OK);
    update_row row = learner_row();
    ck_assert_int_eq(l->prepare(l, &row), DS_OK);
    /* episode 0: rewards 0, 2 (late), 1; gamma 0.5: G = 0 + 0.5 * 2.5, 2 + 0.5, 1 */
    ck_assert_uint_eq(l->batch.n_steps, 4);
    ck_assert(l->batch.ret[0] == 1.25 && l->batch.ret[1] == 2.5 && l->batch.ret[2] == 1.0);
    ck_assert(l->batch.ret[3] == 5.0); /* the other user's one-step session */
    learner_release_batch(l);

    late_purchase(l, 0, 0, 2, 1.0); /* consumed: counted as lost */
    ck_assert_int_eq(l->store.late_rewards_lost, 1);
    ck_assert_int_eq(l->store.rewards_applied, 5);

    /* a new session of user 0 starts with no session topics */
    play_step(l, 0, 2, 0, all_items, N_ITEMS, 0, 0.0, s0);
    ep = traj_find(&l->store, 0, 2);
    for (int t = 0; t < N_TOPICS; t++)
        ck_assert(ep->x[l->enc.at_session_topics + t] == 0.0);

    /* eval phase: nothing is recorded, but the session log still feeds the
     * encoder (l->x holds the last step's features) */
    end_episode(l, 0, 2);
    l->base.learning = 0;
    size_t held = l->store.steps_held;
    play_step(l, 3, 7, 0, all_items, N_ITEMS, 0, 0.0, s0);
    play_step(l, 3, 7, 1, all_items, N_ITEMS, 0, 0.0, s1);
    ck_assert_uint_eq(l->store.steps_held, held);
    for (int t = 0; t < N_TOPICS; t++) {
        double want = 0;
        for (int j = 0; j < SLATE; j++)
            want += world_topics[s0[j]] == t ? 1.0 / SLATE : 0.0;
        ck_assert_double_eq_tol(l->x[l->enc.at_session_topics + t], want, 1e-15);
    }
    end_episode(l, 3, 7);
    ck_assert_int_eq(l->n_free_logs, l->cap_logs);
    reinforce_agent.xDestroy(&l->base);
    gsl_rng_free(r);
}
END_TEST

/* greedy_eval: in the eval phase the slate is the top k logits, every time; in
 * training it is sampled. */
START_TEST(greedy_eval_is_deterministic)
{
    const char *kv[] = {"greedy_eval", "true"};
    gsl_rng *r = rng_new(8);
    learner *l = make_learner(&a2c_agent, kv, 1, r);
    int first[SLATE], again[SLATE];
    l->base.learning = 0;
    /* episodes from 10 on are return visits: the same observation every time */
    play_step(l, 0, 10, 0, all_items, N_ITEMS, 4, 0.0, first);
    int top[SLATE];
    policy_top_k(top, l->work.logits, N_ITEMS, SLATE);
    ck_assert_int_eq(memcmp(first, top, sizeof top), 0); /* identity: positions = items */
    end_episode(l, 0, 10);
    for (int e = 11; e < 30; e++) {
        play_step(l, 0, e, 0, all_items, N_ITEMS, 4, 0.0, again);
        ck_assert_int_eq(memcmp(first, again, sizeof again), 0);
        end_episode(l, 0, e);
    }
    a2c_agent.xDestroy(&l->base);
    gsl_rng_free(r);
}
END_TEST

/* The logits of one eval-style act of user 0 (a return visit) into out [N_ITEMS]. */
static void act_logits_of(learner *l, long episode, double *out)
{
    int slate[SLATE];
    play_step(l, 0, episode, 0, all_items, N_ITEMS, 4, 0.0, slate);
    end_episode(l, 0, episode);
    memcpy(out, l->work.logits, N_ITEMS * sizeof *out);
}

/* max |a - b| / max |a| over n. */
static double relative_diff(const double *a, const double *b, int n)
{
    double diff = 0, size = 0;
    for (int i = 0; i < n; i++) {
        diff = fmax(diff, fabs(a[i] - b[i]));
        size = fmax(size, fabs(a[i]));
    }
    return diff / size;
}

/* serve = int8 acts with a snapshot in the eval phase only: its logits are
 * close to, but not, the double ones; learning again acts in double, exactly;
 * a later eval phase snapshots the weights as they are then. Tolerance: 5% of
 * the largest logit (check_quant derives the error bound of the int8 networks;
 * measured here 0.8% with the history encoder, 1.6% with the transformer). */
static void check_int8_serving(const char *const *kv, int n)
{
    const char *kv8[16];
    memcpy(kv8, kv, (size_t)n * 2 * sizeof *kv8);
    kv8[2 * n] = "serve";
    kv8[2 * n + 1] = "int8";
    gsl_rng *r = rng_new(12), *r8 = rng_new(12);
    learner *l = make_learner(&ppo_agent, kv, n, r), *q = make_learner(&ppo_agent, kv8, n + 1, r8);
    random_weights(l, r);
    memcpy(q->params.w, l->params.w, l->params.n * sizeof *l->params.w);
    double want[N_ITEMS], got[N_ITEMS];
    l->base.learning = q->base.learning = 0;
    act_logits_of(l, 10, want);
    act_logits_of(q, 10, got);
    double err = relative_diff(want, got, N_ITEMS);
    ck_assert_msg(err > 0 && err < 0.05, "int8 logits differ by %g", err);
    ck_assert_int_eq(q->served, 1);
    q->base.learning = 1; /* learning: the double networks, bit for bit */
    act_logits_of(q, 11, got);
    ck_assert_int_eq(q->served, 0);
    ck_assert_int_eq(memcmp(want, got, sizeof got), 0);
    for (size_t i = 0; i < l->params.n; i++) /* the weights move */
        l->params.w[i] = q->params.w[i] = 1.1 * l->params.w[i];
    q->base.learning = 0;
    act_logits_of(l, 12, want);
    act_logits_of(q, 12, got);
    err = relative_diff(want, got, N_ITEMS);
    ck_assert_msg(err > 0 && err < 0.05, "int8 logits after an update differ by %g", err);
    ppo_agent.xDestroy(&l->base);
    ppo_agent.xDestroy(&q->base);
    gsl_rng_free(r);
    gsl_rng_free(r8);
}

/* item_precision = single acts with the float copy of E_out: its logits within
 * 1e-6 of the largest of the double ones, also after an Adam step has moved the
 * weights (by about 5% of the largest logit here: a stale copy fails by far). */
START_TEST(single_acting_follows_the_weights)
{
    const char *single[] = {"item_precision", "single"}, *dbl[] = {"item_precision", "double"};
    gsl_rng *r = rng_new(31), *r2 = rng_new(31);
    learner *l = make_learner(&ppo_agent, single, 1, r), *d = make_learner(&ppo_agent, dbl, 1, r2);
    random_weights(l, r);
    memcpy(d->params.w, l->params.w, l->params.n * sizeof *l->params.w);
    double want[N_ITEMS], got[N_ITEMS], before[N_ITEMS];
    act_logits_of(l, 10, got);
    act_logits_of(d, 10, want);
    ck_assert_ptr_nonnull(l->chunk.E_single);
    ck_assert_ptr_null(d->chunk.E_single);
    double err = relative_diff(want, got, N_ITEMS);
    ck_assert_msg(err > 0 && err < 1e-6, "%g", err); /* single precision, not double */
    memcpy(before, want, sizeof before);
    for (size_t i = 0; i < l->params.n; i++)
        l->params.grad[i] = d->params.grad[i] = gsl_ran_gaussian(r, 1.0);
    ck_assert_int_eq(learner_apply_gradient(l, 0.05, NULL), DS_OK);
    ck_assert_int_eq(learner_apply_gradient(d, 0.05, NULL), DS_OK);
    act_logits_of(l, 11, got);
    act_logits_of(d, 11, want);
    ck_assert_msg(relative_diff(want, before, N_ITEMS) > 1e-2, "the weights did not move");
    err = relative_diff(want, got, N_ITEMS);
    ck_assert_msg(err < 1e-6, "%g", err);
    ppo_agent.xDestroy(&l->base);
    ppo_agent.xDestroy(&d->base);
    gsl_rng_free(r);
    gsl_rng_free(r2);
}
END_TEST

START_TEST(int8_serving_in_eval_only)
{
    const char *history[] = {"greedy_eval", "true"};
    check_int8_serving(history, 1);
    const char *tf[] = {TF_SMALL, "greedy_eval", "true"};
    check_int8_serving(tf, TF_SMALL_PAIRS + 1);
}
END_TEST

/* ---- through the engine ---- */

static double env_config[128], run_agent_config[256];

static run_spec bandit_spec(const agent_type *t, uint64_t seed, int train, int eval)
{
    char err[ERR_LEN];
    ck_assert_int_eq(param_defaults(&bandit_env.params, env_config, err), DS_OK);
    ck_assert_int_eq(param_defaults(&t->params, run_agent_config, err), DS_OK);
    run_spec r = {.env = &bandit_env, .agent = t, .seed = seed, .env_config = env_config,
                  .agent_config = run_agent_config};
    r.settings = (run_settings){.name = "bandit", .train_episodes = train,
                                .eval_episodes = eval, .window = 10000, .history = 10,
                                .reward = REWARD_CLICKS};
    return r;
}

/* The bandit's defaults are the acceptance setting: 10 items, slate 3,
 * utility_step 0.1, u0 1, one-step sessions rewarded by clicks; the best slate
 * clicks with probability 0.7113486 (tests/check_bandit.c), a random one with
 * 0.6401157. Budget: 30,000 train episodes at the default hyperparameters
 * (stochastic eval: slates sampled from the policy), then 20,000 eval episodes,
 * seed 1, history 10. Measured eval click rates: reinforce 0.7069, a2c 0.7006
 * (0.994 and 0.985 of the optimum, 937 and 1875 updates); the bar 0.97 * 0.7113486
 * = 0.6900 lies 5.2 and 3.3 standard errors (0.0032 over 20,000 episodes) below.
 * With 50,000 train and 50,000 eval episodes, seeds 1-3 reach 1.006, 0.989, 1.004
 * (reinforce) and 0.999, 0.984, 1.003 (a2c) of the optimum. */
START_TEST(bandit_is_learned)
{
    const agent_type *agents[2] = {&reinforce_agent, &a2c_agent};
    for (int i = 0; i < 2; i++) {
        run_spec r = bandit_spec(agents[i], 1, 30000, 20000);
        run_result res;
        char err[ERR_LEN];
        ck_assert_msg(run_execute(&r, NULL, &res, err) == DS_OK, "%s", err);
        ck_assert_int_eq(res.status, RUN_DONE);
        ck_assert_int_eq(res.phases[1].phase, PHASE_EVAL);
        double rate = res.phases[1].reward;
        printf("  bandit %-10s eval click rate %.4f (%.4f of the optimum), %zu updates\n",
               agents[i]->name, rate, rate / 0.7113486, res.n_updates);
        ck_assert_msg(rate >= 0.97 * 0.7113486, "%s: %.4f", agents[i]->name, rate);
        run_result_free(&res);
    }
}
END_TEST

/* ppo on the bandit (see bandit_is_learned): 12,800 train episodes in batches
 * of 64 one-step sessions (200 updates of 4 epochs x 4 minibatches of 16 steps,
 * learning rate 3e-4), then 20,000 eval episodes (slates sampled from the
 * policy), seed 1. Measured: 0.7029 (0.988 of the optimum); the bar 0.6900 lies
 * 4.0 standard errors (0.0032) below. Batches of 64 rather than the default 16,
 * whose minibatches of 4 one-step sessions normalise their advantages over 4
 * clicks: with 15,000 train episodes seeds 1-3 reach 0.7067, 0.6865, 0.6659 in
 * batches of 16 and 0.6979, 0.6938, 0.6967 in batches of 64 (and the latter in
 * half the time). With 30,000 train and 20,000 eval episodes, batches of 64,
 * seeds 1-3 reach 0.988, 0.990, 0.976 of the optimum. */
START_TEST(ppo_bandit_is_learned)
{
    run_spec r = bandit_spec(&ppo_agent, 1, 12800, 20000);
    set_param(&ppo_agent, run_agent_config, "batch_episodes", "64");
    set_param(&ppo_agent, run_agent_config, "learning_rate", "3e-4");
    run_result res;
    char err[ERR_LEN];
    ck_assert_msg(run_execute(&r, NULL, &res, err) == DS_OK, "%s", err);
    ck_assert_int_eq(res.status, RUN_DONE);
    ck_assert_int_eq(res.phases[1].phase, PHASE_EVAL);
    double rate = res.phases[1].reward;
    printf("  bandit ppo        eval click rate %.4f (%.4f of the optimum), %zu updates\n",
           rate, rate / 0.7113486, res.n_updates);
    ck_assert_uint_eq(res.n_updates, 200);
    ck_assert_msg(rate >= 0.97 * 0.7113486, "ppo: %.4f", rate);
    run_result_free(&res);
}
END_TEST

/* NaN == NaN here: the diagnostics that do not apply are NAN in both. */
static int same_double(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

/* Every field but steps_per_second, which is wall-clock time. */
static int same_updates(const run_result *a, const run_result *b)
{
    if (a->n_updates != b->n_updates)
        return 0;
    for (size_t i = 0; i < a->n_updates; i++) {
        const update_row *x = &a->updates[i], *y = &b->updates[i];
        if (x->update != y->update || x->time != y->time ||
            !same_double(x->policy_loss, y->policy_loss) ||
            !same_double(x->value_loss, y->value_loss) || !same_double(x->entropy, y->entropy) ||
            !same_double(x->approx_kl, y->approx_kl) ||
            !same_double(x->clip_fraction, y->clip_fraction) ||
            !same_double(x->explained_variance, y->explained_variance) ||
            !same_double(x->grad_norm, y->grad_norm) ||
            !same_double(x->learning_rate, y->learning_rate))
            return 0;
    }
    return 1;
}

/* A small shop with multi-step sessions, several updates and interleaved
 * users: the same seed twice gives identical episodes and updates, another seed
 * other episodes; the update rows carry the diagnostics that apply and NAN for
 * the rest. */
START_TEST(same_seed_same_rows)
{
    const agent_type *agents[3] = {&reinforce_agent, &a2c_agent, &ppo_agent};
    for (int i = 0; i < 3; i++) {
        char err[ERR_LEN];
        ck_assert_int_eq(param_defaults(&shop_env.params, env_config, err), DS_OK);
        ck_assert_int_eq(param_defaults(&agents[i]->params, run_agent_config, err), DS_OK);
        set_param(agents[i], run_agent_config, "batch_episodes", "8");
        const char *env_kv[][2] = {{"items", "80"}, {"users", "60"}, {"topics", "5"},
                                   {"dim", "6"}, {"slate", "4"}};
        for (int k = 0; k < 5; k++) {
            const param_spec *s = param_find(&shop_env.params, env_kv[k][0]);
            ck_assert_int_eq(param_parse(s, env_kv[k][1], env_config, err), DS_OK);
        }
        run_spec r = {.env = &shop_env, .agent = agents[i], .seed = 5,
                      .env_config = env_config, .agent_config = run_agent_config};
        r.settings = (run_settings){.name = "t", .train_episodes = 200, .eval_episodes = 50,
                                    .window = 50, .history = 10,
                                    .reward = REWARD_PURCHASES};
        run_result a, b, c;
        ck_assert_msg(run_execute(&r, NULL, &a, err) == DS_OK, "%s", err);
        ck_assert_msg(run_execute(&r, NULL, &b, err) == DS_OK, "%s", err);
        r.seed = 6;
        ck_assert_msg(run_execute(&r, NULL, &c, err) == DS_OK, "%s", err);
        ck_assert_int_eq(a.status, RUN_DONE);
        ck_assert_uint_eq(a.n_episodes, 250);
        /* 200 train episodes / 8, less one when a train session or more is still
         * in progress as the first eval session starts (it ends with learning off) */
        ck_assert(a.n_updates == 25 || a.n_updates == 24);
        ck_assert(same_episodes(&a, &b));
        ck_assert(same_updates(&a, &b));
        ck_assert(!same_episodes(&a, &c));
        int is_a2c = agents[i] == &a2c_agent, is_ppo = agents[i] == &ppo_agent;
        int valued = is_a2c || is_ppo;
        for (size_t u = 0; u < a.n_updates; u++) {
            const update_row *row = &a.updates[u];
            ck_assert_int_eq(row->update, (long)u);
            ck_assert(isfinite(row->policy_loss) && isfinite(row->entropy));
            ck_assert(row->grad_norm >= 0.0 && row->steps_per_second > 0.0);
            ck_assert(row->learning_rate == (is_ppo ? 3e-4 : is_a2c ? 7e-4 : 1e-3));
            /* only ppo has a ratio: approx KL >= 0, clip fraction in [0, 1] */
            if (is_ppo)
                ck_assert(row->approx_kl >= 0.0 && row->clip_fraction >= 0.0 &&
                          row->clip_fraction <= 1.0);
            else
                ck_assert(isnan(row->approx_kl) && isnan(row->clip_fraction));
            /* reinforce's default baseline is the moving average: no value fit */
            ck_assert(valued ? isfinite(row->value_loss) : isnan(row->value_loss));
            ck_assert(valued ? !isnan(row->explained_variance)
                             : isnan(row->explained_variance));
            ck_assert(u == 0 || row->time >= a.updates[u - 1].time);
        }
        run_result_free(&a);
        run_result_free(&b);
        run_result_free(&c);
    }
}
END_TEST

/* The same seed twice with the transformer encoder (a small one, context 10 =
 * the run's history): identical episodes and updates for a2c and ppo; another
 * seed, or the history encoder, other episodes. */
START_TEST(transformer_same_seed_same_rows)
{
    const agent_type *agents[2] = {&a2c_agent, &ppo_agent};
    const char *tf_kv[][2] = {{"encoder", "transformer"}, {"tf_context", "10"},
                              {"tf_width", "8"}, {"tf_layers", "1"}, {"batch_episodes", "8"}};
    const char *env_kv[][2] = {{"items", "60"}, {"users", "40"}, {"topics", "4"},
                               {"dim", "6"}, {"slate", "4"}};
    for (int i = 0; i < 2; i++) {
        char err[ERR_LEN];
        ck_assert_int_eq(param_defaults(&shop_env.params, env_config, err), DS_OK);
        for (int k = 0; k < 5; k++) {
            const param_spec *s = param_find(&shop_env.params, env_kv[k][0]);
            ck_assert_int_eq(param_parse(s, env_kv[k][1], env_config, err), DS_OK);
        }
        ck_assert_int_eq(param_defaults(&agents[i]->params, run_agent_config, err), DS_OK);
        for (int k = 0; k < 5; k++)
            set_param(agents[i], run_agent_config, tf_kv[k][0], tf_kv[k][1]);
        run_spec r = {.env = &shop_env, .agent = agents[i], .seed = 5,
                      .env_config = env_config, .agent_config = run_agent_config};
        r.settings = (run_settings){.name = "t", .train_episodes = 80, .eval_episodes = 20,
                                    .window = 50, .history = 10,
                                    .reward = REWARD_PURCHASES};
        run_result a, b, c, h;
        ck_assert_msg(run_execute(&r, NULL, &a, err) == DS_OK, "%s", err);
        ck_assert_msg(run_execute(&r, NULL, &b, err) == DS_OK, "%s", err);
        r.seed = 6;
        ck_assert_msg(run_execute(&r, NULL, &c, err) == DS_OK, "%s", err);
        r.seed = 5;
        set_param(agents[i], run_agent_config, "encoder", "history");
        ck_assert_msg(run_execute(&r, NULL, &h, err) == DS_OK, "%s", err);
        ck_assert_int_eq(a.status, RUN_DONE);
        ck_assert(a.n_updates >= 9); /* 80 train episodes / 8, less one in progress */
        ck_assert(same_episodes(&a, &b) && same_updates(&a, &b));
        ck_assert(!same_episodes(&a, &c));
        ck_assert(!same_episodes(&a, &h));
        for (size_t u = 0; u < a.n_updates; u++)
            ck_assert(isfinite(a.updates[u].policy_loss) && isfinite(a.updates[u].value_loss));
        run_result_free(&a);
        run_result_free(&b);
        run_result_free(&c);
        run_result_free(&h);
    }
}
END_TEST

/* With Adam every parameter moves by about the learning rate per update, so a
 * merely large rate (1e6) only saturates the networks; 1e300 makes the next
 * logits overflow. The run ends diverged with the agent's reason, and
 * run_execute still returns DS_OK (the sweep goes on). */
START_TEST(huge_learning_rate_diverges)
{
    const agent_type *agents[3] = {&reinforce_agent, &a2c_agent, &ppo_agent};
    for (int i = 0; i < 3; i++) {
        run_spec r = bandit_spec(agents[i], 3, 2000, 100);
        set_param(agents[i], run_agent_config, "learning_rate", "1e300");
        run_result res;
        char err[ERR_LEN];
        ck_assert_msg(run_execute(&r, NULL, &res, err) == DS_OK, "%s", err);
        ck_assert_int_eq(res.status, RUN_DIVERGED);
        printf("  diverged: %s\n", res.message);
        ck_assert_ptr_nonnull(strstr(res.message, agents[i]->name));
        ck_assert(strstr(res.message, "not finite") || strstr(res.message, "NaN") ||
                  strstr(res.message, "Inf"));
        ck_assert_uint_lt(res.n_episodes, 2100);
        run_result_free(&res);
    }
}
END_TEST

/* ---- errors ---- */

START_TEST(bad_observations_are_refused)
{
    gsl_rng *r = rng_new(2);
    learner *l = make_learner(&reinforce_agent, NULL, 0, r);
    agent *a = &l->base;
    int slate[SLATE];
    const int bad[3] = {0, 9, 1};
    observation obs = {.user = 0, .episode = 0, .step = 0, .since_last_visit = INFINITY,
                       .candidates = bad, .n_candidates = 3};
    ck_assert_int_eq(a->type->xAct(a, &obs, slate), DS_EINPUT); /* item 9 */
    ck_assert_ptr_nonnull(strstr(a->err, "9"));
    obs.candidates = all_items;
    obs.n_candidates = 2;
    ck_assert_int_eq(a->type->xAct(a, &obs, slate), DS_EINPUT); /* fewer than k */
    obs.n_candidates = N_ITEMS;
    obs.user = N_USERS;
    ck_assert_int_eq(a->type->xAct(a, &obs, slate), DS_EINPUT);
    obs.user = 0;
    obs.since_last_visit = NAN;
    ck_assert_int_eq(a->type->xAct(a, &obs, slate), DS_EINPUT);
    ck_assert_uint_eq(l->store.steps_held, 0);
    reinforce_agent.xDestroy(a);
    reinforce_agent.xDestroy(NULL); /* a no-op */
    a2c_agent.xDestroy(NULL);
    ppo_agent.xDestroy(NULL);
    gsl_rng_free(r);
}
END_TEST

static Suite *learners_suite(void)
{
    Suite *s = suite_create("learners");
    TCase *grad = tcase_create("gradients");
    tcase_set_timeout(grad, 120);
    tcase_add_test(grad, reinforce_moving_average_gradient);
    tcase_add_test(grad, reinforce_learned_topk_gradient);
    tcase_add_test(grad, a2c_gradient);
    tcase_add_test(grad, ppo_gradient);
    tcase_add_test(grad, ppo_clip_value_gradient);
    tcase_add_test(grad, reinforce_transformer_gradient);
    tcase_add_test(grad, a2c_transformer_gradient);
    tcase_add_test(grad, ppo_transformer_gradient);
    suite_add_tcase(s, grad);
    TCase *core = tcase_create("core");
    tcase_add_test(core, returns_known_answers);
    tcase_add_test(core, ppo_clipping_known_answer);
    tcase_add_test(core, ppo_update_schedule);
    tcase_add_test(core, late_purchase_reaches_its_step);
    tcase_add_test(core, greedy_eval_is_deterministic);
    tcase_add_test(core, int8_serving_in_eval_only);
    tcase_add_test(core, single_acting_follows_the_weights);
    tcase_add_test(core, bad_observations_are_refused);
    tcase_add_test(core, replay_reproduces_acting);
    tcase_add_test(core, minibatch_matches_steps);
    tcase_add_test(core, transformer_keys);
    tcase_add_test(core, init_from_missing_checkpoint);
    tcase_add_test(core, init_loads_checkpoint);
    suite_add_tcase(s, core);
    TCase *engine = tcase_create("engine");
    tcase_set_timeout(engine, 300);
    tcase_add_test(engine, bandit_is_learned);
    tcase_add_test(engine, ppo_bandit_is_learned);
    tcase_add_test(engine, same_seed_same_rows);
    tcase_add_test(engine, transformer_same_seed_same_rows);
    tcase_add_test(engine, huge_learning_rate_diverges);
    suite_add_tcase(s, engine);
    return s;
}

CHECK_MAIN(learners_suite)
