/* Calibration of predicted probabilities: does a confidence of 0.8 mean
 * right 80 % of the time?
 *
 * Each scored input contributes its confidence (the probability of the
 * class that was predicted) and whether that prediction was right.
 * Confidences fall into nbins equal-width bins over [0, 1]: bin b holds
 * (b/B, (b+1)/B], and bin 0 also holds 0 (the convention of Guo et al.
 * 2017 and of most reference code).
 *
 *   ECE   = sum_b n_b/N |accuracy_b - confidence_b|  (expected calibration error)
 *   MCE   = max over non-empty bins of |accuracy_b - confidence_b|
 *   NLL   = mean of -ln p(true class), p clipped below at 1e-15 (log loss)
 *   Brier = mean of sum_k (p_k - [k = true])^2, in [0, 2]
 *
 * Only meaningful for probabilities (softmax outputs): decision values of
 * an SVM are not calibrated to anything, and callers report them as not
 * applicable instead of feeding them here. */
#ifndef TL_REPORT_CALIBRATION_H
#define TL_REPORT_CALIBRATION_H

#include "core.h"

#include <stdint.h>
#include <stdio.h>

#define TL_CALIBRATION_BINS 15
#define TL_CALIBRATION_MAX_BINS 1000
#define TL_CALIBRATION_EPS 1e-15

typedef struct tl_calibration {
    int nbins;
    int64_t n, correct;
    int64_t nprob;           /* inputs added with their probabilities (NLL, Brier) */
    /* per bin, accumulated by tl_calibration_add */
    int64_t *bin_count, *bin_correct;
    double *bin_conf_sum;
    double nll_sum, brier_sum;
    /* filled by tl_calibration_finish: per-bin means (0 for empty bins) */
    double *bin_confidence, *bin_accuracy;
    double ece, mce, nll, brier, mean_confidence;
} tl_calibration;

/* nbins in 1..TL_CALIBRATION_MAX_BINS. */
int tl_calibration_init(tl_calibration *c, int nbins, tl_err *e);
void tl_calibration_free(tl_calibration *c);

/* One input: p = k probabilities, truth and pred class indices in 0..k-1
 * (out-of-range inputs are ignored, as by tl_confusion_add). */
void tl_calibration_add(tl_calibration *c, const float *p, int k, int truth, int pred);
/* Confidence and correctness only: counts for the bins, ECE and MCE, not
 * for NLL and Brier. */
void tl_calibration_add_confidence(tl_calibration *c, double confidence, int correct);

/* Derives the figures above from what was added; with no input all are 0. */
void tl_calibration_finish(tl_calibration *c);

/* The bin a confidence falls into. */
int tl_calibration_bin(double confidence, int nbins);

/* Printing (metrics_print.c), after tl_calibration_finish.
 * Text: a summary line, then one row per non-empty bin. */
void tl_calibration_print(FILE *f, const tl_calibration *c);
/* JSON members to append inside an object, each with a leading comma:
 * ,"ece":..,"mce":..,"nll":..,"brier":..,"mean_confidence":..,"nbins":..,
 * "bins":[{"count":..,"correct_count":..,"lower":..,"upper":..,"confidence":..,"bin_accuracy":..}]
 * With c NULL (scores that are not probabilities) every figure is null and
 * bins is []. Every bin is listed, empty ones with null means. */
void tl_calibration_print_json(FILE *f, const tl_calibration *c);

#endif
