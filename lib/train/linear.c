/* Entry point for the linear heads: validation, standardisation, dispatch
 * to the solver, and folding the standardisation back into the weights. */
#include "linear_internal.h"

#include <math.h>
#include <string.h>

void tl_linear_opts_default(tl_linear_opts *o)
{
    memset(o, 0, sizeof *o);
    o->kind = TL_HEAD_LOGREG;
    o->C = 1.0;
    o->max_iter = 1000;
    o->tol = 0; /* the kind's own default */
    o->fit_intercept = 1;
}

static int check_input(const float *X, const int *y, const unsigned char *Y, int64_t n, int d, int k,
                       const tl_linear_opts *o, tl_err *e)
{
    if (!X || (!y && !Y))
        return tl_fail(e, "no training data");
    if (n < 1)
        return tl_fail(e, "no training samples");
    if (d < 1)
        return tl_fail(e, "feature dimension %d, expected at least 1", d);
    if (k < (Y ? 1 : 2))
        return tl_fail(e, "%d class%s, expected at least %d", k, k == 1 ? "" : "es", Y ? 1 : 2);
    const double *ws[3] = {o->class_weight, o->pos_weight, o->neg_weight};
    for (int w = 0; w < 3; w++)
        for (int c = 0; ws[w] && c < k; c++)
            if (!(ws[w][c] >= 0) || !isfinite(ws[w][c]))
                return tl_fail(e, "class weight %g of class %d is not a finite number >= 0", ws[w][c], c);
    if (o->kind != TL_HEAD_LOGREG && o->kind != TL_HEAD_SVM)
        return tl_fail(e, "unknown linear head kind %d", o->kind);
    if (!(o->C > 0) || !isfinite(o->C))
        return tl_fail(e, "C must be positive and finite (got %g)", o->C);
    if (o->max_iter < 1)
        return tl_fail(e, "max_iter must be positive (got %d)", o->max_iter);
    if (isnan(o->tol))
        return tl_fail(e, "tol is not a number");
    for (int64_t i = 0; y && i < n; i++)
        if (y[i] < 0 || y[i] >= k)
            return tl_fail(e, "label %d of sample %lld out of range [0, %d)", y[i], (long long)i, k);
    return 0;
}

static int train(const float *X, const int *y, const unsigned char *Y, int64_t n, int d, int k,
                 const tl_linear_opts *o, tl_pool *pool, tl_log_fn log, void *log_user, tl_linear_model *out,
                 tl_err *e)
{
    tl_linear_opts def;
    if (!o) {
        tl_linear_opts_default(&def);
        o = &def;
    }
    memset(out, 0, sizeof *out);
    if (check_input(X, y, Y, n, d, k, o, e) < 0)
        return -1;
    double *sw = NULL;
    if (!Y && o->class_weight) {
        if (!(sw = tl_alloc_array((size_t)n, sizeof(double))))
            return tl_fail(e, "out of memory");
        for (int64_t i = 0; i < n; i++)
            sw[i] = o->class_weight[y[i]];
    }
    float *mean = tl_alloc_array((size_t)d * 2, sizeof(float));
    float *Xs = tl_alloc_array((size_t)n * (size_t)d, sizeof(float));
    double *W = tl_alloc_array((size_t)k * d + k, sizeof(double));
    float *Wo = tl_alloc_array((size_t)k * d, sizeof(float));
    float *bo = tl_alloc_array((size_t)k, sizeof(float));
    int rc = 0;
    if (!mean || !Xs || !W || !Wo || !bo) {
        rc = tl_fail(e, "out of memory for a linear head on %lld x %d features", (long long)n, d);
        goto fail;
    }
    float *std = mean + d;
    double *b = W + (size_t)k * d;
    if ((rc = tl_standardize_fit(X, n, d, mean, std, e)) < 0)
        goto fail;
    tl_standardize_apply(X, n, d, mean, std, Xs, pool);
    tl_linear_problem pb = {Xs, n, d, k, Y ? NULL : y, Y, sw, Y ? NULL : o->class_weight,
                            Y ? o->pos_weight : NULL, Y ? o->neg_weight : NULL};
    rc = o->kind == TL_HEAD_LOGREG ? tl_logreg_fit(&pb, o, pool, log, log_user, W, b, e)
                                   : tl_svm_fit(&pb, o, pool, log, log_user, W, b, e);
    if (rc < 0)
        goto fail;
    /* w.((x - mean)/std) + b = (w/std).x + (b - sum_j w_j mean_j/std_j) */
    for (int c = 0; c < k; c++) {
        const double *wc = W + (size_t)c * d;
        double shift = 0;
        for (int j = 0; j < d; j++) {
            double wr = wc[j] / std[j];
            Wo[(size_t)c * d + j] = (float)wr;
            shift += wr * mean[j];
        }
        bo[c] = (float)(b[c] - shift);
    }
    out->d = d;
    out->k = k;
    out->W = Wo;
    out->b = bo;
    out->kind = o->kind;
    out->multilabel = Y != NULL;
    Wo = bo = NULL;
fail:
    tl_free(sw);
    tl_free(mean);
    tl_free(Xs);
    tl_free(W);
    tl_free(Wo);
    tl_free(bo);
    return rc;
}

int tl_linear_train(const float *X, const int *y, int64_t n, int d, int k, const tl_linear_opts *o,
                    tl_pool *pool, tl_log_fn log, void *log_user, tl_linear_model *out, tl_err *e)
{
    return train(X, y, NULL, n, d, k, o, pool, log, log_user, out, e);
}

int tl_linear_train_multilabel(const float *X, const unsigned char *Y, int64_t n, int d, int k,
                               const tl_linear_opts *o, tl_pool *pool, tl_log_fn log, void *log_user,
                               tl_linear_model *out, tl_err *e)
{
    return train(X, NULL, Y, n, d, k, o, pool, log, log_user, out, e);
}

void tl_linear_scores(const tl_linear_model *m, const float *x, float *scores)
{
    int d = m->d;
    for (int c = 0; c < m->k; c++) {
        const float *w = m->W + (size_t)c * d;
        double s = m->b[c];
        for (int j = 0; j < d; j++)
            s += (double)w[j] * x[j];
        scores[c] = (float)s;
    }
}

int tl_linear_predict(const tl_linear_model *m, const float *x)
{
    int best = 0;
    double bs = -INFINITY;
    int d = m->d;
    for (int c = 0; c < m->k; c++) {
        const float *w = m->W + (size_t)c * d;
        double s = m->b[c];
        for (int j = 0; j < d; j++)
            s += (double)w[j] * x[j];
        if (s > bs) {
            bs = s;
            best = c;
        }
    }
    return best;
}

void tl_linear_model_free(tl_linear_model *m)
{
    if (!m)
        return;
    tl_free(m->W);
    tl_free(m->b);
    memset(m, 0, sizeof *m);
}
