/* Confusion matrix accumulation and the metrics derived from it. */
#include "metrics.h"

#include <stdlib.h>
#include <string.h>

int tl_confusion_init(tl_confusion *c, int k, tl_err *e)
{
    memset(c, 0, sizeof *c);
    if (k < 1)
        return tl_fail(e, "confusion matrix needs at least 1 class, got %d", k);
    c->diag = tl_alloc_array((size_t)k, sizeof *c->diag);
    c->support = tl_alloc_array((size_t)k, sizeof *c->support);
    c->predicted = tl_alloc_array((size_t)k, sizeof *c->predicted);
    if (k <= TL_CONFUSION_DENSE_MAX)
        c->m = tl_alloc_array((size_t)k * (size_t)k, sizeof *c->m);
    if (!c->diag || !c->support || !c->predicted || (k <= TL_CONFUSION_DENSE_MAX && !c->m)) {
        tl_confusion_free(c);
        return tl_fail(e, "out of memory for a confusion matrix of %d classes", k);
    }
    c->k = k;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Sorts the cells added since the last merge and merges them with the
 * sorted ones: run when the unsorted tail outgrows the sorted part, so an
 * add costs O(log) amortised and memory stays within twice the distinct
 * cells plus the recent adds. */
static int merge_cells(tl_confusion *c)
{
    int64_t tail = c->ncells - c->nsorted;
    if (tail <= 0)
        return 0;
    uint64_t *t = c->cell + c->nsorted;
    qsort(t, (size_t)tail, sizeof *t, cmp_u64);
    /* collapse the tail (counts 1 each) into (key, count) runs in place */
    int64_t nt = 0;
    for (int64_t i = 0; i < tail; i++) {
        if (nt && t[nt - 1] == t[i]) {
            c->cell_count[c->nsorted + nt - 1]++;
        } else {
            t[nt] = t[i];
            c->cell_count[c->nsorted + nt] = 1;
            nt++;
        }
    }
    /* merge [0, nsorted) and the nt tail runs into a new array */
    uint64_t *nk = malloc((size_t)(c->nsorted + nt + 1) * sizeof *nk);
    int64_t *nc = malloc((size_t)(c->nsorted + nt + 1) * sizeof *nc);
    if (!nk || !nc) {
        free(nk);
        free(nc);
        return -1;
    }
    int64_t i = 0, j = 0, o = 0;
    while (i < c->nsorted || j < nt) {
        uint64_t a = i < c->nsorted ? c->cell[i] : UINT64_MAX, b = j < nt ? t[j] : UINT64_MAX;
        if (i < c->nsorted && (j >= nt || a <= b)) {
            nk[o] = a;
            nc[o] = c->cell_count[i++];
            if (j < nt && a == b)
                nc[o] += c->cell_count[c->nsorted + j++];
        } else {
            nk[o] = b;
            nc[o] = c->cell_count[c->nsorted + j++];
        }
        o++;
    }
    free(c->cell);
    free(c->cell_count);
    c->cell = nk;
    c->cell_count = nc;
    c->ncells = c->nsorted = o;
    c->cap_cells = o + 1;
    return 0;
}

void tl_confusion_add(tl_confusion *c, int truth, int pred)
{
    if (truth < 0 || truth >= c->k || pred < 0 || pred >= c->k)
        return;
    c->support[truth]++;
    c->predicted[pred]++;
    if (truth == pred)
        c->diag[truth]++;
    if (c->m) {
        c->m[(size_t)truth * c->k + pred]++;
        return;
    }
    if (truth == pred)
        return;
    if (c->ncells == c->cap_cells) {
        if (c->ncells - c->nsorted > c->nsorted && c->ncells - c->nsorted >= 1024) {
            if (merge_cells(c))
                c->failed = 1;
        }
        if (c->ncells == c->cap_cells) {
            int64_t nc = c->cap_cells ? 2 * c->cap_cells : 1024;
            uint64_t *nk = realloc(c->cell, (size_t)nc * sizeof *nk);
            if (nk)
                c->cell = nk;
            int64_t *nn = nk ? realloc(c->cell_count, (size_t)nc * sizeof *nn) : NULL;
            if (nn)
                c->cell_count = nn;
            if (!nn) {
                c->failed = 1;
                return;
            }
            c->cap_cells = nc;
        }
    }
    c->cell[c->ncells++] = (uint64_t)truth << 32 | (uint32_t)pred;
}

int tl_confusion_finish(tl_confusion *c, tl_err *e)
{
    if (c->failed || (!c->m && merge_cells(c)))
        return tl_fail(e, "out of memory for the confusion matrix of %d classes", c->k);
    return 0;
}

int64_t tl_confusion_at(const tl_confusion *c, int truth, int pred)
{
    if (truth < 0 || truth >= c->k || pred < 0 || pred >= c->k)
        return 0;
    if (c->m)
        return c->m[(size_t)truth * c->k + pred];
    if (truth == pred)
        return c->diag[truth];
    uint64_t key = (uint64_t)truth << 32 | (uint32_t)pred;
    int64_t lo = 0, hi = c->nsorted;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (c->cell[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c->nsorted && c->cell[lo] == key ? c->cell_count[lo] : 0;
}

void tl_confusion_free(tl_confusion *c)
{
    if (!c)
        return;
    tl_free(c->m);
    tl_free(c->diag);
    tl_free(c->support);
    tl_free(c->predicted);
    free(c->cell);
    free(c->cell_count);
    memset(c, 0, sizeof *c);
}

static double ratio(int64_t a, int64_t b) { return b > 0 ? (double)a / (double)b : 0.0; }

int tl_metrics_compute(tl_confusion *c, tl_metrics *out, tl_err *e)
{
    memset(out, 0, sizeof *out);
    if (!c || !c->support || c->k < 1)
        return tl_fail(e, "empty confusion matrix");
    if (tl_confusion_finish(c, e))
        return -1;
    int k = c->k;
    out->per_class = tl_alloc_array((size_t)k, sizeof *out->per_class);
    if (!out->per_class)
        return tl_fail(e, "out of memory for metrics of %d classes", k);
    out->k = k;
    /* from the per-class counts: O(k), not a pass over k*k cells */
    for (int t = 0; t < k; t++) {
        out->n += c->support[t];
        out->correct += c->diag[t];
        out->per_class[t].support = c->support[t];
        out->per_class[t].predicted = c->predicted[t];
    }
    int present = 0, supported = 0;
    double sum_p = 0, sum_r = 0, sum_f = 0, wsum_f = 0, sum_recall_supported = 0;
    for (int i = 0; i < k; i++) {
        tl_class_stats *s = &out->per_class[i];
        int64_t tp = c->diag[i];
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
