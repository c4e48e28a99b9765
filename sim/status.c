/* `divsim status DB`: how far a sweep has come, by agent and by swept parameter.
 *
 * The runs a sweep set out to do are in the planned table; a planned run with
 * no row in runs is missing. A swept parameter is a configuration key whose
 * value differs between planned runs of one experiment. */
#include "report.h"

#include "common.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

enum { DONE, FAILED, DIVERGED, INTERRUPTED, RUNNING, MISSING, N_STATES };
static const char *const state_names[N_STATES] = {"done", "failed", "diverged",
                                                  "interrupted", "running", "missing"};

/* A row of a status table: a label and a count per state. */
typedef struct {
    char *group;   /* "agent" or a parameter key */
    char *value;   /* the agent name or the parameter's value */
    long count[N_STATES];
} tally;

typedef struct {
    tally *rows;
    size_t n, cap;
} tallies;

static int state_of(const char *status)
{
    if (!status)
        return MISSING;
    for (int s = 0; s < MISSING; s++)
        if (strcmp(status, state_names[s]) == 0)
            return s;
    return FAILED;
}

/* Adds one run in state s to the row (group, value), creating it if new. */
static int tally_add(tallies *t, const char *group, const char *value, size_t value_len,
                     int s)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->rows[i].group, group) == 0 && strlen(t->rows[i].value) == value_len &&
            strncmp(t->rows[i].value, value, value_len) == 0) {
            t->rows[i].count[s]++;
            return DS_OK;
        }
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        tally *grown = realloc(t->rows, cap * sizeof *grown);
        if (!grown)
            return DS_ENOMEM;
        t->rows = grown;
        t->cap = cap;
    }
    tally *row = &t->rows[t->n];
    *row = (tally){0};
    row->group = strdup(group);
    row->value = strndup(value, value_len);
    if (!row->group || !row->value) {
        free(row->group);
        free(row->value);
        return DS_ENOMEM;
    }
    row->count[s] = 1;
    t->n++;
    return DS_OK;
}

static void tallies_free(tallies *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->rows[i].group);
        free(t->rows[i].value);
    }
    free(t->rows);
}

/* Tallies every "key = value" line of a run's configuration. */
static int tally_config(tallies *by_key, const char *experiment, const char *config, int s)
{
    int rc = DS_OK;
    for (const char *line = config; rc == DS_OK && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *eq = memchr(line, '=', len);
        if (eq && eq > line + 1) {
            char key[256];
            size_t key_len = (size_t)(eq - 1 - line); /* "key = value" */
            snprintf(key, sizeof key, "%s\t%.*s", experiment, (int)key_len, line);
            const char *value = eq + 2 <= line + len ? eq + 2 : line + len;
            rc = tally_add(by_key, key, value, (size_t)(line + len - value), s);
        }
        line += end ? len + 1 : len;
    }
    return rc;
}

static const char *const status_sql =
    "SELECT p.experiment, p.agent, p.config, r.status FROM planned p "
    "LEFT JOIN runs r ON r.id = p.run_id "
    "UNION ALL "
    "SELECT experiment, agent, config, status FROM runs "
    "WHERE id NOT IN (SELECT run_id FROM planned)";

/* Schema version 1 had no planned table: every run recorded is every run. The
 * database is read as it is, not upgraded (a reader may not write it). */
static const char *const status_sql_v1 = "SELECT experiment, agent, config, status FROM runs";

static int has_planned(sqlite3 *db)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                           "name = 'planned'", -1, &st, NULL) != SQLITE_OK)
        return 1; /* let the status query say what is wrong */
    int found = sqlite3_step(st) != SQLITE_DONE;
    sqlite3_finalize(st);
    return found;
}

static int collect(sqlite3 *db, const char *db_path, tallies *by_experiment, tallies *by_agent,
                   tallies *by_key, char *err)
{
    sqlite3_stmt *st;
    const char *sql = has_planned(db) ? status_sql : status_sql_v1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return err_set(err, DS_EIO, "'%s' is not a divsim results database: %s", db_path,
                       sqlite3_errmsg(db));
    int rc = DS_OK, step;
    while (rc == DS_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *experiment = (const char *)sqlite3_column_text(st, 0);
        const char *agent_name = (const char *)sqlite3_column_text(st, 1);
        const char *config = (const char *)sqlite3_column_text(st, 2);
        int s = state_of((const char *)sqlite3_column_text(st, 3));
        rc = tally_add(by_experiment, "experiment", experiment, strlen(experiment), s);
        if (rc == DS_OK)
            rc = tally_add(by_agent, "agent", agent_name, strlen(agent_name), s);
        if (rc == DS_OK)
            rc = tally_config(by_key, experiment, config ? config : "", s);
    }
    if (rc == DS_OK && step != SQLITE_DONE)
        rc = err_set(err, DS_EIO, "reading '%s': %s", db_path, sqlite3_errmsg(db));
    else if (rc != DS_OK)
        rc = err_set(err, rc, "out of memory reading '%s'", db_path);
    sqlite3_finalize(st);
    return rc;
}

static void print_row(FILE *out, const char *label, const long *count)
{
    long planned = 0;
    for (int s = 0; s < N_STATES; s++)
        planned += count[s];
    fprintf(out, "  %-24s %7ld", label, planned);
    for (int s = 0; s < N_STATES; s++)
        fprintf(out, " %11ld", count[s]);
    fputc('\n', out);
}

static void print_header(FILE *out, const char *title)
{
    fprintf(out, "\nby %s:\n  %-24s %7s", title, "", "planned");
    for (int s = 0; s < N_STATES; s++)
        fprintf(out, " %11s", state_names[s]);
    fputc('\n', out);
}

/* A key is swept when its experiment has more than one value for it
 * (agent.kind is: the agent table shows it already). */
static int is_swept(const tallies *by_key, size_t i)
{
    if (strcmp(strchr(by_key->rows[i].group, '\t') + 1, "agent.kind") == 0)
        return 0;
    for (size_t j = 0; j < by_key->n; j++)
        if (j != i && strcmp(by_key->rows[j].group, by_key->rows[i].group) == 0)
            return 1;
    return 0;
}

static void print_swept(FILE *out, const tallies *by_key)
{
    for (size_t i = 0; i < by_key->n; i++) {
        const tally *row = &by_key->rows[i];
        if (!is_swept(by_key, i))
            continue;
        int first = 1; /* the header before the key's first row */
        for (size_t j = 0; j < i; j++)
            first &= strcmp(by_key->rows[j].group, row->group) != 0;
        if (first)
            print_header(out, strchr(row->group, '\t') + 1);
        print_row(out, row->value, row->count);
    }
}

int report_status(FILE *out, sqlite3 *db, const char *db_path, char *err)
{
    tallies by_experiment = {0}, by_agent = {0}, by_key = {0};
    int rc = collect(db, db_path, &by_experiment, &by_agent, &by_key, err);
    if (rc == DS_OK && by_experiment.n == 0)
        fprintf(out, "no runs in '%s'\n", db_path);
    if (rc == DS_OK && by_experiment.n > 0) {
        print_header(out, "experiment");
        for (size_t i = 0; i < by_experiment.n; i++)
            print_row(out, by_experiment.rows[i].value, by_experiment.rows[i].count);
        print_header(out, "agent");
        for (size_t i = 0; i < by_agent.n; i++)
            print_row(out, by_agent.rows[i].value, by_agent.rows[i].count);
        print_swept(out, &by_key);
    }
    tallies_free(&by_experiment);
    tallies_free(&by_agent);
    tallies_free(&by_key);
    return rc;
}
