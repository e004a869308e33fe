/* Inference: the graph compiled into a list of fused steps (convolution +
 * batch norm + activation become one step with folded weights) and run one
 * image per worker thread, so no barrier separates the layers. Each worker
 * owns activation slots assigned by liveness, sized once at creation. */
#ifndef TL_NN_INFER_H
#define TL_NN_INFER_H

#include "model.h"

typedef struct tl_infer tl_infer;

/* outputs: node indices whose values the caller wants (e.g. the pooled
 * features, a named stage, the logits). nthreads must be at least the size
 * of the pool later passed to tl_infer_run. */
tl_infer *tl_infer_new(const tl_model *m, int nthreads, const int *outputs, int noutputs, tl_err *e);
/* As tl_infer_new; exact 1: every convolution on the direct algorithms
 * (tl_kws_set_exact), never Winograd. tl_infer_new is exact 0: 3x3
 * stride-1 convolutions on maps large enough run Winograd F(4x4, 3x3),
 * about 1e-6 of relative error more per layer than the direct path. */
tl_infer *tl_infer_new_exact(const tl_model *m, int nthreads, const int *outputs, int noutputs, int exact,
                             tl_err *e);
/* As tl_infer_new_exact, the weights prepared (batch norm folded, packed)
 * on `pool` (NULL: serially): the same bytes for any pool. */
tl_infer *tl_infer_new_pool(const tl_model *m, tl_pool *pool, int nthreads, const int *outputs, int noutputs,
                            int exact, tl_err *e);
void tl_infer_free(tl_infer *inf);
/* Folds the model's current parameters again (after training changed them). */
int tl_infer_refresh(tl_infer *inf, tl_err *e);
/* As tl_infer_refresh, on `pool` (NULL: serially); the same bytes. */
int tl_infer_refresh_pool(tl_infer *inf, tl_pool *pool, tl_err *e);
/* Linear layers of more than `floats` floats pack their weights on every
 * run instead of keeping a packed copy (default 2^24: VGG-16's first
 * classifier layer only); from the next tl_infer_refresh. The same bits
 * either way; for tests of the path the zoo's small models never take. */
void tl_infer_set_linear_pack_max(tl_infer *inf, size_t floats);
/* input: nimg images of in_c*in_h*in_w floats (CHW); out[k]: nimg rows of
 * tl_node_size(outputs[k]) floats. */
void tl_infer_run(tl_infer *inf, tl_pool *pool, int nimg, const float *input, float *const *out);
/* Bytes of activation and scratch memory per worker, for reports. */
size_t tl_infer_worker_bytes(const tl_infer *inf);
/* Passes over the per-image steps that do work (after fusion), for tests. */
int tl_infer_passes(const tl_infer *inf);

#endif
