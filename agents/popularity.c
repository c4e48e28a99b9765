/* popularity: recommends the items most clicked and bought lately.
 *
 * With `paging` on (the default), step s of a session shows ranks s*k .. s*k+k-1
 * of the chart (wrapping around), like a shopper leafing through a best-seller
 * list, instead of the same top k at every step. Counts only grow for items
 * that are shown, so without exploration the chart locks onto whatever it
 * showed first: each slot shows a random candidate with probability epsilon.
 *
 * Each click adds 1 and each purchase adds purchase_weight to an item's count,
 * and counts decay with the given half-life in simulated hours. Decay is the same
 * for every item, so instead of decaying all counts we grow the weight of new
 * events: an event at time t adds w * 2^{(t - t_ref) / half_life}. Rankings are
 * unchanged, and the cost per event is O(1). */
#include "agent.h"

#include "../sim/common.h"
#include "rank.h"
#include "sample.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    double half_life;
    double purchase_weight;
    int paging;
    double epsilon;
} popularity_config;

static const param_spec popularity_params[] = {
    P_REAL(popularity_config, half_life, "24", 1e-6, 1e12,
           "hours for a click or purchase to lose half its weight"),
    P_REAL(popularity_config, purchase_weight, "5", 0, 1e6,
           "weight of a purchase relative to a click"),
    P_BOOL(popularity_config, paging, "true",
           "step s of a session shows chart ranks s*k+1 .. s*k+k instead of the top k again"),
    P_REAL(popularity_config, epsilon, "0.1", 0, 1,
           "probability that a slate slot shows a random candidate instead"),
};

typedef struct {
    agent base;
    popularity_config cfg;
    gsl_rng *sampling;  /* exploration draws, borrowed from the engine */
    sample_explore_memo explore_memo;
    double *count;      /* [n_items] decayed counts, scaled by 2^{(t_ref - now)/half_life} */
    double t_ref;       /* reference time of the scaling */
    double *score;      /* [n_items] scratch: scores of the current candidates */
    int *heap, *best;   /* [min(max_steps * slate, n_items)] scratch for rank_top_k */
} popularity;

static void popularity_destroy(agent *a)
{
    popularity *p = (popularity *)a;
    if (!p)
        return;
    free(p->count);
    free(p->score);
    free(p->heap);
    free(p->best);
    free(p);
}

static int popularity_create(const void *config, const env_spec *spec,
                             const agent_context *ctx, agent **out, char *err)
{
    popularity *p = calloc(1, sizeof *p);
    if (!p)
        return err_set(err, DS_ENOMEM, "out of memory");
    p->base.spec = spec;
    p->cfg = *(const popularity_config *)config;
    p->sampling = ctx->sampling;
    p->count = calloc((size_t)spec->n_items, sizeof *p->count);
    p->score = calloc((size_t)spec->n_items, sizeof *p->score);
    /* A page never reaches past the catalogue: depth <= n_items. */
    size_t depth = (size_t)spec->max_steps * (size_t)spec->slate;
    if (depth > (size_t)spec->n_items)
        depth = (size_t)spec->n_items;
    p->heap = calloc(depth, sizeof *p->heap);
    p->best = calloc(depth, sizeof *p->best);
    if (!p->count || !p->score || !p->heap || !p->best) {
        popularity_destroy(&p->base);
        return err_set(err, DS_ENOMEM, "out of memory for %d items", spec->n_items);
    }
    *out = &p->base;
    return DS_OK;
}

/* Adds weight w at time t, rescaling all counts when the growth factor gets large. */
static void popularity_add(popularity *p, int item, double w, double t)
{
    double exponent = (t - p->t_ref) / p->cfg.half_life;
    if (exponent > 512.0) {
        double shrink = exp2(-exponent);
        for (int i = 0; i < p->base.spec->n_items; i++)
            p->count[i] *= shrink;
        p->t_ref = t;
        exponent = 0.0;
    }
    p->count[item] += w * exp2(exponent);
}

static int popularity_observe(agent *a, const feedback *fb)
{
    popularity *p = (popularity *)a;
    if (!a->learning || fb->item < 0)
        return DS_OK;
    if (fb->kind == FEEDBACK_STEP)
        popularity_add(p, fb->item, 1.0, fb->time);
    if (fb->purchased)
        popularity_add(p, fb->item, p->cfg.purchase_weight, fb->time);
    return DS_OK;
}

static int popularity_act(agent *a, const observation *obs, int *slate)
{
    popularity *p = (popularity *)a;
    int k = a->spec->slate;
    if (obs->n_candidates < k)
        return DS_EINPUT;
    int n = obs->n_candidates;
    for (int i = 0; i < n; i++)
        p->score[i] = p->count[obs->candidates[i]];
    /* Page s starts at rank s*k; a page past the end wraps to the top of the chart. */
    int pages = n / k, page = p->cfg.paging ? obs->step % pages : 0;
    int depth = (page + 1) * k;
    rank_top_k(obs->candidates, p->score, n, depth, p->heap, p->best);
    for (int j = 0; j < k; j++)
        slate[j] = obs->candidates[p->best[page * k + j]];
    a->slate_logp = sample_explore(p->sampling, &p->explore_memo, obs->candidates, n, slate, k,
                                   p->cfg.epsilon);
    return DS_OK;
}

static double popularity_memory_estimate(const void *config, const env_spec *spec)
{
    (void)config;
    double depth = fmin((double)spec->max_steps * spec->slate, spec->n_items);
    return sizeof(popularity) + (double)spec->n_items * 2 * sizeof(double) +
           depth * 2 * sizeof(int);
}

const agent_type popularity_agent = {
    .name = "popularity",
    .version = 1,
    .summary = "the most clicked and bought items, with exponentially decayed counts",
    .params = PARAM_TABLE(popularity_config, popularity_params),
    .xCreate = popularity_create,
    .xAct = popularity_act,
    .xObserve = popularity_observe,
    .xDestroy = popularity_destroy,
    .xMemoryEstimate = popularity_memory_estimate,
};
