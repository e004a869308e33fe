/* AVX-512 int8 paths: convolution tiles of up to 12 pixels x 64 output
 * channels, with VNNI's vpdpbusd (u8 x s8, four products into an int32)
 * or AVX-512BW's vpmaddubsw + vpmaddwd (two products into a saturating
 * int16, made exact by the packing's plane split); depthwise rows by
 * vpmaddwd on two taps at a time; TFLite's requantisation on 16 lanes. */
#include "q8_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TL_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
#define TL_VNNI __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")))

/* gemmlowp's SaturatingRoundingDoublingHighMul (positive multiplier m)
 * then RoundingDivideByPOT by e, on 16 lanes; x already shifted left. */
TL_AVX512 static inline __m512i mul_shift16(__m512i x, __m512i m, __m512i e, __m512i away)
{
    __m512i neg = _mm512_srli_epi32(x, 31), a = _mm512_abs_epi32(x);
    __m512i half = _mm512_set1_epi64(1ll << 30);
    __m512i pe = _mm512_mul_epu32(a, m);
    __m512i po = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), _mm512_srli_epi64(m, 32));
    pe = _mm512_srli_epi64(_mm512_sub_epi64(_mm512_add_epi64(pe, half),
                                            _mm512_and_si512(neg, _mm512_set1_epi64(0xffffffffll))), 31);
    po = _mm512_srli_epi64(_mm512_sub_epi64(_mm512_add_epi64(po, half), _mm512_srli_epi64(neg, 32)), 31);
    __m512i r = _mm512_mask_blend_epi32(0xAAAA, pe, _mm512_slli_epi64(po, 32));
    __m512i sign = _mm512_srai_epi32(x, 31);
    r = _mm512_sub_epi32(_mm512_xor_si512(r, sign), sign);
    __m512i one = _mm512_set1_epi32(1);
    __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, e), one);
    __m512i rem = _mm512_and_si512(r, mask);
    __m512i thr = _mm512_add_epi32(_mm512_srli_epi32(mask, 1), _mm512_and_si512(_mm512_srli_epi32(r, 31), away));
    r = _mm512_srav_epi32(r, e);
    return _mm512_mask_add_epi32(r, _mm512_cmpgt_epi32_mask(rem, thr), r, one);
}

/* One group's requantisation constants, loaded once for many pixels. */
typedef struct {
    __m512i bias, lsh, m, mo, rnd_e, rnd_o, adj_e, adj_o, sh_e, sh_o, post, lo, hi;
    int s, xs, top; /* the short form (requant_short, q8_conv.c), its left shifts, a clamp other than [>= 0, 255] */
} rq16;

TL_AVX512 static inline void rq16_load_form(const tl_q8_conv *c, int ch, rq16 *k, int s)
{
    k->s = s;
    k->lo = _mm512_set1_epi32(c->o.qmin);
    k->hi = _mm512_set1_epi32(c->o.qmax);
    k->bias = _mm512_loadu_si512(c->bias + ch);
    k->m = _mm512_loadu_si512(c->mult + ch);
    if (k->s) { /* rnd = K, adj = K below -2^30 (away), lsh = x's shifts, sh_e = 32-bit shifts */
        k->xs = c->any_xs;
        k->top = c->o.qmax != 255 || c->o.qmin < 0;
        k->lsh = _mm512_loadu_si512(c->xs + ch);
        k->mo = _mm512_loadu_si512(c->modd + ch);
        k->rnd_e = _mm512_loadu_si512(c->kq + ch);
        k->rnd_o = _mm512_loadu_si512(c->kq + ch + 8);
        k->adj_e = _mm512_loadu_si512(c->kqn + ch);
        k->adj_o = _mm512_loadu_si512(c->kqn + ch + 8);
        k->sh_e = _mm512_loadu_si512(c->sh32 + ch);
        k->sh_o = k->post = _mm512_setzero_si512();
        return;
    }
    k->xs = k->top = 0;
    k->lsh = _mm512_loadu_si512(c->lsh + ch);
    k->mo = _mm512_srli_epi64(k->m, 32);
    k->rnd_e = _mm512_loadu_si512(c->rnd + ch);
    k->rnd_o = _mm512_loadu_si512(c->rnd + ch + 8);
    k->adj_e = _mm512_loadu_si512(c->adj + ch);
    k->adj_o = _mm512_loadu_si512(c->adj + ch + 8);
    k->sh_e = _mm512_loadu_si512(c->sh64 + ch);
    k->sh_o = _mm512_loadu_si512(c->sh64 + ch + 8);
    k->post = _mm512_loadu_si512(c->post + ch);
}

TL_AVX512 static inline void rq16_load(const tl_q8_conv *c, int ch, rq16 *k) { rq16_load_form(c, ch, k, c->rq_short); }

/* The short form: the high halves of x*m + K (odd ones moved down by one
 * masked shuffle), one 32-bit arithmetic shift; the zero point is in K. */
TL_AVX512 static inline __m512i rq16_short(const rq16 *k, __m512i acc, int away)
{
    __m512i x = _mm512_add_epi32(acc, k->bias);
    if (k->xs)
        x = _mm512_sllv_epi32(x, k->lsh);
    __m512i pe = _mm512_mul_epi32(x, k->m);
    __m512i po = _mm512_mul_epi32(_mm512_srli_epi64(x, 32), k->mo);
    __m512i ke = k->rnd_e, ko = k->rnd_o;
    if (away) {
        const __m512i lim = _mm512_set1_epi64(-(1ll << 30));
        ke = _mm512_mask_blend_epi64(_mm512_cmplt_epi64_mask(pe, lim), ke, k->adj_e);
        ko = _mm512_mask_blend_epi64(_mm512_cmplt_epi64_mask(po, lim), ko, k->adj_o);
    }
    pe = _mm512_add_epi64(pe, ke);
    po = _mm512_add_epi64(po, ko);
    __m512i r = _mm512_mask_shuffle_epi32(po, 0x5555, pe, (_MM_PERM_ENUM)0xF5);
    return _mm512_srav_epi32(r, k->sh_e);
}

/* Requantisation of 16 sums of one group of channels, + zero point,
 * clamped; 16 bytes out. One rounding in 64-bit lanes (the derivation is
 * at requant_consts in q8_conv.c), or its short form. */
TL_AVX512 static inline __m128i rq16_apply(const rq16 *k, __m512i acc, int lsh, int away)
{
    if (k->s) {
        __m512i r = _mm512_max_epi32(rq16_short(k, acc, away), k->lo);
        /* qmax 255: r >= qmin >= 0, so vpmovusdb's saturation is the clamp; else the
         * same bytes as the long form whatever qmin and qmax are (vpmovdb truncates) */
        return k->top ? _mm512_cvtepi32_epi8(_mm512_min_epi32(r, k->hi)) : _mm512_cvtusepi32_epi8(r);
    }
    __m512i x = _mm512_add_epi32(acc, k->bias);
    if (lsh)
        x = _mm512_sllv_epi32(x, k->lsh);
    __m512i pe = _mm512_mul_epi32(x, k->m);
    __m512i po = _mm512_mul_epi32(_mm512_srli_epi64(x, 32), k->mo);
    __m512i re = _mm512_add_epi64(pe, k->rnd_e), ro = _mm512_add_epi64(po, k->rnd_o);
    if (away) {
        const __m512i lim = _mm512_set1_epi64(-(1ll << 30));
        re = _mm512_mask_sub_epi64(re, _mm512_cmplt_epi64_mask(pe, lim), re, k->adj_e);
        ro = _mm512_mask_sub_epi64(ro, _mm512_cmplt_epi64_mask(po, lim), ro, k->adj_o);
    }
    re = _mm512_srlv_epi64(re, k->sh_e);
    ro = _mm512_srlv_epi64(ro, k->sh_o);
    __m512i r = _mm512_mask_blend_epi32(0xAAAA, re, _mm512_slli_epi64(ro, 32));
    r = _mm512_add_epi32(r, k->post);
    return _mm512_cvtepi32_epi8(_mm512_min_epi32(_mm512_max_epi32(r, k->lo), k->hi));
}

/* The same bytes in two roundings (gemmlowp's steps as written), without
 * the 64-bit constants: cheaper where the constants cannot stay in
 * registers (the per-pixel depthwise loop over channel groups). */
TL_AVX512 static inline __m128i requant16(const tl_q8_conv *c, __m512i acc, int ch)
{
    __m512i x = _mm512_add_epi32(acc, _mm512_loadu_si512(c->bias + ch));
    x = _mm512_sllv_epi32(x, _mm512_loadu_si512(c->lsh + ch));
    __m512i r = mul_shift16(x, _mm512_loadu_si512(c->mult + ch), _mm512_loadu_si512(c->rsh + ch),
                            _mm512_set1_epi32(c->away));
    r = _mm512_add_epi32(r, _mm512_set1_epi32(c->o.zout));
    r = _mm512_max_epi32(r, _mm512_set1_epi32(c->o.qmin));
    r = _mm512_min_epi32(r, _mm512_set1_epi32(c->o.qmax));
    return _mm512_cvtepi32_epi8(r);
}

TL_AVX512 void tl_q8_requant_avx512(const tl_q8_conv *c, const int32_t *acc, size_t n, int32_t *y, int form)
{
    for (size_t i = 0; i < n; i += 16) {
        int ch = (int)(i % (size_t)c->cs_out);
        rq16 k;
        rq16_load_form(c, ch, &k, form);
        __m512i a = _mm512_loadu_si512(acc + i);
        if (form) {
            _mm512_storeu_si512(y + i, _mm512_min_epi32(_mm512_max_epi32(rq16_short(&k, a, c->away), k.lo), k.hi));
            continue;
        }
        /* the one-rounding form, unpacked */
        __m512i x = _mm512_sllv_epi32(_mm512_add_epi32(a, k.bias), k.lsh);
        __m512i pe = _mm512_mul_epi32(x, k.m), po = _mm512_mul_epi32(_mm512_srli_epi64(x, 32), k.mo);
        __m512i re = _mm512_add_epi64(pe, k.rnd_e), ro = _mm512_add_epi64(po, k.rnd_o);
        if (c->away) {
            const __m512i lim = _mm512_set1_epi64(-(1ll << 30));
            re = _mm512_mask_sub_epi64(re, _mm512_cmplt_epi64_mask(pe, lim), re, k.adj_e);
            ro = _mm512_mask_sub_epi64(ro, _mm512_cmplt_epi64_mask(po, lim), ro, k.adj_o);
        }
        re = _mm512_srlv_epi64(re, k.sh_e);
        ro = _mm512_srlv_epi64(ro, k.sh_o);
        __m512i r = _mm512_add_epi32(_mm512_mask_blend_epi32(0xAAAA, re, _mm512_slli_epi64(ro, 32)), k.post);
        _mm512_storeu_si512(y + i, _mm512_min_epi32(_mm512_max_epi32(r, k.lo), k.hi));
    }
}

/* x * m rescaled in one 64-bit rounding (tl_q8_add_init's constants k). */
TL_AVX512 static inline __m512i add_rescale16(__m512i x, __m512i m, const tl_q8_add *a, int k)
{
    const __m512i lim = _mm512_set1_epi64(-(1ll << 30)), rnd = _mm512_set1_epi64(a->rnd[k]);
    const __m512i adj = _mm512_set1_epi64(a->adj[k]);
    const __m128i sh = _mm_cvtsi32_si128(a->sh[k]);
    __m512i pe = _mm512_mul_epi32(x, m), po = _mm512_mul_epi32(_mm512_srli_epi64(x, 32), m);
    __m512i re = _mm512_mask_sub_epi64(_mm512_add_epi64(pe, rnd), _mm512_cmplt_epi64_mask(pe, lim),
                                       _mm512_add_epi64(pe, rnd), adj);
    __m512i ro = _mm512_mask_sub_epi64(_mm512_add_epi64(po, rnd), _mm512_cmplt_epi64_mask(po, lim),
                                       _mm512_add_epi64(po, rnd), adj);
    re = _mm512_srl_epi64(re, sh);
    ro = _mm512_srl_epi64(ro, sh);
    return _mm512_sub_epi32(_mm512_mask_blend_epi32(0xAAAA, re, _mm512_slli_epi64(ro, 32)),
                            _mm512_set1_epi32(a->post[k]));
}

/* One input of the short-form ADD (tl_q8_add_init), its constants in
 * registers: the output bytes may alias *a for the compiler, which would
 * reload them from it after every store. */
typedef struct {
    __m512i z, mh, ml, r, adj;
    __m128i sh;
} add_in;

TL_AVX512 static inline void add_in_load(const tl_q8_add *a, int k, add_in *c)
{
    c->z = _mm512_set1_epi32(k ? a->z2 : a->z1);
    c->mh = _mm512_set1_epi32(a->fmh[k]);
    c->ml = _mm512_set1_epi32(a->fml[k]);
    c->r = _mm512_set1_epi32(a->fr[k]);
    c->adj = _mm512_set1_epi32(a->fadj[k]);
    c->sh = _mm_cvtsi32_si128(a->fsh[k]);
}

/* 16 bytes of one input rescaled in 32-bit lanes. */
TL_AVX512 static inline __m512i add_in16(const uint8_t *x, const add_in *c)
{
    __m512i d = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)x)), c->z);
    __m512i lo = _mm512_add_epi32(_mm512_mullo_epi32(d, c->ml), c->r);
    lo = _mm512_mask_sub_epi32(lo, _mm512_movepi32_mask(d), lo, c->adj);
    return _mm512_add_epi32(_mm512_mullo_epi32(d, c->mh), _mm512_sra_epi32(lo, c->sh));
}

/* The short-form ADD: inputs in 32-bit lanes, the output's rounding from
 * the high halves of the 64-bit products. */
TL_AVX512 static void add_fast16(const tl_q8_add *a, size_t n, const uint8_t *x1, const uint8_t *x2, uint8_t *y)
{
    add_in c1, c2;
    add_in_load(a, 0, &c1);
    add_in_load(a, 1, &c2);
    const __m512i mo = _mm512_set1_epi32(a->mout), ko = _mm512_set1_epi64(a->fko);
    const __m512i adj = _mm512_set1_epi64(1ll << 31), lim = _mm512_set1_epi64(-(1ll << 30));
    const __m512i zo = _mm512_set1_epi32(a->zout), lo = _mm512_set1_epi32(a->qmin), hi = _mm512_set1_epi32(a->qmax);
    const __m128i osh = _mm_cvtsi32_si128(a->fosh);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i s = _mm512_add_epi32(add_in16(x1 + i, &c1), add_in16(x2 + i, &c2));
        __m512i pe = _mm512_mul_epi32(s, mo), po = _mm512_mul_epi32(_mm512_srli_epi64(s, 32), mo);
        __m512i ne = _mm512_add_epi64(pe, ko), no = _mm512_add_epi64(po, ko);
        ne = _mm512_mask_sub_epi64(ne, _mm512_cmplt_epi64_mask(pe, lim), ne, adj);
        no = _mm512_mask_sub_epi64(no, _mm512_cmplt_epi64_mask(po, lim), no, adj);
        __m512i r = _mm512_sra_epi32(_mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(ne, 32), no), osh);
        r = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(r, zo), lo), hi);
        _mm_storeu_si128((__m128i *)(y + i), _mm512_cvtepi32_epi8(r));
    }
    if (i < n)
        tl_q8_add_scalar(a, n - i, x1 + i, x2 + i, y + i);
}

/* TFLite's ADD on n bytes (the scalar rule in q8_misc.c), 16 at a time. */
TL_AVX512 void tl_q8_add_avx512(const tl_q8_add *a, size_t n, const uint8_t *x1, const uint8_t *x2, uint8_t *y)
{
    if (a->fast) {
        add_fast16(a, n, x1, x2, y);
        return;
    }
    if (!a->one) {
        tl_q8_add_scalar(a, n, x1, x2, y);
        return;
    }
    const __m512i z1 = _mm512_set1_epi32(a->z1), z2 = _mm512_set1_epi32(a->z2), zo = _mm512_set1_epi32(a->zout);
    const __m512i m1 = _mm512_set1_epi32(a->m1), m2 = _mm512_set1_epi32(a->m2), mo = _mm512_set1_epi32(a->mout);
    const __m512i lo = _mm512_set1_epi32(a->qmin), hi = _mm512_set1_epi32(a->qmax);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i u = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(x1 + i)));
        __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(x2 + i)));
        u = _mm512_slli_epi32(_mm512_sub_epi32(u, z1), 20);
        v = _mm512_slli_epi32(_mm512_sub_epi32(v, z2), 20);
        __m512i s = _mm512_add_epi32(add_rescale16(u, m1, a, 0), add_rescale16(v, m2, a, 1));
        __m512i r = _mm512_add_epi32(add_rescale16(s, mo, a, 2), zo);
        r = _mm512_min_epi32(_mm512_max_epi32(r, lo), hi);
        _mm_storeu_si128((__m128i *)(y + i), _mm512_cvtepi32_epi8(r));
    }
    if (i < n)
        tl_q8_add_scalar(a, n - i, x1 + i, x2 + i, y + i);
}

/* round(x / scale) (ties away from zero, as roundf) + zero, clamped. */
TL_AVX512 void tl_q8_quantize_row_avx512(const float *x, int n, float scale, int zero, uint8_t *y)
{
    const __m512 s = _mm512_set1_ps(scale), half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
    const __m512 z = _mm512_set1_ps((float)zero), top = _mm512_set1_ps(255.0f), bottom = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(k, x + i), s);
        __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        __m512 d = _mm512_sub_ps(v, t);
        t = _mm512_mask_add_ps(t, _mm512_cmp_ps_mask(d, half, _CMP_GE_OQ), t, one);
        t = _mm512_mask_sub_ps(t, _mm512_cmp_ps_mask(d, _mm512_sub_ps(bottom, half), _CMP_LE_OQ), t, one);
        t = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(t, z), bottom), top);
        _mm_mask_storeu_epi8(y + i, k, _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(t)));
    }
}

TL_AVX512 static inline __m512i dot_bw(__m512i acc, __m512i b, __m512i w)
{
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(b, w), _mm512_set1_epi16(1)));
}

TL_VNNI static inline __m512i dot_vnni(__m512i acc, __m512i b, __m512i w) { return _mm512_dpbusd_epi32(acc, b, w); }

/* The short requantisation (rq16_short, q8_conv.c's requant_short) of 16
 * sums that already hold the bias, for a layer with no left shift and the
 * clamp [qmin >= 0, 255], rq16_apply's run-time branches decided once a
 * layer: 9 operations a vector, 13 with ties away from zero (depthwise).
 * On small-cin layers (MobileNetV2's 16/24 -> 96/144 expansions: 4-6
 * vpdpbusd a vector) the requantisation is most of the work. */
typedef struct {
    __m512i m, mo, ke, ko, ne, no, sh, lo;
} rq16f;

TL_AVX512 static inline void rq16f_load(const tl_q8_conv *c, int ch, rq16f *k)
{
    k->m = _mm512_loadu_si512(c->mult + ch);
    k->mo = _mm512_loadu_si512(c->modd + ch);
    k->ke = _mm512_loadu_si512(c->kq + ch);
    k->ko = _mm512_loadu_si512(c->kq + ch + 8);
    k->ne = c->away ? _mm512_loadu_si512(c->kqn + ch) : k->ke;
    k->no = c->away ? _mm512_loadu_si512(c->kqn + ch + 8) : k->ko;
    k->sh = _mm512_loadu_si512(c->sh32 + ch);
    k->lo = _mm512_set1_epi32(c->o.qmin);
}

TL_AVX512 static inline __m128i rq16f_apply(const rq16f *k, __m512i x, int away)
{
    __m512i pe = _mm512_mul_epi32(x, k->m), po = _mm512_mul_epi32(_mm512_srli_epi64(x, 32), k->mo);
    __m512i ke = k->ke, ko = k->ko;
    if (away) {
        const __m512i lim = _mm512_set1_epi64(-(1ll << 30));
        ke = _mm512_mask_blend_epi64(_mm512_cmplt_epi64_mask(pe, lim), ke, k->ne);
        ko = _mm512_mask_blend_epi64(_mm512_cmplt_epi64_mask(po, lim), ko, k->no);
    }
    pe = _mm512_add_epi64(pe, ke);
    po = _mm512_add_epi64(po, ko);
    __m512i r = _mm512_srav_epi32(_mm512_mask_shuffle_epi32(po, 0x5555, pe, (_MM_PERM_ENUM)0xF5), k->sh);
    return _mm512_cvtusepi32_epi8(_mm512_max_epi32(r, k->lo));
}

/* Layers whose requantisation takes rq16f (every channel in the short form,
 * no left shifts, the clamp [>= 0, 255]). */
static inline int rq16f_fits(const tl_q8_conv *c)
{
    return c->rq_short && !c->any_xs && c->o.qmin >= 0 && c->o.qmax == 255;
}

/* One tile: MR pixels (pointers per tap in ptrs) x NRV groups of 16
 * output channels starting at group g0. FAST (rq16f_fits): the sums start
 * from the bias (integer sums: the same values) and the stores of a tile
 * are unrolled under i < n, so the accumulators stay in registers. */
#define TILE(NAME, ATTR, DOT, NRV, MR, FAST)                                                                   \
    ATTR static void NAME(const tl_q8_conv *c, const uint8_t *const *ptrs, int g0, uint8_t *y, int p0, int n) \
    {                                                                                                          \
        __m512i acc[MR][NRV];                                                                                  \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)                                                  \
            _Pragma("GCC unroll 4") for (int j = 0; j < NRV; j++) acc[i][j] =                                 \
                FAST ? _mm512_loadu_si512(c->bias + (g0 + j) * 16) : _mm512_setzero_si512();                  \
        const int kc = c->cs_in / 4, planes = c->planes;                                                       \
        const size_t gs = c->gstride;                                                                          \
        const int8_t *wg = c->w + (size_t)g0 * gs;                                                             \
        for (int t = 0; t < c->ntap; t++) {                                                                    \
            const uint8_t *const *pt = ptrs + t * MR;                                                          \
            for (int pl = 0; pl < planes; pl++) {                                                              \
                const int8_t *wp = wg + (size_t)(t * planes + pl) * kc * 64;                                   \
                for (int k = 0; k < kc; k++) {                                                                 \
                    __m512i wv[NRV];                                                                           \
                    _Pragma("GCC unroll 4") for (int j = 0; j < NRV; j++) wv[j] =                             \
                        _mm512_loadu_si512(wp + j * gs + (size_t)k * 64);                                      \
                    _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)                                      \
                    {                                                                                          \
                        __m512i b = _mm512_set1_epi32(tl_q8_load32(pt[i] + 4 * k));                            \
                        _Pragma("GCC unroll 4") for (int j = 0; j < NRV; j++) acc[i][j] = DOT(acc[i][j], b, wv[j]); \
                    }                                                                                          \
                }                                                                                              \
            }                                                                                                  \
        }                                                                                                      \
        uint8_t *yp = y + (size_t)p0 * c->cs_out + g0 * 16;                                                    \
        const size_t cso = c->cs_out;                                                                          \
        if (FAST) {                                                                                            \
            _Pragma("GCC unroll 4") for (int j = 0; j < NRV; j++)                                             \
            {                                                                                                  \
                rq16f rk;                                                                                      \
                rq16f_load(c, (g0 + j) * 16, &rk);                                                             \
                _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) if (i < n)                               \
                    _mm_storeu_si128((__m128i *)(yp + i * cso + j * 16), rq16f_apply(&rk, acc[i][j], 0));      \
            }                                                                                                  \
            return;                                                                                            \
        }                                                                                                      \
        const int lsh = c->any_lsh, away = c->away;                                                            \
        for (int j = 0; j < NRV; j++) {                                                                        \
            rq16 rk;                                                                                           \
            rq16_load(c, (g0 + j) * 16, &rk);                                                                  \
            for (int i = 0; i < n; i++)                                                                        \
                _mm_storeu_si128((__m128i *)(yp + i * cso + j * 16), rq16_apply(&rk, acc[i][j], lsh, away));   \
        }                                                                                                      \
    }

TILE(tile_vnni_4x6, TL_VNNI, dot_vnni, 4, 6, 0)
TILE(tile_vnni_4x3, TL_VNNI, dot_vnni, 4, 3, 0)
TILE(tile_vnni_4x1, TL_VNNI, dot_vnni, 4, 1, 0)
TILE(tile_vnni_2x12, TL_VNNI, dot_vnni, 2, 12, 0)
TILE(tile_vnni_1x12, TL_VNNI, dot_vnni, 1, 12, 0)
TILE(tilef_vnni_4x6, TL_VNNI, dot_vnni, 4, 6, 1)
TILE(tilef_vnni_4x3, TL_VNNI, dot_vnni, 4, 3, 1)
TILE(tilef_vnni_4x1, TL_VNNI, dot_vnni, 4, 1, 1)
TILE(tilef_vnni_2x12, TL_VNNI, dot_vnni, 2, 12, 1)
TILE(tilef_vnni_1x12, TL_VNNI, dot_vnni, 1, 12, 1)
TILE(tile_bw_4x6, TL_AVX512, dot_bw, 4, 6, 0)
TILE(tile_bw_4x3, TL_AVX512, dot_bw, 4, 3, 0)
TILE(tile_bw_4x1, TL_AVX512, dot_bw, 4, 1, 0)
TILE(tile_bw_2x12, TL_AVX512, dot_bw, 2, 12, 0)
TILE(tile_bw_1x12, TL_AVX512, dot_bw, 1, 12, 0)
TILE(tilef_bw_4x6, TL_AVX512, dot_bw, 4, 6, 1)
TILE(tilef_bw_4x3, TL_AVX512, dot_bw, 4, 3, 1)
TILE(tilef_bw_4x1, TL_AVX512, dot_bw, 4, 1, 1)
TILE(tilef_bw_2x12, TL_AVX512, dot_bw, 2, 12, 1)
TILE(tilef_bw_1x12, TL_AVX512, dot_bw, 1, 12, 1)

typedef void (*tile_fn)(const tl_q8_conv *, const uint8_t *const *, int, uint8_t *, int, int);

/* Output channel groups in chunks of 4, 2, 1, each swept over every pixel
 * tile (the chunk's weights stay in cache across the sweep). A 4-group
 * chunk's last 1-3 pixels take a 1- or 3-pixel tile: a 7x7 map is 8 tiles
 * of 6 and one pixel, which the 6-pixel tile computed 6 times over. */
static void rows(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1, const tile_fn *t4, tile_fn t2,
                 tile_fn t1)
{
    const uint8_t *ptrs[Q8_MAX_TAPS * Q8_MR_MAX];
    for (int g0 = 0; g0 < c->ngroups;) {
        int left = c->ngroups - g0, nrv = left >= 4 ? 4 : left >= 2 ? 2 : 1, mr = nrv == 4 ? 6 : 12;
        for (int p = p0; p < p1; p += mr) {
            int n = p1 - p < mr ? p1 - p : mr, tmr = mr;
            tile_fn f = nrv == 4 ? t4[0] : nrv == 2 ? t2 : t1;
            if (nrv == 4 && n <= 3)
                f = n == 1 ? t4[2] : t4[1], tmr = n == 1 ? 1 : 3;
            tl_q8_tile_ptrs(c, x, p, n, tmr, ptrs);
            f(c, ptrs, g0, y, p, n);
        }
        g0 += nrv;
    }
}

void tl_q8_rows_vnni(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1)
{
    static const tile_fn t4[3] = {tile_vnni_4x6, tile_vnni_4x3, tile_vnni_4x1};
    static const tile_fn f4[3] = {tilef_vnni_4x6, tilef_vnni_4x3, tilef_vnni_4x1};
    if (rq16f_fits(c) && !c->away)
        rows(c, x, y, p0, p1, f4, tilef_vnni_2x12, tilef_vnni_1x12);
    else
        rows(c, x, y, p0, p1, t4, tile_vnni_2x12, tile_vnni_1x12);
}

void tl_q8_rows_avx512(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1)
{
    static const tile_fn t4[3] = {tile_bw_4x6, tile_bw_4x3, tile_bw_4x1};
    static const tile_fn f4[3] = {tilef_bw_4x6, tilef_bw_4x3, tilef_bw_4x1};
    if (rq16f_fits(c) && !c->away)
        rows(c, x, y, p0, p1, f4, tilef_bw_2x12, tilef_bw_1x12);
    else
        rows(c, x, y, p0, p1, t4, tile_bw_2x12, tile_bw_1x12);
}

/* Layers whose weights need vpmaddubsw planes (c->wide): vpmaddwd of a
 * broadcast pair of widened inputs with 16 channels x that pair of int16
 * weights, one multiply per two inputs whatever the weights. */
#define TILE16(NAME, NRV, MR)                                                                                  \
    TL_AVX512 static void NAME(const tl_q8_conv *c, const int16_t *const *ptrs, int g0, uint8_t *y, int p0, int n) \
    {                                                                                                          \
        __m512i acc[MR][NRV];                                                                                  \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)                                                  \
            _Pragma("GCC unroll 4") for (int j = 0; j < NRV; j++) acc[i][j] = _mm512_setzero_si512();         \
        const int kp = c->cs_in / 2;                                                                           \
        const size_t gs = c->gstride;                                                                          \
        const int16_t *wg = c->w16 + (size_t)g0 * gs;                                                          \
        for (int t = 0; t < c->ntap; t++) {                                                                    \
            const int16_t *const *pt = ptrs + t * MR;                                                          \
            const int16_t *wp = wg + (size_t)t * kp * 32;                                                      \
            for (int k = 0; k < kp; k++) {                                                                     \
                __m512i wv[NRV];                                                                               \
                _Pragma("GCC unroll 4") for (int j = 0; j < NRV; j++) wv[j] =                                 \
                    _mm512_loadu_si512(wp + j * gs + (size_t)k * 32);                                          \
                _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)                                          \
                {                                                                                              \
                    int32_t v;                                                                                 \
                    memcpy(&v, pt[i] + 2 * k, 4);                                                              \
                    __m512i b = _mm512_set1_epi32(v);                                                          \
                    _Pragma("GCC unroll 4") for (int j = 0; j < NRV; j++) acc[i][j] =                         \
                        _mm512_add_epi32(acc[i][j], _mm512_madd_epi16(b, wv[j]));                              \
                }                                                                                              \
            }                                                                                                  \
        }                                                                                                      \
        const int lsh = c->any_lsh, away = c->away;                                                            \
        uint8_t *yp = y + (size_t)p0 * c->cs_out + g0 * 16;                                                    \
        const size_t cso = c->cs_out;                                                                          \
        for (int j = 0; j < NRV; j++) {                                                                        \
            rq16 rk;                                                                                           \
            rq16_load(c, (g0 + j) * 16, &rk);                                                                  \
            for (int i = 0; i < n; i++)                                                                        \
                _mm_storeu_si128((__m128i *)(yp + i * cso + j * 16), rq16_apply(&rk, acc[i][j], lsh, away));   \
        }                                                                                                      \
    }

TILE16(tile16_4x6, 4, 6)
TILE16(tile16_2x12, 2, 12)
TILE16(tile16_1x12, 1, 12)

typedef void (*tile16_fn)(const tl_q8_conv *, const int16_t *const *, int, uint8_t *, int, int);

/* x is the input widened to int16 (tl_q8_widen_avx2), cast. */
void tl_q8_rows16_avx512(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1)
{
    const int16_t *ptrs[Q8_MAX_TAPS * Q8_MR_MAX];
    const int16_t *x16 = (const int16_t *)(const void *)x;
    for (int g0 = 0; g0 < c->ngroups;) {
        int left = c->ngroups - g0, nrv = left >= 4 ? 4 : left >= 2 ? 2 : 1, mr = nrv == 4 ? 6 : 12;
        tile16_fn f = nrv == 4 ? tile16_4x6 : nrv == 2 ? tile16_2x12 : tile16_1x12;
        for (int p = p0; p < p1; p += mr) {
            int n = p1 - p < mr ? p1 - p : mr;
            tl_q8_tile_ptrs16(c, x16, p, n, mr, ptrs);
            f(c, ptrs, g0, y, p, n);
        }
        g0 += nrv;
    }
}

/* Depthwise: per output pixel, 16 channels at a time, two taps per
 * vpmaddwd (their bytes interleaved, widened to int16). */
TL_AVX512 void tl_q8_dw_rows_avx512(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1)
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
            __m512i acc = _mm512_setzero_si512();
            for (int q = 0; q < npair; q++) {
                __m128i a = _mm_loadu_si128((const __m128i *)(ptrs[2 * q] + grp * 16));
                __m128i b = _mm_loadu_si128((const __m128i *)(ptrs[2 * q + 1] + grp * 16));
                __m256i ab = _mm256_set_m128i(_mm_unpackhi_epi8(a, b), _mm_unpacklo_epi8(a, b));
                acc = _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_cvtepu8_epi16(ab),
                                                              _mm512_loadu_si512(wg + q * 32)));
            }
            _mm_storeu_si128((__m128i *)(y + (size_t)p * c->cs_out + grp * 16), requant16(c, acc, grp * 16));
        }
    }
}

/* Depthwise by input columns (q8_internal.h, Q8_DW_RUN): the kernel row
 * pairs of each input column widened once into int16 pairs, then per
 * output pixel kw x pairs vpmaddwd (or VNNI's vpdpwssd) with the weights,
 * four pixels at a time. */
TL_AVX512 static inline __m512i dw_bw(__m512i acc, __m512i a, __m512i w)
{
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, w));
}

TL_VNNI static inline __m512i dw_vnni(__m512i acc, __m512i a, __m512i w) { return _mm512_dpwssd_epi32(acc, a, w); }

/* Columns ix0 .. ix0+ncol-1 of channels off..off+15, row pairs widened. */
TL_AVX512 static inline __attribute__((always_inline)) void dw_prepare(const tl_q8_conv *c,
                                                                        const uint8_t *const *row,
                                                                        const ptrdiff_t *cst, int npy, int ix0,
                                                                        int ncol, int off, __m512i *buf)
{
    /* columns j in [jlo, jhi) are inside the image: their pointers step by
     * the rows' column strides; the others read the padding row */
    int jlo = ix0 < 0 ? -ix0 : 0, jhi = c->g.w - ix0 < ncol ? c->g.w - ix0 : ncol;
    jlo = jlo < ncol ? jlo : ncol;
    jhi = jhi > jlo ? jhi : jlo;
    const __m128i pad = _mm_loadu_si128((const __m128i *)(c->pad + off));
    const __m512i padv = _mm512_cvtepu8_epi16(_mm256_set_m128i(_mm_unpackhi_epi8(pad, pad), _mm_unpacklo_epi8(pad, pad)));
    for (int j = 0; j < jlo; j++)
        for (int q = 0; q < npy; q++)
            buf[j * npy + q] = padv;
    for (int j = jhi; j < ncol; j++)
        for (int q = 0; q < npy; q++)
            buf[j * npy + q] = padv;
    for (int q = 0; q < npy; q++) {
        const uint8_t *pa = row[2 * q] + (ptrdiff_t)(ix0 + jlo) * cst[2 * q] + off;
        const uint8_t *pb = row[2 * q + 1] + (ptrdiff_t)(ix0 + jlo) * cst[2 * q + 1] + off;
        const ptrdiff_t sa = cst[2 * q], sb = cst[2 * q + 1];
        __m512i *o = buf + jlo * npy + q;
        for (int j = jlo; j < jhi; j++, pa += sa, pb += sb, o += npy) {
            __m128i a = _mm_loadu_si128((const __m128i *)pa), b = _mm_loadu_si128((const __m128i *)pb);
            *o = _mm512_cvtepu8_epi16(_mm256_set_m128i(_mm_unpackhi_epi8(a, b), _mm_unpacklo_epi8(a, b)));
        }
    }
}

#define DW_COLS_FN(NAME, ATTR, DOT)                                                                              \
    ATTR static inline __attribute__((always_inline)) void NAME##_run(                                          \
        const tl_q8_conv *c, const __m512i *buf, const int16_t *wg, const rq16 *k, uint8_t *yo, int n, int KW,  \
        int NPY, int SW, int DL)                                                                                 \
    {                                                                                                            \
        const size_t cso = c->cs_out;                                                                            \
        const int lsh = c->any_lsh, away = c->away;                                                              \
        __m512i wr[6];                                                                                           \
        for (int t = 0; t < 6 && t < KW * NPY; t++)                                                              \
            wr[t] = _mm512_loadu_si512(wg + t * 32);                                                             \
        int i = 0;                                                                                               \
        for (; i + 4 <= n; i += 4) {                                                                             \
            __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;                                      \
            for (int kx = 0; kx < KW; kx++)                                                                      \
                for (int q = 0; q < NPY; q++) {                                                                  \
                    __m512i w = KW * NPY <= 6 ? wr[kx * NPY + q] : _mm512_loadu_si512(wg + (kx * NPY + q) * 32); \
                    const __m512i *b = buf + (i * SW + kx * DL) * NPY + q;                                       \
                    a0 = DOT(a0, b[0], w);                                                                       \
                    a1 = DOT(a1, b[SW * NPY], w);                                                                \
                    a2 = DOT(a2, b[2 * SW * NPY], w);                                                            \
                    a3 = DOT(a3, b[3 * SW * NPY], w);                                                            \
                }                                                                                                \
            _mm_storeu_si128((__m128i *)(yo + i * cso), rq16_apply(k, a0, lsh, away));                          \
            _mm_storeu_si128((__m128i *)(yo + (i + 1) * cso), rq16_apply(k, a1, lsh, away));                    \
            _mm_storeu_si128((__m128i *)(yo + (i + 2) * cso), rq16_apply(k, a2, lsh, away));                    \
            _mm_storeu_si128((__m128i *)(yo + (i + 3) * cso), rq16_apply(k, a3, lsh, away));                    \
        }                                                                                                        \
        for (; i < n; i++) {                                                                                     \
            __m512i a0 = _mm512_setzero_si512();                                                                 \
            for (int kx = 0; kx < KW; kx++)                                                                      \
                for (int q = 0; q < NPY; q++)                                                                    \
                    a0 = DOT(a0, buf[(i * SW + kx * DL) * NPY + q], _mm512_loadu_si512(wg + (kx * NPY + q) * 32)); \
            _mm_storeu_si128((__m128i *)(yo + i * cso), rq16_apply(k, a0, lsh, away));                          \
        }                                                                                                        \
    }                                                                                                            \
    ATTR void NAME(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1)                           \
    {                                                                                                            \
        const tl_conv_geom *g = &c->g;                                                                           \
        const int npy = (g->kh + 1) / 2, kw = g->kw, sw = g->stride_w, dl = g->dil_w;                            \
        __m512i buf[Q8_DW_COLS * Q8_DW_PAIRS];                                                                   \
        const uint8_t *row[2 * Q8_DW_PAIRS];                                                                     \
        ptrdiff_t cst[2 * Q8_DW_PAIRS];                                                                          \
        for (int p = p0; p < p1;) {                                                                              \
            int oy = p / g->ow, ox0 = p - oy * g->ow;                                                            \
            int oxe = g->ow - ox0 < p1 - p ? g->ow : ox0 + (p1 - p);                                             \
            tl_q8_dw_row_ptrs(c, x, oy, row, cst);                                                               \
            for (int a = ox0; a < oxe; a += Q8_DW_RUN) {                                                         \
                int n = oxe - a < Q8_DW_RUN ? oxe - a : Q8_DW_RUN;                                               \
                int ix0 = a * sw - g->pad_l, ncol = (n - 1) * sw + (kw - 1) * dl + 1;                            \
                for (int grp = 0; grp < c->ngroups; grp++) {                                                     \
                    rq16 k;                                                                                      \
                    rq16_load(c, grp * 16, &k);                                                                  \
                    dw_prepare(c, row, cst, npy, ix0, ncol, grp * 16, buf);                                      \
                    const int16_t *wg = c->wcol + (size_t)grp * kw * npy * 32;                                   \
                    uint8_t *yo = y + ((size_t)oy * g->ow + a) * c->cs_out + grp * 16;                           \
                    if (kw == 3 && npy == 2 && dl == 1 && sw == 1)                                               \
                        NAME##_run(c, buf, wg, &k, yo, n, 3, 2, 1, 1);                                           \
                    else if (kw == 3 && npy == 2 && dl == 1 && sw == 2)                                          \
                        NAME##_run(c, buf, wg, &k, yo, n, 3, 2, 2, 1);                                           \
                    else                                                                                         \
                        NAME##_run(c, buf, wg, &k, yo, n, kw, npy, sw, dl);                                      \
                }                                                                                                \
            }                                                                                                    \
            p += oxe - ox0;                                                                                      \
        }                                                                                                        \
    }

DW_COLS_FN(tl_q8_dw_cols_vnni, TL_VNNI, dw_vnni)
DW_COLS_FN(tl_q8_dw_cols_avx512, TL_AVX512, dw_bw)

/* VNNI 3x3 depthwise with int8 weights: an input column's 16 channels x
 * kernel rows 0-3 as bytes (row 3 under a zero weight), so one vpdpbusd
 * sums a kernel column's 3 taps (u8 x s8 into int32, exact): 3 per output
 * pixel instead of 6 vpdpwssd on row pairs. Columns ix0..ix0+ncol-1. */
TL_VNNI static inline __attribute__((always_inline)) void dwq_prepare(const tl_q8_conv *c, const uint8_t *const *row,
                                                                       const ptrdiff_t *cst, int ix0, int ncol,
                                                                       int off, __m512i *buf)
{
    int jlo = ix0 < 0 ? -ix0 : 0, jhi = c->g.w - ix0 < ncol ? c->g.w - ix0 : ncol;
    jlo = jlo < ncol ? jlo : ncol;
    jhi = jhi > jlo ? jhi : jlo;
    const __m512i padv = _mm512_set1_epi32((int32_t)(0x01010101u * c->pad[0]));
    for (int j = 0; j < jlo; j++)
        buf[j] = padv;
    for (int j = jhi; j < ncol; j++)
        buf[j] = padv;
    const uint8_t *p0 = row[0] + (ptrdiff_t)(ix0 + jlo) * cst[0] + off;
    const uint8_t *p1 = row[1] + (ptrdiff_t)(ix0 + jlo) * cst[1] + off;
    const uint8_t *p2 = row[2] + (ptrdiff_t)(ix0 + jlo) * cst[2] + off;
    const uint8_t *p3 = row[3] + (ptrdiff_t)(ix0 + jlo) * cst[3] + off;
    for (int j = jlo; j < jhi; j++, p0 += cst[0], p1 += cst[1], p2 += cst[2], p3 += cst[3]) {
        __m128i a = _mm_loadu_si128((const __m128i *)p0), b = _mm_loadu_si128((const __m128i *)p1);
        __m128i d2 = _mm_loadu_si128((const __m128i *)p2), d3 = _mm_loadu_si128((const __m128i *)p3);
        __m128i ablo = _mm_unpacklo_epi8(a, b), abhi = _mm_unpackhi_epi8(a, b);
        __m128i cdlo = _mm_unpacklo_epi8(d2, d3), cdhi = _mm_unpackhi_epi8(d2, d3);
        __m256i lo = _mm256_set_m128i(_mm_unpackhi_epi16(ablo, cdlo), _mm_unpacklo_epi16(ablo, cdlo));
        __m256i hi = _mm256_set_m128i(_mm_unpackhi_epi16(abhi, cdhi), _mm_unpacklo_epi16(abhi, cdhi));
        buf[j] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    }
}

/* F (rq16f_fits): the sums start from the bias and take rq16f. */
TL_VNNI static inline __attribute__((always_inline)) void dwq_run(const tl_q8_conv *c, const __m512i *buf,
                                                                   const int8_t *wg, const void *kv, int ch,
                                                                   uint8_t *yo, int n, int SW, int F)
{
    const size_t cso = c->cs_out;
    const int lsh = c->any_lsh, away = c->away;
    const rq16 *k = kv;
    const rq16f *kf = kv;
    const __m512i w0 = _mm512_loadu_si512(wg), w1 = _mm512_loadu_si512(wg + 64), w2 = _mm512_loadu_si512(wg + 128);
    const __m512i a0 = F ? _mm512_loadu_si512(c->bias + ch) : _mm512_setzero_si512();
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        __m512i a[4];
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) {
            const __m512i *b = buf + (i + u) * SW;
            a[u] = _mm512_dpbusd_epi32(a0, b[0], w0);
            a[u] = _mm512_dpbusd_epi32(a[u], b[1], w1);
            a[u] = _mm512_dpbusd_epi32(a[u], b[2], w2);
        }
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++)
            _mm_storeu_si128((__m128i *)(yo + (i + u) * cso), F ? rq16f_apply(kf, a[u], 1) : rq16_apply(k, a[u], lsh, away));
    }
    for (; i < n; i++) {
        const __m512i *b = buf + i * SW;
        __m512i s = _mm512_dpbusd_epi32(a0, b[0], w0);
        s = _mm512_dpbusd_epi32(s, b[1], w1);
        s = _mm512_dpbusd_epi32(s, b[2], w2);
        _mm_storeu_si128((__m128i *)(yo + i * cso), F ? rq16f_apply(kf, s, 1) : rq16_apply(k, s, lsh, away));
    }
}

TL_VNNI void tl_q8_dw_quad_vnni(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1)
{
    const tl_conv_geom *g = &c->g;
    const int sw = g->stride_w, fast = rq16f_fits(c) && c->away;
    __m512i buf[Q8_DW_COLS];
    const uint8_t *row[2 * Q8_DW_PAIRS];
    ptrdiff_t cst[2 * Q8_DW_PAIRS];
    for (int p = p0; p < p1;) {
        int oy = p / g->ow, ox0 = p - oy * g->ow;
        int oxe = g->ow - ox0 < p1 - p ? g->ow : ox0 + (p1 - p);
        tl_q8_dw_row_ptrs(c, x, oy, row, cst); /* kh = 3: rows 0-2 and row 2 again (zero weight) */
        for (int a = ox0; a < oxe; a += Q8_DW_RUN) {
            int n = oxe - a < Q8_DW_RUN ? oxe - a : Q8_DW_RUN;
            int ix0 = a * sw - g->pad_l, ncol = (n - 1) * sw + 3;
            for (int grp = 0; grp < c->ngroups; grp++) {
                dwq_prepare(c, row, cst, ix0, ncol, grp * 16, buf);
                const int8_t *wg = c->wq + (size_t)grp * 3 * 64;
                uint8_t *yo = y + ((size_t)oy * g->ow + a) * c->cs_out + grp * 16;
                if (fast) {
                    rq16f k;
                    rq16f_load(c, grp * 16, &k);
                    sw == 1 ? dwq_run(c, buf, wg, &k, grp * 16, yo, n, 1, 1) : dwq_run(c, buf, wg, &k, grp * 16, yo, n, 2, 1);
                } else {
                    rq16 k;
                    rq16_load(c, grp * 16, &k);
                    sw == 1 ? dwq_run(c, buf, wg, &k, grp * 16, yo, n, 1, 0) : dwq_run(c, buf, wg, &k, grp * 16, yo, n, 2, 0);
                }
            }
        }
        p += oxe - ox0;
    }
}

/* Integer Winograd F(2x2,3x3) products (q8_wino.c): mr tiles x ng channel
 * groups (1 or Q8_WINO_GMAX) of 16 at one position, by vpmaddwd. */
__attribute__((always_inline)) TL_AVX512 static inline void wino_tile(const int16_t *vp, const int16_t *wp,
                                                                       size_t gs, int kp, int cs, int mr, int ng,
                                                                       int32_t *m)
{
    __m512i acc[Q8_WINO_MR][Q8_WINO_GMAX];
    _Pragma("GCC unroll 6") for (int i = 0; i < mr; i++)
        _Pragma("GCC unroll 4") for (int j = 0; j < ng; j++) acc[i][j] = _mm512_setzero_si512();
    for (int k = 0; k < kp; k++) {
        __m512i wv[Q8_WINO_GMAX];
        _Pragma("GCC unroll 4") for (int j = 0; j < ng; j++) wv[j] = _mm512_loadu_si512(wp + j * gs + (size_t)k * 32);
        _Pragma("GCC unroll 6") for (int i = 0; i < mr; i++) {
            int32_t b;
            memcpy(&b, vp + (size_t)i * cs + 2 * k, 4);
            __m512i bb = _mm512_set1_epi32(b);
            _Pragma("GCC unroll 4") for (int j = 0; j < ng; j++) acc[i][j] =
                _mm512_add_epi32(acc[i][j], _mm512_madd_epi16(bb, wv[j]));
        }
    }
    _Pragma("GCC unroll 6") for (int i = 0; i < mr; i++)
        _Pragma("GCC unroll 4") for (int j = 0; j < ng; j++)
            _mm512_storeu_si512(m + (size_t)j * Q8_WINO_NT * 256 + (size_t)i * 256, acc[i][j]);
}

#define WINO_GEMM(NAME, NG)                                                                                      \
    TL_AVX512 static void NAME(const tl_q8_conv *c, const int16_t *v, size_t ps, int g0, int nb, int32_t *m)     \
    {                                                                                                            \
        const int kp = c->cs_in / 2, cs = c->cs_in;                                                              \
        const size_t gs = c->gstride;                                                                            \
        for (int pos = 0; pos < 16; pos++) {                                                                     \
            const int16_t *wp = c->w16 + (size_t)g0 * gs + (size_t)pos * kp * 32, *vp = v + pos * ps;            \
            int i0 = 0;                                                                                          \
            for (; i0 + Q8_WINO_MR <= nb; i0 += Q8_WINO_MR)                                                      \
                wino_tile(vp + (size_t)i0 * cs, wp, gs, kp, cs, Q8_WINO_MR, NG, m + ((size_t)i0 * 16 + pos) * 16); \
            if (nb - i0 == 4)                                                                                    \
                wino_tile(vp + (size_t)i0 * cs, wp, gs, kp, cs, 4, NG, m + ((size_t)i0 * 16 + pos) * 16);        \
            else if (nb - i0 == 2)                                                                               \
                wino_tile(vp + (size_t)i0 * cs, wp, gs, kp, cs, 2, NG, m + ((size_t)i0 * 16 + pos) * 16);        \
        }                                                                                                        \
    }

WINO_GEMM(wino_gemm_4, Q8_WINO_GMAX)
WINO_GEMM(wino_gemm_1, 1)

void tl_q8_wino_gemm_avx512(const tl_q8_conv *c, const int16_t *v, size_t ps, int g0, int ng, int nb, int32_t *m)
{
    if (ng == Q8_WINO_GMAX)
        wino_gemm_4(c, v, ps, g0, nb, m);
    else
        wino_gemm_1(c, v, ps, g0, nb, m);
}

#else
void tl_q8_wino_gemm_avx512(const tl_q8_conv *c, const int16_t *v, size_t ps, int g0, int ng, int nb, int32_t *m) { (void)c; (void)v; (void)ps; (void)g0; (void)ng; (void)nb; (void)m; }
void tl_q8_requant_avx512(const tl_q8_conv *c, const int32_t *acc, size_t n, int32_t *y, int form) { (void)c; (void)acc; (void)n; (void)y; (void)form; }
void tl_q8_rows_vnni(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1) { (void)c; (void)x; (void)y; (void)p0; (void)p1; }
void tl_q8_rows16_avx512(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1) { (void)c; (void)x; (void)y; (void)p0; (void)p1; }
void tl_q8_rows_avx512(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1) { (void)c; (void)x; (void)y; (void)p0; (void)p1; }
void tl_q8_dw_rows_avx512(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1) { (void)c; (void)x; (void)y; (void)p0; (void)p1; }
void tl_q8_dw_cols_avx512(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1) { (void)c; (void)x; (void)y; (void)p0; (void)p1; }
void tl_q8_dw_cols_vnni(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1) { (void)c; (void)x; (void)y; (void)p0; (void)p1; }
void tl_q8_dw_quad_vnni(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1) { (void)c; (void)x; (void)y; (void)p0; (void)p1; }
void tl_q8_add_avx512(const tl_q8_add *a, size_t n, const uint8_t *x1, const uint8_t *x2, uint8_t *y) { tl_q8_add_scalar(a, n, x1, x2, y); }
void tl_q8_quantize_row_avx512(const float *x, int n, float scale, int zero, uint8_t *y) { (void)x; (void)n; (void)scale; (void)zero; (void)y; }
#endif
