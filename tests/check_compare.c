/* Tests of `divsim compare` (compare_command): the numbers of the summaries
 * and of the tests against a baseline, the grouping options, the four output
 * formats, and the error cases.
 *
 * The databases are written with the real store API from hand-made runs, in
 * one mkdtemp directory removed at the end:
 *   tests.db  random and cf on seeds 1..10, popularity on seeds 11..20, so cf
 *             against random is paired and popularity against random is Welch;
 *   sweep.db  cf at agent.cf.factors = 8, 16, 32 and random, seeds 1..3;
 *   envs.db   random and cf on two environments, seeds 1..2;
 *   empty.db  the schema and no run;  failed.db  one failed run;
 *   foreign.db  an SQLite file with someone else's table.
 *
 * Expected values: the reward column of tests.db is Student's sleep data (see
 * tests/check_stats.c: R's t.test output, and mpmath quadrature of the t
 * density for every digit), and the gini column is built so that t and df are
 * exact by hand; their p-values come from the same quadrature. Tolerances as in
 * check_stats.c: 1e-10 relative for arithmetic, 1e-8 for p-values. */
#include "../sim/common.h"
#include "../sim/report.h"
#include "../sim/store.h"

#include <check.h>
#include <dirent.h>
#include <gsl/gsl_errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARITH_TOL 1e-10
#define P_TOL 1e-8

static char tmpdir[1024];

static void db_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", tmpdir, name);
}

/* ---- fixtures ---- */

static const env_type env_shop = {.name = "shop"};
static const env_type env_bandit = {.name = "bandit"};
static const agent_type agent_random = {.name = "random"};
static const agent_type agent_popularity = {.name = "popularity"};
static const agent_type agent_cf = {.name = "cf"};

typedef struct {
    const env_type *env;
    const agent_type *agent;
    uint64_t seed;
    const char *key, *value; /* an extra parameter (a sweep axis), or NULL */
    double reward;           /* of each eval episode; train episodes get reward + 100 */
    int purchases;           /* of each eval episode */
    double ild;              /* of each eval episode */
    double coverage, gini;   /* of the eval phase; train: 0.01 and 0.99 */
    run_status status;
} fixture;

static int by_key(const void *a, const void *b)
{
    return strcmp(((const run_param *)a)->key, ((const run_param *)b)->key);
}

static void set_param(run_param *p, const char *key, const char *value)
{
    snprintf(p->key, sizeof p->key, "%s", key);
    snprintf(p->value, sizeof p->value, "%s", value);
}

/* One run: a train episode, two equal eval episodes, both phase summaries. */
static int add_run(store *s, const fixture *f, char *err)
{
    run_param params[4];
    size_t n = 0;
    set_param(&params[n++], "agent.kind", f->agent->name);
    set_param(&params[n++], "env.kind", f->env->name);
    set_param(&params[n++], "reward.diversity_bonus", "0.1");
    if (f->key)
        set_param(&params[n++], f->key, f->value);
    qsort(params, n, sizeof *params, by_key);
    char config[4 * (sizeof params->key + sizeof params->value + 4)] = "";
    for (size_t i = 0; i < n; i++) {
        strcat(config, params[i].key);
        strcat(config, " = ");
        strcat(config, params[i].value);
        strcat(config, "\n");
    }
    run_spec spec = {.env = f->env, .agent = f->agent, .seed = f->seed, .params = params,
                     .n_params = n, .config_text = config};
    snprintf(spec.settings.name, sizeof spec.settings.name, "fixture");
    spec.config_hash = hash_bytes(config, strlen(config), HASH_INIT);
    spec.run_id = (int64_t)(hash_bytes(&f->seed, sizeof f->seed, spec.config_hash) &
                            (uint64_t)INT64_MAX);

    episode_row episodes[3];
    for (int i = 0; i < 3; i++)
        episodes[i] = (episode_row){.episode = i, .phase = i ? PHASE_EVAL : PHASE_TRAIN,
                                    .length = 1, .reward = f->reward, .purchases = f->purchases,
                                    .ild = f->ild, .novelty = NAN};
    episodes[0].reward += 100.0;
    episodes[0].purchases += 10;
    run_result res = {.status = f->status, .episodes = episodes, .n_episodes = 3,
                      .n_phases = 2};
    res.phases[0] = (window_row){.window = -1, .phase = PHASE_TRAIN, .episodes = 1,
                                 .coverage = 0.01, .gini = 0.99};
    res.phases[1] = (window_row){.window = -1, .phase = PHASE_EVAL, .episodes = 2,
                                 .coverage = f->coverage, .gini = f->gini};
    int rc = store_run_start(s, &spec, err);
    return rc == DS_OK ? store_run_finish(s, &spec, &res, err) : rc;
}

/* Student's sleep data: drug 1 for random, drug 2 for cf and popularity. */
static const double drug1[10] = {0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0};
static const double drug2[10] = {1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4};
/* Gini of cf = gini of random (i + 1) + these: mean 2, sd 2/3. */
static const double gini_shift[10] = {1, 2, 3, 2, 2, 1, 2, 3, 2, 2};

static int build_tests_db(store *s, char *err)
{
    int rc = DS_OK;
    for (int i = 0; rc == DS_OK && i < 10; i++) {
        fixture r = {.env = &env_shop, .agent = &agent_random, .seed = (uint64_t)i + 1,
                     .reward = drug1[i], .purchases = 1, .ild = 0.5, .coverage = 1.0,
                     .gini = i + 1.0, .status = RUN_DONE};
        fixture c = {.env = &env_shop, .agent = &agent_cf, .seed = (uint64_t)i + 1,
                     .reward = drug2[i], .purchases = 2, .ild = 0.25, .coverage = 0.5,
                     .gini = i + 1.0 + gini_shift[i], .status = RUN_DONE};
        fixture p = {.env = &env_shop, .agent = &agent_popularity, .seed = (uint64_t)i + 11,
                     .reward = drug2[i], .purchases = 3, .ild = 0.75, .coverage = 0.25,
                     .gini = i + 3.0, .status = RUN_DONE};
        rc = add_run(s, &r, err);
        if (rc == DS_OK)
            rc = add_run(s, &c, err);
        if (rc == DS_OK)
            rc = add_run(s, &p, err);
    }
    /* A failed and a running run: never counted. */
    fixture bad = {.env = &env_shop, .agent = &agent_random, .seed = 99, .reward = 1e6,
                   .purchases = 1000, .status = RUN_FAILED};
    if (rc == DS_OK)
        rc = add_run(s, &bad, err);
    bad.seed = 98;
    bad.status = RUN_RUNNING;
    return rc == DS_OK ? add_run(s, &bad, err) : rc;
}

/* cf rewards per factors value and seed 1..3; random 0.5 throughout.
 * 16 - 8 = {1, 0.5, 1.5}: mean 1, sd 1/2, t = 2 sqrt(3), df 2, d_z = 2.
 * 32 - 8 = {0.5, -1, 0.5}: mean 0, t = 0, p = 1, d_z = 0. */
static const char *const sweep_factors[3] = {"8", "16", "32"};
static const double sweep_reward[3][3] = {{1.0, 2.0, 3.0}, {2.0, 2.5, 4.5}, {1.5, 1.0, 3.5}};

static int build_sweep_db(store *s, char *err)
{
    int rc = DS_OK;
    for (int seed = 1; rc == DS_OK && seed <= 3; seed++) {
        for (int f = 0; rc == DS_OK && f < 3; f++) {
            fixture c = {.env = &env_shop, .agent = &agent_cf, .seed = (uint64_t)seed,
                         .key = "agent.cf.factors", .value = sweep_factors[f],
                         .reward = sweep_reward[f][seed - 1], .purchases = 1,
                         .status = RUN_DONE};
            rc = add_run(s, &c, err);
        }
        fixture r = {.env = &env_shop, .agent = &agent_random, .seed = (uint64_t)seed,
                     .reward = 0.5, .status = RUN_DONE};
        if (rc == DS_OK)
            rc = add_run(s, &r, err);
    }
    return rc;
}

/* shop: random {1, 2}, cf {2, 4}: differences {1, 2}, t = 3, df 1.
 * bandit: random {10, 20}, cf {10, 21}: differences {0, 1}, t = 1, df 1. */
static int build_envs_db(store *s, char *err)
{
    const double shop_random[2] = {1, 2}, shop_cf[2] = {2, 4};
    const double bandit_random[2] = {10, 20}, bandit_cf[2] = {10, 21};
    int rc = DS_OK;
    for (int i = 0; rc == DS_OK && i < 2; i++) {
        fixture runs[4] = {
            {.env = &env_shop, .agent = &agent_random, .reward = shop_random[i]},
            {.env = &env_shop, .agent = &agent_cf, .reward = shop_cf[i]},
            {.env = &env_bandit, .agent = &agent_random, .reward = bandit_random[i]},
            {.env = &env_bandit, .agent = &agent_cf, .reward = bandit_cf[i]},
        };
        for (int j = 0; rc == DS_OK && j < 4; j++) {
            runs[j].seed = (uint64_t)i + 1;
            runs[j].status = RUN_DONE;
            rc = add_run(s, &runs[j], err);
        }
    }
    return rc;
}

static int build_failed_db(store *s, char *err)
{
    fixture f = {.env = &env_shop, .agent = &agent_random, .seed = 1, .status = RUN_FAILED};
    return add_run(s, &f, err);
}

static int build_db(const char *name, int (*fill)(store *, char *))
{
    char path[2048], err[ERR_LEN] = "";
    db_path(path, sizeof path, name);
    store *s;
    int rc = store_open(path, &s, err);
    if (rc == DS_OK && fill)
        rc = fill(s, err);
    store_close(s);
    if (rc != DS_OK)
        fprintf(stderr, "check_compare: building %s: %s\n", name, err);
    return rc;
}

static int build_foreign_db(void)
{
    char path[2048];
    db_path(path, sizeof path, "foreign.db");
    sqlite3 *db;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "CREATE TABLE recipes(name TEXT)", NULL, NULL, NULL);
    sqlite3_close(db);
    return rc == SQLITE_OK ? DS_OK : DS_EIO;
}

/* ---- running the command ---- */

typedef struct {
    int rc;
    char *text; /* what was written to out */
    char err[ERR_LEN];
} outcome;

/* compare_command on the database `name` of the temporary directory (or the
 * literal path when name contains a '/'), then the options; NULL-terminated. */
static outcome run_compare(const char *name, ...)
{
    char *argv[32];
    int argc = 0;
    char path[2048];
    if (strchr(name, '/'))
        snprintf(path, sizeof path, "%s", name);
    else
        db_path(path, sizeof path, name);
    argv[argc++] = strdup("divsim");
    argv[argc++] = strdup("compare");
    argv[argc++] = strdup(path);
    va_list ap;
    va_start(ap, name);
    for (const char *arg; (arg = va_arg(ap, const char *)) != NULL && argc < 31;)
        argv[argc++] = strdup(arg);
    va_end(ap);
    argv[argc] = NULL;

    outcome o = {0};
    size_t len = 0;
    FILE *out = open_memstream(&o.text, &len);
    ck_assert_ptr_nonnull(out);
    o.rc = compare_command(argc, argv, out, o.err);
    ck_assert_int_eq(fclose(out), 0);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    return o;
}

static outcome run_ok(outcome o)
{
    ck_assert_msg(o.rc == DS_OK, "compare failed (%d): %s", o.rc, o.err);
    return o;
}

static void assert_fails(outcome o, int rc, const char *want1, const char *want2)
{
    ck_assert_msg(o.rc == rc, "got %d, want %d (%s)", o.rc, rc, o.err);
    ck_assert_msg(strstr(o.err, want1), "message '%s' lacks '%s'", o.err, want1);
    ck_assert_msg(!want2 || strstr(o.err, want2), "message '%s' lacks '%s'", o.err, want2);
    ck_assert_msg(o.text[0] == '\0', "output on error: %s", o.text);
    free(o.text);
}

static void assert_contains(const char *text, const char *want)
{
    ck_assert_msg(strstr(text, want), "output lacks\n%s\nin\n%s", want, text);
}

static void assert_close(double got, double want, double rel)
{
    ck_assert_msg(fabs(got - want) <= rel * fmax(fabs(want), 1e-300),
                  "got %.15g, want %.15g", got, want);
}

/* The line of text that starts with prefix and contains `also`, copied. */
static void find_line(const char *text, const char *prefix, const char *also, char *line,
                      size_t n)
{
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, "\n");
        if (strncmp(p, prefix, strlen(prefix)) == 0) {
            snprintf(line, n, "%.*s", (int)len, p);
            if (!also || strstr(line, also))
                return;
        }
        p += len + (p[len] == '\n');
    }
    ck_abort_msg("no line starting with '%s' (and containing '%s') in\n%s", prefix,
                 also ? also : "", text);
}

/* Field number i of a CSV line without quoted fields. */
static void csv_field(const char *line, int i, char *out, size_t n)
{
    const char *p = line;
    for (int k = 0; k < i; k++) {
        p = strchr(p, ',');
        ck_assert_msg(p != NULL, "no field %d in '%s'", i, line);
        p++;
    }
    snprintf(out, n, "%.*s", (int)strcspn(p, ","), p);
}

/* The index of a header column. */
static int csv_column(const char *text, const char *name)
{
    char header[1024], field[128];
    snprintf(header, sizeof header, "%.*s", (int)strcspn(text, "\n"), text);
    for (int i = 0; i < 40; i++) {
        csv_field(header, i, field, sizeof field);
        if (strcmp(field, name) == 0)
            return i;
    }
    ck_abort_msg("no column '%s' in '%s'", name, header);
    return -1;
}

static double csv_number(const char *text, const char *line, const char *column)
{
    char field[128];
    csv_field(line, csv_column(text, column), field, sizeof field);
    ck_assert_msg(field[0] != '\0', "empty '%s' in '%s'", column, line);
    return strtod(field, NULL);
}

static void csv_text(const char *text, const char *line, const char *column, char *out,
                     size_t n)
{
    csv_field(line, csv_column(text, column), out, n);
}

/* ---- the default table ---- */

START_TEST(test_default_text_unchanged)
{
    /* The layout of the table before options existed, with values by hand:
     * random's gini is 1..10, mean 5.5, sd sqrt(110/12), half width
     * t_{9,0.975} sd / sqrt(10) = 2.16585 (t_{9,0.975} = 2.262157163). */
    outcome o = run_ok(run_compare("tests.db", NULL));
    const char *want =
        "eval phase, mean ± 95% CI half-width over seeds (Student t)\n"
        "\n"
        "env      agent          n  purchases/episode    ILD                  coverage   "
        "          Gini               \n"
        "shop     random        10     1.0000 ±0.0000       0.5000 ±0.0000       1.0000 "
        "±0.0000       5.5000 ±2.1659  \n"
        "shop     popularity    10     3.0000 ±0.0000       0.7500 ±0.0000       0.2500 "
        "±0.0000       7.5000 ±2.1659  \n";
    ck_assert_msg(strncmp(o.text, want, strlen(want)) == 0, "got\n%s\nwant\n%s", o.text,
                  want);
    /* cf: gini mean 5.5 + 2, sd of i + 1 + shift: by the same formula. */
    char line[512];
    find_line(o.text, "shop     cf            10     2.0000 ±0.0000       0.2500 ±0.0000"
                      "       0.5000 ±0.0000       7.5000 ±", NULL, line, sizeof line);
    ck_assert(strstr(o.text, "p(Holm)") == NULL);
    ck_assert(strstr(o.text, "config") == NULL);

    /* report_compare on an opened database prints the same. */
    char path[2048], err[ERR_LEN];
    db_path(path, sizeof path, "tests.db");
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ck_assert_int_eq(report_compare(out, db, path, err), DS_OK);
    fclose(out);
    sqlite3_close(db);
    ck_assert_str_eq(text, o.text);
    free(text);
    free(o.text);
}
END_TEST

/* ---- tests against a baseline ---- */

START_TEST(test_paired_and_welch)
{
    outcome o = run_ok(run_compare("tests.db", "--metric", "reward", "--baseline", "random",
                                   "--format", "csv", NULL));
    const char *t = o.text;
    char line[1024], field[64];
    /* Header: the grouping keys (env, agent, config), then the statistics. */
    ck_assert_msg(strncmp(t, "env,agent,config,metric,phase,n,mean,sd,ci95_half_width,baseline,"
                             "test,diff,t,df,p,p_holm,effect,effect_kind\n", 97) == 0, "%s", t);

    /* The baseline: drug 1, mean 0.75, sd sqrt(5761/1800), half width by
     * quadrature 1.27978041352623; the failed and running runs left out. */
    find_line(t, "shop,random,", ",reward,", line, sizeof line);
    assert_close(csv_number(t, line, "n"), 10, 0);
    assert_close(csv_number(t, line, "mean"), 0.75, ARITH_TOL);
    assert_close(csv_number(t, line, "sd"), sqrt(5761.0 / 1800.0), ARITH_TOL);
    assert_close(csv_number(t, line, "ci95_half_width"), 1.27978041352623, ARITH_TOL);
    csv_text(t, line, "test", field, sizeof field);
    ck_assert_str_eq(field, "baseline");
    csv_text(t, line, "p", field, sizeof field);
    ck_assert_str_eq(field, "");

    /* cf, same seeds: paired. R: t = 4.0621, df = 9, p = 0.002833 (signs as
     * cf minus random). Holm over 2 tests: 2 p. */
    find_line(t, "shop,cf,", ",reward,", line, sizeof line);
    csv_text(t, line, "test", field, sizeof field);
    ck_assert_str_eq(field, "paired");
    csv_text(t, line, "baseline", field, sizeof field);
    ck_assert_str_eq(field, "random");
    assert_close(csv_number(t, line, "diff"), 1.58, ARITH_TOL);
    assert_close(csv_number(t, line, "t"), 4.06212768338204, ARITH_TOL);
    assert_close(csv_number(t, line, "df"), 9, 0);
    assert_close(csv_number(t, line, "p"), 0.00283289019738427, P_TOL);
    assert_close(csv_number(t, line, "p_holm"), 2 * 0.00283289019738427, P_TOL);
    assert_close(csv_number(t, line, "effect"), 1.28455756259105, ARITH_TOL);
    csv_text(t, line, "effect_kind", field, sizeof field);
    ck_assert_str_eq(field, "d_z");

    /* popularity, other seeds: Welch. R: t = 1.8608, df = 17.776, p = 0.07939.
     * Holm: max(2 p_cf, 1 p_pop) = p_pop. */
    find_line(t, "shop,popularity,", ",reward,", line, sizeof line);
    csv_text(t, line, "test", field, sizeof field);
    ck_assert_str_eq(field, "welch");
    assert_close(csv_number(t, line, "t"), 1.86081346748685, ARITH_TOL);
    assert_close(csv_number(t, line, "df"), 17.7764735161785, ARITH_TOL);
    assert_close(csv_number(t, line, "p"), 0.0793941401873581, P_TOL);
    assert_close(csv_number(t, line, "p_holm"), 0.0793941401873581, P_TOL);
    assert_close(csv_number(t, line, "effect"), 0.797018500447446, ARITH_TOL);
    csv_text(t, line, "effect_kind", field, sizeof field);
    ck_assert_str_eq(field, "hedges_g");
    free(o.text);
}
END_TEST

START_TEST(test_holm_over_groups_and_metrics)
{
    /* Four comparisons. gini: cf - random = shift, t = 2 / ((2/3)/sqrt(10)) =
     * 3 sqrt(10), df 9, d_z = 3; popularity - random = 2 with equal variances
     * 110/12: t = 2 / sqrt(11/6), df 18, g = (1 - 3/71) 2 / sqrt(110/12).
     * Raw p (quadrature): reward cf 0.00283289019738427, reward popularity
     * 0.0793941401873581, gini cf 5.53772779186232e-6, gini popularity
     * 0.156932195846855. Holm by hand: sorted, times 4, 3, 2, 1, running max:
     * 2.21509111674493e-5, 0.00849867059215281, 0.158788280374716 (twice). */
    outcome o = run_ok(run_compare("tests.db", "--metric", "reward,gini", "--baseline",
                                   "random", "--format", "csv", NULL));
    const char *t = o.text;
    char line[1024];
    find_line(t, "shop,cf,", ",gini,", line, sizeof line);
    assert_close(csv_number(t, line, "t"), 3 * sqrt(10.0), ARITH_TOL);
    assert_close(csv_number(t, line, "effect"), 3.0, ARITH_TOL);
    assert_close(csv_number(t, line, "p"), 5.53772779186232e-6, P_TOL);
    assert_close(csv_number(t, line, "p_holm"), 2.21509111674493e-5, P_TOL);
    find_line(t, "shop,cf,", ",reward,", line, sizeof line);
    assert_close(csv_number(t, line, "p_holm"), 0.00849867059215281, P_TOL);
    find_line(t, "shop,popularity,", ",gini,", line, sizeof line);
    assert_close(csv_number(t, line, "t"), 2 / sqrt(11.0 / 6.0), ARITH_TOL);
    assert_close(csv_number(t, line, "df"), 18.0, ARITH_TOL);
    assert_close(csv_number(t, line, "effect"), (1 - 3.0 / 71.0) * 2 / sqrt(110.0 / 12.0),
                 ARITH_TOL);
    assert_close(csv_number(t, line, "p"), 0.156932195846855, P_TOL);
    assert_close(csv_number(t, line, "p_holm"), 0.158788280374716, P_TOL);
    find_line(t, "shop,popularity,", ",reward,", line, sizeof line);
    assert_close(csv_number(t, line, "p_holm"), 0.158788280374716, P_TOL);
    free(o.text);
}
END_TEST

START_TEST(test_text_with_baseline)
{
    outcome o = run_ok(run_compare("tests.db", "--metric", "reward,purchases", "--baseline",
                                   "random", NULL));
    char line[512];
    find_line(o.text, "env ", "p(Holm)", line, sizeof line);
    /* cf: reward p_holm 2 * 0.002833 = 0.006, d_z 1.28; purchases differ by
     * exactly 1 on every seed: no spread, no test (n/a, not counted). */
    find_line(o.text, "shop     cf ", NULL, line, sizeof line);
    assert_contains(line, "0.006     d_z=1.28");
    assert_contains(line, "n/a       n/a");
    find_line(o.text, "shop     popularity ", NULL, line, sizeof line);
    assert_contains(line, "0.079     g=0.80");
    find_line(o.text, "shop     random ", NULL, line, sizeof line);
    assert_contains(line, "baseline");
    assert_contains(o.text, "baseline agent 'random' of the same env");
    assert_contains(o.text, "Holm-adjusted over 2 comparisons");
    free(o.text);
}
END_TEST

/* ---- grouping ---- */

START_TEST(test_by_param)
{
    /* 16 vs 8: p = 1 - t/sqrt(2 + t^2) with t = 2 sqrt(3) (closed form for
     * df = 2) = 0.0741799002274485; 32 vs 8: t = 0, p = 1. Holm over the two:
     * 0.148359800454897 and 1. random has no agent.cf.factors: its group "-"
     * is shown last and not tested. */
    outcome o = run_ok(run_compare("sweep.db", "--by", "agent.cf.factors", "--metric",
                                   "reward", "--baseline", "8", "--format", "csv", NULL));
    const char *t = o.text;
    ck_assert_msg(strncmp(t, "agent.cf.factors,metric,", 24) == 0, "%s", t);
    char line[1024], field[64];
    find_line(t, "16,", NULL, line, sizeof line);
    assert_close(csv_number(t, line, "n"), 3, 0);
    assert_close(csv_number(t, line, "t"), 2 * sqrt(3.0), ARITH_TOL);
    assert_close(csv_number(t, line, "p"), 0.0741799002274485, P_TOL);
    assert_close(csv_number(t, line, "p_holm"), 2 * 0.0741799002274485, P_TOL);
    assert_close(csv_number(t, line, "effect"), 2.0, ARITH_TOL);
    find_line(t, "32,", NULL, line, sizeof line);
    assert_close(csv_number(t, line, "t"), 0.0, 0);
    assert_close(csv_number(t, line, "p"), 1.0, P_TOL);
    assert_close(csv_number(t, line, "p_holm"), 1.0, P_TOL);
    find_line(t, ",reward,eval,3,0.5,", NULL, line, sizeof line);
    ck_assert_msg(line[0] == ',', "random's group has no factors value: %s", line);
    csv_text(t, line, "test", field, sizeof field);
    ck_assert_str_eq(field, "");
    /* Rows in numeric order of the value, the missing value last. */
    const char *p8 = strstr(t, "\n8,"), *p16 = strstr(t, "\n16,"), *p32 = strstr(t, "\n32,"),
               *none = strstr(t, "\n,");
    ck_assert(p8 && p16 && p32 && none && p8 < p16 && p16 < p32 && p32 < none);
    free(o.text);

    o = run_ok(run_compare("sweep.db", "--by", "agent.cf.factors", "--metric", "reward", NULL));
    assert_contains(o.text, "\nagent.cf.factors   n  reward/episode     \n8                  3");
    assert_contains(o.text, "\n-                  3     0.5000 ±0.0000");
    free(o.text);
}
END_TEST

START_TEST(test_by_two_keys)
{
    /* The product of agent and factors, agents in registry order. */
    outcome o = run_ok(run_compare("sweep.db", "--by", "agent", "--by", "agent.cf.factors",
                                   "--metric", "reward", "--format", "markdown", NULL));
    const char *want =
        "| agent | agent.cf.factors | n | reward/episode |\n"
        "|:---|:---|---:|---:|\n"
        "| random | - | 3 | 0.5000 ± 0.0000 |\n"
        "| cf | 8 | 3 | 2.0000 ± 2.4841 |\n";
    /* cf at 8: {1, 2, 3}, sd 1, half width t_{2,0.975} / sqrt(3) with
     * t_{2,0.975} = 4.302652730 (R's qt): 2.48414. */
    assert_contains(o.text, want);
    free(o.text);

    /* Pooling: --by agent alone puts all cf runs together (n = 9). */
    o = run_ok(run_compare("sweep.db", "--by", "agent", "--metric", "reward", NULL));
    char line[256];
    find_line(o.text, "cf ", NULL, line, sizeof line);
    assert_contains(line, "cf             9");
    ck_assert(strstr(o.text, "shop") == NULL); /* one env: no env column */
    free(o.text);
}
END_TEST

START_TEST(test_default_grouping_with_configs)
{
    /* cf has three configurations: the config column appears, and a baseline
     * that names cf is ambiguous; one that names random compares each. */
    outcome o = run_ok(run_compare("sweep.db", "--metric", "reward", NULL));
    assert_contains(o.text, "env      agent        config     n  reward/episode");
    free(o.text);
    assert_fails(run_compare("sweep.db", "--baseline", "cf", NULL), DS_EINPUT,
                 "baseline 'cf' has several configurations", "--by");
    o = run_ok(run_compare("sweep.db", "--metric", "reward", "--baseline", "random", NULL));
    assert_contains(o.text, "Holm-adjusted over 3 comparisons");
    free(o.text);
}
END_TEST

START_TEST(test_several_envs)
{
    /* env is a grouping key when there are several, and groups are compared
     * within their env. shop: t = 1.5 / (sqrt(1/2)/sqrt(2)) = 3, df 1,
     * p = 1 - (2/pi) atan(3) (Cauchy) = 0.204832764699133; bandit: t = 1,
     * p = 1 - (2/pi) atan(1) = 0.5. */
    outcome o = run_ok(run_compare("envs.db", "--by", "agent", "--metric", "reward",
                                   "--baseline", "random", "--format", "csv", NULL));
    const char *t = o.text;
    ck_assert_msg(strncmp(t, "env,agent,metric,", 17) == 0, "%s", t);
    char line[1024];
    find_line(t, "shop,cf,", NULL, line, sizeof line);
    assert_close(csv_number(t, line, "diff"), 1.5, ARITH_TOL);
    assert_close(csv_number(t, line, "t"), 3.0, ARITH_TOL);
    assert_close(csv_number(t, line, "p"), 1 - 2 / acos(-1.0) * atan(3.0), P_TOL);
    find_line(t, "bandit,cf,", NULL, line, sizeof line);
    assert_close(csv_number(t, line, "diff"), 0.5, ARITH_TOL);
    assert_close(csv_number(t, line, "p"), 0.5, P_TOL);
    free(o.text);
}
END_TEST

START_TEST(test_train_phase_and_missing_values)
{
    /* Train episodes have reward + 100 and the train phase coverage 0.01. */
    outcome o = run_ok(run_compare("tests.db", "--phase", "train", "--metric", "reward",
                                   "--metric", "coverage", "--format", "csv", NULL));
    char line[1024];
    find_line(o.text, "shop,random,", ",reward,", line, sizeof line);
    assert_close(csv_number(o.text, line, "mean"), 100.75, ARITH_TOL);
    find_line(o.text, "shop,random,", ",coverage,", line, sizeof line);
    assert_close(csv_number(o.text, line, "mean"), 0.01, ARITH_TOL);
    free(o.text);

    /* novelty is NULL in every episode: n = 0 and no mean. */
    o = run_ok(run_compare("tests.db", "--metric", "novelty", "--format", "csv", NULL));
    find_line(o.text, "shop,cf,", ",novelty,", line, sizeof line);
    char field[64];
    csv_text(o.text, line, "n", field, sizeof field);
    ck_assert_str_eq(field, "0");
    csv_text(o.text, line, "mean", field, sizeof field);
    ck_assert_str_eq(field, "");
    free(o.text);
    o = run_ok(run_compare("tests.db", "--metric", "novelty", NULL));
    find_line(o.text, "shop     cf ", NULL, line, sizeof line);
    assert_contains(line, "10          -");
    free(o.text);
}
END_TEST

/* ---- formats ---- */

START_TEST(test_markdown)
{
    outcome o = run_ok(run_compare("tests.db", "--metric", "purchases,ild", "--format",
                                   "markdown", NULL));
    assert_contains(o.text,
                    "eval phase, mean ± 95% CI half-width over seeds (Student t)\n\n"
                    "| env | agent | n | purchases/episode | ILD |\n"
                    "|:---|:---|---:|---:|---:|\n"
                    "| shop | random | 10 | 1.0000 ± 0.0000 | 0.5000 ± 0.0000 |\n");
    free(o.text);
    o = run_ok(run_compare("tests.db", "--metric", "purchases,reward", "--format", "markdown",
                           "--baseline", "random", NULL));
    assert_contains(o.text, "| env | agent | n | purchases/episode | p (Holm) | effect | "
                            "reward/episode | p (Holm) | effect |\n"
                            "|:---|:---|---:|---:|---:|---:|---:|---:|---:|\n"
                            "| shop | random | 10 | 1.0000 ± 0.0000 | baseline |  | 0.7500 ± "
                            "1.2798 | baseline |  |\n");
    assert_contains(o.text, "| shop | cf | 10 | 2.0000 ± 0.0000 | n/a | n/a | 2.3300 ± ");
    assert_contains(o.text, " | 0.006 | d_z = 1.28 |\n");
    free(o.text);
}
END_TEST

START_TEST(test_latex)
{
    outcome o = run_ok(run_compare("sweep.db", "--by", "reward.diversity_bonus", "--metric",
                                   "purchases", "--format", "latex", NULL));
    /* 12 runs, purchases 1 (cf, 9 runs) and 0 (random, 3 runs). */
    assert_contains(o.text, "\\begin{tabular}{lrr}\n\\toprule\n"
                            "reward.diversity\\_bonus & $n$ & purchases/episode \\\\\n"
                            "\\midrule\n0.1 & 12 & $0.7500 \\pm ");
    assert_contains(o.text, "\\bottomrule\n\\end{tabular}\n");
    ck_assert(o.text[0] == '%');
    free(o.text);

    o = run_ok(run_compare("tests.db", "--metric", "purchases,reward", "--format", "latex",
                           "--baseline", "random", NULL));
    assert_contains(o.text, "\\begin{tabular}{llrrrrrrr}\n\\toprule\n"
                            " &  &  & \\multicolumn{3}{c}{purchases/episode} & "
                            "\\multicolumn{3}{c}{reward/episode} \\\\\n"
                            "\\cmidrule(lr){4-6} \\cmidrule(lr){7-9}\n"
                            "env & agent & $n$ & mean $\\pm$ CI & $p_{\\mathrm{Holm}}$ & effect"
                            " & mean $\\pm$ CI & $p_{\\mathrm{Holm}}$ & effect \\\\\n");
    assert_contains(o.text, "shop & cf & 10 & $2.0000 \\pm 0.0000$ & n/a & n/a & $2.3300 \\pm ");
    assert_contains(o.text, "$ & $0.006$ & $d_z = 1.28$ \\\\\n");
    /* Both constant and unpaired: no test. */
    assert_contains(o.text, "shop & popularity & 10 & $3.0000 \\pm 0.0000$ & n/a & n/a & ");
    free(o.text);
}
END_TEST

/* ---- errors ---- */

START_TEST(test_unknown_metric)
{
    assert_fails(run_compare("tests.db", "--metric", "purchase", NULL), DS_EINPUT,
                 "unknown metric 'purchase'", "did you mean 'purchases'?");
    assert_fails(run_compare("tests.db", "--metric", "ild,Gini_index", NULL), DS_EINPUT,
                 "unknown metric 'Gini_index'", "metrics: reward, shaped_reward");
}
END_TEST

START_TEST(test_unknown_parameter)
{
    assert_fails(run_compare("sweep.db", "--by", "agent.cf.factor", NULL), DS_EINPUT,
                 "unknown parameter 'agent.cf.factor'", "did you mean 'agent.cf.factors'?");
    assert_fails(run_compare("sweep.db", "--by", "agnet", NULL), DS_EINPUT,
                 "unknown parameter 'agnet'", "did you mean 'agent'?");
    assert_fails(run_compare("sweep.db", "--by", "learning_rate_schedule", NULL), DS_EINPUT,
                 "unknown parameter 'learning_rate_schedule'", "params table");
}
END_TEST

START_TEST(test_empty_and_unfinished_databases)
{
    assert_fails(run_compare("empty.db", NULL), DS_EINPUT, "holds no runs", "empty.db");
    assert_fails(run_compare("failed.db", NULL), DS_EINPUT, "none is done", "divsim status");
    assert_fails(run_compare("missing.db", NULL), DS_EINPUT, "is not a file", "missing.db");
    assert_fails(run_compare("foreign.db", NULL), DS_EIO,
                 "is not a divsim results database", "foreign.db");
}
END_TEST

START_TEST(test_bad_usage)
{
    assert_fails(run_compare("tests.db", "--phase", "test", NULL), DS_EINPUT,
                 "phase 'test'", "expected train or eval");
    assert_fails(run_compare("tests.db", "--format", "html", NULL), DS_EINPUT,
                 "format 'html'", "text, markdown, latex or csv");
    assert_fails(run_compare("tests.db", "--metrics", "ild", NULL), DS_EINPUT,
                 "unknown option '--metrics'", "did you mean '--metric'?");
    assert_fails(run_compare("tests.db", "--baseline", NULL), DS_EINPUT,
                 "'--baseline' needs a value", NULL);
    assert_fails(run_compare("tests.db", "other.db", NULL), DS_EINPUT, "one results DB",
                 "other.db");
    assert_fails(run_compare("tests.db", "--baseline", "randm", NULL), DS_EINPUT,
                 "baseline 'randm'", "did you mean 'random'?");
    assert_fails(run_compare("tests.db", "--baseline", "xyzzy", NULL), DS_EINPUT,
                 "baseline 'xyzzy'", "the values of agent are random, popularity, cf");

    char *argv[] = {(char[]){"divsim"}, (char[]){"compare"}, NULL};
    char err[ERR_LEN];
    ck_assert_int_eq(compare_command(2, argv, stdout, err), DS_EINPUT);
    assert_contains(err, "missing the results DB");
}
END_TEST

static Suite *compare_suite(void)
{
    Suite *s = suite_create("compare");
    TCase *tc = tcase_create("numbers");
    tcase_add_test(tc, test_default_text_unchanged);
    tcase_add_test(tc, test_paired_and_welch);
    tcase_add_test(tc, test_holm_over_groups_and_metrics);
    tcase_add_test(tc, test_text_with_baseline);
    suite_add_tcase(s, tc);
    TCase *tg = tcase_create("grouping");
    tcase_add_test(tg, test_by_param);
    tcase_add_test(tg, test_by_two_keys);
    tcase_add_test(tg, test_default_grouping_with_configs);
    tcase_add_test(tg, test_several_envs);
    tcase_add_test(tg, test_train_phase_and_missing_values);
    suite_add_tcase(s, tg);
    TCase *tf = tcase_create("formats");
    tcase_add_test(tf, test_markdown);
    tcase_add_test(tf, test_latex);
    suite_add_tcase(s, tf);
    TCase *te = tcase_create("errors");
    tcase_add_test(te, test_unknown_metric);
    tcase_add_test(te, test_unknown_parameter);
    tcase_add_test(te, test_empty_and_unfinished_databases);
    tcase_add_test(te, test_bad_usage);
    suite_add_tcase(s, te);
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
            fprintf(stderr, "check_compare: cannot remove '%s'\n", path);
    }
    closedir(d);
    if (rmdir(tmpdir) != 0)
        fprintf(stderr, "check_compare: cannot remove '%s'\n", tmpdir);
}

int main(void)
{
    gsl_set_error_handler_off();
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/check_compare.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "check_compare: cannot create a temporary directory\n");
        return EXIT_FAILURE;
    }
    int built = build_db("tests.db", build_tests_db) == DS_OK &&
                build_db("sweep.db", build_sweep_db) == DS_OK &&
                build_db("envs.db", build_envs_db) == DS_OK &&
                build_db("empty.db", NULL) == DS_OK &&
                build_db("failed.db", build_failed_db) == DS_OK && build_foreign_db() == DS_OK;
    int failed = 1;
    if (built) {
        SRunner *sr = srunner_create(compare_suite());
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
    }
    remove_tmpdir();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
