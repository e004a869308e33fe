/* tl_sgemm on every SIMD path this CPU has, against a double-precision
 * reference: edge sizes, all transposes, alpha/beta, strided operands,
 * NaN in C with beta == 0, and untouched memory around C; the GEMM with
 * pre-packed linear weights, bias and activation, split into parts.
 * TL_BENCH=1 also prints GFLOPS per path. */
#include "check.h"
#include "kernels/kernels.h"

#include <stdlib.h>
#include <string.h>

/* like fmax, but a NaN difference wins so it cannot hide */
static double worse(double a, double b) { return isnan(a) || a >= b ? a : b; }

static const char *paths[] = {"scalar", "avx2", "avx512"};

static void fill(tl_rng *r, float *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        a[i] = tl_rng_uniform(r) * 2.0f - 1.0f;
}

/* op(X)[i][j] */
static double at(const float *x, int ld, int trans, int i, int j)
{
    return trans ? x[(size_t)j * ld + i] : x[(size_t)i * ld + j];
}

/* Returns the number of bad elements (and reports the first). */
static int run_case(tl_kws *ws, tl_rng *r, int ta, int tb, int M, int N, int K, float alpha,
                    float beta, int pad)
{
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    size_t na = (size_t)(ta ? K : M) * lda + 1, nb = (size_t)(tb ? N : K) * ldb + 1;
    size_t nc = (size_t)M * ldc + 1;
    float *A = malloc(na * sizeof *A), *B = malloc(nb * sizeof *B);
    float *C = malloc(nc * sizeof *C), *C0 = malloc(nc * sizeof *C0);
    fill(r, A, na);
    fill(r, B, nb);
    fill(r, C0, nc);
    if (beta == 0.0f)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                C0[(size_t)i * ldc + j] = NAN;
    memcpy(C, C0, nc * sizeof *C);
    tl_sgemm(ws, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    int bad = 0;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < ldc; j++) {
            size_t o = (size_t)i * ldc + j;
            double ref, mag;
            if (j >= N) { /* padding columns must be untouched */
                ref = C0[o];
                mag = 0;
            } else {
                double s = 0, sa = 0;
                for (int p = 0; p < K; p++) {
                    double v = at(A, lda, ta, i, p) * at(B, ldb, tb, p, j);
                    s += v;
                    sa += fabs(v);
                }
                ref = alpha * s + (beta == 0.0f ? 0.0 : beta * (double)C0[o]);
                mag = fabs(alpha) * sa + (beta == 0.0f ? 0.0 : fabs(beta * (double)C0[o]));
            }
            double err = fabs((double)C[o] - ref);
            if (!(err <= 1e-6 * (K + 4) * (mag + 1e-3)) && !(j >= N && C[o] == C0[o])) {
                if (!bad)
                    fprintf(stderr, "    %s ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g pad=%d: "
                            "C[%d][%d] = %.9g, expected %.9g\n", tl_kws_simd_name(ws), ta, tb,
                            M, N, K, alpha, beta, pad, i, j, C[o], ref);
                bad++;
            }
        }
    }
    if (C[nc - 1] != C0[nc - 1])
        bad++;
    free(A); free(B); free(C); free(C0);
    return bad;
}

static void test_path(tl_kws *ws, tl_rng *r)
{
    static const int sizes[] = {1, 2, 7, 12, 16, 17, 33, 100};
    static const float ab[][2] = {{1, 0}, {0.5f, 0}, {1, 1}, {-1.5f, 0.7f}};
    int bad = 0, cases = 0;
    for (int si = 0; si < 8; si++)
        for (int sj = 0; sj < 8; sj++)
            for (int sk = 0; sk < 8; sk++) {
                int M = sizes[si], N = sizes[sj], K = sizes[sk];
                int t = (si + sj + sk) & 3, a = (si * 3 + sk) & 3;
                bad += run_case(ws, r, t & 1, t >> 1, M, N, K, ab[a][0], ab[a][1], (si + sk) % 3);
                cases++;
            }
    /* shapes that cross the K and N blocks, and network-like ones */
    static const int big[][3] = {{300, 700, 500}, {13, 1100, 800}, {96, 49, 960},
                                 {1, 1000, 1300}, {64, 3136, 27}, {40, 33, 1025}};
    for (int s = 0; s < 6; s++)
        for (int t = 0; t < 4; t++) {
            bad += run_case(ws, r, t & 1, t >> 1, big[s][0], big[s][1], big[s][2],
                            t == 3 ? 0.75f : 1.0f, t == 2 ? 0.5f : 0.0f, t);
            cases++;
        }
    CHECK_MSG(bad == 0, "%s: %d bad elements over %d cases", tl_kws_simd_name(ws), bad, cases);

    /* degenerate sizes: K == 0 scales C, M or N == 0 touches nothing */
    float c[6] = {1, 2, 3, 4, 5, 6}, dummy = 7;
    tl_sgemm(ws, 0, 0, 2, 3, 0, 1.0f, &dummy, 1, &dummy, 3, 2.0f, c, 3);
    CHECK(c[0] == 2 && c[5] == 12);
    float cn[2] = {NAN, NAN};
    tl_sgemm(ws, 0, 0, 1, 2, 0, 1.0f, &dummy, 1, &dummy, 2, 0.0f, cn, 2);
    CHECK(cn[0] == 0 && cn[1] == 0);
    tl_sgemm(ws, 0, 0, 0, 3, 4, 1.0f, NULL, 4, NULL, 3, 0.0f, NULL, 3);
}

/* tl_sgemm_pb against the reference with bias and ReLU, split into 1..3
 * parts (bit-identical to one part); returns the number of bad elements. */
static int run_packed_bt(tl_kws *ws, tl_rng *r, int M, int N, int K)
{
    int lda = K + 3, ldc = N + 5;
    float *A = malloc(((size_t)M * lda + 1) * sizeof *A), *W = malloc(((size_t)N * K + 1) * sizeof *W);
    float *bias = malloc((size_t)(N + 1) * sizeof *bias);
    float *C = malloc((size_t)M * ldc * sizeof *C), *C1 = malloc((size_t)M * ldc * sizeof *C1);
    float *pb = tl_alloc_array(tl_gemm_packed_bt_floats(ws, N, K) + 1, sizeof *pb); /* aligned, as required */
    fill(r, A, (size_t)M * lda + 1);
    fill(r, W, (size_t)N * K + 1);
    fill(r, bias, (size_t)N + 1);
    tl_gemm_pack_bt(ws, N, K, W, K, pb);
    int bad = 0;
    for (int nparts = 1; nparts <= 3; nparts++) {
        for (size_t i = 0; i < (size_t)M * ldc; i++)
            C[i] = 1234.0f; /* NaN-free sentinel: padding columns must keep it */
        for (int part = 0; part < nparts; part++)
            tl_sgemm_pb(ws, M, N, K, A, lda, pb, C, ldc, bias, TL_ACT_RELU, part, nparts);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < ldc; j++) {
                double ref = 1234.0, mag = 0;
                if (j < N) {
                    double acc = bias[j];
                    mag = fabs(bias[j]);
                    for (int p = 0; p < K; p++) {
                        double v = (double)A[(size_t)i * lda + p] * W[(size_t)j * K + p];
                        acc += v;
                        mag += fabs(v);
                    }
                    ref = acc > 0 ? acc : 0;
                }
                double got = C[(size_t)i * ldc + j];
                if (!(fabs(got - ref) <= 1e-6 * (K + 4) * (mag + 1e-3))) {
                    if (!bad)
                        fprintf(stderr, "    %s packed bt M=%d N=%d K=%d parts %d: C[%d][%d] = %.9g, expected %.9g\n",
                                tl_kws_simd_name(ws), M, N, K, nparts, i, j, got, ref);
                    bad++;
                }
            }
        if (nparts == 1)
            memcpy(C1, C, (size_t)M * ldc * sizeof *C);
        else if (memcmp(C, C1, (size_t)M * ldc * sizeof *C)) {
            fprintf(stderr, "    %s packed bt M=%d N=%d K=%d: %d parts differ from one\n", tl_kws_simd_name(ws), M,
                    N, K, nparts);
            bad++;
        }
    }
    /* the first rows alone (an image of a batch): a different row tiling,
     * and past a few hundred rows a different blocking, the same bits */
    int sub = M > 197 ? 197 : M - 1;
    if (sub > 0) {
        for (int part = 0; part < 2; part++)
            tl_sgemm_pb(ws, sub, N, K, A, lda, pb, C, ldc, bias, TL_ACT_RELU, part, 2);
        for (int i = 0; i < sub; i++)
            if (memcmp(C + (size_t)i * ldc, C1 + (size_t)i * ldc, (size_t)N * sizeof *C)) {
                fprintf(stderr, "    %s packed bt M=%d N=%d K=%d: row %d of %d rows differs from %d rows\n",
                        tl_kws_simd_name(ws), M, N, K, i, sub, M);
                bad++;
                break;
            }
    }
    /* GELU and a residual in the epilogue (a ViT's token linears): the same
     * bits as the product, then an activation pass and an add, for any
     * split; the columns past N keep their sentinel */
    float *R = malloc((size_t)M * ldc * sizeof *R);
    fill(r, R, (size_t)M * ldc);
    for (size_t i = 0; i < (size_t)M * ldc; i++)
        C1[i] = 1234.0f;
    tl_sgemm_pb(ws, M, N, K, A, lda, pb, C1, ldc, bias, TL_ACT_NONE, 0, 1);
    for (int i = 0; i < M; i++) {
        float *ci = C1 + (size_t)i * ldc;
        tl_activation(TL_ACT_GELU, ci, (size_t)N);
        for (int j = 0; j < N; j++)
            ci[j] = ci[j] + R[(size_t)i * ldc + j];
    }
    for (int nparts = 1; nparts <= 3; nparts++) {
        for (size_t i = 0; i < (size_t)M * ldc; i++)
            C[i] = 1234.0f;
        for (int part = 0; part < nparts; part++)
            tl_sgemm_pb_res(ws, M, N, K, A, lda, pb, C, ldc, bias, TL_ACT_GELU, R, part, nparts);
        if (memcmp(C, C1, (size_t)M * ldc * sizeof *C)) {
            fprintf(stderr, "    %s packed bt + GELU + residual M=%d N=%d K=%d parts %d: not the separate passes' bits\n",
                    tl_kws_simd_name(ws), M, N, K, nparts);
            bad++;
        }
    }
    free(A); free(W); free(bias); free(C); free(C1); free(R); tl_free(pb);
    return bad;
}

static void test_packed(tl_kws *ws, tl_rng *r)
{
    /* edges, several K blocks, several N blocks, a single row (classifier),
     * a ViT's 197 tokens, more rows than one block of them; 4k + 1 rows in
     * the last tile (one by the one-row product): 5, 13, 21, 25, 197 */
    static const int shapes[][3] = {{1, 1, 1}, {5, 7, 3}, {13, 33, 17}, {12, 32, 384}, {25, 70, 800},
                                    {7, 1300, 100}, {1, 1000, 513}, {3, 5, 0},
                                    {197, 70, 800}, {1030, 40, 300}, {21, 70, 800}};
    int bad = 0;
    for (int s = 0; s < 11; s++)
        bad += run_packed_bt(ws, r, shapes[s][0], shapes[s][1], shapes[s][2]);
    CHECK_MSG(bad == 0, "%s: packed bt, %d bad elements", tl_kws_simd_name(ws), bad);
}

/* Paths must agree closely with each other too (same blocking in K). */
static void compare_paths(tl_kws **ws, int n, tl_rng *r)
{
    int M = 77, N = 130, K = 90;
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
    float *C[3];
    fill(r, A, (size_t)M * K);
    fill(r, B, (size_t)K * N);
    for (int p = 0; p < n; p++) {
        C[p] = malloc(sizeof(float) * M * N);
        tl_sgemm(ws[p], 0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C[p], N);
    }
    double worst = 0;
    for (int p = 1; p < n; p++)
        for (int i = 0; i < M * N; i++)
            worst = worse(worst, fabs(C[p][i] - C[0][i]));
    CHECK_MSG(worst < 1e-4, "paths differ by %g", worst);
    for (int p = 0; p < n; p++)
        free(C[p]);
    free(A);
    free(B);
}

static void bench(tl_kws *ws, tl_rng *r)
{
    static const int shapes[][3] = {{512, 512, 512}, {1024, 1024, 1024}, {96, 12544, 16},
                                    {144, 3136, 24}, {1280, 49, 320}, {64, 3136, 576},
                                    {512, 49, 4608}, {8, 1000, 2048}};
    for (int s = 0; s < 8; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
        float *C = malloc(sizeof(float) * M * N);
        fill(r, A, (size_t)M * K);
        fill(r, B, (size_t)K * N);
        double flop = 2.0 * M * N * K, best = 1e9;
        int reps = (int)(2e9 / flop) + 1;
        reps = reps > 200 ? 200 : reps;
        for (int t = 0; t < 3; t++) {
            double t0 = tl_now();
            for (int i = 0; i < reps; i++)
                tl_sgemm(ws, 0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
            double dt = (tl_now() - t0) / reps;
            best = dt < best ? dt : best;
        }
        printf("bench sgemm %-6s M=%-5d N=%-5d K=%-5d %7.1f GFLOPS\n", tl_kws_simd_name(ws), M, N,
               K, flop / best * 1e-9);
        free(A);
        free(B);
        free(C);
    }
}

int main(void)
{
    tl_err e = {0};
    tl_rng r;
    tl_rng_seed(&r, 42);
    tl_kws *ws[3];
    int n = 0;
    for (int p = 0; p < 3; p++) {
        if (!tl_simd_supported(paths[p])) {
            printf("test_gemm: %s not supported here, skipped\n", paths[p]);
            continue;
        }
        ws[n] = tl_kws_new_simd(paths[p], &e);
        CHECK_MSG(ws[n] != NULL, "%s", e.msg);
        if (!ws[n])
            continue;
        CHECK(!strcmp(tl_kws_simd_name(ws[n]), paths[p]));
        test_path(ws[n], &r);
        test_packed(ws[n], &r);
        n++;
    }
    compare_paths(ws, n, &r);

    /* TL_SIMD forces a lower path; unknown names fail */
    setenv("TL_SIMD", "scalar", 1);
    tl_kws *f = tl_kws_new(&e);
    CHECK(f && !strcmp(tl_kws_simd_name(f), "scalar"));
    tl_kws_free(f);
    setenv("TL_SIMD", "sse9", 1);
    f = tl_kws_new(&e);
    CHECK(f == NULL && strstr(e.msg, "TL_SIMD") != NULL);
    unsetenv("TL_SIMD");
    f = tl_kws_new(&e);
    CHECK(f != NULL);
    tl_kws_free(f);
    CHECK(tl_kws_new_simd("neon", &e) == NULL);

    const char *b = getenv("TL_BENCH");
    if (b && *b == '1')
        for (int p = 0; p < n; p++)
            bench(ws[p], &r);
    for (int p = 0; p < n; p++)
        tl_kws_free(ws[p]);
    return check_finish("test_gemm");
}
