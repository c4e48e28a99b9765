#include "attention.h"

#include "nn.h"

#include <math.h>
#include <string.h>

static void zero(double *x, size_t n) { memset(x, 0, n * sizeof *x); }

/* ---- layer norm ---- */

void attn_layernorm_forward(double *out, double *mean, double *rstd, const double *in,
                            const double *gamma, const double *beta, int T, int C)
{
    for (int t = 0; t < T; t++) {
        const double *x = in + (size_t)t * C;
        double *o = out + (size_t)t * C;
        double m = 0.0;
        for (int c = 0; c < C; c++)
            m += x[c];
        m /= C;
        double var = 0.0; /* two passes: no cancellation when |mean| >> sd */
        for (int c = 0; c < C; c++)
            var += (x[c] - m) * (x[c] - m);
        var /= C;
        double s = 1.0 / sqrt(var + ATTN_LN_EPS);
        for (int c = 0; c < C; c++)
            o[c] = (x[c] - m) * s * gamma[c] + beta[c];
        mean[t] = m;
        rstd[t] = s;
    }
}

/* With n = (x - mean) rstd and g = dout * gamma, the gradient through the
 * normalisation is rstd (g - mean(g) - n mean(g n)) (the mean and the variance
 * both depend on every x of the row). */
void attn_layernorm_backward(double *din, double *dgamma, double *dbeta, const double *dout,
                             const double *in, const double *gamma, const double *mean,
                             const double *rstd, int T, int C)
{
    for (int t = 0; t < T; t++) {
        const double *x = in + (size_t)t * C, *d = dout + (size_t)t * C;
        double m = mean[t], s = rstd[t];
        double g_mean = 0.0, gn_mean = 0.0;
        for (int c = 0; c < C; c++) {
            double n = (x[c] - m) * s, g = d[c] * gamma[c];
            g_mean += g;
            gn_mean += g * n;
            if (dgamma)
                dgamma[c] += d[c] * n;
            if (dbeta)
                dbeta[c] += d[c];
        }
        g_mean /= C;
        gn_mean /= C;
        if (!din)
            continue;
        double *dx = din + (size_t)t * C;
        for (int c = 0; c < C; c++) {
            double n = (x[c] - m) * s, g = d[c] * gamma[c];
            dx[c] += s * (g - g_mean - n * gn_mean);
        }
    }
}

/* ---- causal attention ---- */

void attn_causal_query(double *y, double *att, size_t head_stride, const double *qkv, int t,
                       int C, int NH)
{
    int hs = C / NH, C3 = 3 * C;
    double scale = 1.0 / sqrt((double)hs);
    for (int h = 0; h < NH; h++) {
        const double *q = qkv + (size_t)t * C3 + h * hs;
        double *a = att + (size_t)h * head_stride;
        double max = -INFINITY;
        for (int t2 = 0; t2 <= t; t2++) {
            const double *k = qkv + (size_t)t2 * C3 + C + h * hs;
            double s = 0.0;
            for (int i = 0; i < hs; i++)
                s += q[i] * k[i];
            a[t2] = s * scale;
            if (a[t2] > max)
                max = a[t2];
        }
        double sum = 0.0;
        for (int t2 = 0; t2 <= t; t2++) {
            a[t2] = exp(a[t2] - max);
            sum += a[t2];
        }
        for (int t2 = 0; t2 <= t; t2++)
            a[t2] /= sum;
        double *out = y + h * hs;
        zero(out, (size_t)hs);
        for (int t2 = 0; t2 <= t; t2++) {
            const double *v = qkv + (size_t)t2 * C3 + 2 * C + h * hs;
            for (int i = 0; i < hs; i++)
                out[i] += a[t2] * v[i];
        }
    }
}

void attn_causal_forward(double *y, double *att, const double *qkv, int T, int C, int NH)
{
    size_t TT = (size_t)T * (size_t)T;
    for (int t = 0; t < T; t++) {
        double *row = att + (size_t)t * T; /* head h's row t is at row + h T T */
        attn_causal_query(y + (size_t)t * C, row, TT, qkv, t, C, NH);
        for (int h = 0; h < NH; h++)
            zero(row + h * TT + t + 1, (size_t)(T - t - 1));
    }
}

/* For one head and query t, with datt_t2 = dy_t . v_t2:
 *   dv_t2 += att_t2 dy_t,  dpre_t2 = att_t2 (datt_t2 - sum_j att_j datt_j)
 * (the softmax's backward), then dq_t += scale sum dpre_t2 k_t2 and
 * dk_t2 += scale dpre_t2 q_t. */
void attn_causal_backward(double *dqkv, double *row, const double *dy, const double *att,
                          const double *qkv, int T, int C, int NH)
{
    int hs = C / NH, C3 = 3 * C;
    double scale = 1.0 / sqrt((double)hs);
    for (int h = 0; h < NH; h++) {
        for (int t = 0; t < T; t++) {
            const double *a = att + ((size_t)h * T + t) * T;
            const double *g = dy + (size_t)t * C + h * hs;
            double dot = 0.0;
            for (int t2 = 0; t2 <= t; t2++) {
                const double *v = qkv + (size_t)t2 * C3 + 2 * C + h * hs;
                double *dv = dqkv + (size_t)t2 * C3 + 2 * C + h * hs;
                double s = 0.0;
                for (int i = 0; i < hs; i++) {
                    s += g[i] * v[i];
                    dv[i] += a[t2] * g[i];
                }
                row[t2] = s;
                dot += a[t2] * s;
            }
            const double *q = qkv + (size_t)t * C3 + h * hs;
            double *dq = dqkv + (size_t)t * C3 + h * hs;
            for (int t2 = 0; t2 <= t; t2++) {
                double dpre = a[t2] * (row[t2] - dot) * scale;
                const double *k = qkv + (size_t)t2 * C3 + C + h * hs;
                double *dk = dqkv + (size_t)t2 * C3 + C + h * hs;
                for (int i = 0; i < hs; i++) {
                    dq[i] += dpre * k[i];
                    dk[i] += dpre * q[i];
                }
            }
        }
    }
}

/* ---- multi-head self-attention ---- */

void attn_mha_forward(double *out, double *qkv, double *att, double *y, const double *in,
                      const double *Wqkv, const double *bqkv, const double *Wo,
                      const double *bo, int T, int C, int NH)
{
    nn_dense_forward(qkv, in, Wqkv, bqkv, T, C, 3 * C);
    attn_causal_forward(y, att, qkv, T, C, NH);
    nn_dense_forward(out, y, Wo, bo, T, C, C);
}

void attn_mha_backward(double *din, double *dWqkv, double *dbqkv, double *dWo, double *dbo,
                       double *dy, double *dqkv, double *row, const double *dout,
                       const double *qkv, const double *att, const double *y,
                       const double *in, const double *Wqkv, const double *Wo, int T,
                       int C, int NH)
{
    zero(dy, (size_t)T * C);
    nn_dense_backward(dy, dWo, dbo, dout, y, Wo, T, C, C);
    zero(dqkv, (size_t)T * 3 * C);
    attn_causal_backward(dqkv, row, dy, att, qkv, T, C, NH);
    nn_dense_backward(din, dWqkv, dbqkv, dqkv, in, Wqkv, T, C, 3 * C);
}

/* ---- GELU and MLP ---- */

static const double INV_SQRT2 = 0.70710678118654752440;    /* 1 / sqrt(2) */
static const double INV_SQRT_2PI = 0.39894228040143267794; /* 1 / sqrt(2 pi) */

/* Phi(x) as erfc(-x / sqrt 2) / 2: accurate in the left tail, where
 * (1 + erf) would cancel. */
static double normal_cdf(double x) { return 0.5 * erfc(-x * INV_SQRT2); }

void attn_gelu_forward(double *out, const double *in, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = in[i] * normal_cdf(in[i]);
}

void attn_gelu_backward(double *din, const double *dout, const double *in, int n)
{
    for (int i = 0; i < n; i++) {
        double x = in[i];
        din[i] += dout[i] * (normal_cdf(x) + x * INV_SQRT_2PI * exp(-0.5 * x * x));
    }
}

void attn_mlp_forward(double *out, double *fc, double *act, const double *in,
                      const double *W1, const double *b1, const double *W2, const double *b2,
                      int T, int C, int M)
{
    nn_dense_forward(fc, in, W1, b1, T, C, M);
    attn_gelu_forward(act, fc, T * M);
    nn_dense_forward(out, act, W2, b2, T, M, C);
}

void attn_mlp_backward(double *din, double *dW1, double *db1, double *dW2, double *db2,
                       double *dact, double *dfc, const double *dout, const double *fc,
                       const double *act, const double *in, const double *W1,
                       const double *W2, int T, int C, int M)
{
    zero(dact, (size_t)T * M);
    nn_dense_backward(dact, dW2, db2, dout, act, W2, T, M, C);
    zero(dfc, (size_t)T * M);
    attn_gelu_backward(dfc, dact, fc, T * M);
    nn_dense_backward(din, dW1, db1, dfc, in, W1, T, C, M);
}

/* ---- the block ---- */

size_t attn_block_acts_size(const attn_block *b, int T_max)
{
    size_t T = (size_t)T_max, C = (size_t)b->C, M = (size_t)b->M, NH = (size_t)b->NH;
    /* ln1 qkv y attn x1 ln2 mlp out; the norms' statistics; att; fc, fc_act */
    return T * C * 10 + 4 * T + NH * T * T + 2 * T * M;
}

size_t attn_block_scratch_size(const attn_block *b, int T_max)
{
    size_t T = (size_t)T_max, C = (size_t)b->C, M = (size_t)b->M;
    return T * C * 6 + 2 * T * M + T; /* dx1 dln dy (3C) dqkv; dact dfc; row */
}

void attn_block_acts_bind(attn_block_acts *a, double *slab, const attn_block *b, int T_max)
{
    size_t T = (size_t)T_max, C = (size_t)b->C, M = (size_t)b->M, NH = (size_t)b->NH;
    double *p = slab;
    a->ln1 = p, p += T * C;
    a->ln1_mean = p, p += T;
    a->ln1_rstd = p, p += T;
    a->qkv = p, p += 3 * T * C;
    a->att = p, p += NH * T * T;
    a->y = p, p += T * C;
    a->attn = p, p += T * C;
    a->x1 = p, p += T * C;
    a->ln2 = p, p += T * C;
    a->ln2_mean = p, p += T;
    a->ln2_rstd = p, p += T;
    a->fc = p, p += T * M;
    a->fc_act = p, p += T * M;
    a->mlp = p, p += T * C;
    a->out = p;
}

void attn_block_scratch_bind(attn_block_scratch *s, double *slab, const attn_block *b,
                             int T_max)
{
    size_t T = (size_t)T_max, C = (size_t)b->C, M = (size_t)b->M;
    double *p = slab;
    s->dx1 = p, p += T * C;
    s->dln = p, p += T * C;
    s->dy = p, p += T * C;
    s->dqkv = p, p += 3 * T * C;
    s->dact = p, p += T * M;
    s->dfc = p, p += T * M;
    s->row = p;
}

void attn_block_forward(const attn_block *b, const double *w, const double *in,
                        attn_block_acts *acts, int T)
{
    int C = b->C, M = b->M;
    size_t n = (size_t)T * C;
    attn_layernorm_forward(acts->ln1, acts->ln1_mean, acts->ln1_rstd, in, w + b->ln1,
                           w + b->ln1 + C, T, C);
    attn_mha_forward(acts->attn, acts->qkv, acts->att, acts->y, acts->ln1, w + b->Wqkv,
                     w + b->bqkv, w + b->Wo, w + b->bo, T, C, b->NH);
    for (size_t i = 0; i < n; i++)
        acts->x1[i] = in[i] + acts->attn[i];
    attn_layernorm_forward(acts->ln2, acts->ln2_mean, acts->ln2_rstd, acts->x1, w + b->ln2,
                           w + b->ln2 + C, T, C);
    attn_mlp_forward(acts->mlp, acts->fc, acts->fc_act, acts->ln2, w + b->W1, w + b->b1,
                     w + b->W2, w + b->b2, T, C, M);
    for (size_t i = 0; i < n; i++)
        acts->out[i] = acts->x1[i] + acts->mlp[i];
}

/* The residual stream carries dout through unchanged; each branch adds its own
 * term: dx1 = dout + (through ln2 and the MLP), din += dx1 + (through ln1 and
 * attention). */
void attn_block_backward(const attn_block *b, const double *w, double *grad, double *din,
                         const double *dout, const double *in, const attn_block_acts *acts,
                         attn_block_scratch *s, int T)
{
    int C = b->C, M = b->M;
    size_t n = (size_t)T * C;
    memcpy(s->dx1, dout, n * sizeof *dout);
    zero(s->dln, n);
    attn_mlp_backward(s->dln, grad + b->W1, grad + b->b1, grad + b->W2, grad + b->b2, s->dact,
                      s->dfc, dout, acts->fc, acts->fc_act, acts->ln2, w + b->W1, w + b->W2,
                      T, C, M);
    attn_layernorm_backward(s->dx1, grad + b->ln2, grad + b->ln2 + C, s->dln, acts->x1,
                            w + b->ln2, acts->ln2_mean, acts->ln2_rstd, T, C);
    for (size_t i = 0; i < n; i++)
        din[i] += s->dx1[i];
    zero(s->dln, n);
    attn_mha_backward(s->dln, grad + b->Wqkv, grad + b->bqkv, grad + b->Wo, grad + b->bo,
                      s->dy, s->dqkv, s->row, s->dx1, acts->qkv, acts->att, acts->y,
                      acts->ln1, w + b->Wqkv, w + b->Wo, T, C, b->NH);
    attn_layernorm_backward(din, grad + b->ln1, grad + b->ln1 + C, s->dln, in, w + b->ln1,
                            acts->ln1_mean, acts->ln1_rstd, T, C);
}
