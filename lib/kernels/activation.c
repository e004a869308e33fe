/* Element-wise activations, the per-channel bias + activation epilogue
 * (plain loops: memory bound, and the compiler vectorises the simple ones)
 * and the derivatives, with PyTorch's values at the kinks (its *_backward
 * kernels), so gradients match it exactly there. */
#include "kernels.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

/* exp(x) within ~2 ulp, branch-free so the activation loops vectorise
 * (libm's expf is a call per element, and SiLU networks spend their time
 * there): x = n ln2 + r with |r| <= ln2/2, e^r by its Taylor series to
 * degree 7, 2^n built in the exponent bits. */
static inline float exp_vec(float x)
{
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float t = x * 1.44269504088896341f + shifter, n = t - shifter;
    float r = x - n * 0.693145751953125f - n * 1.42860682030941723e-6f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    uint32_t ti, bits;
    memcpy(&ti, &t, sizeof ti);
    bits = (ti - 0x4B400000u + 127u) << 23; /* n + bias in the exponent field */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}


#if defined(__SSE2__)
/* exp_vec on four lanes, operation for operation (so a value gets the same
 * bits whichever path computes it): the compiler will not vectorise the
 * scalar form by itself. SSE2 is part of x86-64. */
static inline __m128 exp4(__m128 x)
{
    x = _mm_min_ps(_mm_set1_ps(88.0f), _mm_max_ps(_mm_set1_ps(-87.0f), x)); /* NaN stays NaN */
    const __m128 shifter = _mm_set1_ps(12582912.0f);
    __m128 t = _mm_add_ps(_mm_mul_ps(x, _mm_set1_ps(1.44269504088896341f)), shifter), n = _mm_sub_ps(t, shifter);
    __m128 r = _mm_sub_ps(_mm_sub_ps(x, _mm_mul_ps(n, _mm_set1_ps(0.693145751953125f))),
                          _mm_mul_ps(n, _mm_set1_ps(1.42860682030941723e-6f)));
    static const float c[8] = {1.0f / 5040, 1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f};
    __m128 p = _mm_set1_ps(c[0]);
    for (int k = 1; k < 8; k++)
        p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(c[k]));
    __m128i bits = _mm_slli_epi32(_mm_add_epi32(_mm_sub_epi32(_mm_castps_si128(t), _mm_set1_epi32(0x4B400000)),
                                                _mm_set1_epi32(127)),
                                  23);
    return _mm_mul_ps(p, _mm_castsi128_ps(bits));
}
#endif

static float hardsigf(float v) { return fminf(fmaxf(v + 3.0f, 0.0f), 6.0f) * (1.0f / 6.0f); }

/* x / (1 + e^-x) (silu) or 1 / (1 + e^-x) */
static void sigmoid_like(float *x, size_t n, int silu)
{
    size_t i = 0;
#if defined(__SSE2__)
    const __m128 one = _mm_set1_ps(1.0f);
    for (; i + 4 <= n; i += 4) {
        __m128 v = _mm_loadu_ps(x + i);
        __m128 d = _mm_add_ps(one, exp4(_mm_sub_ps(_mm_setzero_ps(), v)));
        _mm_storeu_ps(x + i, _mm_div_ps(silu ? v : one, d));
    }
#endif
    for (; i < n; i++)
        x[i] = (silu ? x[i] : 1.0f) / (1.0f + exp_vec(-x[i]));
}

/* Blocks of 16 with a fixed inner trip count let -O2 vectorise these loops
 * (and keep them branch-free: random signs make a branchy ReLU slow). */
#define BLOCK 16
#define BLOCKED(p, n, expr)                                                                        \
    do {                                                                                           \
        size_t i_ = 0;                                                                             \
        for (; i_ + BLOCK <= (n); i_ += BLOCK)                                                     \
            for (size_t j_ = i_; j_ < i_ + BLOCK; j_++) {                                          \
                float v = (p)[j_];                                                                 \
                (p)[j_] = (expr);                                                                  \
            }                                                                                      \
        for (; i_ < (n); i_++) {                                                                   \
            float v = (p)[i_];                                                                     \
            (p)[i_] = (expr);                                                                      \
        }                                                                                          \
    } while (0)

void tl_activation(int act, float *x, size_t n)
{
    switch (act) {
    case TL_ACT_RELU:
        BLOCKED(x, n, v > 0.0f ? v : 0.0f);
        break;
    case TL_ACT_RELU6:
        BLOCKED(x, n, v < 0.0f ? 0.0f : v > 6.0f ? 6.0f : v);
        break;
    case TL_ACT_SIGMOID:
        sigmoid_like(x, n, 0);
        break;
    case TL_ACT_SILU:
        sigmoid_like(x, n, 1);
        break;
    case TL_ACT_HARDSIGMOID:
        BLOCKED(x, n, hardsigf(v));
        break;
    case TL_ACT_HARDSWISH:
        BLOCKED(x, n, v * hardsigf(v));
        break;
    case TL_ACT_GELU:
        BLOCKED(x, n, 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)));
        break;
    default:
        break;
    }
}

void tl_bias_act_2d(int act, float *x, size_t ld, const float *bias, int rows, size_t cols)
{
    for (int r = 0; r < rows; r++) {
        float *xr = x + (size_t)r * ld;
        if (bias) {
            float b = bias[r];
            BLOCKED(xr, cols, v + b);
        }
        tl_activation(act, xr, cols);
    }
}

/* ReLU and ReLU6 in one pass (the values tl_activation gives, NaN
 * included); a copy and an in-place pass otherwise. Blocks of 16 over
 * restrict pointers: the shape GCC vectorises at -O2. */
void tl_activation_copy(int act, const float *restrict x, float *restrict y, size_t n)
{
    if (act != TL_ACT_RELU && act != TL_ACT_RELU6) {
        memcpy(y, x, n * sizeof(float));
        tl_activation(act, y, n);
        return;
    }
    size_t i = 0;
    if (act == TL_ACT_RELU) {
        for (; i + 16 <= n; i += 16)
            for (size_t k = i; k < i + 16; k++)
                y[k] = x[k] > 0.0f ? x[k] : 0.0f;
        for (; i < n; i++)
            y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        return;
    }
    for (; i + 16 <= n; i += 16)
        for (size_t k = i; k < i + 16; k++)
            y[k] = x[k] < 0.0f ? 0.0f : x[k] > 6.0f ? 6.0f : x[k];
    for (; i < n; i++)
        y[i] = x[i] < 0.0f ? 0.0f : x[i] > 6.0f ? 6.0f : x[i];
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
