#include "policy.h"

#include "../sim/common.h"
#include "../sim/vecmath.h"

#include <gsl/gsl_cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- description and initialisation ---- */

static int add_layer(nn_layout *l, const char *wname, const char *bname, int out, int in,
                     size_t *W, size_t *b, char *err)
{
    int rc = nn_layout_add(l, wname, out, in, W, err);
    return rc != DS_OK ? rc : nn_layout_add(l, bname, 1, out, b, err);
}

int policy_init(policy_net *net, int n_items, int n_features, int hidden, int embed_dim,
                int with_value, nn_layout *layout, char *err)
{
    memset(net, 0, sizeof *net);
    if (n_items < 1 || n_features < 1 || hidden < 1 || embed_dim < 1)
        return err_set(err, DS_EINPUT,
                       "policy sizes must be at least 1 (n_items %d, n_features %d, "
                       "'hidden' %d, 'embed_dim' %d)",
                       n_items, n_features, hidden, embed_dim);
    net->n_items = n_items;
    net->n_features = n_features;
    net->hidden = hidden;
    net->embed_dim = embed_dim;
    net->with_value = with_value ? 1 : 0;
    int H = hidden, F = n_features, d = embed_dim;
    int rc = add_layer(layout, "pi_W1", "pi_b1", H, F, &net->pi_W1, &net->pi_b1, err);
    if (rc == DS_OK)
        rc = add_layer(layout, "pi_W2", "pi_b2", H, H, &net->pi_W2, &net->pi_b2, err);
    if (rc == DS_OK)
        rc = add_layer(layout, "pi_W3", "pi_b3", d, H, &net->pi_W3, &net->pi_b3, err);
    if (rc == DS_OK)
        rc = add_layer(layout, "E_out", "b_out", n_items, d, &net->E_out, &net->b_out, err);
    if (rc == DS_OK && with_value)
        rc = add_layer(layout, "v_W1", "v_b1", H, F, &net->v_W1, &net->v_b1, err);
    if (rc == DS_OK && with_value)
        rc = add_layer(layout, "v_W2", "v_b2", H, H, &net->v_W2, &net->v_b2, err);
    if (rc == DS_OK && with_value)
        rc = add_layer(layout, "v_W3", "v_b3", 1, H, &net->v_W3, &net->v_b3, err);
    return rc;
}

/* b_out is the only bias not right after its weight; every bias starts at 0. */
static void zero(double *w, size_t offset, size_t n) { memset(w + offset, 0, n * sizeof *w); }

void policy_init_weights(const policy_net *net, double *w, gsl_rng *r)
{
    int H = net->hidden, F = net->n_features, d = net->embed_dim, N = net->n_items;
    nn_init_orthogonal(w + net->pi_W1, r, sqrt(2.0), H, F);
    nn_init_orthogonal(w + net->pi_W2, r, sqrt(2.0), H, H);
    nn_init_orthogonal(w + net->pi_W3, r, 0.01, d, H);
    nn_init_normal(w + net->E_out, r, 0.1, (size_t)N * (size_t)d);
    zero(w, net->pi_b1, (size_t)H);
    zero(w, net->pi_b2, (size_t)H);
    zero(w, net->pi_b3, (size_t)d);
    zero(w, net->b_out, (size_t)N);
    if (!net->with_value)
        return;
    nn_init_orthogonal(w + net->v_W1, r, sqrt(2.0), H, F);
    nn_init_orthogonal(w + net->v_W2, r, sqrt(2.0), H, H);
    nn_init_orthogonal(w + net->v_W3, r, 1.0, 1, H);
    zero(w, net->v_b1, (size_t)H);
    zero(w, net->v_b2, (size_t)H);
    zero(w, net->v_b3, 1);
}

/* ---- workspace ---- */

int policy_work_alloc(policy_work *work, const policy_net *net, char *err)
{
    memset(work, 0, sizeof *work);
    size_t H = (size_t)net->hidden, d = (size_t)net->embed_dim, N = (size_t)net->n_items;
    size_t total = 7 * H + 2 * d + 3 * N + nn_pl_sample_work(net->n_items);
    double *slab = calloc(total, sizeof *slab);
    work->h_single = calloc(d, sizeof *work->h_single);
    if (!slab || !work->h_single) {
        free(slab);
        free(work->h_single);
        work->h_single = NULL;
        return err_set(err, DS_ENOMEM, "out of memory for a policy workspace of %zu doubles",
                       total);
    }
    work->a1 = slab;
    work->a2 = work->a1 + H;
    work->v1 = work->a2 + H;
    work->v2 = work->v1 + H;
    work->g1 = work->v2 + H;
    work->g2 = work->g1 + H;
    work->g3 = work->g2 + H;
    work->h = work->g3 + H;
    work->dh = work->h + d;
    work->logits = work->dh + d;
    work->dlogits = work->logits + N;
    work->weights = work->dlogits + N;
    work->work = work->weights + N;
    return DS_OK;
}

/* Frees a workspace's slab and zeroes the workspace (size bytes at owner). */
static void free_slab(double *slab, void *owner, size_t size)
{
    free(slab);
    memset(owner, 0, size);
}

void policy_work_free(policy_work *work)
{
    if (work) {
        free(work->h_single);
        free_slab(work->a1, work, sizeof *work); /* the slab starts at a1 */
    }
}

int policy_candidates(const policy_net *net, const int *cand, int n, const int **ids,
                      char *err)
{
    if (n < 1 || n > net->n_items || !cand)
        return err_set(err, DS_EINPUT, "%d candidates for a catalogue of %d items", n,
                       net->n_items);
    if (n == net->n_items && vm_is_iota(cand, n)) { /* the whole catalogue, in order */
        *ids = NULL;
        return DS_OK;
    }
    for (int j = 0; j < n; j++)
        if (cand[j] < 0 || cand[j] >= net->n_items)
            return err_set(err, DS_EINPUT, "candidate %d is out of range", cand[j]);
    *ids = cand;
    return DS_OK;
}

/* ---- forward and backward ---- */

/* out = tanh(W in + b), one state. */
static void tanh_layer(double *out, const double *in, const double *W, const double *b,
                       int I, int O)
{
    nn_dense_forward(out, in, W, b, 1, I, O);
    nn_tanh_forward(out, out, O);
}

static void value_forward(const policy_net *net, const double *w, const double *x,
                          policy_work *work)
{
    int H = net->hidden, F = net->n_features;
    tanh_layer(work->v1, x, w + net->v_W1, w + net->v_b1, F, H);
    tanh_layer(work->v2, work->v1, w + net->v_W2, w + net->v_b2, H, H);
    nn_dense_forward(&work->value, work->v2, w + net->v_W3, w + net->v_b3, 1, H, 1);
    work->value_ready = 1;
}

/* The policy trunk: work->h of x. */
static void state_forward(const policy_net *net, const double *w, const double *x,
                          policy_work *work)
{
    int H = net->hidden, F = net->n_features, d = net->embed_dim;
    tanh_layer(work->a1, x, w + net->pi_W1, w + net->pi_b1, F, H);
    tanh_layer(work->a2, work->a1, w + net->pi_W2, w + net->pi_b2, H, H);
    nn_dense_forward(work->h, work->a2, w + net->pi_W3, w + net->pi_b3, 1, H, d);
    work->value_ready = 0;
}

/* *value = V of x (value not NULL), as policy_forward gives it. */
static void forward_value(const policy_net *net, const double *w, const double *x,
                          policy_work *work, double *value)
{
    if (!value)
        return;
    if (!net->with_value) {
        *value = NAN;
        return;
    }
    value_forward(net, w, x, work);
    *value = work->value;
}

void policy_forward(const policy_net *net, const double *w, const double *x,
                    const int *cand, int n, policy_work *work, double *value)
{
    state_forward(net, w, x, work);
    nn_items_forward(work->logits, w + net->E_out, w + net->b_out, work->h, cand, n,
                     net->embed_dim);
    forward_value(net, w, x, work, value);
}

void policy_forward_single(const policy_net *net, const double *w, const double *x,
                           const float *E_single, policy_work *work, double *value)
{
    int d = net->embed_dim;
    state_forward(net, w, x, work);
    vm_to_single(work->h_single, work->h, (size_t)d);
    vm_rows_dot_single(work->logits, E_single, work->h_single, w + net->b_out, net->n_items, d);
    forward_value(net, w, x, work, value);
}

/* Back through out = tanh(W in + b) given dout = dL/dout [O]: dW, db and
 * din [I] += (din may be NULL); dz [O] is scratch, distinct from dout and din. */
static void tanh_layer_backward(double *din, double *dz, const double *dout,
                                const double *out, const double *in, const double *W,
                                double *dW, double *db, int I, int O)
{
    memset(dz, 0, (size_t)O * sizeof *dz);
    nn_tanh_backward(dz, dout, out, O);
    nn_dense_backward(din, dW, db, dz, in, W, 1, I, O);
}

/* The two tanh layers of a trunk (weights at W1, b1, W2, b2; activations a1, a2
 * [H] of input x [F]), given dL/da2 in work->g1: gradients, and dx [F] += dL/dx. */
static void trunk_backward(const double *w, double *grad, size_t W1, size_t b1, size_t W2,
                           size_t b2, const double *a1, const double *a2, const double *x,
                           int F, int H, double *dx, policy_work *work)
{
    double *da2 = work->g1, *da1 = work->g2, *dz = work->g3;
    memset(da1, 0, (size_t)H * sizeof *da1);
    tanh_layer_backward(da1, dz, da2, a2, a1, w + W2, grad + W2, grad + b2, H, H);
    tanh_layer_backward(dx, dz, da1, a1, x, w + W1, grad + W1, grad + b1, F, H);
}

void policy_backward(const policy_net *net, const double *w, double *grad, const double *x,
                     const int *cand, int n, const double *dlogits, double dvalue,
                     double *dx, policy_work *work)
{
    int H = net->hidden, F = net->n_features, d = net->embed_dim;
    if (dlogits) {
        memset(work->dh, 0, (size_t)d * sizeof *work->dh);
        nn_items_backward(grad + net->E_out, grad + net->b_out, work->dh, dlogits,
                          w + net->E_out, work->h, cand, n, d);
        memset(work->g1, 0, (size_t)H * sizeof *work->g1);
        nn_dense_backward(work->g1, grad + net->pi_W3, grad + net->pi_b3, work->dh,
                          work->a2, w + net->pi_W3, 1, H, d);
        trunk_backward(w, grad, net->pi_W1, net->pi_b1, net->pi_W2, net->pi_b2, work->a1,
                       work->a2, x, F, H, dx, work);
    }
    if (!net->with_value || dvalue == 0.0)
        return;
    if (!work->value_ready)
        value_forward(net, w, x, work);
    memset(work->g1, 0, (size_t)H * sizeof *work->g1);
    nn_dense_backward(work->g1, grad + net->v_W3, grad + net->v_b3, &dvalue, work->v2,
                      w + net->v_W3, 1, H, 1);
    trunk_backward(w, grad, net->v_W1, net->v_b1, net->v_W2, net->v_b2, work->v1, work->v2,
                   x, F, H, dx, work);
}

/* ---- a chunk of states at once ---- */

/* Items per product of the item head's backward: dE_out of that many items in
 * single precision before it is added to the double gradient. */
#define ITEM_BLOCK 512

int policy_batch_alloc(policy_batch *pb, const policy_net *net, int cap, int single,
                       char *err)
{
    memset(pb, 0, sizeof *pb);
    if (cap < 1)
        return err_set(err, DS_EINPUT, "a policy batch of %d rows", cap);
    size_t C = (size_t)cap, H = (size_t)net->hidden, d = (size_t)net->embed_dim;
    size_t N = (size_t)net->n_items;
    size_t total = C * (6 * H + 2 * d + 1 + N);
    double *slab = calloc(total, sizeof *slab);
    float *singles = NULL;
    if (single)
        singles = calloc(policy_batch_singles(net->n_items, net->embed_dim, cap),
                         sizeof *singles);
    if (!slab || (single && !singles)) {
        free(slab);
        free(singles);
        return err_set(err, DS_ENOMEM, "out of memory for a policy batch of %zu doubles",
                       total);
    }
    pb->cap = cap;
    pb->n_items = net->n_items;
    pb->a1 = slab;
    pb->a2 = pb->a1 + C * H;
    pb->v1 = pb->a2 + C * H;
    pb->v2 = pb->v1 + C * H;
    pb->g1 = pb->v2 + C * H;
    pb->g2 = pb->g1 + C * H;
    pb->h = pb->g2 + C * H;
    pb->dh = pb->h + C * d;
    pb->value = pb->dh + C * d;
    pb->logits = pb->value + C;
    if (!single)
        return DS_OK;
    pb->E_single = singles;
    pb->h_single = pb->E_single + N * d;
    pb->logits_single = pb->h_single + C * d;
    pb->dE_single = pb->logits_single + C * N;
    return DS_OK;
}

size_t policy_batch_singles(int n_items, int embed_dim, int cap)
{
    size_t C = (size_t)cap, d = (size_t)embed_dim, N = (size_t)n_items;
    size_t block = N < ITEM_BLOCK ? N : ITEM_BLOCK;
    return N * d + C * d + C * N + (block > C ? block : C) * d;
}

void policy_batch_free(policy_batch *pb)
{
    if (pb) {
        free(pb->E_single);
        free_slab(pb->a1, pb, sizeof *pb); /* the slab starts at a1 */
    }
}

void policy_batch_load_items(policy_batch *pb, const policy_net *net, const double *w)
{
    if (pb->E_single)
        vm_to_single(pb->E_single, w + net->E_out, (size_t)net->n_items * (size_t)net->embed_dim);
}

/* out [B][O] = tanh(in W^T + b). */
static void tanh_layer_batch(double *out, const double *in, const double *W, const double *b,
                             int B, int I, int O)
{
    nn_dense_forward(out, in, W, b, B, I, O);
    nn_tanh_forward(out, out, B * O);
}

/* 1 if every row's candidates are the identity catalogue. */
static int all_identity(const int *const *cand, int B)
{
    for (int b = 0; b < B; b++)
        if (cand[b])
            return 0;
    return 1;
}

/* The item head over the identity catalogue in single precision (one sgemm):
 * logits [B][N] = h E_out^T + b_out, the products summed in floats over E_single,
 * then widened and the bias added in double. */
static void items_forward_single(policy_batch *pb, const double *b_out, int B, int d, int N)
{
    vm_to_single(pb->h_single, pb->h, (size_t)B * (size_t)d);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, N, d, 1.0f, pb->h_single, d,
                pb->E_single, d, 0.0f, pb->logits_single, N);
    for (int b = 0; b < B; b++)
        vm_widen_add(pb->logits + (size_t)b * N, pb->logits_single + (size_t)b * N, b_out, N);
}

/* Its backward, with pb->logits the gradients G [B][N]: db_out += the rows of G
 * (db_out NULL: policy_batch_row_done has), dE_out += G^T h item block by item
 * block and pb->dh = G E_out, each product in single precision, accumulated into
 * the double gradients. */
static void items_backward_single(policy_batch *pb, double *dE_out, double *db_out, int B,
                                  int d, int N)
{
    size_t dd = (size_t)d;
    if (db_out) /* else policy_batch_row_done has narrowed the rows */
        for (int b = 0; b < B; b++)
            policy_batch_row_done(pb, b, db_out);
    for (int j = 0; j < N; j += ITEM_BLOCK) {
        int items = N - j < ITEM_BLOCK ? N - j : ITEM_BLOCK;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, items, d, B, 1.0f,
                    pb->logits_single + j, N, pb->h_single, d, 0.0f, pb->dE_single, d);
        vm_add_single(dE_out + (size_t)j * dd, pb->dE_single, (size_t)items * dd);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, d, N, 1.0f, pb->logits_single, N,
                pb->E_single, d, 0.0f, pb->dE_single, d);
    vm_add_single(pb->dh, pb->dE_single, (size_t)B * dd);
}

void policy_batch_row_done(policy_batch *pb, int b, double *db_out)
{
    size_t at = (size_t)b * (size_t)pb->n_items;
    if (pb->E_single)
        vm_add_narrow(db_out, pb->logits_single + at, pb->logits + at, pb->n_items);
    else
        vm_add_array(db_out, pb->logits + at, pb->n_items);
}

void policy_forward_batch(const policy_net *net, const double *w, const double *X, int B,
                          const int *const *cand, const int *n, int want_value,
                          policy_batch *pb)
{
    int H = net->hidden, F = net->n_features, d = net->embed_dim, N = net->n_items;
    tanh_layer_batch(pb->a1, X, w + net->pi_W1, w + net->pi_b1, B, F, H);
    tanh_layer_batch(pb->a2, pb->a1, w + net->pi_W2, w + net->pi_b2, B, H, H);
    nn_dense_forward(pb->h, pb->a2, w + net->pi_W3, w + net->pi_b3, B, H, d);
    if (!all_identity(cand, B))
        for (int b = 0; b < B; b++)
            nn_items_forward(pb->logits + (size_t)b * N, w + net->E_out, w + net->b_out,
                             pb->h + (size_t)b * d, cand[b], n[b], d);
    else if (pb->E_single)
        items_forward_single(pb, w + net->b_out, B, d, N);
    else
        nn_dense_forward(pb->logits, pb->h, w + net->E_out, w + net->b_out, B, d, N);
    if (!want_value || !net->with_value)
        return;
    tanh_layer_batch(pb->v1, X, w + net->v_W1, w + net->v_b1, B, F, H);
    tanh_layer_batch(pb->v2, pb->v1, w + net->v_W2, w + net->v_b2, B, H, H);
    nn_dense_forward(pb->value, pb->v2, w + net->v_W3, w + net->v_b3, B, H, 1);
}

/* g [n] *= 1 - out^2: back through tanh, in place. */
static void tanh_backward_inplace(double *g, const double *out, int n)
{
    for (int i = 0; i < n; i++)
        g[i] *= 1.0 - out[i] * out[i];
}

/* The two tanh layers of a trunk over B rows, given dL/da2 in pb->g1 (clobbered):
 * gradients, and dX [B][F] += dL/dX. */
static void trunk_backward_batch(const double *w, double *grad, size_t W1, size_t b1,
                                 size_t W2, size_t b2, const double *a1, const double *a2,
                                 const double *X, int B, int F, int H, double *dX,
                                 policy_batch *pb)
{
    double *dz2 = pb->g1, *dz1 = pb->g2;
    tanh_backward_inplace(dz2, a2, B * H);
    memset(dz1, 0, (size_t)B * (size_t)H * sizeof *dz1);
    nn_dense_backward(dz1, grad + W2, grad + b2, dz2, a1, w + W2, B, H, H);
    tanh_backward_inplace(dz1, a1, B * H);
    nn_dense_backward(dX, grad + W1, grad + b1, dz1, X, w + W1, B, F, H);
}

void policy_backward_batch(const policy_net *net, const double *w, double *grad,
                           const double *X, int B, const int *const *cand, const int *n,
                           const double *dvalue, int bias_added, double *dX,
                           policy_batch *pb)
{
    int H = net->hidden, F = net->n_features, d = net->embed_dim, N = net->n_items;
    size_t BH = (size_t)B * (size_t)H;
    memset(pb->dh, 0, (size_t)B * (size_t)d * sizeof *pb->dh);
    double *db_out = bias_added ? NULL : grad + net->b_out;
    if (!all_identity(cand, B))
        for (int b = 0; b < B; b++)
            nn_items_backward(grad + net->E_out, grad + net->b_out, pb->dh + (size_t)b * d,
                              pb->logits + (size_t)b * N, w + net->E_out,
                              pb->h + (size_t)b * d, cand[b], n[b], d);
    else if (pb->E_single)
        items_backward_single(pb, grad + net->E_out, db_out, B, d, N);
    else
        nn_dense_backward(pb->dh, grad + net->E_out, db_out, pb->logits, pb->h, w + net->E_out,
                          B, d, N);
    memset(pb->g1, 0, BH * sizeof *pb->g1);
    nn_dense_backward(pb->g1, grad + net->pi_W3, grad + net->pi_b3, pb->dh, pb->a2,
                      w + net->pi_W3, B, H, d);
    trunk_backward_batch(w, grad, net->pi_W1, net->pi_b1, net->pi_W2, net->pi_b2, pb->a1,
                         pb->a2, X, B, F, H, dX, pb);
    if (!dvalue || !net->with_value)
        return;
    memset(pb->g1, 0, BH * sizeof *pb->g1);
    nn_dense_backward(pb->g1, grad + net->v_W3, grad + net->v_b3, dvalue, pb->v2,
                      w + net->v_W3, B, H, 1);
    trunk_backward_batch(w, grad, net->v_W1, net->v_b1, net->v_W2, net->v_b2, pb->v1, pb->v2,
                         X, B, F, H, dX, pb);
}

void policy_top_k(int *slate, const double *logits, int n, int k)
{
    /* The i-th pick is the largest logit ranked strictly after the previous pick
     * in the order (logit descending, position ascending): no marks needed. */
    for (int i = 0; i < k; i++) {
        int best = -1;
        for (int j = 0; j < n; j++) {
            if (i > 0) {
                double prev = logits[slate[i - 1]];
                if (logits[j] > prev || (logits[j] == prev && j <= slate[i - 1]))
                    continue;
            }
            if (best < 0 || logits[j] > logits[best])
                best = j;
        }
        slate[i] = best;
    }
}
