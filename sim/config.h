/* Experiment files: parsing, validation and expansion into runs.
 *
 * An experiment file is INI with sections [experiment], [env], [agent],
 * [agent.NAME] and [reward]. A value written as a comma list is a sweep axis;
 * `seeds` is a list or range of seeds. experiment_load() parses the file and
 * the --set overrides, checks every value against the parameter tables of the
 * chosen environment and agents, and expands the grid: for each env kind and
 * agent kind, the product of the axes that apply to it, times the seeds. */
#ifndef DIVSIM_CONFIG_H
#define DIVSIM_CONFIG_H

#include "../agents/agent.h"
#include "../envs/env.h"

#include <stdint.h>

#define NAME_LEN 64

/* Settings of the [experiment] and [reward] sections of one run. */
typedef struct {
    char name[NAME_LEN];
    int train_episodes;   /* sessions with learning on */
    int eval_episodes;    /* sessions with learning frozen */
    int window;           /* episodes per metrics window */
    int history;          /* history entries the engine keeps per user */
    int log_interactions; /* record every slate shown (run_result.interactions) */
    int reward;           /* reward_kind */
    double diversity_bonus; /* shaped reward = raw + diversity_bonus * ILD(slate) */
} run_settings;

/* One fully resolved key of a run: "section.key" = value. */
typedef struct {
    char key[2 * NAME_LEN];
    char value[NAME_LEN * 4];
} run_param;

typedef struct {
    const env_type *env;
    const agent_type *agent;
    char agent_name[NAME_LEN]; /* as listed in [agent] kind: agent->name or a variant's
                                  name; "" (in a run_spec built by hand) = agent->name */
    uint64_t seed;
    run_settings settings;
    void *env_config;      /* filled struct of env->params */
    void *agent_config;    /* filled struct of agent->params */
    run_param *params;     /* every expanded key, defaults included, sorted by key */
    size_t n_params;
    char *config_text;     /* "key = value\n" for every param except the seed */
    uint64_t config_hash;  /* hash of config_text */
    int64_t run_id;        /* hash of config_text and seed, as a positive 63-bit id */
} run_spec;

/* Runs that differ only in seed are neighbours in runs[] and share one params
 * array, config_text, env_config and agent_config: all read-only. */
typedef struct {
    char name[NAME_LEN];
    char path[4096];
    run_spec *runs;
    size_t n_runs;
} experiment;

/* Loads and expands path. overrides are "section.key=value" strings from --set,
 * applied after the file. On error, err reads "FILE:LINE: message" naming the key,
 * with a did-you-mean suggestion where one is close. Returns DS_OK or DS_EINPUT,
 * DS_ENOMEM, DS_EIO. */
int experiment_load(const char *path, const char *const *overrides, size_t n_overrides,
                    experiment *out, char *err);

/* As experiment_load, with the file's contents given as text[0..len) (any bytes,
 * not NUL-terminated); name stands for the path in messages and gives the
 * default experiment name. */
int experiment_load_buffer(const char *name, const char *text, size_t len,
                           const char *const *overrides, size_t n_overrides, experiment *out,
                           char *err);

void experiment_free(experiment *x);

/* Bytes run r is estimated to take: the engine's state (episode rows, per-user
 * and per-item state) and its env's and agent's xMemoryEstimate. experiment_load
 * refuses a run above the memory limit. */
double run_memory_estimate(const run_spec *r);

/* The value of "section.key" in a run, or NULL. */
const char *run_param_get(const run_spec *r, const char *key);

/* The name the run goes by (runs.agent): its variant's, or its agent's. */
const char *run_agent_name(const run_spec *r);

#endif
