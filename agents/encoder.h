/* The state encoder shared by the learning agents: an observation, plus the items
 * shown earlier in the same session, becomes a feature vector x [n_features].
 *
 * With d = embed_dim, T = n_topics and history entries indexed j = 0 (newest)
 * .. history_len - 1, each weighing decay^j, the features are, in this order:
 *   [0, d)            clicked: weighted mean of E_in[item] over the HIST_CLICK
 *                     entries (zeros if none);
 *   [d, 2d)           bought: the same over the HIST_PURCHASE entries;
 *   [2d, 2d+T)        click topics: the weighted histogram of the topics of the
 *                     HIST_CLICK entries, normalised to sum 1 (zeros if none);
 *   [2d+T, 2d+2T)     session topics: the histogram of the topics of every item
 *                     shown in this session's earlier slates, normalised (zeros at
 *                     step 0);
 *   [2d+2T, 2d+2T+3)  step / max_steps; log1p(hours since the last visit) / 10, 0
 *                     on a first visit; 1 on a first visit, else 0.
 * n_features = 2d + 2T + 3. HIST_SKIP entries (item -1, a step without a click)
 * contribute nothing, but still count in j. The engine records a purchase after
 * its click, so a bought item appears in both groups.
 *
 * The only parameters are the input item embeddings E_in [n_items][d], one tensor
 * of the agent's nn_layout; gradients reach them through the first two groups
 * only. encoder_features records in an encoder_cache which rows were used with
 * which weights, so encoder_backward is exact for that step; the cache is a
 * fixed-size plain struct that can be copied (or only its first n_terms terms)
 * into a trajectory. */
#ifndef DIVSIM_ENCODER_H
#define DIVSIM_ENCODER_H

#include "../sim/slate.h"
#include "nn.h"

#include <gsl/gsl_rng.h>
#include <stddef.h>

/* The most history entries an observation may carry: the engine's bound on its
 * `history` run setting. */
#define ENCODER_MAX_HISTORY 64

typedef struct {
    int n_items, n_topics, max_steps;
    const int *item_topic; /* [n_items] borrowed from the env_spec */
    int embed_dim;         /* d */
    double decay;          /* recency weight per history entry, in (0, 1] */
    int n_features;        /* 2d + 2T + 3 */
    /* where each group starts in x */
    int at_clicked, at_bought, at_click_topics, at_session_topics, at_scalars;
    size_t e_in;           /* offset of E_in [n_items][d] in the parameter slab */
} encoder;

/* One contribution to the embedding groups: x[slot + e] += weight * E_in[item][e]. */
typedef struct {
    int item;
    int slot;      /* at_clicked or at_bought */
    double weight; /* normalised: the weights of a group sum to 1 */
} encoder_term;

/* What encoder_backward needs of one encoder_features call. */
typedef struct {
    int n_terms;
    encoder_term terms[ENCODER_MAX_HISTORY]; /* [n_terms] used */
} encoder_cache;

/* DS_EINPUT (naming `who`) unless spec has items, topics, steps and item topics,
 * each topic in range: what the state features of a history encoder need. */
int encoder_check_spec(const env_spec *spec, const char *who, char *err);

/* Describes the encoder for spec and registers E_in as tensor "E_in" in layout.
 * DS_EINPUT if embed_dim < 1, decay is not in (0, 1], the spec has no items,
 * topics, steps or item topics, an item's topic is out of range, or the layout
 * refuses the tensor. */
int encoder_init(encoder *enc, const env_spec *spec, int embed_dim, double decay,
                 nn_layout *layout, char *err);

/* E_in ~ N(0, 0.1^2), drawn in storage order from r, into the slab w. */
void encoder_init_weights(const encoder *enc, double *w, gsl_rng *r);

/* Writes the features of obs into x [n_features], with the parameter slab w and
 * the items shown earlier in this session, session_items [n_session_items] (the
 * earlier slates concatenated; may be NULL when n_session_items is 0). Records
 * the terms in cache, which may be NULL (no backward wanted). Does not allocate;
 * O(history_len d + n_session_items + T).
 * DS_EINPUT if the history is longer than ENCODER_MAX_HISTORY, an entry has an
 * unknown kind or a clicked or bought item out of range, a session item is out of
 * range, or since_last_visit is NaN. */
int encoder_features(const encoder *enc, const double *w, const observation *obs,
                     const int *session_items, int n_session_items, double *x,
                     encoder_cache *cache, char *err);

/* Recomputes the two embedding groups of a stored x [n_features] from the
 * current E_in in w, with the terms of the step's cache; the other groups do not
 * depend on parameters and are left as they are. For a step replayed after E_in
 * has moved (a later PPO epoch), so that its features, and hence its logits and
 * ratio, are those of the current parameters. O(n_terms d). */
void encoder_refresh(const encoder *enc, const double *w, const encoder_cache *cache,
                     double *x);

/* grad[E_in rows] += the gradient of the features, dx [n_features], for the step
 * whose terms cache holds. Accumulates, as every nn backward does. */
void encoder_backward(const encoder *enc, double *grad, const double *dx,
                      const encoder_cache *cache);

#endif
