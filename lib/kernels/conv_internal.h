/* Internal to lib/kernels: the convolution shape tests and the im2col
 * walker shared by the forward packing and the backward passes. */
#ifndef TL_KERNELS_CONV_INTERNAL_H
#define TL_KERNELS_CONV_INTERNAL_H

#include "kernels.h"

static inline int tl_conv_is_depthwise(const tl_conv_geom *g) { return g->groups == g->cin && g->cout == g->cin; }

/* 1x1, stride 1, no padding: the image itself is the GEMM operand. */
static inline int tl_conv_is_direct(const tl_conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->stride_h == 1 && g->stride_w == 1 && g->pad_t == 0 && g->pad_l == 0 &&
           g->pad_b == 0 && g->pad_r == 0;
}

/* Rows of one group's im2col matrix: (input channel, ky, kx). */
static inline int tl_conv_group_k(const tl_conv_geom *g) { return g->cin / g->groups * g->kh * g->kw; }

static inline int tl_clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
/* smallest o with o * s + off >= 0, and one past the largest with o * s + off <= last */
static inline int tl_first_inside(int off, int s) { return off >= 0 ? 0 : (-off + s - 1) / s; }
static inline int tl_end_inside(int off, int last, int s) { return off > last ? 0 : (last - off) / s + 1; }

/* Rows q0..q0+nq of the im2col matrix of one group whose first input
 * channel is x (row q = (channel, ky, kx)), columns = output pixels
 * c0..c0+nc, the rows ld floats apart in col. Gather writes x's values
 * (zero in the padding) into col; scatter adds col back into x (col2im). */
void tl_im2col_gather(const tl_conv_geom *g, const float *x, int q0, int nq, int c0, int nc, float *col, size_t ld);
/* The same gather with the input's channels cs floats apart (the planes
 * of one image among others, channel-major: tl_conv_forward_images). */
void tl_im2col_gather_cs(const tl_conv_geom *g, const float *x, size_t cs, int q0, int nq, int c0, int nc,
                         float *col, size_t ld);
void tl_col2im_add(const tl_conv_geom *g, float *x, int q0, int nq, int c0, int nc, const float *col, size_t ld);

/* d[o] = xr[2 o + off] for o in [a, b), reading inside the row of w
 * floats only (im2col.c; a, b clipped by the caller to the cells inside). */
void tl_gather2(const float *xr, int off, int a, int b, int w, float *d);

/* Direct k x k stride-2 convolution (k = 3, 5 or 7) of up to 4 input
 * channels (conv_stem.c: the stems of MobileNetV2 / EfficientNet, 3x3, and
 * ResNet, 7x7), chosen by tl_conv_forward_fused and tl_conv_forward_images
 * where tl_conv_stem_applies (AVX2 and AVX-512 workspaces; no residual): n
 * images held channel-major as tl_conv_forward_images, weights packed by
 * tl_conv_pack, the same bits as the GEMM (tl_conv_forward_gemm). Scratch:
 * tl_conv_stem_scratch_floats. */
int tl_conv_stem_applies(const tl_kws *ws, const tl_conv_geom *g);
size_t tl_conv_stem_scratch_floats(const tl_conv_geom *g);
void tl_conv_stem_forward(tl_kws *ws, const tl_conv_geom *g, int n, const float *x, const float *packed,
                          const float *bias, int act, float *y, int part, int nparts, float *scratch);
/* rows output rows of channels y, y + ys, ... (nco of them, row stride
 * ow) of a k x k kernel from the band's phase planes ph (channel c's phase
 * (py, px) at ph + ((c * 2 + py) * 2 + px) * plane, rows pw floats apart)
 * and the weights wb (k by k, 8 (AVX-512) or 4 (AVX2) channels each); bias
 * (NULL: none) and act (relu, relu6 or none) as the GEMM's epilogue. */
void tl_stem_s2_avx512(const float *ph, size_t plane, int pw, int rows, int cin, int k, int ow, const float *wb,
                       int nco, float *y, size_t ys, const float *bias, int act);
void tl_stem_s2_avx2(const float *ph, size_t plane, int pw, int rows, int cin, int k, int ow, const float *wb,
                     int nco, float *y, size_t ys, const float *bias, int act);
/* The im2col + GEMM route of tl_conv_forward_images (any non-depthwise
 * layer): the stem's reference. */
void tl_conv_forward_gemm(tl_kws *ws, const tl_conv_geom *g, int n, const float *x, const float *packed,
                          const float *bias, int act, const float *residual, float *y, int part, int nparts);

/* Winograd F(4x4, 3x3) (winograd.c), chosen by tl_conv_pack and
 * tl_conv_forward_packed when tl_winograd_applies. */
int tl_winograd_applies(const tl_kws *ws, const tl_conv_geom *g);
size_t tl_winograd_packed_floats(const tl_kws *ws, const tl_conv_geom *g);
void tl_winograd_pack(const tl_kws *ws, const tl_conv_geom *g, const float *w, float *packed, int part, int nparts);
/* The same for the data gradient of a layer: g is the transposed
 * convolution (tl_conv_backward_geom), w the layer's own weights (OIHW,
 * g->cin x g->cout x 3 x 3), read flipped with the channels swapped. */
void tl_winograd_pack_flipped(const tl_kws *ws, const tl_conv_geom *g, const float *w, float *packed, int part,
                              int nparts);
size_t tl_winograd_scratch_floats(const tl_kws *ws, const tl_conv_geom *g);
void tl_winograd_forward(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *packed, const float *bias,
                         int act, float *y, int part, int nparts, float *scratch);
/* The same on n images held channel-major (tl_conv_forward_images), plus
 * a residual laid out as y (NULL: none) added after the activation: each
 * tile summed as alone, so the same bits for any n and any split. The
 * scratch: tl_winograd_scratch_floats, which covers n up to the
 * workspace's images. */
void tl_winograd_forward_images(tl_kws *ws, const tl_conv_geom *g, int n, const float *x, const float *packed,
                                const float *bias, int act, const float *residual, float *y, int part, int nparts,
                                float *scratch);

/* Weight gradient of 3x3 stride-1 layers through Winograd F(4x4, 3x3)
 * (wgrad_winograd.c): tl_conv_wgrad_images's contract, taken by it where
 * tl_wgrad_winograd_applies (the shape, and a workspace that is not
 * exact); the scratch is sized by shape alone, for both modes. */
int tl_wgrad_winograd_shape(const tl_conv_geom *g);
int tl_wgrad_winograd_applies(const tl_kws *ws, const tl_conv_geom *g);
size_t tl_wgrad_winograd_scratch_floats(const tl_conv_geom *g);
void tl_wgrad_winograd(tl_kws *ws, const tl_conv_geom *g, int n, const float *x, const float *dy, float *dwt,
                       int accumulate, float *scratch);

/* Channel-blocked depthwise (depthwise.c), chosen by tl_conv_forward_fused
 * where tl_depthwise_blocked_applies: channels c0..c1 (c0 a multiple of
 * the path's lanes) of a depthwise layer, then the activations other than
 * relu/relu6 and the channel means (may be NULL) plane by plane. */
int tl_depthwise_blocked_applies(const tl_kws *ws, const tl_conv_geom *g);
size_t tl_depthwise_blocked_scratch_floats(const tl_kws *ws, const tl_conv_geom *g);
void tl_depthwise_forward_blocked(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *w,
                                  const float *bias, int act, float *y, float *means, int c0, int c1,
                                  float *scratch);
/* 3x3 stride-1 depthwise on the planes themselves (AVX2), where
 * tl_depthwise_rows_applies: channels c0..c1, the bits of the
 * channel-blocked path. */
int tl_depthwise_rows_applies(const tl_kws *ws, const tl_conv_geom *g, int act);
size_t tl_depthwise_rows_scratch_floats(const tl_conv_geom *g);
void tl_depthwise_forward_rows(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *w, const float *bias,
                               int act, float *y, int c0, int c1, float *scratch);
size_t tl_dw_rows_avx2_scratch_floats(const tl_conv_geom *g);
void tl_dw_rows_avx2(const tl_conv_geom *g, const float *x, const float *w, const float *bias, int act, float *y,
                     int c0, int c1, float *scratch);

#endif
