/* Shared between the linear-head files (standardize.c, logreg.c, svm.c,
 * linear.c); not part of the public API. The fit functions work on
 * standardised features and write double weights W (k x d) and b (k). */
#ifndef TL_LINEAR_INTERNAL_H
#define TL_LINEAR_INTERNAL_H

#include "linear.h"

/* Xs[i][j] = (X[i][j] - mean[j]) / std[j], rows in parallel. */
void tl_standardize_apply(const float *X, int64_t n, int d, const float *mean, const float *std, float *Xs,
                          tl_pool *pool);

/* One problem for a solver: standardised features, and either class
 * labels y (with optional per-sample weights) or multi-label targets Y
 * (one-vs-rest, with optional per-class weights of positives and
 * negatives). */
typedef struct tl_linear_problem {
    const float *Xs;          /* n x d */
    int64_t n;
    int d, k;
    const int *y;             /* single-label: n classes */
    const unsigned char *Y;   /* multi-label: n x k 0/1 (then y is NULL) */
    const double *sample_w;   /* single-label: n weights, or NULL */
    const double *class_w;    /* single-label: the k class weights behind sample_w (the SVM's), or NULL */
    const double *pos_w, *neg_w; /* multi-label: k each, or NULL */
} tl_linear_problem;

int tl_logreg_fit(const tl_linear_problem *pb, const tl_linear_opts *o, tl_pool *pool, tl_log_fn log,
                  void *log_user, double *W, double *b, tl_err *e);
int tl_svm_fit(const tl_linear_problem *pb, const tl_linear_opts *o, tl_pool *pool, tl_log_fn log, void *log_user,
               double *W, double *b, tl_err *e);

/* Dot product of a float vector with a double one, accumulated in double
 * over four fixed lanes (same order on every run and thread count). */
static inline double tl_dot_fd(const float *x, const double *w, int d)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int j = 0;
    for (; j + 4 <= d; j += 4) {
        s0 += (double)x[j] * w[j];
        s1 += (double)x[j + 1] * w[j + 1];
        s2 += (double)x[j + 2] * w[j + 2];
        s3 += (double)x[j + 3] * w[j + 3];
    }
    for (; j < d; j++)
        s0 += (double)x[j] * w[j];
    return (s0 + s1) + (s2 + s3);
}

#endif
