/* `divsim compare`: per group of finished runs, the mean, sd, n and 95%
 * Student-t confidence interval of each metric over seeds; against a baseline
 * group, a t-test per metric (paired by seed when the seeds match, else Welch)
 * with Holm's adjustment over all the comparisons, and an effect size.
 *
 * A run contributes one value per metric: the mean over its episodes of the
 * phase (episode metrics) or its row of the phases table (phase metrics). A
 * group is the runs that share the value of every grouping key; by default
 * the keys are env, agent and configuration (the seeds of one sweep point). */
#include "report.h"

#include "../agents/agent.h"
#include "common.h"
#include "params.h"
#include "stats.h"
#include "store.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- metrics ---- */

typedef struct {
    const char *name;  /* the column, as users type it */
    const char *title; /* the table header */
    int from_phases;   /* 1: a column of phases; 0: mean over the phase's episodes */
} metric_def;

static const metric_def metric_defs[] = {
    {"reward", "reward/episode", 0},
    {"shaped_reward", "shaped reward/episode", 0},
    {"clicks", "clicks/episode", 0},
    {"purchases", "purchases/episode", 0},
    {"revenue", "revenue/episode", 0},
    {"length", "length", 0},
    {"ctr", "CTR", 0},
    {"purchases_per_1000", "purchases/1000 impr.", 0},
    {"ild", "ILD", 0},
    {"topic_ild", "topic ILD", 0},
    {"topic_entropy", "topic entropy", 0},
    {"novelty", "novelty", 0},
    {"repeat_rate", "repeat rate", 0},
    {"coverage", "coverage", 1},
    {"gini", "Gini", 1},
    {"exposure_entropy", "exposure entropy", 1},
    {"exposure_entropy_norm", "exposure entropy (norm.)", 1},
    {"retention", "retention", 1},
    {"churn_rate", "churn rate", 1},
};

enum {
    N_METRIC_DEFS = sizeof metric_defs / sizeof metric_defs[0],
    MAX_BY = 8,              /* --by keys */
    MAX_KEYS = MAX_BY + 2,   /* plus an implicit env and configuration */
    TEXT_CELL = 19           /* "%9.4f ±%-8.4f" */
};

static const char *const default_metrics[] = {"purchases", "ild", "coverage", "gini"};

static const metric_def *find_metric(const char *name, size_t len)
{
    for (size_t i = 0; i < N_METRIC_DEFS; i++)
        if (strlen(metric_defs[i].name) == len && strncmp(metric_defs[i].name, name, len) == 0)
            return &metric_defs[i];
    return NULL;
}

/* ---- options ---- */

enum { FORMAT_TEXT, FORMAT_MARKDOWN, FORMAT_LATEX, FORMAT_CSV };
static const char *const format_names[] = {"text", "markdown", "latex", "csv"};

typedef struct {
    const char *db_path;
    const metric_def *metrics[N_METRIC_DEFS];
    size_t n_metrics;
    const char *by[MAX_BY]; /* as given; none means the default grouping */
    size_t n_by;
    const char *phase;      /* "train" or "eval" */
    const char *baseline;   /* NULL: no tests */
    int format;
} compare_options;

static int unknown_metric(const char *name, size_t len, char *err)
{
    char key[128];
    snprintf(key, sizeof key, "%.*s", (int)(len < 100 ? len : 100), name);
    const char *names[N_METRIC_DEFS];
    char list[512] = "";
    for (size_t i = 0; i < N_METRIC_DEFS; i++) {
        names[i] = metric_defs[i].name;
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
    }
    const char *guess = param_suggest(key, names, N_METRIC_DEFS);
    if (guess)
        return err_set(err, DS_EINPUT, "compare: unknown metric '%s' (did you mean '%s'?)",
                       key, guess);
    return err_set(err, DS_EINPUT, "compare: unknown metric '%s'; metrics: %s", key, list);
}

/* Adds the metrics of a comma list, each once. */
static int add_metrics(compare_options *o, const char *list, char *err)
{
    const char *p = list;
    for (;;) {
        size_t len = strcspn(p, ",");
        const metric_def *m = find_metric(p, len);
        if (!m)
            return unknown_metric(p, len, err);
        int seen = 0;
        for (size_t i = 0; i < o->n_metrics; i++)
            seen |= o->metrics[i] == m;
        if (!seen)
            o->metrics[o->n_metrics++] = m;
        if (p[len] == '\0')
            return DS_OK;
        p += len + 1;
    }
}

static int choose(const char *option, const char *value, const char *const *names, int n,
                  int *out, char *err)
{
    for (int i = 0; i < n; i++)
        if (strcmp(value, names[i]) == 0) {
            *out = i;
            return DS_OK;
        }
    char list[128] = "";
    for (int i = 0; i < n; i++) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%s", i ? (i + 1 < n ? ", " : " or ") : "",
                 names[i]);
    }
    return err_set(err, DS_EINPUT, "compare: %s '%s': expected %s", option, value, list);
}

static const char *const option_names[] = {"--metric", "--phase", "--by", "--baseline",
                                           "--format"};
enum { OPT_METRIC, OPT_PHASE, OPT_BY, OPT_BASELINE, OPT_FORMAT, N_OPTIONS };

static int unknown_option(const char *arg, char *err)
{
    const char *guess = param_suggest(arg, option_names, N_OPTIONS);
    if (guess)
        return err_set(err, DS_EINPUT, "compare: unknown option '%s' (did you mean '%s'?)",
                       arg, guess);
    return err_set(err, DS_EINPUT,
                   "compare: unknown option '%s'; options: --metric, --phase, --by, "
                   "--baseline, --format", arg);
}

static int set_option(compare_options *o, int option, const char *value, char *err)
{
    static const char *const phases[] = {"train", "eval"};
    int i;
    switch (option) {
    case OPT_METRIC:
        return add_metrics(o, value, err);
    case OPT_PHASE:
        if (choose("phase", value, phases, 2, &i, err) != DS_OK)
            return DS_EINPUT;
        o->phase = phases[i];
        return DS_OK;
    case OPT_BY:
        if (o->n_by == MAX_BY)
            return err_set(err, DS_EINPUT, "compare: at most %d --by keys", MAX_BY);
        if (!*value)
            return err_set(err, DS_EINPUT, "compare: --by needs a key");
        o->by[o->n_by++] = value;
        return DS_OK;
    case OPT_BASELINE:
        o->baseline = value;
        return DS_OK;
    default:
        return choose("format", value, format_names, 4, &o->format, err);
    }
}

static void set_default_metrics(compare_options *o)
{
    o->n_metrics = 0;
    for (size_t i = 0; i < sizeof default_metrics / sizeof *default_metrics; i++)
        o->metrics[o->n_metrics++] = find_metric(default_metrics[i], strlen(default_metrics[i]));
}

static int parse_options(int argc, char **argv, compare_options *o, char *err)
{
    *o = (compare_options){.phase = "eval", .format = FORMAT_TEXT};
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] == '\0') {
            if (o->db_path)
                return err_set(err, DS_EINPUT,
                               "compare: expected one results DB, got '%s' and '%s'",
                               o->db_path, arg);
            o->db_path = arg;
            continue;
        }
        int option = 0;
        while (option < N_OPTIONS && strcmp(arg, option_names[option]) != 0)
            option++;
        if (option == N_OPTIONS)
            return unknown_option(arg, err);
        if (i + 1 >= argc)
            return err_set(err, DS_EINPUT, "compare: option '%s' needs a value", arg);
        int rc = set_option(o, option, argv[++i], err);
        if (rc != DS_OK)
            return rc;
    }
    if (!o->db_path)
        return err_set(err, DS_EINPUT, "compare: missing the results DB");
    if (o->n_metrics == 0)
        set_default_metrics(o);
    return DS_OK;
}

/* ---- grouping keys ---- */

typedef enum { KEY_ENV, KEY_AGENT, KEY_CONFIG, KEY_PARAM } key_kind;

typedef struct {
    key_kind kind;
    const char *name; /* the column header: "env", "agent", "config" or a params key */
    int implicit;     /* not named by --by, so never the key --baseline matches */
} group_key;

typedef struct {
    group_key keys[MAX_KEYS];
    size_t n_keys;
    int show_config; /* text, markdown and latex show the config column */
} grouping;

/* ---- rows and groups ---- */

typedef struct {
    char *label[MAX_KEYS]; /* the run's value of each key; NULL when it has none */
    int rank[MAX_KEYS];    /* agents in registry order, missing values last */
    size_t n_keys;
    int64_t seed;
    double values[N_METRIC_DEFS]; /* [n_metrics]; NAN where the run has no value */
} run_row;

enum { TEST_NONE, TEST_BASELINE, TEST_PAIRED, TEST_WELCH };

typedef struct {
    summary sum;   /* over the runs with a value; n = 0 and NANs when none has */
    int test;      /* TEST_* */
    t_test t;
    double p_holm; /* NAN unless tested */
} cell;

typedef struct {
    size_t first, n;             /* rows[first .. first + n), sorted by seed */
    cell cells[N_METRIC_DEFS];   /* [n_metrics] */
} group;

typedef struct {
    compare_options opt;
    grouping g;
    run_row *rows;
    size_t n_rows;
    group *groups;
    size_t n_groups;
    size_t baseline_key;   /* index into g.keys of the key NAME matched */
    size_t n_comparisons;  /* tests with a p-value, the size of Holm's family */
} comparison;

static void comparison_free(comparison *c)
{
    for (size_t i = 0; i < c->n_rows; i++)
        for (size_t k = 0; k < c->rows[i].n_keys; k++)
            free(c->rows[i].label[k]);
    free(c->rows);
    free(c->groups);
}

static int agent_rank(const char *name)
{
    for (int i = 0; i < agent_registry_count; i++)
        if (strcmp(agent_registry[i]->name, name) == 0)
            return i;
    return agent_registry_count;
}

/* A whole string that is a finite number, so that sweep values sort 8 < 16. */
static int as_number(const char *s, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return end != s && *end == '\0' && errno == 0 && isfinite(*out);
}

/* A total order on labels: by rank, then numbers (numerically) before other
 * text (by bytes); equal only for equal strings. */
static int compare_labels(const char *a, int rank_a, const char *b, int rank_b)
{
    if (rank_a != rank_b)
        return rank_a < rank_b ? -1 : 1;
    if (!a || !b)
        return (a == NULL) - (b == NULL);
    double x, y;
    int num_a = as_number(a, &x), num_b = as_number(b, &y);
    if (num_a != num_b)
        return num_a ? -1 : 1;
    if (num_a && x != y)
        return x < y ? -1 : 1;
    return strcmp(a, b);
}

static int compare_keys(const run_row *x, const run_row *y)
{
    for (size_t k = 0; k < x->n_keys; k++) {
        int c = compare_labels(x->label[k], x->rank[k], y->label[k], y->rank[k]);
        if (c)
            return c;
    }
    return 0;
}

static int by_keys_then_seed(const void *a, const void *b)
{
    const run_row *x = a, *y = b;
    int c = compare_keys(x, y);
    if (c)
        return c;
    return (x->seed > y->seed) - (x->seed < y->seed);
}

static int same_label(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* ---- reading the database ---- */

static int not_ours(sqlite3 *db, const char *path, char *err)
{
    return err_set(err, DS_EIO, "'%s' is not a divsim results database: %s", path,
                   sqlite3_errmsg(db));
}

static int read_error(sqlite3 *db, const char *path, char *err)
{
    if ((sqlite3_errcode(db) & 0xff) == SQLITE_NOMEM)
        return err_set(err, DS_ENOMEM, "out of memory reading '%s'", path);
    return err_set(err, DS_EIO, "reading '%s': %s", path, sqlite3_errmsg(db));
}

/* An empty database, or one without a finished run, is an input error. */
static int check_has_done_runs(sqlite3 *db, const char *path, char *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT count(*), count(CASE WHEN status = 'done' THEN 1 END)"
                               " FROM runs", -1, &st, NULL) != SQLITE_OK)
        return not_ours(db, path, err);
    int rc = DS_OK;
    if (sqlite3_step(st) != SQLITE_ROW)
        rc = read_error(db, path, err);
    else if (sqlite3_column_int64(st, 0) == 0)
        rc = err_set(err, DS_EINPUT, "'%s' holds no runs: nothing to compare", path);
    else if (sqlite3_column_int64(st, 1) == 0)
        rc = err_set(err, DS_EINPUT,
                     "'%s' holds %lld runs but none is done (see divsim status)", path,
                     (long long)sqlite3_column_int64(st, 0));
    sqlite3_finalize(st);
    return rc;
}

/* Checks that every --by key is "agent", "env" or a key of the params table. */
static int check_by_keys(sqlite3 *db, const compare_options *o, char *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT DISTINCT key FROM params ORDER BY key", -1, &st, NULL)
        != SQLITE_OK)
        return not_ours(db, o->db_path, err);
    char **keys = NULL;
    size_t n = 0;
    int rc = DS_OK, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 0);
        char **grown = realloc(keys, (n + 1) * sizeof *grown);
        if (!grown || !(grown[n] = strdup(key ? key : ""))) {
            keys = grown ? grown : keys;
            rc = err_set(err, DS_ENOMEM, "out of memory reading '%s'", o->db_path);
            break;
        }
        keys = grown;
        n++;
    }
    if (rc == DS_OK && step != SQLITE_DONE)
        rc = read_error(db, o->db_path, err);
    sqlite3_finalize(st);
    for (size_t b = 0; rc == DS_OK && b < o->n_by; b++) {
        const char *by = o->by[b];
        int found = strcmp(by, "agent") == 0 || strcmp(by, "env") == 0;
        for (size_t i = 0; !found && i < n; i++)
            found = strcmp(keys[i], by) == 0;
        if (found)
            continue;
        static const char *const builtin[] = {"agent", "env"};
        const char *guess = param_suggest(by, (const char *const *)keys, n);
        if (!guess)
            guess = param_suggest(by, builtin, 2);
        if (guess)
            rc = err_set(err, DS_EINPUT,
                         "compare: unknown parameter '%s' (did you mean '%s'?)", by, guess);
        else
            rc = err_set(err, DS_EINPUT,
                         "compare: unknown parameter '%s': --by takes agent, env or a key "
                         "of the params table of '%s', such as 'env.items'", by, o->db_path);
    }
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
    return rc;
}

static int count_envs(sqlite3 *db, const char *path, long *n, char *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT count(DISTINCT env) FROM runs WHERE status = 'done'",
                           -1, &st, NULL) != SQLITE_OK)
        return not_ours(db, path, err);
    int rc = DS_OK;
    if (sqlite3_step(st) == SQLITE_ROW)
        *n = (long)sqlite3_column_int64(st, 0);
    else
        rc = read_error(db, path, err);
    sqlite3_finalize(st);
    return rc;
}

static void add_key(grouping *g, key_kind kind, const char *name, int implicit)
{
    g->keys[g->n_keys++] = (group_key){.kind = kind, .name = name, .implicit = implicit};
}

/* The default: env, agent and configuration, of which --baseline matches the
 * agent. With --by: those keys, after env when the database holds several
 * environments and env is not among them. */
static void choose_keys(const compare_options *o, long n_envs, grouping *g)
{
    *g = (grouping){0};
    if (o->n_by == 0) {
        add_key(g, KEY_ENV, "env", 1);
        add_key(g, KEY_AGENT, "agent", 0);
        add_key(g, KEY_CONFIG, "config", 1);
        return;
    }
    int has_env = 0;
    for (size_t i = 0; i < o->n_by; i++)
        has_env |= strcmp(o->by[i], "env") == 0 || strcmp(o->by[i], "env.kind") == 0;
    if (n_envs > 1 && !has_env)
        add_key(g, KEY_ENV, "env", 1);
    for (size_t i = 0; i < o->n_by; i++) {
        if (strcmp(o->by[i], "agent") == 0)
            add_key(g, KEY_AGENT, "agent", 0);
        else if (strcmp(o->by[i], "env") == 0)
            add_key(g, KEY_ENV, "env", 0);
        else
            add_key(g, KEY_PARAM, o->by[i], 0);
    }
}

/* One row per done run with episodes in the phase: seed, env, agent, config
 * hash, then the value of each params key, then each metric. (SQLite's printf
 * has no %zu: its %z is a string it frees.) */
static char *per_run_sql(const comparison *c)
{
    sqlite3_str *s = sqlite3_str_new(NULL);
    sqlite3_str_appendall(s, "SELECT r.seed, r.env, r.agent, r.config_hash");
    for (size_t k = 0; k < c->g.n_keys; k++)
        if (c->g.keys[k].kind == KEY_PARAM)
            sqlite3_str_appendf(s, ", k%d.value", (int)k);
    for (size_t m = 0; m < c->opt.n_metrics; m++) {
        const metric_def *d = c->opt.metrics[m];
        sqlite3_str_appendf(s, ", %s.%s", d->from_phases ? "ph" : "e", d->name);
    }
    sqlite3_str_appendall(s, " FROM runs AS r JOIN (SELECT run_id, count(*) AS n_episodes");
    for (size_t m = 0; m < c->opt.n_metrics; m++)
        if (!c->opt.metrics[m]->from_phases)
            sqlite3_str_appendf(s, ", avg(%s) AS %s", c->opt.metrics[m]->name,
                                c->opt.metrics[m]->name);
    sqlite3_str_appendall(s, " FROM episodes WHERE phase = ?1 GROUP BY run_id) AS e"
                             " ON e.run_id = r.id"
                             " LEFT JOIN phases AS ph ON ph.run_id = r.id AND ph.phase = ?1");
    int param = 2;
    for (size_t k = 0; k < c->g.n_keys; k++)
        if (c->g.keys[k].kind == KEY_PARAM)
            sqlite3_str_appendf(s, " LEFT JOIN params AS k%d ON k%d.run_id = r.id"
                                   " AND k%d.key = ?%d", (int)k, (int)k, (int)k, param++);
    sqlite3_str_appendall(s, " WHERE r.status = 'done'");
    return sqlite3_str_finish(s); /* NULL when out of memory */
}

static char *column_copy(sqlite3_stmt *st, int col, int *oom)
{
    const char *text = (const char *)sqlite3_column_text(st, col);
    if (!text)
        return NULL;
    char *copy = strdup(text);
    if (!copy)
        *oom = 1;
    return copy;
}

static int add_row(comparison *c, sqlite3_stmt *st, size_t *cap)
{
    if (c->n_rows == *cap) {
        size_t grown_cap = *cap ? 2 * *cap : 64;
        run_row *grown = realloc(c->rows, grown_cap * sizeof *grown);
        if (!grown)
            return DS_ENOMEM;
        c->rows = grown;
        *cap = grown_cap;
    }
    run_row *r = &c->rows[c->n_rows++];
    memset(r, 0, sizeof *r);
    r->n_keys = c->g.n_keys;
    r->seed = sqlite3_column_int64(st, 0);
    int oom = 0, param_col = 4;
    for (size_t k = 0; k < c->g.n_keys; k++) {
        int col = 0;
        switch (c->g.keys[k].kind) {
        case KEY_ENV: col = 1; break;
        case KEY_AGENT: col = 2; break;
        case KEY_CONFIG: col = 3; break;
        case KEY_PARAM: col = param_col++; break;
        }
        r->label[k] = column_copy(st, col, &oom);
        r->rank[k] = !r->label[k] ? INT_MAX
                     : c->g.keys[k].kind == KEY_AGENT ? agent_rank(r->label[k]) : 0;
    }
    for (size_t m = 0; m < c->opt.n_metrics; m++) {
        int col = param_col + (int)m;
        r->values[m] = sqlite3_column_type(st, col) == SQLITE_NULL
                           ? NAN : sqlite3_column_double(st, col);
    }
    return oom ? DS_ENOMEM : DS_OK;
}

static int read_rows(sqlite3 *db, comparison *c, char *err)
{
    const char *path = c->opt.db_path;
    char *sql = per_run_sql(c);
    if (!sql)
        return err_set(err, DS_ENOMEM, "out of memory reading '%s'", path);
    sqlite3_stmt *st;
    int prepared = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    sqlite3_free(sql);
    if (prepared != SQLITE_OK)
        return not_ours(db, path, err);
    int rc = DS_OK, param = 2;
    if (sqlite3_bind_text(st, 1, c->opt.phase, -1, SQLITE_STATIC) != SQLITE_OK)
        rc = read_error(db, path, err);
    for (size_t k = 0; rc == DS_OK && k < c->g.n_keys; k++)
        if (c->g.keys[k].kind == KEY_PARAM &&
            sqlite3_bind_text(st, param++, c->g.keys[k].name, -1, SQLITE_STATIC) != SQLITE_OK)
            rc = read_error(db, path, err);
    size_t cap = 0;
    int step = SQLITE_DONE;
    while (rc == DS_OK && (step = sqlite3_step(st)) == SQLITE_ROW)
        if (add_row(c, st, &cap) != DS_OK)
            rc = err_set(err, DS_ENOMEM, "out of memory reading '%s'", path);
    if (rc == DS_OK && step != SQLITE_DONE)
        rc = read_error(db, path, err);
    sqlite3_finalize(st);
    if (rc == DS_OK && c->n_rows == 0)
        rc = err_set(err, DS_EINPUT, "no finished run in '%s' has %s episodes", path,
                     c->opt.phase);
    return rc;
}

/* ---- groups and their statistics ---- */

static void summarize(const comparison *c, group *g, double *x)
{
    for (size_t m = 0; m < c->opt.n_metrics; m++) {
        cell *cl = &g->cells[m];
        cl->sum = (summary){.n = 0, .mean = NAN, .sd = NAN, .half_width = NAN};
        cl->test = TEST_NONE;
        cl->t = (t_test){.diff = NAN, .t = NAN, .df = NAN, .p = NAN, .effect = NAN};
        cl->p_holm = NAN;
        size_t n = 0;
        for (size_t i = 0; i < g->n; i++) {
            double v = c->rows[g->first + i].values[m];
            if (!isnan(v))
                x[n++] = v;
        }
        if (n > 0 && stats_summary(x, n, 0.95, &cl->sum) != DS_OK)
            cl->sum.half_width = NAN;
    }
}

static int form_groups(comparison *c, char *err)
{
    qsort(c->rows, c->n_rows, sizeof *c->rows, by_keys_then_seed);
    size_t n_groups = 0;
    for (size_t i = 0; i < c->n_rows; i++)
        n_groups += i == 0 || compare_keys(&c->rows[i - 1], &c->rows[i]) != 0;
    c->groups = calloc(n_groups, sizeof *c->groups);
    double *scratch = malloc(c->n_rows * sizeof *scratch); /* the values of one group */
    if (!c->groups || !scratch) {
        free(scratch);
        return err_set(err, DS_ENOMEM, "out of memory comparing '%s'", c->opt.db_path);
    }
    for (size_t i = 0; i < c->n_rows; i++) {
        if (i == 0 || compare_keys(&c->rows[i - 1], &c->rows[i]) != 0)
            c->groups[c->n_groups++].first = i;
        c->groups[c->n_groups - 1].n++;
    }
    for (size_t i = 0; i < c->n_groups; i++)
        summarize(c, &c->groups[i], scratch);
    free(scratch);
    /* The config column is shown only when it tells groups apart. */
    for (size_t i = 1; i < c->n_groups; i++) {
        const run_row *a = &c->rows[c->groups[i - 1].first], *b = &c->rows[c->groups[i].first];
        int differ = 0;
        for (size_t k = 0; k < c->g.n_keys; k++)
            if (c->g.keys[k].kind != KEY_CONFIG)
                differ |= !same_label(a->label[k], b->label[k]);
        c->g.show_config |= !differ;
    }
    return DS_OK;
}

static const char *group_label(const comparison *c, const group *g, size_t key)
{
    return c->rows[g->first].label[key];
}

/* Groups compared with each other agree on every key but the baseline key and
 * the configuration. */
static int same_stratum(const comparison *c, const group *a, const group *b)
{
    for (size_t k = 0; k < c->g.n_keys; k++)
        if (k != c->baseline_key && c->g.keys[k].kind != KEY_CONFIG &&
            !same_label(group_label(c, a, k), group_label(c, b, k)))
            return 0;
    return 1;
}

/* The first key named by the user (not implicit) with a group labelled NAME. */
static int find_baseline_key(comparison *c, char *err)
{
    const char *name = c->opt.baseline;
    for (size_t k = 0; k < c->g.n_keys; k++) {
        if (c->g.keys[k].implicit)
            continue;
        for (size_t i = 0; i < c->n_groups; i++)
            if (same_label(group_label(c, &c->groups[i], k), name)) {
                c->baseline_key = k;
                return DS_OK;
            }
    }
    /* Not found: suggest the closest label of the keys users named. */
    const char **labels = malloc(c->n_groups * MAX_KEYS * sizeof *labels);
    size_t n = 0, first = c->g.n_keys;
    for (size_t k = 0; labels && k < c->g.n_keys; k++) {
        if (c->g.keys[k].implicit)
            continue;
        if (first == c->g.n_keys)
            first = k;
        for (size_t i = 0; i < c->n_groups; i++)
            if (group_label(c, &c->groups[i], k))
                labels[n++] = group_label(c, &c->groups[i], k);
    }
    const char *guess = labels ? param_suggest(name, labels, n) : NULL;
    char values[256] = "";
    for (size_t i = 0; first < c->g.n_keys && i < c->n_groups; i++) {
        const char *v = group_label(c, &c->groups[i], first);
        if (!v || (i > 0 && same_label(v, group_label(c, &c->groups[i - 1], first))))
            continue;
        size_t used = strlen(values);
        snprintf(values + used, sizeof values - used, "%s%s", used ? ", " : "", v);
    }
    int rc;
    if (guess)
        rc = err_set(err, DS_EINPUT, "compare: no group is the baseline '%s' (did you mean "
                     "'%s'?)", name, guess);
    else
        rc = err_set(err, DS_EINPUT, "compare: no group is the baseline '%s'; the values of "
                     "%s are %s", name, first < c->g.n_keys ? c->g.keys[first].name : "agent",
                     values);
    free(labels);
    return rc;
}

/* The values of a group's runs that have one for metric m, and their seeds. */
static size_t present_values(const comparison *c, const group *g, size_t m, double *x,
                             int64_t *seeds)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n; i++) {
        const run_row *r = &c->rows[g->first + i];
        if (!isnan(r->values[m])) {
            x[n] = r->values[m];
            seeds[n++] = r->seed;
        }
    }
    return n;
}

/* Same seeds, each once: rows are sorted by seed, so equal sorted lists. */
static int seeds_match(const int64_t *a, size_t na, const int64_t *b, size_t nb)
{
    if (na != nb || na == 0)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (a[i] != b[i] || (i > 0 && a[i] == a[i - 1]))
            return 0;
    return 1;
}

static int test_against(const comparison *c, group *g, const group *base, double *x,
                        double *y, int64_t *sx, int64_t *sy)
{
    for (size_t m = 0; m < c->opt.n_metrics; m++) {
        cell *cl = &g->cells[m];
        size_t nx = present_values(c, g, m, x, sx), ny = present_values(c, base, m, y, sy);
        if (nx == 0 || ny == 0)
            continue;
        int rc;
        if (seeds_match(sx, nx, sy, ny)) {
            cl->test = TEST_PAIRED;
            rc = stats_paired_t(x, y, nx, &cl->t);
        } else {
            cl->test = TEST_WELCH;
            rc = stats_welch_t(x, nx, y, ny, &cl->t);
        }
        if (rc != DS_OK)
            return rc;
    }
    return DS_OK;
}

/* Matches every group with the baseline group of its stratum and tests it. */
static int run_tests(comparison *c, char *err)
{
    const char *path = c->opt.db_path;
    size_t most = 0;
    for (size_t i = 0; i < c->n_groups; i++)
        most = c->groups[i].n > most ? c->groups[i].n : most;
    double *x = malloc(2 * most * sizeof *x);
    int64_t *seeds = malloc(2 * most * sizeof *seeds);
    int rc = x && seeds ? DS_OK : DS_ENOMEM;
    for (size_t i = 0; rc == DS_OK && i < c->n_groups; i++) {
        group *g = &c->groups[i];
        if (same_label(group_label(c, g, c->baseline_key), c->opt.baseline)) {
            for (size_t m = 0; m < c->opt.n_metrics; m++)
                g->cells[m].test = TEST_BASELINE;
            continue;
        }
        if (!group_label(c, g, c->baseline_key))
            continue; /* runs without the baseline key are no level of it */
        const group *base = NULL;
        for (size_t j = 0; j < c->n_groups; j++) {
            const group *b = &c->groups[j];
            if (!same_label(group_label(c, b, c->baseline_key), c->opt.baseline) ||
                !same_stratum(c, g, b))
                continue;
            if (base) {
                free(x);
                free(seeds);
                return err_set(err, DS_EINPUT,
                               "compare: the baseline '%s' has several configurations in "
                               "'%s'; pool them with --by agent, or tell them apart with "
                               "--by PARAM", c->opt.baseline, path);
            }
            base = b;
        }
        if (base)
            rc = test_against(c, g, base, x, x + most, seeds, seeds + most);
    }
    free(x);
    free(seeds);
    if (rc != DS_OK)
        return err_set(err, rc, "out of memory comparing '%s'", path);
    return DS_OK;
}

/* Holm over every comparison that produced a p-value. */
static int adjust_p_values(comparison *c, char *err)
{
    size_t cap = c->n_groups * c->opt.n_metrics;
    double *p = malloc((cap ? cap : 1) * sizeof *p);
    if (!p)
        return err_set(err, DS_ENOMEM, "out of memory comparing '%s'", c->opt.db_path);
    size_t n = 0;
    for (size_t i = 0; i < c->n_groups; i++)
        for (size_t m = 0; m < c->opt.n_metrics; m++)
            if (!isnan(c->groups[i].cells[m].t.p) && c->groups[i].cells[m].test >= TEST_PAIRED)
                p[n++] = c->groups[i].cells[m].t.p;
    int rc = stats_holm(p, n, p);
    c->n_comparisons = n;
    n = 0;
    for (size_t i = 0; rc == DS_OK && i < c->n_groups; i++)
        for (size_t m = 0; m < c->opt.n_metrics; m++)
            if (!isnan(c->groups[i].cells[m].t.p) && c->groups[i].cells[m].test >= TEST_PAIRED)
                c->groups[i].cells[m].p_holm = p[n++];
    free(p);
    if (rc != DS_OK)
        return err_set(err, rc, "out of memory comparing '%s'", c->opt.db_path);
    return DS_OK;
}

/* ---- formatting ---- */

/* Whether key k is a column of the human-readable tables. */
static int shown(const comparison *c, size_t k)
{
    return c->g.keys[k].kind != KEY_CONFIG || c->g.show_config;
}

static const char *display_label(const char *label)
{
    return label ? label : "-";
}

static const char *test_name(int test)
{
    switch (test) {
    case TEST_BASELINE: return "baseline";
    case TEST_PAIRED: return "paired";
    case TEST_WELCH: return "welch";
    default: return "";
    }
}

/* "0.012", "<0.001"; "-" when there is no test, "n/a" when it is undefined. */
static void format_p(char *buf, size_t n, const cell *cl)
{
    if (cl->test == TEST_BASELINE)
        snprintf(buf, n, "baseline");
    else if (cl->test == TEST_NONE)
        snprintf(buf, n, "-");
    else if (isnan(cl->p_holm))
        snprintf(buf, n, "n/a");
    else if (cl->p_holm < 0.001)
        snprintf(buf, n, "<0.001");
    else
        snprintf(buf, n, "%.3f", cl->p_holm);
}

/* "d_z=1.23" (paired) or "g=-0.51" (Welch), with the given separator. */
static void format_effect(char *buf, size_t n, const cell *cl, const char *eq)
{
    if (cl->test < TEST_PAIRED)
        snprintf(buf, n, "%s", cl->test == TEST_BASELINE ? "" : "-");
    else if (isnan(cl->t.effect))
        snprintf(buf, n, "n/a");
    else
        snprintf(buf, n, "%s%s%.2f", cl->test == TEST_PAIRED ? "d_z" : "g", eq, cl->t.effect);
}

/* The keys that define whom a group is compared with, for the notes. */
static void stratum_names(const comparison *c, char *buf, size_t n)
{
    buf[0] = '\0';
    for (size_t k = 0; k < c->g.n_keys; k++) {
        if (k == c->baseline_key || c->g.keys[k].kind == KEY_CONFIG)
            continue;
        size_t used = strlen(buf);
        snprintf(buf + used, n - used, "%s%s", used ? ", " : "", c->g.keys[k].name);
    }
}

static void print_caption(FILE *out, const comparison *c, const char *pm)
{
    fprintf(out, "%s phase, mean %s 95%% CI half-width over seeds (Student t)", c->opt.phase,
            pm);
}

/* The notes on the tests below a table, each line starting with prefix. */
static void print_test_notes(FILE *out, const comparison *c, const char *prefix,
                             const char *p_name)
{
    char strata[256];
    stratum_names(c, strata, sizeof strata);
    fprintf(out, "%s%s: two-sided t-test of each group against the baseline %s '%s'", prefix,
            p_name, c->g.keys[c->baseline_key].name, c->opt.baseline);
    if (strata[0])
        fprintf(out, " of the same %s", strata);
    fprintf(out, ",\n%spaired by seed when both have the same seeds (effect: Cohen's d_z), "
                 "else Welch (effect: Hedges' g);\n", prefix);
    fprintf(out, "%seffects are group minus baseline; Holm-adjusted over %zu comparisons.\n",
            prefix, c->n_comparisons);
}

/* ---- text ---- */

static int key_width(const comparison *c, size_t k)
{
    const group_key *key = &c->g.keys[k];
    if (key->kind == KEY_CONFIG)
        return 8;
    size_t w = key->kind == KEY_ENV ? 8 : key->kind == KEY_AGENT ? 12 : 0;
    w = strlen(key->name) > w ? strlen(key->name) : w;
    for (size_t i = 0; i < c->n_groups; i++) {
        size_t len = strlen(display_label(group_label(c, &c->groups[i], k)));
        w = len > w ? len : w;
    }
    return (int)w;
}

static int metric_width(const metric_def *m)
{
    int len = (int)strlen(m->title);
    return len > TEXT_CELL ? len : TEXT_CELL;
}

static void print_text_cell(FILE *out, const cell *cl, int width)
{
    char buf[64];
    if (isnan(cl->sum.mean))
        snprintf(buf, sizeof buf, "%9s %-9s", "-", "");
    else if (isnan(cl->sum.half_width))
        snprintf(buf, sizeof buf, "%9.4f %-9s", cl->sum.mean, "");
    else
        snprintf(buf, sizeof buf, "%9.4f ±%-8.4f", cl->sum.mean, cl->sum.half_width);
    /* "±" is two bytes in UTF-8 but one column on a terminal. */
    int columns = (int)strlen(buf) - (strstr(buf, "±") ? 1 : 0);
    fprintf(out, "  %s%*s", buf, width - columns, "");
}

/* The effect column of metric m: as wide as its widest entry. */
static int effect_width(const comparison *c, size_t m)
{
    int w = 6; /* "effect" */
    for (size_t i = 0; i < c->n_groups; i++) {
        char e[32];
        format_effect(e, sizeof e, &c->groups[i].cells[m], "=");
        w = (int)strlen(e) > w ? (int)strlen(e) : w;
    }
    return w;
}

static void print_text(FILE *out, const comparison *c)
{
    int tests = c->opt.baseline != NULL;
    print_caption(out, c, "±");
    fputs("\n\n", out);
    for (size_t k = 0; k < c->g.n_keys; k++)
        if (shown(c, k))
            fprintf(out, "%-*s ", key_width(c, k), c->g.keys[k].name);
    fprintf(out, "%3s", "n");
    for (size_t m = 0; m < c->opt.n_metrics; m++) {
        fprintf(out, "  %-*s", metric_width(c->opt.metrics[m]), c->opt.metrics[m]->title);
        if (tests)
            fprintf(out, "  %-8s  %-*s", "p(Holm)", effect_width(c, m), "effect");
    }
    fputc('\n', out);
    for (size_t i = 0; i < c->n_groups; i++) {
        const group *g = &c->groups[i];
        for (size_t k = 0; k < c->g.n_keys; k++)
            if (shown(c, k)) {
                if (c->g.keys[k].kind == KEY_CONFIG)
                    fprintf(out, "%-8.8s ", display_label(group_label(c, g, k)));
                else
                    fprintf(out, "%-*s ", key_width(c, k), display_label(group_label(c, g, k)));
            }
        fprintf(out, "%3zu", g->n);
        for (size_t m = 0; m < c->opt.n_metrics; m++) {
            print_text_cell(out, &g->cells[m], metric_width(c->opt.metrics[m]));
            if (tests) {
                char p[32], e[32];
                format_p(p, sizeof p, &g->cells[m]);
                format_effect(e, sizeof e, &g->cells[m], "=");
                fprintf(out, "  %-8s  %-*s", p, effect_width(c, m), e);
            }
        }
        fputc('\n', out);
    }
    if (tests) {
        fputc('\n', out);
        print_test_notes(out, c, "", "p(Holm)");
    }
}

/* ---- markdown ---- */

static void print_markdown_text(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|' || *s == '\\')
            fputc('\\', out);
        fputc(*s, out);
    }
}

static void print_markdown(FILE *out, const comparison *c)
{
    int tests = c->opt.baseline != NULL;
    print_caption(out, c, "±");
    fputs("\n\n|", out);
    for (size_t k = 0; k < c->g.n_keys; k++)
        if (shown(c, k)) {
            fputc(' ', out);
            print_markdown_text(out, c->g.keys[k].name);
            fputs(" |", out);
        }
    fputs(" n |", out);
    for (size_t m = 0; m < c->opt.n_metrics; m++) {
        fprintf(out, " %s |", c->opt.metrics[m]->title);
        if (tests)
            fputs(" p (Holm) | effect |", out);
    }
    fputs("\n|", out);
    for (size_t k = 0; k < c->g.n_keys; k++)
        if (shown(c, k))
            fputs(":---|", out);
    fputs("---:|", out);
    for (size_t m = 0; m < c->opt.n_metrics; m++)
        fputs(tests ? "---:|---:|---:|" : "---:|", out);
    fputc('\n', out);
    for (size_t i = 0; i < c->n_groups; i++) {
        const group *g = &c->groups[i];
        fputc('|', out);
        for (size_t k = 0; k < c->g.n_keys; k++)
            if (shown(c, k)) {
                fputc(' ', out);
                const char *label = display_label(group_label(c, g, k));
                if (c->g.keys[k].kind == KEY_CONFIG)
                    fprintf(out, "%.8s", label);
                else
                    print_markdown_text(out, label);
                fputs(" |", out);
            }
        fprintf(out, " %zu |", g->n);
        for (size_t m = 0; m < c->opt.n_metrics; m++) {
            const cell *cl = &g->cells[m];
            if (isnan(cl->sum.mean))
                fputs(" - |", out);
            else if (isnan(cl->sum.half_width))
                fprintf(out, " %.4f |", cl->sum.mean);
            else
                fprintf(out, " %.4f ± %.4f |", cl->sum.mean, cl->sum.half_width);
            if (tests) {
                char p[32], e[32];
                format_p(p, sizeof p, cl);
                format_effect(e, sizeof e, cl, " = ");
                fprintf(out, " %s | %s |", p, e);
            }
        }
        fputc('\n', out);
    }
    if (tests) {
        fputc('\n', out);
        print_test_notes(out, c, "", "p (Holm)");
    }
}

/* ---- LaTeX ---- */

static void print_latex_text(FILE *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '\\': fputs("\\textbackslash{}", out); break;
        case '~': fputs("\\textasciitilde{}", out); break;
        case '^': fputs("\\textasciicircum{}", out); break;
        case '&': case '%': case '$': case '#': case '_': case '{': case '}':
            fputc('\\', out);
            fputc(*s, out);
            break;
        default: fputc(*s, out);
        }
    }
}

static void print_latex_cell(FILE *out, const cell *cl, int tests)
{
    if (isnan(cl->sum.mean))
        fputs(" & --", out);
    else if (isnan(cl->sum.half_width))
        fprintf(out, " & $%.4f$", cl->sum.mean);
    else
        fprintf(out, " & $%.4f \\pm %.4f$", cl->sum.mean, cl->sum.half_width);
    if (!tests)
        return;
    if (cl->test == TEST_BASELINE)
        fputs(" & baseline & ", out);
    else if (cl->test == TEST_NONE)
        fputs(" & -- & --", out);
    else {
        if (isnan(cl->p_holm))
            fputs(" & n/a", out);
        else if (cl->p_holm < 0.001)
            fputs(" & $<0.001$", out);
        else
            fprintf(out, " & $%.3f$", cl->p_holm);
        if (isnan(cl->t.effect))
            fputs(" & n/a", out);
        else
            fprintf(out, " & $%s = %.2f$", cl->test == TEST_PAIRED ? "d_z" : "g",
                    cl->t.effect);
    }
}

static void print_latex_header(FILE *out, const comparison *c, size_t n_key_cols, int tests)
{
    if (tests) {
        /* Each metric spans its mean, p and effect columns. */
        for (size_t i = 0; i < n_key_cols + 1; i++)
            fputs(i ? " & " : "", out);
        for (size_t m = 0; m < c->opt.n_metrics; m++) {
            fputs(" & \\multicolumn{3}{c}{", out);
            print_latex_text(out, c->opt.metrics[m]->title);
            fputc('}', out);
        }
        fputs(" \\\\\n", out);
        for (size_t m = 0; m < c->opt.n_metrics; m++)
            fprintf(out, "%s\\cmidrule(lr){%zu-%zu}", m ? " " : "",
                    n_key_cols + 2 + 3 * m, n_key_cols + 4 + 3 * m);
        fputc('\n', out);
    }
    int first = 1;
    for (size_t k = 0; k < c->g.n_keys; k++)
        if (shown(c, k)) {
            fputs(first ? "" : " & ", out);
            print_latex_text(out, c->g.keys[k].name);
            first = 0;
        }
    fputs(" & $n$", out);
    for (size_t m = 0; m < c->opt.n_metrics; m++) {
        if (tests) {
            fputs(" & mean $\\pm$ CI & $p_{\\mathrm{Holm}}$ & effect", out);
            continue;
        }
        fputs(" & ", out);
        print_latex_text(out, c->opt.metrics[m]->title);
    }
    fputs(" \\\\\n", out);
}

static void print_latex(FILE *out, const comparison *c)
{
    int tests = c->opt.baseline != NULL;
    fputs("% ", out);
    print_caption(out, c, "+-");
    fputs("\n% needs \\usepackage{booktabs}\n\\begin{tabular}{", out);
    size_t n_key_cols = 0;
    for (size_t k = 0; k < c->g.n_keys; k++)
        if (shown(c, k)) {
            fputc('l', out);
            n_key_cols++;
        }
    fputc('r', out);
    for (size_t m = 0; m < c->opt.n_metrics; m++)
        fputs(tests ? "rrr" : "r", out);
    fputs("}\n\\toprule\n", out);
    print_latex_header(out, c, n_key_cols, tests);
    fputs("\\midrule\n", out);
    for (size_t i = 0; i < c->n_groups; i++) {
        const group *g = &c->groups[i];
        int first = 1;
        for (size_t k = 0; k < c->g.n_keys; k++)
            if (shown(c, k)) {
                fputs(first ? "" : " & ", out);
                const char *label = display_label(group_label(c, g, k));
                if (c->g.keys[k].kind == KEY_CONFIG)
                    fprintf(out, "\\texttt{%.8s}", label);
                else
                    print_latex_text(out, label);
                first = 0;
            }
        fprintf(out, " & %zu", g->n);
        for (size_t m = 0; m < c->opt.n_metrics; m++)
            print_latex_cell(out, &g->cells[m], tests);
        fputs(" \\\\\n", out);
    }
    fputs("\\bottomrule\n\\end{tabular}\n", out);
    if (tests)
        print_test_notes(out, c, "% ", "$p_{\\mathrm{Holm}}$");
}

/* ---- CSV ---- */

static void print_csv_text(FILE *out, const char *s)
{
    if (!s)
        return;
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

/* A number with every digit, or an empty field for NAN. */
static void print_csv_number(FILE *out, double v)
{
    fputc(',', out);
    if (!isnan(v))
        fprintf(out, "%.17g", v);
}

static void print_csv(FILE *out, const comparison *c)
{
    for (size_t k = 0; k < c->g.n_keys; k++) {
        print_csv_text(out, c->g.keys[k].name);
        fputc(',', out);
    }
    fputs("metric,phase,n,mean,sd,ci95_half_width,baseline,test,diff,t,df,p,p_holm,effect,"
          "effect_kind\n", out);
    for (size_t i = 0; i < c->n_groups; i++) {
        const group *g = &c->groups[i];
        for (size_t m = 0; m < c->opt.n_metrics; m++) {
            const cell *cl = &g->cells[m];
            for (size_t k = 0; k < c->g.n_keys; k++) {
                print_csv_text(out, group_label(c, g, k));
                fputc(',', out);
            }
            fprintf(out, "%s,%s,%zu", c->opt.metrics[m]->name, c->opt.phase, cl->sum.n);
            print_csv_number(out, cl->sum.mean);
            print_csv_number(out, cl->sum.sd);
            print_csv_number(out, cl->sum.half_width);
            fputc(',', out);
            if (cl->test != TEST_NONE)
                print_csv_text(out, c->opt.baseline);
            fprintf(out, ",%s", test_name(cl->test));
            int tested = cl->test >= TEST_PAIRED;
            print_csv_number(out, tested ? cl->t.diff : NAN);
            print_csv_number(out, tested ? cl->t.t : NAN);
            print_csv_number(out, tested ? cl->t.df : NAN);
            print_csv_number(out, tested ? cl->t.p : NAN);
            print_csv_number(out, tested ? cl->p_holm : NAN);
            print_csv_number(out, tested ? cl->t.effect : NAN);
            fprintf(out, ",%s\n", !tested ? "" : cl->test == TEST_PAIRED ? "d_z" : "hedges_g");
        }
    }
}

/* ---- the command ---- */

static int compare_db(FILE *out, sqlite3 *db, const compare_options *opt, char *err)
{
    comparison c = {.opt = *opt};
    long n_envs = 0;
    int rc = check_has_done_runs(db, opt->db_path, err);
    if (rc == DS_OK)
        rc = check_by_keys(db, opt, err);
    if (rc == DS_OK)
        rc = count_envs(db, opt->db_path, &n_envs, err);
    if (rc == DS_OK) {
        choose_keys(opt, n_envs, &c.g);
        rc = read_rows(db, &c, err);
    }
    if (rc == DS_OK)
        rc = form_groups(&c, err);
    if (rc == DS_OK && opt->baseline) {
        rc = find_baseline_key(&c, err);
        if (rc == DS_OK)
            rc = run_tests(&c, err);
        if (rc == DS_OK)
            rc = adjust_p_values(&c, err);
    }
    if (rc == DS_OK) {
        switch (opt->format) {
        case FORMAT_MARKDOWN: print_markdown(out, &c); break;
        case FORMAT_LATEX: print_latex(out, &c); break;
        case FORMAT_CSV: print_csv(out, &c); break;
        default: print_text(out, &c); break;
        }
        if (fflush(out) != 0 || ferror(out))
            rc = err_set(err, DS_EIO, "writing the comparison of '%s': %s", opt->db_path,
                         strerror(errno));
    }
    comparison_free(&c);
    return rc;
}

int report_compare(FILE *out, sqlite3 *db, const char *db_path, char *err)
{
    compare_options opt = {.db_path = db_path, .phase = "eval", .format = FORMAT_TEXT};
    set_default_metrics(&opt);
    return compare_db(out, db, &opt, err);
}

int compare_command(int argc, char **argv, FILE *out, char *err)
{
    compare_options opt;
    int rc = parse_options(argc, argv, &opt, err);
    if (rc != DS_OK)
        return rc;
    struct stat st;
    if (stat(opt.db_path, &st) != 0 || !S_ISREG(st.st_mode))
        return err_set(err, DS_EINPUT, "compare: '%s' is not a file", opt.db_path);
    sqlite3 *db;
    rc = store_open_readonly(opt.db_path, &db, err);
    if (rc != DS_OK)
        return rc;
    rc = compare_db(out, db, &opt, err);
    sqlite3_close(db);
    return rc;
}
