/* A float convolution whose output is quantised in its stores: the first
 * convolution that an int8 checkpoint keeps in float (an RGB stem, cin 3),
 * written straight to uint8 NHWC instead of to a float map that a QUANT
 * pass then reads back and transposes.
 *
 * Same bits as tl_conv_forward_packed on the AVX2 and AVX-512 GEMMs, then
 * tl_q8_quantize_chw: with K = cin * kh * kw <= 256 (one K block on both)
 * each output is one FMA chain from 0 over the im2col rows in order (a
 * padding tap multiplies a 0.0, as im2col's), then + bias, the activation
 * (the GEMM epilogue's operations), then round(v / scale) + zero clamped to
 * [0, 255] (the quantise rows'). The kernel keeps output channels in the
 * lanes and pixels in the broadcasts, so it stores NHWC directly; the
 * input is copied once into a zero-bordered plane set so that the taps of
 * a row of pixels need no bounds checks. The scalar path is not here: its
 * GEMM does not fuse the multiply-add, so it keeps the two-step path. */
#include "conv_internal.h"
#include "q8_internal.h"
#include "simd.h"

#define FC_MAXK 256
#define FC_ROUND 12 /* the widest pixel tile: padded rows are read this far */

typedef struct {
    const float *pw;   /* [K][cout] */
    const float *bias; /* cout, or NULL */
    int act, cout, cs, s, K;
    float scale;
    int zero;
    int off[FC_MAXK]; /* floats from a pixel's first tap to tap p */
} fc_args;

int tl_q8_fconv_fits(const tl_kws *ws, const tl_conv_geom *g)
{
#if defined(__x86_64__)
    return ws->impl->level >= TL_SIMD_AVX2 && g->groups == 1 && !tl_conv_is_direct(g) &&
           !tl_winograd_applies(ws, g) && g->cin * g->kh * g->kw <= FC_MAXK && ws->impl->kc >= FC_MAXK &&
           g->cout % 16 == 0 && g->cout > 0;
#else
    (void)ws, (void)g;
    return 0;
#endif
}

size_t tl_q8_fconv_weights_floats(const tl_conv_geom *g) { return (size_t)g->cin * g->kh * g->kw * g->cout; }

void tl_q8_fconv_pack(const tl_conv_geom *g, const float *w, float *pw)
{
    const int K = g->cin * g->kh * g->kw;
    for (int o = 0; o < g->cout; o++)
        for (int p = 0; p < K; p++)
            pw[(size_t)p * g->cout + o] = w[(size_t)o * K + p];
}

static void padded_dims(const tl_conv_geom *g, int *hp, int *wp)
{
    int owr = (g->ow + FC_ROUND - 1) / FC_ROUND * FC_ROUND;
    *hp = (g->oh - 1) * g->stride_h + (g->kh - 1) * g->dil_h + 1;
    *wp = (owr - 1) * g->stride_w + (g->kw - 1) * g->dil_w + 1;
}

size_t tl_q8_fconv_scratch_floats(const tl_conv_geom *g)
{
    int hp, wp;
    padded_dims(g, &hp, &wp);
    return (size_t)g->cin * hp * wp;
}

#if defined(__x86_64__)
#include <immintrin.h>

#define TL_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))
#define TL_AVX2F __attribute__((target("avx2,fma")))

/* bias, activation as ukernel_ep_avx512's epilogue16, then
 * tl_q8_quantize_row_avx512's rounding: 16 bytes */
TL_AVX512 static inline __m128i out16(const fc_args *a, __m512 v, int ch)
{
    const __m512 zero = _mm512_setzero_ps();
    if (a->bias)
        v = _mm512_add_ps(v, _mm512_loadu_ps(a->bias + ch));
    if (a->act == TL_ACT_RELU)
        v = _mm512_max_ps(v, zero);
    else if (a->act == TL_ACT_RELU6)
        v = _mm512_min_ps(_mm512_set1_ps(6.0f), _mm512_max_ps(zero, v));
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
    v = _mm512_div_ps(v, _mm512_set1_ps(a->scale));
    __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m512 d = _mm512_sub_ps(v, t);
    t = _mm512_mask_add_ps(t, _mm512_cmp_ps_mask(d, half, _CMP_GE_OQ), t, one);
    t = _mm512_mask_sub_ps(t, _mm512_cmp_ps_mask(d, _mm512_sub_ps(zero, half), _CMP_LE_OQ), t, one);
    t = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(t, _mm512_set1_ps((float)a->zero)), zero), _mm512_set1_ps(255.0f));
    return _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(t));
}

/* MR pixels (S apart in the padded row; 0: a->s) x NG groups of 16 channels */
#define FTILE512(NAME, NG, MR, S)                                                                             \
    TL_AVX512 static void NAME(const fc_args *a, const float *base, int ch0, uint8_t *y, int n)              \
    {                                                                                                         \
        const int s = S ? S : a->s;                                                                           \
        __m512 acc[MR][NG];                                                                                   \
        _Pragma("GCC unroll 12") for (int i = 0; i < MR; i++)                                                 \
            _Pragma("GCC unroll 4") for (int j = 0; j < NG; j++) acc[i][j] = _mm512_setzero_ps();             \
        const float *w = a->pw + ch0;                                                                         \
        const int K = a->K, cout = a->cout;                                                                   \
        for (int p = 0; p < K; p++) {                                                                         \
            const float *xp = base + a->off[p];                                                               \
            __m512 wv[NG];                                                                                    \
            _Pragma("GCC unroll 4") for (int j = 0; j < NG; j++) wv[j] =                                     \
                _mm512_loadu_ps(w + (size_t)p * cout + 16 * j);                                            \
            _Pragma("GCC unroll 12") for (int i = 0; i < MR; i++)                                             \
            {                                                                                                 \
                __m512 b = _mm512_set1_ps(xp[i * s]);                                                         \
                _Pragma("GCC unroll 4") for (int j = 0; j < NG; j++) acc[i][j] =                             \
                    _mm512_fmadd_ps(wv[j], b, acc[i][j]);                                                     \
            }                                                                                                 \
        }                                                                                                     \
        _Pragma("GCC unroll 12") for (int i = 0; i < MR; i++) if (i < n)                                     \
            _Pragma("GCC unroll 4") for (int j = 0; j < NG; j++)                                             \
                _mm_storeu_si128((__m128i *)(y + (size_t)i * a->cs + ch0 + 16 * j),                           \
                                 out16(a, acc[i][j], ch0 + 16 * j));                                          \
    }

FTILE512(t512_4x6_s2, 4, 6, 2)
FTILE512(t512_4x4_s2, 4, 4, 2)
FTILE512(t512_2x12_s2, 2, 12, 2)
FTILE512(t512_2x8_s2, 2, 8, 2)
FTILE512(t512_2x4_s2, 2, 4, 2)
FTILE512(t512_1x12_s2, 1, 12, 2)
FTILE512(t512_1x8_s2, 1, 8, 2)
FTILE512(t512_1x4_s2, 1, 4, 2)
FTILE512(t512_4x6, 4, 6, 0)
FTILE512(t512_4x4, 4, 4, 0)
FTILE512(t512_2x12, 2, 12, 0)
FTILE512(t512_2x8, 2, 8, 0)
FTILE512(t512_2x4, 2, 4, 0)
FTILE512(t512_1x12, 1, 12, 0)
FTILE512(t512_1x8, 1, 8, 0)
FTILE512(t512_1x4, 1, 4, 0)

typedef void (*ftile_fn)(const fc_args *, const float *, int, uint8_t *, int);

/* [stride 2][64, 32, 16 channels][whole tile, up to 8 pixels, up to 4] */
static const ftile_fn tiles512[2][3][3] = {
    {{t512_4x6, t512_4x6, t512_4x4}, {t512_2x12, t512_2x8, t512_2x4}, {t512_1x12, t512_1x8, t512_1x4}},
    {{t512_4x6_s2, t512_4x6_s2, t512_4x4_s2}, {t512_2x12_s2, t512_2x8_s2, t512_2x4_s2},
     {t512_1x12_s2, t512_1x8_s2, t512_1x4_s2}},
};

/* One output row: channel chunks of 64, 32, 16, each swept along the row.
 * A row's last pixels take a narrower tile where that computes fewer
 * padding pixels (ResNet's 112 = 18 x 6 + 4, MobileNetV2's 9 x 12 + 4):
 * each output is the same chain of multiply-adds whatever the tile. */
TL_AVX512 static void row512(const fc_args *a, const float *base, int ow, uint8_t *y)
{
    const int s2 = a->s == 2;
    for (int ch = 0; ch < a->cout;) {
        int left = a->cout - ch, ng = left >= 64 ? 0 : left >= 32 ? 1 : 2, mr = ng == 0 ? 6 : 12;
        for (int ox = 0; ox < ow; ox += mr) {
            int n = ow - ox < mr ? ow - ox : mr;
            tiles512[s2][ng][n <= 4 ? 2 : n <= 8 ? 1 : 0](a, base + (size_t)ox * a->s, ch, y + (size_t)ox * a->cs, n);
        }
        ch += 16 << (2 - ng);
    }
}

/* bias, activation as ukernel_ep_avx2's epilogue8, then
 * tl_q8_quantize_row_avx2's rounding: 8 lanes as int32 */
TL_AVX2F static inline __m256i out8(const fc_args *a, __m256 v, int ch)
{
    const __m256 zero = _mm256_setzero_ps();
    if (a->bias)
        v = _mm256_add_ps(v, _mm256_loadu_ps(a->bias + ch));
    if (a->act == TL_ACT_RELU)
        v = _mm256_max_ps(v, zero);
    else if (a->act == TL_ACT_RELU6)
        v = _mm256_min_ps(_mm256_set1_ps(6.0f), _mm256_max_ps(zero, v));
    const __m256 half = _mm256_set1_ps(0.5f), mhalf = _mm256_set1_ps(-0.5f), one = _mm256_set1_ps(1.0f);
    v = _mm256_div_ps(v, _mm256_set1_ps(a->scale));
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 d = _mm256_sub_ps(v, t);
    t = _mm256_add_ps(t, _mm256_and_ps(_mm256_cmp_ps(d, half, _CMP_GE_OQ), one));
    t = _mm256_sub_ps(t, _mm256_and_ps(_mm256_cmp_ps(d, mhalf, _CMP_LE_OQ), one));
    t = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(t, _mm256_set1_ps((float)a->zero)), zero), _mm256_set1_ps(255.0f));
    return _mm256_cvttps_epi32(t);
}

/* 6 pixels x 16 channels (12 accumulators of the 16 registers) */
#define FTILE256(NAME, S)                                                                                     \
    TL_AVX2F static void NAME(const fc_args *a, const float *base, int ch0, uint8_t *y, int n)               \
    {                                                                                                         \
        const int s = S ? S : a->s;                                                                           \
        __m256 acc[6][2];                                                                                     \
        _Pragma("GCC unroll 6") for (int i = 0; i < 6; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();     \
        const float *w = a->pw + ch0;                                                                         \
        const int K = a->K, cout = a->cout;                                                                   \
        for (int p = 0; p < K; p++) {                                                                         \
            const float *xp = base + a->off[p];                                                               \
            __m256 w0 = _mm256_loadu_ps(w + (size_t)p * cout), w1 = _mm256_loadu_ps(w + (size_t)p * cout + 8);   \
            _Pragma("GCC unroll 6") for (int i = 0; i < 6; i++)                                               \
            {                                                                                                 \
                __m256 b = _mm256_broadcast_ss(xp + i * s);                                                   \
                acc[i][0] = _mm256_fmadd_ps(w0, b, acc[i][0]);                                                \
                acc[i][1] = _mm256_fmadd_ps(w1, b, acc[i][1]);                                                \
            }                                                                                                 \
        }                                                                                                     \
        _Pragma("GCC unroll 6") for (int i = 0; i < 6; i++) if (i < n) {                                     \
            __m256i lo = out8(a, acc[i][0], ch0), hi = out8(a, acc[i][1], ch0 + 8);                           \
            __m256i w16 = _mm256_packs_epi32(lo, hi); /* lanes 0-3 8-11 4-7 12-15 */                         \
            __m128i b8 = _mm_packus_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));    \
            _mm_storeu_si128((__m128i *)(y + (size_t)i * a->cs + ch0), _mm_shuffle_epi32(b8, 0xD8));         \
        }                                                                                                     \
    }

FTILE256(t256_s2, 2)
FTILE256(t256, 0)

TL_AVX2F static void row256(const fc_args *a, const float *base, int ow, uint8_t *y)
{
    for (int ch = 0; ch < a->cout; ch += 16)
        for (int ox = 0; ox < ow; ox += 6)
            (a->s == 2 ? t256_s2 : t256)(a, base + (size_t)ox * a->s, ch, y + (size_t)ox * a->cs,
                                         ow - ox < 6 ? ow - ox : 6);
}
#endif

void tl_q8_fconv(const tl_kws *ws, const tl_conv_geom *g, const float *x, const float *pw, const float *bias, int act,
                 float scale, int zero, int cs, uint8_t *y, float *scratch)
{
#if defined(__x86_64__)
    const int level = ws->impl->level;
    int hp, wp;
    padded_dims(g, &hp, &wp);
    for (int c = 0; c < g->cin; c++)
        for (int r = 0; r < hp; r++) {
            float *d = scratch + ((size_t)c * hp + r) * wp;
            int iy = r - g->pad_t, n = g->w < wp - g->pad_l ? g->w : wp - g->pad_l;
            if (iy < 0 || iy >= g->h || n <= 0) {
                memset(d, 0, sizeof(float) * (size_t)wp);
                continue;
            }
            memset(d, 0, sizeof(float) * (size_t)g->pad_l);
            memcpy(d + g->pad_l, x + ((size_t)c * g->h + iy) * g->w, sizeof(float) * (size_t)n);
            memset(d + g->pad_l + n, 0, sizeof(float) * (size_t)(wp - g->pad_l - n));
        }
    fc_args a = {pw, bias, act, g->cout, cs, g->stride_w, g->cin * g->kh * g->kw, scale, zero, {0}};
    for (int c = 0, p = 0; c < g->cin; c++)
        for (int ky = 0; ky < g->kh; ky++)
            for (int kx = 0; kx < g->kw; kx++)
                a.off[p++] = (c * hp + ky * g->dil_h) * wp + kx * g->dil_w;
    for (int oy = 0; oy < g->oh; oy++) {
        const float *base = scratch + (size_t)oy * g->stride_h * wp;
        uint8_t *yr = y + (size_t)oy * g->ow * cs;
        if (level >= TL_SIMD_AVX512)
            row512(&a, base, g->ow, yr);
        else
            row256(&a, base, g->ow, yr);
        if (cs > g->cout)
            for (int ox = 0; ox < g->ow; ox++)
                memset(yr + (size_t)ox * cs + g->cout, zero, (size_t)(cs - g->cout));
    }
#else
    (void)ws, (void)g, (void)x, (void)pw, (void)bias, (void)act, (void)scale, (void)zero, (void)cs, (void)y,
        (void)scratch;
#endif
}
