#include "report.h"

#include "../agents/agent.h"
#include "../envs/env.h"
#include "common.h"
#include "stats.h"

#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* ---- divsim list ---- */

static void print_range(FILE *out, const param_spec *s)
{
    switch (s->type) {
    case PARAM_INT:
    case PARAM_REAL: fprintf(out, "[%g, %g]", s->min, s->max); break;
    case PARAM_BOOL: fputs("true|false", out); break;
    case PARAM_CHOICE: fputs(s->choices, out); break;
    }
}

static void print_params(FILE *out, const param_table *t)
{
    if (t->count == 0) {
        fputs("    (no parameters)\n", out);
        return;
    }
    for (size_t i = 0; i < t->count; i++) {
        const param_spec *s = &t->specs[i];
        fprintf(out, "    %-20s = %-8s ", s->key, s->fallback);
        print_range(out, s);
        fprintf(out, "\n        %s\n", s->help);
    }
}

static void list_envs(FILE *out)
{
    fputs("environments ([env] kind = NAME; keys go in [env]):\n", out);
    for (int i = 0; i < env_registry_count; i++) {
        const env_type *e = env_registry[i];
        fprintf(out, "\n  %s (v%d): %s\n", e->name, e->version, e->summary);
        print_params(out, &e->params);
    }
}

static void list_agents(FILE *out)
{
    fputs("agents ([agent] kind = NAME; keys go in [agent.NAME]):\n", out);
    for (int i = 0; i < agent_registry_count; i++) {
        const agent_type *a = agent_registry[i];
        fprintf(out, "\n  %s (v%d): %s\n", a->name, a->version, a->summary);
        print_params(out, &a->params);
    }
}

static const char *const metric_docs[][2] = {
    {"ild", "per slate: mean over item pairs of 1 - cos(q_a, q_b), true latents; episode mean"},
    {"topic_ild", "per slate: share of item pairs from different topics; episode mean"},
    {"topic_entropy", "per episode: -sum p ln p over the topics of all items shown (nats)"},
    {"novelty", "per episode: mean -log2 p_i over impressions, p_i = (clicks_i+1)/(clicks+N)"},
    {"repeat_rate", "per episode: share of impressions showing an item already shown"},
    {"reward", "per episode: unshaped reward of [reward] kind (purchases|revenue|clicks)"},
    {"shaped_reward", "per episode: reward + diversity_bonus * sum of slate ILD"},
    {"clicks, purchases, revenue, length", "per episode: counts and sums"},
    {"ctr", "per episode: clicks / steps"},
    {"purchases_per_1000", "per episode: 1000 * purchases / impressions"},
    {"coverage", "per window/phase: distinct items shown / N"},
    {"gini", "per window/phase: Gini index of impressions over all N items"},
    {"exposure_entropy", "per window/phase: -sum p ln p of impressions; _norm divides by ln N"},
    {"retention", "per window/phase: share of users not churned at its end"},
    {"churn_rate", "per window/phase: share of its sessions after which the user churned"},
};

static void list_metrics(FILE *out)
{
    fputs("metrics (formulas in README.md):\n", out);
    for (size_t i = 0; i < sizeof metric_docs / sizeof metric_docs[0]; i++)
        fprintf(out, "  %-20s %s\n", metric_docs[i][0], metric_docs[i][1]);
}

int report_list(FILE *out, const char *what, char *err)
{
    if (strcmp(what, "envs") == 0)
        list_envs(out);
    else if (strcmp(what, "agents") == 0)
        list_agents(out);
    else if (strcmp(what, "metrics") == 0)
        list_metrics(out);
    else
        return err_set(err, DS_EINPUT, "cannot list '%s': expected agents, envs or metrics",
                       what);
    return DS_OK;
}

/* ---- divsim compare ---- */

enum { N_METRICS = 4 };
static const char *const metric_titles[N_METRICS] = {"purchases/episode", "ILD",
                                                     "coverage", "Gini"};

/* One value per done run and metric, in the eval phase. */
static const char *const per_run_sql =
    "SELECT r.env, r.agent, r.config_hash, e.purchases, e.ild, p.coverage, p.gini "
    "FROM runs r "
    "JOIN (SELECT run_id, AVG(purchases) AS purchases, AVG(ild) AS ild "
    "      FROM episodes WHERE phase = 'eval' GROUP BY run_id) e ON e.run_id = r.id "
    "JOIN phases p ON p.run_id = r.id AND p.phase = 'eval' "
    "WHERE r.status = 'done' "
    "ORDER BY r.env, r.agent, r.config_hash, r.seed";

typedef struct {
    char env[64], agent[64], config[17]; /* config: hash of all but the seed */
    double *values[N_METRICS]; /* [n] per run */
    size_t n, cap;
} group;

static int group_add(group *g, const double *v)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 8;
        for (int m = 0; m < N_METRICS; m++) {
            double *grown = realloc(g->values[m], cap * sizeof *grown);
            if (!grown)
                return DS_ENOMEM;
            g->values[m] = grown;
        }
        g->cap = cap;
    }
    for (int m = 0; m < N_METRICS; m++)
        g->values[m][g->n] = v[m];
    g->n++;
    return DS_OK;
}

/* A group per configuration: the seeds of one sweep point. The config column
 * (a prefix of the hash) appears only when an agent has several. */
static void print_group(FILE *out, const group *g, int show_config)
{
    fprintf(out, "%-8s %-12s ", g->env, g->agent);
    if (show_config)
        fprintf(out, "%-8.8s ", g->config);
    fprintf(out, "%3zu", g->n);
    for (int m = 0; m < N_METRICS; m++) {
        summary s;
        stats_summary(g->values[m], g->n, 0.95, &s);
        if (isnan(s.half_width))
            fprintf(out, "  %9.4f %-9s", s.mean, "");
        else
            fprintf(out, "  %9.4f ±%-8.4f", s.mean, s.half_width);
    }
    fputc('\n', out);
}

static void print_header(FILE *out, int show_config)
{
    fprintf(out, "%-8s %-12s ", "env", "agent");
    if (show_config)
        fprintf(out, "%-8s ", "config");
    fprintf(out, "%3s", "n");
    for (int m = 0; m < N_METRICS; m++)
        fprintf(out, "  %-19s", metric_titles[m]);
    fputc('\n', out);
}

/* Agents in registry order (random first, oracle last), unknown names after. */
static int agent_rank(const char *name)
{
    for (int i = 0; i < agent_registry_count; i++)
        if (strcmp(agent_registry[i]->name, name) == 0)
            return i;
    return agent_registry_count;
}

static int by_env_then_agent(const void *a, const void *b)
{
    const group *x = a, *y = b;
    int c = strcmp(x->env, y->env);
    if (c == 0)
        c = agent_rank(x->agent) - agent_rank(y->agent);
    if (c == 0)
        c = strcmp(x->agent, y->agent);
    return c ? c : strcmp(x->config, y->config);
}

/* Reads one group per env, agent and configuration (rows arrive sorted by them). */
static int read_groups(sqlite3_stmt *st, group **out, size_t *n_out)
{
    group *groups = NULL;
    size_t n = 0;
    int step, rc = DS_OK;
    while (rc == DS_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *env_name = (const char *)sqlite3_column_text(st, 0);
        const char *agent_name = (const char *)sqlite3_column_text(st, 1);
        const char *config = (const char *)sqlite3_column_text(st, 2);
        if (n == 0 || strcmp(env_name, groups[n - 1].env) != 0 ||
            strcmp(agent_name, groups[n - 1].agent) != 0 ||
            strcmp(config, groups[n - 1].config) != 0) {
            group *grown = realloc(groups, (n + 1) * sizeof *grown);
            if (!grown) {
                rc = DS_ENOMEM;
                break;
            }
            groups = grown;
            groups[n] = (group){0};
            snprintf(groups[n].env, sizeof groups[n].env, "%s", env_name);
            snprintf(groups[n].agent, sizeof groups[n].agent, "%s", agent_name);
            snprintf(groups[n].config, sizeof groups[n].config, "%s", config);
            n++;
        }
        double v[N_METRICS];
        for (int m = 0; m < N_METRICS; m++)
            v[m] = sqlite3_column_double(st, 3 + m);
        rc = group_add(&groups[n - 1], v);
    }
    if (rc == DS_OK && step != SQLITE_DONE)
        rc = DS_EIO;
    *out = groups;
    *n_out = n;
    return rc;
}

int report_compare(FILE *out, sqlite3 *db, const char *db_path, char *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, per_run_sql, -1, &st, NULL) != SQLITE_OK)
        return err_set(err, DS_EIO, "'%s' is not a divsim results database: %s", db_path,
                       sqlite3_errmsg(db));
    group *groups;
    size_t n;
    int rc = read_groups(st, &groups, &n);
    if (rc == DS_EIO)
        err_set(err, rc, "reading '%s': %s", db_path, sqlite3_errmsg(db));
    else if (rc != DS_OK)
        err_set(err, rc, "out of memory reading '%s'", db_path);
    sqlite3_finalize(st);
    if (rc == DS_OK) {
        qsort(groups, n, sizeof *groups, by_env_then_agent);
        fprintf(out, "eval phase, mean ± 95%% CI half-width over seeds (Student t)\n\n");
        int show_config = 0;
        for (size_t i = 1; i < n; i++)
            show_config |= strcmp(groups[i].env, groups[i - 1].env) == 0 &&
                           strcmp(groups[i].agent, groups[i - 1].agent) == 0;
        print_header(out, show_config);
        for (size_t i = 0; i < n; i++)
            print_group(out, &groups[i], show_config);
        if (n == 0)
            fprintf(out, "(no finished runs with an eval phase in '%s')\n", db_path);
    }
    for (size_t i = 0; i < n; i++)
        for (int m = 0; m < N_METRICS; m++)
            free(groups[i].values[m]);
    free(groups);
    return rc;
}
