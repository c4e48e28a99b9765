/* divsim: the command line. The only place that decides to exit.
 * Exit codes: 0 ok, 1 a run failed, 2 usage or input error, 128 + the signal
 * number when SIGINT or SIGTERM interrupted a run. */
#include "bench.h"
#include "common.h"
#include "config.h"
#include "export.h"
#include "merge.h"
#include "plot.h"
#include "pretrain.h"
#include "report.h"
#include "store.h"
#include "sweep.h"
#include "version.h"

#include <gsl/gsl_errno.h>
#include <signal.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { EXIT_OK = 0, EXIT_RUN_FAILED = 1, EXIT_USAGE = 2 };

static volatile sig_atomic_t stop_requested; /* the signal number, or 0 */
static volatile sig_atomic_t is_worker;      /* this process is a sweep worker */

/* The first SIGINT or SIGTERM asks the current run to stop cleanly; a second
 * one ends the process at once (the default action). A worker of `-j N` keeps
 * stopping cleanly: it may get the signal twice, from the terminal and from its
 * parent passing it on. */
static void on_signal(int sig)
{
    if (!stop_requested)
        stop_requested = sig;
    if (!is_worker)
        signal(sig, SIG_DFL);
}

static void become_worker(void)
{
    is_worker = 1;
}

static const char usage[] =
    "usage: divsim <command> [options]\n"
    "\n"
    "commands:\n"
    "  run FILE [-o DB] [-j N] [--shard K/N] [--set section.key=value]...\n"
    "      [--dry-run] [-q]\n"
    "                     run every expanded run of an experiment file into DB\n"
    "                     (default results/<experiment name>.db) with N worker\n"
    "                     processes, only shard K of N if given; runs already\n"
    "                     done in DB are skipped, so the same command resumes\n"
    "  list agents|envs|metrics\n"
    "                     what exists, with every parameter, default and meaning\n"
    "  compare DB [--metric M]... [--phase train|eval] [--by agent|env|PARAM]...\n"
    "      [--baseline NAME] [--format text|markdown|latex|csv]\n"
    "                     per group: mean and 95% CI over seeds; against a baseline\n"
    "                     paired or Welch t-tests, Holm-adjusted, and effect sizes\n"
    "  plot DB [--out DIR] [--format png|pdf|svg[,...]]\n"
    "      [--kind learning|pareto|sweep|coverage|training|all] [--metric M]\n"
    "                     figures with gnuplot (default plots/<experiment>/)\n"
    "  export DB --table runs|params|episodes|windows|phases|updates|planned|\n"
    "      interactions [--where SQL] [--csv]\n"
    "                     a table as CSV on standard output\n"
    "  status DB          progress of a sweep: runs planned, done, failed, diverged,\n"
    "                     interrupted, running, missing; by agent and swept parameter\n"
    "  merge OUT IN...    merge shard databases into OUT (idempotent; refuses runs\n"
    "                     whose configurations disagree)\n"
    "  pretrain DB -o FILE [--agent NAME] [--run-seed S] [--epochs N] [--seed S]\n"
    "      [--batch N] [--lr X] [--patience N] [--holdout F] [--context H] [--layers L]\n"
    "      [--heads NH] [--width C] [--mlp-ratio R] [-q]\n"
    "                     pretrain the transformer encoder on the logged\n"
    "                     interactions (log_interactions = true) of DB's runs; writes\n"
    "                     a checkpoint and the held-out next-click cross-entropy\n"
    "  bench [--json] [--quick] [--only TEXT] [--reps N] [--steps N] [-q]\n"
    "                     throughput, memory and scaling figures of this machine\n"
    "  --help, --version\n"
    "\n"
    "exit codes: 0 ok, 1 a run failed, 2 usage or input error,\n"
    "            130 or 143 when SIGINT or SIGTERM interrupted a run\n";

static int fail_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n(see divsim --help)\n", stderr);
    va_end(ap);
    return EXIT_USAGE;
}

typedef struct {
    const char *file;
    const char *db;
    const char **sets;
    size_t n_sets;
    int quiet, dry_run;
    int jobs, shard, shards;
} run_args;

/* Parses a positive integer; returns 0 if text is not one. */
static int positive(const char *text)
{
    char *end;
    long v = strtol(text, &end, 10);
    return end != text && *end == '\0' && v > 0 && v <= 100000 ? (int)v : 0;
}

static int parse_shard(const char *text, run_args *a)
{
    const char *slash = strchr(text, '/');
    char k[32];
    if (!slash || (size_t)(slash - text) >= sizeof k)
        return -1;
    memcpy(k, text, (size_t)(slash - text));
    k[slash - text] = '\0';
    a->shard = positive(k);
    a->shards = positive(slash + 1);
    return a->shard && a->shards && a->shard <= a->shards ? 0 : -1;
}

static int parse_run_args(int argc, char **argv, run_args *a)
{
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        int has_value = i + 1 < argc;
        if (strcmp(arg, "-q") == 0 || strcmp(arg, "--quiet") == 0)
            a->quiet = 1;
        else if (strcmp(arg, "--dry-run") == 0)
            a->dry_run = 1;
        else if ((strcmp(arg, "-o") == 0 || strcmp(arg, "--output") == 0) && has_value)
            a->db = argv[++i];
        else if (strcmp(arg, "--set") == 0 && has_value)
            a->sets[a->n_sets++] = argv[++i];
        else if (strcmp(arg, "-j") == 0 && has_value) {
            if (!(a->jobs = positive(argv[++i])))
                return fail_usage("run: -j needs a number of workers, got '%s'", argv[i]);
        } else if (strcmp(arg, "--shard") == 0 && has_value) {
            if (parse_shard(argv[++i], a) != 0)
                return fail_usage("run: --shard needs K/N with 1 <= K <= N, got '%s'",
                                  argv[i]);
        }
        else if (arg[0] == '-')
            return fail_usage("run: unknown or incomplete option '%s'", arg);
        else if (a->file)
            return fail_usage("run: more than one experiment file ('%s')", arg);
        else
            a->file = arg;
    }
    if (!a->file)
        return fail_usage("run: missing experiment FILE");
    return EXIT_OK;
}

static void print_dry_run(const experiment *x, const run_args *a)
{
    size_t n = 0;
    for (size_t i = 0; i < x->n_runs; i++)
        n += sweep_shard_of(&x->runs[i], a->shards) == a->shard;
    printf("%zu runs of experiment '%s'", n, x->name);
    if (a->shards > 1)
        printf(" in shard %d/%d (of %zu)", a->shard, a->shards, x->n_runs);
    putchar('\n');
    for (size_t i = 0; i < x->n_runs; i++) {
        const run_spec *r = &x->runs[i];
        if (sweep_shard_of(r, a->shards) == a->shard)
            printf("%016llx  %-8s %-12s seed %llu\n", (unsigned long long)r->run_id,
                   r->env->name, run_agent_name(r), (unsigned long long)r->seed);
    }
}

static int exit_code_of(const sweep_counts *c)
{
    if (c->failed)
        return EXIT_RUN_FAILED;
    return EXIT_OK;
}

static int execute(const experiment *x, const run_args *a)
{
    char db_path[4200], err[ERR_LEN];
    if (a->db)
        snprintf(db_path, sizeof db_path, "%s", a->db);
    else {
        snprintf(db_path, sizeof db_path, "results/%s.db", x->name);
        mkdir("results", 0777); /* the default home of databases; may exist */
    }
    store *s; /* opened first so that a bad database is an input error */
    int rc = store_open(db_path, &s, err);
    if (rc != DS_OK) { /* a full disk or a lock held too long is a fault, not the input */
        fprintf(stderr, "error: %s\n", err);
        return rc == DS_EINPUT ? EXIT_USAGE : EXIT_RUN_FAILED;
    }
    store_close(s);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    sweep_options opt = {.quiet = a->quiet, .progress = stderr, .stop = &stop_requested,
                         .jobs = a->jobs, .shard = a->shard, .shards = a->shards,
                         .in_worker = become_worker};
    sweep_counts c;
    rc = sweep_run(x, db_path, &opt, &c, err);
    if (c.worker) /* a worker process is done: it leaves the summary to its parent */
        return c.worker_failed || rc != DS_OK ? EXIT_RUN_FAILED : EXIT_OK;
    if (rc != DS_OK) { /* a bad database is an input error; a fault while writing is not */
        fprintf(stderr, "error: %s\n", err);
        return rc == DS_EINPUT ? EXIT_USAGE : EXIT_RUN_FAILED;
    }
    if (!a->quiet)
        fprintf(stderr, "%s: %zu done, %zu skipped (already done or diverged), %zu failed, %zu diverged, %zu interrupted, %zu not started\n",
                db_path, c.done, c.skipped, c.failed, c.diverged, c.interrupted, c.not_started);
    if (stop_requested && (c.interrupted || c.not_started))
        return 128 + stop_requested;
    return exit_code_of(&c);
}

static int cmd_run(int argc, char **argv)
{
    run_args a = {.jobs = 1, .shard = 1, .shards = 1};
    a.sets = calloc((size_t)argc, sizeof *a.sets);
    if (!a.sets)
        return EXIT_RUN_FAILED;
    int code = parse_run_args(argc, argv, &a);
    if (code != EXIT_OK) {
        free(a.sets);
        return code;
    }
    experiment x;
    char err[ERR_LEN];
    if (experiment_load(a.file, a.sets, a.n_sets, &x, err) != DS_OK) {
        fprintf(stderr, "error: %s\n", err);
        free(a.sets);
        return EXIT_USAGE;
    }
    if (a.dry_run)
        print_dry_run(&x, &a);
    else
        code = execute(&x, &a);
    experiment_free(&x);
    free(a.sets);
    return code;
}

static int cmd_list(int argc, char **argv)
{
    char err[ERR_LEN];
    if (argc != 3)
        return fail_usage("list: expected one of agents, envs, metrics");
    if (report_list(stdout, argv[2], err) != DS_OK) {
        fprintf(stderr, "error: %s\n", err);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

typedef int (*report_fn)(FILE *out, sqlite3 *db, const char *db_path, char *err);

/* `divsim status DB`: a report on a database opened read-only. */
static int cmd_report(int argc, char **argv, report_fn report)
{
    if (argc != 3)
        return fail_usage("%s: expected one results DB", argv[1]);
    const char *path = argv[2];
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return fail_usage("%s: '%s' is not a file", argv[1], path);
    sqlite3 *db;
    char err[ERR_LEN];
    if (store_open_readonly(path, &db, err) != DS_OK) {
        fprintf(stderr, "error: %s\n", err);
        return EXIT_USAGE;
    }
    int rc = report(stdout, db, path, err);
    sqlite3_close(db);
    if (rc != DS_OK) {
        fprintf(stderr, "error: %s\n", err);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* The exit code for a library result: input errors are usage errors. */
static int exit_code_for(int rc, const char *err)
{
    if (rc == DS_OK)
        return EXIT_OK;
    fprintf(stderr, "error: %s\n", err);
    return rc == DS_EINPUT ? EXIT_USAGE : EXIT_RUN_FAILED;
}

static int cmd_compare(int argc, char **argv)
{
    char err[ERR_LEN];
    return exit_code_for(compare_command(argc, argv, stdout, err), err);
}

static int cmd_plot(int argc, char **argv)
{
    char err[ERR_LEN];
    return exit_code_for(plot_command(argc, argv, err), err);
}

static int cmd_export(int argc, char **argv)
{
    char err[ERR_LEN];
    return exit_code_for(export_command(argc, argv, stdout, err), err);
}

static int cmd_pretrain(int argc, char **argv)
{
    char err[ERR_LEN];
    return exit_code_for(pretrain_command(argc, argv, stdout, err), err);
}

/* `divsim merge OUT IN...`: each input in its own transaction. */
static int cmd_merge(int argc, char **argv)
{
    if (argc < 4)
        return fail_usage("merge: expected OUT.db and at least one IN.db");
    store *out;
    char err[ERR_LEN];
    if (store_open(argv[2], &out, err) != DS_OK || store_check(out, err) != DS_OK) {
        store_close(out);
        fprintf(stderr, "error: %s\n", err);
        return EXIT_USAGE;
    }
    merge_counts c = {0};
    int code = EXIT_OK;
    for (int i = 3; i < argc && code == EXIT_OK; i++) {
        if (merge_database(out, argv[i], &c, err) != DS_OK) {
            fprintf(stderr, "error: %s\n", err);
            code = EXIT_USAGE;
        }
    }
    store_close(out);
    fprintf(stderr, "%s: %zu runs added, %zu replaced unfinished copies, %zu already there\n",
            argv[2], c.added, c.replaced, c.kept);
    return code;
}

/* `divsim bench`: its case processes (and their sweep workers) return here too. */
static int cmd_bench(int argc, char **argv)
{
    bench_options opt;
    char err[ERR_LEN];
    if (bench_parse_args(argc, argv, &opt, err) != DS_OK)
        return fail_usage("%s", err);
    int worker = 0;
    int rc = bench_run(&opt, stdout, &worker, err);
    if (worker)
        return rc == DS_OK ? EXIT_OK : EXIT_RUN_FAILED;
    if (rc != DS_OK) {
        fprintf(stderr, "error: %s\n", err);
        return EXIT_RUN_FAILED;
    }
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    gsl_set_error_handler_off();
    /* Past the file size limit (ulimit -f) a write fails with EFBIG, which the
     * store reports, instead of the signal killing the process mid-sweep. */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2)
        return fail_usage("missing command");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("divsim %s\n%s\n", divsim_version(), divsim_build_info());
        return EXIT_OK;
    }
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc, argv);
    if (strcmp(cmd, "list") == 0)
        return cmd_list(argc, argv);
    if (strcmp(cmd, "compare") == 0)
        return cmd_compare(argc, argv);
    if (strcmp(cmd, "status") == 0)
        return cmd_report(argc, argv, report_status);
    if (strcmp(cmd, "merge") == 0)
        return cmd_merge(argc, argv);
    if (strcmp(cmd, "plot") == 0)
        return cmd_plot(argc, argv);
    if (strcmp(cmd, "export") == 0)
        return cmd_export(argc, argv);
    if (strcmp(cmd, "bench") == 0)
        return cmd_bench(argc, argv);
    if (strcmp(cmd, "pretrain") == 0)
        return cmd_pretrain(argc, argv);
    return fail_usage("unknown command '%s'", cmd);
}
