/* Plots for people: learning curves, confusion heat maps and reliability
 * diagrams, written as SVG by our own small writer, or as PNG (through
 * libpng) by rasterising the same drawing with a built-in bitmap font.
 *
 * A figure is a grid of panels. Each panel holds one kind of chart; the
 * figure is drawn once, at tl_figure_write, from copies of the data, so
 * callers may free their arrays after adding a panel. The output format
 * follows the file name: ".svg" or ".png" (case-insensitive); anything
 * else is an error. Files are written atomically (temporary name, fsync,
 * rename), so a failed write never leaves a partial plot.
 *
 * Every function returns 0, or -1 with a one-line reason in e.
 *
 * Both formats come from one drawing (lib/report/plot_internal.h), so they
 * show the same thing; text in the PNG uses a built-in 5x7 bitmap font at
 * whole-pixel scales (printable ASCII; other characters show as '?'), the
 * SVG asks for sans-serif. Type grows from 1x to 2x for panels at least
 * 700 pixels on their short side. */
#ifndef TL_REPORT_PLOT_H
#define TL_REPORT_PLOT_H

#include "core.h"

#include <stdint.h>

typedef struct tl_figure tl_figure;

/* width x height in pixels (SVG user units); rows x cols panels (1 to 16
 * each); title may be NULL. Sizes are clamped to [200, 4000]. A panel left
 * empty stays blank. */
tl_figure *tl_figure_new(int width, int height, int rows, int cols, const char *title, tl_err *e);
void tl_figure_free(tl_figure *f);

/* One line of a line chart. Points with a non-finite x or y are skipped
 * (the line breaks there). Series are coloured in order from a fixed
 * palette that stays distinguishable for colour-blind readers; `dashed`
 * draws the line dashed (e.g. training curves beside solid validation
 * curves of the same run, which then share a colour through `colour`). */
typedef struct tl_series {
    const char *name;  /* legend text; NULL or "" = not in the legend */
    int n;
    const double *x, *y;
    int colour;        /* palette index (Okabe-Ito: blue, vermillion, green,
                          orange, purple, sky blue, black, yellow; wraps);
                          -1 = the one after the previous series' colour.
                          A zeroed struct means colour 0, not -1. */
    int dashed;
    int markers;       /* draw a dot at every point */
} tl_series;

typedef struct tl_line_panel {
    const char *title, *xlabel, *ylabel; /* may be NULL */
    /* Axis ranges: NAN = from the data (padded to "nice" tick values). */
    double xmin, xmax, ymin, ymax;
    int nseries;
    const tl_series *series;
    /* Optional horizontal reference line (e.g. a --target accuracy): NAN = none. */
    double hline;
    const char *hline_label;
    int xwhole;        /* x counts (epochs): ticks only at whole numbers */
} tl_line_panel;

/* Initialises p with every range NAN and no reference line. With both
 * ends of an axis given, the axis spans exactly that range; otherwise it is
 * widened to the nearest "nice" ticks. The legend (named series only) goes
 * in the inner corner that hides the fewest points, or outside on the
 * right when every corner would hide data. */
void tl_line_panel_init(tl_line_panel *p);

/* panel = row * cols + col. */
int tl_figure_lines(tl_figure *f, int panel, const tl_line_panel *p, tl_err *e);

/* A k x k confusion matrix (row = true class, column = predicted) as a heat
 * map. Cells are shaded by the row-normalised fraction (recall per class),
 * and show the count (and the percentage when space allows). Class names
 * label both axes (NULL: indices); long names are shortened. For k larger
 * than fits, the labels are thinned but every cell is drawn. */
int tl_figure_heatmap(tl_figure *f, int panel, const char *title, int k, const int64_t *counts,
                      const char *const *class_names, tl_err *e);

/* A reliability diagram: nbins equal-width confidence bins over [0, 1];
 * bars at each bin's accuracy, the diagonal of perfect calibration, the gap
 * to each bin's mean confidence shaded, and the sample count per bin as a
 * small histogram underneath; `ece` is printed in the corner (NAN: not). */
int tl_figure_reliability(tl_figure *f, int panel, const char *title, int nbins, const double *bin_confidence,
                          const double *bin_accuracy, const int64_t *bin_count, double ece, tl_err *e);

/* A table-free bar chart (e.g. accuracy per model): one bar per label,
 * value printed above; NAN values are drawn as "n/a". labels may be NULL
 * (bars are numbered from 1). ymin/ymax NAN = from the data, bars growing
 * from 0. */
int tl_figure_bars(tl_figure *f, int panel, const char *title, const char *ylabel, int n,
                   const char *const *labels, const double *values, double ymin, double ymax, tl_err *e);

/* 0 when tl_figure_write can write this name (".svg", ".png" or "-"),
 * else -1 with the reason: for checking an option before the work. */
int tl_plot_path_check(const char *path, tl_err *e);

/* Writes the figure; "-" writes SVG to standard output. */
int tl_figure_write(const tl_figure *f, const char *path, tl_err *e);

#endif
