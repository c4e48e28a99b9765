/* Compressed serving: int8 snapshots of a learning agent's networks for acting.
 *
 * Weights. A [rows][cols] double matrix W becomes, row by row (per-row
 * symmetric quantization),
 *   scale_r = max_c |W[r][c]| / 127,   q[r][c] = round(W[r][c] / scale_r),
 * q in [-127, 127] (never -128), so that W[r][c] = scale_r q[r][c] + e with
 * |e| <= scale_r / 2 (the quotient is formed as W 127 / max, which can differ
 * from W / scale_r by an ulp; ties round to even). An all-zero row has scale 0
 * and q 0.
 *
 * Activations. An input vector x [n] is quantized afresh at every use with one
 * scale for the whole vector (dynamic per-vector symmetric quantization), the
 * same rule: s_x = max |x| / 127, xq = round(x / s_x).
 *
 * Products. out[r] = scale_r s_x (q[r] . xq) + b[r]: the dot product is exact
 * integer arithmetic (int8 x int8 products summed in int32; no overflow for
 * cols <= QUANT_MAX_COLS), so it is the same on every CPU whichever kernel runs
 * (AVX2 where the CPU has it, plain C elsewhere); the scales are applied once per
 * row, in double. Everything else stays in double: biases, layer norms, tanh,
 * GELU, attention scores and softmax. (The policy's tanh is computed from
 * sim/vecmath.h's vector exponential, within a few 1e-16 of the C library's.)
 *
 * Error of one product (with W = Wq + E, x = xq_d + f, Wq and xq_d the
 * dequantized values, |E| <= scale_r / 2, |f| <= s_x / 2 per element):
 *   |W[r] . x - scale_r s_x (q[r] . xq)|
 *       <= (s_x / 2) sum_c |Wq[r][c]| + (scale_r / 2) sum_c |xq_d[c]|
 *          + cols scale_r s_x / 4,
 * about 1% of the row's scale of output for typical rows; errors then pass
 * through tanh (1-Lipschitz) and the following layers' weights.
 *
 * Two snapshots, built from the double parameters when serving starts:
 *   quant_policy       the policy trunk (pi_W1, pi_W2, pi_W3) and the item table
 *                      E_out quantized, biases (b_out included) in double: the
 *                      logits over the candidates from features x;
 *   quant_transformer  the transformer encoder's state (agents/transformer.h)
 *                      with item_emb and every block's Wqkv, Wo, W1, W2
 *                      quantized, or in double (QUANT_DOUBLE): the same
 *                      "last position only" forward on the double weights, so
 *                      the two precisions can be compared on one code path.
 * The state vector needs only the last position's hidden state, so the last
 * layer computes the keys and values of every position but the query,
 * attention output, MLP and final layer norm of the last position only (the
 * earlier layers still need every position). At the defaults this is about 40%
 * fewer FLOPs than transformer_forward.
 *
 * A snapshot owns its quantized tensors, copies of the double tensors it needs
 * (QUANT_INT8), and its scratch; it is not changed by later updates of w (build
 * it again to follow them). A QUANT_DOUBLE transformer snapshot borrows w, which
 * must outlive it. Acting allocates nothing.
 *
 * Use in an agent's act (the policy's candidates validated by
 * policy_candidates, as for policy_forward):
 *   quant_policy qp = {0};
 *   quant_policy_build(&qp, &net, w, err);                 at the eval phase start
 *   quant_policy_logits(&qp, x, ids, n, logits);           per act, for policy_forward
 *   quant_policy_free(&qp);                                at destroy (or rebuild) */
#ifndef DIVSIM_QUANT_H
#define DIVSIM_QUANT_H

#include "../sim/slate.h"
#include "policy.h"
#include "transformer.h"

#include <stddef.h>
#include <stdint.h>

/* Rows are stored padded with zeros to a multiple of QUANT_PAD columns. */
#define QUANT_PAD 16
#define QUANT_BLOCK 8
/* 127 * 127 * QUANT_MAX_COLS < 2^31: the int32 sums cannot overflow. */
#define QUANT_MAX_COLS 131072

typedef enum { QUANT_DOUBLE = 0, QUANT_INT8 = 1 } quant_mode;

/* ---- kernels ---- */

typedef struct {
    int rows, cols;
    int stride;    /* cols rounded up to a multiple of QUANT_PAD */
    int8_t *q;     /* [rows][stride], zero beyond cols; in [-127, 127] */
    double *scale; /* [rows] max |W[r]| / 127 */
    /* the same values for a matrix-vector product over whole blocks of
     * QUANT_BLOCK rows, interleaved: [rows / QUANT_BLOCK][stride / 4][QUANT_BLOCK][4]
     * (each 32 bytes hold 4 columns of 8 rows: one vector register). With it a
     * matrix takes 2 bytes per weight, a quarter of the double's. */
    int8_t *packed;
} quant_matrix;

/* Quantizes W [rows][cols] per row into m (one allocation). DS_EINPUT if a size
 * is < 1, cols > QUANT_MAX_COLS or W holds a NaN or an infinity; DS_ENOMEM.
 * quant_matrix_free of a zeroed or freed matrix (or NULL) is a no-op. */
int quant_matrix_build(quant_matrix *m, const double *W, int rows, int cols, char *err);
void quant_matrix_free(quant_matrix *m);

/* Row r dequantized: out[c] = scale_r q[r][c], c < cols. */
void quant_matrix_row(const quant_matrix *m, int r, double *out);

/* Quantizes x [n] (finite) into xq [stride] (n <= stride; zeros beyond n) and
 * returns its scale s_x = max |x| / 127 (0 when x is all zero). */
double quant_vector(int8_t *xq, const double *x, int n, int stride);

/* The exact integer products out[j] = q[row_j] . xq for j < n, with row_j =
 * rows[j], or first + j when rows is NULL; xq [m->stride]. */
void quant_dot_rows(int32_t *out, const quant_matrix *m, const int *rows, int first, int n,
                    const int8_t *xq);

/* out[j] = scale_{row_j} x_scale (q[row_j] . xq) + bias[row_j] (bias may be
 * NULL), rows as quant_dot_rows. */
void quant_matvec(double *out, const quant_matrix *m, const int *rows, int first, int n,
                  const int8_t *xq, double x_scale, const double *bias);

/* ---- the policy ---- */

typedef struct {
    int n_items, n_features, hidden, embed_dim;
    quant_matrix W1, W2, W3, E; /* pi_W1 [H][F], pi_W2 [H][H], pi_W3 [d][H], E_out [N][d] */
    const double *b1, *b2, *b3; /* [H], [H], [d] copies of pi_b1, pi_b2, pi_b3 */
    const double *b_out;        /* [N] copy */
    double *a1, *a2, *h;        /* [H], [H], [d] activations of the last forward */
    int8_t *xq;                 /* [the widest stride] the quantized layer input */
    double *slab;               /* the doubles' one allocation */
} quant_policy;

/* Snapshot of the policy trunk and item table of net in the slab w (the value
 * trunk is not served). qp must be zeroed or freed. DS_ENOMEM, or DS_EINPUT for
 * a weight that is not finite. */
int quant_policy_build(quant_policy *qp, const policy_net *net, const double *w, char *err);
void quant_policy_free(quant_policy *qp);

/* policy_forward's logits in int8: a1 = tanh(W1 x + b1), a2 = tanh(W2 a1 + b2),
 * h = W3 a2 + b3, logits[j] = E[c_j] . h + b_out[c_j] for the candidates cand [n]
 * (NULL: the identity catalogue, n = N), x [n_features] finite. No allocation. */
void quant_policy_logits(quant_policy *qp, const double *x, const int *cand, int n,
                         double *logits);

/* ---- the transformer state ---- */

/* One dense layer of a block: out = W in + b, W [rows][cols]. */
typedef struct {
    int rows, cols;
    const double *W; /* QUANT_DOUBLE: [rows][cols] */
    quant_matrix q;  /* QUANT_INT8 */
    const double *b; /* [rows] */
} quant_dense;

typedef struct {
    const double *ln1, *ln2;          /* [2][C] gamma, beta */
    quant_dense qkv, o, fc, proj;     /* [3C][C], [C][C], [M][C], [C][M] */
} quant_block;

typedef struct {
    const transformer *tf;            /* borrowed: sizes, offsets, item topics */
    quant_mode mode;
    quant_matrix item;                /* QUANT_INT8: item_emb [N][C] */
    const double *item_emb;           /* QUANT_DOUBLE: [N][C] */
    const double *pos, *kind, *lnf;   /* [T_max][C], [TF_N_KINDS][C], [2][C] */
    quant_block blocks[TRANSFORMER_MAX_LAYERS];
    double *params;                   /* QUANT_INT8: the copied double tensors */
    /* scratch for T_max tokens */
    double *x;                        /* [T_max][C] the residual stream */
    double *ln, *mean, *rstd;         /* [T_max][C], [T_max], [T_max] */
    double *qkv;                      /* [T_max][3C] */
    double *y, *att;                  /* [C] one query's attention output, [NH][T_max] */
    double *fc, *out;                 /* [M], [C] */
    int8_t *xq;                       /* [the widest stride] */
    double *slab;
} quant_transformer;

/* Snapshot of the encoder tf (borrowed; must outlive the snapshot) with the
 * parameters w, in mode: QUANT_INT8 quantizes (w may then change or go),
 * QUANT_DOUBLE borrows w. qt must be zeroed or freed. DS_ENOMEM, DS_EINPUT for
 * a weight that is not finite. */
int quant_transformer_build(quant_transformer *qt, const transformer *tf, const double *w,
                            quant_mode mode, char *err);
void quant_transformer_free(quant_transformer *qt);

/* The state of input (trusted, as for transformer_forward): x[at_state ..
 * at_state + C) = the last position's final hidden state; the other groups of x
 * are left as they are. No allocation. */
void quant_transformer_state(quant_transformer *qt, const transformer_input *input,
                             double *x);

/* transformer_features with the snapshot: tokens into input (NULL: not kept),
 * the parameter-free groups and the state into x [n_features]. DS_EINPUT as
 * transformer_features. No allocation. */
int quant_transformer_features(quant_transformer *qt, const observation *obs,
                               const int *session_items, int n_session_items, double *x,
                               transformer_input *input, char *err);

#endif
