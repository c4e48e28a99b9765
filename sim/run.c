/* The discrete-event loop of one run.
 *
 * Every user's next visit is an event. A visit is a session (an episode): the
 * agent shows a slate, the environment answers, and the next step follows after
 * the user's dwell time, so the sessions of many users interleave in simulated
 * time. Delayed purchases, agent retraining and catalogue churn are events too.
 * Episodes are numbered in the order they start; the first train_episodes are
 * the train phase (learning on), the next eval_episodes the eval phase (learning
 * frozen from the moment the first eval session starts). */
#include "run.h"

#include "common.h"
#include "events.h"
#include "rng.h"

#include <gsl/gsl_errno.h>
#include <pthread.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Every user not churned has exactly one visit pending: those live in a heap of
 * their own, 24 bytes a user with the key inline (the general event queue would
 * hold 80, and compare through an indirection), and the general queue keeps the
 * few events in flight (steps, purchases, updates). Both draw their sequence
 * numbers from the general queue's counter, and the loop takes whichever is
 * earlier by (time, seq): the order is exactly that of one queue. */
typedef struct {
    double time;
    uint64_t seq;
    int user;
} visit;

typedef struct {
    visit *heap; /* [cap] binary min-heap by (time, seq) */
    size_t n, cap;
} visit_queue;

static int visit_before(const visit *a, const visit *b)
{
    return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

static void visit_push(visit_queue *q, visit v)
{
    size_t at = q->n++;
    while (at > 0) {
        size_t parent = (at - 1) / 2;
        if (!visit_before(&v, &q->heap[parent]))
            break;
        q->heap[at] = q->heap[parent];
        at = parent;
    }
    q->heap[at] = v;
}

static visit visit_pop(visit_queue *q)
{
    visit top = q->heap[0], last = q->heap[--q->n];
    size_t at = 0;
    for (;;) {
        size_t child = 2 * at + 1;
        if (child >= q->n)
            break;
        if (child + 1 < q->n && visit_before(&q->heap[child + 1], &q->heap[child]))
            child++;
        if (!visit_before(&q->heap[child], &last))
            break;
        q->heap[at] = q->heap[child];
        at = child;
    }
    if (q->n > 0)
        q->heap[at] = last;
    return top;
}

/* What the engine keeps of a user, followed in its record by the history ring:
 * history uint32 entries, newest at history_head, packed (item + 1) * 4 + kind
 * (4 bytes, not 8, an entry). */
typedef struct {
    double last_visit_end; /* NAN before the first visit */
    int active;            /* session slot, or -1 */
    uint8_t history_head, history_len; /* (history <= 64) */
} user_state;

enum { SHOWN_FILTER_BITS = 1024 }; /* two cache lines: a session's is often cold */

/* State of a session in progress. */
typedef struct {
    long episode;
    int user;
    int step;
    double ild_sum, topic_ild_sum, novelty_sum;
    long impressions, repeats;
    long *topic_counts; /* [n_topics] topics shown so far */
    int *shown;         /* [cap_shown] items shown so far, step after step */
    size_t cap_shown;
    /* bit (item mod SHOWN_FILTER_BITS) set once the item is shown: a clear bit
     * settles "not shown before" without the scan of shown */
    uint64_t shown_filter[SHOWN_FILTER_BITS / 64];
} session;

typedef struct {
    const run_spec *spec;
    run_result *res;
    const run_hooks *hooks;
    char *err;

    gsl_rng *rng[RNG_STREAM_END];
    env *env;
    agent *agent;
    const env_spec *es;
    const double *latent;  /* [n_items][latent_dim] true latents, for ILD */
    int latent_dim;
    event_queue queue;
    visit_queue visits;       /* [n_users] at most: the next visit of each user */

    /* per user: one record each, user_state then its history ring, on whole
     * cache lines: with many users, consecutive steps are other users' (sessions
     * interleave), and a step then misses one line of engine state, not five */
    unsigned char *users;     /* [n_users][user_bytes] */
    size_t user_bytes;
    long users_churned;

    /* sessions in progress: a pool of slots */
    session *sessions;        /* [cap_sessions] */
    int *free_sessions;       /* [cap_sessions] stack of free slots */
    int n_free_sessions, cap_sessions;

    /* per item */
    long *clicks;             /* [n_items] clicks so far in the run, for novelty */
    long total_clicks;

    /* episodes and windows */
    long total_episodes, started, ended;
    long pending_visits;      /* session starts scheduled and not yet due */
    long *episode_window;     /* [total_episodes] the window each episode fell into */
    exposure window_acc[2], phase_acc[2];
    long windows_closed[2];   /* per phase */
    long ended_in_phase[2], phase_total[2];

    int *slate;               /* [slate] */
    history_entry *obs_history; /* [history] */
} engine;

static int fail(engine *g, int code, const char *what)
{
    if (g->err[0] == '\0')
        err_set(g->err, code, "%s", what);
    return code;
}

/* An agent's failure, with the agent's own reason when it gave one. */
static int agent_fail(engine *g, int code, const char *what)
{
    if (g->agent->err[0] && g->err[0] == '\0')
        return err_set(g->err, code, "agent '%s': %s", run_agent_name(g->spec), g->agent->err);
    return fail(g, code, what);
}

/* ---- setup and teardown ---- */

static user_state *user_at(const engine *g, int user)
{
    return (user_state *)(void *)(g->users + (size_t)user * g->user_bytes);
}

static uint32_t *user_history(const engine *g, int user)
{
    return (uint32_t *)(void *)(g->users + (size_t)user * g->user_bytes + sizeof(user_state));
}

static int engine_alloc_users(engine *g)
{
    size_t m = (size_t)g->es->n_users, h = (size_t)g->spec->settings.history;
    if (h > UINT8_MAX || (uint64_t)g->es->n_items + 1 > UINT32_MAX / 4)
        return DS_ENOMEM; /* beyond what the packed history holds */
    g->user_bytes = (sizeof(user_state) + h * sizeof(uint32_t) + 63) / 64 * 64;
    g->users = m <= SIZE_MAX / g->user_bytes ? alloc_random_access(m * g->user_bytes) : NULL;
    g->obs_history = malloc((h + 1) * sizeof *g->obs_history);
    g->visits.heap = malloc((m + 1) * sizeof *g->visits.heap);
    g->visits.cap = m;
    if (!g->users || !g->obs_history || !g->visits.heap)
        return DS_ENOMEM;
    for (size_t u = 0; u < m; u++)
        *user_at(g, (int)u) = (user_state){.last_visit_end = NAN, .active = -1};
    return DS_OK;
}

static int engine_alloc_items(engine *g)
{
    int n = g->es->n_items;
    g->clicks = calloc((size_t)n, sizeof *g->clicks);
    g->slate = calloc((size_t)g->es->slate, sizeof *g->slate);
    g->episode_window = calloc((size_t)g->total_episodes + 1, sizeof *g->episode_window);
    g->res->episodes = calloc((size_t)g->total_episodes + 1, sizeof *g->res->episodes);
    /* Each phase closes at most one partial window besides its full ones. */
    size_t windows = (size_t)(g->total_episodes / g->spec->settings.window) + 4;
    g->res->windows = calloc(windows, sizeof *g->res->windows);
    if (!g->clicks || !g->slate || !g->episode_window || !g->res->episodes || !g->res->windows)
        return DS_ENOMEM;
    for (int p = 0; p < 2; p++)
        if (exposure_init(&g->window_acc[p], n) != 0 || exposure_init(&g->phase_acc[p], n) != 0)
            return DS_ENOMEM;
    return DS_OK;
}

static int log_update(void *ctx, const update_row *row)
{
    run_result *res = ctx;
    if (res->n_updates == res->cap_updates) {
        size_t cap = res->cap_updates ? 2 * res->cap_updates : 64;
        update_row *grown = realloc(res->updates, cap * sizeof *grown);
        if (!grown)
            return DS_ENOMEM;
        res->updates = grown;
        res->cap_updates = cap;
    }
    res->updates[res->n_updates++] = *row;
    return DS_OK;
}

static int engine_create_modules(engine *g)
{
    const run_spec *r = g->spec;
    for (int s = 1; s < RNG_STREAM_END; s++)
        if (!(g->rng[s] = rng_stream_new(r->seed, (rng_stream)s)))
            return fail(g, DS_ENOMEM, "out of memory for random streams");
    env_context ec = {
        .catalogue = g->rng[RNG_CATALOGUE], .users = g->rng[RNG_USERS],
        .arrivals = g->rng[RNG_ARRIVALS], .drift = g->rng[RNG_DRIFT],
        .choices = g->rng[RNG_CHOICES], .purchases = g->rng[RNG_PURCHASES],
        .item_churn = g->rng[RNG_ITEM_CHURN], .reward = (reward_kind)r->settings.reward,
    };
    int rc = r->env->xCreate(r->env_config, &ec, &g->env, g->err);
    if (rc != DS_OK)
        return rc;
    g->env->type = r->env;
    g->es = &g->env->spec;
    g->latent = r->env->xLatents ? r->env->xLatents(g->env, &g->latent_dim) : NULL;
    agent_context ac = {
        .seed = r->seed, .init = g->rng[RNG_AGENT_INIT], .sampling = g->rng[RNG_AGENT_SAMPLING],
        .minibatch = g->rng[RNG_MINIBATCH], .reward = (reward_kind)r->settings.reward,
        .log_update = log_update, .log_ctx = g->res,
    };
    if (r->agent->needs_privileged)
        ac.privileged = env_privileged_view(g->env);
    rc = r->agent->xCreate(r->agent_config, g->es, &ac, &g->agent, g->err);
    if (rc != DS_OK)
        return rc;
    g->agent->type = r->agent;
    g->agent->spec = g->es;
    g->agent->learning = r->settings.train_episodes > 0;
    return DS_OK;
}

static void engine_destroy(engine *g)
{
    if (g->agent)
        g->agent->type->xDestroy(g->agent);
    if (g->env)
        g->env->type->xDestroy(g->env);
    for (int s = 1; s < RNG_STREAM_END; s++)
        gsl_rng_free(g->rng[s]);
    events_free(&g->queue);
    free(g->visits.heap);
    for (int i = 0; i < g->cap_sessions; i++) {
        free(g->sessions[i].topic_counts);
        free(g->sessions[i].shown);
    }
    free(g->sessions);
    free(g->free_sessions);
    free(g->users);
    free(g->obs_history);
    free(g->clicks);
    free(g->slate);
    free(g->episode_window);
    for (int p = 0; p < 2; p++) {
        exposure_free(&g->window_acc[p]);
        exposure_free(&g->phase_acc[p]);
    }
}

/* ---- sessions ---- */

static int session_grow(engine *g)
{
    int old = g->cap_sessions, cap = old ? 2 * old : 16;
    session *s = realloc(g->sessions, (size_t)cap * sizeof *s);
    if (!s)
        return DS_ENOMEM;
    g->sessions = s;
    int *f = realloc(g->free_sessions, (size_t)cap * sizeof *f);
    if (!f)
        return DS_ENOMEM;
    g->free_sessions = f;
    for (int i = old; i < cap; i++) {
        s[i] = (session){0};
        g->cap_sessions = i + 1; /* teardown frees whatever was allocated */
        s[i].topic_counts = malloc((size_t)g->es->n_topics * sizeof(long));
        if (!s[i].topic_counts)
            return DS_ENOMEM;
    }
    for (int i = cap - 1; i >= old; i--)
        g->free_sessions[g->n_free_sessions++] = i;
    return DS_OK;
}

static int session_open(engine *g, int user, long episode, int *slot)
{
    if (g->n_free_sessions == 0 && session_grow(g) != DS_OK)
        return DS_ENOMEM;
    *slot = g->free_sessions[--g->n_free_sessions];
    session *s = &g->sessions[*slot];
    s->episode = episode;
    s->user = user;
    s->step = 0;
    s->ild_sum = s->topic_ild_sum = s->novelty_sum = 0.0;
    s->impressions = s->repeats = 0;
    memset(s->topic_counts, 0, (size_t)g->es->n_topics * sizeof(long));
    memset(s->shown_filter, 0, sizeof s->shown_filter);
    user_at(g, user)->active = *slot;
    return DS_OK;
}

static void session_close(engine *g, int slot)
{
    user_at(g, g->sessions[slot].user)->active = -1;
    g->free_sessions[g->n_free_sessions++] = slot;
}

/* ---- per-user history ---- */

static void history_push(engine *g, int user, int item, history_kind kind)
{
    int h = g->spec->settings.history;
    if (h == 0)
        return;
    user_state *u = user_at(g, user);
    int head = (u->history_head + 1) % h;
    user_history(g, user)[head] = ((uint32_t)(item + 1) << 2) | (uint32_t)kind;
    u->history_head = (uint8_t)head;
    if (u->history_len < h)
        u->history_len++;
}

/* Copies the user's history, newest first, into the observation buffer. */
static int history_copy(engine *g, int user)
{
    const user_state *u = user_at(g, user);
    const uint32_t *ring = user_history(g, user);
    int h = g->spec->settings.history, n = u->history_len;
    for (int i = 0; i < n; i++) {
        int at = (u->history_head - i + h) % h;
        uint32_t packed = ring[at];
        g->obs_history[i] = (history_entry){(int)(packed >> 2) - 1, (int)(packed & 3)};
    }
    return n;
}

/* ---- metrics of a step ---- */

static phase episode_phase(const engine *g, long episode)
{
    return episode < g->spec->settings.train_episodes ? PHASE_TRAIN : PHASE_EVAL;
}

/* Novelty of an item: -log2 of its click popularity so far, Laplace-smoothed:
 * p_i = (clicks_i + 1) / (total clicks + n_items). */
static double item_novelty(const engine *g, int item)
{
    double p = (g->clicks[item] + 1.0) / ((double)g->total_clicks + g->es->n_items);
    return -log2(p);
}

/* 1 if item was shown in an earlier step of the session. */
static int shown_before(const session *s, int k, int item)
{
    unsigned bit = (unsigned)item % SHOWN_FILTER_BITS;
    if (!(s->shown_filter[bit / 64] >> (bit % 64) & 1))
        return 0;
    size_t n = (size_t)s->step * k;
    for (size_t i = 0; i < n; i++)
        if (s->shown[i] == item)
            return 1;
    return 0;
}

/* Makes room for one more slate in s->shown. */
static int shown_reserve(session *s, int k)
{
    size_t need = (size_t)(s->step + 1) * k;
    if (need <= s->cap_shown)
        return DS_OK;
    size_t cap = s->cap_shown ? 2 * s->cap_shown : 8 * (size_t)k;
    int *grown = realloc(s->shown, cap * sizeof *grown);
    if (!grown)
        return DS_ENOMEM;
    s->shown = grown;
    s->cap_shown = cap;
    return DS_OK;
}

static void record_slate(engine *g, session *s, const int *slate, double ild)
{
    int k = g->es->slate;
    s->ild_sum += ild;
    s->topic_ild_sum += metrics_topic_ild(g->es->item_topic, slate, k);
    for (int j = 0; j < k; j++) {
        int item = slate[j];
        s->novelty_sum += item_novelty(g, item);
        s->topic_counts[g->es->item_topic[item]]++;
        s->repeats += shown_before(s, k, item);
    }
    for (int j = 0; j < k; j++) {
        unsigned bit = (unsigned)slate[j] % SHOWN_FILTER_BITS;
        s->shown_filter[bit / 64] |= UINT64_C(1) << (bit % 64);
    }
    memcpy(s->shown + (size_t)s->step * k, slate, (size_t)k * sizeof *slate);
    s->impressions += k;
}

/* The unshaped reward of a purchase revealed now, or of a click. */
static double purchase_reward(const engine *g, double revenue)
{
    switch ((reward_kind)g->spec->settings.reward) {
    case REWARD_PURCHASES: return 1.0;
    case REWARD_REVENUE: return revenue;
    case REWARD_CLICKS: return 0.0;
    }
    return 0.0;
}

/* Every slate must hold spec.slate distinct items of the catalogue. */
static int check_slate(const engine *g, const int *slate)
{
    int k = g->es->slate;
    for (int j = 0; j < k; j++) {
        if (slate[j] < 0 || slate[j] >= g->es->n_items)
            return err_set(g->err, DS_EINTERNAL, "agent '%s' chose item %d, not in the catalogue",
                           run_agent_name(g->spec), slate[j]);
        for (int i = 0; i < j; i++)
            if (slate[i] == slate[j])
                return err_set(g->err, DS_EINTERNAL,
                               "agent '%s' chose item %d twice in one slate",
                               run_agent_name(g->spec), slate[j]);
    }
    return DS_OK;
}

/* ---- the interaction log ---- */

/* array, grown to hold need elements of size bytes (*cap updated); NULL, with
 * array still valid, when out of memory. */
static void *grow(void *array, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return array;
    size_t cap2 = *cap ? 2 * *cap : 1024;
    while (cap2 < need)
        cap2 *= 2;
    void *grown = realloc(array, cap2 * size);
    if (grown)
        *cap = cap2;
    return grown;
}

/* Appends row (and slate, for a step) to the run's log when the run keeps one. */
static int log_interaction(engine *g, interaction_row row, const int *slate)
{
    run_result *res = g->res;
    if (!g->spec->settings.log_interactions)
        return DS_OK;
    int k = g->es->slate;
    row.slate_at = -1;
    if (slate) {
        int *slates = grow(res->slates, &res->cap_slates, (res->n_slates + 1) * (size_t)k,
                           sizeof *res->slates);
        if (!slates)
            return fail(g, DS_ENOMEM, "out of memory for the interaction log");
        res->slates = slates;
        row.slate_at = (long)(res->n_slates * (size_t)k);
        memcpy(res->slates + row.slate_at, slate, (size_t)k * sizeof *slate);
        res->n_slates++;
    }
    interaction_row *rows = grow(res->interactions, &res->cap_interactions,
                                 res->n_interactions + 1, sizeof *res->interactions);
    if (!rows)
        return fail(g, DS_ENOMEM, "out of memory for the interaction log");
    res->interactions = rows;
    row.seq = (long)res->n_interactions;
    res->slate_len = k;
    res->interactions[res->n_interactions++] = row;
    return DS_OK;
}

/* ---- events ---- */

static int schedule(engine *g, event_type type, double t, int user, long episode)
{
    event ev = {.time = t, .type = type, .user = user, .episode = episode};
    if (events_schedule(&g->queue, &ev, NULL) != DS_OK)
        return fail(g, DS_ENOMEM, "out of memory for the event queue");
    return DS_OK;
}

static int schedule_next_visit(engine *g, int user, double now)
{
    double next;
    int rc = g->env->type->xNextVisit(g->env, user, now, &next);
    if (rc != DS_OK)
        return fail(g, rc, "environment failed to schedule a visit");
    if (!isfinite(next))
        return DS_OK; /* churned */
    if (g->visits.n == g->visits.cap)
        return fail(g, DS_EINTERNAL, "a user has two visits pending");
    g->pending_visits++;
    visit_push(&g->visits, (visit){.time = next, .seq = g->queue.next_seq++, .user = user});
    return DS_OK;
}

static void close_window(engine *g, phase ph, double t)
{
    exposure *acc = &g->window_acc[ph];
    window_row *row = &g->res->windows[g->res->n_windows++];
    *row = (window_row){.window = g->windows_closed[ph]++, .phase = ph, .sim_time = t};
    exposure_summarise(acc, g->users_churned, g->es->n_users, row);
    exposure_reset(acc);
}

static int end_session(engine *g, int slot, double t, int churned)
{
    session *s = &g->sessions[slot];
    episode_row *e = &g->res->episodes[s->episode];
    phase ph = e->phase;
    double steps = e->length > 0 ? e->length : 1;
    e->end_time = t;
    e->ild = s->ild_sum / steps;
    e->topic_ild = s->topic_ild_sum / steps;
    e->topic_entropy = metrics_entropy(s->topic_counts, g->es->n_topics);
    e->novelty = s->impressions ? s->novelty_sum / s->impressions : 0.0;
    e->repeat_rate = s->impressions ? (double)s->repeats / s->impressions : 0.0;
    e->churned = churned;
    int user = s->user;
    long episode = s->episode;
    user_at(g, user)->last_visit_end = t;
    g->users_churned += churned;
    g->ended++;

    /* The episode's impressions count in the window it ends in, with it. */
    long impressions = (long)e->length * g->es->slate;
    g->episode_window[episode] = g->windows_closed[ph];
    exposure_add_impressions(&g->window_acc[ph], s->shown, impressions);
    exposure_add_impressions(&g->phase_acc[ph], s->shown, impressions);
    exposure_add_episode(&g->window_acc[ph], e);
    exposure_add_episode(&g->phase_acc[ph], e);
    g->ended_in_phase[ph]++;
    if (g->window_acc[ph].episodes == g->spec->settings.window ||
        g->ended_in_phase[ph] == g->phase_total[ph])
        close_window(g, ph, t);
    session_close(g, slot);

    if (g->agent->type->xEndEpisode) {
        int rc = g->agent->type->xEndEpisode(g->agent, user, episode);
        if (rc != DS_OK)
            return agent_fail(g, rc, "agent failed at the end of an episode");
    }
    if (g->hooks && g->hooks->on_episode)
        g->hooks->on_episode(g->hooks->ctx, g->ended, g->total_episodes);
    return churned ? DS_OK : schedule_next_visit(g, user, t);
}

static int agent_observe(engine *g, const feedback *fb)
{
    if (!g->agent->type->xObserve)
        return DS_OK;
    int rc = g->agent->type->xObserve(g->agent, fb);
    return rc == DS_OK ? rc : agent_fail(g, rc, "agent failed to observe feedback");
}

static int do_step(engine *g, int slot, double t)
{
    session *s = &g->sessions[slot];
    const env_type *et = g->env->type;
    int user = s->user, k = g->es->slate;
    observation obs = {.user = user, .episode = s->episode, .step = s->step, .time = t,
                       .history = g->obs_history};
    double last = user_at(g, user)->last_visit_end;
    obs.since_last_visit = isnan(last) ? INFINITY : t - last;
    obs.history_len = history_copy(g, user);
    int rc = et->xCandidates(g->env, user, &obs.candidates, &obs.n_candidates);
    if (rc != DS_OK)
        return fail(g, rc, "environment failed to offer candidates");
    if (obs.n_candidates < k)
        return err_set(g->err, DS_EINPUT, "only %d candidates for a slate of %d",
                       obs.n_candidates, k);
    g->agent->slate_logp = NAN; /* unknown unless the agent says */
    rc = g->agent->type->xAct(g->agent, &obs, g->slate);
    if (rc != DS_OK)
        return agent_fail(g, rc, "agent failed to choose a slate");
    if ((rc = check_slate(g, g->slate)) != DS_OK)
        return rc;

    env_response r;
    g->env->err[0] = '\0';
    if ((rc = et->xStep(g->env, user, g->slate, t, &r)) == DS_EINTERNAL)
        return err_set(g->err, rc, "environment '%s' broke one of its invariants at a step: "
                       "%s", et->name, g->env->err[0] ? g->env->err
                       : "a probability outside [0, 1] or a utility that is not finite");
    if (rc != DS_OK)
        return err_set(g->err, rc, "environment '%s' refused the slate of agent '%s' "
                       "(an item that is not among the candidates?)",
                       et->name, g->agent->type->name);
    if (shown_reserve(s, k) != DS_OK)
        return fail(g, DS_ENOMEM, "out of memory for a session's impressions");
    g->res->steps++;
    /* Without latents (bandit) items are mutually orthogonal: distinct items, ILD 1. */
    double ild = g->latent ? metrics_ild(g->latent, g->latent_dim, g->slate, k)
                           : (k > 1 ? 1.0 : 0.0);
    record_slate(g, s, g->slate, ild);

    episode_row *e = &g->res->episodes[s->episode];
    int purchased_now = r.purchased && r.purchase_delay <= 0.0;
    double raw = 0.0;
    if (r.item >= 0) {
        e->clicks++;
        g->clicks[r.item]++;
        g->total_clicks++;
        if (g->spec->settings.reward == REWARD_CLICKS)
            raw += 1.0;
        history_push(g, user, r.item, HIST_CLICK);
    } else {
        history_push(g, user, -1, HIST_SKIP);
    }
    if (purchased_now) {
        e->purchases++;
        e->revenue += r.revenue;
        raw += purchase_reward(g, r.revenue);
        history_push(g, user, r.item, HIST_PURCHASE);
    } else if (r.purchased) {
        event ev = {.time = t + r.purchase_delay, .type = EV_PURCHASE, .user = user,
                    .item = r.item, .episode = s->episode, .step = s->step,
                    .value = r.revenue};
        if (events_schedule(&g->queue, &ev, NULL) != DS_OK)
            return fail(g, DS_ENOMEM, "out of memory for the event queue");
    }
    interaction_row row = {.kind = INTERACTION_STEP, .phase = e->phase,
                           .episode = s->episode, .user = user, .step = s->step, .time = t,
                           .click = r.click, .item = r.item, .purchased = purchased_now,
                           .logp = g->agent->slate_logp};
    if ((rc = log_interaction(g, row, g->slate)) != DS_OK)
        return rc;
    double shaped = raw + g->spec->settings.diversity_bonus * ild;
    e->length++;
    e->reward += raw;
    e->shaped_reward += shaped;

    int done = r.done || s->step + 1 >= g->es->max_steps;
    feedback fb = {.kind = FEEDBACK_STEP, .user = user, .episode = s->episode,
                   .step = s->step, .time = t, .slate = g->slate, .slate_len = k,
                   .click = r.click, .item = r.item, .purchased = purchased_now,
                   .reward = shaped, .raw_reward = raw, .done = done};
    if ((rc = agent_observe(g, &fb)) != DS_OK)
        return rc;
    s->step++;
    if (done)
        return end_session(g, slot, t, r.churned);
    event ev = {.time = t + r.dwell, .type = EV_STEP, .user = user, .episode = s->episode};
    if (events_schedule(&g->queue, &ev, NULL) != DS_OK)
        return fail(g, DS_ENOMEM, "out of memory for the event queue");
    return DS_OK;
}

static int start_session(engine *g, int user, double t)
{
    if (g->started == g->total_episodes || user_at(g, user)->active >= 0)
        return DS_OK; /* enough sessions started: the user does not come back */
    long episode = g->started++;
    g->episode_window[episode] = -1; /* in progress */
    g->res->episodes[episode] = (episode_row){.episode = episode,
                                              .phase = episode_phase(g, episode),
                                              .user = user, .start_time = t};
    if (episode == g->spec->settings.train_episodes)
        g->agent->learning = 0;
    int rc = g->env->type->xStartSession(g->env, user, t);
    if (rc != DS_OK)
        return fail(g, rc, "environment failed to start a session");
    int slot;
    if (session_open(g, user, episode, &slot) != DS_OK)
        return fail(g, DS_ENOMEM, "out of memory for sessions");
    return do_step(g, slot, t);
}

/* A purchase revealed after its step: credited to its episode. */
static int reveal_purchase(engine *g, const event *ev)
{
    episode_row *e = &g->res->episodes[ev->episode];
    double raw = purchase_reward(g, ev->value);
    e->purchases++;
    e->revenue += ev->value;
    e->reward += raw;
    e->shaped_reward += raw;
    history_push(g, ev->user, ev->item, HIST_PURCHASE);
    interaction_row row = {.kind = INTERACTION_LATE_PURCHASE, .phase = e->phase,
                           .episode = ev->episode, .user = ev->user, .step = ev->step,
                           .time = ev->time, .click = -1, .item = ev->item, .purchased = 1,
                           .logp = NAN};
    int rc = log_interaction(g, row, NULL);
    if (rc != DS_OK)
        return rc;
    feedback fb = {.kind = FEEDBACK_LATE_PURCHASE, .user = ev->user, .episode = ev->episode,
                   .step = ev->step, .time = ev->time, .click = -1, .item = ev->item,
                   .purchased = 1, .reward = raw, .raw_reward = raw};
    return agent_observe(g, &fb);
}

static int agent_update(engine *g, double t)
{
    if (!g->agent->learning)
        return DS_OK; /* frozen: no more retraining */
    int rc = g->agent->type->xUpdate(g->agent, t);
    if (rc != DS_OK)
        return agent_fail(g, rc, "agent update failed");
    return schedule(g, EV_AGENT_UPDATE, t + g->agent->update_every, -1, -1);
}

static int env_event(engine *g, double t)
{
    int rc = g->env->type->xAdvance(g->env, t);
    if (rc != DS_OK)
        return fail(g, rc, "environment failed to advance");
    double next = g->env->type->xNextEvent(g->env);
    return isfinite(next) ? schedule(g, EV_ENV_EVENT, next, -1, -1) : DS_OK;
}

static int dispatch(engine *g, const event *ev)
{
    switch (ev->type) {
    case EV_SESSION_START: g->pending_visits--; return start_session(g, ev->user, ev->time);
    case EV_STEP: return do_step(g, user_at(g, ev->user)->active, ev->time);
    case EV_PURCHASE: return reveal_purchase(g, ev);
    case EV_AGENT_UPDATE: return agent_update(g, ev->time);
    case EV_ENV_EVENT: return env_event(g, ev->time);
    }
    return fail(g, DS_EINTERNAL, "unknown event");
}

static int schedule_initial(engine *g)
{
    int rc = DS_OK;
    for (int u = 0; u < g->es->n_users && rc == DS_OK; u++)
        rc = schedule_next_visit(g, u, 0.0);
    if (rc == DS_OK && g->agent->update_every > 0 && g->agent->type->xUpdate &&
        g->agent->learning)
        rc = schedule(g, EV_AGENT_UPDATE, g->agent->update_every, -1, -1);
    if (rc == DS_OK && g->env->type->xNextEvent) {
        double next = g->env->type->xNextEvent(g->env);
        if (isfinite(next))
            rc = schedule(g, EV_ENV_EVENT, next, -1, -1);
    }
    return rc;
}

/* Sessions can still happen: one is in progress or a visit is scheduled. (Agent
 * updates and catalogue events alone would go on for ever once every user has
 * churned.) */
static int sessions_possible(const engine *g)
{
    return g->started > g->ended || g->pending_visits > 0;
}

/* Runs events until every episode has ended (or every user has churned), then
 * reveals the purchases still pending (they were decided during the run; only
 * their news was late). */
/* The earliest event of both queues into ev; 0, or -1 when both are empty. */
static int next_event(engine *g, event *ev)
{
    const event *top = events_peek(&g->queue);
    const visit *v = g->visits.n ? &g->visits.heap[0] : NULL;
    if (v && (!top || v->time < top->time || (v->time == top->time && v->seq < top->seq))) {
        visit due = visit_pop(&g->visits);
        *ev = (event){.time = due.time, .seq = due.seq, .type = EV_SESSION_START,
                      .user = due.user, .item = -1, .episode = -1};
        return 0;
    }
    return events_pop(&g->queue, ev);
}

static int event_loop(engine *g)
{
    event ev;
    while (g->ended < g->total_episodes && sessions_possible(g) && next_event(g, &ev) == 0) {
        g->res->sim_time = ev.time;
        int rc = dispatch(g, &ev);
        if (rc != DS_OK)
            return rc;
        if (g->hooks && g->hooks->stop && *g->hooks->stop) {
            g->res->status = RUN_INTERRUPTED;
            return DS_OK;
        }
    }
    while (events_pop(&g->queue, &ev) == 0) {
        int rc = ev.type == EV_PURCHASE ? reveal_purchase(g, &ev) : DS_OK;
        if (rc != DS_OK)
            return rc;
    }
    return DS_OK;
}

static int by_phase_then_window(const void *a, const void *b)
{
    const window_row *x = a, *y = b;
    if (x->phase != y->phase)
        return x->phase < y->phase ? -1 : 1;
    return (x->window > y->window) - (x->window < y->window);
}

/* Closes the windows a stopped run left open and adds the whole-phase rows. */
static void close_phases(engine *g)
{
    run_result *res = g->res;
    for (int p = 0; p < 2; p++) {
        if (g->window_acc[p].episodes > 0)
            close_window(g, (phase)p, res->sim_time);
        if (g->phase_acc[p].episodes > 0) {
            window_row *row = &res->phases[res->n_phases++];
            *row = (window_row){.window = -1, .phase = (phase)p, .sim_time = res->sim_time};
            exposure_summarise(&g->phase_acc[p], g->users_churned, g->es->n_users, row);
        }
    }
    qsort(res->windows, res->n_windows, sizeof *res->windows, by_phase_then_window);
}

/* Keeps the episodes that ended (a stopped run drops those in progress) and
 * recomputes each window's and phase's mean reward from them, so that purchases
 * revealed after a window closed still count. */
static void finish_episodes(engine *g)
{
    run_result *res = g->res;
    for (size_t w = 0; w < res->n_windows; w++)
        res->windows[w].reward = 0.0;
    for (size_t p = 0; p < res->n_phases; p++)
        res->phases[p].reward = 0.0;
    size_t kept = 0;
    for (long i = 0; i < g->started; i++) {
        const episode_row *e = &res->episodes[i];
        if (g->episode_window[i] < 0)
            continue;
        long offset = e->phase == PHASE_EVAL ? g->windows_closed[PHASE_TRAIN] : 0;
        window_row *w = &res->windows[g->episode_window[i] + offset];
        w->reward += e->reward / (double)w->episodes;
        for (size_t p = 0; p < res->n_phases; p++)
            if (res->phases[p].phase == e->phase)
                res->phases[p].reward += e->reward / (double)res->phases[p].episodes;
        res->episodes[kept++] = *e;
    }
    res->n_episodes = kept;
}

/* OpenBLAS's own threads would fight the parallel runs for cores and only add
 * overhead at these sizes: a run is single-threaded, parallelism is across runs. */
void openblas_set_num_threads(int n);

static void single_threaded_blas(void)
{
    openblas_set_num_threads(1);
}

int run_execute(const run_spec *r, const run_hooks *hooks, run_result *res, char *err)
{
    static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
    pthread_once(&blas_once, single_threaded_blas);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    gsl_set_error_handler_off();
    *res = (run_result){.status = RUN_DONE};
    err[0] = '\0';
    engine g = {.spec = r, .res = res, .hooks = hooks, .err = err};
    g.total_episodes = (long)r->settings.train_episodes + r->settings.eval_episodes;
    g.phase_total[PHASE_TRAIN] = r->settings.train_episodes;
    g.phase_total[PHASE_EVAL] = r->settings.eval_episodes;
    int rc = engine_create_modules(&g);
    if (rc == DS_OK && (engine_alloc_users(&g) != DS_OK || engine_alloc_items(&g) != DS_OK ||
                        events_init(&g.queue, 256) != DS_OK))
        rc = fail(&g, DS_ENOMEM, "out of memory for the run's state");
    if (rc == DS_OK)
        rc = schedule_initial(&g);
    if (rc == DS_OK)
        rc = event_loop(&g);
    if (rc == DS_OK && g.ended < g.total_episodes && res->status == RUN_DONE)
        snprintf(res->message, sizeof res->message,
                 "every user churned after %ld of %ld episodes", g.ended, g.total_episodes);
    if (g.res->episodes && g.episode_window && g.res->windows) {
        close_phases(&g);
        finish_episodes(&g);
    }
    if (rc == DS_ENUMERIC)
        res->status = RUN_DIVERGED;
    else if (rc != DS_OK)
        res->status = RUN_FAILED;
    if (rc != DS_OK)
        snprintf(res->message, sizeof res->message, "%s", err);
    engine_destroy(&g);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    res->wall_seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return rc == DS_ENUMERIC ? DS_OK : rc;
}

void run_result_free(run_result *res)
{
    free(res->episodes);
    free(res->windows);
    free(res->updates);
    free(res->interactions);
    free(res->slates);
    *res = (run_result){0};
}
