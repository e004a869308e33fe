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

/* window_max at stride 2 for windows of 2 or 3 (ResNet's 3x3/2 and VGG's
 * 2x2/2 pools), into the outputs straight: each output's window folded
 * left to right with the same max_nan steps as window_max, whose every
 * position was computed before the even ones were picked. Four outputs a
 * vector: the even and odd cells by shuffles of two loads; the loads stay
 * inside the span of the row the windows cover. */
static void window_max_s2(const float *restrict r, int k, int span, int n, float *restrict y)
{
    int o = 0;
#if defined(__SSE2__)
    for (; o + 4 <= n && 2 * o + 10 <= span; o += 4) {
        const float *p = r + 2 * o;
        __m128 l0 = _mm_loadu_ps(p), l1 = _mm_loadu_ps(p + 4);
        __m128 m = max_nan4(_mm_shuffle_ps(l0, l1, _MM_SHUFFLE(2, 0, 2, 0)), _mm_shuffle_ps(l0, l1, _MM_SHUFFLE(3, 1, 3, 1)));
        if (k == 3)
            m = max_nan4(m, _mm_shuffle_ps(_mm_loadu_ps(p + 2), _mm_loadu_ps(p + 6), _MM_SHUFFLE(2, 0, 2, 0)));
        _mm_storeu_ps(y + o, m);
    }
#endif
    for (; o < n; o++) {
        float m = r[2 * o];
        for (int q = 1; q < k; q++)
            m = max_nan(m, r[2 * o + q]);
        y[o] = m;
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
                } else if (g->stride_w == 2 && (g->kw == 2 || g->kw == 3)) {
                    window_max_s2(rp, g->kw, span, g->ow, yr);
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

/* The cell of one window the backward scan picks: PyTorch's scan starts
 * at the first cell and takes strictly larger values or any NaN. Written
 * as selects, not branches: which cell wins is data, and a mispredicted
 * branch per cell cost more than the comparisons. */
static inline int scan_window(const float *xc, int w, int y0, int y1, int x0, int x1)
{
    int best = y0 * w + x0;
    float m = -__builtin_inff();
    for (int iy = y0; iy < y1; iy++)
        for (int ix = x0; ix < x1; ix++) {
            int at = iy * w + ix;
            float v = xc[at];
            int take = (v > m) | (v != v);
            m = take ? v : m;
            best = take ? at : best;
        }
    return best;
}

#if defined(__SSE2__)
/* scan_window for four windows side by side (columns x0 + l*s, l < 4),
 * all inside the row: the same cells in the same order, lane by lane */
static inline void scan_window4(const float *xc, int w, int y0, int y1, int x0, int kw, int s, int best4[4])
{
    const __m128i lane = _mm_set_epi32(3 * s, 2 * s, s, 0);
    __m128 m = _mm_set1_ps(-__builtin_inff());
    __m128i best = _mm_add_epi32(_mm_set1_epi32(y0 * w + x0), lane);
    for (int iy = y0; iy < y1; iy++) {
        const float *r = xc + (size_t)iy * w + x0;
        for (int kx = 0; kx < kw; kx++) {
            __m128 v;
            if (s == 1)
                v = _mm_loadu_ps(r + kx);
            else if (s == 2) /* the even cells of r[kx .. kx + 8): both loads stay inside the row */
                v = _mm_shuffle_ps(_mm_loadu_ps(r + kx), _mm_loadu_ps(r + kx + 4), _MM_SHUFFLE(2, 0, 2, 0));
            else
                v = _mm_set_ps(r[kx + 3 * s], r[kx + 2 * s], r[kx + s], r[kx]);
            __m128 take = _mm_or_ps(_mm_cmpgt_ps(v, m), _mm_cmpunord_ps(v, v));
            __m128i ti = _mm_castps_si128(take), at = _mm_add_epi32(_mm_set1_epi32(iy * w + x0 + kx), lane);
            m = _mm_or_ps(_mm_and_ps(take, v), _mm_andnot_ps(take, m));
            best = _mm_or_si128(_mm_and_si128(ti, at), _mm_andnot_si128(ti, best));
        }
    }
    _mm_storeu_si128((__m128i *)best4, best);
}
#endif

/* Each output's gradient goes to its window's scan_window cell, added in
 * output order (so overlapping windows sum as before); four windows at a
 * time where they lie wholly inside the row. */
void tl_maxpool2d_backward(const tl_pool_geom *g, const float *x, const float *dy, float *dx)
{
    memset(dx, 0, sizeof(float) * (size_t)g->c * g->h * g->w);
    const int s = g->stride_w, w = g->w;
    /* outputs [oa, ob) have windows inside [0, w) (for s == 2 the vector
     * load also reads the cell after the window's last: kw + 1 <= w - x0) */
    int oa = (g->pad_l + s - 1) / s, ob = g->ow;
    while (ob > oa && (ob - 1) * s - g->pad_l + g->kw + (s == 2) > w)
        ob--;
    for (int c = 0; c < g->c; c++) {
        const float *xc = x + (size_t)c * g->h * w, *dyc = dy + (size_t)c * g->oh * g->ow;
        float *dxc = dx + (size_t)c * g->h * w;
        for (int oy = 0; oy < g->oh; oy++) {
            int y0, y1, py;
            tl_pool_window(oy, g->kh, g->stride_h, g->pad_t, g->pad_b, g->h, &y0, &y1, &py);
            if (y1 <= y0)
                continue;
            const float *dyr = dyc + (size_t)oy * g->ow;
            for (int ox = 0; ox < g->ow; ox++) {
#if defined(__SSE2__)
                if (ox >= oa && ox + 4 <= ob) {
                    int b[4];
                    scan_window4(xc, w, y0, y1, ox * s - g->pad_l, g->kw, s, b);
                    for (int l = 0; l < 4; l++)
                        dxc[b[l]] += dyr[ox + l];
                    ox += 3;
                    continue;
                }
#endif
                int x0, x1, px;
                tl_pool_window(ox, g->kw, s, g->pad_l, g->pad_r, w, &x0, &x1, &px);
                if (x1 > x0)
                    dxc[scan_window(xc, w, y0, y1, x0, x1)] += dyr[ox];
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
