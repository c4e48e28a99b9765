/* The int8 serving snapshots of quant.h. The integer dot products run in an
 * AVX2 kernel where the CPU has it (picked at run time, as sim/vecmath.c does
 * under GCC) and in plain C elsewhere; integer sums are exact in any order, so
 * both give the same bits. */
#include "quant.h"

#include "../sim/common.h"
#include "../sim/vecmath.h"
#include "attention.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(DIVSIM_NO_AVX2)
#include <immintrin.h>
#define QUANT_DISPATCH 1
#endif

/* ---- kernels ---- */

static int round_up(int n, int to) { return (n + to - 1) / to * to; }

double quant_vector(int8_t *xq, const double *x, int n, int stride)
{
    double top = 0.0;
    for (int i = 0; i < n; i++)
        top = fabs(x[i]) > top ? fabs(x[i]) : top;
    memset(xq, 0, (size_t)stride);
    if (top == 0.0)
        return 0.0;
    double scale = top / 127.0;
    for (int i = 0; i < n; i++) {
        double r = round(x[i] / scale); /* |x / scale| <= 127 up to a rounding */
        xq[i] = (int8_t)(r > 127.0 ? 127.0 : r < -127.0 ? -127.0 : r);
    }
    return scale;
}

int quant_matrix_build(quant_matrix *m, const double *W, int rows, int cols, char *err)
{
    memset(m, 0, sizeof *m);
    if (rows < 1 || cols < 1 || cols > QUANT_MAX_COLS)
        return err_set(err, DS_EINPUT, "cannot quantize a %d x %d matrix", rows, cols);
    if (!nn_all_finite(W, (size_t)rows * (size_t)cols))
        return err_set(err, DS_EINPUT, "cannot quantize a matrix that is not finite");
    int stride = round_up(cols, QUANT_PAD);
    size_t n_q = (size_t)rows * (size_t)stride;
    /* the scales first, so that they stay aligned for doubles */
    char *block = malloc((size_t)rows * sizeof(double) + n_q);
    if (!block)
        return err_set(err, DS_ENOMEM, "out of memory for a %d x %d int8 matrix", rows, cols);
    m->rows = rows;
    m->cols = cols;
    m->stride = stride;
    m->scale = (double *)(void *)block;
    m->q = (int8_t *)(block + (size_t)rows * sizeof(double));
    for (int r = 0; r < rows; r++)
        m->scale[r] = quant_vector(m->q + (size_t)r * stride, W + (size_t)r * cols, cols,
                                   stride);
    return DS_OK;
}

void quant_matrix_free(quant_matrix *m)
{
    if (!m)
        return;
    free(m->scale); /* the block starts at the scales */
    memset(m, 0, sizeof *m);
}

void quant_matrix_row(const quant_matrix *m, int r, double *out)
{
    const int8_t *q = m->q + (size_t)r * m->stride;
    for (int c = 0; c < m->cols; c++)
        out[c] = m->scale[r] * q[c];
}

/* One row in blocks of QUANT_PAD with a fixed trip count, which GCC
 * vectorises at -O2 for any target. */
static int32_t dot_row(const int8_t *q, const int8_t *x, int stride)
{
    int32_t sum = 0;
    for (int u = 0; u < stride; u += QUANT_PAD) {
        int32_t part = 0;
        for (int c = 0; c < QUANT_PAD; c++)
            part += (int32_t)q[u + c] * (int32_t)x[u + c];
        sum += part;
    }
    return sum;
}

#ifdef QUANT_DISPATCH
#pragma GCC diagnostic ignored "-Wpsabi"
#define QUANT_AVX2 __attribute__((target("avx2")))

/* Rows are read 16 bytes at a time, two rows per 32-byte register (row a in
 * the low half, row b in the high half, each against the same 16 bytes of x);
 * x q = maddubs(|x|, sign(q, x)) gives the 16-bit sums of adjacent products
 * (at most 2 * 127 * 127, no saturation), which madd with ones widens to int32.
 * Eight rows at a time, reduced with two rounds of horizontal adds. Returns how
 * many rows it did (a multiple of 8). */
static QUANT_AVX2 int dot_rows_avx2(int32_t *out, const int8_t *Q, int stride,
                                    const int *rows, int first, int n, const int8_t *x)
{
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        const int8_t *r[8];
        for (int k = 0; k < 8; k++)
            r[k] = Q + (size_t)(rows ? rows[j + k] : first + j + k) * (size_t)stride;
        __m256i acc[4];
        for (int p = 0; p < 4; p++)
            acc[p] = _mm256_setzero_si256();
        for (int u = 0; u < stride; u += 16) {
            __m256i xv = _mm256_broadcastsi128_si256(
                _mm_loadu_si128((const __m128i *)(const void *)(x + u)));
            __m256i xa = _mm256_abs_epi8(xv);
            for (int p = 0; p < 4; p++) {
                __m128i lo = _mm_loadu_si128((const __m128i *)(const void *)(r[2 * p] + u));
                __m128i hi = _mm_loadu_si128((const __m128i *)(const void *)(r[2 * p + 1] + u));
                __m256i wv = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
                __m256i pairs = _mm256_maddubs_epi16(xa, _mm256_sign_epi8(wv, xv));
                acc[p] = _mm256_add_epi32(acc[p], _mm256_madd_epi16(pairs, ones));
            }
        }
        /* acc[p]: row 2p's four partial sums in the low half, row 2p+1's in the
         * high half; after two hadds the halves hold rows 0 2 4 6 and 1 3 5 7 */
        __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(acc[0], acc[1]),
                                      _mm256_hadd_epi32(acc[2], acc[3]));
        _mm256_storeu_si256((__m256i *)(void *)(out + j), _mm256_permutevar8x32_epi32(h, order));
    }
    return j;
}
#define HAVE_AVX2() __builtin_cpu_supports("avx2")
#endif

void quant_dot_rows(int32_t *out, const quant_matrix *m, const int *rows, int first, int n,
                    const int8_t *xq)
{
    int j = 0;
#ifdef QUANT_DISPATCH
    if (HAVE_AVX2())
        j = dot_rows_avx2(out, m->q, m->stride, rows, first, n, xq);
#endif
    for (; j < n; j++) {
        size_t r = (size_t)(rows ? rows[j] : first + j);
        out[j] = dot_row(m->q + r * (size_t)m->stride, xq, m->stride);
    }
}

/* Rows per chunk of quant_matvec's integer buffer. */
#define QUANT_CHUNK 256

void quant_matvec(double *out, const quant_matrix *m, const int *rows, int first, int n,
                  const int8_t *xq, double x_scale, const double *bias)
{
    int32_t acc[QUANT_CHUNK];
    for (int j0 = 0; j0 < n; j0 += QUANT_CHUNK) {
        int len = n - j0 < QUANT_CHUNK ? n - j0 : QUANT_CHUNK;
        quant_dot_rows(acc, m, rows ? rows + j0 : NULL, first + j0, len, xq);
        for (int j = 0; j < len; j++) {
            int r = rows ? rows[j0 + j] : first + j0 + j;
            out[j0 + j] = m->scale[r] * x_scale * (double)acc[j] + (bias ? bias[r] : 0.0);
        }
    }
}

/* ---- the policy ---- */

/* A copy of n doubles of w at *p, which moves past them. */
static const double *take(double **p, const double *w, size_t n)
{
    double *copy = *p;
    memcpy(copy, w, n * sizeof *copy);
    *p += n;
    return copy;
}

static int widest(int a, int b) { return a > b ? a : b; }

int quant_policy_build(quant_policy *qp, const policy_net *net, const double *w, char *err)
{
    memset(qp, 0, sizeof *qp);
    int H = net->hidden, F = net->n_features, d = net->embed_dim, N = net->n_items;
    qp->n_items = N;
    qp->n_features = F;
    qp->hidden = H;
    qp->embed_dim = d;
    int rc = quant_matrix_build(&qp->W1, w + net->pi_W1, H, F, err);
    if (rc == DS_OK)
        rc = quant_matrix_build(&qp->W2, w + net->pi_W2, H, H, err);
    if (rc == DS_OK)
        rc = quant_matrix_build(&qp->W3, w + net->pi_W3, d, H, err);
    if (rc == DS_OK)
        rc = quant_matrix_build(&qp->E, w + net->E_out, N, d, err);
    size_t n_doubles = 4 * (size_t)H + 2 * (size_t)d + (size_t)N;
    size_t n_bytes = (size_t)widest(qp->W1.stride, widest(qp->W2.stride, qp->E.stride));
    if (rc == DS_OK && !(qp->slab = malloc(n_doubles * sizeof(double) + n_bytes)))
        rc = err_set(err, DS_ENOMEM, "out of memory for an int8 policy");
    if (rc != DS_OK) {
        quant_policy_free(qp);
        return rc;
    }
    double *p = qp->slab;
    qp->b1 = take(&p, w + net->pi_b1, (size_t)H);
    qp->b2 = take(&p, w + net->pi_b2, (size_t)H);
    qp->b3 = take(&p, w + net->pi_b3, (size_t)d);
    qp->b_out = take(&p, w + net->b_out, (size_t)N);
    qp->a1 = p, p += H;
    qp->a2 = p, p += H;
    qp->h = p, p += d;
    qp->xq = (int8_t *)p;
    return DS_OK;
}

void quant_policy_free(quant_policy *qp)
{
    if (!qp)
        return;
    quant_matrix_free(&qp->W1);
    quant_matrix_free(&qp->W2);
    quant_matrix_free(&qp->W3);
    quant_matrix_free(&qp->E);
    free(qp->slab);
    memset(qp, 0, sizeof *qp);
}

/* out = W in + b over all of W's rows, in quantized as xq (scratch). */
static void int8_layer(double *out, const quant_matrix *W, const double *b, const double *in,
                       int8_t *xq)
{
    double s = quant_vector(xq, in, W->cols, W->stride);
    quant_matvec(out, W, NULL, 0, W->rows, xq, s, b);
}

void quant_policy_logits(quant_policy *qp, const double *x, const int *cand, int n,
                         double *logits)
{
    int H = qp->hidden, d = qp->embed_dim;
    int8_layer(qp->a1, &qp->W1, qp->b1, x, qp->xq);
    nn_tanh_forward(qp->a1, qp->a1, H);
    int8_layer(qp->a2, &qp->W2, qp->b2, qp->a1, qp->xq);
    nn_tanh_forward(qp->a2, qp->a2, H);
    int8_layer(qp->h, &qp->W3, qp->b3, qp->a2, qp->xq);
    double s = quant_vector(qp->xq, qp->h, d, qp->E.stride);
    quant_matvec(logits, &qp->E, cand, 0, cand ? n : qp->n_items, qp->xq, s, qp->b_out);
}

/* ---- the transformer state ---- */

static int dense_build(quant_dense *L, const double *w, size_t W, const double *b, int rows,
                       int cols, quant_mode mode, char *err)
{
    L->rows = rows;
    L->cols = cols;
    L->b = b;
    if (mode == QUANT_DOUBLE) {
        L->W = w + W;
        return DS_OK;
    }
    return quant_matrix_build(&L->q, w + W, rows, cols, err);
}

/* out [n] = rows first .. first + n - 1 of L applied to in [cols]. */
static void dense_rows(const quant_transformer *qt, const quant_dense *L, int first, int n,
                       const double *in, double *out)
{
    if (qt->mode == QUANT_INT8) {
        double s = quant_vector(qt->xq, in, L->cols, L->q.stride);
        quant_matvec(out, &L->q, NULL, first, n, qt->xq, s, L->b);
        return;
    }
    vm_rows_dot(out, L->W + (size_t)first * (size_t)L->cols, in, n, L->cols);
    vm_add_array(out, L->b + first, n);
}

/* The double tensors: borrowed from w, or copied into *p (QUANT_INT8). */
static const double *tensor(const quant_transformer *qt, double **p, const double *w,
                            size_t offset, size_t n)
{
    return qt->mode == QUANT_INT8 ? take(p, w + offset, n) : w + offset;
}

static int blocks_build(quant_transformer *qt, const double *w, double **p, char *err)
{
    const transformer *tf = qt->tf;
    size_t C = (size_t)tf->C, M = (size_t)tf->M;
    int rc = DS_OK;
    for (int l = 0; l < tf->cfg.layers && rc == DS_OK; l++) {
        const attn_block *b = &tf->blocks[l];
        quant_block *q = &qt->blocks[l];
        q->ln1 = tensor(qt, p, w, b->ln1, 2 * C);
        q->ln2 = tensor(qt, p, w, b->ln2, 2 * C);
        const double *bqkv = tensor(qt, p, w, b->bqkv, 3 * C);
        const double *bo = tensor(qt, p, w, b->bo, C);
        const double *b1 = tensor(qt, p, w, b->b1, M);
        const double *b2 = tensor(qt, p, w, b->b2, C);
        rc = dense_build(&q->qkv, w, b->Wqkv, bqkv, 3 * tf->C, tf->C, qt->mode, err);
        if (rc == DS_OK)
            rc = dense_build(&q->o, w, b->Wo, bo, tf->C, tf->C, qt->mode, err);
        if (rc == DS_OK)
            rc = dense_build(&q->fc, w, b->W1, b1, tf->M, tf->C, qt->mode, err);
        if (rc == DS_OK)
            rc = dense_build(&q->proj, w, b->W2, b2, tf->C, tf->M, qt->mode, err);
    }
    return rc;
}

int quant_transformer_build(quant_transformer *qt, const transformer *tf, const double *w,
                            quant_mode mode, char *err)
{
    memset(qt, 0, sizeof *qt);
    qt->tf = tf;
    qt->mode = mode;
    size_t T = (size_t)tf->T_max, C = (size_t)tf->C, M = (size_t)tf->M;
    size_t L = (size_t)tf->cfg.layers;
    size_t copied = mode == QUANT_INT8
                        ? (T + TF_N_KINDS + 2) * C + L * (4 * C + 3 * C + C + M + C) : 0;
    size_t scratch = 2 * T * C + 2 * T + 3 * T * C + C + T + M + C;
    size_t n_bytes = (size_t)round_up(tf->M > tf->C ? tf->M : tf->C, QUANT_PAD);
    qt->slab = malloc((copied + scratch) * sizeof(double) + n_bytes);
    if (!qt->slab)
        return err_set(err, DS_ENOMEM, "out of memory for a transformer snapshot");
    double *p = qt->slab;
    qt->params = mode == QUANT_INT8 ? p : NULL;
    qt->pos = tensor(qt, &p, w, tf->pos_emb, T * C);
    qt->kind = tensor(qt, &p, w, tf->kind_emb, TF_N_KINDS * C);
    qt->lnf = tensor(qt, &p, w, tf->lnf, 2 * C);
    int rc = blocks_build(qt, w, &p, err);
    if (mode == QUANT_DOUBLE)
        qt->item_emb = w + tf->item_emb;
    else if (rc == DS_OK)
        rc = quant_matrix_build(&qt->item, w + tf->item_emb, tf->n_items, tf->C, err);
    if (rc != DS_OK) {
        quant_transformer_free(qt);
        return rc;
    }
    qt->x = p, p += T * C;
    qt->ln = p, p += T * C;
    qt->mean = p, p += T;
    qt->rstd = p, p += T;
    qt->qkv = p, p += 3 * T * C;
    qt->y = p, p += C;
    qt->att = p, p += T;
    qt->fc = p, p += M;
    qt->out = p, p += C;
    qt->xq = (int8_t *)p;
    return DS_OK;
}

void quant_transformer_free(quant_transformer *qt)
{
    if (!qt)
        return;
    for (int l = 0; l < TRANSFORMER_MAX_LAYERS; l++) {
        quant_matrix_free(&qt->blocks[l].qkv.q);
        quant_matrix_free(&qt->blocks[l].o.q);
        quant_matrix_free(&qt->blocks[l].fc.q);
        quant_matrix_free(&qt->blocks[l].proj.q);
    }
    quant_matrix_free(&qt->item);
    free(qt->slab);
    memset(qt, 0, sizeof *qt);
}

/* x [T][C]: item (dequantized in QUANT_INT8) + position + kind embeddings. */
static void embed(const quant_transformer *qt, const transformer_input *in, double *x)
{
    int C = qt->tf->C;
    for (int t = 0; t < in->n_tokens; t++) {
        double *row = x + (size_t)t * C;
        const double *pos = qt->pos + (size_t)t * C;
        const double *kind = qt->kind + (size_t)in->kind[t] * C;
        for (int c = 0; c < C; c++)
            row[c] = pos[c] + kind[c];
        int item = in->item[t];
        if (item < 0)
            continue;
        if (qt->mode == QUANT_INT8) {
            const int8_t *q = qt->item.q + (size_t)item * qt->item.stride;
            for (int c = 0; c < C; c++)
                row[c] += qt->item.scale[item] * q[c];
        } else {
            vm_add_array(row, qt->item_emb + (size_t)item * C, C);
        }
    }
}

/* The attention output y [C] of query t over positions 0..t (att [t + 1] is
 * scratch), with the arithmetic of attn_causal_forward. */
static void attend(double *y, double *att, const double *qkv, int t, int C, int NH)
{
    int hs = C / NH, C3 = 3 * C;
    double scale = 1.0 / sqrt((double)hs);
    for (int h = 0; h < NH; h++) {
        const double *q = qkv + (size_t)t * C3 + h * hs;
        double max = -INFINITY;
        for (int t2 = 0; t2 <= t; t2++) {
            const double *k = qkv + (size_t)t2 * C3 + C + h * hs;
            double s = 0.0;
            for (int i = 0; i < hs; i++)
                s += q[i] * k[i];
            att[t2] = s * scale;
            if (att[t2] > max)
                max = att[t2];
        }
        double sum = 0.0;
        for (int t2 = 0; t2 <= t; t2++) {
            att[t2] = exp(att[t2] - max);
            sum += att[t2];
        }
        for (int t2 = 0; t2 <= t; t2++)
            att[t2] /= sum;
        double *out = y + h * hs;
        memset(out, 0, (size_t)hs * sizeof *out);
        for (int t2 = 0; t2 <= t; t2++) {
            const double *v = qkv + (size_t)t2 * C3 + 2 * C + h * hs;
            for (int i = 0; i < hs; i++)
                out[i] += att[t2] * v[i];
        }
    }
}

/* The rest of the block for position t, once every position's qkv is known:
 * x[t] += attention output, then x[t] += MLP(ln2(x[t])). */
static void block_position(quant_transformer *qt, const quant_block *b, int t)
{
    int C = qt->tf->C, M = qt->tf->M;
    double *x = qt->x + (size_t)t * C, *ln = qt->ln + (size_t)t * C;
    attend(qt->y, qt->att, qt->qkv, t, C, qt->tf->cfg.heads);
    dense_rows(qt, &b->o, 0, C, qt->y, qt->out);
    vm_add_array(x, qt->out, C);
    attn_layernorm_forward(ln, qt->mean, qt->rstd, x, b->ln2, b->ln2 + C, 1, C);
    dense_rows(qt, &b->fc, 0, M, ln, qt->fc);
    attn_gelu_forward(qt->fc, qt->fc, M);
    dense_rows(qt, &b->proj, 0, C, qt->fc, qt->out);
    vm_add_array(x, qt->out, C);
}

void quant_transformer_state(quant_transformer *qt, const transformer_input *input,
                             double *x)
{
    const transformer *tf = qt->tf;
    int T = input->n_tokens, C = tf->C, L = tf->cfg.layers;
    embed(qt, input, qt->x);
    for (int l = 0; l < L; l++) {
        const quant_block *b = &qt->blocks[l];
        int last = l == L - 1;
        attn_layernorm_forward(qt->ln, qt->mean, qt->rstd, qt->x, b->ln1, b->ln1 + C, T, C);
        for (int t = 0; t < T; t++) {
            /* the last layer needs only the keys and values of earlier positions */
            int first = last && t < T - 1 ? C : 0;
            dense_rows(qt, &b->qkv, first, 3 * C - first, qt->ln + (size_t)t * C,
                       qt->qkv + (size_t)t * 3 * C + first);
        }
        for (int t = last ? T - 1 : 0; t < T; t++)
            block_position(qt, b, t);
    }
    attn_layernorm_forward(x + tf->at_state, qt->mean, qt->rstd, qt->x + (size_t)(T - 1) * C,
                           qt->lnf, qt->lnf + C, 1, C);
}

int quant_transformer_features(quant_transformer *qt, const observation *obs,
                               const int *session_items, int n_session_items, double *x,
                               transformer_input *input, char *err)
{
    transformer_input local;
    transformer_input *in = input ? input : &local;
    int rc = transformer_context_features(qt->tf, obs, session_items, n_session_items, x, in,
                                          err);
    if (rc == DS_OK)
        quant_transformer_state(qt, in, x);
    return rc;
}
