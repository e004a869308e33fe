/* tl_conv_forward_packed (split into parts) and tl_depthwise_forward on
 * every SIMD path against a
 * naive direct convolution (double accumulation): random shapes with
 * asymmetric padding, strides, dilation, groups, depthwise, 1x1, tiled
 * im2col; and against PyTorch F.conv2d via /usr/bin/python3 when present. */
#include "check.h"
#include "kernels_ref.h"
#include "kernels/conv_internal.h"
#include "kernels/simd.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* like fmax, but a NaN difference wins so it cannot hide */
static double worse(double a, double b) { return isnan(a) || a >= b ? a : b; }

static const char *paths[] = {"scalar", "avx2", "avx512"};

static double act_ref(int act, double v)
{
    switch (act) {
    case TL_ACT_RELU: return v > 0 ? v : 0;
    case TL_ACT_RELU6: return v < 0 ? 0 : v > 6 ? 6 : v;
    case TL_ACT_SILU: return v / (1 + exp(-v));
    case TL_ACT_HARDSWISH: return v * fmin(fmax(v + 3, 0), 6) / 6;
    default: return v;
    }
}

/* y and, per output, the magnitude sum |w x| that bounds rounding error */
static void conv_ref(const tl_conv_geom *g, const float *x, const float *w, const float *b, int act,
                     double *y, double *mag)
{
    int cin_g = g->cin / g->groups, cout_g = g->cout / g->groups;
    for (int o = 0; o < g->cout; o++) {
        int grp = o / cout_g;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                double s = b ? b[o] : 0, m = b ? fabs(b[o]) : 0;
                for (int c = 0; c < cin_g; c++)
                    for (int ky = 0; ky < g->kh; ky++)
                        for (int kx = 0; kx < g->kw; kx++) {
                            int iy = oy * g->stride_h - g->pad_t + ky * g->dil_h;
                            int ix = ox * g->stride_w - g->pad_l + kx * g->dil_w;
                            if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                                continue;
                            double v = (double)w[((size_t)(o * cin_g + c) * g->kh + ky) * g->kw + kx] *
                                       x[((size_t)(grp * cin_g + c) * g->h + iy) * g->w + ix];
                            s += v;
                            m += fabs(v);
                        }
                size_t i = ((size_t)o * g->oh + oy) * g->ow + ox;
                y[i] = act_ref(act, s);
                mag[i] = m;
            }
    }
}

static float *rand_buf(tl_rng *r, size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = tl_rng_uniform(r) * 2.0f - 1.0f;
    return p;
}

static void describe(const tl_conv_geom *g, char *buf, size_t n)
{
    snprintf(buf, n, "cin %d %dx%d cout %d k %dx%d s %d,%d pad t%d l%d b%d r%d dil %d,%d groups %d",
             g->cin, g->h, g->w, g->cout, g->kh, g->kw, g->stride_h, g->stride_w, g->pad_t,
             g->pad_l, g->pad_b, g->pad_r, g->dil_h, g->dil_w, g->groups);
}

/* The depthwise step fused with the global average pool of its output:
 * the same outputs, and each channel's mean with the bits of 16 running
 * sums (pixel i into sum i % 16) folded pairwise, as every path promises,
 * and close to the double mean of the reference. */
static int check_means(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *packed, const float *b,
                       int act, const float *y1, const double *ref, float *scratch, int nparts, const char *desc)
{
    const size_t plane = (size_t)g->oh * g->ow, ny = (size_t)g->cout * plane;
    float *y = malloc(ny * sizeof *y), *means = malloc((size_t)g->cout * sizeof *means);
    for (int c = 0; c < g->cout; c++)
        means[c] = NAN;
    tl_conv_fuse f = {.means = means};
    for (int part = nparts - 1; part >= 0; part--)
        tl_conv_forward_fused(ws, g, x, packed, b, act, &f, y, part, nparts, scratch);
    int bad = memcmp(y, y1, ny * sizeof *y) != 0;
    CHECK_MSG(!bad, "fused means %s %s act %d, %d parts: outputs differ", tl_kws_simd_name(ws), desc, act, nparts);
    for (int c = 0; c < g->cout && !bad; c++) {
        const float *yc = y + (size_t)c * plane;
        float acc[16] = {0};
        double exact = 0;
        for (size_t i = 0; i < plane; i++) {
            acc[i % 16] += yc[i];
            exact += ref[(size_t)c * plane + i];
        }
        for (int half = 8; half >= 1; half /= 2)
            for (int j = 0; j < half; j++)
                acc[j] += acc[j + half];
        float want = acc[0] / (float)plane;
        exact /= (double)plane;
        bad = memcmp(&means[c], &want, sizeof want) != 0 || !(fabs(means[c] - exact) <= 1e-5 * (fabs(exact) + 1));
        CHECK_MSG(!bad, "fused means %s %s act %d, %d parts: channel %d mean %.9g, 16 sums give %.9g, exact %.9g",
                  tl_kws_simd_name(ws), desc, act, nparts, c, means[c], want, exact);
    }
    free(y);
    free(means);
    return bad;
}

/* tl_conv_forward_packed split into 1, 2 and 3 parts (run one after the
 * other, as a team's threads would): right against the reference, and
 * bit-identical whatever the split. Returns the number of failures. */
static int run_packed(tl_kws *ws, const tl_conv_geom *g, const float *x, const float *w, const float *b, int act,
                      const double *ref, const double *mag, const char *desc)
{
    size_t ny = (size_t)g->cout * g->oh * g->ow;
    float *packed = tl_alloc_array(tl_conv_packed_floats(ws, g), sizeof *packed);
    float *scratch = tl_alloc_array(tl_conv_forward_scratch_floats(ws, g) + 1, sizeof *scratch);
    float *y = malloc(ny * sizeof *y), *y1 = malloc(ny * sizeof *y1);
    tl_conv_pack(ws, g, w, packed);
    int fails = 0;
    for (int nparts = 1; nparts <= 3; nparts++) {
        for (size_t i = 0; i < ny; i++)
            y[i] = NAN;
        for (int part = nparts - 1; part >= 0; part--)
            tl_conv_forward_packed(ws, g, x, packed, b, act, y, part, nparts, scratch);
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < ny; i++)
            if (!(fabs(y[i] - ref[i]) <= 2e-6 * (mag[i] + 1) + 1e-6 * fabs(ref[i]))) {
                if (!bad)
                    first = i;
                bad++;
            }
        CHECK_MSG(bad == 0, "packed %s %s act %d, %d parts: %zu bad, y[%zu] = %.9g expected %.9g",
                  tl_kws_simd_name(ws), desc, act, nparts, bad, first, y[first], ref[first]);
        if (nparts == 1)
            memcpy(y1, y, ny * sizeof *y);
        else
            CHECK_MSG(!memcmp(y, y1, ny * sizeof *y), "packed %s %s: %d parts differ from one",
                      tl_kws_simd_name(ws), desc, nparts);
        fails += bad != 0;
        if (tl_conv_fusable(ws, g) & TL_FUSE_MEANS)
            fails += check_means(ws, g, x, packed, b, act, y1, ref, scratch, nparts, desc);
    }
    tl_free(packed);
    tl_free(scratch);
    free(y);
    free(y1);
    return fails;
}

/* Runs one geometry on each workspace; returns the number of failures. */
static int run_geom(tl_kws **ws, int nws, tl_rng *r, tl_conv_geom g, int act, int use_bias)
{
    tl_conv_geom_finish(&g);
    tl_err e;
    char desc[256];
    describe(&g, desc, sizeof desc);
    if (tl_conv_geom_check(&g, &e) < 0) {
        CHECK_MSG(0, "%s: %s", desc, e.msg);
        return 1;
    }
    size_t nx = (size_t)g.cin * g.h * g.w, ny = (size_t)g.cout * g.oh * g.ow;
    size_t nw = (size_t)g.cout * (g.cin / g.groups) * g.kh * g.kw;
    float *x = rand_buf(r, nx), *w = rand_buf(r, nw), *b = use_bias ? rand_buf(r, g.cout) : NULL;
    double *ref = malloc(ny * sizeof *ref), *mag = malloc(ny * sizeof *mag);
    conv_ref(&g, x, w, b, act, ref, mag);
    float *y = malloc(ny * sizeof *y);
    int fails = 0;
    int dw = g.groups == g.cin && g.cout == g.cin;
    for (int p = 0; p < nws; p++) {
        if (dw) {
            for (size_t i = 0; i < ny; i++)
                y[i] = NAN;
            tl_depthwise_forward(ws[p], &g, x, w, b, act, y);
            size_t bad = 0, first = 0;
            for (size_t i = 0; i < ny; i++)
                if (!(fabs(y[i] - ref[i]) <= 2e-6 * (mag[i] + 1) + 1e-6 * fabs(ref[i]))) {
                    if (!bad)
                        first = i;
                    bad++;
                }
            CHECK_MSG(bad == 0, "%s %s act %d: %zu bad, y[%zu] = %.9g expected %.9g",
                      tl_kws_simd_name(ws[p]), desc, act, bad, first, y[first], ref[first]);
            fails += bad != 0;
        }
        fails += run_packed(ws[p], &g, x, w, b, act, ref, mag, desc);
    }
    free(x); free(w); free(b); free(ref); free(mag); free(y);
    return fails;
}

static int rnd(tl_rng *r, int lo, int hi) { return lo + (int)tl_rng_below(r, (uint64_t)(hi - lo + 1)); }

static void test_fixed(tl_kws **ws, int n, tl_rng *r)
{
    /* 1x1 direct GEMM, strided 1x1, TF SAME 3x3/2, VGG-like, tiled im2col (K 1152, 900 columns) */
    run_geom(ws, n, r, (tl_conv_geom){.cin = 24, .h = 9, .w = 11, .cout = 40, .kh = 1, .kw = 1}, TL_ACT_RELU6, 1);
    run_geom(ws, n, r, (tl_conv_geom){.cin = 16, .h = 38, .w = 38, .cout = 20, .kh = 1, .kw = 1}, TL_ACT_NONE, 0);
    run_geom(ws, n, r, (tl_conv_geom){.cin = 8, .h = 9, .w = 10, .cout = 12, .kh = 1, .kw = 1, .stride_h = 2, .stride_w = 2}, TL_ACT_RELU, 1);
    run_geom(ws, n, r, (tl_conv_geom){.cin = 3, .h = 16, .w = 16, .cout = 8, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_b = 1, .pad_r = 1}, TL_ACT_RELU6, 1);
    run_geom(ws, n, r, (tl_conv_geom){.cin = 128, .h = 30, .w = 30, .cout = 20, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1}, TL_ACT_RELU, 1);
    run_geom(ws, n, r, (tl_conv_geom){.cin = 3, .h = 23, .w = 23, .cout = 16, .kh = 7, .kw = 7, .stride_h = 2, .stride_w = 2, .pad_t = 3, .pad_l = 3, .pad_b = 3, .pad_r = 3}, TL_ACT_NONE, 0);
    /* the direct stride-2 stems (conv_stem.c) against the double
     * reference: ResNet's 7x7 on an odd map, 5x5 with uneven padding, 7x7
     * of 4 channels and of 1, SiLU after */
    run_geom(ws, n, r, (tl_conv_geom){.cin = 3, .h = 61, .w = 97, .cout = 64, .kh = 7, .kw = 7, .stride_h = 2, .stride_w = 2, .pad_t = 3, .pad_l = 3, .pad_b = 3, .pad_r = 3}, TL_ACT_RELU, 1);
    run_geom(ws, n, r, (tl_conv_geom){.cin = 3, .h = 38, .w = 45, .cout = 20, .kh = 5, .kw = 5, .stride_h = 2, .stride_w = 2, .pad_t = 1, .pad_l = 2, .pad_b = 2, .pad_r = 1}, TL_ACT_RELU6, 1);
    run_geom(ws, n, r, (tl_conv_geom){.cin = 4, .h = 29, .w = 33, .cout = 13, .kh = 7, .kw = 7, .stride_h = 2, .stride_w = 2, .pad_t = 2, .pad_l = 3, .pad_b = 3, .pad_r = 2}, TL_ACT_SILU, 1);
    run_geom(ws, n, r, (tl_conv_geom){.cin = 1, .h = 6, .w = 40, .cout = 9, .kh = 7, .kw = 7, .stride_h = 2, .stride_w = 2, .pad_t = 3, .pad_l = 3, .pad_b = 3, .pad_r = 3}, TL_ACT_NONE, 0);
    /* packed paths: K over three blocks with columns over two N blocks;
     * a 1x1 layer wider than an N block; stride 2 rows cut mid-sliver */
    run_geom(ws, n, r, (tl_conv_geom){.cin = 96, .h = 29, .w = 31, .cout = 30, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1}, TL_ACT_RELU6, 1);
    run_geom(ws, n, r, (tl_conv_geom){.cin = 20, .h = 41, .w = 43, .cout = 13, .kh = 1, .kw = 1}, TL_ACT_SILU, 1);
    run_geom(ws, n, r, (tl_conv_geom){.cin = 7, .h = 50, .w = 75, .cout = 25, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1}, TL_ACT_HARDSWISH, 1);
    /* Winograd on a 14x13 map: one block of 16 tiles (AVX-512: the 16-lane
     * kernel), split by output channels, cout not a multiple of mr */
    run_geom(ws, n, r, (tl_conv_geom){.cin = 40, .h = 14, .w = 13, .cout = 27, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1}, TL_ACT_RELU, 1);
    /* depthwise: MobileNet shapes (PyTorch and TF padding), wide rows for
     * vector tails, 5x5, dilation, stride 3 (scalar fallback), multiplier 2 */
    run_geom(ws, n, r, (tl_conv_geom){.cin = 8, .h = 112, .w = 112, .cout = 8, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1, .groups = 8}, TL_ACT_RELU6, 1);
    run_geom(ws, n, r, (tl_conv_geom){.cin = 8, .h = 112, .w = 112, .cout = 8, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_b = 1, .pad_r = 1, .groups = 8}, TL_ACT_RELU6, 1);
    run_geom(ws, n, r, (tl_conv_geom){.cin = 6, .h = 15, .w = 57, .cout = 6, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1, .groups = 6}, TL_ACT_RELU, 1);
    run_geom(ws, n, r, (tl_conv_geom){.cin = 5, .h = 14, .w = 46, .cout = 5, .kh = 5, .kw = 5, .stride_h = 2, .stride_w = 2, .pad_t = 1, .pad_l = 1, .pad_b = 2, .pad_r = 2, .groups = 5}, TL_ACT_HARDSWISH, 1);
    run_geom(ws, n, r, (tl_conv_geom){.cin = 4, .h = 20, .w = 35, .cout = 4, .kh = 3, .kw = 3, .pad_t = 2, .pad_l = 2, .pad_b = 2, .pad_r = 2, .dil_h = 2, .dil_w = 2, .groups = 4}, TL_ACT_SILU, 0);
    run_geom(ws, n, r, (tl_conv_geom){.cin = 4, .h = 20, .w = 35, .cout = 4, .kh = 3, .kw = 3, .stride_h = 3, .stride_w = 3, .pad_t = 1, .pad_l = 1, .groups = 4}, TL_ACT_NONE, 1);
    run_geom(ws, n, r, (tl_conv_geom){.cin = 4, .h = 3, .w = 2, .cout = 4, .kh = 5, .kw = 5, .pad_t = 2, .pad_l = 2, .pad_b = 2, .pad_r = 2, .groups = 4}, TL_ACT_NONE, 1);
    run_geom(ws, n, r, (tl_conv_geom){.cin = 4, .h = 9, .w = 9, .cout = 8, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1, .groups = 4}, TL_ACT_NONE, 1);
    /* channel-blocked depthwise (small maps, groups of 8 or 16 channels):
     * partial last groups, splits inside a group, 5x5 with SiLU after,
     * stride 2 with TF padding, dilation, a map smaller than the kernel */
    run_geom(ws, n, r, (tl_conv_geom){.cin = 40, .h = 7, .w = 7, .cout = 40, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1, .groups = 40}, TL_ACT_RELU6, 1);
    run_geom(ws, n, r, (tl_conv_geom){.cin = 37, .h = 14, .w = 14, .cout = 37, .kh = 5, .kw = 5, .stride_h = 2, .stride_w = 2, .pad_t = 1, .pad_l = 1, .pad_b = 2, .pad_r = 2, .groups = 37}, TL_ACT_SILU, 1);
    run_geom(ws, n, r, (tl_conv_geom){.cin = 19, .h = 13, .w = 15, .cout = 19, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 1, .pad_b = 1, .pad_r = 1, .groups = 19}, TL_ACT_RELU, 0);
    run_geom(ws, n, r, (tl_conv_geom){.cin = 24, .h = 11, .w = 10, .cout = 24, .kh = 3, .kw = 3, .pad_t = 2, .pad_l = 2, .pad_b = 2, .pad_r = 2, .dil_h = 2, .dil_w = 2, .groups = 24}, TL_ACT_NONE, 1);
    run_geom(ws, n, r, (tl_conv_geom){.cin = 17, .h = 2, .w = 3, .cout = 17, .kh = 5, .kw = 5, .pad_t = 2, .pad_l = 2, .pad_b = 2, .pad_r = 2, .groups = 17}, TL_ACT_HARDSWISH, 1);
    /* stride 2 on wider maps: uneven padding, a partial last group, 3x3 and 5x5 */
    run_geom(ws, n, r, (tl_conv_geom){.cin = 21, .h = 27, .w = 31, .cout = 21, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_l = 1, .pad_b = 1, .groups = 21}, TL_ACT_SILU, 1);
    run_geom(ws, n, r, (tl_conv_geom){.cin = 18, .h = 56, .w = 57, .cout = 18, .kh = 5, .kw = 5, .stride_h = 2, .stride_w = 2, .pad_t = 2, .pad_l = 1, .pad_b = 2, .pad_r = 2, .groups = 18}, TL_ACT_RELU6, 0);
    /* EfficientNet-like, SiLU applied on the blocked outputs and means
     * fused: several bands whose first pixel is not a multiple of 16 into
     * the plane, channels not a multiple of 8 or 16, odd widths */
    run_geom(ws, n, r, (tl_conv_geom){.cin = 40, .h = 57, .w = 57, .cout = 40, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1, .groups = 40}, TL_ACT_SILU, 1);
    run_geom(ws, n, r, (tl_conv_geom){.cin = 27, .h = 61, .w = 59, .cout = 27, .kh = 5, .kw = 5, .stride_h = 2, .stride_w = 2, .pad_t = 2, .pad_l = 2, .pad_b = 2, .pad_r = 2, .groups = 27}, TL_ACT_SILU, 1);
    /* input rows moved in runs: a block of pixels that ends one row and
     * fills the whole next one (9 wide for 16 lanes, 6 wide for 8) */
    run_geom(ws, n, r, (tl_conv_geom){.cin = 20, .h = 18, .w = 9, .cout = 20, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1, .groups = 20}, TL_ACT_RELU6, 1);
    run_geom(ws, n, r, (tl_conv_geom){.cin = 11, .h = 9, .w = 6, .cout = 11, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1, .groups = 11}, TL_ACT_NONE, 1);
}

static void test_random(tl_kws **ws, int n, tl_rng *r)
{
    int fails = 0;
    for (int t = 0; t < 120 && fails < 5; t++) {
        tl_conv_geom g = {0};
        int kind = rnd(r, 0, 3); /* 0 dense, 1 grouped, 2 depthwise, 3 1x1 */
        g.groups = kind == 1 ? rnd(r, 2, 4) : 1;
        g.cin = g.groups * rnd(r, 1, 6);
        g.cout = g.groups * rnd(r, 1, 7);
        if (kind == 2)
            g.groups = g.cout = g.cin = rnd(r, 1, 9);
        g.kh = kind == 3 ? 1 : rnd(r, 1, 5);
        g.kw = kind == 3 ? 1 : rnd(r, 1, 5);
        g.h = rnd(r, 1, 24);
        g.w = rnd(r, 1, 40);
        g.stride_h = rnd(r, 1, 2);
        g.stride_w = rnd(r, 1, 2);
        g.dil_h = rnd(r, 0, 3) == 0 ? 2 : 1;
        g.dil_w = rnd(r, 0, 3) == 0 ? 2 : 1;
        g.pad_t = rnd(r, 0, g.kh);
        g.pad_b = rnd(r, 0, g.kh);
        g.pad_l = rnd(r, 0, g.kw);
        g.pad_r = rnd(r, 0, g.kw);
        if (kind == 3 && rnd(r, 0, 1))
            g.pad_t = g.pad_b = g.pad_l = g.pad_r = 0, g.stride_h = g.stride_w = 1;
        tl_conv_geom_finish(&g);
        if (g.oh <= 0 || g.ow <= 0)
            continue;
        fails += run_geom(ws, n, r, g, rnd(r, 0, 2), rnd(r, 0, 1));
    }
}

/* ---- PyTorch reference ---- */

static int write_floats(const char *path, const float *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(p, sizeof *p, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static int read_floats(const char *path, float *p, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t got = fread(p, sizeof *p, n, f);
    int extra = fgetc(f);
    fclose(f);
    return got == n && extra == EOF ? 0 : -1;
}

static const char *torch_script =
    "import sys, numpy as np, torch, torch.nn.functional as F\n"
    "d = sys.argv[1]; a = [int(v) for v in sys.argv[2:]]\n"
    "cin, h, w, cout, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, g, act = a\n"
    "x = torch.from_numpy(np.fromfile(d + '/x', '<f4').reshape(1, cin, h, w))\n"
    "wt = torch.from_numpy(np.fromfile(d + '/w', '<f4').reshape(cout, cin // g, kh, kw))\n"
    "b = torch.from_numpy(np.fromfile(d + '/b', '<f4'))\n"
    "y = F.conv2d(F.pad(x, (pl, pr, pt, pb)), wt, b, stride=(sh, sw), dilation=(dh, dw), groups=g)\n"
    "y = [y, F.relu(y), F.relu6(y)][act]\n"
    "y.numpy().astype('<f4').tofile(d + '/y')\n";

static void torch_case(tl_kws *ws, tl_rng *r, const char *dir, tl_conv_geom g, int act)
{
    tl_conv_geom_finish(&g);
    size_t nx = (size_t)g.cin * g.h * g.w, ny = (size_t)g.cout * g.oh * g.ow;
    size_t nw = (size_t)g.cout * (g.cin / g.groups) * g.kh * g.kw;
    float *x = rand_buf(r, nx), *w = rand_buf(r, nw), *b = rand_buf(r, g.cout);
    float *y = malloc(ny * sizeof *y), *yt = malloc(ny * sizeof *yt);
    char path[512], cmd[1024];
    snprintf(path, sizeof path, "%s/x", dir);
    int ok = write_floats(path, x, nx) == 0;
    snprintf(path, sizeof path, "%s/w", dir);
    ok = ok && write_floats(path, w, nw) == 0;
    snprintf(path, sizeof path, "%s/b", dir);
    ok = ok && write_floats(path, b, g.cout) == 0;
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/conv.py %s %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d", dir,
             dir, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.stride_h, g.stride_w, g.pad_t, g.pad_l,
             g.pad_b, g.pad_r, g.dil_h, g.dil_w, g.groups, act);
    ok = ok && system(cmd) == 0;
    snprintf(path, sizeof path, "%s/y", dir);
    ok = ok && read_floats(path, yt, ny) == 0;
    CHECK_MSG(ok, "pytorch reference run failed: %s", cmd);
    if (ok) {
        conv_forward_once(ws, &g, x, w, b, act, y);
        double worst = 0;
        for (size_t i = 0; i < ny; i++)
            worst = worse(worst, fabs(y[i] - yt[i]));
        CHECK_MSG(worst < 1e-4, "vs pytorch: max difference %g (%s)", worst, cmd);
    }
    free(x); free(w); free(b); free(y); free(yt);
}

static void test_torch(tl_kws *ws, tl_rng *r)
{
    if (access("/usr/bin/python3", X_OK) != 0 ||
        system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") != 0) {
        printf("test_conv: /usr/bin/python3 with torch not available, pytorch comparison skipped\n");
        return;
    }
    char dir[] = "/tmp/tl_test_conv_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK_MSG(0, "mkdtemp failed");
        return;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/conv.py", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs(torch_script, f);
    fclose(f);
    torch_case(ws, r, dir, (tl_conv_geom){.cin = 3, .h = 17, .w = 20, .cout = 16, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_b = 1, .pad_r = 1}, TL_ACT_RELU6);
    torch_case(ws, r, dir, (tl_conv_geom){.cin = 12, .h = 15, .w = 33, .cout = 12, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1, .groups = 12}, TL_ACT_RELU);
    torch_case(ws, r, dir, (tl_conv_geom){.cin = 8, .h = 11, .w = 13, .cout = 12, .kh = 3, .kw = 2, .pad_t = 2, .pad_l = 1, .pad_b = 1, .pad_r = 0, .dil_h = 2, .groups = 4}, TL_ACT_NONE);
    torch_case(ws, r, dir, (tl_conv_geom){.cin = 32, .h = 14, .w = 14, .cout = 48, .kh = 1, .kw = 1}, TL_ACT_NONE);
    const char *names[] = {"x", "w", "b", "y", "conv.py"};
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        remove(path);
    }
    rmdir(dir);
}

static void test_geom(void)
{
    tl_err e;
    tl_conv_geom g = {.cin = 3, .h = 224, .w = 224, .cout = 32, .kh = 3, .kw = 3, .stride_h = 2,
                      .stride_w = 2, .pad_b = 1, .pad_r = 1};
    tl_conv_geom_finish(&g);
    CHECK(g.oh == 112 && g.ow == 112 && g.dil_h == 1 && g.groups == 1);
    CHECK(tl_conv_geom_check(&g, &e) == 0);
    g.groups = 2;
    CHECK(tl_conv_geom_check(&g, &e) < 0 && strstr(e.msg, "groups"));
    tl_conv_geom s = {.cin = 2, .h = 2, .w = 2, .cout = 2, .kh = 5, .kw = 5};
    tl_conv_geom_finish(&s);
    CHECK(s.oh == 0 && tl_conv_geom_check(&s, &e) < 0);
    tl_conv_geom d = {.cin = 64, .h = 56, .w = 56, .cout = 64, .kh = 1, .kw = 1};
    tl_conv_geom_finish(&d);
    CHECK(tl_conv_backward_scratch_floats(&d) == 0);
    tl_conv_geom big = {.cin = 512, .h = 56, .w = 56, .cout = 512, .kh = 3, .kw = 3, .pad_t = 1,
                        .pad_l = 1, .pad_b = 1, .pad_r = 1};
    tl_conv_geom_finish(&big);
    CHECK(tl_conv_backward_scratch_floats(&big) <= ((size_t)1 << 20)); /* 4 MiB */
}

/* Winograd F(4x4, 3x3) against the direct path of the same workspace
 * (exact mode) and the double reference: ResNet-like inputs (ReLU
 * outputs, He-initialised weights), maps with partial tiles, asymmetric
 * padding, more input channels than one K-block, output channels not a
 * multiple of the micro-tile. Winograd's error may exceed the direct
 * path's, but stays within 1e-5 of the sum of |w x| (the scale of the
 * output's rounding error) and 64x the direct path's worst error (measured:
 * 2-3e-6, 15-30x). */
static void test_winograd(tl_kws **ws, int nws, tl_rng *r)
{
    static const tl_conv_geom cases[] = {
        {.cin = 64, .h = 56, .w = 56, .cout = 64, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1},
        {.cin = 128, .h = 28, .w = 28, .cout = 128, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1},
        {.cin = 20, .h = 30, .w = 27, .cout = 35, .kh = 3, .kw = 3, .pad_b = 1, .pad_r = 2},
        {.cin = 400, .h = 17, .w = 19, .cout = 24, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1},
        {.cin = 96, .h = 14, .w = 14, .cout = 64, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1},
        /* ResNet's last stage, chosen for groups of 4 images (tl_kws_set_images), run on one */
        {.cin = 256, .h = 7, .w = 7, .cout = 40, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1},
        /* a small map (padded planes) padded 0/2 above/below, 2/0 left/right */
        {.cin = 48, .h = 12, .w = 11, .cout = 40, .kh = 3, .kw = 3, .pad_t = 0, .pad_l = 2, .pad_b = 2, .pad_r = 0},
    };
    static const int images[] = {1, 1, 1, 1, 1, 4, 4};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        tl_conv_geom g = cases[c];
        tl_conv_geom_finish(&g);
        char desc[256];
        describe(&g, desc, sizeof desc);
        size_t nx = (size_t)g.cin * g.h * g.w, ny = (size_t)g.cout * g.oh * g.ow, nw = (size_t)g.cout * g.cin * 9;
        float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *b = rand_buf(r, g.cout);
        for (size_t i = 0; i < nx; i++)
            x[i] = tl_rng_uniform(r) < 0.5f ? 0.0f : tl_rng_uniform(r) * 2.0f;
        for (size_t i = 0; i < nw; i++)
            w[i] = tl_rng_normal(r) * sqrtf(2.0f / (g.cin * 9));
        double *ref = malloc(ny * sizeof *ref), *mag = malloc(ny * sizeof *mag);
        conv_ref(&g, x, w, b, TL_ACT_NONE, ref, mag);
        float *y = malloc(ny * sizeof *y);
        for (int p = 0; p < nws; p++) {
            double worst[2] = {0, 0};
            tl_kws_set_images(ws[p], images[c]);
            CHECK_MSG(tl_conv_forward_scratch_floats(ws[p], &g) > 0, "%s %s: not run by Winograd",
                      tl_kws_simd_name(ws[p]), desc);
            for (int exact = 0; exact <= 1; exact++) {
                tl_kws_set_exact(ws[p], exact);
                conv_forward_once(ws[p], &g, x, w, b, TL_ACT_NONE, y);
                for (size_t i = 0; i < ny; i++)
                    worst[exact] = worse(worst[exact], fabs(y[i] - ref[i]) / (mag[i] + 1e-3));
            }
            tl_kws_set_exact(ws[p], 0);
            printf("test_conv: %s %s: winograd %d, worst error / sum|wx| %.2g (direct %.2g)\n",
                   tl_kws_simd_name(ws[p]), desc, tl_conv_forward_scratch_floats(ws[p], &g) > 0, worst[0],
                   worst[1]);
            tl_kws_set_images(ws[p], 1);
            CHECK_MSG(worst[0] < 1e-5 && worst[0] <= 64 * worst[1] + 1e-7, "winograd %s %s: error %g (direct %g)",
                      tl_kws_simd_name(ws[p]), desc, worst[0], worst[1]);
        }
        free(x); free(w); free(b); free(ref); free(mag); free(y);
    }
}

/* The Winograd weights packed one kernel at a time, as the packing did
 * before it transformed several output channels at once: U = G g G^T in
 * double, then packed like tl_gemm_pack_a (kc-blocks of cin, slivers of
 * mr output channels, rows past cout zero). flip: w holds cin kernels of
 * cout channels, each taken rotated by 180 degrees. */
static void winograd_pack_ref(const tl_kws *ws, const tl_conv_geom *g, const float *w, int flip, float *packed)
{
    static const double G[6][3] = {{1.0 / 4, 0, 0},          {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                   {-1.0 / 6, 1.0 / 6, -1.0 / 6}, {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                   {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
    int mr = ws->impl->mr, KC = ws->impl->kc, K = g->cout, C = g->cin, Kpad = (K + mr - 1) / mr * mr;
    size_t per = (size_t)Kpad * C;
    for (int k = 0; k < Kpad; k++)
        for (int c = 0; c < C; c++) {
            double u[36] = {0}, t[6][3];
            float g3[9];
            for (int q = 0; q < 9 && k < K; q++)
                g3[q] = flip ? w[((size_t)c * K + k) * 9 + 8 - q] : w[((size_t)k * C + c) * 9 + q];
            for (int i = 0; i < 6 && k < K; i++)
                for (int j = 0; j < 3; j++)
                    t[i][j] = G[i][0] * g3[j] + G[i][1] * g3[3 + j] + G[i][2] * g3[6 + j];
            for (int i = 0; i < 6 && k < K; i++)
                for (int j = 0; j < 6; j++)
                    u[i * 6 + j] = t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2];
            int pc = c / KC * KC, kc = C - pc < KC ? C - pc : KC;
            size_t off = (size_t)pc * Kpad + (size_t)(k / mr * mr) * kc + (size_t)(c - pc) * mr + k % mr;
            for (int xi = 0; xi < 36; xi++)
                packed[xi * per + off] = (float)u[xi];
        }
}

/* The packed Winograd weights, whole and in 2, 3 and 7 parts, and the
 * flipped packing of the data gradient, bit for bit against the reference:
 * output channels that fill no sliver (35, 40 and 64 on mr 4, 6 and 12),
 * more input channels than a kc-block (400), weights with -0, tiny and
 * huge values. */
static void test_winograd_pack(tl_kws **ws, int nws, tl_rng *r)
{
    static const int shapes[][2] = {{64, 64}, {35, 20}, {24, 400}, {40, 48}, {17, 16}};
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        tl_conv_geom g = {.cin = shapes[c][1], .h = 28, .w = 28, .cout = shapes[c][0], .kh = 3, .kw = 3,
                          .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1};
        tl_conv_geom_finish(&g);
        size_t nw = (size_t)g.cout * g.cin * 9;
        float *w = malloc(nw * sizeof *w);
        for (size_t i = 0; i < nw; i++) {
            float v = tl_rng_normal(r);
            w[i] = i % 97 == 3 ? -0.0f : i % 89 == 5 ? v * 1e-30f : i % 83 == 7 ? v * 1e30f : v;
        }
        for (int p = 0; p < nws; p++) {
            CHECK_MSG(tl_winograd_applies(ws[p], &g), "%s %dx%d: not Winograd", tl_kws_simd_name(ws[p]), g.cout, g.cin);
            size_t n = tl_winograd_packed_floats(ws[p], &g);
            float *ref = malloc(n * sizeof *ref), *got = malloc(n * sizeof *got);
            for (int flip = 0; flip <= 1; flip++) {
                winograd_pack_ref(ws[p], &g, w, flip, ref);
                static const int splits[] = {1, 2, 3, 7};
                for (size_t q = 0; q < sizeof splits / sizeof splits[0]; q++) {
                    memset(got, 0xff, n * sizeof *got);
                    for (int part = 0; part < splits[q]; part++)
                        (flip ? tl_winograd_pack_flipped : tl_winograd_pack)(ws[p], &g, w, got, part, splits[q]);
                    CHECK_MSG(!memcmp(got, ref, n * sizeof *got), "%s winograd pack %dx%d flip %d in %d parts: "
                              "differs from one kernel at a time", tl_kws_simd_name(ws[p]), g.cout, g.cin, flip,
                              splits[q]);
                }
            }
            free(ref);
            free(got);
        }
        free(w);
    }
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void bench(tl_kws *ws, tl_rng *r)
{
    struct { const char *name; tl_conv_geom g; } cases[] = {
        {"mbv2 dw 3x3 s1 112x112x32", {.cin = 32, .h = 112, .w = 112, .cout = 32, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1, .groups = 32}},
        {"mbv2 dw 3x3 s2 112x112x96", {.cin = 96, .h = 112, .w = 112, .cout = 96, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1, .groups = 96}},
        {"mbv2 pw 1x1 56x56 24->144", {.cin = 24, .h = 56, .w = 56, .cout = 144, .kh = 1, .kw = 1}},
        {"vgg 3x3 56x56 256->256", {.cin = 256, .h = 56, .w = 56, .cout = 256, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1}},
        {"resnet 3x3 28x28 128->128", {.cin = 128, .h = 28, .w = 28, .cout = 128, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1}},
        {"resnet 3x3 14x14 256->256", {.cin = 256, .h = 14, .w = 14, .cout = 256, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1}},
        {"resnet 3x3 56x56 64->64", {.cin = 64, .h = 56, .w = 56, .cout = 64, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1}},
        {"resnet 3x3 7x7 512->512", {.cin = 512, .h = 7, .w = 7, .cout = 512, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1}},
        {"resnet 7x7/2 224 3->64", {.cin = 3, .h = 224, .w = 224, .cout = 64, .kh = 7, .kw = 7, .stride_h = 2, .stride_w = 2, .pad_t = 3, .pad_l = 3, .pad_b = 3, .pad_r = 3}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int exact = 0; exact <= 1; exact++) {
            tl_conv_geom g = cases[c].g;
            tl_conv_geom_finish(&g);
            tl_kws_set_exact(ws, 0);
            if (exact && tl_conv_forward_scratch_floats(ws, &g) == 0)
                break; /* the same algorithm either way */
            tl_kws_set_exact(ws, exact);
            size_t nx = (size_t)g.cin * g.h * g.w, ny = (size_t)g.cout * g.oh * g.ow;
            size_t nw = (size_t)g.cout * (g.cin / g.groups) * g.kh * g.kw;
            float *x = rand_buf(r, nx), *w = rand_buf(r, nw), *y = malloc(ny * sizeof *y);
            float *packed = tl_alloc_array(tl_conv_packed_floats(ws, &g), sizeof *packed);
            float *scratch = tl_alloc_array(tl_conv_forward_scratch_floats(ws, &g) + 1, sizeof *scratch);
            tl_conv_pack(ws, &g, w, packed);
            double flop = 2.0 * ny * (nw / g.cout), best = 1e9;
            for (int t = 0; t < 5; t++) { /* thread CPU time: less noisy on a shared machine */
                double t0 = cpu_now();
                tl_conv_forward_packed(ws, &g, x, packed, NULL, TL_ACT_RELU, y, 0, 1, scratch);
                best = fmin(best, cpu_now() - t0);
            }
            printf("bench conv %-6s %-28s %-9s %8.3f ms %7.1f GFLOPS (direct-equivalent)\n", tl_kws_simd_name(ws),
                   cases[c].name, tl_conv_forward_scratch_floats(ws, &g) ? "winograd" : "direct", best * 1e3,
                   flop / best * 1e-9);
            free(x); free(w); free(y);
            tl_free(packed);
            tl_free(scratch);
        }
    tl_kws_set_exact(ws, 0);
}

/* tl_conv_forward_images on n images held channel-major: the same bits
 * as each image alone through tl_conv_forward_fused (residual + relu
 * epilogue), for any split into parts: grouped, strided, dilated, 1x1,
 * and Winograd on maps whose tiles fill blocks only over the images
 * (7x7: 4 tiles an image; the edge tiles clipped), or over several blocks. */
static void test_images(tl_kws **ws, int nws, tl_rng *r)
{
    /* The last two: ResNet's 14x14 on 4 images (64 tiles: AVX-512 blocks of
     * 32 lanes, 16 for an image alone); 28x28 on 4 (7 blocks: 3 parts split
     * a group by blocks); padding 0/2 above/below, 2/0 left/right (the
     * small-map copy into padded planes clips rows and columns). */
    static const int shapes[][11] = {
        /* cin cout h w k stride pad dil groups images asymmetric-pad */
        {12, 20, 5, 6, 3, 1, 1, 1, 2, 3, 0},   {16, 40, 7, 7, 3, 2, 1, 1, 1, 3, 0},
        {24, 36, 7, 5, 1, 1, 0, 1, 1, 3, 0},   {8, 30, 9, 9, 1, 2, 0, 1, 1, 3, 0},
        {6, 14, 6, 7, 3, 1, 2, 2, 1, 3, 0},    {16, 20, 7, 7, 3, 1, 1, 1, 1, 3, 0},
        {20, 16, 9, 10, 3, 1, 0, 1, 1, 3, 0},  {17, 26, 14, 13, 3, 1, 1, 1, 1, 3, 0},
        {16, 24, 14, 14, 3, 1, 1, 1, 1, 4, 0}, {16, 20, 28, 28, 3, 1, 1, 1, 1, 4, 0},
        {16, 18, 12, 11, 3, 1, 0, 1, 1, 4, 1},
        /* Winograd's last blocks of a call by narrower kernels, so a tile
         * alone and in a group goes through kernels of different widths.
         * AVX-512 (AVX2): alone 196 tiles in 6 x 32 + 8 (12 x 16 + 8), 42 in
         * 32 + 16 (3 x 16), 20 in 16 + 8 (16 + 8); grouped 392 in 12 x 32 + 8
         * (24 x 16 + 8), 126 in 4 x 32 (8 x 16), 60 in 2 x 32 (4 x 16). */
        {16, 20, 56, 56, 3, 1, 1, 1, 1, 2, 0}, {19, 21, 21, 27, 3, 1, 1, 1, 1, 3, 0},
        {18, 17, 14, 18, 3, 1, 0, 1, 1, 3, 1},
    };
    for (int p = 0; p < nws; p++)
        for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
            const int *sh = shapes[c], N = sh[9], asym = sh[10];
            tl_conv_geom g = {.cin = sh[0], .cout = sh[1], .h = sh[2], .w = sh[3], .kh = sh[4], .kw = sh[4],
                              .stride_h = sh[5], .stride_w = sh[5], .pad_t = asym ? 0 : sh[6],
                              .pad_l = asym ? 2 : sh[6], .pad_b = asym ? 2 : sh[6], .pad_r = asym ? 0 : sh[6],
                              .dil_h = sh[7], .dil_w = sh[7], .groups = sh[8]};
            tl_conv_geom_finish(&g);
            tl_kws_set_images(ws[p], N);
            if (!tl_conv_images_applies(ws[p], &g))
                continue;
            int wino = sh[4] == 3 && sh[5] == 1 && sh[7] == 1 && sh[8] == 1;
            CHECK_MSG(!wino || tl_conv_forward_scratch_floats(ws[p], &g) > 0, "%s: %dx%d %d->%d not by Winograd",
                      paths[p], g.h, g.w, g.cin, g.cout);
            float *scratch = tl_alloc_array(tl_conv_forward_scratch_floats(ws[p], &g) + 1, sizeof(float));
            size_t hw = (size_t)g.h * g.w, ohw = (size_t)g.oh * g.ow;
            float *w = rand_buf(r, (size_t)g.cout * (g.cin / g.groups) * g.kh * g.kw), *b = rand_buf(r, g.cout);
            float *x = rand_buf(r, N * g.cin * hw), *res = rand_buf(r, N * g.cout * ohw);
            float *xg = malloc(N * g.cin * hw * sizeof(float)), *rg = malloc(N * g.cout * ohw * sizeof(float));
            float *y = malloc(N * g.cout * ohw * sizeof(float)), *yg = malloc(N * g.cout * ohw * sizeof(float));
            float *packed = tl_alloc_array(tl_conv_packed_floats(ws[p], &g), sizeof(float));
            tl_conv_pack(ws[p], &g, w, packed);
            for (int i = 0; i < N; i++) {
                tl_conv_fuse f = {.residual = res + i * g.cout * ohw};
                tl_conv_forward_fused(ws[p], &g, x + i * g.cin * hw, packed, b, TL_ACT_RELU, &f, y + i * g.cout * ohw,
                                      0, 1, scratch);
                for (int ch = 0; ch < g.cin; ch++)
                    memcpy(xg + ((size_t)ch * N + i) * hw, x + (i * g.cin + ch) * hw, hw * sizeof(float));
                for (int ch = 0; ch < g.cout; ch++)
                    memcpy(rg + ((size_t)ch * N + i) * ohw, res + (i * g.cout + ch) * ohw, ohw * sizeof(float));
            }
            for (int parts = 1; parts <= 3; parts++) {
                memset(yg, 0xFF, N * g.cout * ohw * sizeof(float));
                for (int part = 0; part < parts; part++)
                    tl_conv_forward_images(ws[p], &g, N, xg, packed, b, TL_ACT_RELU, rg, yg, part, parts, scratch);
                int same = 1;
                for (int i = 0; i < N; i++)
                    for (int ch = 0; ch < g.cout; ch++)
                        same &= !memcmp(yg + ((size_t)ch * N + i) * ohw, y + (i * g.cout + ch) * ohw,
                                        ohw * sizeof(float));
                CHECK_MSG(same, "%s: %d images of %dx%d %d->%d k%d s%d g%d in %d parts differ from one at a time",
                          paths[p], N, g.h, g.w, g.cin, g.cout, g.kh, g.stride_h, g.groups, parts);
            }
            free(w); free(b); free(x); free(res); free(xg); free(rg); free(y); free(yg);
            tl_free(packed);
            tl_free(scratch);
            tl_kws_set_images(ws[p], 1);
        }
}

/* Winograd's epilogue: the bias, a ReLU and the residual are applied to
 * each tile's values as A^T's last pass yields them (a ReLU or none), or
 * by tl_act_rows on the staged tile (other activations): either way each
 * output must be exactly act(y + b) (+ r), one rounding at a time, of the
 * layer run with no bias, no activation and no residual. Maps whose tiles
 * all lie inside (56x56: whole groups of 8 lanes), with clipped edge
 * tiles (14x13, 30x27 padded 0/2), ResNet's 7x7 over 4 images, in 1-3
 * parts; a NaN and -0 inputs (the ReLU takes both to +0; a NaN output
 * is only checked to be one: its sign and payload are the compiler's
 * choice, which may swap the operands of a sum). */
static void test_winograd_epilogue(tl_kws **ws, int nws, tl_rng *r)
{
    static const int shapes[][7] = {
        /* cin cout h w images pad_t/l pad_b/r */
        {16, 20, 56, 56, 1, 1, 1}, {24, 17, 14, 13, 3, 1, 1}, {20, 35, 30, 27, 1, 0, 2}, {32, 24, 7, 7, 4, 1, 1},
    };
    static const int acts[] = {TL_ACT_NONE, TL_ACT_RELU, TL_ACT_RELU6};
    for (int p = 0; p < nws; p++)
        for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
            const int *sh = shapes[c], N = sh[4];
            tl_conv_geom g = {.cin = sh[0], .cout = sh[1], .h = sh[2], .w = sh[3], .kh = 3, .kw = 3,
                              .pad_t = sh[5], .pad_l = sh[5], .pad_b = sh[6], .pad_r = sh[6]};
            tl_conv_geom_finish(&g);
            tl_kws_set_images(ws[p], N);
            CHECK_MSG(tl_winograd_applies(ws[p], &g), "%s: %dx%d not by Winograd", paths[p], g.h, g.w);
            size_t nx = (size_t)N * g.cin * g.h * g.w, ny = (size_t)N * g.cout * g.oh * g.ow;
            float *w = rand_buf(r, (size_t)g.cout * g.cin * 9), *b = rand_buf(r, g.cout), *x = rand_buf(r, nx);
            float *res = rand_buf(r, ny), *y0 = malloc(ny * sizeof(float)), *y = malloc(ny * sizeof(float));
            x[5] = -0.0f;
            x[nx / 2] = NAN;
            float *packed = tl_alloc_array(tl_conv_packed_floats(ws[p], &g), sizeof(float));
            float *scratch = tl_alloc_array(tl_conv_forward_scratch_floats(ws[p], &g) + 1, sizeof(float));
            tl_conv_pack(ws[p], &g, w, packed);
            tl_conv_forward_images(ws[p], &g, N, x, packed, NULL, TL_ACT_NONE, NULL, y0, 0, 1, scratch);
            for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++)
                for (int v = 0; v < 4; v++) { /* bias, residual: none, one, the other, both */
                    const float *bv = v & 1 ? b : NULL, *rv = v & 2 ? res : NULL;
                    if (!bv && !rv && acts[a] == TL_ACT_NONE)
                        continue;
                    for (int parts = 1; parts <= 3; parts++) {
                        memset(y, 0xFF, ny * sizeof(float));
                        for (int part = 0; part < parts; part++)
                            tl_conv_forward_images(ws[p], &g, N, x, packed, bv, acts[a], rv, y, part, parts, scratch);
                        size_t bad = ny;
                        for (size_t i = 0; i < ny && bad == ny; i++) {
                            float t = y0[i];
                            if (bv)
                                t = t + bv[i / ((size_t)N * g.oh * g.ow)];
                            t = acts[a] == TL_ACT_RELU ? (t > 0.0f ? t : 0.0f)
                                : acts[a] == TL_ACT_RELU6 ? (t < 0.0f ? 0.0f : t > 6.0f ? 6.0f : t)
                                                          : t;
                            if (rv)
                                t = t + rv[i];
                            if (isnan(t) ? !isnan(y[i]) : memcmp(&t, &y[i], sizeof t) != 0)
                                bad = i;
                        }
                        CHECK_MSG(bad == ny, "%s winograd %dx%d x%d act %d bias %d residual %d, %d parts: output %zu "
                                  "is %.9g, not %.9g", paths[p], g.h, g.w, N, acts[a], !!bv, !!rv, parts, bad,
                                  bad < ny ? y[bad] : 0.0, bad < ny ? y0[bad] : 0.0);
                    }
                }
            free(w); free(b); free(x); free(res); free(y0); free(y);
            tl_free(packed);
            tl_free(scratch);
            tl_kws_set_images(ws[p], 1);
        }
}

/* A 1x1 layer's columns past the last whole nr sliver go through the
 * narrower micro-kernels (16, 8 lanes), and a last row block of up to 4 or
 * 8 channels through kernels of that many rows: every output keeps the bits
 * the full-size kernel gives it where the rows and columns fill whole tiles
 * (the same channels first of 64, the same pixels first in a 1 x 256 map),
 * and so does a last column alone (17, 33, 49 pixels; and N = 1), which
 * takes the one-column product four slivers at a time (53, 64 channels),
 * with bias, relu6 / relu / none and a residual (the epilogue in the whole
 * tiles' stores or by separate passes), in 1 to 3 parts; K of 40 (one K
 * block) and 400 (two). */
static void test_narrow_tiles(tl_kws **ws, int nws, tl_rng *r)
{
    static const int widths[] = {1, 3, 4, 7, 8, 9, 12, 15, 16, 17, 20, 23, 24, 25, 31, 33, 40, 47, 49, 57, 63, 100,
                                 196};
    static const int chans[] = {17, 4, 8, 16, 20, 53, 64};
    const int NB = 256, MB = 64;
    for (int p = 0; p < nws; p++)
        for (int kk = 0; kk < 6; kk++) {
            /* relu6, relu, none: the whole tiles take them in the kernel's stores, the rest by separate passes */
            const int K = kk % 2 ? 400 : 40, act = kk < 2 ? TL_ACT_RELU6 : kk < 4 ? TL_ACT_RELU : TL_ACT_NONE;
            float *w = rand_buf(r, (size_t)MB * K), *b = rand_buf(r, MB), *xb = rand_buf(r, (size_t)K * NB);
            float *rb = rand_buf(r, (size_t)MB * NB), *yb = malloc((size_t)MB * NB * sizeof(float));
            float *x = malloc((size_t)K * NB * sizeof(float)), *res = malloc((size_t)MB * NB * sizeof(float));
            float *y = malloc((size_t)MB * NB * sizeof(float));
            tl_conv_geom g = {.cin = K, .cout = MB, .h = 1, .w = NB, .kh = 1, .kw = 1};
            tl_conv_geom_finish(&g);
            float *packed = tl_alloc_array(tl_conv_packed_floats(ws[p], &g), sizeof(float));
            tl_conv_pack(ws[p], &g, w, packed);
            tl_conv_fuse fb = {.residual = rb};
            tl_conv_forward_fused(ws[p], &g, xb, packed, b, act, &fb, yb, 0, 1, NULL);
            for (size_t mi = 0; mi < sizeof chans / sizeof chans[0]; mi++)
                for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
                    const int M = chans[mi], N = widths[wi];
                    tl_conv_geom gn = {.cin = K, .cout = M, .h = 1, .w = N, .kh = 1, .kw = 1};
                    tl_conv_geom_finish(&gn);
                    tl_conv_pack(ws[p], &gn, w, packed);
                    for (int c = 0; c < K; c++)
                        memcpy(x + (size_t)c * N, xb + (size_t)c * NB, N * sizeof(float));
                    for (int o = 0; o < M; o++)
                        memcpy(res + (size_t)o * N, rb + (size_t)o * NB, N * sizeof(float));
                    for (int parts = 1; parts <= 3; parts++) {
                        memset(y, 0xFF, (size_t)M * N * sizeof(float));
                        tl_conv_fuse f = {.residual = res};
                        for (int part = 0; part < parts; part++)
                            tl_conv_forward_fused(ws[p], &gn, x, packed, b, act, &f, y, part, parts, NULL);
                        int same = 1;
                        for (int o = 0; o < M; o++)
                            same &= !memcmp(y + (size_t)o * N, yb + (size_t)o * NB, N * sizeof(float));
                        CHECK_MSG(same, "%s: 1x1 %d->%d act %d on 1x%d in %d parts: not the bits of whole tiles",
                                  tl_kws_simd_name(ws[p]), K, M, act, N, parts);
                    }
                }
            free(w); free(b); free(xb); free(rb); free(yb); free(x); free(res); free(y);
            tl_free(packed);
        }
}

/* The channel-blocked depthwise kernels of AVX2 (8 lanes: 3x3 and 5x5
 * rows by sums_k33 / sums_k55 in runs of 8, or of 7 where 7 tiles a row
 * (28, 14, 7 wide), the rest by the generic tap loop) and
 * AVX-512 (16 lanes: 3x3 by sums_k33, 5x5 by the tap loop) add every
 * output's taps in the same order from the bias, one multiply-add each: the
 * same bits, for maps whose rows are whole runs of 8 pixels and not. */
static void test_dw_paths(tl_kws **ws, int nws, tl_rng *r)
{
    static const tl_conv_geom geoms[] = {
        {.cin = 37, .h = 28, .w = 28, .cout = 37, .kh = 5, .kw = 5, .pad_t = 2, .pad_l = 2, .pad_b = 2, .pad_r = 2, .groups = 37},
        {.cin = 20, .h = 14, .w = 14, .cout = 20, .kh = 5, .kw = 5, .pad_t = 2, .pad_l = 2, .pad_b = 2, .pad_r = 2, .groups = 20},
        {.cin = 19, .h = 33, .w = 35, .cout = 19, .kh = 5, .kw = 5, .stride_h = 2, .stride_w = 2, .pad_t = 1, .pad_l = 2, .pad_b = 2, .pad_r = 1, .groups = 19},
        {.cin = 9, .h = 8, .w = 8, .cout = 9, .kh = 5, .kw = 5, .groups = 9},
        {.cin = 26, .h = 7, .w = 7, .cout = 26, .kh = 5, .kw = 5, .pad_t = 2, .pad_l = 2, .pad_b = 2, .pad_r = 2, .groups = 26},
        {.cin = 11, .h = 14, .w = 14, .cout = 11, .kh = 5, .kw = 5, .stride_h = 2, .stride_w = 2, .pad_t = 1, .pad_l = 1, .pad_b = 2, .pad_r = 2, .groups = 11},
        {.cin = 10, .h = 21, .w = 23, .cout = 10, .kh = 5, .kw = 5, .pad_t = 2, .pad_l = 1, .pad_b = 2, .pad_r = 3, .groups = 10},
        {.cin = 24, .h = 30, .w = 17, .cout = 24, .kh = 3, .kw = 3, .pad_t = 1, .pad_l = 1, .pad_b = 1, .pad_r = 1, .groups = 24},
    };
    int i2 = -1, i5 = -1;
    for (int p = 0; p < nws; p++) {
        if (!strcmp(tl_kws_simd_name(ws[p]), "avx2"))
            i2 = p;
        if (!strncmp(tl_kws_simd_name(ws[p]), "avx512", 6))
            i5 = p;
    }
    if (i2 < 0 || i5 < 0) { /* an AVX2-only machine: the reference tolerance of run_geom is all that is left */
        printf("test_conv: depthwise avx2 = avx512 bit check skipped (needs both paths)\n");
        return;
    }
    for (size_t k = 0; k < sizeof geoms / sizeof geoms[0]; k++)
        for (int act = 0; act < 3; act++) {
            tl_conv_geom g = geoms[k];
            tl_conv_geom_finish(&g);
            const int a = act == 0 ? TL_ACT_NONE : act == 1 ? TL_ACT_RELU6 : TL_ACT_SILU;
            size_t nx = (size_t)g.cin * g.h * g.w, ny = (size_t)g.cout * g.oh * g.ow;
            float *x = rand_buf(r, nx), *w = rand_buf(r, (size_t)g.cout * g.kh * g.kw), *b = rand_buf(r, g.cout);
            float *y[2];
            for (int q = 0; q < 2; q++) {
                tl_kws *wq = ws[q ? i5 : i2];
                float *packed = tl_alloc_array(tl_conv_packed_floats(wq, &g), sizeof(float));
                float *scratch = tl_alloc_array(tl_conv_forward_scratch_floats(wq, &g) + 1, sizeof(float));
                y[q] = malloc(ny * sizeof(float));
                tl_conv_pack(wq, &g, w, packed);
                tl_conv_forward_packed(wq, &g, x, packed, b, a, y[q], 0, 1, scratch);
                tl_free(packed);
                tl_free(scratch);
            }
            char desc[256];
            describe(&g, desc, sizeof desc);
            CHECK_MSG(!memcmp(y[0], y[1], ny * sizeof(float)), "depthwise %s act %d: avx2 and avx512 differ", desc, a);
            free(x); free(w); free(b); free(y[0]); free(y[1]);
        }
}

/* The AVX2 3x3 stride-1 depthwise on the planes (tl_depthwise_forward_rows,
 * taken by tl_conv_forward_fused where tl_depthwise_rows_applies) against
 * the channel-blocked kernel it replaces there, bit for bit: widths from
 * 14 (ragged last vectors spilling into the next row; more than 8 vectors,
 * whose blocks go right to left), heights 1 to 15, symmetric, asymmetric,
 * none and wide padding, none / relu / relu6 with and without bias, 1 to 3
 * parts; some inputs zero and weights -0 (sign-of-zero sums). */
static void test_dw_rows(tl_kws **ws, int nws, tl_rng *r)
{
    static const int maps[][2] = {{14, 14}, {1, 15}, {2, 16}, {3, 17}, {15, 23}, {7, 28}, {5, 31},
                                  {4, 56}, {6, 65}, {3, 72}, {9, 112}, {2, 127}};
    static const int pads[][4] = {{1, 1, 1, 1}, {0, 0, 0, 0}, {0, 1, 1, 0}, {1, 0, 0, 1}, {2, 2, 2, 2}};
    static const int acts[] = {TL_ACT_NONE, TL_ACT_RELU, TL_ACT_RELU6};
    int ran = 0;
    for (int p = 0; p < nws; p++)
        for (size_t mi = 0; mi < sizeof maps / sizeof maps[0]; mi++)
            for (size_t pi = 0; pi < sizeof pads / sizeof pads[0]; pi++) {
                const int C = (int)(mi % 3) * 9 + 1; /* 1, 10, 19 channels */
                tl_conv_geom g = {.cin = C, .h = maps[mi][0], .w = maps[mi][1], .cout = C, .kh = 3, .kw = 3,
                                  .pad_t = pads[pi][0], .pad_l = pads[pi][1], .pad_b = pads[pi][2],
                                  .pad_r = pads[pi][3], .groups = C};
                tl_conv_geom_finish(&g);
                if (g.oh < 1 || g.ow < 1 || !tl_depthwise_rows_applies(ws[p], &g, TL_ACT_RELU6))
                    continue;
                const size_t nx = (size_t)C * g.h * g.w, ny = (size_t)C * g.oh * g.ow;
                float *x = rand_buf(r, nx), *w = rand_buf(r, (size_t)C * 9), *b = rand_buf(r, C);
                for (size_t i = 0; i < nx; i += 5)
                    x[i] = 0.0f;
                w[4] = -0.0f;
                float *y = malloc(ny * sizeof(float)), *want = malloc(ny * sizeof(float));
                float *packed = tl_alloc_array(tl_conv_packed_floats(ws[p], &g), sizeof(float));
                float *scratch = tl_alloc_array(tl_conv_forward_scratch_floats(ws[p], &g), sizeof(float));
                tl_conv_pack(ws[p], &g, w, packed);
                for (size_t ai = 0; ai < sizeof acts / sizeof acts[0]; ai++)
                    for (int nb = 0; nb < 2; nb++) {
                        const float *bias = nb ? b : NULL;
                        tl_depthwise_forward_blocked(ws[p], &g, x, packed, bias, acts[ai], want, NULL, 0, C, scratch);
                        for (int parts = 1; parts <= 3; parts++) {
                            memset(y, 0xFF, ny * sizeof(float));
                            for (int part = parts - 1; part >= 0; part--)
                                tl_conv_forward_packed(ws[p], &g, x, packed, bias, acts[ai], y, part, parts, scratch);
                            size_t bad = 0;
                            for (size_t i = 0; i < ny; i++)
                                bad += memcmp(y + i, want + i, sizeof(float)) != 0;
                            CHECK_MSG(bad == 0,
                                      "%s: depthwise rows %dx%d pad %d,%d,%d,%d c %d act %d bias %d, %d parts: %zu "
                                      "outputs not the blocked kernel's bits",
                                      tl_kws_simd_name(ws[p]), g.h, g.w, g.pad_t, g.pad_l, g.pad_b, g.pad_r, C,
                                      acts[ai], nb, parts, bad);
                            ran++;
                        }
                    }
                free(x); free(w); free(b); free(y); free(want);
                tl_free(packed);
                tl_free(scratch);
            }
    int avx2 = 0;
    for (int p = 0; p < nws; p++)
        avx2 |= !strcmp(tl_kws_simd_name(ws[p]), "avx2");
    CHECK_MSG(!avx2 || ran > 0, "the AVX2 depthwise rows path was not taken");
}

/* The excitation's channel scale applied as a 1x1 layer packs its input
 * (tl_conv_fuse.in_scale, EfficientNet's project layers) gives the bits of
 * the layer on the input scaled beforehand (one rounded product an element,
 * whichever path packs it), for maps of whole and partial slivers, K in
 * one and two K blocks, in 1 to 3 parts. */
static void test_in_scale(tl_kws **ws, int nws, tl_rng *r)
{
    static const int widths[] = {1, 7, 13, 17, 49, 100, 196};
    for (int p = 0; p < nws; p++)
        for (int kk = 0; kk < 2; kk++)
            for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
                const int K = kk ? 300 : 40, M = 21, N = widths[wi];
                tl_conv_geom g = {.cin = K, .cout = M, .h = 1, .w = N, .kh = 1, .kw = 1};
                tl_conv_geom_finish(&g);
                if (!(tl_conv_fusable(ws[p], &g) & TL_FUSE_IN_SCALE))
                    continue;
                float *w = rand_buf(r, (size_t)M * K), *b = rand_buf(r, M), *x = rand_buf(r, (size_t)K * N);
                float *sc = rand_buf(r, K), *xs = malloc((size_t)K * N * sizeof(float));
                float *want = malloc((size_t)M * N * sizeof(float)), *y = malloc((size_t)M * N * sizeof(float));
                for (int c = 0; c < K; c++)
                    for (int i = 0; i < N; i++)
                        xs[(size_t)c * N + i] = x[(size_t)c * N + i] * sc[c];
                float *packed = tl_alloc_array(tl_conv_packed_floats(ws[p], &g), sizeof(float));
                tl_conv_pack(ws[p], &g, w, packed);
                tl_conv_forward_fused(ws[p], &g, xs, packed, b, TL_ACT_SILU, NULL, want, 0, 1, NULL);
                for (int parts = 1; parts <= 3; parts++) {
                    memset(y, 0xFF, (size_t)M * N * sizeof(float));
                    tl_conv_fuse f = {.in_scale = sc};
                    for (int part = 0; part < parts; part++)
                        tl_conv_forward_fused(ws[p], &g, x, packed, b, TL_ACT_SILU, &f, y, part, parts, NULL);
                    CHECK_MSG(!memcmp(y, want, (size_t)M * N * sizeof(float)),
                              "%s: 1x1 %d->%d on 1x%d with the input scale fused, %d parts: not the bits of the "
                              "scaled input", tl_kws_simd_name(ws[p]), K, M, N, parts);
                }
                free(w); free(b); free(x); free(sc); free(xs); free(want); free(y);
                tl_free(packed);
            }
}

/* The direct k x k stride-2 stem (conv_stem.c) against the im2col + GEMM
 * route it replaces, bit for bit, on the AVX2 and AVX-512 paths: 3x3, 5x5
 * and 7x7 kernels on maps of 5x5 to 224x224 (output widths not a multiple
 * of 8 or 16, ragged last rows and columns, maps smaller than the
 * kernel), 1 to 4 input channels, 1 to 64 output channels (a partial last
 * block of channels and of the GEMM's mr), symmetric, asymmetric and no
 * padding, none / relu / relu6 / silu with and without bias, 1 or 3 images
 * in 1 to 3 parts; some inputs and weights zero (-0 against +0 sums). */
static void test_stem(tl_kws **ws, int nws, tl_rng *r)
{
    static const int maps[][3] = {{5, 5, 3}, {7, 9, 3}, {33, 31, 3}, {8, 6, 1}, {13, 11, 4}, {61, 97, 3}, {224, 224, 3}};
    static const int couts[] = {1, 5, 17, 32, 40, 64};
    static const int acts[] = {TL_ACT_NONE, TL_ACT_RELU, TL_ACT_RELU6, TL_ACT_SILU};
    int ran = 0;
    for (int p = 0; p < nws; p++)
        for (int k = 3; k <= 7; k += 2)
            for (size_t mi = 0; mi < sizeof maps / sizeof maps[0]; mi++)
                for (size_t ci = 0; ci < sizeof couts / sizeof couts[0]; ci++)
                    for (int pad = 0; pad < 3; pad++) {
                        const int big = maps[mi][0] > 100, h = k / 2; /* pad 0: h all round; 1: none; 2: TF SAME-like */
                        if ((big && couts[ci] < 32) || (big && k == 5) || (maps[mi][0] == 61 && couts[ci] % 16 == 0 && pad))
                            continue;
                        tl_conv_geom g = {.cin = maps[mi][2], .h = maps[mi][0], .w = maps[mi][1], .cout = couts[ci],
                                          .kh = k, .kw = k, .stride_h = 2, .stride_w = 2,
                                          .pad_t = pad == 0 ? h : pad == 1 ? 0 : h - 1,
                                          .pad_l = pad == 0 ? h : pad == 1 ? 0 : h - 1,
                                          .pad_b = pad == 1 ? 0 : h, .pad_r = pad == 1 ? 0 : h};
                        tl_conv_geom_finish(&g);
                        if (g.oh <= 0 || g.ow <= 0 || !tl_conv_stem_applies(ws[p], &g))
                            continue;
                        const int N = big ? 1 : 3;
                        tl_kws_set_images(ws[p], N);
                        const size_t hw = (size_t)g.h * g.w, ohw = (size_t)g.oh * g.ow, ny = (size_t)N * g.cout * ohw;
                        float *w = rand_buf(r, (size_t)g.cout * g.cin * k * k), *b = rand_buf(r, g.cout);
                        float *x = rand_buf(r, (size_t)N * g.cin * hw);
                        for (size_t i = 0; i < (size_t)N * g.cin * hw; i += 7)
                            x[i] = 0.0f;
                        w[0] = 0.0f;
                        float *y = malloc(ny * sizeof(float)), *want = malloc(ny * sizeof(float));
                        float *packed = tl_alloc_array(tl_conv_packed_floats(ws[p], &g), sizeof(float));
                        float *scratch = tl_alloc_array(tl_conv_forward_scratch_floats(ws[p], &g), sizeof(float));
                        tl_conv_pack(ws[p], &g, w, packed);
                        for (size_t ai = 0; ai < sizeof acts / sizeof acts[0]; ai++)
                            for (int nb = 0; nb < 2; nb++) {
                                const float *bias = nb ? b : NULL;
                                tl_conv_forward_gemm(ws[p], &g, N, x, packed, bias, acts[ai], NULL, want, 0, 1);
                                for (int parts = 1; parts <= 3; parts++) {
                                    memset(y, 0xFF, ny * sizeof(float));
                                    for (int part = 0; part < parts; part++)
                                        if (N == 1)
                                            tl_conv_forward_packed(ws[p], &g, x, packed, bias, acts[ai], y, part,
                                                                   parts, scratch);
                                        else
                                            tl_conv_forward_images(ws[p], &g, N, x, packed, bias, acts[ai], NULL, y,
                                                                   part, parts, scratch);
                                    size_t bad = 0;
                                    for (size_t i = 0; i < ny; i++)
                                        bad += memcmp(y + i, want + i, sizeof(float)) != 0;
                                    CHECK_MSG(bad == 0,
                                              "%s: stem %dx%d on %dx%d %d->%d pad %d,%d act %d bias %d, %d images in "
                                              "%d parts: %zu outputs not the GEMM's bits",
                                              tl_kws_simd_name(ws[p]), k, k, g.h, g.w, g.cin, g.cout, g.pad_t, g.pad_b,
                                              acts[ai], nb, N, parts, bad);
                                    ran++;
                                }
                            }
                        free(w); free(b); free(x); free(y); free(want);
                        tl_free(packed);
                        tl_free(scratch);
                        tl_kws_set_images(ws[p], 1);
                    }
    CHECK_MSG(nws < 2 || ran > 0, "the stem was not taken on any path");
}

int main(void)
{
    tl_err e;
    tl_rng r;
    tl_rng_seed(&r, 7);
    tl_kws *ws[3];
    int n = 0;
    for (int p = 0; p < 3; p++) {
        if (!tl_simd_supported(paths[p])) {
            printf("test_conv: %s not supported here, skipped\n", paths[p]);
            continue;
        }
        ws[n] = tl_kws_new_simd(paths[p], &e);
        CHECK_MSG(ws[n] != NULL, "%s", e.msg);
        if (ws[n])
            n++;
    }
    test_geom();
    test_fixed(ws, n, &r);
    test_random(ws, n, &r);
    test_winograd(ws, n, &r);
    test_winograd_pack(ws, n, &r);
    test_images(ws, n, &r);
    test_winograd_epilogue(ws, n, &r);
    test_narrow_tiles(ws, n, &r);
    test_in_scale(ws, n, &r);
    test_dw_paths(ws, n, &r);
    test_dw_rows(ws, n, &r);
    test_stem(ws, n, &r);
    test_torch(ws[n - 1], &r);
    const char *b = getenv("TL_BENCH");
    if (b && *b == '1')
        for (int p = 0; p < n; p++)
            bench(ws[p], &r);
    for (int p = 0; p < n; p++)
        tl_kws_free(ws[p]);
    return check_finish("test_conv");
}
