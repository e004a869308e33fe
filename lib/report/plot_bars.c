/* Bar charts (one value per label, e.g. accuracy per model), each value
 * printed at the end of its bar; missing values show as "n/a". Labels are
 * rotated and shortened when they do not fit under their bars. */
#include "plot_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define BAR 0x0072b2u

static const char *label_of(const pl_bars *p, int i, char *buf, size_t cap)
{
    if (p->labels && p->labels[i] && p->labels[i][0])
        return p->labels[i];
    snprintf(buf, cap, "%d", i + 1);
    return buf;
}

void pl_draw_bars(pl_list *l, pl_rectf r, const pl_bars *p)
{
    pl_style st;
    pl_style_for(&st, r.x1 - r.x0, r.y1 - r.y0);
    float u = st.u, fs = st.tick;
    pl_rectf in = { r.x0 + st.pad, r.y0 + st.pad, r.x1 - st.pad, r.y1 - st.pad };
    in.y0 += pl_draw_title(l, &st, in, p->title);
    int n = p->n;
    char nb[32], sb[256], vb[64];

    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++)
        if (isfinite(p->values[i])) {
            lo = fmin(lo, p->values[i]);
            hi = fmax(hi, p->values[i]);
        }
    if (!isfinite(lo)) {
        lo = 0;
        hi = 1;
    }
    /* Bars grow from zero unless the caller fixes the bottom. */
    lo = isfinite(p->ymin) ? p->ymin : fmin(lo, 0);
    hi = isfinite(p->ymax) ? p->ymax : fmax(hi, 0);
    pl_ticks yt;
    int fixed = isfinite(p->ymin) && isfinite(p->ymax) && p->ymin < p->ymax;
    pl_ticks_make(lo, hi, !fixed, &yt);

    float left = pl_ticks_label_width(&yt, fs) + st.tick_len + 4 * u;
    if (p->ylabel && *p->ylabel)
        left += st.label * 1.5f;
    float widest = 0;
    for (int i = 0; i < n; i++)
        widest = fmaxf(widest, pl_text_width(label_of(p, i, nb, sizeof nb), fs, 0));
    float x0 = floorf(in.x0 + left) + 0.5f, x1 = floorf(in.x1 - 4 * u);
    float slot = (x1 - x0) / n;
    int rotated = widest > slot - 4 * u;
    float lab_h = rotated ? fminf(widest, 0.35f * (in.y1 - in.y0)) + 6 * u : fs * 1.1f + 6 * u;
    /* Room above the plot area for the value of a bar that reaches the top. */
    pl_rectf a = { x0, floorf(in.y0 + 1.2f * fs + 4 * u), x1, floorf(in.y1 - lab_h) + 0.5f };
    pl_draw_axes(l, &st, a, NULL, &yt, PL_AX_GRID);

    double base = fmin(fmax(0, yt.lo), yt.hi);
    float yb = pl_map(base, yt.lo, yt.hi, a.y1, a.y0);
    float bw = fminf(slot * 0.7f, 80 * u);
    pl_clip_push(l, a.x0, a.y0, a.x1, a.y1);
    for (int i = 0; i < n; i++) {
        double v = p->values[i];
        float cx = a.x0 + (i + 0.5f) * slot;
        if (!isfinite(v)) {
            pl_clip_none(l);
            pl_text(l, cx, yb - 4 * u, "n/a", fs, PL_MIDDLE, 0, 0, PL_MUTED);
            pl_clip_push(l, a.x0, a.y0, a.x1, a.y1);
            continue;
        }
        float yv = pl_map(fmin(fmax(v, yt.lo), yt.hi), yt.lo, yt.hi, a.y1, a.y0);
        pl_rect(l, cx - bw * 0.5f, fminf(yv, yb), bw, fabsf(yb - yv), BAR, 1);
    }
    pl_clip_none(l);
    /* Values at the bar ends: outside when there is room, else inside. */
    for (int i = 0; i < n; i++) {
        double v = p->values[i];
        if (!isfinite(v))
            continue;
        pl_value_label(v, vb, sizeof vb);
        if (pl_text_width(vb, fs, 0) > slot - 2 * u)
            continue;
        float cx = a.x0 + (i + 0.5f) * slot;
        float yv = pl_map(fmin(fmax(v, yt.lo), yt.hi), yt.lo, yt.hi, a.y1, a.y0);
        int up = v >= base;
        float len = fabsf(yb - yv);
        if (up) {
            pl_text(l, cx, yv - 4 * u, vb, fs, PL_MIDDLE, 0, 0, PL_INK);
        } else {
            if (a.y1 - yv >= fs * 1.3f)
                pl_text(l, cx, yv + 4 * u + 0.75f * fs, vb, fs, PL_MIDDLE, 0, 0, PL_INK);
            else if (len >= fs * 1.5f)
                pl_text(l, cx, yv - 4 * u, vb, fs, PL_MIDDLE, 0, 0, 0xffffff);
        }
    }
    if (base > yt.lo)
        pl_line(l, a.x0, floorf(yb) + 0.5f, a.x1, floorf(yb) + 0.5f, (pl_stroke){ PL_AXIS, 1, 0, 0 });

    int m = rotated && slot < fs * 1.2f ? (int)ceilf(fs * 1.2f / slot) : 1;
    for (int i = 0; i < n; i += m) {
        float cx = a.x0 + (i + 0.5f) * slot;
        const char *s = label_of(p, i, nb, sizeof nb);
        if (rotated) {
            pl_shorten(s, fs, lab_h - 6 * u, sb, sizeof sb);
            pl_text(l, cx + 0.35f * fs, a.y1 + 5 * u, sb, fs, PL_END, -90, 0, PL_INK);
        } else {
            pl_text(l, cx, a.y1 + 5 * u + 0.75f * fs, s, fs, PL_MIDDLE, 0, 0, PL_INK);
        }
    }
    if (p->ylabel && *p->ylabel)
        pl_text(l, in.x0 + 0.8f * st.label, 0.5f * (a.y0 + a.y1), p->ylabel, st.label, PL_MIDDLE, -90, 0, PL_INK);
}
