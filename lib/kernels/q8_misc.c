/* int8 element-wise and pooling kernels: TFLite's ADD, max pooling,
 * channel sums for the global average, and the float <-> uint8 edges. */
#include "quant.h"

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
}

void tl_q8_add_forward(const tl_q8_add *a, int c, int cs, size_t n, const uint8_t *x1, const uint8_t *x2,
                       uint8_t *y)
{
    for (size_t p = 0; p < n; p++) {
        const uint8_t *u = x1 + p * cs, *v = x2 + p * cs;
        uint8_t *o = y + p * cs;
        for (int ch = 0; ch < c; ch++) {
            int32_t i1 = (u[ch] - a->z1) * (1 << 20), i2 = (v[ch] - a->z2) * (1 << 20);
            int32_t sum = tl_q8_mul(i1, a->m1, a->s1) + tl_q8_mul(i2, a->m2, a->s2);
            int32_t r = tl_q8_mul(sum, a->mout, a->sout) + a->zout;
            o[ch] = (uint8_t)(r < a->qmin ? a->qmin : r > a->qmax ? a->qmax : r);
        }
        memset(o + c, a->zout, (size_t)(cs - c));
    }
}

void tl_q8_maxpool(const tl_pool_geom *g, int cs, const uint8_t *x, uint8_t *y)
{
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

void tl_q8_quantize_chw(int c, int hw, const float *x, float scale, int zero, int cs, uint8_t *y)
{
    for (int p = 0; p < hw; p++) {
        uint8_t *o = y + (size_t)p * cs;
        for (int ch = 0; ch < c; ch++) {
            float v = roundf(x[(size_t)ch * hw + p] / scale) + (float)zero;
            o[ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
        memset(o + c, zero, (size_t)(cs - c));
    }
}

void tl_q8_dequantize_chw(int c, int hw, int cs, const uint8_t *x, float scale, int zero, float *y)
{
    for (int ch = 0; ch < c; ch++)
        for (int p = 0; p < hw; p++)
            y[(size_t)ch * hw + p] = (float)(x[(size_t)p * cs + ch] - zero) * scale;
}
