/* Diversity, coverage and outcome metrics. Every formula is written out in the
 * README and tested against hand-computed fixtures. */
#ifndef DIVSIM_METRICS_H
#define DIVSIM_METRICS_H

#include <stddef.h>

/* ---- per slate ---- */

/* Intra-list diversity: mean over pairs of 1 - cos(latent_a, latent_b).
 * latent is [n_items][dim]; 0 for fewer than two items. */
double metrics_ild(const double *latent, int dim, const int *slate, int k);

/* Share of pairs in the slate whose topics differ. */
double metrics_topic_ild(const int *item_topic, const int *slate, int k);

/* ---- over counts (exposure of items, topics shown) ---- */

/* Shannon entropy -sum p ln p (nats) of counts normalised to p; 0 if all zero. */
double metrics_entropy(const long *counts, int n);

/* Share of the n items with a non-zero count. */
double metrics_coverage(const long *counts, int n);

/* Gini index of counts over all n items (zeros included):
 * sum_i (2i - n - 1) c_(i) / (n sum c), c sorted ascending, i = 1..n.
 * scratch holds 2 n longs. 0 if all zero. */
double metrics_gini(const long *counts, int n, long *scratch);

/* ---- rows as stored ---- */

typedef enum { PHASE_TRAIN = 0, PHASE_EVAL = 1 } phase;
const char *phase_name(phase p);

typedef struct {
    long episode;
    phase phase;
    int user;
    double start_time, end_time;  /* simulated hours */
    int length;                   /* steps */
    double reward;                /* unshaped reward of the chosen kind */
    double shaped_reward;         /* what learning agents were given */
    int clicks, purchases;
    double revenue;
    double ild, topic_ild;        /* means over the episode's slates */
    double topic_entropy;         /* of the topics shown in the episode, nats */
    double novelty;               /* mean -log2 popularity of the items shown */
    double repeat_rate;           /* share of impressions repeating an item already shown in the episode */
    int churned;                  /* the user left for good after this session */
} episode_row;

typedef struct {
    long window;                  /* 0-based within its phase */
    phase phase;
    long episodes;                /* episodes in the window */
    double sim_time;              /* when the window closed, hours */
    double coverage, gini, exposure_entropy, exposure_entropy_norm;
    double retention;             /* share of all users not churned at window close */
    double churn_rate;            /* share of the window's sessions that ended in churn */
    double reward;                /* mean unshaped reward per episode */
    double ild;                   /* mean episode ILD */
} window_row;

/* Exposure counts of items over a span of episodes (a window or a phase). */
typedef struct {
    int n_items;
    long *counts;   /* [n_items] impressions per item */
    long *scratch;  /* [2 n_items] for the Gini sort */
    long episodes, churned, impressions;
    double reward, ild;
} exposure;

int exposure_init(exposure *x, int n_items);
void exposure_free(exposure *x);
void exposure_reset(exposure *x);
/* Counts one impression of each of items[0..n-1]. */
void exposure_add_impressions(exposure *x, const int *items, long n);
void exposure_add_episode(exposure *x, const episode_row *e);
/* Fills the coverage columns of row from x. */
void exposure_summarise(exposure *x, long users_churned, int n_users, window_row *row);

#endif
