/* int8 inference kernels. Activations are uint8, NHWC (one pixel's
 * channels contiguous, channel stride cs a multiple of 16), each tensor
 * with one scale and zero point: real = scale * (q - zero). Weights are
 * integers symmetric per output channel (zero point 0). Accumulation is
 * exact in int32 and requantisation uses TensorFlow Lite's fixed-point
 * rules (a Q31 multiplier, a rounding doubling high multiply, a rounding
 * right shift: ties up in convolutions as ruy rounds them, away from zero
 * in depthwise convolutions as TFLite's own kernels do), so every SIMD
 * path and thread count gives the same bytes, and a TFLite model runs
 * exactly as TFLite's CPU kernels run it.
 *
 * Paths, picked by tl_simd_level() when a layer is packed: scalar, AVX2
 * (vpmaddubsw + vpmaddwd), AVX-512BW (the same on 512 bits), AVX-512 VNNI
 * (vpdpbusd). vpmaddubsw adds two u8 x s8 products in a saturating int16:
 * exact only when the two weights of a pair have |w0| + |w1| <= 128. A
 * layer that breaks that is packed as two (or four) planes whose sum is
 * the weight and whose pairs stay within it, so the sum stays exact. */
#ifndef TL_KERNELS_QUANT_H
#define TL_KERNELS_QUANT_H

#include <stdint.h>

#include "kernels.h"

/* A positive real multiplier as TFLite's QuantizeMultiplier writes it:
 * m = mult * 2^(shift - 31), mult in [2^30, 2^31). m == 0 gives 0, 0. */
void tl_q8_quantize_multiplier(double m, int32_t *mult, int *shift);
/* TFLite's MultiplyByQuantizedMultiplier: gemmlowp's rounding doubling
 * high multiply, then a rounding right shift whose ties go away from zero
 * (away = 1: gemmlowp's RoundingDivideByPOT, TFLite's reference kernels,
 * its depthwise convolution, ADD and MEAN) or up (away = 0: ruy, the GEMM
 * behind TFLite's convolutions and fully connected layers on x86 and ARM). */
int32_t tl_q8_mul_round(int32_t x, int32_t mult, int shift, int away);
int32_t tl_q8_mul(int32_t x, int32_t mult, int shift); /* away = 1 */
/* round(x / 2^exponent), ties away from zero (away = 1) or up. */
int32_t tl_q8_rshift_round(int32_t x, int exponent, int away);

/* Channel stride of an NHWC uint8 tensor of c channels. */
static inline int tl_q8_stride(int c) { return (c + 15) / 16 * 16; }

/* Requantisation of one layer's int32 sums to uint8: per output channel
 * bias (the layer's int32 bias), multiplier and shift; then + zout and
 * clamped to [qmin, qmax] (the fused activation). */
typedef struct tl_q8_out {
    int zin, zout, qmin, qmax;
} tl_q8_out;

/* A convolution packed for the int8 path chosen at packing time: groups
 * == 1, or depthwise (groups == cin == cout). x is cs_in-strided NHWC;
 * y is cs_out-strided NHWC; every byte of y's channel stride is written.
 * Weights w are the effective integers (cout, cin/groups, kh, kw), |w| <=
 * 255 (an int16 so an asymmetric uint8 weight w - zw also fits). bias and
 * multipliers per output channel, real multipliers (in scale * w scale /
 * out scale). Read-only after creation: any number of threads may run it. */
typedef struct tl_q8_conv tl_q8_conv;
tl_q8_conv *tl_q8_conv_new(const tl_conv_geom *g, int cs_in, int cs_out, const int16_t *w, const int32_t *bias,
                           const double *mult, const tl_q8_out *o, tl_err *e);
void tl_q8_conv_free(tl_q8_conv *c);
/* Output pixels of share `part` of `nparts`. scratch: at least
 * tl_q8_conv_scratch_bytes(c) bytes (64-byte aligned) that only this call
 * uses (on AVX2/AVX-512BW: the input widened to int16, or the integer
 * Winograd's transformed input tiles and products); NULL when that is 0. */
void tl_q8_conv_forward(const tl_q8_conv *c, const uint8_t *x, uint8_t *y, int part, int nparts, void *scratch);
size_t tl_q8_conv_scratch_bytes(const tl_q8_conv *c);
const char *tl_q8_conv_path(const tl_q8_conv *c);
/* Planes the weights were split into for this path (1 = none). */
int tl_q8_conv_planes(const tl_q8_conv *c);

/* Residual addition with TFLite's ADD rules (inputs shifted left 20 bits,
 * each rescaled to twice the larger input scale, summed, rescaled to the
 * output), over n pixels of c channels. */
typedef struct tl_q8_add {
    int z1, z2, zout, qmin, qmax;
    int32_t m1, m2, mout;
    int s1, s2, sout;
    /* The SIMD paths' rescalings (inputs 1, 2, output) in one 64-bit
     * rounding each, as the convolutions' (q8_misc.c): rounding constant,
     * tie adjustment, shift, post; one = 0 when a shift is out of their
     * range (the scalar rule then runs). */
    int64_t rnd[3], adj[3];
    int sh[3];
    int32_t post[3];
    int one;
    /* The short form (fast = 1; q8_misc.c): each input rescaled in 32-bit
     * lanes as d * mh + ((d * ml + r - [d < 0] adj) >> sh), the output's
     * as the high half of one 64-bit product + ko (- 2^31 when the product
     * is below -2^30), shifted by osh. */
    int32_t fmh[2], fml[2], fr[2], fadj[2];
    int fsh[2], fosh;
    int64_t fko;
    int fast;
} tl_q8_add;
void tl_q8_add_init(tl_q8_add *a, double s1, int z1, double s2, int z2, double sout, int zout, int qmin, int qmax);
void tl_q8_add_forward(const tl_q8_add *a, int c, int cs, size_t n, const uint8_t *x1, const uint8_t *x2,
                       uint8_t *y);

/* Max pooling on NHWC uint8 (same scale in and out); g.c = channels. */
void tl_q8_maxpool(const tl_pool_geom *g, int cs, const uint8_t *x, uint8_t *y);
/* Global average: per channel sum of hw pixels. */
void tl_q8_channel_sums(int c, int cs, int hw, const uint8_t *x, int32_t *sums);

/* Float CHW <-> uint8 NHWC (cs-strided; padding channels get the zero
 * point). Quantising rounds half away from zero (TFLite), then clamps. */
void tl_q8_quantize_chw(int c, int hw, const float *x, float scale, int zero, int cs, uint8_t *y);
/* A float convolution (+ bias, act NONE / RELU / RELU6) quantised as it
 * is stored: the floats of tl_conv_forward_packed on ws (its AVX2 or
 * AVX-512 GEMM), then tl_q8_quantize_chw's bytes (cs-strided NHWC, padding
 * channels = zero). Fits: a SIMD ws, groups 1, im2col (not Winograd, not
 * 1x1 direct), cin * kh * kw <= 256 (one K block of those GEMMs), cout a
 * multiple of 16. pw: tl_q8_fconv_weights_floats from tl_q8_fconv_pack of
 * the (cout, K) weights; scratch: tl_q8_fconv_scratch_floats. q8_fconv.c. */
int tl_q8_fconv_fits(const tl_kws *ws, const tl_conv_geom *g);
size_t tl_q8_fconv_weights_floats(const tl_conv_geom *g);
void tl_q8_fconv_pack(const tl_conv_geom *g, const float *w, float *pw);
size_t tl_q8_fconv_scratch_floats(const tl_conv_geom *g);
void tl_q8_fconv(const tl_kws *ws, const tl_conv_geom *g, const float *x, const float *pw, const float *bias, int act,
                 float scale, int zero, int cs, uint8_t *y, float *scratch);
void tl_q8_dequantize_chw(int c, int hw, int cs, const uint8_t *x, float scale, int zero, float *y);

#endif
