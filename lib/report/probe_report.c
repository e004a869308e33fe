#include "probe_report.h"
#include "json.h"
#include "plot.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char **v;
    int n;
    int bad;
} lines;

static void add(lines *L, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char **v = realloc(L->v, (size_t)(L->n + 1) * sizeof *v);
    char *s = tl_strdup(buf);
    if (!v || !s) {
        free(s);
        if (v)
            L->v = v;
        L->bad = 1;
        return;
    }
    L->v = v;
    L->v[L->n++] = s;
}

static double points(double a) { return 100.0 * a; }

/* The layer the verdict measures against: the model's default features,
 * else the deepest one probed. */
static int reference_layer(const tl_probe *p) { return p->default_layer >= 0 ? p->default_layer : p->nlayers - 1; }

int tl_probe_verdict(const tl_probe *p, char ***out, int *nout, tl_err *e)
{
    lines L = {0};
    *out = NULL;
    *nout = 0;
    if (p->nlayers < 1 || p->best < 0)
        return tl_fail(e, "no layer was probed");
    const tl_probe_layer *B = &p->layers[p->best];
    int r = reference_layer(p);
    const tl_probe_layer *R = &p->layers[r];
    const char *what = p->default_layer >= 0 ? "the default layer" : "the deepest layer probed";
    add(&L, "best: %s (layer %d of %d, %d values), validation accuracy %.3f (%lld of %lld)", B->name, B->depth,
        p->nlayers, B->dim, B->val_acc, (long long)B->correct, (long long)p->nval);
    if (p->best == r) {
        add(&L, "%s is %s and the best: ImageNet's late features suit this data; keep the default layer", B->name,
            what);
    } else {
        double d = B->val_acc - R->val_acc, noise = tl_probe_noise(p, p->best, r);
        /* two decimals when one would show a difference and its noise alike */
        int dec = fabs(round(points(d) * 10) - round(points(noise) * 10)) < 1 ? 2 : 1;
        if (d > noise) {
            add(&L, "%s is best, %.*f points above %s (%s, %.3f), beyond noise (+-%.*f points, paired, %lld "
                    "validation images)",
                B->name, dec, points(d), what, R->name, R->val_acc, dec, points(noise), (long long)p->nval);
            add(&L, "your domain is further from ImageNet than the default layer assumes: extract with --layer %s, "
                    "or fine-tune the layers after it",
                B->name);
        } else {
            add(&L, "%s is best by %.*f points over %s (%s, %.3f), within noise (+-%.*f points, paired, %lld "
                    "validation images): keep the default layer",
                B->name, dec, points(d), what, R->name, R->val_acc, dec, points(noise), (long long)p->nval);
        }
    }
    /* The earliest layer as good as the best, when there is one: a far
     * domain is often served by early, generic layers (and they are
     * cheaper to run). */
    for (int i = 0; i < p->best; i++) {
        const tl_probe_layer *E = &p->layers[i];
        if (B->val_acc - E->val_acc <= tl_probe_noise(p, p->best, i)) {
            add(&L, "%s (layer %d of %d, %d values) is already within noise of the best (%.3f vs %.3f): the layers "
                    "after it add little for this data, and a network cut there is cheaper to run",
                E->name, E->depth, p->nlayers, E->dim, E->val_acc, B->val_acc);
            break;
        }
    }
    if (p->nlayers >= 3) {
        const tl_probe_layer *F = &p->layers[0], *Z = &p->layers[p->nlayers - 1];
        /* The curve's shape: the first layer's accuracy, the peak, the end. */
        if (p->best == p->nlayers - 1)
            add(&L, "accuracy rises from %.3f (%s) to %.3f at the last layer (%s): early layers are generic, and "
                    "the late ones add what this task needs",
                F->val_acc, F->name, B->val_acc, B->name);
        else if (B->val_acc - Z->val_acc <= tl_probe_noise(p, p->best, p->nlayers - 1))
            add(&L, "accuracy rises from %.3f (%s) to %.3f at %s and holds to the last layer (%s, %.3f): early "
                    "layers are generic, and the late ones still add what this task needs",
                F->val_acc, F->name, B->val_acc, B->name, Z->name, Z->val_acc);
        else
            add(&L, "accuracy rises from %.3f (%s) to %.3f at %s, then falls to %.3f at the last layer (%s): "
                    "the late layers are specialised to ImageNet's classes beyond what this task can use",
                F->val_acc, F->name, B->val_acc, B->name, Z->val_acc, Z->name);
    }
    if (L.bad) {
        tl_strings_free(L.v, L.n);
        return tl_fail(e, "out of memory");
    }
    *out = L.v;
    *nout = L.n;
    return 0;
}

void tl_probe_print(FILE *f, const tl_probe *p)
{
    int w = 5;
    for (int i = 0; i < p->nlayers; i++) {
        int l = (int)strlen(p->layers[i].name);
        w = l > w ? l : w;
    }
    fprintf(f, "%-*s  %5s  %7s  %9s  %9s  %8s\n", w + 2, "layer", "depth", "values", "train acc", "val acc",
            "val loss");
    for (int i = 0; i < p->nlayers; i++) {
        const tl_probe_layer *L = &p->layers[i];
        const char *mark = i == p->best && i == p->default_layer ? "  best, default"
                           : i == p->best                        ? "  best"
                           : i == p->default_layer               ? "  default"
                                                                 : "";
        char loss[32];
        if (isfinite(L->val_loss))
            snprintf(loss, sizeof loss, "%8.4f", L->val_loss);
        else
            snprintf(loss, sizeof loss, "%8s", "-");
        fprintf(f, "%-*s  %5d  %7d  %9.4f  %9.4f  %s%s\n", w + 2, L->name, L->depth, L->dim, L->train_acc, L->val_acc,
                loss, mark);
    }
}

int tl_probe_plot(const tl_probe *p, const char *title, const char *path, tl_err *e)
{
    int n = p->nlayers;
    double *x = tl_xalloc((size_t)n, sizeof(double), e), *va = tl_xalloc((size_t)n, sizeof(double), e),
           *tr = tl_xalloc((size_t)n, sizeof(double), e);
    tl_figure *fig = x && va && tr ? tl_figure_new(900, 560, 1, 1, title, e) : NULL;
    int rc = -1;
    if (!fig)
        goto out;
    for (int i = 0; i < n; i++) {
        x[i] = p->layers[i].depth;
        va[i] = p->layers[i].val_acc;
        tr[i] = p->layers[i].train_acc;
    }
    const tl_probe_layer *B = &p->layers[p->best];
    double bx = B->depth, by = B->val_acc;
    char best_name[TL_NAME_MAX + 48], def_name[TL_NAME_MAX + 48], xlabel[2 * TL_NAME_MAX + 64];
    snprintf(best_name, sizeof best_name, "best: %s %.3f", B->name, B->val_acc);
    tl_series s[4] = {
        {"validation", n, x, va, 0, 0, 1},
        {"training", n, x, tr, 0, 1, 0},
        {best_name, 1, &bx, &by, 1, 0, 1},
    };
    int ns = 3;
    double dx = 0, dy = 0;
    if (p->default_layer >= 0 && p->default_layer != p->best) {
        const tl_probe_layer *D = &p->layers[p->default_layer];
        dx = D->depth;
        dy = D->val_acc;
        snprintf(def_name, sizeof def_name, "default: %s %.3f", D->name, D->val_acc);
        s[ns++] = (tl_series){def_name, 1, &dx, &dy, 2, 0, 1};
    }
    snprintf(xlabel, sizeof xlabel, "layer (1 = %s ... %d = %s)", p->layers[0].name, n, p->layers[n - 1].name);
    tl_line_panel lp;
    tl_line_panel_init(&lp);
    lp.title = "accuracy of a linear head on each layer's features";
    lp.xlabel = xlabel;
    lp.xwhole = 1;
    lp.ylabel = "accuracy";
    lp.xmin = 0.5;
    lp.xmax = n + 0.5;
    lp.ymax = 1.0;
    lp.nseries = ns;
    lp.series = s;
    rc = tl_figure_lines(fig, 0, &lp, e) || tl_figure_write(fig, path, e) ? -1 : 0;
out:
    tl_figure_free(fig);
    tl_free(x);
    tl_free(va);
    tl_free(tr);
    return rc;
}

static void num(FILE *f, const char *key, double v)
{
    fprintf(f, ",\"%s\":", key);
    if (isfinite(v))
        fprintf(f, "%.6g", v);
    else
        fprintf(f, "null");
}

static void str(FILE *f, const char *key, const char *v)
{
    fprintf(f, ",\"%s\":", key);
    if (v)
        tl_json_write_string(f, v);
    else
        fprintf(f, "null");
}

void tl_probe_json(FILE *f, const tl_probe *p, const tl_probe_about *a, char *const *verdict, int nverdict)
{
    fprintf(f, "{\"tool\":\"tl-probe\"");
    str(f, "model", a->model);
    str(f, "train", a->train);
    str(f, "val", a->val);
    str(f, "head", a->head);
    num(f, "C", a->C);
    fprintf(f, ",\"train_images\":%lld,\"val_images\":%lld,\"classes\":%d", (long long)p->ntrain, (long long)p->nval,
            p->nclasses);
    num(f, "extract_seconds", p->extract_seconds);
    num(f, "fit_seconds", p->fit_seconds);
    fprintf(f, ",\"layers\":[");
    for (int i = 0; i < p->nlayers; i++) {
        const tl_probe_layer *L = &p->layers[i];
        fprintf(f, "%s{\"layer\":", i ? "," : "");
        tl_json_write_string(f, L->name);
        fprintf(f, ",\"depth\":%d,\"dim\":%d", L->depth, L->dim);
        num(f, "train_accuracy", L->train_acc);
        num(f, "val_accuracy", L->val_acc);
        num(f, "val_loss", L->val_loss);
        num(f, "seconds", L->seconds);
        fprintf(f, "}");
    }
    fprintf(f, "]");
    int r = reference_layer(p);
    str(f, "best", p->best >= 0 ? p->layers[p->best].name : NULL);
    str(f, "default", p->default_layer >= 0 ? p->layers[p->default_layer].name : NULL);
    /* the reference: the default layer, or the deepest probed without it */
    str(f, "reference", p->nlayers ? p->layers[r].name : NULL);
    if (p->best >= 0) {
        num(f, "best_minus_reference", p->layers[p->best].val_acc - p->layers[r].val_acc);
        num(f, "noise", p->best == r ? 0 : tl_probe_noise(p, p->best, r));
    }
    fprintf(f, ",\"verdict\":[");
    for (int i = 0; i < nverdict; i++) {
        fprintf(f, "%s", i ? "," : "");
        tl_json_write_string(f, verdict[i]);
    }
    fprintf(f, "]}\n");
}
