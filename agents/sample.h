/* Sampling helpers shared by agents. */
#ifndef DIVSIM_SAMPLE_H
#define DIVSIM_SAMPLE_H

#include <gsl/gsl_rng.h>
#include <stdint.h>

/* Fills out[0..k-1] with k distinct items drawn uniformly from candidates[0..n-1],
 * in random order. Rejection sampling: O(k^2) when k is much smaller than n,
 * a partial shuffle of a copy otherwise. Returns DS_EINPUT if n < k. */
int sample_distinct(gsl_rng *r, const int *candidates, int n, int *out, int k);

/* The log-probability of one ordered draw of sample_distinct: -ln(n (n-1) ...
 * (n-k+1)). */
double sample_distinct_logprob(int n, int k);

/* The log-probabilities sample_explore returns depend only on n, k, epsilon and
 * how many slots changed, and take a dozen lgamma calls each: an agent keeps
 * them here so each is computed once. Zero-initialise; it starts over when n, k
 * or epsilon change. Counts of changed slots from 64 up are not kept. */
typedef struct {
    int n, k;
    double epsilon;
    uint64_t known;  /* bit c: logp[c] is the value for c changed slots */
    double logp[64]; /* [changed slots] */
} sample_explore_memo;

/* Epsilon exploration of a chosen slate: each slot independently, with
 * probability epsilon, is given up; the given-up slots are then refilled by
 * sampling without replacement, uniformly among the candidates not kept in the
 * slate. With epsilon = 1 the slate is a uniform random k-subset. Candidates
 * must be distinct and n >= k. Returns the log-probability of the resulting
 * ordered slate given the chosen one (0 when epsilon <= 0): the sum over every
 * set of given-up slots that could have produced it, bit for bit the same with
 * or without a memo (memo may be NULL). */
double sample_explore(gsl_rng *r, sample_explore_memo *memo, const int *candidates, int n,
                      int *slate, int k, double epsilon);

/* 1 if item is among items[0..n-1]. */
int sample_contains(const int *items, int n, int item);

#endif
