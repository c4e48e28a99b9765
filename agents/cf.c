/* cf: collaborative filtering by implicit-feedback matrix factorisation.
 *
 * Clicks and purchases become confidences, retrained every `retrain_every`
 * hours by alternating least squares (agents/mf.c). A slate is the k candidates
 * with the highest score x_u.y_i, best first, ties to the lower item id; a user
 * without factors yet (no feedback, or none before the last retrain) gets the
 * most popular candidates (total confidence). Each slot then shows a random
 * candidate with probability epsilon. */
#include "cf.h"

#include "mf.h"

#include <stdlib.h>

static const param_spec cf_params[] = {MF_PARAM_SPECS};

static int cf_create(const void *config, const env_spec *spec, const agent_context *ctx,
                     agent **out, char *err)
{
    mf_agent *a;
    int rc = mf_agent_create(sizeof *a, &cf_agent, config, spec, ctx, 0, &a, err);
    *out = rc == DS_OK ? &a->base : NULL;
    return rc;
}

static int cf_act(agent *base, const observation *obs, int *slate)
{
    mf_agent *a = (mf_agent *)base;
    int k = base->spec->slate;
    int rc = mf_agent_rank(a, obs, k);
    if (rc != DS_OK)
        return rc;
    for (int s = 0; s < k; s++)
        slate[s] = obs->candidates[a->ranked[s]];
    mf_agent_explore(a, obs, slate);
    return DS_OK;
}

static double cf_memory_estimate(const void *config, const env_spec *spec)
{
    return mf_agent_memory_estimate(sizeof(mf_agent), config, spec, 0);
}

const agent_type cf_agent = {
    .name = "cf",
    .version = 1,
    .summary = "implicit-feedback matrix factorisation (ALS): top-k with epsilon "
               "exploration",
    .params = PARAM_TABLE(mf_config, cf_params),
    .needs_privileged = 0,
    .xValidate = NULL,
    .xCreate = cf_create,
    .xAct = cf_act,
    .xObserve = mf_agent_observe,
    .xEndEpisode = mf_agent_end_episode,
    .xUpdate = mf_agent_update,
    .xDestroy = mf_agent_destroy,
    .xMemoryEstimate = cf_memory_estimate,
};
