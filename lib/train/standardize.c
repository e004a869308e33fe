/* Per-dimension standardisation of feature matrices for the linear heads. */
#include "linear_internal.h"

#include <math.h>

int tl_standardize_fit(const float *X, int64_t n, int d, float *mean, float *std, tl_err *e)
{
    if (n < 1 || d < 1)
        return tl_fail(e, "cannot standardise %lld x %d features", (long long)n, d);
    double *sum = tl_alloc_array((size_t)d * 2, sizeof(double));
    float *mm = tl_alloc_array((size_t)d * 2, sizeof(float));
    if (!sum || !mm) {
        tl_free(sum);
        tl_free(mm);
        return tl_fail(e, "out of memory standardising %d dimensions", d);
    }
    double *ss = sum + d;
    float *mn = mm, *mx = mm + d;
    for (int j = 0; j < d; j++)
        mn[j] = mx[j] = X[j];
    /* Two passes (mean, then squared deviations) avoid the cancellation of
     * the one-pass formula; rows outer keeps memory access sequential. */
    for (int64_t i = 0; i < n; i++) {
        const float *x = X + i * d;
        for (int j = 0; j < d; j++) {
            sum[j] += x[j];
            mn[j] = x[j] < mn[j] ? x[j] : mn[j];
            mx[j] = x[j] > mx[j] ? x[j] : mx[j];
        }
    }
    for (int j = 0; j < d; j++) {
        if (!isfinite(sum[j])) {
            /* NaN and inf poison the sum; find the culprit for the message. */
            int64_t i = 0;
            while (i < n && isfinite(X[i * d + j]))
                i++;
            tl_free(sum);
            tl_free(mm);
            if (i < n)
                return tl_fail(e, "feature [%lld][%d] is not finite (%g)", (long long)i, j, (double)X[i * d + j]);
            return tl_fail(e, "feature dimension %d overflows", j);
        }
        sum[j] /= (double)n;
    }
    for (int64_t i = 0; i < n; i++) {
        const float *x = X + i * d;
        for (int j = 0; j < d; j++) {
            double t = x[j] - sum[j];
            ss[j] += t * t;
        }
    }
    for (int j = 0; j < d; j++) {
        mean[j] = (float)sum[j];
        float s = (float)sqrt(ss[j] / (double)n);
        /* A constant dimension carries no information: std 1 keeps it finite
         * (it becomes 0 after centring). */
        std[j] = (mn[j] == mx[j] || !(s > 0) || !isnormal(s)) ? 1.0f : s;
    }
    tl_free(sum);
    tl_free(mm);
    return 0;
}

typedef struct {
    const float *X, *mean, *std;
    float *Xs;
    int d;
} apply_ctx;

static void apply_rows(void *vctx, int64_t b, int64_t end, int worker)
{
    (void)worker;
    const apply_ctx *c = vctx;
    int d = c->d;
    for (int64_t i = b; i < end; i++) {
        const float *x = c->X + i * d;
        float *o = c->Xs + i * d;
        for (int j = 0; j < d; j++)
            o[j] = (float)(((double)x[j] - c->mean[j]) / c->std[j]);
    }
}

void tl_standardize_apply(const float *X, int64_t n, int d, const float *mean, const float *std, float *Xs,
                          tl_pool *pool)
{
    apply_ctx c = {X, mean, std, Xs, d};
    tl_parallel_for(pool, n, 64, apply_rows, &c);
}
