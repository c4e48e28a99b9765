# A metric against a swept parameter: one line per agent (with its other swept
# settings), eval means over runs with 95% confidence intervals as error bars.
# An agent that does not have the parameter is a dashed flat line at its mean
# over all its runs, for reference.
# Data columns: 1 parameter value | 2 mean | 3-4 CI low, high | 5 runs.

fig_width = 3.4
fig_height = 2.6
key_beside = 1
load varsfile
load templatedir . "/common.gp"

set xlabel xlabel
set ylabel ylabel
if (key_below) {
    set bmargin at screen (key_height + 0.5) / fig_height
    set key at screen 0.1, screen key_height / fig_height left top maxrows key_lines
    plot_width = fig_width - 0.75                  # inches, about
} else {
    key_x = 1.0 - key_width(title_len) / fig_width
    set rmargin at screen key_x - 0.03
    set key at screen key_x, graph 1 left top
    plot_width = (key_x - 0.03) * fig_width - 0.55
}
set yrange [0 < * : *]            # every metric is non-negative
set autoscale xfix                # the values swept, and a little room
set offsets graph 0.06, graph 0.06, 0, 0
if (logx) {
    set logscale x
    set xtics format "%g"
} else {
    set xtics nice_step(xmax - xmin, tics(plot_width))
}
if (|values| <= 6) {              # a tic at each value swept
    set xtics ()
    do for [j = 1:|values|] {
        set xtics add (sprintf("%g", values[j]) values[j])
    }
}

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

plot for [j = 1:words(flat)] datafile index (item(flat, j) - 1) using 1:2 \
         with lines lw 1.2 dt 2 lc rgb colour(series_colour[item(flat, j)]) \
         title series_title[item(flat, j)], \
     for [j = 1:words(swept)] datafile index (item(swept, j) - 1) \
         using 1:2:(clip0($3)):4 \
         with yerrorlines lw 1.5 dt dash(series_variant[item(swept, j)]) \
         pt shape(series_colour[item(swept, j)]) ps 0.9 \
         lc rgb colour(series_colour[item(swept, j)]) title series_title[item(swept, j)]
