#include "head.h"
#include "bce.h"
#include "neighbours.h"
#include "io/checkpoint.h"
#include "format_version.h"
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The provenance every head carries, whatever its kind: where its
 * features came from (checked against the features it is given later,
 * io/feature_origin.h) and the caller's keys. */
static int set_origin(tl_st_writer *w, const tl_feat_info *info, const char *const *extra_meta, tl_err *e)
{
    if ((info->model && tl_st_set_meta(w, "tl.feature_model", info->model, e)) ||
        (info->layer && tl_st_set_meta(w, "tl.feature_layer", info->layer, e)) ||
        (info->input && tl_st_set_meta(w, "tl.feature_input", info->input, e)))
        return -1;
    for (int i = 0; extra_meta && extra_meta[i]; i += 2)
        if (tl_st_set_meta(w, extra_meta[i], extra_meta[i + 1], e))
            return -1;
    return 0;
}

tl_feat_origin tl_head_origin(const tl_head *h)
{
    return (tl_feat_origin){h->feature_model, h->feature_layer, h->feature_input};
}

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
        tl_st_set_meta(w, "tl.format", TL_STR(TL_FORMAT_CHECKPOINT), e) || tl_st_set_meta(w, "tl.arch", "linear", e) ||
        tl_st_set_meta(w, "tl.head", m->kind == TL_HEAD_SVM ? "svm" : "logreg", e) ||
        tl_st_set_meta(w, "tl.num_classes", k, e) || tl_st_set_meta(w, "tl.classes", cls.s, e) ||
        tl_st_set_meta(w, "tl.feature_dim", d, e) ||
        (m->multilabel && tl_st_set_meta(w, "tl.multilabel", "true", e)))
        goto out;
    if (set_origin(w, info, extra_meta, e))
        goto out;
    rc = tl_st_write(w, path, e);
out:
    tl_strbuf_free(&cls);
    tl_st_writer_free(w);
    return rc;
}

static int classes_json(const tl_feat_info *info, tl_strbuf *cls)
{
    int bad = tl_strbuf_add(cls, "[", 1);
    for (int i = 0; i < info->nclasses; i++) {
        bad |= i ? tl_strbuf_add(cls, ",", 1) : 0;
        bad |= tl_strbuf_json_string(cls, info->classes[i]);
    }
    return bad | tl_strbuf_add(cls, "]", 1);
}

int tl_head_save_proto(const tl_proto *p, const tl_feat_info *info, const char *const *extra_meta, const char *path,
                       tl_err *e)
{
    tl_st_writer *w = tl_st_writer_new();
    tl_strbuf cls = {0};
    float *zeros = tl_xalloc((size_t)p->k, sizeof(float), e);
    int64_t *labels = malloc(((size_t)p->n + 1) * sizeof *labels);
    int rc = -1;
    if (!w || !zeros || !labels || classes_json(info, &cls)) {
        tl_fail(e, "out of memory");
        goto out;
    }
    memset(zeros, 0, (size_t)p->k * sizeof(float));
    for (int64_t i = 0; i < p->n; i++)
        labels[i] = p->labels[i];
    char k[32], d[32], nb[32];
    snprintf(k, sizeof k, "%d", p->k);
    snprintf(d, sizeof d, "%d", p->d);
    snprintf(nb, sizeof nb, "%d", p->neighbours);
    int64_t vs[2] = {p->n, p->d}, ks[1] = {p->k}, ls[1] = {p->n};
    int knn = p->kind == TL_HEAD_KNN;
    if ((knn ? tl_st_add(w, "vectors", TL_F32, 2, vs, p->V, e) || tl_st_add(w, "labels", TL_I64, 1, ls, labels, e)
             : tl_st_add(w, "weight", TL_F32, 2, vs, p->V, e) || tl_st_add(w, "bias", TL_F32, 1, ks, zeros, e)) ||
        tl_st_set_meta(w, "tl.format", TL_STR(TL_FORMAT_CHECKPOINT), e) || tl_st_set_meta(w, "tl.arch", "linear", e) ||
        tl_st_set_meta(w, "tl.head", knn ? "knn" : "ncm", e) ||
        tl_st_set_meta(w, "tl.metric", p->metric == TL_METRIC_EUCLIDEAN ? "euclidean" : "cosine", e) ||
        (knn && tl_st_set_meta(w, "tl.neighbours", nb, e)) || tl_st_set_meta(w, "tl.num_classes", k, e) ||
        tl_st_set_meta(w, "tl.classes", cls.s, e) || tl_st_set_meta(w, "tl.feature_dim", d, e))
        goto out;
    if (set_origin(w, info, extra_meta, e))
        goto out;
    rc = tl_st_write(w, path, e);
out:
    tl_strbuf_free(&cls);
    tl_st_writer_free(w);
    tl_free(zeros);
    free(labels);
    return rc;
}

/* tl.head knn or ncm: the stored vectors. */
static int load_proto(const tl_st_file *f, const char *path, const char *kind, tl_head *h, tl_err *e)
{
    int knn = !strcmp(kind, "knn");
    const char *metric = tl_st_meta(f, "tl.metric"), *nb = tl_st_meta(f, "tl.neighbours");
    const tl_st_tensor *v = tl_st_find(f, knn ? "vectors" : "weight"), *l = knn ? tl_st_find(f, "labels") : NULL;
    const char *cls = tl_st_meta(f, "tl.classes");
    if (!v || v->ndim != 2 || v->shape[0] < 1 || v->shape[1] < 1 || v->shape[1] > TL_FEAT_MAX_DIM ||
        v->shape[0] > ((int64_t)1 << 31) ||
        (knn && (!l || l->ndim != 1 || l->shape[0] != v->shape[0] || l->dtype != TL_I64)))
        return tl_fail(e, "%s: a %s head needs tensors %s", path, kind,
                       knn ? "vectors [n, d] and labels I64 [n]" : "weight [k, d]");
    if (metric && strcmp(metric, "cosine") && strcmp(metric, "euclidean"))
        return tl_fail(e, "%s: tl.metric '%s' is not cosine or euclidean", path, metric);
    if (cls && tl_json_parse_strings(cls, &h->classes, &h->nclasses, e))
        return tl_fail_prefix(e, "%s: tl.classes", path);
    int k = h->nclasses;
    if (!knn && k != v->shape[0])
        return tl_fail(e, "%s: %d class names for %lld class means", path, k, (long long)v->shape[0]);
    char *end = NULL;
    long neighbours = knn && nb ? strtol(nb, &end, 10) : 0;
    if (knn && (!nb || *end || neighbours < 1 || neighbours > v->shape[0]))
        return tl_fail(e, "%s: tl.neighbours must be 1 to %lld", path, (long long)v->shape[0]);
    int64_t n = v->shape[0];
    float *V = tl_xalloc((size_t)v->numel, sizeof(float), e);
    int *labels = malloc(((size_t)n + 1) * sizeof *labels);
    int rc = !V || !labels || tl_st_to_f32(v, V, e) ? -1 : 0;
    for (int64_t i = 0; !rc && i < n; i++) {
        int64_t li = i;
        if (knn)
            memcpy(&li, (const unsigned char *)l->data + 8 * i, 8); /* little-endian I64, maybe unaligned */
        labels[i] = (int)li;
        if (li < 0 || li >= k)
            rc = tl_fail(e, "%s: label %lld of stored vector %lld is not a class index 0..%d", path, (long long)li,
                         (long long)i, k - 1);
    }
    if (rc) {
        tl_free(V);
        free(labels);
        return -1;
    }
    h->lin.kind = knn ? TL_HEAD_KNN : TL_HEAD_NCM;
    h->lin.d = (int)v->shape[1];
    h->lin.k = k;
    return tl_proto_init(&h->proto, h->lin.kind, metric && !strcmp(metric, "euclidean"), (int)neighbours,
                         h->lin.d, k, n, V, labels, e);
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
    if (tl_checkpoint_check_format(&f, path, e))
        goto out;
    const char *arch = tl_st_meta(&f, "tl.arch"), *kind = tl_st_meta(&f, "tl.head");
    const tl_st_tensor *w = tl_st_find(&f, "weight"), *b = tl_st_find(&f, "bias");
    if (!arch || strcmp(arch, "linear")) {
        tl_fail(e, "%s: not a classifier head (tl.arch is %s)", path, arch ? arch : "missing");
        goto out;
    }
    if (kind && (!strcmp(kind, "knn") || !strcmp(kind, "ncm"))) {
        if (load_proto(&f, path, kind, h, e))
            goto out;
        goto extras;
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
    if (!h->lin.b || tl_st_load_f32(w, h->lin.W, e) || tl_st_load_f32(b, h->lin.b, e))
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
extras:;
    const char *fm = tl_st_meta(&f, "tl.feature_model"), *fl = tl_st_meta(&f, "tl.feature_layer");
    h->feature_model = fm && *fm ? tl_strdup(fm) : NULL;
    h->feature_layer = fl && *fl ? tl_strdup(fl) : NULL;
    const char *fi = tl_st_meta(&f, "tl.feature_input");
    h->feature_input = fi && *fi ? tl_strdup(fi) : NULL;
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
    tl_proto_free(&h->proto);
    tl_strings_free(h->classes, h->nclasses);
    tl_free(h->thresholds);
    free(h->feature_model);
    free(h->feature_layer);
    free(h->feature_input);
    memset(h, 0, sizeof *h);
}

void tl_head_outputs(const tl_head *h, const float *x, float *out)
{
    if (h->lin.kind == TL_HEAD_NCM || h->lin.kind == TL_HEAD_KNN) {
        tl_proto_scores(&h->proto, x, out);
        return;
    }
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
