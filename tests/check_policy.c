/* Tests of the state encoder (agents/encoder.c) and the policy and value networks
 * (agents/policy.c): known answers of the features on a hand example, finite-
 * difference gradient checks of the encoder, the logits, the value and a composed
 * actor-critic loss through encoder and networks, the initialisation, candidate
 * sets and the greedy slate.
 *
 * Gradient checks, as in the nn tests. The numerical derivative is the five-point
 * central difference
 *     f'(x) ~ [f(x - 2h) - 8 f(x - h) + 8 f(x + h) - f(x + 2h)] / (12 h),
 * h = 1e-4, whose truncation error is O(h^4) and rounding error ~ 1e-16 |f| / h
 * (~1e-12 here), so a correct gradient agrees to ~1e-10 or better. Each element
 * is compared by the relative error
 *     rel(a, b) = |a - b| / max(1e-8, |a| + |b|),
 * and the largest over a tensor must be below 1e-6 (the acceptance bound). Every
 * check also demands a gradient of size > 1e-3 somewhere in the tensor, so it
 * cannot pass on zeros; parameters that must not receive a gradient are checked
 * to be exactly 0 instead. The weights of the checks are random (dense weights
 * N(0, 1 / fan_in), so that no tanh saturates; the rest N(0, 0.5^2)), not the
 * CleanRL initialisation, whose 0.01 policy head would leave the lower layers'
 * gradients too small to tell apart from rounding (an element of size 1e-6
 * carries a rounding error of ~1e-12, a relative error of ~1e-6). */
#include "../agents/encoder.h"
#include "../agents/nn.h"
#include "../agents/policy.h"
#include "../sim/common.h"
#include "gradcheck.h"
#include "testutil.h"

#include <check.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void assert_all_zero(const char *what, const double *g, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(g[i] == 0.0, "%s: gradient %.3e at element %zu, expected 0", what,
                      g[i], i);
}

static gsl_rng *rng_new(unsigned long seed)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    ck_assert_ptr_nonnull(r);
    gsl_rng_set(r, seed);
    return r;
}

static size_t tensor_size(const nn_tensor *t) { return (size_t)t->rows * (size_t)t->cols; }

static int is_value_tensor(const char *name) { return strncmp(name, "v_", 2) == 0; }

/* ---- a small world: 7 items over 3 topics ---- */

enum { N_ITEMS = 7, N_TOPICS = 3, SLATE = 3, MAX_STEPS = 10, EMBED = 4, HIDDEN = 6 };
enum { N_FEAT = 2 * EMBED + 2 * N_TOPICS + 3 }; /* the encoder's n_features */

static const int world_topics[N_ITEMS] = {0, 1, 2, 0, 1, 2, 1};
static const double world_prices[N_ITEMS] = {1, 2, 3, 4, 5, 6, 7};

static env_spec world_spec(void)
{
    return (env_spec){.n_items = N_ITEMS, .n_users = 4, .slate = SLATE, .n_topics = N_TOPICS,
                      .max_steps = MAX_STEPS, .item_topic = world_topics,
                      .item_price = world_prices};
}

/* A history mixing clicks, purchases (after their click, as the engine records
 * them, and one late), skips and a repeated item (item 3 twice, so its rows add). */
static const history_entry world_history[] = {
    {3, HIST_CLICK}, {3, HIST_PURCHASE}, {-1, HIST_SKIP}, {1, HIST_CLICK},
    {-1, HIST_SKIP}, {5, HIST_PURCHASE}, {3, HIST_CLICK}, {6, HIST_CLICK},
    {-1, HIST_SKIP}, {0, HIST_PURCHASE}};
static const int world_session[] = {2, 4, 6, 0, 4, 5}; /* two earlier slates of 3 */

static observation world_obs(void)
{
    return (observation){.user = 1, .episode = 5, .step = 2, .time = 30.0,
                         .since_last_visit = 4.5, .candidates = NULL, .n_candidates = 0,
                         .history = world_history,
                         .history_len = (int)(sizeof world_history / sizeof *world_history)};
}

/* ---- encoder: known answers ---- */

START_TEST(test_encoder_known_answer)
{
    /* 3 items, topics {0, 1, 1}; embed_dim 2; E_in rows item0 (1, 0), item1 (0, 4),
     * item2 (3, -1); decay 0.5. History, newest first (j: entry, weight 0.5^j):
     *   0: click 0     1       3: click 2     0.125
     *   1: skip        0.5     4: click 1     0.0625
     *   2: buy 2       0.25    5: buy 0       0.03125
     * clicked: weights 1, 0.125, 0.0625, sum 19/16:
     *   ((1, 0) + 0.125 (3, -1) + 0.0625 (0, 4)) * 16/19 = (1.375, 0.125) * 16/19
     *   = (22/19, 2/19);
     * bought: weights 0.25, 0.03125, normalised 8/9, 1/9:
     *   8/9 (3, -1) + 1/9 (1, 0) = (25/9, -8/9);
     * click topics: topic 0 weight 1, topic 1 0.125 + 0.0625 = 0.1875; times 16/19:
     *   (16/19, 3/19);
     * session items {0, 1, 2, 1}: topics 0, 1, 1, 1 -> (1/4, 3/4);
     * scalars: step 2 / max_steps 8 = 0.25; log1p(e - 1) / 10 = 0.1; not first, 0. */
    static const int topics[3] = {0, 1, 1};
    env_spec spec = {.n_items = 3, .n_users = 1, .slate = 2, .n_topics = 2, .max_steps = 8,
                     .item_topic = topics, .item_price = NULL};
    char err[ERR_LEN];
    nn_layout layout;
    nn_layout_init(&layout);
    encoder enc;
    ck_assert_int_eq(encoder_init(&enc, &spec, 2, 0.5, &layout, err), DS_OK);
    ck_assert_int_eq(enc.n_features, 11);
    const nn_tensor *t = nn_layout_find(&layout, "E_in");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->rows, 3);
    ck_assert_int_eq(t->cols, 2);
    ck_assert_uint_eq(t->offset, enc.e_in);
    nn_params p;
    ck_assert_int_eq(nn_params_alloc(&p, layout.size, err), DS_OK);
    const double E_in[6] = {1, 0, 0, 4, 3, -1};
    memcpy(p.w + enc.e_in, E_in, sizeof E_in);

    const history_entry hist[6] = {{0, HIST_CLICK},    {-1, HIST_SKIP}, {2, HIST_PURCHASE},
                                   {2, HIST_CLICK},    {1, HIST_CLICK}, {0, HIST_PURCHASE}};
    const int session[4] = {0, 1, 2, 1};
    observation obs = {.step = 2, .since_last_visit = exp(1.0) - 1.0, .history = hist,
                       .history_len = 6};
    double x[11];
    encoder_cache cache;
    ck_assert_int_eq(encoder_features(&enc, p.w, &obs, session, 4, x, &cache, err), DS_OK);
    const double want[11] = {22.0 / 19, 2.0 / 19, 25.0 / 9, -8.0 / 9, 16.0 / 19, 3.0 / 19,
                             0.25,      0.75,     0.25,     0.1,      0.0};
    for (int i = 0; i < 11; i++) /* a few roundings of O(1) numbers */
        ck_assert_msg(fabs(x[i] - want[i]) < 1e-14, "feature %d: %.17g, expected %.17g", i,
                      x[i], want[i]);
    ck_assert_int_eq(cache.n_terms, 5); /* 3 clicks + 2 purchases; the skip adds none */

    /* Backward with dx = 1..11: the clicked slot sees (1, 2), the bought (3, 4).
     * Item 0: clicked weight 16/19, bought 1/9; item 1: clicked 1/19; item 2:
     * clicked 2/19, bought 8/9. */
    double dx[11];
    for (int i = 0; i < 11; i++)
        dx[i] = i + 1;
    encoder_backward(&enc, p.grad, dx, &cache);
    const double c0 = 16.0 / 19, b0 = 1.0 / 9, c1 = 1.0 / 19, c2 = 2.0 / 19, b2 = 8.0 / 9;
    const double want_grad[6] = {c0 + 3 * b0, 2 * c0 + 4 * b0, c1, 2 * c1,
                                 c2 + 3 * b2, 2 * c2 + 4 * b2};
    for (int i = 0; i < 6; i++)
        ck_assert_msg(fabs(p.grad[enc.e_in + i] - want_grad[i]) < 1e-14,
                      "dE_in %d: %.17g, expected %.17g", i, p.grad[enc.e_in + i],
                      want_grad[i]);

    /* A first visit at step 0, with no history and no earlier slates: zeros but the
     * first-visit flag. The cache may be NULL. */
    obs = (observation){.step = 0, .since_last_visit = INFINITY, .history = NULL,
                        .history_len = 0};
    for (int i = 0; i < 11; i++)
        x[i] = 99.0;
    ck_assert_int_eq(encoder_features(&enc, p.w, &obs, NULL, 0, x, NULL, err), DS_OK);
    for (int i = 0; i < 10; i++)
        ck_assert(x[i] == 0.0);
    ck_assert(x[10] == 1.0);

    /* Only skips and one purchase: no click groups, the bought mean is the item. */
    const history_entry hist2[3] = {{-1, HIST_SKIP}, {-1, HIST_SKIP}, {1, HIST_PURCHASE}};
    obs = (observation){.step = 7, .since_last_visit = 0.0, .history = hist2,
                        .history_len = 3};
    ck_assert_int_eq(encoder_features(&enc, p.w, &obs, session, 2, x, &cache, err), DS_OK);
    const double want2[11] = {0, 0, 0, 4, 0, 0, 0.5, 0.5, 7.0 / 8, 0, 0};
    for (int i = 0; i < 11; i++)
        ck_assert_msg(x[i] == want2[i], "feature %d: %.17g, expected %.17g", i, x[i],
                      want2[i]);

    /* A decay so small that decay^2 underflows: the weights are relative to the
     * newest entry of each group, so a lone click two steps back still gives its
     * item's embedding, not 0 / 0. */
    nn_layout tiny_layout;
    nn_layout_init(&tiny_layout);
    encoder tiny;
    ck_assert_int_eq(encoder_init(&tiny, &spec, 2, 1e-200, &tiny_layout, err), DS_OK);
    const history_entry hist3[4] = {{-1, HIST_SKIP}, {-1, HIST_SKIP}, {2, HIST_CLICK},
                                    {0, HIST_CLICK}};
    obs = (observation){.step = 1, .since_last_visit = 1.0, .history = hist3,
                        .history_len = 4};
    ck_assert_int_eq(encoder_features(&tiny, p.w, &obs, NULL, 0, x, NULL, err), DS_OK);
    ck_assert(x[0] == 3.0 && x[1] == -1.0);  /* E_in[2]; item 0 weighs 1e-200 */
    ck_assert(x[4] == 1e-200 && x[5] == 1.0); /* click topics: items 0 and 2 */
    nn_params_free(&p);
}
END_TEST

START_TEST(test_encoder_errors)
{
    env_spec spec = world_spec();
    char err[ERR_LEN];
    nn_layout layout;
    nn_layout_init(&layout);
    encoder enc;
    ck_assert_int_eq(encoder_init(&enc, &spec, 0, 0.8, &layout, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "'embed_dim'"));
    ck_assert_int_eq(encoder_init(&enc, &spec, 4, 0.0, &layout, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "'history_decay'"));
    ck_assert_int_eq(encoder_init(&enc, &spec, 4, 1.5, &layout, err), DS_EINPUT);
    ck_assert_int_eq(encoder_init(&enc, &spec, 4, NAN, &layout, err), DS_EINPUT);
    int bad_topics[N_ITEMS] = {0, 1, 2, 3, 0, 0, 0};
    env_spec bad = spec;
    bad.item_topic = bad_topics;
    ck_assert_int_eq(encoder_init(&enc, &bad, 4, 0.8, &layout, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "item 3"));
    ck_assert_int_eq(layout.n_tensors, 0); /* nothing registered by the failures */
    ck_assert_int_eq(encoder_init(&enc, &spec, 4, 1.0, &layout, err), DS_OK);
    ck_assert_int_eq(encoder_init(&enc, &spec, 4, 1.0, &layout, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "'E_in'")); /* taken */

    nn_params p;
    ck_assert_int_eq(nn_params_alloc(&p, layout.size, err), DS_OK);
    double x[N_FEAT];
    history_entry hist[ENCODER_MAX_HISTORY + 1];
    for (int j = 0; j <= ENCODER_MAX_HISTORY; j++)
        hist[j] = (history_entry){j % N_ITEMS, HIST_CLICK};
    observation obs = world_obs();
    obs.history = hist;
    obs.history_len = ENCODER_MAX_HISTORY; /* the longest allowed */
    ck_assert_int_eq(encoder_features(&enc, p.w, &obs, NULL, 0, x, NULL, err), DS_OK);
    obs.history_len = ENCODER_MAX_HISTORY + 1;
    ck_assert_int_eq(encoder_features(&enc, p.w, &obs, NULL, 0, x, NULL, err), DS_EINPUT);
    obs.history_len = 3;
    hist[1] = (history_entry){N_ITEMS, HIST_PURCHASE};
    ck_assert_int_eq(encoder_features(&enc, p.w, &obs, NULL, 0, x, NULL, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "item 7"));
    hist[1] = (history_entry){-1, HIST_CLICK};
    ck_assert_int_eq(encoder_features(&enc, p.w, &obs, NULL, 0, x, NULL, err), DS_EINPUT);
    hist[1] = (history_entry){2, 7};
    ck_assert_int_eq(encoder_features(&enc, p.w, &obs, NULL, 0, x, NULL, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "kind 7"));
    hist[1] = (history_entry){5, HIST_SKIP}; /* a skip's item is never read */
    ck_assert_int_eq(encoder_features(&enc, p.w, &obs, NULL, 0, x, NULL, err), DS_OK);
    const int bad_session[2] = {1, -1};
    ck_assert_int_eq(encoder_features(&enc, p.w, &obs, bad_session, 2, x, NULL, err),
                     DS_EINPUT);
    obs.since_last_visit = NAN;
    ck_assert_int_eq(encoder_features(&enc, p.w, &obs, NULL, 0, x, NULL, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "'since_last_visit'"));
    nn_params_free(&p);
}
END_TEST

/* ---- encoder: gradient ---- */

typedef struct {
    encoder enc;
    const double *w;
    observation obs;
    double x[N_FEAT];
    double r[N_FEAT];
} encoder_ctx;

/* L = r . features */
static double encoder_loss(void *p)
{
    encoder_ctx *c = p;
    char err[ERR_LEN];
    ck_assert_int_eq(encoder_features(&c->enc, c->w, &c->obs, world_session, 6, c->x, NULL,
                                      err),
                     DS_OK);
    double s = 0;
    for (int i = 0; i < c->enc.n_features; i++)
        s += c->r[i] * c->x[i];
    return s;
}

START_TEST(test_encoder_gradient)
{
    env_spec spec = world_spec();
    char err[ERR_LEN];
    nn_layout layout;
    nn_layout_init(&layout);
    encoder_ctx c;
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(encoder_init(&c.enc, &spec, EMBED, 0.8, &layout, err), DS_OK);
    ck_assert_int_eq(c.enc.n_features, N_FEAT);
    nn_params p;
    ck_assert_int_eq(nn_params_alloc(&p, layout.size, err), DS_OK);
    gsl_rng *r = rng_new(11);
    nn_init_normal(p.w, r, 0.5, p.n);
    nn_init_normal(c.r, r, 1.0, (size_t)c.enc.n_features);
    c.w = p.w;
    c.obs = world_obs();

    encoder_cache cache;
    ck_assert_int_eq(encoder_features(&c.enc, p.w, &c.obs, world_session, 6, c.x, &cache,
                                      err),
                     DS_OK);
    ck_assert_int_eq(cache.n_terms, 7); /* 4 clicks + 3 purchases */
    encoder_backward(&c.enc, p.grad, c.r, &cache);
    check_grad("encoder E_in", p.w + c.enc.e_in, p.grad + c.enc.e_in,
               (size_t)N_ITEMS * EMBED, encoder_loss, &c);
    /* refresh: after E_in moves, the stored x with its cache becomes the features
     * of the new E_in, bit for bit (the same operations in the same order) */
    double stored[N_FEAT], fresh[N_FEAT];
    memcpy(stored, c.x, sizeof stored);
    for (size_t i = 0; i < (size_t)N_ITEMS * EMBED; i++)
        p.w[c.enc.e_in + i] += 0.1 * (double)(i % 5) - 0.2;
    ck_assert_int_eq(encoder_features(&c.enc, p.w, &c.obs, world_session, 6, fresh, NULL,
                                      err),
                     DS_OK);
    ck_assert_int_ne(memcmp(stored, fresh, sizeof fresh), 0);
    encoder_refresh(&c.enc, p.w, &cache, stored);
    ck_assert_int_eq(memcmp(stored, fresh, sizeof fresh), 0);

    /* item 2 and item 4 appear only in the session slates: no gradient */
    for (int e = 0; e < EMBED; e++) {
        ck_assert(p.grad[c.enc.e_in + 2 * EMBED + e] == 0.0);
        ck_assert(p.grad[c.enc.e_in + 4 * EMBED + e] == 0.0);
    }
    gsl_rng_free(r);
    nn_params_free(&p);
}
END_TEST

/* ---- policy and value networks ---- */

static const int subset[5] = {6, 2, 4, 0, 5};

typedef struct {
    nn_layout layout;
    encoder enc;
    policy_net net;
    nn_params p;
    policy_work work;
    const int *cand; /* NULL: identity */
    int n;
    double x[N_FEAT];
    double r[N_ITEMS]; /* weights of the logits in the loss */
    double rv;         /* weight of the value */
} net_ctx;

/* The encoder and both trunks in one layout: dense weights N(0, 1 / fan_in), the
 * rest N(0, 0.5^2), x N(0, 1). */
static void net_setup(net_ctx *c, unsigned long seed, const int *cand, int n)
{
    memset(c, 0, sizeof *c);
    env_spec spec = world_spec();
    char err[ERR_LEN];
    nn_layout_init(&c->layout);
    ck_assert_int_eq(encoder_init(&c->enc, &spec, EMBED, 0.8, &c->layout, err), DS_OK);
    ck_assert_int_eq(policy_init(&c->net, N_ITEMS, c->enc.n_features, HIDDEN, EMBED, 1,
                                 &c->layout, err),
                     DS_OK);
    ck_assert_int_eq(nn_params_alloc(&c->p, c->layout.size, err), DS_OK);
    ck_assert_int_eq(policy_work_alloc(&c->work, &c->net, err), DS_OK);
    gsl_rng *r = rng_new(seed);
    nn_init_normal(c->p.w, r, 0.5, c->p.n);
    for (int i = 0; i < c->layout.n_tensors; i++) {
        const nn_tensor *t = &c->layout.tensors[i];
        if (strstr(t->name, "_W")) /* N(0, 1 / fan_in): tanh stays unsaturated */
            nn_init_normal(c->p.w + t->offset, r, 1.0 / sqrt(t->cols), tensor_size(t));
    }
    nn_init_normal(c->x, r, 1.0, N_FEAT);
    nn_init_normal(c->r, r, 1.0, N_ITEMS);
    c->rv = 1.7;
    gsl_rng_free(r);
    c->cand = cand;
    c->n = n;
}

static void net_teardown(net_ctx *c)
{
    policy_work_free(&c->work);
    nn_params_free(&c->p);
}

/* L = r . logits */
static double logits_loss(void *p)
{
    net_ctx *c = p;
    policy_forward(&c->net, c->p.w, c->x, c->cand, c->n, &c->work, NULL);
    double s = 0;
    for (int j = 0; j < c->n; j++)
        s += c->r[j] * c->work.logits[j];
    return s;
}

/* L = rv * V */
static double value_loss(void *p)
{
    net_ctx *c = p;
    double v;
    policy_forward(&c->net, c->p.w, c->x, c->cand, c->n, &c->work, &v);
    return c->rv * v;
}

/* Checks every tensor whose name passes want (and x) against f; the others must
 * have exactly zero gradient. dx is the gradient of x. */
static void check_tensors(net_ctx *c, int (*want)(const char *), const double *dx,
                          loss_fn f, const char *what)
{
    char label[64];
    for (int i = 0; i < c->layout.n_tensors; i++) {
        const nn_tensor *t = &c->layout.tensors[i];
        snprintf(label, sizeof label, "%s %s", what, t->name);
        if (want(t->name))
            check_grad(label, c->p.w + t->offset, c->p.grad + t->offset, tensor_size(t), f,
                       c);
        else
            assert_all_zero(label, c->p.grad + t->offset, tensor_size(t));
    }
    snprintf(label, sizeof label, "%s x", what);
    check_grad(label, c->x, dx, N_FEAT, f, c);
}

static int is_policy_tensor(const char *name)
{
    return strcmp(name, "E_in") != 0 && !is_value_tensor(name);
}

START_TEST(test_logits_gradient)
{
    for (int variant = 0; variant < 2; variant++) {
        net_ctx c;
        if (variant == 0)
            net_setup(&c, 21, subset, 5);
        else
            net_setup(&c, 22, NULL, N_ITEMS);
        double dx[N_FEAT] = {0};
        logits_loss(&c);
        policy_backward(&c.net, c.p.w, c.p.grad, c.x, c.cand, c.n, c.r, 0.0, dx, &c.work);
        check_tensors(&c, is_policy_tensor, dx, logits_loss,
                      variant == 0 ? "logits(subset)" : "logits(all)");
        if (variant == 0) /* E_out rows of items 1 and 3 are not candidates */
            for (int e = 0; e < EMBED; e++) {
                ck_assert(c.p.grad[c.net.E_out + 1 * EMBED + e] == 0.0);
                ck_assert(c.p.grad[c.net.E_out + 3 * EMBED + e] == 0.0);
            }

        /* backward accumulates: a second pass doubles every gradient (exactly for
         * the outer products; dx goes through a dgemv onto a non-zero vector, whose
         * summation order may differ, so to rounding) */
        double *once = malloc(c.p.n * sizeof *once);
        ck_assert_ptr_nonnull(once);
        memcpy(once, c.p.grad, c.p.n * sizeof *once);
        double dx2[N_FEAT];
        memcpy(dx2, dx, sizeof dx);
        logits_loss(&c);
        policy_backward(&c.net, c.p.w, c.p.grad, c.x, c.cand, c.n, c.r, 0.0, dx2, &c.work);
        for (size_t i = 0; i < c.p.n; i++)
            ck_assert(c.p.grad[i] == 2 * once[i]);
        for (int i = 0; i < N_FEAT; i++)
            ck_assert_double_eq_tol(dx2[i], 2 * dx[i], 1e-13 * (1 + fabs(dx[i])));
        free(once);
        net_teardown(&c);
    }
}
END_TEST

START_TEST(test_value_gradient)
{
    /* twice: after a forward that ran the value trunk, and after one that skipped
     * it (policy_backward then runs it itself); both must give the same gradient */
    double *first = NULL;
    for (int lazy = 0; lazy < 2; lazy++) {
        net_ctx c;
        net_setup(&c, 31, subset, 5);
        double dx[N_FEAT] = {0}, v;
        policy_forward(&c.net, c.p.w, c.x, c.cand, c.n, &c.work, lazy ? NULL : &v);
        policy_backward(&c.net, c.p.w, c.p.grad, c.x, c.cand, c.n, NULL, c.rv, dx, &c.work);
        if (!lazy) {
            check_tensors(&c, is_value_tensor, dx, value_loss, "value");
            first = malloc(c.p.n * sizeof *first);
            ck_assert_ptr_nonnull(first);
            memcpy(first, c.p.grad, c.p.n * sizeof *first);
        } else {
            ck_assert_int_eq(memcmp(first, c.p.grad, c.p.n * sizeof *first), 0);
        }
        net_teardown(&c);
    }
    free(first);
}
END_TEST

START_TEST(test_forward_paths_agree)
{
    /* The subset path (one dot product per candidate) and the identity path (one
     * dgemv) give the same logits for the same items, to rounding; the value does
     * not depend on the candidates; a net without a value trunk reports NAN. */
    net_ctx c;
    net_setup(&c, 41, NULL, N_ITEMS);
    double all[N_ITEMS], v_all, v_sub;
    policy_forward(&c.net, c.p.w, c.x, NULL, N_ITEMS, &c.work, &v_all);
    memcpy(all, c.work.logits, sizeof all);
    policy_forward(&c.net, c.p.w, c.x, subset, 5, &c.work, &v_sub);
    for (int j = 0; j < 5; j++)
        ck_assert_double_eq_tol(c.work.logits[j], all[subset[j]], 1e-13);
    ck_assert(v_all == v_sub);
    ck_assert(isfinite(v_all));

    char err[ERR_LEN];
    nn_layout l;
    nn_layout_init(&l);
    policy_net bare;
    ck_assert_int_eq(policy_init(&bare, N_ITEMS, N_FEAT, HIDDEN, EMBED, 0, &l, err), DS_OK);
    ck_assert_int_eq(l.n_tensors, 8);
    ck_assert_ptr_null(nn_layout_find(&l, "v_W1"));
    nn_params p;
    ck_assert_int_eq(nn_params_alloc(&p, l.size, err), DS_OK);
    policy_work w;
    ck_assert_int_eq(policy_work_alloc(&w, &bare, err), DS_OK);
    gsl_rng *r = rng_new(5);
    policy_init_weights(&bare, p.w, r);
    double v = 0;
    policy_forward(&bare, p.w, c.x, NULL, N_ITEMS, &w, &v);
    ck_assert(isnan(v));
    /* dvalue is ignored without a value trunk */
    policy_backward(&bare, p.w, p.grad, c.x, NULL, N_ITEMS, NULL, 1.0, NULL, &w);
    assert_all_zero("bare", p.grad, p.n);
    gsl_rng_free(r);
    policy_work_free(&w);
    policy_work_free(&w); /* a freed workspace is a no-op */
    policy_work_free(NULL);
    nn_params_free(&p);
    net_teardown(&c);
}
END_TEST

/* ---- the composed actor-critic loss, through encoder and networks ---- */

typedef struct {
    net_ctx n;
    observation obs;
    int slate[SLATE];
    double A, R, c_v, c_e;
    double x[N_FEAT];
} ac_ctx;

/* L = -log pi(slate) A + c_v (V - R)^2 - c_e H, with x = features(obs; E_in). */
static double ac_loss(void *p)
{
    ac_ctx *c = p;
    net_ctx *n = &c->n;
    char err[ERR_LEN];
    ck_assert_int_eq(encoder_features(&n->enc, n->p.w, &c->obs, world_session, 6, c->x, NULL,
                                      err),
                     DS_OK);
    double v;
    policy_forward(&n->net, n->p.w, c->x, n->cand, n->n, &n->work, &v);
    double logp = nn_pl_logprob(n->work.work, n->work.logits, c->slate, n->n, SLATE);
    double H = nn_entropy(n->work.logits, n->n);
    return -logp * c->A + c->c_v * (v - c->R) * (v - c->R) - c->c_e * H;
}

START_TEST(test_composed_loss_gradient)
{
    for (int variant = 0; variant < 2; variant++) {
        ac_ctx c;
        memset(&c, 0, sizeof c);
        if (variant == 0)
            net_setup(&c.n, 51, subset, 5);
        else
            net_setup(&c.n, 52, NULL, N_ITEMS);
        net_ctx *n = &c.n;
        c.obs = world_obs();
        c.A = 1.3;
        c.R = 0.4;
        c.c_v = 0.5;
        c.c_e = 0.05;
        const int slate[SLATE] = {3, 0, 4}; /* positions in the candidate list */
        memcpy(c.slate, slate, sizeof slate);

        /* the agent's backward: encoder, forward, loss gradients, backward */
        char err[ERR_LEN];
        encoder_cache cache;
        ck_assert_int_eq(encoder_features(&n->enc, n->p.w, &c.obs, world_session, 6, c.x,
                                          &cache, err),
                         DS_OK);
        double v;
        policy_forward(&n->net, n->p.w, c.x, n->cand, n->n, &n->work, &v);
        double *dl = n->work.dlogits;
        memset(dl, 0, (size_t)n->n * sizeof *dl);
        nn_pl_logprob_backward(dl, n->work.work, -c.A, n->work.logits, c.slate, n->n, SLATE);
        nn_entropy_backward(dl, -c.c_e, n->work.logits, n->n);
        double dx[N_FEAT] = {0};
        policy_backward(&n->net, n->p.w, n->p.grad, c.x, n->cand, n->n, dl,
                        2 * c.c_v * (v - c.R), dx, &n->work);
        encoder_backward(&n->enc, n->p.grad, dx, &cache);

        /* check_tensors would also perturb n->x, which this loss does not read;
         * check the slab only */
        char label[64];
        for (int i = 0; i < n->layout.n_tensors; i++) {
            const nn_tensor *t = &n->layout.tensors[i];
            snprintf(label, sizeof label, "%s %s", variant == 0 ? "ac(subset)" : "ac(all)",
                     t->name);
            check_grad(label, n->p.w + t->offset, n->p.grad + t->offset, tensor_size(t),
                       ac_loss, &c);
        }
        net_teardown(n);
    }
}
END_TEST

/* ---- initialisation ---- */

START_TEST(test_init)
{
    env_spec spec = world_spec();
    char err[ERR_LEN];
    nn_layout layout;
    nn_layout_init(&layout);
    encoder enc;
    policy_net net;
    ck_assert_int_eq(encoder_init(&enc, &spec, EMBED, 0.8, &layout, err), DS_OK);
    ck_assert_int_eq(policy_init(&net, N_ITEMS, enc.n_features, HIDDEN, EMBED, 1, &layout,
                                 err),
                     DS_OK);
    /* every tensor, in order, with its shape */
    const struct {
        const char *name;
        int rows, cols;
    } want[] = {{"E_in", N_ITEMS, EMBED}, {"pi_W1", HIDDEN, N_FEAT}, {"pi_b1", 1, HIDDEN},
                {"pi_W2", HIDDEN, HIDDEN}, {"pi_b2", 1, HIDDEN},     {"pi_W3", EMBED, HIDDEN},
                {"pi_b3", 1, EMBED},       {"E_out", N_ITEMS, EMBED}, {"b_out", 1, N_ITEMS},
                {"v_W1", HIDDEN, N_FEAT},  {"v_b1", 1, HIDDEN},     {"v_W2", HIDDEN, HIDDEN},
                {"v_b2", 1, HIDDEN},       {"v_W3", 1, HIDDEN},     {"v_b3", 1, 1}};
    int n_want = (int)(sizeof want / sizeof *want);
    ck_assert_int_eq(layout.n_tensors, n_want);
    for (int i = 0; i < n_want; i++) {
        const nn_tensor *t = &layout.tensors[i];
        ck_assert_str_eq(t->name, want[i].name);
        ck_assert_int_eq(t->rows, want[i].rows);
        ck_assert_int_eq(t->cols, want[i].cols);
    }
    ck_assert_uint_eq(nn_layout_find(&layout, "pi_W3")->offset, net.pi_W3);
    ck_assert_uint_eq(nn_layout_find(&layout, "v_b3")->offset, net.v_b3);
    ck_assert_uint_eq(nn_layout_find(&layout, "b_out")->offset, net.b_out);

    /* same seed, same weights; another seed, other weights */
    nn_params a, b;
    ck_assert_int_eq(nn_params_alloc(&a, layout.size, err), DS_OK);
    ck_assert_int_eq(nn_params_alloc(&b, layout.size, err), DS_OK);
    for (int pass = 0; pass < 2; pass++) {
        gsl_rng *r = rng_new(pass == 0 ? 42 : 43);
        encoder_init_weights(&enc, pass == 0 ? a.w : b.w, r);
        policy_init_weights(&net, pass == 0 ? a.w : b.w, r);
        gsl_rng_free(r);
    }
    ck_assert_int_ne(memcmp(a.w, b.w, a.n * sizeof *a.w), 0);
    gsl_rng *r = rng_new(42);
    encoder_init_weights(&enc, b.w, r);
    policy_init_weights(&net, b.w, r);
    gsl_rng_free(r);
    ck_assert_int_eq(memcmp(a.w, b.w, a.n * sizeof *a.w), 0);

    /* CleanRL gains: W W^T = gain^2 I for these wide-or-square weights (rows <=
     * cols), to rounding; zero biases. */
    const struct {
        size_t at;
        int rows, cols;
        double gain;
    } ortho[] = {{net.pi_W1, HIDDEN, N_FEAT, sqrt(2.0)},
                 {net.pi_W2, HIDDEN, HIDDEN, sqrt(2.0)},
                 {net.pi_W3, EMBED, HIDDEN, 0.01},
                 {net.v_W1, HIDDEN, N_FEAT, sqrt(2.0)},
                 {net.v_W2, HIDDEN, HIDDEN, sqrt(2.0)},
                 {net.v_W3, 1, HIDDEN, 1.0}};
    for (size_t k = 0; k < sizeof ortho / sizeof *ortho; k++) {
        const double *W = a.w + ortho[k].at;
        int rows = ortho[k].rows, cols = ortho[k].cols;
        double g2 = ortho[k].gain * ortho[k].gain;
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < rows; j++) {
                double s = 0;
                for (int e = 0; e < cols; e++)
                    s += W[i * cols + e] * W[j * cols + e];
                ck_assert_double_eq_tol(s, i == j ? g2 : 0.0, 1e-12 * (1 + g2));
            }
    }
    const size_t biases[] = {net.pi_b1, net.pi_b2, net.v_b1, net.v_b2};
    for (size_t k = 0; k < 4; k++)
        assert_all_zero("hidden bias", a.w + biases[k], HIDDEN);
    assert_all_zero("pi_b3", a.w + net.pi_b3, EMBED);
    assert_all_zero("b_out", a.w + net.b_out, N_ITEMS);
    assert_all_zero("v_b3", a.w + net.v_b3, 1);
    nn_params_free(&a);
    nn_params_free(&b);

    /* The embeddings are N(0, 0.1^2): with 4000 x 16 = 64000 draws each, the
     * relative standard error of a variance estimate is sqrt(2 / 64000) = 0.0056;
     * 5% is ~9 SE. */
    enum { BIG = 4000, D = 16 };
    int *topics = calloc(BIG, sizeof *topics);
    ck_assert_ptr_nonnull(topics);
    env_spec big = {.n_items = BIG, .n_users = 1, .slate = 3, .n_topics = 1, .max_steps = 5,
                    .item_topic = topics};
    nn_layout_init(&layout);
    ck_assert_int_eq(encoder_init(&enc, &big, D, 0.8, &layout, err), DS_OK);
    ck_assert_int_eq(policy_init(&net, BIG, enc.n_features, 8, D, 0, &layout, err), DS_OK);
    ck_assert_int_eq(nn_params_alloc(&a, layout.size, err), DS_OK);
    r = rng_new(3);
    encoder_init_weights(&enc, a.w, r);
    policy_init_weights(&net, a.w, r);
    gsl_rng_free(r);
    const size_t emb[2] = {enc.e_in, net.E_out};
    for (int k = 0; k < 2; k++) {
        double ss = 0;
        for (size_t i = 0; i < (size_t)BIG * D; i++)
            ss += a.w[emb[k] + i] * a.w[emb[k] + i];
        ck_assert_double_eq_tol(ss / (BIG * D) / 0.01, 1.0, 0.05);
    }
    nn_params_free(&a);
    free(topics);
}
END_TEST

START_TEST(test_policy_errors)
{
    char err[ERR_LEN];
    nn_layout layout;
    nn_layout_init(&layout);
    policy_net net;
    ck_assert_int_eq(policy_init(&net, N_ITEMS, N_FEAT, 0, EMBED, 1, &layout, err),
                     DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "'hidden'"));
    ck_assert_int_eq(policy_init(&net, N_ITEMS, N_FEAT, HIDDEN, 0, 1, &layout, err),
                     DS_EINPUT);
    ck_assert_int_eq(policy_init(&net, 0, N_FEAT, HIDDEN, EMBED, 1, &layout, err), DS_EINPUT);
    ck_assert_int_eq(layout.n_tensors, 0);
    ck_assert_int_eq(policy_init(&net, N_ITEMS, N_FEAT, HIDDEN, EMBED, 1, &layout, err),
                     DS_OK);
    ck_assert_int_eq(policy_init(&net, N_ITEMS, N_FEAT, HIDDEN, EMBED, 1, &layout, err),
                     DS_EINPUT); /* the names are taken */

    /* candidate sets: the identity catalogue becomes NULL, anything else is kept */
    const int ident[N_ITEMS] = {0, 1, 2, 3, 4, 5, 6};
    const int perm[N_ITEMS] = {1, 0, 2, 3, 4, 5, 6};
    const int *ids = perm;
    ck_assert_int_eq(policy_candidates(&net, ident, N_ITEMS, &ids, err), DS_OK);
    ck_assert_ptr_null(ids);
    ck_assert_int_eq(policy_candidates(&net, perm, N_ITEMS, &ids, err), DS_OK);
    ck_assert_ptr_eq(ids, perm);
    ck_assert_int_eq(policy_candidates(&net, ident, 5, &ids, err), DS_OK);
    ck_assert_ptr_eq(ids, ident); /* a prefix is not the catalogue */
    ck_assert_int_eq(policy_candidates(&net, ident, 0, &ids, err), DS_EINPUT);
    ck_assert_int_eq(policy_candidates(&net, ident, N_ITEMS + 1, &ids, err), DS_EINPUT);
    const int bad[2] = {3, N_ITEMS};
    ck_assert_int_eq(policy_candidates(&net, bad, 2, &ids, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "candidate 7"));
}
END_TEST

START_TEST(test_top_k)
{
    /* by hand: descending 5 (pos 3), 4 (pos 1), 4 (pos 5: tie, lower position
     * first), 2 (pos 0) */
    const double logits[6] = {2, 4, -1, 5, 0, 4};
    int slate[4];
    policy_top_k(slate, logits, 6, 4);
    ck_assert_int_eq(slate[0], 3);
    ck_assert_int_eq(slate[1], 1);
    ck_assert_int_eq(slate[2], 5);
    ck_assert_int_eq(slate[3], 0);
    const double flat[3] = {1, 1, 1};
    policy_top_k(slate, flat, 3, 3);
    ck_assert_int_eq(slate[0], 0);
    ck_assert_int_eq(slate[1], 1);
    ck_assert_int_eq(slate[2], 2);
    policy_top_k(slate, logits, 6, 1);
    ck_assert_int_eq(slate[0], 3);
}
END_TEST

/* ---- single precision: 20 items at d 16 (the eight-row kernel for 16 rows, the
 * scalar rows for 4), a batch of SB rows allocated single, weights N(0, 0.5^2) ---- */

enum { SN = 20, SD = 16, SF = 9, SH = 8, SB = 3 };

typedef struct {
    nn_layout layout;
    policy_net net;
    nn_params p, q; /* q: a second gradient over the same shape */
    policy_work work;
    policy_batch pb;
    gsl_rng *r;
} single_ctx;

static void single_setup(single_ctx *c, unsigned long seed)
{
    char err[ERR_LEN];
    nn_layout_init(&c->layout);
    ck_assert_int_eq(policy_init(&c->net, SN, SF, SH, SD, 1, &c->layout, err), DS_OK);
    ck_assert_int_eq(nn_params_alloc(&c->p, c->layout.size, err), DS_OK);
    ck_assert_int_eq(nn_params_alloc(&c->q, c->layout.size, err), DS_OK);
    ck_assert_int_eq(policy_work_alloc(&c->work, &c->net, err), DS_OK);
    ck_assert_int_eq(policy_batch_alloc(&c->pb, &c->net, SB, 1, err), DS_OK);
    c->r = rng_new(seed);
    nn_init_normal(c->p.w, c->r, 0.5, c->p.n);
    policy_batch_load_items(&c->pb, &c->net, c->p.w);
}

static void single_teardown(single_ctx *c)
{
    gsl_rng_free(c->r);
    policy_batch_free(&c->pb);
    policy_work_free(&c->work);
    nn_params_free(&c->p);
    nn_params_free(&c->q);
}

/* max |a - b| over n, checked against tol times max |b|. */
static void assert_close(const char *what, const double *a, const double *b, size_t n,
                         double tol)
{
    double worst = 0, size = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs(a[i] - b[i]));
        size = fmax(size, fabs(b[i]));
    }
    ck_assert_msg(size > 0 && worst <= tol * size, "%s: differs by %g of %g", what, worst, size);
}

/* policy_forward_single against policy_forward, through the float copy a single
 * batch takes of E_out: the logits within 1e-6 of the largest (measured about
 * 1e-8), the value bit for bit. */
START_TEST(test_forward_single)
{
    single_ctx c;
    single_setup(&c, 19);
    double x[SF], want[SN], v_want, v_got;
    nn_init_normal(x, c.r, 1.0, SF);
    policy_forward(&c.net, c.p.w, x, NULL, SN, &c.work, &v_want);
    memcpy(want, c.work.logits, sizeof want);
    policy_forward_single(&c.net, c.p.w, x, c.pb.E_single, &c.work, &v_got);
    assert_close("logits", c.work.logits, want, SN, 1e-6);
    ck_assert(v_got == v_want);
    single_teardown(&c);
}
END_TEST

/* The single batch against policy_forward and policy_backward state by state in
 * double: logits, and every tensor's gradient, within 1e-5 of its largest
 * (measured about 1e-7). The bias gradient added by policy_backward_batch equals,
 * bit for bit, the caller's policy_batch_row_done (bias_added). */
START_TEST(test_batch_single)
{
    single_ctx c;
    single_setup(&c, 23);
    double X[SB * SF], G[SB * SN], dX[SB * SF], dx[SF], dvalue[SB] = {0.3, -0.2, 0.5};
    nn_init_normal(X, c.r, 1.0, SB * SF);
    nn_init_normal(G, c.r, 1.0, SB * SN);
    const int *cand[SB] = {NULL, NULL, NULL};
    const int n[SB] = {SN, SN, SN};
    nn_params *grads[2] = {&c.p, &c.q};
    for (int bias_added = 0; bias_added <= 1; bias_added++) {
        nn_params_zero_grad(grads[bias_added]);
        policy_forward_batch(&c.net, c.p.w, X, SB, cand, n, 1, &c.pb);
        for (int b = 0; b < SB; b++) {
            policy_forward(&c.net, c.p.w, X + b * SF, NULL, SN, &c.work, NULL);
            assert_close("logits", c.pb.logits + b * SN, c.work.logits, SN, 1e-5);
        }
        memcpy(c.pb.logits, G, sizeof G);
        if (bias_added)
            for (int b = 0; b < SB; b++)
                policy_batch_row_done(&c.pb, b, c.q.grad + c.net.b_out);
        memset(dX, 0, sizeof dX);
        policy_backward_batch(&c.net, c.p.w, grads[bias_added]->grad, X, SB, cand, n, dvalue,
                              bias_added, dX, &c.pb);
    }
    ck_assert_int_eq(memcmp(c.p.grad + c.net.b_out, c.q.grad + c.net.b_out,
                            SN * sizeof *c.p.grad),
                     0);
    nn_params_zero_grad(&c.q); /* the reference, state by state in double */
    for (int b = 0; b < SB; b++) {
        memset(dx, 0, sizeof dx);
        policy_forward(&c.net, c.p.w, X + b * SF, NULL, SN, &c.work, NULL);
        policy_backward(&c.net, c.p.w, c.q.grad, X + b * SF, NULL, SN, G + b * SN, dvalue[b],
                        dx, &c.work);
    }
    for (int k = 0; k < c.layout.n_tensors; k++) {
        const nn_tensor *t = &c.layout.tensors[k];
        assert_close(t->name, c.p.grad + t->offset, c.q.grad + t->offset, tensor_size(t), 1e-5);
    }
    single_teardown(&c);
}
END_TEST

static Suite *policy_suite(void)
{
    Suite *s = suite_create("policy");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_encoder_known_answer);
    tcase_add_test(tc, test_encoder_errors);
    tcase_add_test(tc, test_encoder_gradient);
    tcase_add_test(tc, test_logits_gradient);
    tcase_add_test(tc, test_value_gradient);
    tcase_add_test(tc, test_forward_paths_agree);
    tcase_add_test(tc, test_composed_loss_gradient);
    tcase_add_test(tc, test_init);
    tcase_add_test(tc, test_policy_errors);
    tcase_add_test(tc, test_top_k);
    tcase_add_test(tc, test_forward_single);
    tcase_add_test(tc, test_batch_single);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(policy_suite)
