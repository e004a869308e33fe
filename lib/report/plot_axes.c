/* Axes: nice tick values, their labels, and drawing a plot area's grid,
 * axis lines and tick labels. Also the type sizes and palette every panel
 * shares. */
#include "plot_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Okabe & Ito's colour-blind-safe set, reordered so the first colours are
 * the most distinct on white (yellow, weak on white, comes last). */
const uint32_t pl_palette[] = { 0x0072b2, 0xd55e00, 0x009e73, 0xe69f00,
                                0xcc79a7, 0x56b4e9, 0x000000, 0xf0e442 };
const int pl_palette_n = (int)(sizeof pl_palette / sizeof pl_palette[0]);

void pl_style_for(pl_style *st, float panel_w, float panel_h)
{
    /* Bitmap glyphs scale by whole steps: 1x up to mid-sized panels, 2x
     * for large ones. */
    float m = panel_w < panel_h ? panel_w : panel_h;
    float u = m >= 700 ? 2.0f : 1.0f;
    st->u = u;
    st->tick = 10 * u;
    st->label = 11 * u;
    st->title = 12 * u;
    st->pad = 8 * u;
    st->tick_len = 4 * u;
    st->line_w = 1.75f * u;
}

/* Ticks of step s: how many, and the axis range they make. */
static int count_ticks(double lo, double hi, double s, int expand, double *a, double *b)
{
    double k0 = expand ? floor(lo / s + 1e-9) : ceil(lo / s - 1e-9);
    double k1 = expand ? ceil(hi / s - 1e-9) : floor(hi / s + 1e-9);
    *a = k0 * s;
    *b = k1 * s;
    double n = k1 - k0 + 1;
    return n > 1000 ? 1000 : n < 0 ? 0 : (int)n;
}

void pl_ticks_make(double lo, double hi, int expand, pl_ticks *t)
{
    memset(t, 0, sizeof *t);
    if (!isfinite(lo) && !isfinite(hi)) {
        lo = 0;
        hi = 1;
    } else if (!isfinite(lo)) {
        lo = hi;
    } else if (!isfinite(hi)) {
        hi = lo;
    }
    if (lo > hi) {
        double s = lo;
        lo = hi;
        hi = s;
    }
    if (!isfinite(hi - lo) || fabs(lo) > 1e300 || fabs(hi) > 1e300) {
        lo = 0;
        hi = 1;
    }
    /* A single value (or a span lost in rounding) gets room around it. */
    if (hi - lo <= 1e-12 * fmax(fabs(lo), fabs(hi)) || hi == lo) {
        double c = 0.5 * (lo + hi), d = c == 0 ? 1 : fabs(c) * 0.1;
        if (c == 0) {
            lo = 0;
            hi = 1;
        } else {
            lo = c - d;
            hi = c + d;
        }
    }
    double span = hi - lo;
    double base = pow(10, floor(log10(span / 5)));
    static const double mult[] = { 1, 2, 5 };
    double best_score = INFINITY, best_step = span;
    for (int e = -1; e <= 1; e++)
        for (int m = 0; m < 3; m++) {
            double s = mult[m] * base * pow(10, e), a, b;
            int n = count_ticks(lo, hi, s, expand, &a, &b);
            if (n < 2)
                continue;
            /* Close to 5 or 6 ticks, within 4..8, with little wasted range.
             * A fixed range cannot always have 4..8 (e.g. [520, 686]
             * gets 3 or 9): then more ticks beat fewer. */
            double score = fabs(n - 5.5) + (n < 4 ? 10 + 2 * (4 - n) : n > 8 ? 10 : 0) + 2 * ((b - a) - span) / span;
            if (score < best_score) {
                best_score = score;
                best_step = s;
            }
        }
    double a, b;
    int n = count_ticks(lo, hi, best_step, expand, &a, &b);
    if (n > PL_MAX_TICKS)
        n = PL_MAX_TICKS;
    t->step = best_step;
    t->lo = expand ? a : lo;
    t->hi = expand ? b : hi;
    double k0 = round(a / best_step);
    for (int i = 0; i < n; i++) {
        double v = (k0 + i) * best_step;
        t->v[i] = fabs(v) < best_step * 1e-9 ? 0 : v;
    }
    t->n = n;
    double d = -floor(log10(best_step) + 1e-9);
    t->decimals = d < 0 ? 0 : d > 12 ? 12 : (int)d;
    double big = fmax(fabs(t->lo), fabs(t->hi));
    t->exponent = big >= 1e6 || (big < 1e-3 && big > 0);
}

static void strip_minus_zero(char *buf)
{
    /* "-0", "-0.00" -> "0", "0.00" */
    if (buf[0] != '-')
        return;
    for (const char *p = buf + 1; *p; p++)
        if (*p != '0' && *p != '.')
            return;
    memmove(buf, buf + 1, strlen(buf));
}

void pl_tick_label(const pl_ticks *t, double v, char *buf, size_t cap)
{
    if (!isfinite(v)) {
        snprintf(buf, cap, "n/a");
        return;
    }
    if (fabs(v) < t->step * 1e-6)
        v = 0;
    if (t->exponent && v != 0) {
        /* As many mantissa digits as the step needs. */
        double big = fmax(fabs(t->lo), fabs(t->hi));
        int d = (int)(floor(log10(big)) - floor(log10(t->step) + 1e-9));
        d = d < 0 ? 0 : d > 10 ? 10 : d;
        snprintf(buf, cap, "%.*e", d, v);
        return;
    }
    snprintf(buf, cap, "%.*f", t->decimals, v);
    strip_minus_zero(buf);
}

void pl_value_label(double v, char *buf, size_t cap)
{
    if (!isfinite(v)) {
        snprintf(buf, cap, "n/a");
        return;
    }
    double a = fabs(v);
    if (a >= 1e6 || (a < 1e-3 && a > 0)) {
        snprintf(buf, cap, "%.2e", v);
        return;
    }
    int d = a == 0 ? 0 : 2 - (int)floor(log10(a));
    d = d < 0 ? 0 : d > 4 ? 4 : d;
    snprintf(buf, cap, "%.*f", d, v);
    strip_minus_zero(buf);
}

float pl_ticks_label_width(const pl_ticks *t, float size)
{
    float w = 0;
    if (!t)
        return 0;
    for (int i = 0; i < t->n; i++) {
        char b[64];
        pl_tick_label(t, t->v[i], b, sizeof b);
        float x = pl_text_width(b, size, 0);
        w = x > w ? x : w;
    }
    return w;
}

float pl_draw_title(pl_list *l, const pl_style *st, pl_rectf r, const char *title)
{
    if (!title || !*title)
        return 0;
    char b[256];
    pl_shorten(title, st->title, r.x1 - r.x0, b, sizeof b);
    pl_text(l, 0.5f * (r.x0 + r.x1), r.y0 + st->title * 0.9f, b, st->title, PL_MIDDLE, 0, 1, PL_INK);
    return st->title * 1.6f;
}

/* Rounds to the centre of a pixel, where a 1 px line is crisp. */
static float crisp(float v)
{
    return floorf(v) + 0.5f;
}

void pl_draw_axes(pl_list *l, const pl_style *st, pl_rectf a, const pl_ticks *xt, const pl_ticks *yt, int flags)
{
    int grid = flags & PL_AX_GRID;
    pl_stroke g = { PL_GRID, 1, 0, 0 }, ax = { PL_AXIS, 1, 0, 0 };
    char b[64];
    float tl = st->tick_len;
    /* Labels that would touch the previous one are left out (tiny panels). */
    float last = INFINITY;
    if (yt)
        for (int i = 0; i < yt->n; i++) {
            float y = crisp(pl_map(yt->v[i], yt->lo, yt->hi, a.y1, a.y0));
            if (grid)
                pl_line(l, a.x0, y, a.x1, y, g);
            pl_line(l, a.x0 - tl, y, a.x0, y, ax);
            if (last - y < 1.2f * st->tick)
                continue;
            last = y;
            pl_tick_label(yt, yt->v[i], b, sizeof b);
            pl_text(l, a.x0 - tl - 3 * st->u, y + 0.35f * st->tick, b, st->tick, PL_END, 0, 0, PL_INK);
        }
    last = -INFINITY;
    if (xt)
        for (int i = 0; i < xt->n; i++) {
            float x = crisp(pl_map(xt->v[i], xt->lo, xt->hi, a.x0, a.x1));
            if (grid)
                pl_line(l, x, a.y0, x, a.y1, g);
            if (flags & PL_AX_NO_XLABELS)
                continue;
            pl_line(l, x, a.y1, x, a.y1 + tl, ax);
            pl_tick_label(xt, xt->v[i], b, sizeof b);
            float half = 0.5f * pl_text_width(b, st->tick, 0);
            if (x - half < last + 4 * st->u)
                continue;
            last = x + half;
            pl_text(l, x, a.y1 + tl + 3 * st->u + 0.75f * st->tick, b, st->tick, PL_MIDDLE, 0, 0, PL_INK);
        }
    pl_line(l, a.x0, a.y1, a.x1, a.y1, ax);
    pl_line(l, a.x0, a.y0, a.x0, a.y1, ax);
}
