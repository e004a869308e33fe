#include "extract.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    tl_image img;
    tl_preproc_ws ws;
} decoder;

/* One batch being decoded or run: the pipeline keeps two, so the decoder
 * threads fill the next batch while the network runs this one. */
typedef struct {
    float *input;    /* batch x in_len */
    int *ok;
    tl_err *errs;
    int64_t batch;   /* the batch index it holds or waits for */
    int filled;      /* images decoded (good or bad) */
} slot;

/* One layer read from the network. */
typedef struct {
    int node;
    char name[TL_NAME_MAX];
    int dim, channels, spatial;  /* vector length; node channels and h*w */
    int tokens;                  /* a token sequence: pooling averages the tokens */
    int offset;                  /* of its values in an image's vector */
    float *output;               /* batch x node size */
} xlayer;

struct tl_extractor {
    const tl_net *net;
    tl_infer *inf;               /* made by the first run, while its first images decode */
    int *nodes;                  /* the layers' nodes, for making inf */
    tl_extract_opts o;
    xlayer *layers;
    int nlayers, dim;
    size_t in_len;
    slot slots[2];
    float **outs;                /* every layer's output, for tl_infer_run */
    float *vec;                  /* one image's vector */
    decoder *dec;
    int ndec;
};

void tl_extract_opts_default(tl_extract_opts *o)
{
    o->batch = 32;
    o->skip_bad = 0;
    o->max_pixels = 0;
    o->spatial_pool = 1;
    o->fast_decode = 0;
    o->exact = 0;
}

void tl_extractor_free(tl_extractor *x)
{
    if (!x)
        return;
    tl_infer_free(x->inf);
    free(x->nodes);
    for (int k = 0; k < 2; k++) {
        tl_free(x->slots[k].input);
        free(x->slots[k].ok);
        free(x->slots[k].errs);
    }
    for (int i = 0; x->layers && i < x->nlayers; i++)
        tl_free(x->layers[i].output);
    free(x->layers);
    free(x->outs);
    tl_free(x->vec);
    for (int i = 0; i < x->ndec; i++) {
        tl_image_free(&x->dec[i].img);
        tl_preproc_ws_free(&x->dec[i].ws);
    }
    free(x->dec);
    free(x);
}

static int find_layer(const tl_model *m, const char *layer, tl_err *e)
{
    int node = layer ? tl_model_find_node(m, layer) : m->features_node;
    if (node < 0) {
        if (layer && !strcmp(layer, "logits"))
            tl_fail_arg(e, "%s has no classifier (no logits layer)", m->arch);
        else if (layer)
            tl_fail_arg(e, "no layer '%s' in %s (tl-info MODEL lists the layers)", layer, m->arch);
        else
            tl_fail(e, "%s has no default feature layer: give --layer (tl-info MODEL lists the layers)", m->arch);
        return -1;
    }
    if (node == 0)
        return tl_fail(e, "the input is not a layer to extract");
    return node;
}

tl_extractor *tl_extractor_new(const tl_net *net, const char *layer, int nthreads, const tl_extract_opts *o,
                               tl_err *e)
{
    return tl_extractor_new_layers(net, &layer, 1, nthreads, o, e);
}

tl_extractor *tl_extractor_new_layers(const tl_net *net, const char *const *layers, int nlayers, int nthreads,
                                      const tl_extract_opts *o, tl_err *e)
{
    const tl_model *m = net->model;
    if (nlayers < 1) {
        tl_fail(e, "no layer to extract");
        return NULL;
    }
    if (m->in_h != net->pp.input_h || m->in_w != net->pp.input_w || m->in_c != 3) {
        tl_fail(e, "model input %dx%d with %d channels does not match the preprocessing (%dx%d)", m->in_w, m->in_h,
                m->in_c, net->pp.input_w, net->pp.input_h);
        return NULL;
    }
    tl_extractor *x = calloc(1, sizeof *x);
    if (!x || !(x->layers = calloc((size_t)nlayers, sizeof *x->layers)) ||
        !(x->outs = calloc((size_t)nlayers, sizeof *x->outs))) {
        tl_extractor_free(x);
        tl_fail(e, "out of memory");
        return NULL;
    }
    x->net = net;
    x->o = *o;
    x->nlayers = nlayers;
    int *nodes = x->nodes = calloc((size_t)nlayers, sizeof *nodes);
    if (!nodes) {
        tl_extractor_free(x);
        tl_fail(e, "out of memory");
        return NULL;
    }
    int64_t map_floats = 0;
    for (int i = 0; i < nlayers; i++) {
        xlayer *L = &x->layers[i];
        if ((L->node = nodes[i] = find_layer(m, layers[i], e)) < 0) {
            tl_extractor_free(x);
            return NULL;
        }
        const tl_node *n = &m->nodes[L->node];
        snprintf(L->name, sizeof L->name, "%s", layers[i] ? layers[i] : n->name);
        L->channels = n->c;
        L->spatial = n->h * n->w;
        L->tokens = n->tokens;
        if (n->tokens)
            L->dim = o->spatial_pool ? n->w : (int)tl_node_size(n);
        else
            L->dim = (o->spatial_pool && L->spatial > 1) ? n->c : (int)tl_node_size(n);
        L->offset = x->dim;
        if ((int64_t)x->dim + L->dim > TL_EXTRACT_MAX_DIM) {
            tl_extractor_free(x);
            tl_fail(e, "the layers' vectors add up to more than %d values", TL_EXTRACT_MAX_DIM);
            return NULL;
        }
        x->dim += L->dim;
        map_floats += tl_node_size(n);
    }
    x->in_len = (size_t)m->in_c * m->in_h * m->in_w;
    if (x->o.batch < 1)
        x->o.batch = 1;
    /* Many layers' full maps per image: fewer images per step. */
    int64_t per_image = map_floats + (int64_t)x->in_len, budget = ((int64_t)256 << 20) / (int64_t)sizeof(float);
    if (nlayers > 1 && (int64_t)x->o.batch * per_image > budget)
        x->o.batch = (int)(budget / per_image > 1 ? budget / per_image : 1);
    int b = x->o.batch;
    x->ndec = nthreads < 1 ? 1 : nthreads;
    int bad = 0;
    for (int i = 0; i < nlayers && !bad; i++) {
        xlayer *L = &x->layers[i];
        L->output = tl_alloc_array((size_t)b * (size_t)tl_node_size(&m->nodes[L->node]), sizeof(float));
        x->outs[i] = L->output;
        bad = !L->output;
    }
    for (int k = 0; k < 2; k++) {
        /* written image by image by the decoders (the network reads only
         * the good ones, moved to the front), so not zero-filled here on
         * one thread before they start */
        x->slots[k].input = tl_alloc_array_raw((size_t)b * x->in_len, sizeof(float));
        x->slots[k].ok = calloc((size_t)b, sizeof *x->slots[k].ok);
        x->slots[k].errs = calloc((size_t)b, sizeof *x->slots[k].errs);
        bad |= !x->slots[k].input || !x->slots[k].ok || !x->slots[k].errs;
    }
    x->vec = tl_alloc_array((size_t)x->dim, sizeof(float));
    x->dec = calloc((size_t)x->ndec, sizeof *x->dec);
    if (bad || !x->vec || !x->dec) {
        tl_fail(e, "out of memory for a batch of %d images", b);
        tl_extractor_free(x);
        return NULL;
    }
    return x;
}

int tl_extractor_dim(const tl_extractor *x) { return x->dim; }
const char *tl_extractor_layer(const tl_extractor *x) { return x->layers[0].name; }
int tl_extractor_layer_dim(const tl_extractor *x, int i) { return x->layers[i].dim; }
int tl_extractor_layer_offset(const tl_extractor *x, int i) { return x->layers[i].offset; }

/* The decoding side of the pipeline: every decoder thread claims the next
 * image in data-set order and decodes it into its batch's slot, waiting
 * while that slot still holds a batch the network has not taken. */
typedef struct {
    tl_extractor *x;
    const tl_dataset *d;
    pthread_mutex_t mu;
    pthread_cond_t freed, ready;
    int64_t next;       /* next image to claim */
    int stop;
} pipeline;

typedef struct {
    pipeline *pl;
    int w;
} decoder_arg;

static int batch_count(const tl_extractor *x, const tl_dataset *d, int64_t k)
{
    int64_t b = x->o.batch, left = d->n - k * b;
    return (int)(left < b ? left : b);
}

static int draft_side(const tl_preproc *pp)
{
    int W = pp->input_w, H = pp->input_h, m = W < H ? W : H;
    if (pp->resize_mode != TL_RESIZE_PAD) {
        W = (int)((int64_t)W * pp->resize_size / m);
        H = (int)((int64_t)H * pp->resize_size / m);
    }
    return W > H ? W : H;
}

static void *decode_loop(void *arg)
{
    decoder_arg *da = arg;
    pipeline *pl = da->pl;
    tl_extractor *x = pl->x;
    decoder *dc = &x->dec[da->w];
    int b = x->o.batch;
    /* No need for more than the resize box (the whole input in pad mode),
     * in both directions since EXIF may turn the image: an image reduced to
     * at least its longer side in both directions is never enlarged again. */
    dc->img.draft_w = dc->img.draft_h = x->o.fast_decode ? draft_side(&x->net->pp) : 0;
    pthread_mutex_lock(&pl->mu);
    for (;;) {
        int64_t i = pl->next;
        if (pl->stop || i >= pl->d->n)
            break;
        int64_t k = i / b;
        slot *s = &x->slots[k % 2];
        if (s->batch != k) {
            pthread_cond_wait(&pl->freed, &pl->mu);
            continue;
        }
        pl->next++;
        pthread_mutex_unlock(&pl->mu);
        int r = (int)(i - k * b);
        tl_err *err = &s->errs[r];
        s->ok[r] = tl_image_decode_file(pl->d->items[i].path, &dc->img, x->o.max_pixels, err) == 0 &&
                   tl_preprocess(&dc->img, &x->net->pp, s->input + (size_t)r * x->in_len, &dc->ws, err) == 0;
        pthread_mutex_lock(&pl->mu);
        if (++s->filled == batch_count(x, pl->d, k))
            pthread_cond_broadcast(&pl->ready);
    }
    pthread_mutex_unlock(&pl->mu);
    return NULL;
}

/* Moves the good images to the front so the network sees a dense batch. */
static int compact(tl_extractor *x, slot *s, int count, int *map)
{
    int good = 0;
    for (int i = 0; i < count; i++)
        if (s->ok[i]) {
            if (good != i)
                memcpy(s->input + (size_t)good * x->in_len, s->input + (size_t)i * x->in_len,
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
    pthread_t *threads = calloc((size_t)x->ndec, sizeof *threads);
    decoder_arg *args = calloc((size_t)x->ndec, sizeof *args);
    if (!map || !threads || !args) {
        free(map), free(threads), free(args);
        return tl_fail(e, "out of memory");
    }
    if (pool && tl_pool_size(pool) > x->ndec)
        pool = NULL;
    pipeline pl = {.x = x, .d = d};
    pthread_mutex_init(&pl.mu, NULL);
    pthread_cond_init(&pl.freed, NULL);
    pthread_cond_init(&pl.ready, NULL);
    for (int k = 0; k < 2; k++) {
        x->slots[k].batch = k;
        x->slots[k].filled = 0;
    }
    int started = 0, rc = 0;
    for (; started < x->ndec; started++) {
        args[started] = (decoder_arg){&pl, started};
        if (pthread_create(&threads[started], NULL, decode_loop, &args[started])) {
            rc = tl_fail(e, "cannot start a decoding thread");
            break;
        }
    }
    /* The network's packed weights take a while (Winograd transforms,
     * shared out on the pool): the decoders fill the first two batches
     * meanwhile instead of after. */
    if (!rc && !x->inf &&
        !(x->inf = tl_infer_new_pool(x->net->model, pool, x->ndec, x->nodes, x->nlayers, x->o.exact, e)))
        rc = -1;
    int64_t nbatch = (d->n + b - 1) / b;
    for (int64_t k = 0; k < nbatch && !rc; k++) {
        int64_t start = k * b;
        int count = batch_count(x, d, k);
        slot *s = &x->slots[k % 2];
        pthread_mutex_lock(&pl.mu);
        while (s->filled < count)
            pthread_cond_wait(&pl.ready, &pl.mu);
        pthread_mutex_unlock(&pl.mu);
        for (int i = 0; i < count && !rc; i++)
            if (!s->ok[i]) {
                if (!x->o.skip_bad) {
                    *e = s->errs[i];
                    rc = -1;
                } else {
                    stats->skipped++;
                    if (log) {
                        char msg[sizeof s->errs[i].msg + 32];
                        snprintf(msg, sizeof msg, "skipping %s", s->errs[i].msg);
                        log(log_user, msg);
                    }
                }
            }
        if (rc)
            break;
        int good = compact(x, s, count, map);
        tl_infer_run(x->inf, pool, good, s->input, x->outs);
        /* the slot is free for batch k + 2 once the network has read it */
        pthread_mutex_lock(&pl.mu);
        s->batch = k + 2;
        s->filled = 0;
        pthread_cond_broadcast(&pl.freed);
        pthread_mutex_unlock(&pl.mu);
        for (int g = 0; g < good && !rc; g++) {
            const float *v = NULL;
            for (int i = 0; i < x->nlayers; i++) {
                const xlayer *L = &x->layers[i];
                size_t out_len = (size_t)L->channels * L->spatial;
                const float *o = L->output + (size_t)g * out_len;
                float *dst = x->vec + L->offset;
                if (L->dim != (int)out_len && L->tokens) {
                    /* mean over the tokens: the sequence's average embedding */
                    for (int j = 0; j < L->dim; j++) {
                        double sum = 0;
                        for (int t = 0; t < L->channels; t++)
                            sum += o[(size_t)t * L->dim + j];
                        dst[j] = (float)(sum / L->channels);
                    }
                } else if (L->dim != (int)out_len) {
                    tl_global_avgpool(L->channels, L->spatial, o, dst);
                } else if (x->nlayers == 1) {
                    v = o; /* one whole layer: hand out the network's own output */
                } else {
                    memcpy(dst, o, out_len * sizeof(float));
                }
            }
            rc = emit(emit_user, start + map[g], v ? v : x->vec, e);
            stats->done++;
        }
        if (progress)
            progress(progress_user, start + count, d->n);
    }
    pthread_mutex_lock(&pl.mu);
    pl.stop = 1;
    pthread_cond_broadcast(&pl.freed);
    pthread_mutex_unlock(&pl.mu);
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    pthread_cond_destroy(&pl.freed);
    pthread_cond_destroy(&pl.ready);
    pthread_mutex_destroy(&pl.mu);
    free(map);
    free(threads);
    free(args);
    stats->seconds = tl_now() - t0;
    return rc;
}
