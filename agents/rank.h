/* Choosing the best-scored candidates, shared by the scoring agents. */
#ifndef DIVSIM_RANK_H
#define DIVSIM_RANK_H

#include "../sim/sketch.h"

/* Puts into best[0..k-1] the positions (indices into candidates) of the k
 * highest scores, best first; score[j] belongs to candidates[j]; ties go to the
 * lower item id. A bounded heap: O(n log k). heap is [k] scratch. If k > n, only
 * n positions are written. */
void rank_top_k(const int *candidates, const double *score, int n, int k, int *heap,
                int *best);

/* A first scoring pass from an approximate copy, for the top k of the scores
 * A[i].x (vm_dot) of the n rows of a matrix A [n][d], with exactly the result
 * of vm_rows_dot followed by rank_top_k: the same positions in the same order.
 *
 * The copy is an int8 sketch of A (sim/sketch.h), whose approximate score f_i
 * of row i is within a proven E_i of the double score s_i: s_i lies in
 * [l_i, u_i] = [f_i - E_i, f_i + E_i]. With l* the k-th largest l_i, the k rows
 * of the largest l have s >= l*, so the k-th best s is >= l*, and every row of
 * the exact top k has u >= s >= l*: the rows with u_i >= l* are scored again
 * exactly (vm_dot) and ranked by rank_top_k, whose top k of a superset of the
 * true top k is the true top k.
 *
 * The sketch holds A's rows in decreasing norm and is scored a few blocks at a
 * time: a row's exact score is at most |x| |A_i|, so once |x| times the largest
 * norm left is below the k-th largest l of the rows scored, the rows left are
 * out of the top k and are not scored at all (with trained factors, a few
 * percent of the catalogue can reach it). */
typedef struct {
    double norm;
    int row;
} rank_row_norm;

typedef struct {
    sketch sk;              /* A in int8, its row norms and the scores f */
    int *order;             /* [n] the row of A at each position of the sketch */
    double *tail_norm;      /* [n + 1] the largest sketch norm from each position on */
    rank_row_norm *by_norm; /* [n] scratch of rank_sketch_fill: the rows to sort */
    /* scratch of rank_top_k_sketched */
    double *heap;           /* [n] the k largest l = f - E, least at the root */
    int *pool;              /* [n] positions scored again exactly */
    int *pool_ids;          /* [n] their candidates */
    double *pool_scores;    /* [n] their exact scores */
    int *pool_best;         /* [n] the top k of the pool, as pool indices */
} rank_sketch;

/* Allocates a sketch of n rows of d columns (not usable until filled):
 * DS_OK or DS_ENOMEM. */
int rank_sketch_init(rank_sketch *s, int n, int d);

/* Copies A [n][d] into the sketch; it is usable if every entry is finite and
 * every row's norm below 2^50 (otherwise rank_top_k_sketched declines). */
void rank_sketch_fill(rank_sketch *s, const double *A);

void rank_sketch_free(rank_sketch *s);

/* The bytes rank_sketch_init allocates for n rows of d columns. */
double rank_sketch_memory(int n, int d);

/* rank_top_k over the scores A[i].x of all n rows (candidates[i] the id of row
 * i, for ties) through the sketch of A: best[0..min(k, n)-1] as rank_top_k gives
 * them, scores[i] = vm_dot(A_i, x) for every position in best (and other
 * positions scored again). heap is [k] scratch. Returns 1 when done, 0 when the
 * sketch cannot vouch for the result (not usable, x not finite or too large,
 * d > 4096) or would not pay (of the order of k + n / 4 rows to score again:
 * scores closer together than the bound, as before factors are trained): then
 * best and scores are not written and the caller scores in full. */
int rank_top_k_sketched(rank_sketch *s, const double *A, const double *x,
                        const int *candidates, int k, double *scores, int *heap, int *best);

#endif
