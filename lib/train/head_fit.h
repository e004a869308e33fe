/* Training a linear head on feature vectors, as tl-finetune does with a
 * feature file: the data checks, the scores on training and validation
 * data, and the provenance saved with the head. The solver itself is
 * linear.h; the checkpoint format head.h. */
#ifndef TL_TRAIN_HEAD_FIT_H
#define TL_TRAIN_HEAD_FIT_H

#include "head.h"

/* Loads training features: at least one vector, every one labelled, at
 * least two classes. */
int tl_head_train_data(const char *path, tl_featset *s, tl_err *e);

/* Loads validation features and renumbers their labels to the training
 * classes, matched by name; the dimension must match, a class the
 * training data lacks is an error, unlabelled vectors stay unlabelled. */
int tl_head_val_data(const char *path, const tl_featset *train, tl_featset *v, tl_err *e);

typedef struct tl_head_score {
    int64_t n, correct;  /* labelled vectors scored */
    double accuracy;     /* NAN when n is 0 */
    double loss;         /* mean cross-entropy of the softmax of the scores; NAN for SVM heads */
} tl_head_score;

int tl_head_score_set(const tl_linear_model *m, const tl_featset *s, tl_head_score *out, tl_err *e);

/* Saves the head with its provenance: C, the training data and its size
 * and accuracy, the validation accuracy (NAN: none), the time of training. */
int tl_head_save_trained(const tl_linear_model *m, const tl_featset *train, const char *train_path, double C,
                         double train_accuracy, double val_accuracy, const char *out, tl_err *e);

#endif
