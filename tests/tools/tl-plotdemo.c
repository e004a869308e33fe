/* Test driver (not installed): draws one kind of chart from made-up data,
 * so the plotting library's output can be checked and looked at.
 *
 * usage: tl-plotdemo KIND OUT.svg|OUT.png|- [WIDTH HEIGHT]
 * KIND: lines, lines-busy (no free corner: the legend goes outside),
 *       heatmap, heatmap-crowded, reliability, bars, bars-crowded,
 *       empty (every series NaN), all (2 x 2 grid of the four kinds) */
#include "report/plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EPOCHS 30

static int add_lines(tl_figure *f, int panel, tl_err *e, int empty)
{
    static double x[EPOCHS], y[4][EPOCHS];
    for (int i = 0; i < EPOCHS; i++) {
        double t = i + 1;
        x[i] = t;
        y[0][i] = 0.97 - 0.45 * exp(-t / 4.0);              /* run A, train */
        y[1][i] = 0.93 - 0.40 * exp(-t / 5.0) - 0.0004 * t;  /* run A, validation */
        y[2][i] = 0.99 - 0.60 * exp(-t / 7.0);              /* run B, train */
        y[3][i] = 0.90 - 0.55 * exp(-t / 8.0) + 0.01 * sin(t);
        if (empty)
            for (int s = 0; s < 4; s++)
                y[s][i] = NAN;
    }
    y[3][12] = NAN; /* a gap in the line */
    tl_series s[4] = {
        { "resnet18 train", EPOCHS, x, y[0], 0, 1, 0 },
        { "resnet18 val", EPOCHS, x, y[1], 0, 0, 1 },
        { "mobilenet_v2 train", EPOCHS, x, y[2], 1, 1, 0 },
        { "mobilenet_v2 val", EPOCHS, x, y[3], 1, 0, 1 },
    };
    tl_line_panel p;
    tl_line_panel_init(&p);
    p.title = "Validation accuracy <by epoch> & \"runs\"";
    p.xlabel = "epoch";
    p.ylabel = "accuracy";
    p.series = s;
    p.nseries = 4;
    p.hline = 0.9;
    p.hline_label = "target 0.90";
    return tl_figure_lines(f, panel, &p, e);
}

/* Oscillating series over the whole area, so every corner holds data. */
static int add_busy(tl_figure *f, int panel, tl_err *e)
{
    enum { N = 200 };
    static double x[N], y[3][N];
    for (int i = 0; i < N; i++) {
        x[i] = i * 0.05;
        for (int s = 0; s < 3; s++)
            y[s][i] = 1e4 * (1 + sin(x[i] * (1.3 + 0.4 * s) + s));
    }
    tl_series s[3] = {
        { "lr 0.1", N, x, y[0], -1, 0, 0 },
        { "lr 0.01", N, x, y[1], -1, 0, 0 },
        { "lr 0.001 (cosine)", N, x, y[2], -1, 1, 0 },
    };
    tl_line_panel p;
    tl_line_panel_init(&p);
    p.title = "Loss by step";
    p.xlabel = "step (thousands)";
    p.ylabel = "loss";
    p.series = s;
    p.nseries = 3;
    return tl_figure_lines(f, panel, &p, e);
}

static int add_heatmap(tl_figure *f, int panel, tl_err *e, int crowded)
{
    static const char *const names[] = { "airplane", "automobile", "bird", "cat", "deer",
                                         "dog", "frog", "horse", "ship", "truck" };
    int k = crowded ? 24 : 10;
    int64_t *m = calloc((size_t)k * k, sizeof *m);
    const char **nm = calloc((size_t)k, sizeof *nm);
    char (*buf)[40] = calloc((size_t)k, sizeof *buf);
    if (!m || !nm || !buf) {
        free(m), free(nm), free(buf);
        return -1;
    }
    unsigned seed = 7;
    for (int t = 0; t < k; t++) {
        for (int q = 0; q < k; q++) {
            seed = seed * 1103515245u + 12345u;
            int noise = (int)(seed >> 16) % 12;
            m[t * k + q] = t == q ? 700 + 25 * ((t * 7) % 11) : (abs(t - q) == 1 || (t == 3 && q == 5) ? noise * 6 : noise / 5);
        }
        if (crowded)
            snprintf(buf[t], sizeof buf[t], "class_%02d_%s", t, t % 3 ? "n02085620" : "x");
        nm[t] = crowded ? buf[t] : names[t];
    }
    int rc = tl_figure_heatmap(f, panel, crowded ? "Confusion (24 classes)" : "Confusion matrix (test set)", k, m,
                               nm, e);
    free(m), free(nm), free(buf);
    return rc;
}

static int add_reliability(tl_figure *f, int panel, tl_err *e)
{
    enum { B = 10 };
    double conf[B], acc[B], ece = 0;
    int64_t cnt[B], total = 0;
    for (int i = 0; i < B; i++) {
        conf[i] = (i + 0.55) / B;
        /* overconfident, but for the lowest non-empty bin, as models often are */
        acc[i] = i == 2 ? conf[i] + 0.1 : conf[i] - 0.12 * conf[i] * (1 - conf[i]) * 2.5;
        cnt[i] = i < 2 ? 0 : (int64_t)(8 * exp(0.45 * i));
        total += cnt[i];
    }
    for (int i = 0; i < B; i++)
        ece += (double)cnt[i] / (double)total * fabs(acc[i] - conf[i]);
    return tl_figure_reliability(f, panel, "Reliability (10 bins)", B, conf, acc, cnt, ece, e);
}

static int add_bars(tl_figure *f, int panel, tl_err *e, int crowded)
{
    static const char *const names[] = { "resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0",
                                         "vit_b_16", "vgg16" };
    double v[16];
    const char *nm[16];
    char buf[16][40];
    int n = crowded ? 16 : 6;
    for (int i = 0; i < n; i++) {
        v[i] = 0.80 + 0.17 * fabs(sin(1.7 * i + 0.3));
        if (crowded) {
            snprintf(buf[i], sizeof buf[i], "%s_finetuned_%d", names[i % 6], i);
            nm[i] = buf[i];
        } else {
            nm[i] = names[i];
        }
    }
    v[3] = NAN;
    return tl_figure_bars(f, panel, "Top-1 accuracy by model", "accuracy", n, nm, v, NAN, NAN, e);
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 5) {
        fprintf(stderr, "usage: tl-plotdemo lines|lines-busy|heatmap|heatmap-crowded|reliability|bars|bars-crowded|empty|all "
                        "OUT [WIDTH HEIGHT]\n");
        return 2;
    }
    const char *kind = argv[1];
    int all = strcmp(kind, "all") == 0;
    int w = argc == 5 ? atoi(argv[3]) : (all ? 1200 : 640);
    int h = argc == 5 ? atoi(argv[4]) : (all ? 900 : 480);
    tl_err e = {0};
    tl_figure *f = tl_figure_new(w, h, all ? 2 : 1, all ? 2 : 1, all ? "tl-plotdemo: every chart kind" : NULL, &e);
    if (!f) {
        fprintf(stderr, "tl-plotdemo: %s\n", e.msg);
        return 1;
    }
    int rc;
    if (all)
        rc = add_lines(f, 0, &e, 0) || add_heatmap(f, 1, &e, 0) || add_reliability(f, 2, &e) || add_bars(f, 3, &e, 0);
    else if (strcmp(kind, "lines-busy") == 0)
        rc = add_busy(f, 0, &e);
    else if (strcmp(kind, "lines") == 0 || strcmp(kind, "empty") == 0)
        rc = add_lines(f, 0, &e, kind[0] == 'e');
    else if (strncmp(kind, "heatmap", 7) == 0)
        rc = add_heatmap(f, 0, &e, kind[7] != 0);
    else if (strcmp(kind, "reliability") == 0)
        rc = add_reliability(f, 0, &e);
    else if (strncmp(kind, "bars", 4) == 0)
        rc = add_bars(f, 0, &e, kind[4] != 0);
    else {
        fprintf(stderr, "tl-plotdemo: unknown kind '%s'\n", kind);
        tl_figure_free(f);
        return 2;
    }
    if (rc == 0)
        rc = tl_figure_write(f, argv[2], &e);
    tl_figure_free(f);
    if (rc) {
        fprintf(stderr, "tl-plotdemo: %s\n", e.msg[0] ? e.msg : "out of memory");
        return 1;
    }
    return 0;
}
