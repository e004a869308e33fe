/* tl_session (tl.h): a loaded network or head with its own worker
 * threads, inference engine and buffers, sized once at open (and again
 * when the layer changes). The pieces are the tools' own: the checkpoint
 * loader, the head and its backbone lookup (train/classifier), the
 * preprocessing and the fused inference engine. */
#include "tl.h"
#include "session_internal.h"
#include "train/classifier.h"

#include <stdlib.h>
#include <string.h>

enum { BATCH = 16 }; /* images decoded and run together by the *_files calls */

/* Decoding scratch of one worker thread, reused across images. */
typedef struct {
    tl_image img;
    tl_preproc_ws ws;
} decoder;

/* One requested output of the engine, and how a vector is made of it. */
typedef struct {
    int node;
    int pool;  /* average a map over space, or a sequence over its tokens */
    int dim;   /* values per image after pooling */
    char layer[TL_NAME_MAX]; /* as the caller named it ("logits" stays "logits"), which tl-extract records */
} view;

struct tl_session {
    tl_classifier c;  /* the network (c.net), and a head (c.head) when has_head */
    char **head_keys, **head_values; /* a head's own metadata */
    int nhead_meta;
    int threads;
    int exact;        /* every convolution direct, never Winograd */
    tl_pool *pool;
    tl_preproc pp;
    size_t max_pixels;
    view feat, pred;  /* tl_session_extract_*, and what tl_session_predict_* reads */
    int has_pred;
    tl_infer *inf;
    int out_feat, out_pred; /* their index among the engine's outputs */
    size_t in_len;
    float *input;           /* BATCH x in_len */
    float *out[2];          /* BATCH x the output node's size */
    decoder *dec;           /* one per thread */
    int ok[BATCH];          /* per image of a batch: decoded, or why not */
    tl_err errs[BATCH];
    float *vec;             /* one pooled vector */
};

static int view_of(const tl_model *m, const char *layer, int pool, view *v, tl_err *e)
{
    int node = layer ? tl_model_find_node(m, layer) : m->features_node;
    if (node < 0) {
        if (layer && !strcmp(layer, "logits"))
            return tl_fail_arg(e, "this model has no classifier (no logits layer)");
        return tl_fail_arg(e, "no layer named '%s' (tl-info lists the layers)", layer ? layer : "features");
    }
    if (node == 0)
        return tl_fail_arg(e, "the input is not a layer to extract");
    const tl_node *n = &m->nodes[node];
    v->node = node;
    snprintf(v->layer, sizeof v->layer, "%s", layer ? layer : n->name);
    v->pool = pool && (n->tokens || n->h * n->w > 1);
    v->dim = !v->pool ? (int)tl_node_size(n) : n->tokens ? n->w : n->c;
    return 0;
}

/* The vector of one image from its row of the node's output. */
static const float *reduce(const tl_session *s, const view *v, const float *row)
{
    if (!v->pool)
        return row;
    const tl_node *n = &s->c.net.model->nodes[v->node];
    if (n->tokens) {
        for (int j = 0; j < v->dim; j++) {
            double sum = 0;
            for (int t = 0; t < n->c; t++)
                sum += row[(size_t)t * v->dim + j];
            s->vec[j] = (float)(sum / n->c);
        }
    } else {
        tl_global_avgpool(n->c, n->h * n->w, row, s->vec);
    }
    return s->vec;
}

static void free_engine(tl_session *s)
{
    tl_infer_free(s->inf);
    tl_free(s->input);
    tl_free(s->out[0]);
    tl_free(s->out[1]);
    tl_free(s->vec);
    s->inf = NULL;
    s->input = s->out[0] = s->out[1] = s->vec = NULL;
}

/* (Re)builds the engine for the current feature and prediction views. */
static int build_engine(tl_session *s, tl_err *e)
{
    free_engine(s);
    const tl_model *m = s->c.net.model;
    int nodes[2] = {s->feat.node, s->pred.node}, n = 1;
    s->out_feat = s->out_pred = 0;
    if (s->has_pred && s->pred.node != s->feat.node) {
        n = 2;
        s->out_pred = 1;
    }
    s->inf = tl_infer_new_exact(m, s->threads, nodes, n, s->exact, e);
    if (!s->inf)
        return -1;
    s->in_len = (size_t)m->in_c * m->in_h * m->in_w;
    s->input = tl_alloc_array(BATCH * s->in_len, sizeof(float));
    for (int k = 0; k < n; k++)
        s->out[k] = tl_alloc_array(BATCH * (size_t)tl_node_size(&m->nodes[nodes[k]]), sizeof(float));
    int most = s->feat.dim > s->pred.dim ? s->feat.dim : s->pred.dim;
    s->vec = tl_alloc_array((size_t)most + 1, sizeof(float));
    if (!s->input || !s->out[0] || (n == 2 && !s->out[1]) || !s->vec)
        return tl_fail(e, "out of memory for a batch of %d images", BATCH);
    return 0;
}

static int copy_head_meta(tl_session *s, const char *path, tl_err *e)
{
    tl_st_file f;
    if (tl_st_open(path, &f, e))
        return -1;
    s->head_keys = calloc((size_t)f.nmeta + 1, sizeof(char *));
    s->head_values = calloc((size_t)f.nmeta + 1, sizeof(char *));
    int rc = s->head_keys && s->head_values ? 0 : tl_fail(e, "out of memory");
    for (int i = 0; i < f.nmeta && !rc; i++) {
        s->head_keys[i] = tl_strdup(f.meta_keys[i]);
        s->head_values[i] = tl_strdup(f.meta_values[i]);
        s->nhead_meta++;
        if (!s->head_keys[i] || !s->head_values[i])
            rc = tl_fail(e, "out of memory");
    }
    tl_st_close(&f);
    return rc;
}

TL_API tl_session *tl_session_open(const char *model, int threads, tl_err *e)
{
    tl_session *s = calloc(1, sizeof *s);
    if (!s) {
        tl_fail(e, "out of memory");
        return NULL;
    }
    char path[4096];
    tl_st_file f;
    if (tl_model_locate(model, path, sizeof path, e) || tl_st_open(path, &f, e)) {
        free(s);
        return NULL;
    }
    const char *arch = tl_st_meta(&f, "tl.arch");
    int is_head = arch && !strcmp(arch, "linear");
    tl_st_close(&f);
    if (is_head) {
        if (tl_classifier_load(&s->c, path, e) || tl_classifier_load_backbone(&s->c, path, e) ||
            copy_head_meta(s, path, e))
            goto fail;
    } else {
        if (tl_net_load(path, &s->c.net, e))
            goto fail;
        s->c.has_net = 1;
        s->c.classes = s->c.net.classes;
        s->c.nclasses = s->c.net.model->num_classes;
        s->c.probabilities = 1;
    }
    const tl_model *m = s->c.net.model;
    if (m->in_c != 3) {
        tl_fail(e, "%s: the network takes %d channels, not RGB images", path, m->in_c);
        goto fail;
    }
    s->threads = threads > 0 ? threads : tl_cpu_count();
    s->pp = s->c.net.pp;
    if (!(s->pool = tl_pool_new(s->threads, e)))
        goto fail;
    if (!(s->dec = calloc((size_t)s->threads, sizeof *s->dec))) {
        tl_fail(e, "out of memory");
        goto fail;
    }
    if (view_of(m, NULL, 1, &s->feat, e))
        goto fail;
    if (s->c.has_head) {
        /* the head's layer, pooled as its features were (a head trained on
         * whole maps takes them whole) */
        if (view_of(m, s->c.head.feature_layer, 1, &s->pred, e))
            goto fail;
        if (s->pred.dim != s->c.head.lin.d) {
            view whole;
            if (view_of(m, s->c.head.feature_layer, 0, &whole, e))
                goto fail;
            if (whole.dim != s->c.head.lin.d) {
                tl_fail(e, "%s: the backbone gives %d values at layer %s, the head takes %d", path, s->pred.dim,
                        s->c.head.feature_layer ? s->c.head.feature_layer : "features", s->c.head.lin.d);
                goto fail;
            }
            s->pred = whole;
        }
        s->has_pred = 1;
    } else if (m->logits_node >= 0) {
        s->pred = (view){.node = m->logits_node, .dim = (int)tl_node_size(&m->nodes[m->logits_node]),
                         .layer = "logits"};
        s->has_pred = 1;
    }
    if (build_engine(s, e))
        goto fail;
    return s;
fail:
    tl_session_free(s);
    return NULL;
}

TL_API void tl_session_free(tl_session *s)
{
    if (!s)
        return;
    free_engine(s);
    if (s->dec)
        for (int i = 0; i < s->threads; i++) {
            tl_image_free(&s->dec[i].img);
            tl_preproc_ws_free(&s->dec[i].ws);
        }
    free(s->dec);
    for (int i = 0; i < s->nhead_meta; i++) {
        free(s->head_keys[i]);
        free(s->head_values[i]);
    }
    free(s->head_keys);
    free(s->head_values);
    tl_pool_free(s->pool);
    tl_classifier_free(&s->c);
    free(s);
}

TL_API int tl_session_set_layer(tl_session *s, const char *layer, int pool, tl_err *e)
{
    view v;
    if (view_of(s->c.net.model, layer, pool, &v, e))
        return -1;
    view old = s->feat;
    s->feat = v;
    if (build_engine(s, e)) {
        s->feat = old;
        tl_err ignored;
        build_engine(s, &ignored);
        return -1;
    }
    return 0;
}

TL_API int tl_session_feature_dim(const tl_session *s) { return s->feat.dim; }

TL_API void tl_session_preproc(const tl_session *s, tl_preproc *p) { *p = s->pp; }

TL_API int tl_session_set_preproc(tl_session *s, const tl_preproc *p, tl_err *e)
{
    const tl_model *m = s->c.net.model;
    if (p->input_w != m->in_w || p->input_h != m->in_h)
        return tl_fail_arg(e, "input %dx%d: the network takes %dx%d", p->input_w, p->input_h, m->in_w, m->in_h);
    int side = p->input_w < p->input_h ? p->input_w : p->input_h;
    if (p->resize_size < side || p->resize_size > 16384)
        return tl_fail_arg(e, "resize_size %d: at least the input's shorter side (%d) and at most 16384",
                           p->resize_size, side);
    if (p->resize_mode < TL_RESIZE_CROP || p->resize_mode > TL_RESIZE_PAD)
        return tl_fail_arg(e, "resize_mode %d: not a TL_RESIZE_* value", p->resize_mode);
    for (int c = 0; c < 3; c++)
        if (!(p->std[c] > 0) || !(p->mean[c] == p->mean[c]) || p->std[c] > 1e30f)
            return tl_fail_arg(e, "std must be positive and mean finite");
    if (p->interp < TL_INTERP_BILINEAR || p->interp > TL_INTERP_NEAREST)
        return tl_fail_arg(e, "interp %d is not a TL_INTERP_* value", p->interp);
    s->pp = *p;
    s->pp.bgr = p->bgr != 0;
    return 0;
}

TL_API void tl_session_set_max_pixels(tl_session *s, size_t max_pixels) { s->max_pixels = max_pixels; }

TL_API int tl_session_set_exact(tl_session *s, int exact, tl_err *e)
{
    if (!!exact == s->exact)
        return 0;
    s->exact = !!exact;
    return build_engine(s, e);
}

TL_API int tl_session_num_classes(const tl_session *s) { return s->has_pred ? s->c.nclasses : 0; }

TL_API const char *tl_session_class_name(const tl_session *s, int index)
{
    if (!s->has_pred || index < 0 || index >= s->c.nclasses)
        return NULL;
    return s->c.classes ? s->c.classes[index] : NULL;
}

TL_API int tl_session_probabilities(const tl_session *s) { return s->c.probabilities; }

TL_API const char *tl_session_arch(const tl_session *s) { return s->c.net.model->arch; }

TL_API const char *tl_session_meta(const tl_session *s, const char *key)
{
    for (int i = 0; i < s->nhead_meta; i++)
        if (!strcmp(s->head_keys[i], key))
            return s->head_values[i];
    return tl_net_meta(&s->c.net, key);
}

/* ---- running ---- */

typedef struct {
    tl_session *s;
    const char *const *paths;
} decode_ctx;

static void decode_range(void *ctx, int64_t begin, int64_t end, int worker)
{
    decode_ctx *d = ctx;
    tl_session *s = d->s;
    decoder *dc = &s->dec[worker];
    for (int64_t i = begin; i < end; i++)
        s->ok[i] = tl_image_decode_file(d->paths[i], &dc->img, s->max_pixels, &s->errs[i]) == 0 &&
                   tl_preprocess(&dc->img, &s->pp, s->input + (size_t)i * s->in_len, &dc->ws, &s->errs[i]) == 0;
}

/* Vectors of `count` preprocessed images (in s->input) into out: features
 * (dim per image) or class scores. */
static void run(tl_session *s, int count, int predict, float *out)
{
    float *outs[2] = {s->out[0], s->out[1]};
    tl_infer_run(s->inf, s->pool, count, s->input, outs);
    const tl_model *m = s->c.net.model;
    const view *v = predict ? &s->pred : &s->feat;
    const float *base = s->out[predict ? s->out_pred : s->out_feat];
    size_t node_len = (size_t)tl_node_size(&m->nodes[v->node]);
    int k = s->c.nclasses;
    for (int i = 0; i < count; i++) {
        const float *x = reduce(s, v, base + (size_t)i * node_len);
        if (!predict)
            memcpy(out + (size_t)i * v->dim, x, (size_t)v->dim * sizeof(float));
        else if (s->c.has_head)
            tl_head_outputs(&s->c.head, x, out + (size_t)i * k);
        else
            tl_softmax(x, out + (size_t)i * k, k);
    }
}

static int check_predict(const tl_session *s, tl_err *e)
{
    return s->has_pred ? 0 : tl_fail_arg(e, "a backbone without classifier predicts nothing: extract features");
}

static int run_files(tl_session *s, const char *const *paths, int n, int predict, float *out, tl_err *e)
{
    if (predict && check_predict(s, e))
        return -1;
    if (n < 0 || (n > 0 && (!paths || !out)))
        return tl_fail_arg(e, "%d images, or no paths or output", n);
    size_t per = predict ? (size_t)s->c.nclasses : (size_t)s->feat.dim;
    for (int start = 0; start < n; start += BATCH) {
        int count = n - start < BATCH ? n - start : BATCH;
        decode_ctx d = {s, paths + start};
        tl_parallel_for(s->pool, count, 1, decode_range, &d);
        for (int i = 0; i < count; i++)
            if (!s->ok[i]) {
                *e = s->errs[i];
                return -1;
            }
        run(s, count, predict, out + (size_t)start * per);
    }
    return 0;
}

static int run_memory(tl_session *s, const void *data, size_t size, int predict, float *out, tl_err *e)
{
    if (predict && check_predict(s, e))
        return -1;
    decoder *dc = &s->dec[0];
    if (tl_image_decode_mem(data, size, &dc->img, s->max_pixels, e) ||
        tl_preprocess(&dc->img, &s->pp, s->input, &dc->ws, e))
        return -1;
    run(s, 1, predict, out);
    return 0;
}

static int run_pixels(tl_session *s, const uint8_t *rgb, int w, int h, size_t stride, int predict, float *out,
                      tl_err *e)
{
    if (predict && check_predict(s, e))
        return -1;
    if (!rgb || w < 1 || h < 1 || stride < (size_t)w * 3)
        return tl_fail_arg(e, "pixels %dx%d with a stride of %zu bytes: not an RGB image", w, h, stride);
    size_t limit = s->max_pixels ? s->max_pixels : TL_IMAGE_MAX_PIXELS;
    if ((size_t)w * (size_t)h > limit)
        return tl_fail(e, "a %dx%d image has more than %zu pixels", w, h, limit);
    decoder *dc = &s->dec[0];
    if (tl_image_alloc(&dc->img, w, h, e))
        return -1;
    for (int y = 0; y < h; y++)
        memcpy(dc->img.px + (size_t)y * w * 3, rgb + (size_t)y * stride, (size_t)w * 3);
    if (tl_preprocess(&dc->img, &s->pp, s->input, &dc->ws, e))
        return -1;
    run(s, 1, predict, out);
    return 0;
}

TL_API int tl_session_extract_file(tl_session *s, const char *path, float *features, tl_err *e)
{
    return run_files(s, &path, 1, 0, features, e);
}

TL_API int tl_session_extract_files(tl_session *s, const char *const *paths, int n, float *features, tl_err *e)
{
    return run_files(s, paths, n, 0, features, e);
}

TL_API int tl_session_extract_memory(tl_session *s, const void *data, size_t size, float *features, tl_err *e)
{
    return run_memory(s, data, size, 0, features, e);
}

TL_API int tl_session_extract_pixels(tl_session *s, const uint8_t *rgb, int width, int height, size_t stride,
                                     float *features, tl_err *e)
{
    return run_pixels(s, rgb, width, height, stride, 0, features, e);
}

TL_API int tl_session_predict_file(tl_session *s, const char *path, float *scores, tl_err *e)
{
    return run_files(s, &path, 1, 1, scores, e);
}

TL_API int tl_session_predict_files(tl_session *s, const char *const *paths, int n, float *scores, tl_err *e)
{
    return run_files(s, paths, n, 1, scores, e);
}

TL_API int tl_session_predict_memory(tl_session *s, const void *data, size_t size, float *scores, tl_err *e)
{
    return run_memory(s, data, size, 1, scores, e);
}

TL_API int tl_session_predict_pixels(tl_session *s, const uint8_t *rgb, int width, int height, size_t stride,
                                     float *scores, tl_err *e)
{
    return run_pixels(s, rgb, width, height, stride, 1, scores, e);
}

int tl_session_describe(const tl_session *s, tl_session_origin *o)
{
    char *abs = realpath(s->c.net.path, NULL);
    if (abs) {
        snprintf(o->model, sizeof o->model, "%s", abs);
        free(abs);
    } else {
        snprintf(o->model, sizeof o->model, "%s", s->c.net.path);
    }
    snprintf(o->layer, sizeof o->layer, "%s", s->feat.layer);
    tl_preproc_geometry_format(&s->pp, o->geometry, sizeof o->geometry);
    o->exact = s->exact;
    return s->feat.dim;
}
