/* Internal to lib/kernels: the per-path function table and the workspace.
 * Each SIMD file compiles its functions with a target attribute, so the
 * library builds without -mavx flags and runs on any x86-64. */
#ifndef TL_KERNELS_SIMD_H
#define TL_KERNELS_SIMD_H

#include "kernels.h"

/* Micro-kernel over packed panels: a is k x mr (mr values per step), b is
 * k x nr; c (mr x nr, row stride ldc) = alpha * a*b + beta * c, and
 * beta == 0 does not read c. */
typedef void (*tl_ukernel_fn)(int k, const float *a, const float *b, float *c, int ldc,
                              float alpha, float beta);
/* The micro-kernel with the epilogue of a last K block: c = act(a*b +
 * beta * c + bias[row]) + res (bias, res: NULL = none; res row stride ldc),
 * act none, relu or relu6, each operation rounded as by the separate passes
 * (the path's tl_act_rows, then the residual add) would. */
typedef void (*tl_ukernel_ep_fn)(int k, const float *a, const float *b, float *c, int ldc, float beta,
                                 const float *bias, int act, const float *res);
/* One depthwise channel plane: y (oh x ow) = conv(x (h x w), w (kh x kw)) + bias, then
 * relu/relu6 when act is one of those (other activations are applied after). */
typedef void (*tl_dw_plane_fn)(const tl_conv_geom *g, const float *x, const float *w, float bias,
                               int act, float *y);
/* One sliver of packed A (k steps of mr values) times a column b (b[p * ldb]):
 * y[0..mr) = the micro-kernel's sums for that column, in the same order
 * with the same roundings (so a product with N = 1 need not compute nr
 * columns to keep one). */
typedef void (*tl_gemv_fn)(int k, const float *a, const float *b, int ldb, float *y);
/* tl_gemv_fn on 4 slivers at once, the next sliver sa floats after the
 * last: y[s * mr + i] for sliver s. One chain each, as there, but four of
 * them in flight: one sliver's chain is bound by the multiply-add latency. */
typedef void (*tl_gemv4_fn)(int k, const float *a, size_t sa, const float *b, int ldb, float *y);
/* nc <= dw_lanes depthwise channels at once, one channel a vector lane
 * (channel-blocked, as MLAS's NCHWc): planes x (h x w each) and weights w
 * (kh x kw each) of channels 0..nc, outputs y (oh x ow each) + bias, then
 * act (any: the others than relu/relu6 by the path's tl_act_rows, on the
 * blocked outputs before they go back into planes); means (NULL: none)
 * gets each output plane's mean with the bits of a plane-by-plane mean
 * (tl_dw_means_*); scratch: tl_dw_group_scratch_floats. */
typedef void (*tl_dw_group_fn)(const tl_conv_geom *g, const float *x, int nc, const float *w, const float *bias,
                               int act, float *y, float *means, float *scratch);

typedef struct tl_simd_impl {
    const char *name;
    int level; /* TL_SIMD_* of the element-wise kernels that go with this path */
    int mr, nr; /* micro-tile */
    int kc, nc; /* k block (A sliver stays in L1), n block (B block stays in L2) */
    tl_ukernel_fn ukernel;
    /* the same mr rows by 16 columns (NULL when nr is 16 or less): for
     * Winograd blocks of 16 tiles on maps too small to fill nr lanes */
    tl_ukernel_fn ukernel16;
    /* the same mr rows by 8 columns, each element summed as by ukernel
     * (NULL: none): for Winograd on one 7x7 map (4 tiles) */
    tl_ukernel_fn ukernel8;
    /* the first 4 / 8 of the mr rows by nr columns, each element summed as
     * by ukernel (NULL: none): a last row block of 4 or 8 output channels
     * (MobileNetV2's 16, 64, 160) computes no padding rows */
    tl_ukernel_fn ukernel_r4, ukernel_r8;
    tl_ukernel_ep_fn ukernel_ep; /* NULL: the epilogue as separate passes */
    tl_gemv_fn gemv;
    tl_gemv4_fn gemv4; /* NULL: gemv sliver by sliver */
    tl_dw_plane_fn dw_plane;
    int dw_lanes; /* channels of tl_dw_group_fn, 0 = none */
    tl_dw_group_fn dw_group;
} tl_simd_impl;

extern const tl_simd_impl tl_simd_scalar, tl_simd_avx2, tl_simd_avx512;

struct tl_kws {
    const tl_simd_impl *impl;
    int exact; /* convolutions take the direct algorithms only (no Winograd) */
    int images; /* forward passes may take this many images at once (tl_kws_set_images) */
    float *pack_a; /* mr x kc */
    float *pack_b; /* kc x nc, nc rounded to nr (tl_sgemm_pb: up to that many rows of A) */
    float *tile;   /* mr x nr, edge tiles */
};

/* Shared scalar pieces for the depthwise paths. */
float tl_dw_point(const tl_conv_geom *g, const float *x, const float *w, int oy, int ox);
/* First output column whose taps are all inside the row, and one past the last. */
void tl_dw_interior(const tl_conv_geom *g, int *ox_lo, int *ox_hi);
/* The channel-blocked depthwise works in bands of output rows. Its
 * scratch: one band's zero-padded input, rows x cols pixels of dw_lanes
 * channels (the rows and columns the band's outputs read), the band's
 * outputs (band * ow rounded up to 16 pixels), the weights (one vector a
 * tap) and the bias vector; 64-byte aligned. */
typedef struct tl_dw_group_layout {
    int band, rows, cols; /* output rows a band; padded input rows of a full band, columns */
    float *xs, *ys, *w, *bias;
} tl_dw_group_layout;
size_t tl_dw_group_scratch_floats(const tl_conv_geom *g, int lanes);
tl_dw_group_layout tl_dw_group_layout_of(const tl_conv_geom *g, int lanes, float *scratch);
/* The weights and bias of channels 0..nc of lanes (zero past nc). */
void tl_dw_group_setup(const tl_conv_geom *g, const tl_dw_group_layout *L, int lanes, int nc, const float *w,
                       const float *bias);
/* The band of output rows oy0..oy1: zeros in the padding of its input
 * rows, and the input rows iy0..iy1 (inside the image) it must copy, at
 * band row iy + off. */
void tl_dw_band_pad(const tl_conv_geom *g, const tl_dw_group_layout *L, int lanes, int oy0, int oy1, int *iy0,
                    int *iy1, int *off);
/* Plane means from blocked outputs with the bits of depthwise.c's plane
 * mean: acc holds 16 running sums of lanes channels (zeroed first), the
 * kernel adds pixel i of the plane into sum i % 16, in pixel order; this
 * folds the 16 sums pairwise and writes the means of channels 0..nc of an
 * n-pixel plane. */
void tl_dw_means_take(float *acc, int lanes, int nc, size_t n, float *means);
/* relu / relu6 on a scalar; identity for other activations. */
static inline float tl_clamp_act(int act, float v)
{
    if (act == TL_ACT_RELU || act == TL_ACT_RELU6)
        v = v > 0.0f ? v : 0.0f;
    if (act == TL_ACT_RELU6)
        v = v < 6.0f ? v : 6.0f;
    return v;
}

/* Fills dst with columns j0..j0+nc of rows p0..p0+kc of some K x N operand,
 * packed as ceil(nc / nr) slivers of kc steps of nr values, zero-padded. */
typedef void (*tl_pack_b_fn)(const void *ctx, int p0, int kc, int j0, int nc, int nr, float *dst);
/* C (M x N) = A * B + bias[row], then act, then + res (M x N, row stride
 * ldc; NULL = none), for A packed by tl_gemm_pack_a and B produced block
 * by block by pack; computes share `part` of `nparts`. */
void tl_gemm_pa(tl_kws *ws, int M, int N, int K, const float *pa, tl_pack_b_fn pack, const void *ctx,
                float *C, int ldc, const float *bias, int act, const float *res, int part, int nparts);
/* Rows 0..3 of A (from row pointer src, stride lda), columns 0..k, into
 * lanes 0..3 of mr-wide steps at dst, by 4 x 4 transposes; returns the
 * columns done (a multiple of 4: the caller copies the rest). */
int tl_pack_a_rows4(const float *src, int lda, int k, int mr, float *dst);
/* Packs a plain row-major B (K x N, row stride ldb). */
void tl_pack_b_plain(const void *ctx, int p0, int kc, int j0, int nc, int nr, float *dst);
typedef struct tl_plain_b {
    const float *b;
    int ldb;
} tl_plain_b;

#endif
