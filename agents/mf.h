/* Implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008, "Collaborative
 * Filtering for Implicit Feedback Datasets"), and the agent plumbing that the cf
 * and mmr agents share: their common hyperparameters, recording feedback,
 * retraining, scoring, the popularity fallback, top-k selection and epsilon
 * exploration.
 *
 * The model. Every click of user u on item i adds `alpha` to the confidence c_ui,
 * every purchase adds `alpha * purchase_weight`. The preference p_ui is 1 where
 * c_ui > 0, else 0, and every (user, item) cell weighs C_ui = 1 + c_ui. Factors
 * x_u, y_i in R^d minimise
 *     sum_{u,i} C_ui (p_ui - x_u.y_i)^2 + lambda (sum |x_u|^2 + sum |y_i|^2)
 * over all items and every user seen so far, by alternating least squares:
 *     x_u = (Y'Y + Y'(C_u - I)Y + lambda I)^-1 Y' C_u p_u,  and the same for y_i,
 * where Y'Y is computed once per half-sweep, so that a user costs
 * O(n_u d^2 + d^3) for n_u interactions. Users never seen, and unseen items,
 * contribute nothing to the loss (their factors solve to 0), so only what was
 * seen is stored. */
#ifndef DIVSIM_MF_H
#define DIVSIM_MF_H

#include "../sim/common.h"
#include "agent.h"
#include "sample.h"

/* The hyperparameters every matrix-factorisation agent has. An agent with more
 * keys embeds this struct as its first member and starts its parameter table
 * with MF_PARAM_SPECS (whose offsets are relative to mf_config). */
typedef struct {
    int factors;            /* d: latent dimension of users and items */
    double regularization;  /* lambda: L2 penalty on all factors */
    int iterations;         /* ALS sweeps (users then items) per retrain */
    double alpha;           /* confidence added by a click */
    double purchase_weight; /* a purchase adds alpha * purchase_weight */
    double retrain_every;   /* simulated hours between retrains */
    double epsilon;         /* per-slot probability of a random candidate */
} mf_config;

#define MF_PARAM_SPECS                                                              \
    P_INT(mf_config, factors, "16", 1, 512, "latent factors per user and item"),    \
    P_REAL(mf_config, regularization, "0.1", 1e-9, 1e9,                             \
           "L2 penalty lambda on user and item factors"),                           \
    P_INT(mf_config, iterations, "10", 1, 1000,                                     \
          "alternating least squares sweeps per retrain"),                          \
    P_REAL(mf_config, alpha, "10", 1e-9, 1e9, "confidence added by one click"),     \
    P_REAL(mf_config, purchase_weight, "5", 0, 1e9,                                 \
           "a purchase adds alpha * purchase_weight confidence"),                   \
    P_REAL(mf_config, retrain_every, "6", 0, 1e9,                                   \
           "hours between retrains; 0 never retrains (popularity only)"),           \
    P_REAL(mf_config, epsilon, "0.05", 0, 1,                                        \
           "probability that a slate slot shows a random candidate instead")

/* ---- the model ---- */

typedef struct mf_model mf_model;

typedef enum { MF_USERS = 0, MF_ITEMS = 1 } mf_side;

/* A model for user ids 0..n_users-1 and item ids 0..n_items-1, with item
 * factors drawn N(0, 0.01^2) from init. User factors need no random start:
 * every sweep solves the users first. */
int mf_model_create(const mf_config *cfg, int n_users, int n_items, gsl_rng *init,
                    mf_model **out, char *err);
void mf_model_destroy(mf_model *m);

/* Adds confidence (> 0) to the cell (user, item) and to the item's popularity. */
int mf_model_add(mf_model *m, int user, int item, double confidence, char *err);

/* One half-sweep: solves every user (or every item) exactly given the other side. */
int mf_model_sweep(mf_model *m, mf_side side, char *err);

/* cfg->iterations full sweeps (users, then items), warm-started from the
 * current factors. DS_ENUMERIC if the factors stop being finite. */
int mf_model_train(mf_model *m, char *err);

/* The implicit-ALS objective above, at the current factors. */
double mf_model_loss(const mf_model *m);

int mf_model_dim(const mf_model *m);
long mf_model_interactions(const mf_model *m); /* non-zero cells c_ui */
double mf_model_confidence(const mf_model *m, int user, int item);
double mf_model_popularity(const mf_model *m, int item);
/* [d] factors of a user solved in a sweep, else NULL (unseen, or seen since). */
const double *mf_model_user_factors(const mf_model *m, int user);
const double *mf_model_item_factors(const mf_model *m, int item); /* [d] */

/* scores[j] for candidates[j] (ids must be in range): x_u.y_i for a user with
 * factors; otherwise the item's popularity (its total confidence). Returns 1 when
 * the scores are personal, 0 for the popularity fallback. */
int mf_model_scores(const mf_model *m, int user, const int *candidates, int n,
                    double *scores);

/* ---- selection ---- */

/* ---- the agent part shared by cf and mmr ---- */

typedef struct {
    agent base;
    mf_config cfg;
    mf_model *model;
    gsl_rng *sampling;       /* borrowed from the engine */
    sample_explore_memo explore_memo;
    double *scores;          /* [n_items] score of each candidate position (see mf_agent_rank) */
    int *heap;               /* [depth] top-k scratch */
    int *ranked;             /* [depth] candidate positions, best first */
    int depth;               /* most positions mf_agent_rank may return */
    unsigned char *mark;     /* [n_items] all zero between calls */
    int dirty;               /* feedback recorded since the last retrain */
    long retrains;
} mf_agent;

/* Allocates size bytes (>= sizeof(mf_agent), zeroed) and fills the mf part.
 * depth is how many ranked positions the agent will ask of mf_agent_rank; it is
 * raised to spec->slate and capped at spec->n_items. */
int mf_agent_create(size_t size, const agent_type *type, const mf_config *cfg,
                    const env_spec *spec, const agent_context *ctx, int depth,
                    mf_agent **out, char *err);

/* Checks obs (user and candidate ids in range and distinct, at least a slate of
 * candidates), scores the candidates into a->scores, and puts the best
 * min(depth, n_candidates) positions into a->ranked. DS_EINPUT with a->err.
 * A personal ranking of the whole catalogue goes through rank_top_k_sketched
 * (agents/rank.h): the same ranking, with a->scores written for the ranked
 * positions (and the few others scored exactly), not for every position. */
int mf_agent_rank(mf_agent *a, const observation *obs, int depth);

/* The epsilon exploration of sample_explore with the agent's sampling stream;
 * sets the agent's slate_logp to the log-probability of the explored slate. */
void mf_agent_explore(mf_agent *a, const observation *obs, int *slate);

/* agent_type slots shared by cf and mmr. */
int mf_agent_observe(agent *a, const feedback *fb);
int mf_agent_end_episode(agent *a, int user, long episode);
int mf_agent_update(agent *a, double t);
void mf_agent_destroy(agent *a);

/* Bytes an mf agent of struct size `size` holds for cfg, an env of spec's sizes
 * and mf_agent_create's depth: the item factors and the solver, a factor row for
 * every user, and the ranking scratch. The interactions themselves (36 bytes per
 * distinct user-item pair clicked) grow with the feedback and are not counted. */
double mf_agent_memory_estimate(size_t size, const mf_config *cfg, const env_spec *spec,
                                int depth);

#endif
