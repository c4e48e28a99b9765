#include "nn.h"

#include "../sim/common.h"

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
    double beta = 0.0;
    if (b) {
        for (int r = 0; r < B; r++)
            memcpy(out + (size_t)r * O, b, (size_t)O * sizeof *out);
        beta = 1.0;
    }
    if (B == 1)
        cblas_dgemv(CblasRowMajor, CblasNoTrans, O, I, 1.0, W, I, in, 1, beta, out, 1);
    else
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, O, I, 1.0, in, I, W, I,
                    beta, out, O);
}

void nn_dense_backward(double *din, double *dW, double *db, const double *dout,
                       const double *in, const double *W, int B, int I, int O)
{
    if (B < 1 || I < 1 || O < 1)
        return;
    if (dW) {
        if (B == 1)
            cblas_dger(CblasRowMajor, O, I, 1.0, dout, 1, in, 1, dW, I);
        else
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, O, I, B, 1.0, dout, O,
                        in, I, 1.0, dW, I);
    }
    if (db)
        for (int r = 0; r < B; r++)
            for (int o = 0; o < O; o++)
                db[o] += dout[(size_t)r * O + o];
    if (din) {
        if (B == 1)
            cblas_dgemv(CblasRowMajor, CblasTrans, O, I, 1.0, W, I, dout, 1, 1.0, din, 1);
        else
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, I, O, 1.0, dout, O,
                        W, I, 1.0, din, I);
    }
}

/* ---- activations ---- */

void nn_tanh_forward(double *out, const double *in, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = tanh(in[i]);
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
    if (!cand) {
        double beta = 0.0;
        if (bias) {
            memcpy(logits, bias, (size_t)n * sizeof *logits);
            beta = 1.0;
        }
        cblas_dgemv(CblasRowMajor, CblasNoTrans, n, d, 1.0, E, d, h, 1, beta, logits, 1);
        return;
    }
    for (int j = 0; j < n; j++) {
        const double *e = E + (size_t)cand[j] * d;
        logits[j] = cblas_ddot(d, e, 1, h, 1) + (bias ? bias[cand[j]] : 0.0);
    }
}

void nn_items_backward(double *dE, double *dbias, double *dh, const double *g,
                       const double *E, const double *h, const int *cand, int n, int d)
{
    if (n < 1 || d < 1)
        return;
    if (!cand) {
        if (dE)
            cblas_dger(CblasRowMajor, n, d, 1.0, g, 1, h, 1, dE, d);
        if (dbias)
            for (int j = 0; j < n; j++)
                dbias[j] += g[j];
        if (dh)
            cblas_dgemv(CblasRowMajor, CblasTrans, n, d, 1.0, E, d, g, 1, 1.0, dh, 1);
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

double nn_logsumexp(const double *s, int n)
{
    double mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (s[i] > mx || isnan(s[i]))
            mx = s[i]; /* a NaN sticks: no comparison with it is true */
    if (!isfinite(mx))
        return mx; /* NaN, +Inf, or -Inf (empty or all -Inf) */
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += exp(s[i] - mx);
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
        ds[i] += g[i] - exp(out[i]) * gsum;
}

double nn_entropy(const double *s, int n)
{
    double lse = nn_logsumexp(s, n);
    double h = 0.0;
    for (int i = 0; i < n; i++) {
        double logp = s[i] - lse;
        h -= exp(logp) * logp;
    }
    return h;
}

void nn_entropy_backward(double *ds, double g, const double *s, int n)
{
    double lse = nn_logsumexp(s, n);
    double h = nn_entropy(s, n);
    for (int i = 0; i < n; i++) {
        double logp = s[i] - lse;
        ds[i] -= g * exp(logp) * (logp + h);
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

/* The position of the largest key (the first, on a tie). */
static int argmax(const double *key, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (key[i] > key[best])
            best = i;
    return best;
}

int nn_pl_sample(int *slate, double *key, gsl_rng *r, const double *s, int n, int k)
{
    if (k < 1 || k > n)
        return DS_EINPUT;
    for (int i = 0; i < n; i++)
        key[i] = s[i] - log(-log(gsl_rng_uniform_pos(r)));
    for (int j = 0; j < k; j++) {
        slate[j] = argmax(key, n);
        key[slate[j]] = -INFINITY; /* taken */
    }
    return DS_OK;
}

double nn_pl_logprob(double *work, const double *s, const int *slate, int n, int k)
{
    /* work holds the logits still in play; taken items become -Inf, which
     * nn_logsumexp skips exactly (exp(-Inf) = 0). */
    memcpy(work, s, (size_t)n * sizeof *work);
    double logp = 0.0;
    for (int j = 0; j < k; j++) {
        logp += s[slate[j]] - nn_logsumexp(work, n);
        work[slate[j]] = -INFINITY;
    }
    return logp;
}

void nn_pl_logprob_backward(double *ds, double *work, double g, const double *s,
                            const int *slate, int n, int k)
{
    memcpy(work, s, (size_t)n * sizeof *work);
    for (int j = 0; j < k; j++) {
        double lse = nn_logsumexp(work, n);
        for (int i = 0; i < n; i++)
            ds[i] -= g * exp(work[i] - lse); /* 0 for items already taken */
        ds[slate[j]] += g;
        work[slate[j]] = -INFINITY;
    }
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
    for (size_t i = 0; i < p->n; i++) {
        double g = p->grad[i];
        p->m[i] = b1 * p->m[i] + (1.0 - b1) * g;
        p->v[i] = b2 * p->v[i] + (1.0 - b2) * g * g;
        double mhat = p->m[i] / c1, vhat = p->v[i] / c2;
        p->w[i] -= lr * (mhat / (sqrt(vhat) + cfg->eps) + cfg->weight_decay * p->w[i]);
    }
}

double nn_grad_norm(const nn_params *p)
{
    /* A plain sum of squares, not dnrm2: a NaN must come out as NaN. */
    double sum = 0.0;
    for (size_t i = 0; i < p->n; i++)
        sum += p->grad[i] * p->grad[i];
    return sqrt(sum);
}

double nn_clip_grad_norm(nn_params *p, double max_norm)
{
    double norm = nn_grad_norm(p);
    if (max_norm > 0.0 && isfinite(norm) && norm > max_norm) {
        double scale = max_norm / norm;
        for (size_t i = 0; i < p->n; i++)
            p->grad[i] *= scale;
    }
    return norm;
}

int nn_all_finite(const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}
