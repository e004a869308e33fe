/* What loop.c and loop_dist.c (the data-parallel parts of the loop)
 * share. */
#ifndef TL_TRAIN_LOOP_INTERNAL_H
#define TL_TRAIN_LOOP_INTERNAL_H

#include "loop.h"

/* State kept across epochs (and in the resume file). */
typedef struct run_state {
    int epoch;        /* 0-based, the epoch in progress */
    int64_t batch;    /* next step within the epoch */
    int64_t step;
    int best_epoch;   /* 1-based, 0 = none */
    double best_acc, best_loss;
    int bad_epochs;
    double loss_sum;  /* the epoch so far */
    int64_t correct, seen;
    double epoch_seconds; /* training time of the epoch so far, before this process */
    double run_seconds;   /* the run so far (training and validation), before this process */
    /* the epoch's allreduces, for the report (not kept in the resume file) */
    double comm_seconds;
    int64_t comm_steps;
    size_t comm_bytes;
} run_state;

/* Every process must train on the same data and network: a process that
 * sees another count of images, classes or parameters fails them all,
 * saying which differs. */
int tl_dist_check_same(tl_comm *c, int64_t ntrain, int64_t nval, const tl_model *m, int64_t steps, tl_err *e);
/* Rank 0's parameters (and batch-norm statistics) to every process. */
int tl_dist_bcast_params(tl_comm *c, tl_model *m, tl_err *e);
/* Rank 0's batch-norm running statistics (buffers) to every process, so
 * that each validates the same network. */
int tl_dist_bcast_buffers(tl_comm *c, tl_model *m, tl_err *e);
/* The parameters are the same bits on every process (a check: they are
 * by construction). */
int tl_dist_check_params(tl_comm *c, const tl_model *m, int epoch, tl_err *e);
/* After rank 0 alone did something (saving, loading): its status to all.
 * Returns -1 on every process when rank 0 failed (its message on rank 0,
 * "rank 0 could not WHAT" elsewhere). */
int tl_dist_rank0_status(tl_comm *c, int rc, const char *what, tl_err *e);
/* The resume state rank 0 has loaded (parameters, optimiser state, run
 * state) to every process; the others apply the resumed epoch's freezing
 * through `freeze` before receiving the optimiser state. */
int tl_dist_bcast_resume(tl_comm *c, tl_trainer *t, run_state *rs, int (*freeze)(void *, int, tl_err *), void *user,
                         tl_err *e);

#endif
