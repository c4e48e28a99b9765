#include "transformer.h"
#include "encoder.h"

#include "../sim/common.h"

#include <gsl/gsl_cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void transformer_config_defaults(transformer_config *cfg)
{
    *cfg = (transformer_config){.context = 16, .layers = 2, .heads = 2, .width = 32,
                                .mlp_ratio = 4};
}

double transformer_flops(const transformer_config *cfg, int n_tokens)
{
    double T = n_tokens, C = cfg->width, r = cfg->mlp_ratio;
    return cfg->layers * ((8.0 + 4.0 * r) * T * C * C + 2.0 * T * (T + 1.0) * C);
}

/* ---- description ---- */

static int check_config(const transformer_config *c, char *err)
{
    if (c->context < 1 || c->context > TRANSFORMER_MAX_CONTEXT)
        return err_set(err, DS_EINPUT, "'context' must be in [1, %d], got %d",
                       TRANSFORMER_MAX_CONTEXT, c->context);
    if (c->layers < 1 || c->layers > TRANSFORMER_MAX_LAYERS)
        return err_set(err, DS_EINPUT, "'layers' must be in [1, %d], got %d",
                       TRANSFORMER_MAX_LAYERS, c->layers);
    if (c->width < 1)
        return err_set(err, DS_EINPUT, "'width' must be at least 1, got %d", c->width);
    if (c->heads < 1 || c->width % c->heads != 0)
        return err_set(err, DS_EINPUT, "'heads' must divide 'width' %d, got %d", c->width,
                       c->heads);
    if (c->mlp_ratio < 1 || c->mlp_ratio > 16)
        return err_set(err, DS_EINPUT, "'mlp_ratio' must be in [1, 16], got %d",
                       c->mlp_ratio);
    return DS_OK;
}

/* The tensors in registration order: name, where its offset goes, shape. */
typedef struct {
    const char *name;
    size_t *offset;
    int rows, cols;
} tensor_spec;

static int register_tensors(transformer *tf, nn_layout *layout, char *err)
{
    int N = tf->n_items, C = tf->C, M = tf->M, L = tf->cfg.layers;
    const tensor_spec specs[] = {
        {"tf_item", &tf->item_emb, N, C},     {"tf_item_bias", &tf->item_bias, 1, N},
        {"tf_pos", &tf->pos_emb, tf->T_max, C}, {"tf_kind", &tf->kind_emb, TF_N_KINDS, C},
        {"tf_ln1", &tf->ln1, L, 2 * C},       {"tf_qkv_W", &tf->Wqkv, L * 3 * C, C},
        {"tf_qkv_b", &tf->bqkv, L, 3 * C},    {"tf_attn_W", &tf->Wo, L * C, C},
        {"tf_attn_b", &tf->bo, L, C},         {"tf_ln2", &tf->ln2, L, 2 * C},
        {"tf_fc_W", &tf->W1, L * M, C},       {"tf_fc_b", &tf->b1, L, M},
        {"tf_proj_W", &tf->W2, L * C, M},     {"tf_proj_b", &tf->b2, L, C},
        {"tf_lnf", &tf->lnf, 2, C},
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        int rc = nn_layout_add(layout, specs[i].name, specs[i].rows, specs[i].cols,
                               specs[i].offset, err);
        if (rc != DS_OK)
            return rc;
    }
    return DS_OK;
}

/* Block l's view of the stacked tensors. */
static attn_block block_view(const transformer *tf, int l)
{
    size_t C = (size_t)tf->C, M = (size_t)tf->M, i = (size_t)l;
    return (attn_block){.C = tf->C, .NH = tf->cfg.heads, .M = tf->M,
                        .ln1 = tf->ln1 + i * 2 * C,
                        .Wqkv = tf->Wqkv + i * 3 * C * C, .bqkv = tf->bqkv + i * 3 * C,
                        .Wo = tf->Wo + i * C * C, .bo = tf->bo + i * C,
                        .ln2 = tf->ln2 + i * 2 * C,
                        .W1 = tf->W1 + i * M * C, .b1 = tf->b1 + i * M,
                        .W2 = tf->W2 + i * C * M, .b2 = tf->b2 + i * C};
}

int transformer_init(transformer *tf, const env_spec *spec, const transformer_config *cfg,
                     nn_layout *layout, char *err)
{
    memset(tf, 0, sizeof *tf);
    int rc = check_config(cfg, err);
    if (rc == DS_OK)
        rc = encoder_check_spec(spec, "transformer encoder", err);
    if (rc != DS_OK)
        return rc;
    tf->cfg = *cfg;
    tf->n_items = spec->n_items;
    tf->n_topics = spec->n_topics;
    tf->max_steps = spec->max_steps;
    tf->item_topic = spec->item_topic;
    tf->T_max = cfg->context + 1;
    tf->C = cfg->width;
    tf->M = cfg->mlp_ratio * cfg->width;
    tf->at_state = 0;
    tf->at_session_topics = tf->C;
    tf->at_scalars = tf->C + spec->n_topics;
    tf->n_features = tf->at_scalars + 3;
    /* register into a copy: a failure leaves the caller's layout as it was */
    nn_layout trial = *layout;
    rc = register_tensors(tf, &trial, err);
    if (rc != DS_OK)
        return rc;
    *layout = trial;
    for (int l = 0; l < cfg->layers; l++)
        tf->blocks[l] = block_view(tf, l);
    return DS_OK;
}

static void fill(double *w, double value, size_t n)
{
    for (size_t i = 0; i < n; i++)
        w[i] = value;
}

void transformer_init_weights(const transformer *tf, double *w, gsl_rng *r)
{
    size_t N = (size_t)tf->n_items, C = (size_t)tf->C, M = (size_t)tf->M;
    size_t L = (size_t)tf->cfg.layers;
    const double sd = 0.02, sd_residual = 0.02 / sqrt(2.0 * (double)L);
    nn_init_normal(w + tf->item_emb, r, sd, N * C);
    nn_init_normal(w + tf->pos_emb, r, sd, (size_t)tf->T_max * C);
    nn_init_normal(w + tf->kind_emb, r, sd, TF_N_KINDS * C);
    nn_init_normal(w + tf->Wqkv, r, sd, L * 3 * C * C);
    nn_init_normal(w + tf->Wo, r, sd_residual, L * C * C);
    nn_init_normal(w + tf->W1, r, sd, L * M * C);
    nn_init_normal(w + tf->W2, r, sd_residual, L * C * M);
    fill(w + tf->item_bias, 0.0, N);
    fill(w + tf->bqkv, 0.0, L * 3 * C);
    fill(w + tf->bo, 0.0, L * C);
    fill(w + tf->b1, 0.0, L * M);
    fill(w + tf->b2, 0.0, L * C);
    for (size_t l = 0; l < L; l++) {
        fill(w + tf->ln1 + l * 2 * C, 1.0, C);
        fill(w + tf->ln1 + l * 2 * C + C, 0.0, C);
        fill(w + tf->ln2 + l * 2 * C, 1.0, C);
        fill(w + tf->ln2 + l * 2 * C + C, 0.0, C);
    }
    fill(w + tf->lnf, 1.0, C);
    fill(w + tf->lnf + C, 0.0, C);
}

/* ---- workspace ---- */

int transformer_work_alloc(transformer_work *work, const transformer *tf, char *err)
{
    memset(work, 0, sizeof *work);
    int T = tf->T_max, L = tf->cfg.layers;
    size_t TC = (size_t)T * (size_t)tf->C, N = (size_t)tf->n_items;
    size_t per_block = attn_block_acts_size(&tf->blocks[0], T);
    size_t total = TC /* x0 */ + (size_t)L * per_block + TC + 2 * (size_t)T /* lnf */
                   + 3 * TC /* dhidden dres dres_next */
                   + attn_block_scratch_size(&tf->blocks[0], T) + 2 * (size_t)T * N;
    double *p = calloc(total, sizeof *p);
    if (!p)
        return err_set(err, DS_ENOMEM,
                       "out of memory for a transformer workspace of %zu doubles", total);
    work->slab = p;
    work->x0 = p, p += TC;
    for (int l = 0; l < L; l++) {
        attn_block_acts_bind(&work->blocks[l], p, &tf->blocks[l], T);
        p += per_block;
    }
    work->hidden = p, p += TC;
    work->lnf_mean = p, p += T;
    work->lnf_rstd = p, p += T;
    work->dhidden = p, p += TC;
    work->dres = p, p += TC;
    work->dres_next = p, p += TC;
    attn_block_scratch_bind(&work->scratch, p, &tf->blocks[0], T);
    p += attn_block_scratch_size(&tf->blocks[0], T);
    work->logits = p, p += (size_t)T * N;
    work->dlogits = p;
    return DS_OK;
}

void transformer_work_free(transformer_work *work)
{
    if (!work)
        return;
    free(work->slab);
    memset(work, 0, sizeof *work);
}

/* ---- tokens and features ---- */

int transformer_tokens(const transformer *tf, const observation *obs,
                       transformer_input *input, char *err)
{
    if (obs->history_len < 0)
        return err_set(err, DS_EINPUT, "history of %d entries", obs->history_len);
    int n = obs->history_len < tf->cfg.context ? obs->history_len : tf->cfg.context;
    input->n_tokens = n + 1;
    input->item[0] = -1;
    input->kind[0] = TF_KIND_START;
    for (int t = 1; t <= n; t++) {
        int j = n - t; /* newest first in the history: the oldest used entry first */
        const history_entry *h = &obs->history[j];
        switch (h->kind) {
        case HIST_SKIP:
            input->item[t] = -1;
            input->kind[t] = TF_KIND_SHOWN;
            continue;
        case HIST_CLICK:
            input->kind[t] = TF_KIND_CLICK;
            break;
        case HIST_PURCHASE:
            input->kind[t] = TF_KIND_PURCHASE;
            break;
        default:
            return err_set(err, DS_EINPUT, "history entry %d has unknown kind %d", j,
                           h->kind);
        }
        if (h->item < 0 || h->item >= tf->n_items)
            return err_set(err, DS_EINPUT, "history entry %d has item %d out of range", j,
                           h->item);
        input->item[t] = h->item;
    }
    return DS_OK;
}

/* x0[t] = item_emb[item] + pos_emb[t] + kind_emb[kind]. */
static void embed(const transformer *tf, const double *w, const transformer_input *in,
                  double *x0)
{
    int C = tf->C;
    for (int t = 0; t < in->n_tokens; t++) {
        double *x = x0 + (size_t)t * C;
        const double *pos = w + tf->pos_emb + (size_t)t * C;
        const double *kind = w + tf->kind_emb + (size_t)in->kind[t] * C;
        for (int c = 0; c < C; c++)
            x[c] = pos[c] + kind[c];
        if (in->item[t] >= 0)
            cblas_daxpy(C, 1.0, w + tf->item_emb + (size_t)in->item[t] * C, 1, x, 1);
    }
}

void transformer_forward(const transformer *tf, const double *w,
                         const transformer_input *input, transformer_work *work)
{
    int T = input->n_tokens, C = tf->C, L = tf->cfg.layers;
    embed(tf, w, input, work->x0);
    const double *x = work->x0;
    for (int l = 0; l < L; l++) {
        attn_block_forward(&tf->blocks[l], w, x, &work->blocks[l], T);
        x = work->blocks[l].out;
    }
    attn_layernorm_forward(work->hidden, work->lnf_mean, work->lnf_rstd, x, w + tf->lnf,
                           w + tf->lnf + C, T, C);
    memset(work->dhidden, 0, (size_t)T * C * sizeof *work->dhidden);
    work->n_tokens = T;
}

/* The history encoder's parameter-free groups (encoder.h), at their places in x. */
static void context_features(const transformer *tf, const observation *obs,
                             const int *session_items, int n_session_items, double *x)
{
    double *topics = x + tf->at_session_topics, *scalars = x + tf->at_scalars;
    memset(topics, 0, (size_t)tf->n_topics * sizeof *topics);
    for (int i = 0; i < n_session_items; i++)
        topics[tf->item_topic[session_items[i]]] += 1.0;
    for (int t = 0; n_session_items > 0 && t < tf->n_topics; t++)
        topics[t] /= n_session_items;
    int first_visit = isinf(obs->since_last_visit);
    double gap = obs->since_last_visit > 0.0 ? obs->since_last_visit : 0.0;
    scalars[0] = (double)obs->step / tf->max_steps;
    scalars[1] = first_visit ? 0.0 : log1p(gap) / 10.0;
    scalars[2] = first_visit ? 1.0 : 0.0;
}

int transformer_context_features(const transformer *tf, const observation *obs,
                                 const int *session_items, int n_session_items, double *x,
                                 transformer_input *input, char *err)
{
    int rc = transformer_tokens(tf, obs, input, err);
    if (rc != DS_OK)
        return rc;
    if (n_session_items < 0)
        return err_set(err, DS_EINPUT, "%d session items", n_session_items);
    for (int i = 0; i < n_session_items; i++)
        if (session_items[i] < 0 || session_items[i] >= tf->n_items)
            return err_set(err, DS_EINPUT, "session item %d out of range", session_items[i]);
    if (isnan(obs->since_last_visit))
        return err_set(err, DS_EINPUT, "'since_last_visit' is NaN");
    context_features(tf, obs, session_items, n_session_items, x);
    return DS_OK;
}

int transformer_features(const transformer *tf, const double *w, const observation *obs,
                         const int *session_items, int n_session_items, double *x,
                         transformer_input *input, transformer_work *work, char *err)
{
    transformer_input local;
    transformer_input *in = input ? input : &local;
    int rc = transformer_context_features(tf, obs, session_items, n_session_items, x, in, err);
    if (rc != DS_OK)
        return rc;
    transformer_refresh(tf, w, in, work, x);
    return DS_OK;
}

void transformer_refresh(const transformer *tf, const double *w,
                         const transformer_input *input, transformer_work *work, double *x)
{
    transformer_forward(tf, w, input, work);
    const double *last = work->hidden + (size_t)(input->n_tokens - 1) * tf->C;
    memcpy(x + tf->at_state, last, (size_t)tf->C * sizeof *x);
}

/* ---- backward ---- */

void transformer_state_grad(const transformer *tf, const double *dx, transformer_work *work)
{
    double *d = work->dhidden + (size_t)(work->n_tokens - 1) * tf->C;
    for (int c = 0; c < tf->C; c++)
        d[c] += dx[tf->at_state + c];
}

void transformer_backward(const transformer *tf, const double *w, double *grad,
                          const transformer_input *input, transformer_work *work)
{
    int T = work->n_tokens, C = tf->C, L = tf->cfg.layers;
    size_t n = (size_t)T * C;
    const double *last = work->blocks[L - 1].out;
    memset(work->dres, 0, n * sizeof *work->dres);
    attn_layernorm_backward(work->dres, grad + tf->lnf, grad + tf->lnf + C, work->dhidden,
                            last, w + tf->lnf, work->lnf_mean, work->lnf_rstd, T, C);
    for (int l = L - 1; l >= 0; l--) {
        const double *in = l > 0 ? work->blocks[l - 1].out : work->x0;
        memset(work->dres_next, 0, n * sizeof *work->dres_next);
        attn_block_backward(&tf->blocks[l], w, grad, work->dres_next, work->dres, in,
                            &work->blocks[l], &work->scratch, T);
        double *swap = work->dres;
        work->dres = work->dres_next;
        work->dres_next = swap;
    }
    /* the embeddings: each token's gradient goes to its item, position and kind rows */
    for (int t = 0; t < T; t++) {
        const double *d = work->dres + (size_t)t * C;
        cblas_daxpy(C, 1.0, d, 1, grad + tf->pos_emb + (size_t)t * C, 1);
        cblas_daxpy(C, 1.0, d, 1, grad + tf->kind_emb + (size_t)input->kind[t] * C, 1);
        if (input->item[t] >= 0)
            cblas_daxpy(C, 1.0, d, 1, grad + tf->item_emb + (size_t)input->item[t] * C, 1);
    }
}

/* ---- next-click prediction ---- */

void transformer_next_click_targets(const transformer_input *input, int next_click,
                                    int *targets)
{
    int next = next_click;
    for (int t = input->n_tokens - 1; t >= 0; t--) {
        targets[t] = next;
        if (input->kind[t] == TF_KIND_CLICK)
            next = input->item[t];
    }
}

double transformer_next_click_loss(const transformer *tf, const double *w, double *grad,
                                   const int *targets, double scale, transformer_work *work,
                                   int *n_targets)
{
    int N = tf->n_items, C = tf->C, T = work->n_tokens, count = 0;
    const double *E = w + tf->item_emb;
    /* every position at once: logits [T][N] = hidden E^T + bias, one dgemm (the
     * item table is a dense layer's weight [N][C]) */
    nn_dense_forward(work->logits, work->hidden, E, w + tf->item_bias, T, C, N);
    double loss = 0.0;
    for (int t = 0; t < T; t++) {
        const double *logits = work->logits + (size_t)t * N;
        double *dlogits = work->dlogits + (size_t)t * N;
        if (targets[t] < 0) {
            memset(dlogits, 0, (size_t)N * sizeof *dlogits);
            continue;
        }
        /* one exp per logit, kept for the softmax: p_i = e_i / sum */
        double max = logits[0], sum = 0.0;
        for (int i = 1; i < N; i++)
            if (logits[i] > max)
                max = logits[i];
        for (int i = 0; i < N; i++) {
            dlogits[i] = exp(logits[i] - max);
            sum += dlogits[i];
        }
        loss += max + log(sum) - logits[targets[t]];
        count++;
        /* d/dlogits of (logsumexp - logit_target) = softmax - one_hot(target) */
        for (int i = 0; i < N; i++)
            dlogits[i] *= scale / sum;
        dlogits[targets[t]] -= scale;
    }
    if (grad)
        nn_dense_backward(work->dhidden, grad + tf->item_emb, grad + tf->item_bias,
                          work->dlogits, work->hidden, E, T, C, N);
    if (n_targets)
        *n_targets = count;
    return loss;
}
