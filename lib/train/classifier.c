#include "classifier.h"
#include "bce.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tl_classifier_load(tl_classifier *c, const char *model, tl_err *e)
{
    memset(c, 0, sizeof *c);
    char path[4096];
    if (tl_model_locate(model, path, sizeof path, e))
        return -1;
    tl_st_file f;
    if (tl_st_open(path, &f, e))
        return -1;
    const char *arch = tl_st_meta(&f, "tl.arch");
    int is_head = arch && !strcmp(arch, "linear");
    tl_st_close(&f);
    if (is_head) {
        if (tl_head_load(path, &c->head, e))
            return -1;
        c->has_head = 1;
        c->classes = c->head.classes;
        c->nclasses = c->head.nclasses;
        c->probabilities = c->head.lin.kind == TL_HEAD_LOGREG || c->head.lin.kind == TL_HEAD_KNN;
        c->multilabel = c->head.lin.multilabel;
    } else {
        if (tl_net_load(path, &c->net, e))
            return -1;
        c->has_net = 1;
        if (c->net.model->logits_node < 0) {
            tl_classifier_free(c);
            return tl_fail(e, "%s: a backbone without classifier; train a head on its features first", path);
        }
        c->classes = c->net.classes;
        c->nclasses = c->net.model->num_classes;
        c->probabilities = 1;
        const char *ml = tl_net_meta(&c->net, "tl.multilabel");
        c->multilabel = ml && !strcmp(ml, "true");
    }
    c->tmp = tl_xalloc((size_t)c->nclasses + 1, sizeof(float), e);
    c->thresholds = c->tmp && c->multilabel ? tl_xalloc((size_t)c->nclasses + 1, sizeof(float), e) : NULL;
    if (!c->tmp || (c->multilabel && !c->thresholds)) {
        tl_classifier_free(c);
        return -1;
    }
    for (int k = 0; c->multilabel && k < c->nclasses; k++)
        c->thresholds[k] = c->has_head ? c->head.thresholds[k] : tl_threshold_default(1);
    const char *th = c->has_net && c->multilabel ? tl_net_meta(&c->net, "tl.thresholds") : NULL;
    if (th && tl_thresholds_parse(th, c->nclasses, c->thresholds, e)) {
        tl_fail_prefix(e, "%s", path);
        tl_classifier_free(c);
        return -1;
    }
    return 0;
}

void tl_classifier_free(tl_classifier *c)
{
    tl_extractor_free(c->x);
    if (c->has_net)
        tl_net_free(&c->net);
    if (c->has_head)
        tl_head_free(&c->head);
    tl_free(c->tmp);
    tl_free(c->thresholds);
    memset(c, 0, sizeof *c);
}

void tl_classifier_on_features(const tl_classifier *c, const float *v, float *out) { tl_head_outputs(&c->head, v, out); }

/* The backbone at the geometry its features were extracted with. */
static int load_at(const char *path, const tl_preproc *g, tl_net *net, tl_err *e)
{
    if (tl_net_load_at(path, g ? g->input_w : 0, g ? g->input_h : 0, g ? g->resize_mode : -1, net, e))
        return -1;
    if (g)
        net->pp.resize_size = g->resize_size;
    return 0;
}

int tl_classifier_load_backbone(tl_classifier *c, const char *head_path, tl_err *e)
{
    if (c->has_net)
        return 0;
    const char *fm = c->head.feature_model;
    if (!fm)
        return tl_fail(e, "%s: the head does not say which model its features came from; extract features "
                          "with tl-extract and give them instead of images", head_path);
    tl_preproc geo, *g = NULL;
    if (c->head.feature_input) {
        if (tl_preproc_geometry_parse(c->head.feature_input, &geo))
            return tl_fail(e, "%s: tl.feature_input '%.40s' is not 'WxH MODE RESIZE'", head_path,
                           c->head.feature_input);
        g = &geo;
    }
    tl_err first;
    if (load_at(fm, g, &c->net, &first) == 0) {
        c->has_net = 1;
        return 0;
    }
    /* The head may have moved with its backbone: look beside it, then in
     * $TL_MODEL_PATH by base name. */
    char *hcopy = tl_strdup(head_path), *fcopy = tl_strdup(fm);
    if (!hcopy || !fcopy) {
        free(hcopy);
        free(fcopy);
        return tl_fail(e, "out of memory");
    }
    char beside[4096];
    const char *base = basename(fcopy);
    snprintf(beside, sizeof beside, "%s/%s", dirname(hcopy), base);
    int rc = load_at(beside, g, &c->net, e);
    if (rc)
        rc = load_at(base, g, &c->net, e);
    free(hcopy);
    free(fcopy);
    if (rc)
        return tl_fail(e, "backbone %s of the head: %s", fm, first.msg);
    c->has_net = 1;
    return 0;
}

int tl_classifier_prepare_images(tl_classifier *c, const char *model_path, int nthreads, const tl_extract_opts *o,
                                 tl_err *e)
{
    const char *layer = "logits";
    if (c->has_head) {
        if (tl_classifier_load_backbone(c, model_path, e))
            return -1;
        layer = c->head.feature_layer;
    }
    c->x = tl_extractor_new(&c->net, layer, nthreads, o, e);
    if (!c->x) {
        e->kind = TL_ERR_FAIL; /* the layer comes from the head's file, not the caller */
        return -1;
    }
    if (c->has_head && tl_extractor_dim(c->x) != c->head.lin.d)
        return tl_fail(e, "the backbone gives %d values at layer %s, the head takes %d", tl_extractor_dim(c->x),
                       layer ? layer : "features", c->head.lin.d);
    return 0;
}

typedef struct {
    tl_classifier *c;
    tl_scores_fn fn;
    void *user;
} run_ctx;

static int on_vector(void *user, int64_t index, const float *v, tl_err *e)
{
    run_ctx *rc = user;
    tl_classifier *c = rc->c;
    if (c->has_head)
        tl_head_outputs(&c->head, v, c->tmp);
    else if (c->multilabel)
        tl_sigmoid_probs(v, c->tmp, c->nclasses);
    else
        tl_softmax(v, c->tmp, c->nclasses);
    return rc->fn(rc->user, index, c->tmp, e);
}

int tl_classifier_run_images(tl_classifier *c, tl_pool *pool, const tl_dataset *d, tl_scores_fn fn, void *user,
                             tl_progress_fn progress, void *progress_user, tl_log_fn log, void *log_user,
                             tl_extract_stats *stats, tl_err *e)
{
    run_ctx rc = {c, fn, user};
    return tl_extractor_run(c->x, pool, d, on_vector, &rc, progress, progress_user, log, log_user, stats, e);
}
