/* Convolution backward over one NCHW image. Data gradient: per column tile,
 * col = W^T dy (one GEMM) scattered back with col2im; 1x1 stride-1 unpadded
 * layers are one GEMM straight into dx. Weight gradient: dw += dy col^T per
 * tile, the im2col tile rebuilt from x as in the forward pass. Depthwise
 * layers skip the GEMM (K = kh*kw would be mostly packing): stride-1 data
 * gradients run the forward SIMD plane kernel on the flipped kernel, the
 * rest are per-tap loops. */
#include "backward.h"
#include "simd.h"

#include <string.h>

/* as in conv.c: im2col tiles of about 1 MiB, at least 64 columns */
#define TILE_BUDGET (1 << 18)

static int is_depthwise(const tl_conv_geom *g) { return g->groups == g->cin && g->cout == g->cin; }

static int is_direct(const tl_conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->stride_h == 1 && g->stride_w == 1 && g->pad_t == 0 && g->pad_l == 0 &&
           g->pad_b == 0 && g->pad_r == 0;
}

static size_t group_k(const tl_conv_geom *g) { return (size_t)(g->cin / g->groups) * g->kh * g->kw; }

static int tile_cols(const tl_conv_geom *g)
{
    size_t ohw = (size_t)g->oh * g->ow;
    size_t cols = TILE_BUDGET / group_k(g);
    cols = cols < 64 ? 64 : cols / 32 * 32;
    return (int)(cols < ohw ? cols : ohw);
}

size_t tl_conv_backward_scratch_floats(const tl_conv_geom *g)
{
    if (is_depthwise(g)) /* per-tap column sums, or the flipped kernel */
        return (size_t)g->kh * g->kw * (g->ow > 1 ? g->ow : 1);
    if (is_direct(g))
        return 0;
    return group_k(g) * (size_t)tile_cols(g);
}

/* smallest o with o * s + off >= 0, and one past the largest with o * s + off <= last */
static int first_inside(int off, int s) { return off >= 0 ? 0 : (-off + s - 1) / s; }
static int end_inside(int off, int last, int s) { return off > last ? 0 : (last - off) / s + 1; }
static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Output columns [*lo, *hi) of one kernel column whose input column is inside the row. */
static void valid_cols(const tl_conv_geom *g, int kx, int *off, int *lo, int *hi)
{
    *off = kx * g->dil_w - g->pad_l;
    *lo = clampi(first_inside(*off, g->stride_w), 0, g->ow);
    *hi = clampi(end_inside(*off, g->w - 1, g->stride_w), 0, g->ow);
    if (*hi < *lo)
        *hi = *lo;
}

/* Walks the im2col tile of one group: rows (ci, ky, kx), columns output
 * pixels c0..c0+nc; gather copies x into col, scatter adds col into x. */
static void col_tile(const tl_conv_geom *g, float *x, int cin_g, int c0, int nc, float *col, int scatter)
{
    const int ow = g->ow, sw = g->stride_w;
    float *row = col;
    for (int ci = 0; ci < cin_g; ci++) {
        float *xc = x + (size_t)ci * g->h * g->w;
        for (int ky = 0; ky < g->kh; ky++) {
            for (int kx = 0; kx < g->kw; kx++, row += nc) {
                int off, vlo, vhi;
                valid_cols(g, kx, &off, &vlo, &vhi);
                for (int p = c0; p < c0 + nc;) {
                    int oy = p / ow, ox0 = p % ow;
                    int ox1 = ox0 + (c0 + nc - p) < ow ? ox0 + (c0 + nc - p) : ow;
                    float *d = row + (p - c0); /* d[ox - ox0] is column (oy, ox) */
                    int iy = oy * g->stride_h - g->pad_t + ky * g->dil_h;
                    int a = vlo > ox0 ? vlo : ox0, b = vhi < ox1 ? vhi : ox1;
                    if (iy < 0 || iy >= g->h || a > ox1)
                        a = ox1;
                    if (b < a || iy < 0 || iy >= g->h)
                        b = a;
                    float *xr = xc + (size_t)(iy < 0 || iy >= g->h ? 0 : iy) * g->w;
                    if (scatter) {
                        for (int ox = a; ox < b; ox++)
                            xr[ox * sw + off] += d[ox - ox0];
                    } else {
                        for (int ox = ox0; ox < a; ox++)
                            d[ox - ox0] = 0.0f;
                        if (sw == 1 && b > a)
                            memcpy(d + (a - ox0), xr + a + off, sizeof(float) * (b - a));
                        else
                            for (int ox = a; ox < b; ox++)
                                d[ox - ox0] = xr[ox * sw + off];
                        for (int ox = b; ox < ox1; ox++)
                            d[ox - ox0] = 0.0f;
                    }
                    p += ox1 - ox0;
                }
            }
        }
    }
}

/* Fixed 16-wide blocks over restrict pointers: the shape GCC vectorises at
 * -O2 (its cheap cost model adds no alias checks or epilogues itself). */
#define BLOCK 16

static void axpy(float *restrict y, const float *restrict x, float a, size_t n)
{
    size_t i = 0;
    for (; i + BLOCK <= n; i += BLOCK)
        for (size_t j = i; j < i + BLOCK; j++)
            y[j] += a * x[j];
    for (; i < n; i++)
        y[i] += a * x[i];
}

static void mul_acc(float *restrict acc, const float *restrict a, const float *restrict b, size_t n)
{
    size_t i = 0;
    for (; i + BLOCK <= n; i += BLOCK)
        for (size_t j = i; j < i + BLOCK; j++)
            acc[j] += a[j] * b[j];
    for (; i < n; i++)
        acc[i] += a[i] * b[i];
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

static void depthwise_data(tl_kws *ws, const tl_conv_geom *g, const float *dy, const float *w, float *dx,
                           float *flipped)
{
    const size_t in_plane = (size_t)g->h * g->w, out_plane = (size_t)g->oh * g->ow, taps = (size_t)g->kh * g->kw;
    const int s = g->stride_w;
    tl_conv_geom t;
    if (transposed_geom(g, &t)) {
        for (int c = 0; c < g->cin; c++) {
            for (size_t i = 0; i < taps; i++)
                flipped[i] = w[c * taps + taps - 1 - i];
            ws->impl->dw_plane(&t, dy + c * out_plane, flipped, 0.0f, TL_ACT_NONE, dx + c * in_plane);
        }
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
                    int off, lo, hi;
                    valid_cols(g, kx, &off, &lo, &hi);
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

void tl_conv_backward_data(tl_kws *ws, const tl_conv_geom *g, const float *dy, const float *w, float *dx,
                           float *scratch)
{
    if (is_depthwise(g)) {
        depthwise_data(ws, g, dy, w, dx, scratch);
        return;
    }
    const int cin_g = g->cin / g->groups, cout_g = g->cout / g->groups;
    const int K = (int)group_k(g), hw = g->h * g->w, ohw = g->oh * g->ow;
    if (is_direct(g)) {
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
            int nc = ohw - c0 < cols ? ohw - c0 : cols;
            tl_sgemm(ws, 1, 0, K, nc, cout_g, 1.0f, wg, K, dyg + c0, ohw, 0.0f, scratch, nc);
            col_tile(g, dxg, cin_g, c0, nc, scratch, 1);
        }
    }
}

/* One pass over the rows: per tap a row of column partial sums
 * (vectorisable), each summed in double at the end. */
static void depthwise_weight(const tl_conv_geom *g, const float *x, const float *dy, float *dw, int c0, int c1,
                             float *acc)
{
    const size_t in_plane = (size_t)g->h * g->w, out_plane = (size_t)g->oh * g->ow, taps = (size_t)g->kh * g->kw;
    const int s = g->stride_w, ow = g->ow;
    for (int c = c0; c < c1; c++) {
        const float *xc = x + c * in_plane, *dyc = dy + c * out_plane;
        memset(acc, 0, sizeof(float) * taps * ow);
        for (int oy = 0; oy < g->oh; oy++) {
            const float *dyr = dyc + (size_t)oy * ow;
            for (int ky = 0; ky < g->kh; ky++) {
                int iy = oy * g->stride_h - g->pad_t + ky * g->dil_h;
                if (iy < 0 || iy >= g->h)
                    continue;
                const float *xr = xc + (size_t)iy * g->w;
                for (int kx = 0; kx < g->kw; kx++) {
                    int off, lo, hi;
                    valid_cols(g, kx, &off, &lo, &hi);
                    float *a = acc + ((size_t)ky * g->kw + kx) * ow;
                    if (s == 1)
                        mul_acc(a + lo, dyr + lo, xr + lo + off, (size_t)(hi - lo));
                    else
                        for (int ox = lo; ox < hi; ox++)
                            a[ox] += dyr[ox] * xr[ox * s + off];
                }
            }
        }
        for (size_t k = 0; k < taps; k++) {
            double sum = 0;
            for (int ox = 0; ox < ow; ox++)
                sum += acc[k * ow + ox];
            dw[c * taps + k] += (float)sum;
        }
    }
}

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
    if (is_depthwise(g)) {
        depthwise_weight(g, x, dy, dw, co0, co1, scratch);
        return;
    }
    const int cin_g = g->cin / g->groups, cout_g = g->cout / g->groups;
    const int K = (int)group_k(g), hw = g->h * g->w;
    const int direct = is_direct(g), cols = direct ? ohw : tile_cols(g);
    for (int grp = co0 / cout_g; grp < g->groups && grp * cout_g < co1; grp++) {
        int r0 = grp * cout_g > co0 ? grp * cout_g : co0;
        int r1 = (grp + 1) * cout_g < co1 ? (grp + 1) * cout_g : co1;
        const float *xg = x + (size_t)grp * cin_g * hw;
        for (int c0 = 0; c0 < ohw; c0 += cols) {
            int nc = ohw - c0 < cols ? ohw - c0 : cols;
            const float *col = xg + c0;
            int ldcol = hw;
            if (!direct) {
                col_tile(g, (float *)xg, cin_g, c0, nc, scratch, 0);
                col = scratch;
                ldcol = nc;
            }
            tl_sgemm(ws, 0, 1, r1 - r0, K, nc, 1.0f, dy + (size_t)r0 * ohw + c0, ohw, col, ldcol, 1.0f,
                     dw + (size_t)r0 * K, K);
        }
    }
}
