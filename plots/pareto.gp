# Reward against diversity: each configuration (an agent, or an agent and its
# swept settings) as a point at its eval means, with 95% confidence intervals
# on both axes, labelled; the Pareto frontier (the points no other point beats
# on both axes) as a dashed step line.
# An agent with one configuration is labelled with its name; the points of an
# agent with several, with their settings only, the key naming the agent and
# the settings (series_keyed); when they differ in one setting, a thin line
# joins them in its order (series_path).
# Data: one block per agent: 1 x mean | 2 y mean | 3-4 x CI | 5-6 y CI | 7 runs
# | 8 title | 9 where the label goes (1 right above, 2 right below, 3 left
# above, 4 left below; divsim picks the place that covers the least); the last
# block (index nseries) is the frontier, by increasing x.

fig_width = 3.4
fig_height = 2.8
load varsfile
load templatedir . "/common.gp"

set xlabel xlabel
set ylabel ylabel
set key outside top center samplen 4
# axes (from divsim): the extent of the points and their intervals, widened
# for the labels, never below zero. divsim places the labels for this range.
set xrange [axes[1]:axes[2]]
set yrange [axes[3]:axes[4]]
set xtics nice_step(axes[2] - axes[1], tics(fig_width - 0.75))

label_if(code) = column(9) == code ? stringcolumn(8) : ""
paths = ""
keyed = ""
do for [i = 1:nseries] {
    if (series_path[i]) {
        paths = paths . sprintf(" %d", i)
    }
    if (series_keyed[i]) {
        keyed = keyed . sprintf(" %d", i)
    }
}

plot datafile index nseries using 1:2 with fsteps lw 1.2 dt 2 lc rgb "#777777" \
         title "Pareto frontier", \
     for [j = 1:words(keyed)] NaN with points pt shape(series_colour[item(keyed, j)]) ps 1 \
         lc rgb colour(series_colour[item(keyed, j)]) title series_title[item(keyed, j)], \
     for [j = 1:words(paths)] datafile index (item(paths, j) - 1) using 1:2 \
         with lines lw 0.6 lc rgb colour(series_colour[item(paths, j)]) notitle, \
     for [i = 1:nseries] datafile index (i - 1) using 1:2:(clip0($3)):4:(clip0($5)):6 with xyerrorbars \
         lw 1 pt shape(series_colour[i]) ps 1 lc rgb colour(series_colour[i]) notitle, \
     for [i = 1:nseries] datafile index (i - 1) using 1:2:(label_if(1)) with labels \
         left offset char 0.5, char 0.45 tc rgb colour(series_colour[i]) notitle, \
     for [i = 1:nseries] datafile index (i - 1) using 1:2:(label_if(2)) with labels \
         left offset char 0.5, char -0.45 tc rgb colour(series_colour[i]) notitle, \
     for [i = 1:nseries] datafile index (i - 1) using 1:2:(label_if(3)) with labels \
         right offset char -0.5, char 0.45 tc rgb colour(series_colour[i]) notitle, \
     for [i = 1:nseries] datafile index (i - 1) using 1:2:(label_if(4)) with labels \
         right offset char -0.5, char -0.45 tc rgb colour(series_colour[i]) notitle
