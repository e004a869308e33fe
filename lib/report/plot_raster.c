/* The rasteriser: draws a display list into an RGB image.
 *
 * Strokes are anti-aliased by distance to each segment (a pixel's cover is
 * 1 within half the width of the line and falls off over one pixel), so a
 * 1 px line on a half-pixel coordinate stays one crisp pixel wide. A path's
 * cover goes into one scratch plane first (maximum over its segments) and
 * is blended once, so joints and overlapping dashes do not darken. Filled
 * rectangles use exact area cover; text uses the bitmap font at an integer
 * scale, unblended, for sharp glyphs. */
#include "plot_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct rast {
    tl_image *img;
    uint8_t *cov;                 /* w*h, zero outside the dirty box */
    int w, h;
    int cx0, cy0, cx1, cy1;       /* current clip, in pixels, half-open */
    int bx0, by0, bx1, by1;       /* dirty box of cov */
} rast;

static inline void blend(rast *r, int x, int y, uint32_t c, float a)
{
    uint8_t *p = r->img->px + ((size_t)y * (size_t)r->w + (size_t)x) * 3;
    int cr = (int)(c >> 16 & 255), cg = (int)(c >> 8 & 255), cb = (int)(c & 255);
    if (a >= 1) {
        p[0] = (uint8_t)cr;
        p[1] = (uint8_t)cg;
        p[2] = (uint8_t)cb;
        return;
    }
    p[0] = (uint8_t)(p[0] + (cr - p[0]) * a + 0.5f);
    p[1] = (uint8_t)(p[1] + (cg - p[1]) * a + 0.5f);
    p[2] = (uint8_t)(p[2] + (cb - p[2]) * a + 0.5f);
}

static void set_clip(rast *r, const pl_list *l, int clip)
{
    r->cx0 = 0;
    r->cy0 = 0;
    r->cx1 = r->w;
    r->cy1 = r->h;
    if (clip < 0 || clip >= l->nclips)
        return;
    /* A pixel is inside when its centre is. */
    const float *c = l->clips[clip];
    int x0 = (int)ceilf(c[0] - 0.5f), y0 = (int)ceilf(c[1] - 0.5f);
    int x1 = (int)ceilf(c[2] - 0.5f), y1 = (int)ceilf(c[3] - 0.5f);
    r->cx0 = x0 > 0 ? x0 : 0;
    r->cy0 = y0 > 0 ? y0 : 0;
    r->cx1 = x1 < r->w ? x1 : r->w;
    r->cy1 = y1 < r->h ? y1 : r->h;
}

/* Clamps a float box to the clip; 0 when empty. */
static int box(const rast *r, float fx0, float fy0, float fx1, float fy1, int *x0, int *y0, int *x1, int *y1)
{
    if (!(fx0 < fx1 && fy0 < fy1))
        return 0;
    float lo_x = fmaxf(fx0, (float)r->cx0), lo_y = fmaxf(fy0, (float)r->cy0);
    float hi_x = fminf(fx1, (float)r->cx1), hi_y = fminf(fy1, (float)r->cy1);
    if (!(lo_x < hi_x && lo_y < hi_y))
        return 0;
    *x0 = (int)floorf(lo_x);
    *y0 = (int)floorf(lo_y);
    *x1 = (int)ceilf(hi_x);
    *y1 = (int)ceilf(hi_y);
    return *x0 < *x1 && *y0 < *y1;
}

static void stamp_segment(rast *r, float ax, float ay, float bx, float by, float hw)
{
    int x0, y0, x1, y1;
    if (!box(r, fminf(ax, bx) - hw - 1, fminf(ay, by) - hw - 1, fmaxf(ax, bx) + hw + 1,
             fmaxf(ay, by) + hw + 1, &x0, &y0, &x1, &y1))
        return;
    float dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
    for (int y = y0; y < y1; y++) {
        float py = (float)y + 0.5f;
        uint8_t *row = r->cov + (size_t)y * (size_t)r->w;
        for (int x = x0; x < x1; x++) {
            float px = (float)x + 0.5f, t = 0;
            if (len2 > 0) {
                t = ((px - ax) * dx + (py - ay) * dy) / len2;
                t = t < 0 ? 0 : t > 1 ? 1 : t;
            }
            float ex = px - (ax + t * dx), ey = py - (ay + t * dy);
            float c = hw + 0.5f - sqrtf(ex * ex + ey * ey);
            if (c <= 0)
                continue;
            uint8_t v = (uint8_t)(c >= 1 ? 255 : c * 255 + 0.5f);
            if (v > row[x])
                row[x] = v;
        }
    }
    r->bx0 = x0 < r->bx0 ? x0 : r->bx0;
    r->by0 = y0 < r->by0 ? y0 : r->by0;
    r->bx1 = x1 > r->bx1 ? x1 : r->bx1;
    r->by1 = y1 > r->by1 ? y1 : r->by1;
}

static void flush_cover(rast *r, uint32_t colour)
{
    for (int y = r->by0; y < r->by1; y++) {
        uint8_t *row = r->cov + (size_t)y * (size_t)r->w;
        for (int x = r->bx0; x < r->bx1; x++)
            if (row[x]) {
                blend(r, x, y, colour, row[x] / 255.0f);
                row[x] = 0;
            }
    }
    r->bx0 = r->w;
    r->by0 = r->h;
    r->bx1 = 0;
    r->by1 = 0;
}

/* The part [t0, t1] of segment a-b (t in [0, 1]) inside the box grown by
 * pad; 0 when it misses. Keeps far-off points (data outside a fixed axis
 * range) from costing time or float precision. */
static int clip_segment(double ax, double ay, double bx, double by, double x0, double y0, double x1,
                        double y1, double *t0, double *t1)
{
    double p[4] = { -(bx - ax), bx - ax, -(by - ay), by - ay };
    double q[4] = { ax - x0, x1 - ax, ay - y0, y1 - ay };
    *t0 = 0;
    *t1 = 1;
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0) {
            if (q[i] < 0)
                return 0;
            continue;
        }
        double t = q[i] / p[i];
        if (p[i] < 0) {
            if (t > *t1)
                return 0;
            if (t > *t0)
                *t0 = t;
        } else {
            if (t < *t0)
                return 0;
            if (t < *t1)
                *t1 = t;
        }
    }
    return *t0 <= *t1;
}

static void draw_path(rast *r, const pl_list *l, const pl_op *o)
{
    const float *p = l->pts + o->pts;
    float hw = o->stroke.width * 0.5f;
    double on = o->stroke.dash_on, off = o->stroke.dash_off, period = on + off;
    int dashed = on > 0 && off > 0;
    double pad = hw + 2, pos = 0; /* pos: distance along the path, for dashes */
    int nseg = o->closed ? o->npts : o->npts - 1;
    for (int i = 0; i < nseg; i++) {
        int j = (i + 1) % o->npts;
        double ax = p[2 * i], ay = p[2 * i + 1], bx = p[2 * j], by = p[2 * j + 1];
        if (!isfinite(ax) || !isfinite(ay) || !isfinite(bx) || !isfinite(by))
            continue;
        double len = hypot(bx - ax, by - ay), t0, t1;
        double start = pos;
        pos = fmod(pos + len, dashed ? period : 1.0);
        if (!clip_segment(ax, ay, bx, by, -pad, -pad, r->w + pad, r->h + pad, &t0, &t1))
            continue;
        double dx = bx - ax, dy = by - ay;
        if (!dashed) {
            stamp_segment(r, (float)(ax + dx * t0), (float)(ay + dy * t0), (float)(ax + dx * t1),
                          (float)(ay + dy * t1), hw);
            continue;
        }
        /* Walk the visible part dash by dash, starting in phase. */
        double d = t0 * len, end = t1 * len;
        double ph = fmod(start + d, period);
        while (d < end) {
            int drawing = ph < on;
            double step = fmin((drawing ? on : period) - ph, end - d);
            if (step <= 0)
                step = fmin(1e-3, end - d);
            if (drawing && len > 0)
                stamp_segment(r, (float)(ax + dx * d / len), (float)(ay + dy * d / len),
                              (float)(ax + dx * (d + step) / len), (float)(ay + dy * (d + step) / len), hw);
            d += step;
            ph = fmod(ph + step, period);
        }
    }
    flush_cover(r, o->stroke.colour);
}

static float overlap(float a0, float a1, float b0, float b1)
{
    float v = fminf(a1, b1) - fmaxf(a0, b0);
    return v > 0 ? v : 0;
}

static void draw_rect(rast *r, const pl_op *o)
{
    int x0, y0, x1, y1;
    if (!box(r, o->x, o->y, o->x + o->w, o->y + o->h, &x0, &y0, &x1, &y1))
        return;
    for (int y = y0; y < y1; y++) {
        float cy = overlap((float)y, (float)y + 1, o->y, o->y + o->h);
        for (int x = x0; x < x1; x++) {
            float c = cy * overlap((float)x, (float)x + 1, o->x, o->x + o->w);
            if (c > 0)
                blend(r, x, y, o->colour, c * o->opacity);
        }
    }
}

static void draw_circle(rast *r, const pl_op *o)
{
    int x0, y0, x1, y1;
    float rad = o->w;
    if (!box(r, o->x - rad - 1, o->y - rad - 1, o->x + rad + 1, o->y + rad + 1, &x0, &y0, &x1, &y1))
        return;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            float dx = (float)x + 0.5f - o->x, dy = (float)y + 0.5f - o->y;
            float c = rad + 0.5f - sqrtf(dx * dx + dy * dy);
            if (c > 0)
                blend(r, x, y, o->colour, c > 1 ? 1 : c);
        }
}

/* Fills the local (unrotated, baseline-relative) box [lx, lx+bw) x
 * [ly, ly+bh) of a text anchored at (ax, ay). */
static void text_block(rast *r, int ax, int ay, int rotate, int lx, int ly, int bw, int bh, uint32_t c)
{
    int x0, y0, x1, y1;
    if (rotate) { /* -90: local +x goes up the screen, local +y goes right */
        x0 = ax + ly;
        x1 = x0 + bh;
        y1 = ay - lx;
        y0 = y1 - bw;
    } else {
        x0 = ax + lx;
        x1 = x0 + bw;
        y0 = ay + ly;
        y1 = y0 + bh;
    }
    x0 = x0 > r->cx0 ? x0 : r->cx0;
    y0 = y0 > r->cy0 ? y0 : r->cy0;
    x1 = x1 < r->cx1 ? x1 : r->cx1;
    y1 = y1 < r->cy1 ? y1 : r->cy1;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            blend(r, x, y, c, 1);
}

static void draw_text(rast *r, const pl_list *l, const pl_op *o)
{
    const char *s = l->chars + o->text;
    int scale = pl_font_scale(o->size);
    int width = (int)pl_text_width_raster(s, o->size, o->bold);
    int ax = (int)floorf(o->x + 0.5f), ay = (int)floorf(o->y + 0.5f);
    int pen = o->anchor == PL_MIDDLE ? -width / 2 : o->anchor == PL_END ? -width : 0;
    int extra = o->bold ? 1 : 0;
    while (*s) {
        unsigned c = pl_utf8_next(&s);
        int left, adv;
        pl_glyph_metrics(c, &left, &adv);
        for (int row = 0; row < PL_GLYPH_H; row++)
            for (int col = left; col < PL_GLYPH_W; col++)
                if (pl_glyph_bit(c, row, col))
                    text_block(r, ax, ay, o->rotate != 0, pen + (col - left) * scale,
                               (row - PL_GLYPH_BASE) * scale, scale + extra, scale, o->colour);
        pen += adv * scale;
    }
}

int pl_rasterise(const pl_list *l, tl_image *img, tl_err *e)
{
    if (tl_image_alloc(img, l->w, l->h, e) < 0)
        return -1;
    memset(img->px, 255, (size_t)l->w * (size_t)l->h * 3);
    rast r = { .img = img, .w = l->w, .h = l->h };
    r.cov = calloc((size_t)l->w * (size_t)l->h, 1);
    if (!r.cov)
        return tl_fail(e, "out of memory for a %d x %d plot", l->w, l->h);
    r.bx0 = r.w;
    r.by0 = r.h;
    for (int i = 0; i < l->nops; i++) {
        const pl_op *o = &l->ops[i];
        set_clip(&r, l, o->clip);
        switch (o->kind) {
        case PL_PATH: draw_path(&r, l, o); break;
        case PL_RECT: draw_rect(&r, o); break;
        case PL_CIRCLE: draw_circle(&r, o); break;
        case PL_TEXT: draw_text(&r, l, o); break;
        }
    }
    free(r.cov);
    return 0;
}
