/* recsim_ie: RecSim's interest-evolution environment (google-research/recsim,
 * recsim/environments/interest_evolution.py), as its create_environment builds
 * it: IEvUserModel with the MultinomialProportionalChoiceModel, users from
 * UtilityModelUserSampler, documents from UtilityModelVideoSampler, reward
 * clicked_watchtime_reward. Written from the model, not from RecSim's code.
 * Where each constant comes from (file: class or function):
 *
 * Documents (UtilityModelVideoSampler.sample_document; stream `catalogue`). A
 * document has a cluster c uniform on {0..19} (NUM_FEATURES = 20 clusters),
 * features = the one-hot vector of c, video length `video_length` = 4 minutes,
 * and quality ~ N(mu_c, `quality_sd` = 0.1) (RecSim's `quality_variance` is
 * passed to normal() as the scale, so it is the sd). The cluster means are
 * numpy's linspace(min_utility, 0, 14) then linspace(0, max_utility, 6)
 * (14 = int(20 * 0.7) "trashy" and 6 = int(20 * 0.3) "nutritious" clusters),
 * with min_utility = -3, max_utility = 3: mu_i = -3 + i * (3/13) for i < 13,
 * mu_13 = mu_14 = 0, mu_{14+i} = i * (3/5) for 0 < i < 5, mu_19 = 3, computed
 * as numpy does (i * step + start, the last point set to stop).
 *
 * Users (UtilityModelUserSampler.sample_user; stream `users`). Interests
 * x ~ U(-1, 1)^20 (numpy's uniform: -1 + 2 U); time budget `time_budget` = 200
 * minutes; step penalty `step_penalty` = 0.5; `no_click_mass` = 1;
 * `min_normalizer` = -1; user_quality_factor = 0, document_quality_factor = 1;
 * user_update_alpha = `budget_extension` * (1 / `quality_range`) = 0.9 * (1 / 3.4).
 * (score_scaling and attention_prob are set there but only read by cascade
 * choice models, which create_environment does not use.)
 *
 * Choice (choice_model.MultinomialProportionalChoiceModel; stream `choices`, which
 * stands for RecSim's global numpy generator). The score of a document is
 * x . features = x_c; the slate's scores and the no-click mass are shifted by
 * min_normalizer, s_j = x_{c_j} - min_normalizer, s_0 = no_click_mass -
 * min_normalizer, and the user picks document j with probability
 * s_j / (s_0 + sum_i s_i), nothing with s_0 / (s_0 + sum_i s_i). Position
 * does not matter. (min_normalizer <= -1 keeps every s_j >= 0, which RecSim
 * asserts at each step; no_click_mass > min_normalizer keeps the total > 0.)
 *
 * Response (IEvUserModel._generate_click_response): a click watches
 * w = min(budget, video_length) minutes; the reward is w
 * (clicked_watchtime_reward), 0 without a click.
 *
 * Transition (IEvUserModel.update_state), in RecSim's order. After a click on a
 * document of cluster c and quality q:
 *   expected utility  e = x_c - min_normalizer (the document's score, before the update);
 *   step size         a_c = (-alpha_y_intercept / alpha_x_intercept) |x_c| + alpha_y_intercept
 *                         = 0.3 - 0.3 |x_c| (IEvUserModel's defaults 1.0 and 0.3);
 *   update            u = a_c (1 - x_c);
 *   with probability (x_c + 1) / 2 (a uniform draw from `choices` below it),
 *   x_c <- x_c + u, else x_c <- x_c - u; then x is clipped to [-1, 1];
 *   received utility  U = user_quality_factor e + document_quality_factor q;
 *   budget            b <- b - w;  b <- b + user_update_alpha w U.
 * Only x_c changes (the update is masked by the one-hot features). Without a
 * click: b <- b - step_penalty. The session ends after the step that leaves
 * b <= 0 (IEvUserModel.is_terminal), or after `max_steps` steps (RecSim's
 * runner_lib.Runner default max_steps_per_episode = 27000, never reached in
 * practice: the budget falls by at least min(b, 0.5) per step unless a
 * document has quality above 1 / user_update_alpha = 3.78, 7.8 sd above the
 * best cluster's mean).
 *
 * Episodes and ids. One RecSim episode (env.reset() to done) is one divsim
 * session of a fresh user: user u arrives at hour u, once (it never returns), so
 * sessions run one after another as RecSim's runner runs episodes, and `users`
 * bounds the number of episodes of a run. Steps take no simulated time (RecSim
 * has no clock; its minutes are a budget). Without resampling, the candidates
 * are `num_candidates` documents drawn once for the whole run (RecSim samples
 * them when the environment is built and keeps them), with ids 0 ..
 * num_candidates - 1. With resampling (the default), every session start and
 * every step after a non-final one draws `num_candidates` new documents (RecSim
 * resamples at reset and after each step). Their ids are cluster-blocked: the
 * j-th document of cluster c in the current set gets id c * num_candidates + j,
 * so ids range over 20 * num_candidates, an id's topic (cluster) never changes,
 * and agents that learn per id learn, in effect, per cluster, which is all
 * RecSim's agents observe of a document (its features). A resampled document's
 * quality is drawn only when it is clicked, the only time it is read: qualities
 * are independent given the cluster, so the distribution is RecSim's; the
 * clusters of a candidate set are read seven to a 32-bit draw (draw_clusters),
 * so a step costs little more than writing the candidates' ids.
 *
 * Public to agents: each item's topic (its cluster) and a price of video_length.
 * Each click is also reported as a purchase of revenue w, so [reward] kind =
 * revenue is RecSim's reward (watch time), purchases and clicks count clicks.
 * The oracle's view: utility ln s_j (so e^v is the proportional weight and the
 * MNL form is exact; -inf for s_j = 0), no-click utility ln s_0, and value of a
 * click w for revenue, else 1.
 *
 * RecSim seeds the user and document samplers with the same seed and draws
 * choices and interest flips from numpy's global generator; here they come from
 * the run's independent streams, so only the distributions, not the numbers,
 * match RecSim's.
 *
 * With -DDIVSIM_DEBUG_INVARIANTS each step checks: choice probabilities in [0, 1]
 * summing to 1, finite scores, interests in [-1, 1], and the budget finite and
 * not increasing unless user_update_alpha * U > 1. A broken one fails the step
 * with DS_EINTERNAL and the env's err naming it (recsim_ie_check_choice and
 * recsim_ie_check_transition, compiled in every build). */
#include "recsim_ie.h"

#include "../sim/common.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NC RECSIM_IE_CLUSTERS
#define TRASHY_CLUSTERS 14    /* int(20 * 0.7) */
#define NUTRITIOUS_CLUSTERS 6 /* int(20 * 0.3) */

#define CFG(f, def, lo, hi, help) P_REAL(recsim_ie_config, f, def, lo, hi, help)
#define ICFG(f, def, lo, hi, help) P_INT(recsim_ie_config, f, def, lo, hi, help)

static const param_spec recsim_ie_params[] = {
    ICFG(num_candidates, "10", 1, 100000, "documents offered at each step (RecSim num_candidates)"),
    ICFG(slate, "2", 1, 100000, "documents per slate (RecSim slate_size)"),
    P_BOOL(recsim_ie_config, resample_documents, "true",
           "draw new candidates at every step and session (RecSim resample_documents)"),
    ICFG(users, "100000", 1, 1e8, "users; each has one session, so at most this many episodes"),
    ICFG(max_steps, "27000", 1, 1e8, "hard cap on steps per session (RecSim runner default)"),
    CFG(time_budget, "200", 1e-9, 1e9, "a new user's time budget (minutes)"),
    CFG(step_penalty, "0.5", 0, 1e9, "budget lost by a step without a click (minutes)"),
    CFG(video_length, "4", 1e-9, 1e9, "length of every video (minutes)"),
    CFG(no_click_mass, "1", -1e6, 1e6, "score of not clicking, before the shift"),
    CFG(min_normalizer, "-1", -1e6, -1,
        "shift subtracted from every score (<= -1 keeps them non-negative)"),
    CFG(min_utility, "-3", -1e6, 0, "mean quality of cluster 0 (the trashiest)"),
    CFG(max_utility, "3", 0, 1e6, "mean quality of cluster 19 (the most nutritious)"),
    CFG(quality_sd, "0.1", 0, 1e6, "sd of a document's quality around its cluster mean"),
    CFG(budget_extension, "0.9", -1e6, 1e6,
        "RecSim's alpha: user_update_alpha = budget_extension / quality_range"),
    CFG(quality_range, "3.4", 1e-9, 1e6, "RecSim's 1 / utility_range: quality normaliser"),
    CFG(user_quality_factor, "0", -1e6, 1e6, "weight of the expected utility in U"),
    CFG(document_quality_factor, "1", -1e6, 1e6, "weight of the document quality in U"),
    CFG(alpha_x_intercept, "1", 1e-9, 1e6, "x intercept of the interest step size line"),
    CFG(alpha_y_intercept, "0.3", -1e6, 1e6, "y intercept of the interest step size line"),
};

typedef struct {
    env base;
    recsim_ie_config cfg;
    gsl_rng *catalogue, *users, *choices;
    reward_kind reward;
    int n_items;              /* num_candidates, or 20 num_candidates with resampling */
    double cluster_mean[NC];
    double user_update_alpha;
    /* catalogue */
    int *topic;               /* [n_items] cluster of each id */
    double *price;            /* [n_items] video_length */
    double *latent;           /* [n_items][NC] one-hot cluster */
    double *quality;          /* [n_items] without resampling; NULL with */
    int *candidates;          /* [num_candidates] the current candidate set */
    int count[NC];            /* with resampling: documents of each cluster in the set */
    unsigned *stamp;          /* [n_items] slate check: stamp[i] == step_stamp if in slate */
    unsigned short digits[8000]; /* three base-20 digits of each v < 20^3, 5 bits each */
    unsigned step_stamp;
    /* the session in progress */
    int user;                 /* -1 between sessions */
    double interest[NC];
    double budget;
    unsigned char *visited;   /* [users] */
    /* scratch */
    double *weight;           /* [slate] shifted scores of the slate */
    recsim_ie_step_info last;
    int stepped;
} recsim_ie;

/* ---------------------------------------------------------------- helpers */

static int recsim_ie_validate(const void *config, char *err)
{
    const recsim_ie_config *c = config;
    if (c->slate > c->num_candidates)
        return err_set(err, DS_EINPUT, "'slate' (%d) is larger than 'num_candidates' (%d)",
                       c->slate, c->num_candidates);
    if (!(c->no_click_mass > c->min_normalizer))
        return err_set(err, DS_EINPUT,
                       "'no_click_mass' (%g) must exceed 'min_normalizer' (%g): the no-click "
                       "score would not be positive", c->no_click_mass, c->min_normalizer);
    return DS_OK;
}

/* numpy.linspace(start, stop, num)[i]: i * step + start, the last point exactly stop. */
static double linspace_at(double start, double stop, int num, int i)
{
    if (i == num - 1)
        return stop;
    double step = (stop - start) / (num - 1);
    return i * step + start;
}

static void cluster_means(const recsim_ie_config *c, double *mean /* [NC] */)
{
    for (int i = 0; i < TRASHY_CLUSTERS; i++)
        mean[i] = linspace_at(c->min_utility, 0.0, TRASHY_CLUSTERS, i);
    for (int i = 0; i < NUTRITIOUS_CLUSTERS; i++)
        mean[TRASHY_CLUSTERS + i] = linspace_at(0.0, c->max_utility, NUTRITIOUS_CLUSTERS, i);
}

static double draw_quality(recsim_ie *r, int cluster)
{
    return r->cluster_mean[cluster] + r->cfg.quality_sd * gsl_ran_gaussian_ziggurat(r->catalogue, 1.0);
}

static int draw_cluster(recsim_ie *r)
{
    return (int)gsl_rng_uniform_int(r->catalogue, NC);
}

/* Cluster draws for a whole candidate set, seven per 32-bit output: an output v
 * uniform on [0, 2^32) that falls below 3 * 20^7 (probability 0.89) is uniform
 * there, so v mod 20^7 holds seven independent uniform base-20 digits, read
 * as one digit and two groups of three (20^3 = 8000) unpacked from a table.
 * Six times fewer generator calls than one gsl_rng_uniform_int per document,
 * with exactly the same distribution; this is what makes 1000 candidates per
 * step cheap. */
#define GROUP_RANGE 8000U                   /* 20^3 */
#define DIGITS_RANGE (20UL * 8000 * 8000)   /* 20^7 */
#define DIGITS_ACCEPT (3 * DIGITS_RANGE)

static void fill_digit_table(unsigned short *table /* [GROUP_RANGE] */)
{
    for (unsigned v = 0; v < GROUP_RANGE; v++)
        table[v] = (unsigned short)(v % NC | (v / NC % NC) << 5 | (v / (NC * NC)) << 10);
}

static int put_group(int *out, int j, int n, unsigned packed)
{
    for (int d = 0; d < 3 && j < n; d++, packed >>= 5)
        out[j++] = (int)(packed & 31);
    return j;
}

static void draw_clusters(const recsim_ie *r, int *out, int n)
{
    _Static_assert(NC == 20, "the digit extraction assumes 20 clusters");
    gsl_rng *rng = r->catalogue;
    int j = 0;
    if (gsl_rng_min(rng) != 0 || gsl_rng_max(rng) != 0xffffffffUL) {
        for (; j < n; j++) /* not a full 32-bit generator: one draw per document */
            out[j] = (int)gsl_rng_uniform_int(rng, NC);
        return;
    }
    while (j < n) {
        unsigned long v = gsl_rng_get(rng);
        if (v >= DIGITS_ACCEPT)
            continue;
        v %= DIGITS_RANGE;
        unsigned long low = v % (GROUP_RANGE * GROUP_RANGE);
        j = put_group(out, j, n, r->digits[low % GROUP_RANGE]);
        j = put_group(out, j, n, r->digits[low / GROUP_RANGE]);
        if (j < n)
            out[j++] = (int)(v / (GROUP_RANGE * GROUP_RANGE));
    }
}

/* New candidates: cluster-blocked ids, c * num_candidates + (j-th of cluster c).
 * The counts live in a local array so that the compiler knows the stores to
 * the candidates cannot change them. */
static void resample(recsim_ie *r)
{
    int n = r->cfg.num_candidates, *cand = r->candidates;
    int count[NC] = {0};
    draw_clusters(r, cand, n);
    for (int j = 0; j < n; j++) {
        int c = cand[j];
        cand[j] = c * n + count[c]++;
    }
    memcpy(r->count, count, sizeof count);
}

/* Whether item is among the current candidates. */
static int is_candidate(const recsim_ie *r, int item)
{
    if (item < 0 || item >= r->n_items)
        return 0;
    if (!r->cfg.resample_documents)
        return 1;
    int n = r->cfg.num_candidates;
    return item % n < r->count[item / n];
}

static const recsim_ie *as_recsim(const env *e)
{
    return e && e->type == &recsim_ie_env ? (const recsim_ie *)e : NULL;
}

/* ------------------------------------------------------------ invariants */

int recsim_ie_check_choice(const double *weight, int k, double s0, double total, char *err)
{
    double sum = s0 / total;
    if (!isfinite(total) || !(total > 0.0) || !(sum >= 0.0 && sum <= 1.0))
        return err_set(err, DS_EINTERNAL, "no-click probability %g of total %g", sum, total);
    for (int j = 0; j < k; j++) {
        double p = weight[j] / total;
        if (!isfinite(weight[j]) || !(p >= 0.0 && p <= 1.0))
            return err_set(err, DS_EINTERNAL, "click probability %g at position %d", p, j);
        sum += p;
    }
    if (fabs(sum - 1.0) > 1e-12)
        return err_set(err, DS_EINTERNAL, "choice probabilities sum to %.17g", sum);
    return DS_OK;
}

int recsim_ie_check_transition(const double *interest, double budget, double before,
                               double growth, char *err)
{
    for (int i = 0; i < NC; i++)
        if (!(interest[i] >= -1.0 && interest[i] <= 1.0))
            return err_set(err, DS_EINTERNAL, "interest %d is %g, outside [-1, 1]", i,
                           interest[i]);
    if (!isfinite(budget))
        return err_set(err, DS_EINTERNAL, "time budget is %g", budget);
    /* A click can extend the budget only if user_update_alpha * U > 1. */
    int may_grow = isfinite(growth) && growth > 1.0;
    if (!may_grow && budget > before + 4 * 2.220446049250313e-16 * fabs(before))
        return err_set(err, DS_EINTERNAL, "time budget grew from %.17g to %.17g", before,
                       budget);
    return DS_OK;
}

/* ------------------------------------------------------------- lifecycle */

static void recsim_ie_destroy(env *e)
{
    recsim_ie *r = (recsim_ie *)e;
    if (!r)
        return;
    free(r->topic);
    free(r->price);
    free(r->latent);
    free(r->quality);
    free(r->candidates);
    free(r->stamp);
    free(r->visited);
    free(r->weight);
    free(r);
}

static int recsim_ie_allocate(recsim_ie *r)
{
    size_t n = (size_t)r->n_items, c = (size_t)r->cfg.num_candidates;
    r->topic = malloc(n * sizeof *r->topic);
    r->price = malloc(n * sizeof *r->price);
    r->latent = calloc(n * NC, sizeof *r->latent);
    r->candidates = malloc(c * sizeof *r->candidates);
    r->stamp = calloc(n, sizeof *r->stamp);
    r->visited = calloc((size_t)r->cfg.users, sizeof *r->visited);
    r->weight = malloc((size_t)r->cfg.slate * sizeof *r->weight);
    if (!r->cfg.resample_documents)
        r->quality = malloc(n * sizeof *r->quality);
    if (!r->topic || !r->price || !r->latent || !r->candidates || !r->stamp || !r->visited ||
        !r->weight || (!r->cfg.resample_documents && !r->quality))
        return DS_ENOMEM;
    return DS_OK;
}

/* Without resampling, the one candidate set of the run (RecSim draws it when the
 * environment is built); with it, the fixed cluster of each id. */
static void build_catalogue(recsim_ie *r)
{
    int n = r->cfg.num_candidates;
    for (int i = 0; i < r->n_items; i++) {
        if (r->cfg.resample_documents) {
            r->topic[i] = i / n;
        } else {
            r->topic[i] = draw_cluster(r);
            r->quality[i] = draw_quality(r, r->topic[i]);
            r->candidates[i] = i;
        }
        r->price[i] = r->cfg.video_length;
        r->latent[(size_t)i * NC + r->topic[i]] = 1.0;
    }
}

static int recsim_ie_create(const void *config, const env_context *ctx, env **out, char *err)
{
    const recsim_ie_config *c = config;
    int rc = recsim_ie_validate(c, err);
    if (rc != DS_OK)
        return rc;
    if (!ctx->catalogue || !ctx->users || !ctx->choices)
        return err_set(err, DS_EINPUT, "recsim_ie needs the catalogue, users and choices streams");
    recsim_ie *r = calloc(1, sizeof *r);
    if (!r)
        return err_set(err, DS_ENOMEM, "out of memory for recsim_ie");
    r->base.type = &recsim_ie_env;
    r->cfg = *c;
    r->catalogue = ctx->catalogue;
    r->users = ctx->users;
    r->choices = ctx->choices;
    r->reward = ctx->reward;
    r->n_items = c->num_candidates * (c->resample_documents ? NC : 1);
    r->user = -1;
    r->user_update_alpha = c->budget_extension * (1.0 / c->quality_range);
    cluster_means(c, r->cluster_mean);
    fill_digit_table(r->digits);
    if (recsim_ie_allocate(r) != DS_OK) {
        recsim_ie_destroy(&r->base);
        return err_set(err, DS_ENOMEM, "out of memory for recsim_ie (%d item ids, %d users)",
                       c->num_candidates * NC, c->users);
    }
    build_catalogue(r);
    r->base.spec = (env_spec){.n_items = r->n_items, .n_users = c->users, .slate = c->slate,
                              .n_topics = NC, .max_steps = c->max_steps,
                              .item_topic = r->topic, .item_price = r->price};
    *out = &r->base;
    return DS_OK;
}

/* ------------------------------------------------------------- sessions */

/* User u arrives at hour u, once. */
static int recsim_ie_next_visit(env *e, int user, double now, double *next)
{
    recsim_ie *r = (recsim_ie *)e;
    if (user < 0 || user >= r->cfg.users)
        return DS_EINPUT;
    *next = r->visited[user] ? INFINITY : fmax(now, (double)user);
    return DS_OK;
}

/* A fresh user (RecSim's reset): interests U(-1, 1), the full budget. */
static int recsim_ie_start_session(env *e, int user, double t)
{
    recsim_ie *r = (recsim_ie *)e;
    (void)t;
    if (user < 0 || user >= r->cfg.users)
        return DS_EINPUT;
    r->visited[user] = 1;
    r->user = user;
    for (int i = 0; i < NC; i++)
        r->interest[i] = -1.0 + 2.0 * gsl_rng_uniform(r->users);
    r->budget = r->cfg.time_budget;
    if (r->cfg.resample_documents)
        resample(r);
    return DS_OK;
}

static int recsim_ie_candidates(env *e, int user, const int **items, int *n)
{
    recsim_ie *r = (recsim_ie *)e;
    if (user != r->user || user < 0)
        return DS_EINPUT;
    *items = r->candidates;
    *n = r->cfg.num_candidates;
    return DS_OK;
}

/* Every slate item a current candidate, none twice. */
static int check_slate(recsim_ie *r, const int *slate)
{
    if (++r->step_stamp == 0) {
        memset(r->stamp, 0, (size_t)r->n_items * sizeof *r->stamp);
        r->step_stamp = 1;
    }
    for (int j = 0; j < r->cfg.slate; j++) {
        int item = slate[j];
        if (!is_candidate(r, item) || r->stamp[item] == r->step_stamp)
            return DS_EINPUT;
        r->stamp[item] = r->step_stamp;
    }
    return DS_OK;
}

/* The proportional choice: a slate position, or -1 for no click. Fills
 * r->weight with the shifted scores. */
static int choose(recsim_ie *r, const int *slate, int *click)
{
    int k = r->cfg.slate;
    double s0 = r->cfg.no_click_mass - r->cfg.min_normalizer, total = s0;
    for (int j = 0; j < k; j++) {
        r->weight[j] = r->interest[r->topic[slate[j]]] - r->cfg.min_normalizer;
        total += r->weight[j];
    }
#ifdef DIVSIM_DEBUG_INVARIANTS
    if (recsim_ie_check_choice(r->weight, k, s0, total, r->base.err) != DS_OK)
        return DS_EINTERNAL;
#endif
    double u = gsl_rng_uniform(r->choices) * total;
    *click = -1;
    for (int j = 0; j < k; j++) {
        if (u < r->weight[j]) {
            *click = j;
            break;
        }
        u -= r->weight[j];
    }
    return DS_OK;
}

/* IEvUserModel.update_state after a click on a document of cluster c and quality
 * q, watched w minutes; returns the received utility U. */
static double update_after_click(recsim_ie *r, int c, double q, double w,
                                 recsim_ie_step_info *info)
{
    const recsim_ie_config *cfg = &r->cfg;
    double x = r->interest[c];
    double expected_utility = x - cfg->min_normalizer;
    double alpha = (-cfg->alpha_y_intercept / cfg->alpha_x_intercept) * fabs(x) +
                   cfg->alpha_y_intercept;
    double update = alpha * (1.0 - x);
    double positive_prob = (x + 1.0) / 2.0;
    int positive = gsl_rng_uniform(r->choices) < positive_prob;
    x = positive ? x + update : x - update;
    r->interest[c] = fmin(fmax(x, -1.0), 1.0);
    double received = cfg->user_quality_factor * expected_utility +
                      cfg->document_quality_factor * q;
    r->budget -= w;
    r->budget += r->user_update_alpha * w * received;
    info->expected_utility = expected_utility;
    info->interest_after = r->interest[c];
    info->positive_update = positive;
    return received;
}

static int recsim_ie_step(env *e, int user, const int *slate, double t, env_response *out)
{
    recsim_ie *r = (recsim_ie *)e;
    (void)t;
    if (user != r->user || user < 0 || check_slate(r, slate) != DS_OK)
        return DS_EINPUT;
    int click;
    int rc = choose(r, slate, &click);
    if (rc != DS_OK)
        return rc;
    recsim_ie_step_info info = {.click = click, .item = -1, .cluster = -1, .quality = NAN,
                                .expected_utility = NAN, .budget_before = r->budget,
                                .interest_before = NAN, .interest_after = NAN,
                                .positive_update = -1};
    *out = (env_response){.click = click, .item = -1};
    double received = NAN;
    if (click >= 0) {
        int item = slate[click], c = r->topic[item];
        double q = r->quality ? r->quality[item] : draw_quality(r, c);
        double w = fmin(r->budget, r->cfg.video_length);
        info.item = item;
        info.cluster = c;
        info.quality = q;
        info.watch_time = w;
        info.interest_before = r->interest[c];
        received = update_after_click(r, c, q, w, &info);
        out->item = item;
        out->purchased = 1;
        out->revenue = w;
    } else {
        r->budget -= r->cfg.step_penalty;
    }
#ifdef DIVSIM_DEBUG_INVARIANTS
    if (recsim_ie_check_transition(r->interest, r->budget, info.budget_before,
                                   r->user_update_alpha * received, r->base.err) != DS_OK)
        return DS_EINTERNAL;
#else
    (void)received;
#endif
    out->done = r->budget <= 0.0;
    info.budget_after = r->budget;
    info.done = out->done;
    r->last = info;
    r->stepped = 1;
    if (out->done)
        r->user = -1;
    else if (r->cfg.resample_documents)
        resample(r);
    return DS_OK;
}

/* ------------------------------------------------------------- privileged */

static int recsim_ie_privileged(env *e, int user, const int *items, int n, double *utility,
                                double *value_if_clicked, double *no_click_utility)
{
    recsim_ie *r = (recsim_ie *)e;
    if (user != r->user || user < 0)
        return DS_EINPUT;
    double log_weight[NC]; /* ln s of each cluster: 20 logs, not one per candidate */
    for (int c = 0; c < NC && utility; c++)
        log_weight[c] = log(r->interest[c] - r->cfg.min_normalizer);
    double value = r->reward == REWARD_REVENUE ? fmin(r->budget, r->cfg.video_length) : 1.0;
    for (int i = 0; i < n; i++) {
        if (items[i] < 0 || items[i] >= r->n_items)
            return DS_EINPUT;
        if (utility)
            utility[i] = log_weight[r->topic[items[i]]];
        if (value_if_clicked)
            value_if_clicked[i] = value;
    }
    if (no_click_utility)
        *no_click_utility = log(r->cfg.no_click_mass - r->cfg.min_normalizer);
    return DS_OK;
}

static const double *recsim_ie_latents(const env *e, int *dim)
{
    *dim = NC;
    return ((const recsim_ie *)e)->latent;
}

/* ------------------------------------------------------------- inspection */

int recsim_ie_user(const env *e, double *interest, double *budget)
{
    const recsim_ie *r = as_recsim(e);
    if (!r || r->user < 0)
        return DS_EINPUT;
    if (interest)
        memcpy(interest, r->interest, sizeof r->interest);
    if (budget)
        *budget = r->budget;
    return DS_OK;
}

int recsim_ie_set_user(env *e, const double *interest, double budget)
{
    recsim_ie *r = e && e->type == &recsim_ie_env ? (recsim_ie *)e : NULL;
    if (!r || r->user < 0 || !interest)
        return DS_EINPUT;
    memcpy(r->interest, interest, sizeof r->interest);
    r->budget = budget;
    return DS_OK;
}

int recsim_ie_last_step(const env *e, recsim_ie_step_info *out)
{
    const recsim_ie *r = as_recsim(e);
    if (!r || !r->stepped)
        return DS_EINPUT;
    *out = r->last;
    return DS_OK;
}

int recsim_ie_cluster_mean(const env *e, int cluster, double *mean)
{
    const recsim_ie *r = as_recsim(e);
    if (!r || cluster < 0 || cluster >= NC)
        return DS_EINPUT;
    *mean = r->cluster_mean[cluster];
    return DS_OK;
}

int recsim_ie_item(const env *e, int item, int *cluster, double *quality)
{
    const recsim_ie *r = as_recsim(e);
    if (!r || item < 0 || item >= r->n_items)
        return DS_EINPUT;
    if (cluster)
        *cluster = r->topic[item];
    if (quality)
        *quality = r->quality ? r->quality[item] : NAN;
    return DS_OK;
}

/* env_type.xMemoryEstimate: what recsim_ie_allocate takes, and the spec. */
static double recsim_ie_memory_estimate(const void *config, env_spec *shape)
{
    const recsim_ie_config *c = config;
    double n = (double)c->num_candidates * (c->resample_documents ? NC : 1);
    *shape = (env_spec){.n_items = (int)n, .n_users = c->users, .slate = c->slate,
                        .n_topics = NC, .max_steps = c->max_steps};
    double per_item = sizeof(int) + sizeof(double) + NC * sizeof(double) + sizeof(unsigned) +
                      (c->resample_documents ? 0 : sizeof(double));
    return sizeof(recsim_ie) + n * per_item + (double)c->num_candidates * sizeof(int) +
           (double)c->users + (double)c->slate * sizeof(double);
}

const env_type recsim_ie_env = {
    .name = "recsim_ie",
    .version = 1,
    .summary = "RecSim interest evolution: a fresh user per session, proportional choice, "
               "time budget; reward kind revenue = watch time",
    .params = PARAM_TABLE(recsim_ie_config, recsim_ie_params),
    .clicks_only = 0,
    .xValidate = recsim_ie_validate,
    .xCreate = recsim_ie_create,
    .xNextVisit = recsim_ie_next_visit,
    .xStartSession = recsim_ie_start_session,
    .xCandidates = recsim_ie_candidates,
    .xStep = recsim_ie_step,
    .xNextEvent = NULL,
    .xAdvance = NULL,
    .xPrivileged = recsim_ie_privileged,
    .xLatents = recsim_ie_latents,
    .xDestroy = recsim_ie_destroy,
    .xMemoryEstimate = recsim_ie_memory_estimate,
};
