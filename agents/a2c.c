/* a2c: synchronous advantage actor-critic over Plackett-Luce slates (Mnih et al.
 * 2016, "Asynchronous Methods for Deep Reinforcement Learning", in its
 * synchronous form), with generalised advantage estimation (Schulman et al.
 * 2016, "High-Dimensional Continuous Control Using Generalized Advantage
 * Estimation").
 *
 * The policy, the value trunk, the state encoder, acting and the trajectories
 * are the learner's (agents/learner.h). Every batch_episodes completed sessions,
 * one gradient step:
 *
 *   1. values: V(s_t) of every step of the batch, RECOMPUTED with the current
 *      weights (not the values stored when acting: a session that straddled
 *      the previous update was valued partly by older weights, and the current
 *      ones are what the step's gradient is taken at);
 *   2. advantages by GAE(gamma, gae_lambda) within each session, terminal at its
 *      end (the session is the episode: no bootstrap past its last step):
 *        delta_t = r_t + gamma V(s_{t+1}) - V(s_t),  A_t = delta_t + gamma lambda A_{t+1},
 *      and value targets R_t = A_t + V(s_t); both held constant in the loss;
 *   3. the loss over the batch's N steps
 *        L = -(1/N) sum_t A_t log pi(slate_t | s_t)
 *            + value_coef (1/N) sum_t (V(s_t) - R_t)^2
 *            - entropy_coef (1/N) sum_t H_t,
 *      H_t the entropy of the first-position softmax (agents/nn.h); advantages
 *      are not normalised;
 *   4. Adam on the clipped gradient (max_grad_norm). */
#include "agent.h"
#include "learner.h"

#include "../sim/common.h"

#include <math.h>
#include <stdlib.h>

/* Every hyperparameter of a2c; the common ones first (learner.h). */
typedef struct {
    learner_config common; /* embed_dim 16, hidden 64, history_decay 0.8,
                              learning_rate 7e-4, adam_eps 1e-5, max_grad_norm 0.5,
                              batch_episodes 16, gamma 0.99, greedy_eval false */
    double gae_lambda;     /* GAE lambda, 0.95 */
    double value_coef;     /* weight of the value MSE, 0.5 */
    double entropy_coef;   /* weight of the entropy bonus, 0.01 */
} a2c_config;

static const param_spec a2c_params[] = {
    LEARNER_PARAM_SPECS("7e-4", "16"),
    P_REAL(a2c_config, gae_lambda, "0.95", 0, 1,
           "GAE lambda: 0 one-step TD advantages, 1 Monte-Carlo returns minus values"),
    P_REAL(a2c_config, value_coef, "0.5", 0, 1e6, "weight of the value function's squared error"),
    P_REAL(a2c_config, entropy_coef, "0.01", 0, 1e6,
           "weight of the entropy bonus (first-position softmax)"),
};

typedef struct {
    learner l; /* first: the shared core, itself an agent */
    a2c_config cfg;
} a2c;

/* Steps 1 and 2: values, advantages and value targets (constants of the loss). */
static int a2c_prepare(learner *l, update_row *row)
{
    a2c *c = (a2c *)l;
    learner_batch *b = &l->batch;
    learner_batch_values(l);
    learner_batch_gae(l, l->cfg.gamma, c->cfg.gae_lambda);
    row->explained_variance = learner_explained_variance(b->value, b->ret, b->n_steps);
    return DS_OK;
}

/* Step 3: L at the current weights, its gradient added to params.grad if
 * want_grad. */
static int a2c_loss(learner *l, int want_grad, double *loss, update_row *row)
{
    a2c *c = (a2c *)l;
    const learner_batch *b = &l->batch;
    learner_pg_loss t = {.adv = b->adv, .ret = b->ret, .n = (double)b->n_steps,
                         .value_coef = c->cfg.value_coef, .entropy_coef = c->cfg.entropy_coef};
    learner_minibatch(l, b->order, b->n_steps, 1, want_grad, learner_pg_step_loss, &t);
    *loss = t.policy_loss + c->cfg.value_coef * t.value_loss - c->cfg.entropy_coef * t.entropy;
    if (row) {
        row->policy_loss = t.policy_loss;
        row->value_loss = t.value_loss;
        row->entropy = t.entropy;
    }
    int rc = learner_check_finite(l, "policy loss", t.policy_loss);
    if (rc == DS_OK)
        rc = learner_check_finite(l, "value loss", t.value_loss);
    return rc == DS_OK ? learner_check_finite(l, "entropy", t.entropy) : rc;
}

static int a2c_create(const void *config, const env_spec *spec, const agent_context *ctx,
                      agent **out, char *err)
{
    const a2c_config *cfg = config;
    learner *l;
    int rc = learner_create(sizeof(a2c), &cfg->common, 1, spec, ctx, &l, err);
    if (rc != DS_OK)
        return rc;
    ((a2c *)l)->cfg = *cfg;
    l->prepare = a2c_prepare;
    l->loss = a2c_loss;
    *out = &l->base;
    return DS_OK;
}

/* Step 4 runs in learner_single_step_update once a batch is complete. */
static int a2c_end_episode(agent *a, int user, long episode)
{
    learner *l = (learner *)a;
    int ready;
    int rc = learner_end_episode(l, user, episode, &ready);
    return rc == DS_OK && ready ? learner_single_step_update(l) : rc;
}

static double a2c_memory_estimate(const void *config, const env_spec *spec)
{
    return learner_memory_estimate(sizeof(a2c), &((const a2c_config *)config)->common, 1,
                                   spec);
}

const agent_type a2c_agent = {
    .name = "a2c",
    .version = 4, /* 2: the batch in chunks of matrix products; tanh vectorised;
                     3: the softmax weights by the learners' faster exponential;
                     4: the item head in single precision (item_precision) */
    .summary = "synchronous advantage actor-critic over Plackett-Luce slates with GAE",
    .params = PARAM_TABLE(a2c_config, a2c_params),
    .xValidate = learner_validate,
    .xCreate = a2c_create,
    .xAct = learner_act,
    .xObserve = learner_observe,
    .xEndEpisode = a2c_end_episode,
    .xDestroy = learner_destroy,
    .xMemoryEstimate = a2c_memory_estimate,
};
