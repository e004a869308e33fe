/* Portable path: the GEMM micro-kernel and depthwise plane in plain C. */
#include "simd.h"

#define MR 4
#define NR 8

static void ukernel_scalar(int k, const float *a, const float *b, float *c, int ldc, float alpha,
                           float beta)
{
    float acc[MR][NR] = {{0}};
    for (int p = 0; p < k; p++, a += MR, b += NR)
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++)
                acc[i][j] += a[i] * b[j];
    for (int i = 0; i < MR; i++) {
        float *ci = c + (size_t)i * ldc;
        if (beta == 0.0f)
            for (int j = 0; j < NR; j++)
                ci[j] = alpha * acc[i][j];
        else
            for (int j = 0; j < NR; j++)
                ci[j] = alpha * acc[i][j] + beta * ci[j];
    }
}

static void gemv_scalar(int k, const float *a, const float *b, int ldb, float *y)
{
    float acc[MR] = {0};
    for (int p = 0; p < k; p++, a += MR)
        for (int i = 0; i < MR; i++)
            acc[i] += a[i] * b[(size_t)p * ldb];
    for (int i = 0; i < MR; i++)
        y[i] = acc[i];
}

void tl_dw_plane_scalar(const tl_conv_geom *g, const float *x, const float *w, float bias, int act,
                        float *y);

const tl_simd_impl tl_simd_scalar = {
    .name = "scalar",
    .level = TL_SIMD_SCALAR,
    .mr = MR,
    .nr = NR,
    .kc = 256,
    .nc = 512,
    .ukernel = ukernel_scalar,
    .gemv = gemv_scalar,
    .dw_plane = tl_dw_plane_scalar,
};
