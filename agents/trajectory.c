/* Per-user episode store; trajectory.h states the contract. */
#include "trajectory.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- episodes ---- */

static traj_episode *episode_new(const traj_store *s, int user, long episode)
{
    traj_episode *ep = calloc(1, sizeof *ep);
    if (ep) {
        ep->user = user;
        ep->episode = episode;
        ep->n_features = s->n_features;
        ep->slate_k = s->slate_k;
        ep->extra_size = s->extra_size;
    }
    return ep;
}

/* Step t owns its candidate copy unless it shares step t-1's. */
static int owns_candidates(const traj_episode *ep, int t)
{
    return ep->candidates[t] && (t == 0 || ep->candidates[t] != ep->candidates[t - 1]);
}

void traj_episode_free(traj_episode *ep)
{
    if (!ep)
        return;
    for (int t = 0; t < ep->n_steps; t++)
        if (owns_candidates(ep, t))
            free(ep->candidates[t]);
    free(ep->x);
    free(ep->candidates);
    free(ep->n_candidates);
    free(ep->slate);
    free(ep->logp);
    free(ep->value);
    free(ep->reward);
    free(ep->extra);
    free(ep);
}

/* Grows the per-step array ep->field to cap rows of row bytes, or returns DS_ENOMEM. */
#define GROW_STEPS(ep, field, cap, row)                                \
    do {                                                               \
        void *grown_ = realloc((ep)->field, (size_t)(cap) * (row));     \
        if (!grown_)                                                   \
            return DS_ENOMEM;                                          \
        (ep)->field = grown_;                                          \
    } while (0)

/* Makes room for one more step. An array grown before a later one fails is just
 * larger than needed: cap_steps only moves once all have grown. */
static int episode_reserve(traj_episode *ep)
{
    if (ep->n_steps < ep->cap_steps)
        return DS_OK;
    int cap = ep->cap_steps ? 2 * ep->cap_steps : 8;
    GROW_STEPS(ep, x, cap, (size_t)ep->n_features * sizeof *ep->x);
    GROW_STEPS(ep, candidates, cap, sizeof *ep->candidates);
    GROW_STEPS(ep, n_candidates, cap, sizeof *ep->n_candidates);
    GROW_STEPS(ep, slate, cap, (size_t)ep->slate_k * sizeof *ep->slate);
    GROW_STEPS(ep, logp, cap, sizeof *ep->logp);
    GROW_STEPS(ep, value, cap, sizeof *ep->value);
    GROW_STEPS(ep, reward, cap, sizeof *ep->reward);
    if (ep->extra_size)
        GROW_STEPS(ep, extra, cap, ep->extra_size);
    ep->cap_steps = cap;
    return DS_OK;
}

static int is_identity(const int *candidates, int n)
{
    for (int j = 0; j < n; j++)
        if (candidates[j] != j)
            return 0;
    return 1;
}

/* The stored form of a step's candidates: NULL for the identity catalogue, the
 * previous step's copy if equal, else a fresh copy. DS_ENOMEM. */
static int store_candidates(const traj_store *s, const traj_episode *ep, const int *cand,
                            int n, int **out)
{
    *out = NULL;
    if (n == s->n_items && is_identity(cand, n))
        return DS_OK;
    int t = ep->n_steps;
    if (t > 0 && ep->candidates[t - 1] && ep->n_candidates[t - 1] == n &&
        memcmp(ep->candidates[t - 1], cand, (size_t)n * sizeof *cand) == 0) {
        *out = ep->candidates[t - 1];
        return DS_OK;
    }
    int *copy = malloc((size_t)n * sizeof *copy);
    if (!copy)
        return DS_ENOMEM;
    memcpy(copy, cand, (size_t)n * sizeof *cand);
    *out = copy;
    return DS_OK;
}

/* ---- episode ids: the ever-recorded bitset and the completed index ---- */

static int seen_get(const traj_store *s, long id)
{
    return id >= 0 && id < s->cap_seen && (s->seen[id / 8] >> (id % 8)) & 1;
}

static int seen_reserve(traj_store *s, long id)
{
    if (id < s->cap_seen)
        return DS_OK;
    long cap = s->cap_seen ? 2 * s->cap_seen : 1024;
    if (cap <= id)
        cap = (id / 64 + 1) * 64;
    unsigned char *grown = realloc(s->seen, (size_t)(cap / 8));
    if (!grown)
        return DS_ENOMEM;
    memset(grown + s->cap_seen / 8, 0, (size_t)((cap - s->cap_seen) / 8));
    s->seen = grown;
    s->cap_seen = cap;
    return DS_OK;
}

static void seen_set(traj_store *s, long id)
{
    s->seen[id / 8] |= (unsigned char)(1u << (id % 8));
}

/* Home slot of an id: the splitmix64 finaliser spreads consecutive ids. */
static size_t id_home(long id, size_t cap)
{
    uint64_t z = (uint64_t)id + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (size_t)(z ^ (z >> 31)) & (cap - 1);
}

/* Slot of id in by_id, or the empty slot where it would go. Needs cap_by_id > 0. */
static size_t by_id_slot(const traj_store *s, long id)
{
    size_t mask = s->cap_by_id - 1, i = id_home(id, s->cap_by_id);
    while (s->by_id[i] && s->by_id[i]->episode != id)
        i = (i + 1) & mask;
    return i;
}

static traj_episode *by_id_find(const traj_store *s, long id)
{
    return s->cap_by_id ? s->by_id[by_id_slot(s, id)] : NULL;
}

static void by_id_insert(traj_store *s, traj_episode *ep)
{
    s->by_id[by_id_slot(s, ep->episode)] = ep;
}

/* Removes id by backward-shift deletion, so probe chains need no tombstones:
 * each later entry of the run moves into the hole unless its home lies
 * cyclically in (hole, entry]. */
static void by_id_remove(traj_store *s, long id)
{
    size_t mask = s->cap_by_id - 1, hole = by_id_slot(s, id);
    s->by_id[hole] = NULL;
    for (size_t i = (hole + 1) & mask; s->by_id[i]; i = (i + 1) & mask) {
        size_t home = id_home(s->by_id[i]->episode, s->cap_by_id);
        if (((i - home) & mask) >= ((i - hole) & mask)) {
            s->by_id[hole] = s->by_id[i];
            s->by_id[i] = NULL;
            hole = i;
        }
    }
}

/* Keeps the table at most half full for n entries. */
static int by_id_reserve(traj_store *s, size_t n)
{
    if (2 * n <= s->cap_by_id)
        return DS_OK;
    size_t cap = s->cap_by_id ? 2 * s->cap_by_id : 64;
    while (2 * n > cap)
        cap *= 2;
    traj_episode **old = s->by_id;
    size_t old_cap = s->cap_by_id;
    s->by_id = calloc(cap, sizeof *s->by_id);
    if (!s->by_id) {
        s->by_id = old;
        return DS_ENOMEM;
    }
    s->cap_by_id = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i])
            by_id_insert(s, old[i]);
    free(old);
    return DS_OK;
}

/* ---- the completed queue ---- */

static int done_reserve(traj_store *s)
{
    if (s->n_done < s->cap_done)
        return DS_OK;
    size_t cap = s->cap_done ? 2 * s->cap_done : 64;
    traj_episode **ring = malloc(cap * sizeof *ring);
    if (!ring)
        return DS_ENOMEM;
    for (size_t i = 0; i < s->n_done; i++)
        ring[i] = s->done[(s->done_head + i) % s->cap_done];
    free(s->done);
    s->done = ring;
    s->done_head = 0;
    s->cap_done = cap;
    return DS_OK;
}

/* ---- the store ---- */

int traj_store_init(traj_store *s, int n_users, int n_features, int slate_k, int n_items,
                    size_t extra_size, char *err)
{
    *s = (traj_store){0};
    if (n_users < 1 || n_features < 1 || slate_k < 1 || n_items < 1)
        return err_set(err, DS_EINPUT,
                       "trajectory store needs n_users, n_features, slate and n_items >= 1 "
                       "(got %d, %d, %d, %d)", n_users, n_features, slate_k, n_items);
    s->open_slot = malloc((size_t)n_users * sizeof *s->open_slot);
    if (!s->open_slot)
        return err_set(err, DS_ENOMEM, "out of memory for the trajectory store");
    for (int u = 0; u < n_users; u++)
        s->open_slot[u] = -1;
    s->n_users = n_users;
    s->n_features = n_features;
    s->slate_k = slate_k;
    s->n_items = n_items;
    s->extra_size = extra_size;
    return DS_OK;
}

void traj_store_free(traj_store *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_open; i++)
        traj_episode_free(s->open[i]);
    for (size_t i = 0; i < s->n_done; i++)
        traj_episode_free(s->done[(s->done_head + i) % s->cap_done]);
    free(s->open_slot);
    free(s->open);
    free(s->done);
    free(s->by_id);
    free(s->seen);
    *s = (traj_store){0};
}

size_t traj_completed(const traj_store *s)
{
    return s->n_done;
}

const traj_episode *traj_open(const traj_store *s, int user)
{
    if (user < 0 || user >= s->n_users || s->open_slot[user] < 0)
        return NULL;
    return s->open[s->open_slot[user]];
}

/* The held episode (open first, then completed) with this id, or NULL. */
static traj_episode *find_held(const traj_store *s, int user, long episode)
{
    if (user >= 0 && user < s->n_users && s->open_slot[user] >= 0) {
        traj_episode *ep = s->open[s->open_slot[user]];
        if (ep->episode == episode)
            return ep;
    }
    return by_id_find(s, episode);
}

const traj_episode *traj_find(const traj_store *s, int user, long episode)
{
    const traj_episode *ep = find_held(s, user, episode);
    return ep && ep->user == user ? ep : NULL;
}

static int check_slate(const traj_store *s, const int *pos, int n, char *err)
{
    for (int j = 0; j < s->slate_k; j++) {
        if (pos[j] < 0 || pos[j] >= n)
            return err_set(err, DS_EINPUT, "slate position %d is not among the %d candidates",
                           pos[j], n);
        for (int i = 0; i < j; i++)
            if (pos[i] == pos[j])
                return err_set(err, DS_EINPUT, "slate position %d appears twice", pos[j]);
    }
    return DS_OK;
}

/* The user's open episode for obs, opened (empty, not yet in the store) when the
 * user has none; *fresh says which. */
static int episode_for_step(traj_store *s, const observation *obs, traj_episode **out,
                            int *fresh, char *err)
{
    *fresh = 0;
    int slot = s->open_slot[obs->user];
    if (slot >= 0) {
        *out = s->open[slot];
        if ((*out)->episode != obs->episode)
            return err_set(err, DS_EINTERNAL,
                           "user %d still has episode %ld open when a step of episode %ld "
                           "is recorded (traj_end_episode missing?)",
                           obs->user, (*out)->episode, obs->episode);
        return DS_OK;
    }
    if (obs->episode < 0)
        return err_set(err, DS_EINPUT, "episode id %ld is negative", obs->episode);
    if (seen_get(s, obs->episode))
        return err_set(err, DS_EINTERNAL, "episode %ld was already recorded and completed",
                       obs->episode);
    if (seen_reserve(s, obs->episode) != DS_OK ||
        !(*out = episode_new(s, obs->user, obs->episode)))
        return err_set(err, DS_ENOMEM, "out of memory for a trajectory");
    *fresh = 1;
    return DS_OK;
}

/* Puts a fresh episode among the open ones. */
static int open_episode(traj_store *s, traj_episode *ep)
{
    if (s->n_open == s->cap_open) {
        int cap = s->cap_open ? 2 * s->cap_open : 16;
        traj_episode **grown = realloc(s->open, (size_t)cap * sizeof *grown);
        if (!grown)
            return DS_ENOMEM;
        s->open = grown;
        s->cap_open = cap;
    }
    s->open_slot[ep->user] = s->n_open;
    s->open[s->n_open++] = ep;
    seen_set(s, ep->episode);
    return DS_OK;
}

/* Writes step t = ep->n_steps; room is reserved and cand is in its stored form. */
static void append_step(traj_store *s, traj_episode *ep, const observation *obs,
                        const double *x, const int *slate_positions, int *cand, double logp,
                        double value, const void *extra)
{
    int t = ep->n_steps++;
    memcpy(ep->x + (size_t)t * s->n_features, x, (size_t)s->n_features * sizeof *x);
    memcpy(ep->slate + (size_t)t * s->slate_k, slate_positions,
           (size_t)s->slate_k * sizeof *slate_positions);
    ep->candidates[t] = cand;
    ep->n_candidates[t] = obs->n_candidates;
    ep->logp[t] = logp;
    ep->value[t] = value;
    ep->reward[t] = 0.0;
    if (s->extra_size)
        memcpy(traj_extra(ep, t), extra, s->extra_size);
    s->steps_held++;
}

int traj_record_step(traj_store *s, const observation *obs, const double *x,
                     const int *slate_positions, double logp, double value,
                     const void *extra, char *err)
{
    if (obs->user < 0 || obs->user >= s->n_users)
        return err_set(err, DS_EINPUT, "user %d is out of range", obs->user);
    if (s->extra_size && !extra)
        return err_set(err, DS_EINPUT, "step of user %d has no extra data", obs->user);
    int rc = check_slate(s, slate_positions, obs->n_candidates, err);
    if (rc != DS_OK)
        return rc;
    traj_episode *ep = NULL;
    int fresh;
    if ((rc = episode_for_step(s, obs, &ep, &fresh, err)) != DS_OK)
        return rc;
    int *cand = NULL;
    if (obs->step != ep->n_steps) {
        rc = err_set(err, DS_EINPUT, "step %d of episode %ld recorded after %d steps",
                     obs->step, obs->episode, ep->n_steps);
    } else if (episode_reserve(ep) != DS_OK ||
               store_candidates(s, ep, obs->candidates, obs->n_candidates, &cand) != DS_OK ||
               (fresh && open_episode(s, ep) != DS_OK)) {
        /* a fresh copy is ours to free; a shared one belongs to the previous step */
        if (cand && (ep->n_steps == 0 || cand != ep->candidates[ep->n_steps - 1]))
            free(cand);
        rc = err_set(err, DS_ENOMEM, "out of memory for a trajectory step");
    } else {
        append_step(s, ep, obs, x, slate_positions, cand, logp, value, extra);
    }
    if (rc != DS_OK && fresh)
        traj_episode_free(ep); /* never made it into the store */
    return rc;
}

int traj_add_reward(traj_store *s, const feedback *fb, char *err)
{
    if (fb->user < 0 || fb->user >= s->n_users)
        return err_set(err, DS_EINPUT, "feedback for user %d, out of range", fb->user);
    traj_episode *ep = find_held(s, fb->user, fb->episode);
    if (ep && ep->user != fb->user)
        return err_set(err, DS_EINPUT, "feedback for episode %ld names user %d, recorded for %d",
                       fb->episode, fb->user, ep->user);
    if (!ep && seen_get(s, fb->episode)) {
        s->late_rewards_lost++;
        s->reward_lost += fb->reward;
    } else if (!ep) {
        s->rewards_unknown++;
    } else if (fb->step < 0 || fb->step >= ep->n_steps) {
        s->rewards_unrecorded++;
    } else {
        ep->reward[fb->step] += fb->reward;
        s->rewards_applied++;
    }
    return DS_OK;
}

int traj_end_episode(traj_store *s, int user, long episode, char *err)
{
    if (user < 0 || user >= s->n_users)
        return err_set(err, DS_EINPUT, "user %d is out of range", user);
    int slot = s->open_slot[user];
    if (slot < 0 || s->open[slot]->episode != episode)
        return DS_OK;
    if (done_reserve(s) != DS_OK || by_id_reserve(s, s->n_done + 1) != DS_OK)
        return err_set(err, DS_ENOMEM, "out of memory for completed trajectories");
    traj_episode *ep = s->open[slot];
    /* the last open episode fills the hole */
    traj_episode *last = s->open[--s->n_open];
    s->open[slot] = last;
    s->open_slot[last->user] = slot;
    s->open_slot[user] = -1;
    s->done[(s->done_head + s->n_done++) % s->cap_done] = ep;
    by_id_insert(s, ep);
    return DS_OK;
}

int traj_take(traj_store *s, size_t n, traj_episode **batch, char *err)
{
    if (n > s->n_done)
        return err_set(err, DS_EINPUT, "%zu episodes asked for, %zu completed", n, s->n_done);
    for (size_t i = 0; i < n; i++) {
        traj_episode *ep = s->done[s->done_head];
        s->done_head = (s->done_head + 1) % s->cap_done;
        s->n_done--;
        by_id_remove(s, ep->episode);
        s->steps_held -= (size_t)ep->n_steps;
        s->steps_out += (size_t)ep->n_steps;
        batch[i] = ep;
    }
    return DS_OK;
}

void traj_release(traj_store *s, traj_episode **batch, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!batch[i])
            continue;
        s->steps_out -= (size_t)batch[i]->n_steps;
        traj_episode_free(batch[i]);
        batch[i] = NULL;
    }
}
