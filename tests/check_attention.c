/* Tests of the transformer pieces (agents/attention.c) and the sequence encoder
 * with its next-click head (agents/transformer.c): known answers (layer norm
 * statistics, GELU values, attention with one token and with uniform weights,
 * tokens of a history, the parameter-free features against the history
 * encoder's), the causal mask (a perturbed future token leaves every earlier
 * output bit-identical), and finite-difference gradient checks of layer norm,
 * attention, GELU, the MLP, one block, the full encoder w.r.t. every parameter
 * tensor, the next-click loss, and the encoder feeding the policy network.
 *
 * Gradient checks, as in the nn tests. The numerical derivative is the five-point
 * central difference
 *     f'(x) ~ [f(x - 2h) - 8 f(x - h) + 8 f(x + h) - f(x + 2h)] / (12 h),
 * h = 1e-4, whose truncation error is O(h^4) and rounding error ~ 1e-16 |f| / h
 * (~1e-11 here), so a correct gradient agrees to ~1e-9 or better. Each element is
 * compared by rel(a, b) = |a - b| / max(1e-8, |a| + |b|), and the largest over a
 * tensor must be below 1e-6 (the acceptance bound). Every check also demands a
 * gradient of size > 1e-3 somewhere in the tensor, so it cannot pass on zeros;
 * parameters that must not receive a gradient are checked to be exactly 0.
 * Every function here is smooth (GELU, not relu), so no kink needs dodging.
 * The weights of the checks are random at unit scale (matrices N(0, 1 / fan_in),
 * embeddings N(0, 0.5^2), layer-norm gamma 1 + N(0, 0.1^2)), not GPT-2's 0.02
 * initialisation, under which the lower layers' gradients would be too small to
 * tell apart from rounding. Losses are random projections L = r . output, r ~
 * N(0, 1), so that every output element matters. */
#include "../agents/attention.h"
#include "../agents/encoder.h"
#include "../agents/nn.h"
#include "../agents/policy.h"
#include "../agents/transformer.h"
#include "../sim/common.h"
#include "gradcheck.h"

#include <check.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gsl_rng *rng_new(unsigned long seed)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    ck_assert_ptr_nonnull(r);
    gsl_rng_set(r, seed);
    return r;
}

static double *alloc_normal(gsl_rng *r, double sd, size_t n)
{
    double *x = calloc(n, sizeof *x);
    ck_assert_ptr_nonnull(x);
    nn_init_normal(x, r, sd, n);
    return x;
}

static double *alloc_zero(size_t n)
{
    double *x = calloc(n, sizeof *x);
    ck_assert_ptr_nonnull(x);
    return x;
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void assert_all_zero(const char *what, const double *g, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(g[i] == 0.0, "%s: gradient %.3e at element %zu, expected 0", what,
                      g[i], i);
}

/* gamma [C] = 1 + N(0, 0.1^2), beta [C] = N(0, 0.1^2): one layer norm's [2][C]. */
static void random_layernorm(double *g, gsl_rng *r, int C)
{
    nn_init_normal(g, r, 0.1, 2 * (size_t)C);
    for (int c = 0; c < C; c++)
        g[c] += 1.0;
}

/* ---- layer norm ---- */

START_TEST(test_layernorm_known_answer)
{
    /* Row (1, 3): mean 2, population variance 1, rstd = 1 / sqrt(1 + 1e-5);
     * out = (-rstd, rstd) * gamma + beta. */
    const double in[2] = {1, 3}, gamma[2] = {2, -1}, beta[2] = {0.5, 0.25};
    double out[2], mean, rstd;
    attn_layernorm_forward(out, &mean, &rstd, in, gamma, beta, 1, 2);
    double s = 1.0 / sqrt(1.0 + ATTN_LN_EPS);
    ck_assert(mean == 2.0);
    ck_assert(fabs(rstd - s) < 1e-15);
    ck_assert(fabs(out[0] - (-2 * s + 0.5)) < 1e-15);
    ck_assert(fabs(out[1] - (-s + 0.25)) < 1e-15);

    /* With gamma 1, beta 0, every row has mean 0 and variance v / (v + eps), v the
     * row's population variance (1 up to the eps): rows of widely different
     * offsets and scales (offset 1e3 tests the two-pass variance). Tolerances: a
     * few roundings of offset * 1e-16 (the error of the row mean, ~1e-13 at
     * offset 1e3, shifts every output by it times rstd). */
    enum { T = 4, C = 16 };
    gsl_rng *r = rng_new(1);
    double x[T * C], y[T * C], m[T], rs[T], one[C], zeros[C];
    const double offset[T] = {0, 5, -3, 1e3}, scale[T] = {1, 0.1, 30, 2};
    for (int t = 0; t < T; t++)
        for (int c = 0; c < C; c++)
            x[t * C + c] = offset[t] + scale[t] * (gsl_rng_uniform(r) - 0.5);
    for (int c = 0; c < C; c++)
        one[c] = 1.0, zeros[c] = 0.0;
    attn_layernorm_forward(y, m, rs, x, one, zeros, T, C);
    for (int t = 0; t < T; t++) {
        double mu = 0, var = 0, in_mu = 0, in_var = 0;
        for (int c = 0; c < C; c++)
            in_mu += x[t * C + c] / C;
        for (int c = 0; c < C; c++)
            in_var += (x[t * C + c] - in_mu) * (x[t * C + c] - in_mu) / C;
        for (int c = 0; c < C; c++)
            mu += y[t * C + c] / C;
        for (int c = 0; c < C; c++)
            var += (y[t * C + c] - mu) * (y[t * C + c] - mu) / C;
        ck_assert_msg(fabs(mu) < 1e-12, "row %d mean %.3e", t, mu);
        ck_assert_msg(fabs(var - in_var / (in_var + ATTN_LN_EPS)) < 1e-12,
                      "row %d variance %.17g", t, var);
        ck_assert(fabs(m[t] - in_mu) < 1e-12 * (1 + fabs(in_mu)));
    }
    gsl_rng_free(r);
}
END_TEST

typedef struct {
    int T, C;
    double *in, *gamma, *beta, *out, *mean, *rstd, *r;
} ln_ctx;

static double ln_loss(void *p)
{
    ln_ctx *c = p;
    attn_layernorm_forward(c->out, c->mean, c->rstd, c->in, c->gamma, c->beta, c->T, c->C);
    return dot(c->r, c->out, (size_t)c->T * c->C);
}

START_TEST(test_layernorm_gradients)
{
    enum { T = 5, C = 8 };
    gsl_rng *r = rng_new(2);
    double in[T * C], g[2 * C], out[T * C], mean[T], rstd[T], rr[T * C];
    double din[T * C] = {0}, dg[2 * C] = {0};
    nn_init_normal(in, r, 1.0, T * C);
    for (int i = 0; i < C; i++) /* a row offset, so the mean's gradient matters */
        in[i] += 3.0;
    random_layernorm(g, r, C);
    nn_init_normal(rr, r, 1.0, T * C);
    ln_ctx c = {T, C, in, g, g + C, out, mean, rstd, rr};
    ln_loss(&c);
    attn_layernorm_backward(din, dg, dg + C, rr, in, g, mean, rstd, T, C);
    check_grad("layernorm in", in, din, T * C, ln_loss, &c);
    check_grad("layernorm gamma", g, dg, C, ln_loss, &c);
    check_grad("layernorm beta", g + C, dg + C, C, ln_loss, &c);
    /* the gradient w.r.t. a row's input sums to 0: the output ignores a shift */
    for (int t = 0; t < T; t++) {
        double s = 0;
        for (int i = 0; i < C; i++)
            s += din[t * C + i];
        ck_assert_msg(fabs(s) < 1e-12, "row %d: sum of din %.3e", t, s);
    }
    gsl_rng_free(r);
}
END_TEST

/* ---- attention ---- */

/* The parameters and activations of one multi-head attention layer. */
typedef struct {
    int T, C, NH;
    double *in, *Wqkv, *bqkv, *Wo, *bo; /* [T][C], [3C][C], [3C], [C][C], [C] */
    double *qkv, *att, *y, *out;        /* [T][3C], [NH][T][T], [T][C], [T][C] */
    double *r;                          /* [T][C] loss projection */
} mha_ctx;

static void mha_alloc(mha_ctx *c, gsl_rng *r, int T, int C, int NH)
{
    size_t t = (size_t)T, n = (size_t)C;
    *c = (mha_ctx){.T = T, .C = C, .NH = NH};
    c->in = alloc_normal(r, 1.0, t * n);
    c->Wqkv = alloc_normal(r, 1.0 / sqrt(C), 3 * n * n);
    c->bqkv = alloc_normal(r, 0.1, 3 * n);
    c->Wo = alloc_normal(r, 1.0 / sqrt(C), n * n);
    c->bo = alloc_normal(r, 0.1, n);
    c->qkv = alloc_zero(3 * t * n);
    c->att = alloc_zero((size_t)NH * t * t);
    c->y = alloc_zero(t * n);
    c->out = alloc_zero(t * n);
    c->r = alloc_normal(r, 1.0, t * n);
}

static void mha_free(mha_ctx *c)
{
    double *all[] = {c->in, c->Wqkv, c->bqkv, c->Wo, c->bo, c->qkv, c->att, c->y, c->out, c->r};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        free(all[i]);
}

static void mha_run(mha_ctx *c)
{
    attn_mha_forward(c->out, c->qkv, c->att, c->y, c->in, c->Wqkv, c->bqkv, c->Wo, c->bo,
                     c->T, c->C, c->NH);
}

static double mha_loss(void *p)
{
    mha_ctx *c = p;
    mha_run(c);
    return dot(c->r, c->out, (size_t)c->T * c->C);
}

START_TEST(test_attention_one_token)
{
    /* With one token the softmax has one entry, weight 1: the output is the V
     * projection path, out = (in Wv^T + bv) Wo^T + bo, whatever Q and K are. */
    enum { C = 6, NH = 3 };
    gsl_rng *r = rng_new(3);
    mha_ctx c;
    mha_alloc(&c, r, 1, C, NH);
    mha_run(&c);
    double v[C], want[C];
    for (int i = 0; i < C; i++)
        v[i] = c.bqkv[2 * C + i] + dot(c.Wqkv + (size_t)(2 * C + i) * C, c.in, C);
    for (int i = 0; i < C; i++)
        want[i] = c.bo[i] + dot(c.Wo + (size_t)i * C, v, C);
    for (int i = 0; i < C; i++) /* sums of a few O(1) products */
        ck_assert_msg(fabs(c.out[i] - want[i]) < 1e-14, "out %d: %.17g vs %.17g", i, c.out[i],
                      want[i]);
    for (int h = 0; h < NH; h++)
        ck_assert(c.att[h] == 1.0);
    mha_free(&c);
    gsl_rng_free(r);
}
END_TEST

START_TEST(test_attention_uniform_is_running_mean)
{
    /* With every query 0, all scores are 0 and token t attends uniformly to
     * tokens 0..t: y[t] is the running mean of v over 0..t (exact causal mask). */
    enum { T = 5, C = 4, NH = 2 };
    double qkv[T * 3 * C], y[T * C], att[NH * T * T];
    for (int t = 0; t < T; t++)
        for (int i = 0; i < 3 * C; i++)
            qkv[t * 3 * C + i] = i < C ? 0.0 : (double)((t + 1) * (i + 2) % 7) - 3.0;
    attn_causal_forward(y, att, qkv, T, C, NH);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < C; i++) {
            double mean = 0;
            for (int t2 = 0; t2 <= t; t2++)
                mean += qkv[t2 * 3 * C + 2 * C + i];
            mean /= t + 1;
            ck_assert_msg(fabs(y[t * C + i] - mean) < 1e-15, "y[%d][%d] %.17g vs %.17g", t, i,
                          y[t * C + i], mean);
        }
    for (int h = 0; h < NH; h++)
        for (int t = 0; t < T; t++)
            for (int t2 = 0; t2 < T; t2++) {
                double a = att[(h * T + t) * T + t2];
                ck_assert(t2 > t ? a == 0.0 : fabs(a - 1.0 / (t + 1)) < 1e-16);
            }
}
END_TEST

START_TEST(test_attention_causal_mask)
{
    /* Perturbing token s's input changes no output of tokens t < s: not even in
     * the last bit (the mask is structural, not a -1e9 added to scores). Rows
     * t >= s do change. The attention rows are distributions over t2 <= t. */
    enum { T = 6, C = 8, NH = 2 };
    gsl_rng *r = rng_new(4);
    mha_ctx c;
    mha_alloc(&c, r, T, C, NH);
    mha_run(&c);
    double before[T * C];
    memcpy(before, c.out, sizeof before);
    for (int h = 0; h < NH; h++)
        for (int t = 0; t < T; t++) {
            double s = 0;
            for (int t2 = 0; t2 < T; t2++) {
                double a = c.att[(h * T + t) * T + t2];
                ck_assert(t2 <= t ? a > 0.0 : a == 0.0);
                s += a;
            }
            ck_assert(fabs(s - 1.0) < 1e-15);
        }
    double saved[C];
    for (int s = 1; s < T; s++) {
        memcpy(saved, c.in + s * C, sizeof saved);
        for (int i = 0; i < C; i++)
            c.in[s * C + i] += 0.5 + 0.1 * i;
        mha_run(&c);
        ck_assert_msg(memcmp(c.out, before, (size_t)s * C * sizeof *before) == 0,
                      "perturbing token %d changed an earlier output", s);
        for (int t = s; t < T; t++)
            ck_assert_msg(memcmp(c.out + t * C, before + t * C, C * sizeof *before) != 0,
                          "token %d did not see token %d", t, s);
        memcpy(c.in + s * C, saved, sizeof saved); /* exactly: x + a - a need not be x */
    }
    mha_free(&c);
    gsl_rng_free(r);
}
END_TEST

typedef struct {
    int T, C, NH;
    double *qkv, *y, *att, *r;
} causal_ctx;

static double causal_loss(void *p)
{
    causal_ctx *c = p;
    attn_causal_forward(c->y, c->att, c->qkv, c->T, c->C, c->NH);
    return dot(c->r, c->y, (size_t)c->T * c->C);
}

START_TEST(test_attention_gradients)
{
    enum { T = 6, C = 8, NH = 2 };
    gsl_rng *r = rng_new(5);
    /* the core alone, w.r.t. q, k and v */
    double qkv[T * 3 * C], y[T * C], att[NH * T * T], rr[T * C], dqkv[T * 3 * C] = {0};
    double row[T];
    nn_init_normal(qkv, r, 1.0, T * 3 * C);
    nn_init_normal(rr, r, 1.0, T * C);
    causal_ctx cc = {T, C, NH, qkv, y, att, rr};
    causal_loss(&cc);
    attn_causal_backward(dqkv, row, rr, att, qkv, T, C, NH);
    check_grad("causal attention qkv", qkv, dqkv, T * 3 * C, causal_loss, &cc);

    /* with the projections, w.r.t. the input and every parameter */
    mha_ctx c;
    mha_alloc(&c, r, T, C, NH);
    mha_loss(&c);
    double *din = alloc_zero(T * C), *dWqkv = alloc_zero(3 * C * C), *dbqkv = alloc_zero(3 * C);
    double *dWo = alloc_zero(C * C), *dbo = alloc_zero(C);
    double *dy = alloc_zero(T * C), *dq = alloc_zero(T * 3 * C);
    attn_mha_backward(din, dWqkv, dbqkv, dWo, dbo, dy, dq, row, c.r, c.qkv, c.att, c.y, c.in,
                      c.Wqkv, c.Wo, T, C, NH);
    check_grad("attention in", c.in, din, T * C, mha_loss, &c);
    check_grad("attention Wqkv", c.Wqkv, dWqkv, 3 * C * C, mha_loss, &c);
    check_qkv_bias("attention bqkv", c.bqkv, dbqkv, 1, C, mha_loss, &c);
    check_grad("attention Wo", c.Wo, dWo, C * C, mha_loss, &c);
    check_grad("attention bo", c.bo, dbo, C, mha_loss, &c);
    double *all[] = {din, dWqkv, dbqkv, dWo, dbo, dy, dq};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        free(all[i]);
    mha_free(&c);
    gsl_rng_free(r);
}
END_TEST

/* ---- GELU and the MLP ---- */

typedef struct {
    int n;
    double *in, *out, *r;
} gelu_ctx;

static double gelu_loss(void *p)
{
    gelu_ctx *c = p;
    attn_gelu_forward(c->out, c->in, c->n);
    return dot(c->r, c->out, (size_t)c->n);
}

START_TEST(test_gelu)
{
    /* gelu(x) = x Phi(x): Phi(1) = 0.841344746068542949, Phi(-1) = 1 - Phi(1),
     * Phi(-3) = 0.00134989803163009452 (standard normal tables, 18 digits). */
    const double in[4] = {0, 1, -1, -3};
    const double want[4] = {0, 0.841344746068542949, -0.158655253931457051,
                            -3 * 0.00134989803163009452};
    double out[4];
    attn_gelu_forward(out, in, 4);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(fabs(out[i] - want[i]) < 1e-15, "gelu(%g) = %.17g", in[i], out[i]);
    /* gelu'(0) = Phi(0) = 1/2 exactly */
    double d = 0, one = 1;
    attn_gelu_backward(&d, &one, &in[0], 1);
    ck_assert(d == 0.5);

    enum { N = 40 };
    gsl_rng *r = rng_new(6);
    double x[N], y[N], rr[N], dx[N] = {0};
    nn_init_normal(x, r, 2.0, N);
    nn_init_normal(rr, r, 1.0, N);
    gelu_ctx c = {N, x, y, rr};
    gelu_loss(&c);
    attn_gelu_backward(dx, rr, x, N);
    check_grad("gelu", x, dx, N, gelu_loss, &c);
    gsl_rng_free(r);
}
END_TEST

typedef struct {
    int T, C, M;
    double *in, *W1, *b1, *W2, *b2, *fc, *act, *out, *r;
} mlp_ctx;

static double mlp_loss(void *p)
{
    mlp_ctx *c = p;
    attn_mlp_forward(c->out, c->fc, c->act, c->in, c->W1, c->b1, c->W2, c->b2, c->T, c->C,
                     c->M);
    return dot(c->r, c->out, (size_t)c->T * c->C);
}

START_TEST(test_mlp_gradients)
{
    enum { T = 5, C = 6, M = 12 };
    gsl_rng *r = rng_new(7);
    mlp_ctx c = {T, C, M, alloc_normal(r, 1.0, T * C), alloc_normal(r, 1.0 / sqrt(C), M * C),
                 alloc_normal(r, 0.1, M), alloc_normal(r, 1.0 / sqrt(M), C * M),
                 alloc_normal(r, 0.1, C), alloc_zero(T * M), alloc_zero(T * M),
                 alloc_zero(T * C), alloc_normal(r, 1.0, T * C)};
    mlp_loss(&c);
    /* known answer on row 0: out = W2 gelu(W1 in + b1) + b2, by hand */
    for (int i = 0; i < C; i++) {
        double s = c.b2[i];
        for (int j = 0; j < M; j++) {
            double z = c.b1[j] + dot(c.W1 + j * C, c.in, C);
            s += c.W2[i * M + j] * z * 0.5 * erfc(-z / sqrt(2.0));
        }
        ck_assert(fabs(c.out[i] - s) < 1e-14);
    }
    double *din = alloc_zero(T * C), *dW1 = alloc_zero(M * C), *db1 = alloc_zero(M);
    double *dW2 = alloc_zero(C * M), *db2 = alloc_zero(C), *dact = alloc_zero(T * M);
    double *dfc = alloc_zero(T * M);
    attn_mlp_backward(din, dW1, db1, dW2, db2, dact, dfc, c.r, c.fc, c.act, c.in, c.W1, c.W2, T,
                      C, M);
    check_grad("mlp in", c.in, din, T * C, mlp_loss, &c);
    check_grad("mlp W1", c.W1, dW1, M * C, mlp_loss, &c);
    check_grad("mlp b1", c.b1, db1, M, mlp_loss, &c);
    check_grad("mlp W2", c.W2, dW2, C * M, mlp_loss, &c);
    check_grad("mlp b2", c.b2, db2, C, mlp_loss, &c);
    double *all[] = {c.in, c.W1, c.b1, c.W2, c.b2, c.fc, c.act, c.out, c.r,
                     din,  dW1,  db1,  dW2,  db2,  dact, dfc};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        free(all[i]);
    gsl_rng_free(r);
}
END_TEST

/* ---- one block ---- */

typedef struct {
    attn_block b;
    nn_layout layout;
    int T;
    double *w, *grad;     /* [layout.size] */
    double *in, *r;       /* [T][C] */
    double *acts_slab, *scratch_slab;
    attn_block_acts acts;
    attn_block_scratch scratch;
} block_ctx;

static void block_setup(block_ctx *c, gsl_rng *r, int T, int C, int NH, int M)
{
    char err[ERR_LEN];
    memset(c, 0, sizeof *c);
    c->T = T;
    c->b = (attn_block){.C = C, .NH = NH, .M = M};
    nn_layout_init(&c->layout);
    nn_layout *l = &c->layout;
    attn_block *b = &c->b;
    ck_assert_int_eq(nn_layout_add(l, "ln1", 2, C, &b->ln1, err), DS_OK);
    ck_assert_int_eq(nn_layout_add(l, "Wqkv", 3 * C, C, &b->Wqkv, err), DS_OK);
    ck_assert_int_eq(nn_layout_add(l, "bqkv", 1, 3 * C, &b->bqkv, err), DS_OK);
    ck_assert_int_eq(nn_layout_add(l, "Wo", C, C, &b->Wo, err), DS_OK);
    ck_assert_int_eq(nn_layout_add(l, "bo", 1, C, &b->bo, err), DS_OK);
    ck_assert_int_eq(nn_layout_add(l, "ln2", 2, C, &b->ln2, err), DS_OK);
    ck_assert_int_eq(nn_layout_add(l, "W1", M, C, &b->W1, err), DS_OK);
    ck_assert_int_eq(nn_layout_add(l, "b1", 1, M, &b->b1, err), DS_OK);
    ck_assert_int_eq(nn_layout_add(l, "W2", C, M, &b->W2, err), DS_OK);
    ck_assert_int_eq(nn_layout_add(l, "b2", 1, C, &b->b2, err), DS_OK);
    c->w = alloc_zero(l->size);
    c->grad = alloc_zero(l->size);
    for (int i = 0; i < l->n_tensors; i++) {
        const nn_tensor *t = &l->tensors[i];
        double *x = c->w + t->offset;
        if (strncmp(t->name, "ln", 2) == 0)
            random_layernorm(x, r, C);
        else if (t->rows > 1)
            nn_init_normal(x, r, 1.0 / sqrt(t->cols), (size_t)t->rows * t->cols);
        else
            nn_init_normal(x, r, 0.1, (size_t)t->cols);
    }
    c->in = alloc_normal(r, 1.0, (size_t)T * C);
    c->r = alloc_normal(r, 1.0, (size_t)T * C);
    c->acts_slab = alloc_zero(attn_block_acts_size(b, T));
    c->scratch_slab = alloc_zero(attn_block_scratch_size(b, T));
    attn_block_acts_bind(&c->acts, c->acts_slab, b, T);
    attn_block_scratch_bind(&c->scratch, c->scratch_slab, b, T);
}

static void block_teardown(block_ctx *c)
{
    free(c->w);
    free(c->grad);
    free(c->in);
    free(c->r);
    free(c->acts_slab);
    free(c->scratch_slab);
}

static double block_loss(void *p)
{
    block_ctx *c = p;
    attn_block_forward(&c->b, c->w, c->in, &c->acts, c->T);
    return dot(c->r, c->acts.out, (size_t)c->T * c->b.C);
}

START_TEST(test_block_gradients)
{
    enum { T = 6, C = 8, NH = 2, M = 16 };
    gsl_rng *r = rng_new(8);
    block_ctx c;
    block_setup(&c, r, T, C, NH, M);
    block_loss(&c);
    /* din accumulates: start it at 1 and subtract afterwards */
    double din[T * C];
    for (int i = 0; i < T * C; i++)
        din[i] = 1.0;
    attn_block_backward(&c.b, c.w, c.grad, din, c.r, c.in, &c.acts, &c.scratch, T);
    for (int i = 0; i < T * C; i++)
        din[i] -= 1.0;
    check_grad("block in", c.in, din, T * C, block_loss, &c);
    for (int i = 0; i < c.layout.n_tensors; i++) {
        const nn_tensor *t = &c.layout.tensors[i];
        char what[64];
        snprintf(what, sizeof what, "block %s", t->name);
        if (strcmp(t->name, "bqkv") == 0)
            check_qkv_bias(what, c.w + t->offset, c.grad + t->offset, 1, C, block_loss, &c);
        else
            check_grad(what, c.w + t->offset, c.grad + t->offset, (size_t)t->rows * t->cols,
                       block_loss, &c);
    }
    /* Causal: perturbing the last token leaves the others' outputs bit-identical. */
    block_loss(&c);
    double before[T * C];
    memcpy(before, c.acts.out, sizeof before);
    c.in[(T - 1) * C] += 1.0;
    block_loss(&c);
    ck_assert(memcmp(before, c.acts.out, (T - 1) * C * sizeof *before) == 0);
    ck_assert(memcmp(before + (T - 1) * C, c.acts.out + (T - 1) * C, C * sizeof *before) != 0);
    block_teardown(&c);
    gsl_rng_free(r);
}
END_TEST

/* ---- the encoder: a small world of 7 items over 3 topics ---- */

enum { N_ITEMS = 7, N_TOPICS = 3, MAX_STEPS = 10 };
static const int world_topics[N_ITEMS] = {0, 1, 2, 0, 1, 2, 1};

static env_spec world_spec(void)
{
    return (env_spec){.n_items = N_ITEMS, .n_users = 4, .slate = 3, .n_topics = N_TOPICS,
                      .max_steps = MAX_STEPS, .item_topic = world_topics, .item_price = NULL};
}

/* Newest first, as the engine hands it: 8 entries, more than the context of 6,
 * with every kind, a purchase after its click and a repeated item (3). */
static const history_entry world_history[] = {
    {3, HIST_CLICK},  {-1, HIST_SKIP}, {5, HIST_PURCHASE}, {5, HIST_CLICK},
    {-1, HIST_SKIP},  {3, HIST_CLICK}, {6, HIST_CLICK},    {0, HIST_PURCHASE}};
static const int world_session[] = {2, 4, 6, 0, 4, 5};

static observation world_obs(void)
{
    return (observation){.user = 1, .episode = 5, .step = 2, .time = 30.0,
                         .since_last_visit = 4.5, .history = world_history,
                         .history_len = (int)(sizeof world_history / sizeof *world_history)};
}

static transformer_config small_config(void)
{
    return (transformer_config){.context = 6, .layers = 2, .heads = 2, .width = 8,
                                .mlp_ratio = 2};
}

/* Unit-scale random weights for the gradient checks (see the top of the file). */
static void random_weights(const nn_layout *l, double *w, gsl_rng *r)
{
    for (int i = 0; i < l->n_tensors; i++) {
        const nn_tensor *t = &l->tensors[i];
        double *x = w + t->offset;
        size_t n = (size_t)t->rows * t->cols;
        if (strncmp(t->name, "tf_ln", 5) == 0) { /* [..][2C] chunks: gamma then beta */
            int C = strcmp(t->name, "tf_lnf") == 0 ? t->cols : t->cols / 2;
            for (size_t k = 0; k < n; k += 2 * (size_t)C)
                random_layernorm(x + k, r, C);
        } else if (strstr(t->name, "_W")) { /* tf_*_W, pi_W*, v_W* */
            nn_init_normal(x, r, 1.0 / sqrt(t->cols), n);
        } else if (strcmp(t->name, "tf_item") == 0 || strcmp(t->name, "tf_pos") == 0 ||
                   strcmp(t->name, "tf_kind") == 0 || strcmp(t->name, "tf_item_bias") == 0 ||
                   strcmp(t->name, "E_out") == 0) {
            nn_init_normal(x, r, 0.5, n);
        } else {
            nn_init_normal(x, r, 0.1, n);
        }
    }
}

START_TEST(test_tokens)
{
    /* context 6 keeps the 6 newest entries, oldest first, after the start token:
     *   t: 0 start, 1 click 3, 2 skip, 3 click 5, 4 buy 5, 5 skip, 6 click 3 */
    env_spec spec = world_spec();
    transformer_config cfg = small_config();
    char err[ERR_LEN];
    nn_layout layout;
    nn_layout_init(&layout);
    transformer tf;
    ck_assert_int_eq(transformer_init(&tf, &spec, &cfg, &layout, err), DS_OK);
    observation obs = world_obs();
    transformer_input in;
    ck_assert_int_eq(transformer_tokens(&tf, &obs, &in, err), DS_OK);
    const int items[7] = {-1, 3, -1, 5, 5, -1, 3};
    const int kinds[7] = {TF_KIND_START, TF_KIND_CLICK, TF_KIND_SHOWN, TF_KIND_CLICK,
                          TF_KIND_PURCHASE, TF_KIND_SHOWN, TF_KIND_CLICK};
    ck_assert_int_eq(in.n_tokens, 7);
    for (int t = 0; t < 7; t++) {
        ck_assert_int_eq(in.item[t], items[t]);
        ck_assert_int_eq(in.kind[t], kinds[t]);
    }
    /* next-click targets: the item of the next click token; after the last
     * click, the click that followed the window (here 4), or none (-1) */
    int targets[7];
    transformer_next_click_targets(&in, 4, targets);
    const int want[7] = {3, 5, 5, 3, 3, 3, 4};
    for (int t = 0; t < 7; t++)
        ck_assert_int_eq(targets[t], want[t]);
    transformer_next_click_targets(&in, -1, targets);
    ck_assert_int_eq(targets[6], -1);
    ck_assert_int_eq(targets[5], 3);

    /* no history: the start token alone */
    obs.history_len = 0;
    obs.history = NULL;
    ck_assert_int_eq(transformer_tokens(&tf, &obs, &in, err), DS_OK);
    ck_assert_int_eq(in.n_tokens, 1);
    ck_assert_int_eq(in.kind[0], TF_KIND_START);
    /* errors in the entries used; an entry beyond the context is never read */
    history_entry bad[8];
    memcpy(bad, world_history, sizeof bad);
    obs.history = bad;
    obs.history_len = 8;
    bad[7] = (history_entry){99, 42};
    ck_assert_int_eq(transformer_tokens(&tf, &obs, &in, err), DS_OK);
    bad[2] = (history_entry){N_ITEMS, HIST_PURCHASE};
    ck_assert_int_eq(transformer_tokens(&tf, &obs, &in, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "item 7"));
    bad[2] = (history_entry){-1, HIST_CLICK};
    ck_assert_int_eq(transformer_tokens(&tf, &obs, &in, err), DS_EINPUT);
    bad[2] = (history_entry){2, 7};
    ck_assert_int_eq(transformer_tokens(&tf, &obs, &in, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "kind 7"));
    bad[2] = (history_entry){5, HIST_SKIP}; /* a skip's item is never read */
    ck_assert_int_eq(transformer_tokens(&tf, &obs, &in, err), DS_OK);
    obs.history_len = -1;
    ck_assert_int_eq(transformer_tokens(&tf, &obs, &in, err), DS_EINPUT);
}
END_TEST

START_TEST(test_config_and_init)
{
    env_spec spec = world_spec();
    char err[ERR_LEN];
    transformer_config def;
    transformer_config_defaults(&def);
    ck_assert_int_eq(def.context, 16);
    ck_assert_int_eq(def.layers, 2);
    ck_assert_int_eq(def.heads, 2);
    ck_assert_int_eq(def.width, 32);
    ck_assert_int_eq(def.mlp_ratio, 4);
    /* FLOPs at the defaults, T = 17, C = 32, per layer:
     *   Q K V 6 T C^2 = 104448, O 2 T C^2 = 34816, MLP 16 T C^2 = 278528,
     *   scores and mixing 2 T (T + 1) C = 19584; sum 437376, times L = 2. */
    ck_assert(transformer_flops(&def, 17) == 874752.0);

    /* bad hyperparameters: each names its key, and the layout stays as it was */
    nn_layout layout;
    nn_layout_init(&layout);
    transformer tf;
    const struct {
        transformer_config cfg;
        const char *key;
    } bad[] = {
        {{0, 2, 2, 32, 4}, "'context'"}, {{65, 2, 2, 32, 4}, "'context'"},
        {{16, 0, 2, 32, 4}, "'layers'"}, {{16, 9, 2, 32, 4}, "'layers'"},
        {{16, 2, 3, 32, 4}, "'heads'"},  {{16, 2, 0, 32, 4}, "'heads'"},
        {{16, 2, 2, 0, 4}, "'width'"},   {{16, 2, 2, 32, 0}, "'mlp_ratio'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(transformer_init(&tf, &spec, &bad[i].cfg, &layout, err), DS_EINPUT);
        ck_assert_msg(strstr(err, bad[i].key), "case %zu: %s", i, err);
    }
    env_spec no_topics = spec;
    no_topics.item_topic = NULL;
    ck_assert_int_eq(transformer_init(&tf, &no_topics, &def, &layout, err), DS_EINPUT);
    /* a layout too full for the 15 tensors refuses them all */
    size_t o;
    for (int i = 0; i < NN_MAX_TENSORS - 10; i++) {
        char name[16];
        snprintf(name, sizeof name, "other%d", i);
        ck_assert_int_eq(nn_layout_add(&layout, name, 1, 1, &o, err), DS_OK);
    }
    nn_layout before = layout;
    ck_assert_int_eq(transformer_init(&tf, &spec, &def, &layout, err), DS_EINPUT);
    ck_assert_int_eq(layout.n_tensors, before.n_tensors);
    ck_assert_uint_eq(layout.size, before.size);

    /* the defaults on a 2000-item catalogue: the parameter count of the header,
     * 12 L C^2 + 13 L C + (N + T + 4) C + N + 2 C = 24576 + 832 + 64672 + 2000
     * + 64 = 92144 */
    enum { BIG_N = 2000 };
    static int big_topics[BIG_N];
    env_spec big = spec;
    big.n_items = BIG_N;
    big.item_topic = big_topics;
    nn_layout_init(&layout);
    ck_assert_int_eq(transformer_init(&tf, &big, &def, &layout, err), DS_OK);
    ck_assert_int_eq(layout.n_tensors, 15);
    ck_assert_uint_eq(layout.size, 92144);
    ck_assert_int_eq(tf.n_features, 32 + N_TOPICS + 3);

    /* GPT-2 initialisation: sample sd of the normal tensors within 5% of 0.02
     * (resp. 0.02 / sqrt(2 L) = 0.01 for the residual projections): with n >=
     * 2048 draws the sd estimate has relative sd 1 / sqrt(2 n) <= 1.6%, so 5% is
     * over 3 sigma (and the seed is fixed). Gammas 1, betas and biases 0. Same
     * seed, same weights. */
    nn_params p, q;
    ck_assert_int_eq(nn_params_alloc(&p, layout.size, err), DS_OK);
    ck_assert_int_eq(nn_params_alloc(&q, layout.size, err), DS_OK);
    gsl_rng *r = rng_new(9), *r2 = rng_new(9);
    transformer_init_weights(&tf, p.w, r);
    transformer_init_weights(&tf, q.w, r2);
    ck_assert(memcmp(p.w, q.w, p.n * sizeof *p.w) == 0);
    const struct {
        const char *name;
        double sd;
    } normal[] = {{"tf_item", 0.02}, {"tf_qkv_W", 0.02}, {"tf_fc_W", 0.02},
                  {"tf_attn_W", 0.01}, {"tf_proj_W", 0.01}};
    for (size_t i = 0; i < sizeof normal / sizeof *normal; i++) {
        const nn_tensor *t = nn_layout_find(&layout, normal[i].name);
        size_t n = (size_t)t->rows * t->cols;
        double ss = dot(p.w + t->offset, p.w + t->offset, n);
        double sd = sqrt(ss / n);
        ck_assert_msg(fabs(sd / normal[i].sd - 1) < 0.05, "%s: sd %.4g", normal[i].name, sd);
    }
    for (int l = 0; l < 2; l++)
        for (int c = 0; c < 32; c++) {
            ck_assert(p.w[tf.ln1 + l * 64 + c] == 1.0 && p.w[tf.ln1 + l * 64 + 32 + c] == 0.0);
            ck_assert(p.w[tf.ln2 + l * 64 + c] == 1.0 && p.w[tf.ln2 + l * 64 + 32 + c] == 0.0);
        }
    for (int c = 0; c < 32; c++)
        ck_assert(p.w[tf.lnf + c] == 1.0 && p.w[tf.lnf + 32 + c] == 0.0);
    const char *zeros[] = {"tf_item_bias", "tf_qkv_b", "tf_attn_b", "tf_fc_b", "tf_proj_b"};
    for (size_t i = 0; i < sizeof zeros / sizeof *zeros; i++) {
        const nn_tensor *t = nn_layout_find(&layout, zeros[i]);
        assert_all_zero(zeros[i], p.w + t->offset, (size_t)t->rows * t->cols);
    }
    gsl_rng_free(r);
    gsl_rng_free(r2);
    nn_params_free(&p);
    nn_params_free(&q);

    transformer_work work;
    ck_assert_int_eq(transformer_work_alloc(&work, &tf, err), DS_OK);
    transformer_work_free(&work);
    transformer_work_free(&work); /* a freed workspace is a no-op */
    transformer_work_free(NULL);
}
END_TEST

/* The encoder of the small world with unit-scale weights. */
typedef struct {
    transformer tf;
    nn_layout layout;
    nn_params p;
    transformer_work work;
    transformer_input in;
    observation obs;
    double x[64];       /* [n_features] */
    double r[64];       /* [n_features] the state loss's projection */
    int targets[TRANSFORMER_MAX_TOKENS];
} enc_ctx;

static void enc_setup(enc_ctx *c, unsigned long seed)
{
    char err[ERR_LEN];
    env_spec spec = world_spec();
    transformer_config cfg = small_config();
    memset(c, 0, sizeof *c);
    nn_layout_init(&c->layout);
    ck_assert_int_eq(transformer_init(&c->tf, &spec, &cfg, &c->layout, err), DS_OK);
    ck_assert_int_le(c->tf.n_features, 64);
    ck_assert_int_eq(nn_params_alloc(&c->p, c->layout.size, err), DS_OK);
    ck_assert_int_eq(transformer_work_alloc(&c->work, &c->tf, err), DS_OK);
    gsl_rng *r = rng_new(seed);
    random_weights(&c->layout, c->p.w, r);
    nn_init_normal(c->r, r, 1.0, 64);
    gsl_rng_free(r);
    c->obs = world_obs();
    ck_assert_int_eq(transformer_tokens(&c->tf, &c->obs, &c->in, err), DS_OK);
    transformer_next_click_targets(&c->in, 4, c->targets);
    c->targets[2] = -1; /* one position without a target */
}

static void enc_teardown(enc_ctx *c)
{
    transformer_work_free(&c->work);
    nn_params_free(&c->p);
}

/* L = r . state */
static double state_loss(void *p)
{
    enc_ctx *c = p;
    transformer_refresh(&c->tf, c->p.w, &c->in, &c->work, c->x);
    return dot(c->r, c->x + c->tf.at_state, (size_t)c->tf.C);
}

static double next_click_loss(void *p)
{
    enc_ctx *c = p;
    transformer_forward(&c->tf, c->p.w, &c->in, &c->work);
    return transformer_next_click_loss(&c->tf, c->p.w, NULL, c->targets, 1.0, &c->work, NULL);
}

static void check_every_tensor(enc_ctx *c, const char *what, loss_fn f, const char *zero_one)
{
    for (int i = 0; i < c->layout.n_tensors; i++) {
        const nn_tensor *t = &c->layout.tensors[i];
        size_t n = (size_t)t->rows * t->cols;
        char name[80];
        snprintf(name, sizeof name, "%s %s", what, t->name);
        if (zero_one && strcmp(t->name, zero_one) == 0)
            assert_all_zero(name, c->p.grad + t->offset, n);
        else if (strcmp(t->name, "tf_qkv_b") == 0)
            check_qkv_bias(name, c->p.w + t->offset, c->p.grad + t->offset, t->rows, c->tf.C,
                           f, c);
        else
            check_grad(name, c->p.w + t->offset, c->p.grad + t->offset, n, f, c);
    }
}

START_TEST(test_encoder_gradients)
{
    /* The state (last hidden row) w.r.t. every tensor; the output bias has no
     * part in it. Every position, kind and block row is used (T = T_max). */
    enc_ctx c;
    enc_setup(&c, 10);
    ck_assert_int_eq(c.in.n_tokens, c.tf.T_max);
    state_loss(&c);
    double dx[64] = {0};
    memcpy(dx + c.tf.at_state, c.r, (size_t)c.tf.C * sizeof *dx);
    dx[c.tf.at_scalars] = 5.0; /* groups without parameters are ignored */
    transformer_state_grad(&c.tf, dx, &c.work);
    transformer_backward(&c.tf, c.p.w, c.p.grad, &c.in, &c.work);
    check_every_tensor(&c, "state", state_loss, "tf_item_bias");
    /* only the items of the tokens (0 is beyond the context) get a gradient */
    for (int item = 0; item < N_ITEMS; item++) {
        int used = item == 3 || item == 5;
        const double *g = c.p.grad + c.tf.item_emb + (size_t)item * c.tf.C;
        if (!used)
            assert_all_zero("unused item row", g, (size_t)c.tf.C);
    }
    enc_teardown(&c);
}
END_TEST

START_TEST(test_next_click_gradients)
{
    /* The full next-click loss (6 positions with targets, summed) w.r.t. every
     * tensor, the tied item table through both its input and output uses, with
     * the scale applied to every gradient. */
    enc_ctx c;
    enc_setup(&c, 11);
    next_click_loss(&c);
    int n = 0;
    double loss = transformer_next_click_loss(&c.tf, c.p.w, c.p.grad, c.targets, 1.0, &c.work, &n);
    ck_assert_int_eq(n, 6);
    ck_assert(loss > 0 && isfinite(loss));
    transformer_backward(&c.tf, c.p.w, c.p.grad, &c.in, &c.work);
    check_every_tensor(&c, "next-click", next_click_loss, NULL);

    /* scale 0.25 gives a quarter of the gradient, to rounding */
    double *full = malloc(c.p.n * sizeof *full);
    ck_assert_ptr_nonnull(full);
    memcpy(full, c.p.grad, c.p.n * sizeof *full);
    nn_params_zero_grad(&c.p);
    next_click_loss(&c);
    transformer_next_click_loss(&c.tf, c.p.w, c.p.grad, c.targets, 0.25, &c.work, NULL);
    transformer_backward(&c.tf, c.p.w, c.p.grad, &c.in, &c.work);
    for (size_t i = 0; i < c.p.n; i++)
        ck_assert(fabs(c.p.grad[i] - 0.25 * full[i]) <= 1e-12 * (1 + fabs(full[i])));
    free(full);
    enc_teardown(&c);
}
END_TEST

START_TEST(test_next_click_known_answer)
{
    /* A zero item table and bias make every logit 0: each target costs log N. */
    enc_ctx c;
    enc_setup(&c, 12);
    const nn_tensor *e = nn_layout_find(&c.layout, "tf_item");
    memset(c.p.w + e->offset, 0, (size_t)e->rows * e->cols * sizeof *c.p.w);
    memset(c.p.w + c.tf.item_bias, 0, N_ITEMS * sizeof *c.p.w);
    int n = 0;
    transformer_forward(&c.tf, c.p.w, &c.in, &c.work);
    double loss = transformer_next_click_loss(&c.tf, c.p.w, NULL, c.targets, 1.0, &c.work, &n);
    ck_assert_int_eq(n, 6);
    ck_assert(fabs(loss - 6 * log((double)N_ITEMS)) < 1e-13);
    /* With a bias b = 2 on item 3 only, a position whose target is 3 costs
     * log(6 + e^b) - b, any other log(6 + e^b); the targets are 3 at four
     * positions (t = 0, 3, 4, 5), 5 at t = 1 and 4 at t = 6 (t = 2 has none). */
    c.p.w[c.tf.item_bias + 3] = 2.0;
    loss = transformer_next_click_loss(&c.tf, c.p.w, NULL, c.targets, 1.0, &c.work, &n);
    double z = log(6.0 + exp(2.0));
    ck_assert(fabs(loss - (4 * (z - 2.0) + 2 * z)) < 1e-13);
    enc_teardown(&c);
}
END_TEST

START_TEST(test_encoder_causal)
{
    /* Changing a later token (its item, or its kind) leaves every earlier hidden
     * state bit-identical; a prefix of the tokens gives the same hidden states
     * as the full sequence (to rounding: BLAS may block a shorter product
     * differently). */
    enc_ctx c;
    enc_setup(&c, 13);
    int T = c.in.n_tokens, C = c.tf.C;
    transformer_forward(&c.tf, c.p.w, &c.in, &c.work);
    double full[TRANSFORMER_MAX_TOKENS * 8];
    ck_assert_int_eq(C, 8);
    memcpy(full, c.work.hidden, (size_t)T * C * sizeof *full);
    for (int s = 1; s < T; s++) {
        transformer_input changed = c.in;
        changed.item[s] = (changed.item[s] + 2) % N_ITEMS;
        changed.kind[s] = TF_KIND_PURCHASE;
        transformer_forward(&c.tf, c.p.w, &changed, &c.work);
        ck_assert_msg(memcmp(c.work.hidden, full, (size_t)s * C * sizeof *full) == 0,
                      "token %d changed an earlier hidden state", s);
        ck_assert(memcmp(c.work.hidden + (size_t)s * C, full + (size_t)s * C,
                         (size_t)C * sizeof *full) != 0);
    }
    for (int len = 1; len < T; len++) {
        transformer_input prefix = c.in;
        prefix.n_tokens = len;
        transformer_forward(&c.tf, c.p.w, &prefix, &c.work);
        for (int i = 0; i < len * C; i++)
            ck_assert_msg(fabs(c.work.hidden[i] - full[i]) < 1e-13, "prefix %d element %d", len,
                          i);
    }
    enc_teardown(&c);
}
END_TEST

START_TEST(test_features)
{
    /* x = [state | session topics | scalars]; the last two groups equal the
     * history encoder's parameter-free groups on the same observation. */
    enc_ctx c;
    enc_setup(&c, 14);
    char err[ERR_LEN];
    env_spec spec = world_spec();
    nn_layout hl;
    nn_layout_init(&hl);
    encoder enc;
    ck_assert_int_eq(encoder_init(&enc, &spec, 2, 0.8, &hl, err), DS_OK);
    nn_params hp;
    ck_assert_int_eq(nn_params_alloc(&hp, hl.size, err), DS_OK);
    double hx[64];
    const int n_session = (int)(sizeof world_session / sizeof *world_session);
    observation obs = world_obs();
    for (int first = 0; first < 2; first++) {
        obs.since_last_visit = first ? INFINITY : 4.5;
        transformer_input in;
        ck_assert_int_eq(transformer_features(&c.tf, c.p.w, &obs, world_session, n_session,
                                              c.x, &in, &c.work, err),
                         DS_OK);
        ck_assert_int_eq(encoder_features(&enc, hp.w, &obs, world_session, n_session, hx,
                                          NULL, err),
                         DS_OK);
        for (int i = 0; i < N_TOPICS + 3; i++)
            ck_assert_msg(c.x[c.tf.at_session_topics + i] == hx[enc.at_session_topics + i],
                          "context feature %d", i);
        ck_assert(memcmp(c.x + c.tf.at_state,
                         c.work.hidden + (size_t)(in.n_tokens - 1) * c.tf.C,
                         (size_t)c.tf.C * sizeof *c.x) == 0);
    }
    /* input may be NULL; errors */
    ck_assert_int_eq(
        transformer_features(&c.tf, c.p.w, &obs, NULL, 0, c.x, NULL, &c.work, err), DS_OK);
    const int bad_session[2] = {1, N_ITEMS};
    ck_assert_int_eq(
        transformer_features(&c.tf, c.p.w, &obs, bad_session, 2, c.x, NULL, &c.work, err),
        DS_EINPUT);
    obs.since_last_visit = NAN;
    ck_assert_int_eq(transformer_features(&c.tf, c.p.w, &obs, NULL, 0, c.x, NULL, &c.work, err),
                     DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "'since_last_visit'"));
    nn_params_free(&hp);
    enc_teardown(&c);
}
END_TEST

/* ---- the encoder feeding the policy network ---- */

typedef struct {
    enc_ctx e;
    policy_net net;
    policy_work pw;
    double dx[64];
} pol_ctx;

/* L = log softmax(logits)[2] + 0.5 V, through features, policy and value. */
static double policy_loss(void *p)
{
    pol_ctx *c = p;
    transformer_refresh(&c->e.tf, c->e.p.w, &c->e.in, &c->e.work, c->e.x);
    double v;
    policy_forward(&c->net, c->e.p.w, c->e.x, NULL, N_ITEMS, &c->pw, &v);
    double logp[N_ITEMS];
    nn_log_softmax_forward(logp, c->pw.logits, N_ITEMS);
    return logp[2] + 0.5 * v;
}

START_TEST(test_policy_on_transformer)
{
    pol_ctx c;
    enc_ctx *e = &c.e;
    char err[ERR_LEN];
    env_spec spec = world_spec();
    transformer_config cfg = small_config();
    memset(&c, 0, sizeof c);
    nn_layout_init(&e->layout);
    ck_assert_int_eq(transformer_init(&e->tf, &spec, &cfg, &e->layout, err), DS_OK);
    ck_assert_int_eq(policy_init(&c.net, N_ITEMS, e->tf.n_features, 6, 4, 1, &e->layout, err),
                     DS_OK);
    ck_assert_int_le(e->layout.n_tensors, NN_MAX_TENSORS);
    ck_assert_int_eq(nn_params_alloc(&e->p, e->layout.size, err), DS_OK);
    ck_assert_int_eq(transformer_work_alloc(&e->work, &e->tf, err), DS_OK);
    ck_assert_int_eq(policy_work_alloc(&c.pw, &c.net, err), DS_OK);
    gsl_rng *r = rng_new(15);
    random_weights(&e->layout, e->p.w, r);
    gsl_rng_free(r);
    e->obs = world_obs();
    const int n_session = (int)(sizeof world_session / sizeof *world_session);
    ck_assert_int_eq(transformer_features(&e->tf, e->p.w, &e->obs, world_session, n_session,
                                          e->x, &e->in, &e->work, err),
                     DS_OK);

    policy_loss(&c);
    double logp[N_ITEMS], g[N_ITEMS] = {0}, dlogits[N_ITEMS] = {0};
    nn_log_softmax_forward(logp, c.pw.logits, N_ITEMS);
    g[2] = 1.0;
    nn_log_softmax_backward(dlogits, g, logp, N_ITEMS);
    policy_backward(&c.net, e->p.w, e->p.grad, e->x, NULL, N_ITEMS, dlogits, 0.5, c.dx, &c.pw);
    transformer_state_grad(&e->tf, c.dx, &e->work);
    transformer_backward(&e->tf, e->p.w, e->p.grad, &e->in, &e->work);
    check_every_tensor(e, "policy", policy_loss, "tf_item_bias");
    policy_work_free(&c.pw);
    enc_teardown(e);
}
END_TEST

static Suite *attention_suite(void)
{
    Suite *s = suite_create("attention");
    TCase *pieces = tcase_create("pieces");
    tcase_add_test(pieces, test_layernorm_known_answer);
    tcase_add_test(pieces, test_layernorm_gradients);
    tcase_add_test(pieces, test_attention_one_token);
    tcase_add_test(pieces, test_attention_uniform_is_running_mean);
    tcase_add_test(pieces, test_attention_causal_mask);
    tcase_add_test(pieces, test_attention_gradients);
    tcase_add_test(pieces, test_gelu);
    tcase_add_test(pieces, test_mlp_gradients);
    tcase_add_test(pieces, test_block_gradients);
    suite_add_tcase(s, pieces);
    TCase *enc = tcase_create("encoder");
    tcase_add_test(enc, test_tokens);
    tcase_add_test(enc, test_config_and_init);
    tcase_add_test(enc, test_encoder_gradients);
    tcase_add_test(enc, test_next_click_gradients);
    tcase_add_test(enc, test_next_click_known_answer);
    tcase_add_test(enc, test_encoder_causal);
    tcase_add_test(enc, test_features);
    tcase_add_test(enc, test_policy_on_transformer);
    suite_add_tcase(s, enc);
    return s;
}

int main(void)
{
    gsl_set_error_handler_off();
    SRunner *runner = srunner_create(attention_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
