#include "rank.h"

/* a ranks above b. */
static int better(double score_a, int item_a, double score_b, int item_b)
{
    return score_a > score_b || (score_a == score_b && item_a < item_b);
}

void rank_top_k(const int *candidates, const double *score, int n, int k, int *out,
                double *out_score)
{
    int filled = 0;
    for (int i = 0; i < n; i++) {
        int item = candidates[i];
        double s = score[i];
        if (filled == k && !better(s, item, out_score[k - 1], out[k - 1]))
            continue;
        int pos = filled < k ? filled++ : k - 1;
        while (pos > 0 && better(s, item, out_score[pos - 1], out[pos - 1])) {
            out_score[pos] = out_score[pos - 1];
            out[pos] = out[pos - 1];
            pos--;
        }
        out_score[pos] = s;
        out[pos] = item;
    }
}
