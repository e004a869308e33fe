/* AVX2 depthwise plane: 8 output columns per vector; maskload/maskstore
 * cover the ragged end of the interior, strides 1 and 2 are vectorised
 * (2 by an even-lane shuffle), borders go through the scalar tap sum. */
#include "simd.h"

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
