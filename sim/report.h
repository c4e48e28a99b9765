/* Human-readable reports: the registry listings and the comparison table. */
#ifndef DIVSIM_REPORT_H
#define DIVSIM_REPORT_H

#include <stdio.h>

struct sqlite3;

/* `divsim list agents|envs|metrics`: every name with its parameters, defaults,
 * ranges and meaning. Returns DS_EINPUT for an unknown what. */
int report_list(FILE *out, const char *what, char *err);

/* Per env and agent, over done runs: eval purchases per episode, ILD, item
 * coverage and Gini, each as mean +- 95% CI half-width over seeds. */
int report_compare(FILE *out, struct sqlite3 *db, const char *db_path, char *err);

/* Per experiment, per agent and per swept parameter: how many runs are planned,
 * done, failed, diverged, interrupted, running and missing. */
int report_status(FILE *out, struct sqlite3 *db, const char *db_path, char *err);

#endif
