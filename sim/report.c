#include "report.h"

#include "../agents/agent.h"
#include "../envs/env.h"
#include "common.h"

#include <string.h>

/* ---- divsim list ---- */

static void print_range(FILE *out, const param_spec *s)
{
    switch (s->type) {
    case PARAM_INT:
    case PARAM_REAL: fprintf(out, "[%g, %g]", s->min, s->max); break;
    case PARAM_BOOL: fputs("true|false", out); break;
    case PARAM_CHOICE: fputs(s->choices, out); break;
    case PARAM_STRING: fputs("text", out); break;
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
