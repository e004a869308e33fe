#include "compare.h"
#include "plot.h"

#include <math.h>
#include <stdlib.h>

/* Per run, the curves the four panels draw; missing values stay NAN so
 * the line breaks there instead of inventing a point. */
enum { X_EPOCH, X_SECONDS, VAL_ACC, TRAIN_ACC, VAL_LOSS, TRAIN_LOSS, NCURVES };

int tl_comparison_plot(const tl_comparison *c, const char *path, tl_err *e)
{
    size_t total = 0;
    for (int i = 0; i < c->nruns; i++)
        total += (size_t)c->runs[i].run->nepochs;
    double *buf = malloc((total * NCURVES + 1) * sizeof *buf);
    tl_series *ser = calloc((size_t)c->nruns * 2 + 1, sizeof *ser);
    if (!buf || !ser) {
        free(buf);
        free(ser);
        return tl_fail(e, "out of memory");
    }
    double **curve = malloc(((size_t)c->nruns * NCURVES + 1) * sizeof *curve);
    if (!curve) {
        free(buf);
        free(ser);
        return tl_fail(e, "out of memory");
    }
    double *p = buf;
    for (int i = 0; i < c->nruns; i++) {
        const tl_runlog *r = c->runs[i].run;
        double **cv = curve + (size_t)i * NCURVES;
        for (int k = 0; k < NCURVES; k++, p += r->nepochs)
            cv[k] = p;
        tl_run_cumulative_seconds(r, cv[X_SECONDS]);
        for (int j = 0; j < r->nepochs; j++) {
            const tl_runlog_epoch *ep = &r->epochs[j];
            cv[X_EPOCH][j] = ep->epoch;
            cv[VAL_ACC][j] = ep->val.accuracy;
            cv[TRAIN_ACC][j] = ep->train.accuracy;
            cv[VAL_LOSS][j] = ep->val.loss;
            cv[TRAIN_LOSS][j] = ep->train.loss;
        }
    }

    int loss = c->metric == TL_METRIC_LOSS;
    struct {
        int x, y, dashed_y; /* dashed_y: a training curve drawn beside, or -1 */
        const char *title, *xlabel, *ylabel;
        int hline;
    } panels[4] = {
        {X_EPOCH, VAL_ACC, TRAIN_ACC, "accuracy (dashed: training)", "epoch", "accuracy", !loss},
        {X_EPOCH, VAL_LOSS, -1, "validation loss", "epoch", "loss", loss},
        {X_SECONDS, loss ? VAL_LOSS : VAL_ACC, -1, loss ? "validation loss vs time" : "validation accuracy vs time",
         "seconds (training + validation + extraction)", loss ? "loss" : "accuracy", 1},
        {X_EPOCH, TRAIN_LOSS, -1, "training loss", "epoch", "loss", 0},
    };
    char title[96];
    snprintf(title, sizeof title, "learning curves of %d run%s", c->nruns, c->nruns == 1 ? "" : "s");
    char hl[64];
    snprintf(hl, sizeof hl, "target %.3g", c->target);
    tl_figure *fig = tl_figure_new(1100, 820, 2, 2, title, e);
    int rc = fig ? 0 : -1;
    for (int k = 0; k < 4 && !rc; k++) {
        int ns = 0;
        for (int i = 0; i < c->nruns; i++) {
            const tl_runlog *r = c->runs[i].run;
            double **cv = curve + (size_t)i * NCURVES;
            tl_series s = {r->name, r->nepochs, cv[panels[k].x], cv[panels[k].y], i, 0, r->nepochs <= 30};
            ser[ns++] = s;
            if (panels[k].dashed_y >= 0) {
                tl_series d = {NULL, r->nepochs, cv[panels[k].x], cv[panels[k].dashed_y], i, 1, 0};
                ser[ns++] = d;
            }
        }
        tl_line_panel lp;
        tl_line_panel_init(&lp);
        lp.title = panels[k].title;
        lp.xlabel = panels[k].xlabel;
        lp.ylabel = panels[k].ylabel;
        lp.nseries = ns;
        lp.series = ser;
        lp.xwhole = panels[k].x == X_EPOCH;
        if (panels[k].y == VAL_ACC || panels[k].y == TRAIN_ACC)
            lp.ymax = 1;
        if (panels[k].hline && isfinite(c->target)) {
            lp.hline = c->target;
            lp.hline_label = hl;
        }
        rc = tl_figure_lines(fig, k, &lp, e);
    }
    if (!rc)
        rc = tl_figure_write(fig, path, e);
    tl_figure_free(fig);
    free(curve);
    free(ser);
    free(buf);
    return rc;
}
