#include "head_fit.h"
#include "bce.h"
#include "class_weights.h"
#include "pr_curve.h"

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
    if (s->info.nclasses < (s->info.multilabel ? 1 : 2)) {
        tl_fail(e, "%s: %d class%s; a classifier needs at least %d", name, s->info.nclasses,
                s->info.nclasses == 1 ? "" : "es", s->info.multilabel ? 1 : 2);
        goto fail;
    }
    return 0;
fail:
    tl_featset_free(s);
    return rc;
}

/* Multi-label validation sets: Y's columns moved to the training classes. */
static int match_multilabel(const char *path, const tl_featset *train, tl_featset *v, tl_err *e)
{
    int kt = train->info.nclasses, kv = v->info.nclasses;
    int *map = malloc(((size_t)kv + 1) * sizeof *map);
    unsigned char *Y = calloc((size_t)v->n * (size_t)kt + 1, 1);
    int rc = 0;
    if (!map || !Y)
        rc = tl_fail(e, "out of memory");
    for (int c = 0; c < kv && !rc; c++) {
        map[c] = -1;
        for (int t = 0; t < kt; t++)
            if (!strcmp(train->info.classes[t], v->info.classes[c]))
                map[c] = t;
        /* a class named in the header but never used is harmless */
        int used = 0;
        for (int64_t i = 0; i < v->n && !used; i++)
            used = v->Y[(size_t)i * kv + c];
        if (map[c] < 0 && used)
            rc = tl_fail(e, "%s: class '%s' is not in the training data", path, v->info.classes[c]);
    }
    for (int64_t i = 0; i < v->n && !rc; i++)
        for (int c = 0; c < kv; c++)
            if (v->Y[(size_t)i * kv + c] && map[c] >= 0)
                Y[(size_t)i * kt + map[c]] = 1;
    free(map);
    if (rc) {
        free(Y);
        tl_featset_free(v);
        return -1;
    }
    free(v->Y);
    v->Y = Y;
    return 0;
}

int tl_head_val_data(const char *path, const tl_featset *train, int force_origin, tl_featset *v, tl_err *e)
{
    if (tl_featset_load(path, v, e))
        return -1;
    tl_feat_origin have = {v->info.model, v->info.layer, v->info.input},
                   want = {train->info.model, train->info.layer, train->info.input};
    if (!force_origin && tl_feat_origin_check(&have, &want, "the training data holds", e)) {
        tl_fail_prefix(e, "%s", path);
        tl_featset_free(v);
        return -1;
    }
    if (v->info.dim != train->info.dim) {
        tl_fail(e, "%s: %d values per vector, training data has %d", path, v->info.dim, train->info.dim);
        tl_featset_free(v);
        return -1;
    }
    if (v->info.multilabel != train->info.multilabel) {
        tl_fail(e, "%s: %s features, the training data's are %s", path,
                v->info.multilabel ? "multi-label" : "single-label",
                train->info.multilabel ? "multi-label" : "single-label");
        tl_featset_free(v);
        return -1;
    }
    if (v->info.multilabel)
        return match_multilabel(path, train, v, e);
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

/* Every labelled vector's outputs as the head gives them (n x k; raw:
 * the linear scores, before any sigmoid). */
static float *outputs(const tl_linear_model *m, const tl_featset *s, int raw, unsigned char **Yl, int64_t *nl,
                      tl_err *e)
{
    tl_head h = {.lin = *m};
    int k = m->k;
    float *out = tl_xalloc((size_t)s->n * (size_t)k + 1, sizeof(float), e);
    unsigned char *Y = calloc((size_t)s->n * (size_t)k + 1, 1);
    if (!out || !Y) {
        tl_free(out);
        free(Y);
        tl_fail(e, "out of memory");
        return NULL;
    }
    int64_t j = 0;
    for (int64_t i = 0; i < s->n; i++) {
        if (s->y[i] < 0)
            continue;
        const float *x = s->X + (size_t)i * (size_t)s->info.dim;
        if (raw)
            tl_linear_scores(m, x, out + (size_t)j * k);
        else
            tl_head_outputs(&h, x, out + (size_t)j * k);
        memcpy(Y + (size_t)j * k, s->Y + (size_t)i * k, (size_t)k);
        j++;
    }
    *Yl = Y;
    *nl = j;
    return out;
}

static int score_multilabel(const tl_linear_model *m, const tl_featset *s, tl_head_score *res, tl_err *e)
{
    int k = m->k;
    unsigned char *Y, *Y2 = NULL;
    int64_t n;
    /* AP from the outputs tl-eval would score; the loss from the logits */
    float *out = outputs(m, s, 0, &Y, &n, e), *z = out ? outputs(m, s, 1, &Y2, &n, e) : NULL;
    free(Y2);
    if (!z) {
        if (out)
            free(Y);
        tl_free(out);
        return -1;
    }
    double apsum = 0, loss = 0;
    int nap = 0, rc = 0;
    for (int c = 0; c < k && !rc; c++) {
        tl_pr_summary ps;
        rc = tl_pr_summarise(out + c, k, Y + c, k, n, &ps, e);
        if (!rc && ps.npos) {
            apsum += ps.ap;
            nap++;
        }
    }
    float *t = tl_xalloc((size_t)k, sizeof(float), e);
    if (!t)
        rc = -1;
    for (int64_t i = 0; i < n && !rc; i++) {
        int exact = 1;
        for (int c = 0; c < k; c++) {
            t[c] = Y[(size_t)i * k + c];
            exact &= (z[(size_t)i * k + c] >= 0) == (t[c] > 0);
        }
        loss += tl_sigmoid_bce(k, z + (size_t)i * k, t, NULL, NULL, NULL);
        res->correct += exact;
    }
    tl_free(t);
    tl_free(z);
    res->n = n;
    res->accuracy = nap ? apsum / nap : NAN;
    res->loss = m->kind == TL_HEAD_SVM || !n ? NAN : loss / (double)n;
    tl_free(out);
    free(Y);
    return rc;
}

int tl_head_score_set(const tl_linear_model *m, const tl_featset *s, tl_head_score *out, tl_err *e)
{
    memset(out, 0, sizeof *out);
    if (m->multilabel)
        return score_multilabel(m, s, out, e);
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

int tl_head_thresholds(const tl_linear_model *m, const tl_featset *s, float *thr, int *chosen, tl_err *e)
{
    int k = m->k;
    unsigned char *Y;
    int64_t n;
    *chosen = 0;
    for (int c = 0; c < k; c++)
        thr[c] = tl_threshold_default(m->kind == TL_HEAD_LOGREG);
    float *out = outputs(m, s, 0, &Y, &n, e);
    if (!out)
        return -1;
    int rc = 0;
    for (int c = 0; c < k && !rc; c++) {
        tl_pr_summary ps;
        rc = tl_pr_summarise(out + c, k, Y + c, k, n, &ps, e);
        if (!rc && ps.npos) {
            thr[c] = (float)ps.threshold;
            ++*chosen;
        }
    }
    tl_free(out);
    free(Y);
    return rc;
}

int tl_head_class_weights(const char *spec, const tl_featset *train, tl_linear_opts *o, double *w, double *pos,
                          double *neg, tl_err *e)
{
    int k = train->info.nclasses;
    if (!spec)
        return 0;
    if (!strcmp(spec, "auto")) {
        if (train->info.multilabel) {
            tl_class_weights_balanced_multi(train->Y, NULL, train->n, k, pos, neg);
            o->pos_weight = pos;
            o->neg_weight = neg;
        } else {
            tl_class_weights_balanced(train->y, train->n, k, w);
            o->class_weight = w;
        }
        return 0;
    }
    if (tl_class_weights_read(spec, train->info.classes, k, train->info.multilabel ? pos : w, e))
        return tl_fail_prefix(e, "--class-weights");
    if (train->info.multilabel)
        o->pos_weight = pos;
    else
        o->class_weight = w;
    return 0;
}

int tl_head_score_outputs(const tl_head *h, const tl_featset *s, tl_head_score *out, tl_err *e)
{
    memset(out, 0, sizeof *out);
    int k = h->lin.k;
    float *sc = tl_xalloc((size_t)k, sizeof(float), e);
    if (!sc)
        return -1;
    for (int64_t i = 0; i < s->n; i++) {
        if (s->y[i] < 0)
            continue;
        out->n++;
        tl_head_outputs(h, s->X + (size_t)i * (size_t)s->info.dim, sc);
        int best = 0;
        for (int c = 1; c < k; c++)
            if (sc[c] > sc[best])
                best = c;
        out->correct += best == s->y[i];
    }
    tl_free(sc);
    out->accuracy = out->n ? (double)out->correct / (double)out->n : NAN;
    out->loss = NAN;
    return 0;
}

static int save_trained(const tl_linear_model *m, const tl_proto *pr, const tl_featset *train,
                        const tl_head_provenance *p, const char *out, tl_err *e);

int tl_head_save_trained(const tl_linear_model *m, const tl_featset *train, const tl_head_provenance *p,
                         const char *out, tl_err *e)
{
    return save_trained(m, NULL, train, p, out, e);
}

int tl_head_save_trained_proto(const tl_proto *pr, const tl_featset *train, const tl_head_provenance *p,
                               const char *out, tl_err *e)
{
    return save_trained(NULL, pr, train, p, out, e);
}

static int save_trained(const tl_linear_model *m, const tl_proto *pr, const tl_featset *train,
                        const tl_head_provenance *p, const char *out, tl_err *e)
{
    char c_str[32], n_str[32], acc_str[32], when[32], val_str[32] = "";
    snprintf(c_str, sizeof c_str, "%.9g", p->C);
    snprintf(n_str, sizeof n_str, "%lld", (long long)train->n);
    snprintf(acc_str, sizeof acc_str, "%.6f", p->train_accuracy);
    if (!isnan(p->val_accuracy))
        snprintf(val_str, sizeof val_str, "%.6f", p->val_accuracy);
    time_t now = time(NULL);
    struct tm tmv;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tmv));
    tl_strbuf th = {0};
    if (m && p->thresholds && tl_thresholds_json(p->thresholds, m->k, &th)) {
        tl_strbuf_free(&th);
        return tl_fail(e, "out of memory");
    }
    const char *meta[24] = {"tl.train_n", n_str, "tl.train_accuracy", acc_str, "tl.trained_at", when,
                            "tl.train_data", p->train_path};
    int n = 8;
    if (m) {
        meta[n++] = "tl.C";
        meta[n++] = c_str;
    }
    if (val_str[0]) {
        meta[n++] = "tl.val_accuracy";
        meta[n++] = val_str;
    }
    if (p->class_weights) {
        meta[n++] = "tl.class_weights";
        meta[n++] = p->class_weights;
    }
    if (p->pseudo_labels) {
        meta[n++] = "tl.pseudo_labels";
        meta[n++] = p->pseudo_labels;
    }
    if (m && p->thresholds) {
        meta[n++] = "tl.thresholds";
        meta[n++] = th.s;
        meta[n++] = "tl.thresholds_from";
        meta[n++] = p->thresholds_from ? p->thresholds_from : "default";
    }
    meta[n] = NULL;
    int rc = m ? tl_head_save(m, &train->info, meta, out, e) : tl_head_save_proto(pr, &train->info, meta, out, e);
    tl_strbuf_free(&th);
    return rc;
}
