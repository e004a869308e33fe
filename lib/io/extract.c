#include "extract.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    tl_image img;
    tl_preproc_ws ws;
} decoder;

struct tl_extractor {
    const tl_net *net;
    tl_infer *inf;
    tl_extract_opts o;
    int node;
    char layer[TL_NAME_MAX];
    int dim, channels, spatial;  /* vector length; node channels and h*w */
    int tokens;                  /* a token sequence: pooling averages the tokens */
    size_t in_len;
    float *input;                /* batch x in_len */
    float *output;               /* batch x node size */
    float *pooled;               /* one vector */
    int *ok;
    tl_err *errs;
    decoder *dec;
    int ndec;
};

void tl_extract_opts_default(tl_extract_opts *o)
{
    o->batch = 32;
    o->skip_bad = 0;
    o->max_pixels = 0;
    o->spatial_pool = 1;
}

void tl_extractor_free(tl_extractor *x)
{
    if (!x)
        return;
    tl_infer_free(x->inf);
    tl_free(x->input);
    tl_free(x->output);
    tl_free(x->pooled);
    free(x->ok);
    free(x->errs);
    for (int i = 0; i < x->ndec; i++) {
        tl_image_free(&x->dec[i].img);
        tl_preproc_ws_free(&x->dec[i].ws);
    }
    free(x->dec);
    free(x);
}

tl_extractor *tl_extractor_new(const tl_net *net, const char *layer, int nthreads, const tl_extract_opts *o,
                               tl_err *e)
{
    const tl_model *m = net->model;
    int node = layer ? tl_model_find_node(m, layer) : m->features_node;
    if (node < 0) {
        if (layer && !strcmp(layer, "logits"))
            tl_fail_arg(e, "%s has no classifier (no logits layer)", m->arch);
        else if (layer)
            tl_fail_arg(e, "no layer '%s' in %s (tl-info MODEL lists the layers)", layer, m->arch);
        else
            tl_fail(e, "%s has no default feature layer: give --layer (tl-info MODEL lists the layers)", m->arch);
        return NULL;
    }
    if (node == 0) {
        tl_fail(e, "the input is not a layer to extract");
        return NULL;
    }
    if (m->in_h != net->pp.input_size || m->in_w != net->pp.input_size || m->in_c != 3) {
        tl_fail(e, "model input %dx%dx%d does not match the preprocessing (%d)", m->in_c, m->in_h, m->in_w,
                net->pp.input_size);
        return NULL;
    }
    tl_extractor *x = calloc(1, sizeof *x);
    if (!x) {
        tl_fail(e, "out of memory");
        return NULL;
    }
    x->net = net;
    x->o = *o;
    if (x->o.batch < 1)
        x->o.batch = 1;
    x->node = node;
    snprintf(x->layer, sizeof x->layer, "%s", layer ? layer : m->nodes[node].name);
    const tl_node *n = &m->nodes[node];
    x->channels = n->c;
    x->spatial = n->h * n->w;
    x->tokens = n->tokens;
    if (n->tokens)
        x->dim = o->spatial_pool ? n->w : (int)tl_node_size(n);
    else
        x->dim = (o->spatial_pool && x->spatial > 1) ? n->c : (int)tl_node_size(n);
    x->in_len = (size_t)m->in_c * m->in_h * m->in_w;
    int b = x->o.batch;
    x->ndec = nthreads < 1 ? 1 : nthreads;
    x->inf = tl_infer_new(m, x->ndec, &node, 1, e);
    x->input = tl_alloc_array((size_t)b * x->in_len, sizeof(float));
    x->output = tl_alloc_array((size_t)b * (size_t)tl_node_size(n), sizeof(float));
    x->pooled = tl_alloc_array((size_t)x->dim, sizeof(float));
    x->ok = calloc((size_t)b, sizeof *x->ok);
    x->errs = calloc((size_t)b, sizeof *x->errs);
    x->dec = calloc((size_t)x->ndec, sizeof *x->dec);
    if (!x->inf || !x->input || !x->output || !x->pooled || !x->ok || !x->errs || !x->dec) {
        if (x->inf)
            tl_fail(e, "out of memory for a batch of %d images", b);
        tl_extractor_free(x);
        return NULL;
    }
    return x;
}

int tl_extractor_dim(const tl_extractor *x) { return x->dim; }
const char *tl_extractor_layer(const tl_extractor *x) { return x->layer; }

typedef struct {
    tl_extractor *x;
    const tl_sample *samples;
} load_ctx;

static void load_range(void *ctx, int64_t begin, int64_t end, int w)
{
    load_ctx *lc = ctx;
    tl_extractor *x = lc->x;
    decoder *d = &x->dec[w];
    for (int64_t i = begin; i < end; i++) {
        const char *path = lc->samples[i].path;
        tl_err *err = &x->errs[i];
        x->ok[i] = tl_image_decode_file(path, &d->img, x->o.max_pixels, err) == 0 &&
                   tl_preprocess(&d->img, &x->net->pp, x->input + (size_t)i * x->in_len, &d->ws, err) == 0;
    }
}

/* Moves the good images to the front so the network sees a dense batch. */
static int compact(tl_extractor *x, int count, int *map)
{
    int good = 0;
    for (int i = 0; i < count; i++)
        if (x->ok[i]) {
            if (good != i)
                memcpy(x->input + (size_t)good * x->in_len, x->input + (size_t)i * x->in_len,
                       x->in_len * sizeof(float));
            map[good++] = i;
        }
    return good;
}

int tl_extractor_run(tl_extractor *x, tl_pool *pool, const tl_dataset *d, tl_emit_fn emit, void *emit_user,
                     tl_progress_fn progress, void *progress_user, tl_log_fn log, void *log_user,
                     tl_extract_stats *stats, tl_err *e)
{
    memset(stats, 0, sizeof *stats);
    double t0 = tl_now();
    int b = x->o.batch;
    int *map = calloc((size_t)b, sizeof *map);
    if (!map)
        return tl_fail(e, "out of memory");
    if (pool && tl_pool_size(pool) > x->ndec)
        pool = NULL;
    size_t out_len = (size_t)x->channels * x->spatial;
    float *outs[1] = {x->output};
    int rc = 0;
    for (int64_t start = 0; start < d->n && !rc; start += b) {
        int count = (int)(d->n - start < b ? d->n - start : b);
        load_ctx lc = {x, d->items + start};
        tl_parallel_for(pool, count, 1, load_range, &lc);
        for (int i = 0; i < count && !rc; i++)
            if (!x->ok[i]) {
                if (!x->o.skip_bad) {
                    *e = x->errs[i];
                    rc = -1;
                } else {
                    stats->skipped++;
                    if (log) {
                        char msg[sizeof x->errs[i].msg + 32];
                        snprintf(msg, sizeof msg, "skipping %s", x->errs[i].msg);
                        log(log_user, msg);
                    }
                }
            }
        if (rc)
            break;
        int good = compact(x, count, map);
        tl_infer_run(x->inf, pool, good, x->input, outs);
        for (int g = 0; g < good && !rc; g++) {
            const float *v = x->output + (size_t)g * out_len;
            if (x->dim != (int)out_len && x->tokens) {
                /* mean over the tokens: the sequence's average embedding */
                for (int j = 0; j < x->dim; j++) {
                    double s = 0;
                    for (int t = 0; t < x->channels; t++)
                        s += v[(size_t)t * x->dim + j];
                    x->pooled[j] = (float)(s / x->channels);
                }
                v = x->pooled;
            } else if (x->dim != (int)out_len) {
                tl_global_avgpool(x->channels, x->spatial, v, x->pooled);
                v = x->pooled;
            }
            rc = emit(emit_user, start + map[g], v, e);
            stats->done++;
        }
        if (progress)
            progress(progress_user, start + count, d->n);
    }
    free(map);
    stats->seconds = tl_now() - t0;
    return rc;
}
