/* Line charts (learning curves and the like): nice axes from the data or
 * the caller's fixed ranges, series broken at non-finite points, an
 * optional reference line, and a legend placed where it hides the least
 * data (a free inner corner, else outside on the right). */
#include "plot_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct layout {
    pl_rectf a;           /* plot area */
    pl_ticks xt, yt;
    float leg_w, leg_h;
    int legend_outside;
} layout;

static uint32_t series_colour(const pl_lines *p, int i)
{
    int next = 0, c = 0;
    for (int j = 0; j <= i; j++) {
        int want = p->series[j].colour;
        c = want >= 0 ? want : next;
        next = c + 1;
    }
    return pl_palette[c % pl_palette_n];
}

static int legend_entries(const pl_lines *p)
{
    int n = 0;
    for (int i = 0; i < p->p.nseries; i++)
        n += p->series[i].name && p->series[i].name[0];
    return n;
}

/* Data ranges over finite points; returns the number of finite points. */
static int64_t data_range(const pl_lines *p, double *x0, double *x1, double *y0, double *y1)
{
    int64_t n = 0;
    *x0 = *y0 = INFINITY;
    *x1 = *y1 = -INFINITY;
    for (int i = 0; i < p->p.nseries; i++) {
        const tl_series *s = &p->series[i];
        for (int j = 0; j < s->n; j++) {
            if (!isfinite(s->x[j]) || !isfinite(s->y[j]))
                continue;
            *x0 = fmin(*x0, s->x[j]);
            *x1 = fmax(*x1, s->x[j]);
            *y0 = fmin(*y0, s->y[j]);
            *y1 = fmax(*y1, s->y[j]);
            n++;
        }
    }
    return n;
}

static void axis_ticks(double dlo, double dhi, double fixlo, double fixhi, pl_ticks *t)
{
    double lo = isfinite(fixlo) ? fixlo : dlo, hi = isfinite(fixhi) ? fixhi : dhi;
    int fixed = isfinite(fixlo) && isfinite(fixhi) && fixlo < fixhi;
    pl_ticks_make(lo, hi, !fixed, t);
}

/* An axis of counts: a step below 1 would label epoch 1.5, so such an
 * axis (a run of one to a few epochs) widens to whole ends, ticked at
 * every whole number. */
static void whole_ticks(pl_ticks *t)
{
    if (t->step >= 1)
        return;
    double lo = floor(t->lo + 1e-9), hi = ceil(t->hi - 1e-9);
    if (hi <= lo) {
        lo -= 1;
        hi += 1;
    }
    t->lo = lo;
    t->hi = hi;
    t->step = 1;
    t->n = 0;
    for (double v = lo; v <= hi + 1e-9 && t->n < PL_MAX_TICKS; v += 1)
        t->v[t->n++] = v;
    t->decimals = 0;
    t->exponent = 0;
}

static float crisp(float v)
{
    return floorf(v) + 0.5f;
}

static void place_area(const pl_style *st, pl_rectf inner, const tl_line_panel *q, layout *L, float extra_right)
{
    float left = pl_ticks_label_width(&L->yt, st->tick) + st->tick_len + 4 * st->u;
    if (q->ylabel && *q->ylabel)
        left += st->label * 1.5f;
    char b[64];
    pl_tick_label(&L->xt, L->xt.v[L->xt.n - 1], b, sizeof b);
    float right = 0.5f * pl_text_width(b, st->tick, 0) + 2 * st->u;
    right = right + extra_right;
    float bottom = st->tick_len + 3 * st->u + st->tick * 1.1f;
    if (q->xlabel && *q->xlabel)
        bottom += st->label * 1.6f;
    L->a.x0 = crisp(inner.x0 + left);
    L->a.x1 = floorf(inner.x1 - right);
    L->a.y0 = floorf(inner.y0 + 0.5f * st->tick);
    L->a.y1 = crisp(inner.y1 - bottom);
}

static void to_px(const layout *L, double x, double y, float *px, float *py)
{
    *px = pl_map(x, L->xt.lo, L->xt.hi, L->a.x0, L->a.x1);
    *py = pl_map(y, L->yt.lo, L->yt.hi, L->a.y1, L->a.y0);
}

/* Does segment a-b touch the box? (Liang-Barsky, without the clip.) */
static int seg_hits(float ax, float ay, float bx, float by, pl_rectf r)
{
    double t0 = 0, t1 = 1;
    double p[4] = { -(bx - ax), bx - ax, -(by - ay), by - ay };
    double q[4] = { ax - r.x0, r.x1 - ax, ay - r.y0, r.y1 - ay };
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0) {
            if (q[i] < 0)
                return 0;
            continue;
        }
        double t = q[i] / p[i];
        if (p[i] < 0)
            t0 = fmax(t0, t);
        else
            t1 = fmin(t1, t);
        if (t0 > t1)
            return 0;
    }
    return 1;
}

static int64_t hidden_by(const pl_lines *p, const layout *L, pl_rectf box)
{
    int64_t hits = 0;
    for (int i = 0; i < p->p.nseries; i++) {
        const tl_series *s = &p->series[i];
        float px = 0, py = 0;
        int have = 0;
        for (int j = 0; j < s->n; j++) {
            if (!isfinite(s->x[j]) || !isfinite(s->y[j])) {
                have = 0;
                continue;
            }
            float x, y;
            to_px(L, s->x[j], s->y[j], &x, &y);
            if (have ? seg_hits(px, py, x, y, box) : seg_hits(x, y, x, y, box))
                hits++;
            px = x;
            py = y;
            have = 1;
        }
    }
    if (isfinite(p->p.hline)) {
        float y = pl_map(p->p.hline, L->yt.lo, L->yt.hi, L->a.y1, L->a.y0);
        hits += y >= box.y0 && y <= box.y1;
    }
    return hits;
}

static pl_rectf legend_box(const layout *L, const pl_style *st, int corner)
{
    float m = 6 * st->u;
    pl_rectf b;
    b.x0 = corner & 1 ? L->a.x0 + m : L->a.x1 - m - L->leg_w;
    b.y0 = corner & 2 ? L->a.y1 - m - L->leg_h : L->a.y0 + m;
    b.x1 = b.x0 + L->leg_w;
    b.y1 = b.y0 + L->leg_h;
    return b;
}

static void draw_legend(pl_list *l, const pl_style *st, const pl_lines *p, pl_rectf b)
{
    pl_rect(l, b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0, 0xffffff, 0.9f);
    pl_rect_outline(l, crisp(b.x0), crisp(b.y0), floorf(b.x1 - b.x0), floorf(b.y1 - b.y0),
                    (pl_stroke){ 0xcccccc, 1, 0, 0 });
    float row = st->label * 1.5f, y = b.y0 + 4 * st->u + row * 0.5f, sw = 22 * st->u;
    for (int i = 0; i < p->p.nseries; i++) {
        const tl_series *s = &p->series[i];
        if (!s->name || !s->name[0])
            continue;
        uint32_t c = series_colour(p, i);
        float x = b.x0 + 6 * st->u;
        pl_stroke k = { c, st->line_w, s->dashed ? 5 * st->u : 0, s->dashed ? 3 * st->u : 0 };
        pl_line(l, x, y, x + sw, y, k);
        if (s->markers)
            pl_circle(l, x + sw * 0.5f, y, 2.5f * st->u, c);
        pl_text(l, x + sw + 6 * st->u, y + 0.35f * st->label, s->name, st->label, PL_START, 0, 0, PL_INK);
        y += row;
    }
}

static void draw_series(pl_list *l, const pl_style *st, const pl_lines *p, const layout *L, float *buf)
{
    for (int i = 0; i < p->p.nseries; i++) {
        const tl_series *s = &p->series[i];
        uint32_t c = series_colour(p, i);
        pl_stroke k = { c, st->line_w, s->dashed ? 6 * st->u : 0, s->dashed ? 4 * st->u : 0 };
        int n = 0;
        for (int j = 0; j <= s->n; j++) {
            int ok = j < s->n && isfinite(s->x[j]) && isfinite(s->y[j]);
            if (ok) {
                to_px(L, s->x[j], s->y[j], &buf[2 * n], &buf[2 * n + 1]);
                n++;
                continue;
            }
            /* End of a run: a lone point shows as a dot. */
            if (n == 1 && !s->markers)
                pl_circle(l, buf[0], buf[1], st->line_w * 1.2f, c);
            pl_path(l, buf, n, 0, k);
            n = 0;
        }
        if (s->markers)
            for (int j = 0; j < s->n; j++)
                if (isfinite(s->x[j]) && isfinite(s->y[j])) {
                    float x, y;
                    to_px(L, s->x[j], s->y[j], &x, &y);
                    pl_circle(l, x, y, 2.5f * st->u, c);
                }
    }
}

void pl_draw_lines(pl_list *l, pl_rectf r, const pl_lines *p)
{
    const tl_line_panel *q = &p->p;
    pl_style st;
    pl_style_for(&st, r.x1 - r.x0, r.y1 - r.y0);
    pl_rectf inner = { r.x0 + st.pad, r.y0 + st.pad, r.x1 - st.pad, r.y1 - st.pad };
    inner.y0 += pl_draw_title(l, &st, inner, q->title);

    double x0, x1, y0, y1;
    int64_t npts = data_range(p, &x0, &x1, &y0, &y1);
    if (isfinite(q->hline)) {
        y0 = fmin(y0, q->hline);
        y1 = fmax(y1, q->hline);
    }
    layout L = { 0 };
    axis_ticks(x0, x1, q->xmin, q->xmax, &L.xt);
    if (q->xwhole)
        whole_ticks(&L.xt);
    axis_ticks(y0, y1, q->ymin, q->ymax, &L.yt);

    int nleg = legend_entries(p);
    float maxname = 0;
    for (int i = 0; i < q->nseries; i++)
        if (p->series[i].name && p->series[i].name[0])
            maxname = fmaxf(maxname, pl_text_width(p->series[i].name, st.label, 0));
    L.leg_w = 6 * st.u + 22 * st.u + 6 * st.u + maxname + 8 * st.u;
    L.leg_h = nleg * st.label * 1.5f + 8 * st.u;
    place_area(&st, inner, q, &L, 0);

    int corner = 0;
    if (nleg > 0) {
        int64_t best = INT64_MAX;
        static const int order[4] = { 0, 2, 1, 3 }; /* top-right, bottom-right, top-left, bottom-left */
        for (int i = 0; i < 4; i++) {
            pl_rectf b = legend_box(&L, &st, order[i]);
            b.x0 -= 2;
            b.y0 -= 2;
            b.x1 += 2;
            b.y1 += 2;
            int64_t h = hidden_by(p, &L, b);
            if (h < best) {
                best = h;
                corner = order[i];
            }
        }
        float outside_w = L.leg_w + 6 * st.u;
        int too_big = L.leg_w > 0.6f * (L.a.x1 - L.a.x0) || L.leg_h > 0.8f * (L.a.y1 - L.a.y0);
        if ((best > 0 || too_big) && (L.a.x1 - L.a.x0) - outside_w > 0.45f * (inner.x1 - inner.x0)) {
            L.legend_outside = 1;
            place_area(&st, inner, q, &L, outside_w);
        } else if (L.leg_w * L.leg_h > 0.3f * (L.a.x1 - L.a.x0) * (L.a.y1 - L.a.y0)) {
            nleg = 0; /* a panel this small shows the data, not a legend */
        }
    }

    pl_draw_axes(l, &st, L.a, &L.xt, &L.yt, PL_AX_GRID);
    float *buf = NULL;
    int maxn = 2;
    for (int i = 0; i < q->nseries; i++)
        maxn = p->series[i].n > maxn ? p->series[i].n : maxn;
    buf = malloc(2 * (size_t)maxn * sizeof *buf);
    if (!buf) {
        l->oom = 1;
        return;
    }
    pl_clip_push(l, L.a.x0, L.a.y0 - st.line_w, L.a.x1 + st.line_w, L.a.y1);
    if (isfinite(q->hline)) {
        float y = pl_map(q->hline, L.yt.lo, L.yt.hi, L.a.y1, L.a.y0);
        pl_line(l, L.a.x0, y, L.a.x1, y, (pl_stroke){ PL_MUTED, 1.25f * st.u, 4 * st.u, 3 * st.u });
        if (q->hline_label && *q->hline_label) {
            /* Label above the line at the left, below it near the top. */
            float ty = y - 4 * st.u > L.a.y0 + st.tick ? y - 4 * st.u : y + 4 * st.u + 0.75f * st.tick;
            pl_text(l, L.a.x0 + 6 * st.u, ty, q->hline_label, st.tick, PL_START, 0, 0, PL_MUTED);
        }
    }
    draw_series(l, &st, p, &L, buf);
    free(buf);
    pl_clip_none(l);
    if (npts == 0) {
        float w = pl_text_width("no data", st.label, 0) + 8 * st.u;
        pl_rect(l, 0.5f * (L.a.x0 + L.a.x1 - w), 0.5f * (L.a.y0 + L.a.y1) - st.label, w, 1.4f * st.label,
                0xffffff, 1);
        pl_text(l, 0.5f * (L.a.x0 + L.a.x1), 0.5f * (L.a.y0 + L.a.y1), "no data", st.label, PL_MIDDLE, 0, 0,
                PL_MUTED);
    }

    if (nleg > 0) {
        pl_rectf b = legend_box(&L, &st, corner);
        if (L.legend_outside) {
            b.x0 = L.a.x1 + 6 * st.u;
            b.x1 = b.x0 + L.leg_w;
            b.y0 = L.a.y0;
            b.y1 = b.y0 + L.leg_h;
        }
        draw_legend(l, &st, p, b);
    }
    if (q->xlabel && *q->xlabel)
        pl_text(l, 0.5f * (L.a.x0 + L.a.x1), inner.y1 - 0.3f * st.label, q->xlabel, st.label, PL_MIDDLE, 0, 0,
                PL_INK);
    if (q->ylabel && *q->ylabel)
        pl_text(l, inner.x0 + 0.8f * st.label, 0.5f * (L.a.y0 + L.a.y1), q->ylabel, st.label, PL_MIDDLE, -90, 0,
                PL_INK);
}
