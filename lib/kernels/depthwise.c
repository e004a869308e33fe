/* Depthwise convolution (groups == cin == cout), forward and backward.
 * Forward: one channel plane at a time through the workspace's SIMD path
 * (depthwise_avx2.c, depthwise_avx512.c); the borders and the portable path
 * share the scalar pieces here. Backward: no GEMM (K = kh*kw would be
 * mostly packing): stride-1 data gradients run the forward plane kernel on
 * the flipped kernel, other strides per-tap loops; weight gradients are
 * per-tap dot products over padded copies. */
#include "conv_internal.h"
#include "act_internal.h"
#include "simd.h"

#include <stdint.h>
#include <string.h>

/* Fixed 16-wide blocks over restrict pointers: the shape GCC vectorises at
 * -O2 (its cheap cost model adds no alias checks or epilogues itself). */
#define BLOCK 16

/* Narrowest output map the AVX2 plane kernel takes */
#define ROWS_MIN_OW 14

float tl_dw_point(const tl_conv_geom *g, const float *x, const float *w, int oy, int ox)
{
    float s = 0.0f;
    for (int ky = 0; ky < g->kh; ky++) {
        int iy = oy * g->stride_h - g->pad_t + ky * g->dil_h;
        if (iy < 0 || iy >= g->h)
            continue;
        for (int kx = 0; kx < g->kw; kx++) {
            int ix = ox * g->stride_w - g->pad_l + kx * g->dil_w;
            if (ix >= 0 && ix < g->w)
                s += w[ky * g->kw + kx] * x[(size_t)iy * g->w + ix];
        }
    }
    return s;
}

void tl_dw_interior(const tl_conv_geom *g, int *ox_lo, int *ox_hi)
{
    int lo = tl_clampi(tl_first_inside(-g->pad_l, g->stride_w), 0, g->ow);
    int hi = tl_clampi(tl_end_inside(-g->pad_l + (g->kw - 1) * g->dil_w, g->w - 1, g->stride_w), 0, g->ow);
    *ox_lo = lo;
    *ox_hi = hi > lo ? hi : lo;
}

/* Each tap is a strided axpy over the output columns that see the input. */
void tl_dw_plane_scalar(const tl_conv_geom *g, const float *x, const float *w, float bias, int act,
                        float *y)
{
    const int s = g->stride_w;
    for (int oy = 0; oy < g->oh; oy++) {
        float *yr = y + (size_t)oy * g->ow;
        for (int ox = 0; ox < g->ow; ox++)
            yr[ox] = bias;
        for (int ky = 0; ky < g->kh; ky++) {
            int iy = oy * g->stride_h - g->pad_t + ky * g->dil_h;
            if (iy < 0 || iy >= g->h)
                continue;
            const float *xr = x + (size_t)iy * g->w;
            for (int kx = 0; kx < g->kw; kx++) {
                int off = kx * g->dil_w - g->pad_l;
                int lo = tl_clampi(tl_first_inside(off, s), 0, g->ow);
                int hi = tl_clampi(tl_end_inside(off, g->w - 1, s), 0, g->ow);
                float wv = w[ky * g->kw + kx];
                if (s == 1)
                    for (int ox = lo; ox < hi; ox++)
                        yr[ox] += wv * xr[ox + off];
                else
                    for (int ox = lo; ox < hi; ox++)
                        yr[ox] += wv * xr[ox * s + off];
            }
        }
        if (act == TL_ACT_RELU || act == TL_ACT_RELU6)
            for (int ox = 0; ox < g->ow; ox++)
                yr[ox] = tl_clamp_act(act, yr[ox]);
    }
}

/* Mean of n floats in 16 running lanes, then the lanes folded pairwise:
 * fixed blocks GCC vectorises with any instruction set, so every path
 * gets the same bits (and 16 chains, not one, of dependent adds). */
static inline __attribute__((always_inline)) float plane_mean_body(const float *restrict x, size_t n)
{
    float acc[BLOCK] = {0};
    size_t i = 0;
    for (; i + BLOCK <= n; i += BLOCK)
        for (int j = 0; j < BLOCK; j++)
            acc[j] += x[i + j];
    for (int j = 0; i < n; i++, j++)
        acc[j] += x[i];
    for (int half = BLOCK / 2; half >= 1; half /= 2)
        for (int j = 0; j < half; j++)
            acc[j] += acc[j + half];
    return acc[0] / (float)n;
}

static float plane_mean_sse(const float *x, size_t n) { return plane_mean_body(x, n); }
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2"))) static float plane_mean_avx2(const float *x, size_t n)
{
    return plane_mean_body(x, n);
}
__attribute__((target("avx512f"))) static float plane_mean_avx512(const float *x, size_t n)
{
    return plane_mean_body(x, n);
}
#endif

/* level: the workspace's TL_SIMD_* (the width only, not the bits) */
static float plane_mean(int level, const float *x, size_t n)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (level >= TL_SIMD_AVX512)
        return plane_mean_avx512(x, n);
    if (level == TL_SIMD_AVX2)
        return plane_mean_avx2(x, n);
#endif
    (void)level;
    return plane_mean_sse(x, n);
}

void tl_depthwise_forward_means(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *w,
                                const float *bias, int act, float *y, float *means)
{
    size_t in_plane = (size_t)g->h * g->w, out_plane = (size_t)g->oh * g->ow;
    size_t taps = (size_t)g->kh * g->kw;
    int post = act != TL_ACT_NONE && act != TL_ACT_RELU && act != TL_ACT_RELU6;
    for (int c = 0; c < g->cout; c++) {
        float *yc = y + c * out_plane;
        ws->impl->dw_plane(g, x + c * in_plane, w + c * taps, bias ? bias[c] : 0.0f, act, yc);
        if (post)
            tl_activation(act, yc, out_plane);
        if (means) /* the plane is still in cache */
            means[c] = plane_mean(ws->impl->level, yc, out_plane);
    }
}

/* ------------------------------------------- channel-blocked forward */

/* Padded input rows that n output rows read. */
static int band_rows(const tl_conv_geom *g, int n) { return (n - 1) * g->stride_h + (g->kh - 1) * g->dil_h + 1; }

/* A band's padded input within this many bytes stays in L2 beside the
 * rest (the rows overlap by kh - 1 from one band to the next). */
#define BAND_BYTES (96 * 1024)

/* The band, and the floats of each part of the scratch. */
static tl_dw_group_layout band_of(const tl_conv_geom *g, int lanes, size_t *nxs, size_t *nys, size_t *nw)
{
    tl_dw_group_layout L = {0};
    L.cols = (g->ow - 1) * g->stride_w + (g->kw - 1) * g->dil_w + 1;
    size_t row = (size_t)L.cols * lanes * sizeof(float);
    L.band = g->oh;
    while (L.band > 1 && band_rows(g, L.band) * row > BAND_BYTES)
        L.band--;
    L.rows = band_rows(g, L.band);
    *nxs = (size_t)lanes * L.rows * L.cols;
    *nys = (size_t)lanes * (((size_t)L.band * g->ow + 15) / 16 * 16);
    *nw = (size_t)lanes * g->kh * g->kw;
    return L;
}

tl_dw_group_layout tl_dw_group_layout_of(const tl_conv_geom *g, int lanes, float *scratch)
{
    size_t nxs, nys, nw;
    tl_dw_group_layout L = band_of(g, lanes, &nxs, &nys, &nw);
    L.xs = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    L.ys = L.xs + nxs;
    L.w = L.ys + nys;
    L.bias = L.w + nw;
    return L;
}

size_t tl_dw_group_scratch_floats(const tl_conv_geom *g, int lanes)
{
    size_t nxs, nys, nw;
    band_of(g, lanes, &nxs, &nys, &nw);
    return 16 + nxs + nys + nw + (size_t)lanes;
}

void tl_dw_group_setup(const tl_conv_geom *g, const tl_dw_group_layout *L, int lanes, int nc, const float *w,
                       const float *bias)
{
    const int taps = g->kh * g->kw;
    for (int t = 0; t < taps; t++)
        for (int c = 0; c < lanes; c++)
            L->w[t * lanes + c] = c < nc ? w[(size_t)c * taps + t] : 0.0f;
    for (int c = 0; c < lanes; c++)
        L->bias[c] = c < nc && bias ? bias[c] : 0.0f;
}

void tl_dw_band_pad(const tl_conv_geom *g, const tl_dw_group_layout *L, int lanes, int oy0, int oy1, int *iy0,
                    int *iy1, int *off)
{
    const int first = oy0 * g->stride_h - g->pad_t, rows = band_rows(g, oy1 - oy0);
    const size_t row = (size_t)lanes * L->cols;
    const int left = tl_clampi(g->pad_l, 0, L->cols), right = tl_clampi(g->pad_l + g->w, 0, L->cols);
    for (int r = 0; r < rows; r++) {
        float *xr = L->xs + r * row;
        int iy = first + r;
        if (iy < 0 || iy >= g->h) {
            memset(xr, 0, sizeof(float) * row);
            continue;
        }
        memset(xr, 0, sizeof(float) * lanes * left);
        memset(xr + (size_t)lanes * right, 0, sizeof(float) * lanes * (L->cols - right));
    }
    *iy0 = tl_clampi(first, 0, g->h);
    *iy1 = tl_clampi(first + rows, *iy0, g->h);
    *off = -first;
}

int tl_depthwise_blocked_applies(const tl_kws *ws, const tl_conv_geom *g)
{
    return ws->impl->dw_group && tl_conv_is_depthwise(g);
}

size_t tl_depthwise_blocked_scratch_floats(const tl_kws *ws, const tl_conv_geom *g)
{
    return tl_dw_group_scratch_floats(g, ws->impl->dw_lanes);
}

void tl_depthwise_forward_blocked(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *w,
                                  const float *bias, int act, float *y, float *means, int c0, int c1,
                                  float *scratch)
{
    const size_t in_plane = (size_t)g->h * g->w, out_plane = (size_t)g->oh * g->ow;
    const size_t taps = (size_t)g->kh * g->kw;
    const int lanes = ws->impl->dw_lanes;
    /* the activation and the means on the blocked outputs, band by band
     * while they are in L1/L2, not on the planes afterwards */
    for (int c = c0; c < c1; c += lanes) {
        int nc = c1 - c < lanes ? c1 - c : lanes;
        ws->impl->dw_group(g, x + c * in_plane, nc, w + c * taps, bias ? bias + c : NULL, act, y + c * out_plane,
                           means ? means + c : NULL, scratch);
    }
}

/* AVX2 only: its blocked kernel spends as long moving 8 planes into the
 * lanes and back as on the 3x3 sums (16-lane AVX-512 keeps its own). Maps
 * of 14 columns and more (MobileNetV2's 112..14): narrower rows leave
 * lanes idle. Relu/relu6 or none, no channel means. */
int tl_depthwise_rows_applies(const tl_kws *ws, const tl_conv_geom *g, int act)
{
#if defined(__x86_64__)
    return ws->impl == &tl_simd_avx2 && tl_conv_is_depthwise(g) && g->kh == 3 && g->kw == 3 && g->stride_h == 1 &&
           g->stride_w == 1 && g->dil_h == 1 && g->dil_w == 1 && g->ow >= ROWS_MIN_OW &&
           (act == TL_ACT_NONE || act == TL_ACT_RELU || act == TL_ACT_RELU6);
#else
    (void)ws, (void)g, (void)act;
    return 0;
#endif
}

size_t tl_depthwise_rows_scratch_floats(const tl_conv_geom *g)
{
#if defined(__x86_64__)
    return tl_dw_rows_avx2_scratch_floats(g);
#else
    (void)g;
    return 0;
#endif
}

void tl_depthwise_forward_rows(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *w, const float *bias,
                               int act, float *y, int c0, int c1, float *scratch)
{
    (void)ws;
#if defined(__x86_64__)
    tl_dw_rows_avx2(g, x, w, bias, act, y, c0, c1, scratch);
#else
    (void)g, (void)x, (void)w, (void)bias, (void)act, (void)y, (void)c0, (void)c1, (void)scratch;
#endif
}

void tl_dw_means_take(float *acc, int lanes, int nc, size_t n, float *means)
{
    for (int half = BLOCK / 2; half >= 1; half /= 2)
        for (int j = 0; j < half; j++)
            for (int c = 0; c < lanes; c++)
                acc[j * lanes + c] += acc[(j + half) * lanes + c];
    for (int c = 0; c < nc; c++)
        means[c] = acc[c] / (float)n;
}

void tl_depthwise_forward(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *w,
                          const float *bias, int act, float *y)
{
    tl_depthwise_forward_means(ws, g, x, w, bias, act, y, NULL);
}

/* ----------------------------------------------------------- backward data */

static void axpy(float *restrict y, const float *restrict x, float a, size_t n)
{
    size_t i = 0;
    for (; i + BLOCK <= n; i += BLOCK)
        for (size_t j = i; j < i + BLOCK; j++)
            y[j] += a * x[j];
    for (; i < n; i++)
        y[i] += a * x[i];
}

/* With stride 1 the transposed depthwise convolution is a depthwise
 * convolution of dy with the flipped kernel and complementary padding, so
 * the forward SIMD plane kernel does the work. */
static int transposed_geom(const tl_conv_geom *g, tl_conv_geom *t)
{
    if (g->stride_h != 1 || g->stride_w != 1)
        return 0;
    *t = *g;
    t->h = g->oh, t->w = g->ow, t->oh = g->h, t->ow = g->w;
    t->pad_t = (g->kh - 1) * g->dil_h - g->pad_t, t->pad_b = (g->kh - 1) * g->dil_h - g->pad_b;
    t->pad_l = (g->kw - 1) * g->dil_w - g->pad_l, t->pad_r = (g->kw - 1) * g->dil_w - g->pad_r;
    return t->pad_t >= 0 && t->pad_b >= 0 && t->pad_l >= 0 && t->pad_r >= 0;
}

/* Strided layers, one dx row at a time: the row's columns split into their
 * stride phases in row (each phase contiguous), every tap's contribution
 * added there as one contiguous axpy, then the phases put back in place.
 * Each dx element gets the contributions of the per-tap scatter it
 * replaces (ox * s + off += w * dy, scalar) in the same order (output
 * rows up, then kx), from +0: the same bits. */
static void strided_data(const tl_conv_geom *g, const float *dy, const float *w, float *dx, float *row)
{
    const size_t in_plane = (size_t)g->h * g->w, out_plane = (size_t)g->oh * g->ow, taps = (size_t)g->kh * g->kw;
    const int s = g->stride_w, sh = g->stride_h, qn = (g->w + s - 1) / s;
    /* per kx: the dy columns inside the row, and where they land in the phases */
    enum { KX_MAX = 16 };
    int kx_lo[KX_MAX], kx_n[KX_MAX], kx_at[KX_MAX];
    const int kw = g->kw < KX_MAX ? g->kw : KX_MAX;
    for (int kx = 0; kx < kw; kx++) {
        int off = kx * g->dil_w - g->pad_l;
        int lo = tl_clampi(tl_first_inside(off, s), 0, g->ow);
        int hi = tl_clampi(tl_end_inside(off, g->w - 1, s), lo, g->ow);
        int ph = (off % s + s) % s;
        kx_lo[kx] = lo;
        kx_n[kx] = hi - lo;
        kx_at[kx] = ph * qn + lo + (off - ph) / s;
    }
    for (int c = 0; c < g->cin; c++) {
        const float *dyc = dy + c * out_plane, *wc = w + c * taps;
        for (int iy = 0; iy < g->h; iy++) {
            memset(row, 0, sizeof(float) * (size_t)s * qn);
            /* output rows oy with iy = oy * sh - pad_t + ky * dil_h, 0 <= ky < kh */
            int t = iy + g->pad_t, lo_t = t - (g->kh - 1) * g->dil_h;
            int oy0 = lo_t <= 0 ? 0 : (lo_t + sh - 1) / sh, oy1 = t < 0 ? -1 : t / sh;
            if (oy1 > g->oh - 1)
                oy1 = g->oh - 1;
            for (int oy = oy0; oy <= oy1; oy++) {
                int r = t - oy * sh;
                if (r % g->dil_h)
                    continue;
                const int ky = r / g->dil_h;
                const float *dyr = dyc + (size_t)oy * g->ow;
                for (int kx = 0; kx < kw; kx++)
                    axpy(row + kx_at[kx], dyr + kx_lo[kx], wc[ky * g->kw + kx], (size_t)kx_n[kx]);
                for (int kx = kw; kx < g->kw; kx++) { /* wider kernels than any network's */
                    int off = kx * g->dil_w - g->pad_l;
                    int lo = tl_clampi(tl_first_inside(off, s), 0, g->ow);
                    int hi = tl_clampi(tl_end_inside(off, g->w - 1, s), lo, g->ow);
                    int ph = (off % s + s) % s;
                    axpy(row + (size_t)ph * qn + lo + (off - ph) / s, dyr + lo, wc[ky * g->kw + kx],
                         (size_t)(hi - lo));
                }
            }
            /* back in column order: stores in sequence (the misses on dx
             * are most of this function's time) */
            float *xr = dx + c * in_plane + (size_t)iy * g->w;
            if (s == 2) {
                const float *e = row, *o = row + qn;
                int q = 0;
                for (; 2 * q + 1 < g->w; q++) {
                    xr[2 * q] = e[q];
                    xr[2 * q + 1] = o[q];
                }
                if (2 * q < g->w)
                    xr[2 * q] = e[q];
            } else {
                for (int ix = 0; ix < g->w; ix++)
                    xr[ix] = row[(size_t)(ix % s) * qn + ix / s];
            }
        }
    }
}

/* Scratch of the data gradient: the flipped kernels, of every channel when
 * the transposed convolution runs channel-blocked (then beside the blocked
 * kernel's scratch, for the widest path's lanes: 16, or AVX2's 8). */
size_t tl_depthwise_backward_data_scratch_floats(const tl_conv_geom *g)
{
    const size_t taps = (size_t)g->kh * g->kw;
    tl_conv_geom t;
    if (!transposed_geom(g, &t)) {
        size_t row = (size_t)g->stride_w * (size_t)((g->w + g->stride_w - 1) / g->stride_w);
        return row > taps ? row : taps;
    }
    size_t a = tl_dw_group_scratch_floats(&t, 16), b = tl_dw_group_scratch_floats(&t, 8);
    return (size_t)g->cin * taps + (a > b ? a : b);
}

void tl_depthwise_backward_data(tl_kws *ws, const tl_conv_geom *g, const float *dy, const float *w, float *dx,
                                float *flipped)
{
    const size_t in_plane = (size_t)g->h * g->w, out_plane = (size_t)g->oh * g->ow, taps = (size_t)g->kh * g->kw;
    const int s = g->stride_w;
    tl_conv_geom t;
    if (transposed_geom(g, &t) && ws->impl->dw_group) {
        /* as the forward pass runs: channels in the path's vector lanes,
         * which took the per-plane kernel's time down by half or more */
        const int lanes = ws->impl->dw_lanes;
        float *rest = flipped + (size_t)g->cin * taps;
        for (int c = 0; c < g->cin; c++)
            for (size_t i = 0; i < taps; i++)
                flipped[c * taps + i] = w[c * taps + taps - 1 - i];
        for (int c = 0; c < g->cin; c += lanes) {
            int nc = g->cin - c < lanes ? g->cin - c : lanes;
            ws->impl->dw_group(&t, dy + c * out_plane, nc, flipped + c * taps, NULL, TL_ACT_NONE, dx + c * in_plane,
                               NULL, rest);
        }
        return;
    }
    if (transposed_geom(g, &t)) {
        for (int c = 0; c < g->cin; c++) {
            for (size_t i = 0; i < taps; i++)
                flipped[i] = w[c * taps + taps - 1 - i];
            ws->impl->dw_plane(&t, dy + c * out_plane, flipped, 0.0f, TL_ACT_NONE, dx + c * in_plane);
        }
        return;
    }
    if (s > 1) {
        strided_data(g, dy, w, dx, flipped);
        return;
    }
    memset(dx, 0, sizeof(float) * in_plane * g->cin);
    for (int c = 0; c < g->cin; c++) {
        float *dxc = dx + c * in_plane;
        const float *dyc = dy + c * out_plane, *wc = w + c * taps;
        for (int oy = 0; oy < g->oh; oy++) {
            const float *dyr = dyc + (size_t)oy * g->ow;
            for (int ky = 0; ky < g->kh; ky++) {
                int iy = oy * g->stride_h - g->pad_t + ky * g->dil_h;
                if (iy < 0 || iy >= g->h)
                    continue;
                for (int kx = 0; kx < g->kw; kx++) {
                    int off = kx * g->dil_w - g->pad_l;
                    int lo = tl_clampi(tl_first_inside(off, s), 0, g->ow);
                    int hi = tl_clampi(tl_end_inside(off, g->w - 1, s), lo, g->ow);
                    float wv = wc[ky * g->kw + kx], *xr = dxc + (size_t)iy * g->w;
                    if (s == 1)
                        axpy(xr + lo + off, dyr + lo, wv, (size_t)(hi - lo));
                    else
                        for (int ox = lo; ox < hi; ox++)
                            xr[ox * s + off] += wv * dyr[ox];
                }
            }
        }
    }
}

/* --------------------------------------------------------- backward weight */

/* Depthwise weight gradient: each tap is one dot product of dy with a
 * strided window of the zero-padded input. The padded input is stored per
 * row as `stride` phases (columns c with c % stride == phase, in order), so
 * every tap reads contiguous floats; dy rows are padded with zeros to a
 * multiple of 16, so every dot product runs in whole 16-lane blocks. */
#define DW_LANES 16

typedef struct {
    int ow16, pw, rows; /* padded dy row, phase width, padded input rows */
} dw_layout;

static dw_layout dw_layout_of(const tl_conv_geom *g)
{
    dw_layout L;
    int s = g->stride_w, wp = g->w + g->pad_l + g->pad_r, reach = (g->kw - 1) * g->dil_w / s;
    L.ow16 = (g->ow + DW_LANES - 1) / DW_LANES * DW_LANES;
    L.pw = (wp + s - 1) / s;
    if (L.pw < L.ow16 + reach)
        L.pw = L.ow16 + reach;
    L.rows = (g->oh - 1) * g->stride_h + (g->kh - 1) * g->dil_h + 1;
    return L;
}

size_t tl_depthwise_weight_scratch_floats(const tl_conv_geom *g)
{
    dw_layout L = dw_layout_of(g);
    return (size_t)g->oh * L.ow16 + (size_t)L.rows * g->stride_w * L.pw;
}

static inline __attribute__((always_inline)) double tap_dot(const float *restrict dyp, const float *restrict x, int rows, int ow16, size_t xstride)
{
    float acc[DW_LANES] = {0};
    for (int r = 0; r < rows; r++) {
        const float *restrict d = dyp + (size_t)r * ow16, *restrict xr = x + (size_t)r * xstride;
        for (int i = 0; i < ow16; i += DW_LANES)
            for (int j = 0; j < DW_LANES; j++)
                acc[j] += d[i + j] * xr[i + j];
    }
    double s = 0;
    for (int j = 0; j < DW_LANES; j++)
        s += acc[j];
    return s;
}

/* Three taps' dot products in one pass over dy: each keeps its own 16 lanes,
 * added in tap_dot's order (rows, then blocks), so the same bits as three
 * tap_dot calls; dy is read once for the three and their three add chains
 * run side by side, where one tap's chain waited on its own adds (one
 * register of 16 lanes on AVX-512). */
static inline __attribute__((always_inline)) void tap_dot3(const float *restrict dyp, const float *restrict x0,
                                                           const float *restrict x1, const float *restrict x2,
                                                           int rows, int ow16, size_t xstride, double *out)
{
    float a0[DW_LANES] = {0}, a1[DW_LANES] = {0}, a2[DW_LANES] = {0};
    for (int r = 0; r < rows; r++) {
        const float *restrict d = dyp + (size_t)r * ow16;
        const float *restrict p0 = x0 + (size_t)r * xstride, *restrict p1 = x1 + (size_t)r * xstride,
                              *restrict p2 = x2 + (size_t)r * xstride;
        for (int i = 0; i < ow16; i += DW_LANES) {
            for (int j = 0; j < DW_LANES; j++)
                a0[j] += d[i + j] * p0[i + j];
            for (int j = 0; j < DW_LANES; j++)
                a1[j] += d[i + j] * p1[i + j];
            for (int j = 0; j < DW_LANES; j++)
                a2[j] += d[i + j] * p2[i + j];
        }
    }
    double s0 = 0, s1 = 0, s2 = 0;
    for (int j = 0; j < DW_LANES; j++) {
        s0 += a0[j];
        s1 += a1[j];
        s2 += a2[j];
    }
    out[0] = s0;
    out[1] = s1;
    out[2] = s2;
}

/* Compiled for SSE2, AVX2 and AVX-512 and picked by tl_simd_level(): the
 * 16 lanes of tap_dot run as one, two or four registers; same lanes, same
 * order, no contracted multiply-adds under -std=c11: the same bits. */
static inline __attribute__((always_inline)) void dw_weight(const tl_conv_geom *g, const float *x, const float *dy,
                                                            float *dw, int c0, int c1, float *scratch)
{
    const size_t in_plane = (size_t)g->h * g->w, out_plane = (size_t)g->oh * g->ow, taps = (size_t)g->kh * g->kw;
    const int s = g->stride_w;
    const dw_layout L = dw_layout_of(g);
    const size_t row = (size_t)s * L.pw;
    float *dyp = scratch, *xp = scratch + (size_t)g->oh * L.ow16;
    memset(scratch, 0, sizeof(float) * tl_depthwise_weight_scratch_floats(g));
    for (int c = c0; c < c1; c++) {
        const float *xc = x + c * in_plane, *dyc = dy + c * out_plane;
        for (int oy = 0; oy < g->oh; oy++)
            memcpy(dyp + (size_t)oy * L.ow16, dyc + (size_t)oy * g->ow, sizeof(float) * g->ow);
        /* padded rows outside the input and padded columns stay zero */
        for (int r = 0; r < L.rows; r++) {
            int iy = r - g->pad_t;
            if (iy < 0 || iy >= g->h)
                continue;
            const float *xr = xc + (size_t)iy * g->w;
            float *dst = xp + (size_t)r * row;
            if (s == 1) {
                memcpy(dst + g->pad_l, xr, sizeof(float) * g->w);
                continue;
            }
            /* phase by phase: one strided read each, no per-column phase
             * counter (that loop was half of this function's time) */
            for (int ph = 0; ph < s; ph++) {
                int ix = ((ph - g->pad_l) % s + s) % s;
                float *dp = dst + (size_t)ph * L.pw + (ix + g->pad_l) / s;
                for (int k = 0; ix + k * s < g->w; k++)
                    dp[k] = xr[ix + k * s];
            }
        }
        /* taps in row-major order, three at a time, the last one or two alone */
        int t = 0;
        for (; t + 3 <= (int)taps; t += 3) {
            const float *x3[3];
            for (int q = 0; q < 3; q++) {
                int ky = (t + q) / g->kw, col = (t + q) % g->kw * g->dil_w;
                x3[q] = xp + (size_t)ky * g->dil_h * row + (size_t)(col % s) * L.pw + col / s;
            }
            double d3[3];
            tap_dot3(dyp, x3[0], x3[1], x3[2], g->oh, L.ow16, row * g->stride_h, d3);
            for (int q = 0; q < 3; q++)
                dw[c * taps + (size_t)t + q] += (float)d3[q];
        }
        for (; t < (int)taps; t++) {
            int ky = t / g->kw, col = t % g->kw * g->dil_w;
            const float *x0 = xp + (size_t)ky * g->dil_h * row + (size_t)(col % s) * L.pw + col / s;
            dw[c * taps + (size_t)t] += (float)tap_dot(dyp, x0, g->oh, L.ow16, row * g->stride_h);
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define TL_DW_PATHS 1
__attribute__((target("avx2"))) static void dw_weight_avx2(const tl_conv_geom *g, const float *x, const float *dy,
                                                            float *dw, int c0, int c1, float *scratch)
{
    dw_weight(g, x, dy, dw, c0, c1, scratch);
}
__attribute__((target("avx512f"))) static void dw_weight_avx512(const tl_conv_geom *g, const float *x,
                                                                 const float *dy, float *dw, int c0, int c1,
                                                                 float *scratch)
{
    dw_weight(g, x, dy, dw, c0, c1, scratch);
}
#endif

void tl_depthwise_backward_weight(const tl_conv_geom *g, const float *x, const float *dy, float *dw, int c0, int c1,
                                  float *scratch)
{
#if defined(TL_DW_PATHS)
    int level = tl_simd_level();
    if (level >= TL_SIMD_AVX512)
        dw_weight_avx512(g, x, dy, dw, c0, c1, scratch);
    else if (level == TL_SIMD_AVX2)
        dw_weight_avx2(g, x, dy, dw, c0, c1, scratch);
    else
#endif
        dw_weight(g, x, dy, dw, c0, c1, scratch);
}

