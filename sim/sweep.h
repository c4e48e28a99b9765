/* Executing the runs of an experiment into a results database: in this process
 * or in N worker processes, optionally only one shard of the grid, skipping
 * runs the database already holds as done or diverged. */
#ifndef DIVSIM_SWEEP_H
#define DIVSIM_SWEEP_H

#include "config.h"
#include "store.h"

#include <signal.h>
#include <stdio.h>

typedef struct {
    int quiet;                      /* no progress output */
    FILE *progress;                 /* where progress goes (stderr) */
    volatile sig_atomic_t *stop;    /* set by a signal handler: stop as interrupted */
    int jobs;                       /* worker processes; 1 runs in this process */
    int shard, shards;              /* this invocation runs shard `shard` of `shards` (1-based) */
    /* Called in each worker process right after it starts, so the caller can
     * set up its signal handling there; may be NULL. */
    void (*in_worker)(void);
} sweep_options;

typedef struct {
    size_t planned;       /* runs of this shard */
    size_t done, skipped, failed, diverged, interrupted;
    size_t not_started;   /* left when a stop was requested */
    int worker;           /* 1 in a worker process returning from sweep_run: it must exit */
    int worker_failed;    /* ...and whether it could not record a run */
} sweep_counts;

/* The shard (1..shards) a run belongs to: its id modulo shards, so the
 * partition depends only on the run itself, not on the rest of the grid. */
int sweep_shard_of(const run_spec *r, int shards);

/* Runs the runs of x that belong to the shard into the database at db_path.
 * Returns DS_OK when every run was attempted (see counts for how they ended),
 * or an error code when the database could not be used. With jobs > 1 the
 * call also returns in each worker process, with counts->worker set. */
int sweep_run(const experiment *x, const char *db_path, const sweep_options *opt,
              sweep_counts *counts, char *err);

#endif
