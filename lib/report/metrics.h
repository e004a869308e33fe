/* Classification metrics from a confusion matrix, and their printing.
 *
 * Conventions (scikit-learn's, with zero_division=0):
 *   precision = tp / predicted, 0 when the class was never predicted;
 *   recall    = tp / support,   0 when the class has no true samples;
 *   f1        = 2 p r / (p + r), 0 when p + r = 0.
 * Macro averages run over the classes that occur in the truth or the
 * predictions (as classification_report with labels left to default): a
 * class absent from both does not drag the averages down. weighted_f1
 * weights by support; micro_f1 equals accuracy for single-label data. */
#ifndef TL_METRICS_H
#define TL_METRICS_H

#include "core.h"

#include <stdio.h>

/* Up to TL_CONFUSION_DENSE_MAX classes the matrix is dense (32 MiB at
 * most); above, memory follows the data, not k*k (20,000 classes would be
 * 3.2 GB): per-class counts, and one entry per distinct off-diagonal cell
 * that occurred (kept sorted, merged as they come). */
#define TL_CONFUSION_DENSE_MAX 2048

typedef struct tl_confusion {
    int k;
    int64_t *m; /* k*k, row = true class, column = predicted; NULL above TL_CONFUSION_DENSE_MAX */
    int64_t *diag, *support, *predicted; /* k each */
    /* sparse: off-diagonal cells (truth << 32 | pred) and their counts,
     * [0, nsorted) sorted and merged, [nsorted, ncells) still to merge */
    uint64_t *cell;
    int64_t *cell_count;
    int64_t ncells, nsorted, cap_cells;
    int failed; /* out of memory while adding: the figures are incomplete */
} tl_confusion;

int tl_confusion_init(tl_confusion *c, int k, tl_err *e);
/* Out-of-range classes are ignored (callers validate labels first). */
void tl_confusion_add(tl_confusion *c, int truth, int pred);
/* Merges what was added (needed before tl_confusion_at); -1 if an add ran
 * out of memory. tl_metrics_compute calls it. */
int tl_confusion_finish(tl_confusion *c, tl_err *e);
/* One cell (after tl_confusion_finish): O(1) dense, O(log cells) sparse. */
int64_t tl_confusion_at(const tl_confusion *c, int truth, int pred);
void tl_confusion_free(tl_confusion *c);

typedef struct tl_class_stats {
    double precision, recall, f1;
    int64_t support, predicted;
} tl_class_stats;

typedef struct tl_metrics {
    int k;
    int64_t n, correct;
    double accuracy, macro_f1, micro_f1, weighted_f1, macro_precision, macro_recall, balanced_accuracy;
    tl_class_stats *per_class; /* k */
} tl_metrics;

/* With no samples every figure is 0. Finishes c (tl_confusion_finish);
 * time O(k + cells). */
int tl_metrics_compute(tl_confusion *c, tl_metrics *out, tl_err *e);
void tl_metrics_free(tl_metrics *m);

/* class_names may be NULL (classes are then shown by index); names are
 * truncated to keep columns aligned. Below the classes: micro, macro and
 * weighted averages (micro = accuracy for single-label data). */
void tl_metrics_print_table(FILE *f, const tl_metrics *m, const char *const *class_names);
/* A sparse matrix (more than TL_CONFUSION_DENSE_MAX classes) prints its
 * non-zero cells, "true -> predicted: count", most frequent first. */
void tl_confusion_print(FILE *f, const tl_confusion *c, const char *const *class_names);
/* One JSON object on one line, newline-terminated:
 * {"n":..,"correct":..,"accuracy":..,"balanced_accuracy":..,"macro_precision":..,"macro_recall":..,"macro_f1":..,
 *  "micro_f1":..,"weighted_f1":..,"classes":[..],
 *  "per_class":[{"class":..,"precision":..,"recall":..,"f1":..,"support":..,"predicted":..}],
 *  "confusion":[[..],..]}
 * c may be NULL (no "confusion" key). A sparse matrix gives instead
 * "confusion_cells":[[true,predicted,count],..] (its non-zero cells, by
 * class index). */
void tl_metrics_print_json(FILE *f, const tl_metrics *m, const tl_confusion *c, const char *const *class_names);
/* ,"key":number with the fewest digits that read back exactly (null when
 * not finite): for members added to an object. */
void tl_json_key_number(FILE *f, const char *key, double v);

#endif
