/* Heads that compare a vector with stored training vectors instead of
 * learning weights: the nearest class mean (NCM: one mean per class, as
 * scikit-learn's NearestCentroid) and the k nearest neighbours (kNN: the
 * training vectors themselves, as KNeighborsClassifier). Nothing is
 * optimised, so they suit few-shot data (one to ten images per class),
 * where a fitted head has little to fit to.
 *
 * Cosine similarity (default) compares directions: vectors are scaled to
 * length 1 first, and an NCM mean is the mean of the scaled vectors.
 * Euclidean compares positions. */
#ifndef TL_TRAIN_PROTOTYPE_H
#define TL_TRAIN_PROTOTYPE_H

#include "core.h"

typedef struct tl_proto {
    int kind;          /* TL_HEAD_NCM or TL_HEAD_KNN (linear.h) */
    int metric;        /* TL_METRIC_COSINE or TL_METRIC_EUCLIDEAN (neighbours.h) */
    int neighbours;    /* kNN: votes per decision */
    int d, k;          /* vector dimension, classes */
    int64_t n;         /* stored vectors: k means, or the training vectors */
    float *V;          /* n x d (cosine: unit length) */
    int *labels;       /* n: the class of each */
    double *scratch;   /* n scores of the vector being classified */
    float *q;          /* d: it, scaled for cosine */
} tl_proto;

/* The default number of neighbours: 5, but no more than the smallest
 * class has (with one image per class, more neighbours can only bring
 * other classes' votes). */
int tl_knn_default_neighbours(const int *y, int64_t n, int k);

/* y: classes in [0, k); every class needs a vector for NCM. neighbours
 * (kNN) 0 = tl_knn_default_neighbours. */
int tl_proto_fit(const float *X, const int *y, int64_t n, int d, int k, int kind, int metric, int neighbours,
                 tl_proto *out, tl_err *e);
/* Takes ownership of V and labels (from a file); allocates the scratch. */
int tl_proto_init(tl_proto *p, int kind, int metric, int neighbours, int d, int k, int64_t n, float *V, int *labels,
                  tl_err *e);
void tl_proto_free(tl_proto *p);

/* k outputs for x. NCM: the similarity to each class mean (cosine), or
 * minus the distance (Euclidean): decision values, highest wins. kNN:
 * the fraction of the neighbours' votes each class gets (probabilities,
 * scikit-learn's predict_proba with uniform weights); the neighbours are
 * the most similar stored vectors, equal similarities going to the
 * earlier one, and a tie in votes to the lower class, as everywhere
 * (scikit-learn's rule too). Not thread-safe (one scratch per head). */
void tl_proto_scores(const tl_proto *p, const float *x, float *out);

#endif
