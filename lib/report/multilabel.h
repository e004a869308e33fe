/* Scoring a multi-label classifier (tl-eval on a multi-label model or
 * predictions file): every input's scores, true labels and predicted
 * labels are kept, then
 *  - average precision per class and its mean, mAP (scikit-learn's
 *    average_precision_score, macro over the classes with at least one
 *    positive; train/pr_curve.h), and micro AP over all (input, class)
 *    pairs;
 *  - precision, recall and F1 of the predicted labels per class, their
 *    micro averages (counts summed over classes) and macro averages (over
 *    the classes that occur in the truth or the predictions, as
 *    metrics.h does for single-label data);
 *  - subset accuracy (every label right), Hamming loss (the fraction of
 *    (input, class) decisions that are wrong), labels per input.
 * The precision-recall figure shows the curves and the AP of every class. */
#ifndef TL_REPORT_MULTILABEL_H
#define TL_REPORT_MULTILABEL_H

#include "core.h"

#include <stdio.h>

typedef struct tl_ml_scorer {
    int k;
    int probabilities;     /* scores are probabilities (else decision values) */
    int64_t n, cap, unlabelled;
    float *scores;         /* n x k */
    unsigned char *truth;  /* n x k */
    unsigned char *pred;   /* n x k */
} tl_ml_scorer;

int tl_ml_scorer_init(tl_ml_scorer *s, int k, int probabilities, tl_err *e);
void tl_ml_scorer_free(tl_ml_scorer *s);
/* One input: truth NULL = unlabelled (counted, not scored); pred: k 0/1
 * decisions, or NULL to decide by thresholds (k; NULL: 0.5 for
 * probabilities, 0 for decision values): a class is predicted when its
 * score >= its threshold. */
int tl_ml_scorer_add(tl_ml_scorer *s, const unsigned char *truth, const unsigned char *pred, const float *scores,
                     const float *thresholds, tl_err *e);

typedef struct tl_ml_class {
    double ap;             /* NAN without a positive */
    double precision, recall, f1;
    int64_t support, predicted, tp;
} tl_ml_class;

typedef struct tl_ml_metrics {
    int k, map_classes;    /* classes in the mAP: those with a positive */
    int64_t n, exact;      /* inputs, and those with every label right */
    double map, micro_ap;
    double micro_precision, micro_recall, micro_f1, macro_precision, macro_recall, macro_f1;
    double subset_accuracy, hamming_loss, labels_per_input;
    tl_ml_class *per_class;
} tl_ml_metrics;

int tl_ml_metrics_compute(const tl_ml_scorer *s, tl_ml_metrics *m, tl_err *e);
void tl_ml_metrics_free(tl_ml_metrics *m);

/* The table: mAP and the averages, then one row per class (AP, precision,
 * recall, F1, support, threshold when given). */
void tl_ml_print_table(FILE *f, const tl_ml_metrics *m, const char *const *names, const float *thresholds);
/* The JSON members (",\"mAP\":...", no braces), for tl-eval's object:
 * "multilabel":true,"n","mAP","micro_AP","micro_precision","micro_recall",
 * "micro_f1","macro_precision","macro_recall","macro_f1","subset_accuracy",
 * "hamming_loss","labels_per_input","classes",
 * "per_class":[{"class","ap","precision","recall","f1","support","predicted","threshold"}]. */
void tl_ml_print_json_members(FILE *f, const tl_ml_metrics *m, const char *const *names, const float *thresholds);

/* Precision-recall curves (every class up to 8, else the 3 with the best
 * and the 3 with the worst AP, and the micro-average) beside a bar chart
 * of each class's AP; written to path (.svg or .png). */
int tl_ml_plot(const tl_ml_scorer *s, const tl_ml_metrics *m, const char *const *names, const char *title,
               const char *path, tl_err *e);

#endif
