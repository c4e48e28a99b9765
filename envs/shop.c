/* shop: the native environment. Synthetic shoppers visit a catalogue, are shown
 * slates, click by multinomial logit, buy rarely, get bored, come back more or
 * less often depending on how the session went, and may churn for good.
 *
 * Catalogue (stream `catalogue`). T topics with Zipf sizes: an item's topic is t
 * with probability proportional to 1/(t+1)^topic_zipf. Topic centroids c_t are
 * normalised standard normal vectors in R^dim. Item latent
 *     q_i = normalize(c_t + item_spread/sqrt(dim) * z),  z ~ N(0, I),
 * so the noise has norm about item_spread. Log-price log p_i ~ N(m_t, price_sd)
 * with topic mean m_t ~ N(price_mean, price_topic_sd). Appeal a_i ~ N(0, appeal_sd).
 *
 * Users (stream `users`). Long-term taste mu_u = normalize(sum_j w_j c_{t_j}) over
 * user_topics topics drawn (with replacement) with probability proportional to
 * the topic's number of items, w ~ Dirichlet(user_dirichlet). The current
 * preference x_u starts at mu_u. Price sensitivity b_u = price_weight * m_u and
 * base visit rate lambda_u = visit_rate * r_u, where m_u and r_u are mean-one
 * log-normal multipliers, exp(N(-s^2/2, s)), with s = price_weight_sd and
 * visit_rate_sd. Satiation s_u[t] starts at 0.
 *
 * Time is in hours; state is updated lazily, only when the user acts, so no call
 * costs more with more users. On arrival, over the gap D since the user's last
 * step (the end of the previous session),
 *     x <- mu + (x - mu) e^{-theta D} + sigma sqrt(1 - e^{-2 theta D}) xi,
 * the exact Ornstein-Uhlenbeck transition (theta = drift_rate, sigma =
 * drift_scale, the stationary sd per coordinate, xi ~ N(0, I) from `drift`).
 * Within a session (minutes, against hours between visits) taste moves only by
 * clicks: drift is a between-visit process. Satiation decays continuously,
 * s(t) = s(t0) e^{-(t - t0)/satiation_tau}, and exactly at every step: each
 * user's row is stored relative to a reference time and scaled on read (one exp
 * per step, whatever the number of topics), and rebased only when a click comes
 * more than SHOP_SATIATION_REBASE time constants after the reference. Visits are
 * a Poisson process of the user's current rate (stream `arrivals`).
 *
 * A step (stream `choices`). The item at slate position j has utility
 *     v_j = g x.q_i + w_a a_i - b_u log p_i - kappa s[topic_i] - position_bias log2(1+j)
 * against a no-click option of utility v0; the user picks by multinomial logit.
 * A click on i turns into a purchase with probability
 *     sigmoid(purchase_bias + purchase_affinity x.q_i + purchase_appeal a_i
 *             - purchase_price m_u (log p_i - price_mean))   (stream `purchases`),
 * evaluated with x before the click's reinforcement; then s[topic_i] +=
 * satiation_gain and x <- x + reinforcement (q_i - x). The step lasts an
 * exponential dwell of mean step_minutes. The user then leaves with probability
 *     sigmoid(leave_bias + leave_boredom B - leave_value V),
 * B = sum_j P(click j) s[topic_j] (expected satiation of the click, after this
 * step's update), V = log sum_j e^{v_j} - v0 (the slate's inclusive value), and
 * always after max_steps steps. At the end, satisfaction S = clicks / steps moves
 * the visit rate, lambda <- lambda e^{return_gain (S - satisfaction_ref)}, kept
 * within [rate_floor, rate_ceiling] x the base rate; churn_patience sessions in a
 * row with S < churn_threshold churn the user for good.
 *
 * Catalogue churn (stream `item_churn`; off unless launch_rate or item_lifetime
 * is set). Ids then range over a capacity of 2 x items slots, `items` active at
 * first. Launches are Poisson(launch_rate) and give a free id a new item drawn as
 * above; each active item lives an exponential time of mean item_lifetime. By
 * memorylessness, the next retirement is at total rate n_active / item_lifetime
 * and hits a uniformly chosen active item, which is how it is simulated. A launch
 * finding the catalogue full is lost, and retirements pause while only `slate`
 * items remain active so a slate can always be filled. Launches take ids never
 * used before (items, items + 1, ...) first; once all 2 x items slots have been
 * used, ids are recycled oldest-retired first (a FIFO queue of free ids), so an id
 * comes back as late as possible. Agents then see a recycled id: a new item under
 * an id that named a retired one, whose history (clicks, pending purchases) is
 * keyed by the same id. Slots not active hold a valid item (drawn like the rest)
 * that is not offered.
 *
 * Calls out of order return DS_EINPUT: a step outside a session, a time earlier
 * than the user's last update, a session for a churned user, a slate with a
 * repeated, unknown or inactive item.
 *
 * Built with DIVSIM_DEBUG_INVARIANTS (the sanitizer builds define it), every step
 * also checks the model's invariants: finite utilities, click, purchase and
 * leave probabilities in [0, 1] with the click probabilities summing to at most
 * 1, and a finite dwell; a broken one makes xStep return DS_EINTERNAL, with the
 * env's err naming it (shop_check_step, compiled in every build). */
#include "shop.h"

#include "../sim/common.h"
#include "../sim/sketch.h"
#include "../sim/vecmath.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SHOP_CAPACITY_FACTOR 2 /* id slots per initial item when the catalogue churns */
/* A user's satiation row is rebased (O(topics)) when a click comes this many time
 * constants after its reference time: the scale e^16 = 9e6 stays well inside a
 * float's range, and the rebase is rare (every 16 satiation_tau at most). */
#define SHOP_SATIATION_REBASE 16.0
#define SHOP_MEMORY_LIMIT (16.0 * 1024 * 1024 * 1024) /* bytes we agree to allocate */

#define CFG(f, def, lo, hi, help) P_REAL(shop_config, f, def, lo, hi, help)
#define ICFG(f, def, lo, hi, help) P_INT(shop_config, f, def, lo, hi, help)

static const param_spec shop_params[] = {
    /* catalogue */
    ICFG(items, "2000", 1, 1e8, "items in the catalogue (active at the start, with churn)"),
    ICFG(topics, "20", 1, 1e6, "topics; item topics are Zipf distributed"),
    ICFG(dim, "16", 1, 4096, "dimension of the latent taste and item vectors"),
    ICFG(slate, "10", 1, 10000, "items per slate, distinct"),
    ICFG(max_steps, "20", 1, 1e6, "hard cap on steps per session"),
    CFG(topic_zipf, "1.0", 0, 10, "Zipf exponent s of topic sizes: P(topic t) ~ 1/(t+1)^s"),
    CFG(item_spread, "0.5", 0, 100,
        "norm of an item's offset from its topic centroid before normalising"),
    CFG(price_mean, "3.0", -50, 50, "mean log-price over topics (log of currency units)"),
    CFG(price_topic_sd, "0.5", 0, 10, "sd of the topics' mean log-prices"),
    CFG(price_sd, "0.3", 0, 10, "sd of log-price within a topic"),
    CFG(appeal_sd, "2.0", 0, 10, "sd of an item's intrinsic appeal a_i (utility units)"),
    /* users */
    ICFG(users, "10000", 1, 1e9, "users"),
    ICFG(user_topics, "3", 1, 1000, "topics mixed into a user's long-term taste"),
    CFG(user_dirichlet, "1.0", 1e-3, 1e3, "Dirichlet concentration of a user's topic weights"),
    CFG(price_weight, "0.3", 0, 100, "mean price sensitivity b_u (utility per unit of log-price)"),
    CFG(price_weight_sd, "0.3", 0, 5, "log-sd of the mean-one log-normal multiplier of b_u"),
    CFG(visit_rate, "0.05", 1e-9, 1e6, "mean base visit rate (visits per hour)"),
    CFG(visit_rate_sd, "1.0", 0, 5, "log-sd of the base visit rate (heavy tail)"),
    /* time */
    CFG(drift_rate, "0.01", 0, 1e3,
        "Ornstein-Uhlenbeck rate theta pulling taste to its mean (per hour); 0 = no drift"),
    CFG(drift_scale, "0.1", 0, 10, "stationary sd sigma of each taste coordinate around its mean"),
    CFG(satiation_tau, "24", 1e-6, 1e9, "time constant of satiation decay (hours)"),
    /* choice */
    CFG(affinity, "8.0", 0, 1e3, "weight g of taste affinity x.q_i in the utility"),
    CFG(appeal_weight, "1.0", -1e3, 1e3, "weight of intrinsic appeal a_i in the utility"),
    CFG(satiation_weight, "0.5", -1e3, 1e3,
        "utility lost per unit of satiation kappa of the item's topic"),
    CFG(position_bias, "0.3", -1e3, 1e3, "utility lost per log2(1 + position) down the slate"),
    CFG(no_click_utility, "6.0", -1e3, 1e3, "utility v0 of clicking nothing"),
    CFG(satiation_gain, "1.0", 0, 1e3, "satiation added to a topic per click"),
    CFG(reinforcement, "0.05", 0, 1, "share of the way taste moves toward a clicked item"),
    /* purchases */
    CFG(purchase_bias, "-8.0", -1e3, 1e3,
        "log-odds of buying a clicked item of zero affinity at the mean price"),
    CFG(purchase_affinity, "4.0", -1e3, 1e3, "log-odds of buying per unit of affinity x.q_i"),
    CFG(purchase_appeal, "0.5", -1e3, 1e3, "log-odds of buying per unit of intrinsic appeal a_i"),
    CFG(purchase_price, "1.0", -1e3, 1e3,
        "log-odds lost per unit of log-price above price_mean (times b_u/price_weight)"),
    CFG(purchase_delay, "0", 0, 1e6,
        "mean delay before a purchase is revealed (hours, exponential); 0 = immediate"),
    /* sessions, return and churn */
    CFG(step_minutes, "1.0", 0, 1e6, "mean dwell time of a step (minutes, exponential)"),
    CFG(leave_bias, "-2.5", -1e3, 1e3,
        "log-odds of leaving after a step with no boredom and V = 0"),
    CFG(leave_boredom, "1.0", -1e3, 1e3, "log-odds of leaving per unit of expected satiation B"),
    CFG(leave_value, "0.5", -1e3, 1e3, "log-odds of staying per unit of slate inclusive value V"),
    CFG(return_gain, "1.0", -100, 100,
        "log visit-rate change per unit of session satisfaction above the reference"),
    CFG(satisfaction_ref, "0.2", 0, 1,
        "clicks per step at which a session leaves the visit rate unchanged"),
    CFG(rate_floor, "0.1", 1e-6, 1, "lowest visit rate, as a multiple of the user's base rate"),
    CFG(rate_ceiling, "10", 1, 1e6, "highest visit rate, as a multiple of the user's base rate"),
    CFG(churn_threshold, "0.05", 0, 1, "clicks per step below which a session is dissatisfied"),
    ICFG(churn_patience, "3", 0, 1e6,
        "dissatisfied sessions in a row before the user churns; 0 = never"),
    /* catalogue churn */
    CFG(launch_rate, "0", 0, 1e9, "new items per hour (Poisson); 0 = no launches"),
    CFG(item_lifetime, "0", 0, 1e12,
        "mean item lifetime (hours, exponential); 0 = items never retire"),
};

/* Per-user scalars; the vectors x, mu and the satiation row live in slabs. */
typedef struct {
    double last;       /* hours: the user's last session start or step */
    double sat_ref;    /* hours: satiation s(t) = row * e^{-(t - sat_ref)/tau} */
    double rate;       /* current visit rate, per hour */
    double base_rate;  /* rate drawn at creation */
    double price_mult; /* b_u / price_weight, mean one */
    int steps, clicks; /* counters of the current session */
    int streak;        /* dissatisfied sessions in a row */
    unsigned char churned, in_session;
} shop_user;

typedef struct {
    env base;
    shop_config cfg;
    env_context ctx;
    int dim, topics, capacity, churn;
    /* catalogue */
    double *centroid;      /* [topics][dim] unit topic centroids */
    double *topic_price;   /* [topics] mean log-price of each topic */
    gsl_ran_discrete_t *topic_draw; /* Zipf topic sizes */
    int *item_topic;       /* [capacity] */
    double *item_price;    /* [capacity] */
    double *log_price;     /* [capacity] */
    double *appeal;        /* [capacity] */
    double *latent;        /* [capacity][dim] unit norm */
    /* what the oracle's screening bounds read (shop_privileged_bounds), kept with
     * the catalogue: the latents in int8, appeal and log-price as singles,
     * and at least the largest magnitudes of the two */
    sketch latent_sketch;
    float *appeal_single;  /* [capacity] */
    float *log_price_single; /* [capacity] */
    double max_appeal, max_log_price;
    int *active;           /* [capacity] the n_active active ids (the candidates) */
    int *active_pos;       /* [capacity] position of each id in active, -1 if inactive */
    int n_active;
    int *free_ids;         /* [capacity] ring of the n_free inactive ids from free_head:
                              never-used ones first, then in order of retirement */
    int free_head, n_free;
    uint64_t *mark;        /* [capacity bits] scratch to check slates are distinct (as
                              bits, it stays in L1 where a slate check needs it) */
    double next_event;     /* time of the next launch or retirement, or INFINITY */
    /* users: one record each, so that a visit touches one contiguous block (a few
     * adjacent cache lines, one page) rather than four arrays far apart */
    unsigned char *users;  /* [users][record]: shop_user, then x [dim] (current
                              preference), mu [dim] (long-term taste), satiation
                              [topics] (float, relative to the user's sat_ref) */
    size_t record, at_x, at_mu, at_sat; /* bytes: a record, and where its parts start */
    /* scratch */
    double *v;             /* [slate] utilities of the slate being answered */
    double *prob;          /* [slate] click probabilities */
    double *aff;           /* [slate] affinities x.q of the slate's items */
    double *position_cost; /* [slate] position_bias log2(1 + j) */
    double *topic_cost;    /* [topics] scratch: satiation_weight * s[t] of one user, now */
    float *topic_cost_single; /* [topics] scratch: the same as singles, for the bounds */
} shop_state;

/* ---------------------------------------------------------------- helpers */

/* The exponentials of the model are vm_exp (sim/vecmath.h): the same on every
 * machine, and vectorised over a slate or the catalogue. */
static double sigmoid(double z) { return vm_sigmoid(z); }

/* exp(N(-s^2/2, s)): a log-normal multiplier with mean one. */
static double mean_one_lognormal(const gsl_rng *r, double s)
{
    return exp(s * gsl_ran_gaussian_ziggurat(r, 1.0) - 0.5 * s * s);
}

/* Scales v [n] to unit norm; returns 0 (and leaves v) if its norm is zero.
 * Plain loops or sim/vecmath.h rather than BLAS, like every sum in this file:
 * OpenBLAS picks its kernels by CPU, and the simulated world must be the same on
 * every machine. */
static int normalize(double *v, int n)
{
    double sum = 0.0;
    for (int k = 0; k < n; k++)
        sum += v[k] * v[k];
    double norm = sqrt(sum);
    if (norm == 0 || !isfinite(norm))
        return 0;
    for (int k = 0; k < n; k++)
        v[k] /= norm;
    return 1;
}

static int catalogue_churns(const shop_config *c)
{
    return c->launch_rate > 0 || c->item_lifetime > 0;
}

static size_t shop_capacity(const shop_config *c)
{
    return (size_t)c->items * (catalogue_churns(c) ? SHOP_CAPACITY_FACTOR : 1);
}

/* Bytes xCreate will allocate, in double so huge configurations cannot overflow. */
static double shop_memory_bytes(const shop_config *c)
{
    double cap = (double)shop_capacity(c), d = c->dim, t = c->topics;
    double per_user = 2 * d * sizeof(double) + sizeof(shop_user) + t * sizeof(float);
    double per_item = d * sizeof(double) + 3 * sizeof(double) + 4 * sizeof(int) + 1.0 / 8;
    double per_topic = d * sizeof(double) + 3 * sizeof(double) + sizeof(float);
    /* the screening bounds' copies: the latents' sketch, appeal and log-price in
     * single */
    double screening = sketch_memory(cap, c->dim) + cap * 2 * sizeof(float);
    return (double)c->users * per_user + cap * per_item + t * per_topic + screening +
           (double)c->slate * 4 * sizeof(double) + t * sizeof(double) +
           (double)c->user_topics * 3 * sizeof(double) + sizeof(shop_state);
}

static shop_state *as_shop(env *e) { return (shop_state *)e; }
static const shop_state *as_shop_const(const env *e) { return (const shop_state *)e; }

static unsigned char *user_record(const shop_state *s, int u)
{
    return s->users + (size_t)u * s->record;
}
static shop_user *user_of(const shop_state *s, int u)
{
    return (shop_user *)(void *)user_record(s, u);
}
static double *user_x(const shop_state *s, int u)
{
    return (double *)(void *)(user_record(s, u) + s->at_x);
}
static double *user_mu(const shop_state *s, int u)
{
    return (double *)(void *)(user_record(s, u) + s->at_mu);
}
static float *user_satiation(const shop_state *s, int u)
{
    return (float *)(void *)(user_record(s, u) + s->at_sat);
}
static const double *item_latent(const shop_state *s, int i)
{
    return s->latent + (size_t)i * s->dim;
}

/* ------------------------------------------------------------- validation */

/* Every field within its table bounds (configs filled by hand skip param_parse). */
static int check_bounds(const shop_config *c, char *err)
{
    const param_spec *p = shop_params;
    size_t n = sizeof(shop_params) / sizeof(shop_params[0]);
    for (size_t i = 0; i < n; i++) {
        const char *field = (const char *)c + p[i].offset;
        double v = p[i].type == PARAM_REAL ? *(const double *)field
                                           : (double)*(const int *)field;
        if (!(v >= p[i].min && v <= p[i].max))
            return err_set(err, DS_EINPUT, "'%s' = %g is out of range [%g, %g]",
                           p[i].key, v, p[i].min, p[i].max);
    }
    return DS_OK;
}

static int shop_validate(const void *config, char *err)
{
    const shop_config *c = config;
    int rc = check_bounds(c, err);
    if (rc != DS_OK)
        return rc;
    if (c->slate > c->items)
        return err_set(err, DS_EINPUT, "'slate' = %d exceeds 'items' = %d", c->slate,
                       c->items);
    double bytes = shop_memory_bytes(c);
    if (bytes > SHOP_MEMORY_LIMIT)
        return err_set(err, DS_EINPUT,
                       "shop would need about %.1f GiB ('users' = %d, 'items' = %d, "
                       "'dim' = %d, 'topics' = %d); the limit is %.0f GiB",
                       bytes / (1024.0 * 1024 * 1024), c->users, c->items, c->dim,
                       c->topics, SHOP_MEMORY_LIMIT / (1024.0 * 1024 * 1024));
    return DS_OK;
}

/* -------------------------------------------------------------- catalogue */

/* Draws a new item into slot i: topic, latent, price and appeal. */
static void draw_item(shop_state *s, int i, const gsl_rng *r)
{
    const shop_config *c = &s->cfg;
    int t = (int)gsl_ran_discrete(r, s->topic_draw);
    const double *centroid = s->centroid + (size_t)t * s->dim;
    double *q = s->latent + (size_t)i * s->dim;
    double noise = c->item_spread / sqrt((double)s->dim);
    for (int k = 0; k < s->dim; k++)
        q[k] = centroid[k] + noise * gsl_ran_gaussian_ziggurat(r, 1.0);
    if (!normalize(q, s->dim))
        memcpy(q, centroid, sizeof(double) * (size_t)s->dim);
    sketch_fill_row(&s->latent_sketch, i, q);
    s->item_topic[i] = t;
    s->log_price[i] = s->topic_price[t] + gsl_ran_gaussian_ziggurat(r, c->price_sd);
    s->item_price[i] = exp(s->log_price[i]);
    s->appeal[i] = gsl_ran_gaussian_ziggurat(r, c->appeal_sd);
    s->appeal_single[i] = (float)s->appeal[i];
    s->log_price_single[i] = (float)s->log_price[i];
    s->max_appeal = fmax(s->max_appeal, fabs(s->appeal[i]));
    s->max_log_price = fmax(s->max_log_price, fabs(s->log_price[i]));
}

static int build_catalogue(shop_state *s, char *err)
{
    const shop_config *c = &s->cfg;
    const gsl_rng *r = s->ctx.catalogue;
    for (int t = 0; t < s->topics; t++) {
        double *centroid = s->centroid + (size_t)t * s->dim;
        do {
            for (int k = 0; k < s->dim; k++)
                centroid[k] = gsl_ran_gaussian_ziggurat(r, 1.0);
        } while (!normalize(centroid, s->dim));
        s->topic_price[t] = c->price_mean + gsl_ran_gaussian_ziggurat(r, c->price_topic_sd);
    }
    double *weight = malloc(sizeof(double) * (size_t)s->topics); /* [topics] */
    if (!weight)
        return err_set(err, DS_ENOMEM, "out of memory for shop topic weights");
    for (int t = 0; t < s->topics; t++)
        weight[t] = pow(t + 1.0, -c->topic_zipf);
    s->topic_draw = gsl_ran_discrete_preproc((size_t)s->topics, weight);
    free(weight);
    if (!s->topic_draw)
        return err_set(err, DS_ENOMEM, "out of memory for shop topic table");
    /* With churn, the spare slots are drawn after the active items, so the
     * starting catalogue is the same with churn on or off. */
    for (int i = 0; i < s->capacity; i++)
        draw_item(s, i, r);
    for (int i = 0; i < c->items; i++) {
        s->active[i] = i;
        s->active_pos[i] = i;
    }
    s->n_active = c->items;
    /* the spare ids queue up in order, ahead of any id retired later */
    s->free_head = 0;
    s->n_free = s->capacity - c->items;
    for (int i = c->items; i < s->capacity; i++) {
        s->active_pos[i] = -1;
        s->free_ids[i - c->items] = i;
    }
    return DS_OK;
}

/* ------------------------------------------------------------------ users */

/* Draws user u's taste, price sensitivity and visit rate. topic_of_user draws a
 * topic in proportion to its size; chosen and w are [user_topics] scratch. */
static void draw_user(shop_state *s, int u, const gsl_ran_discrete_t *topic_of_user,
                      const double *alpha, int *chosen, double *w)
{
    const shop_config *c = &s->cfg;
    const gsl_rng *r = s->ctx.users;
    size_t m = (size_t)c->user_topics;
    for (size_t j = 0; j < m; j++)
        chosen[j] = (int)gsl_ran_discrete(r, topic_of_user);
    gsl_ran_dirichlet(r, m, alpha, w);
    double *mu = user_mu(s, u);
    memset(mu, 0, sizeof(double) * (size_t)s->dim);
    for (size_t j = 0; j < m; j++) {
        const double *c_t = s->centroid + (size_t)chosen[j] * s->dim;
        for (int k = 0; k < s->dim; k++)
            mu[k] += w[j] * c_t[k];
    }
    if (!normalize(mu, s->dim)) /* opposite centroids cancelling: practically never */
        memcpy(mu, s->centroid + (size_t)chosen[0] * s->dim, sizeof(double) * (size_t)s->dim);
    memcpy(user_x(s, u), mu, sizeof(double) * (size_t)s->dim);
    shop_user *p = user_of(s, u);
    p->price_mult = mean_one_lognormal(r, c->price_weight_sd);
    p->base_rate = c->visit_rate * mean_one_lognormal(r, c->visit_rate_sd);
    p->rate = p->base_rate;
}

static int build_users(shop_state *s, char *err)
{
    const shop_config *c = &s->cfg;
    size_t m = (size_t)c->user_topics;
    double *size = calloc((size_t)s->topics, sizeof(double)); /* [topics] items per topic */
    double *alpha = malloc(sizeof(double) * m);               /* [user_topics] */
    double *w = malloc(sizeof(double) * m);                   /* [user_topics] */
    int *chosen = malloc(sizeof(int) * m);                    /* [user_topics] */
    gsl_ran_discrete_t *topic_of_user = NULL;
    int rc = DS_OK;
    if (!size || !alpha || !w || !chosen) {
        rc = err_set(err, DS_ENOMEM, "out of memory for shop users");
        goto done;
    }
    for (int i = 0; i < c->items; i++)
        size[s->item_topic[i]] += 1;
    for (size_t j = 0; j < m; j++)
        alpha[j] = c->user_dirichlet;
    topic_of_user = gsl_ran_discrete_preproc((size_t)s->topics, size);
    if (!topic_of_user) {
        rc = err_set(err, DS_ENOMEM, "out of memory for shop user topic table");
        goto done;
    }
    for (int u = 0; u < c->users; u++)
        draw_user(s, u, topic_of_user, alpha, chosen, w);
done:
    gsl_ran_discrete_free(topic_of_user);
    free(size);
    free(alpha);
    free(w);
    free(chosen);
    return rc;
}

/* The user's taste on arrival at t >= last: the exact Ornstein-Uhlenbeck
 * transition over the time since the last step. (Satiation needs nothing: it is
 * decayed on read.) */
static void user_arrive(shop_state *s, int u, double t)
{
    const shop_config *c = &s->cfg;
    shop_user *p = user_of(s, u);
    double gap = t - p->last;
    p->last = t;
    if (!(gap > 0) || !(c->drift_rate > 0))
        return;
    double keep = exp(-c->drift_rate * gap);
    double sd = c->drift_scale * sqrt(-expm1(-2 * c->drift_rate * gap));
    double *x = user_x(s, u);
    const double *mu = user_mu(s, u);
    for (int k = 0; k < s->dim; k++) {
        x[k] = mu[k] + (x[k] - mu[k]) * keep;
        if (sd > 0)
            x[k] += sd * gsl_ran_gaussian_ziggurat(s->ctx.drift, 1.0);
    }
}

/* e^{-(t - sat_ref)/tau}: the factor from user u's stored satiation row to its
 * satiation at time t >= sat_ref. */
static double satiation_scale(const shop_state *s, int u, double t)
{
    return exp(-(t - user_of(s, u)->sat_ref) / s->cfg.satiation_tau);
}

/* Adds gain to user u's satiation of topic at time t, where the row's scale is
 * *scale (satiation_scale at t); rebases the row to t first if its reference is
 * too old, updating *scale. */
static void satiation_add(shop_state *s, int u, int topic, double t, double gain, double *scale)
{
    shop_user *p = user_of(s, u);
    float *sat = user_satiation(s, u);
    if ((t - p->sat_ref) / s->cfg.satiation_tau > SHOP_SATIATION_REBASE) {
        for (int k = 0; k < s->topics; k++)
            sat[k] = (float)(sat[k] * *scale);
        p->sat_ref = t;
        *scale = 1.0;
    }
    sat[topic] = (float)(sat[topic] + gain / *scale);
}

/* ------------------------------------------------------------- the model */

/* s->topic_cost[t] = satiation_weight * s_u[t] at the scale of the user's row now
 * (satiation_scale): the satiation term of every item of topic t. O(topics). */
static void topic_costs(shop_state *s, int u, double scale)
{
    const float *sat = user_satiation(s, u);
    double w = s->cfg.satiation_weight;
    for (int t = 0; t < s->topics; t++)
        s->topic_cost[t] = w * (scale * sat[t]);
}

/* s->v[j] = the utility of slate[j] to user u in slot j: affinity (s->aff[j]),
 * appeal, price, the satiation of its topic at scale, less the position cost. */
static void slate_utilities(shop_state *s, int u, const int *slate, double scale)
{
    const shop_config *c = &s->cfg;
    const float *sat = user_satiation(s, u);
    const double *appeal = s->appeal, *log_price = s->log_price, *aff = s->aff;
    const double *position_cost = s->position_cost;
    const int *topic = s->item_topic;
    double g = c->affinity, wa = c->appeal_weight, ws = c->satiation_weight;
    double b = c->price_weight * user_of(s, u)->price_mult;
    double *v = s->v;
    for (int j = 0; j < c->slate; j++) {
        int i = slate[j];
        v[j] = g * aff[j] + wa * appeal[i] - b * log_price[i] - ws * (scale * sat[topic[i]]) -
               position_cost[j];
    }
}

/* The log-odds that a click on item i becomes a purchase. */
static double purchase_log_odds(const shop_state *s, int u, int i, double affinity)
{
    const shop_config *c = &s->cfg;
    return c->purchase_bias + c->purchase_affinity * affinity + c->purchase_appeal * s->appeal[i] -
           c->purchase_price * user_of(s, u)->price_mult * (s->log_price[i] - c->price_mean);
}

static double purchase_probability(const shop_state *s, int u, int i, double affinity)
{
    return sigmoid(purchase_log_odds(s, u, i, affinity));
}

/* Closes user u's session: the visit rate follows satisfaction, and a run of
 * dissatisfied sessions churns the user. Returns 1 if the user churned. */
static int end_session(shop_state *s, int u)
{
    const shop_config *c = &s->cfg;
    shop_user *p = user_of(s, u);
    double satisfaction = p->steps > 0 ? (double)p->clicks / p->steps : 0;
    double rate = p->rate * exp(c->return_gain * (satisfaction - c->satisfaction_ref));
    double lo = c->rate_floor * p->base_rate, hi = c->rate_ceiling * p->base_rate;
    p->rate = rate < lo ? lo : rate > hi ? hi : rate;
    p->streak = satisfaction < c->churn_threshold ? p->streak + 1 : 0;
    p->in_session = 0;
    if (c->churn_patience > 0 && p->streak >= c->churn_patience)
        p->churned = 1;
    return p->churned;
}

/* Slate items must be distinct active ids. The words holding the marks set on
 * the way are zeroed again (no other mark is ever set): those of the items
 * before the first bad one (a repeated item's through its first place). */
static int check_slate(shop_state *s, const int *slate)
{
    int k = s->cfg.slate, j;
    unsigned capacity = (unsigned)s->capacity;
    uint64_t *mark = s->mark;
    for (j = 0; j < k; j++) {
        unsigned i = (unsigned)slate[j];
        uint64_t bit = UINT64_C(1) << (i % 64);
        /* without catalogue churn every id below capacity is active */
        if (i >= capacity || (s->churn && s->active_pos[i] < 0) || (mark[i / 64] & bit))
            break;
        mark[i / 64] |= bit;
    }
    int ok = j == k;
    while (j-- > 0)
        mark[(unsigned)slate[j] / 64] = 0;
    return ok ? DS_OK : DS_EINPUT;
}

/* Picks the position clicked (or -1) from the slate's utilities by multinomial
 * logit, filling s->prob; *inclusive gets log sum_j e^{v_j}. One exp per item:
 * P(j) = e^{v_j - vmax} e^{vmax - total}. */
static int choose(shop_state *s, double *inclusive)
{
    int k = s->cfg.slate;
    double v0 = s->cfg.no_click_utility, vmax = s->v[0];
    for (int j = 1; j < k; j++)
        if (s->v[j] > vmax)
            vmax = s->v[j];
    vm_exp_shifted(s->prob, s->v, vmax, k);
    double sum = 0;
    for (int j = 0; j < k; j++)
        sum += s->prob[j];
    double lse = vmax + log(sum);
    /* log(e^lse + e^v0), computed without overflow */
    double total = fmax(lse, v0) + log1p(vm_exp(-fabs(lse - v0)));
    double norm = vm_exp(vmax - total);
    *inclusive = lse;
    double r = gsl_rng_uniform(s->ctx.choices), acc = 0;
    int chosen = -1;
    for (int j = 0; j < k; j++) {
        s->prob[j] *= norm;
        acc += s->prob[j];
        if (chosen < 0 && r < acc)
            chosen = j;
    }
    return chosen;
}

/* -------------------------------------------------------- catalogue churn */

static double launch_rate_now(const shop_state *s)
{
    return s->n_free > 0 ? s->cfg.launch_rate : 0;
}

static double retire_rate_now(const shop_state *s)
{
    const shop_config *c = &s->cfg;
    if (c->item_lifetime <= 0 || s->n_active <= c->slate)
        return 0;
    return s->n_active / c->item_lifetime;
}

static void schedule_catalogue_event(shop_state *s, double now)
{
    double total = launch_rate_now(s) + retire_rate_now(s);
    s->next_event = total > 0 ? now + gsl_ran_exponential(s->ctx.item_churn, 1.0 / total)
                              : INFINITY;
}

/* A new item under the id at the head of the free queue: a never-used id while
 * any remain, else the one retired longest ago. Needs n_free > 0. */
static void launch_item(shop_state *s, const gsl_rng *r)
{
    int id = s->free_ids[s->free_head];
    s->free_head = (s->free_head + 1) % s->capacity;
    s->n_free--;
    draw_item(s, id, r);
    s->active[s->n_active] = id;
    s->active_pos[id] = s->n_active++;
}

/* Retires a uniformly chosen active item; its id joins the back of the free queue.
 * n_active + n_free = capacity, so the ring never overflows. */
static void retire_item(shop_state *s, const gsl_rng *r)
{
    int pos = (int)gsl_rng_uniform_int(r, (unsigned long)s->n_active);
    int id = s->active[pos], last = s->active[--s->n_active];
    s->active[pos] = last;
    s->active_pos[last] = pos;
    s->active_pos[id] = -1;
    s->free_ids[(s->free_head + s->n_free) % s->capacity] = id;
    s->n_free++;
}

static void catalogue_event(shop_state *s)
{
    const gsl_rng *r = s->ctx.item_churn;
    double launch = launch_rate_now(s), retire = retire_rate_now(s);
    if (gsl_rng_uniform(r) * (launch + retire) < launch)
        launch_item(s, r);
    else
        retire_item(s, r);
    schedule_catalogue_event(s, s->next_event);
}

/* ------------------------------------------------------------- interface */

static void shop_destroy(env *e)
{
    shop_state *s = as_shop(e);
    if (!s)
        return;
    free(s->centroid);
    free(s->topic_price);
    gsl_ran_discrete_free(s->topic_draw);
    free(s->item_topic);
    free(s->item_price);
    free(s->log_price);
    free(s->appeal);
    free(s->latent);
    sketch_free(&s->latent_sketch);
    free(s->appeal_single);
    free(s->log_price_single);
    free(s->active);
    free(s->active_pos);
    free(s->free_ids);
    free(s->mark);
    free(s->users);
    free(s->v);
    free(s->prob);
    free(s->aff);
    free(s->position_cost);
    free(s->topic_cost);
    free(s->topic_cost_single);
    free(s);
}

static int check_streams(const env_context *ctx, int churn, char *err)
{
    const struct { const gsl_rng *r; const char *name; } need[] = {
        {ctx->catalogue, "catalogue"}, {ctx->users, "users"},
        {ctx->arrivals, "arrivals"},   {ctx->drift, "drift"},
        {ctx->choices, "choices"},     {ctx->purchases, "purchases"},
    };
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
        if (!need[i].r)
            return err_set(err, DS_EINPUT, "shop needs the random stream '%s'", need[i].name);
    if (churn && !ctx->item_churn)
        return err_set(err, DS_EINPUT, "shop needs the random stream 'item_churn' "
                                       "when 'launch_rate' or 'item_lifetime' is set");
    return DS_OK;
}

static int shop_allocate(shop_state *s)
{
    size_t cap = (size_t)s->capacity, d = (size_t)s->dim, t = (size_t)s->topics;
    size_t users = (size_t)s->cfg.users, k = (size_t)s->cfg.slate;
    s->centroid = malloc(sizeof(double) * t * d);
    s->topic_price = malloc(sizeof(double) * t);
    s->item_topic = malloc(sizeof(int) * cap);
    s->item_price = malloc(sizeof(double) * cap);
    s->log_price = malloc(sizeof(double) * cap);
    s->appeal = malloc(sizeof(double) * cap);
    s->latent = alloc_cache_aligned(sizeof(double) * cap * d); /* a step reads 10 random rows */
    s->active = malloc(sizeof(int) * cap);
    s->active_pos = malloc(sizeof(int) * cap);
    s->free_ids = malloc(sizeof(int) * cap);
    s->mark = calloc((cap + 63) / 64, sizeof *s->mark);
    s->at_x = sizeof(shop_user); /* a multiple of 8: the doubles stay aligned */
    s->at_mu = s->at_x + sizeof(double) * d;
    s->at_sat = s->at_mu + sizeof(double) * d;
    s->record = (s->at_sat + sizeof(float) * t + 7) / 8 * 8;
    s->users = users <= SIZE_MAX / s->record ? alloc_random_access(users * s->record) : NULL;
    s->v = malloc(sizeof(double) * k);
    s->prob = malloc(sizeof(double) * k);
    s->aff = malloc(sizeof(double) * k);
    s->position_cost = malloc(sizeof(double) * k);
    s->topic_cost = malloc(sizeof(double) * t);
    s->topic_cost_single = malloc(sizeof(float) * t);
    s->appeal_single = malloc(sizeof(float) * cap);
    s->log_price_single = malloc(sizeof(float) * cap);
    if (!s->appeal_single || !s->log_price_single || !s->topic_cost_single ||
        sketch_init(&s->latent_sketch, s->capacity, s->dim) != DS_OK)
        return DS_ENOMEM;
    return s->centroid && s->topic_price && s->item_topic && s->item_price &&
                   s->log_price && s->appeal && s->latent && s->active && s->active_pos &&
                   s->free_ids && s->mark && s->users &&
                   s->v && s->prob && s->aff && s->position_cost && s->topic_cost
               ? DS_OK
               : DS_ENOMEM;
}

static int shop_create(const void *config, const env_context *ctx, env **out, char *err)
{
    const shop_config *c = config;
    *out = NULL;
    int rc = shop_validate(c, err);
    if (rc != DS_OK)
        return rc;
    rc = check_streams(ctx, catalogue_churns(c), err);
    if (rc != DS_OK)
        return rc;
    shop_state *s = calloc(1, sizeof(*s));
    if (!s)
        return err_set(err, DS_ENOMEM, "out of memory for shop");
    s->cfg = *c;
    s->ctx = *ctx;
    s->dim = c->dim;
    s->topics = c->topics;
    s->capacity = (int)shop_capacity(c);
    s->churn = catalogue_churns(c);
    s->base.type = &shop_env;
    if (shop_allocate(s) != DS_OK) {
        rc = err_set(err, DS_ENOMEM, "out of memory for shop (about %.1f MiB)",
                     shop_memory_bytes(c) / (1024.0 * 1024));
        goto fail;
    }
    if ((rc = build_catalogue(s, err)) != DS_OK || (rc = build_users(s, err)) != DS_OK)
        goto fail;
    for (int j = 0; j < c->slate; j++)
        s->position_cost[j] = c->position_bias * log2(1.0 + j);
    s->next_event = INFINITY;
    if (s->churn)
        schedule_catalogue_event(s, 0);
    s->base.spec = (env_spec){
        .n_items = s->capacity,
        .n_users = c->users,
        .slate = c->slate,
        .n_topics = c->topics,
        .max_steps = c->max_steps,
        .item_topic = s->item_topic,
        .item_price = s->item_price,
    };
    *out = &s->base;
    return DS_OK;
fail:
    shop_destroy(&s->base);
    return rc;
}

static int user_ok(const shop_state *s, int u) { return u >= 0 && u < s->cfg.users; }

/* GCC takes a function of prefetches alone for one without effects and drops
 * the calls that are not inlined: the prefetchers are always inlined. */
#if defined(__GNUC__)
#define PREFETCHER static inline __attribute__((always_inline)) void
#else
#define PREFETCHER static void
#endif

/* Asks for every cache line of user u's record at once: a visit is the first
 * touch of a record in a long while, and its misses then overlap instead of
 * coming one after another (the taste, then the long-term taste, then the
 * satiation) - with a million users, the difference between a flat cost per
 * step and one that grows with the population. */
PREFETCHER prefetch_user(const shop_state *s, int u)
{
#if defined(__GNUC__)
    const unsigned char *rec = user_record(s, u);
    for (size_t at = 0; at < s->record; at += 64)
        __builtin_prefetch(rec + at);
#else
    (void)s;
    (void)u;
#endif
}

static int shop_next_visit(env *e, int u, double now, double *next)
{
    shop_state *s = as_shop(e);
    if (!user_ok(s, u))
        return DS_EINPUT;
    prefetch_user(s, u);
    const shop_user *p = user_of(s, u);
    *next = p->churned ? INFINITY
                       : now + gsl_ran_exponential(s->ctx.arrivals, 1.0 / p->rate);
    return DS_OK;
}

static int shop_start_session(env *e, int u, double t)
{
    shop_state *s = as_shop(e);
    if (!user_ok(s, u))
        return DS_EINPUT;
    prefetch_user(s, u);
    if (user_of(s, u)->churned || !(t >= user_of(s, u)->last))
        return DS_EINPUT;
    user_arrive(s, u, t);
    shop_user *p = user_of(s, u);
    p->steps = p->clicks = 0;
    p->in_session = 1;
    return DS_OK;
}

static int shop_candidates(env *e, int u, const int **items, int *n)
{
    shop_state *s = as_shop(e);
    if (!user_ok(s, u))
        return DS_EINPUT;
    *items = s->active;
    *n = s->n_active;
    return DS_OK;
}

/* Purchase draw for a click on item i; fills the purchase fields of out. */
static void draw_purchase(shop_state *s, int u, int i, double affinity, env_response *out)
{
    const gsl_rng *r = s->ctx.purchases;
    double delay = s->cfg.purchase_delay;
    out->purchased = gsl_rng_uniform(r) < purchase_probability(s, u, i, affinity);
    out->purchase_delay = out->purchased && delay > 0 ? gsl_ran_exponential(r, delay) : 0;
    out->revenue = out->purchased ? s->item_price[i] : 0;
}

/* A click on item i at t: more satiation for its topic, taste pulled toward it. */
static void apply_click(shop_state *s, int u, int i, double t, double *scale)
{
    satiation_add(s, u, s->item_topic[i], t, s->cfg.satiation_gain, scale);
    double r = s->cfg.reinforcement;
    if (r > 0) {
        double *x = user_x(s, u);
        const double *q = item_latent(s, i);
        for (int k = 0; k < s->dim; k++)
            x[k] += r * (q[k] - x[k]);
    }
}

/* Asks for the slate items' rows and scalars at once: with a catalogue beyond the
 * cache, each is a miss, and issued together they overlap instead of waiting on
 * one another through the dot products. Of a long row only the first 256 bytes
 * (d <= 32 whole): the hardware's stream prefetch follows a dot product along
 * the rest, which would not stay in L1 if it were all asked for at once. */
PREFETCHER prefetch_slate(const shop_state *s, const int *slate)
{
#if defined(__GNUC__)
    size_t row = sizeof(double) * (size_t)s->dim;
    row = row < 256 ? row : 256;
    for (int j = 0; j < s->cfg.slate; j++) {
        int i = slate[j];
        const char *q = (const char *)item_latent(s, i);
        for (size_t at = 0; at < row; at += 64)
            __builtin_prefetch(q + at);
        __builtin_prefetch(s->appeal + i);
        __builtin_prefetch(s->log_price + i);
        __builtin_prefetch(s->item_topic + i);
    }
#else
    (void)s;
    (void)slate;
#endif
}

static int is_probability(double p) { return p >= 0.0 && p <= 1.0; }

int shop_check_step(const double *v, const double *prob, int k, double leave,
                    const env_response *out, char *err)
{
    double total = 0;
    for (int j = 0; j < k; j++) {
        if (!isfinite(v[j]))
            return err_set(err, DS_EINTERNAL, "utility %g at slate position %d", v[j], j);
        if (!is_probability(prob[j]))
            return err_set(err, DS_EINTERNAL, "click probability %g at slate position %d",
                           prob[j], j);
        total += prob[j];
    }
    if (!(total <= 1.0 + 1e-9))
        return err_set(err, DS_EINTERNAL, "click probabilities sum to %.17g", total);
    if (!is_probability(leave))
        return err_set(err, DS_EINTERNAL, "leave probability %g", leave);
    if (!isfinite(out->dwell) || !(out->dwell >= 0))
        return err_set(err, DS_EINTERNAL, "dwell %g hours", out->dwell);
    if (!isfinite(out->purchase_delay) || !isfinite(out->revenue))
        return err_set(err, DS_EINTERNAL, "purchase delay %g, revenue %g",
                       out->purchase_delay, out->revenue);
    return DS_OK;
}

static int shop_step(env *e, int u, const int *slate, double t, env_response *out)
{
    shop_state *s = as_shop(e);
    const shop_config *c = &s->cfg;
    if (!user_ok(s, u) || !user_of(s, u)->in_session || !(t >= user_of(s, u)->last) ||
        check_slate(s, slate) != DS_OK)
        return DS_EINPUT;
    prefetch_slate(s, slate);
    shop_user *p = user_of(s, u);
    p->last = t;
    double scale = satiation_scale(s, u, t);
    vm_rows_dot_gather(s->aff, s->latent, slate, user_x(s, u), c->slate, s->dim);
    slate_utilities(s, u, slate, scale);
    double inclusive;
    int pos = choose(s, &inclusive);
    *out = (env_response){.click = pos, .item = pos >= 0 ? slate[pos] : -1};
    if (pos >= 0) {
        int i = slate[pos];
        draw_purchase(s, u, i, s->aff[pos], out);
        apply_click(s, u, i, t, &scale);
        p->clicks++;
    }
    p->steps++;
    out->dwell = c->step_minutes > 0
                     ? gsl_ran_exponential(s->ctx.choices, c->step_minutes / 60.0)
                     : 0;
    const float *sat = user_satiation(s, u);
    double boredom = 0;
    for (int j = 0; j < c->slate; j++)
        boredom += s->prob[j] * (scale * sat[s->item_topic[slate[j]]]);
    double value = inclusive - c->no_click_utility;
    double leave = sigmoid(c->leave_bias + c->leave_boredom * boredom - c->leave_value * value);
    int leaves = gsl_rng_uniform(s->ctx.choices) < leave;
    if (leaves || p->steps >= c->max_steps) {
        out->done = 1;
        out->churned = end_session(s, u);
    }
#ifdef DIVSIM_DEBUG_INVARIANTS
    return shop_check_step(s->v, s->prob, c->slate, leave, out, e->err);
#else
    return DS_OK;
#endif
}

static double shop_next_event(const env *e)
{
    return as_shop_const(e)->next_event;
}

static int shop_advance(env *e, double t)
{
    shop_state *s = as_shop(e);
    while (s->next_event <= t)
        catalogue_event(s);
    return DS_OK;
}

/* The factors of the privileged values that depend on the user, not the item. */
typedef struct {
    double g, wa, b;                   /* utility: affinity, appeal, price weights */
    double bias, pa, pp, price, mean;  /* purchase log-odds */
} user_terms;

/* The user's terms; s->topic_cost gets the satiation as of the user's last update. */
static user_terms user_terms_of(shop_state *s, int u)
{
    const shop_config *c = &s->cfg;
    double mult = user_of(s, u)->price_mult;
    topic_costs(s, u, satiation_scale(s, u, user_of(s, u)->last));
    return (user_terms){.g = c->affinity, .wa = c->appeal_weight, .b = c->price_weight * mult,
                        .bias = c->purchase_bias, .pa = c->purchase_affinity,
                        .pp = c->purchase_appeal, .price = c->purchase_price * mult,
                        .mean = c->price_mean};
}

/* Item i's utility as in slate_utilities without the position cost, and its
 * purchase log-odds (purchase_log_odds: the same sums in the same order, with
 * the per-user factors taken out), given its affinity aff. */
static double utility_at(const shop_state *s, const user_terms *t, int i, double aff)
{
    return t->g * aff + t->wa * s->appeal[i] - t->b * s->log_price[i] -
           s->topic_cost[s->item_topic[i]];
}

static double log_odds_at(const shop_state *s, const user_terms *t, int i, double aff)
{
    return t->bias + t->pa * aff + t->pp * s->appeal[i] - t->price * (s->log_price[i] - t->mean);
}

/* z[j] = purchase_log_odds of items[j] given its affinity aff[j], for j < n. */
static void purchase_log_odds_of(const shop_state *s, const user_terms *t, const int *items,
                                 const double *aff, int n, double *z)
{
    for (int j = 0; j < n; j++)
        z[j] = log_odds_at(s, t, items[j], aff[j]);
}

/* v[j] = the utility of items[j] given its affinity aff[j] (v may be aff). */
static void utilities_of(const shop_state *s, const user_terms *t, const int *items,
                         const double *aff, int n, double *v)
{
    for (int j = 0; j < n; j++)
        v[j] = utility_at(s, t, items[j], aff[j]);
}

static int shop_privileged(env *e, int u, const int *items, int n, double *utility,
                           double *value_if_clicked, double *no_click_utility)
{
    shop_state *s = as_shop(e);
    if (!user_ok(s, u))
        return DS_EINPUT;
    if (no_click_utility)
        *no_click_utility = s->cfg.no_click_utility;
    /* The active list itself is trusted; without churn it is 0 .. items-1. */
    int own = items == s->active && n <= s->n_active;
    for (int j = 0; j < n && !own; j++)
        if (items[j] < 0 || items[j] >= s->capacity)
            return DS_EINPUT;
    reward_kind reward = s->ctx.reward;
    if (value_if_clicked && reward != REWARD_PURCHASES && reward != REWARD_REVENUE &&
        reward != REWARD_CLICKS)
        return DS_EINPUT;
    /* One pass over the items' latents: affinities, into whichever output exists. */
    double *aff = utility ? utility : value_if_clicked;
    if (!aff)
        return DS_OK;
    if (own && !s->churn)
        vm_rows_dot(aff, s->latent, user_x(s, u), n, s->dim);
    else
        vm_rows_dot_gather(aff, s->latent, items, user_x(s, u), n, s->dim);
    user_terms terms = user_terms_of(s, u);
    if (value_if_clicked && reward == REWARD_CLICKS) {
        for (int j = 0; j < n; j++)
            value_if_clicked[j] = 1;
    } else if (value_if_clicked) {
        purchase_log_odds_of(s, &terms, items, aff, n, value_if_clicked);
        vm_sigmoid_array(value_if_clicked, value_if_clicked, n);
        if (reward == REWARD_REVENUE)
            for (int j = 0; j < n; j++)
                value_if_clicked[j] *= s->item_price[items[j]];
    }
    if (utility)
        utilities_of(s, &terms, items, utility, n, utility);
    return DS_OK;
}

/* ---- xPrivilegedBounds: screening bounds for the oracle ----
 * For each item, bounds on the utility and value that shop_privileged gives,
 * from the sketch of the latents (sim/sketch.h) and single-precision copies of
 * appeal and log-price, eight items at a time in single precision.
 *
 * The affinity x.q_i that shop_privileged computes (vm_dot) lies in
 * [f_i - E_i, f_i + E_i] (sim/sketch.h). The utility v = g a + w_a appeal -
 * b log p - cost(topic) and the purchase log-odds z are affine in the affinity
 * a: at the end of the interval on the side of the coefficient's sign they
 * bound the exact real values. Formed in single precision from singles, each
 * of their at most six terms goes through at most three roundings (input,
 * coefficient, product) and the sum through five more, 2^-24 relative each:
 * within 2^-20 S of the real value, S the sum of the terms' largest magnitudes
 * (|A| <= |x| max|q| + 2 E_max, the catalogue's largest |appeal| and |log p|,
 * the user's largest satiation cost); the doubles shop_privileged forms are
 * within 2^-50 S of it too. The margin 2^-19 S, rounded up, covers both and
 * the rounding of adding it. A purchase probability, vm_sigmoid(z), is
 * e / (1 + e) <= e = vm_exp(z) for z < 0 and at most 1 otherwise, so
 * log r <= min(z, 0) up to the exponential's error of a few ulps (for
 * z >= -700, where e is a normal number; below, the bound of z = -700
 * serves); revenue adds log p_i (the price is exp of it, to within an ulp); a
 * click's value is 1: log r = 0. Sums of those get the same kind of margin. */

/* GCC vector extensions, lowered to whatever the target has; the helpers are
 * always inlined, so no vector crosses a call (GCC's ABI note does not apply). */
#pragma GCC diagnostic ignored "-Wpsabi" /* to the end of the file: clang reports there */
#define BOUND_INLINE static inline __attribute__((always_inline))
/* The loop is compiled for AVX2 too and picked at run time (GCC on x86-64). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define BOUND_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define BOUND_CLONES
#endif
typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));
typedef double v4d __attribute__((vector_size(32)));

/* The user's terms as singles, and the margins. */
typedef struct {
    float a, absolute;       /* E_i = a |q_i| + absolute */
    float g, wa, b;          /* utility */
    float bias, pa, pp, price, mean; /* purchase log-odds */
    float utility_margin, odds_margin, ratio_margin, value_margin;
    float v_side, z_side;    /* +1 where the coefficient of the affinity is >= 0, else -1 */
    reward_kind reward;
} bound_terms;

static float margin_of(double magnitude) { return sketch_single_up(0x1p-19 * magnitude); }

static bound_terms bound_terms_of(const shop_state *s, const user_terms *t,
                                  const sketch_error *err, double max_cost)
{
    double max_norm = s->latent_sketch.max_norm;
    double e_max = err->scale * max_norm + err->absolute;
    double aff = err->x_norm * max_norm + 2 * e_max;
    double sv = fabs(t->g) * aff + fabs(t->wa) * s->max_appeal + fabs(t->b) * s->max_log_price +
                max_cost;
    double sz = fabs(t->bias) + fabs(t->pa) * aff + fabs(t->pp) * s->max_appeal +
                fabs(t->price) * (s->max_log_price + fabs(t->mean));
    double ratio = 700 + s->max_log_price + 0x1p-11;
    return (bound_terms){
        .a = sketch_single_up(err->scale), .absolute = sketch_single_up(err->absolute),
        .g = (float)t->g, .wa = (float)t->wa, .b = (float)t->b,
        .bias = (float)t->bias, .pa = (float)t->pa, .pp = (float)t->pp,
        .price = (float)t->price, .mean = (float)t->mean,
        .utility_margin = margin_of(sv), .odds_margin = margin_of(sz),
        .ratio_margin = margin_of(ratio), .value_margin = margin_of(sv + ratio),
        .v_side = t->g >= 0 ? 1.0f : -1.0f, .z_side = t->pa >= 0 ? 1.0f : -1.0f,
        .reward = s->ctx.reward};
}

BOUND_INLINE v8f select8(v8i mask, v8f a, v8f b) { return (v8f)((mask & (v8i)a) | (~mask & (v8i)b)); }

/* The four bounds of eight items from their f, |q|, appeal, log-price and
 * satiation cost, for the reward kind `reward` (a constant where inlined). The
 * end of [f - E, f + E] on a coefficient's side is f + side E: multiplying by
 * +-1 is exact, so it is the same single as f + E or f - E. */
BOUND_INLINE void bound_block(const bound_terms *c, reward_kind reward, v8f f, v8f norm,
                              v8f appeal, v8f log_price, v8f cost, v8f out[4])
{
    v8f error = c->a * norm + c->absolute;
    v8f v_error = c->v_side * error;
    v8f rest = c->wa * appeal - c->b * log_price - cost;
    v8f v_hi = c->g * (f + v_error) + rest + c->utility_margin;
    out[0] = v_hi;
    out[1] = c->utility_margin - (c->g * (f - v_error) + rest);
    if (reward == REWARD_CLICKS) {
        out[2] = (v8f){0};
        out[3] = v_hi;
        return;
    }
    v8f z = c->bias + c->pa * (f + c->z_side * error) + c->pp * appeal -
            c->price * (log_price - c->mean) + c->odds_margin;
    v8f zero = {0}, floor = zero - 700.0f;
    v8f log_r = select8(z > zero, zero, select8(z < floor, floor, z)); /* NaN stays */
    if (reward == REWARD_REVENUE)
        log_r = log_r + log_price;
    out[2] = log_r + c->ratio_margin;
    out[3] = v_hi + log_r + c->value_margin;
}

BOUND_INLINE v8f load8(const float *from)
{
    v8f v;
    memcpy(&v, from, sizeof v);
    return v;
}

BOUND_INLINE v8f max8(v8f a, v8f b) { return select8(a > b, a, b); }

/* Where a run's satiation costs come from: looked up (cost), or where at most
 * SPARSE_TOPICS topics cost anything, from the items' topics (topic): the bits
 * of cost_bits[k] for the items of topic topic_of[k], and 0 for the others.
 * That is what the lookup gives when the topics listed are those whose cost is
 * not +0 (its bits not all zero); unused entries hold topic -1. */
enum { SPARSE_TOPICS = 2 };
typedef struct {
    const float *cost;  /* [n], or NULL */
    const int *topic;   /* [n] the items' topics, where cost is NULL */
    int topic_of[SPARSE_TOPICS];
    int32_t cost_bits[SPARSE_TOPICS];
} cost_source;

_Static_assert(SPARSE_TOPICS == 2, "costs8 and sparse_costs hold two entries");

/* The costs of the eight items from j (a multiple of 8 past the run's start). */
BOUND_INLINE v8f costs8(const cost_source *cs, int j)
{
    if (cs->cost)
        return load8(cs->cost + j);
    v8i topic;
    memcpy(&topic, cs->topic + j, sizeof topic);
    return (v8f)(((topic == cs->topic_of[0]) & cs->cost_bits[0]) |
                 ((topic == cs->topic_of[1]) & cs->cost_bits[1]));
}

static float cost_at(const cost_source *cs, int j)
{
    if (cs->cost)
        return cs->cost[j];
    int32_t bits = 0;
    for (int k = 0; k < SPARSE_TOPICS; k++)
        bits |= cs->topic[j] == cs->topic_of[k] ? cs->cost_bits[k] : 0;
    float cost;
    memcpy(&cost, &bits, sizeof cost);
    return cost;
}

/* The bounds of the items from .. from + n - 1 (from a multiple of VM_GROUP),
 * given their f, |q|, appeal and log-price (in: four arrays [n]) and satiation
 * costs, into out's columns with their group maxima, eight at a time (the last
 * few of the run through padded copies). Returns 0 if a bound may be NaN (a
 * NaN would not show in the maxima), else 1. */
BOUND_INLINE int bound_run_for(reward_kind reward, const bound_terms *terms,
                               const float *const in[4], const cost_source *costs, int from,
                               int n, bound_column out[N_BOUNDS])
{
    const bound_terms c = *terms; /* local copies: the stores cannot change them */
    const cost_source cs = *costs;
    const float *f = in[0], *norm = in[1], *appeal = in[2], *log_price = in[3];
    float *hi[N_BOUNDS], *group_max[N_BOUNDS];
    for (int o = 0; o < N_BOUNDS; o++) {
        hi[o] = out[o].hi + from;
        group_max[o] = out[o].group_max + 8 * (from / VM_GROUP);
    }
    const v8f lowest = {-INFINITY, -INFINITY, -INFINITY, -INFINITY,
                        -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    v8f sum = {0}; /* NaN if a bound is (or if the sum overflows: a false alarm) */
    float *hi0 = hi[0], *hi1 = hi[1], *hi2 = hi[2], *hi3 = hi[3]; /* in registers */
    for (int g = 0; g < n; g += VM_GROUP) {
        v8f top[N_BOUNDS], b[N_BOUNDS];
        v8f top0 = lowest, top1 = lowest, top2 = lowest, top3 = lowest;
        int end = n - g < VM_GROUP ? n : g + VM_GROUP, j = g;
        for (; j + 8 <= end; j += 8) {
            bound_block(&c, reward, load8(f + j), load8(norm + j), load8(appeal + j),
                        load8(log_price + j), costs8(&cs, j), b);
            sum += b[1] + b[3]; /* b[3] sums b[0] and b[2]: a NaN in either shows there */
            memcpy(hi0 + j, &b[0], sizeof b[0]);
            memcpy(hi1 + j, &b[1], sizeof b[1]);
            memcpy(hi2 + j, &b[2], sizeof b[2]);
            memcpy(hi3 + j, &b[3], sizeof b[3]);
            top0 = max8(b[0], top0);
            top1 = max8(b[1], top1);
            top2 = max8(b[2], top2);
            top3 = max8(b[3], top3);
        }
        top[0] = top0;
        top[1] = top1;
        top[2] = top2;
        top[3] = top3;
        if (j < end) {
            size_t bytes = sizeof(float) * (size_t)(end - j);
            v8f lanes[5] = {{0}};
            for (int k = 0; k < 4; k++)
                memcpy(&lanes[k], in[k] + j, bytes);
            for (int l = 0; l < end - j; l++)
                lanes[4][l] = cost_at(&cs, j + l);
            bound_block(&c, reward, lanes[0], lanes[1], lanes[2], lanes[3], lanes[4], b);
            for (int o = 0; o < N_BOUNDS; o++) {
                for (int l = end - j; l < 8; l++)
                    b[o][l] = 0.0f; /* for the sum */
                sum += b[o];
                for (int l = end - j; l < 8; l++)
                    b[o][l] = -INFINITY; /* for the maxima */
                memcpy(hi[o] + j, &b[o], bytes);
                top[o] = max8(b[o], top[o]);
            }
        }
        for (int o = 0; o < N_BOUNDS; o++)
            memcpy(group_max[o] + 8 * (g / VM_GROUP), &top[o], sizeof top[o]);
    }
    int finite_sum = 1;
    for (int l = 0; l < 8; l++)
        finite_sum &= sum[l] == sum[l];
    return finite_sum;
}

/* bound_run_for, with the reward kind's branches resolved where compiled. */
static BOUND_CLONES int bound_run(const bound_terms *terms, const float *const in[4],
                                  const cost_source *costs, int from, int n,
                                  bound_column out[N_BOUNDS])
{
    switch (terms->reward) {
    case REWARD_CLICKS:
        return bound_run_for(REWARD_CLICKS, terms, in, costs, from, n, out);
    case REWARD_REVENUE:
        return bound_run_for(REWARD_REVENUE, terms, in, costs, from, n, out);
    default:
        return bound_run_for(REWARD_PURCHASES, terms, in, costs, from, n, out);
    }
}

/* Items a chunk of bound_all takes (a multiple of VM_GROUP): its looked-up
 * inputs stay in L1. */
enum { BOUND_CHUNK = 256 };

/* The user's costs (s->topic_cost_single) as a sparse cost_source, listing the
 * topics whose cost is not +0: 1 when there are at most SPARSE_TOPICS of them,
 * else 0. Most users have clicked on few topics since their satiation was 0. */
static int sparse_costs(const shop_state *s, cost_source *cs)
{
    *cs = (cost_source){.topic_of = {-1, -1}};
    int count = 0;
    for (int k = 0; k < s->topics; k++) {
        int32_t bits;
        memcpy(&bits, &s->topic_cost_single[k], sizeof bits);
        if (bits == 0)
            continue;
        if (count == SPARSE_TOPICS)
            return 0;
        cs->topic_of[count] = k;
        cs->cost_bits[count++] = bits;
    }
    return 1;
}

/* The bounds of items [n] into out; direct: items[j] = j, whose inputs are
 * read in place, where others' are looked up a chunk at a time. The satiation
 * costs (s->topic_cost_single) are found from the items' topics by bound_run
 * where few topics cost anything, else looked up. Returns bound_run's verdict. */
static int bound_all(const shop_state *s, const bound_terms *c, const int *items, int n,
                     int direct, bound_column out[N_BOUNDS])
{
    const float *f = s->latent_sketch.approx, *norm = s->latent_sketch.norms_single;
    float looked_up[5][BOUND_CHUNK];
    int topic[BOUND_CHUNK], ok = 1;
    cost_source sparse;
    int few = sparse_costs(s, &sparse);
    for (int j = 0; j < n; j += BOUND_CHUNK) {
        int count = n - j < BOUND_CHUNK ? n - j : BOUND_CHUNK;
        const float *in[4] = {f + j, norm + j, s->appeal_single + j, s->log_price_single + j};
        const int *topic_of = s->item_topic + j;
        if (!direct) {
            const float *from[4] = {f, norm, s->appeal_single, s->log_price_single};
            for (int k = 0; k < 4; k++) {
                vm_lookup_singles(looked_up[k], from[k], s->capacity, items + j, count);
                in[k] = looked_up[k];
            }
            for (int q = 0; q < count; q++)
                topic[q] = s->item_topic[items[j + q]];
            topic_of = topic;
        }
        cost_source costs = sparse;
        costs.topic = topic_of;
        if (!few) {
            vm_lookup_singles(looked_up[4], s->topic_cost_single, s->topics, topic_of, count);
            costs = (cost_source){.cost = looked_up[4]};
        }
        ok &= bound_run(c, in, &costs, j, count, out);
    }
    return ok;
}

static int shop_privileged_bounds(env *e, int u, const int *items, int n,
                                  bound_column out[N_BOUNDS])
{
    shop_state *s = as_shop(e);
    reward_kind reward = s->ctx.reward;
    if (!user_ok(s, u) ||
        (reward != REWARD_PURCHASES && reward != REWARD_REVENUE && reward != REWARD_CLICKS))
        return DS_EINPUT;
    int own = items == s->active && n <= s->n_active;
    for (int j = 0; j < n && !own; j++)
        if (items[j] < 0 || items[j] >= s->capacity)
            return DS_EINPUT;
    sketch_error err;
    if (!sketch_scores(&s->latent_sketch, user_x(s, u), &err))
        return 0;
    user_terms t = user_terms_of(s, u);
    double max_cost = 0;
    for (int k = 0; k < s->topics; k++) {
        max_cost = fmax(max_cost, fabs(s->topic_cost[k]));
        s->topic_cost_single[k] = (float)s->topic_cost[k];
    }
    bound_terms c = bound_terms_of(s, &t, &err, max_cost);
    return bound_all(s, &c, items, n, own && !s->churn, out);
}

static const double *shop_latents(const env *e, int *dim)
{
    const shop_state *s = as_shop_const(e);
    *dim = s->dim;
    return s->latent;
}

/* ------------------------------------------------------------ inspection */

static int is_shop(const env *e) { return e && e->type == &shop_env; }

int shop_user_preference(const env *e, int user, double *x, double *mu)
{
    if (!is_shop(e) || !user_ok(as_shop_const(e), user))
        return DS_EINPUT;
    const shop_state *s = as_shop_const(e);
    size_t d = (size_t)s->dim;
    if (x)
        memcpy(x, user_x(s, user), sizeof(double) * d);
    if (mu)
        memcpy(mu, user_mu(s, user), sizeof(double) * d);
    return DS_OK;
}

int shop_set_user_preference(env *e, int user, const double *x)
{
    if (!is_shop(e) || !user_ok(as_shop(e), user))
        return DS_EINPUT;
    shop_state *s = as_shop(e);
    memcpy(user_x(s, user), x, sizeof(double) * (size_t)s->dim);
    return DS_OK;
}

int shop_user_satiation(const env *e, int user, int topic, double *satiation)
{
    if (!is_shop(e) || !user_ok(as_shop_const(e), user))
        return DS_EINPUT;
    const shop_state *s = as_shop_const(e);
    if (topic < 0 || topic >= s->topics)
        return DS_EINPUT;
    *satiation = satiation_scale(s, user, user_of(s, user)->last) *
                 user_satiation(s, user)[topic];
    return DS_OK;
}

int shop_item_appeal(const env *e, int item, double *appeal)
{
    if (!is_shop(e))
        return DS_EINPUT;
    const shop_state *s = as_shop_const(e);
    if (item < 0 || item >= s->capacity)
        return DS_EINPUT;
    *appeal = s->appeal[item];
    return DS_OK;
}

int shop_user_price_multiplier(const env *e, int user, double *m)
{
    if (!is_shop(e) || !user_ok(as_shop_const(e), user))
        return DS_EINPUT;
    *m = user_of(as_shop_const(e), user)->price_mult;
    return DS_OK;
}

/* env_type.xMemoryEstimate: the bytes shop_validate checks, and the spec. */
static double shop_memory_estimate(const void *config, env_spec *shape)
{
    const shop_config *c = config;
    *shape = (env_spec){.n_items = (int)shop_capacity(c), .n_users = c->users,
                        .slate = c->slate, .n_topics = c->topics, .max_steps = c->max_steps};
    return shop_memory_bytes(c);
}

const env_type shop_env = {
    .name = "shop",
    .version = 1,
    .summary = "shoppers with drifting tastes, satiation, MNL clicks, rare purchases and churn",
    .params = PARAM_TABLE(shop_config, shop_params),
    .xValidate = shop_validate,
    .xCreate = shop_create,
    .xNextVisit = shop_next_visit,
    .xStartSession = shop_start_session,
    .xCandidates = shop_candidates,
    .xStep = shop_step,
    .xNextEvent = shop_next_event,
    .xAdvance = shop_advance,
    .xPrivileged = shop_privileged,
    .xPrivilegedBounds = shop_privileged_bounds,
    .xLatents = shop_latents,
    .xDestroy = shop_destroy,
    .xMemoryEstimate = shop_memory_estimate,
};
