/* The two passes of the filtered resize (resize.c) on one row, per SIMD
 * path. Everything is integer: a lane adds the same products in the same
 * tap order as the scalar code, so every path gives the same bytes (and
 * PIL's). The vector paths take a tap past a pixel's own count with its
 * weight, which compute_taps leaves zero, so it adds nothing. */
#include "resize_rows.h"

#include "kernels/kernels.h"

static inline uint8_t clip8(int32_t v)
{
    if (v < 0)
        return 0;
    v >>= TL_RESIZE_PREC;
    return v > 255 ? 255 : (uint8_t)v;
}

static void hpass_scalar(const uint8_t *restrict in, int in_px, uint8_t *restrict out, int x0, int x1, int ksize,
                         const int32_t *kk, const int *bounds)
{
    (void)in_px;
    for (int xx = x0; xx < x1; xx++) {
        const int32_t *k = kk + (size_t)xx * ksize;
        const uint8_t *s = in + (size_t)bounds[2 * xx] * 3;
        int n = bounds[2 * xx + 1];
        int32_t s0 = 1 << (TL_RESIZE_PREC - 1), s1 = s0, s2 = s0;
        for (int x = 0; x < n; x++, s += 3) {
            s0 += s[0] * k[x];
            s1 += s[1] * k[x];
            s2 += s[2] * k[x];
        }
        out[3 * xx + 0] = clip8(s0);
        out[3 * xx + 1] = clip8(s1);
        out[3 * xx + 2] = clip8(s2);
    }
}

static void vpass_scalar(const uint8_t *restrict in, size_t stride, uint8_t *restrict out, int i0, int n,
                         const int32_t *k, int taps)
{
    for (int i = i0; i < n; i++) {
        int32_t acc = 1 << (TL_RESIZE_PREC - 1);
        for (int y = 0; y < taps; y++)
            acc += in[(size_t)y * stride + i] * k[y];
        out[i] = clip8(acc);
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <string.h>

#define TL_AVX2 __attribute__((target("avx2")))
#define TL_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

TL_AVX2 static inline __m128i load4(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm_cvtsi32_si128(v);
}

/* Output pixels whose taps, read 4 bytes a pixel up to the widest count
 * of a group of g, stay inside the row: [x0, the returned end). */
static int vector_end(int x0, int x1, int g, int in_px, const int *bounds, int wide)
{
    int end = x0;
    for (int xx = x0; xx + g <= x1; xx += g) {
        int last = bounds[2 * (xx + g - 1)];
        /* the last group member starts furthest right; 4-byte reads of
         * `wide` taps from it must end inside in_px pixels */
        if ((int64_t)(last + wide) * 3 + 1 > (int64_t)in_px * 3)
            break;
        end = xx + g;
    }
    return end;
}

TL_AVX2 static inline __m128i clip_pack(__m256i acc)
{
    acc = _mm256_max_epi32(acc, _mm256_setzero_si256());
    acc = _mm256_min_epi32(_mm256_srai_epi32(acc, TL_RESIZE_PREC), _mm256_set1_epi32(255));
    __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    return _mm_packus_epi16(w, w);
}

/* Two output pixels a 256-bit vector, one a 128-bit half: lanes R G B and
 * the next pixel's R (weighted, never stored). */
TL_AVX2 static void hpass_avx2(const uint8_t *restrict in, int in_px, uint8_t *restrict out, int x0, int x1,
                               int ksize, const int32_t *kk, const int *bounds)
{
    int end = vector_end(x0, x1, 2, in_px, bounds, ksize);
    const __m128i drop = _mm_setr_epi8(0, 1, 2, 4, 5, 6, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    for (int xx = x0; xx < end; xx += 2) {
        const uint8_t *s0 = in + (size_t)bounds[2 * xx] * 3, *s1 = in + (size_t)bounds[2 * xx + 2] * 3;
        const int32_t *k0 = kk + (size_t)xx * ksize, *k1 = k0 + ksize;
        int n = bounds[2 * xx + 1] > bounds[2 * xx + 3] ? bounds[2 * xx + 1] : bounds[2 * xx + 3];
        __m256i acc = _mm256_set1_epi32(1 << (TL_RESIZE_PREC - 1));
        for (int x = 0; x < n; x++) {
            __m256i p = _mm256_cvtepu8_epi32(_mm_unpacklo_epi32(load4(s0 + 3 * x), load4(s1 + 3 * x)));
            __m256i w = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi32(k0[x])),
                                                _mm_set1_epi32(k1[x]), 1);
            acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(p, w));
        }
        __m128i b = _mm_shuffle_epi8(clip_pack(acc), drop);
        memcpy(out + 3 * (size_t)xx, &b, 6);
    }
    hpass_scalar(in, in_px, out, end, x1, ksize, kk, bounds);
}

TL_AVX2 static void vpass_avx2(const uint8_t *restrict in, size_t stride, uint8_t *restrict out, int i0, int n,
                               const int32_t *k, int taps)
{
    int i = i0;
    for (; i + 16 <= n; i += 16) {
        __m256i a0 = _mm256_set1_epi32(1 << (TL_RESIZE_PREC - 1)), a1 = a0;
        for (int y = 0; y < taps; y++) {
            __m128i r = _mm_loadu_si128((const __m128i *)(in + (size_t)y * stride + i));
            __m256i w = _mm256_set1_epi32(k[y]);
            a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(r), w));
            a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(r, 8)), w));
        }
        __m128i lo = clip_pack(a0), hi = clip_pack(a1);
        _mm_storeu_si128((__m128i *)(out + i), _mm_unpacklo_epi64(lo, hi));
    }
    vpass_scalar(in, stride, out, i, n, k, taps);
}

TL_AVX512 static inline __m128i clip_pack512(__m512i acc)
{
    acc = _mm512_max_epi32(acc, _mm512_setzero_si512());
    acc = _mm512_min_epi32(_mm512_srai_epi32(acc, TL_RESIZE_PREC), _mm512_set1_epi32(255));
    return _mm512_cvtepi32_epi8(acc);
}

/* Four output pixels a 512-bit vector, one a 128-bit quarter. */
TL_AVX512 static void hpass_avx512(const uint8_t *restrict in, int in_px, uint8_t *restrict out, int x0, int x1,
                                   int ksize, const int32_t *kk, const int *bounds)
{
    int end = vector_end(x0, x1, 4, in_px, bounds, ksize);
    const __m128i drop = _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
    const __m512i spread = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m128i kstep = _mm_setr_epi32(0, ksize, 2 * ksize, 3 * ksize);
    for (int xx = x0; xx < end; xx += 4) {
        const uint8_t *s0 = in + (size_t)bounds[2 * xx] * 3, *s1 = in + (size_t)bounds[2 * xx + 2] * 3;
        const uint8_t *s2 = in + (size_t)bounds[2 * xx + 4] * 3, *s3 = in + (size_t)bounds[2 * xx + 6] * 3;
        const int32_t *k0 = kk + (size_t)xx * ksize;
        int n = bounds[2 * xx + 1];
        for (int j = 1; j < 4; j++)
            n = bounds[2 * (xx + j) + 1] > n ? bounds[2 * (xx + j) + 1] : n;
        __m512i acc = _mm512_set1_epi32(1 << (TL_RESIZE_PREC - 1));
        for (int x = 0; x < n; x++) {
            __m128i q = _mm_unpacklo_epi64(_mm_unpacklo_epi32(load4(s0 + 3 * x), load4(s1 + 3 * x)),
                                           _mm_unpacklo_epi32(load4(s2 + 3 * x), load4(s3 + 3 * x)));
            __m128i kw = _mm_i32gather_epi32(k0 + x, kstep, 4);
            __m512i w = _mm512_permutexvar_epi32(spread, _mm512_castsi128_si512(kw));
            acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(_mm512_cvtepu8_epi32(q), w));
        }
        __m128i b = _mm_shuffle_epi8(clip_pack512(acc), drop);
        memcpy(out + 3 * (size_t)xx, &b, 12);
    }
    hpass_avx2(in, in_px, out, end, x1, ksize, kk, bounds);
}

TL_AVX512 static void vpass_avx512(const uint8_t *restrict in, size_t stride, uint8_t *restrict out, int i0, int n,
                                   const int32_t *k, int taps)
{
    int i = i0;
    for (; i + 32 <= n; i += 32) {
        __m512i a0 = _mm512_set1_epi32(1 << (TL_RESIZE_PREC - 1)), a1 = a0;
        for (int y = 0; y < taps; y++) {
            const uint8_t *r = in + (size_t)y * stride + i;
            __m512i w = _mm512_set1_epi32(k[y]);
            a0 = _mm512_add_epi32(a0, _mm512_mullo_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)r)), w));
            a1 = _mm512_add_epi32(
                a1, _mm512_mullo_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(r + 16))), w));
        }
        _mm_storeu_si128((__m128i *)(out + i), clip_pack512(a0));
        _mm_storeu_si128((__m128i *)(out + i + 16), clip_pack512(a1));
    }
    vpass_avx2(in, stride, out, i, n, k, taps);
}
#endif

tl_resize_rows tl_resize_rows_for(int level)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (level >= TL_SIMD_AVX512)
        return (tl_resize_rows){hpass_avx512, vpass_avx512};
    if (level >= TL_SIMD_AVX2)
        return (tl_resize_rows){hpass_avx2, vpass_avx2};
#endif
    (void)level;
    return (tl_resize_rows){hpass_scalar, vpass_scalar};
}
