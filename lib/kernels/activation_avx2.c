/* AVX2 path of the activations (act_internal.h): eight lanes a step, the
 * same operations as the scalar element functions lane for lane, which
 * also take the tail. */
#include "act_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define TL_AVX2 __attribute__((target("avx2,fma")))

TL_AVX2 static inline __m256 exp8(__m256 x)
{
    x = _mm256_min_ps(_mm256_set1_ps(TL_EXP_HI), _mm256_max_ps(_mm256_set1_ps(TL_EXP_LO), x)); /* NaN stays NaN */
    const __m256 shifter = _mm256_set1_ps(TL_EXP_SHIFTER);
    __m256 t = _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(TL_EXP_LOG2E)), shifter), n = _mm256_sub_ps(t, shifter);
    __m256 r = _mm256_sub_ps(_mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(TL_EXP_LN2_HI))),
                             _mm256_mul_ps(n, _mm256_set1_ps(TL_EXP_LN2_LO)));
    __m256 p = _mm256_set1_ps(tl_exp_poly[0]);
#pragma GCC unroll 8
    for (int k = 1; k < 8; k++)
        p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(tl_exp_poly[k]));
    __m256i bits = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_sub_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(0x4B400000)), _mm256_set1_epi32(127)),
        23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

/* 8 - n .. 16 - n gives the mask of the first n lanes (n <= 0: none, >= 8: all) */
static const int lane_mask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

TL_AVX2 static inline __m256i first_lanes(int n)
{
    n = n < 0 ? 0 : n > 8 ? 8 : n;
    return _mm256_loadu_si256((const __m256i *)(lane_mask + 8 - n));
}

TL_AVX2 static inline __m256 hardsig8(__m256 v)
{
    __m256 u = _mm256_add_ps(v, _mm256_set1_ps(3.0f));
    u = _mm256_max_ps(u, _mm256_setzero_ps()); /* NaN -> 0 */
    u = _mm256_min_ps(u, _mm256_set1_ps(6.0f));
    return _mm256_mul_ps(u, _mm256_set1_ps(1.0f / 6.0f));
}

TL_AVX2 static inline __m256 gelu8(__m256 v)
{
    __m256 z = _mm256_mul_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), v), _mm256_set1_ps(0.70710678118654752f));
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 t = _mm256_div_ps(one, _mm256_add_ps(one, _mm256_mul_ps(_mm256_set1_ps(0.5f), z)));
    __m256 p = _mm256_set1_ps(tl_erfc_poly[0]);
#pragma GCC unroll 10
    for (int k = 1; k < TL_ERFC_NC; k++)
        p = _mm256_add_ps(_mm256_mul_ps(p, t), _mm256_set1_ps(tl_erfc_poly[k]));
    __m256 erfc = _mm256_mul_ps(t, exp8(_mm256_sub_ps(p, _mm256_mul_ps(z, z))));
    __m256 neg = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ);
    __m256 s = _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(2.0f), erfc), erfc, neg);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), s);
}

/* SiLU and sigmoid of LOCK vectors in lockstep (tl_silu_f, tl_sigmoid_f
 * lane for lane): each step for all of them before the next, where act8
 * ran one vector's long chain of dependent operations after the other's
 * (and, with the other loops' constants, ran out of AVX2's 16 registers). */
#define LOCK 3
TL_AVX2 static inline __attribute__((always_inline)) void exp_sig_n(int act, __m256 *v, const int cnt)
{
    __m256 t[LOCK], q[LOCK], p[LOCK];
    const __m256 shifter = _mm256_set1_ps(TL_EXP_SHIFTER);
#pragma GCC unroll 4
    for (int j = 0; j < cnt; j++) { /* max(lo, v): a NaN v stays, as in the scalar clamp */
        q[j] = _mm256_min_ps(_mm256_set1_ps(TL_SIG_HI), _mm256_max_ps(_mm256_set1_ps(TL_SIG_LO), v[j]));
        t[j] = _mm256_fmadd_ps(q[j], _mm256_set1_ps(-TL_EXP_LOG2E), shifter);
    }
#pragma GCC unroll 4
    for (int j = 0; j < cnt; j++) {
        __m256 n = _mm256_sub_ps(t[j], shifter);
        q[j] = _mm256_fmadd_ps(n, _mm256_set1_ps(TL_EXP_LN2_LO), _mm256_fmadd_ps(n, _mm256_set1_ps(TL_EXP_LN2_HI), q[j]));
        p[j] = _mm256_set1_ps(tl_sig_poly[0]);
    }
#pragma GCC unroll 8
    for (int k = 1; k < 7; k++)
#pragma GCC unroll 4
        for (int j = 0; j < cnt; j++)
            p[j] = _mm256_fmadd_ps(p[j], q[j], _mm256_set1_ps(tl_sig_poly[k]));
#pragma GCC unroll 4
    for (int j = 0; j < cnt; j++) {
        __m256i tn = _mm256_slli_epi32(_mm256_castps_si256(t[j]), 23);
        __m256 e = act == TL_ACT_SILU
                       ? _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p[j]), tn))
                       : _mm256_mul_ps(p[j], _mm256_castsi256_ps(_mm256_add_epi32(tn, _mm256_set1_epi32(0x3F800000))));
        v[j] = _mm256_div_ps(act == TL_ACT_SILU ? v[j] : _mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    }
}

TL_AVX2 static inline __attribute__((always_inline)) void exp_sig_lock(int act, __m256 *v)
{
    exp_sig_n(act, v, LOCK);
}

TL_AVX2 static inline __attribute__((always_inline)) __m256 sig8(int act, __m256 v)
{
    exp_sig_n(act, &v, 1);
    return v;
}

TL_AVX2 static inline __attribute__((always_inline)) __m256 act8(int act, __m256 v)
{
    const __m256 zero = _mm256_setzero_ps();
    switch (act) {
    case TL_ACT_RELU: return _mm256_max_ps(v, zero);                                       /* NaN -> 0 */
    case TL_ACT_RELU6: return _mm256_min_ps(_mm256_set1_ps(6.0f), _mm256_max_ps(zero, v)); /* NaN stays */
    case TL_ACT_SIGMOID: return sig8(TL_ACT_SIGMOID, v);
    case TL_ACT_SILU: return sig8(TL_ACT_SILU, v);
    case TL_ACT_HARDSIGMOID: return hardsig8(v);
    case TL_ACT_HARDSWISH: return _mm256_mul_ps(v, hardsig8(v));
    case TL_ACT_GELU: return gelu8(v);
    default: return v;
    }
}

/* The whole LOCK-vector blocks of n floats (x + bias when bias is given);
 * returns how many were done. Not inlined: in the row loop's function the
 * constants of every loop were hoisted together and spilled to the stack. */
TL_AVX2 static inline __attribute__((always_inline)) size_t lock_rows(int act, const float *x, float *y,
                                                                      const float *bias, size_t n)
{
    const __m256 b = _mm256_set1_ps(bias ? *bias : 0.0f);
    size_t i = 0;
    for (; i + 8 * LOCK <= n; i += 8 * LOCK) {
        __m256 v[LOCK];
#pragma GCC unroll 4
        for (int j = 0; j < LOCK; j++) {
            v[j] = _mm256_loadu_ps(x + i + 8 * j);
            if (bias)
                v[j] = _mm256_add_ps(v[j], b);
        }
        exp_sig_lock(act, v);
#pragma GCC unroll 4
        for (int j = 0; j < LOCK; j++)
            _mm256_storeu_ps(y + i + 8 * j, v[j]);
    }
    return i;
}

/* one function for each activation, with and without a bias */
#define LOCK_FN(name, act, biased)                                                                 \
    TL_AVX2 __attribute__((noinline)) static size_t name(const float *x, float *y, const float *bias, size_t n) \
    {                                                                                              \
        return lock_rows(act, x, y, biased ? bias : NULL, n);                                      \
    }
LOCK_FN(silu_lock, TL_ACT_SILU, 0)
LOCK_FN(silu_lock_bias, TL_ACT_SILU, 1)
LOCK_FN(sigmoid_lock, TL_ACT_SIGMOID, 0)
LOCK_FN(sigmoid_lock_bias, TL_ACT_SIGMOID, 1)
#undef LOCK_FN

/* one row loop, inlined for each activation below */
TL_AVX2 static inline __attribute__((always_inline)) void rows_avx2(int act, const float *x, size_t ldx, float *y,
                                                             size_t ldy, const float *bias, int rows, size_t cols)
{
    size_t whole = cols / 8 * 8;
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * ldx;
        float *yr = y + (size_t)r * ldy;
        float bs = bias ? bias[r] : 0.0f;
        __m256 b = _mm256_set1_ps(bs);
        size_t i = 0;
        if (act == TL_ACT_SILU || act == TL_ACT_SIGMOID)
            i = (act == TL_ACT_SILU ? bias ? silu_lock_bias : silu_lock
                                    : bias ? sigmoid_lock_bias : sigmoid_lock)(xr, yr, &bs, whole);
        /* four vectors a step, then two: the long dependent chains of exp
         * and the division of one vector overlap the others' (SiLU 7 %
         * faster on AVX-512, 3 % on AVX2 than two a step, Zen 4) */
        for (; i + 32 <= whole; i += 32) {
            __m256 v = _mm256_loadu_ps(xr + i), u = _mm256_loadu_ps(xr + i + 8);
            __m256 v2 = _mm256_loadu_ps(xr + i + 16), u2 = _mm256_loadu_ps(xr + i + 24);
            if (bias) {
                v = _mm256_add_ps(v, b), u = _mm256_add_ps(u, b);
                v2 = _mm256_add_ps(v2, b), u2 = _mm256_add_ps(u2, b);
            }
            v = act8(act, v);
            u = act8(act, u);
            v2 = act8(act, v2);
            u2 = act8(act, u2);
            _mm256_storeu_ps(yr + i, v);
            _mm256_storeu_ps(yr + i + 8, u);
            _mm256_storeu_ps(yr + i + 16, v2);
            _mm256_storeu_ps(yr + i + 24, u2);
        }
        for (; i + 16 <= whole; i += 16) {
            __m256 v = _mm256_loadu_ps(xr + i), u = _mm256_loadu_ps(xr + i + 8);
            if (bias)
                v = _mm256_add_ps(v, b), u = _mm256_add_ps(u, b);
            v = act8(act, v);
            u = act8(act, u);
            _mm256_storeu_ps(yr + i, v);
            _mm256_storeu_ps(yr + i + 8, u);
        }
        for (; i < whole; i += 8) {
            __m256 v = _mm256_loadu_ps(xr + i);
            if (bias)
                v = _mm256_add_ps(v, b);
            _mm256_storeu_ps(yr + i, act8(act, v));
        }
        if (i < cols) { /* the last 1-7 in a masked vector (scalar, they were a 14x14 map's rows' 4 in 200) */
            const __m256i m = first_lanes((int)(cols - i));
            __m256 v = _mm256_maskload_ps(xr + i, m);
            if (bias)
                v = _mm256_add_ps(v, b);
            _mm256_maskstore_ps(yr + i, m, act8(act, v));
        }
    }
}

/* rows of one value each, contiguous (squeeze-excitation's two 1x1 layers
 * on a 1x1 map): 8 rows a vector, each with its own bias, where the row
 * loop took them one by one in scalar code */
TL_AVX2 static inline __attribute__((always_inline)) void column_avx2(int act, const float *x, float *y,
                                                                     const float *bias, int rows)
{
    int i = 0;
    for (; i < rows; i += 8) {
        const __m256i m = first_lanes(rows - i);
        __m256 v = _mm256_maskload_ps(x + i, m);
        if (bias)
            v = _mm256_add_ps(v, _mm256_maskload_ps(bias + i, m));
        _mm256_maskstore_ps(y + i, m, act8(act, v));
    }
}

TL_AVX2 void tl_act_rows_avx2(int act, const float *x, size_t ldx, float *y, size_t ldy, const float *bias, int rows,
                              size_t cols)
{
    if (cols == 1 && ldx == 1 && ldy == 1) {
        switch (act) {
        case TL_ACT_SIGMOID: column_avx2(TL_ACT_SIGMOID, x, y, bias, rows); break;
        case TL_ACT_SILU: column_avx2(TL_ACT_SILU, x, y, bias, rows); break;
        default: column_avx2(act, x, y, bias, rows); break;
        }
        return;
    }
    /* one loop per activation: the element switch folds away */
    switch (act) {
    case TL_ACT_RELU: rows_avx2(TL_ACT_RELU, x, ldx, y, ldy, bias, rows, cols); break;
    case TL_ACT_RELU6: rows_avx2(TL_ACT_RELU6, x, ldx, y, ldy, bias, rows, cols); break;
    case TL_ACT_SIGMOID: rows_avx2(TL_ACT_SIGMOID, x, ldx, y, ldy, bias, rows, cols); break;
    case TL_ACT_SILU: rows_avx2(TL_ACT_SILU, x, ldx, y, ldy, bias, rows, cols); break;
    default: rows_avx2(act, x, ldx, y, ldy, bias, rows, cols); break;
    }
}
/* tl_softmax_rows_scalar lane for lane: the 16 running sums are four
 * vectors of 4 doubles (elements i % 16 in 0-3, 4-7, 8-11, 12-15); a
 * row's last partial block goes through a buffer whose unused lanes add 0. */
TL_AVX2 void tl_softmax_rows_avx2(float *x, int rows, int n)
{
    for (int r = 0; r < rows && n > 0; r++, x += n) {
        const int full = n / 16 * 16, w = n - full;
        __m256 vm = _mm256_set1_ps(x[0]);
        for (int i = 0; i < full; i += 8)
            vm = _mm256_max_ps(_mm256_loadu_ps(x + i), vm); /* a NaN element keeps vm, as the scalar > */
        float mx, lanes[8];
        _mm256_storeu_ps(lanes, vm);
        mx = lanes[0];
        for (int j = 1; j < 8; j++)
            mx = lanes[j] > mx ? lanes[j] : mx;
        for (int i = full; i < n; i++)
            mx = x[i] > mx ? x[i] : mx;
        const __m256 m = _mm256_set1_ps(mx);
        __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
        float buf[16];
        for (int i = 0; i < n; i += 16) {
            float *src = x + i;
            if (i == full) { /* the last w < 16 elements; zeros past them */
                memset(buf, 0, sizeof buf);
                memcpy(buf, src, (size_t)w * sizeof *buf);
                src = buf;
            }
            __m256 e0 = exp8(_mm256_sub_ps(_mm256_loadu_ps(src), m));
            __m256 e1 = exp8(_mm256_sub_ps(_mm256_loadu_ps(src + 8), m));
            if (src == buf) {
                _mm256_storeu_ps(buf, e0);
                _mm256_storeu_ps(buf + 8, e1);
                for (int j = w; j < 16; j++)
                    buf[j] = 0.0f;
                memcpy(x + i, buf, (size_t)w * sizeof *buf);
                e0 = _mm256_loadu_ps(buf);
                e1 = _mm256_loadu_ps(buf + 8);
            } else {
                _mm256_storeu_ps(src, e0);
                _mm256_storeu_ps(src + 8, e1);
            }
            s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e0)));
            s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e0, 1)));
            s2 = _mm256_add_pd(s2, _mm256_cvtps_pd(_mm256_castps256_ps128(e1)));
            s3 = _mm256_add_pd(s3, _mm256_cvtps_pd(_mm256_extractf128_ps(e1, 1)));
        }
        __m256d s4 = _mm256_add_pd(_mm256_add_pd(s0, s2), _mm256_add_pd(s1, s3));
        __m128d t2 = _mm_add_pd(_mm256_castpd256_pd128(s4), _mm256_extractf128_pd(s4, 1));
        double sum = _mm_cvtsd_f64(_mm_add_sd(t2, _mm_unpackhi_pd(t2, t2)));
        const __m256 inv = _mm256_set1_ps((float)(1.0 / sum));
        int i = 0;
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
        for (; i < n; i++)
            x[i] *= (float)(1.0 / sum);
    }
}
#endif
