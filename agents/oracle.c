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
 * candidates, one vectorised exponential each, and per round a multiply and a
 * comparison each (rank_top_k rejects most items with one comparison). */
#include "agent.h"

#include "../sim/common.h"
#include "../sim/vecmath.h"
#include "rank.h"

#include <math.h>
#include <stdlib.h>

enum { MAX_ROUNDS = 100 };

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
    int *heap;          /* [slate] scratch for rank_top_k */
    int *best;          /* [slate] positions of the slate */
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
    o->heap = calloc((size_t)spec->slate, sizeof *o->heap);
    o->best = calloc((size_t)spec->slate, sizeof *o->best);
    if (!o->weight || !o->value || !o->score || !o->heap || !o->best) {
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

/* Fills o->best with the positions of the optimal k-slate. */
static void best_assortment(oracle *o, int n, int k, const int *candidates, double w0)
{
    double lambda = 0.0;
    for (int round = 0; round < MAX_ROUNDS; round++) {
        vm_scaled_excess(o->score, o->weight, o->value, lambda, n);
        rank_top_k(candidates, o->score, n, k, o->heap, o->best);
        double next = slate_value(o, w0, k);
        if (!(next > lambda))
            break;
        lambda = next;
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
    return sizeof(oracle) + (double)spec->n_items * 3 * sizeof(double) +
           (double)spec->slate * 2 * sizeof(int);
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
