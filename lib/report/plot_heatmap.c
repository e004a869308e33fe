/* Confusion-matrix heat maps: square cells shaded by the row-normalised
 * fraction (the recall of the true class) on a light-to-dark blue scale,
 * the count (and the percentage when the cell is big enough) written in
 * black or white by the cell's darkness, class names on both axes
 * (shortened, rotated or thinned when crowded), and a colour bar. */
#include "plot_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ColorBrewer's sequential "Blues", light to dark. */
static const uint32_t blues[] = { 0xf7fbff, 0xdeebf7, 0xc6dbef, 0x9ecae1, 0x6baed6,
                                  0x4292c6, 0x2171b5, 0x08519c, 0x08306b };

static uint32_t shade(double f)
{
    if (!(f > 0))
        f = 0;
    if (f > 1)
        f = 1;
    double pos = f * 8;
    int i = (int)pos;
    if (i >= 8)
        return blues[8];
    double t = pos - i;
    uint32_t a = blues[i], b = blues[i + 1], c = 0;
    for (int sh = 0; sh <= 16; sh += 8) {
        double va = (a >> sh) & 255, vb = (b >> sh) & 255;
        c |= (uint32_t)(va + (vb - va) * t + 0.5) << sh;
    }
    return c;
}

static uint32_t ink_on(uint32_t bg)
{
    double lum = 0.299 * (bg >> 16 & 255) + 0.587 * (bg >> 8 & 255) + 0.114 * (bg & 255);
    return lum < 140 ? 0xffffff : PL_INK;
}

static const char *name_of(const pl_heatmap *p, int i, char *buf, size_t cap)
{
    if (p->names && p->names[i] && p->names[i][0])
        return p->names[i];
    snprintf(buf, cap, "%d", i);
    return buf;
}

void pl_draw_heatmap(pl_list *l, pl_rectf r, const pl_heatmap *p)
{
    pl_style st;
    pl_style_for(&st, r.x1 - r.x0, r.y1 - r.y0);
    pl_rectf in = { r.x0 + st.pad, r.y0 + st.pad, r.x1 - st.pad, r.y1 - st.pad };
    in.y0 += pl_draw_title(l, &st, in, p->title);
    int k = p->k;
    float fs = st.tick, u = st.u;
    char nb[32], sb[256];

    float widest = 0;
    for (int i = 0; i < k; i++)
        widest = fmaxf(widest, pl_text_width(name_of(p, i, nb, sizeof nb), fs, 0));
    float in_w = in.x1 - in.x0, in_h = in.y1 - in.y0;
    float row_w = fminf(widest, 0.28f * in_w);
    float left = st.label * 1.5f + row_w + 5 * u;
    float bar_w = 10 * u, cbar = 12 * u + bar_w + 4 * u + pl_text_width("100%", fs, 0);
    float aw = in_w - left - cbar;
    float xtitle = st.label * 1.6f;

    /* Column labels: horizontal when they fit their cells, else rotated. */
    float hb = 4 * u + fs * 1.1f;
    float cell = fminf(aw, in_h - hb - xtitle) / k;
    int rotated = widest > cell - 2 * u;
    float col_h = hb;
    if (rotated) {
        col_h = 4 * u + fminf(widest, 0.25f * in_h) + 2 * u;
        cell = fminf(aw, in_h - col_h - xtitle) / k;
    }
    if (!(cell > 0))
        cell = 0.5f;
    float side = cell * k;
    float mx0 = floorf(in.x0 + left + fmaxf(0, (aw - side) * 0.5f)), my0 = floorf(in.y0);
    float mx1 = mx0 + side, my1 = my0 + side;

    /* Every cell: one background at fraction 0, then the non-zero ones. */
    pl_rect(l, mx0, my0, side, side, shade(0), 1);
    int text = cell >= fs * 1.5f;
    int two_lines = cell >= fs * 3.4f;
    for (int t = 0; t < k; t++) {
        int64_t sum = 0;
        for (int q = 0; q < k; q++)
            sum += p->counts[(size_t)t * k + q];
        float y0 = roundf(my0 + t * cell), y1 = roundf(my0 + (t + 1) * cell);
        for (int q = 0; q < k; q++) {
            int64_t c = p->counts[(size_t)t * k + q];
            double f = sum > 0 ? (double)c / (double)sum : 0;
            float x0 = roundf(mx0 + q * cell), x1 = roundf(mx0 + (q + 1) * cell);
            uint32_t bg = shade(f);
            if (c > 0)
                pl_rect(l, x0, y0, x1 - x0, y1 - y0, bg, 1);
            if (!text)
                continue;
            char cnt[32], pct[16];
            snprintf(cnt, sizeof cnt, "%lld", (long long)c);
            if (pl_text_width(cnt, fs, 0) > cell - 3 * u)
                continue;
            float cx = 0.5f * (x0 + x1), cy = 0.5f * (y0 + y1);
            uint32_t ink = ink_on(bg);
            if (c == 0) { /* a quiet zero keeps the eye on the errors */
                pl_text(l, cx, cy + 0.35f * fs, cnt, fs, PL_MIDDLE, 0, 0, 0xaaaaaa);
            } else if (two_lines) {
                if (f > 0 && f < 0.005)
                    snprintf(pct, sizeof pct, "<1%%");
                else
                    snprintf(pct, sizeof pct, "%.0f%%", 100 * f);
                pl_text(l, cx, cy - 0.15f * fs, cnt, fs, PL_MIDDLE, 0, 1, ink);
                if (pl_text_width(pct, fs, 0) <= cell - 3 * u)
                    pl_text(l, cx, cy + 1.05f * fs, pct, fs, PL_MIDDLE, 0, 0, ink);
            } else {
                pl_text(l, cx, cy + 0.35f * fs, cnt, fs, PL_MIDDLE, 0, 0, ink);
            }
        }
    }
    if (cell >= 6) {
        pl_stroke w = { 0xffffff, 1, 0, 0 };
        for (int i = 1; i < k; i++) {
            float v = roundf(mx0 + i * cell);
            pl_line(l, v, my0, v, my1, w);
            v = roundf(my0 + i * cell);
            pl_line(l, mx0, v, mx1, v, w);
        }
    }
    pl_rect_outline(l, mx0 - 0.5f, my0 - 0.5f, side + 1, side + 1, (pl_stroke){ 0xb0b0b0, 1, 0, 0 });

    /* Labels, thinned to every m-th class when the cells are too small. */
    int mrow = cell >= fs * 1.2f ? 1 : (int)ceilf(fs * 1.2f / cell);
    for (int t = 0; t < k; t += mrow) {
        pl_shorten(name_of(p, t, nb, sizeof nb), fs, row_w, sb, sizeof sb);
        pl_text(l, mx0 - 5 * u, my0 + (t + 0.5f) * cell + 0.35f * fs, sb, fs, PL_END, 0, 0, PL_INK);
    }
    if (rotated) {
        for (int q = 0; q < k; q += mrow) {
            pl_shorten(name_of(p, q, nb, sizeof nb), fs, col_h - 6 * u, sb, sizeof sb);
            pl_text(l, mx0 + (q + 0.5f) * cell + 0.35f * fs, my1 + 4 * u, sb, fs, PL_END, -90, 0, PL_INK);
        }
    } else {
        for (int q = 0; q < k; q++) {
            pl_shorten(name_of(p, q, nb, sizeof nb), fs, cell - 2 * u, sb, sizeof sb);
            pl_text(l, mx0 + (q + 0.5f) * cell, my1 + 4 * u + 0.75f * fs, sb, fs, PL_MIDDLE, 0, 0, PL_INK);
        }
    }
    pl_text(l, 0.5f * (mx0 + mx1), my1 + col_h + st.label * 1.1f, "predicted", st.label, PL_MIDDLE, 0, 0, PL_INK);
    pl_text(l, mx0 - row_w - 5 * u - 0.5f * st.label, 0.5f * (my0 + my1), "true", st.label, PL_MIDDLE, -90, 0,
            PL_INK);

    /* Colour bar: fraction of the true class's samples. */
    float bx = floorf(mx1 + 12 * u), nstrip = 64;
    for (int i = 0; i < (int)nstrip; i++) {
        float y0 = my0 + side * (1 - (i + 1) / nstrip), y1 = my0 + side * (1 - i / nstrip);
        pl_rect(l, bx, y0, bar_w, y1 - y0 + 0.5f, shade((i + 0.5) / nstrip), 1);
    }
    pl_rect_outline(l, bx - 0.5f, my0 - 0.5f, bar_w + 1, side + 1, (pl_stroke){ 0xb0b0b0, 1, 0, 0 });
    static const char *const marks[] = { "0%", "50%", "100%" };
    for (int i = 0; i < 3; i++) {
        float y = floorf(my1 - side * i * 0.5f) + 0.5f;
        pl_line(l, bx + bar_w, y, bx + bar_w + 3 * u, y, (pl_stroke){ PL_AXIS, 1, 0, 0 });
        pl_text(l, bx + bar_w + 5 * u, y + 0.35f * fs, marks[i], fs, PL_START, 0, 0, PL_INK);
    }
}
