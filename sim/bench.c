/* `divsim bench`: what this machine does with the engine.
 *
 * Every figure is the median of several repetitions, single core (OpenBLAS runs
 * one thread, as in a run). Each case runs in a child process of its own
 * (fork), so that the growth of the peak resident set (getrusage ru_maxrss,
 * measured from the child's start to its end) is the case's own peak memory.
 *
 * Three ways of driving the engine, named in the table:
 *  - direct: the environment and the agent through their interfaces, exactly as
 *    the engine calls them (xNextVisit, xStartSession, xCandidates, xAct, xStep,
 *    xObserve, xEndEpisode, xUpdate every update_every hours), with sessions of
 *    uniformly drawn users back to back and nothing else: no event queue, no
 *    metrics, no store. The user's history is the current session's. This is
 *    what "env-only" and the agents' steps/s measure. Setup (creating the
 *    catalogue, the users, the agent) is not timed; a warm-up precedes the timed
 *    repetitions, which follow one another in the same run.
 *  - engine: run_execute, the whole discrete-event loop with every metric,
 *    timed as (wall(E episodes) - wall(1 episode)) / (steps(E) - steps(1)), so
 *    that setup cancels.
 *  - sweep: sweep_run over a CPU-bound grid into a scratch database, -j 1 then
 *    -j 2, forking the real workers; the figure is the speedup.
 * The dgemm peak is cblas_dgemm on square matrices, single-threaded.
 *
 * Adding a case is one line of the table below: an id, a label, how it is
 * driven, the experiment settings as --set overrides, and sizes. A case whose
 * environment or agent is not built in is left out of the output. */
#include "bench.h"

#include "../agents/encoder.h"
#include "../agents/quant.h"
#include "common.h"
#include "config.h"
#include "rng.h"
#include "run.h"
#include "sketch.h"
#include "sweep.h"
#include "vecmath.h"
#include "version.h"

#include <errno.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <gsl/gsl_cblas.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_randist.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_REPS 16
#define BENCH_MAX_SETS 16

/* ------------------------------------------------------------ the cases */

typedef enum {
    DRIVE_DIRECT,
    DRIVE_ENGINE,
    DRIVE_SWEEP,
    DRIVE_GEMM,
    DRIVE_READ,
    DRIVE_ACT
} drive_kind;

typedef struct {
    const char *id;      /* stable key (JSON, --only) */
    const char *group;   /* heading of the table section */
    const char *label;   /* the configuration, as printed */
    drive_kind drive;
    const char *set;     /* --set overrides, space-separated section.key=value */
    long warmup;         /* direct: steps before timing (learning, if the agent learns) */
    long steps;          /* steps per timed repetition (engine: about this many) */
    int reps;
    int learning;        /* direct: the agent learns while timed (training throughput) */
    double target;       /* the figure the issue asks for (a floor); 0 = none */
} bench_case;

/* Churn off, so that a long timed run keeps its whole population (a random agent
 * dissatisfies users, and 1k users would all churn within a few repetitions). */
#define SHOP_ENV(items, users)                                                       \
    "env.kind=shop env.items=" items " env.users=" users " env.churn_patience=0 " \
    "agent.kind=random"

static const bench_case cases[] = {
    /* shop alone: a random agent costs next to nothing */
    {"shop.1k.10k", "shop env-only (random agent, direct)", "1k items, 10k users", DRIVE_DIRECT,
     SHOP_ENV("1000", "10000"), 100000, 500000, 5, 0, 0},
    {"shop.10k.1k", "shop env-only (random agent, direct)", "10k items, 1k users", DRIVE_DIRECT,
     SHOP_ENV("10000", "1000"), 100000, 500000, 5, 0, 1e6},
    {"shop.10k.10k", "shop env-only (random agent, direct)", "10k items, 10k users", DRIVE_DIRECT,
     SHOP_ENV("10000", "10000"), 100000, 500000, 5, 0, 1e6},
    {"shop.100k.10k", "shop env-only (random agent, direct)", "100k items, 10k users",
     DRIVE_DIRECT, SHOP_ENV("100000", "10000"), 100000, 500000, 5, 0, 0},
    {"shop.1k.1M", "shop env-only (random agent, direct)", "1k items, 1M users", DRIVE_DIRECT,
     SHOP_ENV("1000", "1000000"), 100000, 500000, 5, 0, 0},
    {"shop.10k.1M", "shop env-only (random agent, direct)", "10k items, 1M users", DRIVE_DIRECT,
     SHOP_ENV("10000", "1000000"), 100000, 500000, 5, 0, 1e6},
    {"shop.100k.1M", "shop env-only (random agent, direct)", "100k items, 1M users",
     DRIVE_DIRECT, SHOP_ENV("100000", "1000000"), 100000, 500000, 5, 0, 0},
    /* the same through the whole engine: event queue, metrics, history */
    {"engine.10k.10k", "engine (random agent, run_execute, all metrics)",
     "10k items, 10k users", DRIVE_ENGINE, SHOP_ENV("10000", "10000"), 0, 400000, 3, 0, 0},
    {"engine.10k.1M", "engine (random agent, run_execute, all metrics)",
     "10k items, 1M users", DRIVE_ENGINE, SHOP_ENV("10000", "1000000"), 0, 400000, 3, 0, 0},
    /* agents that score the whole catalogue at every step */
    {"oracle.5k", "full-catalogue scoring (direct)", "oracle, 5k items, d 32, slate 10",
     DRIVE_DIRECT, "env.kind=shop env.items=5000 env.dim=32 env.slate=10 agent.kind=oracle",
     5000, 60000, 5, 0, 60000},
    {"cf.5k", "full-catalogue scoring (direct)", "cf, 5k items, d 32, slate 10 (eval)",
     DRIVE_DIRECT,
     "env.kind=shop env.items=5000 env.dim=32 env.slate=10 env.users=1000 agent.kind=cf "
     "agent.cf.factors=32 agent.cf.retrain_every=48",
     20000, 60000, 5, 0, 60000},
    /* learning agents: env steps per second, updates included */
    {"ppo.2k", "training throughput (direct, updates included)", "ppo, 2k items, hidden 64",
     DRIVE_DIRECT, "env.kind=shop env.items=2000 agent.kind=ppo agent.ppo.hidden=64", 3000,
     20000, 3, 1, 10000},
    {"a2c.2k", "training throughput (direct, updates included)", "a2c, 2k items, hidden 64",
     DRIVE_DIRECT, "env.kind=shop env.items=2000 agent.kind=a2c agent.a2c.hidden=64", 3000,
     20000, 3, 1, 0},
    /* the RecSim interest-evolution port, once it is built in */
    {"recsim_ie.2of10", "recsim_ie (random agent, direct)", "slate 2 of 10 candidates, resampling",
     DRIVE_DIRECT,
     "env.kind=recsim_ie env.slate=2 env.num_candidates=10 env.resample_documents=true "
     "agent.kind=random",
     20000, 200000, 5, 0, 0},
    {"recsim_ie.10of1000", "recsim_ie (random agent, direct)",
     "slate 10 of 1000 candidates, resampling", DRIVE_DIRECT,
     "env.kind=recsim_ie env.slate=10 env.num_candidates=1000 env.resample_documents=true "
     "agent.kind=random",
     20000, 200000, 5, 0, 0},
    /* the act path of the learning agents, double against int8 serving
     * (agents/quant.h; see run_act) */
#define ACT_CASE(id, label, set, steps) \
    {id, "act path: features + logits over 2k items (one core)", label, DRIVE_ACT, set, \
     (steps) / 10, steps, 5, 0, 0}
    ACT_CASE("act.hist16.double", "history enc, hidden 64, d 16, double",
             "act.encoder=history act.embed_dim=16 act.serve=double", 20000),
    ACT_CASE("act.hist16.int8", "history enc, hidden 64, d 16, int8",
             "act.encoder=history act.embed_dim=16 act.serve=int8", 20000),
    ACT_CASE("act.hist16.single", "the same, single (item_precision)",
             "act.encoder=history act.embed_dim=16 act.serve=single", 20000),
    ACT_CASE("act.hist32.double", "history enc, hidden 64, d 32, double",
             "act.encoder=history act.embed_dim=32 act.serve=double", 20000),
    ACT_CASE("act.hist32.int8", "history enc, hidden 64, d 32, int8",
             "act.encoder=history act.embed_dim=32 act.serve=int8", 20000),
    ACT_CASE("act.hist16.slate.double", "d 16 + a sampled slate of 10, double",
             "act.encoder=history act.embed_dim=16 act.serve=double act.slate=1", 20000),
    ACT_CASE("act.hist16.slate.int8", "d 16 + a sampled slate of 10, int8",
             "act.encoder=history act.embed_dim=16 act.serve=int8 act.slate=1", 20000),
    ACT_CASE("act.hist16.slate.single", "d 16 + a sampled slate of 10, single",
             "act.encoder=history act.embed_dim=16 act.serve=single act.slate=1", 20000),
    ACT_CASE("act.tf.double", "transformer (defaults) + policy, double",
             "act.encoder=transformer act.embed_dim=16 act.serve=double", 4000),
    ACT_CASE("act.tf.double_last", "the same, double, last position only",
             "act.encoder=transformer act.embed_dim=16 act.serve=double_last", 4000),
    ACT_CASE("act.tf.int8", "the same, int8, last position only",
             "act.encoder=transformer act.embed_dim=16 act.serve=int8", 4000),
#undef ACT_CASE
    /* parallel runs */
    {"sweep.j2", "sweep scaling (sweep_run, 4 oracle runs)", "-j 2 against -j 1", DRIVE_SWEEP,
     "env.kind=shop env.items=2000 env.dim=16 agent.kind=oracle experiment.seeds=1-4 "
     "experiment.train_episodes=0 experiment.eval_episodes=6000",
     0, 0, 3, 0, 1.8},
    {"dgemm", "machine", "dgemm peak, 1024 x 1024, 1 thread", DRIVE_GEMM, "", 0, 1024, 5, 0, 0},
    /* the peak of the learners' item head in single precision (item_precision) */
    {"sgemm", "machine", "sgemm peak, 1024 x 1024, 1 thread", DRIVE_GEMM, "single", 0, 1024, 5,
     0, 0},
    /* the floor of a full-catalogue pass: 5,000 x 32 doubles through vm_rows_dot */
    {"read", "machine", "scoring pass 5k x 32 doubles (best of 50)", DRIVE_READ, "", 0, 160000,
     9, 0, 0},
    /* the same catalogue as cf's int8 sketch (sim/sketch.h), an eighth of the bytes */
    {"read.i8", "machine", "scoring pass 5k x 32 int8 (best of 50)", DRIVE_READ, "i8", 0,
     160000, 9, 0, 0},
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

/* ------------------------------------------------------------ utilities */

static double wall_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Peak resident set of this process so far, bytes (Linux reports KiB). */
static double peak_rss_bytes(void)
{
    struct rusage u;
    if (getrusage(RUSAGE_SELF, &u) != 0)
        return NAN;
    return 1024.0 * (double)u.ru_maxrss;
}

/* Bytes allocated and not yet freed (glibc 2.33+; NAN elsewhere): what the case's
 * structures hold, without the allocator's slack or untouched pages. */
static double allocated_bytes(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 m = mallinfo2();
    return (double)m.uordblks + (double)m.hblkhd;
#else
    return NAN;
#endif
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(const double *v, int n)
{
    double s[BENCH_MAX_REPS];
    if (n <= 0)
        return NAN;
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, compare_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

/* OpenBLAS's own threads would compete with the measured core (run.c does the same). */
void openblas_set_num_threads(int n);

/* The overrides of a case: its words split in place into sets [*n]. */
static int split_sets(char *text, const char **sets, size_t *n)
{
    *n = 0;
    for (char *tok = strtok(text, " "); tok; tok = strtok(NULL, " ")) {
        if (*n == BENCH_MAX_SETS)
            return DS_EINPUT;
        sets[(*n)++] = tok;
    }
    return DS_OK;
}

/* The name after "PREFIX=" in a case's overrides (e.g. the env kind), or "". */
static void set_value(const char *set, const char *prefix, char *out, size_t n)
{
    out[0] = '\0';
    const char *at = strstr(set, prefix);
    if (!at)
        return;
    at += strlen(prefix);
    size_t len = strcspn(at, " ");
    snprintf(out, n, "%.*s", (int)len, at);
}

/* The case can run in this build: its environment and agent are registered. */
static int case_available(const bench_case *c)
{
    char name[64];
    set_value(c->set, "env.kind=", name, sizeof name);
    if (name[0] && !env_find(name))
        return 0;
    set_value(c->set, "agent.kind=", name, sizeof name);
    return !name[0] || agent_find(name) != NULL;
}

/* ------------------------------------------------------------ results */

typedef struct {
    int ok;
    char message[240];
    int n;                        /* repetitions done */
    double wall[BENCH_MAX_REPS];  /* the figure per repetition, by wall clock */
    double cpu[BENCH_MAX_REPS];   /* ... by this process's CPU time (direct, engine) */
    long steps;                   /* timed steps, all repetitions */
    double peak_bytes;            /* growth of the peak resident set over the case */
    double alloc_bytes;           /* largest allocation held (sampled) over the case */
    double setup_seconds;         /* creating the env and agent (direct), a 1-episode run (engine) */
    double update_gflops;         /* learning: matmul FLOP rate of the update phase */
    double update_share;          /* learning: share of the timed CPU time spent updating */
    double seconds_j1, seconds_j2; /* sweep: median wall time of the grid */
} case_result;

/* ------------------------------------------------------------ experiments */

/* A scratch directory with a one-run experiment file; the case's settings are
 * applied to it as --set overrides. */
typedef struct {
    char dir[64];
    char ini[128];
    char db[128];
} scratch;

static int scratch_create(scratch *s, char *err)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(s->dir, sizeof s->dir, "%.40s/divsim-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(s->dir))
        return err_set(err, DS_EIO, "cannot create a scratch directory '%s': %s", s->dir,
                       strerror(errno));
    snprintf(s->ini, sizeof s->ini, "%s/bench.ini", s->dir);
    snprintf(s->db, sizeof s->db, "%s/bench.db", s->dir);
    FILE *f = fopen(s->ini, "w");
    if (!f)
        return err_set(err, DS_EIO, "cannot write '%s': %s", s->ini, strerror(errno));
    fputs("[experiment]\nname = bench\nseeds = 1\ntrain_episodes = 0\neval_episodes = 1\n"
          "[env]\nkind = shop\n[agent]\nkind = random\n",
          f);
    return fclose(f) == 0 ? DS_OK : err_set(err, DS_EIO, "cannot write '%s'", s->ini);
}

static void scratch_remove_db(const scratch *s)
{
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        char path[160];
        snprintf(path, sizeof path, "%s%s", s->db, suffix[i]);
        unlink(path);
    }
}

static void scratch_destroy(const scratch *s)
{
    if (!s->dir[0])
        return;
    scratch_remove_db(s);
    unlink(s->ini);
    rmdir(s->dir);
}

/* Loads the scratch experiment with the case's overrides. */
static int load_case(const bench_case *c, const scratch *s, experiment *x, char *err)
{
    char text[1024];
    const char *sets[BENCH_MAX_SETS];
    size_t n;
    snprintf(text, sizeof text, "%s", c->set);
    if (split_sets(text, sets, &n) != DS_OK)
        return err_set(err, DS_EINTERNAL, "case '%s' has too many settings", c->id);
    int rc = experiment_load(s->ini, sets, n, x, err);
    if (rc == DS_OK && x->n_runs < 1) {
        experiment_free(x);
        return err_set(err, DS_EINTERNAL, "case '%s' expands to no run", c->id);
    }
    return rc;
}

/* An integer parameter of a run ("agent.ppo.epochs"), or fallback. */
static long run_param_long(const run_spec *r, const char *key, long fallback)
{
    const char *v = run_param_get(r, key);
    return v ? strtol(v, NULL, 10) : fallback;
}

/* ------------------------------------------------------------ direct driver */

typedef struct {
    const run_spec *r;
    gsl_rng *rng[RNG_STREAM_END];
    gsl_rng *visitors;        /* who visits next: the driver's own stream */
    env *e;
    agent *a;
    const env_spec *es;
    int *slate;               /* [slate] */
    history_entry *history;   /* [max_steps] the session's steps, newest first */
    int history_cap;
    double t;                 /* simulated hours */
    double next_update;
    long episode, steps;
    /* updates of learning agents, for the FLOP rate of the update phase */
    long updates;
    long steps_at_update;     /* steps when the previous update was logged */
    long update_steps;        /* steps trained on, summed over updates */
    double update_seconds;    /* CPU time in the calls that updated (other work on the
                                 machine does not count, as in the cpu-time column) */
    char *err;
} driver;

static int driver_log_update(void *ctx, const update_row *row)
{
    driver *d = ctx;
    (void)row;
    d->updates++;
    d->update_steps += d->steps - d->steps_at_update;
    d->steps_at_update = d->steps;
    return DS_OK;
}

static void driver_free(driver *d)
{
    if (d->a)
        d->a->type->xDestroy(d->a);
    if (d->e)
        d->e->type->xDestroy(d->e);
    for (int s = 1; s < RNG_STREAM_END; s++)
        gsl_rng_free(d->rng[s]);
    gsl_rng_free(d->visitors);
    free(d->slate);
    free(d->history);
}

static int driver_create(driver *d, const run_spec *r, char *err)
{
    *d = (driver){.r = r, .err = err};
    for (int s = 1; s < RNG_STREAM_END; s++)
        if (!(d->rng[s] = rng_stream_new(r->seed, (rng_stream)s)))
            return err_set(err, DS_ENOMEM, "out of memory for random streams");
    d->visitors = gsl_rng_alloc(rng_mt19937);
    if (!d->visitors)
        return err_set(err, DS_ENOMEM, "out of memory for random streams");
    gsl_rng_set(d->visitors, (unsigned long)(rng_splitmix64(r->seed ^ 0xbe4c4ULL) | 1));
    env_context ec = {
        .catalogue = d->rng[RNG_CATALOGUE], .users = d->rng[RNG_USERS],
        .arrivals = d->rng[RNG_ARRIVALS], .drift = d->rng[RNG_DRIFT],
        .choices = d->rng[RNG_CHOICES], .purchases = d->rng[RNG_PURCHASES],
        .item_churn = d->rng[RNG_ITEM_CHURN], .reward = (reward_kind)r->settings.reward,
    };
    int rc = r->env->xCreate(r->env_config, &ec, &d->e, err);
    if (rc != DS_OK)
        return rc;
    d->e->type = r->env;
    d->es = &d->e->spec;
    agent_context ac = {
        .init = d->rng[RNG_AGENT_INIT], .sampling = d->rng[RNG_AGENT_SAMPLING],
        .minibatch = d->rng[RNG_MINIBATCH], .reward = (reward_kind)r->settings.reward,
        .log_update = driver_log_update, .log_ctx = d,
    };
    if (r->agent->needs_privileged)
        ac.privileged = env_privileged_view(d->e);
    rc = r->agent->xCreate(r->agent_config, d->es, &ac, &d->a, err);
    if (rc != DS_OK)
        return rc;
    d->a->type = r->agent;
    d->a->spec = d->es;
    d->a->learning = 1;
    d->next_update = d->a->update_every;
    d->history_cap = d->es->max_steps;
    d->slate = calloc((size_t)d->es->slate, sizeof *d->slate);
    d->history = calloc((size_t)d->history_cap + 1, sizeof *d->history);
    if (!d->slate || !d->history)
        return err_set(err, DS_ENOMEM, "out of memory for the bench driver");
    return DS_OK;
}

static int agent_error(driver *d, int rc, const char *what)
{
    return err_set(d->err, rc, "agent '%s' failed to %s: %s", d->a->type->name, what,
                   d->a->err[0] ? d->a->err : "no reason given");
}

/* A user who has not churned, drawn uniformly (xNextVisit says who churned). */
static int pick_visitor(driver *d, int *user)
{
    for (int tries = 0; tries < 100000; tries++) {
        int u = (int)gsl_rng_uniform_int(d->visitors, (unsigned long)d->es->n_users);
        double next;
        int rc = d->e->type->xNextVisit(d->e, u, d->t, &next);
        if (rc != DS_OK)
            return err_set(d->err, rc, "environment failed to schedule a visit");
        if (isfinite(next)) {
            *user = u;
            return DS_OK;
        }
    }
    return err_set(d->err, DS_EINPUT, "nearly every user has churned");
}

/* The unshaped reward of a step, as the engine computes it. */
static double step_reward(const driver *d, const env_response *r)
{
    switch ((reward_kind)d->r->settings.reward) {
    case REWARD_PURCHASES: return r->purchased ? 1.0 : 0.0;
    case REWARD_REVENUE: return r->purchased ? r->revenue : 0.0;
    case REWARD_CLICKS: return r->item >= 0 ? 1.0 : 0.0;
    }
    return 0.0;
}

static void history_push(driver *d, int *len, int item, history_kind kind)
{
    int n = *len < d->history_cap ? *len + 1 : d->history_cap;
    memmove(d->history + 1, d->history, (size_t)(n - 1) * sizeof *d->history);
    d->history[0] = (history_entry){item, kind};
    *len = n;
}

/* The agent's scheduled updates that fall due by the driver's clock. */
static int run_due_updates(driver *d)
{
    agent *a = d->a;
    if (!a->learning || !(a->update_every > 0) || !a->type->xUpdate)
        return DS_OK;
    while (d->t >= d->next_update) {
        int rc = a->type->xUpdate(a, d->next_update);
        if (rc != DS_OK)
            return agent_error(d, rc, "update");
        d->next_update += a->update_every;
    }
    return DS_OK;
}

/* One session of one user, start to end. */
static int drive_session(driver *d)
{
    const env_type *et = d->e->type;
    const agent_type *at = d->a->type;
    int user = 0, rc = pick_visitor(d, &user);
    if (rc != DS_OK)
        return rc;
    if ((rc = et->xStartSession(d->e, user, d->t)) != DS_OK)
        return err_set(d->err, rc, "environment failed to start a session");
    long episode = d->episode++;
    int history_len = 0, k = d->es->slate;
    for (int step = 0;; step++) {
        observation obs = {.user = user, .episode = episode, .step = step, .time = d->t,
                           .since_last_visit = INFINITY, .history = d->history,
                           .history_len = history_len};
        if ((rc = et->xCandidates(d->e, user, &obs.candidates, &obs.n_candidates)) != DS_OK)
            return err_set(d->err, rc, "environment failed to offer candidates");
        if ((rc = at->xAct(d->a, &obs, d->slate)) != DS_OK)
            return agent_error(d, rc, "act");
        env_response r;
        if ((rc = et->xStep(d->e, user, d->slate, d->t, &r)) != DS_OK)
            return err_set(d->err, rc, "environment refused a slate");
        d->steps++;
        double raw = step_reward(d, &r);
        int done = r.done || step + 1 >= d->es->max_steps;
        feedback fb = {.kind = FEEDBACK_STEP, .user = user, .episode = episode, .step = step,
                       .time = d->t, .slate = d->slate, .slate_len = k, .click = r.click,
                       .item = r.item, .purchased = r.purchased, .reward = raw,
                       .raw_reward = raw, .done = done};
        if (at->xObserve && (rc = at->xObserve(d->a, &fb)) != DS_OK)
            return agent_error(d, rc, "observe");
        history_push(d, &history_len, r.item, r.item >= 0 ? HIST_CLICK : HIST_SKIP);
        if (r.purchased)
            history_push(d, &history_len, r.item, HIST_PURCHASE);
        d->t += r.dwell;
        if (done)
            break;
    }
    if (at->xEndEpisode) {
        long before = d->updates;
        double t0 = cpu_seconds();
        rc = at->xEndEpisode(d->a, user, episode);
        if (d->updates != before)
            d->update_seconds += cpu_seconds() - t0;
        if (rc != DS_OK)
            return agent_error(d, rc, "end an episode");
    }
    return run_due_updates(d);
}

/* Sessions until at least `steps` more steps have been taken. */
static int drive_steps(driver *d, long steps)
{
    long until = d->steps + steps;
    int rc = DS_OK;
    while (rc == DS_OK && d->steps < until)
        rc = drive_session(d);
    return rc;
}

/* Matmul FLOPs of one PPO epoch over one stored step: the forward pass of both
 * trunks and of the item scores, and the backward pass (twice the forward: the
 * weights' and the inputs' gradients), 2 FLOPs per multiply-add. */
static double learner_step_flops(const run_spec *r, const char *agent_name)
{
    char key[96];
    snprintf(key, sizeof key, "agent.%s.embed_dim", agent_name);
    double d = (double)run_param_long(r, key, 16);
    snprintf(key, sizeof key, "agent.%s.hidden", agent_name);
    double H = (double)run_param_long(r, key, 64);
    double T = (double)run_param_long(r, "env.topics", 20);
    double N = (double)run_param_long(r, "env.items", 2000);
    double F = 2 * d + 2 * T + 3;
    double forward = (F * H + H * H + H * d) + (F * H + H * H + H) + N * d;
    return 2.0 * 3.0 * forward;
}

static int run_direct(const bench_case *c, const run_spec *r, int reps, long steps,
                      long warmup, case_result *out, char *err)
{
    driver d;
    double t0 = wall_seconds(), alloc0 = allocated_bytes();
    int rc = driver_create(&d, r, err);
    out->setup_seconds = wall_seconds() - t0;
    if (rc == DS_OK)
        rc = drive_steps(&d, warmup);
    if (rc == DS_OK && !c->learning) {
        /* The model as trained so far, then frozen: scoring alone is timed. */
        if (d.a->update_every > 0 && d.a->type->xUpdate &&
            (rc = d.a->type->xUpdate(d.a, d.t)) != DS_OK)
            rc = agent_error(&d, rc, "update");
        d.a->learning = 0;
    }
    double update_seconds = 0, cpu_total = 0;
    long update_steps = 0;
    out->alloc_bytes = allocated_bytes() - alloc0;
    for (int i = 0; rc == DS_OK && i < reps; i++) {
        long s0 = d.steps, u0 = d.update_steps;
        double us0 = d.update_seconds, w0 = wall_seconds(), c0 = cpu_seconds();
        rc = drive_steps(&d, steps);
        double w = wall_seconds() - w0, cpu = cpu_seconds() - c0;
        long taken = d.steps - s0;
        out->wall[i] = taken / w;
        out->cpu[i] = taken / cpu;
        out->steps += taken;
        out->n = i + 1;
        update_seconds += d.update_seconds - us0;
        update_steps += d.update_steps - u0;
        cpu_total += cpu;
        out->alloc_bytes = fmax(out->alloc_bytes, allocated_bytes() - alloc0);
    }
    if (rc == DS_OK && c->learning && update_seconds > 0) {
        char key[96];
        snprintf(key, sizeof key, "agent.%s.epochs", run_agent_name(r));
        double epochs = (double)run_param_long(r, key, 1);
        out->update_gflops =
            epochs * (double)update_steps * learner_step_flops(r, run_agent_name(r)) /
            update_seconds * 1e-9;
        out->update_share = update_seconds / cpu_total;
    }
    driver_free(&d);
    return rc;
}

/* ------------------------------------------------------------ engine */

/* Samples the allocations every 256 episodes of a run. */
typedef struct {
    double base, peak;
} alloc_sampler;

static void sample_allocations(void *ctx, long done, long total)
{
    alloc_sampler *a = ctx;
    if (done % 256 == 0 || done == total)
        a->peak = fmax(a->peak, allocated_bytes() - a->base);
}

static int engine_once(const run_spec *r, double *wall, double *cpu, long *steps,
                       double *alloc, char *err)
{
    run_result res;
    alloc_sampler sampler = {.base = allocated_bytes(), .peak = 0};
    run_hooks hooks = {.on_episode = sample_allocations, .ctx = &sampler};
    double c0 = cpu_seconds();
    int rc = run_execute(r, &hooks, &res, err);
    if (alloc)
        *alloc = fmax(*alloc, sampler.peak);
    *cpu = cpu_seconds() - c0;
    if (rc == DS_OK && res.status != RUN_DONE)
        rc = err_set(err, DS_EINTERNAL, "the run ended %s: %s", run_status_name(res.status),
                     res.message);
    *wall = res.wall_seconds;
    *steps = res.steps;
    run_result_free(&res);
    return rc;
}

static int run_engine(const run_spec *spec, int reps, long steps, case_result *out, char *err)
{
    run_spec r = *spec;
    double setup, setup_cpu, wall, cpu;
    long setup_steps, taken;
    r.settings.train_episodes = 0;
    r.settings.eval_episodes = 1;
    int rc = engine_once(&r, &setup, &setup_cpu, &setup_steps, NULL, err);
    out->setup_seconds = setup;
    /* A calibration run gives the steps per episode. */
    r.settings.eval_episodes = 2000;
    if (rc == DS_OK)
        rc = engine_once(&r, &wall, &cpu, &taken, NULL, err);
    if (rc != DS_OK)
        return rc;
    double per_episode = (double)taken / 2000.0;
    long episodes = (long)((double)steps / (per_episode > 0 ? per_episode : 1.0));
    r.settings.eval_episodes = (int)(episodes < 1 ? 1 : episodes > 100000000 ? 100000000 : episodes);
    r.settings.window = r.settings.eval_episodes;
    for (int i = 0; rc == DS_OK && i < reps; i++) {
        rc = engine_once(&r, &wall, &cpu, &taken, &out->alloc_bytes, err);
        if (rc != DS_OK || wall <= setup || cpu <= setup_cpu)
            break;
        out->wall[i] = (double)(taken - setup_steps) / (wall - setup);
        out->cpu[i] = (double)(taken - setup_steps) / (cpu - setup_cpu);
        out->steps += taken;
        out->n = i + 1;
    }
    return rc;
}

/* ------------------------------------------------------------ sweep */

static int sweep_once(const experiment *x, const scratch *s, int jobs, double *seconds,
                      int *worker, char *err)
{
    scratch_remove_db(s);
    sweep_options opt = {.quiet = 1, .progress = stderr, .jobs = jobs, .shard = 1, .shards = 1};
    sweep_counts counts;
    double t0 = wall_seconds();
    int rc = sweep_run(x, s->db, &opt, &counts, err);
    *seconds = wall_seconds() - t0;
    if (counts.worker) {
        *worker = 1;
        return counts.worker_failed ? DS_EINTERNAL : rc;
    }
    if (rc == DS_OK && counts.done != x->n_runs)
        rc = err_set(err, DS_EINTERNAL, "%zu of %zu sweep runs done", counts.done, x->n_runs);
    return rc;
}

static int run_sweep(const experiment *x, const scratch *s, int reps, case_result *out,
                     int *worker, char *err)
{
    double j1[BENCH_MAX_REPS], j2[BENCH_MAX_REPS];
    int rc = DS_OK;
    for (int i = 0; rc == DS_OK && i < reps; i++) {
        rc = sweep_once(x, s, 1, &j1[i], worker, err);
        if (rc == DS_OK && !*worker)
            rc = sweep_once(x, s, 2, &j2[i], worker, err);
        if (*worker)
            return rc;
        if (rc == DS_OK) {
            out->wall[i] = out->cpu[i] = j1[i] / j2[i];
            out->n = i + 1;
        }
    }
    out->seconds_j1 = median_of(j1, out->n);
    out->seconds_j2 = median_of(j2, out->n);
    return rc;
}

/* ------------------------------------------------------------ dgemm */

/* A square product of n in double or (single) in single precision: the peak of
 * the BLAS the learners' updates run on. */
static void square_product(int single, int n, const void *a, const void *b, void *c)
{
    if (single)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n,
                    0.0f, c, n);
    else
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, a, n, b, n, 0.0,
                    c, n);
}

static int run_gemm(int reps, int n, int single, case_result *out, char *err)
{
    size_t nn = (size_t)n * (size_t)n;
    double *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = malloc(nn * sizeof *c);
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        return err_set(err, DS_ENOMEM, "out of memory for gemm matrices of %d", n);
    }
    for (size_t i = 0; i < nn; i++) { /* the floats, if single, in the first half */
        double x = (double)(i % 7) - 3.0, y = (double)(i % 5) * 0.25;
        if (single) {
            ((float *)(void *)a)[i] = (float)x;
            ((float *)(void *)b)[i] = (float)y;
        } else {
            a[i] = x;
            b[i] = y;
        }
    }
    double flops = 2.0 * n * (double)n * n;
    for (int i = -1; i < reps; i++) { /* one warm-up */
        double w0 = wall_seconds(), c0 = cpu_seconds();
        square_product(single, n, a, b, c);
        double w = wall_seconds() - w0, cpu = cpu_seconds() - c0;
        if (i >= 0) {
            out->wall[i] = flops / w * 1e-9;
            out->cpu[i] = flops / cpu * 1e-9;
            out->n = i + 1;
        }
    }
    free(a);
    free(b);
    free(c);
    return DS_OK;
}

/* ------------------------------------------------------------ memory read */

/* GB/s of the scoring pass itself, vm_rows_dot over a [rows][32] matrix (rows
 * = n / 32): what one full-catalogue pass of cf or the oracle can take at best,
 * compute and memory together. The figure is the best of 50 passes per
 * repetition, as a pass is short (~20 us) and the machine shared. */
/* One scoring pass over n values, as doubles (vm_rows_dot) or, with a sketch
 * started on x, as its int8 pass (sketch_score_blocks); the bytes it reads. */
static double read_pass(const double *a, sketch *sk, const double *x, double *scores, long n,
                        int d)
{
    if (!sk) {
        vm_rows_dot(scores, a, x, (int)(n / d), d);
        return (double)n * sizeof *a;
    }
    sketch_score_blocks(sk, 0, sk->n_blocks);
    return (double)n * sizeof *sk->blocks;
}

static int run_read(int reps, long n, int i8, case_result *out, char *err)
{
    int d = 32, rows = (int)(n / d);
    double *a = malloc((size_t)n * sizeof *a), *x = malloc((size_t)d * sizeof *x);
    double *scores = malloc((size_t)rows * sizeof *scores);
    sketch sk_store = {0}, *sk = NULL;
    int rc = a && x && scores ? DS_OK : DS_ENOMEM;
    if (rc == DS_OK) {
        for (long i = 0; i < n; i++)
            a[i] = 1e-3 * (double)(i % 1000);
        for (int c = 0; c < d; c++)
            x[c] = 1.0 / (c + 1);
        sketch_error bound;
        if (i8 && (rc = sketch_init(&sk_store, rows, d)) == DS_OK) {
            sk = &sk_store;
            sketch_fill(sk, a, NULL);
            if (!sketch_start(sk, x, &bound))
                rc = DS_EINTERNAL;
        }
    }
    for (int i = 0; rc == DS_OK && i < reps; i++) {
        double best = INFINITY, best_cpu = INFINITY, bytes = 0;
        for (int pass = 0; pass < 50; pass++) {
            double w0 = wall_seconds(), c0 = cpu_seconds();
            bytes = read_pass(a, sk, x, scores, n, d);
            best = fmin(best, wall_seconds() - w0);
            best_cpu = fmin(best_cpu, cpu_seconds() - c0);
        }
        out->wall[i] = bytes / best * 1e-9;
        out->cpu[i] = bytes / fmax(best_cpu, 1e-9) * 1e-9;
        out->n = i + 1;
    }
    free(a);
    free(x);
    free(scores);
    sketch_free(&sk_store);
    if (rc == DS_EINTERNAL)
        return err_set(err, rc, "the 'read.i8' sketch declined its vector");
    return rc == DS_OK ? DS_OK : err_set(err, rc, "out of memory for %ld doubles", n);
}

/* ------------------------------------------------------------ act path */

/* The act path of a learning agent, outside the engine: the state features of
 * an observation and the policy's logits over the whole catalogue (with
 * act.slate=1 also a Plackett-Luce slate of 10 drawn from them, as a learner
 * acts while sampling), with the double networks (policy_forward on
 * encoder_features or transformer_features, what learner_act runs) or with
 * the int8 snapshots of agents/quant.h (act.serve=int8), or (act.serve=single,
 * history encoder) the scores and weights in single precision as learner_act
 * computes them by default (item_precision = single); double_last is the
 * transformer snapshot's last-position forward on the double weights. The
 * world has the shop's default sizes (2,000 items over 20 topics, 20 steps);
 * the acts cycle through 64 observations with random histories (10 entries,
 * the engine's default, for the history encoder; 16, its whole context, for
 * the transformer) and session logs of 20 items. The weights are the
 * initialisations with every weight matrix redrawn N(0, 1 / fan_in), a
 * trained network's scale (GELU's erfc costs more on wider inputs). */

enum { ACT_ITEMS = 2000, ACT_TOPICS = 20, ACT_POOL = 64, ACT_SESSION = 20, ACT_K = 10 };
enum { SERVE_DOUBLE, SERVE_INT8, SERVE_DOUBLE_LAST, SERVE_SINGLE };

typedef struct {
    int use_transformer, embed_dim, serve, slate;
    int topics[ACT_ITEMS];
    history_entry history[ACT_POOL][TRANSFORMER_MAX_CONTEXT];
    int session[ACT_POOL][ACT_SESSION];
    observation obs[ACT_POOL];
    nn_layout layout;
    encoder enc;
    transformer tf;
    transformer_work tw;
    policy_net net;
    nn_params p;
    policy_work pw;
    quant_policy qp;
    quant_transformer qt;
    nn_softmax soft;
    double *x, *logits;   /* [n_features], [ACT_ITEMS] */
    float *E_single;      /* SERVE_SINGLE: E_out in single precision */
    int positions[ACT_K];
    gsl_rng *r;
} act_bench;

static void act_free(act_bench *b)
{
    quant_policy_free(&b->qp);
    quant_transformer_free(&b->qt);
    transformer_work_free(&b->tw);
    policy_work_free(&b->pw);
    nn_params_free(&b->p);
    free(b->x);
    free(b->logits);
    free(b->E_single);
    gsl_rng_free(b->r);
    free(b);
}

/* The pool of observations, drawn from b->r. */
static void act_observations(act_bench *b)
{
    int len = b->use_transformer ? b->tf.cfg.context : 10;
    for (int i = 0; i < ACT_POOL; i++) {
        for (int j = 0; j < len; j++) {
            int kind = (int)gsl_rng_uniform_int(b->r, 3);
            int item = (int)gsl_rng_uniform_int(b->r, ACT_ITEMS);
            b->history[i][j] = (history_entry){kind == HIST_SKIP ? -1 : item, kind};
        }
        for (int j = 0; j < ACT_SESSION; j++)
            b->session[i][j] = (int)gsl_rng_uniform_int(b->r, ACT_ITEMS);
        b->obs[i] = (observation){.user = i, .episode = i, .step = i % 20, .time = i,
                                  .since_last_visit = 1.0 + i, .history = b->history[i],
                                  .history_len = len};
    }
}

static int act_create(const bench_case *c, act_bench **out, char *err)
{
    char v[32];
    act_bench *b = calloc(1, sizeof *b);
    if (!b || !(b->r = gsl_rng_alloc(rng_mt19937))) {
        free(b);
        return err_set(err, DS_ENOMEM, "out of memory for the act bench");
    }
    gsl_rng_set(b->r, 1);
    set_value(c->set, "act.encoder=", v, sizeof v);
    b->use_transformer = strcmp(v, "transformer") == 0;
    set_value(c->set, "act.embed_dim=", v, sizeof v);
    b->embed_dim = atoi(v);
    set_value(c->set, "act.serve=", v, sizeof v);
    b->serve = strcmp(v, "int8") == 0          ? SERVE_INT8
               : strcmp(v, "double_last") == 0 ? SERVE_DOUBLE_LAST
               : strcmp(v, "single") == 0      ? SERVE_SINGLE
                                               : SERVE_DOUBLE;
    set_value(c->set, "act.slate=", v, sizeof v);
    b->slate = strcmp(v, "1") == 0;
    for (int i = 0; i < ACT_ITEMS; i++)
        b->topics[i] = i % ACT_TOPICS;
    env_spec spec = {.n_items = ACT_ITEMS, .n_users = ACT_POOL, .slate = ACT_K,
                     .n_topics = ACT_TOPICS, .max_steps = 20, .item_topic = b->topics};
    transformer_config cfg;
    transformer_config_defaults(&cfg);
    nn_layout_init(&b->layout);
    int rc = b->use_transformer ? transformer_init(&b->tf, &spec, &cfg, &b->layout, err)
                                : encoder_init(&b->enc, &spec, b->embed_dim, 0.8, &b->layout, err);
    int F = b->use_transformer ? b->tf.n_features : b->enc.n_features;
    if (rc == DS_OK)
        rc = policy_init(&b->net, ACT_ITEMS, F, 64, b->embed_dim, 1, &b->layout, err);
    if (rc == DS_OK)
        rc = nn_params_alloc(&b->p, b->layout.size, err);
    if (rc == DS_OK)
        rc = policy_work_alloc(&b->pw, &b->net, err);
    if (rc == DS_OK && b->use_transformer)
        rc = transformer_work_alloc(&b->tw, &b->tf, err);
    b->x = calloc((size_t)F, sizeof *b->x);
    b->logits = calloc(ACT_ITEMS, sizeof *b->logits);
    if (rc == DS_OK && (!b->x || !b->logits))
        rc = err_set(err, DS_ENOMEM, "out of memory for the act bench");
    if (rc != DS_OK) {
        act_free(b);
        return rc;
    }
    if (b->use_transformer)
        transformer_init_weights(&b->tf, b->p.w, b->r);
    else
        encoder_init_weights(&b->enc, b->p.w, b->r);
    policy_init_weights(&b->net, b->p.w, b->r);
    for (int i = 0; i < b->layout.n_tensors; i++) {
        const nn_tensor *t = &b->layout.tensors[i];
        if (strstr(t->name, "_W"))
            nn_init_normal(b->p.w + t->offset, b->r, 1.0 / sqrt(t->cols),
                           (size_t)t->rows * (size_t)t->cols);
    }
    act_observations(b);
    if (b->serve == SERVE_INT8)
        rc = quant_policy_build(&b->qp, &b->net, b->p.w, err);
    size_t table = (size_t)ACT_ITEMS * (size_t)b->embed_dim;
    if (b->serve == SERVE_SINGLE && !(b->E_single = malloc(table * sizeof *b->E_single)))
        rc = err_set(err, DS_ENOMEM, "out of memory for the act bench");
    if (b->E_single)
        vm_to_single(b->E_single, b->p.w + b->net.E_out, table);
    if (rc == DS_OK && b->use_transformer && b->serve != SERVE_DOUBLE)
        rc = quant_transformer_build(&b->qt, &b->tf, b->p.w,
                                     b->serve == SERVE_INT8 ? QUANT_INT8 : QUANT_DOUBLE, err);
    if (rc != DS_OK) {
        act_free(b);
        return rc;
    }
    *out = b;
    return DS_OK;
}

/* One act on observation i of the pool. */
static int act_once(act_bench *b, int i, char *err)
{
    const observation *o = &b->obs[i % ACT_POOL];
    const int *session = b->session[i % ACT_POOL];
    int rc;
    if (!b->use_transformer)
        rc = encoder_features(&b->enc, b->p.w, o, session, ACT_SESSION, b->x, NULL, err);
    else if (b->serve == SERVE_DOUBLE)
        rc = transformer_features(&b->tf, b->p.w, o, session, ACT_SESSION, b->x, NULL, &b->tw,
                                  err);
    else
        rc = quant_transformer_features(&b->qt, o, session, ACT_SESSION, b->x, NULL, err);
    if (rc != DS_OK)
        return rc;
    const double *logits = b->pw.logits;
    if (b->serve == SERVE_INT8) {
        quant_policy_logits(&b->qp, b->x, NULL, ACT_ITEMS, b->logits);
        logits = b->logits;
    } else if (b->serve == SERVE_SINGLE) {
        policy_forward_single(&b->net, b->p.w, b->x, b->E_single, &b->pw, NULL);
    } else {
        policy_forward(&b->net, b->p.w, b->x, NULL, ACT_ITEMS, &b->pw, NULL);
    }
    if (!b->slate)
        return DS_OK;
    if (b->serve == SERVE_SINGLE)
        nn_softmax_weigh_single(&b->soft, b->pw.weights, logits, ACT_ITEMS);
    else
        nn_softmax_weigh(&b->soft, b->pw.weights, logits, ACT_ITEMS);
    return nn_softmax_pl_sample(b->positions, b->pw.work, b->r, &b->soft, ACT_K);
}

static int run_act(const bench_case *c, int reps, long steps, long warmup, case_result *out,
                   char *err)
{
    act_bench *b = NULL;
    double t0 = wall_seconds(), alloc0 = allocated_bytes();
    int rc = act_create(c, &b, err);
    out->setup_seconds = wall_seconds() - t0;
    if (rc != DS_OK)
        return rc;
    out->alloc_bytes = allocated_bytes() - alloc0;
    for (long i = 0; rc == DS_OK && i < warmup; i++)
        rc = act_once(b, (int)(i % ACT_POOL), err);
    for (int rep = 0; rc == DS_OK && rep < reps; rep++) {
        double w0 = wall_seconds(), c0 = cpu_seconds();
        for (long i = 0; rc == DS_OK && i < steps; i++)
            rc = act_once(b, (int)(i % ACT_POOL), err);
        double w = wall_seconds() - w0, cpu = cpu_seconds() - c0;
        out->wall[rep] = (double)steps / w;
        out->cpu[rep] = (double)steps / fmax(cpu, 1e-9);
        out->steps += steps;
        out->n = rep + 1;
    }
    act_free(b);
    return rc;
}

/* ------------------------------------------------------------ one case */

/* Runs case c in this (child) process into out. */
static int run_case(const bench_case *c, const bench_options *opt, case_result *out,
                    int *worker, char *err)
{
    int reps = opt->reps > 0 ? opt->reps : c->reps;
    long steps = c->steps, warmup = c->warmup;
    if (opt->quick) {
        reps = 1;
        steps = steps / 20 > 0 ? steps / 20 : 1;
        warmup = warmup / 20;
    }
    if (opt->steps > 0 && c->drive != DRIVE_GEMM && c->drive != DRIVE_READ)
        steps = opt->steps;
    if (reps > BENCH_MAX_REPS)
        reps = BENCH_MAX_REPS;
    double rss0 = peak_rss_bytes();
    if (c->drive == DRIVE_ACT) {
        int rc = run_act(c, reps, steps, warmup, out, err);
        out->peak_bytes = peak_rss_bytes() - rss0;
        return rc;
    }
    if (c->drive == DRIVE_GEMM || c->drive == DRIVE_READ) {
        int single = strcmp(c->set, "single") == 0, i8 = strcmp(c->set, "i8") == 0;
        int rc = c->drive == DRIVE_GEMM
                     ? run_gemm(reps, (int)steps < 64 ? 64 : (int)steps, single, out, err)
                     : run_read(reps, c->steps, i8, out, err);
        out->peak_bytes = peak_rss_bytes() - rss0;
        return rc;
    }
    scratch s = {.dir = ""};
    experiment x;
    int rc = scratch_create(&s, err);
    if (rc == DS_OK)
        rc = load_case(c, &s, &x, err);
    if (rc != DS_OK) {
        scratch_destroy(&s);
        return rc;
    }
    if (opt->quick && c->drive == DRIVE_SWEEP)
        for (size_t i = 0; i < x.n_runs; i++)
            x.runs[i].settings.eval_episodes = 200;
    switch (c->drive) {
    case DRIVE_DIRECT: rc = run_direct(c, &x.runs[0], reps, steps, warmup, out, err); break;
    case DRIVE_ENGINE: rc = run_engine(&x.runs[0], reps, steps, out, err); break;
    case DRIVE_SWEEP: rc = run_sweep(&x, &s, reps, out, worker, err); break;
    case DRIVE_GEMM:
    case DRIVE_READ:
    case DRIVE_ACT: break;
    }
    if (*worker) /* a sweep worker: leave everything to the process that forked it */
        return rc;
    out->peak_bytes = peak_rss_bytes() - rss0;
    experiment_free(&x);
    scratch_destroy(&s);
    return rc;
}

/* Runs case c in a child process; the parent gets its result through a pipe. */
static int fork_case(const bench_case *c, const bench_options *opt, case_result *out,
                     int *worker, char *err)
{
    int fds[2];
    if (pipe(fds) != 0)
        return err_set(err, DS_EIO, "cannot create a pipe: %s", strerror(errno));
    fflush(NULL); /* nothing buffered may be written twice */
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return err_set(err, DS_EIO, "cannot fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        case_result res = {0};
        char why[ERR_LEN] = "";
        int child_worker = 0;
        int rc = run_case(c, opt, &res, &child_worker, why);
        *worker = 1;
        if (child_worker) /* a sweep worker inside the child */
            return rc;
        res.ok = rc == DS_OK;
        snprintf(res.message, sizeof res.message, "%s", rc == DS_OK ? "" : why);
        rc = fd_write_all(fds[1], &res, sizeof res) == 0 ? DS_OK : DS_EIO;
        close(fds[1]);
        return rc;
    }
    close(fds[1]);
    int got = fd_read_all(fds[0], out, sizeof *out);
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (got != 1) {
        *out = (case_result){0};
        snprintf(out->message, sizeof out->message, "the case's process died (%s %d)",
                 WIFSIGNALED(status) ? "signal" : "status",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    }
    return DS_OK;
}

/* ------------------------------------------------------------ output */

typedef struct {
    const bench_case *c;
    case_result r;
    int ran;
} row;

static const row *find_row(const row *rows, int n, const char *id)
{
    for (int i = 0; i < n; i++)
        if (rows[i].ran && rows[i].r.ok && strcmp(rows[i].c->id, id) == 0)
            return &rows[i];
    return NULL;
}

static double row_median(const row *w) { return median_of(w->r.wall, w->r.n); }

/* The case's memory: its allocations where the C library reports them, else the
 * growth of its peak resident set. */
static double row_memory(const row *w)
{
    return isfinite(w->r.alloc_bytes) && w->r.alloc_bytes > 0 ? w->r.alloc_bytes
                                                              : w->r.peak_bytes;
}

/* Figures derived from several cases. */
typedef struct {
    const char *id, *label, *unit;
    double value, target;
    int below; /* the target is a ceiling */
} derived;

/* int8 over double acts/s, by CPU time (the machine may be shared). */
static int derive_act(const row *rows, int n, derived *out)
{
    static const struct {
        const char *id, *fast, *slow, *label;
        double target;
    } pairs[] = {
        {"act.hist16.speedup", "act.hist16.int8", "act.hist16.double",
         "act path int8 / double, history enc, d 16", 2.0},
        {"act.hist32.speedup", "act.hist32.int8", "act.hist32.double",
         "act path int8 / double, history enc, d 32", 2.0},
        {"act.hist16.slate.speedup", "act.hist16.slate.int8", "act.hist16.slate.double",
         "the same with a sampled slate, d 16", 0},
        {"act.hist16.single_speedup", "act.hist16.single", "act.hist16.double",
         "act path single / double, history enc, d 16", 0},
        {"act.hist16.slate.single_speedup", "act.hist16.slate.single", "act.hist16.slate.double",
         "the same with a sampled slate, d 16", 0},
        {"act.tf.speedup", "act.tf.int8", "act.tf.double",
         "act path int8 / double, transformer", 2.0},
        {"act.tf.speedup_same_path", "act.tf.int8", "act.tf.double_last",
         "transformer int8 / double, both last-only", 0},
    };
    int m = 0;
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        const row *fast = find_row(rows, n, pairs[i].fast), *slow = find_row(rows, n, pairs[i].slow);
        if (fast && slow)
            out[m++] = (derived){pairs[i].id, pairs[i].label, "x",
                                 median_of(fast->r.cpu, fast->r.n) / median_of(slow->r.cpu, slow->r.n),
                                 pairs[i].target, 0};
    }
    return m;
}

/* shop's default dim, which the env-only and engine cases keep: x_u and mu_u are
 * the user's d-dimensional vectors. */
#define SHOP_DIM 16.0

static int derive(const row *rows, int n, derived *out)
{
    int m = 0;
    const row *a = find_row(rows, n, "shop.10k.1k"), *b = find_row(rows, n, "shop.10k.1M");
    if (a && b)
        out[m++] = (derived){"shop.population_cost_ratio",
                             "cost per step, 1M users / 1k users (10k items)", "x",
                             row_median(a) / row_median(b), 1.3, 1};
    a = find_row(rows, n, "shop.10k.10k");
    if (a && b) {
        double per_user = (row_memory(b) - row_memory(a)) / 990000.0;
        out[m++] = (derived){"shop.bytes_per_user", "shop: bytes per user", "B", per_user, 0, 0};
        out[m++] = (derived){"shop.bytes_per_user_beyond_vectors",
                             "shop: bytes per user beyond x_u, mu_u (d 16)", "B",
                             per_user - 2 * SHOP_DIM * 8, 256, 1};
    }
    a = find_row(rows, n, "shop.1k.10k");
    b = find_row(rows, n, "shop.100k.10k");
    if (a && b)
        out[m++] = (derived){"shop.bytes_per_item", "shop: bytes per item", "B",
                             (row_memory(b) - row_memory(a)) / 99000.0, 0, 0};
    a = find_row(rows, n, "engine.10k.10k");
    b = find_row(rows, n, "engine.10k.1M");
    if (a && b) {
        double per_user = (row_memory(b) - row_memory(a)) / 990000.0;
        out[m++] = (derived){"engine.bytes_per_user", "engine run: bytes per user", "B",
                             per_user, 0, 0};
        out[m++] = (derived){"engine.bytes_per_user_beyond_vectors",
                             "engine run: bytes per user beyond x_u, mu_u (d 16)", "B",
                             per_user - 2 * SHOP_DIM * 8, 256, 1};
        out[m++] = (derived){"engine.population_cost_ratio",
                             "engine: cost per step, 1M users / 10k users", "x",
                             row_median(a) / row_median(b), 0, 0};
    }
    const row *ppo = find_row(rows, n, "ppo.2k"), *peak = find_row(rows, n, "dgemm");
    const row *speak = find_row(rows, n, "sgemm");
    if (ppo && ppo->r.update_gflops > 0) {
        out[m++] = (derived){"ppo.update_gflops", "ppo update phase: matmul GFLOP/s", "GFLOP/s",
                             ppo->r.update_gflops, 0, 0};
        out[m++] = (derived){"ppo.update_time_share", "ppo: share of time in updates", "",
                             ppo->r.update_share, 0, 0};
        if (peak)
            out[m++] = (derived){"ppo.update_peak_fraction",
                                 "ppo update phase / dgemm peak", "",
                                 ppo->r.update_gflops / row_median(peak), 0, 0};
        if (speak) /* the item head, most of the FLOPs, runs in single precision */
            out[m++] = (derived){"ppo.update_sgemm_peak_fraction",
                                 "ppo update phase / sgemm peak", "",
                                 ppo->r.update_gflops / row_median(speak), 0, 0};
    }
    m += derive_act(rows, n, out + m);
    const row *read = find_row(rows, n, "read");
    if (read)
        out[m++] = (derived){"scoring.floor_steps_per_second",
                             "full-catalogue pass floor (5k x 32 doubles)", "steps/s",
                             row_median(read) * 1e9 / (5000.0 * 32 * 8), 0, 0};
    read = find_row(rows, n, "read.i8");
    if (read)
        out[m++] = (derived){"scoring.i8_floor_steps_per_second",
                             "int8 sketch pass floor (5k x 32)", "steps/s",
                             row_median(read) * 1e9 / (5000.0 * 32 * 1), 0, 0};
    return m;
}

static const char *unit_of(const bench_case *c)
{
    switch (c->drive) {
    case DRIVE_SWEEP: return "x";
    case DRIVE_GEMM: return "GFLOP/s";
    case DRIVE_READ: return "GB/s";
    case DRIVE_ACT: return "acts/s";
    default: return "steps/s";
    }
}

static void read_loadavg(char *out, size_t n)
{
    snprintf(out, n, "n/a");
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f)
        return;
    double a, b, c;
    if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
        snprintf(out, n, "%.2f %.2f %.2f", a, b, c);
    fclose(f);
}

static void read_cpu_model(char *out, size_t n)
{
    snprintf(out, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            const char *colon = strchr(line, ':');
            if (colon) {
                colon += strspn(colon + 1, " \t") + 1;
                snprintf(out, n, "%.*s", (int)strcspn(colon, "\n"), colon);
            }
            break;
        }
    }
    fclose(f);
}

/* 1234567 as "1,234,567". */
static void with_commas(double v, char *out, size_t n)
{
    char digits[32];
    snprintf(digits, sizeof digits, "%.0f", v);
    size_t len = strlen(digits), o = 0;
    for (size_t i = 0; i < len && o + 2 < n; i++) {
        out[o++] = digits[i];
        size_t left = len - i - 1;
        if (left > 0 && left % 3 == 0 && digits[i] != '-')
            out[o++] = ',';
    }
    out[o] = '\0';
}

static void print_figure(FILE *out, const bench_case *c, double v)
{
    char text[40];
    if (c->drive == DRIVE_DIRECT || c->drive == DRIVE_ENGINE) {
        with_commas(v, text, sizeof text);
        fprintf(out, "%12s", text);
    } else {
        fprintf(out, "%12.2f", v);
    }
}

static void print_table(FILE *out, const row *rows, int n, const derived *dv, int m,
                        const char *load0, const char *load1, const char *cpu)
{
    fprintf(out, "divsim %s bench: %s, %ld cores online, single-core figures\n",
            divsim_version(), cpu, sysconf(_SC_NPROCESSORS_ONLN));
    fprintf(out, "load average: %s at start, %s at end (other work on the machine "
                 "slows wall-clock figures)\n\n", load0, load1);
    fprintf(out, "%-46s %12s %12s %8s %7s %9s %9s  %s\n", "case", "median", "cpu-time",
            "us/step", "spread", "alloc MiB", "peak MiB", "target");
    const char *group = "";
    for (int i = 0; i < n; i++) {
        const row *w = &rows[i];
        if (!w->ran)
            continue;
        if (strcmp(group, w->c->group) != 0) {
            group = w->c->group;
            fprintf(out, "%s\n", group);
        }
        fprintf(out, "  %-44s ", w->c->label);
        if (!w->r.ok) {
            fprintf(out, "failed: %s\n", w->r.message);
            continue;
        }
        double med = median_of(w->r.wall, w->r.n), cpu_med = median_of(w->r.cpu, w->r.n);
        double lo = w->r.wall[0], hi = w->r.wall[0];
        for (int j = 1; j < w->r.n; j++) {
            lo = fmin(lo, w->r.wall[j]);
            hi = fmax(hi, w->r.wall[j]);
        }
        print_figure(out, w->c, med);
        print_figure(out, w->c, cpu_med);
        if (w->c->drive == DRIVE_DIRECT || w->c->drive == DRIVE_ENGINE)
            fprintf(out, " %8.3f", 1e6 / med);
        else
            fprintf(out, " %8s", unit_of(w->c));
        fprintf(out, " %6.1f%% %9.1f %9.1f", med > 0 ? 100.0 * (hi - lo) / med : 0.0,
                w->r.alloc_bytes / (1024.0 * 1024.0), w->r.peak_bytes / (1024.0 * 1024.0));
        if (w->c->target > 0)
            fprintf(out, "  >= %g: %s", w->c->target, med >= w->c->target ? "met" : "NOT met");
        fputc('\n', out);
    }
    if (m > 0)
        fprintf(out, "derived\n");
    for (int i = 0; i < m; i++) {
        fprintf(out, "  %-44s %12.3f %s", dv[i].label, dv[i].value, dv[i].unit);
        if (dv[i].target > 0)
            fprintf(out, "  %s %g: %s", dv[i].below ? "<=" : ">=", dv[i].target,
                    (dv[i].below ? dv[i].value <= dv[i].target : dv[i].value >= dv[i].target)
                        ? "met" : "NOT met");
        fputc('\n', out);
    }
    fprintf(out, "\nmedian: of the repetitions, by wall clock; cpu-time: the same by this "
                 "process's CPU time;\nspread: (max - min) / median over the repetitions; "
                 "alloc MiB: the most the case held\nallocated (mallinfo2, sampled); peak "
                 "MiB: growth of the peak resident set (ru_maxrss)\nover the case, setup "
                 "included; bytes per user and item are differences of alloc\nbetween "
                 "populations and catalogues. direct: env and agent driven through their\n"
                 "interfaces; engine: run_execute, setup subtracted.\n");
}

static void json_number(FILE *out, double v)
{
    if (isfinite(v))
        fprintf(out, "%.6g", v);
    else
        fputs("null", out);
}

static void print_json(FILE *out, const row *rows, int n, const derived *dv, int m,
                       const char *load0, const char *load1, const char *cpu)
{
    fprintf(out, "{\n  \"version\": \"%s\",\n  \"cpu\": \"%s\",\n  \"cores\": %ld,\n",
            divsim_version(), cpu, sysconf(_SC_NPROCESSORS_ONLN));
    fprintf(out, "  \"load_average_start\": \"%s\",\n  \"load_average_end\": \"%s\",\n",
            load0, load1);
    fputs("  \"cases\": [", out);
    int first = 1;
    for (int i = 0; i < n; i++) {
        const row *w = &rows[i];
        if (!w->ran)
            continue;
        fprintf(out, "%s\n    {\"id\": \"%s\", \"group\": \"%s\", \"label\": \"%s\", "
                     "\"unit\": \"%s\", \"ok\": %s",
                first ? "" : ",", w->c->id, w->c->group, w->c->label, unit_of(w->c),
                w->r.ok ? "true" : "false");
        first = 0;
        if (!w->r.ok) {
            fputs(", \"error\": \"", out);
            for (const char *p = w->r.message; *p; p++)
                if (*p == '"' || *p == '\\')
                    fprintf(out, "\\%c", *p);
                else if ((unsigned char)*p >= 0x20)
                    fputc(*p, out);
            fputs("\"}", out);
            continue;
        }
        fputs(", \"median\": ", out);
        json_number(out, median_of(w->r.wall, w->r.n));
        fputs(", \"median_cpu_time\": ", out);
        json_number(out, median_of(w->r.cpu, w->r.n));
        fputs(", \"repetitions\": [", out);
        for (int j = 0; j < w->r.n; j++) {
            fputs(j ? ", " : "", out);
            json_number(out, w->r.wall[j]);
        }
        fputs("], \"peak_bytes\": ", out);
        json_number(out, w->r.peak_bytes);
        fputs(", \"allocated_bytes\": ", out);
        json_number(out, w->r.alloc_bytes);
        fputs(", \"setup_seconds\": ", out);
        json_number(out, w->r.setup_seconds);
        fprintf(out, ", \"timed_steps\": %ld", w->r.steps);
        if (w->c->drive == DRIVE_SWEEP) {
            fputs(", \"seconds_j1\": ", out);
            json_number(out, w->r.seconds_j1);
            fputs(", \"seconds_j2\": ", out);
            json_number(out, w->r.seconds_j2);
        }
        if (w->r.update_gflops > 0) {
            fputs(", \"update_gflops\": ", out);
            json_number(out, w->r.update_gflops);
            fputs(", \"update_time_share\": ", out);
            json_number(out, w->r.update_share);
        }
        if (w->c->target > 0) {
            fputs(", \"target\": ", out);
            json_number(out, w->c->target);
        }
        fputc('}', out);
    }
    fputs("\n  ],\n  \"derived\": [", out);
    for (int i = 0; i < m; i++) {
        fprintf(out, "%s\n    {\"id\": \"%s\", \"label\": \"%s\", \"unit\": \"%s\", \"value\": ",
                i ? "," : "", dv[i].id, dv[i].label, dv[i].unit);
        json_number(out, dv[i].value);
        if (dv[i].target > 0) {
            fprintf(out, ", \"%s\": ", dv[i].below ? "ceiling" : "target");
            json_number(out, dv[i].target);
        }
        fputc('}', out);
    }
    fputs("\n  ]\n}\n", out);
}

/* ------------------------------------------------------------ the command */

int bench_parse_args(int argc, char **argv, bench_options *opt, char *err)
{
    *opt = (bench_options){.progress = stderr};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0)
            opt->json = 1;
        else if (strcmp(a, "--quick") == 0)
            opt->quick = 1;
        else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0)
            opt->progress = NULL;
        else if (strcmp(a, "--only") == 0 && i + 1 < argc)
            opt->only = argv[++i];
        else if (strcmp(a, "--steps") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (end == argv[i] || *end || v < 1)
                return err_set(err, DS_EINPUT, "bench: --steps needs a positive number, got '%s'",
                               argv[i]);
            opt->steps = v;
        } else if (strcmp(a, "--reps") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (end == argv[i] || *end || v < 1 || v > BENCH_MAX_REPS)
                return err_set(err, DS_EINPUT, "bench: --reps needs 1 to %d, got '%s'",
                               BENCH_MAX_REPS, argv[i]);
            opt->reps = (int)v;
        } else
            return err_set(err, DS_EINPUT, "bench: unknown or incomplete option '%s'", a);
    }
    return DS_OK;
}

int bench_run(const bench_options *opt, FILE *out, int *worker, char *err)
{
    *worker = 0;
    openblas_set_num_threads(1);
    gsl_set_error_handler_off();
    row rows[N_CASES];
    char load0[64], load1[64], cpu[128];
    read_loadavg(load0, sizeof load0);
    read_cpu_model(cpu, sizeof cpu);
    for (int i = 0; i < N_CASES; i++) {
        const bench_case *c = &cases[i];
        rows[i] = (row){.c = c};
        if ((opt->only && !strstr(c->id, opt->only)) || !case_available(c))
            continue;
        if (opt->progress) {
            fprintf(opt->progress, "bench: %-20s %s ...\n", c->id, c->label);
            fflush(opt->progress);
        }
        int rc = fork_case(c, opt, &rows[i].r, worker, err);
        if (*worker || rc != DS_OK)
            return rc;
        rows[i].ran = 1;
    }
    read_loadavg(load1, sizeof load1);
    derived dv[24];
    int m = derive(rows, N_CASES, dv);
    if (opt->json)
        print_json(out, rows, N_CASES, dv, m, load0, load1, cpu);
    else
        print_table(out, rows, N_CASES, dv, m, load0, load1, cpu);
    fflush(out);
    return DS_OK;
}
