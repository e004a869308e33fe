/* Everything tl-eval reports about a classifier, gathered one input at a
 * time: the confusion matrix (from which tl_metrics derives accuracy,
 * precision, recall and F1), top-k hits, and calibration when the scores
 * are probabilities. Tools feed it from a network, a head or a predictions
 * file alike, so the figures mean the same whatever the source. */
#ifndef TL_REPORT_SCORE_H
#define TL_REPORT_SCORE_H

#include "calibration.h"
#include "metrics.h"

typedef struct tl_scorer {
    int k;             /* classes */
    int top_k;         /* the k of the reported top-k accuracy */
    int probabilities; /* scores are probabilities: calibration is measured */
    tl_confusion conf;
    tl_calibration cal; /* nbins = 0 when not probabilities */
    int64_t top_k_hits, top5_hits, unlabelled;
} tl_scorer;

/* top_k: the top-k to report, below k (one of k or more is an error of
 * kind TL_ERR_ARG, naming --top-k); 0: 5 (counted as top-k when below k).
 * nbins only matters with probabilities. */
int tl_scorer_init(tl_scorer *s, int k, int top_k, int probabilities, int nbins, tl_err *e);
void tl_scorer_free(tl_scorer *s);

/* One input: truth < 0 = unlabelled (counted, not scored); pred is the
 * predicted class (pred < 0: the best score, the first on ties); scores
 * holds k values, higher = more likely. Top-k counts the truth as a hit
 * when fewer than k classes score at least as high (ties count against). */
void tl_scorer_add(tl_scorer *s, int truth, int pred, const float *scores);

/* Scored (labelled) inputs so far. */
int64_t tl_scorer_count(const tl_scorer *s);

#endif
