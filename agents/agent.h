/* The agent interface: a const table of functions, registered by name in
 * agents/registry.c. Each agent is one file that defines one agent_type; adding
 * one is copying a file, renaming it, and adding a line to the registry.
 *
 * Call order: xCreate; per step xAct then xObserve (FEEDBACK_STEP); xObserve again
 * for late purchases; xEndEpisode when a session ends; xUpdate every
 * `update_every` simulated hours while learning. When the engine clears
 * `learning` (eval phase) the agent must keep its parameters frozen. */
#ifndef DIVSIM_AGENT_H
#define DIVSIM_AGENT_H

#include "../sim/common.h"
#include "../sim/params.h"
#include "../sim/slate.h"

typedef struct agent_type agent_type;

/* Every agent struct begins with this. */
typedef struct agent {
    const agent_type *type;
    const env_spec *spec;
    int learning;        /* set by the engine: 1 in train, 0 in eval */
    double update_every; /* hours between xUpdate calls; 0 = never scheduled */
    char err[ERR_LEN];   /* why the last xAct, xObserve or xUpdate failed */
    /* Set by xAct: the natural log of the probability with which the agent's
     * behaviour policy chose this ordered slate given the observation (0 for a
     * deterministic choice). The engine sets it to NAN before each xAct, so an
     * agent that cannot tell leaves it unknown. Logged with the interactions,
     * for off-policy estimates from the logs. */
    double slate_logp;
} agent;

/* One row of training diagnostics (the updates table); unknown fields NAN. */
typedef struct {
    long update;
    double time;              /* simulated hours */
    double policy_loss, value_loss, entropy, approx_kl, clip_fraction,
        explained_variance, grad_norm;
    double learning_rate;
    double steps_per_second;  /* env steps per wall second since the previous update */
} update_row;

/* What the engine lends an agent. */
typedef struct {
    uint64_t seed;          /* the run's seed: "{seed}" in a file parameter stands for it */
    gsl_rng *init;          /* parameter initialisation */
    gsl_rng *sampling;      /* exploration, policy sampling */
    gsl_rng *minibatch;     /* minibatch shuffling */
    reward_kind reward;
    privileged_view privileged;  /* set only when needs_privileged */
    /* Records a row of training diagnostics; may be NULL. */
    int (*log_update)(void *log_ctx, const update_row *row);
    void *log_ctx;
} agent_context;

struct agent_type {
    const char *name;
    int version;
    const char *summary;
    param_table params;
    int needs_privileged;
    int (*xValidate)(const void *config, char *err);  /* cross-field checks; may be NULL */
    int (*xCreate)(const void *config, const env_spec *spec, const agent_context *ctx,
                   agent **out, char *err);
    /* Writes spec->slate distinct items, all from obs->candidates, into slate. */
    int (*xAct)(agent *a, const observation *obs, int *slate);
    int (*xObserve)(agent *a, const feedback *fb);
    int (*xEndEpisode)(agent *a, int user, long episode);
    int (*xUpdate)(agent *a, double t);
    void (*xDestroy)(agent *a);
    /* Bytes the agent would hold in a run for config, with an env of spec's sizes
     * (spec's arrays may be NULL): what xCreate allocates and what it grows to
     * (a batch of steps, a factor per user), in double so that no size overflows.
     * Called before anything is allocated, to refuse a run that would not fit.
     * NULL counts as a few hundred bytes. */
    double (*xMemoryEstimate)(const void *config, const env_spec *spec);
};

const agent_type *agent_find(const char *name);
extern const agent_type *const agent_registry[];
extern const int agent_registry_count;

#endif
