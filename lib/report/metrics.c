/* Confusion matrix accumulation and the metrics derived from it. */
#include "metrics.h"

#include <string.h>

int tl_confusion_init(tl_confusion *c, int k, tl_err *e)
{
    c->k = 0;
    c->m = NULL;
    if (k < 1)
        return tl_fail(e, "confusion matrix needs at least 1 class, got %d", k);
    c->m = tl_alloc_array((size_t)k * (size_t)k, sizeof *c->m);
    if (!c->m)
        return tl_fail(e, "out of memory for a %d x %d confusion matrix", k, k);
    c->k = k;
    return 0;
}

void tl_confusion_add(tl_confusion *c, int truth, int pred)
{
    if (truth < 0 || truth >= c->k || pred < 0 || pred >= c->k)
        return;
    c->m[(size_t)truth * c->k + pred]++;
}

void tl_confusion_free(tl_confusion *c)
{
    if (!c)
        return;
    tl_free(c->m);
    c->m = NULL;
    c->k = 0;
}

static double ratio(int64_t a, int64_t b) { return b > 0 ? (double)a / (double)b : 0.0; }

int tl_metrics_compute(const tl_confusion *c, tl_metrics *out, tl_err *e)
{
    memset(out, 0, sizeof *out);
    if (!c || !c->m || c->k < 1)
        return tl_fail(e, "empty confusion matrix");
    int k = c->k;
    out->per_class = tl_alloc_array((size_t)k, sizeof *out->per_class);
    if (!out->per_class)
        return tl_fail(e, "out of memory for metrics of %d classes", k);
    out->k = k;
    for (int t = 0; t < k; t++)
        for (int p = 0; p < k; p++) {
            int64_t v = c->m[(size_t)t * k + p];
            out->n += v;
            out->per_class[t].support += v;
            out->per_class[p].predicted += v;
            if (t == p)
                out->correct += v;
        }
    int present = 0, supported = 0;
    double sum_p = 0, sum_r = 0, sum_f = 0, wsum_f = 0, sum_recall_supported = 0;
    for (int i = 0; i < k; i++) {
        tl_class_stats *s = &out->per_class[i];
        int64_t tp = c->m[(size_t)i * k + i];
        s->precision = ratio(tp, s->predicted);
        s->recall = ratio(tp, s->support);
        s->f1 = s->precision + s->recall > 0 ? 2 * s->precision * s->recall / (s->precision + s->recall) : 0.0;
        if (s->support > 0 || s->predicted > 0) {
            present++;
            sum_p += s->precision;
            sum_r += s->recall;
            sum_f += s->f1;
        }
        wsum_f += s->f1 * (double)s->support;
        if (s->support > 0) {
            supported++;
            sum_recall_supported += s->recall;
        }
    }
    out->balanced_accuracy = supported ? sum_recall_supported / supported : 0.0;
    out->accuracy = ratio(out->correct, out->n);
    out->micro_f1 = out->accuracy; /* single-label: micro precision = recall = accuracy */
    if (present > 0) {
        out->macro_precision = sum_p / present;
        out->macro_recall = sum_r / present;
        out->macro_f1 = sum_f / present;
    }
    out->weighted_f1 = out->n > 0 ? wsum_f / (double)out->n : 0.0;
    return 0;
}

void tl_metrics_free(tl_metrics *m)
{
    if (!m)
        return;
    tl_free(m->per_class);
    memset(m, 0, sizeof *m);
}
