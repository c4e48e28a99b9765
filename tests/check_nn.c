/* Tests of the neural-network building blocks (agents/nn.c): finite-difference
 * gradient checks of every layer and loss and of a small composed network, and
 * known answers for the Plackett-Luce slate distribution, Adam, clipping and the
 * finite check; the Plackett-Luce probability, sampler and the entropy, with their
 * gradients, against an extended-precision reference on extreme logits.
 *
 * Gradient checks. The numerical derivative is the five-point central difference
 *     f'(x) ~ [f(x - 2h) - 8 f(x - h) + 8 f(x + h) - f(x + 2h)] / (12 h),
 * h = 1e-4, whose truncation error is O(h^4) (~1e-17 here) and rounding error
 * ~ 1e-16 |f| / h (~1e-12), so a correct gradient agrees to ~1e-10 or better.
 * Each element is compared by the relative error
 *     rel(a, b) = |a - b| / max(1e-8, |a| + |b|),
 * and the largest over a tensor must be below 1e-6 (the acceptance bound). Kinks
 * (relu at 0, Huber at +-delta) are kept at least 0.05 >> 2h away. Every check
 * also demands a gradient of size > 1e-3 somewhere, so it cannot pass on zeros. */
#include "../agents/nn.h"
#include "../sim/common.h"
#include "gradcheck.h"

#include <check.h>
#include <float.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_randist.h>
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

static void fill_normal(double *x, gsl_rng *r, double sd, size_t n)
{
    nn_init_normal(x, r, sd, n);
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* ---- slabs and initialisers ---- */

START_TEST(test_layout_and_params)
{
    char err[ERR_LEN];
    nn_layout l;
    nn_layout_init(&l);
    size_t o1, o2, o3;
    ck_assert_int_eq(nn_layout_add(&l, "W1", 4, 3, &o1, err), DS_OK);
    ck_assert_int_eq(nn_layout_add(&l, "b1", 1, 4, &o2, err), DS_OK);
    ck_assert_int_eq(nn_layout_add(&l, "E", 10, 2, &o3, err), DS_OK);
    ck_assert_uint_eq(o1, 0);
    ck_assert_uint_eq(o2, 12);
    ck_assert_uint_eq(o3, 16);
    ck_assert_uint_eq(l.size, 36);
    const nn_tensor *t = nn_layout_find(&l, "E");
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(t->offset, 16);
    ck_assert_int_eq(t->rows, 10);
    ck_assert_int_eq(t->cols, 2);
    ck_assert_ptr_null(nn_layout_find(&l, "nope"));

    size_t o;
    ck_assert_int_eq(nn_layout_add(&l, "W1", 1, 1, &o, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "'W1'"));
    ck_assert_int_eq(nn_layout_add(&l, "z", 0, 3, &o, err), DS_EINPUT);
    ck_assert_int_eq(nn_layout_add(&l, "z", 3, -1, &o, err), DS_EINPUT);
    ck_assert_int_eq(nn_layout_add(&l, "", 1, 1, &o, err), DS_EINPUT);
    ck_assert_int_eq(nn_layout_add(&l, "a_name_that_is_far_too_long_for_the_layout", 1, 1,
                                   &o, err),
                     DS_EINPUT);
    ck_assert_uint_eq(l.size, 36); /* failures leave it as it was */
    nn_layout full;
    nn_layout_init(&full);
    for (int i = 0; i < NN_MAX_TENSORS; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        ck_assert_int_eq(nn_layout_add(&full, name, 1, 1, &o, err), DS_OK);
    }
    ck_assert_int_eq(nn_layout_add(&full, "extra", 1, 1, &o, err), DS_EINPUT);

    nn_params p;
    ck_assert_int_eq(nn_params_alloc(&p, l.size, err), DS_OK);
    ck_assert_uint_eq(p.n, 36);
    ck_assert_int_eq(p.step, 0);
    for (size_t i = 0; i < p.n; i++) {
        ck_assert(p.w[i] == 0 && p.grad[i] == 0 && p.m[i] == 0 && p.v[i] == 0);
        p.grad[i] = 1.0 + (double)i;
    }
    /* the four slabs do not overlap */
    ck_assert_ptr_eq(p.grad, p.w + p.n);
    ck_assert_ptr_eq(p.v, p.m + p.n);
    nn_params_zero_grad(&p);
    for (size_t i = 0; i < p.n; i++)
        ck_assert(p.grad[i] == 0);
    nn_params_free(&p);
    ck_assert_ptr_null(p.w);
    nn_params_free(&p); /* a freed nn_params is a no-op */
    nn_params_free(NULL);
    ck_assert_int_eq(nn_params_alloc(&p, 0, err), DS_EINPUT);
}
END_TEST

START_TEST(test_initialisers)
{
    enum { ROWS = 200, COLS = 300, N = ROWS * COLS };
    double *w = malloc(N * sizeof *w), *w2 = malloc(N * sizeof *w2);
    ck_assert(w && w2);
    gsl_rng *r = rng_new(7), *r2 = rng_new(7);

    /* Xavier: inside (-a, a), variance a^2 / 3. The relative standard error of a
     * variance estimate from N uniforms is sqrt(4/45/N) * 3 = 0.0037; 5% is >10 SE. */
    double a = sqrt(6.0 / (ROWS + COLS));
    nn_init_xavier(w, r, ROWS, COLS);
    nn_init_xavier(w2, r2, ROWS, COLS);
    ck_assert_int_eq(memcmp(w, w2, N * sizeof *w), 0); /* same seed, same draws */
    double ss = 0;
    for (int i = 0; i < N; i++) {
        ck_assert(fabs(w[i]) < a);
        ss += w[i] * w[i];
    }
    ck_assert_double_eq_tol(ss / N / (a * a / 3), 1.0, 0.05);

    /* He: N(0, 2 / cols); relative SE of the variance sqrt(2/N) = 0.0058. */
    nn_init_he(w, r, ROWS, COLS);
    ss = 0;
    for (int i = 0; i < N; i++)
        ss += w[i] * w[i];
    ck_assert_double_eq_tol(ss / N / (2.0 / COLS), 1.0, 0.05);

    /* Orthogonal, both orientations: W W^T = gain^2 I (rows <= cols) and
     * W^T W = gain^2 I (rows > cols), to rounding. */
    const int shapes[2][2] = {{5, 9}, {9, 5}};
    for (int s = 0; s < 2; s++) {
        int rows = shapes[s][0], cols = shapes[s][1];
        double gain = sqrt(2.0);
        nn_init_orthogonal(w, r, gain, rows, cols);
        int count = rows <= cols ? rows : cols, len = rows <= cols ? cols : rows;
        for (int i = 0; i < count; i++)
            for (int j = 0; j < count; j++) {
                double g = 0;
                for (int e = 0; e < len; e++)
                    g += rows <= cols ? w[i * cols + e] * w[j * cols + e]
                                      : w[e * cols + i] * w[e * cols + j];
                ck_assert_double_eq_tol(g, i == j ? gain * gain : 0.0, 1e-12);
            }
    }
    gsl_rng_free(r);
    gsl_rng_free(r2);
    free(w);
    free(w2);
}
END_TEST

/* ---- dense ---- */

enum { DB = 3, DI = 5, DO = 4 };

typedef struct {
    int B;
    int bias; /* use b */
    double in[DB * DI], W[DO * DI], b[DO], out[DB * DO], r[DB * DO];
} dense_ctx;

/* L = r . dense(in) */
static double dense_loss(void *p)
{
    dense_ctx *c = p;
    nn_dense_forward(c->out, c->in, c->W, c->bias ? c->b : NULL, c->B, DI, DO);
    return dot(c->r, c->out, (size_t)c->B * DO);
}

static void dense_setup(dense_ctx *c, int B, int bias, gsl_rng *r)
{
    memset(c, 0, sizeof *c);
    c->B = B;
    c->bias = bias;
    fill_normal(c->in, r, 1.0, DB * DI);
    fill_normal(c->W, r, 0.5, DO * DI);
    fill_normal(c->b, r, 0.5, DO);
    fill_normal(c->r, r, 1.0, DB * DO);
}

START_TEST(test_dense_known_answer)
{
    /* out = in W^T + b by hand: in = [[1, 2]], W = [[1, 0], [3, -1], [0.5, 2]],
     * b = [0.1, 0.2, 0.3]: out = [1.1, 1.2, 4.8]; two rows for the dgemm path. */
    const double in[4] = {1, 2, -1, 0.5}, W[6] = {1, 0, 3, -1, 0.5, 2}, b[3] = {0.1, 0.2, 0.3};
    double out[6];
    nn_dense_forward(out, in, W, b, 1, 2, 3);
    ck_assert_double_eq_tol(out[0], 1.1, 1e-15);
    ck_assert_double_eq_tol(out[1], 1.2, 1e-15);
    ck_assert_double_eq_tol(out[2], 4.8, 1e-15);
    nn_dense_forward(out, in, W, NULL, 2, 2, 3);
    const double want[6] = {1, 1, 4.5, -1, -3.5, 0.5};
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq_tol(out[i], want[i], 1e-15);
}
END_TEST

START_TEST(test_dense_gradients)
{
    gsl_rng *r = rng_new(11);
    const int cases[3][2] = {{DB, 1}, {1, 1}, {DB, 0}}; /* {B, bias}: dgemm, dgemv/dger */
    for (int k = 0; k < 3; k++) {
        dense_ctx c;
        dense_setup(&c, cases[k][0], cases[k][1], r);
        double din[DB * DI] = {0}, dW[DO * DI] = {0}, db[DO] = {0};
        nn_dense_backward(din, dW, c.bias ? db : NULL, c.r, c.in, c.W, c.B, DI, DO);
        char what[64];
        snprintf(what, sizeof what, "dense W (B=%d bias=%d)", c.B, c.bias);
        check_grad(what, c.W, dW, DO * DI, dense_loss, &c);
        snprintf(what, sizeof what, "dense in (B=%d bias=%d)", c.B, c.bias);
        check_grad(what, c.in, din, (size_t)c.B * DI, dense_loss, &c);
        if (c.bias) {
            snprintf(what, sizeof what, "dense b (B=%d)", c.B);
            check_grad(what, c.b, db, DO, dense_loss, &c);
        }
        /* Backward accumulates: a second pass doubles every gradient; NULL
         * gradients are skipped. */
        double din2[DB * DI], dW2[DO * DI];
        memcpy(din2, din, sizeof din);
        memcpy(dW2, dW, sizeof dW);
        nn_dense_backward(din2, dW2, NULL, c.r, c.in, c.W, c.B, DI, DO);
        nn_dense_backward(NULL, NULL, NULL, c.r, c.in, c.W, c.B, DI, DO);
        for (int i = 0; i < c.B * DI; i++)
            ck_assert_double_eq_tol(din2[i], 2 * din[i], 1e-14 * (1 + fabs(din[i])));
        for (int i = 0; i < DO * DI; i++)
            ck_assert_double_eq_tol(dW2[i], 2 * dW[i], 1e-14 * (1 + fabs(dW[i])));
    }
    gsl_rng_free(r);
}
END_TEST

/* ---- activations ---- */

enum { AN = 8 };

typedef struct {
    int relu;
    double in[AN], out[AN], r[AN];
} act_ctx;

static double act_loss(void *p)
{
    act_ctx *c = p;
    if (c->relu)
        nn_relu_forward(c->out, c->in, AN);
    else
        nn_tanh_forward(c->out, c->in, AN);
    return dot(c->r, c->out, AN);
}

START_TEST(test_activation_gradients)
{
    gsl_rng *r = rng_new(13);
    for (int relu = 0; relu <= 1; relu++) {
        /* Inputs at least 0.05 from relu's kink at 0, both signs. */
        act_ctx c = {.relu = relu,
                     .in = {-1.2, 0.7, -0.3, 2.1, 0.05, -0.05, 1.5, -2.5}};
        fill_normal(c.r, r, 1.0, AN);
        act_loss(&c);
        double din[AN] = {0};
        if (relu)
            nn_relu_backward(din, c.r, c.out, AN);
        else
            nn_tanh_backward(din, c.r, c.out, AN);
        check_grad(relu ? "relu" : "tanh", c.in, din, AN, act_loss, &c);
        if (relu) {
            ck_assert(c.out[0] == 0 && c.out[1] == 0.7 && din[0] == 0);
        } else {
            /* nn.c's tanh: within 4e-16 of the C library's (its measured worst over
             * [-20, 20] is 3.3e-16, near |x| = 0.95) */
            ck_assert_double_eq_tol(c.out[0], tanh(-1.2), 4e-16);
        }
    }
    /* the same over a grid of [-20, 20] (steps of 1e-3, so every block length and
     * tail), odd, exactly 0 at 0 and saturated far out */
    enum { GRID = 40001 };
    static double gx[GRID], gy[GRID];
    for (int i = 0; i < GRID; i++)
        gx[i] = 1e-3 * (i - GRID / 2);
    nn_tanh_forward(gy, gx, GRID);
    for (int i = 0; i < GRID; i++) {
        ck_assert_msg(fabs(gy[i] - tanh(gx[i])) <= 4e-16, "tanh(%.17g) = %.17g", gx[i], gy[i]);
        ck_assert(gy[i] == -gy[GRID - 1 - i]);
    }
    ck_assert(gy[20000] == 0.0 && gy[0] == -1.0 && gy[GRID - 1] == 1.0);
    /* in place */
    double x[3] = {-1, 0.5, 2};
    nn_relu_forward(x, x, 3);
    ck_assert(x[0] == 0 && x[1] == 0.5 && x[2] == 2);
    gsl_rng_free(r);
}
END_TEST

/* ---- item scoring ---- */

enum { IN = 7, ID = 3, IMAX = 8 };

typedef struct {
    const int *cand; /* NULL: all IN items */
    int n;
    double E[IN * ID], bias[IN], h[ID], logits[IMAX], r[IMAX];
} items_ctx;

static double items_loss(void *p)
{
    items_ctx *c = p;
    nn_items_forward(c->logits, c->E, c->bias, c->h, c->cand, c->n, ID);
    return dot(c->r, c->logits, (size_t)c->n);
}

START_TEST(test_items_gradients)
{
    gsl_rng *r = rng_new(17);
    /* A permuted subset with item 1 twice (its gradients add up) and items 0, 2,
     * 4 absent (their gradients stay exactly zero). */
    static const int subset[5] = {5, 1, 3, 1, 6};
    for (int k = 0; k < 2; k++) {
        items_ctx c;
        memset(&c, 0, sizeof c);
        c.cand = k ? subset : NULL;
        c.n = k ? 5 : IN;
        fill_normal(c.E, r, 1.0, IN * ID);
        fill_normal(c.bias, r, 1.0, IN);
        fill_normal(c.h, r, 1.0, ID);
        fill_normal(c.r, r, 1.0, IMAX);
        items_loss(&c);
        for (int j = 0; j < c.n; j++) { /* forward against the definition */
            int item = c.cand ? c.cand[j] : j;
            double want = c.bias[item];
            for (int e = 0; e < ID; e++)
                want += c.E[item * ID + e] * c.h[e];
            ck_assert_double_eq_tol(c.logits[j], want, 1e-14);
        }
        double dE[IN * ID] = {0}, dbias[IN] = {0}, dh[ID] = {0};
        nn_items_backward(dE, dbias, dh, c.r, c.E, c.h, c.cand, c.n, ID);
        const char *tag = k ? "subset" : "all";
        char what[64];
        snprintf(what, sizeof what, "items E (%s)", tag);
        check_grad(what, c.E, dE, IN * ID, items_loss, &c);
        snprintf(what, sizeof what, "items bias (%s)", tag);
        check_grad(what, c.bias, dbias, IN, items_loss, &c);
        snprintf(what, sizeof what, "items h (%s)", tag);
        check_grad(what, c.h, dh, ID, items_loss, &c);
        if (k) {
            ck_assert(dbias[0] == 0 && dbias[2] == 0 && dbias[4] == 0);
            ck_assert_double_eq_tol(dbias[1], c.r[1] + c.r[3], 1e-15);
        }
    }
    gsl_rng_free(r);
}
END_TEST

/* ---- softmax family ---- */

enum { SN = 6 };

typedef struct {
    double s[SN], out[SN], r[SN];
    int slate[SN], k;
    double work[SN];
} soft_ctx;

static double log_softmax_loss(void *p)
{
    soft_ctx *c = p;
    nn_log_softmax_forward(c->out, c->s, SN);
    return dot(c->r, c->out, SN);
}

static double entropy_loss(void *p)
{
    soft_ctx *c = p;
    return nn_entropy(c->s, SN);
}

static double pl_loss(void *p)
{
    soft_ctx *c = p;
    return nn_pl_logprob(c->work, c->s, c->slate, SN, c->k);
}

START_TEST(test_log_softmax)
{
    /* Known answer, stable at large logits: log_softmax(1000, 1001) =
     * (-log(1 + e), 1 - log(1 + e)) = (-1.3132616875182228, -0.3132616875182228). */
    double s[2] = {1000, 1001}, out[2];
    double lse = nn_log_softmax_forward(out, s, 2);
    ck_assert_double_eq_tol(lse, 1001.3132616875182228, 1e-12);
    ck_assert_double_eq_tol(out[0], -1.3132616875182228, 1e-13);
    ck_assert_double_eq_tol(out[1], -0.3132616875182228, 1e-13);
    ck_assert(nn_logsumexp(s, 2) == lse);
    double bad[2] = {0, NAN};
    ck_assert(isnan(nn_logsumexp(bad, 2)));
    bad[0] = NAN;
    ck_assert(isnan(nn_logsumexp(bad, 2)));

    gsl_rng *r = rng_new(19);
    soft_ctx c;
    memset(&c, 0, sizeof c);
    fill_normal(c.s, r, 2.0, SN);
    fill_normal(c.r, r, 1.0, SN);
    log_softmax_loss(&c);
    double sum = 0;
    for (int i = 0; i < SN; i++)
        sum += exp(c.out[i]);
    ck_assert_double_eq_tol(sum, 1.0, 1e-14);
    double ds[SN] = {0};
    nn_log_softmax_backward(ds, c.r, c.out, SN);
    check_grad("log_softmax", c.s, ds, SN, log_softmax_loss, &c);
    gsl_rng_free(r);
}
END_TEST

START_TEST(test_entropy)
{
    /* Uniform logits: H = log n. Softmax of (0, log 3): p = (1/4, 3/4), H =
     * -(1/4) log(1/4) - (3/4) log(3/4) = 0.5623351446188083. */
    double flat[5] = {2, 2, 2, 2, 2};
    ck_assert_double_eq_tol(nn_entropy(flat, 5), log(5.0), 1e-15);
    double two[2] = {0, log(3.0)};
    ck_assert_double_eq_tol(nn_entropy(two, 2), 0.5623351446188083, 1e-15);
    /* Gradient is zero at the maximum (uniform). */
    double ds[SN] = {0};
    nn_entropy_backward(ds, 1.0, flat, 5);
    for (int i = 0; i < 5; i++)
        ck_assert_double_eq_tol(ds[i], 0.0, 1e-16);

    gsl_rng *r = rng_new(23);
    soft_ctx c;
    memset(&c, 0, sizeof c);
    fill_normal(c.s, r, 1.5, SN);
    double g[SN] = {0};
    nn_entropy_backward(g, 1.0, c.s, SN);
    check_grad("entropy", c.s, g, SN, entropy_loss, &c);
    /* g scales the gradient and accumulates */
    double g3[SN];
    memcpy(g3, g, sizeof g);
    nn_entropy_backward(g3, 2.0, c.s, SN);
    for (int i = 0; i < SN; i++)
        ck_assert_double_eq_tol(g3[i], 3 * g[i], 1e-15);
    gsl_rng_free(r);
}
END_TEST

/* ---- Plackett-Luce ---- */

START_TEST(test_pl_hand_example)
{
    /* Three items with weights e^s = (1, 2, 3), total 6, slate size 2.
     *   slate (2, 0): P = 3/6 * 1/(1 + 2) = 1/6
     *   slate (1, 2): P = 2/6 * 3/(1 + 3) = 1/4
     *   slate (0, 1): P = 1/6 * 2/(2 + 3) = 1/15 */
    double s[3] = {0, log(2.0), log(3.0)}, work[3];
    int a[2] = {2, 0}, b[2] = {1, 2}, c[2] = {0, 1};
    ck_assert_double_eq_tol(nn_pl_logprob(work, s, a, 3, 2), log(1.0 / 6), 1e-15);
    ck_assert_double_eq_tol(nn_pl_logprob(work, s, b, 3, 2), log(1.0 / 4), 1e-15);
    ck_assert_double_eq_tol(nn_pl_logprob(work, s, c, 3, 2), log(1.0 / 15), 1e-15);
    /* Shift invariance, far from 0. */
    double shifted[3] = {700, 700 + log(2.0), 700 + log(3.0)};
    ck_assert_double_eq_tol(nn_pl_logprob(work, shifted, a, 3, 2), log(1.0 / 6), 1e-12);

    /* A dominant first choice: s = (50, 0, 0), slate (0, 1):
     *   log P = 50 - log(e^50 + 2) + 0 - log 2 = -log 2 - log1p(2 e^-50).
     * A running normaliser (e^50 + 2) - e^50 rounds to 0 here, giving -Inf. */
    double dom[3] = {50, 0, 0};
    int d[2] = {0, 1};
    ck_assert_double_eq_tol(nn_pl_logprob(work, dom, d, 3, 2),
                            -log(2.0) - log1p(2 * exp(-50.0)), 1e-15);
}
END_TEST

START_TEST(test_pl_sums_to_one)
{
    /* Over all ordered slates of size k from n items, the probabilities sum to 1:
     * n = 4, k = 2 (12 slates) and k = 4 (24 permutations). */
    double s[4] = {0.5, -0.3, 1.0, 0.0}, work[4];
    double sum2 = 0, sum4 = 0;
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            if (b == a)
                continue;
            int sl[2] = {a, b};
            sum2 += exp(nn_pl_logprob(work, s, sl, 4, 2));
            for (int c = 0; c < 4; c++) {
                if (c == a || c == b)
                    continue;
                int perm[4] = {a, b, c, 6 - a - b - c};
                sum4 += exp(nn_pl_logprob(work, s, perm, 4, 4));
            }
        }
    ck_assert_double_eq_tol(sum2, 1.0, 1e-14);
    ck_assert_double_eq_tol(sum4, 1.0, 1e-14);
}
END_TEST

START_TEST(test_pl_gradient)
{
    gsl_rng *r = rng_new(29);
    const int ks[3] = {1, 3, SN};
    const int slate[SN] = {4, 0, 5, 2, 1, 3};
    for (int t = 0; t < 3; t++) {
        soft_ctx c;
        memset(&c, 0, sizeof c);
        fill_normal(c.s, r, 1.5, SN);
        c.k = ks[t];
        memcpy(c.slate, slate, sizeof slate);
        double ds[SN] = {0};
        nn_pl_logprob_backward(ds, c.work, 1.0, c.s, c.slate, SN, c.k);
        char what[64];
        snprintf(what, sizeof what, "pl logprob (n=%d k=%d)", SN, c.k);
        check_grad(what, c.s, ds, SN, pl_loss, &c);
        /* The gradient sums to 0 (log P is shift invariant); k = 1 is log-softmax. */
        double sum = 0;
        for (int i = 0; i < SN; i++)
            sum += ds[i];
        ck_assert_double_eq_tol(sum, 0.0, 1e-14);
        if (c.k == 1) {
            double out[SN];
            nn_log_softmax_forward(out, c.s, SN);
            ck_assert_double_eq_tol(nn_pl_logprob(c.work, c.s, c.slate, SN, 1), out[4],
                                    1e-15);
        }
    }
    gsl_rng_free(r);
}
END_TEST

START_TEST(test_pl_gradient_extreme)
{
    /* Finite-difference checks where the chosen items dominate: a gap of 6 between
     * the first choices (each has p ~ 0.997: later normalisers are what is left
     * after nearly all the mass has gone), a gap of 400 (weights underflow relative
     * to the largest logit), and logits near 700 with unlikely choices. Each gradient
     * that is not O(1) here is below 1e-170, and the loss does not move with it at
     * all in double, so the finite difference is exactly 0 there. */
    static const struct {
        double s[SN];
        int k;
    } cases[] = {
        {{12, 6, 0, 1, -1, 0.5}, 2},
        {{12, 6, 0, 1, -1, 0.5}, 4},
        {{12, 6, 0, 1, -1, 0.5}, SN},
        {{800, 400, 0, 1, -1, 0.5}, 4},
        {{698.8, 700.9, 699.5, 701.3, 700, 700.2}, 3},
    };
    const int slate[SN] = {0, 1, 3, 2, 5, 4};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        soft_ctx c;
        memset(&c, 0, sizeof c);
        memcpy(c.s, cases[t].s, sizeof c.s);
        memcpy(c.slate, slate, sizeof slate);
        c.k = cases[t].k;
        double ds[SN] = {0};
        nn_pl_logprob_backward(ds, c.work, 1.0, c.s, c.slate, SN, c.k);
        char what[64];
        snprintf(what, sizeof what, "pl extreme %zu (k=%d)", t, c.k);
        check_grad(what, c.s, ds, SN, pl_loss, &c);
    }
}
END_TEST

/* ---- Plackett-Luce and entropy against a reference ----
 * The reference computes the definition stage by stage as a direct implementation
 * does -- each stage's normaliser summed over the items in play with that stage's
 * maximum factored out -- but in long double (a 64-bit significand on x86-64, 11
 * bits finer than double) and with the chosen item's share kept apart: with e_a its
 * weight and rest the others', log p = -log1p(rest / e_a) if e_a >= rest, and
 * 1 - p = rest / (e_a + rest), so neither rounds away when p is close to 1. (In
 * double, the direct log-sum-exp gives log P = 0 for logits (50, 0, 0) and k = 1,
 * whose true value is -log1p(2 e^-50) = -3.9e-22, and is off by ~1e-11 relative
 * for logits near 700.)
 *
 * Tolerances. Every result is compared by |x - ref| / max(scale, REF_FLOOR), scale
 * being |ref| for log P and the entropy, and for a gradient element the sum of the
 * absolute values of the terms it adds up, the size its rounding error is relative
 * to (an element can cancel to much less, e.g. 1 - p_1(a) - p_0(a)). REF_TOL =
 * 1e-14 is ~45 ulps: over 40,000 such cases the worst seen is 9e-16 (without
 * TwoSum in the weights it is 6e-14). REF_FLOOR: a weight below DBL_MIN times the
 * largest in play is inexact in double; the normalisers are kept above 2^-500 of
 * it, so what such weights can add to a result is below n 2^-1074 / 2^-500 < 1e-157
 * for n <= 1000, and true values that small (e.g. -exp(-720)) are met absolutely. */
#define REF_TOL 1e-14
#define REF_FLOOR 1e-150

/* log P (returned), its gradient grad [n] and the gradient's scale [n] (above). */
static long double ref_pl(const double *s, const int *slate, int n, int k,
                          long double *grad, long double *scale)
{
    char *in = malloc((size_t)n);
    ck_assert_ptr_nonnull(in);
    memset(in, 1, (size_t)n);
    for (int i = 0; i < n; i++)
        grad[i] = scale[i] = 0;
    long double logp = 0;
    for (int j = 0; j < k; j++) {
        int a = slate[j];
        long double mx = -INFINITY;
        for (int i = 0; i < n; i++)
            if (in[i] && s[i] > mx)
                mx = s[i];
        long double e_a = expl(s[a] - mx), rest = 0;
        for (int i = 0; i < n; i++)
            if (in[i] && i != a)
                rest += expl(s[i] - mx);
        long double z = e_a + rest;
        logp += rest <= e_a ? -log1pl(rest / e_a) : (s[a] - mx) - logl(z);
        for (int i = 0; i < n; i++)
            if (in[i] && i != a) {
                long double p = expl(s[i] - mx) / z;
                grad[i] -= p;
                scale[i] += p;
            }
        grad[a] += rest / z; /* 1 - p_j(a) */
        scale[a] += rest / z;
        in[a] = 0;
    }
    free(in);
    return logp;
}

/* Entropy (returned), its gradient grad [n] and scale [n]: with p = softmax(s),
 * H = sum_i p_i (-log p_i), dH/ds_i = -p_i (log p_i + H). log p_i = s_i - max s -
 * log Z with log Z = log1p(rest), rest the weight of all but the (first) largest. */
static long double ref_entropy(const double *s, int n, long double *grad,
                               long double *scale)
{
    int top = 0;
    for (int i = 1; i < n; i++)
        if (s[i] > s[top])
            top = i;
    long double mx = s[top], rest = 0, h = 0;
    for (int i = 0; i < n; i++)
        if (i != top)
            rest += expl(s[i] - mx);
    long double log_z = log1pl(rest);
    for (int i = 0; i < n; i++) {
        long double logp = (s[i] - mx) - log_z;
        h -= expl(logp) * logp;
    }
    for (int i = 0; i < n; i++) {
        long double logp = (s[i] - mx) - log_z, p = expl(logp);
        grad[i] = -p * (logp + h);
        scale[i] = p * (fabsl(logp) + h);
    }
    return h;
}

static double ref_err(double x, long double ref, long double scale)
{
    long double den = scale > REF_FLOOR ? scale : REF_FLOOR;
    return (double)(fabsl(x - ref) / den);
}

/* n logits of one of eight kinds: standard normal; nearly flat; spread 30; normal
 * shifted by 700, -700 or 1e4; staircases (gaps 5 to 80, and 400: each item
 * dominates those after it); a tenth of the items 50 above the rest; uniform on
 * [-1500, 1500]. */
static void extreme_logits(double *s, int n, int kind, gsl_rng *r)
{
    static const double shifts[3] = {700, -700, 1e4};
    int variant = (int)gsl_rng_uniform_int(r, 5);
    for (int i = 0; i < n; i++) {
        double x = gsl_ran_gaussian(r, 1.0);
        switch (kind) {
        case 0: s[i] = x; break;
        case 1: s[i] = 0.01 * x; break;
        case 2: s[i] = 30 * x; break;
        case 3: s[i] = x + shifts[variant % 3]; break;
        case 4: s[i] = -(i + 0.3 * x) * (5 << variant); break;
        case 5: s[i] = -(i + 0.3 * x) * 400; break;
        case 6: s[i] = gsl_rng_uniform(r) < 0.1 ? 50 + x : x; break;
        default: s[i] = 3000 * (gsl_rng_uniform(r) - 0.5); break;
        }
    }
}

START_TEST(test_pl_matches_reference)
{
    /* 8 kinds of logits x 500 cases with n in [1, 30] and 3 with n in [200, 1000];
     * k in [1, min(n, 12)], and k = n for every seventh small case. Slates are drawn
     * by the sampler (likely ones: the dominant items go first, which is where a
     * running normaliser cancels) or are random orderings (unlikely ones, down to
     * probabilities far below DBL_MIN). Plus hand-picked cases. */
    enum { NMAX = 1000, SMALL = 500, LARGE = 3 };
    double *s = malloc(NMAX * sizeof *s), *work = malloc(nn_pl_sample_work(NMAX) * sizeof *work);
    double *ds = malloc(NMAX * sizeof *ds);
    long double *grad = malloc(NMAX * sizeof *grad), *scale = malloc(NMAX * sizeof *scale);
    int *slate = malloc(NMAX * sizeof *slate);
    ck_assert(s && work && ds && grad && scale && slate);
    gsl_rng *r = rng_new(41);
    double worst_lp = 0, worst_g = 0;
    const double g = -0.7; /* the gradient scales with g */
    for (int kind = 0; kind < 8; kind++)
        for (int t = 0; t < SMALL + LARGE; t++) {
            int n = t < SMALL ? 1 + (int)gsl_rng_uniform_int(r, 30)
                              : 200 + (int)gsl_rng_uniform_int(r, NMAX - 199);
            int k = 1 + (int)gsl_rng_uniform_int(r, n < 12 ? (unsigned long)n : 12);
            if (t < SMALL && t % 7 == 0)
                k = n;
            extreme_logits(s, n, kind, r);
            if (t % 2) {
                ck_assert_int_eq(nn_pl_sample(slate, work, r, s, n, k), DS_OK);
            } else {
                for (int i = 0; i < n; i++)
                    slate[i] = i;
                gsl_ran_shuffle(r, slate, (size_t)n, sizeof *slate);
            }
            long double ref = ref_pl(s, slate, n, k, grad, scale);
            double lp = nn_pl_logprob(work, s, slate, n, k);
            double e = ref_err(lp, ref, fabsl(ref));
            ck_assert_msg(e < REF_TOL, "kind %d n %d k %d: log P %.17g, reference %.17Lg",
                          kind, n, k, lp, ref);
            worst_lp = e > worst_lp ? e : worst_lp;
            memset(ds, 0, (size_t)n * sizeof *ds);
            nn_pl_logprob_backward(ds, work, g, s, slate, n, k);
            for (int i = 0; i < n; i++) {
                e = ref_err(ds[i] / g, grad[i], scale[i]);
                ck_assert_msg(e < REF_TOL, "kind %d n %d k %d: d/ds[%d] %.17g, reference "
                              "%.17Lg", kind, n, k, i, ds[i] / g, grad[i]);
                worst_g = e > worst_g ? e : worst_g;
            }
        }

    /* Hand-picked: dominant first choices; a tiny answer (true log P = -e^-720, a
     * subnormal); a weight just above DBL_MIN whose probability is below it
     * (e^-708.2 / 4); a staircase of gap 1000 taken in order and in reverse (every
     * stage starts afresh, or p = e^-1000 and below); equal logits; a single item. */
    static const struct {
        double s[6];
        int slate[6], n, k;
    } hand[] = {
        {{50, 0, 0}, {0, 1}, 3, 2},
        {{50, 0, 0}, {0}, 3, 1},
        {{50, 0, 0}, {1, 0, 2}, 3, 3},
        {{0, -720}, {0}, 2, 1},
        {{0, 0, 0, 0, -708.2}, {4, 0}, 5, 2},
        {{0, -1000, -2000, -3000, -4000}, {0, 1, 2, 3}, 5, 4},
        {{0, -1000, -2000, -3000, -4000}, {4, 3, 2, 1, 0}, 5, 5},
        {{3, 3, 3, 3, 3, 3}, {5, 1, 2, 0, 4, 3}, 6, 6},
        {{-2.5}, {0}, 1, 1},
    };
    for (size_t h = 0; h < sizeof hand / sizeof hand[0]; h++) {
        int n = hand[h].n, k = hand[h].k;
        long double ref = ref_pl(hand[h].s, hand[h].slate, n, k, grad, scale);
        double lp = nn_pl_logprob(work, hand[h].s, hand[h].slate, n, k);
        ck_assert_msg(ref_err(lp, ref, fabsl(ref)) < REF_TOL, "hand %zu: %.17g vs %.17Lg",
                      h, lp, ref);
        memset(ds, 0, (size_t)n * sizeof *ds);
        nn_pl_logprob_backward(ds, work, 1.0, hand[h].s, hand[h].slate, n, k);
        for (int i = 0; i < n; i++)
            ck_assert_msg(ref_err(ds[i], grad[i], scale[i]) < REF_TOL,
                          "hand %zu d/ds[%d]: %.17g vs %.17Lg", h, i, ds[i], grad[i]);
    }
    printf("  pl vs long double reference: worst rel err log P %.2e, gradient %.2e\n",
           worst_lp, worst_g);
    gsl_rng_free(r);
    free(s);
    free(work);
    free(ds);
    free(grad);
    free(scale);
    free(slate);
}
END_TEST

START_TEST(test_entropy_matches_reference)
{
    /* The same kinds of logits and tolerances as the Plackett-Luce comparison. */
    enum { NMAX = 1000, CASES = 300 };
    double *s = malloc(NMAX * sizeof *s), *ds = malloc(NMAX * sizeof *ds);
    long double *grad = malloc(NMAX * sizeof *grad), *scale = malloc(NMAX * sizeof *scale);
    ck_assert(s && ds && grad && scale);
    gsl_rng *r = rng_new(43);
    double worst = 0;
    for (int kind = 0; kind < 8; kind++)
        for (int t = 0; t < CASES; t++) {
            int n = t % 50 ? 1 + (int)gsl_rng_uniform_int(r, 30) : NMAX;
            extreme_logits(s, n, kind, r);
            long double ref = ref_entropy(s, n, grad, scale);
            double h = nn_entropy(s, n);
            double e = ref_err(h, ref, fabsl(ref));
            ck_assert_msg(e < REF_TOL, "kind %d n %d: H %.17g, reference %.17Lg", kind, n,
                          h, ref);
            worst = e > worst ? e : worst;
            memset(ds, 0, (size_t)n * sizeof *ds);
            nn_entropy_backward(ds, 1.0, s, n);
            for (int i = 0; i < n; i++) {
                e = ref_err(ds[i], grad[i], scale[i]);
                ck_assert_msg(e < REF_TOL, "kind %d n %d: dH/ds[%d] %.17g, reference "
                              "%.17Lg", kind, n, i, ds[i], grad[i]);
                worst = e > worst ? e : worst;
            }
        }
    printf("  entropy vs long double reference: worst rel err %.2e\n", worst);
    /* Logits that are not finite give no entropy. */
    const double nan_first[3] = {NAN, 0, 1}, nan_later[3] = {0, 1, NAN};
    const double inf[3] = {0, INFINITY, 1};
    ck_assert(isnan(nn_entropy(nan_first, 3)));
    ck_assert(isnan(nn_entropy(nan_later, 3)));
    ck_assert(isnan(nn_entropy(inf, 3)));
    gsl_rng_free(r);
    free(s);
    free(ds);
    free(grad);
    free(scale);
}
END_TEST

START_TEST(test_pl_check_and_sample_validity)
{
    int ok[3] = {2, 0, 4}, dup[3] = {2, 0, 2}, out_of_range[2] = {1, 5}, neg[1] = {-1};
    ck_assert_int_eq(nn_pl_check(ok, 5, 3), DS_OK);
    ck_assert_int_eq(nn_pl_check(dup, 5, 3), DS_EINPUT);
    ck_assert_int_eq(nn_pl_check(out_of_range, 5, 2), DS_EINPUT);
    ck_assert_int_eq(nn_pl_check(neg, 5, 1), DS_EINPUT);
    ck_assert_int_eq(nn_pl_check(ok, 5, 0), DS_EINPUT);
    ck_assert_int_eq(nn_pl_check(ok, 2, 3), DS_EINPUT);

    enum { N = 9, K = 4 };
    double s[N] = {0.3, -1, 2, 0.1, 0, 1.2, -0.5, 0.8, 0.4}, key[2 * N + N / NN_PL_BLOCK + 1];
    ck_assert_uint_eq(nn_pl_sample_work(N), sizeof key / sizeof *key);
    int slate[N], again[N];
    gsl_rng *r = rng_new(31), *r2 = rng_new(31);
    ck_assert_int_eq(nn_pl_sample(slate, key, r, s, N, N + 1), DS_EINPUT);
    ck_assert_int_eq(nn_pl_sample(slate, key, r, s, N, 0), DS_EINPUT);
    for (int t = 0; t < 100; t++) {
        ck_assert_int_eq(nn_pl_sample(slate, key, r, s, N, K), DS_OK);
        ck_assert_int_eq(nn_pl_check(slate, N, K), DS_OK);
        ck_assert_int_eq(nn_pl_sample(again, key, r2, s, N, K), DS_OK);
        ck_assert_int_eq(memcmp(slate, again, K * sizeof *slate), 0); /* same seed */
    }
    /* k = n yields a permutation. */
    ck_assert_int_eq(nn_pl_sample(slate, key, r, s, N, N), DS_OK);
    ck_assert_int_eq(nn_pl_check(slate, N, N), DS_OK);
    /* Exactly k uniforms are drawn per call: the streams stay in step. */
    gsl_rng_set(r, 99);
    gsl_rng_set(r2, 99);
    ck_assert_int_eq(nn_pl_sample(slate, key, r, s, N, 3), DS_OK);
    for (int i = 0; i < 3; i++)
        gsl_rng_get(r2);
    ck_assert_uint_eq(gsl_rng_get(r), gsl_rng_get(r2));
    gsl_rng_free(r);
    gsl_rng_free(r2);
}
END_TEST

START_TEST(test_pl_sample_matches_pl)
{
    /* 4 items, k = 2: the empirical frequencies of the 12 ordered slates over
     * DRAWS samples (fixed seed) against the exact Plackett-Luce probabilities,
     * Pearson chi-square with 11 degrees of freedom at level 0.001 (critical
     * value ~31.26). The smallest expected count is ~4500. */
    enum { N = 4, DRAWS = 200000 };
    double s[N] = {0.5, -0.3, 1.0, 0.0}, key[2 * N + 1], work[N];
    long count[N][N] = {{0}};
    gsl_rng *r = rng_new(2024);
    int slate[2];
    for (int t = 0; t < DRAWS; t++) {
        ck_assert_int_eq(nn_pl_sample(slate, key, r, s, N, 2), DS_OK);
        count[slate[0]][slate[1]]++;
    }
    double chi2 = 0;
    for (int a = 0; a < N; a++)
        for (int b = 0; b < N; b++) {
            if (a == b) {
                ck_assert_int_eq(count[a][b], 0);
                continue;
            }
            int sl[2] = {a, b};
            double expect = DRAWS * exp(nn_pl_logprob(work, s, sl, N, 2));
            chi2 += (count[a][b] - expect) * (count[a][b] - expect) / expect;
        }
    double crit = gsl_cdf_chisq_Qinv(0.001, 11);
    printf("  pl sample: chi2 = %.2f (11 df, critical %.2f at 0.001)\n", chi2, crit);
    ck_assert_msg(chi2 < crit, "chi2 %.2f >= %.2f", chi2, crit);
    gsl_rng_free(r);
}
END_TEST

/* Across blocks of NN_PL_BLOCK weights: n = 150 logits (3 blocks, the last one
 * partial), k = 3, one logit (4) well above the others (in [-1.5, 1.5]). The first
 * pick's frequencies against softmax(s), and the second pick's, given that the
 * first was the top item, against the softmax of the rest: Pearson chi-square at
 * level 0.001 (149 and 148 df). The smallest expected counts: 200000 e^-1.5 / 302
 * ~ 150 for the first pick; given the top first (~18% of draws), ~ 26 for the
 * second. */
START_TEST(test_pl_sample_across_blocks)
{
    enum { N = 150, DRAWS = 200000 };
    double s[N], p[N], work[2 * N + N / NN_PL_BLOCK + 1];
    long first[N] = {0}, second[N] = {0}, given = 0;
    gsl_rng *r = rng_new(77);
    for (int i = 0; i < N; i++)
        s[i] = 1.5 * sin(0.37 * i); /* spread over [-1.5, 1.5] */
    s[70] = 4.0;
    int top = 0;
    for (int i = 1; i < N; i++)
        top = s[i] > s[top] ? i : top;
    int slate[3];
    for (int t = 0; t < DRAWS; t++) {
        ck_assert_int_eq(nn_pl_sample(slate, work, r, s, N, 3), DS_OK);
        ck_assert_int_eq(nn_pl_check(slate, N, 3), DS_OK);
        first[slate[0]]++;
        if (slate[0] == top) {
            second[slate[1]]++;
            given++;
        }
    }
    double z = 0, z_rest = 0;
    for (int i = 0; i < N; i++) {
        p[i] = exp(s[i]);
        z += p[i];
        z_rest += i == top ? 0 : p[i];
    }
    double chi_first = 0, chi_second = 0;
    for (int i = 0; i < N; i++) {
        double e1 = DRAWS * p[i] / z;
        chi_first += (first[i] - e1) * (first[i] - e1) / e1;
        if (i == top) {
            ck_assert_int_eq(second[i], 0);
            continue;
        }
        double e2 = (double)given * p[i] / z_rest;
        chi_second += (second[i] - e2) * (second[i] - e2) / e2;
    }
    ck_assert_msg(chi_first < gsl_cdf_chisq_Qinv(0.001, N - 1), "first pick chi2 %.1f",
                  chi_first);
    ck_assert_msg(chi_second < gsl_cdf_chisq_Qinv(0.001, N - 2), "second pick chi2 %.1f",
                  chi_second);
    /* A staircase of gap 1000: every stage's weights underflow relative to the first
     * logit, so each stage reweighs; the order is then certain. */
    double stairs[5] = {0, -1000, -2000, -3000, -4000};
    for (int t = 0; t < 20; t++) {
        int all[5];
        ck_assert_int_eq(nn_pl_sample(all, work, r, stairs, 5, 5), DS_OK);
        for (int j = 0; j < 5; j++)
            ck_assert_int_eq(all[j], j);
    }
    gsl_rng_free(r);
}
END_TEST

/* The fused head of a learning step against the functions it fuses, on the weights
 * w of logits s [n] (weights e) and slate [k]: the log-probability bit for bit, the
 * weights restored bit for bit, and the gradient of g_logp log P + g_entropy H (also
 * written over the logits themselves) equal to rounding, with the same tolerance as
 * the entropy's above. work [2 n] is scratch. */
static void check_head(nn_softmax *w, const double *e, const double *s, const int *slate,
                       int k, double *work)
{
    enum { NMAX = 300 };
    int n = w->n;
    double e0[NMAX], ds1[NMAX], ds2[NMAX], logits[NMAX], coef[NMAX + 2];
    memcpy(e0, e, (size_t)n * sizeof *e0);
    double a = nn_softmax_pl_logprob(w, work, slate, k);
    double b = nn_softmax_pl_logprob_coefs(w, work, slate, k, coef);
    ck_assert_msg(a == b || (isnan(a) && isnan(b)), "log P %.17g vs %.17g", a, b);
    ck_assert_int_eq(memcmp(e0, e, (size_t)n * sizeof *e0), 0);
    static const double g[3][2] = {{0.3, 0.0}, {0.0, -0.7}, {-1.1, 0.45}};
    for (int c = 0; c < 3; c++) {
        memset(ds1, 0, sizeof ds1);
        if (g[c][0] != 0.0)
            nn_softmax_pl_logprob_backward(ds1, work, g[c][0], w, slate, k);
        if (g[c][1] != 0.0)
            nn_softmax_entropy_backward(ds1, g[c][1], w);
        nn_softmax_head_backward(ds2, work, g[c][0], g[c][1], w, slate, k, coef);
        /* in place, over a copy of the logits that w then reads */
        nn_softmax v = *w;
        memcpy(logits, s, (size_t)n * sizeof *logits);
        v.s = logits;
        nn_softmax_head_backward(logits, work, g[c][0], g[c][1], &v, slate, k, coef);
        double big = 0;
        for (int i = 0; i < n; i++)
            big = fmax(big, fabs(ds1[i]));
        for (int i = 0; i < n; i++) {
            ck_assert_msg(fabs(ds1[i] - ds2[i]) <= 1e-10 * fabs(ds1[i]) + 1e-13 * big,
                          "head d/ds[%d] %.17g vs %.17g", i, ds1[i], ds2[i]);
            ck_assert_msg(logits[i] == ds2[i] || (isnan(logits[i]) && isnan(ds2[i])),
                          "in place d/ds[%d] %.17g vs %.17g", i, logits[i], ds2[i]);
        }
    }
}

/* The functions on shared weights give bit for bit what their counterparts give,
 * over the extreme logits of the reference tests (n up to 300, k up to 12). */
START_TEST(test_softmax_shared_weights)
{
    enum { NMAX = 300 };
    double s[NMAX], e[NMAX], ds1[NMAX], ds2[NMAX];
    double w1[2 * NMAX + NMAX / NN_PL_BLOCK + 1], w2[2 * NMAX + NMAX / NN_PL_BLOCK + 1];
    int slate[NMAX], again[NMAX];
    gsl_rng *r = rng_new(5), *r1 = rng_new(6), *r2 = rng_new(6);
    for (int kind = 0; kind < 8; kind++)
        for (int t = 0; t < 60; t++) {
            int n = 1 + (int)gsl_rng_uniform_int(r, NMAX);
            int k = 1 + (int)gsl_rng_uniform_int(r, n < 12 ? (unsigned long)n : 12);
            extreme_logits(s, n, kind, r);
            nn_softmax w;
            nn_softmax_weigh(&w, e, s, n);
            ck_assert_int_eq(nn_pl_sample(slate, w1, r1, s, n, k), DS_OK);
            ck_assert_int_eq(nn_softmax_pl_sample(again, w2, r2, &w, k), DS_OK);
            ck_assert_int_eq(memcmp(slate, again, (size_t)k * sizeof *slate), 0);
            double a = nn_pl_logprob(w1, s, slate, n, k);
            double b = nn_softmax_pl_logprob(&w, w2, slate, k);
            ck_assert_msg(a == b || (isnan(a) && isnan(b)), "log P %.17g vs %.17g", a, b);
            memset(ds1, 0, sizeof ds1);
            memset(ds2, 0, sizeof ds2);
            nn_pl_logprob_backward(ds1, w1, 0.3, s, slate, n, k);
            nn_softmax_pl_logprob_backward(ds2, w2, 0.3, &w, slate, k);
            ck_assert_int_eq(memcmp(ds1, ds2, (size_t)n * sizeof *ds1), 0);
            /* the entropy sums in another order: equal to rounding (REF_TOL above) */
            double h1 = nn_entropy(s, n), h2 = nn_softmax_entropy(&w);
            ck_assert_msg(fabs(h1 - h2) <= 1e-13 * fabs(h1) + 1e-300, "H %.17g vs %.17g", h1,
                          h2);
            memset(ds1, 0, sizeof ds1);
            memset(ds2, 0, sizeof ds2);
            nn_entropy_backward(ds1, 0.7, s, n);
            nn_softmax_entropy_backward(ds2, 0.7, &w);
            /* an element is p_i (log p_i + H): where the two nearly cancel its
             * relative error grows, so the tolerance is also relative to the largest */
            double big = 0;
            for (int i = 0; i < n; i++)
                big = fmax(big, fabs(ds1[i]));
            for (int i = 0; i < n; i++)
                ck_assert_msg(fabs(ds1[i] - ds2[i]) <= 1e-10 * fabs(ds1[i]) + 1e-13 * big,
                              "dH/ds[%d] %.17g vs %.17g", i, ds1[i], ds2[i]);
            check_head(&w, e, s, slate, k, w2);
        }
    gsl_rng_free(r);
    gsl_rng_free(r1);
    gsl_rng_free(r2);
}
END_TEST

/* nn_softmax_weigh_single against nn_softmax_weigh over the same extreme logits:
 * every weight has a relative error of at most eps = 2^-22 + R 2^-24, R the range
 * of the finite logits up to 708 (beyond, weights are computed in double), so
 * log P (2k normalisers and
 * weights) is within 2k eps + 1e-12 |log P|, the entropy within (2 + R) 2 eps,
 * and the head's gradient within 4 eps of its largest element; NaN where the
 * double weights give NaN; and a peaked softmax's entropy to 1e-5 of itself.
 * Prints the worst error in units of the bounds. */
START_TEST(test_softmax_single_weights)
{
    enum { NMAX = 300 };
    double s[NMAX], e1[NMAX], e2[NMAX], ds1[NMAX], ds2[NMAX];
    double work[2 * NMAX + NMAX / NN_PL_BLOCK + 1], coef1[NMAX + 2], coef2[NMAX + 2], worst = 0;
    int slate[NMAX];
    gsl_rng *r = rng_new(7), *r1 = rng_new(8);
    for (int kind = 0; kind < 8; kind++)
        for (int t = 0; t < 60; t++) {
            int n = 1 + (int)gsl_rng_uniform_int(r, NMAX);
            int k = 1 + (int)gsl_rng_uniform_int(r, n < 12 ? (unsigned long)n : 12);
            extreme_logits(s, n, kind, r);
            double lo = INFINITY, hi = -INFINITY;
            for (int i = 0; i < n; i++)
                if (isfinite(s[i])) {
                    lo = fmin(lo, s[i]);
                    hi = fmax(hi, s[i]);
                }
            /* differences beyond -708 are weighed in double */
            double eps = 0x1p-22 + fmin(hi - lo, 708.0) * 0x1p-24;
            nn_softmax w1, w2;
            nn_softmax_weigh(&w1, e1, s, n);
            nn_softmax_weigh_single(&w2, e2, s, n);
            ck_assert_int_eq(nn_softmax_pl_sample(slate, work, r1, &w1, k), DS_OK);
            double a = nn_softmax_pl_logprob_coefs(&w1, work, slate, k, coef1);
            double b = nn_softmax_pl_logprob_coefs(&w2, work, slate, k, coef2);
            double tol = 2 * k * eps + 1e-12 * fabs(a);
            ck_assert_msg(fabs(a - b) <= tol || (isnan(a) && isnan(b)),
                          "kind %d: log P %.17g vs %.17g", kind, a, b);
            worst = fmax(worst, fabs(a - b) / tol);
            double h1 = nn_softmax_entropy(&w1), h2 = nn_softmax_entropy(&w2);
            tol = (2 + (hi - lo)) * 2 * eps;
            ck_assert_msg(fabs(h1 - h2) <= tol || (isnan(h1) && isnan(h2)),
                          "kind %d: H %.17g vs %.17g", kind, h1, h2);
            worst = fmax(worst, fabs(h1 - h2) / tol);
            nn_softmax_head_backward(ds1, work, 0.3, -0.7, &w1, slate, k, coef1);
            nn_softmax_head_backward(ds2, work, 0.3, -0.7, &w2, slate, k, coef2);
            double big = 0;
            for (int i = 0; i < n; i++)
                big = fmax(big, fabs(ds1[i]));
            for (int i = 0; i < n; i++) {
                ck_assert_msg(fabs(ds1[i] - ds2[i]) <= 4 * eps * big,
                              "kind %d: d/ds[%d] %.17g vs %.17g", kind, i, ds1[i], ds2[i]);
                if (big > 0)
                    worst = fmax(worst, fabs(ds1[i] - ds2[i]) / (4 * eps * big));
            }
        }
    /* a peaked softmax (one logit 30 to 45 above 99 others): the entropy, about
     * 99 e^-gap (gap + 1), to 1e-5 of itself, not of the whole sum */
    for (int gap = 30; gap <= 45; gap += 5) {
        for (int i = 0; i < 100; i++)
            s[i] = i == 7 ? gap : 0.0;
        nn_softmax w1, w2;
        nn_softmax_weigh(&w1, e1, s, 100);
        nn_softmax_weigh_single(&w2, e2, s, 100);
        double h1 = nn_softmax_entropy(&w1), h2 = nn_softmax_entropy(&w2);
        ck_assert_msg(h1 > 0 && fabs(h1 - h2) <= 1e-5 * h1, "gap %d: H %.17g vs %.17g", gap,
                      h1, h2);
    }
    printf("  single-precision softmax weights: worst error %.3f of its bound\n", worst);
    gsl_rng_free(r);
    gsl_rng_free(r1);
}
END_TEST

/* ---- losses ---- */

enum { LN = 6 };

typedef struct {
    int huber;
    double delta;
    double pred[LN], target[LN];
} loss_ctx;

static double value_loss(void *p)
{
    loss_ctx *c = p;
    return c->huber ? nn_huber_forward(c->pred, c->target, c->delta, LN)
                    : nn_mse_forward(c->pred, c->target, LN);
}

START_TEST(test_losses)
{
    /* Residuals pred - target = (0.3, -0.7, 1.8, -2.5, 0.05, 1.2): with delta = 1
     * three lie in the quadratic region and three in the linear one, all >= 0.2
     * from the kinks at +-1.
     *   MSE   = (0.09 + 0.49 + 3.24 + 6.25 + 0.0025 + 1.44) / 6 = 11.5125 / 6
     *   Huber = (0.045 + 0.245 + 1.3 + 2.0 + 0.00125 + 0.7) / 6 = 4.29125 / 6 */
    loss_ctx c = {.delta = 1.0,
                  .pred = {1.3, 0.3, 2.8, -1.5, 1.05, 2.2},
                  .target = {1, 1, 1, 1, 1, 1}};
    ck_assert_double_eq_tol(nn_mse_forward(c.pred, c.target, LN), 11.5125 / 6, 1e-14);
    ck_assert_double_eq_tol(nn_huber_forward(c.pred, c.target, 1.0, LN), 4.29125 / 6,
                            1e-14);
    for (int h = 0; h <= 1; h++) {
        c.huber = h;
        double d[LN] = {0};
        if (h)
            nn_huber_backward(d, 1.0, c.pred, c.target, c.delta, LN);
        else
            nn_mse_backward(d, 1.0, c.pred, c.target, LN);
        check_grad(h ? "huber (both regions)" : "mse", c.pred, d, LN, value_loss, &c);
        if (h) /* the linear region's gradient is +-delta / n */
            ck_assert_double_eq_tol(d[3], -1.0 / LN, 1e-15);
    }
    /* With a large delta, Huber is half the MSE. */
    ck_assert_double_eq_tol(nn_huber_forward(c.pred, c.target, 10.0, LN),
                            0.5 * nn_mse_forward(c.pred, c.target, LN), 1e-14);
}
END_TEST

/* ---- a composed network, end to end ----
 * B states x [NI] -> h1 = tanh(x W1^T + b1) [B][NH] -> z = h1 W2^T + b2 [B][ND];
 * value v = h1 Wv^T + bv [B][1]; per state b, logits over its candidates
 * l_b = items(E, ebias, z_b) and the loss
 *   L = -(1/B) sum_b adv_b log P(slate_b | l_b) - beta (1/B) sum_b H(l_b)
 *       + c_v MSE(v, ret),
 * the shape of a policy-gradient loss with an entropy bonus and a value head. */

enum { NB = 3, NI = 5, NH = 8, ND = 4, NN_ITEMS = 9, NK = 3 };

typedef struct {
    nn_layout layout;
    nn_params p;
    size_t W1, b1, W2, b2, Wv, bv, E, eb;
    double x[NB * NI], dx[NB * NI];
    const int *cand[NB];
    int n_cand[NB];
    int slate[NB][NK];
    double adv[NB], ret[NB], beta, c_v;
    /* activations and workspaces */
    double h1[NB * NH], z[NB * ND], v[NB], logits[NB][NN_ITEMS], work[NN_ITEMS];
    double dh1[NB * NH], dpre[NB * NH], dz[NB * ND], dv[NB], dlogits[NN_ITEMS];
} net;

static double net_forward(void *ctx)
{
    net *n = ctx;
    const double *w = n->p.w;
    nn_dense_forward(n->h1, n->x, w + n->W1, w + n->b1, NB, NI, NH);
    nn_tanh_forward(n->h1, n->h1, NB * NH);
    nn_dense_forward(n->z, n->h1, w + n->W2, w + n->b2, NB, NH, ND);
    nn_dense_forward(n->v, n->h1, w + n->Wv, w + n->bv, NB, NH, 1);
    double loss = n->c_v * nn_mse_forward(n->v, n->ret, NB);
    for (int b = 0; b < NB; b++) {
        nn_items_forward(n->logits[b], w + n->E, w + n->eb, n->z + b * ND, n->cand[b],
                         n->n_cand[b], ND);
        double lp = nn_pl_logprob(n->work, n->logits[b], n->slate[b], n->n_cand[b], NK);
        double ent = nn_entropy(n->logits[b], n->n_cand[b]);
        loss += (-n->adv[b] * lp - n->beta * ent) / NB;
    }
    return loss;
}

/* Gradients of net_forward into n->p.grad and n->dx (both zeroed first). */
static void net_backward(net *n)
{
    const double *w = n->p.w;
    double *g = n->p.grad;
    nn_params_zero_grad(&n->p);
    memset(n->dx, 0, sizeof n->dx);
    memset(n->dh1, 0, sizeof n->dh1);
    memset(n->dpre, 0, sizeof n->dpre);
    memset(n->dz, 0, sizeof n->dz);
    memset(n->dv, 0, sizeof n->dv);
    net_forward(n);
    for (int b = 0; b < NB; b++) {
        int m = n->n_cand[b];
        memset(n->dlogits, 0, sizeof n->dlogits);
        nn_pl_logprob_backward(n->dlogits, n->work, -n->adv[b] / NB, n->logits[b],
                               n->slate[b], m, NK);
        nn_entropy_backward(n->dlogits, -n->beta / NB, n->logits[b], m);
        nn_items_backward(g + n->E, g + n->eb, n->dz + b * ND, n->dlogits, w + n->E,
                          n->z + b * ND, n->cand[b], m, ND);
    }
    nn_mse_backward(n->dv, n->c_v, n->v, n->ret, NB);
    nn_dense_backward(n->dh1, g + n->Wv, g + n->bv, n->dv, n->h1, w + n->Wv, NB, NH, 1);
    nn_dense_backward(n->dh1, g + n->W2, g + n->b2, n->dz, n->h1, w + n->W2, NB, NH, ND);
    nn_tanh_backward(n->dpre, n->dh1, n->h1, NB * NH);
    nn_dense_backward(n->dx, g + n->W1, g + n->b1, n->dpre, n->x, w + n->W1, NB, NI, NH);
}

START_TEST(test_composed_network)
{
    static const int cand1[5] = {8, 2, 5, 0, 6}, cand2[6] = {1, 3, 4, 7, 2, 0};
    char err[ERR_LEN];
    net *n = calloc(1, sizeof *n);
    ck_assert_ptr_nonnull(n);
    nn_layout *l = &n->layout;
    nn_layout_init(l);
    ck_assert_int_eq(nn_layout_add(l, "W1", NH, NI, &n->W1, err), DS_OK);
    ck_assert_int_eq(nn_layout_add(l, "b1", 1, NH, &n->b1, err), DS_OK);
    ck_assert_int_eq(nn_layout_add(l, "W2", ND, NH, &n->W2, err), DS_OK);
    ck_assert_int_eq(nn_layout_add(l, "b2", 1, ND, &n->b2, err), DS_OK);
    ck_assert_int_eq(nn_layout_add(l, "Wv", 1, NH, &n->Wv, err), DS_OK);
    ck_assert_int_eq(nn_layout_add(l, "bv", 1, 1, &n->bv, err), DS_OK);
    ck_assert_int_eq(nn_layout_add(l, "E", NN_ITEMS, ND, &n->E, err), DS_OK);
    ck_assert_int_eq(nn_layout_add(l, "ebias", 1, NN_ITEMS, &n->eb, err), DS_OK);
    ck_assert_int_eq(nn_params_alloc(&n->p, l->size, err), DS_OK);

    gsl_rng *r = rng_new(37);
    double *w = n->p.w;
    nn_init_orthogonal(w + n->W1, r, sqrt(2.0), NH, NI);
    nn_init_xavier(w + n->W2, r, ND, NH);
    nn_init_he(w + n->Wv, r, 1, NH);
    nn_init_normal(w + n->E, r, 0.5, NN_ITEMS * ND);
    /* non-zero biases, so their gradients are exercised away from 0 */
    nn_init_uniform(w + n->b1, r, 0.3, NH);
    nn_init_uniform(w + n->b2, r, 0.3, ND);
    nn_init_uniform(w + n->bv, r, 0.3, 1);
    nn_init_uniform(w + n->eb, r, 0.3, NN_ITEMS);
    fill_normal(n->x, r, 1.0, NB * NI);
    n->cand[0] = NULL;
    n->n_cand[0] = NN_ITEMS;
    n->cand[1] = cand1;
    n->n_cand[1] = 5;
    n->cand[2] = cand2;
    n->n_cand[2] = 6;
    const int slates[NB][NK] = {{3, 7, 0}, {4, 0, 2}, {5, 1, 3}}; /* positions */
    memcpy(n->slate, slates, sizeof slates);
    for (int b = 0; b < NB; b++) {
        ck_assert_int_eq(nn_pl_check(n->slate[b], n->n_cand[b], NK), DS_OK);
        n->adv[b] = gsl_ran_gaussian(r, 1.0);
        n->ret[b] = gsl_ran_gaussian(r, 1.0);
    }
    n->beta = 0.05;
    n->c_v = 0.5;

    net_backward(n);
    ck_assert(nn_all_finite(n->p.grad, n->p.n));
    for (int t = 0; t < l->n_tensors; t++) {
        const nn_tensor *ten = &l->tensors[t];
        char what[64];
        snprintf(what, sizeof what, "net %s", ten->name);
        check_grad(what, w + ten->offset, n->p.grad + ten->offset,
                   (size_t)ten->rows * ten->cols, net_forward, n);
    }
    check_grad("net input x", n->x, n->dx, NB * NI, net_forward, n);

    /* A few Adam steps on this loss lower it (sanity of the whole loop). */
    nn_adam_config cfg = {0.9, 0.999, 1e-8, 0};
    double before = net_forward(n);
    for (int t = 0; t < 20; t++) {
        net_backward(n);
        nn_clip_grad_norm(&n->p, 1.0);
        nn_adam_step(&n->p, &cfg, 1e-2);
    }
    double after = net_forward(n);
    ck_assert_msg(after < before, "loss %.6f -> %.6f", before, after);
    ck_assert(nn_all_finite(n->p.w, n->p.n));

    gsl_rng_free(r);
    nn_params_free(&n->p);
    free(n);
}
END_TEST

/* ---- optimisation ---- */

START_TEST(test_adam_known_answer)
{
    char err[ERR_LEN];
    nn_params p;
    ck_assert_int_eq(nn_params_alloc(&p, 3, err), DS_OK);
    const double w0[3] = {1.0, -2.0, 0.5};
    const double g1[3] = {0.1, -0.2, 0.3}, g2[3] = {-0.05, 0.4, 0.0};
    nn_adam_config cfg = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0};
    double lr = 0.01;
    memcpy(p.w, w0, sizeof w0);
    memcpy(p.grad, g1, sizeof g1);
    nn_adam_step(&p, &cfg, lr);
    /* Step 1: m = 0.1 g, v = 0.001 g^2; bias-corrected m_hat = g, v_hat = g^2, so
     * w = w0 - lr g / (|g| + eps) ~ w0 - 0.01 sign(g):
     * (0.990000001, -1.99000000050, 0.49000000033). */
    ck_assert_int_eq(p.step, 1);
    for (int i = 0; i < 3; i++) {
        ck_assert_double_eq_tol(p.m[i], 0.1 * g1[i], 1e-17);
        ck_assert_double_eq_tol(p.v[i], 0.001 * g1[i] * g1[i], 1e-18);
        ck_assert_double_eq_tol(p.w[i], w0[i] - lr * g1[i] / (fabs(g1[i]) + 1e-8), 1e-15);
    }
    ck_assert_double_eq_tol(p.w[0], 0.990000001, 1e-12);
    ck_assert_double_eq_tol(p.w[1], -1.9900000005, 1e-12);
    ck_assert_double_eq_tol(p.w[2], 0.49000000033, 1e-11);

    /* Step 2 by the formula: m = 0.9 m1 + 0.1 g2, v = 0.999 v1 + 0.001 g2^2,
     * m_hat = m / (1 - 0.9^2) = m / 0.19, v_hat = v / (1 - 0.999^2) = v / 0.001999. */
    double w1[3];
    memcpy(w1, p.w, sizeof w1);
    memcpy(p.grad, g2, sizeof g2);
    nn_adam_step(&p, &cfg, lr);
    ck_assert_int_eq(p.step, 2);
    for (int i = 0; i < 3; i++) {
        double m = 0.9 * 0.1 * g1[i] + 0.1 * g2[i];
        double v = 0.999 * 0.001 * g1[i] * g1[i] + 0.001 * g2[i] * g2[i];
        double want = w1[i] - lr * (m / 0.19) / (sqrt(v / 0.001999) + 1e-8);
        ck_assert_double_eq_tol(p.w[i], want, 1e-14);
    }

    /* Decoupled weight decay (AdamW), one step from fresh moments:
     * w = w0 - lr (g / (|g| + eps) + wd w0). */
    nn_params_free(&p);
    ck_assert_int_eq(nn_params_alloc(&p, 3, err), DS_OK);
    memcpy(p.w, w0, sizeof w0);
    memcpy(p.grad, g1, sizeof g1);
    cfg.weight_decay = 0.1;
    nn_adam_step(&p, &cfg, lr);
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq_tol(p.w[i],
                                w0[i] - lr * (g1[i] / (fabs(g1[i]) + 1e-8) + 0.1 * w0[i]),
                                1e-15);
    ck_assert_double_eq_tol(p.w[0], 1 - 0.01 * (0.1 / (0.1 + 1e-8) + 0.1), 1e-15);
    nn_params_free(&p);
}
END_TEST

START_TEST(test_clip_grad_norm)
{
    char err[ERR_LEN];
    nn_params p;
    ck_assert_int_eq(nn_params_alloc(&p, 3, err), DS_OK);
    /* (3, 0, -4) has norm 5; clipped to 1 it is (0.6, 0, -0.8). */
    const double g[3] = {3, 0, -4};
    memcpy(p.grad, g, sizeof g);
    ck_assert_double_eq_tol(nn_grad_norm(&p), 5.0, 1e-15);
    ck_assert_double_eq_tol(nn_clip_grad_norm(&p, 1.0), 5.0, 1e-15);
    ck_assert_double_eq_tol(p.grad[0], 0.6, 1e-15);
    ck_assert(p.grad[1] == 0);
    ck_assert_double_eq_tol(p.grad[2], -0.8, 1e-15);
    ck_assert_double_eq_tol(nn_grad_norm(&p), 1.0, 1e-15);
    /* Below the bound, or max_norm <= 0: unchanged. */
    memcpy(p.grad, g, sizeof g);
    ck_assert_double_eq_tol(nn_clip_grad_norm(&p, 10.0), 5.0, 1e-15);
    ck_assert_double_eq_tol(nn_clip_grad_norm(&p, 0.0), 5.0, 1e-15);
    ck_assert_int_eq(memcmp(p.grad, g, sizeof g), 0);
    /* A NaN norm is reported and nothing is scaled. */
    p.grad[1] = NAN;
    ck_assert(isnan(nn_clip_grad_norm(&p, 1.0)));
    ck_assert(p.grad[0] == 3 && p.grad[2] == -4);
    p.grad[1] = INFINITY;
    ck_assert(isinf(nn_clip_grad_norm(&p, 1.0)));
    ck_assert(p.grad[0] == 3);
    nn_params_free(&p);
}
END_TEST

/* The clip folded into the step: nn_clip_scale's known answers, and two steps of
 * nn_adam_step_scaled equal to nn_clip_grad_norm then nn_adam_step, to 1e-15
 * absolute on weights of order 1 (a few roundings reordered); grad untouched;
 * a non-finite weight after the step reported. */
START_TEST(test_adam_step_scaled)
{
    ck_assert_double_eq_tol(nn_clip_scale(5.0, 1.0), 0.2, 1e-16);
    ck_assert(nn_clip_scale(5.0, 10.0) == 1.0 && nn_clip_scale(5.0, 0.0) == 1.0);
    ck_assert(nn_clip_scale(NAN, 1.0) == 1.0 && nn_clip_scale(INFINITY, 1.0) == 1.0);
    char err[ERR_LEN];
    nn_params p, q;
    ck_assert_int_eq(nn_params_alloc(&p, 3, err), DS_OK);
    ck_assert_int_eq(nn_params_alloc(&q, 3, err), DS_OK);
    const double w0[3] = {1.0, -2.0, 0.5};
    const double g[2][3] = {{3.0, 0.0, -4.0}, {-0.05, 0.4, 0.0}};
    nn_adam_config cfg = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-5, .weight_decay = 0.01};
    memcpy(p.w, w0, sizeof w0);
    memcpy(q.w, w0, sizeof w0);
    for (int t = 0; t < 2; t++) {
        memcpy(p.grad, g[t], sizeof g[t]);
        memcpy(q.grad, g[t], sizeof g[t]);
        double scale = nn_clip_scale(nn_grad_norm(&p), 0.5);
        ck_assert_int_eq(nn_adam_step_scaled(&p, &cfg, 0.01, scale), 1);
        nn_clip_grad_norm(&q, 0.5);
        nn_adam_step(&q, &cfg, 0.01);
        ck_assert_int_eq(memcmp(p.grad, g[t], sizeof g[t]), 0);
        ck_assert_int_eq(p.step, q.step);
        for (int i = 0; i < 3; i++)
            ck_assert_double_eq_tol(p.w[i], q.w[i], 1e-15);
    }
    p.w[1] = INFINITY;
    ck_assert_int_eq(nn_adam_step_scaled(&p, &cfg, 0.01, 1.0), 0);
    nn_params_free(&p);
    nn_params_free(&q);
}
END_TEST

START_TEST(test_all_finite)
{
    double x[10];
    for (int i = 0; i < 10; i++)
        x[i] = i - 5.0;
    x[4] = DBL_MAX;
    x[5] = -DBL_MAX;
    x[6] = DBL_MIN / 2; /* subnormal */
    ck_assert_int_eq(nn_all_finite(x, 10), 1);
    ck_assert_int_eq(nn_all_finite(x, 0), 1);
    const double bad[3] = {NAN, INFINITY, -INFINITY};
    const int where[3] = {0, 9, 3};
    for (int b = 0; b < 3; b++) {
        double y[10];
        memcpy(y, x, sizeof x);
        y[where[b]] = bad[b];
        ck_assert_int_eq(nn_all_finite(y, 10), 0);
        ck_assert_int_eq(nn_all_finite(y, (size_t)where[b]), 1); /* just before it */
    }
}
END_TEST

static Suite *nn_suite(void)
{
    Suite *s = suite_create("nn");
    TCase *slabs = tcase_create("slabs");
    tcase_add_test(slabs, test_layout_and_params);
    tcase_add_test(slabs, test_initialisers);
    suite_add_tcase(s, slabs);
    TCase *layers = tcase_create("layers");
    tcase_add_test(layers, test_dense_known_answer);
    tcase_add_test(layers, test_dense_gradients);
    tcase_add_test(layers, test_activation_gradients);
    tcase_add_test(layers, test_items_gradients);
    tcase_add_test(layers, test_log_softmax);
    tcase_add_test(layers, test_entropy);
    tcase_add_test(layers, test_losses);
    suite_add_tcase(s, layers);
    TCase *pl = tcase_create("plackett_luce");
    tcase_add_test(pl, test_pl_hand_example);
    tcase_add_test(pl, test_pl_sums_to_one);
    tcase_add_test(pl, test_pl_gradient);
    tcase_add_test(pl, test_pl_gradient_extreme);
    tcase_add_test(pl, test_pl_matches_reference);
    tcase_add_test(pl, test_entropy_matches_reference);
    tcase_add_test(pl, test_pl_check_and_sample_validity);
    tcase_add_test(pl, test_pl_sample_matches_pl);
    tcase_add_test(pl, test_pl_sample_across_blocks);
    tcase_add_test(pl, test_softmax_shared_weights);
    tcase_add_test(pl, test_softmax_single_weights);
    suite_add_tcase(s, pl);
    TCase *net_tc = tcase_create("network");
    tcase_add_test(net_tc, test_composed_network);
    suite_add_tcase(s, net_tc);
    TCase *opt = tcase_create("optimisation");
    tcase_add_test(opt, test_adam_known_answer);
    tcase_add_test(opt, test_clip_grad_norm);
    tcase_add_test(opt, test_adam_step_scaled);
    tcase_add_test(opt, test_all_finite);
    suite_add_tcase(s, opt);
    return s;
}

int main(void)
{
    gsl_set_error_handler_off();
    SRunner *runner = srunner_create(nn_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
