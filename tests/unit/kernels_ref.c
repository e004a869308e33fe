/* Reference kernels for the unit tests: plain scalar versions the
 * library's vectorised kernels are checked against, and the convolution
 * forward as one call (weights packed each time). Test-only: never linked
 * into the library. */
#include "kernels_ref.h"

#include <math.h>
#include <stdlib.h>

/* Batch norm in training mode, the obvious loops (double sums, two-pass):
 * the contract of tl_batchnorm_train_forward / _backward. */
void tl_bn_train_forward_ref(int n, int c, int hw, const float *x, const float *gamma, const float *beta,
                             float eps, float *y, float *mean, float *var_biased, float *invstd, int c0, int c1)
{
    const double m = (double)n * hw;
    for (int ch = c0; ch < c1; ch++) {
        double s = 0;
        for (int i = 0; i < n; i++) {
            const float *xr = x + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++)
                s += xr[j];
        }
        double mu = s / m, sq = 0;
        for (int i = 0; i < n; i++) {
            const float *xr = x + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++) {
                double d = xr[j] - mu;
                sq += d * d;
            }
        }
        double var = sq / m, inv = 1.0 / sqrt(var + eps);
        mean[ch] = (float)mu;
        if (var_biased)
            var_biased[ch] = (float)var;
        invstd[ch] = (float)inv;
        float scale = (float)(inv * (gamma ? gamma[ch] : 1.0f)), shift = beta ? beta[ch] : 0.0f, fm = (float)mu;
        for (int i = 0; i < n; i++) {
            const float *xr = x + ((size_t)i * c + ch) * hw;
            float *yr = y + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++)
                yr[j] = (xr[j] - fm) * scale + shift;
        }
    }
}

void tl_bn_train_backward_ref(int n, int c, int hw, const float *x, const float *dy, const float *gamma,
                              const float *mean, const float *invstd, float *dx, float *dgamma, float *dbeta, int c0,
                              int c1)
{
    const double m = (double)n * hw;
    for (int ch = c0; ch < c1; ch++) {
        const float mu = mean[ch], inv = invstd[ch];
        double sdy = 0, sdyx = 0; /* sum dy, sum dy * xhat */
        for (int i = 0; i < n; i++) {
            const float *xr = x + ((size_t)i * c + ch) * hw, *dr = dy + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++) {
                sdy += dr[j];
                sdyx += (double)dr[j] * ((xr[j] - mu) * inv);
            }
        }
        if (dgamma)
            dgamma[ch] += (float)sdyx;
        if (dbeta)
            dbeta[ch] += (float)sdy;
        /* dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)) */
        float k = (gamma ? gamma[ch] : 1.0f) * inv, a = (float)(sdy / m), b = (float)(sdyx / m);
        for (int i = 0; i < n; i++) {
            const float *xr = x + ((size_t)i * c + ch) * hw, *dr = dy + ((size_t)i * c + ch) * hw;
            float *o = dx + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++)
                o[j] = k * (dr[j] - a - (xr[j] - mu) * inv * b);
        }
    }
}

void conv_forward_once(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *w, const float *bias, int act,
                         float *y)
{
    float *packed = tl_alloc_array(tl_conv_packed_floats(ws, g), sizeof(float));
    float *scratch = tl_alloc_array(tl_conv_forward_scratch_floats(ws, g) + 1, sizeof(float));
    if (!packed || !scratch)
        abort();
    tl_conv_pack(ws, g, w, packed);
    tl_conv_forward_packed(ws, g, x, packed, bias, act, y, 0, 1, scratch);
    tl_free(packed);
    tl_free(scratch);
}
