/* Nearest neighbours of a set of query vectors among vectors that arrive
 * in blocks, each block seen once: the k best of every query are kept in
 * a bounded heap, so an index of any size streams through in the memory
 * of one block plus queries x k hits. Used by the k-nearest-neighbour head
 * (head.h) and by tl-search.
 *
 * Similarity: cosine (the dot product of the vectors scaled to length 1;
 * a zero vector scores 0 against everything) or Euclidean (the score is
 * the negative distance, so higher is nearer either way). Cosine scores
 * come from the GEMM kernel over fixed pieces of each block, Euclidean
 * distances from double-precision sums; neither depends on the thread
 * count. Ties are broken by the lower index, so the k best are one
 * well-defined set. */
#ifndef TL_TRAIN_NEIGHBOURS_H
#define TL_TRAIN_NEIGHBOURS_H

#include "core.h"

enum { TL_METRIC_COSINE, TL_METRIC_EUCLIDEAN };

typedef struct tl_hit {
    double score;      /* cosine similarity, or minus the Euclidean distance */
    int64_t index;     /* position in the stream of index vectors */
} tl_hit;

typedef struct tl_nn tl_nn;

/* m queries of d values (copied); k >= 1 hits kept per query. */
tl_nn *tl_nn_new(const float *queries, int m, int d, int k, int metric, int nthreads, tl_err *e);
void tl_nn_free(tl_nn *s);

/* Scores n more index vectors (n x d), numbered first..first+n-1. With
 * `entered` non-NULL, entered[i] is set when vector i went into some
 * query's k best (its caller may then keep what it needs of it). */
int tl_nn_add(tl_nn *s, const float *vectors, int64_t n, int64_t first, tl_pool *pool, unsigned char *entered,
              tl_err *e);

/* Query q's hits, best first (*count <= k: fewer when fewer vectors came). */
void tl_nn_results(const tl_nn *s, int q, tl_hit *out, int *count);
/* Every index some query holds now (ascending, each once) into out
 * (room for m x k); returns how many. A caller that keeps data about the
 * vectors it streamed (paths, labels) may drop the rest. */
int64_t tl_nn_held(const tl_nn *s, int64_t *out);

/* Scales v (d values) to length 1 in place; a zero vector stays zero. */
void tl_l2_normalise(float *v, int d);

#endif
