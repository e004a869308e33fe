/* Geometric ops: flips, quarter turns, rotation/translation by inverse
 * mapping with bilinear sampling, random resized crop, resize and centre
 * crop. Pixel centres sit at (x + 0.5, y + 0.5): an output centre is
 * mapped back into the source and 0.5 is subtracted to get the sample
 * position, so a 90-degree turn or a whole-pixel shift reproduces pixels
 * exactly and nothing drifts by half a pixel. Interpolated values are
 * truncated, as PIL's bilinear transform does, so rotations match
 * torchvision's F.rotate on PIL images. */
#include "aug_internal.h"

#include <math.h>
#include <string.h>

long tl__aug_round_even(double x) { return lrint(x); /* default mode: half to even */ }

int tl__aug_copy(const tl_image *src, tl_image *dst, tl_err *e)
{
    if (tl_image_alloc(dst, src->w, src->h, e))
        return -1;
    memcpy(dst->px, src->px, (size_t)src->w * src->h * 3);
    return 0;
}

void tl_aug_hflip(tl_image *img)
{
    for (int y = 0; y < img->h; y++) {
        uint8_t *row = img->px + (size_t)y * img->w * 3;
        for (int a = 0, b = img->w - 1; a < b; a++, b--)
            for (int c = 0; c < 3; c++) {
                uint8_t t = row[3 * a + c];
                row[3 * a + c] = row[3 * b + c];
                row[3 * b + c] = t;
            }
    }
}

void tl_aug_vflip(tl_image *img)
{
    size_t stride = (size_t)img->w * 3;
    for (int a = 0, b = img->h - 1; a < b; a++, b--) {
        uint8_t *ra = img->px + a * stride, *rb = img->px + b * stride;
        for (size_t i = 0; i < stride; i++) {
            uint8_t t = ra[i];
            ra[i] = rb[i];
            rb[i] = t;
        }
    }
}

int tl_aug_rot90(const tl_image *src, int k, tl_image *dst, tl_err *e)
{
    k = ((k % 4) + 4) % 4;
    int W = src->w, H = src->h;
    int ow = k % 2 ? H : W, oh = k % 2 ? W : H;
    if (tl_image_alloc(dst, ow, oh, e))
        return -1;
    for (int y = 0; y < oh; y++) {
        uint8_t *o = dst->px + (size_t)y * ow * 3;
        for (int x = 0; x < ow; x++) {
            int sx, sy;
            switch (k) {
            case 0: sx = x; sy = y; break;
            case 1: sx = W - 1 - y; sy = x; break;
            case 2: sx = W - 1 - x; sy = H - 1 - y; break;
            default: sx = y; sy = H - 1 - x; break;
            }
            const uint8_t *s = src->px + ((size_t)sy * W + sx) * 3;
            o[3 * x] = s[0];
            o[3 * x + 1] = s[1];
            o[3 * x + 2] = s[2];
        }
    }
    return 0;
}

/* Source index for a tap at i in [0, n) under the fill mode; -1 = fill. */
static int map_index(long i, int n, int fill)
{
    if (i >= 0 && i < n)
        return (int)i;
    if (fill == TL_AUG_FILL_CONSTANT)
        return -1;
    if (fill == TL_AUG_FILL_EDGE || n == 1)
        return i < 0 ? 0 : n - 1;
    /* reflect about the edge pixels' centres (numpy 'reflect'): period 2(n-1) */
    long m = 2L * (n - 1);
    if (i < 0)
        i = -i;
    i %= m;
    return (int)(i >= n ? m - i : i);
}

/* A shift by whole pixels needs no interpolation: copy rows. */
static void shift_whole(const tl_image *src, int dx, int dy, int fill, uint8_t fv, tl_image *dst)
{
    int W = src->w, H = src->h;
    size_t stride = (size_t)W * 3;
    for (int y = 0; y < H; y++) {
        uint8_t *o = dst->px + (size_t)y * stride;
        int sy = map_index((long)y - dy, H, fill);
        if (sy < 0) {
            memset(o, fv, stride);
            continue;
        }
        const uint8_t *row = src->px + (size_t)sy * stride;
        for (int x = 0; x < W; x++) {
            int sx = map_index((long)x - dx, W, fill);
            if (sx < 0)
                o[3 * x] = o[3 * x + 1] = o[3 * x + 2] = fv;
            else
                memcpy(o + 3 * x, row + 3 * sx, 3);
        }
    }
}

int tl_aug_warp(const tl_image *src, double deg, double tx, double ty, int fill, int value,
                tl_image *dst, tl_err *e)
{
    int W = src->w, H = src->h;
    if (dst == src)
        return tl_fail(e, "warp output must not be its input");
    if (tl_image_alloc(dst, W, H, e))
        return -1;
    uint8_t fv = (uint8_t)(value < 0 ? 0 : value > 255 ? 255 : value);
    if (deg == 0 && tx == floor(tx) && ty == floor(ty) && fabs(tx) < 1e9 && fabs(ty) < 1e9) {
        shift_whole(src, (int)tx, (int)ty, fill, fv, dst);
        return 0;
    }
    /* Exact sines at multiples of 90 degrees, so quarter turns are exact. */
    double q = deg / 90.0, cs, sn;
    if (q == floor(q)) {
        int k = (int)(((long)q % 4 + 4) % 4);
        cs = (double[]){ 1, 0, -1, 0 }[k];
        sn = (double[]){ 0, 1, 0, -1 }[k];
    } else {
        cs = cos(deg * M_PI / 180.0);
        sn = sin(deg * M_PI / 180.0);
    }
    double cx = W * 0.5, cy = H * 0.5;
    size_t stride = (size_t)W * 3;
    for (int y = 0; y < H; y++) {
        uint8_t *o = dst->px + (size_t)y * stride;
        double oy = y + 0.5 - cy - ty;
        /* inverse of a counter-clockwise turn (y points down), at x = 0;
         * each step in x adds (cs, sn) */
        double ox0 = 0.5 - cx - tx;
        double bx = -oy * sn + cx - 0.5, by = oy * cs + cy - 0.5;
        for (int x = 0; x < W; x++) {
            double ox = ox0 + x;
            double sx = ox * cs + bx, sy = ox * sn + by;
            long x0 = (long)sx, y0 = (long)sy;
            x0 -= sx < x0;
            y0 -= sy < y0;
            double fx = sx - x0, fy = sy - y0;
            if (x0 >= 0 && y0 >= 0 && x0 + 1 < W && y0 + 1 < H) {
                const uint8_t *p = src->px + (size_t)y0 * stride + (size_t)x0 * 3;
                for (int c = 0; c < 3; c++) {
                    double top = p[c] + (p[c + 3] - p[c]) * fx;
                    double bot = p[c + stride] + (p[c + stride + 3] - p[c + stride]) * fx;
                    o[3 * x + c] = (uint8_t)(top + (bot - top) * fy);
                }
                continue;
            }
            if (sx < -2.0 * W - 2 || sx > 3.0 * W + 2 || sy < -2.0 * H - 2 || sy > 3.0 * H + 2) {
                x0 = sx < 0 ? -2L * W - 2 : 3L * W + 2; /* far outside: any far index maps the same way */
                y0 = sy < 0 ? -2L * H - 2 : 3L * H + 2;
            }
            int xs[2] = { map_index(x0, W, fill), map_index(x0 + 1, W, fill) };
            int ys[2] = { map_index(y0, H, fill), map_index(y0 + 1, H, fill) };
            for (int c = 0; c < 3; c++) {
                double t[2][2];
                for (int j = 0; j < 2; j++)
                    for (int i = 0; i < 2; i++)
                        t[j][i] = xs[i] < 0 || ys[j] < 0 ? fv
                                  : src->px[(size_t)ys[j] * stride + (size_t)xs[i] * 3 + c];
                double top = t[0][0] + (t[0][1] - t[0][0]) * fx;
                double bot = t[1][0] + (t[1][1] - t[1][0]) * fx;
                o[3 * x + c] = (uint8_t)(top + (bot - top) * fy);
            }
        }
    }
    return 0;
}

/* Copies the window (zeros outside the source) into dst. */
static int crop_into(const tl_image *src, int x, int y, int w, int h, tl_image *dst, tl_err *e)
{
    if (tl_image_alloc(dst, w, h, e))
        return -1;
    for (int r = 0; r < h; r++) {
        uint8_t *o = dst->px + (size_t)r * w * 3;
        int sy = y + r;
        if (sy < 0 || sy >= src->h) {
            memset(o, 0, (size_t)w * 3);
            continue;
        }
        int a = x < 0 ? -x : 0, b = x + w > src->w ? src->w - x : w;
        if (b < a)
            b = a;
        memset(o, 0, (size_t)a * 3);
        if (b > a)
            memcpy(o + (size_t)a * 3, src->px + ((size_t)sy * src->w + x + a) * 3, (size_t)(b - a) * 3);
        memset(o + (size_t)b * 3, 0, (size_t)(w - b) * 3);
    }
    return 0;
}

int tl_aug_resized_crop(const tl_image *src, int x, int y, int w, int h, int ow, int oh,
                        tl_image *dst, tl_aug_ws *ws, tl_err *e)
{
    if (w <= 0 || h <= 0 || ow <= 0 || oh <= 0)
        return tl_fail(e, "empty crop");
    if (crop_into(src, x, y, w, h, &ws->c, e))
        return -1;
    if (w == ow && h == oh)
        return tl__aug_copy(&ws->c, dst, e);
    return tl_image_resize(&ws->c, ow, oh, TL_INTERP_BILINEAR, dst, &ws->pp, e);
}

/* torchvision's RandomResizedCrop.get_params, draw for draw. */
int tl__aug_rrc(const aug_op *op, tl_rng *r, const tl_image *src, tl_image *dst, tl_aug_ws *ws,
                tl_err *e)
{
    int W = src->w, H = src->h;
    double area = (double)W * H;
    double lr0 = log(op->ratio.lo), lr1 = log(op->ratio.hi);
    int cw = 0, ch = 0, cx = 0, cy = 0, found = 0;
    for (int t = 0; t < 10 && !found; t++) {
        double target = area * (op->scale.lo + (op->scale.hi - op->scale.lo) * tl_rng_uniform(r));
        double aspect = exp(lr0 + (lr1 - lr0) * tl_rng_uniform(r));
        int w = (int)tl__aug_round_even(sqrt(target * aspect));
        int h = (int)tl__aug_round_even(sqrt(target / aspect));
        if (w > 0 && w <= W && h > 0 && h <= H) {
            cy = (int)tl_rng_below(r, (uint64_t)(H - h + 1));
            cx = (int)tl_rng_below(r, (uint64_t)(W - w + 1));
            cw = w;
            ch = h;
            found = 1;
        }
    }
    if (!found) { /* centre crop at the nearest allowed ratio */
        double in_ratio = (double)W / H;
        if (in_ratio < op->ratio.lo) {
            cw = W;
            ch = (int)tl__aug_round_even(cw / op->ratio.lo);
        } else if (in_ratio > op->ratio.hi) {
            ch = H;
            cw = (int)tl__aug_round_even(ch * op->ratio.hi);
        } else {
            cw = W;
            ch = H;
        }
        if (cw < 1) cw = 1;
        if (ch < 1) ch = 1;
        cy = (H - ch) / 2;
        cx = (W - cw) / 2;
    }
    int ow = op->size ? op->size : W, oh = op->size ? op->size_h : H;
    return tl_aug_resized_crop(src, cx, cy, cw, ch, ow, oh, dst, ws, e);
}

/* torchvision Resize(int): the shorter side becomes s, the longer
 * int(s * long / short). */
static void short_side_dims(int w, int h, int s, int *nw, int *nh)
{
    if (w <= h) {
        *nw = s;
        *nh = (int)((double)s * h / w);
    } else {
        *nh = s;
        *nw = (int)((double)s * w / h);
    }
    if (*nw < 1) *nw = 1;
    if (*nh < 1) *nh = 1;
}

int tl__aug_resize_short(const tl_image *src, int s, tl_image *dst, tl_aug_ws *ws, tl_err *e)
{
    int nw, nh;
    short_side_dims(src->w, src->h, s, &nw, &nh);
    if (nw == src->w && nh == src->h)
        return tl__aug_copy(src, dst, e);
    return tl_image_resize(src, nw, nh, TL_INTERP_BILINEAR, dst, &ws->pp, e);
}

int tl__aug_center_crop(const tl_image *src, int w, int h, tl_image *dst, tl_err *e)
{
    /* torchvision pads a side that is too short (left/top gets the floor) */
    int x = src->w < w ? -((w - src->w) / 2) : (int)tl__aug_round_even((src->w - w) / 2.0);
    int y = src->h < h ? -((h - src->h) / 2) : (int)tl__aug_round_even((src->h - h) / 2.0);
    return crop_into(src, x, y, w, h, dst, e);
}
