/* Internals shared by the plot_*.c files (not part of the public API).
 *
 * A figure is turned into a display list (pl_list) once per write: stroked
 * paths with optional dashes, filled rectangles and circles, and text with
 * an anchor, a size and a rotation. The SVG writer and the rasteriser both
 * consume the same list, so the two outputs show the same drawing.
 *
 * Coordinates are pixels from the top-left corner. Text is placed on its
 * baseline; a rotated text (rotate = -90) reads bottom to top around its
 * anchor point. Colours are 0xRRGGBB. */
#ifndef TL_REPORT_PLOT_INTERNAL_H
#define TL_REPORT_PLOT_INTERNAL_H

#include "plot.h"
#include "io/image.h"

#include <stddef.h>
#include <stdint.h>

/* ---- display list ---------------------------------------------------- */

enum { PL_PATH, PL_RECT, PL_CIRCLE, PL_TEXT };
enum { PL_START, PL_MIDDLE, PL_END };

typedef struct pl_stroke {
    uint32_t colour;
    float width;
    float dash_on, dash_off; /* 0 = solid */
} pl_stroke;

typedef struct pl_op {
    int kind;
    int clip;          /* index into pl_list.clips, -1 = none */
    uint32_t colour;   /* stroke, fill or text colour */
    float opacity;     /* of a fill */
    pl_stroke stroke;  /* PL_PATH */
    int closed;        /* PL_PATH: join the last point to the first */
    size_t pts;        /* PL_PATH: index of the first x in pl_list.pts */
    int npts;
    float x, y, w, h;  /* rect; circle centre x, y and radius w; text anchor x, y */
    size_t text;       /* PL_TEXT: offset into pl_list.chars */
    float size;        /* nominal font size in pixels */
    int anchor, rotate, bold;
} pl_op;

typedef struct pl_list {
    int w, h;
    pl_op *ops;
    int nops, ops_cap;
    float *pts;
    size_t npts, pts_cap;   /* counted in floats */
    char *chars;
    size_t nchars, chars_cap;
    float (*clips)[4];      /* x0, y0, x1, y1 */
    int nclips, clips_cap;
    int clip;               /* the clip given to new ops */
    int oom;                /* set when any push failed */
} pl_list;

void pl_list_init(pl_list *l, int w, int h);
void pl_list_free(pl_list *l);
/* Registers a clip rectangle and makes it current; returns its index. */
int pl_clip_push(pl_list *l, float x0, float y0, float x1, float y1);
void pl_clip_none(pl_list *l);

void pl_path(pl_list *l, const float *xy, int n, int closed, pl_stroke s);
void pl_line(pl_list *l, float x0, float y0, float x1, float y1, pl_stroke s);
void pl_rect(pl_list *l, float x, float y, float w, float h, uint32_t fill, float opacity);
void pl_rect_outline(pl_list *l, float x, float y, float w, float h, pl_stroke s);
void pl_circle(pl_list *l, float cx, float cy, float r, uint32_t fill);
void pl_text(pl_list *l, float x, float y, const char *s, float size, int anchor, int rotate, int bold,
             uint32_t colour);

/* ---- output ----------------------------------------------------------- */

int pl_write_svg(const pl_list *l, const char *path, tl_err *e);
/* Rasterises into img (resized to l->w x l->h). */
int pl_rasterise(const pl_list *l, tl_image *img, tl_err *e);

/* ---- font and text measure -------------------------------------------- */

/* The bitmap font: 5 x 9 cells (rows 0-6 above the baseline, 7-8 below),
 * drawn at an integer scale. */
#define PL_GLYPH_W 5
#define PL_GLYPH_H 9
#define PL_GLYPH_BASE 7

/* Integer raster scale of a nominal size (10 px -> 1, 20 px -> 2). */
int pl_font_scale(float size);
/* 1 when pixel (row, col) of the glyph for code point c is ink; code
 * points outside printable ASCII draw as '?'. */
int pl_glyph_bit(unsigned c, int row, int col);
/* First inked column and advance (ink width + 1 column gap) at scale 1. */
void pl_glyph_metrics(unsigned c, int *left, int *advance);
/* Next code point of UTF-8 text (invalid bytes count as one '?'). */
unsigned pl_utf8_next(const char **s);
/* Width in pixels as the rasteriser draws it. */
float pl_text_width_raster(const char *s, float size, int bold);
/* A width both outputs stay within (SVG sans-serif is estimated). */
float pl_text_width(const char *s, float size, int bold);
/* Copies s into buf, shortened with "..." to fit max_w; returns buf. */
char *pl_shorten(const char *s, float size, float max_w, char *buf, size_t cap);

/* ---- axes -------------------------------------------------------------- */

#define PL_MAX_TICKS 16

typedef struct pl_ticks {
    double lo, hi;      /* the axis range */
    double step;
    int n;
    double v[PL_MAX_TICKS];
    int decimals;       /* for fixed notation */
    int exponent;       /* labels in 1e+06 notation */
} pl_ticks;

/* Nice ticks (1, 2 or 5 times a power of ten, 4 to 8 of them) for data in
 * [lo, hi]. With expand, the axis range grows to the outer ticks; without,
 * it stays [lo, hi] and the ticks fall inside. A single value or an empty
 * (non-finite) range gets a sensible range around it. */
void pl_ticks_make(double lo, double hi, int expand, pl_ticks *t);
/* The label of tick value v: "0.95", "-2", "1e+06", never "0.9500001". */
void pl_tick_label(const pl_ticks *t, double v, char *buf, size_t cap);
/* A value printed with about three significant digits ("0.952", "12.3"). */
void pl_value_label(double v, char *buf, size_t cap);

/* ---- layout shared by the panels ---------------------------------------- */

typedef struct pl_rectf {
    float x0, y0, x1, y1;
} pl_rectf;

/* Type sizes and spacing of a panel, chosen from its pixel size. */
typedef struct pl_style {
    float u;            /* 1 for small panels, 2 for large ones */
    float tick, label, title, pad, tick_len, line_w;
} pl_style;

void pl_style_for(pl_style *st, float panel_w, float panel_h);

extern const uint32_t pl_palette[];
extern const int pl_palette_n;

#define PL_INK 0x222222u       /* text */
#define PL_AXIS 0x444444u      /* axis lines and ticks */
#define PL_GRID 0xe6e6e6u      /* grid lines */
#define PL_MUTED 0x666666u     /* secondary text, reference lines */

/* Draws the panel title centred over r and returns the space it took. */
float pl_draw_title(pl_list *l, const pl_style *st, pl_rectf r, const char *title);

/* Maps a value to a pixel coordinate along [p0, p1]. */
static inline float pl_map(double v, double lo, double hi, float p0, float p1)
{
    return (float)(p0 + (v - lo) / (hi - lo) * (p1 - p0));
}

/* Draws grid, axis lines, ticks and tick labels of a plot area. Either
 * tick set may be NULL (no ticks on that axis). */
enum { PL_AX_GRID = 1, PL_AX_NO_XLABELS = 2 };
void pl_draw_axes(pl_list *l, const pl_style *st, pl_rectf a, const pl_ticks *xt, const pl_ticks *yt,
                  int flags);
/* Widest tick label of t (0 for NULL). */
float pl_ticks_label_width(const pl_ticks *t, float size);

/* ---- the figure --------------------------------------------------------- */

enum { PL_NONE, PL_LINES, PL_HEATMAP, PL_RELIABILITY, PL_BARS };

typedef struct pl_lines {
    tl_line_panel p;       /* strings and series point into owned copies */
    tl_series *series;
} pl_lines;

typedef struct pl_heatmap {
    char *title;
    int k;
    int64_t *counts;
    char **names;          /* NULL: indices */
} pl_heatmap;

typedef struct pl_reliability {
    char *title;
    int nbins;
    double *conf, *acc;
    int64_t *count;
    double ece;
} pl_reliability;

typedef struct pl_bars {
    char *title, *ylabel;
    int n;
    char **labels;
    double *values;
    double ymin, ymax;
} pl_bars;

typedef struct pl_panel {
    int kind;
    union {
        pl_lines lines;
        pl_heatmap heat;
        pl_reliability rel;
        pl_bars bars;
    } u;
} pl_panel;

struct tl_figure {
    int w, h, rows, cols;
    char *title;
    pl_panel *panels;
};

void pl_draw_lines(pl_list *l, pl_rectf r, const pl_lines *p);
void pl_draw_heatmap(pl_list *l, pl_rectf r, const pl_heatmap *p);
void pl_draw_reliability(pl_list *l, pl_rectf r, const pl_reliability *p);
void pl_draw_bars(pl_list *l, pl_rectf r, const pl_bars *p);
/* The whole figure as a display list. */
int pl_figure_render(const tl_figure *f, pl_list *l, tl_err *e);

#endif
