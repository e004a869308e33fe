/* Training a linear head on feature vectors, as tl-finetune does with a
 * feature file: the data checks, the scores on training and validation
 * data, and the provenance saved with the head. The solver itself is
 * linear.h; the checkpoint format head.h. */
#ifndef TL_TRAIN_HEAD_FIT_H
#define TL_TRAIN_HEAD_FIT_H

#include "head.h"

/* Loads training features: at least one vector, every one labelled, at
 * least two classes (multi-label: one). */
int tl_head_train_data(const char *path, tl_featset *s, tl_err *e);

/* Loads validation features and renumbers their labels to the training
 * classes, matched by name; the features' origin must match the
 * training features' (io/feature_origin.h) unless force_origin; the
 * dimension must match, both must be
 * multi-label or neither, a class the training data lacks is an error,
 * unlabelled vectors stay unlabelled. */
int tl_head_val_data(const char *path, const tl_featset *train, int force_origin, tl_featset *v, tl_err *e);

/* --class-weights for a head: NULL (none), "auto" (balanced, from the
 * training labels) or a CLASS<TAB>WEIGHT file. Single-label: sets
 * o->class_weight to w (k doubles, the caller's); multi-label: auto sets
 * pos_weight and neg_weight (each class's problem balanced), a file sets
 * pos_weight (the positives' weight, as PyTorch's pos_weight). */
int tl_head_class_weights(const char *spec, const tl_featset *train, tl_linear_opts *o, double *w, double *pos,
                          double *neg, tl_err *e);

typedef struct tl_head_score {
    int64_t n, correct;  /* labelled vectors scored; correct: top-1 hits (multi-label: every label right) */
    double accuracy;     /* top-1 accuracy; multi-label: mAP over the classes with a positive. NAN when n is 0 */
    double loss;         /* mean cross-entropy of the softmax of the scores (multi-label: binary cross-entropy
                          * of the sigmoids, averaged over classes); NAN for SVM heads */
} tl_head_score;

int tl_head_score_set(const tl_linear_model *m, const tl_featset *s, tl_head_score *out, tl_err *e);

/* Any head, through its outputs (tl_head_outputs): top-1 accuracy, loss
 * NAN (for the prototype heads, which have no training loss). */
int tl_head_score_outputs(const tl_head *h, const tl_featset *s, tl_head_score *out, tl_err *e);

/* Multi-label: each class's threshold on s by tl_pr_summary's rule (best
 * F1); a class without a positive in s keeps tl_threshold_default.
 * *chosen counts the classes that had one. */
int tl_head_thresholds(const tl_linear_model *m, const tl_featset *s, float *thr, int *chosen, tl_err *e);

/* Saves the head with its provenance: C, the training data and its size
 * and accuracy, the validation accuracy (NAN: none), the time of
 * training, the class weights asked for (NULL: none) and, multi-label,
 * the thresholds and where they came from ("validation" or "default"). */
typedef struct tl_head_provenance {
    const char *train_path;
    double C, train_accuracy, val_accuracy;
    const char *class_weights;
    const float *thresholds;
    const char *thresholds_from;
    const char *pseudo_labels; /* self-training on unlabelled data, in words (tl.pseudo_labels), or NULL */
} tl_head_provenance;

int tl_head_save_trained(const tl_linear_model *m, const tl_featset *train, const tl_head_provenance *p,
                         const char *out, tl_err *e);
/* The same for a prototype head (C is not recorded). */
int tl_head_save_trained_proto(const tl_proto *pr, const tl_featset *train, const tl_head_provenance *p,
                               const char *out, tl_err *e);

#endif
