#include "merge.h"

#include "common.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The tables holding a run's rows, copied for every merged run. */
static const char *const run_tables[] = {"params",  "episodes", "windows",
                                         "phases",  "updates",  "interactions"};

static int count_of(sqlite3 *db, const char *sql, long *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *out = (long)sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* The comma-separated columns main.table shares with src.table, into buf: a
 * database of an older schema lacks the columns added since, left NULL. */
static int columns_of(sqlite3 *db, const char *table, char *buf, size_t n)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT name FROM main.pragma_table_info('%s') WHERE name IN "
             "(SELECT name FROM src.pragma_table_info('%s'))", table, table);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    size_t used = 0;
    buf[0] = '\0';
    while (sqlite3_step(st) == SQLITE_ROW && used < n)
        used += (size_t)snprintf(buf + used, n - used, "%s\"%s\"", used ? "," : "",
                                 (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return used > 0 && used < n ? 0 : -1;
}

/* The first line of PRAGMA src.quick_check: "ok" for an undamaged file. */
static int check_damage(sqlite3 *db, const char *in_path, char *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA src.quick_check", -1, &st, NULL);
    const char *first = NULL;
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        first = (const char *)sqlite3_column_text(st, 0);
    if (first && strcmp(first, "ok") == 0)
        rc = DS_OK;
    else {
        char problem[160];
        snprintf(problem, sizeof problem, "%s", first ? first : sqlite3_errmsg(db));
        for (char *p = problem; *p; p++)
            *p = *p == '\n' ? ' ' : *p;
        rc = err_set(err, DS_EINPUT, "'%s' is damaged (%s): check it with sqlite3 '%s' "
                     "'PRAGMA integrity_check'", in_path, problem, in_path);
    }
    sqlite3_finalize(st);
    return rc;
}

/* in_path must be a divsim database no newer than ours, with a runs table. */
static int check_source(sqlite3 *db, const char *in_path, int *has_planned, char *err)
{
    long version, runs, planned;
    if (count_of(db, "PRAGMA src.user_version", &version) != SQLITE_OK ||
        count_of(db, "SELECT count(*) FROM src.sqlite_master WHERE type = 'table' "
                     "AND name = 'runs'", &runs) != SQLITE_OK ||
        count_of(db, "SELECT count(*) FROM src.sqlite_master WHERE type = 'table' "
                     "AND name = 'planned'", &planned) != SQLITE_OK)
        return err_set(err, DS_EINPUT, "'%s' is %s: %s", in_path,
                       (sqlite3_errcode(db) & 0xff) == SQLITE_CORRUPT
                           ? "damaged" : "not a divsim results database",
                       sqlite3_errmsg(db));
    if (version > STORE_SCHEMA_VERSION)
        return err_set(err, DS_EINPUT, "'%s' has schema version %ld, newer than this divsim "
                       "(%d); upgrade divsim", in_path, version, STORE_SCHEMA_VERSION);
    if (version < 1 || runs == 0)
        return err_set(err, DS_EINPUT, "'%s' is not a divsim results database", in_path);
    *has_planned = planned > 0;
    return check_damage(db, in_path, err);
}

/* The same run id must mean the same run on both sides. */
static int check_agreement(sqlite3 *db, const char *in_path, int has_planned, char *err)
{
    static const char *const sql =
        "SELECT s.id FROM src.runs s JOIN main.runs m ON m.id = s.id "
        "WHERE s.config <> m.config OR s.seed <> m.seed OR s.agent <> m.agent "
        "   OR s.env <> m.env OR s.experiment <> m.experiment "
        "UNION ALL "
        "SELECT s.run_id FROM src.planned s JOIN main.planned m ON m.run_id = s.run_id "
        "WHERE s.config <> m.config OR s.seed <> m.seed LIMIT 1";
    static const char *const sql_no_plan =
        "SELECT s.id FROM src.runs s JOIN main.runs m ON m.id = s.id "
        "WHERE s.config <> m.config OR s.seed <> m.seed OR s.agent <> m.agent "
        "   OR s.env <> m.env OR s.experiment <> m.experiment LIMIT 1";
    int rc = DS_OK;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, has_planned ? sql : sql_no_plan, -1, &st, NULL) != SQLITE_OK)
        return err_set(err, DS_EIO, "comparing '%s': %s", in_path, sqlite3_errmsg(db));
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        rc = err_set(err, DS_EINPUT, "refusing to merge '%s': run %016llx has a different "
                     "configuration there", in_path,
                     (unsigned long long)sqlite3_column_int64(st, 0));
    else if (step != SQLITE_DONE)
        rc = err_set(err, DS_EIO, "comparing '%s': %s", in_path, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}

/* Chooses the runs to copy (temp.incoming) and counts them. */
static int choose_runs(store *out, merge_counts *c, char *err)
{
    sqlite3 *db = store_db(out);
    int rc = store_exec(out,
                        "CREATE TEMP TABLE incoming AS SELECT s.id FROM src.runs s "
                        "LEFT JOIN main.runs m ON m.id = s.id "
                        "WHERE m.id IS NULL OR (m.status <> 'done' AND s.status = 'done')",
                        "choosing the runs to merge", err);
    long in_runs, incoming, replaced;
    if (rc == DS_OK &&
        (count_of(db, "SELECT count(*) FROM src.runs", &in_runs) != SQLITE_OK ||
         count_of(db, "SELECT count(*) FROM temp.incoming", &incoming) != SQLITE_OK ||
         count_of(db, "SELECT count(*) FROM temp.incoming JOIN main.runs USING(id)",
                  &replaced) != SQLITE_OK))
        rc = err_set(err, DS_EIO, "counting the runs to merge: %s", sqlite3_errmsg(db));
    if (rc == DS_OK) {
        c->added += (size_t)(incoming - replaced);
        c->replaced += (size_t)replaced;
        c->kept += (size_t)(in_runs - incoming);
    }
    return rc;
}

/* 1 if src has the table (older schemas lack the tables added since). */
static int src_has_table(sqlite3 *db, const char *table)
{
    char sql[160];
    long n = 0;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM src.sqlite_master WHERE type = 'table' "
             "AND name = '%s'", table);
    return count_of(db, sql, &n) == SQLITE_OK && n > 0;
}

/* Copies the chosen runs and their rows, replacing unfinished copies. */
static int copy_runs(store *out, int has_planned, char *err)
{
    sqlite3 *db = store_db(out);
    int rc = store_exec(out, "DELETE FROM main.runs WHERE id IN (SELECT id FROM temp.incoming)",
                        "replacing unfinished runs", err);
    const char *tables[1 + sizeof run_tables / sizeof *run_tables] = {"runs"};
    for (size_t i = 0; i < sizeof run_tables / sizeof *run_tables; i++)
        tables[i + 1] = run_tables[i];
    for (size_t i = 0; rc == DS_OK && i < sizeof tables / sizeof *tables; i++) {
        char cols[2048], sql[4400];
        if (!src_has_table(db, tables[i]))
            continue;
        if (columns_of(db, tables[i], cols, sizeof cols) != 0)
            return err_set(err, DS_EIO, "reading the columns of '%s'", tables[i]);
        snprintf(sql, sizeof sql, "INSERT INTO main.%s(%s) SELECT %s FROM src.%s WHERE %s IN "
                 "(SELECT id FROM temp.incoming)", tables[i], cols, cols, tables[i],
                 i == 0 ? "id" : "run_id");
        rc = store_exec(out, sql, "copying runs", err);
    }
    if (rc == DS_OK && has_planned)
        rc = store_exec(out, "INSERT OR IGNORE INTO main.planned SELECT * FROM src.planned",
                        "copying the plan", err);
    return rc;
}

/* One transaction: check, choose, copy. */
static int merge_attached(store *out, const char *in_path, merge_counts *c, char *err)
{
    int rc = store_exec(out, "BEGIN IMMEDIATE", "merging", err);
    if (rc != DS_OK)
        return rc;
    int has_planned = 0;
    merge_counts mine = {0};
    rc = check_source(store_db(out), in_path, &has_planned, err);
    if (rc == DS_OK)
        rc = check_agreement(store_db(out), in_path, has_planned, err);
    if (rc == DS_OK)
        rc = choose_runs(out, &mine, err);
    if (rc == DS_OK)
        rc = copy_runs(out, has_planned, err);
    if (rc == DS_OK)
        rc = store_exec(out, "COMMIT", "merging", err);
    if (rc != DS_OK) {
        store_rollback(out, err);
        return rc;
    }
    c->added += mine.added;
    c->replaced += mine.replaced;
    c->kept += mine.kept;
    return DS_OK;
}

int merge_database(store *out, const char *in_path, merge_counts *c, char *err)
{
    struct stat st;
    if (stat(in_path, &st) != 0 || !S_ISREG(st.st_mode))
        return err_set(err, DS_EINPUT, "cannot read '%s': not a file", in_path);
    sqlite3 *db = store_db(out);
    char *sql = sqlite3_mprintf("ATTACH %Q AS src", in_path);
    if (!sql)
        return err_set(err, DS_ENOMEM, "out of memory");
    int rc = store_exec(out, sql, "opening the database to merge", err);
    sqlite3_free(sql);
    if (rc != DS_OK)
        return err_set(err, DS_EINPUT, "cannot read '%s': %s", in_path, sqlite3_errmsg(db));
    rc = merge_attached(out, in_path, c, err);
    sqlite3_exec(db, "DROP TABLE IF EXISTS temp.incoming", NULL, NULL, NULL);
    sqlite3_exec(db, "DETACH src", NULL, NULL, NULL);
    return rc;
}
