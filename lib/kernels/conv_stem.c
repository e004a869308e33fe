/* Direct k x k stride-2 convolution (k = 3, 5, 7) of up to 4 input
 * channels: the stems of MobileNetV2 and EfficientNet-B0 (3x3, 3 -> 32
 * channels, 224x224 -> 112x112) and of ResNet (7x7 pad 3, 3 -> 64), on the
 * AVX2 and AVX-512 paths, in place of im2col + GEMM, whose packing (27 or
 * 147 gathered rows for every block of pixels) cost a fifth of the layer
 * or more.
 *
 * A band of output rows at a time, the input is split into its four
 * stride-2 phases (even / odd rows x even / odd columns of the padded
 * image, zeros for the padding), so that each tap reads consecutive
 * pixels; a register block of output channels x consecutive pixels sums
 * its taps (conv_stem_avx2.c, conv_stem_avx512.c). Each output is summed
 * as the GEMM sums it (K = cin k k fits one K block): from zero, k = (channel,
 * ky, kx) in order, one multiply-add a step, then the bias and the
 * activation of its epilogue (relu / relu6 in the stores as ukernel_ep, the
 * others by tl_act_rows): the same bits. */
#include "act_internal.h"
#include "conv_internal.h"
#include "simd.h"

#include <stdint.h>
#include <string.h>

#define BAND 8   /* output rows per band: its phase rows stay in L1/L2 */
#define CB_MAX 8 /* output channels per register block (AVX-512; AVX2 4) */
#define WIDE 32  /* widest pixel block (AVX-512: two vectors) */

static int imin(int a, int b) { return a < b ? a : b; }

int tl_conv_stem_applies(const tl_kws *ws, const tl_conv_geom *g)
{
    return ws->impl->level >= TL_SIMD_AVX2 && g->groups == 1 && g->cin <= 4 && !tl_conv_is_depthwise(g) &&
           g->kh == g->kw && (g->kh == 3 || g->kh == 5 || g->kh == 7) && g->stride_h == 2 && g->stride_w == 2 &&
           g->dil_h == 1 && g->dil_w == 1 && tl_conv_group_k(g) <= ws->impl->kc;
}

/* phase rows a band reads: its output rows and the taps' (k - 1) / 2 below */
static int phase_rows(const tl_conv_geom *g) { return BAND + (g->kh - 1) / 2; }

/* floats per phase row: the widest block's loads past the last pixel
 * (up to (k - 1) / 2 + WIDE / 2 - 1 beyond it) stay inside the row */
static int phase_width(const tl_conv_geom *g) { return (g->ow + (g->kw - 1) / 2 + WIDE / 2 - 1 + 15) / 16 * 16; }

static size_t weight_floats(const tl_conv_geom *g)
{
    return (size_t)(g->cout + CB_MAX - 1) * tl_conv_group_k(g); /* any cb <= CB_MAX */
}

size_t tl_conv_stem_scratch_floats(const tl_conv_geom *g)
{
    return weight_floats(g) + 15 + (size_t)g->cin * 4 * phase_rows(g) * phase_width(g);
}

/* d[j] = xr[2 j + off] for j in [0, n), zero where 2 j + off is outside
 * [0, w) */
static void phase_row(const float *xr, int off, int w, int n, float *d)
{
    const int a = imin(tl_first_inside(off, 2), n), b = tl_clampi(tl_end_inside(off, w - 1, 2), a, n);
    memset(d, 0, sizeof(float) * (size_t)a);
    tl_gather2(xr, off, a, b, w, d);
    memset(d + b, 0, sizeof(float) * (size_t)(n - b));
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
    const int pw = phase_width(g), k = g->kh, below = (k - 1) / 2;
    const size_t plane = (size_t)phase_rows(g) * pw;
    /* the weights by blocks of cb channels, tap by tap (tl_gemm_pack_a's
     * slivers of mr channels, one K block), zeros past cout */
    float *wb = scratch, *ph = scratch + weight_floats(g);
    ph += (16 - (uintptr_t)ph / sizeof(float) % 16) % 16; /* rows of pixel blocks on cache lines */
    for (int c0 = 0; c0 < cout; c0 += cb)
        for (int q = 0; q < K; q++)
            for (int i = 0; i < cb; i++) {
                int co = c0 + i;
                wb[(size_t)c0 * K + (size_t)q * cb + i] =
                    co < cout ? packed[(size_t)(co / mr) * mr * K + (size_t)q * mr + co % mr] : 0.0f;
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
                for (int r = 0; r < rows + below; r++) {
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
                tl_stem_s2_avx512(ph, plane, pw, rows, cin, k, ow, wb + (size_t)c0 * K, nco, yb + (size_t)c0 * ys, ys,
                                  b, in_kernel ? act : TL_ACT_NONE);
            else
                tl_stem_s2_avx2(ph, plane, pw, rows, cin, k, ow, wb + (size_t)c0 * K, nco, yb + (size_t)c0 * ys, ys, b,
                                in_kernel ? act : TL_ACT_NONE);
        }
        if (!in_kernel)
            tl_act_rows_for(ws->impl->level)(act, yb, ys, yb, ys, bias, cout, (size_t)rows * ow);
    }
}
