/* The SQLite results store: schema, open/validate, and the per-run writes.
 *
 * A run is written twice: store_run_start() records it as running (replacing
 * any earlier attempt of the same id), and store_run_finish() writes all its
 * rows and its final status in one transaction. A reader therefore never sees
 * a "done" run with missing rows, and a killed sweep leaves only "running"
 * rows behind, which the next attempt replaces. */
#include "store.h"

#include "common.h"
#include "version.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* The tables and their columns are a public contract: users' SQL depends on
 * them. Add columns, never rename. The comments inside CREATE statements are
 * kept by SQLite, so `.schema` shows them. One table or view per string (ISO C
 * caps string literals at 4095 bytes). */
/* Added in schema version 2: the runs each `divsim run` set out to do. */
#define PLANNED_TABLE_SQL \
    "CREATE TABLE planned(\n" \
    "  run_id INTEGER PRIMARY KEY,      -- as runs.id\n" \
    "  experiment TEXT NOT NULL,\n" \
    "  agent TEXT NOT NULL,\n" \
    "  env TEXT NOT NULL,\n" \
    "  seed INTEGER NOT NULL,\n" \
    "  config TEXT NOT NULL,            -- as runs.config\n" \
    "  config_hash TEXT NOT NULL\n" \
    ");\n"

/* Added in schema version 2: the learning rate and speed of each update. */
#define ADD_LEARNING_RATE_SQL "ALTER TABLE updates ADD COLUMN learning_rate REAL"
#define ADD_STEPS_PER_SECOND_SQL "ALTER TABLE updates ADD COLUMN steps_per_second REAL"
#define UPDATES_V2_SQL \
    ADD_LEARNING_RATE_SQL ";\n" \
    ADD_STEPS_PER_SECOND_SQL "; -- env steps per wall second\n"

/* Added in schema version 3: the interaction log of runs with
 * log_interactions (sim/run.h, interaction_row). */
#define INTERACTIONS_TABLE_SQL \
    "CREATE TABLE interactions(\n" \
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n" \
    "  seq INTEGER NOT NULL,            -- 0, 1, ... in the order the engine recorded them\n" \
    "  kind TEXT NOT NULL CHECK(kind IN ('step','late_purchase')),\n" \
    "  phase TEXT NOT NULL CHECK(phase IN ('train','eval')),\n" \
    "  episode INTEGER NOT NULL,\n" \
    "  user_id INTEGER NOT NULL,\n" \
    "  step INTEGER NOT NULL,           -- of the slate, or that the late purchase belongs to\n" \
    "  time REAL,                       -- simulated hours: shown, or the purchase arrived\n" \
    "  slate TEXT,                      -- item ids in slate order, space-separated; NULL\n" \
    "                                   -- for a late purchase\n" \
    "  click_pos INTEGER,               -- 0-based position clicked; NULL: no click\n" \
    "  item INTEGER,                    -- item clicked (or bought late); NULL: none\n" \
    "  purchased INTEGER NOT NULL,      -- step: bought at once; late purchase: 1\n" \
    "  logp REAL,                       -- the behaviour policy's log-probability of the\n" \
    "                                   -- ordered slate; NULL: unknown\n" \
    "  PRIMARY KEY(run_id, seq)\n" \
    ") WITHOUT ROWID;\n"

static const char *const schema_sql[] = {
    "CREATE TABLE runs(\n"
    "  id INTEGER PRIMARY KEY,          -- hash of the configuration and the seed\n"
    "  experiment TEXT NOT NULL,\n"
    "  agent TEXT NOT NULL,\n"
    "  env TEXT NOT NULL,\n"
    "  seed INTEGER NOT NULL,\n"
    "  status TEXT NOT NULL\n"
    "    CHECK(status IN ('done','failed','diverged','interrupted','running')),\n"
    "  message TEXT,                    -- why the run failed, if it did\n"
    "  config TEXT NOT NULL,            -- 'key = value' lines: every key but the seed\n"
    "  config_hash TEXT NOT NULL,       -- 16 hex digits, equal for runs differing only in seed\n"
    "  version TEXT,\n"
    "  build TEXT,\n"
    "  host TEXT,\n"
    "  started_at TEXT,                 -- ISO-8601 UTC\n"
    "  finished_at TEXT,                -- ISO-8601 UTC\n"
    "  wall_seconds REAL,\n"
    "  sim_hours REAL,                  -- simulated hours at the end\n"
    "  steps INTEGER                    -- environment steps\n"
    ");\n"
    "CREATE INDEX runs_by_experiment ON runs(experiment, agent);\n",

    "CREATE TABLE params(\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  key TEXT NOT NULL,               -- 'section.key', every expanded key\n"
    "  value TEXT,\n"
    "  PRIMARY KEY(run_id, key)\n"
    ") WITHOUT ROWID;\n"
    "CREATE INDEX params_by_key ON params(key, value);\n",

    "CREATE TABLE episodes(\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  episode INTEGER NOT NULL,\n"
    "  phase TEXT NOT NULL CHECK(phase IN ('train','eval')),\n"
    "  user_id INTEGER,\n"
    "  start_time REAL,                 -- simulated hours\n"
    "  end_time REAL,\n"
    "  length INTEGER,                  -- steps (slates shown)\n"
    "  reward REAL,                     -- unshaped, of the run's reward kind\n"
    "  shaped_reward REAL,              -- what learning agents were given\n"
    "  clicks INTEGER,\n"
    "  purchases INTEGER,\n"
    "  revenue REAL,\n"
    "  ctr REAL,                        -- clicks / length\n"
    "  purchases_per_1000 REAL,         -- 1000 purchases / (length * slate)\n"
    "  ild REAL,\n"
    "  topic_ild REAL,\n"
    "  topic_entropy REAL,              -- nats\n"
    "  novelty REAL,                    -- mean -log2 popularity\n"
    "  repeat_rate REAL,\n"
    "  churned INTEGER,\n"
    "  PRIMARY KEY(run_id, episode)\n"
    ") WITHOUT ROWID;\n",

    "CREATE TABLE windows(\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  window INTEGER NOT NULL,         -- 0-based within its phase\n"
    "  phase TEXT NOT NULL CHECK(phase IN ('train','eval')),\n"
    "  episodes INTEGER,\n"
    "  sim_time REAL,                   -- when the window closed, hours\n"
    "  coverage REAL,\n"
    "  gini REAL,\n"
    "  exposure_entropy REAL,           -- nats\n"
    "  exposure_entropy_norm REAL,      -- divided by ln(items)\n"
    "  retention REAL,\n"
    "  churn_rate REAL,\n"
    "  reward REAL,                     -- mean unshaped reward per episode\n"
    "  ild REAL,\n"
    "  PRIMARY KEY(run_id, phase, window)\n"
    ") WITHOUT ROWID;\n",

    "CREATE TABLE phases(\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  phase TEXT NOT NULL CHECK(phase IN ('train','eval')),\n"
    "  episodes INTEGER,\n"
    "  sim_time REAL,\n"
    "  coverage REAL,\n"
    "  gini REAL,\n"
    "  exposure_entropy REAL,\n"
    "  exposure_entropy_norm REAL,\n"
    "  retention REAL,\n"
    "  churn_rate REAL,\n"
    "  reward REAL,\n"
    "  ild REAL,\n"
    "  PRIMARY KEY(run_id, phase)\n"
    ") WITHOUT ROWID;\n",

    "CREATE TABLE updates(\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  \"update\" INTEGER NOT NULL,\n"
    "  time REAL,                       -- simulated hours; NULL = not reported\n"
    "  policy_loss REAL,\n"
    "  value_loss REAL,\n"
    "  entropy REAL,\n"
    "  approx_kl REAL,\n"
    "  clip_fraction REAL,\n"
    "  explained_variance REAL,\n"
    "  grad_norm REAL,\n"
    "  PRIMARY KEY(run_id, \"update\")\n"
    ") WITHOUT ROWID;\n",
    UPDATES_V2_SQL,

    "CREATE VIEW run_summary AS\n"
    "  -- One row per run and phase: the means over the run's episodes of that\n"
    "  -- phase, and the exposure metrics of the whole phase (from phases).\n"
    "  SELECT r.id AS run_id, r.experiment, r.agent, r.env, r.seed, r.config_hash,\n"
    "         r.status, e.phase, e.episodes,\n"
    "         e.mean_reward, e.mean_purchases, e.mean_clicks, e.mean_revenue,\n"
    "         e.mean_purchases_per_1000, e.mean_ild, e.mean_topic_entropy,\n"
    "         e.mean_novelty,\n"
    "         p.coverage, p.gini, p.exposure_entropy, p.exposure_entropy_norm,\n"
    "         p.retention\n"
    "  FROM runs AS r\n"
    "  JOIN (SELECT run_id, phase, count(*) AS episodes,\n"
    "               avg(reward) AS mean_reward, avg(purchases) AS mean_purchases,\n"
    "               avg(clicks) AS mean_clicks, avg(revenue) AS mean_revenue,\n"
    "               avg(purchases_per_1000) AS mean_purchases_per_1000,\n"
    "               avg(ild) AS mean_ild, avg(topic_entropy) AS mean_topic_entropy,\n"
    "               avg(novelty) AS mean_novelty\n"
    "        FROM episodes GROUP BY run_id, phase) AS e ON e.run_id = r.id\n"
    "  LEFT JOIN phases AS p ON p.run_id = e.run_id AND p.phase = e.phase;\n",

    "CREATE VIEW agent_summary AS\n"
    "  -- One row per experiment, environment, agent and phase, over the runs in\n"
    "  -- status done only: n_runs, and the mean over runs of each per-run mean\n"
    "  -- of run_summary (each run counts once, whatever its episode count).\n"
    "  -- Runs of a sweep with different settings are pooled; see config_summary.\n"
    "  SELECT experiment, env, agent, phase, count(*) AS n_runs,\n"
    "         avg(mean_reward) AS mean_reward, avg(mean_purchases) AS mean_purchases,\n"
    "         avg(mean_clicks) AS mean_clicks, avg(mean_revenue) AS mean_revenue,\n"
    "         avg(mean_purchases_per_1000) AS mean_purchases_per_1000,\n"
    "         avg(mean_ild) AS mean_ild, avg(mean_topic_entropy) AS mean_topic_entropy,\n"
    "         avg(mean_novelty) AS mean_novelty,\n"
    "         avg(coverage) AS coverage, avg(gini) AS gini,\n"
    "         avg(exposure_entropy) AS exposure_entropy\n"
    "  FROM run_summary WHERE status = 'done'\n"
    "  GROUP BY experiment, env, agent, phase;\n",

    PLANNED_TABLE_SQL,

    "CREATE VIEW config_summary AS\n"
    "  -- As agent_summary, but one row per configuration (config_hash): the runs\n"
    "  -- pooled are the seeds of one point of a sweep.\n"
    "  SELECT experiment, env, agent, config_hash, phase, count(*) AS n_runs,\n"
    "         avg(mean_reward) AS mean_reward, avg(mean_purchases) AS mean_purchases,\n"
    "         avg(mean_clicks) AS mean_clicks, avg(mean_revenue) AS mean_revenue,\n"
    "         avg(mean_purchases_per_1000) AS mean_purchases_per_1000,\n"
    "         avg(mean_ild) AS mean_ild, avg(mean_topic_entropy) AS mean_topic_entropy,\n"
    "         avg(mean_novelty) AS mean_novelty,\n"
    "         avg(coverage) AS coverage, avg(gini) AS gini,\n"
    "         avg(exposure_entropy) AS exposure_entropy\n"
    "  FROM run_summary WHERE status = 'done'\n"
    "  GROUP BY experiment, env, agent, config_hash, phase;\n",

    INTERACTIONS_TABLE_SQL,
};

/* migrations[v] takes a database from schema version v to v + 1. Columns
 * added to an existing table are listed in added_columns instead, and added
 * wherever they are missing: version 2 first shipped without the two updates
 * columns, so a version number alone does not tell whether they are there. */
static const char *const migrations[STORE_SCHEMA_VERSION] = {
    [1] = PLANNED_TABLE_SQL,
    [2] = INTERACTIONS_TABLE_SQL,
};

static const struct {
    const char *table, *column, *sql;
} added_columns[] = {
    {"updates", "learning_rate", ADD_LEARNING_RATE_SQL},
    {"updates", "steps_per_second", ADD_STEPS_PER_SECOND_SQL},
};

static const char *const store_tables[] = {
    "runs", "params", "episodes", "windows", "phases", "updates"
};

#define ISO_NOW "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"

enum {
    ST_RUN_DELETE,
    ST_RUN_INSERT,
    ST_RUN_FINISH,
    ST_RUN_STATUS,
    ST_PLAN,
    ST_PARAM,
    ST_EPISODE,
    ST_WINDOW,
    ST_PHASE,
    ST_UPDATE,
    ST_INTERACTION,
    ST_COUNT
};

static const char *const statement_sql[ST_COUNT] = {
    [ST_RUN_DELETE] = "DELETE FROM runs WHERE id = ?",
    [ST_RUN_INSERT] =
        "INSERT INTO runs(id, experiment, agent, env, seed, status, config,"
        " config_hash, version, build, host, started_at)"
        " VALUES(?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, " ISO_NOW ")",
    [ST_RUN_FINISH] =
        "UPDATE runs SET status = ?, message = ?, finished_at = " ISO_NOW ","
        " wall_seconds = ?, sim_hours = ?, steps = ? WHERE id = ?",
    [ST_RUN_STATUS] = "SELECT status FROM runs WHERE id = ?",
    [ST_PLAN] =
        "INSERT OR IGNORE INTO planned(run_id, experiment, agent, env, seed, config,"
        " config_hash) VALUES(?, ?, ?, ?, ?, ?, ?)",
    [ST_PARAM] = "INSERT INTO params(run_id, key, value) VALUES(?, ?, ?)",
    [ST_EPISODE] =
        "INSERT INTO episodes(run_id, episode, phase, user_id, start_time, end_time,"
        " length, reward, shaped_reward, clicks, purchases, revenue, ctr,"
        " purchases_per_1000, ild, topic_ild, topic_entropy, novelty, repeat_rate,"
        " churned) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [ST_WINDOW] =
        "INSERT INTO windows(run_id, window, phase, episodes, sim_time, coverage, gini,"
        " exposure_entropy, exposure_entropy_norm, retention, churn_rate, reward, ild)"
        " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [ST_PHASE] =
        "INSERT INTO phases(run_id, phase, episodes, sim_time, coverage, gini,"
        " exposure_entropy, exposure_entropy_norm, retention, churn_rate, reward, ild)"
        " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [ST_UPDATE] =
        "INSERT INTO updates(run_id, \"update\", time, policy_loss, value_loss, entropy,"
        " approx_kl, clip_fraction, explained_variance, grad_norm, learning_rate,"
        " steps_per_second) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [ST_INTERACTION] =
        "INSERT INTO interactions(run_id, seq, kind, phase, episode, user_id, step, time,"
        " slate, click_pos, item, purchased, logp)"
        " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
};

struct store {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmt[ST_COUNT];
};

/* ---- errors ---- */

/* How long a writer waits for another process's lock before giving up. */
#define BUSY_TIMEOUT_MS 10000

/* SQLite's result class: damaged files are input errors, like foreign ones. */
static int code_of(sqlite3 *db)
{
    switch (sqlite3_errcode(db) & 0xff) {
    case SQLITE_NOMEM: return DS_ENOMEM;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return DS_EINPUT;
    default: return DS_EIO;
    }
}

/* The directory part of path ("." for a bare name), into dir[n]. */
static void dir_of(const char *path, char *dir, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, n, ".");
    else if (slash == path)
        snprintf(dir, n, "/");
    else
        snprintf(dir, n, "%.*s", (int)(slash - path), path);
}

/* Whether PATH-wal and PATH-shm exist and are writable. */
static int wal_files_writable(const char *path)
{
    char name[4200];
    snprintf(name, sizeof name, "%s-wal", path);
    if (access(name, W_OK) != 0)
        return 0;
    snprintf(name, sizeof name, "%s-shm", path);
    return access(name, W_OK) == 0;
}

/* Why the database at path cannot be written, or NULL if no reason is visible:
 * SQLite opens a read-only file silently and fails at the first write, and in
 * WAL mode it must also create PATH-wal and PATH-shm next to the file. */
static const char *access_problem(const char *path, char *buf, size_t n)
{
    char dir[4096];
    struct stat st;
    dir_of(path, dir, sizeof dir);
    if (stat(path, &st) == 0) {
        int dir_errno = access(dir, W_OK) != 0 ? errno : 0;
        if (S_ISDIR(st.st_mode))
            snprintf(buf, n, "it is a directory");
        else if (!S_ISREG(st.st_mode))
            snprintf(buf, n, "it is not a regular file");
        else if (access(path, W_OK) != 0)
            snprintf(buf, n, "the file is read-only (%s)", strerror(errno));
        else if (dir_errno && !wal_files_writable(path))
            snprintf(buf, n, "its directory '%.256s' is not writable (%s), and SQLite must "
                     "create the -wal and -shm files there", dir, strerror(dir_errno));
        else
            return NULL;
        return buf;
    }
    if (errno != ENOENT)
        snprintf(buf, n, "%s", strerror(errno));
    else if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        snprintf(buf, n, "there is no directory '%.256s'", dir);
    else if (access(dir, W_OK) != 0)
        snprintf(buf, n, "its directory '%.256s' is not writable (%s)", dir, strerror(errno));
    else
        return NULL;
    return buf;
}

/* Why a write failed, as far as can be seen: SQLite's system errno is often
 * lost by then, so the device's free space and the file size limit are looked
 * at directly. */
static void write_failure(const char *path, int sys, char *buf, size_t n)
{
    char dir[4096];
    struct statvfs fs;
    struct rlimit rl;
    dir_of(path, dir, sizeof dir);
    if (sys == ENOSPC || (statvfs(dir, &fs) == 0 && fs.f_bavail == 0))
        snprintf(buf, n, " (no space left on the device of '%.256s'; the finished runs are "
                 "kept)", dir);
    else if (sys == EFBIG ||
             (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY))
        snprintf(buf, n, " (a file reached the file size limit, ulimit -f; the finished runs "
                 "are kept)");
    else if (sys)
        snprintf(buf, n, " (%s)", strerror(sys));
}

/* What SQLite's last error means for the user, appended to its message. */
static const char *explain(sqlite3 *db, const char *path, char *buf, size_t n)
{
    char why[1024];
    int sys = sqlite3_system_errno(db);
    buf[0] = '\0';
    switch (sqlite3_errcode(db) & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        snprintf(buf, n, " (another process kept it locked for more than %d s)",
                 BUSY_TIMEOUT_MS / 1000);
        break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        snprintf(buf, n, "; the file is damaged: check it with sqlite3 '%s' 'PRAGMA "
                 "integrity_check', and restore it from a copy or write to a new database",
                 path);
        break;
    case SQLITE_FULL:
    case SQLITE_IOERR:
        write_failure(path, sys, buf, n);
        break;
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
        if (access_problem(path, why, sizeof why))
            snprintf(buf, n, " (%.400s)", why);
        break;
    }
    return buf;
}

/* "database 'PATH': WHAT: sqlite's message (what it means)", returning the
 * code of the error class. */
static int db_fail(sqlite3 *db, const char *path, char *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int db_fail(sqlite3 *db, const char *path, char *err, const char *fmt, ...)
{
    char what[256], why[ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return err_set(err, code_of(db), "database '%s': %s: %s%s", path, what,
                   sqlite3_errmsg(db), explain(db, path, why, sizeof why));
}

/* ---- statements ---- */

/* Binds consecutive parameters; the first failure sticks in rc. */
typedef struct {
    sqlite3_stmt *stmt;
    int col;
    int rc;
} binder;

static binder bind_start(sqlite3_stmt *stmt)
{
    return (binder){ .stmt = stmt, .col = 0, .rc = SQLITE_OK };
}

static void bind_int(binder *b, int64_t v)
{
    if (b->rc == SQLITE_OK)
        b->rc = sqlite3_bind_int64(b->stmt, ++b->col, v);
}

/* NAN means "not reported" and is stored as NULL. */
static void bind_real(binder *b, double v)
{
    if (b->rc != SQLITE_OK)
        return;
    b->col++;
    b->rc = isnan(v) ? sqlite3_bind_null(b->stmt, b->col)
                     : sqlite3_bind_double(b->stmt, b->col, v);
}

/* A NULL pointer is stored as NULL. */
static void bind_text(binder *b, const char *v)
{
    if (b->rc != SQLITE_OK)
        return;
    b->col++;
    b->rc = v ? sqlite3_bind_text(b->stmt, b->col, v, -1, SQLITE_TRANSIENT)
              : sqlite3_bind_null(b->stmt, b->col);
}

/* Steps a statement that returns no rows and resets it for reuse. */
static int bind_step(binder *b)
{
    if (b->rc != SQLITE_OK)
        return b->rc;
    int rc = sqlite3_step(b->stmt);
    /* After a failed step, reset repeats the same error: rc already has it. */
    sqlite3_reset(b->stmt);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* ---- transactions ---- */

static int exec_sql(store *s, const char *sql, const char *what, char *err)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(s->db, s->path, err, "%s", what);
    return DS_OK;
}

/* Undoes the open transaction after a failure already described in err; a
 * failing rollback is appended to that message. */
static void rollback(store *s, char *err)
{
    if (sqlite3_get_autocommit(s->db))
        return;  /* SQLite already rolled back (e.g. after SQLITE_FULL) */
    if (sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK && err) {
        size_t used = strlen(err);
        snprintf(err + used, ERR_LEN - used, " (and rollback failed: %s)",
                 sqlite3_errmsg(s->db));
    }
}

static int commit(store *s, const char *what, char *err)
{
    int rc = exec_sql(s, "COMMIT", what, err);
    if (rc != DS_OK)
        rollback(s, err);
    return rc;
}

/* ---- open ---- */

/* What is in the file before we touch it. */
typedef struct {
    int user_version;
    int objects;            /* rows of sqlite_master */
    const char *missing;    /* first table of ours that is absent, or NULL */
    int missing_columns;    /* of added_columns */
} db_state;

static int query_int(sqlite3 *db, const char *sql, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int(st, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static int read_state(store *s, db_state *state, char *err)
{
    const char *what = "reading the schema";
    if (query_int(s->db, "PRAGMA user_version", &state->user_version) != SQLITE_OK) {
        if ((sqlite3_errcode(s->db) & 0xff) == SQLITE_NOTADB)
            return err_set(err, DS_EINPUT, "'%s' is not an sqlite database (%s)", s->path,
                           sqlite3_errmsg(s->db));
        return db_fail(s->db, s->path, err, "%s", what);
    }
    if (query_int(s->db, "SELECT count(*) FROM sqlite_master", &state->objects) != SQLITE_OK)
        return db_fail(s->db, s->path, err, "%s", what);
    state->missing = NULL;
    for (size_t i = 0; i < sizeof store_tables / sizeof *store_tables; i++) {
        char sql[128];
        int n = 0;
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'",
                 store_tables[i]);
        if (query_int(s->db, sql, &n) != SQLITE_OK)
            return db_fail(s->db, s->path, err, "%s", what);
        if (n == 0) {
            state->missing = store_tables[i];
            return DS_OK;
        }
    }
    state->missing_columns = 0;
    for (size_t i = 0; i < sizeof added_columns / sizeof *added_columns; i++) {
        char sql[160];
        int n = 0;
        snprintf(sql, sizeof sql, "SELECT count(*) FROM pragma_table_info('%s') WHERE name = "
                 "'%s'", added_columns[i].table, added_columns[i].column);
        if (query_int(s->db, sql, &n) != SQLITE_OK)
            return db_fail(s->db, s->path, err, "%s", what);
        state->missing_columns += n == 0;
    }
    return DS_OK;
}

/* Refuses a database that is newer than this program or not one of ours. */
static int check_state(const store *s, const db_state *state, char *err)
{
    if (state->user_version > STORE_SCHEMA_VERSION)
        return err_set(err, DS_EINPUT,
                       "database '%s' has schema version %d, newer than this divsim (%d); "
                       "upgrade divsim", s->path, state->user_version, STORE_SCHEMA_VERSION);
    if (state->objects == 0)
        return DS_OK;  /* new: the schema will be created */
    if (state->user_version == 0)
        return err_set(err, DS_EINPUT,
                       "database '%s' is not a divsim results database (no schema version)",
                       s->path);
    if (state->missing)
        return err_set(err, DS_EINPUT,
                       "database '%s' is not a divsim results database (no table '%s')",
                       s->path, state->missing);
    return DS_OK;
}

static int set_schema_version(store *s, char *err)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
    return exec_sql(s, sql, "setting the schema version", err);
}

/* Creates the schema in a fresh database. The check is repeated inside the
 * write transaction in case another process created it meanwhile. */
static int create_schema(store *s, char *err)
{
    int rc = exec_sql(s, "BEGIN IMMEDIATE", "creating the schema", err);
    if (rc != DS_OK)
        return rc;
    db_state state;
    rc = read_state(s, &state, err);
    if (rc == DS_OK)
        rc = check_state(s, &state, err);
    if (rc == DS_OK && state.objects == 0) {
        for (size_t i = 0; rc == DS_OK && i < sizeof schema_sql / sizeof *schema_sql; i++)
            rc = exec_sql(s, schema_sql[i], "creating the schema", err);
        if (rc == DS_OK)
            rc = set_schema_version(s, err);
    }
    if (rc != DS_OK) {
        rollback(s, err);
        return rc;
    }
    return commit(s, "creating the schema", err);
}

/* Brings an older database up to this schema, one version at a time, in one
 * transaction (repeating the check inside it, as create_schema does). */
static int migrate(store *s, char *err)
{
    int rc = exec_sql(s, "BEGIN IMMEDIATE", "upgrading the schema", err);
    if (rc != DS_OK)
        return rc;
    db_state state;
    rc = read_state(s, &state, err);
    if (rc == DS_OK)
        rc = check_state(s, &state, err);
    for (int v = state.user_version; rc == DS_OK && v < STORE_SCHEMA_VERSION; v++)
        if (migrations[v])
            rc = exec_sql(s, migrations[v], "upgrading the schema", err);
    for (size_t i = 0; rc == DS_OK && i < sizeof added_columns / sizeof *added_columns; i++) {
        char sql[160];
        int n = 0;
        snprintf(sql, sizeof sql, "SELECT count(*) FROM pragma_table_info('%s') WHERE name = "
                 "'%s'", added_columns[i].table, added_columns[i].column);
        if (query_int(s->db, sql, &n) != SQLITE_OK)
            rc = db_fail(s->db, s->path, err, "upgrading the schema");
        else if (n == 0)
            rc = exec_sql(s, added_columns[i].sql, "upgrading the schema", err);
    }
    if (rc == DS_OK && state.user_version < STORE_SCHEMA_VERSION)
        rc = set_schema_version(s, err);
    if (rc != DS_OK) {
        rollback(s, err);
        return rc;
    }
    return commit(s, "upgrading the schema", err);
}

static int configure(store *s, char *err)
{
    /* foreign_keys must be on for ON DELETE CASCADE; it is per connection. */
    static const char *const pragmas[] = {
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA foreign_keys = ON",
    };
    for (size_t i = 0; i < sizeof pragmas / sizeof *pragmas; i++) {
        int rc = exec_sql(s, pragmas[i], pragmas[i], err);
        if (rc != DS_OK)
            return rc;
    }
    return DS_OK;
}

static int prepare_statements(store *s, char *err)
{
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(s->db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &s->stmt[i], NULL) != SQLITE_OK)
            return db_fail(s->db, s->path, err, "preparing '%.60s...'", statement_sql[i]);
    }
    return DS_OK;
}

int store_open(const char *path, store **out, char *err)
{
    *out = NULL;
    if (!path || !*path)
        return err_set(err, DS_EINPUT, "no database path given");
    store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return err_set(err, DS_ENOMEM, "out of memory opening database '%s'", path);
    }
    int rc;
    char why[1024];
    if (access_problem(path, why, sizeof why)) {
        rc = err_set(err, DS_EINPUT, "database '%s' cannot be written: %s", path, why);
        store_close(s);
        return rc;
    }
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL)
        != SQLITE_OK) {
        rc = s->db ? db_fail(s->db, path, err, "opening")
                   : err_set(err, DS_ENOMEM, "out of memory opening database '%s'", path);
        store_close(s);
        return rc;
    }
    if (sqlite3_extended_result_codes(s->db, 1) != SQLITE_OK
        || sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS) != SQLITE_OK) {
        rc = db_fail(s->db, path, err, "opening");
        store_close(s);
        return rc;
    }
    if (sqlite3_db_readonly(s->db, "main") == 1) { /* opened read-only, silently */
        rc = err_set(err, DS_EINPUT, "database '%s' cannot be written: the file is read-only",
                     path);
        store_close(s);
        return rc;
    }
    /* Look before writing anything: a foreign or newer file stays untouched. */
    db_state state;
    rc = read_state(s, &state, err);
    if (rc == DS_OK)
        rc = check_state(s, &state, err);
    if (rc == DS_OK)
        rc = configure(s, err);
    if (rc == DS_OK && state.objects == 0)
        rc = create_schema(s, err);
    else if (rc == DS_OK &&
             (state.user_version < STORE_SCHEMA_VERSION || state.missing_columns > 0))
        rc = migrate(s, err);
    if (rc == DS_OK)
        rc = prepare_statements(s, err);
    if (rc != DS_OK) {
        store_close(s);
        return rc;
    }
    *out = s;
    return DS_OK;
}

int store_check(store *s, char *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK)
        return db_fail(s->db, s->path, err, "checking the file");
    int code = DS_OK;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *first = (const char *)sqlite3_column_text(st, 0);
        if (!first || strcmp(first, "ok") != 0) {
            char problem[160];
            snprintf(problem, sizeof problem, "%s", first ? first : "no answer");
            for (char *p = problem; *p; p++)
                *p = *p == '\n' ? ' ' : *p;
            code = err_set(err, DS_EINPUT, "database '%s' is damaged (%s): check it with "
                           "sqlite3 '%s' 'PRAGMA integrity_check', and restore it from a "
                           "copy or write to a new database", s->path, problem, s->path);
        }
    } else {
        code = db_fail(s->db, s->path, err, "checking the file");
    }
    sqlite3_finalize(st);
    return code;
}

void store_close(store *s)
{
    if (!s)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    /* With every statement finalized, close cannot be busy. */
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

struct sqlite3 *store_db(store *s)
{
    return s ? s->db : NULL;
}

int store_exec(store *s, const char *sql, const char *what, char *err)
{
    return exec_sql(s, sql, what, err);
}

void store_rollback(store *s, char *err)
{
    rollback(s, err);
}

/* ---- reads ---- */

int store_run_status(store *s, int64_t run_id, char *status, char *err)
{
    sqlite3_stmt *st = s->stmt[ST_RUN_STATUS];
    status[0] = '\0';
    if (sqlite3_bind_int64(st, 1, run_id) != SQLITE_OK)
        return db_fail(s->db, s->path, err, "reading the status of run %" PRId64, run_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *text = sqlite3_column_text(st, 0);
        if (text)
            snprintf(status, 16, "%s", (const char *)text);
        rc = sqlite3_step(st);  /* id is the primary key: at most one row */
    }
    int code = DS_OK;
    if (rc != SQLITE_DONE)
        code = db_fail(s->db, s->path, err, "reading the status of run %" PRId64, run_id);
    sqlite3_reset(st);
    return code;
}

/* ---- run start ---- */

static int insert_run_row(store *s, const run_spec *r)
{
    char hash[17];
    char host[256] = "";
    snprintf(hash, sizeof hash, "%016" PRIx64, r->config_hash);
    if (gethostname(host, sizeof host) != 0)
        host[0] = '\0';
    host[sizeof host - 1] = '\0';  /* gethostname may truncate without a NUL */

    binder b = bind_start(s->stmt[ST_RUN_INSERT]);
    bind_int(&b, r->run_id);
    bind_text(&b, r->settings.name);
    bind_text(&b, run_agent_name(r));
    bind_text(&b, r->env->name);
    /* SQLite integers are signed: a seed >= 2^63 is stored as its
     * two's-complement value (cast back to uint64_t to recover it). */
    bind_int(&b, (int64_t)r->seed);
    bind_text(&b, r->config_text ? r->config_text : "");
    bind_text(&b, hash);
    bind_text(&b, divsim_version());
    bind_text(&b, divsim_build_info());
    bind_text(&b, host[0] ? host : NULL);
    return bind_step(&b);
}

static int insert_params(store *s, const run_spec *r, char *err)
{
    for (size_t i = 0; i < r->n_params; i++) {
        binder b = bind_start(s->stmt[ST_PARAM]);
        bind_int(&b, r->run_id);
        bind_text(&b, r->params[i].key);
        bind_text(&b, r->params[i].value);
        if (bind_step(&b) != SQLITE_OK)
            return db_fail(s->db, s->path, err, "recording parameter '%s' of run %" PRId64,
                           r->params[i].key, r->run_id);
    }
    return DS_OK;
}

static int check_spec(const store *s, const run_spec *r, char *err)
{
    if (!r || !r->agent || !r->env || !r->agent->name || !r->env->name
        || (r->n_params && !r->params))
        return err_set(err, DS_EINTERNAL, "database '%s': incomplete run description",
                       s->path);
    return DS_OK;
}

int store_run_start(store *s, const run_spec *r, char *err)
{
    int rc = check_spec(s, r, err);
    if (rc != DS_OK)
        return rc;
    rc = exec_sql(s, "BEGIN IMMEDIATE", "starting run", err);
    if (rc != DS_OK)
        return rc;
    binder del = bind_start(s->stmt[ST_RUN_DELETE]);
    bind_int(&del, r->run_id);
    if (bind_step(&del) != SQLITE_OK)
        rc = db_fail(s->db, s->path, err, "removing earlier rows of run %" PRId64, r->run_id);
    else if (insert_run_row(s, r) != SQLITE_OK)
        rc = db_fail(s->db, s->path, err, "recording run %" PRId64, r->run_id);
    else
        rc = insert_params(s, r, err);
    if (rc != DS_OK) {
        rollback(s, err);
        return rc;
    }
    return commit(s, "starting run", err);
}

/* ---- the plan of a sweep ---- */

static int insert_planned(store *s, const run_spec *r)
{
    char hash[17];
    snprintf(hash, sizeof hash, "%016" PRIx64, r->config_hash);
    binder b = bind_start(s->stmt[ST_PLAN]);
    bind_int(&b, r->run_id);
    bind_text(&b, r->settings.name);
    bind_text(&b, run_agent_name(r));
    bind_text(&b, r->env->name);
    bind_int(&b, (int64_t)r->seed);
    bind_text(&b, r->config_text ? r->config_text : "");
    bind_text(&b, hash);
    return bind_step(&b);
}

int store_plan(store *s, const run_spec *runs, size_t n, char *err)
{
    int rc = exec_sql(s, "BEGIN IMMEDIATE", "recording the plan", err);
    for (size_t i = 0; rc == DS_OK && i < n; i++)
        if (insert_planned(s, &runs[i]) != SQLITE_OK)
            rc = db_fail(s->db, s->path, err, "planning run %" PRId64, runs[i].run_id);
    if (rc != DS_OK) {
        rollback(s, err);
        return rc;
    }
    return commit(s, "recording the plan", err);
}

/* ---- run finish ---- */

/* Impressions per step, for purchases per 1000 impressions. */
static long slate_size(const run_spec *r)
{
    const char *v = run_param_get(r, "env.slate");
    if (!v)
        return 1;
    char *end;
    long k = strtol(v, &end, 10);
    return end != v && *end == '\0' && k > 0 ? k : 1;
}

static int insert_episode(store *s, int64_t run_id, long slate, const episode_row *e)
{
    double impressions = (double)e->length * (double)slate;
    binder b = bind_start(s->stmt[ST_EPISODE]);
    bind_int(&b, run_id);
    bind_int(&b, e->episode);
    bind_text(&b, phase_name(e->phase));
    bind_int(&b, e->user);
    bind_real(&b, e->start_time);
    bind_real(&b, e->end_time);
    bind_int(&b, e->length);
    bind_real(&b, e->reward);
    bind_real(&b, e->shaped_reward);
    bind_int(&b, e->clicks);
    bind_int(&b, e->purchases);
    bind_real(&b, e->revenue);
    bind_real(&b, e->length > 0 ? (double)e->clicks / e->length : NAN);
    bind_real(&b, impressions > 0 ? 1000.0 * e->purchases / impressions : NAN);
    bind_real(&b, e->ild);
    bind_real(&b, e->topic_ild);
    bind_real(&b, e->topic_entropy);
    bind_real(&b, e->novelty);
    bind_real(&b, e->repeat_rate);
    bind_int(&b, e->churned);
    return bind_step(&b);
}

/* Columns shared by windows and phases, after their keys. */
static void bind_window_values(binder *b, const window_row *w)
{
    bind_int(b, w->episodes);
    bind_real(b, w->sim_time);
    bind_real(b, w->coverage);
    bind_real(b, w->gini);
    bind_real(b, w->exposure_entropy);
    bind_real(b, w->exposure_entropy_norm);
    bind_real(b, w->retention);
    bind_real(b, w->churn_rate);
    bind_real(b, w->reward);
    bind_real(b, w->ild);
}

static int insert_window(store *s, int64_t run_id, const window_row *w)
{
    binder b = bind_start(s->stmt[ST_WINDOW]);
    bind_int(&b, run_id);
    bind_int(&b, w->window);
    bind_text(&b, phase_name(w->phase));
    bind_window_values(&b, w);
    return bind_step(&b);
}

static int insert_phase(store *s, int64_t run_id, const window_row *w)
{
    binder b = bind_start(s->stmt[ST_PHASE]);
    bind_int(&b, run_id);
    bind_text(&b, phase_name(w->phase));
    bind_window_values(&b, w);
    return bind_step(&b);
}

static int insert_update(store *s, int64_t run_id, const update_row *u)
{
    binder b = bind_start(s->stmt[ST_UPDATE]);
    bind_int(&b, run_id);
    bind_int(&b, u->update);
    bind_real(&b, u->time);
    bind_real(&b, u->policy_loss);
    bind_real(&b, u->value_loss);
    bind_real(&b, u->entropy);
    bind_real(&b, u->approx_kl);
    bind_real(&b, u->clip_fraction);
    bind_real(&b, u->explained_variance);
    bind_real(&b, u->grad_norm);
    bind_real(&b, u->learning_rate);
    bind_real(&b, u->steps_per_second);
    return bind_step(&b);
}

/* NULL-able integer: a negative value (no click, no item) is stored as NULL. */
static void bind_index(binder *b, int64_t v)
{
    if (b->rc != SQLITE_OK)
        return;
    if (v >= 0)
        bind_int(b, v);
    else
        b->rc = sqlite3_bind_null(b->stmt, ++b->col);
}

/* A slate as "i0 i1 ...", into text[n]; 0, or -1 if it does not fit. */
static int slate_text(const int *slate, int k, char *text, size_t n)
{
    size_t used = 0;
    text[0] = '\0';
    for (int j = 0; j < k; j++) {
        int w = snprintf(text + used, n - used, j ? " %d" : "%d", slate[j]);
        if (w < 0 || (used += (size_t)w) >= n)
            return -1;
    }
    return 0;
}

static int insert_interaction(store *s, int64_t run_id, const run_result *res,
                              const interaction_row *r, char *text, size_t text_len)
{
    static const char *const kinds[] = {"step", "late_purchase"};
    if (r->slate_at >= 0 &&
        slate_text(res->slates + r->slate_at, res->slate_len, text, text_len) != 0)
        return SQLITE_TOOBIG;
    binder b = bind_start(s->stmt[ST_INTERACTION]);
    bind_int(&b, run_id);
    bind_int(&b, r->seq);
    bind_text(&b, kinds[r->kind == INTERACTION_LATE_PURCHASE]);
    bind_text(&b, phase_name((phase)r->phase));
    bind_int(&b, r->episode);
    bind_int(&b, r->user);
    bind_int(&b, r->step);
    bind_real(&b, r->time);
    bind_text(&b, r->slate_at >= 0 ? text : NULL);
    bind_index(&b, r->click);
    bind_index(&b, r->item);
    bind_int(&b, r->purchased);
    bind_real(&b, r->logp);
    return bind_step(&b);
}

static int insert_interactions(store *s, const run_spec *r, const run_result *res, char *err)
{
    size_t text_len = 12 * (size_t)(res->slate_len > 0 ? res->slate_len : 1) + 1;
    char *text = malloc(text_len);
    if (!text)
        return err_set(err, DS_ENOMEM, "out of memory writing the interactions of run %"
                       PRId64, r->run_id);
    int rc = DS_OK;
    for (size_t i = 0; i < res->n_interactions && rc == DS_OK; i++)
        if (insert_interaction(s, r->run_id, res, &res->interactions[i], text, text_len)
            != SQLITE_OK)
            rc = db_fail(s->db, s->path, err, "writing interaction %zu of run %" PRId64, i,
                         r->run_id);
    free(text);
    return rc;
}

static int update_run_row(store *s, const run_spec *r, const run_result *res, char *err)
{
    binder b = bind_start(s->stmt[ST_RUN_FINISH]);
    bind_text(&b, run_status_name(res->status));
    bind_text(&b, res->message[0] ? res->message : NULL);
    bind_real(&b, res->wall_seconds);
    bind_real(&b, res->sim_time);
    bind_int(&b, res->steps);
    bind_int(&b, r->run_id);
    if (bind_step(&b) != SQLITE_OK)
        return db_fail(s->db, s->path, err, "recording the status of run %" PRId64,
                       r->run_id);
    if (sqlite3_changes(s->db) != 1)
        return err_set(err, DS_EINTERNAL,
                       "database '%s': run %" PRId64 " was never started", s->path,
                       r->run_id);
    return DS_OK;
}

static int insert_rows(store *s, const run_spec *r, const run_result *res, char *err)
{
    int64_t id = r->run_id;
    long slate = slate_size(r);
    for (size_t i = 0; i < res->n_episodes; i++)
        if (insert_episode(s, id, slate, &res->episodes[i]) != SQLITE_OK)
            return db_fail(s->db, s->path, err, "writing episode %ld of run %" PRId64,
                           res->episodes[i].episode, id);
    for (size_t i = 0; i < res->n_windows; i++)
        if (insert_window(s, id, &res->windows[i]) != SQLITE_OK)
            return db_fail(s->db, s->path, err, "writing %s window %ld of run %" PRId64,
                           phase_name(res->windows[i].phase), res->windows[i].window, id);
    for (size_t i = 0; i < res->n_phases; i++)
        if (insert_phase(s, id, &res->phases[i]) != SQLITE_OK)
            return db_fail(s->db, s->path, err, "writing the %s summary of run %" PRId64,
                           phase_name(res->phases[i].phase), id);
    for (size_t i = 0; i < res->n_updates; i++)
        if (insert_update(s, id, &res->updates[i]) != SQLITE_OK)
            return db_fail(s->db, s->path, err, "writing update %ld of run %" PRId64,
                           res->updates[i].update, id);
    return insert_interactions(s, r, res, err);
}

int store_run_finish(store *s, const run_spec *r, const run_result *res, char *err)
{
    int rc = check_spec(s, r, err);
    if (rc != DS_OK)
        return rc;
    if (!res || (res->n_episodes && !res->episodes) || (res->n_windows && !res->windows)
        || (res->n_updates && !res->updates) || res->n_phases > 2
        || (res->n_interactions && (!res->interactions || (res->n_slates && !res->slates))))
        return err_set(err, DS_EINTERNAL, "database '%s': incomplete result of run %" PRId64,
                       s->path, r->run_id);
    rc = exec_sql(s, "BEGIN IMMEDIATE", "finishing run", err);
    if (rc != DS_OK)
        return rc;
    rc = update_run_row(s, r, res, err);
    if (rc == DS_OK)
        rc = insert_rows(s, r, res, err);
    if (rc != DS_OK) {
        rollback(s, err);
        return rc;
    }
    return commit(s, "finishing run", err);
}

/* ---- reading ---- */

/* "file:PATH?immutable=1" with PATH percent-encoded, for sqlite3_open_v2's URIs. */
static int immutable_uri(const char *path, char *uri, size_t n)
{
    size_t k = (size_t)snprintf(uri, n, "file:");
    for (const unsigned char *p = (const unsigned char *)path; *p && k + 4 < n; p++) {
        if (*p == '/' || *p == '.' || *p == '-' || *p == '_' || *p == '~' ||
            (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
            uri[k++] = (char)*p;
        else
            k += (size_t)snprintf(uri + k, n - k, "%%%02X", *p);
    }
    int written = snprintf(uri + k, n - k, "?immutable=1");
    return written >= 0 && (size_t)written < n - k;
}

static int open_for_reading(const char *name, int flags, sqlite3 **db, char *err)
{
    if (sqlite3_open_v2(name, db, SQLITE_OPEN_READONLY | flags, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(*db, 10000);
        return DS_OK;
    }
    int rc = err_set(err, DS_EIO, "cannot open '%s': %s", name,
                     *db ? sqlite3_errmsg(*db) : "out of memory");
    sqlite3_close(*db);
    *db = NULL;
    return rc;
}

int store_open_readonly(const char *path, sqlite3 **db, char *err)
{
    int rc = open_for_reading(path, 0, db, err);
    if (rc != DS_OK)
        return rc;
    int probe = sqlite3_exec(*db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
    if (probe != SQLITE_READONLY && probe != SQLITE_CANTOPEN)
        return DS_OK; /* readable, or a problem the caller's queries will name */
    sqlite3_close(*db);
    *db = NULL;
    /* A WAL database whose -shm file cannot be created: the file alone holds
     * every committed page when there is no -wal file, else it cannot be read. */
    char wal[4200], dir[4096], uri[3 * 4096 + 32];
    snprintf(wal, sizeof wal, "%s-wal", path);
    dir_of(path, dir, sizeof dir);
    if (access(wal, F_OK) == 0 || errno != ENOENT)
        return err_set(err, DS_EINPUT, "cannot read '%s': its directory '%.256s' is not "
                       "writable, and SQLite must create the -shm file there to read the "
                       "-wal file", path, dir);
    if (!immutable_uri(path, uri, sizeof uri))
        return err_set(err, DS_EINPUT, "cannot read '%s': the path is too long", path);
    return open_for_reading(uri, SQLITE_OPEN_URI, db, err);
}
