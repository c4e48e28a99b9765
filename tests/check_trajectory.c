/* Tests of the per-user episode store (agents/trajectory.c): interleaved users
 * kept apart, rewards (step feedback and late purchases) credited to the right
 * step wherever the episode is, completion order, candidate copies, the refusals,
 * and a randomised run of 10,000 episodes checked step by step against a plain
 * reference model, whose counters must add up exactly. Rewards are multiples of
 * 0.25, so every sum is exact in double precision and compared with ==. */
#include "../agents/trajectory.h"
#include "../sim/common.h"

#include <check.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_rng.h>
#include <stdlib.h>
#include <string.h>

#define N_USERS 40
#define N_FEATURES 4
#define K 3
#define N_ITEMS 12

static traj_store store;
static char err[ERR_LEN];
static int identity[N_ITEMS];

static void setup(void)
{
    ck_assert_int_eq(traj_store_init(&store, N_USERS, N_FEATURES, K, N_ITEMS, sizeof(int), err), DS_OK);
    for (int i = 0; i < N_ITEMS; i++)
        identity[i] = i;
    err[0] = '\0';
}

static void teardown(void)
{
    traj_store_free(&store);
}

/* Features that name their step: x_f = 1000 episode + 10 step + f. */
static void features_of(long episode, int step, double *x)
{
    for (int f = 0; f < N_FEATURES; f++)
        x[f] = 1000.0 * (double)episode + 10.0 * step + f;
}

/* Records step `step` of (user, episode) over cand [n], slate positions 0, 1, 2
 * shifted by `step` (mod n), logp = -step, value = 0.5 step. */
static int record(int user, long episode, int step, const int *cand, int n)
{
    observation obs = {.user = user, .episode = episode, .step = step,
                       .candidates = cand, .n_candidates = n};
    double x[N_FEATURES];
    features_of(episode, step, x);
    int pos[K];
    for (int j = 0; j < K; j++)
        pos[j] = (step + j) % n;
    int tag = 1000 * obs.user + step; /* extra: checked where steps are read back */
    return traj_record_step(&store, &obs, x, pos, -(double)step, 0.5 * step, &tag, err);
}

static void reward(feedback_kind kind, int user, long episode, int step, double r)
{
    feedback fb = {.kind = kind, .user = user, .episode = episode, .step = step,
                   .click = -1, .item = -1, .reward = r};
    if (traj_add_reward(&store, &fb, err) != DS_OK)
        ck_abort_msg("traj_add_reward: %s", err);
}

static long counted(const traj_store *s)
{
    return s->rewards_applied + s->late_rewards_lost + s->rewards_unknown +
           s->rewards_unrecorded;
}

/* ---- interleaving, rewards and order ---- */

START_TEST(test_interleaved_users_kept_apart)
{
    /* Three users' sessions interleave step by step: episode ids 0, 1, 2 for users
     * 5, 9, 17 with 3, 2 and 4 steps. */
    const int users[3] = {5, 9, 17}, lengths[3] = {3, 2, 4};
    for (int step = 0; step < 4; step++)
        for (int e = 0; e < 3; e++)
            if (step < lengths[e])
                ck_assert_int_eq(record(users[e], e, step, identity, N_ITEMS), DS_OK);
    ck_assert_uint_eq(store.steps_held, 9);
    for (int e = 0; e < 3; e++) {
        const traj_episode *ep = traj_open(&store, users[e]);
        ck_assert_ptr_nonnull(ep);
        ck_assert_ptr_eq(ep, traj_find(&store, users[e], e));
        ck_assert_int_eq(ep->user, users[e]);
        ck_assert_int_eq(ep->episode, e);
        ck_assert_int_eq(ep->n_steps, lengths[e]);
        for (int t = 0; t < ep->n_steps; t++) {
            double x[N_FEATURES];
            features_of(e, t, x);
            ck_assert_mem_eq(ep->x + t * N_FEATURES, x, sizeof x);
            ck_assert(ep->logp[t] == -(double)t && ep->value[t] == 0.5 * t);
            ck_assert_int_eq(*(const int *)traj_extra(ep, t), 1000 * ep->user + t);
            ck_assert(ep->reward[t] == 0.0);
            for (int j = 0; j < K; j++)
                ck_assert_int_eq(traj_item(ep, t, j), (t + j) % N_ITEMS);
        }
    }
    ck_assert_ptr_null(traj_open(&store, 0));
    ck_assert_ptr_null(traj_open(&store, -1));
    ck_assert_ptr_null(traj_open(&store, N_USERS));
    ck_assert_ptr_null(traj_find(&store, 9, 0)); /* episode 0 is user 5's */
    ck_assert_uint_eq(traj_completed(&store), 0);
}
END_TEST

START_TEST(test_rewards_land_on_their_steps)
{
    /* Users 1 and 2, episodes 10 and 11, interleaved; 3 steps each. */
    for (int t = 0; t < 3; t++) {
        ck_assert_int_eq(record(1, 10, t, identity, N_ITEMS), DS_OK);
        reward(FEEDBACK_STEP, 1, 10, t, 0.25 * (t + 1));
        ck_assert_int_eq(record(2, 11, t, identity, N_ITEMS), DS_OK);
        reward(FEEDBACK_STEP, 2, 11, t, 1.0 + t);
    }
    /* late purchase for step 0 of the still-open episode 10 */
    reward(FEEDBACK_LATE_PURCHASE, 1, 10, 0, 2.0);
    ck_assert_int_eq(traj_end_episode(&store, 1, 10, err), DS_OK);
    ck_assert_int_eq(traj_end_episode(&store, 2, 11, err), DS_OK);
    ck_assert_ptr_null(traj_open(&store, 1));
    /* late purchase for step 1 of the completed, not yet taken episode 11 */
    reward(FEEDBACK_LATE_PURCHASE, 2, 11, 1, 4.0);
    ck_assert_uint_eq(traj_completed(&store), 2);

    traj_episode *batch[2];
    ck_assert_int_eq(traj_take(&store, 1, batch, err), DS_OK);
    ck_assert_int_eq(batch[0]->episode, 10);
    /* expected: step rewards 0.25, 0.5, 0.75 plus the late 2.0 on step 0 */
    const double want10[3] = {2.25, 0.5, 0.75};
    ck_assert_mem_eq(batch[0]->reward, want10, sizeof want10);
    /* late purchase for episode 10, already taken: lost, and counted */
    reward(FEEDBACK_LATE_PURCHASE, 1, 10, 2, 3.0);
    ck_assert_int_eq(store.late_rewards_lost, 1);
    ck_assert(store.reward_lost == 3.0);
    ck_assert_mem_eq(batch[0]->reward, want10, sizeof want10);
    traj_release(&store, batch, 1);
    ck_assert_ptr_null(batch[0]);

    ck_assert_int_eq(traj_take(&store, 1, batch + 1, err), DS_OK);
    const double want11[3] = {1.0, 6.0, 3.0}; /* 1, 2, 3 plus the late 4.0 on step 1 */
    ck_assert_mem_eq(batch[1]->reward, want11, sizeof want11);
    traj_release(&store, batch + 1, 1);

    /* a reward for an episode never recorded, one for a step not recorded */
    reward(FEEDBACK_LATE_PURCHASE, 3, 99, 0, 1.0);
    ck_assert_int_eq(record(3, 12, 0, identity, N_ITEMS), DS_OK);
    reward(FEEDBACK_STEP, 3, 12, 1, 1.0);
    ck_assert_int_eq(store.rewards_unknown, 1);
    ck_assert_int_eq(store.rewards_unrecorded, 1);
    ck_assert_int_eq(store.rewards_applied, 8);
    ck_assert_int_eq(counted(&store), 11);
}
END_TEST

START_TEST(test_take_returns_completion_order)
{
    /* Episodes 0..5 of users 0..5 open in id order and end in the order 3, 0, 5, 1, 4, 2. */
    for (int e = 0; e < 6; e++)
        ck_assert_int_eq(record(e, e, 0, identity, N_ITEMS), DS_OK);
    const int order[6] = {3, 0, 5, 1, 4, 2};
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(traj_end_episode(&store, order[i], order[i], err), DS_OK);
    traj_episode *batch[6];
    ck_assert_int_eq(traj_take(&store, 7, batch, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "7 episodes asked for, 6 completed"));
    ck_assert_int_eq(traj_take(&store, 0, batch, err), DS_OK);
    ck_assert_int_eq(traj_take(&store, 2, batch, err), DS_OK);
    ck_assert_int_eq(traj_take(&store, 4, batch + 2, err), DS_OK);
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(batch[i]->episode, order[i]);
    ck_assert_uint_eq(traj_completed(&store), 0);
    ck_assert_uint_eq(store.steps_held, 0);
    ck_assert_uint_eq(store.steps_out, 6);
    traj_release(&store, batch, 6);
    ck_assert_uint_eq(store.steps_out, 0);
}
END_TEST

/* ---- candidates ---- */

START_TEST(test_candidates_copied_identity_null)
{
    int cand[N_ITEMS];
    /* step 0: the identity catalogue -> NULL */
    ck_assert_int_eq(record(0, 0, 0, identity, N_ITEMS), DS_OK);
    /* step 1: n_items candidates, first and last as in the identity, 1 and 2 swapped */
    memcpy(cand, identity, sizeof cand);
    cand[1] = 2;
    cand[2] = 1;
    ck_assert_int_eq(record(0, 0, 1, cand, N_ITEMS), DS_OK);
    /* step 2: the same list again -> shares step 1's copy */
    ck_assert_int_eq(record(0, 0, 2, cand, N_ITEMS), DS_OK);
    /* step 3: a shorter list 11, 10, ..., 4 (8 items) */
    for (int j = 0; j < 8; j++)
        cand[j] = N_ITEMS - 1 - j;
    ck_assert_int_eq(record(0, 0, 3, cand, 8), DS_OK);
    /* the caller's array changes: nothing stored may follow */
    for (int j = 0; j < N_ITEMS; j++)
        cand[j] = -7;

    const traj_episode *ep = traj_open(&store, 0);
    ck_assert_ptr_null(ep->candidates[0]);
    ck_assert_ptr_nonnull(ep->candidates[1]);
    ck_assert_ptr_eq(ep->candidates[2], ep->candidates[1]);
    ck_assert_ptr_ne(ep->candidates[1], (const int *)cand);
    ck_assert_ptr_ne(ep->candidates[3], (const int *)cand);
    ck_assert_int_eq(ep->n_candidates[3], 8);
    const int swapped[N_ITEMS] = {0, 2, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    ck_assert_mem_eq(ep->candidates[1], swapped, sizeof swapped);
    for (int j = 0; j < 8; j++)
        ck_assert_int_eq(ep->candidates[3][j], N_ITEMS - 1 - j);
    /* slate positions (t + j) mod n mapped through each step's list */
    ck_assert_int_eq(traj_item(ep, 0, 0), 0);
    ck_assert_int_eq(traj_item(ep, 1, 0), 2); /* position 1 of the swapped list */
    ck_assert_int_eq(traj_item(ep, 1, 1), 1);
    ck_assert_int_eq(traj_item(ep, 2, 0), 1);
    ck_assert_int_eq(traj_item(ep, 3, 0), 8); /* position 3 of 11, 10, 9, 8, ... */
    ck_assert_int_eq(ep->slate[3 * K + 2], 5);
}
END_TEST

/* ---- refusals ---- */

START_TEST(test_refusals_leave_store_unchanged)
{
    ck_assert_int_eq(record(0, 4, 0, identity, N_ITEMS), DS_OK);
    /* a step skipped */
    ck_assert_int_eq(record(0, 4, 2, identity, N_ITEMS), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "step 2 of episode 4 recorded after 1 steps"));
    /* a new episode while episode 4 is open */
    ck_assert_int_eq(record(0, 5, 0, identity, N_ITEMS), DS_EINTERNAL);
    ck_assert_ptr_nonnull(strstr(err, "still has episode 4 open"));
    /* a new episode that does not start at step 0 */
    ck_assert_int_eq(record(1, 6, 1, identity, N_ITEMS), DS_EINPUT);
    ck_assert_ptr_null(traj_open(&store, 1));
    /* bad user, slate and episode id */
    ck_assert_int_eq(record(N_USERS, 7, 0, identity, N_ITEMS), DS_EINPUT);
    ck_assert_int_eq(record(1, -3, 0, identity, N_ITEMS), DS_EINPUT);
    observation obs = {.user = 1, .episode = 7, .candidates = identity,
                       .n_candidates = N_ITEMS};
    double x[N_FEATURES] = {0};
    int tag = 0;
    const int twice[K] = {4, 1, 4}, outside[K] = {0, N_ITEMS, 1};
    ck_assert_int_eq(traj_record_step(&store, &obs, x, outside, 0, 0, NULL, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "no extra data"));
    ck_assert_int_eq(traj_record_step(&store, &obs, x, twice, 0, 0, &tag, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "position 4 appears twice"));
    ck_assert_int_eq(traj_record_step(&store, &obs, x, outside, 0, 0, &tag, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "position 12 is not among the 12 candidates"));
    ck_assert_ptr_null(traj_open(&store, 1));
    ck_assert_uint_eq(store.steps_held, 1);
    ck_assert_int_eq(traj_open(&store, 0)->n_steps, 1);

    /* ending an episode that is not open: nothing happens */
    ck_assert_int_eq(traj_end_episode(&store, 0, 5, err), DS_OK);
    ck_assert_int_eq(traj_end_episode(&store, 3, 5, err), DS_OK);
    ck_assert_int_eq(traj_end_episode(&store, -1, 5, err), DS_EINPUT);
    ck_assert_uint_eq(traj_completed(&store), 0);
    /* once completed, an episode cannot be recorded again */
    ck_assert_int_eq(traj_end_episode(&store, 0, 4, err), DS_OK);
    ck_assert_int_eq(record(0, 4, 0, identity, N_ITEMS), DS_EINTERNAL);
    ck_assert_int_eq(record(2, 4, 0, identity, N_ITEMS), DS_EINTERNAL);
    /* feedback naming the wrong user, or a user out of range */
    feedback fb = {.kind = FEEDBACK_LATE_PURCHASE, .user = 3, .episode = 4, .reward = 1};
    ck_assert_int_eq(traj_add_reward(&store, &fb, err), DS_EINPUT);
    fb.user = N_USERS;
    ck_assert_int_eq(traj_add_reward(&store, &fb, err), DS_EINPUT);
    ck_assert_int_eq(counted(&store), 0);
    ck_assert_uint_eq(traj_completed(&store), 1);
}
END_TEST

START_TEST(test_init_and_free)
{
    traj_store s = {0};
    traj_store_free(&s); /* zeroed: no-op */
    traj_store_free(NULL);
    traj_episode_free(NULL);
    ck_assert_int_eq(traj_store_init(&s, 0, 4, 3, 10, 0, err), DS_EINPUT);
    ck_assert_int_eq(traj_store_init(&s, 4, 4, 0, 10, 0, err), DS_EINPUT);
    ck_assert_int_eq(traj_store_init(&s, 4, 4, 3, 10, 0, err), DS_OK);
    traj_store_free(&s);
    traj_store_free(&s); /* freed: no-op */
}
END_TEST

/* ---- many episodes against a reference model ---- */

#define RUN_EPISODES 10000
#define MAX_LEN 20
#define LONG_LEN 200 /* one in 500 episodes is this long, to grow the step arrays */

typedef struct {
    int user, length, recorded; /* steps recorded: 0 .. length */
    int state;                  /* 0 unborn, 1 running, 2 ended, 3 taken */
    int steps_done;
    double *want;               /* [length] expected reward of each recorded step */
} ref_episode;

typedef struct {
    long episode;
    int user, step;
    double reward;
    long due; /* tick */
} pending;

typedef struct {
    ref_episode ep[RUN_EPISODES];
    int running[N_USERS]; /* episode of each user, or -1 */
    pending *late;        /* [n_late] */
    size_t n_late, cap_late;
    long feedbacks, applied, lost, unknown, unrecorded;
    double reward_lost;
    size_t steps_taken, steps_recorded;
} reference;

/* Candidate lists vary by episode and by runs of 3 steps: the identity, a
 * rotation by one, the identity with 1 and 2 swapped, or 9 items in reverse. */
static int make_candidates(long e, int t, int *cand)
{
    int v = (int)((e + t / 3) % 4), n = v == 3 ? 9 : N_ITEMS;
    for (int j = 0; j < n; j++)
        cand[j] = v == 0 ? j : v == 1 ? (j + 1) % N_ITEMS : v == 2 ? j : N_ITEMS - 1 - j;
    if (v == 2) {
        cand[1] = 2;
        cand[2] = 1;
    }
    return n;
}

static void deliver(reference *ref, feedback_kind kind, long e, int user, int step, double r)
{
    reward(kind, user, e, step, r);
    ref->feedbacks++;
    ref_episode *re = &ref->ep[e];
    if (re->recorded == 0) {
        ref->unknown++;
    } else if (re->state == 3) {
        ref->lost++;
        ref->reward_lost += r;
    } else if (step >= re->recorded) {
        ref->unrecorded++;
    } else {
        ref->applied++;
        re->want[step] += r;
    }
}

/* The first difference between a taken episode and the reference, or NULL. Plain
 * comparisons, not an assertion per value: Check marks every passing assertion,
 * which would dominate the run time here. */
static const char *taken_mismatch(const ref_episode *re, const traj_episode *ep, int *at)
{
    int cand[N_ITEMS];
    for (int t = 0; t < ep->n_steps; t++) {
        *at = t;
        double x[N_FEATURES];
        features_of(ep->episode, t, x);
        if (memcmp(ep->x + t * N_FEATURES, x, sizeof x) != 0)
            return "features";
        int n = make_candidates(ep->episode, t, cand);
        if (ep->n_candidates[t] != n ||
            (ep->candidates[t] == NULL) != ((ep->episode + t / 3) % 4 == 0))
            return "candidates";
        for (int j = 0; j < K; j++)
            if (traj_item(ep, t, j) != cand[(t + j) % n])
                return "slate";
        if (ep->logp[t] != -(double)t || ep->value[t] != 0.5 * t ||
            *(const int *)traj_extra(ep, t) != 1000 * ep->user + t)
            return "logp or value";
        if (ep->reward[t] != re->want[t])
            return "reward";
    }
    return NULL;
}

static void check_taken(reference *ref, const traj_episode *ep)
{
    ref_episode *re = &ref->ep[ep->episode];
    ck_assert_int_eq(re->state, 2);
    re->state = 3;
    ck_assert_int_eq(ep->user, re->user);
    ck_assert_int_eq(ep->n_steps, re->recorded);
    int t = 0;
    const char *what = taken_mismatch(re, ep, &t);
    ck_assert_msg(what == NULL, "episode %ld step %d: wrong %s", ep->episode, t, what);
    ref->steps_taken += (size_t)ep->n_steps;
}

static void take_and_check(reference *ref, size_t n)
{
    traj_episode *batch[64];
    ck_assert_int_eq(traj_take(&store, n, batch, err), DS_OK);
    for (size_t i = 0; i < n; i++)
        check_taken(ref, batch[i]);
    traj_release(&store, batch, n);
}

static void schedule_late(reference *ref, long e, int user, int step, double r, long due)
{
    if (ref->n_late == ref->cap_late) {
        ref->cap_late = ref->cap_late ? 2 * ref->cap_late : 256;
        ref->late = realloc(ref->late, ref->cap_late * sizeof *ref->late);
        ck_assert_ptr_nonnull(ref->late);
    }
    ref->late[ref->n_late++] = (pending){e, user, step, r, due};
}

/* Delivers the late purchases due by tick now (all of them when now < 0). */
static void deliver_due(reference *ref, long now)
{
    size_t kept = 0;
    for (size_t i = 0; i < ref->n_late; i++) {
        pending p = ref->late[i];
        if (now < 0 || p.due <= now)
            deliver(ref, FEEDBACK_LATE_PURCHASE, p.episode, p.user, p.step, p.reward);
        else
            ref->late[kept++] = p;
    }
    ref->n_late = kept;
}

/* One step of user u's session: record (unless learning is off for it), step
 * feedback, maybe a late purchase, and the end of the session. */
static void session_step(reference *ref, gsl_rng *r, int u, long tick)
{
    long e = ref->running[u];
    ref_episode *re = &ref->ep[e];
    int t = re->steps_done++;
    if (t < re->recorded) {
        int cand[N_ITEMS];
        int n = make_candidates(e, t, cand);
        if (record(u, e, t, cand, n) != DS_OK)
            ck_abort_msg("record: %s", err);
        ref->steps_recorded++;
    }
    deliver(ref, FEEDBACK_STEP, e, u, t, 0.5 * (double)gsl_rng_uniform_int(r, 3));
    if (gsl_rng_uniform(r) < 0.3)
        schedule_late(ref, e, u, t, 1.0 + 0.25 * (double)gsl_rng_uniform_int(r, 8),
                      tick + 1 + (long)gsl_rng_uniform_int(r, 400));
    if (re->steps_done == re->length) {
        if (traj_end_episode(&store, u, e, err) != DS_OK)
            ck_abort_msg("traj_end_episode: %s", err);
        re->state = 2;
        ref->running[u] = -1;
    }
}

static void start_episode(reference *ref, gsl_rng *r, int u, long e)
{
    ref_episode *re = &ref->ep[e];
    re->user = u;
    re->length = gsl_rng_uniform_int(r, 500) == 0 ? LONG_LEN
                                                 : 1 + (int)gsl_rng_uniform_int(r, MAX_LEN);
    /* learning off for every 11th episode; switched off mid-session for every 13th */
    re->recorded = e % 11 == 0 ? 0 : e % 13 == 0 ? re->length / 2 : re->length;
    re->want = calloc((size_t)re->length, sizeof *re->want);
    ck_assert_ptr_nonnull(re->want);
    re->state = 1;
    ref->running[u] = (int)e;
}

START_TEST(test_many_episodes_against_reference)
{
    static reference ref; /* large: not on the stack */
    memset(&ref, 0, sizeof ref);
    for (int u = 0; u < N_USERS; u++)
        ref.running[u] = -1;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 20240601);
    long next = 0, ended = 0, tick = 0;
    size_t batch = 1 + gsl_rng_uniform_int(r, 64);
    while (ended < RUN_EPISODES) {
        tick++;
        int u = (int)gsl_rng_uniform_int(r, N_USERS);
        if (ref.running[u] < 0 && next < RUN_EPISODES)
            start_episode(&ref, r, u, next++);
        if (ref.running[u] >= 0) {
            long e = ref.running[u];
            session_step(&ref, r, u, tick);
            ended += ref.ep[e].state == 2;
        }
        deliver_due(&ref, tick);
        /* learn whenever a batch is ready, with a new random batch size each time */
        if (traj_completed(&store) >= batch) {
            take_and_check(&ref, batch);
            batch = 1 + gsl_rng_uniform_int(r, 64);
        }
    }
    /* the end of a run: every pending purchase after the last episode ended */
    deliver_due(&ref, -1);
    size_t left = traj_completed(&store);
    ck_assert_uint_eq(store.steps_held + ref.steps_taken, ref.steps_recorded);
    while (traj_completed(&store) > 0)
        take_and_check(&ref, traj_completed(&store) < 64 ? traj_completed(&store) : 64);

    /* every episode ended, and each was taken exactly once if it recorded a step */
    long taken = 0;
    for (long e = 0; e < RUN_EPISODES; e++) {
        ck_assert_int_eq(ref.ep[e].state >= 2, 1);
        ck_assert_int_eq(ref.ep[e].state == 3, ref.ep[e].recorded > 0);
        taken += ref.ep[e].state == 3;
        free(ref.ep[e].want);
    }
    printf("  trajectory run: %ld episodes (%ld recorded, %zu left at the end), "
           "%zu steps recorded, %ld rewards: %ld applied, %ld lost, %ld unknown, "
           "%ld unrecorded\n", (long)RUN_EPISODES, taken, left, ref.steps_recorded,
           ref.feedbacks, ref.applied, ref.lost, ref.unknown, ref.unrecorded);
    ck_assert_int_eq(store.rewards_applied, ref.applied);
    ck_assert_int_eq(store.late_rewards_lost, ref.lost);
    ck_assert(store.reward_lost == ref.reward_lost);
    ck_assert_int_eq(store.rewards_unknown, ref.unknown);
    ck_assert_int_eq(store.rewards_unrecorded, ref.unrecorded);
    ck_assert_int_eq(counted(&store), ref.feedbacks);
    /* every kind of outcome happened, so none of the comparisons above is vacuous */
    ck_assert(ref.applied > 0 && ref.lost > 0 && ref.unknown > 0 && ref.unrecorded > 0);
    ck_assert(left > 0);
    ck_assert_uint_eq(ref.steps_taken, ref.steps_recorded);
    ck_assert_uint_eq(store.steps_held, 0);
    ck_assert_uint_eq(store.steps_out, 0);
    free(ref.late);
    gsl_rng_free(r);
}
END_TEST

static Suite *trajectory_suite(void)
{
    Suite *s = suite_create("trajectory");
    TCase *basic = tcase_create("episodes");
    tcase_add_checked_fixture(basic, setup, teardown);
    tcase_add_test(basic, test_interleaved_users_kept_apart);
    tcase_add_test(basic, test_rewards_land_on_their_steps);
    tcase_add_test(basic, test_take_returns_completion_order);
    tcase_add_test(basic, test_candidates_copied_identity_null);
    tcase_add_test(basic, test_refusals_leave_store_unchanged);
    tcase_add_test(basic, test_init_and_free);
    suite_add_tcase(s, basic);
    TCase *many = tcase_create("many");
    tcase_add_checked_fixture(many, setup, teardown);
    tcase_add_test(many, test_many_episodes_against_reference);
    tcase_set_timeout(many, 60);
    suite_add_tcase(s, many);
    return s;
}

int main(void)
{
    gsl_set_error_handler_off();
    SRunner *runner = srunner_create(trajectory_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
