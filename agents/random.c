/* random: a uniformly random slate of distinct candidates; the floor every
 * other agent must beat. */
#include "agent.h"

#include "../sim/common.h"
#include "sample.h"

#include <stdlib.h>

typedef struct {
    int unused; /* random has no hyperparameters */
} random_config;

typedef struct {
    agent base;
    gsl_rng *sampling;
    /* The slate's log-probability depends only on the number of candidates:
     * kept for the last number seen (it costs k logarithms). */
    int logp_candidates; /* -1 until the first act */
    double logp;
} random_agent_state;

static int random_create(const void *config, const env_spec *spec, const agent_context *ctx,
                         agent **out, char *err)
{
    (void)config;
    random_agent_state *r = calloc(1, sizeof *r);
    if (!r)
        return err_set(err, DS_ENOMEM, "out of memory");
    r->base.spec = spec;
    r->sampling = ctx->sampling;
    r->logp_candidates = -1;
    *out = &r->base;
    return DS_OK;
}

static int random_act(agent *a, const observation *obs, int *slate)
{
    random_agent_state *r = (random_agent_state *)a;
    if (r->logp_candidates != obs->n_candidates) {
        r->logp_candidates = obs->n_candidates;
        r->logp = sample_distinct_logprob(obs->n_candidates, a->spec->slate);
    }
    a->slate_logp = r->logp;
    return sample_distinct(r->sampling, obs->candidates, obs->n_candidates, slate,
                           a->spec->slate);
}

static void random_destroy(agent *a)
{
    free(a);
}

static double random_memory_estimate(const void *config, const env_spec *spec)
{
    (void)config;
    (void)spec;
    return sizeof(random_agent_state);
}

const agent_type random_agent = {
    .name = "random",
    .version = 1,
    .summary = "uniformly random slate of distinct candidates",
    .params = {NULL, 0, sizeof(random_config)},
    .xCreate = random_create,
    .xAct = random_act,
    .xDestroy = random_destroy,
    .xMemoryEstimate = random_memory_estimate,
};
