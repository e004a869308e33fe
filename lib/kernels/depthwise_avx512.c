/* AVX-512 depthwise plane: 16 output columns per vector, every column
 * including the borders: a tap's lanes that fall in the padding are masked
 * off in the load (masked lanes read nothing and give zero). Strides 1 and
 * 2 are vectorised (2 by an even-lane permute of two loads); larger strides
 * go through the scalar tap sum. */
#include "simd.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>

#define TL_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))

static const int even_idx[16] = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};

/* Lanes j of 16 with 0 <= base + j < w and j < lim. */
static inline __mmask16 lanes(int base, int w, int lim)
{
    int lo = base < 0 ? -base : 0, hi = w - base;
    if (hi > lim)
        hi = lim;
    if (hi > 16)
        hi = 16;
    if (hi <= lo)
        return 0;
    return (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}

/* row + i without forming an out-of-range pointer in C (the masked load
 * never touches the lanes that would be outside) */
static inline const float *at(const float *row, int i) { return (const float *)((uintptr_t)row + (intptr_t)i * 4); }

TL_AVX512 static void plane_scalar_rows(const tl_conv_geom *g, const float *x, const float *w, float bias, int act,
                                        float *y)
{
    for (int oy = 0; oy < g->oh; oy++)
        for (int ox = 0; ox < g->ow; ox++)
            y[(size_t)oy * g->ow + ox] = tl_clamp_act(act, bias + tl_dw_point(g, x, w, oy, ox));
}

/* Per-plane table limits: (blocks of 16 columns) x taps per row. */
#define MAX_CELLS 512

/* Output rows computed together: the per-row sums are chains of dependent
 * multiply-adds, so one row at a time waits on the adder's latency;
 * four independent rows keep the FMA units busy. */
#define ROWS 4

TL_AVX512 void tl_dw_plane_avx512(const tl_conv_geom *g, const float *x, const float *w, float bias, int act,
                                  float *y)
{
    const int s = g->stride_w, kw = g->kw, W = g->w, nb = (g->ow + 15) / 16;
    if (s > 2 || nb * kw > MAX_CELLS) {
        plane_scalar_rows(g, x, w, bias, act, y);
        return;
    }
    /* The masks and offsets of every (column block, tap) are the same on
     * every row: work them out once per plane. */
    int base[MAX_CELLS];
    __mmask16 ma[MAX_CELLS], mb[MAX_CELLS];
    for (int b = 0; b < nb; b++) {
        int n = g->ow - 16 * b < 16 ? g->ow - 16 * b : 16, span = s == 1 ? n : 2 * n - 1;
        for (int kx = 0; kx < kw; kx++) {
            int i = b * kw + kx;
            base[i] = 16 * b * s - g->pad_l + kx * g->dil_w;
            ma[i] = lanes(base[i], W, span);
            mb[i] = lanes(base[i] + 16, W, span - 16);
        }
    }
    const __m512i even = _mm512_loadu_si512(even_idx);
    const __m512 vbias = _mm512_set1_ps(bias), zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
    /* ROWS = 4, unrolled by hand: GCC keeps arrays of vectors in memory */
#define EACH(X) X(0) X(1) X(2) X(3)
    for (int oy0 = 0; oy0 < g->oh; oy0 += ROWS) {
        for (int b = 0; b < nb; b++) {
            const int *bs = base + b * kw;
            const __mmask16 *m0 = ma + b * kw, *m1 = mb + b * kw;
#define INIT(r) __m512 acc##r = vbias;
            EACH(INIT)
            for (int ky = 0; ky < g->kh; ky++) {
                /* a row outside the input (or past the plane) adds nothing:
                 * its loads are masked off and its sum is not added */
#define ROW(r)                                                                                     \
    const int iy##r = (oy0 + r) * g->stride_h - g->pad_t + ky * g->dil_h;                          \
    const int in##r = oy0 + r < g->oh && iy##r >= 0 && iy##r < g->h;                               \
    const __mmask16 ok##r = in##r ? 0xFFFF : 0;                                                    \
    const float *xr##r = x + (size_t)(in##r ? iy##r : 0) * W;                                      \
    __m512 t##r = zero;
                EACH(ROW)
                if (!(in0 | in1 | in2 | in3))
                    continue;
                const float *wr = w + ky * kw;
                /* one partial sum per input row keeps each chain short */
                if (s == 1) {
                    for (int kx = 0; kx < kw; kx++) {
                        const __m512 wv = _mm512_set1_ps(wr[kx]);
                        const __mmask16 mk = m0[kx];
                        const int o = bs[kx];
#define TAP1(r) t##r = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(mk & ok##r, at(xr##r, o)), t##r);
                        EACH(TAP1)
                    }
                } else {
                    for (int kx = 0; kx < kw; kx++) {
                        const __m512 wv = _mm512_set1_ps(wr[kx]);
                        const __mmask16 mk = m0[kx], mh = m1[kx];
                        const int o = bs[kx];
#define TAP2(r)                                                                                    \
    t##r = _mm512_fmadd_ps(wv,                                                                     \
                           _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(mk & ok##r, at(xr##r, o)), even, \
                                                  _mm512_maskz_loadu_ps(mh & ok##r, at(xr##r, o + 16))), \
                           t##r);
                        EACH(TAP2)
                    }
                }
#define SUM(r) acc##r = _mm512_mask_add_ps(acc##r, ok##r, acc##r, t##r);
                EACH(SUM)
            }
            const int n = g->ow - 16 * b < 16 ? g->ow - 16 * b : 16;
            const __mmask16 keep = (__mmask16)((1u << n) - 1);
#define STORE(r)                                                                                   \
    if (oy0 + r < g->oh) {                                                                         \
        if (act == TL_ACT_RELU || act == TL_ACT_RELU6)                                             \
            acc##r = _mm512_max_ps(acc##r, zero);                                                  \
        if (act == TL_ACT_RELU6)                                                                   \
            acc##r = _mm512_min_ps(acc##r, six);                                                   \
        _mm512_mask_storeu_ps(y + (size_t)(oy0 + r) * g->ow + 16 * b, keep, acc##r);               \
    }
            EACH(STORE)
        }
    }
#undef EACH
#undef INIT
#undef ROW
#undef TAP1
#undef TAP2
#undef SUM
#undef STORE
}
#endif

/* ------------------------------------------------ channel-blocked groups */
#if defined(__x86_64__)

/* r[i] (16 floats each) becomes column i of the 16 x 16 matrix of rows r */
TL_AVX512 static inline __attribute__((always_inline)) void transpose16(__m512 r[16])
{
    __m512 t[16], u[16], v[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        u[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xee);
        u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    for (int i = 0; i < 4; i++) {
        v[i] = _mm512_shuffle_f32x4(u[i], u[i + 4], 0x88);
        v[i + 4] = _mm512_shuffle_f32x4(u[i], u[i + 4], 0xdd);
        v[i + 8] = _mm512_shuffle_f32x4(u[i + 8], u[i + 12], 0x88);
        v[i + 12] = _mm512_shuffle_f32x4(u[i + 8], u[i + 12], 0xdd);
    }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(v[i], v[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(v[i], v[i + 8], 0xdd);
    }
}

/* Output pixels computed together: independent chains of multiply-adds */
#define PIX 8

TL_AVX512 void tl_dw_group_avx512(const tl_conv_geom *g, const float *x, int nc, const float *w, const float *bias,
                                  int act, float *y, float *scratch)
{
    const tl_dw_group_layout L = tl_dw_group_layout_of(g, 16, scratch);
    tl_dw_group_setup(g, &L, 16, nc, w, bias);
    const int W = g->w, in_plane = g->h * g->w, ow = g->ow;
    const size_t out_plane = (size_t)g->oh * ow;
    const int sh = g->stride_h, sw = g->stride_w, kh = g->kh, kw = g->kw;
    const size_t dy = (size_t)g->dil_h * L.cols * 16, dx = (size_t)g->dil_w * 16;
    const __m512 vbias = _mm512_load_ps(L.bias), zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
    for (int oy0 = 0; oy0 < g->oh; oy0 += L.band) {
        const int oy1 = oy0 + L.band < g->oh ? oy0 + L.band : g->oh, P = (oy1 - oy0) * ow;
        int iy0, iy1, off;
        tl_dw_band_pad(g, &L, 16, oy0, oy1, &iy0, &iy1, &off);
        /* the band's input rows, 16 pixels at a time: pixel-major, the
         * channels in lanes */
        for (int p0 = iy0 * W, iy = iy0, ix = 0, end = iy1 * W; p0 < end; p0 += 16) {
            const int n = end - p0 < 16 ? end - p0 : 16;
            const __mmask16 pm = (__mmask16)((1u << n) - 1);
            __m512 r[16];
            for (int c = 0; c < 16; c++)
                r[c] = _mm512_maskz_loadu_ps(c < nc ? pm : 0, at(x, (int)((size_t)c * in_plane + p0)));
            transpose16(r);
            for (int j = 0; j < n; j++) {
                int px = ix + g->pad_l;
                if (px < L.cols)
                    _mm512_store_ps(L.xs + ((size_t)(iy + off) * L.cols + px) * 16, r[j]);
                if (++ix == W)
                    ix = 0, iy++;
            }
        }
        /* the sums: PIX output pixels at a time, one tap after the other */
#define EACH(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
        for (int q0 = 0, oy = 0, ox = 0; q0 < P; q0 += PIX) {
            /* pixels past the end repeat the last one (computed, then dropped) */
#define BASE(j)                                                                                    \
    const float *b##j = L.xs + ((size_t)oy * sh * L.cols + (size_t)ox * sw) * 16;                  \
    if (q0 + j + 1 < P && ++ox == ow)                                                              \
        ox = 0, oy++;                                                                              \
    __m512 a##j = vbias;
            EACH(BASE)
            const float *wt = L.w;
            for (int ky = 0; ky < kh; ky++)
                for (int kx = 0; kx < kw; kx++, wt += 16) {
                    const size_t o = ky * dy + kx * dx;
                    const __m512 wv = _mm512_load_ps(wt);
#define TAP(j) a##j = _mm512_fmadd_ps(_mm512_load_ps(b##j + o), wv, a##j);
                    EACH(TAP)
                }
#define STORE(j)                                                                                   \
    if (act == TL_ACT_RELU || act == TL_ACT_RELU6)                                                 \
        a##j = _mm512_max_ps(a##j, zero);                                                          \
    if (act == TL_ACT_RELU6)                                                                       \
        a##j = _mm512_min_ps(a##j, six);                                                           \
    _mm512_store_ps(L.ys + (size_t)(q0 + j) * 16, a##j);
            EACH(STORE)
        }
        /* the band's pixels out, 16 at a time, back into planes */
        float *yb = y + (size_t)oy0 * ow;
        for (int p0 = 0; p0 < P; p0 += 16) {
            const int n = P - p0 < 16 ? P - p0 : 16;
            const __mmask16 pm = (__mmask16)((1u << n) - 1);
            __m512 r[16];
            for (int j = 0; j < 16; j++)
                r[j] = _mm512_load_ps(L.ys + (size_t)(p0 + j) * 16);
            transpose16(r);
            for (int c = 0; c < nc; c++)
                _mm512_mask_storeu_ps(yb + c * out_plane + p0, pm, r[c]);
        }
    }
#undef EACH
#undef BASE
#undef TAP
#undef STORE
}
#endif
