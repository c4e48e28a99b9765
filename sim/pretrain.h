/* Pretraining the transformer encoder (agents/transformer.h) on logged
 * behaviour: the interaction log of runs with `log_interactions = true`
 * (the interactions table) rebuilt into each user's history, then next-click
 * prediction with Adam, early stopping on held-out users, and a checkpoint
 * (agents/checkpoint.h) an agent can start from. */
#ifndef DIVSIM_PRETRAIN_H
#define DIVSIM_PRETRAIN_H

#include "../agents/transformer.h"
#include "slate.h"

#include <stdint.h>
#include <stdio.h>

/* ---- the log, rebuilt ---- */

/* A slate shown, as a stream sees it. */
typedef struct {
    int at;       /* entries pushed before it */
    int step;     /* its step within the episode */
    long episode;
} log_step;

/* One user's history pushes in one run, oldest first: exactly the entries the
 * engine pushed (sim/run.h, interaction_row), so the observation of the j-th
 * slate shown to the user held the newest `history` of entries[0, steps[j].at). */
typedef struct {
    int64_t run_id;
    int user;
    int n_entries, n_steps;
    history_entry *entries;  /* [n_entries] */
    log_step *steps;         /* [n_steps] */
    size_t first_entry, first_step; /* where entries and steps start in the slabs */
} log_stream;

typedef struct {
    log_stream *streams;        /* [n_streams] by run_id, then user */
    size_t n_streams;
    int n_items;                /* the runs' env.items */
    long n_runs, n_rows, n_clicks;
    history_entry *entry_slab;  /* what the streams point into */
    log_step *step_slab;
} interaction_log;

/* Which logged runs to read: those of agent (NULL: any agent) and, when
 * by_seed, those of run seed `seed` only: one seed's world (catalogue and
 * users are drawn from the run's seed, so item ids of different seeds are
 * different items). */
typedef struct {
    const char *agent;
    int by_seed;
    uint64_t seed;
} log_selection;

/* Reads the interaction rows of the runs in status done of the database at
 * path that logged them, of the selection only (NULL: every such run), and rebuilds every
 * (run, user) stream. DS_EINPUT when the file is not a results database, no
 * such run logged interactions, the runs' env.items differ, or a row is
 * inconsistent (an item out of range, a click position without an item);
 * DS_EIO, DS_ENOMEM. */
int interaction_log_read(const char *path, const log_selection *only, interaction_log *log,
                         char *err);
void interaction_log_free(interaction_log *log);

/* The observation history of slate j of s (newest first, at most max entries)
 * into out [max]; returns its length. */
int log_stream_history(const log_stream *s, int j, int max, history_entry *out);

/* ---- training ---- */

typedef struct {
    transformer_config tf;
    int epochs;          /* at most this many passes over the training windows */
    int batch;           /* windows per minibatch */
    double lr;           /* Adam's learning rate */
    double clip;         /* global gradient-norm clip; 0 = none */
    int patience;        /* stop after this many epochs without a better held-out loss */
    double holdout;      /* fraction of (run, user) streams held out */
    uint64_t seed;
} pretrain_config;

/* epochs 30, batch 32, lr 1e-3, clip 1, patience 3, holdout 0.1, seed 1, and
 * transformer_config_defaults. */
void pretrain_config_defaults(pretrain_config *cfg);

typedef struct {
    long train_streams, heldout_streams;
    long train_windows, heldout_windows;
    long train_targets, heldout_targets; /* scored positions (next clicks) */
    int epochs_run, best_epoch;          /* best_epoch 0: the initial weights */
    double initial_loss;      /* held-out nats per target before training */
    double heldout_loss;      /* the same with the saved (best) weights */
    double train_loss;        /* mean training loss of the best epoch */
    double popularity_loss;   /* a Laplace-smoothed popularity predictor */
    double uniform_loss;      /* ln n_items */
    double cpu_seconds;
} pretrain_report;

/* Trains a transformer on log and writes the best weights to out_path (when not
 * NULL). Streams are cut into windows of up to H entries, every position
 * predicting the user's next click (transformer_next_click_loss); a stream is
 * held out when a seeded hash of (run, user) falls below holdout; training
 * windows are shuffled into minibatches from a seeded generator. The result is
 * the same for the same log, configuration and seed. progress (may be NULL)
 * gets a line per epoch. DS_EINPUT (bad configuration, no window to train on
 * or to hold out), DS_ENOMEM, DS_ENUMERIC (the loss diverged), DS_EIO. */
int pretrain_run(const interaction_log *logged, const pretrain_config *cfg,
                 const char *out_path, pretrain_report *rep, FILE *progress, char *err);

/* `divsim pretrain DB -o FILE [--agent NAME] [--run-seed S] [--epochs N] [--seed S]
 * [--batch N] [--lr X] [--patience N] [--context H] [--layers L] [--heads NH]
 * [--width C] [--mlp-ratio R] [-q]`, argv[1] = "pretrain". Prints the held-out
 * next-click cross-entropy against popularity and uniform to out. DS_EINPUT
 * for bad usage. */
int pretrain_command(int argc, char **argv, FILE *out, char *err);

#endif
