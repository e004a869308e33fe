/* int8 convolution: packing for the chosen path, the scalar reference
 * path, and TFLite's fixed-point arithmetic every path reproduces. */
#include "q8_internal.h"

#include <math.h>
#include <stdlib.h>

void tl_q8_quantize_multiplier(double m, int32_t *mult, int *shift)
{
    if (!(m > 0)) {
        *mult = 0;
        *shift = 0;
        return;
    }
    int e;
    double q = frexp(m, &e);
    int64_t qf = (int64_t)round(q * (double)(1ll << 31));
    if (qf == (1ll << 31)) {
        qf /= 2;
        e++;
    }
    if (e < -31) {
        e = 0;
        qf = 0;
    }
    if (e > 30) { /* beyond any sane scale: saturate as TFLite does */
        e = 30;
        qf = (1ll << 31) - 1;
    }
    *mult = (int32_t)qf;
    *shift = e;
}

static int32_t srdhm(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN)
        return INT32_MAX;
    int64_t ab = (int64_t)a * b;
    int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    return (int32_t)((ab + nudge) / (1ll << 31));
}

int32_t tl_q8_rshift_round(int32_t x, int exponent, int away)
{
    int32_t mask = (int32_t)((1ll << exponent) - 1);
    int32_t rem = x & mask, thr = (mask >> 1) + (away && x < 0);
    return (x >> exponent) + (rem > thr);
}

int32_t tl_q8_mul_round(int32_t x, int32_t mult, int shift, int away)
{
    int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    return tl_q8_rshift_round(srdhm((int32_t)((uint32_t)x << left), mult), right, away);
}

int32_t tl_q8_mul(int32_t x, int32_t mult, int shift) { return tl_q8_mul_round(x, mult, shift, 1); }

void tl_q8_tile_ptrs(const tl_q8_conv *c, const uint8_t *x, int p0, int n, int mr, const uint8_t **ptrs)
{
    const tl_conv_geom *g = &c->g;
    if (c->pointwise) { /* output pixel p reads input pixel p */
        for (int i = 0; i < mr; i++)
            ptrs[i] = i < n ? x + (size_t)(p0 + i) * c->cs_in : c->pad;
        return;
    }
    int oy = p0 / g->ow, ox = p0 - oy * g->ow;
    for (int i = 0; i < mr; i++) {
        if (i < n)
            tl_q8_pixel_taps(c, x, oy, ox, ptrs + i, mr);
        else
            for (int t = 0; t < c->ntap; t++)
                ptrs[t * mr + i] = c->pad;
        if (++ox == g->ow) {
            ox = 0;
            oy++;
        }
    }
}

void tl_q8_tile_ptrs16(const tl_q8_conv *c, const int16_t *x, int p0, int n, int mr, const int16_t **ptrs)
{
    const tl_conv_geom *g = &c->g;
    if (c->pointwise) {
        for (int i = 0; i < mr; i++)
            ptrs[i] = i < n ? x + (size_t)(p0 + i) * c->cs_in : c->pad16;
        return;
    }
    int oy = p0 / g->ow, ox = p0 - oy * g->ow;
    for (int i = 0; i < mr; i++) {
        int iy0 = oy * g->stride_h - g->pad_t, ix0 = ox * g->stride_w - g->pad_l;
        if (i < n && iy0 >= 0 && ix0 >= 0 && iy0 + (g->kh - 1) * g->dil_h < g->h &&
            ix0 + (g->kw - 1) * g->dil_w < g->w) { /* inside the image: tap_off counts elements */
            const int16_t *base = x + ((size_t)iy0 * g->w + ix0) * c->cs_in;
            for (int t = 0; t < c->ntap; t++)
                ptrs[t * mr + i] = base + c->tap_off[t];
        } else
            for (int t = 0; t < c->ntap; t++) {
                int ky = t / g->kw, kx = t - ky * g->kw;
                int iy = iy0 + ky * g->dil_h, ix = ix0 + kx * g->dil_w;
                ptrs[t * mr + i] = i >= n || iy < 0 || iy >= g->h || ix < 0 || ix >= g->w
                                       ? c->pad16
                                       : x + ((size_t)iy * g->w + ix) * c->cs_in;
            }
        if (++ox == g->ow) {
            ox = 0;
            oy++;
        }
    }
}

/* Scalar: every output value summed in int32 exactly, as the SIMD paths do. */
static void rows_scalar(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1)
{
    const uint8_t *ptrs[Q8_MAX_TAPS];
    const int kc = c->cs_in / 4;
    for (int p = p0; p < p1; p++) {
        tl_q8_tile_ptrs(c, x, p, 1, 1, ptrs);
        for (int grp = 0; grp < c->ngroups; grp++) {
            int32_t acc[16] = {0};
            const int8_t *wg = c->w + (size_t)grp * c->gstride;
            for (int t = 0; t < c->ntap; t++)
                for (int pl = 0; pl < c->planes; pl++) {
                    const int8_t *wp = wg + (size_t)(t * c->planes + pl) * kc * 64;
                    for (int k = 0; k < kc; k++)
                        for (int o = 0; o < 16; o++)
                            for (int j = 0; j < 4; j++)
                                acc[o] += ptrs[t][4 * k + j] * wp[k * 64 + o * 4 + j];
                }
            uint8_t *yp = y + (size_t)p * c->cs_out + grp * 16;
            for (int o = 0; o < 16; o++)
                yp[o] = tl_q8_requant1(c, acc[o], grp * 16 + o);
        }
    }
}

static void dw_rows_scalar(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int p0, int p1)
{
    const tl_conv_geom *g = &c->g;
    const uint8_t *ptrs[Q8_MAX_TAPS + 1];
    int npair = (c->ntap + 1) / 2;
    for (int p = p0; p < p1; p++) {
        int oy = p / g->ow, ox = p - oy * g->ow;
        tl_q8_pixel_taps(c, x, oy, ox, ptrs, 1);
        ptrs[c->ntap] = c->pad;
        for (int grp = 0; grp < c->ngroups; grp++) {
            const int16_t *wg = c->wdw + (size_t)grp * npair * 32;
            uint8_t *yp = y + (size_t)p * c->cs_out + grp * 16;
            for (int o = 0; o < 16; o++) {
                int32_t acc = 0;
                int half = o / 8, lane = o % 8;
                for (int q = 0; q < npair; q++) {
                    const int16_t *wq = wg + q * 32 + half * 16 + lane * 2;
                    acc += ptrs[2 * q][grp * 16 + o] * wq[0] + ptrs[2 * q + 1][grp * 16 + o] * wq[1];
                }
                yp[o] = tl_q8_requant1(c, acc, grp * 16 + o);
            }
        }
    }
}

/* Splits every weight into `planes` parts (a power of two) that sum to it,
 * each within +-(limit) (halving rounds toward minus infinity, the rest
 * goes to the other half). */
static int8_t plane_part(int v, int planes, int pl)
{
    while (planes > 1) {
        int lo = v >> 1, hi = v - lo;
        planes /= 2;
        if (pl < planes)
            v = lo;
        else {
            v = hi;
            pl -= planes;
        }
    }
    return (int8_t)v;
}

/* Planes needed on this path: vpmaddubsw adds two u8 x s8 products in a
 * saturating int16, exact when |w0| + |w1| <= 128 for each pair. */
static int planes_for(int level, const int16_t *w, const tl_conv_geom *g)
{
    int maxabs = 0, pair_ok = 1;
    int taps = g->kh * g->kw, cin = g->cin;
    for (int o = 0; o < g->cout; o++)
        for (int t = 0; t < taps; t++)
            for (int ci = 0; ci < cin; ci++) {
                int v = w[((size_t)o * cin + ci) * taps + t];
                int a = v < 0 ? -v : v;
                if (a > maxabs)
                    maxabs = a;
                if (ci % 2 == 0 && ci + 1 < cin) {
                    int v2 = w[((size_t)o * cin + ci + 1) * taps + t];
                    if (a + (v2 < 0 ? -v2 : v2) > 128)
                        pair_ok = 0;
                }
            }
    if (level == TL_SIMD_AVX2 || level == TL_SIMD_AVX512) {
        if (pair_ok && maxabs <= 127)
            return 1;
        return maxabs <= 127 ? 2 : 4; /* halves within 64, quarters within 64 */
    }
    /* int8 planes: halves of |w| <= 254 fit in -127..127; 255 needs quarters */
    return maxabs <= 127 ? 1 : maxabs <= 254 ? 2 : 4;
}

void tl_q8_conv_free(tl_q8_conv *c)
{
    if (!c)
        return;
    tl_free(c->w);
    tl_free(c->w16);
    tl_free(c->pad16);
    tl_free(c->wdw);
    tl_free(c->wcol);
    tl_free(c->wq);
    free(c->bias);
    free(c->mult);
    free(c->lsh);
    free(c->rsh);
    free(c->rnd);
    free(c->sh64);
    free(c->adj);
    free(c->post);
    free(c->kq);
    free(c->kqn);
    free(c->modd);
    free(c->xs);
    free(c->sh32);
    tl_free(c->pad);
    free(c);
}

/* The SIMD paths' requantisation. With x the (left-shifted) sum, m the
 * Q31 multiplier and e the right shift, TFLite computes
 *   r = SRDHM(x, m) = (x*m + nudge) / 2^31, truncating, nudge 2^30 or 1 - 2^30
 *     = floor((x*m + 2^30) / 2^31)              (for x*m < 0 the truncation
 *                                                 is a ceiling: the same)
 *   y = floor((r + h) / 2^e), h = 2^(e-1) (ties up) or, ties away from
 *       zero, 2^(e-1) - [r < 0]; y = r when e = 0
 * and since floor(floor(a / 2^31) + h) / 2^e) = floor((a + h 2^31) / 2^(31+e)),
 *   y = floor((x*m + 2^30 + h 2^31) / 2^(31+e)),  r < 0 <=> x*m < -2^30:
 * one 64-bit add and one shift. 2^62 is added so the sum is never negative
 * (|x*m| < 2^62) and a logical shift (AVX2 has no 64-bit arithmetic one)
 * is exact; post takes 2^(62-31-e) back off and adds the zero point. */
static void requant_consts(tl_q8_conv *c)
{
    int half = c->level >= TL_SIMD_AVX512 ? 8 : 4; /* 64-bit lanes per vector */
    for (int ch = 0; ch < c->cs_out; ch++) {
        int e = c->rsh[ch];
        int at = ch / (2 * half) * (2 * half) + (ch % 2) * half + (ch % (2 * half)) / 2;
        c->rnd[at] = (int64_t)((1ull << 62) + (1ull << 30) + (e >= 1 ? 1ull << (30 + e) : 0));
        c->sh64[at] = 31 + e;
        c->adj[at] = c->away && e >= 1 ? 1ll << 31 : 0;
        c->post[ch] = (int32_t)((uint32_t)c->o.zout - (1u << (31 - e)));
        c->any_lsh |= c->lsh[ch] > 0;
    }
}

/* AVX2's short form of requant_consts' rounding. y = floor(N / 2^(31+e))
 * with N = x*m + K (K = 2^30 + h 2^31 there; here + zout 2^(31+e) too, so
 * y comes out with the zero point added). |x| < 2^31, m < 2^31 and e <= 22
 * keep |N| < 2^62 + 2^61.1 < 2^63, so N is exact in a signed 64-bit lane
 * and its high 32 bits are floor(N / 2^32) exactly (two's complement), an
 * int32. Since floor(floor(a / 2^32) / 2^k) = floor(a / 2^(32+k)), an
 * arithmetic 32-bit shift by k = 31 + e - 32 = e - 1 finishes: no 2^62
 * offset, no post, no 64-bit shift. e = 0 (multipliers >= 1/2) needs one
 * more bit: x and K doubled (y unchanged), exact only while |2x| < 2^31 with
 * the left shift TFLite applies for multipliers > 1 too (it wraps x in
 * int32 beyond that, which the doubled x would not). bound: per channel the
 * largest |x| (sum of uint8 x weights + bias) the layer can produce, so the
 * short form is taken only when bound * 2^xs < 2^31 for every channel with
 * xs > 0. Ties away from zero subtract 2^31 when x*m < -2^30 (kqn). */
static void requant_short(tl_q8_conv *c, const int64_t *bound)
{
    c->kq = calloc((size_t)c->cs_out, sizeof *c->kq);
    c->kqn = calloc((size_t)c->cs_out, sizeof *c->kqn);
    c->modd = calloc((size_t)c->cs_out, sizeof *c->modd);
    c->xs = calloc((size_t)c->cs_out, sizeof *c->xs);
    c->sh32 = calloc((size_t)c->cs_out, sizeof *c->sh32);
    if (!c->kq || !c->kqn || !c->modd || !c->xs || !c->sh32)
        return; /* rq_short stays 0: the one-rounding form */
    int fits = 1, half = c->level >= TL_SIMD_AVX512 ? 8 : 4; /* 64-bit lanes per vector */
    for (int ch = 0; ch < c->cs_out; ch++) {
        /* a padding channel (multiplier 0) gives zout with any shift: 1 keeps it off the doubled form */
        int e = ch < c->g.cout ? c->rsh[ch] : 1, l = e == 0, at = ch / (2 * half) * (2 * half) + (ch % 2) * half + (ch % (2 * half)) / 2;
        c->xs[ch] = c->lsh[ch] + l;
        c->sh32[ch] = e >= 1 ? e - 1 : 0;
        c->modd[ch] = c->mult[ch ^ 1];
        c->any_xs |= c->xs[ch] > 0;
        if (e > 22 || c->lsh[ch] > 30 || (c->xs[ch] > 0 && bound[ch] >= (1ll << (31 - c->xs[ch]))))
            fits = 0;
        if (e > 22)
            continue;
        int64_t k = (1ll << 30) + (e >= 1 ? 1ll << (30 + e) : 0) + (int64_t)c->o.zout * (1ll << (31 + e));
        c->kq[at] = k * (1 + l);
        c->kqn[at] = c->kq[at] - (c->away && e >= 1 ? 1ll << 31 : 0);
    }
    c->rq_short = fits && c->level >= TL_SIMD_AVX2;
}

static int pack_gemm(tl_q8_conv *c, const int16_t *w, tl_err *e)
{
    const tl_conv_geom *g = &c->g;
    int kc = c->cs_in / 4, taps = c->ntap;
    c->gstride = (size_t)taps * c->planes * kc * 64;
    c->w = tl_xalloc(c->gstride * c->ngroups + 64, 1, e);
    if (!c->w)
        return -1;
    memset(c->w, 0, c->gstride * c->ngroups + 64);
    for (int o = 0; o < g->cout; o++) {
        int grp = o / 16, oo = o % 16;
        for (int t = 0; t < taps; t++)
            for (int pl = 0; pl < c->planes; pl++)
                for (int ci = 0; ci < g->cin; ci++) {
                    int v = w[((size_t)o * g->cin + ci) * taps + t];
                    size_t at = (size_t)grp * c->gstride + (size_t)(t * c->planes + pl) * kc * 64 +
                                (size_t)(ci / 4) * 64 + oo * 4 + ci % 4;
                    c->w[at] = plane_part(v, c->planes, pl);
                }
    }
    return 0;
}

/* AVX2 and AVX-512BW with planes: int16 weights for vpmaddwd on the widened input, one
 * multiply for two inputs whatever the weights (no pair can saturate). */
static int pack_w16(tl_q8_conv *c, const int16_t *w, tl_err *e)
{
    const tl_conv_geom *g = &c->g;
    int kp = c->cs_in / 2, taps = c->ntap;
    c->gstride = (size_t)taps * kp * 32; /* int16 per group */
    size_t n = c->gstride * c->ngroups + 32;
    c->w16 = tl_xalloc(n, sizeof(int16_t), e);
    c->pad16 = tl_xalloc((size_t)c->cs_in + 32, sizeof(int16_t), e);
    if (!c->w16 || !c->pad16)
        return -1;
    memset(c->w16, 0, n * sizeof(int16_t));
    for (int i = 0; i < c->cs_in + 32; i++)
        c->pad16[i] = (int16_t)c->o.zin;
    for (int o = 0; o < g->cout; o++)
        for (int t = 0; t < taps; t++)
            for (int ci = 0; ci < g->cin; ci++)
                c->w16[(size_t)(o / 16) * c->gstride + ((size_t)t * kp + ci / 2) * 32 + (o % 16) * 2 + ci % 2] =
                    w[((size_t)o * g->cin + ci) * taps + t];
    return 0;
}

static int pack_dw(tl_q8_conv *c, const int16_t *w, tl_err *e)
{
    int npair = (c->ntap + 1) / 2;
    size_t n = (size_t)c->ngroups * npair * 32;
    c->wdw = tl_xalloc(n, sizeof(int16_t), e);
    if (!c->wdw)
        return -1;
    memset(c->wdw, 0, n * sizeof(int16_t));
    for (int ch = 0; ch < c->g.cout; ch++) {
        int grp = ch / 16, half = (ch % 16) / 8, lane = ch % 8;
        for (int t = 0; t < c->ntap; t++)
            c->wdw[((size_t)grp * npair + t / 2) * 32 + half * 16 + lane * 2 + t % 2] = w[(size_t)ch * c->ntap + t];
    }
    if (c->dw_quad) {
        n = (size_t)c->ngroups * 3 * 64;
        c->wq = tl_xalloc(n, 1, e);
        if (!c->wq)
            return -1;
        memset(c->wq, 0, n);
        for (int ch = 0; ch < c->g.cout; ch++)
            for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++)
                    c->wq[((size_t)(ch / 16) * 3 + kx) * 64 + (ch % 16) * 4 + ky] = (int8_t)w[(size_t)ch * 9 + ky * 3 + kx];
    }
    if (!c->dw_cols)
        return 0;
    int npy = (c->g.kh + 1) / 2, kw = c->g.kw;
    n = (size_t)c->ngroups * kw * npy * 32;
    c->wcol = tl_xalloc(n, sizeof(int16_t), e);
    if (!c->wcol)
        return -1;
    memset(c->wcol, 0, n * sizeof(int16_t));
    for (int ch = 0; ch < c->g.cout; ch++)
        for (int ky = 0; ky < c->g.kh; ky++)
            for (int kx = 0; kx < kw; kx++)
                c->wcol[(((size_t)(ch / 16) * kw + kx) * npy + ky / 2) * 32 + (ch % 16) * 2 + ky % 2] =
                    w[(size_t)ch * c->ntap + ky * kw + kx];
    return 0;
}

tl_q8_conv *tl_q8_conv_new(const tl_conv_geom *g, int cs_in, int cs_out, const int16_t *w, const int32_t *bias,
                           const double *mult, const tl_q8_out *o, tl_err *e)
{
    int dw = g->groups > 1;
    if (dw && !(g->groups == g->cin && g->cin == g->cout)) {
        tl_fail(e, "int8 convolution: groups must be 1 or depthwise");
        return NULL;
    }
    if (g->kh * g->kw > Q8_MAX_TAPS || cs_in % 4 || cs_in < g->cin || cs_out % 16 || cs_out < g->cout) {
        tl_fail(e, "int8 convolution: unsupported geometry");
        return NULL;
    }
    if (dw && cs_in % 16) {
        tl_fail(e, "int8 depthwise convolution: channel stride %d is not a multiple of 16", cs_in);
        return NULL;
    }
    tl_q8_conv *c = tl_xalloc(1, sizeof *c, e);
    if (!c)
        return NULL;
    memset(c, 0, sizeof *c);
    c->g = *g;
    c->cs_in = cs_in;
    c->cs_out = cs_out;
    c->dw = dw;
    c->o = *o;
    c->away = dw; /* TFLite: depthwise kernels round half away from zero, ruy's GEMM half up */
    c->ntap = g->kh * g->kw;
    c->pointwise = c->ntap == 1 && g->stride_h == 1 && g->stride_w == 1 && !g->pad_t && !g->pad_l && g->oh == g->h &&
                   g->ow == g->w;
    c->ngroups = cs_out / 16;
    c->level = tl_simd_level();
#if !defined(__x86_64__)
    c->level = TL_SIMD_SCALAR;
#endif
    c->planes = dw ? 1 : planes_for(c->level, w, g);
    c->bias = calloc((size_t)cs_out, sizeof *c->bias);
    c->mult = calloc((size_t)cs_out, sizeof *c->mult);
    c->lsh = calloc((size_t)cs_out, sizeof *c->lsh);
    c->rsh = calloc((size_t)cs_out, sizeof *c->rsh);
    c->rnd = calloc((size_t)cs_out, sizeof *c->rnd);
    c->sh64 = calloc((size_t)cs_out, sizeof *c->sh64);
    c->adj = calloc((size_t)cs_out, sizeof *c->adj);
    c->post = calloc((size_t)cs_out, sizeof *c->post);
    c->pad = tl_alloc_array((size_t)cs_in + 64, 1);
    if (!c->bias || !c->mult || !c->lsh || !c->rsh || !c->rnd || !c->sh64 || !c->adj || !c->post || !c->pad) {
        tl_fail(e, "out of memory");
        tl_q8_conv_free(c);
        return NULL;
    }
    memset(c->pad, o->zin, (size_t)cs_in + 64);
    for (int t = 0; t < c->ntap; t++)
        c->tap_off[t] = ((ptrdiff_t)(t / g->kw) * g->dil_h * g->w + (t % g->kw) * g->dil_w) * cs_in;
    int per_out = dw ? c->ntap : g->cin * c->ntap;
    int64_t *bound = calloc((size_t)cs_out, sizeof *bound);
    if (!bound) {
        tl_fail(e, "out of memory");
        tl_q8_conv_free(c);
        return NULL;
    }
    for (int ch = 0; ch < g->cout; ch++) {
        int64_t sum = 0, pos = 0, neg = 0;
        for (int k = 0; k < per_out; k++) {
            int v = w[(size_t)ch * per_out + k];
            sum += v;
            pos += v > 0 ? v : 0;
            neg += v < 0 ? v : 0;
        }
        c->bias[ch] = (int32_t)((bias ? bias[ch] : 0) - (int64_t)o->zin * sum);
        /* the sums of uint8 inputs (padding reads zin) lie in [255 neg, 255 pos] */
        int64_t hi = 255 * pos + c->bias[ch], lo = 255 * neg + c->bias[ch];
        hi = hi < 0 ? -hi : hi;
        lo = lo < 0 ? -lo : lo;
        bound[ch] = hi > lo ? hi : lo;
        int shift;
        tl_q8_quantize_multiplier(mult[ch], &c->mult[ch], &shift);
        c->lsh[ch] = shift > 0 ? shift : 0;
        c->rsh[ch] = shift > 0 ? 0 : -shift;
    }
    requant_consts(c);
    requant_short(c, bound);
    free(bound);
    c->dw_cols = dw && c->level >= TL_SIMD_AVX2 && g->stride_w <= (c->level >= TL_SIMD_AVX512 ? 2 : 1) && tl_q8_dw_cols_fits(g);
    if (c->dw_cols && c->level == TL_SIMD_AVX512VNNI && g->kh == 3 && g->kw == 3 && g->dil_h == 1 && g->dil_w == 1) {
        c->dw_quad = 1;
        for (int k = 0; k < g->cout * 9; k++)
            c->dw_quad &= w[k] >= -128 && w[k] <= 127;
    }
    c->wino = tl_q8_wino_fits(c, w);
    c->wide = !dw && !c->wino && (c->level == TL_SIMD_AVX2 || c->level == TL_SIMD_AVX512) && c->planes > 1;
    if (dw ? pack_dw(c, w, e) : c->wino ? tl_q8_wino_pack(c, w, e) : c->wide ? pack_w16(c, w, e) : pack_gemm(c, w, e)) {
        tl_q8_conv_free(c);
        return NULL;
    }
    switch (c->level) {
    case TL_SIMD_AVX512VNNI:
        c->rows = !dw ? tl_q8_rows_vnni : c->dw_quad ? tl_q8_dw_quad_vnni : c->dw_cols ? tl_q8_dw_cols_vnni : tl_q8_dw_rows_avx512;
        break;
    case TL_SIMD_AVX512:
        c->rows = c->wide ? tl_q8_rows16_avx512 : !dw ? tl_q8_rows_avx512 : c->dw_cols ? tl_q8_dw_cols_avx512 : tl_q8_dw_rows_avx512;
        break;
    case TL_SIMD_AVX2:
        c->rows = c->wide ? tl_q8_rows16_avx2
                  : !dw   ? tl_q8_rows_avx2
                  : c->dw_cols ? tl_q8_dw_cols_avx2
                               : tl_q8_dw_rows_avx2;
        break;
    default: c->rows = dw ? dw_rows_scalar : rows_scalar; break;
    }
    return c;
}

size_t tl_q8_conv_scratch_bytes(const tl_q8_conv *c)
{
    if (c->wino)
        return tl_q8_wino_scratch_bytes(c);
    return c->wide ? (size_t)c->g.h * c->g.w * c->cs_in * sizeof(int16_t) : 0;
}

void tl_q8_conv_forward(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int part, int nparts, void *scratch)
{
    if (c->wino) {
        tl_q8_wino_forward(c, x, y, part, nparts, scratch);
        return;
    }
    int n = c->g.oh * c->g.ow;
    /* shares cut at multiples of 12 pixels, a whole number of any tile */
    int units = (n + 11) / 12;
    int p0 = units * part / nparts * 12, p1 = units * (part + 1) / nparts * 12;
    if (p1 > n)
        p1 = n;
    if (p0 >= p1)
        return;
    if (c->wide) { /* the whole input: a share's taps may reach any row */
        tl_q8_widen_avx2(x, (size_t)c->g.h * c->g.w * c->cs_in, scratch);
        x = scratch;
    }
    c->rows(c, x, y, p0, p1);
}

const char *tl_q8_conv_path(const tl_q8_conv *c)
{
    static const char *const names[] = {"scalar", "avx2", "avx512", "avx512vnni"};
    return names[c->level];
}

int tl_q8_conv_planes(const tl_q8_conv *c) { return c->planes; }
