/* kernels: single-threaded compute over plain float buffers, one section
 * (and one source file) per operation family, each forward next to its
 * backward, as llm.c lays them out.
 *
 * The nn layer parallelises over images, channel ranges or column ranges
 * and gives each worker its own tl_kws; nothing here allocates in a hot
 * path. Every sum runs in a fixed order, so a given split of the work gives
 * bit-identical results. "Accumulate" outputs are ADDED to (the caller
 * zeroes them); "overwrite" outputs are written. Layouts: NCHW per image,
 * OIHW weights, PyTorch's conventions.
 *
 * SIMD: AVX-512, AVX2+FMA or portable scalar, picked at run time (by the
 * workspace for kernels that take one, by tl_simd_level() for the others);
 * TL_SIMD=scalar|avx2|avx512|avx512vnni forces a lower path (avx512vnni
 * differs from avx512 only in the int8 kernels, kernels/quant.h). */
#ifndef TL_KERNELS_H
#define TL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"

/* ------------------------------------------------------ workspace (kws.c) */

/* Per-thread workspace: GEMM packing buffers sized once for the blocking
 * parameters of the chosen SIMD path. */
typedef struct tl_kws tl_kws;

/* Path from $TL_SIMD (best available when unset; a request above what the
 * CPU supports falls back to the best available; an unknown name fails). */
tl_kws *tl_kws_new(tl_err *e);
/* Explicit path "scalar", "avx2", "avx512", "avx512vnni"; fails if the CPU lacks it. */
tl_kws *tl_kws_new_simd(const char *simd, tl_err *e);
void tl_kws_free(tl_kws *ws);
const char *tl_kws_simd_name(const tl_kws *ws); /* "avx512", "avx2", "scalar" (float paths) */
/* Exact mode: convolutions keep to the direct algorithms (GEMM over the
 * im2col matrix), never Winograd, whose transforms add about 1e-6 of
 * relative error. Like the path, it decides how weights are packed: set it
 * before packing, and use a packed buffer only with workspaces of the same
 * path and mode. */
void tl_kws_set_exact(tl_kws *ws, int exact);
/* Forward passes may run on groups of up to n images at once
 * (tl_conv_forward_images): convolutions on small maps then choose their
 * algorithm (Winograd over the group's tiles, or direct) for the group.
 * Like exact, it decides the packing: set it before packing, the same for
 * every workspace that shares packed weights. Default 1. */
void tl_kws_set_images(tl_kws *ws, int n);
/* 1 if this CPU can run the named path. */
int tl_simd_supported(const char *simd);
/* The path kernels without a workspace take (batch norm, activation
 * backward, depthwise weight gradient): the best the CPU has, capped by
 * $TL_SIMD exactly as tl_kws_new caps it (an unknown name counts as no
 * cap here; tl_kws_new reports it). Read on each call, so a test can
 * switch paths in one process. */
enum { TL_SIMD_SCALAR, TL_SIMD_AVX2, TL_SIMD_AVX512, TL_SIMD_AVX512VNNI };
int tl_simd_level(void);

/* ------------------------------------------ GEMM (gemm.c, gemm_packed.c) */

/* C = alpha * op(A) * op(B) + beta * C, row-major, op(X) = X or X^T.
 * op(A) is M x K, op(B) is K x N. M, N, K >= 0. beta == 0 never reads C. */
void tl_sgemm(tl_kws *ws, int transA, int transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* Operands packed ahead of time (weights at inference). The layout follows
 * the workspace's SIMD path: use a packed buffer only with workspaces of
 * the path that packed it. The multiplications below compute share `part`
 * of `nparts` of C (0 of 1: all of it), so a team of threads can split
 * one product; every element is summed in the same order for any split.
 * Packed buffers must be 64-byte aligned (tl_alloc). */
size_t tl_gemm_packed_a_floats(const tl_kws *ws, int M, int K);
/* A: M x K, row stride lda. */
void tl_gemm_pack_a(const tl_kws *ws, int M, int K, const float *A, int lda, float *pa);
/* Its share `part` of `nparts` (whole slivers of mr rows), so a team can pack together. */
void tl_gemm_pack_a_part(const tl_kws *ws, int M, int K, const float *A, int lda, float *pa, int part, int nparts);
size_t tl_gemm_packed_bt_floats(const tl_kws *ws, int N, int K);
/* op(B) = W^T for W (N x K, row stride ldw): the PyTorch linear weight. */
void tl_gemm_pack_bt(const tl_kws *ws, int N, int K, const float *W, int ldw, float *pb);
/* C (M x N, row stride ldc) = A (M x K, row stride lda) W^T + bias[column]
 * (bias may be NULL), then act; W packed by tl_gemm_pack_bt. */
void tl_sgemm_pb(tl_kws *ws, int M, int N, int K, const float *A, int lda, const float *pb, float *C, int ldc,
                 const float *bias, int act, int part, int nparts);
/* tl_sgemm_pb, then C += res (M x N, row stride ldc; NULL: none) after the
 * activation, in the same pass: the same bits as a separate add. */
void tl_sgemm_pb_res(tl_kws *ws, int M, int N, int K, const float *A, int lda, const float *pb, float *C, int ldc,
                     const float *bias, int act, const float *res, int part, int nparts);
/* tl_sgemm_pb with M = 1 (x: K floats, y: N), the same bits for any split,
 * without the micro-kernel's mr - 1 padding rows (gemv.c). */
void tl_gemv_pb(tl_kws *ws, int N, int K, const float *x, const float *pb, float *y, const float *bias, int act,
                int part, int nparts);

/* ------------------------------------------------ activations (activation.c) */

enum {
    TL_ACT_NONE,
    TL_ACT_RELU,
    TL_ACT_RELU6,
    TL_ACT_SIGMOID,
    TL_ACT_SILU,         /* x * sigmoid(x) */
    TL_ACT_HARDSIGMOID,  /* relu6(x + 3) / 6 */
    TL_ACT_HARDSWISH,    /* x * relu6(x + 3) / 6 */
    TL_ACT_GELU,         /* x * Phi(x), the exact (erf) form PyTorch uses by default */
};

/* In place on n floats. */
void tl_activation(int act, float *x, size_t n);
/* y = act(x) (the same values as tl_activation); x and y do not overlap. */
void tl_activation_copy(int act, const float *x, float *y, size_t n);
/* A rows x cols block with row stride ld: x += bias[row] (bias may be
 * NULL), then act: the epilogue of a convolution's GEMM. */
void tl_bias_act_2d(int act, float *x, size_t ld, const float *bias, int rows, size_t cols);
/* dx = dy * f'(x), x being the activation's input; dx may equal dy.
 * At the kinks PyTorch's choices: relu'(0) = 0, relu6'(0) = relu6'(6) = 0,
 * hardsigmoid'(+-3) = 0, hardswish'(-3) = -0.5, hardswish'(3) = 1 (the value
 * of PyTorch's vectorised kernel; its scalar tail loop gives 1.5). */
void tl_activation_backward(int act, const float *x, const float *dy, float *dx, size_t n);

/* --------------------------------------------------- convolution (conv.c) */

/* Convolution geometry for one NCHW image; weight is OIHW
 * (cout, cin/groups, kh, kw). Padding may be asymmetric (TF "SAME"). */
typedef struct tl_conv_geom {
    int cin, h, w, cout, kh, kw, stride_h, stride_w, pad_t, pad_l, pad_b, pad_r, dil_h, dil_w,
        groups, oh, ow;
} tl_conv_geom;

/* Computes oh, ow; a stride, dilation or groups of 0 is taken as 1. */
void tl_conv_geom_finish(tl_conv_geom *g);
/* After finish: 0 if the geometry is usable, else -1 with a reason. */
int tl_conv_geom_check(const tl_conv_geom *g, tl_err *e);

/* Forward with weights packed once by tl_conv_pack: 3x3 stride-1 layers
 * on maps large enough run Winograd F(4x4, 3x3) (winograd.c); 1x1
 * stride-1 layers are a GEMM on the image itself, other k x k ones pack
 * the GEMM's operand straight from the image (no im2col matrix), grouped
 * layers run group by group, depthwise ones go to tl_depthwise_forward.
 * y (cout x oh x ow) = conv(x (cin x h x w), w) + bias (NULL = none), then
 * act; computes share `part` of `nparts` of y, identically for any split.
 * The packing and the algorithm depend on the workspace's SIMD path (and
 * nothing else); scratch: tl_conv_forward_scratch_floats (0: may be NULL),
 * one per thread. */
size_t tl_conv_packed_floats(const tl_kws *ws, const tl_conv_geom *g);
void tl_conv_pack(const tl_kws *ws, const tl_conv_geom *g, const float *w, float *packed);
/* tl_conv_pack's share `part` of `nparts`: a team packs one layer together. */
void tl_conv_pack_part(const tl_kws *ws, const tl_conv_geom *g, const float *w, float *packed, int part, int nparts);
size_t tl_conv_forward_scratch_floats(const tl_kws *ws, const tl_conv_geom *g);
void tl_conv_forward_packed(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *packed,
                            const float *bias, int act, float *y, int part, int nparts, float *scratch);
/* The fusions of inference around a convolution, each NULL when unused:
 * in_scale multiplies input channel c by in_scale[c] first (a
 * squeeze-excitation gate; applied while the GEMM packs the image, so 1x1
 * stride-1 ungrouped layers only); residual (cout x oh x ow) is added to
 * the output after bias and activation (GEMM and Winograd layers); means receives
 * each output channel's plane mean (depthwise layers only: the squeeze of
 * a squeeze-excitation block, summed while the plane is in cache).
 * tl_conv_fusable says which a layer takes (TL_FUSE_* bits). Values are
 * bit-identical to running the separate operations, except the means,
 * summed in 16 lanes (the same bits on every path and for any split). */
typedef struct tl_conv_fuse {
    const float *in_scale;
    const float *residual;
    float *means;
} tl_conv_fuse;
enum { TL_FUSE_IN_SCALE = 1, TL_FUSE_RESIDUAL = 2, TL_FUSE_MEANS = 4 };
int tl_conv_fusable(const tl_kws *ws, const tl_conv_geom *g);
void tl_conv_forward_fused(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *packed,
                           const float *bias, int act, const tl_conv_fuse *f, float *y, int part, int nparts,
                           float *scratch);
/* The same for n images at once, held channel-major: x is cin x n x h x w,
 * y (and the residual) cout x n x oh x ow. The GEMM's columns are the n
 * images' pixels (Winograd's: their tiles), so the packed weights are read
 * once for all of them. Each column is summed as for one image
 * (tl_conv_forward_fused with n = 1 is this layout): the same bits for any
 * n, for layers where tl_conv_images_applies (not depthwise, no input
 * scale). scratch: tl_conv_forward_scratch_floats, for n up to the
 * workspace's images (tl_kws_set_images). */
int tl_conv_images_applies(const tl_kws *ws, const tl_conv_geom *g);
void tl_conv_forward_images(tl_kws *ws, const tl_conv_geom *g, int n, const float *x, const float *packed,
                            const float *bias, int act, const float *residual, float *y, int part, int nparts,
                            float *scratch);

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
 * belongs to the workspace's SIMD path and mode; tl_conv_backward_pack
 * fills the share `part` of `nparts` of it, so a team can pack it together.
 * With an exact workspace results are bit-identical to
 * tl_conv_backward_data's; otherwise 3x3 stride-1 layers (padding <= 2)
 * on maps where tl_conv_forward_packed would take Winograd compute dx as
 * Winograd's forward pass of dy through the flipped kernels (about 1e-6
 * of relative error more than the direct path, as in the forward pass).
 * Scratch: tl_conv_backward_packed_scratch_floats, 64-byte aligned (tl_alloc). */
int tl_conv_backward_packable(const tl_conv_geom *g);
size_t tl_conv_backward_packed_floats(const tl_kws *ws, const tl_conv_geom *g);
size_t tl_conv_backward_packed_scratch_floats(const tl_kws *ws, const tl_conv_geom *g);
void tl_conv_backward_pack(const tl_kws *ws, const tl_conv_geom *g, const float *w, float *packed, int part,
                           int nparts);
void tl_conv_backward_data_packed(tl_kws *ws, const tl_conv_geom *g, const float *dy, const float *packed,
                                  float *dx, float *scratch);
/* For one image: dw[co0..co1) += dy[co0..co1) x im2col(x)^T and
 * db[co0..co1) += row sums of dy (db may be NULL). Any range, also across
 * groups; the result for a row does not depend on the range it came in. */
void tl_conv_backward_weight(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *dy, float *dw,
                             float *db, int co0, int co1, float *scratch);
/* db[co0..co1) += row sums of one image's dy, in float: the bias of a
 * layer whose weights are frozen. */
void tl_conv_backward_bias(const tl_conv_geom *g, const float *dy, float *db, int co0, int co1);
/* Weight gradient of an ungrouped layer (groups == 1) over n images at
 * once (x: n x cin*h*w, dy: n x cout*oh*ow, image-major), TRANSPOSED:
 * dwt (K x cout, K = cin*kh*kw) = sum over images of im2col(x) dy^T, added
 * to dwt when accumulate, else overwriting it; db (cout, may be NULL) +=
 * each image's row sums of dy, in double. The sum runs in a fixed order
 * over the n images given. Scratch: tl_conv_wgrad_scratch_floats. */
size_t tl_conv_wgrad_scratch_floats(const tl_conv_geom *g);
void tl_conv_wgrad_images(tl_kws *ws, const tl_conv_geom *g, int n, const float *x, const float *dy, float *dwt,
                          int accumulate, double *db, float *scratch);

/* ------------------------------------------------ depthwise (depthwise.c) */

/* groups == cin == cout; weight (c, 1, kh, kw); any kernel, stride,
 * dilation and asymmetric padding; fused bias + activation. */
void tl_depthwise_forward(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *w,
                          const float *bias, int act, float *y);
/* The same, and means[c] = the mean of output plane c (means not NULL). */
void tl_depthwise_forward_means(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *w,
                                const float *bias, int act, float *y, float *means);
/* dx overwritten; flipped: tl_depthwise_backward_data_scratch_floats of
 * scratch. Stride-1 layers run the forward kernel on the flipped kernels,
 * channel-blocked on AVX2 and AVX-512 (then every channel's flipped
 * kernel, and the blocked kernel's scratch). */
size_t tl_depthwise_backward_data_scratch_floats(const tl_conv_geom *g);
void tl_depthwise_backward_data(tl_kws *ws, const tl_conv_geom *g, const float *dy, const float *w, float *dx,
                                float *flipped);
/* dw[c0..c1) accumulated (db is the caller's); scratch:
 * tl_depthwise_weight_scratch_floats. */
size_t tl_depthwise_weight_scratch_floats(const tl_conv_geom *g);
void tl_depthwise_backward_weight(const tl_conv_geom *g, const float *x, const float *dy, float *dw, int c0, int c1,
                                  float *scratch);

/* ------------------------------------------------------ pooling (pool.c) */

/* Pooling geometry (PyTorch semantics, asymmetric padding allowed).
 * ceil_mode rounds the output size up, but a window must start inside the
 * input or the leading padding. Average pooling divides by the window
 * clipped to the padded input (count_include_pad) or by the valid count. */
typedef struct tl_pool_geom {
    int c, h, w, kh, kw, stride_h, stride_w, pad_t, pad_l, pad_b, pad_r, ceil_mode,
        count_include_pad, oh, ow;
} tl_pool_geom;

/* Computes oh, ow; a stride of 0 is taken as the kernel size. */
void tl_pool_geom_finish(tl_pool_geom *g);
int tl_pool_geom_check(const tl_pool_geom *g, tl_err *e);
/* One image, x: c x h x w, y: c x oh x ow; backward: dx (c x h x w)
 * overwritten. Max pooling sends each output's gradient to the window's
 * first maximum in row-major scan (the last NaN if any); padding never wins. */
void tl_maxpool2d(const tl_pool_geom *g, const float *x, float *y);
void tl_maxpool2d_backward(const tl_pool_geom *g, const float *x, const float *dy, float *dx);
void tl_avgpool2d(const tl_pool_geom *g, const float *x, float *y);
void tl_avgpool2d_backward(const tl_pool_geom *g, const float *dy, float *dx);
/* PyTorch adaptive_avg_pool2d: output cell (i, j) averages input rows
 * floor(i*h/oh) .. ceil((i+1)*h/oh) - 1, and likewise columns. */
void tl_adaptive_avgpool(int c, int h, int w, int oh, int ow, const float *x, float *y);
void tl_adaptive_avgpool_backward(int c, int h, int w, int oh, int ow, const float *dy, float *dx);
/* y[c] = mean of x[c][0..hw); backward: dx[c][k] = dy[c] / hw. */
void tl_global_avgpool(int c, int hw, const float *x, float *y);
void tl_global_avgpool_backward(int c, int hw, const float *dy, float *dx);

/* -------------------------------------------------- batch norm (batchnorm.c) */

/* Training mode over n images (x, y: n x c x hw, image-major) for channels
 * [c0, c1): normalises with the biased batch variance and writes y, mean,
 * var_biased and invstd = 1/sqrt(var + eps). gamma / beta may be NULL (no
 * affine). Statistics are taken in double, two-pass. The SIMD path is
 * ws's, here and in the other training-mode functions below. */
void tl_batchnorm_train_forward(const tl_kws *ws, int n, int c, int hw, const float *x, const float *gamma,
                                const float *beta, float eps, float *y, float *mean, float *var_biased, float *invstd, int c0, int c1);
/* The same with the relu or relu6 (act; TL_ACT_NONE: none) that follows the
 * batch norm applied as y is written: y is then the activation's output,
 * with the bits of tl_batchnorm_train_forward then tl_activation_copy. */
void tl_batchnorm_train_forward_act(const tl_kws *ws, int act, int n, int c, int hw, const float *x, const float *gamma,
                                    const float *beta, float eps, float *y, float *mean, float *var_biased,
                                    float *invstd, int c0, int c1);
/* running = (1 - momentum) * running + momentum * batch, with the unbiased
 * variance var * m / (m - 1), m = n * hw values per channel (as PyTorch). */
void tl_bn_update_running(int c, int64_t m, float momentum, const float *mean, const float *var_biased,
                          float *running_mean, float *running_var);
/* dx overwritten; dgamma, dbeta accumulated (either may be NULL); channels
 * [c0, c1). gamma may be NULL (taken as 1). */
void tl_batchnorm_train_backward(const tl_kws *ws, int n, int c, int hw, const float *x, const float *dy,
                                 const float *gamma, const float *mean, const float *invstd, float *dx, float *dgamma, float *dbeta,
                                 int c0, int c1);
/* The batch norm's backward fused with that of the relu or relu6 (act)
 * applied to its output y: dya is the activation's output gradient, g
 * receives the batch norm's output gradient (dya where the activation
 * passes it, +0 elsewhere, as tl_activation_backward), the rest as
 * tl_batchnorm_train_backward with dy = g, and the same bits as the two
 * calls, on ws's SIMD path. g must not overlap dya or dx; dx may be dya
 * (each channel's dya is read before its dx is written). g may be NULL:
 * not stored (dx then takes the mask from y and dya again, the same bits). */
void tl_batchnorm_train_backward_act(const tl_kws *ws, int act, int n, int c, int hw, const float *x, const float *y,
                                     const float *dya, float *g, const float *gamma, const float *mean,
                                     const float *invstd, float *dx, float *dgamma, float *dbeta, int c0, int c1);
/* Training mode in stages, for batch norm synchronised over processes
 * (data parallelism), each over channels [c0, c1) of this process's n
 * images; the caller adds every process's per-channel sums between them:
 *   sums: sum[ch] = sum of x                -> total S; mean = (float)(S / m)
 *   sqdevs: sq[ch] = sum of (x - mean)^2    -> total Q
 *   stats: var_biased, invstd from S, Q, m (all channels; mean as above)
 *   apply: y = (x - mean) * invstd * gamma + beta
 * backward:
 *   dsums: sum of dy and of dy * xhat       -> totals (this process's own
 *          are its dbeta, dgamma contributions)
 *   dx: dx = gamma * invstd * (dy - SDY/m - xhat * SDYX/m), overwritten
 * m is the number of values per channel over every process. */
void tl_batchnorm_sync_sums(const tl_kws *ws, int n, int c, int hw, const float *x, double *sum, int c0, int c1);
void tl_batchnorm_sync_sqdevs(const tl_kws *ws, int n, int c, int hw, const float *x, const float *mean, double *sq,
                              int c0, int c1);
void tl_batchnorm_sync_stats(int c, double m, const double *sum, const double *sq, float eps, float *mean,
                             float *var_biased, float *invstd);
void tl_batchnorm_sync_apply(const tl_kws *ws, int n, int c, int hw, const float *x, const float *gamma,
                             const float *beta, const float *mean, const float *invstd, float *y, int c0, int c1);
void tl_batchnorm_sync_dsums(const tl_kws *ws, int n, int c, int hw, const float *x, const float *dy, const float *mean,
                             const float *invstd, double *sdy, double *sdyx, int c0, int c1);
void tl_batchnorm_sync_dx(const tl_kws *ws, int n, int c, int hw, const float *x, const float *dy, const float *gamma,
                          const float *mean, const float *invstd, const double *sdy, const double *sdyx, double m, float *dx, int c0,
                          int c1);
/* Evaluation mode (running statistics; a frozen batch norm in training):
 * one image, y = x * s + t with s = gamma / sqrt(var + eps), t = beta -
 * mean * s per channel; backward: dx = dy * s (overwritten). */
void tl_batchnorm_eval_forward(int c, int hw, const float *x, const float *gamma, const float *beta,
                               const float *mean, const float *var, float eps, float *y);
void tl_batchnorm_eval_backward_data(int c, int hw, const float *dy, const float *gamma, const float *var, float eps,
                                     float *dx);
/* dgamma[c0..c1) += sum dy * (x - mean) / sqrt(var + eps), dbeta += sum dy
 * over n images (either may be NULL); sums in double. */
void tl_batchnorm_eval_backward_params(int n, int c, int hw, const float *x, const float *dy, const float *mean,
                                       const float *var, float eps, float *dgamma, float *dbeta, int c0, int c1);
/* Channels [c0, c1) of one image: y = x * scale[c] + shift[c] (a batch
 * norm folded for inference). */
void tl_channel_affine(int hw, const float *x, const float *scale, const float *shift, float *y, int c0, int c1);

/* -------------------------------------------------- layer norm (layernorm.c) */

/* Over the last dimension: each of `rows` rows of d values is normalised
 * to zero mean and unit (biased) variance, then scaled by gamma and
 * shifted by beta (either may be NULL: 1 and 0). y may equal x. */
void tl_layernorm(int rows, int d, const float *x, const float *gamma, const float *beta, float eps, float *y);
/* The same, also saving each row's mean and invstd (unless NULL). */
void tl_layernorm_forward_save(int rows, int d, const float *x, const float *gamma, const float *beta, float eps,
                               float *y, float *mean, float *invstd);
/* dx (rows x d) overwritten. */
void tl_layernorm_backward_data(int rows, int d, const float *x, const float *gamma, const float *mean,
                                const float *invstd, const float *dy, float *dx);
/* dgamma[d0..d1), dbeta[d0..d1) accumulated over all rows given (either
 * may be NULL). */
void tl_layernorm_backward_params(int rows, int d, const float *x, const float *mean, const float *invstd,
                                  const float *dy, float *dgamma, float *dbeta, int d0, int d1);

/* ---------------------------------------------------- attention (attention.c) */

/* Scaled dot-product self-attention of one sequence, projections excluded
 * (they are linear layers): qkv (t x 3d, q | k | v per row, heads side by
 * side in each) -> ctx (t x d), per head softmax(q k^T / sqrt(dh)) v.
 * Inference: heads h0..h1-1 only (their columns of ctx), so a team can
 * split the heads; scratch: t*t floats. */
void tl_attention_heads_range(tl_kws *ws, int t, int d, int heads, int h0, int h1, const float *qkv, float *ctx,
                              float *scratch);
/* Training: probs (heads x t x t) is saved for the backward pass, which
 * overwrites dqkv (t x 3d). */
size_t tl_attention_core_scratch_floats(int t, int d, int heads);
void tl_attention_core_forward(tl_kws *ws, int t, int d, int heads, const float *qkv, float *ctx, float *probs);
void tl_attention_core_backward(tl_kws *ws, int t, int d, int heads, const float *qkv, const float *probs,
                                const float *dctx, float *dqkv, float *scratch);

/* ---------------------------------------------------------- linear (linear.c) */

/* y (rows x out) = x (rows x in) W^T + b for output columns [o0, o1);
 * W is out x in (PyTorch layout), bias may be NULL. */
void tl_linear_forward(tl_kws *ws, int rows, int in, int out, const float *x, const float *w, const float *bias,
                       float *y, int o0, int o1);
/* dx rows [r0, r1) (overwritten) = dy W. */
void tl_linear_backward_data(tl_kws *ws, int in, int out, const float *dy, const float *w, float *dx, int r0, int r1);
/* Output rows [o0, o1) of the parameters, over all `rows` rows in order:
 * dW += dy^T x, db += column sums of dy (in double); either may be NULL. */
void tl_linear_backward_params(tl_kws *ws, int rows, int in, int out, const float *x, const float *dy, float *dw,
                               float *db, int o0, int o1);

/* ------------------------------------------------ softmax and loss (softmax.c) */

/* y = softmax(x) over n values, max-subtracted; y may equal x. */
void tl_softmax(const float *x, float *y, int n);
/* Cross-entropy of one sample over k classes with label smoothing s
 * (target = (1 - s) * onehot + s / k, as PyTorch); returns the loss
 * (natural log) and, when dlogits != NULL, writes softmax - target (not
 * divided by the batch size). Stable for any finite logits; a NaN or Inf
 * logit or a label outside [0, k) returns NaN (dlogits then NaN too). */
double tl_softmax_xent(int k, const float *logits, int label, float smoothing, float *dlogits);

/* --------------------------- squeeze-excitation scale (scale.c) */

/* One image: y[c][k] = x[c][k] * s[c]; backward: dx (may be NULL) =
 * dy * s, ds (may be NULL) [c] = sum_k dy * x (in double), overwritten. */
void tl_scale_forward(int c, int hw, const float *x, const float *s, float *y);
void tl_scale_backward(int c, int hw, const float *x, const float *s, const float *dy, float *dx, float *ds);

/* ------------------------------------------------------- dropout (dropout.c) */

/* Training mode over n values with drop probability p: mask[k] = keep
 * (a uniform draw from r < 1 - p), y = mask ? x / (1 - p) : 0; backward
 * the same mask on dy. */
void tl_dropout_forward(size_t n, float p, tl_rng *r, const float *x, uint8_t *mask, float *y);
void tl_dropout_backward(size_t n, float p, const uint8_t *mask, const float *dy, float *dx);

/* ------------------------------------------ ViT token sequences (tokens.c) */

/* A patch map x (d x np, channel-major) -> t = 1 + np tokens of d values:
 * token 0 = cls + pos[0], token 1 + p = patch p + pos[1 + p]. */
void tl_tokens_forward(int d, int np, const float *x, const float *cls, const float *pos, float *y);
/* dx (d x np) overwritten from the patch tokens' gradients. */
void tl_tokens_backward_data(int d, int np, const float *dy, float *dx);
/* Columns [j0, j1) of the parameters over n images of t tokens: dpos +=
 * dy, dcls += token 0's dy (either may be NULL). */
void tl_tokens_backward_params(int n, int t, int d, const float *dy, float *dcls, float *dpos, int j0, int j1);
/* The class token: y (d) = token 0 of x; backward: dx (t x d) = dy in
 * token 0, zero elsewhere. */
void tl_select_token_backward(int t, int d, const float *dy, float *dx);

/* ---------------------------------- residual add and channel concat (join.c) */

/* y = a + b over n values (y may equal a or b). */
void tl_add(size_t n, const float *a, const float *b, float *y);
/* y = the channels of a (na values) then of b (nb values); backward
 * splits dy back into da and db (either may be NULL). */
void tl_concat_forward(size_t na, size_t nb, const float *a, const float *b, float *y);
void tl_concat_backward(size_t na, size_t nb, const float *dy, float *da, float *db);

#endif
