/* tl_gemv_pb (one row times packed linear weights, the batch-1
 * classifier) on every SIMD path this CPU has: bit-identical to
 * tl_sgemm_pb with M = 1 (whose micro-kernel it must sum as), for 1..3
 * parts, with and without bias, with activations; within rounding of a
 * double reference; nothing written past N. */
#include "check.h"
#include "kernels/kernels.h"

#include <stdlib.h>
#include <string.h>

static const char *paths[] = {"scalar", "avx2", "avx512"};

static void fill(tl_rng *r, float *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        a[i] = tl_rng_uniform(r) * 2.0f - 1.0f;
}

static int run(tl_kws *ws, tl_rng *r, int N, int K, int with_bias, int act)
{
    const float sentinel = 1234.0f;
    float *x = malloc(((size_t)K + 1) * sizeof *x), *W = malloc(((size_t)N * K + 1) * sizeof *W);
    float *bias = malloc((size_t)(N + 1) * sizeof *bias);
    float *ref = malloc((size_t)(N + 8) * sizeof *ref), *y = malloc((size_t)(N + 8) * sizeof *y);
    float *pb = tl_alloc_array(tl_gemm_packed_bt_floats(ws, N, K) + 1, sizeof *pb);
    fill(r, x, (size_t)K + 1);
    fill(r, W, (size_t)N * K + 1);
    fill(r, bias, (size_t)N + 1);
    tl_gemm_pack_bt(ws, N, K, W, K, pb);
    const float *b = with_bias ? bias : NULL;
    for (int j = 0; j < N + 8; j++)
        ref[j] = sentinel;
    tl_sgemm_pb(ws, 1, N, K, x, K, pb, ref, N, b, act, 0, 1);
    int bad = 0;
    for (int nparts = 1; nparts <= 3; nparts++) {
        for (int j = 0; j < N + 8; j++)
            y[j] = sentinel;
        for (int part = 0; part < nparts; part++)
            tl_gemv_pb(ws, N, K, x, pb, y, b, act, part, nparts);
        if (memcmp(y, ref, (size_t)(N + 8) * sizeof *y)) {
            int j = 0;
            while (!memcmp(y + j, ref + j, sizeof *y))
                j++;
            fprintf(stderr, "    %s gemv N=%d K=%d bias %d act %d parts %d: y[%d] = %.9g, tl_sgemm_pb %.9g\n",
                    tl_kws_simd_name(ws), N, K, with_bias, act, nparts, j, y[j], ref[j]);
            bad++;
        }
    }
    if (act == TL_ACT_NONE) /* and the sums themselves */
        for (int j = 0; j < N; j++) {
            double acc = b ? b[j] : 0, mag = b ? fabs(b[j]) : 0;
            for (int p = 0; p < K; p++) {
                acc += (double)x[p] * W[(size_t)j * K + p];
                mag += fabs((double)x[p] * W[(size_t)j * K + p]);
            }
            if (!(fabs(y[j] - acc) <= 1e-6 * (K + 4) * (mag + 1e-3))) {
                fprintf(stderr, "    %s gemv N=%d K=%d: y[%d] = %.9g, expected %.9g\n", tl_kws_simd_name(ws), N, K,
                        j, y[j], acc);
                bad++;
                break;
            }
        }
    free(x); free(W); free(bias); free(ref); free(y); tl_free(pb);
    return bad;
}

int main(void)
{
    tl_err e = {0};
    tl_rng r;
    tl_rng_seed(&r, 7);
    /* edges; K over one block (kc is 256 or 384) and N over one block (nc
     * is 512 to 1024); MobileNetV2's and ViT's classifiers */
    static const int shapes[][2] = {{1, 1},     {7, 3},    {33, 17},   {32, 384},    {70, 385}, {129, 513},
                                    {1300, 800}, {1000, 1280}, {1000, 768}, {200, 1100}, {5, 0}};
    static const int acts[] = {TL_ACT_NONE, TL_ACT_RELU, TL_ACT_GELU};
    for (int p = 0; p < 3; p++) {
        if (!tl_simd_supported(paths[p])) {
            printf("test_gemv: %s not supported here, skipped\n", paths[p]);
            continue;
        }
        tl_kws *ws = tl_kws_new_simd(paths[p], &e);
        CHECK_MSG(ws != NULL, "%s", e.msg);
        if (!ws)
            continue;
        int bad = 0;
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            for (int a = 0; a < 3; a++)
                bad += run(ws, &r, shapes[s][0], shapes[s][1], a != 1, acts[a]);
        CHECK_MSG(bad == 0, "%s: %d bad cases", paths[p], bad);
        tl_kws_free(ws);
    }
    return check_finish("test_gemv");
}
