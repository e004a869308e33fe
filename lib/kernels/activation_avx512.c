/* AVX-512 path of the activations (act_internal.h): sixteen lanes a step,
 * masked for the tail, the same operations as the scalar element
 * functions lane for lane. */
#include "act_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define TL_AVX512 __attribute__((target("avx512f,avx512dq")))

TL_AVX512 static inline __m512 exp16(__m512 x)
{
    x = _mm512_min_ps(_mm512_set1_ps(TL_EXP_HI), _mm512_max_ps(_mm512_set1_ps(TL_EXP_LO), x)); /* NaN stays NaN */
    const __m512 shifter = _mm512_set1_ps(TL_EXP_SHIFTER);
    __m512 t = _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(TL_EXP_LOG2E)), shifter), n = _mm512_sub_ps(t, shifter);
    __m512 r = _mm512_sub_ps(_mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(TL_EXP_LN2_HI))),
                             _mm512_mul_ps(n, _mm512_set1_ps(TL_EXP_LN2_LO)));
    __m512 p = _mm512_set1_ps(tl_exp_poly[0]);
#pragma GCC unroll 8
    for (int k = 1; k < 8; k++)
        p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(tl_exp_poly[k]));
    __m512i bits = _mm512_slli_epi32(
        _mm512_add_epi32(_mm512_sub_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(0x4B400000)), _mm512_set1_epi32(127)),
        23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}

TL_AVX512 static inline __m512 hardsig16(__m512 v)
{
    __m512 u = _mm512_add_ps(v, _mm512_set1_ps(3.0f));
    u = _mm512_max_ps(u, _mm512_setzero_ps()); /* NaN -> 0 */
    u = _mm512_min_ps(u, _mm512_set1_ps(6.0f));
    return _mm512_mul_ps(u, _mm512_set1_ps(1.0f / 6.0f));
}

TL_AVX512 static inline __m512 gelu16(__m512 v)
{
    __m512 z = _mm512_mul_ps(_mm512_andnot_ps(_mm512_set1_ps(-0.0f), v), _mm512_set1_ps(0.70710678118654752f));
    __m512 one = _mm512_set1_ps(1.0f);
    __m512 t = _mm512_div_ps(one, _mm512_add_ps(one, _mm512_mul_ps(_mm512_set1_ps(0.5f), z)));
    __m512 p = _mm512_set1_ps(tl_erfc_poly[0]);
#pragma GCC unroll 10
    for (int k = 1; k < TL_ERFC_NC; k++)
        p = _mm512_add_ps(_mm512_mul_ps(p, t), _mm512_set1_ps(tl_erfc_poly[k]));
    __m512 erfc = _mm512_mul_ps(t, exp16(_mm512_sub_ps(p, _mm512_mul_ps(z, z))));
    __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512 s = _mm512_mask_blend_ps(neg, _mm512_sub_ps(_mm512_set1_ps(2.0f), erfc), erfc);
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), s);
}

/* tl_silu_f and tl_sigmoid_f lane for lane */
TL_AVX512 static inline __m512 sig16(int act, __m512 v)
{
    const __m512 shifter = _mm512_set1_ps(TL_EXP_SHIFTER);
    /* max(lo, v): a NaN v stays, as in the scalar clamp */
    __m512 q = _mm512_min_ps(_mm512_set1_ps(TL_SIG_HI), _mm512_max_ps(_mm512_set1_ps(TL_SIG_LO), v));
    __m512 t = _mm512_fmadd_ps(q, _mm512_set1_ps(-TL_EXP_LOG2E), shifter), n = _mm512_sub_ps(t, shifter);
    q = _mm512_fmadd_ps(n, _mm512_set1_ps(TL_EXP_LN2_LO), _mm512_fmadd_ps(n, _mm512_set1_ps(TL_EXP_LN2_HI), q));
    __m512 p = _mm512_set1_ps(tl_sig_poly[0]);
#pragma GCC unroll 8
    for (int k = 1; k < 7; k++)
        p = _mm512_fmadd_ps(p, q, _mm512_set1_ps(tl_sig_poly[k]));
    __m512i tn = _mm512_slli_epi32(_mm512_castps_si512(t), 23);
    __m512 e = act == TL_ACT_SILU
                   ? _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(p), tn))
                   : _mm512_mul_ps(p, _mm512_castsi512_ps(_mm512_add_epi32(tn, _mm512_set1_epi32(0x3F800000))));
    return _mm512_div_ps(act == TL_ACT_SILU ? v : _mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

TL_AVX512 static inline __attribute__((always_inline)) __m512 act16(int act, __m512 v)
{
    const __m512 zero = _mm512_setzero_ps();
    switch (act) {
    case TL_ACT_RELU: return _mm512_max_ps(v, zero);                                       /* NaN -> 0 */
    case TL_ACT_RELU6: return _mm512_min_ps(_mm512_set1_ps(6.0f), _mm512_max_ps(zero, v)); /* NaN stays */
    case TL_ACT_SIGMOID: return sig16(TL_ACT_SIGMOID, v);
    case TL_ACT_SILU: return sig16(TL_ACT_SILU, v);
    case TL_ACT_HARDSIGMOID: return hardsig16(v);
    case TL_ACT_HARDSWISH: return _mm512_mul_ps(v, hardsig16(v));
    case TL_ACT_GELU: return gelu16(v);
    default: return v;
    }
}

/* one row loop, inlined for each activation below */
TL_AVX512 static inline __attribute__((always_inline)) void rows_avx512(int act, const float *x, size_t ldx, float *y,
                                                             size_t ldy, const float *bias, int rows, size_t cols)
{
    __mmask16 tail = (__mmask16)((1u << (cols % 16)) - 1);
    size_t whole = cols / 16 * 16;
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * ldx;
        float *yr = y + (size_t)r * ldy;
        __m512 b = _mm512_set1_ps(bias ? bias[r] : 0.0f);
        size_t i = 0;
        /* adding a zero bias is skipped: -0 + 0 would turn -0 into +0 */
        /* four vectors a step, then two: the long dependent chains of exp
         * and the division of one vector overlap the others' (SiLU 7 %
         * faster on AVX-512, 3 % on AVX2 than two a step, Zen 4) */
        for (; i + 64 <= whole; i += 64) {
            __m512 v = _mm512_loadu_ps(xr + i), u = _mm512_loadu_ps(xr + i + 16);
            __m512 v2 = _mm512_loadu_ps(xr + i + 32), u2 = _mm512_loadu_ps(xr + i + 48);
            if (bias) {
                v = _mm512_add_ps(v, b), u = _mm512_add_ps(u, b);
                v2 = _mm512_add_ps(v2, b), u2 = _mm512_add_ps(u2, b);
            }
            v = act16(act, v);
            u = act16(act, u);
            v2 = act16(act, v2);
            u2 = act16(act, u2);
            _mm512_storeu_ps(yr + i, v);
            _mm512_storeu_ps(yr + i + 16, u);
            _mm512_storeu_ps(yr + i + 32, v2);
            _mm512_storeu_ps(yr + i + 48, u2);
        }
        for (; i + 32 <= whole; i += 32) {
            __m512 v = _mm512_loadu_ps(xr + i), u = _mm512_loadu_ps(xr + i + 16);
            if (bias)
                v = _mm512_add_ps(v, b), u = _mm512_add_ps(u, b);
            v = act16(act, v);
            u = act16(act, u);
            _mm512_storeu_ps(yr + i, v);
            _mm512_storeu_ps(yr + i + 16, u);
        }
        for (; i < whole; i += 16) {
            __m512 v = _mm512_loadu_ps(xr + i);
            if (bias)
                v = _mm512_add_ps(v, b);
            _mm512_storeu_ps(yr + i, act16(act, v));
        }
        if (tail) {
            __m512 v = _mm512_maskz_loadu_ps(tail, xr + i);
            if (bias)
                v = _mm512_add_ps(v, b);
            _mm512_mask_storeu_ps(yr + i, tail, act16(act, v));
        }
    }
}

/* rows of one value each, contiguous (squeeze-excitation's two 1x1 layers
 * on a 1x1 map): 16 rows a vector, each with its own bias, where the row
 * loop took each in a vector of one lane */
TL_AVX512 static inline __attribute__((always_inline)) void column_avx512(int act, const float *x, float *y,
                                                                         const float *bias, int rows)
{
    for (int i = 0; i < rows; i += 16) {
        const __mmask16 m = rows - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (rows - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        if (bias)
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + i));
        _mm512_mask_storeu_ps(y + i, m, act16(act, v));
    }
}

TL_AVX512 void tl_act_rows_avx512(int act, const float *x, size_t ldx, float *y, size_t ldy, const float *bias,
                                  int rows, size_t cols)
{
    if (cols == 1 && ldx == 1 && ldy == 1) {
        switch (act) {
        case TL_ACT_SIGMOID: column_avx512(TL_ACT_SIGMOID, x, y, bias, rows); break;
        case TL_ACT_SILU: column_avx512(TL_ACT_SILU, x, y, bias, rows); break;
        default: column_avx512(act, x, y, bias, rows); break;
        }
        return;
    }
    /* one loop per activation: the element switch folds away */
    switch (act) {
    case TL_ACT_RELU: rows_avx512(TL_ACT_RELU, x, ldx, y, ldy, bias, rows, cols); break;
    case TL_ACT_RELU6: rows_avx512(TL_ACT_RELU6, x, ldx, y, ldy, bias, rows, cols); break;
    case TL_ACT_SIGMOID: rows_avx512(TL_ACT_SIGMOID, x, ldx, y, ldy, bias, rows, cols); break;
    case TL_ACT_SILU: rows_avx512(TL_ACT_SILU, x, ldx, y, ldy, bias, rows, cols); break;
    default: rows_avx512(act, x, ldx, y, ldy, bias, rows, cols); break;
    }
}
/* tl_softmax_rows_scalar lane for lane: the 16 running sums are two
 * vectors of 8 doubles (elements i % 16 < 8, >= 8); a short row's last
 * block goes through a buffer whose unused lanes add 0. */
TL_AVX512 void tl_softmax_rows_avx512(float *x, int rows, int n)
{
    for (int r = 0; r < rows && n > 0; r++, x += n) {
        const int full = n / 16 * 16, w = n - full;
        const __mmask16 tail = (__mmask16)((1u << w) - 1);
        __m512 vm = _mm512_set1_ps(x[0]);
        for (int i = 0; i < full; i += 16)
            vm = _mm512_max_ps(_mm512_loadu_ps(x + i), vm); /* a NaN element keeps vm, as the scalar > */
        if (w)
            vm = _mm512_mask_max_ps(vm, tail, _mm512_maskz_loadu_ps(tail, x + full), vm);
        float mx = _mm512_reduce_max_ps(vm);
        const __m512 m = _mm512_set1_ps(mx);
        __m512d s0 = _mm512_setzero_pd(), s1 = s0;
        for (int i = 0; i < full; i += 16) {
            __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), m));
            _mm512_storeu_ps(x + i, e);
            s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
            s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
        }
        if (w) {
            __m512 e = _mm512_maskz_mov_ps(tail, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, x + full), m)));
            _mm512_mask_storeu_ps(x + full, tail, e);
            s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
            s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
        }
        __m512d s8 = _mm512_add_pd(s0, s1);
        __m256d s4 = _mm256_add_pd(_mm512_castpd512_pd256(s8), _mm512_extractf64x4_pd(s8, 1));
        __m128d s2 = _mm_add_pd(_mm256_castpd256_pd128(s4), _mm256_extractf128_pd(s4, 1));
        double sum = _mm_cvtsd_f64(_mm_add_sd(s2, _mm_unpackhi_pd(s2, s2)));
        const __m512 inv = _mm512_set1_ps((float)(1.0 / sum));
        for (int i = 0; i < full; i += 16)
            _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), inv));
        if (w)
            _mm512_mask_storeu_ps(x + full, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, x + full), inv));
    }
}
#endif
