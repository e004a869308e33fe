/* AVX2 int8 paths: convolution tiles of 4 pixels x 16 output channels by
 * vpmaddubsw + vpmaddwd (exact: the packing splits weights into planes
 * whose pairs cannot saturate int16), depthwise rows by vpmaddwd on two
 * taps at a time, TFLite's requantisation on 8 lanes. */
#include "q8_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TL_AVX2 __attribute__((target("avx2")))

TL_AVX2 static inline __m256i requant8(const tl_q8_conv *c, __m256i acc, int ch)
{
    __m256i x = _mm256_add_epi32(acc, _mm256_loadu_si256((const __m256i *)(c->bias + ch)));
    x = _mm256_sllv_epi32(x, _mm256_loadu_si256((const __m256i *)(c->lsh + ch)));
    __m256i m = _mm256_loadu_si256((const __m256i *)(c->mult + ch));
    __m256i neg = _mm256_srli_epi32(x, 31), a = _mm256_abs_epi32(x);
    __m256i half = _mm256_set1_epi64x(1ll << 30);
    __m256i pe = _mm256_mul_epu32(a, m);
    __m256i po = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(m, 32));
    pe = _mm256_srli_epi64(_mm256_sub_epi64(_mm256_add_epi64(pe, half),
                                            _mm256_and_si256(neg, _mm256_set1_epi64x(0xffffffffll))), 31);
    po = _mm256_srli_epi64(_mm256_sub_epi64(_mm256_add_epi64(po, half), _mm256_srli_epi64(neg, 32)), 31);
    __m256i r = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
    __m256i sign = _mm256_srai_epi32(x, 31);
    r = _mm256_sub_epi32(_mm256_xor_si256(r, sign), sign);
    __m256i e = _mm256_loadu_si256((const __m256i *)(c->rsh + ch)), one = _mm256_set1_epi32(1);
    __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, e), one);
    __m256i rem = _mm256_and_si256(r, mask);
    __m256i thr = _mm256_add_epi32(_mm256_srli_epi32(mask, 1), _mm256_srli_epi32(r, 31));
    r = _mm256_srav_epi32(r, e);
    r = _mm256_sub_epi32(r, _mm256_cmpgt_epi32(rem, thr));
    r = _mm256_add_epi32(r, _mm256_set1_epi32(c->o.zout));
    r = _mm256_max_epi32(r, _mm256_set1_epi32(c->o.qmin));
    return _mm256_min_epi32(r, _mm256_set1_epi32(c->o.qmax));
}

/* 16 requantised channels (two vectors of 8) as 16 bytes */
TL_AVX2 static inline void store16(uint8_t *y, __m256i r0, __m256i r1)
{
    __m256i s = _mm256_permute4x64_epi64(_mm256_packs_epi32(r0, r1), 0xD8);
    _mm_storeu_si128((__m128i *)y, _mm_packus_epi16(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1)));
}

#define MR 4

TL_AVX2 static void tile(const tl_q8_conv *c, const uint8_t *const *ptrs, int grp, uint8_t *y, int p0, int n)
{
    __m256i acc[MR][2];
    for (int i = 0; i < MR; i++)
        acc[i][0] = acc[i][1] = _mm256_setzero_si256();
    const __m256i ones = _mm256_set1_epi16(1);
    const int kc = c->cs_in / 4, planes = c->planes;
    const int8_t *wg = c->w + (size_t)grp * c->gstride;
    for (int t = 0; t < c->ntap; t++) {
        const uint8_t *const *pt = ptrs + t * MR;
        for (int pl = 0; pl < planes; pl++) {
            const int8_t *wp = wg + (size_t)(t * planes + pl) * kc * 64;
            for (int k = 0; k < kc; k++) {
                __m256i w0 = _mm256_loadu_si256((const __m256i *)(wp + (size_t)k * 64));
                __m256i w1 = _mm256_loadu_si256((const __m256i *)(wp + (size_t)k * 64 + 32));
#pragma GCC unroll 4
                for (int i = 0; i < MR; i++) {
                    __m256i b = _mm256_set1_epi32(tl_q8_load32(pt[i] + 4 * k));
                    acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(_mm256_maddubs_epi16(b, w0), ones));
                    acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(_mm256_maddubs_epi16(b, w1), ones));
                }
            }
        }
    }
    for (int i = 0; i < n; i++)
        store16(y + (size_t)(p0 + i) * c->cs_out + grp * 16, requant8(c, acc[i][0], grp * 16),
                requant8(c, acc[i][1], grp * 16 + 8));
}

void tl_q8_rows_avx2(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1)
{
    const uint8_t *ptrs[Q8_MAX_TAPS * MR];
    for (int grp = 0; grp < c->ngroups; grp++)
        for (int p = p0; p < p1; p += MR) {
            int n = p1 - p < MR ? p1 - p : MR;
            tl_q8_tile_ptrs(c, x, p, n, MR, ptrs);
            tile(c, ptrs, grp, y, p, n);
        }
}

TL_AVX2 void tl_q8_dw_rows_avx2(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1)
{
    const tl_conv_geom *g = &c->g;
    const uint8_t *ptrs[Q8_MAX_TAPS + 1];
    const int npair = (c->ntap + 1) / 2;
    for (int p = p0; p < p1; p++) {
        int oy = p / g->ow, ox = p - oy * g->ow;
        for (int t = 0; t < c->ntap; t++)
            ptrs[t] = tl_q8_tap_ptr(c, x, oy, ox, t);
        ptrs[c->ntap] = c->pad;
        for (int grp = 0; grp < c->ngroups; grp++) {
            const int16_t *wg = c->wdw + (size_t)grp * npair * 32;
            __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
            for (int q = 0; q < npair; q++) {
                __m128i a = _mm_loadu_si128((const __m128i *)(ptrs[2 * q] + grp * 16));
                __m128i b = _mm_loadu_si128((const __m128i *)(ptrs[2 * q + 1] + grp * 16));
                const __m256i *wq = (const __m256i *)(wg + q * 32);
                acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_unpacklo_epi8(a, b)),
                                                                _mm256_loadu_si256(wq)));
                acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_unpackhi_epi8(a, b)),
                                                                _mm256_loadu_si256(wq + 1)));
            }
            store16(y + (size_t)p * c->cs_out + grp * 16, requant8(c, acc0, grp * 16), requant8(c, acc1, grp * 16 + 8));
        }
    }
}

#else
void tl_q8_rows_avx2(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1) { (void)c; (void)x; (void)y; (void)p0; (void)p1; }
void tl_q8_dw_rows_avx2(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1) { (void)c; (void)x; (void)y; (void)p0; (void)p1; }
#endif
