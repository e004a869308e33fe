#include "lr_find_report.h"
#include "plot.h"

#include <math.h>
#include <stdlib.h>

void tl_lr_find_print(FILE *f, const tl_lr_find_result *r)
{
    fprintf(f, "%12s  %12s  %12s\n", "lr", "loss", "smoothed");
    int shown = 12, last = -1;
    for (int k = 0; k < shown && r->n; k++) {
        int i = (int)((double)k * (r->n - 1) / (shown - 1) + 0.5);
        if (i == last)
            continue;
        last = i;
        fprintf(f, "%12.3g  %12.4g  %12.4g%s%s%s\n", r->lr[i], r->loss[i], r->smoothed[i],
                i == r->valley ? "  valley" : "", i == r->minimum ? "  minimum" : "", i == r->steep ? "  steep" : "");
    }
    fprintf(f, "\n");
    if (r->valley < 0) {
        fprintf(f, "no suggestion: the curve has %d points, too few to read (more --epochs of data or a wider range)\n",
                r->n);
        return;
    }
    fprintf(f, "suggested learning rate: %.2g (valley: halfway along the longest stretch over which the smoothed "
               "loss keeps falling, fastai's default rule)\n",
            r->valley_lr);
    fprintf(f, "other rules: minimum/10 %.2g (a tenth of the rate at the lowest loss), steep %.2g (the steepest "
               "fall)\n",
            r->minimum_lr, r->steep_lr);
    fprintf(f, "the test ran %d of %d steps, %s; pass the rate as --lr (the head's; earlier groups keep their "
               "ratio to it)\n",
            r->n, r->asked, r->diverged ? "stopped when the loss diverged" : "to the end of the range");
}

int tl_lr_find_plot(const tl_lr_find_result *r, const char *title, const char *path, tl_err *e)
{
    int n = r->n > 10 ? r->n - 5 : r->n; /* fastai's skip_end */
    if (n < 2)
        return tl_fail(e, "the range test has %d points: nothing to plot", r->n);
    double *x = tl_xalloc((size_t)n, sizeof(double), e);
    tl_figure *fig = x ? tl_figure_new(900, 560, 1, 1, title, e) : NULL;
    int rc = -1;
    if (!fig)
        goto out;
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        x[i] = log10(r->lr[i]);
        if (isfinite(r->smoothed[i])) {
            lo = fmin(lo, r->smoothed[i]);
            hi = fmax(hi, r->smoothed[i]);
        }
    }
    tl_series s[5] = {
        {"smoothed loss", n, x, r->smoothed, 0, 0, 0},
        {"batch loss", n, x, r->loss, 5, 1, 0},
    };
    int ns = 2;
    char names[3][64];
    double px[3], py[3];
    const int idx[3] = {r->valley, r->minimum, r->steep};
    const double lrs[3] = {r->valley_lr, r->minimum_lr, r->steep_lr};
    const char *what[3] = {"suggested (valley)", "minimum/10", "steep"};
    for (int k = 0; k < 3; k++) {
        if (idx[k] < 0 || idx[k] >= n)
            continue;
        /* minimum/10 is a tenth of the rate at the minimum: marked where it lies */
        px[k] = log10(lrs[k]);
        int j = idx[k];
        while (k == 1 && j > 0 && r->lr[j] > lrs[k])
            j--;
        py[k] = r->smoothed[j];
        snprintf(names[k], sizeof names[k], "%s %.2g", what[k], lrs[k]);
        s[ns++] = (tl_series){names[k], 1, &px[k], &py[k], k == 0 ? 1 : k == 1 ? 2 : 4, 0, 1};
    }
    tl_line_panel lp;
    tl_line_panel_init(&lp);
    lp.title = "learning-rate range test";
    lp.xlabel = "log10 of the head's learning rate";
    lp.ylabel = "training loss";
    if (isfinite(lo) && hi > lo) {
        lp.ymin = fmax(0, lo - 0.1 * (hi - lo));
        lp.ymax = hi + 0.1 * (hi - lo);
    }
    lp.nseries = ns;
    lp.series = s;
    rc = tl_figure_lines(fig, 0, &lp, e) || tl_figure_write(fig, path, e) ? -1 : 0;
out:
    tl_figure_free(fig);
    tl_free(x);
    return rc;
}

static void array(FILE *f, const char *key, const double *v, int n)
{
    fprintf(f, ",\"%s\":[", key);
    for (int i = 0; i < n; i++) {
        if (isfinite(v[i]))
            fprintf(f, "%s%.6g", i ? "," : "", v[i]);
        else
            fprintf(f, "%snull", i ? "," : "");
    }
    fprintf(f, "]");
}

static void num(FILE *f, const char *key, double v)
{
    if (isfinite(v))
        fprintf(f, ",\"%s\":%.6g", key, v);
    else
        fprintf(f, ",\"%s\":null", key);
}

void tl_lr_find_json(FILE *f, const tl_lr_find_result *r)
{
    fprintf(f, "{\"phase\":\"lr_find\",\"steps\":%d,\"asked\":%d,\"diverged\":%s", r->n, r->asked,
            r->diverged ? "true" : "false");
    num(f, "suggested_lr", r->valley_lr);
    fprintf(f, ",\"rule\":\"valley\"");
    num(f, "minimum_lr", r->minimum_lr);
    num(f, "steep_lr", r->steep_lr);
    array(f, "lr", r->lr, r->n);
    array(f, "loss", r->loss, r->n);
    array(f, "smoothed", r->smoothed, r->n);
    fprintf(f, "}\n");
}
