/* Max, average, adaptive average and global average pooling with PyTorch
 * semantics (ceil_mode, count_include_pad), generalised to asymmetric
 * padding for TF "SAME" models; each forward next to its backward, which
 * sends each output's gradient back to the input cells its window read,
 * with the same windows and divisors (pool_window.h), summing into dx in
 * output order. */
#include "kernels.h"
#include "pool_window.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static int pool_out(int in, int k, int s, int pb, int pe, int ceil_mode)
{
    int span = in + pb + pe - k;
    if (span < 0)
        return 0;
    int o = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    /* the last window must start inside the input or the leading padding */
    if (ceil_mode && (o - 1) * s >= in + pb)
        o--;
    return o;
}

void tl_pool_geom_finish(tl_pool_geom *g)
{
    if (g->stride_h <= 0)
        g->stride_h = g->kh;
    if (g->stride_w <= 0)
        g->stride_w = g->kw;
    g->oh = pool_out(g->h, g->kh, g->stride_h, g->pad_t, g->pad_b, g->ceil_mode);
    g->ow = pool_out(g->w, g->kw, g->stride_w, g->pad_l, g->pad_r, g->ceil_mode);
}

int tl_pool_geom_check(const tl_pool_geom *g, tl_err *e)
{
    if (g->c <= 0 || g->h <= 0 || g->w <= 0 || g->kh <= 0 || g->kw <= 0 || g->stride_h <= 0 ||
        g->stride_w <= 0)
        return tl_fail(e, "pooling has a non-positive size (c %d, %dx%d input, %dx%d kernel)", g->c,
                       g->h, g->w, g->kh, g->kw);
    if (g->pad_t < 0 || g->pad_l < 0 || g->pad_b < 0 || g->pad_r < 0 || g->pad_t >= g->kh ||
        g->pad_b >= g->kh || g->pad_l >= g->kw || g->pad_r >= g->kw)
        return tl_fail(e, "pooling padding must be in [0, kernel size)");
    if (g->oh <= 0 || g->ow <= 0)
        return tl_fail(e, "pooling output is empty (%dx%d input, %dx%d kernel)", g->h, g->w, g->kh,
                       g->kw);
    return 0;
}

/* NaN propagates, as in PyTorch; branch-free so the row loops vectorise */
static inline float max_nan(float m, float v) { return ((v > m) | (v != v)) ? v : m; }

#if defined(__SSE2__)
/* max_nan on four lanes: b where b is NaN, else the larger (a when a is
 * NaN, as _mm_max_ps returns its second operand then) */
static inline __m128 max_nan4(__m128 a, __m128 b)
{
    __m128 m = _mm_max_ps(b, a), nan_b = _mm_cmpunord_ps(b, b);
    return _mm_or_ps(_mm_andnot_ps(nan_b, m), _mm_and_ps(nan_b, b));
}
#endif

/* a[i] = max_nan(a[i], b[i]); SSE2 is part of x86-64, and the compiler
 * will not vectorise the NaN-aware select by itself */
static void row_max_into(float *restrict a, const float *restrict b, int n)
{
    int i = 0;
#if defined(__SSE2__)
    for (; i + 4 <= n; i += 4)
        _mm_storeu_ps(a + i, max_nan4(_mm_loadu_ps(a + i), _mm_loadu_ps(b + i)));
#endif
    for (; i < n; i++)
        a[i] = max_nan(a[i], b[i]);
}

/* hm[i] = max_nan over r[i .. i + k), folded left to right, for i < n */
static void window_max(const float *restrict r, int k, int n, float *restrict hm)
{
    int i = 0;
#if defined(__SSE2__)
    for (; i + 4 <= n; i += 4) {
        __m128 m = _mm_loadu_ps(r + i);
        for (int q = 1; q < k; q++)
            m = max_nan4(m, _mm_loadu_ps(r + i + q));
        _mm_storeu_ps(hm + i, m);
    }
#endif
    for (; i < n; i++) {
        float m = r[i];
        for (int q = 1; q < k; q++)
            m = max_nan(m, r[i + q]);
        hm[i] = m;
    }
}

/* Rows up to this wide go through the row-maximum pass. */
#define ROW_MAX 2048

/* Each output row: the window's rows reduced to one (vertical maxima),
 * laid out with -inf in the padding so every window has its full width,
 * then the horizontal maxima of all windows at once (every position for a
 * stride > 1, then the output's positions picked). The order of the
 * comparisons is the window's scan order, so NaN propagates as in the
 * plain loop and the values are the same. */
void tl_maxpool2d(const tl_pool_geom *g, const float *x, float *y)
{
    float rp[ROW_MAX + 64], hm[ROW_MAX + 64];
    const int span = (g->ow - 1) * g->stride_w + g->kw; /* padded row positions the windows cover */
    const int fast = span <= ROW_MAX && g->pad_l + g->w <= ROW_MAX;
    for (int c = 0; c < g->c; c++) {
        const float *xc = x + (size_t)c * g->h * g->w;
        float *yc = y + (size_t)c * g->oh * g->ow;
        for (int oy = 0; oy < g->oh; oy++) {
            int y0, y1, py;
            tl_pool_window(oy, g->kh, g->stride_h, g->pad_t, g->pad_b, g->h, &y0, &y1, &py);
            float *yr = yc + (size_t)oy * g->ow;
            if (fast && y1 > y0) {
                float *row = rp + g->pad_l;
                for (int i = 0; i < g->pad_l; i++)
                    rp[i] = -__builtin_inff();
                memcpy(row, xc + (size_t)y0 * g->w, sizeof(float) * g->w);
                for (int i = g->pad_l + g->w; i < span; i++)
                    rp[i] = -__builtin_inff();
                for (int iy = y0 + 1; iy < y1; iy++)
                    row_max_into(row, xc + (size_t)iy * g->w, g->w);
                if (g->stride_w == 1) {
                    window_max(rp, g->kw, g->ow, yr);
                } else {
                    int n = (g->ow - 1) * g->stride_w + 1;
                    window_max(rp, g->kw, n, hm);
                    for (int ox = 0; ox < g->ow; ox++)
                        yr[ox] = hm[ox * g->stride_w];
                }
                continue;
            }
            for (int ox = 0; ox < g->ow; ox++) {
                int x0, x1, px;
                tl_pool_window(ox, g->kw, g->stride_w, g->pad_l, g->pad_r, g->w, &x0, &x1, &px);
                float m = -__builtin_inff();
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++)
                        m = max_nan(m, xc[(size_t)iy * g->w + ix]);
                yr[ox] = m;
            }
        }
    }
}

void tl_maxpool2d_backward(const tl_pool_geom *g, const float *x, const float *dy, float *dx)
{
    memset(dx, 0, sizeof(float) * (size_t)g->c * g->h * g->w);
    for (int c = 0; c < g->c; c++) {
        const float *xc = x + (size_t)c * g->h * g->w, *dyc = dy + (size_t)c * g->oh * g->ow;
        float *dxc = dx + (size_t)c * g->h * g->w;
        for (int oy = 0; oy < g->oh; oy++) {
            int y0, y1, py;
            tl_pool_window(oy, g->kh, g->stride_h, g->pad_t, g->pad_b, g->h, &y0, &y1, &py);
            for (int ox = 0; ox < g->ow; ox++) {
                int x0, x1, px;
                tl_pool_window(ox, g->kw, g->stride_w, g->pad_l, g->pad_r, g->w, &x0, &x1, &px);
                if (y1 <= y0 || x1 <= x0)
                    continue;
                /* PyTorch's scan: start at the first cell, take strictly larger values or any NaN */
                size_t best = (size_t)y0 * g->w + x0;
                float m = -__builtin_inff();
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        size_t at = (size_t)iy * g->w + ix;
                        float v = xc[at];
                        if (v > m || v != v) {
                            m = v;
                            best = at;
                        }
                    }
                dxc[best] += dyc[(size_t)oy * g->ow + ox];
            }
        }
    }
}

void tl_avgpool2d(const tl_pool_geom *g, const float *x, float *y)
{
    for (int c = 0; c < g->c; c++) {
        const float *xc = x + (size_t)c * g->h * g->w;
        float *yc = y + (size_t)c * g->oh * g->ow;
        for (int oy = 0; oy < g->oh; oy++) {
            int y0, y1, py;
            tl_pool_window(oy, g->kh, g->stride_h, g->pad_t, g->pad_b, g->h, &y0, &y1, &py);
            for (int ox = 0; ox < g->ow; ox++) {
                int x0, x1, px;
                tl_pool_window(ox, g->kw, g->stride_w, g->pad_l, g->pad_r, g->w, &x0, &x1, &px);
                float s = 0.0f;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++)
                        s += xc[(size_t)iy * g->w + ix];
                int n = g->count_include_pad ? py * px : (y1 - y0) * (x1 - x0);
                yc[(size_t)oy * g->ow + ox] = n > 0 ? s / (float)n : 0.0f;
            }
        }
    }
}

void tl_avgpool2d_backward(const tl_pool_geom *g, const float *dy, float *dx)
{
    memset(dx, 0, sizeof(float) * (size_t)g->c * g->h * g->w);
    for (int c = 0; c < g->c; c++) {
        const float *dyc = dy + (size_t)c * g->oh * g->ow;
        float *dxc = dx + (size_t)c * g->h * g->w;
        for (int oy = 0; oy < g->oh; oy++) {
            int y0, y1, py;
            tl_pool_window(oy, g->kh, g->stride_h, g->pad_t, g->pad_b, g->h, &y0, &y1, &py);
            for (int ox = 0; ox < g->ow; ox++) {
                int x0, x1, px;
                tl_pool_window(ox, g->kw, g->stride_w, g->pad_l, g->pad_r, g->w, &x0, &x1, &px);
                int n = g->count_include_pad ? py * px : (y1 - y0) * (x1 - x0);
                if (n <= 0)
                    continue;
                float v = dyc[(size_t)oy * g->ow + ox] / (float)n;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++)
                        dxc[(size_t)iy * g->w + ix] += v;
            }
        }
    }
}

void tl_adaptive_avgpool(int c, int h, int w, int oh, int ow, const float *x, float *y)
{
    for (int ch = 0; ch < c; ch++) {
        const float *xc = x + (size_t)ch * h * w;
        for (int i = 0; i < oh; i++) {
            int y0, y1;
            tl_adaptive_cell(i, oh, h, &y0, &y1);
            for (int j = 0; j < ow; j++) {
                int x0, x1;
                tl_adaptive_cell(j, ow, w, &x0, &x1);
                double s = 0;
                for (int yy = y0; yy < y1; yy++)
                    for (int xx = x0; xx < x1; xx++)
                        s += xc[(size_t)yy * w + xx];
                y[((size_t)ch * oh + i) * ow + j] = (float)(s / ((y1 - y0) * (x1 - x0)));
            }
        }
    }
}

void tl_adaptive_avgpool_backward(int c, int h, int w, int oh, int ow, const float *dy, float *dx)
{
    memset(dx, 0, sizeof(float) * (size_t)c * h * w);
    for (int ch = 0; ch < c; ch++) {
        float *dxc = dx + (size_t)ch * h * w;
        for (int i = 0; i < oh; i++) {
            int y0, y1;
            tl_adaptive_cell(i, oh, h, &y0, &y1);
            for (int j = 0; j < ow; j++) {
                int x0, x1;
                tl_adaptive_cell(j, ow, w, &x0, &x1);
                float v = dy[((size_t)ch * oh + i) * ow + j] / (float)((y1 - y0) * (x1 - x0));
                for (int yy = y0; yy < y1; yy++)
                    for (int xx = x0; xx < x1; xx++)
                        dxc[(size_t)yy * w + xx] += v;
            }
        }
    }
}

void tl_global_avgpool(int c, int hw, const float *x, float *y)
{
    for (int i = 0; i < c; i++) {
        const float *xc = x + (size_t)i * hw;
        float s = 0.0f;
        for (int j = 0; j < hw; j++)
            s += xc[j];
        y[i] = hw > 0 ? s / (float)hw : 0.0f;
    }
}

void tl_global_avgpool_backward(int c, int hw, const float *dy, float *dx)
{
    for (int i = 0; i < c; i++)
        for (int k = 0; k < hw; k++)
            dx[(size_t)i * hw + k] = dy[i] / (float)hw;
}
