#include "batch_loader.h"

#include <stdlib.h>
#include <string.h>

int64_t tl_source_count(const tl_source *s) { return s->ds ? s->ds->n : s->idx->n; }

int tl_source_label(const tl_source *s, int64_t i) { return s->ds ? s->ds->items[i].label : s->idx->labels[i]; }

int tl_source_multilabel(const tl_source *s) { return s->ds && s->ds->multilabel; }

const int *tl_source_labels(const tl_source *s, int64_t i, int *n)
{
    if (tl_source_multilabel(s)) {
        *n = s->ds->items[i].label;
        return s->ds->items[i].labels;
    }
    *n = 1;
    return s->ds ? &s->ds->items[i].label : &s->idx->labels[i];
}

int tl_source_group(const tl_source *s, int64_t i)
{
    if (!tl_source_multilabel(s))
        return tl_source_label(s, i);
    return s->ds->items[i].label > 0 ? s->ds->items[i].labels[0] : s->ds->nclasses;
}

typedef struct worker {
    tl_image raw, aug;
    tl_preproc_ws pp;
    tl_aug_ws aws;
    tl_err err;
    int failed;
} worker;

struct tl_batch_loader {
    tl_source src;
    tl_preproc pp, pp_aug;
    const tl_aug_pipeline *aug;
    int nworkers;
    worker *w;
    /* the current batch, for the parallel callback */
    const int64_t *ids;
    uint64_t seed, epoch;
    float *x;
    int *y;
    size_t max_pixels; /* decode limit, 0 = the library default */
    const int *labels; /* per sample: a label replacing the source's (>= 0), or NULL */
};

const tl_source *tl_batch_loader_source(const tl_batch_loader *L) { return &L->src; }

void tl_batch_loader_set_max_pixels(tl_batch_loader *L, size_t max_pixels) { L->max_pixels = max_pixels; }
void tl_batch_loader_set_labels(tl_batch_loader *L, const int *labels) { L->labels = labels; }

tl_batch_loader *tl_batch_loader_new(const tl_source *src, const tl_preproc *pp, const tl_aug_pipeline *aug,
                                     int nthreads, tl_err *e)
{
    tl_batch_loader *L = calloc(1, sizeof *L);
    if (!L || !(L->w = calloc((size_t)nthreads + 1, sizeof(worker)))) {
        free(L);
        tl_fail(e, "out of memory");
        return NULL;
    }
    L->src = *src;
    L->pp = *pp;
    L->pp_aug = *pp;
    /* the pipeline's output is already the input's size: resize straight */
    L->pp_aug.resize_size = pp->input_w < pp->input_h ? pp->input_w : pp->input_h;
    L->pp_aug.resize_mode = TL_RESIZE_SQUASH;
    L->aug = aug;
    L->nworkers = nthreads + 1;
    return L;
}

void tl_batch_loader_free(tl_batch_loader *L)
{
    if (!L)
        return;
    for (int i = 0; i < L->nworkers; i++) {
        tl_image_free(&L->w[i].raw);
        tl_image_free(&L->w[i].aug);
        tl_preproc_ws_free(&L->w[i].pp);
        tl_aug_ws_free(&L->w[i].aws);
    }
    free(L->w);
    free(L);
}

size_t tl_batch_loader_image_floats(const tl_batch_loader *L) { return (size_t)3 * L->pp.input_w * L->pp.input_h; }

static void load_range(void *ctx, int64_t begin, int64_t end, int wi)
{
    tl_batch_loader *L = ctx;
    worker *w = &L->w[wi < L->nworkers ? wi : L->nworkers - 1];
    size_t sz = tl_batch_loader_image_floats(L);
    for (int64_t k = begin; k < end && !w->failed; k++) {
        int64_t id = L->ids[k];
        int rc = L->src.ds ? tl_image_decode_file(L->src.ds->items[id].path, &w->raw, L->max_pixels, &w->err)
                           : tl_idx_image(L->src.idx, id, &w->raw, &w->err);
        const tl_image *img = &w->raw;
        const tl_preproc *pp = &L->pp;
        if (!rc && L->aug) {
            tl_rng r;
            tl_aug_seed_image(&r, L->seed, L->epoch, (uint64_t)id);
            rc = tl_aug_apply(L->aug, &r, &w->raw, &w->aug, &w->aws, &w->err);
            img = &w->aug;
            pp = &L->pp_aug;
        }
        if (!rc)
            rc = tl_preprocess(img, pp, L->x + (size_t)k * sz, &w->pp, &w->err);
        if (rc)
            w->failed = 1;
        L->y[k] = L->labels && L->labels[id] >= 0 ? L->labels[id] : tl_source_label(&L->src, id);
    }
}

int tl_batch_load(tl_batch_loader *L, tl_pool *pool, const int64_t *ids, int n, uint64_t seed, uint64_t epoch,
                  float *x, int *y, tl_err *e)
{
    L->ids = ids;
    L->seed = seed;
    L->epoch = epoch;
    L->x = x;
    L->y = y;
    for (int i = 0; i < L->nworkers; i++)
        L->w[i].failed = 0;
    tl_parallel_for(pool, n, 1, load_range, L);
    for (int i = 0; i < L->nworkers; i++)
        if (L->w[i].failed) {
            *e = L->w[i].err;
            return -1;
        }
    return 0;
}
