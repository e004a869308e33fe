#include "head.h"
#include "bce.h"
#include "io/checkpoint.h"
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tl_head_save(const tl_linear_model *m, const tl_feat_info *info, const char *const *extra_meta,
                 const char *path, tl_err *e)
{
    tl_st_writer *w = tl_st_writer_new();
    if (!w)
        return tl_fail(e, "out of memory");
    tl_strbuf cls = {0};
    int bad = tl_strbuf_add(&cls, "[", 1);
    for (int i = 0; i < info->nclasses; i++) {
        bad |= i ? tl_strbuf_add(&cls, ",", 1) : 0;
        bad |= tl_strbuf_json_string(&cls, info->classes[i]);
    }
    bad |= tl_strbuf_add(&cls, "]", 1);
    char k[32], d[32];
    snprintf(k, sizeof k, "%d", m->k);
    snprintf(d, sizeof d, "%d", m->d);
    int64_t ws[2] = {m->k, m->d}, bs[1] = {m->k};
    int rc = -1;
    if (bad) {
        tl_fail(e, "out of memory");
        goto out;
    }
    if (tl_st_add(w, "weight", TL_F32, 2, ws, m->W, e) || tl_st_add(w, "bias", TL_F32, 1, bs, m->b, e) ||
        tl_st_set_meta(w, "tl.format", "1", e) || tl_st_set_meta(w, "tl.arch", "linear", e) ||
        tl_st_set_meta(w, "tl.head", m->kind == TL_HEAD_SVM ? "svm" : "logreg", e) ||
        tl_st_set_meta(w, "tl.num_classes", k, e) || tl_st_set_meta(w, "tl.classes", cls.s, e) ||
        tl_st_set_meta(w, "tl.feature_dim", d, e) ||
        (m->multilabel && tl_st_set_meta(w, "tl.multilabel", "true", e)))
        goto out;
    if (info->model && tl_st_set_meta(w, "tl.feature_model", info->model, e))
        goto out;
    if (info->layer && tl_st_set_meta(w, "tl.feature_layer", info->layer, e))
        goto out;
    for (int i = 0; extra_meta && extra_meta[i]; i += 2)
        if (tl_st_set_meta(w, extra_meta[i], extra_meta[i + 1], e))
            goto out;
    rc = tl_st_write(w, path, e);
out:
    tl_strbuf_free(&cls);
    tl_st_writer_free(w);
    return rc;
}

int tl_head_load(const char *name, tl_head *h, tl_err *e)
{
    memset(h, 0, sizeof *h);
    char path[4096];
    if (tl_model_locate(name, path, sizeof path, e))
        return -1;
    tl_st_file f;
    if (tl_st_open(path, &f, e))
        return -1;
    int rc = -1;
    const char *arch = tl_st_meta(&f, "tl.arch"), *kind = tl_st_meta(&f, "tl.head");
    const tl_st_tensor *w = tl_st_find(&f, "weight"), *b = tl_st_find(&f, "bias");
    if (!arch || strcmp(arch, "linear")) {
        tl_fail(e, "%s: not a classifier head (tl.arch is %s)", path, arch ? arch : "missing");
        goto out;
    }
    if (!w || !b || w->ndim != 2 || b->ndim != 1 || b->shape[0] != w->shape[0] || w->shape[0] < 1 ||
        w->shape[1] < 1 || w->shape[0] > (1 << 24) || w->shape[1] > TL_FEAT_MAX_DIM) {
        tl_fail(e, "%s: a head needs tensors weight [k, d] and bias [k]", path);
        goto out;
    }
    h->lin.k = (int)w->shape[0];
    h->lin.d = (int)w->shape[1];
    h->lin.kind = kind && !strcmp(kind, "svm") ? TL_HEAD_SVM : TL_HEAD_LOGREG;
    h->lin.W = tl_xalloc((size_t)w->numel, sizeof(float), e);
    h->lin.b = h->lin.W ? tl_xalloc((size_t)b->numel, sizeof(float), e) : NULL;
    if (!h->lin.b || tl_st_to_f32(w, h->lin.W, e) || tl_st_to_f32(b, h->lin.b, e))
        goto out;
    const char *cls = tl_st_meta(&f, "tl.classes");
    if (cls && tl_json_parse_strings(cls, &h->classes, &h->nclasses, e)) {
        tl_fail_prefix(e, "%s: tl.classes", path);
        goto out;
    }
    if (h->nclasses != h->lin.k) {
        tl_fail(e, "%s: %d class names for %d outputs", path, h->nclasses, h->lin.k);
        goto out;
    }
    const char *ml = tl_st_meta(&f, "tl.multilabel"), *th = tl_st_meta(&f, "tl.thresholds");
    h->lin.multilabel = ml && !strcmp(ml, "true");
    if (h->lin.multilabel) {
        if (!(h->thresholds = tl_xalloc((size_t)h->lin.k, sizeof(float), e)))
            goto out;
        for (int c = 0; c < h->lin.k; c++)
            h->thresholds[c] = tl_threshold_default(h->lin.kind == TL_HEAD_LOGREG);
        if (th && tl_thresholds_parse(th, h->lin.k, h->thresholds, e)) {
            tl_fail_prefix(e, "%s", path);
            goto out;
        }
    }
    const char *fm = tl_st_meta(&f, "tl.feature_model"), *fl = tl_st_meta(&f, "tl.feature_layer");
    h->feature_model = fm && *fm ? tl_strdup(fm) : NULL;
    h->feature_layer = fl && *fl ? tl_strdup(fl) : NULL;
    rc = 0;
out:
    tl_st_close(&f);
    if (rc)
        tl_head_free(h);
    return rc;
}

void tl_head_free(tl_head *h)
{
    tl_linear_model_free(&h->lin);
    tl_strings_free(h->classes, h->nclasses);
    tl_free(h->thresholds);
    free(h->feature_model);
    free(h->feature_layer);
    memset(h, 0, sizeof *h);
}

void tl_head_outputs(const tl_head *h, const float *x, float *out)
{
    tl_linear_scores(&h->lin, x, out);
    if (h->lin.kind == TL_HEAD_LOGREG && h->lin.multilabel)
        tl_sigmoid_probs(out, out, h->lin.k);
    else if (h->lin.kind == TL_HEAD_LOGREG)
        tl_softmax(out, out, h->lin.k);
}

float tl_threshold_default(int probabilities) { return probabilities ? 0.5f : 0.0f; }

int tl_thresholds_json(const float *t, int k, tl_strbuf *b)
{
    int bad = tl_strbuf_add(b, "[", 1);
    for (int c = 0; c < k; c++)
        bad |= tl_strbuf_printf(b, "%s%.9g", c ? "," : "", (double)t[c]);
    return bad | tl_strbuf_add(b, "]", 1);
}

int tl_thresholds_parse(const char *text, int k, float *t, tl_err *e)
{
    if (tl_json_parse_floats(text, t, k, e))
        return tl_fail_prefix(e, "tl.thresholds (%d numbers expected)", k);
    for (int c = 0; c < k; c++)
        if (!isfinite(t[c]))
            return tl_fail(e, "tl.thresholds: value %d is not finite", c + 1);
    return 0;
}
