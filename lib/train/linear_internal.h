/* Shared between the linear-head files (standardize.c, logreg.c, svm.c,
 * linear.c); not part of the public API. The fit functions work on
 * standardised features and write double weights W (k x d) and b (k). */
#ifndef TL_LINEAR_INTERNAL_H
#define TL_LINEAR_INTERNAL_H

#include "linear.h"

/* Xs[i][j] = (X[i][j] - mean[j]) / std[j], rows in parallel. */
void tl_standardize_apply(const float *X, int64_t n, int d, const float *mean, const float *std, float *Xs,
                          tl_pool *pool);

int tl_logreg_fit(const float *Xs, const int *y, int64_t n, int d, int k, const tl_linear_opts *o, tl_pool *pool,
                  tl_log_fn log, void *log_user, double *W, double *b, tl_err *e);
int tl_svm_fit(const float *Xs, const int *y, int64_t n, int d, int k, const tl_linear_opts *o, tl_pool *pool,
               tl_log_fn log, void *log_user, double *W, double *b, tl_err *e);

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
