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
    for (int oy = 0; oy < g->oh; oy++) {
        float *yr = y + (size_t)oy * g->ow;
        for (int b = 0; b < nb; b++) {
            __m512 acc = vbias;
            for (int ky = 0; ky < g->kh; ky++) {
                int iy = oy * g->stride_h - g->pad_t + ky * g->dil_h;
                if (iy < 0 || iy >= g->h)
                    continue;
                const float *xr = x + (size_t)iy * W;
                const float *wr = w + ky * kw;
                const int *bs = base + b * kw;
                const __mmask16 *m0 = ma + b * kw, *m1 = mb + b * kw;
                /* one partial sum per input row keeps the dependency chains short */
                __m512 t = zero;
                if (s == 1) {
                    for (int kx = 0; kx < kw; kx++)
                        t = _mm512_fmadd_ps(_mm512_set1_ps(wr[kx]), _mm512_maskz_loadu_ps(m0[kx], at(xr, bs[kx])), t);
                } else {
                    for (int kx = 0; kx < kw; kx++) {
                        __m512 lo = _mm512_maskz_loadu_ps(m0[kx], at(xr, bs[kx]));
                        __m512 hi = _mm512_maskz_loadu_ps(m1[kx], at(xr, bs[kx] + 16));
                        t = _mm512_fmadd_ps(_mm512_set1_ps(wr[kx]), _mm512_permutex2var_ps(lo, even, hi), t);
                    }
                }
                acc = _mm512_add_ps(acc, t);
            }
            if (act == TL_ACT_RELU || act == TL_ACT_RELU6)
                acc = _mm512_max_ps(acc, zero);
            if (act == TL_ACT_RELU6)
                acc = _mm512_min_ps(acc, six);
            int n = g->ow - 16 * b < 16 ? g->ow - 16 * b : 16;
            _mm512_mask_storeu_ps(yr + 16 * b, (__mmask16)((1u << n) - 1), acc);
        }
    }
}
#endif
