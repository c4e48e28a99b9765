/* The oracle's screened path against its exact path. Given screening bounds
 * (privileged_view.bounds) the oracle asks exact values only for the items that
 * can matter; it must show the slates the oracle given no bounds shows, bit for
 * bit. Checked over real shop runs (every reward kind, catalogue churn, negative
 * and zero coefficients) and over adversarial instances from a made-up model
 * whose bounds the test chooses; and the shop's bounds themselves, item by item. */
#include "../agents/agent.h"
#include "../envs/shop.h"
#include "../sim/common.h"
#include "../sim/rng.h"
#include "../sim/sketch.h"
#include "../sim/vecmath.h"
#include "testutil.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

extern const agent_type oracle_agent;

/* ---- a view that counts the items asked for exact values ---- */

typedef struct {
    int (*utilities)(void *ctx, int user, const int *items, int n, double *utility,
                     double *value, double *no_click_utility);
    int (*bounds)(void *ctx, int user, const int *items, int n, bound_column out[N_BOUNDS]);
    void *ctx;
    long asked; /* items asked for values so far */
} counted_view;

static int counted_utilities(void *ctx, int user, const int *items, int n, double *utility,
                             double *value, double *no_click_utility)
{
    counted_view *c = ctx;
    c->asked += n;
    return c->utilities(c->ctx, user, items, n, utility, value, no_click_utility);
}

static int counted_bounds(void *ctx, int user, const int *items, int n,
                          bound_column out[N_BOUNDS])
{
    counted_view *c = ctx;
    return c->bounds(c->ctx, user, items, n, out);
}

/* An oracle on the view; given the bounds (screened) or not (exact). */
static agent *make_oracle(const env_spec *spec, counted_view *view, int screened,
                          reward_kind reward)
{
    agent_context ctx = {.reward = reward,
                         .privileged = {view, counted_utilities,
                                        screened ? counted_bounds : NULL}};
    agent *a;
    char err[ERR_LEN];
    REQUIRE(oracle_agent.xCreate(NULL, spec, &ctx, &a, err) == DS_OK, "%s", err);
    a->type = &oracle_agent;
    a->spec = spec;
    return a;
}

/* Both oracles' slates for obs must be the same; returns how many items the
 * screened one asked for. */
static long compare_slates(agent *fast, agent *exact, counted_view *fast_view,
                           const observation *obs, int *slate)
{
    int k = fast->spec->slate, want[64];
    long before = fast_view->asked;
    REQUIRE(oracle_agent.xAct(fast, obs, slate) == DS_OK, "screened: %s", fast->err);
    REQUIRE(oracle_agent.xAct(exact, obs, want) == DS_OK, "exact: %s", exact->err);
    for (int j = 0; j < k; j++)
        REQUIRE(slate[j] == want[j], "user %d: slot %d shows %d, the exact oracle %d",
                obs->user, j, slate[j], want[j]);
    return fast_view->asked - before;
}

/* ---- the shop ---- */

enum { N_STREAMS = 7 };

/* A shop and the random streams it draws from. */
typedef struct {
    gsl_rng *stream[N_STREAMS];
    env *e;
} shop_fixture;

static void shop_open(shop_fixture *f, const shop_config *c, reward_kind reward,
                      uint64_t seed)
{
    for (int i = 0; i < N_STREAMS; i++)
        REQUIRE((f->stream[i] = rng_stream_new(seed, (rng_stream)(RNG_CATALOGUE + i))),
                "no stream %d", i);
    gsl_rng **r = f->stream;
    env_context ctx = {.catalogue = r[0], .users = r[1], .arrivals = r[2], .drift = r[3],
                       .choices = r[4], .purchases = r[5], .item_churn = r[6],
                       .reward = reward};
    char err[ERR_LEN] = "";
    f->e = NULL;
    REQUIRE(shop_env.xCreate(c, &ctx, &f->e, err) == DS_OK, "xCreate: %s", err);
}

static void shop_close(shop_fixture *f)
{
    shop_env.xDestroy(f->e);
    for (int i = 0; i < N_STREAMS; i++)
        gsl_rng_free(f->stream[i]);
}

static shop_config base_config(void)
{
    shop_config c;
    char err[ERR_LEN];
    CALL_OK(param_defaults(&shop_env.params, &c, err));
    c.items = 600;
    c.users = 60;
    c.topics = 8;
    c.dim = 32;
    c.slate = 10;
    c.churn_patience = 0;
    return c;
}

static int shop_utilities(void *ctx, int user, const int *items, int n, double *utility,
                          double *value, double *no_click_utility)
{
    env *e = ctx;
    return shop_env.xPrivileged(e, user, items, n, utility, value, no_click_utility);
}

static int shop_bounds(void *ctx, int user, const int *items, int n, bound_column out[N_BOUNDS])
{
    env *e = ctx;
    return shop_env.xPrivilegedBounds(e, user, items, n, out);
}

/* Runs `steps` steps of the shop with the screened oracle's slates, checking
 * each against the exact oracle's; returns the share of steps on which the
 * screened oracle asked for at most a quarter of the candidates. */
static double run_shop(const shop_config *c, reward_kind reward, uint64_t seed, int steps)
{
    shop_fixture f;
    shop_open(&f, c, reward, seed);
    env *e = f.e;
    counted_view fast_view = {shop_utilities, shop_bounds, e, 0};
    counted_view exact_view = {shop_utilities, shop_bounds, e, 0};
    agent *fast = make_oracle(&e->spec, &fast_view, 1, reward);
    agent *exact = make_oracle(&e->spec, &exact_view, 0, reward);
    gsl_rng *visits = rng_stream_new(seed ^ 0x5eedULL, RNG_AGENT_SAMPLING);
    int slate[64], user = -1, screened = 0;
    double t = 0;
    for (int step = 0; step < steps; step++) {
        while (shop_env.xNextEvent(e) <= t)
            CALL_OK(shop_env.xAdvance(e, shop_env.xNextEvent(e)));
        if (user < 0) {
            user = (int)gsl_rng_uniform_int(visits, (unsigned long)c->users);
            CALL_OK(shop_env.xStartSession(e, user, t));
        }
        const int *items;
        int n;
        CALL_OK(shop_env.xCandidates(e, user, &items, &n));
        observation obs = {.user = user, .candidates = items, .n_candidates = n};
        screened += 4 * compare_slates(fast, exact, &fast_view, &obs, slate) <= n;
        env_response out;
        CALL_OK(shop_env.xStep(e, user, slate, t, &out));
        t += out.dwell;
        if (out.done) {
            user = -1;
            t += gsl_ran_exponential(visits, 2.0);
        }
    }
    gsl_rng_free(visits);
    oracle_agent.xDestroy(fast);
    oracle_agent.xDestroy(exact);
    shop_close(&f);
    return (double)screened / steps;
}

/* The defaults (d 32, 600 items), every reward kind: the same slates, and the
 * screen does its work (asks for at most a quarter of the candidates) on most
 * steps. 1,500 steps each, tens of sessions of tens of users. */
START_TEST(test_screened_matches_exact_on_shop)
{
    shop_config c = base_config();
    static const reward_kind rewards[] = {REWARD_PURCHASES, REWARD_REVENUE, REWARD_CLICKS};
    for (int j = 0; j < 3; j++) {
        double share = run_shop(&c, rewards[j], 11 + (uint64_t)j, 1500);
        REQUIRE(share > 0.9, "reward %d: screened on %.3f of the steps", (int)rewards[j], share);
    }
}
END_TEST

/* Catalogue churn (launches and retirements every few steps, ids recycled),
 * a negative purchase affinity, a negative satiation weight (satiated topics
 * gain utility), zero coefficients, and a small dimension with odd d: the
 * same slates whatever the screen manages. */
START_TEST(test_screened_matches_exact_on_varied_shops)
{
    shop_config churn = base_config();
    churn.launch_rate = 60;
    churn.item_lifetime = 8;
    shop_config negative = base_config();
    negative.purchase_affinity = -2;
    negative.satiation_weight = -0.3;
    negative.appeal_weight = -0.5;
    shop_config zero = base_config();
    zero.affinity = 0;
    zero.purchase_affinity = 0;
    zero.purchase_appeal = 0;
    shop_config odd = base_config();
    odd.dim = 5;
    odd.items = 250;
    odd.slate = 7;
    odd.satiation_gain = 4;
    const shop_config *configs[] = {&churn, &negative, &zero, &odd};
    static const reward_kind rewards[] = {REWARD_PURCHASES, REWARD_REVENUE, REWARD_CLICKS};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            run_shop(configs[i], rewards[j], 100 + (uint64_t)(3 * i + j), 500);
    REQUIRE(run_shop(&churn, REWARD_PURCHASES, 7, 1500) > 0.5, "churn: seldom screened");
}
END_TEST

/* Bound columns for n items, as a caller of privileged_view.bounds holds them. */
typedef struct {
    bound_column column[N_BOUNDS];
} bound_columns_fixture;

static void columns_open(bound_columns_fixture *f, int n)
{
    for (int c = 0; c < N_BOUNDS; c++) {
        f->column[c].hi = malloc(sizeof(float) * (size_t)n);
        f->column[c].group_max = malloc(sizeof(float) * 8 * (size_t)(n / VM_GROUP + 1));
        REQUIRE(f->column[c].hi && f->column[c].group_max, "out of memory");
    }
}

static void columns_close(bound_columns_fixture *f)
{
    for (int c = 0; c < N_BOUNDS; c++) {
        free(f->column[c].hi);
        free(f->column[c].group_max);
    }
}

/* The environment's summaries are those vm_group_max_singles gives. */
static void assert_summaries(const bound_columns_fixture *f, int n)
{
    float want[8 * 64];
    REQUIRE(n <= 64 * VM_GROUP, "%d items", n);
    for (int c = 0; c < N_BOUNDS; c++) {
        vm_group_max_singles(want, f->column[c].hi, n);
        size_t floats = 8 * (size_t)((n + VM_GROUP - 1) / VM_GROUP);
        REQUIRE(memcmp(want, f->column[c].group_max, sizeof(float) * floats) == 0,
                "bound %d: summaries differ", c);
    }
}

/* Every exact value within its bound, for every item and many users through
 * a run (satiation, drift, churn): v <= V, -v <= N, log r <= R and
 * v + log r <= L; and the bounds are tight enough to screen with (V - v below
 * 0.2 utility units: the int8 sketch's error, about g 0.01 |x| |q|, leaves
 * gaps up to 0.14 with these seeds, bfloat16's left 0.06). Users sated on at
 * most two topics and on more both occur (the shop finds the costs of the
 * first from the items' topics, looks up the others'). */
START_TEST(test_shop_bounds_hold)
{
    shop_config configs[3] = {base_config(), base_config(), base_config()};
    configs[1].launch_rate = 60;
    configs[1].item_lifetime = 8;
    configs[1].purchase_affinity = -3;
    configs[1].users = 6; /* sated on many topics */
    configs[2].dim = 7;
    configs[2].satiation_weight = -0.4;
    configs[2].satiation_gain = 3;
    int sated_few = 0, sated_many = 0; /* steps of users sated on <= 2 topics, on more */
    static const reward_kind rewards[] = {REWARD_PURCHASES, REWARD_REVENUE, REWARD_CLICKS};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            shop_fixture f;
            shop_open(&f, &configs[i], rewards[j], 40 + (uint64_t)(3 * i + j));
            env *e = f.e;
            gsl_rng *visits = rng_stream_new(3 * (uint64_t)i + (uint64_t)j, RNG_AGENT_SAMPLING);
            int cap = e->spec.n_items, slate[64];
            double *v = malloc(sizeof(double) * (size_t)cap * 2); /* [2][cap] */
            double *r = v + cap;
            bound_columns_fixture bounds;
            columns_open(&bounds, cap);
            const float *hi = bounds.column[BOUND_UTILITY].hi;
            const float *neg = bounds.column[BOUND_NEG_UTILITY].hi;
            const float *ratio = bounds.column[BOUND_LOG_RATIO].hi;
            const float *value = bounds.column[BOUND_LOG_VALUE].hi;
            counted_view view = {shop_utilities, shop_bounds, e, 0};
            agent *a = make_oracle(&e->spec, &view, 1, rewards[j]);
            double t = 0, worst_gap = 0;
            for (int step = 0; step < 300; step++) {
                while (shop_env.xNextEvent(e) <= t)
                    CALL_OK(shop_env.xAdvance(e, shop_env.xNextEvent(e)));
                int user = (int)gsl_rng_uniform_int(visits, (unsigned long)configs[i].users);
                CALL_OK(shop_env.xStartSession(e, user, t));
                const int *items;
                int n;
                CALL_OK(shop_env.xCandidates(e, user, &items, &n));
                CALL_OK(shop_env.xPrivileged(e, user, items, n, v, r, NULL));
                int sated = 0;
                for (int topic = 0; topic < configs[i].topics; topic++) {
                    double satiation;
                    CALL_OK(shop_user_satiation(e, user, topic, &satiation));
                    sated += satiation != 0;
                }
                sated_few += sated <= 2;
                sated_many += sated > 2;
                REQUIRE(shop_env.xPrivilegedBounds(e, user, items, n, bounds.column) == 1,
                        "no bounds");
                assert_summaries(&bounds, n);
                for (int q = 0; q < n; q++) {
                    double log_r = log(r[q]);
                    REQUIRE(v[q] <= hi[q] && -v[q] <= neg[q] && log_r <= ratio[q] &&
                                v[q] + log_r <= value[q],
                            "item %d: v %.17g in [%.17g, %.17g], log r %.17g <= %.17g, "
                            "v + log r <= %.17g",
                            items[q], v[q], -neg[q], hi[q], log_r, ratio[q], value[q]);
                    worst_gap = fmax(worst_gap, fmax(hi[q] - v[q], neg[q] + v[q]));
                }
                observation obs = {.user = user, .candidates = items, .n_candidates = n};
                CALL_OK(oracle_agent.xAct(a, &obs, slate));
                env_response out;
                CALL_OK(shop_env.xStep(e, user, slate, t, &out));
                t += out.dwell + 0.5;
            }
            REQUIRE(worst_gap < 0.2, "config %d: bounds up to %g above the utility", i,
                    worst_gap);
            oracle_agent.xDestroy(a);
            free(v);
            columns_close(&bounds);
            gsl_rng_free(visits);
            shop_close(&f);
        }
    REQUIRE(sated_few > 0 && sated_many > 0,
            "%d steps of users sated on at most two topics, %d on more", sated_few, sated_many);
}
END_TEST

/* ---- a made-up model with chosen bounds ---- */

enum { M = 300, K = 10 };

typedef struct {
    double v[M], r[M], v0;
    double slack[4][M]; /* how far above each exact value its bound sits (NaN: none) */
} model;

static int model_utilities(void *ctx, int user, const int *items, int n, double *utility,
                           double *value, double *no_click_utility)
{
    const model *t = ctx;
    (void)user;
    for (int j = 0; j < n; j++) {
        if (utility)
            utility[j] = t->v[items[j]];
        if (value)
            value[j] = t->r[items[j]];
    }
    if (no_click_utility)
        *no_click_utility = t->v0;
    return DS_OK;
}

/* x raised past the rounding of a log and a sum (-Inf stays). */
static double up(double x) { return isfinite(x) ? x + 0x1p-48 * (1 + fabs(x)) : x; }

/* The exact quantities plus the slacks: bounds as loose as the slack says,
 * rounded up to singles, with their summaries. */
static int model_bounds(void *ctx, int user, const int *items, int n, bound_column out[N_BOUNDS])
{
    const model *t = ctx;
    (void)user;
    for (int j = 0; j < n; j++) {
        int i = items[j];
        double log_r = log(t->r[i]), log_value = t->v[i] + log_r;
        out[BOUND_UTILITY].hi[j] = sketch_single_up(t->v[i] + t->slack[0][i]);
        out[BOUND_NEG_UTILITY].hi[j] = sketch_single_up(-t->v[i] + t->slack[1][i]);
        out[BOUND_LOG_RATIO].hi[j] = sketch_single_up(up(log_r) + t->slack[2][i]);
        out[BOUND_LOG_VALUE].hi[j] = sketch_single_up(up(log_value) + t->slack[3][i]);
    }
    for (int c = 0; c < N_BOUNDS; c++)
        vm_group_max_singles(out[c].group_max, out[c].hi, n);
    return 1;
}

typedef enum { NEAR_TIES, FEW_ABOVE, ZERO_VALUES, HUGE, NAN_VALUES, CLICKS, N_KINDS } kind;

/* One instance of the given kind. */
static void draw_model(model *t, kind what, const gsl_rng *r)
{
    double base = gsl_ran_gaussian(r, 1.0);
    for (int i = 0; i < M; i++) {
        t->v[i] = 3.0 * gsl_ran_gaussian(r, 1.0);
        t->r[i] = 0.01 * gsl_rng_uniform(r);
        for (int b = 0; b < 4; b++) /* tight, loose, or far too loose */
            t->slack[b][i] = gsl_rng_uniform(r) < 0.3 ? 0
                             : gsl_rng_uniform(r) < 0.97 ? gsl_ran_exponential(r, 0.05)
                                                        : gsl_ran_exponential(r, 5.0);
        switch (what) {
        case NEAR_TIES: /* the best items alike to the last bit, or a bit apart */
            if (i % 3 == 0) {
                t->v[i] = base + 2.0;
                t->r[i] = i % 2 ? 0.2 : nextafter(0.2, 1.0);
            }
            if (i % 7 == 0 && i > 0) {
                t->v[i] = t->v[i - 1];
                t->r[i] = t->r[i - 1];
            }
            break;
        case FEW_ABOVE: /* three items worth much, the slate's rest costs */
            if (i < 3)
                t->r[i] = 0.5 + 0.1 * i;
            t->v[i] = i < 3 ? 4.0 : 3.0 * gsl_ran_gaussian(r, 1.0) - 4.0;
            break;
        case ZERO_VALUES: /* fewer than k items worth anything */
            t->r[i] = i % 60 == 0 ? 0.3 : 0.0;
            break;
        case HUGE: /* weights at the ends of the range */
            t->v[i] = gsl_rng_uniform(r) < 0.5 ? 700.0 * gsl_rng_uniform(r)
                                                : -700.0 * gsl_rng_uniform(r);
            break;
        case NAN_VALUES: /* a value that is not a number (its bounds then NaN) */
            if (i % 97 == 5) {
                t->r[i] = NAN;
                for (int b = 0; b < 4; b++)
                    t->slack[b][i] = NAN;
            }
            break;
        case CLICKS:
            t->r[i] = 1.0;
            break;
        default:
            break;
        }
    }
    t->v0 = what == HUGE ? -700.0 : gsl_ran_gaussian(r, 2.0);
}

static const env_spec model_spec = {.n_items = M, .n_users = 1, .slate = K, .n_topics = 1,
                                    .max_steps = 1};

/* Near-ties the bounds cannot separate, duplicate items, slates filled with
 * items worth less than lambda, fewer than k items worth anything (the screen
 * declines), weights at the ends of the range, NaN values (declines), clicks:
 * 300 instances each, bounds tight, loose or far too loose, the same slates;
 * and the screen asks for at most half the items on most instances of a few
 * valuable items among many that cost (observed: 297 of 300). */
START_TEST(test_screened_matches_exact_adversarial)
{
    static model t;
    static int ids[M];
    for (int i = 0; i < M; i++)
        ids[i] = i;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 5);
    counted_view fast_view = {model_utilities, model_bounds, &t, 0};
    counted_view exact_view = {model_utilities, model_bounds, &t, 0};
    agent *fast = make_oracle(&model_spec, &fast_view, 1, REWARD_PURCHASES);
    agent *exact = make_oracle(&model_spec, &exact_view, 0, REWARD_PURCHASES);
    int slate[K], screened[N_KINDS] = {0};
    for (int what = 0; what < N_KINDS; what++)
        for (int trial = 0; trial < 300; trial++) {
            draw_model(&t, (kind)what, r);
            observation obs = {.user = 0, .candidates = ids, .n_candidates = M};
            screened[what] += 2 * compare_slates(fast, exact, &fast_view, &obs, slate) <= M;
        }
    REQUIRE(screened[FEW_ABOVE] > 250, "screened %d of 300", screened[FEW_ABOVE]);
    oracle_agent.xDestroy(fast);
    oracle_agent.xDestroy(exact);
    gsl_rng_free(r);
}
END_TEST

static Suite *oracle_suite(void)
{
    Suite *s = suite_create("oracle");
    TCase *tc = tcase_create("screening");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_shop_bounds_hold);
    tcase_add_test(tc, test_screened_matches_exact_on_shop);
    tcase_add_test(tc, test_screened_matches_exact_on_varied_shops);
    tcase_add_test(tc, test_screened_matches_exact_adversarial);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(oracle_suite)
