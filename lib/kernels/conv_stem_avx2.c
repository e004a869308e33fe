/* AVX2 block of the direct stride-2 stem (conv_stem.c): 4 output channels
 * x 16 pixels (8 ymm sums; a last block of up to 8 pixels as one
 * vector). */
#include "conv_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TL_AVX2 __attribute__((target("avx2,fma")))
#define CB 4

static const int lane_mask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* the first n lanes (1..8) */
TL_AVX2 static inline __m256i first_lanes(int n) { return _mm256_loadu_si256((const __m256i *)(lane_mask + 8 - n)); }

/* bias and relu / relu6 as the AVX2 ukernel_ep's epilogue */
TL_AVX2 static inline __attribute__((always_inline)) __m256 epilogue(__m256 v, const float *bias, int i, int act)
{
    const __m256 zero = _mm256_setzero_ps();
    if (bias)
        v = _mm256_add_ps(v, _mm256_set1_ps(bias[i]));
    if (act == TL_ACT_RELU)
        v = _mm256_max_ps(v, zero);
    else if (act == TL_ACT_RELU6)
        v = _mm256_min_ps(_mm256_set1_ps(6.0f), _mm256_max_ps(zero, v));
    return v;
}

/* one tap (ky, kx) of channel c: its phase plane read at the block's
 * pixels, times each channel's weight */
#define TAP(ky, kx)                                                                                                    \
    do {                                                                                                               \
        const int t_ = (ky)*KS + (kx);                                                                                 \
        const float *s_ = pc + (size_t)(((ky)&1) * 2 + ((kx)&1)) * plane + (size_t)((ky) >> 1) * pw + ((kx) >> 1);     \
        const __m256 v0 = _mm256_loadu_ps(s_), v1 = nv == 2 ? _mm256_loadu_ps(s_ + 8) : v0;                            \
        _Pragma("GCC unroll 8") for (int i = 0; i < CB; i++)                                                           \
        {                                                                                                              \
            const __m256 w = _mm256_broadcast_ss(wc + t_ * CB + i);                                                    \
            acc[i][0] = _mm256_fmadd_ps(w, v0, acc[i][0]);                                                             \
            if (nv == 2)                                                                                               \
                acc[i][1] = _mm256_fmadd_ps(w, v1, acc[i][1]);                                                         \
        }                                                                                                              \
    } while (0)

TL_AVX2 static inline __attribute__((always_inline)) void block(const float *ph, size_t plane, int pw, int cin, int KS,
                                                                const float *wb, int nco, float *y, size_t ys,
                                                                const float *bias, int act, int nv, int last)
{
    __m256 acc[CB][2];
    for (int i = 0; i < CB; i++)
        acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int c = 0; c < cin; c++) {
        const float *pc = ph + (size_t)c * 4 * plane;
        const float *wc = wb + (size_t)c * KS * KS * CB;
        /* 3x3: all nine taps unrolled; larger: a loop over the rows of
         * taps, each row unrolled (the whole 7x7 unrolled ran slower) */
        if (KS == 3) {
#pragma GCC unroll 9
            for (int t = 0; t < 9; t++)
                TAP(t / 3, t % 3);
        } else
            for (int ky = 0; ky < KS; ky++)
#pragma GCC unroll 7
                for (int kx = 0; kx < KS; kx++)
                    TAP(ky, kx);
    }
    const __m256i m = first_lanes(last);
#pragma GCC unroll 8
    for (int i = 0; i < CB; i++)
        if (i < nco) {
            if (nv == 2) {
                _mm256_storeu_ps(y + i * ys, epilogue(acc[i][0], bias, i, act));
                _mm256_maskstore_ps(y + i * ys + 8, m, epilogue(acc[i][1], bias, i, act));
            } else
                _mm256_maskstore_ps(y + i * ys, m, epilogue(acc[i][0], bias, i, act));
        }
}
#undef TAP

TL_AVX2 static inline __attribute__((always_inline)) void rows_of(const float *ph, size_t plane, int pw, int rows,
                                                                  int KS, int cin, int ow, const float *wb, int nco,
                                                                  float *y, size_t ys, const float *bias, int act)
{
    for (int r = 0; r < rows; r++)
        for (int ox = 0; ox < ow;) {
            const int left = ow - ox;
            const float *p = ph + (size_t)r * pw + ox;
            float *yo = y + (size_t)r * ow + ox;
            if (left > 8) {
                block(p, plane, pw, cin, KS, wb, nco, yo, ys, bias, act, 2, left >= 16 ? 8 : left - 8);
                ox += 16;
            } else {
                block(p, plane, pw, cin, KS, wb, nco, yo, ys, bias, act, 1, left);
                ox += 8;
            }
        }
}

TL_AVX2 void tl_stem_s2_avx2(const float *ph, size_t plane, int pw, int rows, int cin, int k, int ow, const float *wb,
                             int nco, float *y, size_t ys, const float *bias, int act)
{
    /* one loop per kernel size and epilogue: its taps unrolled, its
     * branches folded away */
#define STEM_ACTS(KS)                                                                                                  \
    do {                                                                                                               \
        if (act == TL_ACT_RELU6)                                                                                       \
            rows_of(ph, plane, pw, rows, KS, cin, ow, wb, nco, y, ys, bias, TL_ACT_RELU6);                             \
        else if (act == TL_ACT_RELU)                                                                                   \
            rows_of(ph, plane, pw, rows, KS, cin, ow, wb, nco, y, ys, bias, TL_ACT_RELU);                              \
        else                                                                                                           \
            rows_of(ph, plane, pw, rows, KS, cin, ow, wb, nco, y, ys, bias, TL_ACT_NONE);                              \
    } while (0)
    if (k == 7)
        STEM_ACTS(7);
    else if (k == 5)
        STEM_ACTS(5);
    else
        STEM_ACTS(3);
#undef STEM_ACTS
}

#else /* not x86-64: never called (no AVX2 path) */
void tl_stem_s2_avx2(const float *ph, size_t plane, int pw, int rows, int cin, int k, int ow, const float *wb, int nco,
                     float *y, size_t ys, const float *bias, int act)
{
    (void)ph, (void)plane, (void)pw, (void)rows, (void)cin, (void)k, (void)ow, (void)wb, (void)nco, (void)y, (void)ys,
        (void)bias, (void)act;
}
#endif
