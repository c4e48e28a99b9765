#include "sweep.h"

#include "common.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

/* Progress of the current run, redrawn at most ten times a second on a terminal. */
typedef struct {
    const sweep_options *opt;
    const run_spec *run;
    size_t index, total;
    int tty;
    double started, last_draw;
} progress;

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void draw(progress *p, long done, long total)
{
    double t = now_seconds();
    if (t - p->last_draw < 0.1 && done < total)
        return;
    p->last_draw = t;
    double rate = done / (t - p->started + 1e-9);
    double eta = rate > 0 ? (total - done) / rate : 0.0;
    int width = 24, bar = total ? (int)(width * done / total) : width;
    fprintf(p->opt->progress, "\r\033[Krun %zu/%zu %s seed %llu [%.*s%*s] %ld/%ld episodes  %.0f/s  ETA %.0fs",
            p->index + 1, p->total, p->run->agent->name, (unsigned long long)p->run->seed,
            bar, "########################", width - bar, "", done, total, rate, eta);
    fflush(p->opt->progress);
}

static void on_episode(void *ctx, long done, long total)
{
    progress *p = ctx;
    if (p->tty && !p->opt->quiet)
        draw(p, done, total);
}

static void report_run(progress *p, const run_result *res)
{
    if (p->opt->quiet)
        return;
    if (p->tty)
        fputs("\r\033[K", p->opt->progress);
    fprintf(p->opt->progress, "run %zu/%zu %s seed %llu: %s in %.1f s (%zu episodes, %ld steps)%s%s\n",
            p->index + 1, p->total, p->run->agent->name, (unsigned long long)p->run->seed,
            run_status_name(res->status), res->wall_seconds, res->n_episodes, res->steps,
            res->message[0] ? ": " : "", res->message);
}

static void count(sweep_counts *c, run_status s)
{
    switch (s) {
    case RUN_DONE: c->done++; break;
    case RUN_FAILED: c->failed++; break;
    case RUN_DIVERGED: c->diverged++; break;
    case RUN_INTERRUPTED: c->interrupted++; break;
    case RUN_RUNNING: break;
    }
}

static int execute_one(store *s, progress *p, sweep_counts *c, char *err)
{
    int rc = store_run_start(s, p->run, err);
    if (rc != DS_OK)
        return rc;
    run_result res;
    char why[ERR_LEN];
    run_hooks hooks = {.on_episode = on_episode, .ctx = p, .stop = p->opt->stop};
    p->started = now_seconds();
    p->last_draw = 0.0;
    run_execute(p->run, &hooks, &res, why);
    rc = store_run_finish(s, p->run, &res, err);
    report_run(p, &res);
    count(c, res.status);
    run_result_free(&res);
    return rc;
}

int sweep_run(const experiment *x, store *s, const sweep_options *opt, sweep_counts *counts,
              char *err)
{
    *counts = (sweep_counts){0};
    progress p = {.opt = opt, .total = x->n_runs, .tty = isatty(fileno(opt->progress))};
    for (size_t i = 0; i < x->n_runs; i++) {
        if (opt->stop && *opt->stop) {
            counts->not_started = x->n_runs - i;
            break;
        }
        char status[16];
        int rc = store_run_status(s, x->runs[i].run_id, status, err);
        if (rc != DS_OK)
            return rc;
        if (strcmp(status, "done") == 0) {
            counts->skipped++;
            continue;
        }
        p.run = &x->runs[i];
        p.index = i;
        if ((rc = execute_one(s, &p, counts, err)) != DS_OK)
            return rc;
    }
    return DS_OK;
}
