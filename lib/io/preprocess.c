/* The torchvision evaluation pipeline on one decoded image:
 * Resize(resize_size) (shorter side; longer = int(size*long/short)),
 * CenterCrop(input_size), ToTensor, Normalize(mean, std), optional BGR.
 * Only the crop window is resampled (same pixels as resizing everything
 * and cropping, since each output pixel has its own taps). */
#include "image_internal.h"

#include <string.h>

void tl_preproc_default(tl_preproc *p)
{
    memset(p, 0, sizeof *p);
    p->input_size = 224;
    p->resize_size = 256;
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

/* Where the centre crop of the resized image lies: the part of the crop on
 * the resized image (cw x ch, computed into ws->resized) and its offset
 * (ox, oy) inside the S x S crop (non-zero when the crop is larger). */
typedef struct {
    int cw, ch, ox, oy;
} crop_geom;

static int resize_crop(const tl_image *src, const tl_preproc *pp, tl_preproc_ws *ws, crop_geom *g, tl_err *e)
{
    int S = pp->input_size, R = pp->resize_size;
    if (S <= 0 || R <= 0 || S > 16384 || R > 16384)
        return tl_fail(e, "invalid preprocessing sizes (input %d, resize %d)", S, R);
    if (!src || !src->px || src->w <= 0 || src->h <= 0)
        return tl_fail(e, "preprocessing an empty image");
    int nw, nh;
    if (R == S) {
        nw = nh = S;
    } else {
        /* Python's int(size * long / short): a correctly rounded double
         * quotient, truncated (integer division could differ by one) */
        int sw = src->w <= src->h;
        int lo = sw ? src->h : src->w, sh = sw ? src->w : src->h;
        double l = (double)R * lo / sh;
        if (l > (double)(1 << 24))
            return tl_fail(e, "image %dx%d is too elongated to resize", src->w, src->h);
        nw = sw ? R : (int)l;
        nh = sw ? (int)l : R;
    }
    if (nw <= 0 || nh <= 0)
        return tl_fail(e, "image %dx%d cannot be resized to a shorter side of %d", src->w, src->h, R);
    int left = crop_offset(nw, S), top = crop_offset(nh, S);
    int x0 = left < 0 ? 0 : left, y0 = top < 0 ? 0 : top;
    g->cw = left < 0 ? nw : S;
    g->ch = top < 0 ? nh : S;
    g->ox = left < 0 ? -left : 0;
    g->oy = top < 0 ? -top : 0;
    return tl_image_resize_window(src, nw, nh, x0, y0, g->cw, g->ch, pp->interp, &ws->resized, ws, e);
}

int tl_preprocess(const tl_image *src, const tl_preproc *pp, float *out, tl_preproc_ws *ws,
                  tl_err *e)
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
    crop_geom g;
    int rc = resize_crop(src, pp, use, &g, e);
    if (rc == 0) {
        int S = pp->input_size;
        /* float32 arithmetic in torchvision's order: p/255, - mean, / std */
        float lut[3][256];
        for (int c = 0; c < 3; c++)
            for (int v = 0; v < 256; v++)
                lut[c][v] = ((float)v / 255.0f - pp->mean[c]) / pp->std[c];
        size_t plane = (size_t)S * S;
        for (int c = 0; c < 3; c++) {
            int sc = pp->bgr ? 2 - c : c;
            float *o = out + (size_t)c * plane;
            const float *l = lut[sc];
            if (g.ox || g.oy)
                for (size_t i = 0; i < plane; i++)
                    o[i] = l[0];
            for (int y = 0; y < g.ch; y++) {
                const uint8_t *s = use->resized.px + (size_t)y * g.cw * 3 + sc;
                float *d = o + (size_t)(y + g.oy) * S + g.ox;
                for (int x = 0; x < g.cw; x++)
                    d[x] = l[s[3 * x]];
            }
        }
    }
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
    crop_geom g;
    int rc = resize_crop(src, pp, use, &g, e);
    if (rc == 0) {
        int S = pp->input_size;
        if (g.ox || g.oy)
            memset(out, 0, (size_t)S * S * 3);
        for (int y = 0; y < g.ch; y++)
            memcpy(out + ((size_t)(y + g.oy) * S + g.ox) * 3, use->resized.px + (size_t)y * g.cw * 3,
                   (size_t)g.cw * 3);
    }
    if (!ws)
        tl_preproc_ws_free(&local);
    return rc;
}
