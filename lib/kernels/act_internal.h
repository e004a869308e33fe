/* Internal to lib/kernels: the element functions of the activations, in
 * the exact sequence of float operations every SIMD path repeats lane for
 * lane (activation.c, activation_avx2.c, activation_avx512.c), so a value
 * gets the same bits whichever path computes it. No operation may be
 * contracted into a multiply-add (-std=c11 contracts none) unless it is
 * written as one (fmaf: one rounding, the same on every path). */
#ifndef TL_KERNELS_ACT_INTERNAL_H
#define TL_KERNELS_ACT_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels.h"

/* exp(x) within ~2 ulp, branch-free: x = n ln2 + r with |r| <= ln2/2, e^r
 * by its Taylor series to degree 7, 2^n built in the exponent bits. The
 * argument is clamped to [-87, 88] (NaN stays NaN). */
#define TL_EXP_LO (-87.0f)
#define TL_EXP_HI 88.0f
#define TL_EXP_SHIFTER 12582912.0f /* 1.5 * 2^23: adding it rounds to an integer */
#define TL_EXP_LOG2E 1.44269504088896341f
#define TL_EXP_LN2_HI 0.693145751953125f
#define TL_EXP_LN2_LO 1.42860682030941723e-6f
static const float tl_exp_poly[8] = {1.0f / 5040, 1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f};

static inline float tl_exp_f(float x)
{
    x = x < TL_EXP_LO ? TL_EXP_LO : x > TL_EXP_HI ? TL_EXP_HI : x;
    float t = x * TL_EXP_LOG2E + TL_EXP_SHIFTER, n = t - TL_EXP_SHIFTER;
    float r = x - n * TL_EXP_LN2_HI - n * TL_EXP_LN2_LO;
    float p = tl_exp_poly[0];
    for (int k = 1; k < 8; k++)
        p = p * r + tl_exp_poly[k];
    uint32_t ti, bits;
    memcpy(&ti, &t, sizeof ti);
    bits = (ti - 0x4B400000u + 127u) << 23; /* n + bias in the exponent field */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* erfc(z) for z >= 0 with a relative error below 1.2e-7 (Numerical
 * Recipes' Chebyshev fit): t = 1 / (1 + z/2), erfc = t exp(-z^2 + P(t)). */
#define TL_ERFC_NC 10
static const float tl_erfc_poly[TL_ERFC_NC] = {0.17087277f,  -0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f,
                                               -0.18628806f, 0.09678418f,  0.37409196f, 1.00002368f,  -1.26551223f};

/* GELU, x Phi(x) = x (1 + erf(x / sqrt 2)) / 2, with 1 + erf(-z) taken as
 * erfc(z) directly (no cancellation for negative x). */
static inline float tl_gelu_f(float v)
{
    float z = (v < 0.0f ? -v : v) * 0.70710678118654752f;
    float t = 1.0f / (1.0f + 0.5f * z);
    float p = tl_erfc_poly[0];
    for (int k = 1; k < TL_ERFC_NC; k++)
        p = p * t + tl_erfc_poly[k];
    float erfc = t * tl_exp_f(p - z * z);
    return 0.5f * v * (v < 0.0f ? erfc : 2.0f - erfc);
}

/* SiLU's and sigmoid's exp(-v) in fused multiply-adds (16 operations and
 * a division a vector for SiLU, where tl_exp_f's separate products and
 * sums took 27). v is clamped to [-88, 87] (NaN stays NaN), n = round(-v
 * log2e) by the shifter, q = v + n ln2 in two fmas (= -r, |r| <= ln2/2),
 * e^r = P(-q) with P a minimax polynomial of degree 6 for e^r's relative
 * error on [-0.347, 0.347] with P(0) = P'(0) = 1 (3.1e-9 before rounding
 * its coefficients to float, tl_sig_poly holds them for -q, highest
 * degree first), then 2^n. Over every float from -88 up, SiLU is within
 * 2.39 ulp of the exact value and sigmoid within 2.48, as with
 * v / (1 + tl_exp_f(-v)) (most of it is 1 + e's rounding), and all but
 * 0.08 % of them keep that form's bits (test_silu_range). */
#if defined(__GNUC__) /* into activation.c's FMA-target scalar loop, whose fmaf is then one instruction */
#define TL_SIG_INLINE static inline __attribute__((always_inline))
#else
#define TL_SIG_INLINE static inline
#endif
#define TL_SIG_LO (-88.0f)
#define TL_SIG_HI 87.0f
static const float tl_sig_poly[7] = {1.381443464e-03f,  -8.368796669e-03f, 4.166839644e-02f, -1.666651964e-01f,
                                     4.999999404e-01f, -1.0f,             1.0f};

/* P(-q) for c = clamp(v); *t gets the shifter's sum (n in its low bits) */
TL_SIG_INLINE float tl_sig_exp_poly(float v, float *t)
{
    float c = v < TL_SIG_LO ? TL_SIG_LO : v > TL_SIG_HI ? TL_SIG_HI : v;
    *t = fmaf(c, -TL_EXP_LOG2E, TL_EXP_SHIFTER);
    float n = *t - TL_EXP_SHIFTER;
    float q = fmaf(n, TL_EXP_LN2_LO, fmaf(n, TL_EXP_LN2_HI, c));
    float p = tl_sig_poly[0];
    for (int k = 1; k < 7; k++)
        p = fmaf(p, q, tl_sig_poly[k]);
    return p;
}

/* v / (1 + e), e = p 2^n by adding n << 23 (t's bits << 23, mod 2^32) to
 * p's bits: p in [0.7, 1.42] and n in [-126, 127] keep the exponent field
 * in [0, 254]; at 0 (n = -126, p < 1) e is not p 2^n but below 2^-126
 * either way, and 1 + e is 1. A NaN v gives NaN whatever e is. */
TL_SIG_INLINE float tl_silu_f(float v)
{
    float t, p = tl_sig_exp_poly(v, &t);
    uint32_t pi, ti;
    memcpy(&pi, &p, sizeof pi);
    memcpy(&ti, &t, sizeof ti);
    pi += ti << 23;
    float e;
    memcpy(&e, &pi, sizeof e);
    return v / (1.0f + e);
}

/* 1 / (1 + e), e = p 2^n as a product (2^n's bits (n + 127) << 23 =
 * t's bits << 23 plus 127 << 23), so a NaN v's NaN survives into e */
TL_SIG_INLINE float tl_sigmoid_f(float v)
{
    float t, p = tl_sig_exp_poly(v, &t);
    uint32_t ti;
    memcpy(&ti, &t, sizeof ti);
    ti = (ti << 23) + 0x3F800000u;
    float scale;
    memcpy(&scale, &ti, sizeof scale);
    return 1.0f / (1.0f + p * scale);
}
/* relu6(v + 3) / 6; NaN gives 0 (the fmaxf convention) */
static inline float tl_hardsig_f(float v)
{
    float u = v + 3.0f;
    u = u > 0.0f ? u : 0.0f;
    u = u < 6.0f ? u : 6.0f;
    return u * (1.0f / 6.0f);
}

static inline float tl_act_f(int act, float v)
{
    switch (act) {
    case TL_ACT_RELU: return v > 0.0f ? v : 0.0f;
    case TL_ACT_RELU6: return v < 0.0f ? 0.0f : v > 6.0f ? 6.0f : v;
    case TL_ACT_SIGMOID: return tl_sigmoid_f(v);
    case TL_ACT_SILU: return tl_silu_f(v);
    case TL_ACT_HARDSIGMOID: return tl_hardsig_f(v);
    case TL_ACT_HARDSWISH: return v * tl_hardsig_f(v);
    case TL_ACT_GELU: return tl_gelu_f(v);
    default: return v;
    }
}

/* y (rows x cols, row stride ldy) = act(x + bias[row]) (bias may be NULL)
 * for x rows x cols with row stride ldx; y may equal x. One per path. */
typedef void (*tl_act_rows_fn)(int act, const float *x, size_t ldx, float *y, size_t ldy, const float *bias,
                               int rows, size_t cols);
void tl_act_rows_scalar(int act, const float *x, size_t ldx, float *y, size_t ldy, const float *bias, int rows,
                        size_t cols);
void tl_act_rows_avx2(int act, const float *x, size_t ldx, float *y, size_t ldy, const float *bias, int rows,
                      size_t cols);
void tl_act_rows_avx512(int act, const float *x, size_t ldx, float *y, size_t ldy, const float *bias, int rows,
                        size_t cols);
/* The path's function for a tl_simd_level() value. */
tl_act_rows_fn tl_act_rows_for(int level);

/* Softmax of each of rows rows of n floats (row stride n), in place, for
 * attention: e = tl_exp_f(x - max) element by element, their sum in double
 * in 16 running sums (element i into sum i % 16, folded pairwise: 8, 4, 2,
 * 1 apart), then e * (float)(1 / sum). Every path gives the same bits. */
typedef void (*tl_softmax_rows_fn)(float *x, int rows, int n);
void tl_softmax_rows_scalar(float *x, int rows, int n);
void tl_softmax_rows_avx2(float *x, int rows, int n);
void tl_softmax_rows_avx512(float *x, int rows, int n);
tl_softmax_rows_fn tl_softmax_rows_for(int level);

#endif
