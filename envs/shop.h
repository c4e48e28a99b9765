/* The native environment `shop`: synthetic shoppers with drifting tastes,
 * satiation, multinomial-logit clicks, rare purchases, session ends driven by
 * boredom, visit rates that follow satisfaction, and churn. The model and every
 * parameter are documented in envs/shop.c. */
#ifndef DIVSIM_SHOP_H
#define DIVSIM_SHOP_H

#include "env.h"

extern const env_type shop_env;

/* The parameters of shop (see the table in envs/shop.c for units and defaults).
 * Fill it with param_defaults(&shop_env.params, &cfg, err), then change fields. */
typedef struct {
    /* catalogue */
    int items, topics, dim, slate, max_steps;
    double topic_zipf, item_spread, price_mean, price_topic_sd, price_sd, appeal_sd;
    /* users */
    int users, user_topics;
    double user_dirichlet, price_weight, price_weight_sd, visit_rate, visit_rate_sd;
    /* time */
    double drift_rate, drift_scale, satiation_tau;
    /* choice */
    double affinity, appeal_weight, satiation_weight, position_bias, no_click_utility;
    double satiation_gain, reinforcement;
    /* purchases */
    double purchase_bias, purchase_affinity, purchase_appeal, purchase_price, purchase_delay;
    /* sessions, return and churn */
    double step_minutes, leave_bias, leave_boredom, leave_value;
    double return_gain, satisfaction_ref, rate_floor, rate_ceiling, churn_threshold;
    int churn_patience;
    /* catalogue churn */
    double launch_rate, item_lifetime;
} shop_config;

/* Inspection of hidden state, for tests and analysis only (agents never see
 * it). The user functions read the state as of the user's last update (session
 * start or step), without applying pending drift. Each returns DS_OK, or
 * DS_EINPUT when e is not a shop environment or user/topic/item is out of range. */

/* Copies the current preference x_u and long-term taste mu_u ([dim] each; either
 * pointer may be NULL). */
int shop_user_preference(const env *e, int user, double *x, double *mu);

/* Overwrites the current preference x_u with x [dim]. */
int shop_set_user_preference(env *e, int user, const double *x);

/* The user's satiation for a topic. */
int shop_user_satiation(const env *e, int user, int topic, double *satiation);

/* The user's price multiplier m_u: price sensitivity b_u = price_weight * m_u,
 * and the purchase log-odds lose purchase_price * m_u per unit of log-price. */
int shop_user_price_multiplier(const env *e, int user, double *m);

/* The intrinsic appeal a_i of the item now under id item, 0 <= item < spec.n_items
 * (an inactive id holds a placeholder item, redrawn when the id is launched). */
int shop_item_appeal(const env *e, int item, double *appeal);

/* The invariants of a step, which xStep checks in builds with
 * DIVSIM_DEBUG_INVARIANTS (sanitized builds): the utilities v [k] of the slate
 * finite, its click probabilities prob [k] in [0, 1] summing to at most 1, the
 * leave probability in [0, 1], and the response's dwell (>= 0), purchase delay
 * and revenue finite. DS_EINTERNAL with err naming the first broken one
 * ("click probability 1.5 at slate position 1"). */
int shop_check_step(const double *v, const double *prob, int k, double leave,
                    const env_response *out, char *err);

#endif
