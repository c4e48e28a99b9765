/* mmr: maximal marginal relevance (Carbonell & Goldstein 1998) over the cf model.
 *
 * The cf scores (agents/mf.c: x_u.y_i, or popularity for a user without factors)
 * rank the candidates; MMR re-ranks the top `pool` of them. Relevance is the
 * score min-max normalised over the pool,
 *     rel_i = (s_i - min_pool s) / (max_pool s - min_pool s),  0 if all are equal,
 * so that lambda weighs quantities on the same [0, 1] scale as the similarity.
 * The slate is built greedily: each slot takes the argmax over the items left of
 *     lambda * rel_i - (1 - lambda) * max_{j chosen} sim(i, j)
 * (the max over no chosen item is 0), ties to the lower item id. sim is 1 for
 * two items of the same public topic and 0 otherwise (`similarity = topic`), or
 * the cosine of their item factors (`factors`; 0 when a factor vector is 0).
 * lambda = 1 gives cf's top-k. Each slot then shows a random candidate with
 * probability epsilon, as in cf. */
#include "cf.h"

#include "mf.h"

#include <gsl/gsl_cblas.h>
#include <math.h>
#include <stdlib.h>

typedef enum { MMR_TOPIC = 0, MMR_FACTORS = 1 } mmr_similarity;

typedef struct {
    mf_config mf;   /* first: the offsets of MF_PARAM_SPECS are relative to it */
    double lambda;  /* weight of relevance against redundancy */
    int pool;       /* candidates re-ranked: the top `pool` by relevance */
    int similarity; /* mmr_similarity */
} mmr_config;

_Static_assert(offsetof(mmr_config, mf) == 0, "mf_config must come first");

static const param_spec mmr_params[] = {
    MF_PARAM_SPECS,
    P_REAL(mmr_config, lambda, "0.7", 0, 1,
           "weight of relevance against similarity to the items already chosen"),
    P_INT(mmr_config, pool, "100", 1, 1000000,
          "candidates re-ranked: the top pool by relevance (at least the slate)"),
    P_CHOICE(mmr_config, similarity, "topic", "topic|factors",
             "topic: 1 for the same public topic, else 0; factors: cosine of item "
             "factors"),
};

typedef struct {
    mf_agent mf;
    double lambda;
    int pool;
    int similarity;
    double *relevance;     /* [pool] of ranked position p */
    double *redundancy;    /* [pool] max similarity of p to the chosen items */
    double *norm;          /* [pool] |y_i| of p, for the cosine */
    unsigned char *chosen; /* [pool] */
} mmr;

static void mmr_destroy(agent *base)
{
    if (!base)
        return;
    mmr *m = (mmr *)base;
    free(m->relevance);
    free(m->redundancy);
    free(m->norm);
    free(m->chosen);
    mf_agent_destroy(base);
}

static int mmr_create(const void *config, const env_spec *spec, const agent_context *ctx,
                      agent **out, char *err)
{
    const mmr_config *c = config;
    *out = NULL;
    if (spec && c->pool < spec->slate)
        return err_set(err, DS_EINPUT, "agent 'mmr': pool %d is smaller than the slate %d",
                       c->pool, spec->slate);
    if (spec && c->similarity == MMR_TOPIC && !spec->item_topic)
        return err_set(err, DS_EINPUT, "agent 'mmr': similarity 'topic' needs the "
                       "environment's item topics");
    mf_agent *a;
    int rc = mf_agent_create(sizeof(mmr), &mmr_agent, &c->mf, spec, ctx, c->pool, &a, err);
    if (rc != DS_OK)
        return rc;
    mmr *m = (mmr *)a;
    m->lambda = c->lambda;
    m->pool = a->depth; /* the pool, capped at the catalogue */
    m->similarity = c->similarity;
    size_t n = (size_t)m->pool;
    m->relevance = malloc(n * sizeof *m->relevance);
    m->redundancy = malloc(n * sizeof *m->redundancy);
    m->norm = malloc(n * sizeof *m->norm);
    m->chosen = malloc(n * sizeof *m->chosen);
    if (!m->relevance || !m->redundancy || !m->norm || !m->chosen) {
        mmr_destroy(&a->base);
        return err_set(err, DS_ENOMEM, "out of memory creating agent 'mmr'");
    }
    *out = &a->base;
    return DS_OK;
}

/* Similarity of the items of ranked positions p and q. */
static double similarity(const mmr *m, const observation *obs, int p, int q)
{
    int a = obs->candidates[m->mf.ranked[p]], b = obs->candidates[m->mf.ranked[q]];
    if (m->similarity == MMR_TOPIC) {
        const int *topic = m->mf.base.spec->item_topic;
        return topic[a] == topic[b];
    }
    if (m->norm[p] == 0 || m->norm[q] == 0)
        return 0;
    const double *ya = mf_model_item_factors(m->mf.model, a);
    const double *yb = mf_model_item_factors(m->mf.model, b);
    int d = mf_model_dim(m->mf.model);
    return cblas_ddot(d, ya, 1, yb, 1) / (m->norm[p] * m->norm[q]);
}

/* relevance[] and the per-act state of the n pool positions. */
static void prepare_pool(mmr *m, const observation *obs, int n)
{
    const double *score = m->mf.scores;
    const int *ranked = m->mf.ranked;
    double hi = score[ranked[0]], lo = score[ranked[n - 1]];
    int d = mf_model_dim(m->mf.model);
    for (int p = 0; p < n; p++) {
        m->relevance[p] = hi > lo ? (score[ranked[p]] - lo) / (hi - lo) : 0;
        m->redundancy[p] = 0;
        m->chosen[p] = 0;
        if (m->similarity == MMR_FACTORS) {
            const double *y = mf_model_item_factors(m->mf.model, obs->candidates[ranked[p]]);
            m->norm[p] = cblas_dnrm2(d, y, 1);
        }
    }
}

/* The unchosen pool position with the best marginal relevance. */
static int next_pick(const mmr *m, const observation *obs, int n)
{
    int best = -1;
    double best_value = 0;
    for (int p = 0; p < n; p++) {
        if (m->chosen[p])
            continue;
        double value = m->lambda * m->relevance[p] - (1 - m->lambda) * m->redundancy[p];
        if (best < 0 || value > best_value
            || (value == best_value
                && obs->candidates[m->mf.ranked[p]] < obs->candidates[m->mf.ranked[best]])) {
            best = p;
            best_value = value;
        }
    }
    return best;
}

static int mmr_act(agent *base, const observation *obs, int *slate)
{
    mmr *m = (mmr *)base;
    int k = base->spec->slate;
    int rc = mf_agent_rank(&m->mf, obs, m->pool);
    if (rc != DS_OK)
        return rc;
    int n = obs->n_candidates < m->pool ? obs->n_candidates : m->pool;
    prepare_pool(m, obs, n);
    for (int s = 0; s < k; s++) {
        int pick = next_pick(m, obs, n);
        m->chosen[pick] = 1;
        slate[s] = obs->candidates[m->mf.ranked[pick]];
        for (int p = 0; p < n; p++) {
            if (!m->chosen[p])
                m->redundancy[p] = fmax(m->redundancy[p], similarity(m, obs, p, pick));
        }
    }
    mf_agent_explore(&m->mf, obs, slate);
    return DS_OK;
}

static double mmr_memory_estimate(const void *config, const env_spec *spec)
{
    const mmr_config *c = config;
    double pool = fmin(fmax(c->pool, spec->slate), spec->n_items);
    return mf_agent_memory_estimate(sizeof(mmr), &c->mf, spec, c->pool) +
           pool * (3 * sizeof(double) + 1);
}

const agent_type mmr_agent = {
    .name = "mmr",
    .version = 1,
    .summary = "maximal marginal relevance re-ranking of the cf scores by topic or "
               "factor similarity",
    .params = PARAM_TABLE(mmr_config, mmr_params),
    .needs_privileged = 0,
    .xValidate = NULL,
    .xCreate = mmr_create,
    .xAct = mmr_act,
    .xObserve = mf_agent_observe,
    .xEndEpisode = mf_agent_end_episode,
    .xUpdate = mf_agent_update,
    .xDestroy = mmr_destroy,
    .xMemoryEstimate = mmr_memory_estimate,
};
