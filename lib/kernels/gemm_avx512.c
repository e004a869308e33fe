/* AVX-512 path: 12 x 32 GEMM micro-kernel (24 zmm accumulators, 2 for the
 * B row, 1 for the broadcast A value, out of 32 registers). */
#include "simd.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TL_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))
#define MR 12
#define NR 32

#define ROW_FMA(i)                                                                                 \
    do {                                                                                           \
        __m512 a_ = _mm512_set1_ps(a[i]);                                                          \
        c##i##0 = _mm512_fmadd_ps(a_, b0, c##i##0);                                                \
        c##i##1 = _mm512_fmadd_ps(a_, b1, c##i##1);                                                \
    } while (0)

#define ROW_STORE(i)                                                                               \
    do {                                                                                           \
        float *ci_ = c + (size_t)(i) * ldc;                                                        \
        __m512 r0_ = _mm512_mul_ps(va, c##i##0), r1_ = _mm512_mul_ps(va, c##i##1);                 \
        if (beta != 0.0f) {                                                                        \
            r0_ = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci_), r0_);                                  \
            r1_ = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci_ + 16), r1_);                             \
        }                                                                                          \
        _mm512_storeu_ps(ci_, r0_);                                                                \
        _mm512_storeu_ps(ci_ + 16, r1_);                                                           \
    } while (0)

/* One k step's two B vectors and the prefetches every 32-wide kernel
 * makes. A (the weights) comes from memory once per image; 64 steps ahead
 * runs into the next sliver, which is contiguous. */
#define LOAD_B_STEP()                                                                              \
    __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);                                    \
    _mm_prefetch((const char *)(b + 8 * NR), _MM_HINT_T0);                                         \
    _mm_prefetch((const char *)(b + 8 * NR + 16), _MM_HINT_T0);                                    \
    _mm_prefetch((const char *)(a + 64 * MR), _MM_HINT_T0)

#define DECL(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps()

TL_AVX512 static void ukernel_avx512(int k, const float *a, const float *b, float *c, int ldc,
                                     float alpha, float beta)
{
    DECL(0); DECL(1); DECL(2); DECL(3); DECL(4); DECL(5);
    DECL(6); DECL(7); DECL(8); DECL(9); DECL(10); DECL(11);
    for (int p = 0; p < k; p++) {
        LOAD_B_STEP();
        ROW_FMA(0); ROW_FMA(1); ROW_FMA(2); ROW_FMA(3); ROW_FMA(4); ROW_FMA(5);
        ROW_FMA(6); ROW_FMA(7); ROW_FMA(8); ROW_FMA(9); ROW_FMA(10); ROW_FMA(11);
        a += MR;
        b += NR;
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    ROW_STORE(0); ROW_STORE(1); ROW_STORE(2); ROW_STORE(3); ROW_STORE(4); ROW_STORE(5);
    ROW_STORE(6); ROW_STORE(7); ROW_STORE(8); ROW_STORE(9); ROW_STORE(10); ROW_STORE(11);
}

/* The first 8 / 4 rows of the 12 x 32 kernel, each element's sum as there
 * (A keeps its 12-value steps: the rows past m are the packing's zeros). */
TL_AVX512 static void ukernel_r8_avx512(int k, const float *a, const float *b, float *c, int ldc, float alpha,
                                        float beta)
{
    DECL(0); DECL(1); DECL(2); DECL(3); DECL(4); DECL(5); DECL(6); DECL(7);
    for (int p = 0; p < k; p++) {
        LOAD_B_STEP();
        ROW_FMA(0); ROW_FMA(1); ROW_FMA(2); ROW_FMA(3); ROW_FMA(4); ROW_FMA(5); ROW_FMA(6); ROW_FMA(7);
        a += MR;
        b += NR;
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    ROW_STORE(0); ROW_STORE(1); ROW_STORE(2); ROW_STORE(3); ROW_STORE(4); ROW_STORE(5); ROW_STORE(6); ROW_STORE(7);
}

TL_AVX512 static void ukernel_r4_avx512(int k, const float *a, const float *b, float *c, int ldc, float alpha,
                                        float beta)
{
    DECL(0); DECL(1); DECL(2); DECL(3);
    for (int p = 0; p < k; p++) {
        LOAD_B_STEP();
        ROW_FMA(0); ROW_FMA(1); ROW_FMA(2); ROW_FMA(3);
        a += MR;
        b += NR;
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    ROW_STORE(0); ROW_STORE(1); ROW_STORE(2); ROW_STORE(3);
}

/* bias, activation (relu / relu6 as tl_act_rows_avx512 computes them) and
 * residual on one vector of a finished row */
TL_AVX512 static inline __attribute__((always_inline)) __m512 epilogue16(__m512 v, const float *bias, int i, int act,
                                                                          const float *r)
{
    const __m512 zero = _mm512_setzero_ps();
    if (bias)
        v = _mm512_add_ps(v, _mm512_set1_ps(bias[i]));
    if (act == TL_ACT_RELU)
        v = _mm512_max_ps(v, zero);
    else if (act == TL_ACT_RELU6)
        v = _mm512_min_ps(_mm512_set1_ps(6.0f), _mm512_max_ps(zero, v));
    if (r)
        v = _mm512_add_ps(v, _mm512_loadu_ps(r));
    return v;
}

#define ROW_STORE_EP(i)                                                                            \
    do {                                                                                           \
        float *ci_ = c + (size_t)(i) * ldc;                                                        \
        const float *ri_ = res ? res + (size_t)(i) * ldc : NULL;                                   \
        __m512 r0_ = _mm512_mul_ps(va, c##i##0), r1_ = _mm512_mul_ps(va, c##i##1);                 \
        if (beta != 0.0f) {                                                                        \
            r0_ = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci_), r0_);                                  \
            r1_ = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci_ + 16), r1_);                             \
        }                                                                                          \
        _mm512_storeu_ps(ci_, epilogue16(r0_, bias, i, act, ri_));                                 \
        _mm512_storeu_ps(ci_ + 16, epilogue16(r1_, bias, i, act, ri_ ? ri_ + 16 : NULL));          \
    } while (0)

/* The 12 x 32 kernel with the last K block's epilogue in its stores: C is
 * not read and written again by a separate bias/activation pass */
TL_AVX512 static void ukernel_ep_avx512(int k, const float *a, const float *b, float *c, int ldc, float beta,
                                        const float *bias, int act, const float *res)
{
    DECL(0); DECL(1); DECL(2); DECL(3); DECL(4); DECL(5);
    DECL(6); DECL(7); DECL(8); DECL(9); DECL(10); DECL(11);
    for (int p = 0; p < k; p++) {
        LOAD_B_STEP();
        ROW_FMA(0); ROW_FMA(1); ROW_FMA(2); ROW_FMA(3); ROW_FMA(4); ROW_FMA(5);
        ROW_FMA(6); ROW_FMA(7); ROW_FMA(8); ROW_FMA(9); ROW_FMA(10); ROW_FMA(11);
        a += MR;
        b += NR;
    }
    __m512 va = _mm512_set1_ps(1.0f), vb = _mm512_set1_ps(beta);
    ROW_STORE_EP(0); ROW_STORE_EP(1); ROW_STORE_EP(2); ROW_STORE_EP(3); ROW_STORE_EP(4); ROW_STORE_EP(5);
    ROW_STORE_EP(6); ROW_STORE_EP(7); ROW_STORE_EP(8); ROW_STORE_EP(9); ROW_STORE_EP(10); ROW_STORE_EP(11);
}

#define ROW_FMA16(i) c##i##0 = _mm512_fmadd_ps(_mm512_set1_ps(a[i]), b0, c##i##0)
#define ROW_STORE16(i)                                                                             \
    do {                                                                                           \
        float *ci_ = c + (size_t)(i) * ldc;                                                        \
        __m512 r0_ = _mm512_mul_ps(va, c##i##0);                                                   \
        if (beta != 0.0f)                                                                          \
            r0_ = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci_), r0_);                                  \
        _mm512_storeu_ps(ci_, r0_);                                                                \
    } while (0)
#define DECL16(i) __m512 c##i##0 = _mm512_setzero_ps()

/* 12 x 16: one vector a row (12 accumulators, enough to cover the FMA
 * latency), the same sums in the same order per element as the 12 x 32
 * kernel's. Winograd's 14x14 maps have 16 tiles: half of a 32-lane block
 * would be padding. */
TL_AVX512 static void ukernel16_avx512(int k, const float *a, const float *b, float *c, int ldc, float alpha,
                                       float beta)
{
    DECL16(0); DECL16(1); DECL16(2); DECL16(3); DECL16(4); DECL16(5);
    DECL16(6); DECL16(7); DECL16(8); DECL16(9); DECL16(10); DECL16(11);
    for (int p = 0; p < k; p++) {
        __m512 b0 = _mm512_load_ps(b);
        _mm_prefetch((const char *)(b + 8 * 16), _MM_HINT_T0);
        _mm_prefetch((const char *)(a + 64 * MR), _MM_HINT_T0);
        ROW_FMA16(0); ROW_FMA16(1); ROW_FMA16(2); ROW_FMA16(3); ROW_FMA16(4); ROW_FMA16(5);
        ROW_FMA16(6); ROW_FMA16(7); ROW_FMA16(8); ROW_FMA16(9); ROW_FMA16(10); ROW_FMA16(11);
        a += MR;
        b += 16;
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    ROW_STORE16(0); ROW_STORE16(1); ROW_STORE16(2); ROW_STORE16(3); ROW_STORE16(4); ROW_STORE16(5);
    ROW_STORE16(6); ROW_STORE16(7); ROW_STORE16(8); ROW_STORE16(9); ROW_STORE16(10); ROW_STORE16(11);
}

#define ROW_FMA8(i) c##i##0 = _mm256_fmadd_ps(_mm256_set1_ps(a[i]), b0, c##i##0)
#define ROW_STORE8(i)                                                                              \
    do {                                                                                           \
        float *ci_ = c + (size_t)(i) * ldc;                                                        \
        __m256 r0_ = _mm256_mul_ps(va, c##i##0);                                                   \
        if (beta != 0.0f)                                                                          \
            r0_ = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci_), r0_);                                  \
        _mm256_storeu_ps(ci_, r0_);                                                                \
    } while (0)
#define DECL8(i) __m256 c##i##0 = _mm256_setzero_ps()

/* 12 x 8 in ymm registers, the same sums in the same order per element as
 * the 12 x 32 kernel's: Winograd on a lone 7x7 map has 4 tiles, which fill
 * half of 8 lanes but a quarter of 16. On 256-bit units (Zen 4) a ymm
 * multiply-add issues twice as often as a zmm one, so the lanes cost
 * about the same. */
TL_AVX512 static void ukernel8_avx512(int k, const float *a, const float *b, float *c, int ldc, float alpha,
                                      float beta)
{
    DECL8(0); DECL8(1); DECL8(2); DECL8(3); DECL8(4); DECL8(5);
    DECL8(6); DECL8(7); DECL8(8); DECL8(9); DECL8(10); DECL8(11);
    for (int p = 0; p < k; p++) {
        __m256 b0 = _mm256_load_ps(b);
        _mm_prefetch((const char *)(a + 64 * MR), _MM_HINT_T0);
        ROW_FMA8(0); ROW_FMA8(1); ROW_FMA8(2); ROW_FMA8(3); ROW_FMA8(4); ROW_FMA8(5);
        ROW_FMA8(6); ROW_FMA8(7); ROW_FMA8(8); ROW_FMA8(9); ROW_FMA8(10); ROW_FMA8(11);
        a += MR;
        b += 8;
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    ROW_STORE8(0); ROW_STORE8(1); ROW_STORE8(2); ROW_STORE8(3); ROW_STORE8(4); ROW_STORE8(5);
    ROW_STORE8(6); ROW_STORE8(7); ROW_STORE8(8); ROW_STORE8(9); ROW_STORE8(10); ROW_STORE8(11);
}

/* lanes i of one fused multiply-add chain: the micro-kernel's row i, column 0 */
TL_AVX512 static void gemv_avx512(int k, const float *a, const float *b, int ldb, float *y)
{
    const __mmask16 m = (1u << MR) - 1;
    __m512 acc = _mm512_setzero_ps();
    for (int p = 0; p < k; p++, a += MR)
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a), _mm512_set1_ps(b[(size_t)p * ldb]), acc);
    _mm512_mask_storeu_ps(y, m, acc);
}

TL_AVX512 static void gemv4_avx512(int k, const float *a, size_t sa, const float *b, int ldb, float *y)
{
    const __mmask16 m = (1u << MR) - 1;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (int p = 0; p < k; p++, a += MR) {
        const __m512 bp = _mm512_set1_ps(b[(size_t)p * ldb]);
        acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a), bp, acc0);
        acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + sa), bp, acc1);
        acc2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + 2 * sa), bp, acc2);
        acc3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + 3 * sa), bp, acc3);
    }
    _mm512_mask_storeu_ps(y, m, acc0);
    _mm512_mask_storeu_ps(y + MR, m, acc1);
    _mm512_mask_storeu_ps(y + 2 * MR, m, acc2);
    _mm512_mask_storeu_ps(y + 3 * MR, m, acc3);
}

void tl_dw_plane_avx512(const tl_conv_geom *g, const float *x, const float *w, float bias, int act,
                        float *y);
void tl_dw_group_avx512(const tl_conv_geom *g, const float *x, int nc, const float *w, const float *bias,
                        int act, float *y, float *means, float *scratch);

const tl_simd_impl tl_simd_avx512 = {
    .name = "avx512",
    .level = TL_SIMD_AVX512,
    .mr = MR,
    .nr = NR,
    .kc = 384,
    .nc = 640,
    .ukernel = ukernel_avx512,
    .ukernel16 = ukernel16_avx512,
    .ukernel8 = ukernel8_avx512,
    .ukernel_r4 = ukernel_r4_avx512,
    .ukernel_r8 = ukernel_r8_avx512,
    .ukernel_ep = ukernel_ep_avx512,
    .gemv = gemv_avx512,
    .gemv4 = gemv4_avx512,
    .dw_plane = tl_dw_plane_avx512,
    .dw_lanes = 16,
    .dw_group = tl_dw_group_avx512,
};

#else /* not x86-64: never selected, since the CPU check fails */
const tl_simd_impl tl_simd_avx512 = {
    .name = "avx512",
    .level = TL_SIMD_AVX512, .mr = 4, .nr = 8, .kc = 256, .nc = 512,
};
#endif
