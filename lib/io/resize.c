/* Resizing that reproduces PIL 9.4's Image.resize on 8-bit RGB, pixel for
 * pixel. The algorithm (learned from Pillow's Resample.c, re-implemented):
 *  - separable: a horizontal pass over just the source rows the vertical
 *    pass will read, then a vertical pass;
 *  - per output pixel, taps over source pixels whose centres lie within
 *    the filter support, the support widened by the reduction factor when
 *    downscaling (that is the antialiasing), weights normalised to sum 1;
 *  - weights rounded to 22-bit fixed point, integer accumulation starting
 *    at one half, result shifted back and clamped to 0..255 after each pass;
 *  - NEAREST is PIL's affine scaling: source = floor of an accumulated
 *    double position starting at half a step.
 * A window of the result can be computed alone, with identical pixels,
 * because every output pixel depends only on its own taps. */
#include "image_internal.h"
#include "kernels/kernels.h"
#include "resize_rows.h"

#include <math.h>
#include <string.h>

#define PREC TL_RESIZE_PREC

static double filter_bilinear(double x)
{
    if (x < 0.0)
        x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Keys cubic with a = -0.5, written in PIL's operation order so the
 * doubles (and so the rounded taps) come out identical. */
static double filter_bicubic(double x)
{
    const double a = -0.5;
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* Taps for outputs [o0, o0+count) of an in_size -> out_size resampling:
 * bounds[2i] = first source index, bounds[2i+1] = tap count, kk[i*ksize..]
 * = fixed-point weights. dk holds ksize doubles. */
static void compute_taps(int in_size, int out_size, int o0, int count, int interp, int ksize,
                         int32_t *kk, int *bounds, double *dk)
{
    double (*filt)(double) = interp == TL_INTERP_BICUBIC ? filter_bicubic : filter_bilinear;
    double base = interp == TL_INTERP_BICUBIC ? 2.0 : 1.0;
    double scale = (double)in_size / out_size, fscale = scale < 1.0 ? 1.0 : scale;
    double support = base * fscale, ss = 1.0 / fscale;
    for (int i = 0; i < count; i++) {
        int xx = o0 + i;
        double center = (xx + 0.5) * scale, ww = 0.0;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        if (xmax > ksize)
            xmax = ksize; /* cannot happen; guards the buffers */
        for (int x = 0; x < xmax; x++) {
            double w = filt((x + xmin - center + 0.5) * ss);
            dk[x] = w;
            ww += w;
        }
        int32_t *k = kk + (size_t)i * ksize;
        for (int x = 0; x < ksize; x++) {
            double w = x < xmax ? (ww != 0.0 ? dk[x] / ww : dk[x]) : 0.0;
            k[x] = (int32_t)(w < 0 ? -0.5 + w * (1 << PREC) : 0.5 + w * (1 << PREC));
        }
        bounds[2 * i] = xmin;
        bounds[2 * i + 1] = xmax;
    }
}

static int ksize_for(int in_size, int out_size, int interp)
{
    double scale = (double)in_size / out_size;
    if (scale < 1.0)
        scale = 1.0;
    double support = (interp == TL_INTERP_BICUBIC ? 2.0 : 1.0) * scale;
    return (int)ceil(support) * 2 + 1;
}

/* PIL's nearest: positions accumulate from half a step, so walk from 0
 * to keep the same rounding; -1 marks a position outside the source. */
static void nearest_table(int in_size, int out_size, int o0, int count, int *tab)
{
    double step = (double)in_size / out_size, pos = step * 0.5;
    for (int i = 0; i < o0 + count; i++, pos += step) {
        if (i < o0)
            continue;
        int v = pos < 0.0 ? -1 : (int)pos;
        tab[i - o0] = v < in_size ? v : -1;
    }
}

static int resize_nearest(const tl_image *src, int w, int h, int x0, int y0, int cw, int ch,
                          tl_image *dst, tl_preproc_ws *ws, tl_err *e)
{
    void *p = ws->bounds;
    if (tl__grow(&p, &ws->bounds_cap, sizeof(int) * ((size_t)cw + ch), e) < 0)
        return -1;
    ws->bounds = p;
    int *xt = ws->bounds, *yt = ws->bounds + cw;
    nearest_table(src->w, w, x0, cw, xt);
    nearest_table(src->h, h, y0, ch, yt);
    if (tl_image_alloc(dst, cw, ch, e) < 0)
        return -1;
    for (int y = 0; y < ch; y++) {
        uint8_t *d = dst->px + (size_t)y * cw * 3;
        if (yt[y] < 0) {
            memset(d, 0, (size_t)cw * 3);
            continue;
        }
        const uint8_t *s = src->px + (size_t)yt[y] * src->w * 3;
        for (int x = 0; x < cw; x++, d += 3) {
            if (xt[x] < 0) {
                d[0] = d[1] = d[2] = 0;
            } else {
                const uint8_t *q = s + (size_t)xt[x] * 3;
                d[0] = q[0];
                d[1] = q[1];
                d[2] = q[2];
            }
        }
    }
    return 0;
}

static int resize_filtered(const tl_image *src, int w, int h, int x0, int y0, int cw, int ch,
                           int interp, tl_image *dst, tl_preproc_ws *ws, tl_err *e)
{
    int need_h = w != src->w, need_v = h != src->h;
    int ksh = ksize_for(src->w, w, interp), ksv = ksize_for(src->h, h, interp);
    size_t nkh = (size_t)cw * ksh, nkv = (size_t)ch * ksv;
    void *p;
    p = ws->coef;
    if (tl__grow(&p, &ws->coef_cap, sizeof(int32_t) * (nkh + nkv), e) < 0)
        return -1;
    ws->coef = p;
    p = ws->dcoef;
    if (tl__grow(&p, &ws->dcoef_cap, sizeof(double) * (size_t)(ksh > ksv ? ksh : ksv), e) < 0)
        return -1;
    ws->dcoef = p;
    p = ws->bounds;
    if (tl__grow(&p, &ws->bounds_cap, sizeof(int) * 2 * ((size_t)cw + ch), e) < 0)
        return -1;
    ws->bounds = p;
    int32_t *kh = ws->coef, *kv = ws->coef + nkh;
    tl_resize_rows rr = tl_resize_rows_for(tl_simd_level());
    int *bh = ws->bounds, *bv = ws->bounds + 2 * (size_t)cw;
    compute_taps(src->h, h, y0, ch, interp, ksv, kv, bv, ws->dcoef);
    if (need_h)
        compute_taps(src->w, w, x0, cw, interp, ksh, kh, bh, ws->dcoef);
    if (tl_image_alloc(dst, cw, ch, e) < 0)
        return -1;
    size_t sstride = (size_t)src->w * 3, dstride = (size_t)cw * 3;

    if (!need_v) {
        /* rows map one to one */
        for (int y = 0; y < ch; y++) {
            const uint8_t *s = src->px + (size_t)(y0 + y) * sstride;
            uint8_t *d = dst->px + (size_t)y * dstride;
            if (need_h)
                rr.hpass(s, src->w, d, 0, cw, ksh, kh, bh);
            else
                memcpy(d, s + (size_t)x0 * 3, dstride);
        }
        return 0;
    }
    const uint8_t *vin; /* source rows for the vertical pass */
    size_t vstride;
    int first = bv[0];
    if (need_h) {
        int last = bv[2 * (ch - 1)] + bv[2 * (ch - 1) + 1];
        int rows = last - first;
        p = ws->tmp;
        if (tl__grow(&p, &ws->tmp_cap, dstride * (size_t)rows, e) < 0)
            return -1;
        ws->tmp = p;
        for (int y = 0; y < rows; y++)
            rr.hpass(src->px + (size_t)(first + y) * sstride, src->w, ws->tmp + (size_t)y * dstride, 0, cw,
                     ksh, kh, bh);
        vin = ws->tmp;
        vstride = dstride;
    } else {
        vin = src->px + (size_t)x0 * 3;
        vstride = sstride;
    }
    for (int y = 0; y < ch; y++) {
        /* the horizontal result starts at source row `first` */
        const uint8_t *rows = vin + (size_t)(bv[2 * y] - (need_h ? first : 0)) * vstride;
        rr.vpass(rows, vstride, dst->px + (size_t)y * dstride, 0, (int)dstride, kv + (size_t)y * ksv,
                 bv[2 * y + 1]);
    }
    return 0;
}

int tl_image_resize_window(const tl_image *src, int w, int h, int x0, int y0, int cw, int ch,
                           int interp, tl_image *dst, tl_preproc_ws *ws, tl_err *e)
{
    if (!src || !src->px || src->w <= 0 || src->h <= 0)
        return tl_fail(e, "resize of an empty image");
    if (dst == src || dst->px == src->px)
        return tl_fail(e, "resize destination must differ from the source");
    if (w <= 0 || h <= 0 || w > (1 << 24) || h > (1 << 24))
        return tl_fail(e, "invalid resize target %dx%d", w, h);
    if (x0 < 0 || y0 < 0 || cw <= 0 || ch <= 0 || x0 > w - cw || y0 > h - ch)
        return tl_fail(e, "resize window %dx%d+%d+%d outside %dx%d", cw, ch, x0, y0, w, h);
    if (interp != TL_INTERP_BILINEAR && interp != TL_INTERP_BICUBIC && interp != TL_INTERP_NEAREST)
        return tl_fail(e, "unknown interpolation %d", interp);
    tl_preproc_ws local;
    tl_preproc_ws *use = ws;
    if (!use) {
        memset(&local, 0, sizeof local);
        use = &local;
    }
    int rc = interp == TL_INTERP_NEAREST
                 ? resize_nearest(src, w, h, x0, y0, cw, ch, dst, use, e)
                 : resize_filtered(src, w, h, x0, y0, cw, ch, interp, dst, use, e);
    if (!ws)
        tl_preproc_ws_free(&local);
    return rc;
}

int tl_image_resize(const tl_image *src, int w, int h, int interp, tl_image *dst,
                    tl_preproc_ws *ws, tl_err *e)
{
    return tl_image_resize_window(src, w, h, 0, 0, w, h, interp, dst, ws, e);
}
