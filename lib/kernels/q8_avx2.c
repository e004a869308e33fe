/* AVX2 int8 paths: convolution tiles of 4 pixels x 16 output channels by
 * vpmaddubsw + vpmaddwd (exact: the packing splits weights into planes
 * whose pairs cannot saturate int16), depthwise rows by vpmaddwd on two
 * taps at a time, TFLite's requantisation on 8 lanes. */
#include "q8_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TL_AVX2 __attribute__((target("avx2")))

TL_AVX2 static inline __m256i mul_shift8(__m256i x, __m256i m, __m256i e, __m256i away)
{
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
    __m256i one = _mm256_set1_epi32(1);
    __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, e), one);
    __m256i rem = _mm256_and_si256(r, mask);
    __m256i thr = _mm256_add_epi32(_mm256_srli_epi32(mask, 1), _mm256_and_si256(_mm256_srli_epi32(r, 31), away));
    r = _mm256_srav_epi32(r, e);
    return _mm256_sub_epi32(r, _mm256_cmpgt_epi32(rem, thr));
}

/* Requantisation of 8 sums of channels ch..ch+7 (ch a multiple of 8) in
 * one rounding on 64-bit lanes (see requant_consts in q8_conv.c). */
TL_AVX2 static inline __m256i requant8(const tl_q8_conv *c, __m256i acc, int ch)
{
    __m256i x = _mm256_add_epi32(acc, _mm256_loadu_si256((const __m256i *)(c->bias + ch)));
    if (c->any_lsh)
        x = _mm256_sllv_epi32(x, _mm256_loadu_si256((const __m256i *)(c->lsh + ch)));
    __m256i m = _mm256_loadu_si256((const __m256i *)(c->mult + ch));
    __m256i pe = _mm256_mul_epi32(x, m);
    __m256i po = _mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(m, 32));
    __m256i re = _mm256_add_epi64(pe, _mm256_loadu_si256((const __m256i *)(c->rnd + ch)));
    __m256i ro = _mm256_add_epi64(po, _mm256_loadu_si256((const __m256i *)(c->rnd + ch + 4)));
    if (c->away) {
        const __m256i lim = _mm256_set1_epi64x(-(1ll << 30));
        re = _mm256_sub_epi64(re, _mm256_and_si256(_mm256_cmpgt_epi64(lim, pe),
                                                   _mm256_loadu_si256((const __m256i *)(c->adj + ch))));
        ro = _mm256_sub_epi64(ro, _mm256_and_si256(_mm256_cmpgt_epi64(lim, po),
                                                   _mm256_loadu_si256((const __m256i *)(c->adj + ch + 4))));
    }
    re = _mm256_srlv_epi64(re, _mm256_loadu_si256((const __m256i *)(c->sh64 + ch)));
    ro = _mm256_srlv_epi64(ro, _mm256_loadu_si256((const __m256i *)(c->sh64 + ch + 4)));
    __m256i r = _mm256_blend_epi32(re, _mm256_slli_epi64(ro, 32), 0xAA);
    r = _mm256_add_epi32(r, _mm256_loadu_si256((const __m256i *)(c->post + ch)));
    r = _mm256_max_epi32(r, _mm256_set1_epi32(c->o.qmin));
    return _mm256_min_epi32(r, _mm256_set1_epi32(c->o.qmax));
}

/* requant8's bytes in its short form (requant_short in q8_conv.c): the
 * high halves of x*m + K, then one 32-bit arithmetic shift; the zero point
 * is in K. 9-11 operations for 8 channels where requant8 takes 14. */
TL_AVX2 static inline __m256i requant8s(const tl_q8_conv *c, __m256i acc, int ch)
{
    __m256i x = _mm256_add_epi32(acc, _mm256_loadu_si256((const __m256i *)(c->bias + ch)));
    if (c->any_xs)
        x = _mm256_sllv_epi32(x, _mm256_loadu_si256((const __m256i *)(c->xs + ch)));
    __m256i pe = _mm256_mul_epi32(x, _mm256_loadu_si256((const __m256i *)(c->mult + ch)));
    __m256i po = _mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_loadu_si256((const __m256i *)(c->modd + ch)));
    __m256i ke = _mm256_loadu_si256((const __m256i *)(c->kq + ch));
    __m256i ko = _mm256_loadu_si256((const __m256i *)(c->kq + ch + 4));
    if (c->away) { /* x*m < -2^30 takes kqn: blendv reads each 64-bit lane's sign */
        const __m256i lim = _mm256_set1_epi64x(-(1ll << 30));
        ke = _mm256_castpd_si256(_mm256_blendv_pd(_mm256_castsi256_pd(ke),
                                                  _mm256_loadu_pd((const double *)(const void *)(c->kqn + ch)),
                                                  _mm256_castsi256_pd(_mm256_cmpgt_epi64(lim, pe))));
        ko = _mm256_castpd_si256(_mm256_blendv_pd(_mm256_castsi256_pd(ko),
                                                  _mm256_loadu_pd((const double *)(const void *)(c->kqn + ch + 4)),
                                                  _mm256_castsi256_pd(_mm256_cmpgt_epi64(lim, po))));
    }
    pe = _mm256_add_epi64(pe, ke);
    po = _mm256_add_epi64(po, ko);
    __m256i r = _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
    r = _mm256_srav_epi32(r, _mm256_loadu_si256((const __m256i *)(c->sh32 + ch)));
    /* store16's saturating packs clamp to [0, 255] already */
    if (c->o.qmin > 0)
        r = _mm256_max_epi32(r, _mm256_set1_epi32(c->o.qmin));
    if (c->o.qmax < 255)
        r = _mm256_min_epi32(r, _mm256_set1_epi32(c->o.qmax));
    return r;
}

/* The layer's form: requant8s where it fits. */
TL_AVX2 static inline __m256i requant8x(const tl_q8_conv *c, __m256i acc, int ch)
{
    return c->rq_short ? requant8s(c, acc, ch) : requant8(c, acc, ch);
}

/* The same bytes in gemmlowp's two roundings, fewer constants. */
TL_AVX2 static inline __m256i requant8_2r(const tl_q8_conv *c, __m256i acc, int ch)
{
    __m256i x = _mm256_add_epi32(acc, _mm256_loadu_si256((const __m256i *)(c->bias + ch)));
    x = _mm256_sllv_epi32(x, _mm256_loadu_si256((const __m256i *)(c->lsh + ch)));
    __m256i r = mul_shift8(x, _mm256_loadu_si256((const __m256i *)(c->mult + ch)),
                           _mm256_loadu_si256((const __m256i *)(c->rsh + ch)), _mm256_set1_epi32(c->away));
    r = _mm256_add_epi32(r, _mm256_set1_epi32(c->o.zout));
    r = _mm256_max_epi32(r, _mm256_set1_epi32(c->o.qmin));
    return _mm256_min_epi32(r, _mm256_set1_epi32(c->o.qmax));
}

#ifndef RQ_TILE
#define RQ_TILE requant8x
#endif
#ifndef RQ_DW
#define RQ_DW requant8x
#endif
#ifndef RQ_TILE16
#define RQ_TILE16 requant8x
#endif
#ifndef RQ_COLS
#define RQ_COLS requant8x
#endif

/* 16 requantised channels (two vectors of 8) as 16 bytes */
TL_AVX2 static inline void store16(uint8_t *y, __m256i r0, __m256i r1)
{
    __m256i s = _mm256_permute4x64_epi64(_mm256_packs_epi32(r0, r1), 0xD8);
    _mm_storeu_si128((__m128i *)y, _mm_packus_epi16(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1)));
}

TL_AVX2 void tl_q8_requant_avx2(const tl_q8_conv *c, const int32_t *acc, size_t n, int32_t *y, int form)
{
    for (size_t i = 0; i < n; i += 8) {
        int ch = (int)(i % (size_t)c->cs_out);
        __m256i a = _mm256_loadu_si256((const __m256i *)(acc + i));
        _mm256_storeu_si256((__m256i *)(y + i), form ? requant8s(c, a, ch) : requant8(c, a, ch));
    }
}

/* x * m rescaled in one 64-bit rounding (tl_q8_add_init's constants k). */
TL_AVX2 static inline __m256i add_rescale8(__m256i x, __m256i m, const tl_q8_add *a, int k)
{
    const __m256i lim = _mm256_set1_epi64x(-(1ll << 30)), rnd = _mm256_set1_epi64x(a->rnd[k]);
    const __m256i adj = _mm256_set1_epi64x(a->adj[k]);
    const __m128i sh = _mm_cvtsi32_si128(a->sh[k]);
    __m256i pe = _mm256_mul_epi32(x, m), po = _mm256_mul_epi32(_mm256_srli_epi64(x, 32), m);
    __m256i re = _mm256_sub_epi64(_mm256_add_epi64(pe, rnd), _mm256_and_si256(_mm256_cmpgt_epi64(lim, pe), adj));
    __m256i ro = _mm256_sub_epi64(_mm256_add_epi64(po, rnd), _mm256_and_si256(_mm256_cmpgt_epi64(lim, po), adj));
    re = _mm256_srl_epi64(re, sh);
    ro = _mm256_srl_epi64(ro, sh);
    return _mm256_sub_epi32(_mm256_blend_epi32(re, _mm256_slli_epi64(ro, 32), 0xAA), _mm256_set1_epi32(a->post[k]));
}

/* One input of the short-form ADD (tl_q8_add_init), its constants in
 * registers: the output bytes may alias *a for the compiler, which would
 * reload them from it after every store. */
typedef struct {
    __m256i z, mh, ml, r, adj;
    __m128i sh;
} add_in;

TL_AVX2 static inline void add_in_load(const tl_q8_add *a, int k, add_in *c)
{
    c->z = _mm256_set1_epi32(k ? a->z2 : a->z1);
    c->mh = _mm256_set1_epi32(a->fmh[k]);
    c->ml = _mm256_set1_epi32(a->fml[k]);
    c->r = _mm256_set1_epi32(a->fr[k]);
    c->adj = _mm256_set1_epi32(a->fadj[k]);
    c->sh = _mm_cvtsi32_si128(a->fsh[k]);
}

/* 8 bytes of one input rescaled in 32-bit lanes. */
TL_AVX2 static inline __m256i add_in8(const uint8_t *x, const add_in *c)
{
    __m256i d = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)x)), c->z);
    __m256i lo = _mm256_add_epi32(_mm256_mullo_epi32(d, c->ml), c->r);
    lo = _mm256_sub_epi32(lo, _mm256_and_si256(_mm256_srai_epi32(d, 31), c->adj));
    return _mm256_add_epi32(_mm256_mullo_epi32(d, c->mh), _mm256_sra_epi32(lo, c->sh));
}

/* The short-form ADD: inputs in 32-bit lanes, the output's rounding from
 * the high halves of the 64-bit products. */
TL_AVX2 static void add_fast8(const tl_q8_add *a, size_t n, const uint8_t *x1, const uint8_t *x2, uint8_t *y)
{
    add_in c1, c2;
    add_in_load(a, 0, &c1);
    add_in_load(a, 1, &c2);
    const __m256i mo = _mm256_set1_epi32(a->mout), ko = _mm256_set1_epi64x(a->fko);
    const __m256i adj = _mm256_set1_epi64x(1ll << 31), lim = _mm256_set1_epi64x(-(1ll << 30));
    const __m256i zo = _mm256_set1_epi32(a->zout), lo = _mm256_set1_epi32(a->qmin), hi = _mm256_set1_epi32(a->qmax);
    const __m128i osh = _mm_cvtsi32_si128(a->fosh);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i r[2];
        for (int h = 0; h < 2; h++) {
            __m256i s = _mm256_add_epi32(add_in8(x1 + i + 8 * h, &c1), add_in8(x2 + i + 8 * h, &c2));
            __m256i pe = _mm256_mul_epi32(s, mo), po = _mm256_mul_epi32(_mm256_srli_epi64(s, 32), mo);
            __m256i ne = _mm256_sub_epi64(_mm256_add_epi64(pe, ko), _mm256_and_si256(_mm256_cmpgt_epi64(lim, pe), adj));
            __m256i no = _mm256_sub_epi64(_mm256_add_epi64(po, ko), _mm256_and_si256(_mm256_cmpgt_epi64(lim, po), adj));
            __m256i q = _mm256_sra_epi32(_mm256_blend_epi32(_mm256_srli_epi64(ne, 32), no, 0xAA), osh);
            r[h] = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(q, zo), lo), hi);
        }
        store16(y + i, r[0], r[1]);
    }
    if (i < n)
        tl_q8_add_scalar(a, n - i, x1 + i, x2 + i, y + i);
}

TL_AVX2 void tl_q8_add_avx2(const tl_q8_add *a, size_t n, const uint8_t *x1, const uint8_t *x2, uint8_t *y)
{
    if (a->fast) {
        add_fast8(a, n, x1, x2, y);
        return;
    }
    if (!a->one) {
        tl_q8_add_scalar(a, n, x1, x2, y);
        return;
    }
    const __m256i z1 = _mm256_set1_epi32(a->z1), z2 = _mm256_set1_epi32(a->z2), zo = _mm256_set1_epi32(a->zout);
    const __m256i m1 = _mm256_set1_epi32(a->m1), m2 = _mm256_set1_epi32(a->m2), mo = _mm256_set1_epi32(a->mout);
    const __m256i lo = _mm256_set1_epi32(a->qmin), hi = _mm256_set1_epi32(a->qmax);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i r[2];
        for (int h = 0; h < 2; h++) {
            __m256i u = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(x1 + i + 8 * h)));
            __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(x2 + i + 8 * h)));
            u = _mm256_slli_epi32(_mm256_sub_epi32(u, z1), 20);
            v = _mm256_slli_epi32(_mm256_sub_epi32(v, z2), 20);
            __m256i s = _mm256_add_epi32(add_rescale8(u, m1, a, 0), add_rescale8(v, m2, a, 1));
            r[h] = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(add_rescale8(s, mo, a, 2), zo), lo), hi);
        }
        store16(y + i, r[0], r[1]);
    }
    if (i < n)
        tl_q8_add_scalar(a, n - i, x1 + i, x2 + i, y + i);
}

TL_AVX2 void tl_q8_quantize_row_avx2(const float *x, int n, float scale, int zero, uint8_t *y)
{
    const __m256 s = _mm256_set1_ps(scale), half = _mm256_set1_ps(0.5f), mhalf = _mm256_set1_ps(-0.5f);
    const __m256 one = _mm256_set1_ps(1.0f), z = _mm256_set1_ps((float)zero), top = _mm256_set1_ps(255.0f);
    const __m256 bottom = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i), s);
        __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        __m256 d = _mm256_sub_ps(v, t);
        t = _mm256_add_ps(t, _mm256_and_ps(_mm256_cmp_ps(d, half, _CMP_GE_OQ), one));
        t = _mm256_sub_ps(t, _mm256_and_ps(_mm256_cmp_ps(d, mhalf, _CMP_LE_OQ), one));
        t = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(t, z), bottom), top);
        __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(_mm256_cvttps_epi32(t)),
                                    _mm256_extracti128_si256(_mm256_cvttps_epi32(t), 1));
        _mm_storel_epi64((__m128i *)(y + i), _mm_packus_epi16(w, w));
    }
    if (i < n)
        tl_q8_quantize_row_scalar(x + i, n - i, scale, zero, y + i);
}

/* A 16 x 16 byte block transposed: four rounds of interleaving row i with
 * row i + 8 (a perfect shuffle each; after log2(16) of them, the transpose). */
TL_AVX2 void tl_q8_transpose16_avx2(const uint8_t *in, size_t in_stride, uint8_t *out, size_t out_stride)
{
    __m128i r[16], a[16];
    for (int i = 0; i < 16; i++)
        r[i] = _mm_loadu_si128((const __m128i *)(in + i * in_stride));
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 8; i++) {
            a[2 * i] = _mm_unpacklo_epi8(r[i], r[i + 8]);
            a[2 * i + 1] = _mm_unpackhi_epi8(r[i], r[i + 8]);
        }
        memcpy(r, a, sizeof r);
    }
    for (int i = 0; i < 16; i++)
        _mm_storeu_si128((__m128i *)(out + i * out_stride), r[i]);
}

/* One output row of a max pooling: nr input rows (the window's rows inside
 * the map); each pixel's window clipped to the row (cs a multiple of 16;
 * a window with nothing inside gives 0, as the scalar rule). One call a
 * row: a call and nine pointers a pixel cost more than the maxima. */
TL_AVX2 void tl_q8_max_row_avx2(const tl_pool_geom *g, int cs, const uint8_t *const *rows, int nr, uint8_t *o)
{
    for (int ox = 0; ox < g->ow; ox++) {
        int ix0 = ox * g->stride_w - g->pad_l, a = ix0 < 0 ? -ix0 : 0;
        int b = g->w - ix0 < g->kw ? g->w - ix0 : g->kw;
        uint8_t *op = o + (size_t)ox * cs;
        if (a >= b || nr == 0) {
            memset(op, 0, (size_t)cs);
            continue;
        }
        const size_t first = (size_t)(ix0 + a) * cs;
        int ch = 0;
        for (; ch + 32 <= cs; ch += 32) {
            __m256i m = _mm256_loadu_si256((const __m256i *)(rows[0] + first + ch));
            for (int r = 0; r < nr; r++)
                for (int kx = a; kx < b; kx++)
                    m = _mm256_max_epu8(m, _mm256_loadu_si256((const __m256i *)(rows[r] + (size_t)(ix0 + kx) * cs + ch)));
            _mm256_storeu_si256((__m256i *)(op + ch), m);
        }
        for (; ch < cs; ch += 16) {
            __m128i m = _mm_loadu_si128((const __m128i *)(rows[0] + first + ch));
            for (int r = 0; r < nr; r++)
                for (int kx = a; kx < b; kx++)
                    m = _mm_max_epu8(m, _mm_loadu_si128((const __m128i *)(rows[r] + (size_t)(ix0 + kx) * cs + ch)));
            _mm_storeu_si128((__m128i *)(op + ch), m);
        }
    }
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
        store16(y + (size_t)(p0 + i) * c->cs_out + grp * 16, RQ_TILE(c, acc[i][0], grp * 16),
                RQ_TILE(c, acc[i][1], grp * 16 + 8));
}

/* 16 pixels x 16 channels of NHWC uint8 (pixel stride cs) to 16 channel
 * rows of 16 floats (row stride ys): (x - zero) * scale, as the scalar loop. */
TL_AVX2 void tl_q8_dequant16_avx2(const uint8_t *x, size_t cs, int zero, float scale, float *y, size_t ys)
{
    uint8_t t[16 * 16];
    tl_q8_transpose16_avx2(x, cs, t, 16);
    const __m256i z = _mm256_set1_epi32(zero);
    const __m256 s = _mm256_set1_ps(scale);
    for (int ch = 0; ch < 16; ch++)
        for (int h = 0; h < 2; h++) {
            __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(t + ch * 16 + 8 * h)));
            _mm256_storeu_ps(y + ch * ys + 8 * h, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(v, z)), s));
        }
}

/* The input widened to int16 for the vpmaddwd tiles (n a multiple of 4). */
TL_AVX2 void tl_q8_widen_avx2(const uint8_t *x, size_t n, int16_t *y)
{
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(x + i));
        _mm256_storeu_si256((__m256i *)(y + i), _mm256_cvtepu8_epi16(_mm256_castsi256_si128(v)));
        _mm256_storeu_si256((__m256i *)(y + i + 16), _mm256_cvtepu8_epi16(_mm256_extracti128_si256(v, 1)));
    }
    for (; i < n; i++)
        y[i] = x[i];
}

#define MR16 6 /* 12 accumulators, 2 weight vectors, 1 broadcast */

/* MR16 pixels x 16 channels by vpmaddwd: each 32-bit broadcast is a pair of
 * inputs, each weight vector 8 channels x that pair. */
TL_AVX2 static void tile16(const tl_q8_conv *c, const int16_t *const *ptrs, int grp, uint8_t *y, int p0, int n)
{
    __m256i acc[MR16][2];
#pragma GCC unroll 6
    for (int i = 0; i < MR16; i++)
        acc[i][0] = acc[i][1] = _mm256_setzero_si256();
    const int kp = c->cs_in / 2;
    const int16_t *wg = c->w16 + (size_t)grp * c->gstride;
    for (int t = 0; t < c->ntap; t++) {
        const int16_t *const *pt = ptrs + t * MR16;
        const int16_t *wt = wg + (size_t)t * kp * 32;
        for (int k = 0; k < kp; k++) {
            __m256i w0 = _mm256_loadu_si256((const __m256i *)(wt + (size_t)k * 32));
            __m256i w1 = _mm256_loadu_si256((const __m256i *)(wt + (size_t)k * 32 + 16));
#pragma GCC unroll 6
            for (int i = 0; i < MR16; i++) {
                int32_t v;
                memcpy(&v, pt[i] + 2 * k, 4);
                __m256i b = _mm256_set1_epi32(v);
                acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(b, w0));
                acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(b, w1));
            }
        }
    }
    if (n == MR16) { /* whole tiles unrolled: acc stays in registers */
        uint8_t *yp = y + (size_t)p0 * c->cs_out + grp * 16;
#pragma GCC unroll 6
        for (int i = 0; i < MR16; i++)
            store16(yp + (size_t)i * c->cs_out, RQ_TILE16(c, acc[i][0], grp * 16), RQ_TILE16(c, acc[i][1], grp * 16 + 8));
        return;
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR16 - 1; i++)
        if (i < n)
            store16(y + (size_t)(p0 + i) * c->cs_out + grp * 16, RQ_TILE16(c, acc[i][0], grp * 16),
                    RQ_TILE16(c, acc[i][1], grp * 16 + 8));
}

void tl_q8_rows16_avx2(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1)
{
    const int16_t *ptrs[Q8_MAX_TAPS * MR16];
    const int16_t *x16 = (const int16_t *)(const void *)x;
    const int blk = tl_q8_block_pixels(c, c->ntap * c->cs_in * 2);
    for (int b0 = p0; b0 < p1; b0 += blk) {
        int b1 = p1 - b0 < blk ? p1 : b0 + blk;
        for (int grp = 0; grp < c->ngroups; grp++)
            for (int p = b0; p < b1; p += MR16) {
                int n = b1 - p < MR16 ? b1 - p : MR16;
                tl_q8_tile_ptrs16(c, x16, p, n, MR16, ptrs);
                tile16(c, ptrs, grp, y, p, n);
            }
    }
}

void tl_q8_rows_avx2(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1)
{
    const uint8_t *ptrs[Q8_MAX_TAPS * MR];
    const int blk = tl_q8_block_pixels(c, c->ntap * c->cs_in);
    for (int b0 = p0; b0 < p1; b0 += blk) {
        int b1 = p1 - b0 < blk ? p1 : b0 + blk;
        for (int grp = 0; grp < c->ngroups; grp++)
            for (int p = b0; p < b1; p += MR) {
                int n = b1 - p < MR ? b1 - p : MR;
                tl_q8_tile_ptrs(c, x, p, n, MR, ptrs);
                tile(c, ptrs, grp, y, p, n);
            }
    }
}

TL_AVX2 void tl_q8_dw_rows_avx2(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1)
{
    const tl_conv_geom *g = &c->g;
    const uint8_t *ptrs[Q8_MAX_TAPS + 1];
    const int npair = (c->ntap + 1) / 2;
    for (int p = p0; p < p1; p++) {
        int oy = p / g->ow, ox = p - oy * g->ow;
        tl_q8_pixel_taps(c, x, oy, ox, ptrs, 1);
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
            store16(y + (size_t)p * c->cs_out + grp * 16, RQ_DW(c, acc0, grp * 16), RQ_DW(c, acc1, grp * 16 + 8));
        }
    }
}

/* Depthwise by input columns (q8_internal.h, Q8_DW_RUN): each column's
 * kernel row pairs widened once into int16 pairs (channels 0-7, 8-15),
 * then per output pixel kw x pairs vpmaddwd with the weights, four pixels
 * at a time. */
TL_AVX2 static inline void dw_prepare(const tl_q8_conv *c, const uint8_t *const *row, const ptrdiff_t *cst, int npy,
                                      int ix0, int ncol, int off, __m256i *buf)
{
    for (int j = 0; j < ncol; j++) {
        int ix = ix0 + j, out = ix < 0 || ix >= c->g.w;
        for (int q = 0; q < npy; q++) {
            const uint8_t *pa = out ? c->pad : row[2 * q] + ix * cst[2 * q];
            const uint8_t *pb = out ? c->pad : row[2 * q + 1] + ix * cst[2 * q + 1];
            __m128i a = _mm_loadu_si128((const __m128i *)(pa + off)), b = _mm_loadu_si128((const __m128i *)(pb + off));
            buf[2 * (j * npy + q)] = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(a, b));
            buf[2 * (j * npy + q) + 1] = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(a, b));
        }
    }
}

TL_AVX2 static inline __attribute__((always_inline)) void dw_run(const tl_q8_conv *c, const __m256i *buf,
                                                                 const int16_t *wg, int ch, uint8_t *yo, int n,
                                                                 int KW, int NPY, int SW, int DL)
{
    const size_t cso = c->cs_out;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256i a[4][2];
        for (int r = 0; r < 4; r++)
            a[r][0] = a[r][1] = _mm256_setzero_si256();
        for (int kx = 0; kx < KW; kx++)
            for (int q = 0; q < NPY; q++) {
                __m256i w0 = _mm256_loadu_si256((const __m256i *)(wg + (kx * NPY + q) * 32));
                __m256i w1 = _mm256_loadu_si256((const __m256i *)(wg + (kx * NPY + q) * 32 + 16));
                const __m256i *b = buf + 2 * ((i * SW + kx * DL) * NPY + q);
#pragma GCC unroll 4
                for (int r = 0; r < 4; r++) {
                    a[r][0] = _mm256_add_epi32(a[r][0], _mm256_madd_epi16(b[2 * r * SW * NPY], w0));
                    a[r][1] = _mm256_add_epi32(a[r][1], _mm256_madd_epi16(b[2 * r * SW * NPY + 1], w1));
                }
            }
        for (int r = 0; r < 4; r++)
            store16(yo + (i + r) * cso, RQ_COLS(c, a[r][0], ch), RQ_COLS(c, a[r][1], ch + 8));
    }
    for (; i < n; i++) {
        __m256i a0 = _mm256_setzero_si256(), a1 = a0;
        for (int kx = 0; kx < KW; kx++)
            for (int q = 0; q < NPY; q++) {
                const __m256i *b = buf + 2 * ((i * SW + kx * DL) * NPY + q);
                const __m256i *w = (const __m256i *)(wg + (kx * NPY + q) * 32);
                a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(b[0], _mm256_loadu_si256(w)));
                a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(b[1], _mm256_loadu_si256(w + 1)));
            }
        store16(yo + i * cso, RQ_COLS(c, a0, ch), RQ_COLS(c, a1, ch + 8));
    }
}

TL_AVX2 void tl_q8_dw_cols_avx2(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1)
{
    const tl_conv_geom *g = &c->g;
    const int npy = (g->kh + 1) / 2, kw = g->kw, sw = g->stride_w, dl = g->dil_w;
    __m256i buf[2 * Q8_DW_COLS * Q8_DW_PAIRS];
    const uint8_t *row[2 * Q8_DW_PAIRS];
    ptrdiff_t cst[2 * Q8_DW_PAIRS];
    for (int p = p0; p < p1;) {
        int oy = p / g->ow, ox0 = p - oy * g->ow;
        int oxe = g->ow - ox0 < p1 - p ? g->ow : ox0 + (p1 - p);
        tl_q8_dw_row_ptrs(c, x, oy, row, cst);
        for (int a = ox0; a < oxe; a += Q8_DW_RUN) {
            int n = oxe - a < Q8_DW_RUN ? oxe - a : Q8_DW_RUN;
            int ix0 = a * sw - g->pad_l, ncol = (n - 1) * sw + (kw - 1) * dl + 1;
            for (int grp = 0; grp < c->ngroups; grp++) {
                dw_prepare(c, row, cst, npy, ix0, ncol, grp * 16, buf);
                const int16_t *wg = c->wcol + (size_t)grp * kw * npy * 32;
                uint8_t *yo = y + ((size_t)oy * g->ow + a) * c->cs_out + grp * 16;
                if (kw == 3 && npy == 2 && dl == 1 && sw == 1)
                    dw_run(c, buf, wg, grp * 16, yo, n, 3, 2, 1, 1);
                else if (kw == 3 && npy == 2 && dl == 1 && sw == 2)
                    dw_run(c, buf, wg, grp * 16, yo, n, 3, 2, 2, 1);
                else
                    dw_run(c, buf, wg, grp * 16, yo, n, kw, npy, sw, dl);
            }
        }
        p += oxe - ox0;
    }
}


/* Integer Winograd F(2x2,3x3) (q8_wino.c): V = B^T d B of tiles t0..t0+nt-1,
 * 16 channels of a tile at a time (tiles past the grid read padding). */
TL_AVX2 void tl_q8_wino_in_avx2(const tl_q8_conv *c, const uint8_t *x, int t0, int nt, int16_t *v)
{
    const tl_conv_geom *g = &c->g;
    const int tw = (g->ow + 1) / 2, th = (g->oh + 1) / 2, cs = c->cs_in;
    const size_t ps = (size_t)nt * cs;
    for (int i = 0; i < nt; i++) {
        int tile = t0 + i, ty = tile / tw, tx = tile - ty * tw;
        const uint8_t *p[16];
        for (int r = 0; r < 4; r++)
            for (int s = 0; s < 4; s++) {
                int iy = 2 * ty - g->pad_t + r, ix = 2 * tx - g->pad_l + s;
                p[r * 4 + s] = ty < th && iy >= 0 && iy < g->h && ix >= 0 && ix < g->w
                                   ? x + ((size_t)iy * g->w + ix) * cs
                                   : c->pad;
            }
        int16_t *vi = v + (size_t)i * cs;
        for (int ch = 0; ch < cs; ch += 16) {
            __m256i d[16], t[16];
#pragma GCC unroll 16
            for (int k = 0; k < 16; k++)
                d[k] = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(p[k] + ch)));
#pragma GCC unroll 4
            for (int s = 0; s < 4; s++) { /* B^T d: rows */
                t[s] = _mm256_sub_epi16(d[s], d[8 + s]);
                t[4 + s] = _mm256_add_epi16(d[4 + s], d[8 + s]);
                t[8 + s] = _mm256_sub_epi16(d[8 + s], d[4 + s]);
                t[12 + s] = _mm256_sub_epi16(d[4 + s], d[12 + s]);
            }
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++) { /* (B^T d) B: columns */
                const __m256i *tr = t + 4 * r;
                int16_t *o = vi + (size_t)(4 * r) * ps + ch;
                _mm256_storeu_si256((__m256i *)o, _mm256_sub_epi16(tr[0], tr[2]));
                _mm256_storeu_si256((__m256i *)(o + ps), _mm256_add_epi16(tr[1], tr[2]));
                _mm256_storeu_si256((__m256i *)(o + 2 * ps), _mm256_sub_epi16(tr[2], tr[1]));
                _mm256_storeu_si256((__m256i *)(o + 3 * ps), _mm256_sub_epi16(tr[1], tr[3]));
            }
        }
    }
}

/* M' of mr tiles for channel group grp at one position: mr x 16 channels
 * by vpmaddwd as tile16 does. */
__attribute__((always_inline)) TL_AVX2 static inline void wino_tile(const int16_t *vp, const int16_t *wp, int kp,
                                                                     int cs, int mr, int32_t *m)
{
    __m256i acc[Q8_WINO_MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++)
        acc[i][0] = acc[i][1] = _mm256_setzero_si256();
    for (int k = 0; k < kp; k++) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(wp + (size_t)k * 32));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(wp + (size_t)k * 32 + 16));
#pragma GCC unroll 6
        for (int i = 0; i < mr; i++) {
            int32_t b;
            memcpy(&b, vp + (size_t)i * cs + 2 * k, 4);
            __m256i bb = _mm256_set1_epi32(b);
            acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(bb, w0));
            acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(bb, w1));
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++) {
        _mm256_storeu_si256((__m256i *)(m + (size_t)i * 256), acc[i][0]);
        _mm256_storeu_si256((__m256i *)(m + (size_t)i * 256 + 8), acc[i][1]);
    }
}

/* M' of nb tiles (even) for channel group grp, Q8_WINO_MR tiles at a time
 * and a last 2 or 4. */
TL_AVX2 void tl_q8_wino_gemm_avx2(const tl_q8_conv *c, const int16_t *v, size_t ps, int grp, int nb, int32_t *m)
{
    const int kp = c->cs_in / 2, cs = c->cs_in;
    for (int pos = 0; pos < 16; pos++) {
        const int16_t *wp = c->w16 + (size_t)grp * c->gstride + (size_t)pos * kp * 32;
        int i0 = 0;
        for (; i0 + Q8_WINO_MR <= nb; i0 += Q8_WINO_MR)
            wino_tile(v + pos * ps + (size_t)i0 * cs, wp, kp, cs, Q8_WINO_MR, m + ((size_t)i0 * 16 + pos) * 16);
        if (nb - i0 == 4)
            wino_tile(v + pos * ps + (size_t)i0 * cs, wp, kp, cs, 4, m + ((size_t)i0 * 16 + pos) * 16);
        else if (nb - i0 == 2)
            wino_tile(v + pos * ps + (size_t)i0 * cs, wp, kp, cs, 2, m + ((size_t)i0 * 16 + pos) * 16);
    }
}

/* Y = (A^T M' A) / 4 of n tiles from t0, requantised, stored where the
 * output pixels exist. */
TL_AVX2 void tl_q8_wino_out_avx2(const tl_q8_conv *c, const int32_t *m, int grp, int t0, int n, uint8_t *y)
{
    const tl_conv_geom *g = &c->g;
    const int tw = (g->ow + 1) / 2, one_r = c->level == TL_SIMD_AVX2; /* requant8's lane order is AVX2's */
    for (int i = 0; i < n; i++) {
        int tile = t0 + i, ty = tile / tw, tx = tile - ty * tw;
        __m256i out[4][2];
        for (int h = 0; h < 2; h++) {
            const int32_t *mi = m + (size_t)i * 256 + 8 * h;
            __m256i u0[4], u1[4];
#pragma GCC unroll 4
            for (int s = 0; s < 4; s++) { /* A^T M': rows */
                __m256i m0 = _mm256_loadu_si256((const __m256i *)(mi + s * 16));
                __m256i m1 = _mm256_loadu_si256((const __m256i *)(mi + (4 + s) * 16));
                __m256i m2 = _mm256_loadu_si256((const __m256i *)(mi + (8 + s) * 16));
                __m256i m3 = _mm256_loadu_si256((const __m256i *)(mi + (12 + s) * 16));
                u0[s] = _mm256_add_epi32(_mm256_add_epi32(m0, m1), m2);
                u1[s] = _mm256_sub_epi32(_mm256_sub_epi32(m1, m2), m3);
            }
            __m256i r[4] = {
                _mm256_add_epi32(_mm256_add_epi32(u0[0], u0[1]), u0[2]),
                _mm256_sub_epi32(_mm256_sub_epi32(u0[1], u0[2]), u0[3]),
                _mm256_add_epi32(_mm256_add_epi32(u1[0], u1[1]), u1[2]),
                _mm256_sub_epi32(_mm256_sub_epi32(u1[1], u1[2]), u1[3]),
            };
            for (int q = 0; q < 4; q++) {
                __m256i acc = _mm256_srai_epi32(r[q], 2);
                out[q][h] = one_r ? requant8x(c, acc, grp * 16 + 8 * h) : requant8_2r(c, acc, grp * 16 + 8 * h);
            }
        }
        for (int q = 0; q < 4; q++) {
            int oy = 2 * ty + q / 2, ox = 2 * tx + q % 2;
            if (oy < g->oh && ox < g->ow)
                store16(y + ((size_t)oy * g->ow + ox) * c->cs_out + grp * 16, out[q][0], out[q][1]);
        }
    }
}

#else
void tl_q8_requant_avx2(const tl_q8_conv *c, const int32_t *acc, size_t n, int32_t *y, int form) { (void)c; (void)acc; (void)n; (void)y; (void)form; }
void tl_q8_rows_avx2(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1) { (void)c; (void)x; (void)y; (void)p0; (void)p1; }
void tl_q8_rows16_avx2(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1) { (void)c; (void)x; (void)y; (void)p0; (void)p1; }
void tl_q8_widen_avx2(const uint8_t *x, size_t n, int16_t *y) { for (size_t i = 0; i < n; i++) y[i] = x[i]; }
void tl_q8_dw_rows_avx2(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1) { (void)c; (void)x; (void)y; (void)p0; (void)p1; }
void tl_q8_dw_cols_avx2(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1) { (void)c; (void)x; (void)y; (void)p0; (void)p1; }
void tl_q8_add_avx2(const tl_q8_add *a, size_t n, const uint8_t *x1, const uint8_t *x2, uint8_t *y) { tl_q8_add_scalar(a, n, x1, x2, y); }
void tl_q8_quantize_row_avx2(const float *x, int n, float scale, int zero, uint8_t *y) { tl_q8_quantize_row_scalar(x, n, scale, zero, y); }
void tl_q8_wino_in_avx2(const tl_q8_conv *c, const uint8_t *x, int t0, int nt, int16_t *v) { (void)c; (void)x; (void)t0; (void)nt; (void)v; }
void tl_q8_wino_gemm_avx2(const tl_q8_conv *c, const int16_t *v, size_t ps, int grp, int nb, int32_t *m) { (void)c; (void)v; (void)ps; (void)grp; (void)nb; (void)m; }
void tl_q8_wino_out_avx2(const tl_q8_conv *c, const int32_t *m, int grp, int t0, int n, uint8_t *y) { (void)c; (void)m; (void)grp; (void)t0; (void)n; (void)y; }
void tl_q8_dequant16_avx2(const uint8_t *x, size_t cs, int zero, float scale, float *y, size_t ys) { for (int c = 0; c < 16; c++) for (int p = 0; p < 16; p++) y[c * ys + p] = (float)(x[p * cs + c] - zero) * scale; }
void tl_q8_max_row_avx2(const tl_pool_geom *g, int cs, const uint8_t *const *rows, int nr, uint8_t *o)
{
    (void)g;
    (void)cs;
    (void)rows;
    (void)nr;
    (void)o;
}
void tl_q8_transpose16_avx2(const uint8_t *in, size_t in_stride, uint8_t *out, size_t out_stride) { for (int i = 0; i < 16; i++) for (int j = 0; j < 16; j++) out[j * out_stride + i] = in[i * in_stride + j]; }
#endif
