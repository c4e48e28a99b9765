#include "encoder.h"

#include "../sim/common.h"

#include <gsl/gsl_cblas.h>
#include <math.h>
#include <string.h>

int encoder_check_spec(const env_spec *spec, const char *who, char *err)
{
    if (spec->n_items < 1 || spec->n_topics < 1 || spec->max_steps < 1 || !spec->item_topic)
        return err_set(err, DS_EINPUT,
                       "%s needs items, topics, steps and item topics "
                       "(n_items %d, n_topics %d, max_steps %d)",
                       who, spec->n_items, spec->n_topics, spec->max_steps);
    for (int i = 0; i < spec->n_items; i++)
        if (spec->item_topic[i] < 0 || spec->item_topic[i] >= spec->n_topics)
            return err_set(err, DS_EINPUT, "item %d has topic %d out of range", i,
                           spec->item_topic[i]);
    return DS_OK;
}

int encoder_init(encoder *enc, const env_spec *spec, int embed_dim, double decay,
                 nn_layout *layout, char *err)
{
    memset(enc, 0, sizeof *enc);
    if (embed_dim < 1)
        return err_set(err, DS_EINPUT, "'embed_dim' must be at least 1, got %d", embed_dim);
    if (!(decay > 0.0 && decay <= 1.0))
        return err_set(err, DS_EINPUT, "'history_decay' must be in (0, 1], got %g", decay);
    int rc = encoder_check_spec(spec, "encoder", err);
    if (rc != DS_OK)
        return rc;
    enc->n_items = spec->n_items;
    enc->n_topics = spec->n_topics;
    enc->max_steps = spec->max_steps;
    enc->item_topic = spec->item_topic;
    enc->embed_dim = embed_dim;
    enc->decay = decay;
    enc->at_clicked = 0;
    enc->at_bought = embed_dim;
    enc->at_click_topics = 2 * embed_dim;
    enc->at_session_topics = 2 * embed_dim + spec->n_topics;
    enc->at_scalars = 2 * embed_dim + 2 * spec->n_topics;
    enc->n_features = enc->at_scalars + 3;
    return nn_layout_add(layout, "E_in", spec->n_items, embed_dim, &enc->e_in, err);
}

void encoder_init_weights(const encoder *enc, double *w, gsl_rng *r)
{
    nn_init_normal(w + enc->e_in, r, 0.1, (size_t)enc->n_items * (size_t)enc->embed_dim);
}

static int check_history(const encoder *enc, const observation *obs, char *err)
{
    if (obs->history_len < 0 || obs->history_len > ENCODER_MAX_HISTORY)
        return err_set(err, DS_EINPUT, "history of %d entries (at most %d)",
                       obs->history_len, ENCODER_MAX_HISTORY);
    for (int j = 0; j < obs->history_len; j++) {
        const history_entry *h = &obs->history[j];
        if (h->kind == HIST_SKIP)
            continue;
        if (h->kind != HIST_CLICK && h->kind != HIST_PURCHASE)
            return err_set(err, DS_EINPUT, "history entry %d has unknown kind %d", j,
                           h->kind);
        if (h->item < 0 || h->item >= enc->n_items)
            return err_set(err, DS_EINPUT, "history entry %d has item %d out of range", j,
                           h->item);
    }
    return DS_OK;
}

/* Appends the terms of one embedding group to terms [n..]: the entries of the
 * given kind, with weights decay^j normalised to sum 1. The weights are taken
 * relative to the newest such entry, decay^(j - j0): the same after normalising,
 * but the largest is 1, so a tiny decay cannot underflow the whole sum to 0.
 * Returns the new term count. */
static int group_terms(const encoder *enc, const observation *obs, history_kind kind,
                       int slot, encoder_term *terms, int n)
{
    int first = n, newest = -1;
    double total = 0.0;
    for (int j = 0; j < obs->history_len; j++) {
        if (obs->history[j].kind != (int)kind)
            continue;
        if (newest < 0)
            newest = j;
        double weight = pow(enc->decay, (double)(j - newest));
        terms[n++] = (encoder_term){obs->history[j].item, slot, weight};
        total += weight;
    }
    for (int i = first; i < n; i++)
        terms[i].weight /= total;
    return n;
}

int encoder_features(const encoder *enc, const double *w, const observation *obs,
                     const int *session_items, int n_session_items, double *x,
                     encoder_cache *cache, char *err)
{
    int rc = check_history(enc, obs, err);
    if (rc != DS_OK)
        return rc;
    if (n_session_items < 0)
        return err_set(err, DS_EINPUT, "%d session items", n_session_items);
    for (int i = 0; i < n_session_items; i++)
        if (session_items[i] < 0 || session_items[i] >= enc->n_items)
            return err_set(err, DS_EINPUT, "session item %d out of range", session_items[i]);
    if (isnan(obs->since_last_visit))
        return err_set(err, DS_EINPUT, "'since_last_visit' is NaN");

    encoder_cache local;
    encoder_cache *c = cache ? cache : &local;
    int n_clicks = group_terms(enc, obs, HIST_CLICK, enc->at_clicked, c->terms, 0);
    c->n_terms = group_terms(enc, obs, HIST_PURCHASE, enc->at_bought, c->terms, n_clicks);

    memset(x, 0, (size_t)enc->n_features * sizeof *x);
    encoder_refresh(enc, w, c, x);
    /* the click terms come first and their weights already sum to 1 */
    for (int i = 0; i < n_clicks; i++)
        x[enc->at_click_topics + enc->item_topic[c->terms[i].item]] += c->terms[i].weight;
    for (int i = 0; i < n_session_items; i++)
        x[enc->at_session_topics + enc->item_topic[session_items[i]]] += 1.0;
    for (int t = 0; n_session_items > 0 && t < enc->n_topics; t++)
        x[enc->at_session_topics + t] /= n_session_items;

    int first_visit = isinf(obs->since_last_visit);
    /* the engine's gap is end-of-session to now, never negative; clamp rounding */
    double gap = obs->since_last_visit > 0.0 ? obs->since_last_visit : 0.0;
    x[enc->at_scalars] = (double)obs->step / enc->max_steps;
    x[enc->at_scalars + 1] = first_visit ? 0.0 : log1p(gap) / 10.0;
    x[enc->at_scalars + 2] = first_visit ? 1.0 : 0.0;
    return DS_OK;
}

void encoder_refresh(const encoder *enc, const double *w, const encoder_cache *cache,
                     double *x)
{
    int d = enc->embed_dim;
    memset(x + enc->at_clicked, 0, (size_t)d * sizeof *x);
    memset(x + enc->at_bought, 0, (size_t)d * sizeof *x);
    const double *E_in = w + enc->e_in; /* [n_items][d] */
    for (int i = 0; i < cache->n_terms; i++) {
        const encoder_term *t = &cache->terms[i];
        cblas_daxpy(d, t->weight, E_in + (size_t)t->item * d, 1, x + t->slot, 1);
    }
}

void encoder_backward(const encoder *enc, double *grad, const double *dx,
                      const encoder_cache *cache)
{
    int d = enc->embed_dim;
    double *dE_in = grad + enc->e_in; /* [n_items][d] */
    for (int i = 0; i < cache->n_terms; i++) {
        const encoder_term *t = &cache->terms[i];
        cblas_daxpy(d, t->weight, dx + t->slot, 1, dE_in + (size_t)t->item * d, 1);
    }
}
