# Learning curves: a metric against episodes, one line per series (an agent,
# or an agent and its swept settings), the mean over runs with the 95%
# confidence interval shaded; a dashed line marks the start of the eval phase.
# Data columns: 1 episodes elapsed (bin middle) | 2 mean | 3-4 CI low, high |
# 5 runs | 6 phase (0 train, 1 eval) | 7 1 on the last train bin.

fig_width = 3.4
fig_height = 2.6
key_beside = 1
load varsfile
load templatedir . "/common.gp"

set multiplot
eval key_canvas
do for [kc = 1:key_cols] {
    set key at screen key_x(kc), screen key_top left top
    plot for [i = key_first(kc):key_last(kc)] NaN with lines lw 1.5 \
             lc rgb colour(series_colour[i]) dt dash(series_variant[i]) title series_title[i]
}
eval axes_canvas
set lmargin at screen 0.65 / fig_width
set tmargin at screen 1.0 - 0.25 / fig_height   # room for "train" and "eval"
if (key_below) {
    set bmargin at screen (key_height + 0.52) / fig_height
    set rmargin at screen 1.0 - 0.1 / fig_width
    plot_width = fig_width - 0.7                    # inches, about
} else {
    set bmargin at screen 0.52 / fig_height
    set rmargin at screen key_x(1) - 0.03
    plot_width = (key_x(1) - 0.03) * fig_width - 0.6
}

# Long runs count episodes in thousands, so that tic labels stay short.
xscale = end_at >= 10000 ? 1000.0 : 1.0
set xlabel xscale > 1 ? "thousands of " . xlabel : xlabel
set ylabel ylabel offset char 1.5, 0   # gnuplot overestimates the tic labels
set xrange [0:end_at / xscale]
set xtics nice_step(end_at / xscale, tics(plot_width))
set yrange [0 < * : *]            # every metric is non-negative

if (switch_at > 0) {
    set arrow from switch_at / xscale, graph 0 to switch_at / xscale, graph 1 nohead back \
        dt 2 lw 1 lc rgb "#555555"
    set label "train" at first switch_at / 2.0 / xscale, graph 1 center offset 0, char 0.6
    set label "eval" at first (switch_at + end_at) / 2.0 / xscale, graph 1 center \
        offset 0, char 0.6
}

plot for [i = 1:nseries] datafile index (i - 1) using ($1 / xscale):(clip0($3)):4 \
         with filledcurves fc rgb colour(series_colour[i]) notitle, \
     for [i = 1:nseries] datafile index (i - 1) using ($1 / xscale):2 \
         with lines lw 1.5 lc rgb colour(series_colour[i]) dt dash(series_variant[i]) \
         notitle
unset multiplot
