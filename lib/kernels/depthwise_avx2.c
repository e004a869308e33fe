/* AVX2 depthwise plane: 8 output columns per vector; maskload/maskstore
 * cover the ragged end of the interior, strides 1 and 2 are vectorised
 * (2 by an even-lane shuffle), borders go through the scalar tap sum. */
#include "simd.h"
#include "act_internal.h"
#include "conv_internal.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define TL_AVX2 __attribute__((target("avx2,fma")))

/* 8 - n .. 16 - n gives the mask of the first n lanes */
static const int lane_mask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

TL_AVX2 static __m256i first_lanes(int n)
{
    n = n < 0 ? 0 : n > 8 ? 8 : n;
    return _mm256_loadu_si256((const __m256i *)(lane_mask + 8 - n));
}

TL_AVX2 void tl_dw_plane_avx2(const tl_conv_geom *g, const float *x, const float *w, float bias,
                              int act, float *y)
{
    const int s = g->stride_w, d = g->dil_w, kw = g->kw;
    int lo, hi;
    tl_dw_interior(g, &lo, &hi);
    if (s > 2)
        hi = lo;
    const __m256 vbias = _mm256_set1_ps(bias), zero = _mm256_setzero_ps(), six = _mm256_set1_ps(6.0f);
    for (int oy = 0; oy < g->oh; oy++) {
        float *yr = y + (size_t)oy * g->ow;
        for (int ox = 0; ox < lo; ox++)
            yr[ox] = tl_clamp_act(act, bias + tl_dw_point(g, x, w, oy, ox));
        for (int ox = hi; ox < g->ow; ox++)
            yr[ox] = tl_clamp_act(act, bias + tl_dw_point(g, x, w, oy, ox));
        for (int ox0 = lo; ox0 < hi; ox0 += 8) {
            int n = hi - ox0 < 8 ? hi - ox0 : 8;
            __m256i m = first_lanes(n);
            __m256i mlo = first_lanes(2 * n - 1), mhi = first_lanes(2 * n - 1 - 8);
            __m256 acc = vbias;
            for (int ky = 0; ky < g->kh; ky++) {
                int iy = oy * g->stride_h - g->pad_t + ky * g->dil_h;
                if (iy < 0 || iy >= g->h)
                    continue;
                const float *xr = x + (size_t)iy * g->w + (ptrdiff_t)ox0 * s - g->pad_l;
                const float *wr = w + ky * kw;
                if (s == 1) {
                    for (int kx = 0; kx < kw; kx++) {
                        __m256 v = _mm256_maskload_ps(xr + kx * d, m);
                        acc = _mm256_fmadd_ps(_mm256_broadcast_ss(wr + kx), v, acc);
                    }
                } else {
                    for (int kx = 0; kx < kw; kx++) {
                        __m256 a = _mm256_maskload_ps(xr + kx * d, mlo);
                        __m256 b = _mm256_maskload_ps(xr + kx * d + 8, mhi);
                        __m256 v = _mm256_shuffle_ps(a, b, 0x88);
                        v = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xd8));
                        acc = _mm256_fmadd_ps(_mm256_broadcast_ss(wr + kx), v, acc);
                    }
                }
            }
            if (act == TL_ACT_RELU || act == TL_ACT_RELU6)
                acc = _mm256_max_ps(acc, zero);
            if (act == TL_ACT_RELU6)
                acc = _mm256_min_ps(acc, six);
            _mm256_maskstore_ps(yr + ox0, m, acc);
        }
    }
}
#endif

/* ------------------------------------------------ channel-blocked groups */
#if defined(__x86_64__)

/* r0..r7 (8 floats each) become the columns of the 8 x 8 matrix of rows
 * r0..r7; written out (no arrays) so that they stay in registers */
#define TRANSPOSE8                                                                                 \
    do {                                                                                           \
        __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);                   \
        __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);                   \
        __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);                   \
        __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);                   \
        __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);         \
        __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);         \
        __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);         \
        __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);         \
        r0 = _mm256_permute2f128_ps(u0, u4, 0x20), r4 = _mm256_permute2f128_ps(u0, u4, 0x31);      \
        r1 = _mm256_permute2f128_ps(u1, u5, 0x20), r5 = _mm256_permute2f128_ps(u1, u5, 0x31);      \
        r2 = _mm256_permute2f128_ps(u2, u6, 0x20), r6 = _mm256_permute2f128_ps(u2, u6, 0x31);      \
        r3 = _mm256_permute2f128_ps(u3, u7, 0x20), r7 = _mm256_permute2f128_ps(u3, u7, 0x31);      \
    } while (0)
#define EACH8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

/* Output pixels computed together: independent chains of multiply-adds
 * (8 accumulators, the weight and a load fit the 16 registers) */
#define PIX 8

/* 3x3 kernels, stride 1 or 2, dilation 1: columns 0..ox0-1 (a multiple of
 * PIX) of `rows` output rows of a band, PIX pixels of one row at a time,
 * each input cell loaded once for the (up to 3) taps that read it; the 3
 * weights of one kernel row in registers (8 sums + 3 weights + inputs fit
 * the 16 registers). Every sum still adds its taps in the order ky, kx from
 * the bias: the bits of the generic loop. */
TL_AVX2 __attribute__((noinline)) static void sums_k33(const tl_conv_geom *g, const tl_dw_group_layout *L, int rows,
                                                      int ox0, int act)
{
    const int sh = g->stride_h, sw = g->stride_w, ow = g->ow;
    const size_t dy = (size_t)L->cols * 8;
    const __m256 vbias = _mm256_load_ps(L->bias), zero = _mm256_setzero_ps(), six = _mm256_set1_ps(6.0f);
#define X(i) _mm256_load_ps(r + (i) * 8)
#define SUM3(j, p, q, t)                                                                           \
    a##j = _mm256_fmadd_ps(p, w0, a##j);                                                           \
    a##j = _mm256_fmadd_ps(q, w1, a##j);                                                           \
    a##j = _mm256_fmadd_ps(t, w2, a##j);
#define ROW3(ky)                                                                                   \
    {                                                                                              \
        const float *r = b + (ky) * dy;                                                            \
        const __m256 w0 = _mm256_load_ps(L->w + (ky) * 24), w1 = _mm256_load_ps(L->w + (ky) * 24 + 8); \
        const __m256 w2 = _mm256_load_ps(L->w + (ky) * 24 + 16);                                   \
        if (sw == 1) {                                                                             \
            __m256 x0 = X(0), x1 = X(1), x2 = X(2), x3, x4, x5;                                    \
            SUM3(0, x0, x1, x2)                                                                    \
            x3 = X(3);                                                                             \
            SUM3(1, x1, x2, x3)                                                                    \
            x4 = X(4);                                                                             \
            SUM3(2, x2, x3, x4)                                                                    \
            x5 = X(5);                                                                             \
            SUM3(3, x3, x4, x5)                                                                    \
            x0 = X(6);                                                                             \
            SUM3(4, x4, x5, x0)                                                                    \
            x1 = X(7);                                                                             \
            SUM3(5, x5, x0, x1)                                                                    \
            x2 = X(8);                                                                             \
            SUM3(6, x0, x1, x2)                                                                    \
            x3 = X(9);                                                                             \
            SUM3(7, x1, x2, x3)                                                                    \
        } else {                                                                                   \
            SUM3(0, X(0), X(1), X(2)) SUM3(1, X(2), X(3), X(4)) SUM3(2, X(4), X(5), X(6))          \
            SUM3(3, X(6), X(7), X(8)) SUM3(4, X(8), X(9), X(10)) SUM3(5, X(10), X(11), X(12))      \
            SUM3(6, X(12), X(13), X(14)) SUM3(7, X(14), X(15), X(16))                              \
        }                                                                                          \
    }
#define PUT8(j)                                                                                    \
    if (act == TL_ACT_RELU || act == TL_ACT_RELU6)                                                 \
        a##j = _mm256_max_ps(a##j, zero);                                                          \
    if (act == TL_ACT_RELU6)                                                                       \
        a##j = _mm256_min_ps(a##j, six);                                                           \
    _mm256_store_ps(yq + (j) * 8, a##j);
    for (int oy = 0; oy < rows; oy++)
        for (int ox = 0; ox < ox0; ox += PIX) {
            const float *b = L->xs + ((size_t)oy * sh * L->cols + (size_t)ox * sw) * 8;
            float *yq = L->ys + ((size_t)oy * ow + ox) * 8;
            __m256 a0 = vbias, a1 = vbias, a2 = vbias, a3 = vbias, a4 = vbias, a5 = vbias, a6 = vbias, a7 = vbias;
            ROW3(0)
            ROW3(1)
            ROW3(2)
            PUT8(0) PUT8(1) PUT8(2) PUT8(3) PUT8(4) PUT8(5) PUT8(6) PUT8(7)
        }
#undef X
#undef SUM3
#undef ROW3
#undef PUT8
}

/* One 5-tap kernel row for P (7 or 8) pixels S columns apart: the row's 5
 * weights in registers, each input cell loaded once and added into the
 * (up to 5, or 3 for stride 2) sums that read it, cell after cell, so each
 * sum takes its taps in the order kx (8 sums + 5 weights + the cell fit
 * the 16 registers; the generic loop loads a cell for every tap). */
TL_AVX2 static inline __attribute__((always_inline)) void row5(const float *r, const float *wt, __m256 *a, int S, int P)
{
    __m256 w[5];
#pragma GCC unroll 5
    for (int k = 0; k < 5; k++)
        w[k] = _mm256_load_ps(wt + k * 8);
#pragma GCC unroll 19
    for (int i = 0; i < (P - 1) * S + 5; i++) {
        const __m256 xv = _mm256_load_ps(r + i * 8);
#pragma GCC unroll 8
        for (int j = 0; j < P; j++) {
            const int kx = i - S * j;
            if (kx >= 0 && kx < 5)
                a[j] = _mm256_fmadd_ps(xv, w[kx], a[j]);
        }
    }
}

/* Runs of P pixels of `rows` output rows, columns 0..ox0-1 (ox0 a multiple of P) */
TL_AVX2 static inline __attribute__((always_inline)) void runs5(const tl_conv_geom *g, const tl_dw_group_layout *L,
                                                                int rows, int ox0, int act, int S, int P)
{
    const int sh = g->stride_h, ow = g->ow;
    const size_t dy = (size_t)L->cols * 8;
    const __m256 vbias = _mm256_load_ps(L->bias), zero = _mm256_setzero_ps(), six = _mm256_set1_ps(6.0f);
    for (int oy = 0; oy < rows; oy++)
        for (int ox = 0; ox < ox0; ox += P) {
            const float *b = L->xs + ((size_t)oy * sh * L->cols + (size_t)ox * S) * 8;
            float *yq = L->ys + ((size_t)oy * ow + ox) * 8;
            __m256 a[8];
#pragma GCC unroll 8
            for (int j = 0; j < P; j++)
                a[j] = vbias;
            for (int ky = 0; ky < 5; ky++)
                row5(b + ky * dy, L->w + ky * 40, a, S, P);
#pragma GCC unroll 8
            for (int j = 0; j < P; j++) {
                if (act == TL_ACT_RELU || act == TL_ACT_RELU6)
                    a[j] = _mm256_max_ps(a[j], zero);
                if (act == TL_ACT_RELU6)
                    a[j] = _mm256_min_ps(a[j], six);
                _mm256_store_ps(yq + j * 8, a[j]);
            }
        }
}

/* Runs of 7 pixels where they tile the row (EfficientNet's 28, 14 and 7
 * wide maps: no pixel left to the generic loop), else of 8 */
static int run5_of(int ow) { return ow % 8 && ow % 7 == 0 ? 7 : 8; }

/* 5x5 kernels, stride 1 or 2, dilation 1 (EfficientNet's): as sums_k33,
 * columns 0..ox0-1 of `rows` output rows in runs of run5_of(ow) pixels,
 * kernel row after kernel row, each sum from the bias in the order ky, kx:
 * the bits of the generic loop. */
#define RUNS5(name, S, P)                                                                          \
    TL_AVX2 __attribute__((noinline)) static void name(const tl_conv_geom *g, const tl_dw_group_layout *L, int rows, \
                                                      int ox0, int act)                            \
    {                                                                                              \
        runs5(g, L, rows, ox0, act, S, P);                                                         \
    }
RUNS5(runs5_s1p7, 1, 7)
RUNS5(runs5_s1p8, 1, 8)
RUNS5(runs5_s2p7, 2, 7)
RUNS5(runs5_s2p8, 2, 8)
#undef RUNS5

static void sums_k55(const tl_conv_geom *g, const tl_dw_group_layout *L, int rows, int ox0, int act)
{
    const int P = run5_of(g->ow);
    if (g->stride_w == 1)
        (P == 7 ? runs5_s1p7 : runs5_s1p8)(g, L, rows, ox0, act);
    else
        (P == 7 ? runs5_s2p7 : runs5_s2p8)(g, L, rows, ox0, act);
}

/* The means' running sums (tl_dw_means_take), a vector a pixel: the
 * band's pixel q is pixel p0 + q of the plane, added into sum (p0 + q) % 16 */
TL_AVX2 static void means_add(float *acc, const float *ys, size_t p0, int P)
{
    int q = 0, j = (int)(p0 % 16);
    for (; q < P; q++) {
        float *a = acc + (size_t)j * 8;
        _mm256_store_ps(a, _mm256_add_ps(_mm256_load_ps(a), _mm256_load_ps(ys + (size_t)q * 8)));
        j = (j + 1) & 15;
    }
}

TL_AVX2 void tl_dw_group_avx2(const tl_conv_geom *g, const float *x, int nc, const float *w, const float *bias,
                              int act, float *y, float *means, float *scratch)
{
    const tl_dw_group_layout L = tl_dw_group_layout_of(g, 8, scratch);
    tl_dw_group_setup(g, &L, 8, nc, w, bias);
    const int post = act != TL_ACT_NONE && act != TL_ACT_RELU && act != TL_ACT_RELU6;
    float acc[16 * 8] __attribute__((aligned(64))); /* the means' running sums */
    if (means)
        memset(acc, 0, sizeof acc);
    const int W = g->w, in_plane = g->h * g->w, ow = g->ow;
    const size_t out_plane = (size_t)g->oh * ow;
    const int sh = g->stride_h, sw = g->stride_w, kh = g->kh, kw = g->kw;
    const size_t dy = (size_t)g->dil_h * L.cols * 8, dx = (size_t)g->dil_w * 8;
    const __m256 vbias = _mm256_load_ps(L.bias), zero = _mm256_setzero_ps(), six = _mm256_set1_ps(6.0f);
    /* every input column has its cell in a padded row */
    const int whole = g->pad_l >= 0 && g->pad_l + W <= L.cols;
    const int k33 = kh == 3 && kw == 3 && g->dil_h == 1 && g->dil_w == 1 && (sw == 1 || sw == 2) && ow >= PIX;
    const int k55 = kh == 5 && kw == 5 && g->dil_h == 1 && g->dil_w == 1 && (sw == 1 || sw == 2) && ow >= run5_of(ow);
    for (int oy0 = 0; oy0 < g->oh; oy0 += L.band) {
        const int oy1 = oy0 + L.band < g->oh ? oy0 + L.band : g->oh, P = (oy1 - oy0) * ow;
        int iy0, iy1, off;
        tl_dw_band_pad(g, &L, 8, oy0, oy1, &iy0, &iy1, &off);
        /* the band's input rows, 8 pixels at a time: pixel-major, the
         * channels in lanes */
        for (int p0 = iy0 * W, iy = iy0, ix = 0, end = iy1 * W; p0 < end; p0 += 8) {
            const int n = end - p0 < 8 ? end - p0 : 8;
            const __m256i pm = first_lanes(n);
#define LOAD(c)                                                                                    \
    __m256 r##c = zero;                                                                            \
    if (c < nc) {                                                                                  \
        const float *xc = x + (size_t)c * in_plane + p0;                                           \
        r##c = n == 8 ? _mm256_loadu_ps(xc) : _mm256_maskload_ps(xc, pm);                          \
        _mm_prefetch((const char *)(xc + 64), _MM_HINT_T0);                                        \
    }
            EACH8(LOAD)
            TRANSPOSE8;
#define PUT(j)                                                                                     \
    if (j < n) {                                                                                   \
        int px = ix + g->pad_l;                                                                    \
        if (px < L.cols)                                                                           \
            _mm256_store_ps(L.xs + ((size_t)(iy + off) * L.cols + px) * 8, r##j);                  \
        if (++ix == W)                                                                             \
            ix = 0, iy++;                                                                          \
    }
            if (n == 8 && whole && 8 - (W - ix) <= W) {
                /* the 8 pixels lie in one input row, or end one and start
                 * the next: two runs of consecutive cells */
                const int m = W - ix;
                const size_t c0 = (size_t)(iy + off) * L.cols + ix + g->pad_l, c1 = c0 + L.cols - W;
#define PUTROW(j) _mm256_store_ps(L.xs + ((j) < m ? c0 : c1) * 8 + (j) * 8, r##j);
                EACH8(PUTROW)
                if (m > 8)
                    ix += 8;
                else if ((ix = 8 - m) == W) /* the second run took the whole next row */
                    ix = 0, iy += 2;
                else
                    iy++;
            } else {
                EACH8(PUT)
            }
        }
        /* 3x3 and 5x5, stride 1 or 2: whole runs of PIX (5x5: 7 or 8) pixels of each row first */
        const int ox0 = k33 ? ow / PIX * PIX : k55 ? ow / run5_of(ow) * run5_of(ow) : 0;
        if (k33)
            sums_k33(g, &L, oy1 - oy0, ox0, act);
        else if (k55)
            sums_k55(g, &L, oy1 - oy0, ox0, act);
        /* the other pixels (columns ox0..ow-1 of each row): PIX at a time,
         * one tap after the other; pixels past the end repeat the last one
         * (computed twice, stored past the band's pixels when ox0 = 0) */
        const int Q = (oy1 - oy0) * (ow - ox0);
#define EACH(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define SUMS                                                                                       \
    for (int q0 = 0, oy = 0, ox = ox0; q0 < Q; q0 += PIX) {                                        \
        EACH(BASE)                                                                                 \
        const float *wt = L.w;                                                                     \
        for (int ky = 0; ky < kh; ky++)                                                            \
            for (int kx = 0; kx < kw; kx++, wt += 8) {                                             \
                const size_t o = ky * dy + kx * dx;                                                \
                const __m256 wv = _mm256_load_ps(wt);                                              \
                EACH(TAP)                                                                          \
            }                                                                                      \
        EACH(STORE)                                                                                \
    }
#define BASE(j)                                                                                    \
    const float *b##j = L.xs + ((size_t)oy * sh * L.cols + (size_t)ox * sw) * 8;                   \
    YDECL(j)                                                                                       \
    if (q0 + j + 1 < Q && ++ox == ow)                                                              \
        ox = ox0, oy++;                                                                            \
    __m256 a##j = vbias;
#define TAP(j) a##j = _mm256_fmadd_ps(_mm256_load_ps(b##j + o), wv, a##j);
#define STORE(j)                                                                                   \
    if (act == TL_ACT_RELU || act == TL_ACT_RELU6)                                                 \
        a##j = _mm256_max_ps(a##j, zero);                                                          \
    if (act == TL_ACT_RELU6)                                                                       \
        a##j = _mm256_min_ps(a##j, six);                                                           \
    _mm256_store_ps(YAT(j), a##j);
        if (ox0 == 0) {
#define YDECL(j)
#define YAT(j) (L.ys + (size_t)(q0 + j) * 8)
            SUMS
#undef YDECL
#undef YAT
        } else {
#define YDECL(j) float *y##j = L.ys + ((size_t)oy * ow + ox) * 8;
#define YAT(j) y##j
            SUMS
#undef YDECL
#undef YAT
        }
        if (post)
            tl_act_rows_avx2(act, L.ys, 0, L.ys, 0, NULL, 1, (size_t)P * 8);
        if (means)
            means_add(acc, L.ys, (size_t)oy0 * ow, P);
        /* the band's pixels out, 8 at a time, back into planes */
        float *yb = y + (size_t)oy0 * ow;
        for (int p0 = 0; p0 < P; p0 += 8) {
            const int n = P - p0 < 8 ? P - p0 : 8;
            const __m256i pm = first_lanes(n);
#define YLOAD(j) __m256 r##j = _mm256_load_ps(L.ys + (size_t)(p0 + j) * 8);
            EACH8(YLOAD)
            TRANSPOSE8;
#define YPUT(c)                                                                                    \
    if (c < nc) {                                                                                  \
        if (n == 8)                                                                                \
            _mm256_storeu_ps(yb + c * out_plane + p0, r##c);                                       \
        else                                                                                       \
            _mm256_maskstore_ps(yb + c * out_plane + p0, pm, r##c);                                \
    }
            EACH8(YPUT)
        }
    }
    if (means)
        tl_dw_means_take(acc, 8, nc, out_plane, means);
#undef EACH
#undef BASE
#undef TAP
#undef STORE
#undef LOAD
#undef PUT
#undef PUTROW
#undef SUMS
#undef YLOAD
#undef YPUT
}
#endif

/* ------------------------------------------------ 3x3 stride 1 on planes */
#if defined(__x86_64__)

/* V vectors of 8 output columns from column ox, every output row of one
 * channel, from its zero-padded plane pp (row stride ld: output row oy
 * reads padded rows oy..oy+2): every sum from the bias through the 9 taps
 * in the order ky, kx, one multiply-add each, padding cells read as zeros,
 * as the channel-blocked kernel adds them (sums_k33 and the tap loop): its
 * bits, without the transposes into and out of the blocked layout. The
 * rows' chains are independent: the core overlaps consecutive rows. last:
 * lanes kept of the last vector (the columns right of it are stored before
 * these: see the spill below). */
TL_AVX2 static inline __attribute__((always_inline)) void plane_cols(const float *pp, size_t ld, const float *w,
                                                                     float bias, int act, float *y, int oh, int ow,
                                                                     int ox, int last, int V)
{
    const __m256 zero = _mm256_setzero_ps(), six = _mm256_set1_ps(6.0f), vb = _mm256_set1_ps(bias);
    const __m256i tail = first_lanes(last);
    for (int oy = 0; oy < oh; oy++) {
        const float *r = pp + (size_t)oy * ld + ox;
        __m256 a[8];
#pragma GCC unroll 8
        for (int v = 0; v < V; v++)
            a[v] = vb;
#pragma GCC unroll 3
        for (int ky = 0; ky < 3; ky++)
#pragma GCC unroll 3
            for (int kx = 0; kx < 3; kx++) {
                const __m256 wv = _mm256_broadcast_ss(w + ky * 3 + kx);
#pragma GCC unroll 8
                for (int v = 0; v < V; v++)
                    a[v] = _mm256_fmadd_ps(_mm256_loadu_ps(r + ky * ld + v * 8 + kx), wv, a[v]);
            }
        float *yr = y + (size_t)oy * ow + ox;
#pragma GCC unroll 8
        for (int v = 0; v < V; v++) {
            __m256 s = a[v];
            if (act == TL_ACT_RELU || act == TL_ACT_RELU6)
                s = _mm256_max_ps(s, zero);
            if (act == TL_ACT_RELU6)
                s = _mm256_min_ps(s, six);
            /* a ragged last vector spills into the next row's first cells,
             * which that row then stores (AVX2's masked store is slow on
             * AMD), but not past the plane */
            if (v == V - 1 && last < 8 && oy == oh - 1)
                _mm256_maskstore_ps(yr + v * 8, tail, s);
            else
                _mm256_storeu_ps(yr + v * 8, s);
        }
    }
}

typedef void (*plane_cols_fn)(const float *pp, size_t ld, const float *w, float bias, int act, float *y, int oh, int ow,
                              int ox, int last);
#define PLANE_COLS(V)                                                                              \
    TL_AVX2 static void plane_cols_##V(const float *pp, size_t ld, const float *w, float bias, int act, float *y, \
                                       int oh, int ow, int ox, int last)                           \
    {                                                                                              \
        plane_cols(pp, ld, w, bias, act, y, oh, ow, ox, last, V);                                  \
    }
PLANE_COLS(1) PLANE_COLS(2) PLANE_COLS(3) PLANE_COLS(4) PLANE_COLS(5) PLANE_COLS(6) PLANE_COLS(7) PLANE_COLS(8)
#undef PLANE_COLS
static const plane_cols_fn plane_cols_of[9] = {NULL,          plane_cols_1, plane_cols_2, plane_cols_3, plane_cols_4,
                                               plane_cols_5, plane_cols_6, plane_cols_7, plane_cols_8};

/* Floats of one padded row: whole vectors over the output row, the two
 * cells after them that its last taps read, and room for pad_plane's
 * whole-vector tail. */
static size_t rows_width(const tl_conv_geom *g) { return (size_t)(g->ow + 7) / 8 * 8 + 16; }

/* One padded plane: the oh + 2 rows the output rows read */
static size_t padded_floats(const tl_conv_geom *g) { return ((size_t)(g->oh + 2) * rows_width(g) + 15) / 16 * 16; }

size_t tl_dw_rows_avx2_scratch_floats(const tl_conv_geom *g) { return 16 + 2 * padded_floats(g); }

/* Plane x's rows into the padded plane pp, whose other cells stay zero
 * (a row's tail by a masked load, zero past the row, and a whole store) */
TL_AVX2 static void pad_plane(const tl_conv_geom *g, const float *x, float *pp)
{
    const size_t ld = rows_width(g);
    const int iy0 = g->pad_t > 0 ? 0 : -g->pad_t, iy1 = g->oh + 2 - g->pad_t < g->h ? g->oh + 2 - g->pad_t : g->h;
    const __m256i tail = first_lanes(g->w % 8);
    for (int iy = iy0; iy < iy1; iy++) {
        const float *src = x + (size_t)iy * g->w;
        float *dst = pp + (size_t)(iy + g->pad_t) * ld + g->pad_l;
        int j = 0;
        for (; j + 8 <= g->w; j += 8)
            _mm256_storeu_ps(dst + j, _mm256_loadu_ps(src + j));
        if (j < g->w)
            _mm256_storeu_ps(dst + j, _mm256_maskload_ps(src + j, tail));
    }
}

void tl_dw_rows_avx2(const tl_conv_geom *g, const float *x, const float *w, const float *bias, int act, float *y,
                     int c0, int c1, float *scratch)
{
    const size_t ld = rows_width(g), in_plane = (size_t)g->h * g->w, out_plane = (size_t)g->oh * g->ow;
    float *pp[2];
    pp[0] = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    pp[1] = pp[0] + padded_floats(g);
    memset(pp[0], 0, 2 * padded_floats(g) * sizeof(float));
    const int nv = (g->ow + 7) / 8, last = g->ow - (nv - 1) * 8;
    /* the next channel's plane padded before this one's sums: its stores
     * have retired by the time its loads come (a load straddling stores
     * still in flight waits for them) */
    if (c0 < c1)
        pad_plane(g, x + (size_t)c0 * in_plane, pp[0]);
    for (int c = c0; c < c1; c++) {
        const float *p = pp[(c - c0) & 1];
        if (c + 1 < c1)
            pad_plane(g, x + (size_t)(c + 1) * in_plane, pp[(c + 1 - c0) & 1]);
        for (int v0 = (nv - 1) / 8 * 8; v0 >= 0; v0 -= 8) {
            const int v = nv - v0 < 8 ? nv - v0 : 8;
            plane_cols_of[v](p, ld, w + (size_t)c * 9, bias ? bias[c] : 0.0f, act, y + (size_t)c * out_plane, g->oh,
                             g->ow, v0 * 8, v0 + v == nv ? last : 8);
        }
    }
}
#endif
