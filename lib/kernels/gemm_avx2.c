/* AVX2+FMA path: 6 x 16 GEMM micro-kernel (12 ymm accumulators, 2 for the
 * B row, 1 for the broadcast A value, out of 16 registers). */
#include "simd.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TL_AVX2 __attribute__((target("avx2,fma")))
#define MR 6
#define NR 16

#define ROW_FMA(i)                                                                                 \
    do {                                                                                           \
        __m256 a_ = _mm256_broadcast_ss(a + (i));                                                  \
        c##i##0 = _mm256_fmadd_ps(a_, b0, c##i##0);                                                \
        c##i##1 = _mm256_fmadd_ps(a_, b1, c##i##1);                                                \
    } while (0)

#define ROW_STORE(i)                                                                               \
    do {                                                                                           \
        float *ci_ = c + (size_t)(i) * ldc;                                                        \
        __m256 r0_ = _mm256_mul_ps(va, c##i##0), r1_ = _mm256_mul_ps(va, c##i##1);                 \
        if (beta != 0.0f) {                                                                        \
            r0_ = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci_), r0_);                                  \
            r1_ = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci_ + 8), r1_);                              \
        }                                                                                          \
        _mm256_storeu_ps(ci_, r0_);                                                                \
        _mm256_storeu_ps(ci_ + 8, r1_);                                                            \
    } while (0)

/* One k step's two B vectors and the prefetches every 16-wide kernel
 * makes. A (the weights) comes from memory once per image; 64 steps ahead
 * runs into the next sliver, which is contiguous. */
#define LOAD_B_STEP()                                                                              \
    __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);                                     \
    _mm_prefetch((const char *)(b + 8 * NR), _MM_HINT_T0);                                         \
    _mm_prefetch((const char *)(a + 64 * MR), _MM_HINT_T0)

#define DECL(i) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps()

TL_AVX2 static void ukernel_avx2(int k, const float *a, const float *b, float *c, int ldc,
                                 float alpha, float beta)
{
    DECL(0); DECL(1); DECL(2); DECL(3); DECL(4); DECL(5);
    for (int p = 0; p < k; p++) {
        LOAD_B_STEP();
        ROW_FMA(0); ROW_FMA(1); ROW_FMA(2); ROW_FMA(3); ROW_FMA(4); ROW_FMA(5);
        a += MR;
        b += NR;
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    ROW_STORE(0); ROW_STORE(1); ROW_STORE(2); ROW_STORE(3); ROW_STORE(4); ROW_STORE(5);
}

/* The first 4 rows of the 6 x 16 kernel, each element's sum as there (A
 * keeps its 6-value steps): 8 chains still cover the multiply-add latency. */
TL_AVX2 static void ukernel_r4_avx2(int k, const float *a, const float *b, float *c, int ldc, float alpha,
                                    float beta)
{
    DECL(0); DECL(1); DECL(2); DECL(3);
    for (int p = 0; p < k; p++) {
        LOAD_B_STEP();
        ROW_FMA(0); ROW_FMA(1); ROW_FMA(2); ROW_FMA(3);
        a += MR;
        b += NR;
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    ROW_STORE(0); ROW_STORE(1); ROW_STORE(2); ROW_STORE(3);
}

/* bias, activation (relu / relu6 as tl_act_rows_avx2 computes them) and
 * residual on one vector of a finished row */
TL_AVX2 static inline __attribute__((always_inline)) __m256 epilogue8(__m256 v, const float *bias, int i, int act,
                                                                      const float *r)
{
    const __m256 zero = _mm256_setzero_ps();
    if (bias)
        v = _mm256_add_ps(v, _mm256_set1_ps(bias[i]));
    if (act == TL_ACT_RELU)
        v = _mm256_max_ps(v, zero);
    else if (act == TL_ACT_RELU6)
        v = _mm256_min_ps(_mm256_set1_ps(6.0f), _mm256_max_ps(zero, v));
    if (r)
        v = _mm256_add_ps(v, _mm256_loadu_ps(r));
    return v;
}

#define ROW_STORE_EP(i)                                                                            \
    do {                                                                                           \
        float *ci_ = c + (size_t)(i) * ldc;                                                        \
        const float *ri_ = res ? res + (size_t)(i) * ldc : NULL;                                   \
        __m256 r0_ = _mm256_mul_ps(va, c##i##0), r1_ = _mm256_mul_ps(va, c##i##1);                 \
        if (beta != 0.0f) {                                                                        \
            r0_ = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci_), r0_);                                  \
            r1_ = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci_ + 8), r1_);                              \
        }                                                                                          \
        _mm256_storeu_ps(ci_, epilogue8(r0_, bias, i, act, ri_));                                  \
        _mm256_storeu_ps(ci_ + 8, epilogue8(r1_, bias, i, act, ri_ ? ri_ + 8 : NULL));             \
    } while (0)

/* The 6 x 16 kernel with the last K block's epilogue in its stores */
TL_AVX2 static void ukernel_ep_avx2(int k, const float *a, const float *b, float *c, int ldc, float beta,
                                    const float *bias, int act, const float *res)
{
    DECL(0); DECL(1); DECL(2); DECL(3); DECL(4); DECL(5);
    for (int p = 0; p < k; p++) {
        LOAD_B_STEP();
        ROW_FMA(0); ROW_FMA(1); ROW_FMA(2); ROW_FMA(3); ROW_FMA(4); ROW_FMA(5);
        a += MR;
        b += NR;
    }
    __m256 va = _mm256_set1_ps(1.0f), vb = _mm256_set1_ps(beta);
    ROW_STORE_EP(0); ROW_STORE_EP(1); ROW_STORE_EP(2); ROW_STORE_EP(3); ROW_STORE_EP(4); ROW_STORE_EP(5);
}

#define ROW_FMA8(i) c##i##0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + (i)), b0, c##i##0)
#define ROW_STORE8(i)                                                                              \
    do {                                                                                           \
        float *ci_ = c + (size_t)(i) * ldc;                                                        \
        __m256 r0_ = _mm256_mul_ps(va, c##i##0);                                                   \
        if (beta != 0.0f)                                                                          \
            r0_ = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci_), r0_);                                  \
        _mm256_storeu_ps(ci_, r0_);                                                                \
    } while (0)
#define DECL8(i) __m256 c##i##0 = _mm256_setzero_ps()

/* 6 x 8, the same sums in the same order per element as the 6 x 16
 * kernel's: Winograd on a lone 7x7 map has 4 tiles, a quarter of 16 lanes.
 * Its 6 chains keep about 3/4 of the multiply-add units busy. */
TL_AVX2 static void ukernel8_avx2(int k, const float *a, const float *b, float *c, int ldc, float alpha, float beta)
{
    DECL8(0); DECL8(1); DECL8(2); DECL8(3); DECL8(4); DECL8(5);
    for (int p = 0; p < k; p++) {
        __m256 b0 = _mm256_load_ps(b);
        _mm_prefetch((const char *)(a + 64 * MR), _MM_HINT_T0);
        ROW_FMA8(0); ROW_FMA8(1); ROW_FMA8(2); ROW_FMA8(3); ROW_FMA8(4); ROW_FMA8(5);
        a += MR;
        b += 8;
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    ROW_STORE8(0); ROW_STORE8(1); ROW_STORE8(2); ROW_STORE8(3); ROW_STORE8(4); ROW_STORE8(5);
}

/* lanes i of one fused multiply-add chain: the micro-kernel's row i, column 0 */
TL_AVX2 static void gemv_avx2(int k, const float *a, const float *b, int ldb, float *y)
{
    const __m256i m = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0); /* MR = 6 of 8 lanes */
    __m256 acc = _mm256_setzero_ps();
    for (int p = 0; p < k; p++, a += MR)
        acc = _mm256_fmadd_ps(_mm256_maskload_ps(a, m), _mm256_broadcast_ss(b + (size_t)p * ldb), acc);
    _mm256_maskstore_ps(y, m, acc);
}

TL_AVX2 static void gemv4_avx2(int k, const float *a, size_t sa, const float *b, int ldb, float *y)
{
    const __m256i m = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (int p = 0; p < k; p++, a += MR) {
        const __m256 bp = _mm256_broadcast_ss(b + (size_t)p * ldb);
        acc0 = _mm256_fmadd_ps(_mm256_maskload_ps(a, m), bp, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + sa, m), bp, acc1);
        acc2 = _mm256_fmadd_ps(_mm256_maskload_ps(a + 2 * sa, m), bp, acc2);
        acc3 = _mm256_fmadd_ps(_mm256_maskload_ps(a + 3 * sa, m), bp, acc3);
    }
    _mm256_maskstore_ps(y, m, acc0);
    _mm256_maskstore_ps(y + MR, m, acc1);
    _mm256_maskstore_ps(y + 2 * MR, m, acc2);
    _mm256_maskstore_ps(y + 3 * MR, m, acc3);
}

void tl_dw_plane_avx2(const tl_conv_geom *g, const float *x, const float *w, float bias, int act,
                      float *y);
void tl_dw_group_avx2(const tl_conv_geom *g, const float *x, int nc, const float *w, const float *bias,
                        int act, float *y, float *means, float *scratch);

const tl_simd_impl tl_simd_avx2 = {
    .name = "avx2",
    .level = TL_SIMD_AVX2,
    .mr = MR,
    .nr = NR,
    .kc = 256,
    .nc = 1024,
    .ukernel = ukernel_avx2,
    .ukernel8 = ukernel8_avx2,
    .ukernel_r4 = ukernel_r4_avx2,
    .ukernel_ep = ukernel_ep_avx2,
    .gemv = gemv_avx2,
    .gemv4 = gemv4_avx2,
    .dw_plane = tl_dw_plane_avx2,
    .dw_lanes = 8,
    .dw_group = tl_dw_group_avx2,
};

#else
const tl_simd_impl tl_simd_avx2 = {
    .name = "avx2",
    .level = TL_SIMD_AVX2, .mr = 4, .nr = 8, .kc = 256, .nc = 512,
};
#endif
