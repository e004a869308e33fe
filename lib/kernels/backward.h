/* kernels: the training side. Backward passes of the forward kernels in
 * kernels.h, batch norm in training mode, layer norm with saved statistics,
 * the attention core (no projections) and the label-smoothed cross-entropy.
 *
 * Like the forward kernels these are single-threaded functions over one
 * image, or over a range of channels / columns. The caller parallelises over
 * images for data gradients and over output-channel ranges for parameter
 * gradients; every sum here runs in a fixed order, so a given split of the
 * work gives bit-identical results. "Accumulate" outputs are ADDED to (the
 * caller zeroes them); "overwrite" outputs are written. Layouts follow the
 * forward kernels (NCHW per image, OIHW weights, PyTorch conventions). */
#ifndef TL_KERNELS_BACKWARD_H
#define TL_KERNELS_BACKWARD_H

#include <stdint.h>

#include "kernels.h"

/* Floats of scratch for tl_conv_backward_data and tl_conv_backward_weight
 * (one bounded im2col tile; per-tap column sums for depthwise); 0 for 1x1
 * stride-1 unpadded layers, where scratch may be NULL. */
size_t tl_conv_backward_scratch_floats(const tl_conv_geom *g);
/* dx (cin x h x w) = conv-transpose(dy (cout x oh x ow), w), overwritten.
 * 1x1, k x k (col2im over bounded tiles), grouped and depthwise. */
void tl_conv_backward_data(tl_kws *ws, const tl_conv_geom *g, const float *dy, const float *w, float *dx,
                           float *scratch);
/* The same with W^T packed ahead (once per step: the weights do not change
 * within one) for ungrouped, non-depthwise layers (tl_conv_backward_packable).
 * The packed buffer (tl_conv_backward_packed_floats, 64-byte aligned)
 * belongs to the workspace's SIMD path; tl_conv_backward_pack fills the
 * share `part` of `nparts` of it, so a team can pack it together. Results
 * are bit-identical to tl_conv_backward_data's. */
int tl_conv_backward_packable(const tl_conv_geom *g);
size_t tl_conv_backward_packed_floats(const tl_kws *ws, const tl_conv_geom *g);
void tl_conv_backward_pack(const tl_kws *ws, const tl_conv_geom *g, const float *w, float *packed, int part,
                           int nparts);
void tl_conv_backward_data_packed(tl_kws *ws, const tl_conv_geom *g, const float *dy, const float *packed,
                                  float *dx, float *scratch);
/* For one image: dw[co0..co1) += dy[co0..co1) x im2col(x)^T and
 * db[co0..co1) += row sums of dy (db may be NULL). Any range, also across
 * groups; the result for a row does not depend on the range it came in. */
void tl_conv_backward_weight(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *dy, float *dw,
                             float *db, int co0, int co1, float *scratch);
/* Weight gradient of an ungrouped layer (groups == 1) over n images at
 * once (x: n x cin*h*w, dy: n x cout*oh*ow, image-major), TRANSPOSED:
 * dwt (K x cout, K = cin*kh*kw) = sum over images of im2col(x) dy^T, added
 * to dwt when accumulate, else overwriting it; db (cout, may be NULL) +=
 * each image's row sums of dy, in double. The sum runs in a fixed order
 * over the n images given. Scratch: tl_conv_wgrad_scratch_floats. */
size_t tl_conv_wgrad_scratch_floats(const tl_conv_geom *g);
void tl_conv_wgrad_images(tl_kws *ws, const tl_conv_geom *g, int n, const float *x, const float *dy, float *dwt,
                          int accumulate, double *db, float *scratch);

/* dx = dy * f'(x), x being the activation's input; dx may equal dy.
 * At the kinks PyTorch's choices: relu'(0) = 0, relu6'(0) = relu6'(6) = 0,
 * hardsigmoid'(+-3) = 0, hardswish'(-3) = -0.5, hardswish'(3) = 1 (the value
 * of PyTorch's vectorised kernel; its scalar tail loop gives 1.5). */
void tl_activation_backward(int act, const float *x, const float *dy, float *dx, size_t n);

/* One image, dx (c x h x w) overwritten. Max pooling sends each output's
 * gradient to the window's first maximum in row-major scan (the last NaN if
 * any); padding never wins. */
void tl_maxpool2d_backward(const tl_pool_geom *g, const float *x, const float *dy, float *dx);
void tl_avgpool2d_backward(const tl_pool_geom *g, const float *dy, float *dx);
void tl_adaptive_avgpool_backward(int c, int h, int w, int oh, int ow, const float *dy, float *dx);

/* Batch norm in training mode over n images (x, y: n x c x hw, image-major)
 * for channels [c0, c1): normalises with the biased batch variance and
 * writes y, mean, var_biased and invstd = 1/sqrt(var + eps). gamma / beta
 * may be NULL (no affine). Statistics are taken in double, two-pass. */
void tl_bn_train_forward(int n, int c, int hw, const float *x, const float *gamma, const float *beta, float eps,
                         float *y, float *mean, float *var_biased, float *invstd, int c0, int c1);
/* running = (1 - momentum) * running + momentum * batch, with the unbiased
 * variance var * m / (m - 1), m = n * hw values per channel (as PyTorch). */
void tl_bn_update_running(int c, int64_t m, float momentum, const float *mean, const float *var_biased,
                          float *running_mean, float *running_var);
/* dx overwritten; dgamma, dbeta accumulated (either may be NULL); channels
 * [c0, c1). gamma may be NULL (taken as 1). */
void tl_bn_train_backward(int n, int c, int hw, const float *x, const float *dy, const float *gamma,
                          const float *mean, const float *invstd, float *dx, float *dgamma, float *dbeta, int c0,
                          int c1);
/* The same two, vectorised (batchnorm_train.c): what the tape runs. */
void tl_batchnorm_train_forward(int n, int c, int hw, const float *x, const float *gamma, const float *beta,
                                float eps, float *y, float *mean, float *var_biased, float *invstd, int c0, int c1);
void tl_batchnorm_train_backward(int n, int c, int hw, const float *x, const float *dy, const float *gamma,
                                 const float *mean, const float *invstd, float *dx, float *dgamma, float *dbeta,
                                 int c0, int c1);

/* Layer norm over the last dim (rows x d), as tl_layernorm, also saving
 * each row's mean and invstd. */
void tl_layernorm_forward_save(int rows, int d, const float *x, const float *gamma, const float *beta, float eps,
                               float *y, float *mean, float *invstd);
/* dx (rows x d) overwritten. */
void tl_layernorm_backward_data(int rows, int d, const float *x, const float *gamma, const float *mean,
                                const float *invstd, const float *dy, float *dx);
/* dgamma[d0..d1), dbeta[d0..d1) accumulated over all rows given (either
 * may be NULL). */
void tl_layernorm_backward_params(int rows, int d, const float *x, const float *mean, const float *invstd,
                                  const float *dy, float *dgamma, float *dbeta, int d0, int d1);

/* Attention core of one sequence, no projections: qkv (t x 3d, q | k | v
 * per row, heads side by side in each) -> ctx (t x d), per head
 * softmax(q k^T / sqrt(dh)) v; probs (heads x t x t) is saved for the
 * backward pass, which overwrites dqkv (t x 3d). */
size_t tl_attention_core_scratch_floats(int t, int d, int heads);
void tl_attention_core_forward(tl_kws *ws, int t, int d, int heads, const float *qkv, float *ctx, float *probs);
void tl_attention_core_backward(tl_kws *ws, int t, int d, int heads, const float *qkv, const float *probs,
                                const float *dctx, float *dqkv, float *scratch);

/* Cross-entropy of one sample over k classes with label smoothing s
 * (target = (1 - s) * onehot + s / k, as PyTorch); returns the loss
 * (natural log) and, when dlogits != NULL, writes softmax - target (not
 * divided by the batch size). Stable for any finite logits; a NaN or Inf
 * logit or a label outside [0, k) returns NaN (dlogits then NaN too). */
double tl_softmax_xent(int k, const float *logits, int label, float smoothing, float *dlogits);

#endif
