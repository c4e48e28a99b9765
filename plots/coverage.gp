# Exposure over simulated time: item coverage, the Gini index of exposure and
# the normalised exposure entropy of each full metrics window, one panel each,
# on their whole range [0, 1]; one line per series (the mean over runs); an
# open circle marks each series' last full train window.
# Data columns: 1 simulated hours | 2-4 coverage mean, CI low, high | 5-7 Gini |
# 8-10 normalised entropy | 11 runs | 12 phase | 13 1 on the last train window.

fig_width = 7.0
fig_height = 2.5
key_beside = 1
key_extra_lines = 1                  # "end of training"
load varsfile
load templatedir . "/common.gp"

array panel_column[3] = [2, 5, 8]
array panel_label[3] = ["item coverage", "Gini index of exposure", \
                        "norm. exposure entropy"]
# Three panels side by side, the key in a column at the right (or below).
left = 0.55 / fig_width
gap = 0.63 / fig_width
key_len = title_len > 15 ? title_len : 15   # "end of training"
right = key_below ? 0.97 : 1.0 - key_width(key_len) / fig_width - 0.02
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
    end_title = kc == key_cols ? "end of training" : ""
    if (key_first(kc) <= nseries) {
        plot for [i = key_first(kc):key_last(kc)] NaN with lines lw 1.5 \
                 lc rgb colour(series_colour[i]) dt dash(series_variant[i]) \
                 title series_title[i], \
             NaN with points pt 6 ps 0.9 lw 1.2 lc rgb "#000000" title end_title
    } else {                          # a last column of that line alone
        plot NaN with points pt 6 ps 0.9 lw 1.2 lc rgb "#000000" title end_title
    }
}

# The panels.
eval axes_canvas
set xlabel xlabel
unset ylabel
set xrange [0:*]
set yrange [0:1]
set ytics 0.2 format "%.1f"
set xtics nice_step(xmax, tics(panel_width * fig_width))
set bmargin at screen bottom
set tmargin at screen top
do for [p = 1:3] {
    col = panel_column[p]
    set lmargin at screen left + (p - 1) * (panel_width + gap)
    set rmargin at screen left + (p - 1) * (panel_width + gap) + panel_width
    set title panel_label[p] offset 0, -0.5
    plot for [i = 1:nseries] datafile index (i - 1) using 1:col \
             with lines lw 1.5 lc rgb colour(series_colour[i]) dt dash(series_variant[i]) \
             notitle, \
         for [i = 1:nseries] datafile index (i - 1) using 1:($13 == 1 ? column(col) : NaN) \
             with points pt 6 ps 0.9 lw 1.2 lc rgb colour(series_colour[i]) notitle
}
unset multiplot
