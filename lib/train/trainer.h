/* One optimisation step of a network on a batch: forward in training mode,
 * label-smoothed cross-entropy, backward as far as the first trainable
 * layer, optimiser update with per-group learning rates. */
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
    float label_smoothing;
    double clip_norm;        /* 0: no clipping */
} tl_trainer_opts;

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
    double loss;             /* mean over the batch */
    int correct;
    double grad_norm;
} tl_step_stats;

tl_trainer *tl_trainer_new(tl_model *m, const tl_trainer_opts *o, tl_err *e);
void tl_trainer_free(tl_trainer *t);
/* Applies the parameters' frozen flags to the tape and the optimiser
 * (after freezing or unfreezing groups). */
int tl_trainer_refresh(tl_trainer *t, tl_err *e);
/* Freezes every group below `first_trainable` and thaws the rest. */
int tl_trainer_train_from_group(tl_trainer *t, int first_trainable, tl_err *e);
/* One step on n images (x) with labels y. A non-finite loss or gradient
 * leaves the parameters untouched and fails with a message. */
int tl_trainer_step(tl_trainer *t, tl_pool *pool, int n, const float *x, const int *y, uint64_t seed,
                    tl_step_stats *st, tl_err *e);

#endif
