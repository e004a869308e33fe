/* Convolution as GEMM over one NCHW image, forward and backward.
 *
 * Forward: the weights are packed once (tl_conv_pack) as the GEMM's A;
 * its B, the im2col matrix, is packed straight from the image one kc x nc
 * block at a time, so the matrix is never materialised; 1x1 stride-1
 * layers pack the image itself; bias and activation are applied while
 * each block of the output is still in cache. Depthwise layers split their
 * channels between the parts and go to depthwise.c.
 *
 * Backward data: per column tile, col = W^T dy (one GEMM) scattered back
 * with col2im; 1x1 stride-1 layers are one GEMM straight into dx; the tape
 * packs W^T once per step (tl_conv_backward_data_packed), or for 3x3
 * stride-1 layers, unless the workspace is exact, the flipped kernels'
 * Winograd transforms: their data gradient is then Winograd's forward
 * pass over dy (winograd.c). Weight gradient:
 * dw += dy col^T per tile of one image, or (tl_conv_wgrad_images) over
 * tiles spanning several images; for 3x3 stride-1 layers, unless exact,
 * through Winograd's transforms (wgrad_winograd.c). */
#include "conv_internal.h"
#include "simd.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* im2col tiles of the backward passes hold about this many floats (1 MiB),
 * at least 64 columns */
#define TILE_BUDGET (1 << 18)

void tl_conv_geom_finish(tl_conv_geom *g)
{
    if (g->stride_h <= 0)
        g->stride_h = 1;
    if (g->stride_w <= 0)
        g->stride_w = 1;
    if (g->dil_h <= 0)
        g->dil_h = 1;
    if (g->dil_w <= 0)
        g->dil_w = 1;
    if (g->groups <= 0)
        g->groups = 1;
    int eh = g->h + g->pad_t + g->pad_b - g->dil_h * (g->kh - 1) - 1;
    int ew = g->w + g->pad_l + g->pad_r - g->dil_w * (g->kw - 1) - 1;
    g->oh = eh < 0 ? 0 : eh / g->stride_h + 1;
    g->ow = ew < 0 ? 0 : ew / g->stride_w + 1;
}

int tl_conv_geom_check(const tl_conv_geom *g, tl_err *e)
{
    if (g->cin <= 0 || g->cout <= 0 || g->h <= 0 || g->w <= 0 || g->kh <= 0 || g->kw <= 0)
        return tl_fail(e, "convolution has a non-positive size (cin %d, cout %d, %dx%d input, %dx%d kernel)",
                       g->cin, g->cout, g->h, g->w, g->kh, g->kw);
    if (g->pad_t < 0 || g->pad_l < 0 || g->pad_b < 0 || g->pad_r < 0)
        return tl_fail(e, "convolution has negative padding");
    if (g->groups <= 0 || g->cin % g->groups || g->cout % g->groups)
        return tl_fail(e, "convolution groups %d do not divide cin %d and cout %d", g->groups, g->cin, g->cout);
    if (g->oh <= 0 || g->ow <= 0)
        return tl_fail(e, "convolution output is empty (%dx%d input, %dx%d kernel)", g->h, g->w, g->kh, g->kw);
    return 0;
}

static int imin(int a, int b) { return a < b ? a : b; }

/* ---------------------------------------------------------------- forward */

size_t tl_conv_packed_floats(const tl_kws *ws, const tl_conv_geom *g)
{
    if (tl_winograd_applies(ws, g))
        return tl_winograd_packed_floats(ws, g);
    if (tl_conv_is_depthwise(g))
        return (size_t)g->cout * g->kh * g->kw;
    return (size_t)g->groups * tl_gemm_packed_a_floats(ws, g->cout / g->groups, tl_conv_group_k(g));
}

size_t tl_conv_forward_scratch_floats(const tl_kws *ws, const tl_conv_geom *g)
{
    if (tl_winograd_applies(ws, g))
        return tl_winograd_scratch_floats(ws, g);
    if (tl_conv_stem_applies(ws, g))
        return tl_conv_stem_scratch_floats(g);
    size_t dw = tl_depthwise_blocked_applies(ws, g) ? tl_depthwise_blocked_scratch_floats(ws, g) : 0;
    if (tl_depthwise_rows_applies(ws, g, TL_ACT_NONE) && tl_depthwise_rows_scratch_floats(g) > dw)
        dw = tl_depthwise_rows_scratch_floats(g);
    return dw;
}

void tl_conv_pack(const tl_kws *ws, const tl_conv_geom *g, const float *w, float *packed)
{
    tl_conv_pack_part(ws, g, w, packed, 0, 1);
}

void tl_conv_pack_part(const tl_kws *ws, const tl_conv_geom *g, const float *w, float *packed, int part, int nparts)
{
    if (tl_winograd_applies(ws, g)) {
        tl_winograd_pack(ws, g, w, packed, part, nparts);
        return;
    }
    if (tl_conv_is_depthwise(g)) {
        size_t taps = (size_t)g->kh * g->kw, c0 = (size_t)g->cout * part / nparts,
               c1 = (size_t)g->cout * (part + 1) / nparts;
        memcpy(packed + c0 * taps, w + c0 * taps, sizeof(float) * (c1 - c0) * taps);
        return;
    }
    int cout_g = g->cout / g->groups, K = tl_conv_group_k(g);
    size_t per = tl_gemm_packed_a_floats(ws, cout_g, K);
    for (int grp = 0; grp < g->groups; grp++)
        tl_gemm_pack_a_part(ws, cout_g, K, w + (size_t)grp * cout_g * K, K, packed + grp * per, part, nparts);
}

typedef struct {
    const tl_conv_geom *g;
    const float *x; /* the group's first input channel */
} im2col_src;

/* Largest N-block of any SIMD path (the avx2 one). */
#define NC_MAX 1024

/* Each row of the block is gathered contiguously, then cut into the
 * slivers. */
static void pack_b_im2col(const void *ctx, int p0, int kc, int j0, int nc, int nr, float *dst)
{
    const im2col_src *src = ctx;
    const int ncpad = (nc + nr - 1) / nr * nr;
    const size_t sliver = (size_t)kc * nr;
    float row[NC_MAX + 64];
    for (int j = nc; j < ncpad; j++)
        row[j] = 0.0f;
    for (int p = 0; p < kc; p++) {
        tl_im2col_gather(src->g, src->x, p0 + p, 1, j0, nc, row, 0);
        float *out = dst + (size_t)p * nr;
        if (nr == 32)
            for (int j = 0; j < ncpad; j += 32)
                memcpy(out + (size_t)(j / 32) * sliver, row + j, 32 * sizeof(float));
        else
            for (int j = 0; j < ncpad; j += nr)
                memcpy(out + (size_t)(j / nr) * sliver, row + j, (size_t)nr * sizeof(float));
    }
}

/* A plain B whose row k is multiplied by scale[k] on the way (the
 * squeeze-excitation gate of a 1x1 layer's input channels): the same
 * product, rounded once, as scaling the map first. */
typedef struct {
    const float *b;
    int ldb;
    const float *scale;
    int level; /* the workspace's TL_SIMD_*: the width of the copies below */
} scaled_b;

/* Blocks of 16 through a local array: no aliasing for GCC to check, so it
 * vectorises them at -O2 (one rounded product an element: the same bits at
 * every width). */
static inline __attribute__((always_inline)) void scaled_row(float *d, const float *src, float f, int w, int nr)
{
    int c = 0;
    for (; c + 16 <= w; c += 16) {
        float t[16];
        for (int q = 0; q < 16; q++)
            t[q] = src[c + q] * f;
        memcpy(d + c, t, sizeof t);
    }
    for (; c < w; c++)
        d[c] = src[c] * f;
    for (; c < nr; c++)
        d[c] = 0.0f;
}

static inline __attribute__((always_inline)) void scaled_pack(const scaled_b *sb, int p0, int kc, int j0, int nc,
                                                              int nr, float *dst)
{
    for (int j = 0; j < nc; j += nr) {
        int w = imin(nr, nc - j);
        float *s = dst + (size_t)j * kc;
        for (int p = 0; p < kc; p++)
            scaled_row(s + (size_t)p * nr, sb->b + (size_t)(p0 + p) * sb->ldb + j0 + j, sb->scale[p0 + p], w, nr);
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define TL_SCALED_PATHS 1
#include <immintrin.h>
/* In vectors by hand (GCC 12 moved scaled_row's 16-float block through the
 * stack and general registers for AVX2), and an input row at a time across
 * all the slivers: sliver by sliver, AVX2's 16-column slivers read one
 * cache line of each of the kc planes in turn, and the loads missed (the
 * stores after them had three quarters of the time: perf annotate). The
 * same one rounded product an element. */
__attribute__((target("avx2"))) static void scaled_pack_avx2(const scaled_b *sb, int p0, int kc, int j0, int nc,
                                                              int nr, float *dst)
{
    for (int p = 0; p < kc; p++) {
        const float *row = sb->b + (size_t)(p0 + p) * sb->ldb + j0;
        const float f = sb->scale[p0 + p];
        const __m256 vf = _mm256_set1_ps(f);
        for (int j = 0; j < nc; j += nr) {
            const int w = imin(nr, nc - j), w8 = w / 8 * 8;
            const float *src = row + j;
            float *d = dst + (size_t)j * kc + (size_t)p * nr;
            int c = 0;
            for (; c < w8; c += 8)
                _mm256_storeu_ps(d + c, _mm256_mul_ps(_mm256_loadu_ps(src + c), vf));
            for (; c < w; c++)
                d[c] = src[c] * f;
            for (; c < nr; c++)
                d[c] = 0.0f;
        }
    }
}
__attribute__((target("avx512f"))) static void scaled_pack_avx512(const scaled_b *sb, int p0, int kc, int j0,
                                                                   int nc, int nr, float *dst)
{
    scaled_pack(sb, p0, kc, j0, nc, nr, dst);
}
#endif

static void pack_b_scaled(const void *ctx, int p0, int kc, int j0, int nc, int nr, float *dst)
{
    const scaled_b *sb = ctx;
#if defined(TL_SCALED_PATHS)
    if (sb->level >= TL_SIMD_AVX512)
        scaled_pack_avx512(sb, p0, kc, j0, nc, nr, dst);
    else if (sb->level == TL_SIMD_AVX2)
        scaled_pack_avx2(sb, p0, kc, j0, nc, nr, dst);
    else
#endif
        scaled_pack(sb, p0, kc, j0, nc, nr, dst);
}

int tl_conv_fusable(const tl_kws *ws, const tl_conv_geom *g)
{
    if (tl_winograd_applies(ws, g)) /* the residual added as each tile is written out */
        return TL_FUSE_RESIDUAL;
    if (tl_conv_is_depthwise(g))
        return TL_FUSE_MEANS;
    return TL_FUSE_RESIDUAL | (g->groups == 1 && tl_conv_is_direct(g) ? TL_FUSE_IN_SCALE : 0);
}

void tl_conv_forward_packed(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *packed,
                            const float *bias, int act, float *y, int part, int nparts, float *scratch)
{
    tl_conv_forward_fused(ws, g, x, packed, bias, act, NULL, y, part, nparts, scratch);
}

void tl_conv_forward_fused(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *packed,
                           const float *bias, int act, const tl_conv_fuse *f, float *y, int part, int nparts,
                           float *scratch)
{
    static const tl_conv_fuse none;
    if (!f)
        f = &none;
    if (tl_winograd_applies(ws, g)) {
        tl_winograd_forward_images(ws, g, 1, x, packed, bias, act, f->residual, y, part, nparts, scratch);
        return;
    }
    if (!f->residual && tl_conv_stem_applies(ws, g)) {
        tl_conv_stem_forward(ws, g, 1, x, packed, bias, act, y, part, nparts, scratch);
        return;
    }
    size_t in_plane = (size_t)g->h * g->w, out_plane = (size_t)g->oh * g->ow;
    if (!f->means && tl_depthwise_rows_applies(ws, g, act)) {
        int c0 = (int)((long)g->cout * part / nparts), c1 = (int)((long)g->cout * (part + 1) / nparts);
        if (c0 < c1)
            tl_depthwise_forward_rows(ws, g, x, packed, bias, act, y, c0, c1, scratch);
        return;
    }
    if (tl_conv_is_depthwise(g) && tl_depthwise_blocked_applies(ws, g)) {
        /* whole groups of lanes to each part */
        const int lanes = ws->impl->dw_lanes, ng = (g->cout + lanes - 1) / lanes;
        int c0 = (int)((long)ng * part / nparts) * lanes, c1 = (int)((long)ng * (part + 1) / nparts) * lanes;
        c1 = c1 < g->cout ? c1 : g->cout;
        if (c0 < c1)
            tl_depthwise_forward_blocked(ws, g, x, packed, bias, act, y, f->means, c0, c1, scratch);
        return;
    }
    if (tl_conv_is_depthwise(g)) {
        int c0 = (int)((long)g->cout * part / nparts), c1 = (int)((long)g->cout * (part + 1) / nparts);
        if (c0 >= c1)
            return;
        tl_conv_geom sub = *g;
        sub.cin = sub.cout = sub.groups = c1 - c0;
        size_t taps = (size_t)g->kh * g->kw;
        tl_depthwise_forward_means(ws, &sub, x + c0 * in_plane, packed + c0 * taps, bias ? bias + c0 : NULL, act,
                                   y + c0 * out_plane, f->means ? f->means + c0 : NULL);
        return;
    }
    const int cin_g = g->cin / g->groups, cout_g = g->cout / g->groups, K = tl_conv_group_k(g);
    const size_t per = tl_gemm_packed_a_floats(ws, cout_g, K);
    for (int grp = 0; grp < g->groups; grp++) {
        const float *xg = x + (size_t)grp * cin_g * in_plane;
        float *yg = y + (size_t)grp * cout_g * out_plane;
        const float *bg = bias ? bias + (size_t)grp * cout_g : NULL;
        const float *rg = f->residual ? f->residual + (size_t)grp * cout_g * out_plane : NULL;
        if (tl_conv_is_direct(g) && f->in_scale && g->groups == 1) {
            scaled_b src = {xg, (int)in_plane, f->in_scale, ws->impl->level};
            tl_gemm_pa(ws, cout_g, (int)out_plane, K, packed + grp * per, pack_b_scaled, &src, yg, (int)out_plane,
                       bg, act, rg, part, nparts);
        } else if (tl_conv_is_direct(g)) {
            tl_plain_b src = {xg, (int)in_plane};
            tl_gemm_pa(ws, cout_g, (int)out_plane, K, packed + grp * per, tl_pack_b_plain, &src, yg, (int)out_plane,
                       bg, act, rg, part, nparts);
        } else {
            im2col_src src = {g, xg};
            tl_gemm_pa(ws, cout_g, (int)out_plane, K, packed + grp * per, pack_b_im2col, &src, yg, (int)out_plane,
                       bg, act, rg, part, nparts);
        }
    }
}

/* The im2col B of n images held channel-major (channels n * hw floats
 * apart): column j is pixel j % ohw of image j / ohw; each row of the
 * block is gathered image by image, then cut into slivers. */
typedef struct {
    const tl_conv_geom *g;
    const float *x; /* the group's first input channel, image 0 */
    int n;
} im2col_images;

static void pack_b_im2col_images(const void *ctx, int p0, int kc, int j0, int nc, int nr, float *dst)
{
    const im2col_images *src = ctx;
    const tl_conv_geom *g = src->g;
    const int ohw = g->oh * g->ow, ncpad = (nc + nr - 1) / nr * nr;
    const size_t hw = (size_t)g->h * g->w, cs = hw * (size_t)src->n, sliver = (size_t)kc * nr;
    float row[NC_MAX + 64];
    for (int j = nc; j < ncpad; j++)
        row[j] = 0.0f;
    for (int p = 0; p < kc; p++) {
        for (int j = 0; j < nc;) {
            int img = (j0 + j) / ohw, pix = (j0 + j) % ohw, len = imin(ohw - pix, nc - j);
            tl_im2col_gather_cs(g, src->x + (size_t)img * hw, cs, p0 + p, 1, pix, len, row + j, 0);
            j += len;
        }
        float *out = dst + (size_t)p * nr;
        for (int j = 0; j < ncpad; j += nr)
            memcpy(out + (size_t)(j / nr) * sliver, row + j, (size_t)nr * sizeof(float));
    }
}

int tl_conv_images_applies(const tl_kws *ws, const tl_conv_geom *g)
{
    (void)ws;
    return !tl_conv_is_depthwise(g);
}

void tl_conv_forward_images(tl_kws *ws, const tl_conv_geom *g, int n, const float *x, const float *packed,
                            const float *bias, int act, const float *residual, float *y, int part, int nparts,
                            float *scratch)
{
    if (tl_winograd_applies(ws, g)) {
        tl_winograd_forward_images(ws, g, n, x, packed, bias, act, residual, y, part, nparts, scratch);
        return;
    }
    if (!residual && tl_conv_stem_applies(ws, g)) {
        tl_conv_stem_forward(ws, g, n, x, packed, bias, act, y, part, nparts, scratch);
        return;
    }
    tl_conv_forward_gemm(ws, g, n, x, packed, bias, act, residual, y, part, nparts);
}

void tl_conv_forward_gemm(tl_kws *ws, const tl_conv_geom *g, int n, const float *x, const float *packed,
                          const float *bias, int act, const float *residual, float *y, int part, int nparts)
{
    const int cin_g = g->cin / g->groups, cout_g = g->cout / g->groups, K = tl_conv_group_k(g);
    const size_t per = tl_gemm_packed_a_floats(ws, cout_g, K);
    const size_t in_plane = (size_t)g->h * g->w * n, out_plane = (size_t)g->oh * g->ow * n;
    for (int grp = 0; grp < g->groups; grp++) {
        const float *xg = x + (size_t)grp * cin_g * in_plane;
        float *yg = y + (size_t)grp * cout_g * out_plane;
        const float *bg = bias ? bias + (size_t)grp * cout_g : NULL;
        const float *rg = residual ? residual + (size_t)grp * cout_g * out_plane : NULL;
        if (tl_conv_is_direct(g)) {
            tl_plain_b src = {xg, (int)in_plane};
            tl_gemm_pa(ws, cout_g, (int)out_plane, K, packed + grp * per, tl_pack_b_plain, &src, yg, (int)out_plane,
                       bg, act, rg, part, nparts);
        } else {
            im2col_images src = {g, xg, n};
            tl_gemm_pa(ws, cout_g, (int)out_plane, K, packed + grp * per, pack_b_im2col_images, &src, yg,
                       (int)out_plane, bg, act, rg, part, nparts);
        }
    }
}

/* ----------------------------------------------------------- backward data */

static int tile_cols(const tl_conv_geom *g)
{
    size_t ohw = (size_t)g->oh * g->ow;
    size_t cols = TILE_BUDGET / (size_t)tl_conv_group_k(g);
    cols = cols < 64 ? 64 : cols / 32 * 32;
    return (int)(cols < ohw ? cols : ohw);
}

size_t tl_conv_backward_scratch_floats(const tl_conv_geom *g)
{
    if (tl_conv_is_depthwise(g)) { /* padded copies for the weight gradient, or the flipped kernels */
        size_t a = tl_depthwise_weight_scratch_floats(g), b = tl_depthwise_backward_data_scratch_floats(g);
        return a > b ? a : b;
    }
    if (tl_conv_is_direct(g))
        return 0;
    return (size_t)tl_conv_group_k(g) * (size_t)tile_cols(g);
}

void tl_conv_backward_data(tl_kws *ws, const tl_conv_geom *g, const float *dy, const float *w, float *dx,
                           float *scratch)
{
    if (tl_conv_is_depthwise(g)) {
        tl_depthwise_backward_data(ws, g, dy, w, dx, scratch);
        return;
    }
    const int cin_g = g->cin / g->groups, cout_g = g->cout / g->groups;
    const int K = tl_conv_group_k(g), hw = g->h * g->w, ohw = g->oh * g->ow;
    if (tl_conv_is_direct(g)) {
        for (int grp = 0; grp < g->groups; grp++)
            tl_sgemm(ws, 1, 0, cin_g, hw, cout_g, 1.0f, w + (size_t)grp * cout_g * K, K,
                     dy + (size_t)grp * cout_g * ohw, ohw, 0.0f, dx + (size_t)grp * cin_g * hw, hw);
        return;
    }
    memset(dx, 0, sizeof(float) * (size_t)g->cin * hw);
    const int cols = tile_cols(g);
    for (int grp = 0; grp < g->groups; grp++) {
        const float *wg = w + (size_t)grp * cout_g * K, *dyg = dy + (size_t)grp * cout_g * ohw;
        float *dxg = dx + (size_t)grp * cin_g * hw;
        for (int c0 = 0; c0 < ohw; c0 += cols) {
            int nc = imin(ohw - c0, cols);
            tl_sgemm(ws, 1, 0, K, nc, cout_g, 1.0f, wg, K, dyg + c0, ohw, 0.0f, scratch, nc);
            tl_col2im_add(g, dxg, 0, K, c0, nc, scratch, (size_t)nc);
        }
    }
}

/* Within one training step the weights do not change, so W^T can be packed
 * once for the micro-kernel and shared by every image and tile of the data
 * gradient; otherwise each tile of a few dozen columns re-packs all of W^T
 * through strided reads, which cost about as much as the product itself. */
int tl_conv_backward_packable(const tl_conv_geom *g) { return g->groups == 1 && !tl_conv_is_depthwise(g); }

/* The data gradient of a 3x3 stride-1 layer is itself a 3x3 stride-1
 * convolution: of dy, with each kernel rotated by 180 degrees, input and
 * output channels swapped and padding 2 - p on each side (p <= 2), which
 * gives back the input's size. With a workspace that allows it and a map
 * large enough (tl_winograd_applies on that convolution), it runs as
 * Winograd's forward pass; gt receives its geometry. */
static int backward_winograd(const tl_kws *ws, const tl_conv_geom *g, tl_conv_geom *gt)
{
    if (g->kh != 3 || g->kw != 3 || g->stride_h != 1 || g->stride_w != 1 || g->dil_h != 1 || g->dil_w != 1 ||
        g->groups != 1 || g->pad_t > 2 || g->pad_l > 2 || g->pad_b > 2 || g->pad_r > 2)
        return 0;
    tl_conv_geom t = {.cin = g->cout, .h = g->oh, .w = g->ow, .cout = g->cin, .kh = 3, .kw = 3, .stride_h = 1,
                      .stride_w = 1, .pad_t = 2 - g->pad_t, .pad_l = 2 - g->pad_l, .pad_b = 2 - g->pad_b,
                      .pad_r = 2 - g->pad_r, .dil_h = 1, .dil_w = 1, .groups = 1};
    tl_conv_geom_finish(&t);
    if (t.oh != g->h || t.ow != g->w || !tl_winograd_applies(ws, &t))
        return 0;
    *gt = t;
    return 1;
}

size_t tl_conv_backward_packed_floats(const tl_kws *ws, const tl_conv_geom *g)
{
    tl_conv_geom gt;
    if (backward_winograd(ws, g, &gt))
        return tl_winograd_packed_floats(ws, &gt);
    return tl_gemm_packed_a_floats(ws, tl_conv_group_k(g), g->cout);
}

size_t tl_conv_backward_packed_scratch_floats(const tl_kws *ws, const tl_conv_geom *g)
{
    tl_conv_geom gt;
    size_t direct = tl_conv_backward_scratch_floats(g);
    if (!backward_winograd(ws, g, &gt))
        return direct;
    size_t wino = tl_winograd_scratch_floats(ws, &gt);
    return wino > direct ? wino : direct;
}

/* The layout of tl_gemm_pack_a for A = W^T (K x cout): per K-block of kc
 * output channels, slivers of mr rows of W^T; slivers shared out by part. */
void tl_conv_backward_pack(const tl_kws *ws, const tl_conv_geom *g, const float *w, float *packed, int part,
                           int nparts)
{
    tl_conv_geom gt;
    if (backward_winograd(ws, g, &gt)) {
        tl_winograd_pack_flipped(ws, &gt, w, packed, part, nparts);
        return;
    }
    const int mr = ws->impl->mr, KC = ws->impl->kc, M = tl_conv_group_k(g), K = g->cout;
    const int slivers = (M + mr - 1) / mr, Mpad = slivers * mr;
    const int s0 = (int)((long)slivers * part / nparts), s1 = (int)((long)slivers * (part + 1) / nparts);
    for (int pc = 0; pc < K; pc += KC) {
        int kc = imin(K - pc, KC);
        for (int sl = s0; sl < s1; sl++) {
            int ir = sl * mr, m = imin(M - ir, mr);
            float *dst = packed + (size_t)pc * Mpad + (size_t)ir * kc;
            for (int p = 0; p < kc; p++) {
                const float *src = w + (size_t)(pc + p) * M + ir;
                float *d = dst + (size_t)p * mr;
                memcpy(d, src, sizeof(float) * m);
                for (int r = m; r < mr; r++)
                    d[r] = 0.0f;
            }
        }
    }
}

void tl_conv_backward_data_packed(tl_kws *ws, const tl_conv_geom *g, const float *dy, const float *packed,
                                  float *dx, float *scratch)
{
    tl_conv_geom gt;
    if (backward_winograd(ws, g, &gt)) {
        tl_winograd_forward(ws, &gt, dy, packed, NULL, TL_ACT_NONE, dx, 0, 1, scratch);
        return;
    }
    const int K = tl_conv_group_k(g), hw = g->h * g->w, ohw = g->oh * g->ow;
    if (tl_conv_is_direct(g)) {
        tl_plain_b b = {dy, ohw};
        tl_gemm_pa(ws, g->cin, hw, g->cout, packed, tl_pack_b_plain, &b, dx, hw, NULL, TL_ACT_NONE, NULL, 0, 1);
        return;
    }
    memset(dx, 0, sizeof(float) * (size_t)g->cin * hw);
    const int cols = tile_cols(g);
    for (int c0 = 0; c0 < ohw; c0 += cols) {
        int nc = imin(ohw - c0, cols);
        tl_plain_b b = {dy + c0, ohw};
        tl_gemm_pa(ws, K, nc, g->cout, packed, tl_pack_b_plain, &b, scratch, nc, NULL, TL_ACT_NONE, NULL, 0, 1);
        tl_col2im_add(g, dx, 0, K, c0, nc, scratch, (size_t)nc);
    }
}

/* --------------------------------------------------------- backward weight */

void tl_conv_backward_weight(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *dy, float *dw,
                             float *db, int co0, int co1, float *scratch)
{
    const int ohw = g->oh * g->ow;
    if (co0 < 0)
        co0 = 0;
    if (co1 > g->cout)
        co1 = g->cout;
    if (db)
        for (int co = co0; co < co1; co++) {
            const float *r = dy + (size_t)co * ohw;
            double s = 0;
            for (int i = 0; i < ohw; i++)
                s += r[i];
            db[co] += (float)s;
        }
    if (tl_conv_is_depthwise(g)) {
        tl_depthwise_backward_weight(g, x, dy, dw, co0, co1, scratch);
        return;
    }
    const int cin_g = g->cin / g->groups, cout_g = g->cout / g->groups;
    const int K = tl_conv_group_k(g), hw = g->h * g->w;
    const int direct = tl_conv_is_direct(g), cols = direct ? ohw : tile_cols(g);
    for (int grp = co0 / cout_g; grp < g->groups && grp * cout_g < co1; grp++) {
        int r0 = grp * cout_g > co0 ? grp * cout_g : co0;
        int r1 = (grp + 1) * cout_g < co1 ? (grp + 1) * cout_g : co1;
        const float *xg = x + (size_t)grp * cin_g * hw;
        for (int c0 = 0; c0 < ohw; c0 += cols) {
            int nc = imin(ohw - c0, cols);
            const float *col = xg + c0;
            int ldcol = hw;
            if (!direct) {
                tl_im2col_gather(g, xg, 0, K, c0, nc, scratch, (size_t)nc);
                col = scratch;
                ldcol = nc;
            }
            tl_sgemm(ws, 0, 1, r1 - r0, K, nc, 1.0f, dy + (size_t)r0 * ohw + c0, ohw, col, ldcol, 1.0f,
                     dw + (size_t)r0 * K, K);
        }
    }
}

void tl_conv_backward_bias(const tl_conv_geom *g, const float *dy, float *db, int co0, int co1)
{
    size_t ohw = (size_t)g->oh * g->ow;
    for (int c = co0; c < co1; c++)
        for (size_t k = 0; k < ohw; k++)
            db[c] += dy[c * ohw + k];
}

/* dst[c * ldd + r] = src[r * lds + c] for rows x cols, by 4 x 4 SSE2
 * transposes where it can (one scalar store per float cost as much as a
 * twentieth of a MobileNetV2 step); a plain copy, so exact. */
static void transpose(const float *src, size_t lds, int rows, int cols, float *dst, size_t ldd)
{
    int r = 0;
#if defined(__SSE2__)
    for (; r + 4 <= rows; r += 4) {
        const float *s0 = src + (size_t)r * lds;
        int c = 0;
        for (; c + 4 <= cols; c += 4) {
            __m128 a = _mm_loadu_ps(s0 + c), b = _mm_loadu_ps(s0 + lds + c);
            __m128 e = _mm_loadu_ps(s0 + 2 * lds + c), f = _mm_loadu_ps(s0 + 3 * lds + c);
            _MM_TRANSPOSE4_PS(a, b, e, f);
            float *d = dst + (size_t)c * ldd + r;
            _mm_storeu_ps(d, a);
            _mm_storeu_ps(d + ldd, b);
            _mm_storeu_ps(d + 2 * ldd, e);
            _mm_storeu_ps(d + 3 * ldd, f);
        }
        for (; c < cols; c++)
            for (int q = 0; q < 4; q++)
                dst[(size_t)c * ldd + r + q] = s0[(size_t)q * lds + c];
    }
#endif
    for (; r < rows; r++)
        for (int c = 0; c < cols; c++)
            dst[(size_t)c * ldd + r] = src[(size_t)r * lds + c];
}

/* Weight gradient of an ungrouped layer over several images: columns are
 * (image, pixel) pairs, cut into tiles that may span images, so layers
 * with small maps still give the GEMM long inner products. The result is
 * kept transposed (K x cout): the GEMM's A is then the im2col tile as it
 * is built (or the input itself for 1x1 layers) and its B the transposed
 * dy tile, both packed without transposition. */
#define WGRAD_BUDGET (1 << 19)
#define WGRAD_MAX_COLS 384

static int wgrad_cols(const tl_conv_geom *g)
{
    size_t cols = WGRAD_BUDGET / ((size_t)tl_conv_group_k(g) + (size_t)g->cout);
    if (cols > WGRAD_MAX_COLS)
        cols = WGRAD_MAX_COLS;
    cols = cols / 16 * 16;
    return cols < 16 ? 16 : (int)cols;
}

size_t tl_conv_wgrad_scratch_floats(const tl_conv_geom *g)
{
    size_t direct = ((size_t)tl_conv_group_k(g) + (size_t)g->cout) * (size_t)wgrad_cols(g);
    size_t wino = tl_wgrad_winograd_shape(g) ? tl_wgrad_winograd_scratch_floats(g) : 0;
    return wino > direct ? wino : direct;
}

void tl_conv_wgrad_images(tl_kws *ws, const tl_conv_geom *g, int n, const float *x, const float *dy, float *dwt,
                          int accumulate, double *db, float *scratch)
{
    const int ohw = g->oh * g->ow, hw = g->h * g->w, cout = g->cout, K = tl_conv_group_k(g);
    const int cols = wgrad_cols(g), direct = tl_conv_is_direct(g);
    const size_t in_size = (size_t)g->cin * hw, out_size = (size_t)cout * ohw;
    float *col = scratch, *dyt = scratch + (size_t)K * cols;
    float beta = accumulate ? 1.0f : 0.0f;
    if (db)
        for (int b = 0; b < n; b++)
            for (int co = 0; co < cout; co++) {
                const float *r = dy + b * out_size + (size_t)co * ohw;
                double s = 0;
                for (int i = 0; i < ohw; i++)
                    s += r[i];
                db[co] += s;
            }
    if (tl_wgrad_winograd_applies(ws, g)) {
        tl_wgrad_winograd(ws, g, n, x, dy, dwt, accumulate, scratch);
        return;
    }
    const int64_t total = (int64_t)n * ohw;
    if (total == 0 && !accumulate)
        memset(dwt, 0, sizeof(float) * (size_t)K * cout);
    for (int64_t q0 = 0; q0 < total; q0 += cols) {
        int nc = (int)(total - q0 < cols ? total - q0 : cols);
        int b = (int)(q0 / ohw), p = (int)(q0 % ohw);
        const float *a = col;
        int lda = nc;
        if (direct && p + nc <= ohw) {
            a = x + b * in_size + p;
            lda = hw;
        }
        for (int done = 0; done < nc;) {
            int bb = (int)((q0 + done) / ohw), pp = (int)((q0 + done) % ohw);
            int len = imin(ohw - pp, nc - done);
            const float *xb = x + bb * in_size, *dyb = dy + bb * out_size + pp;
            if (a == col) {
                if (direct)
                    for (int ci = 0; ci < g->cin; ci++)
                        memcpy(col + (size_t)ci * nc + done, xb + (size_t)ci * hw + pp, sizeof(float) * len);
                else
                    tl_im2col_gather(g, xb, 0, K, pp, len, col + done, (size_t)nc);
            }
            /* dy tile transposed, in blocks of 64 columns (four whole lines
             * of each of the cout rows, which lie a plane apart; blocks of
             * 16 read one line a row and waited more on the misses) */
            for (int i0 = 0; i0 < len; i0 += 64) {
                int i1 = imin(i0 + 64, len);
                transpose(dyb + i0, (size_t)ohw, cout, i1 - i0, dyt + (size_t)(done + i0) * cout, (size_t)cout);
            }
            done += len;
        }
        tl_sgemm(ws, 0, 0, K, cout, nc, 1.0f, a, lda, dyt, cout, beta, dwt, cout);
        beta = 1.0f;
    }
}
