#ifndef TL_REPORT_RANK_H
#define TL_REPORT_RANK_H

/* Rank (0 = best) of class `truth` among n scores; ties count against it,
 * so a constant output never earns a top-k hit. */
int tl_rank_of(const float *scores, int n, int truth);
/* Index of the k best scores, best first (k <= n). */
void tl_top_k(const float *scores, int n, int k, int *idx);

#endif
