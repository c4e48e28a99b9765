/* The environment `recsim_ie`: a port of RecSim's interest-evolution environment
 * (google-research/recsim, recsim/environments/interest_evolution.py, as built by
 * its create_environment). The model, every constant and where it comes from are
 * documented at the top of envs/recsim_ie.c. */
#ifndef DIVSIM_RECSIM_IE_H
#define DIVSIM_RECSIM_IE_H

#include "env.h"

extern const env_type recsim_ie_env;

/* Topics (RecSim's clusters) and the dimension of user interests and document
 * features: IEvVideo.NUM_FEATURES and IEvUserState.NUM_FEATURES. */
#define RECSIM_IE_CLUSTERS 20

/* The parameters of recsim_ie (see the table in envs/recsim_ie.c for defaults).
 * Fill it with param_defaults(&recsim_ie_env.params, &cfg, err), then change fields. */
typedef struct {
    int num_candidates, slate, resample_documents, users, max_steps;
    double time_budget, step_penalty, video_length;
    double no_click_mass, min_normalizer;
    double min_utility, max_utility, quality_sd;
    double budget_extension, quality_range, user_quality_factor, document_quality_factor;
    double alpha_x_intercept, alpha_y_intercept;
} recsim_ie_config;

/* What happened at the last step, for tests and analysis (agents never see it). */
typedef struct {
    int click;               /* slate position clicked, or -1 */
    int item;                /* item clicked, or -1 */
    int cluster;             /* its cluster, or -1 */
    double quality;          /* its quality; NAN without a click */
    double watch_time;       /* min(budget before, video_length); 0 without a click */
    double expected_utility; /* the clicked item's proportional score; NAN without a click */
    double budget_before, budget_after;
    double interest_before;  /* interest in the clicked cluster; NAN without a click */
    double interest_after;
    int positive_update;     /* 1 if the interest moved toward the item, 0 away, -1 no click */
    int done;
} recsim_ie_step_info;

/* Inspection of hidden state, for tests and analysis only. Each returns DS_OK, or
 * DS_EINPUT when e is not a recsim_ie environment or an argument is out of range. */

/* The user of the session in progress: interests [RECSIM_IE_CLUSTERS] (may be
 * NULL) and time budget (may be NULL). DS_EINPUT if no session is in progress. */
int recsim_ie_user(const env *e, double *interest, double *budget);

/* Overwrites the state of the user of the session in progress. */
int recsim_ie_set_user(env *e, const double *interest, double budget);

/* The last step's details. DS_EINPUT before the first step. */
int recsim_ie_last_step(const env *e, recsim_ie_step_info *out);

/* The mean quality of a cluster, 0 <= cluster < RECSIM_IE_CLUSTERS. */
int recsim_ie_cluster_mean(const env *e, int cluster, double *mean);

/* The cluster of the document now under id item, and its quality (NAN with
 * resampling: a resampled document's quality is drawn when it is clicked). */
int recsim_ie_item(const env *e, int item, int *cluster, double *quality);

/* The invariants of a step, which xStep checks in builds with
 * DIVSIM_DEBUG_INVARIANTS (sanitized builds). The choice among the no-click
 * score s0 and the slate's scores weight [k], of sum total: all finite, total
 * positive, every probability in [0, 1], summing to 1. After the step: the
 * interests [RECSIM_IE_CLUSTERS] in [-1, 1] and the budget finite and not above
 * `before` unless growth (user_update_alpha times the received utility) > 1.
 * DS_EINTERNAL with err naming the first broken one. */
int recsim_ie_check_choice(const double *weight, int k, double s0, double total, char *err);
int recsim_ie_check_transition(const double *interest, double budget, double before,
                               double growth, char *err);

#endif
