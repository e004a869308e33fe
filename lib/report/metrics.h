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

typedef struct tl_confusion {
    int k;
    int64_t *m; /* k*k, row = true class, column = predicted */
} tl_confusion;

int tl_confusion_init(tl_confusion *c, int k, tl_err *e);
/* Out-of-range classes are ignored (callers validate labels first). */
void tl_confusion_add(tl_confusion *c, int truth, int pred);
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

/* With no samples every figure is 0. */
int tl_metrics_compute(const tl_confusion *c, tl_metrics *out, tl_err *e);
void tl_metrics_free(tl_metrics *m);

/* class_names may be NULL (classes are then shown by index); names are
 * truncated to keep columns aligned. Below the classes: micro, macro and
 * weighted averages (micro = accuracy for single-label data). */
void tl_metrics_print_table(FILE *f, const tl_metrics *m, const char *const *class_names);
void tl_confusion_print(FILE *f, const tl_confusion *c, const char *const *class_names);
/* One JSON object on one line, newline-terminated:
 * {"n":..,"correct":..,"accuracy":..,"balanced_accuracy":..,"macro_precision":..,"macro_recall":..,"macro_f1":..,
 *  "micro_f1":..,"weighted_f1":..,"classes":[..],
 *  "per_class":[{"class":..,"precision":..,"recall":..,"f1":..,"support":..,"predicted":..}],
 *  "confusion":[[..],..]}
 * c may be NULL (no "confusion" key). */
void tl_metrics_print_json(FILE *f, const tl_metrics *m, const tl_confusion *c, const char *const *class_names);
/* ,"key":number with the fewest digits that read back exactly (null when
 * not finite): for members added to an object. */
void tl_json_key_number(FILE *f, const char *key, double v);

#endif
