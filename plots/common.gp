# Shared style of the figures of `divsim plot`: terminal, fonts, palette, axes.
#
# Every template sets fig_width and fig_height (inches), loads varsfile (the
# series, labels and ranges of one figure, written by divsim) and then this
# file, which may make fig_height larger (see key_below). divsim passes, with gnuplot -e: templatedir, datafile, varsfile,
# outfile and term ('png', 'pdf' or 'svg').
#
# Sizes are those of a two-column paper: 3.4 in is one column, 7 in the full
# page width, so fonts of 8 pt stay 8 pt when the figure is included at its
# natural width. PDF and SVG are vector; PNG is drawn at png_dpi pixels per
# inch with everything scaled to match the PDF.

font_name = "Helvetica"   # cairo substitutes a metric-compatible sans serif
font_size = 8
png_dpi = 200
font = sprintf("%s,%g", font_name, font_size)

# Where the key goes. A template that sets key_beside = 1 before loading this
# file puts its key beside the plot, in key_width(title_len) inches (gnuplot's
# own estimate of the width of text is far too generous): the sample and the
# gaps around it take about 5 of gnuplot's character widths (0.95 em), the
# text title_len characters of 0.56 em. A key that would need more than
# 1.4 in (long titles of swept settings), or that a template would rather not
# have narrow the plot (key_wide_plot = 1), goes below the plot instead, in as
# many columns as fit (a figure whose key would need more than 6 rows there
# widens to the full page, 7 in), and the figure grows by key_height inches.
# Templates draw the key as plots of nothing (after `eval key_canvas`), one a
# column, series key_first(c) .. key_last(c) in column c at screen
# key_x(c), key_top: gnuplot, left to itself, wraps long keys into columns
# that run off the canvas.
title_len = 0
do for [i = 1:nseries] {
    title_len = strlen(series_title[i]) > title_len ? strlen(series_title[i]) : title_len
}
key_width(len) = (5 * 0.95 + len * 0.56) * font_size / 72.0 + 0.05
key_lines = nseries + (exists("key_extra_lines") ? key_extra_lines : 0)
key_line = 1.5 * font_size / 72.0                      # gnuplot's line height, inches
key_below = exists("key_beside") && \
            (key_width(title_len) > 1.4 || exists("key_wide_plot") && key_wide_plot)
columns_in(w) = (n = floor((w - 0.2) / key_width(title_len)), n < 1 ? 1 : n)
rows_in(w) = ceil(1.0 * key_lines / columns_in(w))
if (key_below && rows_in(fig_width) > 6) {
    fig_width = 7.0
}
key_rows = key_below ? rows_in(fig_width) : key_lines
key_cols = ceil(1.0 * key_lines / key_rows)              # none of them empty
key_height = key_rows * key_line + 0.15
if (key_below) {
    fig_height = fig_height + key_height
}
key_first(c) = (c - 1) * key_rows + 1
key_last(c) = c * key_rows < nseries ? c * key_rows : nseries
key_x(c) = key_below ? (0.1 + (c - 1) * (fig_width - 0.2) / key_cols) / fig_width \
                     : 1.0 - key_width(title_len) / fig_width
key_top = key_below ? key_height / fig_height : 1.0 - 0.25 / fig_height
key_canvas = "set lmargin at screen 0; set rmargin at screen 1; set tmargin at screen 1; " . \
             "set bmargin at screen 0; unset border; unset xtics; unset ytics; unset grid; " . \
             "unset xlabel; unset ylabel; set xrange [0:1]; set yrange [0:1]"
# Back to drawing axes, after key_canvas.
axes_canvas = "unset key; set border 3 lw 0.8; set xtics nomirror out scale 0.5; " . \
              "set ytics nomirror out scale 0.5; set grid; set autoscale"

# Line widths are in points (pdfcairo's unit is half a point, hence its
# linewidth 2 and dashlength 2; it halves fonts unless told fontscale 1).
if (term eq "pdf") {
    set terminal pdfcairo noenhanced color rounded size fig_width, fig_height \
        font font fontscale 1 linewidth 2 dashlength 2
} else {
    if (term eq "svg") {
        set terminal svg noenhanced rounded size fig_width * 72, fig_height * 72 \
            font font linewidth 1 background rgb "white"
    } else {
        s = png_dpi / 72.0
        set terminal pngcairo noenhanced color rounded \
            size fig_width * png_dpi, fig_height * png_dpi \
            font font fontscale s linewidth s pointscale s background rgb "white"
    }
}
set output outfile

# Okabe & Ito (2008), "Color universal design": distinguishable with every
# common form of colour blindness, with the grey that R's palette.colors()
# adds to it. Yellow comes last: lines and labels in it are faint on white.
array okabe_ito[9] = ["#0072B2", "#D55E00", "#009E73", "#E69F00", \
                      "#CC79A7", "#56B4E9", "#000000", "#999999", "#F0E442"]
colour(i) = okabe_ito[(i - 1) % 9 + 1]
# Settings of one agent differ by dash type and by point shape.
dash(v) = (v - 1) % 5 + 1
array shapes[6] = [7, 5, 9, 13, 11, 15]   # filled circle, square, triangles, diamond, ...
shape(i) = shapes[(i - 1) % 6 + 1]

# Lists of series are words: " 1 3" (item(list, 2) is 3).
item(list, j) = j <= words(list) ? int(word(list, j)) : 1   # 1 keeps an empty loop parsable

set datafile missing NaN
# Every metric divsim plots is non-negative: confidence intervals are drawn
# clipped at zero (the data files keep them whole).
clip0(v) = v < 0 ? 0 : v
set border 3 lw 0.8                 # left and bottom axes only
set tics nomirror out scale 0.5
set grid back lc rgb "#e4e4e4" lw 0.5 dt 1
# Confidence bands: lighter as they get more numerous.
band_opacity = nseries <= 3 ? 0.2 : nseries <= 5 ? 0.14 : 0.08
set style fill transparent solid band_opacity noborder

# A tic step for a range of data: 1, 2 or 5 times a power of ten, giving at
# most n intervals (gnuplot's own choice ignores how wide the labels are);
# tics(w): how many intervals an axis w inches long has room for.
nice_step(range, n) = (range <= 0 ? 1 : (s0 = 10.0 ** floor(log10(1.0 * range / n)), \
    range / s0 <= n ? s0 : range / (2 * s0) <= n ? 2 * s0 : \
    range / (5 * s0) <= n ? 5 * s0 : 10 * s0))
tics(w) = w < 0.8 ? 2 : floor(w / 0.38)

# Keys: one entry a line, the sample first, the text left-aligned.
set key noenhanced vertical Left reverse samplen 3 spacing 1.15
