/* Human-readable reports: the registry listings, the comparison table
 * (sim/compare.c) and the progress of a sweep (sim/status.c). */
#ifndef DIVSIM_REPORT_H
#define DIVSIM_REPORT_H

#include <stdio.h>

struct sqlite3;

/* `divsim list agents|envs|metrics`: every name with its parameters, defaults,
 * ranges and meaning. Returns DS_EINPUT for an unknown what. */
int report_list(FILE *out, const char *what, char *err);

/* `divsim compare`, argv[0] = "divsim", argv[1] = "compare", then
 *   DB [--metric M[,M...]]... [--phase train|eval] [--by agent|env|PARAM]...
 *      [--baseline NAME] [--format text|markdown|latex|csv]
 * Per group of done runs (default: per env, agent and configuration; with --by,
 * per value of each key, env first when the database has several), each
 * metric's mean, sd, n and 95% Student-t CI over seeds; with --baseline, a
 * two-sided t-test of each group against the baseline group (paired by seed
 * when the seeds match, else Welch), Holm-adjusted over all comparisons, and
 * an effect size (Cohen's d_z or Hedges' g). Writes the table to out.
 * Returns DS_OK; DS_EINPUT for bad usage, an unknown metric or parameter, a
 * baseline no group has, or a database without finished runs; DS_EIO when
 * the database cannot be read; err says which, naming the thing. */
int compare_command(int argc, char **argv, FILE *out, char *err);

/* `divsim compare DB` with the default options on an opened database. */
int report_compare(FILE *out, struct sqlite3 *db, const char *db_path, char *err);

/* Per experiment, per agent and per swept parameter: how many runs are planned,
 * done, failed, diverged, interrupted, running and missing. */
int report_status(FILE *out, struct sqlite3 *db, const char *db_path, char *err);

#endif
