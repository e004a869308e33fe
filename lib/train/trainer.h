/* One optimisation step of a network on a batch: forward in training mode,
 * the loss (label-smoothed softmax cross-entropy, or binary cross-entropy
 * of sigmoid outputs for multi-label data; optionally weighted per image
 * and per class), backward as far as the first trainable layer, optimiser
 * update with per-group learning rates. */
#ifndef TL_TRAIN_TRAINER_H
#define TL_TRAIN_TRAINER_H

#include "comm.h"
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
    int exact;               /* every convolution direct, never Winograd (tl_tape_set_exact) */
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
    /* a step in parts (tl_trainer_part/finish): the summed gradients of the
     * trainable span of the parameter storage, then the step's statistics */
    float *sum;
    size_t sum_cap, span_lo, span_n;
    int parts, parts_with_images;
    double part_loss;
    int64_t part_correct, part_images;
    int sync_bn;             /* batch norm synchronised over processes (tl_trainer_sync_bn) */
    double factor;           /* >= 0: every group at base x factor, not the schedule's (the LR finder); -1 */
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
/* One step on n images (x) towards tg. The batch loss is
 *   (1/n) sum_b weight[b] * class weights * loss_b,
 * a weighted mean over n (scikit-learn's sample_weight convention, not
 * PyTorch's division by the sum of the weights), so weights from several
 * sources compose by multiplying. A non-finite loss or gradient leaves the
 * parameters untouched and fails with a message. */
int tl_trainer_step(tl_trainer *t, tl_pool *pool, int n, const float *x, const tl_targets *tg, uint64_t seed,
                    tl_step_stats *st, tl_err *e);

/* A step in parts, for gradient accumulation and data parallelism: one
 * optimiser step on a batch of `total` images whose gradient is summed
 * from parts (micro-batches, or this process's share of each) and, with a
 * communicator, over every process: one tl_comm_allreduce of one
 * contiguous buffer, the gradients of the trainable span of the parameter
 * storage followed by the step's statistics and flags. Each part's loss is
 * divided by `total`, so the result is tl_trainer_step's on the whole
 * batch up to the order of float sums (batch norm apart, whose statistics
 * are those of each part unless the tape synchronises them).
 *
 * tl_trainer_part: n images (n may be 0: a process with no share) that
 * are images first.. of the step's batch (dropout masks follow the
 * batch position, so they do not depend on how the batch is cut).
 * tl_trainer_finish: flags are this process's (TL_STEP_STOP: a stop was
 * requested; TL_STEP_FAILED: it failed and contributes nothing); the
 * result holds every process's (any one's flag sets it). With
 * TL_STEP_FAILED anywhere, or a non-finite loss or gradient, it fails and
 * leaves the parameters as they were (the same decision on every
 * process); otherwise the optimiser steps. */
enum { TL_STEP_STOP = 1, TL_STEP_FAILED = 2 };

typedef struct tl_step_result {
    double loss;              /* weighted image losses summed / images */
    int64_t correct, images;
    int flags;
    double grad_norm;
    double comm_seconds;      /* in the allreduce */
    size_t comm_bytes;        /* of the buffer reduced */
} tl_step_result;

int tl_trainer_part(tl_trainer *t, tl_pool *pool, int n, const float *x, const tl_targets *tg, int total, int first,
                    uint64_t seed, tl_err *e);
/* Batch norm that trains takes its statistics over every process of comm
 * (the tape adds up per-channel sums in each pass): every process must
 * then run every part, even one that failed to load its images. */
int tl_trainer_sync_bn(tl_trainer *t, tl_comm *comm, tl_err *e);
int tl_trainer_finish(tl_trainer *t, tl_pool *pool, tl_comm *comm, int flags, tl_step_result *r, tl_err *e);

#endif
