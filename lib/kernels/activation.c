/* Element-wise activations and the per-channel bias + activation epilogue
 * of the convolutions (the element functions in act_internal.h, one copy
 * per SIMD path in activation_avx2.c and activation_avx512.c, picked by
 * tl_simd_level()), and the derivatives, with PyTorch's values at the
 * kinks (its *_backward kernels), so gradients match it exactly there. */
#include "act_internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

/* The portable path, written so that GCC vectorises the simple cases
 * (fixed-width blocks, the switch outside the loop). */
#define BLOCK 16
#define ROWS_LOOP(expr)                                                                            \
    for (int r = 0; r < rows; r++) {                                                               \
        const float *xr = x + (size_t)r * ldx;                                                     \
        float *yr = y + (size_t)r * ldy;                                                           \
        float b = bias ? bias[r] : 0.0f;                                                           \
        size_t i = 0;                                                                              \
        for (; i + BLOCK <= cols; i += BLOCK)                                                      \
            for (size_t j = i; j < i + BLOCK; j++) {                                               \
                float v = bias ? xr[j] + b : xr[j];                                                \
                yr[j] = (expr);                                                                    \
            }                                                                                      \
        for (; i < cols; i++) {                                                                    \
            float v = bias ? xr[i] + b : xr[i];                                                    \
            yr[i] = (expr);                                                                        \
        }                                                                                          \
    }

static inline __attribute__((always_inline)) void rows_scalar(int act, const float *x, size_t ldx, float *y,
                                                               size_t ldy, const float *bias, int rows, size_t cols)
{
    switch (act) {
    case TL_ACT_RELU: ROWS_LOOP(v > 0.0f ? v : 0.0f); break;
    case TL_ACT_RELU6: ROWS_LOOP(v < 0.0f ? 0.0f : v > 6.0f ? 6.0f : v); break;
    default: ROWS_LOOP(tl_act_f(act, v)); break;
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
/* SiLU's and sigmoid's fmaf is one instruction where the CPU has FMA and a
 * libm call where it is not known to (SiLU 2.8 against 27 ns an element,
 * Zen 4; 8.4 before fmaf): the same bits either way (fma rounds once) */
__attribute__((target("fma"))) static void rows_scalar_fma(int act, const float *x, size_t ldx, float *y, size_t ldy,
                                                           const float *bias, int rows, size_t cols)
{
    if (act == TL_ACT_SILU)
        ROWS_LOOP(tl_silu_f(v))
    else
        ROWS_LOOP(tl_sigmoid_f(v))
}
#endif

void tl_act_rows_scalar(int act, const float *x, size_t ldx, float *y, size_t ldy, const float *bias, int rows,
                        size_t cols)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if ((act == TL_ACT_SILU || act == TL_ACT_SIGMOID) && __builtin_cpu_supports("fma")) {
        rows_scalar_fma(act, x, ldx, y, ldy, bias, rows, cols);
        return;
    }
#endif
    rows_scalar(act, x, ldx, y, ldy, bias, rows, cols);
}

tl_act_rows_fn tl_act_rows_for(int level)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (level >= TL_SIMD_AVX512)
        return tl_act_rows_avx512;
    if (level == TL_SIMD_AVX2)
        return tl_act_rows_avx2;
#endif
    (void)level;
    return tl_act_rows_scalar;
}

void tl_softmax_rows_scalar(float *x, int rows, int n)
{
    for (int r = 0; r < rows && n > 0; r++, x += n) {
        float mx = x[0];
        for (int i = 1; i < n; i++)
            mx = x[i] > mx ? x[i] : mx;
        double s[16] = {0};
        for (int i = 0; i < n; i++) {
            x[i] = tl_exp_f(x[i] - mx);
            s[i % 16] += x[i];
        }
        for (int w = 8; w >= 1; w /= 2)
            for (int j = 0; j < w; j++)
                s[j] += s[j + w];
        float inv = (float)(1.0 / s[0]);
        for (int i = 0; i < n; i++)
            x[i] *= inv;
    }
}

tl_softmax_rows_fn tl_softmax_rows_for(int level)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (level >= TL_SIMD_AVX512)
        return tl_softmax_rows_avx512;
    if (level == TL_SIMD_AVX2)
        return tl_softmax_rows_avx2;
#endif
    (void)level;
    return tl_softmax_rows_scalar;
}

void tl_activation(int act, float *x, size_t n)
{
    if (act != TL_ACT_NONE)
        tl_act_rows_for(tl_simd_level())(act, x, n, x, n, NULL, 1, n);
}

void tl_activation_copy(int act, const float *x, float *y, size_t n)
{
    if (act == TL_ACT_NONE)
        memcpy(y, x, n * sizeof(float));
    else
        tl_act_rows_for(tl_simd_level())(act, x, n, y, n, NULL, 1, n);
}

void tl_bias_act_2d(int act, float *x, size_t ld, const float *bias, int rows, size_t cols)
{
    if (act != TL_ACT_NONE || bias)
        tl_act_rows_for(tl_simd_level())(act, x, ld, x, ld, bias, rows, cols);
}

/* ---------------------------------------------------------------- backward */

static float sigmoidf(float v) { return 1.0f / (1.0f + expf(-v)); }

static float silu_grad(float v)
{
    float s = sigmoidf(v);
    return s * (1.0f + v * (1.0f - s));
}

static float gelu_grad(float v)
{
    float cdf = 0.5f * (1.0f + erff(v * 0.70710678118654752f));
    float pdf = expf(-0.5f * v * v) * 0.39894228040143268f;
    return cdf + v * pdf;
}

/* x/3 + 1/2 on [-3, 3): PyTorch's vectorised kernel, which handles all but
 * a tensor's last few elements (its scalar tail uses [-3, 3], giving 1.5 at 3) */
static float hardswish_grad(float v) { return v < -3.0f ? 0.0f : v < 3.0f ? v * (1.0f / 3.0f) + 0.5f : 1.0f; }

/* The piecewise-constant derivatives are masks (rather than multiplies,
 * so that inf * 0 never makes a NaN): dx = dy & (lo < x < hi), times a
 * constant (hi = INFINITY: no upper bound). SSE2 is part of x86-64; elsewhere the scalar loop does it.
 * Each element is read before it is written, so dx may equal dy. */
#if defined(__x86_64__) && defined(__GNUC__)
#define TL_HAVE_WIDE_MASKED 1
/* Sixteen lanes a step with AVX-512, eight with AVX2 (the same values: a
 * masked product is +0 where the mask is off, as the SSE2 AND gives). */
__attribute__((target("avx512f"))) static size_t masked_avx512(const float *x, const float *dy, float *dx,
                                                                size_t n, float lo, float hi, float scale)
{
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi), vs = _mm512_set1_ps(scale);
    const int bounded = hi < INFINITY;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        __mmask16 m = _mm512_cmp_ps_mask(v, vlo, _CMP_GT_OQ);
        if (bounded)
            m &= _mm512_cmp_ps_mask(v, vhi, _CMP_LT_OQ);
        _mm512_storeu_ps(dx + i, _mm512_maskz_mul_ps(m, _mm512_loadu_ps(dy + i), vs));
    }
    return i;
}

__attribute__((target("avx2"))) static size_t masked_avx2(const float *x, const float *dy, float *dx, size_t n,
                                                           float lo, float hi, float scale)
{
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi), vs = _mm256_set1_ps(scale);
    const int bounded = hi < INFINITY;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 m = _mm256_cmp_ps(v, vlo, _CMP_GT_OQ);
        if (bounded)
            m = _mm256_and_ps(m, _mm256_cmp_ps(v, vhi, _CMP_LT_OQ));
        _mm256_storeu_ps(dx + i, _mm256_and_ps(m, _mm256_mul_ps(_mm256_loadu_ps(dy + i), vs)));
    }
    return i;
}
#endif

static void masked(const float *x, const float *dy, float *dx, size_t n, float lo, float hi, float scale)
{
    size_t i = 0;
#if defined(TL_HAVE_WIDE_MASKED)
    int level = tl_simd_level();
    if (level >= TL_SIMD_AVX512)
        i = masked_avx512(x, dy, dx, n, lo, hi, scale);
    else if (level == TL_SIMD_AVX2)
        i = masked_avx2(x, dy, dx, n, lo, hi, scale);
#endif
#if defined(__SSE2__)
    const __m128 vlo = _mm_set1_ps(lo), vhi = _mm_set1_ps(hi), vs = _mm_set1_ps(scale);
    for (; i + 4 <= n; i += 4) {
        __m128 v = _mm_loadu_ps(x + i);
        __m128 m = _mm_cmpgt_ps(v, vlo);
        if (hi < INFINITY)
            m = _mm_and_ps(m, _mm_cmplt_ps(v, vhi));
        _mm_storeu_ps(dx + i, _mm_and_ps(m, _mm_mul_ps(_mm_loadu_ps(dy + i), vs)));
    }
#endif
    for (; i < n; i++)
        dx[i] = x[i] > lo && (x[i] < hi || hi == INFINITY) ? dy[i] * scale : 0.0f;
}

#define EACH(expr)                                                                                 \
    for (size_t i = 0; i < n; i++) {                                                               \
        float v = x[i];                                                                            \
        dx[i] = dy[i] * (expr);                                                                    \
    }

void tl_activation_backward(int act, const float *x, const float *dy, float *dx, size_t n)
{
    switch (act) {
    case TL_ACT_RELU: masked(x, dy, dx, n, 0.0f, INFINITY, 1.0f); break;
    case TL_ACT_RELU6: masked(x, dy, dx, n, 0.0f, 6.0f, 1.0f); break;
    case TL_ACT_HARDSIGMOID: masked(x, dy, dx, n, -3.0f, 3.0f, 1.0f / 6.0f); break;
    case TL_ACT_SIGMOID:
        EACH(sigmoidf(v) * (1.0f - sigmoidf(v)));
        break;
    case TL_ACT_SILU:
        EACH(silu_grad(v));
        break;
    case TL_ACT_HARDSWISH:
        EACH(hardswish_grad(v));
        break;
    case TL_ACT_GELU:
        EACH(gelu_grad(v));
        break;
    default:
        if (dx != dy)
            memmove(dx, dy, sizeof(float) * n);
        break;
    }
}
