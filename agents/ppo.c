/* ppo: proximal policy optimisation with the clipped surrogate (Schulman et al.
 * 2017, "Proximal Policy Optimization Algorithms") over Plackett-Luce slates,
 * following CleanRL's ppo.py (Huang et al. 2022, "The 37 Implementation Details
 * of Proximal Policy Optimization") with sessions in place of environment
 * rollouts.
 *
 * The policy, the value trunk, the state encoder, acting and the trajectories
 * are the learner's (agents/learner.h). Acting records, per step, the slate's
 * log-probability log pi_old(slate | s) and the value V_old(s) of the weights
 * that acted. Every batch_episodes completed sessions, one update:
 *
 *   1. advantages by GAE(gamma, gae_lambda) within each session from the STORED
 *      values V_old (terminal at the session's end: no bootstrap past its last
 *      step), and value targets R_t = A_t + V_old(s_t), as CleanRL computes them
 *      from the rollout's values; all held constant below;
 *   2. epochs passes over the batch's N steps, each in a fresh shuffle
 *      (learner_shuffle, the minibatch stream) cut into `minibatches` contiguous
 *      chunks of near-equal size (chunk j is [j N / M, (j + 1) N / M), so sizes
 *      differ by at most one when N is not a multiple of M; an empty chunk, when
 *      N < M, is skipped); per minibatch B of n steps, one Adam step (clipped to
 *      max_grad_norm) on
 *
 *        L = (1/n) sum_B max(-A'_t rho_t, -A'_t clip(rho_t, 1 - clip, 1 + clip))
 *            + value_coef * L_V - entropy_coef * (1/n) sum_B H_t,
 *
 *      with rho_t = exp(log pi(slate_t | s_t) - log pi_old(slate_t | s_t)) on the
 *      exact Plackett-Luce log-probability of the whole ordered slate, H_t the
 *      entropy of the first-position softmax (agents/nn.h), A'_t the advantage,
 *      normalised over the minibatch when norm_adv ((A - mean) / (std + 1e-8),
 *      std with the n - 1 divisor as torch's; a one-step minibatch gets A' = 0),
 *      and the value loss
 *        L_V = 0.5 (1/n) sum_B (V(s_t) - R_t)^2, or with clip_value
 *        L_V = 0.5 (1/n) sum_B max((V - R)^2, (V_old + clip(V - V_old, -clip, clip) - R)^2);
 *   3. target_kl > 0: after each epoch, if the approximate KL of its last
 *      minibatch exceeds target_kl, the remaining epochs are skipped (CleanRL).
 *
 * Where max() is attained by the clipped term strictly, that term is constant in
 * the weights, so the step contributes no gradient: the clipped surrogate's
 * point.
 *
 * The ratio is of whole slates: log rho is the sum of the k positions' log-
 * ratios, so where those agree a given clip bounds each position's change about
 * k times more tightly than it would bound a single action's in ordinary PPO.
 *
 * Learning-rate annealing. The engine does not tell an agent how long its train
 * phase is, so the schedule is counted in updates: with anneal_updates = U > 0,
 * update u (from 0) steps at learning_rate * max(0, 1 - u / U), CleanRL's linear
 * schedule over U updates (then 0: the weights stay put). To anneal over a train
 * phase of T episodes, set U = T / batch_episodes. U = 0 (the default): no
 * annealing.
 *
 * Diagnostics (one update row per batch): policy_loss, value_loss (L_V above,
 * with its 0.5), entropy, approx_kl (mean of (rho - 1) - log rho, Schulman's
 * low-variance estimator as CleanRL logs it) and clip_fraction (share of steps
 * with |rho - 1| > clip) are means over the update's minibatches, each taken at
 * the weights before its Adam step; grad_norm is the mean pre-clip norm;
 * explained_variance is of R by V_old over the batch; learning_rate the
 * (annealed) rate of this update. */
#include "agent.h"
#include "learner.h"

#include "../sim/common.h"

#include <math.h>
#include <stddef.h>

/* Every hyperparameter of ppo; the common ones first (learner.h). */
typedef struct {
    learner_config common; /* embed_dim 16, hidden 64, history_decay 0.8,
                              learning_rate 3e-4, adam_eps 1e-5, max_grad_norm 0.5,
                              batch_episodes 64, gamma 0.99, greedy_eval false */
    double gae_lambda;     /* GAE lambda, 0.95 */
    double clip;           /* surrogate clipping epsilon, 0.2 */
    int epochs;            /* passes over each batch, 4 */
    int minibatches;       /* minibatches per pass, 4 */
    int norm_adv;          /* normalise advantages per minibatch, true */
    int clip_value;        /* clipped value loss, false */
    double value_coef;     /* weight of the value loss, 0.5 */
    double entropy_coef;   /* weight of the entropy bonus, 0.01 */
    double target_kl;      /* early stop of the epochs; 0 = off */
    int anneal_updates;    /* linear learning-rate decay to 0 over this many
                              updates; 0 = constant rate */
} ppo_config;

static const param_spec ppo_params[] = {
    LEARNER_PARAM_SPECS("3e-4", "64"), /* batches of 16 missed the bandit bar on one of three seeds */
    P_REAL(ppo_config, gae_lambda, "0.95", 0, 1,
           "GAE lambda: 0 one-step TD advantages, 1 Monte-Carlo returns minus values"),
    P_REAL(ppo_config, clip, "0.2", 1e-6, 1e6,
           "clipping epsilon of the probability ratio (and of the value with clip_value)"),
    P_INT(ppo_config, epochs, "4", 1, 1000, "passes over each batch"),
    P_INT(ppo_config, minibatches, "4", 1, 1000000, "shuffled minibatches per pass"),
    P_BOOL(ppo_config, norm_adv, "true", "normalise the advantages within each minibatch"),
    P_BOOL(ppo_config, clip_value, "false",
           "clip the value loss around the values stored when acting (CleanRL's clip_vloss)"),
    P_REAL(ppo_config, value_coef, "0.5", 0, 1e6, "weight of the value loss"),
    P_REAL(ppo_config, entropy_coef, "0.01", 0, 1e6,
           "weight of the entropy bonus (first-position softmax)"),
    P_REAL(ppo_config, target_kl, "0", 0, 1e9,
           "skip the remaining epochs of an update when the approximate KL of an epoch's "
           "last minibatch exceeds this; 0 = off"),
    P_INT(ppo_config, anneal_updates, "0", 0, 1000000000,
          "decay the learning rate linearly to 0 over this many updates (train episodes / "
          "batch_episodes anneals over the train phase); 0 = constant"),
};

typedef struct {
    learner l; /* first: the shared core, itself an agent */
    ppo_config cfg;
    size_t mb_lo, mb_hi; /* the minibatch the loss is over: batch.order[mb_lo .. mb_hi) */
    double adv_mean, adv_scale; /* its advantage normalisation: A' = (A - mean) * scale */
} ppo;

/* ---- the loss ---- */

/* The advantage normalisation of the current minibatch (a constant of the loss). */
static void minibatch_advantage_stats(ppo *p)
{
    const learner_batch *b = &p->l.batch;
    size_t n = p->mb_hi - p->mb_lo;
    p->adv_mean = 0.0;
    p->adv_scale = 1.0;
    if (!p->cfg.norm_adv || n == 0)
        return;
    double mean = 0.0, ss = 0.0;
    for (size_t j = p->mb_lo; j < p->mb_hi; j++)
        mean += b->adv[b->order[j]];
    mean /= (double)n;
    for (size_t j = p->mb_lo; j < p->mb_hi; j++) {
        double d = b->adv[b->order[j]] - mean;
        ss += d * d;
    }
    double sd = n > 1 ? sqrt(ss / (double)(n - 1)) : 0.0;
    p->adv_mean = mean;
    p->adv_scale = 1.0 / (sd + 1e-8);
}

/* Loss over the steps batch.order[lo .. hi), normalisation included. */
static void select_minibatch(ppo *p, size_t lo, size_t hi)
{
    p->mb_lo = lo;
    p->mb_hi = hi;
    minibatch_advantage_stats(p);
}

/* Step 1: advantages and value targets from the stored values; the loss is over
 * the whole batch until the update selects a minibatch. */
static int ppo_prepare(learner *l, update_row *row)
{
    ppo *p = (ppo *)l;
    learner_batch *b = &l->batch;
    learner_batch_gae(l, l->cfg.gamma, p->cfg.gae_lambda);
    row->explained_variance = learner_explained_variance(b->value, b->ret, b->n_steps);
    select_minibatch(p, 0, b->n_steps);
    return DS_OK;
}

/* The clipped value loss term (V_clipped - R)^2 or (V - R)^2, whichever is
 * larger, and its derivative in V. */
static double value_term(const ppo *p, double v, double v_old, double R, double *dv)
{
    double e = v - R, unclipped = e * e;
    *dv = 2.0 * e;
    if (!p->cfg.clip_value)
        return unclipped;
    double c = p->cfg.clip, d = v - v_old;
    double vc = v_old + (d < -c ? -c : d > c ? c : d), ec = vc - R, clipped = ec * ec;
    if (clipped > unclipped) { /* strictly: then |d| > c and vc is constant */
        *dv = 0.0;
        return clipped;
    }
    return unclipped;
}

/* What step 2's L sums over the minibatch, and its constants. */
typedef struct {
    const ppo *p;
    double n; /* steps in the minibatch */
    double policy_loss, value_loss, entropy, kl, clipped;
} ppo_sums_mb;

/* One step's share of L and its gradient coefficients (learner_step_loss). */
static void ppo_step_loss(void *ctx, size_t i, const learner_eval *ev, learner_grad *g)
{
    ppo_sums_mb *t = ctx;
    const ppo *p = t->p;
    const learner_batch *b = &p->l.batch;
    double n = t->n, eps = p->cfg.clip;
    double c_v = p->cfg.value_coef, c_e = p->cfg.entropy_coef;
    double log_ratio = ev->logp - learner_step_at(&p->l, i).logp, ratio = exp(log_ratio);
    double A = (b->adv[i] - p->adv_mean) * p->adv_scale;
    double rc = ratio < 1.0 - eps ? 1.0 - eps : ratio > 1.0 + eps ? 1.0 + eps : ratio;
    double pg1 = -A * ratio, pg2 = -A * rc;
    double dv;
    double vt = value_term(p, ev->value, b->value[i], b->ret[i], &dv);
    t->policy_loss += (pg1 >= pg2 ? pg1 : pg2) / n;
    t->value_loss += 0.5 * vt / n;
    t->entropy += ev->entropy / n;
    t->kl += (ratio - 1.0 - log_ratio) / n;
    t->clipped += fabs(ratio - 1.0) > eps ? 1.0 / n : 0.0;
    /* d pg / d logp: the unclipped term's -A ratio, or 0 where the clipped term is
     * strictly larger (it is then constant) */
    g->g_logp = (pg1 >= pg2 ? -A * ratio : 0.0) / n;
    g->g_entropy = -c_e / n;
    g->g_value = c_v * 0.5 * dv / n;
}

/* Step 2's L over the current minibatch at the current weights, its gradient
 * added to params.grad if want_grad; row (may be NULL) gets the minibatch's
 * policy and value losses, entropy, approx KL and clip fraction. */
static int ppo_loss(learner *l, int want_grad, double *loss, update_row *row)
{
    ppo *p = (ppo *)l;
    ppo_sums_mb t = {.p = p, .n = (double)(p->mb_hi - p->mb_lo)};
    double c_v = p->cfg.value_coef, c_e = p->cfg.entropy_coef;
    learner_minibatch(l, l->batch.order + p->mb_lo, p->mb_hi - p->mb_lo, 1, want_grad,
                      ppo_step_loss, &t);
    *loss = t.policy_loss + c_v * t.value_loss - c_e * t.entropy;
    if (row) {
        row->policy_loss = t.policy_loss;
        row->value_loss = t.value_loss;
        row->entropy = t.entropy;
        row->approx_kl = t.kl;
        row->clip_fraction = t.clipped;
    }
    int rc = learner_check_finite(l, "policy loss", t.policy_loss);
    if (rc == DS_OK)
        rc = learner_check_finite(l, "value loss", t.value_loss);
    if (rc == DS_OK)
        rc = learner_check_finite(l, "entropy", t.entropy);
    return rc == DS_OK ? learner_check_finite(l, "loss", *loss) : rc;
}

/* ---- the update ---- */

/* The learning rate of the next update (annealed when anneal_updates > 0). */
static double update_learning_rate(const ppo *p)
{
    double lr = p->l.cfg.learning_rate;
    if (p->cfg.anneal_updates <= 0)
        return lr;
    double frac = 1.0 - (double)p->l.updates / (double)p->cfg.anneal_updates;
    return frac > 0.0 ? lr * frac : 0.0;
}

/* Sums of the per-minibatch diagnostics of one update. */
typedef struct {
    double policy_loss, value_loss, entropy, approx_kl, clip_fraction, grad_norm;
    int n;
} ppo_sums;

static void sums_add(ppo_sums *s, const update_row *mb, double grad_norm)
{
    s->policy_loss += mb->policy_loss;
    s->value_loss += mb->value_loss;
    s->entropy += mb->entropy;
    s->approx_kl += mb->approx_kl;
    s->clip_fraction += mb->clip_fraction;
    s->grad_norm += grad_norm;
    s->n++;
}

static void sums_to_row(const ppo_sums *s, update_row *row)
{
    if (s->n == 0)
        return;
    row->policy_loss = s->policy_loss / s->n;
    row->value_loss = s->value_loss / s->n;
    row->entropy = s->entropy / s->n;
    row->approx_kl = s->approx_kl / s->n;
    row->clip_fraction = s->clip_fraction / s->n;
    row->grad_norm = s->grad_norm / s->n;
}

/* One gradient step on the minibatch batch.order[lo .. hi); mb gets its
 * diagnostics. */
static int minibatch_step(ppo *p, size_t lo, size_t hi, double lr, update_row *mb,
                          double *grad_norm)
{
    learner *l = &p->l;
    double loss;
    select_minibatch(p, lo, hi);
    nn_params_zero_grad(&l->params);
    int rc = l->loss(l, 1, &loss, mb);
    return rc == DS_OK ? learner_apply_gradient(l, lr, grad_norm) : rc;
}

/* Steps 1 to 3 on the batch_episodes oldest completed sessions. */
static int ppo_update(ppo *p)
{
    learner *l = &p->l;
    update_row row = learner_row();
    ppo_sums sums = {0};
    double lr = update_learning_rate(p);
    int rc = learner_take_batch(l, (size_t)l->cfg.batch_episodes);
    if (rc == DS_OK)
        rc = l->prepare(l, &row);
    size_t N = l->batch.n_steps, M = (size_t)p->cfg.minibatches;
    for (int epoch = 0; rc == DS_OK && epoch < p->cfg.epochs; epoch++) {
        update_row mb = learner_row();
        learner_shuffle(l);
        for (size_t j = 0; rc == DS_OK && j < M; j++) {
            size_t lo = j * N / M, hi = (j + 1) * N / M;
            double grad_norm;
            if (lo == hi)
                continue;
            rc = minibatch_step(p, lo, hi, lr, &mb, &grad_norm);
            if (rc == DS_OK)
                sums_add(&sums, &mb, grad_norm);
        }
        if (rc == DS_OK && p->cfg.target_kl > 0.0 && mb.approx_kl > p->cfg.target_kl)
            break;
    }
    sums_to_row(&sums, &row);
    row.learning_rate = lr;
    if (rc == DS_OK)
        rc = learner_log_update(l, &row);
    learner_release_batch(l);
    return rc;
}

/* ---- the agent ---- */

static int ppo_create(const void *config, const env_spec *spec, const agent_context *ctx,
                      agent **out, char *err)
{
    const ppo_config *cfg = config;
    learner *l;
    int rc = learner_create(sizeof(ppo), &cfg->common, 1, spec, ctx, &l, err);
    if (rc != DS_OK)
        return rc;
    ((ppo *)l)->cfg = *cfg;
    l->prepare = ppo_prepare;
    l->loss = ppo_loss;
    *out = &l->base;
    return DS_OK;
}

static int ppo_end_episode(agent *a, int user, long episode)
{
    learner *l = (learner *)a;
    int ready;
    int rc = learner_end_episode(l, user, episode, &ready);
    return rc == DS_OK && ready ? ppo_update((ppo *)l) : rc;
}

static double ppo_memory_estimate(const void *config, const env_spec *spec)
{
    return learner_memory_estimate(sizeof(ppo), &((const ppo_config *)config)->common, 1,
                                   spec);
}

const agent_type ppo_agent = {
    .name = "ppo",
    .version = 4, /* 2: minibatches in chunks of matrix products; tanh vectorised;
                     3: the softmax weights by the learners' faster exponential;
                     4: the item head in single precision (item_precision) */
    .summary = "proximal policy optimisation (clipped surrogate, GAE, minibatch epochs) "
               "over Plackett-Luce slates",
    .params = PARAM_TABLE(ppo_config, ppo_params),
    .xValidate = learner_validate,
    .xCreate = ppo_create,
    .xAct = learner_act,
    .xObserve = learner_observe,
    .xEndEpisode = ppo_end_episode,
    .xDestroy = learner_destroy,
    .xMemoryEstimate = ppo_memory_estimate,
};
