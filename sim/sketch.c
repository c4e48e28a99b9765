#include "sketch.h"

#include "common.h"
#include "vecmath.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

enum { SKETCH_MAX_DIM = 4096, SKETCH_MAX_Q = 127 };
#define SKETCH_MAX_NORM 0x1p50
#define SKETCH_TINY 0x1p-60 /* rows whose largest entry is below: stored as zero */

static size_t padded_rows(int n) { return (size_t)((n + 7) / 8) * 8; }

/* x' has an entry per column of the padded pairs */
static size_t padded_columns(int d) { return (size_t)(d + 1) / 2 * 2; }

int sketch_init(sketch *s, int n, int d)
{
    /* all rows zero until filled: a usable sketch (of a zero matrix) */
    *s = (sketch){.n = n, .d = d, .n_blocks = (n + 7) / 8, .usable = d <= SKETCH_MAX_DIM};
    size_t rows = padded_rows(n);
    s->blocks = calloc(rows * padded_columns(d), sizeof *s->blocks);
    s->row_scale = calloc(rows, sizeof *s->row_scale);
    s->norms = calloc((size_t)n, sizeof *s->norms);
    s->norms_single = calloc((size_t)n, sizeof *s->norms_single);
    s->approx = malloc(rows * sizeof *s->approx);
    s->x = calloc(padded_columns(d), sizeof *s->x);
    if (!s->blocks || !s->row_scale || !s->norms || !s->norms_single || !s->approx || !s->x) {
        sketch_free(s);
        return DS_ENOMEM;
    }
    return DS_OK;
}

double sketch_memory(double n, int d)
{
    double rows = 8.0 * ceil(n / 8.0), columns = (double)padded_columns(d);
    return rows * (columns * sizeof(int8_t) + sizeof(float) /* s_i */ + sizeof(float) /* f */) +
           n * (sizeof(double) + sizeof(float)) /* norms */ + columns * sizeof(int16_t);
}

void sketch_free(sketch *s)
{
    free(s->blocks);
    free(s->row_scale);
    free(s->norms);
    free(s->norms_single);
    free(s->approx);
    free(s->x);
    *s = (sketch){0};
}

/* The Euclidean norm of v [d], rounded up past its rounding error ((d + 2) 2^-53
 * relative for d <= 4096), or NaN/Inf for entries that are not finite. */
static double norm_up(const double *v, int d)
{
    double sum = 0.0;
    for (int c = 0; c < d; c++)
        sum += v[c] * v[c];
    return sqrt(sum) * (1.0 + 0x1p-30);
}

float sketch_single_up(double v)
{
    float r = (float)v;
    return (double)r < v ? nextafterf(r, INFINITY) : r;
}

float sketch_single_down(double v)
{
    float r = (float)v;
    return (double)r > v ? nextafterf(r, -INFINITY) : r;
}

static double max_magnitude(const double *v, int d)
{
    double m = 0.0;
    for (int c = 0; c < d; c++)
        m = fmax(m, fabs(v[c]));
    return m;
}

/* Row i as s_i q' (sketch.h), its residual's share of the norm into rho (or, for
 * a tiny row, its norm into tau); 0 past the pairs' padding is left as is. */
static void quantise_row(sketch *s, int i, const double *row, double norm)
{
    int d = s->d;
    double largest = max_magnitude(row, d);
    float scale = largest < SKETCH_TINY ? 0.0f : sketch_single_up(largest / SKETCH_MAX_Q);
    double residual_sq = 0.0;
    for (int c = 0; c < d; c++) {
        double q = scale > 0.0f ? round(row[c] / scale) : 0.0;
        double r = row[c] - scale * q; /* exact: scale q has at most 32 bits */
        residual_sq += r * r;
        s->blocks[vm_i8_block_entry(i, c, d)] = (int8_t)q;
    }
    s->row_scale[i] = scale;
    if (scale == 0.0f)
        s->tau = fmax(s->tau, norm);
    else if (norm > 0.0)
        s->rho = fmax(s->rho, sqrt(residual_sq) * (1.0 + 0x1p-20) / norm);
}

/* Row i's norm and entries; returns 0 if the row makes the sketch unusable. */
static int put_row(sketch *s, int i, const double *row)
{
    double norm = norm_up(row, s->d);
    s->norms[i] = norm;
    s->norms_single[i] = sketch_single_up(norm);
    if (!(norm < SKETCH_MAX_NORM))
        return 0;
    if (norm > s->max_norm)
        s->max_norm = norm;
    quantise_row(s, i, row, norm);
    return 1;
}

void sketch_fill(sketch *s, const double *A, const int *order)
{
    s->max_norm = s->rho = s->tau = 0.0;
    s->usable = s->d <= SKETCH_MAX_DIM;
    for (int i = 0; i < s->n && s->usable; i++)
        s->usable = put_row(s, i, A + (size_t)(order ? order[i] : i) * (size_t)s->d);
}

void sketch_fill_row(sketch *s, int i, const double *row)
{
    if (s->usable && !put_row(s, i, row))
        s->usable = 0;
}

/* x as x' t + e into s->x and s->x_scale; returns |e| rounded up, or -1 when t
 * would not be a normal single. */
static double quantise_x(sketch *s, const double *x)
{
    int d = s->d;
    double largest = max_magnitude(x, d);
    float t = largest > 0.0 ? sketch_single_up(largest / vm_i8_max_x(d)) : 1.0f;
    if (!(t >= FLT_MIN))
        return -1.0;
    double e_sq = 0.0;
    for (int c = 0; c < d; c++) {
        double q = round(x[c] / t);
        double e = x[c] - t * q; /* t q exact: at most 40 bits */
        e_sq += e * e;
        s->x[c] = (int16_t)q;
    }
    s->x_scale = t;
    return sqrt(e_sq) * (1.0 + 0x1p-30);
}

/* E_i of sketch.h: the coefficient of |A_i|, then the absolute term. */
static sketch_error sketch_bound(const sketch *s, double x_norm, double e_norm)
{
    double rho = s->rho, x_quantised = x_norm + e_norm;
    double scale = x_quantised * rho + e_norm +
                   3.0 * 0x1p-24 * (1.0 + 0x1p-20) * x_quantised * (1.0 + rho) +
                   s->d * 0x1p-53 * x_norm;
    return (sketch_error){.scale = scale * (1.0 + 0x1p-6),
                          .absolute = (x_norm * s->tau + 0x1p-148) * (1.0 + 0x1p-6),
                          .x_norm = x_norm};
}

int sketch_start(sketch *s, const double *x, sketch_error *err)
{
    if (!s->usable || s->n <= 0)
        return 0;
    double x_norm = norm_up(x, s->d);
    if (!(x_norm < SKETCH_MAX_NORM))
        return 0;
    double e_norm = quantise_x(s, x);
    if (e_norm < 0.0)
        return 0;
    *err = sketch_bound(s, x_norm, e_norm);
    return 1;
}

void sketch_score_blocks(sketch *s, int from, int to)
{
    size_t block = padded_columns(s->d) * 8;
    vm_i8_blocks_dot(s->approx + (size_t)from * 8, s->blocks + (size_t)from * block, s->x,
                     s->row_scale + (size_t)from * 8, s->x_scale, to - from, s->d);
}

int sketch_scores(sketch *s, const double *x, sketch_error *err)
{
    if (!sketch_start(s, x, err))
        return 0;
    sketch_score_blocks(s, 0, s->n_blocks);
    return 1;
}
