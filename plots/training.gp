# Training diagnostics of learning agents: policy entropy, approximate KL
# divergence between successive policies, and value loss, against the train
# episodes (sessions) completed at each update (against updates when a run does
# not record its batch_episodes); one line per series (the mean over runs)
# with the 95% confidence interval shaded. A panel shows the series that
# report its quantity (panel_series, from divsim), or says that none does.
# Data columns: 1 train episodes at the update (or the update) | 2-4 entropy
# mean, CI low, high | 5-7 approx KL | 8-10 value loss | 11 runs.

fig_width = 7.0
fig_height = 2.5
key_beside = 1
load varsfile
load templatedir . "/common.gp"

array panel_column[3] = [2, 5, 8]
array panel_label[3] = ["policy entropy (nats)", "approximate KL (nats)", "value loss"]
# Three panels side by side, the key in a column at the right (or below).
left = 0.55 / fig_width
gap = 0.63 / fig_width
right = key_below ? 0.97 : 1.0 - key_width(title_len) / fig_width - 0.02
bottom = (0.53 + (key_below ? key_height + 0.05 : 0)) / fig_height
top = 1.0 - 0.3 / fig_height
panel_width = (right - left - 2 * gap) / 3

set multiplot
# The key (plots of nothing, for their keys only), a column each.
eval key_canvas
do for [kc = 1:key_cols] {
    if (key_below) {
        set key at screen key_x(kc), screen key_top left top
    } else {
        set key at screen right + 0.02, screen top left top
    }
    plot for [i = key_first(kc):key_last(kc)] NaN with lines lw 1.5 \
             lc rgb colour(series_colour[i]) dt dash(series_variant[i]) title series_title[i]
}

# The panels.
eval axes_canvas
# Long runs count episodes in thousands, so that tic labels stay short.
xscale = xlabel ne "update" && xmax >= 10000 ? 1000.0 : 1.0
set xlabel xscale > 1 ? "thousands of " . xlabel : xlabel
unset ylabel
set xrange [0:xmax / xscale]
set xtics nice_step(xmax / xscale, tics(panel_width * fig_width))
set bmargin at screen bottom
set tmargin at screen top
do for [p = 1:3] {
    col = panel_column[p]
    set lmargin at screen left + (p - 1) * (panel_width + gap)
    set rmargin at screen left + (p - 1) * (panel_width + gap) + panel_width
    set title panel_label[p] offset 0, -0.5
    if (strlen(panel_series[p]) > 0) {
        unset label 1
        if (p == 2) {                 # the KL estimate can dip below zero
            set autoscale y
        } else {
            set yrange [0 < * : *]    # entropy and a squared error cannot
        }
        shown = panel_series[p]
        plot for [j = 1:words(shown)] datafile index (item(shown, j) - 1) \
                 using ($1 / xscale):(p == 2 ? column(col + 1) : clip0(column(col + 1))):col + 2 \
                 with filledcurves fc rgb colour(series_colour[item(shown, j)]) notitle, \
             for [j = 1:words(shown)] datafile index (item(shown, j) - 1) using ($1 / xscale):col \
                 with lines lw 1.5 lc rgb colour(series_colour[item(shown, j)]) \
                 dt dash(series_variant[item(shown, j)]) notitle
    } else {
        set label 1 "not reported" at graph 0.5, graph 0.5 center
        set yrange [0:1]
        plot NaN notitle
    }
}
unset multiplot
