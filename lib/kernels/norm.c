/* Normalisation for training: batch norm over a batch (statistics per
 * channel over n * hw values, in double, two-pass) and layer norm with its
 * per-row statistics saved for the backward pass. */
#include "backward.h"

#include <math.h>

void tl_bn_train_forward(int n, int c, int hw, const float *x, const float *gamma, const float *beta, float eps,
                         float *y, float *mean, float *var_biased, float *invstd, int c0, int c1)
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

void tl_bn_update_running(int c, int64_t m, float momentum, const float *mean, const float *var_biased,
                          float *running_mean, float *running_var)
{
    /* one value per channel has no unbiased variance (PyTorch refuses to
     * train then); keep the biased one rather than divide by zero */
    double unbias = m > 1 ? (double)m / (double)(m - 1) : 1.0;
    for (int ch = 0; ch < c; ch++) {
        running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + (double)momentum * mean[ch]);
        running_var[ch] =
            (float)((1.0 - momentum) * running_var[ch] + (double)momentum * var_biased[ch] * unbias);
    }
}

void tl_bn_train_backward(int n, int c, int hw, const float *x, const float *dy, const float *gamma,
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

void tl_layernorm_forward_save(int rows, int d, const float *x, const float *gamma, const float *beta, float eps,
                               float *y, float *mean, float *invstd)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * d;
        float *yr = y + (size_t)r * d;
        double sum = 0;
        for (int i = 0; i < d; i++)
            sum += xr[i];
        double mu = sum / d, sq = 0;
        for (int i = 0; i < d; i++) {
            double c = xr[i] - mu;
            sq += c * c;
        }
        float inv = (float)(1.0 / sqrt(sq / d + eps)), fm = (float)mu;
        mean[r] = fm;
        invstd[r] = inv;
        for (int i = 0; i < d; i++)
            yr[i] = (xr[i] - fm) * inv * (gamma ? gamma[i] : 1.0f) + (beta ? beta[i] : 0.0f);
    }
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
