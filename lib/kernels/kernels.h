/* kernels: single-threaded compute over plain float buffers (GEMM,
 * convolution, depthwise, pooling, activations, softmax, linear).
 * The nn layer parallelises over images or channel blocks and gives each
 * worker its own tl_kws; nothing here allocates in a hot path.
 * SIMD path (AVX-512, AVX2+FMA, portable scalar) is picked at run time when
 * a workspace is created; TL_SIMD=scalar|avx2|avx512|avx512vnni forces a
 * lower one (avx512vnni differs from avx512 only in the int8 kernels). */
#ifndef TL_KERNELS_H
#define TL_KERNELS_H

#include <stddef.h>
#include "core.h"

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
/* 1 if this CPU can run the named path. */
int tl_simd_supported(const char *simd);
/* The path kernels without a workspace take (batch norm, activation
 * backward, depthwise weight gradient): the best the CPU has, capped by
 * $TL_SIMD exactly as tl_kws_new caps it (an unknown name counts as no
 * cap here; tl_kws_new reports it). Read on each call, so a test can
 * switch paths in one process. */
enum { TL_SIMD_SCALAR, TL_SIMD_AVX2, TL_SIMD_AVX512, TL_SIMD_AVX512VNNI };
int tl_simd_level(void);

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
size_t tl_gemm_packed_bt_floats(const tl_kws *ws, int N, int K);
/* op(B) = W^T for W (N x K, row stride ldw): the PyTorch linear weight. */
void tl_gemm_pack_bt(const tl_kws *ws, int N, int K, const float *W, int ldw, float *pb);
/* C (M x N, row stride ldc) = A (M x K, row stride lda) W^T + bias[column]
 * (bias may be NULL), then act; W packed by tl_gemm_pack_bt. */
void tl_sgemm_pb(tl_kws *ws, int M, int N, int K, const float *A, int lda, const float *pb, float *C, int ldc,
                 const float *bias, int act, int part, int nparts);

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

/* Floats of scratch tl_conv_forward needs: one bounded im2col column tile;
 * 0 for 1x1 stride-1 unpadded convolutions and depthwise ones. */
size_t tl_conv_scratch_floats(const tl_conv_geom *g);
/* y (cout x oh x ow) = conv(x (cin x h x w), w) + bias (NULL = none), then act.
 * Handles 1x1 (direct GEMM), k x k (tiled im2col + GEMM), grouped, and
 * depthwise (groups == cin == cout, dispatched to tl_depthwise_forward). */
void tl_conv_forward(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *w,
                     const float *bias, int act, float *y, float *scratch);
/* The same with weights packed once by tl_conv_pack (no im2col matrix:
 * the GEMM packs its operand straight from the image); computes share
 * `part` of `nparts` of y, identically for any split. */
size_t tl_conv_packed_floats(const tl_kws *ws, const tl_conv_geom *g);
void tl_conv_pack(const tl_kws *ws, const tl_conv_geom *g, const float *w, float *packed);
void tl_conv_forward_packed(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *packed,
                            const float *bias, int act, float *y, int part, int nparts);
/* groups == cin == cout; weight (c, 1, kh, kw); any kernel, stride,
 * dilation and asymmetric padding; fused bias + activation. */
void tl_depthwise_forward(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *w,
                          const float *bias, int act, float *y);

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
/* x: c x h x w, y: c x oh x ow */
void tl_maxpool2d(const tl_pool_geom *g, const float *x, float *y);
void tl_avgpool2d(const tl_pool_geom *g, const float *x, float *y);
/* y[c] = mean of x[c][0..hw) */
void tl_global_avgpool(int c, int hw, const float *x, float *y);

/* In place on n floats. */
void tl_activation(int act, float *x, size_t n);
/* x (channels x hw, CHW): x += bias[c] (bias may be NULL), then act. */
void tl_bias_act(int act, float *x, const float *bias, int channels, size_t hw);
/* Same on a rows x cols block with row stride ld (bias per row). */
void tl_bias_act_2d(int act, float *x, size_t ld, const float *bias, int rows, size_t cols);
/* y = softmax(x) over n values, max-subtracted; y may equal x. */
void tl_softmax(const float *x, float *y, int n);

/* y (batch x out) = x (batch x in) W^T + b; w is out x in (PyTorch
 * layout), bias may be NULL. */
void tl_linear_forward(tl_kws *ws, int batch, int in, int out, const float *x, const float *w,
                       const float *bias, float *y);

/* PyTorch adaptive_avg_pool2d: output cell (i, j) averages input rows
 * floor(i*h/oh) .. ceil((i+1)*h/oh) - 1, and likewise columns. */
void tl_adaptive_avgpool(int c, int h, int w, int oh, int ow, const float *x, float *y);

/* Layer norm over the last dimension: each of `rows` rows of d values is
 * normalised to zero mean and unit (biased) variance, then scaled by gamma
 * and shifted by beta. y may equal x. */
void tl_layernorm(int rows, int d, const float *x, const float *gamma, const float *beta, float eps, float *y);

/* Multi-head self-attention over one sequence, as torch.nn.MultiheadAttention
 * (batch_first, no mask): x (t x d) -> y (t x d). w_in (3d x d) and b_in
 * (3d) project to q, k, v; w_out (d x d), b_out (d) project the heads'
 * concatenated outputs. scratch: tl_attention_scratch_floats(t, d). */
size_t tl_attention_scratch_floats(int t, int d);
/* Just the heads' part: qkv (t x 3d, q | k | v per row) -> ctx (t x d);
 * scratch: t*t floats. */
void tl_attention_heads(tl_kws *ws, int t, int d, int heads, const float *qkv, float *ctx, float *scratch);
/* Heads h0..h1-1 only (their columns of ctx): a team splits the heads. */
void tl_attention_heads_range(tl_kws *ws, int t, int d, int heads, int h0, int h1, const float *qkv, float *ctx,
                              float *scratch);
void tl_attention_forward(tl_kws *ws, int t, int d, int heads, const float *x, const float *w_in, const float *b_in,
                          const float *w_out, const float *b_out, float *y, float *scratch);

#endif
