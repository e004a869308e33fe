/* The evaluation pipeline on one decoded image: resize (crop, squash or
 * pad geometry, image.h), centre cut to the network's W x H, ToTensor,
 * Normalize(mean, std), optional BGR. Only the window that lands in the
 * input is resampled (same pixels as resizing everything and cutting,
 * since each output pixel has its own taps). */
#include "image_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tl_preproc_default(tl_preproc *p)
{
    memset(p, 0, sizeof *p);
    p->input_w = p->input_h = 224;
    p->resize_size = 256;
    p->resize_mode = TL_RESIZE_CROP;
    p->mean[0] = 0.485f;
    p->mean[1] = 0.456f;
    p->mean[2] = 0.406f;
    p->std[0] = 0.229f;
    p->std[1] = 0.224f;
    p->std[2] = 0.225f;
    p->bgr = 0;
    p->interp = TL_INTERP_BILINEAR;
}

void tl_preproc_ws_free(tl_preproc_ws *ws)
{
    if (!ws)
        return;
    tl_image_free(&ws->resized);
    tl_free(ws->tmp);
    tl_free(ws->coef);
    tl_free(ws->dcoef);
    tl_free(ws->bounds);
    memset(ws, 0, sizeof *ws);
}

static const char *const mode_names[] = {"crop", "squash", "pad"};

const char *tl_resize_mode_name(int mode) { return mode >= 0 && mode < 3 ? mode_names[mode] : "?"; }

int tl_resize_mode_parse(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, mode_names[i]))
            return i;
    return -1;
}

static int parse_side(const char *s, const char **end, int max, int *v)
{
    long x = 0;
    const char *p = s;
    while (*p >= '0' && *p <= '9' && x <= max)
        x = x * 10 + (*p++ - '0');
    if (p == s || x < 1 || x > max)
        return -1;
    *end = p;
    *v = (int)x;
    return 0;
}

int tl_input_size_parse(const char *s, int max, int *w, int *h)
{
    const char *p;
    if (!s || parse_side(s, &p, max, w))
        return -1;
    if (!*p) {
        *h = *w;
        return 0;
    }
    if (*p != 'x' || parse_side(p + 1, &p, max, h) || *p)
        return -1;
    return 0;
}

void tl_input_size_format(int w, int h, char *buf, size_t n)
{
    if (w == h)
        snprintf(buf, n, "%d", w);
    else
        snprintf(buf, n, "%dx%d", w, h);
}

void tl_preproc_geometry_format(const tl_preproc *pp, char *buf, size_t n)
{
    char size[32];
    tl_input_size_format(pp->input_w, pp->input_h, size, sizeof size);
    snprintf(buf, n, "%s %s %d", size, tl_resize_mode_name(pp->resize_mode), pp->resize_size);
}

int tl_preproc_geometry_parse(const char *s, tl_preproc *pp)
{
    char size[32], mode[16];
    int r, used = 0;
    if (!s || sscanf(s, "%31s %15s %d%n", size, mode, &r, &used) != 3 || s[used])
        return -1;
    int w, h, m = tl_resize_mode_parse(mode);
    if (m < 0 || tl_input_size_parse(size, 4096, &w, &h) || r < 1 || r > 16384)
        return -1;
    pp->input_w = w;
    pp->input_h = h;
    pp->resize_mode = m;
    pp->resize_size = r;
    return 0;
}

void tl_preproc_resize_input(tl_preproc *p, int w, int h, int resize_mode)
{
    int m0 = p->input_w < p->input_h ? p->input_w : p->input_h, m1 = w < h ? w : h;
    if (m0 > 0 && (w != p->input_w || h != p->input_h))
        p->resize_size = (int)(((int64_t)m1 * p->resize_size + m0 / 2) / m0);
    if (p->resize_size < m1)
        p->resize_size = m1;
    p->input_w = w;
    p->input_h = h;
    if (resize_mode >= 0)
        p->resize_mode = resize_mode;
}

void tl_preproc_describe(const tl_preproc *pp, char *buf, size_t n)
{
    static const char *const interp[] = {"bilinear", "bicubic", "nearest"};
    const char *ip = pp->interp >= 0 && pp->interp < 3 ? interp[pp->interp] : "?";
    int W = pp->input_w, H = pp->input_h, R = pp->resize_size, m = W < H ? W : H;
    int bw = m > 0 ? (int)((int64_t)W * R / m) : 0, bh = m > 0 ? (int)((int64_t)H * R / m) : 0;
    char crop[48] = "";
    if (bw != W || bh != H) {
        if (W == H)
            snprintf(crop, sizeof crop, ", centre crop %d", W);
        else
            snprintf(crop, sizeof crop, ", centre crop %dx%d", W, H);
    }
    if (pp->resize_mode == TL_RESIZE_PAD)
        snprintf(buf, n, "fit inside %dx%d keeping the aspect ratio (%s), padded with the mean colour", W, H, ip);
    else if (pp->resize_mode == TL_RESIZE_SQUASH)
        snprintf(buf, n, "resize to %dx%d (%s)%s", bw, bh, ip, crop);
    else if (bw == bh)
        snprintf(buf, n, "shorter side to %d (%s)%s", R, ip, crop);
    else
        snprintf(buf, n, "cover %dx%d keeping the aspect ratio (%s)%s", bw, bh, ip, crop);
}

/* torchvision CenterCrop offset along one axis of length n for a crop of
 * c: Python's round((n - c) / 2), i.e. half to even; negative when the
 * image is smaller and torchvision pads (left pad = (c - n) // 2). */
static int crop_offset(int n, int c)
{
    if (c > n)
        return -((c - n) / 2);
    int d = n - c, half = d / 2;
    if (d % 2 && half % 2)
        half++; /* x.5 rounds to the even neighbour */
    return half;
}

/* timm's ResizeKeepRatio: ratio = the larger (fit inside) or smaller
 * (cover) of h/bh and w/bw, sides round(side / ratio), Python's float
 * arithmetic and round half to even. */
static int keep_ratio(int w, int h, int bw, int bh, int fit_inside, int *rw, int *rh, tl_err *e)
{
    double ratio_h = (double)h / bh, ratio_w = (double)w / bw;
    double ratio = fit_inside ? fmax(ratio_h, ratio_w) : fmin(ratio_h, ratio_w);
    double nh = nearbyint(h / ratio), nw = nearbyint(w / ratio);
    if (nh > (double)(1 << 24) || nw > (double)(1 << 24))
        return tl_fail(e, "image %dx%d is too elongated to resize", w, h);
    *rh = (int)nh;
    *rw = (int)nw;
    return 0;
}

int tl_preproc_plan(const tl_preproc *pp, int w, int h, int *rw, int *rh, int *left, int *top, tl_err *e)
{
    int W = pp->input_w, H = pp->input_h, R = pp->resize_size;
    if (W <= 0 || H <= 0 || R <= 0 || W > 16384 || H > 16384 || R > 16384)
        return tl_fail(e, "invalid preprocessing sizes (input %dx%d, resize %d)", W, H, R);
    if (w <= 0 || h <= 0)
        return tl_fail(e, "preprocessing an empty image");
    int m = W < H ? W : H;
    int bw = (int)((int64_t)W * R / m), bh = (int)((int64_t)H * R / m);
    int nw, nh;
    switch (pp->resize_mode) {
    case TL_RESIZE_SQUASH:
        nw = bw;
        nh = bh;
        break;
    case TL_RESIZE_PAD:
        if (keep_ratio(w, h, W, H, 1, &nw, &nh, e))
            return -1;
        break;
    case TL_RESIZE_CROP:
        if (bw == bh) {
            /* Python's int(size * long / short): a correctly rounded double
             * quotient, truncated (integer division could differ by one) */
            int sw = w <= h;
            int lo = sw ? h : w, sh = sw ? w : h;
            double l = (double)bw * lo / sh;
            if (l > (double)(1 << 24))
                return tl_fail(e, "image %dx%d is too elongated to resize", w, h);
            nw = sw ? bw : (int)l;
            nh = sw ? (int)l : bw;
        } else if (keep_ratio(w, h, bw, bh, 0, &nw, &nh, e)) {
            return -1;
        }
        break;
    default:
        return tl_fail(e, "unknown resize mode %d", pp->resize_mode);
    }
    if (nw <= 0 || nh <= 0) {
        /* a sliver of an image fits a side of less than a pixel: keep one */
        if (pp->resize_mode != TL_RESIZE_PAD)
            return tl_fail(e, "image %dx%d cannot be resized to a shorter side of %d", w, h, R);
        nw = nw < 1 ? 1 : nw;
        nh = nh < 1 ? 1 : nh;
    }
    *rw = nw;
    *rh = nh;
    *left = crop_offset(nw, W);
    *top = crop_offset(nh, H);
    return 0;
}

/* The pixel value of the padding: black, or in PAD mode the mean colour
 * rounded to 8 bits (timm: round(255 * mean)). */
static uint8_t pad_value(const tl_preproc *pp, int c)
{
    if (pp->resize_mode != TL_RESIZE_PAD)
        return 0;
    double v = nearbyint(255.0 * pp->mean[c]);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

typedef struct window {
    int left, top;   /* plan offsets */
    int x0, y0;      /* the part of the input that lies on the resized image */
    int cw, ch;
    int ox, oy;      /* where it lands in the input (padding before it) */
} window;

static int resample(const tl_image *src, const tl_preproc *pp, tl_preproc_ws *use, window *wd, tl_err *e)
{
    int nw, nh;
    if (!src || !src->px || src->w <= 0 || src->h <= 0)
        return tl_fail(e, "preprocessing an empty image");
    if (tl_preproc_plan(pp, src->w, src->h, &nw, &nh, &wd->left, &wd->top, e))
        return -1;
    int W = pp->input_w, H = pp->input_h;
    /* A side shorter than the input is padded; its offset is minus the
     * padding before it, which is 0 when one pixel is missing. */
    wd->x0 = nw < W ? 0 : wd->left;
    wd->y0 = nh < H ? 0 : wd->top;
    wd->cw = nw < W ? nw : W;
    wd->ch = nh < H ? nh : H;
    wd->ox = nw < W ? -wd->left : 0;
    wd->oy = nh < H ? -wd->top : 0;
    return tl_image_resize_window(src, nw, nh, wd->x0, wd->y0, wd->cw, wd->ch, pp->interp, &use->resized, use, e);
}

int tl_preprocess(const tl_image *src, const tl_preproc *pp, float *out, tl_preproc_ws *ws, tl_err *e)
{
    for (int c = 0; c < 3; c++)
        if (!(pp->std[c] != 0.0f))
            return tl_fail(e, "preprocessing std[%d] is zero", c);
    tl_preproc_ws local;
    tl_preproc_ws *use = ws;
    if (!use) {
        memset(&local, 0, sizeof local);
        use = &local;
    }
    window wd;
    int rc = resample(src, pp, use, &wd, e);
    if (rc == 0) {
        /* float32 arithmetic in torchvision's order: p/255, - mean, / std */
        float lut[3][256];
        for (int c = 0; c < 3; c++)
            for (int v = 0; v < 256; v++)
                lut[c][v] = ((float)v / 255.0f - pp->mean[c]) / pp->std[c];
        int W = pp->input_w, H = pp->input_h;
        size_t plane = (size_t)W * H;
        for (int c = 0; c < 3; c++) {
            int sc = pp->bgr ? 2 - c : c;
            float *o = out + (size_t)c * plane;
            const float *l = lut[sc];
            if (wd.cw < W || wd.ch < H)
                for (size_t i = 0; i < plane; i++)
                    o[i] = l[pad_value(pp, sc)];
            for (int y = 0; y < wd.ch; y++) {
                const uint8_t *s = use->resized.px + (size_t)y * wd.cw * 3 + sc;
                float *d = o + (size_t)(y + wd.oy) * W + wd.ox;
                for (int x = 0; x < wd.cw; x++)
                    d[x] = l[s[3 * x]];
            }
        }
    }
    if (!ws)
        tl_preproc_ws_free(&local);
    return rc;
}

/* The resampled window as RGB bytes of the input_w x input_h image at out,
 * the rest (when the window is smaller: pad mode) the padding colour. */
static void place_window(const tl_preproc *pp, const window *wd, const tl_image *resized, uint8_t *out)
{
    int W = pp->input_w, H = pp->input_h;
    if (wd->cw < W || wd->ch < H) {
        uint8_t fill[3] = {pad_value(pp, 0), pad_value(pp, 1), pad_value(pp, 2)};
        for (size_t i = 0; i < (size_t)W * H; i++)
            memcpy(out + 3 * i, fill, 3);
    }
    for (int y = 0; y < wd->ch; y++)
        memcpy(out + ((size_t)(y + wd->oy) * W + wd->ox) * 3, resized->px + (size_t)y * wd->cw * 3,
               (size_t)wd->cw * 3);
}

int tl_preprocess_image(const tl_image *src, const tl_preproc *pp, tl_image *dst, tl_preproc_ws *ws, tl_err *e)
{
    if (dst == src)
        return tl_fail(e, "preprocessing output must not be its input");
    tl_preproc_ws local;
    tl_preproc_ws *use = ws;
    if (!use) {
        memset(&local, 0, sizeof local);
        use = &local;
    }
    window wd;
    int rc = resample(src, pp, use, &wd, e);
    if (rc == 0)
        rc = tl_image_alloc(dst, pp->input_w, pp->input_h, e);
    if (rc == 0)
        place_window(pp, &wd, &use->resized, dst->px);
    if (!ws)
        tl_preproc_ws_free(&local);
    return rc;
}

int tl_preprocess_crop(const tl_image *src, const tl_preproc *pp, uint8_t *out, tl_preproc_ws *ws, tl_err *e)
{
    tl_preproc_ws local;
    tl_preproc_ws *use = ws;
    if (!use) {
        memset(&local, 0, sizeof local);
        use = &local;
    }
    window wd;
    int rc = resample(src, pp, use, &wd, e);
    if (rc == 0)
        place_window(pp, &wd, &use->resized, out);
    if (!ws)
        tl_preproc_ws_free(&local);
    return rc;
}
