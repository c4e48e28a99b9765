/* Pretraining the transformer on logged interactions (see pretrain.h). */
#include "pretrain.h"

#include "../agents/checkpoint.h"
#include "../agents/nn.h"
#include "common.h"
#include "rng.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <inttypes.h>
#include <stddef.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- reading the log ---- */

/* Growable arrays of the log being read. */
typedef struct {
    history_entry *entries;
    size_t n_entries, cap_entries;
    log_step *steps;
    size_t n_steps, cap_steps;
    log_stream *streams;
    size_t n_streams, cap_streams;
} log_builder;

static void *grown(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return p;
    size_t cap2 = *cap ? 2 * *cap : 1024;
    while (cap2 < need)
        cap2 *= 2;
    void *q = realloc(p, cap2 * size);
    if (q)
        *cap = cap2;
    return q;
}

static int push_entry(log_builder *b, int item, int kind)
{
    history_entry *e = grown(b->entries, &b->cap_entries, b->n_entries + 1, sizeof *e);
    if (!e)
        return DS_ENOMEM;
    b->entries = e;
    b->entries[b->n_entries++] = (history_entry){item, kind};
    b->streams[b->n_streams - 1].n_entries++;
    return DS_OK;
}

static int push_step(log_builder *b, long episode, int step)
{
    log_step *st = grown(b->steps, &b->cap_steps, b->n_steps + 1, sizeof *st);
    if (!st)
        return DS_ENOMEM;
    b->steps = st;
    log_stream *s = &b->streams[b->n_streams - 1];
    b->steps[b->n_steps++] = (log_step){.at = s->n_entries, .step = step, .episode = episode};
    s->n_steps++;
    return DS_OK;
}

static int push_stream(log_builder *b, int64_t run_id, int user)
{
    log_stream *s = grown(b->streams, &b->cap_streams, b->n_streams + 1, sizeof *s);
    if (!s)
        return DS_ENOMEM;
    b->streams = s;
    b->streams[b->n_streams++] = (log_stream){.run_id = run_id, .user = user,
                                              .first_entry = b->n_entries,
                                              .first_step = b->n_steps};
    return DS_OK;
}

static void builder_free(log_builder *b)
{
    free(b->entries);
    free(b->steps);
    free(b->streams);
}

/* Moves the arrays into log and points each stream into them. */
static void builder_finish(log_builder *b, interaction_log *log)
{
    log->entry_slab = b->entries;
    log->step_slab = b->steps;
    log->streams = b->streams;
    log->n_streams = b->n_streams;
    for (size_t i = 0; i < b->n_streams; i++) {
        log_stream *s = &log->streams[i];
        s->entries = b->entries ? b->entries + s->first_entry : NULL;
        s->steps = b->steps ? b->steps + s->first_step : NULL;
    }
    *b = (log_builder){0};
}

#define RUNS_SELECTED \
    "SELECT r.id FROM runs AS r WHERE r.status = 'done' AND (?1 IS NULL OR r.agent = ?1)" \
    " AND (?2 IS NULL OR r.seed = ?2)" \
    " AND EXISTS (SELECT 1 FROM interactions AS i WHERE i.run_id = r.id)"

/* Binds the selection to RUNS_SELECTED's ?1 and ?2. */
static int bind_selection(sqlite3_stmt *st, const log_selection *only)
{
    log_selection all = {0};
    if (!only)
        only = &all;
    int rc = sqlite3_bind_text(st, 1, only->agent, -1, SQLITE_TRANSIENT);
    if (rc == SQLITE_OK && only->by_seed)
        rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)only->seed);
    return rc;
}

static int db_error(sqlite3 *db, const char *path, const char *what, char *err)
{
    return err_set(err, DS_EIO, "database '%s': %s: %s", path, what, sqlite3_errmsg(db));
}

/* The selected runs' count and their one env.items. */
static int read_catalogue(sqlite3 *db, const char *path, const log_selection *only,
                          interaction_log *log, char *err)
{
    sqlite3_stmt *st = NULL;
    const char *sql = "SELECT count(*), count(DISTINCT p.value), min(CAST(p.value AS INTEGER)),"
                      " count(DISTINCT r.seed)"
                      " FROM (" RUNS_SELECTED ") AS s JOIN runs AS r ON r.id = s.id"
                      " LEFT JOIN params AS p ON p.run_id = s.id AND p.key = 'env.items'";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
        bind_selection(st, only) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        int rc = db_error(db, path, "choosing the logged runs", err);
        sqlite3_finalize(st);
        return rc;
    }
    log->n_runs = sqlite3_column_int64(st, 0);
    int distinct = sqlite3_column_int(st, 1);
    log->n_items = sqlite3_column_int(st, 2);
    int seeds = sqlite3_column_int(st, 3);
    sqlite3_finalize(st);
    char which[ERR_LEN / 2] = "";
    if (only && only->agent)
        snprintf(which, sizeof which, " of agent '%s'", only->agent);
    if (only && only->by_seed)
        snprintf(which + strlen(which), sizeof which - strlen(which), " of seed %" PRIu64,
                 only->seed);
    if (log->n_runs == 0)
        return err_set(err, DS_EINPUT, "database '%s' has no finished run%s that logged "
                       "its interactions (set log_interactions = true in [experiment])",
                       path, which);
    if (distinct != 1 || log->n_items < 1)
        return err_set(err, DS_EINPUT, "database '%s': the logged runs%s have %s "
                       "env.items; pretrain on runs of one catalogue size (--agent)",
                       path, which, distinct > 1 ? "different" : "no");
    /* a seed draws its own catalogue and users: item ids of two seeds are two items */
    if (seeds > 1)
        return err_set(err, DS_EINPUT, "database '%s': the logged runs%s come from %d seeds, "
                       "each its own world (catalogue and users); pretrain on one with "
                       "--run-seed S", path, which, seeds);
    return DS_OK;
}

/* One row into the builder: a step pushes its click (or skip) and an immediate
 * purchase, a late purchase its purchase, as sim/run.c does. */
static int add_row(log_builder *b, sqlite3_stmt *st, int n_items, const char *path, char *err)
{
    int64_t run_id = sqlite3_column_int64(st, 0);
    int user = sqlite3_column_int(st, 1);
    const char *kind = (const char *)sqlite3_column_text(st, 2);
    int has_item = sqlite3_column_type(st, 3) != SQLITE_NULL;
    int item = has_item ? sqlite3_column_int(st, 3) : -1;
    int purchased = sqlite3_column_int(st, 4);
    int has_click = sqlite3_column_type(st, 7) != SQLITE_NULL;
    if (b->n_streams == 0 || b->streams[b->n_streams - 1].run_id != run_id ||
        b->streams[b->n_streams - 1].user != user)
        if (push_stream(b, run_id, user) != DS_OK)
            return DS_ENOMEM;
    int late = kind && strcmp(kind, "late_purchase") == 0;
    if (has_item && (item < 0 || item >= n_items))
        return err_set(err, DS_EINPUT, "database '%s': run %" PRId64 " logged item %d, "
                       "outside its %d items", path, run_id, item, n_items);
    if ((late && !has_item) || (!late && has_click != has_item) || (purchased && !has_item))
        return err_set(err, DS_EINPUT, "database '%s': run %" PRId64 " logged an "
                       "inconsistent interaction (user %d episode %lld)", path, run_id, user,
                       (long long)sqlite3_column_int64(st, 5));
    if (late)
        return push_entry(b, item, HIST_PURCHASE);
    if (push_step(b, (long)sqlite3_column_int64(st, 5), sqlite3_column_int(st, 6)) != DS_OK ||
        push_entry(b, item, has_item ? HIST_CLICK : HIST_SKIP) != DS_OK ||
        (purchased && push_entry(b, item, HIST_PURCHASE) != DS_OK))
        return DS_ENOMEM;
    return DS_OK;
}

static int read_rows(sqlite3 *db, const char *path, const log_selection *only, interaction_log *log,
                     char *err)
{
    sqlite3_stmt *st = NULL;
    const char *sql = "SELECT i.run_id, i.user_id, i.kind, i.item, i.purchased, i.episode,"
                      " i.step, i.click_pos FROM interactions AS i"
                      " WHERE i.run_id IN (" RUNS_SELECTED ")"
                      " ORDER BY i.run_id, i.user_id, i.seq";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
        bind_selection(st, only) != SQLITE_OK) {
        int rc = db_error(db, path, "reading the interactions", err);
        sqlite3_finalize(st);
        return rc;
    }
    log_builder b = {0};
    int rc = DS_OK, step;
    while (rc == DS_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        rc = add_row(&b, st, log->n_items, path, err);
        if (rc == DS_ENOMEM)
            err_set(err, rc, "out of memory reading the interactions of '%s'", path);
        log->n_rows++;
    }
    if (rc == DS_OK && step != SQLITE_DONE)
        rc = db_error(db, path, "reading the interactions", err);
    sqlite3_finalize(st);
    if (rc != DS_OK) {
        builder_free(&b);
        return rc;
    }
    for (size_t i = 0; i < b.n_entries; i++)
        log->n_clicks += b.entries[i].kind == HIST_CLICK;
    builder_finish(&b, log);
    return DS_OK;
}

int interaction_log_read(const char *path, const log_selection *only, interaction_log *log,
                         char *err)
{
    *log = (interaction_log){0};
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        int rc = err_set(err, DS_EIO, "cannot open database '%s': %s", path,
                         db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return rc;
    }
    sqlite3_stmt *st = NULL;
    int has_table = 0;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                           " AND name IN ('runs', 'params', 'interactions')", -1, &st,
                           NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        has_table = sqlite3_column_int(st, 0) == 3;
    sqlite3_finalize(st);
    int rc = has_table ? read_catalogue(db, path, only, log, err)
                       : err_set(err, DS_EINPUT, "'%s' is not a results database with an "
                                 "interaction log (written by divsim with schema version "
                                 "3 or later)", path);
    if (rc == DS_OK)
        rc = read_rows(db, path, only, log, err);
    sqlite3_close(db);
    if (rc != DS_OK)
        interaction_log_free(log);
    return rc;
}

void interaction_log_free(interaction_log *log)
{
    if (!log)
        return;
    free(log->entry_slab);
    free(log->step_slab);
    free(log->streams);
    *log = (interaction_log){0};
}

int log_stream_history(const log_stream *s, int j, int max, history_entry *out)
{
    int end = s->steps[j].at, n = end < max ? end : max;
    for (int i = 0; i < n; i++)
        out[i] = s->entries[end - 1 - i];
    return n;
}

/* ---- windows ---- */

/* A stretch of at most H entries of one stream, and the click after it. */
typedef struct {
    int stream;
    int start, len;
    int next_click; /* the first click after the window, or -1 */
} window;

typedef struct {
    window *w;
    size_t n;
} window_set;

/* A stream is held out when a hash of (seed, run, user) falls below holdout. */
static int held_out(const log_stream *s, uint64_t seed, double holdout)
{
    uint64_t h = hash_bytes(&seed, sizeof seed, HASH_INIT);
    h = hash_bytes(&s->run_id, sizeof s->run_id, h);
    h = hash_bytes(&s->user, sizeof s->user, h);
    return (double)(h >> 11) * 0x1.0p-53 < holdout;
}

/* The windows of the streams with held_out == want, cutting each stream into
 * consecutive stretches of H entries; stretches with nothing to predict (no
 * click in or after them) are left out. */
static int make_windows(const interaction_log *log, const pretrain_config *cfg, int want,
                        window_set *out, long *n_streams)
{
    int H = cfg->tf.context;
    size_t cap = 0;
    for (size_t i = 0; i < log->n_streams; i++)
        cap += (size_t)(log->streams[i].n_entries / H + 1);
    out->w = malloc((cap + 1) * sizeof *out->w);
    out->n = 0;
    *n_streams = 0;
    if (!out->w)
        return DS_ENOMEM;
    for (size_t i = 0; i < log->n_streams; i++) {
        const log_stream *s = &log->streams[i];
        if (held_out(s, cfg->seed, cfg->holdout) != want)
            continue;
        ++*n_streams;
        int next = -1; /* the next click at or after the current position */
        size_t first = out->n;
        for (int start = 0; start < s->n_entries; start += H) {
            int len = s->n_entries - start < H ? s->n_entries - start : H;
            out->w[out->n++] = (window){(int)i, start, len, -1};
        }
        /* Backwards: each window's next click is the first click after it. */
        for (size_t k = out->n; k-- > first;) {
            window *w = &out->w[k];
            w->next_click = next;
            for (int e = w->start + w->len - 1; e >= w->start; e--)
                if (s->entries[e].kind == HIST_CLICK)
                    next = s->entries[e].item;
        }
        /* Drop the trailing windows with no click in or after them. */
        while (out->n > first) {
            const window *w = &out->w[out->n - 1];
            int has = w->next_click >= 0;
            for (int e = w->start; e < w->start + w->len && !has; e++)
                has = s->entries[e].kind == HIST_CLICK;
            if (has)
                break;
            out->n--;
        }
    }
    return DS_OK;
}

/* ---- the model ---- */

typedef struct {
    const interaction_log *log;
    int *topics;        /* [n_items] zeros: the pretrained tensors ignore topics */
    env_spec spec;
    transformer tf;
    nn_layout layout;
    nn_params params;
    transformer_work work;
    transformer_input input;
    int targets[TRANSFORMER_MAX_TOKENS];
    history_entry history[TRANSFORMER_MAX_CONTEXT];
} model;

static int model_init(model *m, const interaction_log *log, const pretrain_config *cfg,
                      gsl_rng *r, char *err)
{
    *m = (model){.log = log};
    m->topics = calloc((size_t)log->n_items, sizeof *m->topics);
    if (!m->topics)
        return err_set(err, DS_ENOMEM, "out of memory for the model");
    m->spec = (env_spec){.n_items = log->n_items, .n_users = 1, .slate = 1, .n_topics = 1,
                         .max_steps = 1, .item_topic = m->topics};
    nn_layout_init(&m->layout);
    int rc = transformer_init(&m->tf, &m->spec, &cfg->tf, &m->layout, err);
    if (rc == DS_OK)
        rc = nn_params_alloc(&m->params, m->layout.size, err);
    if (rc == DS_OK)
        rc = transformer_work_alloc(&m->work, &m->tf, err);
    if (rc == DS_OK)
        transformer_init_weights(&m->tf, m->params.w, r);
    return rc;
}

static void model_free(model *m)
{
    transformer_work_free(&m->work);
    nn_params_free(&m->params);
    free(m->topics);
}

/* Tokens and targets of window w (the tokens exactly as transformer_tokens
 * makes them from an observation whose history ends with the window); returns
 * the number of targets. */
static int window_prepare(model *m, const window *w)
{
    const log_stream *s = &m->log->streams[w->stream];
    for (int i = 0; i < w->len; i++)
        m->history[i] = s->entries[w->start + w->len - 1 - i];
    observation obs = {.history = m->history, .history_len = w->len};
    char err[ERR_LEN];
    if (transformer_tokens(&m->tf, &obs, &m->input, err) != DS_OK)
        return 0; /* not reached: the reader checked every item */
    transformer_next_click_targets(&m->input, w->next_click, m->targets);
    int n = 0;
    for (int t = 0; t < m->input.n_tokens; t++)
        n += m->targets[t] >= 0;
    return n;
}

/* The summed loss of window w; with grad, its gradient times scale added. */
static double window_loss(model *m, const window *w, double *grad, double scale)
{
    window_prepare(m, w);
    transformer_forward(&m->tf, m->params.w, &m->input, &m->work);
    double loss = transformer_next_click_loss(&m->tf, m->params.w, grad, m->targets, scale,
                                              &m->work, NULL);
    if (grad)
        transformer_backward(&m->tf, m->params.w, grad, &m->input, &m->work);
    return loss;
}

/* Mean loss per target over a set of windows (no gradient). */
static double mean_loss(model *m, const window_set *ws, long n_targets)
{
    double sum = 0.0;
    for (size_t i = 0; i < ws->n; i++)
        sum += window_loss(m, &ws->w[i], NULL, 0.0);
    return n_targets > 0 ? sum / (double)n_targets : NAN;
}

static long count_targets(model *m, const window_set *ws)
{
    long n = 0;
    for (size_t i = 0; i < ws->n; i++)
        n += window_prepare(m, &ws->w[i]);
    return n;
}

/* ---- the popularity baseline ---- */

/* Mean -ln p(target) over the held-out targets, p Laplace-smoothed click
 * shares of the training streams: p_i = (c_i + 1) / (C + N). */
static double popularity_loss(model *m, const window_set *train, const window_set *heldout,
                              long n_heldout_targets)
{
    int N = m->log->n_items;
    double *count = calloc((size_t)N, sizeof *count), total = 0.0, sum = 0.0;
    if (!count)
        return NAN;
    for (size_t i = 0; i < train->n; i++) {
        const window *w = &train->w[i];
        const log_stream *s = &m->log->streams[w->stream];
        for (int e = w->start; e < w->start + w->len; e++)
            if (s->entries[e].kind == HIST_CLICK) {
                count[s->entries[e].item] += 1.0;
                total += 1.0;
            }
    }
    for (size_t i = 0; i < heldout->n; i++) {
        window_prepare(m, &heldout->w[i]);
        for (int t = 0; t < m->input.n_tokens; t++)
            if (m->targets[t] >= 0)
                sum -= log((count[m->targets[t]] + 1.0) / (total + N));
    }
    free(count);
    return sum / (double)n_heldout_targets;
}

/* ---- training ---- */

void pretrain_config_defaults(pretrain_config *cfg)
{
    transformer_config_defaults(&cfg->tf);
    cfg->epochs = 30;
    cfg->batch = 32;
    cfg->lr = 1e-3;
    cfg->clip = 1.0;
    cfg->patience = 3;
    cfg->holdout = 0.1;
    cfg->seed = 1;
}

static int check_config(const pretrain_config *cfg, char *err)
{
    if (cfg->epochs < 0 || cfg->batch < 1 || !(cfg->lr > 0) || !(cfg->clip >= 0) ||
        cfg->patience < 1 || !(cfg->holdout > 0 && cfg->holdout < 1))
        return err_set(err, DS_EINPUT, "pretraining needs epochs >= 0, batch >= 1, lr > 0, "
                       "clip >= 0, patience >= 1 and 0 < holdout < 1");
    return DS_OK;
}

/* One pass over the shuffled training windows; the mean loss per target. */
static int train_epoch(model *m, window_set *train, const pretrain_config *cfg, gsl_rng *r,
                       double *mean, char *err)
{
    static const nn_adam_config adam = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    gsl_ran_shuffle(r, train->w, train->n, sizeof *train->w);
    double sum = 0.0;
    long targets = 0;
    for (size_t b = 0; b < train->n; b += (size_t)cfg->batch) {
        size_t end = b + (size_t)cfg->batch < train->n ? b + (size_t)cfg->batch : train->n;
        long n = 0;
        for (size_t i = b; i < end; i++)
            n += window_prepare(m, &train->w[i]);
        if (n == 0)
            continue;
        nn_params_zero_grad(&m->params);
        for (size_t i = b; i < end; i++)
            sum += window_loss(m, &train->w[i], m->params.grad, 1.0 / (double)n);
        targets += n;
        if (!isfinite(sum))
            return err_set(err, DS_ENUMERIC, "the pretraining loss diverged (lower --lr)");
        if (cfg->clip > 0)
            nn_clip_grad_norm(&m->params, cfg->clip);
        nn_adam_step(&m->params, &adam, cfg->lr);
    }
    *mean = targets ? sum / (double)targets : NAN;
    return DS_OK;
}

static double cpu_now(void)
{
    return (double)clock() / CLOCKS_PER_SEC;
}

/* OpenBLAS's threads would make sums depend on the thread count: one thread. */
void openblas_set_num_threads(int n);

static int train(model *m, window_set *train_set, const window_set *heldout,
                 const pretrain_config *cfg, gsl_rng *r, pretrain_report *rep, FILE *progress,
                 char *err)
{
    double *best = malloc(m->layout.size * sizeof *best);
    if (!best)
        return err_set(err, DS_ENOMEM, "out of memory for the best weights");
    memcpy(best, m->params.w, m->layout.size * sizeof *best);
    rep->heldout_loss = rep->initial_loss = mean_loss(m, heldout, rep->heldout_targets);
    rep->train_loss = NAN;
    int rc = DS_OK, stale = 0;
    for (int epoch = 1; epoch <= cfg->epochs && stale < cfg->patience && rc == DS_OK;
         epoch++) {
        double train_loss = NAN;
        rc = train_epoch(m, train_set, cfg, r, &train_loss, err);
        if (rc != DS_OK)
            break;
        double loss = mean_loss(m, heldout, rep->heldout_targets);
        rep->epochs_run = epoch;
        if (progress)
            fprintf(progress, "epoch %d: train %.4f, held-out %.4f nats per click%s\n", epoch,
                    train_loss, loss, loss < rep->heldout_loss ? " (best)" : "");
        if (loss < rep->heldout_loss) {
            rep->heldout_loss = loss;
            rep->train_loss = train_loss;
            rep->best_epoch = epoch;
            memcpy(best, m->params.w, m->layout.size * sizeof *best);
            stale = 0;
        } else {
            stale++;
        }
    }
    memcpy(m->params.w, best, m->layout.size * sizeof *best);
    free(best);
    return rc;
}

int pretrain_run(const interaction_log *logged, const pretrain_config *cfg,
                 const char *out_path, pretrain_report *rep, FILE *progress, char *err)
{
    *rep = (pretrain_report){0};
    int rc = check_config(cfg, err);
    if (rc != DS_OK)
        return rc;
    openblas_set_num_threads(1);
    gsl_set_error_handler_off();
    double t0 = cpu_now();
    gsl_rng *r = gsl_rng_alloc(rng_mt19937);
    window_set train_set = {0}, heldout = {0};
    model m = {0};
    if (!r)
        return err_set(err, DS_ENOMEM, "out of memory for the random generator");
    gsl_rng_set(r, (unsigned long)cfg->seed);
    rc = model_init(&m, logged, cfg, r, err);
    if (rc == DS_OK &&
        (make_windows(logged, cfg, 0, &train_set, &rep->train_streams) != DS_OK ||
         make_windows(logged, cfg, 1, &heldout, &rep->heldout_streams) != DS_OK))
        rc = err_set(err, DS_ENOMEM, "out of memory for the training windows");
    if (rc == DS_OK) {
        rep->train_windows = (long)train_set.n;
        rep->heldout_windows = (long)heldout.n;
        rep->train_targets = count_targets(&m, &train_set);
        rep->heldout_targets = count_targets(&m, &heldout);
        if (rep->train_targets == 0 || rep->heldout_targets == 0)
            rc = err_set(err, DS_EINPUT, "too few clicks to pretrain: %ld training and %ld "
                         "held-out next clicks (log more sessions)", rep->train_targets,
                         rep->heldout_targets);
    }
    if (rc == DS_OK) {
        rep->uniform_loss = log((double)logged->n_items);
        rep->popularity_loss = popularity_loss(&m, &train_set, &heldout,
                                               rep->heldout_targets);
        rc = train(&m, &train_set, &heldout, cfg, r, rep, progress, err);
    }
    if (rc == DS_OK && out_path)
        rc = checkpoint_save(out_path, &cfg->tf, logged->n_items, &m.layout, m.params.w, err);
    rep->cpu_seconds = cpu_now() - t0;
    model_free(&m);
    free(train_set.w);
    free(heldout.w);
    gsl_rng_free(r);
    return rc;
}

/* ---- the command ---- */

typedef struct {
    const char *db, *out;
    log_selection only;
    int quiet;
    pretrain_config cfg;
} pretrain_args;

/* An integer option's value in [lo, hi] into *v. */
static int int_option(const char *name, const char *text, long lo, long hi, int *v, char *err)
{
    char *end;
    long x = strtol(text, &end, 10);
    if (end == text || *end || x < lo || x > hi)
        return err_set(err, DS_EINPUT, "'%s' needs an integer in [%ld, %ld], not '%s'", name,
                       lo, hi, text);
    *v = (int)x;
    return DS_OK;
}

static int real_option(const char *name, const char *text, double *v, char *err)
{
    char *end;
    double x = strtod(text, &end);
    if (end == text || *end || !(x > 0) || !isfinite(x))
        return err_set(err, DS_EINPUT, "'%s' needs a positive number, not '%s'", name, text);
    *v = x;
    return DS_OK;
}

static int seed_option(const char *text, uint64_t *v, char *err)
{
    char *end;
    unsigned long long x = strtoull(text, &end, 10);
    if (end == text || *end || text[0] == '-')
        return err_set(err, DS_EINPUT, "'--seed' needs a non-negative integer, not '%s'", text);
    *v = (uint64_t)x;
    return DS_OK;
}

/* Options taking an integer, and where each goes. */
static int *int_target(pretrain_args *a, const char *opt, long *lo, long *hi)
{
    static const struct {
        const char *name;
        size_t at;
        long lo, hi;
    } opts[] = {
        {"--epochs", offsetof(pretrain_config, epochs), 0, 100000},
        {"--batch", offsetof(pretrain_config, batch), 1, 1000000},
        {"--patience", offsetof(pretrain_config, patience), 1, 100000},
        {"--context", offsetof(pretrain_config, tf.context), 1, TRANSFORMER_MAX_CONTEXT},
        {"--layers", offsetof(pretrain_config, tf.layers), 1, TRANSFORMER_MAX_LAYERS},
        {"--heads", offsetof(pretrain_config, tf.heads), 1, 1024},
        {"--width", offsetof(pretrain_config, tf.width), 1, 4096},
        {"--mlp-ratio", offsetof(pretrain_config, tf.mlp_ratio), 1, 16},
    };
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++)
        if (strcmp(opt, opts[i].name) == 0) {
            *lo = opts[i].lo;
            *hi = opts[i].hi;
            return (int *)((char *)&a->cfg + opts[i].at);
        }
    return NULL;
}

static int parse_pretrain_args(int argc, char **argv, pretrain_args *a, char *err)
{
    *a = (pretrain_args){0};
    pretrain_config_defaults(&a->cfg);
    int rc = DS_OK;
    for (int i = 2; i < argc && rc == DS_OK; i++) {
        const char *opt = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        long lo, hi;
        int *target = int_target(a, opt, &lo, &hi);
        if (strcmp(opt, "-q") == 0) {
            a->quiet = 1;
            continue;
        }
        if (opt[0] != '-') {
            if (a->db)
                return err_set(err, DS_EINPUT, "pretrain: one database only ('%s', '%s')",
                               a->db, opt);
            a->db = opt;
            continue;
        }
        if (!target && strcmp(opt, "-o") != 0 && strcmp(opt, "--agent") != 0 &&
            strcmp(opt, "--run-seed") != 0 &&
            strcmp(opt, "--seed") != 0 && strcmp(opt, "--lr") != 0 &&
            strcmp(opt, "--holdout") != 0)
            return err_set(err, DS_EINPUT, "pretrain: unknown option '%s'", opt);
        if (!val)
            return err_set(err, DS_EINPUT, "pretrain: '%s' needs a value", opt);
        i++;
        if (target)
            rc = int_option(opt, val, lo, hi, target, err);
        else if (strcmp(opt, "-o") == 0)
            a->out = val;
        else if (strcmp(opt, "--agent") == 0)
            a->only.agent = val;
        else if (strcmp(opt, "--run-seed") == 0) {
            a->only.by_seed = 1;
            rc = seed_option(val, &a->only.seed, err);
        }
        else if (strcmp(opt, "--seed") == 0)
            rc = seed_option(val, &a->cfg.seed, err);
        else if (strcmp(opt, "--lr") == 0)
            rc = real_option(opt, val, &a->cfg.lr, err);
        else
            rc = real_option(opt, val, &a->cfg.holdout, err);
    }
    if (rc == DS_OK && (!a->db || !a->out))
        rc = err_set(err, DS_EINPUT, "usage: divsim pretrain DB -o FILE [--agent NAME] "
                     "[--run-seed S] [--epochs N] [--seed S] ... (see divsim --help)");
    return rc;
}

static void print_report(FILE *out, const interaction_log *log, const pretrain_args *a,
                         const pretrain_report *rep)
{
    const transformer_config *c = &a->cfg.tf;
    fprintf(out, "log: %ld runs, %ld rows, %zu (run, user) streams, %ld clicks, %d items\n",
            log->n_runs, log->n_rows, log->n_streams, log->n_clicks, log->n_items);
    fprintf(out, "model: context %d, layers %d, heads %d, width %d, mlp_ratio %d; seed %"
            PRIu64 "\n", c->context, c->layers, c->heads, c->width, c->mlp_ratio, a->cfg.seed);
    fprintf(out, "windows: %ld train (%ld streams, %ld targets), %ld held out (%ld streams, "
            "%ld targets)\n", rep->train_windows, rep->train_streams, rep->train_targets,
            rep->heldout_windows, rep->heldout_streams, rep->heldout_targets);
    fprintf(out, "stopped after %d epochs; best epoch %d (%.1f s CPU)\n", rep->epochs_run,
            rep->best_epoch, rep->cpu_seconds);
    fprintf(out, "held-out next-click cross-entropy, nats per click:\n");
    fprintf(out, "  pretrained  %.4f\n", rep->heldout_loss);
    fprintf(out, "  popularity  %.4f   (Laplace-smoothed, training users' clicks)\n",
            rep->popularity_loss);
    fprintf(out, "  uniform     %.4f   (ln %d)\n", rep->uniform_loss, log->n_items);
    fprintf(out, "  untrained   %.4f\n", rep->initial_loss);
    fprintf(out, "pretrained - popularity: %+.4f nats per click (perplexity %.1f vs %.1f)\n",
            rep->heldout_loss - rep->popularity_loss, exp(rep->heldout_loss),
            exp(rep->popularity_loss));
    fprintf(out, "checkpoint: %s\n", a->out);
}

int pretrain_command(int argc, char **argv, FILE *out, char *err)
{
    pretrain_args a;
    int rc = parse_pretrain_args(argc, argv, &a, err);
    if (rc != DS_OK)
        return rc;
    interaction_log log;
    rc = interaction_log_read(a.db, &a.only, &log, err);
    if (rc != DS_OK)
        return rc;
    pretrain_report rep;
    rc = pretrain_run(&log, &a.cfg, a.out, &rep, a.quiet ? NULL : out, err);
    if (rc == DS_OK)
        print_report(out, &log, &a, &rep);
    interaction_log_free(&log);
    return rc;
}
