/* `divsim bench`: throughput, memory and scaling figures of the engine on this
 * machine, each the median of several repetitions (see sim/bench.c). */
#ifndef DIVSIM_BENCH_H
#define DIVSIM_BENCH_H

#include <stdio.h>

typedef struct {
    int json;          /* JSON instead of the table */
    int quick;         /* one short repetition per case: a smoke test, not a measurement */
    int reps;          /* repetitions per case; 0 = each case's own */
    long steps;        /* timed steps per repetition; 0 = each case's own */
    const char *only;  /* run only the cases whose id contains this text; NULL = all */
    FILE *progress;    /* a line per case as it runs (stderr); NULL = silent */
} bench_options;

/* Fills opt from `divsim bench` arguments argv[2..argc). DS_EINPUT with err. */
int bench_parse_args(int argc, char **argv, bench_options *opt, char *err);

/* Runs the cases and prints the table (or JSON) to out. Each case runs in a child
 * process of its own, so that its peak memory is its own; a child, and a sweep
 * worker inside it, also returns from here, with *worker set: it must exit at
 * once, with status 0 if the call returned DS_OK. Returns DS_OK (a case that
 * failed is reported in the output), or an error code with err filled. */
int bench_run(const bench_options *opt, FILE *out, int *worker, char *err);

#endif
