/* bandit: a stateless multinomial-logit slate bandit with a closed-form optimum.
 *
 * Item i (0-based) has utility u_i = i * utility_step; not clicking has utility
 * u0. Shown a slate S, a user clicks item i in S with probability
 * e^{u_i} / (e^{u0} + sum_{j in S} e^{u_j}). Every session is one step; the
 * reward is the click. The best slate is the k items of highest utility, so the
 * optimal and the random click rates are known exactly and validate both the
 * agents and the choice code. Items have no latents: every pair of distinct
 * items counts as fully diverse (ILD 1). */
#include "env.h"

#include "../sim/common.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <stdlib.h>

typedef struct {
    int items;
    int users;
    int slate;
    double utility_step;
    double u0;
    double visit_rate;
} bandit_config;

static const param_spec bandit_params[] = {
    P_INT(bandit_config, items, "10", 1, 1e7, "number of items"),
    P_INT(bandit_config, users, "1000", 1, 1e8, "number of users (all identical)"),
    P_INT(bandit_config, slate, "3", 1, 1e4, "items per slate (k)"),
    P_REAL(bandit_config, utility_step, "0.1", -1e3, 1e3, "utility of item i is i * utility_step"),
    P_REAL(bandit_config, u0, "1", -1e3, 1e3, "utility of not clicking"),
    P_REAL(bandit_config, visit_rate, "1", 1e-9, 1e9, "visits per user per hour"),
};

typedef struct {
    env base;
    bandit_config cfg;
    gsl_rng *arrivals, *choices;
    int *topic;       /* [items] each item is its own topic */
    double *price;    /* [items] all 1 */
    int *all_items;   /* [items] 0..items-1: the candidates */
    double *weight;   /* [slate] scratch: e^{u} of the slate items */
} bandit;

static int bandit_validate(const void *config, char *err)
{
    const bandit_config *c = config;
    if (c->slate > c->items)
        return err_set(err, DS_EINPUT, "'slate' (%d) is larger than 'items' (%d)",
                       c->slate, c->items);
    return DS_OK;
}

static void bandit_destroy(env *e)
{
    bandit *b = (bandit *)e;
    if (!b)
        return;
    free(b->topic);
    free(b->price);
    free(b->all_items);
    free(b->weight);
    free(b);
}

static int bandit_create(const void *config, const env_context *ctx, env **out, char *err)
{
    const bandit_config *c = config;
    bandit *b = calloc(1, sizeof *b);
    if (!b)
        return err_set(err, DS_ENOMEM, "out of memory");
    size_t n = (size_t)c->items;
    b->cfg = *c;
    b->arrivals = ctx->arrivals;
    b->choices = ctx->choices;
    b->topic = malloc(n * sizeof *b->topic);
    b->price = malloc(n * sizeof *b->price);
    b->all_items = malloc(n * sizeof *b->all_items);
    b->weight = malloc((size_t)c->slate * sizeof *b->weight);
    if (!b->topic || !b->price || !b->all_items || !b->weight) {
        bandit_destroy(&b->base);
        return err_set(err, DS_ENOMEM, "out of memory for %d items", c->items);
    }
    for (size_t i = 0; i < n; i++) {
        b->topic[i] = (int)i;
        b->price[i] = 1.0;
        b->all_items[i] = (int)i;
    }
    b->base.spec = (env_spec){.n_items = c->items, .n_users = c->users, .slate = c->slate,
                              .n_topics = c->items, .max_steps = 1,
                              .item_topic = b->topic, .item_price = b->price};
    *out = &b->base;
    return DS_OK;
}

static int bandit_next_visit(env *e, int user, double now, double *next)
{
    bandit *b = (bandit *)e;
    (void)user;
    *next = now + gsl_ran_exponential(b->arrivals, 1.0 / b->cfg.visit_rate);
    return DS_OK;
}

static int bandit_start_session(env *e, int user, double t)
{
    (void)e, (void)user, (void)t;
    return DS_OK;
}

static int bandit_candidates(env *e, int user, const int **items, int *n)
{
    bandit *b = (bandit *)e;
    (void)user;
    *items = b->all_items;
    *n = b->cfg.items;
    return DS_OK;
}

static double bandit_utility(const bandit *b, int item)
{
    return item * b->cfg.utility_step;
}

static int bandit_step(env *e, int user, const int *slate, double t, env_response *out)
{
    bandit *b = (bandit *)e;
    int k = b->cfg.slate;
    (void)user, (void)t;
    /* Softmax over the slate and the no-click option, shifted by the max for stability. */
    double top = b->cfg.u0;
    for (int j = 0; j < k; j++)
        top = fmax(top, bandit_utility(b, slate[j]));
    double total = exp(b->cfg.u0 - top);
    for (int j = 0; j < k; j++) {
        b->weight[j] = exp(bandit_utility(b, slate[j]) - top);
        total += b->weight[j];
    }
    double u = gsl_rng_uniform(b->choices) * total;
    *out = (env_response){.click = -1, .item = -1, .dwell = 0.0, .done = 1};
    for (int j = 0; j < k; j++) {
        if (u < b->weight[j]) {
            out->click = j;
            out->item = slate[j];
            break;
        }
        u -= b->weight[j];
    }
    return DS_OK;
}

static int bandit_privileged(env *e, int user, const int *items, int n, double *utility,
                             double *value_if_clicked, double *no_click_utility)
{
    bandit *b = (bandit *)e;
    (void)user;
    for (int i = 0; i < n; i++) {
        if (utility)
            utility[i] = bandit_utility(b, items[i]);
        if (value_if_clicked)
            value_if_clicked[i] = 1.0;
    }
    if (no_click_utility)
        *no_click_utility = b->cfg.u0;
    return DS_OK;
}

/* env_type.xMemoryEstimate: what bandit_create allocates, and the spec. */
static double bandit_memory_estimate(const void *config, env_spec *shape)
{
    const bandit_config *c = config;
    *shape = (env_spec){.n_items = c->items, .n_users = c->users, .slate = c->slate,
                        .n_topics = c->items, .max_steps = 1};
    return sizeof(bandit) + (double)c->items * (2 * sizeof(int) + sizeof(double)) +
           (double)c->slate * sizeof(double);
}

const env_type bandit_env = {
    .name = "bandit",
    .version = 1,
    .summary = "stateless MNL slate bandit, u_i = i * utility_step; reward = click",
    .params = PARAM_TABLE(bandit_config, bandit_params),
    .clicks_only = 1,
    .xValidate = bandit_validate,
    .xCreate = bandit_create,
    .xNextVisit = bandit_next_visit,
    .xStartSession = bandit_start_session,
    .xCandidates = bandit_candidates,
    .xStep = bandit_step,
    .xNextEvent = NULL,
    .xAdvance = NULL,
    .xPrivileged = bandit_privileged,
    .xLatents = NULL,
    .xDestroy = bandit_destroy,
    .xMemoryEstimate = bandit_memory_estimate,
};
