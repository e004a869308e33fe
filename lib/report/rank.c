#include "rank.h"

int tl_rank_of(const float *scores, int n, int truth)
{
    int rank = 0;
    float t = scores[truth];
    for (int i = 0; i < n; i++)
        if (i != truth && scores[i] >= t)
            rank++;
    return rank;
}

void tl_top_k(const float *scores, int n, int k, int *idx)
{
    /* Insertion into a short sorted list: k is small (top-5), n up to ~1000s. */
    int have = 0;
    for (int i = 0; i < n; i++) {
        if (have == k && scores[i] <= scores[idx[k - 1]])
            continue;
        int pos = have < k ? have++ : k - 1;
        while (pos > 0 && scores[idx[pos - 1]] < scores[i]) {
            idx[pos] = idx[pos - 1];
            pos--;
        }
        idx[pos] = i;
    }
}
