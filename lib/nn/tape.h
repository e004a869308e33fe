/* Training-time execution of a model over a batch: batch norm uses batch
 * statistics where its layer trains, and gradients flow back only as far
 * as the first trainable layer.
 *
 * Memory: the frozen prefix (nodes upstream of every trainable one) runs
 * through the fused inference engine (nn/infer.h) and keeps only the
 * values the trainable part reads; the tape keeps the values of the other
 * nodes (image-major, n x size) for the backward pass; gradient buffers
 * are shared between nodes whose gradients are never live together.
 *
 * Determinism: data gradients are computed per image; convolution weight
 * gradients are summed over fixed runs of images (max(4, threads) runs,
 * added in order), other parameter gradients per output channel (or
 * column) range over all images in order. So the same seed, inputs and
 * thread count give bit-identical results (and thread counts 1 to 4 give
 * the same results). All buffers are sized once for the largest batch. */
#ifndef TL_NN_TAPE_H
#define TL_NN_TAPE_H

#include "model.h"

typedef struct tl_tape tl_tape;
struct tl_comm;

/* nthreads must be at least the size of the pool later passed in. */
tl_tape *tl_tape_new(tl_model *m, int max_batch, int nthreads, tl_err *e);
void tl_tape_free(tl_tape *t);
/* Re-reads the parameters' frozen flags (after freezing or unfreezing, or
 * after new values were loaded into frozen parameters): plans the frozen
 * prefix again (folding its weights), and the gradient buffers. */
int tl_tape_refresh(tl_tape *t, tl_err *e);
/* Exact mode: every convolution on the direct algorithms (GEMM over the
 * im2col matrix), forward and backward. Otherwise (the default) 3x3
 * stride-1 layers on maps large enough run Winograd F(4x4, 3x3) in the
 * forward pass and in the data gradient (weight gradients stay direct),
 * which adds about 1e-6 of relative error per layer (kernels.h). Either
 * way results are bit-identical for any thread count. */
int tl_tape_set_exact(tl_tape *t, int exact, tl_err *e);
/* x: n images of in_c*in_h*in_w floats. train: batch norm on batch
 * statistics (and running statistics updated) in layers that train, and
 * dropout active with masks drawn from (seed, node, image). */
void tl_tape_forward(tl_tape *t, tl_pool *pool, int n, const float *x, int train, uint64_t seed);
/* A node's values for the last forward pass: n rows of tl_node_size;
 * NULL for a node of the frozen prefix that nothing trainable reads. */
float *tl_tape_value(tl_tape *t, int node);
/* The gradient buffer of `node` (n rows), to be filled with dLoss/dOutput
 * before tl_tape_backward(t, pool, n, node); NULL when nothing upstream
 * of node trains. Buffers are shared: after the backward pass only the
 * starting node's still holds its gradient. */
float *tl_tape_grad(tl_tape *t, int node);
/* Zeroes the parameter gradients and back-propagates from `node`. */
void tl_tape_backward(tl_tape *t, tl_pool *pool, int n, int node);
/* Data parallelism. The next passes' images are images first.. of the
 * step's whole batch: dropout masks follow the position in it, so they do
 * not depend on how the batch is shared. */
void tl_tape_set_first_image(tl_tape *t, int first);
/* Batch norm that trains takes its statistics over the images of every
 * process of comm (synchronised batch norm; NULL: this process's alone):
 * each such layer adds up per-channel sums with the other processes, twice
 * in the forward pass and once in the backward pass, so every process
 * must run the same passes. A failure of that communication is kept:
 * tl_tape_sync_error reports it (after a pass; 0: none). */
int tl_tape_set_sync(tl_tape *t, struct tl_comm *comm, tl_err *e);
int tl_tape_sync_error(tl_tape *t, tl_err *e);
size_t tl_tape_bytes(const tl_tape *t);

#endif
