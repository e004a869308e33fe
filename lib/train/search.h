/* Retrieval: the k vectors of a feature file most similar to each of a
 * set of queries, with their paths and labels (tl-search). The index file
 * is read once, a block of vectors at a time (a pipe will do); only the
 * block, the queries and the paths and labels of the vectors some query
 * currently holds among its k best are kept, so an index of any size fits
 * in a fixed amount of memory. */
#ifndef TL_TRAIN_SEARCH_H
#define TL_TRAIN_SEARCH_H

#include "io/features.h"
#include "neighbours.h"

typedef struct tl_search_hit {
    double score;        /* cosine similarity, or minus the Euclidean distance */
    int64_t index;       /* the vector's position in the index file, from 0 */
    const char *path;    /* as the index file records it */
    const char *label;   /* its label names ("" for none; multi-label: joined by ',') */
} tl_search_hit;

typedef struct tl_search tl_search;

/* m queries of d values; k hits each; block: index vectors read at a time
 * (0: enough for about 16 MB of vectors, at least 256). */
tl_search *tl_search_new(const float *queries, int m, int d, int k, int metric, int64_t block, tl_pool *pool,
                         tl_err *e);
void tl_search_free(tl_search *s);

/* Reads r to its end (r's dimension must be d). */
int tl_search_run(tl_search *s, tl_featr *r, const char *name, tl_err *e);
/* Vectors read from the index. */
int64_t tl_search_count(const tl_search *s);

/* Query q's hits, best first (*n <= k); out has room for k. Valid until
 * tl_search_free. */
void tl_search_results(const tl_search *s, int q, tl_search_hit *out, int *n);

#endif
