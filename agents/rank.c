#include "rank.h"

#include "../sim/vecmath.h"

/* Position a ranks above position b: higher score, then lower item id. */
static int ranks_above(const int *candidates, const double *scores, int a, int b)
{
    if (scores[a] != scores[b])
        return scores[a] > scores[b];
    return candidates[a] < candidates[b];
}

/* Restores the heap (worst position at the root) below slot i. */
static void sift_down(const int *candidates, const double *scores, int *heap, int len,
                      int i)
{
    for (;;) {
        int worst = i, l = 2 * i + 1, r = l + 1;
        if (l < len && ranks_above(candidates, scores, heap[worst], heap[l]))
            worst = l;
        if (r < len && ranks_above(candidates, scores, heap[worst], heap[r]))
            worst = r;
        if (worst == i)
            return;
        int t = heap[i];
        heap[i] = heap[worst];
        heap[worst] = t;
        i = worst;
    }
}

static void sift_up(const int *candidates, const double *scores, int *heap, int i)
{
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!ranks_above(candidates, scores, heap[parent], heap[i]))
            return;
        int t = heap[i];
        heap[i] = heap[parent];
        heap[parent] = t;
        i = parent;
    }
}

void rank_top_k(const int *candidates, const double *scores, int n, int k, int *heap,
                int *best)
{
    if (k > n)
        k = n;
    if (k <= 0)
        return;
    int len = 0, j = 0;
    for (; j < n && len < k; j++) {
        heap[len] = j;
        sift_up(candidates, scores, heap, len++);
    }
    /* Most positions score below the heap's worst: a vector comparison rejects
     * them four at a time (a NaN on either side falls through to ranks_above, as
     * before). */
    double worst = scores[heap[0]];
    for (; j < n; j++) {
        j = vm_first_not_below(scores, j, n, worst);
        if (j == n)
            break;
        if (ranks_above(candidates, scores, j, heap[0])) {
            heap[0] = j;
            sift_down(candidates, scores, heap, len, 0);
            worst = scores[heap[0]];
        }
    }
    /* Popping the worst each time fills best[] from the back. */
    for (int out = k - 1; out >= 0; out--) {
        best[out] = heap[0];
        heap[0] = heap[--len];
        sift_down(candidates, scores, heap, len, 0);
    }
}
