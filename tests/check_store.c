/* Tests of the SQLite results store: round trip of every table, status
 * transitions, replacement of a restarted run, rollback of a failed write,
 * refusal of foreign and newer files, and the summary views.
 *
 * Every database lives in one mkdtemp directory, removed at the end. The
 * runs are built by hand: fake env and agent types with only a name. */
#include "../sim/common.h"
#include "../sim/store.h"
#include "../sim/version.h"

#include <check.h>
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[1024];

static void db_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", tmpdir, name);
}

/* ---- fixtures ---- */

static const env_type fake_env = { .name = "shop" };
static const agent_type fake_popularity = { .name = "popularity" };
static const agent_type fake_ppo = { .name = "ppo" };

typedef struct {
    run_spec spec;
    run_param params[3];  /* sorted by key */
    char config[256];
} fixture_run;

/* A run of agent on the fake env with the given slate size. Runs that differ
 * only in seed share config text and hash, as the experiment loader makes them. */
static void make_run(fixture_run *f, const char *experiment_name, const agent_type *kind,
                     uint64_t seed, int slate)
{
    memset(f, 0, sizeof *f);
    snprintf(f->params[0].key, sizeof f->params[0].key, "agent.kind");
    snprintf(f->params[0].value, sizeof f->params[0].value, "%s", kind->name);
    snprintf(f->params[1].key, sizeof f->params[1].key, "env.kind");
    snprintf(f->params[1].value, sizeof f->params[1].value, "%s", fake_env.name);
    snprintf(f->params[2].key, sizeof f->params[2].key, "env.slate");
    snprintf(f->params[2].value, sizeof f->params[2].value, "%d", slate);
    snprintf(f->config, sizeof f->config, "agent.kind = %s\nenv.kind = %s\nenv.slate = %d\n",
             kind->name, fake_env.name, slate);
    f->spec.env = &fake_env;
    f->spec.agent = kind;
    f->spec.seed = seed;
    snprintf(f->spec.settings.name, sizeof f->spec.settings.name, "%s", experiment_name);
    f->spec.params = f->params;
    f->spec.n_params = 3;
    f->spec.config_text = f->config;
    f->spec.config_hash = hash_bytes(f->config, strlen(f->config), HASH_INIT);
    f->spec.run_id = (int64_t)(hash_bytes(&seed, sizeof seed, f->spec.config_hash)
                               & (uint64_t)INT64_MAX);
}

typedef struct {
    run_result res;
    episode_row episodes[8];
    window_row windows[2];
    update_row updates[2];
} fixture_result;

/* The detailed result of the round-trip test: 3 episodes (2 train, 1 eval),
 * one window per phase, both phases, 2 updates, some fields NAN. */
static void make_detailed_result(fixture_result *f)
{
    memset(f, 0, sizeof *f);
    f->episodes[0] = (episode_row){
        .episode = 0, .phase = PHASE_TRAIN, .user = 7, .start_time = 0.5, .end_time = 0.75,
        .length = 4, .reward = 1.0, .shaped_reward = 1.25, .clicks = 2, .purchases = 1,
        .revenue = 19.5, .ild = 0.4, .topic_ild = 0.5, .topic_entropy = 0.6931,
        .novelty = 3.5, .repeat_rate = 0.25, .churned = 0 };
    f->episodes[1] = (episode_row){
        .episode = 1, .phase = PHASE_TRAIN, .user = 3, .start_time = 1.0, .end_time = 1.0,
        .length = 0, .reward = 0.0, .shaped_reward = 0.0, .clicks = 0, .purchases = 0,
        .revenue = 0.0, .ild = 0.0, .topic_ild = 0.0, .topic_entropy = 0.0,
        .novelty = NAN, .repeat_rate = 0.0, .churned = 1 };
    f->episodes[2] = (episode_row){
        .episode = 2, .phase = PHASE_EVAL, .user = 7, .start_time = 2.0, .end_time = 2.5,
        .length = 2, .reward = 2.0, .shaped_reward = 2.0, .clicks = 1, .purchases = 2,
        .revenue = 30.0, .ild = 0.2, .topic_ild = 0.0, .topic_entropy = 0.0,
        .novelty = 1.0, .repeat_rate = 0.5, .churned = 0 };
    f->windows[0] = (window_row){
        .window = 0, .phase = PHASE_TRAIN, .episodes = 2, .sim_time = 1.0,
        .coverage = 0.875, .gini = 41.0 / 120.0, .exposure_entropy = 1.8414,
        .exposure_entropy_norm = 1.8414 / log(8.0), .retention = 0.5, .churn_rate = 0.5,
        .reward = 0.5, .ild = 0.2 };
    f->windows[1] = (window_row){
        .window = 0, .phase = PHASE_EVAL, .episodes = 1, .sim_time = 2.5,
        .coverage = 0.25, .gini = 0.75, .exposure_entropy = 0.6931,
        .exposure_entropy_norm = NAN, .retention = 0.5, .churn_rate = 0.0,
        .reward = 2.0, .ild = 0.2 };
    f->res.phases[0] = f->windows[0];
    f->res.phases[0].window = -1;
    f->res.phases[1] = f->windows[1];
    f->res.phases[1].window = -1;
    f->res.n_phases = 2;
    f->updates[0] = (update_row){ .update = 0, .time = 1.0, .policy_loss = -0.5,
                                  .value_loss = 2.0, .entropy = 1.5, .approx_kl = 0.01,
                                  .clip_fraction = 0.125, .explained_variance = 0.3,
                                  .grad_norm = 4.0 };
    f->updates[1] = (update_row){ .update = 1, .time = 2.0, .policy_loss = -0.25,
                                  .value_loss = 1.0, .entropy = 1.25, .approx_kl = NAN,
                                  .clip_fraction = 0.0, .explained_variance = NAN,
                                  .grad_norm = 3.0 };
    f->res.status = RUN_DONE;
    f->res.episodes = f->episodes;
    f->res.n_episodes = 3;
    f->res.windows = f->windows;
    f->res.n_windows = 2;
    f->res.updates = f->updates;
    f->res.n_updates = f->res.cap_updates = 2;
    f->res.sim_time = 12.5;
    f->res.steps = 6;
    f->res.wall_seconds = 0.25;
}

/* A result whose episodes have the given rewards (length 1, nothing else),
 * and whose phase summaries have the given coverage. */
static void make_reward_result(fixture_result *f, run_status status, const double *train,
                               size_t n_train, const double *eval, size_t n_eval,
                               double train_coverage)
{
    memset(f, 0, sizeof *f);
    ck_assert_uint_le(n_train + n_eval, 8);
    for (size_t i = 0; i < n_train + n_eval; i++) {
        episode_row *e = &f->episodes[i];
        e->episode = (long)i;
        e->phase = i < n_train ? PHASE_TRAIN : PHASE_EVAL;
        e->length = 1;
        e->reward = i < n_train ? train[i] : eval[i - n_train];
    }
    f->res.phases[0] = (window_row){ .window = -1, .phase = PHASE_TRAIN,
                                     .episodes = (long)n_train, .coverage = train_coverage };
    f->res.phases[1] = (window_row){ .window = -1, .phase = PHASE_EVAL,
                                     .episodes = (long)n_eval, .coverage = 0.0 };
    f->res.n_phases = 2;
    f->res.status = status;
    f->res.episodes = f->episodes;
    f->res.n_episodes = n_train + n_eval;
}

/* ---- queries ---- */

/* Runs a query that must return a row; the caller reads it and finalizes. */
static sqlite3_stmt *query_row(sqlite3 *db, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static sqlite3_stmt *query_row(sqlite3 *db, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    sqlite3_stmt *st = NULL;
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    ck_assert_msg(sqlite3_step(st) == SQLITE_ROW, "no row for: %s", sql);
    return st;
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = query_row(db, "%s", sql);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int64_t count_rows(sqlite3 *db, const char *table, int64_t run_id)
{
    sqlite3_stmt *st = query_row(db, "SELECT count(*) FROM %s WHERE run_id = %" PRId64,
                                 table, run_id);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void assert_real(sqlite3_stmt *st, int col, double want)
{
    ck_assert_msg(sqlite3_column_type(st, col) == SQLITE_FLOAT
                      || sqlite3_column_type(st, col) == SQLITE_INTEGER,
                  "column %s is not a number", sqlite3_column_name(st, col));
    double got = sqlite3_column_double(st, col);
    /* Doubles round-trip exactly through SQLite REAL; averages get 1e-12. */
    ck_assert_msg(fabs(got - want) <= 1e-12 * fmax(1.0, fabs(want)), "column %s: got %.17g, want %.17g",
                  sqlite3_column_name(st, col), got, want);
}

static void assert_null(sqlite3_stmt *st, int col)
{
    ck_assert_msg(sqlite3_column_type(st, col) == SQLITE_NULL, "column %s is not NULL",
                  sqlite3_column_name(st, col));
}

static void assert_text(sqlite3_stmt *st, int col, const char *want)
{
    const char *got = (const char *)sqlite3_column_text(st, col);
    ck_assert_msg(got && strcmp(got, want) == 0, "column %s: got '%s', want '%s'",
                  sqlite3_column_name(st, col), got ? got : "(null)", want);
}

static void assert_status(store *s, int64_t run_id, const char *want)
{
    char status[16], err[ERR_LEN] = "";
    ck_assert_msg(store_run_status(s, run_id, status, err) == DS_OK, "%s", err);
    ck_assert_str_eq(status, want);
}

static store *open_ok(const char *path)
{
    store *s = NULL;
    char err[ERR_LEN] = "";
    ck_assert_msg(store_open(path, &s, err) == DS_OK, "%s", err);
    ck_assert_ptr_nonnull(s);
    return s;
}

static void start_ok(store *s, const run_spec *r)
{
    char err[ERR_LEN] = "";
    ck_assert_msg(store_run_start(s, r, err) == DS_OK, "%s", err);
}

static void finish_ok(store *s, const run_spec *r, const run_result *res)
{
    char err[ERR_LEN] = "";
    ck_assert_msg(store_run_finish(s, r, res, err) == DS_OK, "%s", err);
}

/* ---- files ---- */

static size_t read_file(const char *path, unsigned char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, cap, f);
    ck_assert_int_eq(fclose(f), 0);
    return n;
}

static void write_file(const char *path, const unsigned char *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static int file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* Opening path must fail with a message containing each of want[], and leave
 * the file's bytes as they were and no WAL file beside it. */
static void assert_refused_untouched(const char *path, const char *const *want, size_t n_want)
{
    static unsigned char before[1 << 16], after[1 << 16];
    size_t n_before = read_file(path, before, sizeof before);
    ck_assert_uint_lt(n_before, sizeof before);

    store *s = NULL;
    char err[ERR_LEN] = "";
    int rc = store_open(path, &s, err);
    ck_assert_int_ne(rc, DS_OK);
    ck_assert_ptr_null(s);
    for (size_t i = 0; i < n_want; i++)
        ck_assert_msg(strstr(err, want[i]), "message '%s' lacks '%s'", err, want[i]);

    size_t n_after = read_file(path, after, sizeof after);
    ck_assert_uint_eq(n_after, n_before);
    ck_assert(memcmp(before, after, n_before) == 0);
    char wal[2048];
    snprintf(wal, sizeof wal, "%s-wal", path);
    ck_assert(!file_exists(wal));
}

/* ---- tests ---- */

START_TEST(test_open_creates_schema)
{
    char path[2048];
    db_path(path, sizeof path, "fresh.db");
    store *s = open_ok(path);
    sqlite3 *db = store_db(s);
    ck_assert_int_eq(query_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    ck_assert_int_eq(query_int(db, "PRAGMA foreign_keys"), 1);
    sqlite3_stmt *st = query_row(db, "PRAGMA journal_mode");
    assert_text(st, 0, "wal");
    sqlite3_finalize(st);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM sqlite_master WHERE name IN"
                                   " ('runs','params','episodes','windows','phases',"
                                   "'updates','run_summary','agent_summary',"
                                   "'config_summary')"),
                     9);
    store_close(s);

    /* Reopening an existing store is fine and keeps its version. */
    s = open_ok(path);
    ck_assert_int_eq(query_int(store_db(s), "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    store_close(s);
    store_close(NULL);
}
END_TEST

START_TEST(test_round_trip)
{
    char path[2048];
    db_path(path, sizeof path, "roundtrip.db");
    fixture_run run;
    fixture_result out;
    make_run(&run, "exp1", &fake_popularity, 42, 3);
    make_detailed_result(&out);
    const run_spec *r = &run.spec;
    int64_t id = r->run_id;

    store *s = open_ok(path);
    start_ok(s, r);
    finish_ok(s, r, &out.res);
    store_close(s);

    /* Read back through a fresh connection: everything was committed. */
    s = open_ok(path);
    sqlite3 *db = store_db(s);

    sqlite3_stmt *st = query_row(db,
        "SELECT experiment, agent, env, seed, status, message, config, config_hash,"
        " version, build, host, started_at, finished_at, wall_seconds, sim_hours, steps"
        " FROM runs WHERE id = %" PRId64, id);
    char hash[17];
    snprintf(hash, sizeof hash, "%016" PRIx64, r->config_hash);
    assert_text(st, 0, "exp1");
    assert_text(st, 1, "popularity");
    assert_text(st, 2, "shop");
    ck_assert_int_eq(sqlite3_column_int64(st, 3), 42);
    assert_text(st, 4, "done");
    assert_null(st, 5);  /* empty message */
    assert_text(st, 6, run.config);
    assert_text(st, 7, hash);
    assert_text(st, 8, divsim_version());
    assert_text(st, 9, divsim_build_info());
    ck_assert(sqlite3_column_type(st, 10) == SQLITE_TEXT);
    for (int col = 11; col <= 12; col++) {  /* YYYY-MM-DDTHH:MM:SSZ */
        const char *t = (const char *)sqlite3_column_text(st, col);
        ck_assert_ptr_nonnull(t);
        ck_assert_uint_eq(strlen(t), 20);
        ck_assert(t[4] == '-' && t[7] == '-' && t[10] == 'T' && t[13] == ':' && t[19] == 'Z');
    }
    assert_real(st, 13, 0.25);
    assert_real(st, 14, 12.5);
    ck_assert_int_eq(sqlite3_column_int64(st, 15), 6);
    sqlite3_finalize(st);

    /* params: exactly run_spec.params. */
    ck_assert_int_eq(count_rows(db, "params", id), 3);
    for (int i = 0; i < 3; i++) {
        st = query_row(db, "SELECT value FROM params WHERE run_id = %" PRId64 " AND key = '%s'",
                       id, run.params[i].key);
        assert_text(st, 0, run.params[i].value);
        sqlite3_finalize(st);
    }

    /* episodes: every column; ctr = clicks / length, purchases_per_1000 =
     * 1000 purchases / (length * slate) with slate 3 from env.slate. */
    ck_assert_int_eq(count_rows(db, "episodes", id), 3);
    static const char episode_cols[] =
        "SELECT phase, user_id, start_time, end_time, length, reward, shaped_reward, clicks,"
        " purchases, revenue, ctr, purchases_per_1000, ild, topic_ild, topic_entropy,"
        " novelty, repeat_rate, churned FROM episodes";
    st = query_row(db, "%s WHERE run_id = %" PRId64 " AND episode = 0", episode_cols, id);
    assert_text(st, 0, "train");
    ck_assert_int_eq(sqlite3_column_int(st, 1), 7);
    assert_real(st, 2, 0.5);
    assert_real(st, 3, 0.75);
    ck_assert_int_eq(sqlite3_column_int(st, 4), 4);
    assert_real(st, 5, 1.0);
    assert_real(st, 6, 1.25);
    ck_assert_int_eq(sqlite3_column_int(st, 7), 2);
    ck_assert_int_eq(sqlite3_column_int(st, 8), 1);
    assert_real(st, 9, 19.5);
    assert_real(st, 10, 0.5);                  /* 2 / 4 */
    assert_real(st, 11, 1000.0 * 1 / (4 * 3)); /* 83.33... */
    assert_real(st, 12, 0.4);
    assert_real(st, 13, 0.5);
    assert_real(st, 14, 0.6931);
    assert_real(st, 15, 3.5);
    assert_real(st, 16, 0.25);
    ck_assert_int_eq(sqlite3_column_int(st, 17), 0);
    sqlite3_finalize(st);

    /* A zero-length episode has no CTR; its NAN novelty is NULL. */
    st = query_row(db, "%s WHERE run_id = %" PRId64 " AND episode = 1", episode_cols, id);
    assert_null(st, 10);
    assert_null(st, 11);
    assert_null(st, 15);
    ck_assert_int_eq(sqlite3_column_int(st, 17), 1);
    sqlite3_finalize(st);

    st = query_row(db, "%s WHERE run_id = %" PRId64 " AND episode = 2", episode_cols, id);
    assert_text(st, 0, "eval");
    assert_real(st, 11, 1000.0 * 2 / (2 * 3));
    sqlite3_finalize(st);

    /* windows and phases */
    ck_assert_int_eq(count_rows(db, "windows", id), 2);
    static const char window_cols[] =
        "episodes, sim_time, coverage, gini, exposure_entropy, exposure_entropy_norm,"
        " retention, churn_rate, reward, ild";
    for (int p = 0; p < 2; p++) {
        const window_row *w = &out.windows[p];
        for (int table = 0; table < 2; table++) {
            if (table == 0)
                st = query_row(db, "SELECT %s FROM windows WHERE run_id = %" PRId64
                               " AND phase = '%s' AND window = 0", window_cols, id,
                               phase_name(w->phase));
            else
                st = query_row(db, "SELECT %s FROM phases WHERE run_id = %" PRId64
                               " AND phase = '%s'", window_cols, id, phase_name(w->phase));
            ck_assert_int_eq(sqlite3_column_int64(st, 0), w->episodes);
            assert_real(st, 1, w->sim_time);
            assert_real(st, 2, w->coverage);
            assert_real(st, 3, w->gini);
            assert_real(st, 4, w->exposure_entropy);
            if (isnan(w->exposure_entropy_norm))
                assert_null(st, 5);
            else
                assert_real(st, 5, w->exposure_entropy_norm);
            assert_real(st, 6, w->retention);
            assert_real(st, 7, w->churn_rate);
            assert_real(st, 8, w->reward);
            assert_real(st, 9, w->ild);
            sqlite3_finalize(st);
        }
    }
    ck_assert_int_eq(count_rows(db, "phases", id), 2);

    /* updates, NAN as NULL */
    ck_assert_int_eq(count_rows(db, "updates", id), 2);
    static const char update_cols[] =
        "SELECT time, policy_loss, value_loss, entropy, approx_kl, clip_fraction,"
        " explained_variance, grad_norm FROM updates";
    st = query_row(db, "%s WHERE run_id = %" PRId64 " AND \"update\" = 0", update_cols, id);
    const double want0[] = { 1.0, -0.5, 2.0, 1.5, 0.01, 0.125, 0.3, 4.0 };
    for (int c = 0; c < 8; c++)
        assert_real(st, c, want0[c]);
    sqlite3_finalize(st);
    st = query_row(db, "%s WHERE run_id = %" PRId64 " AND \"update\" = 1", update_cols, id);
    assert_real(st, 1, -0.25);
    assert_null(st, 4);
    assert_null(st, 6);
    assert_real(st, 7, 3.0);
    sqlite3_finalize(st);

    store_close(s);
}
END_TEST

START_TEST(test_status_transitions)
{
    char path[2048];
    db_path(path, sizeof path, "status.db");
    store *s = open_ok(path);
    sqlite3 *db = store_db(s);

    fixture_run run;
    fixture_result out;
    make_run(&run, "exp1", &fake_popularity, 1, 3);
    make_detailed_result(&out);
    int64_t id = run.spec.run_id;

    assert_status(s, id, "");
    start_ok(s, &run.spec);
    assert_status(s, id, "running");
    sqlite3_stmt *st = query_row(db, "SELECT finished_at FROM runs WHERE id = %" PRId64, id);
    assert_null(st, 0);
    sqlite3_finalize(st);
    finish_ok(s, &run.spec, &out.res);
    assert_status(s, id, "done");

    /* A diverged run keeps its message and its rows. */
    fixture_run diverged;
    make_run(&diverged, "exp1", &fake_ppo, 1, 3);
    make_detailed_result(&out);
    out.res.status = RUN_DIVERGED;
    snprintf(out.res.message, sizeof out.res.message, "nan in the policy logits");
    start_ok(s, &diverged.spec);
    finish_ok(s, &diverged.spec, &out.res);
    assert_status(s, diverged.spec.run_id, "diverged");
    st = query_row(db, "SELECT message FROM runs WHERE id = %" PRId64, diverged.spec.run_id);
    assert_text(st, 0, "nan in the policy logits");
    sqlite3_finalize(st);
    ck_assert_int_eq(count_rows(db, "episodes", diverged.spec.run_id), 3);

    /* An interrupted run stores what it had. */
    fixture_run interrupted;
    make_run(&interrupted, "exp1", &fake_ppo, 2, 3);
    make_detailed_result(&out);
    out.res.status = RUN_INTERRUPTED;
    out.res.n_episodes = 1;
    out.res.n_windows = 0;
    out.res.n_phases = 0;
    out.res.n_updates = 1;
    start_ok(s, &interrupted.spec);
    finish_ok(s, &interrupted.spec, &out.res);
    assert_status(s, interrupted.spec.run_id, "interrupted");
    ck_assert_int_eq(count_rows(db, "episodes", interrupted.spec.run_id), 1);
    ck_assert_int_eq(count_rows(db, "updates", interrupted.spec.run_id), 1);

    /* Finishing a run that was never started is an error and writes nothing. */
    fixture_run stray;
    make_run(&stray, "exp1", &fake_ppo, 3, 3);
    make_detailed_result(&out);
    char err[ERR_LEN] = "";
    ck_assert_int_ne(store_run_finish(s, &stray.spec, &out.res, err), DS_OK);
    ck_assert_msg(strstr(err, "never started"), "%s", err);
    assert_status(s, stray.spec.run_id, "");
    ck_assert_int_eq(count_rows(db, "episodes", stray.spec.run_id), 0);

    store_close(s);
}
END_TEST

START_TEST(test_restart_replaces_rows)
{
    char path[2048];
    db_path(path, sizeof path, "restart.db");
    store *s = open_ok(path);
    sqlite3 *db = store_db(s);

    fixture_run run;
    fixture_result out;
    make_run(&run, "exp1", &fake_popularity, 5, 3);
    make_detailed_result(&out);
    int64_t id = run.spec.run_id;

    start_ok(s, &run.spec);
    finish_ok(s, &run.spec, &out.res);

    /* Starting again drops the earlier attempt's rows (cascade) ... */
    start_ok(s, &run.spec);
    assert_status(s, id, "running");
    ck_assert_int_eq(count_rows(db, "params", id), 3);
    ck_assert_int_eq(count_rows(db, "episodes", id), 0);
    ck_assert_int_eq(count_rows(db, "windows", id), 0);
    ck_assert_int_eq(count_rows(db, "phases", id), 0);
    ck_assert_int_eq(count_rows(db, "updates", id), 0);

    /* ... and finishing again leaves one copy of everything. */
    finish_ok(s, &run.spec, &out.res);
    assert_status(s, id, "done");
    sqlite3_stmt *st = query_row(db, "SELECT count(*) FROM runs WHERE id = %" PRId64, id);
    ck_assert_int_eq(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    ck_assert_int_eq(count_rows(db, "params", id), 3);
    ck_assert_int_eq(count_rows(db, "episodes", id), 3);
    ck_assert_int_eq(count_rows(db, "windows", id), 2);
    ck_assert_int_eq(count_rows(db, "phases", id), 2);
    ck_assert_int_eq(count_rows(db, "updates", id), 2);
    store_close(s);
}
END_TEST

/* A version-1 database (no planned table) is upgraded in place on open, its
 * runs kept; store_plan then records planned runs once each. */
START_TEST(test_migrates_version_1_and_plans)
{
    char path[2048];
    db_path(path, sizeof path, "v1.db");
    store *s = open_ok(path);
    fixture_run run, other;
    fixture_result out;
    make_run(&run, "exp1", &fake_popularity, 5, 3);
    make_run(&other, "exp1", &fake_popularity, 6, 3);
    make_detailed_result(&out);
    start_ok(s, &run.spec);
    finish_ok(s, &run.spec, &out.res);
    char err[ERR_LEN];
    ck_assert_int_eq(store_exec(s, "DROP TABLE planned;"
                                   "DROP TABLE interactions;"
                                   "ALTER TABLE updates DROP COLUMN learning_rate;"
                                   "ALTER TABLE updates DROP COLUMN steps_per_second;"
                                   "PRAGMA user_version = 1", "downgrade", err), DS_OK);
    store_close(s);

    s = open_ok(path);
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st = query_row(db, "PRAGMA user_version");
    ck_assert_int_eq(sqlite3_column_int(st, 0), STORE_SCHEMA_VERSION);
    sqlite3_finalize(st);
    assert_status(s, run.spec.run_id, "done");
    ck_assert_int_eq(count_rows(db, "episodes", run.spec.run_id), 3);
    ck_assert_int_eq(count_rows(db, "updates", run.spec.run_id), 2);
    st = query_row(db, "SELECT count(*) FROM pragma_table_info('updates') "
                       "WHERE name IN ('learning_rate', 'steps_per_second')");
    ck_assert_int_eq(sqlite3_column_int(st, 0), 2);
    sqlite3_finalize(st);
    run_spec both[2] = {run.spec, other.spec};
    ck_assert_int_eq(store_plan(s, both, 2, err), DS_OK);
    ck_assert_int_eq(store_plan(s, both, 2, err), DS_OK); /* idempotent */
    st = query_row(db, "SELECT count(*), count(DISTINCT config_hash) FROM planned");
    ck_assert_int_eq(sqlite3_column_int(st, 0), 2);
    ck_assert_int_eq(sqlite3_column_int(st, 1), 1);
    sqlite3_finalize(st);
    store_close(s);
}
END_TEST

/* A version-2 database (no interactions table) gains the table on open, its
 * runs kept, and takes the interaction rows of a new run. */
START_TEST(test_migrates_version_2_adds_interactions)
{
    char path[2048];
    db_path(path, sizeof path, "v2.db");
    store *s = open_ok(path);
    fixture_run run, logged;
    fixture_result out;
    make_run(&run, "exp2", &fake_popularity, 5, 3);
    make_detailed_result(&out);
    start_ok(s, &run.spec);
    finish_ok(s, &run.spec, &out.res);
    char err[ERR_LEN];
    ck_assert_int_eq(store_exec(s, "DROP TABLE interactions; PRAGMA user_version = 2",
                                "downgrade", err), DS_OK);
    store_close(s);

    s = open_ok(path);
    sqlite3 *db = store_db(s);
    ck_assert_int_eq(query_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    assert_status(s, run.spec.run_id, "done");
    ck_assert_int_eq(count_rows(db, "episodes", run.spec.run_id), 3);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM interactions"), 0);

    /* two rows: a step clicked at position 1, then a late purchase */
    int slates[2] = {7, 3};
    interaction_row rows[2] = {
        {.seq = 0, .kind = INTERACTION_STEP, .phase = PHASE_TRAIN, .episode = 0, .user = 4,
         .step = 0, .time = 1.5, .slate_at = 0, .click = 1, .item = 3, .purchased = 0,
         .logp = -2.5},
        {.seq = 1, .kind = INTERACTION_LATE_PURCHASE, .phase = PHASE_TRAIN, .episode = 0,
         .user = 4, .step = 0, .time = 2.0, .slate_at = -1, .click = -1, .item = 3,
         .purchased = 1, .logp = NAN},
    };
    make_run(&logged, "exp2", &fake_popularity, 6, 3);
    make_detailed_result(&out);
    out.res.interactions = rows;
    out.res.n_interactions = 2;
    out.res.slates = slates;
    out.res.n_slates = 1;
    out.res.slate_len = 2;
    start_ok(s, &logged.spec);
    finish_ok(s, &logged.spec, &out.res);
    sqlite3_stmt *st = query_row(db, "SELECT group_concat(coalesce(slate, '-') || ':' || "
                                     "coalesce(click_pos, '-') || ':' || coalesce(item, '-') "
                                     "|| ':' || purchased || ':' || coalesce(logp, '-') || ':' "
                                     "|| kind, ' / ') FROM (SELECT * FROM interactions ORDER "
                                     "BY seq)");
    assert_text(st, 0, "7 3:1:3:0:-2.5:step / -:-:3:1:-:late_purchase");
    sqlite3_finalize(st);
    store_close(s);
}
END_TEST

START_TEST(test_failed_finish_rolls_back)
{
    char path[2048];
    db_path(path, sizeof path, "rollback.db");
    store *s = open_ok(path);
    sqlite3 *db = store_db(s);

    fixture_run run;
    fixture_result out;
    make_run(&run, "exp1", &fake_popularity, 9, 3);
    make_detailed_result(&out);
    int64_t id = run.spec.run_id;
    start_ok(s, &run.spec);

    /* The third episode repeats number 1: the primary key fails after the
     * run row was updated and two episodes were inserted. */
    out.episodes[2].episode = 1;
    char err[ERR_LEN] = "";
    ck_assert_int_eq(store_run_finish(s, &run.spec, &out.res, err), DS_EIO);
    ck_assert_msg(strstr(err, path) && strstr(err, "episode 1") && strstr(err, "UNIQUE"),
                  "message: %s", err);

    assert_status(s, id, "running");
    sqlite3_stmt *st = query_row(db, "SELECT finished_at, steps FROM runs WHERE id = %" PRId64,
                                 id);
    assert_null(st, 0);
    assert_null(st, 1);
    sqlite3_finalize(st);
    ck_assert_int_eq(count_rows(db, "episodes", id), 0);
    ck_assert_int_eq(count_rows(db, "windows", id), 0);
    ck_assert_int_eq(count_rows(db, "phases", id), 0);
    ck_assert_int_eq(count_rows(db, "updates", id), 0);
    ck_assert_int_eq(count_rows(db, "params", id), 3);

    /* No transaction was left open: a correct finish now succeeds. */
    out.episodes[2].episode = 2;
    finish_ok(s, &run.spec, &out.res);
    assert_status(s, id, "done");
    ck_assert_int_eq(count_rows(db, "episodes", id), 3);
    store_close(s);
}
END_TEST

START_TEST(test_refuses_garbage_file)
{
    char path[2048];
    db_path(path, sizeof path, "garbage.db");
    /* 4096 bytes from a fixed LCG (Numerical Recipes constants). */
    unsigned char bytes[4096];
    uint32_t state = 12345;
    for (size_t i = 0; i < sizeof bytes; i++) {
        state = state * 1664525u + 1013904223u;
        bytes[i] = (unsigned char)(state >> 24);
    }
    write_file(path, bytes, sizeof bytes);
    const char *const want[] = { "not an sqlite database", path };
    assert_refused_untouched(path, want, 2);
}
END_TEST

START_TEST(test_refuses_foreign_database)
{
    char path[2048];
    db_path(path, sizeof path, "foreign.db");
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE notes(body TEXT);"
                                      " INSERT INTO notes VALUES('keep me');",
                                  NULL, NULL, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
    const char *const want[] = { "not a divsim results database", path };
    assert_refused_untouched(path, want, 2);
}
END_TEST

START_TEST(test_refuses_newer_schema)
{
    char path[2048];
    db_path(path, sizeof path, "newer.db");
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "PRAGMA user_version = 99;"
                                      " CREATE TABLE runs(id INTEGER PRIMARY KEY);",
                                  NULL, NULL, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
    char version[128];
    snprintf(version, sizeof version, "has schema version 99, newer than this divsim (%d)",
             STORE_SCHEMA_VERSION);
    const char *const want[] = { version, "upgrade divsim", path };
    assert_refused_untouched(path, want, 3);
}
END_TEST

START_TEST(test_views)
{
    char path[2048];
    db_path(path, sizeof path, "views.db");
    store *s = open_ok(path);
    sqlite3 *db = store_db(s);

    /* popularity, slate 3, seeds 1 and 2 done, seed 3 failed; popularity
     * slate 5 (another configuration) done; ppo done. Train rewards of seed 1
     * {1, 3} (mean 2) and seed 2 {4} (mean 4): the mean of run means is 3,
     * unlike the pooled mean 8/3, so each run counts once. */
    struct {
        const agent_type *agent;
        uint64_t seed;
        int slate;
        run_status status;
        double train[2];
        size_t n_train;
        double eval;
        double coverage;
    } runs[] = {
        { &fake_popularity, 1, 3, RUN_DONE, { 1, 3 }, 2, 5, 0.5 },
        { &fake_popularity, 2, 3, RUN_DONE, { 4, 0 }, 1, 7, 0.7 },
        { &fake_popularity, 3, 3, RUN_FAILED, { 100, 100 }, 2, 100, 1.0 },
        { &fake_popularity, 1, 5, RUN_DONE, { 10, 0 }, 1, 12, 0.9 },
        { &fake_ppo, 1, 3, RUN_DONE, { 0, 1 }, 2, 2, 0.25 },
    };
    fixture_run specs[5];
    for (size_t i = 0; i < 5; i++) {
        fixture_result out;
        make_run(&specs[i], "views", runs[i].agent, runs[i].seed, runs[i].slate);
        make_reward_result(&out, runs[i].status, runs[i].train, runs[i].n_train,
                           &runs[i].eval, 1, runs[i].coverage);
        start_ok(s, &specs[i].spec);
        finish_ok(s, &specs[i].spec, &out.res);
    }

    /* run_summary: one row per run and phase, means over the run's episodes. */
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM run_summary"), 10);
    sqlite3_stmt *st = query_row(db,
        "SELECT experiment, agent, env, seed, status, episodes, mean_reward, coverage"
        " FROM run_summary WHERE run_id = %" PRId64 " AND phase = 'train'",
        specs[0].spec.run_id);
    assert_text(st, 0, "views");
    assert_text(st, 1, "popularity");
    assert_text(st, 2, "shop");
    ck_assert_int_eq(sqlite3_column_int(st, 3), 1);
    assert_text(st, 4, "done");
    ck_assert_int_eq(sqlite3_column_int(st, 5), 2);
    assert_real(st, 6, 2.0);
    assert_real(st, 7, 0.5);
    sqlite3_finalize(st);

    /* agent_summary over done runs only: popularity pools its 3 done runs
     * (both configurations): train (2 + 4 + 10) / 3, eval (5 + 7 + 12) / 3,
     * coverage (0.5 + 0.7 + 0.9) / 3. The failed run's 100s are excluded. */
    st = query_row(db, "SELECT n_runs, mean_reward, coverage FROM agent_summary"
                       " WHERE experiment = 'views' AND env = 'shop' AND agent = 'popularity'"
                       " AND phase = 'train'");
    ck_assert_int_eq(sqlite3_column_int(st, 0), 3);
    assert_real(st, 1, 16.0 / 3.0);
    assert_real(st, 2, 2.1 / 3.0);
    sqlite3_finalize(st);
    st = query_row(db, "SELECT n_runs, mean_reward FROM agent_summary"
                       " WHERE agent = 'popularity' AND phase = 'eval'");
    ck_assert_int_eq(sqlite3_column_int(st, 0), 3);
    assert_real(st, 1, 8.0);
    sqlite3_finalize(st);
    st = query_row(db, "SELECT n_runs, mean_reward FROM agent_summary"
                       " WHERE agent = 'ppo' AND phase = 'train'");
    ck_assert_int_eq(sqlite3_column_int(st, 0), 1);
    assert_real(st, 1, 0.5);
    sqlite3_finalize(st);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM agent_summary"), 4);

    /* config_summary separates the two popularity configurations. */
    char hash[17];
    snprintf(hash, sizeof hash, "%016" PRIx64, specs[0].spec.config_hash);
    st = query_row(db, "SELECT n_runs, mean_reward FROM config_summary"
                       " WHERE config_hash = '%s' AND phase = 'train'", hash);
    ck_assert_int_eq(sqlite3_column_int(st, 0), 2);
    assert_real(st, 1, 3.0);
    sqlite3_finalize(st);
    snprintf(hash, sizeof hash, "%016" PRIx64, specs[3].spec.config_hash);
    st = query_row(db, "SELECT n_runs, mean_reward FROM config_summary"
                       " WHERE config_hash = '%s' AND phase = 'train'", hash);
    ck_assert_int_eq(sqlite3_column_int(st, 0), 1);
    assert_real(st, 1, 10.0);
    sqlite3_finalize(st);

    store_close(s);
}
END_TEST

/* ---- databases written by earlier versions ---- */

/* Loads a fixture of SQL text (tests/fixtures, read from the top directory)
 * into a new database at path. */
static void load_sql_fixture(const char *fixture, const char *path)
{
    static char sql[1 << 17];
    FILE *f = fopen(fixture, "rb");
    ck_assert_msg(f != NULL, "cannot read %s: run the tests from the top directory", fixture);
    size_t n = fread(sql, 1, sizeof sql - 1, f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_uint_lt(n, sizeof sql - 1);
    sql[n] = '\0';
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK, "%s: %s", fixture,
                  sqlite3_errmsg(db));
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}

/* Appends text to the growing string *buf. */
static void append(char **buf, size_t *len, const char *text)
{
    size_t n = strlen(text);
    char *grown = realloc(*buf, *len + n + 1);
    ck_assert_ptr_nonnull(grown);
    memcpy(grown + *len, text, n + 1);
    *buf = grown;
    *len += n;
}

/* Every row of SELECT columns FROM table, in the order of its first three
 * columns, as quoted SQL values (exact for reals); the caller frees it. */
static char *rows_text(sqlite3 *db, const char *table, const char *columns)
{
    char sql[1024];
    snprintf(sql, sizeof sql, "SELECT %s FROM %s ORDER BY 1, 2, 3", columns, table);
    sqlite3_stmt *st = NULL;
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    char *buf = NULL;
    size_t len = 0;
    append(&buf, &len, "");
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            const char *v = (const char *)sqlite3_column_text(st, c);
            append(&buf, &len, c ? "|" : "");
            append(&buf, &len, v ? v : "NULL");
        }
        append(&buf, &len, "\n");
    }
    sqlite3_finalize(st);
    return buf;
}

/* The quoted column list of table, e.g. "quote(\"id\"),quote(\"experiment\")". */
static void column_list(sqlite3 *db, const char *table, char *out, size_t n)
{
    sqlite3_stmt *st = query_row(db, "SELECT group_concat('quote(\"' || name || '\")', ',') "
                                     "FROM pragma_table_info('%s')", table);
    snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
}

#define N_TABLES 6
static const char *const data_tables[N_TABLES] = {"runs", "params", "episodes", "windows",
                                                   "phases", "updates"};

/* Opening a database written by an earlier version upgrades it in place:
 * schema version, the planned table, the updates columns; every row it held
 * is still there, value for value; and new runs can be written. */
static void check_upgrade(const char *fixture, const char *name)
{
    char path[2048], columns[N_TABLES][1024];
    char *before[N_TABLES];
    db_path(path, sizeof path, name);
    load_sql_fixture(fixture, path);
    sqlite3 *raw = NULL;
    ck_assert_int_eq(sqlite3_open(path, &raw), SQLITE_OK);
    ck_assert_int_lt(query_int(raw, "PRAGMA user_version"), STORE_SCHEMA_VERSION + 1);
    ck_assert_int_eq(query_int(raw, "SELECT count(*) FROM pragma_table_info('updates') "
                                    "WHERE name = 'learning_rate'"), 0);
    ck_assert_int_eq(query_int(raw, "SELECT count(*) FROM runs"), 2);
    ck_assert_int_eq(query_int(raw, "SELECT count(*) FROM updates"), 2);
    for (int t = 0; t < N_TABLES; t++) {
        column_list(raw, data_tables[t], columns[t], sizeof columns[t]);
        before[t] = rows_text(raw, data_tables[t], columns[t]);
    }
    ck_assert_int_eq(sqlite3_close(raw), SQLITE_OK);

    store *s = open_ok(path);
    sqlite3 *db = store_db(s);
    ck_assert_int_eq(query_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM pragma_table_info('updates') "
                                   "WHERE name IN ('learning_rate', 'steps_per_second')"), 2);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = "
                                   "'planned'"), 1);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM pragma_table_info('interactions')"),
                     13);
    for (int t = 0; t < N_TABLES; t++) {
        char *after = rows_text(db, data_tables[t], columns[t]);
        ck_assert_msg(strcmp(before[t], after) == 0, "%s: table %s changed", fixture,
                      data_tables[t]);
        ck_assert_uint_gt(strlen(after), 0);
        free(after);
        free(before[t]);
    }
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM updates WHERE learning_rate IS NOT "
                                   "NULL OR steps_per_second IS NOT NULL"), 0);

    fixture_run run;
    fixture_result out;
    make_run(&run, "legacy", &fake_ppo, 77, 3);
    make_detailed_result(&out);
    out.updates[0].learning_rate = 3e-4;
    start_ok(s, &run.spec);
    finish_ok(s, &run.spec, &out.res);
    assert_status(s, run.spec.run_id, "done");
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM updates WHERE learning_rate = 3e-4"),
                     1);
    store_close(s);

    s = open_ok(path); /* upgraded once: opening again changes nothing */
    db = store_db(s);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM runs"), 3);
    sqlite3_stmt *st = query_row(db, "PRAGMA integrity_check");
    assert_text(st, 0, "ok");
    sqlite3_finalize(st);
    store_close(s);
}

START_TEST(test_upgrades_version_1_fixture)
{
    check_upgrade("tests/fixtures/store_v1.sql", "fixture_v1.db");
}
END_TEST

/* Version 2 first shipped without the two updates columns: the version number
 * alone does not tell, so the columns are looked for. */
START_TEST(test_upgrades_early_version_2_fixture)
{
    check_upgrade("tests/fixtures/store_v2_early.sql", "fixture_v2_early.db");
}
END_TEST

/* ---- places and files that cannot be written ---- */

START_TEST(test_refuses_unwritable_places)
{
    char path[2048], err[ERR_LEN];
    store *s = NULL;
    ck_assert_int_eq(store_open(tmpdir, &s, err), DS_EINPUT);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(err, "cannot be written: it is a directory"), "%s", err);

    db_path(path, sizeof path, "no-such-dir/results.db");
    ck_assert_int_eq(store_open(path, &s, err), DS_EINPUT);
    ck_assert_msg(strstr(err, "cannot be written: there is no directory"), "%s", err);
    ck_assert(!file_exists(path));

    ck_assert_int_eq(store_open("/dev/null", &s, err), DS_EINPUT);
    ck_assert_msg(strstr(err, "it is not a regular file"), "%s", err);

    /* Root writes anyway: the read-only cases need another user (e2e does that). */
    if (geteuid() != 0) {
        db_path(path, sizeof path, "readonly.db");
        s = open_ok(path);
        store_close(s);
        ck_assert_int_eq(chmod(path, 0444), 0);
        const char *const want[] = {"cannot be written: the file is read-only", path};
        assert_refused_untouched(path, want, 2);
    }
}
END_TEST

/* A run of n_episodes train episodes of length 1, for a big write. */
static void make_long_result(run_result *res, episode_row *episodes, size_t n_episodes)
{
    memset(res, 0, sizeof *res);
    for (size_t i = 0; i < n_episodes; i++)
        episodes[i] = (episode_row){.episode = (long)i, .phase = PHASE_TRAIN, .length = 1,
                                    .reward = (double)i, .ild = 0.5};
    res->status = RUN_DONE;
    res->episodes = episodes;
    res->n_episodes = n_episodes;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* The file size limit (ulimit -f) stands for a full disk: the write of the
 * run fails with a message that says why, the run stays unfinished, and the
 * runs written before are untouched. The test runs in Check's child process;
 * SIGXFSZ is ignored there as sim/main.c does. */
START_TEST(test_full_disk_keeps_finished_runs)
{
    char path[2048], wal[2100];
    db_path(path, sizeof path, "full.db");
    snprintf(wal, sizeof wal, "%s-wal", path);
    store *s = open_ok(path);
    sqlite3 *db = store_db(s);
    fixture_run done, big;
    fixture_result out;
    make_run(&done, "exp1", &fake_popularity, 1, 3);
    make_run(&big, "exp1", &fake_popularity, 2, 3);
    make_detailed_result(&out);
    start_ok(s, &done.spec);
    finish_ok(s, &done.spec, &out.res);
    start_ok(s, &big.spec);
    char *before = rows_text(db, "episodes", "*");

    size_t n = 20000; /* about 2 MB of rows */
    episode_row *episodes = calloc(n, sizeof *episodes);
    ck_assert_ptr_nonnull(episodes);
    run_result res;
    make_long_result(&res, episodes, n);
    struct rlimit old, small;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = old;
    small.rlim_cur = (rlim_t)(fmax(file_size(path), file_size(wal)) + 64 * 1024);
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    char err[ERR_LEN] = "";
    int rc = store_run_finish(s, &big.spec, &res, err);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    ck_assert_int_eq(rc, DS_EIO);
    ck_assert_msg(strstr(err, path) && strstr(err, "file size limit"), "%s", err);

    assert_status(s, done.spec.run_id, "done");
    assert_status(s, big.spec.run_id, "running");
    ck_assert_int_eq(count_rows(db, "episodes", big.spec.run_id), 0);
    char *after = rows_text(db, "episodes", "*");
    ck_assert_str_eq(before, after);
    sqlite3_stmt *st = query_row(db, "PRAGMA integrity_check");
    assert_text(st, 0, "ok");
    sqlite3_finalize(st);
    /* With room again, the same write succeeds. */
    finish_ok(s, &big.spec, &res);
    ck_assert_int_eq(count_rows(db, "episodes", big.spec.run_id), (int64_t)n);
    store_close(s);
    free(before);
    free(after);
    free(episodes);
}
END_TEST

/* Overwrites page `page` (1-based) of the file with bytes from a fixed LCG. */
static void damage_page(const char *path, long page, long page_size)
{
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, (page - 1) * page_size, SEEK_SET), 0);
    uint32_t state = 2024;
    for (long i = 0; i < page_size; i++) {
        state = state * 1664525u + 1013904223u;
        ck_assert_int_ne(fputc((int)(state >> 24), f), EOF);
    }
    ck_assert_int_eq(fclose(f), 0);
}

/* Damage where opening does not look is found by store_check; either way the
 * file is refused as damaged and left as it was. */
START_TEST(test_refuses_damaged_file)
{
    char path[2048], cut[2048], err[ERR_LEN] = "";
    db_path(path, sizeof path, "damaged.db");
    db_path(cut, sizeof cut, "cut.db");
    store *s = open_ok(path);
    fixture_run run;
    fixture_result out;
    make_run(&run, "exp1", &fake_popularity, 1, 3);
    make_detailed_result(&out);
    start_ok(s, &run.spec);
    finish_ok(s, &run.spec, &out.res);
    sqlite3 *db = store_db(s);
    long page_size = (long)query_int(db, "PRAGMA page_size");
    long root = (long)query_int(db, "SELECT rootpage FROM sqlite_master WHERE name = "
                                    "'episodes'");
    long pages = (long)query_int(db, "PRAGMA page_count");
    store_close(s); /* the last connection: the WAL is checkpointed and removed */
    ck_assert(root > 1 && root <= pages);

    static unsigned char whole[1 << 16];
    size_t n = read_file(path, whole, sizeof whole);
    ck_assert_uint_lt(n, sizeof whole);
    write_file(cut, whole, (size_t)(pages / 2) * (size_t)page_size); /* cut in half */
    damage_page(path, root, page_size);

    const char *const files[] = {path, cut};
    for (int i = 0; i < 2; i++) {
        static unsigned char before[1 << 16], after[1 << 16];
        size_t n_before = read_file(files[i], before, sizeof before);
        int rc = store_open(files[i], &s, err);
        if (rc == DS_OK) {
            rc = store_check(s, err);
            store_close(s);
        }
        ck_assert_int_eq(rc, DS_EINPUT);
        ck_assert_msg(strstr(err, files[i]) && strstr(err, "damaged") &&
                      strstr(err, "integrity_check"), "%s", err);
        size_t n_after = read_file(files[i], after, sizeof after);
        ck_assert_uint_eq(n_after, n_before);
        ck_assert(memcmp(before, after, n_before) == 0);
    }
}
END_TEST

/* ---- main ---- */

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("store");
    tcase_add_test(tc, test_open_creates_schema);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_status_transitions);
    tcase_add_test(tc, test_restart_replaces_rows);
    tcase_add_test(tc, test_failed_finish_rolls_back);
    tcase_add_test(tc, test_migrates_version_1_and_plans);
    tcase_add_test(tc, test_migrates_version_2_adds_interactions);
    tcase_add_test(tc, test_refuses_garbage_file);
    tcase_add_test(tc, test_refuses_foreign_database);
    tcase_add_test(tc, test_refuses_newer_schema);
    tcase_add_test(tc, test_views);
    tcase_add_test(tc, test_upgrades_version_1_fixture);
    tcase_add_test(tc, test_upgrades_early_version_2_fixture);
    tcase_add_test(tc, test_refuses_unwritable_places);
    tcase_add_test(tc, test_full_disk_keeps_finished_runs);
    tcase_add_test(tc, test_refuses_damaged_file);
    suite_add_tcase(s, tc);
    return s;
}

/* Removes the temporary directory and the files in it (no subdirectories). */
static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (!d)
        return;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
            continue;
        char path[2048];
        db_path(path, sizeof path, ent->d_name);
        if (unlink(path) != 0)
            fprintf(stderr, "check_store: cannot remove '%s'\n", path);
    }
    closedir(d);
    if (rmdir(tmpdir) != 0)
        fprintf(stderr, "check_store: cannot remove '%s'\n", tmpdir);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/check_store.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "check_store: cannot create a temporary directory\n");
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(store_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_tmpdir();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
