/* One optimisation step of a network on a batch: forward in training mode,
 * the loss (label-smoothed softmax cross-entropy, or binary cross-entropy
 * of sigmoid outputs for multi-label data; optionally weighted per image
 * and per class), backward as far as the first trainable layer, optimiser
 * update with per-group learning rates. */
#ifndef TL_TRAIN_TRAINER_H
#define TL_TRAIN_TRAINER_H

#include "nn/tape.h"
#include "optim.h"
#include "schedule.h"

typedef struct tl_trainer_opts {
    int batch;
    int nthreads;
    tl_opt_config opt;
    double lr;               /* the classifier's (last group's) learning rate */
    double lr_mult;          /* each earlier group: this times the next one's */
    const double *group_lrs; /* or explicit rates, earliest group first (ngroup_lrs of them) */
    int ngroup_lrs;
    int parts;               /* backbone groups (stages cut into this many runs) */
    tl_schedule sched;       /* factor on every group's rate, by step */
    float label_smoothing;   /* sigmoid loss: targets t become (1 - s) t + s / 2 */
    double clip_norm;        /* 0: no clipping */
    int loss;                /* TL_LOSS_SOFTMAX (default) or TL_LOSS_SIGMOID (multi-label) */
    /* Loss weights by class (num_classes floats each, NULL = 1), kept by
     * pointer (the caller owns them for the trainer's life). Softmax: an
     * image of class c weighs class_weight[c]. Sigmoid: class c's term
     * weighs pos_weight[c] where the image has the label, neg_weight[c]
     * where it has not. */
    const float *class_weight, *pos_weight, *neg_weight;
} tl_trainer_opts;

enum { TL_LOSS_SOFTMAX, TL_LOSS_SIGMOID };

/* What one batch of n images trains towards. */
typedef struct tl_targets {
    const int *y;            /* n class indices (softmax) */
    const float *multi;      /* n x num_classes 0/1 targets (sigmoid) */
    const float *weight;     /* n per-image loss weights, or NULL (all 1) */
} tl_targets;

void tl_trainer_opts_default(tl_trainer_opts *o);

typedef struct tl_trainer {
    tl_model *m;
    tl_tape *tape;
    tl_optimizer *opt;
    tl_trainer_opts o;
    int ngroups;
    double *base_lr, *lr;    /* per group */
    int64_t step;
    float *probs;            /* scratch for one sample's softmax */
} tl_trainer;

typedef struct tl_step_stats {
    double loss;             /* the batch loss: sum of weighted image losses / n */
    int correct;             /* softmax: top-1 hits; sigmoid: images whose every output is on the right
                              * side of 0.5 (exact match) */
    double grad_norm;
} tl_step_stats;

tl_trainer *tl_trainer_new(tl_model *m, const tl_trainer_opts *o, tl_err *e);
void tl_trainer_free(tl_trainer *t);
/* Applies the parameters' frozen flags to the tape and the optimiser
 * (after freezing or unfreezing groups). */
int tl_trainer_refresh(tl_trainer *t, tl_err *e);
/* Freezes every group below `first_trainable` and thaws the rest. */
int tl_trainer_train_from_group(tl_trainer *t, int first_trainable, tl_err *e);
/* One step on n images (x) towards tg. The batch loss is
 *   (1/n) sum_b weight[b] * class weights * loss_b,
 * a weighted mean over n (scikit-learn's sample_weight convention, not
 * PyTorch's division by the sum of the weights), so weights from several
 * sources compose by multiplying. A non-finite loss or gradient leaves the
 * parameters untouched and fails with a message. */
int tl_trainer_step(tl_trainer *t, tl_pool *pool, int n, const float *x, const tl_targets *tg, uint64_t seed,
                    tl_step_stats *st, tl_err *e);

#endif
