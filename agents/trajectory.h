/* Per-user episodes of the learning agents, and their late rewards.
 *
 * Sessions of many users interleave, so an agent cannot keep "the" trajectory:
 * it records each step into the open episode of the step's user, adds rewards as
 * feedback arrives, closes the episode when the session ends, and later takes a
 * batch of completed episodes to learn from. A purchase can be revealed after its
 * step, even after its episode ended (the engine delivers every pending purchase
 * after the last episode of a run), so a reward is credited wherever its episode
 * is: open, or completed and not yet taken. A reward for an episode already taken
 * is counted as lost; one for an episode never recorded (e.g. the eval phase,
 * where agents record nothing) as unknown.
 *
 * The store only stores: whether to record (learning on or off) is the agent's
 * decision. Call traj_end_episode on every xEndEpisode, learning or not: it is a
 * no-op when the user has no open episode of that id, and it keeps an episode
 * recorded before learning was switched off from staying open for ever.
 *
 * Costs: finding a user's open episode is O(1) (one int per user); a completed
 * episode is found by id in a hash table, O(1) expected. Memory is proportional
 * to the steps held, plus one int per user and one BIT per episode id up to the
 * largest recorded (to tell a consumed episode from one never recorded).
 *
 * Candidates. A step's candidate list is copied (the environment may change its
 * array in place, e.g. on catalogue churn). The identity catalogue 0..n_items-1
 * is stored as NULL: a list of n_items candidates is compared in full with the
 * identity once per step, O(n_items), which costs no more than the copy it saves
 * and far less than scoring the candidates (O(n_items * d)). A list equal to the
 * previous step's of the same episode shares that step's copy. */
#ifndef DIVSIM_TRAJECTORY_H
#define DIVSIM_TRAJECTORY_H

#include "../sim/common.h"
#include "../sim/slate.h"

#include <stddef.h>

/* One episode (session) of one user. Step t of the arrays is session step t:
 * steps are recorded in order from step 0. */
typedef struct {
    int user;
    long episode;
    int n_steps;
    int n_features, slate_k;
    double *x;          /* [n_steps][n_features] features of each step's state */
    int **candidates;   /* [n_steps] each [n_candidates[t]] item ids, or NULL for the
                           identity catalogue; read only (consecutive steps may share) */
    int *n_candidates;  /* [n_steps] */
    int *slate;         /* [n_steps][slate_k] positions into the step's candidates */
    double *logp;       /* [n_steps] behaviour log-probability of the slate */
    double *value;      /* [n_steps] value estimate when acting */
    double *reward;     /* [n_steps] shaped reward: step feedback plus late purchases */
    unsigned char *extra; /* [n_steps][extra_size] what the agent attached to each step
                             (e.g. the encoder's cache); NULL if extra_size is 0 */
    size_t extra_size;
    int cap_steps;
} traj_episode;

/* The agent's data attached to step t (see traj_store_init's extra_size). */
static inline void *traj_extra(const traj_episode *ep, int t)
{
    return ep->extra + (size_t)t * ep->extra_size;
}

/* The item id shown at slot j of step t's slate. */
static inline int traj_item(const traj_episode *ep, int t, int j)
{
    int pos = ep->slate[(size_t)t * ep->slate_k + j];
    return ep->candidates[t] ? ep->candidates[t][pos] : pos;
}

/* Frees an episode handed out by traj_take; NULL is a no-op. */
void traj_episode_free(traj_episode *ep);

/* Zero-initialise, then traj_store_init; traj_store_free releases. The fields
 * below the counters are private. */
typedef struct {
    int n_users, n_features, slate_k, n_items;
    size_t extra_size;       /* bytes the agent attaches to every step */

    /* What happened to each traj_add_reward call (they add up to the calls). */
    long rewards_applied;    /* added to a step held in the store */
    long late_rewards_lost;  /* its episode had already been taken */
    double reward_lost;      /* sum of the rewards counted in late_rewards_lost */
    long rewards_unknown;    /* its episode was never recorded */
    long rewards_unrecorded; /* its episode is held but that step was not recorded
                                (learning was switched off during the session) */
    size_t steps_held;       /* steps in open and completed episodes */
    size_t steps_out;        /* steps taken and not yet released */

    int *open_slot;          /* [n_users] index into open of the user's open episode, or -1 */
    traj_episode **open;     /* [cap_open] open episodes, n_open in use */
    int n_open, cap_open;
    traj_episode **done;     /* [cap_done] ring of completed episodes, oldest at done_head */
    size_t done_head, n_done, cap_done;
    traj_episode **by_id;    /* [cap_by_id] completed episodes by id, open addressing */
    size_t cap_by_id;        /* 0 or a power of two >= 2 * n_done */
    unsigned char *seen;     /* [cap_seen / 8] bit e: episode e was ever recorded */
    long cap_seen;           /* a multiple of 64 */
} traj_store;

/* Sizes: n_users and n_items of the env_spec, the encoder's n_features and the
 * slate size k, all >= 1, and extra_size bytes the agent attaches to every step
 * (0 for none). DS_EINPUT, DS_ENOMEM (err says which). */
int traj_store_init(traj_store *s, int n_users, int n_features, int slate_k, int n_items,
                    size_t extra_size, char *err);
/* Frees every episode held and the store; a zeroed or freed store is a no-op. */
void traj_store_free(traj_store *s);

/* Appends step obs->step of episode obs->episode of user obs->user, opening the
 * episode at its step 0: copies x [n_features], the candidates (see above),
 * slate_positions [slate_k] (distinct positions into obs->candidates) and the
 * extra_size bytes at extra, with the behaviour log-probability and the value
 * estimate; its reward starts at 0.
 * DS_EINPUT for a bad user, slate or (negative) episode id, or a step out of
 * order (steps are recorded 0, 1, 2, ... with none skipped); DS_EINTERNAL if the
 * user still has another episode open, or the episode was recorded and completed
 * before; DS_ENOMEM. On failure the store is unchanged. */
int traj_record_step(traj_store *s, const observation *obs, const double *x,
                     const int *slate_positions, double logp, double value,
                     const void *extra, char *err);

/* Adds fb->reward to step fb->step of episode fb->episode, for both feedback
 * kinds, or counts why it could not (see the counters). DS_EINPUT only for a user
 * out of range or an episode recorded for another user. */
int traj_add_reward(traj_store *s, const feedback *fb, char *err);

/* Moves the user's open episode to the completed queue if its id is episode;
 * otherwise does nothing. DS_EINPUT for a bad user; DS_ENOMEM (the episode then
 * stays open). */
int traj_end_episode(traj_store *s, int user, long episode, char *err);

/* Completed episodes waiting to be taken. */
size_t traj_completed(const traj_store *s);

/* The user's open episode, or NULL (also for a user out of range). */
const traj_episode *traj_open(const traj_store *s, int user);

/* The episode with this id while the store holds it (open or completed), or NULL. */
const traj_episode *traj_find(const traj_store *s, int user, long episode);

/* Hands out the n oldest completed episodes in completion order into batch [n];
 * the caller owns them from then on (rewards for them are counted as lost) and
 * gives them back with traj_release. DS_EINPUT unless 0 <= n <= traj_completed. */
int traj_take(traj_store *s, size_t n, traj_episode **batch, char *err);

/* Frees the n episodes of batch (from traj_take) and sets the pointers to NULL. */
void traj_release(traj_store *s, traj_episode **batch, size_t n);

#endif
