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
 * Cost, where the environment offers screening bounds (privileged_view.bounds:
 * v_i <= V_i, -v_i <= N_i, log r_i <= R_i, v_i + log r_i <= L_i, cheap): the bounds of
 * all candidates, then exact values and Dinkelbach rounds for a screened set
 * alone, the candidates that can matter (screen). Otherwise one pass of the
 * environment's utilities and values over all candidates, one vectorised
 * exponential each, two rounds over all of them (a multiply and a comparison
 * each: rank_top_k rejects most items with one comparison), and the later
 * rounds over a shortlist (best_assortment). Both give the same slate, bit for
 * bit. */
#include "agent.h"

#include "../sim/common.h"
#include "../sim/vecmath.h"
#include "rank.h"

#include <math.h>
#include <stdlib.h>

/* The first screened set: SCREEN_PER_SLOT slates of the best L_i and as many
 * of the best N_i; it grows at most MAX_WIDENINGS times before the oracle
 * gives up screening for the step. */
enum {
    MAX_ROUNDS = 100,
    SHORTLIST_PER_SLOT = 2,
    SCREEN_PER_SLOT = 4,
    SAMPLE_STRIDE = 16, /* the first set's threshold is taken from every 16th bound */
    MAX_WIDENINGS = 8
};

typedef struct {
    int unused; /* the oracle has no hyperparameters */
} oracle_config;

/* What screen needs of best_assortment's rounds: over the rounds whose k-th
 * best score theta is positive the least theta and the least
 * theta / (value_cap - lambda), over the others the least lambda and the
 * largest -theta / lambda. */
typedef struct {
    double value_cap;   /* set before the rounds: at least every r_i outside the set */
    double least_positive, least_per_room, least_lambda, worst_ratio;
    int unusable; /* a round that leaves no test */
} round_record;

typedef struct {
    agent base;
    privileged_view truth;
    reward_kind reward;
    /* per candidate position */
    double *weight;     /* [n_items] v_i, then w_i = e^{v_i - v_max} */
    double *value;      /* [n_items] r_i */
    double *score;      /* [n_items] scratch */
    int *heap;          /* [max(shortlist, first screen)] scratch for rank_top_k */
    int *best;          /* [slate] positions of the slate */
    round_record rounds; /* of the last best_assortment */
    /* screening (screened_act): per candidate position, the bounds V_i >= v_i,
     * N_i >= -v_i, R_i >= log r_i, L_i >= v_i + log r_i, with their summaries */
    bound_column bound[N_BOUNDS]; /* [n_items] each */
    int *found;         /* [n_items] scratch: the positions a scan finds */
    unsigned char *in_set; /* [n_items] 1 for the positions in the screened set */
    int *pick;          /* [SCREEN_PER_SLOT slates] scratch: the first set's picks */
    /* the screened set C, in the order it was formed */
    int *set_pos;       /* [n_items] candidate positions */
    int *set_ids;       /* [n_items] their items */
    double *set_utility; /* [n_items] their exact v_i */
    /* a round's best positions, and their weights, values, ids, scores */
    int shortlist;      /* its capacity: SHORTLIST_PER_SLOT slates */
    int *short_pos;     /* [shortlist] */
    double *short_w;    /* [shortlist] */
    double *short_r;    /* [shortlist] */
    int *short_ids;     /* [shortlist] */
    double *short_score; /* [shortlist] */
    int *short_best;    /* [slate] the top k of the shortlist, as shortlist indices */
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
    free(o->short_pos);
    free(o->short_w);
    free(o->short_r);
    free(o->short_ids);
    free(o->short_score);
    free(o->short_best);
    for (int c = 0; c < N_BOUNDS; c++) {
        free(o->bound[c].hi);
        free(o->bound[c].group_max);
    }
    free(o->found);
    free(o->pick);
    free(o->in_set);
    free(o->set_pos);
    free(o->set_ids);
    free(o->set_utility);
    free(o);
}

_Static_assert(VM_GROUP == 64, "bound_column's summaries (sim/slate.h) are groups of 64");

/* The singles of a bound column's summary, for n candidates. */
static size_t group_floats(size_t n) { return 8 * ((n + VM_GROUP - 1) / VM_GROUP); }

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
    size_t k = (size_t)spec->slate, m = (size_t)SHORTLIST_PER_SLOT * k;
    o->shortlist = (int)m;
    o->heap = calloc(SCREEN_PER_SLOT * k > m ? SCREEN_PER_SLOT * k : m, sizeof *o->heap);
    o->best = calloc(k, sizeof *o->best);
    o->short_pos = calloc(m, sizeof *o->short_pos);
    o->short_w = calloc(m, sizeof *o->short_w);
    o->short_r = calloc(m, sizeof *o->short_r);
    o->short_ids = calloc(m, sizeof *o->short_ids);
    o->short_score = calloc(m, sizeof *o->short_score);
    o->short_best = calloc(k, sizeof *o->short_best);
    int screening_ok = 1;
    for (int c = 0; c < N_BOUNDS; c++) {
        o->bound[c].hi = calloc(n, sizeof(float));
        o->bound[c].group_max = calloc(group_floats(n), sizeof(float));
        screening_ok = screening_ok && o->bound[c].hi && o->bound[c].group_max;
    }
    o->found = calloc(n, sizeof *o->found);
    o->in_set = calloc(n, sizeof *o->in_set);
    o->set_pos = calloc(n, sizeof *o->set_pos);
    o->set_ids = calloc(n, sizeof *o->set_ids);
    o->set_utility = calloc(n, sizeof *o->set_utility);
    o->pick = calloc(SCREEN_PER_SLOT * k, sizeof *o->pick);
    screening_ok = screening_ok && o->found && o->in_set && o->set_pos && o->set_ids &&
                   o->set_utility && o->pick;
    if (!o->weight || !o->value || !o->score || !o->heap || !o->best || !o->short_pos ||
        !o->short_w || !o->short_r || !o->short_ids || !o->short_score || !o->short_best ||
        !screening_ok) {
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

/* Records a round's lambda and k-th best score (screen reads them). */
static void note_round(oracle *o, double lambda, double kth)
{
    round_record *r = &o->rounds;
    if (kth > 0) {
        double room = r->value_cap - lambda, per_room = room > 0 ? kth / room : INFINITY;
        if (kth < r->least_positive)
            r->least_positive = kth;
        if (per_room < r->least_per_room)
            r->least_per_room = per_room;
    } else if (kth <= 0 && lambda > 0) {
        if (lambda < r->least_lambda)
            r->least_lambda = lambda;
        double ratio = -kth / lambda;
        if (ratio > r->worst_ratio)
            r->worst_ratio = ratio;
    } else {
        r->unusable = 1; /* a NaN, or a round at lambda 0 without k positive scores */
    }
}

/* One Dinkelbach round over all n candidates: o->best = the top k by
 * w_i (r_i - lambda). */
static void full_round(oracle *o, int n, int k, const int *candidates, double lambda)
{
    vm_scaled_excess(o->score, o->weight, o->value, lambda, n);
    rank_top_k(candidates, o->score, n, k, o->heap, o->best);
    note_round(o, lambda, o->score[o->best[k - 1]]);
}

/* The round at lambda over all n that also keeps the top m (m >= k) as the
 * shortlist, whose first k are the round's slate (one total order: score, then
 * id), their m-th score as *omega (-Inf when m = n). Returns 0 (no shortlist;
 * o->best filled as full_round would) when a score is NaN or +Inf, which
 * leaves no total order to rely on. */
static int shortlist_round(oracle *o, int n, int m, int k, const int *candidates,
                           double lambda, double *omega)
{
    vm_scaled_excess(o->score, o->weight, o->value, lambda, n);
    if (vm_first_not_below(o->score, 0, n, INFINITY) < n) {
        rank_top_k(candidates, o->score, n, k, o->heap, o->best);
        note_round(o, lambda, o->score[o->best[k - 1]]);
        return 0;
    }
    rank_top_k(candidates, o->score, n, m, o->heap, o->short_pos);
    for (int j = 0; j < m; j++) {
        int p = o->short_pos[j];
        o->short_w[j] = o->weight[p];
        o->short_r[j] = o->value[p];
        o->short_ids[j] = candidates[p];
    }
    for (int j = 0; j < k; j++)
        o->best[j] = o->short_pos[j];
    note_round(o, lambda, o->score[o->best[k - 1]]);
    *omega = m < n ? o->score[o->short_pos[m - 1]] : -INFINITY;
    return 1;
}

/* A later round over the shortlist alone, when it is sure to give the same
 * slate as over all n: returns 0 (o->best not written) otherwise. The shortlist
 * was taken at a smaller lambda; with w_i >= 0 an item's score can only fall as
 * lambda grows (r_i - lambda rounds to no more than before, and rounding and the
 * product are monotone), so every item off the list scores at most omega; if
 * the list's k-th best scores above omega, its top k is the top k of all, in
 * the same order (the same scores, ties to the lower id). */
static int round_on_shortlist(oracle *o, int m, int k, double omega, double lambda)
{
    vm_scaled_excess(o->short_score, o->short_w, o->short_r, lambda, m);
    rank_top_k(o->short_ids, o->short_score, m, k, o->heap, o->short_best);
    if (!(o->short_score[o->short_best[k - 1]] > omega))
        return 0;
    note_round(o, lambda, o->short_score[o->short_best[k - 1]]);
    for (int j = 0; j < k; j++)
        o->best[j] = o->short_pos[o->short_best[j]];
    return 1;
}

/* Fills o->best with the positions of the optimal k-slate. The first round
 * (lambda = 0) runs over all n; the second, over all n too, keeps a shortlist
 * of the top m; the later ones (lambda rises strictly) run over the shortlist
 * where round_on_shortlist vouches for it, over all n where not. Every round
 * gives the slate the n-item round gives, so the lambdas and the final slate
 * are those of plain Dinkelbach rounds over all n. o->rounds records them. */
static void best_assortment(oracle *o, int n, int k, const int *candidates, double w0)
{
    int m = o->shortlist < n ? o->shortlist : n;
    o->rounds = (round_record){.value_cap = o->rounds.value_cap, .least_positive = INFINITY,
                               .least_per_room = INFINITY, .least_lambda = INFINITY};
    int state = 0; /* 0: no shortlist yet, 1: a shortlist, -1: none to be had */
    double lambda = 0.0, omega = -INFINITY;
    full_round(o, n, k, candidates, lambda);
    for (int round = 1; round < MAX_ROUNDS; round++) {
        double next = slate_value(o, w0, k);
        if (!(next > lambda))
            break;
        lambda = next;
        if (state == 0)
            state = shortlist_round(o, n, m, k, candidates, lambda, &omega) ? 1 : -1;
        else if (state < 0 || !round_on_shortlist(o, m, k, omega, lambda))
            full_round(o, n, k, candidates, lambda);
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

/* The slate from the values of all n candidates. */
static int exact_act(oracle *o, const observation *obs, int k, int *slate)
{
    int n = obs->n_candidates;
    double v0;
    int rc = o->truth.utilities(o->truth.ctx, obs->user, obs->candidates, n, o->weight,
                                o->value, &v0);
    if (rc != DS_OK)
        return err_set(o->base.err, rc, "the environment gave no true utilities");
    /* Shift by the largest utility so no weight overflows; R(S) is unchanged. */
    double top = vm_max(o->weight, n, v0);
    vm_exp_shifted(o->weight, o->weight, top, n);
    best_assortment(o, n, k, obs->candidates, vm_exp(v0 - top));
    order_by_value(o, obs->candidates, k, slate);
    return DS_OK;
}

/* ---- screening ----
 * exact_act's slate depends on the candidates through three things: the shift
 * top = max(v0, max v_i), the top k of every Dinkelbach round (the lambdas
 * follow from those), and the values of the slate's items. screen runs the
 * rounds on a set C of candidates with exact values (the same doubles as in a
 * call for all: an item's values do not depend on the others asked) and checks
 * with the bounds that no candidate outside C could change any of them:
 *  - the shift: every outside V_i <= top_C, the shift over C and v0;
 *  - a round at lambda whose k-th best score on C is theta > 0: an item scores
 *    w_i (r_i - lambda) <= w_i r_i (lambda >= 0, r_i >= 0, every IEEE operation
 *    monotone), with w_i = vm_exp(v_i - top), and the double w_i r_i is at most
 *    e^{L_i - top} (1 + 2^-40) + 2^-1000 (the exponential within a few ulps,
 *    the subtraction's rounding at most 2^-43 in the exponent where the weight
 *    is not 0, the product one rounding; the absolute term for subnormal
 *    weights); so L_i < top + log theta - 2^-30 (1 + |top| + |log theta|), for
 *    theta >= 2^-900, puts it below theta; so does, with c at least every r_i
 *    (e^{max R} raised past the exponential's error) and w_i (r_i - lambda) <=
 *    w_i (c - lambda), V_i < top + log(theta / (c - lambda)) with the same
 *    margin (where r_i is close to lambda for every item, as for clicks, that
 *    is the sharper test);
 *  - a round at lambda > 0 whose k-th best score on C is theta <= 0 (fewer than
 *    k items worth more than lambda: the rest of the slate are the items that
 *    cost least, the least attractive): an item with r_i <= lambda / 2 and
 *    w_i > 2 |theta| / lambda scores w_i (r_i - lambda) <= -w_i lambda / 2 <
 *    theta, so R_i < log(lambda / 2) and N_i < -top - log(2 |theta| / lambda),
 *    with the same margins, put it below theta (|theta| / lambda at least 2^-900
 *    and lambda at least 2^-100, so that the score is a normal number). An item
 *    that fails that test is checked once more, by itself: with rho >= r_i
 *    (e^{R_i} raised past the exponential's error) below the least such lambda
 *    lambda_0, and omega <= w_i (e^{-N_i - top} lowered past it: v_i >= -N_i,
 *    the subtraction and vm_exp monotone within a few ulps), if
 *    omega (lambda_0 - rho) > q lambda_0 (1 + 2^-29) with q the largest
 *    |theta| / lambda, then omega > q and w_i (lambda - r_i) - q lambda grows
 *    with lambda, so w_i (lambda - r_i) exceeds |theta| (1 + 2^-30) in every
 *    such round, and the computed score (two roundings of 2^-53) stays below
 *    theta; omega (lambda_0 - rho) >= 2^-900 keeps it a normal number.
 * Then in every round each outside item scores strictly below the k-th best of
 * C, and the rounds on C choose what the rounds on all n choose, in the same
 * order. Positions that fail a test join C and the rounds run again. */

enum { SCREEN_DECLINED = 1 }; /* screen cannot vouch: exact_act decides */

/* Adds position j to the screened set unless it is there; returns 1 if added. */
static int add_to_set(oracle *o, int j, int *m)
{
    if (o->in_set[j])
        return 0;
    o->in_set[j] = 1;
    o->set_pos[(*m)++] = j;
    return 1;
}

/* Adds the positions j < n with bound[j] >= t and also[j] >= t_also (or NaN;
 * also may be NULL); returns how many. The scan runs in singles at t rounded
 * down, which finds them all, and each is tested in double. */
static int widen_both(oracle *o, const bound_column *bound, double t, const bound_column *also,
                      double t_also, int n, int *m)
{
    int found = vm_positions_not_below(o->found, bound->hi, bound->group_max, n,
                                       sketch_single_down(t));
    int added = 0;
    for (int q = 0; q < found; q++) {
        int j = o->found[q];
        if (!(bound->hi[j] < t) && (!also || !(also->hi[j] < t_also)))
            added += add_to_set(o, j, m);
    }
    return added;
}

static int widen_above(oracle *o, const bound_column *bound, int n, double t, int *m)
{
    return widen_both(o, bound, t, NULL, 0, n, m);
}

/* Exact values of the set's positions from done to m (their items first);
 * SCREEN_DECLINED where a value is not finite or negative. */
static int set_values(oracle *o, const observation *obs, int done, int m, double *v0)
{
    for (int j = done; j < m; j++)
        o->set_ids[j] = obs->candidates[o->set_pos[j]];
    int rc = o->truth.utilities(o->truth.ctx, obs->user, o->set_ids + done, m - done,
                                o->set_utility + done, o->value + done, v0);
    if (rc != DS_OK)
        return err_set(o->base.err, rc, "the environment gave no true utilities");
    for (int j = done; j < m; j++)
        if (!isfinite(o->set_utility[j]) || !(o->value[j] >= 0 && o->value[j] < INFINITY))
            return SCREEN_DECLINED;
    return isfinite(*v0) ? DS_OK : SCREEN_DECLINED;
}

static double margin(double a, double b) { return 0x1p-30 * (1.0 + fabs(a) + fabs(b)); }

/* The thresholds of the scans made so far for a step (NaN: none yet). A scan
 * at thresholds no lower than the last one's adds nothing: every position it
 * would add, that one added. (The shift only rises as the set grows, so the
 * scan of V_i runs once or twice a step.) The scans for the rounds whose k-th
 * best is not positive keep no mark: they leave out items that pass the
 * second test, which the next rounds may not pass. */
typedef struct {
    double top, value, room;
} scan_marks;

/* 1 if a scan at t is needed after one at *last (which then becomes t). */
static int scan_needed(double *last, double t)
{
    if (t >= *last)
        return 0;
    *last = t;
    return 1;
}

/* The second test of the rounds whose k-th best is not positive (see above):
 * 1 if position j scores below the k-th best in every one of them. */
static int below_every_costly_round(const oracle *o, int j, double top)
{
    const round_record *r = &o->rounds;
    double lambda = r->least_lambda, q = fmax(r->worst_ratio, 0x1p-900);
    double rho = exp(o->bound[BOUND_LOG_RATIO].hi[j]) * (1 + 0x1p-40);
    double omega = exp(-(double)o->bound[BOUND_NEG_UTILITY].hi[j] - top) * (1 - 0x1p-40);
    double least_cost = omega * (lambda - rho);
    return rho < lambda && least_cost >= 0x1p-900 && least_cost < INFINITY &&
           least_cost > q * lambda * (1 + 0x1p-29);
}

/* Adds the positions j < n with bound[j] >= t (or NaN) that fail
 * below_every_costly_round; returns how many. */
static int widen_costly(oracle *o, const bound_column *bound, double t, int n, double top,
                        int *m)
{
    int found = vm_positions_not_below(o->found, bound->hi, bound->group_max, n,
                                       sketch_single_down(t));
    int added = 0;
    for (int q = 0; q < found; q++) {
        int j = o->found[q];
        if (!(bound->hi[j] < t) && !o->in_set[j] && !below_every_costly_round(o, j, top))
            added += add_to_set(o, j, m);
    }
    return added;
}

/* Adds the positions that may score at or above a round's k-th best on C (see
 * above): how many, or -1 when the rounds leave no test. */
static int widen_by_rounds(oracle *o, int n, double top, scan_marks *seen, int *m)
{
    const round_record *r = &o->rounds;
    if (r->unusable)
        return -1;
    int added = 0;
    if (r->least_positive < INFINITY) {
        if (!(r->least_positive >= 0x1p-900))
            return -1;
        double log_theta = log(r->least_positive);
        /* no room (c <= lambda): no outside item scores above 0 */
        double per_room = r->least_per_room, log_room = log(per_room);
        double t_room = per_room == INFINITY ? INFINITY
                        : per_room >= 0x1p-900 ? (top + log_room) - margin(top, log_room)
                                               : -INFINITY;
        double t_value = (top + log_theta) - margin(top, log_theta);
        if (!(t_value >= seen->value && t_room >= seen->room)) {
            seen->value = t_value;
            seen->room = t_room;
            added += widen_both(o, &o->bound[BOUND_LOG_VALUE], t_value, &o->bound[BOUND_UTILITY],
                                t_room, n, m);
        }
    }
    if (r->least_lambda < INFINITY) {
        if (!(r->least_lambda >= 0x1p-100))
            return -1;
        double log_half = log(0.5 * r->least_lambda);
        double log_ratio = log(2.0 * (r->worst_ratio > 0x1p-900 ? r->worst_ratio : 0x1p-900));
        double t_ratio = log_half - margin(log_half, 0);
        double t_neg = -(top + log_ratio) - margin(top, log_ratio);
        added += widen_costly(o, &o->bound[BOUND_LOG_RATIO], t_ratio, n, top, m);
        added += widen_costly(o, &o->bound[BOUND_NEG_UTILITY], t_neg, n, top, m);
    }
    return added;
}

/* At least every r_i <= e^{R_i}: e^{max R_i} raised past the exponential's
 * error, or +Inf where an R_i is NaN or +Inf (its summary then holds +Inf). */
static double value_cap(const bound_column *log_ratio_hi, int n)
{
    const float *summary = log_ratio_hi->group_max;
    float lane[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY,
                     -INFINITY, -INFINITY, -INFINITY, -INFINITY}; /* one vector's worth */
    for (size_t g = 0; g < group_floats((size_t)n); g += 8)
        for (int l = 0; l < 8; l++)
            lane[l] = summary[g + l] > lane[l] ? summary[g + l] : lane[l];
    float top = -INFINITY;
    for (int l = 0; l < 8; l++)
        top = lane[l] > top ? lane[l] : top;
    return top == INFINITY ? INFINITY : exp(top) * (1 + 0x1p-40);
}

/* Adds about the first best positions of bound [n], and at least k of them:
 * those at or above the (first / SAMPLE_STRIDE)-th best of every
 * SAMPLE_STRIDE-th bound (one vectorised scan), or where that leaves fewer
 * than k, the exact first best (rank_top_k). */
static void add_best(oracle *o, const observation *obs, const bound_column *column, int first,
                     int k, int *m)
{
    const float *bound = column->hi;
    int n = obs->n_candidates, q = first / SAMPLE_STRIDE;
    double best[SCREEN_PER_SLOT + 1]; /* the q largest samples, decreasing */
    int len = 0;
    for (int j = 0; q > 0 && q <= SCREEN_PER_SLOT && j < n; j += SAMPLE_STRIDE) {
        double x = bound[j];
        if (!(len < q || x > best[len - 1]))
            continue;
        int at = len < q ? len++ : len - 1;
        for (; at > 0 && best[at - 1] < x; at--)
            best[at] = best[at - 1];
        best[at] = x;
    }
    if (len == q && q > 0 && best[q - 1] > -INFINITY &&
        widen_above(o, column, n, best[q - 1], m) >= k)
        return;
    for (int j = 0; j < n; j++) /* rank_top_k takes doubles */
        o->score[j] = bound[j];
    rank_top_k(obs->candidates, o->score, n, first, o->heap, o->pick);
    for (int j = 0; j < first; j++)
        add_to_set(o, o->pick[j], m);
}

/* Forms the screened set and checks it: DS_OK with the slate written,
 * SCREEN_DECLINED, or an error code. The first set: the best L_i and the best
 * N_i (the least attractive items, the likely fillers of a slate whose last
 * places cost). in_set is all zero on entry; *set_size gets the set's size. */
static int screen(oracle *o, const observation *obs, int k, int *slate, int *set_size)
{
    int n = obs->n_candidates, done = 0, m = 0, rc = SCREEN_DECLINED;
    int first = SCREEN_PER_SLOT * k < n ? SCREEN_PER_SLOT * k : n;
    add_best(o, obs, &o->bound[BOUND_LOG_VALUE], first, k, &m);
    add_best(o, obs, &o->bound[BOUND_NEG_UTILITY], first, k, &m);
    o->rounds.value_cap = value_cap(&o->bound[BOUND_LOG_RATIO], n);
    scan_marks seen = {NAN, NAN, NAN};
    for (int widening = 0; widening <= MAX_WIDENINGS && rc == SCREEN_DECLINED; widening++) {
        double v0;
        rc = set_values(o, obs, done, m, &v0);
        if (rc != DS_OK)
            break;
        rc = SCREEN_DECLINED;
        done = m;
        double top = vm_max(o->set_utility, m, v0);
        if (scan_needed(&seen.top, top) && widen_above(o, &o->bound[BOUND_UTILITY], n, top, &m) > 0)
            continue;
        vm_exp_shifted(o->weight, o->set_utility, top, m);
        best_assortment(o, m, k, o->set_ids, vm_exp(v0 - top));
        int added = widen_by_rounds(o, n, top, &seen, &m);
        if (added < 0)
            break;
        if (added == 0) {
            order_by_value(o, o->set_ids, k, slate);
            rc = DS_OK;
        }
    }
    *set_size = m;
    return rc;
}

/* The slate from the screening bounds and the exact values of the set they
 * leave: DS_OK, SCREEN_DECLINED or an error code. */
static int screened_act(oracle *o, const observation *obs, int k, int *slate)
{
    int n = obs->n_candidates;
    int rc = o->truth.bounds(o->truth.ctx, obs->user, obs->candidates, n, o->bound);
    if (rc < 0)
        return err_set(o->base.err, rc, "the environment gave no bounds");
    if (rc == 0)
        return SCREEN_DECLINED;
    int set_size;
    rc = screen(o, obs, k, slate, &set_size);
    for (int j = 0; j < set_size; j++)
        o->in_set[o->set_pos[j]] = 0;
    return rc;
}

static int oracle_act(agent *a, const observation *obs, int *slate)
{
    oracle *o = (oracle *)a;
    int n = obs->n_candidates, k = a->spec->slate;
    if (n < k)
        return err_set(a->err, DS_EINPUT, "%d candidates for a slate of %d", n, k);
    if (n > a->spec->n_items) /* its arrays hold one entry per item */
        return err_set(a->err, DS_EINPUT, "%d candidates from a catalogue of %d", n,
                       a->spec->n_items);
    a->slate_logp = 0.0; /* deterministic */
    if (o->truth.bounds) {
        int rc = screened_act(o, obs, k, slate);
        if (rc != SCREEN_DECLINED)
            return rc;
    }
    return exact_act(o, obs, k, slate);
}

static double oracle_memory_estimate(const void *config, const env_spec *spec)
{
    (void)config;
    double m = (double)SHORTLIST_PER_SLOT * spec->slate;
    double screen = (double)SCREEN_PER_SLOT * spec->slate; /* pick, and heap beyond m */
    /* values, bounds and their summaries, the screened set and a scan's finds */
    double per_item = 4 * sizeof(double) + 4 * sizeof(float) * (1 + 8.0 / VM_GROUP) +
                      3 * sizeof(int) + 1;
    return sizeof(oracle) + (double)spec->n_items * per_item + 4 * 8 * sizeof(float) +
           m * (3 * sizeof(double) + 2 * sizeof(int)) + screen * 2 * sizeof(int) +
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
