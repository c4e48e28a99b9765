#include "sketch.h"

#include "common.h"
#include "vecmath.h"

#include <math.h>
#include <stdlib.h>

enum { SKETCH_MAX_DIM = 4096 };
#define SKETCH_MAX_NORM 0x1p50

int sketch_init(sketch *s, int n, int d)
{
    /* all rows zero until filled: a usable sketch (of a zero matrix) */
    *s = (sketch){.n = n, .d = d, .n_blocks = (n + 7) / 8, .usable = d <= SKETCH_MAX_DIM};
    size_t padded = (size_t)s->n_blocks * 8;
    s->blocks = calloc(padded * (size_t)d, sizeof *s->blocks);
    s->norms = calloc((size_t)n, sizeof *s->norms);
    s->norms_single = calloc((size_t)n, sizeof *s->norms_single);
    s->approx = malloc(padded * sizeof *s->approx);
    s->x = malloc((size_t)d * sizeof *s->x);
    if (!s->blocks || !s->norms || !s->norms_single || !s->approx || !s->x) {
        sketch_free(s);
        return DS_ENOMEM;
    }
    return DS_OK;
}

void sketch_free(sketch *s)
{
    free(s->blocks);
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

/* Row i's norm and entries; returns 0 if the row makes the sketch unusable. */
static int put_row(sketch *s, int i, const double *row)
{
    int d = s->d;
    double norm = norm_up(row, d);
    s->norms[i] = norm;
    s->norms_single[i] = sketch_single_up(norm);
    if (!(norm < SKETCH_MAX_NORM))
        return 0;
    if (norm > s->max_norm)
        s->max_norm = norm;
    uint16_t *block = s->blocks + (size_t)(i / 8) * (size_t)d * 8 + vm_bf16_block_slot(i % 8);
    for (int c = 0; c < d; c++)
        block[8 * c] = vm_bf16_of(row[c]);
    return 1;
}

void sketch_fill(sketch *s, const double *A, const int *order)
{
    s->max_norm = 0.0;
    s->usable = s->d <= SKETCH_MAX_DIM;
    for (int i = 0; i < s->n && s->usable; i++)
        s->usable = put_row(s, i, A + (size_t)(order ? order[i] : i) * (size_t)s->d);
}

void sketch_fill_row(sketch *s, int i, const double *row)
{
    if (s->usable && !put_row(s, i, row))
        s->usable = 0;
}

/* The relative coefficient of E_i (sketch.h): E_i = relative |x| |A_i| + absolute. */
static double sketch_relative_error(int d)
{
    return (0x1p-8 + (d + 4) * 0x1p-24) * (1.0 + 0x1p-6);
}

static double sketch_absolute_error(int d, double x_norm, double max_norm)
{
    return d * 0x1p-130 * (1.0 + x_norm + max_norm);
}

int sketch_start(sketch *s, const double *x, sketch_error *err)
{
    int d = s->d;
    if (!s->usable || s->n <= 0)
        return 0;
    double x_norm = norm_up(x, d);
    if (!(x_norm < SKETCH_MAX_NORM))
        return 0;
    for (int c = 0; c < d; c++)
        s->x[c] = (float)x[c];
    *err = (sketch_error){.scale = sketch_relative_error(d) * x_norm,
                          .absolute = sketch_absolute_error(d, x_norm, s->max_norm),
                          .x_norm = x_norm};
    return 1;
}

void sketch_score_blocks(sketch *s, int from, int to)
{
    size_t block = (size_t)s->d * 8;
    vm_bf16_blocks_dot(s->approx + (size_t)from * 8, s->blocks + (size_t)from * block, s->x,
                       to - from, s->d);
}

int sketch_scores(sketch *s, const double *x, sketch_error *err)
{
    if (!sketch_start(s, x, err))
        return 0;
    sketch_score_blocks(s, 0, s->n_blocks);
    return 1;
}
