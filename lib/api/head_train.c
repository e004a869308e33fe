/* tl_head_train_file (tl.h): what `tl-finetune FEATURES -o HEAD` does with
 * default settings, for programs. */
#include "tl.h"
#include "train/head_fit.h"

#include <math.h>
#include <stdlib.h>

TL_API void tl_head_opts_default(tl_head_opts *o)
{
    o->kind = TL_HEAD_LOGREG;
    o->C = 1.0;
    o->max_iter = 0;
    o->threads = 0;
}

TL_API int tl_head_train_file(const char *features_path, const tl_head_opts *o, const char *out_path,
                              double *train_accuracy, tl_err *e)
{
    tl_head_opts def;
    if (!o) {
        tl_head_opts_default(&def);
        o = &def;
    }
    if (o->kind != TL_HEAD_LOGREG && o->kind != TL_HEAD_SVM)
        return tl_fail_arg(e, "head kind %d is neither TL_HEAD_LOGREG nor TL_HEAD_SVM", o->kind);
    if (!(o->C > 0) || o->C > 1e12)
        return tl_fail_arg(e, "C = %g: a positive number is needed", o->C);
    tl_linear_opts lo;
    tl_linear_opts_default(&lo);
    lo.kind = o->kind;
    lo.C = o->C;
    if (o->max_iter > 0)
        lo.max_iter = o->max_iter;
    tl_featset s;
    if (tl_head_train_data(features_path, &s, e))
        return -1;
    int ml = s.info.multilabel, k = s.info.nclasses, rc = -1;
    tl_pool *pool = tl_pool_new(o->threads > 0 ? o->threads : tl_cpu_count(), e);
    float *thr = ml ? calloc((size_t)k + 1, sizeof *thr) : NULL;
    tl_linear_model m = {0};
    int trained = 0;
    if (!pool || (ml && !thr)) {
        if (pool)
            tl_fail(e, "out of memory");
        goto out;
    }
    if (ml ? tl_linear_train_multilabel(s.X, s.Y, s.n, s.info.dim, k, &lo, pool, NULL, NULL, &m, e)
           : tl_linear_train(s.X, s.y, s.n, s.info.dim, k, &lo, pool, NULL, NULL, &m, e))
        goto out;
    trained = 1;
    tl_head_score tr;
    if (tl_head_score_set(&m, &s, &tr, e))
        goto out;
    for (int c = 0; ml && c < k; c++)
        thr[c] = tl_threshold_default(lo.kind == TL_HEAD_LOGREG);
    tl_head_provenance pv = {features_path, lo.C, tr.accuracy, NAN, NULL, thr, "default", NULL};
    if (tl_head_save_trained(&m, &s, &pv, out_path, e))
        goto out;
    if (train_accuracy)
        *train_accuracy = tr.accuracy;
    rc = 0;
out:
    if (trained)
        tl_linear_model_free(&m);
    free(thr);
    tl_pool_free(pool);
    tl_featset_free(&s);
    return rc;
}
