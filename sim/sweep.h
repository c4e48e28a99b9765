/* Executing the runs of an experiment into a results store, one after another,
 * skipping runs the store already holds as done. */
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
} sweep_options;

typedef struct {
    size_t done, skipped, failed, diverged, interrupted;
    size_t not_started; /* left when a stop was requested */
} sweep_counts;

/* Returns DS_OK when every run was attempted (see counts for failures), or an
 * error code when the store could not record a run. */
int sweep_run(const experiment *x, store *s, const sweep_options *opt, sweep_counts *counts,
              char *err);

#endif
