/* Internal to lib/kernels: the packed int8 convolution and its per-path
 * tile functions (q8_conv.c scalar, q8_avx2.c, q8_avx512.c). */
#ifndef TL_KERNELS_Q8_INTERNAL_H
#define TL_KERNELS_Q8_INTERNAL_H

#include <string.h>

#include "quant.h"

#define Q8_MAX_TAPS 64 /* kernels up to 8x8; larger ones stay in float */
#define Q8_MR_MAX 12   /* pixels per tile */

/* Runs output pixels [p0, p1) of one image. */
typedef void (*tl_q8_rows_fn)(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1);

struct tl_q8_conv {
    tl_conv_geom g;
    int cs_in, cs_out;
    int dw;             /* depthwise */
    int level;          /* TL_SIMD_* the layer was packed for */
    int planes;         /* weight planes (vpmaddubsw pair rule) */
    int32_t away;       /* requantisation ties: 1 away from zero, 0 up */
    int ntap;           /* kh * kw */
    int pointwise;      /* 1x1, stride 1, no padding: output pixel p reads input pixel p */
    int ngroups;        /* output channel groups of 16 */
    size_t gstride;     /* weight elements (int8 in w, int16 in w16) per group */
    int8_t *w;          /* [group][tap][plane][cs_in/4][16 channels][4 inputs] */
    int16_t *w16;       /* AVX2, AVX-512BW when vpmaddubsw needs planes (wide): [group][tap][cs_in/2][16 channels][2 inputs] */
    int wide;           /* the input is widened to int16 (scratch) and summed by vpmaddwd */
    int wino;           /* 3x3 stride 1 by integer Winograd F(2x2,3x3) (q8_wino.c); w16 holds U' */
    int16_t *pad16;     /* cs_in int16 of the input zero point */
    int16_t *wdw;       /* depthwise: [group][tap pair][2 x (8 channels x 2 taps)] */
    int16_t *wcol;      /* depthwise by columns (SIMD, when dw_cols): [group][kx][row pair][16 channels x 2 rows] */
    int dw_cols;        /* depthwise runs by input columns (tl_q8_dw_cols_fits) */
    int8_t *wq;         /* VNNI 3x3 depthwise by byte quads (dw_quad): [group][kx][16 channels x 4 rows] */
    int dw_quad;        /* kernel rows 0-2 (and a zero 4th) in one vpdpbusd: 3x3, stride 1/2, |w| <= 127 */
    int32_t *bias;      /* per output channel (cs_out): bias - zin * sum of weights */
    int32_t *mult, *lsh, *rsh;
    int any_lsh;        /* some channel's multiplier is above 1 */
    /* The SIMD requantisation in one rounding (q8_conv.c, requant_consts):
     * per channel, in the lane order of the path (even channels of a
     * vector's block, then odd ones): the 64-bit rounding constant, the
     * right shift, the tie adjustment; post in channel order. */
    int64_t *rnd, *sh64, *adj;
    int32_t *post;
    /* The SIMD paths' short form of the same rounding (q8_conv.c,
     * requant_short): kq/kqn in rnd's lane order, the rest in channel order. */
    int rq_short;       /* every channel fits it (else the one-rounding form) */
    int any_xs;
    int64_t *kq, *kqn;  /* the 64-bit addend (product >= -2^30 / below, with away) */
    int32_t *modd;      /* mult of channel ch ^ 1: the odd channels' multipliers in even lanes */
    int32_t *xs, *sh32; /* left shift of x, arithmetic right shift of the high half */
    tl_q8_out o;
    uint8_t *pad;       /* cs_in bytes of the input zero point: padding reads here */
    ptrdiff_t tap_off[Q8_MAX_TAPS]; /* bytes from a pixel's first tap to each tap */
    tl_q8_rows_fn rows;
};

/* Depthwise by input columns (the SIMD paths): for a run of up to
 * Q8_DW_RUN output pixels of one row and 16 channels, every input column
 * the run reads is widened once into its kernel rows' pairs (16 channels x
 * 2 rows of int16, 64 bytes a pair), then each output pixel sums kw x
 * row-pairs products of those with the weights: a column is prepared once
 * for the kw (stride 1) output pixels reading it. An odd last kernel row
 * is paired with itself under a zero weight. */
#define Q8_DW_RUN 24
#define Q8_DW_COLS 96
#define Q8_DW_PAIRS 4

static inline int tl_q8_dw_cols_fits(const tl_conv_geom *g)
{
    return (g->kh + 1) / 2 <= Q8_DW_PAIRS && (Q8_DW_RUN - 1) * g->stride_w + (g->kw - 1) * g->dil_w + 1 <= Q8_DW_COLS;
}

/* The input rows kernel rows 0..2*pairs-1 of output row oy read, and their
 * column strides: rows outside the image (and the odd row's partner) read
 * the padding row with stride 0 or repeat the last row. */
static inline void tl_q8_dw_row_ptrs(const tl_q8_conv *c, const uint8_t *x, int oy, const uint8_t **row,
                                     ptrdiff_t *cstride)
{
    const tl_conv_geom *g = &c->g;
    int n = (g->kh + 1) / 2 * 2;
    for (int ky = 0; ky < n; ky++) {
        int k = ky < g->kh ? ky : g->kh - 1;
        int iy = oy * g->stride_h - g->pad_t + k * g->dil_h;
        int in = iy >= 0 && iy < g->h;
        row[ky] = in ? x + (size_t)iy * g->w * c->cs_in : c->pad;
        cstride[ky] = in ? c->cs_in : 0;
    }
}

/* The input pixel a tap of output pixel p reads (or the padding row). */
static inline const uint8_t *tl_q8_tap_ptr(const tl_q8_conv *c, const uint8_t *x, int oy, int ox, int t)
{
    const tl_conv_geom *g = &c->g;
    int ky = t / g->kw, kx = t - ky * g->kw;
    int iy = oy * g->stride_h - g->pad_t + ky * g->dil_h, ix = ox * g->stride_w - g->pad_l + kx * g->dil_w;
    if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
        return c->pad;
    return x + ((size_t)iy * g->w + ix) * c->cs_in;
}

/* All taps of output pixel (oy, ox): pointers into x, or the padding row. */
static inline void tl_q8_pixel_taps(const tl_q8_conv *c, const uint8_t *x, int oy, int ox, const uint8_t **ptrs,
                                    int stride)
{
    const tl_conv_geom *g = &c->g;
    int iy = oy * g->stride_h - g->pad_t, ix = ox * g->stride_w - g->pad_l;
    if (iy >= 0 && ix >= 0 && iy + (g->kh - 1) * g->dil_h < g->h && ix + (g->kw - 1) * g->dil_w < g->w) {
        const uint8_t *base = x + ((size_t)iy * g->w + ix) * c->cs_in;
        for (int t = 0; t < c->ntap; t++)
            ptrs[t * stride] = base + c->tap_off[t];
        return;
    }
    for (int t = 0; t < c->ntap; t++)
        ptrs[t * stride] = tl_q8_tap_ptr(c, x, oy, ox, t);
}

/* Pixels per block of the channel-group loops: every group of a block's
 * pixels runs before the next block, so the block's output lines (cs_out
 * bytes a pixel, each group writing 16 of them) and its input (in_bytes a
 * pixel) stay in L2 across the group passes. Group-outer over a whole
 * share instead rewrote each output line ngroups times from L3 on large
 * maps (MobileNetV2's 112x112x96 expansion: 1.2 MB). A multiple of 12, so
 * the tiles are the same as without blocks. */
static inline int tl_q8_block_pixels(const tl_q8_conv *c, int in_bytes)
{
    int b = (256 << 10) / (c->cs_out + in_bytes) / 12 * 12;
    return b < 12 ? 12 : b;
}

/* Tap pointers of pixels p0..p0+n-1 (n <= mr), tap-major: ptrs[t * mr + i];
 * missing pixels of a short tile read the padding row. */
void tl_q8_tile_ptrs(const tl_q8_conv *c, const uint8_t *x, int p0, int n, int mr, const uint8_t **ptrs);
/* The same on the input widened to int16 (c->wide): the same element
 * offsets, the padding is pad16. */
void tl_q8_tile_ptrs16(const tl_q8_conv *c, const int16_t *x, int p0, int n, int mr, const int16_t **ptrs);

static inline int32_t tl_q8_load32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* One requantised output value (scalar reference of every path). */
static inline uint8_t tl_q8_requant1(const tl_q8_conv *c, int32_t acc, int ch)
{
    int32_t x = acc + c->bias[ch];
    x = (int32_t)((uint32_t)x << c->lsh[ch]);
    /* the rounding doubling high multiply, then the rounding shift */
    int32_t v = tl_q8_mul_round(x, c->mult[ch], -c->rsh[ch], c->away) + c->o.zout;
    return (uint8_t)(v < c->o.qmin ? c->o.qmin : v > c->o.qmax ? c->o.qmax : v);
}

/* n int32 sums (channel i % cs_out; n a multiple of 8) requantised by the
 * AVX2 path's requant8 (form 0) or its short form (1), clamped to
 * [qmin, qmax] but not packed to bytes: a test hook. */
void tl_q8_requant_avx2(const tl_q8_conv *c, const int32_t *acc, size_t n, int32_t *y, int form);
/* The same on the AVX-512 paths (rq16's forms; n a multiple of 16). */
void tl_q8_requant_avx512(const tl_q8_conv *c, const int32_t *acc, size_t n, int32_t *y, int form);

/* TFLite's ADD and the float -> uint8 rounding on plain rows of n values. */
void tl_q8_add_scalar(const tl_q8_add *a, size_t n, const uint8_t *x1, const uint8_t *x2, uint8_t *y);
void tl_q8_add_avx2(const tl_q8_add *a, size_t n, const uint8_t *x1, const uint8_t *x2, uint8_t *y);
void tl_q8_add_avx512(const tl_q8_add *a, size_t n, const uint8_t *x1, const uint8_t *x2, uint8_t *y);
void tl_q8_quantize_row_scalar(const float *x, int n, float scale, int zero, uint8_t *y);
void tl_q8_quantize_row_avx2(const float *x, int n, float scale, int zero, uint8_t *y);
void tl_q8_quantize_row_avx512(const float *x, int n, float scale, int zero, uint8_t *y);
void tl_q8_max_row_avx2(const tl_pool_geom *g, int cs, const uint8_t *const *rows, int nr, uint8_t *o);
void tl_q8_transpose16_avx2(const uint8_t *in, size_t in_stride, uint8_t *out, size_t out_stride);
void tl_q8_dequant16_avx2(const uint8_t *x, size_t cs, int zero, float scale, float *y, size_t ys);
void tl_q8_widen_avx2(const uint8_t *x, size_t n, int16_t *y);
/* x is the input widened to int16 (tl_q8_widen_avx2), cast */
void tl_q8_rows16_avx2(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1);
void tl_q8_rows_avx2(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1);
void tl_q8_rows16_avx512(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1);
void tl_q8_rows_avx512(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1);
void tl_q8_rows_vnni(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1);
void tl_q8_dw_rows_avx2(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1);
void tl_q8_dw_rows_avx512(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1);
void tl_q8_dw_cols_avx2(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1);
void tl_q8_dw_cols_avx512(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1);
void tl_q8_dw_cols_vnni(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1);
void tl_q8_dw_quad_vnni(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1);

/* Integer Winograd F(2x2,3x3) (q8_wino.c). Tiles are 2x2 output pixels,
 * row-major over the ceil(oh/2) x ceil(ow/2) grid. v: [position 16][tile]
 * [cs_in] int16, ps int16 from one position to the next; m: [group of the
 * call][Q8_WINO_NT tiles][position 16][16 channels] int32. */
#define Q8_WINO_MR 6   /* tiles per register tile */
#define Q8_WINO_NT 24  /* tiles per products block (a multiple of Q8_WINO_MR) */
#define Q8_WINO_GMAX 4 /* channel groups per AVX-512 register tile */
int tl_q8_wino_fits(const tl_q8_conv *c, const int16_t *w);
int tl_q8_wino_pack(tl_q8_conv *c, const int16_t *w, tl_err *e);
size_t tl_q8_wino_scratch_bytes(const tl_q8_conv *c);
void tl_q8_wino_forward(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int part, int nparts, void *scratch);
void tl_q8_wino_in_avx2(const tl_q8_conv *c, const uint8_t *x, int t0, int nt, int16_t *v);
void tl_q8_wino_gemm_avx2(const tl_q8_conv *c, const int16_t *v, size_t ps, int grp, int nb, int32_t *m);
void tl_q8_wino_gemm_avx512(const tl_q8_conv *c, const int16_t *v, size_t ps, int g0, int ng, int nb, int32_t *m);
void tl_q8_wino_out_avx2(const tl_q8_conv *c, const int32_t *m, int grp, int t0, int n, uint8_t *y);

#endif
