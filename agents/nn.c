#include "nn.h"

#include "../sim/common.h"
#include "../sim/vecmath.h"

#include <float.h>
#include <gsl/gsl_cblas.h>
#include <gsl/gsl_randist.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- parameter slabs ---- */

void nn_layout_init(nn_layout *l) { memset(l, 0, sizeof *l); }

int nn_layout_add(nn_layout *l, const char *name, int rows, int cols, size_t *offset,
                  char *err)
{
    if (!name || !name[0] || strlen(name) >= NN_NAME_LEN)
        return err_set(err, DS_EINPUT, "tensor name '%s' is empty or longer than %d",
                       name ? name : "", NN_NAME_LEN - 1);
    if (rows < 1 || cols < 1)
        return err_set(err, DS_EINPUT, "tensor '%s' has shape [%d][%d]", name, rows, cols);
    if (nn_layout_find(l, name))
        return err_set(err, DS_EINPUT, "tensor '%s' is already in the layout", name);
    if (l->n_tensors >= NN_MAX_TENSORS)
        return err_set(err, DS_EINPUT, "layout is full (%d tensors) at '%s'",
                       NN_MAX_TENSORS, name);
    size_t count = (size_t)rows * (size_t)cols;
    size_t limit = SIZE_MAX / sizeof(double) / 4; /* four slabs must fit */
    if (count > limit || l->size > limit - count)
        return err_set(err, DS_EINPUT, "tensor '%s' makes the layout too large", name);
    nn_tensor *t = &l->tensors[l->n_tensors++];
    memcpy(t->name, name, strlen(name) + 1);
    t->offset = l->size;
    t->rows = rows;
    t->cols = cols;
    l->size += count;
    *offset = t->offset;
    return DS_OK;
}

const nn_tensor *nn_layout_find(const nn_layout *l, const char *name)
{
    for (int i = 0; i < l->n_tensors; i++)
        if (strcmp(l->tensors[i].name, name) == 0)
            return &l->tensors[i];
    return NULL;
}

int nn_params_alloc(nn_params *p, size_t n, char *err)
{
    memset(p, 0, sizeof *p);
    if (n < 1 || n > SIZE_MAX / sizeof(double) / 4)
        return err_set(err, DS_EINPUT, "parameter slab of %zu doubles", n);
    double *slab = calloc(4 * n, sizeof *slab);
    if (!slab)
        return err_set(err, DS_ENOMEM, "out of memory for %zu parameters", n);
    p->w = slab;
    p->grad = slab + n;
    p->m = slab + 2 * n;
    p->v = slab + 3 * n;
    p->n = n;
    return DS_OK;
}

void nn_params_free(nn_params *p)
{
    if (!p)
        return;
    free(p->w); /* the start of the single allocation */
    memset(p, 0, sizeof *p);
}

void nn_params_zero_grad(nn_params *p)
{
    if (p->grad)
        memset(p->grad, 0, p->n * sizeof *p->grad);
}

/* ---- initialisers ---- */

void nn_init_uniform(double *w, gsl_rng *r, double a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        w[i] = a * (2.0 * gsl_rng_uniform(r) - 1.0);
}

void nn_init_normal(double *w, gsl_rng *r, double sd, size_t n)
{
    for (size_t i = 0; i < n; i++)
        w[i] = gsl_ran_gaussian(r, sd);
}

void nn_init_xavier(double *w, gsl_rng *r, int rows, int cols)
{
    nn_init_uniform(w, r, sqrt(6.0 / (rows + cols)), (size_t)rows * (size_t)cols);
}

void nn_init_he(double *w, gsl_rng *r, int rows, int cols)
{
    nn_init_normal(w, r, sqrt(2.0 / cols), (size_t)rows * (size_t)cols);
}

void nn_init_orthogonal(double *w, gsl_rng *r, double gain, int rows, int cols)
{
    /* The vectors to orthonormalise: the rows (contiguous) when rows <= cols,
     * else the columns (stride cols). Gram-Schmidt of Gaussian vectors is QR with
     * a positive diagonal in R, whose Q is Haar-distributed. */
    int count = rows <= cols ? rows : cols;
    int len = rows <= cols ? cols : rows;
    int stride = rows <= cols ? 1 : cols;
    int step = rows <= cols ? cols : 1; /* from one vector to the next */
    nn_init_normal(w, r, 1.0, (size_t)rows * (size_t)cols);
    for (int j = 0; j < count; j++) {
        double *vj = w + (size_t)j * step;
        for (;;) {
            /* Modified Gram-Schmidt, twice ("twice is enough") for orthogonality
             * to rounding level. */
            for (int pass = 0; pass < 2; pass++)
                for (int i = 0; i < j; i++) {
                    const double *vi = w + (size_t)i * step;
                    double dot = cblas_ddot(len, vi, stride, vj, stride);
                    cblas_daxpy(len, -dot, vi, stride, vj, stride);
                }
            double norm = cblas_dnrm2(len, vj, stride);
            if (norm > 1e-10) {
                cblas_dscal(len, 1.0 / norm, vj, stride);
                break;
            }
            for (int e = 0; e < len; e++) /* probability zero: draw again */
                vj[(size_t)e * stride] = gsl_ran_gaussian(r, 1.0);
        }
    }
    cblas_dscal(rows * cols, gain, w, 1);
}

/* ---- dense layer ---- */

void nn_dense_forward(double *out, const double *in, const double *W, const double *b,
                      int B, int I, int O)
{
    if (B < 1 || I < 1 || O < 1)
        return;
    if (B == 1) { /* one state: the vecmath row kernels (see nn_items_forward) */
        vm_rows_dot(out, W, in, O, I);
        if (b)
            vm_add_array(out, b, O);
        return;
    }
    double beta = 0.0;
    if (b) {
        for (int r = 0; r < B; r++)
            memcpy(out + (size_t)r * O, b, (size_t)O * sizeof *out);
        beta = 1.0;
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, O, I, 1.0, in, I, W, I, beta, out,
                O);
}

void nn_dense_backward(double *din, double *dW, double *db, const double *dout,
                       const double *in, const double *W, int B, int I, int O)
{
    if (B < 1 || I < 1 || O < 1)
        return;
    if (B == 1) {
        if (din && dW) {
            vm_rows_backward(din, dW, db, W, dout, in, O, I);
            return;
        }
        if (dW)
            vm_rows_axpy(dW, dout, in, O, I);
        if (db)
            vm_add_array(db, dout, O);
        if (din)
            vm_rows_weighted_sum(din, W, dout, O, I);
        return;
    }
    if (dW)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, O, I, B, 1.0, dout, O, in, I, 1.0,
                    dW, I);
    if (db)
        for (int r = 0; r < B; r++)
            vm_add_array(db, dout + (size_t)r * O, O);
    if (din)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, I, O, 1.0, dout, O, W, I, 1.0,
                    din, I);
}

/* ---- activations ---- */

/* tanh(x) = sign(x) (1 - e) / (1 + e), e = e^{-2|x|} from the vector exponential of
 * sim/vecmath.h, in blocks of TANH_BLOCK: within a few 1e-16 of tanh (absolute; the
 * rounding of a pre-activation W x + b is at least as large), several times faster
 * than the C library's, the same bits on every CPU, and the same as the int8
 * snapshot's (agents/quant.c). */
#define TANH_BLOCK 64

/* out[j] = sign(in[j]) (1 - e[j]) / (1 + e[j]) for j < m; out may be in. Four at a
 * time, written out so that the compiler pairs them into vector operations. */
static void tanh_finish(double *out, const double *in, const double *e, int m)
{
    int j = 0;
    for (; j + 4 <= m; j += 4) {
        double x0 = in[j], x1 = in[j + 1], x2 = in[j + 2], x3 = in[j + 3];
        out[j] = copysign((1.0 - e[j]) / (1.0 + e[j]), x0);
        out[j + 1] = copysign((1.0 - e[j + 1]) / (1.0 + e[j + 1]), x1);
        out[j + 2] = copysign((1.0 - e[j + 2]) / (1.0 + e[j + 2]), x2);
        out[j + 3] = copysign((1.0 - e[j + 3]) / (1.0 + e[j + 3]), x3);
    }
    for (; j < m; j++)
        out[j] = copysign((1.0 - e[j]) / (1.0 + e[j]), in[j]);
}

void nn_tanh_forward(double *out, const double *in, int n)
{
    double e[TANH_BLOCK];
    for (int i = 0; i < n; i += TANH_BLOCK) {
        int m = n - i < TANH_BLOCK ? n - i : TANH_BLOCK;
        for (int j = 0; j < m; j++)
            e[j] = -2.0 * fabs(in[i + j]);
        vm_exp_array(e, e, m);
        tanh_finish(out + i, in + i, e, m);
    }
}

void nn_tanh_backward(double *din, const double *dout, const double *out, int n)
{
    for (int i = 0; i < n; i++)
        din[i] += dout[i] * (1.0 - out[i] * out[i]);
}

void nn_relu_forward(double *out, const double *in, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = in[i] > 0.0 ? in[i] : 0.0;
}

void nn_relu_backward(double *din, const double *dout, const double *out, int n)
{
    for (int i = 0; i < n; i++)
        if (out[i] > 0.0)
            din[i] += dout[i];
}

/* ---- item scoring ---- */

void nn_items_forward(double *logits, const double *E, const double *bias,
                      const double *h, const int *cand, int n, int d)
{
    if (n < 1 || d < 1)
        return;
    /* sim/vecmath.h row kernels rather than BLAS level 2: for a catalogue of short
     * rows (d = 16) a dgemv or dger is thousands of tiny calls inside OpenBLAS, and
     * these are the same on every CPU. */
    if (!cand) {
        vm_rows_dot(logits, E, h, n, d);
        if (bias)
            vm_add_array(logits, bias, n);
        return;
    }
    vm_rows_dot_gather(logits, E, cand, h, n, d);
    if (bias)
        for (int j = 0; j < n; j++)
            logits[j] += bias[cand[j]];
}

void nn_items_backward(double *dE, double *dbias, double *dh, const double *g,
                       const double *E, const double *h, const int *cand, int n, int d)
{
    if (n < 1 || d < 1)
        return;
    if (!cand) {
        if (dE && dh) {
            vm_rows_backward(dh, dE, dbias, E, g, h, n, d);
            return;
        }
        if (dE)
            vm_rows_axpy(dE, g, h, n, d);
        if (dbias)
            vm_add_array(dbias, g, n);
        if (dh)
            vm_rows_weighted_sum(dh, E, g, n, d);
        return;
    }
    for (int j = 0; j < n; j++) {
        size_t row = (size_t)cand[j] * d;
        if (dE)
            cblas_daxpy(d, g[j], h, 1, dE + row, 1);
        if (dbias)
            dbias[cand[j]] += g[j];
        if (dh)
            cblas_daxpy(d, g[j], E + row, 1, dh, 1);
    }
}

/* ---- softmax family ---- */

/* The largest s_i, -Inf if n = 0; a NaN sticks (no comparison with it is true). */
static double max_of(const double *s, int n)
{
    double mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (s[i] > mx || isnan(s[i]))
            mx = s[i];
    return mx;
}

double nn_logsumexp(const double *s, int n)
{
    double mx = max_of(s, n);
    if (!isfinite(mx))
        return mx; /* NaN, +Inf, or -Inf (empty or all -Inf) */
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += vm_exp(s[i] - mx);
    return mx + log(sum);
}

double nn_log_softmax_forward(double *out, const double *s, int n)
{
    double lse = nn_logsumexp(s, n);
    for (int i = 0; i < n; i++)
        out[i] = s[i] - lse;
    return lse;
}

void nn_log_softmax_backward(double *ds, const double *g, const double *out, int n)
{
    double gsum = 0.0;
    for (int i = 0; i < n; i++)
        gsum += g[i];
    for (int i = 0; i < n; i++)
        ds[i] += g[i] - vm_exp(out[i]) * gsum;
}

/* The position of the largest key (the first, on a tie). */
static int argmax(const double *key, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (key[i] > key[best])
            best = i;
    return best;
}

/* The entropy H of softmax(s), in one pass of n exps. With m = max s, e_i =
 * exp(s_i - m) (vm_exp_fast_diff: to about an ulp also where s_i - m rounds) and
 * Z = sum_i e_i, H = log Z + sum_i e_i (m - s_i) / Z: both parts are sums of
 * non-negative terms, so nothing cancels; and log Z is log1p(Z - 1), Z - 1 summed
 * directly (all but one largest item), so that a nearly deterministic softmax
 * (Z ~ 1, H ~ 0) keeps its relative precision. */
typedef struct {
    double m, z, log_z, h;
} softmax_entropy;

static softmax_entropy entropy_parts(const double *s, int n)
{
    softmax_entropy r = {.m = -INFINITY, .z = 0.0, .log_z = -INFINITY, .h = 0.0};
    if (n < 1)
        return r;
    int top = argmax(s, n);
    r.m = s[top];
    if (!isfinite(r.m)) { /* NaN, or Inf - Inf below: no entropy */
        r.z = r.log_z = r.h = NAN;
        return r;
    }
    double rest = 0.0, w = 0.0; /* a NaN elsewhere propagates through both */
    for (int i = 0; i < n; i++) {
        if (i == top)
            continue;
        double e = vm_exp_fast_diff(s[i], r.m); /* as nn_softmax_weigh weighs */
        rest += e;
        w += e * (r.m - s[i]);
    }
    r.z = 1.0 + rest;
    r.log_z = log1p(rest);
    r.h = r.log_z + w / r.z;
    return r;
}

/* entropy_parts from weights already computed: w->e relative to s[top]. */
static softmax_entropy entropy_of_weights(const nn_softmax *w)
{
    softmax_entropy r = {.m = -INFINITY, .z = 0.0, .log_z = -INFINITY, .h = 0.0};
    if (w->n < 1)
        return r;
    r.m = w->s[w->top];
    if (!isfinite(r.m) || !(w->m == r.m)) { /* NaN or Inf: no entropy */
        r.z = r.log_z = r.h = NAN;
        return r;
    }
    /* the sums of nn_softmax_weigh; a NaN elsewhere propagates through both */
    r.z = 1.0 + w->ent_rest;
    r.log_z = log1p(w->ent_rest);
    r.h = r.log_z + w->ent_wsum / r.z;
    return r;
}

double nn_entropy(const double *s, int n) { return entropy_parts(s, n).h; }

typedef void weigh_fn(double *y, const double *x, double b, int skip, int n, double *sums);

static void softmax_weigh(nn_softmax *w, double *e, const double *s, int n, weigh_fn *weigh)
{
    *w = (nn_softmax){.s = s, .e = e, .n = n, .m = vm_max(s, n, -INFINITY)};
    w->top = n > 0 ? vm_first_not_below(s, 0, n, w->m) : 0;
    if (w->top >= n)
        w->top = 0;
    if (n > 0) {
        double sums[3];
        weigh(e, s, w->m, w->top, n, sums);
        w->z = sums[0]; /* = vm_sum(e, n), bit for bit */
        w->ent_rest = sums[1];
        w->ent_wsum = sums[2];
    }
}

void nn_softmax_weigh(nn_softmax *w, double *e, const double *s, int n)
{
    softmax_weigh(w, e, s, n, vm_exp_fast_weigh);
}

void nn_softmax_weigh_single(nn_softmax *w, double *e, const double *s, int n)
{
    softmax_weigh(w, e, s, n, vm_exp_single_weigh);
}

/* The entropy's parts, computed on the first call after a weighing. */
static softmax_entropy softmax_parts(nn_softmax *w)
{
    if (!w->have_entropy) {
        softmax_entropy r = entropy_of_weights(w);
        w->ent_z = r.z;
        w->ent_log_z = r.log_z;
        w->ent_h = r.h;
        w->have_entropy = 1;
    }
    return (softmax_entropy){.m = w->n > 0 ? w->s[w->top] : -INFINITY, .z = w->ent_z,
                             .log_z = w->ent_log_z, .h = w->ent_h};
}

double nn_softmax_entropy(nn_softmax *w) { return softmax_parts(w).h; }

void nn_softmax_entropy_backward(double *ds, double g, nn_softmax *w)
{
    softmax_entropy r = softmax_parts(w);
    const double *s = w->s, *e = w->e;
    double scale = g / r.z;
    for (int i = 0; i < w->n; i++) {
        double logp = (s[i] - r.m) - r.log_z;
        ds[i] -= scale * e[i] * (logp + r.h);
    }
}

void nn_entropy_backward(double *ds, double g, const double *s, int n)
{
    softmax_entropy r = entropy_parts(s, n);
    for (int i = 0; i < n; i++) {
        double logp = (s[i] - r.m) - r.log_z;
        ds[i] -= g * (vm_exp_fast_diff(s[i], r.m) / r.z) * (logp + r.h);
    }
}

/* ---- Plackett-Luce slates ---- */

int nn_pl_check(const int *slate, int n, int k)
{
    if (k < 1 || k > n)
        return DS_EINPUT;
    for (int j = 0; j < k; j++) {
        if (slate[j] < 0 || slate[j] >= n)
            return DS_EINPUT;
        for (int i = 0; i < j; i++)
            if (slate[i] == slate[j])
                return DS_EINPUT;
    }
    return DS_OK;
}

/* The sampler is below the stage normalisers, whose weighing it shares. */

/* The stage normalisers of a slate, with one exp per item rather than one per item
 * and stage.
 *
 * Relative to a reference logit m (the largest logit in play when the weights were
 * computed), an item in play weighs e_i = exp(s_i - m), a taken one 0, and the stage's
 * normaliser is z = sum_i e_i, so that p_j(i) = e_i / z_j.
 *  - e_i is good to about an ulp however far s_i lies below m (vm_exp_fast_diff): once
 *    the items above s_i have been taken, its weight can be much of a small z.
 *  - Taking an item subtracts its weight from z. That subtraction's rounding is
 *    relative to the larger operand, so z carries the error of z_fresh, its last
 *    direct sum, amplified by z_fresh / z; once z falls below z_fresh / 2 it is summed
 *    afresh over the weights in play (additions, no exps). Every z is thus within
 *    about twice a direct sum's relative error. When the chosen items dominate (logits
 *    (50, 0, 0): (e^50 + 2) - e^50 rounds to 0) this resums at every stage, O(n k)
 *    additions at worst.
 *  - Weights below DBL_MIN = 2^-1022 are inexact (subnormal) or 0. While z >=
 *    PL_REWEIGH_BELOW = 2^-500 the error they bring to a probability is below
 *    n 2^-1074 / 2^-500 < 1e-160; below it, the weights are computed afresh relative
 *    to the largest logit in play. Each such reweighing lowers m by more than 346
 *    (500 log 2), so it happens at most (max s - min s) / 346 times per call: never
 *    for logits of moderate range.
 * A stage's result uses its normaliser z and the next one's, z' = z - e_a: p = e_a / z
 * and 1 - p = z' / z, both good to a few ulps relative even when p is close to 1. */
#define PL_RESUM_BELOW 0.5
#define PL_REWEIGH_BELOW 0x1p-500

typedef struct {
    double *e;        /* [n] weights exp(s_i - m) of the items in play, 0 once taken */
    const double *s;  /* [n] logits */
    const int *slate; /* slate[0..taken) are out of play */
    int n, taken;
    double m;       /* reference logit */
    double z;       /* the current stage's normaliser, sum of e */
    double z_fresh; /* z when last summed directly */
} pl_stages;

/* Weighs the items in play relative to the largest logit among them, and sums. */
static void pl_weigh(pl_stages *p)
{
    double *e = p->e;
    memcpy(e, p->s, (size_t)p->n * sizeof *e);
    for (int t = 0; t < p->taken; t++)
        e[p->slate[t]] = -INFINITY;
    p->m = max_of(e, p->n);
    vm_exp_fast_diff_array(e, p->s, p->m, p->n);
    for (int t = 0; t < p->taken; t++)
        e[p->slate[t]] = 0.0;
    p->z = p->z_fresh = vm_sum(e, p->n);
}

static void pl_begin(pl_stages *p, double *work, const double *s, const int *slate, int n)
{
    *p = (pl_stages){.e = work, .s = s, .slate = slate, .n = n};
    pl_weigh(p);
}

/* pl_begin with the weights of w, computed already: the same stages. */
static void pl_begin_weighed(pl_stages *p, double *work, const nn_softmax *w, const int *slate)
{
    *p = (pl_stages){.e = work, .s = w->s, .slate = slate, .n = w->n, .m = w->m};
    memcpy(work, w->e, (size_t)w->n * sizeof *work);
    p->z = p->z_fresh = w->z;
}

/* Takes the current stage's item out of play and moves z on to the next stage's
 * normaliser (0 if no item is left). Returns 1 if the weights in play have become too
 * small: before a next stage, the caller then calls pl_weigh, after any last use of
 * the current weights. */
static int pl_advance(pl_stages *p)
{
    int a = p->slate[p->taken++];
    p->z -= p->e[a];
    p->e[a] = 0.0;
    if (p->z < p->z_fresh * PL_RESUM_BELOW)
        p->z = p->z_fresh = vm_sum(p->e, p->n);
    return p->z < PL_REWEIGH_BELOW;
}

/* log p for p = e_a / z, 1 - p = z_next / z. Near 1, log1p(-(1 - p)); else the log
 * of the ratio. If e_a or the ratio is subnormal (inexact), log p < -361 (z is at
 * least 2^-500), and (s_a - m) - log z, whose parts are within |log p| + 346 of it, is
 * as good relative to it. */
static double pl_log_prob(double e_a, double z, double z_next, double s_a, double m)
{
    double q = z_next / z;
    if (q <= 0.5)
        return log1p(-q);
    double ratio = e_a / z;
    if (e_a >= DBL_MIN && ratio >= DBL_MIN)
        return log(ratio);
    return (s_a - m) - log(z);
}

static double pl_logprob_stages(pl_stages *pp, const double *s, const int *slate, int k);

double nn_pl_logprob(double *work, const double *s, const int *slate, int n, int k)
{
    pl_stages p;
    pl_begin(&p, work, s, slate, n);
    return pl_logprob_stages(&p, s, slate, k);
}

double nn_softmax_pl_logprob(const nn_softmax *w, double *work, const int *slate, int k)
{
    pl_stages p;
    pl_begin_weighed(&p, work, w, slate);
    return pl_logprob_stages(&p, w->s, slate, k);
}

static double pl_logprob_stages(pl_stages *pp, const double *s, const int *slate, int k)
{
    pl_stages p = *pp;
    double logp = 0.0;
    for (int j = 0; j < k; j++) {
        int a = slate[j];
        double e_a = p.e[a], z = p.z, m = p.m;
        int reweigh = pl_advance(&p);
        logp += pl_log_prob(e_a, z, p.z, s[a], m);
        if (reweigh && j + 1 < k)
            pl_weigh(&p);
    }
    return logp;
}

/* ds[n] -= gc * e[n]: the items' shares of the stages counted in gc. */
static void pl_settle(double *ds, double gc, const double *e, int n)
{
    for (int i = 0; i < n; i++)
        ds[i] -= gc * e[i];
}

static void pl_logprob_backward_stages(pl_stages *pp, double *ds, double g, const int *slate,
                                       int n, int k);

void nn_pl_logprob_backward(double *ds, double *work, double g, const double *s,
                            const int *slate, int n, int k)
{
    pl_stages p;
    pl_begin(&p, work, s, slate, n);
    pl_logprob_backward_stages(&p, ds, g, slate, n, k);
}

void nn_softmax_pl_logprob_backward(double *ds, double *work, double g, const nn_softmax *w,
                                    const int *slate, int k)
{
    pl_stages p;
    pl_begin_weighed(&p, work, w, slate);
    pl_logprob_backward_stages(&p, ds, g, slate, w->n, k);
}

static void pl_logprob_backward_stages(pl_stages *pp, double *ds, double g, const int *slate,
                                       int n, int k)
{
    /* d log P / ds_i = [i in slate] - sum over the stages j with i in play of e_i / z_j.
     * With c the sum of 1 / z_j over the stages since the weights were computed, an
     * item's share is e_i c: a slate item settles it as it leaves play (its own stage
     * as 1 - p = z' / z), the others when the weights change and at the end. O(n)
     * beyond the stages. */
    pl_stages p = *pp;
    double c = 0.0;
    for (int j = 0; j < k; j++) {
        int a = slate[j];
        double e_a = p.e[a], z = p.z;
        int reweigh = pl_advance(&p);
        ds[a] += g * (p.z / z - e_a * c);
        c += 1.0 / z;
        if (reweigh && j + 1 < k) {
            pl_settle(ds, g * c, p.e, n);
            c = 0.0;
            pl_weigh(&p);
        }
    }
    pl_settle(ds, g * c, p.e, n);
}

/* ---- a learning step's head ---- */

double nn_softmax_pl_logprob_coefs(nn_softmax *w, double *work, const int *slate, int k,
                                   double *coef)
{
    pl_stages p = {.e = w->e, .s = w->s, .slate = slate, .n = w->n, .m = w->m};
    p.z = p.z_fresh = w->z;
    double logp = 0.0, c = 0.0;
    int j = 0;
    for (; j < k; j++) {
        int a = slate[j];
        double e_a = p.e[a], z = p.z, m = p.m;
        work[j] = e_a; /* pl_advance zeroes it */
        int reweigh = pl_advance(&p);
        logp += pl_log_prob(e_a, z, p.z, w->s[a], m);
        coef[j] = p.z / z - e_a * c;
        c += 1.0 / z;
        if (reweigh && j + 1 < k) {
            j++;
            break;
        }
    }
    for (int t = 0; t < j; t++)
        w->e[slate[t]] = work[t];
    coef[k] = c;
    coef[k + 1] = j < k;
    return j < k ? nn_softmax_pl_logprob(w, work, slate, k) : logp;
}

/* The general path of nn_softmax_head_backward, through the functions it fuses. */
static void head_backward_general(double *ds, double *work, double g_logp, double g_entropy,
                                  nn_softmax *w, const int *slate, int k)
{
    int n = w->n;
    nn_softmax v = *w;
    if (ds == w->s) { /* the logits are about to be overwritten: read a copy */
        memcpy(work + n, w->s, (size_t)n * sizeof *work);
        v.s = work + n;
    }
    memset(ds, 0, (size_t)n * sizeof *ds);
    if (g_logp != 0.0)
        nn_softmax_pl_logprob_backward(ds, work, g_logp, &v, slate, k);
    if (g_entropy != 0.0)
        nn_softmax_entropy_backward(ds, g_entropy, &v);
    w->have_entropy = v.have_entropy;
    w->ent_z = v.ent_z;
    w->ent_log_z = v.ent_log_z;
    w->ent_h = v.ent_h;
}

/* ds[i] = -e_i (gc + scale (log p_i + H)), log p_i = (s_i - m) - log Z, for i < n; ds
 * may be s. Four at a time, written out so that the compiler pairs them into vector
 * operations (each element's operations and their order are the same). */
static void head_terms(double *ds, const double *s, const double *e, int n,
                       const softmax_entropy *r, double gc, double scale)
{
    double m = r->m, log_z = r->log_z, h = r->h;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        double s0 = s[i], s1 = s[i + 1], s2 = s[i + 2], s3 = s[i + 3];
        double e0 = e[i], e1 = e[i + 1], e2 = e[i + 2], e3 = e[i + 3];
        ds[i] = -e0 * (gc + scale * (((s0 - m) - log_z) + h));
        ds[i + 1] = -e1 * (gc + scale * (((s1 - m) - log_z) + h));
        ds[i + 2] = -e2 * (gc + scale * (((s2 - m) - log_z) + h));
        ds[i + 3] = -e3 * (gc + scale * (((s3 - m) - log_z) + h));
    }
    for (; i < n; i++)
        ds[i] = -e[i] * (gc + scale * (((s[i] - m) - log_z) + h));
}

void nn_softmax_head_backward(double *ds, double *work, double g_logp, double g_entropy,
                              nn_softmax *w, const int *slate, int k, const double *coef)
{
    int n = w->n;
    if (coef[k + 1] != 0.0) {
        head_backward_general(ds, work, g_logp, g_entropy, w, slate, k);
        return;
    }
    const double *s = w->s, *e = w->e;
    double gc = g_logp * coef[k];
    if (g_entropy == 0.0) {
        for (int j = 0; j < k; j++)
            work[j] = g_logp * coef[j];
        for (int i = 0; i < n; i++)
            ds[i] = -gc * e[i];
    } else {
        /* the entropy term of nn_softmax_entropy_backward, dH/ds_i = -p_i (log p_i + H) */
        softmax_entropy r = softmax_parts(w);
        double scale = g_entropy / r.z;
        for (int j = 0; j < k; j++) {
            int a = slate[j];
            work[j] = g_logp * coef[j] - scale * e[a] * (((s[a] - r.m) - r.log_z) + r.h);
        }
        head_terms(ds, s, e, n, &r, gc, scale);
    }
    for (int j = 0; j < k; j++)
        ds[slate[j]] = work[j];
}

/* ---- Plackett-Luce sampling ----
 * Stage j draws u ~ U[0, 1) and takes the first item in play whose running sum of
 * weights exceeds u z_j: block sums (NN_PL_BLOCK weights each) are scanned first,
 * then the chosen block. A taken item's weight becomes 0 and its block is summed
 * afresh (no subtraction, so nothing cancels), and z_j is summed afresh from the
 * blocks at every stage. Below PL_REWEIGH_BELOW the weights in play are
 * recomputed relative to their largest logit, as in pl_advance. */

size_t nn_pl_sample_work(int n)
{
    return n < 1 ? 1 : 2 * (size_t)n + (size_t)n / NN_PL_BLOCK + 1;
}

static int pl_blocks(int n) { return (n + NN_PL_BLOCK - 1) / NN_PL_BLOCK; }

static double pl_block_sum(const double *e, int b, int n)
{
    int lo = b * NN_PL_BLOCK, hi = lo + NN_PL_BLOCK < n ? lo + NN_PL_BLOCK : n;
    return vm_sum(e + lo, hi - lo);
}

/* The position whose share of [0, z) holds target, among weights e [n] with block
 * sums block [pl_blocks(n)]; if rounding leaves the running sum short of target,
 * the last item with a positive weight. -1 if no weight is positive. */
static int pl_pick(const double *e, const double *block, int n, double target)
{
    int nb = pl_blocks(n), b = 0;
    double acc = 0.0;
    while (b + 1 < nb && acc + block[b] <= target) {
        acc += block[b];
        b++;
    }
    int lo = b * NN_PL_BLOCK, hi = lo + NN_PL_BLOCK < n ? lo + NN_PL_BLOCK : n, pick = -1;
    for (int i = lo; i < hi; i++) {
        if (e[i] > 0) {
            pick = i;
            acc += e[i];
            if (acc > target)
                return i;
        }
    }
    for (int i = n - 1; pick < 0 && i >= 0; i--)
        if (e[i] > 0)
            pick = i;
    return pick;
}

/* Stages 0 .. k-1 on the weights in p (its e holds them, taken ones 0). */
static int pl_sample_stages(pl_stages *p, double *block, gsl_rng *r, int *slate, int k)
{
    int n = p->n, nb = pl_blocks(n);
    for (int b = 0; b < nb; b++)
        block[b] = pl_block_sum(p->e, b, n);
    for (int j = 0; j < k; j++) {
        double z = vm_sum(block, nb);
        if (!(z >= PL_REWEIGH_BELOW)) {
            p->taken = j;
            pl_weigh(p);
            for (int b = 0; b < nb; b++)
                block[b] = pl_block_sum(p->e, b, n);
            z = vm_sum(block, nb);
        }
        int pick = pl_pick(p->e, block, n, gsl_rng_uniform(r) * z);
        if (pick < 0) /* no finite weight in play (logits must be finite) */
            return DS_EINPUT;
        slate[j] = pick;
        p->e[pick] = 0.0;
        block[pick / NN_PL_BLOCK] = pl_block_sum(p->e, pick / NN_PL_BLOCK, n);
    }
    return DS_OK;
}

int nn_pl_sample(int *slate, double *work, gsl_rng *r, const double *s, int n, int k)
{
    if (k < 1 || k > n)
        return DS_EINPUT;
    pl_stages p;
    pl_begin(&p, work, s, slate, n);
    return pl_sample_stages(&p, work + n, r, slate, k);
}

int nn_softmax_pl_sample(int *slate, double *work, gsl_rng *r, const nn_softmax *w, int k)
{
    if (k < 1 || k > w->n)
        return DS_EINPUT;
    pl_stages p;
    pl_begin_weighed(&p, work, w, slate);
    return pl_sample_stages(&p, work + w->n, r, slate, k);
}

/* ---- losses ---- */

double nn_mse_forward(const double *pred, const double *target, int n)
{
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        double r = pred[i] - target[i];
        sum += r * r;
    }
    return sum / n;
}

void nn_mse_backward(double *dpred, double g, const double *pred, const double *target,
                     int n)
{
    for (int i = 0; i < n; i++)
        dpred[i] += g * 2.0 * (pred[i] - target[i]) / n;
}

double nn_huber_forward(const double *pred, const double *target, double delta, int n)
{
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        double a = fabs(pred[i] - target[i]);
        sum += a <= delta ? 0.5 * a * a : delta * (a - 0.5 * delta);
    }
    return sum / n;
}

void nn_huber_backward(double *dpred, double g, const double *pred, const double *target,
                       double delta, int n)
{
    for (int i = 0; i < n; i++) {
        double r = pred[i] - target[i];
        double clamped = r > delta ? delta : r < -delta ? -delta : r;
        dpred[i] += g * clamped / n;
    }
}

/* ---- optimisation ---- */

void nn_adam_step(nn_params *p, const nn_adam_config *cfg, double lr)
{
    p->step++;
    double b1 = cfg->beta1, b2 = cfg->beta2;
    double c1 = 1.0 - pow(b1, (double)p->step); /* bias corrections */
    double c2 = 1.0 - pow(b2, (double)p->step);
    vm_adam(p->w, p->grad, p->m, p->v, p->n, b1, b2, c1, c2, lr, cfg->eps, cfg->weight_decay);
}

int nn_adam_step_scaled(nn_params *p, const nn_adam_config *cfg, double lr, double gscale)
{
    p->step++;
    double b1 = cfg->beta1, b2 = cfg->beta2;
    double c1 = 1.0 - pow(b1, (double)p->step), c2 = 1.0 - pow(b2, (double)p->step);
    return vm_adam_scaled(p->w, p->grad, p->m, p->v, p->n, gscale, b1, b2, c1, c2, lr,
                          cfg->eps, cfg->weight_decay);
}

double nn_clip_scale(double norm, double max_norm)
{
    return max_norm > 0.0 && isfinite(norm) && norm > max_norm ? max_norm / norm : 1.0;
}

double nn_grad_norm(const nn_params *p)
{
    /* A plain sum of squares, not dnrm2: a NaN must come out as NaN. Four
     * interleaved partial sums, as vm_sum. */
    const double *g = p->grad;
    double a = 0.0, b = 0.0, c = 0.0, d = 0.0;
    size_t i = 0;
    for (; i + 4 <= p->n; i += 4) {
        a += g[i] * g[i];
        b += g[i + 1] * g[i + 1];
        c += g[i + 2] * g[i + 2];
        d += g[i + 3] * g[i + 3];
    }
    for (; i < p->n; i++)
        a += g[i] * g[i];
    return sqrt((a + b) + (c + d));
}

double nn_clip_grad_norm(nn_params *p, double max_norm)
{
    double norm = nn_grad_norm(p);
    if (nn_clip_scale(norm, max_norm) != 1.0) {
        double scale = max_norm / norm, *g = p->grad;
        size_t i = 0;
        for (; i + 4 <= p->n; i += 4) { /* written out so that it vectorises */
            g[i] *= scale;
            g[i + 1] *= scale;
            g[i + 2] *= scale;
            g[i + 3] *= scale;
        }
        for (; i < p->n; i++)
            g[i] *= scale;
    }
    return norm;
}

int nn_all_finite(const double *x, size_t n)
{
    /* x * 0 is 0 for a finite x and NaN for NaN or Inf: blocks of 64 without a
     * branch per element, in four partial sums */
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        double a = 0.0, b = 0.0, c = 0.0, d = 0.0;
        for (size_t j = i; j < i + 64; j += 4) {
            a += x[j] * 0.0;
            b += x[j + 1] * 0.0;
            c += x[j + 2] * 0.0;
            d += x[j + 3] * 0.0;
        }
        if (isnan((a + b) + (c + d)))
            return 0;
    }
    for (; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}
