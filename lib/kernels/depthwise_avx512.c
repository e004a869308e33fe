/* AVX-512 depthwise plane: 16 output columns per vector; masked loads and
 * stores cover the ragged end of the interior, strides 1 and 2 are
 * vectorised (2 by an even-lane permute), borders go through the scalar tap sum. */
#include "simd.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TL_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))

static const int even_idx[16] = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};

TL_AVX512 void tl_dw_plane_avx512(const tl_conv_geom *g, const float *x, const float *w, float bias,
                                  int act, float *y)
{
    const int s = g->stride_w, d = g->dil_w, kw = g->kw;
    int lo, hi;
    tl_dw_interior(g, &lo, &hi);
    if (s > 2)
        hi = lo; /* rare: leave everything to the scalar tap sum */
    const __m512i even = _mm512_loadu_si512(even_idx);
    const __m512 vbias = _mm512_set1_ps(bias), zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
    for (int oy = 0; oy < g->oh; oy++) {
        float *yr = y + (size_t)oy * g->ow;
        for (int ox = 0; ox < lo; ox++)
            yr[ox] = tl_clamp_act(act, bias + tl_dw_point(g, x, w, oy, ox));
        for (int ox = hi; ox < g->ow; ox++)
            yr[ox] = tl_clamp_act(act, bias + tl_dw_point(g, x, w, oy, ox));
        for (int ox0 = lo; ox0 < hi; ox0 += 16) {
            int n = hi - ox0 < 16 ? hi - ox0 : 16;
            __mmask16 m = (__mmask16)((1u << n) - 1);
            int n2 = 2 * n - 1; /* input values spanned at stride 2 */
            __mmask16 mlo = (__mmask16)(n2 >= 16 ? 0xffffu : (1u << n2) - 1);
            __mmask16 mhi = (__mmask16)(n2 > 16 ? (1u << (n2 - 16)) - 1 : 0);
            __m512 acc = vbias;
            for (int ky = 0; ky < g->kh; ky++) {
                int iy = oy * g->stride_h - g->pad_t + ky * g->dil_h;
                if (iy < 0 || iy >= g->h)
                    continue;
                const float *xr = x + (size_t)iy * g->w + (ptrdiff_t)ox0 * s - g->pad_l;
                const float *wr = w + ky * kw;
                if (s == 1 && kw == 3) { /* the MobileNet case, unrolled */
                    __m512 v0 = _mm512_maskz_loadu_ps(m, xr);
                    __m512 v1 = _mm512_maskz_loadu_ps(m, xr + d);
                    __m512 v2 = _mm512_maskz_loadu_ps(m, xr + 2 * d);
                    /* short dependency chains: one partial sum per input row */
                    __m512 t = _mm512_mul_ps(_mm512_set1_ps(wr[0]), v0);
                    t = _mm512_fmadd_ps(_mm512_set1_ps(wr[1]), v1, t);
                    t = _mm512_fmadd_ps(_mm512_set1_ps(wr[2]), v2, t);
                    acc = _mm512_add_ps(acc, t);
                } else if (s == 1) {
                    for (int kx = 0; kx < kw; kx++) {
                        __m512 v = _mm512_maskz_loadu_ps(m, xr + kx * d);
                        acc = _mm512_fmadd_ps(_mm512_set1_ps(wr[kx]), v, acc);
                    }
                } else {
                    for (int kx = 0; kx < kw; kx++) {
                        __m512 a = _mm512_maskz_loadu_ps(mlo, xr + kx * d);
                        __m512 b = _mm512_maskz_loadu_ps(mhi, xr + kx * d + 16);
                        __m512 v = _mm512_permutex2var_ps(a, even, b);
                        acc = _mm512_fmadd_ps(_mm512_set1_ps(wr[kx]), v, acc);
                    }
                }
            }
            if (act == TL_ACT_RELU || act == TL_ACT_RELU6)
                acc = _mm512_max_ps(acc, zero);
            if (act == TL_ACT_RELU6)
                acc = _mm512_min_ps(acc, six);
            _mm512_mask_storeu_ps(yr + ox0, m, acc);
        }
    }
}
#endif
