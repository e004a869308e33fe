/* Batch norm, forward and backward: in training mode (batch statistics),
 * the running statistics' update, and in evaluation mode (running
 * statistics: a frozen batch norm in a network that trains, or one folded
 * into a per-channel affine map for inference).
 *
 * Training mode: sums per image plane run in 16 float lanes (vectorised by
 * GCC at -O2: fixed-width blocks over restrict pointers, no branches) and
 * planes are added in double, in a fixed order; statistics stay two-pass.
 * tests/unit/kernels_ref.c holds the plain scalar version they are checked
 * against. */
#include "simd.h"

#include <math.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#define LANES 16

/* These loops spend their time on instructions, not memory, once a channel's
 * planes sit in L2: each entry point is compiled three times (SSE2, AVX2,
 * AVX-512) and picked by the caller's workspace (its path: TL_SIMD read
 * once, when the workspace was made), so TL_SIMD tests every copy on
 * one machine. The lanes and their order are the same and -std=c11
 * contracts no multiply-add, so all copies give the same bits. */
#if defined(__x86_64__) && defined(__GNUC__)
#define TL_BN_PATHS 1
#define TL_AVX2 __attribute__((target("avx2")))
#define TL_AVX512 __attribute__((target("avx512f")))
#endif

static inline __attribute__((always_inline)) double lanes_total(const float *acc)
{
    double s = 0;
    for (int j = 0; j < LANES; j++)
        s += acc[j];
    return s;
}

static inline __attribute__((always_inline)) double plane_sum(const float *restrict x, size_t n)
{
    float acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++)
            acc[j] += x[i + j];
    double s = lanes_total(acc);
    for (; i < n; i++)
        s += x[i];
    return s;
}

static inline __attribute__((always_inline)) double plane_sqdev(const float *restrict x, size_t n, float mu)
{
    float acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) {
            float d = x[i + j] - mu;
            acc[j] += d * d;
        }
    double s = lanes_total(acc);
    for (; i < n; i++) {
        double d = (double)x[i] - mu;
        s += d * d;
    }
    return s;
}

static inline __attribute__((always_inline)) void plane_affine(float *restrict y, const float *restrict x, size_t n, float mu, float scale, float shift)
{
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (size_t j = i; j < i + LANES; j++)
            y[j] = (x[j] - mu) * scale + shift;
    for (; i < n; i++)
        y[i] = (x[i] - mu) * scale + shift;
}

/* sum dy and sum dy * xhat over one plane */
static inline __attribute__((always_inline)) void plane_dsums(const float *restrict x, const float *restrict dy, size_t n, float mu, float inv, double *sdy,
                        double *sdyx)
{
    float a[LANES] = {0}, b[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) {
            a[j] += dy[i + j];
            b[j] += dy[i + j] * ((x[i + j] - mu) * inv);
        }
    double s = lanes_total(a), t = lanes_total(b);
    for (; i < n; i++) {
        s += dy[i];
        t += (double)dy[i] * ((x[i] - mu) * inv);
    }
    *sdy += s;
    *sdyx += t;
}

static inline __attribute__((always_inline)) void plane_dx(float *restrict dx, const float *restrict x, const float *restrict dy, size_t n, float k,
                     float a, float mu, float ib)
{
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (size_t j = i; j < i + LANES; j++)
            dx[j] = k * (dy[j] - a - (x[j] - mu) * ib);
    for (; i < n; i++)
        dx[i] = k * (dy[i] - a - (x[i] - mu) * ib);
}

/* plane_affine then the relu / relu6 after the batch norm, in the scalar
 * expressions of act_internal.h (the SIMD activations give their bits):
 * the same values as the two passes, one write of y instead of a write, a
 * read and a write. */
static inline __attribute__((always_inline)) void plane_affine_act(float *restrict y, const float *restrict x, size_t n,
                                                                   float mu, float scale, float shift, int act)
{
#define RELU_(v) ((v) > 0.0f ? (v) : 0.0f)
#define RELU6_(v) ((v) < 0.0f ? 0.0f : (v) > 6.0f ? 6.0f : (v))
#define AFFINE_ACT_LOOP(F)                                                                                             \
    do {                                                                                                               \
        size_t i = 0;                                                                                                  \
        for (; i + LANES <= n; i += LANES)                                                                             \
            for (size_t j = i; j < i + LANES; j++) {                                                                   \
                float v = (x[j] - mu) * scale + shift;                                                                 \
                y[j] = F(v);                                                                                           \
            }                                                                                                          \
        for (; i < n; i++) {                                                                                           \
            float v = (x[i] - mu) * scale + shift;                                                                     \
            y[i] = F(v);                                                                                               \
        }                                                                                                              \
    } while (0)
    if (act == TL_ACT_RELU) {
        AFFINE_ACT_LOOP(RELU_);
    } else if (act == TL_ACT_RELU6) {
        AFFINE_ACT_LOOP(RELU6_);
    } else {
        plane_affine(y, x, n, mu, scale, shift);
    }
}

static inline __attribute__((always_inline)) void bn_forward(int act, int n, int c, int hw, const float *x,
                                                             const float *gamma, const float *beta, float eps, float *y,
                                                             float *mean, float *var_biased, float *invstd, int c0,
                                                             int c1)
{
    const double m = (double)n * hw;
    for (int ch = c0; ch < c1; ch++) {
        double s = 0, sq = 0;
        for (int i = 0; i < n; i++)
            s += plane_sum(x + ((size_t)i * c + ch) * hw, (size_t)hw);
        double mu = s / m;
        float fm = (float)mu;
        /* deviations from the float mean; the mean's rounding is corrected
         * exactly: sum (x - fm)^2 = sum (x - mu)^2 + m (mu - fm)^2 */
        for (int i = 0; i < n; i++)
            sq += plane_sqdev(x + ((size_t)i * c + ch) * hw, (size_t)hw, fm);
        double dm = mu - fm, var = sq / m - dm * dm;
        if (var < 0)
            var = 0;
        double inv = 1.0 / sqrt(var + eps);
        mean[ch] = fm;
        if (var_biased)
            var_biased[ch] = (float)var;
        invstd[ch] = (float)inv;
        float scale = (float)(inv * (gamma ? gamma[ch] : 1.0f)), shift = beta ? beta[ch] : 0.0f;
        for (int i = 0; i < n; i++)
            plane_affine_act(y + ((size_t)i * c + ch) * hw, x + ((size_t)i * c + ch) * hw, (size_t)hw, fm, scale,
                             shift, act);
    }
}

static inline __attribute__((always_inline)) void bn_backward(int n, int c, int hw, const float *x, const float *dy,
                                                              const float *gamma, const float *mean, const float *invstd,
                                                              float *dx, float *dgamma, float *dbeta, int c0, int c1)
{
    const double m = (double)n * hw;
    for (int ch = c0; ch < c1; ch++) {
        const float mu = mean[ch], inv = invstd[ch];
        double sdy = 0, sdyx = 0;
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * c + ch) * hw;
            plane_dsums(x + off, dy + off, (size_t)hw, mu, inv, &sdy, &sdyx);
        }
        if (dgamma)
            dgamma[ch] += (float)sdyx;
        if (dbeta)
            dbeta[ch] += (float)sdy;
        /* dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)) */
        float k = (gamma ? gamma[ch] : 1.0f) * inv, a = (float)(sdy / m), b = (float)(sdyx / m);
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * c + ch) * hw;
            plane_dx(dx + off, x + off, dy + off, (size_t)hw, k, a, mu, inv * b);
        }
    }
}

/* The same sums over g = dy masked by the relu/relu6 that follows the batch
 * norm (g = dy where lo < y < hi, +0 elsewhere: tl_activation_backward's
 * values), storing g: one pass where the activation's backward and the
 * sums took two. bounded = 0: no upper limit. */
static inline __attribute__((always_inline)) void plane_dsums_act(float *restrict g, const float *restrict y,
                                                                  const float *restrict dya, const float *restrict x,
                                                                  size_t n, int bounded, float mu, float inv,
                                                                  double *sdy, double *sdyx)
{
    float a[LANES] = {0}, b[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) {
            float v = y[i + j];
            float d = v > 0.0f && (!bounded || v < 6.0f) ? dya[i + j] : 0.0f;
            if (g)
                g[i + j] = d;
            a[j] += d;
            b[j] += d * ((x[i + j] - mu) * inv);
        }
    double s = lanes_total(a), t = lanes_total(b);
    for (; i < n; i++) {
        float v = y[i];
        float d = v > 0.0f && (!bounded || v < 6.0f) ? dya[i] : 0.0f;
        if (g)
            g[i] = d;
        s += d;
        t += (double)d * ((x[i] - mu) * inv);
    }
    *sdy += s;
    *sdyx += t;
}

#if defined(TL_BN_PATHS)
/* GCC leaves the masked loop above scalar (objdump: vcomiss per element):
 * the same lanes, operations and order by hand, the off lanes +0 as the
 * C select's. Eight-float vectors on the AVX-512 path too: a 16-float
 * copy (compares into mask registers, zero-masked moves) ran 1.5-2x
 * slower on 7x7 and 14x14 planes than this one, measured on Zen 5. */
TL_AVX2 static void plane_dsums_act_avx2(float *g, const float *y, const float *dya, const float *x, size_t n,
                                         int bounded, float mu, float inv, double *sdy, double *sdyx)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
    const __m256 vmu = _mm256_set1_ps(mu), vinv = _mm256_set1_ps(inv), zero = _mm256_setzero_ps(),
                 six = _mm256_set1_ps(bounded ? 6.0f : INFINITY);
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        __m256 v0 = _mm256_loadu_ps(y + i), v1 = _mm256_loadu_ps(y + i + 8);
        __m256 m0 = _mm256_cmp_ps(v0, zero, _CMP_GT_OQ), m1 = _mm256_cmp_ps(v1, zero, _CMP_GT_OQ);
        if (bounded) {
            m0 = _mm256_and_ps(m0, _mm256_cmp_ps(v0, six, _CMP_LT_OQ));
            m1 = _mm256_and_ps(m1, _mm256_cmp_ps(v1, six, _CMP_LT_OQ));
        }
        __m256 d0 = _mm256_and_ps(m0, _mm256_loadu_ps(dya + i)), d1 = _mm256_and_ps(m1, _mm256_loadu_ps(dya + i + 8));
        if (g) {
            _mm256_storeu_ps(g + i, d0);
            _mm256_storeu_ps(g + i + 8, d1);
        }
        a0 = _mm256_add_ps(a0, d0);
        a1 = _mm256_add_ps(a1, d1);
        b0 = _mm256_add_ps(b0, _mm256_mul_ps(d0, _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmu), vinv)));
        b1 = _mm256_add_ps(b1, _mm256_mul_ps(d1, _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vmu), vinv)));
    }
    float la[LANES], lb[LANES];
    _mm256_storeu_ps(la, a0);
    _mm256_storeu_ps(la + 8, a1);
    _mm256_storeu_ps(lb, b0);
    _mm256_storeu_ps(lb + 8, b1);
    double s = lanes_total(la), t = lanes_total(lb);
    if (i < n) { /* the tail: lanes over zero-padded copies (masked loads and
                  * stores cost more), added in double in order as the C */
        size_t r = n - i;
        float yt[LANES] = {0}, dt[LANES] = {0}, xt[LANES] = {0};
        memcpy(yt, y + i, r * sizeof(float));
        memcpy(dt, dya + i, r * sizeof(float));
        memcpy(xt, x + i, r * sizeof(float));
        for (int h = 0; h < LANES; h += 8) {
            __m256 v = _mm256_loadu_ps(yt + h);
            __m256 m = _mm256_cmp_ps(v, zero, _CMP_GT_OQ);
            if (bounded)
                m = _mm256_and_ps(m, _mm256_cmp_ps(v, six, _CMP_LT_OQ));
            _mm256_storeu_ps(la + h, _mm256_and_ps(m, _mm256_loadu_ps(dt + h)));
            _mm256_storeu_ps(lb + h, _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xt + h), vmu), vinv));
        }
        if (g)
            memcpy(g + i, la, r * sizeof(float));
        for (size_t k = 0; k < r; k++) {
            s += la[k];
            t += (double)la[k] * lb[k];
        }
    }
    *sdy += s;
    *sdyx += t;
}
/* plane_dx on g = dya masked by y, g taken again from y and dya instead of
 * stored by the sums' pass and read back: a write of the tensor fewer. The
 * same operations element by element as plane_dx, so the same bits; dx may
 * be dya (each element read before it is written). */
TL_AVX2 static void plane_dx_act_avx2(float *dx, const float *x, const float *y, const float *dya, size_t n,
                                      int bounded, float k, float a, float mu, float ib)
{
    const __m256 vk = _mm256_set1_ps(k), va = _mm256_set1_ps(a), vmu = _mm256_set1_ps(mu), vib = _mm256_set1_ps(ib),
                 zero = _mm256_setzero_ps(), six = _mm256_set1_ps(bounded ? 6.0f : INFINITY);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(y + i);
        __m256 m = _mm256_cmp_ps(v, zero, _CMP_GT_OQ);
        if (bounded)
            m = _mm256_and_ps(m, _mm256_cmp_ps(v, six, _CMP_LT_OQ));
        __m256 d = _mm256_and_ps(m, _mm256_loadu_ps(dya + i));
        __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmu), vib);
        _mm256_storeu_ps(dx + i, _mm256_mul_ps(vk, _mm256_sub_ps(_mm256_sub_ps(d, va), t)));
    }
    for (; i < n; i++) {
        float v = y[i];
        float d = v > 0.0f && (!bounded || v < 6.0f) ? dya[i] : 0.0f;
        dx[i] = k * (d - a - (x[i] - mu) * ib);
    }
}
#endif

static inline __attribute__((always_inline)) void plane_dx_act(float *dx, const float *x, const float *y,
                                                               const float *dya, size_t n, int bounded, float k,
                                                               float a, float mu, float ib)
{
    for (size_t i = 0; i < n; i++) {
        float v = y[i];
        float d = v > 0.0f && (!bounded || v < 6.0f) ? dya[i] : 0.0f;
        dx[i] = k * (d - a - (x[i] - mu) * ib);
    }
}

/* width: TL_SIMD_* of the caller's copy (AVX2 and up take the hand-written sums) */
static inline __attribute__((always_inline)) void bn_backward_act(int n, int c, int hw, const float *x, const float *y,
                                                                  const float *dya, int bounded, float *g,
                                                                  const float *gamma, const float *mean,
                                                                  const float *invstd, float *dx, float *dgamma,
                                                                  float *dbeta, int c0, int c1, int width)
{
    const double m = (double)n * hw;
    for (int ch = c0; ch < c1; ch++) {
        const float mu = mean[ch], inv = invstd[ch];
        double sdy = 0, sdyx = 0;
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * c + ch) * hw;
            float *gp = g ? g + off : NULL;
#if defined(TL_BN_PATHS)
            if (width >= TL_SIMD_AVX2)
                plane_dsums_act_avx2(gp, y + off, dya + off, x + off, (size_t)hw, bounded, mu, inv, &sdy, &sdyx);
            else
#endif
                plane_dsums_act(gp, y + off, dya + off, x + off, (size_t)hw, bounded, mu, inv, &sdy, &sdyx);
        }
        if (dgamma)
            dgamma[ch] += (float)sdyx;
        if (dbeta)
            dbeta[ch] += (float)sdy;
        float k = (gamma ? gamma[ch] : 1.0f) * inv, a = (float)(sdy / m), b = (float)(sdyx / m);
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * c + ch) * hw;
            if (g)
                plane_dx(dx + off, x + off, g + off, (size_t)hw, k, a, mu, inv * b);
#if defined(TL_BN_PATHS)
            else if (width >= TL_SIMD_AVX2)
                plane_dx_act_avx2(dx + off, x + off, y + off, dya + off, (size_t)hw, bounded, k, a, mu, inv * b);
#endif
            else
                plane_dx_act(dx + off, x + off, y + off, dya + off, (size_t)hw, bounded, k, a, mu, inv * b);
        }
    }
}

#define FWD_ARGS int act, int n, int c, int hw, const float *x, const float *gamma, const float *beta, float eps, float *y, \
                 float *mean, float *var_biased, float *invstd, int c0, int c1
#define FWD_PASS act, n, c, hw, x, gamma, beta, eps, y, mean, var_biased, invstd, c0, c1
#define BWD_ARGS int n, int c, int hw, const float *x, const float *dy, const float *gamma, const float *mean, \
                 const float *invstd, float *dx, float *dgamma, float *dbeta, int c0, int c1
#define BWD_PASS n, c, hw, x, dy, gamma, mean, invstd, dx, dgamma, dbeta, c0, c1

#if defined(TL_BN_PATHS)
TL_AVX2 static void bn_forward_avx2(FWD_ARGS) { bn_forward(FWD_PASS); }
TL_AVX512 static void bn_forward_avx512(FWD_ARGS) { bn_forward(FWD_PASS); }
TL_AVX2 static void bn_backward_avx2(BWD_ARGS) { bn_backward(BWD_PASS); }
TL_AVX512 static void bn_backward_avx512(BWD_ARGS) { bn_backward(BWD_PASS); }
#endif

void tl_batchnorm_train_forward_act(const tl_kws *ws, FWD_ARGS)
{
#if defined(TL_BN_PATHS)
    int level = ws->impl->level;
    if (level >= TL_SIMD_AVX512)
        bn_forward_avx512(FWD_PASS);
    else if (level == TL_SIMD_AVX2)
        bn_forward_avx2(FWD_PASS);
    else
#endif
        bn_forward(FWD_PASS);
    (void)ws;
}

void tl_batchnorm_train_forward(const tl_kws *ws, int n, int c, int hw, const float *x, const float *gamma,
                                const float *beta, float eps, float *y, float *mean, float *var_biased, float *invstd,
                                int c0, int c1)
{
    tl_batchnorm_train_forward_act(ws, TL_ACT_NONE, n, c, hw, x, gamma, beta, eps, y, mean, var_biased, invstd, c0, c1);
}

void tl_batchnorm_train_backward(const tl_kws *ws, BWD_ARGS)
{
#if defined(TL_BN_PATHS)
    int level = ws->impl->level;
    if (level >= TL_SIMD_AVX512)
        bn_backward_avx512(BWD_PASS);
    else if (level == TL_SIMD_AVX2)
        bn_backward_avx2(BWD_PASS);
    else
#endif
        bn_backward(BWD_PASS);
    (void)ws;
}

#define BWD_ACT_ARGS int n, int c, int hw, const float *x, const float *y, const float *dya, int bounded, float *g, \
                     const float *gamma, const float *mean, const float *invstd, float *dx, float *dgamma, \
                     float *dbeta, int c0, int c1
#define BWD_ACT_PASS n, c, hw, x, y, dya, bounded, g, gamma, mean, invstd, dx, dgamma, dbeta, c0, c1
#if defined(TL_BN_PATHS)
TL_AVX2 static void bn_backward_act_avx2(BWD_ACT_ARGS) { bn_backward_act(BWD_ACT_PASS, TL_SIMD_AVX2); }
TL_AVX512 static void bn_backward_act_avx512(BWD_ACT_ARGS) { bn_backward_act(BWD_ACT_PASS, TL_SIMD_AVX512); }
#endif

void tl_batchnorm_train_backward_act(const tl_kws *ws, int act, int n, int c, int hw, const float *x, const float *y,
                                     const float *dya, float *g, const float *gamma, const float *mean,
                                     const float *invstd, float *dx, float *dgamma, float *dbeta, int c0, int c1)
{
    int bounded = act == TL_ACT_RELU6, level = ws->impl->level;
#if defined(TL_BN_PATHS)
    if (level >= TL_SIMD_AVX512)
        bn_backward_act_avx512(BWD_ACT_PASS);
    else if (level == TL_SIMD_AVX2)
        bn_backward_act_avx2(BWD_ACT_PASS);
    else
#endif
        bn_backward_act(BWD_ACT_PASS, TL_SIMD_SCALAR);
    (void)level;
}

/* ---- training mode cut where processes add up their sums (synchronised
 * batch norm): the same plane loops, each stage over channels [c0, c1) ---- */

static inline __attribute__((always_inline)) void bn_sums(int n, int c, int hw, const float *x, double *sum, int c0,
                                                          int c1)
{
    for (int ch = c0; ch < c1; ch++) {
        double s = 0;
        for (int i = 0; i < n; i++)
            s += plane_sum(x + ((size_t)i * c + ch) * hw, (size_t)hw);
        sum[ch] = s;
    }
}

static inline __attribute__((always_inline)) void bn_sqdevs(int n, int c, int hw, const float *x, const float *mean,
                                                            double *sq, int c0, int c1)
{
    for (int ch = c0; ch < c1; ch++) {
        double s = 0;
        for (int i = 0; i < n; i++)
            s += plane_sqdev(x + ((size_t)i * c + ch) * hw, (size_t)hw, mean[ch]);
        sq[ch] = s;
    }
}

static inline __attribute__((always_inline)) void bn_apply(int n, int c, int hw, const float *x, const float *gamma,
                                                           const float *beta, const float *mean, const float *invstd,
                                                           float *y, int c0, int c1)
{
    for (int ch = c0; ch < c1; ch++) {
        float scale = invstd[ch] * (gamma ? gamma[ch] : 1.0f), shift = beta ? beta[ch] : 0.0f;
        for (int i = 0; i < n; i++)
            plane_affine(y + ((size_t)i * c + ch) * hw, x + ((size_t)i * c + ch) * hw, (size_t)hw, mean[ch], scale,
                         shift);
    }
}

static inline __attribute__((always_inline)) void bn_dsums(int n, int c, int hw, const float *x, const float *dy,
                                                           const float *mean, const float *invstd, double *sdy,
                                                           double *sdyx, int c0, int c1)
{
    for (int ch = c0; ch < c1; ch++) {
        double a = 0, b = 0;
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * c + ch) * hw;
            plane_dsums(x + off, dy + off, (size_t)hw, mean[ch], invstd[ch], &a, &b);
        }
        sdy[ch] = a;
        sdyx[ch] = b;
    }
}

static inline __attribute__((always_inline)) void bn_dx(int n, int c, int hw, const float *x, const float *dy,
                                                        const float *gamma, const float *mean, const float *invstd,
                                                        const double *sdy, const double *sdyx, double m, float *dx,
                                                        int c0, int c1)
{
    for (int ch = c0; ch < c1; ch++) {
        float inv = invstd[ch], k = (gamma ? gamma[ch] : 1.0f) * inv, a = (float)(sdy[ch] / m),
              b = (float)(sdyx[ch] / m);
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * c + ch) * hw;
            plane_dx(dx + off, x + off, dy + off, (size_t)hw, k, a, mean[ch], inv * b);
        }
    }
}

#define SUMS_ARGS int n, int c, int hw, const float *x, double *sum, int c0, int c1
#define SUMS_PASS n, c, hw, x, sum, c0, c1
#define SQ_ARGS int n, int c, int hw, const float *x, const float *mean, double *sq, int c0, int c1
#define SQ_PASS n, c, hw, x, mean, sq, c0, c1
#define APPLY_ARGS int n, int c, int hw, const float *x, const float *gamma, const float *beta, const float *mean, \
                   const float *invstd, float *y, int c0, int c1
#define APPLY_PASS n, c, hw, x, gamma, beta, mean, invstd, y, c0, c1
#define DSUMS_ARGS int n, int c, int hw, const float *x, const float *dy, const float *mean, const float *invstd, \
                   double *sdy, double *sdyx, int c0, int c1
#define DSUMS_PASS n, c, hw, x, dy, mean, invstd, sdy, sdyx, c0, c1
#define DX_ARGS int n, int c, int hw, const float *x, const float *dy, const float *gamma, const float *mean, \
                const float *invstd, const double *sdy, const double *sdyx, double m, float *dx, int c0, int c1
#define DX_PASS n, c, hw, x, dy, gamma, mean, invstd, sdy, sdyx, m, dx, c0, c1

/* one entry point per stage, its three compiled copies picked as above */
#if defined(TL_BN_PATHS)
#define STAGE(name, fn, ARGS, PASS)                                                                                   \
    TL_AVX2 static void fn##_avx2(ARGS) { fn(PASS); }                                                                 \
    TL_AVX512 static void fn##_avx512(ARGS) { fn(PASS); }                                                             \
    void name(const tl_kws *ws, ARGS)                                                                                 \
    {                                                                                                                 \
        int level = ws->impl->level;                                                                                  \
        if (level >= TL_SIMD_AVX512)                                                                                  \
            fn##_avx512(PASS);                                                                                        \
        else if (level == TL_SIMD_AVX2)                                                                               \
            fn##_avx2(PASS);                                                                                          \
        else                                                                                                          \
            fn(PASS);                                                                                                 \
    }
#else
#define STAGE(name, fn, ARGS, PASS)                                                                                   \
    void name(const tl_kws *ws, ARGS)                                                                                 \
    {                                                                                                                 \
        (void)ws;                                                                                                     \
        fn(PASS);                                                                                                     \
    }
#endif
STAGE(tl_batchnorm_sync_sums, bn_sums, SUMS_ARGS, SUMS_PASS)
STAGE(tl_batchnorm_sync_sqdevs, bn_sqdevs, SQ_ARGS, SQ_PASS)
STAGE(tl_batchnorm_sync_apply, bn_apply, APPLY_ARGS, APPLY_PASS)
STAGE(tl_batchnorm_sync_dsums, bn_dsums, DSUMS_ARGS, DSUMS_PASS)
STAGE(tl_batchnorm_sync_dx, bn_dx, DX_ARGS, DX_PASS)

void tl_batchnorm_sync_stats(int c, double m, const double *sum, const double *sq, float eps, float *mean,
                             float *var_biased, float *invstd)
{
    for (int ch = 0; ch < c; ch++) {
        /* as bn_forward: the squared deviations were taken from the float
         * mean, whose rounding is corrected exactly */
        double mu = sum[ch] / m, dm = mu - mean[ch], var = sq[ch] / m - dm * dm;
        if (var < 0)
            var = 0;
        if (var_biased)
            var_biased[ch] = (float)var;
        invstd[ch] = (float)(1.0 / sqrt(var + eps));
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

/* ------------------------------------------------------- evaluation mode */

void tl_batchnorm_eval_forward(int c, int hw, const float *x, const float *gamma, const float *beta,
                               const float *mean, const float *var, float eps, float *y)
{
    for (int ch = 0; ch < c; ch++) {
        float sc = gamma[ch] / sqrtf(var[ch] + eps);
        float sh = beta[ch] - mean[ch] * sc;
        const float *xc = x + (size_t)ch * hw;
        float *yc = y + (size_t)ch * hw;
        for (int k = 0; k < hw; k++)
            yc[k] = xc[k] * sc + sh;
    }
}

void tl_batchnorm_eval_backward_data(int c, int hw, const float *dy, const float *gamma, const float *var, float eps,
                                     float *dx)
{
    for (int ch = 0; ch < c; ch++) {
        float sc = gamma[ch] / sqrtf(var[ch] + eps);
        const float *dyc = dy + (size_t)ch * hw;
        float *dxc = dx + (size_t)ch * hw;
        for (int k = 0; k < hw; k++)
            dxc[k] = dyc[k] * sc;
    }
}

void tl_batchnorm_eval_backward_params(int n, int c, int hw, const float *x, const float *dy, const float *mean,
                                       const float *var, float eps, float *dgamma, float *dbeta, int c0, int c1)
{
    for (int ch = c0; ch < c1; ch++) {
        float is = 1.0f / sqrtf(var[ch] + eps), mu = mean[ch];
        double sg = 0, sb = 0;
        for (int b = 0; b < n; b++) {
            const float *xb = x + ((size_t)b * c + ch) * hw, *dyb = dy + ((size_t)b * c + ch) * hw;
            for (int k = 0; k < hw; k++) {
                sg += (double)dyb[k] * (xb[k] - mu) * is;
                sb += dyb[k];
            }
        }
        if (dgamma)
            dgamma[ch] += (float)sg;
        if (dbeta)
            dbeta[ch] += (float)sb;
    }
}

void tl_channel_affine(int hw, const float *x, const float *scale, const float *shift, float *y, int c0, int c1)
{
    for (int ch = c0; ch < c1; ch++) {
        const float *xc = x + (size_t)ch * hw;
        float *yc = y + (size_t)ch * hw;
        for (int k = 0; k < hw; k++)
            yc[k] = xc[k] * scale[ch] + shift[ch];
    }
}
