/* Runs a network over a data set: decoder threads (one per worker) decode
 * and preprocess images in data-set order into one of two batch buffers
 * while the network runs the other batch (a bounded queue of two batches:
 * memory stays flat however long the data set). The vectors of one or more
 * named layers are handed to a callback in data-set order; results do not
 * depend on the timing. All buffers are sized once for the batch. */
#ifndef TL_IO_EXTRACT_H
#define TL_IO_EXTRACT_H

/* The longest vector an extractor hands out (every layer together). */
#define TL_EXTRACT_MAX_DIM (1 << 28)

#include "checkpoint.h"
#include "dataset.h"
#include "nn/infer.h"

typedef struct tl_extract_opts {
    int batch;          /* images decoded and run per step */
    int skip_bad;       /* warn and skip unreadable images instead of failing */
    size_t max_pixels;  /* decode limit, 0 = default */
    int spatial_pool;   /* 1: average-pool a spatial layer to one value per channel */
    int fast_decode;    /* decode large JPEGs reduced in the DCT (tl_image.draft_w) */
    int exact;          /* convolutions on the direct algorithms, no Winograd (tl_infer_new_exact) */
} tl_extract_opts;

void tl_extract_opts_default(tl_extract_opts *o);

typedef struct tl_extractor tl_extractor;

/* layer: a stage name as listed by tl-info, "logits", or NULL for the
 * pooled penultimate features. */
tl_extractor *tl_extractor_new(const tl_net *net, const char *layer, int nthreads, const tl_extract_opts *o,
                               tl_err *e);
/* Several layers from one pass of the network: each image's vector is the
 * layers' vectors one after the other (tl_extractor_layer_offset). The
 * batch shrinks so that the maps of all layers fit in about 256 MB. */
tl_extractor *tl_extractor_new_layers(const tl_net *net, const char *const *layers, int nlayers, int nthreads,
                                      const tl_extract_opts *o, tl_err *e);
void tl_extractor_free(tl_extractor *x);
/* The whole vector (every layer's). */
int tl_extractor_dim(const tl_extractor *x);
/* The first layer's name (as asked, or the default's stage name). */
const char *tl_extractor_layer(const tl_extractor *x);
int tl_extractor_layer_dim(const tl_extractor *x, int i);
int tl_extractor_layer_offset(const tl_extractor *x, int i);

/* Called for each good image, in data-set order. A non-zero return stops
 * the run (the callback has filled e). */
typedef int (*tl_emit_fn)(void *user, int64_t index, const float *v, tl_err *e);

typedef struct tl_extract_stats {
    int64_t done, skipped;
    double seconds;
} tl_extract_stats;

int tl_extractor_run(tl_extractor *x, tl_pool *pool, const tl_dataset *d, tl_emit_fn emit, void *emit_user,
                     tl_progress_fn progress, void *progress_user, tl_log_fn log, void *log_user,
                     tl_extract_stats *stats, tl_err *e);

#endif
