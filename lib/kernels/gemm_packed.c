/* GEMMs with one operand packed ahead of time (inference weights), the
 * bias + activation epilogue applied while each block of C is still in
 * cache, and a deterministic split of the work between the threads of a
 * team: every element is summed in the same order whatever the split, so
 * results do not depend on the number of threads.
 *
 * Packed A (M x K, the convolution weights): for each K-block of kc rows,
 * ceil(M / mr) slivers of kc steps of mr values. Packed B^T (the linear
 * weights, W is N x K): for each N-block of nc columns and each K-block,
 * ceil(nc / nr) slivers of kc steps of nr values. */
#include "act_internal.h"
#include "gemv_internal.h"
#include "simd.h"

#include <string.h>

static int round_up(int v, int m) { return (v + m - 1) / m * m; }
static int imin(int a, int b) { return a < b ? a : b; }

size_t tl_gemm_packed_a_floats(const tl_kws *ws, int M, int K)
{
    return (size_t)round_up(M, ws->impl->mr) * (size_t)K;
}

void tl_gemm_pack_a(const tl_kws *ws, int M, int K, const float *A, int lda, float *pa)
{
    tl_gemm_pack_a_part(ws, M, K, A, lda, pa, 0, 1);
}

void tl_gemm_pack_a_part(const tl_kws *ws, int M, int K, const float *A, int lda, float *pa, int part, int nparts)
{
    const int mr = ws->impl->mr, KC = ws->impl->kc, Mpad = round_up(M, mr), slivers = Mpad / mr;
    const int i0 = (int)((long)slivers * part / nparts) * mr, i1 = (int)((long)slivers * (part + 1) / nparts) * mr;
    for (int pc = 0; pc < K; pc += KC) {
        int kc = imin(KC, K - pc);
        for (int ir = i0; ir < i1; ir += mr) {
            float *dst = pa + (size_t)pc * Mpad + (size_t)ir * kc;
            for (int r = 0; r < mr; r++) {
                const float *src = A + (size_t)(ir + r) * lda + pc;
                for (int p = 0; p < kc; p++)
                    dst[(size_t)p * mr + r] = ir + r < M ? src[p] : 0.0f;
            }
        }
    }
}

size_t tl_gemm_packed_bt_floats(const tl_kws *ws, int N, int K)
{
    /* every N-block but the last is a multiple of nr, so padding the whole
     * N to nr covers the last one */
    return (size_t)round_up(N, ws->impl->nr) * (size_t)K;
}

void tl_gemm_pack_bt(const tl_kws *ws, int N, int K, const float *W, int ldw, float *pb)
{
    const int nr = ws->impl->nr, KC = ws->impl->kc, NC = ws->impl->nc;
    for (int jc = 0; jc < N; jc += NC) {
        int nc = imin(NC, N - jc), ncpad = round_up(nc, nr);
        for (int pc = 0; pc < K; pc += KC) {
            int kc = imin(KC, K - pc);
            float *blk = pb + (size_t)jc * K + (size_t)pc * ncpad;
            for (int jr = 0; jr < ncpad; jr += nr) {
                float *s = blk + (size_t)jr * kc;
                for (int c = 0; c < nr; c++) {
                    int col = jc + jr + c;
                    const float *src = W + (size_t)col * ldw + pc;
                    for (int p = 0; p < kc; p++)
                        s[(size_t)p * nr + c] = col < jc + nc ? src[p] : 0.0f;
                }
            }
        }
    }
}

void tl_pack_b_plain(const void *ctx, int p0, int kc, int j0, int nc, int nr, float *dst)
{
    const tl_plain_b *pb = ctx;
    for (int j = 0; j < nc; j += nr) {
        int w = imin(nr, nc - j);
        float *s = dst + (size_t)j * kc;
        /* whole slivers of AVX2's 16 columns: copies of a constant size,
         * inline (a call per 64 bytes cost as much as the copy). AVX-512's
         * 128 bytes keep the call: libc's two 64-byte moves beat the 16-byte
         * ones the compiler inlines for the baseline ISA (measured). */
        if (w == 16 && nr == 16) {
            for (int p = 0; p < kc; p++)
                memcpy(s + (size_t)p * 16, pb->b + (size_t)(p0 + p) * pb->ldb + j0 + j, 16 * sizeof(float));
            continue;
        }
        for (int p = 0; p < kc; p++) {
            const float *src = pb->b + (size_t)(p0 + p) * pb->ldb + j0 + j;
            float *d = s + (size_t)p * nr;
            memcpy(d, src, sizeof(float) * w);
            for (int c = w; c < nr; c++)
                d[c] = 0.0f;
        }
    }
}

/* One rows x w tile of the kernel uk (rows <= mr, w columns wide), or a
 * partial one (m x n) through the workspace's tile buffer. */
static void tile_product(tl_ukernel_fn uk, int rows, int w, float *tile, int kc, const float *a, const float *b,
                         float *c, int ldc, int m, int n, float beta)
{
    if (m == rows && n == w) {
        uk(kc, a, b, c, ldc, 1.0f, beta);
        return;
    }
    uk(kc, a, b, tile, w, 1.0f, 0.0f);
    for (int i = 0; i < m; i++) {
        float *ci = c + (size_t)i * ldc;
        const float *t = tile + (size_t)i * w;
        if (beta == 0.0f)
            for (int j = 0; j < n; j++)
                ci[j] = t[j];
        else
            for (int j = 0; j < n; j++)
                ci[j] += t[j];
    }
}

/* The width of the next sliver for the rem columns left after the whole
 * nr ones: the narrower kernels sum each element as the nr one does, so a
 * 14x14 map's 196 columns take 6 x 32 + 8 lanes instead of 7 x 32, a 7x7
 * map's 49 take 32 + 16 + 8 instead of 64 (the same bits either way). */
static int tail_width(const tl_simd_impl *im, int rem)
{
    const int k16 = im->ukernel16 && im->nr > 16, k8 = im->ukernel8 && im->nr > 8;
    if (rem > im->nr - 8 || (!k16 && !k8))
        return im->nr;
    if (k16 && (rem > 8 || !k8))
        return 16;
    return 8;
}

/* Whether the tails after nfull of nc columns end in one column by a
 * wider kernel. */
static int last_tail_one(const tl_simd_impl *im, int nfull, int nc)
{
    for (int jr = nfull, w; jr < nc; jr += w) {
        w = tail_width(im, nc - jr);
        if (nc - jr <= w)
            return nc - jr == 1 && w > 1;
    }
    return 0;
}

static tl_ukernel_fn kernel_of(const tl_simd_impl *im, int w)
{
    return w == im->nr ? im->ukernel : w == 16 ? im->ukernel16 : im->ukernel8;
}

/* [*lo, *hi) of `units` units of size `unit` (last one clipped to total) for part of nparts */
static void share(int total, int unit, int part, int nparts, int *lo, int *hi)
{
    int units = (total + unit - 1) / unit;
    *lo = imin(total, (int)((long)units * part / nparts) * unit);
    *hi = imin(total, (int)((long)units * (part + 1) / nparts) * unit);
}

/* c += r over a rows x cols block, c with row stride ldc and r with ldr
 * (0: the same r for every row, a bias by column): one rounding per
 * element, the same bits as a separate add */
static void add_rows_ld(float *c, size_t ldc, const float *r, size_t ldr, int rows, int cols)
{
    for (int i = 0; i < rows; i++) {
        float *ci = c + (size_t)i * ldc;
        const float *ri = r + (size_t)i * ldr;
        int j = 0;
        for (; j + 16 <= cols; j += 16) { /* through a local block: no aliasing, vectorised at -O2 */
            float t[16];
            for (int q = 0; q < 16; q++)
                t[q] = ci[j + q] + ri[j + q];
            memcpy(ci + j, t, sizeof t);
        }
        for (; j < cols; j++)
            ci[j] += ri[j];
    }
}

static void add_rows(float *c, const float *r, size_t ld, int rows, int cols) { add_rows_ld(c, ld, r, ld, rows, cols); }

/* add_rows_ld in whole vectors: the adds of tl_sgemm_pb's epilogue (bias
 * by column, residual) were 1.5 % of a ViT's time through the 4-wide local
 * block above. The same single rounding per element. */
#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f"))) static void add_rows_avx512(float *c, size_t ldc, const float *r, size_t ldr,
                                                              int rows, int cols)
{
    const __mmask16 tail = (__mmask16)((1u << (cols % 16)) - 1);
    for (int i = 0; i < rows; i++) {
        float *ci = c + (size_t)i * ldc;
        const float *ri = r + (size_t)i * ldr;
        int j = 0;
        for (; j + 16 <= cols; j += 16)
            _mm512_storeu_ps(ci + j, _mm512_add_ps(_mm512_loadu_ps(ci + j), _mm512_loadu_ps(ri + j)));
        if (tail)
            _mm512_mask_storeu_ps(ci + j, tail,
                                  _mm512_add_ps(_mm512_maskz_loadu_ps(tail, ci + j), _mm512_maskz_loadu_ps(tail, ri + j)));
    }
}

__attribute__((target("avx2"))) static void add_rows_avx2(float *c, size_t ldc, const float *r, size_t ldr, int rows,
                                                          int cols)
{
    for (int i = 0; i < rows; i++) {
        float *ci = c + (size_t)i * ldc;
        const float *ri = r + (size_t)i * ldr;
        int j = 0;
        for (; j + 8 <= cols; j += 8)
            _mm256_storeu_ps(ci + j, _mm256_add_ps(_mm256_loadu_ps(ci + j), _mm256_loadu_ps(ri + j)));
        for (; j < cols; j++)
            ci[j] += ri[j];
    }
}
#endif

static void add_rows_for(int level, float *c, size_t ldc, const float *r, size_t ldr, int rows, int cols)
{
#if defined(__x86_64__)
    if (level >= TL_SIMD_AVX512) {
        add_rows_avx512(c, ldc, r, ldr, rows, cols);
        return;
    }
    if (level >= TL_SIMD_AVX2) {
        add_rows_avx2(c, ldc, r, ldr, rows, cols);
        return;
    }
#endif
    add_rows_ld(c, ldc, r, ldr, rows, cols);
}

/* Column c[0] of rows 0..rows (row stride ldc) += or = (add) a K block's
 * product of the whole slivers of packed A from a (kc steps each, the
 * next kc * mr floats on) by the column b (b[p * ldb]), four slivers at a
 * time where there are four: every element's sum as the micro-kernels make
 * it (tl_gemv_fn), added to C as their tiles are. y: 4 * mr floats. */
static void column_product(const tl_simd_impl *im, int kc, const float *a, const float *b, int ldb, float *c, int ldc,
                           int rows, int add, float *y)
{
    const int mr = im->mr;
    for (int i = 0; i < rows; i += 4 * mr) {
        const int n = imin(rows - i, 4 * mr), slivers = (n + mr - 1) / mr;
        const float *as = a + (size_t)i * kc;
        if (slivers == 4 && im->gemv4)
            im->gemv4(kc, as, (size_t)mr * kc, b, ldb, y);
        else
            for (int s = 0; s < slivers; s++)
                im->gemv(kc, as + (size_t)s * mr * kc, b, ldb, y + s * mr);
        for (int r = 0; r < n; r++) {
            float *ci = c + (size_t)(i + r) * ldc;
            *ci = add ? *ci + y[r] : y[r];
        }
    }
}

void tl_gemm_pa(tl_kws *ws, int M, int N, int K, const float *pa, tl_pack_b_fn pack, const void *ctx,
                float *C, int ldc, const float *bias, int act, const float *res, int part, int nparts)
{
    const tl_simd_impl *im = ws->impl;
    const int mr = im->mr, nr = im->nr, KC = im->kc, NC = im->nc, Mpad = round_up(M, mr);
    int m0 = 0, m1 = M, n0 = 0, n1 = N;
    if (nparts > 1) {
        /* columns when there are enough of them: no duplicated B packing */
        if ((N + nr - 1) / nr >= 4 * nparts)
            share(N, nr, part, nparts, &n0, &n1);
        else
            share(M, mr, part, nparts, &m0, &m1);
    }
    if (m0 >= m1 || n0 >= n1)
        return;
    if (K <= 0) {
        for (int i = m0; i < m1; i++)
            memset(C + (size_t)i * ldc + n0, 0, sizeof(float) * (n1 - n0));
        tl_bias_act_2d(act, C + (size_t)m0 * ldc + n0, (size_t)ldc, bias ? bias + m0 : NULL, m1 - m0, (size_t)(n1 - n0));
        if (res)
            add_rows(C + (size_t)m0 * ldc + n0, res + (size_t)m0 * ldc + n0, (size_t)ldc, m1 - m0, n1 - n0);
        return;
    }
    float *pb = ws->pack_b;
    if (N == 1 && im->gemv) { /* a matrix-vector product (squeeze-excitation): one column, not nr */
        for (int pc = 0; pc < K; pc += KC) {
            int kc = imin(KC, K - pc);
            pack(ctx, pc, kc, 0, 1, nr, pb);
            column_product(im, kc, pa + (size_t)pc * Mpad + (size_t)m0 * kc, pb, nr, C + (size_t)m0 * ldc, ldc,
                           m1 - m0, pc > 0, ws->tile);
        }
        if (act != TL_ACT_NONE || bias)
            tl_act_rows_for(im->level)(act, C + (size_t)m0 * ldc, (size_t)ldc, C + (size_t)m0 * ldc, (size_t)ldc,
                                       bias ? bias + m0 : NULL, m1 - m0, 1);
        if (res)
            add_rows(C + (size_t)m0 * ldc, res + (size_t)m0 * ldc, (size_t)ldc, m1 - m0, 1);
        return;
    }
    /* the epilogue in the whole tiles' stores (the rest by separate passes) */
    const int fuse = im->ukernel_ep && (act == TL_ACT_NONE || act == TL_ACT_RELU || act == TL_ACT_RELU6) &&
                     (bias || act != TL_ACT_NONE || res);
    for (int jc = n0; jc < n1; jc += NC) {
        int nc = imin(NC, n1 - jc);
        for (int pc = 0; pc < K; pc += KC) {
            int kc = imin(KC, K - pc), last = pc + kc >= K;
            const int nfull = nc / nr * nr;
            if (nfull > 0)
                pack(ctx, pc, kc, jc, nfull, nr, pb);
            for (int jr = nfull; jr < nc; jr += tail_width(im, nc - jr))
                pack(ctx, pc, kc, jc + jr, imin(tail_width(im, nc - jr), nc - jr), tail_width(im, nc - jr),
                     pb + (size_t)jr * kc);
            /* A last tail of one column (a 7x7 map's 49 = 32 + 16 + 1) by the
             * one-column product over four slivers at once, not by an
             * 8-wide tile per sliver (1 lane of 8 kept, its chains bound by
             * the multiply-add latency): after each group of slivers, while
             * their A is in cache, then the group's epilogues. */
            const int one = im->gemv4 && last_tail_one(im, nfull, nc), jend = nc - one, group = one ? 4 * mr : mr;
            for (int ig = m0; ig < m1; ig += group) {
                const int ie = imin(m1, ig + group);
                for (int ir = ig; ir < ie; ir += mr) {
                    int m = imin(mr, m1 - ir);
                    const float *a = pa + (size_t)pc * Mpad + (size_t)ir * kc;
                    float *c = C + (size_t)ir * ldc + jc;
                    float beta = pc == 0 ? 0.0f : 1.0f;
                    /* a last row block of up to 4 or 8 rows by the kernels of that many */
                    tl_ukernel_fn uk = im->ukernel;
                    int rows = mr;
                    if (m <= 4 && im->ukernel_r4)
                        uk = im->ukernel_r4, rows = 4;
                    else if (m <= 8 && im->ukernel_r8)
                        uk = im->ukernel_r8, rows = 8;
                    const int ep = fuse && last && m == mr;
                    const float *r = res ? res + (size_t)ir * ldc + jc : NULL;
                    int jr = 0;
                    for (; jr < nfull; jr += nr)
                        if (ep)
                            im->ukernel_ep(kc, a, pb + (size_t)jr * kc, c + jr, ldc, beta, bias ? bias + ir : NULL,
                                           act, r ? r + jr : NULL);
                        else
                            tile_product(uk, rows, nr, ws->tile, kc, a, pb + (size_t)jr * kc, c + jr, ldc, m, nr,
                                         beta);
                    for (int w; jr < jend; jr += w) {
                        w = tail_width(im, nc - jr);
                        tile_product(kernel_of(im, w), mr, w, ws->tile, kc, a, pb + (size_t)jr * kc, c + jr, ldc, m,
                                     imin(w, nc - jr), beta);
                    }
                }
                if (one)
                    column_product(im, kc, pa + (size_t)pc * Mpad + (size_t)ig * kc, pb + (size_t)(nc - 1) * kc,
                                   tail_width(im, 1), C + (size_t)ig * ldc + jc + nc - 1, ldc, ie - ig, pc > 0,
                                   ws->tile);
                for (int ir = ig; last && ir < ie; ir += mr) {
                    const int m = imin(mr, m1 - ir), ep = fuse && m == mr;
                    const int j0 = ep ? nfull : 0; /* the columns left to the separate passes */
                    float *c = C + (size_t)ir * ldc + jc;
                    if ((act != TL_ACT_NONE || bias) && j0 < nc)
                        tl_act_rows_for(im->level)(act, c + j0, (size_t)ldc, c + j0, (size_t)ldc,
                                                   bias ? bias + ir : NULL, m, (size_t)(nc - j0));
                    if (res && j0 < nc)
                        add_rows(c + j0, res + (size_t)ir * ldc + jc + j0, (size_t)ldc, m, nc - j0);
                }
            }
        }
    }
}

/* dst: rows i0..i0+m (m <= mr) of A, columns p0..p0+kc, as kc steps of mr values */
static void pack_a_rows(const float *A, int lda, int i0, int m, int p0, int kc, int mr, float *dst)
{
    int r = 0;
    for (; r + 4 <= m; r += 4) {
        const float *src = A + (size_t)(i0 + r) * lda + p0;
        for (int p = tl_pack_a_rows4(src, lda, kc, mr, dst + r); p < kc; p++)
            for (int q = 0; q < 4; q++)
                dst[(size_t)p * mr + r + q] = src[(size_t)q * lda + p];
    }
    for (; r < mr; r++) {
        if (r >= m) {
            for (int p = 0; p < kc; p++)
                dst[(size_t)p * mr + r] = 0.0f;
            continue;
        }
        const float *src = A + (size_t)(i0 + r) * lda + p0;
        for (int p = 0; p < kc; p++)
            dst[(size_t)p * mr + r] = src[p];
    }
}

/* The last K block's epilogue over columns [j0, j1) of m rows of C,
 * after the tiles, while they are in cache: bias (at the columns' own
 * index), activation, then the residual (row stride ldc like C), each
 * rounded once as by separate passes over the whole output. */
static void rows_epilogue(const tl_simd_impl *im, float *c, int ldc, int m, int j0, int j1, const float *bias, int act,
                          const float *res)
{
    if (bias)
        add_rows_for(im->level, c + j0, (size_t)ldc, bias + j0, 0, m, j1 - j0);
    if (act != TL_ACT_NONE)
        tl_act_rows_for(im->level)(act, c + j0, (size_t)ldc, c + j0, (size_t)ldc, NULL, m, (size_t)(j1 - j0));
    if (res)
        add_rows_for(im->level, c + j0, (size_t)ldc, res + j0, (size_t)ldc, m, j1 - j0);
}

void tl_sgemm_pb(tl_kws *ws, int M, int N, int K, const float *A, int lda, const float *pb, float *C, int ldc,
                 const float *bias, int act, int part, int nparts)
{
    tl_sgemm_pb_res(ws, M, N, K, A, lda, pb, C, ldc, bias, act, NULL, part, nparts);
}

void tl_sgemm_pb_res(tl_kws *ws, int M, int N, int K, const float *A, int lda, const float *pb, float *C, int ldc,
                     const float *bias, int act, const float *res, int part, int nparts)
{
    const tl_simd_impl *im = ws->impl;
    const int mr = im->mr, nr = im->nr, KC = im->kc, NC = im->nc;
    int n0 = 0, n1 = N;
    if (nparts > 1)
        share(N, nr, part, nparts, &n0, &n1);
    if (M <= 0 || n0 >= n1)
        return;
    if (K <= 0) {
        for (int i = 0; i < M; i++) {
            float *ci = C + (size_t)i * ldc + n0;
            for (int j = 0; j < n1 - n0; j++)
                ci[j] = bias ? bias[n0 + j] : 0.0f;
        }
        rows_epilogue(im, C, ldc, M, n0, n1, NULL, act, res);
        return;
    }
    /* A few hundred rows (a ViT's tokens at batch 1): all of them packed
     * once per K block into pack_b (unused here: B comes packed), shared by
     * the part's N-blocks, instead of once per N-block, which also cost a
     * part whose columns cross an N-block boundary twice the packing of the
     * other. The K blocks still come in order for every element: the same
     * bits. */
    const int Mpad = round_up(M, mr), ncr = round_up(NC, nr);
    if (Mpad <= ncr) {
        /* the last row tile by the 4- or 8-row kernel when it has that
         * few; one of 4k + 1 rows (197 tokens = 16 x 12 + 5) by the 4k-row
         * kernel and the last row by the one-row product, whose sums are
         * the kernels' (gemv.c): 4 rows + 1 instead of 8 for 5. Only where
         * the kernel would compute 3 or more padding rows: the one-row
         * product streams the weights once more and costs about two rows
         * (AVX2's 6 rows for 5 profiled the same either way). */
        int mlast = M - (Mpad - mr);
        const int kernel_rows = mlast <= 4 && im->ukernel_r4 ? 4 : mlast <= 8 && im->ukernel_r8 ? 8 : mr;
        void (*gemv_block)(int, const float *, const float *, int, int, float *, int) =
            im == &tl_simd_avx512 && nr == 32 ? tl_gemv_block_avx512
            : im == &tl_simd_avx2 && nr == 16 ? tl_gemv_block_avx2
                                              : NULL;
        const int row1 = gemv_block && kernel_rows - mlast >= 3 &&
                         (mlast == 1 || (mlast == 5 && im->ukernel_r4) || (mlast == 9 && im->ukernel_r8));
        mlast -= row1;
        tl_ukernel_fn uk_last = im->ukernel;
        int rows_last = mr;
        if (mlast <= 4 && im->ukernel_r4)
            uk_last = im->ukernel_r4, rows_last = 4;
        else if (mlast <= 8 && im->ukernel_r8)
            uk_last = im->ukernel_r8, rows_last = 8;
        for (int pc = 0; pc < K; pc += KC) {
            int kc = imin(KC, K - pc), last = pc + kc >= K;
            float *pa = ws->pack_b;
            for (int ir = 0; ir < M; ir += mr)
                pack_a_rows(A, lda, ir, imin(mr, M - ir), pc, kc, mr, pa + (size_t)ir * kc);
            for (int jc = n0 / NC * NC; jc < n1; jc += NC) {
                int nc = imin(NC, N - jc), ncpad = round_up(nc, nr);
                int jr0 = n0 > jc ? n0 - jc : 0, jr1 = imin(n1 - jc, nc);
                if (jr0 >= jr1)
                    continue;
                const float *blk = pb + (size_t)jc * K + (size_t)pc * ncpad;
                for (int ir = 0; ir < M; ir += mr) {
                    int m = imin(mr, M - ir), rows = m == mr ? mr : rows_last;
                    int mk = m == mr ? mr : m - row1; /* rows by the micro-kernel */
                    tl_ukernel_fn uk = m == mr ? im->ukernel : uk_last;
                    float *c = C + (size_t)ir * ldc + jc;
                    for (int jr = jr0; mk > 0 && jr < jr1; jr += nr)
                        tile_product(uk, rows, nr, ws->tile, kc, pa + (size_t)ir * kc, blk + (size_t)jr * kc, c + jr,
                                     ldc, mk, imin(nr, jr1 - jr), pc == 0 ? 0.0f : 1.0f);
                    if (mk < m)
                        gemv_block(kc, A + (size_t)(ir + mk) * lda + pc, blk, jr0, jr1, c + (size_t)mk * ldc, pc > 0);
                    if (last)
                        rows_epilogue(im, C + (size_t)ir * ldc, ldc, m, jc + jr0, jc + jr1, bias, act,
                                      res ? res + (size_t)ir * ldc : NULL);
                }
            }
        }
        return;
    }
    for (int jc = n0 / NC * NC; jc < n1; jc += NC) {
        int nc = imin(NC, N - jc), ncpad = round_up(nc, nr);
        int jr0 = n0 > jc ? n0 - jc : 0, jr1 = imin(n1 - jc, nc);
        if (jr0 >= jr1)
            continue;
        for (int pc = 0; pc < K; pc += KC) {
            int kc = imin(KC, K - pc), last = pc + kc >= K;
            const float *blk = pb + (size_t)jc * K + (size_t)pc * ncpad;
            for (int ir = 0; ir < M; ir += mr) {
                int m = imin(mr, M - ir);
                pack_a_rows(A, lda, ir, m, pc, kc, mr, ws->pack_a);
                float *c = C + (size_t)ir * ldc + jc;
                for (int jr = jr0; jr < jr1; jr += nr)
                    tile_product(im->ukernel, mr, nr, ws->tile, kc, ws->pack_a, blk + (size_t)jr * kc, c + jr, ldc, m,
                                 imin(nr, jr1 - jr), pc == 0 ? 0.0f : 1.0f);
                if (last)
                    rows_epilogue(im, C + (size_t)ir * ldc, ldc, m, jc + jr0, jc + jr1, bias, act,
                                  res ? res + (size_t)ir * ldc : NULL);
            }
        }
    }
}
