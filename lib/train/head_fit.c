#include "head_fit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int tl_head_train_data(const char *path, tl_featset *s, tl_err *e)
{
    if (tl_featset_load(path, s, e))
        return -1;
    const char *name = strcmp(path, "-") ? path : "standard input";
    int rc = -1;
    if (s->n == 0) {
        tl_fail(e, "%s: no feature vectors", name);
        goto fail;
    }
    for (int64_t i = 0; i < s->n; i++)
        if (s->y[i] < 0) {
            tl_fail(e, "%s: %s has no label; training needs labelled data (class folders or a manifest)", name,
                    s->paths[i]);
            goto fail;
        }
    if (s->info.nclasses < 2) {
        tl_fail(e, "%s: %d class%s; a classifier needs at least 2", name, s->info.nclasses,
                s->info.nclasses == 1 ? "" : "es");
        goto fail;
    }
    return 0;
fail:
    tl_featset_free(s);
    return rc;
}

int tl_head_val_data(const char *path, const tl_featset *train, tl_featset *v, tl_err *e)
{
    if (tl_featset_load(path, v, e))
        return -1;
    if (v->info.dim != train->info.dim) {
        tl_fail(e, "%s: %d values per vector, training data has %d", path, v->info.dim, train->info.dim);
        tl_featset_free(v);
        return -1;
    }
    for (int64_t i = 0; i < v->n; i++) {
        int y = -1;
        for (int c = 0; v->y[i] >= 0 && c < train->info.nclasses; c++)
            if (!strcmp(train->info.classes[c], v->info.classes[v->y[i]]))
                y = c;
        if (v->y[i] >= 0 && y < 0) {
            tl_fail(e, "%s: class '%s' is not in the training data", path, v->info.classes[v->y[i]]);
            tl_featset_free(v);
            return -1;
        }
        v->y[i] = y;
    }
    return 0;
}

int tl_head_score_set(const tl_linear_model *m, const tl_featset *s, tl_head_score *out, tl_err *e)
{
    memset(out, 0, sizeof *out);
    int k = m->k;
    float *sc = tl_xalloc((size_t)k, sizeof(float), e);
    if (!sc)
        return -1;
    double loss = 0;
    for (int64_t i = 0; i < s->n; i++) {
        if (s->y[i] < 0)
            continue;
        out->n++;
        tl_linear_scores(m, s->X + (size_t)i * (size_t)s->info.dim, sc);
        int best = 0;
        float mx = sc[0];
        for (int c = 1; c < k; c++)
            if (sc[c] > mx)
                mx = sc[best = c];
        out->correct += best == s->y[i];
        double z = 0;
        for (int c = 0; c < k; c++)
            z += exp((double)sc[c] - (double)mx);
        loss += log(z) + (double)mx - (double)sc[s->y[i]];
    }
    free(sc);
    out->accuracy = out->n ? (double)out->correct / (double)out->n : NAN;
    out->loss = m->kind == TL_HEAD_SVM || !out->n ? NAN : loss / (double)out->n;
    return 0;
}

int tl_head_save_trained(const tl_linear_model *m, const tl_featset *train, const char *train_path, double C,
                         double train_accuracy, double val_accuracy, const char *out, tl_err *e)
{
    char c_str[32], n_str[32], acc_str[32], when[32], val_str[32] = "";
    snprintf(c_str, sizeof c_str, "%.9g", C);
    snprintf(n_str, sizeof n_str, "%lld", (long long)train->n);
    snprintf(acc_str, sizeof acc_str, "%.6f", train_accuracy);
    if (!isnan(val_accuracy))
        snprintf(val_str, sizeof val_str, "%.6f", val_accuracy);
    time_t now = time(NULL);
    struct tm tmv;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tmv));
    const char *meta[] = {"tl.C", c_str, "tl.train_n", n_str, "tl.train_accuracy", acc_str, "tl.trained_at", when,
                          "tl.train_data", train_path, val_str[0] ? "tl.val_accuracy" : NULL, val_str, NULL};
    return tl_head_save(m, &train->info, meta, out, e);
}
