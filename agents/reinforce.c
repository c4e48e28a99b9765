/* reinforce: Monte-Carlo policy gradient over Plackett-Luce slates (Williams 1992).
 *
 * The policy, its state encoder, acting and the trajectories are the learner's
 * (agents/learner.h). Every batch_episodes completed sessions, one gradient step
 * on the loss over the batch's N steps
 *
 *   L = -(1/N) sum_t lambda_t (G_t - b_t) log pi(slate_t | s_t)
 *       - entropy_coef (1/N) sum_t H_t
 *       + value_coef (1/N) sum_t (V(s_t) - G_t)^2          (learned baseline only)
 *
 * where G_t = sum_{j >= t} gamma^(j-t) r_j is the discounted reward-to-go within
 * the session (late purchases included: they are credited to their step before
 * the episode is consumed), H_t the entropy of the first-position softmax (the
 * usual surrogate; agents/nn.h) and b_t a baseline:
 *   - moving_average: one exponential moving average of G per session step t,
 *     b[t] <- b[t] + baseline_rate (G_t - b[t]), taken BEFORE the batch updates it
 *     (so b_t does not depend on the batch's own returns); a step index never
 *     seen starts at the mean return of that index in its first batch;
 *   - learned: b_t = V(s_t) from a separate value trunk, trained towards G_t by
 *     the MSE term. The advantage uses V at the current weights as a constant
 *     (no gradient flows from the policy term into the value trunk).
 *
 * Top-K off-policy correction (optional, topk_correction). Chen et al., "Top-K
 * Off-Policy Correction for a REINFORCE Recommender System", WSDM 2019, eq. (6)
 * and section 4.3: a slate of K items drawn from a softmax policy pi contains
 * item a with probability alpha(a|s) = 1 - (1 - pi(a|s))^K, and the gradient of
 * the top-K objective is that of the single-item one times
 *   lambda_K(s, a) = d alpha / d pi = K (1 - pi(a|s))^(K-1).
 * The paper applies it per logged item of a softmax-with-replacement policy; our
 * slates are Plackett-Luce and their log-probability is of the whole ordered
 * slate, so we implement this slate variant: each step's term is multiplied by
 * lambda_t = K (1 - alpha_t)^(K-1), with K the slate size and alpha_t the
 * probability of the slate's FIRST item under the first-position softmax of the
 * current policy, held constant (no gradient through lambda_t, as in the paper).
 * The paper's importance weight pi/beta is omitted: the batch was collected by
 * (nearly) the current policy, the ratio is 1 up to the lag of at most one
 * update for a session that straddled the previous update. lambda_t is small
 * when the policy already puts its first pick on that item with high
 * probability and up to K when it is unlikely, pushing probability mass to
 * items not yet at the top (the paper's motivation). */
#include "agent.h"
#include "learner.h"

#include "../sim/common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum { BASELINE_MOVING_AVERAGE = 0, BASELINE_LEARNED = 1 } reinforce_baseline;

/* Every hyperparameter of reinforce; the common ones first (learner.h). */
typedef struct {
    learner_config common; /* embed_dim 16, hidden 64, history_decay 0.8,
                              learning_rate 1e-3, adam_eps 1e-5, max_grad_norm 0.5,
                              batch_episodes 32, gamma 0.99, greedy_eval false */
    int baseline;          /* reinforce_baseline: moving_average (default) | learned */
    double baseline_rate;  /* moving-average rate per return, 0.05 */
    double value_coef;     /* weight of the value MSE (learned baseline), 0.5 */
    double entropy_coef;   /* weight of the entropy bonus, 0 */
    int topk_correction;   /* multiply by lambda_K (Chen et al. 2019), false */
} reinforce_config;

static const param_spec reinforce_params[] = {
    LEARNER_PARAM_SPECS("1e-3", "32"),
    P_CHOICE(reinforce_config, baseline, "moving_average", "moving_average|learned",
             "baseline subtracted from the return: a moving average per session step, "
             "or a learned value function"),
    P_REAL(reinforce_config, baseline_rate, "0.05", 1e-9, 1,
           "rate of the moving-average baseline per return"),
    P_REAL(reinforce_config, value_coef, "0.5", 0, 1e6,
           "weight of the value function's squared error (learned baseline)"),
    P_REAL(reinforce_config, entropy_coef, "0", 0, 1e6,
           "weight of the entropy bonus (first-position softmax)"),
    P_BOOL(reinforce_config, topk_correction, "false",
           "multiply each step by lambda_K = K (1 - pi(first item))^(K-1) "
           "(Chen et al. WSDM 2019)"),
};

typedef struct {
    learner l;             /* first: the shared core, itself an agent */
    reinforce_config cfg;
    double *baseline;      /* [max_steps] moving average of G per session step */
    unsigned char *seen;   /* [max_steps] whether baseline[t] has a value yet */
    double *sum;           /* [max_steps] scratch: sums of G per step of a batch */
    long *count;           /* [max_steps] scratch: their counts */
} reinforce;

/* ---- the loss ---- */

/* The moving average of step i of the batch (the engine keeps steps below
 * max_steps; a longer episode shares the last average). */
static int baseline_index(const reinforce *r, size_t i)
{
    int t = r->l.batch.step_of[i], T = r->l.base.spec->max_steps;
    return t < T ? t : T - 1;
}

/* The moving-average baselines b_t before this batch, then their update. */
static void moving_average_baseline(reinforce *r)
{
    learner_batch *b = &r->l.batch;
    int T = r->l.base.spec->max_steps;
    memset(r->sum, 0, (size_t)T * sizeof *r->sum);
    memset(r->count, 0, (size_t)T * sizeof *r->count);
    for (size_t i = 0; i < b->n_steps; i++) {
        r->sum[baseline_index(r, i)] += b->ret[i];
        r->count[baseline_index(r, i)]++;
    }
    for (int t = 0; t < T; t++)
        if (!r->seen[t] && r->count[t] > 0) {
            r->baseline[t] = r->sum[t] / (double)r->count[t];
            r->seen[t] = 1;
        }
    for (size_t i = 0; i < b->n_steps; i++)
        b->value[i] = r->baseline[baseline_index(r, i)];
    for (size_t i = 0; i < b->n_steps; i++) { /* in batch order: deterministic */
        double *m = &r->baseline[baseline_index(r, i)];
        *m += r->cfg.baseline_rate * (b->ret[i] - *m);
    }
}

/* The constants of the loss: G_t (ret), b_t (value), G_t - b_t (adv) and
 * lambda_t (weight). */
static int reinforce_prepare(learner *l, update_row *row)
{
    reinforce *r = (reinforce *)l;
    learner_batch *b = &l->batch;
    learner_batch_reward_to_go(l, l->cfg.gamma);
    if (r->cfg.baseline == BASELINE_LEARNED) {
        learner_batch_values(l);
        row->explained_variance = learner_explained_variance(b->value, b->ret, b->n_steps);
    } else {
        moving_average_baseline(r);
    }
    for (size_t i = 0; i < b->n_steps; i++) {
        b->adv[i] = b->ret[i] - b->value[i];
        b->weight[i] = 1.0;
        if (r->cfg.topk_correction) {
            learner_step s = learner_step_at(l, i);
            learner_forward(l, i, NULL);
            double alpha = exp(l->work.logits[s.slate[0]] - nn_logsumexp(l->work.logits, s.n));
            b->weight[i] = l->k * pow(1.0 - alpha, l->k - 1);
        }
    }
    return DS_OK;
}

/* L above at the current weights, its gradient added to params.grad if
 * want_grad; the batch's constants come from reinforce_prepare. */
static int reinforce_loss(learner *l, int want_grad, double *loss, update_row *row)
{
    reinforce *r = (reinforce *)l;
    const learner_batch *b = &l->batch;
    int learned = r->cfg.baseline == BASELINE_LEARNED;
    double c_e = r->cfg.entropy_coef, c_v = r->cfg.value_coef;
    learner_pg_loss t = {.adv = b->adv, .weight = b->weight, .ret = learned ? b->ret : NULL,
                         .n = (double)b->n_steps, .value_coef = c_v, .entropy_coef = c_e};
    learner_minibatch(l, b->order, b->n_steps, learned, want_grad, learner_pg_step_loss, &t);
    *loss = t.policy_loss - c_e * t.entropy + (learned ? c_v * t.value_loss : 0.0);
    if (row) {
        row->policy_loss = t.policy_loss;
        row->value_loss = learned ? t.value_loss : NAN;
        row->entropy = t.entropy;
    }
    int rc = learner_check_finite(l, "policy loss", t.policy_loss);
    if (rc == DS_OK && learned)
        rc = learner_check_finite(l, "value loss", t.value_loss);
    return rc == DS_OK ? learner_check_finite(l, "entropy", t.entropy) : rc;
}

/* ---- the agent ---- */

static void reinforce_destroy(agent *a)
{
    reinforce *r = (reinforce *)a;
    if (!r)
        return;
    free(r->baseline);
    free(r->seen);
    free(r->sum);
    free(r->count);
    learner_destroy(a);
}

static int reinforce_create(const void *config, const env_spec *spec,
                            const agent_context *ctx, agent **out, char *err)
{
    const reinforce_config *cfg = config;
    learner *l;
    int rc = learner_create(sizeof(reinforce), &cfg->common,
                            cfg->baseline == BASELINE_LEARNED, spec, ctx, &l, err);
    if (rc != DS_OK)
        return rc;
    reinforce *r = (reinforce *)l;
    r->cfg = *cfg;
    size_t T = (size_t)spec->max_steps; /* >= 1: the encoder checked */
    r->baseline = calloc(T, sizeof *r->baseline);
    r->seen = calloc(T, sizeof *r->seen);
    r->sum = calloc(T, sizeof *r->sum);
    r->count = calloc(T, sizeof *r->count);
    if (!r->baseline || !r->seen || !r->sum || !r->count) {
        reinforce_destroy(&l->base);
        return err_set(err, DS_ENOMEM, "out of memory for the baselines");
    }
    l->prepare = reinforce_prepare;
    l->loss = reinforce_loss;
    *out = &l->base;
    return DS_OK;
}

static int reinforce_end_episode(agent *a, int user, long episode)
{
    learner *l = (learner *)a;
    int ready;
    int rc = learner_end_episode(l, user, episode, &ready);
    return rc == DS_OK && ready ? learner_single_step_update(l) : rc;
}

static double reinforce_memory_estimate(const void *config, const env_spec *spec)
{
    const reinforce_config *cfg = config;
    return learner_memory_estimate(sizeof(reinforce), &cfg->common,
                                   cfg->baseline == BASELINE_LEARNED, spec) +
           (double)spec->max_steps * (2 * sizeof(double) + sizeof(long) + 1);
}

const agent_type reinforce_agent = {
    .name = "reinforce",
    .version = 4, /* 2: the batch in chunks of matrix products; tanh vectorised;
                     3: the softmax weights by the learners' faster exponential;
                     4: the item head in single precision (item_precision) */
    .summary = "REINFORCE over Plackett-Luce slates: reward-to-go, moving-average or "
               "learned baseline, optional top-K correction",
    .params = PARAM_TABLE(reinforce_config, reinforce_params),
    .xValidate = learner_validate,
    .xCreate = reinforce_create,
    .xAct = learner_act,
    .xObserve = learner_observe,
    .xEndEpisode = reinforce_end_episode,
    .xDestroy = reinforce_destroy,
    .xMemoryEstimate = reinforce_memory_estimate,
};
