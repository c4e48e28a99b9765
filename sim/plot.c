/* `divsim plot`: figures of a results database, drawn by gnuplot (see plot.h
 * for the files written and how gnuplot is run).
 *
 * A series is a configuration (runs.config_hash: the seeds of one point of a
 * sweep), titled by its agent and the swept settings it has ("cf (factors =
 * 8)"); without a sweep there is one per agent. Every value drawn is a mean
 * over the done runs of a series with a 95% Student-t confidence interval
 * (stats_summary); with one run the interval has zero width. Series take their
 * colour from their agent (the agent's rank, in registry order, among the
 * agents in the database) and a variant (dash or point type) from their rank
 * within the agent. */
#include "plot.h"

#include "../agents/agent.h"
#include "common.h"
#include "stats.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

enum { PATH_LEN = 4096, MAX_Y = 3 };

enum { FMT_PNG = 1, FMT_PDF = 2, FMT_SVG = 4 };
static const char *const format_names[] = {"png", "pdf", "svg"};
enum { N_FORMATS = 3 };

enum { KIND_LEARNING = 1, KIND_PARETO = 2, KIND_SWEEP = 4, KIND_COVERAGE = 8,
       KIND_TRAINING = 16 };
static const char *const kind_names[] = {"learning", "pareto", "sweep", "coverage", "training"};
enum { N_KINDS = 5 };

/* ---- metrics ---- */

typedef enum { FROM_EPISODES, FROM_WINDOWS } metric_source;

typedef struct {
    const char *name;      /* a column of episodes, or of windows and phases */
    metric_source source;
    const char *label;     /* the axis label, with units */
} metric_info;

static const metric_info metric_table[] = {
    {"purchases", FROM_EPISODES, "purchases per episode"},
    {"reward", FROM_EPISODES, "reward per episode"},
    {"shaped_reward", FROM_EPISODES, "shaped reward per episode"},
    {"clicks", FROM_EPISODES, "clicks per episode"},
    {"revenue", FROM_EPISODES, "revenue per episode (currency units)"},
    {"length", FROM_EPISODES, "episode length (steps)"},
    {"ctr", FROM_EPISODES, "click-through rate (clicks per step)"},
    {"purchases_per_1000", FROM_EPISODES, "purchases per 1000 impressions"},
    {"ild", FROM_EPISODES, "intra-list diversity (ILD)"},
    {"topic_ild", FROM_EPISODES, "topic ILD (share of cross-topic pairs)"},
    {"topic_entropy", FROM_EPISODES, "topic entropy per episode (nats)"},
    {"novelty", FROM_EPISODES, "novelty (bits)"},
    {"repeat_rate", FROM_EPISODES, "repeat rate (share of impressions)"},
    {"churned", FROM_EPISODES, "share of episodes ending in churn"},
    {"coverage", FROM_WINDOWS, "item coverage (share of items shown)"},
    {"gini", FROM_WINDOWS, "Gini index of item exposure"},
    {"exposure_entropy", FROM_WINDOWS, "exposure entropy (nats)"},
    {"exposure_entropy_norm", FROM_WINDOWS, "exposure entropy / ln(items)"},
    {"retention", FROM_WINDOWS, "retention (share of users)"},
    {"churn_rate", FROM_WINDOWS, "churn rate (share of sessions)"},
};
enum { N_METRICS = sizeof metric_table / sizeof metric_table[0] };

static const metric_info *find_metric(const char *name, char *err)
{
    for (size_t i = 0; i < N_METRICS; i++)
        if (strcmp(metric_table[i].name, name) == 0)
            return &metric_table[i];
    char names[512] = "";
    for (size_t i = 0; i < N_METRICS; i++) {
        size_t len = strlen(names);
        snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "", metric_table[i].name);
    }
    err_set(err, DS_EINPUT, "plot: unknown metric '%s': expected one of %s", name, names);
    return NULL;
}

/* ---- options ---- */

typedef struct {
    const char *db_path;
    const char *out_dir;    /* NULL: plots/<experiment> */
    const char *templates;  /* NULL: searched */
    unsigned formats;       /* FMT_* bits */
    unsigned kinds;         /* KIND_* bits */
    const metric_info *metric;    /* learning and sweep */
    const metric_info *diversity; /* the x axis of pareto */
    const char *param;      /* sweep: only this key */
} plot_options;

/* Parses a comma list of names (or "all") into bits 1 << index. */
static int parse_names(const char *text, const char *const *names, int n, int allow_all,
                       unsigned *bits)
{
    *bits = 0;
    const char *p = text;
    while (1) {
        size_t len = strcspn(p, ",");
        int found = 0;
        if (allow_all && len == 3 && strncmp(p, "all", 3) == 0) {
            *bits |= (1u << n) - 1;
            found = 1;
        }
        for (int i = 0; i < n && !found; i++)
            if (strlen(names[i]) == len && strncmp(p, names[i], len) == 0) {
                *bits |= 1u << i;
                found = 1;
            }
        if (!found)
            return -1;
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
}

static int parse_options(int argc, char **argv, plot_options *o, char *err)
{
    *o = (plot_options){.formats = FMT_PNG, .kinds = (1u << N_KINDS) - 1};
    const char *metric = "purchases", *diversity = "ild";
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        int has_value = i + 1 < argc;
        if (strcmp(arg, "--out") == 0 && has_value)
            o->out_dir = argv[++i];
        else if (strcmp(arg, "--templates") == 0 && has_value)
            o->templates = argv[++i];
        else if (strcmp(arg, "--metric") == 0 && has_value)
            metric = argv[++i];
        else if (strcmp(arg, "--diversity") == 0 && has_value)
            diversity = argv[++i];
        else if (strcmp(arg, "--param") == 0 && has_value)
            o->param = argv[++i];
        else if (strcmp(arg, "--format") == 0 && has_value) {
            if (parse_names(argv[++i], format_names, N_FORMATS, 0, &o->formats) != 0)
                return err_set(err, DS_EINPUT,
                               "plot: unknown format '%s': expected png, pdf or svg, or a "
                               "comma list such as png,pdf", argv[i]);
        } else if (strcmp(arg, "--kind") == 0 && has_value) {
            if (parse_names(argv[++i], kind_names, N_KINDS, 1, &o->kinds) != 0)
                return err_set(err, DS_EINPUT,
                               "plot: unknown kind '%s': expected learning, pareto, sweep, "
                               "coverage, training or all, or a comma list", argv[i]);
        } else if (arg[0] == '-')
            return err_set(err, DS_EINPUT, "plot: unknown or incomplete option '%s'", arg);
        else if (o->db_path)
            return err_set(err, DS_EINPUT, "plot: more than one database ('%s')", arg);
        else
            o->db_path = arg;
    }
    if (!o->db_path)
        return err_set(err, DS_EINPUT, "plot: missing results DB");
    if (!(o->metric = find_metric(metric, err)) || !(o->diversity = find_metric(diversity, err)))
        return DS_EINPUT;
    return DS_OK;
}

/* ---- the database: series and swept keys ---- */

typedef struct {
    char hash[17];  /* runs.config_hash */
    char *agent;
    char **values;  /* [n_swept] this configuration's value of each swept key; NULL: none */
    char *label;    /* "cf (factors = 8)" */
    int colour;     /* 1-based rank of the agent among the agents present */
    int variant;    /* 1-based rank of the configuration within its agent */
} series;

typedef struct {
    sqlite3 *db;
    const char *db_path;
    char experiment[256];
    char **swept;       /* [n_swept] keys with several values among done runs, sorted */
    size_t n_swept;
    series *series;     /* [n_series] by agent rank, then by swept values */
    size_t n_series;
    int n_agents;
    char gnuplot[PATH_LEN];
    char templates[PATH_LEN];
    char out_dir[PATH_LEN];
    unsigned formats;
} plot_ctx;

static int db_error(const plot_ctx *c, char *err)
{
    return err_set(err, DS_EIO, "reading '%s': %s", c->db_path, sqlite3_errmsg(c->db));
}

static char *text_column(sqlite3_stmt *st, int col)
{
    const unsigned char *text = sqlite3_column_text(st, col);
    return strdup(text ? (const char *)text : "");
}

static int open_database(plot_ctx *c, char *err)
{
    struct stat st;
    if (stat(c->db_path, &st) != 0 || !S_ISREG(st.st_mode))
        return err_set(err, DS_EINPUT, "'%s' is not a file", c->db_path);
    return store_open_readonly(c->db_path, &c->db, err);
}

/* The experiment's name (the database's base name if it holds several), and
 * DS_EINPUT when there is no finished run to draw. */
static int read_experiment(plot_ctx *c, char *err)
{
    sqlite3_stmt *st;
    const char *sql = "SELECT DISTINCT experiment FROM runs WHERE status = 'done' LIMIT 2";
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return err_set(err, DS_EINPUT, "'%s' is not a divsim results database: %s",
                       c->db_path, sqlite3_errmsg(c->db));
    int n = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        if (n++ == 0)
            snprintf(c->experiment, sizeof c->experiment, "%s",
                     (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return db_error(c, err);
    if (n == 0)
        return err_set(err, DS_EINPUT, "no finished runs in '%s': nothing to plot", c->db_path);
    if (n > 1) {
        const char *base = strrchr(c->db_path, '/');
        snprintf(c->experiment, sizeof c->experiment, "%s", base ? base + 1 : c->db_path);
        char *dot = strrchr(c->experiment, '.');
        if (dot && dot != c->experiment)
            *dot = '\0';
    }
    for (char *p = c->experiment; *p; p++) /* a directory name */
        if (*p == '/')
            *p = '_';
    return DS_OK;
}

static int read_swept(plot_ctx *c, char *err)
{
    sqlite3_stmt *st;
    const char *sql =
        "SELECT key FROM params"
        " WHERE run_id IN (SELECT id FROM runs WHERE status = 'done')"
        "   AND key NOT IN ('agent.kind', 'experiment.name')"
        " GROUP BY key HAVING COUNT(DISTINCT value) > 1 ORDER BY key";
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return err_set(err, DS_EINPUT, "'%s' is not a divsim results database: %s",
                       c->db_path, sqlite3_errmsg(c->db));
    int step, rc = DS_OK;
    while (rc == DS_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        char **grown = realloc(c->swept, (c->n_swept + 1) * sizeof *grown);
        if (!grown || !(grown[c->n_swept] = text_column(st, 0)))
            rc = err_set(err, DS_ENOMEM, "out of memory reading '%s'", c->db_path);
        if (grown) {
            c->swept = grown;
            if (rc == DS_OK)
                c->n_swept++;
        }
    }
    if (rc == DS_OK && step != SQLITE_DONE)
        rc = db_error(c, err);
    sqlite3_finalize(st);
    return rc;
}

/* The swept values of series s, read from one of its runs. */
static int read_values(plot_ctx *c, series *s, sqlite3_int64 run_id, char *err)
{
    s->values = calloc(c->n_swept ? c->n_swept : 1, sizeof *s->values);
    if (!s->values)
        return err_set(err, DS_ENOMEM, "out of memory reading '%s'", c->db_path);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, "SELECT key, value FROM params WHERE run_id = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return db_error(c, err);
    sqlite3_bind_int64(st, 1, run_id);
    int step, rc = DS_OK;
    while (rc == DS_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 0);
        for (size_t k = 0; k < c->n_swept && rc == DS_OK; k++)
            if (strcmp(key, c->swept[k]) == 0 && !(s->values[k] = text_column(st, 1)))
                rc = err_set(err, DS_ENOMEM, "out of memory reading '%s'", c->db_path);
    }
    if (rc == DS_OK && step != SQLITE_DONE)
        rc = db_error(c, err);
    sqlite3_finalize(st);
    return rc;
}

static int agent_rank(const char *name)
{
    for (int i = 0; i < agent_registry_count; i++)
        if (strcmp(agent_registry[i]->name, name) == 0)
            return i;
    return agent_registry_count;
}

static int is_number(const char *text, double *value)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno != 0 || !isfinite(v))
        return 0;
    if (value)
        *value = v;
    return 1;
}

/* Orders two values of a key: absent first, numbers by value, else as text. */
static int compare_values(const char *a, const char *b)
{
    if (!a || !b)
        return (a != NULL) - (b != NULL);
    double x, y;
    if (is_number(a, &x) && is_number(b, &y) && x != y)
        return x < y ? -1 : 1;
    return strcmp(a, b);
}

/* The order of series: agents in registry order (random first), then by their
 * swept values (numbers by value). */
static int series_before(const series *a, const series *b, size_t n_swept)
{
    int c = agent_rank(a->agent) - agent_rank(b->agent);
    if (c == 0)
        c = strcmp(a->agent, b->agent);
    for (size_t k = 0; c == 0 && k < n_swept; k++)
        c = compare_values(a->values[k], b->values[k]);
    return c == 0 ? strcmp(a->hash, b->hash) < 0 : c < 0;
}

static void sort_series(plot_ctx *c)
{
    /* An insertion sort: qsort has no context for n_swept, and series are few. */
    for (size_t i = 1; i < c->n_series; i++) {
        series s = c->series[i];
        size_t j = i;
        for (; j > 0 && series_before(&s, &c->series[j - 1], c->n_swept); j--)
            c->series[j] = c->series[j - 1];
        c->series[j] = s;
    }
}

/* A swept key as shown in a title: its last part ("factors"), the section
 * for a kind ("env"), or the whole key when two swept keys share the part. */
static const char *short_key(const plot_ctx *c, const char *key, char *buf, size_t size)
{
    const char *dot = strrchr(key, '.');
    const char *last = dot ? dot + 1 : key;
    if (strcmp(last, "kind") == 0 && dot) {
        snprintf(buf, size, "%.*s", (int)(dot - key), key);
        return buf;
    }
    for (size_t k = 0; k < c->n_swept; k++) {
        const char *other = strrchr(c->swept[k], '.');
        other = other ? other + 1 : c->swept[k];
        if (strcmp(c->swept[k], key) != 0 && strcmp(other, last) == 0)
            return key;
    }
    return last;
}

/* 1 when the configurations of agent `name` take several values of swept key k
 * (absent counts as a value): the keys that agent's titles name. A key swept
 * for other agents only (a setting scoped to [agent.ppo], or a default that
 * the others vary) is not the agent's, though its runs record a value. */
static int agent_varies(const plot_ctx *c, const char *name, size_t k)
{
    const char *first = NULL;
    int seen = 0;
    for (size_t i = 0; i < c->n_series; i++) {
        if (strcmp(c->series[i].agent, name) != 0)
            continue;
        if (seen && compare_values(first, c->series[i].values[k]) != 0)
            return 1;
        first = c->series[i].values[k];
        seen = 1;
    }
    return 0;
}

/* "agent (key = value, ...)" over the swept keys its agent varies, but skip. */
static void series_title(const plot_ctx *c, const series *s, const char *skip, char *buf,
                         size_t size)
{
    size_t len = (size_t)snprintf(buf, size, "%s", s->agent);
    int first = 1;
    for (size_t k = 0; k < c->n_swept && len < size; k++) {
        if (!agent_varies(c, s->agent, k) || (skip && strcmp(c->swept[k], skip) == 0))
            continue;
        char part[256];
        len += (size_t)snprintf(buf + len, size - len, "%s%s = %s", first ? " (" : ", ",
                                short_key(c, c->swept[k], part, sizeof part), s->values[k]);
        first = 0;
    }
    if (!first && len < size)
        snprintf(buf + len, size - len, ")");
    for (char *p = buf; *p; p++) /* titles go between double quotes */
        if (*p == '"' || *p == '\\')
            *p = '\'';
}

static int read_series(plot_ctx *c, char *err)
{
    sqlite3_stmt *st;
    const char *sql = "SELECT config_hash, MIN(agent), MIN(id) FROM runs WHERE status = 'done'"
                      " GROUP BY config_hash";
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_error(c, err);
    int step, rc = DS_OK;
    while (rc == DS_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        series *grown = realloc(c->series, (c->n_series + 1) * sizeof *grown);
        if (!grown) {
            rc = err_set(err, DS_ENOMEM, "out of memory reading '%s'", c->db_path);
            break;
        }
        c->series = grown;
        series *s = &c->series[c->n_series++];
        *s = (series){0};
        snprintf(s->hash, sizeof s->hash, "%s", (const char *)sqlite3_column_text(st, 0));
        if (!(s->agent = text_column(st, 1)))
            rc = err_set(err, DS_ENOMEM, "out of memory reading '%s'", c->db_path);
        else
            rc = read_values(c, s, sqlite3_column_int64(st, 2), err);
    }
    if (rc == DS_OK && step != SQLITE_DONE)
        rc = db_error(c, err);
    sqlite3_finalize(st);
    if (rc != DS_OK)
        return rc;
    sort_series(c);
    for (size_t i = 0; i < c->n_series; i++) {
        series *s = &c->series[i];
        int same_agent = i > 0 && strcmp(s->agent, c->series[i - 1].agent) == 0;
        c->n_agents += !same_agent;
        s->colour = c->n_agents;
        s->variant = same_agent ? c->series[i - 1].variant + 1 : 1;
        char title[512];
        series_title(c, s, NULL, title, sizeof title);
        if (!(s->label = strdup(title)))
            return err_set(err, DS_ENOMEM, "out of memory reading '%s'", c->db_path);
    }
    return DS_OK;
}

static size_t series_of(const plot_ctx *c, const char *hash)
{
    for (size_t i = 0; i < c->n_series; i++)
        if (strcmp(c->series[i].hash, hash) == 0)
            return i;
    return SIZE_MAX;
}

static void ctx_free(plot_ctx *c)
{
    for (size_t i = 0; i < c->n_series; i++) {
        for (size_t k = 0; c->series[i].values && k < c->n_swept; k++)
            free(c->series[i].values[k]);
        free(c->series[i].values);
        free(c->series[i].agent);
        free(c->series[i].label);
    }
    free(c->series);
    for (size_t k = 0; k < c->n_swept; k++)
        free(c->swept[k]);
    free(c->swept);
    sqlite3_close(c->db);
}

/* ---- points: one value per run and bin, grouped over runs ---- */

typedef struct {
    size_t series;       /* index of the figure's series */
    int phase;           /* 0 train, 1 eval */
    long bin;            /* what is averaged over runs: a bin, window, update or setting */
    double x;
    double y[MAX_Y];     /* NAN where the database holds NULL */
} point;

typedef struct {
    point *v;            /* [n] */
    size_t n, cap;
} points;

static double column_or_nan(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? NAN : sqlite3_column_double(st, col);
}

/* Runs sql, whose rows are (config_hash, phase, bin, x, y_1 .. y_n_y), into p
 * with series = the configuration's index. */
static int read_points(const plot_ctx *c, const char *sql, int n_y, points *p, char *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return err_set(err, DS_EINPUT, "'%s' is not a divsim results database: %s",
                       c->db_path, sqlite3_errmsg(c->db));
    int step, rc = DS_OK;
    while (rc == DS_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        size_t s = series_of(c, (const char *)sqlite3_column_text(st, 0));
        if (s == SIZE_MAX)
            continue;
        if (p->n == p->cap) {
            size_t cap = p->cap ? 2 * p->cap : 256;
            point *grown = realloc(p->v, cap * sizeof *grown);
            if (!grown) {
                rc = err_set(err, DS_ENOMEM, "out of memory reading '%s'", c->db_path);
                break;
            }
            p->v = grown;
            p->cap = cap;
        }
        point *q = &p->v[p->n++];
        q->series = s;
        q->phase = sqlite3_column_int(st, 1);
        q->bin = (long)sqlite3_column_int64(st, 2);
        q->x = column_or_nan(st, 3);
        for (int j = 0; j < MAX_Y; j++)
            q->y[j] = j < n_y ? column_or_nan(st, 4 + j) : NAN;
    }
    if (rc == DS_OK && step != SQLITE_DONE)
        rc = db_error(c, err);
    sqlite3_finalize(st);
    return rc;
}

static int by_series_phase_bin(const void *a, const void *b)
{
    const point *p = a, *q = b;
    if (p->series != q->series)
        return p->series < q->series ? -1 : 1;
    if (p->phase != q->phase)
        return p->phase - q->phase;
    return (p->bin > q->bin) - (p->bin < q->bin);
}

static int same_group(const point *p, const point *q)
{
    return p->series == q->series && p->phase == q->phase && p->bin == q->bin;
}

/* The end of the group starting at i. */
static size_t group_end(const points *p, size_t i)
{
    size_t j = i + 1;
    while (j < p->n && same_group(&p->v[j], &p->v[i]))
        j++;
    return j;
}

typedef struct {
    double mean, lo, hi; /* NAN when no run has a value */
} band;

/* The mean over g[0..n) of y[j] (values that are NAN left out) with its 95%
 * confidence interval; buf holds n doubles. */
static band band_of(const point *g, size_t n, int j, double *buf)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(g[i].y[j]))
            buf[m++] = g[i].y[j];
    band b = {NAN, NAN, NAN};
    summary s;
    if (m == 0 || stats_summary(buf, m, 0.95, &s) != DS_OK)
        return b;
    double half = isnan(s.half_width) ? 0.0 : s.half_width;
    b.mean = s.mean;
    b.lo = s.mean - half;
    b.hi = s.mean + half;
    return b;
}

static double mean_x(const point *g, size_t n)
{
    double sum = 0.0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(g[i].x)) {
            sum += g[i].x;
            m++;
        }
    return m ? sum / (double)m : NAN;
}

static void put_number(FILE *f, double v)
{
    if (isnan(v))
        fputs(" NaN", f);
    else
        fprintf(f, " %.10g", v);
}

/* ---- figures: the data file, the variables file, gnuplot ---- */

/* "dir/name.ext" into buf (PATH_LEN bytes); DS_EINPUT when it does not fit. */
static int path_join(char *buf, const char *dir, const char *name, const char *ext, char *err)
{
    int n = snprintf(buf, PATH_LEN, "%s/%s%s", dir, name, ext);
    if (n < 0 || n >= PATH_LEN)
        return err_set(err, DS_EINPUT, "path too long: '%s/%s%s'", dir, name, ext);
    return DS_OK;
}

typedef struct {
    const char *title;
    int colour, variant;
    int reference; /* sweep: drawn as a flat line, the series lacks the swept key */
} fig_series;

typedef struct {
    const char *kind;        /* the template's name */
    char name[256];          /* base name of the files */
    char data_path[PATH_LEN];
    char vars_path[PATH_LEN];
    FILE *data, *vars;
} figure;

/* A string between gnuplot's single quotes, where '' is a quote. */
static void put_quoted(char *buf, size_t size, const char *text)
{
    size_t len = strlen(buf);
    if (len + 1 < size)
        buf[len++] = '\'';
    for (const char *p = text; *p && len + 2 < size; p++) {
        if (*p == '\'')
            buf[len++] = '\'';
        buf[len++] = *p;
    }
    if (len + 1 < size)
        buf[len++] = '\'';
    buf[len] = '\0';
}

/* The -e argument of gnuplot for figure f drawn in format fmt. */
static void assignments(const plot_ctx *c, const figure *f, const char *fmt, char *buf,
                        size_t size)
{
    char outfile[PATH_LEN], ext[8];
    snprintf(ext, sizeof ext, ".%s", fmt);
    buf[0] = '\0';
    if (path_join(outfile, c->out_dir, f->name, ext, NULL) != DS_OK)
        return; /* checked by figure_open */
    const char *names[] = {"templatedir", "datafile", "varsfile", "outfile", "term"};
    const char *values[] = {c->templates, f->data_path, f->vars_path, outfile, fmt};
    for (int i = 0; i < 5; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s%s=", i ? "; " : "", names[i]);
        put_quoted(buf, size, values[i]);
    }
}

static int figure_open(const plot_ctx *c, figure *f, const char *what, char *err)
{
    /* The longest name of the figure's files: the others fit if this does. */
    if (path_join(f->data_path, c->out_dir, f->name, ".dat", err) != DS_OK ||
        path_join(f->vars_path, c->out_dir, f->name, ".vars.gp", err) != DS_OK)
        return DS_EINPUT;
    f->data = fopen(f->data_path, "w");
    f->vars = f->data ? fopen(f->vars_path, "w") : NULL;
    if (!f->vars) {
        int rc = err_set(err, DS_EIO, "cannot write '%s': %s",
                         f->data ? f->vars_path : f->data_path, strerror(errno));
        if (f->data)
            fclose(f->data);
        f->data = NULL;
        return rc;
    }
    fprintf(f->data, "# divsim plot: %s\n# database: %s\n", what, c->db_path);
    char command[3 * PATH_LEN];
    assignments(c, f, "pdf", command, sizeof command);
    fprintf(f->vars,
            "# Variables of the figure %s (%s), for %s/%s.gp; written by divsim plot.\n"
            "# To redraw it after editing the template:\n"
            "#   gnuplot -e \"%s\" %s/%s.gp\n",
            f->name, what, c->templates, f->kind, command, c->templates, f->kind);
    return DS_OK;
}

static int figure_close(figure *f, char *err)
{
    int bad_data = ferror(f->data);
    bad_data |= fclose(f->data) != 0;
    int bad_vars = ferror(f->vars);
    bad_vars |= fclose(f->vars) != 0;
    f->data = f->vars = NULL;
    if (bad_data || bad_vars)
        return err_set(err, DS_EIO, "cannot write '%s'", bad_data ? f->data_path : f->vars_path);
    return DS_OK;
}

/* Writes s between gnuplot's double quotes. */
static void put_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void put_string_var(FILE *f, const char *name, const char *value)
{
    fprintf(f, "%s = ", name);
    put_string(f, value);
    fputc('\n', f);
}

/* The range of the data on the x axis, for the templates' tic spacing. */
static void write_x_range(FILE *f, double lo, double hi)
{
    if (!(lo <= hi)) /* no finite value */
        lo = hi = 0.0;
    fprintf(f, "xmin = %.10g\nxmax = %.10g\n", lo, hi);
}

static void write_series_vars(FILE *f, const fig_series *s, size_t n)
{
    fprintf(f, "nseries = %zu\narray series_title[%zu] = [", n, n);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ", " : "", f);
        put_string(f, s[i].title);
    }
    fprintf(f, "]\narray series_colour[%zu] = [", n);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%d", i ? ", " : "", s[i].colour);
    fprintf(f, "]\narray series_variant[%zu] = [", n);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%d", i ? ", " : "", s[i].variant);
    fprintf(f, "]\narray series_reference[%zu] = [", n);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%d", i ? ", " : "", s[i].reference);
    fputs("]\n", f);
}

/* Reads everything from fd, keeping the first size - 1 bytes in buf. */
static void read_all(int fd, char *buf, size_t size)
{
    size_t len = 0;
    char chunk[1024];
    ssize_t got;
    while ((got = read(fd, chunk, sizeof chunk)) != 0) {
        if (got < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        size_t keep = (size_t)got < size - 1 - len ? (size_t)got : size - 1 - len;
        memcpy(buf + len, chunk, keep);
        len += keep;
    }
    buf[len] = '\0';
}

/* Runs gnuplot -e expr template (not through a shell); its stdout and stderr
 * are collected: when it fails, their end goes into err (all of them to our
 * stderr if they are longer); warnings of a success go to our stderr. */
static int run_gnuplot(const plot_ctx *c, char *expr, char *template, const char *outfile,
                       char *err)
{
    int fd[2];
    if (pipe(fd) != 0)
        return err_set(err, DS_EIO, "cannot start gnuplot: %s", strerror(errno));
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, fd[1], 1);
    posix_spawn_file_actions_adddup2(&actions, fd[1], 2);
    posix_spawn_file_actions_addclose(&actions, fd[0]);
    posix_spawn_file_actions_addclose(&actions, fd[1]);
    char name[] = "gnuplot", option[] = "-e";
    char *args[] = {name, option, expr, template, NULL};
    pid_t pid;
    int spawned = posix_spawn(&pid, c->gnuplot, &actions, NULL, args, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fd[1]);
    if (spawned != 0) {
        close(fd[0]);
        return err_set(err, DS_EIO, "cannot run '%s': %s", c->gnuplot, strerror(spawned));
    }
    char output[8192];
    read_all(fd[0], output, sizeof output);
    close(fd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return err_set(err, DS_EIO, "waiting for gnuplot: %s", strerror(errno));
    size_t len = strlen(output);
    while (len > 0 && (output[len - 1] == '\n' || output[len - 1] == ' '))
        output[--len] = '\0';
    int failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    enum { TAIL = 240 }; /* what of gnuplot's message fits in err */
    if (len > 0 && (!failed || len > TAIL)) /* warnings, or a message err cannot hold */
        fprintf(stderr, "gnuplot (%s, drawing '%s'):\n%s\n", template, outfile, output);
    if (failed)
        return err_set(err, DS_EIO, "gnuplot failed on '%s' drawing '%s': %s", template,
                       outfile, len == 0   ? "no message"
                                : len > TAIL ? output + len - TAIL
                                             : output);
    return DS_OK;
}

/* Draws figure f in every requested format, printing each file written. */
static int render(const plot_ctx *c, const figure *f, char *err)
{
    char template[PATH_LEN];
    if (path_join(template, c->templates, f->kind, ".gp", err) != DS_OK)
        return DS_EINPUT;
    if (access(template, R_OK) != 0)
        return err_set(err, DS_EINPUT, "missing gnuplot template '%s'", template);
    for (int i = 0; i < N_FORMATS; i++) {
        if (!(c->formats & (1u << i)))
            continue;
        char expr[3 * PATH_LEN], outfile[PATH_LEN], ext[8];
        assignments(c, f, format_names[i], expr, sizeof expr);
        snprintf(ext, sizeof ext, ".%s", format_names[i]);
        if (path_join(outfile, c->out_dir, f->name, ext, err) != DS_OK)
            return DS_EINPUT;
        int rc = run_gnuplot(c, expr, template, outfile, err);
        if (rc != DS_OK)
            return rc;
        printf("%s\n", outfile);
    }
    fflush(stdout);
    return DS_OK;
}

/* Writes the groups of p (sorted), one line each: the mean x, then mean, low
 * and high of each of the n_y values, the number of runs, the phase (0 train,
 * 1 eval), and 1 on a series' last train group (else 0); one block per series.
 * shown[] gets the series written, in order; [x_lo, x_hi] the range of x. */
static int write_groups(FILE *f, const plot_ctx *c, const points *p, int n_y, fig_series *shown,
                        size_t *n_shown, double *x_lo, double *x_hi, char *err)
{
    *x_lo = INFINITY;
    *x_hi = -INFINITY;
    double *buf = malloc((p->n ? p->n : 1) * sizeof *buf);
    if (!buf)
        return err_set(err, DS_ENOMEM, "out of memory drawing '%s'", c->db_path);
    *n_shown = 0;
    for (size_t i = 0; i < p->n;) {
        size_t j = group_end(p, i);
        const point *g = &p->v[i];
        if (i == 0 || g->series != p->v[i - 1].series) {
            const series *s = &c->series[g->series];
            fprintf(f, "%s# series: %s\n", i ? "\n\n" : "", s->label);
            shown[(*n_shown)++] = (fig_series){s->label, s->colour, s->variant, 0};
        }
        double x = mean_x(g, j - i);
        if (!isnan(x)) {
            *x_lo = fmin(*x_lo, x);
            *x_hi = fmax(*x_hi, x);
        }
        put_number(f, x);
        for (int k = 0; k < n_y; k++) {
            band b = band_of(g, j - i, k, buf);
            put_number(f, b.mean);
            put_number(f, b.lo);
            put_number(f, b.hi);
        }
        int last_train = g->phase == 0 &&
                         (j == p->n || p->v[j].series != g->series || p->v[j].phase != 0);
        fprintf(f, " %zu %d %d\n", j - i, g->phase, last_train);
        i = j;
    }
    free(buf);
    return DS_OK;
}

static void figure_abandon(figure *f)
{
    if (f->data)
        fclose(f->data);
    if (f->vars)
        fclose(f->vars);
    f->data = f->vars = NULL;
}

/* Opens figure f and writes its data file and series variables from the
 * binned points p; the caller adds its own variables, closes and renders. */
static int begin_groups(const plot_ctx *c, figure *f, const char *what, const char *columns,
                        const points *p, int n_y, char *err)
{
    fig_series *shown = calloc(c->n_series, sizeof *shown);
    if (!shown)
        return err_set(err, DS_ENOMEM, "out of memory drawing '%s'", c->db_path);
    size_t n_shown = 0;
    double lo, hi;
    int rc = figure_open(c, f, what, err);
    if (rc == DS_OK) {
        fprintf(f->data, "# columns: %s\n"
                "# one block per series (its first line: '# series: TITLE'), blocks separated"
                " by two blank lines\n", columns);
        rc = write_groups(f->data, c, p, n_y, shown, &n_shown, &lo, &hi, err);
    }
    if (rc == DS_OK) {
        write_series_vars(f->vars, shown, n_shown);
        write_x_range(f->vars, lo, hi);
    } else
        figure_abandon(f);
    free(shown);
    return rc;
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("note: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- learning: a metric against episodes ---- */

/* Per run, phase and bin of `window` episodes (counted from the phase's first
 * episode): the bin's middle in episodes elapsed, and the metric's mean. */
#define LEARNING_EPISODES_SQL \
    "SELECT r.config_hash, e.phase = 'eval',\n" \
    "       (e.episode - f.first) / MAX(1, COALESCE(w.size, 100)) AS bin,\n" \
    "       AVG(e.episode) + 0.5, AVG(e.%s)\n" \
    "FROM runs r\n" \
    "JOIN episodes e ON e.run_id = r.id\n" \
    "JOIN (SELECT run_id, phase, MIN(episode) AS first FROM episodes\n" \
    "      GROUP BY run_id, phase) f ON f.run_id = e.run_id AND f.phase = e.phase\n" \
    "LEFT JOIN (SELECT run_id, CAST(value AS INTEGER) AS size FROM params\n" \
    "           WHERE key = 'experiment.window') w ON w.run_id = r.id\n" \
    "WHERE r.status = 'done'\n" \
    "GROUP BY r.id, e.phase, bin"

/* Per run and metrics window: the middle of the window in episodes elapsed
 * (eval windows after all train episodes), and the window's value. */
#define LEARNING_WINDOWS_SQL \
    "SELECT r.config_hash, w.phase = 'eval', w.\"window\",\n" \
    "       SUM(w.episodes) OVER (PARTITION BY w.run_id, w.phase ORDER BY w.\"window\")\n" \
    "       - w.episodes / 2.0\n" \
    "       + CASE WHEN w.phase = 'eval' THEN (SELECT COALESCE(SUM(t.episodes), 0)\n" \
    "           FROM windows t WHERE t.run_id = w.run_id AND t.phase = 'train') ELSE 0 END,\n" \
    "       w.%s\n" \
    "FROM runs r JOIN windows w ON w.run_id = r.id\n" \
    "WHERE r.status = 'done'"

/* The episode at which the eval phase starts when every run agrees (else 0),
 * and the number of episodes of the longest run. */
static int read_phase_switch(const plot_ctx *c, double *switch_at, double *end_at, char *err)
{
    const char *sql =
        "SELECT MIN(first), MAX(first), MAX(last) FROM"
        " (SELECT MIN(CASE WHEN e.phase = 'eval' THEN e.episode END) AS first,"
        "         MAX(e.episode) + 1 AS last"
        "  FROM episodes e JOIN runs r ON r.id = e.run_id WHERE r.status = 'done'"
        "  GROUP BY e.run_id)";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_error(c, err);
    *switch_at = *end_at = 0.0;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) != SQLITE_NULL &&
            sqlite3_column_int64(st, 0) == sqlite3_column_int64(st, 1))
            *switch_at = sqlite3_column_double(st, 0);
        *end_at = sqlite3_column_double(st, 2);
    }
    sqlite3_finalize(st);
    return step == SQLITE_ROW || step == SQLITE_DONE ? DS_OK : db_error(c, err);
}

static int plot_learning(const plot_ctx *c, const metric_info *m, char *err)
{
    char sql[2048];
    if (m->source == FROM_EPISODES)
        snprintf(sql, sizeof sql, LEARNING_EPISODES_SQL, m->name);
    else
        snprintf(sql, sizeof sql, LEARNING_WINDOWS_SQL, m->name);
    points p = {0};
    int rc = read_points(c, sql, 1, &p, err);
    if (rc == DS_OK && p.n == 0) {
        note("no %s of finished runs in '%s'; learning figure skipped",
             m->source == FROM_EPISODES ? "episodes" : "metrics windows", c->db_path);
        free(p.v);
        return DS_OK;
    }
    double switch_at = 0.0, end_at = 0.0;
    if (rc == DS_OK)
        rc = read_phase_switch(c, &switch_at, &end_at, err);
    figure f = {.kind = "learning"};
    snprintf(f.name, sizeof f.name, "learning_%s", m->name);
    char what[256], columns[512];
    snprintf(what, sizeof what, "%s against episodes, mean over runs and 95%% CI", m->name);
    snprintf(columns, sizeof columns,
             "1 episodes elapsed (middle of a bin of `window` episodes of one phase) | "
             "2-4 %s: mean over runs, 95%% CI low, high | 5 runs | 6 phase (0 train, 1 eval)"
             " | 7 1 on the last train bin", m->name);
    if (rc == DS_OK) {
        qsort(p.v, p.n, sizeof *p.v, by_series_phase_bin);
        rc = begin_groups(c, &f, what, columns, &p, 1, err);
    }
    if (rc == DS_OK) {
        put_string_var(f.vars, "xlabel", "episodes (user sessions)");
        put_string_var(f.vars, "ylabel", m->label);
        fprintf(f.vars, "switch_at = %.10g  # first eval episode; 0: none or not shared\n"
                        "end_at = %.10g\n", switch_at, end_at);
        rc = figure_close(&f, err);
    }
    if (rc == DS_OK)
        rc = render(c, &f, err);
    free(p.v);
    return rc;
}

/* ---- per-run eval means: pareto and sweep ---- */

#define EVAL_SQL \
    "SELECT r.config_hash, 1, 0, 0, %s, %s\n" \
    "FROM runs r JOIN episodes e ON e.run_id = r.id AND e.phase = 'eval'\n" \
    "LEFT JOIN phases ph ON ph.run_id = r.id AND ph.phase = 'eval'\n" \
    "WHERE r.status = 'done' GROUP BY r.id"

/* The SQL of a run's eval value of m: a mean over episodes or the phase's value. */
static void eval_expr(const metric_info *m, char *buf, size_t size)
{
    if (!m)
        snprintf(buf, size, "NULL");
    else if (m->source == FROM_EPISODES)
        snprintf(buf, size, "AVG(e.%s)", m->name);
    else
        snprintf(buf, size, "MAX(ph.%s)", m->name);
}

/* One point per done run with an eval phase: y[0] = a, y[1] = b (or NAN). */
static int read_eval(const plot_ctx *c, const metric_info *a, const metric_info *b, points *p,
                     char *err)
{
    char ea[64], eb[64], sql[1024];
    eval_expr(a, ea, sizeof ea);
    eval_expr(b, eb, sizeof eb);
    snprintf(sql, sizeof sql, EVAL_SQL, ea, eb);
    int rc = read_points(c, sql, 2, p, err);
    if (rc == DS_OK)
        qsort(p->v, p->n, sizeof *p->v, by_series_phase_bin);
    return rc;
}

/* ---- pareto: diversity against purchases, per configuration ---- */

/* Where a point's label goes: its anchor (data units) and alignment, and the
 * leader line from the point to a label set further off (NAN: none). */
typedef enum { LABEL_NONE, LABEL_LEFT, LABEL_CENTRE, LABEL_RIGHT } label_align;

typedef struct {
    band x, y;
    size_t runs;      /* 0: the configuration has no eval phase */
    int on_frontier;
    char label[512];  /* the agent's name, or its settings ("0.05") */
    label_align align;
    double label_x, label_y;
    double leader[4]; /* from x, y to x, y */
} setting_point;

/* The geometry of the pareto figure, which plots/pareto.gp takes from the
 * variables file: the plot area in inches from the figure's lower left
 * corner (left, bottom, width, height), and, in points, a character of its
 * 8 pt font (Helvetica's digits are 0.56 em wide) and a marker. The data's
 * extent is widened by these fractions (left, right, bottom, top), not below
 * 0, to leave room for labels at the edges. */
static const double area_in[4] = {0.62, 0.48, 2.68, 2.2};
static const double char_w = 4.6, char_h = 8.5, marker = 6.5;
static const double pad_l = 0.06, pad_r = 0.10, pad_b = 0.06, pad_t = 0.06;

typedef struct {
    double x0, y0, x1, y1;
} box;

static double overlap(box a, box b)
{
    double w = fmin(a.x1, b.x1) - fmax(a.x0, b.x0), h = fmin(a.y1, b.y1) - fmax(a.y0, b.y0);
    return w > 0 && h > 0 ? w * h : 0.0;
}

/* The axes of the pareto figure: the extent of the points and their
 * intervals, widened for the labels; never below 0, as the metrics cannot be. */
static box pareto_axes(const setting_point *s, size_t n)
{
    box r = {INFINITY, INFINITY, -INFINITY, -INFINITY};
    for (size_t i = 0; i < n; i++)
        if (s[i].runs && !isnan(s[i].x.mean) && !isnan(s[i].y.mean)) {
            r.x0 = fmin(r.x0, fmax(0.0, s[i].x.lo));
            r.x1 = fmax(r.x1, s[i].x.hi);
            r.y0 = fmin(r.y0, fmax(0.0, s[i].y.lo));
            r.y1 = fmax(r.y1, s[i].y.hi);
        }
    if (!(r.x0 <= r.x1 && r.y0 <= r.y1))
        return (box){0.0, 0.0, 1.0, 1.0};
    double dx = r.x1 > r.x0 ? r.x1 - r.x0 : fmax(fabs(r.x0), 1.0);
    double dy = r.y1 > r.y0 ? r.y1 - r.y0 : fmax(fabs(r.y0), 1.0);
    r.x0 = fmax(0.0, r.x0 - pad_l * dx);
    r.x1 += pad_r * dx;
    r.y0 = fmax(0.0, r.y0 - pad_b * dy);
    r.y1 += pad_t * dy;
    return r;
}

/* Marks the points that no other point beats on both axes (maximising both). */
static void mark_frontier(setting_point *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        s[i].on_frontier = s[i].runs > 0 && !isnan(s[i].x.mean) && !isnan(s[i].y.mean);
        for (size_t j = 0; j < n && s[i].on_frontier; j++)
            if (j != i && s[j].runs > 0 && s[j].x.mean >= s[i].x.mean &&
                s[j].y.mean >= s[i].y.mean &&
                (s[j].x.mean > s[i].x.mean || s[j].y.mean > s[i].y.mean))
                s[i].on_frontier = 0;
    }
}

typedef struct {
    double x, y;
} xy;

static int by_x_then_y(const void *a, const void *b)
{
    const xy *p = a, *q = b;
    if (p->x != q->x)
        return p->x < q->x ? -1 : 1;
    return (p->y < q->y) - (p->y > q->y);
}

/* The frontier's points by increasing x into front[] (room for n); their
 * number. */
static size_t frontier_points(const setting_point *s, size_t n, xy *front)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i].on_frontier)
            front[m++] = (xy){s[i].x.mean, s[i].y.mean};
    qsort(front, m, sizeof *front, by_x_then_y);
    return m;
}

/* From data units to points on the plot area, and back. */
typedef struct {
    box axes;
    double w, h; /* the plot area, points */
} frame;

static double to_px(const frame *f, double x)
{
    return (x - f->axes.x0) / (f->axes.x1 - f->axes.x0) * f->w;
}

static double to_py(const frame *f, double y)
{
    return (y - f->axes.y0) / (f->axes.y1 - f->axes.y0) * f->h;
}

static double from_px(const frame *f, double px)
{
    return f->axes.x0 + px / f->w * (f->axes.x1 - f->axes.x0);
}

static double from_py(const frame *f, double py)
{
    return f->axes.y0 + py / f->h * (f->axes.y1 - f->axes.y0);
}

/* What labels must not cover (markers), and should not (error bars, the
 * lines joining an agent's points), in points. */
typedef struct {
    box b;
    double cost; /* per square point covered */
} obstacle;

typedef struct {
    obstacle *v; /* [n] */
    size_t n, cap;
} obstacles;

static int add_obstacle(obstacles *o, box b, double cost)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 64;
        obstacle *v = realloc(o->v, cap * sizeof *v);
        if (!v)
            return DS_ENOMEM;
        o->v = v;
        o->cap = cap;
    }
    o->v[o->n++] = (obstacle){b, cost};
    return DS_OK;
}

/* Costs per square point covered, and of a place a ring further off. A label
 * is left out when its cheapest place covers more than about a square point
 * of a marker or of another label (max_label_cost). */
enum { MARKER_COST = 1000, LABEL_COST = 1000, RING_COST = 40, N_RINGS = 4 };
static const double max_label_cost = RING_COST * (N_RINGS - 1) + MARKER_COST;

/* A line from (ax, ay) to (bx, by) as small boxes every 2 points. */
static int add_segment(obstacles *o, double ax, double ay, double bx, double by, double cost)
{
    double len = hypot(bx - ax, by - ay);
    int steps = (int)(len / 2.0) + 1;
    int rc = DS_OK;
    for (int t = 0; t <= steps && rc == DS_OK; t++) {
        double x = ax + (bx - ax) * t / steps, y = ay + (by - ay) * t / steps;
        rc = add_obstacle(o, (box){x - 1.0, y - 1.0, x + 1.0, y + 1.0}, cost);
    }
    return rc;
}

static int has_point(const setting_point *p)
{
    return p->runs > 0 && !isnan(p->x.mean) && !isnan(p->y.mean);
}

/* The markers, error bars and joining lines of the figure. */
static int pareto_obstacles(const plot_ctx *c, const setting_point *s, const frame *fr,
                            const int *joined, obstacles *o)
{
    int rc = DS_OK;
    size_t prev = SIZE_MAX;
    for (size_t i = 0; i < c->n_series && rc == DS_OK; i++) {
        if (!has_point(&s[i]))
            continue;
        double px = to_px(fr, s[i].x.mean), py = to_py(fr, s[i].y.mean);
        double h = 0.5 * marker;
        rc = add_obstacle(o, (box){px - h, py - h, px + h, py + h}, MARKER_COST);
        if (rc == DS_OK)
            rc = add_segment(o, to_px(fr, s[i].x.lo), py, to_px(fr, s[i].x.hi), py, 1.0);
        if (rc == DS_OK)
            rc = add_segment(o, px, to_py(fr, s[i].y.lo), px, to_py(fr, s[i].y.hi), 1.0);
        if (rc == DS_OK && prev != SIZE_MAX && joined[i] &&
            c->series[prev].colour == c->series[i].colour)
            rc = add_segment(o, to_px(fr, s[prev].x.mean), to_py(fr, s[prev].y.mean), px, py,
                             2.0);
        prev = i;
    }
    /* The frontier, drawn as steps: up (or down) first, then across. */
    xy *front = malloc((c->n_series ? c->n_series : 1) * sizeof *front);
    if (!front && rc == DS_OK)
        rc = DS_ENOMEM;
    size_t m = front ? frontier_points(s, c->n_series, front) : 0;
    for (size_t i = 1; i < m && rc == DS_OK; i++) {
        double x0 = to_px(fr, front[i - 1].x), y0 = to_py(fr, front[i - 1].y);
        double x1 = to_px(fr, front[i].x), y1 = to_py(fr, front[i].y);
        rc = add_segment(o, x0, y0, x0, y1, 2.0);
        if (rc == DS_OK)
            rc = add_segment(o, x0, y1, x1, y1, 2.0);
    }
    free(front);
    return rc;
}

/* A candidate place of a label w points wide: in direction k of N_DIRECTIONS
 * (k / N_DIRECTIONS of a turn, anticlockwise from the right) at ring r (0 next
 * to the marker, where only every other direction is tried; further rings
 * get a leader line). The label's near side or corner is at that place: dx,
 * dy say which (1: the label extends right or up from it, -1: left or down,
 * 0: centred). */
enum { N_DIRECTIONS = 16 };

static box candidate_box(double px, double py, double w, int k, int r, int *dx, int *dy)
{
    static const double gap[N_RINGS] = {0.5 * marker + 1.5, 16.0, 30.0, 46.0};
    double angle = 2.0 * acos(-1.0) * k / N_DIRECTIONS, c = cos(angle), s = sin(angle);
    double ax = px + gap[r] * c, ay = py + gap[r] * s;
    *dx = c > 0.3 ? 1 : c < -0.3 ? -1 : 0;
    *dy = s > 0.3 ? 1 : s < -0.3 ? -1 : 0;
    double x0 = *dx > 0 ? ax : *dx < 0 ? ax - w : ax - 0.5 * w;
    double y0 = *dy > 0 ? ay : *dy < 0 ? ay - char_h : ay - 0.5 * char_h;
    return (box){x0, y0, x0 + w, y0 + char_h};
}

/* The leader line of a label at b from the point (px, py), in points: from
 * just outside the marker to just short of the label's nearest edge; 0 when
 * the label is too close for one. */
static int leader_of(double px, double py, box b, double *end)
{
    double ex = fmin(fmax(px, b.x0), b.x1), ey = fmin(fmax(py, b.y0), b.y1);
    double len = hypot(ex - px, ey - py), start = 0.5 * marker + 1.0;
    if (len <= start + 2.0)
        return 0;
    end[0] = px + (ex - px) * start / len;
    end[1] = py + (ey - py) * start / len;
    end[2] = ex - (ex - px) / len;
    end[3] = ey - (ey - py) / len;
    return 1;
}

static int inside(box b, double x, double y)
{
    return x >= b.x0 && x <= b.x1 && y >= b.y0 && y <= b.y1;
}

/* What a leader line crosses: a cost for every 2 points of it over a marker,
 * and ten times that over another label (a line through a label misleads). */
static double leader_cost(const double *end, const obstacles *o, const box *placed,
                          size_t n_placed)
{
    double len = hypot(end[2] - end[0], end[3] - end[1]), cost = 0.0;
    int steps = (int)(len / 2.0) + 1;
    for (int t = 0; t <= steps; t++) {
        double x = end[0] + (end[2] - end[0]) * t / steps;
        double y = end[1] + (end[3] - end[1]) * t / steps;
        for (size_t j = 0; j < n_placed; j++)
            cost += inside(placed[j], x, y) ? 10 * RING_COST / 2 : 0;
        for (size_t j = 0; j < o->n; j++)
            cost += o->v[j].cost >= MARKER_COST && inside(o->v[j].b, x, y) ? RING_COST / 2 : 0;
    }
    return cost;
}

/* The cost of a label at b for the point (px, py): what it and its leader
 * cover, and how far it is from its point (a ring further costs as much as
 * covering 40 square points of bar; left and above or below a little more
 * than right, where labels are read best). */
static double candidate_cost(box b, double px, double py, int ring, int dx, int dy,
                             const obstacles *o, const box *placed, size_t n_placed,
                             const frame *fr)
{
    if (b.x0 < 0 || b.y0 < 0 || b.x1 > fr->w || b.y1 > fr->h)
        return INFINITY; /* cut off, or over the axes' tic labels */
    double cost = RING_COST * ring + (dx < 0) + 0.5 * (dy != 0);
    for (size_t j = 0; j < n_placed; j++) /* with a margin, so that labels do not touch */
        cost += LABEL_COST * overlap(b, (box){placed[j].x0 - 3.5, placed[j].y0 - 1.0,
                                              placed[j].x1 + 3.5, placed[j].y1 + 1.0});
    for (size_t j = 0; j < o->n; j++)
        cost += o->v[j].cost * overlap(b, o->v[j].b);
    double end[4];
    if (ring > 0 && leader_of(px, py, b, end))
        cost += leader_cost(end, o, placed, n_placed);
    return cost;
}

/* The order labels are placed in: frontier points and the ends of each
 * agent's line first (they anchor the reading of the rest), then in order. */
static int label_rank(const setting_point *s, const int *end, size_t i)
{
    return s[i].on_frontier || end[i] ? 0 : 1;
}

/* Places one label: the cheapest candidate that covers no other label and
 * no marker; none (LABEL_NONE) when every candidate does. Its leader line
 * joins the obstacles of the labels placed after it. */
static int place_label(setting_point *p, const frame *fr, obstacles *o, box *placed,
                       size_t *n_placed)
{
    double px = to_px(fr, p->x.mean), py = to_py(fr, p->y.mean);
    double w = (double)strlen(p->label) * char_w;
    double best = INFINITY;
    box chosen = {0};
    int best_dx = 0, best_ring = 0;
    for (int ring = 0; ring < N_RINGS; ring++)
        for (int k = 0; k < N_DIRECTIONS; k += ring ? 1 : 2) {
            int dx, dy;
            box b = candidate_box(px, py, w, k, ring, &dx, &dy);
            double cost = candidate_cost(b, px, py, ring, dx, dy, o, placed, *n_placed, fr);
            if (cost < best) {
                best = cost;
                chosen = b;
                best_dx = dx;
                best_ring = ring;
            }
        }
    p->align = LABEL_NONE;
    for (int k = 0; k < 4; k++)
        p->leader[k] = NAN;
    if (!(best < max_label_cost)) /* covers a label or a marker */
        return DS_OK;
    placed[(*n_placed)++] = chosen;
    p->align = best_dx > 0 ? LABEL_LEFT : best_dx < 0 ? LABEL_RIGHT : LABEL_CENTRE;
    double ax = best_dx > 0   ? chosen.x0
                : best_dx < 0 ? chosen.x1
                              : 0.5 * (chosen.x0 + chosen.x1);
    p->label_x = from_px(fr, ax);
    p->label_y = from_py(fr, 0.5 * (chosen.y0 + chosen.y1));
    double end[4];
    if (best_ring == 0 || !leader_of(px, py, chosen, end))
        return DS_OK;
    for (int k = 0; k < 4; k++)
        p->leader[k] = k % 2 ? from_py(fr, end[k]) : from_px(fr, end[k]);
    return add_segment(o, end[0], end[1], end[2], end[3], 3.0);
}

/* Places the labels greedily (label_rank, then series order), each where it
 * covers the least, inside the plot area; a label that would cover another
 * or a marker is left out: its point is read from its agent's line, whose
 * ends are labelled first. joined[i]: series i's agent's points are joined. */
static int place_labels(const plot_ctx *c, setting_point *s, box axes, const int *joined)
{
    frame fr = {axes, area_in[2] * 72.0, area_in[3] * 72.0};
    obstacles o = {0};
    box *placed = calloc(c->n_series ? c->n_series : 1, sizeof *placed);
    int *end = calloc(c->n_series ? c->n_series : 1, sizeof *end);
    int rc = placed && end ? pareto_obstacles(c, s, &fr, joined, &o) : DS_ENOMEM;
    for (size_t i = 0; rc == DS_OK && i < c->n_series; i++) {
        int first = 1, last = 1;
        for (size_t j = 0; j < c->n_series; j++)
            if (j != i && has_point(&s[j]) && c->series[j].colour == c->series[i].colour) {
                first &= j > i;
                last &= j < i;
            }
        end[i] = first || last;
    }
    size_t n_placed = 0;
    for (int rank = 0; rc == DS_OK && rank <= 1; rank++)
        for (size_t i = 0; rc == DS_OK && i < c->n_series; i++) {
            if (!has_point(&s[i]) || label_rank(s, end, i) != rank)
                continue;
            rc = place_label(&s[i], &fr, &o, placed, &n_placed);
        }
    free(end);
    free(placed);
    free(o.v);
    return rc;
}

/* The frontier's points by increasing x, as the last block of the data. */
static int write_frontier(FILE *f, const setting_point *s, size_t n)
{
    xy *front = malloc((n ? n : 1) * sizeof *front);
    if (!front)
        return DS_ENOMEM;
    size_t m = frontier_points(s, n, front);
    fputs("\n\n# frontier: the points no other beats on both axes, by increasing x\n", f);
    for (size_t i = 0; i < m; i++) {
        put_number(f, front[i].x);
        put_number(f, front[i].y);
        fputc('\n', f);
    }
    free(front);
    return DS_OK;
}

/* The number of configurations of agent colour with an eval phase. */
static size_t agent_points(const plot_ctx *c, const setting_point *s, int colour)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_series; i++)
        n += c->series[i].colour == colour && s[i].runs > 0;
    return n;
}

/* Labels: an agent with one configuration is labelled with its title; the
 * points of an agent with several, with their values of the swept keys only
 * ("8, 0.1"), the key naming the agent and the keys (agent_key_title). */
static void label_points(const plot_ctx *c, setting_point *s)
{
    for (size_t i = 0; i < c->n_series; i++) {
        const series *me = &c->series[i];
        if (agent_points(c, s, me->colour) <= 1) {
            snprintf(s[i].label, sizeof s[i].label, "%s", me->label);
            continue;
        }
        size_t len = 0;
        s[i].label[0] = '\0';
        for (size_t k = 0; k < c->n_swept && len < sizeof s[i].label; k++)
            if (agent_varies(c, me->agent, k))
                len += (size_t)snprintf(s[i].label + len, sizeof s[i].label - len, "%s%s",
                                        len ? ", " : "", me->values[k]);
    }
}

/* "cf (factors, regularization)": the agent of series i and the swept keys
 * its points' labels give the values of. */
static void agent_key_title(const plot_ctx *c, size_t i, char *buf, size_t size)
{
    const series *me = &c->series[i];
    size_t len = (size_t)snprintf(buf, size, "%s", me->agent);
    int first = 1;
    for (size_t k = 0; k < c->n_swept && len < size; k++) {
        if (!agent_varies(c, me->agent, k))
            continue;
        char part[256];
        len += (size_t)snprintf(buf + len, size - len, "%s%s", first ? " (" : ", ",
                                short_key(c, c->swept[k], part, sizeof part));
        first = 0;
    }
    if (!first && len < size)
        snprintf(buf + len, size - len, ")");
}

/* 1 when the configurations of agent colour differ in exactly one swept key
 * (their points, in the order of its values, can be joined by a line). */
static int is_path(const plot_ctx *c, const setting_point *s, int colour)
{
    int keys = 0;
    for (size_t k = 0; k < c->n_swept; k++) {
        const char *value = NULL; /* the first configuration's; NULL: none */
        int seen = 0, differs = 0;
        for (size_t i = 0; i < c->n_series; i++) {
            if (c->series[i].colour != colour || !s[i].runs)
                continue;
            const char *v = c->series[i].values[k];
            if (seen && compare_values(value, v) != 0)
                differs = 1;
            if (!seen)
                value = v;
            seen = 1;
        }
        keys += differs;
    }
    return keys == 1;
}

/* Writes a block per agent, a point per configuration; shown[] gets the
 * agents, titled as in the key (titles[] holds the text). */
static void write_setting_points(FILE *f, const plot_ctx *c, const setting_point *s,
                                 fig_series *shown, char (*titles)[512], size_t *n_shown)
{
    *n_shown = 0;
    for (int colour = 1; colour <= c->n_agents; colour++) {
        int started = 0;
        for (size_t i = 0; i < c->n_series; i++) {
            if (c->series[i].colour != colour || s[i].runs == 0)
                continue;
            if (!started) {
                fprintf(f, "%s# series: %s\n", *n_shown ? "\n\n" : "", c->series[i].agent);
                agent_key_title(c, i, titles[*n_shown], sizeof titles[*n_shown]);
                shown[*n_shown] = (fig_series){titles[*n_shown], colour, 1, 0};
                (*n_shown)++;
                started = 1;
            }
            put_number(f, s[i].x.mean);
            put_number(f, s[i].y.mean);
            put_number(f, s[i].x.lo);
            put_number(f, s[i].x.hi);
            put_number(f, s[i].y.lo);
            put_number(f, s[i].y.hi);
            fprintf(f, " %zu \"%s\"", s[i].runs, s[i].label);
            int labelled = s[i].align != LABEL_NONE;
            put_number(f, labelled ? s[i].label_x : NAN);
            put_number(f, labelled ? s[i].label_y : NAN);
            fprintf(f, " %d", (int)s[i].align);
            /* No leader: one of no length, under the marker (gnuplot warns
             * of a block of lines that are all NaN). */
            int leader = labelled && !isnan(s[i].leader[0]);
            for (int k = 0; k < 4; k++)
                put_number(f, leader ? s[i].leader[k] : k % 2 ? s[i].y.mean : s[i].x.mean);
            fputc('\n', f);
        }
    }
}

static int plot_pareto(const plot_ctx *c, const metric_info *d, char *err)
{
    const metric_info *purchases = find_metric("purchases", err);
    points p = {0};
    int rc = read_eval(c, d, purchases, &p, err);
    setting_point *s = calloc(c->n_series, sizeof *s);
    fig_series *shown = calloc(c->n_series, sizeof *shown);
    char (*titles)[512] = calloc(c->n_series, sizeof *titles);
    double *buf = malloc((p.n ? p.n : 1) * sizeof *buf);
    int *joined = calloc(c->n_series ? c->n_series : 1, sizeof *joined);
    if (rc == DS_OK && (!s || !shown || !titles || !buf || !joined))
        rc = err_set(err, DS_ENOMEM, "out of memory drawing '%s'", c->db_path);
    int skip = rc == DS_OK && p.n == 0;
    if (skip)
        note("no finished run in '%s' has an eval phase; pareto figure skipped", c->db_path);
    size_t n_shown = 0;
    box axes = {0};
    figure f = {.kind = "pareto"};
    snprintf(f.name, sizeof f.name, "pareto_%s", d->name);
    if (rc == DS_OK && !skip) {
        for (size_t i = 0; i < p.n;) {
            size_t j = group_end(&p, i);
            setting_point *q = &s[p.v[i].series];
            q->x = band_of(&p.v[i], j - i, 0, buf);
            q->y = band_of(&p.v[i], j - i, 1, buf);
            q->runs = j - i;
            i = j;
        }
        mark_frontier(s, c->n_series);
        label_points(c, s);
        axes = pareto_axes(s, c->n_series);
        for (size_t i = 0; i < c->n_series; i++)
            joined[i] = is_path(c, s, c->series[i].colour);
        if (place_labels(c, s, axes, joined) != DS_OK)
            rc = err_set(err, DS_ENOMEM, "out of memory drawing '%s'", c->db_path);
    }
    if (rc == DS_OK && !skip) {
        char what[256];
        snprintf(what, sizeof what, "eval %s against eval purchases per episode, per"
                 " configuration: means over runs and 95%% CI", d->name);
        rc = figure_open(c, &f, what, err);
    }
    if (rc == DS_OK && !skip) {
        fprintf(f.data,
                "# columns: 1 %s mean | 2 purchases mean | 3-4 %s 95%% CI low, high |"
                " 5-6 purchases 95%% CI low, high | 7 runs | 8 label | 9-10 where the label goes"
                " (NaN: left out, it would cover another label or a marker) | 11 its"
                " alignment there (0 none, 1 left, 2 centre, 3 right) | 12-15 a leader line"
                " from x, y to x, y (none: both ends at the point)\n"
                "# one block per agent (its first line: '# series: AGENT'), a point per"
                " configuration; the last block is the Pareto frontier\n", d->name, d->name);
        write_setting_points(f.data, c, s, shown, titles, &n_shown);
        if (write_frontier(f.data, s, c->n_series) != DS_OK) {
            figure_abandon(&f);
            rc = err_set(err, DS_ENOMEM, "out of memory drawing '%s'", c->db_path);
        }
    }
    if (rc == DS_OK && !skip) {
        write_series_vars(f.vars, shown, n_shown);
        fprintf(f.vars, "array series_path[%zu] = [", n_shown);
        for (size_t i = 0; i < n_shown; i++)
            fprintf(f.vars, "%s%d", i ? ", " : "", is_path(c, s, shown[i].colour));
        fprintf(f.vars, "]  # 1: the agent's points join in the order of one setting\n"
                        "array series_keyed[%zu] = [", n_shown);
        for (size_t i = 0; i < n_shown; i++)
            fprintf(f.vars, "%s%d", i ? ", " : "", agent_points(c, s, shown[i].colour) > 1);
        fputs("]  # 1: labelled by setting, named in the key", f.vars);
        fprintf(f.vars, "\narray axes[4] = [%.10g, %.10g, %.10g, %.10g]  # x: from, to; y\n"
                "array area[4] = [%g, %g, %g, %g]  # the plot area in inches: left, bottom,"
                " width, height (the labels are placed for it)\n",
                axes.x0, axes.x1, axes.y0, axes.y1, area_in[0], area_in[1], area_in[2],
                area_in[3]);
        put_string_var(f.vars, "xlabel", d->label);
        put_string_var(f.vars, "ylabel", purchases->label);
        rc = figure_close(&f, err);
        if (rc == DS_OK)
            rc = render(c, &f, err);
    }
    free(joined);
    free(buf);
    free(titles);
    free(shown);
    free(s);
    free(p.v);
    return rc;
}

/* ---- sweep: a metric against a swept parameter ---- */

/* A line of a sweep figure: an agent that varies the key, with its settings
 * of the other keys it varies; or a reference line, drawn flat: an agent with
 * one configuration that does not vary the key (a baseline). The
 * configurations of agents with several, none varying the key (mmr's lambdas
 * in a sweep of a bonus scoped to ppo and a2c), are left out: the key does
 * not apply to them. */
typedef struct {
    char title[512];
    int colour, variant, reference;
} sweep_line;

/* DS_OK when every value of swept key k is a number. */
static int key_is_numeric(const plot_ctx *c, size_t k)
{
    for (size_t i = 0; i < c->n_series; i++)
        if (c->series[i].values[k] && !is_number(c->series[i].values[k], NULL))
            return 0;
    return 1;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static size_t agent_configs(const plot_ctx *c, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_series; i++)
        n += strcmp(c->series[i].agent, name) == 0;
    return n;
}

/* The lines of the sweep over key k; line_of[i] is series i's line, SIZE_MAX
 * when it is left out. */
static size_t sweep_lines(const plot_ctx *c, size_t k, sweep_line *lines, size_t *line_of)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_series; i++) {
        const series *s = &c->series[i];
        int varies = agent_varies(c, s->agent, k);
        line_of[i] = SIZE_MAX;
        if (!varies && agent_configs(c, s->agent) > 1)
            continue;
        char title[512];
        series_title(c, s, c->swept[k], title, sizeof title);
        size_t l = 0;
        while (l < n && strcmp(lines[l].title, title) != 0)
            l++;
        if (l == n) {
            int variant = 1;
            for (size_t m = 0; m < n; m++)
                variant += lines[m].colour == s->colour;
            lines[n] = (sweep_line){.colour = s->colour, .variant = variant,
                                    .reference = !varies};
            snprintf(lines[n].title, sizeof lines[n].title, "%s", title);
            n++;
        }
        line_of[i] = l;
    }
    return n;
}

/* How the x axis of a sweep shows its values (sorted, distinct): a log axis
 * when all are positive and span two decades or more; evenly spaced
 * categories, a tic at each value, when a linear axis would squeeze some
 * (two neighbours closer than a twentieth of the range, as 0, 0.01, 0.02 with
 * 0.5) and there are at most 12; else linear. */
typedef enum { AXIS_LINEAR, AXIS_LOG, AXIS_CATEGORIES } axis_kind;
static const char *const axis_names[] = {"linear", "log", "categories"};
enum { MAX_CATEGORIES = 12 };

static axis_kind sweep_axis(const double *values, size_t n)
{
    if (n >= 2 && values[0] > 0 && values[n - 1] >= 100.0 * values[0])
        return AXIS_LOG;
    double range = n >= 2 ? values[n - 1] - values[0] : 0.0;
    for (size_t i = 1; n >= 3 && n <= MAX_CATEGORIES && i < n; i++)
        if (values[i] - values[i - 1] < range / 20.0)
            return AXIS_CATEGORIES;
    return AXIS_LINEAR;
}

/* Where value number bin (0-based) of the sweep is drawn. */
static double axis_position(axis_kind axis, const double *values, long bin)
{
    return axis == AXIS_CATEGORIES ? (double)(bin + 1) : values[bin];
}

/* Writes the sweep's groups: a line's points by value; a reference line as
 * its mean over all its runs at the smallest and the largest value. */
static void write_sweep(FILE *f, const points *p, const sweep_line *lines, const double *values,
                        size_t n_values, axis_kind axis, fig_series *shown, size_t *n_shown,
                        double *buf)
{
    *n_shown = 0;
    for (size_t i = 0; i < p->n;) {
        size_t j = group_end(p, i);
        const point *g = &p->v[i];
        const sweep_line *l = &lines[g->series];
        if (i == 0 || g->series != p->v[i - 1].series) {
            fprintf(f, "%s# series: %s\n", i ? "\n\n" : "", l->title);
            shown[(*n_shown)++] = (fig_series){l->title, l->colour, l->variant, l->reference};
        }
        band b = band_of(g, j - i, 0, buf);
        for (int end = 0; end < (l->reference ? 2 : 1); end++) {
            long bin = l->reference ? (end ? (long)n_values - 1 : 0) : g->bin;
            put_number(f, values[bin]);
            put_number(f, b.mean);
            put_number(f, b.lo);
            put_number(f, b.hi);
            fprintf(f, " %zu", j - i);
            put_number(f, axis_position(axis, values, bin));
            fputc('\n', f);
        }
        i = j;
    }
}

/* The distinct values of key k among the series drawn as lines of their own,
 * sorted, into values; their number. */
static size_t sweep_values(const plot_ctx *c, size_t k, const sweep_line *lines,
                           const size_t *line_of, double *values)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_series; i++)
        if (line_of[i] != SIZE_MAX && !lines[line_of[i]].reference && c->series[i].values[k])
            is_number(c->series[i].values[k], &values[n++]);
    qsort(values, n, sizeof *values, by_value);
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++)
        if (distinct == 0 || values[i] != values[distinct - 1])
            values[distinct++] = values[i];
    return distinct;
}

/* Moves the points of p from configurations to the lines of the sweep, with
 * bin = the index of their value; drops those of configurations left out,
 * and those without the key on a line of an agent that varies it. */
static void points_to_lines(const plot_ctx *c, size_t k, const sweep_line *lines,
                            const size_t *line_of, const double *values, size_t n_values,
                            points *p)
{
    size_t kept = 0;
    for (size_t i = 0; i < p->n; i++) {
        point q = p->v[i];
        size_t l = line_of[q.series];
        const char *value = c->series[q.series].values[k];
        if (l == SIZE_MAX || (!lines[l].reference && !value))
            continue; /* left out, or a configuration of a line without the key */
        q.bin = 0;
        if (!lines[l].reference) {
            is_number(value, &q.x);
            while ((size_t)q.bin + 1 < n_values && values[q.bin] != q.x)
                q.bin++;
        }
        q.series = l;
        p->v[kept++] = q;
    }
    p->n = kept;
}

static void write_sweep_axis(FILE *f, axis_kind axis, const double *values, size_t n_values)
{
    fprintf(f, "xaxis = \"%s\"  # linear, log, or categories (evenly spaced, a tic at"
               " each value); data column 6 is the position\narray values[%zu] = [",
            axis_names[axis], n_values);
    for (size_t i = 0; i < n_values; i++)
        fprintf(f, "%s%.10g", i ? ", " : "", values[i]);
    fputs("]\n", f);
}

static int plot_sweep(const plot_ctx *c, const metric_info *m, size_t k, char *err)
{
    sweep_line *lines = calloc(c->n_series, sizeof *lines);
    size_t *line_of = calloc(c->n_series, sizeof *line_of);
    double *values = calloc(c->n_series, sizeof *values); /* [n_series] distinct, sorted */
    fig_series *shown = calloc(c->n_series, sizeof *shown);
    points p = {0};
    double *buf = NULL;
    int rc = lines && line_of && values && shown ? DS_OK : DS_ENOMEM;
    if (rc == DS_OK)
        rc = read_eval(c, m, NULL, &p, err);
    if (rc == DS_OK && !(buf = malloc((p.n ? p.n : 1) * sizeof *buf)))
        rc = DS_ENOMEM;
    if (rc == DS_ENOMEM)
        err_set(err, rc, "out of memory drawing '%s'", c->db_path);
    size_t n_values = 0, n_shown = 0;
    axis_kind axis = AXIS_LINEAR;
    figure f = {.kind = "sweep"};
    if (rc == DS_OK) {
        sweep_lines(c, k, lines, line_of);
        n_values = sweep_values(c, k, lines, line_of, values);
        points_to_lines(c, k, lines, line_of, values, n_values, &p);
        axis = sweep_axis(values, n_values);
    }
    int skip = rc == DS_OK && (p.n == 0 || n_values == 0);
    if (skip)
        note("no finished run in '%s' that varies '%s' has an eval phase; sweep figure"
             " skipped", c->db_path, c->swept[k]);
    if (rc == DS_OK && !skip) {
        qsort(p.v, p.n, sizeof *p.v, by_series_phase_bin);
        snprintf(f.name, sizeof f.name, "sweep_%s_%s", c->swept[k], m->name);
        char what[512];
        snprintf(what, sizeof what, "eval %s against %s, mean over runs and 95%% CI", m->name,
                 c->swept[k]);
        rc = figure_open(c, &f, what, err);
    }
    if (rc == DS_OK && !skip) {
        fprintf(f.data, "# columns: 1 %s | 2-4 %s: mean over runs, 95%% CI low, high | 5 runs |"
                " 6 position on the x axis (%s)\n"
                "# one block per line (its first line: '# series: TITLE'), blocks separated by"
                " two blank lines; an agent with one configuration that does not vary %s is a"
                " flat line over all its runs; agents with several, none varying it, are left"
                " out\n", c->swept[k], m->name, axis_names[axis], c->swept[k]);
        write_sweep(f.data, &p, lines, values, n_values, axis, shown, &n_shown, buf);
        write_series_vars(f.vars, shown, n_shown);
        write_x_range(f.vars, values[0], values[n_values - 1]);
        put_string_var(f.vars, "xlabel", c->swept[k]);
        char ylabel[256];
        snprintf(ylabel, sizeof ylabel, "%s (eval)", m->label);
        put_string_var(f.vars, "ylabel", ylabel);
        write_sweep_axis(f.vars, axis, values, n_values);
        rc = figure_close(&f, err);
        if (rc == DS_OK)
            rc = render(c, &f, err);
    }
    free(buf);
    free(p.v);
    free(shown);
    free(values);
    free(line_of);
    free(lines);
    return rc;
}

/* The index of key in c->swept, or an error when it cannot be swept. */
static int find_swept(const plot_ctx *c, const char *key, size_t *k, char *err)
{
    for (*k = 0; *k < c->n_swept; (*k)++)
        if (strcmp(c->swept[*k], key) == 0)
            return key_is_numeric(c, *k)
                       ? DS_OK
                       : err_set(err, DS_EINPUT, "plot: parameter '%s' is not numeric: cannot"
                                 " draw a sweep over it", key);
    sqlite3_stmt *st;
    int known = 0;
    if (sqlite3_prepare_v2(c->db, "SELECT 1 FROM params WHERE key = ? LIMIT 1", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        known = sqlite3_step(st) == SQLITE_ROW;
    }
    sqlite3_finalize(st);
    if (!known)
        return err_set(err, DS_EINPUT, "plot: unknown parameter '%s' (not a key of the params"
                       " table of '%s')", key, c->db_path);
    return err_set(err, DS_EINPUT, "plot: parameter '%s' has one value among the finished"
                   " runs of '%s': nothing to sweep", key, c->db_path);
}

static int plot_sweeps(const plot_ctx *c, const metric_info *m, const char *param, char *err)
{
    size_t k;
    if (param) {
        int rc = find_swept(c, param, &k, err);
        return rc == DS_OK ? plot_sweep(c, m, k, err) : rc;
    }
    int drawn = 0;
    for (k = 0; k < c->n_swept; k++) {
        if (!key_is_numeric(c, k))
            continue;
        int rc = plot_sweep(c, m, k, err);
        if (rc != DS_OK)
            return rc;
        drawn++;
    }
    if (!drawn)
        note("no numeric parameter takes several values among the finished runs of '%s';"
             " sweep figure skipped", c->db_path);
    return DS_OK;
}

/* ---- coverage and training: three panels over time or updates ---- */

/* Per run and full metrics window: simulated time, coverage, Gini, normalised
 * entropy. A phase's final partial window is left out: exposure over fewer
 * episodes has lower coverage and higher Gini, a step that is not the agent's. */
#define COVERAGE_SQL \
    "SELECT r.config_hash, w.phase = 'eval', w.\"window\", w.sim_time,\n" \
    "       w.coverage, w.gini, w.exposure_entropy_norm\n" \
    "FROM runs r JOIN windows w ON w.run_id = r.id\n" \
    "LEFT JOIN (SELECT run_id, CAST(value AS INTEGER) AS size FROM params\n" \
    "           WHERE key = 'experiment.window') p ON p.run_id = r.id\n" \
    "WHERE r.status = 'done' AND (p.size IS NULL OR w.episodes >= p.size)"

/* Per run and update: the train sessions completed when it was made (update
 * u, from 0, takes the batch of sessions u * B .. (u + 1) * B - 1, B the
 * agent's batch_episodes; NULL when the run has no such key), entropy, KL
 * and value loss. */
#define TRAINING_SQL \
    "SELECT r.config_hash, 0, u.\"update\", (u.\"update\" + 1) * CAST(b.value AS INTEGER),\n" \
    "       u.entropy, u.approx_kl, u.value_loss\n" \
    "FROM runs r JOIN updates u ON u.run_id = r.id\n" \
    "LEFT JOIN params b ON b.run_id = r.id AND b.key = 'agent.' || r.agent || '.batch_episodes'\n" \
    "WHERE r.status = 'done'"

static int plot_coverage(const plot_ctx *c, char *err)
{
    points p = {0};
    int rc = read_points(c, COVERAGE_SQL, 3, &p, err);
    figure f = {.kind = "coverage", .name = "coverage"};
    if (rc == DS_OK && p.n == 0) {
        note("no full metrics window (of `window` episodes) in the finished runs of '%s';"
             " coverage figure skipped", c->db_path);
        free(p.v);
        return DS_OK;
    }
    if (rc == DS_OK) {
        qsort(p.v, p.n, sizeof *p.v, by_series_phase_bin);
        rc = begin_groups(c, &f, "coverage, Gini and normalised exposure entropy of the"
                          " metrics windows against simulated time, mean over runs and 95% CI",
                          "1 simulated hours at the window's close (mean over runs) |"
                          " 2-4 coverage: mean, 95% CI low, high | 5-7 gini | 8-10"
                          " exposure_entropy_norm | 11 runs | 12 phase (0 train, 1 eval) |"
                          " 13 1 on the last full train window", &p, 3, err);
    }
    if (rc == DS_OK) {
        put_string_var(f.vars, "xlabel", "simulated time (hours)");
        rc = figure_close(&f, err);
    }
    if (rc == DS_OK)
        rc = render(c, &f, err);
    free(p.v);
    return rc;
}

/* Per panel (quantity), the 1-based blocks of the series that report it, as
 * a gnuplot word list (" 1 3"), so that a template draws only those. */
static void write_panel_series(FILE *f, const points *p)
{
    fputs("array panel_series[3] = [", f);
    for (int j = 0; j < MAX_Y; j++) {
        fputs(j ? ", \"" : "\"", f);
        size_t block = 0;
        for (size_t i = 0; i < p->n;) {
            size_t end = i, has = 0;
            while (end < p->n && p->v[end].series == p->v[i].series)
                has |= !isnan(p->v[end++].y[j]);
            block++;
            if (has)
                fprintf(f, " %zu", block);
            i = end;
        }
        fputc('"', f);
    }
    fputs("]\n", f);
}

static int plot_training(const plot_ctx *c, char *err)
{
    points p = {0};
    int rc = read_points(c, TRAINING_SQL, 3, &p, err);
    figure f = {.kind = "training", .name = "training"};
    if (rc == DS_OK && p.n == 0) {
        note("no training diagnostics (updates) of finished runs in '%s'; training figure"
             " skipped", c->db_path);
        free(p.v);
        return DS_OK;
    }
    /* Updates count sessions alike only if every run says how many it takes. */
    int by_episodes = 1;
    for (size_t i = 0; i < p.n; i++)
        by_episodes &= !isnan(p.v[i].x);
    for (size_t i = 0; i < p.n && !by_episodes; i++)
        p.v[i].x = (double)p.v[i].bin;
    if (rc == DS_OK) {
        qsort(p.v, p.n, sizeof *p.v, by_series_phase_bin);
        rc = begin_groups(c, &f, by_episodes
                          ? "policy entropy, approximate KL and value loss against train"
                            " sessions, mean over runs and 95% CI"
                          : "policy entropy, approximate KL and value loss against updates,"
                            " mean over runs and 95% CI",
                          by_episodes
                          ? "1 train episodes (sessions) completed at the update: (update + 1)"
                            " * batch_episodes | 2-4 entropy: mean, 95% CI low, high | 5-7"
                            " approx_kl | 8-10 value_loss | 11 runs | 12 phase (always 0,"
                            " train) | 13 unused"
                          : "1 update | 2-4 entropy: mean, 95% CI low, high | 5-7 approx_kl |"
                            " 8-10 value_loss | 11 runs | 12 phase (always 0, train) | 13"
                            " unused", &p, 3, err);
    }
    if (rc == DS_OK) {
        put_string_var(f.vars, "xlabel", by_episodes ? "train episodes"
                                                     : "update");
        write_panel_series(f.vars, &p);
        rc = figure_close(&f, err);
    }
    if (rc == DS_OK)
        rc = render(c, &f, err);
    free(p.v);
    return rc;
}

/* ---- finding gnuplot and the templates ---- */

static int find_gnuplot(char *path, size_t size, char *err)
{
    const char *dirs = getenv("PATH");
    for (const char *p = dirs ? dirs : ""; dirs;) {
        size_t len = strcspn(p, ":");
        struct stat st;
        snprintf(path, size, "%.*s/gnuplot", len ? (int)len : 1, len ? p : ".");
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0)
            return DS_OK;
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    return err_set(err, DS_EINPUT, "gnuplot is not installed: apt-get install gnuplot-nox");
}

static int has_templates(const char *dir)
{
    char path[PATH_LEN];
    return path_join(path, dir, "common", ".gp", NULL) == DS_OK && access(path, R_OK) == 0;
}

/* --templates DIR, else ./plots, else plots next to the executable (or in
 * ../share/divsim/plots from it). */
static int find_templates(const char *given, char *dir, size_t size, char *err)
{
    if (given) {
        int n = snprintf(dir, size, "%s", given);
        return n >= 0 && (size_t)n < size && has_templates(dir) ? DS_OK
                                  : err_set(err, DS_EINPUT, "no gnuplot templates in '%s'"
                                            " (no '%s/common.gp')", given, given);
    }
    char exe[PATH_LEN] = "";
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[len > 0 ? len : 0] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    char tried[3][PATH_LEN];
    snprintf(tried[0], PATH_LEN, "plots");
    int fits = path_join(tried[1], exe, "plots", "", NULL) == DS_OK &&
               path_join(tried[2], exe, "../share/divsim/plots", "", NULL) == DS_OK;
    for (int i = 0; i < (slash && fits ? 3 : 1); i++)
        if (has_templates(tried[i])) {
            int n = snprintf(dir, size, "%s", tried[i]);
            if (n >= 0 && (size_t)n < size)
                return DS_OK;
        }
    return err_set(err, DS_EINPUT, "cannot find the gnuplot templates: tried '%s', '%s' and"
                   " '%s' (no common.gp); give --templates DIR", tried[0],
                   slash ? tried[1] : "(the executable's directory)",
                   slash ? tried[2] : "(its ../share/divsim/plots)");
}

/* mkdir -p */
static int make_dirs(const char *path, char *err)
{
    char buf[PATH_LEN];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return err_set(err, DS_EIO, "cannot create the directory '%s': %s", buf,
                           strerror(errno));
        *p = saved;
        if (saved == '\0')
            break;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return err_set(err, DS_EIO, "'%s' is not a directory", path);
    return DS_OK;
}

/* ---- the command ---- */

static int draw_all(const plot_ctx *c, const plot_options *o, char *err)
{
    int rc = DS_OK;
    if (rc == DS_OK && (o->kinds & KIND_LEARNING))
        rc = plot_learning(c, o->metric, err);
    if (rc == DS_OK && (o->kinds & KIND_PARETO))
        rc = plot_pareto(c, o->diversity, err);
    if (rc == DS_OK && (o->kinds & KIND_SWEEP))
        rc = plot_sweeps(c, o->metric, o->param, err);
    if (rc == DS_OK && (o->kinds & KIND_COVERAGE))
        rc = plot_coverage(c, err);
    if (rc == DS_OK && (o->kinds & KIND_TRAINING))
        rc = plot_training(c, err);
    return rc;
}

int plot_command(int argc, char **argv, char *err)
{
    plot_options o;
    int rc = parse_options(argc, argv, &o, err);
    if (rc != DS_OK)
        return rc;
    plot_ctx c = {.db_path = o.db_path, .formats = o.formats};
    rc = find_gnuplot(c.gnuplot, sizeof c.gnuplot, err);
    if (rc == DS_OK)
        rc = find_templates(o.templates, c.templates, sizeof c.templates, err);
    if (rc == DS_OK)
        rc = open_database(&c, err);
    if (rc == DS_OK)
        rc = read_experiment(&c, err);
    if (rc == DS_OK)
        rc = read_swept(&c, err);
    if (rc == DS_OK)
        rc = read_series(&c, err);
    size_t k;
    if (rc == DS_OK && o.param && (o.kinds & KIND_SWEEP))
        rc = find_swept(&c, o.param, &k, err); /* before drawing anything */
    if (rc == DS_OK) {
        if (o.out_dir)
            snprintf(c.out_dir, sizeof c.out_dir, "%s", o.out_dir);
        else
            snprintf(c.out_dir, sizeof c.out_dir, "plots/%s", c.experiment);
        rc = make_dirs(c.out_dir, err);
    }
    if (rc == DS_OK)
        rc = draw_all(&c, &o, err);
    ctx_free(&c);
    return rc;
}
