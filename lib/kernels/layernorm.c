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

/* y = (x - m) * inv * gamma + beta over a row, float operations left to
 * right (the vector paths repeat them lane for lane) */
static void row_norm(const float *xr, int d, float m, float inv, const float *gamma, const float *beta, float *yr)
{
    for (int i = 0; i < d; i++)
        yr[i] = (xr[i] - m) * inv * gamma[i] + beta[i];
}

/* A row's mean and variance (centred squares), both in double, in the
 * order above: element i into sum i % LN_SUMS, folded pairwise. */
static void row_stats(const float *xr, int d, double *mean, double *var)
{
    double s[LN_SUMS] = {0};
    for (int i = 0; i < d; i++)
        s[i % LN_SUMS] += xr[i];
    double mu = fold(s) / d;
    for (int i = 0; i < d; i++) {
        double c = xr[i] - mu;
        s[i % LN_SUMS] += c * c;
    }
    *mean = mu;
    *var = fold(s) / d;
}

/* The same sums with sum j in lane j of one (AVX-512) or two (AVX2)
 * vectors of doubles, multiply and add not fused (-std=c11 contracts
 * none): the same bits as row_stats, at 8 elements a step. */
#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f"))) static void row_stats_avx512(const float *xr, int d, double *mean, double *var)
{
    double s[LN_SUMS];
    __m512d acc = _mm512_setzero_pd();
    int i = 0;
    for (; i + 8 <= d; i += 8)
        acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm256_loadu_ps(xr + i)));
    _mm512_storeu_pd(s, acc);
    for (int j = i; j < d; j++)
        s[j % LN_SUMS] += xr[j];
    double mu = fold(s) / d;
    const __m512d vm = _mm512_set1_pd(mu);
    acc = _mm512_setzero_pd();
    for (i = 0; i + 8 <= d; i += 8) {
        __m512d c = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(xr + i)), vm);
        acc = _mm512_add_pd(acc, _mm512_mul_pd(c, c));
    }
    _mm512_storeu_pd(s, acc);
    for (int j = i; j < d; j++) {
        double c = xr[j] - mu;
        s[j % LN_SUMS] += c * c;
    }
    *mean = mu;
    *var = fold(s) / d;
}

__attribute__((target("avx512f"))) static void row_norm_avx512(const float *xr, int d, float m, float inv,
                                                              const float *gamma, const float *beta, float *yr)
{
    const __m512 vm = _mm512_set1_ps(m), vi = _mm512_set1_ps(inv);
    int i = 0;
    for (; i + 16 <= d; i += 16) {
        __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(xr + i), vm), vi);
        _mm512_storeu_ps(yr + i, _mm512_add_ps(_mm512_mul_ps(v, _mm512_loadu_ps(gamma + i)), _mm512_loadu_ps(beta + i)));
    }
    row_norm(xr + i, d - i, m, inv, gamma + i, beta + i, yr + i);
}

__attribute__((target("avx2"))) static void row_norm_avx2(const float *xr, int d, float m, float inv,
                                                          const float *gamma, const float *beta, float *yr)
{
    const __m256 vm = _mm256_set1_ps(m), vi = _mm256_set1_ps(inv);
    int i = 0;
    for (; i + 8 <= d; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + i), vm), vi);
        _mm256_storeu_ps(yr + i, _mm256_add_ps(_mm256_mul_ps(v, _mm256_loadu_ps(gamma + i)), _mm256_loadu_ps(beta + i)));
    }
    row_norm(xr + i, d - i, m, inv, gamma + i, beta + i, yr + i);
}

__attribute__((target("avx2"))) static void row_stats_avx2(const float *xr, int d, double *mean, double *var)
{
    double s[LN_SUMS];
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    int i = 0;
    for (; i + 8 <= d; i += 8) {
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm_loadu_ps(xr + i)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm_loadu_ps(xr + i + 4)));
    }
    _mm256_storeu_pd(s, lo);
    _mm256_storeu_pd(s + 4, hi);
    for (int j = i; j < d; j++)
        s[j % LN_SUMS] += xr[j];
    double mu = fold(s) / d;
    const __m256d vm = _mm256_set1_pd(mu);
    lo = hi = _mm256_setzero_pd();
    for (i = 0; i + 8 <= d; i += 8) {
        __m256d c0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(xr + i)), vm);
        __m256d c1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(xr + i + 4)), vm);
        lo = _mm256_add_pd(lo, _mm256_mul_pd(c0, c0));
        hi = _mm256_add_pd(hi, _mm256_mul_pd(c1, c1));
    }
    _mm256_storeu_pd(s, lo);
    _mm256_storeu_pd(s + 4, hi);
    for (int j = i; j < d; j++) {
        double c = xr[j] - mu;
        s[j % LN_SUMS] += c * c;
    }
    *mean = mu;
    *var = fold(s) / d;
}
#endif

typedef struct {
    void (*stats)(const float *, int, double *, double *);
    void (*norm)(const float *, int, float, float, const float *, const float *, float *);
} row_fns;

static row_fns row_fns_for(int level)
{
#if defined(__x86_64__)
    if (level >= TL_SIMD_AVX512)
        return (row_fns){row_stats_avx512, row_norm_avx512};
    if (level >= TL_SIMD_AVX2)
        return (row_fns){row_stats_avx2, row_norm_avx2};
#endif
    (void)level;
    return (row_fns){row_stats, row_norm};
}

void tl_layernorm_forward_save(int rows, int d, const float *x, const float *gamma, const float *beta, float eps,
                               float *y, float *mean, float *invstd)
{
    const row_fns f = row_fns_for(tl_simd_level());
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * d;
        float *yr = y + (size_t)r * d;
        double mu, var;
        f.stats(xr, d, &mu, &var);
        float inv = (float)(1.0 / sqrt(var + eps)), fm = (float)mu;
        if (mean)
            mean[r] = fm;
        if (invstd)
            invstd[r] = inv;
        if (gamma && beta)
            f.norm(xr, d, fm, inv, gamma, beta, yr);
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
