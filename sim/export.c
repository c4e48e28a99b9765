/* `divsim export DB --table NAME [--where SQL] [--csv]`: one table or view of
 * a results database as RFC 4180 CSV (header row, CRLF line ends, NULL as an
 * empty field, reals that read back to the same double). */
#include "export.h"

#include "common.h"
#include "store.h"

#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* What may be exported, each in a stable order (its primary key). */
static const struct {
    const char *name;
    const char *order;
} exportable[] = {
    {"runs", "id"},
    {"params", "run_id, key"},
    {"episodes", "run_id, episode"},
    {"windows", "run_id, phase, window"},
    {"phases", "run_id, phase"},
    {"updates", "run_id, \"update\""},
    {"interactions", "run_id, seq"},
    {"planned", "run_id"},
    {"run_summary", "run_id, phase"},
    {"agent_summary", "experiment, env, agent, phase"},
    {"config_summary", "experiment, env, agent, config_hash, phase"},
};
enum { N_EXPORTABLE = sizeof exportable / sizeof exportable[0] };

typedef struct {
    const char *db_path;
    const char *table;
    const char *where;
} export_args;

void export_csv_field(FILE *out, const char *text)
{
    if (strpbrk(text, ",\"\r\n") == NULL) {
        fputs(text, out);
        return;
    }
    fputc('"', out);
    for (const char *p = text; *p; p++) {
        if (*p == '"')
            fputc('"', out);
        fputc(*p, out);
    }
    fputc('"', out);
}

void export_csv_real(FILE *out, double v)
{
    char text[40];
    if (!isfinite(v)) { /* SQLite stores NaN as NULL; infinities can occur */
        fputs(v > 0 ? "inf" : v < 0 ? "-inf" : "nan", out);
        return;
    }
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, v);
        if (strtod(text, NULL) == v)
            break;
    }
    fputs(text, out);
    if (strpbrk(text, ".e") == NULL)
        fputs(".0", out);
}

static int parse_args(int argc, char **argv, export_args *a, char *err)
{
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        int has_value = i + 1 < argc;
        if (strcmp(arg, "--csv") == 0)
            continue; /* the default and only format */
        if (strcmp(arg, "--table") == 0 && has_value)
            a->table = argv[++i];
        else if (strcmp(arg, "--where") == 0 && has_value)
            a->where = argv[++i];
        else if (arg[0] == '-')
            return err_set(err, DS_EINPUT, "export: unknown or incomplete option '%s'", arg);
        else if (a->db_path)
            return err_set(err, DS_EINPUT, "export: more than one database ('%s')", arg);
        else
            a->db_path = arg;
    }
    if (!a->db_path)
        return err_set(err, DS_EINPUT, "export: missing results DB");
    if (!a->table)
        return err_set(err, DS_EINPUT,
                       "export: missing --table (runs, params, episodes, windows, phases, "
                       "updates, planned, run_summary, agent_summary or config_summary)");
    if (a->where && strchr(a->where, ';'))
        return err_set(err, DS_EINPUT,
                       "export: --where '%s' holds ';': give one condition, not statements",
                       a->where);
    return DS_OK;
}

static const char *order_of(const char *table)
{
    for (size_t i = 0; i < N_EXPORTABLE; i++)
        if (strcmp(exportable[i].name, table) == 0)
            return exportable[i].order;
    return NULL;
}

static int open_database(const char *path, sqlite3 **db, char *err)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return err_set(err, DS_EINPUT, "'%s' is not a file", path);
    return store_open_readonly(path, db, err);
}

/* DS_OK when the database has the table or view, else why not. */
static int check_table(sqlite3 *db, const char *path, const char *table, char *err)
{
    sqlite3_stmt *st;
    const char *sql = "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
                      " AND name IN (?, 'runs')";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return err_set(err, DS_EINPUT, "'%s' is not a SQLite database: %s", path,
                       sqlite3_errmsg(db));
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    int has_table = 0, has_runs = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        has_table |= strcmp(name, table) == 0;
        has_runs |= strcmp(name, "runs") == 0;
    }
    int rc = DS_OK;
    if (step != SQLITE_DONE)
        rc = err_set(err, DS_EIO, "reading '%s': %s", path, sqlite3_errmsg(db));
    else if (!has_runs)
        rc = err_set(err, DS_EINPUT, "'%s' is not a divsim results database (no table 'runs')",
                     path);
    else if (!has_table)
        rc = err_set(err, DS_EINPUT, "'%s' has no table '%s' (an older schema?)", path, table);
    sqlite3_finalize(st);
    return rc;
}

static void write_value(FILE *out, sqlite3_stmt *st, int col)
{
    switch (sqlite3_column_type(st, col)) {
    case SQLITE_NULL: break;
    case SQLITE_INTEGER: fprintf(out, "%lld", (long long)sqlite3_column_int64(st, col)); break;
    case SQLITE_FLOAT: export_csv_real(out, sqlite3_column_double(st, col)); break;
    default: export_csv_field(out, (const char *)sqlite3_column_text(st, col)); break;
    }
}

static int write_csv(FILE *out, sqlite3_stmt *st, sqlite3 *db, const char *path, char *err)
{
    int n = sqlite3_column_count(st);
    for (int c = 0; c < n; c++) {
        if (c > 0)
            fputc(',', out);
        export_csv_field(out, sqlite3_column_name(st, c));
    }
    fputs("\r\n", out);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        for (int c = 0; c < n; c++) {
            if (c > 0)
                fputc(',', out);
            write_value(out, st, c);
        }
        fputs("\r\n", out);
    }
    if (step != SQLITE_DONE)
        return err_set(err, DS_EIO, "reading '%s': %s", path, sqlite3_errmsg(db));
    if (fflush(out) != 0 || ferror(out))
        return err_set(err, DS_EIO, "cannot write the CSV output");
    return DS_OK;
}

static int export_table(sqlite3 *db, const export_args *a, FILE *out, char *err)
{
    const char *order = order_of(a->table);
    if (!order)
        return err_set(err, DS_EINPUT, "export: unknown table '%s'", a->table);
    /* The condition goes on lines of its own so that a trailing -- comment in
     * it cannot swallow the ORDER BY. */
    size_t len = strlen(a->table) + strlen(order) + (a->where ? strlen(a->where) : 0) + 64;
    char *sql = malloc(len);
    if (!sql)
        return err_set(err, DS_ENOMEM, "out of memory exporting '%s'", a->table);
    if (a->where)
        snprintf(sql, len, "SELECT * FROM \"%s\" WHERE (\n%s\n) ORDER BY %s", a->table,
                 a->where, order);
    else
        snprintf(sql, len, "SELECT * FROM \"%s\" ORDER BY %s", a->table, order);
    sqlite3_stmt *st;
    const char *tail = NULL;
    int rc = DS_OK;
    if (sqlite3_prepare_v2(db, sql, -1, &st, &tail) != SQLITE_OK)
        rc = err_set(err, DS_EINPUT, "export: bad --where '%s': %s", a->where ? a->where : "",
                     sqlite3_errmsg(db));
    else if (tail && tail[strspn(tail, " \t\r\n")] != '\0')
        rc = err_set(err, DS_EINPUT, "export: --where '%s' is not one condition", a->where);
    else
        rc = write_csv(out, st, db, a->db_path, err);
    sqlite3_finalize(st);
    free(sql);
    return rc;
}

int export_command(int argc, char **argv, FILE *out, char *err)
{
    export_args a = {0};
    int rc = parse_args(argc, argv, &a, err);
    if (rc != DS_OK)
        return rc;
    if (!order_of(a.table))
        return err_set(err, DS_EINPUT,
                       "export: unknown table '%s': expected runs, params, episodes, windows, "
                       "phases, updates, planned, run_summary, agent_summary or "
                       "config_summary", a.table);
    sqlite3 *db = NULL;
    rc = open_database(a.db_path, &db, err);
    if (rc == DS_OK)
        rc = check_table(db, a.db_path, a.table, err);
    if (rc == DS_OK)
        rc = export_table(db, &a, out, err);
    sqlite3_close(db);
    return rc;
}
