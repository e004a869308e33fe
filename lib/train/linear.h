/* Linear classifiers on feature vectors: multinomial logistic regression
 * (L-BFGS) and one-vs-rest linear SVM (liblinear's dual coordinate descent).
 *
 * Both standardise the features internally (per-dimension mean and
 * population std over the training set; a constant dimension gets std 1),
 * train on the standardised data, and fold the standardisation back into
 * the weights, so a model applies directly to raw features:
 *     scores = W x + b.
 * For logistic regression the scores are logits (softmax gives class
 * probabilities); for the SVM they are decision values.
 *
 * Training is deterministic: the same input gives bit-identical weights
 * whatever the thread count (work is split into fixed pieces and reduced in
 * a fixed order; the SVM's visiting order comes from a fixed-seed RNG). */
#ifndef TL_LINEAR_H
#define TL_LINEAR_H

#include "core.h"

/* TL_HEAD_LOGREG, TL_HEAD_SVM: lib/tl.h (public); the prototype heads (prototype.h) are internal. */
enum { TL_HEAD_NCM = TL_HEAD_SVM + 1, TL_HEAD_KNN };

typedef struct tl_linear_opts {
    int kind;       /* TL_HEAD_LOGREG or TL_HEAD_SVM */
    /* Inverse regularisation strength as in scikit-learn / liblinear:
     * objective = 0.5*||W||^2 + C * sum_i loss_i. Default 1.0. */
    double C;
    /* logreg: L-BFGS iterations (default 1000); svm: passes over the data
     * per class (default 1000, liblinear's limit). */
    int max_iter;
    /* <= 0 picks the kind's default.
     * logreg: stop when max|gradient| of the objective divided by C*n
     *         (mean loss + penalty/(C*n), scikit-learn's scaling) <= tol; default 1e-5.
     * svm:    liblinear's stopping tolerance on the projected-gradient spread; default 0.1. */
    double tol;
    /* Learn b. logreg: b is not regularised. svm: as liblinear, b is the
     * weight of an appended constant feature 1, so it is lightly
     * regularised along with W. */
    int fit_intercept;
    /* Loss weights by class (k doubles, NULL = 1; class_weights.h computes
     * balanced ones). Single-label: the loss of a sample of class c weighs
     * class_weight[c] (scikit-learn's class_weight; the SVM's one-vs-rest
     * problem for c weighs its positives so, as liblinear's -wi).
     * Multi-label: class c's problem weighs its positives pos_weight[c]
     * and its negatives neg_weight[c]. */
    const double *class_weight;
    const double *pos_weight, *neg_weight;
} tl_linear_opts;

void tl_linear_opts_default(tl_linear_opts *o);

typedef struct tl_linear_model {
    int d, k;
    float *W; /* k x d, row-major, for raw (unstandardised) features */
    float *b; /* k */
    int kind; /* which head produced it: how to read the scores */
    int multilabel; /* one-vs-rest on label sets: scores are per-class logits (sigmoid) or decision values */
} tl_linear_model;

/* X: n x d row-major, y: labels in [0, k). pool may be NULL (serial).
 * log (may be NULL) gets progress lines such as
 * "logreg: iter 37 loss 0.1234 |g| 1e-05". On failure *out is left empty. */
int tl_linear_train(const float *X, const int *y, int64_t n, int d, int k, const tl_linear_opts *o,
                    tl_pool *pool, tl_log_fn log, void *log_user, tl_linear_model *out, tl_err *e);
/* Multi-label: Y is n x k, 1 where sample i has label c; one binary
 * problem per class (logreg: sigmoid, scikit-learn's
 * OneVsRestClassifier(LogisticRegression); svm: the squared hinge), k >= 1. */
int tl_linear_train_multilabel(const float *X, const unsigned char *Y, int64_t n, int d, int k,
                               const tl_linear_opts *o, tl_pool *pool, tl_log_fn log, void *log_user,
                               tl_linear_model *out, tl_err *e);
/* One vector (d) to k scores. */
void tl_linear_scores(const tl_linear_model *m, const float *x, float *scores);
/* Index of the highest score (the first on ties). */
int tl_linear_predict(const tl_linear_model *m, const float *x);
void tl_linear_model_free(tl_linear_model *m);

/* Per-dimension mean and population standard deviation (double
 * accumulation). A dimension whose values are all equal gets std 1.
 * Fails on n < 1 or a non-finite value. */
int tl_standardize_fit(const float *X, int64_t n, int d, float *mean, float *std, tl_err *e);

/* --- exposed for tests and reference comparisons --- */

/* The logistic objective scikit-learn minimises, divided by C*n:
 *   f(w) = (1/n) sum_i CE(softmax(W x_i + b), y_i) + ||W||^2 / (2 C n)
 * on X as given (no standardisation). w holds W (k x d, row-major) then,
 * when fit_intercept, b (k). grad (same length, may be NULL) receives the
 * gradient. Returns 0, or -1 with e filled (bad sizes, out of memory). */
int tl_logreg_objective(const float *X, const int *y, int64_t n, int d, int k, double C, int fit_intercept,
                        const double *w, double *f, double *grad, tl_pool *pool, tl_err *e);

#endif
