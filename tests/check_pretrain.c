/* The interaction log and pretraining on it: the rows a run with
 * log_interactions records, stored in the results database, rebuild exactly
 * the histories the agent observed; the behaviour log-probabilities are the
 * sampling probabilities; export; pretraining beats popularity on held-out
 * users and is deterministic. */
#include "../agents/checkpoint.h"
#include "../agents/agent.h"
#include "../agents/sample.h"
#include "../envs/shop.h"
#include "../sim/common.h"
#include "../sim/export.h"
#include "../sim/pretrain.h"
#include "../sim/run.h"
#include "../sim/store.h"
#include "testutil.h"

#include <gsl/gsl_rng.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { TRAIN = 150, EVAL = 50, HISTORY = 5, ITEMS = 80, SLATE = 4, MAX_STEPS = 40 };

static double env_config[128], agent_config[128];
static run_spec logged_spec(const agent_type *a, uint64_t seed, double purchase_delay)
{
    static run_param params[2] = {{"env.items", "80"}, {"env.slate", "4"}};
    char err[ERR_LEN];
    ck_assert_int_eq(param_defaults(&shop_env.params, env_config, err), DS_OK);
    ck_assert_int_eq(param_defaults(&a->params, agent_config, err), DS_OK);
    shop_config *c = (shop_config *)env_config;
    c->items = ITEMS;
    c->users = 30;
    c->topics = 5;
    c->dim = 6;
    c->slate = SLATE;
    c->max_steps = MAX_STEPS;
    c->purchase_bias = 0.0; /* many purchases */
    c->purchase_delay = purchase_delay;
    run_spec r = {.env = &shop_env, .agent = a, .seed = seed, .env_config = env_config,
                  .agent_config = agent_config, .params = params, .n_params = 2,
                  .run_id = (int64_t)(1000 + seed)};
    r.settings = (run_settings){.name = "logged", .train_episodes = TRAIN,
                                .eval_episodes = EVAL, .window = 50, .history = HISTORY,
                                .reward = REWARD_PURCHASES, .log_interactions = 1};
    return r;
}

/* ---- an agent that records every observation's history ---- */

typedef struct {
    int user;
    int len;
    history_entry history[HISTORY];
    int slate[SLATE];
    int seen;
} act_record;

typedef struct {
    agent base;
    act_record acts[TRAIN + EVAL][MAX_STEPS];
    long n_acts;
} recorder;

static recorder *last_recorder;

static int recorder_create(const void *cfg, const env_spec *spec, const agent_context *ctx,
                           agent **out, char *err)
{
    (void)cfg, (void)ctx, (void)err;
    recorder *r = calloc(1, sizeof *r);
    r->base.spec = spec;
    *out = &r->base;
    return DS_OK;
}

static int recorder_act(agent *a, const observation *obs, int *slate)
{
    recorder *r = (recorder *)a;
    act_record *rec = &r->acts[obs->episode][obs->step];
    rec->user = obs->user;
    rec->len = obs->history_len;
    memcpy(rec->history, obs->history, (size_t)obs->history_len * sizeof *obs->history);
    /* a slate that moves with time, so clicks spread over the catalogue */
    for (int j = 0; j < SLATE; j++)
        slate[j] = rec->slate[j] =
            obs->candidates[(r->n_acts * 3 + j * 7) % obs->n_candidates];
    rec->seen = 1;
    r->n_acts++;
    a->slate_logp = 0.0;
    return DS_OK;
}

static void recorder_destroy(agent *a)
{
    last_recorder = (recorder *)a; /* freed by the test */
}

static const agent_type recorder_agent = {
    .name = "recorder", .version = 1, .summary = "test double",
    .params = {NULL, 0, 1},
    .xCreate = recorder_create, .xAct = recorder_act, .xDestroy = recorder_destroy,
};

static char db_file[64];

/* Runs r and stores it in a new database db_file; returns the result. */
static void run_and_store(const run_spec *r, run_result *res)
{
    char err[ERR_LEN];
    ck_assert_msg(run_execute(r, NULL, res, err) == DS_OK, "%s", err);
    store *s;
    ck_assert_msg(store_open(db_file, &s, err) == DS_OK, "%s", err);
    ck_assert_msg(store_run_start(s, r, err) == DS_OK, "%s", err);
    ck_assert_msg(store_run_finish(s, r, res, err) == DS_OK, "%s", err);
    store_close(s);
}

static void new_db(void)
{
    snprintf(db_file, sizeof db_file, "/tmp/check_interactions_%ld.db", (long)getpid());
    unlink(db_file);
}

static void remove_db(void)
{
    char name[80];
    unlink(db_file);
    snprintf(name, sizeof name, "%s-wal", db_file);
    unlink(name);
    snprintf(name, sizeof name, "%s-shm", db_file);
    unlink(name);
}

/* Every slate of the log, rebuilt from the database, had exactly the history
 * the agent observed; the log holds every step; purchases are pushed as the
 * engine pushes them (immediate, delay 0; or late, arriving between later steps). */
START_TEST(test_log_rebuilds_histories)
{
    const double delays[] = {0.0, 0.3};
    for (int d = 0; d < 2; d++) {
        new_db();
        run_spec r = logged_spec(&recorder_agent, 5 + (uint64_t)d, delays[d]);
        run_result res;
        run_and_store(&r, &res);
        recorder *rec = last_recorder;
        char err[ERR_LEN];
        interaction_log logs;
        ck_assert_msg(interaction_log_read(db_file, NULL, &logs, err) == DS_OK, "%s", err);
        ck_assert_int_eq(logs.n_items, ITEMS);
        long steps = 0, purchases = 0, compared_full = 0;
        for (size_t i = 0; i < logs.n_streams; i++) {
            const log_stream *s = &logs.streams[i];
            for (int e = 0; e < s->n_entries; e++)
                purchases += s->entries[e].kind == HIST_PURCHASE;
            for (int j = 0; j < s->n_steps; j++, steps++) {
                act_record *a = &rec->acts[s->steps[j].episode][s->steps[j].step];
                history_entry h[HISTORY];
                int n = log_stream_history(s, j, HISTORY, h);
                ck_assert(a->seen);
                ck_assert_int_eq(a->user, s->user);
                ck_assert_int_eq(n, a->len);
                for (int k = 0; k < n; k++) {
                    ck_assert_int_eq(h[k].item, a->history[k].item);
                    ck_assert_int_eq(h[k].kind, a->history[k].kind);
                }
                compared_full += n == HISTORY;
                a->seen = 2;
            }
        }
        ck_assert_int_eq(steps, res.steps);
        ck_assert_int_eq(steps, rec->n_acts);
        long bought = 0;
        for (size_t e = 0; e < res.n_episodes; e++)
            bought += res.episodes[e].purchases;
        ck_assert_int_gt(bought, 20); /* purchases were there to be logged */
        ck_assert_int_eq(purchases, bought);
        ck_assert_int_gt(compared_full, steps / 2);

        /* late purchases are rows of their own exactly when delayed */
        sqlite3 *db;
        ck_assert_int_eq(sqlite3_open(db_file, &db), SQLITE_OK);
        sqlite3_stmt *st;
        ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM interactions WHERE kind"
                                            " = 'late_purchase'", -1, &st, NULL), SQLITE_OK);
        ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
        ck_assert_int_eq(sqlite3_column_int(st, 0), d == 0 ? 0 : bought);
        sqlite3_finalize(st);
        /* a slate's text is the slate shown */
        ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT episode, step, slate, logp FROM "
                                            "interactions WHERE kind = 'step' LIMIT 50", -1,
                                            &st, NULL), SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW) {
            const act_record *a =
                &rec->acts[sqlite3_column_int(st, 0)][sqlite3_column_int(st, 1)];
            char want[64];
            snprintf(want, sizeof want, "%d %d %d %d", a->slate[0], a->slate[1], a->slate[2],
                     a->slate[3]);
            ck_assert_str_eq((const char *)sqlite3_column_text(st, 2), want);
            ck_assert(sqlite3_column_double(st, 3) == 0.0);
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        interaction_log_free(&logs);
        free(rec);
        run_result_free(&res);
        remove_db();
    }
}
END_TEST

/* The random agent logs the exact probability of its ordered slate; cf (with
 * epsilon exploration) a finite logs-probability <= 0, 0 exactly when nothing
 * was explored; a run without log_interactions logs nothing. */
START_TEST(test_behaviour_logp)
{
    char err[ERR_LEN];
    new_db();
    run_spec r = logged_spec(agent_find("random"), 3, 0.0);
    run_result res;
    run_and_store(&r, &res);
    /* 1 / (80 * 79 * 78 * 77): an ordered draw of 4 of the 80 candidates */
    double want = -log(80.0 * 79.0 * 78.0 * 77.0);
    ck_assert_uint_gt(res.n_interactions, 100);
    for (size_t i = 0; i < res.n_interactions; i++)
        ck_assert_double_eq_tol(res.interactions[i].logp, want, 1e-12);
    run_result_free(&res);

    r = logged_spec(agent_find("cf"), 3, 0.0);
    r.run_id++;
    run_and_store(&r, &res);
    long explored = 0;
    for (size_t i = 0; i < res.n_interactions; i++) {
        ck_assert(isfinite(res.interactions[i].logp));
        ck_assert(res.interactions[i].logp <= 0.0);
        explored += res.interactions[i].logp < 0.0;
    }
    ck_assert_int_gt(explored, 0);
    run_result_free(&res);

    r.settings.log_interactions = 0;
    ck_assert_int_eq(run_execute(&r, NULL, &res, err), DS_OK);
    ck_assert_uint_eq(res.n_interactions, 0);
    run_result_free(&res);

    /* --agent chooses the runs; an agent without logs is refused by name */
    interaction_log logs;
    const log_selection random_runs = {.agent = "random"}, ppo_runs = {.agent = "ppo"};
    ck_assert_int_eq(interaction_log_read(db_file, &random_runs, &logs, err), DS_OK);
    ck_assert_int_eq(logs.n_runs, 1);
    interaction_log_free(&logs);
    ck_assert_int_eq(interaction_log_read(db_file, &ppo_runs, &logs, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "agent 'ppo'"));
    /* --run-seed: the runs of one seed's world (both runs so far have seed 3) */
    const log_selection seed3 = {.by_seed = 1, .seed = 3}, seed4 = {.by_seed = 1, .seed = 4};
    ck_assert_int_eq(interaction_log_read(db_file, &seed3, &logs, err), DS_OK);
    ck_assert_int_eq(logs.n_runs, 2);
    interaction_log_free(&logs);
    ck_assert_int_eq(interaction_log_read(db_file, &seed4, &logs, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "no finished run of seed 4 that logged"));
    /* logs of two seeds are two worlds: refused unless one is chosen */
    r = logged_spec(agent_find("random"), 4, 0.0);
    r.run_id += 7;
    run_and_store(&r, &res);
    run_result_free(&res);
    ck_assert_int_eq(interaction_log_read(db_file, NULL, &logs, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "come from 2 seeds, each its own world"));
    ck_assert_int_eq(interaction_log_read(db_file, &seed4, &logs, err), DS_OK);
    ck_assert_int_eq(logs.n_runs, 1);
    interaction_log_free(&logs);
    remove_db();
}
END_TEST

/* sample_explore's logs-probability against the frequencies of 200,000 draws:
 * n 6, k 3, epsilon 0.4, every one of the 6*5*4 = 120 ordered slates. Each
 * frequency within 5 binomial standard errors of exp(logp) (a false failure
 * about 1 in 10^4 per slate); the probabilities of all 120 sum to 1. */
START_TEST(test_explore_logprob)
{
    enum { N = 6, K = 3, DRAWS = 200000 };
    const int candidates[N] = {10, 11, 12, 13, 14, 15};
    static long count[N * N * N];
    static double prob[N * N * N];
    memset(count, 0, sizeof count);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 11);
    for (int i = 0; i < DRAWS; i++) {
        int slate[K] = {12, 10, 15};
        double lp = sample_explore(r, NULL, candidates, N, slate, K, 0.4);
        int key = ((slate[0] - 10) * N + slate[1] - 10) * N + slate[2] - 10;
        if (count[key]++ == 0)
            prob[key] = exp(lp);
        else
            ck_assert(exp(lp) == prob[key]);
    }
    double total = 0.0;
    int distinct = 0;
    for (int key = 0; key < N * N * N; key++) {
        if (!count[key])
            continue;
        distinct++;
        total += prob[key];
        double se = sqrt(prob[key] * (1 - prob[key]) / DRAWS);
        ck_assert_msg(fabs((double)count[key] / DRAWS - prob[key]) < 5 * se + 1e-12,
                      "slate %d: frequency %g, probability %g", key,
                      (double)count[key] / DRAWS, prob[key]);
    }
    ck_assert_int_eq(distinct, N * (N - 1) * (N - 2));
    ck_assert_double_eq_tol(total, 1.0, 1e-9);
    /* epsilon 0 keeps the slate: probability 1 */
    int slate[K] = {12, 10, 15};
    ck_assert(sample_explore(r, NULL, candidates, N, slate, K, 0.0) == 0.0);
    gsl_rng_free(r);
}
END_TEST

/* The memo gives the bits the direct computation gives, and starts over when n,
 * k or epsilon change: twin generators, one explorer with a memo and one
 * without, through changes of all three (and 70 changed slots, past what the
 * memo keeps). */
START_TEST(test_explore_memo)
{
    enum { N = 200, K_MAX = 80 };
    int candidates[N];
    for (int i = 0; i < N; i++)
        candidates[i] = i;
    const struct { int n, k; double epsilon; } settings[] = {
        {N, 10, 0.4}, {N, 10, 0.1}, {N - 50, 10, 0.1}, {N, 3, 0.1}, {N, K_MAX, 0.9}, {N, 10, 0.4}};
    gsl_rng *with = gsl_rng_alloc(gsl_rng_mt19937), *without = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(with, 5);
    gsl_rng_set(without, 5);
    sample_explore_memo memo = {0};
    int beyond_memo = 0;
    for (size_t s = 0; s < sizeof settings / sizeof settings[0]; s++) {
        for (int draw = 0; draw < 2000; draw++) {
            int a[K_MAX], b[K_MAX], k = settings[s].k;
            for (int j = 0; j < k; j++)
                a[j] = b[j] = j;
            double lp_memo = sample_explore(with, &memo, candidates, settings[s].n, a, k,
                                            settings[s].epsilon);
            double lp = sample_explore(without, NULL, candidates, settings[s].n, b, k,
                                       settings[s].epsilon);
            ck_assert(memcmp(&lp_memo, &lp, sizeof lp) == 0);
            ck_assert(memcmp(a, b, (size_t)k * sizeof *a) == 0);
            int changed = 0;
            for (int j = 0; j < k; j++)
                changed += a[j] != j;
            beyond_memo |= changed >= 64;
        }
    }
    ck_assert(beyond_memo);
    gsl_rng_free(with);
    gsl_rng_free(without);
}
END_TEST

/* `divsim export --table interactions`: a header and one CSV row per row. */
START_TEST(test_export)
{
    new_db();
    run_spec r = logged_spec(agent_find("random"), 4, 0.3);
    run_result res;
    run_and_store(&r, &res);
    char out_name[80], err[ERR_LEN];
    snprintf(out_name, sizeof out_name, "%s.csv", db_file);
    FILE *out = fopen(out_name, "w+");
    char a0[] = "divsim", a1[] = "export", a3[] = "--table", a4[] = "interactions";
    char *argv[] = {a0, a1, db_file, a3, a4, NULL};
    ck_assert_msg(export_command(5, argv, out, err) == DS_OK, "%s", err);
    rewind(out);
    char line[512];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, out));
    ck_assert_str_eq(line, "run_id,seq,kind,phase,episode,user_id,step,time,slate,click_pos,"
                           "item,purchased,logp\r\n");
    size_t rows = 0, late = 0;
    while (fgets(line, sizeof line, out)) {
        rows++;
        late += strstr(line, ",late_purchase,") != NULL;
    }
    ck_assert_uint_eq(rows, res.n_interactions);
    ck_assert_uint_gt(late, 0);
    fclose(out);
    unlink(out_name);
    run_result_free(&res);
    remove_db();
}
END_TEST

/* ---- pretraining ---- */

/* A logs of cf on a small shop: 200 users, 100 items, 4,000 sessions. */
static void cf_log(interaction_log *logs)
{
    char err[ERR_LEN];
    static run_param params[2] = {{"env.items", "100"}, {"env.slate", "5"}};
    run_spec r = logged_spec(agent_find("cf"), 1, 0.0);
    ck_assert_int_eq(param_defaults(&shop_env.params, env_config, err), DS_OK);
    shop_config *c = (shop_config *)env_config;
    c->items = 100;
    c->users = 200;
    c->topics = 5;
    c->dim = 6;
    c->slate = 5;
    r.params = params;
    r.settings.train_episodes = 4000;
    r.settings.eval_episodes = 100;
    r.settings.history = 10;
    new_db();
    run_result res;
    run_and_store(&r, &res);
    run_result_free(&res);
    ck_assert_msg(interaction_log_read(db_file, &(const log_selection){.agent = "cf"}, logs, err) == DS_OK, "%s", err);
    remove_db();
}

static void small_pretrain_config(pretrain_config *cfg)
{
    pretrain_config_defaults(cfg);
    cfg->tf.context = 8;
    cfg->tf.width = 16;
    cfg->tf.layers = 1;
    cfg->epochs = 12;
    cfg->batch = 16;
    cfg->lr = 3e-3;
    cfg->seed = 1;
}

/* On cf's logs the pretrained model's held-out next-click cross-entropy is
 * below that of popularity by more than 0.2 nats per click (0.43 at this
 * seed when written, over 482 held-out next clicks; three seeds of the same
 * setting through `divsim pretrain` gave 0.36 to 0.45), far
 * below uniform, and below the untrained model's (about ln 100 = 4.6). The
 * checkpoint it writes loads into a model of its configuration. Pretraining
 * again with the same seed gives the same numbers and the same file. */
START_TEST(test_pretrain_beats_popularity)
{
    char err[ERR_LEN];
    interaction_log logs;
    cf_log(&logs);
    pretrain_config cfg;
    small_pretrain_config(&cfg);
    char ckpt[2][80];
    pretrain_report rep[2];
    for (int i = 0; i < 2; i++) {
        snprintf(ckpt[i], sizeof ckpt[i], "/tmp/check_pretrain_%ld_%d.ckpt", (long)getpid(), i);
        if (i == 1)
            cfg.epochs = 3; /* the repeat: enough to compare, quicker */
        ck_assert_msg(pretrain_run(&logs, &cfg, ckpt[i], &rep[i], NULL, err) == DS_OK, "%s",
                      err);
    }
    ck_assert_int_gt(rep[0].heldout_targets, 300);
    ck_assert_msg(rep[0].heldout_loss < rep[0].popularity_loss - 0.2,
                  "pretrained %.4f, popularity %.4f", rep[0].heldout_loss,
                  rep[0].popularity_loss);
    ck_assert(rep[0].popularity_loss < rep[0].uniform_loss - 1.0);
    ck_assert(rep[0].heldout_loss < rep[0].initial_loss - 1.0);
    ck_assert_double_eq_tol(rep[0].uniform_loss, log(100.0), 1e-12);

    ck_assert(rep[1].initial_loss == rep[0].initial_loss); /* same seed, same init */

    /* deterministic: a third run as the second, file for file */
    char third[80];
    snprintf(third, sizeof third, "/tmp/check_pretrain_%ld_3.ckpt", (long)getpid());
    pretrain_report rep3;
    ck_assert_int_eq(pretrain_run(&logs, &cfg, third, &rep3, NULL, err), DS_OK);
    ck_assert(rep3.heldout_loss == rep[1].heldout_loss);
    ck_assert(rep3.train_loss == rep[1].train_loss);
    FILE *a = fopen(ckpt[1], "rb"), *b = fopen(third, "rb");
    int ca, cb;
    long bytes = 0;
    do {
        ca = fgetc(a);
        cb = fgetc(b);
        ck_assert_int_eq(ca, cb);
        bytes++;
    } while (ca != EOF);
    ck_assert_int_gt(bytes, 8 * 1000);
    fclose(a);
    fclose(b);

    /* the file loads into a transformer of the same configuration */
    env_spec spec = {.n_items = 100, .n_users = 1, .slate = 1, .n_topics = 1, .max_steps = 1};
    int topics[100] = {0};
    spec.item_topic = topics;
    transformer tf;
    nn_layout layout;
    nn_layout_init(&layout);
    ck_assert_int_eq(transformer_init(&tf, &spec, &cfg.tf, &layout, err), DS_OK);
    double *w = calloc(layout.size, sizeof *w);
    ck_assert_msg(checkpoint_load(ckpt[0], &cfg.tf, 100, &layout, w, err) == DS_OK, "%s", err);
    free(w);
    for (int i = 0; i < 2; i++)
        unlink(ckpt[i]);
    unlink(third);
    interaction_log_free(&logs);
}
END_TEST

START_TEST(test_pretrain_refusals)
{
    char err[ERR_LEN];
    interaction_log logs;
    new_db();
    ck_assert_int_eq(interaction_log_read(db_file, NULL, &logs, err), DS_EIO);
    store *s;
    ck_assert_int_eq(store_open(db_file, &s, err), DS_OK);
    store_close(s);
    ck_assert_int_eq(interaction_log_read(db_file, NULL, &logs, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "log_interactions = true"));
    remove_db();
    pretrain_config cfg;
    pretrain_config_defaults(&cfg);
    cfg.holdout = 1.0;
    pretrain_report rep;
    interaction_log empty = {0};
    ck_assert_int_eq(pretrain_run(&empty, &cfg, NULL, &rep, NULL, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "holdout"));
}
END_TEST

/* The command: usage errors name the problem; a run prints the comparison. */
START_TEST(test_pretrain_command)
{
    char err[ERR_LEN];
    char a0[] = "divsim", a1[] = "pretrain", o[] = "-o", bad[] = "--frobnicate",
         ep[] = "--epochs", one[] = "1", neg[] = "-3", ctx[] = "--context", big[] = "65",
         q[] = "-q", width[] = "--width", w8[] = "8", by_agent[] = "--agent", cf[] = "cf";
    char out_name[80];
    new_db();
    snprintf(out_name, sizeof out_name, "%s.ckpt", db_file);
    char *no_out[] = {a0, a1, db_file, NULL};
    ck_assert_int_eq(pretrain_command(3, no_out, stdout, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "usage"));
    char *unknown[] = {a0, a1, db_file, o, out_name, bad, NULL};
    ck_assert_int_eq(pretrain_command(6, unknown, stdout, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "'--frobnicate'"));
    char *negative[] = {a0, a1, db_file, o, out_name, ep, neg, NULL};
    ck_assert_int_eq(pretrain_command(7, negative, stdout, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "'--epochs'"));
    char *too_long[] = {a0, a1, db_file, o, out_name, ctx, big, NULL};
    ck_assert_int_eq(pretrain_command(7, too_long, stdout, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "[1, 64]"));

    run_spec r = logged_spec(agent_find("cf"), 2, 0.0);
    run_result res;
    run_and_store(&r, &res);
    run_result_free(&res);
    char *ok[] = {a0, a1, db_file, o, out_name, ep, one, width, w8, by_agent, cf, q, NULL};
    FILE *out = tmpfile();
    ck_assert_msg(pretrain_command(12, ok, out, err) == DS_OK, "%s", err);
    rewind(out);
    char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, out);
    text[n] = '\0';
    fclose(out);
    ck_assert_ptr_nonnull(strstr(text, "  popularity  "));
    ck_assert_ptr_nonnull(strstr(text, "(ln 80)"));
    ck_assert_ptr_null(strstr(text, "epoch 1:")); /* -q: no per-epoch lines */
    ck_assert_int_eq(access(out_name, R_OK), 0);
    unlink(out_name);
    remove_db();
}
END_TEST

static Suite *pretrain_suite(void)
{
    Suite *s = suite_create("pretrain");
    TCase *tc = tcase_create("logs");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_log_rebuilds_histories);
    tcase_add_test(tc, test_behaviour_logp);
    tcase_add_test(tc, test_explore_logprob);
    tcase_add_test(tc, test_explore_memo);
    tcase_add_test(tc, test_export);
    suite_add_tcase(s, tc);
    TCase *train = tcase_create("train");
    tcase_set_timeout(train, 120);
    tcase_add_test(train, test_pretrain_beats_popularity);
    tcase_add_test(train, test_pretrain_refusals);
    tcase_add_test(train, test_pretrain_command);
    suite_add_tcase(s, train);
    return s;
}

CHECK_MAIN(pretrain_suite)
