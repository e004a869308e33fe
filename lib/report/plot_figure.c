/* The figure: its panels hold copies of the caller's data; writing lays
 * the grid out, draws every panel into a display list and emits it as
 * SVG or PNG according to the file name. */
#include "plot_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *dup_or_null(const char *s, int *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = 1;
    return d;
}

static void *dup_mem(const void *p, size_t bytes, int *oom)
{
    if (!p || bytes == 0)
        return NULL;
    void *d = malloc(bytes);
    if (!d) {
        *oom = 1;
        return NULL;
    }
    memcpy(d, p, bytes);
    return d;
}

static char **dup_names(const char *const *names, int n, int *oom)
{
    if (!names)
        return NULL;
    char **d = calloc((size_t)n, sizeof *d);
    if (!d) {
        *oom = 1;
        return NULL;
    }
    for (int i = 0; i < n; i++)
        d[i] = dup_or_null(names[i], oom);
    return d;
}

static void free_names(char **names, int n)
{
    if (!names)
        return;
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static void panel_clear(pl_panel *p)
{
    switch (p->kind) {
    case PL_LINES: {
        pl_lines *l = &p->u.lines;
        free((char *)l->p.title);
        free((char *)l->p.xlabel);
        free((char *)l->p.ylabel);
        free((char *)l->p.hline_label);
        for (int i = 0; i < l->p.nseries; i++) {
            free((char *)l->series[i].name);
            free((double *)l->series[i].x);
            free((double *)l->series[i].y);
        }
        free(l->series);
        break;
    }
    case PL_HEATMAP:
        free(p->u.heat.title);
        free(p->u.heat.counts);
        free_names(p->u.heat.names, p->u.heat.k);
        break;
    case PL_RELIABILITY:
        free(p->u.rel.title);
        free(p->u.rel.conf);
        free(p->u.rel.acc);
        free(p->u.rel.count);
        break;
    case PL_BARS:
        free(p->u.bars.title);
        free(p->u.bars.ylabel);
        free_names(p->u.bars.labels, p->u.bars.n);
        free(p->u.bars.values);
        break;
    }
    memset(p, 0, sizeof *p);
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

tl_figure *tl_figure_new(int width, int height, int rows, int cols, const char *title, tl_err *e)
{
    if (rows < 1 || cols < 1 || rows > 16 || cols > 16) {
        tl_fail(e, "a figure needs 1 to 16 rows and columns of panels, got %d x %d", rows, cols);
        return NULL;
    }
    tl_figure *f = calloc(1, sizeof *f);
    int oom = !f;
    if (f) {
        f->w = clampi(width, 200, 4000);
        f->h = clampi(height, 200, 4000);
        f->rows = rows;
        f->cols = cols;
        f->title = dup_or_null(title, &oom);
        f->panels = calloc((size_t)rows * (size_t)cols, sizeof *f->panels);
        oom |= !f->panels;
    }
    if (oom) {
        tl_figure_free(f);
        tl_fail(e, "out of memory for a figure");
        return NULL;
    }
    return f;
}

void tl_figure_free(tl_figure *f)
{
    if (!f)
        return;
    if (f->panels)
        for (int i = 0; i < f->rows * f->cols; i++)
            panel_clear(&f->panels[i]);
    free(f->panels);
    free(f->title);
    free(f);
}

static pl_panel *panel_at(tl_figure *f, int panel, tl_err *e)
{
    if (!f) {
        tl_fail(e, "no figure");
        return NULL;
    }
    if (panel < 0 || panel >= f->rows * f->cols) {
        tl_fail(e, "panel %d out of range: the figure has %d (%d x %d)", panel, f->rows * f->cols, f->rows,
                f->cols);
        return NULL;
    }
    return &f->panels[panel];
}

void tl_line_panel_init(tl_line_panel *p)
{
    memset(p, 0, sizeof *p);
    p->xmin = p->xmax = p->ymin = p->ymax = NAN;
    p->hline = NAN;
}

int tl_figure_lines(tl_figure *f, int panel, const tl_line_panel *p, tl_err *e)
{
    pl_panel *slot = panel_at(f, panel, e);
    if (!slot)
        return -1;
    if (!p)
        return tl_fail(e, "no line panel given");
    if (p->nseries < 0 || p->nseries > 64)
        return tl_fail(e, "a line panel takes 0 to 64 series, got %d", p->nseries);
    if (p->nseries > 0 && !p->series)
        return tl_fail(e, "line panel: %d series but no array", p->nseries);
    for (int i = 0; i < p->nseries; i++) {
        const tl_series *s = &p->series[i];
        if (s->n < 0)
            return tl_fail(e, "series %d: negative point count %d", i, s->n);
        if (s->n > 0 && (!s->x || !s->y))
            return tl_fail(e, "series %d: %d points but no x or y array", i, s->n);
    }
    pl_panel np = { .kind = PL_LINES };
    pl_lines *l = &np.u.lines;
    int oom = 0;
    l->p = *p;
    l->p.title = dup_or_null(p->title, &oom);
    l->p.xlabel = dup_or_null(p->xlabel, &oom);
    l->p.ylabel = dup_or_null(p->ylabel, &oom);
    l->p.hline_label = dup_or_null(p->hline_label, &oom);
    l->p.nseries = 0;
    l->series = p->nseries ? calloc((size_t)p->nseries, sizeof *l->series) : NULL;
    oom |= p->nseries && !l->series;
    for (int i = 0; !oom && i < p->nseries; i++) {
        const tl_series *s = &p->series[i];
        tl_series *d = &l->series[i];
        *d = *s;
        d->name = dup_or_null(s->name, &oom);
        d->x = dup_mem(s->x, (size_t)s->n * sizeof *s->x, &oom);
        d->y = dup_mem(s->y, (size_t)s->n * sizeof *s->y, &oom);
        l->p.nseries = i + 1;
    }
    l->p.series = l->series;
    if (oom) {
        panel_clear(&np);
        return tl_fail(e, "out of memory for a line panel");
    }
    panel_clear(slot);
    *slot = np;
    return 0;
}

int tl_figure_heatmap(tl_figure *f, int panel, const char *title, int k, const int64_t *counts,
                      const char *const *class_names, tl_err *e)
{
    pl_panel *slot = panel_at(f, panel, e);
    if (!slot)
        return -1;
    if (k < 1 || k > 1000)
        return tl_fail(e, "heat map needs 1 to 1000 classes, got %d", k);
    if (!counts)
        return tl_fail(e, "heat map: no counts");
    for (int64_t i = 0; i < (int64_t)k * k; i++)
        if (counts[i] < 0)
            return tl_fail(e, "heat map: negative count %lld in row %d, column %d", (long long)counts[i],
                           (int)(i / k), (int)(i % k));
    pl_panel np = { .kind = PL_HEATMAP };
    int oom = 0;
    np.u.heat.k = k;
    np.u.heat.title = dup_or_null(title, &oom);
    np.u.heat.counts = dup_mem(counts, (size_t)k * (size_t)k * sizeof *counts, &oom);
    np.u.heat.names = dup_names(class_names, k, &oom);
    if (oom) {
        panel_clear(&np);
        return tl_fail(e, "out of memory for a heat map");
    }
    panel_clear(slot);
    *slot = np;
    return 0;
}

int tl_figure_reliability(tl_figure *f, int panel, const char *title, int nbins, const double *bin_confidence,
                          const double *bin_accuracy, const int64_t *bin_count, double ece, tl_err *e)
{
    pl_panel *slot = panel_at(f, panel, e);
    if (!slot)
        return -1;
    if (nbins < 1 || nbins > 1000)
        return tl_fail(e, "reliability diagram needs 1 to 1000 bins, got %d", nbins);
    if (!bin_confidence || !bin_accuracy || !bin_count)
        return tl_fail(e, "reliability diagram: missing confidence, accuracy or count array");
    for (int i = 0; i < nbins; i++)
        if (bin_count[i] < 0)
            return tl_fail(e, "reliability diagram: negative count in bin %d", i);
    pl_panel np = { .kind = PL_RELIABILITY };
    int oom = 0;
    pl_reliability *r = &np.u.rel;
    r->nbins = nbins;
    r->ece = ece;
    r->title = dup_or_null(title, &oom);
    r->conf = dup_mem(bin_confidence, (size_t)nbins * sizeof(double), &oom);
    r->acc = dup_mem(bin_accuracy, (size_t)nbins * sizeof(double), &oom);
    r->count = dup_mem(bin_count, (size_t)nbins * sizeof(int64_t), &oom);
    if (oom) {
        panel_clear(&np);
        return tl_fail(e, "out of memory for a reliability diagram");
    }
    panel_clear(slot);
    *slot = np;
    return 0;
}

int tl_figure_bars(tl_figure *f, int panel, const char *title, const char *ylabel, int n,
                   const char *const *labels, const double *values, double ymin, double ymax, tl_err *e)
{
    pl_panel *slot = panel_at(f, panel, e);
    if (!slot)
        return -1;
    if (n < 1 || n > 1000)
        return tl_fail(e, "bar chart needs 1 to 1000 bars, got %d", n);
    if (!values)
        return tl_fail(e, "bar chart: no values");
    pl_panel np = { .kind = PL_BARS };
    int oom = 0;
    pl_bars *b = &np.u.bars;
    b->n = n;
    b->ymin = ymin;
    b->ymax = ymax;
    b->title = dup_or_null(title, &oom);
    b->ylabel = dup_or_null(ylabel, &oom);
    b->labels = dup_names(labels, n, &oom);
    b->values = dup_mem(values, (size_t)n * sizeof *values, &oom);
    if (oom) {
        panel_clear(&np);
        return tl_fail(e, "out of memory for a bar chart");
    }
    panel_clear(slot);
    *slot = np;
    return 0;
}

int pl_figure_render(const tl_figure *f, pl_list *l, tl_err *e)
{
    pl_list_init(l, f->w, f->h);
    pl_style st;
    pl_style_for(&st, (float)f->w / f->cols, (float)f->h / f->rows);
    float top = 0;
    if (f->title && *f->title) {
        float size = (f->w >= 500 ? 16 : 12) * st.u;
        char b[256];
        pl_shorten(f->title, size, f->w - 2 * st.pad, b, sizeof b);
        pl_text(l, f->w * 0.5f, st.pad + size * 0.85f, b, size, PL_MIDDLE, 0, 1, PL_INK);
        top = st.pad + size * 1.3f;
    }
    float cw = (float)f->w / f->cols, ch = ((float)f->h - top) / f->rows;
    for (int r = 0; r < f->rows; r++)
        for (int c = 0; c < f->cols; c++) {
            const pl_panel *p = &f->panels[r * f->cols + c];
            pl_rectf cell = { c * cw, top + r * ch, (c + 1) * cw, top + (r + 1) * ch };
            switch (p->kind) {
            case PL_LINES: pl_draw_lines(l, cell, &p->u.lines); break;
            case PL_HEATMAP: pl_draw_heatmap(l, cell, &p->u.heat); break;
            case PL_RELIABILITY: pl_draw_reliability(l, cell, &p->u.rel); break;
            case PL_BARS: pl_draw_bars(l, cell, &p->u.bars); break;
            }
            pl_clip_none(l);
        }
    if (l->oom) {
        pl_list_free(l);
        return tl_fail(e, "out of memory while drawing a figure");
    }
    return 0;
}

static int ends_with(const char *s, const char *ext)
{
    size_t n = strlen(s), m = strlen(ext);
    return n > m && strcasecmp(s + n - m, ext) == 0;
}

int tl_plot_path_check(const char *path, tl_err *e)
{
    if (!path || !*path)
        return tl_fail(e, "no output file name");
    if (strcmp(path, "-") && !ends_with(path, ".svg") && !ends_with(path, ".png"))
        return tl_fail(e, "%s: unknown plot format (the name must end in .svg or .png)", path);
    return 0;
}

int tl_figure_write(const tl_figure *f, const char *path, tl_err *e)
{
    if (!f)
        return tl_fail(e, "no figure");
    if (tl_plot_path_check(path, e))
        return -1;
    int svg = strcmp(path, "-") == 0 || ends_with(path, ".svg");
    pl_list l;
    if (pl_figure_render(f, &l, e) < 0)
        return -1;
    int rc;
    if (svg) {
        rc = pl_write_svg(&l, path, e);
    } else {
        tl_image img = { 0 };
        rc = pl_rasterise(&l, &img, e);
        if (rc == 0)
            rc = tl_image_write_png(path, &img, e);
        tl_image_free(&img);
    }
    pl_list_free(&l);
    return rc;
}
