/* Per-class loss weights for imbalanced data (--class-weights):
 * "auto" computes scikit-learn's class_weight='balanced'; a file gives
 * them by class name. Used by the linear heads (linear.h) and by
 * fine-tuning (trainer.h). */
#ifndef TL_TRAIN_CLASS_WEIGHTS_H
#define TL_TRAIN_CLASS_WEIGHTS_H

#include "core.h"

/* Single-label: w[c] = n / (m * n_c), n labelled samples (y >= 0), m the
 * number of classes that occur, n_c the samples of class c; a class with
 * no sample gets 1. Balanced weights average 1 over the samples, so the
 * loss keeps its scale (and the learning rate or C its meaning). */
void tl_class_weights_balanced(const int *y, int64_t n, int k, double *w);

/* Multi-label, each class's one-vs-rest problem balanced on its own:
 * pos[c] = n / (2 n_pos), neg[c] = n / (2 n_neg) over the n labelled
 * samples (Y: n x k, 0/1; rows of unlabelled samples, labelled[i] == 0,
 * are skipped; labelled may be NULL); 1 for both when a class has no
 * positive or no negative. */
void tl_class_weights_balanced_multi(const unsigned char *Y, const unsigned char *labelled, int64_t n, int k,
                                     double *pos, double *neg);

/* A weights file: one "CLASS<TAB>WEIGHT" per line (blank lines and lines
 * starting with '#' skipped; a trailing CR dropped). A weight is a finite
 * number >= 0 and not all of them may be 0; a class not named keeps 1. An
 * unknown or repeated class, or a bad number, fails with the file's name
 * and the line number. w has k entries. */
int tl_class_weights_read(const char *path, char *const *classes, int k, double *w, tl_err *e);

#endif
