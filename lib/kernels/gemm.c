/* SGEMM driver: Goto/BLIS-style blocking and packing around a register-
 * blocked micro-kernel from the workspace's SIMD path.
 *
 * C is row-major and the micro-kernel vectorises along N, so the roles of
 * BLIS's A and B swap: a packed K-block of B (kc x nc) stays in L2 while a
 * packed mr x kc sliver of A stays in L1 and sweeps across it. Edge slivers
 * are zero-padded when packed; partial tiles go through a small buffer. */
#include "simd.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Rows r..r+3 of A (from row pointer src, stride lda), columns 0..k, into
 * the sliver's lanes r..r+3 by 4 x 4 transposes: each float scalar-stored
 * on its own, this pack of the untransposed A (the weight gradient's
 * im2col tile) cost a third as much as the micro-kernel. Returns the
 * columns done (a multiple of 4). SSE2 is part of x86-64. */
int tl_pack_a_rows4(const float *src, int lda, int k, int mr, float *dst)
{
    int p = 0;
#if defined(__SSE2__)
    const float *s0 = src, *s1 = src + lda, *s2 = src + 2 * (size_t)lda, *s3 = src + 3 * (size_t)lda;
    for (; p + 4 <= k; p += 4) {
        __m128 a = _mm_loadu_ps(s0 + p), b = _mm_loadu_ps(s1 + p), c = _mm_loadu_ps(s2 + p), d = _mm_loadu_ps(s3 + p);
        _MM_TRANSPOSE4_PS(a, b, c, d);
        _mm_storeu_ps(dst + (size_t)p * mr, a);
        _mm_storeu_ps(dst + (size_t)(p + 1) * mr, b);
        _mm_storeu_ps(dst + (size_t)(p + 2) * mr, c);
        _mm_storeu_ps(dst + (size_t)(p + 3) * mr, d);
    }
#else
    (void)src, (void)lda, (void)k, (void)mr, (void)dst;
#endif
    return p;
}

/* dst: k steps of mr values: rows i0..i0+m of op(A), columns p0..p0+k. */
static void pack_a(int transA, const float *A, int lda, int i0, int m, int p0, int k, int mr,
                   float *dst)
{
    if (m < mr)
        memset(dst, 0, sizeof(float) * (size_t)mr * k);
    if (!transA) {
        int r = 0;
        for (; r + 4 <= m; r += 4) {
            const float *src = A + (size_t)(i0 + r) * lda + p0;
            for (int p = tl_pack_a_rows4(src, lda, k, mr, dst + r); p < k; p++)
                for (int q = 0; q < 4; q++)
                    dst[(size_t)p * mr + r + q] = src[(size_t)q * lda + p];
        }
        for (; r < m; r++) {
            const float *src = A + (size_t)(i0 + r) * lda + p0;
            for (int p = 0; p < k; p++)
                dst[(size_t)p * mr + r] = src[p];
        }
    } else {
        for (int p = 0; p < k; p++) {
            const float *src = A + (size_t)(p0 + p) * lda + i0;
            float *d = dst + (size_t)p * mr;
            for (int r = 0; r < m; r++)
                d[r] = src[r];
        }
    }
}

/* dst: ceil(n / nr) slivers, each k steps of nr values from op(B). */
static void pack_b(int transB, const float *B, int ldb, int p0, int k, int j0, int n, int nr,
                   float *dst)
{
    for (int j = 0; j < n; j += nr) {
        int w = n - j < nr ? n - j : nr;
        float *s = dst + (size_t)j * k;
        if (!transB) {
            for (int p = 0; p < k; p++) {
                const float *src = B + (size_t)(p0 + p) * ldb + j0 + j;
                float *d = s + (size_t)p * nr;
                memcpy(d, src, sizeof(float) * w);
                for (int c = w; c < nr; c++)
                    d[c] = 0.0f;
            }
        } else {
            if (w < nr)
                memset(s, 0, sizeof(float) * (size_t)nr * k);
            for (int c = 0; c < w; c++) {
                const float *src = B + (size_t)(j0 + j + c) * ldb + p0;
                for (int p = 0; p < k; p++)
                    s[(size_t)p * nr + c] = src[p];
            }
        }
    }
}

static void scale_c(int M, int N, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f)
            memset(c, 0, sizeof(float) * N);
        else if (beta != 1.0f)
            for (int j = 0; j < N; j++)
                c[j] *= beta;
    }
}

void tl_sgemm(tl_kws *ws, int transA, int transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    const tl_simd_impl *im = ws->impl;
    const int mr = im->mr, nr = im->nr, KC = im->kc, NC = im->nc;
    float *pa = ws->pack_a, *pb = ws->pack_b, *tile = ws->tile;

    for (int jc = 0; jc < N; jc += NC) {
        int nc = N - jc < NC ? N - jc : NC;
        for (int pc = 0; pc < K; pc += KC) {
            int kc = K - pc < KC ? K - pc : KC;
            /* later K-blocks accumulate onto what the first one wrote */
            float b_eff = pc == 0 ? beta : 1.0f;
            pack_b(transB, B, ldb, pc, kc, jc, nc, nr, pb);
            for (int ir = 0; ir < M; ir += mr) {
                int m = M - ir < mr ? M - ir : mr;
                pack_a(transA, A, lda, ir, m, pc, kc, mr, pa);
                for (int jr = 0; jr < nc; jr += nr) {
                    int n = nc - jr < nr ? nc - jr : nr;
                    const float *bs = pb + (size_t)jr * kc;
                    float *c = C + (size_t)ir * ldc + jc + jr;
                    if (m == mr && n == nr) {
                        im->ukernel(kc, pa, bs, c, ldc, alpha, b_eff);
                        continue;
                    }
                    im->ukernel(kc, pa, bs, tile, nr, alpha, 0.0f);
                    for (int i = 0; i < m; i++) {
                        float *ci = c + (size_t)i * ldc;
                        const float *t = tile + (size_t)i * nr;
                        if (b_eff == 0.0f)
                            for (int j = 0; j < n; j++)
                                ci[j] = t[j];
                        else
                            for (int j = 0; j < n; j++)
                                ci[j] = t[j] + b_eff * ci[j];
                    }
                }
            }
        }
    }
}
