/* Convolution over one NCHW image: 1x1 stride-1 unpadded layers are a
 * direct GEMM W (cout x cin) * X (cin x hw); everything else builds the
 * im2col matrix one column tile at a time (bounded scratch) and multiplies.
 * Bias and activation are applied per tile while it is still in cache. */
#include "simd.h"

#include <string.h>

/* im2col tiles hold about this many floats (1 MiB), at least 64 columns */
#define TILE_BUDGET (1 << 18)
/* direct 1x1 GEMMs run in tiles of this many columns for the epilogue */
#define DIRECT_COLS 1280

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
        return tl_fail(e, "convolution groups %d do not divide cin %d and cout %d", g->groups,
                       g->cin, g->cout);
    if (g->oh <= 0 || g->ow <= 0)
        return tl_fail(e, "convolution output is empty (%dx%d input, %dx%d kernel)", g->h, g->w,
                       g->kh, g->kw);
    return 0;
}

static int is_depthwise(const tl_conv_geom *g)
{
    return g->groups == g->cin && g->cout == g->cin;
}

static int is_direct(const tl_conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->stride_h == 1 && g->stride_w == 1 && g->pad_t == 0 &&
           g->pad_l == 0 && g->pad_b == 0 && g->pad_r == 0;
}

static size_t group_k(const tl_conv_geom *g)
{
    return (size_t)(g->cin / g->groups) * g->kh * g->kw;
}

static int tile_cols(const tl_conv_geom *g)
{
    size_t ohw = (size_t)g->oh * g->ow;
    size_t cols = TILE_BUDGET / group_k(g);
    cols = cols < 64 ? 64 : cols / 32 * 32;
    return (int)(cols < ohw ? cols : ohw);
}

size_t tl_conv_scratch_floats(const tl_conv_geom *g)
{
    if (is_depthwise(g) || is_direct(g))
        return 0;
    return group_k(g) * (size_t)tile_cols(g);
}

/* smallest o with o * s + off >= 0, and one past the largest with o * s + off <= last */
static int first_inside(int off, int s) { return off >= 0 ? 0 : (-off + s - 1) / s; }
static int end_inside(int off, int last, int s) { return off > last ? 0 : (last - off) / s + 1; }

/* col (K x nc): rows (ci, ky, kx) of one group, columns output pixels c0..c0+nc. */
static void im2col_tile(const tl_conv_geom *g, const float *x, int cin_g, int c0, int nc,
                        float *col)
{
    const int ow = g->ow, sw = g->stride_w;
    float *dst = col;
    for (int ci = 0; ci < cin_g; ci++) {
        const float *xc = x + (size_t)ci * g->h * g->w;
        for (int ky = 0; ky < g->kh; ky++) {
            for (int kx = 0; kx < g->kw; kx++, dst += nc) {
                int off = kx * g->dil_w - g->pad_l;
                int vlo = first_inside(off, sw), vhi = end_inside(off, g->w - 1, sw);
                float *d = dst;
                for (int p = c0; p < c0 + nc;) {
                    int oy = p / ow, ox0 = p % ow;
                    int ox1 = ox0 + (c0 + nc - p) < ow ? ox0 + (c0 + nc - p) : ow;
                    int iy = oy * g->stride_h - g->pad_t + ky * g->dil_h;
                    if (iy < 0 || iy >= g->h) {
                        memset(d, 0, sizeof(float) * (ox1 - ox0));
                    } else {
                        const float *xr = xc + (size_t)iy * g->w;
                        int a = vlo > ox0 ? vlo : ox0, b = vhi < ox1 ? vhi : ox1;
                        if (b < a)
                            b = a = ox1 < a ? ox1 : a;
                        for (int ox = ox0; ox < a; ox++)
                            d[ox - ox0] = 0.0f;
                        if (sw == 1)
                            memcpy(d + (a - ox0), xr + a + off, sizeof(float) * (b - a));
                        else
                            for (int ox = a; ox < b; ox++)
                                d[ox - ox0] = xr[ox * sw + off];
                        for (int ox = b; ox < ox1; ox++)
                            d[ox - ox0] = 0.0f;
                    }
                    d += ox1 - ox0;
                    p += ox1 - ox0;
                }
            }
        }
    }
}

void tl_conv_forward(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *w,
                     const float *bias, int act, float *y, float *scratch)
{
    if (is_depthwise(g)) {
        tl_depthwise_forward(ws, g, x, w, bias, act, y);
        return;
    }
    const int cin_g = g->cin / g->groups, cout_g = g->cout / g->groups;
    const int K = (int)group_k(g), hw = g->h * g->w, ohw = g->oh * g->ow;
    const int direct = is_direct(g);
    const int cols = direct ? (ohw < DIRECT_COLS ? ohw : DIRECT_COLS) : tile_cols(g);
    for (int grp = 0; grp < g->groups; grp++) {
        const float *xg = x + (size_t)grp * cin_g * hw;
        const float *wg = w + (size_t)grp * cout_g * K;
        float *yg = y + (size_t)grp * cout_g * ohw;
        const float *bg = bias ? bias + (size_t)grp * cout_g : NULL;
        for (int c0 = 0; c0 < ohw; c0 += cols) {
            int nc = ohw - c0 < cols ? ohw - c0 : cols;
            if (direct) {
                tl_sgemm(ws, 0, 0, cout_g, nc, K, 1.0f, wg, K, xg + c0, hw, 0.0f, yg + c0, ohw);
            } else {
                im2col_tile(g, xg, cin_g, c0, nc, scratch);
                tl_sgemm(ws, 0, 0, cout_g, nc, K, 1.0f, wg, K, scratch, nc, 0.0f, yg + c0, ohw);
            }
            tl_bias_act_2d(act, yg + c0, (size_t)ohw, bg, cout_g, (size_t)nc);
        }
    }
}
