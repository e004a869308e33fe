#ifndef TL_REPORT_RANK_H
#define TL_REPORT_RANK_H

#include "core.h" /* tl_top_k: the k best scores, public (lib/tl.h) */

/* Rank (0 = best) of class `truth` among n scores; ties count against it,
 * so a constant output never earns a top-k hit. */
int tl_rank_of(const float *scores, int n, int truth);

#endif
