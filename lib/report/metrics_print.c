/* Text and JSON renderings of metrics and confusion matrices. Column widths
 * count UTF-8 code points, so non-ASCII class names stay aligned (for
 * scripts whose glyphs are one column wide). */
#include "json.h"
#include "metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_COLS 24 /* longest class name shown in the table */
#define CELL_MAX_COLS 8  /* longest class name heading a confusion column */

/* Class i's name, or its index written into buf. */
static const char *class_name(const char *const *names, int i, char *buf, size_t n)
{
    if (names && names[i])
        return names[i];
    snprintf(buf, n, "%d", i);
    return buf;
}

static int cols(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* Writes s in exactly w columns: cut to w-1 code points plus '~' when too
 * long, padded with spaces on the right (left-aligned) or left. */
static void put_cell(FILE *f, const char *s, int w, int left)
{
    int c = cols(s);
    int cut = c > w;
    int shown = cut ? w - 1 : c;
    if (!left)
        fprintf(f, "%*s", w - shown - cut, "");
    const char *p = s;
    for (int i = 0; i < shown; i++) {
        const char *q = p + 1;
        while (*q && ((unsigned char)*q & 0xc0) == 0x80)
            q++;
        fwrite(p, 1, (size_t)(q - p), f);
        p = q;
    }
    if (cut)
        fputc('~', f);
    if (left)
        fprintf(f, "%*s", w - shown - cut, "");
}

static int name_width(const char *const *names, int k, int minw, int maxw)
{
    int w = minw;
    char buf[16];
    for (int i = 0; i < k; i++) {
        int c = cols(class_name(names, i, buf, sizeof buf));
        if (c > w)
            w = c;
    }
    return w > maxw ? maxw : w;
}

void tl_metrics_print_table(FILE *f, const tl_metrics *m, const char *const *class_names)
{
    fprintf(f, "accuracy %.4f (%lld of %lld)\n\n", m->accuracy, (long long)m->correct, (long long)m->n);
    int w = name_width(class_names, m->k, (int)strlen("weighted avg"), NAME_MAX_COLS);
    put_cell(f, "class", w, 1);
    fprintf(f, "  %9s  %9s  %9s  %9s\n", "precision", "recall", "f1-score", "support");
    double wp = 0, wr = 0;
    char buf[16];
    int hidden = 0;
    for (int i = 0; i < m->k; i++) {
        const tl_class_stats *s = &m->per_class[i];
        /* With many classes (ImageNet's 1000), rows for classes that occur
         * neither in the data nor in the predictions are all zero: skip. */
        if (m->k > 20 && s->support == 0 && s->predicted == 0) {
            hidden++;
            continue;
        }
        put_cell(f, class_name(class_names, i, buf, sizeof buf), w, 1);
        fprintf(f, "  %9.4f  %9.4f  %9.4f  %9lld\n", s->precision, s->recall, s->f1, (long long)s->support);
        wp += s->precision * (double)s->support;
        wr += s->recall * (double)s->support;
    }
    double inv = m->n > 0 ? 1.0 / (double)m->n : 0.0;
    fputc('\n', f);
    put_cell(f, "macro avg", w, 1);
    fprintf(f, "  %9.4f  %9.4f  %9.4f  %9lld\n", m->macro_precision, m->macro_recall, m->macro_f1, (long long)m->n);
    put_cell(f, "weighted avg", w, 1);
    fprintf(f, "  %9.4f  %9.4f  %9.4f  %9lld\n", wp * inv, wr * inv, m->weighted_f1, (long long)m->n);
    if (hidden)
        fprintf(f, "(%d classes absent from both the data and the predictions not shown)\n", hidden);
}

void tl_confusion_print(FILE *f, const tl_confusion *c, const char *const *class_names)
{
    static const char corner[] = "true \\ pred";
    int k = c->k;
    int64_t mx = 0;
    for (size_t i = 0; i < (size_t)k * k; i++)
        mx = c->m[i] > mx ? c->m[i] : mx;
    char buf[32];
    int cw = snprintf(buf, sizeof buf, "%lld", (long long)mx);
    int nw = name_width(class_names, k, 1, CELL_MAX_COLS);
    if (nw > cw)
        cw = nw;
    int rw = name_width(class_names, k, (int)strlen(corner), NAME_MAX_COLS);
    put_cell(f, corner, rw, 1);
    for (int p = 0; p < k; p++) {
        fputs("  ", f);
        put_cell(f, class_name(class_names, p, buf, sizeof buf), cw, 0);
    }
    fputc('\n', f);
    for (int t = 0; t < k; t++) {
        put_cell(f, class_name(class_names, t, buf, sizeof buf), rw, 1);
        for (int p = 0; p < k; p++)
            fprintf(f, "  %*lld", cw, (long long)c->m[(size_t)t * k + p]);
        fputc('\n', f);
    }
}

/* The shortest of %.15g..%.17g that reads back exactly (0.1 prints as
 * 0.1); non-finite values, which JSON lacks, print null. */
static void key(FILE *f, const char *k, double v)
{
    fprintf(f, ",\"%s\":", k);
    if (!isfinite(v)) {
        fputs("null", f);
        return;
    }
    char buf[32];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    fputs(buf, f);
}

void tl_metrics_print_json(FILE *f, const tl_metrics *m, const tl_confusion *c, const char *const *class_names)
{
    char buf[16];
    fprintf(f, "{\"n\":%lld,\"correct\":%lld", (long long)m->n, (long long)m->correct);
    key(f, "accuracy", m->accuracy);
    key(f, "macro_precision", m->macro_precision);
    key(f, "macro_recall", m->macro_recall);
    key(f, "macro_f1", m->macro_f1);
    key(f, "micro_f1", m->micro_f1);
    key(f, "weighted_f1", m->weighted_f1);
    fputs(",\"classes\":[", f);
    for (int i = 0; i < m->k; i++) {
        if (i)
            fputc(',', f);
        tl_json_write_string(f, class_name(class_names, i, buf, sizeof buf));
    }
    fputs("],\"per_class\":[", f);
    for (int i = 0; i < m->k; i++) {
        const tl_class_stats *s = &m->per_class[i];
        fputs(i ? ",{\"class\":" : "{\"class\":", f);
        tl_json_write_string(f, class_name(class_names, i, buf, sizeof buf));
        key(f, "precision", s->precision);
        key(f, "recall", s->recall);
        key(f, "f1", s->f1);
        fprintf(f, ",\"support\":%lld,\"predicted\":%lld}", (long long)s->support, (long long)s->predicted);
    }
    fputc(']', f);
    if (c && c->m) {
        fputs(",\"confusion\":[", f);
        for (int t = 0; t < c->k; t++) {
            fputs(t ? ",[" : "[", f);
            for (int p = 0; p < c->k; p++)
                fprintf(f, p ? ",%lld" : "%lld", (long long)c->m[(size_t)t * c->k + p]);
            fputc(']', f);
        }
        fputc(']', f);
    }
    fputs("}\n", f);
}
