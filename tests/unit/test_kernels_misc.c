/* Activations, bias + activation, softmax and the linear layer. */
#include "check.h"
#include "kernels/act_internal.h"
#include "kernels/kernels.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* like fmax, but a NaN difference wins so it cannot hide */
static double worse(double a, double b) { return isnan(a) || a >= b ? a : b; }

static double act_ref(int act, double v)
{
    double hs = fmin(fmax(v + 3, 0), 6) / 6, sg = 1 / (1 + exp(-v));
    switch (act) {
    case TL_ACT_RELU: return v > 0 ? v : 0;
    case TL_ACT_RELU6: return v < 0 ? 0 : v > 6 ? 6 : v;
    case TL_ACT_SIGMOID: return sg;
    case TL_ACT_SILU: return v * sg;
    case TL_ACT_HARDSIGMOID: return hs;
    case TL_ACT_HARDSWISH: return v * hs;
    case TL_ACT_GELU: return 0.5 * v * erfc(-v / sqrt(2.0));
    default: return v;
    }
}

static void test_activation(void)
{
    enum { N = 37 };
    for (int act = TL_ACT_NONE; act <= TL_ACT_GELU; act++) {
        float x[N];
        for (int i = 0; i < N; i++)
            x[i] = -9.0f + 0.5f * i;
        tl_activation(act, x, N);
        int bad = 0;
        for (int i = 0; i < N; i++)
            bad += !(fabs(x[i] - act_ref(act, -9.0 + 0.5 * i)) <= 1e-6 * (1 + fabs(x[i])));
        CHECK_MSG(bad == 0, "activation %d: %d bad", act, bad);
    }
    /* bias then activation, per channel, on a strided block */
    float b[3] = {1, -2, 10}, m[3 * 20];
    for (int i = 0; i < 60; i++)
        m[i] = (float)(i % 20) - 5.0f;
    tl_bias_act_2d(TL_ACT_RELU6, m, 20, b, 3, 17);
    int bad = 0;
    for (int r = 0; r < 3; r++)
        for (int j = 0; j < 20; j++) {
            double v = j - 5.0;
            double want = j < 17 ? act_ref(TL_ACT_RELU6, v + b[r]) : v;
            bad += m[r * 20 + j] != (float)want;
        }
    CHECK_MSG(bad == 0, "bias_act_2d: %d bad", bad);
    float c[4] = {-1, 2, -3, 4};
    tl_bias_act_2d(TL_ACT_RELU, c, 2, NULL, 2, 2);
    CHECK(c[0] == 0 && c[1] == 2 && c[2] == 0 && c[3] == 4);
}

static void test_softmax(void)
{
    float x[5] = {1000, 1001, 999, -1e30f, 1000}, y[5];
    tl_softmax(x, y, 5);
    double s = 0;
    for (int i = 0; i < 5; i++) {
        CHECK(isfinite(y[i]));
        s += y[i];
    }
    CHECK_NEAR(s, 1.0, 1e-6);
    double z = exp(0) * 2 + exp(1) + exp(-1);
    CHECK_NEAR(y[1], exp(1) / z, 1e-6);
    CHECK(y[3] == 0.0f);
    tl_softmax(x, x, 5); /* in place */
    CHECK_NEAR(x[1], y[1], 0);
    float one = 3;
    tl_softmax(&one, &one, 1);
    CHECK(one == 1.0f);
}

static void test_linear(void)
{
    const char *paths[] = {"scalar", "avx2", "avx512"};
    tl_rng r;
    tl_rng_seed(&r, 11);
    int batch = 3, in = 70, out = 41;
    float *x = malloc(sizeof(float) * batch * in), *w = malloc(sizeof(float) * out * in);
    float *b = malloc(sizeof(float) * out), *y = malloc(sizeof(float) * batch * out);
    for (int i = 0; i < batch * in; i++)
        x[i] = tl_rng_uniform(&r) - 0.5f;
    for (int i = 0; i < out * in; i++)
        w[i] = tl_rng_uniform(&r) - 0.5f;
    for (int i = 0; i < out; i++)
        b[i] = tl_rng_uniform(&r);
    for (int p = 0; p < 3; p++) {
        if (!tl_simd_supported(paths[p]))
            continue;
        tl_err e;
        tl_kws *ws = tl_kws_new_simd(paths[p], &e);
        CHECK_MSG(ws != NULL, "%s", e.msg);
        if (!ws)
            continue;
        for (int with_bias = 0; with_bias <= 1; with_bias++) {
            for (int i = 0; i < batch * out; i++)
                y[i] = NAN;
            tl_linear_forward(ws, batch, in, out, x, w, with_bias ? b : NULL, y, 0, out);
            double worst = 0;
            for (int n = 0; n < batch; n++)
                for (int o = 0; o < out; o++) {
                    double s = with_bias ? b[o] : 0;
                    for (int k = 0; k < in; k++)
                        s += (double)x[n * in + k] * w[o * in + k];
                    worst = worse(worst, fabs(s - y[n * out + o]));
                }
            CHECK_MSG(worst < 1e-5, "%s linear: max error %g", paths[p], worst);
        }
        tl_kws_free(ws);
    }
    free(x); free(w); free(b); free(y);
}

/* Attention heads computed in two ranges (as a team splits them) equal
 * all heads at once, bit for bit, and match a double reference. */
static void test_attention_heads_range(void)
{
    tl_err e;
    tl_kws *ws = tl_kws_new(&e);
    int t = 7, d = 12, heads = 3, dh = d / heads;
    float *qkv = malloc(sizeof(float) * t * 3 * d), *all = malloc(sizeof(float) * t * d);
    float *split = malloc(sizeof(float) * t * d), *att = malloc(sizeof(float) * t * t);
    tl_rng r;
    tl_rng_seed(&r, 9);
    for (int i = 0; i < t * 3 * d; i++)
        qkv[i] = tl_rng_uniform(&r) * 2 - 1;
    tl_attention_heads_range(ws, t, d, heads, 0, heads, qkv, all, att);
    tl_attention_heads_range(ws, t, d, heads, 2, 3, qkv, split, att);
    tl_attention_heads_range(ws, t, d, heads, 0, 2, qkv, split, att);
    CHECK(!memcmp(all, split, sizeof(float) * t * d));
    double worst = 0;
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < t; i++) {
            double sc[16], mx = -1e300, sum = 0;
            for (int j = 0; j < t; j++) {
                double s = 0;
                for (int k = 0; k < dh; k++)
                    s += (double)qkv[i * 3 * d + h * dh + k] * qkv[j * 3 * d + d + h * dh + k];
                sc[j] = s / sqrt(dh);
                mx = fmax(mx, sc[j]);
            }
            for (int j = 0; j < t; j++)
                sum += sc[j] = exp(sc[j] - mx);
            for (int k = 0; k < dh; k++) {
                double o = 0;
                for (int j = 0; j < t; j++)
                    o += sc[j] / sum * qkv[j * 3 * d + 2 * d + h * dh + k];
                worst = worse(worst, fabs(o - split[i * d + h * dh + k]));
            }
        }
    CHECK_MSG(worst < 1e-5, "attention heads: max error %g", worst);
    free(qkv); free(all); free(split); free(att);
    tl_kws_free(ws);
}

/* Sigmoid and SiLU give the same bits for a value whether it goes through
 * the vector loop or the scalar tail (a split of the work between threads
 * moves values from one to the other), and propagate NaN. */
static void test_sigmoid_paths(void)
{
    for (int act = TL_ACT_SIGMOID; act <= TL_ACT_SILU; act++) {
        float v[37], one[37];
        for (int i = 0; i < 37; i++)
            v[i] = one[i] = (i - 18) * 0.77f + (i % 3) * 0.01f + (i == 36 ? 200.0f : 0.0f);
        v[35] = one[35] = NAN;
        tl_activation(act, v, 37);
        for (int i = 0; i < 37; i++)
            tl_activation(act, one + i, 1);
        /* NaN payloads may differ between paths; every other value may not */
        CHECK_MSG(!memcmp(v, one, 35 * sizeof *v) && v[36] == one[36], "act %d: vector and scalar paths differ", act);
        CHECK(isnan(v[35]) && isnan(one[35]));
        double worst = 0;
        for (int i = 0; i < 35; i++) {
            double x = (i - 18) * 0.77f + (i % 3) * 0.01f, sg = 1 / (1 + exp(-x));
            double ref = act == TL_ACT_SILU ? x * sg : sg;
            worst = worse(worst, fabs(v[i] - ref) / (fabs(ref) + 1e-30));
        }
        CHECK_MSG(worst < 1e-6, "act %d: relative error %g", act, worst);
    }
}

/* Every activation gives the same bits on every SIMD path (tl_simd_level
 * follows TL_SIMD), whatever the row length: rows short of one vector,
 * around the 1-, 2- and 4-vector loops of AVX2 (8 lanes) and AVX-512 (16),
 * and their tails; with a bias per row (tl_bias_act_2d, rows with a stride)
 * as well as without; for ordinary values and the special ones. GELU (its
 * own erfc) stays within 3e-7 of the exact value relative to max(|x|, 1e-3)
 * over [-12, 12]. */
static int path_diff(const float *y, const float *ref, int n)
{
    int diff = 0;
    for (int i = 0; i < n; i++)
        diff += memcmp(&y[i], &ref[i], sizeof(float)) != 0 && !(isnan(y[i]) && isnan(ref[i]));
    return diff;
}

static void test_activation_paths(void)
{
    enum { N = 4099, LD_PAD = 5 };
    static float x[N], ref[N], y[N], bref[N], by[N], bias[N];
    for (int i = 0; i < N; i++)
        x[i] = -12.0f + 24.0f * (float)i / (N - 1) + (i % 7) * 1e-4f;
    x[5] = NAN, x[6] = INFINITY, x[7] = -INFINITY, x[8] = -0.0f, x[9] = 0.0f, x[10] = 1e-30f, x[11] = -3.0f,
    x[12] = 3.0f, x[13] = 6.0f, x[14] = 200.0f, x[15] = -200.0f;
    for (int i = 0; i < N; i++)
        bias[i] = (float)((i * 37) % 11 - 5) * 0.3f;
    const int lens[] = {1, 7, 14, 23, 24, 27, 40, 48, 63, 64, 65, 71, 72, 77, 130, 131};
    const char *paths[] = {"scalar", "avx2", "avx512"};
    const char *saved = getenv("TL_SIMD");
    for (int act = TL_ACT_RELU; act <= TL_ACT_GELU; act++) {
        for (size_t l = 0; l < sizeof lens / sizeof *lens; l++) {
            int len = lens[l], ld = len + LD_PAD, rows = N / ld;
            for (int p = 0; p < 3; p++) {
                if (!tl_simd_supported(paths[p]))
                    continue;
                setenv("TL_SIMD", paths[p], 1);
                float *out = p == 0 ? ref : y, *bout = p == 0 ? bref : by;
                for (int i = 0; i + len <= N; i += len)
                    tl_activation_copy(act, x + i, out + i, (size_t)len);
                memcpy(bout, x, sizeof x);
                tl_bias_act_2d(act, bout, (size_t)ld, bias, rows, (size_t)len);
                if (p == 0)
                    continue;
                int diff = path_diff(y, ref, N / len * len), bdiff = path_diff(by, bref, N);
                CHECK_MSG(diff == 0, "act %d: %s differs from scalar in %d values (rows of %d)", act, paths[p],
                          diff, len);
                CHECK_MSG(bdiff == 0, "act %d with bias: %s differs from scalar in %d values (rows of %d)", act,
                          paths[p], bdiff, len);
            }
        }
        /* rows of one value each, contiguous (ld 1: the excitation's 1x1
         * layers), with a bias per row: vectors across the rows */
        static float col[3][N];
        for (int rows = 1; rows <= 41; rows += 20)
            for (int p = 0; p < 3; p++) {
                if (!tl_simd_supported(paths[p]))
                    continue;
                setenv("TL_SIMD", paths[p], 1);
                memcpy(col[p], x, sizeof x);
                tl_bias_act_2d(act, col[p], 1, bias, N - rows, 1);
                if (p > 0) {
                    int d = path_diff(col[p], col[0], N);
                    CHECK_MSG(d == 0, "act %d, one value a row: %s differs from scalar in %d values", act, paths[p], d);
                }
            }
        /* the last length leaves 31 scalar rows of 131 (4061 values) in ref */
        if (act == TL_ACT_GELU) {
            double worst = 0;
            for (int i = 16; i < N / 131 * 131; i++)
                worst = worse(worst, fabs(ref[i] - act_ref(act, x[i])) / fmax(fabs(x[i]), 1e-3));
            CHECK_MSG(worst < 3e-7, "gelu: error %g relative to |x|", worst);
            printf("test_kernels_misc: gelu error at most %.2g |x|\n", worst);
            CHECK(isnan(ref[5]) && ref[6] == INFINITY && ref[8] == 0.0f && signbit(ref[8]));
        }
    }
    if (saved)
        setenv("TL_SIMD", saved, 1);
    else
        unsetenv("TL_SIMD");
}

/* The distance of f from the exact value ref in units in the last place
 * of a float at ref (2^-149 below the normal range) */
static double ulp_err(float f, double ref)
{
    if (isnan(f) || isinf(f) || isinf(ref))
        return f == ref ? 0 : INFINITY;
    int ex;
    frexp(ref, &ex); /* |ref| in [2^(ex-1), 2^ex): its float ulp is 2^(ex-24) */
    return fabs(f - ref) / ldexp(1.0, ex - 24 < -149 ? -149 : ex - 24);
}

/* SiLU and sigmoid over their whole range on every path: bit for bit the
 * bits of act_internal.h's element functions compiled here (without FMA:
 * fmaf is libm's, where the library's scalar path inlines the
 * instruction), through the vector loops and the tails, on a dense sweep
 * of [-100, 100], finely around the clamps at -88 and 87 and where
 * 1 + e rounds to 1, over every 4099th float of all magnitudes (the
 * subnormals included) and the special values; and within 2.5 ulp of the
 * exact values where exp(-v) is not clamped (v >= -88; 2.39 and 2.48 at
 * most over every float from -88 up, measured); below, exp(-v) is taken
 * as exp(88): SiLU is off by at most |v| e^-88 (-inf stays -inf, where
 * the exact value underflows to -0) and sigmoid by e^-88. */
static void test_silu_range(void)
{
    enum { SWEEP = 24001, STRIDE = 4099, N = SWEEP + 2 * (0x7F800000 / STRIDE + 1) };
    static float x[N], ref[N], y[N];
    int n = 0;
    for (int i = 0; i < SWEEP; i++)
        x[n++] = -100.0f + 200.0f * (float)i / (SWEEP - 1);
    for (int i = 0; i < 2000; i++) { /* finely around the clamps */
        x[i] = -88.5f + (float)i * 0.0011f;
        x[SWEEP - 1 - i] = 88.5f - (float)i * 0.0011f;
    }
    x[2000] = NAN, x[2001] = INFINITY, x[2002] = -INFINITY, x[2003] = -0.0f, x[2004] = FLT_MIN;
    x[2005] = -FLT_MAX, x[2006] = FLT_MAX, x[2007] = 1e-40f, x[2008] = -1e-40f, x[2009] = 0.0f;
    for (uint32_t u = 0; u < 0x7F800000u; u += STRIDE)
        for (uint32_t sign = 0; sign <= 1; sign++) {
            uint32_t b = u | sign << 31;
            memcpy(&x[n++], &b, sizeof b);
        }
    const char *paths[] = {"scalar", "avx2", "avx512"};
    const char *saved = getenv("TL_SIMD");
    for (int act = TL_ACT_SIGMOID; act <= TL_ACT_SILU; act++) {
        const int silu = act == TL_ACT_SILU;
        for (int i = 0; i < n; i++)
            ref[i] = silu ? tl_silu_f(x[i]) : tl_sigmoid_f(x[i]);
        for (int p = 0; p < 3; p++) {
            if (!tl_simd_supported(paths[p]))
                continue;
            setenv("TL_SIMD", paths[p], 1);
            tl_activation_copy(act, x, y, (size_t)n);
            int d = path_diff(y, ref, n);
            CHECK_MSG(d == 0, "%s: %s differs from act_internal.h in %d of %d values", silu ? "silu" : "sigmoid",
                      paths[p], d, n);
        }
        double worst = 0, clamped = 0;
        float at = 0;
        for (int i = 0; i < n; i++) {
            if (isnan(x[i]))
                continue;
            double v = x[i], sg = 1 / (1 + exp(-v)), want = silu ? v * sg : sg;
            if (v < TL_SIG_LO) { /* exp(88) for exp(-v): off by at most |v| e^-88 (SiLU), e^-88 */
                if (!isinf(v))
                    clamped = worse(clamped, fabs(ref[i] - want) / (silu ? -v : 1.0));
                continue;
            }
            double e = ulp_err(ref[i], want);
            if (!(e <= worst))
                worst = e, at = x[i];
        }
        CHECK_MSG(worst <= 2.5, "%s: %.3g ulp from the exact value at %.9g", silu ? "silu" : "sigmoid", worst, at);
        CHECK_MSG(clamped < 6.1e-39, "%s below the clamp: error %g (|x| for silu)", silu ? "silu" : "sigmoid",
                  clamped);
        printf("test_kernels_misc: %s at most %.2f ulp from the exact value (at %.7g)\n", silu ? "silu" : "sigmoid",
               worst, at);
    }
    CHECK(isnan(ref[2000]) && ref[2001] == INFINITY && ref[2002] == -INFINITY && ref[2003] == 0.0f && signbit(ref[2003]));
    if (saved)
        setenv("TL_SIMD", saved, 1);
    else
        unsetenv("TL_SIMD");
}

int main(void)
{
    test_activation_paths();
    test_silu_range();
    test_sigmoid_paths();
    test_attention_heads_range();
    test_activation();
    test_softmax();
    test_linear();
    return check_finish("test_kernels_misc");
}
