/* Small, exact neural-network building blocks for the learning agents, in double
 * precision. Layers are plain functions: outputs and gradients first, sizes last.
 * Forward functions write their outputs; backward functions ACCUMULATE (+=) into
 * gradient buffers, so callers zero gradients once per update (nn_params_zero_grad)
 * and may run several backward passes into the same slab. Nothing here allocates
 * except nn_params_alloc; callers own every workspace. Matrices are row-major.
 *
 * All parameters of a model live in one slab (nn_params.w), described by an
 * nn_layout of named tensors; the gradients, and Adam's two moments, are slabs of
 * the same shape, so a tensor at offset o is w + o, its gradient grad + o.
 *
 * Logits must be finite. Item ids, slate positions and sizes are trusted (the
 * callers validate what comes from outside; see nn_pl_check). */
#ifndef DIVSIM_NN_H
#define DIVSIM_NN_H

#include <gsl/gsl_rng.h>
#include <stddef.h>

/* ---- parameter slabs ---- */

#define NN_MAX_TENSORS 64
#define NN_NAME_LEN 32

typedef struct {
    char name[NN_NAME_LEN];
    size_t offset; /* into the slab, in doubles */
    int rows, cols;
} nn_tensor;

/* Named [rows][cols] tensors laid end to end. Zero-initialise, or nn_layout_init. */
typedef struct {
    nn_tensor tensors[NN_MAX_TENSORS];
    int n_tensors;
    size_t size; /* total doubles */
} nn_layout;

void nn_layout_init(nn_layout *l);

/* Appends a [rows][cols] tensor and writes its offset to *offset. DS_EINPUT if a
 * dimension is < 1, the name is empty, too long or taken, or the layout is full. */
int nn_layout_add(nn_layout *l, const char *name, int rows, int cols, size_t *offset,
                  char *err);

/* The tensor called name, or NULL. */
const nn_tensor *nn_layout_find(const nn_layout *l, const char *name);

/* The four slabs of a model, each [n]. One allocation: free with nn_params_free. */
typedef struct {
    double *w;    /* [n] parameters */
    double *grad; /* [n] gradients, accumulated by backward passes */
    double *m;    /* [n] Adam first moment */
    double *v;    /* [n] Adam second moment */
    size_t n;
    long step;    /* Adam steps taken, for bias correction */
} nn_params;

/* Allocates the slabs for n >= 1 parameters, all zero. DS_EINPUT, DS_ENOMEM. */
int nn_params_alloc(nn_params *p, size_t n, char *err);
/* Frees the slabs and zeroes *p; a zeroed or freed nn_params is a no-op. */
void nn_params_free(nn_params *p);
void nn_params_zero_grad(nn_params *p);

/* ---- initialisers (draw in storage order from r: reproducible for a seed) ---- */

/* w[n] ~ U(-a, a). */
void nn_init_uniform(double *w, gsl_rng *r, double a, size_t n);
/* w[n] ~ N(0, sd^2). */
void nn_init_normal(double *w, gsl_rng *r, double sd, size_t n);
/* Xavier/Glorot for a [rows][cols] weight (fan_out = rows, fan_in = cols):
 * U(-a, a), a = sqrt(6 / (rows + cols)). */
void nn_init_xavier(double *w, gsl_rng *r, int rows, int cols);
/* He/Kaiming for a [rows][cols] weight feeding a relu: N(0, 2 / cols). */
void nn_init_he(double *w, gsl_rng *r, int rows, int cols);
/* gain times a Haar-random orthogonal [rows][cols] matrix (orthonormal rows if
 * rows <= cols, else orthonormal columns): Gram-Schmidt, in place, of N(0, 1)
 * draws. The usual PPO initialisation (gain sqrt(2) hidden, 0.01 policy head). */
void nn_init_orthogonal(double *w, gsl_rng *r, double gain, int rows, int cols);

/* ---- dense layer ---- */

/* out[B][O] = in[B][I] W[O][I]^T + b[O]; b may be NULL (no bias). */
void nn_dense_forward(double *out, const double *in, const double *W, const double *b,
                      int B, int I, int O);
/* dW[O][I] += dout^T in, db[O] += sum_b dout[b], din[B][I] += dout W.
 * Any of din, dW, db may be NULL (not wanted). */
void nn_dense_backward(double *din, double *dW, double *db, const double *dout,
                       const double *in, const double *W, int B, int I, int O);

/* ---- activations (elementwise over n). Forward may run in place (out == in);
 * backward must not (din == dout would add dout to itself). ---- */

/* tanh within a few 1e-16 (absolute) of the C library's, through the vector
 * exponential (see nn.c); the same bits on every CPU. */
void nn_tanh_forward(double *out, const double *in, int n);
/* din[n] += dout * (1 - out^2), from the forward OUTPUT out. */
void nn_tanh_backward(double *din, const double *dout, const double *out, int n);
void nn_relu_forward(double *out, const double *in, int n);
/* din[n] += dout * [out > 0], from the forward OUTPUT (out > 0 iff in > 0). */
void nn_relu_backward(double *din, const double *dout, const double *out, int n);

/* ---- item scoring ---- */

/* logits[j] = E[c_j] . h + bias[c_j] for j < n, with E [N][d] the item embedding
 * matrix and bias [N] (may be NULL); c_j = cand[j], or c_j = j when cand is NULL
 * (then n = N and it is one dgemv). */
void nn_items_forward(double *logits, const double *E, const double *bias,
                      const double *h, const int *cand, int n, int d);
/* dE[c_j] += g[j] h, dbias[c_j] += g[j], dh[d] += sum_j g[j] E[c_j], with g [n] the
 * gradient of the logits. Any of dE, dbias, dh may be NULL. Repeated ids add up. */
void nn_items_backward(double *dE, double *dbias, double *dh, const double *g,
                       const double *E, const double *h, const int *cand, int n, int d);

/* ---- softmax family ---- */

/* log sum_i exp(s_i), stably (the maximum is factored out). */
double nn_logsumexp(const double *s, int n);
/* out[n] = s - logsumexp(s); out may equal s. Returns logsumexp(s). */
double nn_log_softmax_forward(double *out, const double *s, int n);
/* ds[n] += g - p * sum_j g_j, p = exp(out), from the forward output out. */
void nn_log_softmax_backward(double *ds, const double *g, const double *out, int n);

/* Entropy of the softmax over the logits, H = -sum_i p_i log p_i. For a slate
 * policy this is the entropy of the FIRST position's distribution: the entropy of
 * the whole Plackett-Luce slate distribution has no tractable closed form
 * (n!/(n-k)! slates), and this is the standard surrogate for an entropy bonus. */
double nn_entropy(const double *s, int n);
/* ds[n] += g * dH/ds, with dH/ds_i = -p_i (log p_i + H). */
void nn_entropy_backward(double *ds, double g, const double *s, int n);

/* ---- Plackett-Luce slates ---- *
 * An ordered slate a_1..a_k of distinct positions into the logits s [n] is drawn
 * by picking a_1 from softmax(s), a_2 from the softmax over the rest, and so on:
 *   log P(a) = sum_j [ s_{a_j} - log sum_{i not in {a_1..a_{j-1}}} exp(s_i) ]. */

/* DS_OK if slate [k] holds k distinct positions in [0, n) and 1 <= k <= n, else
 * DS_EINPUT. For slates that come from outside the agent's own sampler. */
int nn_pl_check(const int *slate, int n, int k);

/* Samples a slate [k] stage by stage, as Plackett-Luce defines it: position j is
 * drawn from the softmax over the items not yet taken, by inverting its running
 * sum against one uniform (blocks of NN_PL_BLOCK weights are summed first, so a
 * stage costs O(n / NN_PL_BLOCK + NN_PL_BLOCK) after one O(n) weighing). Draws
 * exactly k uniforms from r; work [nn_pl_sample_work(n)] is workspace.
 * DS_EINPUT unless 1 <= k <= n. */
#define NN_PL_BLOCK 64
size_t nn_pl_sample_work(int n);
int nn_pl_sample(int *slate, double *work, gsl_rng *r, const double *s, int n, int k);

/* log P(slate) as above, to a few ulps, also when the chosen items dominate (where
 * a running normaliser cancels catastrophically): one exp per item, then each
 * stage's normaliser by subtraction, summed afresh where that would lose more than a
 * bit. O(n) exps, O(n k) additions at worst. work [n] is workspace. The slate must
 * pass nn_pl_check. */
double nn_pl_logprob(double *work, const double *s, const int *slate, int n, int k);
/* ds[n] += g * d log P / ds, with d log P / ds_i = [i in slate]
 *   - sum_j [i not in {a_1..a_{j-1}}] p_j(i), p_j the stage-j softmax over the
 * remaining items, with the same normalisers as nn_pl_logprob. work [n] is
 * workspace. O(n) exps, O(n k) additions at worst. */
void nn_pl_logprob_backward(double *ds, double *work, double g, const double *s,
                            const int *slate, int n, int k);

/* ---- the same, sharing one set of softmax weights ----
 * A policy step needs the entropy, the slate's log-probability, both gradients,
 * and when acting a sample: each of the functions above weighs the n logits
 * afresh (n exponentials). nn_softmax_weigh does it once, vectorised; the
 * functions below then give exactly what their counterparts above give. */

typedef struct {
    const double *s; /* [n] the logits (borrowed) */
    double *e;       /* [n] e_i = exp(s_i - m) to about an ulp (TwoSum on the difference) */
    double m;        /* the largest logit (NaN logits are passed over) */
    int top;         /* the first position that is not below m */
    int n;
    double z;        /* sum of e, summed as nn_pl_logprob sums its weights */
    double ent_rest, ent_wsum; /* sums of e without e[top], and of e_i (m - s_i) */
    int have_entropy;             /* the entropy's parts below are computed */
    double ent_z, ent_log_z, ent_h;
} nn_softmax;

/* Weighs logits s [n] (n >= 1) into e [n], summing them and the entropy's parts in
 * the same pass (vm_exp_fast_weigh); w borrows both. */
void nn_softmax_weigh(nn_softmax *w, double *e, const double *s, int n);
/* The same with the weights to single precision (vm_exp_single_weigh): for the
 * update's chunks, whose logits come from single-precision products. The
 * functions below then work on these weights as on the others. */
void nn_softmax_weigh_single(nn_softmax *w, double *e, const double *s, int n);
/* The entropy (computed once per weighing, then remembered) and its gradient. */
double nn_softmax_entropy(nn_softmax *w);
void nn_softmax_entropy_backward(double *ds, double g, nn_softmax *w);
double nn_softmax_pl_logprob(const nn_softmax *w, double *work, const int *slate, int k);
void nn_softmax_pl_logprob_backward(double *ds, double *work, double g, const nn_softmax *w,
                                    const int *slate, int k);
int nn_softmax_pl_sample(int *slate, double *work, gsl_rng *r, const nn_softmax *w, int k);

/* A learning step's head in two calls, for the update's minibatches: the slate's
 * log-probability, keeping what its gradient needs, then the whole gradient of
 * g_logp log P + g_entropy H written in one pass over the logits (rather than
 * zeroing, copying and settling in several).
 *
 * nn_softmax_pl_logprob_coefs gives what nn_softmax_pl_logprob gives, bit for bit,
 * and fills coef [NN_PL_COEFS(k)]: per position j, z_{j+1} / z_j - e_{a_j} c_j with
 * c_j the sum of 1 / z over the stages before j; then c_k; then 1 if a stage had to
 * reweigh (the backward then takes the general path). It runs the stages on w->e in
 * place and restores it; work [n] holds the taken weights meanwhile (and serves the
 * general path). */
#define NN_PL_COEFS(k) ((size_t)(k) + 2)
double nn_softmax_pl_logprob_coefs(nn_softmax *w, double *work, const int *slate, int k,
                                   double *coef);
/* ds[n] = g_logp d log P / ds + g_entropy dH / ds (written, not accumulated), equal to
 * zeroing ds then nn_softmax_pl_logprob_backward and nn_softmax_entropy_backward up to
 * rounding; coef from nn_softmax_pl_logprob_coefs of the same w and slate. ds may be
 * the logits w->s themselves (they are then overwritten). work [2 n] is workspace. */
void nn_softmax_head_backward(double *ds, double *work, double g_logp, double g_entropy,
                              nn_softmax *w, const int *slate, int k, const double *coef);

/* ---- losses (means over n; a value head is nn_dense_* with O = 1) ---- */

/* L = (1/n) sum_i (pred_i - target_i)^2. */
double nn_mse_forward(const double *pred, const double *target, int n);
/* dpred[n] += g * 2 (pred - target) / n. */
void nn_mse_backward(double *dpred, double g, const double *pred, const double *target,
                     int n);
/* L = (1/n) sum_i huber(pred_i - target_i), huber(r) = r^2 / 2 for |r| <= delta,
 * delta (|r| - delta / 2) beyond (delta > 0): quadratic near 0, linear in the tails. */
double nn_huber_forward(const double *pred, const double *target, double delta, int n);
/* dpred[n] += g * clamp(pred - target, -delta, delta) / n. */
void nn_huber_backward(double *dpred, double g, const double *pred, const double *target,
                       double delta, int n);

/* ---- optimisation ---- */

typedef struct {
    double beta1;        /* first-moment decay, e.g. 0.9 */
    double beta2;        /* second-moment decay, e.g. 0.999 */
    double eps;          /* added to sqrt(v_hat), e.g. 1e-8 (CleanRL PPO: 1e-5) */
    double weight_decay; /* decoupled (AdamW) decay per unit learning rate; 0 = Adam */
} nn_adam_config;

/* One Adam step over the whole slab with learning rate lr (Kingma & Ba 2015;
 * decoupled decay of Loshchilov & Hutter 2019). With t = ++p->step, per element:
 *   m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2,
 *   w -= lr * ( (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) + weight_decay * w ).
 * Weight decay applies to every parameter in the slab. Does not zero grad. */
void nn_adam_step(nn_params *p, const nn_adam_config *cfg, double lr);

/* nn_adam_step on the gradient times gscale (a clip folded in; grad is left as
 * it is), the bias corrections applied as vm_adam_scaled applies them (equal to
 * nn_adam_step's up to rounding), in one pass that also checks the result: returns
 * 1 if every parameter is finite after the step, else 0 (as nn_all_finite). */
int nn_adam_step_scaled(nn_params *p, const nn_adam_config *cfg, double lr, double gscale);

/* The factor nn_clip_grad_norm scales a gradient of global norm norm by:
 * max_norm / norm if norm is finite and above max_norm > 0, else 1. */
double nn_clip_scale(double norm, double max_norm);

/* sqrt(sum grad^2) over the whole slab; NaN or Inf if any gradient is. */
double nn_grad_norm(const nn_params *p);
/* Returns the pre-clip global norm; if it is finite and above max_norm > 0, scales
 * every gradient by max_norm / norm, so the new norm is max_norm. */
double nn_clip_grad_norm(nn_params *p, double max_norm);

/* 1 if every x[n] is finite, 0 if any is NaN or Inf (divergence detection). */
int nn_all_finite(const double *x, size_t n);

#endif
