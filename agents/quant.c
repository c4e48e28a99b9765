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

/* 1.5 * 2^52: for |v| < 2^51, (v + ROUNDER) - ROUNDER is v rounded to the
 * nearest integer, ties to even (in the default rounding mode, which nothing
 * here changes), as the AVX2 kernel's rounding instruction does. */
#define ROUNDER 6755399441055744.0

/* q = round(x inv) clamped to [-127, 127], for i in [from, n). */
static void quantize_tail(int8_t *xq, const double *x, double inv, int from, int n)
{
    for (int i = from; i < n; i++) {
        double r = (x[i] * inv + ROUNDER) - ROUNDER;
        r = r > 127.0 ? 127.0 : r;
        r = r < -127.0 ? -127.0 : r;
        xq[i] = (int8_t)(int)r;
    }
}

static double abs_max_tail(const double *x, int from, int n, double top)
{
    for (int i = from; i < n; i++) {
        double a = fabs(x[i]);
        top = a > top ? a : top;
    }
    return top;
}

#ifdef QUANT_DISPATCH
static int has_avx2(void);
static int quantize_avx2(int8_t *xq, const double *x, double inv, int n);
static int abs_max_avx2(const double *x, int n, double *top);
#endif

/* The input is scaled by 127 / max rather than divided by the scale: one
 * product per element (it can move a value by an ulp, well inside the half
 * step of the rounding). */
double quant_vector(int8_t *xq, const double *x, int n, int stride)
{
    double top = 0.0;
    int i = 0;
#ifdef QUANT_DISPATCH
    if (has_avx2())
        i = abs_max_avx2(x, n, &top);
#endif
    top = abs_max_tail(x, i, n, top);
    memset(xq + n, 0, (size_t)(stride - n));
    if (top == 0.0) {
        memset(xq, 0, (size_t)n);
        return 0.0;
    }
    double inv = 127.0 / top;
    i = 0;
#ifdef QUANT_DISPATCH
    if (has_avx2())
        i = quantize_avx2(xq, x, inv, n);
#endif
    quantize_tail(xq, x, inv, i, n);
    return top / 127.0;
}

/* m->packed from m->q (see quant_matrix). */
static void pack(quant_matrix *m)
{
    size_t S = (size_t)m->stride;
    int8_t *p = m->packed;
    for (int b = 0; b + QUANT_BLOCK <= m->rows; b += QUANT_BLOCK)
        for (size_t c = 0; c < S; c += 4)
            for (int k = 0; k < QUANT_BLOCK; k++, p += 4)
                memcpy(p, m->q + (size_t)(b + k) * S + c, 4);
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
    size_t n_packed = (size_t)(rows / QUANT_BLOCK * QUANT_BLOCK) * (size_t)stride;
    /* the scales first, so that they stay aligned for doubles */
    char *block = malloc((size_t)rows * sizeof(double) + n_q + n_packed);
    if (!block)
        return err_set(err, DS_ENOMEM, "out of memory for a %d x %d int8 matrix", rows, cols);
    m->rows = rows;
    m->cols = cols;
    m->stride = stride;
    m->scale = (double *)(void *)block;
    m->q = (int8_t *)(block + (size_t)rows * sizeof(double));
    m->packed = m->q + n_q;
    for (int r = 0; r < rows; r++)
        m->scale[r] = quant_vector(m->q + (size_t)r * stride, W + (size_t)r * cols, cols,
                                   stride);
    pack(m);
    return DS_OK;
}

void quant_matrix_free(quant_matrix *m)
{
    if (!m)
        return;
    free(m->scale); /* the block starts at the scales */
    *m = (quant_matrix){0};
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
#define QUANT_AVX2_INLINE static inline __attribute__((always_inline, target("avx2")))

/* x . q for 16 bytes of two rows at once, row a in the low half, row b in the
 * high half, xv holding the same 16 bytes of x in both halves and xa = |xv|:
 * maddubs(|x|, sign(q, x)) gives the 16-bit sums of adjacent products (at most
 * 2 * 127 * 127, no saturation), which madd with ones widens to int32. */
QUANT_AVX2_INLINE __m256i pair_dot(const int8_t *a, const int8_t *b, __m256i xv, __m256i xa)
{
    __m256i wv;
    if (b == a + 16) { /* adjacent rows of 16 columns: one load */
        wv = _mm256_loadu_si256((const __m256i *)(const void *)a);
    } else {
        __m128i lo = _mm_loadu_si128((const __m128i *)(const void *)a);
        __m128i hi = _mm_loadu_si128((const __m128i *)(const void *)b);
        wv = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
    }
    __m256i pairs = _mm256_maddubs_epi16(xa, _mm256_sign_epi8(wv, xv));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

/* The eight exact sums q[row_k] . x, k < 8, rows r[0..7], 16 columns per
 * step, reduced with two rounds of horizontal adds. */
QUANT_AVX2_INLINE __m256i eight_dots(const int8_t *const r[8], int stride, const int8_t *x)
{
    __m256i a01 = _mm256_setzero_si256(), a23 = a01, a45 = a01, a67 = a01;
    for (int u = 0; u < stride; u += 16) {
        __m256i xv = _mm256_broadcastsi128_si256(
            _mm_loadu_si128((const __m128i *)(const void *)(x + u)));
        __m256i xa = _mm256_abs_epi8(xv);
        a01 = _mm256_add_epi32(a01, pair_dot(r[0] + u, r[1] + u, xv, xa));
        a23 = _mm256_add_epi32(a23, pair_dot(r[2] + u, r[3] + u, xv, xa));
        a45 = _mm256_add_epi32(a45, pair_dot(r[4] + u, r[5] + u, xv, xa));
        a67 = _mm256_add_epi32(a67, pair_dot(r[6] + u, r[7] + u, xv, xa));
    }
    /* a01: row 0's four partial sums in the low half, row 1's in the high half
     * (and so on); after two hadds the halves hold rows 0 2 4 6 and 1 3 5 7 */
    __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a01, a23), _mm256_hadd_epi32(a45, a67));
    return _mm256_permutevar8x32_epi32(h, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* Rows j .. j + 7 of the list (rows, or first + j + k) and their ids. */
QUANT_AVX2_INLINE void eight_rows(const int8_t *r[8], int id[8], const quant_matrix *m,
                                  const int *rows, int first, int j)
{
    for (int k = 0; k < 8; k++) {
        id[k] = rows ? rows[j + k] : first + j + k;
        r[k] = m->q + (size_t)id[k] * (size_t)m->stride;
    }
}

/* quant_dot_rows, eight rows at a time; returns how many rows it did. */
static QUANT_AVX2 int dot_rows_avx2(int32_t *out, const quant_matrix *m, const int *rows,
                                    int first, int n, const int8_t *x)
{
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        const int8_t *r[8];
        int id[8];
        eight_rows(r, id, m, rows, first, j);
        _mm256_storeu_si256((__m256i *)(void *)(out + j), eight_dots(r, m->stride, x));
    }
    return j;
}

/* The exact sums of one block of 8 packed rows (quant_matrix) with x:
 * register g holds columns 4g .. 4g + 3 of the 8 rows, so each row's sum
 * stays in its own 32-bit lane, with no horizontal reduction. */
QUANT_AVX2_INLINE __m256i block_dots(const int8_t *block, int stride, const int8_t *x)
{
    __m256i acc = _mm256_setzero_si256();
    for (int c = 0; c < stride; c += 4, block += 32) {
        int32_t four;
        memcpy(&four, x + c, 4);
        __m256i xv = _mm256_set1_epi32(four);
        __m256i wv = _mm256_loadu_si256((const __m256i *)(const void *)block);
        __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(xv), _mm256_sign_epi8(wv, xv));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
    }
    return acc;
}

/* (scale x_scale) acc + bias for 8 contiguous rows from row, into out. */
QUANT_AVX2_INLINE void scale_eight(double *out, const quant_matrix *m, int row, __m256i acc,
                                   __m256d xs, const double *bias)
{
    for (int half = 0; half < 2; half++) {
        __m128i part = half ? _mm256_extracti128_si256(acc, 1) : _mm256_castsi256_si128(acc);
        int at = row + 4 * half;
        __m256d y = _mm256_mul_pd(_mm256_mul_pd(_mm256_loadu_pd(m->scale + at), xs),
                                  _mm256_cvtepi32_pd(part));
        if (bias)
            y = _mm256_add_pd(y, _mm256_loadu_pd(bias + at));
        _mm256_storeu_pd(out + 4 * half, y);
    }
}

/* quant_matvec over contiguous rows from a block boundary: the packed whole
 * blocks, two at a time to share the loads of x. Returns the rows done. */
static QUANT_AVX2 int matvec_packed_avx2(double *out, const quant_matrix *m, int first, int n,
                                         const int8_t *x, double x_scale, const double *bias)
{
    __m256d xs = _mm256_set1_pd(x_scale);
    int end = first + n < m->rows / QUANT_BLOCK * QUANT_BLOCK ? first + n
                                                              : m->rows / QUANT_BLOCK * QUANT_BLOCK;
    size_t block_bytes = (size_t)QUANT_BLOCK * (size_t)m->stride;
    int r = first;
    for (; r + QUANT_BLOCK <= end; r += QUANT_BLOCK) {
        const int8_t *block = m->packed + (size_t)(r / QUANT_BLOCK) * block_bytes;
        scale_eight(out + (r - first), m, r, block_dots(block, m->stride, x), xs, bias);
    }
    return r - first;
}

/* quant_matvec, eight rows at a time, the scales applied as the scalar code
 * does: (scale x_scale) acc + bias, lane by lane. Returns the rows done. */
static QUANT_AVX2 int matvec_avx2(double *out, const quant_matrix *m, const int *rows,
                                  int first, int n, const int8_t *x, double x_scale,
                                  const double *bias)
{
    __m256d xs = _mm256_set1_pd(x_scale);
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        const int8_t *r[8];
        int id[8];
        eight_rows(r, id, m, rows, first, j);
        __m256i acc = eight_dots(r, m->stride, x);
        for (int half = 0; half < 2; half++) {
            int at = j + 4 * half;
            __m128i part = half ? _mm256_extracti128_si256(acc, 1) : _mm256_castsi256_si128(acc);
            __m256d y;
            if (rows) {
                __m128i idx = _mm_loadu_si128((const __m128i *)(const void *)(rows + at));
                y = _mm256_mul_pd(_mm256_mul_pd(_mm256_i32gather_pd(m->scale, idx, 8), xs),
                                  _mm256_cvtepi32_pd(part));
                if (bias)
                    y = _mm256_add_pd(y, _mm256_i32gather_pd(bias, idx, 8));
            } else {
                y = _mm256_mul_pd(_mm256_mul_pd(_mm256_loadu_pd(m->scale + first + at), xs),
                                  _mm256_cvtepi32_pd(part));
                if (bias)
                    y = _mm256_add_pd(y, _mm256_loadu_pd(bias + first + at));
            }
            _mm256_storeu_pd(out + at, y);
        }
    }
    return j;
}
/* quantize_tail four at a time, the same operations lane by lane. */
static QUANT_AVX2 int quantize_avx2(int8_t *xq, const double *x, double inv, int n)
{
    __m256d scale = _mm256_set1_pd(inv), hi = _mm256_set1_pd(127.0), lo = _mm256_set1_pd(-127.0);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256d v = _mm256_mul_pd(_mm256_loadu_pd(x + i), scale);
        v = _mm256_round_pd(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm256_max_pd(_mm256_min_pd(v, hi), lo);
        __m128i q32 = _mm256_cvtpd_epi32(v); /* exact: v is an integer */
        __m128i q8 = _mm_packs_epi16(_mm_packs_epi32(q32, q32), _mm_setzero_si128());
        int32_t four = _mm_cvtsi128_si32(q8);
        memcpy(xq + i, &four, 4);
    }
    return i;
}

/* max |x| over whole blocks of four into *top; returns where it stopped. */
static QUANT_AVX2 int abs_max_avx2(const double *x, int n, double *top)
{
    __m256d sign = _mm256_set1_pd(-0.0), best = _mm256_setzero_pd();
    int i = 0;
    for (; i + 4 <= n; i += 4)
        best = _mm256_max_pd(best, _mm256_andnot_pd(sign, _mm256_loadu_pd(x + i)));
    double lanes[4];
    _mm256_storeu_pd(lanes, best);
    for (int k = 0; k < 4; k++)
        *top = lanes[k] > *top ? lanes[k] : *top;
    return i;
}

static int has_avx2(void) { return __builtin_cpu_supports("avx2"); }
#define HAVE_AVX2() has_avx2()
#endif

void quant_dot_rows(int32_t *out, const quant_matrix *m, const int *rows, int first, int n,
                    const int8_t *xq)
{
    int j = 0;
#ifdef QUANT_DISPATCH
    if (HAVE_AVX2())
        j = dot_rows_avx2(out, m, rows, first, n, xq);
#endif
    for (; j < n; j++) {
        size_t r = (size_t)(rows ? rows[j] : first + j);
        out[j] = dot_row(m->q + r * (size_t)m->stride, xq, m->stride);
    }
}

void quant_matvec(double *out, const quant_matrix *m, const int *rows, int first, int n,
                  const int8_t *xq, double x_scale, const double *bias)
{
    int j = 0;
#ifdef QUANT_DISPATCH
    if (HAVE_AVX2() && !rows && first % QUANT_BLOCK == 0)
        j = matvec_packed_avx2(out, m, first, n, xq, x_scale, bias);
    if (HAVE_AVX2())
        j += matvec_avx2(out + j, m, rows ? rows + j : NULL, first + j, n - j, xq, x_scale,
                         bias);
#endif
    for (; j < n; j++) {
        int r = rows ? rows[j] : first + j;
        double y = m->scale[r] * x_scale * (double)dot_row(m->q + (size_t)r * m->stride, xq,
                                                           m->stride);
        out[j] = bias ? y + bias[r] : y;
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
    size_t NH = (size_t)tf->cfg.heads;
    size_t scratch = 2 * T * C + 2 * T + 3 * T * C + C + NH * T + M + C;
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
    qt->att = p, p += NH * T;
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

/* The rest of the block for position t, once every position's qkv is known:
 * x[t] += attention output, then x[t] += MLP(ln2(x[t])). */
static void block_position(quant_transformer *qt, const quant_block *b, int t)
{
    int C = qt->tf->C, M = qt->tf->M;
    double *x = qt->x + (size_t)t * C, *ln = qt->ln + (size_t)t * C;
    attn_causal_query(qt->y, qt->att, (size_t)qt->tf->T_max, qt->qkv, t, C, qt->tf->cfg.heads);
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
