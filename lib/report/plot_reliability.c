/* Reliability diagrams: per confidence bin, a bar at the bin's accuracy
 * and the gap to its mean confidence shaded; the diagonal of perfect
 * calibration dashed; a strip underneath with the samples per bin; the
 * expected calibration error and a legend in the top-left corner, which
 * stays empty for all but badly underconfident models. */
#include "plot_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define BAR_COLOUR 0x0072b2u
#define GAP_COLOUR 0xd55e00u

/* under: some bin is underconfident, so its lightened gap has a row too
 * (every colour on the panel is named). */
static void legend(pl_list *l, const pl_style *st, pl_rectf a, double ece, int under)
{
    static const char *const names[] = { "accuracy", "gap: overconfident", "gap: underconfident",
                                         "perfect calibration" };
    float row = st->label * 1.5f, u = st->u, sw = 16 * u, w = 0;
    for (int i = 0; i < 4; i++)
        w = fmaxf(w, pl_text_width(names[i], st->label, 0));
    char eb[48] = "";
    if (isfinite(ece)) {
        snprintf(eb, sizeof eb, "ECE = %.3f", ece);
        w = fmaxf(w, pl_text_width(eb, st->label, 1) - sw - 6 * u);
    }
    int rows = 3 + (under != 0) + (eb[0] != 0);
    float bw = 6 * u + sw + 6 * u + w + 8 * u, bh = rows * row + 8 * u;
    if (bw > (a.x1 - a.x0) * 0.9f || bh > (a.y1 - a.y0) * 0.9f)
        return; /* no room: the panel is too small for a legend */
    float x0 = floorf(a.x0 + 6 * u) + 0.5f, y0 = floorf(a.y0 + 6 * u) + 0.5f;
    pl_rect(l, x0, y0, bw, bh, 0xffffff, 0.92f);
    pl_rect_outline(l, x0, y0, floorf(bw), floorf(bh), (pl_stroke){ 0xcccccc, 1, 0, 0 });
    float x = x0 + 6 * u, y = y0 + 4 * u + row * 0.5f;
    if (eb[0]) {
        pl_text(l, x, y + 0.35f * st->label, eb, st->label, PL_START, 0, 1, PL_INK);
        y += row;
    }
    float sh = st->label * 0.8f;
    pl_rect(l, x, y - sh * 0.5f, sw, sh, BAR_COLOUR, 0.85f);
    pl_text(l, x + sw + 6 * u, y + 0.35f * st->label, names[0], st->label, PL_START, 0, 0, PL_INK);
    y += row;
    pl_rect(l, x, y - sh * 0.5f, sw, sh, GAP_COLOUR, 0.3f);
    pl_rect_outline(l, x, y - sh * 0.5f, sw, sh, (pl_stroke){ GAP_COLOUR, 1, 0, 0 });
    pl_text(l, x + sw + 6 * u, y + 0.35f * st->label, names[1], st->label, PL_START, 0, 0, PL_INK);
    y += row;
    if (under) {
        pl_rect(l, x, y - sh * 0.5f, sw, sh, BAR_COLOUR, 0.85f);
        pl_rect(l, x, y - sh * 0.5f, sw, sh, 0xffffff, 0.5f);
        pl_rect_outline(l, x, y - sh * 0.5f, sw, sh, (pl_stroke){ GAP_COLOUR, 1, 0, 0 });
        pl_text(l, x + sw + 6 * u, y + 0.35f * st->label, names[2], st->label, PL_START, 0, 0, PL_INK);
        y += row;
    }
    pl_line(l, x, y, x + sw, y, (pl_stroke){ PL_AXIS, 1.25f * u, 4 * u, 2 * u });
    pl_text(l, x + sw + 6 * u, y + 0.35f * st->label, names[3], st->label, PL_START, 0, 0, PL_INK);
}

void pl_draw_reliability(pl_list *l, pl_rectf r, const pl_reliability *p)
{
    pl_style st;
    pl_style_for(&st, r.x1 - r.x0, r.y1 - r.y0);
    float u = st.u;
    pl_rectf in = { r.x0 + st.pad, r.y0 + st.pad, r.x1 - st.pad, r.y1 - st.pad };
    in.y0 += pl_draw_title(l, &st, in, p->title);

    int n = p->nbins;
    int64_t maxc = 0;
    int under = 0; /* a bin more accurate than confident */
    for (int i = 0; i < n; i++)
        maxc = p->count[i] > maxc ? p->count[i] : maxc;
    pl_ticks xt, yt, ct;
    pl_ticks_make(0, 1, 0, &xt);
    pl_ticks_make(0, 1, 0, &yt);
    pl_ticks_make(0, maxc > 0 ? (double)maxc : 1, 1, &ct);
    /* The count strip labels only its ends. */
    ct.v[1] = ct.v[ct.n - 1];
    ct.n = 2;

    float tw = fmaxf(pl_ticks_label_width(&yt, st.tick), pl_ticks_label_width(&ct, st.tick));
    float left = st.label * 1.5f + tw + st.tick_len + 4 * u;
    float bottom = st.tick_len + 3 * u + st.tick * 1.1f + st.label * 1.6f;
    float x0 = floorf(in.x0 + left) + 0.5f, x1 = floorf(in.x1 - 12 * u);
    float avail = in.y1 - bottom - (in.y0 + 0.5f * st.tick);
    float strip = fminf(fmaxf(avail * 0.18f, st.tick * 2.6f), avail * 0.3f), gap = st.tick * 1.4f + 2 * u;
    pl_rectf a = { x0, floorf(in.y0 + 0.5f * st.tick), x1, floorf(in.y1 - bottom - strip - gap) + 0.5f };
    pl_rectf c = { x0, floorf(a.y1 + gap), x1, floorf(in.y1 - bottom) + 0.5f };

    /* Main diagram: vertical grid at the x ticks, labels under the strip. */
    pl_draw_axes(l, &st, a, &xt, &yt, PL_AX_GRID | PL_AX_NO_XLABELS);
    pl_clip_push(l, a.x0, a.y0, a.x1, a.y1);
    float bin_w = (a.x1 - a.x0) / n, inset = bin_w >= 6 ? 1 : 0;
    for (int i = 0; i < n; i++) {
        if (p->count[i] <= 0 || !isfinite(p->acc[i]))
            continue;
        double acc = fmin(fmax(p->acc[i], 0), 1);
        double conf = isfinite(p->conf[i]) ? fmin(fmax(p->conf[i], 0), 1) : (i + 0.5) / n;
        float bx0 = a.x0 + i * bin_w + inset, bx1 = a.x0 + (i + 1) * bin_w - inset;
        float ya = pl_map(acc, 0, 1, a.y1, a.y0), yc = pl_map(conf, 0, 1, a.y1, a.y0);
        pl_rect(l, bx0, ya, bx1 - bx0, a.y1 - ya, BAR_COLOUR, 0.85f);
        float g0 = fminf(ya, yc), g1 = fmaxf(ya, yc);
        if (g1 - g0 >= 0.5f) {
            /* Orange over the blue bar turns muddy: where accuracy exceeds
             * confidence the gap lies inside the bar and is lightened
             * instead, the orange outline marking it either way. */
            if (ya < yc) {
                pl_rect(l, bx0, g0, bx1 - bx0, g1 - g0, 0xffffff, 0.5f);
                under = 1;
            }
            else
                pl_rect(l, bx0, g0, bx1 - bx0, g1 - g0, GAP_COLOUR, 0.3f);
            pl_rect_outline(l, bx0 + 0.5f, g0, bx1 - bx0 - 1, g1 - g0, (pl_stroke){ GAP_COLOUR, 1, 0, 0 });
        }
    }
    pl_line(l, a.x0, a.y1, a.x1, a.y0, (pl_stroke){ PL_AXIS, 1.25f * u, 5 * u, 3 * u });
    pl_clip_none(l);
    pl_line(l, a.x0, a.y1, a.x1, a.y1, (pl_stroke){ PL_AXIS, 1, 0, 0 });
    legend(l, &st, a, p->ece, under);

    /* Count strip. */
    pl_draw_axes(l, &st, c, &xt, &ct, 0);
    for (int i = 0; i < n; i++) {
        if (p->count[i] <= 0)
            continue;
        float bx0 = c.x0 + i * bin_w + inset, bx1 = c.x0 + (i + 1) * bin_w - inset;
        float yv = pl_map((double)p->count[i], ct.lo, ct.hi, c.y1, c.y0);
        pl_rect(l, bx0, yv, bx1 - bx0, c.y1 - yv, 0x888888, 1);
    }
    pl_line(l, c.x0, c.y1, c.x1, c.y1, (pl_stroke){ PL_AXIS, 1, 0, 0 });

    float lx = in.x0 + 0.8f * st.label;
    if (pl_text_width("accuracy", st.label, 0) <= a.y1 - a.y0)
        pl_text(l, lx, 0.5f * (a.y0 + a.y1), "accuracy", st.label, PL_MIDDLE, -90, 0, PL_INK);
    if (pl_text_width("count", st.label, 0) <= c.y1 - c.y0)
        pl_text(l, lx, 0.5f * (c.y0 + c.y1), "count", st.label, PL_MIDDLE, -90, 0, PL_INK);
    pl_text(l, 0.5f * (a.x0 + a.x1), in.y1 - 0.3f * st.label, "confidence", st.label, PL_MIDDLE, 0, 0, PL_INK);
}
