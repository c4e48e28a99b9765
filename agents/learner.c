/* The shared core of the policy-gradient agents; learner.h states the contract. */
#include "learner.h"
#include "checkpoint.h"

#include "../sim/common.h"
#include "../sim/vecmath.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- creation ---- */

static void free_batch(learner_batch *b)
{
    free(b->episodes);
    free(b->start);
    free(b->episode_of);
    free(b->step_of);
    free(b->value);
    free(b->ret);
    free(b->adv);
    free(b->weight);
    free(b->order);
    memset(b, 0, sizeof *b);
}

void learner_destroy(agent *a)
{
    learner *l = (learner *)a;
    if (!l)
        return;
    learner_release_batch(l);
    free_batch(&l->batch);
    traj_store_free(&l->store);
    for (int i = 0; i < l->cap_logs; i++)
        free(l->logs[i].items);
    free(l->logs);
    free(l->free_logs);
    free(l->log_of_user);
    free(l->x);
    free(l->dx);
    free(l->positions);
    free(l->chunk_x);
    free(l->chunk_dx);
    free(l->chunk_dvalue);
    free(l->chunk_coef);
    free(l->chunk_step);
    free(l->chunk_cand);
    free(l->chunk_n);
    policy_batch_free(&l->chunk);
    policy_work_free(&l->work);
    quant_policy_free(&l->served_policy);
    quant_transformer_free(&l->served_tf);
    transformer_work_free(&l->tf_work);
    nn_params_free(&l->params);
    free(l);
}

/* ---- configuration ---- */

transformer_config learner_transformer_config(const learner_config *cfg)
{
    return (transformer_config){.context = cfg->tf_context, .layers = cfg->tf_layers,
                                .heads = cfg->tf_heads, .width = cfg->tf_width,
                                .mlp_ratio = cfg->tf_mlp_ratio};
}

static int has_init(const learner_config *cfg)
{
    return strcmp(cfg->init, "none") != 0;
}

/* The cross-field checks, without reading any file: what learner_create needs
 * before it builds (it reads the checkpoint once, when it loads it). */
static int check_keys(const learner_config *cfg, char *err)
{
    if (cfg->tf_width % cfg->tf_heads != 0)
        return err_set(err, DS_EINPUT, "'tf_heads' %d must divide 'tf_width' %d",
                       cfg->tf_heads, cfg->tf_width);
    if (has_init(cfg) && cfg->encoder != LEARNER_ENCODER_TRANSFORMER)
        return err_set(err, DS_EINPUT, "'init' loads a transformer checkpoint: it needs "
                       "encoder = transformer");
    return DS_OK;
}

int learner_validate(const void *config, char *err)
{
    const learner_config *cfg = config;
    int rc = check_keys(cfg, err);
    if (rc != DS_OK)
        return rc;
    if (has_init(cfg) && !strstr(cfg->init, "{seed}")) { /* per-seed files: at creation */
        transformer_config tc = learner_transformer_config(cfg);
        char why[ERR_LEN];
        if (checkpoint_check(cfg->init, &tc, -1, why) != DS_OK) /* bad input: its file */
            return err_set(err, DS_EINPUT, "'init': %s", why);
    }
    return DS_OK;
}

/* ---- the state encoder: history or transformer ---- */

static int is_transformer(const learner *l)
{
    return l->cfg.encoder == LEARNER_ENCODER_TRANSFORMER;
}

/* Registers the encoder's tensors and sets n_features. */
static int state_init(learner *l, const env_spec *spec, char *err)
{
    const learner_config *c = &l->cfg;
    int rc;
    if (is_transformer(l)) {
        transformer_config tc = learner_transformer_config(c);
        rc = transformer_init(&l->tf, spec, &tc, &l->layout, err);
        l->n_features = l->tf.n_features;
    } else {
        rc = encoder_init(&l->enc, spec, c->embed_dim, c->history_decay, &l->layout, err);
        l->n_features = l->enc.n_features;
    }
    return rc;
}

static void state_init_weights(learner *l, gsl_rng *init)
{
    if (is_transformer(l))
        transformer_init_weights(&l->tf, l->params.w, init);
    else
        encoder_init_weights(&l->enc, l->params.w, init);
}

/* With cfg.init, the checkpoint's tensors over the initial weights: the rest of
 * the model (the policy) is drawn as without it, so runs of one seed with and
 * without a checkpoint start from the same policy. "{seed}" in the path is the
 * run's seed. */
static int state_load(learner *l, uint64_t seed, char *err)
{
    if (!has_init(&l->cfg))
        return DS_OK; /* learner_validate refused init without the transformer */
    char path[PARAM_STRING_LEN + 32];
    int rc = path_for_seed(l->cfg.init, seed, path, sizeof path, err);
    if (rc == DS_OK)
        rc = checkpoint_load(path, &l->tf.cfg, l->tf.n_items, &l->layout, l->params.w, err);
    return rc == DS_ENOMEM ? rc : rc != DS_OK ? DS_EINPUT : DS_OK; /* its file is bad input */
}

/* Bytes of a step's extra. */
static size_t state_extra_size(const learner *l)
{
    return is_transformer(l) ? sizeof(transformer_input) : sizeof(encoder_cache);
}

/* The current step's extra, as state_features filled it. */
static const void *state_extra(const learner *l)
{
    return is_transformer(l) ? (const void *)&l->tokens : (const void *)&l->cache;
}

/* The features of obs into l->x, its extra into l->cache or l->tokens. */
static int state_features(learner *l, const observation *obs, const learner_session_log *log)
{
    const int *items = log ? log->items : NULL;
    int n = log ? log->n : 0;
    if (is_transformer(l))
        return transformer_features(&l->tf, l->params.w, obs, items, n, l->x, &l->tokens,
                                    &l->tf_work, l->base.err);
    return encoder_features(&l->enc, l->params.w, obs, items, n, l->x, &l->cache,
                            l->base.err);
}

/* l->x = step s's stored features, refreshed with the current weights. */
static void state_refresh(learner *l, const learner_step *s)
{
    size_t F = (size_t)l->n_features;
    memcpy(l->x, s->ep->x + (size_t)s->t * F, F * sizeof *l->x);
    if (is_transformer(l))
        transformer_refresh(&l->tf, l->params.w, s->extra, &l->tf_work, l->x);
    else
        encoder_refresh(&l->enc, l->params.w, s->extra, l->x);
}

/* params.grad += the encoder's part of the gradient dx [n_features] of step s's
 * features (after state_refresh of s). */
static void state_backward(learner *l, const learner_step *s, const double *dx)
{
    if (is_transformer(l)) {
        transformer_state_grad(&l->tf, dx, &l->tf_work);
        transformer_backward(&l->tf, l->params.w, l->params.grad, s->extra, &l->tf_work);
    } else {
        encoder_backward(&l->enc, l->params.grad, dx, s->extra);
    }
}

/* The encoder and the networks in one layout, their slab initialised. */
static int build_model(learner *l, int with_value, const env_spec *spec,
                       const agent_context *ctx, char *err)
{
    gsl_rng *init = ctx->init;
    const learner_config *c = &l->cfg;
    nn_layout_init(&l->layout);
    int rc = state_init(l, spec, err);
    if (rc == DS_OK)
        rc = policy_init(&l->net, spec->n_items, l->n_features, c->hidden, c->embed_dim,
                         with_value, &l->layout, err);
    if (rc == DS_OK)
        rc = nn_params_alloc(&l->params, l->layout.size, err);
    if (rc == DS_OK)
        rc = policy_work_alloc(&l->work, &l->net, err);
    if (rc == DS_OK && is_transformer(l))
        rc = transformer_work_alloc(&l->tf_work, &l->tf, err);
    if (rc != DS_OK)
        return rc;
    state_init_weights(l, init);
    policy_init_weights(&l->net, l->params.w, init);
    rc = state_load(l, ctx->seed, err);
    if (rc != DS_OK)
        return rc;
    l->adam = (nn_adam_config){.beta1 = 0.9, .beta2 = 0.999, .eps = c->adam_eps};
    return DS_OK;
}

/* Steps in an update's chunk: 64, fewer for a large catalogue so that the chunk's
 * logits [rows][n_items] stay within 2^18 doubles (2 MiB); at least 1. With the
 * transformer, 1: its backward needs the activations of its own forward, which a
 * chunk of several steps would have to recompute (the transformer's forward costs
 * more than batching the policy saves). */
#define CHUNK_ROWS 64
#define CHUNK_DOUBLES (1 << 18)

static int chunk_rows(const learner_config *cfg, int n_items)
{
    if (cfg->encoder == LEARNER_ENCODER_TRANSFORMER)
        return 1;
    int rows = CHUNK_DOUBLES / (n_items > 0 ? n_items : 1);
    return rows < 1 ? 1 : rows > CHUNK_ROWS ? CHUNK_ROWS : rows;
}

static int chunk_alloc(learner *l, char *err)
{
    int rc = policy_batch_alloc(&l->chunk, &l->net, chunk_rows(&l->cfg, l->net.n_items),
                                l->cfg.item_precision == LEARNER_ITEMS_SINGLE, err);
    if (rc != DS_OK)
        return rc;
    size_t C = (size_t)l->chunk.cap, F = (size_t)l->n_features;
    l->chunk_x = calloc(C * F, sizeof *l->chunk_x);
    l->chunk_dx = calloc(C * F, sizeof *l->chunk_dx);
    l->chunk_dvalue = calloc(C, sizeof *l->chunk_dvalue);
    l->chunk_coef = calloc(NN_PL_COEFS(l->k), sizeof *l->chunk_coef);
    l->chunk_step = calloc(C, sizeof *l->chunk_step);
    l->chunk_cand = calloc(C, sizeof *l->chunk_cand);
    l->chunk_n = calloc(C, sizeof *l->chunk_n);
    if (!l->chunk_x || !l->chunk_dx || !l->chunk_dvalue || !l->chunk_coef || !l->chunk_step ||
        !l->chunk_cand || !l->chunk_n)
        return err_set(err, DS_ENOMEM, "out of memory for a learning agent's chunks");
    return DS_OK;
}

int learner_create(size_t size, const learner_config *cfg, int with_value,
                   const env_spec *spec, const agent_context *ctx, learner **out,
                   char *err)
{
    *out = NULL;
    if (size < sizeof(learner))
        return err_set(err, DS_EINTERNAL, "agent struct smaller than a learner");
    if (spec->slate < 1 || spec->n_users < 1)
        return err_set(err, DS_EINPUT, "learning agents need a slate and users (%d, %d)",
                       spec->slate, spec->n_users);
    int rc = check_keys(cfg, err);
    if (rc != DS_OK)
        return rc;
    learner *l = calloc(1, size);
    if (!l)
        return err_set(err, DS_ENOMEM, "out of memory");
    l->base.spec = spec;
    l->cfg = *cfg;
    l->k = spec->slate;
    l->sampling = ctx->sampling;
    l->minibatch = ctx->minibatch;
    l->log_update = ctx->log_update;
    l->log_ctx = ctx->log_ctx;
    rc = build_model(l, with_value, spec, ctx, err);
    if (rc == DS_OK)
        rc = traj_store_init(&l->store, spec->n_users, l->n_features, spec->slate,
                             spec->n_items, state_extra_size(l), err);
    if (rc == DS_OK) {
        size_t F = (size_t)l->n_features;
        l->x = calloc(F, sizeof *l->x);
        l->dx = calloc(F, sizeof *l->dx);
        l->positions = calloc((size_t)spec->slate, sizeof *l->positions);
        l->log_of_user = malloc((size_t)spec->n_users * sizeof *l->log_of_user);
        if (!l->x || !l->dx || !l->positions || !l->log_of_user)
            rc = err_set(err, DS_ENOMEM, "out of memory for a learning agent");
    }
    if (rc == DS_OK)
        rc = chunk_alloc(l, err);
    if (rc != DS_OK) {
        learner_destroy(&l->base);
        return rc;
    }
    for (int u = 0; u < spec->n_users; u++)
        l->log_of_user[u] = -1;
    l->items_stale = 1;
    l->wall_mark = monotonic_seconds();
    *out = l;
    return DS_OK;
}

/* ---- session logs ---- */

static int logs_grow(learner *l)
{
    int old = l->cap_logs, cap = old ? 2 * old : 16;
    learner_session_log *logs = realloc(l->logs, (size_t)cap * sizeof *logs);
    if (!logs)
        return DS_ENOMEM;
    l->logs = logs;
    int *free_logs = realloc(l->free_logs, (size_t)cap * sizeof *free_logs);
    if (!free_logs)
        return DS_ENOMEM;
    l->free_logs = free_logs;
    for (int i = old; i < cap; i++)
        l->logs[i] = (learner_session_log){0};
    l->cap_logs = cap;
    for (int i = cap - 1; i >= old; i--)
        l->free_logs[l->n_free_logs++] = i;
    return DS_OK;
}

/* The user's log of this episode, or NULL if it has none. */
static learner_session_log *session_log(const learner *l, int user, long episode)
{
    int slot = l->log_of_user[user];
    if (slot < 0 || l->logs[slot].episode != episode)
        return NULL;
    return &l->logs[slot];
}

static void session_log_drop(learner *l, int user)
{
    int slot = l->log_of_user[user];
    if (slot < 0)
        return;
    l->free_logs[l->n_free_logs++] = slot;
    l->log_of_user[user] = -1;
}

/* Appends n items to the user's log of this episode, opening it (and dropping
 * a stale log of another episode) if needed. */
static int session_log_append(learner *l, int user, long episode, const int *items, int n)
{
    learner_session_log *log = session_log(l, user, episode);
    if (!log) {
        session_log_drop(l, user);
        if (l->n_free_logs == 0 && logs_grow(l) != DS_OK)
            return DS_ENOMEM;
        int slot = l->free_logs[--l->n_free_logs];
        l->log_of_user[user] = slot;
        log = &l->logs[slot];
        log->episode = episode;
        log->n = 0;
    }
    if (log->n + n > log->cap) {
        int cap = log->cap ? 2 * log->cap : 8 * l->k;
        while (cap < log->n + n)
            cap *= 2;
        int *grown = realloc(log->items, (size_t)cap * sizeof *grown);
        if (!grown)
            return DS_ENOMEM;
        log->items = grown;
        log->cap = cap;
    }
    memcpy(log->items + log->n, items, (size_t)n * sizeof *items);
    log->n += n;
    return DS_OK;
}

/* ---- acting and feedback ---- */

/* ---- serving: the eval phase's int8 snapshot ---- */

static void served_drop(learner *l)
{
    quant_policy_free(&l->served_policy);
    quant_transformer_free(&l->served_tf);
    l->served = 0;
}

static int served_build(learner *l)
{
    int rc = quant_policy_build(&l->served_policy, &l->net, l->params.w, l->base.err);
    if (rc == DS_OK && is_transformer(l))
        rc = quant_transformer_build(&l->served_tf, &l->tf, l->params.w, QUANT_INT8,
                                     l->base.err);
    if (rc != DS_OK)
        served_drop(l);
    l->served = rc == DS_OK;
    return rc;
}

/* state_features with the snapshot's encoder (the history encoder has no
 * matrix to quantize: its features are means of embedding rows). */
static int served_features(learner *l, const observation *obs, const learner_session_log *log)
{
    if (!is_transformer(l))
        return state_features(l, obs, log);
    return quant_transformer_features(&l->served_tf, obs, log ? log->items : NULL,
                                      log ? log->n : 0, l->x, NULL, l->base.err);
}

/* The update's float copy of E_out, as the weights are now (item_precision
 * single; a no-op in double). */
static void load_items(learner *l)
{
    policy_batch_load_items(&l->chunk, &l->net, l->params.w);
    l->items_stale = 0;
}

/* l->soft over logits [n] of the candidates cand (NULL: the identity catalogue):
 * with item_precision single, the identity catalogue's weights in single
 * precision, when acting as in the update, so that the log-probability a step
 * records is computed as the update computes it (equal to single precision: the
 * two sum the scores' products in different orders). */
static void softmax_weigh(learner *l, const int *cand, const double *logits, int n)
{
    if (!cand && l->cfg.item_precision == LEARNER_ITEMS_SINGLE)
        nn_softmax_weigh_single(&l->soft, l->work.weights, logits, n);
    else
        nn_softmax_weigh(&l->soft, l->work.weights, logits, n);
}

/* The step's logits into l->work.logits: with the snapshot when serving int8 in
 * the eval phase, else the double networks (and the value when record). */
static int act_logits(learner *l, const observation *obs, const learner_session_log *log,
                      const int *ids, int record, double *value)
{
    int n = obs->n_candidates;
    int serving = !l->base.learning && l->cfg.serve == LEARNER_SERVE_INT8;
    if (!serving) {
        if (l->served)
            served_drop(l); /* learning again: the snapshot is stale */
        int rc = state_features(l, obs, log);
        double *v = record && l->net.with_value ? value : NULL;
        if (rc != DS_OK)
            return rc;
        if (ids || !l->chunk.E_single) {
            policy_forward(&l->net, l->params.w, l->x, ids, n, &l->work, v);
            return DS_OK;
        }
        if (l->items_stale)
            load_items(l);
        policy_forward_single(&l->net, l->params.w, l->x, l->chunk.E_single, &l->work, v);
        return DS_OK;
    }
    int rc = l->served ? DS_OK : served_build(l);
    if (rc == DS_OK)
        rc = served_features(l, obs, log);
    if (rc == DS_OK)
        quant_policy_logits(&l->served_policy, l->x, ids, n, l->work.logits);
    return rc;
}

int learner_act(agent *a, const observation *obs, int *slate)
{
    learner *l = (learner *)a;
    int k = l->k, n = obs->n_candidates;
    if (obs->user < 0 || obs->user >= a->spec->n_users)
        return err_set(a->err, DS_EINPUT, "user %d is out of range", obs->user);
    if (n < k)
        return err_set(a->err, DS_EINPUT, "%d candidates for a slate of %d", n, k);
    const int *ids;
    int rc = policy_candidates(&l->net, obs->candidates, n, &ids, a->err);
    if (rc != DS_OK)
        return rc;
    const learner_session_log *log = session_log(l, obs->user, obs->episode);
    int record = a->learning;
    double value = NAN;
    rc = act_logits(l, obs, log, ids, record, &value);
    if (rc != DS_OK)
        return rc;
    if (!nn_all_finite(l->work.logits, (size_t)n))
        return err_set(a->err, DS_ENUMERIC, "policy logits are not finite when acting "
                       "after update %ld", l->updates - 1);
    int greedy = !a->learning && l->cfg.greedy_eval;
    if (!greedy || record)
        softmax_weigh(l, ids, l->work.logits, n);
    if (greedy)
        policy_top_k(l->positions, l->work.logits, n, k);
    else if ((rc = nn_softmax_pl_sample(l->positions, l->work.work, l->sampling, &l->soft,
                                        k)) != DS_OK)
        return err_set(a->err, rc, "cannot sample a slate of %d from %d candidates", k, n);
    for (int j = 0; j < k; j++)
        slate[j] = obs->candidates[l->positions[j]];
    /* nn_softmax_pl_logprob's value, on the weights in place (no copy of them) */
    double logp = greedy && !record ? 0.0
                                    : nn_softmax_pl_logprob_coefs(&l->soft, l->work.work,
                                                                  l->positions, k, l->chunk_coef);
    a->slate_logp = greedy ? 0.0 : logp;
    l->steps++;
    if (obs->time > l->now)
        l->now = obs->time;
    if (!record)
        return DS_OK;
    return traj_record_step(&l->store, obs, l->x, l->positions, logp, value, state_extra(l),
                            a->err);
}

int learner_observe(agent *a, const feedback *fb)
{
    learner *l = (learner *)a;
    if (fb->time > l->now)
        l->now = fb->time;
    int rc = traj_add_reward(&l->store, fb, a->err);
    if (rc != DS_OK || fb->kind != FEEDBACK_STEP)
        return rc;
    if (fb->slate_len < 0 || (fb->slate_len > 0 && !fb->slate))
        return err_set(a->err, DS_EINPUT, "step feedback with a slate of %d", fb->slate_len);
    if (session_log_append(l, fb->user, fb->episode, fb->slate, fb->slate_len) != DS_OK)
        return err_set(a->err, DS_ENOMEM, "out of memory for a session log");
    return DS_OK;
}

int learner_end_episode(learner *l, int user, long episode, int *ready)
{
    *ready = 0;
    int rc = traj_end_episode(&l->store, user, episode, l->base.err);
    if (rc != DS_OK)
        return rc;
    if (session_log(l, user, episode))
        session_log_drop(l, user);
    *ready = l->base.learning &&
             traj_completed(&l->store) >= (size_t)l->cfg.batch_episodes;
    return DS_OK;
}

/* ---- the batch ---- */

/* Room for n_episodes episodes and n_steps steps. */
static int batch_reserve(learner_batch *b, size_t n_episodes, size_t n_steps)
{
    if (n_episodes > b->cap_episodes) {
        traj_episode **e = realloc(b->episodes, n_episodes * sizeof *e);
        if (e)
            b->episodes = e;
        size_t *s = realloc(b->start, (n_episodes + 1) * sizeof *s);
        if (s)
            b->start = s;
        if (!e || !s)
            return DS_ENOMEM;
        b->cap_episodes = n_episodes;
    }
    if (n_steps > b->cap_steps) {
        size_t cap = b->cap_steps ? b->cap_steps : 64;
        while (cap < n_steps)
            cap *= 2;
#define GROW(field)                                                    \
    do {                                                               \
        void *grown_ = realloc(b->field, cap * sizeof *b->field);      \
        if (!grown_)                                                   \
            return DS_ENOMEM;                                          \
        b->field = grown_;                                             \
    } while (0)
        GROW(episode_of);
        GROW(step_of);
        GROW(value);
        GROW(ret);
        GROW(adv);
        GROW(weight);
        GROW(order);
#undef GROW
        b->cap_steps = cap;
    }
    return DS_OK;
}

int learner_take_batch(learner *l, size_t n)
{
    learner_release_batch(l);
    learner_batch *b = &l->batch;
    if (n > traj_completed(&l->store))
        return err_set(l->base.err, DS_EINPUT, "%zu episodes asked for, %zu completed", n,
                       traj_completed(&l->store));
    if (batch_reserve(b, n, 0) != DS_OK)
        return err_set(l->base.err, DS_ENOMEM, "out of memory for a batch of %zu episodes", n);
    int rc = traj_take(&l->store, n, b->episodes, l->base.err);
    if (rc != DS_OK)
        return rc;
    b->n_episodes = n;
    size_t steps = 0;
    for (size_t e = 0; e < n; e++)
        steps += (size_t)b->episodes[e]->n_steps;
    if (batch_reserve(b, n, steps) != DS_OK) {
        learner_release_batch(l);
        return err_set(l->base.err, DS_ENOMEM, "out of memory for a batch of %zu steps", steps);
    }
    size_t i = 0;
    for (size_t e = 0; e < n; e++) {
        const traj_episode *ep = b->episodes[e];
        b->start[e] = i;
        for (int t = 0; t < ep->n_steps; t++, i++) {
            b->episode_of[i] = (int)e;
            b->step_of[i] = t;
            b->value[i] = ep->value[t];
            b->ret[i] = b->adv[i] = b->weight[i] = 0.0;
            b->order[i] = i;
        }
    }
    b->start[n] = steps;
    b->n_steps = steps;
    return DS_OK;
}

void learner_release_batch(learner *l)
{
    learner_batch *b = &l->batch;
    if (b->n_episodes)
        traj_release(&l->store, b->episodes, b->n_episodes);
    b->n_episodes = 0;
    b->n_steps = 0;
}

learner_step learner_step_at(const learner *l, size_t i)
{
    const learner_batch *b = &l->batch;
    const traj_episode *ep = b->episodes[b->episode_of[i]];
    int t = b->step_of[i];
    return (learner_step){.ep = ep, .t = t, .n = ep->n_candidates[t],
                          .candidates = ep->candidates[t],
                          .slate = ep->slate + (size_t)t * ep->slate_k,
                          .reward = ep->reward[t], .logp = ep->logp[t],
                          .value = ep->value[t], .extra = traj_extra(ep, t)};
}

void learner_shuffle(learner *l)
{
    if (l->batch.n_steps > 1)
        gsl_ran_shuffle(l->minibatch, l->batch.order, l->batch.n_steps,
                        sizeof *l->batch.order);
}

/* ---- forward and backward of a stored step ---- */

double learner_forward(learner *l, size_t i, double *value)
{
    learner_step s = learner_step_at(l, i);
    state_refresh(l, &s);
    policy_forward(&l->net, l->params.w, l->x, s.candidates, s.n, &l->work, value);
    nn_softmax_weigh(&l->soft, l->work.weights, l->work.logits, s.n);
    return nn_softmax_pl_logprob(&l->soft, l->work.work, s.slate, l->k);
}

double learner_entropy(learner *l, size_t i)
{
    (void)i; /* the weights are those of the last learner_forward, of step i */
    return nn_softmax_entropy(&l->soft);
}

void learner_backward_logits(learner *l, size_t i, const double *dlogits, double dvalue)
{
    learner_step s = learner_step_at(l, i);
    memset(l->dx, 0, (size_t)l->n_features * sizeof *l->dx);
    policy_backward(&l->net, l->params.w, l->params.grad, l->x, s.candidates, s.n, dlogits,
                    dvalue, l->dx, &l->work);
    state_backward(l, &s, l->dx);
}

void learner_backward(learner *l, size_t i, double g_logp, double g_entropy,
                      double g_value)
{
    learner_step s = learner_step_at(l, i);
    double *ds = l->work.dlogits; /* [n] */
    memset(ds, 0, (size_t)s.n * sizeof *ds);
    if (g_logp != 0.0)
        nn_softmax_pl_logprob_backward(ds, l->work.work, g_logp, &l->soft, s.slate, l->k);
    if (g_entropy != 0.0)
        nn_softmax_entropy_backward(ds, g_entropy, &l->soft);
    learner_backward_logits(l, i, g_logp != 0.0 || g_entropy != 0.0 ? ds : NULL, g_value);
}

/* ---- a minibatch at once ---- */

/* The head of chunk row b (step i, after policy_forward_batch): its log-probability
 * and entropy, the loss's coefficients, and with want_grad its logits replaced by
 * their gradient and its dL/dV noted. */
static void chunk_head(learner *l, int b, size_t i, int want_value, int want_grad,
                       learner_step_loss loss, void *ctx)
{
    learner_step s = learner_step_at(l, i);
    double *logits = l->chunk.logits + (size_t)b * (size_t)l->net.n_items;
    double *coef = l->chunk_coef;
    softmax_weigh(l, s.candidates, logits, s.n);
    learner_eval ev = {
        .logp = nn_softmax_pl_logprob_coefs(&l->soft, l->work.work, s.slate, l->k, coef),
        .entropy = nn_softmax_entropy(&l->soft),
        .value = want_value && l->net.with_value ? l->chunk.value[b] : NAN};
    learner_grad g = {0};
    loss(ctx, i, &ev, &g);
    if (!want_grad)
        return;
    l->chunk_dvalue[b] = g.g_value;
    if (g.g_logp == 0.0 && g.g_entropy == 0.0)
        memset(logits, 0, (size_t)s.n * sizeof *logits);
    else
        nn_softmax_head_backward(logits, l->work.work, g.g_logp, g.g_entropy, &l->soft,
                                 s.slate, l->k, coef);
    if (!s.candidates) /* b_out's gradient while the row is in cache (bias_added) */
        policy_batch_row_done(&l->chunk, b, l->params.grad + l->net.b_out);
}

/* The steps chunk_step [B]: features, forward, loss, and with want_grad backward. */
static void chunk_run(learner *l, int B, int want_value, int want_grad,
                      learner_step_loss loss, void *ctx)
{
    size_t F = (size_t)l->n_features;
    for (int b = 0; b < B; b++) {
        learner_step s = learner_step_at(l, l->chunk_step[b]);
        state_refresh(l, &s);
        memcpy(l->chunk_x + (size_t)b * F, l->x, F * sizeof *l->x);
    }
    const int *const *cand = l->chunk_cand;
    if (!cand[0] && l->items_stale) /* identity catalogues: over E_out as it is now */
        load_items(l);
    policy_forward_batch(&l->net, l->params.w, l->chunk_x, B, cand, l->chunk_n, want_value,
                         &l->chunk);
    for (int b = 0; b < B; b++)
        chunk_head(l, b, l->chunk_step[b], want_value, want_grad, loss, ctx);
    if (!want_grad)
        return;
    memset(l->chunk_dx, 0, (size_t)B * F * sizeof *l->chunk_dx);
    /* a chunk is all identity catalogues or all lists (learner_minibatch) */
    policy_backward_batch(&l->net, l->params.w, l->params.grad, l->chunk_x, B, cand,
                          l->chunk_n, want_value ? l->chunk_dvalue : NULL, cand[0] == NULL,
                          l->chunk_dx, &l->chunk);
    for (int b = 0; b < B; b++) {
        learner_step s = learner_step_at(l, l->chunk_step[b]);
        state_backward(l, &s, l->chunk_dx + (size_t)b * F);
    }
}

void learner_minibatch(learner *l, const size_t *steps, size_t n, int want_value,
                       int want_grad, learner_step_loss loss, void *ctx)
{
    /* identity catalogues first (their item scores are one matrix product a
     * chunk), then the steps with candidate lists */
    for (int identity = 1; identity >= 0; identity--) {
        int B = 0;
        for (size_t j = 0; j < n; j++) {
            learner_step s = learner_step_at(l, steps[j]);
            if ((s.candidates == NULL) != identity)
                continue;
            l->chunk_step[B] = steps[j];
            l->chunk_cand[B] = s.candidates;
            l->chunk_n[B] = s.n;
            if (++B == l->chunk.cap) {
                chunk_run(l, B, want_value, want_grad, loss, ctx);
                B = 0;
            }
        }
        if (B > 0)
            chunk_run(l, B, want_value, want_grad, loss, ctx);
    }
}

void learner_pg_step_loss(void *ctx, size_t i, const learner_eval *ev, learner_grad *g)
{
    learner_pg_loss *t = ctx;
    double N = t->n, a = t->weight ? t->weight[i] * t->adv[i] : t->adv[i];
    t->policy_loss -= a * ev->logp / N;
    t->entropy += ev->entropy / N;
    g->g_logp = -a / N;
    g->g_entropy = -t->entropy_coef / N;
    if (!t->ret)
        return;
    double err = ev->value - t->ret[i];
    t->value_loss += err * err / N;
    g->g_value = t->value_coef * 2.0 * err / N;
}

/* ---- returns and advantages ---- */

void learner_reward_to_go(double *G, const double *reward, int n, double gamma)
{
    double next = 0.0;
    for (int t = n - 1; t >= 0; t--)
        next = G[t] = reward[t] + gamma * next;
}

void learner_gae(double *adv, const double *reward, const double *value, int n,
                 double gamma, double lambda)
{
    double next_adv = 0.0, next_value = 0.0; /* terminal: nothing after the last step */
    for (int t = n - 1; t >= 0; t--) {
        double delta = reward[t] + gamma * next_value - value[t];
        next_adv = adv[t] = delta + gamma * lambda * next_adv;
        next_value = value[t];
    }
}

void learner_batch_reward_to_go(learner *l, double gamma)
{
    learner_batch *b = &l->batch;
    for (size_t e = 0; e < b->n_episodes; e++) {
        const traj_episode *ep = b->episodes[e];
        learner_reward_to_go(b->ret + b->start[e], ep->reward, ep->n_steps, gamma);
    }
}

void learner_batch_gae(learner *l, double gamma, double lambda)
{
    learner_batch *b = &l->batch;
    for (size_t e = 0; e < b->n_episodes; e++) {
        const traj_episode *ep = b->episodes[e];
        size_t at = b->start[e];
        learner_gae(b->adv + at, ep->reward, b->value + at, ep->n_steps, gamma, lambda);
    }
    for (size_t i = 0; i < b->n_steps; i++)
        b->ret[i] = b->adv[i] + b->value[i];
}

void learner_batch_values(learner *l)
{
    for (size_t i = 0; i < l->batch.n_steps; i++) {
        learner_step s = learner_step_at(l, i);
        state_refresh(l, &s);
        /* the value trunk alone: the policy's logits are not needed */
        policy_forward(&l->net, l->params.w, l->x, s.candidates, s.n, &l->work,
                       &l->batch.value[i]);
    }
}

double learner_explained_variance(const double *pred, const double *target, size_t n)
{
    if (n == 0)
        return NAN;
    double mt = 0.0, mr = 0.0;
    for (size_t i = 0; i < n; i++) {
        mt += target[i];
        mr += target[i] - pred[i];
    }
    mt /= (double)n;
    mr /= (double)n;
    double vt = 0.0, vr = 0.0;
    for (size_t i = 0; i < n; i++) {
        double dt = target[i] - mt, dr = target[i] - pred[i] - mr;
        vt += dt * dt;
        vr += dr * dr;
    }
    return vt > 0.0 ? 1.0 - vr / vt : NAN;
}

/* ---- the step and its diagnostics ---- */

update_row learner_row(void)
{
    return (update_row){.policy_loss = NAN, .value_loss = NAN, .entropy = NAN,
                        .approx_kl = NAN, .clip_fraction = NAN,
                        .explained_variance = NAN, .grad_norm = NAN,
                        .learning_rate = NAN, .steps_per_second = NAN};
}

int learner_check_finite(learner *l, const char *what, double value)
{
    if (isfinite(value))
        return DS_OK;
    return err_set(l->base.err, DS_ENUMERIC, "%s is %s at update %ld", what,
                   isnan(value) ? "NaN" : "Inf", l->updates);
}

int learner_apply_gradient(learner *l, double lr, double *grad_norm)
{
    double norm = nn_grad_norm(&l->params);
    if (grad_norm)
        *grad_norm = norm;
    int rc = learner_check_finite(l, "gradient norm", norm);
    if (rc != DS_OK)
        return rc;
    /* the clip, the step and the check of the weights in one pass */
    double scale = nn_clip_scale(norm, l->cfg.max_grad_norm);
    l->items_stale = 1;
    if (!nn_adam_step_scaled(&l->params, &l->adam, lr, scale))
        return err_set(l->base.err, DS_ENUMERIC, "parameters are not finite after update %ld",
                       l->updates);
    return DS_OK;
}

int learner_log_update(learner *l, update_row *row)
{
    double now = monotonic_seconds(), elapsed = now - l->wall_mark;
    row->update = l->updates;
    row->time = l->now;
    row->steps_per_second = elapsed > 0.0 ? (double)l->steps / elapsed : NAN;
    l->updates++;
    l->steps = 0;
    l->wall_mark = now;
    if (!l->log_update)
        return DS_OK;
    int rc = l->log_update(l->log_ctx, row);
    return rc == DS_OK ? rc : err_set(l->base.err, rc, "cannot log update %ld", row->update);
}

int learner_single_step_update(learner *l)
{
    update_row row = learner_row();
    double loss;
    int rc = learner_take_batch(l, (size_t)l->cfg.batch_episodes);
    if (rc == DS_OK)
        rc = l->prepare(l, &row);
    if (rc == DS_OK) {
        nn_params_zero_grad(&l->params);
        rc = l->loss(l, 1, &loss, &row);
    }
    if (rc == DS_OK)
        rc = learner_check_finite(l, "loss", loss);
    if (rc == DS_OK)
        rc = learner_apply_gradient(l, l->cfg.learning_rate, &row.grad_norm);
    row.learning_rate = l->cfg.learning_rate;
    if (rc == DS_OK)
        rc = learner_log_update(l, &row);
    learner_release_batch(l);
    return rc;
}

/* ---- memory ---- */

/* The state encoder's share of learner_memory_estimate: its weights and
 * workspace (doubles) and what a stored step keeps (bytes). */
static void encoder_memory_estimate(const learner_config *cfg, const env_spec *spec,
                                    double *weights, double *work, double *per_step)
{
    double N = spec->n_items;
    if (cfg->encoder != LEARNER_ENCODER_TRANSFORMER) {
        *weights = N * cfg->embed_dim; /* E_in */
        *work = 0;
        *per_step = sizeof(encoder_cache);
        return;
    }
    /* transformer.h: attention (QKV, projection), MLP, two layer norms per block;
     * item table and bias, positions, kinds, final layer norm */
    double C = cfg->tf_width, L = cfg->tf_layers, T = cfg->tf_context + 1.0;
    double M = cfg->tf_mlp_ratio * C, heads = cfg->tf_heads;
    *weights = L * (4 * C * C + 4 * C + 2 * M * C + M + C + 4 * C) + (N + T + 4) * C + N + 2 * C;
    /* every activation of a block per token, the next-click logits and their gradient */
    *work = T * (L * (12 * C + 2 * M + 2 * heads * T) + 8 * C + 2 * N);
    *per_step = sizeof(transformer_input);
}

double learner_memory_estimate(size_t size, const learner_config *cfg, int with_value,
                               const env_spec *spec)
{
    double d = cfg->embed_dim, H = cfg->hidden, N = spec->n_items, k = spec->slate;
    double enc_weights, enc_work, enc_step;
    encoder_memory_estimate(cfg, spec, &enc_weights, &enc_work, &enc_step);
    double F = cfg->encoder == LEARNER_ENCODER_TRANSFORMER
                   ? cfg->tf_width + spec->n_topics + 3.0 /* transformer.h */
                   : 2 * d + 2 * spec->n_topics + 3;      /* encoder.h */
    double trunk = H * F + H + H * H + H;      /* two tanh layers */
    double weights = enc_weights + trunk + d * H + d /* pi_W3, pi_b3 */ +
                     N * d + N /* E_out, b_out */ + (with_value ? trunk + H + 1 : 0);
    double work = 7 * H + 2 * d + 3 * N + (double)nn_pl_sample_work(spec->n_items) + enc_work;
    /* the update's chunks: policy_batch, features and their gradient, dL/dV */
    int rows = chunk_rows(cfg, spec->n_items);
    work += rows * (6 * H + 2 * d + 2 + N + 2 * F);
    if (cfg->item_precision == LEARNER_ITEMS_SINGLE) /* floats, as doubles */
        work += (double)policy_batch_singles(spec->n_items, cfg->embed_dim, rows) / 2;
    /* serve = int8: the snapshot's tables, a byte a weight stored twice (quant.h) */
    double served = cfg->serve == LEARNER_SERVE_INT8 ? 2 * weights : 0;
    /* A step held in the store, and its scratch in the batch (learner_batch). */
    double per_step = F * sizeof(double) + enc_step + k * sizeof(int) +
                      sizeof(int *) + sizeof(int) + 3 * sizeof(double) +
                      4 * sizeof(double) + 2 * sizeof(int) + 2 * sizeof(size_t);
    double steps = (cfg->batch_episodes + 1.0) * fmin(spec->max_steps, LEARNER_TYPICAL_STEPS);
    return (double)size + 4 * weights * sizeof(double) /* w, grad, Adam m and v */ +
           work * sizeof(double) + served + 2 * F * sizeof(double) + k * sizeof(int) +
           (double)spec->n_users * 2 * sizeof(int) /* log_of_user, open_slot */ +
           steps * per_step;
}
