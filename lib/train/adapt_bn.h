/* AdaBN: re-estimate every batch-norm layer's running statistics on
 * unlabelled target-domain images, leaving the weights untouched.
 *
 * The procedure is PyTorch's reset_running_stats() + momentum=None
 * (cumulative average) + train() + forward every batch without gradient:
 * running_mean is the plain average over batches of the batch means and
 * running_var the average of the unbiased batch variances. Each batch
 * counts once, whatever its size, so a smaller last batch weighs as much
 * as a full one (PyTorch does the same). Within a forward pass every BN
 * normalises with its batch statistics, so later layers see the outputs of
 * already adapted earlier layers. Dropout is off throughout. */
#ifndef TL_TRAIN_ADAPT_BN_H
#define TL_TRAIN_ADAPT_BN_H

#include "io/checkpoint.h"
#include "io/dataset.h"
#include "io/extract.h"

typedef struct tl_adapt_bn_opts {
    int batch;          /* images per forward pass (default 32) */
    int skip_bad;       /* warn about and skip unreadable images */
    size_t max_pixels;  /* decode limit, 0 = default */
    int exact;          /* every convolution direct, never Winograd */
} tl_adapt_bn_opts;

typedef struct tl_adapt_bn_stats {
    int bn_layers;      /* batch-norm layers whose statistics were replaced */
    int64_t used, skipped;
    int64_t batches;
    double seconds;
} tl_adapt_bn_stats;

void tl_adapt_bn_opts_default(tl_adapt_bn_opts *o);

/* Number of batch-norm layers in m that AdaBN can adapt (with an affine
 * weight and running statistics). */
int tl_adapt_bn_count(const tl_model *m);

/* Replaces net's BN running statistics by those of the images of d (labels
 * ignored). nthreads >= the pool's size. Fails when no image is usable; on
 * failure the running statistics are partly updated (don't save them).
 * Node momentum and dropout rates are restored before returning. */
int tl_adapt_bn_run(tl_net *net, tl_pool *pool, int nthreads, const tl_dataset *d, const tl_adapt_bn_opts *o,
                    tl_progress_fn progress, void *progress_user, tl_log_fn log, void *log_user,
                    tl_adapt_bn_stats *stats, tl_err *e);

#endif
