/* Turning sample indices into a training batch: decode (or take from an
 * IDX array), augment, preprocess to float CHW, on the pool's threads.
 * Each worker owns its image and scratch buffers, allocated once and
 * reused for every batch. */
#ifndef TL_TRAIN_BATCH_LOADER_H
#define TL_TRAIN_BATCH_LOADER_H

#include "augment/augment.h"
#include "io/dataset.h"
#include "io/idx.h"

/* Exactly one of ds and idx is set. */
typedef struct tl_source {
    const tl_dataset *ds;
    const tl_idx *idx;
} tl_source;

int64_t tl_source_count(const tl_source *s);
/* The class of sample i; multi-label data: its number of labels. */
int tl_source_label(const tl_source *s, int64_t i);
int tl_source_multilabel(const tl_source *s);
/* Multi-label: sample i's labels (*n of them, ascending); single-label:
 * its class as a set of one. */
const int *tl_source_labels(const tl_source *s, int64_t i, int *n);
/* A class to stratify and balance by: the class; multi-label: the
 * sample's first (lowest) label, or nclasses for an empty set. */
int tl_source_group(const tl_source *s, int64_t i);

typedef struct tl_batch_loader tl_batch_loader;

/* aug NULL: deterministic preprocessing (pp's resize and centre cut).
 * With aug, the pipeline's input_w x input_h output is only normalised. */
tl_batch_loader *tl_batch_loader_new(const tl_source *src, const tl_preproc *pp, const tl_aug_pipeline *aug,
                                     int nthreads, tl_err *e);
void tl_batch_loader_free(tl_batch_loader *L);
/* The samples it loads. */
const tl_source *tl_batch_loader_source(const tl_batch_loader *L);
/* Refuse decoding images above max_pixels pixels (0: TL_IMAGE_MAX_PIXELS). */
void tl_batch_loader_set_max_pixels(tl_batch_loader *L, size_t max_pixels);
/* Labels that replace the source's (pseudo-labels): labels[id] >= 0 is
 * sample id's label; -1 keeps the source's. NULL: none. Read at each
 * batch, not copied. */
void tl_batch_loader_set_labels(tl_batch_loader *L, const int *labels);
/* Floats of one image. */
size_t tl_batch_loader_image_floats(const tl_batch_loader *L);
/* Fills x (n images) and y (n labels) for samples ids[0..n-1]; the
 * augmentation of sample ids[k] is seeded by (seed, epoch, ids[k]), so the
 * batch does not depend on the thread count. */
int tl_batch_load(tl_batch_loader *L, tl_pool *pool, const int64_t *ids, int n, uint64_t seed, uint64_t epoch,
                  float *x, int *y, tl_err *e);

#endif
