/* Tests of int8 serving (agents/quant.c): the quantization error bound, the
 * integer products against exact known answers, the int8 policy's logits
 * against a bound derived from the quantization errors, the greedy slates of a
 * trained-like policy, and the int8 transformer state against the double one.
 *
 * The per-product bound (quant.h): with Wq, xd the dequantized weights and
 * input, scale_r the row's scale and s_x the input's,
 *   |W[r] . x - Wq[r] . xd| <= (s_x / 2) sum|Wq[r]| + (scale_r / 2) sum|xd|
 *                               + cols scale_r s_x / 4.
 * Through a network it composes: an input already off by delta (elementwise)
 * adds sum_c |W[r][c]| delta_c, and tanh is 1-Lipschitz. The tests evaluate
 * this bound along the int8 forward itself, so it is rigorous up to double
 * rounding and the serving tanh's error (a few 1e-16): 1e-9 is added for
 * those, far above their ~1e-14 and far below the bounds themselves, ~1e-2. */
#include "../agents/nn.h"
#include "../agents/policy.h"
#include "../agents/quant.h"
#include "../agents/transformer.h"
#include "../sim/common.h"
#include "testutil.h"

#include <check.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static gsl_rng *rng_new(unsigned long seed)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    ck_assert_ptr_nonnull(r);
    gsl_rng_set(r, seed);
    return r;
}

static double *doubles(size_t n)
{
    double *p = calloc(n, sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* ---- kernels ---- */

START_TEST(test_quantize_error)
{
    /* 37 rows of 50 columns (not a multiple of QUANT_PAD), row magnitudes from
     * 1e-3 to 1e3, and one all-zero row */
    enum { R = 37, C = 50 };
    char err[ERR_LEN];
    gsl_rng *r = rng_new(1);
    double *W = doubles(R * C), row[C];
    for (int i = 0; i < R; i++)
        for (int c = 0; c < C; c++)
            W[i * C + c] = i == 5 ? 0.0 : pow(10.0, -3.0 + 6.0 * i / (R - 1)) * gsl_ran_gaussian(r, 1.0);
    quant_matrix m;
    ck_assert_int_eq(quant_matrix_build(&m, W, R, C, err), DS_OK);
    ck_assert_int_eq(m.stride, 64);
    for (int i = 0; i < R; i++) {
        const int8_t *q = m.q + (size_t)i * m.stride;
        int top = 0;
        for (int c = 0; c < m.stride; c++) {
            ck_assert_int_le(abs(q[c]), 127);
            top = abs(q[c]) > top ? abs(q[c]) : top;
            if (c >= C)
                ck_assert_int_eq(q[c], 0); /* the padding */
        }
        quant_matrix_row(&m, i, row);
        if (i == 5) {
            ck_assert(m.scale[i] == 0.0 && top == 0);
            continue;
        }
        ck_assert_int_eq(top, 127); /* the largest entry maps to +-127 */
        for (int c = 0; c < C; c++) {
            /* round-to-nearest: within half a step, plus the rounding of w
             * 127 / max and of the product (a few ulps of the step) */
            double e = fabs(W[i * C + c] - row[c]);
            ck_assert_msg(e <= m.scale[i] / 2 * (1 + 1e-12),
                          "row %d col %d: error %.3e, scale %.3e", i, c, e, m.scale[i]);
        }
    }
    quant_matrix_free(&m);
    quant_matrix_free(&m); /* a freed matrix is a no-op */
    /* ties round to even, in every kernel (the AVX2 one takes blocks of four,
     * the plain one the tail): max 127 makes the step exactly 1 */
    const double ties[9] = {127, 0.5, 1.5, 2.5, -0.5, -2.5, 3.49, -126.5, 126.5};
    const int8_t even[9] = {127, 0, 2, 2, 0, -2, 3, -126, 126};
    int8_t tq[QUANT_PAD];
    ck_assert(quant_vector(tq, ties, 9, QUANT_PAD) == 1.0);
    ck_assert(memcmp(tq, even, 9) == 0);
    W[3] = NAN;
    ck_assert_int_eq(quant_matrix_build(&m, W, R, C, err), DS_EINPUT);
    ck_assert_int_eq(quant_matrix_build(&m, W, 0, C, err), DS_EINPUT);
    free(W);
    gsl_rng_free(r);
}
END_TEST

/* Exact int64 reference of q[row] . x. */
static long long reference_dot(const quant_matrix *m, int row, const int8_t *x)
{
    long long s = 0;
    for (int c = 0; c < m->stride; c++)
        s += (long long)m->q[(size_t)row * m->stride + c] * x[c];
    return s;
}

START_TEST(test_dot_known_answer)
{
    char err[ERR_LEN];
    /* a hand example: each row holds +-127, so the scales are 1 and q = W */
    double small[3 * 4] = {127, 1, 2, 3, -127, 0, 5, -6, 10, 20, 30, 127};
    quant_matrix m;
    ck_assert_int_eq(quant_matrix_build(&m, small, 3, 4, err), DS_OK);
    ck_assert(m.scale[0] == 1.0 && m.scale[1] == 1.0 && m.scale[2] == 1.0);
    int8_t x[QUANT_PAD] = {1, -2, 3, 4};
    int32_t out[3];
    quant_dot_rows(out, &m, NULL, 0, 3, x);
    /* 127 - 2 + 6 + 12 = 143; -127 + 0 + 15 - 24 = -136; 10 - 40 + 90 + 508 = 568 */
    ck_assert_int_eq(out[0], 143);
    ck_assert_int_eq(out[1], -136);
    ck_assert_int_eq(out[2], 568);
    double y[3], bias[3] = {0.5, -1.0, 2.0};
    quant_matvec(y, &m, NULL, 0, 3, x, 0.25, bias);
    ck_assert(y[0] == 143 * 0.25 + 0.5 && y[1] == -136 * 0.25 - 1.0 && y[2] == 568 * 0.25 + 2.0);
    quant_matrix_free(&m);

    /* 21 rows (two blocks of 8 and a tail) of 1000 columns: extremes (every
     * product +-127^2, the largest pair sums the 16-bit stage sees) and random
     * rows; the identity rows and a gathered list with repeats */
    enum { R = 21, C = 1000 };
    gsl_rng *r = rng_new(2);
    double *W = doubles(R * C), *xd = doubles(C);
    for (int i = 0; i < R; i++)
        for (int c = 0; c < C; c++)
            W[i * C + c] = i == 0 ? 127.0 : i == 1 ? (c % 2 ? -127.0 : 127.0)
                                         : (double)((long)gsl_rng_uniform_int(r, 255) - 127);
    for (int c = 0; c < C; c++)
        xd[c] = c == 0 ? -127.0 : (double)((long)gsl_rng_uniform_int(r, 255) - 127);
    xd[1] = 127.0;
    ck_assert_int_eq(quant_matrix_build(&m, W, R, C, err), DS_OK);
    int8_t *xq = calloc((size_t)m.stride, 1);
    ck_assert_ptr_nonnull(xq);
    ck_assert(quant_vector(xq, xd, C, m.stride) == 1.0);
    int32_t got[R];
    quant_dot_rows(got, &m, NULL, 0, R, xq);
    for (int i = 0; i < R; i++)
        ck_assert_msg(got[i] == reference_dot(&m, i, xq), "row %d: %d", i, got[i]);
    int rows[R];
    for (int j = 0; j < R; j++)
        rows[j] = (j * 7 + 3) % R / 2 * 2; /* even rows only, each twice or so */
    quant_dot_rows(got, &m, rows, 0, R, xq);
    for (int j = 0; j < R; j++)
        ck_assert_int_eq(got[j], reference_dot(&m, rows[j], xq));
    quant_dot_rows(got, &m, NULL, 4, R - 4, xq); /* a row range */
    for (int j = 0; j < R - 4; j++)
        ck_assert_int_eq(got[j], reference_dot(&m, 4 + j, xq));
    /* quant_matvec with unit scales is the exact product, on every path: the
     * packed blocks (a range from a block boundary), rows from elsewhere, and
     * a gathered list */
    double yr[R];
    const int starts[] = {0, 8, 4, 13};
    for (size_t k = 0; k < sizeof starts / sizeof *starts; k++) {
        int first = starts[k];
        quant_matvec(yr, &m, NULL, first, R - first, xq, 1.0, NULL);
        for (int j = 0; j < R - first; j++)
            ck_assert_msg(yr[j] == (double)reference_dot(&m, first + j, xq),
                          "from row %d: row %d gives %.17g", first, first + j, yr[j]);
    }
    quant_matvec(yr, &m, rows, 0, R, xq, 1.0, NULL);
    for (int j = 0; j < R; j++)
        ck_assert(yr[j] == (double)reference_dot(&m, rows[j], xq));
    /* row 0 . x = 127 sum x: the all-127 row against the known x */
    long long sum_x = 0;
    for (int c = 0; c < C; c++)
        sum_x += (long long)xd[c];
    ck_assert(reference_dot(&m, 0, xq) == 127 * sum_x);
    quant_matrix_free(&m);
    free(xq);
    free(W);
    free(xd);
    gsl_rng_free(r);
}
END_TEST

/* ---- the policy ---- */

typedef struct {
    policy_net net;
    nn_layout layout;
    nn_params p;
    policy_work work;
    quant_policy qp;
} pol;

static void pol_setup(pol *c, int N, int F, int H, int d)
{
    char err[ERR_LEN];
    memset(c, 0, sizeof *c);
    nn_layout_init(&c->layout);
    ck_assert_int_eq(policy_init(&c->net, N, F, H, d, 0, &c->layout, err), DS_OK);
    ck_assert_int_eq(nn_params_alloc(&c->p, c->layout.size, err), DS_OK);
    ck_assert_int_eq(policy_work_alloc(&c->work, &c->net, err), DS_OK);
}

static void pol_build(pol *c)
{
    char err[ERR_LEN];
    ck_assert_int_eq(quant_policy_build(&c->qp, &c->net, c->p.w, err), DS_OK);
}

static void pol_teardown(pol *c)
{
    quant_policy_free(&c->qp);
    policy_work_free(&c->work);
    nn_params_free(&c->p);
}

/* The per-product bound of out = W x~ + b over W's rows, plus what the input's
 * own error delta_in [cols] (NULL: none) carries through the exact W, into
 * delta_out [rows]. x~ is the int8 path's input. */
static void layer_bound(double *delta_out, const double *W, int rows, int cols,
                        const double *x, const double *delta_in)
{
    quant_matrix m;
    char err[ERR_LEN];
    ck_assert_int_eq(quant_matrix_build(&m, W, rows, cols, err), DS_OK);
    int8_t *xq = calloc((size_t)m.stride, 1);
    double *wq = doubles((size_t)cols);
    ck_assert_ptr_nonnull(xq);
    double sx = quant_vector(xq, x, cols, m.stride), sum_x = 0.0;
    for (int c = 0; c < cols; c++)
        sum_x += fabs(sx * xq[c]);
    for (int r = 0; r < rows; r++) {
        quant_matrix_row(&m, r, wq);
        double sum_w = 0.0, carried = 0.0;
        for (int c = 0; c < cols; c++) {
            sum_w += fabs(wq[c]);
            if (delta_in)
                carried += fabs(W[(size_t)r * cols + c]) * delta_in[c];
        }
        delta_out[r] = sx / 2 * sum_w + m.scale[r] / 2 * sum_x + cols * m.scale[r] * sx / 4
                       + carried;
    }
    quant_matrix_free(&m);
    free(xq);
    free(wq);
}

START_TEST(test_policy_logits_bound)
{
    /* random weights of unit-scale outputs (N(0, 1 / fan_in); E_out and the
     * biases N(0, 0.5^2)), 20 random states x ~ N(0, 1) */
    enum { N = 300, F = 27, H = 32, D = 8, STATES = 20 };
    pol c;
    pol_setup(&c, N, F, H, D);
    gsl_rng *r = rng_new(3);
    for (int i = 0; i < c.layout.n_tensors; i++) {
        const nn_tensor *t = &c.layout.tensors[i];
        int is_weight = t->name[0] == 'p' && t->name[3] == 'W';
        nn_init_normal(c.p.w + t->offset, r, is_weight ? 1.0 / sqrt(t->cols) : 0.5,
                       (size_t)t->rows * t->cols);
    }
    pol_build(&c);
    const double *w = c.p.w;
    double x[F], d1[H], d2[H], dh[D], dl[N], logits[N], picked[N];
    int cand[N];
    double worst_ratio = 0.0, largest_error = 0.0;
    for (int s = 0; s < STATES; s++) {
        for (int f = 0; f < F; f++)
            x[f] = gsl_ran_gaussian(r, 1.0);
        policy_forward(&c.net, w, x, NULL, N, &c.work, NULL);
        quant_policy_logits(&c.qp, x, NULL, N, logits);
        layer_bound(d1, w + c.net.pi_W1, H, F, x, NULL);
        layer_bound(d2, w + c.net.pi_W2, H, H, c.qp.a1, d1);
        layer_bound(dh, w + c.net.pi_W3, D, H, c.qp.a2, d2);
        layer_bound(dl, w + c.net.E_out, N, D, c.qp.h, dh);
        for (int j = 0; j < N; j++) {
            double e = fabs(logits[j] - c.work.logits[j]);
            ck_assert_msg(e <= dl[j] + 1e-9, "state %d logit %d: error %.3e > bound %.3e", s,
                          j, e, dl[j]);
            worst_ratio = fmax(worst_ratio, e / dl[j]);
            largest_error = fmax(largest_error, e);
        }
        /* a candidate list gives the same logits, bit for bit, as the catalogue */
        for (int j = 0; j < N; j++)
            cand[j] = (j * 37 + s) % N;
        quant_policy_logits(&c.qp, x, cand, N, picked);
        for (int j = 0; j < N; j++)
            ck_assert(picked[j] == logits[cand[j]]);
    }
    /* the check has teeth: quantization moved the logits, and the bound is not
     * slack by orders of magnitude (the largest error is 0.8% of its bound at
     * seed 3: the bound adds worst cases that mostly cancel) */
    ck_assert_msg(largest_error > 1e-4, "largest error %.3e", largest_error);
    ck_assert_msg(worst_ratio > 0.002, "errors at most %.4f of the bound", worst_ratio);
    gsl_rng_free(r);
    pol_teardown(&c);
}
END_TEST

/* |a ∩ b| over k. */
static int overlap(const int *a, const int *b, int k)
{
    int n = 0;
    for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++)
            n += a[i] == b[j];
    return n;
}

START_TEST(test_policy_top_k_agreement)
{
    /* The bench's size (2,000 items, hidden 64, d 16, the shop's 20 topics so
     * F = 2 d + 2 T + 3 = 75), with trained-like weights: the CleanRL trunk
     * (orthogonal, gain sqrt 2), a head grown from its 0.01 start to N(0, 1 / H)
     * and an item table of N(0, 0.3^2) with popularity biases N(0, 1): logits
     * spread over several units, as a trained policy's are. States are
     * encoder-like: embedding means N(0, 0.1^2), topic histograms, scalars in
     * [0, 1]. Over 200 states (seed 4), the int8 greedy slate of 10 shares on
     * average 99.0% of its items with the double one, and 109 of the 200 slates
     * are identical, order included (a swap of two near-equal logits breaks
     * that); the thresholds below are 95% and 40%. */
    enum { N = 2000, T = 20, D = 16, F = 2 * D + 2 * T + 3, H = 64, K = 10, STATES = 200 };
    pol c;
    pol_setup(&c, N, F, H, D);
    gsl_rng *r = rng_new(4);
    policy_init_weights(&c.net, c.p.w, r);
    nn_init_normal(c.p.w + c.net.pi_W3, r, 1.0 / sqrt(H), (size_t)D * H);
    nn_init_normal(c.p.w + c.net.E_out, r, 0.3, (size_t)N * D);
    nn_init_normal(c.p.w + c.net.b_out, r, 1.0, N);
    pol_build(&c);
    double *logits = doubles(N), x[F];
    int want[K], got[K], same = 0, identical = 0;
    for (int s = 0; s < STATES; s++) {
        for (int f = 0; f < 2 * D; f++)
            x[f] = gsl_ran_gaussian(r, 0.1);
        for (int f = 2 * D; f < F; f++)
            x[f] = gsl_rng_uniform(r) * (f < 2 * D + 2 * T ? 2.0 / T : 1.0);
        policy_forward(&c.net, c.p.w, x, NULL, N, &c.work, NULL);
        policy_top_k(want, c.work.logits, N, K);
        quant_policy_logits(&c.qp, x, NULL, N, logits);
        policy_top_k(got, logits, N, K);
        int o = overlap(want, got, K);
        same += o;
        identical += o == K && memcmp(want, got, sizeof want) == 0;
    }
    double agreement = (double)same / (STATES * K);
    ck_assert_msg(agreement >= 0.95, "top-%d agreement %.3f", K, agreement);
    ck_assert_msg(identical >= STATES * 2 / 5, "%d of %d slates identical", identical, STATES);
    free(logits);
    gsl_rng_free(r);
    pol_teardown(&c);
}
END_TEST

/* ---- the transformer ---- */

enum { TN = 60, TT = 5, TSTEPS = 10 };

typedef struct {
    int topics[TN];
    env_spec spec;
    transformer tf;
    nn_layout layout;
    nn_params p;
    transformer_work work;
    history_entry history[24];
    int session[12];
    observation obs;
} tf_ctx;

static void tf_setup(tf_ctx *c, unsigned long seed)
{
    char err[ERR_LEN];
    memset(c, 0, sizeof *c);
    for (int i = 0; i < TN; i++)
        c->topics[i] = i % TT;
    c->spec = (env_spec){.n_items = TN, .n_users = 4, .slate = 3, .n_topics = TT,
                         .max_steps = TSTEPS, .item_topic = c->topics};
    transformer_config cfg;
    transformer_config_defaults(&cfg);
    nn_layout_init(&c->layout);
    ck_assert_int_eq(transformer_init(&c->tf, &c->spec, &cfg, &c->layout, err), DS_OK);
    ck_assert_int_eq(nn_params_alloc(&c->p, c->layout.size, err), DS_OK);
    ck_assert_int_eq(transformer_work_alloc(&c->work, &c->tf, err), DS_OK);
    /* trained-like scales: weights N(0, 1 / fan_in) (the residual projections
     * / sqrt(2 L)), embeddings N(0, 0.5^2), biases N(0, 0.1^2), layer norms
     * gamma 1 + N(0, 0.1^2), beta N(0, 0.1^2): attention far from uniform,
     * GELUs in their curved range */
    gsl_rng *r = rng_new(seed);
    transformer_init_weights(&c->tf, c->p.w, r);
    for (int i = 0; i < c->layout.n_tensors; i++) {
        const nn_tensor *t = &c->layout.tensors[i];
        double *x = c->p.w + t->offset;
        size_t n = (size_t)t->rows * t->cols;
        if (strstr(t->name, "_W")) {
            double sd = 1.0 / sqrt(t->cols);
            if (strcmp(t->name, "tf_attn_W") == 0 || strcmp(t->name, "tf_proj_W") == 0)
                sd /= 2.0; /* 1 / sqrt(2 L) at L = 2 */
            nn_init_normal(x, r, sd, n);
        } else if (strncmp(t->name, "tf_ln", 5) == 0) {
            for (size_t k = 0; k < n; k++)
                x[k] += gsl_ran_gaussian(r, 0.1);
        } else {
            nn_init_normal(x, r, strstr(t->name, "_b") ? 0.1 : 0.5, n);
        }
    }
    /* a full context: 24 entries of every kind, newest first */
    for (int j = 0; j < 24; j++) {
        int kind = (int)gsl_rng_uniform_int(r, 3);
        c->history[j] = (history_entry){kind == HIST_SKIP ? -1 : (int)gsl_rng_uniform_int(r, TN),
                                        kind};
    }
    for (int j = 0; j < 12; j++)
        c->session[j] = (int)gsl_rng_uniform_int(r, TN);
    gsl_rng_free(r);
    c->obs = (observation){.user = 1, .episode = 3, .step = 4, .time = 10.0,
                           .since_last_visit = 2.5, .history = c->history, .history_len = 24};
}

static void tf_teardown(tf_ctx *c)
{
    transformer_work_free(&c->work);
    nn_params_free(&c->p);
}

START_TEST(test_transformer_state)
{
    /* Against transformer_features: the double snapshot (the same arithmetic
     * up to summation order: dgemm there, row dots here) to 1e-10 on states of
     * unit scale; the int8 snapshot, over 4 weight draws and every context
     * length 0..16, within 0.1 per element and 3% in L2 (measured at this
     * setting: at most 0.038 and 1.5%; each of the 8 products of the path adds
     * ~0.5% relative error, and the layer norms rescale it). The parameter-free
     * groups are the same bits. */
    char err[ERR_LEN];
    double worst_max = 0.0, worst_rel = 0.0;
    for (unsigned long seed = 10; seed < 14; seed++) {
        tf_ctx c;
        tf_setup(&c, seed);
        quant_transformer qd = {0}, q8 = {0};
        ck_assert_int_eq(quant_transformer_build(&qd, &c.tf, c.p.w, QUANT_DOUBLE, err), DS_OK);
        ck_assert_int_eq(quant_transformer_build(&q8, &c.tf, c.p.w, QUANT_INT8, err), DS_OK);
        int F = c.tf.n_features, C = c.tf.C;
        double *x = doubles((size_t)F), *xd = doubles((size_t)F), *x8 = doubles((size_t)F);
        for (int len = 0; len <= 16; len++) {
            c.obs.history_len = len;
            transformer_input in, in8;
            ck_assert_int_eq(transformer_features(&c.tf, c.p.w, &c.obs, c.session, 12, x, &in,
                                                  &c.work, err),
                             DS_OK);
            ck_assert_int_eq(quant_transformer_features(&qd, &c.obs, c.session, 12, xd, NULL,
                                                        err),
                             DS_OK);
            ck_assert_int_eq(quant_transformer_features(&q8, &c.obs, c.session, 12, x8, &in8,
                                                        err),
                             DS_OK);
            ck_assert_int_eq(in8.n_tokens, in.n_tokens);
            for (int t = 0; t < in.n_tokens; t++)
                ck_assert(in8.item[t] == in.item[t] && in8.kind[t] == in.kind[t]);
            ck_assert(memcmp(x + C, x8 + C, (size_t)(F - C) * sizeof *x) == 0);
            double err2 = 0.0, norm2 = 0.0, top = 0.0;
            for (int k = 0; k < C; k++) {
                ck_assert_msg(fabs(xd[k] - x[k]) <= 1e-10, "double state %d: %.3e", k,
                              xd[k] - x[k]);
                top = fmax(top, fabs(x8[k] - x[k]));
                err2 += (x8[k] - x[k]) * (x8[k] - x[k]);
                norm2 += x[k] * x[k];
            }
            worst_max = fmax(worst_max, top);
            worst_rel = fmax(worst_rel, sqrt(err2 / norm2));
        }
        free(x);
        free(xd);
        free(x8);
        quant_transformer_free(&qd);
        quant_transformer_free(&q8);
        quant_transformer_free(&q8); /* freed: a no-op */
        tf_teardown(&c);
    }
    ck_assert_msg(worst_max <= 0.1, "int8 state off by %.3f", worst_max);
    ck_assert_msg(worst_rel <= 0.03, "int8 state off by %.1f%% (L2)", 100 * worst_rel);
    ck_assert_msg(worst_max > 1e-4, "int8 state too close to the double one: %.3e", worst_max);
}
END_TEST

START_TEST(test_transformer_errors)
{
    char err[ERR_LEN];
    tf_ctx c;
    tf_setup(&c, 20);
    quant_transformer q8 = {0};
    ck_assert_int_eq(quant_transformer_build(&q8, &c.tf, c.p.w, QUANT_INT8, err), DS_OK);
    double *x = doubles((size_t)c.tf.n_features);
    c.history[0] = (history_entry){TN, HIST_CLICK}; /* out of range */
    ck_assert_int_eq(quant_transformer_features(&q8, &c.obs, c.session, 12, x, NULL, err),
                     DS_EINPUT);
    c.history[0].item = 0;
    c.session[0] = -1;
    ck_assert_int_eq(quant_transformer_features(&q8, &c.obs, c.session, 12, x, NULL, err),
                     DS_EINPUT);
    quant_transformer_free(&q8);
    c.p.w[c.tf.Wo + 3] = INFINITY; /* a weight that is not finite */
    ck_assert_int_eq(quant_transformer_build(&q8, &c.tf, c.p.w, QUANT_INT8, err), DS_EINPUT);
    quant_transformer_free(&q8);
    free(x);
    tf_teardown(&c);
}
END_TEST

static Suite *quant_suite(void)
{
    Suite *s = suite_create("quant");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_quantize_error);
    tcase_add_test(tc, test_dot_known_answer);
    tcase_add_test(tc, test_policy_logits_bound);
    tcase_add_test(tc, test_policy_top_k_agreement);
    tcase_add_test(tc, test_transformer_state);
    tcase_add_test(tc, test_transformer_errors);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(quant_suite)
