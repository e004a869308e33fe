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
