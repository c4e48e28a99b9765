/* A causal self-attention sequence encoder (SASRec-style, GPT-2 blocks) over a
 * user's recent history, and its next-click prediction head for pretraining.
 *
 * Tokens. An observation's history (newest first) becomes a sequence of
 * T = 1 + n tokens in time order: a start token, then the newest n = min(H,
 * history_len) entries, oldest first. Token t carries an item (or none) and a
 * kind:
 *   TF_KIND_START     position 0, no item: the state is defined with no history
 *   TF_KIND_SHOWN     a slate shown without a click (HIST_SKIP), no item
 *   TF_KIND_CLICK     the clicked item (HIST_CLICK)
 *   TF_KIND_PURCHASE  the bought item (HIST_PURCHASE; the engine logs it after
 *                     its click, late purchases when they arrive)
 * and is embedded as   x0[t] = item_emb[item] (0 without an item)
 *                            + pos_emb[t] + kind_emb[kind]                  [C]
 * Positions count from the start token (left-aligned, GPT style), so the hidden
 * state at t is exactly the state the encoder gives when the window ends at t:
 * every position trains the serving case.
 *
 * Network. L pre-LN blocks (agents/attention.h: causal multi-head attention and
 * a GELU MLP of width mlp_ratio * C, with residuals), then a final layer norm:
 * hidden [T][C]. The item table is TIED: the same item_emb [N][C] embeds the
 * input tokens and scores the next click (SASRec's shared item embedding), so
 * pretraining shapes one table; item_bias [N] is the output's popularity term.
 *
 * State vector (the policy's input, as the history encoder's features are):
 *   x [n_features] = [ hidden[T-1] (C) | session topics (n_topics) | 3 scalars ]
 *   [0, C)          the last position's hidden state;
 *   [C, C+T)        the histogram of the topics of the items shown in this
 *                   session's earlier slates, normalised (zeros at step 0);
 *   [C+T, C+T+3)    step / max_steps; log1p(hours since the last visit) / 10,
 *                   0 on a first visit; 1 on a first visit, else 0.
 * The last two groups are the history encoder's parameter-free groups, defined
 * identically (encoder.h), so a policy_net built with n_features = C + T + 3
 * reads either encoder the same way. The history encoder's clicked/bought means
 * and click-topic histogram are what the attention stack learns instead.
 *
 * Learning. The forward keeps every activation in a transformer_work; loss
 * heads ADD their gradient w.r.t. hidden into work->dhidden (which the forward
 * clears): transformer_state_grad for a policy's dx, transformer_next_click_loss
 * for pretraining or as an auxiliary loss; then transformer_backward
 * back-propagates dhidden into the gradient slab (accumulating, as every
 * backward in nn.h does). A stored step keeps its transformer_input (a fixed-
 * size plain struct, like encoder_cache) and replays with transformer_refresh.
 *
 * Cost of a forward with T tokens (multiply-adds counted as 2 FLOPs):
 *   L (24 T C^2 [at mlp_ratio 4; in general (8 + 4 mlp_ratio) T C^2]
 *      + 2 T (T + 1) C)   + O(L T C + L NH T^2 + T mlp_ratio C) elementwise,
 * see transformer_flops. At the defaults (H 16 so T 17, L 2, C 32, ratio 4):
 * 874,752 FLOPs, about 0.9 MFLOP per act. The next-click head adds 2 T N C
 * (2.2 MFLOP at N 2000, T 17). Parameters: 12 L C^2 + 13 L C
 * + (N + T + 4) C + N + 2 C (92,144 at N 2000 and the defaults; 64,000 of it the item table). */
#ifndef DIVSIM_TRANSFORMER_H
#define DIVSIM_TRANSFORMER_H

#include "../sim/slate.h"
#include "attention.h"
#include "nn.h"

#include <gsl/gsl_rng.h>
#include <stddef.h>

/* The longest context: the engine's bound on its `history` run setting. */
#define TRANSFORMER_MAX_CONTEXT 64
#define TRANSFORMER_MAX_TOKENS (TRANSFORMER_MAX_CONTEXT + 1)
#define TRANSFORMER_MAX_LAYERS 8

typedef enum {
    TF_KIND_START = 0,
    TF_KIND_SHOWN = 1,
    TF_KIND_CLICK = 2,
    TF_KIND_PURCHASE = 3
} transformer_kind;
#define TF_N_KINDS 4

/* Hyperparameters, with the defaults of transformer_config_defaults. */
typedef struct {
    int context;   /* H = 16: history entries read (the newest H); T <= H + 1 */
    int layers;    /* L = 2 */
    int heads;     /* NH = 2; width % heads == 0 */
    int width;     /* C = 32: token and hidden width */
    int mlp_ratio; /* 4: MLP hidden width M = mlp_ratio * C */
} transformer_config;

void transformer_config_defaults(transformer_config *cfg);

/* FLOPs of one forward over n_tokens tokens (the formula above, dominant terms). */
double transformer_flops(const transformer_config *cfg, int n_tokens);

/* The token sequence of one state (what a trajectory stores per step). */
typedef struct {
    int n_tokens;                      /* T, 1 .. H + 1 */
    int item[TRANSFORMER_MAX_TOKENS];  /* [T] item id, or -1 (start, shown) */
    int kind[TRANSFORMER_MAX_TOKENS];  /* [T] transformer_kind */
} transformer_input;

typedef struct {
    transformer_config cfg;
    int n_items, n_topics, max_steps;
    const int *item_topic; /* [n_items] borrowed from the env_spec */
    int T_max;             /* H + 1 */
    int C, M;              /* width, MLP hidden width */
    int n_features;        /* C + n_topics + 3 */
    int at_state, at_session_topics, at_scalars; /* where each group starts in x */
    /* offsets in the parameter slab, shapes as [rows][cols] */
    size_t item_emb;       /* [N][C] tied input and output item table */
    size_t item_bias;      /* [N] next-click output bias */
    size_t pos_emb;        /* [T_max][C] */
    size_t kind_emb;       /* [TF_N_KINDS][C] */
    size_t ln1, Wqkv, bqkv; /* [L][2C], [L 3C][C], [L][3C] */
    size_t Wo, bo;          /* [L C][C], [L][C] */
    size_t ln2, W1, b1;     /* [L][2C], [L M][C], [L][M] */
    size_t W2, b2;          /* [L C][M], [L][C] */
    size_t lnf;             /* [2][C] final layer norm: gamma, beta */
    attn_block blocks[TRANSFORMER_MAX_LAYERS]; /* [L] each block's view of the slab */
} transformer;

/* Activations and scratch for one sequence, allocated once per encoder. */
typedef struct {
    int n_tokens;                      /* T of the last forward; 0 before any */
    double *x0;                        /* [T_max][C] token embeddings */
    attn_block_acts blocks[TRANSFORMER_MAX_LAYERS];
    double *hidden;                    /* [T_max][C] final layer norm's output */
    double *lnf_mean, *lnf_rstd;       /* [T_max] */
    double *dhidden;                   /* [T_max][C] loss heads add dL/dhidden here */
    double *dres, *dres_next;          /* [T_max][C] residual-stream gradients */
    attn_block_scratch scratch;
    double *logits, *dlogits;          /* [T_max][N] next-click head */
    double *slab;                      /* the one allocation */
} transformer_work;

/* Describes the encoder for spec and cfg and registers its 15 tensors in
 * layout, in this order: tf_item tf_item_bias tf_pos tf_kind, then the blocks'
 * stacked tensors tf_ln1 tf_qkv_W tf_qkv_b tf_attn_W tf_attn_b tf_ln2 tf_fc_W
 * tf_fc_b tf_proj_W tf_proj_b, then tf_lnf. DS_EINPUT if a hyperparameter is
 * out of range (context 1..64, layers 1..8, heads >= 1 dividing width, width
 * >= 1, mlp_ratio 1..16), the spec has no items, topics, steps or item topics,
 * an item's topic is out of range, or the layout refuses a tensor. */
int transformer_init(transformer *tf, const env_spec *spec, const transformer_config *cfg,
                     nn_layout *layout, char *err);

/* GPT-2's initialisation into the slab w: N(0, 0.02^2) for the item, position
 * and kind embeddings and every weight matrix, the two residual projections
 * (tf_attn_W, tf_proj_W) scaled by 1 / sqrt(2 L); biases and item_bias 0;
 * layer-norm gamma 1, beta 0. Draws from r in the order tf_item tf_pos tf_kind
 * tf_qkv_W tf_attn_W tf_fc_W tf_proj_W: reproducible for a seed. */
void transformer_init_weights(const transformer *tf, double *w, gsl_rng *r);

/* One allocation for every buffer; DS_ENOMEM. transformer_work_free of a
 * zeroed or freed workspace (or NULL) is a no-op. */
int transformer_work_alloc(transformer_work *work, const transformer *tf, char *err);
void transformer_work_free(transformer_work *work);

/* The tokens of obs's history into input (see the top of this file). DS_EINPUT
 * if history_len < 0 or a used entry has an unknown kind or a clicked or bought
 * item out of range. O(H). */
int transformer_tokens(const transformer *tf, const observation *obs,
                       transformer_input *input, char *err);

/* The forward pass of input (trusted: built by transformer_tokens or checked
 * as it is) with the parameters w: every activation into work, the final
 * hidden states in work->hidden [T][C]; clears work->dhidden. No allocation. */
void transformer_forward(const transformer *tf, const double *w,
                         const transformer_input *input, transformer_work *work);

/* The state vector x [n_features] of obs (layout at the top of this file), with
 * the items shown earlier in this session, session_items [n_session_items] (may
 * be NULL when 0): tokens into input (NULL: not kept), forward into work.
 * DS_EINPUT as transformer_tokens, or for a session item out of range or a NaN
 * since_last_visit. No allocation. */
int transformer_features(const transformer *tf, const double *w, const observation *obs,
                         const int *session_items, int n_session_items, double *x,
                         transformer_input *input, transformer_work *work, char *err);

/* transformer_features without the forward: the tokens of obs into input (not
 * NULL) and the parameter-free groups of x; x[at_state .. at_state + C) is left
 * as it is (for a serving path with its own forward, agents/quant.h). DS_EINPUT
 * as transformer_features. */
int transformer_context_features(const transformer *tf, const observation *obs,
                                 const int *session_items, int n_session_items, double *x,
                                 transformer_input *input, char *err);

/* For a stored step whose parameters have moved (a later PPO epoch): the
 * forward of its input with the current w, and x[0, C) = the new state; the
 * parameter-free groups of x are left as they are. */
void transformer_refresh(const transformer *tf, const double *w,
                         const transformer_input *input, transformer_work *work, double *x);

/* work->dhidden[T-1] += dx[at_state .. at_state + C): the gradient of a loss of
 * the state vector (e.g. policy_backward's dx) handed to transformer_backward.
 * The other groups of dx have no parameters behind them. */
void transformer_state_grad(const transformer *tf, const double *dx, transformer_work *work);

/* grad [the encoder's tensors] += the gradient of the loss whose dL/dhidden
 * the heads added into work->dhidden, through the last forward (same w and
 * input). No allocation. */
void transformer_backward(const transformer *tf, const double *w, double *grad,
                          const transformer_input *input, transformer_work *work);

/* ---- next-click prediction ---- */

/* targets [T]: targets[t] = the item of the first TF_KIND_CLICK token after t,
 * or next_click (the click that followed the window; -1 if none or unknown)
 * when no click follows t inside the window. Purchases and shown tokens are
 * passed over: the target is the next item the user clicks. */
void transformer_next_click_targets(const transformer_input *input, int next_click,
                                    int *targets);

/* After transformer_forward: the summed cross-entropy over the positions t
 * with targets[t] >= 0 (targets trusted, in [-1, N)) of
 *   logits_t = item_emb hidden[t] + item_bias   [N] (the whole catalogue),
 * i.e. sum_t logsumexp(logits_t) - logits_t[targets[t]], and the number of
 * such positions in *n_targets (may be NULL). With grad not NULL, adds
 * scale * dL/d(item_emb, item_bias) to grad and scale * dL/dhidden to
 * work->dhidden (so a minibatch mean is scale = 1 / its total target count);
 * then call transformer_backward. All T positions are scored in one product,
 * O(T N C). */
double transformer_next_click_loss(const transformer *tf, const double *w, double *grad,
                                   const int *targets, double scale, transformer_work *work,
                                   int *n_targets);

#endif
