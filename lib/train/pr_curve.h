/* One class of a multi-label problem, ranked by score: average precision
 * and the decision threshold with the best F1, from n scores and 0/1
 * truths. Shared by training (choosing thresholds, validating by mAP) and
 * report (tl-eval's figures and precision-recall plot). */
#ifndef TL_TRAIN_PR_CURVE_H
#define TL_TRAIN_PR_CURVE_H

#include "core.h"

typedef struct tl_pr_summary {
    int64_t npos, n;
    /* scikit-learn's average_precision_score: sum over the distinct
     * scores, highest first, of (R_j - R_{j-1}) P_j, where P_j and R_j are
     * the precision and recall of calling positive every score >= the j-th
     * (equal scores enter together). NAN when the class has no positive. */
    double ap;
    /* The rule tl uses to choose a class's threshold: among the distinct
     * scores s_j, the one whose "score >= s_j" has the highest F1 (on a
     * tie, the higher s_j: fewer false alarms), then halfway down to the
     * next lower distinct score (s_j itself when it is the lowest), so the
     * threshold separates the two. NAN when the class has no positive. */
    double threshold, best_f1;
} tl_pr_summary;

/* scores[i * sstride], truth[i * tstride] (nonzero = positive), i < n.
 * Needs n floats + n indices of scratch, allocated here. */
int tl_pr_summarise(const float *scores, int sstride, const unsigned char *truth, int tstride, int64_t n,
                    tl_pr_summary *out, tl_err *e);

/* The curve itself, one point per distinct score, highest first:
 * precision[j], recall[j] (npts of them, malloc'ed). */
int tl_pr_curve(const float *scores, int sstride, const unsigned char *truth, int tstride, int64_t n,
                float **precision, float **recall, int64_t *npts, tl_err *e);

#endif
