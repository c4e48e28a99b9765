/* Choosing the best-scored candidates, shared by the scoring agents. */
#ifndef DIVSIM_RANK_H
#define DIVSIM_RANK_H

/* Writes to out[0..k-1] the k candidates with the highest score, best first,
 * and their scores to out_score[0..k-1]; score[i] belongs to candidates[i];
 * ties go to the lower item id. One pass with insertion into the short list:
 * O(n) when most candidates lose to the k-th best, O(n k) at worst.
 * Requires n >= k. */
void rank_top_k(const int *candidates, const double *score, int n, int k, int *out,
                double *out_score);

#endif
