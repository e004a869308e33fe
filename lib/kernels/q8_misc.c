/* int8 element-wise and pooling kernels: TFLite's ADD, max pooling,
 * channel sums for the global average, and the float <-> uint8 edges. */
#include "q8_internal.h"

#include <math.h>
#include <string.h>

void tl_q8_add_init(tl_q8_add *a, double s1, int z1, double s2, int z2, double sout, int zout, int qmin, int qmax)
{
    /* TFLite's uint8/int8 ADD: both inputs to 2 x the larger scale, with 20
     * bits of headroom, then to the output scale */
    double twice = 2 * (s1 > s2 ? s1 : s2);
    tl_q8_quantize_multiplier(s1 / twice, &a->m1, &a->s1);
    tl_q8_quantize_multiplier(s2 / twice, &a->m2, &a->s2);
    tl_q8_quantize_multiplier(twice / ((1 << 20) * sout), &a->mout, &a->sout);
    a->z1 = z1;
    a->z2 = z2;
    a->zout = zout;
    a->qmin = qmin;
    a->qmax = qmax;
    /* gemmlowp's high multiply rounds P = x * m at 2^31 with ties up, v =
     * floor((P + 2^30) / 2^31); the rounding shift by e then rounds v / 2^e
     * with ties away from zero: floor((v + 2^(e-1) - [v < 0]) / 2^e). The
     * nested floors are one, floor((P + 2^30 + 2^(30+e) - [v < 0] 2^31) /
     * 2^(31+e)) (e >= 1; e = 0 is the high multiply alone), and v < 0 is
     * P < -2^30. 2^62 keeps the dividend positive for a logical shift and
     * comes out as 2^(31-e), taken off after (post). |P| < 2^60 here. */
    const int sh[3] = {-a->s1, -a->s2, -a->sout};
    a->one = 1;
    for (int k = 0; k < 3; k++) {
        int e = sh[k];
        if (e < 0 || e > 30) {
            a->one = 0;
            continue;
        }
        a->rnd[k] = (int64_t)((1ull << 62) + (1ull << 30) + (e >= 1 ? 1ull << (30 + e) : 0));
        a->adj[k] = e >= 1 ? 1ll << 31 : 0;
        a->sh[k] = 31 + e;
        a->post[k] = (int32_t)(1u << (31 - e));
    }
    /* The short form. An input is P = d 2^20 m (d = x - z, |d| <= 255,
     * m >= 2^30), so the rounding above is floor((d m + 2^10 + 2^(10+e) -
     * [d < 0] 2^11) / 2^(11+e)) (every term is a multiple of 2^20; P <
     * -2^30 iff d < 0 when m >= 2^11). With m = mh 2^(11+e) + ml that is
     * d mh + floor((d ml + r') / 2^(11+e)), exactly: d mh is whole. |d ml
     * + r'| < 255 2^(11+e) + 2^(11+e) < 2^31 for e <= 12, |d mh| < 2^28.
     * The output: the sum s of two such terms has |s| < 2^29, |P| < 2^60,
     * so N = P + 2^30 + 2^(30+e) - [P < -2^30] 2^31 fits a signed 64-bit
     * lane, its high 32 bits are floor(N / 2^32) and a shift by e - 1
     * (e >= 1) gives floor(N / 2^(31+e)), the one rounding above. */
    a->fast = a->one;
    for (int k = 0; k < 2 && a->fast; k++) {
        int e = sh[k];
        int32_t m = k ? a->m2 : a->m1;
        if (e > 12 || m < (1 << 11)) {
            a->fast = 0;
            break;
        }
        int s = 11 + e;
        a->fmh[k] = m >> s;
        a->fml[k] = m & (int32_t)((1u << s) - 1);
        a->fr[k] = (1 << 10) + (e >= 1 ? 1 << (10 + e) : 0);
        a->fadj[k] = e >= 1 ? 1 << 11 : 0;
        a->fsh[k] = s;
    }
    if (a->fast && sh[2] >= 1) {
        a->fko = (int64_t)((1ull << 30) + (1ull << (30 + sh[2])));
        a->fosh = sh[2] - 1;
    } else
        a->fast = 0;
}

void tl_q8_add_scalar(const tl_q8_add *a, size_t n, const uint8_t *x1, const uint8_t *x2, uint8_t *y)
{
    for (size_t i = 0; i < n; i++) {
        int32_t i1 = (int32_t)((uint32_t)(x1[i] - a->z1) << 20), i2 = (int32_t)((uint32_t)(x2[i] - a->z2) << 20);
        int32_t sum = tl_q8_mul(i1, a->m1, a->s1) + tl_q8_mul(i2, a->m2, a->s2);
        int32_t r = tl_q8_mul(sum, a->mout, a->sout) + a->zout;
        y[i] = (uint8_t)(r < a->qmin ? a->qmin : r > a->qmax ? a->qmax : r);
    }
}

/* The padding channels hold each input's zero point, so they sum to the
 * output's: the whole buffer is one run of bytes. */
void tl_q8_add_forward(const tl_q8_add *a, int c, int cs, size_t n, const uint8_t *x1, const uint8_t *x2,
                       uint8_t *y)
{
    (void)c;
    size_t len = n * (size_t)cs;
    int level = tl_simd_level();
#if defined(__x86_64__)
    if (level >= TL_SIMD_AVX512) {
        tl_q8_add_avx512(a, len, x1, x2, y);
        return;
    }
    if (level == TL_SIMD_AVX2) {
        tl_q8_add_avx2(a, len, x1, x2, y);
        return;
    }
#endif
    (void)level;
    tl_q8_add_scalar(a, len, x1, x2, y);
}

/* Windows reach past the edges only into the padding, which never wins a
 * maximum: each output pixel takes the maximum of its taps inside the map
 * (at least one: tl_pool_geom keeps the padding under the window). */
void tl_q8_maxpool(const tl_pool_geom *g, int cs, const uint8_t *x, uint8_t *y)
{
#if defined(__x86_64__)
    if (tl_simd_level() >= TL_SIMD_AVX2 && cs % 16 == 0 && g->kh <= 64) {
        const uint8_t *taps[64];
        for (int oy = 0; oy < g->oh; oy++) {
            int nr = 0;
            for (int ky = 0; ky < g->kh; ky++) {
                int iy = oy * g->stride_h - g->pad_t + ky;
                if (iy >= 0 && iy < g->h)
                    taps[nr++] = x + (size_t)iy * g->w * cs;
            }
            tl_q8_max_row_avx2(g, cs, taps, nr, y + (size_t)oy * g->ow * cs);
        }
        return;
    }
#endif
    for (int oy = 0; oy < g->oh; oy++)
        for (int ox = 0; ox < g->ow; ox++) {
            uint8_t *o = y + ((size_t)oy * g->ow + ox) * cs;
            memset(o, 0, (size_t)cs);
            for (int ky = 0; ky < g->kh; ky++) {
                int iy = oy * g->stride_h - g->pad_t + ky;
                if (iy < 0 || iy >= g->h)
                    continue;
                for (int kx = 0; kx < g->kw; kx++) {
                    int ix = ox * g->stride_w - g->pad_l + kx;
                    if (ix < 0 || ix >= g->w)
                        continue;
                    const uint8_t *in = x + ((size_t)iy * g->w + ix) * cs;
                    for (int ch = 0; ch < cs; ch++)
                        o[ch] = in[ch] > o[ch] ? in[ch] : o[ch];
                }
            }
        }
}

void tl_q8_channel_sums(int c, int cs, int hw, const uint8_t *x, int32_t *sums)
{
    memset(sums, 0, (size_t)c * sizeof *sums);
    for (int p = 0; p < hw; p++)
        for (int ch = 0; ch < c; ch++)
            sums[ch] += x[(size_t)p * cs + ch];
}

void tl_q8_quantize_row_scalar(const float *x, int n, float scale, int zero, uint8_t *y)
{
    for (int i = 0; i < n; i++) {
        float v = roundf(x[i] / scale) + (float)zero;
        y[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define WORD_PIXELS 1 /* channel k of a 4-byte pixel is byte k of a uint32_t */
#else
#define WORD_PIXELS 0
#endif

/* Channel rows of 64 pixels are quantised (vectorised along the pixels),
 * then transposed into the pixels' channel vectors. */
void tl_q8_quantize_chw(int c, int hw, const float *x, float scale, int zero, int cs, uint8_t *y)
{
    enum { P = 256, C = 32 };
    uint8_t tmp[C][P];
    int level = tl_simd_level();
    void (*row)(const float *, int, float, int, uint8_t *) = tl_q8_quantize_row_scalar;
#if defined(__x86_64__)
    if (level >= TL_SIMD_AVX512)
        row = tl_q8_quantize_row_avx512;
    else if (level == TL_SIMD_AVX2)
        row = tl_q8_quantize_row_avx2;
#endif
    (void)level;
    for (int p0 = 0; p0 < hw; p0 += P) {
        int np = hw - p0 < P ? hw - p0 : P;
        for (int c0 = 0; c0 < c; c0 += C) {
            int nc = c - c0 < C ? c - c0 : C;
            for (int k = 0; k < nc; k++)
                row(x + (size_t)(c0 + k) * hw + p0, np, scale, zero, tmp[k]);
#if defined(__x86_64__)
            if (level >= TL_SIMD_AVX2 && nc == C && np == P) {
                for (int kb = 0; kb < C; kb += 16)
                    for (int pb = 0; pb < P; pb += 16)
                        tl_q8_transpose16_avx2(&tmp[kb][pb], P, y + (size_t)(p0 + pb) * cs + c0 + kb, (size_t)cs);
                continue;
            }
#endif
            if (cs == 4 && WORD_PIXELS) { /* an RGB image: a pixel's bytes are one 32-bit word, padding included */
                uint32_t z = (uint32_t)zero & 0xFF;
                for (int i = 0; i < np; i++) {
                    uint32_t v = 0; /* little-endian: channel k in byte k */
                    for (int k = 0; k < 4; k++)
                        v |= (k < nc ? tmp[k][i] : z) << (8 * k);
                    memcpy(y + (size_t)(p0 + i) * 4, &v, 4);
                }
                continue;
            }
            for (int i = 0; i < np; i++) {
                uint8_t *o = y + (size_t)(p0 + i) * cs + c0;
                for (int k = 0; k < nc; k++)
                    o[k] = tmp[k][i];
            }
        }
        if (cs == 4 && WORD_PIXELS)
            continue;
        if (cs > c)
            for (int i = 0; i < np; i++)
                memset(y + (size_t)(p0 + i) * cs + c, zero, (size_t)(cs - c));
    }
}

/* Blocks of 16 pixels (transposed 16 channels at a time on SIMD paths):
 * walking one channel down all pixels reads a line per pixel at a stride of
 * cs bytes, and with cs a multiple of 2 KB those lines share a few L1 sets. */
void tl_q8_dequantize_chw(int c, int hw, int cs, const uint8_t *x, float scale, int zero, float *y)
{
    enum { P = 16, C = 64 };
    int simd = 0;
#if defined(__x86_64__)
    simd = tl_simd_level() >= TL_SIMD_AVX2;
#endif
    for (int p0 = 0; p0 < hw; p0 += P) {
        int p1 = hw - p0 < P ? hw : p0 + P;
        int cb = simd && p1 - p0 == P ? c / 16 * 16 : 0; /* channels done as 16 x 16 blocks */
        for (int c0 = 0; c0 < cb; c0 += 16)
            tl_q8_dequant16_avx2(x + (size_t)p0 * cs + c0, (size_t)cs, zero, scale, y + (size_t)c0 * hw + p0,
                                 (size_t)hw);
        for (int c0 = cb; c0 < c; c0 += C) {
            int c1 = c - c0 < C ? c : c0 + C;
            for (int ch = c0; ch < c1; ch++)
                for (int p = p0; p < p1; p++)
                    y[(size_t)ch * hw + p] = (float)(x[(size_t)p * cs + ch] - zero) * scale;
        }
    }
}
