/* One row times packed linear weights (y = x W^T + bias, then act): the
 * batch-1 classifier. tl_sgemm_pb would run the mr-row micro-kernel on a
 * row padded with mr - 1 zero rows (12x the multiply-adds on AVX-512);
 * here each column is summed as that micro-kernel sums it: within a K
 * block from zero, one multiply-add per step in k order (fused on the
 * FMA paths, multiply then add on the scalar one), the block's sum added
 * to the running column, then the bias added and the activation applied.
 * So the bits are tl_sgemm_pb's with M = 1, for any split. */
#include "gemv_internal.h"

static int imin(int a, int b) { return a < b ? a : b; }

/* Columns jr0..jr1 of one packed block (slivers of nr columns, kc steps of
 * nr values each), plain C: acc + x * b rounds twice, as ukernel_scalar. */
static void gemv_block_scalar(int kc, int nr, const float *x, const float *blk, int jr0, int jr1, float *y,
                              int add)
{
    for (int jr = jr0; jr < jr1; jr += nr) {
        const float *s = blk + (size_t)jr * kc;
        int w = imin(nr, jr1 - jr);
        for (int c = 0; c < w; c++) {
            float acc = 0.0f;
            for (int p = 0; p < kc; p++)
                acc += x[p] * s[(size_t)p * nr + c];
            y[jr + c] = add ? y[jr + c] + acc : acc;
        }
    }
}

/* the paths whose micro-kernel sums gemv_block_* reproduce */
static int supported(const tl_kws *ws)
{
    const tl_simd_impl *im = ws->impl;
    return im == &tl_simd_scalar || (im == &tl_simd_avx2 && im->nr == 16) ||
           (im == &tl_simd_avx512 && im->nr == 32);
}

void tl_gemv_pb(tl_kws *ws, int N, int K, const float *x, const float *pb, float *y, const float *bias, int act,
                int part, int nparts)
{
    const tl_simd_impl *im = ws->impl;
    if (!supported(ws) || K <= 0) {
        tl_sgemm_pb(ws, 1, N, K, x, K, pb, y, N, bias, act, part, nparts);
        return;
    }
    const int nr = im->nr, KC = im->kc, NC = im->nc;
    /* tl_sgemm_pb's split: whole slivers of nr columns */
    int units = (N + nr - 1) / nr;
    int n0 = imin(N, (int)((long)units * part / nparts) * nr), n1 = imin(N, (int)((long)units * (part + 1) / nparts) * nr);
    for (int jc = n0 / NC * NC; jc < n1; jc += NC) {
        int nc = imin(NC, N - jc), ncpad = (nc + nr - 1) / nr * nr;
        int jr0 = n0 > jc ? n0 - jc : 0, jr1 = imin(n1 - jc, nc);
        if (jr0 >= jr1)
            continue;
        for (int pc = 0; pc < K; pc += KC) {
            int kc = imin(KC, K - pc);
            const float *blk = pb + (size_t)jc * K + (size_t)pc * ncpad;
            if (im == &tl_simd_avx512)
                tl_gemv_block_avx512(kc, x + pc, blk, jr0, jr1, y + jc, pc > 0);
            else if (im == &tl_simd_avx2)
                tl_gemv_block_avx2(kc, x + pc, blk, jr0, jr1, y + jc, pc > 0);
            else
                gemv_block_scalar(kc, nr, x + pc, blk, jr0, jr1, y + jc, pc > 0);
        }
        float *ci = y + jc + jr0;
        if (bias)
            for (int j = 0; j < jr1 - jr0; j++)
                ci[j] += bias[jc + jr0 + j];
        tl_activation(act, ci, (size_t)(jr1 - jr0));
    }
}
