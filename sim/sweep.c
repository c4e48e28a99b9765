/* Sweeps: the runs of an experiment, one after another or in worker processes.
 *
 * Every run is written to the database in one transaction at its end, so the
 * database only ever holds whole runs; a run that was executing when its
 * process died stays in status `running` and is redone by the next sweep.
 *
 * With -j N the parent forks N workers, each with its own connection to the
 * database (WAL mode; writers wait for each other up to the busy timeout). The
 * parent hands out run indices through a pipe, so a worker that finishes early
 * takes the next run, and workers report each run's start and end through a
 * second pipe. Workers die with the parent (PR_SET_PDEATHSIG), so a killed
 * sweep leaves no orphan writing into the database. */
#include "sweep.h"

#include "common.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int sweep_shard_of(const run_spec *r, int shards)
{
    return (int)((uint64_t)r->run_id % (uint64_t)shards) + 1;
}

/* ---- progress ---- */

typedef struct {
    const sweep_options *opt;
    const experiment *x;
    size_t total;        /* runs to execute */
    size_t finished;     /* runs ended so far */
    int tty;
    const run_spec *run; /* the run in progress (in this process) */
    double started, last_draw;
} progress;

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Redraws the bar of the run in progress at most ten times a second. */
static void on_episode(void *ctx, long done, long total)
{
    progress *p = ctx;
    if (!p->tty || p->opt->quiet)
        return;
    double t = now_seconds();
    if (t - p->last_draw < 0.1 && done < total)
        return;
    p->last_draw = t;
    double rate = done / (t - p->started + 1e-9);
    double eta = rate > 0 ? (total - done) / rate : 0.0;
    int width = 24, bar = total ? (int)(width * done / total) : width;
    fprintf(p->opt->progress,
            "\r\033[Krun %zu/%zu %s seed %llu [%.*s%*s] %ld/%ld episodes  %.0f/s  ETA %.0fs",
            p->finished + 1, p->total, run_agent_name(p->run), (unsigned long long)p->run->seed,
            bar, "########################", width - bar, "", done, total, rate, eta);
    fflush(p->opt->progress);
}

static void report_run(progress *p, const run_spec *r, run_status status, double wall,
                       long episodes, long steps, const char *message)
{
    p->finished++;
    if (p->opt->quiet)
        return;
    if (p->tty)
        fputs("\r\033[K", p->opt->progress);
    fprintf(p->opt->progress, "run %zu/%zu %s seed %llu: %s in %.1f s (%ld episodes, %ld steps)%s%s\n",
            p->finished, p->total, run_agent_name(r), (unsigned long long)r->seed,
            run_status_name(status), wall, episodes, steps, message[0] ? ": " : "", message);
    fflush(p->opt->progress);
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

/* ---- one run ---- */

typedef struct {
    run_status status;
    double wall;
    long episodes, steps;
    char message[160];
} run_outcome;

static int execute_one(store *s, const run_spec *r, progress *p, run_outcome *out, char *err)
{
    int rc = store_run_start(s, r, err);
    if (rc != DS_OK)
        return rc;
    run_result res;
    char why[ERR_LEN];
    run_hooks hooks = {.on_episode = on_episode, .ctx = p, .stop = p->opt->stop};
    p->run = r;
    p->started = now_seconds();
    p->last_draw = 0.0;
    run_execute(r, &hooks, &res, why);
    rc = store_run_finish(s, r, &res, err);
    *out = (run_outcome){.status = res.status, .wall = res.wall_seconds,
                         .episodes = (long)res.n_episodes, .steps = res.steps};
    /* Shortened for the progress line; the database has the whole message. */
    snprintf(out->message, sizeof out->message, "%.159s", res.message);
    run_result_free(&res);
    return rc;
}

/* ---- planning ---- */

/* The indices of the runs of this shard not yet done or diverged, and the plan
 * recorded. */
static int plan(const experiment *x, const char *db_path, const sweep_options *opt,
                size_t **todo, size_t *n_todo, sweep_counts *c, char *err)
{
    store *s;
    int rc = store_open(db_path, &s, err);
    if (rc != DS_OK)
        return rc;
    /* Damage where this sweep will not write would go unnoticed until a
     * report reads it: look at the whole file once, before writing. */
    if ((rc = store_check(s, err)) != DS_OK) {
        store_close(s);
        return rc;
    }
    run_spec *mine = malloc((x->n_runs + 1) * sizeof *mine);
    *todo = malloc((x->n_runs + 1) * sizeof **todo);
    if (!mine || !*todo) {
        rc = err_set(err, DS_ENOMEM, "out of memory planning %zu runs", x->n_runs);
        goto out;
    }
    size_t n_mine = 0;
    for (size_t i = 0; i < x->n_runs; i++)
        if (sweep_shard_of(&x->runs[i], opt->shards) == opt->shard)
            mine[n_mine++] = x->runs[i];
    c->planned = n_mine;
    if ((rc = store_plan(s, mine, n_mine, err)) != DS_OK)
        goto out;
    *n_todo = 0;
    for (size_t i = 0; i < x->n_runs && rc == DS_OK; i++) {
        char status[16];
        if (sweep_shard_of(&x->runs[i], opt->shards) != opt->shard)
            continue;
        rc = store_run_status(s, x->runs[i].run_id, status, err);
        /* A diverged run is finished too: it would diverge again, bit for bit. */
        if (rc == DS_OK && (strcmp(status, "done") == 0 || strcmp(status, "diverged") == 0))
            c->skipped++;
        else if (rc == DS_OK)
            (*todo)[(*n_todo)++] = i;
    }
out:
    free(mine);
    store_close(s);
    return rc;
}

/* ---- in this process ---- */

static int run_here(const experiment *x, const char *db_path, const sweep_options *opt,
                    const size_t *todo, size_t n_todo, sweep_counts *c, char *err)
{
    store *s;
    int rc = store_open(db_path, &s, err);
    if (rc != DS_OK)
        return rc;
    progress p = {.opt = opt, .x = x, .total = n_todo,
                  .tty = isatty(fileno(opt->progress))};
    for (size_t i = 0; i < n_todo && rc == DS_OK; i++) {
        if (opt->stop && *opt->stop) {
            c->not_started = n_todo - i;
            break;
        }
        const run_spec *r = &x->runs[todo[i]];
        run_outcome o;
        rc = execute_one(s, r, &p, &o, err);
        if (rc == DS_OK) {
            report_run(&p, r, o.status, o.wall, o.episodes, o.steps, o.message);
            count(c, o.status);
        }
    }
    store_close(s);
    return rc;
}

/* ---- in worker processes ---- */

/* What a worker tells the parent; small enough for one atomic pipe write. */
typedef struct {
    int worker;
    int started;        /* 1: run `index` starts; 0: it ended */
    size_t index;
    run_outcome outcome;
} worker_note;

/* The body of worker w: runs the indices read from `work` until it closes. */
static int worker_loop(const experiment *x, const char *db_path, const sweep_options *opt,
                       int w, int work, int notes, char *err)
{
    store *s;
    int rc = store_open(db_path, &s, err);
    if (rc != DS_OK)
        return rc;
    sweep_options quiet = *opt;
    quiet.quiet = 1; /* the parent reports */
    progress p = {.opt = &quiet, .x = x};
    size_t index;
    while (rc == DS_OK && !(opt->stop && *opt->stop) &&
           fd_read_all(work, &index, sizeof index) == 1) {
        worker_note note = {.worker = w, .started = 1, .index = index};
        if (fd_write_all(notes, &note, sizeof note) != 0)
            break;
        rc = execute_one(s, &x->runs[index], &p, &note.outcome, err);
        note.started = 0;
        if (rc == DS_OK && fd_write_all(notes, &note, sizeof note) != 0)
            break;
    }
    store_close(s);
    return rc;
}

typedef struct {
    pid_t pid;
    size_t in_flight;   /* index of the run it is executing */
    int busy;
} worker;

/* Forks the workers. In a worker it does not return to the parent's code: it
 * runs worker_loop and then returns 1 with counts->worker set. */
static int spawn(const experiment *x, const char *db_path, const sweep_options *opt,
                 worker *workers, int pipes[2][2], sweep_counts *c, char *err)
{
    pid_t parent = getpid();
    fflush(NULL); /* nothing buffered may be written twice */
    for (int w = 0; w < opt->jobs; w++) {
        pid_t pid = fork();
        if (pid < 0)
            return err_set(err, DS_EIO, "cannot start worker %d: %s", w + 1, strerror(errno));
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            c->worker = 1;
            if (getppid() != parent)
                return 1; /* the parent died before we could arrange to follow it */
            if (opt->in_worker)
                opt->in_worker();
            close(pipes[0][1]);
            close(pipes[1][0]);
            char why[ERR_LEN];
            if (worker_loop(x, db_path, opt, w, pipes[0][0], pipes[1][1], why) != DS_OK) {
                fprintf(stderr, "error: worker %d: %s\n", w + 1, why);
                c->worker_failed = 1;
            }
            return 1;
        }
        workers[w] = (worker){.pid = pid};
    }
    return 0;
}

/* A worker that died in a run (a crash or a signal) leaves it in status
 * running: record it as failed, with the reason. */
static int bury(const char *db_path, const experiment *x, const worker *wk, int status,
                progress *p, sweep_counts *c, char *err)
{
    if (!wk->busy)
        return DS_OK;
    const run_spec *r = &x->runs[wk->in_flight];
    run_result res = {.status = RUN_FAILED};
    if (WIFSIGNALED(status))
        snprintf(res.message, sizeof res.message, "worker killed by signal %d",
                 WTERMSIG(status));
    else
        snprintf(res.message, sizeof res.message, "worker exited with code %d",
                 WEXITSTATUS(status));
    store *s;
    int rc = store_open(db_path, &s, err);
    if (rc == DS_OK)
        rc = store_run_finish(s, r, &res, err);
    store_close(s);
    report_run(p, r, RUN_FAILED, 0.0, 0, 0, res.message);
    c->failed++;
    return rc;
}

static void on_note(const worker_note *note, worker *workers, const experiment *x,
                    progress *p, size_t *started, sweep_counts *c)
{
    worker *wk = &workers[note->worker];
    wk->busy = note->started;
    wk->in_flight = note->index;
    if (note->started) {
        (*started)++;
        return;
    }
    const run_outcome *o = &note->outcome;
    report_run(p, &x->runs[note->index], o->status, o->wall, o->episodes, o->steps,
               o->message);
    count(c, o->status);
}

/* The parent: feeds run indices to the workers, collects their notes, and
 * forwards a stop request once. */
static void supervise(const experiment *x, const sweep_options *opt, const size_t *todo,
                      size_t n_todo, worker *workers, int work, int notes, progress *p,
                      sweep_counts *c)
{
    size_t next = 0, started = 0; /* runs handed to the pipe, runs begun by workers */
    int forwarded = 0;
    for (;;) {
        if (opt->stop && *opt->stop && !forwarded) {
            for (int w = 0; w < opt->jobs; w++)
                kill(workers[w].pid, SIGTERM);
            forwarded = 1;
        }
        if (work >= 0 && (next == n_todo || forwarded)) {
            close(work); /* workers read end of file and stop */
            work = -1;
        }
        struct pollfd fds[2] = {{.fd = notes, .events = POLLIN},
                                {.fd = work, .events = POLLOUT}};
        if (poll(fds, work >= 0 ? 2 : 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (fds[0].revents & (POLLIN | POLLHUP)) {
            worker_note note;
            if (fd_read_all(notes, &note, sizeof note) != 1)
                break; /* every worker has closed its end */
            on_note(&note, workers, x, p, &started, c);
        }
        if (work >= 0 && (fds[1].revents & POLLOUT)) {
            if (fd_write_all(work, &todo[next], sizeof *todo) == 0)
                next++;
        }
        if (work >= 0 && (fds[1].revents & (POLLERR | POLLHUP)))
            next = n_todo; /* no worker left to read */
    }
    if (work >= 0)
        close(work);
    c->not_started = n_todo - started;
}

static int run_in_workers(const experiment *x, const char *db_path,
                          const sweep_options *options, const size_t *todo, size_t n_todo,
                          sweep_counts *c, char *err)
{
    sweep_options o = *options; /* no more workers than runs */
    if ((size_t)o.jobs > n_todo)
        o.jobs = (int)n_todo;
    const sweep_options *opt = &o;
    int pipes[2][2]; /* [0]: run indices to workers, [1]: notes to the parent */
    if (pipe(pipes[0]) != 0 || pipe(pipes[1]) != 0)
        return err_set(err, DS_EIO, "cannot create pipes: %s", strerror(errno));
    worker *workers = calloc((size_t)opt->jobs, sizeof *workers);
    if (!workers)
        return err_set(err, DS_ENOMEM, "out of memory for %d workers", opt->jobs);
    int rc = spawn(x, db_path, opt, workers, pipes, c, err);
    if (rc == 1) { /* in a worker */
        free(workers);
        return DS_OK;
    }
    close(pipes[0][0]);
    close(pipes[1][1]);
    progress p = {.opt = opt, .x = x, .total = n_todo, .tty = 0};
    if (rc == DS_OK)
        supervise(x, opt, todo, n_todo, workers, pipes[0][1], pipes[1][0], &p, c);
    else
        close(pipes[0][1]);
    close(pipes[1][0]);
    int stopping = opt->stop && *opt->stop;
    for (int w = 0; w < opt->jobs; w++) {
        int status;
        if (workers[w].pid <= 0 || waitpid(workers[w].pid, &status, 0) < 0)
            continue;
        int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!clean && rc == DS_OK)
            rc = bury(db_path, x, &workers[w], status, &p, c, err);
        /* Outside a run (it could not open the database, say) a failing worker
         * loses nothing, but the sweep must not look successful. */
        if (!clean && rc == DS_OK && !workers[w].busy && !stopping)
            rc = WIFSIGNALED(status)
                     ? err_set(err, DS_EIO, "worker %d was killed by signal %d", w + 1,
                               WTERMSIG(status))
                     : err_set(err, DS_EIO, "worker %d failed (exit code %d)", w + 1,
                               WEXITSTATUS(status));
    }
    if (rc == DS_OK && c->not_started > 0 && !stopping)
        rc = err_set(err, DS_EIO, "%zu runs were not started: no worker was left to run them",
                     c->not_started);
    free(workers);
    return rc;
}

int sweep_run(const experiment *x, const char *db_path, const sweep_options *opt,
              sweep_counts *counts, char *err)
{
    *counts = (sweep_counts){0};
    size_t *todo = NULL, n_todo = 0;
    int rc = plan(x, db_path, opt, &todo, &n_todo, counts, err);
    if (rc == DS_OK && opt->jobs > 1 && n_todo > 1)
        rc = run_in_workers(x, db_path, opt, todo, n_todo, counts, err);
    else if (rc == DS_OK)
        rc = run_here(x, db_path, opt, todo, n_todo, counts, err);
    free(todo);
    return rc;
}
