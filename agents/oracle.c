/* oracle: the myopically best slate, from the environment's true model.
 *
 * The only agent given privileged access: for every candidate it reads the true
 * MNL utility v_i, the expected reward r_i of a click (purchase probability,
 * expected revenue, or 1 for clicks) and the no-click utility v0. With weights
 * w = e^v, a slate S earns in expectation
 *     R(S) = sum_{i in S} w_i r_i / (w0 + sum_{i in S} w_i),
 * and the oracle shows the k-item slate that maximises it, exactly, by
 * Dinkelbach's method for fractional objectives: for a guess lambda the best S
 * of  sum_S w_i (r_i - lambda) - lambda w0  is the top k by w_i (r_i - lambda);
 * setting lambda = R(S) and repeating increases lambda strictly until the slate
 * stops changing, at the optimum (a few rounds in practice). Within the slate,
 * items go in decreasing w_i r_i, so the most valuable suffer the least
 * position bias. Myopic: it ignores what the slate does to later sessions
 * (satiation, boredom, return visits), which is exactly what the testbed asks
 * learning agents to beat.
 *
 * Cost: one pass of the environment's utilities and values over the
 * candidates, one vectorised exponential each, two rounds over all of them (a
 * multiply and a comparison each: rank_top_k rejects most items with one
 * comparison), and the later rounds over a shortlist (best_assortment). */
#include "agent.h"

#include "../sim/common.h"
#include "../sim/vecmath.h"
#include "rank.h"

#include <math.h>
#include <stdlib.h>

enum { MAX_ROUNDS = 100, SHORTLIST_PER_SLOT = 2 };

typedef struct {
    int unused; /* the oracle has no hyperparameters */
} oracle_config;

typedef struct {
    agent base;
    privileged_view truth;
    reward_kind reward;
    /* per candidate position */
    double *weight;     /* [n_items] v_i, then w_i = e^{v_i - v_max} */
    double *value;      /* [n_items] r_i */
    double *score;      /* [n_items] scratch */
    int *heap;          /* [shortlist] scratch for rank_top_k */
    int *best;          /* [slate] positions of the slate */
    /* a round's best positions, and their weights, values, ids, scores */
    int shortlist;      /* its capacity: SHORTLIST_PER_SLOT slates */
    int *short_pos;     /* [shortlist] */
    double *short_w;    /* [shortlist] */
    double *short_r;    /* [shortlist] */
    int *short_ids;     /* [shortlist] */
    double *short_score; /* [shortlist] */
    int *short_best;    /* [slate] the top k of the shortlist, as shortlist indices */
} oracle;

static void oracle_destroy(agent *a)
{
    oracle *o = (oracle *)a;
    if (!o)
        return;
    free(o->weight);
    free(o->value);
    free(o->score);
    free(o->heap);
    free(o->best);
    free(o->short_pos);
    free(o->short_w);
    free(o->short_r);
    free(o->short_ids);
    free(o->short_score);
    free(o->short_best);
    free(o);
}

static int oracle_create(const void *config, const env_spec *spec, const agent_context *ctx,
                         agent **out, char *err)
{
    (void)config;
    if (!ctx->privileged.utilities)
        return err_set(err, DS_EINPUT, "agent 'oracle' needs an environment with true utilities");
    oracle *o = calloc(1, sizeof *o);
    if (!o)
        return err_set(err, DS_ENOMEM, "out of memory");
    size_t n = (size_t)spec->n_items;
    o->base.spec = spec;
    o->truth = ctx->privileged;
    o->reward = ctx->reward;
    o->weight = calloc(n, sizeof *o->weight);
    o->value = calloc(n, sizeof *o->value);
    o->score = calloc(n, sizeof *o->score);
    size_t k = (size_t)spec->slate, m = (size_t)SHORTLIST_PER_SLOT * k;
    o->shortlist = (int)m;
    o->heap = calloc(m, sizeof *o->heap);
    o->best = calloc(k, sizeof *o->best);
    o->short_pos = calloc(m, sizeof *o->short_pos);
    o->short_w = calloc(m, sizeof *o->short_w);
    o->short_r = calloc(m, sizeof *o->short_r);
    o->short_ids = calloc(m, sizeof *o->short_ids);
    o->short_score = calloc(m, sizeof *o->short_score);
    o->short_best = calloc(k, sizeof *o->short_best);
    if (!o->weight || !o->value || !o->score || !o->heap || !o->best || !o->short_pos ||
        !o->short_w || !o->short_r || !o->short_ids || !o->short_score || !o->short_best) {
        oracle_destroy(&o->base);
        return err_set(err, DS_ENOMEM, "out of memory for %d items", spec->n_items);
    }
    *out = &o->base;
    return DS_OK;
}

/* Expected reward of the slate of positions best[0..k-1]. */
static double slate_value(const oracle *o, double w0, int k)
{
    double num = 0.0, den = w0;
    for (int j = 0; j < k; j++) {
        num += o->weight[o->best[j]] * o->value[o->best[j]];
        den += o->weight[o->best[j]];
    }
    return num / den;
}

/* One Dinkelbach round over all n candidates: o->best = the top k by
 * w_i (r_i - lambda). */
static void full_round(oracle *o, int n, int k, const int *candidates, double lambda)
{
    vm_scaled_excess(o->score, o->weight, o->value, lambda, n);
    rank_top_k(candidates, o->score, n, k, o->heap, o->best);
}

/* The round at lambda over all n that also keeps the top m (m >= k) as the
 * shortlist, whose first k are the round's slate (one total order: score, then
 * id), their m-th score as *omega (-Inf when m = n). Returns 0 (no shortlist;
 * o->best filled as full_round would) when a score is NaN or +Inf, which
 * leaves no total order to rely on. */
static int shortlist_round(oracle *o, int n, int m, int k, const int *candidates,
                           double lambda, double *omega)
{
    vm_scaled_excess(o->score, o->weight, o->value, lambda, n);
    if (vm_first_not_below(o->score, 0, n, INFINITY) < n) {
        rank_top_k(candidates, o->score, n, k, o->heap, o->best);
        return 0;
    }
    rank_top_k(candidates, o->score, n, m, o->heap, o->short_pos);
    for (int j = 0; j < m; j++) {
        int p = o->short_pos[j];
        o->short_w[j] = o->weight[p];
        o->short_r[j] = o->value[p];
        o->short_ids[j] = candidates[p];
    }
    for (int j = 0; j < k; j++)
        o->best[j] = o->short_pos[j];
    *omega = m < n ? o->score[o->short_pos[m - 1]] : -INFINITY;
    return 1;
}

/* A later round over the shortlist alone, when it is sure to give the same
 * slate as over all n: returns 0 (o->best not written) otherwise. The shortlist
 * was taken at a smaller lambda; with w_i >= 0 an item's score can only fall as
 * lambda grows (r_i - lambda rounds to no more than before, and rounding and the
 * product are monotone), so every item off the list scores at most omega; if
 * the list's k-th best scores above omega, its top k is the top k of all, in
 * the same order (the same scores, ties to the lower id). */
static int round_on_shortlist(oracle *o, int m, int k, double omega, double lambda)
{
    vm_scaled_excess(o->short_score, o->short_w, o->short_r, lambda, m);
    rank_top_k(o->short_ids, o->short_score, m, k, o->heap, o->short_best);
    if (!(o->short_score[o->short_best[k - 1]] > omega))
        return 0;
    for (int j = 0; j < k; j++)
        o->best[j] = o->short_pos[o->short_best[j]];
    return 1;
}

/* Fills o->best with the positions of the optimal k-slate. The first round
 * (lambda = 0) runs over all n; the second, over all n too, keeps a shortlist
 * of the top m; the later ones (lambda rises strictly) run over the shortlist
 * where round_on_shortlist vouches for it, over all n where not. Every round
 * gives the slate the n-item round gives, so the lambdas and the final slate
 * are those of plain Dinkelbach rounds over all n. */
static void best_assortment(oracle *o, int n, int k, const int *candidates, double w0)
{
    int m = o->shortlist < n ? o->shortlist : n;
    int state = 0; /* 0: no shortlist yet, 1: a shortlist, -1: none to be had */
    double lambda = 0.0, omega = -INFINITY;
    full_round(o, n, k, candidates, lambda);
    for (int round = 1; round < MAX_ROUNDS; round++) {
        double next = slate_value(o, w0, k);
        if (!(next > lambda))
            break;
        lambda = next;
        if (state == 0)
            state = shortlist_round(o, n, m, k, candidates, lambda, &omega) ? 1 : -1;
        else if (state < 0 || !round_on_shortlist(o, m, k, omega, lambda))
            full_round(o, n, k, candidates, lambda);
    }
}

/* Sorts the chosen positions o->best[0..k-1] by decreasing w_i r_i (ties: lower
 * item id first) and writes their items to slate. */
static void order_by_value(oracle *o, const int *ids, int k, int *slate)
{
    for (int j = 1; j < k; j++) {
        int p = o->best[j], at = j;
        double v = o->weight[p] * o->value[p];
        for (; at > 0; at--) {
            int q = o->best[at - 1];
            double u = o->weight[q] * o->value[q];
            if (u > v || (u == v && ids[q] < ids[p]))
                break;
            o->best[at] = q;
        }
        o->best[at] = p;
    }
    for (int j = 0; j < k; j++)
        slate[j] = ids[o->best[j]];
}

static int oracle_act(agent *a, const observation *obs, int *slate)
{
    oracle *o = (oracle *)a;
    int n = obs->n_candidates, k = a->spec->slate;
    if (n < k)
        return err_set(a->err, DS_EINPUT, "%d candidates for a slate of %d", n, k);
    double v0;
    int rc = o->truth.utilities(o->truth.ctx, obs->user, obs->candidates, n, o->weight,
                                o->value, &v0);
    if (rc != DS_OK)
        return err_set(a->err, rc, "the environment gave no true utilities");
    /* Shift by the largest utility so no weight overflows; R(S) is unchanged. */
    double top = vm_max(o->weight, n, v0);
    vm_exp_shifted(o->weight, o->weight, top, n);
    best_assortment(o, n, k, obs->candidates, vm_exp(v0 - top));
    order_by_value(o, obs->candidates, k, slate);
    a->slate_logp = 0.0; /* deterministic */
    return DS_OK;
}

static double oracle_memory_estimate(const void *config, const env_spec *spec)
{
    (void)config;
    double m = (double)SHORTLIST_PER_SLOT * spec->slate;
    return sizeof(oracle) + (double)spec->n_items * 3 * sizeof(double) +
           m * (3 * sizeof(double) + 3 * sizeof(int)) + (double)spec->slate * 2 * sizeof(int);
}

const agent_type oracle_agent = {
    .name = "oracle",
    .version = 3,
    .summary = "myopically best slate from the true utilities (upper reference)",
    .params = {NULL, 0, sizeof(oracle_config)},
    .needs_privileged = 1,
    .xCreate = oracle_create,
    .xAct = oracle_act,
    .xDestroy = oracle_destroy,
    .xMemoryEstimate = oracle_memory_estimate,
};
