/* Direct 3x3 stride-2 convolution of up to 4 input channels: the stems of
 * MobileNetV2 and EfficientNet-B0 (3 -> 32 channels, 224x224 -> 112x112),
 * on the AVX2 and AVX-512 paths, in place of im2col + GEMM, which with
 * K = 27 ran at half the 1x1 layers' rate (27 gathered rows packed per
 * block for 27 micro-kernel steps).
 *
 * A band of output rows at a time, the input is split into its four
 * stride-2 phases (even / odd rows x even / odd columns of the padded
 * image, zeros for the padding), so that each tap reads consecutive
 * pixels; a register block of output channels x consecutive pixels sums
 * its taps (conv_stem_avx2.c, conv_stem_avx512.c). Each output is summed
 * as the GEMM sums it (K fits one K block): from zero, k = (channel, ky,
 * kx) in order, one multiply-add a step, then the bias and the activation
 * of its epilogue (relu / relu6 in the stores as ukernel_ep, the others by
 * tl_act_rows): the same bits. */
#include "act_internal.h"
#include "conv_internal.h"
#include "simd.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define BAND 8     /* output rows per band: its phase rows stay in L1/L2 */
#define CB_MAX 8   /* output channels per register block (AVX-512; AVX2 4) */
#define WIDE 32    /* widest pixel block (AVX-512: two vectors) */

static int imin(int a, int b) { return a < b ? a : b; }

int tl_conv_stem_applies(const tl_kws *ws, const tl_conv_geom *g)
{
    return ws->impl->level >= TL_SIMD_AVX2 && g->groups == 1 && g->cin <= 4 && !tl_conv_is_depthwise(g) &&
           g->kh == 3 && g->kw == 3 && g->stride_h == 2 && g->stride_w == 2 && g->dil_h == 1 && g->dil_w == 1 &&
           tl_conv_group_k(g) <= ws->impl->kc;
}

/* floats per phase row: the widest block's loads past the last pixel
 * (kx / 2 + WIDE - 1 beyond it) stay inside the row */
static int phase_width(const tl_conv_geom *g) { return (g->ow + WIDE + 15) / 16 * 16; }

static size_t weight_floats(const tl_conv_geom *g)
{
    return (size_t)(g->cout + CB_MAX - 1) / CB_MAX * CB_MAX * tl_conv_group_k(g);
}

size_t tl_conv_stem_scratch_floats(const tl_conv_geom *g)
{
    return weight_floats(g) + (size_t)g->cin * 4 * (BAND + 1) * phase_width(g);
}

/* d[j] = xr[2 j + off] for j in [0, n), zero where 2 j + off is outside
 * [0, w) */
static void phase_row(const float *xr, int off, int w, int n, float *d)
{
    int a = off >= 0 ? 0 : (-off + 1) / 2, b = off > w - 1 ? 0 : (w - 1 - off) / 2 + 1;
    a = imin(a, n);
    b = b < a ? a : imin(b, n);
    for (int j = 0; j < a; j++)
        d[j] = 0.0f;
    int j = a;
#if defined(__SSE2__)
    for (; j + 4 <= b && 2 * j + off + 8 <= w; j += 4) {
        __m128 lo = _mm_loadu_ps(xr + 2 * j + off), hi = _mm_loadu_ps(xr + 2 * j + off + 4);
        _mm_storeu_ps(d + j, _mm_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0)));
    }
#endif
    for (; j < b; j++)
        d[j] = xr[2 * j + off];
    for (j = b; j < n; j++)
        d[j] = 0.0f;
}

void tl_conv_stem_forward(tl_kws *ws, const tl_conv_geom *g, int n, const float *x, const float *packed,
                          const float *bias, int act, float *y, int part, int nparts, float *scratch)
{
    const int avx512 = ws->impl->level >= TL_SIMD_AVX512, cb = avx512 ? 8 : 4;
    const int mr = ws->impl->mr, K = tl_conv_group_k(g), cin = g->cin, cout = g->cout, oh = g->oh, ow = g->ow;
    const int bands = (oh + BAND - 1) / BAND, total = n * bands;
    const int t0 = (int)((long)total * part / nparts), t1 = (int)((long)total * (part + 1) / nparts);
    if (t0 >= t1)
        return;
    const size_t hw = (size_t)g->h * g->w, ohw = (size_t)oh * ow, xs = hw * n, ys = ohw * n;
    const int pw = phase_width(g);
    const size_t plane = (size_t)(BAND + 1) * pw;
    /* the weights by blocks of cb channels, k by k (tl_gemm_pack_a's
     * slivers of mr channels, one K block), zeros past cout */
    float *wb = scratch, *ph = scratch + weight_floats(g);
    for (int c0 = 0; c0 < cout; c0 += cb)
        for (int k = 0; k < K; k++)
            for (int i = 0; i < cb; i++) {
                int co = c0 + i;
                wb[(size_t)c0 * K + (size_t)k * cb + i] =
                    co < cout ? packed[(size_t)(co / mr) * mr * K + (size_t)k * mr + co % mr] : 0.0f;
            }
    /* relu / relu6 in the kernel's stores as in ukernel_ep; the others
     * (SiLU, ...) by tl_act_rows over the raw sums, as the GEMM's separate
     * pass */
    const int in_kernel = act == TL_ACT_NONE || act == TL_ACT_RELU || act == TL_ACT_RELU6;
    for (int t = t0; t < t1; t++) {
        const int img = t / bands, oy0 = t % bands * BAND, rows = imin(BAND, oh - oy0);
        for (int c = 0; c < cin; c++) {
            const float *xc = x + (size_t)c * xs + (size_t)img * hw;
            for (int py = 0; py < 2; py++)
                for (int r = 0; r <= rows; r++) {
                    const int iy = 2 * (oy0 + r) + py - g->pad_t;
                    for (int px = 0; px < 2; px++) {
                        float *d = ph + (size_t)((c * 2 + py) * 2 + px) * plane + (size_t)r * pw;
                        if (iy < 0 || iy >= g->h)
                            memset(d, 0, sizeof(float) * pw);
                        else
                            phase_row(xc + (size_t)iy * g->w, px - g->pad_l, g->w, pw, d);
                    }
                }
        }
        float *yb = y + (size_t)img * ohw + (size_t)oy0 * ow;
        for (int c0 = 0; c0 < cout; c0 += cb) {
            const int nco = imin(cb, cout - c0);
            const float *b = in_kernel && bias ? bias + c0 : NULL;
            if (avx512)
                tl_stem_s2_avx512(ph, plane, pw, rows, cin, ow, wb + (size_t)c0 * K, nco, yb + (size_t)c0 * ys, ys,
                                  b, in_kernel ? act : TL_ACT_NONE);
            else
                tl_stem_s2_avx2(ph, plane, pw, rows, cin, ow, wb + (size_t)c0 * K, nco, yb + (size_t)c0 * ys, ys, b,
                                in_kernel ? act : TL_ACT_NONE);
        }
        if (!in_kernel)
            tl_act_rows_for(ws->impl->level)(act, yb, ys, yb, ys, bias, cout, (size_t)rows * ow);
    }
}
