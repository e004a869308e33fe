/* AVX-512 depthwise plane: 16 output columns per vector, every column
 * including the borders: a tap's lanes that fall in the padding are masked
 * off in the load (masked lanes read nothing and give zero). Strides 1 and
 * 2 are vectorised (2 by an even-lane permute of two loads); larger strides
 * go through the scalar tap sum. */
#include "simd.h"
#include "act_internal.h"

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
#undef LOAD
#undef PUT
#undef YLOAD
#undef YPUT
}
#endif

/* ------------------------------------------------ channel-blocked groups */
#if defined(__x86_64__)

/* r0..r15 (16 floats each) become the columns of the 16 x 16 matrix of
 * rows r0..r15; written out (no arrays) so that they stay in registers */
#define T16(r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15)                 \
    do {                                                                                           \
        __m512 t0 = _mm512_unpacklo_ps(r0, r1), t1 = _mm512_unpackhi_ps(r0, r1);                   \
        __m512 t2 = _mm512_unpacklo_ps(r2, r3), t3 = _mm512_unpackhi_ps(r2, r3);                   \
        __m512 t4 = _mm512_unpacklo_ps(r4, r5), t5 = _mm512_unpackhi_ps(r4, r5);                   \
        __m512 t6 = _mm512_unpacklo_ps(r6, r7), t7 = _mm512_unpackhi_ps(r6, r7);                   \
        __m512 t8 = _mm512_unpacklo_ps(r8, r9), t9 = _mm512_unpackhi_ps(r8, r9);                   \
        __m512 ta = _mm512_unpacklo_ps(r10, r11), tb = _mm512_unpackhi_ps(r10, r11);               \
        __m512 tc = _mm512_unpacklo_ps(r12, r13), td = _mm512_unpackhi_ps(r12, r13);               \
        __m512 te = _mm512_unpacklo_ps(r14, r15), tf = _mm512_unpackhi_ps(r14, r15);               \
        __m512 u0 = _mm512_shuffle_ps(t0, t2, 0x44), u1 = _mm512_shuffle_ps(t0, t2, 0xee);         \
        __m512 u2 = _mm512_shuffle_ps(t1, t3, 0x44), u3 = _mm512_shuffle_ps(t1, t3, 0xee);         \
        __m512 u4 = _mm512_shuffle_ps(t4, t6, 0x44), u5 = _mm512_shuffle_ps(t4, t6, 0xee);         \
        __m512 u6 = _mm512_shuffle_ps(t5, t7, 0x44), u7 = _mm512_shuffle_ps(t5, t7, 0xee);         \
        __m512 u8 = _mm512_shuffle_ps(t8, ta, 0x44), u9 = _mm512_shuffle_ps(t8, ta, 0xee);         \
        __m512 ua = _mm512_shuffle_ps(t9, tb, 0x44), ub = _mm512_shuffle_ps(t9, tb, 0xee);         \
        __m512 uc = _mm512_shuffle_ps(tc, te, 0x44), ud = _mm512_shuffle_ps(tc, te, 0xee);         \
        __m512 ue = _mm512_shuffle_ps(td, tf, 0x44), uf = _mm512_shuffle_ps(td, tf, 0xee);         \
        __m512 v0 = _mm512_shuffle_f32x4(u0, u4, 0x88), v4 = _mm512_shuffle_f32x4(u0, u4, 0xdd);   \
        __m512 v1 = _mm512_shuffle_f32x4(u1, u5, 0x88), v5 = _mm512_shuffle_f32x4(u1, u5, 0xdd);   \
        __m512 v2 = _mm512_shuffle_f32x4(u2, u6, 0x88), v6 = _mm512_shuffle_f32x4(u2, u6, 0xdd);   \
        __m512 v3 = _mm512_shuffle_f32x4(u3, u7, 0x88), v7 = _mm512_shuffle_f32x4(u3, u7, 0xdd);   \
        __m512 v8 = _mm512_shuffle_f32x4(u8, uc, 0x88), vc = _mm512_shuffle_f32x4(u8, uc, 0xdd);   \
        __m512 v9 = _mm512_shuffle_f32x4(u9, ud, 0x88), vd = _mm512_shuffle_f32x4(u9, ud, 0xdd);   \
        __m512 va = _mm512_shuffle_f32x4(ua, ue, 0x88), ve = _mm512_shuffle_f32x4(ua, ue, 0xdd);   \
        __m512 vb = _mm512_shuffle_f32x4(ub, uf, 0x88), vf = _mm512_shuffle_f32x4(ub, uf, 0xdd);   \
        r0 = _mm512_shuffle_f32x4(v0, v8, 0x88), r8 = _mm512_shuffle_f32x4(v0, v8, 0xdd);          \
        r1 = _mm512_shuffle_f32x4(v1, v9, 0x88), r9 = _mm512_shuffle_f32x4(v1, v9, 0xdd);          \
        r2 = _mm512_shuffle_f32x4(v2, va, 0x88), r10 = _mm512_shuffle_f32x4(v2, va, 0xdd);         \
        r3 = _mm512_shuffle_f32x4(v3, vb, 0x88), r11 = _mm512_shuffle_f32x4(v3, vb, 0xdd);         \
        r4 = _mm512_shuffle_f32x4(v4, vc, 0x88), r12 = _mm512_shuffle_f32x4(v4, vc, 0xdd);         \
        r5 = _mm512_shuffle_f32x4(v5, vd, 0x88), r13 = _mm512_shuffle_f32x4(v5, vd, 0xdd);         \
        r6 = _mm512_shuffle_f32x4(v6, ve, 0x88), r14 = _mm512_shuffle_f32x4(v6, ve, 0xdd);         \
        r7 = _mm512_shuffle_f32x4(v7, vf, 0x88), r15 = _mm512_shuffle_f32x4(v7, vf, 0xdd);         \
    } while (0)
#define EACH16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define TRANSPOSE16 T16(r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15)

/* Output pixels computed together: independent chains of multiply-adds */
#define PIX 8

/* 3x3 kernels, stride 1 or 2, dilation 1: columns 0..ox0-1 (a multiple of
 * PIX) of `rows` output rows of a band, PIX pixels of one row at a time,
 * the 9 weights in registers and each input cell loaded once for the (up
 * to 3) taps that read it. Every sum still adds its taps in the order ky,
 * kx from the bias: the bits of the generic loop. */
TL_AVX512 __attribute__((noinline)) static void sums_k33(const tl_conv_geom *g, const tl_dw_group_layout *L,
                                                        int rows, int ox0, int act)
{
    const int sh = g->stride_h, sw = g->stride_w, ow = g->ow;
    const size_t dy = (size_t)L->cols * 16;
    const __m512 vbias = _mm512_load_ps(L->bias), zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
#define WT(t) _mm512_load_ps(L->w + (t) * 16)
    const __m512 w00 = WT(0), w01 = WT(1), w02 = WT(2), w10 = WT(3), w11 = WT(4), w12 = WT(5);
    const __m512 w20 = WT(6), w21 = WT(7), w22 = WT(8);
#define X(i) _mm512_load_ps(r + (i) * 16)
#define SUM3(j, p, q, t, w0, w1, w2)                                                               \
    a##j = _mm512_fmadd_ps(p, w0, a##j);                                                           \
    a##j = _mm512_fmadd_ps(q, w1, a##j);                                                           \
    a##j = _mm512_fmadd_ps(t, w2, a##j);
#define ROW3(ky, w0, w1, w2)                                                                       \
    {                                                                                              \
        const float *r = b + (ky) * dy;                                                            \
        if (sw == 1) {                                                                             \
            __m512 x0 = X(0), x1 = X(1), x2 = X(2), x3 = X(3), x4 = X(4);                          \
            __m512 x5 = X(5), x6 = X(6), x7 = X(7), x8 = X(8), x9 = X(9);                          \
            SUM3(0, x0, x1, x2, w0, w1, w2) SUM3(1, x1, x2, x3, w0, w1, w2)                        \
            SUM3(2, x2, x3, x4, w0, w1, w2) SUM3(3, x3, x4, x5, w0, w1, w2)                        \
            SUM3(4, x4, x5, x6, w0, w1, w2) SUM3(5, x5, x6, x7, w0, w1, w2)                        \
            SUM3(6, x6, x7, x8, w0, w1, w2) SUM3(7, x7, x8, x9, w0, w1, w2)                        \
        } else {                                                                                   \
            SUM3(0, X(0), X(1), X(2), w0, w1, w2) SUM3(1, X(2), X(3), X(4), w0, w1, w2)            \
            SUM3(2, X(4), X(5), X(6), w0, w1, w2) SUM3(3, X(6), X(7), X(8), w0, w1, w2)            \
            SUM3(4, X(8), X(9), X(10), w0, w1, w2) SUM3(5, X(10), X(11), X(12), w0, w1, w2)        \
            SUM3(6, X(12), X(13), X(14), w0, w1, w2) SUM3(7, X(14), X(15), X(16), w0, w1, w2)      \
        }                                                                                          \
    }
#define PUT8(j)                                                                                    \
    if (act == TL_ACT_RELU || act == TL_ACT_RELU6)                                                 \
        a##j = _mm512_max_ps(a##j, zero);                                                          \
    if (act == TL_ACT_RELU6)                                                                       \
        a##j = _mm512_min_ps(a##j, six);                                                           \
    _mm512_store_ps(yq + (j) * 16, a##j);
    for (int oy = 0; oy < rows; oy++)
        for (int ox = 0; ox < ox0; ox += PIX) {
            const float *b = L->xs + ((size_t)oy * sh * L->cols + (size_t)ox * sw) * 16;
            float *yq = L->ys + ((size_t)oy * ow + ox) * 16;
            __m512 a0 = vbias, a1 = vbias, a2 = vbias, a3 = vbias, a4 = vbias, a5 = vbias, a6 = vbias, a7 = vbias;
            ROW3(0, w00, w01, w02)
            ROW3(1, w10, w11, w12)
            ROW3(2, w20, w21, w22)
            PUT8(0) PUT8(1) PUT8(2) PUT8(3) PUT8(4) PUT8(5) PUT8(6) PUT8(7)
        }
#undef WT
#undef X
#undef SUM3
#undef ROW3
#undef PUT8
}

/* The means' running sums (tl_dw_means_take), a vector a pixel: the
 * band's pixel q is pixel p0 + q of the plane, added into sum (p0 + q) % 16 */
TL_AVX512 static void means_add(float *acc, const float *ys, size_t p0, int P)
{
    int q = 0, j = (int)(p0 % 16);
    for (; q < P; q++) {
        float *a = acc + (size_t)j * 16;
        _mm512_store_ps(a, _mm512_add_ps(_mm512_load_ps(a), _mm512_load_ps(ys + (size_t)q * 16)));
        j = (j + 1) & 15;
    }
}

TL_AVX512 void tl_dw_group_avx512(const tl_conv_geom *g, const float *x, int nc, const float *w, const float *bias,
                                  int act, float *y, float *means, float *scratch)
{
    const tl_dw_group_layout L = tl_dw_group_layout_of(g, 16, scratch);
    tl_dw_group_setup(g, &L, 16, nc, w, bias);
    const int post = act != TL_ACT_NONE && act != TL_ACT_RELU && act != TL_ACT_RELU6;
    float acc[16 * 16] __attribute__((aligned(64))); /* the means' running sums */
    if (means)
        memset(acc, 0, sizeof acc);
    const int W = g->w, in_plane = g->h * g->w, ow = g->ow;
    const size_t out_plane = (size_t)g->oh * ow;
    const int sh = g->stride_h, sw = g->stride_w, kh = g->kh, kw = g->kw;
    const size_t dy = (size_t)g->dil_h * L.cols * 16, dx = (size_t)g->dil_w * 16;
    const __m512 vbias = _mm512_load_ps(L.bias), zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
    /* every input column has its cell in a padded row */
    const int whole = g->pad_l >= 0 && g->pad_l + W <= L.cols;
    const int k33 = kh == 3 && kw == 3 && g->dil_h == 1 && g->dil_w == 1 && (sw == 1 || sw == 2) && ow >= PIX;
    for (int oy0 = 0; oy0 < g->oh; oy0 += L.band) {
        const int oy1 = oy0 + L.band < g->oh ? oy0 + L.band : g->oh, P = (oy1 - oy0) * ow;
        int iy0, iy1, off;
        tl_dw_band_pad(g, &L, 16, oy0, oy1, &iy0, &iy1, &off);
        /* the band's input rows, 16 pixels at a time: pixel-major, the
         * channels in lanes */
        for (int p0 = iy0 * W, iy = iy0, ix = 0, end = iy1 * W; p0 < end; p0 += 16) {
            const int n = end - p0 < 16 ? end - p0 : 16;
            const __mmask16 pm = (__mmask16)((1u << n) - 1);
#define LOAD(c)                                                                                    \
    __m512 r##c = _mm512_maskz_loadu_ps(c < nc ? pm : 0, at(x, (int)((size_t)c * in_plane + p0)));     \
    if (c < nc)                                                                                    \
        _mm_prefetch((const char *)at(x, (int)((size_t)c * in_plane + p0 + 64)), _MM_HINT_T0);
            EACH16(LOAD)
            TRANSPOSE16;
#define PUT(j)                                                                                     \
    if (j < n) {                                                                                   \
        int px = ix + g->pad_l;                                                                    \
        if (px < L.cols)                                                                           \
            _mm512_store_ps(L.xs + ((size_t)(iy + off) * L.cols + px) * 16, r##j);                 \
        if (++ix == W)                                                                             \
            ix = 0, iy++;                                                                          \
    }
            if (n == 16 && whole && 16 - (W - ix) <= W) {
                /* the 16 pixels lie in one input row, or end one and start
                 * the next: two runs of consecutive cells */
                const int m = W - ix;
                const size_t c0 = (size_t)(iy + off) * L.cols + ix + g->pad_l, c1 = c0 + L.cols - W;
#define PUTROW(j) _mm512_store_ps(L.xs + ((j) < m ? c0 : c1) * 16 + (j) * 16, r##j);
                EACH16(PUTROW)
                if (m > 16)
                    ix += 16;
                else if ((ix = 16 - m) == W) /* the second run took the whole next row */
                    ix = 0, iy += 2;
                else
                    iy++;
            } else {
                EACH16(PUT)
            }
        }
        /* 3x3, stride 1 or 2: whole runs of PIX pixels of each row first */
        const int ox0 = k33 ? ow / PIX * PIX : 0;
        if (k33)
            sums_k33(g, &L, oy1 - oy0, ox0, act);
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
            for (int kx = 0; kx < kw; kx++, wt += 16) {                                            \
                const size_t o = ky * dy + kx * dx;                                                \
                const __m512 wv = _mm512_load_ps(wt);                                              \
                EACH(TAP)                                                                          \
            }                                                                                      \
        EACH(STORE)                                                                                \
    }
#define BASE(j)                                                                                    \
    const float *b##j = L.xs + ((size_t)oy * sh * L.cols + (size_t)ox * sw) * 16;                  \
    float *y##j = YAT(j);                                                                          \
    if (q0 + j + 1 < Q && ++ox == ow)                                                              \
        ox = ox0, oy++;                                                                            \
    __m512 a##j = vbias;
#define TAP(j) a##j = _mm512_fmadd_ps(_mm512_load_ps(b##j + o), wv, a##j);
#define STORE(j)                                                                                   \
    if (act == TL_ACT_RELU || act == TL_ACT_RELU6)                                                 \
        a##j = _mm512_max_ps(a##j, zero);                                                          \
    if (act == TL_ACT_RELU6)                                                                       \
        a##j = _mm512_min_ps(a##j, six);                                                           \
    _mm512_store_ps(y##j, a##j);
        if (ox0 == 0) {
#define YAT(j) (L.ys + (size_t)(q0 + j) * 16)
            SUMS
#undef YAT
        } else {
#define YAT(j) (L.ys + ((size_t)oy * ow + ox) * 16)
            SUMS
#undef YAT
        }
        if (post)
            tl_act_rows_avx512(act, L.ys, 0, L.ys, 0, NULL, 1, (size_t)P * 16);
        if (means)
            means_add(acc, L.ys, (size_t)oy0 * ow, P);
        /* the band's pixels out, 16 at a time, back into planes */
        float *yb = y + (size_t)oy0 * ow;
        for (int p0 = 0; p0 < P; p0 += 16) {
            const int n = P - p0 < 16 ? P - p0 : 16;
            const __mmask16 pm = (__mmask16)((1u << n) - 1);
#define YLOAD(j) __m512 r##j = _mm512_load_ps(L.ys + (size_t)(p0 + j) * 16);
            EACH16(YLOAD)
            TRANSPOSE16;
#define YPUT(c)                                                                                    \
    if (c < nc)                                                                                    \
        _mm512_mask_storeu_ps(yb + c * out_plane + p0, pm, r##c);
            EACH16(YPUT)
        }
    }
    if (means)
        tl_dw_means_take(acc, 16, nc, out_plane, means);
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
