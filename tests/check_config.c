/* Experiment files: parsing, validation messages and grid expansion.
 *
 * The files are written into a fresh temporary directory. The tests rely only on
 * the env 'bandit' (keys items, users, slate, utility_step, u0, visit_rate; clicks
 * only; slate <= items), the agent 'random' (no parameters) and on what the
 * registries list, so adding envs or agents does not change them. The tests of
 * agent-scoped reward keys also use the env 'shop' (with purchases), the agents
 * 'a2c' and 'mmr' (its real parameter lambda in [0, 1]) and 'ppo', or 'reinforce'
 * in its place while ppo is not registered. The tests of agent variants and of
 * the learners' encoder keys use 'ppo' (and 'a2c' as a second agent name). */
#include "../agents/checkpoint.h"
#include "../sim/common.h"
#include "../sim/config.h"

#include <check.h>
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_LEN 512

static char tmpdir[256]; /* set once in main, before any test runs */

/* The sections every bandit file needs besides [env]. */
#define AGENT_REWARD "[agent]\nkind = random\n\n[reward]\nkind = clicks\n"

static void write_file(const char *name, const char *text, char *path)
{
    snprintf(path, PATH_LEN, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(fputs(text, f), 0);
    ck_assert_int_eq(fclose(f), 0);
}

static void load_ok(const char *name, const char *text, const char *const *overrides,
                    size_t n_overrides, experiment *x)
{
    char path[PATH_LEN], err[ERR_LEN] = "";
    write_file(name, text, path);
    int rc = experiment_load(path, overrides, n_overrides, x, err);
    ck_assert_msg(rc == DS_OK, "load of %s failed: %s", name, err);
}

/* Loads text as bad.ini and expects DS_EINPUT with nothing left in the experiment. */
static void load_bad(const char *text, const char *const *overrides, size_t n_overrides,
                     char *path, char *err)
{
    experiment x;
    write_file("bad.ini", text, path);
    int rc = experiment_load(path, overrides, n_overrides, &x, err);
    ck_assert_msg(rc == DS_EINPUT, "expected DS_EINPUT, got %d (%s)", rc, err);
    ck_assert_ptr_null(x.runs);
    ck_assert_uint_eq(x.n_runs, 0);
    experiment_free(&x);
}

/* The message must be exactly PATH followed by tail. */
static void expect_error(const char *text, const char *tail)
{
    char path[PATH_LEN], err[ERR_LEN], want[ERR_LEN];
    load_bad(text, NULL, 0, path, err);
    snprintf(want, sizeof want, "%s%s", path, tail);
    ck_assert_str_eq(err, want);
}

/* The message must start with PATH followed by head, and contain part. */
static void expect_error_with(const char *text, const char *head, const char *part)
{
    char path[PATH_LEN], err[ERR_LEN], want[ERR_LEN];
    load_bad(text, NULL, 0, path, err);
    snprintf(want, sizeof want, "%s%s", path, head);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "'%s' does not start with '%s'", err,
                  want);
    ck_assert_msg(strstr(err, part) != NULL, "'%s' does not contain '%s'", err, part);
}

/* A --set error: the message is exactly want. */
static void expect_override_error(const char *override, const char *want)
{
    char path[PATH_LEN], err[ERR_LEN];
    const char *overrides[] = {override};
    load_bad("[env]\nkind = bandit\n" AGENT_REWARD, overrides, 1, path, err);
    ck_assert_str_eq(err, want);
}

static int env_int(const run_spec *r, const char *key)
{
    const param_spec *s = param_find(&r->env->params, key);
    ck_assert_ptr_nonnull(s);
    return *(const int *)((const char *)r->env_config + s->offset);
}

static double env_real(const run_spec *r, const char *key)
{
    const param_spec *s = param_find(&r->env->params, key);
    ck_assert_ptr_nonnull(s);
    return *(const double *)((const char *)r->env_config + s->offset);
}

static const char *env_fallback(const char *key)
{
    const param_spec *s = param_find(&env_find("bandit")->params, key);
    ck_assert_ptr_nonnull(s);
    return s->fallback;
}

/* The first registered agent with a parameter of the type, and that parameter. */
static const agent_type *agent_with_type(param_type type, const param_spec **spec)
{
    for (int i = 0; i < agent_registry_count; i++)
        for (size_t j = 0; j < agent_registry[i]->params.count; j++)
            if (agent_registry[i]->params.specs[j].type == type) {
                *spec = &agent_registry[i]->params.specs[j];
                return agent_registry[i];
            }
    ck_abort_msg("no registered agent has a parameter of type %d", (int)type);
    return NULL;
}

static const agent_type *agent_with_int(const param_spec **spec)
{
    return agent_with_type(PARAM_INT, spec);
}

START_TEST(simple_file_has_every_default_sorted)
{
    experiment x;
    load_ok("simple.ini",
            "[experiment]\ntrain_episodes = 200\n\n[env]\nkind = bandit\nitems = 20\n\n"
            AGENT_REWARD, NULL, 0, &x);
    ck_assert_str_eq(x.name, "simple"); /* the file's base name */
    ck_assert_uint_eq(x.n_runs, 1);
    const run_spec *r = &x.runs[0];
    ck_assert_str_eq(r->env->name, "bandit");
    ck_assert_str_eq(r->agent->name, "random");
    ck_assert_uint_eq(r->seed, 1); /* default seeds = 1 */
    ck_assert_str_eq(r->settings.name, "simple");
    ck_assert_int_eq(r->settings.train_episodes, 200);
    ck_assert_int_eq(r->settings.eval_episodes, 500);
    ck_assert_int_eq(r->settings.window, 100);
    ck_assert_int_eq(r->settings.history, 10);
    ck_assert_int_eq(r->settings.reward, REWARD_CLICKS);
    ck_assert(r->settings.diversity_bonus == 0.0);
    ck_assert_int_eq(env_int(r, "items"), 20);
    ck_assert_int_eq(env_int(r, "slate"), atoi(env_fallback("slate")));

    /* Every key, sorted by strcmp; bandit's defaults are its table's fallback text
     * (written there in canonical form already). */
    char want[2048];
    snprintf(want, sizeof want,
             "agent.kind = random\n"
             "env.items = 20\n"
             "env.kind = bandit\n"
             "env.slate = %s\n"
             "env.u0 = %s\n"
             "env.users = %s\n"
             "env.utility_step = %s\n"
             "env.visit_rate = %s\n"
             "experiment.eval_episodes = 500\n"
             "experiment.history = 10\n"
             "experiment.name = simple\n"
             "experiment.train_episodes = 200\n"
             "experiment.window = 100\n"
             "reward.diversity_bonus = 0\n"
             "reward.kind = clicks\n",
             env_fallback("slate"), env_fallback("u0"), env_fallback("users"),
             env_fallback("utility_step"), env_fallback("visit_rate"));
    ck_assert_str_eq(r->config_text, want);
    ck_assert_uint_eq(r->n_params, 15);
    for (size_t i = 1; i < r->n_params; i++)
        ck_assert_int_lt(strcmp(r->params[i - 1].key, r->params[i].key), 0);
    ck_assert_str_eq(run_param_get(r, "env.items"), "20");
    ck_assert_str_eq(run_param_get(r, "experiment.window"), "100");
    ck_assert_str_eq(run_param_get(r, "agent.kind"), "random");
    ck_assert_str_eq(run_param_get(r, "reward.kind"), "clicks");
    ck_assert_ptr_null(run_param_get(r, "experiment.seeds")); /* the seed is not a param */
    ck_assert_ptr_null(run_param_get(r, "env.nope"));

    /* The hash is FNV-1a of the text; the id adds "seed = 1\n", masked to 63 bits. */
    uint64_t h = hash_bytes(want, strlen(want), HASH_INIT);
    ck_assert_uint_eq(r->config_hash, h);
    uint64_t id = hash_bytes("seed = 1\n", 9, h) & (uint64_t)INT64_MAX;
    ck_assert_int_eq(r->run_id, (int64_t)(id ? id : 1));
    ck_assert_int_gt(r->run_id, 0);
    experiment_free(&x);
    ck_assert_ptr_null(x.runs);
    experiment_free(&x); /* a freed (zeroed) experiment frees again safely */
}
END_TEST

static const char product_ini[] =
    "[experiment]\n"
    "name = prod\n"
    "seeds = 1-3\n"
    "\n"
    "[env]\n"
    "kind = bandit\n"
    "items = 10,20\n"
    "u0 = 0, 1\n"
    "\n" AGENT_REWARD;

START_TEST(axes_expand_in_order_with_seeds_innermost)
{
    experiment x;
    load_ok("product.ini", product_ini, NULL, 0, &x);
    ck_assert_str_eq(x.name, "prod");
    ck_assert_uint_eq(x.n_runs, 12); /* 2 items x 2 u0 x 3 seeds */
    static const char *items[] = {"10", "20"}, *u0[] = {"0", "1"};
    for (size_t i = 0; i < 12; i++) {
        const run_spec *r = &x.runs[i];
        ck_assert_str_eq(run_param_get(r, "env.items"), items[i / 6]);
        ck_assert_str_eq(run_param_get(r, "env.u0"), u0[(i / 3) % 2]);
        ck_assert_uint_eq(r->seed, i % 3 + 1);
        ck_assert_int_eq(env_int(r, "items"), atoi(items[i / 6]));
        ck_assert(env_real(r, "u0") == (double)((i / 3) % 2));
        ck_assert_str_eq(run_param_get(r, "experiment.name"), "prod");
    }
    experiment_free(&x);

    /* Axes follow the file's order: u0 written first varies slowest. */
    load_ok("order.ini", "[env]\nkind = bandit\nu0 = 0,1\nitems = 10,20\n" AGENT_REWARD, NULL,
            0, &x);
    ck_assert_uint_eq(x.n_runs, 4);
    ck_assert_str_eq(run_param_get(&x.runs[1], "env.u0"), "0");
    ck_assert_str_eq(run_param_get(&x.runs[1], "env.items"), "20");
    ck_assert_str_eq(run_param_get(&x.runs[2], "env.u0"), "1");
    ck_assert_str_eq(run_param_get(&x.runs[2], "env.items"), "10");
    experiment_free(&x);
}
END_TEST

START_TEST(run_ids_are_stable_and_distinct)
{
    experiment a, b;
    load_ok("product.ini", product_ini, NULL, 0, &a);
    load_ok("product.ini", product_ini, NULL, 0, &b);
    ck_assert_uint_eq(a.n_runs, b.n_runs);
    for (size_t i = 0; i < a.n_runs; i++) {
        ck_assert_int_eq(a.runs[i].run_id, b.runs[i].run_id);
        ck_assert_uint_eq(a.runs[i].config_hash, b.runs[i].config_hash);
        ck_assert_int_gt(a.runs[i].run_id, 0);
        for (size_t j = 0; j < i; j++) {
            ck_assert_int_ne(a.runs[i].run_id, a.runs[j].run_id);
            /* Same point of the grid (3 seeds each) <=> same configuration. */
            if (i / 3 == j / 3)
                ck_assert_uint_eq(a.runs[i].config_hash, a.runs[j].config_hash);
            else
                ck_assert_uint_ne(a.runs[i].config_hash, a.runs[j].config_hash);
        }
    }
    experiment_free(&a);
    experiment_free(&b);
}
END_TEST

/* Logging off is the run as it was before the key existed (same text, same id);
 * logging on is another run, whose text says so. */
START_TEST(logging_changes_the_id_only_when_on)
{
    const char *head = "[experiment]\ntrain_episodes = 200\n";
    const char *tail = "[env]\nkind = bandit\nitems = 20\n\n" AGENT_REWARD;
    char plain[512], off[512], on[512];
    snprintf(plain, sizeof plain, "%s\n%s", head, tail);
    snprintf(off, sizeof off, "%slog_interactions = false\n\n%s", head, tail);
    snprintf(on, sizeof on, "%slog_interactions = true\n\n%s", head, tail);
    experiment a, b, c;
    load_ok("log.ini", plain, NULL, 0, &a);
    load_ok("log.ini", off, NULL, 0, &b);
    load_ok("log.ini", on, NULL, 0, &c);
    ck_assert_int_eq(a.runs[0].run_id, b.runs[0].run_id);
    ck_assert_str_eq(a.runs[0].config_text, b.runs[0].config_text);
    ck_assert_ptr_null(strstr(a.runs[0].config_text, "log_interactions"));
    ck_assert_int_ne(a.runs[0].run_id, c.runs[0].run_id);
    ck_assert_ptr_nonnull(strstr(c.runs[0].config_text, "experiment.log_interactions = true\n"));
    ck_assert_int_eq(b.runs[0].settings.log_interactions, 0);
    ck_assert_int_eq(c.runs[0].settings.log_interactions, 1);
    experiment_free(&a);
    experiment_free(&b);
    experiment_free(&c);
}
END_TEST

/* The product file with every value spelled differently but equal. */
static const char product_respelled_ini[] =
    "[experiment]\n"
    "name = prod\n"
    "seeds = 1-3\n"
    "\n"
    "[env]\n"
    "kind = bandit\n"
    "items = 1e1, 20.0\n"
    "u0 = -0.0, 1.000\n"
    "\n" AGENT_REWARD;

START_TEST(reformatted_values_keep_run_ids)
{
    experiment a, b;
    load_ok("product.ini", product_ini, NULL, 0, &a);
    load_ok("product.ini", product_respelled_ini, NULL, 0, &b);
    ck_assert_uint_eq(a.n_runs, 12);
    ck_assert_uint_eq(b.n_runs, 12);
    for (size_t i = 0; i < a.n_runs; i++) {
        ck_assert_str_eq(a.runs[i].config_text, b.runs[i].config_text);
        ck_assert_uint_eq(a.runs[i].config_hash, b.runs[i].config_hash);
        ck_assert_int_eq(a.runs[i].run_id, b.runs[i].run_id);
    }
    /* The canonical text, not the written one, is what the runs carry. */
    ck_assert_str_eq(run_param_get(&b.runs[0], "env.items"), "10");
    ck_assert_str_eq(run_param_get(&b.runs[0], "env.u0"), "0");
    ck_assert_str_eq(run_param_get(&b.runs[11], "env.items"), "20");
    ck_assert_str_eq(run_param_get(&b.runs[11], "env.u0"), "1");
    ck_assert(!signbit(env_real(&b.runs[0], "u0"))); /* -0.0 became 0 */
    experiment_free(&a);
    experiment_free(&b);

    /* u0 written as 1, as 1.0 and left to its default "1": one config text. A
     * --set goes through the same path. */
    const char *over[] = {"env.u0=1e0"};
    experiment c[4];
    load_ok("same.ini", "[env]\nkind = bandit\nu0 = 1\n" AGENT_REWARD, NULL, 0, &c[0]);
    load_ok("same.ini", "[env]\nkind = bandit\nu0 = 1.0\n" AGENT_REWARD, NULL, 0, &c[1]);
    load_ok("same.ini", "[env]\nkind = bandit\n" AGENT_REWARD, NULL, 0, &c[2]);
    load_ok("same.ini", "[env]\nkind = bandit\nu0 = 3\n" AGENT_REWARD, over, 1, &c[3]);
    ck_assert_str_eq(env_fallback("u0"), "1"); /* the case the default covers */
    for (size_t i = 1; i < 4; i++) {
        ck_assert_str_eq(c[i].runs[0].config_text, c[0].runs[0].config_text);
        ck_assert_int_eq(c[i].runs[0].run_id, c[0].runs[0].run_id);
    }
    for (size_t i = 0; i < 4; i++)
        experiment_free(&c[i]);
}
END_TEST

START_TEST(params_show_canonical_values)
{
    /* Reals: the shortest of %.15g/%.16g/%.17g that reads back. 0.1 + 0.2 is
     * 0.30000000000000004 and needs 17 digits; 1/3 to 16 digits needs 16; the exact
     * expansion of the double nearest 0.1 is just 0.1; exponents as printf writes
     * them. 0.3 and 0.30000000000000004 are different doubles, so not duplicates. */
    static const char *written[] = {"5e-1", "0.10", "2.50", "0.30000000000000004", "0.3",
                                    "0.3333333333333333", "1000", "1e-5",
                                    "0.1000000000000000055511151231257827"};
    static const char *canonical[] = {"0.5", "0.1", "2.5", "0.30000000000000004", "0.3",
                                      "0.3333333333333333", "1000", "1e-05", NULL};
    char text[512] = "[env]\nkind = bandit\nutility_step = ";
    for (size_t i = 0; i < 8; i++) {
        strcat(text, written[i]);
        strcat(text, i < 7 ? ", " : "\n");
    }
    strcat(text, "u0 = ");
    strcat(text, written[8]);
    strcat(text, "\n" AGENT_REWARD);
    experiment x;
    load_ok("canon.ini", text, NULL, 0, &x);
    ck_assert_uint_eq(x.n_runs, 8);
    for (size_t i = 0; i < 8; i++) {
        const run_spec *r = &x.runs[i];
        ck_assert_str_eq(run_param_get(r, "env.utility_step"), canonical[i]);
        ck_assert(env_real(r, "utility_step") == strtod(written[i], NULL));
        ck_assert_str_eq(run_param_get(r, "env.u0"), "0.1");
        ck_assert(env_real(r, "u0") == 0.1);
    }
    experiment_free(&x);

    /* Integers as %d, whatever the spelling. */
    load_ok("canon.ini", "[experiment]\nwindow = 2.5e1\n[env]\nkind = bandit\n"
            "items = 1.2e2, 7.0\n" AGENT_REWARD, NULL, 0, &x);
    ck_assert_uint_eq(x.n_runs, 2);
    ck_assert_str_eq(run_param_get(&x.runs[0], "env.items"), "120");
    ck_assert_str_eq(run_param_get(&x.runs[1], "env.items"), "7");
    ck_assert_str_eq(run_param_get(&x.runs[0], "experiment.window"), "25");
    ck_assert_int_eq(x.runs[0].settings.window, 25);
    experiment_free(&x);

    /* Booleans as true/false, from any accepted spelling. */
    const param_spec *spec;
    const agent_type *a = agent_with_type(PARAM_BOOL, &spec);
    char key[128];
    snprintf(text, sizeof text, "[env]\nkind = bandit\n[agent]\nkind = %s\n[agent.%s]\n"
             "%s = YES, off\n[reward]\nkind = clicks\n", a->name, a->name, spec->key);
    snprintf(key, sizeof key, "agent.%s.%s", a->name, spec->key);
    load_ok("bool.ini", text, NULL, 0, &x);
    ck_assert_uint_eq(x.n_runs, 2);
    ck_assert_str_eq(run_param_get(&x.runs[0], key), "true");
    ck_assert_str_eq(run_param_get(&x.runs[1], key), "false");
    ck_assert_int_eq(*(const int *)((const char *)x.runs[0].agent_config + spec->offset), 1);
    ck_assert_int_eq(*(const int *)((const char *)x.runs[1].agent_config + spec->offset), 0);
    experiment_free(&x);
}
END_TEST

START_TEST(agent_list_times_seeds)
{
    ck_assert_int_ge(agent_registry_count, 2);
    const char *first = agent_registry[0]->name, *second = agent_registry[1]->name;
    char text[512];
    snprintf(text, sizeof text,
             "[experiment]\nseeds = 4,2\n[env]\nkind = bandit\n[agent]\nkind = %s, %s\n"
             "[reward]\nkind = clicks\n", first, second);
    experiment x;
    load_ok("agents.ini", text, NULL, 0, &x);
    ck_assert_uint_eq(x.n_runs, 4);
    const char *agents[] = {first, first, second, second};
    const uint64_t seeds[] = {4, 2, 4, 2}; /* in written order */
    for (size_t i = 0; i < 4; i++) {
        ck_assert_str_eq(x.runs[i].agent->name, agents[i]);
        ck_assert_str_eq(run_param_get(&x.runs[i], "agent.kind"), agents[i]);
        ck_assert_uint_eq(x.runs[i].seed, seeds[i]);
        ck_assert_ptr_nonnull(x.runs[i].agent_config);
    }
    experiment_free(&x);
}
END_TEST

START_TEST(agent_section_sets_its_parameter)
{
    const param_spec *spec;
    const agent_type *a = agent_with_int(&spec);
    /* A value other than the default, inside the range. */
    int value = atoi(spec->fallback) + 1 <= spec->max ? atoi(spec->fallback) + 1
                                                      : atoi(spec->fallback) - 1;
    char text[512], key[128], want[32];
    snprintf(text, sizeof text, "[env]\nkind = bandit\n[agent]\nkind = %s\n[agent.%s]\n%s = %d\n"
             "[reward]\nkind = clicks\n", a->name, a->name, spec->key, value);
    snprintf(key, sizeof key, "agent.%s.%s", a->name, spec->key);
    snprintf(want, sizeof want, "%d", value);
    experiment x;
    load_ok("agentkey.ini", text, NULL, 0, &x);
    ck_assert_uint_eq(x.n_runs, 1);
    ck_assert_str_eq(run_param_get(&x.runs[0], key), want);
    ck_assert_int_eq(*(const int *)((const char *)x.runs[0].agent_config + spec->offset), value);
    /* Every key of the agent's table is a param, defaults included. */
    ck_assert_uint_eq(x.runs[0].n_params, 15 + a->params.count);
    experiment_free(&x);

    /* A section of an agent not listed in kind is checked but unused. */
    snprintf(text, sizeof text, "[env]\nkind = bandit\n[agent]\nkind = random\n[agent.%s]\n"
             "%s = %d\n[reward]\nkind = clicks\n", a->name, spec->key, value);
    load_ok("unused.ini", text, NULL, 0, &x);
    ck_assert_ptr_null(run_param_get(&x.runs[0], key));
    experiment_free(&x);
    snprintf(text, sizeof text, "[env]\nkind = bandit\n[agent]\nkind = random\n[agent.%s]\n"
             "%s = x\n[reward]\nkind = clicks\n", a->name, spec->key);
    char head[128];
    snprintf(head, sizeof head, ":6: '%s': ", spec->key);
    expect_error_with(text, head, "expected an integer, got 'x'");

    /* A hyperparameter written in [agent] points at its section. */
    snprintf(text, sizeof text, "[env]\nkind = bandit\n[agent]\nkind = %s\n%s = %d\n"
             "[reward]\nkind = clicks\n", a->name, spec->key, value);
    char tail[256];
    snprintf(tail, sizeof tail, ":5: unknown key '%s' in [agent] (did you mean to put it in "
             "[agent.%s]?)", spec->key, a->name);
    expect_error(text, tail);
}
END_TEST

START_TEST(seed_lists_and_ranges)
{
    experiment x;
    load_ok("seeds.ini", "[experiment]\nseeds = 1-3,7\n[env]\nkind = bandit\n" AGENT_REWARD,
            NULL, 0, &x);
    ck_assert_uint_eq(x.n_runs, 4);
    const uint64_t want[] = {1, 2, 3, 7};
    for (size_t i = 0; i < 4; i++)
        ck_assert_uint_eq(x.runs[i].seed, want[i]);
    experiment_free(&x);

    load_ok("seeds.ini", "[experiment]\nseeds = 0, 5 - 6\n[env]\nkind = bandit\n" AGENT_REWARD,
            NULL, 0, &x);
    ck_assert_uint_eq(x.n_runs, 3);
    ck_assert_uint_eq(x.runs[0].seed, 0);
    ck_assert_uint_eq(x.runs[2].seed, 6);
    experiment_free(&x);
}
END_TEST

START_TEST(overrides_replace_and_add)
{
    const char *overrides[] = {"env.items=20", "env.slate = 1,2", "experiment.seeds=5-6",
                               "reward.diversity_bonus=0.5"};
    experiment x;
    load_ok("over.ini",
            "[experiment]\nseeds = 1-3\n[env]\nkind = bandit\nitems = 10\nu0 = 0,1\n"
            AGENT_REWARD, overrides, 4, &x);
    ck_assert_uint_eq(x.n_runs, 8); /* u0 (file) x slate (added) x 2 seeds */
    for (size_t i = 0; i < 8; i++) {
        const run_spec *r = &x.runs[i];
        ck_assert_str_eq(run_param_get(r, "env.items"), "20");
        ck_assert_str_eq(run_param_get(r, "env.u0"), i < 4 ? "0" : "1");
        ck_assert_str_eq(run_param_get(r, "env.slate"), (i / 2) % 2 ? "2" : "1");
        ck_assert_uint_eq(r->seed, 5 + i % 2);
        ck_assert_str_eq(run_param_get(r, "reward.diversity_bonus"), "0.5");
        ck_assert(r->settings.diversity_bonus == 0.5);
        ck_assert_int_eq(env_int(r, "items"), 20);
    }
    experiment_free(&x);

    /* A section given only on the command line. */
    const char *name[] = {"experiment.name=other", "env.kind=bandit"};
    load_ok("over2.ini", "[env]\nkind = shop\n" AGENT_REWARD, name, 2, &x);
    ck_assert_str_eq(x.name, "other");
    ck_assert_str_eq(x.runs[0].settings.name, "other");
    ck_assert_str_eq(x.runs[0].env->name, "bandit");
    experiment_free(&x);
}
END_TEST

/* The example of the README: per-agent diversity_bonus axes, and mmr's lambda
 * axis with the [reward] defaults. */
static const char scoped_example_ini[] =
    "[experiment]\n"
    "seeds = 1-2\n"
    "[env]\n"
    "kind = shop\n"
    "[agent]\n"
    "kind = %s, a2c, mmr\n"
    "[agent.%s]\n"
    "reward.diversity_bonus = 0, 0.05, 0.1, 0.2, 0.5\n"
    "[agent.a2c]\n"
    "reward.diversity_bonus = 0, 0.05, 0.1, 0.2, 0.5\n"
    "[agent.mmr]\n"
    "lambda = 1.0, 0.8, 0.6, 0.4\n"
    "[reward]\n"
    "kind = purchases\n";

/* The policy-gradient agent of the example: ppo once it is registered. */
static const char *example_agent(void)
{
    return agent_find("ppo") ? "ppo" : "reinforce";
}

static double agent_real(const run_spec *r, const char *key)
{
    const param_spec *s = param_find(&r->agent->params, key);
    ck_assert_ptr_nonnull(s);
    return *(const double *)((const char *)r->agent_config + s->offset);
}

START_TEST(scoped_reward_axes_expand_per_agent)
{
    const char *pg = example_agent();
    char text[1024];
    snprintf(text, sizeof text, scoped_example_ini, pg, pg);
    experiment x;
    load_ok("scoped.ini", text, NULL, 0, &x);
    /* (5 + 5 + 4) points x 2 seeds, not the 5 x 4 mmr runs of a shared axis. */
    ck_assert_uint_eq(x.n_runs, 28);
    static const char *bonus[] = {"0", "0.05", "0.1", "0.2", "0.5"};
    static const char *lambda[] = {"1", "0.8", "0.6", "0.4"};
    const char *agents[] = {pg, "a2c", "mmr"};
    for (size_t i = 0; i < x.n_runs; i++) {
        const run_spec *r = &x.runs[i];
        size_t who = i < 10 ? 0 : i < 20 ? 1 : 2, point = (i % 10) / 2;
        ck_assert_str_eq(r->agent->name, agents[who]);
        ck_assert_uint_eq(r->seed, i % 2 + 1);
        ck_assert_str_eq(run_param_get(r, "reward.kind"), "purchases");
        ck_assert_int_eq(r->settings.reward, REWARD_PURCHASES);
        const char *want_bonus = who < 2 ? bonus[point] : "0"; /* mmr: the default */
        ck_assert_str_eq(run_param_get(r, "reward.diversity_bonus"), want_bonus);
        ck_assert(r->settings.diversity_bonus == strtod(want_bonus, NULL));
        if (who == 2) {
            ck_assert_str_eq(run_param_get(r, "agent.mmr.lambda"), lambda[point]);
            ck_assert(agent_real(r, "lambda") == strtod(lambda[point], NULL));
        } else {
            ck_assert_ptr_null(run_param_get(r, "agent.mmr.lambda"));
        }
        /* The scoped key is the run's reward.diversity_bonus, not a param of its own:
         * 3 names + experiment (4) + env + agent + reward (2). */
        char scoped[128];
        snprintf(scoped, sizeof scoped, "agent.%s.reward.diversity_bonus", agents[who]);
        ck_assert_ptr_null(run_param_get(r, scoped));
        ck_assert_uint_eq(r->n_params, 9 + r->env->params.count + r->agent->params.count);
    }
    /* Ids follow from the params: a2c with a scoped bonus of 0.1 is the run of a2c
     * with [reward] diversity_bonus = 0.1 (the file's name is the same). */
    experiment plain;
    load_ok("scoped.ini", "[experiment]\nseeds = 1-2\n[env]\nkind = shop\n[agent]\nkind = a2c\n"
            "[reward]\nkind = purchases\ndiversity_bonus = 0.1\n", NULL, 0, &plain);
    ck_assert_uint_eq(plain.n_runs, 2);
    for (size_t s = 0; s < 2; s++) {
        const run_spec *scoped_run = &x.runs[10 + 2 * 2 + s]; /* a2c, bonus 0.1 */
        ck_assert_str_eq(plain.runs[s].config_text, scoped_run->config_text);
        ck_assert_int_eq(plain.runs[s].run_id, scoped_run->run_id);
    }
    experiment_free(&plain);
    experiment_free(&x);
}
END_TEST

START_TEST(scoped_reward_overrides_reward_for_its_agent_only)
{
    experiment x;
    /* [reward] diversity_bonus is an axis of random's runs only; mmr's scoped
     * kind and bonus replace [reward]'s for mmr. */
    load_ok("scope1.ini", "[env]\nkind = shop\n[agent]\nkind = random, mmr\n[agent.mmr]\n"
            "reward.kind = revenue\nreward.diversity_bonus = 0.25\n[reward]\nkind = purchases\n"
            "diversity_bonus = 0, 1\n", NULL, 0, &x);
    ck_assert_uint_eq(x.n_runs, 3); /* random x 2 bonuses, mmr x 1 */
    static const char *agents[] = {"random", "random", "mmr"};
    static const char *kinds[] = {"purchases", "purchases", "revenue"};
    static const char *bonus[] = {"0", "1", "0.25"};
    static const int reward[] = {REWARD_PURCHASES, REWARD_PURCHASES, REWARD_REVENUE};
    for (size_t i = 0; i < 3; i++) {
        const run_spec *r = &x.runs[i];
        ck_assert_str_eq(r->agent->name, agents[i]);
        ck_assert_str_eq(run_param_get(r, "reward.kind"), kinds[i]);
        ck_assert_str_eq(run_param_get(r, "reward.diversity_bonus"), bonus[i]);
        ck_assert_int_eq(r->settings.reward, reward[i]);
        ck_assert(r->settings.diversity_bonus == strtod(bonus[i], NULL));
    }
    experiment_free(&x);

    /* A scoped value is canonical like any other (5e-1 -> 0.5). A section of an
     * agent not in kind is checked but unused: random keeps [reward]'s bonus. */
    load_ok("scope2.ini", "[env]\nkind = bandit\n[agent]\nkind = random\n[agent.mmr]\n"
            "reward.diversity_bonus = 5e-1\n[reward]\nkind = clicks\ndiversity_bonus = 0.3\n",
            NULL, 0, &x);
    ck_assert_uint_eq(x.n_runs, 1);
    ck_assert_str_eq(run_param_get(&x.runs[0], "reward.diversity_bonus"), "0.3");
    experiment_free(&x);
    load_ok("scope3.ini", "[env]\nkind = bandit\n[agent]\nkind = random, mmr\n[agent.mmr]\n"
            "reward.diversity_bonus = 5e-1\n[reward]\nkind = clicks\n", NULL, 0, &x);
    ck_assert_uint_eq(x.n_runs, 2);
    ck_assert_str_eq(run_param_get(&x.runs[0], "reward.diversity_bonus"), "0");
    ck_assert_str_eq(run_param_get(&x.runs[1], "reward.diversity_bonus"), "0.5");
    ck_assert(x.runs[1].settings.diversity_bonus == 0.5);
    experiment_free(&x);

    /* A clicks-only env is satisfied by each run's own kind: mmr's scoped clicks,
     * even though [reward] (which no run uses) says purchases. */
    load_ok("scope4.ini", "[env]\nkind = bandit\n[agent]\nkind = mmr\n[agent.mmr]\n"
            "reward.kind = clicks\n[reward]\nkind = purchases\n", NULL, 0, &x);
    ck_assert_uint_eq(x.n_runs, 1);
    ck_assert_str_eq(run_param_get(&x.runs[0], "reward.kind"), "clicks");
    ck_assert_int_eq(x.runs[0].settings.reward, REWARD_CLICKS);
    experiment_free(&x);
}
END_TEST

START_TEST(scoped_reward_from_set)
{
    /* --set agent.NAME.reward.KEY adds a scoped axis or replaces the file's; the
     * other agent keeps [reward]. agent.NAME.KEY still sets a hyperparameter. */
    const char *add[] = {"agent.mmr.reward.diversity_bonus=0.1, 0.2", "agent.mmr.lambda=0.5"};
    experiment x;
    load_ok("set1.ini", "[env]\nkind = shop\n[agent]\nkind = random, mmr\n[reward]\n"
            "kind = purchases\ndiversity_bonus = 0.3\n", add, 2, &x);
    ck_assert_uint_eq(x.n_runs, 3);
    ck_assert_str_eq(x.runs[0].agent->name, "random");
    ck_assert_str_eq(run_param_get(&x.runs[0], "reward.diversity_bonus"), "0.3");
    ck_assert_str_eq(run_param_get(&x.runs[1], "reward.diversity_bonus"), "0.1");
    ck_assert_str_eq(run_param_get(&x.runs[2], "reward.diversity_bonus"), "0.2");
    for (size_t i = 1; i < 3; i++) {
        ck_assert_str_eq(run_param_get(&x.runs[i], "agent.mmr.lambda"), "0.5");
        ck_assert(agent_real(&x.runs[i], "lambda") == 0.5);
    }
    experiment_free(&x);

    const char *replace[] = {"agent.mmr.reward.diversity_bonus=0.7"};
    load_ok("set2.ini", "[env]\nkind = shop\n[agent]\nkind = mmr\n[agent.mmr]\n"
            "reward.diversity_bonus = 0, 1\n", replace, 1, &x);
    ck_assert_uint_eq(x.n_runs, 1);
    ck_assert_str_eq(run_param_get(&x.runs[0], "reward.diversity_bonus"), "0.7");
    ck_assert(x.runs[0].settings.diversity_bonus == 0.7);
    experiment_free(&x);
}
END_TEST

/* The int field of an agent parameter in r's filled config. */
static int agent_int(const run_spec *r, const char *key)
{
    const param_spec *s = param_find(&r->agent->params, key);
    ck_assert_ptr_nonnull(s);
    return *(const int *)((const char *)r->agent_config + s->offset);
}

/* A checkpoint of the default transformer (all weights 0) at tmpdir/name, for
 * `init`, which validation reads; its path into path [PATH_LEN]. */
static void write_checkpoint(const char *name, char *path)
{
    static const int topic[3] = {0, 1, 0};
    const env_spec spec = {.n_items = 3, .n_topics = 2, .max_steps = 5, .item_topic = topic};
    transformer_config cfg;
    transformer_config_defaults(&cfg);
    nn_layout layout;
    nn_layout_init(&layout);
    transformer tf;
    char err[ERR_LEN];
    ck_assert_int_eq(transformer_init(&tf, &spec, &cfg, &layout, err), DS_OK);
    double *w = calloc(layout.size, sizeof *w);
    ck_assert_ptr_nonnull(w);
    snprintf(path, PATH_LEN, "%s/%s", tmpdir, name);
    ck_assert_int_eq(checkpoint_save(path, &cfg, spec.n_items, &layout, w, err), DS_OK);
    free(w);
}

/* Variants: [agent.NAME] with kind = an agent runs as NAME with that agent's
 * parameters, its own keys only (nothing from [agent.ppo]), and param
 * agent.kind = the base kind; its kind is no axis. */
START_TEST(variants_run_under_their_names)
{
    experiment x;
    char ckpt[PATH_LEN], text[1024];
    write_checkpoint("cf.ckpt", ckpt);
    snprintf(text, sizeof text,
             "[experiment]\nhistory = 16\n[env]\nkind = bandit\n"
             "[agent]\nkind = random, ppo, ppo_tf, ppo_pre\n"
             "[agent.ppo]\nbatch_episodes = 8\n"
             "[agent.ppo_tf]\nkind = ppo\nencoder = transformer\ntf_width = 16, 32\n"
             "[agent.ppo_pre]\nkind = ppo\nencoder = transformer\ninit = %s\n"
             "reward.diversity_bonus = 0.5\n"
             "[reward]\nkind = clicks\n", ckpt);
    load_ok("variants.ini", text, NULL, 0, &x);
    ck_assert_uint_eq(x.n_runs, 5); /* random, ppo, ppo_tf x 2 widths, ppo_pre */
    static const char *names[] = {"random", "ppo", "ppo_tf", "ppo_tf", "ppo_pre"};
    static const char *kinds[] = {"random", "ppo", "ppo", "ppo", "ppo"};
    for (size_t i = 0; i < 5; i++) {
        const run_spec *r = &x.runs[i];
        ck_assert_str_eq(run_agent_name(r), names[i]);
        ck_assert_str_eq(r->agent->name, kinds[i]);
        ck_assert_str_eq(run_param_get(r, "agent.kind"), kinds[i]);
        for (size_t j = 0; j < i; j++)
            ck_assert(x.runs[j].run_id != r->run_id);
    }
    const run_spec *ppo = &x.runs[1], *tf16 = &x.runs[2], *tf32 = &x.runs[3];
    const run_spec *pre = &x.runs[4];
    ck_assert_str_eq(run_param_get(ppo, "agent.ppo.batch_episodes"), "8");
    ck_assert_str_eq(run_param_get(ppo, "agent.ppo.encoder"), "history");
    ck_assert_ptr_null(run_param_get(tf16, "agent.ppo.batch_episodes"));
    ck_assert_ptr_null(run_param_get(tf16, "agent.ppo_tf.kind"));
    ck_assert_str_eq(run_param_get(tf16, "agent.ppo_tf.batch_episodes"), "64");
    ck_assert_str_eq(run_param_get(tf16, "agent.ppo_tf.encoder"), "transformer");
    ck_assert_str_eq(run_param_get(tf16, "agent.ppo_tf.tf_width"), "16");
    ck_assert_str_eq(run_param_get(tf32, "agent.ppo_tf.tf_width"), "32");
    ck_assert_int_eq(agent_int(tf16, "tf_width"), 16);
    ck_assert_int_eq(agent_int(tf16, "encoder"), 1);
    ck_assert_str_eq(run_param_get(tf16, "agent.ppo_tf.init"), "none");
    ck_assert_str_eq(run_param_get(pre, "agent.ppo_pre.init"), ckpt);
    const param_spec *init = param_find(&pre->agent->params, "init");
    ck_assert_str_eq((const char *)pre->agent_config + init->offset, ckpt);
    ck_assert(pre->settings.diversity_bonus == 0.5 && tf16->settings.diversity_bonus == 0);
    ck_assert_ptr_nonnull(strstr(pre->config_text, "agent.kind = ppo\n"));
    experiment_free(&x);

    /* a checkpoint of another shape is refused at its section, before any run */
    snprintf(text, sizeof text,
             "[experiment]\nhistory = 16\n[env]\nkind = bandit\n[agent]\nkind = ppo_pre\n"
             "[agent.ppo_pre]\nkind = ppo\nencoder = transformer\ntf_width = 16\n"
             "init = %s\n[reward]\nkind = clicks\n", ckpt);
    char want[2 * PATH_LEN];
    snprintf(want, sizeof want, "'init': checkpoint '%s' has width 32, the model 16", ckpt);
    expect_error_with(text, ":11: [agent.ppo_pre] ", want); /* the line of init */

    /* --set picks a variant and sets its keys like an agent's */
    const char *set[] = {"agent.kind=ppo_tf", "agent.ppo_tf.tf_width=8"};
    load_ok("variants2.ini",
            "[experiment]\nhistory = 16\n[env]\nkind = bandit\n[agent]\nkind = random\n"
            "[agent.ppo_tf]\nkind = ppo\nencoder = transformer\ntf_width = 16, 32\n"
            "[reward]\nkind = clicks\n",
            set, 2, &x);
    ck_assert_uint_eq(x.n_runs, 1);
    ck_assert_str_eq(run_agent_name(&x.runs[0]), "ppo_tf");
    ck_assert_int_eq(agent_int(&x.runs[0], "tf_width"), 8);
    experiment_free(&x);
}
END_TEST

START_TEST(errors_variants)
{
#define VARIANT(sections) "[env]\nkind = bandit\n[reward]\nkind = clicks\n" sections
    expect_error(VARIANT("[agent]\nkind = v\n[agent.v]\nkind = ppoo\n"),
                 ":8: unknown agent 'ppoo' (did you mean 'ppo'?)");
    expect_error(VARIANT("[agent]\nkind = b\n[agent.a]\nkind = ppo\n[agent.b]\nkind = a\n"),
                 ":10: 'kind': 'a' is a variant; a variant's kind must be an agent");
    expect_error(VARIANT("[agent]\nkind = v\n[agent.v]\nkind = ppo, a2c\n"),
                 ":8: 'kind': a variant has one base kind, not a list");
    expect_error(VARIANT("[agent]\nkind = ppo\n[agent.ppo]\nkind = a2c\n"),
                 ":8: unknown key 'kind' in [agent.ppo] ('ppo' is an agent; a variant of it "
                 "needs a name of its own, e.g. [agent.my_ppo])");
    expect_error(VARIANT("[agent]\nkind = ppo_tff\n[agent.ppo_tf]\nkind = ppo\n"),
                 ":6: unknown agent 'ppo_tff' (did you mean 'ppo_tf'?)");
    expect_error(VARIANT("[agent]\nkind = random\n[agent.zzz]\nhidden = 5\n"),
                 ":7: unknown agent 'zzz' in section 'agent.zzz' (a variant of an agent needs "
                 "'kind = AGENT')");
    expect_error(VARIANT("[agent]\nkind = random\n[agent.my v]\nkind = ppo\n"),
                 ":7: variant name 'my v' must be 1 to 63 letters, digits, '_' or '-'");
    /* a variant's keys are its base kind's, checked as that agent's are */
    expect_error(VARIANT("[agent]\nkind = random\n[agent.v]\nlerning_rate = 1\nkind = ppo\n"),
                 ":8: unknown key 'lerning_rate' in [agent.v] (did you mean 'learning_rate'?)");
    expect_error(VARIANT("[agent]\nkind = v\n[agent.v]\nkind = ppo\ntf_width = 0\n"),
                 ":9: 'tf_width': value 0 out of range [1, 1024]");
    expect_override_error("agent.v.kind=ppo, a2c",
                          "--set 'agent.v.kind=ppo, a2c': 'kind': a variant has one base kind, "
                          "not a list");
#undef VARIANT
}
END_TEST

/* The learning agents' encoder keys: tf_context must fit the run's history,
 * reported where tf_context, else history, else the encoder was set; init needs
 * the transformer, and tf_heads must divide tf_width (the agents' xValidate,
 * reported at the section). */
START_TEST(errors_transformer_keys)
{
#define LEARNER(experiment, section) \
    experiment "[env]\nkind = bandit\n[reward]\nkind = clicks\n[agent]\nkind = v\n" \
    "[agent.v]\nkind = ppo\n" section
    const char *tail = " [agent.v] 'tf_context' 16 is longer than the history of 10 entries "
                       "the run keeps (set [experiment] history = 16, or a smaller 'tf_context')";
    char want[ERR_LEN];
    snprintf(want, sizeof want, ":9:%s", tail);
    expect_error(LEARNER("", "encoder = transformer\n"), want);
    snprintf(want, sizeof want, ":2:%s", tail);
    expect_error(LEARNER("[experiment]\nhistory = 10\n", "encoder = transformer\n"), want);
    expect_error(LEARNER("[experiment]\nhistory = 12\n", "encoder = transformer\n"
                         "tf_context = 8, 13\n"),
                 ":12: [agent.v] 'tf_context' 13 is longer than the history of 12 entries the "
                 "run keeps (set [experiment] history = 13, or a smaller 'tf_context')");
    expect_error(LEARNER("", "init = pre.ckpt\n"),
                 ":9: [agent.v] 'init' loads a transformer checkpoint: it needs encoder = "
                 "transformer");
    expect_error(LEARNER("[experiment]\nhistory = 16\n", "encoder = transformer\n"
                         "tf_heads = 3\n"),
                 ":12: [agent.v] 'tf_heads' 3 must divide 'tf_width' 32");
    /* what fits: a context within the history, or the history encoder's unused one */
    experiment x;
    load_ok("context.ini", LEARNER("[experiment]\nhistory = 12\n", "encoder = transformer\n"
                                   "tf_context = 12\n"), NULL, 0, &x);
    experiment_free(&x);
    load_ok("context2.ini", LEARNER("", "tf_context = 64\n"), NULL, 0, &x);
    experiment_free(&x);
#undef LEARNER
}
END_TEST

START_TEST(file_syntax_is_forgiving_where_harmless)
{
    experiment x;
    /* Indented keys, inline comments, repeated section headers (merged). */
    load_ok("style.ini",
            "; a comment\n[env]\n  kind = bandit\n\titems = 30 ; thirty\n" AGENT_REWARD
            "[env]\nu0 = 2\n",
            NULL, 0, &x);
    ck_assert_uint_eq(x.n_runs, 1);
    ck_assert_str_eq(run_param_get(&x.runs[0], "env.items"), "30");
    ck_assert_str_eq(run_param_get(&x.runs[0], "env.u0"), "2");
    experiment_free(&x);
}
END_TEST

START_TEST(errors_unknown_names)
{
    expect_error("[env]\nkind = bandit\niterms = 5\n" AGENT_REWARD,
                 ":3: unknown key 'iterms' in [env] (did you mean 'items'?)");
    expect_error("[env]\nkind = bandt\n" AGENT_REWARD,
                 ":2: unknown env 'bandt' (did you mean 'bandit'?)");
    expect_error("[env]\nkind = bandit\n[agent]\nkind = randon\n[reward]\nkind = clicks\n",
                 ":4: unknown agent 'randon' (did you mean 'random'?)");
    expect_error("[env]\nkind = bandit\n" AGENT_REWARD "[rewrd]\nkind = clicks\n",
                 ":8: unknown section 'rewrd' (did you mean 'reward'?)");
    expect_error("[env]\nkind = bandit\n[agent.randm]\n",
                 ":3: unknown agent 'randm' in section 'agent.randm' (did you mean 'random'?)");
    expect_error("[experiment]\nwindw = 5\n[env]\nkind = bandit\n" AGENT_REWARD,
                 ":2: unknown key 'windw' in [experiment] (did you mean 'window'?)");
    expect_error("[env]\nkind = bandit\n" AGENT_REWARD "[agent.random]\nlr = 1\n",
                 ":9: unknown key 'lr' in [agent.random] (it has no parameters)");
    expect_error_with("[env]\nkind = bandit\n[agent]\nkind = random\nfoo = 1\n",
                      ":5: unknown key 'foo' in [agent]", "[agent.NAME]");
    expect_error_with("items = 5\n[env]\nkind = bandit\n" AGENT_REWARD,
                      ":1: key 'items' is outside any section", "[env]");
}
END_TEST

START_TEST(errors_bad_values)
{
    expect_error("[env]\nkind = bandit\nitems = ten\n" AGENT_REWARD,
                 ":3: 'items': expected an integer, got 'ten'");
    expect_error("[env]\nkind = bandit\nitems = 0\n" AGENT_REWARD,
                 ":3: 'items': value 0 out of range [1, 1e+07]");
    expect_error("[experiment]\nhistory = 65\n[env]\nkind = bandit\n" AGENT_REWARD,
                 ":2: 'history': value 65 out of range [0, 64]");
    expect_error("[experiment]\neval_episodes = 0\n[env]\nkind = bandit\n" AGENT_REWARD,
                 ":2: 'eval_episodes': value 0 out of range [1, 1e+09]");
    expect_error("[env]\nkind = bandit\n[agent]\nkind = random\n[reward]\nkind = views\n",
                 ":6: 'kind': expected one of purchases|revenue|clicks, got 'views'");
    expect_error("[experiment]\nname = my exp\n[env]\nkind = bandit\n" AGENT_REWARD,
                 ":2: 'name': 'my exp' may contain only letters, digits, '_', '.' and '-'");
    /* An element of an axis is checked like a single value. */
    expect_error("[env]\nkind = bandit\nu0 = 0, x\n" AGENT_REWARD,
                 ":3: 'u0': expected a finite number, got 'x'");
}
END_TEST

START_TEST(errors_lists_and_seeds)
{
    expect_error("[env]\nkind = bandit\nitems = 10,,20\n" AGENT_REWARD,
                 ":3: 'items': empty element in the list '10,,20'");
    expect_error("[env]\nkind = bandit\nitems = 10, 10\n" AGENT_REWARD,
                 ":3: 'items': '10' appears twice in the list");
    expect_error("[experiment]\nseeds =\n[env]\nkind = bandit\n" AGENT_REWARD,
                 ":2: 'seeds': empty sweep (no value given)");
    expect_error("[experiment]\nseeds = 3-1\n[env]\nkind = bandit\n" AGENT_REWARD,
                 ":2: 'seeds': range '3-1' goes down (a-b needs a <= b)");
    expect_error_with("[experiment]\nseeds = -1\n[env]\nkind = bandit\n" AGENT_REWARD,
                      ":2: 'seeds': expected a seed", "got '-1'");
    expect_error("[experiment]\nseeds = 1-3,2\n[env]\nkind = bandit\n" AGENT_REWARD,
                 ":2: 'seeds': seed 2 appears twice");
}
END_TEST

START_TEST(errors_equal_values_in_a_list)
{
    /* Different text, same value: integers, reals, signed zeros, booleans. */
    expect_error("[env]\nkind = bandit\nitems = 50, 20, 5e1\n" AGENT_REWARD,
                 ":3: 'items': '50' and '5e1' are the same value in the list");
    expect_error("[env]\nkind = bandit\n\nu0 = 1, 1.0\n" AGENT_REWARD,
                 ":4: 'u0': '1' and '1.0' are the same value in the list");
    expect_error("[env]\nkind = bandit\nu0 = 0, -0\n" AGENT_REWARD,
                 ":3: 'u0': '0' and '-0' are the same value in the list");
    expect_error("[experiment]\nwindow = 100, 1e2\n[env]\nkind = bandit\n" AGENT_REWARD,
                 ":2: 'window': '100' and '1e2' are the same value in the list");
    expect_override_error("env.utility_step=0.1,0.10",
                          "--set 'env.utility_step=0.1,0.10': 'utility_step': '0.1' and "
                          "'0.10' are the same value in the list");

    const param_spec *spec;
    const agent_type *a = agent_with_type(PARAM_BOOL, &spec);
    char text[512], tail[256];
    snprintf(text, sizeof text, "[env]\nkind = bandit\n[agent]\nkind = %s\n[agent.%s]\n"
             "%s = yes, true\n[reward]\nkind = clicks\n", a->name, a->name, spec->key);
    snprintf(tail, sizeof tail, ":6: '%s': 'yes' and 'true' are the same value in the list",
             spec->key);
    expect_error(text, tail);
}
END_TEST

START_TEST(errors_file_and_sections)
{
    char path[PATH_LEN], err[ERR_LEN], want[ERR_LEN + PATH_LEN];
    experiment x;
    snprintf(path, sizeof path, "%s/no-such.ini", tmpdir);
    ck_assert_int_eq(experiment_load(path, NULL, 0, &x, err), DS_EINPUT);
    snprintf(want, sizeof want, "cannot read '%s': No such file or directory", path);
    ck_assert_str_eq(err, want);
    ck_assert_int_eq(experiment_load(tmpdir, NULL, 0, &x, err), DS_EINPUT);
    snprintf(want, sizeof want, "'%s' is a directory, not an experiment file", tmpdir);
    ck_assert_str_eq(err, want);

    expect_error("[env]\nkind = bandit\n[reward]\nkind = clicks\n", ": missing section [agent]");
    expect_error("[experiment]\nseeds = 1\n" AGENT_REWARD, ": missing section [env]");
    expect_error("[experiment]\nseeds = 1\n\n[env]\nitems = 5\n" AGENT_REWARD,
                 ":4: [env] needs 'kind'");
    expect_error("[env]\nkind = bandit\nitems = 10\nu0 = 1\nitems = 20\n" AGENT_REWARD,
                 ":5: duplicate key 'items' in [env] (first set on line 3)");
    expect_error("[env]\nkind = bandit\nthis is not a key\n" AGENT_REWARD,
                 ":3: syntax error (expected 'key = value' or '[section]')");
    expect_error("[env]\nkind = bandit\n[agent\n",
                 ":3: syntax error (expected 'key = value' or '[section]')");
    /* A line longer than the limit is refused, not cut. */
    char text[512] = "[experiment]\nname = ";
    memset(text + strlen(text), 'a', 300);
    strcat(text, "\n");
    expect_error(text, ":2: line longer than 198 characters");
}
END_TEST

/* "u0 = 0.000...01": a line of exactly len characters (len >= 8) whose value is
 * 1e-(len - 7), so a line cut short would give a different value. */
static void u0_line(size_t len, char *out)
{
    strcpy(out, "u0 = 0.");
    memset(out + 7, '0', len - 8);
    strcpy(out + len - 1, "1");
}

/* The limit is 198 characters as written (inih's 200-byte buffer less "\n" and the
 * NUL), leading whitespace included, "\n" or "\r\n" and a byte order mark not. */
START_TEST(line_length_boundary)
{
    char line[256], text[1024];
    experiment x;

    u0_line(198, line);
    ck_assert_uint_eq(strlen(line), 198);
    snprintf(text, sizeof text, "[env]\nkind = bandit\n%s\n" AGENT_REWARD, line);
    load_ok("long.ini", text, NULL, 0, &x);
    ck_assert_str_eq(run_param_get(&x.runs[0], "env.u0"), "1e-191");
    ck_assert(env_real(&x.runs[0], "u0") == 1e-191);
    experiment_free(&x);

    /* The same line ended by \r\n, or last in a file without a final newline. */
    snprintf(text, sizeof text, "[env]\r\nkind = bandit\r\n%s\r\n" AGENT_REWARD, line);
    load_ok("long.ini", text, NULL, 0, &x);
    ck_assert(env_real(&x.runs[0], "u0") == 1e-191);
    experiment_free(&x);
    snprintf(text, sizeof text, AGENT_REWARD "[env]\nkind = bandit\n%s", line);
    load_ok("long.ini", text, NULL, 0, &x);
    ck_assert(env_real(&x.runs[0], "u0") == 1e-191);
    experiment_free(&x);

    /* A byte order mark does not count. */
    char comment[256] = "\xEF\xBB\xBF;";
    memset(comment + 4, 'c', 197);
    comment[201] = '\0';
    snprintf(text, sizeof text, "%s\n[env]\nkind = bandit\n" AGENT_REWARD, comment);
    load_ok("bom.ini", text, NULL, 0, &x);
    ck_assert_uint_eq(x.n_runs, 1);
    experiment_free(&x);

    /* 199 characters: with \n, with \r\n, at the end of the file, or 198 after an
     * indent. */
    u0_line(199, line);
    ck_assert_uint_eq(strlen(line), 199);
    snprintf(text, sizeof text, "[env]\nkind = bandit\n%s\n" AGENT_REWARD, line);
    expect_error(text, ":3: line longer than 198 characters");
    snprintf(text, sizeof text, "[env]\r\nkind = bandit\r\n%s\r\n" AGENT_REWARD, line);
    expect_error(text, ":3: line longer than 198 characters");
    snprintf(text, sizeof text, AGENT_REWARD "[env]\nkind = bandit\n%s", line);
    expect_error(text, ":8: line longer than 198 characters");
    u0_line(198, line);
    snprintf(text, sizeof text, "[env]\nkind = bandit\n %s\n" AGENT_REWARD, line);
    expect_error(text, ":3: line longer than 198 characters");
}
END_TEST

START_TEST(errors_grid_limit)
{
    /* 100001 seeds x 1 env x 1 agent. */
    expect_error("[experiment]\nseeds = 0-100000\n[env]\nkind = bandit\n" AGENT_REWARD,
                 ": the grid has 100001 runs, more than the limit of 100000");
    /* 2 x 50001 seeds = 100002. */
    expect_error("[experiment]\nseeds = 1-50001\n[env]\nkind = bandit\nitems = 10,20\n"
                 AGENT_REWARD,
                 ": the grid has 100002 runs, more than the limit of 100000");
    /* The product is counted before anything is expanded, however large. */
    expect_error("[experiment]\nseeds = 0-9223372036854775807\n[env]\nkind = bandit\n"
                 AGENT_REWARD,
                 ": the grid has 9223372036854775808 runs, more than the limit of 100000");
}
END_TEST

START_TEST(errors_cross_field_checks)
{
    /* bandit needs slate <= items; the error points at the [env] header. */
    expect_error_with("\n[env]\nkind = bandit\nitems = 2\nslate = 3\n" AGENT_REWARD,
                      ":2: [env] ", "'slate' (3)");
    /* Only the point of the grid where slate > items fails, but the file fails. */
    expect_error_with("[env]\nkind = bandit\nitems = 5,2\nslate = 3\n" AGENT_REWARD,
                      ":1: [env] ", "'items' (2)");
    /* bandit has no purchases: at the [env] kind line when [reward] is defaulted... */
    expect_error("[env]\nkind = bandit\n[agent]\nkind = random\n",
                 ":2: env 'bandit' has no purchases: set [reward] kind = clicks");
    /* ...at the [reward] kind line otherwise, for any value of an axis. */
    expect_error("[env]\nkind = bandit\n[agent]\nkind = random\n[reward]\nkind = purchases\n",
                 ":6: env 'bandit' has no purchases: set [reward] kind = clicks");
    expect_error("[env]\nkind = bandit\n[agent]\nkind = random\n[reward]\nkind = clicks,revenue\n",
                 ":6: env 'bandit' has no purchases: set [reward] kind = clicks");
}
END_TEST

START_TEST(errors_overrides)
{
    expect_override_error("env.items", "--set 'env.items': expected section.key=value");
    expect_override_error("items=5", "--set 'items=5': expected section.key=value");
    expect_override_error(".items=5", "--set '.items=5': expected section.key=value");
    expect_override_error("env.=5", "--set 'env.=5': expected section.key=value");
    expect_override_error("env.items=0",
                          "--set 'env.items=0': 'items': value 0 out of range [1, 1e+07]");
    expect_override_error("envv.items=5",
                          "--set 'envv.items=5': unknown section 'envv' (did you mean 'env'?)");
    expect_override_error("env.itms=5",
                          "--set 'env.itms=5': unknown key 'itms' in [env] (did you mean 'items'?)");
    expect_override_error("experiment.seeds=",
                          "--set 'experiment.seeds=': 'seeds': empty sweep (no value given)");
}
END_TEST

/* "[env] bandit, [agent] random, [reward] clicks" and line 9 in [agent.random]. */
#define SCOPED(line) "[env]\nkind = bandit\n" AGENT_REWARD "[agent.random]\n" line "\n"

START_TEST(errors_scoped_reward_keys)
{
    expect_error(SCOPED("reward.divrsity_bonus = 0.1"),
                 ":9: unknown key 'reward.divrsity_bonus' in [agent.random] (did you mean "
                 "'reward.diversity_bonus'?)");
    expect_error(SCOPED("rewrd.kind = clicks"),
                 ":9: unknown key 'rewrd.kind' in [agent.random] (did you mean 'reward.kind'?)");
    expect_error(SCOPED("reward.temperature = 1"),
                 ":9: unknown key 'reward.temperature' in [agent.random] (expected one of "
                 "reward.kind, reward.diversity_bonus)");
    expect_error(SCOPED("env.items = 5"),
                 ":9: unknown key 'env.items' in [agent.random] (only [reward] keys can be set "
                 "per agent: reward.kind, reward.diversity_bonus)");
    expect_error(SCOPED("experiment.window = 5"),
                 ":9: unknown key 'experiment.window' in [agent.random] (only [reward] keys can "
                 "be set per agent: reward.kind, reward.diversity_bonus)");
    expect_error(SCOPED("diversity_bonus = 0.1"),
                 ":9: unknown key 'diversity_bonus' in [agent.random] (did you mean "
                 "'reward.diversity_bonus'?)");
    expect_error("[env]\nkind = bandit\n[agent]\nkind = random\nreward.diversity_bonus = 1\n"
                 "[reward]\nkind = clicks\n",
                 ":5: unknown key 'reward.diversity_bonus' in [agent] (a reward key goes in "
                 "[reward] for every agent, or in [agent.NAME] for one)");

    /* Values: as in [reward], named by the key as written. */
    expect_error(SCOPED("reward.diversity_bonus = x"),
                 ":9: 'reward.diversity_bonus': expected a finite number, got 'x'");
    expect_error(SCOPED("reward.diversity_bonus = 0, 2e6"),
                 ":9: 'reward.diversity_bonus': value 2e+06 out of range [-1e+06, 1e+06]");
    expect_error(SCOPED("reward.kind = views"),
                 ":9: 'reward.kind': expected one of purchases|revenue|clicks, got 'views'");
    expect_error(SCOPED("reward.diversity_bonus = 0.1, 1e-1"),
                 ":9: 'reward.diversity_bonus': '0.1' and '1e-1' are the same value in the "
                 "list");
    expect_error(SCOPED("reward.diversity_bonus = 0.1\nreward.diversity_bonus = 0.2"),
                 ":10: duplicate key 'reward.diversity_bonus' in [agent.random] (first set on "
                 "line 9)");
    /* A clicks-only env needs clicks in every run, scoped or not. */
    expect_error(SCOPED("reward.kind = clicks, purchases"),
                 ":9: env 'bandit' has no purchases: set reward.kind = clicks in "
                 "[agent.random]");
    expect_error("[env]\nkind = bandit\n[agent]\nkind = random, mmr\n[agent.mmr]\n"
                 "reward.kind = clicks\n",
                 ":2: env 'bandit' has no purchases: set [reward] kind = clicks");

    /* The same through --set. */
    expect_override_error("agent.random.reward.divrsity_bonus=1",
                          "--set 'agent.random.reward.divrsity_bonus=1': unknown key "
                          "'reward.divrsity_bonus' in [agent.random] (did you mean "
                          "'reward.diversity_bonus'?)");
    expect_override_error("agent.random.env.items=5",
                          "--set 'agent.random.env.items=5': unknown key 'env.items' in "
                          "[agent.random] (only [reward] keys can be set per agent: "
                          "reward.kind, reward.diversity_bonus)");
    expect_override_error("agent.random.reward.diversity_bonus=1e7",
                          "--set 'agent.random.reward.diversity_bonus=1e7': "
                          "'reward.diversity_bonus': value 1e+07 out of range [-1e+06, 1e+06]");
    expect_override_error("agent.random.reward.kind=revenue",
                          "--set 'agent.random.reward.kind=revenue': env 'bandit' has no "
                          "purchases: set reward.kind = clicks in [agent.random]");
    expect_override_error("agent.rndom.reward.kind=clicks",
                          "--set 'agent.rndom.reward.kind=clicks': unknown agent 'rndom' in "
                          "section 'agent.rndom' (did you mean 'random'?)");
    expect_override_error("agent.random.=1",
                          "--set 'agent.random.=1': expected section.key=value");
}
END_TEST

START_TEST(errors_non_finite_values)
{
    /* A real key takes finite numbers only; strtod's nan, inf, infinity and an
     * overflowing 1e999 are refused like any other non-number. */
    const char *const reals[] = {"nan", "NAN", "inf", "-inf", "infinity", "1e999", "-1e999"};
    for (size_t i = 0; i < sizeof reals / sizeof *reals; i++) {
        char text[256], tail[128];
        snprintf(text, sizeof text, "[env]\nkind = bandit\nu0 = %s\n" AGENT_REWARD, reals[i]);
        snprintf(tail, sizeof tail, ":3: 'u0': expected a finite number, got '%s'", reals[i]);
        expect_error(text, tail);
        snprintf(text, sizeof text, "[env]\nkind = bandit\nitems = %s\n" AGENT_REWARD, reals[i]);
        snprintf(tail, sizeof tail, ":3: 'items': expected an integer, got '%s'", reals[i]);
        expect_error(text, tail);
    }
    /* In a list, in [reward], and from --set. */
    expect_error("[env]\nkind = bandit\nu0 = 0, 1, nan\n" AGENT_REWARD,
                 ":3: 'u0': expected a finite number, got 'nan'");
    expect_error("[env]\nkind = bandit\n" AGENT_REWARD "diversity_bonus = inf\n",
                 ":8: 'diversity_bonus': expected a finite number, got 'inf'");
    expect_override_error("env.u0=nan", "--set 'env.u0=nan': 'u0': expected a finite number, "
                          "got 'nan'");
    expect_override_error("experiment.window=inf", "--set 'experiment.window=inf': 'window': "
                          "expected an integer, got 'inf'");
}
END_TEST

/* Writes n bytes (NULs allowed) as name in the temporary directory. */
static void write_bytes(const char *name, const char *bytes, size_t n, char *path)
{
    snprintf(path, PATH_LEN, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(errors_text_encoding)
{
    /* Each bad byte sequence as the value of line 3, column 9 onwards. */
    static const struct {
        const char *bytes;
        const char *tail;
    } cases[] = {
        {"\xff", ":3: invalid UTF-8 (byte 0xff at column 9)"},
        {"\x80", ":3: invalid UTF-8 (byte 0x80 at column 9)"},         /* lone continuation */
        {"\xc0\xaf", ":3: invalid UTF-8 (byte 0xc0 at column 9)"},     /* overlong '/' */
        {"\xe0\x80\xaf", ":3: invalid UTF-8 (byte 0xe0 at column 9)"}, /* overlong */
        {"\xed\xa0\x80", ":3: invalid UTF-8 (byte 0xed at column 9)"}, /* surrogate D800 */
        {"\xf4\x90\x80\x80", ":3: invalid UTF-8 (byte 0xf4 at column 9)"}, /* > U+10FFFF */
        {"\xc3", ":3: invalid UTF-8 (byte 0xc3 at column 9)"},         /* cut short */
        {"1\xe2\x82", ":3: invalid UTF-8 (byte 0xe2 at column 10)"},   /* cut short */
        {"\x1b[2J", ":3: control character 0x1b at column 9"},
        {"1\x7f", ":3: control character 0x7f at column 10"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char text[256];
        snprintf(text, sizeof text, "[env]\nkind = bandit\nitems = %s\n" AGENT_REWARD,
                 cases[i].bytes);
        expect_error(text, cases[i].tail);
    }
    /* The same at the very end of a file without a newline. */
    expect_error(AGENT_REWARD "[env]\nkind = bandit\nu0 = 1\xc3",
                 ":8: invalid UTF-8 (byte 0xc3 at column 7)");

    /* A NUL byte would otherwise cut the line short silently. */
    char path[PATH_LEN], err[ERR_LEN], want[ERR_LEN + PATH_LEN];
    static const char nul[] = "[env]\nkind = bandit\nitems = 5\0 junk\n" AGENT_REWARD;
    experiment x;
    write_bytes("nul.ini", nul, sizeof nul - 1, path);
    ck_assert_int_eq(experiment_load(path, NULL, 0, &x, err), DS_EINPUT);
    snprintf(want, sizeof want, "%s:3: NUL byte at column 10 (not a text file?)", path);
    ck_assert_str_eq(err, want);

    /* Valid UTF-8 is fine where names allow it: comments. */
    load_ok("utf8.ini", "; caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\n"
            "[env]\nkind = bandit ; \xc3\xa9t\xc3\xa9\n" AGENT_REWARD, NULL, 0, &x);
    ck_assert_uint_eq(x.n_runs, 1);
    experiment_free(&x);
    /* ...but not in names, which must be plain ASCII. */
    expect_error("[experiment]\nname = caf\xc3\xa9\n[env]\nkind = bandit\n" AGENT_REWARD,
                 ":2: 'name': 'caf\xc3\xa9' may contain only letters, digits, '_', '.' and "
                 "'-'");

    /* --set arguments are checked alike, without echoing the bad bytes. */
    expect_override_error("env.items=\xff", "--set number 1: invalid UTF-8 (byte 0xff at "
                          "column 11)");
    expect_override_error("env.items=1\x1b", "--set number 1: control character 0x1b at "
                          "column 12");
}
END_TEST

START_TEST(errors_unreadable_file)
{
    char path[PATH_LEN], err[ERR_LEN], want[ERR_LEN + PATH_LEN];
    experiment x;
    /* Without permission: root reads anything, so only as another user. */
    if (geteuid() != 0) {
        write_file("secret.ini", "[env]\nkind = bandit\n" AGENT_REWARD, path);
        ck_assert_int_eq(chmod(path, 0), 0);
        ck_assert_int_eq(experiment_load(path, NULL, 0, &x, err), DS_EINPUT);
        snprintf(want, sizeof want, "cannot read '%s': Permission denied", path);
        ck_assert_str_eq(err, want);
        ck_assert_ptr_null(x.runs);
    }
    /* A regular file whose read fails: Linux's /proc/self/mem at offset 0 (EIO). */
    if (access("/proc/self/mem", R_OK) == 0) {
        ck_assert_int_eq(experiment_load("/proc/self/mem", NULL, 0, &x, err), DS_EINPUT);
        ck_assert_str_eq(err, "cannot read '/proc/self/mem': Input/output error");
        ck_assert_ptr_null(x.runs);
    }
}
END_TEST

/* Sizes are checked before anything is allocated: the engine keeps a row per
 * episode (about 130 bytes) and a history ring per user. The exact size depends
 * on the platform's struct sizes, so only the estimate's shape is checked; 1e9
 * episodes need more than 100 GiB on any platform, above the 16 GiB cap. */
START_TEST(errors_memory_estimate)
{
    expect_error_with("[experiment]\ntrain_episodes = 1000000000\n[env]\nkind = bandit\n"
                      AGENT_REWARD,
                      ":2: a run would need about ",
                      "GiB for its episodes and state (1000000500 episodes, 1000 users, 10 "
                      "items, history 10) before its env and agent; the limit is ");
    /* The heaviest key is named: eval_episodes... */
    expect_error_with("[experiment]\ntrain_episodes = 10\neval_episodes = 999999999\n[env]\n"
                      "kind = bandit\n" AGENT_REWARD,
                      ":3: a run would need about ", "(1000000009 episodes");
    /* ...or users (bandit allows 1e8 users: 64 history entries of 8 bytes each). */
    expect_error_with("[experiment]\nhistory = 64\n[env]\nkind = bandit\nusers = 100000000\n"
                      AGENT_REWARD, ":5: a run would need about ", "100000000 users");
    /* Only the point of the grid that is too big fails, but the file fails. */
    expect_error_with("[experiment]\nhistory = 64\n[env]\nkind = bandit\nusers = 10, 100000000\n"
                      AGENT_REWARD, ":5: a run would need about ", "100000000 users");
    /* From --set, where the estimate points. */
    char path[PATH_LEN], err[ERR_LEN];
    const char *overrides[] = {"experiment.train_episodes=1000000000"};
    load_bad("[env]\nkind = bandit\n" AGENT_REWARD, overrides, 1, path, err);
    const char *head = "--set 'experiment.train_episodes=1000000000': a run would need about ";
    ck_assert_msg(strncmp(err, head, strlen(head)) == 0, "%s", err);
    /* 100 GiB or more, however the structs are laid out. */
    double gib = strtod(strstr(err, "about ") + 6, NULL);
    ck_assert_msg(gib > 100 && gib < 1000, "%s", err);
}
END_TEST

START_TEST(grid_at_the_limit_expands)
{
    /* 100000 runs exactly: accepted, and cheap since the seeds of a
     * configuration share it. */
    experiment x;
    load_ok("limit.ini", "[experiment]\nseeds = 1-50000\n[env]\nkind = bandit\nu0 = 1, 2\n"
            AGENT_REWARD, NULL, 0, &x);
    ck_assert_uint_eq(x.n_runs, 100000);
    ck_assert_uint_eq(x.runs[99999].seed, 50000);
    ck_assert_str_eq(run_param_get(&x.runs[99999], "env.u0"), "2");
    experiment_free(&x);
}
END_TEST

START_TEST(seeds_share_their_configuration)
{
    experiment x;
    load_ok("product.ini", product_ini, NULL, 0, &x);
    ck_assert_uint_eq(x.n_runs, 12);
    for (size_t i = 0; i < x.n_runs; i++) {
        const run_spec *r = &x.runs[i], *first = &x.runs[i - i % 3];
        /* Seeds 1-3 of a point: one params array, text and config each. */
        ck_assert_ptr_eq(r->params, first->params);
        ck_assert_ptr_eq(r->config_text, first->config_text);
        ck_assert_ptr_eq(r->env_config, first->env_config);
        ck_assert_ptr_eq(r->agent_config, first->agent_config);
        ck_assert_uint_eq(r->seed, i % 3 + 1);
        if (i % 3)
            ck_assert_int_ne(r->run_id, x.runs[i - 1].run_id);
        else if (i)
            ck_assert_ptr_ne(r->params, x.runs[i - 1].params);
    }
    experiment_free(&x); /* frees each shared block once (ASan would tell) */
}
END_TEST

START_TEST(buffer_loads_like_a_file)
{
    experiment from_file, from_buffer;
    char err[ERR_LEN];
    load_ok("product.ini", product_ini, NULL, 0, &from_file);
    /* Not NUL-terminated: only len bytes are read. */
    char text[sizeof product_ini + 8];
    memcpy(text, product_ini, sizeof product_ini - 1);
    memcpy(text + sizeof product_ini - 1, "junk=1\n", 7);
    ck_assert_int_eq(experiment_load_buffer("product.ini", text, sizeof product_ini - 1,
                                            NULL, 0, &from_buffer, err), DS_OK);
    ck_assert_uint_eq(from_buffer.n_runs, from_file.n_runs);
    for (size_t i = 0; i < from_file.n_runs; i++) {
        ck_assert_int_eq(from_buffer.runs[i].run_id, from_file.runs[i].run_id);
        ck_assert_str_eq(from_buffer.runs[i].config_text, from_file.runs[i].config_text);
    }
    ck_assert_str_eq(from_buffer.path, "product.ini");
    experiment_free(&from_file);
    experiment_free(&from_buffer);

    /* Errors name the buffer as a file; the name gives the default experiment name. */
    static const char bad[] = "[env]\nkind = bandit\nitems = 5\0\n";
    ck_assert_int_eq(experiment_load_buffer("mem.ini", bad, sizeof bad - 1, NULL, 0,
                                            &from_buffer, err), DS_EINPUT);
    ck_assert_str_eq(err, "mem.ini:3: NUL byte at column 10 (not a text file?)");
    ck_assert_int_eq(experiment_load_buffer("mem.ini", "", 0, NULL, 0, &from_buffer, err),
                     DS_EINPUT);
    ck_assert_str_eq(err, "mem.ini: missing section [env]");
    ck_assert_int_eq(experiment_load_buffer("mem.ini", NULL, 0, NULL, 0, &from_buffer, err),
                     DS_EINPUT);
    ck_assert_str_eq(err, "mem.ini: missing section [env]");
    const char *overrides[] = {"env.kind=bandit", "agent.kind=random", "reward.kind=clicks"};
    ck_assert_int_eq(experiment_load_buffer("from-set.ini", NULL, 0, overrides, 3,
                                            &from_buffer, err), DS_OK);
    ck_assert_str_eq(from_buffer.name, "from-set");
    ck_assert_uint_eq(from_buffer.n_runs, 1);
    experiment_free(&from_buffer);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *expand = tcase_create("expand");
    tcase_add_test(expand, simple_file_has_every_default_sorted);
    tcase_add_test(expand, axes_expand_in_order_with_seeds_innermost);
    tcase_add_test(expand, run_ids_are_stable_and_distinct);
    tcase_add_test(expand, logging_changes_the_id_only_when_on);
    tcase_add_test(expand, reformatted_values_keep_run_ids);
    tcase_add_test(expand, params_show_canonical_values);
    tcase_add_test(expand, agent_list_times_seeds);
    tcase_add_test(expand, agent_section_sets_its_parameter);
    tcase_add_test(expand, seed_lists_and_ranges);
    tcase_add_test(expand, overrides_replace_and_add);
    tcase_add_test(expand, scoped_reward_axes_expand_per_agent);
    tcase_add_test(expand, scoped_reward_overrides_reward_for_its_agent_only);
    tcase_add_test(expand, scoped_reward_from_set);
    tcase_add_test(expand, file_syntax_is_forgiving_where_harmless);
    tcase_add_test(expand, variants_run_under_their_names);
    tcase_add_test(expand, grid_at_the_limit_expands);
    tcase_add_test(expand, seeds_share_their_configuration);
    tcase_add_test(expand, buffer_loads_like_a_file);
    suite_add_tcase(s, expand);
    TCase *errors = tcase_create("errors");
    tcase_add_test(errors, errors_unknown_names);
    tcase_add_test(errors, errors_bad_values);
    tcase_add_test(errors, errors_lists_and_seeds);
    tcase_add_test(errors, errors_equal_values_in_a_list);
    tcase_add_test(errors, errors_file_and_sections);
    tcase_add_test(errors, line_length_boundary);
    tcase_add_test(errors, errors_grid_limit);
    tcase_add_test(errors, errors_cross_field_checks);
    tcase_add_test(errors, errors_variants);
    tcase_add_test(errors, errors_transformer_keys);
    tcase_add_test(errors, errors_overrides);
    tcase_add_test(errors, errors_scoped_reward_keys);
    tcase_add_test(errors, errors_non_finite_values);
    tcase_add_test(errors, errors_text_encoding);
    tcase_add_test(errors, errors_unreadable_file);
    tcase_add_test(errors, errors_memory_estimate);
    suite_add_tcase(s, errors);
    return s;
}

/* Removes the temporary directory and the files the tests wrote in it. */
static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *de;
        char path[PATH_LEN];
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", tmpdir, de->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(tmpdir);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/check_config.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_tmpdir();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
