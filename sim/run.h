/* Executing one run: the discrete-event loop that drives an environment and an
 * agent through train then eval episodes and collects every metric. */
#ifndef DIVSIM_RUN_H
#define DIVSIM_RUN_H

#include "config.h"
#include "metrics.h"

#include <signal.h>

typedef enum {
    RUN_DONE = 0,
    RUN_FAILED,
    RUN_DIVERGED,
    RUN_INTERRUPTED,
    RUN_RUNNING
} run_status;
const char *run_status_name(run_status s);

/* One line of the interaction log: a slate shown (INTERACTION_STEP), or a
 * purchase revealed after its step (INTERACTION_LATE_PURCHASE). In the order
 * of seq, a user's rows replay exactly the engine's history pushes: a step
 * pushes HIST_CLICK of item (or HIST_SKIP when item < 0), then HIST_PURCHASE of
 * item when purchased; a late purchase pushes HIST_PURCHASE of item. A step's
 * observation held the entries pushed before it, newest first, the newest
 * `history` of them. */
typedef enum { INTERACTION_STEP = 0, INTERACTION_LATE_PURCHASE = 1 } interaction_kind;

typedef struct {
    long seq;           /* 0, 1, 2, ... in the order the engine recorded them */
    int kind;           /* interaction_kind */
    int phase;          /* phase of the episode */
    long episode;
    int user;
    int step;           /* the step, or the step the late purchase belongs to */
    double time;        /* simulated hours: when shown, or when the purchase arrived */
    long slate_at;      /* run_result.slates + slate_at: the k items shown; -1
                           for a late purchase */
    int click;          /* position clicked, or -1 (-1 for late purchases) */
    int item;           /* item clicked or bought, or -1 */
    int purchased;      /* step: bought at once; late purchase: 1 */
    double logp;        /* the agent's slate_logp (NAN unknown or late purchase) */
} interaction_row;

/* Everything a run produced, stored in one transaction at its end. */
typedef struct {
    run_status status;
    char message[512];          /* why it failed, if it did */
    episode_row *episodes;      /* [n_episodes] in episode order */
    size_t n_episodes;
    window_row *windows;        /* [n_windows] train windows, then eval windows */
    size_t n_windows;
    window_row phases[2];       /* whole-phase summaries; .window = -1 */
    size_t n_phases;
    update_row *updates;        /* [n_updates] training diagnostics */
    size_t n_updates, cap_updates;
    interaction_row *interactions; /* [n_interactions] when the run logs them */
    size_t n_interactions, cap_interactions;
    int *slates;                /* [n_slates][slate_len] the slates of the step rows */
    size_t n_slates, cap_slates;
    int slate_len;              /* k */
    double sim_time;            /* simulated hours at the end */
    long steps;                 /* env steps taken */
    double wall_seconds;
} run_result;

/* Called as episodes finish so a front end can draw progress; may be NULL. */
typedef struct {
    void (*on_episode)(void *ctx, long done, long total);
    void *ctx;
    volatile sig_atomic_t *stop;  /* when set non-zero, the run stops as interrupted */
} run_hooks;

/* Executes r. Returns DS_OK when the run ended (res->status says how: done,
 * diverged or interrupted), or an error code with err filled (res->status =
 * RUN_FAILED). A run in which every user churned before all episodes ended is
 * done, with res->message saying so. */
int run_execute(const run_spec *r, const run_hooks *hooks, run_result *res, char *err);

void run_result_free(run_result *res);

#endif
