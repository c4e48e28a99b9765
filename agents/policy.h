/* The networks of the learning agents, on encoder features x [n_features]:
 *
 *   policy: a1 = tanh(pi_W1 x + pi_b1), a2 = tanh(pi_W2 a1 + pi_b2),
 *           h = pi_W3 a2 + pi_b3 [embed_dim],
 *           logit_j = E_out[c_j] . h + b_out[c_j] over the step's candidates c;
 *   value:  v1 = tanh(v_W1 x + v_b1), v2 = tanh(v_W2 v1 + v_b2), V = v_W3 v2 + v_b3,
 *
 * two separate trunks of width hidden (no shared layer, so the value loss never
 * moves the policy's features). Slates are Plackett-Luce over the logits
 * (nn_pl_sample, nn_pl_logprob), positions indexing the candidate list.
 *
 * A candidate set is an array of item ids, or NULL for the identity catalogue
 * 0..n_items-1 (scored with one dgemv). Tensors live in the agent's nn_layout
 * next to the encoder's E_in; the offsets below index its slabs (w, grad).
 *
 * Acting is policy_forward on a policy_work allocated once: no allocation,
 * O(hidden (n_features + hidden + embed_dim) + n_candidates embed_dim).
 * Learning recomputes the forward pass of a stored step, forms the gradient of
 * the loss with respect to its logits and value, and calls policy_backward, which
 * accumulates into the parameter gradients and into dx for encoder_backward. */
#ifndef DIVSIM_POLICY_H
#define DIVSIM_POLICY_H

#include "nn.h"

#include <gsl/gsl_rng.h>
#include <stddef.h>

typedef struct {
    int n_items;    /* N: the catalogue capacity of the env_spec */
    int n_features; /* F: the encoder's output */
    int hidden;     /* H */
    int embed_dim;  /* d */
    int with_value; /* 1 if the value trunk exists */
    /* offsets in the slab; shapes as [rows][cols] */
    size_t pi_W1, pi_b1; /* [H][F], [H] */
    size_t pi_W2, pi_b2; /* [H][H], [H] */
    size_t pi_W3, pi_b3; /* [d][H], [d] */
    size_t E_out, b_out; /* [N][d], [N] */
    size_t v_W1, v_b1;   /* [H][F], [H]  (only with_value) */
    size_t v_W2, v_b2;   /* [H][H], [H] */
    size_t v_W3, v_b3;   /* [1][H], [1] */
} policy_net;

/* Workspace of one forward and backward pass. After policy_forward, logits holds
 * the candidates' logits; it keeps the activations that policy_backward needs. */
typedef struct {
    double *a1, *a2;  /* [H] policy trunk activations */
    double *h;        /* [d] state embedding */
    double *logits;   /* [N] the first n_candidates are valid */
    double *v1, *v2;  /* [H] value trunk activations */
    double value;     /* V of the last forward, when the value trunk ran */
    int value_ready;  /* v1, v2, value belong to the last forward's x */
    double *dlogits;  /* [N] free for the caller's loss gradient */
    double *weights;  /* [N] free for the logits' softmax weights (nn_softmax_weigh) */
    double *work;     /* [nn_pl_sample_work(N)] free for nn_pl_sample / nn_pl_logprob */
    double *g1, *g2, *g3; /* [H] backward scratch */
    double *dh;       /* [d] backward scratch */
    float *h_single;  /* [d] h in single precision (policy_forward_single) */
} policy_work;

/* Describes the networks and registers their tensors in layout, in this order:
 * pi_W1 pi_b1 pi_W2 pi_b2 pi_W3 pi_b3 E_out b_out, then, with_value, v_W1 v_b1
 * v_W2 v_b2 v_W3 v_b3. DS_EINPUT if a size is < 1 or the layout refuses a tensor. */
int policy_init(policy_net *net, int n_items, int n_features, int hidden, int embed_dim,
                int with_value, nn_layout *layout, char *err);

/* CleanRL's initialisation, into the slab w: orthogonal weights with gain sqrt(2)
 * for the hidden layers, 0.01 for the policy head pi_W3 and 1 for the value head
 * v_W3; zero biases; E_out ~ N(0, 0.1^2), b_out = 0. Draws from r in the order
 * pi_W1 pi_W2 pi_W3 E_out v_W1 v_W2 v_W3: reproducible for a seed. */
void policy_init_weights(const policy_net *net, double *w, gsl_rng *r);

/* One allocation for every buffer; DS_ENOMEM. policy_work_free of a zeroed or
 * freed workspace (or NULL) is a no-op. */
int policy_work_alloc(policy_work *work, const policy_net *net, char *err);
void policy_work_free(policy_work *work);

/* Validates an observation's candidate set cand [n] (1 <= n <= N, ids in
 * [0, N)) and sets *ids to NULL when it is exactly the identity catalogue 0..N-1
 * (the fast path, and what a trajectory stores), else to cand. O(n). DS_EINPUT. */
int policy_candidates(const policy_net *net, const int *cand, int n, const int **ids,
                      char *err);

/* The forward pass for one state x [F] over the candidates cand [n] (NULL: the
 * identity catalogue, n = N): work->logits [n], and, when value is not NULL,
 * the value trunk: *value = V (NAN if the net has no value trunk). Does not
 * allocate. */
void policy_forward(const policy_net *net, const double *w, const double *x,
                    const int *cand, int n, policy_work *work, double *value);
/* The same over the identity catalogue with the item scores in single precision,
 * against E_single [N][d], a float copy of E_out (policy_batch_load_items):
 * logit_j = E_single[j] . h in floats (vm_rows_dot_single), + b_out[j] in
 * double. What the update's single-precision item head computes, for acting. */
void policy_forward_single(const policy_net *net, const double *w, const double *x,
                           const float *E_single, policy_work *work, double *value);

/* The backward pass of the last policy_forward on work (same w, x, cand, n):
 * with dlogits [n] the gradient of the loss w.r.t. the logits (NULL: none) and
 * dvalue its gradient w.r.t. V (ignored without a value trunk; if the forward
 * skipped the value trunk and dvalue != 0, it is run here), accumulates
 *   grad[policy tensors] += ..., grad[value tensors] += ..., dx [F] += dL/dx.
 * dx may be NULL. dlogits may be work->dlogits. Does not allocate. */
void policy_backward(const policy_net *net, const double *w, double *grad, const double *x,
                     const int *cand, int n, const double *dlogits, double dvalue,
                     double *dx, policy_work *work);

/* ---- a chunk of states at once (the update's minibatches) ----
 * The same networks over B states, each layer one matrix product (cblas_dgemm
 * through nn_dense_*) instead of B matrix-vector products. When every state's
 * candidates are the identity catalogue, the item head of all B states is one
 * product, logits = h E_out^T + b_out, and its backward two, dE_out += G^T h and
 * dh = G E_out. A batch allocated single runs these in single precision
 * (cblas_sgemm, about twice dgemm's rate), over a float copy of E_out
 * (policy_batch_load_items), accumulating into the double gradients: its logits
 * and gradients agree with policy_forward's and policy_backward's to single
 * precision. Otherwise, and with candidate lists, the results equal
 * policy_forward and policy_backward state by state up to the order of
 * summation. */
typedef struct {
    int cap;          /* rows */
    int n_items;      /* N */
    double *a1, *a2;  /* [cap][H] policy trunk activations */
    double *h;        /* [cap][d] state embeddings */
    double *v1, *v2;  /* [cap][H] value trunk activations */
    double *value;    /* [cap] V */
    double *logits;   /* [cap][N] row b: state b's candidates' logits, first n[b] valid;
                         the caller overwrites them with their gradients for the backward */
    double *dh;       /* [cap][d] backward scratch */
    double *g1, *g2;  /* [cap][H] backward scratch */
    /* single only (else NULL): */
    float *E_single;  /* [N][d] E_out in single precision */
    float *h_single;  /* [cap][d] */
    float *logits_single; /* [cap][N] */
    float *dE_single; /* [max(cap, min(N, 512))][d] backward scratch */
} policy_batch;

/* One allocation of doubles for cap >= 1 rows and, single, one of floats (as many
 * as policy_batch_singles gives for the net's N and d); DS_EINPUT, DS_ENOMEM.
 * policy_batch_free of a zeroed or freed batch (or NULL) is a no-op. */
int policy_batch_alloc(policy_batch *pb, const policy_net *net, int cap, int single,
                       char *err);
size_t policy_batch_singles(int n_items, int embed_dim, int cap);
void policy_batch_free(policy_batch *pb);
/* Single: copies E_out of w into pb->E_single, as the identity catalogues'
 * products need after every change of the weights. Otherwise a no-op. */
void policy_batch_load_items(policy_batch *pb, const policy_net *net, const double *w);

/* The forward pass of B <= cap states X [B][F], state b over the candidates cand[b]
 * [n[b]] (NULL: the identity catalogue, n[b] = N): pb->logits rows, and with
 * want_value and a value trunk, pb->value. Does not allocate. */
void policy_forward_batch(const policy_net *net, const double *w, const double *X, int B,
                          const int *const *cand, const int *n, int want_value,
                          policy_batch *pb);

/* The backward pass of the last policy_forward_batch (same w, X, B, cand, n), with
 * pb->logits rows replaced by the loss's gradients w.r.t. the logits and dvalue
 * [B] w.r.t. V (NULL: none; needs the forward's values): accumulates the parameter
 * gradients into grad and dX [B][F] += dL/dX. With bias_added, the caller has
 * passed every row, once its gradient was written, to policy_batch_row_done, and
 * b_out's gradient is not added again. Does not allocate. */
void policy_backward_batch(const policy_net *net, const double *w, double *grad,
                           const double *X, int B, const int *const *cand, const int *n,
                           const double *dvalue, int bias_added, double *dX,
                           policy_batch *pb);

/* Row b's gradient (pb->logits row b) of a chunk over the identity catalogue,
 * added into db_out [N] while the row is in cache, and in a single batch also
 * narrowed to the floats the backward's products take. */
void policy_batch_row_done(policy_batch *pb, int b, double *db_out);

/* The greedy slate: the positions of the k largest logits [n], in decreasing
 * order (ties to the lower position), into slate [k]. 1 <= k <= n. O(n k). */
void policy_top_k(int *slate, const double *logits, int n, int k);

#endif
