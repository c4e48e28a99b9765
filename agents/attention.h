/* The pieces of a pre-LN transformer block, in double precision, as plain
 * functions over the activations of ONE sequence of T tokens of width C, each a
 * row-major [T][C] array (llm.c's layers with the batch dimension taken out: a
 * caller with many sequences loops over them). Outputs and gradients first,
 * sizes last. Forward functions write their outputs; backward functions
 * ACCUMULATE (+=) into every gradient they are given (input and parameter
 * gradients alike), as in nn.h. Nothing here allocates: the caller owns the
 * activations and the scratch, carved from its own slab with the *_size and
 * *_bind helpers below.
 *
 *   layer norm    out = (x - mean(x)) / sqrt(var(x) + eps) * gamma + beta, per row
 *   attention     causal multi-head self-attention with Q, K, V and O projections
 *   MLP           out = gelu(x W1^T + b1) W2^T + b2, hidden width M
 *   block         x1 = x + attention(ln1(x)),  out = x1 + mlp(ln2(x1))   (pre-LN)
 *
 * The MLP uses the exact GELU, x Phi(x) with Phi the standard normal CDF (erf),
 * not relu: it is what GPT-2 and BERT4Rec use, and, being smooth, it lets every
 * finite-difference gradient check run at a fixed step without dodging kinks
 * (with T * M pre-activations per block, some relu input would sit within the
 * step of 0 for most random draws). The erf form rather than GPT-2's tanh
 * approximation: it costs nothing measurable at these sizes and is exact.
 *
 * A block's parameters live in the caller's parameter slab w at the offsets of
 * an attn_block (its gradients at the same offsets in the gradient slab), so a
 * model can store each kind of tensor for all its layers in one stacked tensor
 * (llm.c's [L][...] layout) and point one attn_block per layer into it. */
#ifndef DIVSIM_ATTENTION_H
#define DIVSIM_ATTENTION_H

#include <stddef.h>

/* Added to the variance in layer norm (GPT-2's value). */
#define ATTN_LN_EPS 1e-5

/* ---- layer norm ---- */

/* Per row t < T: mean[t], rstd[t] = 1 / sqrt(var + eps) (population variance)
 * and out[t][c] = (in[t][c] - mean[t]) rstd[t] gamma[c] + beta[c]. */
void attn_layernorm_forward(double *out, double *mean, double *rstd, const double *in,
                            const double *gamma, const double *beta, int T, int C);
/* din [T][C] += dL/din, dgamma [C] += sum_t dout norm, dbeta [C] += sum_t dout,
 * from the forward's in, mean and rstd. din, dgamma, dbeta may each be NULL. */
void attn_layernorm_backward(double *din, double *dgamma, double *dbeta, const double *dout,
                             const double *in, const double *gamma, const double *mean,
                             const double *rstd, int T, int C);

/* ---- causal scaled dot-product attention (no projections) ---- *
 * qkv [T][3C] holds per token q, k, v, each [C] split into NH heads of width
 * hs = C / NH (C a multiple of NH). For head h and t2 <= t:
 *   att[h][t][t2] = softmax_{t2 <= t}(q_t . k_t2 / sqrt(hs)),
 *   y[t][h hs + i] = sum_{t2 <= t} att[h][t][t2] v_t2[h hs + i];
 * att[h][t][t2] = 0 for t2 > t (the causal mask: token t sees only t2 <= t). */
void attn_causal_forward(double *y, double *att, const double *qkv, int T, int C, int NH);
/* The same for one query t: y [C] = its output row, and head h's weights
 * att[t2], t2 <= t, at att + h head_stride (e.g. row t of the [NH][T][T]
 * array with head_stride T T, or [NH][t + 1] scratch). */
void attn_causal_query(double *y, double *att, size_t head_stride, const double *qkv, int t,
                       int C, int NH);
/* dqkv [T][3C] += dL/dqkv given dy [T][C], from the forward's att and qkv.
 * row [T] is scratch. */
void attn_causal_backward(double *dqkv, double *row, const double *dy, const double *att,
                          const double *qkv, int T, int C, int NH);

/* ---- multi-head self-attention with projections ---- *
 *   qkv = in Wqkv^T + bqkv  [T][3C]   (Wqkv [3C][C]: rows Q, then K, then V)
 *   y   = attention(qkv)    [T][C]
 *   out = y Wo^T + bo       [T][C]    (Wo [C][C]) */
void attn_mha_forward(double *out, double *qkv, double *att, double *y, const double *in,
                      const double *Wqkv, const double *bqkv, const double *Wo,
                      const double *bo, int T, int C, int NH);
/* din [T][C] and the four parameter gradients += (any may be NULL), given dout
 * [T][C] and the forward's qkv, att, y, in. Scratch: dy [T][C], dqkv [T][3C],
 * row [T]. */
void attn_mha_backward(double *din, double *dWqkv, double *dbqkv, double *dWo, double *dbo,
                       double *dy, double *dqkv, double *row, const double *dout,
                       const double *qkv, const double *att, const double *y,
                       const double *in, const double *Wqkv, const double *Wo, int T,
                       int C, int NH);

/* ---- GELU and the position-wise MLP ---- */

/* out[n] = in Phi(in) = in (1 + erf(in / sqrt 2)) / 2; out may equal in. */
void attn_gelu_forward(double *out, const double *in, int n);
/* din[n] += dout (Phi(in) + in phi(in)), from the forward's INPUT. */
void attn_gelu_backward(double *din, const double *dout, const double *in, int n);

/* fc = in W1^T + b1 [T][M], act = gelu(fc) [T][M], out = act W2^T + b2 [T][C];
 * W1 [M][C], W2 [C][M]. */
void attn_mlp_forward(double *out, double *fc, double *act, const double *in,
                      const double *W1, const double *b1, const double *W2, const double *b2,
                      int T, int C, int M);
/* din [T][C] and the parameter gradients += (any may be NULL), given dout [T][C]
 * and the forward's fc, act, in. Scratch: dact [T][M], dfc [T][M]. */
void attn_mlp_backward(double *din, double *dW1, double *db1, double *dW2, double *db2,
                       double *dact, double *dfc, const double *dout, const double *fc,
                       const double *act, const double *in, const double *W1,
                       const double *W2, int T, int C, int M);

/* ---- the pre-LN block ---- */

/* Where one block's tensors sit in a parameter slab (and, at the same offsets,
 * in its gradient slab), with the block's sizes. Layer norms store gamma [C]
 * then beta [C] contiguously. */
typedef struct {
    int C;             /* width */
    int NH;            /* heads; C % NH == 0 */
    int M;             /* MLP hidden width */
    size_t ln1;        /* [2][C] gamma, beta */
    size_t Wqkv, bqkv; /* [3C][C], [3C] */
    size_t Wo, bo;     /* [C][C], [C] */
    size_t ln2;        /* [2][C] */
    size_t W1, b1;     /* [M][C], [M] */
    size_t W2, b2;     /* [C][M], [C] */
} attn_block;

/* The activations of one block's forward for up to T_max tokens; the arrays
 * are compact for the T of the last forward. */
typedef struct {
    double *ln1, *ln1_mean, *ln1_rstd; /* [T][C], [T], [T] */
    double *qkv;                       /* [T][3C] */
    double *att;                       /* [NH][T][T] */
    double *y;                         /* [T][C] attention before the O projection */
    double *attn;                      /* [T][C] attention output */
    double *x1;                        /* [T][C] residual stream after attention */
    double *ln2, *ln2_mean, *ln2_rstd; /* [T][C], [T], [T] */
    double *fc, *fc_act;               /* [T][M] MLP pre-activation, gelu of it */
    double *mlp;                       /* [T][C] MLP output */
    double *out;                       /* [T][C] block output */
} attn_block_acts;

/* Backward scratch of one block, shared by all blocks of a model. */
typedef struct {
    double *dx1;        /* [T][C] gradient of the residual after attention */
    double *dln;        /* [T][C] gradient of a layer norm's output */
    double *dy;         /* [T][C] */
    double *dqkv;       /* [T][3C] */
    double *dact, *dfc; /* [T][M] */
    double *row;        /* [T] */
} attn_block_scratch;

/* Doubles needed by attn_block_acts / attn_block_scratch for T_max tokens. */
size_t attn_block_acts_size(const attn_block *b, int T_max);
size_t attn_block_scratch_size(const attn_block *b, int T_max);
/* Point the arrays into slab [attn_block_*_size] (caller-owned). */
void attn_block_acts_bind(attn_block_acts *a, double *slab, const attn_block *b, int T_max);
void attn_block_scratch_bind(attn_block_scratch *s, double *slab, const attn_block *b,
                             int T_max);

/* The block on in [T][C] with the parameters in w: every activation into acts,
 * the output in acts->out. T <= the T_max acts was bound for. */
void attn_block_forward(const attn_block *b, const double *w, const double *in,
                        attn_block_acts *acts, int T);
/* Given dout [T][C] = dL/d(block output): din [T][C] += dL/din (din must not
 * alias dout) and grad[the block's tensors] += their gradients, from the
 * forward's in and acts. */
void attn_block_backward(const attn_block *b, const double *w, double *grad, double *din,
                         const double *dout, const double *in, const attn_block_acts *acts,
                         attn_block_scratch *scratch, int T);

#endif
