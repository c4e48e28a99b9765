/* oracle: the myopically best slate, from the environment's true model.
 *
 * The only agent given privileged access: for every candidate it reads the true
 * MNL utility v_i and the expected reward r_i of a click (purchase probability,
 * expected revenue, or 1 for clicks). Under MNL an item's share of the expected
 * reward is proportional to e^{v_i} r_i, so the oracle shows the k candidates of
 * highest e^{v_i} r_i, best first. For the click reward this is exactly the
 * optimal slate; for purchases it is the greedy myopic choice (it ignores future
 * sessions and the no-click competition between items). An upper reference, not
 * a learner. */
#include "agent.h"

#include "../sim/common.h"
#include "rank.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    int unused; /* the oracle has no hyperparameters */
} oracle_config;

typedef struct {
    agent base;
    privileged_view truth;
    double *utility;    /* [n_items] scratch, per candidate */
    double *value;      /* [n_items] scratch, per candidate */
    int *heap, *best;   /* [slate] scratch for rank_top_k */
} oracle;

static void oracle_destroy(agent *a)
{
    oracle *o = (oracle *)a;
    if (!o)
        return;
    free(o->utility);
    free(o->value);
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
    o->base.spec = spec;
    o->truth = ctx->privileged;
    o->utility = calloc((size_t)spec->n_items, sizeof *o->utility);
    o->value = calloc((size_t)spec->n_items, sizeof *o->value);
    o->heap = calloc((size_t)spec->slate, sizeof *o->heap);
    o->best = calloc((size_t)spec->slate, sizeof *o->best);
    if (!o->utility || !o->value || !o->heap || !o->best) {
        oracle_destroy(&o->base);
        return err_set(err, DS_ENOMEM, "out of memory for %d items", spec->n_items);
    }
    *out = &o->base;
    return DS_OK;
}

static int oracle_act(agent *a, const observation *obs, int *slate)
{
    oracle *o = (oracle *)a;
    int n = obs->n_candidates, k = a->spec->slate;
    if (n < k)
        return DS_EINPUT;
    int rc = o->truth.utilities(o->truth.ctx, obs->user, obs->candidates, n, o->utility,
                                o->value);
    if (rc != DS_OK)
        return rc;
    /* Score in log space, log v + log r, so large utilities cannot overflow. */
    for (int i = 0; i < n; i++)
        o->utility[i] = o->value[i] > 0.0 ? o->utility[i] + log(o->value[i]) : -INFINITY;
    rank_top_k(obs->candidates, o->utility, n, k, o->heap, o->best);
    for (int j = 0; j < k; j++)
        slate[j] = obs->candidates[o->best[j]];
    return DS_OK;
}

const agent_type oracle_agent = {
    .name = "oracle",
    .version = 1,
    .summary = "myopically best slate from the true utilities (upper reference)",
    .params = {NULL, 0, sizeof(oracle_config)},
    .needs_privileged = 1,
    .xCreate = oracle_create,
    .xAct = oracle_act,
    .xDestroy = oracle_destroy,
};
