/* Layer norm over the last dimension, forward (at inference, and with the
 * per-row statistics saved for training) and backward. Statistics are
 * taken in double, two-pass: the mean first, then the centred squares,
 * which stays accurate when |mean| >> std. */
#include "kernels.h"

#include <math.h>

/* Row sums in LN_SUMS running sums (element i into sum i % LN_SUMS),
 * folded pairwise: independent chains instead of one add's latency per
 * element, in an order fixed by the row alone. */
#define LN_SUMS 8

/* s[0] + ... + s[7] folded 4, 2, 1 apart; leaves s zeroed for the next sum */
static double fold(double *s)
{
    for (int w = LN_SUMS / 2; w >= 1; w /= 2)
        for (int j = 0; j < w; j++)
            s[j] += s[j + w];
    double t = s[0];
    for (int j = 0; j < LN_SUMS; j++)
        s[j] = 0;
    return t;
}

void tl_layernorm_forward_save(int rows, int d, const float *x, const float *gamma, const float *beta, float eps,
                               float *y, float *mean, float *invstd)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * d;
        float *yr = y + (size_t)r * d;
        double s[LN_SUMS] = {0};
        for (int i = 0; i < d; i++)
            s[i % LN_SUMS] += xr[i];
        double mu = fold(s) / d;
        for (int i = 0; i < d; i++) {
            double c = xr[i] - mu;
            s[i % LN_SUMS] += c * c;
        }
        float inv = (float)(1.0 / sqrt(fold(s) / d + eps)), fm = (float)mu;
        if (mean)
            mean[r] = fm;
        if (invstd)
            invstd[r] = inv;
        if (gamma && beta) /* no per-element choice: the loop vectorises */
            for (int i = 0; i < d; i++)
                yr[i] = (xr[i] - fm) * inv * gamma[i] + beta[i];
        else
            for (int i = 0; i < d; i++)
                yr[i] = (xr[i] - fm) * inv * (gamma ? gamma[i] : 1.0f) + (beta ? beta[i] : 0.0f);
    }
}

void tl_layernorm(int rows, int d, const float *x, const float *gamma, const float *beta, float eps, float *y)
{
    tl_layernorm_forward_save(rows, d, x, gamma, beta, eps, y, NULL, NULL);
}

void tl_layernorm_backward_data(int rows, int d, const float *x, const float *gamma, const float *mean,
                                const float *invstd, const float *dy, float *dx)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * d, *dr = dy + (size_t)r * d;
        float *o = dx + (size_t)r * d;
        const float mu = mean[r], inv = invstd[r];
        double sg = 0, sgx = 0; /* sum g, sum g * xhat with g = dy * gamma */
        for (int i = 0; i < d; i++) {
            float gi = dr[i] * (gamma ? gamma[i] : 1.0f);
            sg += gi;
            sgx += (double)gi * ((xr[i] - mu) * inv);
        }
        float a = (float)(sg / d), b = (float)(sgx / d);
        for (int i = 0; i < d; i++) {
            float gi = dr[i] * (gamma ? gamma[i] : 1.0f);
            o[i] = inv * (gi - a - (xr[i] - mu) * inv * b);
        }
    }
}

/* column blocks with double accumulators on the stack keep the row walk contiguous */
#define LN_BLOCK 64

void tl_layernorm_backward_params(int rows, int d, const float *x, const float *mean, const float *invstd,
                                  const float *dy, float *dgamma, float *dbeta, int d0, int d1)
{
    for (int j0 = d0; j0 < d1; j0 += LN_BLOCK) {
        int nb = d1 - j0 < LN_BLOCK ? d1 - j0 : LN_BLOCK;
        double sg[LN_BLOCK] = {0}, sb[LN_BLOCK] = {0};
        for (int r = 0; r < rows; r++) {
            const float *xr = x + (size_t)r * d + j0, *dr = dy + (size_t)r * d + j0;
            const float mu = mean[r], inv = invstd[r];
            for (int j = 0; j < nb; j++) {
                sg[j] += (double)dr[j] * ((xr[j] - mu) * inv);
                sb[j] += dr[j];
            }
        }
        for (int j = 0; j < nb; j++) {
            if (dgamma)
                dgamma[j0 + j] += (float)sg[j];
            if (dbeta)
                dbeta[j0 + j] += (float)sb[j];
        }
    }
}
