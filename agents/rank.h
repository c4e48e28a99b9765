/* Choosing the best-scored candidates, shared by the scoring agents. */
#ifndef DIVSIM_RANK_H
#define DIVSIM_RANK_H

/* Puts into best[0..k-1] the positions (indices into candidates) of the k
 * highest scores, best first; score[j] belongs to candidates[j]; ties go to the
 * lower item id. A bounded heap: O(n log k). heap is [k] scratch. If k > n, only
 * n positions are written. */
void rank_top_k(const int *candidates, const double *score, int n, int k, int *heap,
                int *best);

#endif
