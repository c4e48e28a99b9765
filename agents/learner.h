/* The shared core of the policy-gradient agents (reinforce, a2c, ppo).
 *
 * A learner is an agent (its first member is `agent base`) that owns everything
 * the three algorithms have in common, so that each agent file holds only its
 * algorithm:
 *   - the state encoder, chosen by cfg.encoder: the history encoder
 *     (agents/encoder.h) or the transformer (agents/transformer.h), optionally
 *     initialised from a pretrained checkpoint (cfg.init); and the policy
 *     network, with or without a value trunk (agents/policy.h), in one
 *     nn_layout / nn_params slab;
 *   - acting: features -> forward -> a Plackett-Luce slate drawn with the
 *     engine's sampling stream (or, in the eval phase with greedy_eval, the top k
 *     logits), recorded with its log-probability and value while learning;
 *   - the per-user trajectories (agents/trajectory.h), each step carrying as the
 *     store's `extra` what its encoder needs to replay it (the history encoder's
 *     encoder_cache, or the transformer's transformer_input), so that a stored
 *     step's features can be recomputed with the current weights (encoder_refresh,
 *     transformer_refresh) and back-propagated into the encoder exactly;
 *   - a per-user log of the items shown so far in the user's current session
 *     (the encoder's session-topic feature), kept in BOTH phases, one log per
 *     session in progress, released at the end of the session;
 *   - the batch of completed episodes an update learns from, flattened into
 *     steps 0 .. n_steps-1 with per-step scratch (returns, advantages, values);
 *   - the pieces of an update: forward and backward of a stored step, returns
 *     and GAE, gradient clipping, finiteness checks, the Adam step, minibatch
 *     shuffling and the update_row of diagnostics.
 *
 * Life of an update (reinforce and a2c take exactly this path through
 * learner_single_step_update; ppo builds its own loop from the same pieces):
 *
 *   learner_end_episode(..., &ready)      ready: batch_episodes completed
 *   learner_take_batch(l, n)              the n oldest completed episodes
 *   l->prepare(l, &row)                   constants of the loss: returns,
 *                                         advantages, baselines (no gradient)
 *   nn_params_zero_grad(&l->params)
 *   l->loss(l, 1, &loss, &row)            learner_minibatch over the steps with
 *                                         the algorithm's per-step loss, which
 *                                         gives dL/dlogp, dL/dentropy and dL/dV
 *                                         (the same as learner_forward, then
 *                                         learner_backward, step by step)
 *   learner_apply_gradient(l, lr, &row.grad_norm)   clip, check, Adam, check
 *   learner_log_update(l, &row)
 *   learner_release_batch(l)
 *
 * An algorithm with several gradient steps per batch (ppo) calls the same
 * pieces itself: after learner_take_batch and its prepare (e.g.
 * learner_batch_gae on the stored values that take_batch put in batch.value),
 * per epoch learner_shuffle, then per minibatch of batch.order: zero the
 * gradient; learner_minibatch over the minibatch's steps, whose per-step loss
 * reads the step's logp and value and the behaviour log-probability and value
 * in learner_step_at(l, i).logp / .value, and returns dL/dlogp, dL/dH, dL/dV;
 * learner_apply_gradient with its (annealed) rate; finally one
 * learner_log_update for the batch.
 *
 * prepare/loss are the algorithm's two hooks: prepare computes from the batch
 * and the current weights everything the loss treats as a constant (stop-
 * gradient), and loss is a pure function of the weights given those constants.
 * That split is what lets a finite-difference test check the gradient of the
 * FULL loss: prepare once, then loss(want_grad = 1) against loss(want_grad = 0)
 * at perturbed weights.
 *
 * Numerical faults: any NaN or Inf in a loss (learner_check_finite), the
 * gradient or the parameters after a step (learner_apply_gradient), or the
 * logits when acting returns DS_ENUMERIC with base.err saying what and where
 * ("policy loss is NaN at update 7"); the engine then records the run as
 * diverged. Updates are numbered from 0, as update rows are. */
#ifndef DIVSIM_LEARNER_H
#define DIVSIM_LEARNER_H

#include "agent.h"
#include "encoder.h"
#include "nn.h"
#include "policy.h"
#include "quant.h"
#include "trajectory.h"
#include "transformer.h"

#include <gsl/gsl_rng.h>
#include <stddef.h>

/* ---- hyperparameters ---- */

/* The hyperparameters every learning agent has. An agent's config struct embeds
 * this as its FIRST member, and its parameter table starts with
 * LEARNER_PARAM_SPECS: the specs' offsets are taken relative to learner_config,
 * which are also the offsets in the agent's struct because the member sits at
 * offset 0, and the keys are the plain field names ("learning_rate", not
 * "common.learning_rate"), as experiment files write them. (The mf agents share
 * their keys the same way.) */
typedef struct {
    int embed_dim;         /* d: item embeddings (encoder E_in, policy E_out) and h */
    int hidden;            /* H: width of the two tanh layers of each trunk */
    double history_decay;  /* encoder recency weight per history entry */
    double learning_rate;  /* Adam step size */
    double adam_eps;       /* Adam's epsilon (CleanRL: 1e-5) */
    double max_grad_norm;  /* global gradient-norm clip; 0 = no clipping */
    int batch_episodes;    /* completed episodes per update */
    double gamma;          /* discount within an episode (a session) */
    int greedy_eval;       /* eval phase: top-k logits instead of sampling */
    int encoder;           /* learner_encoder: history (default) | transformer */
    int tf_context, tf_layers, tf_heads, tf_width, tf_mlp_ratio; /* transformer_config */
    char init[PARAM_STRING_LEN]; /* checkpoint of the transformer's tensors, or "none" */
    int serve;             /* learner_serve: the eval phase's networks */
    int item_precision;    /* learner_item_precision: the whole-catalogue item head */
} learner_config;

typedef enum { LEARNER_ENCODER_HISTORY = 0, LEARNER_ENCODER_TRANSFORMER = 1 } learner_encoder;
typedef enum { LEARNER_SERVE_DOUBLE = 0, LEARNER_SERVE_INT8 = 1 } learner_serve;
typedef enum { LEARNER_ITEMS_SINGLE = 0, LEARNER_ITEMS_DOUBLE = 1 } learner_item_precision;

/* The common entries of a parameter table; learning_rate and batch_episodes
 * take agent-specific defaults, written as strings ("1e-3", "32"). */
#define LEARNER_PARAM_SPECS(lr_default, batch_default)                                   \
    P_INT(learner_config, embed_dim, "16", 1, 1024,                                      \
          "dimension of the item embeddings and of the policy's state embedding"),       \
    P_INT(learner_config, hidden, "64", 1, 4096,                                         \
          "units in each of the two tanh layers of the policy (and value) network"),     \
    P_REAL(learner_config, history_decay, "0.8", 1e-6, 1,                                \
           "state encoder: weight decay^j of the j-th most recent history entry"),       \
    /* no practical upper bound: a huge rate is how a run is made to diverge */       \
    P_REAL(learner_config, learning_rate, lr_default, 0, 1e300, "Adam step size"),       \
    P_REAL(learner_config, adam_eps, "1e-5", 1e-12, 1, "Adam epsilon"),                  \
    P_REAL(learner_config, max_grad_norm, "0.5", 0, 1e9,                                 \
           "clip the global gradient norm to this; 0 = no clipping"),                    \
    P_INT(learner_config, batch_episodes, batch_default, 1, 1000000,                     \
          "completed episodes (sessions) per update"),                                   \
    P_REAL(learner_config, gamma, "0.99", 0, 1,                                          \
           "discount per step within a session (the session is the episode)"),          \
    P_BOOL(learner_config, greedy_eval, "false",                                         \
           "eval phase shows the k highest logits instead of sampling the policy"),      \
    P_CHOICE(learner_config, encoder, "history", "history|transformer",                  \
             "state encoder: decayed means of the history's item embeddings, or a "      \
             "causal transformer over the newest tf_context history entries"),           \
    /* the defaults are transformer_config_defaults' */                                 \
    P_INT(learner_config, tf_context, "16", 1, TRANSFORMER_MAX_CONTEXT,                  \
          "transformer: history entries read (at most [experiment] history)"),           \
    P_INT(learner_config, tf_layers, "2", 1, TRANSFORMER_MAX_LAYERS,                     \
          "transformer: attention blocks"),                                              \
    P_INT(learner_config, tf_heads, "2", 1, 1024,                                        \
          "transformer: attention heads (must divide tf_width)"),                        \
    P_INT(learner_config, tf_width, "32", 1, 1024, "transformer: token and hidden width"), \
    P_INT(learner_config, tf_mlp_ratio, "4", 1, 16,                                      \
          "transformer: MLP hidden width / tf_width"),                                   \
    P_STRING(learner_config, init, "none",                                               \
             "checkpoint file whose tf_* tensors replace the transformer's initial "     \
             "weights (encoder = transformer); none = train from scratch"),                \
    P_CHOICE(learner_config, serve, "double", "double|int8",                             \
             "eval phase: act with the double networks, or with an int8 snapshot of "    \
             "them (per-row scales) taken when the eval phase starts"),                   \
    P_CHOICE(learner_config, item_precision, "single", "single|double",                  \
             "the item scores over the whole catalogue, when acting (eval phase "        \
             "included) and in updates, their softmax weights and their gradients in "   \
             "single precision (about twice as fast) or double")

/* xValidate of the learning agents (their config begins with learner_config):
 * tf_heads divides tf_width, init is only given with encoder = transformer, and
 * its file (unless the path holds {seed}) passes checkpoint_check. The engine
 * checks tf_context against the run's history. */
int learner_validate(const void *config, char *err);

/* The transformer_config of cfg's tf_* keys. */
transformer_config learner_transformer_config(const learner_config *cfg);

/* ---- the learner ---- */

/* Items shown so far in one session in progress. */
typedef struct {
    long episode;
    int *items; /* [cap] the session's earlier slates, concatenated; n used */
    int n, cap;
} learner_session_log;

/* The completed episodes of one update, as one flat list of steps: step i is
 * step step_of[i] of episodes[episode_of[i]]; the steps of episode e are
 * start[e] .. start[e + 1] - 1, in order. The per-step arrays are scratch for
 * the algorithm, all [n_steps]. */
typedef struct {
    traj_episode **episodes; /* [n_episodes] owned until learner_release_batch */
    size_t n_episodes;
    size_t *start;           /* [n_episodes + 1] */
    size_t n_steps;
    int *episode_of;         /* [n_steps] */
    int *step_of;            /* [n_steps] */
    double *value;           /* [n_steps] V(s_i): filled with the stored (behaviour)
                                values by learner_take_batch */
    double *ret;             /* [n_steps] return targets */
    double *adv;             /* [n_steps] advantages */
    double *weight;          /* [n_steps] free per-step factor (reinforce: lambda_K) */
    size_t *order;           /* [n_steps] 0..n_steps-1; learner_shuffle permutes it */
    size_t cap_episodes, cap_steps;
} learner_batch;

/* One stored step of the batch. */
typedef struct {
    const traj_episode *ep;
    int t;                        /* step within the episode */
    int n;                        /* candidates */
    const int *candidates;        /* [n] item ids, or NULL for the identity catalogue */
    const int *slate;             /* [slate_k] positions into the candidates */
    double reward;                /* shaped reward, late purchases included */
    double logp;                  /* behaviour log-probability of the slate */
    double value;                 /* value estimate when acting (NAN without a trunk) */
    const void *extra;            /* what the step's encoder replays it from: an
                                     encoder_cache (history) or a transformer_input */
} learner_step;

typedef struct learner learner;

struct learner {
    agent base;                 /* first: a learner is an agent */
    learner_config cfg;
    int k;                      /* slate size */
    gsl_rng *sampling;          /* slate sampling, borrowed from the engine */
    gsl_rng *minibatch;         /* learner_shuffle, borrowed */
    int (*log_update)(void *log_ctx, const update_row *row); /* may be NULL */
    void *log_ctx;

    /* the model */
    nn_layout layout;
    int n_features;             /* the state encoder's */
    encoder enc;                /* the history encoder (cfg.encoder = history) */
    transformer tf;             /* the transformer (cfg.encoder = transformer) */
    transformer_work tf_work;   /* its activations of the last forward */
    policy_net net;
    nn_params params;           /* w, grad, Adam moments: one slab each */
    nn_adam_config adam;        /* beta1 0.9, beta2 0.999, eps cfg.adam_eps */
    policy_work work;           /* activations of the last forward; logits [n] */
    nn_softmax soft;            /* the softmax weights of work.logits, in work.weights */
    /* serve = int8: the snapshot of the weights the eval phase acts with, built at
     * its first act and dropped when learning resumes */
    quant_policy served_policy;
    quant_transformer served_tf; /* encoder = transformer only */
    int served;                  /* 1 while the snapshot is built */
    /* item_precision = single: 1 when the weights may have moved since
     * chunk.E_single was copied from E_out (learner_apply_gradient sets it; whoever
     * writes params.w otherwise must too), so that the next use copies it again */
    int items_stale;

    /* the algorithm's loss (see the top of this file); set by the agent */
    int (*prepare)(learner *l, update_row *row);
    int (*loss)(learner *l, int want_grad, double *loss, update_row *row);

    traj_store store;           /* extra = the encoder's data of each step */
    learner_batch batch;

    /* session logs: one per session in progress */
    int *log_of_user;           /* [n_users] index into logs, or -1 */
    learner_session_log *logs;  /* [cap_logs] */
    int *free_logs;             /* [cap_logs] stack of unused logs */
    int n_free_logs, cap_logs;

    /* scratch */
    double *x;                  /* [n_features] features of the current step */
    double *dx;                 /* [n_features] their gradient */
    int *positions;             /* [k] slate positions */
    encoder_cache cache;        /* the current step's encoder data: history ... */
    transformer_input tokens;   /* ... or transformer */

    /* the update's chunks of steps (learner_minibatch) */
    policy_batch chunk;         /* the networks over up to chunk.cap steps */
    double *chunk_x;            /* [chunk.cap][n_features] their features */
    double *chunk_dx;           /* [chunk.cap][n_features] their gradient */
    double *chunk_dvalue;       /* [chunk.cap] dL/dV */
    double *chunk_coef;         /* [NN_PL_COEFS(k)] one step's stages */
    size_t *chunk_step;         /* [chunk.cap] batch indices of the chunk's steps */
    const int **chunk_cand;     /* [chunk.cap] their candidates (NULL: identity) */
    int *chunk_n;               /* [chunk.cap] and counts */

    /* bookkeeping */
    long updates;               /* updates completed; the next one has this number */
    double now;                 /* latest simulated time seen (hours) */
    long steps;                 /* env steps (acts) since the previous update */
    double wall_mark;           /* monotonic seconds at the previous update */
};

/* Allocates size bytes (>= sizeof(learner); the agent's own struct, which
 * begins with a learner) zeroed, and builds the encoder, the policy network
 * (with the value trunk if with_value), the parameter slab initialised from
 * ctx->init (the encoder, then the networks: reproducible for a seed), then,
 * with cfg->init, the transformer's tensors loaded from that checkpoint
 * (checkpoint_load), the workspaces, the trajectory store and the scratch. The
 * agent then copies its own config and sets prepare and loss. DS_EINPUT (also
 * for a checkpoint that cannot be read or does not match), DS_ENOMEM. */
int learner_create(size_t size, const learner_config *cfg, int with_value,
                   const env_spec *spec, const agent_context *ctx, learner **out,
                   char *err);

/* Frees the learner and everything it holds (agent_type.xDestroy); NULL is a
 * no-op. */
void learner_destroy(agent *a);

/* agent_type.xAct: encodes obs (with the user's session log), runs the policy
 * over obs->candidates and writes k items into slate: a Plackett-Luce sample
 * (nn_pl_sample on the sampling stream), or in the eval phase with greedy_eval
 * the top k logits. While learning, records the step with the slate's log-
 * probability, the value estimate (NAN without a value trunk) and the encoder
 * cache. Counts the step for steps_per_second. DS_EINPUT for a bad observation,
 * DS_ENUMERIC for non-finite logits. */
int learner_act(agent *a, const observation *obs, int *slate);

/* agent_type.xObserve: credits fb->reward to its step (both feedback kinds,
 * late purchases included; see traj_add_reward), and on FEEDBACK_STEP appends
 * the slate's items to the user's session log. */
int learner_observe(agent *a, const feedback *fb);

/* The common part of xEndEpisode: closes the user's episode in the store
 * (always, learning or not), drops the session log, and sets *ready when
 * learning and at least batch_episodes completed episodes are waiting. */
int learner_end_episode(learner *l, int user, long episode, int *ready);

/* ---- the batch ---- */

/* Takes the n oldest completed episodes into l->batch (releasing any batch
 * still held) and fills its index; batch.value gets the stored values, order
 * the identity, ret, adv and weight zeros. DS_EINPUT if fewer than n are
 * completed, DS_ENOMEM. */
int learner_take_batch(learner *l, size_t n);

/* Frees the batch's episodes (the scratch arrays stay for the next batch). */
void learner_release_batch(learner *l);

/* Step i (0 <= i < batch.n_steps) of the batch. */
learner_step learner_step_at(const learner *l, size_t i);

/* Shuffles batch.order with the minibatch stream (ppo's minibatches). */
void learner_shuffle(learner *l);

/* ---- forward and backward of a stored step, with the current weights ---- */

/* Recomputes step i's features with the current encoder weights (the stored x
 * refreshed from the step's extra, into l->x), runs the policy over the step's candidates
 * (logits in l->work.logits [n]) and, when value is not NULL, the value trunk
 * (*value = V, NAN without a trunk). Returns log pi(slate_i | s_i) under the
 * current weights. */
double learner_forward(learner *l, size_t i, double *value);

/* The entropy of the first-position softmax of the last learner_forward. */
double learner_entropy(learner *l, size_t i);

/* Back-propagates through the last learner_forward (it must have been of step
 * i, with the same weights) the gradients of a loss with respect to the
 * slate's log-probability (g_logp), the first-position entropy (g_entropy) and
 * the value (g_value): dlogits = g_logp dlogp/dlogits + g_entropy dH/dlogits,
 * then through the policy (and value) networks and the encoder into
 * params.grad (accumulating, as every backward does). With the transformer the
 * last learner_forward must be of step i: the backward uses its activations. */
void learner_backward(learner *l, size_t i, double g_logp, double g_entropy,
                      double g_value);

/* The same with the logits' gradient given directly: dlogits [n] (may be
 * l->work.dlogits; NULL for none) and dvalue. */
void learner_backward_logits(learner *l, size_t i, const double *dlogits, double dvalue);

/* ---- a minibatch at once ----
 * learner_forward and learner_backward step by step cost a matrix-vector product
 * per layer and per step; learner_minibatch runs the same loss over a list of
 * steps in chunks of up to chunk.cap steps (policy_forward_batch, one dgemm per
 * layer and for the item scores). The algorithm gives the per-step part of its
 * loss as a function of the step's log-probability, entropy and value, which
 * returns the step's gradient coefficients (what it would pass to
 * learner_backward); anything it sums over the minibatch it sums in that
 * function, in the order learner_minibatch calls it: the steps whose candidates
 * are the identity catalogue first, then the others, each in list order. */

typedef struct {
    double logp;    /* log pi(slate | s) at the current weights */
    double entropy; /* first-position entropy */
    double value;   /* V(s), NAN without a value trunk or want_value */
} learner_eval;

typedef struct {
    double g_logp, g_entropy, g_value; /* dL/dlogp, dL/dentropy, dL/dV */
} learner_grad;

/* Step i's share of the loss: reads ev, writes g (zeroed before the call). */
typedef void (*learner_step_loss)(void *ctx, size_t i, const learner_eval *ev,
                                  learner_grad *g);

/* For each batch step i = steps[j] (j < n): the forward pass at the current weights
 * (with the value trunk if want_value), loss(ctx, i, ...), and with want_grad the
 * backward pass of its coefficients into params.grad (accumulating), through the
 * policy, the value trunk (g_value is ignored without want_value) and the
 * encoder: the same gradient as learner_forward and
 * learner_backward step by step, up to the order of summation. Does not allocate.
 * With the transformer the chunks are of one step: its backward needs the
 * activations of its own forward, which the encoder keeps for one step only. */
void learner_minibatch(learner *l, const size_t *steps, size_t n, int want_value,
                       int want_grad, learner_step_loss loss, void *ctx);

/* The per-step loss of the plain policy gradient with a value loss (a2c, and
 * reinforce): over N steps,
 *   L = -(1/N) sum_t w_t A_t log pi_t + value_coef (1/N) sum_t (V_t - R_t)^2
 *       - entropy_coef (1/N) sum_t H_t,
 * its three sums kept apart in policy_loss, value_loss and entropy (zero them
 * first). weight may be NULL (w = 1), ret NULL (no value loss). */
typedef struct {
    const double *adv;    /* [n_steps] A_t */
    const double *weight; /* [n_steps] w_t, or NULL */
    const double *ret;    /* [n_steps] R_t, or NULL */
    double n, value_coef, entropy_coef;
    double policy_loss, value_loss, entropy;
} learner_pg_loss;

/* learner_step_loss of a learner_pg_loss (ctx). */
void learner_pg_step_loss(void *ctx, size_t i, const learner_eval *ev, learner_grad *g);

/* ---- returns and advantages over one episode (terminal at its end) ---- */

/* G[t] = reward[t] + gamma G[t+1], G[n] = 0; G [n], reward [n]. */
void learner_reward_to_go(double *G, const double *reward, int n, double gamma);

/* Generalised advantage estimation (Schulman et al. 2016): with
 * delta_t = reward[t] + gamma value[t+1] - value[t] and value[n] = 0,
 * adv[t] = delta_t + gamma lambda adv[t+1]. With lambda = 1 this is the reward-
 * to-go minus the value; with lambda = 0 the one-step TD error. adv [n]. */
void learner_gae(double *adv, const double *reward, const double *value, int n,
                 double gamma, double lambda);

/* batch.ret = the reward-to-go of every step, episode by episode. */
void learner_batch_reward_to_go(learner *l, double gamma);

/* batch.adv = GAE from batch.value, and batch.ret = adv + value. */
void learner_batch_gae(learner *l, double gamma, double lambda);

/* batch.value = V of every step with the current weights (needs the value
 * trunk); no gradient. */
void learner_batch_values(learner *l);

/* 1 - Var(target - pred) / Var(target) over n; NAN if Var(target) is 0. */
double learner_explained_variance(const double *pred, const double *target, size_t n);

/* ---- the step and its diagnostics ---- */

/* An update row with every diagnostic NAN. */
update_row learner_row(void);

/* DS_OK if value is finite, else DS_ENUMERIC with base.err =
 * "<what> is NaN at update N" (or "is Inf"). */
int learner_check_finite(learner *l, const char *what, double value);

/* One optimiser step on params.grad: the pre-clip global norm into *grad_norm
 * (may be NULL), clipping to cfg.max_grad_norm, the Adam step with learning
 * rate lr, and checks: DS_ENUMERIC if the gradient or the parameters after the
 * step are not finite. */
int learner_apply_gradient(learner *l, double lr, double *grad_norm);

/* Completes row (update number, simulated time, steps_per_second since the
 * previous update) and hands it to the engine's log; counts the update and
 * restarts the step count and clock. The caller sets the other fields. */
int learner_log_update(learner *l, update_row *row);

/* The whole update of reinforce and a2c, when learner_end_episode said ready:
 * take batch_episodes episodes, prepare, one gradient step of loss at
 * cfg.learning_rate, log, release. */
int learner_single_step_update(learner *l);

/* ---- memory ---- */

/* Steps per episode counted in a batch: sessions in shop and recsim_ie run far
 * below their max_steps cap (a few to a few dozen steps). */
#define LEARNER_TYPICAL_STEPS 64

/* Bytes a learner of struct size `size` holds for cfg and an env of spec's sizes
 * (agent_type.xMemoryEstimate): the parameter slab (weights, gradient and Adam
 * moments), the workspace, per-user indices, and a batch of batch_episodes + 1
 * episodes of at most LEARNER_TYPICAL_STEPS steps in the trajectory store. */
double learner_memory_estimate(size_t size, const learner_config *cfg, int with_value,
                               const env_spec *spec);

#endif
