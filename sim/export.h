/* `divsim export`: a table of a results database as CSV, for pandas and R. */
#ifndef DIVSIM_EXPORT_H
#define DIVSIM_EXPORT_H

#include <stdio.h>

/* `divsim export DB --table NAME [--where SQL] [--csv]`, argv[0] = "divsim",
 * argv[1] = "export", options from argv[2]. Writes RFC 4180 CSV with a header
 * row to out. NAME is a table (runs, params, episodes, windows, phases,
 * updates, planned, interactions) or a view (run_summary, agent_summary, config_summary).
 * Returns DS_OK, DS_EINPUT (bad usage, unknown table, bad --where, not a
 * results database) or DS_EIO (the database cannot be read, out cannot be
 * written). */
int export_command(int argc, char **argv, FILE *out, char *err);

/* Writes one CSV field (RFC 4180: quoted when it holds a comma, a quote, CR or
 * LF; quotes doubled). */
void export_csv_field(FILE *out, const char *text);

/* Writes a real so that reading it back gives the same double: the shortest of
 * %.15g, %.16g, %.17g that round-trips, with ".0" added to an integral value so
 * that readers keep the column a float. */
void export_csv_real(FILE *out, double v);

#endif
