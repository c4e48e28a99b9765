/* The environment interface: a const table of functions, registered by name in
 * envs/registry.c. Each environment is one file that defines one env_type.
 *
 * Call order for a run: xCreate; then for each user xNextVisit(user, 0) gives the
 * first arrival; at an arrival xStartSession, then per step xCandidates and xStep
 * until the response says done, then xNextVisit for the next arrival. The engine
 * also calls xAdvance at the times xNextEvent announces (catalogue churn). */
#ifndef DIVSIM_ENV_H
#define DIVSIM_ENV_H

#include "../sim/common.h"
#include "../sim/params.h"
#include "../sim/slate.h"

typedef struct env_type env_type;

/* Every environment struct begins with this. */
typedef struct env {
    const env_type *type;
    env_spec spec;
    char err[ERR_LEN];  /* which invariant the last xStep broke (DS_EINTERNAL), or "" */
} env;

/* The random streams an environment draws from (owned by the engine). */
typedef struct {
    gsl_rng *catalogue, *users, *arrivals, *drift, *choices, *purchases, *item_churn;
    reward_kind reward;  /* so xPrivileged can value a click */
} env_context;

/* The user's answer to one slate. */
typedef struct {
    int click;               /* position clicked, or -1 for no click */
    int item;                /* item clicked, or -1 */
    int purchased;           /* the click becomes a purchase */
    double purchase_delay;   /* hours until the purchase is revealed; 0 = now */
    double revenue;          /* price paid when purchased, else 0 */
    double dwell;            /* hours the step took: the next step comes this much later */
    int done;                /* the session ends after this step */
    int churned;             /* ...and the user never comes back */
} env_response;

struct env_type {
    const char *name;
    int version;
    const char *summary;
    param_table params;
    int clicks_only;  /* no purchases: [reward] kind must be clicks */
    /* Cross-field checks on a filled config (e.g. slate <= items); NULL if none. */
    int (*xValidate)(const void *config, char *err);
    int (*xCreate)(const void *config, const env_context *ctx, env **out, char *err);
    /* Time of the user's next arrival after `now`; INFINITY if the user has churned. */
    int (*xNextVisit)(env *e, int user, double now, double *next);
    /* The user arrives at t: apply drift and decay for the time away. */
    int (*xStartSession)(env *e, int user, double t);
    /* The items the agent may choose from at this step. */
    int (*xCandidates)(env *e, int user, const int **items, int *n);
    /* The user answers the slate (spec.slate distinct items) shown at t. */
    int (*xStep)(env *e, int user, const int *slate, double t, env_response *out);
    /* Time of the environment's next internal event (launch, retirement); INFINITY if none. NULL if none ever. */
    double (*xNextEvent)(const env *e);
    int (*xAdvance)(env *e, double t);
    /* True utilities for the oracle; see privileged_view. */
    int (*xPrivileged)(env *e, int user, const int *items, int n, double *utility,
                       double *value_if_clicked, double *no_click_utility);
    /* Screening bounds for the oracle (privileged_view.bounds); NULL if none. */
    int (*xPrivilegedBounds)(env *e, int user, const int *items, int n,
                             bound_column out[N_BOUNDS]);
    /* True item latents [n_items][*dim], unit norm: for metrics (ILD) only.
     * NULL (or a NULL slot) means items are mutually orthogonal: ILD 1. */
    const double *(*xLatents)(const env *e, int *dim);
    void (*xDestroy)(env *e);
    /* Bytes xCreate would allocate for config (validated), in double so that no
     * size overflows, and the sizes of the env_spec it would give into *shape
     * (its arrays NULL), so that the agent can be estimated before either exists.
     * NULL if unknown: the run's estimate then leaves out the env and the agent. */
    double (*xMemoryEstimate)(const void *config, env_spec *shape);
};

const env_type *env_find(const char *name);

/* The privileged view of environment e for an agent that declares
 * needs_privileged: its true utilities, and its bounds where it offers them
 * (both NULL for an environment without xPrivileged). */
privileged_view env_privileged_view(env *e);
extern const env_type *const env_registry[];
extern const int env_registry_count;

#endif
