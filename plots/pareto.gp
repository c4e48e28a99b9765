# Reward against diversity: each configuration (an agent, or an agent and its
# swept settings) as a point at its eval means, with 95% confidence intervals
# on both axes, labelled; the Pareto frontier (the points no other point beats
# on both axes) as a dashed step line.
# An agent with one configuration is labelled with its name; the points of an
# agent with several, with their settings only, the key naming the agent and
# the settings (series_keyed); when they differ in one setting, a thin line
# joins them in its order (series_path).
# divsim places the labels (a search over places around each point, for the
# plot area it writes in `area`): a label goes where it covers no other label
# and no marker, and as little of the error bars and lines as it can, with a
# thin leader line when it sits further off; a label that fits nowhere is left
# out, its point read from its agent's line, whose ends are labelled first.
# Data: one block per agent: 1 x mean | 2 y mean | 3-4 x CI | 5-6 y CI | 7 runs
# | 8 label | 9-10 where the label goes | 11 alignment (0 none, 1 left,
# 2 centre, 3 right) | 12-15 leader line from x, y to x, y; the last block
# (index nseries) is the frontier, by increasing x.

load varsfile
keyed = ""
paths = ""
do for [i = 1:nseries] {
    if (series_path[i]) {
        paths = paths . sprintf(" %d", i)
    }
    if (series_keyed[i]) {
        keyed = keyed . sprintf(" %d", i)
    }
}
# The key above the plot area, a line for the frontier and each keyed agent.
key_top_lines = 1 + words(keyed)
fig_width = area[1] + area[3] + 0.1
fig_height = area[2] + area[4] + 0.12 + key_top_lines * 1.45 * 8 / 72.0
load templatedir . "/common.gp"

set xlabel xlabel
set ylabel ylabel offset char 1.5, 0   # gnuplot overestimates the tic labels
set lmargin at screen area[1] / fig_width
set rmargin at screen (area[1] + area[3]) / fig_width
set bmargin at screen area[2] / fig_height
set tmargin at screen (area[2] + area[4]) / fig_height
set key at screen 0.5, screen 1.0 center top samplen 4
# axes (from divsim): the extent of the points and their intervals, widened
# a little, never below zero. divsim places the labels for this range.
set xrange [axes[1]:axes[2]]
set yrange [axes[3]:axes[4]]
set xtics nice_step(axes[2] - axes[1], tics(area[3]))
set ytics nice_step(axes[4] - axes[3], floor(area[4] / 0.3))
# Error bars thin and half transparent, so that markers and labels read first.
faint(i) = "#80" . colour(i)[2:7]
label_if(code) = column(11) == code ? stringcolumn(8) : ""

plot datafile index nseries using 1:2 with fsteps lw 1.2 dt 2 lc rgb "#777777" \
         title "Pareto frontier", \
     for [j = 1:words(keyed)] NaN with points pt shape(series_colour[item(keyed, j)]) ps 0.8 \
         lc rgb colour(series_colour[item(keyed, j)]) title series_title[item(keyed, j)], \
     for [j = 1:words(paths)] datafile index (item(paths, j) - 1) using 1:2 \
         with lines lw 0.6 lc rgb colour(series_colour[item(paths, j)]) notitle, \
     for [i = 1:nseries] datafile index (i - 1) using 1:2:(clip0($3)):4:(clip0($5)):6 \
         with xyerrorbars lw 0.6 pt 0 lc rgb faint(series_colour[i]) notitle, \
     for [i = 1:nseries] datafile index (i - 1) using 1:2 with points \
         pt shape(series_colour[i]) ps 0.8 lc rgb colour(series_colour[i]) notitle, \
     for [i = 1:nseries] datafile index (i - 1) using 12:13:($14 - $12):($15 - $13) \
         with vectors nohead lw 0.5 lc rgb colour(series_colour[i]) notitle, \
     for [i = 1:nseries] datafile index (i - 1) using 9:10:(label_if(1)) with labels \
         left tc rgb colour(series_colour[i]) notitle, \
     for [i = 1:nseries] datafile index (i - 1) using 9:10:(label_if(2)) with labels \
         center tc rgb colour(series_colour[i]) notitle, \
     for [i = 1:nseries] datafile index (i - 1) using 9:10:(label_if(3)) with labels \
         right tc rgb colour(series_colour[i]) notitle
