/* The vocabulary shared by the engine, environments and agents: what an agent may
 * know of the catalogue, what it observes before choosing a slate, and the
 * feedback it receives afterwards. Environments and agents include this header,
 * never each other. */
#ifndef DIVSIM_SLATE_H
#define DIVSIM_SLATE_H

#include <gsl/gsl_rng.h>

/* Public facts of an environment, fixed for the run. */
typedef struct {
    int n_items;            /* item ids are 0 .. n_items-1 (capacity, with churn) */
    int n_users;            /* user ids are 0 .. n_users-1 */
    int slate;              /* k: items per slate, distinct */
    int n_topics;
    int max_steps;          /* hard cap on steps in a session */
    const int *item_topic;     /* [n_items] public topic of each item */
    const double *item_price;  /* [n_items] public price of each item */
} env_spec;

/* What the engine remembers of a user's recent steps, newest first. */
typedef enum { HIST_SKIP = 0, HIST_CLICK = 1, HIST_PURCHASE = 2 } history_kind;
typedef struct {
    int item;  /* the item clicked or bought; -1 for a step without a click */
    int kind;  /* history_kind */
} history_entry;

typedef enum { REWARD_PURCHASES = 0, REWARD_REVENUE = 1, REWARD_CLICKS = 2 } reward_kind;

/* What an agent sees before it picks a slate. */
typedef struct {
    int user;
    long episode;              /* index of this session in the run */
    int step;                  /* 0-based step within the session */
    double time;               /* simulated hours */
    double since_last_visit;   /* hours since the user's previous session ended; INFINITY on a first visit */
    const int *candidates;     /* [n_candidates] items offered now (the catalogue for shop) */
    int n_candidates;
    const history_entry *history; /* [history_len] newest first */
    int history_len;
} observation;

typedef enum {
    FEEDBACK_STEP = 0,         /* the response to a slate */
    FEEDBACK_LATE_PURCHASE = 1 /* a delayed purchase arriving after its step */
} feedback_kind;

/* What an agent learns after acting (xObserve). */
typedef struct {
    feedback_kind kind;
    int user;
    long episode;
    int step;              /* the step the feedback belongs to */
    double time;           /* when the feedback arrives */
    const int *slate;      /* [slate_len] the slate shown (FEEDBACK_STEP only) */
    int slate_len;
    int click;             /* position clicked in the slate, or -1 */
    int item;              /* item clicked (or bought, for a late purchase), or -1 */
    int purchased;         /* a purchase is revealed with this feedback */
    double reward;         /* shaped reward: what learning agents optimise */
    double raw_reward;     /* the unshaped reward of the chosen reward kind */
    int done;              /* the session ended after this step */
} feedback;

/* The screening bounds of privileged_view.bounds, in this order:
 *     v_i <= utility_hi,  -v_i <= neg_utility_hi,  log r_i <= log_ratio_hi,
 *     v_i + log r_i <= log_value_hi    (log 0 = -Inf) */
enum { BOUND_UTILITY, BOUND_NEG_UTILITY, BOUND_LOG_RATIO, BOUND_LOG_VALUE, N_BOUNDS };

/* One bound of n items and its summary for scans: group_max[8 g + l] is the
 * largest of hi[64 g + 8 v + l] over v < 8, +Inf if one of them is NaN, -Inf
 * past n (vm_group_max_singles in sim/vecmath.h, VM_GROUP = 64). */
typedef struct {
    float *hi;        /* [n] */
    float *group_max; /* [8 ceil(n / 64)] */
} bound_column;

/* Access to an environment's true model, handed only to agents that declare
 * needs_privileged (the oracle). For each item: its current MNL utility for the
 * user (without position bias) and its expected reward if clicked; and the
 * utility of not clicking. Any output may be NULL.
 *
 * bounds, NULL where the environment offers none: for each item, cheap upper
 * bounds as singles, with their summaries (every column of out written), proven
 * for the very doubles utilities would give now (v_i the utility, r_i >= 0 the
 * value_if_clicked), NaN where none can be given. An item's values from
 * utilities do not depend on which other items are asked with it, so a caller
 * may screen with the bounds and ask for the few items that can matter.
 * Returns 1 when the bounds are written, 0 when the environment cannot bound
 * now (ask utilities for all), or an error code. */
typedef struct {
    void *ctx;
    int (*utilities)(void *ctx, int user, const int *items, int n, double *utility,
                     double *value_if_clicked, double *no_click_utility);
    int (*bounds)(void *ctx, int user, const int *items, int n, bound_column out[N_BOUNDS]);
} privileged_view;

#endif
