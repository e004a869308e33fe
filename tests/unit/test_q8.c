/* The int8 kernels on every SIMD path the CPU has, byte for byte against a
 * direct reference of TFLite's integer arithmetic: convolutions (1x1,
 * k x k with asymmetric padding, strides, dilation, 3-channel inputs,
 * channel counts that are not multiples of 16, weights within the
 * vpmaddubsw pair rule, full-range weights and int16 weights that need
 * planes), depthwise convolutions, the fixed-point multiplier, ADD, max
 * pooling and the float edges; splitting a layer into parts changes nothing. */
#include "check.h"
#include "kernels/q8_internal.h"
#include "kernels/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *paths[] = {"scalar", "avx2", "avx512", "avx512vnni"};

static uint32_t rng_state = 12345;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}
static int rnd_in(int lo, int hi) { return lo + (int)(rnd() % (uint32_t)(hi - lo + 1)); }

/* TFLite's reference: sum of (x - zin) * w over the window (padding reads
 * the zero point, contributing nothing) + bias, requantised, clamped. */
static void conv_ref(const tl_conv_geom *g, int cs_in, int cs_out, const uint8_t *x, const int16_t *w,
                     const int32_t *bias, const double *mult, const tl_q8_out *o, uint8_t *y)
{
    int dw = g->groups > 1, cin_g = dw ? 1 : g->cin;
    for (int oy = 0; oy < g->oh; oy++)
        for (int ox = 0; ox < g->ow; ox++)
            for (int oc = 0; oc < g->cout; oc++) {
                int64_t acc = bias[oc];
                for (int ci = 0; ci < cin_g; ci++)
                    for (int ky = 0; ky < g->kh; ky++)
                        for (int kx = 0; kx < g->kw; kx++) {
                            int iy = oy * g->stride_h - g->pad_t + ky * g->dil_h;
                            int ix = ox * g->stride_w - g->pad_l + kx * g->dil_w;
                            if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                                continue;
                            int ch = dw ? oc : ci;
                            int xv = x[((size_t)iy * g->w + ix) * cs_in + ch] - o->zin;
                            acc += (int64_t)xv * w[(((size_t)oc * cin_g + ci) * g->kh + ky) * g->kw + kx];
                        }
                int32_t m;
                int s;
                tl_q8_quantize_multiplier(mult[oc], &m, &s);
                /* ties: away from zero in depthwise layers (TFLite's kernels), up in others (ruy) */
                int32_t v = tl_q8_mul_round((int32_t)acc, m, s, dw) + o->zout;
                y[((size_t)oy * g->ow + ox) * cs_out + oc] = (uint8_t)(v < o->qmin ? o->qmin : v > o->qmax ? o->qmax : v);
            }
}

/* One random layer on every path and split; wmax bounds |w|. ties
 * (mode & CASE_TIES): the multipliers are powers of two and the sums
 * small, so the roundings meet exact halves of both signs (the
 * requantisation's tie rules). CASE_PLAIN: every multiplier under 1/2 and
 * the clamp [>= 0, 255], the layers the AVX-512 tiles requantise without
 * the short form's branches (rq16f); otherwise channel 0's multiplier is
 * above 1 and the clamp random, which keeps them off that path. */
#define CASE_TIES 1
#define CASE_PLAIN 2
static void conv_case_t(const char *what, tl_conv_geom g, int wmax, int pair_safe, int mode)
{
    const int ties = mode & CASE_TIES, plain = mode & CASE_PLAIN;
    tl_conv_geom_finish(&g);
    int dw = g.groups > 1;
    int cs_in = g.cin == 3 && !dw ? 4 : tl_q8_stride(g.cin), cs_out = tl_q8_stride(g.cout);
    int per = dw ? g.kh * g.kw : g.cin * g.kh * g.kw;
    size_t xn = (size_t)g.h * g.w * cs_in, yn = (size_t)g.oh * g.ow * cs_out;
    uint8_t *x = malloc(xn), *ref = calloc(yn, 1), *y = malloc(yn), *y3 = malloc(yn);
    int16_t *w = malloc((size_t)g.cout * per * sizeof *w);
    int32_t *bias = malloc((size_t)g.cout * sizeof *bias);
    double *mult = malloc((size_t)g.cout * sizeof *mult);
    for (size_t i = 0; i < xn; i++)
        x[i] = (uint8_t)rnd();
    for (int i = 0; i < g.cout * per; i++) {
        w[i] = (int16_t)rnd_in(-wmax, wmax);
        if (pair_safe && i % 2 && abs(w[i]) + abs(w[i - 1]) > 128)
            w[i] = (int16_t)(128 - abs(w[i - 1])) * (w[i] < 0 ? -1 : 1);
    }
    if (wmax == 255) /* an asymmetric uint8 weight's extremes: 255 - 0 and 0 - 255 */
        w[0] = 255, w[1] = -255;
    /* a typical output range: the sums' spread maps to about 0..255 */
    double spread = 128.0 * wmax * 0.6 * sqrt((double)per);
    for (int o = 0; o < g.cout; o++) {
        bias[o] = rnd_in(-20000, 20000);
        mult[o] = (120.0 / spread) * (0.5 + (rnd() % 1000) / 1000.0);
        if (o == 0 && !plain)
            mult[o] = 1.5; /* a multiplier above 1: the left shift */
        if (plain && mult[o] >= 0.5)
            mult[o] = 0.49;
        if (ties) {
            bias[o] = rnd_in(-3000, 3000);
            mult[o] = ldexp(1.0, -(o % 12) - 2 * plain); /* right shifts 0..11 (1..12 plain: 2^-1 is shift 0) */
        }
    }
    tl_q8_out oq = {.zin = rnd_in(0, 255), .zout = rnd_in(0, 255), .qmin = 0, .qmax = 255};
    if (rnd() % 2 && !(ties && plain)) { /* (plain ties: negative outputs stay visible) */
        oq.qmin = oq.zout;
        oq.qmax = plain ? 255 : rnd_in(oq.zout, 255);
    }
    conv_ref(&g, cs_in, cs_out, x, w, bias, mult, &oq, ref);
    const char *saved = getenv("TL_SIMD");
    char *keep = saved ? strdup(saved) : NULL;
    for (int p = 0; p < 4; p++) {
        if (!tl_simd_supported(paths[p]))
            continue;
        setenv("TL_SIMD", paths[p], 1);
        tl_err e = {0};
        tl_q8_conv *c = tl_q8_conv_new(&g, cs_in, cs_out, w, bias, mult, &oq, &e);
        CHECK_MSG(c != NULL, "%s: %s", what, e.msg);
        if (!c)
            continue;
        CHECK_MSG(!strcmp(tl_q8_conv_path(c), paths[p]), "%s: path %s, not %s", what, tl_q8_conv_path(c), paths[p]);
        if (plain && p > 0)
            CHECK_MSG(c->rq_short && !c->any_xs, "%s on %s: not the plain short form (%d %d)", what, paths[p], c->rq_short, c->any_xs);
        size_t sb = tl_q8_conv_scratch_bytes(c);
        void *scratch = sb ? tl_alloc_array(sb, 1) : NULL;
        memset(y, 0xAB, yn);
        tl_q8_conv_forward(c, x, y, 0, 1, scratch);
        memset(y3, 0xCD, yn);
        for (int part = 0; part < 3; part++)
            tl_q8_conv_forward(c, x, y3, part, 3, scratch);
        tl_free(scratch);
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < yn; i++)
            if ((int)(i % cs_out) < g.cout && y[i] != ref[i] && !bad++)
                first = i;
        CHECK_MSG(bad == 0, "%s on %s (%d planes): %zu of %zu bytes differ, first at %zu: %d vs %d", what, paths[p],
                  tl_q8_conv_planes(c), bad, yn, first, y[first], ref[first]);
        CHECK_MSG(!memcmp(y, y3, yn), "%s on %s: three parts differ from one", what, paths[p]);
        tl_q8_conv_free(c);
    }
    if (keep)
        setenv("TL_SIMD", keep, 1);
    else
        unsetenv("TL_SIMD");
    free(keep);
    free(x);
    free(ref);
    free(y);
    free(y3);
    free(w);
    free(bias);
    free(mult);
}

static void conv_case(const char *what, tl_conv_geom g, int wmax, int pair_safe)
{
    conv_case_t(what, g, wmax, pair_safe, 0);
}

static tl_conv_geom geom(int cin, int h, int w, int cout, int k, int s, int pt, int pl, int pb, int pr, int groups)
{
    tl_conv_geom g = {.cin = cin, .h = h, .w = w, .cout = cout, .kh = k, .kw = k, .stride_h = s, .stride_w = s,
                      .pad_t = pt, .pad_l = pl, .pad_b = pb, .pad_r = pr, .groups = groups};
    return g;
}

static void test_multiplier(void)
{
    /* m = mult * 2^(shift - 31) */
    double ms[] = {0.5, 0.75, 1e-5, 0.0003, 1.0, 3.7, 0.999999999};
    for (size_t i = 0; i < sizeof ms / sizeof *ms; i++) {
        int32_t m;
        int s;
        tl_q8_quantize_multiplier(ms[i], &m, &s);
        double back = m * pow(2.0, s - 31);
        CHECK_MSG(fabs(back - ms[i]) <= ms[i] * 1e-9, "%g -> %d, %d", ms[i], m, s);
        CHECK(m >= (1 << 30));
    }
    /* x * m: rounded twice (high multiply, then shift), so within one of the exact product */
    for (int i = 0; i < 20000; i++) {
        int32_t x = (int32_t)(rnd() % 2000001) - 1000000;
        double mult = (rnd() % 100000 + 1) / 1e6;
        int32_t m;
        int s;
        tl_q8_quantize_multiplier(mult, &m, &s);
        double exact = x * (m * pow(2.0, s - 31));
        int32_t got = tl_q8_mul(x, m, s);
        CHECK_MSG(fabs(got - exact) <= 1.0 + fabs(exact) * 1e-9, "x %d m %g: %d vs %g", x, mult, got, exact);
    }
    CHECK(tl_q8_rshift_round(5, 1, 1) == 3 && tl_q8_rshift_round(-5, 1, 1) == -3 && tl_q8_rshift_round(4, 1, 1) == 2);
    CHECK(tl_q8_rshift_round(-6, 2, 1) == -2 && tl_q8_rshift_round(7, 0, 1) == 7);
    /* ties up: -2.5 -> -2, 2.5 -> 3; others as before */
    CHECK(tl_q8_rshift_round(5, 1, 0) == 3 && tl_q8_rshift_round(-5, 1, 0) == -2 && tl_q8_rshift_round(-7, 2, 0) == -2);
    CHECK(tl_q8_rshift_round(-6, 2, 0) == -1 && tl_q8_rshift_round(-7, 0, 0) == -7);
}

/* Every pair of input bytes, on every path against the scalar rule: the
 * SIMD paths round each rescaling once in 64 bits, or in the short form
 * (32-bit inputs, the output from the high halves). Power-of-two scales
 * make exact ties at both roundings; equal scales give an input
 * multiplier of 1/2 (a shift of 0); a small first scale a large shift.
 * The last two give shifts the one-rounding paths do not take (a right
 * shift of 31: an input multiplier just under 2^-31; a left shift: an
 * output scale far below the inputs'): every path takes the scalar rule. */
static void test_add_all_pairs(void)
{
    static const double sc[][3] = {{0.05, 0.11, 0.13}, {1.0, 0.125, 0.25}, {0.5, 0.5, 0.0625}, {0.02, 0.02, 0.03},
                                   {1e-4, 0.3, 0.31}, {0.25, 1.0, 1.0 / 1024}, {0.7, 0.09, 2.9},
                                   {5e-5, 0.3, 0.31}, {0.5, 0.5, 1.0 / (0.75 * (1 << 20))},
                                   {0.5, 0.5, 1.0 / (0.375 * (1 << 20))}, {0.3, 2.5e-4, 0.2},
                                   {1.9e-10, 0.3, 0.31}, {0.5, 0.5, 1e-7}};
    /* the short form (fast): input shifts up to 12 (set 4 is 12, set 7's
     * first 13, set 10's second 11), output shifts from 1 (set 9; set 8's is 0) */
    static const int fast[] = {1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0};
    enum { NP = 256 * 256 };
    uint8_t *x1 = malloc(NP), *x2 = malloc(NP), *ref = malloc(NP), *y = malloc(NP);
    for (int i = 0; i < NP; i++) {
        x1[i] = (uint8_t)(i / 256);
        x2[i] = (uint8_t)(i % 256);
    }
    const char *saved = getenv("TL_SIMD");
    char *keep = saved ? strdup(saved) : NULL;
    for (size_t k = 0; k < sizeof sc / sizeof *sc; k++) {
        tl_q8_add a;
        int z1 = (int)(k * 37 % 256), z2 = (int)(255 - k * 53 % 256), zo = (int)(k * 91 % 256);
        int qmin = k % 2 ? zo : 0, qmax = k % 3 ? 255 : 200;
        tl_q8_add_init(&a, sc[k][0], z1, sc[k][1], z2, sc[k][2], zo, qmin < qmax ? qmin : 0, qmax);
        CHECK(a.one == (k < 11)); /* the last two take the scalar rule */
        CHECK_MSG(a.fast == fast[k], "ADD scales %zu: short form %d, expected %d", k, a.fast, fast[k]);
        setenv("TL_SIMD", "scalar", 1);
        tl_q8_add_forward(&a, 16, 16, NP / 16, x1, x2, ref);
        for (int p = 1; p < 4; p++) {
            if (!tl_simd_supported(paths[p]))
                continue;
            setenv("TL_SIMD", paths[p], 1);
            memset(y, 0xAB, NP);
            tl_q8_add_forward(&a, 16, 16, NP / 16, x1, x2, y);
            size_t bad = 0, first = 0;
            for (size_t i = 0; i < NP; i++)
                if (y[i] != ref[i] && !bad++)
                    first = i;
            CHECK_MSG(bad == 0, "ADD scales %zu on %s: %zu pairs differ, first %d + %d: %d vs %d", k, paths[p], bad,
                      x1[first], x2[first], y[first], ref[first]);
            /* a length no vector width divides: the tail, and nothing past the end */
            memset(y, 0xAB, NP);
            tl_q8_add_forward(&a, 1, 1, NP - 5, x1, x2, y);
            CHECK_MSG(!memcmp(y, ref, NP - 5), "ADD scales %zu on %s: the tail differs", k, paths[p]);
            CHECK(y[NP - 5] == 0xAB && y[NP - 1] == 0xAB);
        }
    }
    if (keep)
        setenv("TL_SIMD", keep, 1);
    else
        unsetenv("TL_SIMD");
    free(keep);
    free(x1);
    free(x2);
    free(ref);
    free(y);
}

/* A tie at an input's rounding that reaches the output: input 1's
 * multiplier is (2^30 + 2^22) 2^-12, so x1 - z1 = -127 rescales to -127 x
 * 128.5, which rounds away to -16320 (to -16319 if the tie went up), and
 * the output (2^-7 of the sum) is then -127.5, away -128 (or -127). The
 * all-pairs sets' outputs are too fine to see input ties. */
static void test_add_input_tie(void)
{
    tl_q8_add a;
    tl_q8_add_init(&a, (1 + 1.0 / 256) / 4096, 200, 1.0, 50, 1.0 / 4096, 160, 0, 255);
    CHECK(a.fast);
    enum { NP = 256 * 256 };
    uint8_t *x1 = malloc(NP), *x2 = malloc(NP), *ref = malloc(NP), *y = malloc(NP);
    for (int i = 0; i < NP; i++) {
        x1[i] = (uint8_t)(i / 256);
        x2[i] = (uint8_t)(i % 256);
    }
    const char *saved = getenv("TL_SIMD");
    char *keep = saved ? strdup(saved) : NULL;
    setenv("TL_SIMD", "scalar", 1);
    tl_q8_add_forward(&a, 16, 16, NP / 16, x1, x2, ref);
    CHECK_MSG(ref[73 * 256 + 50] == 32, "scalar ADD of 73 + 50: %d, expected 32", ref[73 * 256 + 50]);
    for (int p = 1; p < 4; p++) {
        if (!tl_simd_supported(paths[p]))
            continue;
        setenv("TL_SIMD", paths[p], 1);
        tl_q8_add_forward(&a, 16, 16, NP / 16, x1, x2, y);
        CHECK_MSG(!memcmp(y, ref, NP), "ADD input tie on %s: 73 + 50 gives %d", paths[p], y[73 * 256 + 50]);
    }
    if (keep)
        setenv("TL_SIMD", keep, 1);
    else
        unsetenv("TL_SIMD");
    free(keep);
    free(x1);
    free(x2);
    free(ref);
    free(y);
}

static void test_add(void)
{
    tl_q8_add a;
    double s1 = 0.05, s2 = 0.11, so = 0.13;
    tl_q8_add_init(&a, s1, 120, s2, 7, so, 130, 0, 255);
    enum { C = 20, CS = 32, N = 9 };
    uint8_t x1[N * CS], x2[N * CS], y[N * CS];
    for (int i = 0; i < N * CS; i++) {
        x1[i] = i % CS < C ? (uint8_t)rnd() : 120; /* padding channels hold the zero points */
        x2[i] = i % CS < C ? (uint8_t)rnd() : 7;
    }
    const char *saved = getenv("TL_SIMD");
    char *keep = saved ? strdup(saved) : NULL;
    uint8_t yp[4][N * CS];
    int np = 0;
    for (int p = 0; p < 4; p++) {
        if (!tl_simd_supported(paths[p]))
            continue;
        setenv("TL_SIMD", paths[p], 1);
        tl_q8_add_forward(&a, C, CS, N, x1, x2, yp[np++]);
    }
    if (keep)
        setenv("TL_SIMD", keep, 1);
    else
        unsetenv("TL_SIMD");
    free(keep);
    for (int k = 1; k < np; k++)
        CHECK_MSG(!memcmp(yp[0], yp[k], sizeof yp[0]), "ADD: path %d differs from scalar", k);
    tl_q8_add_forward(&a, C, CS, N, x1, x2, y);
    int worst = 0;
    for (int p = 0; p < N; p++)
        for (int c = 0; c < CS; c++) {
            int i = p * CS + c;
            if (c >= C) {
                CHECK(y[i] == 130);
                continue;
            }
            double real = s1 * (x1[i] - 120) + s2 * (x2[i] - 7);
            double q = fmin(255, fmax(0, round(real / so) + 130));
            int d = abs(y[i] - (int)q);
            worst = d > worst ? d : worst;
        }
    CHECK_MSG(worst <= 1, "ADD off by %d from the rounded real sum", worst);
}

/* Max pooling on every path against a direct maximum over the window's
 * taps inside the map: odd sizes, ceil_mode, a 2x2, a stride-1 and an
 * asymmetric window with uneven padding, 16/48/64 bytes a pixel (the
 * SIMD rows take 32 and 16 at a time). */
static void test_pool_geoms(void)
{
    static const int G[][10] = {/* h, w, kh, kw, sh, sw, pt, pl, pb, pr */
                                {13, 11, 3, 3, 2, 2, 1, 1, 1, 1}, {8, 9, 2, 2, 2, 2, 0, 0, 0, 0},
                                {5, 6, 3, 3, 1, 1, 1, 1, 1, 1},   {9, 7, 5, 3, 2, 1, 2, 1, 1, 0},
                                {4, 3, 1, 1, 1, 1, 0, 0, 0, 0}};
    static const int CS[] = {16, 48, 64};
    static uint8_t x[13 * 11 * 64], y[13 * 11 * 64], ref[13 * 11 * 64];
    const char *saved = getenv("TL_SIMD");
    char *keep = saved ? strdup(saved) : NULL;
    for (size_t k = 0; k < sizeof G / sizeof *G; k++)
        for (int ceil = 0; ceil < 2; ceil++)
            for (int ci = 0; ci < 3; ci++) {
                const int *d = G[k];
                int cs = CS[ci];
                tl_pool_geom g = {.c = cs - 3, .h = d[0], .w = d[1], .kh = d[2], .kw = d[3], .stride_h = d[4],
                                  .stride_w = d[5], .pad_t = d[6], .pad_l = d[7], .pad_b = d[8], .pad_r = d[9],
                                  .ceil_mode = ceil};
                tl_pool_geom_finish(&g);
                for (int i = 0; i < g.h * g.w * cs; i++)
                    x[i] = (uint8_t)rnd();
                for (int oy = 0; oy < g.oh; oy++)
                    for (int ox = 0; ox < g.ow; ox++)
                        for (int c = 0; c < cs; c++) {
                            int m = 0;
                            for (int ky = 0; ky < g.kh; ky++)
                                for (int kx = 0; kx < g.kw; kx++) {
                                    int iy = oy * g.stride_h - g.pad_t + ky, ix = ox * g.stride_w - g.pad_l + kx;
                                    if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w && x[(iy * g.w + ix) * cs + c] > m)
                                        m = x[(iy * g.w + ix) * cs + c];
                                }
                            ref[(oy * g.ow + ox) * cs + c] = (uint8_t)m;
                        }
                for (int p = 0; p < 4; p++) {
                    if (!tl_simd_supported(paths[p]))
                        continue;
                    setenv("TL_SIMD", paths[p], 1);
                    memset(y, 0xAB, sizeof y);
                    tl_q8_maxpool(&g, cs, x, y);
                    CHECK_MSG(!memcmp(y, ref, (size_t)g.oh * g.ow * cs) && y[g.oh * g.ow * cs] == 0xAB,
                              "max pool geometry %zu ceil %d cs %d on %s", k, ceil, cs, paths[p]);
                }
            }
    if (keep)
        setenv("TL_SIMD", keep, 1);
    else
        unsetenv("TL_SIMD");
    free(keep);
}

static void test_pool_edges(void)
{
    tl_pool_geom g = {.c = 5, .h = 7, .w = 6, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_t = 1, .pad_l = 1,
                      .pad_b = 1, .pad_r = 1};
    tl_pool_geom_finish(&g);
    int cs = 16;
    uint8_t x[7 * 6 * 16], y[4 * 3 * 16];
    for (size_t i = 0; i < sizeof x; i++)
        x[i] = (uint8_t)rnd();
    tl_q8_maxpool(&g, cs, x, y);
    int ok = 1;
    for (int oy = 0; oy < g.oh; oy++)
        for (int ox = 0; ox < g.ow; ox++)
            for (int c = 0; c < g.c; c++) {
                int m = 0;
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++) {
                        int iy = oy * 2 - 1 + ky, ix = ox * 2 - 1 + kx;
                        if (iy >= 0 && iy < 7 && ix >= 0 && ix < 6 && x[(iy * 6 + ix) * cs + c] > m)
                            m = x[(iy * 6 + ix) * cs + c];
                    }
                ok &= y[(oy * g.ow + ox) * cs + c] == m;
            }
    CHECK(ok);
    /* float edges: quantise then dequantise is within half a step */
    float f[3 * 10], back[3 * 10];
    uint8_t q[10 * 16];
    for (int i = 0; i < 30; i++)
        f[i] = (float)((int)(rnd() % 2000) - 1000) / 500.0f;
    tl_q8_quantize_chw(3, 10, f, 0.01f, 128, 16, q);
    /* every path rounds as roundf does, ties away from zero included */
    enum { QC = 37, QHW = 300 }; /* one full 32-channel x 256-pixel block (the SIMD transpose) and partial ones */
    static float fx[QC * QHW];
    static uint8_t qp[4][QHW * 48];
    for (int i = 0; i < QC * QHW; i++)
        fx[i] = (float)((int)(rnd() % 4001) - 2000) / 8.0f * 0.01f; /* many exact halves */
    const char *saved = getenv("TL_SIMD");
    char *keep = saved ? strdup(saved) : NULL;
    int np = 0;
    for (int p = 0; p < 4; p++) {
        if (!tl_simd_supported(paths[p]))
            continue;
        setenv("TL_SIMD", paths[p], 1);
        tl_q8_quantize_chw(QC, QHW, fx, 0.01f, 100, 48, qp[np++]);
    }
    if (keep)
        setenv("TL_SIMD", keep, 1);
    else
        unsetenv("TL_SIMD");
    free(keep);
    int same = 1, right = 1;
    for (int k = 1; k < np; k++)
        same &= !memcmp(qp[0], qp[k], sizeof qp[0]);
    for (int p = 0; p < QHW; p++)
        for (int ch = 0; ch < 48; ch++) {
            int want = 100;
            if (ch < QC) {
                float v = roundf(fx[ch * QHW + p] / 0.01f) + 100;
                want = v < 0 ? 0 : v > 255 ? 255 : (int)v;
            }
            right &= qp[0][p * 48 + ch] == want;
        }
    CHECK(same && right);
    /* an RGB image into 4-byte pixels (the first convolution's input under
     * --quantize-ends): its own loop, every path, the fourth byte the zero point */
    static uint8_t q4[QHW * 4];
    int rgb = 1;
    saved = getenv("TL_SIMD");
    keep = saved ? strdup(saved) : NULL;
    for (int p = 0; p < 4; p++) {
        if (!tl_simd_supported(paths[p]))
            continue;
        setenv("TL_SIMD", paths[p], 1);
        memset(q4, 0xEE, sizeof q4);
        tl_q8_quantize_chw(3, QHW, fx, 0.01f, 77, 4, q4);
        for (int px = 0; px < QHW; px++)
            for (int ch = 0; ch < 4; ch++) {
                int want = 77;
                if (ch < 3) {
                    float v = roundf(fx[ch * QHW + px] / 0.01f) + 77;
                    want = v < 0 ? 0 : v > 255 ? 255 : (int)v;
                }
                rgb &= q4[px * 4 + ch] == want;
            }
    }
    if (keep)
        setenv("TL_SIMD", keep, 1);
    else
        unsetenv("TL_SIMD");
    free(keep);
    CHECK_MSG(rgb, "quantize_chw into 4-byte pixels differs from roundf");
    tl_q8_dequantize_chw(3, 10, 16, q, 0.01f, 128, back);
    int close = 1;
    for (int i = 0; i < 30; i++)
        close &= fabsf(back[i] - fminf(fmaxf(f[i], -1.28f), 1.27f)) <= 0.005f + 1e-6f;
    CHECK(close && q[3] == 128 && q[15] == 128);
    /* dequantising: 16 x 16 SIMD blocks and the partial ones, the same floats on every path */
    static float dq[QC * QHW];
    int exact = 1;
    saved = getenv("TL_SIMD");
    keep = saved ? strdup(saved) : NULL;
    for (int p = 0; p < 4; p++) {
        if (!tl_simd_supported(paths[p]))
            continue;
        setenv("TL_SIMD", paths[p], 1);
        memset(dq, 0xFF, sizeof dq);
        tl_q8_dequantize_chw(QC, QHW, 48, qp[0], 0.37f, 91, dq);
        for (int px = 0; px < QHW; px++)
            for (int ch = 0; ch < QC; ch++)
                exact &= dq[ch * QHW + px] == (float)(qp[0][px * 48 + ch] - 91) * 0.37f;
    }
    if (keep)
        setenv("TL_SIMD", keep, 1);
    else
        unsetenv("TL_SIMD");
    free(keep);
    CHECK_MSG(exact, "dequantize_chw differs from (q - zero) * scale");
}

/* Max pooling on every path against a direct maximum (80 channels: two
 * 32-byte runs and a 16-byte one), and quantising before pooling gives
 * the bytes of pooling in float and quantising after (what the engine
 * relies on to pool a float first convolution's output in uint8):
 * rounding is monotone, so the maximum of the rounded values is the
 * rounded maximum, clamping and ties included. */
static void test_pool_commutes(void)
{
    enum { C = 70, CS = 80, H = 13, W = 11 };
    tl_pool_geom g = {.c = C, .h = H, .w = W, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_t = 1,
                      .pad_l = 1, .pad_b = 1, .pad_r = 1};
    tl_pool_geom_finish(&g);
    int ohw = g.oh * g.ow;
    static float f[C * H * W], fp[C * H * W];
    static uint8_t q[H * W * CS], a[4][H * W * CS], b[H * W * CS], ref[H * W * CS];
    for (int i = 0; i < C * H * W; i++) /* exact halves of the step, values clamped at both ends */
        f[i] = (float)((int)(rnd() % 801) - 300) * 0.005f;
    const char *saved = getenv("TL_SIMD");
    char *keep = saved ? strdup(saved) : NULL;
    int np = 0, right = 1, commutes = 1;
    for (int p = 0; p < 4; p++) {
        if (!tl_simd_supported(paths[p]))
            continue;
        setenv("TL_SIMD", paths[p], 1);
        tl_q8_quantize_chw(C, H * W, f, 0.01f, 37, CS, q);
        memset(a[np], 0xAB, sizeof a[np]);
        tl_q8_maxpool(&g, CS, q, a[np]);
        for (int px = 0; px < ohw; px++) {
            int oy = px / g.ow, ox = px % g.ow;
            for (int ch = 0; ch < CS; ch++) {
                int m = -1;
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++) {
                        int iy = oy * 2 - 1 + ky, ix = ox * 2 - 1 + kx;
                        if (iy >= 0 && iy < H && ix >= 0 && ix < W && q[(iy * W + ix) * CS + ch] > m)
                            m = q[(iy * W + ix) * CS + ch];
                    }
                ref[px * CS + ch] = (uint8_t)m;
            }
        }
        right &= !memcmp(a[np], ref, (size_t)ohw * CS);
        tl_maxpool2d(&g, f, fp); /* the float path: pool, then quantise */
        tl_q8_quantize_chw(C, ohw, fp, 0.01f, 37, CS, b);
        commutes &= !memcmp(a[np], b, (size_t)ohw * CS);
        np++;
    }
    if (keep)
        setenv("TL_SIMD", keep, 1);
    else
        unsetenv("TL_SIMD");
    free(keep);
    CHECK_MSG(right, "uint8 max pooling differs from the direct maximum");
    CHECK_MSG(commutes, "quantise then pool differs from pool then quantise");
}

/* The integer Winograd's scratch is one band of tiles, not the whole map:
 * VGG-16's conv1_2 at 224x224 took 25.7 MB per worker before bands. */
static void test_wino_scratch(void)
{
    tl_conv_geom g = geom(64, 224, 224, 64, 3, 1, 1, 1, 1, 1, 1);
    tl_conv_geom_finish(&g);
    int16_t *w = calloc((size_t)64 * 64 * 9, sizeof *w);
    int32_t bias[64] = {0};
    double mult[64];
    for (int o = 0; o < 64; o++)
        mult[o] = 0.001;
    tl_q8_out oq = {.zin = 3, .zout = 5, .qmin = 0, .qmax = 255};
    const char *saved = getenv("TL_SIMD");
    char *keep = saved ? strdup(saved) : NULL;
    for (int p = 0; p < 4; p++) {
        if (!tl_simd_supported(paths[p]))
            continue;
        setenv("TL_SIMD", paths[p], 1);
        tl_err e = {0};
        tl_q8_conv *c = tl_q8_conv_new(&g, 64, 64, w, bias, mult, &oq, &e);
        CHECK_MSG(c != NULL, "224x224 3x3: %s", e.msg);
        if (!c)
            continue;
        CHECK_MSG(tl_q8_conv_scratch_bytes(c) <= (1u << 20), "224x224x64 3x3 on %s: scratch %zu bytes", paths[p],
                  tl_q8_conv_scratch_bytes(c));
        tl_q8_conv_free(c);
    }
    if (keep)
        setenv("TL_SIMD", keep, 1);
    else
        unsetenv("TL_SIMD");
    free(keep);
    free(w);
}

/* The float stem quantised in its stores (tl_q8_fconv) against the two
 * steps it replaces, the float GEMM path then the quantise pass, byte for
 * byte on every SIMD path that takes it (7x7 stride 2 as ResNet's, 3x3
 * stride 2 as MobileNetV2's, TF SAME padding, 48 channels = 32 + 16, row
 * widths that leave short tiles, a channel stride above cout), and against
 * a double reference within half a step. big: channel 0 is 2^20 with
 * weights +1 on its first tap and -1 on its last (0 between), so the sums
 * cancel after carrying the taps between at an ulp of 1/8 (of 1/0.05
 * steps): any other order of the sums gives other bytes (the kernel's
 * tap loop run backwards fails it), and the reference check is skipped. */
static void fconv_case(const char *name, tl_conv_geom g, int act, int cs, int big)
{
    tl_conv_geom_finish(&g);
    const int K = g.cin * g.kh * g.kw, ohw = g.oh * g.ow;
    const float scale = big ? 0.05f : 0.02f;
    const int zero = act == TL_ACT_NONE ? 120 : 0;
    float *x = malloc(sizeof(float) * (size_t)g.cin * g.h * g.w), *w = malloc(sizeof(float) * (size_t)g.cout * K);
    float *bias = malloc(sizeof(float) * (size_t)g.cout), *yf = malloc(sizeof(float) * (size_t)g.cout * ohw);
    uint8_t *ref = malloc((size_t)ohw * cs), *got = malloc((size_t)ohw * cs);
    for (int i = 0; i < g.cin * g.h * g.w; i++)
        x[i] = (float)((int)(rnd() % 4001) - 2000) * 0.001f;
    for (int i = 0; i < g.cout * K; i++)
        w[i] = (float)((int)(rnd() % 2001) - 1000) * (0.6f / (float)K);
    for (int o = 0; o < g.cout; o++)
        bias[o] = (float)((int)(rnd() % 201) - 100) * 0.01f;
    if (big) {
        for (int i = 0; i < g.h * g.w; i++)
            x[i] = 1048576.0f;
        for (int o = 0; o < g.cout; o++)
            for (int t = 0; t < g.kh * g.kw; t++)
                w[(size_t)o * K + t] = t == 0 ? 1.0f : t == g.kh * g.kw - 1 ? -1.0f : 0.0f;
    }
    const char *saved = getenv("TL_SIMD");
    char *keep = saved ? strdup(saved) : NULL;
    int taken = 0;
    for (int p = 1; p < 4; p++) {
        if (!tl_simd_supported(paths[p]))
            continue;
        setenv("TL_SIMD", paths[p], 1);
        tl_err e = {0};
        tl_kws *ws = tl_kws_new_simd(paths[p], &e);
        CHECK_MSG(ws != NULL, "%s", e.msg);
        if (!ws)
            continue;
        if (!tl_q8_fconv_fits(ws, &g)) {
            tl_kws_free(ws);
            continue;
        }
        taken++;
        float *packed = malloc(sizeof(float) * tl_conv_packed_floats(ws, &g));
        float *scratch = malloc(sizeof(float) * (tl_conv_forward_scratch_floats(ws, &g) + 1));
        float *pw = malloc(sizeof(float) * tl_q8_fconv_weights_floats(&g));
        float *fs = malloc(sizeof(float) * tl_q8_fconv_scratch_floats(&g));
        tl_conv_pack(ws, &g, w, packed);
        tl_conv_forward_packed(ws, &g, x, packed, bias, act, yf, 0, 1, scratch);
        tl_q8_quantize_chw(g.cout, ohw, yf, scale, zero, cs, ref);
        tl_q8_fconv_pack(&g, w, pw);
        memset(got, 0xAB, (size_t)ohw * cs);
        tl_q8_fconv(ws, &g, x, pw, bias, act, scale, zero, cs, got, fs);
        int diff = -1;
        for (int i = 0; i < ohw * cs && diff < 0; i++)
            if (got[i] != ref[i])
                diff = i;
        CHECK_MSG(diff < 0, "fconv %s on %s: byte %d is %d, the float path then quantise gives %d", name, paths[p],
                  diff, diff < 0 ? 0 : got[diff], diff < 0 ? 0 : ref[diff]);
        double worst = 0;
        for (int oy = 0; oy < g.oh; oy++)
            for (int ox = 0; ox < g.ow; ox++)
                for (int o = 0; o < g.cout; o++) {
                    double acc = bias[o];
                    for (int c = 0; c < g.cin; c++)
                        for (int ky = 0; ky < g.kh; ky++)
                            for (int kx = 0; kx < g.kw; kx++) {
                                int iy = oy * g.stride_h - g.pad_t + ky * g.dil_h, ix = ox * g.stride_w - g.pad_l + kx * g.dil_w;
                                if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w)
                                    acc += (double)w[(size_t)o * K + (c * g.kh + ky) * g.kw + kx] *
                                           x[((size_t)c * g.h + iy) * g.w + ix];
                            }
                    if (act == TL_ACT_RELU || act == TL_ACT_RELU6)
                        acc = acc < 0 ? 0 : act == TL_ACT_RELU6 && acc > 6 ? 6 : acc;
                    double q = acc / scale + zero;
                    q = q < 0 ? 0 : q > 255 ? 255 : q;
                    double d = fabs(got[(size_t)(oy * g.ow + ox) * cs + o] - q);
                    worst = d > worst ? d : worst;
                }
        CHECK_MSG(big || worst <= 0.5 + 1e-3, "fconv %s on %s: %.3f steps from the double reference", name, paths[p], worst);
        for (int i = 0; i < ohw; i++)
            for (int c = g.cout; c < cs; c++)
                CHECK(got[(size_t)i * cs + c] == zero);
        free(packed), free(scratch), free(pw), free(fs);
        tl_kws_free(ws);
    }
#if defined(__x86_64__)
    if (tl_simd_supported("avx2"))
        CHECK_MSG(taken > 0, "fconv %s: no path took it", name);
#endif
    if (keep)
        setenv("TL_SIMD", keep, 1);
    else
        unsetenv("TL_SIMD");
    free(keep);
    free(x), free(w), free(bias), free(yf), free(ref), free(got);
}

/* The SIMD paths' short requantisation (requant_short, q8_conv.c) against
 * their one-rounding form and TFLite's scalar rule, as int32 before packing (qmin/qmax wide open,
 * so no clamp hides a difference): sums at both ends of each channel's
 * bound and next to them, at 0 and +-1, random ones, and ties (power-of-two
 * multipliers); right shifts 0..22, multipliers >= 1/2 (x doubled) and > 1
 * (TFLite's left shift), the bias putting the bound just under the limit of
 * the doubled x (2^30 - 1) and, in a second layer, at it (2^30: the layer
 * must keep requant8). Ties up (1x1) and away from zero (depthwise). */
static void requant_short_case(const char *path, int dw, int at_limit, int ties)
{
    const int cout = 48;
    tl_conv_geom g = geom(dw ? cout : 4, 2, 2, cout, dw ? 3 : 1, 1, dw, dw, dw, dw, dw ? cout : 1);
    tl_conv_geom_finish(&g);
    int per = dw ? 9 : 4, cs_in = dw ? 48 : 4;
    int16_t w[48 * 9];
    int32_t bias[48];
    double mult[48];
    for (int i = 0; i < cout * per; i++)
        w[i] = (int16_t)rnd_in(-255, 255);
    for (int o = 0; o < cout; o++) {
        int e = o % 24; /* shifts 0..22; 23: a multiplier in [1, 2), left shift 1 */
        mult[o] = e == 23 ? 1.0 + (rnd() % 1000) / 1000.0 : ldexp(0.5 + (rnd() % 1000) / 2000.0, -e);
        if (ties)
            mult[o] = e == 23 ? 1.0 : ldexp(1.0, -e - 1);
        int64_t pos = 0;
        for (int k = 0; k < per; k++)
            pos += w[o * per + k] > 0 ? w[o * per + k] : 0;
        /* the bound 255 pos + bias of the channels whose x is doubled:
         * 2^30 - 1 (fits) or 2^30 (does not) for a multiplier in [1/2, 1),
         * 2^29 - 1 / 2^29 for one in [1, 2) (doubled and shifted) */
        int64_t lim = e == 0 ? 1ll << 30 : e == 23 ? 1ll << 29 : (1ll << 30) + (rnd() % 1000000);
        bias[o] = (int32_t)(lim - (at_limit && (e == 0 || e == 23) ? 0 : 1) - 255 * pos);
    }
    tl_q8_out oq = {.zin = 0, .zout = rnd_in(0, 255), .qmin = INT32_MIN, .qmax = INT32_MAX};
    const char *saved = getenv("TL_SIMD");
    char *keep = saved ? strdup(saved) : NULL;
    setenv("TL_SIMD", path, 1);
    tl_err e = {0};
    tl_q8_conv *c = tl_q8_conv_new(&g, cs_in, cout, w, bias, mult, &oq, &e);
    CHECK_MSG(c != NULL, "requant short: %s", e.msg);
    if (keep)
        setenv("TL_SIMD", keep, 1);
    else
        unsetenv("TL_SIMD");
    free(keep);
    if (!c)
        return;
    CHECK_MSG(c->rq_short == !at_limit, "requant short %s (dw %d, at limit %d): rq_short %d", path, dw, at_limit,
              c->rq_short);
    CHECK_MSG(c->away == dw, "requant short: away %d", c->away);
    enum { N = 48 * 600 };
    int32_t *acc = malloc(N * sizeof *acc), *y0 = malloc(N * sizeof *y0), *y1 = malloc(N * sizeof *y1);
    for (int i = 0; i < N; i++) {
        int o = i % cout, r = i / cout;
        int64_t pos = 0, neg = 0;
        for (int k = 0; k < per; k++) {
            int v = w[o * per + k];
            pos += v > 0 ? v : 0;
            neg += v < 0 ? v : 0;
        }
        int64_t hi = 255 * pos, lo = 255 * neg, a;
        if (r < 8)
            a = hi - r; /* the top of the bound and under it */
        else if (r < 16)
            a = lo + (r - 8);
        else if (r < 24)
            a = r - 20 - c->bias[o]; /* x = -4..3 */
        else if (ties && r < 300)
            a = rnd_in(-4000, 4000) - c->bias[o] % 4096; /* small x: exact halves after the shifts */
        else
            a = lo + (int64_t)(((uint64_t)rnd() << 32 | rnd()) % (uint64_t)(hi - lo + 1));
        acc[i] = (int32_t)a;
    }
    void (*rq)(const tl_q8_conv *, const int32_t *, size_t, int32_t *, int) =
        strcmp(path, "avx2") ? tl_q8_requant_avx512 : tl_q8_requant_avx2;
    rq(c, acc, N, y0, 0);
    if (c->rq_short)
        rq(c, acc, N, y1, 1);
    size_t bad0 = 0, bad1 = 0;
    for (int i = 0; i < N; i++) {
        int o = i % cout;
        int32_t x = (int32_t)((uint32_t)(acc[i] + c->bias[o]) << c->lsh[o]);
        int32_t ref = tl_q8_mul_round(x, c->mult[o], -c->rsh[o], c->away) + oq.zout;
        if (y0[i] != ref && !bad0++)
            CHECK_MSG(0, "requant %s (dw %d) ch %d x %d: %d vs %d", path, dw, o, acc[i] + c->bias[o], y0[i], ref);
        if (c->rq_short && y1[i] != ref && !bad1++)
            CHECK_MSG(0, "short requant %s (dw %d) ch %d x %d (e %d lsh %d): %d vs %d", path, dw, o, acc[i] + c->bias[o],
                      c->rsh[o], c->lsh[o], y1[i], ref);
    }
    CHECK_MSG(bad0 == 0 && bad1 == 0, "requant %s (dw %d ties %d): %zu / %zu of %d differ", path, dw, ties, bad0, bad1,
              N);
    free(acc);
    free(y0);
    free(y1);
    tl_q8_conv_free(c);
}

static void test_requant_short(void)
{
    for (int p = 1; p < 4; p++) {
        if (!tl_simd_supported(paths[p]))
            continue;
        for (int dw = 0; dw < 2; dw++)
            for (int ties = 0; ties < 2; ties++) {
                requant_short_case(paths[p], dw, 0, ties);
                requant_short_case(paths[p], dw, 1, ties);
            }
    }
}

int main(void)
{
    test_requant_short();
    test_multiplier();
    test_add();
    test_add_all_pairs();
    test_add_input_tie();
    test_pool_edges();
    test_pool_commutes();
    test_pool_geoms();
    fconv_case("7x7 stride 2 ResNet stem", geom(3, 23, 29, 64, 7, 2, 3, 3, 3, 3, 1), TL_ACT_RELU, 64, 0);
    fconv_case("7x7 stride 2, rows of 6 + 6 + 4", geom(3, 9, 32, 64, 7, 2, 3, 3, 3, 3, 1), TL_ACT_RELU, 64, 0);
    fconv_case("3x3 stride 2 TF SAME", geom(3, 26, 31, 32, 3, 2, 0, 0, 1, 1, 1), TL_ACT_RELU6, 32, 0);
    fconv_case("3x3 stride 2, 48 channels, cs 64", geom(3, 17, 40, 48, 3, 2, 1, 1, 1, 1, 1), TL_ACT_NONE, 64, 0);
    fconv_case("5x5 stride 1, 16 channels", geom(4, 9, 14, 16, 5, 1, 2, 2, 2, 2, 1), TL_ACT_RELU, 16, 0);
    /* Shapes no bench model has but a checkpoint may: every offset the
     * kernel computes from dilation and from unequal strides, and a cout
     * whose AVX-512 chunks are 64 + 32 + 16. */
    tl_conv_geom d22 = geom(3, 19, 23, 32, 3, 2, 2, 2, 2, 2, 1);
    d22.dil_h = d22.dil_w = 2;
    fconv_case("3x3 stride 2 dilation 2", d22, TL_ACT_RELU, 32, 0);
    tl_conv_geom dil21 = geom(3, 21, 17, 16, 3, 1, 2, 1, 2, 1, 1);
    dil21.stride_h = 2, dil21.dil_h = 2;
    fconv_case("3x3 stride 2x1 dilation 2x1", dil21, TL_ACT_NONE, 16, 0);
    tl_conv_geom s12 = geom(3, 15, 30, 112, 5, 1, 2, 2, 2, 2, 1);
    s12.stride_w = 2;
    fconv_case("5x5 stride 1x2, 112 channels", s12, TL_ACT_RELU6, 128, 0);
    fconv_case("7x7 stride 2, cancelling sums", geom(3, 23, 29, 64, 7, 2, 3, 3, 3, 3, 1), TL_ACT_NONE, 64, 1);
    fconv_case("3x3 stride 2, cancelling sums", geom(3, 21, 26, 48, 3, 2, 1, 1, 1, 1, 1), TL_ACT_NONE, 48, 1);
    conv_case("1x1", geom(32, 7, 9, 48, 1, 1, 0, 0, 0, 0, 1), 64, 1);
    conv_case("1x1 full-range weights", geom(40, 5, 6, 24, 1, 1, 0, 0, 0, 0, 1), 127, 0);
    conv_case("1x1 int16 weights", geom(16, 4, 5, 20, 1, 1, 0, 0, 0, 0, 1), 255, 0);
    /* 23 and 25 pixels: the AVX2 int16 tile's last tile of 5 and of 1 (6-pixel tiles) */
    conv_case("1x1 int16 weights, 23 pixels", geom(24, 1, 23, 40, 1, 1, 0, 0, 0, 0, 1), 255, 0);
    conv_case("1x1 int16 weights, 25 pixels", geom(8, 5, 5, 16, 1, 1, 0, 0, 0, 0, 1), 255, 0);
    conv_case("3x3 stride 1", geom(24, 9, 8, 70, 3, 1, 1, 1, 1, 1, 1), 127, 0);
    conv_case("3x3 stride 2 TF SAME", geom(16, 10, 11, 32, 3, 2, 0, 0, 1, 1, 1), 100, 0);
    conv_case("7x7 stride 2 RGB", geom(3, 20, 19, 64, 7, 2, 3, 3, 3, 3, 1), 127, 0);
    conv_case("3x3 many channels", geom(96, 6, 5, 130, 3, 1, 1, 1, 1, 1, 1), 64, 1);
    /* 49 and 15 pixels: a 4-group chunk ends in a 1- and a 3-pixel tile (AVX-512) */
    conv_case("3x3 on 7x7, 64 channels", geom(32, 7, 7, 64, 3, 1, 1, 1, 1, 1, 1), 127, 0);
    conv_case("3x3 stride 2 to 3x5, 80 channels", geom(16, 5, 9, 80, 3, 2, 1, 1, 1, 1, 1), 127, 0);
    conv_case("1x1 on 7x7, 64 channels", geom(64, 7, 7, 64, 1, 1, 0, 0, 0, 0, 1), 127, 0);
    /* integer Winograd on AVX2/AVX-512BW: +-255 weights, odd output edges, uneven padding */
    conv_case("3x3 Winograd int16 weights", geom(32, 7, 11, 72, 3, 1, 0, 1, 2, 0, 1), 255, 0);
    conv_case("3x3 Winograd 2x2 output", geom(48, 2, 3, 16, 3, 1, 1, 0, 1, 1, 1), 127, 0);
    /* 256 channels: bands of 24 tiles, 56 tiles = 24 + 24 + 8 (and the 3 parts cut across bands) */
    conv_case("3x3 Winograd in bands", geom(256, 13, 15, 32, 3, 1, 1, 1, 1, 1, 1), 64, 0);
    test_wino_scratch();
    tl_conv_geom dil = geom(16, 9, 9, 16, 3, 1, 2, 2, 2, 2, 1);
    dil.dil_h = dil.dil_w = 2;
    conv_case("3x3 dilated", dil, 127, 0);
    conv_case("depthwise 3x3", geom(48, 9, 10, 48, 3, 1, 1, 1, 1, 1, 48), 127, 0);
    conv_case("depthwise 3x3 stride 2", geom(40, 11, 10, 40, 3, 2, 0, 0, 1, 1, 40), 255, 0);
    /* int8 weights: VNNI runs 3x3 depthwise by byte quads, stride 1 and 2 */
    conv_case("depthwise 3x3 stride 2 int8 weights", geom(32, 11, 13, 32, 3, 2, 1, 1, 1, 1, 32), 127, 0);
    conv_case("depthwise 3x3 stride 2 TF SAME int8 weights", geom(48, 10, 9, 48, 3, 2, 0, 0, 1, 1, 48), 127, 0);
    conv_case("depthwise 5x5", geom(32, 8, 8, 32, 5, 1, 2, 2, 2, 2, 32), 127, 0);
    conv_case("depthwise 3x3 wide rows", geom(32, 5, 53, 32, 3, 1, 1, 1, 1, 1, 32), 127, 0);
    conv_case("depthwise 3x3 stride 2 wide", geom(16, 5, 61, 16, 3, 2, 1, 1, 1, 1, 16), 255, 0);
    tl_conv_geom ddil = geom(32, 9, 30, 32, 3, 1, 2, 2, 2, 2, 32);
    ddil.dil_h = ddil.dil_w = 2;
    conv_case("depthwise 3x3 dilated", ddil, 127, 0);
    conv_case("depthwise 7x7 stride 4", geom(16, 13, 40, 16, 7, 4, 3, 3, 3, 3, 16), 127, 0);
    conv_case("depthwise 4x2", (tl_conv_geom){.cin = 16, .h = 7, .w = 9, .cout = 16, .kh = 4, .kw = 2, .stride_h = 1,
                                              .stride_w = 1, .pad_t = 1, .pad_l = 0, .pad_b = 2, .pad_r = 1,
                                              .groups = 16},
              127, 0);
    conv_case_t("1x1 ties", geom(8, 6, 7, 40, 1, 1, 0, 0, 0, 0, 1), 3, 1, 1);
    conv_case_t("3x3 ties", geom(16, 6, 5, 32, 3, 1, 1, 1, 1, 1, 1), 3, 0, 1);
    conv_case_t("depthwise ties", geom(48, 6, 7, 48, 3, 1, 1, 1, 1, 1, 48), 2, 0, 1);
    /* the plain requantisation (rq16f): whole and short tiles of every chunk width */
    conv_case_t("1x1 16 -> 96, 143 pixels, plain", geom(16, 13, 11, 96, 1, 1, 0, 0, 0, 0, 1), 127, 0, CASE_PLAIN);
    conv_case_t("1x1 on 7x7, 112 channels, plain", geom(64, 7, 7, 112, 1, 1, 0, 0, 0, 0, 1), 127, 0, CASE_PLAIN);
    conv_case_t("3x3 stride 1, plain", geom(24, 9, 8, 70, 3, 1, 1, 1, 1, 1, 1), 127, 0, CASE_PLAIN);
    conv_case_t("3x3 stride 2 to 3x5, plain", geom(16, 5, 9, 80, 3, 2, 1, 1, 1, 1, 1), 127, 0, CASE_PLAIN);
    conv_case_t("1x1 stride 2, plain", geom(64, 14, 13, 128, 1, 2, 0, 0, 0, 0, 1), 127, 0, CASE_PLAIN);
    /* pair-safe weights: one plane, so AVX-512BW runs the tilef_bw tiles too (the others are wide there) */
    conv_case_t("3x3 stride 1, plain, pair-safe", geom(24, 9, 8, 70, 3, 1, 1, 1, 1, 1, 1), 64, 1, CASE_PLAIN);
    conv_case_t("1x1 on 7x7, 112 channels, plain, pair-safe", geom(64, 7, 7, 112, 1, 1, 0, 0, 0, 0, 1), 64, 1,
                CASE_PLAIN);
    conv_case_t("1x1 int16 weights, plain", geom(16, 4, 5, 20, 1, 1, 0, 0, 0, 0, 1), 255, 0, CASE_PLAIN);
    conv_case_t("depthwise 3x3, plain", geom(48, 9, 10, 48, 3, 1, 1, 1, 1, 1, 48), 127, 0, CASE_PLAIN);
    conv_case_t("depthwise 3x3 stride 2, plain", geom(32, 11, 13, 32, 3, 2, 1, 1, 1, 1, 32), 127, 0, CASE_PLAIN);
    conv_case_t("1x1 ties, plain", geom(8, 6, 7, 40, 1, 1, 0, 0, 0, 0, 1), 3, 1, CASE_TIES | CASE_PLAIN);
    conv_case_t("3x3 ties, plain", geom(16, 6, 5, 32, 3, 1, 1, 1, 1, 1, 1), 3, 0, CASE_TIES | CASE_PLAIN);
    conv_case_t("depthwise ties, plain", geom(48, 6, 7, 48, 3, 1, 1, 1, 1, 1, 48), 2, 0, CASE_TIES | CASE_PLAIN);
    return check_finish("q8");
}
