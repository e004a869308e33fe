/* AVX-512 column sums for gemv.c: each column as ukernel_avx512 sums it
 * (from zero, one fused multiply-add a step in k order; then added to the
 * running value). Four slivers (8 accumulators) at once hide the FMA
 * latency that a single row's two chains would expose. */
#include "gemv_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TL_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))
#define NR 32

/* acc (16 lanes at column col of y) into y, columns below lim only */
TL_AVX512 static inline void put(float *y, int col, int lim, __m512 acc, int add)
{
    int w = lim - col;
    if (w <= 0)
        return;
    __mmask16 m = w >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << w) - 1);
    if (add)
        acc = _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + col), acc);
    _mm512_mask_storeu_ps(y + col, m, acc);
}

TL_AVX512 void tl_gemv_block_avx512(int kc, const float *x, const float *blk, int jr0, int jr1, float *y, int add)
{
    int jr = jr0;
    for (; jr + 3 * NR < jr1; jr += 4 * NR) {
        const float *s0 = blk + (size_t)jr * kc, *s1 = s0 + (size_t)NR * kc, *s2 = s1 + (size_t)NR * kc,
                    *s3 = s2 + (size_t)NR * kc;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
        for (int p = 0; p < kc; p++) {
            __m512 xv = _mm512_set1_ps(x[p]);
            size_t o = (size_t)p * NR;
            a0 = _mm512_fmadd_ps(xv, _mm512_load_ps(s0 + o), a0);
            a1 = _mm512_fmadd_ps(xv, _mm512_load_ps(s0 + o + 16), a1);
            b0 = _mm512_fmadd_ps(xv, _mm512_load_ps(s1 + o), b0);
            b1 = _mm512_fmadd_ps(xv, _mm512_load_ps(s1 + o + 16), b1);
            c0 = _mm512_fmadd_ps(xv, _mm512_load_ps(s2 + o), c0);
            c1 = _mm512_fmadd_ps(xv, _mm512_load_ps(s2 + o + 16), c1);
            d0 = _mm512_fmadd_ps(xv, _mm512_load_ps(s3 + o), d0);
            d1 = _mm512_fmadd_ps(xv, _mm512_load_ps(s3 + o + 16), d1);
        }
        put(y, jr, jr1, a0, add);
        put(y, jr + 16, jr1, a1, add);
        put(y, jr + 32, jr1, b0, add);
        put(y, jr + 48, jr1, b1, add);
        put(y, jr + 64, jr1, c0, add);
        put(y, jr + 80, jr1, c1, add);
        put(y, jr + 96, jr1, d0, add);
        put(y, jr + 112, jr1, d1, add);
    }
    for (; jr < jr1; jr += NR) {
        const float *s = blk + (size_t)jr * kc;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0;
        for (int p = 0; p < kc; p++) {
            __m512 xv = _mm512_set1_ps(x[p]);
            a0 = _mm512_fmadd_ps(xv, _mm512_load_ps(s + (size_t)p * NR), a0);
            a1 = _mm512_fmadd_ps(xv, _mm512_load_ps(s + (size_t)p * NR + 16), a1);
        }
        put(y, jr, jr1, a0, add);
        put(y, jr + 16, jr1, a1, add);
    }
}

#else
void tl_gemv_block_avx512(int kc, const float *x, const float *blk, int jr0, int jr1, float *y, int add) {}
#endif
