/* `divsim plot`: figures of a results database, drawn by gnuplot.
 *
 * For each figure divsim writes into the output directory a whitespace-
 * separated data file NAME.dat (a header comment naming the columns; one block
 * per series, blocks separated by two blank lines, each starting with a
 * "# series: TITLE" comment) and a gnuplot file NAME.vars.gp (the series'
 * titles, colours and variants as arrays, the axis labels), then runs
 *   gnuplot -e "templatedir='...'; datafile='...'; varsfile='...';
 *               outfile='...'; term='png|pdf|svg'" TEMPLATEDIR/KIND.gp
 * The templates (plots/KIND.gp) hold all styling; users edit them to restyle a
 * figure, and the command above, kept at the top of NAME.vars.gp, redraws it. */
#ifndef DIVSIM_PLOT_H
#define DIVSIM_PLOT_H

/* `divsim plot DB [--out DIR] [--format png|pdf|svg[,...]]
 *  [--kind learning|pareto|sweep|coverage|training|all[,...]] [--metric M]
 *  [--diversity M] [--param KEY] [--templates DIR]`, argv[0] = "divsim",
 * argv[1] = "plot", options from argv[2]. Prints each file written to stdout
 * and notes about skipped figures to stderr. Returns DS_OK, DS_EINPUT (bad
 * usage, unknown metric or parameter, no finished runs, gnuplot or the
 * templates missing) or DS_EIO (the database cannot be read, a file cannot be
 * written, gnuplot failed). */
int plot_command(int argc, char **argv, char *err);

#endif
