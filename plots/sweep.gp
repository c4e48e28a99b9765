# A metric against a swept parameter: one line per agent (with its other swept
# settings), eval means over runs with 95% confidence intervals as error bars.
# An agent with one configuration that does not vary the parameter is a dashed
# flat line at its mean over all its runs, for reference; agents with several
# configurations, none varying it, are left out (divsim does not write them).
# Data columns: 1 parameter value | 2 mean | 3-4 CI low, high | 5 runs |
# 6 position on the x axis.

fig_width = 3.4
fig_height = 2.6
key_beside = 1
load varsfile
# Tic labels of many categories need the width a key beside would take.
key_wide_plot = xaxis eq "categories" && |values| > 5
load templatedir . "/common.gp"

# The series with the parameter, and those without it (reference lines).
swept = ""
flat = ""
do for [i = 1:nseries] {
    if (series_reference[i]) {
        flat = flat . sprintf(" %d", i)
    } else {
        swept = swept . sprintf(" %d", i)
    }
}

set multiplot
eval key_canvas
do for [kc = 1:key_cols] {
    set key at screen key_x(kc), screen key_top left top
    plot for [i = key_first(kc):key_last(kc)] NaN with lines lw 1.2 dt 2 \
             lc rgb colour(series_colour[i]) title (series_reference[i] ? series_title[i] : ""), \
         for [i = key_first(kc):key_last(kc)] NaN with linespoints lw 1.5 \
             dt dash(series_variant[i]) pt shape(series_colour[i]) ps 0.9 \
             lc rgb colour(series_colour[i]) title (series_reference[i] ? "" : series_title[i])
}
eval axes_canvas
set xlabel xlabel
set ylabel ylabel offset char 1.5, 0   # gnuplot overestimates the tic labels
set lmargin at screen 0.65 / fig_width
set tmargin at screen 1.0 - 0.1 / fig_height
if (key_below) {
    set bmargin at screen (key_height + 0.52) / fig_height
    set rmargin at screen 1.0 - 0.1 / fig_width
    plot_width = fig_width - 0.75                  # inches, about
} else {
    set bmargin at screen 0.52 / fig_height
    set rmargin at screen key_x(1) - 0.03
    plot_width = (key_x(1) - 0.03) * fig_width - 0.65
}
set yrange [0 < * : *]            # every metric is non-negative
# xaxis (from divsim): log when the values are positive and span two decades,
# categories (evenly spaced, a tic at each value) when a linear axis would
# squeeze some, as 0, 0.01, 0.02, ..., 0.5; data column 6 is the position.
n_values = |values|
if (xaxis eq "categories") {
    set xrange [0.6:n_values + 0.4]
    set xtics ()
    do for [j = 1:n_values] {
        set xtics add (sprintf("%g", values[j]) j)
    }
} else {
    set autoscale xfix            # the values swept, and a little room
    set offsets graph 0.06, graph 0.06, 0, 0
    if (xaxis eq "log") {
        set logscale x
        set xtics format "%g"
    } else {
        set xtics nice_step(xmax - xmin, tics(plot_width))
    }
    if (n_values <= 6) {          # a tic at each value swept
        set xtics ()
        do for [j = 1:n_values] {
            set xtics add (sprintf("%g", values[j]) values[j])
        }
    }
}

plot for [j = 1:words(flat)] datafile index (item(flat, j) - 1) using 6:2 \
         with lines lw 1.2 dt 2 lc rgb colour(series_colour[item(flat, j)]) notitle, \
     for [j = 1:words(swept)] datafile index (item(swept, j) - 1) \
         using 6:2:(clip0($3)):4 \
         with yerrorlines lw 1.5 dt dash(series_variant[item(swept, j)]) \
         pt shape(series_colour[item(swept, j)]) ps 0.9 \
         lc rgb colour(series_colour[item(swept, j)]) notitle
unset multiplot
