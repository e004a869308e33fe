#include "multilabel.h"
#include "json.h"
#include "metrics.h"
#include "plot.h"
#include "train/pr_curve.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int tl_ml_scorer_init(tl_ml_scorer *s, int k, int probabilities, tl_err *e)
{
    memset(s, 0, sizeof *s);
    if (k < 1)
        return tl_fail(e, "a multi-label scorer needs at least one class");
    s->k = k;
    s->probabilities = probabilities != 0;
    return 0;
}

void tl_ml_scorer_free(tl_ml_scorer *s)
{
    free(s->scores);
    free(s->truth);
    free(s->pred);
    memset(s, 0, sizeof *s);
}

int tl_ml_scorer_add(tl_ml_scorer *s, const unsigned char *truth, const unsigned char *pred, const float *scores,
                     const float *thresholds, tl_err *e)
{
    if (!truth) {
        s->unlabelled++;
        return 0;
    }
    size_t k = (size_t)s->k;
    if (s->n == s->cap) {
        int64_t nc = s->cap ? s->cap * 2 : 256;
        float *ns = realloc(s->scores, (size_t)nc * k * sizeof *ns);
        if (ns)
            s->scores = ns;
        unsigned char *nt = ns ? realloc(s->truth, (size_t)nc * k) : NULL;
        if (nt)
            s->truth = nt;
        unsigned char *np = nt ? realloc(s->pred, (size_t)nc * k) : NULL;
        if (!np)
            return tl_fail(e, "out of memory keeping %lld x %d scores", (long long)nc, s->k);
        s->pred = np;
        s->cap = nc;
    }
    size_t at = (size_t)s->n * k;
    memcpy(s->scores + at, scores, k * sizeof *scores);
    for (size_t c = 0; c < k; c++) {
        s->truth[at + c] = truth[c] != 0;
        float t = thresholds ? thresholds[c] : s->probabilities ? 0.5f : 0.0f;
        s->pred[at + c] = pred ? pred[c] != 0 : scores[c] >= t;
    }
    s->n++;
    return 0;
}

static double ratio(int64_t a, int64_t b) { return b > 0 ? (double)a / (double)b : 0.0; }

static double f1_of(double p, double r) { return p + r > 0 ? 2 * p * r / (p + r) : 0.0; }

int tl_ml_metrics_compute(const tl_ml_scorer *s, tl_ml_metrics *m, tl_err *e)
{
    memset(m, 0, sizeof *m);
    int k = s->k;
    m->k = k;
    m->n = s->n;
    m->per_class = calloc((size_t)k, sizeof *m->per_class);
    if (!m->per_class)
        return tl_fail(e, "out of memory");
    int64_t tp = 0, fp = 0, fn = 0, exact = 0, wrong = 0, labels = 0;
    for (int64_t i = 0; i < s->n; i++) {
        int all = 1;
        for (int c = 0; c < k; c++) {
            int t = s->truth[(size_t)i * k + c], p = s->pred[(size_t)i * k + c];
            tl_ml_class *pc = &m->per_class[c];
            pc->support += t;
            pc->predicted += p;
            pc->tp += t && p;
            all &= t == p;
            wrong += t != p;
            labels += t;
        }
        exact += all;
    }
    int present = 0;
    double apsum = 0, sp = 0, sr = 0, sf = 0;
    for (int c = 0; c < k; c++) {
        tl_ml_class *pc = &m->per_class[c];
        tl_pr_summary ps;
        if (tl_pr_summarise(s->scores + c, k, s->truth + c, k, s->n, &ps, e)) {
            tl_ml_metrics_free(m);
            return -1;
        }
        pc->ap = ps.ap;
        if (ps.npos) {
            apsum += ps.ap;
            m->map_classes++;
        }
        pc->precision = ratio(pc->tp, pc->predicted);
        pc->recall = ratio(pc->tp, pc->support);
        pc->f1 = f1_of(pc->precision, pc->recall);
        tp += pc->tp;
        fp += pc->predicted - pc->tp;
        fn += pc->support - pc->tp;
        if (pc->support || pc->predicted) {
            present++;
            sp += pc->precision;
            sr += pc->recall;
            sf += pc->f1;
        }
    }
    /* micro AP: every (input, class) pair ranked together */
    tl_pr_summary all;
    if (tl_pr_summarise(s->scores, 1, s->truth, 1, s->n * k, &all, e)) {
        tl_ml_metrics_free(m);
        return -1;
    }
    m->map = m->map_classes ? apsum / m->map_classes : NAN;
    m->micro_ap = all.ap;
    m->micro_precision = ratio(tp, tp + fp);
    m->micro_recall = ratio(tp, tp + fn);
    m->micro_f1 = f1_of(m->micro_precision, m->micro_recall);
    if (present) {
        m->macro_precision = sp / present;
        m->macro_recall = sr / present;
        m->macro_f1 = sf / present;
    }
    m->exact = exact;
    m->subset_accuracy = ratio(exact, s->n);
    m->hamming_loss = s->n ? (double)wrong / ((double)s->n * k) : 0.0;
    m->labels_per_input = ratio(labels, s->n);
    return 0;
}

void tl_ml_metrics_free(tl_ml_metrics *m)
{
    free(m->per_class);
    memset(m, 0, sizeof *m);
}

#define NAME_COLS 24

static int cols(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* A name in exactly w columns, cut with '~' when longer. */
static void put_name(FILE *f, const char *s, int w)
{
    int c = cols(s), shown = c > w ? w - 1 : c;
    const char *p = s;
    for (int i = 0; i < shown; i++) {
        const char *q = p + 1;
        while (*q && ((unsigned char)*q & 0xc0) == 0x80)
            q++;
        fwrite(p, 1, (size_t)(q - p), f);
        p = q;
    }
    if (c > w)
        fputc('~', f);
    fprintf(f, "%*s", w - shown - (c > w), "");
}

void tl_ml_print_table(FILE *f, const tl_ml_metrics *m, const char *const *names, const float *thresholds)
{
    fprintf(f, "mAP      %.4f (mean average precision over the %d classes with a positive)\n", m->map,
            m->map_classes);
    fprintf(f, "micro AP %.4f\n", m->micro_ap);
    fprintf(f, "micro F1 %.4f  macro F1 %.4f (at the %s)\n", m->micro_f1, m->macro_f1,
            thresholds ? "thresholds" : "predicted labels");
    fprintf(f, "exact    %.4f (%lld of %lld with every label right)  Hamming loss %.4f  labels per input %.2f\n\n",
            m->subset_accuracy, (long long)m->exact, (long long)m->n, m->hamming_loss, m->labels_per_input);
    int w = (int)strlen("macro avg");
    char buf[16];
    for (int c = 0; c < m->k; c++) {
        const char *nm = names ? names[c] : (snprintf(buf, sizeof buf, "%d", c), buf);
        w = cols(nm) > w ? cols(nm) : w;
    }
    w = w > NAME_COLS ? NAME_COLS : w;
    put_name(f, "class", w);
    fprintf(f, "  %7s  %9s  %9s  %9s  %8s  %9s%s\n", "AP", "precision", "recall", "f1-score", "support", "predicted",
            thresholds ? "  threshold" : "");
    for (int c = 0; c < m->k; c++) {
        const tl_ml_class *pc = &m->per_class[c];
        const char *nm = names ? names[c] : (snprintf(buf, sizeof buf, "%d", c), buf);
        put_name(f, nm, w);
        if (isnan(pc->ap))
            fprintf(f, "  %7s", "-");
        else
            fprintf(f, "  %7.4f", pc->ap);
        fprintf(f, "  %9.4f  %9.4f  %9.4f  %8lld  %9lld", pc->precision, pc->recall, pc->f1, (long long)pc->support,
                (long long)pc->predicted);
        if (thresholds)
            fprintf(f, "  %9.4g", (double)thresholds[c]);
        fputc('\n', f);
    }
    fputc('\n', f);
    put_name(f, "micro avg", w);
    fprintf(f, "  %7.4f  %9.4f  %9.4f  %9.4f\n", m->micro_ap, m->micro_precision, m->micro_recall, m->micro_f1);
    put_name(f, "macro avg", w);
    fprintf(f, "  %7.4f  %9.4f  %9.4f  %9.4f\n", m->map, m->macro_precision, m->macro_recall, m->macro_f1);
}

void tl_ml_print_json_members(FILE *f, const tl_ml_metrics *m, const char *const *names, const float *thresholds)
{
    fprintf(f, ",\"multilabel\":true,\"n\":%lld", (long long)m->n);
    tl_json_key_number(f, "mAP", m->map);
    fprintf(f, ",\"map_classes\":%d", m->map_classes);
    tl_json_key_number(f, "micro_AP", m->micro_ap);
    tl_json_key_number(f, "micro_precision", m->micro_precision);
    tl_json_key_number(f, "micro_recall", m->micro_recall);
    tl_json_key_number(f, "micro_f1", m->micro_f1);
    tl_json_key_number(f, "macro_precision", m->macro_precision);
    tl_json_key_number(f, "macro_recall", m->macro_recall);
    tl_json_key_number(f, "macro_f1", m->macro_f1);
    tl_json_key_number(f, "subset_accuracy", m->subset_accuracy);
    tl_json_key_number(f, "hamming_loss", m->hamming_loss);
    tl_json_key_number(f, "labels_per_input", m->labels_per_input);
    char buf[16];
    fputs(",\"classes\":[", f);
    for (int c = 0; c < m->k; c++) {
        if (c)
            fputc(',', f);
        tl_json_write_string(f, names ? names[c] : (snprintf(buf, sizeof buf, "%d", c), buf));
    }
    fputs("],\"per_class\":[", f);
    for (int c = 0; c < m->k; c++) {
        const tl_ml_class *pc = &m->per_class[c];
        fputs(c ? ",{\"class\":" : "{\"class\":", f);
        tl_json_write_string(f, names ? names[c] : (snprintf(buf, sizeof buf, "%d", c), buf));
        tl_json_key_number(f, "ap", pc->ap);
        tl_json_key_number(f, "precision", pc->precision);
        tl_json_key_number(f, "recall", pc->recall);
        tl_json_key_number(f, "f1", pc->f1);
        fprintf(f, ",\"support\":%lld,\"predicted\":%lld", (long long)pc->support, (long long)pc->predicted);
        if (thresholds)
            tl_json_key_number(f, "threshold", (double)thresholds[c]);
        fputc('}', f);
    }
    fputc(']', f);
}

/* ---- the figure ---- */

typedef struct {
    int c;
    double ap;
} class_ap;

static int by_ap_desc(const void *a, const void *b)
{
    const class_ap *x = a, *y = b;
    if (x->ap != y->ap)
        return x->ap > y->ap ? -1 : 1;
    return x->c - y->c;
}

/* One curve as (recall, precision) points, starting at recall 0. */
static int curve(const float *scores, int stride, const unsigned char *truth, int64_t n, double **x, double **y,
                 int *npts, tl_err *e)
{
    float *p, *r;
    int64_t np;
    if (tl_pr_curve(scores, stride, truth, stride, n, &p, &r, &np, e))
        return -1;
    *x = malloc(((size_t)np + 1) * sizeof **x);
    *y = malloc(((size_t)np + 1) * sizeof **y);
    if (!*x || !*y) {
        free(p), free(r), free(*x), free(*y);
        return tl_fail(e, "out of memory");
    }
    (*x)[0] = 0;
    (*y)[0] = np ? p[0] : 1;
    for (int64_t j = 0; j < np; j++) {
        (*x)[j + 1] = r[j];
        (*y)[j + 1] = p[j];
    }
    *npts = (int)np + 1;
    free(p), free(r);
    return 0;
}

int tl_ml_plot(const tl_ml_scorer *s, const tl_ml_metrics *m, const char *const *names, const char *title,
               const char *path, tl_err *e)
{
    int k = s->k, rc = -1;
    class_ap *order = calloc((size_t)k + 1, sizeof *order);
    enum { MAXC = 8 };
    tl_series ser[MAXC + 1];
    double *xs[MAXC + 1] = {0}, *ys[MAXC + 1] = {0};
    char legend[MAXC + 1][96];
    const char **barnames = calloc((size_t)k + 1, sizeof *barnames);
    double *aps = calloc((size_t)k + 1, sizeof *aps);
    char (*idx)[16] = calloc((size_t)k + 1, sizeof *idx);
    tl_figure *fig = NULL;
    int ns = 0, nap = 0;
    if (!order || !barnames || !aps || !idx) {
        tl_fail(e, "out of memory");
        goto out;
    }
    for (int c = 0; c < k; c++) {
        snprintf(idx[c], sizeof idx[c], "%d", c);
        barnames[c] = names ? names[c] : idx[c];
        aps[c] = m->per_class[c].ap;
        if (!isnan(m->per_class[c].ap))
            order[nap++] = (class_ap){c, m->per_class[c].ap};
    }
    qsort(order, (size_t)nap, sizeof *order, by_ap_desc);
    /* which classes get a curve: all of them, or the best and worst three */
    int pick[MAXC], npick = 0;
    if (nap <= MAXC) {
        for (int j = 0; j < nap; j++)
            pick[npick++] = order[j].c;
    } else {
        for (int j = 0; j < 3; j++)
            pick[npick++] = order[j].c;
        for (int j = nap - 3; j < nap; j++)
            pick[npick++] = order[j].c;
    }
    memset(ser, 0, sizeof ser);
    for (int j = 0; j < npick; j++, ns++) {
        int c = pick[j];
        if (curve(s->scores + c, k, s->truth + c, s->n, &xs[ns], &ys[ns], &ser[ns].n, e))
            goto out;
        snprintf(legend[ns], sizeof legend[ns], "%.60s (AP %.3f)", barnames[c], m->per_class[c].ap);
        ser[ns] = (tl_series){legend[ns], ser[ns].n, xs[ns], ys[ns], ns, 0, 0};
    }
    if (curve(s->scores, 1, s->truth, s->n * k, &xs[ns], &ys[ns], &ser[ns].n, e))
        goto out;
    snprintf(legend[ns], sizeof legend[ns], "micro-average (AP %.3f)", m->micro_ap);
    ser[ns] = (tl_series){legend[ns], ser[ns].n, xs[ns], ys[ns], 6, 1, 0}; /* black, dashed */
    ns++;
    tl_line_panel lp;
    tl_line_panel_init(&lp);
    char ptitle[96];
    snprintf(ptitle, sizeof ptitle, nap <= MAXC ? "precision-recall, every class"
                                                : "precision-recall, the 3 best and 3 worst classes by AP");
    lp.title = ptitle;
    lp.xlabel = "recall";
    lp.ylabel = "precision";
    lp.xmin = lp.ymin = 0;
    lp.xmax = lp.ymax = 1;
    lp.nseries = ns;
    lp.series = ser;
    char btitle[96];
    snprintf(btitle, sizeof btitle, "average precision per class (mAP %.3f)", m->map);
    if (!(fig = tl_figure_new(1240, 620, 1, 2, title, e)) || tl_figure_lines(fig, 0, &lp, e) ||
        tl_figure_bars(fig, 1, btitle, "AP", k, barnames, aps, 0, 1, e) || tl_figure_write(fig, path, e))
        goto out;
    rc = 0;
out:
    tl_figure_free(fig);
    for (int j = 0; j <= MAXC; j++)
        free(xs[j]), free(ys[j]);
    free(order);
    free(barnames);
    free(aps);
    free(idx);
    return rc;
}
