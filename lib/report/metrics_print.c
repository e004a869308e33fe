/* Text and JSON renderings of metrics and confusion matrices. Column widths
 * count UTF-8 code points, so non-ASCII class names stay aligned (for
 * scripts whose glyphs are one column wide). */
#include "calibration.h"
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
    fprintf(f, "accuracy %.4f (%lld of %lld)\n", m->accuracy, (long long)m->correct, (long long)m->n);
    fprintf(f, "balanced accuracy %.4f (mean per-class recall)\n\n", m->balanced_accuracy);
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
    /* Single-label data: micro precision, recall and F1 all equal the accuracy. */
    put_cell(f, "micro avg", w, 1);
    fprintf(f, "  %9.4f  %9.4f  %9.4f  %9lld\n", m->accuracy, m->accuracy, m->micro_f1, (long long)m->n);
    put_cell(f, "macro avg", w, 1);
    fprintf(f, "  %9.4f  %9.4f  %9.4f  %9lld\n", m->macro_precision, m->macro_recall, m->macro_f1, (long long)m->n);
    put_cell(f, "weighted avg", w, 1);
    fprintf(f, "  %9.4f  %9.4f  %9.4f  %9lld\n", wp * inv, wr * inv, m->weighted_f1, (long long)m->n);
    if (hidden)
        fprintf(f, "(%d classes absent from both the data and the predictions not shown)\n", hidden);
}

typedef struct {
    int64_t count;
    uint64_t key;
} cell;

static int by_count(const void *a, const void *b)
{
    const cell *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return (x->key > y->key) - (x->key < y->key);
}

/* A matrix of thousands of classes is no table: its non-zero cells, the
 * most frequent first. */
static void print_cells(FILE *f, const tl_confusion *c, const char *const *class_names)
{
    int64_t n = c->nsorted;
    for (int i = 0; i < c->k; i++)
        n += c->diag[i] > 0;
    cell *v = malloc(((size_t)n + 1) * sizeof *v);
    if (!v) {
        fprintf(f, "(confusion cells of %d classes: out of memory)\n", c->k);
        return;
    }
    int64_t k = 0;
    for (int i = 0; i < c->k; i++)
        if (c->diag[i])
            v[k++] = (cell){c->diag[i], (uint64_t)i << 32 | (uint32_t)i};
    for (int64_t i = 0; i < c->nsorted; i++)
        v[k++] = (cell){c->cell_count[i], c->cell[i]};
    qsort(v, (size_t)k, sizeof *v, by_count);
    char a[32], b[32];
    fprintf(f, "confusion of %d classes, %lld non-zero cells (true -> predicted: count):\n", c->k, (long long)k);
    for (int64_t i = 0; i < k; i++)
        fprintf(f, "  %s -> %s: %lld\n", class_name(class_names, (int)(v[i].key >> 32), a, sizeof a),
                class_name(class_names, (int)(uint32_t)v[i].key, b, sizeof b), (long long)v[i].count);
    free(v);
}

void tl_confusion_print(FILE *f, const tl_confusion *c, const char *const *class_names)
{
    static const char corner[] = "true \\ pred";
    int k = c->k;
    if (!c->m) {
        print_cells(f, c, class_names);
        return;
    }
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
void tl_json_key_number(FILE *f, const char *k, double v)
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
    tl_json_key_number(f, "accuracy", m->accuracy);
    tl_json_key_number(f, "balanced_accuracy", m->balanced_accuracy);
    tl_json_key_number(f, "macro_precision", m->macro_precision);
    tl_json_key_number(f, "macro_recall", m->macro_recall);
    tl_json_key_number(f, "macro_f1", m->macro_f1);
    tl_json_key_number(f, "micro_f1", m->micro_f1);
    tl_json_key_number(f, "weighted_f1", m->weighted_f1);
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
        tl_json_key_number(f, "precision", s->precision);
        tl_json_key_number(f, "recall", s->recall);
        tl_json_key_number(f, "f1", s->f1);
        fprintf(f, ",\"support\":%lld,\"predicted\":%lld}", (long long)s->support, (long long)s->predicted);
    }
    fputc(']', f);
    if (c && !c->m && c->k) {
        /* sparse: the non-zero cells, by class index */
        fputs(",\"confusion_cells\":[", f);
        int first = 1;
        for (int t = 0; t < c->k; t++)
            if (c->diag[t]) {
                fprintf(f, "%s[%d,%d,%lld]", first ? "" : ",", t, t, (long long)c->diag[t]);
                first = 0;
            }
        for (int64_t i = 0; i < c->nsorted; i++) {
            fprintf(f, "%s[%d,%d,%lld]", first ? "" : ",", (int)(c->cell[i] >> 32), (int)(uint32_t)c->cell[i],
                    (long long)c->cell_count[i]);
            first = 0;
        }
        fputc(']', f);
    }
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

void tl_calibration_print(FILE *f, const tl_calibration *c)
{
    fprintf(f, "calibration (%d bins)  ECE %.4f  MCE %.4f  NLL %.4f  Brier %.4f\n", c->nbins, c->ece, c->mce, c->nll,
            c->brier);
    fprintf(f, "  %-13s  %9s  %10s  %9s  %8s\n", "confidence", "count", "mean conf", "accuracy", "gap");
    for (int b = 0; b < c->nbins; b++) {
        if (!c->bin_count[b])
            continue;
        char range[32];
        snprintf(range, sizeof range, "%.3f-%.3f", (double)b / c->nbins, (double)(b + 1) / c->nbins);
        fprintf(f, "  %-13s  %9lld  %10.4f  %9.4f  %+8.4f\n", range, (long long)c->bin_count[b],
                c->bin_confidence[b], c->bin_accuracy[b], c->bin_accuracy[b] - c->bin_confidence[b]);
    }
}

void tl_calibration_print_json(FILE *f, const tl_calibration *c)
{
    static const char *const names[] = {"ece", "mce", "nll", "brier", "mean_confidence"};
    double v[5] = {NAN, NAN, NAN, NAN, NAN};
    if (c) {
        v[0] = c->ece;
        v[1] = c->mce;
        v[2] = c->nprob ? c->nll : NAN;
        v[3] = c->nprob ? c->brier : NAN;
        v[4] = c->mean_confidence;
    }
    for (int i = 0; i < 5; i++)
        tl_json_key_number(f, names[i], v[i]);
    if (!c) {
        fputs(",\"nbins\":null,\"bins\":[]", f);
        return;
    }
    fprintf(f, ",\"nbins\":%d,\"bins\":[", c->nbins);
    for (int b = 0; b < c->nbins; b++) {
        fputs(b ? ",{" : "{", f);
        /* Not "accuracy" or "correct": scripts that grep the report's one
         * "accuracy" or "correct" out of the line must not find a bin's. */
        fprintf(f, "\"count\":%lld,\"correct_count\":%lld", (long long)c->bin_count[b], (long long)c->bin_correct[b]);
        tl_json_key_number(f, "lower", (double)b / c->nbins);
        tl_json_key_number(f, "upper", (double)(b + 1) / c->nbins);
        tl_json_key_number(f, "confidence", c->bin_count[b] ? c->bin_confidence[b] : NAN);
        tl_json_key_number(f, "bin_accuracy", c->bin_count[b] ? c->bin_accuracy[b] : NAN);
        fputc('}', f);
    }
    fputc(']', f);
}
